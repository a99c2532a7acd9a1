//! The soak: many sessions, many refresh cycles on tokio's paused clock, random faults from a
//! seeded RNG (set `SOAK_SEED` to replay one), for every provider against its sandbox.
//!
//! Each cycle moves time past every access token's expiry (or, one time in five, only into
//! the refresh skew, so refreshes run ahead of expiry in the background), queues random faults
//! on the refresh path (5xx runs, 429 with `Retry-After`, answers lost after the issuer
//! rotated, malformed and incomplete answers, delays), sometimes revokes a session at the
//! issuer (a logout elsewhere), and has every session's callers ask for a token at once. A
//! session told to re-authorize logs in again (a new pair is inserted), as an application
//! would.
//!
//! Invariants, checked at the end from the issuer's own records:
//! - every caller got a token or an error of an expected kind (no panic, no `Misconfigured`);
//! - every session's stored refresh token is accepted by the issuer;
//! - every re-auth the manager signalled carries the provider's code, and was caused by a
//!   revocation or by an answer lost in transit (the issuer rotated, the client never got the
//!   successor);
//! - no rotated refresh token was used outside its reuse window: every `UsedRefreshToken`
//!   refusal the issuer made is for a token whose successor the client never stored (an
//!   injected lost answer); a client that had stored the successor and still sent the old
//!   token would be a burned token;
//! - no unknown refresh token was ever presented, and revoked ones only for revoked sessions.
//!
//! Each check is paired with its positive control (refreshes were reported, revocations were
//! refused and signalled, stored tokens were there to check). The soak runs once more over
//! `PostgresStore` when the test database is there (`token_test_support::pg`; CI always), bounded to a few
//! seconds: the same invariants, every store call a round trip to the database.

mod subjects;

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use http::StatusCode;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use time::macros::datetime;
use token_core::issuer::{RotateRejection, TokenHash};
use token_core::sandbox::Failure;
use token_core::store::{
    Lease, PostgresStore, SessionKey, StoredRecord, TokenStore, Version, Versioned,
};
use token_core::{clock::TokioClock, error::ErrorKind, error::StoreError, manager::Event};

use token_test_support::lock;
use token_test_support::pg;
use token_test_support::rig::{CoreOAuth, Env, Rig, RigClock, Subject, Transport};
use token_test_support::stores::{RecordingStore, SavedRefresh};

const REUSE: Duration = Duration::from_secs(300);
const DEFAULT_SEED: u64 = 0x50A4_2026;

fn seed() -> u64 {
    std::env::var("SOAK_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEED)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .expect("a runtime")
}

#[derive(Default, Debug)]
struct Tally {
    calls: u64,
    tokens: u64,
    errors: HashMap<ErrorKind, u64>,
    reauths: u64,
    revoked: u64,
    faults: u64,
}

async fn soak(subject: &dyn Subject, sessions: usize, cycles: usize) {
    soak_over(subject, Arc::default(), sessions, cycles).await;
}

/// The soak, the manager's store recorded over `store`. Returns how many refreshed sets the
/// manager saved (the `Refreshed` events with a stored version).
async fn soak_over(
    subject: &dyn Subject,
    store: Arc<RecordingStore>,
    sessions: usize,
    cycles: usize,
) -> u64 {
    let seed = seed();
    let mut rng = StdRng::seed_from_u64(seed);
    let clock = RigClock::Tokio(Arc::new(TokioClock::starting_at(
        datetime!(2026-01-01 00:00 UTC),
    )));
    let reuse = if subject.reuse_configurable() {
        REUSE
    } else {
        Duration::ZERO
    };
    let mut env = Env::new(clock.clone(), reuse, Transport::InProcess);
    env.store = store;
    let rig: Arc<dyn Rig> = Arc::from(subject.start(&env).await);
    let names: Vec<String> = (0..sessions).map(|i| format!("customer-{i:04}")).collect();
    for name in &names {
        rig.seed(name).await;
    }
    let path = subject.refresh_path();
    let mut revoked: HashSet<String> = HashSet::new();
    let mut revoked_tokens: HashSet<TokenHash> = HashSet::new();
    let mut tally = Tally::default();

    for cycle in 0..=cycles {
        let last = cycle == cycles;
        // One cycle in five only enters the skew: refreshes then run ahead of expiry.
        let step = if !last && rng.random_bool(0.2) {
            3_600 - 45
        } else {
            3_601
        };
        clock.advance(Duration::from_secs(step)).await;
        if !last {
            for _ in 0..rng.random_range(0..=(sessions as u32 / 5).max(2)) {
                tally.faults += 1;
                inject(subject, rig.sandbox(), path, &mut rng);
            }
            if rng.random_bool(0.3) {
                let victim = &names[rng.random_range(0..names.len())];
                if let Some(set) = rig.stored(victim).await
                    && let Some(refresh) = set.refresh_token
                {
                    rig.sandbox()
                        .issuer()
                        .revoke(refresh.expose_secret())
                        .await
                        .expect("revoke");
                    revoked.insert(victim.clone());
                    revoked_tokens.insert(TokenHash::of(refresh.expose_secret()));
                    tally.revoked += 1;
                }
            }
        }
        let mut callers = Vec::new();
        for name in &names {
            for _ in 0..rng.random_range(1..=3u32) {
                let (rig, name) = (rig.clone(), name.clone());
                callers.push(tokio::spawn(async move {
                    let result = rig.access_token(&name).await;
                    (name, result)
                }));
            }
        }
        let mut dead: HashSet<String> = HashSet::new();
        for caller in callers {
            let (name, result) = caller.await.expect("no caller panicked");
            tally.calls += 1;
            match result {
                Ok(_) => tally.tokens += 1,
                Err(error) => {
                    let kind = error.kind();
                    *tally.errors.entry(kind).or_default() += 1;
                    assert!(
                        matches!(
                            kind,
                            ErrorKind::Transient
                                | ErrorKind::OutcomeUnknown
                                | ErrorKind::ReauthRequired
                        ),
                        "{}: cycle {cycle}: unexpected {kind}: {error}",
                        subject.name()
                    );
                    if last {
                        assert_ne!(
                            kind,
                            ErrorKind::Transient,
                            "{}: no fault in the last cycle, yet: {error}",
                            subject.name()
                        );
                    }
                    if kind == ErrorKind::ReauthRequired {
                        dead.insert(name);
                    }
                }
            }
        }
        // Faults nobody consumed do not carry over into the next cycle.
        rig.sandbox().clear_faults();
        // Let refreshes started ahead of expiry finish (paused clock: time moves when idle).
        tokio::time::sleep(Duration::from_secs(120)).await;
        // The users told to re-authorize log in again.
        for name in dead {
            tally.reauths += 1;
            revoked.remove(&name);
            rig.seed(&name).await;
        }
    }

    // Every session's stored refresh token is accepted by the issuer.
    let mut accepted = 0;
    for name in &names {
        if revoked.contains(name) {
            continue;
        }
        accepted += 1;
        let stored = rig
            .stored(name)
            .await
            .unwrap_or_else(|| panic!("{}: {name} was lost from the store", subject.name()));
        let refresh = stored.refresh_token.expect("a refresh token");
        rig.sandbox()
            .issuer()
            .refresh(refresh.expose_secret())
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {name}'s stored refresh token is refused: {e}",
                    subject.name()
                )
            });
    }

    assert!(
        accepted > 0,
        "{}: no stored refresh token left to check",
        subject.name()
    );

    // Re-auth signals carry the provider's reason.
    let events = env.events.events().clone();
    assert!(
        events.iter().any(|e| matches!(e, Event::Refreshed { .. })),
        "{}: the manager reported no refresh: {} events",
        subject.name(),
        events.len()
    );
    let mut told: HashMap<String, u64> = HashMap::new();
    for event in &events {
        if let Event::ReauthRequired(reauth) = event {
            assert!(
                reauth.code.is_some(),
                "{}: re-auth without the provider's code: {reauth:?}",
                subject.name()
            );
            *told.entry(reauth.session.clone()).or_default() += 1;
        }
    }

    // The issuer's refusals: each explained by a revocation or by a lost answer.
    let saved: HashSet<TokenHash> = lock(&env.store.saved_refresh).clone();
    let refusals = lock(&env.issuer_store.refusals).clone();
    let mut explained: HashMap<String, u64> = HashMap::new();
    let mut used = 0;
    for refusal in &refusals {
        let subject_name = refusal.subject.clone().unwrap_or_default();
        match refusal.rejection {
            RotateRejection::Used { .. } => {
                used += 1;
                let successor = refusal.successor.expect("a used token has a successor");
                assert!(
                    !saved.contains(&successor),
                    "{}: {subject_name} sent a rotated refresh token after storing its successor",
                    subject.name()
                );
            }
            RotateRejection::Revoked => assert!(
                revoked_tokens.contains(&refusal.presented),
                "{}: {subject_name} was refused as revoked without being revoked",
                subject.name()
            ),
            other => panic!(
                "{}: the issuer refused {subject_name}'s refresh token: {other:?}",
                subject.name()
            ),
        }
        *explained.entry(subject_name).or_default() += 1;
    }
    // The checks above saw the refusals they are about: each revocation was refused later, and
    // (a provider that cannot issue anew) told its session to re-authorize.
    if tally.revoked > 0 {
        assert!(
            refusals
                .iter()
                .any(|r| matches!(r.rejection, RotateRejection::Revoked)),
            "{}: {} revocations, yet the issuer refused no revoked token",
            subject.name(),
            tally.revoked
        );
        assert!(
            subject.can_issue() || !told.is_empty(),
            "{}: {} revocations, yet no re-auth was signalled",
            subject.name(),
            tally.revoked
        );
    }
    for (session, times) in &told {
        assert!(
            explained.get(session).copied().unwrap_or(0) >= *times,
            "{}: {session} was told to re-authorize {times} times with fewer refusals at the issuer",
            subject.name()
        );
    }
    let rotated = *lock(&env.issuer_store.rotated);
    let reused = *lock(&env.issuer_store.reused);
    println!(
        "{} (seed {seed}): {sessions} sessions, {cycles} cycles, {} faults queued, {} revocations; \
         {} calls: {} tokens, errors {:?}; {} re-auths; issuer: {rotated} rotations, {reused} \
         reuse answers, {used} used-token refusals (all after a lost answer)",
        subject.name(),
        tally.faults,
        tally.revoked,
        tally.calls,
        tally.tokens,
        tally.errors,
        tally.reauths,
    );
    assert!(
        rotated as usize >= sessions * cycles / 2,
        "too few refreshes to mean much"
    );
    events
        .iter()
        .filter(|e| {
            matches!(
                e,
                Event::Refreshed {
                    version: Some(_),
                    ..
                }
            )
        })
        .count() as u64
}

/// One random fault on the refresh path.
fn inject(
    subject: &dyn Subject,
    sandbox: &token_core::sandbox::RunningSandbox,
    path: &str,
    rng: &mut StdRng,
) {
    let fail = |times: u32, failure: Failure| {
        let sealed = subject.seal(failure, sandbox.clock().now());
        sandbox.fail_next(path, times, sealed);
    };
    match rng.random_range(0..7u32) {
        // Mostly short runs; one time in ten an outage every session runs into.
        0 if rng.random_bool(0.1) => {
            fail(rng.random_range(50..=300), Failure::service_unavailable())
        }
        0 => fail(rng.random_range(1..=4), Failure::service_unavailable()),
        1 => fail(
            rng.random_range(1..=2),
            Failure::new(StatusCode::TOO_MANY_REQUESTS).with_retry_after(1),
        ),
        2 | 3 => sandbox.drop_next(path, 1),
        4 => fail(
            1,
            Failure::new(StatusCode::OK)
                .with_json(&json!({"unexpected": true}))
                .with_body(br#"{"access_token": "#.to_vec()),
        ),
        5 => {
            let mut sample = subject.success_sample();
            let (parent, key) = subject
                .access_pointer()
                .rsplit_once('/')
                .expect("a pointer");
            if let Some(object) = sample.pointer_mut(parent).and_then(|v| v.as_object_mut()) {
                object.remove(key);
            }
            fail(1, Failure::new(StatusCode::OK).with_json(&sample));
        }
        _ => sandbox.delay_next(path, 1, Duration::from_secs(rng.random_range(1..=5))),
    }
}

macro_rules! soak_test {
    ($name:ident, $subject:expr, $sessions:expr, $cycles:expr) => {
        #[test]
        fn $name() {
            runtime().block_on(soak(&$subject, $sessions, $cycles));
        }
    };
}

soak_test!(soak_token_core_sandbox_oauth, CoreOAuth, 200, 30);

/// The soak once over `PostgresStore` (token-core's own provider and sandbox), with the same
/// invariants: every load, save, lease and delete is a round trip to the test database.
/// Bounded: 100 sessions, 20 cycles (a few seconds).
#[test]
fn soak_token_core_sandbox_oauth_over_postgres() {
    let Some(url) = pg::test_url("soak_token_core_sandbox_oauth_over_postgres") else {
        return;
    };
    let schema = pg::unique_schema();
    let database = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("a runtime");
    let store = database.block_on(async {
        PostgresStore::open(&pg::database(&url, &schema))
            .await
            .expect("the test database is reachable")
    });
    let store = RealTime {
        store: Arc::new(store),
        database: database.handle().clone(),
    };
    const SESSIONS: usize = 100;
    let saved = runtime().block_on(soak_over(
        &CoreOAuth,
        Arc::new(RecordingStore::new(
            Arc::new(store),
            SavedRefresh::default(),
        )),
        SESSIONS,
        20,
    ));
    // The soak's sets were in the database: every session has its row (the re-authorized ones
    // logged in again), and every seed and every saved refresh took a version.
    let (rows, versions) = database.block_on(async {
        let count = format!("SELECT count(*) FROM \"{schema}\".token_sets");
        let last = format!("SELECT last_value FROM \"{schema}\".token_set_versions");
        (
            pg::scalar(&url, &count).await,
            pg::scalar(&url, &last).await,
        )
    });
    assert_eq!(rows, SESSIONS as i64, "rows in {schema}.token_sets");
    assert!(
        versions >= (SESSIONS as u64 + saved) as i64,
        "{versions} versions for {SESSIONS} seeds and {saved} saved refreshes"
    );
    database.block_on(pg::drop_schema(&url, &schema));
}

/// A store whose calls run on a real-time runtime of their own, each waited for from a blocking
/// thread of the soak's runtime: tokio does not let its paused clock jump ahead while a
/// blocking task runs, so neither the soak's timers nor the store's operation timeout fire
/// early while the database answers.
struct RealTime {
    store: Arc<PostgresStore>,
    database: tokio::runtime::Handle,
}

impl RealTime {
    async fn call<T, F>(&self, call: impl FnOnce(Arc<PostgresStore>) -> F + Send + 'static) -> T
    where
        F: Future<Output = T>,
        T: Send + 'static,
    {
        let (store, database) = (self.store.clone(), self.database.clone());
        tokio::task::spawn_blocking(move || database.block_on(call(store)))
            .await
            .expect("the store call did not panic")
    }
}

#[async_trait]
impl TokenStore for RealTime {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        let key = key.clone();
        self.call(move |store| async move { store.load(&key).await })
            .await
    }

    async fn save(
        &self,
        key: &SessionKey,
        set: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        let (key, set) = (key.clone(), set.clone());
        self.call(move |store| async move { store.save(&key, &set, expected).await })
            .await
    }

    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        let key = key.clone();
        self.call(move |store| async move { store.delete(&key, expected).await })
            .await
    }

    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let (key, holder) = (key.clone(), holder.to_owned());
        self.call(move |store| async move { store.acquire_lease(&key, &holder, ttl).await })
            .await
    }

    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        let (key, holder) = (key.clone(), holder.to_owned());
        self.call(move |store| async move { store.release_lease(&key, &holder).await })
            .await
    }
}
soak_test!(soak_oauth2, subjects::OAuth2, 200, 30);
soak_test!(soak_maya, subjects::Maya, 200, 30);
soak_test!(soak_paymentsgate, subjects::Paymentsgate, 200, 30);
soak_test!(soak_vaultist, subjects::Vaultist, 200, 30);
// RSA signatures both ways are slow in a debug build: fewer sessions.
soak_test!(soak_alipayplus, subjects::AlipayPlus, 10, 10);
