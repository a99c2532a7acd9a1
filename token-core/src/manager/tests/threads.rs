//! Sessions under callers on several threads at once (real time, no paused clock):
//! lookups, handles, 401s, forced refreshes, logins and removes racing each other. Whatever
//! the interleaving, no refresh token is presented twice (a provider that treats reuse as
//! theft would revoke the grant), no re-auth is declared (every login is a live grant),
//! every access token answered is one a refresh gave (a login's has expired), and once the
//! managers are shut down the store keeps, for every name, nothing or a refresh token never
//! presented (no pair the provider sent was dropped).

use std::collections::HashMap;

use super::model::Rng;
use super::*;

/// A provider with any number of grants, each refresh token good for one refresh and no
/// reuse window: a second presentation is refused, and counted. With `window`, it has a
/// reuse window instead, and loses answers.
#[derive(Default)]
struct OneUse {
    /// Whether some calls fail before the provider reads the token: a 503 or a panic.
    faults: bool,
    /// A reuse window of five minutes: a spent refresh token is answered again with its
    /// successor, as long as that successor has not been spent in turn (then it is refused,
    /// and counted: the client went back to a token it had replaced). One answer in five is
    /// lost after the rotation.
    window: bool,
    /// Whether the provider issues a new grant on its own (client credentials).
    issues: bool,
    /// Each spent refresh token's successor.
    successors: StdMutex<HashMap<String, TokenSet>>,
    /// The refresh tokens refused.
    refused: StdMutex<Vec<String>>,
    calls: AtomicU32,
    minted: AtomicU32,
    /// Each refresh token minted, and how many times it was presented.
    presented: StdMutex<HashMap<String, u32>>,
    /// The access tokens refreshes answered (a login's is expired from the start).
    refreshed: StdMutex<std::collections::HashSet<String>>,
}

impl OneUse {
    /// A new grant, its access token already expired (the next call refreshes).
    fn login(&self) -> TokenSet {
        let n = self.minted.fetch_add(1, Ordering::SeqCst) + 1;
        self.presented.lock().unwrap().insert(format!("rt-{n}"), 0);
        TokenSet::new(AccessToken::new(format!("at-{n}")))
            .with_refresh_token(RefreshToken::new(format!("rt-{n}")))
            .with_access_expires_at(OffsetDateTime::UNIX_EPOCH)
    }

    /// With a reuse window: the successor of `presented`, new or (inside the window, while
    /// unspent) again; `None` when refused.
    fn rotate(&self, presented: &str) -> Option<TokenSet> {
        let mut successors = self.successors.lock().unwrap();
        let spent = |token: &str| self.presented.lock().unwrap().get(token).copied();
        *self
            .presented
            .lock()
            .unwrap()
            .entry(presented.to_owned())
            .or_default() += 1;
        if let Some(successor) = successors.get(presented) {
            let next = successor.refresh_token.as_ref().unwrap().expose_secret();
            if spent(next) == Some(0) {
                return Some(successor.clone());
            }
        } else if spent(presented) == Some(1) {
            let mut next = self.login();
            next.access_expires_at = Some(OffsetDateTime::now_utc() + HOUR);
            let access = next.access_token.expose_secret().to_owned();
            self.refreshed.lock().unwrap().insert(access);
            successors.insert(presented.to_owned(), next.clone());
            return Some(next);
        }
        self.refused.lock().unwrap().push(presented.to_owned());
        None
    }

    /// Whether a refresh answered `token` (it is valid for an hour from then).
    fn refreshed(&self, token: &AccessToken) -> bool {
        self.refreshed
            .lock()
            .unwrap()
            .contains(token.expose_secret())
    }
}

#[async_trait]
impl Provider for Arc<OneUse> {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "one-use"
    }

    fn can_issue(&self) -> bool {
        self.issues
    }

    async fn issue(&self, _: &CallContext) -> Result<TokenSet, Error> {
        tokio::task::yield_now().await;
        let mut set = self.login();
        set.access_expires_at = Some(OffsetDateTime::now_utc() + HOUR);
        let access = set.access_token.expose_secret().to_owned();
        self.refreshed.lock().unwrap().insert(access);
        Ok(set)
    }

    fn reuse_window(&self) -> Duration {
        match self.window {
            true => Duration::from_secs(300),
            false => Duration::ZERO,
        }
    }

    async fn refresh(&self, _: &CallContext, current: &TokenSet) -> Result<TokenSet, Error> {
        let presented = current.refresh_token.as_ref().unwrap().expose_secret();
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.faults && call % 7 == 3 {
            return Err(unavailable(None));
        }
        if self.faults && call % 13 == 5 {
            panic!("the provider's code panicked");
        }
        if self.window {
            let answer = self.rotate(presented);
            tokio::task::yield_now().await;
            return match answer {
                Some(_) if call % 5 == 2 => {
                    Err(TransportError::answer_lost("connection closed before the answer").into())
                }
                Some(next) => Ok(next),
                None => Err(invalid_grant()),
            };
        }
        let first = {
            let mut all = self.presented.lock().unwrap();
            let count = all.entry(presented.to_owned()).or_default();
            *count += 1;
            *count == 1
        };
        tokio::task::yield_now().await;
        if !first {
            return Err(invalid_grant());
        }
        let mut next = self.login();
        next.access_expires_at = Some(OffsetDateTime::now_utc() + HOUR);
        let access = next.access_token.expose_secret().to_owned();
        self.refreshed.lock().unwrap().insert(access);
        Ok(next)
    }
}

/// What a race adds to random calls on one session through one manager.
#[derive(Clone, Copy, Default)]
struct Race {
    /// Some provider calls fail before the provider reads the token: a 503 or a panic.
    faults: bool,
    /// How many calls each task makes.
    calls: usize,
    /// How many session names the calls spread over (one, `s`, when at most one): names
    /// are removed and looked up without tokens, so their entries leave the map and come
    /// back.
    names: usize,
    /// Logins also come through `insert_refresh_token`.
    insert_refresh_token: bool,
    /// Some callers are dropped mid-call (their future dropped after a few polls, or their
    /// task aborted).
    cancel: bool,
    /// One task shuts its manager down halfway through.
    shutdown: bool,
    /// Store calls fail (`Error::Store` is an answer).
    store_faults: bool,
    /// The provider has a reuse window, and loses answers after rotating (see [`OneUse`]).
    window: bool,
    /// No task holds a handle across its calls.
    unheld: bool,
    /// The provider issues grants of its own (see [`OneUse`]).
    issues: bool,
}

impl Race {
    fn calls(calls: usize) -> Self {
        Self {
            calls,
            ..Self::default()
        }
    }
}

/// Eight tasks on four threads, spread over `managers`, each making `race.calls` random
/// calls; then, with every manager shut down, the provider's count of each refresh token's
/// presentations, and what the store (`managers[0]`'s) holds for every name.
fn race(race: Race, managers: impl Fn(&Arc<OneUse>) -> Vec<TokenManager<Arc<OneUse>>>) {
    race_on(race, |provider| {
        let managers = managers(provider);
        let store = managers[0].store().clone();
        (managers, store)
    })
}

/// The managers of a race, and the store for its last check (one that answers every call).
type Racers = (Vec<TokenManager<Arc<OneUse>>>, Arc<dyn TokenStore>);

/// As [`race`], the store for the last check given beside the managers.
fn race_on(race: Race, managers: impl Fn(&Arc<OneUse>) -> Racers) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    let names: Vec<String> = match race.names {
        0 | 1 => vec!["s".to_owned()],
        n => (0..n).map(|i| format!("s{i}")).collect(),
    };
    runtime.block_on(async {
        let provider = Arc::new(OneUse {
            faults: race.faults,
            window: race.window,
            issues: race.issues,
            ..OneUse::default()
        });
        let (managers, store) = managers(&provider);
        for name in &names {
            // Until the store takes it (a store with faults fails one call in four).
            let mut tries = 0;
            while let Err(error) = managers[0].insert(name, provider.login()).await {
                assert!(race.store_faults && tries < 100, "{error:?}");
                tries += 1;
            }
        }
        // Set as a shutdown starts: `ShuttingDown` is an answer from then on.
        let shut = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let tasks: Vec<_> = (0..8u64)
            .map(|seed| {
                let shut = shut.clone();
                let manager = managers[seed as usize % managers.len()].clone();
                let provider = provider.clone();
                let names = names.clone();
                tokio::spawn(async move {
                    let mut rng = Rng(seed);
                    let mut unexpected = Vec::new();
                    let mut last = HashMap::new();
                    // Held across the calls: their sessions stay in the map through removes.
                    // Without them, sessions without tokens leave the map (and are retired).
                    let held: Vec<_> = match race.unheld {
                        false => names
                            .iter()
                            .map(|name| Some(manager.session(name)))
                            .collect(),
                        true => names.iter().map(|_| None).collect(),
                    };
                    for call in 0..race.calls {
                        if race.shutdown && seed == 0 && call == race.calls / 2 {
                            shut.store(true, Ordering::SeqCst);
                            if let Err(error) = manager.shutdown(Duration::from_secs(5)).await {
                                unexpected.push(format!("shutdown: {error:?}"));
                            }
                        }
                        let pick = rng.below(names.len() as u64) as usize;
                        let name = names[pick].clone();
                        let held = &held[pick];
                        let op = rng.below(if race.insert_refresh_token { 12 } else { 11 });
                        let rejected = last.get(&name).cloned();
                        let answer = async {
                            match op {
                                0..=2 => manager.access_token(&name).await.map(Some),
                                3 => match held {
                                    Some(held) => held.access_token().await.map(Some),
                                    None => {
                                        let handle = manager.session(&name);
                                        tokio::task::yield_now().await;
                                        handle.access_token().await.map(Some)
                                    }
                                },
                                4 => manager.session(&name).access_token().await.map(Some),
                                5 => match &rejected {
                                    Some(token) => {
                                        manager.refresh_rejected(&name, token).await.map(Some)
                                    }
                                    None => manager.refresh_now(&name).await.map(Some),
                                },
                                6 => manager.refresh_now(&name).await.map(Some),
                                7 => manager.remove(&name).await.map(|()| None),
                                8..=10 => {
                                    manager.insert(&name, provider.login()).await.map(|()| None)
                                }
                                _ => {
                                    let login = provider.login().refresh_token.unwrap();
                                    manager.insert_refresh_token(&name, login).await.map(Some)
                                }
                            }
                        };
                        let answer = match race.cancel.then(|| rng.below(4)) {
                            Some(0) => match polled(rng.below(6), answer).await {
                                Some(answer) => answer,
                                None => continue,
                            },
                            Some(1) => {
                                // Aborted from outside after a few turns of the scheduler.
                                let (manager, turns) = (manager.clone(), rng.below(8));
                                let (name, login) = (name.clone(), provider.login());
                                let forced = rng.below(3);
                                let task = tokio::spawn(async move {
                                    match forced {
                                        0 => manager.access_token(&name).await.map(Some),
                                        1 => manager.refresh_now(&name).await.map(Some),
                                        _ => manager.insert(&name, login).await.map(|()| None),
                                    }
                                });
                                for _ in 0..turns {
                                    tokio::task::yield_now().await;
                                }
                                task.abort();
                                match task.await {
                                    Ok(answer) => answer,
                                    Err(_) => continue,
                                }
                            }
                            _ => answer.await,
                        };
                        match answer {
                            Ok(Some(token)) => {
                                if !provider.refreshed(&token) {
                                    unexpected.push(format!(
                                        "call {op} answered an access token no refresh gave: {}",
                                        token.expose_secret()
                                    ));
                                }
                                last.insert(name.clone(), token);
                            }
                            Ok(None) | Err(Error::NoTokens(_)) => {}
                            Err(Error::ShuttingDown) if shut.load(Ordering::SeqCst) => {}
                            Err(Error::Store(_)) if race.store_faults => {}
                            // The provider's 503s and panics, when it has faults.
                            // And its lost answers, when it has a reuse window.
                            Err(error)
                                if (race.faults || race.window)
                                    && error.kind() != ErrorKind::ReauthRequired
                                    && !matches!(error, Error::ReauthRequired(_)) => {}
                            Err(other) => unexpected.push(format!("call {op}: {other:?}")),
                        }
                    }
                    unexpected
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Vec::<String>::new());
        }
        for manager in &managers {
            manager.shutdown(Duration::from_secs(5)).await.unwrap();
        }
        let presented = provider.presented.lock().unwrap().clone();
        assert!(presented.values().any(|n| *n == 1), "refreshes ran");
        let refused = provider.refused.lock().unwrap().clone();
        assert!(refused.is_empty(), "refused: {refused:?}");
        if !race.window {
            let twice: Vec<_> = presented.iter().filter(|(_, n)| **n > 1).collect();
            assert!(twice.is_empty(), "presented more than once: {twice:?}");
        }
        let successors = provider.successors.lock().unwrap().clone();
        // No pair the provider sent was dropped: what the store keeps is a refresh token
        // never presented (the newest of its grant), or nothing (removed).
        for name in &names {
            let key = SessionKey::new("one-use", name.as_str());
            if let Some(record) = store.load(&key).await.unwrap() {
                let stored = refresh_of(&record);
                assert_eq!(
                    presented.get(stored),
                    Some(&0),
                    "{name} keeps {stored}, spent (successor {:?})",
                    successors.get(stored).map(|s| s
                        .refresh_token
                        .as_ref()
                        .unwrap()
                        .expose_secret()
                        .to_owned())
                );
            }
        }
    });
}

/// `future`'s output, unless it is still pending after `polls` polls: then it is dropped
/// (a caller that gave up) and `None`.
async fn polled<F: std::future::Future>(polls: u64, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut left = polls;
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        std::task::Poll::Ready(output) => std::task::Poll::Ready(Some(output)),
        std::task::Poll::Pending if left == 0 => std::task::Poll::Ready(None),
        std::task::Poll::Pending => {
            left -= 1;
            std::task::Poll::Pending
        }
    })
    .await
}

/// Every lookup that found nothing looks again at once, and every failure is tried again
/// soon; refreshes are spaced as little as a manager allows.
fn config() -> ManagerConfig {
    ManagerConfig::default()
        .with_failure_cooldown(Duration::from_millis(1))
        .with_min_refresh_interval(Duration::from_secs(1))
        .with_retry(
            RetryPolicy::default().with_backoff(Duration::from_millis(1), Duration::from_millis(2)),
        )
}

/// A manager for the race over `store`, which it shares with the other managers (other
/// processes), or over a `MemoryStore` of its own.
fn racer(provider: &Arc<OneUse>, store: Option<Arc<dyn TokenStore>>) -> TokenManager<Arc<OneUse>> {
    let mut builder = TokenManager::builder(provider.clone())
        .client(NoTransport)
        .config(config());
    if let Some(store) = store {
        builder = builder.shared_store(store);
    }
    builder.build().unwrap()
}

fn one_manager(provider: &Arc<OneUse>) -> Vec<TokenManager<Arc<OneUse>>> {
    vec![racer(provider, None)]
}

#[test]
fn one_session_raced_from_several_threads_never_spends_a_refresh_token_twice() {
    race(Race::calls(400), one_manager);
}

#[test]
fn one_session_raced_from_several_threads_with_503s_and_panics_never_spends_a_token_twice() {
    race(
        Race {
            faults: true,
            ..Race::calls(400)
        },
        one_manager,
    );
}

#[test]
fn two_processes_on_one_store_raced_from_several_threads_never_spend_a_refresh_token_twice() {
    let store = Arc::new(MemoryStore::new());
    let faults = Race {
        faults: true,
        ..Race::calls(400)
    };
    race(faults, |provider| {
        (0..2)
            .map(|_| racer(provider, Some(store.clone())))
            .collect()
    });
}

#[test]
fn two_processes_on_one_file_store_raced_from_several_threads_never_spend_a_token_twice() {
    let dir = tempfile::tempdir().unwrap();
    // Fewer calls: each writes and syncs files.
    let faults = Race {
        faults: true,
        ..Race::calls(150)
    };
    race(faults, |provider| {
        (0..2)
            .map(|_| {
                let store = crate::store::FileStore::open(dir.path()).unwrap();
                racer(provider, Some(Arc::new(store)))
            })
            .collect()
    });
}

#[cfg(feature = "postgres")]
#[test]
fn two_processes_on_one_postgres_store_raced_from_several_threads_never_spend_a_token_twice() {
    use crate::postgres::PostgresDatabase;
    use crate::store::PostgresStore;
    use crate::store::postgres::tests::{drop_schema, test_db, test_url};
    let Some(url) = test_url(
        "two_processes_on_one_postgres_store_raced_from_several_threads_never_spend_a_token_twice",
    ) else {
        return;
    };
    // Two pools (two processes) on one schema, opened on a runtime of their own that runs
    // until the end: the connections made there are driven by it.
    let opener = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let db = test_db(&url, "token-core-test-race");
    let other = PostgresDatabase::builder(&url)
        .unwrap()
        .schema(db.schema())
        .max_connections(4)
        .build()
        .unwrap();
    let stores = opener.block_on(async {
        [
            PostgresStore::open(&db).await.unwrap(),
            PostgresStore::open(&other).await.unwrap(),
        ]
    });
    let faults = Race {
        faults: true,
        ..Race::calls(150)
    };
    race(faults, |provider| {
        stores
            .iter()
            .map(|store| racer(provider, Some(Arc::new(store.clone()))))
            .collect()
    });
    opener.block_on(drop_schema(&db));
}

#[test]
fn several_sessions_whose_entries_leave_the_map_and_come_back_never_spend_a_token_twice() {
    let names = Race {
        names: 4,
        ..Race::calls(400)
    };
    race(names, one_manager);
}

#[test]
fn logins_through_insert_refresh_token_raced_from_several_threads_never_spend_a_token_twice() {
    let logins = Race {
        insert_refresh_token: true,
        ..Race::calls(400)
    };
    race(logins, one_manager);
}

#[test]
fn callers_dropped_mid_call_never_make_a_refresh_token_spent_twice() {
    let cancel = Race {
        cancel: true,
        names: 2,
        insert_refresh_token: true,
        ..Race::calls(400)
    };
    race(cancel, one_manager);
}

#[test]
fn a_shutdown_in_the_middle_of_the_race_loses_no_pair_and_spends_no_token_twice() {
    let shutdown = Race {
        shutdown: true,
        names: 2,
        insert_refresh_token: true,
        ..Race::calls(400)
    };
    race(shutdown, one_manager);
}

/// A store whose calls fail now and then: one in eight before reaching the store, and one
/// in eight after it (the store did it, the caller hears a failure: an answer lost). Every
/// call yields first, so that other threads come between.
struct Unreliable {
    inner: Arc<MemoryStore>,
    calls: std::sync::atomic::AtomicU64,
    /// Whether lease calls fail too (a lease granted unheard, or not given back, then
    /// holds another process off for a lease length).
    leases: bool,
}

impl Unreliable {
    fn over(inner: Arc<MemoryStore>) -> Self {
        Self {
            inner,
            calls: Default::default(),
            leases: true,
        }
    }

    /// Its lease calls always answered.
    fn records_only(inner: Arc<MemoryStore>) -> Self {
        Self {
            leases: false,
            ..Self::over(inner)
        }
    }

    /// Runs `call` on the store, or not, and answers its result or a failure.
    async fn call<T>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let mut rng = Rng(self.calls.fetch_add(1, Ordering::SeqCst));
        let fault = || StoreError::Backend {
            message: "the store is unreachable".into(),
            source: None,
        };
        tokio::task::yield_now().await;
        match rng.below(8) {
            0 => Err(fault()),
            1 => call.await.and(Err(fault())),
            _ => call.await,
        }
    }
}

#[async_trait]
impl TokenStore for Unreliable {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        self.call(self.inner.load(key)).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        self.call(self.inner.save(key, record, expected)).await
    }
    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        self.call(self.inner.delete(key, expected)).await
    }
    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let lease = self.inner.acquire_lease(key, holder, ttl);
        match self.leases {
            true => self.call(lease).await,
            false => lease.await,
        }
    }
    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        let release = self.inner.release_lease(key, holder);
        match self.leases {
            true => self.call(release).await,
            false => release.await,
        }
    }
}

/// For [`race_on`]: `processes` managers over one `MemoryStore` behind [`Unreliable`]; the
/// lease calls of one manager fail too, those of several are always answered (a lease
/// granted unheard would hold the other process off for a lease length).
fn unreliable(processes: usize) -> impl Fn(&Arc<OneUse>) -> Racers {
    move |provider| {
        let memory = Arc::new(MemoryStore::new());
        let managers = (0..processes)
            .map(|_| {
                let store = match processes {
                    1 => Unreliable::over(memory.clone()),
                    _ => Unreliable::records_only(memory.clone()),
                };
                racer(provider, Some(Arc::new(store)))
            })
            .collect();
        (managers, memory as Arc<dyn TokenStore>)
    }
}

#[test]
fn a_store_that_fails_at_random_never_makes_a_refresh_token_spent_twice_or_a_pair_lost() {
    let store_faults = Race {
        store_faults: true,
        names: 2,
        ..Race::calls(400)
    };
    race_on(store_faults, unreliable(1));
}

#[test]
fn callers_dropped_mid_call_over_a_store_that_fails_at_random_never_spend_a_token_twice() {
    let both = Race {
        store_faults: true,
        cancel: true,
        insert_refresh_token: true,
        names: 2,
        ..Race::calls(400)
    };
    race_on(both, unreliable(1));
}

#[test]
fn two_processes_on_a_store_whose_record_calls_fail_at_random_never_spend_a_token_twice() {
    let store_faults = Race {
        store_faults: true,
        names: 2,
        ..Race::calls(400)
    };
    race_on(store_faults, unreliable(2));
}

#[test]
fn answers_lost_after_rotation_inside_a_reuse_window_lose_no_pair() {
    let lost = Race {
        window: true,
        names: 2,
        ..Race::calls(400)
    };
    race(lost, one_manager);
}

#[test]
fn answers_lost_inside_a_reuse_window_over_a_failing_store_and_two_processes_lose_no_pair() {
    let lost = Race {
        window: true,
        store_faults: true,
        names: 2,
        ..Race::calls(400)
    };
    race_on(lost, unreliable(2));
}

#[test]
fn sessions_retired_as_they_leave_the_map_never_spend_a_token_twice() {
    let unheld = Race {
        unheld: true,
        names: 3,
        insert_refresh_token: true,
        ..Race::calls(400)
    };
    race(unheld, one_manager);
}

#[test]
fn sessions_retired_over_a_store_that_fails_at_random_with_callers_dropped_never_spend_twice() {
    let unheld = Race {
        unheld: true,
        names: 2,
        store_faults: true,
        cancel: true,
        ..Race::calls(400)
    };
    race_on(unheld, unreliable(1));
}

#[test]
fn sessions_retired_in_two_processes_on_one_store_never_spend_a_token_twice() {
    let unheld = Race {
        unheld: true,
        names: 2,
        faults: true,
        ..Race::calls(400)
    };
    let store = Arc::new(MemoryStore::new());
    race(unheld, |provider| {
        (0..2)
            .map(|_| racer(provider, Some(store.clone())))
            .collect()
    });
}

#[test]
fn sessions_a_provider_issues_for_raced_from_several_threads_never_spend_a_token_twice() {
    let issues = Race {
        issues: true,
        unheld: true,
        names: 3,
        ..Race::calls(400)
    };
    race(issues, one_manager);
}

#[test]
fn sessions_a_provider_issues_for_in_two_processes_over_a_failing_store_never_spend_twice() {
    let issues = Race {
        issues: true,
        unheld: true,
        store_faults: true,
        names: 2,
        ..Race::calls(400)
    };
    race_on(issues, unreliable(2));
}
