//! Declared signatures, clock, extras and context-value sources.
#![deny(warnings, unused_qualifications)]

use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};

#[token_endpoint(response)]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
}

#[token_endpoint(error)]
pub struct Failure {
    #[token(code)]
    pub error: String,
}

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shop {
    pub shop_id: Option<String>,
}

pub struct App {
    pub key: String,
    pub secret: ClientSecret,
}

#[token_endpoint(post = "/auth/token/refresh", form, response = Tokens, error = Failure,
                 config = App, extras = Shop, query(name = "sign_method", value = "sha256"),
                 sign(hmac_sha256, over(path, sorted_params), encoding = hex_upper, into = query("sign")))]
pub struct QuerySigned {
    #[token(query, from = config.key)]
    pub app_key: String,
    #[token(query, from = now_unix_ms)]
    pub timestamp: i64,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(from = extras.shop_id)]
    pub shop_id: Option<String>,
    #[token(signing_key, from = config.secret)]
    pub secret: ClientSecret,
}

#[token_endpoint(post = "/token", json, response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(method, path, timestamp, body), separator = "\n",
                      encoding = base64, into = header("X-Signature")))]
pub struct HeaderSigned {
    #[token(header, rename = "X-Timestamp", from = now_rfc3339)]
    pub timestamp: String,
    #[token(bearer, from = value("app_token"))]
    pub app_token: AccessToken,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub secret: ClientSecret,
}

#[token_endpoint(post = "/token", json, response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(sorted_params), encoding = base64, into = body("sign")))]
pub struct BodySigned {
    #[token(from = now_unix)]
    pub time: u64,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub secret: ClientSecret,
}

pub struct Partner {
    pub partner_id: i64,
    pub key: ClientSecret,
}

/// Shopee: a named parameter's value, then the path and the timestamp.
#[token_endpoint(post = "/api/v2/auth/access_token/get", json, response = Tokens, error = Failure,
                 config = Partner,
                 sign(hmac_sha256, over(query("partner_id"), path, timestamp), into = query("sign")))]
pub struct ParamSigned {
    #[token(query, rename = "partner_id", from = config.partner_id)]
    pub partner: i64,
    #[token(query, from = now_unix)]
    pub timestamp: i64,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.key)]
    pub key: ClientSecret,
}

#[token_endpoint(fields, config = Partner)]
pub struct PartnerGroup {
    #[token(header, rename = "X-Partner", from = config.partner_id)]
    pub partner_id: i64,
}

/// A signed header a flattened group sends, and a signed constant.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = Partner,
                 query(name = "version", value = "2"),
                 sign(hmac_sha256, over(header("x-partner"), query("version"), body), into = header("X-Sign")))]
pub struct GroupParamSigned {
    #[token(flatten)]
    pub partner: PartnerGroup,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.key)]
    pub key: ClientSecret,
}

fn main() {}
