#![allow(unused)]
use token_core::token_endpoint;

#[token_endpoint(error_code)]
pub enum Code {
    #[token(code = 40030, kind = reauth_required, refusal = invalid_refresh_token)]
    InvalidRefreshToken,
    #[token(code = 42002, kind = reauth_required, refusal(expired_refresh_token, invalid_refresh_token))]
    RefreshTokenTimeout,
    #[token(other)]
    Other(String),
}

#[token_endpoint(error, refusal(bad_request, code = "Bad Request"), refusal(bad_request, code = "Invalid"))]
pub struct Failure {
    #[token(code)]
    pub error: String,
}

fn main() {}
