//! Xero's refresh, declared from its documents with `#[token_endpoint]` only.
//!
//! Verified in the public reference (Xero's OAuth 2.0 docs, FAQ and staff answers):
//! `POST https://identity.xero.com/connect/token`, a form body `grant_type=refresh_token`
//! and `refresh_token`, the client authenticated by `Authorization: Basic
//! base64(client_id:client_secret)`. The answer is RFC 6749's: `access_token`, `expires_in`
//! (1800: access tokens live 30 minutes), `token_type` (`Bearer`), `refresh_token` (a new one
//! every time: rotation), `scope`, and `id_token` when `openid` was granted. A refresh token
//! dies when used, but a refresh whose answer was lost may be retried with it for 30
//! minutes; unused, it expires after 60 days. A dead or revoked one is HTTP 400
//! `{"error": "invalid_grant"}`.
//!
//! Assumptions: `invalid_client` (a wrong secret) is a misconfiguration, on 400 or 401;
//! `unsupported_grant_type` and `invalid_request` are this client's mistakes
//! (misconfigured); a rate limit is HTTP 429 with `Retry-After`, transient whatever its body.
//! Basic credentials are form-urlencoded before Base64 (RFC 6749 section 2.3.1), which
//! changes nothing for Xero's ids and secrets (letters, digits, `-` and `_`).
//!
//! The `id_token` (an identity assertion, itself a bearer credential) is kept as an extra of
//! a secret type, so the session's extras never show it.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use time::OffsetDateTime;
use time::macros::datetime;
use token_core::codec::{
    Endpoint, ErrorResponse, FromContext, RefusalReason, RequestContext, decode_response,
};
use token_core::expiry::ExpiresIn;
use token_core::issuer::IssuerConfig;
use token_core::provider::RefreshProvider;
use token_core::sandbox::{Failure, RunningSandbox, Sandbox};
use token_core::{
    clock::Clock, clock::TokioClock, error::EndpointError, error::ErrorKind, manager::Event,
    manager::ManagerConfig, manager::RetryPolicy, manager::TokenManager, secret::AccessToken,
    secret::ClientSecret, secret::RefreshToken, token_endpoint, token_set::TokenSet,
};

use crate::integrator_trial::{
    HTML, answer, assert_hidden, huge_body, revoked_session_asks_for_reauthorization, shown,
};

#[token_endpoint(config)]
#[derive(Clone, Debug, PartialEq)]
pub struct XeroConfig {
    pub client_id: String,
    pub client_secret: ClientSecret,
}

/// The OpenID Connect identity token, a bearer credential of its own: a secret type, so it
/// is stored but never shown.
#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Identity {
    pub id_token: Option<AccessToken>,
}

#[token_endpoint(response, extras = Identity)]
#[derive(Debug)]
pub struct XeroTokens {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    pub expires_in: Option<ExpiresIn>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
    pub identity: Identity,
}

#[token_endpoint(error_code, rename_all = "snake_case")]
#[derive(Clone, Debug, PartialEq)]
pub enum XeroCode {
    #[token(kind = reauth_required, refusal(invalid_refresh_token, expired_refresh_token))]
    InvalidGrant,
    #[token(kind = misconfigured, refusal(unknown_client, bad_signature))]
    InvalidClient,
    #[token(kind = misconfigured)]
    UnsupportedGrantType,
    #[token(kind = misconfigured, refusal = bad_request)]
    InvalidRequest,
    #[token(code = "temporarily_unavailable", kind = transient, status = 503, refusal = server_error)]
    Unavailable,
    Other(String),
}

#[token_endpoint(error)]
#[derive(Debug)]
pub struct XeroError {
    pub error: XeroCode,
    pub error_description: Option<String>,
}

#[token_endpoint(post = "/connect/token", form, response = XeroTokens, error = XeroError,
                 config = XeroConfig, provider = "xero",
                 body(name = "grant_type", value = "refresh_token"))]
#[derive(Debug)]
pub struct XeroRefresh {
    #[token(basic_user, from = config.client_id)]
    pub client_id: String,
    #[token(basic_password, from = config.client_secret)]
    pub client_secret: ClientSecret,
    pub refresh_token: RefreshToken,
}

const CLIENT_ID: &str = "91E5715B1199038080D6D0296EBC1648";
const CLIENT_SECRET: &str = "SA7_xnTkfPXQlHcCvxHvVl2KHh9-k6g7W0pbTEfI0t2aRrU4";
const REFRESH_TOKEN: &str = "f4a4a4ca0d0e3c93c3b8cf6bb0d0e5d8a7e2a1b4c4d9e8f7a6b5c4d3e2f1a0b9";

fn config() -> XeroConfig {
    XeroConfig::new(CLIENT_ID, CLIENT_SECRET)
}

fn now() -> OffsetDateTime {
    datetime!(2024-05-01 09:00 UTC)
}

fn session() -> TokenSet<Identity> {
    TokenSet::new(AccessToken::new("at-old")).with_refresh_token(RefreshToken::new(REFRESH_TOKEN))
}

fn refresh() -> XeroRefresh {
    let (config, session) = (config(), session());
    XeroRefresh::from_context(&RequestContext::for_refresh(&config, &session)).unwrap()
}

fn decode(status: u16, body: &[u8]) -> Result<TokenSet<Identity>, EndpointError> {
    decode_response::<XeroRefresh>(&answer(status, body), now(), &refresh().secrets())
}

#[test]
fn the_request_is_the_documented_form_with_basic_client_credentials() {
    let request = refresh()
        .encode_request(&"https://identity.xero.com".parse().unwrap())
        .unwrap();
    assert_eq!(request.uri(), "https://identity.xero.com/connect/token");
    // echo -n "$CLIENT_ID:$CLIENT_SECRET" | base64 -w0
    assert_eq!(
        request.headers()["authorization"],
        "Basic OTFFNTcxNUIxMTk5MDM4MDgwRDZEMDI5NkVCQzE2NDg6U0E3X3huVGtmUFhRbEhjQ3Z4SHZWbDJLSGg5LWs2ZzdXMHBiVEVmSTB0MmFSclU0"
    );
    assert_eq!(
        request.body(),
        format!("grant_type=refresh_token&refresh_token={REFRESH_TOKEN}").as_bytes()
    );
    assert_eq!(refresh().secrets(), [CLIENT_SECRET, REFRESH_TOKEN]);
    assert_hidden(&format!("{:?}", refresh()), &[CLIENT_SECRET, REFRESH_TOKEN]);
    // The server side reads the credentials back.
    let decoded = XeroRefresh::decode_request(&request).unwrap();
    assert_eq!(decoded.client_id, CLIENT_ID);
    assert_eq!(decoded.client_secret.expose_secret(), CLIENT_SECRET);
}

#[test]
fn the_documented_answer_rotates_and_lives_thirty_minutes() {
    let body = br#"{
  "id_token": "eyJhbGciOiJSUzI1NiIsImtpZCI6IjFDQUY4RTY2NzcyRDZEQzAyOEQ2NzI2RkQwMjYxNTgxNTcwRUZDMTkiLCJ0eXAiOiJKV1QifQ.e30.c2ln",
  "access_token": "eyJhbGciOiJSUzI1NiIsImtpZCI6IjFDQUY4RTY2NzcyRDZEQzAyOEQ2NzI2RkQwMjYxNTgxNTcwRUZDMTkiLCJ0eXAiOiJKV1QifQ.e30.c2ln",
  "expires_in": 1800,
  "token_type": "Bearer",
  "refresh_token": "a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2",
  "scope": "openid profile email accounting.transactions offline_access"
}"#;
    let set = decode(200, body).unwrap();
    assert!(set.access_token.expose_secret().starts_with("eyJhbGci"));
    assert_eq!(
        set.access_expires_at,
        Some(now() + time::Duration::minutes(30))
    );
    assert_eq!(
        set.refresh_token.as_ref().map(RefreshToken::expose_secret),
        Some("a1b2c3d4e5f6a7b8c9d0e1f2a3b4c5d6e7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2")
    );
    assert_eq!(
        set.scope.as_deref(),
        Some("openid profile email accounting.transactions offline_access")
    );
    // The id_token is kept, and shown nowhere.
    assert!(
        set.extras
            .id_token
            .as_ref()
            .is_some_and(|t| t.expose_secret().ends_with(".e30.c2ln"))
    );
    assert!(!format!("{set:?}").contains("e30.c2ln"), "{set:?}");
    let stored = set.to_stored();
    assert!(!format!("{stored:?}").contains("e30.c2ln"), "{stored:?}");
}

#[test]
fn the_documented_errors_are_classified_by_their_code() {
    let cases = [
        (
            400,
            r#"{"error":"invalid_grant"}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            400,
            r#"{"error":"invalid_client"}"#,
            ErrorKind::Misconfigured,
        ),
        (
            401,
            r#"{"error":"invalid_client"}"#,
            ErrorKind::Misconfigured,
        ),
        (
            400,
            r#"{"error":"unsupported_grant_type"}"#,
            ErrorKind::Misconfigured,
        ),
        (
            400,
            r#"{"error":"invalid_request","error_description":"?"}"#,
            ErrorKind::Misconfigured,
        ),
        (429, r#"{"error":"rate_limit"}"#, ErrorKind::Transient),
        (429, "Too Many Requests", ErrorKind::Transient),
        (
            503,
            r#"{"error":"temporarily_unavailable"}"#,
            ErrorKind::Transient,
        ),
        (400, r#"{"error":"access_denied"}"#, ErrorKind::Rejected),
    ];
    for (status, body, kind) in cases {
        let error = decode(status, body.as_bytes()).unwrap_err();
        assert_eq!(error.kind(), kind, "{status} {body}");
    }
    let answer = XeroError::from_refusal(RefusalReason::ExpiredRefreshToken, "expired");
    assert_eq!(answer.encode_error().0, StatusCode::BAD_REQUEST);
    assert_eq!(answer.error, XeroCode::InvalidGrant);
}

#[test]
fn hostile_answers_are_typed_errors_that_never_show_a_token() {
    let bodies: Vec<(u16, Vec<u8>)> = vec![
        (200, HTML.to_vec()),
        (400, HTML.to_vec()),
        (200, br#"{"expires_in":1800}"#.to_vec()),
        (200, br#"{"access_token":["x"]}"#.to_vec()),
        (200, br#"{"error":null}"#.to_vec()),
        (
            400,
            format!(r#"{{"error":"invalid_grant","error_description":"{REFRESH_TOKEN}"}}"#)
                .into_bytes(),
        ),
        (401, CLIENT_SECRET.as_bytes().to_vec()),
    ];
    for (status, body) in bodies {
        let error = decode(status, &body).unwrap_err();
        let text = shown(&error);
        assert_hidden(&text, &[REFRESH_TOKEN, CLIENT_SECRET]);
        assert!(text.len() < 8 << 10, "{} bytes shown", text.len());
    }
    let huge = huge_body();
    let error = decode(200, &huge[..huge.len() - 2]).unwrap_err();
    assert!(shown(&error).len() < 8 << 10);
}

const GRACE: Duration = Duration::from_secs(30 * 60);

async fn sandbox(clock: Arc<dyn Clock>) -> RunningSandbox {
    Sandbox::builder()
        .clock(clock)
        .oauth_routes(false)
        .issuer_config(
            IssuerConfig::default()
                .with_access_ttl(Duration::from_secs(1800))
                .with_refresh_ttl(Some(Duration::from_secs(60 * 86400)))
                .with_reuse_window(GRACE),
        )
        .serve::<XeroRefresh>(&config())
        .start()
        .await
        .unwrap()
}

fn manager_for(
    sandbox: &RunningSandbox,
    clock: Arc<dyn Clock>,
    config: XeroConfig,
) -> TokenManager<RefreshProvider<XeroRefresh>> {
    let provider =
        RefreshProvider::<XeroRefresh>::new(sandbox.base_url(), config).with_reuse_window(GRACE);
    TokenManager::builder(provider)
        .shared_client(sandbox.client())
        .clock(clock)
        .config(ManagerConfig::default().with_retry(
            RetryPolicy::default().with_backoff(Duration::from_millis(200), Duration::from_secs(5)),
        ))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_manager_rotates_survives_a_lost_answer_and_a_rate_limit_and_asks_for_reauthorization()
{
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(now()));
    let sandbox = sandbox(clock.clone()).await;
    let manager = manager_for(&sandbox, clock.clone(), config());
    let first: TokenSet<Identity> =
        TokenSet::from_stored(sandbox.issue("org").await.unwrap()).unwrap();
    manager.insert("org", first.clone()).await.unwrap();
    let mut events = manager.subscribe();

    // Thirty minutes on, a refresh rotates the refresh token.
    tokio::time::advance(Duration::from_secs(1801)).await;
    let second = manager.token_set("org").await.unwrap();
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(sandbox.calls(XeroRefresh::PATH), 1);

    // A lost answer: the spent refresh token is retried inside Xero's grace period.
    tokio::time::advance(Duration::from_secs(1801)).await;
    sandbox.drop_next(XeroRefresh::PATH, 1);
    let third = manager.token_set("org").await.unwrap();
    assert_ne!(third.access_token, second.access_token);
    assert_eq!(sandbox.calls(XeroRefresh::PATH), 3);

    // A rate limit is retried after its Retry-After.
    tokio::time::advance(Duration::from_secs(1801)).await;
    sandbox.fail_next(
        XeroRefresh::PATH,
        1,
        Failure::new(StatusCode::TOO_MANY_REQUESTS).with_retry_after(2),
    );
    let fourth = manager.token_set("org").await.unwrap();
    assert_ne!(fourth.refresh_token, third.refresh_token);
    assert_eq!(sandbox.calls(XeroRefresh::PATH), 5);
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event, Event::ReauthRequired(_)), "{event:?}");
    }

    // The user disconnects the app: invalid_grant, re-authorize, and no more calls.
    revoked_session_asks_for_reauthorization(
        &manager,
        &sandbox,
        "org",
        &fourth,
        Duration::from_secs(1801),
        "invalid_grant",
    )
    .await;
    assert_eq!(sandbox.calls(XeroRefresh::PATH), 6);
    assert_eq!(
        manager.access_token("org").await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    assert_eq!(sandbox.calls(XeroRefresh::PATH), 6);

    // A wrong client secret is the app's misconfiguration, and never shown.
    let stranger = manager_for(
        &sandbox,
        clock,
        XeroConfig::new(CLIENT_ID, "not-the-secret"),
    );
    stranger
        .insert(
            "other",
            TokenSet::from_stored(sandbox.issue("other").await.unwrap()).unwrap(),
        )
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(1801)).await;
    let error = stranger.access_token("other").await.unwrap_err();
    assert_eq!(
        (error.kind(), error.provider_code()),
        (ErrorKind::Misconfigured, Some("invalid_client"))
    );
    assert!(!format!("{error} {error:?}").contains("not-the-secret"));
}
