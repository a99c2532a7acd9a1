//! Every error form: RFC 6749, a custom body with status field, a result envelope, and
//! status-only mapping with a plain `String` code.
use token_core::{ErrorResponse, token_endpoint};

#[token_endpoint(error_code, rename_all = "snake_case")]
pub enum OAuthCode {
    #[token(kind = reauth_required)]
    InvalidGrant,
    #[token(kind = misconfigured, status = 401)]
    InvalidClient,
    #[token(code = "temporarily_unavailable", kind = transient, status = 503)]
    Unavailable,
    #[token(other, kind = rejected)]
    Other(String),
}

#[token_endpoint(error)]
pub struct OAuthError {
    #[token(code)]
    pub error: OAuthCode,
    #[token(message)]
    pub error_description: Option<String>,
}

#[token_endpoint(error, rename_all = "camelCase", status = 400,
                 on_status(status = 401, kind = reauth_required), on_status(status = 403, kind = misconfigured))]
pub struct CustomError {
    #[token(code)]
    pub error: String,
    #[token(message)]
    pub message: String,
    pub details: Option<String>,
    #[token(http_status)]
    pub status_code: Option<u16>,
}

#[token_endpoint(error_code, rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ResultCode {
    #[token(kind = reauth_required)]
    InvalidRefreshToken,
    #[token(other)]
    Other(String),
}

#[token_endpoint(error, envelope = "result", rename_all = "camelCase")]
pub struct Envelope {
    #[token(code)]
    pub result_code: ResultCode,
    #[token(result_status)]
    pub result_status: String,
    #[token(message)]
    pub result_message: Option<String>,
}

fn assert_error<E: ErrorResponse>() {}

fn main() {
    assert_error::<OAuthError>();
    assert_error::<CustomError>();
    assert_error::<Envelope>();
}
