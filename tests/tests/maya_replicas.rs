//! Maya's Session URL on two replicas: two `SessionReceiver`s, each over its own
//! `TokenManager<Maya>`, sharing one store: a `MemoryStore` behind an `Arc`, two `FileStore`s
//! opened on one directory, and two `PostgresStore`s (two pools) on one schema.
//!
//! Every scenario runs on each of the three. Races are made to happen, not hoped for: the
//! replicas' stores meet at a barrier before the compare-and-swap under test, so both have
//! read the same state before either writes. Time moves on a shared `ManualClock`. The
//! PostgreSQL ones need `TOKEN_TEST_POSTGRES_URL` (see [`token_test_support::pg`]); each works in a
//! schema of its own.

use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use http::StatusCode;
use token_core::store::{
    FileStore, MemoryStore, PostgresStore, SessionKey, StoredRecord, TokenStore, Version,
};
use token_core::{
    clock::ManualClock, error::StoreError, manager::TokenManager, secret::AccessToken,
    secret::ClientSecret, secret::RefreshToken, token_set::TokenSet,
};
use token_provider_maya::sandbox::session_url_post;
use token_provider_maya::{Maya, MayaConfig, RedeemError, SESSION_URL_NAMESPACE, SessionReceiver};

use token_test_support::harness::{START, manual_clock};
use token_test_support::lock;
use token_test_support::pg::{database, drop_schema, scalar, test_url, unique_schema};
use token_test_support::stores::{Forwarding, Intercept, backend_error};

const SESSION_URL: &str = "https://partner.example/maya/session";
const REDEEM_WITHIN: Duration = Duration::from_secs(600);

#[derive(Clone, Copy, Debug)]
enum Backend {
    Memory,
    File,
    Postgres,
}

/// Runs each scenario once per backend, as a test of its own.
macro_rules! on_every_store {
    ($($scenario:ident),* $(,)?) => {
        mod memory {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(super::Backend::Memory).await;
            })*
        }
        mod file {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(super::Backend::File).await;
            })*
        }
        mod postgres {
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(super::Backend::Postgres).await;
            })*
        }
    };
}

on_every_store!(
    a_session_posted_to_one_replica_is_redeemed_on_the_other,
    one_reference_posted_to_both_replicas_at_once_is_one_session,
    a_redemption_on_both_replicas_at_once_is_won_by_exactly_one,
    mayas_retry_on_the_other_replica_gets_the_same_session_id,
    a_retry_completes_the_session_of_a_replica_that_failed_midway,
    a_failed_redemption_leaves_the_session_redeemable,
    a_lapsed_session_is_forgotten_by_the_other_replica_on_receive,
    a_lapsed_session_is_forgotten_by_the_other_replica_on_redeem,
    bad_input_stores_nothing,
    other_tokens_under_a_claimed_reference_do_not_get_its_session_id,
    other_tokens_racing_mayas_post_do_not_get_its_session_id,
);

// ---- the scenarios -------------------------------------------------------------------------

async fn a_session_posted_to_one_replica_is_redeemed_on_the_other(backend: Backend) {
    let Some(world) = World::new(backend, "posted_to_one_redeemed_on_the_other").await else {
        return;
    };
    let [a, b] = &world.receivers;
    let session_id = session_id_of(a.receive(world.post("at-1", "rt-1")).await);

    let redeemed = b.redeem(&session_id, "user-1").await.unwrap();
    assert_eq!(redeemed.access_token.expose_secret(), "at-1");
    assert_eq!(
        world.access_token(1, "user-1").await.as_deref(),
        Some("at-1")
    );
    assert_eq!(
        world.access_token(0, "user-1").await.as_deref(),
        Some("at-1")
    );
    assert!(!world.has_tokens(&session_id).await, "moved, not copied");
    assert!(matches!(
        a.redeem(&session_id, "user-2").await,
        Err(RedeemError::AlreadyUsed)
    ));
    assert!(!world.has_tokens("user-2").await);
    world.close().await;
}

async fn one_reference_posted_to_both_replicas_at_once_is_one_session(backend: Backend) {
    let Some(world) = World::new(backend, "one_reference_posted_to_both_at_once").await else {
        return;
    };
    let [a, b] = &world.receivers;
    let post = world.post("at-1", "rt-1");
    // Both replicas try to claim the reference only once both have validated the POST.
    world.meet_before(|key, expected| is_receiver_key(key, "ref:") && expected.is_none());
    let (first, second) = tokio::join!(a.receive(clone(&post)), b.receive(clone(&post)));
    assert!(world.met(), "both claims were attempted together");

    let (first, second) = (session_id_of(first), session_id_of(second));
    assert_eq!(first, second, "one sessionId in both answers");
    assert!(world.has_tokens(&first).await);
    // Its claim, its record, the index and its tokens: a second session would add more.
    assert_eq!(world.records().await, 4);
    b.redeem(&first, "user-1").await.unwrap();
    assert_eq!(
        world.access_token(0, "user-1").await.as_deref(),
        Some("at-1")
    );
    world.close().await;
}

async fn a_redemption_on_both_replicas_at_once_is_won_by_exactly_one(backend: Backend) {
    let Some(world) = World::new(backend, "redemption_on_both_at_once").await else {
        return;
    };
    let [a, b] = &world.receivers;
    let session_id = session_id_of(a.receive(world.post("at-1", "rt-1")).await);

    // Both read the pending session before either marks it redeemed.
    world.meet_before(|key, expected| is_receiver_key(key, "id:") && expected.is_some());
    let (on_a, on_b) = tokio::join!(
        a.redeem(&session_id, "user-a"),
        b.redeem(&session_id, "user-b")
    );
    assert!(world.met(), "both redemptions reached the compare-and-swap");

    let (winner, loser) = match (&on_a, &on_b) {
        (Ok(_), Err(RedeemError::AlreadyUsed)) => ("user-a", "user-b"),
        (Err(RedeemError::AlreadyUsed), Ok(_)) => ("user-b", "user-a"),
        other => panic!("exactly one redemption must win: {other:?}"),
    };
    assert_eq!(world.access_token(0, winner).await.as_deref(), Some("at-1"));
    assert!(!world.has_tokens(loser).await, "the loser got nothing");
    assert!(!world.has_tokens(&session_id).await);
    world.close().await;
}

async fn mayas_retry_on_the_other_replica_gets_the_same_session_id(backend: Backend) {
    let Some(world) = World::new(backend, "retry_on_the_other_replica").await else {
        return;
    };
    let [a, b] = &world.receivers;
    let post = world.post("at-1", "rt-1");
    let first = session_id_of(a.receive(clone(&post)).await);
    // Our answer never reached Maya, which tries again; the balancer picks the other replica.
    world.clock.advance(time::Duration::seconds(5));
    let retried = session_id_of(b.receive(clone(&post)).await);
    assert_eq!(retried, first);
    assert_eq!(world.records().await, 4, "still one session");

    b.redeem(&retried, "user-1").await.unwrap();
    // A retry after the redemption is refused, on either replica, and creates nothing.
    for receiver in [a, b] {
        let answer = receiver.receive(clone(&post)).await;
        assert_eq!(answer.status(), StatusCode::CONFLICT);
    }
    assert!(!world.has_tokens(&first).await);
    world.close().await;
}

/// The POST carries no credential, and a `Request-Reference-No` is no secret (it is logged,
/// on both sides). Someone who learnt Maya's reference and POSTs other tokens under it is not
/// Maya retrying: answering them the session's `sessionId` would let them redeem the
/// customer's tokens into their own partner session. They are refused, on either replica,
/// and the customer's session is untouched.
async fn other_tokens_under_a_claimed_reference_do_not_get_its_session_id(backend: Backend) {
    let Some(world) = World::new(backend, "other_tokens_under_a_claimed_reference").await else {
        return;
    };
    let [a, b] = &world.receivers;
    let post = world.post("at-1", "rt-1");
    let session_id = session_id_of(a.receive(clone(&post)).await);
    let mut forged = world.post("at-evil", "rt-evil");
    forged.headers_mut().insert(
        "Request-Reference-No",
        post.headers()["Request-Reference-No"].clone(),
    );
    for receiver in [a, b] {
        let answer = receiver.receive(clone(&forged)).await;
        let body = String::from_utf8_lossy(answer.body()).into_owned();
        assert_eq!(answer.status(), StatusCode::CONFLICT, "{body}");
        assert!(!body.contains(&session_id), "{body}");
    }
    // Maya's own retry still gets it, and the customer's tokens are the ones redeemed.
    assert_eq!(session_id_of(b.receive(clone(&post)).await), session_id);
    let redeemed = b.redeem(&session_id, "user-1").await.unwrap();
    assert_eq!(redeemed.access_token.expose_secret(), "at-1");
    world.close().await;
}

/// The same forgery as above, sent while Maya's POST is being stored: Maya's POST has
/// claimed the reference and found its session without tokens, and the forged one arrives
/// before Maya's tokens are saved. Only the POST whose tokens the session holds may learn
/// its `sessionId`: answering both would hand the forger a `sessionId` that redeems the
/// customer's tokens (stored last) into the forger's partner session.
async fn other_tokens_racing_mayas_post_do_not_get_its_session_id(backend: Backend) {
    let Some(world) = World::new(backend, "other_tokens_racing_mayas_post").await else {
        return;
    };
    let [a, b] = &world.receivers;
    let post = world.post("at-1", "rt-1");
    let mut forged = world.post("at-evil", "rt-evil");
    forged.headers_mut().insert(
        "Request-Reference-No",
        post.headers()["Request-Reference-No"].clone(),
    );
    // Maya's POST stops just before its tokens are saved, while the forged one runs.
    let (reached, go) = world.pause_before(|key, _| {
        !key.provider().starts_with(SESSION_URL_NAMESPACE) && key.session().len() == 36
    });
    let (mayas, forgers) = tokio::join!(a.receive(clone(&post)), async {
        reached.await.unwrap();
        let answer = b.receive(clone(&forged)).await;
        go.send(()).unwrap();
        answer
    });
    let body = String::from_utf8_lossy(forgers.body()).into_owned();
    assert_eq!(forgers.status(), StatusCode::CONFLICT, "{body}");
    let session_id = session_id_of(mayas);
    assert!(!body.contains(&session_id), "{body}");
    let redeemed = a.redeem(&session_id, "user-1").await.unwrap();
    assert_eq!(redeemed.access_token.expose_secret(), "at-1");
    world.close().await;
}

async fn a_retry_completes_the_session_of_a_replica_that_failed_midway(backend: Backend) {
    let Some(world) = World::new(backend, "retry_completes_a_failed_claim").await else {
        return;
    };
    let [a, b] = &world.receivers;
    let post = world.post("at-1", "rt-1");
    // Replica A claims the reference, then cannot store the tokens (as if it died there).
    world.stores[0].fail_saves_under(Some(a.manager().namespace()));
    let answer = a.receive(clone(&post)).await;
    assert_eq!(answer.status(), StatusCode::INTERNAL_SERVER_ERROR);
    world.stores[0].fail_saves_under(None);
    assert!(world.records().await > 0, "A's claim is in the store");

    let session_id = session_id_of(b.receive(clone(&post)).await);
    assert!(world.has_tokens(&session_id).await, "B stored the tokens");
    assert_eq!(world.records().await, 4, "one session");
    let redeemed = a.redeem(&session_id, "user-1").await.unwrap();
    assert_eq!(redeemed.access_token.expose_secret(), "at-1");
    world.close().await;
}

async fn a_failed_redemption_leaves_the_session_redeemable(backend: Backend) {
    let Some(world) = World::new(backend, "failed_redemption_redeemable").await else {
        return;
    };
    let [a, b] = &world.receivers;
    let session_id = session_id_of(a.receive(world.post("at-1", "rt-1")).await);

    world.stores[1].fail_saves_under(Some(b.manager().namespace()));
    let failed = b.redeem(&session_id, "user-1").await;
    assert!(matches!(failed, Err(RedeemError::Tokens(_))), "{failed:?}");
    world.stores[1].fail_saves_under(None);
    assert!(world.has_tokens(&session_id).await, "the tokens stayed");

    a.redeem(&session_id, "user-1").await.unwrap();
    assert_eq!(
        world.access_token(1, "user-1").await.as_deref(),
        Some("at-1")
    );
    world.close().await;
}

async fn a_lapsed_session_is_forgotten_by_the_other_replica_on_receive(backend: Backend) {
    let Some(world) = World::new(backend, "lapsed_forgotten_on_receive").await else {
        return;
    };
    let [a, b] = &world.receivers;
    let post = world.post("at-1", "rt-1");
    let lapsed = session_id_of(a.receive(clone(&post)).await);

    // Past the redemption window, Maya's retry still gets its sessionId (kept twice as long).
    world.clock.advance(time::Duration::seconds(601));
    assert!(matches!(
        b.redeem(&lapsed, "user-1").await,
        Err(RedeemError::Expired)
    ));
    assert_eq!(session_id_of(b.receive(clone(&post)).await), lapsed);
    assert!(world.has_tokens(&lapsed).await);

    // Past twice the window, the next POST on the other replica forgets it.
    world.clock.advance(time::Duration::seconds(600));
    let fresh = session_id_of(b.receive(world.post("at-2", "rt-2")).await);
    assert!(!world.has_tokens(&lapsed).await, "its tokens are removed");
    assert_eq!(world.records().await, 4, "only the new session is left");
    assert!(matches!(
        a.redeem(&lapsed, "user-1").await,
        Err(RedeemError::Unknown)
    ));
    // Its reference is free again: a new POST with it is a new session.
    let reused = session_id_of(a.receive(clone(&post)).await);
    assert_ne!(reused, lapsed);
    a.redeem(&fresh, "user-2").await.unwrap();
    world.close().await;
}

async fn a_lapsed_session_is_forgotten_by_the_other_replica_on_redeem(backend: Backend) {
    let Some(world) = World::new(backend, "lapsed_forgotten_on_redeem").await else {
        return;
    };
    let [a, b] = &world.receivers;
    let lapsed = session_id_of(a.receive(world.post("at-1", "rt-1")).await);
    world.clock.advance(time::Duration::seconds(1201));
    assert!(matches!(
        b.redeem(&lapsed, "user-1").await,
        Err(RedeemError::Expired)
    ));
    assert!(!world.has_tokens(&lapsed).await);
    assert!(!world.has_tokens("user-1").await);
    assert_eq!(
        world.records().await,
        0,
        "tokens, claim, record and index all gone"
    );
    world.close().await;
}

async fn bad_input_stores_nothing(backend: Backend) {
    let Some(world) = World::new(backend, "bad_input_stores_nothing").await else {
        return;
    };
    let good = world.post("at-1", "rt-1");
    let with_reference = |reference: Option<&str>, body: Vec<u8>| {
        let mut post = clone(&good);
        *post.body_mut() = body;
        let headers = post.headers_mut();
        headers.remove("Request-Reference-No");
        if let Some(reference) = reference {
            headers.insert("Request-Reference-No", reference.parse().unwrap());
        }
        post
    };
    let body = |access: &str, refresh: &str| {
        serde_json::to_vec(&serde_json::json!({
            "accessToken": access, "refreshToken": refresh, "expiresAt": 1_767_229_200,
        }))
        .unwrap()
    };
    let padded = {
        let mut tokens = serde_json::from_slice::<serde_json::Value>(good.body()).unwrap();
        tokens["padding"] = "x".repeat(64 * 1024).into();
        serde_json::to_vec(&tokens).unwrap()
    };
    let cases = [
        (
            "no Request-Reference-No",
            with_reference(None, good.body().clone()),
            400,
        ),
        (
            "an empty one",
            with_reference(Some(""), good.body().clone()),
            400,
        ),
        (
            "one of 256 characters",
            with_reference(Some(&"r".repeat(256)), good.body().clone()),
            400,
        ),
        (
            "one with a space",
            with_reference(Some("ref 1"), good.body().clone()),
            400,
        ),
        (
            "a body that is not JSON",
            with_reference(Some("ref-1"), b"{\"accessToken\": ".to_vec()),
            400,
        ),
        (
            "a body without tokens",
            with_reference(Some("ref-1"), br#"{"accessToken": 1}"#.to_vec()),
            400,
        ),
        (
            "no refresh token",
            with_reference(Some("ref-1"), br#"{"accessToken": "at-1"}"#.to_vec()),
            400,
        ),
        (
            "an access token with LF",
            with_reference(Some("ref-1"), body("at\n1", "rt-1")),
            400,
        ),
        (
            "an access token with CR",
            with_reference(Some("ref-1"), body("at\r1", "rt-1")),
            400,
        ),
        // (A refresh token with a control character is taken: it travels escaped in the
        // JSON body, and only the access token goes in a header. The provider crate's
        // sandbox tests store and present one.)
        (
            "a body over 64 KiB",
            with_reference(Some("ref-1"), padded),
            413,
        ),
    ];
    for (case, post, status) in cases {
        for receiver in &world.receivers {
            let answer = receiver.receive(clone(&post)).await;
            assert_eq!(answer.status().as_u16(), status, "{case}");
            let text = String::from_utf8_lossy(answer.body());
            assert!(text.contains("invalid_request"), "{case}: {text}");
        }
        assert_eq!(world.records().await, 0, "{case}: nothing stored");
    }
    // The positive control: the same receivers store a good POST.
    let session_id = session_id_of(world.receivers[0].receive(good).await);
    assert!(world.has_tokens(&session_id).await);
    assert_eq!(world.records().await, 4);
    world.close().await;
}

// ---- two replicas over one store ----------------------------------------------------------

struct World {
    backing: Backing,
    stores: [Arc<ReplicaStore>; 2],
    meeting: Arc<Meeting>,
    clock: ManualClock,
    receivers: [SessionReceiver; 2],
}

/// The one store both replicas share, as the test sees it.
enum Backing {
    Memory(Arc<MemoryStore>),
    File(tempfile::TempDir),
    Postgres { url: String, schema: String },
}

impl World {
    /// Two replicas over one `backend` store; `None` when PostgreSQL is not available here.
    async fn new(backend: Backend, test: &str) -> Option<Self> {
        let (backing, stores): (Backing, [Arc<dyn TokenStore>; 2]) = match backend {
            Backend::Memory => {
                let store = Arc::new(MemoryStore::new());
                let shared: Arc<dyn TokenStore> = store.clone();
                (Backing::Memory(store), [shared.clone(), shared])
            }
            Backend::File => {
                let dir = tempfile::tempdir().unwrap();
                let open = || Arc::new(FileStore::open(dir.path()).unwrap());
                let stores: [Arc<dyn TokenStore>; 2] = [open(), open()];
                (Backing::File(dir), stores)
            }
            Backend::Postgres => {
                let url = test_url(test)?;
                let schema = unique_schema();
                let mut stores = Vec::new();
                for _ in 0..2 {
                    // A pool each, as two replicas would have.
                    let db = database(&url, &schema);
                    let store: Arc<dyn TokenStore> =
                        Arc::new(PostgresStore::open(&db).await.unwrap());
                    stores.push(store);
                }
                let stores: [Arc<dyn TokenStore>; 2] = stores.try_into().ok().unwrap();
                (Backing::Postgres { url, schema }, stores)
            }
        };
        let clock = manual_clock();
        let meeting = Arc::new(Meeting::default());
        let stores = stores.map(|inner| {
            Arc::new(Forwarding::new(
                inner,
                Replica {
                    meeting: meeting.clone(),
                    failing: Mutex::default(),
                },
            ))
        });
        let receivers = [0, 1].map(|i| {
            SessionReceiver::new(replica(stores[i].clone(), &clock))
                .with_redeem_within(REDEEM_WITHIN)
        });
        Some(Self {
            backing,
            stores,
            meeting,
            clock,
            receivers,
        })
    }

    /// Maya's POST of a customer's first tokens, with a new `Request-Reference-No`.
    fn post(&self, access: &str, refresh: &str) -> http::Request<Vec<u8>> {
        let tokens = TokenSet::new(AccessToken::new(access))
            .with_refresh_token(RefreshToken::new(refresh))
            .with_access_expires_at(START + Duration::from_secs(3600));
        session_url_post(SESSION_URL, &tokens, START)
    }

    /// Holds the first save matching `at` until the second channel is sent to; the first
    /// tells when it got there.
    fn pause_before(
        &self,
        at: SaveMatcher,
    ) -> (
        tokio::sync::oneshot::Receiver<()>,
        tokio::sync::oneshot::Sender<()>,
    ) {
        let (reached, on_reached) = tokio::sync::oneshot::channel();
        let (go, on_go) = tokio::sync::oneshot::channel();
        *lock(&self.meeting.pause) = Some((at, reached, on_go));
        (on_reached, go)
    }

    /// The access token replica `i` serves for `session`, if it has one.
    async fn access_token(&self, i: usize, session: &str) -> Option<String> {
        let manager = self.receivers[i].manager();
        let token = manager.access_token(session).await.ok()?;
        Some(token.expose_secret().to_owned())
    }

    /// Whether the store holds tokens for the manager's `session`.
    async fn has_tokens(&self, session: &str) -> bool {
        let key = self.receivers[0].manager().session_key(session);
        let found = self.stores[0].inner().load(&key).await.unwrap();
        found.is_some_and(|record| record.value.tokens().is_some())
    }

    /// Every record in the store: tokens and the receiver's own, whatever their key.
    async fn records(&self) -> usize {
        match &self.backing {
            Backing::Memory(store) => store.len(),
            Backing::File(dir) => record_files(dir.path()).len(),
            Backing::Postgres { url, schema } => {
                let query = format!("SELECT count(*) FROM \"{schema}\".token_sets");
                usize::try_from(scalar(url, &query).await).unwrap()
            }
        }
    }

    /// Holds the next two saves that `at` matches (one from each replica, or two from one)
    /// until both have arrived.
    fn meet_before(&self, at: SaveMatcher) {
        *lock(&self.meeting.at) = Some(at);
    }

    /// Whether the meeting took place.
    fn met(&self) -> bool {
        self.meeting.arrived.load(Ordering::SeqCst) >= 2
    }

    async fn close(self) {
        if let Backing::Postgres { url, schema } = &self.backing {
            drop_schema(url, schema).await;
        }
    }
}

/// One replica's manager: Maya's provider over `store`, on the shared `clock`. Nothing here
/// calls Maya (no token expires), so the transport is never used.
fn replica(store: Arc<ReplicaStore>, clock: &ManualClock) -> TokenManager<Maya> {
    let config = MayaConfig::new(
        "partner-1",
        ClientSecret::new("partner-secret"),
        url::Url::parse("https://connect.example").unwrap(),
    );
    let client = Arc::new(token_core::transport::ReqwestClient::new().unwrap());
    let clock = Arc::new(clock.clone());
    let maya = Maya::from_config(config, client.clone(), clock.clone()).unwrap();
    TokenManager::builder(maya)
        .shared_store(store)
        .shared_client(client)
        .clock(clock)
        .build()
        .unwrap()
}

fn record_files(dir: &std::path::Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect()
}

fn is_receiver_key(key: &SessionKey, prefix: &str) -> bool {
    key.provider()
        .strip_prefix(SESSION_URL_NAMESPACE)
        .is_some_and(|rest| rest.starts_with("/maya:"))
        && key.session().starts_with(prefix)
}

fn session_id_of(answer: http::Response<Vec<u8>>) -> String {
    assert_eq!(
        answer.status(),
        StatusCode::OK,
        "{}",
        String::from_utf8_lossy(answer.body())
    );
    let body: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
    let session_id = body["sessionId"].as_str().unwrap().to_owned();
    assert_eq!(session_id.len(), 36, "a UUID");
    session_id
}

fn clone(post: &http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    let mut copy = http::Request::new(post.body().clone());
    *copy.method_mut() = post.method().clone();
    *copy.uri_mut() = post.uri().clone();
    *copy.headers_mut() = post.headers().clone();
    copy
}

/// Which saves meet: by key and expected version.
type SaveMatcher = fn(&SessionKey, Option<Version>) -> bool;

/// Two saves that wait for each other (see [`World::meet_before`]).
#[derive(Default)]
struct Meeting {
    at: Mutex<Option<SaveMatcher>>,
    arrived: AtomicUsize,
    barrier: BarrierOfTwo,
    /// A save to hold once (see [`World::pause_before`]).
    pause: Mutex<Option<Pause>>,
}

/// Which save to hold, whom to tell it got there, and what lets it go on.
type Pause = (
    SaveMatcher,
    tokio::sync::oneshot::Sender<()>,
    tokio::sync::oneshot::Receiver<()>,
);

struct BarrierOfTwo(tokio::sync::Barrier);

impl Default for BarrierOfTwo {
    fn default() -> Self {
        Self(tokio::sync::Barrier::new(2))
    }
}

impl Meeting {
    async fn wait_if(&self, key: &SessionKey, expected: Option<Version>) {
        let paused = {
            let mut pause = lock(&self.pause);
            match pause.take() {
                Some((at, reached, go)) if at(key, expected) => Some((reached, go)),
                other => {
                    *pause = other;
                    None
                }
            }
        };
        if let Some((reached, go)) = paused {
            let _ = reached.send(());
            let _ = go.await;
        }
        let matches = lock(&self.at).is_some_and(|at| at(key, expected));
        if matches && self.arrived.fetch_add(1, Ordering::SeqCst) < 2 {
            self.barrier.0.wait().await;
        }
    }
}

/// A replica's view of the shared store: saves can meet the other replica's, or fail.
type ReplicaStore = Forwarding<Replica>;

struct Replica {
    meeting: Arc<Meeting>,
    /// Saves under this namespace fail.
    failing: Mutex<Option<String>>,
}

impl Replica {
    fn fail_saves_under(&self, namespace: Option<&str>) {
        *lock(&self.failing) = namespace.map(str::to_owned);
    }
}

#[async_trait]
impl Intercept for Replica {
    async fn save(
        &self,
        key: &SessionKey,
        _record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<(), StoreError> {
        if lock(&self.failing).as_deref() == Some(key.provider()) {
            return Err(backend_error("the replica's store failed (test)"));
        }
        self.meeting.wait_if(key, expected).await;
        Ok(())
    }
}
