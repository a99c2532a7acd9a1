//! WeChat's refresh request, its answer and its `errcode` errors, as `#[token_endpoint]`
//! definitions: the client encodes with them and the sandbox serves them.

use token_core::expiry::ExpiresIn;
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

use crate::config::WeChatConfig;

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
    #[token(from = config.appid)]
    pub appid: String,
    /// The refresh token.
    pub refresh_token: RefreshToken,
}

/// Whom a WeChat session belongs to.
#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WeChatUser {
    /// The user, unique per Official Account or app.
    pub openid: Option<String>,
    /// The user across the developer's apps (only when bound to an Open Platform account);
    /// kept from the session when a refresh's answer does not name it.
    #[token(keep)]
    pub unionid: Option<String>,
}

/// `{access_token, expires_in, refresh_token, openid, scope}` (and `unionid` where sent).
#[token_endpoint(response, extras = WeChatUser)]
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
    /// `openid`, and `unionid` when sent.
    pub user: WeChatUser,
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
    /// "api minute-quota reach limit must slower retry next minute".
    #[token(kind = transient)]
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
