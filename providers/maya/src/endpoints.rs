//! Maya's endpoints as `#[token_endpoint]` definitions: the Maya Connect token endpoint (the
//! partner's app token, and the OAuth-shaped customer refresh) and the Mini App `POST /tokens`.
//!
//! The sandbox serves these same definitions the other way round.

use token_core::expiry::{ExpiresIn, UnixTime};
use token_core::{AccessToken, ClientSecret, RefreshToken, token_endpoint};

use crate::MayaConfig;

/// Maya Connect "Create Access Token" with `grant_type=client_credentials`: the partner app's
/// own token (3600 s), client id and secret in HTTP Basic. `POST {connect_url}/token`.
#[token_endpoint(post = "/token", form, rename_all = "snake_case", response = AppToken,
                 error = MayaError, config = MayaConfig,
                 body(name = "grant_type", value = "client_credentials"))]
#[derive(Debug, PartialEq)]
pub struct CreateAppToken {
    /// The partner's Maya Connect client id.
    #[token(basic_user, from = config.client_id)]
    pub client_id: String,
    /// The partner's Maya Connect client secret.
    #[token(basic_password, from = config.client_secret)]
    pub client_secret: ClientSecret,
    /// The requested scope, when the config names one.
    #[token(from = config.scope)]
    pub scope: Option<String>,
}

/// The app token answer: `{access_token, token_type, expires_in}`, no refresh token (the
/// manager obtains a new app token with the client credentials when it expires).
#[token_endpoint(response)]
#[derive(Debug)]
pub struct AppToken {
    /// The app token, sent as `Authorization: Bearer` on the Mini App refresh.
    #[token(access_token)]
    pub access_token: AccessToken,
    /// Its lifetime in seconds (3600).
    #[token(expiry)]
    pub expires_in: Option<ExpiresIn>,
    /// `Bearer`.
    #[token(token_type)]
    pub token_type: Option<String>,
}

/// Mini App customer-token refresh: `POST {api_url}/tokens` with a fresh UUIDv4
/// `Request-Reference-No`, the partner's app token as bearer and `{"refreshToken"}`.
#[token_endpoint(post = "/tokens", json, rename_all = "camelCase", response = MayaTokens,
                 error = MayaError)]
#[derive(Debug, PartialEq)]
pub struct MiniAppRefresh {
    /// A UUIDv4 per request.
    #[token(header, rename = "Request-Reference-No", from = uuid)]
    pub request_reference_no: String,
    /// The partner app's token (not the customer's).
    #[token(bearer, from = value("app_token"))]
    pub app_token: AccessToken,
    /// The customer's refresh token.
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

/// The customer tokens: `{"accessToken", "refreshToken", "expiresAt"}` with `expiresAt` in
/// UNIX seconds. The refresh answer and Maya's Session URL POST have this shape. Maya gives
/// no refresh-token expiry: see `refresh_token_lifetime_secs` in the crate docs.
#[token_endpoint(response, rename_all = "camelCase")]
#[derive(Debug)]
pub struct MayaTokens {
    /// The customer's access token.
    #[token(access_token)]
    pub access_token: AccessToken,
    /// The customer's refresh token.
    #[token(refresh_token)]
    pub refresh_token: Option<RefreshToken>,
    /// When the access token expires (UNIX seconds).
    #[token(expiry)]
    pub expires_at: Option<UnixTime>,
}

/// The forum answer's shape: an OAuth 2.0 refresh-token grant at Maya Connect's "Create
/// Access Token" endpoint, `POST {connect_url}/token`, client in HTTP Basic.
#[token_endpoint(post = "/token", form, rename_all = "snake_case", response = ConnectTokens,
                 error = MayaError, config = MayaConfig,
                 body(name = "grant_type", value = "refresh_token"))]
#[derive(Debug, PartialEq)]
pub struct ConnectRefresh {
    /// The partner's Maya Connect client id.
    #[token(basic_user, from = config.client_id)]
    pub client_id: String,
    /// The partner's Maya Connect client secret.
    #[token(basic_password, from = config.client_secret)]
    pub client_secret: ClientSecret,
    /// The customer's refresh token.
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

/// RFC 6749 section 5.1 answer of Maya Connect.
#[token_endpoint(response)]
#[derive(Debug)]
pub struct ConnectTokens {
    /// The customer's access token.
    #[token(access_token)]
    pub access_token: AccessToken,
    /// The customer's new refresh token.
    #[token(refresh_token)]
    pub refresh_token: Option<RefreshToken>,
    /// The access token's lifetime in seconds.
    #[token(expiry)]
    pub expires_in: Option<ExpiresIn>,
    /// `Bearer`.
    #[token(token_type)]
    pub token_type: Option<String>,
    /// The granted scope.
    #[token(scope)]
    pub scope: Option<String>,
}

/// Maya Connect's error codes and what each means for the session.
#[token_endpoint(error_code, rename_all = "snake_case")]
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum MayaCode {
    /// 400 `Invalid refresh token: <token>.`: the customer must authorize again.
    #[token(kind = reauth_required, refusal = invalid_refresh_token)]
    InvalidToken,
    /// 400, e.g. the account is locked: the customer must authorize again.
    #[token(kind = reauth_required)]
    InvalidGrant,
    /// 401 "Bad client credentials." / "Unauthorized grant type: refresh_token.".
    #[token(kind = misconfigured, status = 401, refusal(unknown_client, invalid_access_token))]
    InvalidClient,
    /// 400 "Missing grant type." and other malformed requests.
    #[token(kind = rejected, refusal = bad_request)]
    InvalidRequest,
    /// 400: the grant type is not enabled for the client.
    #[token(kind = rejected)]
    UnsupportedGrantType,
    /// 500: Maya failed; retried.
    #[token(kind = transient, status = 500, refusal = server_error)]
    ServerError,
    /// Any other code, kept as sent; classified by the HTTP status.
    #[token(other)]
    Other(String),
}

/// `{"error", "error_description"}`.
#[token_endpoint(error)]
#[derive(Clone, Debug, PartialEq)]
pub struct MayaError {
    /// The code.
    #[token(code)]
    pub error: MayaCode,
    /// The description (secrets it echoes are removed before it reaches an error message).
    #[token(message)]
    pub error_description: Option<String>,
}

impl MayaError {
    /// An error answer with `code` and `description`.
    pub fn new(code: MayaCode, description: impl Into<String>) -> Self {
        Self {
            error: code,
            error_description: Some(description.into()),
        }
    }
}
