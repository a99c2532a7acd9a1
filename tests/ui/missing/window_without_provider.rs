use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }

// The sandbox serving a refresh endpoint checks `window`: a request with no `provider`
// is served by no such sandbox.
#[token_endpoint(post = "/token", response = Tokens, error = Failure)]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(query, from = now_unix_ms, window = 7200)]
    pub timestamp: String,
}

fn main() {}
