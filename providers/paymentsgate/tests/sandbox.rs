//! The manager drives Paymentsgate against its sandbox on tokio's paused clock: first tokens
//! are issued, refreshed ahead of expiry and rotated; faults are retried; and a refused
//! refresh (an expired refresh token, a lost answer) is answered by issuing anew with the
//! account credentials, never by a re-auth signal.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use token_core::expiry::jwt_exp;
use token_core::issuer::IssuerConfig;
use token_core::sandbox::{Failure, RunningSandbox};
use token_core::{clock::Clock, error::ErrorKind, manager::Event, manager::TokenManager};
use token_provider_paymentsgate::{
    ISSUE_PATH, Paymentsgate, PaymentsgateConfig, REFRESH_PATH, sandbox,
};
use token_test_support::events::{assert_no_reauth, drain};
use token_test_support::harness::{self, accepted, paused_clock};

const HOUR: Duration = Duration::from_secs(3600);

fn account() -> PaymentsgateConfig {
    PaymentsgateConfig::new("acct-1", "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K")
}

async fn start(clock: &Arc<dyn Clock>, issuer: IssuerConfig) -> RunningSandbox {
    sandbox::start(clock.clone(), issuer, &account())
        .await
        .unwrap()
}

fn manager(
    sandbox: &RunningSandbox,
    clock: &Arc<dyn Clock>,
    config: PaymentsgateConfig,
) -> TokenManager<Paymentsgate> {
    harness::manager(
        Paymentsgate::new(sandbox.base_url(), config),
        sandbox,
        clock,
    )
}

/// The next call gets a token the sandbox accepts, obtained by one refused refresh and then
/// one issue (the first issue was the session's first set).
async fn issued_anew_after_one_refused_refresh(
    sandbox: &RunningSandbox,
    manager: &TokenManager<Paymentsgate>,
) {
    let token = manager.access_token("service").await.unwrap();
    assert!(accepted(sandbox, &token).await);
    assert_eq!(
        (sandbox.calls(ISSUE_PATH), sandbox.calls(REFRESH_PATH)),
        (2, 1),
        "one refused refresh, then one issue"
    );
}

/// A manager whose session was issued a set an hour ago (its access token is due), and the
/// sandbox that issued it.
async fn issued_an_hour_ago() -> (RunningSandbox, TokenManager<Paymentsgate>) {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let manager = manager(&sandbox, &clock, account());
    manager.access_token("service").await.unwrap();
    tokio::time::advance(HOUR).await;
    (sandbox, manager)
}

#[tokio::test(start_paused = true)]
async fn the_first_set_is_issued_with_the_account_credentials() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let manager = manager(&sandbox, &clock, account());
    let token = manager.access_token("service").await.unwrap();
    let grant = sandbox
        .issuer()
        .authenticate(token.expose_secret())
        .await
        .unwrap();
    assert_eq!(grant.subject, "acct-1");
    assert_eq!(
        (sandbox.calls(ISSUE_PATH), sandbox.calls(REFRESH_PATH)),
        (1, 0)
    );
    // The access token is a JWT whose `exp` agrees with `expires_in`.
    let set = manager.token_set("service").await.unwrap();
    assert_eq!(jwt_exp(token.expose_secret()), set.access_expires_at);
    assert_eq!(
        set.access_expires_at,
        Some(clock.now() + time::Duration::hours(1))
    );
}

#[tokio::test(start_paused = true)]
async fn wrong_account_credentials_are_a_misconfiguration_and_not_retried() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let wrong = PaymentsgateConfig::new("acct-1", "d3Jvbmc=");
    let error = manager(&sandbox, &clock, wrong)
        .access_token("service")
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    assert_eq!(error.provider_code(), Some("Unauthorized"));
    assert_eq!(sandbox.calls(ISSUE_PATH), 1);
}

#[tokio::test(start_paused = true)]
async fn a_token_near_expiry_is_refreshed_in_the_background_with_and_without_the_bearer() {
    for refresh_bearer in [true, false] {
        let clock = paused_clock();
        let sandbox = start(&clock, sandbox::issuer_config()).await;
        let config = account().with_refresh_bearer(refresh_bearer);
        let manager = manager(&sandbox, &clock, config);
        let first = manager.access_token("service").await.unwrap();
        let mut events = manager.subscribe();
        tokio::time::advance(HOUR - Duration::from_secs(30)).await;

        assert_eq!(manager.access_token("service").await.unwrap(), first);
        let event = events.recv().await.unwrap();
        assert!(
            matches!(
                event,
                Event::Refreshed {
                    rotated: true,
                    issued: false,
                    ..
                }
            ),
            "{event:?}"
        );
        let fresh = manager.access_token("service").await.unwrap();
        assert_ne!(fresh, first);
        assert!(accepted(&sandbox, &fresh).await);
        assert_eq!(
            (sandbox.calls(ISSUE_PATH), sandbox.calls(REFRESH_PATH)),
            (1, 1)
        );
    }
}

#[tokio::test(start_paused = true)]
async fn every_refresh_rotates_and_the_used_refresh_token_dies() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let manager = manager(&sandbox, &clock, account());
    let mut previous = manager
        .token_set("service")
        .await
        .unwrap()
        .refresh_token
        .unwrap();
    for round in 1..=5 {
        tokio::time::advance(HOUR).await;
        let current = manager
            .token_set("service")
            .await
            .unwrap()
            .refresh_token
            .unwrap();
        assert_ne!(current, previous);
        assert!(
            sandbox
                .issuer()
                .refresh(previous.expose_secret())
                .await
                .is_err()
        );
        assert_eq!(sandbox.calls(REFRESH_PATH), round);
        previous = current;
    }
    assert_eq!(sandbox.calls(ISSUE_PATH), 1);
}

#[tokio::test(start_paused = true)]
async fn a_5xx_is_retried() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let manager = manager(&sandbox, &clock, account());
    let first = manager.access_token("service").await.unwrap();
    tokio::time::advance(HOUR).await;
    sandbox.fail_next(
        REFRESH_PATH,
        1,
        Failure::new(StatusCode::BAD_GATEWAY).with_json(&json!({
            "error": "Bad Gateway", "message": "upstream", "statusCode": 502
        })),
    );
    assert_ne!(manager.access_token("service").await.unwrap(), first);
    assert_eq!(sandbox.calls(REFRESH_PATH), 2);
    assert_eq!(sandbox.calls(ISSUE_PATH), 1);
}

#[tokio::test(start_paused = true)]
async fn a_429_waits_for_its_retry_after() {
    let (sandbox, manager) = issued_an_hour_ago().await;
    sandbox.fail_next(
        REFRESH_PATH,
        1,
        Failure::new(StatusCode::TOO_MANY_REQUESTS)
            .with_retry_after(9)
            .with_json(&json!({
                "error": "Too Many Requests", "message": "rate limited", "statusCode": 429
            })),
    );
    let started = tokio::time::Instant::now();
    manager.access_token("service").await.unwrap();
    assert_eq!(sandbox.calls(REFRESH_PATH), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(9),
        "{:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_403_is_a_misconfiguration_and_not_retried() {
    let (sandbox, manager) = issued_an_hour_ago().await;
    sandbox.fail_next(
        REFRESH_PATH,
        1,
        Failure::new(StatusCode::FORBIDDEN).with_json(&json!({
            "error": "Forbidden", "message": "account disabled", "statusCode": 403
        })),
    );
    let error = manager.access_token("service").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    assert_eq!(
        (sandbox.calls(ISSUE_PATH), sandbox.calls(REFRESH_PATH)),
        (1, 1)
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_refresh_answer_is_not_retried_and_the_next_attempt_issues_anew() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let manager = manager(&sandbox, &clock, account());
    let mut events = manager.subscribe();
    manager.access_token("service").await.unwrap();
    tokio::time::advance(HOUR).await;

    sandbox.drop_next(REFRESH_PATH, 1);
    let error = manager.access_token("service").await.unwrap_err();
    assert_eq!(
        error.kind(),
        ErrorKind::OutcomeUnknown,
        "Paymentsgate declares no reuse window"
    );
    assert_eq!(sandbox.calls(REFRESH_PATH), 1);
    // Callers get the same answer for the failure cooldown; then the next attempt runs.
    tokio::time::advance(token_core::manager::ManagerConfig::default().failure_cooldown).await;
    // The sandbox did rotate: the old refresh token is refused (401), and the account
    // credentials obtain a new pair.
    let token = manager.access_token("service").await.unwrap();
    assert!(accepted(&sandbox, &token).await);
    assert_eq!(
        (sandbox.calls(ISSUE_PATH), sandbox.calls(REFRESH_PATH)),
        (2, 2)
    );
    assert_no_reauth(&drain(&mut events));
}

#[tokio::test(start_paused = true)]
async fn an_expired_refresh_token_is_replaced_by_issuing_without_reauth() {
    let clock = paused_clock();
    let issuer = sandbox::issuer_config().with_refresh_ttl(Some(2 * HOUR));
    let sandbox = start(&clock, issuer).await;
    let manager = manager(&sandbox, &clock, account());
    manager.access_token("service").await.unwrap();
    let mut events = manager.subscribe();
    tokio::time::advance(3 * HOUR).await;

    issued_anew_after_one_refused_refresh(&sandbox, &manager).await;
    let events = drain(&mut events);
    assert_no_reauth(&events);
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Refreshed { issued: true, .. })),
        "{events:?}"
    );
}

/// A refresh refused with NestJS's default body (`{"statusCode":401,"message":"Unauthorized"}`,
/// no `error` name: what a guard in front of the refresh handler answers for a dead refresh
/// token) is answered by issuing anew, as a refusal with Paymentsgate's error is: a refusal
/// is never a re-auth for a provider that issues, so it costs one issue call at most. Taken
/// for `Rejected`, the manager kept presenting the dead refresh token and never issued.
#[tokio::test(start_paused = true)]
async fn a_refresh_refused_with_nests_default_body_issues_anew() {
    let (sandbox, manager) = issued_an_hour_ago().await;
    let mut events = manager.subscribe();
    sandbox.fail_next(
        REFRESH_PATH,
        1,
        Failure::new(StatusCode::UNAUTHORIZED)
            .with_json(&json!({"statusCode": 401, "message": "Unauthorized"})),
    );
    issued_anew_after_one_refused_refresh(&sandbox, &manager).await;
    assert_no_reauth(&drain(&mut events));
}

/// A stored access token that cannot be sent in a header (written by another process's
/// older version, or by hand) is no access token to send: the refresh goes without the
/// bearer, as for a session that has none, and presents the stored refresh token. It used
/// to fail to encode (the bearer header), so the session could never refresh.
#[tokio::test(start_paused = true)]
async fn a_stored_access_token_that_cannot_be_sent_is_refreshed_without_the_bearer() {
    use token_core::secret::AccessToken;
    use token_core::store::{MemoryStore, SessionKey, StoredRecord, TokenStore as _};
    for access in [
        "at-CANARY\r\nX-Injected: 1",
        "at-CANARY\0",
        "at-CANARY\u{7f}",
    ] {
        let clock = paused_clock();
        let sandbox = start(&clock, sandbox::issuer_config()).await;
        let mut stored = sandbox.issue_with("acct-1", json!({})).await.unwrap();
        let issued = stored.refresh_token.clone().unwrap();
        stored.access_token = AccessToken::new(access);
        let store = Arc::new(MemoryStore::new());
        let key = SessionKey::new("paymentsgate:acct-1", "service");
        store
            .save(&key, &StoredRecord::Tokens(stored), None)
            .await
            .unwrap();
        let manager = harness::builder(
            Paymentsgate::new(sandbox.base_url(), account()),
            &sandbox,
            &clock,
        )
        .store(store.clone())
        .build()
        .unwrap();
        let token = manager.access_token("service").await.unwrap();
        assert!(!token.expose_secret().contains("CANARY"));
        assert_eq!(
            (sandbox.calls(ISSUE_PATH), sandbox.calls(REFRESH_PATH)),
            (0, 1),
            "{access:?}: refreshed with the stored refresh token, not issued anew"
        );
        assert!(
            sandbox
                .issuer()
                .refresh(issued.expose_secret())
                .await
                .is_err(),
            "the stored refresh token was spent"
        );
    }
}

/// A refresh that carries `Authorization: Bearer` is checked as Paymentsgate checks it: the
/// bearer must be an access token it issued (expired is fine: the documents refresh once the
/// access token has expired). A bearer it never issued is refused 401, and the refresh token
/// is not spent; without the header (the official clients) the refresh goes through.
#[tokio::test(start_paused = true)]
async fn a_bearer_the_sandbox_did_not_issue_is_refused_and_an_expired_one_accepted() {
    use token_core::provider::CallContext;
    use token_core::secret::AccessToken;
    use token_provider_paymentsgate::RefreshServiceToken;
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let cx = CallContext::new(sandbox.client(), clock.clone(), "service");
    let issued = sandbox.issue_with("acct-1", json!({})).await.unwrap();
    let refresh_token = issued.refresh_token.clone().unwrap();
    let refresh = |bearer: Option<&str>| RefreshServiceToken {
        access_token: bearer.map(AccessToken::new),
        refresh_token: refresh_token.clone(),
    };

    let forged = "eyJhbGciOiJub25lIn0.eyJzdWIiOiJhY2N0LTEifQ.";
    let error = cx
        .call(&sandbox.base_url(), &refresh(Some(forged)))
        .await
        .unwrap_err();
    assert_eq!(error.provider_code(), Some("Unauthorized"), "{error}");
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);

    // The refresh token was not spent: with the pair's own (expired) access token it rotates.
    tokio::time::advance(2 * HOUR).await;
    let next = cx
        .call(
            &sandbox.base_url(),
            &refresh(Some(issued.access_token.expose_secret())),
        )
        .await
        .unwrap();
    assert_ne!(next.refresh_token.as_ref(), Some(&refresh_token));

    // No header at all: the official clients' refresh.
    let next_refresh = next.refresh_token.clone().unwrap();
    let bare = RefreshServiceToken {
        access_token: None,
        refresh_token: next_refresh,
    };
    cx.call(&sandbox.base_url(), &bare).await.unwrap();
}

/// The refresh is JSON, sent as `Content-Type: application/json` (the documents' curl): the
/// same body with another content type, or none, is refused 400 and spends nothing.
#[tokio::test(start_paused = true)]
async fn a_refresh_body_not_declared_json_is_refused() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let issued = sandbox.issue_with("acct-1", json!({})).await.unwrap();
    let token = issued.refresh_token.clone().unwrap();
    let body = json!({"refresh_token": token.expose_secret()}).to_string();
    let post = |content_type: Option<&str>| {
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(sandbox.url(REFRESH_PATH).as_str());
        if let Some(content_type) = content_type {
            request = request.header(http::header::CONTENT_TYPE, content_type);
        }
        request.body(body.clone().into_bytes()).unwrap()
    };
    for content_type in [
        Some("application/x-www-form-urlencoded"),
        Some("text/plain"),
        None,
    ] {
        let answer = sandbox.client().send(post(content_type)).await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{content_type:?}");
        let error: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
        assert_eq!(error["error"], "Bad Request", "{content_type:?}");
    }
    let answer = sandbox
        .client()
        .send(post(Some("application/json; charset=utf-8")))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}
