use token_core::token_endpoint;

// A variant written as the catch-all but not holding its text: one error there, not also
// "give it a code" and "no catch-all".
#[token_endpoint(error_code)]
pub enum Numbers {
    InvalidRefreshToken = 40030,
    Other(u32),
}

#[token_endpoint(error_code)]
pub enum NoField {
    InvalidRefreshToken = 40030,
    Other,
}

fn main() {}
