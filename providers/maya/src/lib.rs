//! Maya (PayMaya) Mini App tokens for [`token_core`]: a customer session that needs a second,
//! partner-level token to refresh, and whose first tokens arrive from Maya at the partner's
//! Session URL.
//!
//! - **The app token.** Maya Connect "Create Access Token" with `grant_type=client_credentials`
//!   and the client id and secret in HTTP Basic: token-core's RFC 6749
//!   [`ClientCredentialsGrant`](token_core::oauth::ClientCredentialsGrant) with
//!   [`MayaConfig::connect_client`]. [`MayaApp`] is a
//!   [`Provider`](token_core::provider::Provider) that can issue, so a core
//!   [`TokenManager<MayaApp>`](token_core::manager::TokenManager) caches it and obtains a new one when
//!   it expires.
//! - **Customer refresh** ([`Maya`]). By default the Mini App `POST {api_url}/tokens`
//!   ([`MiniAppRefresh`]) with `Authorization: Bearer <app token>`, a fresh UUIDv4
//!   `Request-Reference-No` and `{"refreshToken"}`, answered `{"accessToken", "refreshToken",
//!   "expiresAt"}` with `expiresAt` in UNIX seconds. With `"refresh": "oauth"` the forum
//!   answer's shape instead: `grant_type=refresh_token` at Maya Connect (token-core's
//!   [`RefreshTokenGrant`](token_core::oauth::RefreshTokenGrant)).
//!   When `/tokens` answers HTTP 401 (the app token was refused), whatever its body, the app
//!   token is renewed and the refresh sent once more; a 401 to that one is a
//!   misconfiguration (the partner may not call `/tokens`), never a re-auth of the customer.
//! - **First tokens** are not obtained by the partner: Maya POSTs them to the partner's Session
//!   URL. [`SessionReceiver`] validates that POST, stores the tokens under a new single-use
//!   `sessionId` and answers `{"sessionId"}`; the partner's front-end then
//!   [redeems](SessionReceiver::redeem) the `sessionId` once. The receiver keeps its records
//!   in the manager's store beside the tokens, so replicas sharing a `PostgresStore` can take
//!   the POST on one and the redemption on another. An axum adapter is behind the `axum`
//!   feature.
//! - **Errors**: Maya Connect and `/tokens` answer RFC 6749's `{"error",
//!   "error_description"}`, read as token-core's
//!   [`OAuthError`](token_core::oauth::OAuthError): `invalid_token` and `invalid_grant` mean
//!   re-authorization, and the re-auth signal carries the Maya Connect authorize URL built
//!   from the config; `invalid_client` and `unsupported_grant_type` (the grant is not enabled
//!   for the client) are a misconfiguration; `invalid_request` is a definitive refusal; 5xx
//!   and 429 are retried.
//! - **Expiry of both customer tokens.** Maya's answers give only the access token's
//!   `expiresAt`; the refresh token's lifetime is not published. Set
//!   `refresh_token_lifetime_secs` to the lifetime agreed with Maya and every new refresh token
//!   gets `refresh_expires_at = received + lifetime`: the manager then refreshes a session in
//!   use before its refresh token expires, and signals re-auth (with the authorize URL) without
//!   calling Maya once it has.
//!
//! # Configuration
//!
//! [`MayaConfig`] reads from JSON (unknown keys are refused):
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `client_id` | string, required | Maya Connect client id (HTTP Basic user for the app token) |
//! | `client_secret` | string, required | Maya Connect client secret (HTTP Basic password) |
//! | `connect_url` | URL, required | Maya Connect's base URL; the token endpoint is `{connect_url}/token` |
//! | `api_url` | URL, default `https://op-sandbox.paymaya.com` | the Mini App API host; customer refresh is `{api_url}/tokens` |
//! | `refresh` | `"mini_app"` (default) or `"oauth"` | which customer refresh shape to use |
//! | `authorize_url` | URL, default `{connect_url}/authorize` | Maya Connect's authorize endpoint, for the re-auth signal |
//! | `redirect_uri` | string, optional | added to the authorize URL |
//! | `scope` | string, optional | requested with the app token and added to the authorize URL |
//! | `refresh_token_lifetime_secs` | integer, optional | the customer refresh token's lifetime, since Maya does not send it |
//! | `reuse_window_secs` | integer, default 0 | how long Maya answers a used refresh token again with the same pair (not published: keep 0 unless Maya confirms one) |
//!
//! ```
//! use token_provider_maya::{MayaConfig, RefreshShape};
//!
//! let config: MayaConfig = serde_json::from_str(r#"{
//!     "client_id": "partner-1",
//!     "client_secret": "s3cret",
//!     "connect_url": "https://connect.example/oauth",
//!     "redirect_uri": "https://partner.example/maya/callback",
//!     "refresh_token_lifetime_secs": 2592000
//! }"#)?;
//! assert_eq!(config.api_url.as_str(), "https://op-sandbox.paymaya.com/");
//! assert_eq!(config.refresh, RefreshShape::MiniApp);
//! assert_eq!(
//!     config.authorize_url_for("customer-7").unwrap().as_str(),
//!     "https://connect.example/oauth/authorize?response_type=code&client_id=partner-1\
//!      &redirect_uri=https%3A%2F%2Fpartner.example%2Fmaya%2Fcallback&state=customer-7",
//! );
//! let shown = format!("{config:?}");
//! assert!(shown.contains("client_secret: ClientSecret([redacted])"), "{shown}");
//! assert!(!shown.contains("s3cret"));
//! # Ok::<(), serde_json::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "axum")]
pub mod axum;
mod config;
mod endpoints;
mod provider;
mod receiver;
pub mod sandbox;

pub use config::{MayaConfig, RefreshShape};
pub use endpoints::{MayaTokens, MiniAppRefresh};
pub use provider::{APP_SESSION, Maya, MayaApp};
pub use receiver::{DEFAULT_MAX_SESSIONS, RedeemError, SESSION_URL_NAMESPACE, SessionReceiver};
