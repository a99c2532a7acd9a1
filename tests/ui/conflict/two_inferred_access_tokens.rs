#![allow(unused)]
use token_core::{secret::AccessToken, token_endpoint};

// Both fields take `access_token` from their type: one error, at the second.
#[token_endpoint(response)]
pub struct TwoTokens {
    pub access_token: AccessToken,
    pub id_token: AccessToken,
}

fn main() {}
