#![allow(unused)]
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    pub openid: Option<String>,
}

#[token_endpoint(response, extras = User)]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(extra)]
    pub openid: Option<String>,
    #[token(extras, rename = "user")]
    pub user: User,
}

#[token_endpoint(response)]
pub struct Untyped {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(extras)]
    pub user: User,
}
fn main() {}
