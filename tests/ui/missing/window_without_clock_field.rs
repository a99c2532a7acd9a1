use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }

// `window` bounds a request time: the field must read one (`from = now_*`).
#[token_endpoint(post = "/token", response = Tokens, error = Failure)]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(query, window = 7200)]
    pub timestamp: String,
}

fn main() {}
