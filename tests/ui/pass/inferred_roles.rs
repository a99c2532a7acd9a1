//! Response roles inferred from types and RFC 6749 names, beside declared ones.
use token_core::expiry::{ExpiresIn, UnixTime};
use token_core::{codec::TokenResponse, secret::AccessToken, secret::RefreshToken, token_endpoint};

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    pub openid: Option<String>,
}

// Every role inferred.
#[token_endpoint(response, extras = User)]
pub struct WeChatLike {
    pub access_token: AccessToken,
    pub expires_in: Option<ExpiresIn>,
    pub refresh_token: Option<RefreshToken>,
    pub scope: Option<String>,
    pub token_type: String,
    pub user: User,
}

// Declared roles win over the names; a field named otherwise and renamed on the wire stays
// unread.
#[token_endpoint(response, rename_all = "camelCase")]
pub struct Declared {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(refresh_expiry)]
    pub expires_in: Option<ExpiresIn>,
    #[token(expiry)]
    pub expires_at: Option<UnixTime>,
    #[token(rename = "scope")]
    pub scopes: Option<Vec<String>>,
}

fn assert_response<R: TokenResponse>() {}

fn main() {
    assert_response::<WeChatLike>();
    assert_response::<Declared>();
}
