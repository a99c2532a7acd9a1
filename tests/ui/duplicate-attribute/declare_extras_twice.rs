#![allow(unused)]
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(response, declare_extras = User, declare_extras = Seller)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub openid: Option<String>,
}

fn main() {}
