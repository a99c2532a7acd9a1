use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use time::macros::datetime;

use super::*;
use crate::clock::ManualClock;
use crate::codec::{Endpoint, TokenResponse as _, decode_response};
use crate::error::{EndpointError, Error, ErrorKind};
use crate::oauth::{ClientCredentialsGrant, OAuthTokens, RefreshTokenGrant};
use crate::provider::CallContext;
use crate::secret::RefreshToken;
use crate::transport::ReqwestClient;

const WINDOW: Duration = Duration::from_secs(300);

async fn sandbox() -> (RunningSandbox, ManualClock) {
    let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
    let running = Sandbox::builder()
        .clock(Arc::new(clock.clone()))
        .issuer_config(IssuerConfig::default().with_reuse_window(WINDOW))
        .start()
        .await
        .unwrap();
    (running, clock)
}

fn socket_client() -> Arc<dyn HttpClient> {
    Arc::new(ReqwestClient::new().unwrap())
}

fn context(running: &RunningSandbox, client: Arc<dyn HttpClient>) -> CallContext {
    CallContext::new(client, running.clock().clone(), "alice")
}

fn refresh_of(set: &StoredTokenSet) -> RefreshToken {
    set.refresh_token
        .clone()
        .expect("the issuer always issues one")
}

fn get(running: &RunningSandbox, path: &str, token: Option<&str>) -> http::Request<Vec<u8>> {
    let mut request = http::Request::builder()
        .method(Method::GET)
        .uri(running.url(path).as_str());
    if let Some(token) = token {
        request = request.header(http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request.body(Vec::new()).unwrap()
}

/// A form POST of `body` to the token endpoint.
fn post_token(running: &RunningSandbox, body: impl Into<Vec<u8>>) -> http::Request<Vec<u8>> {
    http::Request::builder()
        .method(Method::POST)
        .uri(running.url("/token").as_str())
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body.into())
        .unwrap()
}

fn json(response: &http::Response<Vec<u8>>) -> serde_json::Value {
    serde_json::from_slice(response.body()).unwrap_or_default()
}

/// Both transports: the real socket and the in-process client.
fn transports(running: &RunningSandbox) -> [(&'static str, Arc<dyn HttpClient>); 2] {
    [
        ("socket", socket_client()),
        ("in-process", running.client()),
    ]
}

#[tokio::test]
async fn refresh_round_trip_over_the_socket_counts_calls() {
    let (running, _clock) = sandbox().await;
    assert_eq!(running.addr().ip(), std::net::Ipv4Addr::LOCALHOST);
    let first = running.issue("alice").await.unwrap();
    let cx = context(&running, socket_client());

    let second = cx
        .call(
            &running.base_url(),
            &RefreshTokenGrant::new(refresh_of(&first)),
        )
        .await
        .unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.token_type.as_deref(), Some("Bearer"));
    assert_eq!(
        second.access_expires_at,
        Some(datetime!(2026-01-01 01:00 UTC))
    );
    assert_eq!(
        second.refresh_expires_at,
        Some(datetime!(2026-01-31 00:00 UTC))
    );
    let grant = running
        .issuer()
        .authenticate(second.access_token.expose_secret())
        .await
        .unwrap();
    assert_eq!(grant.subject, "alice");
    assert_eq!(running.calls("/token"), 1);
    assert_eq!(running.calls("/other"), 0);
    assert_eq!(running.total_calls(), 1);

    // The rotated refresh token is the one that works next.
    let third = cx
        .call(
            &running.base_url(),
            &RefreshTokenGrant::new(refresh_of(&second.to_stored().unwrap())),
        )
        .await
        .unwrap();
    assert_ne!(third.access_token, second.access_token);
    assert_eq!(running.calls("/token"), 2);
    running.reset_calls();
    assert_eq!((running.calls("/token"), running.total_calls()), (0, 0));
}

#[tokio::test]
async fn client_credentials_issue_for_the_client_id() {
    let (running, _clock) = sandbox().await;
    for (name, client) in transports(&running) {
        let cx = context(&running, client);
        let grant = ClientCredentialsGrant::new("app-1", Some("secret".into()));
        let set = cx.call(&running.base_url(), &grant).await.unwrap();
        let subject = running
            .issuer()
            .authenticate(set.access_token.expose_secret())
            .await
            .unwrap()
            .subject;
        assert_eq!(subject, "app-1", "{name}");
    }
}

#[tokio::test]
async fn token_endpoint_errors_follow_rfc_6749() {
    let (running, _clock) = sandbox().await;
    for (name, client) in transports(&running) {
        let cx = context(&running, client.clone());
        let error = cx
            .call(
                &running.base_url(),
                &RefreshTokenGrant::new("rt_unknown".into()),
            )
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ReauthRequired, "{name}: {error}");
        assert_eq!(error.provider_code(), Some("invalid_grant"), "{name}");

        for (body, status, code) in [
            (
                "grant_type=password&username=a",
                400,
                "unsupported_grant_type",
            ),
            ("refresh_token=rt_1", 400, "invalid_request"),
            ("grant_type=refresh_token", 400, "invalid_request"),
            // RFC 6749 section 3.1: no parameter more than once.
            (
                "grant_type=refresh_token&refresh_token=rt_1&refresh_token=rt_2",
                400,
                "invalid_request",
            ),
            (
                "grant_type=refresh_token&refresh_token=rt_1&refresh_token=",
                400,
                "invalid_request",
            ),
            ("grant_type=client_credentials", 401, "invalid_client"),
        ] {
            let response = client.send(post_token(&running, body)).await.unwrap();
            assert_eq!(response.status(), status, "{name}: {body}");
            assert_eq!(json(&response)["error"], code, "{name}: {body}");
        }

        let response = client.send(get(&running, "/token", None)).await.unwrap();
        assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED, "{name}");
        assert_eq!(response.headers()[http::header::ALLOW], "POST");
        let response = client.send(get(&running, "/nowhere", None)).await.unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{name}");
    }
}

/// RFC 6749 section 6: a pair the token endpoint issued to a client (an authorization code's)
/// is refreshed by that client only. Another client, or none, gets exactly the answer an
/// unknown refresh token gets, and the pair is not rotated. A `client_credentials` answer
/// carries no refresh token at all (section 4.4.3).
#[tokio::test]
async fn a_refresh_token_is_refused_to_another_client() {
    let (running, _clock) = sandbox().await;
    let client = running.client();
    let post = |body: String| post_token(&running, body);
    let refresh = |token: &str, client: &str| {
        post(format!(
            "grant_type=refresh_token&refresh_token={token}{client}"
        ))
    };
    let authorize = get(
        &running,
        "/authorize?response_type=code&client_id=app-1&login_hint=alice",
        None,
    );
    let code = json(&client.send(authorize).await.unwrap())["code"]
        .as_str()
        .unwrap()
        .to_owned();
    let exchange = post(format!(
        "grant_type=authorization_code&code={code}&client_id=app-1"
    ));
    let by_code = json(&client.send(exchange).await.unwrap());
    let credentials = post("grant_type=client_credentials&client_id=app-1&client_secret=s".into());
    let by_credentials = json(&client.send(credentials).await.unwrap());
    assert!(
        by_credentials["access_token"].is_string(),
        "{by_credentials}"
    );
    assert!(
        by_credentials.get("refresh_token").is_none(),
        "{by_credentials}"
    );

    let unknown = client
        .send(refresh("rt_unknown", "&client_id=app-2"))
        .await
        .unwrap();
    assert_eq!(unknown.status(), StatusCode::BAD_REQUEST);
    assert_eq!(json(&unknown)["error"], "invalid_grant");
    let issued = by_code;
    let token = issued["refresh_token"].as_str().unwrap();
    for other in ["&client_id=app-2", "&client_id=app-2&client_secret=s", ""] {
        let answer = client.send(refresh(token, other)).await.unwrap();
        assert_eq!(answer.status(), unknown.status(), "{other}");
        assert_eq!(answer.body(), unknown.body(), "{other}");
    }
    let access = issued["access_token"].as_str().unwrap();
    running.issuer().authenticate(access).await.unwrap();
    let answer = client
        .send(refresh(token, "&client_id=app-1"))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
    assert!(running.issuer().authenticate(access).await.is_err());
    // A pair issued without a client is refreshed by any.
    let unbound = running.issue("bob").await.unwrap();
    let token = refresh_of(&unbound);
    let answer = client
        .send(refresh(token.expose_secret(), "&client_id=app-2"))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}

/// `Authorization` twice (two clients, or a bearer token and a client) is no choice between
/// them: the token endpoint refuses it as a malformed request, the API as unauthorized.
#[tokio::test]
async fn a_repeated_authorization_header_is_refused() {
    let (running, _clock) = sandbox().await;
    let set = running.issue("alice").await.unwrap();
    let basic = |user: &str| {
        use base64::Engine as _;
        let credentials =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:secret"));
        format!("Basic {credentials}")
    };
    for (name, client) in transports(&running) {
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(running.url("/token").as_str())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::AUTHORIZATION, basic("client-a"))
            .header("authorization", basic("client-b"))
            .body(b"grant_type=client_credentials".to_vec())
            .unwrap();
        let response = client.send(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{name}");
        assert_eq!(json(&response)["error"], "invalid_request", "{name}");

        let mut request = get(&running, "/api/me", Some(set.access_token.expose_secret()));
        request.headers_mut().append(
            http::header::AUTHORIZATION,
            http::HeaderValue::from_static("Bearer at_other"),
        );
        let response = client.send(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
    }
}

#[tokio::test]
async fn an_expired_refresh_token_is_invalid_grant() {
    let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
    let running = Sandbox::builder()
        .clock(Arc::new(clock.clone()))
        .issuer_config(IssuerConfig::default().with_refresh_ttl(Some(Duration::from_secs(60))))
        .start()
        .await
        .unwrap();
    let first = running.issue("alice").await.unwrap();
    clock.advance(time::Duration::seconds(61));
    let error = context(&running, socket_client())
        .call(
            &running.base_url(),
            &RefreshTokenGrant::new(refresh_of(&first)),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("expired"), "{shown}");
    assert!(
        !shown.contains(refresh_of(&first).expose_secret()),
        "{shown}"
    );
}

#[tokio::test]
async fn fail_next_answers_503_with_retry_after_without_calling_the_handler() {
    let (running, _clock) = sandbox().await;
    for (name, client) in transports(&running) {
        let first = running.issue("alice").await.unwrap();
        running.fail_next(
            "/token",
            2,
            Failure::service_unavailable().with_retry_after(2),
        );
        let request = RefreshTokenGrant::new(refresh_of(&first));
        for _ in 0..2 {
            let response = client
                .send(request.encode_request(&running.base_url()).unwrap())
                .await
                .unwrap();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE, "{name}");
            let error = decode_response::<RefreshTokenGrant>(&response, running.clock().now(), &[])
                .unwrap_err();
            let EndpointError::Provider(error) = error else {
                panic!("{name}: expected a provider error, got {error:?}");
            };
            assert_eq!(error.kind, ErrorKind::Transient, "{name}");
            assert_eq!(error.retry_after, Some(Duration::from_secs(2)), "{name}");
        }
        assert!(!running.faults_pending("/token"));
        // The handler never ran: nothing rotated, the first pair is still live.
        assert!(
            running
                .issuer()
                .authenticate(first.access_token.expose_secret())
                .await
                .is_ok(),
            "{name}"
        );
        let set = context(&running, client)
            .call(&running.base_url(), &request)
            .await
            .unwrap();
        assert_ne!(set.access_token, first.access_token, "{name}");
    }
    assert_eq!(running.calls("/token"), 6);
}

#[tokio::test]
async fn a_dropped_answer_after_rotation_is_outcome_unknown_and_recoverable_in_the_window() {
    let (running, _clock) = sandbox().await;
    for (name, client) in transports(&running) {
        running.reset_calls();
        let first = running.issue("alice").await.unwrap();
        let cx = context(&running, client);
        let grant = RefreshTokenGrant::new(refresh_of(&first));
        running.drop_next("/token", 1);

        let error = cx.call(&running.base_url(), &grant).await.unwrap_err();
        let Error::Transport(transport) = &error else {
            panic!("{name}: expected a transport error, got {error:?}");
        };
        assert_eq!(transport.kind, ErrorKind::OutcomeUnknown, "{name}: {error}");

        // The issuer did rotate: the old access token is dead...
        assert!(
            running
                .issuer()
                .authenticate(first.access_token.expose_secret())
                .await
                .is_err(),
            "{name}"
        );
        // ...and, within the window, the old refresh token answers the same pair each time.
        let again = cx.call(&running.base_url(), &grant).await.unwrap();
        let and_again = cx.call(&running.base_url(), &grant).await.unwrap();
        assert_eq!(again.access_token, and_again.access_token, "{name}");
        assert_eq!(again.refresh_token, and_again.refresh_token, "{name}");
        assert!(
            running
                .issuer()
                .authenticate(again.access_token.expose_secret())
                .await
                .is_ok(),
            "{name}"
        );
        assert_eq!(running.calls("/token"), 3, "{name}");
    }
}

#[tokio::test]
async fn a_delay_longer_than_the_client_timeout_is_outcome_unknown() {
    let (running, _clock) = sandbox().await;
    let first = running.issue("alice").await.unwrap();
    let client: Arc<dyn HttpClient> =
        Arc::new(ReqwestClient::with_timeout(Some(Duration::from_millis(200))).unwrap());
    running.delay_next("/token", 1, Duration::from_secs(30));
    let error = context(&running, client.clone())
        .call(
            &running.base_url(),
            &RefreshTokenGrant::new(refresh_of(&first)),
        )
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown, "{error}");
    assert_eq!(running.calls("/token"), 1);

    // The delay was consumed: the next call answers at once (on a fresh pair).
    let second = running.issue("alice").await.unwrap();
    let set = context(&running, client)
        .call(
            &running.base_url(),
            &RefreshTokenGrant::new(refresh_of(&second)),
        )
        .await
        .unwrap();
    assert_ne!(set.access_token, second.access_token);
    running.shutdown().await;
}

#[tokio::test]
async fn api_routes_accept_valid_bearer_tokens_only() {
    let (running, clock) = sandbox().await;
    for (name, client) in transports(&running) {
        let set = running.issue("alice").await.unwrap();
        let token = set.access_token.expose_secret();

        let response = client
            .send(get(&running, "/api/profile", Some(token)))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{name}");
        let body = json(&response);
        assert_eq!(body["ok"], true);
        assert_eq!(body["subject"], "alice");
        assert_eq!(body["path"], "/api/profile");

        let mut post = get(&running, "/api/payments/1", Some(token));
        *post.method_mut() = Method::POST;
        assert_eq!(
            client.send(post).await.unwrap().status(),
            StatusCode::OK,
            "{name}"
        );

        let response = client
            .send(get(&running, "/api/profile", None))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        let challenge = response.headers()[http::header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(challenge.starts_with("Bearer"), "{challenge}");

        let response = client
            .send(get(&running, "/api/profile", Some("at_forged")))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{name}");
        let challenge = response.headers()[http::header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap();
        assert!(
            challenge.contains(r#"error="invalid_token""#),
            "{challenge}"
        );

        clock.advance(time::Duration::hours(1));
        let response = client
            .send(get(&running, "/api/profile", Some(token)))
            .await
            .unwrap();
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "{name}: expired"
        );
        assert!(!String::from_utf8_lossy(response.body()).contains(token));
    }
    assert_eq!(running.calls("/api/profile"), 8);
    assert_eq!(running.calls("/api/payments/1"), 2);
}

#[tokio::test]
async fn registered_routes_win_and_built_in_routes_can_be_turned_off() {
    let running = Sandbox::builder()
        .api_routes(false)
        .route(
            Method::POST,
            "/token",
            |_request: http::Request<Vec<u8>>, _cx: SandboxContext| async {
                json_response(
                    StatusCode::IM_A_TEAPOT,
                    &serde_json::json!({"teapot": true}),
                )
            },
        )
        .route_any(
            "/v1/*",
            |request: http::Request<Vec<u8>>, cx: SandboxContext| async move {
                let issued = cx
                    .issuer()
                    .issue("from-handler", serde_json::json!({}))
                    .await;
                json_response(
                    StatusCode::OK,
                    &serde_json::json!({"path": request.uri().path(), "issued": issued.is_ok()}),
                )
            },
        )
        .start()
        .await
        .unwrap();
    for (name, client) in transports(&running) {
        let mut post = get(&running, "/token", None);
        *post.method_mut() = Method::POST;
        assert_eq!(
            client.send(post).await.unwrap().status(),
            StatusCode::IM_A_TEAPOT,
            "{name}"
        );
        let response = client
            .send(get(&running, "/v1/auth/token?x=1", None))
            .await
            .unwrap();
        assert_eq!(json(&response)["path"], "/v1/auth/token", "{name}");
        assert_eq!(json(&response)["issued"], true, "{name}");
        let response = client
            .send(get(&running, "/api/profile", None))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "{name}");
    }
    assert_eq!(running.calls("/v1/auth/token"), 2);
}

#[tokio::test]
async fn oversized_bodies_are_answered_413_without_the_handler() {
    let running = Sandbox::builder().max_body(1024).start().await.unwrap();
    for (name, client) in transports(&running) {
        let request = http::Request::builder()
            .method(Method::POST)
            .uri(running.url("/token").as_str())
            .body(vec![b'a'; 4096])
            .unwrap();
        let response = client.send(request).await.unwrap();
        assert_eq!(response.status(), StatusCode::PAYLOAD_TOO_LARGE, "{name}");
    }
    assert_eq!(running.calls("/token"), 2);
}

#[tokio::test]
async fn shutdown_stops_both_transports() {
    let (running, _clock) = sandbox().await;
    let in_process = running.client();
    let url = running.url("/api/x");
    running.shutdown().await;
    let request = || {
        http::Request::builder()
            .uri(url.as_str())
            .body(Vec::new())
            .unwrap()
    };
    let error = socket_client().send(request()).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Transient, "{error}");
    let error = in_process.send(request()).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Transient, "{error}");
}

#[tokio::test(start_paused = true)]
async fn the_in_process_client_runs_faults_on_the_paused_clock() {
    let clock = crate::clock::TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC));
    let running = Sandbox::builder()
        .clock(Arc::new(clock))
        .issuer_config(IssuerConfig::default().with_reuse_window(WINDOW))
        .start()
        .await
        .unwrap();
    let first = running.issue("alice").await.unwrap();
    let cx = context(&running, running.client());
    let grant = RefreshTokenGrant::new(refresh_of(&first));

    running.delay_next("/token", 1, Duration::from_secs(45));
    running.fail_next("/token", 1, Failure::new(StatusCode::BAD_GATEWAY));
    let started = tokio::time::Instant::now();
    let error = cx.call(&running.base_url(), &grant).await.unwrap_err();
    assert_eq!(
        started.elapsed(),
        Duration::from_secs(45),
        "a virtual delay"
    );
    assert_eq!(error.kind(), ErrorKind::Transient);

    // A timeout shorter than the delay gives up while the handler has not run yet.
    running.delay_next("/token", 1, Duration::from_secs(60));
    let timed_out =
        tokio::time::timeout(Duration::from_secs(5), cx.call(&running.base_url(), &grant)).await;
    assert!(timed_out.is_err());

    let set = cx.call(&running.base_url(), &grant).await.unwrap();
    // The answer's expiry is relative to the sandbox clock, which moved 50 s.
    assert_eq!(
        set.access_expires_at,
        Some(datetime!(2026-01-01 01:00:50 UTC))
    );
    assert_eq!(running.calls("/token"), 3);
}

#[tokio::test]
async fn the_in_process_client_accepts_origin_form_and_absolute_uris() {
    let (running, _clock) = sandbox().await;
    let set = running.issue("alice").await.unwrap();
    let client = running.client();
    for uri in ["/api/me?x=1", "http://provider.example/api/me?x=1"] {
        let request = http::Request::builder()
            .uri(uri)
            .header(
                http::header::AUTHORIZATION,
                format!("Bearer {}", set.access_token.expose_secret()),
            )
            .body(Vec::new())
            .unwrap();
        let response = client.send(request).await.unwrap();
        assert_eq!(json(&response)["path"], "/api/me", "{uri}");
    }
    assert_eq!(running.calls("/api/me"), 2);
}

#[test]
fn the_token_answer_is_what_the_client_codec_expects() {
    assert_eq!(
        <RefreshTokenGrant as Endpoint>::PATH,
        crate::oauth::TOKEN_PATH
    );
    let answer = OAuthTokens::decode_body(
        br#"{"access_token":"a","token_type":"Bearer","expires_in":3600,"refresh_token":"r"}"#,
    );
    assert!(answer.is_ok());
}

/// Writes `bytes` to `stream` (small enough for one write on loopback).
async fn write_all(stream: &tokio::net::TcpStream, bytes: &[u8]) {
    stream.writable().await.unwrap();
    assert_eq!(stream.try_write(bytes).unwrap(), bytes.len());
}

/// Reads until the server closes the connection, or `None` if it is still open after an
/// hour (of tokio's clock, paused in these tests).
async fn read_until_closed(stream: &tokio::net::TcpStream) -> Option<Vec<u8>> {
    let read = async {
        let mut answer = Vec::new();
        let mut buf = [0; 4096];
        for _ in 0..10_000 {
            stream.readable().await.unwrap();
            match stream.try_read(&mut buf) {
                Ok(0) => return answer,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
                // A reset is a close too.
                Err(_) => return answer,
            }
        }
        panic!("the server kept writing");
    };
    tokio::time::timeout(Duration::from_secs(3600), read)
        .await
        .ok()
}

/// Sends `request` to a sandbox whose read timeout is `timeout` (the default if `None`),
/// and reads its answer until the sandbox closes the connection, which it must do within
/// the timeout of the request's first byte. The sandbox and the answer.
async fn closed_within_the_read_timeout(
    timeout: Option<Duration>,
    request: &[u8],
) -> (RunningSandbox, Vec<u8>) {
    let builder = Sandbox::builder();
    let builder = match timeout {
        Some(timeout) => builder.read_timeout(timeout),
        None => builder,
    };
    let running = builder.start().await.unwrap();
    let stream = tokio::net::TcpStream::connect(running.addr())
        .await
        .unwrap();
    let started = tokio::time::Instant::now();
    write_all(&stream, request).await;
    let answer = read_until_closed(&stream)
        .await
        .expect("the connection is held open for ever");
    assert!(
        started.elapsed() <= timeout.unwrap_or(DEFAULT_READ_TIMEOUT),
        "{:?}",
        started.elapsed()
    );
    (running, answer)
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_never_ends_its_headers_is_closed_after_the_read_timeout() {
    let (running, _) =
        closed_within_the_read_timeout(None, b"POST /token HTTP/1.1\r\nHost: sandbox\r\nX-Slow: ")
            .await;
    assert_eq!(running.total_calls(), 0, "no handler ran");
}

#[test]
fn a_read_timeout_of_zero_is_the_shortest_one_not_a_sandbox_that_closes_every_connection() {
    let timeout = |asked| Sandbox::builder().read_timeout(asked).read_timeout;
    assert_eq!(timeout(Duration::ZERO), Duration::from_millis(1));
    assert_eq!(timeout(Duration::from_secs(5)), Duration::from_secs(5));
    assert_eq!(timeout(Duration::MAX), MAX_READ_TIMEOUT);
}

#[tokio::test(start_paused = true)]
async fn a_body_that_never_ends_is_answered_408_after_the_read_timeout() {
    let (running, answer) = closed_within_the_read_timeout(
        Some(Duration::from_secs(5)),
        b"POST /token HTTP/1.1\r\nHost: sandbox\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: 1000\r\n\r\ngrant_type=",
    )
    .await;
    assert!(
        answer.starts_with(b"HTTP/1.1 408"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    // Counted as a call to its path, like a body too large; its handler never ran.
    assert_eq!(running.calls("/token"), 1);
}

#[tokio::test(start_paused = true)]
async fn an_idle_keep_alive_connection_is_closed_after_the_read_timeout() {
    let (running, answer) = closed_within_the_read_timeout(
        Some(Duration::from_secs(5)),
        b"GET /api/me HTTP/1.1\r\nHost: sandbox\r\n\r\n",
    )
    .await;
    assert!(
        answer.starts_with(b"HTTP/1.1 401"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(running.calls("/api/me"), 1);
}

#[tokio::test(start_paused = true)]
async fn connections_beyond_the_limit_wait_until_one_closes() {
    let running = Sandbox::builder().max_connections(2).start().await.unwrap();
    let connect = || tokio::net::TcpStream::connect(running.addr());
    // Two clients that say nothing hold the two connections served.
    let (first, _second) = (connect().await.unwrap(), connect().await.unwrap());
    let third = connect().await.unwrap();
    write_all(
        &third,
        b"GET /api/me HTTP/1.1\r\nHost: sandbox\r\nConnection: close\r\n\r\n",
    )
    .await;

    let early = tokio::time::timeout(Duration::from_secs(1), third.readable()).await;
    assert!(
        early.is_err(),
        "a third connection is served beside two others"
    );
    assert_eq!(running.total_calls(), 0);

    drop(first);
    let answer = read_until_closed(&third)
        .await
        .expect("the third connection is served once one closes");
    assert!(
        answer.starts_with(b"HTTP/1.1 401"),
        "{}",
        String::from_utf8_lossy(&answer)
    );
    assert_eq!(running.calls("/api/me"), 1);
}

#[tokio::test]
async fn the_call_counters_keep_a_bounded_number_of_paths() {
    let running = Sandbox::builder().start().await.unwrap();
    let client = running.client();
    let limit = u64::try_from(MAX_COUNTED_PATHS).unwrap();
    for i in 0..=limit {
        let response = client
            .send(get(&running, &format!("/nowhere/{i}"), None))
            .await
            .unwrap();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
    }
    assert_eq!(running.calls("/nowhere/0"), 1);
    assert_eq!(
        running.calls(&format!("/nowhere/{limit}")),
        0,
        "one path more than the counters keep"
    );
    assert_eq!(
        running.total_calls(),
        limit + 1,
        "every call is in the total"
    );
    // A path counted before keeps counting.
    client
        .send(get(&running, "/nowhere/0", None))
        .await
        .unwrap();
    assert_eq!(running.calls("/nowhere/0"), 2);
}

/// A client that sends requests and never reads the answers blocks the server's writes: the
/// connection is closed once they have made no progress for the read timeout.
#[tokio::test(start_paused = true)]
async fn a_client_that_never_reads_its_answers_is_dropped() {
    let running = Sandbox::builder()
        .read_timeout(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let stream = tokio::net::TcpStream::connect(running.addr())
        .await
        .unwrap();
    let request = b"GET /api/me HTTP/1.1\r\nHost: sandbox\r\n\r\n".repeat(1000);
    // Pipelined requests until the server stops taking them: its answers fill the buffers.
    let mut full = false;
    for _ in 0..100_000 {
        match tokio::time::timeout(Duration::from_secs(1), stream.writable()).await {
            Err(_) => {
                full = true;
                break;
            }
            Ok(ready) => ready.unwrap(),
        }
        match stream.try_write(&request) {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(e) => panic!("the server closed while still reading: {e}"),
        }
    }
    assert!(full, "the server kept taking requests");
    let stalled_at = running.total_calls();

    tokio::time::sleep(Duration::from_secs(3600)).await;
    // Closed: the next writes meet a reset. Still held: they wait (or are buffered).
    let mut closed = false;
    for _ in 0..3 {
        match stream.try_write(b"GET /api/me HTTP/1.1\r\n\r\n") {
            Ok(_) => tokio::task::yield_now().await,
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
            Err(_) => {
                closed = true;
                break;
            }
        }
    }
    assert!(
        closed,
        "the connection is held for ever ({stalled_at} calls served)"
    );
}

/// Stopping the sandbox ends an in-process call in flight (waiting on a delay) as a dropped
/// connection would, and its handler never runs afterwards: the refresh token it carried is
/// still unused, and the caller is not answered 200 after `shutdown` returned.
#[tokio::test(start_paused = true)]
async fn stopping_ends_in_process_calls_in_flight_and_runs_no_handler_after() {
    let (running, _clock) = sandbox().await;
    let first = running.issue("alice").await.unwrap();
    running.delay_next("/token", 1, Duration::from_secs(60));
    let cx = context(&running, running.client());
    let (base, grant) = (
        running.base_url(),
        RefreshTokenGrant::new(refresh_of(&first)),
    );
    let call = tokio::spawn(async move { cx.call(&base, &grant).await });
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(running.calls("/token"), 1, "the call waits on its delay");
    let issuer = running.issuer().clone();
    running.shutdown().await;
    let error = call.await.unwrap().unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown, "{error}");
    let unused = issuer.refresh(refresh_of(&first).expose_secret()).await;
    assert!(unused.is_ok(), "the handler ran after the stop: {unused:?}");
}

/// A pair whose extras do not fit the endpoint's answer (a test's `issue_with` given a
/// string, or a number where the provider's extras hold text) is rotated by its refresh
/// before the answer is built: the answer must carry the new pair, not a 500 after which
/// the old refresh token is used up and the session lost.
#[tokio::test]
async fn a_pair_whose_extras_do_not_fit_the_answer_is_refreshed_not_lost() {
    let (running, _clock) = sandbox().await;
    let client = running.client();
    let first = running
        .issue_with("alice", serde_json::json!("not an object"))
        .await
        .unwrap();
    let body = format!(
        "grant_type=refresh_token&refresh_token={}",
        refresh_of(&first).expose_secret()
    );
    let answer = client
        .send(post_token(&running, body.clone()))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK, "{}", json(&answer));
    let access = json(&answer)["access_token"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    running.issuer().authenticate(&access).await.unwrap();
    // Asked again within the window: the same pair.
    let again = client.send(post_token(&running, body)).await.unwrap();
    assert_eq!(json(&again)["access_token"].as_str(), Some(access.as_str()));
}

/// A `client_credentials` answer carries no refresh token (RFC 6749 section 4.4.3), so its
/// pair is of no use once its access token has expired: a purge then forgets it. It was kept
/// until the refresh token nobody holds expired (30 days by default), and a client asking
/// for a token per call grew the store by a record per call for all that time.
#[tokio::test]
async fn a_client_credentials_pair_is_forgotten_once_its_access_token_expired() {
    let (running, clock) = sandbox().await;
    let cx = context(&running, running.client());
    let grant = ClientCredentialsGrant::new("app-1", Some("secret".into()));
    let mut issued = Vec::new();
    for _ in 0..3 {
        let set = cx.call(&running.base_url(), &grant).await.unwrap();
        assert_eq!(set.refresh_token, None);
        issued.push(set);
    }
    let access_ttl = time::Duration::try_from(running.issuer().config().access_ttl).unwrap();
    let grace = time::Duration::try_from(crate::issuer::PURGE_GRACE).unwrap();
    clock.advance(access_ttl - time::Duration::seconds(1));
    for set in &issued {
        running
            .issuer()
            .authenticate(set.access_token.expose_secret())
            .await
            .unwrap();
    }
    assert_eq!(running.issuer().purge().await.unwrap(), 0);
    clock.advance(time::Duration::seconds(1) + grace);
    assert_eq!(running.issuer().purge().await.unwrap(), 3);
}
