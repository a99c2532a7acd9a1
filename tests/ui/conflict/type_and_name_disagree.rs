#![allow(unused)]
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

// The type says `refresh_token`, the name says `scope`.
#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub scope: Option<RefreshToken>,
}

fn main() {}
