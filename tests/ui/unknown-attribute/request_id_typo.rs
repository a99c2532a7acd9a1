#![allow(unused)]
use token_core::token_endpoint;

#[token_endpoint(error)]
pub struct Failure {
    pub code: String,
    #[token(requst_id)]
    pub trace: Option<String>,
}

fn main() {}
