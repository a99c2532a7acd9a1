use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(fields)]
pub struct Common {
    #[token(from = uuid)]
    pub trace: String,
}

#[token_endpoint(response)]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(flatten)]
    pub common: Common,
}

fn main() {}
