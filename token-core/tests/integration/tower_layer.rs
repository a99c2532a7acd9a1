//! `tower::BearerLayer` in front of a hyper-util client talking to a loopback API, and in
//! front of a plain tower service: the bearer header, one refresh and one resend after a
//! 401, `RefreshOnly`, `NoResend`, per-request sessions, and no token in errors.

use std::convert::Infallible;
use std::future::Future;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use http::StatusCode;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioIo};
use token_core::clock::{Clock, ManualClock};
use token_core::middleware::{NoResend, Session};
use token_core::tower::{BearerError, BearerLayer, RefreshOnly};
use token_core::{
    async_trait, error::Error, manager::TokenManager, provider::CallContext, provider::Provider,
    secret::AccessToken, secret::RefreshToken, store::MemoryStore, token_set::NoExtras,
    token_set::TokenSet,
};
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

/// Issues `at-1`, `at-2`, ... and tells the API which token it accepts.
struct Issuing {
    refreshes: AtomicU32,
    accepted: Arc<Mutex<String>>,
}

#[async_trait]
impl Provider for Issuing {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "issuing"
    }

    async fn refresh(&self, cx: &CallContext, _: &TokenSet) -> Result<TokenSet, Error> {
        let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
        let token = format!("at-{n}");
        *self.accepted.lock().unwrap() = token.clone();
        Ok(TokenSet::new(AccessToken::new(token))
            .with_refresh_token(RefreshToken::new(format!("rt-{n}")))
            .with_access_expires_at(cx.now() + time::Duration::hours(1)))
    }
}

struct Harness {
    manager: TokenManager<Issuing>,
    accepted: Arc<Mutex<String>>,
    clock: ManualClock,
}

impl Harness {
    async fn new() -> Self {
        let accepted = Arc::new(Mutex::new("at-0".to_owned()));
        let provider = Issuing {
            refreshes: AtomicU32::new(0),
            accepted: accepted.clone(),
        };
        let clock = ManualClock::new(time::OffsetDateTime::now_utc());
        let manager = TokenManager::builder(provider)
            .store(MemoryStore::new())
            .clock(Arc::new(clock.clone()))
            .build()
            .unwrap();
        let fresh = TokenSet::new(AccessToken::new("at-0"))
            .with_refresh_token(RefreshToken::new("rt-0"))
            .with_access_expires_at(clock.now() + time::Duration::hours(1));
        manager.insert("s", fresh).await.unwrap();
        Self {
            manager,
            accepted,
            clock,
        }
    }

    fn refreshes(&self) -> u32 {
        self.manager.provider().refreshes.load(Ordering::SeqCst)
    }

    /// The API refuses the current token from now on (it was revoked).
    fn revoke(&self) {
        *self.accepted.lock().unwrap() = "revoked".to_owned();
    }

    /// [`api`](Self::api) behind a `BearerLayer` for session `s`, and its call counter.
    fn client(
        &self,
    ) -> (
        Arc<AtomicU32>,
        impl Service<
            http::Request<String>,
            Response = http::Response<String>,
            Error = BearerError<Infallible>,
        >,
    ) {
        let calls = Arc::new(AtomicU32::new(0));
        let client = ServiceBuilder::new()
            .layer(BearerLayer::new(self.manager.clone(), "s"))
            .service(self.api(calls.clone()));
        (calls, client)
    }

    /// An API answering 200 with the body it was sent for the accepted token, else 401;
    /// `calls` counts its requests.
    fn api(
        &self,
        calls: Arc<AtomicU32>,
    ) -> impl Service<
        http::Request<String>,
        Response = http::Response<String>,
        Error = Infallible,
        Future = impl Future<Output = Result<http::Response<String>, Infallible>> + Send,
    > + Clone
    + Send
    + 'static {
        let accepted = self.accepted.clone();
        service_fn(move |request: http::Request<String>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let expected = format!("Bearer {}", accepted.lock().unwrap());
            let ok = request.headers().get("authorization").map(|v| v.as_bytes())
                == Some(expected.as_bytes());
            let status = if ok {
                StatusCode::OK
            } else {
                StatusCode::UNAUTHORIZED
            };
            let mut response = http::Response::new(request.into_body());
            *response.status_mut() = status;
            async move { Ok::<_, Infallible>(response) }
        })
    }
}

async fn send<S, B>(client: &mut S, request: http::Request<B>) -> Result<S::Response, S::Error>
where
    S: Service<http::Request<B>>,
{
    client.ready().await?.call(request).await
}

fn post(body: &str) -> http::Request<String> {
    http::Request::post("http://api.test/pay")
        .body(body.to_owned())
        .unwrap()
}

#[tokio::test]
async fn adds_the_bearer_token_as_a_sensitive_header() {
    let h = Harness::new().await;
    let seen = Arc::new(Mutex::new(None));
    let record = seen.clone();
    let api = service_fn(move |request: http::Request<String>| {
        *record.lock().unwrap() = request.headers().get("authorization").cloned();
        async { Ok::<_, Infallible>(http::Response::new(String::new())) }
    });
    let mut client = ServiceBuilder::new()
        .layer(BearerLayer::new(h.manager.clone(), "s"))
        .service(api);
    send(&mut client, post("")).await.unwrap();
    let header = seen
        .lock()
        .unwrap()
        .clone()
        .expect("an Authorization header");
    assert_eq!(header, "Bearer at-0");
    assert!(header.is_sensitive());
    assert!(!format!("{header:?}").contains("at-0"));
    assert_eq!(h.refreshes(), 0);
}

#[tokio::test]
async fn a_401_refreshes_once_and_resends_once_with_the_same_body() {
    let h = Harness::new().await;
    let (calls, mut client) = h.client();
    h.revoke();
    let response = send(&mut client, post("amount=5")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.body(), "amount=5");
    assert_eq!(
        calls.load(Ordering::SeqCst),
        2,
        "the first send and one resend"
    );
    assert_eq!(h.refreshes(), 1);
}

/// The resend is the same request: its extensions (a trace context, a per-request
/// deadline the inner service reads) go with it, not the session alone.
#[tokio::test]
async fn the_resend_after_a_401_keeps_the_requests_extensions() {
    #[derive(Clone, Debug, PartialEq)]
    struct TraceId(u64);
    let h = Harness::new().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let mut api = h.api(Arc::new(AtomicU32::new(0)));
    let api = service_fn(move |request: http::Request<String>| {
        record
            .lock()
            .unwrap()
            .push(request.extensions().get::<TraceId>().cloned());
        api.call(request)
    });
    let mut client = ServiceBuilder::new()
        .layer(BearerLayer::new(h.manager.clone(), "s"))
        .service(api);
    h.revoke();
    let mut request = post("amount=5");
    request.extensions_mut().insert(TraceId(7));
    let response = send(&mut client, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(*seen.lock().unwrap(), [Some(TraceId(7)), Some(TraceId(7))]);
}

#[tokio::test]
async fn a_401_for_a_token_obtained_after_a_401_stands() {
    let h = Harness::new().await;
    let calls = Arc::new(AtomicU32::new(0));
    let refusing = service_fn({
        let calls = calls.clone();
        move |_: http::Request<String>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let mut response = http::Response::new(String::new());
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            async { Ok::<_, Infallible>(response) }
        }
    });
    let mut client = ServiceBuilder::new()
        .layer(BearerLayer::new(h.manager.clone(), "s"))
        .service(refusing);
    for _ in 0..2 {
        let response = send(&mut client, post("")).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    }
    // First call: send, refresh, resend. Second: the new token is refused again, and the
    // manager does not refresh a token it obtained for a 401 a second time.
    assert_eq!(h.refreshes(), 1);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}

/// A token obtained after a 401, accepted for a while and then refused (revoked), is
/// refreshed and the request resent, once the failure cooldown has passed since it was
/// obtained (less than a second more: the instant is kept in whole seconds, rounded up):
/// not an hour of 401s until it expires.
#[tokio::test]
async fn a_token_obtained_after_a_401_and_refused_much_later_is_refreshed() {
    let h = Harness::new().await;
    let (_, mut client) = h.client();
    h.revoke();
    let first = send(&mut client, post("a")).await.unwrap();
    assert_eq!(first.status(), StatusCode::OK);
    for _ in 0..5 {
        let accepted = send(&mut client, post("b")).await.unwrap();
        assert_eq!(accepted.status(), StatusCode::OK);
    }
    // The cooldown, counted from the next whole second after the token came.
    let cooldown = token_core::manager::ManagerConfig::default().failure_cooldown;
    h.clock
        .advance(time::Duration::try_from(cooldown).unwrap() + time::Duration::SECOND);
    h.revoke();
    let status = send(&mut client, post("c")).await.unwrap().status();
    assert_eq!((status, h.refreshes()), (StatusCode::OK, 2));
}

#[tokio::test]
async fn refresh_only_returns_the_401_and_the_next_request_has_the_new_token() {
    let h = Harness::new().await;
    let calls = Arc::new(AtomicU32::new(0));
    let mut client = ServiceBuilder::new()
        .layer(BearerLayer::new(h.manager.clone(), "s").resend(RefreshOnly))
        .service(h.api(calls.clone()));
    h.revoke();
    let first = send(&mut client, post("")).await.unwrap();
    assert_eq!(first.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(h.refreshes(), 1, "refreshed for the next request");
    let second = send(&mut client, post("")).await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn no_resend_is_honoured() {
    let h = Harness::new().await;
    let calls = Arc::new(AtomicU32::new(0));
    let mut client = ServiceBuilder::new()
        .layer(BearerLayer::new(h.manager.clone(), "s"))
        .service(h.api(calls.clone()));
    h.revoke();
    let mut request = post("pay once");
    request.extensions_mut().insert(NoResend);
    let response = send(&mut client, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    assert_eq!(h.refreshes(), 1);
}

#[tokio::test]
async fn per_request_sessions_come_from_the_extension() {
    let h = Harness::new().await;
    let calls = Arc::new(AtomicU32::new(0));
    let mut client = ServiceBuilder::new()
        .layer(BearerLayer::per_request(h.manager.clone()))
        .service(h.api(calls.clone()));
    let mut request = post("");
    request.extensions_mut().insert(Session::new("s"));
    let response = send(&mut client, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    let error = send(&mut client, post("")).await.unwrap_err();
    assert!(
        matches!(error, BearerError::Token(Error::Config(_))),
        "{error:?}"
    );
    assert_eq!(
        calls.load(Ordering::SeqCst),
        1,
        "nothing sent without a session"
    );
}

#[tokio::test]
async fn an_unknown_session_fails_without_a_call_and_without_a_token_in_the_error() {
    let h = Harness::new().await;
    let calls = Arc::new(AtomicU32::new(0));
    let mut client = ServiceBuilder::new()
        .layer(BearerLayer::new(h.manager.clone(), "nobody"))
        .service(h.api(calls.clone()));
    let error = send(&mut client, post("")).await.unwrap_err();
    assert!(matches!(error, BearerError::Token(_)), "{error:?}");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    let text = format!("{error} {error:?}");
    assert!(!text.contains("at-0") && !text.contains("rt-0"), "{text}");
}

/// A loopback API on hyper: 200 for the accepted token, else 401.
async fn loopback_api(accepted: Arc<Mutex<String>>, calls: Arc<AtomicU32>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        // Bounded: the test's runtime ends with the test.
        while let Ok((stream, _)) = listener.accept().await {
            let accepted = accepted.clone();
            let calls = calls.clone();
            let service =
                hyper::service::service_fn(move |request: http::Request<hyper::body::Incoming>| {
                    calls.fetch_add(1, Ordering::SeqCst);
                    let expected = format!("Bearer {}", accepted.lock().unwrap());
                    let ok = request.headers().get("authorization").map(|v| v.as_bytes())
                        == Some(expected.as_bytes());
                    async move {
                        let body = request.into_body().collect().await?.to_bytes();
                        let mut response = http::Response::new(Full::new(body));
                        if !ok {
                            *response.status_mut() = StatusCode::UNAUTHORIZED;
                        }
                        Ok::<_, hyper::Error>(response)
                    }
                });
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service),
            );
        }
    });
    format!("http://{address}/pay")
}

#[tokio::test]
async fn works_in_front_of_a_hyper_util_client() {
    let h = Harness::new().await;
    let calls = Arc::new(AtomicU32::new(0));
    let url = loopback_api(h.accepted.clone(), calls.clone()).await;
    let hyper_client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut client = ServiceBuilder::new()
        .layer(BearerLayer::new(h.manager.clone(), "s"))
        .service(hyper_client);

    let request = |body: &'static str| {
        http::Request::post(url.as_str())
            .body(Full::new(Bytes::from_static(body.as_bytes())))
            .unwrap()
    };
    let response = send(&mut client, request("one")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(calls.load(Ordering::SeqCst), 1);

    h.revoke();
    let response = send(&mut client, request("two")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(body, "two", "the resend carried the same body");
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(h.refreshes(), 1);
}

/// A request that carries credentials of the caller's own goes to the inner service as it
/// is: its `Authorization` is not replaced by the token (which must not reach wherever the
/// caller sent other credentials), and its 401 is no verdict on the token.
#[tokio::test]
async fn a_request_with_its_own_authorization_is_left_alone() {
    let h = Harness::new().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let api = service_fn(move |request: http::Request<String>| {
        record
            .lock()
            .unwrap()
            .push(request.headers().get("authorization").cloned());
        let mut response = http::Response::new(String::new());
        *response.status_mut() = StatusCode::UNAUTHORIZED;
        async move { Ok::<_, Infallible>(response) }
    });
    let mut client = ServiceBuilder::new()
        .layer(BearerLayer::new(h.manager.clone(), "s"))
        .service(api);
    let mut request = post("");
    request.headers_mut().insert(
        http::header::AUTHORIZATION,
        http::HeaderValue::from_static("Basic dXNlcjpwdw=="),
    );
    let response = send(&mut client, request).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        *seen.lock().unwrap(),
        [Some(http::HeaderValue::from_static("Basic dXNlcjpwdw=="))]
    );
    assert_eq!(
        h.refreshes(),
        0,
        "the caller's credentials' 401 refreshes nothing"
    );
}

/// `only_to`: a layer that follows redirects, placed outside this one, sends each hop
/// through it. A request for another origin (another host, scheme or port) or with a
/// relative URI goes on without the token, and its 401 refreshes nothing; the origin's own
/// requests (its host in any case, its default port spelled out) carry the token.
#[tokio::test]
async fn only_to_keeps_the_token_from_other_origins() {
    let h = Harness::new().await;
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = seen.clone();
    let api = service_fn(move |request: http::Request<String>| {
        let auth = request.headers().get("authorization").cloned();
        let status = if auth.as_ref().is_some_and(|v| v == "Bearer at-0") {
            StatusCode::OK
        } else {
            StatusCode::UNAUTHORIZED
        };
        record
            .lock()
            .unwrap()
            .push((request.uri().to_string(), auth));
        let mut response = http::Response::new(String::new());
        *response.status_mut() = status;
        async move { Ok::<_, Infallible>(response) }
    });
    let layer = BearerLayer::new(h.manager.clone(), "s")
        .only_to("http://api.test")
        .unwrap();
    let mut client = ServiceBuilder::new().layer(layer).service(api);
    for elsewhere in [
        "http://evil.test/pay",
        "https://api.test/pay",
        "http://api.test:8080/pay",
        "http://api.test.evil.test/pay",
        "/pay",
    ] {
        let request = http::Request::get(elsewhere).body(String::new()).unwrap();
        let response = send(&mut client, request).await.unwrap();
        assert_eq!(response.status(), StatusCode::UNAUTHORIZED, "{elsewhere}");
        let (uri, auth) = seen.lock().unwrap().pop().unwrap();
        assert_eq!((uri.as_str(), auth), (elsewhere, None));
    }
    assert_eq!(h.refreshes(), 0, "another origin's 401 refreshes nothing");
    for own in ["http://api.test/pay", "http://API.test:80/pay"] {
        let request = http::Request::get(own).body(String::new()).unwrap();
        let response = send(&mut client, request).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "{own}");
    }
    for not_an_origin in ["", "api.test", "ftp://api.test", "http://api.test/x", "/"] {
        let refused = BearerLayer::new(h.manager.clone(), "s").only_to(not_an_origin);
        assert!(
            matches!(refused, Err(Error::Config(_))),
            "{not_an_origin:?}"
        );
    }
}

/// An API on 127.0.0.1 that serves one connection at a time (a device, or a proxy that
/// allows one connection per client): the first request is answered 401 with its head and
/// half its body, the rest still to come, and the next connection is taken only once the
/// client closed that one; its request is answered 200. Counts the requests read.
async fn one_connection_at_a_time(requests: Arc<AtomicU32>) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    async fn read_request(stream: &mut tokio::net::TcpStream, seen: &AtomicU32) -> bool {
        let mut request = Vec::new();
        let mut buffer = [0; 4096];
        // A head, then the body its `content-length` declares.
        loop {
            if let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
                let length = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|n| n.trim().parse::<usize>().ok())
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    seen.fetch_add(1, Ordering::SeqCst);
                    return true;
                }
            }
            match stream.read(&mut buffer).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => request.extend_from_slice(&buffer[..n]),
            }
        }
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let Ok((mut first, _)) = listener.accept().await else {
            return;
        };
        if !read_request(&mut first, &requests).await {
            return;
        }
        let refused = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 64\r\n\r\nhalf of ";
        if first.write_all(refused.as_bytes()).await.is_err() {
            return;
        }
        // The next connection only once the client let go of this one.
        let mut rest = [0; 4096];
        while let Ok(n) = first.read(&mut rest).await {
            if n == 0 {
                break;
            }
        }
        drop(first);
        let Ok((mut second, _)) = listener.accept().await else {
            return;
        };
        if read_request(&mut second, &requests).await {
            let accepted = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            let _ = second.write_all(accepted.as_bytes()).await;
        }
    });
    format!("http://{address}/pay")
}

/// After a 401 the layer lets go of the refused answer before it sends the request again:
/// held through the resend, the 401 (its body still coming) keeps its connection busy, so
/// the resend needs another one, which a server or proxy allowing one connection per
/// client never takes, and the call never ends. (Over HTTP/2 with one stream allowed,
/// likewise.)
#[tokio::test]
async fn the_refused_answer_is_let_go_of_before_the_resend() {
    let h = Harness::new().await;
    let requests = Arc::new(AtomicU32::new(0));
    let url = one_connection_at_a_time(requests.clone()).await;
    let hyper_client: Client<_, Full<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut client = ServiceBuilder::new()
        .layer(BearerLayer::new(h.manager.clone(), "s"))
        .service(hyper_client);
    let request = http::Request::post(url.as_str())
        .body(Full::new(Bytes::from_static(b"{\"amount\":1}")))
        .unwrap();
    // The bound only ends a failing run (a hang); a passing one never waits on it.
    let answer = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        send(&mut client, request),
    )
    .await;
    assert_eq!(h.refreshes(), 1);
    let response = answer
        .expect("the resend is answered (timed out: the server never took it)")
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}

/// The failure cooldown during which a token obtained after a 401 is not refreshed again
/// for another 401 is the whole cooldown, however late in its second the token came: an API
/// that refuses every token gets one refresh per cooldown, not one whenever the clock's
/// seconds roll past it early (here 4.5 s into a 5 s cooldown; with a cooldown under two
/// seconds, a few milliseconds).
#[tokio::test]
async fn a_token_obtained_late_in_a_second_after_a_401_stands_for_the_whole_cooldown() {
    let h = Harness::new().await;
    let now = h.clock.now();
    // The last millisecond of a second.
    h.clock
        .set(now.replace_nanosecond(999_000_000).unwrap() + time::Duration::seconds(1));
    let calls = Arc::new(AtomicU32::new(0));
    let refusing = service_fn({
        let calls = calls.clone();
        move |_: http::Request<String>| {
            calls.fetch_add(1, Ordering::SeqCst);
            let mut response = http::Response::new(String::new());
            *response.status_mut() = StatusCode::UNAUTHORIZED;
            async { Ok::<_, Infallible>(response) }
        }
    });
    let mut client = ServiceBuilder::new()
        .layer(BearerLayer::new(h.manager.clone(), "s"))
        .service(refusing);
    let response = send(&mut client, post("")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(h.refreshes(), 1, "refreshed once for the first 401");

    let cooldown = token_core::manager::ManagerConfig::default().failure_cooldown;
    let within = time::Duration::try_from(cooldown).unwrap() - time::Duration::milliseconds(500);
    h.clock.advance(within);
    let response = send(&mut client, post("")).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(
        h.refreshes(),
        1,
        "a 401 {within} after the token was obtained for a 401, inside the {cooldown:?} cooldown, refreshed again"
    );
}

/// A gRPC server (tonic's, any other) refuses a token with the status `UNAUTHENTICATED`
/// (16), never with HTTP 401: its auth interceptor's answer is "trailers-only", HTTP 200
/// with `grpc-status: 16` among its headers. Before a channel's next call the token is
/// refreshed (its streaming body is not resent: `RefreshOnly`), as after a 401; any other
/// status (`PERMISSION_DENIED`, 7: no refresh helps) refreshes nothing.
#[tokio::test]
async fn a_grpc_unauthenticated_answer_refreshes_the_token_for_the_next_call() {
    let h = Harness::new().await;
    let accepted = h.accepted.clone();
    let calls = Arc::new(AtomicU32::new(0));
    let counted = calls.clone();
    let grpc = service_fn(move |request: http::Request<String>| {
        counted.fetch_add(1, Ordering::SeqCst);
        let expected = format!("Bearer {}", accepted.lock().unwrap());
        let ok = request.headers().get("authorization").map(|v| v.as_bytes())
            == Some(expected.as_bytes());
        let denied = request.uri().path().ends_with("/Denied");
        let mut response = http::Response::new(String::new());
        let headers = response.headers_mut();
        headers.insert("content-type", "application/grpc".parse().unwrap());
        if denied {
            headers.insert("grpc-status", "7".parse().unwrap());
        } else if !ok {
            headers.insert("grpc-status", "16".parse().unwrap());
            headers.insert("grpc-message", "invalid token".parse().unwrap());
        }
        async move { Ok::<_, Infallible>(response) }
    });
    let mut channel = ServiceBuilder::new()
        .layer(BearerLayer::new(h.manager.clone(), "s").resend(RefreshOnly))
        .service(grpc);
    let call = |method: &str| {
        http::Request::post(format!("/pay.v1.Payments/{method}"))
            .body(String::new())
            .unwrap()
    };
    let grpc_status = |response: &http::Response<String>| {
        (response.headers().get("grpc-status")).map(|v| v.to_str().unwrap().to_owned())
    };

    let denied = send(&mut channel, call("Denied")).await.unwrap();
    assert_eq!(grpc_status(&denied).as_deref(), Some("7"));
    assert_eq!(h.refreshes(), 0, "PERMISSION_DENIED refreshes nothing");

    h.revoke();
    let refused = send(&mut channel, call("Charge")).await.unwrap();
    assert_eq!(grpc_status(&refused).as_deref(), Some("16"));
    assert_eq!(h.refreshes(), 1, "UNAUTHENTICATED refreshed the token");
    let next = send(&mut channel, call("Charge")).await.unwrap();
    assert_eq!(
        grpc_status(&next),
        None,
        "the next call carried the new token"
    );
    assert_eq!(calls.load(Ordering::SeqCst), 3);
}
