#![allow(unused)]
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(response, declare_extras = User)]
pub struct Tokens {
    pub access_token: AccessToken,
    #[token(keep)]
    pub openid: String,
}

fn main() {}
