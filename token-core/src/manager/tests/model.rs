//! Seeded model runs: two or three processes (managers) on one store with leases share one
//! session, and random interleavings of callers (by name and through a `SessionHandle`, some
//! giving up after a few polls, inside store and provider calls), 401s, logins (`insert`,
//! some already expired), removes, provider faults (a 503, an answer lost after the
//! rotation, a panic, a rotated pair whose access token cannot be sent; each answer takes a
//! little time), store faults (outages of one process's calls or of all; every call of a
//! process held for a while, longer than the lease and the store timeout at times; one call whose
//! answer is lost after it wrote, comes after the timeout, or never comes while the write
//! lands late; one that panics), processes that crash (nothing of them reaches the store or
//! the provider again) or are shut down, each replaced by a fresh manager on the same
//! store, and time passing run on tokio's paused clock. The lease, the store timeout, the
//! cooldown and the minimum refresh interval vary by seed. The store is in memory, so a
//! seed replays the same run (`MODEL_SEEDS=N` runs N seeds from `MODEL_FIRST_SEED`, 0, of
//! two processes; `MODEL3_SEEDS` and `MODEL3_FIRST_SEED` of three).
//! Faults of the store and of processes come one at a time, each within what the
//! provider's reuse window covers (after a crash, or a shutdown that timed out, a refresh is
//! asked for inside it: see crash.rs); the provider scripts no fault of its own for its
//! reuse window after it lost an answer, a crash or such a shutdown (which may have lost
//! one: a provider failing every call inside it loses the pair whatever a client does).
//! The provider never revokes anything (a login is a
//! new grant) and answers a spent refresh token again with its successor for its reuse
//! window, so:
//! - no re-auth is declared (any verdict would be false), and every call ends;
//! - every token answered was issued, and a process never answers an older token of a
//!   grant than one it answered before the call began;
//! - no process reports more refreshes than the answers it got;
//! - a shutdown that returns `Ok` leaves no newer pair of the stored grant unsaved;
//! - at the end the stored refresh token is the newest of its grant (no pair the provider
//!   sent was dropped) and refreshable, unless the session was removed (then every process
//!   answers `NoTokens`); each process, refreshed, serves what the store holds.

use std::collections::{HashMap, HashSet};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64};

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

/// A host's wall clock: true time (tokio's paused clock, which the provider and the store
/// keep) plus an offset that NTP steps now and then. A process restarted in a slot runs on
/// the same host, so on the same clock.
#[derive(Clone)]
struct HostClock {
    true_time: TokioClock,
    offset_nanos: Arc<AtomicI64>,
}

/// How far a host's clock may drift from true time, in seconds: an hour ahead (fifty minutes
/// when the provider's expiry is an instant of its clock), ten minutes behind (see
/// `run_faults`).
const AHEAD_AT_MOST: i64 = 3600;
const AHEAD_OF_AN_INSTANT_AT_MOST: i64 = 3000;
const BEHIND_AT_MOST: i64 = 600;

impl HostClock {
    fn new(true_time: TokioClock) -> Self {
        Self {
            true_time,
            offset_nanos: Arc::default(),
        }
    }

    fn offset(&self) -> time::Duration {
        time::Duration::nanoseconds(self.offset_nanos.load(Ordering::SeqCst))
    }

    /// Steps the clock by `by` seconds (back if negative), within the bounds; returns the
    /// offset from true time after the step, in seconds.
    fn step(&self, by: i64, ahead_at_most: i64) -> i64 {
        let offset = self.offset().whole_seconds();
        let to = (offset + by).clamp(-BEHIND_AT_MOST, ahead_at_most);
        self.offset_nanos
            .store(to * 1_000_000_000, Ordering::SeqCst);
        to
    }
}

impl Clock for HostClock {
    fn now(&self) -> OffsetDateTime {
        self.true_time.now() + self.offset()
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
/// reuse window; `script` injects faults into the next refreshes. Each answer takes a
/// little time before and after the rotation (drawn from `rng`).
struct Grants {
    clock: TokioClock,
    grants: StdMutex<HashMap<String, Grant>>,
    minted: AtomicU32,
    logins: AtomicU32,
    /// Each refresh token's grant (its login) and its place in that grant's chain.
    place: StdMutex<HashMap<String, (u32, u32)>>,
    /// Every access token issued.
    issued: StdMutex<HashSet<String>>,
    script: StdMutex<VecDeque<Step>>,
    refused: StdMutex<Vec<String>>,
    /// The grants of logins whose `insert` got no answer (refused, failed or given up):
    /// their save may land whenever, after a remove that came next too.
    unanswered: StdMutex<HashSet<u32>>,
    /// No provider fault is scripted before this: the reuse window after an answer lost
    /// once the provider rotated, counted from when the provider lost it (a lost answer
    /// scripted long before it is taken has no window yet).
    quiet_until: StdMutex<Option<tokio::time::Instant>>,
    log: Arc<StdMutex<Vec<String>>>,
    rng: StdMutex<Rng>,
}

const REUSE: Duration = Duration::from_secs(300);

impl Grants {
    fn mint(&self, place: (u32, u32)) -> TokenSet {
        let n = self.minted.fetch_add(1, Ordering::SeqCst) + 1;
        let set = TokenSet::new(AccessToken::new(format!("at-{n}")))
            .with_refresh_token(RefreshToken::new(format!("rt-{n}")))
            .with_access_expires_at(self.clock.now() + HOUR);
        let rt = format!("rt-{n}");
        self.place.lock().unwrap().insert(rt.clone(), place);
        self.issued.lock().unwrap().insert(format!("at-{n}"));
        self.grants.lock().unwrap().insert(rt, Grant::Live);
        set
    }

    /// A login: a new grant; its access token already expired if `expired`.
    fn login(&self, expired: bool) -> TokenSet {
        let grant = self.logins.fetch_add(1, Ordering::SeqCst) + 1;
        let mut set = self.mint((grant, 0));
        if expired {
            set.access_expires_at = Some(self.clock.now() - time::Duration::SECOND);
        }
        set
    }

    /// Whether refresh token `rt` is of a login whose `insert` got no answer.
    fn of_unanswered_login(&self, rt: &str) -> bool {
        let grant = self.place.lock().unwrap().get(rt).map(|(grant, _)| *grant);
        grant.is_some_and(|grant| self.unanswered.lock().unwrap().contains(&grant))
    }

    /// Whether refresh token `a` is of `b`'s grant and came after it.
    fn newer(&self, a: &str, b: &str) -> bool {
        let place = self.place.lock().unwrap();
        match (place.get(a), place.get(b)) {
            (Some((ga, ia)), Some((gb, ib))) => ga == gb && ia > ib,
            _ => false,
        }
    }

    fn latency(&self) -> Duration {
        Duration::from_millis(self.rng.lock().unwrap().below(1500))
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
        let (grant, at) = self.place.lock().unwrap()[presented];
        let next = self.mint((grant, at + 1));
        self.grants
            .lock()
            .unwrap()
            .insert(presented.to_owned(), Grant::Replaced(next.clone(), now));
        Ok(next)
    }
}

/// One run of a process (a manager): once `dead` (it crashed, or exited after its
/// shutdown), nothing of it reaches the store or the provider any more, and no answer
/// reaches it.
struct Life {
    name: String,
    dead: AtomicBool,
    /// The refresh tokens the provider's answers brought it.
    delivered: StdMutex<Vec<String>>,
    /// Its `Refreshed` events.
    refreshed: AtomicU32,
    /// The refresh tokens of the access tokens its callers were answered, in order.
    served: StdMutex<Vec<String>>,
    /// Its callers' tasks, ended with it.
    callers: StdMutex<Vec<tokio::task::AbortHandle>>,
}

impl Life {
    fn new(name: String) -> Arc<Self> {
        Arc::new(Self {
            name,
            dead: AtomicBool::new(false),
            delivered: StdMutex::default(),
            refreshed: AtomicU32::new(0),
            served: StdMutex::default(),
            callers: StdMutex::default(),
        })
    }

    fn dead(&self) -> bool {
        self.dead.load(Ordering::SeqCst)
    }

    /// Never returns once the process is dead.
    async fn gone(&self) {
        if self.dead() {
            std::future::pending::<()>().await;
        }
    }

    fn kill(&self) {
        self.dead.store(true, Ordering::SeqCst);
        for caller in self.callers.lock().unwrap().drain(..) {
            caller.abort();
        }
    }
}

/// The provider as one process reaches it.
#[derive(Clone)]
struct Proc {
    grants: Arc<Grants>,
    life: Arc<Life>,
    /// The process's host clock, and whether the provider's expiry is read as an
    /// `expires_in` on it (on receipt), not as an instant of the provider's (true) clock.
    host: HostClock,
    relative_expiry: bool,
}

#[async_trait]
impl Provider for Proc {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "grants"
    }

    fn reuse_window(&self) -> Duration {
        REUSE
    }

    async fn refresh(&self, _: &CallContext, current: &TokenSet) -> Result<TokenSet, Error> {
        let presented = current.refresh_token.as_ref().unwrap().expose_secret();
        let (before, after) = (self.grants.latency(), self.grants.latency());
        self.life.gone().await;
        tokio::time::sleep(before).await;
        self.life.gone().await;
        let step = self.grants.script.lock().unwrap().pop_front();
        self.grants.log.lock().unwrap().push(format!(
            "{} {} provider {presented} {:?}",
            self.grants.clock.now(),
            self.life.name,
            step.as_ref().map(|s| match s {
                Step::Fail(_) => "fail",
                Step::LoseAfterRotate => "lose",
                Step::Panic => "panic",
                Step::AnswerUnsendableAccess => "unsendable",
                _ => "?",
            })
        ));
        let answer = match step {
            Some(Step::Fail(error)) => Err(error),
            Some(Step::LoseAfterRotate) => {
                self.grants.rotate(presented)?;
                *self.grants.quiet_until.lock().unwrap() =
                    Some(tokio::time::Instant::now() + REUSE);
                Err(TransportError::answer_lost("connection closed before the answer").into())
            }
            Some(Step::Panic) => panic!("the provider's code panicked"),
            // Rotated, the access token one that cannot be sent (never issued, so never to
            // be answered): the new refresh token must be kept all the same.
            Some(Step::AnswerUnsendableAccess) => self.grants.rotate(presented).map(|mut set| {
                let access = format!("{}\n", set.access_token.expose_secret());
                set.access_token = AccessToken::new(access);
                set
            }),
            _ => self.grants.rotate(presented),
        };
        tokio::time::sleep(after).await;
        // Rotated for a process that died meanwhile: the answer is lost with it.
        self.life.gone().await;
        if let Ok(set) = &answer {
            let rt = set.refresh_token.as_ref().unwrap().expose_secret();
            self.life.delivered.lock().unwrap().push(rt.to_owned());
        }
        answer.map(|mut set| {
            if self.relative_expiry {
                set.access_expires_at = set.access_expires_at.map(|at| at + self.host.offset());
            }
            set
        })
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

    /// The sessions of `provider` whose lease lapsed unreleased.
    fn lapsed(&self, provider: &str) -> Vec<String> {
        let now = self.clock.now();
        let leases = self.leases.lock().unwrap();
        (leases.iter())
            .filter(|(key, (_, until))| key.provider() == provider && *until <= now)
            .map(|(key, _)| key.session().to_owned())
            .collect()
    }

    /// The refresh token stored for `s`, if tokens are stored.
    async fn stored(&self) -> Option<(String, String)> {
        let found = self
            .records
            .load(&SessionKey::new("grants", "s"))
            .await
            .unwrap()?;
        let set = found.value.tokens()?;
        Some((
            set.access_token.expose_secret().to_owned(),
            set.refresh_token.as_ref()?.expose_secret().to_owned(),
        ))
    }
}

/// A fault of the next store call of a process.
#[derive(Clone, Copy, Debug)]
enum Shot {
    /// The call reaches the store, and its answer is lost: it fails.
    FailAfterWrite,
    /// The call reaches the store, and its answer comes after the store timeout.
    LateAfterWrite,
    /// The call gets no answer within the store timeout, and reaches the store after it (a
    /// query sent before the caller gave up, committed late).
    LandsLate,
    /// The store's code panics.
    Panic,
}

/// What the store does to one process's calls (kept across its restarts): fail all of them
/// while `down`, hold all of them until `hung_until`, `next` to the next call.
#[derive(Default)]
struct StoreFaults {
    down: AtomicBool,
    hung_until: StdMutex<Option<tokio::time::Instant>>,
    next: StdMutex<Option<Shot>>,
}

impl StoreFaults {
    fn clear(&self) {
        self.down.store(false, Ordering::SeqCst);
        *self.hung_until.lock().unwrap() = None;
        *self.next.lock().unwrap() = None;
    }
}

/// A process's handle on the shared store, with its faults.
struct Faulty {
    shared: Arc<Shared>,
    faults: Arc<StoreFaults>,
    life: Arc<Life>,
    log: Arc<StdMutex<Vec<String>>>,
    clock: TokioClock,
    /// Longer than the store timeout.
    late: Duration,
}

impl Faulty {
    /// If the next call lands late: runs `write` after the store timeout, in a task of its
    /// own (it lands even if the process died meanwhile), and fails the call once the
    /// manager gave up on it.
    async fn lands_late(
        &self,
        call: Call,
        write: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), StoreError> {
        self.life.gone().await;
        {
            let mut next = self.faults.next.lock().unwrap();
            if !matches!(*next, Some(Shot::LandsLate)) {
                return Ok(());
            }
            *next = None;
        }
        let line = format!(
            "{} {} store {call:?} lands late",
            self.clock.now(),
            self.life.name
        );
        self.log.lock().unwrap().push(line);
        let late = self.late;
        tokio::spawn(async move {
            tokio::time::sleep(late).await;
            write.await;
        });
        tokio::time::sleep(2 * late).await;
        Err(StoreError::Backend {
            message: "no answer".into(),
            source: None,
        })
    }

    async fn around<T>(
        &self,
        call: Call,
        body: impl std::future::Future<Output = Result<T, StoreError>> + Send,
    ) -> Result<T, StoreError> {
        self.life.gone().await;
        let shot = self.faults.next.lock().unwrap().take();
        let line = format!(
            "{} {} store {call:?} {shot:?}",
            self.clock.now(),
            self.life.name
        );
        self.log.lock().unwrap().push(line);
        if self.faults.down.load(Ordering::SeqCst) {
            return Err(StoreError::Backend {
                message: "the store is unreachable".into(),
                source: None,
            });
        }
        let hung = *self.faults.hung_until.lock().unwrap();
        if let Some(until) = hung {
            tokio::time::sleep_until(until).await;
            self.life.gone().await;
        }
        if let Some(Shot::Panic) = shot {
            panic!("the store's code panicked");
        }
        let answer = body.await;
        self.life.gone().await;
        match shot {
            Some(Shot::FailAfterWrite) => Err(StoreError::Backend {
                message: "the connection closed before the answer".into(),
                source: None,
            }),
            Some(Shot::LateAfterWrite) => {
                tokio::time::sleep(self.late).await;
                self.life.gone().await;
                answer
            }
            _ => answer,
        }
    }
}

#[async_trait]
impl TokenStore for Faulty {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        self.around(Call::Load, self.shared.records.load(key)).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        let (shared, owned, copy) = (self.shared.clone(), key.clone(), record.clone());
        let late = async move {
            let _ = shared.records.save(&owned, &copy, expected).await;
        };
        self.lands_late(Call::Save, late).await?;
        let call = self.shared.records.save(key, record, expected);
        self.around(Call::Save, call).await
    }
    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        let (shared, owned) = (self.shared.clone(), key.clone());
        let late = async move {
            let _ = shared.records.delete(&owned, expected).await;
        };
        self.lands_late(Call::Delete, late).await?;
        let call = self.shared.records.delete(key, expected);
        self.around(Call::Delete, call).await
    }
    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let (shared, owned, by) = (self.shared.clone(), key.clone(), holder.to_owned());
        let late = async move {
            let _ = shared.acquire(&owned, &by, ttl);
        };
        self.lands_late(Call::Acquire, late).await?;
        let call = async { Ok(self.shared.acquire(key, holder, ttl)) };
        self.around(Call::Acquire, call).await
    }
    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        let (shared, owned, by) = (self.shared.clone(), key.clone(), holder.to_owned());
        let late = async move { shared.release(&owned, &by) };
        self.lands_late(Call::Release, late).await?;
        let call = async {
            self.shared.release(key, holder);
            Ok(())
        };
        self.around(Call::Release, call).await
    }
    async fn lapsed_leases(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        let call = async { Ok(self.shared.lapsed(provider)) };
        self.around(Call::Lapsed, call).await
    }
}

/// The settings of a run, drawn from its seed.
#[derive(Clone, Copy, Debug)]
struct Settings {
    lease_ttl: Duration,
    store_timeout: Duration,
    min_refresh_interval: Duration,
    failure_cooldown: Duration,
}

/// What a run shares with its processes.
struct World {
    grants: Arc<Grants>,
    clock: TokioClock,
    shared: Arc<Shared>,
    /// One per process slot.
    faults: Vec<Arc<StoreFaults>>,
    /// Each slot's host clock (all at true time unless the run steps them).
    hosts: Vec<HostClock>,
    /// The provider's expiry is read as an `expires_in` on the host's clock.
    relative_expiry: bool,
    reauths: Arc<AtomicU32>,
    log: Arc<StdMutex<Vec<String>>>,
    settings: Settings,
    /// Every process started, in order.
    lives: StdMutex<Vec<Arc<Life>>>,
    /// What callers were answered that they should not have been.
    wrong: Arc<StdMutex<Vec<String>>>,
}

/// A running process: its manager, its life, and a handle on `s`.
struct Slot {
    manager: TokenManager<Proc>,
    life: Arc<Life>,
    handle: SessionHandle<Proc>,
}

impl World {
    /// Starts a process in slot `index` (its store faults are the slot's).
    fn process(&self, index: usize) -> Slot {
        let life = {
            let mut lives = self.lives.lock().unwrap();
            let life = Life::new(format!("m{index}.{}", lives.len()));
            lives.push(life.clone());
            life
        };
        let store = Faulty {
            shared: self.shared.clone(),
            faults: self.faults[index].clone(),
            life: life.clone(),
            log: self.log.clone(),
            clock: self.clock,
            late: self.settings.store_timeout + Duration::from_secs(1),
        };
        let (reauths, log, clock, events) = (
            self.reauths.clone(),
            self.log.clone(),
            self.clock,
            life.clone(),
        );
        let provider = Proc {
            grants: self.grants.clone(),
            life: life.clone(),
            host: self.hosts[index].clone(),
            relative_expiry: self.relative_expiry,
        };
        let manager = TokenManager::builder(provider)
            .store(store)
            .client(NoTransport)
            .clock(Arc::new(self.hosts[index].clone()))
            .config(
                ManagerConfig::default()
                    // Access tokens live an hour; refreshed 30 s after each is issued.
                    .with_refresh_skew(Duration::from_secs(3570), Duration::ZERO)
                    .with_lease_ttl(self.settings.lease_ttl)
                    .with_store_timeout(self.settings.store_timeout)
                    .with_min_refresh_interval(self.settings.min_refresh_interval)
                    .with_failure_cooldown(self.settings.failure_cooldown)
                    .with_retry(
                        RetryPolicy::default()
                            .with_backoff(Duration::from_millis(100), Duration::from_secs(2)),
                    ),
            )
            .on_event(move |event| {
                // A dead process reports nothing.
                if events.dead() {
                    return;
                }
                log.lock().unwrap().push(format!(
                    "{} {} {}",
                    clock.now(),
                    events.name,
                    match event {
                        Event::ReauthRequired(r) => format!("reauth {}", r.reason),
                        event => format!("{event:?}"),
                    }
                ));
                let counter = match event {
                    Event::ReauthRequired(_) => &*reauths,
                    Event::Refreshed { .. } => &events.refreshed,
                    _ => return,
                };
                counter.fetch_add(1, Ordering::SeqCst);
            })
            .build()
            .unwrap();
        let handle = manager.session("s");
        Slot {
            manager,
            life,
            handle,
        }
    }

    /// A caller of `life` was answered `token`: one the provider issued (it revokes none),
    /// and not older (of the same grant) than one of the first `seen` tokens that process
    /// served before the call began (it would serve a token it knows replaced, which the
    /// store no longer holds).
    fn answered(&self, life: &Life, seen: usize, what: &str, token: &AccessToken) {
        let token = token.expose_secret();
        self.log.lock().unwrap().push(format!(
            "{} {} {what} answered {token}",
            self.clock.now(),
            life.name
        ));
        if !self.grants.issued.lock().unwrap().contains(token) {
            (self.wrong.lock().unwrap()).push(format!("{what} answered {token:?}, never issued"));
        }
        let mut served = life.served.lock().unwrap();
        for newer in served.iter().take(seen) {
            if self.grants.newer(newer, &token.replacen("at-", "rt-", 1)) {
                self.wrong.lock().unwrap().push(format!(
                    "{} {what} answered {token}, though it had served {newer} before the call",
                    life.name
                ));
            }
        }
        served.push(token.replacen("at-", "rt-", 1));
    }

    /// After a process died: `survivor` refreshes inside the provider's reuse window, once
    /// the dead process's lease lapsed and its save was waited for.
    async fn recover(&self, survivor: &TokenManager<Proc>, life: &Life) {
        tokio::time::sleep(2 * self.settings.lease_ttl + Duration::from_secs(10)).await;
        if let Ok(token) = survivor.refresh_now("s").await {
            self.answered(life, 0, "refresh_now", &token);
        }
    }

    /// After `life`'s shutdown returned `Ok`: the store holds no older pair of a grant than
    /// one the provider sent that process.
    async fn saved_all_of(&self, life: &Life) {
        let Some((_, stored)) = self.shared.stored().await else {
            return;
        };
        for delivered in life.delivered.lock().unwrap().iter() {
            if self.grants.newer(delivered, &stored) {
                self.wrong.lock().unwrap().push(format!(
                    "{} shut down Ok, its {delivered} unsaved: the store holds {stored}",
                    life.name
                ));
            }
        }
    }
}

/// Polls `future` at most `polls` times, then drops it: a caller that gives up.
struct GivesUp<F> {
    future: Pin<Box<F>>,
    polls: u64,
}

impl<F: std::future::Future> std::future::Future for GivesUp<F> {
    type Output = Option<F::Output>;

    fn poll(
        mut self: Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        if self.polls == 0 {
            return std::task::Poll::Ready(None);
        }
        self.polls -= 1;
        self.future.as_mut().poll(cx).map(Some)
    }
}

/// `future`, given up after `polls` polls unless `None`.
async fn patience<F: std::future::Future>(polls: Option<u64>, future: F) -> Option<F::Output> {
    match polls {
        None => Some(future.await),
        Some(polls) => {
            GivesUp {
                future: Box::pin(future),
                polls,
            }
            .await
        }
    }
}

/// What is known of the session's tokens: inserted, removed, or either (a write given up,
/// or failed after it may have reached the store).
#[derive(Clone, Copy, Debug, PartialEq)]
enum Known {
    Present,
    Removed,
    Either,
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
    run_with(seed, 2).await;
}

/// One run of `processes` (2 or 3) processes, without the faults added later (wall clocks
/// stepped, two of three stores cut): with 2, the same draws in the same order as ever
/// (the pinned seeds replay as they did).
async fn run_with(seed: u64, processes: usize) {
    run_faults(seed, processes, false).await;
}

/// One run, with the later faults if `stepped`: their draws come from a second generator,
/// drawn only where they fire, so a seed's other draws stay what they were. Now and then a
/// host's wall clock (or every host's) is stepped, as NTP steps one: forward by a minute to
/// an hour, back by a second to ten minutes, never further than an hour ahead of true time
/// (fifty minutes if the provider's expiry is an instant: below an access token's life) or
/// ten minutes behind it (the provider and the store keep true time). Within those
/// bounds a correct client loses nothing: the model's refresh tokens do not expire (a clock
/// stepped forward past a refresh token's expiry would make a live one look expired, and a
/// manager may present it all the same), so a clock ahead only makes fresh access tokens
/// look due or expired (an extra refresh), and one behind makes them look fresh a little
/// longer (their true life, an hour, is far longer than ten minutes); cooldowns and
/// schedules read on the wall clock are bounded by their length from now. Timers, leases'
/// renewals and the reuse window are on the monotonic clock. The provider's expiry is read
/// either as an instant of its clock (a JWT's `exp`), or as an `expires_in` on the host's
/// clock on receipt (drawn per seed). With three processes, half of the outages of one
/// process's store cut a second one too.
async fn run_faults(seed: u64, processes: usize, stepped: bool) {
    assert!((2..=3).contains(&processes));
    let mut rng = Rng(seed);
    let mut rng2 = Rng(seed ^ 0x9E37_79B9_7F4A_7C15);
    let relative_expiry = stepped && rng2.below(2) == 0;
    let clock = TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC));
    let log = Arc::new(StdMutex::new(Vec::new()));
    let settings = Settings {
        lease_ttl: Duration::from_secs([10, 30][rng.below(2) as usize]),
        store_timeout: Duration::from_secs([5, 20, 45][rng.below(3) as usize]),
        min_refresh_interval: Duration::from_secs(rng.below(40).max(1)),
        failure_cooldown: Duration::from_secs(rng.below(30)),
    };
    log.lock().unwrap().push(format!(
        "{settings:?}{}",
        match (stepped, relative_expiry) {
            (false, _) => "",
            (true, false) => " stepped clocks, expiry an instant",
            (true, true) => " stepped clocks, expiry read on receipt",
        }
    ));
    let grants = Arc::new(Grants {
        clock,
        grants: StdMutex::default(),
        minted: AtomicU32::new(0),
        logins: AtomicU32::new(0),
        place: StdMutex::default(),
        issued: StdMutex::default(),
        script: StdMutex::default(),
        refused: StdMutex::default(),
        unanswered: StdMutex::default(),
        quiet_until: StdMutex::default(),
        log: log.clone(),
        rng: StdMutex::new(Rng(seed ^ 0x5EED)),
    });
    let world = Arc::new(World {
        grants: grants.clone(),
        clock,
        shared: Arc::new(Shared {
            records: MemoryStore::new(),
            leases: StdMutex::default(),
            clock,
        }),
        faults: (0..processes).map(|_| Arc::default()).collect(),
        hosts: (0..processes).map(|_| HostClock::new(clock)).collect(),
        relative_expiry,
        reauths: Arc::new(AtomicU32::new(0)),
        log: log.clone(),
        settings,
        lives: StdMutex::default(),
        wrong: Arc::default(),
    });
    let mut slots: Vec<Slot> = (0..processes).map(|i| world.process(i)).collect();
    slots[0]
        .manager
        .insert("s", grants.login(false))
        .await
        .unwrap();
    // Logins and removes, one at a time (an application does not insert an older login
    // after a newer one), each racing the refreshes.
    let known = Arc::new(tokio::sync::Mutex::new(Known::Present));
    let mut tasks = tokio::task::JoinSet::new();
    let mut trace = Vec::new();
    let mut outage = 0;
    // No new fault of the store or of a process before this: one at a time, each within
    // what the provider's reuse window covers.
    let mut quiet_until = tokio::time::Instant::now();
    let note = |line: String| log.lock().unwrap().push(format!("{} {line}", clock.now()));
    for _ in 0..150 {
        let i = rng.below(processes as u64) as usize;
        let slot = &slots[i];
        let (manager, handle, life) =
            (slot.manager.clone(), slot.handle.clone(), slot.life.clone());
        let op = rng.below(100);
        // A caller gives up after a few polls, now and then.
        let polls = (rng.below(3) == 0).then(|| 1 + rng.below(8));
        let by_handle = rng.below(2) == 0;
        trace.push(op);
        note(format!("op {op} on {} polls {polls:?}", life.name));
        let quiet = tokio::time::Instant::now() >= quiet_until;
        let world2 = world.clone();
        let seen = life.served.lock().unwrap().len();
        let life2 = life.clone();
        let caller = match op {
            0..=34 => Some(tasks.spawn(async move {
                let answer = match by_handle {
                    true => patience(polls, handle.access_token()).await,
                    false => patience(polls, manager.access_token("s")).await,
                };
                if let Some(Ok(token)) = answer {
                    world2.answered(&life2, seen, "access_token", &token);
                }
            })),
            35..=46 => Some(tasks.spawn(async move {
                let Ok(token) = manager.access_token("s").await else {
                    return;
                };
                world2.answered(&life2, seen, "access_token", &token);
                let answer = match by_handle {
                    true => patience(polls, handle.refresh_rejected(&token)).await,
                    false => patience(polls, manager.refresh_rejected("s", &token)).await,
                };
                // (The rejected token again, if it was itself obtained after a refusal: an
                // API that refuses every token does not rotate the session at every call.)
                if let Some(Ok(again)) = answer {
                    world2.answered(&life2, seen, "refresh_rejected", &again);
                }
            })),
            47..=49 => Some(tasks.spawn(async move {
                if let Some(Ok(token)) = patience(polls, manager.refresh_now("s")).await {
                    world2.answered(&life2, seen, "refresh_now", &token);
                }
            })),
            50..=57 => {
                let (grants, known, log) = (grants.clone(), known.clone(), log.clone());
                let expired = rng.below(3) == 0;
                let host = world.hosts[i].clone();
                Some(tasks.spawn(async move {
                    let mut known = known.lock().await;
                    let mut set = grants.login(expired);
                    // The login's expiry as the application read it on its host.
                    if relative_expiry {
                        set.access_expires_at = set.access_expires_at.map(|at| at + host.offset());
                    }
                    let rt = set.refresh_token.as_ref().unwrap().expose_secret();
                    log.lock()
                        .unwrap()
                        .push(format!("{} login {rt} expired {expired}", clock.now()));
                    let grant = grants.place.lock().unwrap()[rt].0;
                    // Unknown until it answers (its caller may end with its process).
                    *known = Known::Either;
                    *known = match patience(polls, manager.insert("s", set)).await {
                        Some(Ok(())) => Known::Present,
                        // Refused while the store is down, or given up: the login may have
                        // reached the store.
                        _ => Known::Either,
                    };
                    if *known == Known::Either {
                        grants.unanswered.lock().unwrap().insert(grant);
                    }
                }))
            }
            58..=60 => {
                let (known, store_timeout) = (known.clone(), settings.store_timeout);
                Some(tasks.spawn(async move {
                    let mut known = known.lock().await;
                    *known = Known::Either;
                    *known = match patience(polls, manager.remove("s")).await {
                        Some(Ok(())) => Known::Removed,
                        _ => Known::Either,
                    };
                    // A delete that got no answer may still land (unconditional, as a remove
                    // is) after another process's next login: a process orders its own calls
                    // behind it, not the others'. The application's next login waits for that.
                    if *known == Known::Either {
                        tokio::time::sleep(2 * store_timeout).await;
                    }
                }))
            }
            61..=72
                if grants
                    .quiet_until
                    .lock()
                    .unwrap()
                    .is_none_or(|until| tokio::time::Instant::now() >= until) =>
            {
                // One fault at a time, and none for the reuse window after a lost answer
                // (from when the provider lost it): a provider that keeps failing every call
                // for longer than its reuse window after a lost answer loses the pair
                // whatever a client does.
                let mut script = grants.script.lock().unwrap();
                if script.is_empty() {
                    script.push_back(match op {
                        61..=66 => Step::Fail(unavailable(None)),
                        67..=70 => Step::LoseAfterRotate,
                        71 => Step::Panic,
                        _ => Step::AnswerUnsendableAccess,
                    });
                }
                None
            }
            73..=77 if quiet && outage == 0 => {
                // An outage of a few steps (shorter than the provider's reuse window: a
                // longer one after a lost answer loses the pair whatever the manager does).
                // One process, or all of them.
                let cut = rng.below(processes as u64 + 1) as usize;
                // With three, half of the outages of one process's store cut another's too.
                let also = (stepped && processes == 3 && cut < processes && rng2.below(2) == 0)
                    .then(|| (cut + 1 + rng2.below(2) as usize) % processes);
                for (i, faults) in world.faults.iter().enumerate() {
                    faults.down.store(
                        cut == processes || cut == i || also == Some(i),
                        Ordering::SeqCst,
                    );
                }
                if let Some(also) = also {
                    note(format!("outage also cuts {also}"));
                }
                outage = 1 + rng.below(4);
                quiet_until = tokio::time::Instant::now() + Duration::from_secs(80 + 90);
                note(format!("outage {cut} for {outage}"));
                None
            }
            78..=81 if quiet => {
                // The store holds every call of a process (or of all) for a while: longer
                // than its lease, and than the store timeout, at times.
                let cut = rng.below(processes as u64 + 1) as usize;
                let hung = Duration::from_secs(5 + rng.below(60));
                let until = tokio::time::Instant::now() + hung;
                for (i, faults) in world.faults.iter().enumerate() {
                    if cut == processes || cut == i {
                        *faults.hung_until.lock().unwrap() = Some(until);
                    }
                }
                quiet_until = until + Duration::from_secs(90);
                note(format!("hung {cut} for {hung:?}"));
                None
            }
            82..=86 if quiet => {
                let shot = [
                    Shot::FailAfterWrite,
                    Shot::LateAfterWrite,
                    Shot::LandsLate,
                    Shot::Panic,
                ][rng.below(4) as usize];
                *world.faults[i].next.lock().unwrap() = Some(shot);
                quiet_until = tokio::time::Instant::now() + Duration::from_secs(90);
                note(format!("next store call of m{i}: {shot:?}"));
                None
            }
            87..=88 if quiet => {
                // The process crashes: its runtime's tasks end where they are.
                note(format!("{} crashes", life.name));
                life.kill();
                slots[i] = world.process(i);
                quiet_until = tokio::time::Instant::now() + Duration::from_secs(120);
                // An answer the provider gave the dead process is lost as a lost answer is:
                // no provider fault for the reuse window (a provider failing every call
                // inside it loses the pair whatever a client does).
                *grants.quiet_until.lock().unwrap() = Some(tokio::time::Instant::now() + REUSE);
                // Its refresh may have rotated the pair: the stored refresh token is then
                // spent, and only a refresh inside the provider's reuse window gets its
                // successor. Nothing schedules one while the access token stays fresh (the
                // other processes do not know of the crash; see crash.rs and the README):
                // a refresh is asked for inside the window, after the crashed lease lapsed
                // and its save was waited for.
                // (The next process survives: with two, the other one.)
                let survivor = &slots[(i + 1) % processes];
                let (survivor, lives) = (survivor.manager.clone(), survivor.life.clone());
                let (world2, lives2) = (world.clone(), lives.clone());
                let caller = tasks.spawn(async move { world2.recover(&survivor, &lives2).await });
                lives.callers.lock().unwrap().push(caller);
                None
            }
            89..=90 if quiet => {
                // The process is shut down (and exits), another takes its place.
                let within = Duration::from_secs(5 + rng.below(120));
                note(format!("{} shuts down within {within:?}", life.name));
                slots[i] = world.process(i);
                quiet_until = tokio::time::Instant::now() + within + Duration::from_secs(120);
                let (log, life) = (log.clone(), life.clone());
                let (next, next_life) = (slots[i].manager.clone(), slots[i].life.clone());
                let grants2 = grants.clone();
                tasks.spawn(async move {
                    let outcome = manager.shutdown(within).await;
                    log.lock().unwrap().push(format!(
                        "{} {} shut down: {outcome:?}",
                        clock.now(),
                        life.name
                    ));
                    if outcome.is_ok() {
                        world2.saved_all_of(&life).await;
                    }
                    life.kill();
                    // Timed out, the process exits with its work under way: a crash (a
                    // refresh inside the reuse window recovers a pair it rotated).
                    if outcome.is_err() {
                        *grants2.quiet_until.lock().unwrap() =
                            Some(tokio::time::Instant::now() + REUSE);
                        world2.recover(&next, &next_life).await;
                    }
                });
                None
            }
            _ => None,
        };
        if let Some(caller) = caller {
            life.callers.lock().unwrap().push(caller);
        }
        // A host's wall clock stepped (or every host's), about every 30 steps.
        if stepped && rng2.below(30) == 0 {
            // A host an hour ahead reads a token the provider says lives an hour as expired
            // on arrival, and with no minimum refresh interval refreshes it at every call:
            // nothing is lost, but no process could serve what it stored.
            let ahead_at_most = match relative_expiry {
                true => AHEAD_AT_MOST,
                false => AHEAD_OF_AN_INSTANT_AT_MOST,
            };
            let which = rng2.below(processes as u64 + 1) as usize;
            let by = match rng2.below(2) {
                0 => 60 + rng2.below(3541) as i64,
                _ => -(1 + rng2.below(600) as i64),
            };
            for (h, host) in world.hosts.iter().enumerate() {
                if which == processes || which == h {
                    let offset = host.step(by, ahead_at_most);
                    note(format!(
                        "clock of m{h} stepped {by} s: {offset} s from true time"
                    ));
                }
            }
        }
        if outage > 0 {
            outage -= 1;
            if outage == 0 {
                for faults in &world.faults {
                    faults.down.store(false, Ordering::SeqCst);
                }
                note("outage over".into());
            }
        }
        tokio::time::advance(Duration::from_millis(rng.below(20_000))).await;
        for _ in 0..rng.below(20) {
            tokio::task::yield_now().await;
        }
    }
    world.faults.iter().for_each(|faults| faults.clear());
    let finished = tokio::time::timeout(Duration::from_secs(3600), async {
        while let Some(done) = tasks.join_next().await {
            if let Err(error) = done
                && error.is_panic()
            {
                std::panic::resume_unwind(error.into_panic());
            }
        }
    })
    .await;
    let finished = finished.is_ok();
    grants.script.lock().unwrap().clear();
    world.faults.iter().for_each(|faults| faults.clear());
    settle().await;

    let report = |what: String| -> ! {
        let grants = grants.grants.lock().unwrap();
        let mut grants: Vec<_> = grants
            .iter()
            .map(|(token, grant)| match grant {
                Grant::Live => format!("{token} live"),
                Grant::Replaced(next, at) => {
                    let next = next.refresh_token.as_ref().unwrap().expose_secret();
                    format!("{token} -> {next} at {at}")
                }
            })
            .collect();
        grants.sort();
        let states: Vec<String> = slots
            .iter()
            .map(|slot| {
                let session = slot.manager.inner.session("s");
                let flying = session.flight_slot().is_some();
                let state = match session.load().as_deref() {
                    Some(State::Ready(c)) => format!(
                        "ready {} refresh_at={:?} usable_until={:?} saved={} version={:?}",
                        c.set().access_token.expose_secret(),
                        c.refresh_at(),
                        c.usable_until(),
                        c.saved(),
                        c.version()
                    ),
                    Some(State::Absent { .. }) => "absent".into(),
                    Some(State::Dead { .. }) => "dead".into(),
                    None => "unloaded".into(),
                };
                let offset = slot.manager.inner.clock.now() - clock.now();
                format!("{} flight={flying} clock {offset} {state}", slot.life.name)
            })
            .collect();
        panic!(
            "seed {seed}: {what}\nprocesses {states:?}\nops {trace:?}\n{}\ngrants: {}",
            log.lock().unwrap().join("\n"),
            grants.join(", "),
        )
    };
    if !finished {
        report("a call never finished".into());
    }
    // `MODEL_LOG=1` prints the log of every run.
    if std::env::var_os("MODEL_LOG").is_some() {
        eprintln!("seed {seed}:\n{}", log.lock().unwrap().join("\n"));
    }
    let declared = || world.reauths.load(Ordering::SeqCst);
    if declared() != 0 {
        report(format!(
            "a re-auth was declared; refused {:?}",
            grants.refused.lock().unwrap()
        ));
    }
    let wrong = world.wrong.lock().unwrap().clone();
    if !wrong.is_empty() {
        report(format!("{wrong:?}"));
    }
    for life in world.lives.lock().unwrap().iter() {
        let (refreshed, delivered) = (
            life.refreshed.load(Ordering::SeqCst),
            life.delivered.lock().unwrap().len(),
        );
        if refreshed as usize > delivered {
            report(format!(
                "{} reported {refreshed} refreshes for {delivered} answers",
                life.name
            ));
        }
    }
    let mut known = *known.lock().await;
    // A login whose insert got no answer may have been saved after a remove that came next
    // (its save, sent before the insert gave up, landing late; or the insert going on after
    // its caller gave up): that remove found nothing to delete. Nothing orders two calls of
    // an application through two processes but their answers, and the insert gave none.
    if known == Known::Removed
        && let Some((_, stored)) = world.shared.stored().await
        && grants.of_unanswered_login(&stored)
    {
        note(format!("{stored} of a login saved after the remove"));
        known = Known::Either;
    }
    if world.shared.stored().await.is_none() {
        if known == Known::Present {
            report("no tokens stored".into());
        }
        for slot in &slots {
            let outcome = slot.manager.refresh_now("s").await;
            if !matches!(outcome, Err(Error::NoTokens(_))) {
                report(format!("removed, but {outcome:?}"));
            }
        }
        return;
    }
    if known == Known::Removed {
        report("removed, but tokens are stored".into());
    }
    // A caller on each (a refresh whose answer was lost is finished by the next one).
    for slot in &slots {
        let outcome = slot.manager.access_token("s").await;
        let shown = outcome.as_ref().map(|t| t.expose_secret().to_owned());
        note(format!("final {} {shown:?}", slot.life.name));
        if outcome.is_err() {
            report(format!("{outcome:?}"));
        }
    }
    settle().await;
    // What is stored is the newest pair of its grant: no successor the provider sent was
    // dropped (a spent token still inside the reuse window would hide that).
    let Some((_, stored)) = world.shared.stored().await else {
        report("no tokens stored".into());
    };
    let live = matches!(
        grants.grants.lock().unwrap().get(&stored),
        Some(Grant::Live)
    );
    if !live {
        report(format!("the stored refresh token {stored} was spent"));
    }
    // Each process refreshes in turn, and serves what it stored.
    for slot in &slots {
        let outcome = slot.manager.refresh_now("s").await;
        if outcome.is_err() || declared() != 0 {
            report(format!("{outcome:?}"));
        }
        let served = slot.manager.access_token("s").await;
        let by_handle = slot.handle.access_token().await;
        let stored = world.shared.stored().await.map(|(access, _)| access);
        let shown =
            |t: &Result<AccessToken, Error>| t.as_ref().ok().map(|t| t.expose_secret().to_owned());
        if shown(&served) != stored || shown(&by_handle) != stored {
            report(format!(
                "{} serves {served:?} (by handle {by_handle:?}), the store holds {stored:?}",
                slot.life.name
            ));
        }
    }
}

/// Seeds beyond the usual 200 that once found a fault, run every time: 40633, a process
/// asking again for a lost answer adopted another process's pair whose access token had
/// been set aside (it could not be sent) and answered the empty placeholder; 51466, a
/// remove whose delete was held by a slow store landed after the other process's login and
/// deleted it (a remove now deletes the version it read); 72265, a process that took over
/// a lapsed lease took the set it found (a login it had not read, which the dead holder had
/// rotated) for the holder's save, and left the spent refresh token stored; 85809, a
/// refresh whose answer was lost lost its lease too, started again and found its callers
/// served by the set it held: the flight ended well, so the lost answer was never asked
/// for again, and the spent refresh token stayed stored; 300681, the same
/// after a take-over that presented a fresh login it had found; 303499, a refresh token
/// whose answer was lost was not presented again before its reuse window closed: both
/// processes, paused longer than the lease at every step, took the lease over from each
/// other in turn for five minutes, each waiting a lease length for the other's save (a
/// token this process presented itself is now presented again at once on a take-over,
/// inside its window); 99973, a process whose answer was lost got the pair again and
/// crashed before saving it; the survivor took the lease over, presented the stored token,
/// got a 503, and with a fresh access token nothing presented it again until the window had
/// closed (a presentation after a take-over that fails is now asked for again); 122916, a
/// process whose answer was lost crashed, and the survivor's first take-over (its only
/// refresh asked for) failed with the store: nothing else had a refresh due (the model's
/// store now lists its lapsed leases, and each manager takes them over); 229265, a fault
/// of the model: it counted its reuse window without provider faults from when it scripted
/// a lost answer, not from when the provider lost it four minutes later, and then failed
/// every presentation of the lost token until the window had closed.
#[tokio::test(start_paused = true)]
async fn seeds_that_found_faults_hold() {
    for seed in [
        40633, 51466, 72265, 85809, 300681, 303499, 99973, 122916, 229265,
    ] {
        run(seed).await;
    }
}

/// Seeds of three processes that once found a fault, run every time: 2874, a crash's
/// survivor took the lapsed lease over and watched for the dead holder's save while every
/// process's store went down; it could not read the store again after the watch and its
/// refresh failed before presenting the token it had found (spent by the dead holder):
/// nothing else was due before the reuse window closed (the token is now noted as the watch
/// ends, and asked for again in the background); 2228, a fault of the model: a login whose
/// save landed late (after its insert timed out) came after the next remove, through
/// another process, which had found nothing to delete, and the model took the session for
/// removed; 145946, a crash lost a rotation, and the two survivors, paused longer than the
/// lease at every step, took the lapsed lease over from each other in turn for a minute and
/// a half of the reuse window, each cutting the other's watch for the dead holder's save
/// short, neither presenting the token; the provider then failed the three presentations
/// left inside the window (a take-over after a watch cut short now presents the token found
/// at once, and the token is asked for again in the background).
#[tokio::test(start_paused = true)]
async fn three_process_seeds_that_found_faults_hold() {
    for seed in [2228, 2874, 145946] {
        run_with(seed, 3).await;
    }
}

/// Seeds of three processes with hosts' clocks stepped that once found a fault, run every
/// time: a look at the store (664, 2577, 5445: `NoTokens` minutes after another process's
/// login) or a failure (582: a panic answered again seven minutes later) remembered for the
/// cooldown by the wall clock alone, stretched by a step back shorter than the time since
/// (now timed on the monotonic clock too; see the tests
/// `a_clock_stepped_back_less_than_the_time_since_*`); a caller that joined the asking for
/// a lost pair answered the placeholder of an access token another process set aside
/// (49662, one run in ten: see
/// `a_caller_whose_retry_joins_the_asking_for_a_lost_pair_is_not_answered_a_set_aside_token`);
/// and one of two processes.
#[tokio::test(start_paused = true)]
async fn stepped_clock_seeds_that_found_faults_hold() {
    for seed in [582, 664, 2577, 5445, 49662] {
        run_faults(seed, 3, true).await;
    }
    // Two processes: a survivor that asked for a crashed process's pair shut down, its
    // lease given back, and nobody presented the token again inside the window (see
    // `a_process_shutting_down_while_asking_for_a_lost_pair_leaves_the_asking_to_another`).
    run_faults(73972, 2, true).await;
}

/// The seeds `{prefix}_SEEDS` (`default` unless set) from `{prefix}_FIRST_SEED` (0).
fn seeds(prefix: &str, default: u64) -> std::ops::Range<u64> {
    let var = |name: &str| std::env::var(format!("{prefix}_{name}")).ok();
    let seeds = var("SEEDS").and_then(|n| n.parse().ok()).unwrap_or(default);
    let first: u64 = var("FIRST_SEED").and_then(|n| n.parse().ok()).unwrap_or(0);
    first..first + seeds
}

#[tokio::test(start_paused = true)]
async fn two_processes_under_random_interleavings_lose_nothing_and_declare_no_reauth() {
    for seed in seeds("MODEL", 200) {
        run_faults(seed, 2, true).await;
    }
}

/// Three processes: a lease lapsed by one may be taken over by a second and lapse again
/// before a third takes it, with the first one's late save or spent refresh token still
/// under way; a login through one while the two others refresh; a crash of one while the
/// two others race. `MODEL3_SEEDS=N` runs N seeds from `MODEL3_FIRST_SEED` (0).
#[tokio::test(start_paused = true)]
async fn three_processes_under_random_interleavings_lose_nothing_and_declare_no_reauth() {
    for seed in seeds("MODEL3", 300) {
        run_faults(seed, 3, true).await;
    }
}
