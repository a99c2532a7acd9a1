//! A `(` left open inside `sign(...)`: one error, at the delimiter, from the parser.
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
                 sign(hmac_sha256, over(path, sorted_params, encoding = hex_upper, into = query("sign")))]
pub struct Signed {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub secret: ClientSecret,
}

fn main() {}
