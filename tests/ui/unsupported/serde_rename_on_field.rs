//! A user's `#[serde(...)]` on a field the macro derives serde for: one error, at it,
//! pointing to `#[token(rename = "...")]`.
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
    #[serde(rename = "uid")]
    pub user_id: Option<String>,
}

fn main() {}
