#![allow(unused)]
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    pub openid: Option<String>,
}

#[token_endpoint(response, extras = User, declare_extras = Seller)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub seller_id: Option<String>,
}

#[token_endpoint(response, declare_extras = Account)]
pub struct Whole {
    pub access_token: AccessToken,
    pub country: Option<String>,
    #[token(extras)]
    pub user: User,
}

fn main() {}
