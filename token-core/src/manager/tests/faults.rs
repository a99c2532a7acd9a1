//! Code a user supplies that panics (a store's call, the provider's extras), and callers
//! that give up at every await point: nothing the provider issued is lost, no refresh
//! token is presented twice, and the session keeps working.

use super::*;

/// A store whose next `call` panics (once) when armed, and whose saves fail while
/// `save_fails` is set.
struct PanicOnce {
    call: StdMutex<Option<Call>>,
    save_fails: std::sync::atomic::AtomicBool,
}

impl PanicOnce {
    fn arm(&self, call: Call) {
        *self.call.lock().unwrap() = Some(call);
    }
}

#[async_trait]
impl Hooks for PanicOnce {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        let mut armed = self.call.lock().unwrap();
        if *armed == Some(call) {
            *armed = None;
            drop(armed);
            panic!("the store's code panicked");
        }
        if call == Call::Save && self.save_fails.load(Ordering::SeqCst) {
            return Err(disk_full());
        }
        Ok(())
    }
}

/// A manager over a store whose calls can be made to panic, its provider rotating with no
/// reuse window (a token presented twice is refused), `s` holding an expired `at-0`/`rt-0`.
async fn over_panicking_store() -> (
    Harness,
    Arc<MemoryStore>,
    Arc<Hooked<PanicOnce, Arc<MemoryStore>>>,
    TokenManager<Arc<Fake>>,
) {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let shared = Arc::new(MemoryStore::new());
    let store = Arc::new(Hooked::over(
        shared.clone(),
        PanicOnce {
            call: StdMutex::new(None),
            save_fails: false.into(),
        },
    ));
    let manager = manager_over(&h, store.clone());
    manager.insert("s", expired_pair(&h)).await.unwrap();
    (h, shared, store, manager)
}

#[tokio::test(start_paused = true)]
async fn a_store_whose_save_of_a_rotated_pair_panics_keeps_the_pair() {
    let (h, shared, store, manager) = over_panicking_store().await;
    store.arm(Call::Save);
    let answered = manager.access_token("s").await;
    // Whatever the caller was answered, the pair the provider rotated to is not lost: it is
    // served, then saved, and rt-0 is never presented again.
    for _ in 0..10 {
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }
    let key = SessionKey::new("fake", "s");
    let stored = shared.load(&key).await.unwrap().unwrap();
    assert_eq!(refresh_of(&stored), "rt-1", "answered {answered:?}");
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0"]);
}

#[tokio::test(start_paused = true)]
async fn a_background_save_that_panics_goes_on_saving_and_shutdown_persists_the_pair() {
    let (h, shared, store, manager) = over_panicking_store().await;
    store.save_fails.store(true, Ordering::SeqCst);
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    // The background save's next attempt panics; the store then works again.
    store.save_fails.store(false, Ordering::SeqCst);
    store.arm(Call::Save);
    for _ in 0..10 {
        tokio::task::yield_now().await;
    }
    manager.shutdown(HOUR).await.unwrap();
    let key = SessionKey::new("fake", "s");
    let stored = shared.load(&key).await.unwrap().unwrap();
    assert_eq!(
        refresh_of(&stored),
        "rt-1",
        "the rotated pair is saved by shutdown"
    );
    assert_eq!(
        shared.acquire_lease(&key, "another", HOUR).await.unwrap(),
        Lease::Acquired,
        "and the lease given back"
    );
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0"]);
}

/// Extras whose `Serialize` panics (`Touchy::Serialize`), or whose `Deserialize` does
/// (from the JSON string `"panic"`).
#[derive(Clone, Debug, Default, PartialEq)]
enum Touchy {
    #[default]
    Calm,
    Serialize,
}

impl serde::Serialize for Touchy {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            Touchy::Calm => serializer.serialize_str("calm"),
            Touchy::Serialize => panic!("the extras' Serialize panicked"),
        }
    }
}

impl<'de> serde::Deserialize<'de> for Touchy {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        assert_ne!(text, "panic", "the extras' Deserialize panicked");
        Ok(Touchy::Calm)
    }
}

/// The fake provider, answering with `next` for extras.
struct WithExtras {
    fake: Arc<Fake>,
    next: StdMutex<Touchy>,
}

#[async_trait]
impl Provider for WithExtras {
    type Extras = Touchy;

    fn name(&self) -> &str {
        "fake"
    }

    async fn refresh(
        &self,
        cx: &CallContext,
        current: &TokenSet<Touchy>,
    ) -> Result<TokenSet<Touchy>, Error> {
        let answer = self.fake.refresh(cx, &retyped(current.clone())).await?;
        Ok(retyped(answer).with_extras(self.next.lock().unwrap().clone()))
    }
}

/// `set`'s tokens, with default extras of another type.
fn retyped<X: crate::token_set::Extras, Y: crate::token_set::Extras>(
    set: TokenSet<X>,
) -> TokenSet<Y> {
    let mut typed = TokenSet::new(set.access_token);
    typed.refresh_token = set.refresh_token;
    typed.access_expires_at = set.access_expires_at;
    typed
}

fn with_extras(h: &Harness) -> (Arc<MemoryStore>, TokenManager<WithExtras>) {
    let store = Arc::new(MemoryStore::new());
    let provider = WithExtras {
        fake: h.fake.clone(),
        next: StdMutex::new(Touchy::Calm),
    };
    let manager = manager_of(h, provider, store.clone());
    (store, manager)
}

#[tokio::test(start_paused = true)]
async fn extras_that_panic_when_serialized_do_not_lose_the_rotated_pair() {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let (store, manager) = with_extras(&h);
    manager
        .insert("s", retyped(expired_pair(&h)))
        .await
        .unwrap();
    *manager.provider().next.lock().unwrap() = Touchy::Serialize;
    let answered = manager.access_token("s").await;
    let key = SessionKey::new("fake", "s");
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(refresh_of(&stored), "rt-1", "answered {answered:?}");
    assert_eq!(answered.unwrap().expose_secret(), "at-1");
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0"]);
    // Inserted, they are refused with a typed error, and the stored pair stays.
    let login = TokenSet::new(AccessToken::new("at-login")).with_extras(Touchy::Serialize);
    let refused = manager.insert("s", login).await.unwrap_err();
    assert!(matches!(refused, Error::Config(_)), "{refused:?}");
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(refresh_of(&stored), "rt-1");
}

#[tokio::test(start_paused = true)]
async fn stored_extras_that_panic_when_read_are_an_error_and_the_session_recovers() {
    let h = harness(|_| {});
    let (store, manager) = with_extras(&h);
    let key = SessionKey::new("fake", "s");
    let mut planted = expired_pair(&h).to_stored().unwrap();
    planted.extras = serde_json::json!("panic");
    store.save(&key, &planted.into(), None).await.unwrap();
    let error = manager.access_token("s").await.unwrap_err();
    assert!(
        matches!(error, Error::RefreshAborted(AbortReason::Panicked)),
        "{error:?}"
    );
    assert_eq!(h.calls(), 0);
    // A new login replaces the record it could not read.
    manager
        .insert("s", retyped(expired_pair(&h)))
        .await
        .unwrap();
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
}

/// A clock that panics at its `panic_at`-th reading (counted from 1; 0: never).
struct PanickyClock {
    inner: TokioClock,
    readings: AtomicU32,
    panic_at: AtomicU32,
}

impl Clock for PanickyClock {
    fn now(&self) -> OffsetDateTime {
        let reading = self.readings.fetch_add(1, Ordering::SeqCst) + 1;
        if reading == self.panic_at.load(Ordering::SeqCst) {
            panic!("the clock panicked");
        }
        self.inner.now()
    }
}

/// The last handle on a session without tokens, dropped as the clock panics (as it is when
/// its caller unwinds from that very panic), does not panic in turn: a panic in a `drop`
/// during unwinding aborts the process.
#[tokio::test(start_paused = true)]
async fn dropping_the_last_handle_while_the_clock_panics_does_not_panic() {
    let h = harness(|_| {});
    let clock = Arc::new(PanickyClock {
        inner: h.clock,
        readings: AtomicU32::new(0),
        panic_at: AtomicU32::new(0),
    });
    let manager = TokenManager::builder(h.fake.clone())
        .client(NoTransport)
        .clock(clock.clone())
        .build()
        .unwrap();
    let handle = manager.session("ghost");
    let answer = handle.access_token().await;
    assert!(matches!(answer, Err(Error::NoTokens(_))), "{answer:?}");
    let next = clock.readings.load(Ordering::SeqCst) + 1;
    clock.panic_at.store(next, Ordering::SeqCst);
    let dropped = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| drop(handle)));
    assert!(dropped.is_ok(), "dropping the handle panicked");
    // The clock works again: the name is answered as before.
    clock.panic_at.store(0, Ordering::SeqCst);
    let again = manager.access_token("ghost").await;
    assert!(matches!(again, Err(Error::NoTokens(_))), "{again:?}");
}

/// Fails if `text` (what callers were answered, in `Debug`) holds one of the fake
/// provider's tokens.
fn no_secret_in(text: &str) {
    for token in ["at-0", "rt-0", "at-1", "rt-1", "at-2", "rt-2"] {
        assert!(!text.contains(token), "{token} in {text}");
    }
}

/// Lets the background work run (bounded), a second of paused time at a time.
async fn settle() {
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    }
}

/// A store whose saves fail while `saves_fail` is set, and which, when given one in
/// `verdict_first`, records a re-auth verdict over `s` there just before the next save (as
/// another process would that judged refused a token this one has just spent), once.
#[derive(Default)]
pub(super) struct SavesFail {
    pub(super) saves_fail: std::sync::atomic::AtomicBool,
    verdict_first: StdMutex<Option<Arc<MemoryStore>>>,
}

#[async_trait]
impl Hooks for SavesFail {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        if call == Call::Save && self.saves_fail.load(Ordering::SeqCst) {
            return Err(disk_full());
        }
        let planted = (call == Call::Save)
            .then(|| self.verdict_first.lock().unwrap().take())
            .flatten();
        if let Some(shared) = planted {
            let key = SessionKey::new("fake", "s");
            let at = shared.load(&key).await?.map(|found| found.version);
            // On the version the refresh started from, as the other process judged it.
            let verdict =
                ReauthVerdict::new(None, "refused elsewhere", datetime!(2026-01-01 00:00 UTC))
                    .replacing(at);
            shared.save(&key, &verdict.into(), at).await?;
        }
        Ok(())
    }
}

/// What the store does meanwhile in [`clock_panics_in_a_refresh`].
#[derive(Clone, Copy, Debug)]
enum Meanwhile {
    Nothing,
    SavesFail,
    /// A verdict of another process lands just before the refresh's first save.
    VerdictFirst,
}

/// A refresh whose clock panics at its `n`-th reading (the store doing what `meanwhile`
/// says) loses nothing and wedges nothing: the store ends with the provider's live refresh
/// token, none is presented twice, the session refreshes, and the lease is given back.
/// Whether the refresh reached that reading.
async fn clock_panics_in_a_refresh(n: u32, meanwhile: Meanwhile) -> bool {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let clock = Arc::new(PanickyClock {
        inner: h.clock,
        readings: AtomicU32::new(0),
        panic_at: AtomicU32::new(0),
    });
    let shared = Arc::new(MemoryStore::new());
    let store = Arc::new(Hooked::over(shared.clone(), SavesFail::default()));
    let manager = TokenManager::builder(h.fake.clone())
        .shared_store(store.clone())
        .client(NoTransport)
        .clock(clock.clone())
        .config(ManagerConfig::default().with_retry(RetryPolicy::never()))
        .build()
        .unwrap();
    manager.insert("s", expired_pair(&h)).await.unwrap();
    match meanwhile {
        Meanwhile::Nothing => {}
        Meanwhile::SavesFail => store.saves_fail.store(true, Ordering::SeqCst),
        Meanwhile::VerdictFirst => *store.verdict_first.lock().unwrap() = Some(shared.clone()),
    }
    let armed = clock.readings.load(Ordering::SeqCst) + n;
    clock.panic_at.store(armed, Ordering::SeqCst);
    // In a task of its own: the caller's own reading of the clock may be the one.
    let caller = tokio::spawn({
        let manager = manager.clone();
        async move { manager.access_token("s").await }
    });
    let answered = caller.await;
    let reached = clock.readings.load(Ordering::SeqCst) >= armed;
    clock.panic_at.store(0, Ordering::SeqCst);
    store.saves_fail.store(false, Ordering::SeqCst);
    settle().await;
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    let after = manager.access_token("s").await;
    settle().await;
    let context = format!(
        "{meanwhile:?}, panic at reading {n}: first {answered:?}, then {after:?}, presented {:?}",
        h.fake.presented.lock().unwrap()
    );
    let key = SessionKey::new("fake", "s");
    let live = h.fake.live.lock().unwrap().clone();
    let stored = shared.load(&key).await.unwrap().unwrap();
    let kept = stored
        .value
        .tokens()
        .and_then(|set| set.refresh_token.as_ref());
    assert_eq!(
        kept.map(RefreshToken::expose_secret),
        Some(&*live),
        "{context}"
    );
    assert!(after.is_ok(), "{context}");
    no_secret_in(&format!("{answered:?} {after:?} {manager:?}"));
    let presented = h.fake.presented.lock().unwrap().clone();
    let mut unique = presented.clone();
    unique.dedup();
    assert_eq!(presented, unique, "{context}");
    assert_eq!(
        shared.acquire_lease(&key, "another", HOUR).await.unwrap(),
        Lease::Acquired,
        "{context}: the lease is given back"
    );
    reached
}

/// Also with a store that cannot save meanwhile, and with another process's verdict on
/// the refreshed token landing before the refresh's save (it judged refused the token this
/// process spent): a panic after the provider answered does not drop the pair it sent. It
/// is saved over the verdict, as a refresh that does not panic saves it, or kept in memory
/// with the lease and saved once the store can.
#[tokio::test(start_paused = true)]
async fn a_clock_that_panics_at_any_reading_of_a_refresh_loses_nothing_and_wedges_nothing() {
    for meanwhile in [
        Meanwhile::Nothing,
        Meanwhile::SavesFail,
        Meanwhile::VerdictFirst,
    ] {
        let mut n = 1;
        while clock_panics_in_a_refresh(n, meanwhile).await {
            n += 1;
            assert!(n < 200, "the refresh read the clock 200 times");
        }
    }
}

/// A store whose `panic_at`-th call (counted from 1 over every kind; 0: never) panics.
/// Notes which kind of call it was in `panicked`.
#[derive(Default)]
struct PanicAt {
    calls: AtomicU32,
    panic_at: AtomicU32,
    panicked: StdMutex<Option<Call>>,
}

#[async_trait]
impl Hooks for PanicAt {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if n == self.panic_at.load(Ordering::SeqCst) {
            *self.panicked.lock().unwrap() = Some(call);
            panic!("the store's code panicked");
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_that_panics_at_any_call_of_a_refresh_loses_nothing_and_wedges_nothing() {
    for n in 1..100 {
        let h = harness(|fake| fake.reuse_window = Duration::ZERO);
        let shared = Arc::new(MemoryStore::new());
        let store = Arc::new(Hooked::over(shared.clone(), PanicAt::default()));
        let manager = manager_over(&h, store.clone());
        manager.insert("s", expired_pair(&h)).await.unwrap();
        let armed = store.calls.load(Ordering::SeqCst) + n;
        store.panic_at.store(armed, Ordering::SeqCst);
        let first = manager.access_token("s").await;
        settle().await;
        let reached = store.calls.load(Ordering::SeqCst) >= armed;
        let panicked = *store.panicked.lock().unwrap();
        let context = format!("panic at call {n} ({panicked:?}): first {first:?}");
        no_secret_in(&context);
        if let Err(error) = &first {
            assert!(
                matches!(error, Error::Store(StoreError::Backend { message, .. }) if message.ends_with("panicked")),
                "{context}"
            );
        }
        // A store's failure is not answered again: the next call works at once.
        let then = manager.access_token("s").await;
        assert!(then.is_ok(), "{context}, then {then:?}");
        settle().await;
        let key = SessionKey::new("fake", "s");
        let live = h.fake.live.lock().unwrap().clone();
        assert_eq!(
            refresh_of(&shared.load(&key).await.unwrap().unwrap()),
            live,
            "{context}"
        );
        assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0"], "{context}");
        let lease = if panicked == Some(Call::Release) {
            // Not given back: it lapses.
            tokio::time::advance(ManagerConfig::default().lease_ttl).await;
            Lease::TakenOver
        } else {
            Lease::Acquired
        };
        assert_eq!(
            shared.acquire_lease(&key, "another", HOUR).await.unwrap(),
            lease,
            "{context}: the lease is given back"
        );
        shared.release_lease(&key, "another").await.unwrap();
        manager.shutdown(Duration::from_secs(1)).await.unwrap();
        if !reached {
            return;
        }
    }
    panic!("the refresh made 100 store calls");
}

#[tokio::test(start_paused = true)]
async fn a_provider_that_panics_after_its_server_rotated_is_asked_again_inside_the_reuse_window() {
    let h = harness(|_| {});
    h.seed("s", Duration::ZERO).await;
    h.fake.then(Step::PanicAfterRotate);
    let error = h.manager.access_token("s").await.unwrap_err();
    assert!(
        matches!(error, Error::RefreshAborted(AbortReason::Panicked)),
        "{error:?}"
    );
    assert_eq!(*h.fake.live.lock().unwrap(), "rt-1");
    // Nobody calls until the window (300 s) is over: as after an answer lost in transit,
    // the manager asks again before that, and gets the pair the provider rotated to.
    tokio::time::sleep(h.fake.reuse_window).await;
    let stored = h.stored_tokens("s").await.unwrap().value;
    assert_eq!(stored.refresh_token.unwrap().expose_secret(), "rt-1");
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
}

/// An insert or a remove of `s`, in a task of its own (whose panic the test sees).
type WriteOp = fn(TokenManager<Arc<Fake>>) -> tokio::task::JoinHandle<Result<(), Error>>;

/// What a manager over `PanickyClock` serves for `s` agrees with its store after `op`
/// panicked at the clock's `n`-th reading; whether the op reached that reading.
async fn clock_panics_in(n: u32, memory: bool, op: WriteOp) -> bool {
    let h = harness(|_| {});
    let clock = Arc::new(PanickyClock {
        inner: h.clock,
        readings: AtomicU32::new(0),
        panic_at: AtomicU32::new(0),
    });
    let builder = TokenManager::builder(h.fake.clone())
        .client(NoTransport)
        .clock(clock.clone());
    let manager = match memory {
        true => builder.store(MemoryStore::new()),
        false => builder.shared_store(Arc::new(MemoryStore::new())),
    }
    .build()
    .unwrap();
    let mut first = expired_pair(&h);
    first.access_expires_at = Some(h.clock.now() + HOUR);
    manager.insert("s", first).await.unwrap();
    let armed = clock.readings.load(Ordering::SeqCst) + n;
    clock.panic_at.store(armed, Ordering::SeqCst);
    let done = op(manager.clone()).await;
    let reached = clock.readings.load(Ordering::SeqCst) >= armed;
    clock.panic_at.store(0, Ordering::SeqCst);
    let key = SessionKey::new("fake", "s");
    let stored = manager.store().load(&key).await.unwrap();
    let stored = stored.as_ref().and_then(|record| record.value.tokens());
    let served = manager.access_token("s").await;
    let context = format!("memory {memory}, panic at reading {n}: {done:?}");
    match (&served, stored) {
        (Ok(token), Some(set)) => assert_eq!(token, &set.access_token, "{context}"),
        (Err(Error::NoTokens(_)), None) => {}
        _ => panic!("{context}: served {served:?}, stored {stored:?}"),
    }
    reached
}

#[tokio::test(start_paused = true)]
async fn a_clock_that_panics_in_an_insert_or_a_remove_leaves_memory_and_store_agreeing() {
    let insert: WriteOp = |manager: TokenManager<Arc<Fake>>| {
        tokio::spawn(async move {
            let login = TokenSet::new(AccessToken::new("at-login"))
                .with_access_expires_at(datetime!(2026-01-01 02:00 UTC));
            manager.insert("s", login).await
        })
    };
    let remove: WriteOp =
        |manager: TokenManager<Arc<Fake>>| tokio::spawn(async move { manager.remove("s").await });
    for (op, memory) in [
        (insert, true),
        (insert, false),
        (remove, true),
        (remove, false),
    ] {
        let mut n = 1;
        while clock_panics_in(n, memory, op).await {
            n += 1;
            assert!(n < 50, "more than 50 readings");
        }
    }
}

/// A refresh of a fresh session whose answer was lost (the provider rotated) and whose
/// retry panicked leaves the spent refresh token stored; the manager would ask again in
/// the background. A `shutdown` that returns `Ok` meanwhile must not leave it so: the next
/// process loads a fresh access token and presents the stored refresh token only at its
/// schedule, after the provider's reuse window, and the pair is lost. Shutdown asks once
/// more (inside the window) before it returns.
#[tokio::test(start_paused = true)]
async fn shutdown_asks_again_for_a_pair_whose_answer_was_lost_before_it_returns() {
    for shut_while_refreshing in [false, true] {
        let gate = Arc::new(Semaphore::new(0));
        let h = harness(|fake| fake.gate = Some(gate.clone()));
        h.seed("s", HOUR).await;
        h.fake.then(Step::LoseAfterRotate).then(Step::Panic);
        let refresh = {
            let manager = h.manager.clone();
            tokio::spawn(async move { manager.refresh_now("s").await })
        };
        gate.add_permits(1);
        // The retry (after its backoff) is at the provider.
        for _ in 0..100 {
            if h.calls() >= 2 {
                break;
            }
            tokio::time::advance(Duration::from_millis(100)).await;
            for _ in 0..20 {
                tokio::task::yield_now().await;
            }
        }
        assert_eq!(h.calls(), 2);
        let shutdown = if shut_while_refreshing {
            // The retry fails once shutdown has begun.
            let manager = h.manager.clone();
            let shutdown = tokio::spawn(async move { manager.shutdown(HOUR).await });
            for _ in 0..100 {
                tokio::task::yield_now().await;
            }
            gate.add_permits(1000);
            Some(shutdown)
        } else {
            gate.add_permits(1000);
            None
        };
        let answered = refresh.await.unwrap();
        assert!(answered.is_err(), "{answered:?}");
        assert_eq!(*h.fake.live.lock().unwrap(), "rt-1");
        match shutdown {
            Some(shutdown) => shutdown.await.unwrap().unwrap(),
            None => h.manager.shutdown(HOUR).await.unwrap(),
        }
        let stored = h.stored_tokens("s").await.unwrap().value;
        assert_eq!(
            stored.refresh_token.unwrap().expose_secret(),
            "rt-1",
            "shut down while refreshing: {shut_while_refreshing}"
        );
    }
}

thread_local! {
    /// Whether the session a test watches is locked now (`Probe`'s drop asks).
    static WATCHED: std::cell::RefCell<Option<Box<dyn Fn() -> bool>>> =
        const { std::cell::RefCell::new(None) };
    /// How many `Probe`s were dropped on this thread while the watched session was locked.
    static DROPPED_UNDER_LOCK: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Extras (the application's type) whose drop notes whether it ran under the watched
/// session's lock.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Probe(u32);

impl Drop for Probe {
    fn drop(&mut self) {
        let locked = WATCHED
            .try_with(|watched| {
                let watched = watched.try_borrow().ok()?;
                watched.as_ref().map(|locked| locked())
            })
            .ok()
            .flatten();
        if locked == Some(true) {
            let _ = DROPPED_UNDER_LOCK.try_with(|n| n.set(n.get() + 1));
        }
    }
}

/// The fake provider, answering with `Probe` extras.
struct WithProbe(Arc<Fake>);

#[async_trait]
impl Provider for WithProbe {
    type Extras = Probe;

    fn name(&self) -> &str {
        "fake"
    }

    async fn refresh(
        &self,
        cx: &CallContext,
        current: &TokenSet<Probe>,
    ) -> Result<TokenSet<Probe>, Error> {
        let answer = self.0.refresh(cx, &retyped(current.clone())).await?;
        Ok(retyped(answer).with_extras(Probe(2)))
    }
}

/// A state the manager lets go of is dropped after the session's lock is let go (the extras'
/// `Drop` is the application's code), also when the manager's own `MemoryStore`, which keeps
/// a state itself, holds its last reference (here: a failed forced refresh published a retry
/// copy of the set, the store keeps the original): an insert's `put_shared` and a remove's
/// `memory.remove` hand the state back (`LetGo`) rather than drop it under the lock.
#[tokio::test(start_paused = true)]
async fn the_extras_a_memory_store_lets_go_of_are_not_dropped_under_the_sessions_lock() {
    let h = harness(|_| {});
    let manager = TokenManager::builder(WithProbe(h.fake.clone()))
        .client(NoTransport)
        .clock(Arc::new(h.clock))
        .config(ManagerConfig::default().with_retry(RetryPolicy::never()))
        .build()
        .unwrap();
    assert!(
        manager.inner.memory.is_some(),
        "the manager's own MemoryStore"
    );
    let set = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(h.clock.now() + HOUR)
        .with_extras(Probe(0));
    manager.insert("s", set).await.unwrap();
    // A forced refresh fails; the set, still usable, is published again as a copy (to be
    // retried later), while the store keeps the state the insert published.
    h.fake
        .then(Step::Fail(too_many_requests(Duration::from_secs(1))));
    assert!(manager.refresh_now("s").await.is_err());
    let session = manager.inner.session("s");
    let shown = session.load().unwrap();
    let State::Ready(current) = &*shown else {
        panic!("the set is kept")
    };
    assert_eq!(current.access_token().expose_secret(), "at-0");
    drop(shown);
    WATCHED.with(|watched| *watched.borrow_mut() = Some(Box::new(move || session.locked())));
    // A login: the store lets go of the state it kept, its last holder.
    let login = TokenSet::new(AccessToken::new("at-login"))
        .with_refresh_token(RefreshToken::new("rt-login"))
        .with_extras(Probe(1));
    manager.insert("s", login).await.unwrap();
    let watched = WATCHED.with(|watched| watched.borrow_mut().take());
    drop(watched);
    assert_eq!(
        DROPPED_UNDER_LOCK.with(std::cell::Cell::get),
        0,
        "extras were dropped under the session's lock"
    );
}

thread_local! {
    /// Clones of `Fragile` left before one panics (0: none panics).
    static CLONES_BEFORE_PANIC: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Extras whose `Clone` panics at the armed clone on this thread.
#[derive(Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Fragile(u32);

impl Clone for Fragile {
    fn clone(&self) -> Self {
        CLONES_BEFORE_PANIC.with(|left| match left.get() {
            0 => {}
            1 => {
                left.set(0);
                panic!("the extras' Clone panicked");
            }
            n => left.set(n - 1),
        });
        Fragile(self.0)
    }
}

/// Extras numbered by the refreshes that made them.
trait Numbered: crate::token_set::Extras {
    fn number(&self) -> u32;
    fn numbered(number: u32) -> Self;
    /// Runs as the provider answers a refresh of `current`.
    fn answering(current: &Self) {
        let _ = current;
    }
}

impl Numbered for Fragile {
    fn number(&self) -> u32 {
        self.0
    }
    fn numbered(number: u32) -> Self {
        Self(number)
    }
}

/// The fake provider, answering with extras one higher than the set it refreshes:
/// `Fragile` ones (whose `Clone` can panic) or `Brittle` ones (whose `Drop` can).
struct WithNumbered<X>(Arc<Fake>, std::marker::PhantomData<X>);

impl<X> WithNumbered<X> {
    fn new(fake: Arc<Fake>) -> Self {
        Self(fake, std::marker::PhantomData)
    }
}

#[async_trait]
impl<X: Numbered> Provider for WithNumbered<X> {
    type Extras = X;

    fn name(&self) -> &str {
        "fake"
    }

    async fn refresh(&self, cx: &CallContext, current: &TokenSet<X>) -> Result<TokenSet<X>, Error> {
        let mut plain = TokenSet::new(current.access_token.clone());
        plain.refresh_token = current.refresh_token.clone();
        plain.access_expires_at = current.access_expires_at;
        let answer = self.0.refresh(cx, &plain).await?;
        let answer = retyped(answer).with_extras(X::numbered(current.extras.number() + 1));
        X::answering(&current.extras);
        Ok(answer)
    }
}

/// Extras whose `Clone` panics, at whichever clone of a refresh it comes: nothing the
/// provider issued is lost, no refresh token is presented twice, no re-auth is declared,
/// and the session refreshes again once the clones stop panicking.
#[tokio::test(start_paused = true)]
async fn extras_that_panic_when_cloned_at_any_clone_of_a_refresh_lose_nothing() {
    for owned in [false, true] {
        for at in 1.. {
            let h = harness(|fake| fake.reuse_window = Duration::ZERO);
            let manager = match owned {
                // The manager's own `MemoryStore`, which keeps the very sets it holds.
                true => TokenManager::builder(WithNumbered::<Fragile>::new(h.fake.clone()))
                    .store(MemoryStore::new())
                    .client(NoTransport)
                    .clock(Arc::new(h.clock))
                    .config(ManagerConfig::default().with_retry(RetryPolicy::never()))
                    .build()
                    .unwrap(),
                false => manager_of(
                    &h,
                    WithNumbered::<Fragile>::new(h.fake.clone()),
                    Arc::new(MemoryStore::new()),
                ),
            };
            let store = manager.store().clone();
            let login = TokenSet::new(AccessToken::new("at-0"))
                .with_refresh_token(RefreshToken::new("rt-0"))
                .with_access_expires_at(h.clock.now())
                .with_extras(Fragile(0));
            manager.insert("s", login).await.unwrap();
            CLONES_BEFORE_PANIC.with(|left| left.set(at));
            let first = manager.access_token("s").await;
            // Left unspent: the refresh made fewer clones than `at`, and every one was tried.
            let every_clone_tried = CLONES_BEFORE_PANIC.with(|left| left.replace(0)) != 0;
            tokio::time::sleep(Duration::from_secs(10)).await;
            let next = manager.refresh_now("s").await;
            let presented = h.fake.presented.lock().unwrap().clone();
            let mut unique = presented.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(
                unique.len(),
                presented.len(),
                "clone {at} (owned store {owned}): a refresh token presented twice: {presented:?} (first {first:?}, next {next:?})"
            );
            let next = next.unwrap_or_else(|e| {
                panic!("clone {at} (owned store {owned}): {e:?} (first {first:?})")
            });
            let live = h.fake.live.lock().unwrap().clone();
            let key = SessionKey::new("fake", "s");
            let stored = store.load(&key).await.unwrap().unwrap();
            assert_eq!(
                refresh_of(&stored),
                live,
                "clone {at}: the live token is stored"
            );
            assert!(next.expose_secret().starts_with("at-"), "clone {at}");
            if every_clone_tried {
                break;
            }
        }
    }
}

/// A provider whose `authorize_url` panics (its code slicing a session name too short for
/// it) costs the re-auth signal its URL, nothing else: the refusal is a verdict, recorded in
/// the store and reported once, the dead refresh token never presented again, and a session
/// without tokens is still answered `NoTokens`.
#[tokio::test(start_paused = true)]
async fn a_provider_whose_authorize_url_panics_still_records_the_verdict() {
    let mut h = harness(|fake| fake.panicking_authorize_url = true);
    h.fake.then(Step::Fail(invalid_grant()));
    h.seed("s", Duration::ZERO).await;
    let error = h.manager.access_token("s").await.unwrap_err();
    let reauth = error.reauth().expect("a re-auth signal");
    assert_eq!(reauth.code.as_deref(), Some("invalid_grant"));
    assert_eq!(reauth.authorize_url, None);
    let verdict = h.stored("s").await.expect("the verdict is recorded");
    assert!(verdict.value.reauth().is_some(), "{verdict:?}");
    for _ in 0..3 {
        let again = h.manager.access_token("s").await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::ReauthRequired, "{again:?}");
    }
    assert_eq!(
        h.calls(),
        1,
        "the dead refresh token is never presented again"
    );
    let reauths = (h.drain().into_iter())
        .filter(|e| matches!(e, Event::ReauthRequired(_)))
        .count();
    assert_eq!(reauths, 1);
    let none = h.manager.access_token("nobody").await.unwrap_err();
    assert!(matches!(none, Error::NoTokens(_)), "{none:?}");
}

/// A blank refresh token is no refresh token, inserted as answered: `insert_refresh_token`
/// refuses one with `Error::Config` (the session keeps what it had; stored, it would replace
/// a live pair and then be presented and refused as a dead session's), and a set inserted
/// with one beside its access token is stored with none.
#[tokio::test(start_paused = true)]
async fn a_blank_refresh_token_inserted_is_refused_alone_and_read_as_none_in_a_set() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    for blank in ["", "  "] {
        let error = (h.manager)
            .insert_refresh_token("s", RefreshToken::new(blank))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error:?}");
        let token = h.manager.access_token("s").await.unwrap();
        assert_eq!(token.expose_secret(), "at-0");
        let stored = h.stored_tokens("s").await.unwrap().value;
        assert_eq!(stored.refresh_token, Some(RefreshToken::new("rt-0")));
    }
    let set = TokenSet::new(AccessToken::new("at-9"))
        .with_refresh_token(RefreshToken::new(" "))
        .with_access_expires_at(h.clock.now() + HOUR);
    h.manager.insert("t", set).await.unwrap();
    assert_eq!(
        h.stored_tokens("t").await.unwrap().value.refresh_token,
        None
    );
    let set = h.manager.token_set("t").await.unwrap();
    assert_eq!(set.refresh_token, None);
    assert_eq!(h.calls(), 0, "nothing presented");
}

/// A blank access token inserted with no refresh token is refused with `Error::Config`, as
/// one that cannot be sent in a header is: it could never be served, and nothing could
/// refresh it, so stored it would replace a live pair and end the session at its first
/// call. The session keeps what it had. A provider that can issue (client credentials)
/// takes it: its first call issues a set.
#[tokio::test(start_paused = true)]
async fn a_blank_access_token_inserted_alone_is_refused_unless_the_provider_can_issue() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    for blank in ["", "  "] {
        let set =
            TokenSet::new(AccessToken::new(blank)).with_access_expires_at(h.clock.now() + HOUR);
        let error = h.manager.insert("s", set).await.unwrap_err();
        assert!(matches!(error, Error::Config(_)), "{error:?}");
        let token = h.manager.access_token("s").await.unwrap();
        assert_eq!(token.expose_secret(), "at-0");
        let stored = h.stored_tokens("s").await.unwrap().value;
        assert_eq!(stored.refresh_token, Some(RefreshToken::new("rt-0")));
    }
    assert_eq!(h.calls(), 0, "nothing presented");
    let h = harness(|fake| fake.can_issue = true);
    h.manager
        .insert("c", TokenSet::new(AccessToken::new("")))
        .await
        .unwrap();
    let token = h.manager.access_token("c").await.unwrap();
    assert!(!token.expose_secret().is_empty());
}

/// A clock that panics at every reading from its `panic_from`-th on (counted from 1; 0:
/// never): a clock gone wrong for good, not for one reading.
struct BrokenClock {
    inner: TokioClock,
    readings: AtomicU32,
    panic_from: AtomicU32,
}

impl Clock for BrokenClock {
    fn now(&self) -> OffsetDateTime {
        let reading = self.readings.fetch_add(1, Ordering::SeqCst) + 1;
        let from = self.panic_from.load(Ordering::SeqCst);
        if from != 0 && reading >= from {
            panic!("the clock panicked");
        }
        self.inner.now()
    }
}

/// The fake provider, reading the manager's clock first (as a provider's decoder does to
/// turn an `expires_in` into an instant), which breaks for good at that reading.
struct BreaksTheClock(Arc<Fake>, Arc<BrokenClock>);

#[async_trait]
impl Provider for BreaksTheClock {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "fake"
    }

    async fn refresh(&self, cx: &CallContext, current: &TokenSet) -> Result<TokenSet, Error> {
        let clock = &self.1;
        let next = clock.readings.load(Ordering::SeqCst) + 1;
        clock.panic_from.store(next, Ordering::SeqCst);
        let _now = cx.now();
        self.0.refresh(cx, current).await
    }
}

/// A clock that panics for good (not once) from a reading in the provider's code on: the
/// lease is given back all the same. The refresh's handling of the provider's panic must
/// not read that clock and panic past the release, leaving the lease to lapse (another
/// process would wait for it, then watch a lease length for a save that never comes).
#[tokio::test(start_paused = true)]
async fn a_clock_that_panics_for_good_in_the_providers_code_gives_the_lease_back() {
    let h = harness(|_| {});
    let clock = Arc::new(BrokenClock {
        inner: h.clock,
        readings: AtomicU32::new(0),
        panic_from: AtomicU32::new(0),
    });
    let shared = Arc::new(MemoryStore::new());
    let manager = builder_of(
        &h,
        BreaksTheClock(h.fake.clone(), clock.clone()),
        shared.clone(),
    )
    .clock(clock.clone())
    .config(ManagerConfig::default().with_retry(RetryPolicy::never()))
    .build()
    .unwrap();
    manager.insert("s", expired_pair(&h)).await.unwrap();
    let caller = tokio::spawn({
        let manager = manager.clone();
        async move { manager.access_token("s").await }
    });
    let answered = caller.await;
    clock.panic_from.store(0, Ordering::SeqCst);
    assert!(
        matches!(
            answered,
            Ok(Err(Error::RefreshAborted(AbortReason::Panicked)))
        ),
        "{answered:?}"
    );
    assert_eq!(h.calls(), 0, "the provider's code panicked before its call");
    let key = SessionKey::new("fake", "s");
    assert_eq!(
        shared.acquire_lease(&key, "another", HOUR).await.unwrap(),
        Lease::Acquired,
        "the lease is given back"
    );
}

thread_local! {
    /// The `Brittle` extras whose next drop on this thread panics (0: none).
    static PANIC_ON_DROP_OF: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

/// Extras whose `Drop` panics once, for the id armed on this thread.
#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct Brittle(u32);

impl Drop for Brittle {
    fn drop(&mut self) {
        let armed = PANIC_ON_DROP_OF
            .try_with(|armed| armed.get() == self.0 && armed.replace(0) != 0)
            .unwrap_or(false);
        if armed && !std::thread::panicking() {
            panic!("the extras' Drop panicked");
        }
    }
}

/// The provider arms the drop of the refreshed set's extras as it answers.
impl Numbered for Brittle {
    fn number(&self) -> u32 {
        self.0
    }
    fn numbered(number: u32) -> Self {
        Self(number)
    }
    fn answering(current: &Self) {
        PANIC_ON_DROP_OF.with(|armed| armed.set(current.0));
    }
}

/// A refresh whose new pair could not be saved keeps the lease for the background save of
/// that pair, even when the refresh then panics as it lets go of the set it refreshed (the
/// extras' `Drop` is the application's code): the lease is the background save's, not the
/// refresh's to give back. Given back, another process could take it and present the
/// refresh token this one has already spent.
#[tokio::test(start_paused = true)]
async fn a_panic_after_an_unsaved_pair_went_to_its_background_save_leaves_it_the_lease() {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let shared = Arc::new(MemoryStore::new());
    let store = Arc::new(Hooked::over(shared.clone(), SavesFail::default()));
    let manager = manager_of(
        &h,
        WithNumbered::<Brittle>::new(h.fake.clone()),
        store.clone(),
    );
    let login = retyped(expired_pair(&h)).with_extras(Brittle(1));
    manager.insert("s", login).await.unwrap();
    store.saves_fail.store(true, Ordering::SeqCst);
    let caller = tokio::spawn({
        let manager = manager.clone();
        async move {
            manager
                .access_token("s")
                .await
                .map(|t| t.expose_secret().to_owned())
        }
    });
    let answered = caller.await.unwrap();
    assert_eq!(
        PANIC_ON_DROP_OF.with(std::cell::Cell::get),
        0,
        "{answered:?}"
    );
    let key = SessionKey::new("fake", "s");
    assert_eq!(
        refresh_of(&shared.load(&key).await.unwrap().unwrap()),
        "rt-0"
    );
    // The pair the provider rotated to is only in memory: its lease is still held.
    assert!(
        matches!(
            shared.acquire_lease(&key, "another", HOUR).await.unwrap(),
            Lease::HeldByOther { .. }
        ),
        "the lease was given back before the rotated pair was saved ({answered:?})"
    );
    store.saves_fail.store(false, Ordering::SeqCst);
    settle().await;
    assert_eq!(
        refresh_of(&shared.load(&key).await.unwrap().unwrap()),
        "rt-1"
    );
    assert_eq!(
        shared.acquire_lease(&key, "another", HOUR).await.unwrap(),
        Lease::Acquired,
        "and given back once it was"
    );
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0"]);
}

/// A store whose saves wait for `saves` permits once `gated` is set, and whose lease
/// requests fail while `leases_fail` is set; `saving` says a save is waiting.
struct SlowSavesLostLeases {
    gated: std::sync::atomic::AtomicBool,
    saves: Semaphore,
    saving: std::sync::atomic::AtomicBool,
    leases_fail: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Hooks for SlowSavesLostLeases {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        match call {
            Call::Save if self.gated.load(Ordering::SeqCst) => {
                self.saving.store(true, Ordering::SeqCst);
                drop(self.saves.acquire().await);
                Ok(())
            }
            Call::Acquire if self.leases_fail.load(Ordering::SeqCst) => Err(disk_full()),
            _ => Ok(()),
        }
    }
}

/// The lease's heartbeat runs beside the refresh it guards: a panic in it (an application's
/// `tracing` subscriber, say, as it writes that a renewal failed) must not end that refresh
/// halfway, dropping the pair the provider has just sent while its save is under way.
#[tokio::test(start_paused = true)]
async fn a_heartbeat_that_panics_does_not_drop_the_pair_being_saved() {
    let _logs = capture_logs();
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let shared = Arc::new(MemoryStore::new());
    let hooks = SlowSavesLostLeases {
        gated: false.into(),
        saves: Semaphore::new(0),
        saving: false.into(),
        leases_fail: false.into(),
    };
    let store = Arc::new(Hooked::over(shared.clone(), hooks));
    let manager = manager_over(&h, store.clone());
    manager.insert("s", expired_pair(&h)).await.unwrap();
    store.gated.store(true, Ordering::SeqCst);
    let caller = tokio::spawn({
        let manager = manager.clone();
        async move { manager.access_token("s").await }
    });
    assert!(
        until(|| store.saving.load(Ordering::SeqCst)).await,
        "the save began"
    );
    assert_eq!(*h.fake.live.lock().unwrap(), "rt-1");
    // The store fails the heartbeat's renewal, and the subscriber panics as it says so.
    store.leases_fail.store(true, Ordering::SeqCst);
    crate::test_logs::panic_on_line("could not renew the refresh lease");
    tokio::time::advance(ManagerConfig::default().heartbeat()).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    store.leases_fail.store(false, Ordering::SeqCst);
    store.saves.add_permits(1000);
    let answered = caller.await.unwrap();
    settle().await;
    let key = SessionKey::new("fake", "s");
    assert_eq!(
        refresh_of(&shared.load(&key).await.unwrap().unwrap()),
        "rt-1",
        "the rotated pair is saved (answered {answered:?})"
    );
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0"]);
}

/// A manager of the harness's provider, calling it as `retry` says, over a `MemoryStore`
/// whose saves fail while `saves_fail` is set, with `s` holding an expired `at-0`/`rt-0`:
/// the store, its hooked form, the manager.
pub(super) async fn over_failing_saves(
    h: &Harness,
    retry: RetryPolicy,
) -> (
    Arc<MemoryStore>,
    Arc<Hooked<SavesFail, Arc<MemoryStore>>>,
    TokenManager<Arc<Fake>>,
) {
    let shared = Arc::new(MemoryStore::new());
    let store = Arc::new(Hooked::over(shared.clone(), SavesFail::default()));
    let manager = builder_of(h, h.fake.clone(), store.clone())
        .config(
            ManagerConfig::default()
                .with_refresh_skew(Duration::from_secs(60), Duration::ZERO)
                .with_retry(retry),
        )
        .build()
        .unwrap();
    manager.insert("s", expired_pair(h)).await.unwrap();
    (shared, store, manager)
}

/// The background save of a pair the store could not take goes on after a panic in one of
/// its attempts (an application's `tracing` subscriber, say, as it writes that the save
/// failed again), renewing the lease: the pair is the only copy, and the lease left to
/// lapse, another process would take it and present the refresh token this one spent.
#[tokio::test(start_paused = true)]
async fn a_background_save_whose_attempt_panics_keeps_the_lease_and_saves_the_pair() {
    let _logs = capture_logs();
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let (shared, store, manager) = over_failing_saves(&h, RetryPolicy::never()).await;
    store.saves_fail.store(true, Ordering::SeqCst);
    crate::test_logs::panic_on_line("saving the token set failed again");
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    // Longer than a lease, the store failing every save meanwhile.
    let lease_ttl = ManagerConfig::default().lease_ttl;
    for _ in 0..lease_ttl.as_secs() + 10 {
        tokio::time::advance(Duration::from_secs(1)).await;
        for _ in 0..20 {
            tokio::task::yield_now().await;
        }
    }
    let key = SessionKey::new("fake", "s");
    assert_eq!(
        refresh_of(&shared.load(&key).await.unwrap().unwrap()),
        "rt-0"
    );
    let lease = shared.acquire_lease(&key, "another", HOUR).await.unwrap();
    assert!(
        matches!(lease, Lease::HeldByOther { .. }),
        "the lease of the unsaved pair lapsed: {lease:?}"
    );
    // Saved at its next attempt once the store takes it (a heartbeat apart at most).
    store.saves_fail.store(false, Ordering::SeqCst);
    tokio::time::advance(ManagerConfig::default().heartbeat()).await;
    settle().await;
    assert_eq!(
        refresh_of(&shared.load(&key).await.unwrap().unwrap()),
        "rt-1"
    );
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0"]);
}

/// The background recording of a re-auth verdict the store could not take goes on after a
/// panic in one of its attempts (an application's `tracing` subscriber, say, as it writes
/// that the recording failed again): the verdict reaches the store once it works, where
/// every other process sees it instead of presenting the dead token again.
#[tokio::test(start_paused = true)]
async fn a_verdict_recording_whose_attempt_panics_still_records_the_verdict() {
    let _logs = capture_logs();
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let (shared, store, manager) = over_failing_saves(&h, RetryPolicy::never()).await;
    h.fake.then(Step::Fail(invalid_grant()));
    store.saves_fail.store(true, Ordering::SeqCst);
    crate::test_logs::panic_on_line("recording the re-auth verdict failed again");
    let refused = manager.access_token("s").await.unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ReauthRequired);
    settle().await;
    let key = SessionKey::new("fake", "s");
    assert_eq!(
        refresh_of(&shared.load(&key).await.unwrap().unwrap()),
        "rt-0"
    );
    store.saves_fail.store(false, Ordering::SeqCst);
    tokio::time::advance(ManagerConfig::default().heartbeat()).await;
    settle().await;
    let stored = shared.load(&key).await.unwrap().unwrap();
    assert!(stored.value.reauth().is_some(), "the verdict is recorded");
    assert_eq!(h.calls(), 1);
}
