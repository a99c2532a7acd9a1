#![allow(unused)]
use token_core::token_endpoint;

#[token_endpoint(error, refusal(invalid_refresh_token, code = "Unauthorized", status = 401))]
pub struct Failure {
    #[token(code)]
    pub error: String,
    #[token(message)]
    pub message: Option<String>,
}

fn main() {}
