use token_core::token_endpoint;

// A discriminant is the variant's integer code: text or an expression is not one.
#[token_endpoint(error_code)]
pub enum Code {
    InvalidRefreshToken = "40030",
    Busy = 40000 + 1,
    Other(String),
}

fn main() {}
