//! A key with `=` and no value: one error, at the `=`'s end, nothing after it.
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
}

#[token_endpoint(error)]
pub struct Failure {
    pub error: String,
}

#[token_endpoint(post = , response = Tokens, error = Failure)]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: token_core::secret::RefreshToken,
}

fn main() {}
