//! Token calls stay at their origin whatever reqwest client `ReqwestClient` wraps: a client
//! that follows redirects never resends the refresh token's body on a 307 or 308, and an
//! answer from another origin (after a 301, 302 or 303) is a transport error, never read as
//! the provider's answer. So another origin's `invalid_grant` cannot end a session.

use std::sync::{Arc, Mutex};

use http::{HeaderValue, StatusCode, header::LOCATION};
use token_core::oauth::TOKEN_PATH;
use token_core::sandbox::{Failure, RunningSandbox, Sandbox, SandboxContext, json_response};
use token_core::{
    error::ErrorKind, manager::TokenManager, secret::AccessToken, secret::ClientSecret,
    secret::RefreshToken, token_set::TokenSet, transport::HttpClient, transport::ReqwestClient,
};
use token_provider_oauth2::{OAuth2, OAuth2Config};

const REFRESH_TOKEN: &str = "rt-redirect-0123456789abcdef";
const CLIENT_SECRET: &str = "cs-redirect-fedcba9876543210";

/// One request the other origin saw.
#[derive(Clone, Debug)]
struct Seen {
    method: http::Method,
    /// Every header and the body, as text: where a secret would show.
    text: String,
    content_length: Option<String>,
    chunked: bool,
}

type Log = Arc<Mutex<Vec<Seen>>>;

/// Another origin (another loopback port) whose token route answers `invalid_grant` to
/// anything, and records what it is sent.
async fn other_origin() -> (RunningSandbox, Log) {
    let log: Log = Arc::default();
    let record = log.clone();
    let sandbox = Sandbox::builder()
        .oauth_routes(false)
        .api_routes(false)
        .route_any(
            TOKEN_PATH,
            move |request: http::Request<Vec<u8>>, _cx: SandboxContext| {
                let record = record.clone();
                async move {
                    let headers = request.headers();
                    let mut text = format!("{} {}\n", request.method(), request.uri());
                    for (name, value) in headers {
                        text.push_str(&format!(
                            "{name}: {}\n",
                            String::from_utf8_lossy(value.as_bytes())
                        ));
                    }
                    text.push_str(&String::from_utf8_lossy(request.body()));
                    record.lock().unwrap().push(Seen {
                        method: request.method().clone(),
                        text,
                        content_length: headers
                            .get(http::header::CONTENT_LENGTH)
                            .map(|v| v.to_str().unwrap().to_owned()),
                        chunked: headers.contains_key(http::header::TRANSFER_ENCODING),
                    });
                    json_response(
                        StatusCode::BAD_REQUEST,
                        &serde_json::json!({"error": "invalid_grant"}),
                    )
                }
            },
        )
        .start()
        .await
        .expect("the other origin starts");
    (sandbox, log)
}

/// The provider's token endpoint, answering the next calls with `status` to `to`.
async fn redirecting_endpoint(status: StatusCode, to: &url::Url, times: u32) -> RunningSandbox {
    let sandbox = Sandbox::builder()
        .start()
        .await
        .expect("the sandbox starts");
    sandbox.fail_next(
        TOKEN_PATH,
        times,
        Failure::new(status).with_header(
            LOCATION,
            HeaderValue::from_str(to.as_str()).expect("a URL is a header value"),
        ),
    );
    sandbox
}

fn following_client() -> ReqwestClient {
    ReqwestClient::from_client(
        reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::limited(5))
            .build()
            .expect("builds"),
    )
}

fn refresh_request(url: &url::Url) -> http::Request<Vec<u8>> {
    http::Request::post(url.as_str())
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .header(
            http::header::AUTHORIZATION,
            format!("Basic {CLIENT_SECRET}"),
        )
        .body(format!("grant_type=refresh_token&refresh_token={REFRESH_TOKEN}").into_bytes())
        .expect("a request")
}

fn assert_no_secret(text: &str) {
    assert!(!text.is_empty());
    for secret in [
        REFRESH_TOKEN,
        CLIENT_SECRET,
        "0123456789abcdef",
        "fedcba9876543210",
    ] {
        assert!(!text.contains(secret), "`{secret}` in {text}");
    }
}

#[tokio::test]
async fn a_following_client_never_resends_the_body_on_307_or_308() {
    let (other, seen) = other_origin().await;
    for status in [
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
    ] {
        let endpoint = redirecting_endpoint(status, &other.url(TOKEN_PATH), 1).await;
        let answer = following_client()
            .send(refresh_request(&endpoint.url(TOKEN_PATH)))
            .await
            .expect("the redirect itself is the answer");
        assert_eq!(answer.status(), status);
        assert_eq!(endpoint.calls(TOKEN_PATH), 1, "{status}");
        assert!(seen.lock().unwrap().is_empty(), "{status}: {seen:?}");
    }
}

#[tokio::test]
async fn an_answer_from_another_origin_is_a_transport_error_never_read() {
    let (other, seen) = other_origin().await;
    for status in [
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
    ] {
        seen.lock().unwrap().clear();
        let endpoint = redirecting_endpoint(status, &other.url(TOKEN_PATH), 1).await;
        let error = following_client()
            .send(refresh_request(&endpoint.url(TOKEN_PATH)))
            .await
            .expect_err("another origin's answer is refused");
        assert_eq!(error.kind, ErrorKind::Misconfigured, "{status}: {error}");
        let shown = format!("{error} {error:?}");
        assert!(
            shown.contains(other.base_url().as_str().trim_end_matches('/')),
            "{shown}"
        );
        assert!(
            !shown.contains("invalid_grant"),
            "the body was read: {shown}"
        );
        assert_no_secret(&shown);
        // reqwest turned the POST into a GET without the body, and dropped `Authorization`.
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 1, "{status}: {seen:?}");
        assert_eq!(seen[0].method, http::Method::GET, "{status}");
        assert!(seen[0].text.contains("GET /token"), "{:?}", seen[0]);
        assert_no_secret(&seen[0].text);
    }
}

/// A token request whose secret travels in the query (WeChat's GET refresh), through a
/// wrapped client that follows a redirect to another origin: nothing of the query reaches
/// that origin. reqwest writes the previous URL, query included, into the `Referer` of the
/// request it follows with, unless the client was built with `.referer(false)`.
async fn query_secret_sent_elsewhere(client: ReqwestClient) -> Vec<Seen> {
    let (other, seen) = other_origin().await;
    for status in [
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
        StatusCode::TEMPORARY_REDIRECT,
    ] {
        let endpoint = redirecting_endpoint(status, &other.url(TOKEN_PATH), 1).await;
        let mut url = endpoint.url(TOKEN_PATH);
        url.query_pairs_mut()
            .append_pair("grant_type", "refresh_token")
            .append_pair("refresh_token", REFRESH_TOKEN);
        let request = http::Request::get(url.as_str())
            .body(Vec::new())
            .expect("a request");
        let error = client.send(request).await.expect_err("another origin");
        assert_eq!(error.kind, ErrorKind::Misconfigured, "{status}: {error}");
    }
    let seen = seen.lock().unwrap().clone();
    seen.into_iter()
        .filter(|seen| seen.text.contains(REFRESH_TOKEN))
        .collect()
}

#[tokio::test]
#[ignore = "reqwest sends the previous URL, query included, as `Referer` on a redirect it follows, and a built client's setting cannot be changed: `ReqwestClient::from_client` documents building it with `.referer(false)`"]
async fn a_following_client_sends_no_query_secret_to_another_origin() {
    let leaked = query_secret_sent_elsewhere(following_client()).await;
    assert!(leaked.is_empty(), "{leaked:?}");
}

/// The same client built as `from_client` asks, with `.referer(false)`: the query stays home.
#[tokio::test]
async fn a_following_client_without_referer_sends_no_query_secret_to_another_origin() {
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::limited(5))
        .referer(false)
        .build()
        .expect("builds");
    let leaked = query_secret_sent_elsewhere(ReqwestClient::from_client(client)).await;
    assert!(leaked.is_empty(), "{leaked:?}");
}

#[tokio::test]
async fn the_default_client_follows_no_redirect() {
    let (other, seen) = other_origin().await;
    for status in [StatusCode::FOUND, StatusCode::TEMPORARY_REDIRECT] {
        let endpoint = redirecting_endpoint(status, &other.url(TOKEN_PATH), 1).await;
        let answer = ReqwestClient::new()
            .expect("builds")
            .send(refresh_request(&endpoint.url(TOKEN_PATH)))
            .await
            .expect("the redirect itself is the answer");
        assert_eq!(answer.status(), status);
    }
    assert!(seen.lock().unwrap().is_empty(), "{seen:?}");
}

#[tokio::test]
async fn a_body_that_is_never_replayed_is_still_sent_with_its_length() {
    let (other, seen) = other_origin().await;
    let request = refresh_request(&other.url(TOKEN_PATH));
    let length = request.body().len().to_string();
    let answer = following_client().send(request).await.expect("an answer");
    assert_eq!(answer.status(), StatusCode::BAD_REQUEST);
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].content_length.as_deref(), Some(length.as_str()));
    assert!(!seen[0].chunked, "{:?}", seen[0]);
    assert!(
        seen[0]
            .text
            .ends_with(&format!("refresh_token={REFRESH_TOKEN}"))
    );
}

/// A redirect a wrapped client follows to another path of the same origin (a trailing slash
/// added, a login page) is no answer to the refresh either: the request that path got is a
/// bodiless `GET`, and its answer (here `invalid_grant`, as a server says of a request without
/// a refresh token) is never read as the provider's verdict on the token.
#[tokio::test]
async fn a_redirect_followed_within_the_origin_is_no_verdict_either() {
    let invalid_grant = |_: http::Request<Vec<u8>>, _: SandboxContext| async {
        json_response(
            StatusCode::BAD_REQUEST,
            &serde_json::json!({"error": "invalid_grant"}),
        )
    };
    for status in [
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
    ] {
        let endpoint = Sandbox::builder()
            .route_any("/token/", invalid_grant)
            .start()
            .await
            .expect("the sandbox starts");
        let to = endpoint.url("/token/");
        endpoint.fail_next(
            TOKEN_PATH,
            10,
            Failure::new(status).with_header(
                LOCATION,
                HeaderValue::from_str(to.as_str()).expect("a header value"),
            ),
        );
        let manager = manager(endpoint.base_url(), following_client());
        manager.insert("s", session()).await.expect("inserts");
        let error = manager.refresh_now("s").await.expect_err("no answer");
        assert_ne!(error.kind(), ErrorKind::ReauthRequired, "{status}: {error}");
        assert!(error.reauth().is_none(), "{status}: {error}");
        assert_eq!(endpoint.calls("/token/"), 1, "{status}: followed once");
        let kept = manager.token_set("s").await.expect("the session is kept");
        assert_eq!(
            kept.refresh_token.as_ref().map(RefreshToken::expose_secret),
            Some(REFRESH_TOKEN),
            "{status}"
        );
    }
}

/// A redirect a wrapped client follows away and back to the token URL (a single sign-on
/// gateway's round trip): the answer comes from the URL the refresh was sent to, but to the
/// bodiless `GET` the client made last, and its `invalid_grant` is no verdict on the token.
#[tokio::test]
#[ignore = "known fault: reqwest keeps no redirect history, so a wrapped client's round trip \
            back to the token URL cannot be told from a direct answer; the default client \
            follows no redirect"]
async fn a_redirect_round_trip_back_to_the_token_url_is_no_verdict() {
    let calls = Arc::new(std::sync::atomic::AtomicU32::new(0));
    let counted = calls.clone();
    let endpoint = Sandbox::builder()
        .oauth_routes(false)
        .api_routes(false)
        .route_any(
            TOKEN_PATH,
            move |_: http::Request<Vec<u8>>, _: SandboxContext| {
                let first = counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst) == 0;
                async move {
                    if first {
                        let mut away = http::Response::new(Vec::new());
                        *away.status_mut() = StatusCode::FOUND;
                        away.headers_mut()
                            .insert(LOCATION, HeaderValue::from_static("/sso"));
                        return away;
                    }
                    json_response(
                        StatusCode::BAD_REQUEST,
                        &serde_json::json!({"error": "invalid_grant"}),
                    )
                }
            },
        )
        .route_any(
            "/sso",
            |_: http::Request<Vec<u8>>, _: SandboxContext| async {
                let mut back = http::Response::new(Vec::new());
                *back.status_mut() = StatusCode::FOUND;
                back.headers_mut()
                    .insert(LOCATION, HeaderValue::from_static(TOKEN_PATH));
                back
            },
        )
        .start()
        .await
        .expect("the sandbox starts");
    let manager = manager(endpoint.base_url(), following_client());
    manager.insert("s", session()).await.expect("inserts");
    let error = manager.refresh_now("s").await.expect_err("no answer");
    assert_eq!(
        calls.load(std::sync::atomic::Ordering::SeqCst),
        2,
        "sent, and back"
    );
    assert_ne!(error.kind(), ErrorKind::ReauthRequired, "{error}");
    assert!(error.reauth().is_none(), "{error}");
}

/// A manager of an OAuth 2.0 client whose token endpoint is `{base_url}/token`.
fn manager(base_url: url::Url, client: ReqwestClient) -> TokenManager<OAuth2> {
    let token_url = base_url
        .join(TOKEN_PATH.trim_start_matches('/'))
        .expect("a token URL");
    let config =
        OAuth2Config::new("app", token_url).with_client_secret(ClientSecret::new(CLIENT_SECRET));
    TokenManager::builder(OAuth2::new(config))
        .client(client)
        .build()
        .expect("the manager builds")
}

fn session() -> TokenSet {
    TokenSet::new(AccessToken::new("at-still-valid"))
        .with_refresh_token(RefreshToken::new(REFRESH_TOKEN))
        .with_access_expires_at(time::OffsetDateTime::now_utc() + time::Duration::hours(1))
}

#[tokio::test]
async fn another_origins_invalid_grant_never_ends_the_session() {
    let (other, seen) = other_origin().await;

    // Control: the other origin's answer, read as the provider's, would end the session.
    let direct = manager(other.base_url(), following_client());
    direct.insert("s", session()).await.expect("inserts");
    let error = direct.refresh_now("s").await.expect_err("invalid_grant");
    assert_eq!(error.kind(), ErrorKind::ReauthRequired, "{error}");
    seen.lock().unwrap().clear();

    for status in [
        StatusCode::MOVED_PERMANENTLY,
        StatusCode::FOUND,
        StatusCode::SEE_OTHER,
        StatusCode::TEMPORARY_REDIRECT,
        StatusCode::PERMANENT_REDIRECT,
    ] {
        let endpoint = redirecting_endpoint(status, &other.url(TOKEN_PATH), 10).await;
        let manager = manager(endpoint.base_url(), following_client());
        manager.insert("s", session()).await.expect("inserts");
        let error = manager.refresh_now("s").await.expect_err("no answer");
        assert!(
            matches!(error.kind(), ErrorKind::Misconfigured | ErrorKind::Rejected),
            "{status}: {error}"
        );
        assert!(error.reauth().is_none(), "{status}: {error}");
        let shown = format!("{error} {error:?}");
        assert!(
            shown.contains(&status.as_u16().to_string()) || shown.contains("origin"),
            "{shown}"
        );
        assert_no_secret(&shown);
        // The session is intact: same refresh token, and its access token is still served.
        let kept = manager.token_set("s").await.expect("the session is kept");
        assert_eq!(
            kept.refresh_token.as_ref().map(RefreshToken::expose_secret),
            Some(REFRESH_TOKEN),
            "{status}"
        );
        assert_eq!(
            manager
                .access_token("s")
                .await
                .expect("served")
                .expose_secret(),
            "at-still-valid"
        );
        // The refresh token never reached the other origin; at most a bodiless GET did.
        for request in seen.lock().unwrap().drain(..) {
            assert_eq!(request.method, http::Method::GET, "{status}: {request:?}");
            assert_no_secret(&request.text);
        }
    }
}
