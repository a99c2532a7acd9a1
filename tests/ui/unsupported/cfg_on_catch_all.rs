use token_core::token_endpoint;

#[token_endpoint(error_code)]
pub enum Code {
    InvalidGrant,
    #[cfg(all())]
    Other(String),
}

fn main() {}
