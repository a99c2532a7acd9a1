use token_core::token_endpoint;

#[token_endpoint(error, success_codes(true, 0.5))]
pub struct Failure {
    #[token(code)]
    pub code: String,
}

#[token_endpoint(error, success_codes())]
pub struct Other {
    #[token(code)]
    pub code: String,
}

fn main() {}
