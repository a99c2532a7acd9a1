//! Security: the bearer token never follows a redirect to another origin, the token endpoint
//! follows no redirect at all, and no secret shows in a log line, a `Debug`, an error or an
//! event. (The fault matrix runs the same leak check on every row of every provider.)

use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::{HeaderValue, StatusCode, header::LOCATION};
use token_core::middleware::BearerAuth;
use token_core::oauth::TOKEN_PATH;
use token_core::sandbox::{Failure, RunningSandbox, Sandbox, SandboxContext, json_response};
use token_core::{
    clock::ManualClock, error::ErrorKind, manager::Event, manager::TokenManager,
    secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_set::TokenSet,
    transport::ReqwestClient,
};

use token_test_support::logs::{Captured, has_line};
use token_test_support::rig::{CoreOAuth, Env, RigClock, Subject, Transport};
use token_test_support::{leaked, lock};

/// What a capturing server saw: the `Authorization` header of each request (`None`: absent).
type Seen = Arc<Mutex<Vec<Option<String>>>>;

/// A second loopback server (another port: another origin) that records what it is sent.
async fn capturing_server() -> (RunningSandbox, Seen) {
    let seen: Seen = Arc::default();
    let record = seen.clone();
    let sandbox = Sandbox::builder()
        .oauth_routes(false)
        .api_routes(false)
        .route_any(
            "/capture",
            move |request: http::Request<Vec<u8>>, _cx: SandboxContext| {
                let record = record.clone();
                async move {
                    let auth = request
                        .headers()
                        .get(http::header::AUTHORIZATION)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
                    let body = String::from_utf8_lossy(request.body()).into_owned();
                    lock(&record).push(auth.or_else(|| (!body.is_empty()).then_some(body)));
                    json_response(StatusCode::OK, &serde_json::json!({"captured": true}))
                }
            },
        )
        .start()
        .await
        .expect("the capturing server starts");
    (sandbox, seen)
}

/// A client through `BearerAuth` for session `m` of a manager over `sandbox`'s OAuth
/// endpoints (reqwest's default redirect policy), the manager, and the access token it holds.
async fn bearer_client(
    sandbox: &RunningSandbox,
) -> (
    reqwest_middleware::ClientWithMiddleware,
    TokenManager<token_core::sandbox::SandboxOAuth>,
    AccessToken,
) {
    let provider = token_core::sandbox::SandboxOAuth::new(sandbox.base_url());
    let manager = TokenManager::builder(provider).build().expect("builds");
    let first = sandbox.issue("m").await.expect("issues");
    let token = first.access_token.clone();
    manager
        .insert("m", TokenSet::from_stored(first).expect("fits"))
        .await
        .expect("inserts");
    let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
        .with(BearerAuth::new(manager.clone(), "m"))
        .build();
    (client, manager, token)
}

/// A redirect to `to`.
fn redirect(to: &url::Url) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(Vec::new());
    *response.status_mut() = StatusCode::FOUND;
    response.headers_mut().insert(
        LOCATION,
        HeaderValue::from_str(to.as_str()).expect("a URL is a header value"),
    );
    response
}

#[tokio::test]
async fn the_bearer_token_is_not_sent_to_another_origin_after_a_redirect() {
    token_test_support::logs::install();
    let (other, seen) = capturing_server().await;
    let elsewhere = other.url("/capture");
    let same_origin = Arc::new(Mutex::new(None::<url::Url>));
    let target = same_origin.clone();
    let sandbox = Sandbox::builder()
        .route_any(
            "/api/elsewhere",
            move |_r: http::Request<Vec<u8>>, _cx: SandboxContext| {
                let to = elsewhere.clone();
                async move { redirect(&to) }
            },
        )
        .route_any(
            "/api/here",
            move |_r: http::Request<Vec<u8>>, _cx: SandboxContext| {
                let to = lock(&target).clone().expect("set before use");
                async move { redirect(&to) }
            },
        )
        .start()
        .await
        .expect("the sandbox starts");
    *lock(&same_origin) = Some(sandbox.url("/api/balance"));

    // reqwest's default policy follows redirects; the middleware must not defeat its
    // stripping of credentials on a cross-origin hop.
    let (client, _, token) = bearer_client(&sandbox).await;

    // Control: a same-origin redirect keeps the header (the protected API answers 200).
    let response = client
        .get(sandbox.url("/api/here"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK, "same-origin redirect");
    assert_eq!(sandbox.calls("/api/balance"), 1);

    // Control: sent to the capturing server directly, the header is there.
    let response = client
        .get(other.url("/capture"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    let direct = lock(&seen).pop().flatten().expect("the header was sent");
    assert!(direct.contains(token.expose_secret()));

    // The redirect to another origin (same host, another port) arrives without it.
    let response = client
        .get(sandbox.url("/api/elsewhere"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(sandbox.calls("/api/elsewhere"), 1);
    let seen = lock(&seen).clone();
    assert_eq!(seen, vec![None], "the other origin got: {seen:?}");
    assert_eq!(sandbox.calls(TOKEN_PATH), 0);
}

#[tokio::test]
async fn the_token_endpoint_follows_no_redirect_so_the_refresh_token_stays_home() {
    token_test_support::logs::install();
    let (other, seen) = capturing_server().await;
    let clock = ManualClock::default();
    let env = Env::new(
        RigClock::Manual(clock.clone()),
        Duration::ZERO,
        Transport::Socket(Duration::from_secs(5)),
    );
    let rig = CoreOAuth.start(&env).await;
    let seeded = rig.seed("s").await;
    clock.advance(time::Duration::seconds(3601));
    rig.sandbox().fail_next(
        TOKEN_PATH,
        1,
        Failure::new(StatusCode::TEMPORARY_REDIRECT).with_header(
            LOCATION,
            HeaderValue::from_str(other.url("/capture").as_str()).expect("a header value"),
        ),
    );
    let error = rig
        .access_token("s")
        .await
        .expect_err("a redirect is no answer");
    assert_eq!(error.kind(), ErrorKind::Rejected, "{error}");
    assert!(
        lock(&seen).is_empty(),
        "the refresh was forwarded: {seen:?}"
    );
    assert_eq!(rig.sandbox().calls(TOKEN_PATH), 1, "no retry of a 3xx");
    // Nothing lost: the stored set still refreshes once the endpoint behaves.
    assert_eq!(
        rig.stored("s").await.map(|s| s.refresh_token),
        Some(seeded.refresh_token)
    );
    // After the failure cooldown (callers meanwhile get the same answer without a call).
    clock.advance(time::Duration::seconds(6));
    rig.access_token("s").await.expect("refreshes afterwards");

    // The transport on its own: a 3xx comes back as it is.
    let client = ReqwestClient::new().expect("builds");
    let request = http::Request::post(rig.sandbox().url(TOKEN_PATH).as_str())
        .body(b"grant_type=refresh_token&refresh_token=rt_x".to_vec())
        .expect("a request");
    rig.sandbox().fail_next(
        TOKEN_PATH,
        1,
        Failure::new(StatusCode::MOVED_PERMANENTLY).with_header(
            LOCATION,
            HeaderValue::from_str(other.url("/capture").as_str()).expect("a header value"),
        ),
    );
    let answer = token_core::transport::HttpClient::send(&client, request)
        .await
        .expect("an answer");
    assert_eq!(answer.status(), StatusCode::MOVED_PERMANENTLY);
    assert!(lock(&seen).is_empty());
}

/// The middleware's whole path, 401 and resend included, logged at TRACE by every crate:
/// the lines of the refresh, of the resend and of the re-auth are captured, and no token is in
/// any of them, nor in an event or the error.
#[test]
fn the_middleware_logs_no_token() {
    let runtime = Captured::new(tokio::runtime::Builder::new_current_thread().enable_all());
    let (secrets, shown) = runtime.block_on(async {
        let clock = ManualClock::default();
        let env = Env::new(
            RigClock::Manual(clock.clone()),
            Duration::ZERO,
            Transport::Socket(Duration::from_secs(5)),
        );
        let sandbox = Sandbox::builder()
            .clock(env.clock.clock())
            .issuer_store(env.issuer_store.clone())
            .start()
            .await
            .expect("starts");
        let provider = token_core::sandbox::SandboxOAuth::new(sandbox.base_url());
        // The manager's clock stays behind: the API refuses a token the manager thinks
        // fresh, and the middleware refreshes and resends.
        let manager = TokenManager::builder(provider)
            .shared_store(env.store.clone())
            .build()
            .expect("builds");
        let first = sandbox.issue("m").await.expect("issues");
        let mut secrets = vec![
            first.access_token.expose_secret().to_owned(),
            first
                .refresh_token
                .clone()
                .expect("rt")
                .expose_secret()
                .to_owned(),
        ];
        manager
            .insert("m", TokenSet::from_stored(first).expect("fits"))
            .await
            .expect("inserts");
        let mut events = manager.subscribe();
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(BearerAuth::new(manager.clone(), "m"))
            .build();
        let ok = client
            .get(sandbox.url("/api/a"))
            .send()
            .await
            .expect("sent");
        assert_eq!(ok.status(), StatusCode::OK);
        clock.advance(time::Duration::seconds(3601));
        let resent = client
            .get(sandbox.url("/api/b"))
            .send()
            .await
            .expect("sent");
        assert_eq!(resent.status(), StatusCode::OK);
        assert_eq!(sandbox.calls(TOKEN_PATH), 1);
        // Revoked at the provider: the error that comes back shows no token either.
        let set = manager.token_set("m").await.expect("a set");
        sandbox
            .issuer()
            .revoke(set.access_token.expose_secret())
            .await
            .expect("revokes");
        // The token in use came from a 401-driven refresh: a 401 for it is returned as
        // is (an API refusing every token must not rotate the session per request).
        let refused = client
            .get(sandbox.url("/api/c"))
            .send()
            .await
            .expect("the API's answer");
        assert_eq!(refused.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(sandbox.calls(TOKEN_PATH), 1, "no refresh for that 401");
        let error = manager.refresh_now("m").await.expect_err("re-auth");
        let error = format!("{error} {error:?}");
        assert!(
            error.contains("reauth_required"),
            "the error inspected: {error}"
        );
        let debug = format!("{manager:?}");
        assert!(
            debug.contains("TokenManager"),
            "the Debug inspected: {debug}"
        );
        let mut received = Vec::new();
        while let Ok(event) = events.try_recv() {
            received.push(event);
        }
        assert!(
            received
                .iter()
                .any(|e| matches!(e, Event::Refreshed { .. }))
                && received
                    .iter()
                    .any(|e| matches!(e, Event::ReauthRequired(_))),
            "the events inspected: {received:?}"
        );
        let mut shown = vec![error, debug];
        shown.extend(received.iter().map(|event| format!("{event:?}")));
        secrets.extend(lock(&env.issuer_store.minted).iter().cloned());
        (secrets, shown)
    });
    let logs = runtime.text();
    for line in [
        &[
            "session=m",
            "API refused the access token; refreshing and resending once",
        ][..],
        &["token_refresh{", "session=m", "token set refreshed"],
        &["token_refresh{", "session=m", "re-authorization required"],
    ] {
        assert!(has_line(&logs, line), "no line with {line:?} in:\n{logs}");
    }
    // The first pair, its successor, and the issuer's answers.
    assert!(secrets.len() >= 3, "secrets: {}", secrets.len());
    for text in shown.iter().chain([&logs]) {
        assert_eq!(leaked(text, &secrets), None, "in: {text}");
    }
}

/// The capture itself: lines written on a capture's runtime, on the calling thread, on its
/// workers and on its blocking threads, all arrive, and none of another capture's, while
/// several captures run at once and first reach the same callsites together. (A thread-local
/// default, the former mechanism, misses the worker and blocking-thread lines every time.)
#[test]
fn a_capture_holds_every_line_of_its_runtime_and_no_other() {
    const CAPTURES: usize = 4;
    const ROUNDS: usize = 50;
    let start = Arc::new(std::sync::Barrier::new(CAPTURES));
    let threads: Vec<_> = (0..CAPTURES)
        .map(|n| {
            let start = start.clone();
            std::thread::spawn(move || {
                let mut builder = if n % 2 == 0 {
                    tokio::runtime::Builder::new_current_thread()
                } else {
                    let mut builder = tokio::runtime::Builder::new_multi_thread();
                    builder.worker_threads(2);
                    builder
                };
                let runtime = Captured::new(builder.enable_all());
                start.wait();
                runtime.block_on(async move {
                    for round in 0..ROUNDS {
                        tracing::trace!(capture = n, round, "line on the caller");
                        tokio::spawn(async move {
                            tracing::trace!(capture = n, round, "line in a task");
                        })
                        .await
                        .expect("the task ran");
                        tokio::task::spawn_blocking(move || {
                            tracing::trace!(capture = n, round, "line on a blocking thread");
                        })
                        .await
                        .expect("the blocking call ran");
                    }
                });
                runtime.text()
            })
        })
        .collect();
    for (n, thread) in threads.into_iter().enumerate() {
        let logs = thread.join().expect("the capture thread finished");
        for place in ["on the caller", "in a task", "on a blocking thread"] {
            let ours = logs
                .lines()
                .filter(|l| l.contains(place) && l.contains(&format!("capture={n} ")))
                .count();
            assert_eq!(ours, ROUNDS, "capture {n}, lines {place}:\n{logs}");
        }
        let foreign = logs
            .lines()
            .filter(|l| l.contains("capture=") && !l.contains(&format!("capture={n} ")))
            .count();
        assert_eq!(foreign, 0, "capture {n} holds another's lines:\n{logs}");
    }
}

/// Every type that holds a secret prints it redacted.
#[test]
fn debug_and_display_never_show_a_secret() {
    token_test_support::logs::install();
    const AT: &str = "at_DebugCanary0123456789";
    const RT: &str = "rt_DebugCanary0123456789";
    const CS: &str = "cs_DebugCanary0123456789";
    let set: TokenSet = TokenSet::new(AccessToken::new(AT))
        .with_refresh_token(RefreshToken::new(RT))
        .with_token_type("Bearer");
    let stored = set.to_stored().expect("stores");
    let oauth2 = token_provider_oauth2::OAuth2Config::new(
        "app",
        "https://id.example/token".parse().expect("a URL"),
    )
    .with_client_secret(ClientSecret::new(CS));
    let maya = token_provider_maya::MayaConfig::new(
        "partner",
        ClientSecret::new(CS),
        "https://connect.example/".parse().expect("a URL"),
    );
    let mut alipay = token_provider_alipayplus::AlipayPlusConfig::new(
        "client",
        "psp",
        token_provider_alipayplus::sandbox::client_private_key(),
        token_provider_alipayplus::sandbox::mpp_public_key(),
    );
    alipay.authorize_url = None;
    let paymentsgate = token_provider_paymentsgate::PaymentsgateConfig::new("acct", CS);
    let key_line = token_provider_alipayplus::sandbox::client_private_key()
        .lines()
        .nth(1)
        .expect("a PEM body line")
        .to_owned();
    // Each text with the number of secrets it holds: each must show as a redaction mark.
    let shown = [
        (4, format!("{set:?} {stored:?}")),
        (
            2,
            format!(
                "{} {}",
                set.access_token,
                set.refresh_token.clone().expect("rt")
            ),
        ),
        (1, format!("{oauth2:?}")),
        (1, format!("{maya:?}")),
        (1, format!("{alipay:?}")),
        (1, format!("{paymentsgate:?}")),
        (1, format!("{:?}", ClientSecret::new(CS))),
    ];
    let secrets = [AT.to_owned(), RT.to_owned(), CS.to_owned(), key_line];
    for (held, text) in &shown {
        assert_eq!(
            text.matches("[redacted]").count(),
            *held,
            "each secret shows as redacted: {text}"
        );
        assert_eq!(leaked(text, &secrets), None, "in: {text}");
    }
}

#[tokio::test]
async fn a_401_from_another_origin_after_a_redirect_is_no_verdict_on_the_token() {
    // Another origin that refuses everything, as any site would without our token.
    let other = Sandbox::builder()
        .oauth_routes(false)
        .api_routes(false)
        .route_any(
            "/refuse",
            |_r: http::Request<Vec<u8>>, _cx: SandboxContext| async move {
                json_response(
                    StatusCode::UNAUTHORIZED,
                    &serde_json::json!({"error": "invalid_token"}),
                )
            },
        )
        .start()
        .await
        .expect("the other origin starts");
    let elsewhere = other.url("/refuse");
    let sandbox = Sandbox::builder()
        .route_any(
            "/api/moved",
            move |_r: http::Request<Vec<u8>>, _cx: SandboxContext| {
                let to = elsewhere.clone();
                async move { redirect(&to) }
            },
        )
        .start()
        .await
        .expect("the sandbox starts");
    let (client, manager, token) = bearer_client(&sandbox).await;

    let response = client
        .get(sandbox.url("/api/moved"))
        .send()
        .await
        .expect("sent");
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        sandbox.calls(TOKEN_PATH),
        0,
        "no refresh for another origin's 401"
    );
    assert_eq!(sandbox.calls("/api/moved"), 1, "not resent");
    assert_eq!(other.calls("/refuse"), 1);
    assert_eq!(
        manager.access_token("m").await.expect("still served"),
        token
    );
}

/// A token call (a refresh token in its body) to a plain `http://` host that is not
/// loopback is refused before anything is sent, `Misconfigured`: on the way, anyone could
/// read the token. `allow_plain_http` lets it through, for a trusted network.
#[tokio::test]
async fn a_token_call_over_plain_http_to_a_host_not_loopback_is_refused_unsent() {
    use token_core::transport::HttpClient as _;
    let (server, seen) = capturing_server().await;
    // `provider.test` is resolved to the loopback server without asking any DNS.
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .resolve("provider.test", server.addr())
        .build()
        .unwrap();
    let url = format!("http://provider.test:{}/capture", server.addr().port());
    let call = || {
        http::Request::post(url.as_str())
            .body(b"grant_type=refresh_token&refresh_token=rt-secret".to_vec())
            .unwrap()
    };
    let refused = ReqwestClient::from_client(client.clone())
        .send(call())
        .await
        .expect_err("refused");
    assert_eq!(refused.kind, ErrorKind::Misconfigured, "{refused}");
    assert!(!refused.to_string().contains("rt-secret"), "{refused}");
    assert!(
        lock(&seen).is_empty(),
        "the call was sent: {:?}",
        lock(&seen)
    );

    let sent = ReqwestClient::from_client(client)
        .allow_plain_http()
        .send(call())
        .await
        .expect("sent when allowed");
    assert_eq!(sent.status(), StatusCode::OK);
    assert_eq!(lock(&seen).len(), 1);
}

/// Two generic OAuth 2.0 clients left at the default name, each at its own server, share one
/// store and a session name: each manager refreshes only its own session, at its own server,
/// and neither server is ever sent the other's refresh token (nor ends the other's session).
#[tokio::test]
async fn two_clients_under_one_provider_name_share_a_store_without_sharing_a_session() {
    two_managers_on_one_store(["app-a", "app-b"]).await;
}

/// The same with one client id at two servers (a realm per customer, each with a client of
/// the same name): the token endpoint tells them apart.
#[tokio::test]
async fn one_client_id_at_two_servers_shares_a_store_without_sharing_a_session() {
    two_managers_on_one_store(["payments", "payments"]).await;
}

/// Two generic OAuth 2.0 managers (default name) for `clients`, each at a sandbox of its
/// own, on one store, each with a session `user-1` of its server's.
async fn two_managers_on_one_store(clients: [&str; 2]) {
    use token_core::provider::Provider as _;
    use token_core::store::{MemoryStore, TokenStore};
    use token_provider_oauth2::{OAuth2, OAuth2Config};

    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let mut servers = Vec::new();
    let mut managers = Vec::new();
    for client in clients {
        let sandbox = Sandbox::builder()
            .start()
            .await
            .expect("the sandbox starts");
        let token_url = sandbox.url(TOKEN_PATH);
        let config = OAuth2Config::new(client, token_url.clone());
        let manager = TokenManager::builder(OAuth2::new(config))
            .shared_store(store.clone())
            .client(ReqwestClient::new().expect("a client"))
            .build()
            .expect("the manager builds");
        assert_eq!(
            manager.provider().name(),
            "oauth2",
            "both keep the default name"
        );
        assert_eq!(
            manager.namespace(),
            format!("oauth2:{client}@{}", token_url.as_str())
        );
        let first = sandbox.issue("user-1").await.expect("issues");
        manager
            .insert("user-1", TokenSet::from_stored(first).expect("a set"))
            .await
            .expect("inserts");
        servers.push(sandbox);
        managers.push(manager);
    }
    for round in 0..2 {
        for (manager, sandbox) in managers.iter().zip(&servers) {
            let before = sandbox.calls(TOKEN_PATH);
            let token = manager
                .refresh_now("user-1")
                .await
                .unwrap_or_else(|error| panic!("round {round}: {error}"));
            assert_eq!(
                sandbox.calls(TOKEN_PATH),
                before + 1,
                "one refresh, at its own server"
            );
            let grant = sandbox.issuer().authenticate(token.expose_secret()).await;
            assert!(
                grant.is_ok(),
                "round {round}: the token is its own server's"
            );
        }
    }
    for (manager, sandbox) in managers.iter().zip(&servers) {
        assert_eq!(
            sandbox.calls(TOKEN_PATH),
            2,
            "each server saw its own two refreshes"
        );
        let record = store
            .load(&manager.session_key("user-1"))
            .await
            .expect("loads")
            .expect("each session is kept");
        assert!(record.value.tokens().is_some(), "no re-auth verdict");
    }
}
