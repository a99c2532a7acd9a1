//! Hostile requests to the sandbox's routes: each gets a typed refusal, never a panic that
//! reaches the caller, and nothing is issued for a request the sandbox cannot read one way.

use std::sync::Arc;

use http::{Method, StatusCode};

use super::*;
use crate::transport::ReqwestClient;

fn transports(running: &RunningSandbox) -> [(&'static str, Arc<dyn HttpClient>); 2] {
    [
        ("socket", Arc::new(ReqwestClient::new().unwrap())),
        ("in-process", running.client()),
    ]
}

fn get(running: &RunningSandbox, path_and_query: &str) -> http::Request<Vec<u8>> {
    http::Request::builder()
        .method(Method::GET)
        .uri(running.url(path_and_query).as_str())
        .body(Vec::new())
        .unwrap()
}

fn json(response: &http::Response<Vec<u8>>) -> serde_json::Value {
    serde_json::from_slice(response.body()).unwrap_or_default()
}

/// RFC 6749 section 3.1: a parameter of the authorization request sent twice is a malformed
/// request, not a choice between its values (a front end that checked the first
/// `redirect_uri` must not see the code sent to the second).
#[tokio::test]
async fn a_repeated_authorization_parameter_is_refused_and_issues_no_code() {
    let running = Sandbox::builder().start().await.unwrap();
    let client = running.client();
    let base = "response_type=code&client_id=app-1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb\
                &state=s1&scope=read&login_hint=alice\
                &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSMw-cM&code_challenge_method=S256";
    // The well-formed request is approved, so the refusals below are the repeats' doing.
    let approved = client
        .send(get(&running, &format!("/authorize?{base}")))
        .await
        .unwrap();
    assert_eq!(approved.status(), StatusCode::FOUND);
    for repeated in [
        "response_type=code",
        "client_id=app-2",
        "redirect_uri=https%3A%2F%2Fevil.example%2Fcb",
        "state=s2",
        "scope=admin",
        "login_hint=mallory",
        "code_challenge=xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "code_challenge_method=S256",
    ] {
        let answer = client
            .send(get(&running, &format!("/authorize?{base}&{repeated}")))
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{repeated}");
        assert_eq!(json(&answer)["error"], "invalid_request", "{repeated}");
        assert!(
            answer.headers().get(http::header::LOCATION).is_none(),
            "{repeated}: no code is sent anywhere"
        );
        let text = String::from_utf8_lossy(answer.body()).into_owned();
        assert!(!text.contains("ac_"), "{repeated}: {text}");
    }
}

/// A handler that panics (a bug in a provider's route, an `expect` on odd input) is answered
/// 500 on both transports, and the sandbox goes on serving: the panic reaches neither the
/// caller's task nor the other routes.
#[tokio::test]
async fn a_panicking_handler_is_answered_500_and_the_sandbox_keeps_serving() {
    let running = Sandbox::builder()
        .route(
            Method::POST,
            "/boom",
            |request: http::Request<Vec<u8>>, _cx: SandboxContext| async move {
                assert!(request.body().is_empty(), "a handler bug");
                json_response(StatusCode::OK, &serde_json::json!({}))
            },
        )
        .start()
        .await
        .unwrap();
    let set = running.issue("alice").await.unwrap();
    let bearer = format!("Bearer {}", set.access_token.expose_secret());
    for (name, client) in transports(&running) {
        for _ in 0..2 {
            let request = http::Request::builder()
                .method(Method::POST)
                .uri(running.url("/boom").as_str())
                .body(b"{}".to_vec())
                .unwrap();
            // In a task of its own: a panic reaching the caller fails the test as a join error.
            let sent = tokio::spawn({
                let client = client.clone();
                async move { client.send(request).await }
            })
            .await;
            let answer = match sent {
                Ok(Ok(answer)) => answer,
                Ok(Err(error)) => panic!("{name}: no answer: {error}"),
                Err(error) => panic!("{name}: the handler's panic reached the caller: {error}"),
            };
            assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR, "{name}");
            assert_eq!(json(&answer)["error"], "server_error", "{name}");
        }
        let request = http::Request::builder()
            .uri(running.url("/api/me").as_str())
            .header(http::header::AUTHORIZATION, bearer.as_str())
            .body(Vec::new())
            .unwrap();
        let answer = client.send(request).await.unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{name}: still serving");
    }
    assert_eq!(running.calls("/boom"), 4);
}
