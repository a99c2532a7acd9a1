#![allow(unused)]
use token_core::token_endpoint;

#[token_endpoint(error_code)]
pub enum Code {
    #[token(code = 40030, kind = reauth_required)]
    InvalidRefreshToken,
    #[token(other, refusal = server_error)]
    Other(String),
}

fn main() {}
