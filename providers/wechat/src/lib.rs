//! WeChat (Weixin) OAuth 2.0 web authorization for [`token_core`]: the user's access token
//! kept fresh with its refresh token.
//!
//! - **Refresh** ([`SnsRefreshToken`], WeChat's `snsRefreshToken`): `GET
//!   https://api.weixin.qq.com/sns/oauth2/refresh_token?appid=APPID&grant_type=refresh_token&refresh_token=REFRESH_TOKEN`,
//!   no body and no app secret.
//! - **Answer** ([`WeChatTokens`]): `{"access_token", "expires_in": 7200, "refresh_token",
//!   "openid", "scope"}`; `openid` (and `unionid`, when sent) land in [`WeChatUser`], `scope`
//!   in the set's scope.
//! - **Errors** ([`WeChatError`]): `{"errcode": 40030, "errmsg": "invalid refresh_token"}` on
//!   HTTP 200, told from a success by its `errcode` (absent or `0` is a success). `40030`
//!   (invalid refresh token), `42002` (refresh token timeout) and `42007` (the user changed
//!   their password: both tokens are void) mean the user must authorize again; `40013`
//!   (invalid appid) and `40125` (invalid appsecret) are a misconfiguration; `-1` (system
//!   busy) and the quota codes `45009` and `45011` (after a minute) are retried; any other
//!   code is a definitive refusal.
//!
//! Sources: the Official Account documents "Refresh user authorization credentials"
//! (`developers.weixin.qq.com/doc/service/en/api/webdev/access/api_snsrefreshtoken.html`:
//! the request, the answer's fields and sample, a 30-day refresh token, 50,000 calls a minute),
//! the web-app document "刷新access_token有效期" (the error sample
//! `{"errcode":40030,"errmsg":"invalid refresh_token"}`; a refresh before the access token
//! expires keeps it and extends its expiry), and the global return codes
//! (`developers.weixin.qq.com/doc/offiaccount/en/Getting_Started/Global_Return_Code.html`:
//! `-1`, `40013`, `40030`, `42002` "refresh_token timeout", `45009`; `42007` from the
//! Chinese edition of that table, "用户修改微信密码，accesstoken 和 refreshtoken 失效，需要重新授权";
//! `45011` from the Channels shop's code table).
//!
//! Assumptions the documents do not settle:
//! - whether a refresh rotates the refresh token: the answer carries one, and no document
//!   says it changes. The crate keeps whatever the answer sends, and the sandbox keeps the
//!   token and sends it again ([`RefreshRotation::KeepAndResend`](token_core::issuer::RefreshRotation)),
//!   its expiry fixed at 30 days from the authorization;
//! - `unionid`: documented for the code exchange (`/sns/oauth2/access_token`), not for the
//!   refresh answer; read when present, otherwise the session keeps the one it has;
//! - `40125` is documented for calls that send the app secret; the refresh sends none, so it
//!   is mapped (misconfigured) only in case WeChat answers it here;
//! - the quota codes are transient; `45011` asks to "retry next minute", so it is read as a
//!   `Retry-After: 60` (no further call for that session until the minute has passed: the
//!   manager's cooldown); `45009` (a daily quota) names no time, is retried like any transient
//!   error, will not clear within the manager's retries and surfaces as a transient failure;
//! - the refresh token's lifetime: 30 days for an Official Account's web authorization, 180
//!   days for a mobile app on the Open Platform ("拥有较长的有效期(180 天)且无法续期": it
//!   cannot be extended); the answer does not say, so the session's refresh expiry stays
//!   unknown and the sandbox uses 30 days;
//! - a refresh before the access token expires keeps the same access token with a new
//!   expiry, the web-app document says; the sandbox mints a new one each time (the manager
//!   treats both alike);
//! - other global codes a malformed refresh could meet (`40002` grant type, `41002` missing
//!   appid, `41003` missing refresh token, `40029`, which the new reference lists for this
//!   call by mistake) are not mapped: refusals, never re-auth; `is_snapshotuser` is sent by
//!   the code exchange only and is not read;
//! - the codes come as integers; one written as a string (`"40030"`, `" 40030 "`) or a
//!   whole float (`40030.0`) reads the same, and so does the success code `0` written
//!   `"00"` or `"+0"` (codes are compared as integers).
//!
//! # Configuration
//!
//! [`WeChatConfig`] reads from JSON (unknown keys are refused):
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `appid` | string, required | the Official Account's (or app's) `appid` |
//!
//! ```no_run
//! use token_core::{secret::RefreshToken, manager::TokenManager};
//! use token_provider_wechat::{WeChat, WeChatConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = WeChat::new("https://api.weixin.qq.com".parse()?, WeChatConfig::new("wx520c15f417810387"));
//! let manager = TokenManager::builder(provider).build()?;
//! // The refresh token from the code exchange, stored once; the manager refreshes from then on.
//! let token = manager
//!     .insert_refresh_token("o6_bmjrPTlm6_2sgVt7hMZOPfL2M", RefreshToken::new("rt-from-code-exchange"))
//!     .await?;
//! # let _ = token;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

use token_core::prelude::*;

pub mod sandbox;

/// WeChat at `base_url` (`https://api.weixin.qq.com`): refreshes with [`SnsRefreshToken`],
/// keeping the session's `unionid` when the answer does not name it. It cannot obtain tokens
/// without the user's authorization: a dead refresh token is a re-auth signal.
///
/// ```
/// use token_core::provider::Provider;
/// use token_provider_wechat::{WeChat, WeChatConfig};
///
/// let provider = WeChat::new("https://api.weixin.qq.com".parse().unwrap(), WeChatConfig::new("wx1"));
/// assert_eq!(provider.name(), "wechat");
/// assert_eq!(provider.config().appid, "wx1");
/// assert!(!provider.can_issue());
/// ```
pub type WeChat = token_core::provider::RefreshProvider<SnsRefreshToken>;

/// A WeChat Official Account (or Open Platform app). See the crate docs for the JSON keys.
///
/// ```
/// use token_provider_wechat::WeChatConfig;
///
/// let config: WeChatConfig = serde_json::from_str(r#"{"appid": "wx520c15f417810387"}"#)?;
/// assert_eq!(config, WeChatConfig::new("wx520c15f417810387"));
/// assert!(serde_json::from_str::<WeChatConfig>(r#"{"appid": "wx1", "secret": "s"}"#).is_err());
/// # Ok::<(), serde_json::Error>(())
/// ```
#[token_endpoint(config)]
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WeChatConfig {
    /// The `appid` the refresh token was issued to.
    pub appid: String,
}

/// `GET /sns/oauth2/refresh_token?appid=APPID&grant_type=refresh_token&refresh_token=...`
/// (WeChat's `snsRefreshToken`): no body, no app secret.
///
/// ```
/// use token_core::{secret::AccessToken, codec::Endpoint, codec::FromContext, secret::RefreshToken, codec::RequestContext, token_set::TokenSet};
/// use token_provider_wechat::{SnsRefreshToken, WeChatConfig, WeChatUser};
///
/// let config = WeChatConfig::new("wx520c15f417810387");
/// let session = TokenSet::<WeChatUser>::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"));
/// let request = SnsRefreshToken::from_context(&RequestContext::for_refresh(&config, &session))?
///     .encode_request(&"https://api.weixin.qq.com".parse()?)?;
/// assert_eq!(request.method(), "GET");
/// assert_eq!(
///     request.uri(),
///     "https://api.weixin.qq.com/sns/oauth2/refresh_token?grant_type=refresh_token&appid=wx520c15f417810387&refresh_token=rt"
/// );
/// assert!(request.body().is_empty());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[token_endpoint(get = "/sns/oauth2/refresh_token", response = WeChatTokens, error = WeChatError,
                 config = WeChatConfig, provider = "wechat", query(name = "grant_type", value = "refresh_token"))]
#[derive(Clone, Debug, PartialEq)]
pub struct SnsRefreshToken {
    /// The Official Account's (or app's) `appid`.
    #[token(from = config.appid, client_id)]
    pub appid: String,
    /// The refresh token.
    pub refresh_token: RefreshToken,
}

/// `{access_token, expires_in, refresh_token, openid, scope}` (and `unionid` where sent);
/// `openid` and `unionid` are the session's extras, [`WeChatUser`].
#[token_endpoint(response, declare_extras = WeChatUser)]
#[derive(Clone, Debug, PartialEq)]
pub struct WeChatTokens {
    /// The web authorization access token (not the Official Account's base `access_token`).
    pub access_token: AccessToken,
    /// Seconds until the access token expires (7200).
    pub expires_in: Option<ExpiresIn>,
    /// The refresh token (30 days from the user's authorization).
    pub refresh_token: Option<RefreshToken>,
    /// The granted scopes, comma-separated (`snsapi_userinfo`).
    pub scope: Option<String>,
    /// The user, unique per Official Account or app (the payer of WeChat Pay's JSAPI
    /// orders); it never changes for an app, so it is kept from the session when a refresh's
    /// answer does not name it.
    #[token(keep)]
    pub openid: Option<String>,
    /// The user across the developer's apps (only when bound to an Open Platform account);
    /// kept from the session when a refresh's answer does not name it.
    #[token(keep)]
    pub unionid: Option<String>,
}

/// WeChat's global return codes that a refresh meets.
#[token_endpoint(error_code)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WeChatCode {
    /// "invalid refresh_token": unknown or revoked; the user authorizes again.
    #[token(kind = reauth_required, refusal = invalid_refresh_token)]
    InvalidRefreshToken = 40030,
    /// "refresh_token timeout": expired (30 days); the user authorizes again.
    #[token(kind = reauth_required, refusal = expired_refresh_token)]
    RefreshTokenTimeout = 42002,
    /// The user changed their WeChat password: the access and refresh tokens are void;
    /// the user authorizes again.
    #[token(kind = reauth_required)]
    PasswordChanged = 42007,
    /// "invalid appid".
    #[token(kind = misconfigured, refusal = unknown_client)]
    InvalidAppId = 40013,
    /// "invalid appsecret".
    #[token(kind = misconfigured)]
    InvalidAppSecret = 40125,
    /// "System is busy. Try again later."
    #[token(kind = transient, refusal = server_error)]
    SystemBusy = -1,
    /// "Invalid parameter": the request could not be read.
    #[token(refusal = bad_request)]
    InvalidParameter = 40035,
    /// "reach max api daily quota limit".
    #[token(kind = transient)]
    DailyQuotaReached = 45009,
    /// "api minute-quota reach limit must slower retry next minute": waited out for a
    /// minute, as a `Retry-After: 60`.
    #[token(kind = transient, retry_after = 60)]
    MinuteQuotaReached = 45011,
    /// Any other code: a refusal on HTTP 200.
    Other(String),
}

/// `{"errcode": 40030, "errmsg": "invalid refresh_token"}`, sent with HTTP 200; an
/// `errcode` of `0` is a success.
///
/// ```
/// use token_core::{error::ErrorKind, codec::ErrorResponse};
/// use token_provider_wechat::{WeChatCode, WeChatError};
///
/// let ok = http::StatusCode::OK;
/// let error = WeChatError::decode_error(ok, br#"{"errcode":40030,"errmsg":"invalid refresh_token"}"#).unwrap();
/// assert_eq!(error.errcode, WeChatCode::InvalidRefreshToken);
/// assert_eq!(error.kind(ok), ErrorKind::ReauthRequired);
/// assert!(WeChatError::decode_error(ok, br#"{"errcode":0,"errmsg":"ok"}"#).is_none());
/// ```
#[token_endpoint(error, status = 200, success_codes(0))]
#[derive(Clone, Debug, PartialEq)]
pub struct WeChatError {
    /// The return code.
    pub errcode: WeChatCode,
    /// What went wrong.
    pub errmsg: Option<String>,
}
