//! The same definitions as `hygiene.rs`, with the normal prelude in scope: generated paths
//! must not trip `unused_qualifications`, and the shadowing types still must not leak in.
#![deny(warnings, unused_qualifications)]

use token_core::expiry::ExpiresIn;
use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};

pub struct Result;
pub struct Option;
pub struct Ok;
pub struct Err;
pub struct Some;
pub struct None;
pub struct Vec;
pub struct String;
pub struct Default;
pub struct Clone;
pub struct Into;

pub struct Config {
    pub partner_id: i32,
    pub client_secret: ClientSecret,
}

#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = Config,
                 header(name = "grantType", value = "refresh_token"), query(name = "v", value = "3"),
                 body(name = "grant_type", value = "refresh_token"))]
pub struct Refresh {
    #[token(header, rename = "partnerId", from = config.partner_id)]
    pub partner_id: i32,
    #[token(basic_user, from = uuid)]
    pub client_id: std::string::String,
    #[token(basic_password, from = config.client_secret)]
    pub client_secret: ClientSecret,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(query, from = code_verifier)]
    pub verifier: std::option::Option<std::string::String>,
}

#[token_endpoint(post = "/json", json, response = Tokens, error = Failure)]
pub struct Probe {
    #[token(bearer, from = access_token)]
    pub token: std::option::Option<AccessToken>,
    #[token(from = auth_code)]
    pub code: std::option::Option<token_core::secret::AuthCode>,
}

#[token_endpoint(extras)]
#[derive(std::clone::Clone, std::fmt::Debug, std::default::Default, std::cmp::PartialEq)]
pub struct Extra {
    pub user_id: std::option::Option<std::string::String>,
}

#[token_endpoint(response, extras = Extra, jwt_expiry, body(name = "result.status", value = "S"))]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(refresh_token)]
    pub refresh_token: std::option::Option<RefreshToken>,
    #[token(expiry)]
    pub expires_in: std::option::Option<ExpiresIn>,
    #[token(refresh_expiry)]
    pub refresh_expires_in: ExpiresIn,
    #[token(token_type)]
    pub token_type: std::string::String,
    #[token(scope)]
    pub scope: std::option::Option<std::string::String>,
    #[token(extra)]
    pub user_id: std::option::Option<std::string::String>,
    pub unused: u8,
}

#[token_endpoint(response, declare_extras = Declared)]
pub struct DeclaringTokens {
    pub access_token: AccessToken,
    #[token(keep)]
    pub openid: std::option::Option<std::string::String>,
}

#[token_endpoint(error_code)]
pub enum Code {
    #[token(code = "invalid_grant", kind = reauth_required, status = 400)]
    InvalidGrant,
    #[token(other, kind = rejected)]
    Other(std::string::String),
}

#[token_endpoint(error, envelope = "result", status = 200, on_status(status = 401, kind = reauth_required))]
pub struct Failure {
    #[token(code)]
    pub code: Code,
    #[token(message)]
    pub message: std::string::String,
    #[token(result_status)]
    pub status: std::option::Option<std::string::String>,
    #[token(http_status)]
    pub http: std::option::Option<u16>,
}

#[test]
fn generated_code_ignores_shadowed_prelude_names() {
    use token_core::{codec::Endpoint, codec::ErrorResponse};
    let refresh = Refresh {
        partner_id: 1,
        client_id: "id".to_string(),
        client_secret: ClientSecret::new("secret"),
        refresh_token: RefreshToken::new("rt"),
        verifier: std::option::Option::None,
    };
    let base = url::Url::parse("https://h.example").unwrap();
    let request = refresh.encode_request(&base).unwrap();
    assert_eq!(request.uri(), "https://h.example/token?v=3");
    let back = Refresh::decode_request(&request).unwrap();
    assert_eq!(back.partner_id, 1);
    let failure = Failure::decode_error(
        http::StatusCode::OK,
        br#"{"result":{"code":"invalid_grant","message":"m","status":"F"}}"#,
    )
    .unwrap();
    assert_eq!(
        failure.kind(http::StatusCode::OK),
        token_core::error::ErrorKind::ReauthRequired
    );
}
