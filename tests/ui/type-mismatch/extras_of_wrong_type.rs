//! An `extras` field whose type is not the response's extras type: one error, at the type.
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    pub user_id: Option<String>,
}

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seller {
    pub seller_id: Option<String>,
}

#[token_endpoint(response, extras = User)]
pub struct Tokens {
    pub access_token: AccessToken,
    #[token(extras)]
    pub user: Seller,
}

fn main() {}
