#![allow(unused)]
use token_core::{secret::AccessToken, token_endpoint};

// `granted` is marked the scope, and `scope` is the scope by its name.
#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
    #[token(scope)]
    pub granted: Option<String>,
    pub scope: Option<String>,
}

fn main() {}
