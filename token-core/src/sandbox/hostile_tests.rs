//! Hostile requests to the sandbox's routes: each gets a typed refusal, never a panic that
//! reaches the caller, and nothing is issued for a request the sandbox cannot read one way.

use http::{Method, StatusCode};

use super::*;

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
