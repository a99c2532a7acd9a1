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

#[token_endpoint(post = "/token", fromat = json, rename_all = "camel", response = Tokens, error = Failure)]
pub struct Refresh {
    #[token(header, rename = "bad header")]
    pub partner_id: i32,
    #[token(access_token)]
    pub refresh_token: RefreshToken,
}
fn main() {}
