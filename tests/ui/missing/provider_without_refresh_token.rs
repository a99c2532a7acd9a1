#![allow(unused)]
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(response)]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
}

#[token_endpoint(error)]
pub struct Failure {
    #[token(code)]
    pub error: String,
}

pub struct Config {
    pub client_id: String,
}

#[token_endpoint(post = "/token", response = Tokens, error = Failure, config = Config, provider = "acme")]
pub struct Refresh {
    #[token(from = config.client_id)]
    pub client_id: String,
    pub scope: String,
}
fn main() {}
