//! A user's `#[serde(...)]` on an item the macro derives serde for: one error, at it.
use token_core::token_endpoint;

#[token_endpoint(error)]
#[serde(rename_all = "camelCase")]
pub struct Failure {
    pub error: String,
}

fn main() {}
