#![allow(unused)]
use token_core::{secret::AccessToken, token_endpoint};

// Named `expires_in`, so it is the expiry, which is an expiry type.
#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub expires_in: Option<u64>,
}

fn main() {}
