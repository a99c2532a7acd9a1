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
//!   code, whatever the `type` and the status, except a server failure or throttling (5xx,
//!   429, 408, 425), retried whatever its code says; the `request_id` is kept in the
//!   [`ProviderError`](token_core::error::ProviderError) for Lazada's support.
//!   `IllegalRefreshToken` means the seller must authorize the app again;
//!   `IncompleteSignature`, `InvalidAppKey`, `MissingParameter` and
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

use token_core::prelude::*;

pub mod sandbox;

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

/// A Lazada Open Platform app. See the crate docs for the JSON keys.
#[token_endpoint(config)]
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LazadaConfig {
    /// The App Key, sent as `app_key`.
    pub app_key: String,
    /// The App Secret: the key of every request's HMAC-SHA256 `sign`, never sent.
    pub app_secret: ClientSecret,
}

/// `POST /auth/token/refresh`: `app_key`, `timestamp` (UNIX milliseconds), `sign_method` and
/// `sign` in the query, `refresh_token` in a form body; `sign` is the upper-hex HMAC-SHA256,
/// keyed with the app secret, of the API path followed by every parameter, sorted, as
/// key+value.
///
/// ```
/// use time::macros::datetime;
/// use token_core::{secret::AccessToken, codec::Endpoint, codec::FromContext, secret::RefreshToken, codec::RequestContext, token_set::TokenSet};
/// use token_provider_lazada::{LazadaConfig, RefreshAccessToken};
///
/// let config = LazadaConfig::new("123456", "helloworld");
/// let session: TokenSet = TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"));
/// let cx = RequestContext::for_refresh(&config, &session).with_now(datetime!(2018-02-05 08:46:32 UTC));
/// let request = RefreshAccessToken::from_context(&cx)?.encode_request(&"https://auth.lazada.com/rest".parse()?)?;
/// // echo -n "/auth/token/refreshapp_key123456refresh_tokenrtsign_methodsha256timestamp1517820392000" \
/// //   | openssl dgst -sha256 -hmac helloworld
/// assert_eq!(
///     request.uri(),
///     "https://auth.lazada.com/rest/auth/token/refresh?sign_method=sha256&app_key=123456&timestamp=1517820392000\
///      &sign=162C21CC9BD1CA6605AA5AD8D8213B44AB33E7BE973FBF50E06CDDFE3B069F47"
/// );
/// assert_eq!(request.body(), b"refresh_token=rt");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[token_endpoint(post = "/auth/token/refresh", form, response = LazadaTokens, error = LazadaError,
                 config = LazadaConfig, provider = "lazada", query(name = "sign_method", value = "sha256"),
                 sign(hmac_sha256, over(path, sorted_params), encoding = hex_upper, into = query("sign")))]
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshAccessToken {
    /// The app key.
    #[token(query, from = config.app_key, client_id)]
    pub app_key: String,
    /// The request time, UNIX milliseconds; Lazada refuses one 7200 s or more from its
    /// clock (the sandbox too).
    #[token(query, from = now_unix_ms, window = 7200)]
    pub timestamp: String,
    /// The seller's refresh token.
    pub refresh_token: RefreshToken,
    /// The app secret: the key of `sign`, never sent.
    #[token(signing_key, from = config.app_secret)]
    pub app_secret: ClientSecret,
}

/// The answer, flat with `"code": "0"`: the pair and both lifetimes in seconds; its other
/// fields are the seller the tokens are for, the session's extras [`LazadaSeller`].
#[token_endpoint(response, declare_extras = LazadaSeller, body(name = "code", value = "0"))]
#[derive(Clone, Debug, PartialEq)]
pub struct LazadaTokens {
    /// The access token.
    pub access_token: AccessToken,
    /// The new refresh token.
    pub refresh_token: Option<RefreshToken>,
    /// Seconds until the access token expires.
    pub expires_in: Option<ExpiresIn>,
    /// Seconds until the refresh token expires.
    pub refresh_expires_in: Option<ExpiresIn>,
    /// `seller_center` for a seller account.
    pub account_platform: Option<String>,
    /// The login account.
    pub account: Option<String>,
    /// The account's id (`null` for a `seller_center` account, the reference says).
    pub account_id: Option<String>,
    /// The account's country (`sg`, `my`, `ph`, `th`, `id`, `vn`).
    pub country: Option<String>,
    /// The seller and user ids per country (token creation's name): the refresh answers
    /// `country_user_info_list` instead, so a refresh keeps the session's.
    #[token(keep)]
    pub country_user_info: Option<serde_json::Value>,
    /// The seller and user ids per country (the refresh reference's name).
    pub country_user_info_list: Option<serde_json::Value>,
}

/// Lazada's error codes and what the manager does with each.
#[token_endpoint(error_code)]
#[derive(Clone, Debug, PartialEq)]
pub enum LazadaCode {
    /// The refresh token is invalid or expired: the seller logs in again.
    #[token(kind = reauth_required, refusal(invalid_refresh_token, expired_refresh_token))]
    IllegalRefreshToken,
    /// The app's tokens are bound to a service-market order and are not refreshed.
    #[token(code = "AUTH_TYPE_UNSUPPORTED", kind = misconfigured)]
    AuthTypeUnsupported,
    /// The signature does not match (a wrong app secret).
    #[token(kind = misconfigured, refusal = bad_signature)]
    IncompleteSignature,
    /// The app key is unknown.
    #[token(kind = misconfigured, refusal = unknown_client)]
    InvalidAppKey,
    /// A mandatory parameter is missing.
    #[token(kind = misconfigured, refusal = bad_request)]
    MissingParameter,
    /// The app's call limit is reached.
    #[token(kind = transient)]
    ApiCallLimit,
    /// Lazada is briefly unavailable.
    #[token(kind = transient, refusal = server_error)]
    ServiceTemporaryUnavailable,
    /// Any other code.
    Other(String),
}

/// A refusal, `{"type", "code", "message", "request_id"}`, sent with HTTP 200; the code
/// decides, whatever the `type` (`ISV`, `ISP` or `SYSTEM`), which is not read.
#[token_endpoint(error, status = 200, success_codes("0"))]
#[derive(Clone, Debug, PartialEq)]
pub struct LazadaError {
    /// The code.
    pub code: LazadaCode,
    /// What went wrong.
    pub message: Option<String>,
    /// Lazada's id of the request, for its support: the provider error's `request_id`.
    pub request_id: Option<String>,
}
