use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub secret: ClientSecret }

// The tests crate builds token-core without its `rsa` feature.
#[token_endpoint(post = "/token", json, response = Tokens, error = Failure, config = App,
                 sign(rsa_sha256, over(method, path, body), into = header("Signature")))]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub private_key: ClientSecret,
}

fn main() {}
