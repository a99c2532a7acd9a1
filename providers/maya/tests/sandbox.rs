//! `TokenManager<Maya>` against Maya's sandbox on tokio's paused clock: the Session URL, the
//! app token, both refresh shapes, faults and re-auth, with call counts as evidence.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use token_core::error::StoreError;
use token_core::store::{SessionKey, StoredRecord, TokenStore, Version};

use token_core::issuer::IssuerConfig;
use token_core::sandbox::{Failure, RunningSandbox, Sandbox};
use token_core::{clock::Clock, error::ErrorKind, manager::TokenManager, secret::ClientSecret};
use token_provider_maya::sandbox::{MayaSandbox, new_customer};
use token_provider_maya::{
    APP_SESSION, Maya, MayaConfig, RedeemError, RefreshShape, SESSION_URL_NAMESPACE,
    SessionReceiver,
};
use token_test_support::events::{assert_no_reauth, drain};
use token_test_support::harness::{self, accepted, paused_clock};
use token_test_support::stores::{Forwarding, Intercept, backend_error};

const CLIENT: &str = "partner-1";
const SECRET: &str = "partner-secret";
const SESSION_URL: &str = "https://partner.example/maya/session";
/// Maya Connect's token endpoint (app token, OAuth-shaped refresh) and the Mini App refresh.
const CONNECT: &str = "/token";
const TOKENS: &str = "/tokens";

struct World {
    sandbox: RunningSandbox,
    manager: TokenManager<Maya>,
    receiver: SessionReceiver,
}

struct Setup {
    shape: RefreshShape,
    reuse: Duration,
    issuer: IssuerConfig,
    lifetime: Option<Duration>,
    secret: &'static str,
    store: Option<Arc<dyn TokenStore>>,
    /// The partner's client id at Maya.
    client: &'static str,
}

impl Default for Setup {
    fn default() -> Self {
        Self {
            shape: RefreshShape::MiniApp,
            reuse: Duration::ZERO,
            issuer: IssuerConfig::default(),
            lifetime: None,
            secret: SECRET,
            store: None,
            client: CLIENT,
        }
    }
}

async fn world(setup: Setup) -> World {
    let clock = paused_clock();
    let maya = MayaSandbox::new(setup.client, ClientSecret::new(SECRET));
    let sandbox = maya
        .routes(
            Sandbox::builder()
                .clock(clock.clone())
                .issuer_config(setup.issuer.with_reuse_window(setup.reuse)),
        )
        .start()
        .await
        .unwrap();
    let mut config = MayaConfig::new(
        setup.client,
        ClientSecret::new(setup.secret),
        sandbox.base_url(),
    )
    .with_api_url(maya.config(&sandbox).api_url)
    .with_refresh(setup.shape)
    .with_reuse_window(setup.reuse)
    .with_redirect_uri("https://partner.example/maya/callback");
    if let Some(lifetime) = setup.lifetime {
        config = config.with_refresh_token_lifetime(lifetime);
    }
    let provider = Maya::from_config(config, sandbox.client(), clock.clone()).unwrap();
    let manager = match setup.store {
        Some(store) => harness::builder(provider, &sandbox, &clock)
            .shared_store(store)
            .build()
            .unwrap(),
        None => harness::manager(provider, &sandbox, &clock),
    };
    let receiver = SessionReceiver::new(manager.clone());
    World {
        sandbox,
        manager,
        receiver,
    }
}

impl World {
    /// Maya POSTs a new customer's tokens to the Session URL; returns the `sessionId`.
    async fn maya_posts_session(&self, subject: &str) -> String {
        let post = new_customer(&self.sandbox, subject, SESSION_URL)
            .await
            .unwrap();
        let answer = self.receiver.receive(post).await;
        assert_eq!(answer.status(), 200);
        let body: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
        body["sessionId"].as_str().unwrap().to_owned()
    }

    /// A customer logged in and the front-end redeemed the sessionId for `user`.
    async fn customer(&self, user: &str) {
        let session_id = self.maya_posts_session(user).await;
        self.receiver.redeem(&session_id, user).await.unwrap();
    }
}

/// A world whose manager's store is a `MemoryStore` behind `intercept`, and that store.
async fn world_over<I: Intercept + 'static>(intercept: I) -> (Arc<Forwarding<I>>, World) {
    let store = Arc::new(Forwarding::over_memory(intercept));
    let world = world(Setup {
        store: Some(store.clone()),
        ..Setup::default()
    })
    .await;
    (store, world)
}

/// Maya's POST of a session's tokens, `body`, under `reference` (`Request-Reference-No`).
fn session_post(body: &str, reference: &str) -> http::Request<Vec<u8>> {
    let mut post = http::Request::new(body.as_bytes().to_vec());
    *post.method_mut() = http::Method::POST;
    post.headers_mut()
        .insert("Request-Reference-No", reference.parse().unwrap());
    post
}

/// The namespace of the receiver's records for the partner `CLIENT`.
fn records() -> String {
    format!("{SESSION_URL_NAMESPACE}/maya:{CLIENT}")
}

/// A session POST's body with long-lived tokens.
const SESSION_BODY: &str = r#"{"accessToken":"at-1","refreshToken":"rt-1","expiresAt":4102444800}"#;

#[tokio::test(start_paused = true)]
async fn session_url_tokens_are_redeemed_once_then_refreshed_with_the_app_token() {
    let world = world(Setup::default()).await;
    let session_id = world.maya_posts_session("alice").await;
    assert!(session_id.len() <= 255);
    assert_eq!(
        uuid::Uuid::parse_str(&session_id)
            .unwrap()
            .get_version_num(),
        4
    );

    let received = world
        .receiver
        .redeem(&session_id, "user-alice")
        .await
        .unwrap();
    assert!(matches!(
        world.receiver.redeem(&session_id, "mallory").await,
        Err(RedeemError::AlreadyUsed)
    ));
    let first = world.manager.access_token("user-alice").await.unwrap();
    assert_eq!(first, received.access_token);
    assert!(
        world.manager.token_set(&session_id).await.is_err(),
        "the tokens moved away from the sessionId"
    );
    assert_eq!(
        world.sandbox.total_calls(),
        0,
        "no call until a refresh is due"
    );

    tokio::time::advance(Duration::from_secs(3601)).await;
    let second = world.manager.access_token("user-alice").await.unwrap();
    assert_ne!(second, first);
    assert!(accepted(&world.sandbox, &second).await);
    assert!(
        !accepted(&world.sandbox, &first).await,
        "the old pair is invalid"
    );
    assert_eq!(world.sandbox.calls(TOKENS), 1);
    assert_eq!(world.sandbox.calls(CONNECT), 1, "one app token");
    let rotated = world.manager.token_set("user-alice").await.unwrap();
    assert_ne!(rotated.refresh_token, received.refresh_token, "rotated");
}

/// Two partners (two Maya clients), each with a receiver, over one shared store: a
/// `Request-Reference-No` one partner's receiver claimed is nothing to the other's. POSTed
/// there with other tokens (a reference is no secret), it never earns the first partner's
/// `sessionId`; and that `sessionId` cannot be redeemed, nor used up, through the other.
#[tokio::test(start_paused = true)]
async fn a_session_received_for_one_partner_is_not_the_other_partner_s_on_a_shared_store() {
    let store: Arc<dyn TokenStore> = Arc::new(token_core::store::MemoryStore::new());
    let shared = |client| Setup {
        store: Some(store.clone()),
        client,
        ..Setup::default()
    };
    let ours = world(shared(CLIENT)).await;
    let theirs = world(shared("partner-2")).await;
    assert_ne!(ours.manager.namespace(), theirs.manager.namespace());

    let answer = ours
        .receiver
        .receive(session_post(SESSION_BODY, "ref-shared"))
        .await;
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
    let session_id = body["sessionId"].as_str().unwrap().to_owned();

    let forged = r#"{"accessToken":"at-forged","refreshToken":"rt-forged","expiresAt":4102444800}"#;
    let answer = theirs
        .receiver
        .receive(session_post(forged, "ref-shared"))
        .await;
    let text = String::from_utf8_lossy(answer.body()).into_owned();
    assert!(
        !text.contains(&session_id),
        "the other partner's receiver gave away our sessionId: {text}"
    );
    assert!(matches!(
        theirs.receiver.redeem(&session_id, "user-mallory").await,
        Err(RedeemError::Unknown)
    ));
    let received = ours
        .receiver
        .redeem(&session_id, "user-alice")
        .await
        .unwrap();
    assert_eq!(received.access_token.expose_secret(), "at-1");
    assert!(theirs.manager.token_set("user-mallory").await.is_err());
}

#[tokio::test(start_paused = true)]
async fn the_app_token_is_shared_and_renewed_when_it_expires() {
    let world = world(Setup::default()).await;
    world.customer("alice").await;
    world.customer("bob").await;
    tokio::time::advance(Duration::from_secs(3601)).await;
    world.manager.access_token("alice").await.unwrap();
    world.manager.access_token("bob").await.unwrap();
    assert_eq!(world.sandbox.calls(TOKENS), 2);
    assert_eq!(
        world.sandbox.calls(CONNECT),
        1,
        "both refreshes used one app token"
    );

    tokio::time::advance(Duration::from_secs(3601)).await;
    world.manager.access_token("alice").await.unwrap();
    assert_eq!(world.sandbox.calls(TOKENS), 3);
    assert_eq!(
        world.sandbox.calls(CONNECT),
        2,
        "the expired app token was replaced"
    );
}

/// A 401 from `/tokens` is about the bearer, the app token, whatever its body: the app
/// token revoked (Maya's own `invalid_client`), a 401 with no body (an API gateway's, RFC
/// 6750's bare challenge) or one that is not an RFC 6749 error each renew the app token and
/// send the refresh again.
#[tokio::test(start_paused = true)]
async fn a_refused_app_token_is_renewed_and_the_refresh_sent_again_whatever_the_401_says() {
    let injected: [(&str, Option<Failure>); 3] = [
        ("the app token revoked", None),
        (
            "no body",
            Some(Failure::new(http::StatusCode::UNAUTHORIZED).with_header(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_static(r#"Bearer error="invalid_token""#),
            )),
        ),
        (
            "an HTML page",
            Some(
                Failure::new(http::StatusCode::UNAUTHORIZED)
                    .with_body("<html><h1>401 Authorization Required</h1></html>"),
            ),
        ),
    ];
    for (what, failure) in injected {
        let world = world(Setup::default()).await;
        world.customer("alice").await;
        tokio::time::advance(Duration::from_secs(3601)).await;
        match failure {
            Some(failure) => world.sandbox.fail_next(TOKENS, 1, failure),
            None => {
                let app = world
                    .manager
                    .provider()
                    .app_tokens()
                    .access_token(APP_SESSION)
                    .await
                    .unwrap();
                world
                    .sandbox
                    .issuer()
                    .revoke(app.expose_secret())
                    .await
                    .unwrap();
            }
        }
        let token = world
            .manager
            .access_token("alice")
            .await
            .unwrap_or_else(|e| panic!("{what}: {e}"));
        assert!(accepted(&world.sandbox, &token).await, "{what}");
        assert_eq!(
            world.sandbox.calls(TOKENS),
            2,
            "{what}: 401, then the same refresh again"
        );
        assert_eq!(
            world.sandbox.calls(CONNECT),
            2,
            "{what}: the app token renewed"
        );
    }
}

/// A 401 from `/tokens` again after the app token was renewed says the partner may not call
/// it (a client disabled, a scope withdrawn), not that the customer's refresh token is dead
/// (Maya answers that 400 `invalid_token`): whatever its code (RFC 6750's `invalid_token`
/// here), the refresh fails as a misconfiguration, the customer's tokens are kept, no re-auth
/// is signalled, and the session refreshes once Maya takes the app token again.
#[tokio::test(start_paused = true)]
async fn a_401_after_the_app_token_was_renewed_is_no_verdict_on_the_customer() {
    let world = world(Setup::default()).await;
    world.customer("alice").await;
    let mut events = world.manager.subscribe();
    tokio::time::advance(Duration::from_secs(3601)).await;
    let refused = Failure::new(http::StatusCode::UNAUTHORIZED).with_json(&serde_json::json!({
        "error": "invalid_token",
        "error_description": "Invalid access token."
    }));
    world.sandbox.fail_next(TOKENS, 2, refused);
    let error = world.manager.access_token("alice").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured, "{error}");
    assert!(error.reauth().is_none(), "{error}");
    assert_eq!(world.sandbox.calls(TOKENS), 2, "once with each app token");
    assert_no_reauth(&drain(&mut events));
    assert!(
        world
            .manager
            .store()
            .load(&world.manager.session_key("alice"))
            .await
            .unwrap()
            .is_some(),
        "the customer's tokens are kept"
    );
    // Past the manager's memory of the failure, with Maya taking the app token again.
    tokio::time::advance(Duration::from_secs(6)).await;
    let token = world.manager.access_token("alice").await.unwrap();
    assert!(accepted(&world.sandbox, &token).await);
}

/// An app token that could not be had (Maya Connect's answer to the partner's own grant
/// unreadable, every time it was asked) is a transient failure of the customer's refresh,
/// never an unknown outcome: the customer's refresh token was never sent, so nothing of it
/// may have been spent.
#[tokio::test(start_paused = true)]
async fn an_app_token_answer_that_cannot_be_read_is_transient_for_the_customer() {
    let world = world(Setup::default()).await;
    world.customer("alice").await;
    tokio::time::advance(Duration::from_secs(3601)).await;
    // The app token expired with the customer's: renewing it meets an HTML page.
    let page = Failure::new(http::StatusCode::OK).with_body("<html>maintenance</html>");
    world.sandbox.fail_next(CONNECT, 1000, page);
    let error = world.manager.access_token("alice").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient, "{error}");
    assert_eq!(
        world.sandbox.calls(TOKENS),
        0,
        "the customer's token was never sent"
    );
}

#[tokio::test(start_paused = true)]
async fn near_expiry_the_current_token_is_served_while_one_refresh_runs() {
    let world = world(Setup::default()).await;
    world.customer("alice").await;
    let first = world.manager.access_token("alice").await.unwrap();
    tokio::time::advance(Duration::from_secs(3600 - 30)).await;
    assert_eq!(world.manager.access_token("alice").await.unwrap(), first);
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(world.sandbox.calls(TOKENS), 1, "a proactive refresh ran");
    let next = world.manager.access_token("alice").await.unwrap();
    assert_ne!(next, first);
    assert_eq!(world.sandbox.calls(TOKENS), 1);
}

#[tokio::test(start_paused = true)]
async fn a_5xx_and_a_429_with_retry_after_are_retried() {
    let world = world(Setup::default()).await;
    world.customer("alice").await;
    tokio::time::advance(Duration::from_secs(3601)).await;
    world
        .sandbox
        .fail_next(TOKENS, 1, Failure::service_unavailable());
    world.sandbox.fail_next(
        TOKENS,
        1,
        Failure::new(http::StatusCode::TOO_MANY_REQUESTS).with_retry_after(7),
    );
    let started = tokio::time::Instant::now();
    let token = world.manager.access_token("alice").await.unwrap();
    assert!(accepted(&world.sandbox, &token).await);
    assert_eq!(world.sandbox.calls(TOKENS), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_inside_the_reuse_window_recovers() {
    let world = world(Setup {
        reuse: Duration::from_secs(300),
        ..Setup::default()
    })
    .await;
    world.customer("alice").await;
    let mut events = world.manager.subscribe();
    tokio::time::advance(Duration::from_secs(3601)).await;
    world.sandbox.drop_next(TOKENS, 1);
    let token = world.manager.access_token("alice").await.unwrap();
    assert!(accepted(&world.sandbox, &token).await);
    assert_eq!(
        world.sandbox.calls(TOKENS),
        2,
        "lost, then the same refresh token again"
    );
    assert_no_reauth(&drain(&mut events));
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_without_a_reuse_window_is_not_retried() {
    let world = world(Setup::default()).await;
    world.customer("alice").await;
    tokio::time::advance(Duration::from_secs(3601)).await;
    world.sandbox.drop_next(TOKENS, 1);
    let error = world.manager.access_token("alice").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown);
    assert_eq!(world.sandbox.calls(TOKENS), 1);
}

#[tokio::test(start_paused = true)]
async fn an_expired_refresh_token_signals_reauth_with_the_authorize_url() {
    // Maya does not say when the refresh token expires: the client learns it from Maya.
    let world = world(Setup {
        issuer: IssuerConfig::default().with_refresh_ttl(Some(Duration::from_secs(1800))),
        ..Setup::default()
    })
    .await;
    world.customer("user-7").await;
    tokio::time::advance(Duration::from_secs(3601)).await;
    let error = world.manager.access_token("user-7").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(error.provider_code(), Some("invalid_grant"));
    let url = url::Url::parse(error.reauth().unwrap().authorize_url.as_deref().unwrap()).unwrap();
    assert_eq!(url.path(), "/authorize");
    let query: std::collections::HashMap<_, _> = url.query_pairs().into_owned().collect();
    assert_eq!(query["client_id"], CLIENT);
    assert_eq!(query["state"], "user-7");
    assert_eq!(
        query["redirect_uri"],
        "https://partner.example/maya/callback"
    );
    assert_eq!(world.sandbox.calls(TOKENS), 1);
    assert_eq!(
        world
            .manager
            .access_token("user-7")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::ReauthRequired
    );
    assert_eq!(
        world.sandbox.calls(TOKENS),
        1,
        "a dead session is not refreshed again"
    );
}

#[tokio::test(start_paused = true)]
async fn a_known_refresh_token_lifetime_is_watched_on_both_tokens() {
    let world = world(Setup {
        issuer: IssuerConfig::default().with_refresh_ttl(Some(Duration::from_secs(1800))),
        lifetime: Some(Duration::from_secs(1800)),
        ..Setup::default()
    })
    .await;
    let started = world.sandbox.clock().now();
    world.customer("alice").await;
    let set = world.manager.token_set("alice").await.unwrap();
    assert_eq!(
        set.refresh_expires_at,
        Some(started + Duration::from_secs(1800))
    );

    // In use 20 minutes later: the access token is fresh but the refresh token is close to
    // expiry, so the manager refreshes ahead of it.
    tokio::time::advance(Duration::from_secs(1300)).await;
    world.manager.access_token("alice").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(world.sandbox.calls(TOKENS), 1);
    let renewed = world.manager.token_set("alice").await.unwrap();
    assert!(renewed.refresh_expires_at.unwrap() > set.refresh_expires_at.unwrap());

    // Idle past both expiries: the refresh token is tried once (a local expiry is no
    // verdict: a clock can be wrong), Maya refuses it, and that is the re-auth.
    tokio::time::advance(Duration::from_secs(3700)).await;
    let error = world.manager.access_token("alice").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert!(error.reauth().unwrap().authorize_url.is_some());
    assert_eq!(world.sandbox.calls(TOKENS), 2);
    // Said once: no further call.
    let again = world.manager.access_token("alice").await.unwrap_err();
    assert_eq!(again.kind(), ErrorKind::ReauthRequired);
    assert_eq!(world.sandbox.calls(TOKENS), 2);
}

#[tokio::test(start_paused = true)]
async fn the_oauth_shaped_refresh_goes_to_maya_connect() {
    let world = world(Setup {
        shape: RefreshShape::OAuth,
        ..Setup::default()
    })
    .await;
    world.customer("alice").await;
    let first = world.manager.access_token("alice").await.unwrap();
    tokio::time::advance(Duration::from_secs(3601)).await;
    let second = world.manager.access_token("alice").await.unwrap();
    assert_ne!(second, first);
    assert!(accepted(&world.sandbox, &second).await);
    assert_eq!(world.sandbox.calls(CONNECT), 1, "grant_type=refresh_token");
    assert_eq!(world.sandbox.calls(TOKENS), 0);
}

#[tokio::test(start_paused = true)]
async fn bad_client_credentials_are_misconfigured_and_keep_the_session() {
    for shape in [RefreshShape::MiniApp, RefreshShape::OAuth] {
        let world = world(Setup {
            shape,
            secret: "wrong",
            ..Setup::default()
        })
        .await;
        world.customer("alice").await;
        tokio::time::advance(Duration::from_secs(3601)).await;
        let error = world.manager.access_token("alice").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Misconfigured, "{shape:?}: {error}");
        assert_eq!(error.provider_code(), Some("invalid_client"));
        assert_eq!(world.sandbox.calls(CONNECT), 1, "{shape:?}: not retried");
        assert!(
            world
                .manager
                .store()
                .load(&world.manager.session_key("alice"))
                .await
                .unwrap()
                .is_some(),
            "{shape:?}: the customer's tokens are kept"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn the_receiver_refuses_what_is_not_a_maya_session_post() {
    let world = world(Setup::default()).await;
    let post = new_customer(&world.sandbox, "alice", SESSION_URL)
        .await
        .unwrap();
    let reference = post.headers()["Request-Reference-No"].clone();

    let mut get = http::Request::new(Vec::new());
    *get.method_mut() = http::Method::GET;
    assert_eq!(world.receiver.receive(get).await.status(), 405);

    let mut no_reference = http::Request::new(post.body().clone());
    *no_reference.method_mut() = http::Method::POST;
    let answer = world.receiver.receive(no_reference).await;
    assert_eq!(answer.status(), 400);
    assert!(String::from_utf8_lossy(answer.body()).contains("invalid_request"));

    let mut not_tokens = http::Request::new(br#"{"accessToken":1}"#.to_vec());
    *not_tokens.method_mut() = http::Method::POST;
    not_tokens
        .headers_mut()
        .insert("Request-Reference-No", reference.clone());
    assert_eq!(world.receiver.receive(not_tokens).await.status(), 400);

    // Maya sending the same POST again (our answer was lost) gets the same sessionId.
    let again = {
        let mut again = http::Request::new(post.body().clone());
        *again.method_mut() = http::Method::POST;
        *again.headers_mut() = post.headers().clone();
        again
    };
    let first = world.receiver.receive(post).await;
    let second = world.receiver.receive(again).await;
    assert_eq!(first.body(), second.body());
    let id: serde_json::Value = serde_json::from_slice(first.body()).unwrap();
    let id = id["sessionId"].as_str().unwrap();
    assert!(matches!(
        world.receiver.redeem("not-a-session", "u").await,
        Err(RedeemError::Unknown)
    ));
    world.receiver.redeem(id, id).await.unwrap();
    assert!(
        world.manager.access_token(id).await.is_ok(),
        "bound under its own id"
    );
    assert!(matches!(
        world.receiver.redeem(id, "u").await,
        Err(RedeemError::AlreadyUsed)
    ));

    // A sessionId nobody redeems in time is refused.
    let late = world.maya_posts_session("bob").await;
    tokio::time::advance(Duration::from_secs(601)).await;
    assert!(matches!(
        world.receiver.redeem(&late, "u").await,
        Err(RedeemError::Expired)
    ));
    assert_eq!(world.sandbox.total_calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn the_receiver_refuses_empty_tokens_and_gives_no_session_id() {
    let world = world(Setup::default()).await;
    for body in [
        r#"{"accessToken":"","refreshToken":"rt-maya-1","expiresAt":4102444800}"#,
        r#"{"accessToken":"at-maya-1","refreshToken":"","expiresAt":4102444800}"#,
        r#"{"accessToken":" ","refreshToken":"rt-maya-1","expiresAt":4102444800}"#,
    ] {
        let answer = world
            .receiver
            .receive(session_post(body, "ref-empty-1"))
            .await;
        let text = String::from_utf8_lossy(answer.body()).into_owned();
        assert_eq!(answer.status(), 400, "{body}: {text}");
        assert!(text.contains("invalid_request"), "{text}");
        assert!(!text.contains("sessionId"), "{text}");
        assert!(!text.contains("maya-1"), "{text}");
    }
    assert_eq!(world.sandbox.total_calls(), 0);
}

/// A refresh token holding a control character is taken, as `insert` takes it (it travels
/// in Maya's JSON refresh body, escaped, never in a header): the tokens are stored under a
/// new `sessionId`, redeemed, and the access token served; the answer quotes no token. An
/// access token holding one is still refused.
#[tokio::test(start_paused = true)]
async fn the_receiver_takes_a_refresh_token_with_a_control_character() {
    let world = world(Setup::default()).await;
    let body =
        r#"{"accessToken":"at-maya-1","refreshToken":"rt-maya-\r\n1","expiresAt":4102444800}"#;
    let answer = world
        .receiver
        .receive(session_post(body, "ref-ctl-1"))
        .await;
    let text = String::from_utf8_lossy(answer.body()).into_owned();
    assert_eq!(answer.status(), 200, "{text}");
    assert!(!text.contains("maya-"), "{text}");
    let id: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
    let id = id["sessionId"].as_str().unwrap();
    let set = world.receiver.redeem(id, "u-ctl").await.unwrap();
    assert_eq!(
        set.refresh_token.as_ref().map(|t| t.expose_secret()),
        Some("rt-maya-\r\n1")
    );
    let token = world.manager.access_token("u-ctl").await.unwrap();
    assert_eq!(token.expose_secret(), "at-maya-1");
    let body = r#"{"accessToken":"at-maya-\n2","refreshToken":"rt-maya-2","expiresAt":4102444800}"#;
    let answer = world
        .receiver
        .receive(session_post(body, "ref-ctl-2"))
        .await;
    assert_eq!(answer.status(), 400);
    assert!(!String::from_utf8_lossy(answer.body()).contains("maya-"));
    assert_eq!(world.sandbox.total_calls(), 0);
}

/// Maya's POST carries no credential: whoever finds the Session URL can POST to it. A flood
/// of new references is bounded: with 1000 sessions remembered, a new reference is answered
/// 503 and stores nothing (the receiver's index record stops growing), Maya's retry of a
/// reference it already sent still gets its `sessionId`, and once the flood's sessions lapse
/// new references are taken again.
#[tokio::test(start_paused = true)]
async fn a_flood_of_new_references_is_bounded_and_lapses() {
    let world = world(Setup::default()).await;
    let post = |reference: &str| {
        let body = r#"{"accessToken":"at-flood","refreshToken":"rt-flood","expiresAt":4102444800}"#;
        session_post(body, reference)
    };
    let store = world.manager.store().clone();
    let key = |name: &str| token_core::store::SessionKey::new(records(), name);
    let remembered = async || {
        let index = store.load(&key("index")).await.unwrap();
        index.map_or(0, |found| {
            let value = found.value.into_coordination().unwrap();
            value["sessions"].as_array().unwrap().len()
        })
    };

    let mut first_id = None;
    for i in 0..1000 {
        let answer = world.receiver.receive(post(&format!("flood-{i}"))).await;
        assert_eq!(answer.status(), 200, "POST {i}");
        first_id.get_or_insert_with(|| answer.body().clone());
    }
    assert_eq!(remembered().await, 1000);

    let refused = world.receiver.receive(post("flood-1000")).await;
    assert_eq!(refused.status(), 503);
    assert!(!String::from_utf8_lossy(refused.body()).contains("sessionId"));
    assert_eq!(remembered().await, 1000, "the index did not grow");
    assert!(store.load(&key("ref:flood-1000")).await.unwrap().is_none());

    let retry = world.receiver.receive(post("flood-0")).await;
    assert_eq!(retry.status(), 200, "a known reference is still answered");
    assert_eq!(Some(retry.body()), first_id.as_ref());

    // Twice `redeem_within` later the flood is forgotten, tokens and all.
    tokio::time::advance(Duration::from_secs(1201)).await;
    let late = world.receiver.receive(post("late")).await;
    assert_eq!(late.status(), 200);
    assert_eq!(remembered().await, 1);
    assert_eq!(world.sandbox.total_calls(), 0);
}

/// Lets the other tasks run before every load, as a store across a network would.
#[derive(Default)]
struct YieldingLoads;

#[async_trait]
impl Intercept for YieldingLoads {
    async fn load(&self, _key: &SessionKey) -> Result<(), StoreError> {
        tokio::task::yield_now().await;
        Ok(())
    }
}

/// New references POSTed at once are bounded too: no more sessions are kept than
/// `with_max_sessions` allows, whatever number arrive while the count is being read.
#[tokio::test(start_paused = true)]
async fn new_references_posted_at_once_are_bounded() {
    let (store, world) = world_over(YieldingLoads).await;
    let receiver = SessionReceiver::new(world.manager.clone()).with_max_sessions(2);
    let post = |reference: &str| receiver.receive(session_post(SESSION_BODY, reference));
    let answers = tokio::join!(
        post("at-once-0"),
        post("at-once-1"),
        post("at-once-2"),
        post("at-once-3"),
        post("at-once-4"),
        post("at-once-5"),
    );
    let answers = [
        answers.0, answers.1, answers.2, answers.3, answers.4, answers.5,
    ];
    let taken = answers.iter().filter(|a| a.status() == 200).count();
    assert!(
        answers
            .iter()
            .all(|a| [200, 503].contains(&a.status().as_u16())),
        "{:?}",
        answers.iter().map(|a| a.status()).collect::<Vec<_>>()
    );
    assert!(taken <= 2, "{taken} sessions kept, 2 at most");
    let index = store
        .inner()
        .load(&SessionKey::new(records(), "index"))
        .await
        .unwrap()
        .unwrap();
    let sessions = index.value.into_coordination().unwrap()["sessions"]
        .as_array()
        .unwrap()
        .len();
    assert!(sessions <= 2, "{sessions} sessions remembered");
}

/// Both POSTs of one reference were answered, with the same session.
fn assert_one_session(first: &http::Response<Vec<u8>>, retry: &http::Response<Vec<u8>>) {
    assert_eq!(
        (first.status().as_u16(), retry.status().as_u16()),
        (200, 200),
        "{:?}",
        String::from_utf8_lossy(retry.body())
    );
    assert_eq!(first.body(), retry.body(), "one session for the reference");
}

/// Maya's retry of a reference arriving while its first POST is stored, with room for one
/// more session: both are the same session (one claim), not the retry refused as if it were
/// a new reference past the cap.
#[tokio::test(start_paused = true)]
async fn a_retry_posted_with_its_first_post_at_the_cap_is_the_same_session() {
    let (_store, world) = world_over(YieldingLoads).await;
    let receiver = SessionReceiver::new(world.manager.clone()).with_max_sessions(1);
    let post = || receiver.receive(session_post(SESSION_BODY, "retried"));
    let (first, retry) = tokio::join!(post(), post());
    assert_one_session(&first, &retry);
}

/// Holds the first save of a reference's claim until `gate` opens, `parked` told.
struct HeldClaim {
    held: AtomicBool,
    parked: tokio::sync::Notify,
    gate: tokio::sync::Semaphore,
}

#[derive(Clone)]
struct HoldFirstClaim(Arc<HeldClaim>);

impl Default for HoldFirstClaim {
    fn default() -> Self {
        Self(Arc::new(HeldClaim {
            held: AtomicBool::new(false),
            parked: tokio::sync::Notify::new(),
            gate: tokio::sync::Semaphore::new(0),
        }))
    }
}

#[async_trait]
impl Intercept for HoldFirstClaim {
    async fn save(
        &self,
        key: &SessionKey,
        _record: &StoredRecord,
        _expected: Option<Version>,
    ) -> Result<(), StoreError> {
        let hold = &self.0;
        if key.session().starts_with("ref:") && !hold.held.swap(true, Ordering::SeqCst) {
            hold.parked.notify_one();
            drop(hold.gate.acquire().await.unwrap());
        }
        Ok(())
    }
}

/// Maya's retry of a reference arriving once the first POST has entered the reference in the
/// index, before its claim is written, with no room for another session: the retry is the
/// same reference, not a new one past the cap, and both POSTs are answered one session.
#[tokio::test(start_paused = true)]
async fn a_retry_posted_while_its_first_post_claims_at_the_cap_is_the_same_session() {
    let intercept = HoldFirstClaim::default();
    let (_store, world) = world_over(intercept.clone()).await;
    let receiver = SessionReceiver::new(world.manager.clone()).with_max_sessions(1);
    let post = || receiver.receive(session_post(SESSION_BODY, "retried"));
    let intercept = &intercept.0;
    let retry = async {
        intercept.parked.notified().await;
        let retry = post().await;
        intercept.gate.add_permits(1);
        retry
    };
    let (first, retry) = tokio::join!(post(), retry);
    assert_one_session(&first, &retry);
}

/// Fails the next save of the receiver's index record.
#[derive(Default)]
struct FailIndexSave(AtomicBool);

#[async_trait]
impl Intercept for FailIndexSave {
    async fn save(
        &self,
        key: &SessionKey,
        _record: &StoredRecord,
        _expected: Option<Version>,
    ) -> Result<(), StoreError> {
        let index = key.provider() == records() && key.session() == "index";
        if index && self.0.swap(false, Ordering::SeqCst) {
            return Err(backend_error("the index could not be saved (test)"));
        }
        Ok(())
    }
}

/// A POST whose session could not be entered in the receiver's index leaves nothing behind
/// that nobody would forget: no claim of its reference outlives the flood's lapse, so a
/// sender that never retries cannot leave records in the store for good.
#[tokio::test(start_paused = true)]
async fn a_post_that_could_not_be_indexed_leaves_no_claim_behind() {
    let (store, world) = world_over(FailIndexSave::default()).await;
    let post = |reference: &str| session_post(SESSION_BODY, reference);
    let claim = SessionKey::new(records(), "ref:ref-lost");

    store.0.store(true, Ordering::SeqCst);
    let failed = world.receiver.receive(post("ref-lost")).await;
    assert_eq!(failed.status(), 500);

    // Never retried. Twice `redeem_within` later, the next POST forgets what lapsed.
    tokio::time::advance(Duration::from_secs(1201)).await;
    assert_eq!(world.receiver.receive(post("ref-next")).await.status(), 200);
    assert!(
        store.inner().load(&claim).await.unwrap().is_none(),
        "the unindexed claim is gone"
    );

    // Maya's retry right after a failure still gets a session.
    store.0.store(true, Ordering::SeqCst);
    assert_eq!(
        world.receiver.receive(post("ref-again")).await.status(),
        500
    );
    let retried = world.receiver.receive(post("ref-again")).await;
    assert_eq!(retried.status(), 200);
}

/// Fails the next delete of a token session (not a receiver record) when armed.
#[derive(Default)]
struct FailTokenDelete(AtomicBool);

#[async_trait]
impl Intercept for FailTokenDelete {
    async fn delete(&self, key: &SessionKey, _expected: Option<Version>) -> Result<(), StoreError> {
        if key.provider() != records() && self.0.swap(false, Ordering::SeqCst) {
            return Err(backend_error(
                "the session's tokens could not be removed (test)",
            ));
        }
        Ok(())
    }
}

/// A redemption whose tokens reached the partner's user but whose copy under the
/// `sessionId` could not be removed (a store failure at the last step) has handed the tokens
/// over already (it succeeds): the `sessionId` must not be redeemable again, or a second user (whoever
/// else holds the leaked `sessionId`) is bound to the same Maya customer's tokens.
#[tokio::test(start_paused = true)]
async fn a_redemption_that_failed_after_binding_the_tokens_is_not_redeemable_again() {
    let (store, world) = world_over(FailTokenDelete::default()).await;
    let session_id = world.maya_posts_session("alice").await;

    store.0.store(true, Ordering::SeqCst);
    let first = world.receiver.redeem(&session_id, "user-alice").await;
    let bound = world.manager.token_set("user-alice").await;
    assert!(
        !store.0.load(Ordering::SeqCst) && bound.is_ok(),
        "setup: the tokens reached user-alice, then removing the sessionId's copy failed"
    );
    // The tokens are user-alice's: the redemption succeeded (the copy is removed later).
    assert_eq!(first.unwrap(), bound.unwrap());

    let second = world.receiver.redeem(&session_id, "mallory").await;
    assert!(
        world.manager.token_set("mallory").await.is_err(),
        "user-alice's Maya tokens were bound to a second user by the same sessionId: {:?}",
        second.map(|set| set.access_token.fingerprint())
    );
}

/// Whether `record`, saved under `key`, is the receiver's record of a session in `state`.
fn is_session_record(key: &SessionKey, record: &StoredRecord, state: &str) -> bool {
    key.provider() == records()
        && key.session().starts_with("id:")
        && record
            .as_coordination()
            .is_some_and(|value| value["state"] == state)
}

/// Writes a redeemed session record through to `inner`, then answers the save with an error
/// when armed: the write landed but its reply was lost (a PostgreSQL commit whose answer
/// never came back, a timeout after the statement completed).
struct LoseRedeemedReply {
    armed: AtomicBool,
    inner: Arc<dyn TokenStore>,
}

#[async_trait]
impl Intercept for LoseRedeemedReply {
    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<(), StoreError> {
        if is_session_record(key, record, "redeemed") && self.armed.swap(false, Ordering::SeqCst) {
            self.inner.save(key, record, expected).await?;
            return Err(backend_error("the reply to the save was lost (test)"));
        }
        Ok(())
    }
}

/// The redemption's compare-and-swap landed but its reply was lost: the redemption fails
/// with a store error, and the front-end sends it again. The tokens never reached the
/// partner's user, yet the `sessionId` now answers `AlreadyUsed` for good, and the tokens
/// left under it are removed as "unowned" when the session lapses: the customer's grant is
/// lost and Maya's login must be done again.
#[tokio::test(start_paused = true)]
async fn a_redemption_whose_store_reply_was_lost_can_be_completed_by_its_retry() {
    let inner: Arc<dyn TokenStore> = Arc::new(token_core::store::MemoryStore::new());
    let store = Arc::new(Forwarding::new(
        inner.clone(),
        LoseRedeemedReply {
            armed: AtomicBool::new(false),
            inner,
        },
    ));
    let world = world(Setup {
        store: Some(store.clone()),
        ..Setup::default()
    })
    .await;
    let session_id = world.maya_posts_session("alice").await;

    store.armed.store(true, Ordering::SeqCst);
    let first = world.receiver.redeem(&session_id, "user-alice").await;
    assert!(first.is_err(), "setup: the store's reply was lost");

    let retry = world.receiver.redeem(&session_id, "user-alice").await;
    assert!(
        world.manager.token_set("user-alice").await.is_ok(),
        "the retry of the failed redemption got {:?} and user-alice has no tokens",
        retry.map(|set| set.access_token.fingerprint())
    );
    let retried = retry.unwrap();
    // Finished: another user is refused; the same one gets the same tokens again.
    assert!(matches!(
        world.receiver.redeem(&session_id, "mallory").await,
        Err(RedeemError::AlreadyUsed)
    ));
    assert!(world.manager.token_set("mallory").await.is_err());
    let again = world.receiver.redeem(&session_id, "user-alice").await;
    assert_eq!(again.unwrap(), retried);
    assert!(
        world.manager.token_set(&session_id).await.is_err(),
        "no copy is left under the sessionId"
    );
}

/// A Session URL body that names a token twice is a malformed request, not a choice between
/// its values (as the receiver already refuses a repeated `Request-Reference-No`, and the
/// codec a request body that repeats a JSON key): whoever else reads the same bytes (a
/// proxy, a log, the partner's own audit of Maya's POST) may keep the other value. It must
/// be refused 400 and store nothing, never answered a `sessionId` for one of the two.
#[tokio::test(start_paused = true)]
async fn a_session_post_that_repeats_a_token_key_is_refused() {
    let world = world(Setup::default()).await;
    let bodies = [
        r#"{"accessToken":"at-1","refreshToken":"rt-1","refreshToken":"rt-2","expiresAt":4102444800}"#,
        r#"{"accessToken":"at-1","accessToken":"at-2","refreshToken":"rt-1","expiresAt":4102444800}"#,
    ];
    for (i, body) in bodies.into_iter().enumerate() {
        let reference = format!("ref-repeat-{i}");
        let answer = world.receiver.receive(session_post(body, &reference)).await;
        let text = String::from_utf8_lossy(answer.body()).into_owned();
        assert_eq!(answer.status(), 400, "{body}: {text}");
        let claim = SessionKey::new(records(), format!("ref:{reference}"));
        assert!(
            world.manager.store().load(&claim).await.unwrap().is_none(),
            "{body}: nothing is stored"
        );
    }
}

/// Holds the save that marks a redeemed session bound for ever when armed: the redemption's
/// caller (the front-end's request) is dropped after the tokens reached the partner's
/// session and before the session was marked finished.
#[derive(Default)]
struct HangBoundMark(AtomicBool);

#[async_trait]
impl Intercept for HangBoundMark {
    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        _expected: Option<Version>,
    ) -> Result<(), StoreError> {
        if is_session_record(key, record, "bound") && self.0.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

/// A redemption dropped after it moved the tokens (the front-end hung up) leaves the session
/// redeemed, with a copy under the `sessionId`; the partner's session then refreshes and the
/// provider rotates its refresh token. The front-end's retry of the redemption finishes it:
/// it must neither put the copy's older pair back over the rotated one (whose refresh token
/// would be lost, and the copy's, spent, refused: a re-auth) nor refresh the copy with its
/// spent refresh token (the retry failed with a re-auth verdict).
async fn retried_redemption_after_a_rotation(rotate_at_expiry: bool) {
    let (store, world) = world_over(HangBoundMark::default()).await;
    let session_id = world.maya_posts_session("alice").await;

    store.0.store(true, Ordering::SeqCst);
    let dropped = tokio::time::timeout(
        Duration::from_secs(5),
        world.receiver.redeem(&session_id, "user-alice"),
    )
    .await;
    store.0.store(false, Ordering::SeqCst);
    assert!(dropped.is_err(), "setup: the redemption was dropped");
    let moved = world.manager.token_set("user-alice").await.unwrap();

    if rotate_at_expiry {
        tokio::time::advance(Duration::from_secs(3601)).await;
        world.manager.access_token("user-alice").await.unwrap();
    } else {
        (world.manager)
            .refresh_rejected("user-alice", &moved.access_token)
            .await
            .unwrap();
    }
    let rotated = world.manager.token_set("user-alice").await.unwrap();
    assert_ne!(rotated.refresh_token, moved.refresh_token, "setup: rotated");

    let retried = world.receiver.redeem(&session_id, "user-alice").await;
    let now = world.manager.token_set("user-alice").await.unwrap();
    assert_eq!(
        now.refresh_token, rotated.refresh_token,
        "the retried redemption put the older pair back over the rotated one"
    );
    assert_eq!(retried.unwrap().refresh_token, rotated.refresh_token);
    let fresh = world.manager.access_token("user-alice").await.unwrap();
    assert!(accepted(&world.sandbox, &fresh).await);
    assert!(
        world.manager.token_set(&session_id).await.is_err(),
        "no copy is left under the sessionId"
    );
    assert!(matches!(
        world.receiver.redeem(&session_id, "mallory").await,
        Err(RedeemError::AlreadyUsed)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_retried_redemption_never_puts_an_older_pair_over_a_rotated_one() {
    retried_redemption_after_a_rotation(false).await;
}

#[tokio::test(start_paused = true)]
async fn a_retried_redemption_never_refreshes_the_copy_with_a_spent_refresh_token() {
    retried_redemption_after_a_rotation(true).await;
}

/// Maya Connect answers a refresh-token grant whose refresh token is dead (revoked, or
/// expired) `400 invalid_token` "Invalid refresh token" (`invalid_grant` is its code for a
/// locked account), and the sandbox quotes no token in it.
#[tokio::test(start_paused = true)]
async fn maya_connect_refuses_a_dead_refresh_token_as_invalid_token() {
    for revoked in [true, false] {
        let world = world(Setup {
            shape: RefreshShape::OAuth,
            issuer: IssuerConfig::default().with_refresh_ttl(Some(Duration::from_secs(1800))),
            ..Setup::default()
        })
        .await;
        world.customer("alice").await;
        let set = world.manager.token_set("alice").await.unwrap();
        let refresh = set.refresh_token.clone().unwrap();
        if revoked {
            assert!(
                world
                    .sandbox
                    .issuer()
                    .revoke(refresh.expose_secret())
                    .await
                    .unwrap()
            );
        }
        tokio::time::advance(Duration::from_secs(3601)).await;
        let error = world.manager.access_token("alice").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ReauthRequired, "revoked {revoked}");
        assert_eq!(
            error.provider_code(),
            Some("invalid_token"),
            "revoked {revoked}: {error}"
        );
        assert!(error.to_string().contains("HTTP 400"), "{error}");
        assert!(!format!("{error:?}").contains(refresh.expose_secret()));
        assert_eq!(world.sandbox.calls(CONNECT), 1, "revoked {revoked}");
    }
}

/// Maya Connect answers the partner's `client_credentials` grant with an access token alone
/// (RFC 6749 section 4.4.3; Maya's guide: "Maya Connect responds with the access_token"):
/// the app token has no refresh token, and a new one is obtained when it expires.
#[tokio::test(start_paused = true)]
async fn the_app_token_comes_without_a_refresh_token() {
    let world = world(Setup::default()).await;
    world.customer("alice").await;
    tokio::time::advance(Duration::from_secs(3601)).await;
    world.manager.access_token("alice").await.unwrap();
    let app = world
        .manager
        .provider()
        .app_tokens()
        .token_set(APP_SESSION)
        .await
        .unwrap();
    assert_eq!(app.refresh_token, None, "an app token has no refresh token");
    assert_eq!(world.sandbox.calls(CONNECT), 1);
}

/// Maya's `/tokens` takes a `Request-Reference-No` in UUIDv4 format: another UUID version
/// (a time-based v1, the nil UUID) is refused `invalid_request`, spending nothing, as a
/// reference that is no UUID is; a v4 one is served.
#[tokio::test(start_paused = true)]
async fn the_mini_app_refresh_takes_only_a_uuid_v4_reference() {
    use token_core::provider::CallContext;
    use token_provider_maya::MiniAppRefresh;
    let world = world(Setup::default()).await;
    let issued = world.sandbox.issue("alice").await.unwrap();
    let refresh_token = issued.refresh_token.clone().unwrap();
    let app_token = world
        .manager
        .provider()
        .app_tokens()
        .access_token(APP_SESSION)
        .await
        .unwrap();
    let cx = CallContext::new(
        world.sandbox.client(),
        world.sandbox.clock().clone(),
        "alice",
    );
    let refresh = |reference: &str| MiniAppRefresh {
        request_reference_no: reference.to_owned(),
        app_token: app_token.clone(),
        refresh_token: refresh_token.clone(),
    };
    for reference in [
        "6ba7b810-9dad-11d1-80b4-00c04fd430c8",
        "00000000-0000-0000-0000-000000000000",
        "ref-1",
    ] {
        let error = cx
            .call(&world.sandbox.base_url(), &refresh(reference))
            .await
            .unwrap_err();
        assert_eq!(
            error.provider_code(),
            Some("invalid_request"),
            "{reference}"
        );
    }
    let v4 = uuid::Uuid::new_v4().to_string();
    let set = cx
        .call(&world.sandbox.base_url(), &refresh(&v4))
        .await
        .unwrap();
    assert_ne!(set.refresh_token.as_ref(), Some(&refresh_token));
}

/// Maya Connect answers client credentials with an access token alone: the app token's pair
/// is of no use once that token has expired, and a purge then forgets it. It was kept until
/// the refresh token the sandbox never sent expired (30 days by default), a record per app
/// token request all that time.
#[tokio::test(start_paused = true)]
async fn an_app_token_is_forgotten_once_it_expired() {
    let world = world(Setup::default()).await;
    let client = world.sandbox.client();
    let basic = token_core::oauth::BasicCredentials::new(CLIENT, ClientSecret::new(SECRET));
    for _ in 0..3 {
        let request = http::Request::post(world.sandbox.url(CONNECT).as_str())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::AUTHORIZATION, basic.to_header())
            .body(b"grant_type=client_credentials".to_vec())
            .unwrap();
        let answer = client.send(request).await.unwrap();
        assert_eq!(answer.status(), http::StatusCode::OK);
        let body: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
        assert!(body.get("refresh_token").is_none(), "{body}");
    }
    let issuer = world.sandbox.issuer();
    let lived = IssuerConfig::default().access_ttl + token_core::issuer::PURGE_GRACE;
    tokio::time::advance(lived - Duration::from_secs(1)).await;
    assert_eq!(issuer.purge().await.unwrap(), 0);
    tokio::time::advance(Duration::from_secs(1)).await;
    assert_eq!(issuer.purge().await.unwrap(), 3);
}
