//! The manager drives the OAuth 2.0 provider against its sandbox on tokio's paused clock:
//! first tokens (PKCE code exchange, client credentials), proactive refresh, rotation, faults
//! and re-auth, with the sandbox's call counts as evidence.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use token_core::issuer::IssuerConfig;
use token_core::oauth::TOKEN_PATH;
use token_core::sandbox::oauth::AUTHORIZE_PATH;
use token_core::sandbox::{Failure, RunningSandbox, Sandbox, json_response};
use token_core::{
    clock::Clock, error::ErrorKind, manager::Event, manager::TokenManager, provider::Provider,
    secret::AuthCode, token_set::TokenSet,
};
use token_provider_oauth2::{OAuth2, OAuth2Config};
use token_test_support::events::{assert_no_reauth, drain};
use token_test_support::harness::{self, accepted, paused_clock, seed};

const HOUR: Duration = Duration::from_secs(3600);

async fn sandbox(clock: &Arc<dyn Clock>, issuer: IssuerConfig) -> RunningSandbox {
    token_provider_oauth2::sandbox::start(clock.clone(), issuer)
        .await
        .unwrap()
}

/// A confidential client of `sandbox`.
fn config(sandbox: &RunningSandbox) -> OAuth2Config {
    token_provider_oauth2::sandbox::config(sandbox, "app-1").with_client_secret("s3cret".into())
}

fn manager(
    sandbox: &RunningSandbox,
    clock: &Arc<dyn Clock>,
    config: OAuth2Config,
) -> TokenManager<OAuth2> {
    harness::manager(OAuth2::new(config), sandbox, clock)
}

/// A manager whose `session` holds a pair the sandbox issued (as after a login).
async fn seeded(
    sandbox: &RunningSandbox,
    clock: &Arc<dyn Clock>,
    config: OAuth2Config,
    session: &str,
) -> (TokenManager<OAuth2>, TokenSet) {
    let manager = manager(sandbox, clock, config);
    let first = seed(&manager, sandbox, session, json!({})).await;
    (manager, first)
}

#[tokio::test(start_paused = true)]
async fn first_tokens_come_from_an_authorization_code_with_pkce() {
    let clock = paused_clock();
    let sandbox = sandbox(&clock, IssuerConfig::default()).await;
    let config = config(&sandbox)
        .with_redirect_uri("https://app.example/callback")
        .with_scope("payments");
    assert_eq!(config.authorize_url, Some(sandbox.url(AUTHORIZE_PATH)));
    let manager = manager(&sandbox, &clock, config);
    let provider = manager.provider();

    // The user follows the authorization URL; the sandbox approves and redirects back.
    let authorization = provider.authorization_request("alice").unwrap();
    let callback_code = authorize(&sandbox, &authorization.url).await;

    let cx = manager.call_context("alice");
    let set = provider
        .exchange_code(&cx, &callback_code, Some(&authorization.verifier))
        .await
        .unwrap();
    manager.insert("alice", set).await.unwrap();
    let token = manager.access_token("alice").await.unwrap();
    let grant = sandbox
        .issuer()
        .authenticate(token.expose_secret())
        .await
        .unwrap();
    assert_eq!(grant.subject, "sandbox-user");
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);

    // A code is single use.
    let error = provider
        .exchange_code(&cx, &callback_code, Some(&authorization.verifier))
        .await
        .unwrap_err();
    assert_eq!(error.provider_code(), Some("invalid_grant"));
    // And it only works with the verifier whose challenge the authorization request carried.
    let other = provider.authorization_request("alice").unwrap();
    let stolen_code = authorize(&sandbox, &other.url).await;
    let error = provider
        .exchange_code(&cx, &stolen_code, Some(&authorization.verifier))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(sandbox.calls(TOKEN_PATH), 3);
}

/// Follows an authorization URL as a browser would; returns the code of the redirect.
async fn authorize(sandbox: &RunningSandbox, url: &url::Url) -> AuthCode {
    let mut request = http::Request::new(Vec::new());
    *request.uri_mut() = url.as_str().parse().unwrap();
    let answer = sandbox.client().send(request).await.unwrap();
    assert_eq!(answer.status(), StatusCode::FOUND);
    let location: url::Url = answer.headers()["location"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        location
            .as_str()
            .starts_with("https://app.example/callback?")
    );
    let query: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(query["state"], "alice");
    AuthCode::new(query["code"].clone())
}

/// RFC 6749 section 4.4.3: a `client_credentials` answer carries no refresh token. The
/// manager obtains the first set with the grant, and at expiry obtains the next one the
/// same way, never asking for re-authorization.
#[tokio::test(start_paused = true)]
async fn client_credentials_issue_the_first_set_and_the_next_one_at_expiry_without_a_refresh_token()
{
    let clock = paused_clock();
    let sandbox = sandbox(&clock, IssuerConfig::default()).await;
    let config = config(&sandbox).with_client_credentials(true);
    let manager = manager(&sandbox, &clock, config);
    let mut events = manager.subscribe();
    let first = manager.access_token("service").await.unwrap();
    let grant = sandbox
        .issuer()
        .authenticate(first.expose_secret())
        .await
        .unwrap();
    assert_eq!(grant.subject, "app-1");
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
    let set = manager.token_set("service").await.unwrap();
    assert_eq!(set.refresh_token, None, "RFC 6749 section 4.4.3");

    tokio::time::advance(HOUR).await;
    let token = manager.access_token("service").await.unwrap();
    assert_ne!(token, first);
    assert!(accepted(&sandbox, &token).await);
    assert_eq!(sandbox.calls(TOKEN_PATH), 2, "issue, issue");
    assert_no_reauth(&drain(&mut events));
}

/// A server whose endpoints are not `/token` and `/authorize` (GitHub's paths): every grant
/// goes to the configured token URL, and the authorization URL is the configured one.
#[tokio::test(start_paused = true)]
async fn grants_go_to_a_token_url_whose_path_is_not_token() {
    const GITHUB_TOKEN: &str = "/login/oauth/access_token";
    const GITHUB_AUTHORIZE: &str = "/login/oauth/authorize";
    let clock = paused_clock();
    let sandbox = token_core::sandbox::oauth::routes_at(
        Sandbox::builder().clock(clock.clone()).oauth_routes(false),
        GITHUB_TOKEN,
        GITHUB_AUTHORIZE,
    )
    .start()
    .await
    .unwrap();
    let config = OAuth2Config::new("app-1", sandbox.url(GITHUB_TOKEN))
        .with_client_secret("s3cret".into())
        .with_authorize_url(sandbox.url(GITHUB_AUTHORIZE))
        .with_redirect_uri("https://app.example/callback")
        .with_client_credentials(true);
    let manager = manager(&sandbox, &clock, config);
    let provider = manager.provider();
    assert_eq!(provider.token_url().path(), GITHUB_TOKEN);

    // The authorization code flow, on GitHub's paths.
    let authorization = provider.authorization_request("alice").unwrap();
    assert_eq!(authorization.url.path(), GITHUB_AUTHORIZE);
    let code = authorize(&sandbox, &authorization.url).await;
    let set = provider
        .exchange_code(
            &manager.call_context("alice"),
            &code,
            Some(&authorization.verifier),
        )
        .await
        .unwrap();
    manager.insert("alice", set.clone()).await.unwrap();

    // A refresh, and a client_credentials issue.
    tokio::time::advance(HOUR).await;
    let refreshed = manager.access_token("alice").await.unwrap();
    assert_ne!(refreshed, set.access_token);
    let service = manager.access_token("service").await.unwrap();
    for token in [&refreshed, &service] {
        assert!(accepted(&sandbox, token).await);
    }
    assert_eq!(
        sandbox.calls(GITHUB_TOKEN),
        3,
        "code, refresh, client_credentials"
    );
    assert_eq!(sandbox.calls(TOKEN_PATH), 0);
}

#[tokio::test(start_paused = true)]
async fn a_token_near_expiry_is_refreshed_in_the_background() {
    let clock = paused_clock();
    let sandbox = sandbox(&clock, IssuerConfig::default()).await;
    let (manager, first) = seeded(&sandbox, &clock, config(&sandbox), "s").await;
    let mut events = manager.subscribe();
    tokio::time::advance(HOUR - Duration::from_secs(30)).await;

    // Still valid: the caller gets it at once, and one refresh starts behind it.
    let token = manager.access_token("s").await.unwrap();
    assert_eq!(token, first.access_token);
    let event = events.recv().await.unwrap();
    assert!(
        matches!(
            event,
            Event::Refreshed {
                rotated: true,
                issued: false,
                ..
            }
        ),
        "{event:?}"
    );
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
    let fresh = manager.access_token("s").await.unwrap();
    assert_ne!(fresh, first.access_token);
    assert!(accepted(&sandbox, &fresh).await);
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
}

#[tokio::test(start_paused = true)]
async fn every_refresh_rotates_and_the_used_refresh_token_dies() {
    let clock = paused_clock();
    let sandbox = sandbox(&clock, IssuerConfig::default()).await;
    let (manager, first) = seeded(&sandbox, &clock, config(&sandbox), "s").await;
    let mut previous = first.refresh_token.unwrap();
    for round in 1..=5 {
        tokio::time::advance(HOUR).await;
        let set = manager.token_set("s").await.unwrap();
        let current = set.refresh_token.unwrap();
        assert_ne!(current, previous, "round {round}");
        assert!(
            sandbox
                .issuer()
                .refresh(previous.expose_secret())
                .await
                .is_err()
        );
        assert_eq!(sandbox.calls(TOKEN_PATH), round);
        previous = current;
    }
}

#[tokio::test(start_paused = true)]
async fn a_5xx_is_retried() {
    let clock = paused_clock();
    let sandbox = sandbox(&clock, IssuerConfig::default()).await;
    let (manager, first) = seeded(&sandbox, &clock, config(&sandbox), "s").await;
    tokio::time::advance(HOUR).await;
    sandbox.fail_next(TOKEN_PATH, 1, Failure::service_unavailable());
    let token = manager.access_token("s").await.unwrap();
    assert_ne!(token, first.access_token);
    assert_eq!(sandbox.calls(TOKEN_PATH), 2);
}

#[tokio::test(start_paused = true)]
async fn a_429_waits_for_its_retry_after() {
    let clock = paused_clock();
    let sandbox = sandbox(&clock, IssuerConfig::default()).await;
    let (manager, _) = seeded(&sandbox, &clock, config(&sandbox), "s").await;
    tokio::time::advance(HOUR).await;
    sandbox.fail_next(
        TOKEN_PATH,
        1,
        Failure::new(StatusCode::TOO_MANY_REQUESTS)
            .with_retry_after(7)
            .with_json(&json!({"error": "slow_down"})),
    );
    let started = tokio::time::Instant::now();
    manager.access_token("s").await.unwrap();
    assert_eq!(sandbox.calls(TOKEN_PATH), 2);
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_inside_the_declared_reuse_window_recovers() {
    let clock = paused_clock();
    let window = Duration::from_secs(300);
    let sandbox = sandbox(&clock, IssuerConfig::default().with_reuse_window(window)).await;
    let config = config(&sandbox).with_reuse_window(Duration::from_secs(300));
    let (manager, _) = seeded(&sandbox, &clock, config, "s").await;
    let mut events = manager.subscribe();
    tokio::time::advance(HOUR).await;
    sandbox.drop_next(TOKEN_PATH, 1);
    let token = manager.access_token("s").await.unwrap();
    assert_eq!(
        sandbox.calls(TOKEN_PATH),
        2,
        "the lost call and one retry with the same refresh token"
    );
    assert!(accepted(&sandbox, &token).await);
    assert_no_reauth(&drain(&mut events));
    // The recovered pair is the live one: the next refresh works.
    tokio::time::advance(HOUR).await;
    manager.access_token("s").await.unwrap();
    assert_eq!(sandbox.calls(TOKEN_PATH), 3);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_without_a_reuse_window_is_not_retried_blindly() {
    let clock = paused_clock();
    let sandbox = sandbox(&clock, IssuerConfig::default()).await;
    let (manager, _) = seeded(&sandbox, &clock, config(&sandbox), "s").await;
    tokio::time::advance(HOUR).await;
    sandbox.drop_next(TOKEN_PATH, 1);
    let error = manager.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown);
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
    // Callers get the same answer for the failure cooldown; then the next attempt runs.
    tokio::time::advance(token_core::manager::ManagerConfig::default().failure_cooldown).await;
    // The server did rotate: the old refresh token is now refused.
    let error = manager.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(sandbox.calls(TOKEN_PATH), 2);
}

#[tokio::test(start_paused = true)]
async fn an_expired_refresh_token_asks_for_reauth_with_the_authorize_url() {
    let clock = paused_clock();
    let issuer = IssuerConfig::default().with_refresh_ttl(Some(2 * HOUR));
    let sandbox = sandbox(&clock, issuer).await;
    let config =
        config(&sandbox).with_authorize_url("https://id.example/authorize".parse().unwrap());
    let manager = manager(&sandbox, &clock, config);
    let mut events = manager.subscribe();
    // The client is not told when the refresh token expires: the server's answer decides.
    let mut first = TokenSet::from_stored(sandbox.issue("s").await.unwrap()).unwrap();
    first.refresh_expires_at = None;
    manager.insert("s", first).await.unwrap();
    tokio::time::advance(3 * HOUR).await;

    let error = manager.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(error.provider_code(), Some("invalid_grant"));
    let url = error.reauth().unwrap().authorize_url.clone().unwrap();
    assert!(url.starts_with("https://id.example/authorize?response_type=code&client_id=app-1"));
    assert!(url.ends_with("state=s"));
    assert!(matches!(
        events.recv().await.unwrap(),
        Event::ReauthRequired(_)
    ));
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
    // The dead session is not refreshed again.
    assert_eq!(
        manager.access_token("s").await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
}

#[tokio::test(start_paused = true)]
async fn a_known_refresh_expiry_is_tried_once_and_the_refusal_is_the_verdict() {
    let clock = paused_clock();
    let issuer = IssuerConfig::default().with_refresh_ttl(Some(2 * HOUR));
    let sandbox = sandbox(&clock, issuer).await;
    let (manager, first) = seeded(&sandbox, &clock, config(&sandbox), "s").await;
    assert!(first.refresh_expires_at.is_some());
    tokio::time::advance(3 * HOUR).await;
    let error = manager.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(sandbox.calls(TOKEN_PATH), 1, "one try: the server decides");
    let again = manager.access_token("s").await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::ReauthRequired);
    assert_eq!(sandbox.calls(TOKEN_PATH), 1, "and the verdict is kept");
}

#[tokio::test(start_paused = true)]
async fn an_answer_without_refresh_token_keeps_the_previous_one() {
    // A server that answers 201 Created, as text/plain, with no refresh token and a string
    // lifetime.
    let clock = paused_clock();
    let sandbox = Sandbox::builder()
        .clock(clock.clone())
        .oauth_routes(false)
        .route(http::Method::POST, TOKEN_PATH, |_request, _cx| async {
            let mut answer = json_response(
                StatusCode::CREATED,
                &json!({"access_token": "at-2", "expires_in": "600", "token_type": "bearer"}),
            );
            answer
                .headers_mut()
                .insert("content-type", "text/plain".parse().unwrap());
            answer
        })
        .start()
        .await
        .unwrap();
    let manager = manager(&sandbox, &clock, config(&sandbox));
    let first = TokenSet::new("at-1".into())
        .with_refresh_token("rt-1".into())
        .with_access_expires_at(clock.now() + time::Duration::minutes(1));
    manager.insert("s", first).await.unwrap();
    tokio::time::advance(Duration::from_secs(61)).await;

    let set = manager.token_set("s").await.unwrap();
    assert_eq!(set.access_token.expose_secret(), "at-2");
    assert_eq!(set.refresh_token.unwrap().expose_secret(), "rt-1");
    assert_eq!(
        set.access_expires_at,
        Some(clock.now() + time::Duration::minutes(10))
    );
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
    assert_eq!(manager.provider().name(), "oauth2");
}

/// The issuer side, met with a refresh token holding control characters (a client may now
/// hold and present one): it arrives percent-encoded, is looked up like any unknown token
/// and refused `invalid_grant` (a re-auth verdict), never a server error; nothing is issued,
/// and the verdict names no token.
#[tokio::test(start_paused = true)]
async fn the_sandbox_refuses_an_unknown_refresh_token_with_control_characters_as_invalid_grant() {
    let clock = paused_clock();
    let sandbox = sandbox(&clock, IssuerConfig::default()).await;
    let manager = manager(&sandbox, &clock, config(&sandbox));
    let raw = "rt-\r\n\0\u{7f}SECRETSECRET";
    let set = TokenSet::new(token_core::secret::AccessToken::new(""))
        .with_refresh_token(token_core::secret::RefreshToken::new(raw))
        .with_access_expires_at(time::OffsetDateTime::UNIX_EPOCH);
    manager.insert("s", set).await.unwrap();
    let error = manager.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired, "{error}");
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
}

/// RFC 6749 section 3.2: a token request is `application/x-www-form-urlencoded`. The same
/// form sent with another content type, or none, is refused `invalid_request`, as a real
/// server refuses a body it does not read as a form, and the refresh token is not spent.
#[tokio::test(start_paused = true)]
async fn a_token_request_that_is_not_declared_a_form_is_refused() {
    let clock = paused_clock();
    let sandbox = sandbox(&clock, IssuerConfig::default()).await;
    let issued = sandbox.issue("alice").await.unwrap();
    let token = issued.refresh_token.clone().unwrap();
    let body = format!(
        "grant_type=refresh_token&refresh_token={}",
        token.expose_secret()
    );
    for content_type in [Some("application/json"), Some("text/plain"), None] {
        let mut request = http::Request::builder()
            .method(http::Method::POST)
            .uri(sandbox.url(TOKEN_PATH).as_str());
        if let Some(content_type) = content_type {
            request = request.header(http::header::CONTENT_TYPE, content_type);
        }
        let request = request.body(body.clone().into_bytes()).unwrap();
        let answer = sandbox.client().send(request).await.unwrap();
        assert_eq!(answer.status(), StatusCode::BAD_REQUEST, "{content_type:?}");
        let error: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
        assert_eq!(error["error"], "invalid_request", "{content_type:?}");
    }
    // Declared a form (its parameters may follow), it is served: nothing was spent above.
    let request = http::Request::builder()
        .method(http::Method::POST)
        .uri(sandbox.url(TOKEN_PATH).as_str())
        .header(
            http::header::CONTENT_TYPE,
            "Application/X-WWW-Form-URLEncoded; charset=UTF-8",
        )
        .body(body.into_bytes())
        .unwrap();
    let answer = sandbox.client().send(request).await.unwrap();
    assert_eq!(answer.status(), StatusCode::OK);
}

/// Sessions are kept under the client id at the token endpoint's origin and path: another
/// server knowing the client by the same id keeps its own sessions, and the endpoint's user
/// info and query (which can hold a secret) never reach a store key or a log line.
#[test]
fn the_namespace_is_the_client_at_its_token_endpoint_without_user_info_or_query() {
    use token_core::provider::Provider as _;
    let url = "https://user:pw-CANARY@id.example:8443/realms/a/token?key=q-CANARY#frag";
    let provider = OAuth2::new(OAuth2Config::new("payments", url.parse().unwrap()));
    let client = provider.client_id().unwrap();
    assert_eq!(client, "payments@https://id.example:8443/realms/a/token");
    let manager = token_core::manager::TokenManager::builder(provider)
        .build()
        .unwrap();
    assert_eq!(manager.namespace(), format!("oauth2:{client}"));
    let other = OAuth2::new(OAuth2Config::new(
        "payments",
        "https://id.example:8443/realms/b/token".parse().unwrap(),
    ));
    assert_ne!(other.client_id().unwrap(), client, "another realm");
}

/// Two clients are two namespaces whatever their ids hold: a client id holding `@` and a
/// server's address (`a@https://x.example/y` at `https://z.example/w`) and the client `a`
/// at a token endpoint whose path holds the rest (`https://x.example/y@https://z.example/w`)
/// are not kept as one.
#[test]
fn a_client_id_holding_the_separator_is_not_another_client_at_another_endpoint() {
    use token_core::provider::Provider as _;
    let of = |client: &str, url: &str| {
        OAuth2::new(OAuth2Config::new(client, url.parse().unwrap()))
            .client_id()
            .unwrap()
    };
    let (one, two) = (
        of("a@https://x.example/y", "https://z.example/w"),
        of("a", "https://x.example/y@https://z.example/w"),
    );
    assert_ne!(one, two);
    assert_ne!(
        of("a%40b", "https://z.example/w"),
        of("a@b", "https://z.example/w")
    );
    assert_eq!(
        of("payments", "https://id.example/token"),
        "payments@https://id.example/token",
        "an id without `@` or `%` keeps its namespace"
    );
}

/// A server that echoes the client's HTTP Basic credentials in its refusal, as they travel
/// (Base64 of `id:secret`, without the scheme name before it): the refusal reaches the
/// application without them, as it does through every other provider's call.
#[tokio::test(start_paused = true)]
async fn an_echoed_basic_credential_shows_nowhere_in_the_refusal() {
    let clock = paused_clock();
    let sandbox = Sandbox::builder()
        .clock(clock.clone())
        .oauth_routes(false)
        .route(
            http::Method::POST,
            TOKEN_PATH,
            |request: http::Request<Vec<u8>>, _cx| async move {
                let sent = request.headers()[http::header::AUTHORIZATION]
                    .to_str()
                    .unwrap()
                    .to_owned();
                let credentials = sent.split_once(' ').unwrap().1.to_owned();
                json_response(
                    StatusCode::UNAUTHORIZED,
                    &json!({
                        "error": "invalid_client",
                        "error_description": format!("unknown client credentials {credentials}"),
                    }),
                )
            },
        )
        .start()
        .await
        .unwrap();
    let config = config(&sandbox);
    let header = token_core::oauth::BasicCredentials::new(
        config.client_id.clone(),
        token_core::secret::ClientSecret::new("s3cret"),
    )
    .to_header();
    let credentials = header.split_once(' ').unwrap().1.to_owned();
    let provider = OAuth2::new(config);
    let cx = token_core::provider::CallContext::new(sandbox.client(), clock.clone(), "s");
    let current = TokenSet::new("at-1".into()).with_refresh_token("rt-0123456789".into());
    let error = provider.refresh(&cx, &current).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured, "{error}");
    for shown in [error.to_string(), format!("{error:?}")] {
        assert!(!shown.contains(&credentials[..12]), "{shown}");
    }
}
