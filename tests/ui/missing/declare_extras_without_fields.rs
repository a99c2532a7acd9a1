#![allow(unused)]
use token_core::{expiry::ExpiresIn, secret::AccessToken, secret::RefreshToken, token_endpoint};

// Every field has a role: the declared struct would be empty.
#[token_endpoint(response, declare_extras = User)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    pub expires_in: Option<ExpiresIn>,
}

fn main() {}
