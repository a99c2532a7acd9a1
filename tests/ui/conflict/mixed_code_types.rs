use token_core::token_endpoint;

#[token_endpoint(error_code)]
pub enum Code {
    #[token(code = 40030)]
    InvalidRefreshToken,
    #[token(code = "busy")]
    Busy,
    Unnamed,
    #[token(other)]
    Other(String),
}

fn main() {}
