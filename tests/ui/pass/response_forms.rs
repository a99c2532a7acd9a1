//! Every response form: expiry as seconds, UNIX time, ISO 8601, JWT fallback; extras.
use token_core::expiry::{ExpiresIn, Iso8601, UnixTime};
use token_core::{secret::AccessToken, secret::RefreshToken, codec::TokenResponse, token_endpoint};

#[token_endpoint(extras, rename_all = "camelCase")]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct UserExtras {
    pub user_id: Option<String>,
    #[token(rename = "login")]
    pub login_id: String,
}

#[token_endpoint(response, jwt_expiry, extras = UserExtras)]
pub struct Seconds {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(refresh_token)]
    pub refresh_token: Option<RefreshToken>,
    #[token(expiry)]
    pub expires_in: ExpiresIn,
    #[token(refresh_expiry, rename = "refresh_expires_in")]
    pub refresh_lifetime: Option<ExpiresIn>,
    #[token(token_type)]
    pub token_type: String,
    #[token(scope)]
    pub scope: Option<String>,
    #[token(extra)]
    pub user_id: Option<String>,
    #[token(extra)]
    pub login_id: String,
}

#[token_endpoint(response, rename_all = "camelCase")]
pub struct Unix {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(expiry)]
    pub expires_at: UnixTime,
    #[token(refresh_expiry)]
    pub refresh_expires_at: Option<UnixTime>,
}

#[token_endpoint(response, rename_all = "camelCase", body(name = "result.resultStatus", value = "S"))]
pub struct Iso {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(expiry)]
    pub access_token_expiry_time: Iso8601,
    pub ignored: Option<u32>,
}

fn assert_response<R: TokenResponse>() {}

fn main() {
    assert_response::<Seconds>();
    assert_response::<Unix>();
    assert_response::<Iso>();
}
