//! The refresh endpoint of each seed provider, written with `#[token_endpoint]` only, against
//! the seeds' literal JSON: client encode and decode, server decode and encode, round trips.

use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use token_core::codec::{decode_response, encode_error, encode_response};
use token_core::expiry::{ExpiresIn, Iso8601, UnixTime};
use token_core::{
    AccessToken, ClientSecret, Endpoint, EndpointError, ErrorKind, ErrorResponse, FromContext,
    RefreshToken, RequestContext, TokenResponse, TokenSet, token_endpoint,
};

// ---- shared RFC 6749 error shape -----------------------------------------------------------

/// RFC 6749 section 5.2 codes (Vault.ist v3, Maya Connect).
#[token_endpoint(error_code, rename_all = "snake_case")]
#[derive(Clone, Debug, PartialEq)]
pub enum OAuthCode {
    #[token(kind = reauth_required)]
    InvalidGrant,
    #[token(kind = reauth_required)]
    InvalidToken,
    #[token(kind = misconfigured, status = 401)]
    InvalidClient,
    #[token(kind = misconfigured)]
    UnauthorizedClient,
    #[token(kind = rejected)]
    InvalidRequest,
    UnsupportedGrantType,
    #[token(other)]
    Other(String),
}

/// `{"error", "error_description"}`.
#[token_endpoint(error)]
#[derive(Clone, Debug, PartialEq)]
pub struct OAuthError {
    #[token(code)]
    pub error: OAuthCode,
    #[token(message)]
    pub error_description: Option<String>,
}

/// RFC 6749 section 5.1.
#[token_endpoint(response)]
#[derive(Clone, Debug, PartialEq)]
pub struct OAuthTokens {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(refresh_token)]
    pub refresh_token: Option<RefreshToken>,
    #[token(expiry)]
    pub expires_in: Option<ExpiresIn>,
    #[token(token_type)]
    pub token_type: Option<String>,
    #[token(scope)]
    pub scope: Option<String>,
}

fn now() -> OffsetDateTime {
    datetime!(2022-06-06 00:00 UTC)
}

fn base() -> url::Url {
    url::Url::parse("https://provider.example/").unwrap()
}

fn body_json(request: &http::Request<Vec<u8>>) -> Value {
    serde_json::from_slice(request.body()).unwrap()
}

fn answer(status: u16, body: &str) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.as_bytes().to_vec());
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    response
}

fn provider_error(
    result: Result<impl std::fmt::Debug, EndpointError>,
) -> token_core::ProviderError {
    match result {
        Err(EndpointError::Provider(e)) => e,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

// ---- Vault.ist v3 --------------------------------------------------------------------------

pub struct VaultConfig {
    pub partner_id: i32,
}

/// `POST /v1/auth/token`, headers `partnerId` and `grantType: refresh_token`, body
/// `{"refreshToken"}`.
#[token_endpoint(post = "/v1/auth/token", json, response = OAuthTokens, error = OAuthError,
                 config = VaultConfig, header(name = "grantType", value = "refresh_token"))]
#[derive(Debug, PartialEq)]
pub struct VaultRefresh {
    #[token(header, rename = "partnerId", from = config.partner_id)]
    pub partner_id: i32,
    #[token(body, rename = "refreshToken", from = refresh_token)]
    pub refresh_token: RefreshToken,
}

const VAULT_REQUEST: &str = r#"{
  "refreshToken": "dGhpcyBpcyBhIHJlZnJlc2hUb2tlbi..."
}"#;
const VAULT_RESPONSE: &str = r#"{
  "access_token": "eyJhbGciOiJIUzI1NiIsIn...",
  "refresh_token": "dGhpcyBpcyBhIHJlZnJlc2h...",
  "expires_in": 3600,
  "token_type": "Bearer"
}"#;
const VAULT_EXPIRED: &str = r#"{
  "error": "invalid_grant",
  "error_description": "Refresh token has expired or is invalid."
}"#;
const VAULT_MISSING: &str = r#"{
  "error": "invalid_request",
  "error_description": "Missing refresh token."
}"#;

fn vault_session() -> TokenSet {
    TokenSet::new(AccessToken::new("at-old"))
        .with_refresh_token(RefreshToken::new("dGhpcyBpcyBhIHJlZnJlc2hUb2tlbi..."))
}

#[test]
fn vaultist_request_encodes_the_seed_body_and_headers() {
    let config = VaultConfig { partner_id: 42 };
    let session = vault_session();
    let refresh =
        VaultRefresh::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    let request = refresh.encode_request(&base()).unwrap();
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(request.uri(), "https://provider.example/v1/auth/token");
    assert_eq!(request.headers()["partnerId"], "42");
    assert_eq!(request.headers()["grantType"], "refresh_token");
    assert_eq!(request.headers()["content-type"], "application/json");
    assert_eq!(
        body_json(&request),
        serde_json::from_str::<Value>(VAULT_REQUEST).unwrap()
    );
    assert_eq!(refresh.secrets(), vec!["dGhpcyBpcyBhIHJlZnJlc2hUb2tlbi..."]);
}

#[test]
fn vaultist_server_decodes_the_seed_request_and_checks_the_grant_header() {
    let request = http::Request::builder()
        .method("POST")
        .uri("/v1/auth/token")
        .header("partnerId", "42")
        .header("grantType", "refresh_token")
        .body(VAULT_REQUEST.as_bytes().to_vec())
        .unwrap();
    let decoded = VaultRefresh::decode_request(&request).unwrap();
    assert_eq!(
        decoded,
        VaultRefresh {
            partner_id: 42,
            refresh_token: "dGhpcyBpcyBhIHJlZnJlc2hUb2tlbi...".into()
        }
    );

    let wrong_grant = http::Request::builder()
        .method("POST")
        .uri("/v1/auth/token")
        .header("partnerId", "42")
        .header("grantType", "password")
        .body(VAULT_REQUEST.as_bytes().to_vec())
        .unwrap();
    let error = VaultRefresh::decode_request(&wrong_grant).unwrap_err();
    assert!(error.0.contains("grantType"), "{error}");
    let no_partner = http::Request::builder()
        .method("POST")
        .header("grantType", "refresh_token")
        .body(VAULT_REQUEST.as_bytes().to_vec())
        .unwrap();
    assert!(
        VaultRefresh::decode_request(&no_partner)
            .unwrap_err()
            .0
            .contains("partnerId")
    );
}

#[test]
fn vaultist_seed_response_becomes_a_token_set() {
    let set = decode_response::<VaultRefresh>(&answer(200, VAULT_RESPONSE), now(), &[]).unwrap();
    assert_eq!(
        set.access_token.expose_secret(),
        "eyJhbGciOiJIUzI1NiIsIn..."
    );
    assert_eq!(
        set.refresh_token.as_ref().unwrap().expose_secret(),
        "dGhpcyBpcyBhIHJlZnJlc2h..."
    );
    assert_eq!(set.access_expires_at, Some(now() + Duration::seconds(3600)));
    assert_eq!(set.token_type.as_deref(), Some("Bearer"));
    assert_eq!(set.scope, None);
}

#[test]
fn vaultist_server_encodes_the_seed_response_from_a_token_set() {
    let set = decode_response::<VaultRefresh>(&answer(200, VAULT_RESPONSE), now(), &[]).unwrap();
    let response = encode_response(&OAuthTokens::from_token_set(&set, now()));
    assert_eq!(response.status(), 200);
    let sent: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(sent, serde_json::from_str::<Value>(VAULT_RESPONSE).unwrap());
}

#[test]
fn vaultist_seed_errors_are_classified_and_round_trip() {
    let expired = provider_error(decode_response::<VaultRefresh>(
        &answer(400, VAULT_EXPIRED),
        now(),
        &[],
    ));
    assert_eq!(expired.kind, ErrorKind::ReauthRequired);
    assert_eq!(expired.code, "invalid_grant");
    assert_eq!(
        expired.message.as_deref(),
        Some("Refresh token has expired or is invalid.")
    );
    let missing = provider_error(decode_response::<VaultRefresh>(
        &answer(400, VAULT_MISSING),
        now(),
        &[],
    ));
    assert_eq!(missing.kind, ErrorKind::Rejected);
    assert_eq!(missing.code, "invalid_request");

    // Server side: the same definition writes the seed's error body back.
    let error =
        OAuthError::decode_error(http::StatusCode::BAD_REQUEST, VAULT_EXPIRED.as_bytes()).unwrap();
    assert_eq!(error.error, OAuthCode::InvalidGrant);
    let sent = encode_error(&error);
    assert_eq!(sent.status(), 400);
    assert_eq!(
        serde_json::from_slice::<Value>(sent.body()).unwrap(),
        serde_json::from_str::<Value>(VAULT_EXPIRED).unwrap()
    );
    let client = OAuthError {
        error: OAuthCode::InvalidClient,
        error_description: None,
    };
    assert_eq!(
        encode_error(&client).status(),
        401,
        "a code's own status wins"
    );
    assert_eq!(
        encode_error(&client).body(),
        br#"{"error":"invalid_client"}"#
    );
}

#[test]
fn unknown_codes_fall_to_the_catch_all_and_the_status() {
    let body = r#"{"error":"slow_down","error_description":"later"}"#;
    let error = OAuthError::decode_error(http::StatusCode::BAD_REQUEST, body.as_bytes()).unwrap();
    assert_eq!(error.error, OAuthCode::Other("slow_down".into()));
    assert_eq!(
        error.kind(http::StatusCode::BAD_REQUEST),
        ErrorKind::Rejected
    );
    assert_eq!(
        error.kind(http::StatusCode::OK),
        ErrorKind::Rejected,
        "an error on a 200 is still an error"
    );
    let overloaded = provider_error(decode_response::<VaultRefresh>(
        &answer(503, body),
        now(),
        &[],
    ));
    assert_eq!(overloaded.kind, ErrorKind::Transient);
    assert_eq!(
        serde_json::to_string(&error.error).unwrap(),
        r#""slow_down""#
    );
}

// ---- Vault.ist v2: a custom error body -----------------------------------------------------

/// `{"status": "UNAUTHORIZED", "message", "traceId", "errors": []}` with HTTP 401.
#[token_endpoint(error, rename_all = "camelCase", status = 401,
                 on_status(status = 401, kind = reauth_required))]
#[derive(Debug)]
pub struct VaultV2Error {
    #[token(code)]
    pub status: String,
    #[token(message)]
    pub message: Option<String>,
    pub trace_id: Option<String>,
    pub errors: Option<Vec<Value>>,
}

#[test]
fn vaultist_v2_custom_error_maps_by_status() {
    let body = r#"{"status":"UNAUTHORIZED","message":"The Token has expired on 2024-01-01","traceId":"t-1","errors":[]}"#;
    let error =
        VaultV2Error::decode_error(http::StatusCode::UNAUTHORIZED, body.as_bytes()).unwrap();
    assert_eq!(error.code(), "UNAUTHORIZED");
    assert_eq!(error.trace_id.as_deref(), Some("t-1"));
    assert_eq!(
        error.kind(http::StatusCode::UNAUTHORIZED),
        ErrorKind::ReauthRequired
    );
    assert_eq!(error.kind(http::StatusCode::FORBIDDEN), ErrorKind::Rejected);
    let (status, sent) = error.encode_error();
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_slice::<Value>(&sent).unwrap(),
        serde_json::from_str::<Value>(body).unwrap()
    );
    assert!(VaultV2Error::decode_error(http::StatusCode::OK, VAULT_RESPONSE.as_bytes()).is_none());
}

// ---- Paymentsgate --------------------------------------------------------------------------

/// `POST /auth/token/refresh`, `Authorization: Bearer <access token>` (optional: the official
/// clients leave it out), body `{"refresh_token"}`.
#[token_endpoint(post = "/auth/token/refresh", json, response = PaymentsgateTokens, error = PaymentsgateError)]
#[derive(Debug, PartialEq)]
pub struct PaymentsgateRefresh {
    #[token(bearer, from = access_token)]
    pub access_token: Option<AccessToken>,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

/// `{access_token, refresh_token, expires_in}`; the JWT `exp` claim when `expires_in` is absent.
#[token_endpoint(response, jwt_expiry)]
#[derive(Debug)]
pub struct PaymentsgateTokens {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(refresh_token)]
    pub refresh_token: Option<RefreshToken>,
    #[token(expiry)]
    pub expires_in: Option<ExpiresIn>,
}

/// `{error, message, details?, statusCode?}`; a failed refresh (400/401) means issuing anew.
#[token_endpoint(error, rename_all = "camelCase",
                 on_status(status = 400, kind = reauth_required),
                 on_status(status = 401, kind = reauth_required),
                 on_status(status = 403, kind = misconfigured))]
#[derive(Debug)]
pub struct PaymentsgateError {
    #[token(code)]
    pub error: String,
    #[token(message)]
    pub message: String,
    pub details: Option<Value>,
    #[token(http_status)]
    pub status_code: Option<u16>,
}

const PG_REQUEST: &str = r#"{
        "refresh_token": "8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl..."
      }"#;
const PG_RESPONSE: &str = r#"{
      "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
      "refresh_token": "8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl...",
      "expires_in": 3600
    }"#;

#[test]
fn paymentsgate_request_carries_the_bearer_and_the_seed_body() {
    let session = TokenSet::<token_core::NoExtras>::new(AccessToken::new(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
    ))
    .with_refresh_token(RefreshToken::new("8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl..."));
    let refresh =
        PaymentsgateRefresh::from_context(&RequestContext::for_refresh(&(), &session)).unwrap();
    let request = refresh
        .encode_request(&url::Url::parse("https://secure.sandbox.paymentsgate.io").unwrap())
        .unwrap();
    assert_eq!(
        request.uri(),
        "https://secure.sandbox.paymentsgate.io/auth/token/refresh"
    );
    assert_eq!(
        request.headers()["authorization"],
        "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."
    );
    assert!(request.headers()["authorization"].is_sensitive());
    assert_eq!(
        body_json(&request),
        serde_json::from_str::<Value>(PG_REQUEST).unwrap()
    );
    assert_eq!(
        PaymentsgateRefresh::decode_request(&request).unwrap(),
        refresh
    );

    // Like the official Node and PHP clients: no Authorization header at all.
    let bare = PaymentsgateRefresh {
        access_token: None,
        ..refresh
    };
    let request = bare.encode_request(&base()).unwrap();
    assert!(request.headers().get("authorization").is_none());
    assert_eq!(PaymentsgateRefresh::decode_request(&request).unwrap(), bare);
}

#[test]
fn paymentsgate_refresh_without_a_refresh_token_is_an_encode_error() {
    let session = TokenSet::<token_core::NoExtras>::new(AccessToken::new("at"));
    let error =
        PaymentsgateRefresh::from_context(&RequestContext::for_refresh(&(), &session)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    assert!(error.to_string().contains("refresh token"));
}

#[test]
fn paymentsgate_seed_response_and_jwt_fallback() {
    let set =
        decode_response::<PaymentsgateRefresh>(&answer(200, PG_RESPONSE), now(), &[]).unwrap();
    assert_eq!(set.access_expires_at, Some(now() + Duration::seconds(3600)));
    // No expires_in: the access token's JWT `exp` (1700003600) decides.
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhY2N0IiwiZXhwIjoxNzAwMDAzNjAwfQ.sig";
    let body = format!(r#"{{"access_token":"{jwt}","refresh_token":"rt-2"}}"#);
    let set = decode_response::<PaymentsgateRefresh>(&answer(200, &body), now(), &[]).unwrap();
    assert_eq!(
        set.access_expires_at.unwrap().unix_timestamp(),
        1_700_003_600
    );
    let sent = serde_json::from_slice::<Value>(
        &PaymentsgateTokens::from_token_set(&set, set.access_expires_at.unwrap()).encode_body(),
    )
    .unwrap();
    assert_eq!(
        sent,
        json!({"access_token": jwt, "refresh_token": "rt-2", "expires_in": 0})
    );
}

#[test]
fn paymentsgate_errors_keep_code_message_and_status() {
    let body = r#"{"error":"Unauthorized","message":"Invalid refresh token","statusCode":401}"#;
    let error = provider_error(decode_response::<PaymentsgateRefresh>(
        &answer(401, body),
        now(),
        &[],
    ));
    assert_eq!(
        (error.kind, error.code.as_str(), error.message.as_deref()),
        (
            ErrorKind::ReauthRequired,
            "Unauthorized",
            Some("Invalid refresh token")
        )
    );
    let forbidden = r#"{"error":"Forbidden","message":"no"}"#;
    assert_eq!(
        provider_error(decode_response::<PaymentsgateRefresh>(
            &answer(403, forbidden),
            now(),
            &[]
        ))
        .kind,
        ErrorKind::Misconfigured
    );
    let mut limited = answer(
        429,
        r#"{"error":"TooManyRequests","message":"slow down","statusCode":429}"#,
    );
    limited
        .headers_mut()
        .insert("retry-after", "7".parse().unwrap());
    let limited = provider_error(decode_response::<PaymentsgateRefresh>(&limited, now(), &[]));
    assert_eq!(limited.kind, ErrorKind::Transient);
    assert_eq!(limited.retry_after, Some(std::time::Duration::from_secs(7)));

    let decoded =
        PaymentsgateError::decode_error(http::StatusCode::UNAUTHORIZED, body.as_bytes()).unwrap();
    let (status, sent) = decoded.encode_error();
    assert_eq!(
        status, 401,
        "the body's statusCode decides the server's status"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&sent).unwrap(),
        serde_json::from_str::<Value>(body).unwrap()
    );
}

// ---- Alipay+ applyToken --------------------------------------------------------------------

pub struct AlipayConfig {
    pub acquirer_id: Option<String>,
    pub psp_id: String,
}

/// `POST /aps/api/v1/authorizations/applyToken` with `"grantType": "REFRESH_TOKEN"`.
#[token_endpoint(post = "/aps/api/v1/authorizations/applyToken", json, rename_all = "camelCase",
                 response = ApplyTokenResult, error = AlipayError, config = AlipayConfig,
                 body(name = "grantType", value = "REFRESH_TOKEN"))]
#[derive(Debug, PartialEq)]
pub struct ApplyToken {
    #[token(from = config.acquirer_id)]
    pub acquirer_id: Option<String>,
    #[token(from = config.psp_id)]
    pub psp_id: String,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

/// What Alipay+ keeps beside the tokens.
#[token_endpoint(extras, rename_all = "camelCase")]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlipayExtras {
    pub customer_id: Option<String>,
    pub user_login_id: Option<String>,
}

/// The success answer; the server writes the `result` envelope with status `S`.
#[token_endpoint(response, rename_all = "camelCase", extras = AlipayExtras,
                 body(name = "result.resultCode", value = "SUCCESS"),
                 body(name = "result.resultMessage", value = "success"),
                 body(name = "result.resultStatus", value = "S"))]
#[derive(Debug)]
pub struct ApplyTokenResult {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(expiry)]
    pub access_token_expiry_time: Option<Iso8601>,
    #[token(refresh_token)]
    pub refresh_token: Option<RefreshToken>,
    #[token(refresh_expiry)]
    pub refresh_token_expiry_time: Option<Iso8601>,
    #[token(extra)]
    pub customer_id: Option<String>,
    #[token(extra)]
    pub user_login_id: Option<String>,
}

/// Result codes (`F` unless marked).
#[token_endpoint(error_code, rename_all = "SCREAMING_SNAKE_CASE")]
#[derive(Clone, Debug, PartialEq)]
pub enum AlipayCode {
    #[token(kind = reauth_required)]
    InvalidRefreshToken,
    #[token(kind = reauth_required)]
    ExpiredRefreshToken,
    #[token(kind = reauth_required)]
    UsedRefreshToken,
    #[token(kind = reauth_required)]
    InvalidAuthCode,
    #[token(kind = reauth_required)]
    ExpiredAuthCode,
    #[token(kind = misconfigured)]
    InvalidSignature,
    #[token(kind = misconfigured)]
    ParamIllegal,
    ProcessFail,
    #[token(kind = outcome_unknown)]
    UnknownException,
    #[token(kind = transient)]
    RequestTrafficExceedLimit,
    #[token(other)]
    Other(String),
}

/// `{"result": {"resultStatus": "F"|"U", "resultCode", "resultMessage"}}` on HTTP 200.
#[token_endpoint(error, envelope = "result", rename_all = "camelCase")]
#[derive(Debug)]
pub struct AlipayError {
    #[token(code)]
    pub result_code: AlipayCode,
    #[token(result_status)]
    pub result_status: String,
    #[token(message)]
    pub result_message: Option<String>,
}

const ALIPAY_REQUEST: &str = r#"{
"acquirerId":"102218800000000001",
"pspId":"102208800000000001",
"refreshToken": "2810100334F62CBC577F468AAC87CFC6C9107811",
"grantType": "REFRESH_TOKEN"
}"#;
const ALIPAY_RESPONSE: &str = r#"{
"result": {
"resultCode": "SUCCESS",
"resultMessage": "success",
"resultStatus": "S"
},
"accessToken": "281010033AB2F588D14B43238637264FCA5AAF35",
"accessTokenExpiryTime": "2022-06-06T12:12:12+08:00",
"refreshToken": "2810100334F62CBC577F468AAC87CFC6C9107811",
"refreshTokenExpiryTime": "2022-06-08T12:12:12+08:00",
"customerId":"2789808900000000000000001",
"userLoginId":"62-***2736"
}"#;

fn alipay_config() -> AlipayConfig {
    AlipayConfig {
        acquirer_id: Some("102218800000000001".into()),
        psp_id: "102208800000000001".into(),
    }
}

#[test]
fn alipay_apply_token_request_is_the_seed_request() {
    let config = alipay_config();
    let session = TokenSet::<AlipayExtras>::new(AccessToken::new("at")).with_refresh_token(
        RefreshToken::new("2810100334F62CBC577F468AAC87CFC6C9107811"),
    );
    let apply = ApplyToken::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    let request = apply
        .encode_request(&url::Url::parse("https://open-sea-global.alipayplus.com").unwrap())
        .unwrap();
    assert_eq!(
        request.uri().path(),
        "/aps/api/v1/authorizations/applyToken"
    );
    assert_eq!(
        body_json(&request),
        serde_json::from_str::<Value>(ALIPAY_REQUEST).unwrap()
    );

    // The MPP side reads the seed's literal request.
    let seed = http::Request::builder()
        .method("POST")
        .body(ALIPAY_REQUEST.as_bytes().to_vec())
        .unwrap();
    assert_eq!(ApplyToken::decode_request(&seed).unwrap(), apply);
}

#[test]
fn alipay_optional_fields_are_left_out_never_empty() {
    let apply = ApplyToken {
        acquirer_id: None,
        psp_id: "p".into(),
        refresh_token: "rt".into(),
    };
    let request = apply.encode_request(&base()).unwrap();
    assert_eq!(
        body_json(&request),
        json!({"pspId": "p", "refreshToken": "rt", "grantType": "REFRESH_TOKEN"})
    );
    assert_eq!(ApplyToken::decode_request(&request).unwrap(), apply);
    let with_null =
        br#"{"acquirerId":null,"pspId":"p","refreshToken":"rt","grantType":"REFRESH_TOKEN"}"#;
    let request = http::Request::builder()
        .method("POST")
        .body(with_null.to_vec())
        .unwrap();
    assert_eq!(
        ApplyToken::decode_request(&request).unwrap().acquirer_id,
        None
    );
    let wrong_grant = br#"{"pspId":"p","refreshToken":"rt","grantType":"AUTHORIZATION_CODE"}"#;
    let request = http::Request::builder()
        .method("POST")
        .body(wrong_grant.to_vec())
        .unwrap();
    assert!(
        ApplyToken::decode_request(&request)
            .unwrap_err()
            .0
            .contains("grantType")
    );
}

#[test]
fn alipay_seed_response_keeps_offsets_and_extras() {
    let set = decode_response::<ApplyToken>(&answer(200, ALIPAY_RESPONSE), now(), &[]).unwrap();
    assert_eq!(
        set.access_token.expose_secret(),
        "281010033AB2F588D14B43238637264FCA5AAF35"
    );
    assert_eq!(
        set.access_expires_at,
        Some(datetime!(2022-06-06 12:12:12 +08:00))
    );
    assert_eq!(
        set.refresh_expires_at,
        Some(datetime!(2022-06-08 04:12:12 UTC))
    );
    assert_eq!(
        set.extras.customer_id.as_deref(),
        Some("2789808900000000000000001")
    );
    assert_eq!(set.extras.user_login_id.as_deref(), Some("62-***2736"));

    // The MPP writes the same answer, `result` envelope included, from the token set.
    let sent = encode_response(&ApplyTokenResult::from_token_set(&set, now()));
    assert_eq!(sent.status(), 200);
    assert_eq!(
        serde_json::from_slice::<Value>(sent.body()).unwrap(),
        serde_json::from_str::<Value>(ALIPAY_RESPONSE).unwrap()
    );
}

#[test]
fn alipay_result_envelope_on_200_is_an_error_by_status() {
    let failed = r#"{"result":{"resultCode":"INVALID_REFRESH_TOKEN","resultStatus":"F","resultMessage":"invalid"}}"#;
    let error = provider_error(decode_response::<ApplyToken>(
        &answer(200, failed),
        now(),
        &[],
    ));
    assert_eq!(
        (error.kind, error.code.as_str(), error.status.as_u16()),
        (ErrorKind::ReauthRequired, "INVALID_REFRESH_TOKEN", 200)
    );
    let expired = r#"{"result":{"resultCode":"EXPIRED_REFRESH_TOKEN","resultStatus":"F","resultMessage":"expired"}}"#;
    assert_eq!(
        provider_error(decode_response::<ApplyToken>(
            &answer(200, expired),
            now(),
            &[]
        ))
        .kind,
        ErrorKind::ReauthRequired
    );
    let unknown =
        r#"{"result":{"resultCode":"PROCESS_FAIL","resultStatus":"U","resultMessage":"?"}}"#;
    assert_eq!(
        provider_error(decode_response::<ApplyToken>(
            &answer(200, unknown),
            now(),
            &[]
        ))
        .kind,
        ErrorKind::OutcomeUnknown
    );
    let new_code = r#"{"result":{"resultCode":"SOMETHING_NEW","resultStatus":"F"}}"#;
    let error = provider_error(decode_response::<ApplyToken>(
        &answer(200, new_code),
        now(),
        &[],
    ));
    assert_eq!(
        (error.kind, error.code.as_str()),
        (ErrorKind::Rejected, "SOMETHING_NEW")
    );
    assert!(
        AlipayError::decode_error(http::StatusCode::OK, ALIPAY_RESPONSE.as_bytes()).is_none(),
        "status S is a success"
    );

    // The MPP answers with the envelope on 200.
    let answer_back = AlipayError {
        result_code: AlipayCode::ExpiredRefreshToken,
        result_status: "F".into(),
        result_message: Some("expired".into()),
    };
    let sent = encode_error(&answer_back);
    assert_eq!(sent.status(), 200);
    assert_eq!(
        serde_json::from_slice::<Value>(sent.body()).unwrap(),
        serde_json::from_str::<Value>(expired).unwrap()
    );
}

// ---- Maya ----------------------------------------------------------------------------------

/// Mini App customer-token refresh: `Request-Reference-No: <UUIDv4>`, the partner's app token
/// as bearer, body `{"refreshToken"}`.
#[token_endpoint(post = "/tokens", json, rename_all = "camelCase", response = MayaTokens, error = OAuthError)]
#[derive(Debug, PartialEq)]
pub struct MayaRefresh {
    #[token(header, rename = "Request-Reference-No", from = uuid)]
    pub request_reference_no: String,
    #[token(bearer, from = value("app_token"))]
    pub app_token: AccessToken,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

/// `{"accessToken", "refreshToken", "expiresAt"}` with `expiresAt` in UNIX seconds.
#[token_endpoint(response, rename_all = "camelCase")]
#[derive(Debug)]
pub struct MayaTokens {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(refresh_token)]
    pub refresh_token: Option<RefreshToken>,
    #[token(expiry)]
    pub expires_at: Option<UnixTime>,
}

pub struct MayaConnect {
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub scope: Option<String>,
}

/// The forum's shape: an OAuth 2.0 refresh-token grant, form-encoded, client in HTTP Basic.
#[token_endpoint(post = "/connect/token", form, response = OAuthTokens, error = OAuthError,
                 config = MayaConnect, body(name = "grant_type", value = "refresh_token"))]
#[derive(Debug, PartialEq)]
pub struct MayaConnectRefresh {
    #[token(basic_user, from = config.client_id)]
    pub client_id: String,
    #[token(basic_password, from = config.client_secret)]
    pub client_secret: ClientSecret,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(from = config.scope)]
    pub scope: Option<String>,
}

#[test]
fn maya_mini_app_refresh_sends_a_fresh_reference_and_the_app_token() {
    let session = TokenSet::<token_core::NoExtras>::new(AccessToken::new("customer-at"))
        .with_refresh_token("customer-rt".into());
    let app = AccessToken::new("app-token");
    let cx = RequestContext::for_refresh(&(), &session).with_value("app_token", &app);
    let first = MayaRefresh::from_context(&cx).unwrap();
    let second = MayaRefresh::from_context(&cx).unwrap();
    assert_ne!(first.request_reference_no, second.request_reference_no);
    let request = first
        .encode_request(&url::Url::parse("https://op-sandbox.paymaya.com").unwrap())
        .unwrap();
    assert_eq!(request.uri(), "https://op-sandbox.paymaya.com/tokens");
    let reference = request.headers()["Request-Reference-No"].to_str().unwrap();
    assert_eq!(reference.len(), 36);
    assert_eq!(&reference[14..15], "4", "a UUIDv4");
    assert_eq!(request.headers()["authorization"], "Bearer app-token");
    assert_eq!(body_json(&request), json!({"refreshToken": "customer-rt"}));
    assert_eq!(MayaRefresh::decode_request(&request).unwrap(), first);
    assert_eq!(first.secrets(), vec!["app-token", "customer-rt"]);

    let without_app = RequestContext::for_refresh(&(), &session);
    assert!(
        MayaRefresh::from_context(&without_app)
            .unwrap_err()
            .to_string()
            .contains("`app_token`")
    );
}

#[test]
fn maya_tokens_read_unix_expiry_both_ways() {
    let body = r#"{"accessToken":"at-2","refreshToken":"rt-2","expiresAt":1654473600}"#;
    let set = decode_response::<MayaRefresh>(&answer(200, body), now(), &[]).unwrap();
    assert_eq!(set.access_expires_at, Some(datetime!(2022-06-06 00:00 UTC)));
    let sent = MayaTokens::from_token_set(&set, now()).encode_body();
    assert_eq!(
        serde_json::from_slice::<Value>(&sent).unwrap(),
        serde_json::from_str::<Value>(body).unwrap()
    );
}

#[test]
fn maya_connect_refresh_is_a_form_with_basic_client_auth() {
    let config = MayaConnect {
        client_id: "client".into(),
        client_secret: ClientSecret::new("s3cret"),
        scope: None,
    };
    let session = TokenSet::<token_core::NoExtras>::new(AccessToken::new("at"))
        .with_refresh_token("rt/1+2".into());
    let refresh =
        MayaConnectRefresh::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    let request = refresh.encode_request(&base()).unwrap();
    assert_eq!(
        request.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        request.headers()["authorization"],
        "Basic Y2xpZW50OnMzY3JldA=="
    );
    assert_eq!(
        std::str::from_utf8(request.body()).unwrap(),
        "grant_type=refresh_token&refresh_token=rt%2F1%2B2"
    );
    assert_eq!(
        MayaConnectRefresh::decode_request(&request).unwrap(),
        refresh
    );
    assert_eq!(refresh.secrets(), vec!["s3cret", "rt/1+2"]);
}

#[test]
fn maya_invalid_token_echoing_the_secret_is_scrubbed() {
    let refresh = MayaConnectRefresh {
        client_id: "client".into(),
        client_secret: ClientSecret::new("s3cret"),
        refresh_token: "rt-LEAKED".into(),
        scope: Some("openid".into()),
    };
    let body =
        r#"{"error":"invalid_token","error_description":"Invalid refresh token: rt-LEAKED."}"#;
    let error = provider_error(decode_response::<MayaConnectRefresh>(
        &answer(400, body),
        now(),
        &refresh.secrets(),
    ));
    assert_eq!(error.kind, ErrorKind::ReauthRequired);
    let message = error.message.expect("the provider's message is kept");
    assert!(message.contains("Invalid refresh token"), "{message}");
    assert!(!message.contains("rt-LEAKED"), "{message}");
    let client = r#"{"error":"invalid_client","error_description":"Bad client credentials."}"#;
    assert_eq!(
        provider_error(decode_response::<MayaConnectRefresh>(
            &answer(401, client),
            now(),
            &[]
        ))
        .kind,
        ErrorKind::Misconfigured
    );
}

// ---- round trips ---------------------------------------------------------------------------

#[test]
fn token_sets_round_trip_through_every_response_definition() {
    let set = TokenSet::<token_core::NoExtras>::new(AccessToken::new("at"))
        .with_refresh_token("rt".into())
        .with_access_expires_at(now() + Duration::seconds(600))
        .with_token_type("Bearer")
        .with_scope("payments");
    fn round<R: TokenResponse>(set: &TokenSet<R::Extras>) -> TokenSet<R::Extras> {
        let body = R::from_token_set(set, now()).encode_body();
        R::decode_body(&body)
            .unwrap()
            .into_token_set(now())
            .unwrap()
    }
    assert_eq!(round::<OAuthTokens>(&set), set);
    let plain = TokenSet::<token_core::NoExtras>::new(AccessToken::new("at"))
        .with_refresh_token("rt".into())
        .with_access_expires_at(now() + Duration::seconds(600));
    assert_eq!(round::<PaymentsgateTokens>(&plain), plain);
    assert_eq!(round::<MayaTokens>(&plain), plain);
    let alipay = TokenSet::<AlipayExtras>::new(AccessToken::new("at"))
        .with_refresh_token("rt".into())
        .with_access_expires_at(datetime!(2022-06-06 12:12:12 +08:00))
        .with_refresh_expires_at(datetime!(2022-06-08 12:12:12 +08:00))
        .with_extras(AlipayExtras {
            customer_id: Some("c".into()),
            user_login_id: None,
        });
    assert_eq!(round::<ApplyTokenResult>(&alipay), alipay);
}

#[test]
fn requests_round_trip_through_the_server_side() {
    let vault = VaultRefresh {
        partner_id: -7,
        refresh_token: "rt".into(),
    };
    assert_eq!(
        VaultRefresh::decode_request(&vault.encode_request(&base()).unwrap()).unwrap(),
        vault
    );
    let apply = ApplyToken {
        acquirer_id: Some("a".into()),
        psp_id: "p".into(),
        refresh_token: "rt".into(),
    };
    assert_eq!(
        ApplyToken::decode_request(&apply.encode_request(&base()).unwrap()).unwrap(),
        apply
    );
    let connect = MayaConnectRefresh {
        client_id: "c:id".into(),
        client_secret: ClientSecret::new("p:w"),
        refresh_token: "rt".into(),
        scope: Some("openid profile".into()),
    };
    assert_eq!(
        MayaConnectRefresh::decode_request(&connect.encode_request(&base()).unwrap())
            .unwrap()
            .scope,
        connect.scope
    );
    let get = http::Request::builder()
        .method("GET")
        .body(Vec::new())
        .unwrap();
    assert!(
        VaultRefresh::decode_request(&get)
            .unwrap_err()
            .0
            .contains("method")
    );
}
