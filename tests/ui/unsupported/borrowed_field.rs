use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }

// The server side reads a request back: its fields own their values.
#[token_endpoint(post = "/token", response = Tokens, error = Failure)]
pub struct Refresh {
    pub refresh_token: RefreshToken,
    pub device: &'static str,
}

fn main() {}
