//! The manager and the middleware against the sandbox: call counts as evidence.
//!
//! Tests that only need time use the in-process client on tokio's paused clock; the
//! middleware tests use the real loopback server.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{ResponseBuilderExt, StatusCode};
use time::macros::datetime;
use token_core::issuer::IssuerConfig;
use token_core::middleware::{BearerAuth, NoResend};
use token_core::oauth::TOKEN_PATH;
use token_core::sandbox::{Failure, RunningSandbox, Sandbox, SandboxOAuth};
use token_core::{
    clock::Clock, clock::ManualClock, clock::TokioClock, error::ErrorKind, manager::Event,
    manager::ManagerConfig, manager::RetryPolicy, manager::TokenManager, token_set::TokenSet,
};

const REUSE: Duration = Duration::from_secs(300);

async fn sandbox(clock: Arc<dyn Clock>, reuse: Duration) -> RunningSandbox {
    Sandbox::builder()
        .clock(clock)
        .issuer_config(IssuerConfig::default().with_reuse_window(reuse))
        .start()
        .await
        .unwrap()
}

fn config() -> ManagerConfig {
    ManagerConfig::default()
        .with_refresh_skew(Duration::from_secs(60), Duration::from_secs(10))
        .with_retry(
            RetryPolicy::default().with_backoff(Duration::from_millis(200), Duration::from_secs(5)),
        )
}

/// A manager on the in-process client, with `session` seeded from the issuer.
async fn manager(
    sandbox: &RunningSandbox,
    clock: Arc<dyn Clock>,
    session: &str,
) -> TokenManager<SandboxOAuth> {
    let provider = SandboxOAuth::new(sandbox.base_url())
        .with_reuse_window(sandbox.issuer().config().reuse_window);
    let manager = TokenManager::builder(provider)
        .shared_client(sandbox.client())
        .clock(clock)
        .config(config())
        .build()
        .unwrap();
    let first = sandbox.issue(session).await.unwrap();
    manager
        .insert(session, TokenSet::from_stored(first).unwrap())
        .await
        .unwrap();
    manager
}

#[tokio::test(start_paused = true)]
async fn a_thousand_callers_on_an_expired_token_cause_one_refresh_call() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC)));
    let sandbox = sandbox(clock.clone(), REUSE).await;
    let manager = manager(&sandbox, clock, "herd").await;
    tokio::time::advance(Duration::from_secs(3601)).await;

    let callers: Vec<_> = (0..1000)
        .map(|_| {
            let manager = manager.clone();
            tokio::spawn(async move { manager.access_token("herd").await })
        })
        .collect();
    let mut tokens = std::collections::HashSet::new();
    for caller in callers {
        tokens.insert(caller.await.unwrap().unwrap().expose_secret().to_owned());
    }
    assert_eq!(tokens.len(), 1, "every caller got the same new token");
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
    let token = tokens.into_iter().next().unwrap();
    assert!(
        sandbox.issuer().authenticate(&token).await.is_ok(),
        "the issuer accepts the new token"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_refresh_answer_inside_the_reuse_window_recovers_without_reauth() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC)));
    let sandbox = sandbox(clock.clone(), REUSE).await;
    let manager = manager(&sandbox, clock, "s").await;
    let mut events = manager.subscribe();
    tokio::time::advance(Duration::from_secs(3601)).await;

    sandbox.drop_next(TOKEN_PATH, 1);
    let token = manager.access_token("s").await.unwrap();
    assert_eq!(
        sandbox.calls(TOKEN_PATH),
        2,
        "one lost answer, one retry with the same refresh token"
    );
    assert!(
        sandbox
            .issuer()
            .authenticate(token.expose_secret())
            .await
            .is_ok()
    );
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event, Event::ReauthRequired(_)), "{event:?}");
    }
    // The recovered pair refreshes normally afterwards: the rotation was followed.
    tokio::time::advance(Duration::from_secs(3601)).await;
    manager.access_token("s").await.unwrap();
    assert_eq!(sandbox.calls(TOKEN_PATH), 3);
}

#[tokio::test(start_paused = true)]
async fn a_lost_refresh_answer_without_a_reuse_window_is_outcome_unknown_then_reauth() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC)));
    let sandbox = sandbox(clock.clone(), Duration::ZERO).await;
    let manager = manager(&sandbox, clock, "s").await;
    tokio::time::advance(Duration::from_secs(3601)).await;

    sandbox.drop_next(TOKEN_PATH, 1);
    let error = manager.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown);
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
    // Callers meanwhile get the same answer without a call (a failing provider is not
    // hammered); after the failure cooldown the next attempt learns the token is dead.
    let again = manager.access_token("s").await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::OutcomeUnknown);
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    let error = manager.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(error.provider_code(), Some("invalid_grant"));
    assert!(
        error
            .reauth()
            .unwrap()
            .authorize_url
            .as_deref()
            .unwrap()
            .contains("state=s")
    );
}

#[tokio::test(start_paused = true)]
async fn a_5xx_then_success_is_retried_and_invalid_grant_is_not() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC)));
    let sandbox = sandbox(clock.clone(), REUSE).await;
    let manager = manager(&sandbox, clock, "s").await;
    tokio::time::advance(Duration::from_secs(3601)).await;

    sandbox.fail_next(
        TOKEN_PATH,
        2,
        Failure::service_unavailable().with_retry_after(3),
    );
    let started = tokio::time::Instant::now();
    manager.access_token("s").await.unwrap();
    assert_eq!(sandbox.calls(TOKEN_PATH), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(6),
        "Retry-After honoured: {:?}",
        started.elapsed()
    );

    // Revoke the session at the provider: the next refresh is refused, once.
    let current = manager.token_set("s").await.unwrap();
    sandbox
        .issuer()
        .revoke(current.refresh_token.unwrap().expose_secret())
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(3601)).await;
    let error = manager.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(sandbox.calls(TOKEN_PATH), 4);
    assert_eq!(
        manager.access_token("s").await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    assert_eq!(
        sandbox.calls(TOKEN_PATH),
        4,
        "a dead session is not refreshed again"
    );
}

#[tokio::test(start_paused = true)]
async fn twenty_rotations_in_a_row_never_reuse_a_refresh_token() {
    // No reuse window: a refresh token sent twice would be refused and force re-auth.
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC)));
    let sandbox = sandbox(clock.clone(), Duration::ZERO).await;
    let manager = manager(&sandbox, clock, "s").await;
    let mut seen = std::collections::HashSet::new();
    for round in 1..=20 {
        tokio::time::advance(Duration::from_secs(3601)).await;
        let set = manager.token_set("s").await.unwrap();
        assert!(
            seen.insert(set.refresh_token.unwrap().expose_secret().to_owned()),
            "round {round}"
        );
        assert_eq!(sandbox.calls(TOKEN_PATH), round);
    }
}

#[tokio::test(start_paused = true)]
async fn a_provider_that_keeps_its_refresh_token_refreshes_with_it_again_and_again() {
    use token_core::issuer::RefreshRotation;
    for rotation in [RefreshRotation::KeepAndResend, RefreshRotation::KeepUnsent] {
        let clock: Arc<dyn Clock> =
            Arc::new(TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC)));
        let sandbox = Sandbox::builder()
            .clock(clock.clone())
            .issuer_config(IssuerConfig::default().with_refresh_rotation(rotation))
            .start()
            .await
            .unwrap();
        let manager = manager(&sandbox, clock, "s").await;
        let first = manager.token_set("s").await.unwrap();
        let kept = first.refresh_token.clone().unwrap();
        let mut accesses = std::collections::HashSet::new();
        for round in 1..=5 {
            tokio::time::advance(Duration::from_secs(3601)).await;
            let set = manager.token_set("s").await.unwrap();
            assert_eq!(
                set.refresh_token.as_ref(),
                Some(&kept),
                "{rotation:?} {round}"
            );
            assert!(
                accesses.insert(set.access_token.expose_secret().to_owned()),
                "{rotation:?} round {round}: a new access token"
            );
            assert_eq!(sandbox.calls(TOKEN_PATH), round);
            assert!(
                sandbox
                    .issuer()
                    .authenticate(set.access_token.expose_secret())
                    .await
                    .is_ok()
            );
        }
    }
}

/// A sandbox, and a manager whose provider issues sets for client `app-1`.
async fn client_credentials_manager() -> (RunningSandbox, TokenManager<SandboxOAuth>) {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC)));
    let sandbox = sandbox(clock.clone(), Duration::ZERO).await;
    let provider = SandboxOAuth::new(sandbox.base_url()).with_client_credentials("app-1");
    let manager = TokenManager::builder(provider)
        .shared_client(sandbox.client())
        .clock(clock)
        .build()
        .unwrap();
    (sandbox, manager)
}

#[tokio::test(start_paused = true)]
async fn a_client_credentials_provider_issues_its_first_set() {
    let (sandbox, manager) = client_credentials_manager().await;
    let token = manager.access_token("app").await.unwrap();
    let grant = sandbox
        .issuer()
        .authenticate(token.expose_secret())
        .await
        .unwrap();
    assert_eq!(grant.subject, "app-1");
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
}

/// The set a client-credentials provider issued carries no refresh token (RFC 6749 section
/// 4.4.3): a refresh of the session obtains a new set with the client's credentials, never
/// a re-auth signal.
#[tokio::test(start_paused = true)]
async fn a_client_credentials_provider_issues_again_instead_of_refreshing() {
    let (sandbox, manager) = client_credentials_manager().await;
    let mut events = manager.subscribe();
    let first = manager.access_token("app").await.unwrap();
    assert_eq!(manager.token_set("app").await.unwrap().refresh_token, None);
    let token = manager.refresh_now("app").await.unwrap();
    assert_ne!(token, first);
    assert_eq!(
        sandbox
            .issuer()
            .authenticate(token.expose_secret())
            .await
            .unwrap()
            .subject,
        "app-1"
    );
    let mut seen = Vec::new();
    while let Ok(event) = events.try_recv() {
        match event {
            Event::Refreshed {
                issued, rotated, ..
            } => seen.push((issued, rotated)),
            Event::ReauthRequired(_) => panic!("{event:?}"),
            _ => {}
        }
    }
    assert_eq!(seen, [(true, false), (true, false)], "issued twice");
    assert_eq!(sandbox.calls(TOKEN_PATH), 2);
}

/// A sandbox on a manual clock, so the provider can expire an access token the client still
/// believes fresh (clock skew, early revocation).
async fn api_sandbox() -> (RunningSandbox, ManualClock) {
    let clock = ManualClock::default();
    let sandbox = Sandbox::builder()
        .clock(Arc::new(clock.clone()))
        .start()
        .await
        .unwrap();
    (sandbox, clock)
}

/// The middleware over the real loopback server; the manager keeps the system clock.
async fn api_client(
    sandbox: &RunningSandbox,
    session: &str,
) -> (
    reqwest_middleware::ClientWithMiddleware,
    TokenManager<SandboxOAuth>,
) {
    let manager = api_manager(sandbox, session).await;
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(manager.clone(), session))
        .build();
    (client, manager)
}

/// A manager over `sandbox`'s OAuth routes holding a login for `session`.
async fn api_manager(sandbox: &RunningSandbox, session: &str) -> TokenManager<SandboxOAuth> {
    let provider = SandboxOAuth::new(sandbox.base_url());
    let manager = TokenManager::builder(provider).build().unwrap();
    let first = sandbox.issue(session).await.unwrap();
    manager
        .insert(session, TokenSet::from_stored(first).unwrap())
        .await
        .unwrap();
    manager
}

/// A request that carries credentials of the caller's own (`.basic_auth(...)`) goes on as it
/// is: its `Authorization` is not replaced by the token, and its 401 is no verdict on the
/// token (no refresh, no resend).
#[tokio::test]
async fn a_request_with_its_own_authorization_is_left_alone() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<Option<String>>::new()));
    let log = seen.clone();
    let other = Sandbox::builder()
        .oauth_routes(false)
        .api_routes(false)
        .route_any(
            "/api/x",
            move |request: http::Request<Vec<u8>>, _cx: token_core::sandbox::SandboxContext| {
                let auth = request.headers().get("authorization");
                log.lock()
                    .unwrap()
                    .push(auth.map(|v| v.to_str().unwrap().to_owned()));
                let mut refused = http::Response::new(Vec::new());
                *refused.status_mut() = StatusCode::UNAUTHORIZED;
                async move { refused }
            },
        )
        .start()
        .await
        .unwrap();
    let (sandbox, _) = api_sandbox().await;
    let manager = api_manager(&sandbox, "m").await;
    let token = manager.access_token("m").await.unwrap();
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(manager.clone(), "m"))
        .build();
    let response = client
        .get(other.url("/api/x"))
        .basic_auth("user", Some("pw"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        *seen.lock().unwrap(),
        [Some("Basic dXNlcjpwdw==".to_owned())]
    );
    assert_eq!(
        manager.access_token("m").await.unwrap(),
        token,
        "not refreshed"
    );
}

/// `BearerAuth::only_to`: a request for another origin goes on without the token, and that
/// origin's 401 is no verdict on the token (no refresh); the origin's own requests carry it.
/// What is not an origin is refused.
#[tokio::test]
async fn only_to_keeps_the_token_from_other_origins() {
    let seen = Arc::new(std::sync::Mutex::new(Vec::<Option<String>>::new()));
    let log = seen.clone();
    let other = Sandbox::builder()
        .oauth_routes(false)
        .api_routes(false)
        .route_any(
            "/api/x",
            move |request: http::Request<Vec<u8>>, _cx: token_core::sandbox::SandboxContext| {
                let auth = request.headers().get("authorization");
                log.lock()
                    .unwrap()
                    .push(auth.map(|v| v.to_str().unwrap().to_owned()));
                let mut refused = http::Response::new(Vec::new());
                *refused.status_mut() = StatusCode::UNAUTHORIZED;
                async move { refused }
            },
        )
        .start()
        .await
        .unwrap();
    let (sandbox, _) = api_sandbox().await;
    let manager = api_manager(&sandbox, "m").await;
    let token = manager.access_token("m").await.unwrap();
    let origin = sandbox.base_url().origin().ascii_serialization();
    for scoped in [origin.clone(), format!("{origin}/"), origin.to_uppercase()] {
        let auth = BearerAuth::new(manager.clone(), "m")
            .only_to(&scoped)
            .unwrap();
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(auth)
            .build();
        let response = client.get(other.url("/api/x")).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(
            seen.lock().unwrap().pop(),
            Some(None),
            "no token for {scoped}"
        );
        let response = client
            .get(sandbox.url("/api/balance"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{scoped}");
    }
    assert_eq!(
        sandbox.calls(TOKEN_PATH),
        0,
        "another origin's 401 refreshes nothing"
    );
    assert_eq!(manager.access_token("m").await.unwrap(), token);

    let port = sandbox.base_url().port().unwrap();
    for not_an_origin in [
        "",
        "127.0.0.1",
        "ftp://127.0.0.1",
        "http://127.0.0.1/api",
        "http://127.0.0.1?x=1",
        "http://user@127.0.0.1",
        "/api",
    ] {
        let refused = BearerAuth::new(manager.clone(), "m").only_to(not_an_origin);
        assert!(
            matches!(refused, Err(token_core::error::Error::Config(_))),
            "{not_an_origin:?}"
        );
    }
    // Another port of the same host is another origin.
    let elsewhere = format!("http://127.0.0.1:{}", port.wrapping_add(1).max(1));
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(
            BearerAuth::new(manager.clone(), "m")
                .only_to(&elsewhere)
                .unwrap(),
        )
        .build();
    let response = client
        .get(sandbox.url("/api/balance"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.status(),
        StatusCode::UNAUTHORIZED,
        "sent without the token"
    );
    assert_eq!(sandbox.calls(TOKEN_PATH), 0);
}

#[tokio::test]
async fn the_middleware_sends_the_bearer_token_and_answers_a_401_with_one_refresh_and_one_resend() {
    let (sandbox, provider_clock) = api_sandbox().await;
    let (client, manager) = api_client(&sandbox, "m").await;
    let api = sandbox.url("/api/balance");

    assert_eq!(
        client.get(api.clone()).send().await.unwrap().status(),
        StatusCode::OK
    );
    assert_eq!(sandbox.calls(TOKEN_PATH), 0);

    // The provider expires the access token early: the API answers 401 once, the
    // middleware refreshes and resends.
    let old = manager.access_token("m").await.unwrap();
    provider_clock.advance(time::Duration::seconds(3601));
    let response = client.get(api.clone()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
    assert_eq!(sandbox.calls("/api/balance"), 3);
    assert_ne!(manager.access_token("m").await.unwrap(), old);
}

#[tokio::test]
async fn concurrent_401s_share_one_refresh() {
    let (sandbox, provider_clock) = api_sandbox().await;
    let (client, _manager) = api_client(&sandbox, "m").await;
    provider_clock.advance(time::Duration::seconds(3601));
    let requests: Vec<_> = (0..20)
        .map(|_| {
            let (client, url) = (client.clone(), sandbox.url("/api/x"));
            tokio::spawn(async move { client.get(url).send().await.unwrap().status() })
        })
        .collect();
    for request in requests {
        assert_eq!(request.await.unwrap(), StatusCode::OK);
    }
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
}

#[tokio::test]
async fn a_request_marked_no_resend_gets_the_401_back_and_the_next_request_a_new_token() {
    let (sandbox, provider_clock) = api_sandbox().await;
    let (client, _manager) = api_client(&sandbox, "m").await;
    provider_clock.advance(time::Duration::seconds(3601));
    let pay = || {
        client
            .post(sandbox.url("/api/payments"))
            .with_extension(NoResend)
            .body("{}")
            .send()
    };
    let response = pay().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sandbox.calls("/api/payments"), 1, "not resent");
    // Refreshed all the same: an API called only with requests that are never resent does
    // not keep receiving the refused token until it expires.
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
    assert_eq!(pay().await.unwrap().status(), StatusCode::OK);
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
}

#[tokio::test]
async fn a_dead_session_surfaces_reauth_through_the_middleware() {
    let (sandbox, _) = api_sandbox().await;
    let (client, manager) = api_client(&sandbox, "m").await;
    let set = manager.token_set("m").await.unwrap();
    sandbox
        .issuer()
        .revoke(set.refresh_token.unwrap().expose_secret())
        .await
        .unwrap();
    sandbox
        .issuer()
        .revoke(set.access_token.expose_secret())
        .await
        .unwrap();
    let error = client.get(sandbox.url("/api/x")).send().await.unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("reauth_required"), "{shown}");
    assert!(!shown.contains(set.access_token.expose_secret()));
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
}

/// A 302 to `to`.
fn redirect(to: &url::Url) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(Vec::new());
    *response.status_mut() = StatusCode::FOUND;
    response.headers_mut().insert(
        reqwest::header::LOCATION,
        http::HeaderValue::from_str(to.as_str()).unwrap(),
    );
    response
}

#[tokio::test]
#[ignore = "known fault: reqwest keeps no redirect history, so BearerAuth cannot tell that a \
            request sent back to its own origin from another one lost its token on the way"]
async fn a_401_after_a_hop_through_another_origin_is_no_verdict_on_the_token() {
    // The request leaves for another origin and is sent back: reqwest drops the token on
    // the way out and does not put it back, so the API's 401 says nothing about the token.
    let back = Arc::new(std::sync::Mutex::new(None::<url::Url>));
    let target = back.clone();
    let other = Sandbox::builder()
        .oauth_routes(false)
        .api_routes(false)
        .route_any(
            "/bounce",
            move |_r: http::Request<Vec<u8>>, _cx: token_core::sandbox::SandboxContext| {
                let to = target.lock().unwrap().clone().unwrap();
                async move { redirect(&to) }
            },
        )
        .start()
        .await
        .unwrap();
    let bounce = other.url("/bounce");
    let sandbox = Sandbox::builder()
        .route_any(
            "/api/out",
            move |_r: http::Request<Vec<u8>>, _cx: token_core::sandbox::SandboxContext| {
                let to = bounce.clone();
                async move { redirect(&to) }
            },
        )
        .start()
        .await
        .unwrap();
    *back.lock().unwrap() = Some(sandbox.url("/api/balance"));
    let (client, manager) = api_client(&sandbox, "m").await;
    let token = manager.access_token("m").await.unwrap();

    let response = client.get(sandbox.url("/api/out")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(sandbox.calls("/api/balance"), 1, "not resent");
    assert_eq!(
        sandbox.calls(TOKEN_PATH),
        0,
        "no refresh for a 401 to a request that had lost its token"
    );
    assert_eq!(manager.access_token("m").await.unwrap(), token);
}

/// What a request carries to the network, less its `Authorization`.
#[derive(Debug, PartialEq)]
struct Sent {
    method: reqwest::Method,
    url: String,
    headers: Vec<(String, Vec<u8>)>,
    version: http::Version,
    timeout: Option<Duration>,
    body: Option<Vec<u8>>,
    /// A hash of the `Authorization` value: a failure's message shows no token.
    authorization: Option<u64>,
}

/// The end of a chain: records each request and answers the first 401, the others 200.
#[derive(Default)]
struct RefuseFirst(std::sync::Mutex<Vec<Sent>>);

#[async_trait::async_trait]
impl reqwest_middleware::Middleware for RefuseFirst {
    async fn handle(
        &self,
        request: reqwest::Request,
        _: &mut http::Extensions,
        _: reqwest_middleware::Next<'_>,
    ) -> reqwest_middleware::Result<reqwest::Response> {
        let headers = request
            .headers()
            .iter()
            .filter(|(name, _)| *name != http::header::AUTHORIZATION)
            .map(|(name, value)| (name.to_string(), value.as_bytes().to_vec()))
            .collect();
        let sent = Sent {
            method: request.method().clone(),
            url: request.url().to_string(),
            headers,
            version: request.version(),
            timeout: request.timeout().copied(),
            body: request
                .body()
                .map(|body| body.as_bytes().expect("not streamed").to_vec()),
            authorization: request
                .headers()
                .get(http::header::AUTHORIZATION)
                .map(|value| {
                    use std::hash::{DefaultHasher, Hash, Hasher};
                    let mut hasher = DefaultHasher::new();
                    value.as_bytes().hash(&mut hasher);
                    hasher.finish()
                }),
        };
        let mut seen = self.0.lock().unwrap();
        seen.push(sent);
        let status = if seen.len() == 1 {
            StatusCode::UNAUTHORIZED
        } else {
            StatusCode::OK
        };
        // Answered from the request's origin, as the network would.
        let response = http::Response::builder()
            .status(status)
            .url(request.url().clone())
            .body("")
            .expect("a response");
        Ok(reqwest::Response::from(response))
    }
}

/// The request `BearerAuth` sends again after a 401 is the one it sent first (method, URL,
/// headers, HTTP version, timeout, body, small or large), with the new token.
#[tokio::test]
async fn a_request_resent_after_a_401_is_the_request_sent_first() {
    let (sandbox, _) = api_sandbox().await;
    let large = vec![b'x'; 64 * 1024];
    for body in [None, Some(b"{\"amount\":100}".to_vec()), Some(large)] {
        let manager = api_manager(&sandbox, "m").await;
        let end = Arc::new(RefuseFirst::default());
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(BearerAuth::new(manager.clone(), "m"))
            .with_arc(end.clone())
            .build();
        let mut request = client
            .request(
                reqwest::Method::PUT,
                sandbox.url("/api/payments/7?currency=EUR"),
            )
            .header("idempotency-key", "k-7")
            .header("x-trace", "a")
            .header("x-trace", "b")
            .version(http::Version::HTTP_11)
            .timeout(Duration::from_secs(17));
        if let Some(body) = &body {
            request = request.body(body.clone());
        }
        assert_eq!(request.send().await.unwrap().status(), StatusCode::OK);

        let mut seen = std::mem::take(&mut *end.0.lock().unwrap());
        assert_eq!(seen.len(), 2, "sent, refused, sent again");
        let again = seen.pop().unwrap();
        let first = seen.pop().unwrap();
        assert_eq!(first.timeout, Some(Duration::from_secs(17)));
        assert_eq!(first.body, body);
        assert_ne!(first.authorization, again.authorization, "a new token");
        let with_new_token = Sent {
            authorization: again.authorization,
            ..first
        };
        assert_eq!(again, with_new_token);
        assert_eq!(sandbox.calls(TOKEN_PATH), 1);
        sandbox.reset_calls();
    }
}
