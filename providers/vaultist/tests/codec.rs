//! Vault.ist's v3 and v2 shapes against the documents' literal samples, both directions.

use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use token_core::codec::{RefusalReason, decode_response, encode_error, encode_response};
use token_core::{
    codec::Endpoint, codec::ErrorResponse, codec::FromContext, codec::RequestContext,
    codec::TokenResponse, error::EndpointError, error::ErrorKind, secret::AccessToken,
    secret::RefreshToken, token_set::TokenSet,
};
use token_provider_vaultist::{
    ApiVersion, RefreshV2, RefreshV3, VaultistCode, VaultistConfig, VaultistError, VaultistExtras,
    VaultistTokens, VaultistV2Error, VaultistV2Status,
};

// seeds/vaultist-v3-refresh.txt
const V3_REQUEST: &str = r#"{
  "refreshToken": "dGhpcyBpcyBhIHJlZnJlc2hUb2tlbi..."
}"#;
const V3_RESPONSE: &str = r#"{
  "access_token": "eyJhbGciOiJIUzI1NiIsIn...",
  "refresh_token": "dGhpcyBpcyBhIHJlZnJlc2h...",
  "expires_in": 3600,
  "token_type": "Bearer"
}"#;
const V3_EXPIRED: &str = r#"{
  "error": "invalid_grant",
  "error_description": "Refresh token has expired or is invalid."
}"#;
const V3_MISSING: &str = r#"{
  "error": "invalid_request",
  "error_description": "Missing refresh token."
}"#;
// api.vault.ist v2.0 "Refreshing Access Tokens"
const V2_REQUEST: &str = r#"{
  "grant_type": "refresh_token",
  "refresh_token": "eyJraWQiOiJmODAyNjg0OC1mNTJkLTRmY"
}"#;
const V2_RESPONSE: &str = r#"{
  "access_token": "eyJraWQiOiJmODAyNjg0OC1mNTJkLTRmY",
  "token_type": "Bearer",
  "refresh_token": "eyJraWQiOiJmFGGghrwghhnEGFGrehrnjdf7653kFZ_uusa3WYE",
  "scope": "accounts:create accounts:read ... withdraw_other_account:show",
  "expires_in": 86400,
  "user_id": "usr:b06d9aaa-4310-4c0d-9e5343c1b35"
}"#;
const V2_EXPIRED: &str = r#"{
  "status": "UNAUTHORIZED",
  "message": "The Token has expired on 2025-01-01T00:00:00.000Z",
  "traceId": "TraceId unavailable",
  "errors": []
}"#;
// The sandbox host's FAQ.
const COMMON: &str = r#"{"message": "Merchant not found", "errorId": "e-42", "systemId": "vault", "error": "COMMON"}"#;

fn now() -> OffsetDateTime {
    datetime!(2026-01-01 00:00 UTC)
}

fn base() -> url::Url {
    "https://api.vault.sandbox.testessential.net"
        .parse()
        .unwrap()
}

fn session(refresh: &str) -> TokenSet<VaultistExtras> {
    TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new(refresh))
}

fn answer(status: u16, body: &str) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(body.as_bytes().to_vec())
        .unwrap()
}

fn json_of(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn provider_error<T: std::fmt::Debug>(
    result: Result<T, EndpointError>,
) -> token_core::error::ProviderError {
    match result {
        Err(EndpointError::Provider(error)) => error,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

#[test]
fn v3_encodes_the_seed_request_with_its_headers() {
    let config = VaultistConfig::new(42).with_merchant_id("m-1");
    let session = session("dGhpcyBpcyBhIHJlZnJlc2hUb2tlbi...");
    let refresh = RefreshV3::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    let request = refresh.encode_request(&base()).unwrap();
    assert_eq!(
        request.uri(),
        "https://api.vault.sandbox.testessential.net/v1/auth/token"
    );
    assert_eq!(request.headers()["partnerId"], "42");
    assert_eq!(request.headers()["grantType"], "refresh_token");
    assert_eq!(request.headers()["X-Merchant-ID"], "m-1");
    assert_eq!(request.headers()["content-type"], "application/json");
    assert_eq!(json_of(request.body()), json_of(V3_REQUEST.as_bytes()));
    let without_merchant = VaultistConfig::new(42);
    let request =
        RefreshV3::from_context(&RequestContext::for_refresh(&without_merchant, &session))
            .unwrap()
            .encode_request(&base())
            .unwrap();
    assert!(request.headers().get("X-Merchant-ID").is_none());
}

#[test]
fn v3_server_reads_the_seed_request_and_checks_its_headers() {
    let request = |grant: &str| {
        http::Request::builder()
            .method("POST")
            .uri("/v1/auth/token")
            .header("partnerId", "42")
            .header("grantType", grant)
            .header("content-type", "application/json")
            .body(V3_REQUEST.as_bytes().to_vec())
            .unwrap()
    };
    let read = RefreshV3::decode_request(&request("refresh_token")).unwrap();
    assert_eq!(read.partner_id, 42);
    assert_eq!(read.merchant_id, None);
    assert_eq!(
        read.refresh_token.expose_secret(),
        "dGhpcyBpcyBhIHJlZnJlc2hUb2tlbi..."
    );
    assert!(RefreshV3::decode_request(&request("password")).is_err());
    // A v2 request is not a v3 request, and the other way round.
    let v2 = http::Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .body(V2_REQUEST.as_bytes().to_vec())
        .unwrap();
    assert!(RefreshV3::decode_request(&v2).is_err());
    assert!(RefreshV2::decode_request(&request("refresh_token")).is_err());
}

#[test]
fn v3_seed_response_decodes_and_the_server_writes_it_back() {
    let set = decode_response::<RefreshV3>(&answer(200, V3_RESPONSE), now(), &[]).unwrap();
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
    assert_eq!(set.extras, VaultistExtras::default());
    let sent = encode_response(&VaultistTokens::from_token_set(&set, now()));
    assert_eq!(json_of(sent.body()), json_of(V3_RESPONSE.as_bytes()));
}

#[test]
fn v3_seed_errors_are_classified_and_round_trip() {
    let expired = provider_error(decode_response::<RefreshV3>(
        &answer(400, V3_EXPIRED),
        now(),
        &[],
    ));
    assert_eq!(
        (expired.kind, expired.code.as_str()),
        (ErrorKind::ReauthRequired, "invalid_grant")
    );
    assert_eq!(
        expired.message.as_deref(),
        Some("Refresh token has expired or is invalid.")
    );
    let missing = provider_error(decode_response::<RefreshV3>(
        &answer(400, V3_MISSING),
        now(),
        &[],
    ));
    assert_eq!(
        (missing.kind, missing.code.as_str()),
        (ErrorKind::Rejected, "invalid_request")
    );
    for body in [V3_EXPIRED, V3_MISSING, COMMON] {
        let error =
            VaultistError::decode_error(http::StatusCode::BAD_REQUEST, body.as_bytes()).unwrap();
        let sent = encode_error(&error);
        assert_eq!(sent.status(), 400);
        assert_eq!(json_of(sent.body()), json_of(body.as_bytes()));
    }
}

#[test]
fn the_generic_common_error_is_classified_by_status() {
    let error =
        VaultistError::decode_error(http::StatusCode::BAD_REQUEST, COMMON.as_bytes()).unwrap();
    assert_eq!(error.error, VaultistCode::Common);
    assert_eq!(error.message.as_deref(), Some("Merchant not found"));
    assert_eq!(error.system_id.as_deref(), Some("vault"));
    let kind = |status| {
        provider_error(decode_response::<RefreshV3>(
            &answer(status, COMMON),
            now(),
            &[],
        ))
        .kind
    };
    assert_eq!(kind(400), ErrorKind::Rejected);
    assert_eq!(kind(503), ErrorKind::Transient);
}

#[test]
fn v2_encodes_and_reads_the_documented_request() {
    let config = VaultistConfig::new(42).with_api_version(ApiVersion::V2);
    let session = session("eyJraWQiOiJmODAyNjg0OC1mNTJkLTRmY");
    let refresh = RefreshV2::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    let request = refresh.encode_request(&base()).unwrap();
    assert_eq!(request.uri().path(), "/v1/auth/token");
    assert!(request.headers().get("partnerId").is_none());
    assert!(request.headers().get("grantType").is_none());
    assert_eq!(json_of(request.body()), json_of(V2_REQUEST.as_bytes()));
    let documented = http::Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .body(V2_REQUEST.as_bytes().to_vec())
        .unwrap();
    assert_eq!(RefreshV2::decode_request(&documented).unwrap(), refresh);
}

#[test]
fn v2_response_carries_scope_and_user_id_both_ways() {
    let set = decode_response::<RefreshV2>(&answer(200, V2_RESPONSE), now(), &[]).unwrap();
    assert_eq!(set.access_expires_at, Some(now() + Duration::hours(24)));
    assert_eq!(
        set.scope.as_deref(),
        Some("accounts:create accounts:read ... withdraw_other_account:show")
    );
    assert_eq!(
        set.extras.user_id.as_deref(),
        Some("usr:b06d9aaa-4310-4c0d-9e5343c1b35")
    );
    let sent = encode_response(&VaultistTokens::from_token_set(&set, now()));
    assert_eq!(json_of(sent.body()), json_of(V2_RESPONSE.as_bytes()));
}

#[test]
fn v2_expired_refresh_token_is_reauth_and_round_trips() {
    let error = provider_error(decode_response::<RefreshV2>(
        &answer(401, V2_EXPIRED),
        now(),
        &[],
    ));
    assert_eq!(
        (error.kind, error.code.as_str()),
        (ErrorKind::ReauthRequired, "UNAUTHORIZED")
    );
    assert_eq!(
        error.message.as_deref(),
        Some("The Token has expired on 2025-01-01T00:00:00.000Z")
    );
    let decoded =
        VaultistV2Error::decode_error(http::StatusCode::UNAUTHORIZED, V2_EXPIRED.as_bytes())
            .unwrap();
    assert_eq!(decoded.status, VaultistV2Status::Unauthorized);
    assert_eq!(decoded.trace_id.as_deref(), Some("TraceId unavailable"));
    let sent = encode_error(&decoded);
    assert_eq!(sent.status(), 401);
    assert_eq!(json_of(sent.body()), json_of(V2_EXPIRED.as_bytes()));
    let bad = VaultistV2Error::new(VaultistV2Status::BadRequest, "grant_type is missing");
    let sent = encode_error(&bad);
    assert_eq!(sent.status(), 400);
    assert_eq!(
        provider_error(decode_response::<RefreshV2>(&sent, now(), &[])).kind,
        ErrorKind::Rejected
    );
    // A 401 with another status name is still a dead session.
    let other = json!({"status": "TOKEN_REVOKED", "message": "revoked"}).to_string();
    assert_eq!(
        provider_error(decode_response::<RefreshV2>(
            &answer(401, &other),
            now(),
            &[]
        ))
        .kind,
        ErrorKind::ReauthRequired
    );
}

/// A v2 refresh answered 401 with a body that is not a v2 error (Vault.ist's generic
/// `COMMON` error for an unknown merchant, a gateway's HTML page, nothing, Spring Boot's
/// default error, whose `status` is the HTTP status as a number, or a blank `status`) is no
/// verdict on the refresh token: only the documented `UNAUTHORIZED` error asks the user to
/// authorize again. A misconfigured merchant id must not declare every session dead.
#[test]
fn a_v2_401_that_is_not_a_v2_error_is_no_reauth() {
    for body in [
        COMMON,
        "<html><body>401 Authorization Required</body></html>",
        "",
        r#"{"timestamp":"2025-01-01T00:00:00.000+00:00","status":401,"error":"Unauthorized","path":"/v1/auth/token"}"#,
        r#"{"status":" ","message":"m"}"#,
    ] {
        let error = decode_response::<RefreshV2>(&answer(401, body), now(), &[]).unwrap_err();
        assert_ne!(error.kind(), ErrorKind::ReauthRequired, "{body}");
    }
}

/// The base URL's password and query (credentials an integrator may put there) are not
/// shown by the provider's `Debug`.
#[test]
fn the_provider_s_debug_shows_no_credential_of_its_base_url() {
    use token_test_support::url_credentials::{
        assert_shows_no_url_credential, url_with_credentials,
    };
    let provider =
        token_provider_vaultist::Vaultist::new(url_with_credentials(), VaultistConfig::new(42));
    assert_shows_no_url_credential(&format!("{provider:?}"));
}

/// The server's own failure (the sandbox's issuer store failing: the `server_error` refusal)
/// is answered as a server failure, HTTP 500, in each version's shape, and read as one: a
/// transient failure, retried. Not as v2's 401, which the client reads as a dead refresh
/// token (ending a live session), nor as v3's 400, a refusal never retried.
#[test]
fn the_servers_own_failure_is_a_retried_5xx_in_both_versions() {
    let v2 = encode_error(&VaultistV2Error::from_refusal(
        RefusalReason::ServerError,
        "the issuer failed",
    ));
    let v3 = encode_error(&VaultistError::from_refusal(
        RefusalReason::ServerError,
        "the issuer failed",
    ));
    assert_eq!((v2.status().as_u16(), v3.status().as_u16()), (500, 500));
    let v2 = decode_response::<RefreshV2>(&v2, now(), &[]).unwrap_err();
    let v3 = decode_response::<RefreshV3>(&v3, now(), &[]).unwrap_err();
    assert_eq!(
        (v2.kind(), v3.kind()),
        (ErrorKind::Transient, ErrorKind::Transient),
        "{v2} / {v3}"
    );
}
