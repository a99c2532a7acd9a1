//! applyToken as `#[token_endpoint]` definitions: the two grants, the success answer with its
//! `result` envelope and extras, and the result codes.

use token_core::expiry::Iso8601;
use token_core::{secret::AccessToken, secret::AuthCode, secret::RefreshToken, token_endpoint};

use crate::AlipayPlusConfig;

/// applyToken with `"grantType": "REFRESH_TOKEN"`:
/// `POST /aps/api/v1/authorizations/applyToken` `{acquirerId?, pspId, refreshToken, grantType}`.
#[token_endpoint(post = "/aps/api/v1/authorizations/applyToken", json, rename_all = "camelCase",
                 response = ApplyTokenResult, error = AlipayError, config = AlipayPlusConfig,
                 body(name = "grantType", value = "REFRESH_TOKEN"))]
#[derive(Debug, PartialEq)]
pub struct ApplyToken {
    /// The acquirer's id, left out when not configured.
    #[token(from = config.acquirer_id)]
    pub acquirer_id: Option<String>,
    /// The PSP's id (at most 64 characters).
    #[token(from = config.psp_id)]
    pub psp_id: String,
    /// The refresh token.
    pub refresh_token: RefreshToken,
}

/// applyToken with `"grantType": "AUTHORIZATION_CODE"`:
/// `{acquirerId?, pspId, authCode, grantType}`, exchanging the code of the user's consent.
#[token_endpoint(post = "/aps/api/v1/authorizations/applyToken", json, rename_all = "camelCase",
                 response = ApplyTokenResult, error = AlipayError, config = AlipayPlusConfig,
                 body(name = "grantType", value = "AUTHORIZATION_CODE"))]
#[derive(Debug, PartialEq)]
pub struct ApplyTokenByCode {
    /// The acquirer's id, left out when not configured.
    #[token(from = config.acquirer_id)]
    pub acquirer_id: Option<String>,
    /// The PSP's id (at most 64 characters).
    #[token(from = config.psp_id)]
    pub psp_id: String,
    /// The authorization code.
    #[token(from = auth_code)]
    pub auth_code: AuthCode,
}

/// What Alipay+ keeps beside the tokens.
#[token_endpoint(extras, rename_all = "camelCase")]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlipayExtras {
    /// The user's id at the wallet.
    pub customer_id: Option<String>,
    /// The user's masked login id (`62-***2736`).
    pub user_login_id: Option<String>,
}

/// The success answer; the MPP writes the `result` envelope with status `S`.
#[token_endpoint(response, rename_all = "camelCase", extras = AlipayExtras,
                 body(name = "result.resultCode", value = "SUCCESS"),
                 body(name = "result.resultMessage", value = "success"),
                 body(name = "result.resultStatus", value = "S"))]
#[derive(Debug)]
pub struct ApplyTokenResult {
    /// The access token.
    pub access_token: AccessToken,
    /// When it expires, ISO 8601 with offset.
    #[token(expiry)]
    pub access_token_expiry_time: Option<Iso8601>,
    /// The new refresh token.
    pub refresh_token: Option<RefreshToken>,
    /// When the refresh token expires, ISO 8601 with offset.
    #[token(refresh_expiry)]
    pub refresh_token_expiry_time: Option<Iso8601>,
    /// `customerId`.
    #[token(extra)]
    pub customer_id: Option<String>,
    /// `userLoginId`.
    #[token(extra)]
    pub user_login_id: Option<String>,
}

/// Result codes of applyToken and what each means for the session (status `F` unless
/// marked; a `U` status is outcome-unknown whatever the code).
#[token_endpoint(error_code, rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum AlipayCode {
    /// The refresh token is invalid (or expired): the user must authorize again.
    #[token(kind = reauth_required)]
    InvalidRefreshToken,
    /// The refresh token has expired: the user must authorize again.
    #[token(kind = reauth_required)]
    ExpiredRefreshToken,
    /// The refresh token was used already.
    #[token(kind = reauth_required)]
    UsedRefreshToken,
    /// The authorization code is invalid.
    #[token(kind = reauth_required)]
    InvalidAuthCode,
    /// The authorization code has expired.
    #[token(kind = reauth_required)]
    ExpiredAuthCode,
    /// The request's signature did not verify.
    #[token(kind = misconfigured)]
    InvalidSignature,
    /// A parameter is missing or wrong.
    #[token(kind = misconfigured)]
    ParamIllegal,
    /// The processing failed; definitive.
    ProcessFail,
    /// Status `U`: the outcome is unknown; the same request may be sent again.
    #[token(kind = outcome_unknown)]
    UnknownException,
    /// Rate limited. Alipay+ sends it with status `U`, which decides (sent again inside the
    /// reuse window, as every `U` answer is); with `F` it is transient.
    #[token(kind = transient)]
    RequestTrafficExceedLimit,
    /// Any other code, kept as sent.
    Other(String),
}

/// `{"result": {"resultStatus": "F"|"U", "resultCode", "resultMessage"}}` on HTTP 200.
#[token_endpoint(error, envelope = "result", rename_all = "camelCase")]
#[derive(Clone, Debug, PartialEq)]
pub struct AlipayError {
    /// The result code.
    #[token(code)]
    pub result_code: AlipayCode,
    /// `F` (failed) or `U` (unknown).
    #[token(result_status)]
    pub result_status: String,
    /// The message.
    #[token(message)]
    pub result_message: Option<String>,
}

impl AlipayError {
    /// A failed (`F`) result.
    pub fn failed(code: AlipayCode, message: impl Into<String>) -> Self {
        Self {
            result_code: code,
            result_status: "F".into(),
            result_message: Some(message.into()),
        }
    }

    /// An unknown (`U`) result: the caller may send the same request again.
    pub fn unknown(code: AlipayCode, message: impl Into<String>) -> Self {
        Self {
            result_code: code,
            result_status: "U".into(),
            result_message: Some(message.into()),
        }
    }
}
