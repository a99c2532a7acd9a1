//! The axum adapter answers Maya's Session URL POST like the receiver does.

use std::sync::Arc;

use time::macros::datetime;
use token_core::{
    manager::TokenManager, secret::AccessToken, secret::ClientSecret, secret::RefreshToken,
    store::MemoryStore, token_set::TokenSet,
};
use token_provider_maya::sandbox::session_url_post;
use token_provider_maya::{Maya, MayaConfig, SessionReceiver};
use token_test_support::harness::{START, manual_clock};
use tower::ServiceExt as _;

/// A manager over `store` that never calls Maya (nothing expires in these tests).
fn manager(store: Arc<MemoryStore>) -> TokenManager<Maya> {
    let clock = Arc::new(manual_clock());
    let config = MayaConfig::new(
        "client",
        ClientSecret::new("s"),
        url::Url::parse("https://connect.example").unwrap(),
    );
    let client = Arc::new(token_core::transport::ReqwestClient::new().unwrap());
    let maya = Maya::from_config(config, client.clone(), clock.clone()).unwrap();
    TokenManager::builder(maya)
        .shared_store(store)
        .shared_client(client)
        .clock(clock)
        .build()
        .unwrap()
}

#[tokio::test]
async fn the_axum_route_stores_the_tokens_and_answers_a_session_id() {
    let manager = manager(Arc::new(MemoryStore::new()));
    let receiver = Arc::new(SessionReceiver::new(manager.clone()));
    let app = axum::Router::new().route(
        "/maya/session",
        token_provider_maya::axum::session_url(receiver.clone()),
    );

    let tokens = TokenSet::new(AccessToken::new("at-1"))
        .with_refresh_token(RefreshToken::new("rt-1"))
        .with_access_expires_at(datetime!(2026-01-01 01:00 UTC));
    let post = session_url_post("/maya/session", &tokens, START);
    let answer = app
        .clone()
        .oneshot(post.map(axum::body::Body::from))
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let body = axum::body::to_bytes(answer.into_body(), 1024)
        .await
        .unwrap();
    let body: serde_json::Value = serde_json::from_slice(&body).unwrap();
    let session_id = body["sessionId"].as_str().unwrap();
    receiver.redeem(session_id, "user-1").await.unwrap();
    assert_eq!(
        manager
            .access_token("user-1")
            .await
            .unwrap()
            .expose_secret(),
        "at-1"
    );

    let get = http::Request::get("/maya/session")
        .body(axum::body::Body::empty())
        .unwrap();
    assert_eq!(app.oneshot(get).await.unwrap().status(), 405);
}

#[tokio::test]
async fn a_body_over_64_kib_is_refused_unread_and_stores_nothing() {
    let store = Arc::new(MemoryStore::new());
    let manager = manager(store.clone());
    let app = axum::Router::new().route(
        "/maya/session",
        token_provider_maya::axum::session_url(Arc::new(SessionReceiver::new(manager))),
    );
    let tokens =
        TokenSet::new(AccessToken::new("at-1")).with_refresh_token(RefreshToken::new("rt-1"));
    let post = session_url_post("/maya/session", &tokens, START);

    let (parts, tokens_body) = post.into_parts();
    let mut padded: serde_json::Value = serde_json::from_slice(&tokens_body).unwrap();
    padded["padding"] = "x".repeat(64 * 1024).into();
    let padded = serde_json::to_vec(&padded).unwrap();
    let request = http::Request::from_parts(parts.clone(), axum::body::Body::from(padded));
    let answer = app.clone().oneshot(request).await.unwrap();
    assert_eq!(answer.status(), 413);
    let body = axum::body::to_bytes(answer.into_body(), 1024)
        .await
        .unwrap();
    assert!(String::from_utf8_lossy(&body).contains("invalid_request"));
    assert!(store.is_empty(), "nothing stored");

    // The positive control: the same POST without the padding is stored.
    let request = http::Request::from_parts(parts, axum::body::Body::from(tokens_body));
    assert_eq!(app.oneshot(request).await.unwrap().status(), 200);
    assert!(!store.is_empty());
}

/// `Request-Reference-No` twice (two values) is no choice between them: whoever keyed
/// Maya's retries on the other one (a proxy, a log) would see another session. Refused as
/// a malformed POST, storing nothing; the same POST with one header is stored.
#[tokio::test]
async fn a_repeated_request_reference_is_refused_and_stores_nothing() {
    let store = Arc::new(MemoryStore::new());
    let receiver = SessionReceiver::new(manager(store.clone()));
    let tokens =
        TokenSet::new(AccessToken::new("at-1")).with_refresh_token(RefreshToken::new("rt-1"));
    let post = session_url_post("/maya/session", &tokens, START);
    let (parts, body) = post.into_parts();
    for second in ["ref-2", "ref-2, ref-3"] {
        let mut twice = http::Request::from_parts(parts.clone(), body.clone());
        twice.headers_mut().append(
            "Request-Reference-No",
            http::HeaderValue::from_static(second),
        );
        let answer = receiver.receive(twice).await;
        assert_eq!(answer.status(), 400, "{second}");
        assert!(store.is_empty(), "{second}: nothing stored");
    }
    let once = http::Request::from_parts(parts, body);
    assert_eq!(receiver.receive(once).await.status(), 200);
    assert!(!store.is_empty());
}

/// A Session URL POST whose body never ends is answered 408 after the adapter's read
/// timeout instead of holding its task for ever, and one whose body breaks off 400 (it is
/// not too large); neither stores anything.
#[tokio::test(start_paused = true)]
async fn a_body_that_never_ends_or_breaks_off_is_refused_in_bounded_time() {
    use http_body_util::channel::Channel;
    let store = Arc::new(MemoryStore::new());
    let app = axum::Router::new().route(
        "/maya/session",
        token_provider_maya::axum::session_url(Arc::new(SessionReceiver::new(manager(
            store.clone(),
        )))),
    );
    let tokens =
        TokenSet::new(AccessToken::new("at-1")).with_refresh_token(RefreshToken::new("rt-1"));
    let (parts, _) = session_url_post("/maya/session", &tokens, START).into_parts();
    let bounded = std::time::Duration::from_secs(3600);

    let (sender, never_ends) = Channel::<axum::body::Bytes, std::io::Error>::new(1);
    let request = http::Request::from_parts(parts.clone(), axum::body::Body::new(never_ends));
    let started = tokio::time::Instant::now();
    let answer = tokio::time::timeout(bounded, app.clone().oneshot(request))
        .await
        .expect("the adapter waited for the body for ever")
        .unwrap();
    assert_eq!(answer.status(), 408);
    assert!(started.elapsed() <= token_provider_maya::axum::READ_TIMEOUT);
    drop(sender);

    let (sender, breaks_off) = Channel::<axum::body::Bytes, std::io::Error>::new(1);
    sender.abort(std::io::Error::other("connection reset"));
    let request = http::Request::from_parts(parts, axum::body::Body::new(breaks_off));
    let answer = tokio::time::timeout(bounded, app.oneshot(request))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(answer.status(), 400);
    assert!(store.is_empty(), "nothing stored");
}

/// Under a body limit of the application's own, lower than the receiver's (tower-http's
/// `RequestBodyLimitLayer` around the router), a body sent without `Content-Length` that
/// passes it is refused as too large, 413, as one over the receiver's own limit is: not as
/// a body that could not be read (400).
#[tokio::test]
async fn a_body_over_an_outer_limit_layer_is_refused_as_too_large() {
    let store = Arc::new(MemoryStore::new());
    let manager = manager(store.clone());
    let app = axum::Router::new()
        .route(
            "/maya/session",
            token_provider_maya::axum::session_url(Arc::new(SessionReceiver::new(manager))),
        )
        .layer(tower_http::limit::RequestBodyLimitLayer::new(1024));
    let tokens =
        TokenSet::new(AccessToken::new("at-1")).with_refresh_token(RefreshToken::new("rt-1"));
    let (mut parts, body) = session_url_post("/maya/session", &tokens, START).into_parts();
    parts.headers.remove(http::header::CONTENT_LENGTH);
    let mut padded: serde_json::Value = serde_json::from_slice(&body).unwrap();
    padded["padding"] = "x".repeat(2048).into();
    let padded = serde_json::to_vec(&padded).unwrap();
    let request = http::Request::from_parts(parts, axum::body::Body::from(padded));
    let answer = app.oneshot(request).await.unwrap();
    assert_eq!(answer.status(), 413);
    assert!(store.is_empty(), "nothing stored");
}
