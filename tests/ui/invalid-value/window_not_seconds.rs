use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }

#[token_endpoint(post = "/token", response = Tokens, error = Failure, provider = "acme")]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(query, from = now_unix_ms, window = 0)]
    pub timestamp: String,
    #[token(query, from = now_unix, window = "2h")]
    pub sent_at: String,
}

fn main() {}
