use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }

// `response` and `error` swapped: one error at each, and none from inside the macro's support.
#[token_endpoint(post = "/token", response = Failure, error = Tokens)]
pub struct Refresh {
    pub refresh_token: RefreshToken,
}

fn main() {}
