use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }

// A typo of a value (a source, a kind, a casing) suggests the closest one, as a key's does.
#[token_endpoint(post = "/token", rename_all = "camelcase", response = Tokens, error = Failure)]
pub struct Refresh {
    #[token(from = refresh_tokne)]
    pub refresh_token: RefreshToken,
    #[token(query, from = now_unixms)]
    pub timestamp: String,
}

#[token_endpoint(error_code)]
pub enum Code {
    #[token(kind = reauth_requried)]
    InvalidRefreshToken = 40030,
    Other(String),
}

fn main() {}
