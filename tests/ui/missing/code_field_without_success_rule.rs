use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

#[token_endpoint(response)]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
    pub code: String, // "0" on every success
}

#[token_endpoint(error)]
pub struct Failure {
    #[token(code)]
    pub code: String,
}

#[token_endpoint(post = "/token", response = Tokens, error = Failure)]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

fn main() {}
