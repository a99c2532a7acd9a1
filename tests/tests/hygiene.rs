//! The macro's output compiles under `deny(warnings, unused_qualifications)` beside user
//! types named like the prelude's `Result`, `Option`, `Ok`, `Err`, `Some`, `None`.
#![deny(warnings, unused_qualifications)]
#![no_implicit_prelude]

extern crate http;
extern crate std;
extern crate token_core;
extern crate url;

use std::assert_eq;
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

/// Integer codes as discriminants, the catch-all by its shape, roles by their names.
#[token_endpoint(error_code)]
pub enum Errcode {
    #[token(kind = reauth_required)]
    InvalidRefreshToken = 40030,
    Busy = -1,
    Other(std::string::String),
}

#[token_endpoint(error, status = 200, success_codes(0))]
pub struct Errmsg {
    pub errcode: Errcode,
    pub errmsg: std::option::Option<std::string::String>,
}

/// A blanket extension trait in scope whose methods are named like those generated code
/// could call by method syntax: by value, they would be found before an inherent method
/// taking `&self` or `&mut self`, or a trait method of the same name, and the generated code
/// would call them (or fail to compile). Generated code names every call it makes.
#[allow(
    clippy::wrong_self_convention,
    clippy::len_without_is_empty,
    clippy::should_implement_trait
)]
pub trait Hijack: std::marker::Sized {
    fn put(self) {}
    fn body(self) {}
    fn json(self) {}
    fn constant(self) {}
    fn expect(self) {}
    fn finish(self) {}
    fn extend(self) {}
    fn map(self) {}
    fn as_str(self) {}
    fn as_ref(self) {}
    fn as_deref(self) {}
    fn clone(self) {}
    fn to_string(self) {}
    fn to_owned(self) {}
    fn into(self) {}
    fn iter(self) {}
    fn get(self) {}
    fn push(self) {}
    fn len(self) {}
    fn is_empty(self) {}
    fn unwrap_or(self) {}
    fn unwrap_or_default(self) {}
    fn ok_or(self) {}
    fn ok_or_else(self) {}
    fn and_then(self) {}
    fn is_some(self) {}
    fn is_none(self) {}
    fn expose_secret(self) {}
    fn secrets(self) {}
    fn write_fields(self) {}
    fn read_fields(self) {}
    fn collect_secrets(self) {}
    fn parse(self) {}
    fn value(self) {}
    fn sign(self) {}
    fn with_separator(self) {}
    fn signed(self) {}
    fn insert(self) {}
    fn remove(self) {}
    fn take(self) {}
    fn query(self) {}
    fn header(self) {}
    fn text(self) {}
    fn from_text(self) {}
    fn get_text(self) {}
    fn into_iter(self) {}
    fn collect(self) {}
}
impl<T> Hijack for T {}

#[token_endpoint(config)]
pub struct SignedConfig {
    pub app_key: std::string::String,
    pub app_secret: ClientSecret,
}

/// Fields shared by several requests, flattened into one.
#[token_endpoint(fields, config = SignedConfig)]
pub struct Shared {
    #[token(query, from = config.app_key)]
    pub app_key: std::string::String,
    #[token(query, from = now_unix_ms)]
    pub timestamp: std::string::String,
}

#[token_endpoint(post = "/signed", form, response = Tokens, error = Errmsg, config = SignedConfig,
                 sign(hmac_sha256, over(path, sorted_params), encoding = hex_upper, into = query("sign")))]
pub struct Signed {
    #[token(flatten)]
    pub shared: Shared,
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.app_secret)]
    pub app_secret: ClientSecret,
}

#[test]
fn a_flattened_group_and_a_signed_request_expand_beside_an_extension_trait() {
    use token_core::codec::Endpoint;
    let signed = Signed {
        shared: Shared {
            app_key: std::string::ToString::to_string("key"),
            timestamp: std::string::ToString::to_string("1700000000000"),
        },
        refresh_token: RefreshToken::new("rt"),
        app_secret: ClientSecret::new("secret"),
    };
    let base = url::Url::parse("https://h.example").unwrap();
    let request = signed.encode_request(&base).unwrap();
    let uri = std::string::ToString::to_string(request.uri());
    std::assert!(uri.contains("sign="), "{uri}");
    let back = Signed::decode_signed_request(&request, &ClientSecret::new("secret")).unwrap();
    assert_eq!(back.shared.app_key, "key");
    let config = SignedConfig::new(
        std::string::ToString::to_string("key"),
        ClientSecret::new("secret"),
    );
    assert_eq!(config.app_key, "key");
}

#[test]
fn the_short_forms_expand_under_the_same_lints() {
    use token_core::codec::ErrorResponse;
    let ok = http::StatusCode::OK;
    let seed = br#"{"errcode":40030,"errmsg":"invalid refresh_token"}"#;
    let error = Errmsg::decode_error(ok, seed).unwrap();
    assert_eq!(error.kind(ok), token_core::error::ErrorKind::ReauthRequired);
    assert_eq!(ErrorResponse::code(&error), "40030");
    let busy = Errmsg::decode_error(ok, br#"{"errcode":-1}"#).unwrap();
    assert_eq!(ErrorResponse::code(&busy), "-1");
}

#[test]
fn generated_code_ignores_shadowed_prelude_names() {
    use token_core::{codec::Endpoint, codec::ErrorResponse};
    let refresh = Refresh {
        partner_id: 1,
        client_id: std::string::ToString::to_string("id"),
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
