use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(response, envelope = "data.tokens")]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
}

fn main() {}
