#![allow(unused)]
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
    #[token(request_id)]
    pub request_id: Option<String>,
}

fn main() {}
