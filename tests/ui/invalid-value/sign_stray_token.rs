//! A stray token inside `sign(...)` (`over(path,, body)`): one error, at it.
use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};

#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
}

#[token_endpoint(error)]
pub struct Failure {
    pub error: String,
}

pub struct App {
    pub secret: ClientSecret,
}

#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(path,, sorted_params), into = query("sign")))]
pub struct Signed {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub secret: ClientSecret,
}

fn main() {}
