//! The manager drives WeChat against its sandbox on tokio's paused clock: refresh with the
//! refresh token kept, re-auth on `40030` and `42002`, a retried `-1`, a misconfigured
//! `appid`, with the sandbox's call counts as evidence.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use token_core::issuer::IssuerConfig;
use token_core::sandbox::{Failure, RunningSandbox};
use token_core::{
    clock::Clock, error::ErrorKind, manager::Event, manager::ManagerConfig, manager::TokenManager,
    token_set::TokenSet,
};
use token_provider_wechat::{SnsRefreshToken, WeChat, WeChatConfig, WeChatUser, sandbox};
use token_test_support::harness::{self, accepted, paused_clock, seed};

const REFRESH_PATH: &str = <SnsRefreshToken as token_core::codec::Endpoint>::PATH;
const HOURS_2: Duration = Duration::from_secs(7200);
const DAY: Duration = Duration::from_secs(24 * 3600);
const APPID: &str = "wx520c15f417810387";
const OPENID: &str = "o6_bmjrPTlm6_2sgVt7hMZOPfL2M";
const USER: &str = "user-1";

async fn start(clock: &Arc<dyn Clock>, issuer: IssuerConfig) -> RunningSandbox {
    sandbox::start(clock.clone(), issuer, &WeChatConfig::new(APPID))
        .await
        .unwrap()
}

/// A manager for `appid` whose session holds a pair the sandbox issued (as after the user's
/// authorization and the code exchange).
async fn seeded(
    sandbox: &RunningSandbox,
    clock: &Arc<dyn Clock>,
    appid: &str,
) -> (TokenManager<WeChat>, TokenSet<WeChatUser>) {
    let provider = WeChat::new(sandbox.base_url(), WeChatConfig::new(appid));
    let manager = harness::manager(provider, sandbox, clock);
    let extras = json!({"openid": OPENID, "unionid": "o6_bmasdasdsad6_2sgVt7hMZOPfL"});
    let first = seed(&manager, sandbox, USER, extras).await;
    (manager, first)
}

/// A seeded session whose access token needs a refresh, and a sandbox answering its next
/// `times` refreshes with `failure`.
async fn due_for_refresh_under(
    times: u32,
    failure: Failure,
) -> (RunningSandbox, TokenManager<WeChat>) {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let (manager, _) = seeded(&sandbox, &clock, APPID).await;
    tokio::time::advance(HOURS_2).await;
    sandbox.fail_next(REFRESH_PATH, times, failure);
    (sandbox, manager)
}

fn errcode(code: i64, message: &str) -> Failure {
    Failure::new(StatusCode::OK).with_json(&json!({"errcode": code, "errmsg": message}))
}

#[tokio::test(start_paused = true)]
async fn a_refresh_keeps_the_refresh_token_and_the_user() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let (manager, first) = seeded(&sandbox, &clock, APPID).await;
    // The appid names the client: another app's sessions in the store are not these.
    assert_eq!(manager.namespace(), format!("wechat:{APPID}"));
    let mut events = manager.subscribe();
    for round in 1..=3 {
        tokio::time::advance(HOURS_2).await;
        let token = manager.access_token(USER).await.unwrap();
        assert_ne!(token, first.access_token);
        let set = manager.token_set(USER).await.unwrap();
        assert_eq!(set.refresh_token, first.refresh_token, "WeChat keeps it");
        assert_eq!(
            set.access_expires_at,
            Some(clock.now() + time::Duration::hours(2))
        );
        assert_eq!(set.extras.openid.as_deref(), Some(OPENID));
        assert!(set.extras.unionid.is_some(), "kept from the session");
        assert!(accepted(&sandbox, &token).await);
        assert_eq!(sandbox.calls(REFRESH_PATH), round);
        let event = events.recv().await.unwrap();
        assert!(
            matches!(event, Event::Refreshed { rotated: false, .. }),
            "{event:?}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn a_revoked_refresh_token_is_reauth_with_40030() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let (manager, first) = seeded(&sandbox, &clock, APPID).await;
    let mut events = manager.subscribe();
    let refresh = first.refresh_token.unwrap();
    sandbox
        .issuer()
        .revoke(refresh.expose_secret())
        .await
        .unwrap();
    tokio::time::advance(HOURS_2).await;

    let error = manager.access_token(USER).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(error.provider_code(), Some("40030"));
    let Event::ReauthRequired(reauth) = events.recv().await.unwrap() else {
        panic!("expected a re-auth event");
    };
    assert_eq!(reauth.code.as_deref(), Some("40030"));
    assert_eq!(sandbox.calls(REFRESH_PATH), 1, "a refusal is not retried");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains(refresh.expose_secret()), "{shown}");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_token_past_30_days_is_reauth_with_42002() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let (manager, _) = seeded(&sandbox, &clock, APPID).await;
    // Refreshes do not extend the refresh token: it dies 30 days after the authorization.
    for _ in 0..29 {
        tokio::time::advance(DAY).await;
        manager.access_token(USER).await.unwrap();
    }
    tokio::time::advance(DAY).await;
    let error = manager.access_token(USER).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(error.provider_code(), Some("42002"));
    assert_eq!(sandbox.calls(REFRESH_PATH), 30);
}

#[tokio::test(start_paused = true)]
async fn a_busy_answer_on_http_200_is_retried() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let (manager, first) = seeded(&sandbox, &clock, APPID).await;
    tokio::time::advance(HOURS_2).await;
    sandbox.fail_next(REFRESH_PATH, 2, errcode(-1, "system error"));
    assert_ne!(
        manager.access_token(USER).await.unwrap(),
        first.access_token
    );
    assert_eq!(sandbox.calls(REFRESH_PATH), 3);
}

#[tokio::test(start_paused = true)]
async fn a_quota_answer_on_every_call_is_transient_and_bounded() {
    let (sandbox, manager) =
        due_for_refresh_under(4, errcode(45009, "reach max api daily quota limit")).await;
    let error = manager.access_token(USER).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(error.provider_code(), Some("45009"));
    assert_eq!(
        sandbox.calls(REFRESH_PATH),
        4,
        "the retry policy's 4 attempts"
    );
    // The session survives the provider's bad day: the next refresh serves a token.
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    manager.access_token(USER).await.unwrap();
    assert_eq!(sandbox.calls(REFRESH_PATH), 5);
}

/// `45011` says "api minute-quota reach limit must slower retry next minute": it asks for a
/// minute, as a `Retry-After: 60` would. The caller gets the wait with the error, and callers
/// during that minute are answered from the session's cooldown instead of calling WeChat
/// again (retried like any transient error, every refresh spent four calls of the exhausted
/// quota, and the next caller a few seconds later four more).
#[tokio::test(start_paused = true)]
async fn the_minute_quota_is_waited_out_before_calling_again() {
    let quota = errcode(
        45011,
        "api minute-quota reach limit must slower retry next minute",
    );
    let (sandbox, manager) = due_for_refresh_under(100, quota).await;
    let started = tokio::time::Instant::now();
    let error = manager.access_token(USER).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(
        error.retry_after(),
        Some(Duration::from_secs(60)),
        "{error:?}"
    );
    // A retry only in the next minute, inside the retry policy's deadline (60 s).
    let calls = sandbox.calls(REFRESH_PATH);
    assert!(
        started.elapsed() >= Duration::from_secs(60) * u32::try_from(calls - 1).unwrap(),
        "{calls} calls in {:?}",
        started.elapsed()
    );
    for _ in 0..11 {
        tokio::time::advance(Duration::from_secs(5)).await;
        let error = manager.access_token(USER).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Transient);
    }
    assert_eq!(
        sandbox.calls(REFRESH_PATH),
        calls,
        "no call in the next minute"
    );
    sandbox.clear_faults();
    tokio::time::advance(Duration::from_secs(6)).await;
    manager.access_token(USER).await.unwrap();
    assert_eq!(sandbox.calls(REFRESH_PATH), calls + 1);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_appid_is_misconfigured_and_not_retried() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let (manager, _) = seeded(&sandbox, &clock, "wx0000000000000000").await;
    tokio::time::advance(HOURS_2).await;
    let error = manager.access_token(USER).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    assert_eq!(error.provider_code(), Some("40013"));
    assert_eq!(sandbox.calls(REFRESH_PATH), 1);
}

/// `40030` on HTTP 200 is re-auth whatever type `errmsg` has: the manager asks the user to
/// authorize again after one call, instead of reading an unknown outcome (retried, and the
/// user never told).
#[tokio::test(start_paused = true)]
async fn a_revoked_refresh_token_is_reauth_whatever_errmsg_holds() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let (manager, _) = seeded(&sandbox, &clock, APPID).await;
    let mut events = manager.subscribe();
    tokio::time::advance(HOURS_2).await;
    let odd = Failure::new(StatusCode::OK).with_json(&json!({"errcode": 40030, "errmsg": 40030}));
    sandbox.fail_next(REFRESH_PATH, 8, odd);
    let error = manager.access_token(USER).await.unwrap_err();
    assert_eq!(
        (error.kind(), error.provider_code()),
        (ErrorKind::ReauthRequired, Some("40030")),
        "{error}"
    );
    assert!(
        matches!(events.recv().await.unwrap(), Event::ReauthRequired(_)),
        "a re-auth event"
    );
    assert_eq!(sandbox.calls(REFRESH_PATH), 1);
}

/// The user's `openid` (the payer id every WeChat Pay JSAPI order needs) never changes for
/// an app: a refresh answer without it, with an `openid` of another type, or an empty one,
/// keeps the session's, as `unionid` is kept, instead of wiping it.
#[tokio::test(start_paused = true)]
async fn a_refresh_answer_without_a_readable_openid_keeps_the_users() {
    let clock = paused_clock();
    let sandbox = start(&clock, sandbox::issuer_config()).await;
    let (manager, first) = seeded(&sandbox, &clock, APPID).await;
    assert_eq!(first.extras.openid.as_deref(), Some(OPENID));
    for (round, answer) in [
        json!({"access_token": "at-odd-1", "expires_in": 7200, "openid": 5}),
        json!({"access_token": "at-odd-2", "expires_in": 7200, "scope": "snsapi_userinfo"}),
        json!({"access_token": "at-odd-3", "expires_in": 7200, "openid": "", "unionid": " "}),
    ]
    .into_iter()
    .enumerate()
    {
        tokio::time::advance(HOURS_2).await;
        sandbox.fail_next(
            REFRESH_PATH,
            1,
            Failure::new(StatusCode::OK).with_json(&answer),
        );
        let set = manager.token_set(USER).await.unwrap();
        assert_eq!(
            set.access_token.expose_secret(),
            format!("at-odd-{}", round + 1)
        );
        assert_eq!(set.refresh_token, first.refresh_token, "kept");
        assert_eq!(set.extras.openid.as_deref(), Some(OPENID), "{answer}");
        assert_eq!(set.extras.unionid, first.extras.unionid, "{answer}");
    }
}
