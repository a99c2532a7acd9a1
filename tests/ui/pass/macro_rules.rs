//! Items declared by a `macro_rules!` macro: names arrive as `$name:ident`, types as `$ty`
//! fragments and literals as `$lit:literal` (invisible-delimited groups), and read as if
//! written out.
use token_core::expiry::ExpiresIn;
use token_core::{
    codec::Endpoint, codec::TokenResponse, secret::AccessToken, secret::RefreshToken,
    token_endpoint,
};

pub struct Config {
    pub client_id: String,
}

macro_rules! endpoint {
    ($path:literal, $request:ident, $response:ident, $error:ident, $code:ident,
     $token:ty, $secret:ty, $refresh:ty, $expiry:ty, $user:ty, $code_ty:ty, $config:ty, $wire:literal) => {
        #[token_endpoint(error_code, rename_all = "snake_case")]
        pub enum $code {
            #[token(kind = reauth_required, code = $wire)]
            InvalidGrant,
            Other(String),
        }

        #[token_endpoint(error)]
        pub struct $error {
            #[token(code)]
            pub error: $code_ty,
            pub error_description: Option<String>,
        }

        #[token_endpoint(response)]
        pub struct $response {
            pub access_token: $token,
            pub refresh_token: $refresh,
            #[token(expiry)]
            pub expires_in: $expiry,
            #[token(rename = $wire)]
            pub user: $user,
        }

        #[token_endpoint(post = $path, form, response = $response, error = $error, config = $config,
                         body(name = "grant_type", value = $wire))]
        pub struct $request {
            #[token(from = refresh_token)]
            pub refresh_token: $secret,
            #[token(from = config.client_id)]
            pub client_id: String,
        }
    };
}

endpoint!("/token", Refresh, Tokens, Failure, Code,
          AccessToken, RefreshToken, Option<RefreshToken>, ExpiresIn, Option<String>, Code, Config, "invalid_grant");

macro_rules! numeric_codes {
    ($name:ident, $invalid:literal, $busy:expr) => {
        #[token_endpoint(error_code)]
        pub enum $name {
            InvalidRefreshToken = $invalid,
            #[token(kind = transient)]
            Busy = $busy,
            Other(String),
        }
    };
}

numeric_codes!(WeChatCode, 40030, -1);

fn assert_endpoint<E: Endpoint>() {}
fn assert_response<R: TokenResponse>() {}

fn main() {
    assert_endpoint::<Refresh>();
    assert_response::<Tokens>();
    assert!(matches!(
        <WeChatCode as token_core::codec::ErrorCode>::from_code("40030"),
        WeChatCode::InvalidRefreshToken
    ));
    assert!(matches!(
        <WeChatCode as token_core::codec::ErrorCode>::from_code("-1"),
        WeChatCode::Busy
    ));
}
