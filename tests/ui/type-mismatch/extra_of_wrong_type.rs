//! An `extra` field whose type is not its extras field's: one error, at the type.
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    pub user_id: Option<String>,
}

#[token_endpoint(response, extras = User)]
pub struct Tokens {
    pub access_token: AccessToken,
    #[token(extra)]
    pub user_id: Option<u64>,
}

fn main() {}
