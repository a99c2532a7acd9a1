//! Paymentsgate's issue and refresh endpoints, their answer and their errors, as
//! `#[token_endpoint]` definitions: the client encodes with them and the sandbox serves them.

use serde_json::Value;
use token_core::codec::Endpoint;
use token_core::expiry::ExpiresIn;
use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};

use crate::config::PaymentsgateConfig;

/// The issue endpoint's path.
pub const ISSUE_PATH: &str = <IssueServiceToken as Endpoint>::PATH;
/// The refresh endpoint's path.
pub const REFRESH_PATH: &str = <RefreshServiceToken as Endpoint>::PATH;

/// `POST /auth/token` with the account's credentials: a new pair, no user involved.
///
/// ```
/// use token_core::{codec::Endpoint, codec::FromContext, codec::RequestContext};
/// use token_provider_paymentsgate::{IssueServiceToken, PaymentsgateConfig};
///
/// let config = PaymentsgateConfig::new("acct-1", "cHVibGljLWtleQ==");
/// let issue = IssueServiceToken::from_context(&RequestContext::new(&config))?;
/// let request = issue.encode_request(&"https://secure.sandbox.paymentsgate.io".parse()?)?;
/// assert_eq!(request.uri(), "https://secure.sandbox.paymentsgate.io/auth/token");
/// assert_eq!(request.body(), br#"{"account_id":"acct-1","public_key":"cHVibGljLWtleQ=="}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[token_endpoint(post = "/auth/token", json, response = PaymentsgateTokens, error = IssueError,
                 config = PaymentsgateConfig)]
#[derive(Clone, Debug, PartialEq)]
pub struct IssueServiceToken {
    /// The service account id.
    #[token(from = config.account_id)]
    pub account_id: String,
    /// The Base64 of the account's PEM public key.
    #[token(from = config.public_key)]
    pub public_key: ClientSecret,
}

/// `POST /auth/token/refresh` with `{"refresh_token"}`, and the current access token as
/// bearer unless the config turns it off (then `access_token` is `None`).
///
/// ```
/// use token_core::{secret::AccessToken, codec::Endpoint, codec::FromContext, secret::RefreshToken, codec::RequestContext, token_set::TokenSet};
/// use token_provider_paymentsgate::{PaymentsgateConfig, RefreshServiceToken};
///
/// let config = PaymentsgateConfig::new("acct-1", "key");
/// let session: TokenSet = TokenSet::new(AccessToken::new("eyJ.at")).with_refresh_token(RefreshToken::new("rt"));
/// let refresh = RefreshServiceToken::from_context(&RequestContext::for_refresh(&config, &session))?;
/// let request = refresh.encode_request(&"https://secure.sandbox.paymentsgate.io".parse()?)?;
/// assert_eq!(request.headers()["authorization"], "Bearer eyJ.at");
/// assert_eq!(request.body(), br#"{"refresh_token":"rt"}"#);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[token_endpoint(post = "/auth/token/refresh", json, response = PaymentsgateTokens,
                 error = PaymentsgateError, config = PaymentsgateConfig, provider = "paymentsgate")]
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshServiceToken {
    /// The current access token, sent as `Authorization: Bearer`.
    #[token(bearer)]
    pub access_token: Option<AccessToken>,
    /// The refresh token.
    pub refresh_token: RefreshToken,
}

/// `{access_token, refresh_token, expires_in}`; without `expires_in`, the access token's JWT
/// `exp` claim gives the expiry.
#[token_endpoint(response, jwt_expiry)]
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentsgateTokens {
    /// The access token (a JWT).
    pub access_token: AccessToken,
    /// The new refresh token.
    pub refresh_token: Option<RefreshToken>,
    /// Seconds until the access token expires.
    pub expires_in: Option<ExpiresIn>,
}

/// A refused refresh, `{error, message, details?, statusCode?}`: 400 and 401 mean the pair
/// is dead (the manager issues a new one), 403 a misconfiguration, 429 a retry.
///
/// ```
/// use token_core::{error::ErrorKind, codec::ErrorResponse};
/// use token_provider_paymentsgate::PaymentsgateError;
///
/// let body = br#"{"error":"Unauthorized","message":"Refresh token expired","statusCode":401}"#;
/// let error = PaymentsgateError::decode_error(http::StatusCode::UNAUTHORIZED, body).unwrap();
/// assert_eq!(error.kind(http::StatusCode::UNAUTHORIZED), ErrorKind::ReauthRequired);
/// assert_eq!(error.kind(http::StatusCode::FORBIDDEN), ErrorKind::Misconfigured);
/// ```
#[token_endpoint(error, rename_all = "camelCase",
                 on_status(status = 400, kind = reauth_required),
                 on_status(status = 401, kind = reauth_required),
                 on_status(status = 403, kind = misconfigured),
                 on_status(status = 429, kind = transient),
                 refusal(bad_request, code = "Bad Request", status = 400),
                 refusal(invalid_refresh_token, code = "Unauthorized", status = 401),
                 refusal(invalid_access_token, code = "Unauthorized", status = 401),
                 refusal(server_error, code = "Internal Server Error", status = 500))]
#[derive(Clone, Debug, PartialEq)]
pub struct PaymentsgateError {
    /// The error name (`Unauthorized`).
    pub error: String,
    /// What went wrong.
    pub message: Option<String>,
    /// More about it, in any shape.
    pub details: Option<Value>,
    /// The HTTP status, repeated in the body.
    #[token(http_status)]
    pub status_code: Option<u16>,
}

/// A refused issue call, same shape as [`PaymentsgateError`]: 400, 401 and 403 mean the
/// account credentials are wrong (a misconfiguration), 429 a retry.
#[token_endpoint(error, rename_all = "camelCase",
                 on_status(status = 400, kind = misconfigured),
                 on_status(status = 401, kind = misconfigured),
                 on_status(status = 403, kind = misconfigured),
                 on_status(status = 429, kind = transient),
                 refusal(bad_request, code = "Bad Request", status = 400),
                 refusal(unknown_client, code = "Unauthorized", status = 401),
                 refusal(server_error, code = "Internal Server Error", status = 500))]
#[derive(Clone, Debug, PartialEq)]
pub struct IssueError {
    /// The error name (`Unauthorized`).
    pub error: String,
    /// What went wrong.
    pub message: Option<String>,
    /// More about it, in any shape.
    pub details: Option<Value>,
    /// The HTTP status, repeated in the body.
    #[token(http_status)]
    pub status_code: Option<u16>,
}
