use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    pub user_id: Option<String>,
    pub code: Option<String>, // "0" on every success
}

#[token_endpoint(response, extras = User)]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(extras)]
    pub user: User,
}

#[token_endpoint(error)]
pub struct Failure {
    #[token(code)]
    pub code: String,
}

#[token_endpoint(post = "/token", response = Tokens, error = Failure)]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

fn main() {}
