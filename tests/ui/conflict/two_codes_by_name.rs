use token_core::token_endpoint;

// `error` and `code` are both code names: which one is the code must be said.
#[token_endpoint(error)]
pub struct Failure {
    pub error: String,
    pub code: String,
    pub message: Option<String>,
}

fn main() {}
