#![allow(unused)]
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

// No `declare_extras`: `keep` has no extras field to mark.
#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
    #[token(keep)]
    pub openid: Option<String>,
}

// `keep` on a field with a role of its own.
#[token_endpoint(response, declare_extras = User)]
pub struct Declared {
    pub access_token: AccessToken,
    #[token(keep)]
    pub refresh_token: Option<RefreshToken>,
    pub openid: Option<String>,
}

// `declare_extras` is a response's key.
#[token_endpoint(error, declare_extras = Details)]
pub struct Failure {
    pub code: String,
    pub request_id: Option<String>,
}

fn main() {}
