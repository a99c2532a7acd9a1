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

/// Sends `bytes` on a new connection and reads until the sandbox closes it; `None` if it
/// stays open for an hour of tokio's (paused) clock.
async fn raw_exchange(running: &RunningSandbox, bytes: &[u8]) -> Option<Vec<u8>> {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut stream = tokio::net::TcpStream::connect(running.addr())
        .await
        .unwrap();
    let exchange = async {
        // The sandbox may refuse before it has read everything: a failed write is its answer.
        let _ = stream.write_all(bytes).await;
        let mut answer = Vec::new();
        let mut buf = [0; 4096];
        for _ in 0..10_000 {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => return answer,
                Ok(n) => answer.extend_from_slice(&buf[..n]),
            }
        }
        panic!("the sandbox kept writing");
    };
    tokio::time::timeout(Duration::from_secs(3600), exchange)
        .await
        .ok()
}

/// Requests that hyper itself refuses or that try to reach past the routes: each is answered
/// (never held open), none reaches a handler it should not, and the sandbox serves on. A body
/// framed both by `Content-Length` and chunked is read chunked and its connection closed, so
/// a request hidden after it (smuggled past a proxy that reads `Content-Length`) never runs.
#[tokio::test(start_paused = true)]
async fn malformed_http_is_answered_and_closed_and_smuggles_nothing() {
    let running = Sandbox::builder()
        .read_timeout(Duration::from_secs(5))
        .start()
        .await
        .unwrap();
    let big_header = format!(
        "GET /api/me HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
        "a".repeat(1 << 20)
    );
    let many: String = (0..300).map(|i| format!("X-H{i}: v\r\n")).collect();
    let many = format!("GET /api/me HTTP/1.1\r\nHost: x\r\n{many}\r\n");
    let huge_method = format!(
        "{} /token HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "M".repeat(60_000)
    );
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("a 1 MiB header", big_header.into_bytes(), "431"),
        ("300 headers", many.into_bytes(), "431"),
        (
            "Content-Length and chunked",
            b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /api/smuggled HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "two Content-Lengths",
            b"POST /token HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde".to_vec(),
            "400",
        ),
        ("not HTTP", b"\x00\xff\xfe garbage\r\n\r\n".to_vec(), "400"),
        (
            "a path that is not UTF-8",
            b"GET /api/\xff\xfe HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            "400",
        ),
        (
            "asterisk form",
            b"OPTIONS * HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            "404",
        ),
        (
            "CONNECT",
            b"CONNECT evil.example:443 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".to_vec(),
            "404",
        ),
        ("a 60 kB method", huge_method.into_bytes(), "405"),
        (
            "a dot segment out of /api/",
            b"POST /api/../token HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 0\r\n\r\n".to_vec(),
            "401",
        ),
    ];
    for (name, bytes, status) in cases {
        let answer = raw_exchange(&running, &bytes)
            .await
            .unwrap_or_else(|| panic!("{name}: the connection was held open"));
        let shown = String::from_utf8_lossy(&answer[..answer.len().min(200)]).into_owned();
        assert!(
            shown.starts_with(&format!("HTTP/1.1 {status} ")),
            "{name}: {shown}"
        );
    }
    assert_eq!(running.calls("/api/smuggled"), 0);
    assert_eq!(running.calls("/api/.."), 0);
    let answer = raw_exchange(
        &running,
        b"GET /api/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await
    .unwrap();
    assert!(answer.starts_with(b"HTTP/1.1 401 "), "still serving");
}

fn form_post(
    running: &RunningSandbox,
    path_and_query: &str,
    body: String,
) -> http::Request<Vec<u8>> {
    http::Request::builder()
        .method(Method::POST)
        .uri(running.url(path_and_query).as_str())
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body.into_bytes())
        .unwrap()
}

/// RFC 6749 section 3.1: a parameter of the token request also sent in the query is sent
/// twice; whoever read the query (a proxy, a log, a rate limiter keyed on the token) saw
/// another request than the one served. Refused, rotating nothing.
#[tokio::test]
async fn a_token_parameter_also_in_the_query_is_refused_and_rotates_nothing() {
    let running = Sandbox::builder().start().await.unwrap();
    let set = running.issue("alice").await.unwrap();
    let token = set.refresh_token.clone().unwrap();
    let token = token.expose_secret();
    let client = running.client();
    let body = format!("grant_type=refresh_token&refresh_token={token}");
    for query in [
        "refresh_token=rt_other",
        "grant_type=refresh_token",
        "grant_type=client_credentials",
    ] {
        let answer = client
            .send(form_post(
                &running,
                &format!("/token?{query}"),
                body.clone(),
            ))
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{query}");
        let text = String::from_utf8_lossy(answer.body()).into_owned();
        assert_eq!(json(&answer)["error"], "invalid_request", "{query}: {text}");
        assert!(!text.contains(token), "{query}: {text}");
    }
    let answer = client
        .send(form_post(
            &running,
            "/token",
            format!("grant_type=refresh_token&{body}"),
        ))
        .await
        .unwrap();
    assert_eq!(
        json(&answer)["error_description"],
        "parameter `grant_type` is repeated"
    );
    // Nothing rotated: the body alone still refreshes.
    let answer = client
        .send(form_post(&running, "/token", body))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}

/// RFC 6749 section 2.3: a client uses one authentication method per request. HTTP Basic
/// naming one client and a body `client_id` naming another is no choice between them: the
/// token endpoint refuses it, whatever the grant, issuing and rotating nothing.
#[tokio::test]
async fn a_token_request_naming_two_clients_is_refused() {
    let running = Sandbox::builder().start().await.unwrap();
    let client = running.client();
    let basic = crate::oauth::BasicCredentials::new("app-1", crate::secret::ClientSecret::new("s"))
        .to_header();
    let with_basic = |body: String| {
        let mut request = form_post(&running, "/token", body);
        request.headers_mut().insert(
            http::header::AUTHORIZATION,
            http::HeaderValue::try_from(basic.as_str()).unwrap(),
        );
        request
    };
    let issued = client
        .send(with_basic("grant_type=client_credentials".into()))
        .await
        .unwrap();
    assert_eq!(issued.status(), StatusCode::OK);
    // A `client_credentials` answer has no refresh token: a pair bound to `app-1` for the
    // refresh grant comes from the issuer.
    let bound = running
        .issuer()
        .issue_for("app-1", "alice", serde_json::json!({}))
        .await
        .unwrap();
    let token = bound
        .tokens
        .refresh_token
        .unwrap()
        .expose_secret()
        .to_owned();
    for (grant, body) in [
        (
            "refresh_token",
            format!("grant_type=refresh_token&refresh_token={token}&client_id=app-2"),
        ),
        (
            "client_credentials",
            "grant_type=client_credentials&client_id=app-2".to_owned(),
        ),
    ] {
        let answer = client.send(with_basic(body)).await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{grant}");
        assert_eq!(json(&answer)["error"], "invalid_request", "{grant}");
    }
    // The same client named both ways is one client; the pair was not rotated above.
    let answer = client
        .send(with_basic(format!(
            "grant_type=refresh_token&refresh_token={token}&client_id=app-1"
        )))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}

/// A body of the size limit full of names, and a query of as many, are answered (refused:
/// the refresh token is unknown). The check for a parameter in both looks each query name up
/// once among the body's, not against every one (a quadratic cost a sender could choose);
/// that is a matter of speed, not asserted here: not a timed test.
#[tokio::test]
async fn many_parameters_in_the_query_and_the_body_are_answered() {
    let running = Sandbox::builder().start().await.unwrap();
    let client = running.client();
    // 12,000 names of four characters each, in the 64 KiB the body may hold.
    let names = |prefix: char| {
        let digit = |n: usize| char::from(b"0123456789abcdefghijklmnopqrstuvwxyz"[n % 36]);
        (0..12_000)
            .map(|i| format!("{prefix}{}{}{}", digit(i / 1296), digit(i / 36), digit(i)))
            .collect::<Vec<_>>()
            .join("&")
    };
    let body = format!("grant_type=refresh_token&refresh_token=rt_x&{}", names('b'));
    assert!(body.len() <= DEFAULT_MAX_BODY);
    let answer = client
        .send(form_post(&running, &format!("/token?{}", names('q')), body))
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
}

/// RFC 6749 section 3.1: a parameter sent without a value is treated as omitted. An
/// authorization request with an empty `redirect_uri` or `code_challenge` gets a code bound
/// to neither, which the token request sending the same empty parameters (read as omitted
/// there too) redeems, instead of a code that no exchange can ever redeem.
#[tokio::test]
async fn an_authorization_parameter_without_a_value_is_omitted_and_its_code_redeemed() {
    let running = Sandbox::builder().start().await.unwrap();
    let client = running.client();
    for (authorize, exchange) in [
        ("&redirect_uri=", "&redirect_uri="),
        ("&code_challenge=&code_challenge_method=", "&code_verifier="),
        ("&scope=&state=&login_hint=", ""),
    ] {
        let answer = client
            .send(get(
                &running,
                &format!("/authorize?response_type=code&client_id=app-1{authorize}"),
            ))
            .await
            .unwrap();
        assert_eq!(answer.status(), StatusCode::OK, "{authorize}");
        let approved = json(&answer);
        assert_eq!(approved["state"], serde_json::Value::Null, "{authorize}");
        let code = approved["code"].as_str().unwrap().to_owned();
        let answer = client
            .send(form_post(
                &running,
                "/token",
                format!("grant_type=authorization_code&code={code}&client_id=app-1{exchange}"),
            ))
            .await
            .unwrap();
        let text = String::from_utf8_lossy(answer.body()).into_owned();
        assert_eq!(answer.status(), StatusCode::OK, "{authorize}: {text}");
        let access = json(&answer)["access_token"].as_str().unwrap().to_owned();
        let grant = running.issuer().authenticate(&access).await.unwrap();
        assert_eq!(grant.subject, "sandbox-user", "{authorize}");
    }
}
