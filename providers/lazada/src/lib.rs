//! Lazada Open Platform seller tokens for [`token_core`]: the refresh is a signed request,
//! declared with `#[token_endpoint]` and no hand-written codec code.
//!
//! - **Refresh** ([`RefreshAccessToken`]): `POST https://auth.lazada.com/rest/auth/token/refresh`
//!   with the common parameters `app_key`, `timestamp` (UNIX milliseconds), `sign_method=sha256`
//!   and `sign`, and the business parameter `refresh_token`. `sign` is the upper-hex
//!   HMAC-SHA256, keyed with the app secret, of the API path followed by every parameter,
//!   sorted by name, as name+value (Lazada's "Signature algorithm" page; its worked example
//!   is a test of this crate).
//! - **Answer** ([`LazadaTokens`]): flat, with `"code": "0"`, `access_token`,
//!   `refresh_token`, `expires_in` and `refresh_expires_in` in seconds; `account_platform`,
//!   `account`, `account_id`, `country` and the per-country seller ids (`country_user_info`, or
//!   `country_user_info_list` as the refresh reference names it) are the session's
//!   [`LazadaSeller`] extras.
//! - **Errors** ([`LazadaError`], `{"type", "code", "message", "request_id"}`): decided by the
//!   code, whatever the status. `IllegalRefreshToken` means the seller must authorize the app
//!   again; `IncompleteSignature`, `InvalidAppKey`, `MissingParameter` and
//!   `AUTH_TYPE_UNSUPPORTED` are misconfigurations; `ApiCallLimit` and
//!   `ServiceTemporaryUnavailable` are retried.
//!
//! Sources: Lazada's API reference for `/auth/token/refresh`
//! (<https://open.lazada.com/apps/doc/api?path=%2Fauth%2Ftoken%2Frefresh>), "Seller
//! authorization introduction" (<https://open.lazada.com/apps/doc/doc?nodeId=10777&docId=108260>),
//! and the signature page (<https://open.lazada.com/apps/doc/doc?nodeId=10450&docId=108068>,
//! mirrored at open.alitrip.com articleId=108069). Assumptions not confirmed there:
//!
//! - The reference says `GET/POST`; this crate POSTs, with the common parameters in the
//!   query and `refresh_token` in a form body (as Lazada's SDKs do), so the refresh token
//!   stays out of URLs.
//! - The reference's samples are `key=value` lines, not JSON: the JSON wire form with
//!   `"code": "0"` and `request_id` on success, and the error shape with `type`, come from
//!   Lazada's SDKs and answers seen in the wild, not from the reference.
//! - Errors are assumed to arrive with HTTP 200 (the code decides either way).
//! - `IllegalRefreshToken` and `AUTH_TYPE_UNSUPPORTED` are the refresh reference's codes;
//!   `IncompleteSignature` and `MissingParameter` are token creation's; `InvalidAppKey`,
//!   `ApiCallLimit` and `ServiceTemporaryUnavailable` are Lazada's common error codes as the
//!   SDKs name them, not listed on the refresh page.
//! - Lifetimes: 30 days (access) and 180 days (refresh) for a live app, 7 and 14 days in
//!   test status; the answer's values are trusted (`refresh_expires_in` is a string in token
//!   creation's reference and a number in the refresh's: both read).
//! - The `timestamp` must be less than 7200 s from Lazada's clock ("Calling parameters");
//!   the sandbox refuses one outside that window, as `MissingParameter` (Lazada documents
//!   no code of its own for it), and a request without `sign` as `MissingParameter`, as
//!   token creation's reference does.
//! - Empty parameters: the signature page's text signs every parameter, its Java sample
//!   skips those with an empty value, and Lazada's Python and Ruby SDKs sign them. The
//!   refresh never sends an empty parameter, so the readings agree on its requests; the
//!   sandbox signs every parameter it receives.
//! - `account_id` is a string (`null` for a seller_center account); a number would be
//!   dropped, the tokens kept. `country_user_info_list` is documented as an array of
//!   `{country, seller_id, user_id, short_code}` but sampled as an object keyed by
//!   country: kept as JSON, whichever comes.
//! - An unknown code is a refusal whatever its `type` (`ISP`, a back-end error Lazada says
//!   to retry later, included): never re-auth, and not retried.
//!
//! # Configuration
//!
//! [`LazadaConfig`] reads from JSON (unknown keys are refused):
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `app_key` | string, required | the App Key |
//! | `app_secret` | string, required | the App Secret, the key of every `sign` |
//!
//! ```
//! use token_provider_lazada::LazadaConfig;
//!
//! let config: LazadaConfig = serde_json::from_str(r#"{"app_key": "123456", "app_secret": "helloworld"}"#)?;
//! let shown = format!("{config:?}");
//! assert!(shown.contains("ClientSecret([redacted])") && !shown.contains("helloworld"), "{shown}");
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! ```no_run
//! use token_core::manager::TokenManager;
//! use token_provider_lazada::{AUTH_URL, Lazada, LazadaConfig};
//!
//! # async fn run(config: LazadaConfig, refresh_token: &str) -> Result<(), Box<dyn std::error::Error>> {
//! let manager = TokenManager::builder(Lazada::new(AUTH_URL.parse()?, config)).build()?;
//! // The refresh token of the seller's authorization (`/auth/token/create`).
//! manager.insert_refresh_token("seller-1", token_core::secret::RefreshToken::new(refresh_token)).await?;
//! let token = manager.access_token("seller-1").await?;
//! # let _ = token;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod endpoints;
#[cfg(feature = "sandbox")]
#[cfg_attr(docsrs, doc(cfg(feature = "sandbox")))]
pub mod sandbox;

pub use config::LazadaConfig;
pub use endpoints::{LazadaCode, LazadaError, LazadaSeller, LazadaTokens, RefreshAccessToken};

/// Lazada's token service for every country: `https://auth.lazada.com/rest`.
pub const AUTH_URL: &str = "https://auth.lazada.com/rest";

/// Lazada at `base_url` ([`AUTH_URL`] in production): refreshes a seller's tokens with the
/// signed [`RefreshAccessToken`]; a refused refresh token means the seller must authorize
/// the app again.
///
/// ```
/// use token_core::provider::Provider;
/// use token_provider_lazada::{AUTH_URL, Lazada, LazadaConfig};
///
/// let provider = Lazada::new(AUTH_URL.parse().unwrap(), LazadaConfig::new("123456", "secret"));
/// assert_eq!(provider.name(), "lazada");
/// assert!(!provider.can_issue());
/// ```
pub type Lazada = token_core::provider::RefreshProvider<RefreshAccessToken>;
