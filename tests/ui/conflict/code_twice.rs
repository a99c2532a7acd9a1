use token_core::token_endpoint;

// A code is the discriminant or `code = ...`, not both; the catch-all has none.
#[token_endpoint(error_code)]
pub enum Code {
    #[token(code = 40030, kind = reauth_required)]
    InvalidRefreshToken = 40030,
    Busy = -1,
    Other(String) = 0,
}

fn main() {}
