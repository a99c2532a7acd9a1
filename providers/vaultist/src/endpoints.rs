//! Vault.ist's v3 and v2 refresh requests, their shared answer and their two error shapes,
//! as `#[token_endpoint]` definitions: the client encodes with them and the sandbox serves
//! them.

use serde_json::Value;
use token_core::codec::Endpoint;
use token_core::expiry::ExpiresIn;
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

use crate::config::VaultistConfig;

/// The refresh endpoint's path (v3, and v2 as this crate assumes).
pub const REFRESH_PATH: &str = <RefreshV3 as Endpoint>::PATH;

/// v3: headers `partnerId` and `grantType: refresh_token`, body `{"refreshToken"}`, and the
/// optional `X-Merchant-ID`.
///
/// ```
/// use token_core::{secret::AccessToken, codec::Endpoint, codec::FromContext, secret::RefreshToken, codec::RequestContext, token_set::TokenSet};
/// use token_provider_vaultist::{RefreshV3, VaultistConfig, VaultistExtras};
///
/// let config = VaultistConfig::new(42).with_merchant_id("m-1");
/// let session = TokenSet::<VaultistExtras>::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"));
/// let request = RefreshV3::from_context(&RequestContext::for_refresh(&config, &session))?
///     .encode_request(&"https://api.vault.ist".parse()?)?;
/// assert_eq!(request.headers()["partnerId"], "42");
/// assert_eq!(request.headers()["grantType"], "refresh_token");
/// assert_eq!(request.headers()["X-Merchant-ID"], "m-1");
/// assert_eq!(request.body(), br#"{"refreshToken":"rt"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[token_endpoint(post = "/v1/auth/token", json, response = VaultistTokens, error = VaultistError,
                 config = VaultistConfig, header(name = "grantType", value = "refresh_token"))]
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshV3 {
    /// The partner id.
    #[token(header, rename = "partnerId", from = config.partner_id)]
    pub partner_id: i32,
    /// The merchant id, when configured.
    #[token(header, rename = "X-Merchant-ID", from = config.merchant_id)]
    pub merchant_id: Option<String>,
    /// The refresh token.
    #[token(body, rename = "refreshToken")]
    pub refresh_token: RefreshToken,
}

/// v2: body `{"grant_type": "refresh_token", "refresh_token"}`, and the optional
/// `X-Merchant-ID`.
///
/// ```
/// use token_core::{secret::AccessToken, codec::Endpoint, codec::FromContext, secret::RefreshToken, codec::RequestContext, token_set::TokenSet};
/// use token_provider_vaultist::{ApiVersion, RefreshV2, VaultistConfig, VaultistExtras};
///
/// let config = VaultistConfig::new(42).with_api_version(ApiVersion::V2);
/// let session = TokenSet::<VaultistExtras>::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"));
/// let request = RefreshV2::from_context(&RequestContext::for_refresh(&config, &session))?
///     .encode_request(&"https://api.vault.ist".parse()?)?;
/// assert!(request.headers().get("partnerId").is_none());
/// assert_eq!(request.body(), br#"{"grant_type":"refresh_token","refresh_token":"rt"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[token_endpoint(post = "/v1/auth/token", json, response = VaultistTokens, error = VaultistV2Error,
                 config = VaultistConfig, body(name = "grant_type", value = "refresh_token"))]
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshV2 {
    /// The merchant id, when configured.
    #[token(header, rename = "X-Merchant-ID", from = config.merchant_id)]
    pub merchant_id: Option<String>,
    /// The refresh token.
    pub refresh_token: RefreshToken,
}

/// What Vault.ist sessions carry beside the tokens (v2 answers).
#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct VaultistExtras {
    /// The user the tokens belong to (`usr:...`).
    pub user_id: Option<String>,
}

/// The answer of both versions: `{access_token, token_type, refresh_token, scope,
/// expires_in, user_id}` (v3 sends no `scope` and `user_id`).
#[token_endpoint(response, jwt_expiry, extras = VaultistExtras)]
#[derive(Clone, Debug, PartialEq)]
pub struct VaultistTokens {
    /// The access token.
    pub access_token: AccessToken,
    /// The token type (`Bearer`).
    pub token_type: Option<String>,
    /// The new refresh token, "if applicable".
    pub refresh_token: Option<RefreshToken>,
    /// The granted scopes (v2).
    pub scope: Option<String>,
    /// Seconds until the access token expires.
    pub expires_in: Option<ExpiresIn>,
    /// The user (v2).
    #[token(extra)]
    pub user_id: Option<String>,
}

/// v3 error codes.
#[token_endpoint(error_code, rename_all = "snake_case")]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum VaultistCode {
    /// "Refresh token has expired or is invalid."
    #[token(kind = reauth_required, refusal = invalid_refresh_token)]
    InvalidGrant,
    /// "Missing refresh token."
    #[token(kind = rejected, refusal = bad_request)]
    InvalidRequest,
    /// The sandbox host's generic error (an unknown merchant): the HTTP status decides.
    #[token(code = "COMMON", refusal = unknown_client)]
    Common,
    /// RFC 6749's `server_error`: the server failed (HTTP 500); retried.
    #[token(kind = transient, status = 500, refusal = server_error)]
    ServerError,
    /// Any other code: the HTTP status decides.
    Other(String),
}

/// v3 errors `{"error", "error_description"}`, and the generic
/// `{"message", "errorId", "systemId", "error": "COMMON"}`.
///
/// ```
/// use token_core::{error::ErrorKind, codec::ErrorResponse};
/// use token_provider_vaultist::{VaultistCode, VaultistError};
///
/// let status = http::StatusCode::BAD_REQUEST;
/// let seed = br#"{"error":"invalid_grant","error_description":"Refresh token has expired or is invalid."}"#;
/// assert_eq!(VaultistError::decode_error(status, seed).unwrap().kind(status), ErrorKind::ReauthRequired);
/// let common = br#"{"message":"Merchant not found","errorId":"e-1","systemId":"vault","error":"COMMON"}"#;
/// let error = VaultistError::decode_error(status, common).unwrap();
/// assert_eq!(error.error, VaultistCode::Common);
/// assert_eq!(error.error_id.as_deref(), Some("e-1"));
/// assert_eq!(error.kind(status), ErrorKind::Rejected);
/// ```
#[token_endpoint(error)]
#[derive(Clone, Debug, PartialEq)]
pub struct VaultistError {
    /// The code.
    pub error: VaultistCode,
    /// The description (v3 shape).
    #[token(message)]
    pub error_description: Option<String>,
    /// The message (generic shape).
    pub message: Option<String>,
    /// The error's id (generic shape).
    #[token(rename = "errorId")]
    pub error_id: Option<String>,
    /// The failing system (generic shape).
    #[token(rename = "systemId")]
    pub system_id: Option<String>,
}

/// v2 `status` values.
#[token_endpoint(error_code, rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum VaultistV2Status {
    /// The refresh token has expired or is invalid (HTTP 401).
    #[token(kind = reauth_required, status = 401, refusal = invalid_refresh_token)]
    Unauthorized,
    /// The request is malformed, or names an unknown merchant (HTTP 400).
    #[token(kind = rejected, status = 400, refusal(bad_request, unknown_client))]
    BadRequest,
    /// The server failed (HTTP 500): retried, whatever the status it comes with.
    #[token(kind = transient, status = 500, refusal = server_error)]
    InternalServerError,
    /// Any other status: the HTTP status decides.
    Other(String),
}

/// v2 errors: `{"status", "message", "traceId", "errors": []}`.
///
/// ```
/// use token_core::{error::ErrorKind, codec::ErrorResponse};
/// use token_provider_vaultist::VaultistV2Error;
///
/// let body = br#"{"status":"UNAUTHORIZED","message":"The Token has expired on 2025-01-01T00:00:00.000Z","traceId":"TraceId unavailable","errors":[]}"#;
/// let status = http::StatusCode::UNAUTHORIZED;
/// assert_eq!(VaultistV2Error::decode_error(status, body).unwrap().kind(status), ErrorKind::ReauthRequired);
/// ```
#[token_endpoint(error, rename_all = "camelCase", status = 401,
                 on_status(status = 401, kind = reauth_required))]
#[derive(Clone, Debug, PartialEq)]
pub struct VaultistV2Error {
    /// The status name (`UNAUTHORIZED`).
    #[token(code)]
    pub status: VaultistV2Status,
    /// What went wrong.
    pub message: Option<String>,
    /// The trace id.
    pub trace_id: Option<String>,
    /// Field errors.
    pub errors: Option<Vec<Value>>,
}

impl VaultistV2Error {
    /// A v2 answer with `status` and `message`, no trace id and no field errors.
    pub fn new(status: VaultistV2Status, message: impl Into<String>) -> Self {
        Self {
            status,
            message: Some(message.into()),
            trace_id: None,
            errors: Some(Vec::new()),
        }
    }
}
