#![allow(unused)]
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(response, declare_extras = users::User)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub openid: Option<String>,
}

#[token_endpoint(response, declare_extras = "User")]
pub struct Quoted {
    pub access_token: AccessToken,
    pub openid: Option<String>,
}

fn main() {}
