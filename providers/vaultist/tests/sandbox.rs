//! The manager drives Vault.ist (v3 and v2) against its sandbox on tokio's paused clock:
//! proactive refresh, rotation, faults, a lost answer and an expired refresh token (re-auth),
//! with the sandbox's call counts as evidence.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use token_core::issuer::IssuerConfig;
use token_core::sandbox::{Failure, RunningSandbox};
use token_core::{
    clock::Clock, error::ErrorKind, manager::Event, manager::TokenManager, token_set::TokenSet,
};
use token_provider_vaultist::{
    ApiVersion, REFRESH_PATH, Vaultist, VaultistConfig, VaultistExtras, sandbox,
};
use token_test_support::harness::{self, accepted, issued, paused_clock};

const HOUR: Duration = Duration::from_secs(3600);
const USER: &str = "usr:b06d9aaa-4310-4c0d-9e5343c1b35";

/// A sandbox serving the partner (and merchant, if any) of `served`.
async fn start(
    clock: &Arc<dyn Clock>,
    issuer: IssuerConfig,
    served: &VaultistConfig,
) -> RunningSandbox {
    sandbox::start(clock.clone(), issuer, served).await.unwrap()
}

/// A manager whose `session` holds a pair the sandbox issued (as after Vault.ist's login).
async fn seeded(
    sandbox: &RunningSandbox,
    clock: &Arc<dyn Clock>,
    config: VaultistConfig,
) -> (TokenManager<Vaultist>, TokenSet<VaultistExtras>) {
    let manager = harness::manager(Vaultist::new(sandbox.base_url(), config), sandbox, clock);
    let mut first = issued(sandbox, "partner", json!({"user_id": USER})).await;
    // Vault.ist does not tell when a refresh token expires: its answer decides.
    first.refresh_expires_at = None;
    manager.insert("partner", first.clone()).await.unwrap();
    (manager, first)
}

fn v2() -> VaultistConfig {
    VaultistConfig::new(42).with_api_version(ApiVersion::V2)
}

#[tokio::test(start_paused = true)]
async fn a_token_near_expiry_is_refreshed_in_the_background_in_both_versions() {
    for config in [VaultistConfig::new(42), v2()] {
        let clock = paused_clock();
        let sandbox = start(&clock, sandbox::issuer_config(), &VaultistConfig::new(42)).await;
        let (manager, first) = seeded(&sandbox, &clock, config.clone()).await;
        let mut events = manager.subscribe();
        tokio::time::advance(HOUR - Duration::from_secs(30)).await;

        assert_eq!(
            manager.access_token("partner").await.unwrap(),
            first.access_token
        );
        let event = events.recv().await.unwrap();
        assert!(
            matches!(event, Event::Refreshed { rotated: true, .. }),
            "{event:?}"
        );
        let set = manager.token_set("partner").await.unwrap();
        assert_ne!(set.access_token, first.access_token);
        assert!(accepted(&sandbox, &set.access_token).await);
        assert_eq!(
            set.extras.user_id.as_deref(),
            Some(USER),
            "{:?}",
            config.api_version
        );
        assert_eq!(sandbox.calls(REFRESH_PATH), 1);
    }
}

#[tokio::test(start_paused = true)]
async fn v2_sessions_of_24_hours_rotate_on_every_refresh() {
    let clock = paused_clock();
    let issuer = sandbox::issuer_config().with_access_ttl(24 * HOUR);
    let sandbox = start(&clock, issuer, &VaultistConfig::new(42)).await;
    let (manager, first) = seeded(&sandbox, &clock, v2()).await;
    assert_eq!(
        first.access_expires_at,
        Some(clock.now() + time::Duration::hours(24))
    );
    let mut previous = first.refresh_token.unwrap();
    for round in 1..=4 {
        tokio::time::advance(24 * HOUR).await;
        let set = manager.token_set("partner").await.unwrap();
        assert_eq!(
            set.access_expires_at,
            Some(clock.now() + time::Duration::hours(24))
        );
        let current = set.refresh_token.unwrap();
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
}

#[tokio::test(start_paused = true)]
async fn the_merchant_header_is_sent_when_configured() {
    let clock = paused_clock();
    let sandbox = start(
        &clock,
        sandbox::issuer_config(),
        &VaultistConfig::new(42).with_merchant_id("m-1"),
    )
    .await;
    let (manager, _) = seeded(
        &sandbox,
        &clock,
        VaultistConfig::new(42).with_merchant_id("m-1"),
    )
    .await;
    tokio::time::advance(HOUR).await;
    manager.access_token("partner").await.unwrap();

    // Without it, the sandbox host answers its generic error: a definitive refusal.
    let (manager, _) = seeded(&sandbox, &clock, VaultistConfig::new(42)).await;
    tokio::time::advance(HOUR).await;
    let error = manager.access_token("partner").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert_eq!(error.provider_code(), Some("COMMON"));
    assert_eq!(sandbox.calls(REFRESH_PATH), 2, "a refusal is not retried");
}

#[tokio::test(start_paused = true)]
async fn a_5xx_is_retried() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config(), &VaultistConfig::new(42)).await;
    let (manager, first) = seeded(&sandbox, &clock, VaultistConfig::new(42)).await;
    tokio::time::advance(HOUR).await;
    sandbox.fail_next(
        REFRESH_PATH,
        2,
        Failure::new(StatusCode::INTERNAL_SERVER_ERROR),
    );
    assert_ne!(
        manager.access_token("partner").await.unwrap(),
        first.access_token
    );
    assert_eq!(sandbox.calls(REFRESH_PATH), 3);
}

#[tokio::test(start_paused = true)]
async fn a_429_waits_for_its_retry_after() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config(), &VaultistConfig::new(42)).await;
    let (manager, _) = seeded(&sandbox, &clock, v2()).await;
    tokio::time::advance(HOUR).await;
    sandbox.fail_next(
        REFRESH_PATH,
        1,
        Failure::new(StatusCode::TOO_MANY_REQUESTS)
            .with_retry_after(5)
            .with_json(
                &json!({"status": "TOO_MANY_REQUESTS", "message": "slow down", "errors": []}),
            ),
    );
    let started = tokio::time::Instant::now();
    manager.access_token("partner").await.unwrap();
    assert_eq!(sandbox.calls(REFRESH_PATH), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_is_outcome_unknown_then_the_rotated_token_needs_reauth() {
    // Vault.ist declares no reuse window: the same refresh token is not sent again blindly.
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config(), &VaultistConfig::new(42)).await;
    let (manager, _) = seeded(&sandbox, &clock, VaultistConfig::new(42)).await;
    tokio::time::advance(HOUR).await;
    sandbox.drop_next(REFRESH_PATH, 1);
    let error = manager.access_token("partner").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown);
    assert_eq!(sandbox.calls(REFRESH_PATH), 1);
    // Callers get the same answer for the failure cooldown; then the next attempt runs.
    tokio::time::advance(token_core::manager::ManagerConfig::default().failure_cooldown).await;
    let error = manager.access_token("partner").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(error.provider_code(), Some("invalid_grant"));
    assert_eq!(sandbox.calls(REFRESH_PATH), 2);
}

#[tokio::test(start_paused = true)]
async fn an_expired_refresh_token_is_a_reauth_signal_in_both_versions() {
    for (config, code) in [
        (VaultistConfig::new(42), "invalid_grant"),
        (v2(), "UNAUTHORIZED"),
    ] {
        let clock = paused_clock();
        let issuer = sandbox::issuer_config().with_refresh_ttl(Some(2 * HOUR));
        let sandbox = start(&clock, issuer, &VaultistConfig::new(42)).await;
        let (manager, _) = seeded(&sandbox, &clock, config).await;
        let mut events = manager.subscribe();
        tokio::time::advance(3 * HOUR).await;

        let error = manager.access_token("partner").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ReauthRequired);
        assert_eq!(error.provider_code(), Some(code));
        let Event::ReauthRequired(reauth) = events.recv().await.unwrap() else {
            panic!("expected a re-auth event");
        };
        assert_eq!(reauth.session, "partner");
        assert_eq!(reauth.code.as_deref(), Some(code));
        assert_eq!(sandbox.calls(REFRESH_PATH), 1);
        assert_eq!(
            manager.access_token("partner").await.unwrap_err().kind(),
            ErrorKind::ReauthRequired
        );
        assert_eq!(
            sandbox.calls(REFRESH_PATH),
            1,
            "a dead session is not refreshed again"
        );
    }
}

/// The README's short example, run: a manager started from the refresh token of a login
/// serves a real access token on the first call, and keeps serving it without a second
/// refresh.
#[tokio::test(start_paused = true)]
async fn the_readme_example_serves_a_real_token_from_the_first_call() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config(), &VaultistConfig::new(42)).await;
    let manager = TokenManager::builder(Vaultist::new(sandbox.base_url(), VaultistConfig::new(42)))
        .shared_client(sandbox.client())
        .clock(clock.clone())
        .build()
        .unwrap();
    // Vault.ist's login, as the partner's dashboard hands it over.
    let login = sandbox
        .issue_with("partner-42", json!({"user_id": USER}))
        .await
        .unwrap();
    let refresh_token = login.refresh_token.clone().unwrap();

    let first = manager
        .insert_refresh_token("partner-42", refresh_token)
        .await
        .unwrap();
    let token = manager.access_token("partner-42").await.unwrap();
    assert!(
        !token.expose_secret().is_empty(),
        "a real token, not an empty one"
    );
    assert_eq!(token, first);
    sandbox
        .issuer()
        .authenticate(token.expose_secret())
        .await
        .expect("the provider accepts it");
    assert_eq!(sandbox.calls(REFRESH_PATH), 1);
    tokio::time::advance(Duration::from_secs(60)).await;
    assert_eq!(manager.access_token("partner-42").await.unwrap(), token);
    assert_eq!(sandbox.calls(REFRESH_PATH), 1);
}

/// The v3 `partnerId` header names the partner: a refresh for another partner is refused
/// with the sandbox host's generic error, a definitive refusal, and rotates nothing (v2
/// requests carry no partner id).
#[tokio::test(start_paused = true)]
async fn a_v3_refresh_for_another_partner_is_refused() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config(), &VaultistConfig::new(42)).await;
    let (manager, first) = seeded(&sandbox, &clock, VaultistConfig::new(43)).await;
    tokio::time::advance(HOUR).await;
    let error = manager.access_token("partner").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert_eq!(error.provider_code(), Some("COMMON"));
    assert_eq!(sandbox.calls(REFRESH_PATH), 1, "a refusal is not retried");
    // Nothing rotated: the partner's own refresh goes through with the same token.
    let (manager, _) = seeded(&sandbox, &clock, VaultistConfig::new(42)).await;
    manager.insert("partner", first.clone()).await.unwrap();
    tokio::time::advance(HOUR).await;
    manager.access_token("partner").await.unwrap();
    // And v2, which sends no partner id, is served whatever partner the config names.
    let other_v2 = VaultistConfig::new(7).with_api_version(ApiVersion::V2);
    let (manager, _) = seeded(&sandbox, &clock, other_v2).await;
    tokio::time::advance(HOUR).await;
    manager.access_token("partner").await.unwrap();
}

/// A v2 request (`grant_type` in the body) that cannot be read (no refresh token, the
/// merchant header sent twice) is refused with v2's `400 BAD_REQUEST` shape, which its
/// client reads, never with v3's `{"error": ...}`; a request with neither the body's
/// `grant_type` nor the `grantType` header is v3's, and refused in its shape.
#[tokio::test(start_paused = true)]
async fn an_unreadable_v2_request_is_refused_in_the_v2_shape() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config(), &v2()).await;
    let post = |body: &str, merchants: &[&str]| {
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(sandbox.url(REFRESH_PATH).as_str())
            .header(http::header::CONTENT_TYPE, "application/json");
        for merchant in merchants {
            request = request.header("X-Merchant-ID", *merchant);
        }
        request.body(body.as_bytes().to_vec()).unwrap()
    };
    let json_of = |answer: &http::Response<Vec<u8>>| -> serde_json::Value {
        serde_json::from_slice(answer.body()).unwrap_or_default()
    };
    for request in [
        post(r#"{"grant_type":"refresh_token"}"#, &[]),
        post(
            r#"{"grant_type":"refresh_token","refresh_token":"rt_x"}"#,
            &["m-1", "m-2"],
        ),
    ] {
        let answer = sandbox.client().send(request).await.unwrap();
        let body = json_of(&answer);
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{body}");
        assert_eq!(body["status"], "BAD_REQUEST", "{body}");
    }
    let answer = sandbox
        .client()
        .send(post(r#"{"refresh_token":"rt_x"}"#, &[]))
        .await
        .unwrap();
    let body = json_of(&answer);
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{body}");
    assert_eq!(body["error"], "invalid_request", "{body}");
}

/// A v2 answer whose `user_id` is blank (`""`, `"  "`) names no user, as one without it
/// does: the session keeps the user its tokens belong to, as a `#[token(keep)]` extra is
/// kept, rather than an empty id.
#[tokio::test(start_paused = true)]
async fn a_v2_answer_with_a_blank_user_id_keeps_the_sessions_user() {
    use token_core::provider::Provider as _;
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config(), &VaultistConfig::new(42)).await;
    let provider = Vaultist::new(sandbox.base_url(), v2());
    let cx = token_core::provider::CallContext::new(sandbox.client(), clock.clone(), "partner");
    for blank in ["", "  "] {
        let mut session: TokenSet<VaultistExtras> =
            issued(&sandbox, "partner", json!({"user_id": blank})).await;
        session.extras.user_id = Some(USER.into());
        let next = provider.refresh(&cx, &session).await.unwrap();
        assert_ne!(next.refresh_token, session.refresh_token);
        assert_eq!(next.extras.user_id.as_deref(), Some(USER), "{blank:?}");
    }
}
