//! Seeded model runs: two managers (two processes) on one store with leases share one
//! session, and random interleavings of callers, 401s, logins (`insert`), removes, provider
//! faults (a 503, an answer lost after the rotation, a panic), store outages (every call of
//! one process, or of both, failing for a while) and time passing run on tokio's paused clock. The
//! store is in memory, so a seed replays the same run (`MODEL_SEEDS=N` runs seeds 0 to N).
//! The provider never revokes anything (a login is a new grant) and answers a spent refresh
//! token again with its successor for its reuse window, so after every run:
//! - no re-auth was declared (any verdict would be false);
//! - the stored refresh token is the newest of its grant (no pair the provider sent was
//!   dropped) and refreshable, unless the session was last removed (then it has none).

use std::collections::HashMap;

use super::*;

/// SplitMix64: the runs are reproducible from their seed.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(super) fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// What the provider knows of a refresh token.
enum Grant {
    Live,
    /// Spent at the instant, answered again with its successor inside the reuse window.
    Replaced(TokenSet, OffsetDateTime),
}

/// A provider with any number of grants (a login does not revoke the older ones): each
/// refresh rotates, and a spent refresh token is answered again with its successor for the
/// reuse window; `script` injects faults into the next refreshes.
struct Grants {
    clock: TokioClock,
    grants: StdMutex<HashMap<String, Grant>>,
    minted: AtomicU32,
    script: StdMutex<VecDeque<Step>>,
    refused: StdMutex<Vec<String>>,
    log: Arc<StdMutex<Vec<String>>>,
}

const REUSE: Duration = Duration::from_secs(300);

impl Grants {
    fn mint(&self) -> TokenSet {
        let n = self.minted.fetch_add(1, Ordering::SeqCst) + 1;
        let set = TokenSet::new(AccessToken::new(format!("at-{n}")))
            .with_refresh_token(RefreshToken::new(format!("rt-{n}")))
            .with_access_expires_at(self.clock.now() + HOUR);
        self.grants
            .lock()
            .unwrap()
            .insert(format!("rt-{n}"), Grant::Live);
        set
    }

    /// A login: a new grant.
    fn login(&self) -> TokenSet {
        self.mint()
    }

    fn rotate(&self, presented: &str) -> Result<TokenSet, Error> {
        let now = self.clock.now();
        let found = match self.grants.lock().unwrap().get(presented) {
            Some(Grant::Live) => None,
            Some(Grant::Replaced(successor, at)) if now - *at < REUSE => {
                return Ok(successor.clone());
            }
            _ => Some(()),
        };
        if found.is_some() {
            self.refused
                .lock()
                .unwrap()
                .push(format!("{presented} at {now}"));
            return Err(invalid_grant());
        }
        let next = self.mint();
        self.grants
            .lock()
            .unwrap()
            .insert(presented.to_owned(), Grant::Replaced(next.clone(), now));
        Ok(next)
    }
}

#[async_trait]
impl Provider for Arc<Grants> {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "grants"
    }

    fn reuse_window(&self) -> Duration {
        REUSE
    }

    async fn refresh(&self, _: &CallContext, current: &TokenSet) -> Result<TokenSet, Error> {
        let presented = current.refresh_token.as_ref().unwrap().expose_secret();
        let step = self.script.lock().unwrap().pop_front();
        self.log.lock().unwrap().push(format!(
            "{} provider {presented} {:?}",
            self.clock.now(),
            step.as_ref().map(|s| match s {
                Step::Fail(_) => "fail",
                Step::LoseAfterRotate => "lose",
                Step::Panic => "panic",
                _ => "?",
            })
        ));
        match step {
            Some(Step::Fail(error)) => Err(error),
            Some(Step::LoseAfterRotate) => {
                self.rotate(presented)?;
                Err(TransportError::answer_lost("connection closed before the answer").into())
            }
            Some(Step::Panic) => panic!("the provider's code panicked"),
            _ => self.rotate(presented),
        }
    }
}

/// One store shared by the processes: a `MemoryStore` with leases timed by the clock, as a
/// `FileStore` or `PostgresStore` grants them (in memory, so a run is the same every time).
struct Shared {
    records: MemoryStore,
    leases: StdMutex<HashMap<SessionKey, (String, OffsetDateTime)>>,
    clock: TokioClock,
}

impl Shared {
    fn acquire(&self, key: &SessionKey, holder: &str, ttl: Duration) -> Lease {
        let now = self.clock.now();
        let mut leases = self.leases.lock().unwrap();
        let granted = match leases.get(key) {
            Some((other, until)) if other != holder && now < *until => {
                let remaining = (*until - now).try_into().unwrap_or_default();
                return Lease::HeldByOther { remaining };
            }
            Some((other, _)) if other != holder => Lease::TakenOver,
            _ => Lease::Acquired,
        };
        leases.insert(key.clone(), (holder.to_owned(), later(now, ttl)));
        granted
    }

    fn release(&self, key: &SessionKey, holder: &str) {
        let mut leases = self.leases.lock().unwrap();
        if leases
            .get(key)
            .is_some_and(|(held_by, _)| held_by == holder)
        {
            leases.remove(key);
        }
    }
}

/// A process's handle on the shared store, failing every call while the store is `down`
/// (an outage, as every process sees it).
struct Outages {
    down: Arc<std::sync::atomic::AtomicBool>,
    log: Arc<StdMutex<Vec<String>>>,
    index: usize,
    clock: TokioClock,
}

#[async_trait]
impl Hooks for Outages {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        let line = format!("{} m{} store {call:?}", self.clock.now(), self.index);
        self.log.lock().unwrap().push(line);
        if self.down.load(Ordering::SeqCst) {
            return Err(StoreError::Backend {
                message: "the store is unreachable".into(),
                source: None,
            });
        }
        Ok(())
    }
}

#[async_trait]
impl TokenStore for Shared {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        self.records.load(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        self.records.save(key, record, expected).await
    }
    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        self.records.delete(key, expected).await
    }
    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        Ok(self.acquire(key, holder, ttl))
    }
    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        self.release(key, holder);
        Ok(())
    }
}

fn process(
    fake: &Arc<Grants>,
    clock: TokioClock,
    shared: &Arc<Shared>,
    down: &Arc<std::sync::atomic::AtomicBool>,
    reauths: &Arc<AtomicU32>,
    log: &Arc<StdMutex<Vec<String>>>,
    index: usize,
) -> TokenManager<Arc<Grants>> {
    let reauths = reauths.clone();
    let log = log.clone();
    let store = Hooked::over(
        shared.clone(),
        Outages {
            down: down.clone(),
            log: log.clone(),
            index,
            clock,
        },
    );
    TokenManager::builder(fake.clone())
        .store(store)
        .client(NoTransport)
        .clock(Arc::new(clock))
        .config(
            ManagerConfig::default()
                // Access tokens live an hour; refreshed 30 s after each is issued.
                .with_refresh_skew(Duration::from_secs(3570), Duration::ZERO)
                .with_lease_ttl(Duration::from_secs(30))
                .with_retry(
                    RetryPolicy::default()
                        .with_backoff(Duration::from_millis(100), Duration::from_secs(2)),
                ),
        )
        .on_event(move |event| {
            log.lock().unwrap().push(format!(
                "{} m{index} {}",
                clock.now(),
                match event {
                    Event::ReauthRequired(r) => format!("reauth {}", r.reason),
                    event => format!("{event:?}"),
                }
            ));
            if matches!(event, Event::ReauthRequired(_)) {
                reauths.fetch_add(1, Ordering::SeqCst);
            }
        })
        .build()
        .unwrap()
}

/// Lets refreshes and saves under way in the background finish (a retry after a lost
/// answer, a set saved again after an outage): two minutes, a second at a time.
async fn settle() {
    for _ in 0..120 {
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }
}

async fn run(seed: u64) {
    let mut rng = Rng(seed);
    let clock = TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC));
    let log = Arc::new(StdMutex::new(Vec::new()));
    let fake = Arc::new(Grants {
        clock,
        grants: StdMutex::default(),
        minted: AtomicU32::new(0),
        script: StdMutex::default(),
        refused: StdMutex::default(),
        log: log.clone(),
    });
    let reauths = Arc::new(AtomicU32::new(0));
    // Per process: an outage cuts one process off the store, or both.
    let down: [Arc<std::sync::atomic::AtomicBool>; 2] = Default::default();
    let shared = Arc::new(Shared {
        records: MemoryStore::new(),
        leases: StdMutex::default(),
        clock,
    });
    let managers = [
        process(&fake, clock, &shared, &down[0], &reauths, &log, 0),
        process(&fake, clock, &shared, &down[1], &reauths, &log, 1),
    ];
    managers[0].insert("s", fake.login()).await.unwrap();
    // Logins and removes, one at a time (an application does not insert an older login
    // after a newer one), each racing the refreshes; `true` while the session is removed.
    let removed = Arc::new(tokio::sync::Mutex::new(false));
    let mut tasks = tokio::task::JoinSet::new();
    let mut trace = Vec::new();
    let mut outage = 0;
    for _ in 0..150 {
        let manager = managers[rng.below(2) as usize].clone();
        let op = rng.below(100);
        trace.push(op);
        log.lock().unwrap().push(format!("{} op {op}", clock.now()));
        match op {
            0..=44 => {
                tasks.spawn(async move {
                    let _ = manager.access_token("s").await;
                });
            }
            45..=59 => {
                tasks.spawn(async move {
                    if let Ok(token) = manager.access_token("s").await {
                        let _ = manager.refresh_rejected("s", &token).await;
                    }
                });
            }
            60..=69 => {
                let (fake, removed, log) = (fake.clone(), removed.clone(), log.clone());
                tasks.spawn(async move {
                    let mut removed = removed.lock().await;
                    let set = fake.login();
                    let rt = set
                        .refresh_token
                        .as_ref()
                        .unwrap()
                        .expose_secret()
                        .to_owned();
                    log.lock()
                        .unwrap()
                        .push(format!("{} login {rt}", clock.now()));
                    // Refused while the store is down: the login is then not used.
                    if manager.insert("s", set).await.is_ok() {
                        *removed = false;
                    }
                });
            }
            70..=72 => {
                let removed = removed.clone();
                tasks.spawn(async move {
                    let mut removed = removed.lock().await;
                    if manager.remove("s").await.is_ok() {
                        *removed = true;
                    }
                });
            }
            73..=84 => {
                // One fault at a time: a provider that keeps failing for longer than its
                // reuse window after a lost answer loses the pair whatever a client does.
                let mut script = fake.script.lock().unwrap();
                if script.is_empty() {
                    script.push_back(match op {
                        73..=78 => Step::Fail(unavailable(None)),
                        79..=82 => Step::LoseAfterRotate,
                        _ => Step::Panic,
                    });
                }
            }
            85..=89 if outage == 0 => {
                // An outage of a few steps (shorter than the provider's reuse window: a
                // longer one after a lost answer loses the pair whatever the manager does).
                let cut = rng.below(3) as usize; // process 0, process 1, or both
                for (i, down) in down.iter().enumerate() {
                    down.store(cut == 2 || cut == i, Ordering::SeqCst);
                }
                outage = 1 + rng.below(4);
                log.lock()
                    .unwrap()
                    .push(format!("{} outage {cut} for {outage}", clock.now()));
            }
            _ => {}
        }
        if outage > 0 {
            outage -= 1;
            if outage == 0 {
                down.iter().for_each(|d| d.store(false, Ordering::SeqCst));
                log.lock()
                    .unwrap()
                    .push(format!("{} outage over", clock.now()));
            }
        }
        tokio::time::advance(Duration::from_millis(rng.below(20_000))).await;
        for _ in 0..rng.below(20) {
            tokio::task::yield_now().await;
        }
    }
    down.iter().for_each(|d| d.store(false, Ordering::SeqCst));
    let finished = tokio::time::timeout(Duration::from_secs(3600), async {
        while tasks.join_next().await.is_some() {}
    })
    .await;
    assert!(finished.is_ok(), "seed {seed}: a call never finished");
    fake.script.lock().unwrap().clear();
    down.iter().for_each(|d| d.store(false, Ordering::SeqCst));
    settle().await;

    let report = |what: String| -> ! {
        let grants = fake.grants.lock().unwrap();
        let grants: Vec<_> = grants
            .iter()
            .map(|(token, grant)| match grant {
                Grant::Live => format!("{token} live"),
                Grant::Replaced(next, at) => {
                    let next = next.refresh_token.as_ref().unwrap().expose_secret();
                    format!("{token} -> {next} at {at}")
                }
            })
            .collect();
        let states: Vec<String> = managers
            .iter()
            .map(|m| {
                let session = m.inner.session("s");
                let flying = session.flight_slot().is_some();
                let state = match session.load().as_deref() {
                    Some(State::Ready(c)) => format!(
                        "ready refresh_at={:?} usable_until={:?} saved={} version={:?}",
                        c.refresh_at(),
                        c.usable_until(),
                        c.saved(),
                        c.version()
                    ),
                    Some(State::Absent { .. }) => "absent".into(),
                    Some(State::Dead { .. }) => "dead".into(),
                    None => "unloaded".into(),
                };
                format!("flight={flying} {state}")
            })
            .collect();
        panic!(
            "seed {seed}: {what}\nmanagers {states:?}\nops {trace:?}\n{}\ngrants: {}",
            log.lock().unwrap().join("\n"),
            grants.join(", "),
        )
    };
    let declared = || reauths.load(Ordering::SeqCst);
    if declared() != 0 {
        report(format!(
            "a re-auth was declared; refused {:?}",
            fake.refused.lock().unwrap()
        ));
    }
    if *removed.lock().await {
        let outcome = managers[0].refresh_now("s").await;
        if !matches!(outcome, Err(Error::NoTokens(_))) {
            report(format!("removed, but {outcome:?}"));
        }
        return;
    }
    // A caller on each (a refresh whose answer was lost is finished by the next one).
    for (i, manager) in managers.iter().enumerate() {
        let outcome = manager.access_token("s").await;
        let shown = outcome.as_ref().map(|t| t.expose_secret().to_owned());
        log.lock()
            .unwrap()
            .push(format!("{} final m{i} {shown:?}", clock.now()));
        if outcome.is_err() {
            report(format!("{outcome:?}"));
        }
    }
    settle().await;
    // What is stored is the newest pair of its grant: no successor the provider sent was
    // dropped (a spent token still inside the reuse window would hide that).
    let stored = match shared
        .records
        .load(&SessionKey::new("grants", "s"))
        .await
        .unwrap()
    {
        Some(Versioned {
            value: StoredRecord::Tokens(stored),
            ..
        }) => stored.refresh_token.unwrap(),
        other => report(format!("no tokens stored: {other:?}")),
    };
    let live = matches!(
        fake.grants.lock().unwrap().get(stored.expose_secret()),
        Some(Grant::Live)
    );
    if !live {
        report(format!(
            "the stored refresh token {} was spent",
            stored.expose_secret()
        ));
    }
    for manager in &managers {
        let outcome = manager.refresh_now("s").await;
        if outcome.is_err() || declared() != 0 {
            report(format!("{outcome:?}"));
        }
    }
}

#[tokio::test(start_paused = true)]
async fn two_processes_under_random_interleavings_lose_nothing_and_declare_no_reauth() {
    let seeds: u64 = std::env::var("MODEL_SEEDS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(200);
    for seed in 0..seeds {
        run(seed).await;
    }
}
