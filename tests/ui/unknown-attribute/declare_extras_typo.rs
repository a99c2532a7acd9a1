#![allow(unused)]
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(response, declare_extra = User)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub openid: Option<String>,
}

fn main() {}
