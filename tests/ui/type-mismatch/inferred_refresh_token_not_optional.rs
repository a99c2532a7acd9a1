#![allow(unused)]
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

// Of type `RefreshToken`, so it is the refresh token, which an answer may lack.
#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub refresh_token: RefreshToken,
}

fn main() {}
