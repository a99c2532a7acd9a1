use token_core::token_endpoint;

// A wait before retrying belongs on a code that is retried: not on a dead refresh token, nor
// on a code whose kind the status decides.
#[token_endpoint(error_code)]
pub enum Code {
    #[token(kind = reauth_required, retry_after = 60)]
    InvalidRefreshToken = 40030,
    #[token(retry_after = 60)]
    Unclassified = 45001,
    #[token(kind = transient, retry_after = 60)]
    MinuteQuota = 45011,
    Other(String),
}

fn main() {}
