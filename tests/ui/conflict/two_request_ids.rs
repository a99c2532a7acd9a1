#![allow(unused)]
use token_core::token_endpoint;

#[token_endpoint(error)]
pub struct Failure {
    pub code: String,
    #[token(request_id)]
    pub trace_id: Option<String>,
    #[token(request_id)]
    pub gateway_id: Option<String>,
}

fn main() {}
