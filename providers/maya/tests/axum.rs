//! The axum adapter answers Maya's Session URL POST like the receiver does.

use std::sync::Arc;

use time::macros::datetime;
use token_core::{AccessToken, ClientSecret, ManualClock, RefreshToken, TokenManager, TokenSet};
use token_provider_maya::sandbox::session_url_post;
use token_provider_maya::{Maya, MayaConfig, SessionReceiver};
use tower::ServiceExt as _;

#[tokio::test]
async fn the_axum_route_stores_the_tokens_and_answers_a_session_id() {
    let clock = Arc::new(ManualClock::new(datetime!(2026-01-01 00:00 UTC)));
    let config = MayaConfig::new(
        "client",
        ClientSecret::new("s"),
        url::Url::parse("https://connect.example").unwrap(),
    );
    let client = Arc::new(token_core::ReqwestClient::new().unwrap());
    let maya = Maya::from_config(config, client.clone(), clock.clone()).unwrap();
    let manager = TokenManager::builder(maya)
        .shared_client(client)
        .clock(clock.clone())
        .build()
        .unwrap();
    let receiver = Arc::new(SessionReceiver::new(manager.clone()));
    let app = axum::Router::new().route(
        "/maya/session",
        token_provider_maya::axum::session_url(receiver.clone()),
    );

    let tokens = TokenSet::new(AccessToken::new("at-1"))
        .with_refresh_token(RefreshToken::new("rt-1"))
        .with_access_expires_at(datetime!(2026-01-01 01:00 UTC));
    let post = session_url_post("/maya/session", &tokens, datetime!(2026-01-01 00:00 UTC));
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
