//! Paymentsgate's endpoints against the seed document's literal samples, both directions.

use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use token_core::codec::{decode_response, encode_error, encode_response};
use token_core::{
    codec::Endpoint, codec::ErrorResponse, codec::FromContext, codec::RequestContext,
    codec::TokenResponse, error::EndpointError, error::ErrorKind, secret::AccessToken,
    secret::RefreshToken, token_set::TokenSet,
};
use token_provider_paymentsgate::{
    IssueError, IssueServiceToken, PaymentsgateConfig, PaymentsgateError, PaymentsgateTokens,
    RefreshServiceToken,
};

// seeds/paymentsgate-jwt-refresh.txt
const SEED_ACCESS: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...";
const SEED_REFRESH: &str = "8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl...";
const SEED_REQUEST: &str = r#"{
      "refresh_token": "YOUR_REFRESH_TOKEN"
    }"#;
const SEED_CURL_BODY: &str = r#"{
        "refresh_token": "8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl..."
      }"#;
const SEED_RESPONSE: &str = r#"{
      "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
      "refresh_token": "8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl...",
      "expires_in": 3600
    }"#;

fn now() -> OffsetDateTime {
    datetime!(2026-01-01 00:00 UTC)
}

fn base() -> url::Url {
    "https://secure.sandbox.paymentsgate.io".parse().unwrap()
}

fn config() -> PaymentsgateConfig {
    PaymentsgateConfig::new("acct-1", "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K")
}

fn seed_session() -> TokenSet {
    TokenSet::new(AccessToken::new(SEED_ACCESS)).with_refresh_token(RefreshToken::new(SEED_REFRESH))
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
fn refresh_encodes_the_seed_curl_request() {
    let config = config();
    let session = seed_session();
    let refresh =
        RefreshServiceToken::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    let request = refresh.encode_request(&base()).unwrap();
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(
        request.uri(),
        "https://secure.sandbox.paymentsgate.io/auth/token/refresh"
    );
    assert_eq!(request.headers()["content-type"], "application/json");
    assert_eq!(
        request.headers()["authorization"],
        format!("Bearer {SEED_ACCESS}").as_str()
    );
    assert_eq!(json_of(request.body()), json_of(SEED_CURL_BODY.as_bytes()));
    assert_eq!(refresh.secrets(), [SEED_ACCESS, SEED_REFRESH]);
}

#[test]
fn the_server_reads_the_seed_request_with_or_without_the_bearer() {
    let with_bearer = http::Request::builder()
        .method("POST")
        .uri("/auth/token/refresh")
        .header("content-type", "application/json")
        .header("authorization", "Bearer YOUR_ACCESS_TOKEN")
        .body(SEED_REQUEST.as_bytes().to_vec())
        .unwrap();
    let read = RefreshServiceToken::decode_request(&with_bearer).unwrap();
    assert_eq!(read.refresh_token.expose_secret(), "YOUR_REFRESH_TOKEN");
    assert_eq!(
        read.access_token.as_ref().map(AccessToken::expose_secret),
        Some("YOUR_ACCESS_TOKEN")
    );
    // The official Node and PHP clients send no Authorization header.
    let bare = http::Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .body(SEED_REQUEST.as_bytes().to_vec())
        .unwrap();
    assert_eq!(
        RefreshServiceToken::decode_request(&bare)
            .unwrap()
            .access_token,
        None
    );
    let empty = http::Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .body(b"{}".to_vec())
        .unwrap();
    assert!(
        RefreshServiceToken::decode_request(&empty)
            .unwrap_err()
            .0
            .contains("refresh_token")
    );
}

#[test]
fn the_seed_response_decodes_and_the_server_writes_it_back() {
    let set =
        decode_response::<RefreshServiceToken>(&answer(200, SEED_RESPONSE), now(), &[]).unwrap();
    assert_eq!(set.access_token.expose_secret(), SEED_ACCESS);
    assert_eq!(
        set.refresh_token.as_ref().unwrap().expose_secret(),
        SEED_REFRESH
    );
    assert_eq!(set.access_expires_at, Some(now() + Duration::seconds(3600)));
    let sent = encode_response(&PaymentsgateTokens::from_token_set(&set, now()));
    assert_eq!(json_of(sent.body()), json_of(SEED_RESPONSE.as_bytes()));
}

#[test]
fn without_expires_in_the_jwt_exp_gives_the_expiry() {
    // payload {"sub":"acct-1","exp":1767229200} = 2026-01-01T01:00:00Z
    let jwt = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhY2N0LTEiLCJleHAiOjE3NjcyMjkyMDB9.";
    let body = json!({"access_token": jwt, "refresh_token": "rt-2"}).to_string();
    let set = decode_response::<RefreshServiceToken>(&answer(200, &body), now(), &[]).unwrap();
    assert_eq!(set.access_expires_at, Some(datetime!(2026-01-01 01:00 UTC)));
    // `expires_in` wins over the claim when both are there.
    let body = json!({"access_token": jwt, "expires_in": 60}).to_string();
    let set = decode_response::<RefreshServiceToken>(&answer(200, &body), now(), &[]).unwrap();
    assert_eq!(set.access_expires_at, Some(now() + Duration::seconds(60)));
}

#[test]
fn issue_sends_the_account_credentials_and_the_server_reads_them() {
    let config = config();
    let issue = IssueServiceToken::from_context(&RequestContext::new(&config)).unwrap();
    let request = issue.encode_request(&base()).unwrap();
    assert_eq!(
        request.uri(),
        "https://secure.sandbox.paymentsgate.io/auth/token"
    );
    assert!(request.headers().get("authorization").is_none());
    assert_eq!(
        json_of(request.body()),
        json!({"account_id": "acct-1", "public_key": "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K"})
    );
    assert_eq!(IssueServiceToken::decode_request(&request).unwrap(), issue);
}

#[test]
fn refused_refreshes_are_classified_by_status() {
    let kind = |status: u16, error: &str| {
        let body = json!({"error": error, "message": "m", "statusCode": status}).to_string();
        provider_error(decode_response::<RefreshServiceToken>(
            &answer(status, &body),
            now(),
            &[],
        ))
    };
    assert_eq!(kind(400, "Bad Request").kind, ErrorKind::ReauthRequired);
    assert_eq!(kind(401, "Unauthorized").kind, ErrorKind::ReauthRequired);
    assert_eq!(kind(403, "Forbidden").kind, ErrorKind::Misconfigured);
    assert_eq!(kind(429, "Too Many Requests").kind, ErrorKind::Transient);
    assert_eq!(kind(502, "Bad Gateway").kind, ErrorKind::Transient);
    assert_eq!(kind(404, "Not Found").kind, ErrorKind::Rejected);
    let unauthorized = kind(401, "Unauthorized");
    assert_eq!(unauthorized.code, "Unauthorized");
    assert_eq!(unauthorized.message.as_deref(), Some("m"));
}

#[test]
fn refused_issues_are_a_misconfiguration() {
    let kind = |status: u16| {
        let body = json!({"error": "Unauthorized", "message": "bad key"}).to_string();
        provider_error(decode_response::<IssueServiceToken>(
            &answer(status, &body),
            now(),
            &[],
        ))
        .kind
    };
    assert_eq!(kind(400), ErrorKind::Misconfigured);
    assert_eq!(kind(401), ErrorKind::Misconfigured);
    assert_eq!(kind(403), ErrorKind::Misconfigured);
    assert_eq!(kind(429), ErrorKind::Transient);
}

/// A refusal whose body has no `error` name (NestJS's default `{"statusCode":401,"message":
/// "Unauthorized"}`, a message list, an empty or HTML body from the gateway) is classified by
/// its status as declared: an issue call's 400 or 401 is a misconfiguration, a 403 too, a 429
/// transient. Not re-auth: only Paymentsgate's own error (with its `error` name) says that a
/// pair is dead, and a body that is not that error (a gateway's page) is no verdict on it.
#[test]
fn a_refusal_without_an_error_name_is_classified_by_its_declared_status() {
    let bodies = [
        r#"{"statusCode":STATUS,"message":"Unauthorized"}"#,
        r#"{"statusCode":STATUS,"message":["refresh_token must be a string"]}"#,
        "",
        "<html><body>Unauthorized</body></html>",
    ];
    for template in bodies {
        let kind = |status: u16, issue: bool| {
            let body = template.replace("STATUS", &status.to_string());
            let decoded = match issue {
                false => decode_response::<RefreshServiceToken>(&answer(status, &body), now(), &[]),
                true => decode_response::<IssueServiceToken>(&answer(status, &body), now(), &[]),
            };
            decoded.expect_err(&body).kind()
        };
        assert_eq!(kind(400, false), ErrorKind::Rejected, "{template}");
        assert_eq!(kind(401, false), ErrorKind::Rejected, "{template}");
        assert_eq!(kind(403, false), ErrorKind::Misconfigured, "{template}");
        assert_eq!(kind(401, true), ErrorKind::Misconfigured, "{template}");
        assert_eq!(kind(429, true), ErrorKind::Transient, "{template}");
        // A status nothing declares keeps its default.
        assert_eq!(kind(404, false), ErrorKind::Rejected, "{template}");
    }
    // The body is kept for diagnosis, the refresh token echoed in it removed.
    let echoed = r#"{"statusCode":401,"message":"unknown refresh token 8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl..."}"#;
    let error =
        decode_response::<RefreshServiceToken>(&answer(401, echoed), now(), &[SEED_REFRESH])
            .unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("unknown refresh token"), "{shown}");
    assert!(!shown.contains("8xLOxBat"), "{shown}");
}

#[test]
fn the_error_body_round_trips_with_its_status_code_and_details() {
    let body = r#"{"error":"Forbidden","message":"Account disabled","details":{"reason":"kyc"},"statusCode":403}"#;
    let error =
        PaymentsgateError::decode_error(http::StatusCode::FORBIDDEN, body.as_bytes()).unwrap();
    assert_eq!(error.details, Some(json!({"reason": "kyc"})));
    let sent = encode_error(&error);
    assert_eq!(
        sent.status(),
        403,
        "the server sends the status the body names"
    );
    assert_eq!(json_of(sent.body()), json_of(body.as_bytes()));
    let minimal = r#"{"error":"Unauthorized","message":"no"}"#;
    let error =
        IssueError::decode_error(http::StatusCode::UNAUTHORIZED, minimal.as_bytes()).unwrap();
    assert_eq!(error.status_code, None);
    assert_eq!(
        json_of(&error.encode_error().1),
        json_of(minimal.as_bytes())
    );
    assert!(
        PaymentsgateError::decode_error(http::StatusCode::OK, SEED_RESPONSE.as_bytes()).is_none()
    );
}

/// The base URL's password and query (credentials an integrator may put there) are not
/// shown by the provider's `Debug`.
#[test]
fn the_provider_s_debug_shows_no_credential_of_its_base_url() {
    use token_test_support::url_credentials::{
        assert_shows_no_url_credential, url_with_credentials,
    };
    let provider = token_provider_paymentsgate::Paymentsgate::new(url_with_credentials(), config());
    assert_shows_no_url_credential(&format!("{provider:?}"));
}
