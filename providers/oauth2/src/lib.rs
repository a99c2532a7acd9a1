//! Generic OAuth 2.0 (RFC 6749) tokens for [`token_core`]: refresh a session, obtain tokens
//! with no user (`client_credentials`), and exchange an authorization code (with PKCE).
//!
//! - **Grants**: token-core's RFC 6749 definitions ([`token_core::oauth`]), posted to the
//!   configured token URL, form encoded: [`RefreshTokenGrant`] (section 6),
//!   [`ClientCredentialsGrant`] (section 4.4) and [`AuthorizationCodeGrant`] (section 4.1.3,
//!   with the RFC 7636 `code_verifier`).
//! - **Client authentication** by HTTP Basic or in the body (`client_auth`); a client without
//!   a secret (a public client) sends only `client_id` in the body.
//! - **Tolerant decoding** of what real servers send ([`OAuthTokens`], [`OAuthError`]):
//!   `expires_in` as a number, a numeric string or `null` (then the JWT `exp` claim of the
//!   access token, if it is a JWT); Keycloak's `refresh_expires_in`; any 2xx (201 Created
//!   too) and any content type (`text/plain` JSON); an `{"error"}` body on HTTP 200 is an
//!   error; an answer without `refresh_token` keeps the previous one.
//! - **Errors** ([`OAuthCode`]): `invalid_grant` and `invalid_token` mean re-authorization;
//!   `invalid_client`, `unauthorized_client` and `unsupported_grant_type` are a
//!   misconfiguration; `temporarily_unavailable`, `server_error`, 5xx and 429 are retried;
//!   everything else is a definitive refusal.
//! - **The provider** ([`OAuth2`]) ties them together for the
//!   [`TokenManager`](token_core::manager::TokenManager): it refreshes, issues by
//!   `client_credentials` when the config allows it, builds authorization URLs with a PKCE
//!   challenge ([`OAuth2::authorization_request`]) and exchanges the code that comes back
//!   ([`OAuth2::exchange_code`]).
//!
//! The token endpoint is given as a full URL, whatever its path:
//! `https://oauth2.googleapis.com/token`, `https://tenant.auth0.com/oauth/token`, Keycloak's
//! `https://id.example/realms/main/protocol/openid-connect/token`, GitHub's
//! `https://github.com/login/oauth/access_token`.
//!
//! # Configuration
//!
//! [`OAuth2Config`] reads from JSON (unknown keys are refused):
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `client_id` | string, required | the client id |
//! | `token_url` | URL, required | the token endpoint every grant is posted to |
//! | `client_secret` | string, optional | the client secret; without it the client is public and sends only `client_id` in the body |
//! | `client_auth` | `"basic"` (default) or `"body"` | where a confidential client sends its id and secret: HTTP Basic, or `client_id`/`client_secret` form fields |
//! | `scope` | string, optional | space-separated scopes, sent with every grant and in the authorization URL |
//! | `redirect_uri` | string, optional | sent with the authorization code exchange and in the authorization URL |
//! | `authorize_url` | URL, optional | the authorization endpoint; needed for [`OAuth2::authorization_request`] and the re-auth signal's URL |
//! | `client_credentials` | bool, default `false` | let the manager obtain tokens with `client_credentials` when a session has none or its refresh is refused (for service accounts only: a user's session would become the client's) |
//! | `reuse_window_secs` | integer, default 0 | how long the server answers a used refresh token again with the same pair; a refresh whose answer was lost is retried only inside it |
//! | `name` | string, default `"oauth2"` | the provider's name in logs and metrics; stores keep sessions under it, `client_id` and `token_url` (`oauth2:app-1@https://id.example/token`) |
//!
//! ```
//! use token_core::oauth::ClientAuth;
//! use token_provider_oauth2::OAuth2Config;
//!
//! let config: OAuth2Config = serde_json::from_str(r#"{
//!     "client_id": "app-1",
//!     "token_url": "https://github.com/login/oauth/access_token",
//!     "authorize_url": "https://github.com/login/oauth/authorize",
//!     "client_secret": "s3cret",
//!     "client_auth": "body",
//!     "scope": "payments:read payments:write",
//!     "reuse_window_secs": 300
//! }"#)?;
//! assert_eq!(config.client_auth, ClientAuth::Body);
//! let shown = format!("{config:?}");
//! assert!(shown.contains("client_secret: Some(ClientSecret([redacted]))"), "{shown}");
//! assert!(!shown.contains("s3cret"));
//! let json = |text: &str| serde_json::from_str::<OAuth2Config>(text);
//! assert!(json(r#"{"client_id": "a", "token_url": "https://id.example/token", "scopes": "x"}"#).is_err());
//! assert!(json(r#"{"client_id": "a"}"#).is_err(), "the token URL is required");
//! assert!(json(r#"{"client_id": "a", "token_url": "/token"}"#).is_err(), "and absolute");
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! Refreshing a session through the manager:
//!
//! ```no_run
//! use token_core::{secret::RefreshToken, manager::TokenManager};
//! use token_provider_oauth2::{OAuth2, OAuth2Config};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let config: OAuth2Config = serde_json::from_str(r#"{
//!     "client_id": "app-1",
//!     "client_secret": "s3cret",
//!     "token_url": "https://id.example/oauth/token"
//! }"#)?;
//! let provider = OAuth2::new(config);
//! let manager = TokenManager::builder(provider).build()?;
//! let token = manager
//!     .insert_refresh_token("customer-7", RefreshToken::new("rt-from-login"))
//!     .await?;
//! # let _ = token;
//! # Ok(()) }
//! ```
//!
//! [`RefreshTokenGrant`]: token_core::oauth::RefreshTokenGrant
//! [`ClientCredentialsGrant`]: token_core::oauth::ClientCredentialsGrant
//! [`AuthorizationCodeGrant`]: token_core::oauth::AuthorizationCodeGrant
//! [`OAuthTokens`]: token_core::oauth::OAuthTokens
//! [`OAuthError`]: token_core::oauth::OAuthError
//! [`OAuthCode`]: token_core::oauth::OAuthCode
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod endpoints;
mod provider;
pub mod sandbox;

pub use config::OAuth2Config;
pub use endpoints::AuthorizationRequest;
pub use provider::OAuth2;
