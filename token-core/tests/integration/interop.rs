//! The bearer layer and middleware composed with the usual crates: tower's `Timeout`,
//! `Retry`, `ConcurrencyLimit` and `Buffer`, and reqwest-retry's `RetryTransientMiddleware`.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use http::StatusCode;
use token_core::clock::{Clock, ManualClock};
use token_core::tower::{BearerError, BearerLayer};
use token_core::{
    async_trait, error::Error, manager::TokenManager, provider::CallContext, provider::Provider,
    secret::AccessToken, secret::RefreshToken, store::MemoryStore, token_set::NoExtras,
    token_set::TokenSet,
};
use tower::util::BoxCloneSyncService;
use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

/// Issues `at-1`, `at-2`, ..., each refresh once `gate` lets it.
struct Gated {
    refreshes: AtomicU32,
    gate: Arc<tokio::sync::Semaphore>,
}

#[async_trait]
impl Provider for Gated {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "gated"
    }

    async fn refresh(&self, cx: &CallContext, _: &TokenSet) -> Result<TokenSet, Error> {
        self.gate.acquire().await.unwrap().forget();
        let n = self.refreshes.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(TokenSet::new(AccessToken::new(format!("at-{n}")))
            .with_refresh_token(RefreshToken::new(format!("rt-{n}")))
            .with_access_expires_at(cx.now() + time::Duration::hours(1)))
    }
}

async fn gated(expired: bool, open: usize) -> (TokenManager<Gated>, Arc<tokio::sync::Semaphore>) {
    let gate = Arc::new(tokio::sync::Semaphore::new(open));
    let clock = ManualClock::new(time::OffsetDateTime::now_utc());
    let provider = Gated {
        refreshes: AtomicU32::new(0),
        gate: gate.clone(),
    };
    let manager = TokenManager::builder(provider)
        .store(MemoryStore::new())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap();
    let lifetime = if expired {
        -time::Duration::minutes(1)
    } else {
        time::Duration::hours(1)
    };
    let set = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(clock.now() + lifetime);
    manager.insert("s", set).await.unwrap();
    (manager, gate)
}

/// An API that accepts the token named in `accepted` ("*" for none) and counts its calls.
fn api(
    accepted: Arc<std::sync::Mutex<String>>,
    calls: Arc<AtomicU32>,
) -> BoxCloneSyncService<http::Request<String>, http::Response<String>, Infallible> {
    BoxCloneSyncService::new(service_fn(move |request: http::Request<String>| {
        calls.fetch_add(1, Ordering::SeqCst);
        let auth = request
            .headers()
            .get("authorization")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        let ok = auth == format!("Bearer {}", accepted.lock().unwrap());
        let mut response = http::Response::new(auth);
        if !ok {
            *response.status_mut() = StatusCode::UNAUTHORIZED;
        }
        std::future::ready(Ok::<_, Infallible>(response))
    }))
}

fn get() -> http::Request<String> {
    http::Request::get("http://api.test/x")
        .body(String::new())
        .unwrap()
}

/// A `Timeout` around the layer that fires while the refresh runs: the refresh goes on, and
/// the next call takes its token without a second refresh.
#[tokio::test(start_paused = true)]
async fn a_timeout_mid_refresh_leaves_the_refresh_to_finish_for_the_next_call() {
    let (manager, gate) = gated(true, 0).await;
    let calls = Arc::new(AtomicU32::new(0));
    let accepted = Arc::new(std::sync::Mutex::new("at-1".to_owned()));
    let mut client = ServiceBuilder::new()
        .timeout(Duration::from_millis(100))
        .layer(BearerLayer::new(manager.clone(), "s"))
        .service(api(accepted, calls.clone()));
    let first = client.ready().await.unwrap().call(get()).await;
    assert!(first.is_err(), "timed out");
    assert_eq!(calls.load(Ordering::SeqCst), 0);
    gate.add_permits(10);
    let second = client.ready().await.unwrap().call(get()).await.unwrap();
    assert_eq!(second.status(), StatusCode::OK);
    assert_eq!(manager.provider().refreshes.load(Ordering::SeqCst), 1);
}

#[derive(Clone)]
struct RetryUnauthorized(u32);

impl<E> tower::retry::Policy<http::Request<String>, http::Response<String>, E>
    for RetryUnauthorized
{
    type Future = std::future::Ready<()>;

    fn retry(
        &mut self,
        _: &mut http::Request<String>,
        result: &mut Result<http::Response<String>, E>,
    ) -> Option<Self::Future> {
        match result {
            Ok(response) if response.status() == StatusCode::UNAUTHORIZED && self.0 > 0 => {
                self.0 -= 1;
                Some(std::future::ready(()))
            }
            _ => None,
        }
    }

    fn clone_request(&mut self, request: &http::Request<String>) -> Option<http::Request<String>> {
        let mut copy = http::Request::new(request.body().clone());
        *copy.uri_mut() = request.uri().clone();
        *copy.headers_mut() = request.headers().clone();
        Some(copy)
    }
}

/// A `Retry` around the layer whose policy sends a 401 again: the layer already refreshed
/// and resent once; the retries refresh nothing more.
#[tokio::test]
async fn a_retry_policy_resending_401s_costs_one_refresh() {
    let (manager, gate) = gated(false, 100).await;
    let calls = Arc::new(AtomicU32::new(0));
    let accepted = Arc::new(std::sync::Mutex::new("*".to_owned()));
    let mut client = ServiceBuilder::new()
        .layer(tower::retry::RetryLayer::new(RetryUnauthorized(5)))
        .layer(BearerLayer::new(manager.clone(), "s"))
        .service(api(accepted, calls.clone()));
    let response = client.ready().await.unwrap().call(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    drop(gate);
    assert_eq!(manager.provider().refreshes.load(Ordering::SeqCst), 1);
    // The first send, the layer's resend, and five retries each sent once.
    assert_eq!(calls.load(Ordering::SeqCst), 7);
}

/// `Buffer` outside and `ConcurrencyLimit(1)` inside the layer, several callers at once
/// with a token the API refuses: each gets its answer, and one refresh serves them all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn buffered_and_limited_callers_share_one_refresh_after_a_401() {
    let (manager, _gate) = gated(false, 100).await;
    let calls = Arc::new(AtomicU32::new(0));
    let accepted = Arc::new(std::sync::Mutex::new("at-1".to_owned()));
    let client = ServiceBuilder::new()
        .buffer(8)
        .layer(BearerLayer::new(manager.clone(), "s"))
        .concurrency_limit(1)
        .service(api(accepted, calls.clone()));
    let call = || client.clone().oneshot(get());
    let answers = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::join!(call(), call(), call(), call(), call(), call())
    })
    .await
    .expect("every caller answered");
    let (a, b, c, d, e, f) = answers;
    for answer in [a, b, c, d, e, f] {
        assert_eq!(answer.unwrap().status(), StatusCode::OK);
    }
    assert_eq!(manager.provider().refreshes.load(Ordering::SeqCst), 1);
}

/// The layer's own error is not the inner service's: a `BearerError` reaches the caller
/// through `Buffer` as a boxed error it can downcast.
#[tokio::test]
async fn a_token_error_through_buffer_can_be_told_apart() {
    let (manager, _gate) = gated(false, 100).await;
    let calls = Arc::new(AtomicU32::new(0));
    let accepted = Arc::new(std::sync::Mutex::new("at-0".to_owned()));
    let client = ServiceBuilder::new()
        .buffer(8)
        .layer(BearerLayer::new(manager.clone(), "nobody"))
        .service(api(accepted, calls.clone()));
    let error = client.oneshot(get()).await.unwrap_err();
    assert!(
        error.downcast_ref::<BearerError<Infallible>>().is_some(),
        "{error:?}"
    );
}

/// A sandbox whose `/scripted` answers the statuses given, in turn (200 once they run out),
/// and records the `Authorization` of each request.
async fn scripted(
    statuses: &[u16],
) -> (
    token_core::sandbox::RunningSandbox,
    Arc<std::sync::Mutex<Vec<String>>>,
) {
    use token_core::sandbox::{Sandbox, SandboxContext};
    let script = Arc::new(std::sync::Mutex::new(
        statuses
            .iter()
            .copied()
            .collect::<std::collections::VecDeque<_>>(),
    ));
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = seen.clone();
    let sandbox = Sandbox::builder()
        .route(
            http::Method::GET,
            "/scripted",
            move |request: http::Request<Vec<u8>>, _: SandboxContext| {
                let auth = request
                    .headers()
                    .get("authorization")
                    .map(|v| v.to_str().unwrap().to_owned())
                    .unwrap_or_default();
                record.lock().unwrap().push(auth);
                let status = script.lock().unwrap().pop_front().unwrap_or(200);
                let mut response = http::Response::new(Vec::new());
                *response.status_mut() = StatusCode::from_u16(status).unwrap();
                async move { response }
            },
        )
        .start()
        .await
        .unwrap();
    (sandbox, seen)
}

/// `BearerAuth` beside reqwest-retry's `RetryTransientMiddleware`, in both orders, for a 401
/// then a 503 and a 503 then a 401: each send carries the token it should (the refused one
/// until the 401, the new one after), one refresh for the one 401, and an API refusing every
/// token ends with its 401 after one resend.
#[tokio::test]
async fn bearer_auth_beside_reqwest_retry_in_either_order() {
    use reqwest_retry::{RetryTransientMiddleware, policies::ExponentialBackoff};
    use token_core::middleware::BearerAuth;
    use token_core::oauth::TOKEN_PATH;
    use token_core::sandbox::SandboxOAuth;
    let cases: &[(&[u16], &[usize], u16)] = &[
        // statuses answered; which token (0 the first, 1 the refreshed) each send carries;
        // the final status.
        (&[401, 503], &[0, 1, 1], 200),
        (&[503, 401], &[0, 0, 1], 200),
        (&[401, 401, 401, 401, 401, 401], &[0, 1], 401),
    ];
    for retry_outside in [true, false] {
        for (statuses, tokens, last) in cases {
            let (sandbox, seen) = scripted(statuses).await;
            let manager = TokenManager::builder(SandboxOAuth::new(sandbox.base_url()))
                .store(MemoryStore::new())
                .build()
                .unwrap();
            let first = sandbox.issue("s").await.unwrap();
            manager
                .insert("s", TokenSet::from_stored(first).unwrap())
                .await
                .unwrap();
            let policy = ExponentialBackoff::builder()
                .retry_bounds(Duration::from_millis(1), Duration::from_millis(2))
                .build_with_max_retries(3);
            let retry = RetryTransientMiddleware::new_with_policy(policy);
            let bearer = BearerAuth::new(manager.clone(), "s");
            let builder = reqwest_middleware::ClientBuilder::new(reqwest::Client::new());
            let client = if retry_outside {
                builder.with(retry).with(bearer)
            } else {
                builder.with(bearer).with(retry)
            }
            .build();
            let before = manager.access_token("s").await.unwrap();
            let response = client.get(sandbox.url("/scripted")).send().await.unwrap();
            let after = manager.access_token("s").await.unwrap();
            let case = format!("retry outside: {retry_outside}, {statuses:?}");
            assert_eq!(response.status().as_u16(), *last, "{case}");
            assert_eq!(sandbox.calls(TOKEN_PATH), 1, "{case}");
            let expected: Vec<String> = tokens
                .iter()
                .map(|&n| {
                    let token = if n == 0 { &before } else { &after };
                    format!("Bearer {}", token.expose_secret())
                })
                .collect();
            assert_eq!(*seen.lock().unwrap(), expected, "{case}");
        }
    }
}

/// The layer, its service and the middleware show themselves in `Debug` (tower's
/// `ServiceBuilder` and `Stack`, and an integrator's `#[derive(Debug)]` client holding one,
/// need it), without the token they last sent.
#[tokio::test]
async fn the_layer_its_service_and_the_middleware_show_themselves_without_a_token() {
    use token_core::middleware::BearerAuth;
    let (manager, _gate) = gated(false, 100).await;
    let layer = BearerLayer::new(manager.clone(), "s")
        .only_to("http://api.test")
        .unwrap();
    let echo = service_fn(|request: http::Request<String>| async move {
        let auth = request.headers()["authorization"]
            .to_str()
            .unwrap()
            .to_owned();
        Ok::<_, Infallible>(http::Response::new(auth))
    });
    let mut service = ServiceBuilder::new().layer(layer.clone()).service(echo);
    let sent = service.ready().await.unwrap().call(get()).await.unwrap();
    assert_eq!(sent.body(), "Bearer at-0");
    let auth = BearerAuth::new(manager.clone(), "s");
    let builder = ServiceBuilder::new().layer(layer.clone());
    let shown = format!("{layer:?} {service:?} {builder:?} {auth:?}");
    for name in ["BearerLayer", "BearerService", "BearerAuth", "gated"] {
        assert!(shown.contains(name), "{name} in {shown}");
    }
    assert!(
        !shown.contains("at-0") && !shown.contains("rt-0"),
        "{shown}"
    );
}

/// The layer over a service whose error is tower's `BoxError` (a `Timeout` under it), that
/// error mapped to a concrete one below the layer as `BearerError`'s docs say: the stack
/// goes under tower's layers that take any `Into<BoxError>` (a `Buffer`, a `Timeout`
/// outside), and `?` carries its error into a `Box<dyn Error>`, where it can be downcast.
#[tokio::test]
async fn the_layer_over_a_timeout_goes_under_buffer_and_timeout_with_its_errors_mapped() {
    let (manager, _gate) = gated(false, 100).await;
    let accepted = Arc::new(std::sync::Mutex::new("at-0".to_owned()));
    let client = ServiceBuilder::new()
        .buffer(8)
        .timeout(Duration::from_secs(60))
        .layer(BearerLayer::new(manager.clone(), "s"))
        .map_err(std::io::Error::other)
        .timeout(Duration::from_secs(10))
        .service(api(accepted, Arc::new(AtomicU32::new(0))));
    let response = client.clone().oneshot(get()).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);

    async fn called(
        mut client: impl Service<
            http::Request<String>,
            Response = http::Response<String>,
            Error = BearerError<std::io::Error>,
        >,
    ) -> Result<StatusCode, Box<dyn std::error::Error + Send + Sync>> {
        Ok(client.ready().await?.call(get()).await?.status())
    }
    let bare = ServiceBuilder::new()
        .layer(BearerLayer::new(manager.clone(), "nobody"))
        .map_err(std::io::Error::other)
        .timeout(Duration::from_secs(10))
        .service(api(Arc::default(), Arc::new(AtomicU32::new(0))));
    let error = called(bare).await.unwrap_err();
    assert!(
        error
            .downcast_ref::<BearerError<std::io::Error>>()
            .is_some(),
        "{error:?}"
    );
}

/// The middleware and the layer built before any runtime runs (an application's `main`
/// building its clients, then its runtime), used inside one, and dropped after it is gone.
#[test]
fn built_outside_a_runtime_used_inside_one_and_dropped_after_it() {
    use token_core::middleware::BearerAuth;
    let gate = Arc::new(tokio::sync::Semaphore::new(100));
    let provider = Gated {
        refreshes: AtomicU32::new(0),
        gate,
    };
    let manager = TokenManager::builder(provider)
        .store(MemoryStore::new())
        .build()
        .unwrap();
    let auth = BearerAuth::new(manager.clone(), "s");
    let layer = BearerLayer::new(manager.clone(), "s");
    let accepted = Arc::new(std::sync::Mutex::new("at-0".to_owned()));
    let mut service = ServiceBuilder::new()
        .layer(layer)
        .service(api(accepted, Arc::new(AtomicU32::new(0))));
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let set = TokenSet::new(AccessToken::new("at-0"))
            .with_refresh_token(RefreshToken::new("rt-0"))
            .with_access_expires_at(time::OffsetDateTime::now_utc() + time::Duration::hours(1));
        manager.insert("s", set).await.unwrap();
        let response = service.ready().await.unwrap().call(get()).await.unwrap();
        assert_eq!(response.status(), StatusCode::OK);
    });
    drop(runtime);
    drop((auth, service, manager));
}
