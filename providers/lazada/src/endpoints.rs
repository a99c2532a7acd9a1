//! Lazada's signed refresh, its answer and its errors, as `#[token_endpoint]` definitions:
//! the client encodes and signs with them, and the sandbox decodes and verifies with them.

use serde_json::Value;
use token_core::expiry::ExpiresIn;
use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};

use crate::config::LazadaConfig;

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
    #[token(query, from = config.app_key)]
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

/// The seller the tokens are for: what the answer says besides the tokens.
#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct LazadaSeller {
    /// `seller_center` for a seller account.
    pub account_platform: Option<String>,
    /// The login account.
    pub account: Option<String>,
    /// The account's id (`null` for a `seller_center` account, the reference says).
    pub account_id: Option<String>,
    /// The account's country (`sg`, `my`, `ph`, `th`, `id`, `vn`).
    pub country: Option<String>,
    /// The seller and user ids per country (token creation's name).
    pub country_user_info: Option<Value>,
    /// The seller and user ids per country (the refresh reference's name).
    pub country_user_info_list: Option<Value>,
}

/// The answer, flat with `"code": "0"`: the pair and both lifetimes in seconds.
#[token_endpoint(response, extras = LazadaSeller, body(name = "code", value = "0"))]
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
    /// The seller, from the answer's other fields.
    pub seller: LazadaSeller,
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

/// A refusal, `{"type", "code", "message", "request_id"}`, sent with HTTP 200.
#[token_endpoint(error, status = 200, success_codes("0"))]
#[derive(Clone, Debug, PartialEq)]
pub struct LazadaError {
    /// `ISV`, `ISP` or `SYSTEM`.
    pub r#type: Option<String>,
    /// The code.
    pub code: LazadaCode,
    /// What went wrong.
    pub message: Option<String>,
    /// Lazada's id of the request.
    pub request_id: Option<String>,
}
