//! The manager drives Lazada against its sandbox on tokio's paused clock: every refresh is
//! signed and verified, pairs rotate, a dead refresh token asks the seller to authorize
//! again, faults are retried, and a wrong secret or app key is a misconfiguration.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use token_core::sandbox::{Failure, RunningSandbox};
use token_core::{
    clock::Clock, error::ErrorKind, manager::Event, manager::TokenManager, token_set::TokenSet,
};
use token_provider_lazada::{Lazada, LazadaConfig, LazadaSeller, RefreshAccessToken, sandbox};
use token_test_support::harness::{self, accepted, paused_clock, seed};

const REFRESH_PATH: &str = <RefreshAccessToken as token_core::codec::Endpoint>::PATH;
const DAY: Duration = Duration::from_secs(24 * 3600);

fn app() -> LazadaConfig {
    LazadaConfig::new("123456", "helloworld")
}

async fn start(clock: &Arc<dyn Clock>) -> RunningSandbox {
    sandbox::start(clock.clone(), sandbox::issuer_config(), &app())
        .await
        .unwrap()
}

/// A manager for `config` whose seller session holds a pair the sandbox issued.
async fn seeded(
    sandbox: &RunningSandbox,
    clock: &Arc<dyn Clock>,
    config: LazadaConfig,
) -> (TokenManager<Lazada>, TokenSet<LazadaSeller>) {
    let manager = harness::manager(Lazada::new(sandbox.base_url(), config), sandbox, clock);
    let first = seed(&manager, sandbox, "seller", json!({})).await;
    (manager, first)
}

#[tokio::test(start_paused = true)]
async fn a_signed_refresh_rotates_the_pair_near_expiry() {
    let clock = paused_clock();
    let sandbox = start(&clock).await;
    let (manager, first) = seeded(&sandbox, &clock, app()).await;
    assert_eq!(
        manager.access_token("seller").await.unwrap(),
        first.access_token
    );
    assert_eq!(sandbox.calls(REFRESH_PATH), 0);

    tokio::time::advance(30 * DAY).await;
    let second = manager.token_set("seller").await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(sandbox.calls(REFRESH_PATH), 1);
    assert!(accepted(&sandbox, &second.access_token).await);
    // The old refresh token is dead: the next refresh used the rotated one.
    tokio::time::advance(30 * DAY).await;
    let third = manager.token_set("seller").await.unwrap();
    assert_ne!(third.refresh_token, second.refresh_token);
    assert_eq!(sandbox.calls(REFRESH_PATH), 2);
}

#[tokio::test(start_paused = true)]
async fn an_illegal_refresh_token_asks_the_seller_to_authorize_again() {
    let clock = paused_clock();
    let sandbox = start(&clock).await;
    let (manager, _) = seeded(&sandbox, &clock, app()).await;
    let mut events = manager.subscribe();
    // Past the refresh token's 180 days.
    tokio::time::advance(181 * DAY).await;
    let error = manager.access_token("seller").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(error.provider_code(), Some("IllegalRefreshToken"));
    let Event::ReauthRequired(reauth) = events.recv().await.unwrap() else {
        panic!("expected a re-auth event");
    };
    assert_eq!(reauth.session, "seller");
    assert_eq!(sandbox.calls(REFRESH_PATH), 1);
}

#[tokio::test(start_paused = true)]
async fn a_5xx_and_a_busy_answer_are_retried() {
    let clock = paused_clock();
    let sandbox = start(&clock).await;
    let (manager, first) = seeded(&sandbox, &clock, app()).await;
    tokio::time::advance(30 * DAY).await;
    sandbox.fail_next(REFRESH_PATH, 1, Failure::new(StatusCode::BAD_GATEWAY));
    sandbox.fail_next(
        REFRESH_PATH,
        1,
        Failure::new(StatusCode::OK).with_json(&serde_json::json!({
            "type": "ISP", "code": "ServiceTemporaryUnavailable", "message": "busy", "request_id": "0b1"
        })),
    );
    assert_ne!(
        manager.access_token("seller").await.unwrap(),
        first.access_token
    );
    assert_eq!(sandbox.calls(REFRESH_PATH), 3);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_app_secret_is_refused_by_the_sandbox_as_a_bad_signature() {
    let clock = paused_clock();
    let sandbox = start(&clock).await;
    let (manager, _) = seeded(
        &sandbox,
        &clock,
        LazadaConfig::new("123456", "not-the-secret"),
    )
    .await;
    tokio::time::advance(30 * DAY).await;
    let error = manager.access_token("seller").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    assert_eq!(error.provider_code(), Some("IncompleteSignature"));
    assert!(!format!("{error} {error:?}").contains("not-the-secret"));
    assert_eq!(
        sandbox.calls(REFRESH_PATH),
        1,
        "a misconfiguration is not retried"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wrong_app_key_is_a_misconfiguration() {
    let clock = paused_clock();
    let sandbox = start(&clock).await;
    let (manager, _) = seeded(&sandbox, &clock, LazadaConfig::new("654321", "helloworld")).await;
    tokio::time::advance(30 * DAY).await;
    let error = manager.access_token("seller").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    assert_eq!(error.provider_code(), Some("InvalidAppKey"));
}
