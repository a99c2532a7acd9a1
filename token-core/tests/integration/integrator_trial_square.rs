//! Square's ObtainToken with `grant_type=refresh_token` (the code flow), declared from its
//! documents with `#[token_endpoint]` only.
//!
//! Verified in the public reference (the OAuth API's ObtainToken, ObtainTokenResponse and
//! "Refresh, Revoke, and Limit the Scope of OAuth Tokens"): `POST
//! https://connect.squareup.com/oauth2/token` with a JSON body `client_id`, `client_secret`,
//! `grant_type` and `refresh_token`, and the `Square-Version` header. The answer:
//! `access_token`, `token_type` (`bearer`), `expires_at` (ISO 8601, 30 days on), `merchant_id`,
//! `refresh_token` (with the code flow, the same refresh token as presented: no rotation),
//! `short_lived`, and `refresh_token_expires_at` (PKCE flow only). Square asks to refresh
//! every 7 days or less, well before the 30 days. An invalid refresh token was answered
//! (a developer forum thread quoting the body) `{"message": "Invalid refresh token", "type":
//! "service.not_authorized"}`.
//!
//! Assumptions: that error comes with HTTP 401; `service.not_authorized` always means the
//! authorization is gone (re-authorize), although a wrong client secret may well be answered
//! with the same type, which only the message would tell apart (a kind cannot be declared by
//! message); a 5xx is transient whatever its body; errors in Square's newer `{"errors":
//! [{"category", "code", "detail"}]}` shape cannot be read by code (fields are flat), so
//! such an answer is classified by its status alone.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use time::OffsetDateTime;
use time::macros::datetime;
use token_core::codec::{
    Endpoint, ErrorResponse, FromContext, RefusalReason, RequestContext, decode_response,
};
use token_core::expiry::Iso8601;
use token_core::issuer::{IssuerConfig, RefreshRotation};
use token_core::provider::RefreshProvider;
use token_core::sandbox::{Failure, RunningSandbox, Sandbox};
use token_core::{
    clock::Clock, clock::TokioClock, error::EndpointError, error::ErrorKind,
    manager::ManagerConfig, manager::RetryPolicy, manager::TokenManager, secret::AccessToken,
    secret::ClientSecret, secret::RefreshToken, token_endpoint, token_set::TokenSet,
};

use crate::integrator_trial::{
    HTML, answer, assert_hidden, huge_body, revoked_session_asks_for_reauthorization, shown,
};

#[token_endpoint(config)]
#[derive(Clone, Debug, PartialEq)]
pub struct SquareConfig {
    pub client_id: String,
    pub client_secret: ClientSecret,
}

/// The seller the tokens act for.
#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seller {
    #[token(keep)]
    pub merchant_id: Option<String>,
    pub short_lived: Option<bool>,
}

#[token_endpoint(response, extras = Seller)]
#[derive(Debug)]
pub struct SquareTokens {
    pub access_token: AccessToken,
    pub token_type: Option<String>,
    #[token(expiry)]
    pub expires_at: Option<Iso8601>,
    pub seller: Seller,
    pub refresh_token: Option<RefreshToken>,
    #[token(refresh_expiry)]
    pub refresh_token_expires_at: Option<Iso8601>,
}

#[token_endpoint(error_code)]
#[derive(Clone, Debug, PartialEq)]
pub enum SquareType {
    #[token(code = "service.not_authorized", kind = reauth_required,
            refusal(invalid_refresh_token, expired_refresh_token))]
    NotAuthorized,
    #[token(code = "bad_request", kind = misconfigured, status = 400,
            refusal(bad_request, unknown_client))]
    BadRequest,
    Other(String),
}

#[token_endpoint(error, status = 401)]
#[derive(Debug)]
pub struct SquareError {
    #[token(code, rename = "type")]
    pub error_type: SquareType,
    pub message: Option<String>,
}

#[token_endpoint(post = "/oauth2/token", json, response = SquareTokens, error = SquareError,
                 config = SquareConfig, provider = "square",
                 header(name = "Square-Version", value = "2024-07-17"),
                 body(name = "grant_type", value = "refresh_token"))]
#[derive(Debug)]
pub struct SquareRefresh {
    #[token(from = config.client_id)]
    pub client_id: String,
    #[token(from = config.client_secret)]
    pub client_secret: ClientSecret,
    pub refresh_token: RefreshToken,
}

const CLIENT_ID: &str = "sq0idp-wGVapF8sNt9PLrdj5znuKA";
const CLIENT_SECRET: &str = "sq0csp-Vy7aX9WzQm3bKz1nL5cD8eFgH2jK4mN6pQrStUvWxYz";
const REFRESH_TOKEN: &str = "EQAAEPhFaDZMmvGpJPoqW1hQyYk6nXsVgTbB8cCdDeEfFgGhHiIjJkKlLmMnNoOpP";

fn config() -> SquareConfig {
    SquareConfig::new(CLIENT_ID, CLIENT_SECRET)
}

fn now() -> OffsetDateTime {
    datetime!(2021-10-05 16:15:50 UTC)
}

fn session() -> TokenSet<Seller> {
    TokenSet::new(AccessToken::new("at-old")).with_refresh_token(RefreshToken::new(REFRESH_TOKEN))
}

fn refresh() -> SquareRefresh {
    let (config, session) = (config(), session());
    SquareRefresh::from_context(&RequestContext::for_refresh(&config, &session)).unwrap()
}

fn decode(status: u16, body: &[u8]) -> Result<TokenSet<Seller>, EndpointError> {
    decode_response::<SquareRefresh>(&answer(status, body), now(), &refresh().secrets())
}

#[test]
fn the_request_is_the_documented_json_body() {
    let request = refresh()
        .encode_request(&"https://connect.squareup.com".parse().unwrap())
        .unwrap();
    assert_eq!(request.uri(), "https://connect.squareup.com/oauth2/token");
    assert_eq!(request.headers()["Square-Version"], "2024-07-17");
    let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET,
                           "refresh_token": REFRESH_TOKEN, "grant_type": "refresh_token"})
    );
    // The server side checks the constant.
    let decoded = SquareRefresh::decode_request(&request).unwrap();
    assert_eq!(decoded.client_id, CLIENT_ID);
    let mut other = request.clone();
    *other.body_mut() = String::from_utf8(request.body().clone())
        .unwrap()
        .replace(
            r#""grant_type":"refresh_token""#,
            r#""grant_type":"authorization_code""#,
        )
        .into_bytes();
    assert!(SquareRefresh::decode_request(&other).is_err());
    assert_eq!(refresh().secrets(), [CLIENT_SECRET, REFRESH_TOKEN]);
    assert_hidden(&format!("{:?}", refresh()), &[CLIENT_SECRET, REFRESH_TOKEN]);
}

#[test]
fn the_documented_answer_expires_at_its_instant_and_keeps_the_refresh_token() {
    let body = br#"{
  "access_token": "EAAAEPF1h3l0sY0fXq7dKjZcH4bN2mW9vT6rQ8pL5uE3aD1gC7iJ0kOyX2wZ4nM",
  "token_type": "bearer",
  "expires_at": "2021-11-04T16:15:50Z",
  "merchant_id": "ML2PMZQ9EN6Y3",
  "refresh_token": "EQAAEPhFaDZMmvGpJPoqW1hQyYk6nXsVgTbB8cCdDeEfFgGhHiIjJkKlLmMnNoOpP",
  "short_lived": false
}"#;
    let set = decode(200, body).unwrap();
    assert!(set.access_token.expose_secret().starts_with("EAAAEPF"));
    assert_eq!(
        set.access_expires_at,
        Some(datetime!(2021-11-04 16:15:50 UTC))
    );
    assert_eq!(
        set.refresh_expires_at, None,
        "the code flow's refresh token never expires"
    );
    assert_eq!(
        set.refresh_token.as_ref().map(RefreshToken::expose_secret),
        Some(REFRESH_TOKEN)
    );
    assert_eq!(set.extras.merchant_id.as_deref(), Some("ML2PMZQ9EN6Y3"));
    assert_eq!(set.extras.short_lived, Some(false));
    assert_eq!(set.token_type.as_ref().map(|t| t.as_str()), Some("bearer"));
    // The PKCE flow's answer also says when its single-use refresh token expires.
    let pkce = br#"{"access_token":"EAAA","expires_at":"2021-11-04T16:15:50Z","refresh_token":"EQAA2","refresh_token_expires_at":"2022-01-03T16:15:50Z"}"#;
    let set = decode(200, pkce).unwrap();
    assert_eq!(
        set.refresh_expires_at,
        Some(datetime!(2022-01-03 16:15:50 UTC))
    );
}

#[test]
fn the_documented_error_asks_for_reauthorization_and_the_rest_by_status() {
    let cases = [
        (
            401,
            r#"{"message":"Invalid refresh token","type":"service.not_authorized"}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            400,
            r#"{"message":"Missing required parameter","type":"bad_request"}"#,
            ErrorKind::Misconfigured,
        ),
        (
            503,
            r#"{"errors":[{"category":"API_ERROR","code":"SERVICE_UNAVAILABLE","detail":"down"}]}"#,
            ErrorKind::Transient,
        ),
        (
            429,
            r#"{"errors":[{"category":"RATE_LIMIT_ERROR","code":"RATE_LIMITED"}]}"#,
            ErrorKind::Transient,
        ),
        (
            401,
            r#"{"errors":[{"category":"AUTHENTICATION_ERROR","code":"UNAUTHORIZED","detail":"?"}]}"#,
            ErrorKind::Rejected,
        ),
    ];
    for (status, body, kind) in cases {
        let error = decode(status, body.as_bytes()).unwrap_err();
        assert_eq!(error.kind(), kind, "{status} {body}");
    }
    let answer =
        SquareError::from_refusal(RefusalReason::InvalidRefreshToken, "Invalid refresh token");
    assert_eq!(
        answer.encode_error(),
        (
            StatusCode::UNAUTHORIZED,
            br#"{"type":"service.not_authorized","message":"Invalid refresh token"}"#.to_vec()
        )
    );
}

#[test]
fn hostile_answers_are_typed_errors_that_never_show_a_token() {
    let bodies: Vec<(u16, Vec<u8>)> = vec![
        (200, HTML.to_vec()),
        (500, HTML.to_vec()),
        (200, br#"{"merchant_id":"M"}"#.to_vec()),
        (200, br#"{"access_token":1}"#.to_vec()),
        (200, br#"{"type":null,"access_token":null}"#.to_vec()),
        (
            401,
            format!(r#"{{"type":"service.not_authorized","message":"{REFRESH_TOKEN}"}}"#)
                .into_bytes(),
        ),
        (400, CLIENT_SECRET.as_bytes().to_vec()),
    ];
    for (status, body) in bodies {
        let error = decode(status, &body).unwrap_err();
        let text = shown(&error);
        assert_hidden(&text, &[REFRESH_TOKEN, CLIENT_SECRET]);
        assert!(text.len() < 8 << 10, "{} bytes shown", text.len());
    }
    // An odd expiry never costs the tokens.
    for expiry in [r#""soon""#, "12", r#""2021-13-45T99:99:99Z""#, "null"] {
        let body = format!(r#"{{"access_token":"EAAA","expires_at":{expiry}}}"#);
        assert_eq!(
            decode(200, body.as_bytes()).unwrap().access_expires_at,
            None,
            "{expiry}"
        );
    }
    let huge = huge_body();
    let error = decode(200, &huge[..huge.len() - 2]).unwrap_err();
    assert!(shown(&error).len() < 8 << 10);
}

const DAY: Duration = Duration::from_secs(86400);

/// Lets the manager's background refresh run (on the paused clock, in steps of 10 ms) until
/// `done`, for at most 100 steps.
async fn until(done: impl Fn() -> bool) {
    for _ in 0..100 {
        if done() {
            return;
        }
        tokio::time::advance(Duration::from_millis(10)).await;
    }
    panic!("not reached in 100 steps");
}

async fn sandbox(clock: Arc<dyn Clock>) -> RunningSandbox {
    Sandbox::builder()
        .clock(clock)
        .oauth_routes(false)
        .issuer_config(
            IssuerConfig::default()
                .with_access_ttl(30 * DAY)
                .with_refresh_ttl(None)
                .with_refresh_rotation(RefreshRotation::KeepAndResend),
        )
        .serve::<SquareRefresh>(&config())
        .start()
        .await
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_manager_refreshes_at_half_life_with_one_refresh_token_and_asks_for_reauthorization() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(now()));
    let sandbox = sandbox(clock.clone()).await;
    // Square's advice is to refresh when a token is 7 days old: a skew of 23 days before the
    // 30-day expiry. The manager takes at most half the remaining life (a longer skew would
    // refresh again after every answer), so it refreshes at 15 days.
    let manager = TokenManager::builder(RefreshProvider::<SquareRefresh>::new(
        sandbox.base_url(),
        config(),
    ))
    .shared_client(sandbox.client())
    .clock(clock.clone())
    .config(
        ManagerConfig::default()
            .with_refresh_skew(23 * DAY, Duration::ZERO)
            .with_retry(
                RetryPolicy::default()
                    .with_backoff(Duration::from_millis(200), Duration::from_secs(5)),
            ),
    )
    .build()
    .unwrap();
    let issued = sandbox
        .issue_with(
            "seller",
            serde_json::json!({"merchant_id": "ML2PMZQ9EN6Y3"}),
        )
        .await
        .unwrap();
    let first: TokenSet<Seller> = TokenSet::from_stored(issued).unwrap();
    manager.insert("seller", first.clone()).await.unwrap();

    tokio::time::advance(14 * DAY).await;
    assert_eq!(
        manager.access_token("seller").await.unwrap(),
        first.access_token
    );
    assert_eq!(sandbox.calls(SquareRefresh::PATH), 0);

    // Half its life on, the token still valid: served, and refreshed in the background,
    // the same refresh token kept.
    tokio::time::advance(2 * DAY).await;
    assert_eq!(
        manager.access_token("seller").await.unwrap(),
        first.access_token
    );
    until(|| sandbox.calls(SquareRefresh::PATH) == 1).await;
    let second = manager.token_set("seller").await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(second.refresh_token, first.refresh_token);
    assert_eq!(second.extras.merchant_id.as_deref(), Some("ML2PMZQ9EN6Y3"));
    assert_eq!(sandbox.calls(SquareRefresh::PATH), 1);

    // A 503 in Square's newer error shape is retried.
    tokio::time::advance(16 * DAY).await;
    let unavailable = serde_json::json!({"errors": [{"category": "API_ERROR",
        "code": "SERVICE_UNAVAILABLE", "detail": "down"}]});
    sandbox.fail_next(
        SquareRefresh::PATH,
        1,
        Failure::service_unavailable().with_json(&unavailable),
    );
    assert_eq!(
        manager.access_token("seller").await.unwrap(),
        second.access_token
    );
    until(|| sandbox.calls(SquareRefresh::PATH) == 3).await;
    let third = manager.token_set("seller").await.unwrap();
    assert_ne!(third.access_token, second.access_token);
    assert_eq!(third.refresh_token, first.refresh_token);
    assert_eq!(sandbox.calls(SquareRefresh::PATH), 3);

    // The seller revokes the app: re-authorize.
    revoked_session_asks_for_reauthorization(
        &manager,
        &sandbox,
        "seller",
        &first,
        31 * DAY,
        "service.not_authorized",
    )
    .await;
    assert_eq!(sandbox.calls(SquareRefresh::PATH), 4);
}
