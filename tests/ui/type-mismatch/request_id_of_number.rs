#![allow(unused)]
use token_core::token_endpoint;

#[token_endpoint(error)]
pub struct Failure {
    pub code: String,
    // The request id is text: a number is read as absent only where the type is text.
    pub request_id: u64,
}

fn main() {}
