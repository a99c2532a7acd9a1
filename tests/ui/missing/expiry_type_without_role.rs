use token_core::expiry::{ExpiresIn, UnixTime};
use token_core::{secret::AccessToken, token_endpoint};

// Shopee's `expire_in` and TikTok's `access_token_expire_in` are no RFC 6749 names: without
// a role both would be read and ignored, and the tokens' expiry unknown.
#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub expire_in: Option<ExpiresIn>,
    pub refresh_token_expire_in: UnixTime,
}

fn main() {}
