#![allow(unused)]
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

// Every success carries the `result` envelope (its status `S`)...
#[token_endpoint(response, rename_all = "camelCase", body(name = "result.resultStatus", value = "S"))]
pub struct Tokens {
    pub access_token: AccessToken,
}

// ...and nothing tells the error's `resultCode` of a success from a failure's.
#[token_endpoint(error, envelope = "result", rename_all = "camelCase")]
pub struct ResultError {
    #[token(code)]
    pub result_code: String,
}

#[token_endpoint(post = "/token", response = Tokens, error = ResultError)]
pub struct Refresh {
    pub refresh_token: RefreshToken,
}

fn main() {}
