use token_core::token_endpoint;

// Each `String` variant would keep every unknown code: one catch-all only.
#[token_endpoint(error_code)]
pub enum Code {
    InvalidRefreshToken = 40030,
    Other(String),
    Unknown(String),
}

fn main() {}
