//! Codes on HTTP 200, answer envelopes and millisecond expiries: integer and negative codes,
//! integer success codes, a success answer that declares the code field beside its rule.
use token_core::expiry::{UnixMillis, UnixMillisText};
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

#[token_endpoint(error_code)]
pub enum WeChatCode {
    #[token(code = 40030, kind = reauth_required)]
    InvalidRefreshToken,
    #[token(code = -1, kind = transient)]
    Busy,
    #[token(other)]
    Other(String),
}

#[token_endpoint(error, success_codes(0))]
pub struct WeChatError {
    #[token(code)]
    pub errcode: WeChatCode,
    #[token(message)]
    pub errmsg: Option<String>,
}

#[token_endpoint(response, envelope = "data", body(name = "errcode", value = 0))]
pub struct Enveloped {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(refresh_token)]
    pub refresh_token: Option<RefreshToken>,
    #[token(expiry)]
    pub expires_at: Option<UnixMillis>,
}

#[token_endpoint(post = "/token", response = Enveloped, error = WeChatError)]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

#[token_endpoint(error, success_codes("0", ""))]
pub struct LazadaError {
    #[token(code)]
    pub code: String,
    #[token(message)]
    pub message: Option<String>,
}

#[token_endpoint(response)]
pub struct Flat {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(expiry)]
    pub issued_at: Option<UnixMillisText>,
    pub code: String,
}

#[token_endpoint(post = "/token", response = Flat, error = LazadaError)]
pub struct FlatRefresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

fn main() {}
