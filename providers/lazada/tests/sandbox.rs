//! The manager drives Lazada against its sandbox on tokio's paused clock: every refresh is
//! signed and verified, pairs rotate, a dead refresh token asks the seller to authorize
//! again, faults are retried, and a wrong secret or app key is a misconfiguration.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use serde_json::json;
use token_core::sandbox::{Failure, RunningSandbox};
use token_core::{
    clock::Clock, error::ErrorKind, manager::Event, manager::TokenManager, token_set::TokenSet,
};
use token_provider_lazada::{Lazada, LazadaConfig, LazadaSeller, RefreshAccessToken, sandbox};
use token_test_support::harness::{self, accepted, paused_clock, seed};

const REFRESH_PATH: &str = <RefreshAccessToken as token_core::codec::Endpoint>::PATH;
const DAY: Duration = Duration::from_secs(24 * 3600);

fn app() -> LazadaConfig {
    LazadaConfig::new("123456", "helloworld")
}

async fn start(clock: &Arc<dyn Clock>) -> RunningSandbox {
    sandbox::start(clock.clone(), sandbox::issuer_config(), &app())
        .await
        .unwrap()
}

/// A manager for `config` whose seller session holds a pair the sandbox issued.
async fn seeded(
    sandbox: &RunningSandbox,
    clock: &Arc<dyn Clock>,
    config: LazadaConfig,
) -> (TokenManager<Lazada>, TokenSet<LazadaSeller>) {
    let manager = harness::manager(Lazada::new(sandbox.base_url(), config), sandbox, clock);
    let first = seed(&manager, sandbox, "seller", json!({})).await;
    (manager, first)
}

#[tokio::test(start_paused = true)]
async fn a_signed_refresh_rotates_the_pair_near_expiry() {
    let clock = paused_clock();
    let sandbox = start(&clock).await;
    let (manager, first) = seeded(&sandbox, &clock, app()).await;
    // The app key names the client: another app's sessions in the store are not these.
    assert_eq!(manager.namespace(), "lazada:123456");
    assert_eq!(
        manager.access_token("seller").await.unwrap(),
        first.access_token
    );
    assert_eq!(sandbox.calls(REFRESH_PATH), 0);

    tokio::time::advance(30 * DAY).await;
    let second = manager.token_set("seller").await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(sandbox.calls(REFRESH_PATH), 1);
    assert!(accepted(&sandbox, &second.access_token).await);
    // The old refresh token is dead: the next refresh used the rotated one.
    tokio::time::advance(30 * DAY).await;
    let third = manager.token_set("seller").await.unwrap();
    assert_ne!(third.refresh_token, second.refresh_token);
    assert_eq!(sandbox.calls(REFRESH_PATH), 2);
}

#[tokio::test(start_paused = true)]
async fn an_illegal_refresh_token_asks_the_seller_to_authorize_again() {
    let clock = paused_clock();
    let sandbox = start(&clock).await;
    let (manager, _) = seeded(&sandbox, &clock, app()).await;
    let mut events = manager.subscribe();
    // Past the refresh token's 180 days.
    tokio::time::advance(181 * DAY).await;
    let error = manager.access_token("seller").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(error.provider_code(), Some("IllegalRefreshToken"));
    let Event::ReauthRequired(reauth) = events.recv().await.unwrap() else {
        panic!("expected a re-auth event");
    };
    assert_eq!(reauth.session, "seller");
    assert_eq!(sandbox.calls(REFRESH_PATH), 1);
}

#[tokio::test(start_paused = true)]
async fn a_5xx_and_a_busy_answer_are_retried() {
    let clock = paused_clock();
    let sandbox = start(&clock).await;
    let (manager, first) = seeded(&sandbox, &clock, app()).await;
    tokio::time::advance(30 * DAY).await;
    sandbox.fail_next(REFRESH_PATH, 1, Failure::new(StatusCode::BAD_GATEWAY));
    sandbox.fail_next(
        REFRESH_PATH,
        1,
        Failure::new(StatusCode::OK).with_json(&serde_json::json!({
            "type": "ISP", "code": "ServiceTemporaryUnavailable", "message": "busy", "request_id": "0b1"
        })),
    );
    assert_ne!(
        manager.access_token("seller").await.unwrap(),
        first.access_token
    );
    assert_eq!(sandbox.calls(REFRESH_PATH), 3);
}

#[tokio::test(start_paused = true)]
async fn a_wrong_app_secret_is_refused_by_the_sandbox_as_a_bad_signature() {
    let clock = paused_clock();
    let sandbox = start(&clock).await;
    let (manager, _) = seeded(
        &sandbox,
        &clock,
        LazadaConfig::new("123456", "not-the-secret"),
    )
    .await;
    tokio::time::advance(30 * DAY).await;
    let error = manager.access_token("seller").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    assert_eq!(error.provider_code(), Some("IncompleteSignature"));
    assert!(!format!("{error} {error:?}").contains("not-the-secret"));
    assert_eq!(
        sandbox.calls(REFRESH_PATH),
        1,
        "a misconfiguration is not retried"
    );
}

#[tokio::test(start_paused = true)]
async fn a_wrong_app_key_is_a_misconfiguration() {
    let clock = paused_clock();
    let sandbox = start(&clock).await;
    let (manager, _) = seeded(&sandbox, &clock, LazadaConfig::new("654321", "helloworld")).await;
    tokio::time::advance(30 * DAY).await;
    let error = manager.access_token("seller").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    assert_eq!(error.provider_code(), Some("InvalidAppKey"));
}

/// A request signed by hand at `at`, sent over the loopback socket, and the sandbox's answer
/// as the client reads it.
async fn send_signed_at(
    sandbox: &RunningSandbox,
    session: &TokenSet<LazadaSeller>,
    at: time::OffsetDateTime,
    edit: impl FnOnce(&mut http::Request<Vec<u8>>),
) -> Result<TokenSet<LazadaSeller>, token_core::error::Error> {
    use token_core::codec::{Endpoint, FromContext, RequestContext, decode_response};
    use token_core::transport::HttpClient as _;
    let app = app();
    let cx = RequestContext::for_refresh(&app, session).with_now(at);
    let mut request = RefreshAccessToken::from_context(&cx)
        .unwrap()
        .encode_request(&sandbox.base_url())
        .unwrap();
    edit(&mut request);
    let client = token_core::transport::ReqwestClient::new().unwrap();
    let response = client.send(request).await.unwrap();
    assert_eq!(
        response.status(),
        200,
        "Lazada answers its refusals with 200"
    );
    decode_response::<RefreshAccessToken>(&response, sandbox.clock().now(), &[]).map_err(Into::into)
}

/// Removes the query parameter `name` from `request`.
fn without(request: &mut http::Request<Vec<u8>>, name: &str) {
    let uri = request.uri().to_string();
    let (base, query) = uri.split_once('?').unwrap();
    let prefix = format!("{name}=");
    let kept: Vec<&str> = query
        .split('&')
        .filter(|p| !p.starts_with(&prefix))
        .collect();
    *request.uri_mut() = format!("{base}?{}", kept.join("&")).parse().unwrap();
}

/// Without the query parameter `name`, and signed again over what is left (as a client that
/// signs what it sends would).
fn resigned_without(name: &'static str) -> impl FnOnce(&mut http::Request<Vec<u8>>) {
    use token_core::codec::Endpoint as _;
    move |request| {
        without(request, "sign");
        without(request, name);
        RefreshAccessToken::SIGNATURE
            .unwrap()
            .sign(
                request,
                &token_core::secret::ClientSecret::new("helloworld"),
            )
            .unwrap();
    }
}

#[tokio::test]
async fn the_sandbox_checks_the_signature_and_the_timestamp_as_lazada_documents() {
    let clock: Arc<dyn Clock> = Arc::new(token_core::clock::ManualClock::new(
        token_test_support::harness::START,
    ));
    let sandbox = start(&clock).await;
    let session = TokenSet::from_stored(sandbox.issue("seller").await.unwrap()).unwrap();
    let now = clock.now();
    let refused = |result: Result<_, token_core::error::Error>, code: &str| {
        let error = result.expect_err(code);
        assert_eq!(
            (error.kind(), error.provider_code()),
            (ErrorKind::Misconfigured, Some(code)),
            "{error}"
        );
    };
    // A wrong signature.
    let tampered = |r: &mut http::Request<Vec<u8>>| {
        let uri = r.uri().to_string().replace("&sign=", "&sign=0");
        *r.uri_mut() = uri.parse().unwrap();
    };
    refused(
        send_signed_at(&sandbox, &session, now, tampered).await,
        "IncompleteSignature",
    );
    // No `sign`: "the input parameter “sign” that is mandatory for processing this request
    // is not supplied" (the token creation reference's MissingParameter).
    let unsigned = |r: &mut http::Request<Vec<u8>>| without(r, "sign");
    refused(
        send_signed_at(&sandbox, &session, now, unsigned).await,
        "MissingParameter",
    );
    // No timestamp, the rest signed: a mandatory parameter is missing.
    let untimed = resigned_without("timestamp");
    refused(
        send_signed_at(&sandbox, &session, now, untimed).await,
        "MissingParameter",
    );
    // "less than 7200s difference from UTC time", either way: a request signed 2 h 1 s ago
    // (a replay) or ahead is refused, one signed 1 h ago is served.
    for skew in [
        time::Duration::seconds(7201),
        time::Duration::seconds(-7201),
    ] {
        let error = send_signed_at(&sandbox, &session, now - skew, |_| {})
            .await
            .expect_err("a stale timestamp");
        assert_eq!(error.kind(), ErrorKind::Misconfigured, "{error}");
    }
    assert_eq!(
        sandbox.calls(<RefreshAccessToken as token_core::codec::Endpoint>::PATH),
        5
    );
    let fresh = send_signed_at(&sandbox, &session, now - time::Duration::hours(1), |_| {})
        .await
        .unwrap();
    assert_ne!(fresh.refresh_token, session.refresh_token);
    // The same request again, inside the window: its refresh token was rotated away.
    refused_reauth(
        send_signed_at(&sandbox, &session, now - time::Duration::hours(1), |_| {}).await,
    );
}

fn refused_reauth(result: Result<TokenSet<LazadaSeller>, token_core::error::Error>) {
    let error = result.expect_err("a replayed refresh token");
    assert_eq!(
        (error.kind(), error.provider_code()),
        (ErrorKind::ReauthRequired, Some("IllegalRefreshToken"))
    );
}

/// Token creation names the seller's per-country ids `country_user_info`, the refresh
/// `country_user_info_list`: a refresh answer without the first keeps the session's, so an
/// application reading it after a refresh still finds its seller ids.
#[tokio::test(start_paused = true)]
async fn a_refresh_keeps_the_seller_ids_that_token_creation_gave() {
    let clock = paused_clock();
    let sandbox = start(&clock).await;
    let manager = harness::manager(Lazada::new(sandbox.base_url(), app()), &sandbox, &clock);
    let list = json!([{"country": "sg", "seller_id": "1001", "user_id": "10101"}]);
    let mut created: TokenSet<LazadaSeller> = harness::issued(
        &sandbox,
        "seller",
        json!({"country_user_info_list": list.clone()}),
    )
    .await;
    let ids =
        json!([{"country": "sg", "seller_id": "1001", "user_id": "10101", "short_code": "SG1"}]);
    created.extras.country_user_info = Some(ids.clone());
    manager.insert("seller", created.clone()).await.unwrap();

    tokio::time::advance(30 * DAY).await;
    let refreshed = manager.token_set("seller").await.unwrap();
    assert_ne!(refreshed.refresh_token, created.refresh_token);
    assert_eq!(refreshed.extras.country_user_info_list, Some(list));
    assert_eq!(refreshed.extras.country_user_info, Some(ids));
}
