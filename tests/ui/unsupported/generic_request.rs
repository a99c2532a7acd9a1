#![allow(unused)]
use token_core::expiry::ExpiresIn;
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

#[token_endpoint(response)]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
}

#[token_endpoint(error_code)]
pub enum Code {
    #[token(other)]
    Other(String),
}

#[token_endpoint(error)]
pub struct Failure {
    #[token(code)]
    pub error: Code,
}

#[token_endpoint(post = "/token", response = Tokens, error = Failure)]
pub struct Refresh<T> {
    pub refresh_token: T,
}
fn main() {}
