#![allow(unused)]
use token_core::{secret::AccessToken, token_endpoint};

// Named `scope`, so it is the scope, which is text.
#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub scope: Vec<String>,
}

fn main() {}
