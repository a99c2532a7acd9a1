//! Every error form: RFC 6749, a custom body with status field, a result envelope, and
//! status-only mapping with a plain `String` code; refusals declared on variants and on a
//! struct.
use token_core::{codec::ErrorResponse, codec::RefusalReason, token_endpoint};

#[token_endpoint(error_code, rename_all = "snake_case")]
pub enum OAuthCode {
    #[token(kind = reauth_required, refusal(invalid_refresh_token, invalid_auth_code))]
    InvalidGrant,
    #[token(kind = misconfigured, status = 401, refusal = unknown_client)]
    InvalidClient,
    #[token(code = "temporarily_unavailable", kind = transient, status = 503, refusal = server_error)]
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
                 on_status(status = 401, kind = reauth_required), on_status(status = 403, kind = misconfigured),
                 refusal(invalid_refresh_token, code = "Unauthorized", status = 401),
                 refusal(bad_request, code = "Bad Request"))]
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
    #[token(kind = reauth_required, refusal = invalid_refresh_token)]
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

/// Shopee's success writes `"error": ""`: the always-successful empty code sets no trap,
/// so the error needs no `success_codes("")`.
#[token_endpoint(response, body(name = "error", value = ""), body(name = "message", value = ""))]
pub struct EmptyErrorTokens {
    pub access_token: token_core::secret::AccessToken,
}

#[token_endpoint(error)]
pub struct ShopeeError {
    #[token(code)]
    pub error: String,
    #[token(message)]
    pub message: Option<String>,
}

#[token_endpoint(post = "/api/v2/auth/access_token/get", response = EmptyErrorTokens, error = ShopeeError)]
pub struct ShopeeRefresh {
    #[token(from = refresh_token)]
    pub refresh_token: token_core::secret::RefreshToken,
}

fn assert_error<E: ErrorResponse>() {}

fn main() {
    assert_error::<OAuthError>();
    assert_error::<CustomError>();
    assert_error::<Envelope>();

    let expired = OAuthError::from_refusal(RefusalReason::ExpiredRefreshToken, "gone");
    assert!(matches!(expired.error, OAuthCode::InvalidGrant), "the fallback");
    assert_eq!(expired.error_description.as_deref(), Some("gone"));
    let busy = OAuthError::from_refusal(RefusalReason::ServerError, "down");
    assert_eq!(busy.encode_error().0, 503);
    let unsigned = OAuthError::from_refusal(RefusalReason::BadSignature, "bad");
    assert!(matches!(&unsigned.error, OAuthCode::Other(code) if code == "bad_signature"));

    let dead = CustomError::from_refusal(RefusalReason::InvalidRefreshToken, "no");
    assert_eq!((dead.error.as_str(), dead.status_code), ("Unauthorized", Some(401)));
    let bad = CustomError::from_refusal(RefusalReason::BadRequest, "x");
    assert_eq!((bad.error.as_str(), bad.status_code), ("Bad Request", Some(400)));
    let other = CustomError::from_refusal(RefusalReason::ServerError, "x");
    assert_eq!((other.error.as_str(), other.status_code), ("server_error", Some(500)));

    let failed = Envelope::from_refusal(RefusalReason::InvalidRefreshToken, "x");
    assert_eq!(failed.result_status, "F");
    assert!(matches!(failed.result_code, ResultCode::InvalidRefreshToken));

    use token_core::codec::TokenResponse as _;
    let set = token_core::token_set::TokenSet::new(token_core::secret::AccessToken::new("at"));
    let now = time::OffsetDateTime::UNIX_EPOCH;
    let success = EmptyErrorTokens::from_token_set(&set, now).encode_body();
    assert_eq!(success, br#"{"access_token":"at","error":"","message":""}"#.to_vec());
    assert!(ShopeeError::decode_error(http::StatusCode::OK, &success).is_none());
    let _ = std::marker::PhantomData::<ShopeeRefresh>;
}
