//! Maya's endpoints: Maya Connect's token endpoint is RFC 6749's, so the partner's app token
//! (`client_credentials`) and the OAuth-shaped customer refresh are token-core's
//! [`ClientCredentialsGrant`] and [`RefreshTokenGrant`] with the client [`MayaConfig::connect_client`]
//! builds; the Mini App `POST /tokens` is defined here, answering errors with RFC 6749's
//! [`OAuthError`] body.
//!
//! The sandbox serves these same definitions the other way round.
//!
//! [`ClientCredentialsGrant`]: token_core::oauth::ClientCredentialsGrant
//! [`RefreshTokenGrant`]: token_core::oauth::RefreshTokenGrant
//! [`MayaConfig::connect_client`]: crate::MayaConfig::connect_client

use token_core::expiry::UnixTime;
use token_core::oauth::OAuthError;
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

/// Mini App customer-token refresh: `POST {api_url}/tokens` with a fresh UUIDv4
/// `Request-Reference-No`, the partner's app token as bearer and `{"refreshToken"}`.
#[token_endpoint(post = "/tokens", json, rename_all = "camelCase", response = MayaTokens,
                 error = OAuthError)]
#[derive(Debug, PartialEq)]
pub struct MiniAppRefresh {
    /// A UUIDv4 per request.
    #[token(header, rename = "Request-Reference-No", from = uuid)]
    pub request_reference_no: String,
    /// The partner app's token (not the customer's).
    #[token(bearer, from = value("app_token"))]
    pub app_token: AccessToken,
    /// The customer's refresh token.
    pub refresh_token: RefreshToken,
}

/// The customer tokens: `{"accessToken", "refreshToken", "expiresAt"}` with `expiresAt` in
/// UNIX seconds. The refresh answer and Maya's Session URL POST have this shape. Maya gives
/// no refresh-token expiry: see `refresh_token_lifetime_secs` in the crate docs.
#[token_endpoint(response, rename_all = "camelCase")]
#[derive(Debug)]
pub struct MayaTokens {
    /// The customer's access token.
    pub access_token: AccessToken,
    /// The customer's refresh token.
    pub refresh_token: Option<RefreshToken>,
    /// When the access token expires (UNIX seconds).
    #[token(expiry)]
    pub expires_at: Option<UnixTime>,
}
