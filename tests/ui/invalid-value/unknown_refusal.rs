#![allow(unused)]
use token_core::token_endpoint;

#[token_endpoint(error_code)]
pub enum Code {
    #[token(code = 40030, kind = reauth_required, refusal = invalid_refesh_token)]
    InvalidRefreshToken,
    #[token(other)]
    Other(String),
}

fn main() {}
