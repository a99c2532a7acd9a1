#![allow(unused)]
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

#[token_endpoint(respnse)]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
}

#[token_endpoint(error)]
pub struct Failure {
    #[token(code)]
    pub error: String,
}

// One mistake, one error: the keys after the typo are not judged without the kind.
#[token_endpoint(psot = "/token", json, response = Tokens, error = Failure)]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

#[token_endpoint(post = "/token", respnse = Tokens, error = Failure)]
pub struct Refresh2 {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

fn main() {}
