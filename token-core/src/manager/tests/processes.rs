//! Several processes (managers) on one store that fails, hangs or answers slowly for one of
//! them, or whose clocks disagree, against a provider that refuses a refresh token presented
//! twice: no token is sent under a lease that may have lapsed (another process may take it
//! over and send the same token), no re-auth is declared while the grant lives, and the
//! store ends with the live pair.

use super::*;

/// A process on `store` with the default configuration (its retries included).
fn process(h: &Harness, store: Arc<dyn TokenStore>) -> TokenManager<Arc<Fake>> {
    process_with(h, store, ManagerConfig::default())
}

fn process_with(
    h: &Harness,
    store: Arc<dyn TokenStore>,
    config: ManagerConfig,
) -> TokenManager<Arc<Fake>> {
    TokenManager::builder(h.fake.clone())
        .shared_store(store)
        .client(NoTransport)
        .clock(Arc::new(h.clock))
        .config(config)
        .build()
        .unwrap()
}

/// `process` asks for session `s`'s access token, in a task of its own.
fn asks(process: &TokenManager<Arc<Fake>>) -> tokio::task::JoinHandle<Result<AccessToken, Error>> {
    let process = process.clone();
    tokio::spawn(async move { process.access_token("s").await })
}

/// The refresh tokens the provider was sent, in order.
fn presented(h: &Harness) -> Vec<String> {
    h.fake.presented.lock().unwrap().clone()
}

/// The events received report no re-auth.
fn no_reauth(events: &mut broadcast::Receiver<Event>) {
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event, Event::ReauthRequired(_)), "{event:?}");
    }
}

/// Two processes on one store, a provider without a reuse window whose answers wait at
/// `gate`: A (on `store_a`, which hangs while `hung` is set) sends rt-0 and is answered a
/// 503 once the gate opens; meanwhile A's store stops answering, its lease lapses, and B
/// asks for the session (B takes the lease over, waits a lease length for a save, then
/// refreshes).
struct LostLease {
    h: Harness,
    gate: Arc<Semaphore>,
    shared: Arc<MemoryStore>,
    store_a: Arc<Hooked<HangingStore, Arc<MemoryStore>>>,
    events: [broadcast::Receiver<Event>; 2],
    first: tokio::task::JoinHandle<Result<AccessToken, Error>>,
    second: tokio::task::JoinHandle<Result<AccessToken, Error>>,
}

async fn a_loses_its_lease_to_b() -> LostLease {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| {
        fake.gate = Some(gate.clone());
        fake.reuse_window = Duration::ZERO;
    });
    let shared = Arc::new(MemoryStore::new());
    let store_a = Arc::new(Hooked::over(shared.clone(), HangingStore::default()));
    let (a, b) = (process(&h, store_a.clone()), process(&h, shared.clone()));
    let events = [a.subscribe(), b.subscribe()];
    b.insert("s", expired_pair(&h)).await.unwrap();
    h.fake.then(Step::Fail(unavailable(None)));
    let first = asks(&a);
    h.until_calls(1).await;
    store_a.hung.store(true, Ordering::SeqCst);
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    let second = asks(&b);
    LostLease {
        h,
        gate,
        shared,
        store_a,
        events,
        first,
        second,
    }
}

#[tokio::test(start_paused = true)]
async fn a_retry_is_not_sent_when_the_store_cannot_confirm_the_lease() {
    let LostLease {
        h,
        gate,
        shared,
        events: [_, mut events],
        first,
        second,
        ..
    } = a_loses_its_lease_to_b().await;
    tokio::time::sleep(Duration::from_secs(4)).await;
    // The 503 reaches A, which would retry; B waits a lease length for a save, then
    // spends rt-0. A's store still hangs: A's callers get an error.
    gate.add_permits(10);
    assert_eq!(second.await.unwrap().unwrap().expose_secret(), "at-1");
    assert!(first.await.unwrap().is_err());
    assert_eq!(
        presented(&h),
        ["rt-0", "rt-0"],
        "A's first call and B's: A sends no retry under a lease it could not renew"
    );
    no_reauth(&mut events);
    let stored = h_stored(&shared).await;
    assert_eq!(stored, "rt-1");
}

#[tokio::test(start_paused = true)]
async fn a_lease_taken_long_before_the_first_call_is_renewed_before_it() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| {
        fake.gate = Some(gate.clone());
        fake.reuse_window = Duration::ZERO;
    });
    let shared = Arc::new(MemoryStore::new());
    let store_a = Arc::new(Hooked::over(shared.clone(), HeldCalls::default()));
    let (a, b) = (process(&h, store_a.clone()), process(&h, shared.clone()));
    let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());
    a.insert("s", expired_pair(&h)).await.unwrap();
    // A takes the lease; its re-read of the store answers after most of a lease length
    // (a slow database, under the store timeout).
    let reread = store_a.hold(Call::Load);
    let first = asks(&a);
    store_a.until_reached(1).await;
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease * 5 / 6).await;
    reread.add_permits(1);
    // A sends rt-0; the provider is slow to answer (under the call timeout).
    h.until_calls(1).await;
    tokio::time::sleep(lease / 6 + Duration::from_secs(1)).await;
    // B wants the session once A's lease would have lapsed without a renewal.
    let second = asks(&b);
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    gate.add_permits(10);
    assert_eq!(first.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(second.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(presented(&h), ["rt-0"], "B never sends the token A sent");
    no_reauth(&mut events_a);
    no_reauth(&mut events_b);
    assert_eq!(h_stored(&shared).await, "rt-1");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_lost_its_lease_takes_the_pair_the_new_holder_saved() {
    let LostLease {
        h,
        gate,
        shared,
        store_a,
        events: [mut events_a, mut events_b],
        first,
        second,
    } = a_loses_its_lease_to_b().await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    // A's store is back as its 503 arrives: rather than retry under a lease it lost (or
    // fail its callers), A reads the store again and takes what B saved.
    store_a.hung.store(false, Ordering::SeqCst);
    gate.add_permits(10);
    assert_eq!(second.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(first.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(presented(&h), ["rt-0", "rt-0"], "A's first call and B's");
    no_reauth(&mut events_a);
    no_reauth(&mut events_b);
    assert_eq!(h_stored(&shared).await, "rt-1");
}

/// The refresh token `store` holds for session `s`.
async fn h_stored(store: &MemoryStore) -> String {
    let record = store
        .load(&SessionKey::new("fake", "s"))
        .await
        .unwrap()
        .unwrap();
    refresh_of(&record).to_owned()
}

#[tokio::test(start_paused = true)]
async fn a_refusal_after_the_lease_was_lost_waits_for_the_new_holders_save() {
    let (h, gate, shared, store_a) = a_store_to_cut_off();
    // A provider slower than two lease lengths: A's call outlives its lease.
    let config = ManagerConfig::default().with_call_timeout(Duration::from_secs(600));
    let a = process_with(&h, store_a.clone(), config.clone());
    let b = process_with(&h, shared.clone(), config);
    let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());
    b.insert("s", expired_pair(&h)).await.unwrap();
    // A sends rt-0; the provider is slow, and A loses the store: its lease lapses.
    let first = asks(&a);
    h.until_calls(1).await;
    store_a.cut.store(true, Ordering::SeqCst);
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    // B takes the lease over, waits a lease length for a save, and sends rt-0 too.
    let second = asks(&b);
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    assert_eq!(h.calls(), 2, "B sent rt-0 after a lease length");
    // A reaches the store again. The provider handled B's request first: it refuses A's rt-0
    // (its first answer), then answers B (rt-0 -> rt-1) a moment later.
    store_a.cut.store(false, Ordering::SeqCst);
    h.fake.then(Step::Fail(invalid_grant()));
    gate.add_permits(1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    gate.add_permits(1);
    assert_eq!(second.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(
        first.await.unwrap().unwrap().expose_secret(),
        "at-1",
        "A takes the pair of the process that took its lease over"
    );
    no_reauth(&mut events_a);
    no_reauth(&mut events_b);
    assert_eq!(h_stored(&shared).await, "rt-1");
}

/// Two processes whose clocks disagree by `skew` (B's ahead) use one session for six hours,
/// its access tokens valid for one; returns how many refreshes they made.
async fn use_with_a_clock_ahead(skew: Duration) -> u32 {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let shared = Arc::new(MemoryStore::new());
    let a = process(&h, shared.clone());
    let ahead = TokioClock::starting_at(h.clock.now() + skew);
    let b = TokenManager::builder(h.fake.clone())
        .shared_store(shared.clone())
        .client(NoTransport)
        .clock(Arc::new(ahead))
        .build()
        .unwrap();
    let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());
    a.insert("s", expired_pair(&h)).await.unwrap();
    for _ in 0..6 * 12 {
        a.access_token("s").await.unwrap();
        b.access_token("s").await.unwrap();
        tokio::time::sleep(Duration::from_secs(300)).await;
    }
    let presented = presented(&h);
    let spent: std::collections::HashSet<_> = presented.iter().collect();
    assert_eq!(spent.len(), presented.len(), "{skew:?}: {presented:?}");
    no_reauth(&mut events_a);
    no_reauth(&mut events_b);
    assert_eq!(h_stored(&shared).await, *h.fake.live.lock().unwrap());
    h.calls()
}

#[tokio::test(start_paused = true)]
async fn a_process_whose_clock_is_ahead_spends_no_token_twice_and_declares_no_reauth() {
    // Minutes ahead: leases run on the store's clock, and expiries are only scheduled sooner.
    // The first refresh, then one an hour.
    assert_eq!(use_with_a_clock_ahead(Duration::from_secs(5 * 60)).await, 7);
    // More than a token's lifetime ahead: every token looks expired to B, which refreshes
    // at most once per minimum interval.
    use_with_a_clock_ahead(Duration::from_secs(2 * 3600)).await;
}

/// Fails (or, with `hang`, holds until healed) every call from the `from`-th on (counting
/// from 0) until `healed` is set.
#[derive(Default)]
struct OutageFrom {
    from: u32,
    hang: bool,
    calls: AtomicU32,
    healed: Arc<tokio::sync::Notify>,
    over: std::sync::atomic::AtomicBool,
}

impl OutageFrom {
    fn heal(&self) {
        self.over.store(true, Ordering::SeqCst);
        self.healed.notify_waiters();
    }
}

#[async_trait]
impl Hooks for OutageFrom {
    async fn before(&self, _: Call) -> Result<(), StoreError> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        let healed = self.healed.notified();
        if call < self.from || self.over.load(Ordering::SeqCst) {
            return Ok(());
        }
        if self.hang {
            healed.await;
            return Ok(());
        }
        Err(StoreError::Backend {
            message: "the store is unreachable".into(),
            source: None,
        })
    }
}

/// A's store fails (or hangs) from its `from`-th call for `outage` while A refreshes, and B
/// wants the session `b_after` into it.
async fn outage_at(from: u32, hang: bool, outage: Duration, b_after: Duration) {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| {
        fake.gate = Some(gate.clone());
        fake.reuse_window = Duration::ZERO;
    });
    let shared = Arc::new(MemoryStore::new());
    let store_a = Arc::new(Hooked::over(
        shared.clone(),
        OutageFrom {
            from,
            hang,
            ..OutageFrom::default()
        },
    ));
    let (a, b) = (process(&h, store_a.clone()), process(&h, shared.clone()));
    let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());
    b.insert("s", expired_pair(&h)).await.unwrap();
    gate.add_permits(1000);
    let first = asks(&a);
    let second = tokio::spawn({
        let b = b.clone();
        async move {
            tokio::time::sleep(b_after).await;
            b.access_token("s").await
        }
    });
    tokio::time::sleep(outage).await;
    store_a.heal();
    let _ = first.await.unwrap();
    let _ = second.await.unwrap();
    // Once A's store is back, both serve the live pair.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let case = format!("from call {from}, hang {hang}, {outage:?} out, B after {b_after:?}");
    for manager in [&a, &b] {
        let token = manager.access_token("s").await;
        assert!(token.is_ok(), "{case}: {token:?}");
    }
    let presented = presented(&h);
    let spent: std::collections::HashSet<_> = presented.iter().collect();
    assert_eq!(spent.len(), presented.len(), "{case}: {presented:?}");
    no_reauth(&mut events_a);
    no_reauth(&mut events_b);
    a.shutdown(Duration::from_secs(60)).await.unwrap();
    b.shutdown(Duration::from_secs(60)).await.unwrap();
    assert_eq!(
        h_stored(&shared).await,
        *h.fake.live.lock().unwrap(),
        "{case}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_store_outage_at_any_step_of_a_refresh_shorter_than_a_lease_loses_nothing() {
    for hang in [false, true] {
        for from in 0..8 {
            for outage in [1, 5, 15, 25] {
                for b_after in [0, 1, 10, 20] {
                    let (outage, b_after) =
                        (Duration::from_secs(outage), Duration::from_secs(b_after));
                    outage_at(from, hang, outage, b_after).await;
                }
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_renewal_answered_after_the_lease_ran_out_does_not_let_a_retry_send_the_token() {
    // The shortest lease, the default store timeout: a renewal may be answered long after
    // the lease it renews ran out. No reuse window: a spent token presented again is refused.
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let shared = Arc::new(MemoryStore::new());
    let store_a = Arc::new(Hooked::over(shared.clone(), HeldCalls::default()));
    let config = ManagerConfig::default().with_lease_ttl(Duration::from_secs(1));
    let a = process_with(&h, store_a.clone(), config.clone());
    let b = process_with(&h, shared.clone(), config);
    let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());
    b.insert("s", expired_pair(&h)).await.unwrap();
    // A takes the lease and sends rt-0, answered with a 503; every renewal it sends from
    // then on (its heartbeat's, its retry's) is held on the way to the store.
    h.fake.then(Step::Fail(unavailable(None)));
    let first = asks(&a);
    h.until_calls(1).await;
    let renewals = [store_a.hold(Call::Acquire), store_a.hold(Call::Acquire)];
    // Its retry (after at most 250 ms) and its heartbeat (a third of a second in).
    tokio::time::sleep(Duration::from_millis(500)).await;
    store_a.until_reached(2).await;
    // A's lease lapses; B takes it over, waits a lease length for a save, spends rt-0,
    // saves rt-1 and gives the lease back.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(b.access_token("s").await.unwrap().expose_secret(), "at-1");
    assert_eq!(presented(&h), ["rt-0", "rt-0"]);
    // A's renewals reach the store now: nobody holds the lease, so they are granted.
    for renewal in &renewals {
        renewal.add_permits(1);
    }
    let _ = first.await.unwrap();
    assert_eq!(
        presented(&h),
        ["rt-0", "rt-0"],
        "A's retry does not send rt-0, spent by B while A's lease had lapsed"
    );
    no_reauth(&mut events_a);
    no_reauth(&mut events_b);
    assert_eq!(a.access_token("s").await.unwrap().expose_secret(), "at-1");
    assert_eq!(h_stored(&shared).await, "rt-1");
}

/// What A's application does while A waits, after a refusal, for the process that took its
/// lease over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Meanwhile {
    Nothing,
    Insert,
    Remove,
    /// A shutdown: it ends the wait (nothing was spent since the refusal).
    Shutdown,
}

#[tokio::test(start_paused = true)]
async fn a_refusal_after_the_lease_was_lost_waits_while_the_new_holder_refreshes() {
    refused_while_the_new_holder_saves(Meanwhile::Nothing).await;
}

#[tokio::test(start_paused = true)]
async fn a_login_inserted_while_a_refusal_waits_for_the_new_holder_is_served() {
    refused_while_the_new_holder_saves(Meanwhile::Insert).await;
}

#[tokio::test(start_paused = true)]
async fn a_remove_while_a_refusal_waits_for_the_new_holder_is_no_verdict() {
    refused_while_the_new_holder_saves(Meanwhile::Remove).await;
}

#[tokio::test(start_paused = true)]
async fn a_shutdown_while_a_refusal_waits_for_the_new_holder_ends_it_and_declares_nothing() {
    refused_while_the_new_holder_saves(Meanwhile::Shutdown).await;
}

async fn refused_while_the_new_holder_saves(meanwhile: Meanwhile) {
    // As above, but the process that took the lease over saves its pair more than a lease
    // length after the refusal (a slow store, under its timeout; it keeps the lease).
    let (h, gate, shared, store_a) = a_store_to_cut_off();
    let store_b = Arc::new(Hooked::over(shared.clone(), HeldCalls::default()));
    let config = ManagerConfig::default().with_call_timeout(Duration::from_secs(600));
    let a = process_with(&h, store_a.clone(), config.clone());
    let b = process_with(
        &h,
        store_b.clone(),
        config.with_store_timeout(Duration::from_secs(120)),
    );
    let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());
    b.insert("s", expired_pair(&h)).await.unwrap();
    let first = asks(&a);
    h.until_calls(1).await;
    store_a.cut.store(true, Ordering::SeqCst);
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    let second = asks(&b);
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    assert_eq!(h.calls(), 2, "B sent rt-0 after a lease length");
    // The provider handled B's request first: it refuses A's rt-0, then answers B
    // (rt-0 -> rt-1), whose save takes two lease lengths.
    store_a.cut.store(false, Ordering::SeqCst);
    let save = store_b.hold(Call::Save);
    h.fake.then(Step::Fail(invalid_grant()));
    gate.add_permits(1);
    store_b.until_reached(1).await;
    tokio::time::sleep(lease * 2).await;
    assert!(
        !first.is_finished(),
        "A reaches no verdict while B holds the lease"
    );
    match meanwhile {
        Meanwhile::Nothing => {}
        Meanwhile::Insert => a.insert("s", login(&h)).await.unwrap(),
        Meanwhile::Remove => a.remove("s").await.unwrap(),
        Meanwhile::Shutdown => a.shutdown(Duration::from_secs(1)).await.unwrap(),
    }
    save.add_permits(1);
    let (first, second) = (first.await.unwrap(), second.await.unwrap());
    no_reauth(&mut events_a);
    no_reauth(&mut events_b);
    let key = SessionKey::new("fake", "s");
    match meanwhile {
        Meanwhile::Nothing => {
            assert_eq!(second.unwrap().expose_secret(), "at-1");
            assert_eq!(first.unwrap().expose_secret(), "at-1");
            assert_eq!(h_stored(&shared).await, "rt-1");
        }
        // A's callers are told it shuts down; B saves the live pair.
        Meanwhile::Shutdown => {
            assert!(matches!(first, Err(Error::ShuttingDown)), "{first:?}");
            assert_eq!(second.unwrap().expose_secret(), "at-1");
            assert_eq!(h_stored(&shared).await, "rt-1");
        }
        // The login has the last word, in both processes.
        Meanwhile::Insert => {
            assert_eq!(first.unwrap().expose_secret(), "at-login");
            assert_eq!(second.unwrap().expose_secret(), "at-login");
            assert_eq!(h_stored(&shared).await, "rt-login");
        }
        Meanwhile::Remove => {
            assert!(first.is_err());
            assert!(!matches!(first, Err(Error::ReauthRequired(_))), "{first:?}");
            assert!(
                !matches!(second, Err(Error::ReauthRequired(_))),
                "{second:?}"
            );
            assert!(shared.load(&key).await.unwrap().is_none());
        }
    }
    // The lease is given back by both.
    let lease = shared.acquire_lease(&key, "next", lease).await.unwrap();
    assert_eq!(lease, Lease::Acquired);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_after_the_lease_lapsed_with_nobody_else_about_is_a_verdict_at_once() {
    // One process: its store is unreachable for longer than a lease during its provider
    // call, and the provider has revoked the refresh token meanwhile.
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| {
        fake.gate = Some(gate.clone());
        fake.reuse_window = Duration::ZERO;
    });
    let store_a = Arc::new(Hooked::new(CutOff::default()));
    let config = ManagerConfig::default().with_call_timeout(Duration::from_secs(600));
    let a = process_with(&h, store_a.clone(), config);
    let mut events = a.subscribe();
    a.insert("s", expired_pair(&h)).await.unwrap();
    let first = asks(&a);
    h.until_calls(1).await;
    store_a.cut.store(true, Ordering::SeqCst);
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    store_a.cut.store(false, Ordering::SeqCst);
    *h.fake.live.lock().unwrap() = "rt-revoked".into();
    let refused = tokio::time::Instant::now();
    gate.add_permits(1);
    let error = first.await.unwrap().unwrap_err();
    assert!(matches!(error, Error::ReauthRequired(_)), "{error:?}");
    // Nobody took the lease over: nobody else can have spent the token.
    assert!(refused.elapsed() < lease / 6, "{:?}", refused.elapsed());
    assert!(matches!(events.try_recv(), Ok(Event::ReauthRequired(_))));
    assert!(events.try_recv().is_err(), "the verdict is reported once");
    assert_eq!(h.calls(), 1);
    // The lease taken again for the verdict is given back.
    let key = SessionKey::new("fake", "s");
    let lease = store_a.acquire_lease(&key, "next", lease).await.unwrap();
    assert_eq!(lease, Lease::Acquired);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_after_the_lease_was_lost_to_a_process_that_died_is_a_verdict_once_it_lapses() {
    let (h, gate, shared, store_a) = a_store_to_cut_off();
    let config = ManagerConfig::default().with_call_timeout(Duration::from_secs(600));
    let a = process_with(&h, store_a.clone(), config);
    let mut events = a.subscribe();
    a.insert("s", expired_pair(&h)).await.unwrap();
    let first = asks(&a);
    h.until_calls(1).await;
    store_a.cut.store(true, Ordering::SeqCst);
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    // Another process took the lapsed lease over, spent rt-0 and died before saving.
    let key = SessionKey::new("fake", "s");
    let taken = shared.acquire_lease(&key, "gone", lease).await.unwrap();
    assert_eq!(taken, Lease::TakenOver);
    *h.fake.live.lock().unwrap() = "rt-1".into();
    store_a.cut.store(false, Ordering::SeqCst);
    let refused = tokio::time::Instant::now();
    gate.add_permits(1);
    // A waits for the dead process's lease to lapse, then a lease length for its save.
    let error = first.await.unwrap().unwrap_err();
    assert!(matches!(error, Error::ReauthRequired(_)), "{error:?}");
    let waited = refused.elapsed();
    assert!(
        waited >= lease * 2 && waited <= lease * 2 + Duration::from_secs(5),
        "{waited:?}"
    );
    assert!(matches!(events.try_recv(), Ok(Event::ReauthRequired(_))));
    assert!(events.try_recv().is_err(), "the verdict is reported once");
    // The lease is given back.
    let after = shared.acquire_lease(&key, "next", lease).await.unwrap();
    assert_eq!(after, Lease::Acquired);
    assert_eq!(h.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lease_granted_after_a_long_wait_for_another_lease_user_here_is_held_from_its_grant() {
    let h = harness(|_| {});
    h.seed("s", Duration::ZERO).await;
    // Another user of the session's lease in this process (a background save giving it
    // back, say) is talking to a slow store: a refresh's request for the lease waits its
    // turn, for longer than a lease length.
    let users = h
        .manager
        .inner
        .lease_users
        .lock()
        .unwrap()
        .entry(Arc::from("s"))
        .or_default()
        .clone();
    let turn = users.order.lock().await;
    let caller = asks(&h.manager);
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease + Duration::from_secs(5)).await;
    assert_eq!(h.calls(), 0);
    drop(turn);
    // The lease is granted at once then: it is held from then, not from the wait's start.
    assert_eq!(caller.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(h.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_whose_lease_is_lost_again_while_taken_back_takes_what_the_new_holder_saved() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| {
        fake.gate = Some(gate.clone());
        fake.reuse_window = Duration::ZERO;
    });
    let held = Lease::HeldByOther {
        remaining: Duration::from_secs(5),
    };
    // A's lease: granted; found lost by the heartbeat during the provider call; taken over
    // after the refusal; lost again at the first renewal of the wait that follows, as the
    // process that took it saves its pair; granted from then on.
    let store = Arc::new(ScriptedLeases::new(
        [
            Lease::Acquired,
            held.clone(),
            Lease::TakenOver,
            held,
            Lease::Acquired,
        ],
        Some((3, other_replicas_set("at-theirs"))),
    ));
    let a = manager_over(&h, store.clone());
    let mut events = a.subscribe();
    a.insert("s", expired_pair(&h)).await.unwrap();
    let first = asks(&a);
    h.until_calls(1).await;
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease / 3 + Duration::from_secs(1)).await;
    assert_eq!(
        store.requests.load(Ordering::SeqCst),
        2,
        "the heartbeat found the lease lost"
    );
    h.fake.then(Step::Fail(invalid_grant()));
    gate.add_permits(1);
    assert_eq!(
        first.await.unwrap().unwrap().expose_secret(),
        "at-theirs",
        "the callers get the pair of the process that took the lease, not RefreshAborted"
    );
    assert_eq!(
        presented(&h),
        ["rt-0"],
        "the refused token is not sent again"
    );
    no_reauth(&mut events);
}

#[tokio::test(start_paused = true)]
async fn a_refresh_starts_again_twice_at_most_whichever_step_lost_its_lease() {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let held = Lease::HeldByOther {
        remaining: Duration::from_secs(5),
    };
    // Taken over, then lost while waiting for the lapsed holder's save; granted, then lost
    // before the retry of a 503; taken over and lost again as at first.
    let store = Arc::new(ScriptedLeases::new(
        [
            Lease::TakenOver,
            held.clone(),
            Lease::Acquired,
            held.clone(),
            Lease::TakenOver,
            held,
        ],
        None,
    ));
    let a = process(&h, store.clone());
    a.insert("s", expired_pair(&h)).await.unwrap();
    h.fake.then(Step::Fail(unavailable(None)));
    let error = a.access_token("s").await.unwrap_err();
    assert!(
        matches!(error, Error::RefreshAborted(AbortReason::LeaseLost)),
        "{error:?}"
    );
    assert_eq!(
        store.requests.load(Ordering::SeqCst),
        6,
        "three turns: the first and two starts again"
    );
    assert_eq!(presented(&h), ["rt-0"], "no token sent without the lease");
    // The lease is given back.
    let key = SessionKey::new("fake", "s");
    let lease = ManagerConfig::default().lease_ttl;
    assert_eq!(
        store
            .inner
            .acquire_lease(&key, "next", lease)
            .await
            .unwrap(),
        Lease::Acquired
    );
    store.inner.release_lease(&key, "next").await.unwrap();
    // Not answered again from memory: the next call asks for the lease (and waits for the
    // holder the store names).
    let error = a.access_token("s").await.unwrap_err();
    assert!(matches!(error, Error::Store(_)), "{error:?}");
    assert!(store.requests.load(Ordering::SeqCst) > 6);
}

/// A's lease answers: granted; then, at A's next renewal, taken over from another holder
/// whose lease lapsed (that process took A's lapsed lease, spent rt-0 and lost the store
/// before saving); granted from then on. That process's save lands with the request after.
fn renewed_over_a_lapsed_holder() -> Arc<Hooked<ScriptedLeases>> {
    Arc::new(ScriptedLeases::new(
        [Lease::Acquired, Lease::TakenOver, Lease::Acquired],
        Some((3, other_replicas_set("at-theirs"))),
    ))
}

#[tokio::test(start_paused = true)]
async fn a_refusal_after_a_renewal_took_the_lease_over_waits_for_the_lapsed_holders_save() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| {
        fake.gate = Some(gate.clone());
        fake.reuse_window = Duration::ZERO;
    });
    let store = renewed_over_a_lapsed_holder();
    let a = manager_over(&h, store.clone());
    let mut events = a.subscribe();
    a.insert("s", expired_pair(&h)).await.unwrap();
    let first = asks(&a);
    h.until_calls(1).await;
    // The heartbeat during the call is answered TakenOver; the provider refuses rt-0, which
    // the other process spent.
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease / 3 + Duration::from_secs(1)).await;
    assert_eq!(store.requests.load(Ordering::SeqCst), 2);
    h.fake.then(Step::Fail(invalid_grant()));
    gate.add_permits(1);
    assert_eq!(
        first.await.unwrap().unwrap().expose_secret(),
        "at-theirs",
        "no verdict before the lapsed holder's save had a lease length to land"
    );
    no_reauth(&mut events);
    given_back(&store).await;
}

/// The lease `store` keeps for session `s` is free.
async fn given_back(store: &Hooked<ScriptedLeases>) {
    let key = SessionKey::new("fake", "s");
    let lease = ManagerConfig::default().lease_ttl;
    let granted = store
        .inner
        .acquire_lease(&key, "next", lease)
        .await
        .unwrap();
    assert_eq!(granted, Lease::Acquired, "the lease is given back");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_starting_again_after_a_renewal_took_the_lease_over_waits_for_the_lapsed_holders_save()
 {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let store = renewed_over_a_lapsed_holder();
    let a = process(&h, store.clone());
    let mut events = a.subscribe();
    a.insert("s", expired_pair(&h)).await.unwrap();
    // A 503; the renewal before the retry is answered TakenOver. The provider would refuse
    // rt-0 now (the other process spent it).
    h.fake
        .then(Step::Fail(unavailable(None)))
        .then(Step::Fail(invalid_grant()));
    assert_eq!(
        a.access_token("s").await.unwrap().expose_secret(),
        "at-theirs"
    );
    assert_eq!(
        presented(&h),
        ["rt-0"],
        "rt-0 is not sent again before the lapsed holder's save had a lease length to land"
    );
    no_reauth(&mut events);
    given_back(&store).await;
}

#[tokio::test(start_paused = true)]
async fn a_store_granting_every_lease_request_as_a_take_over_delays_a_refresh_by_two_lease_lengths_at_most()
 {
    // A lease file no release can read, say: every grant, renewals included, is a take-over.
    let h = harness(|_| {});
    let store = Arc::new(ScriptedLeases::new([Lease::TakenOver], None));
    let a = manager_over(&h, store.clone());
    a.insert("s", expired_pair(&h)).await.unwrap();
    let lease = ManagerConfig::default().lease_ttl;
    let started = tokio::time::Instant::now();
    let answer = tokio::time::timeout(lease * 10, a.access_token("s"))
        .await
        .expect("the wait for a lapsed holder's save ends");
    assert_eq!(answer.unwrap().expose_secret(), "at-1");
    assert!(started.elapsed() <= lease * 2 + Duration::from_secs(1));
    assert_eq!(h.calls(), 1);
}

/// A refreshes the old grant's rt-0 and loses the store; B, a lease length later, takes the
/// lease over, and the application logs the session in again through B (an insert,
/// rt-login), whose refresh token the provider refuses: B records the verdict on the login.
/// A's save of the pair it got for rt-0 (a refresh that began before the login) must not
/// then overwrite that verdict, whether A got the pair before the verdict (saved again in
/// the background once its store is back) or after it (a slow provider): the login had the
/// last word, as it has when A's save comes before the verdict (A then finds the login's
/// tokens and takes them).
async fn a_refresh_begun_before_a_refused_login_saves(answered_first: bool) {
    let (h, gate, shared, store_a) = a_store_to_cut_off();
    // B's provider: the same one's server (it refuses rt-login too), not slowed by A's gate.
    let elsewhere = harness(|_| {});
    let slow = ManagerConfig::default().with_call_timeout(Duration::from_secs(600));
    let a = process_with(&h, store_a.clone(), slow);
    let b = process(&elsewhere, shared.clone());
    let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());
    b.insert("s", expired_pair(&h)).await.unwrap();
    // A sends rt-0 and loses the store.
    let mut first = Some(asks(&a));
    h.until_calls(1).await;
    store_a.cut.store(true, Ordering::SeqCst);
    if answered_first {
        // The pair it gets (rt-1) is kept in memory, saved again in the background.
        gate.add_permits(1);
        let answer = first.take().unwrap().await.unwrap();
        assert_eq!(
            answer.unwrap().expose_secret(),
            "at-1",
            "served while unsaved"
        );
    }
    // A login through B, its access token expired; the provider does not know rt-login.
    let expired_login = login(&h).with_access_expires_at(h.clock.now());
    b.insert("s", expired_login).await.unwrap();
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    let error = b.access_token("s").await.unwrap_err();
    assert!(matches!(error, Error::ReauthRequired(_)), "{error:?}");
    assert_eq!(presented(&elsewhere), ["rt-login"]);
    assert!(
        (std::iter::from_fn(|| events_b.try_recv().ok()))
            .any(|event| matches!(event, Event::ReauthRequired(_)))
    );
    // A reaches the store again (its background save runs within a heartbeat), or is
    // answered now.
    store_a.cut.store(false, Ordering::SeqCst);
    if let Some(first) = first {
        gate.add_permits(1);
        let answer = first.await.unwrap();
        assert!(
            matches!(answer, Err(Error::ReauthRequired(_))),
            "A's callers get the login's verdict: {answer:?}"
        );
    }
    tokio::time::sleep(lease).await;
    let record = shared
        .load(&SessionKey::new("fake", "s"))
        .await
        .unwrap()
        .unwrap();
    assert!(
        record.value.reauth().is_some(),
        "the login's verdict stays: {:?}",
        record.value
    );
    // And A, told by the store, gives the old grant's pair up too, reporting nothing.
    let answer = a.access_token("s").await;
    assert!(
        matches!(answer, Err(Error::ReauthRequired(_))),
        "{answer:?}"
    );
    no_reauth(&mut events_a);
    a.shutdown(Duration::from_secs(60)).await.unwrap();
    b.shutdown(Duration::from_secs(60)).await.unwrap();
}

#[tokio::test(start_paused = true)]
async fn a_refresh_begun_before_a_login_leaves_the_logins_verdict_when_saved_again_late() {
    a_refresh_begun_before_a_refused_login_saves(true).await;
}

#[tokio::test(start_paused = true)]
async fn a_refresh_begun_before_a_login_leaves_the_logins_verdict_when_answered_late() {
    a_refresh_begun_before_a_refused_login_saves(false).await;
}

/// A got rt-1 for rt-0 and lost the store before it could save it (kept in memory, with the
/// lease, saved again in the background); B, a lease length later, took the lease over,
/// sent rt-0 again, was refused, and (A's save not showing up for another lease length)
/// recorded a verdict on rt-0. A's store is back, and a refresh starts in A (a forced one,
/// as after a 401) before its background save comes round: its re-read of the store finds
/// the verdict on the very token A spent. A must not take that verdict over the live pair it
/// holds (dropping the pair, whose background save then stops): it saves the pair over the
/// verdict, as its background save would have.
#[tokio::test(start_paused = true)]
async fn a_verdict_on_the_token_a_process_spent_does_not_replace_its_unsaved_pair() {
    let (h, gate, shared, store_a) = a_store_to_cut_off();
    let (a, b) = (process(&h, store_a.clone()), process(&h, shared.clone()));
    let mut events_a = a.subscribe();
    b.insert("s", expired_pair(&h)).await.unwrap();
    let first = asks(&a);
    h.until_calls(1).await;
    store_a.cut.store(true, Ordering::SeqCst);
    gate.add_permits(10);
    let answer = first.await.unwrap();
    assert_eq!(
        answer.unwrap().expose_secret(),
        "at-1",
        "served while unsaved"
    );
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    let error = b.access_token("s").await.unwrap_err();
    assert!(matches!(error, Error::ReauthRequired(_)), "{error:?}");
    assert_eq!(presented(&h), ["rt-0", "rt-0"]);
    // A's store is back; a refresh starts at once.
    store_a.cut.store(false, Ordering::SeqCst);
    let refreshed = a.refresh_now("s").await;
    assert_eq!(
        refreshed.as_ref().ok().map(|token| token.expose_secret()),
        Some("at-2"),
        "A saves rt-1 over the verdict, then refreshes it: {refreshed:?}"
    );
    no_reauth(&mut events_a);
    tokio::time::sleep(lease).await;
    assert_eq!(h_stored(&shared).await, "rt-2");
    assert_eq!(*h.fake.live.lock().unwrap(), "rt-2");
    // B, looking at the store again after its cooldown, serves it too.
    tokio::time::sleep(ManagerConfig::default().failure_cooldown).await;
    assert_eq!(b.access_token("s").await.unwrap().expose_secret(), "at-2");
    a.shutdown(Duration::from_secs(60)).await.unwrap();
    b.shutdown(Duration::from_secs(60)).await.unwrap();
}

/// Two saves of another session, so that the store's next versions come above those the
/// tests' process holds.
async fn step_versions_past(store: &MemoryStore) {
    let other = SessionKey::new("fake", "other");
    let at = store
        .save(&other, &other_replicas_set("at-x"), None)
        .await
        .unwrap();
    store
        .save(&other, &other_replicas_set("at-y"), Some(at))
        .await
        .unwrap();
}

/// Another process's re-auth verdict on the record of `key` at `v0`, numbered above `v0 + 1`
/// (the version the tests' process saved its pair at, a save the store lost).
async fn verdict_on(store: &MemoryStore, key: &SessionKey, v0: Version, h: &Harness) {
    let verdict =
        crate::store::ReauthVerdict::new(None, "refused", h.clock.now()).replacing(Some(v0));
    let judged = store.save(key, &verdict.into(), Some(v0)).await.unwrap();
    assert!(judged > v0 + 1, "numbered above the process's v{}", v0 + 1);
}

/// Acknowledges the next save, while `forget` is set, without letting it reach the store: a
/// database that failed over to a replica the commit had not reached, a backup restored. The
/// version it answers is `step` above the expected one.
struct Forgets {
    forget: std::sync::atomic::AtomicBool,
    step: Version,
}

impl Forgets {
    fn stepping(step: Version) -> Self {
        Self {
            forget: std::sync::atomic::AtomicBool::new(false),
            step,
        }
    }
}

#[async_trait]
impl Hooks for Forgets {
    async fn instead_of_save(
        &self,
        expected: Option<Version>,
    ) -> Option<Result<Version, StoreError>> {
        let forget = self.forget.swap(false, Ordering::SeqCst);
        forget.then(|| Ok(expected.map_or(1, |at| at + self.step)))
    }
}

/// The store lost the save of rt-1 it acknowledged, and went back to rt-0 (spent, past the
/// provider's reuse window by the next refresh): its versions, which only ever grow for a
/// key, show that record older than the one this process holds. The process keeps its pair,
/// writes it back over the older record, and refreshes it, rather than take rt-0 back,
/// spend it, and declare the session dead.
#[tokio::test(start_paused = true)]
async fn a_store_gone_back_to_an_older_record_does_not_take_the_pair_it_lost() {
    let h = harness(|_| {});
    let (store, manager, mut events) = gone_back_to_rt_0(&h, 1000).await;
    tokio::time::sleep(HOUR).await;
    let token = manager.access_token("s").await;
    assert_eq!(
        token.as_ref().ok().map(|token| token.expose_secret()),
        Some("at-2"),
        "{token:?}"
    );
    assert_eq!(presented(&h), ["rt-0", "rt-1"]);
    no_reauth(&mut events);
    assert_eq!(h_stored(&store.inner).await, "rt-2");
    manager.shutdown(Duration::from_secs(60)).await.unwrap();
}

/// A process that refreshed rt-0 (at-1, rt-1) over a store that lost that save (it numbers
/// its acknowledgement `step` past rt-0's record) and went back to rt-0's record.
async fn gone_back_to_rt_0(
    h: &Harness,
    step: Version,
) -> (
    Arc<Hooked<Forgets>>,
    TokenManager<Arc<Fake>>,
    broadcast::Receiver<Event>,
) {
    let store = Arc::new(Hooked::new(Forgets::stepping(step)));
    let manager = process(h, store.clone());
    let events = manager.subscribe();
    manager.insert("s", expired_pair(h)).await.unwrap();
    store.forget.store(true, Ordering::SeqCst);
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    let key = SessionKey::new("fake", "s");
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(refresh_of(&stored), "rt-0", "the store lost rt-1");
    (store, manager, events)
}

/// The store lost this process's save of rt-1 and went back to rt-0's record; the provider
/// then revokes the grant and refuses rt-1. The verdict is recorded over the older record
/// (as a new set would be saved over it) and reported once: not left unrecorded, with
/// every later call presenting the refused token to the provider again.
#[tokio::test(start_paused = true)]
async fn a_refusal_after_the_store_went_back_is_a_verdict_recorded_once() {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let (store, manager, mut events) = gone_back_to_rt_0(&h, 1).await;
    // The grant is revoked: rt-1 is refused.
    h.fake.live.lock().unwrap().clear();
    tokio::time::sleep(2 * HOUR).await;
    for _ in 0..3 {
        let refused = manager.access_token("s").await;
        assert!(
            matches!(&refused, Err(Error::ReauthRequired(_))),
            "{refused:?}"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(presented(&h), ["rt-0", "rt-1"]);
    let mut verdicts = 0;
    while let Ok(event) = events.try_recv() {
        verdicts += usize::from(matches!(event, Event::ReauthRequired(_)));
    }
    assert_eq!(verdicts, 1, "the verdict is reported once");
    let stored = store.inner.load(&SessionKey::new("fake", "s")).await;
    let verdict = stored.unwrap().map(|found| found.value);
    assert!(
        matches!(verdict, Some(StoredRecord::Reauth(_))),
        "the verdict is recorded"
    );
}

/// Numbers the store's records `by` higher, until lowered: a database restored with its
/// version sequence rewound, which numbers newer records lower than older ones.
#[derive(Default)]
struct Renumbered {
    by: std::sync::atomic::AtomicU64,
}

impl Hooks for Renumbered {
    fn shift(&self) -> Version {
        self.by.load(Ordering::SeqCst)
    }
}

/// B read rt-1 from the store at a high version; the store then numbers its records lower
/// (restored, its version sequence rewound), and A inserts a login at a version lower than
/// the one B holds. B, which only read its version, takes the login: a lower version is a
/// store gone back only to a process that wrote the higher one itself.
#[tokio::test(start_paused = true)]
async fn a_process_that_only_read_its_version_takes_a_newer_record_numbered_lower() {
    a_login_numbered_lower_is_taken(true).await;
}

/// The mirror of the test above: the login comes through B, the process that only read its
/// version, and it is A, which wrote the higher version itself (its refresh's save), that
/// finds the login numbered lower. A cannot tell a newer record numbered lower (the store's
/// sequence rewound, as the test above has it) from the store gone back: it keeps the old
/// grant's pair, ignores the login, refreshes rt-1 (refused here: the provider's live grant
/// is the login's; a provider that kept both grants would rotate rt-1 and A's save would
/// write over the login, `expected` the login's version), and so never serves the login.
#[tokio::test(start_paused = true)]
#[ignore = "not fixed: a login numbered lower than the version this process wrote is taken for the store gone back; versions alone cannot tell the two apart"]
async fn a_process_that_wrote_a_higher_version_takes_a_login_another_inserted_numbered_lower() {
    a_login_numbered_lower_is_taken(false).await;
}

/// A writes rt-1 at a high version (its refresh's save) and B reads it; the store then
/// numbers its records lower, and a login is inserted (through A, the writer, if
/// `through_the_writer`, else through B); the other process takes it and refreshes it.
async fn a_login_numbered_lower_is_taken(through_the_writer: bool) {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::new(Renumbered::default()));
    store.by.store(1000, Ordering::SeqCst);
    let (a, b) = (process(&h, store.clone()), process(&h, store.clone()));
    a.insert("s", expired_pair(&h)).await.unwrap();
    assert_eq!(a.access_token("s").await.unwrap().expose_secret(), "at-1");
    assert_eq!(b.access_token("s").await.unwrap().expose_secret(), "at-1");
    store.by.store(0, Ordering::SeqCst);
    let (inserter, reader, which) = match through_the_writer {
        true => (&a, &b, "B"),
        false => (&b, &a, "A"),
    };
    let mut events = reader.subscribe();
    // A login the provider issued.
    inserter.insert("s", login(&h)).await.unwrap();
    *h.fake.live.lock().unwrap() = "rt-login".into();
    tokio::time::sleep(HOUR).await;
    let token = reader.access_token("s").await;
    assert_eq!(
        token.as_ref().ok().map(|token| token.expose_secret()),
        Some("at-2"),
        "{which} refreshes the login: {token:?}"
    );
    assert_eq!(presented(&h), ["rt-0", "rt-login"]);
    no_reauth(&mut events);
    let key = SessionKey::new("fake", "s");
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(refresh_of(&stored), "rt-2");
}

/// The store lost the save of rt-1 it acknowledged (at v2) and went back to rt-0 (v1); A
/// keeps rt-1 (the "store went back" rule) and refreshes it. Meanwhile another process, which
/// read rt-0 from the store gone back, spent it, was refused, and recorded its verdict on
/// that record (`replaced` v1) at a version above A's v2 (a FileStore numbers by the clock;
/// here two saves of another key come first). A's save of rt-2 finds that verdict, reached
/// on a record older than A's base: it saves over it (only a verdict on a later record, a
/// login inserted meanwhile, has the last word), rather than drop the pair the provider has
/// just rotated to (rt-1 spent) and declare the session dead.
#[tokio::test(start_paused = true)]
async fn a_verdict_on_a_record_older_than_a_refreshs_base_does_not_drop_its_pair() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    let store = Arc::new(Hooked::new(Forgets::stepping(1)));
    let a = process(&h, store.clone());
    let mut events = a.subscribe();
    a.insert("s", expired_pair(&h)).await.unwrap();
    let key = SessionKey::new("fake", "s");
    let v0 = store.load(&key).await.unwrap().unwrap().version;
    store.forget.store(true, Ordering::SeqCst);
    gate.add_permits(1);
    assert_eq!(a.access_token("s").await.unwrap().expose_secret(), "at-1");
    gate.try_acquire().unwrap().forget();
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, refresh_of(&stored)),
        (v0, "rt-0"),
        "the store lost rt-1"
    );
    // The store's next versions come above the one A holds.
    step_versions_past(&store.inner).await;
    tokio::time::sleep(HOUR).await;
    let asking = asks(&a);
    h.until_calls(2).await;
    assert_eq!(presented(&h), ["rt-0", "rt-1"], "A keeps rt-1 and sends it");
    // Meanwhile: the other process's verdict on rt-0's record.
    verdict_on(&store.inner, &key, v0, &h).await;
    gate.add_permits(1);
    let answer = asking.await.unwrap();
    assert_eq!(
        answer.as_ref().ok().map(|token| token.expose_secret()),
        Some("at-2"),
        "the provider has just rotated rt-1: the session lives ({answer:?})"
    );
    no_reauth(&mut events);
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(refresh_of(&stored), "rt-2", "rt-2 saved over the verdict");
}

/// As the test above, but the other process's verdict on rt-0's record (numbered above A's
/// v2) was recorded before A's next refresh began: A's re-read under the lease finds it.
/// It judges a record older than the one A saved its pair at (the store went back, losing
/// that save): A keeps rt-1, refreshes it, and saves rt-2 over the verdict, rather than
/// take the verdict on a token it had already spent and drop the live pair.
#[tokio::test(start_paused = true)]
async fn a_verdict_on_a_record_older_than_a_process_s_saved_pair_read_before_its_refresh_does_not_drop_it()
 {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::new(Forgets::stepping(1)));
    let a = process(&h, store.clone());
    let mut events = a.subscribe();
    a.insert("s", expired_pair(&h)).await.unwrap();
    let key = SessionKey::new("fake", "s");
    let v0 = store.load(&key).await.unwrap().unwrap().version;
    store.forget.store(true, Ordering::SeqCst);
    assert_eq!(a.access_token("s").await.unwrap().expose_secret(), "at-1");
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(
        (stored.version, refresh_of(&stored)),
        (v0, "rt-0"),
        "the store lost rt-1"
    );
    // The store's next versions come above the one A holds.
    step_versions_past(&store.inner).await;
    // Another process read rt-0 there, spent it, was refused, and recorded its verdict.
    verdict_on(&store.inner, &key, v0, &h).await;
    tokio::time::sleep(HOUR).await;
    let answer = a.access_token("s").await;
    assert_eq!(
        answer.as_ref().ok().map(|token| token.expose_secret()),
        Some("at-2"),
        "rt-1 is live at the provider: the session lives ({answer:?})"
    );
    assert_eq!(presented(&h), ["rt-0", "rt-1"]);
    no_reauth(&mut events);
    let stored = store.load(&key).await.unwrap().unwrap();
    assert_eq!(refresh_of(&stored), "rt-2", "rt-2 saved over the verdict");
    a.shutdown(Duration::from_secs(60)).await.unwrap();
}

/// Grants the lease as the store does, except the request after `take_over_next` is set:
/// a take-over from another holder whose lease lapsed.
#[derive(Default)]
struct TakeOverOnce {
    take_over_next: AtomicBool,
}

#[async_trait]
impl Hooks for TakeOverOnce {
    async fn lease(
        &self,
        _: &SessionKey,
        _: &dyn TokenStore,
        granted: Lease,
    ) -> Result<Lease, StoreError> {
        match self.take_over_next.swap(false, Ordering::SeqCst) {
            true => Ok(Lease::TakenOver),
            false => Ok(granted),
        }
    }
}

/// A's answer to rt-0 is lost after the provider rotated to rt-1, and A asks for it again
/// in the background. Its lease request then is a take-over: another process, paused as A
/// was for longer than the lease, took A's lapsed lease and let it lapse in turn. rt-0 is
/// the token A presented itself: the provider answers it again inside its reuse window
/// whoever spent it after A, so A presents it at once, not after a lease length's wait for
/// the other's save. (Two processes paused longer than the lease at every step took it over
/// from each other in turn, each waiting a lease length, until the window had closed: seed
/// 303499 of the model.)
#[tokio::test(start_paused = true)]
async fn a_lost_answers_token_is_presented_again_at_once_when_its_lease_is_taken_over() {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::new(TakeOverOnce::default()));
    let a = process(&h, store.clone());
    let mut events = a.subscribe();
    a.insert("s", expired_pair(&h)).await.unwrap();
    lose_the_answer_to_rt_0(&h, &a).await;
    let calls = h.calls();
    store.take_over_next.store(true, Ordering::SeqCst);
    let asked = tokio::time::Instant::now();
    // On the paused clock, in steps of 100 ms, for two lease lengths at most.
    let config = ManagerConfig::default();
    for _ in 0..(config.lease_ttl * 20).as_millis() / 100 {
        if h.calls() > calls {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(h.calls(), calls + 1, "rt-0 is asked for again");
    assert!(
        asked.elapsed() < config.failure_cooldown + config.lease_ttl / 2,
        "rt-0 presented again {:?} after the failure: a lease length's wait",
        asked.elapsed()
    );
    assert_eq!(presented(&h).last().map(String::as_str), Some("rt-0"));
    assert!(
        !store.take_over_next.load(Ordering::SeqCst),
        "the asking was a take-over"
    );
    assert_eq!(
        a.access_token("s").await.unwrap().expose_secret(),
        "at-1",
        "the lost pair is served"
    );
    no_reauth(&mut events);
}

/// The first lease answers a process gets, in place of the store's (which is asked all the
/// same): a take-over, then another process's lease (the take-over's watch is cut short),
/// then a take-over again; the instant of the last one.
struct CutShortOnce {
    answers: StdMutex<std::collections::VecDeque<Lease>>,
    last_at: StdMutex<Option<tokio::time::Instant>>,
}

impl Default for CutShortOnce {
    fn default() -> Self {
        let held = Lease::HeldByOther {
            remaining: ManagerConfig::default().lease_ttl,
        };
        Self {
            answers: StdMutex::new([Lease::TakenOver, held, Lease::TakenOver].into()),
            last_at: StdMutex::default(),
        }
    }
}

#[async_trait]
impl Hooks for CutShortOnce {
    async fn lease(
        &self,
        _: &SessionKey,
        _: &dyn TokenStore,
        granted: Lease,
    ) -> Result<Lease, StoreError> {
        let mut answers = self.answers.lock().unwrap();
        let Some(answer) = answers.pop_front() else {
            return Ok(granted);
        };
        if answers.is_empty() {
            *self.last_at.lock().unwrap() = Some(tokio::time::Instant::now());
        }
        Ok(answer)
    }
}

/// A process dies after the provider rotated on its refresh of `s`. The survivor takes its
/// lapsed lease over and watches for its save, and another process, paused longer than the
/// lease, takes the lease over from that watch; the survivor takes it over again in turn.
/// The token found was watched over once already: the survivor presents it at once, not
/// after another lease length's watch. (Three processes paused longer than the lease took
/// it over from each other in turn, each cutting the other's watch short, for a minute and
/// a half of the reuse window: seed 145946 of the model.)
#[tokio::test(start_paused = true)]
async fn a_take_over_after_a_watch_cut_short_presents_the_token_found_at_once() {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::over(h.store.clone(), CutShortOnce::default()));
    let survivor = process(&h, store.clone());
    let mut events = survivor.subscribe();
    survivor.insert("s", fresh_pair(&h)).await.unwrap();
    dies_after_the_rotation(&h, "s").await;
    // On the paused clock, in steps of 100 ms: a look every lease length, then the watches.
    let lease = ManagerConfig::default().lease_ttl;
    for _ in 0..(lease * 4).as_millis() / 100 {
        if !presented(&h).is_empty() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(presented(&h), ["rt-0"], "the survivor presented the token");
    let taken_again = store.last_at.lock().unwrap().expect("taken over twice");
    let presented_after = taken_again.elapsed();
    assert!(
        presented_after < lease / 2,
        "rt-0 presented {presented_after:?} after the second take-over: a second watch"
    );
    assert_eq!(refresh_of(&h.stored("s").await.unwrap()), "rt-1");
    no_reauth(&mut events);
}

/// A process dies after the provider rotated on its refresh of `s` (fresh, no refresh due
/// anywhere else), its lease on `s` left to lapse.
async fn dies_after_the_rotation(h: &Harness, s: &str) {
    let lease = ManagerConfig::default().lease_ttl;
    let key = SessionKey::new("fake", s);
    h.store.acquire_lease(&key, "dead", lease).await.unwrap();
    h.fake.rotate("rt-0").unwrap();
}

/// `at-0`/`rt-0`, fresh for an hour.
fn fresh_pair(h: &Harness) -> TokenSet {
    TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(h.clock.now() + HOUR)
}

/// Until the provider was presented a refresh token, a second at a time on the paused
/// clock, for four lease lengths at most (a look every lease length, then a lease length's
/// watch for the dead holder's save).
async fn until_presented(h: &Harness) {
    for _ in 0..ManagerConfig::default().lease_ttl.as_secs() * 4 {
        if !presented(h).is_empty() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Leases that no take-over ever gives back (their sessions removed while a holder that
/// then died held them) stay in the store for good, lapsed. More of them than one look
/// lists must not hide a death that can still be recovered: the survivor finds the lapsed
/// lease of `s` and gets the rotated pair back inside the reuse window. (On main the store
/// listed an arbitrary 64 of its lapsed leases, the same ones at each look: `s` was not
/// found.)
#[tokio::test(start_paused = true)]
async fn leases_left_lapsed_for_good_do_not_hide_a_recent_death() {
    let h = harness(|_| {});
    for n in 0..2000 {
        let key = SessionKey::new("fake", format!("removed-{n}"));
        let ttl = Duration::from_secs(1);
        h.store.acquire_lease(&key, "dead", ttl).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let survivor = process(&h, h.store.clone());
    let mut events = survivor.subscribe();
    survivor.insert("s", fresh_pair(&h)).await.unwrap();
    dies_after_the_rotation(&h, "s").await;
    until_presented(&h).await;
    assert_eq!(
        presented(&h),
        ["rt-0"],
        "the survivor found the lapsed lease"
    );
    assert_eq!(refresh_of(&h.stored("s").await.unwrap()), "rt-1");
    no_reauth(&mut events);
}

/// A look for lapsed leases that finds sessions it has nothing to refresh for (removed,
/// given a verdict, or without a refresh token) leaves no entry for them in the session
/// map: a manager that never used those names holds nothing for them, however many lapsed
/// leases the store lists. (On main each name listed stayed in the map, never loaded.)
#[tokio::test(start_paused = true)]
async fn a_look_for_lapsed_leases_keeps_no_session_it_does_not_refresh() {
    let h = harness(|_| {});
    let ttl = Duration::from_secs(1);
    for n in 0..10 {
        let key = SessionKey::new("fake", format!("removed-{n}"));
        h.store.acquire_lease(&key, "dead", ttl).await.unwrap();
    }
    let access_only =
        TokenSet::new(AccessToken::new("at-x")).with_access_expires_at(h.clock.now() + HOUR);
    h.manager.insert("access-only", access_only).await.unwrap();
    h.store
        .acquire_lease(&SessionKey::new("fake", "access-only"), "dead", ttl)
        .await
        .unwrap();
    let survivor = process(&h, h.store.clone());
    survivor.insert("s", fresh_pair(&h)).await.unwrap();
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease * 3).await;
    assert_eq!(survivor.inner.sessions.len(), 1, "only s is mapped");
    assert!(presented(&h).is_empty());
}

/// Holds the first `load` after a look for lapsed leases (the look's read of a session it
/// found) until `release`, saying when it is reached.
#[derive(Default)]
struct HoldTheLooksRead {
    armed: AtomicBool,
    reached: AtomicBool,
    release: tokio::sync::Notify,
}

#[async_trait]
impl Hooks for HoldTheLooksRead {
    async fn after(&self, call: Call) {
        match call {
            Call::Lapsed => self.armed.store(true, Ordering::SeqCst),
            Call::Load if self.armed.swap(false, Ordering::SeqCst) => {
                self.reached.store(true, Ordering::SeqCst);
                self.release.notified().await;
            }
            _ => {}
        }
    }
}

/// A look for lapsed leases finds a session whose holder died, and reads its record (a
/// session this process never used); the session is removed (by another process) before the refresh the look starts reads it in
/// turn. That refresh finds no tokens: it has nothing to present again, and a provider that
/// can issue must not issue for the removed session, which would bring it back to the
/// store.
#[tokio::test(start_paused = true)]
async fn a_session_removed_as_a_look_finds_its_lapsed_lease_is_not_issued_for() {
    let h = harness(|fake| fake.can_issue = true);
    let store = Arc::new(Hooked::new(HoldTheLooksRead::default()));
    let (survivor, other) = (process(&h, store.clone()), process(&h, store.clone()));
    // The survivor never used s (its looks start with its first insert).
    other.insert("s", fresh_pair(&h)).await.unwrap();
    survivor.insert("t", fresh_pair(&h)).await.unwrap();
    let key = SessionKey::new("fake", "s");
    store
        .inner
        .acquire_lease(&key, "dead", Duration::from_secs(1))
        .await
        .unwrap();
    let lease = ManagerConfig::default().lease_ttl;
    for _ in 0..(lease.as_secs() * 2) {
        if store.reached.load(Ordering::SeqCst) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(store.reached.load(Ordering::SeqCst), "the look read s");
    other.remove("s").await.unwrap();
    store.release.notify_one();
    tokio::time::sleep(lease * 3).await;
    assert_eq!(h.fake.issues.load(Ordering::SeqCst), 0, "nothing issued");
    assert!(
        store.inner.load(&key).await.unwrap().is_none(),
        "the removed session stays removed from the store"
    );
}

/// Three replicas find, each on its own look, the lapsed lease of a replica that died after
/// the provider rotated: one takes it over and presents the stored token, once; the others
/// wait for it and take what it saved.
#[tokio::test(start_paused = true)]
async fn replicas_that_all_find_one_lapsed_lease_present_its_token_once() {
    let h = harness(|_| {});
    let replicas: Vec<_> = (0..3).map(|_| process(&h, h.store.clone())).collect();
    let mut events: Vec<_> = replicas.iter().map(TokenManager::subscribe).collect();
    replicas[0].insert("s", fresh_pair(&h)).await.unwrap();
    for replica in &replicas[1..] {
        replica.access_token("s").await.unwrap();
    }
    dies_after_the_rotation(&h, "s").await;
    until_presented(&h).await;
    // Every replica's looks, and their waits for the one that took the lease over.
    tokio::time::sleep(ManagerConfig::default().lease_ttl * 8).await;
    assert_eq!(presented(&h), ["rt-0"]);
    assert_eq!(refresh_of(&h.stored("s").await.unwrap()), "rt-1");
    for events in &mut events {
        no_reauth(events);
    }
}

/// A store that fails every call while `down` is set (a database outage, seen by one
/// replica).
#[derive(Default)]
struct Outage {
    down: AtomicBool,
}

#[async_trait]
impl Hooks for Outage {
    async fn before(&self, _: Call) -> Result<(), StoreError> {
        match self.down.load(Ordering::SeqCst) {
            true => Err(disk_full()),
            false => Ok(()),
        }
    }
}

/// Replica A loses the store (an outage of `outage`) just after the provider rotated on its
/// `refresh_now` of a fresh session, for longer than the lease: the survivor B finds the
/// lease lapsed, takes it over and watches a lease length for A's save. What the provider
/// was presented, once A's store is back and everything settled; the store holds the pair
/// it rotated to, nobody was told to re-authorize, and B serves that pair.
async fn a_slow_holder_loses_its_lease(outage: Duration) -> Vec<String> {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    let store_a = Arc::new(Hooked::over(h.store.clone(), Outage::default()));
    let (a, b) = (process(&h, store_a.clone()), process(&h, h.store.clone()));
    let mut events = [a.subscribe(), b.subscribe()];
    b.insert("s", fresh_pair(&h)).await.unwrap();
    a.access_token("s").await.unwrap();
    let refresh = {
        let a = a.clone();
        tokio::spawn(async move { a.refresh_now("s").await })
    };
    h.until_calls(1).await;
    store_a.down.store(true, Ordering::SeqCst);
    gate.add_permits(10);
    tokio::time::sleep(outage).await;
    store_a.down.store(false, Ordering::SeqCst);
    tokio::time::sleep(ManagerConfig::default().lease_ttl * 6).await;
    let _ = refresh.await.unwrap();
    assert_eq!(refresh_of(&h.stored("s").await.unwrap()), "rt-1");
    assert_eq!(b.access_token("s").await.unwrap().expose_secret(), "at-1");
    for events in &mut events {
        no_reauth(events);
    }
    presented(&h)
}

/// The outage ends while B watches: B takes A's save, and presents nothing.
#[tokio::test(start_paused = true)]
async fn a_slow_holder_whose_lease_lapsed_saves_and_the_survivors_look_takes_that() {
    let lease = ManagerConfig::default().lease_ttl;
    let presented = a_slow_holder_loses_its_lease(lease + lease / 2).await;
    assert_eq!(presented, ["rt-0"]);
}

/// The outage outlasts B's watch: B presents rt-0 again inside the provider's reuse window
/// and gets the same pair; A's late save finds it stored. Nothing is lost, and nothing but
/// rt-0 (inside its window) is presented twice.
#[tokio::test(start_paused = true)]
async fn a_slow_holder_whose_save_comes_after_the_survivors_watch_loses_nothing() {
    let lease = ManagerConfig::default().lease_ttl;
    let presented = a_slow_holder_loses_its_lease(lease * 4).await;
    assert_eq!(presented, ["rt-0", "rt-0"]);
}

/// The survivor's look takes over a dead replica's lapsed lease and watches for its save; a
/// login inserted meanwhile (here) wins: it is served and stays stored, and neither its
/// refresh token nor the one it replaced is presented.
#[tokio::test(start_paused = true)]
async fn a_login_inserted_while_a_look_watches_a_lapsed_lease_wins() {
    let h = harness(|_| {});
    let lease = ManagerConfig::default().lease_ttl;
    let survivor = process(&h, h.store.clone());
    dies_after_the_rotation(&h, "s").await;
    survivor.insert("s", fresh_pair(&h)).await.unwrap();
    // The look comes a lease length after the insert, and takes the lease over then.
    tokio::time::sleep(lease + lease / 2).await;
    assert!(presented(&h).is_empty(), "still watching");
    let login = TokenSet::new(AccessToken::new("at-login"))
        .with_refresh_token(RefreshToken::new("rt-login"))
        .with_access_expires_at(h.clock.now() + HOUR);
    survivor.insert("s", login).await.unwrap();
    tokio::time::sleep(lease * 4).await;
    assert!(presented(&h).is_empty(), "{:?}", presented(&h));
    assert_eq!(refresh_of(&h.stored("s").await.unwrap()), "rt-login");
    let served = survivor.access_token("s").await.unwrap();
    assert_eq!(served.expose_secret(), "at-login");
}

/// Hangs every load once the store was asked for its lapsed leases, and counts them.
#[derive(Default)]
struct HangsLoadsAfterTheLook {
    looked: AtomicBool,
    loads: AtomicU32,
}

#[async_trait]
impl Hooks for HangsLoadsAfterTheLook {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        match call {
            Call::Lapsed => self.looked.store(true, Ordering::SeqCst),
            Call::Load if self.looked.load(Ordering::SeqCst) => {
                self.loads.fetch_add(1, Ordering::SeqCst);
                std::future::pending::<()>().await;
            }
            _ => {}
        }
        Ok(())
    }
}

/// `shutdown` while a look for lapsed leases reads the sessions it found, each read
/// hanging until the store timeout: the look reads no more once `shutdown` began (it ended
/// 3 reads later, store timeouts apart, holding the manager all that while).
#[tokio::test(start_paused = true)]
async fn a_look_for_lapsed_leases_reads_no_more_once_shutdown_began() {
    let h = harness(|_| {});
    let other = process_with(
        &h,
        h.store.clone(),
        ManagerConfig::default().with_lapsed_lease_scan(false),
    );
    for name in ["a", "b", "c"] {
        other.insert(name, fresh_pair(&h)).await.unwrap();
        let key = SessionKey::new("fake", name);
        let ttl = Duration::from_secs(1);
        h.store.acquire_lease(&key, "dead", ttl).await.unwrap();
    }
    let store = Arc::new(Hooked::over(
        h.store.clone(),
        HangsLoadsAfterTheLook::default(),
    ));
    let survivor = process(&h, store.clone());
    survivor.insert("s", fresh_pair(&h)).await.unwrap();
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease + Duration::from_secs(1)).await;
    assert_eq!(store.loads.load(Ordering::SeqCst), 1, "the look reads a");
    survivor.shutdown(Duration::from_secs(5)).await.unwrap();
    tokio::time::sleep(ManagerConfig::default().store_timeout * 10).await;
    assert_eq!(
        store.loads.load(Ordering::SeqCst),
        1,
        "no read after shutdown"
    );
    assert!(presented(&h).is_empty());
}

// ---- A watch cut short ----

/// Lease answers for one process: the store's, except that from `cut_after` past its first
/// take-over another process holds the lease (it took it over from this one's watch) until
/// `back_at`; the first request after that is a take-over from it (it let the lease lapse
/// in turn). The instant of that second take-over.
struct OthersHoldUntil {
    cut_after: Duration,
    back_at: tokio::time::Instant,
    first_taken: StdMutex<Option<tokio::time::Instant>>,
    taken_again: StdMutex<Option<tokio::time::Instant>>,
}

impl OthersHoldUntil {
    fn new(cut_after: Duration, back_at: tokio::time::Instant) -> Self {
        Self {
            cut_after,
            back_at,
            first_taken: StdMutex::default(),
            taken_again: StdMutex::default(),
        }
    }
}

/// Holder A takes the lease of `s` and rotates rt-0 (to rt-1), then cannot reach the store
/// (its lease lapses) but lives, and saves rt-1 over the record stored now at `saves_at`.
/// Runs the paused clock a second at a time until two lease lengths after that save.
async fn a_live_holder_saves_late(h: &Harness, saves_at: tokio::time::Instant) {
    let lease = ManagerConfig::default().lease_ttl;
    let key = SessionKey::new("fake", "s");
    let v0 = h.stored("s").await.unwrap().version;
    h.store.acquire_lease(&key, "a", lease).await.unwrap();
    let a_pair: StoredRecord = h.fake.rotate("rt-0").unwrap().to_stored().unwrap().into();
    let mut saved = false;
    while tokio::time::Instant::now() < saves_at + lease * 2 {
        if !saved && tokio::time::Instant::now() >= saves_at {
            h.store.save(&key, &a_pair, Some(v0)).await.unwrap();
            saved = true;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// A's pair (rt-1) is stored, and the survivor's next refresh presents it (at-2): the
/// provider did not revoke it.
async fn a_s_pair_is_kept(h: &Harness, survivor: &TokenManager<Arc<Fake>>) {
    let stored = h.stored("s").await.unwrap();
    assert_eq!(refresh_of(&stored), "rt-1", "A's pair saved");
    let answer = survivor.refresh_now("s").await;
    let token = answer.map(|at| at.expose_secret().to_owned());
    assert_eq!(token.ok().as_deref(), Some("at-2"), "rt-1 refreshes");
}

#[async_trait]
impl Hooks for OthersHoldUntil {
    async fn lease(
        &self,
        _: &SessionKey,
        _: &dyn TokenStore,
        granted: Lease,
    ) -> Result<Lease, StoreError> {
        let now = tokio::time::Instant::now();
        let mut first = self.first_taken.lock().unwrap();
        let Some(first_at) = *first else {
            if granted == Lease::TakenOver {
                *first = Some(now);
            }
            return Ok(granted);
        };
        if now < first_at + self.cut_after {
            return Ok(granted);
        }
        if now < self.back_at {
            return Ok(Lease::HeldByOther {
                remaining: self.back_at - now,
            });
        }
        let mut again = self.taken_again.lock().unwrap();
        if again.is_none() {
            *again = Some(now);
            return Ok(Lease::TakenOver);
        }
        Ok(granted)
    }
}

/// Holder A rotates rt-0 (to rt-1) and then cannot reach the store: its lease lapses, but A
/// lives and saves rt-1 later. The survivor takes the lease over, finds rt-0, and near the
/// end of its watch another process takes the lease from it (the watch is cut short, `Lost`);
/// others hold the lease until rt-0's reuse window, which runs from A's rotation, has
/// closed. The survivor then takes the lease over again. rt-0's window is closed: presenting
/// it is a replay the provider refuses, and one that detects reuse (as this one does)
/// revokes rt-1 with it; A's save is on its way: the survivor watches for it again, takes
/// it, and refreshes rt-1 later. (With
/// rt-0's window counted from the instant the watch was cut short, the survivor took it to
/// be open still and presented rt-0 at once.)
#[tokio::test(start_paused = true)]
async fn a_token_found_at_a_watch_cut_short_is_not_presented_after_its_window_closed() {
    let h = harness(|fake| fake.revoke_on_replay = true);
    let lease = ManagerConfig::default().lease_ttl;
    let window = h.fake.reuse_window;
    let start = tokio::time::Instant::now();
    let hooks = OthersHoldUntil::new(
        lease - Duration::from_secs(5),
        start + window + Duration::from_secs(20),
    );
    let store = Arc::new(Hooked::over(h.store.clone(), hooks));
    let survivor = process(&h, store.clone());
    let mut events = survivor.subscribe();
    survivor.insert("s", fresh_pair(&h)).await.unwrap();
    let rotated_at = tokio::time::Instant::now();
    a_live_holder_saves_late(&h, store.back_at + Duration::from_secs(10)).await;
    let first = store.first_taken.lock().unwrap().expect("taken over once");
    let again = store.taken_again.lock().unwrap().expect("taken over twice");
    println!(
        "first take-over {:?}, second {:?} after A's rotation (window {window:?}); presented {:?}",
        first - rotated_at,
        again - rotated_at,
        presented(&h)
    );
    assert!(
        again - rotated_at > window,
        "the second take-over came after the window"
    );
    assert_eq!(
        presented(&h),
        Vec::<String>::new(),
        "rt-0 presented after its reuse window closed, with A's save on its way"
    );
    a_s_pair_is_kept(&h, &survivor).await;
    no_reauth(&mut events);
}

/// A survivor whose watch over a dead holder's lease (that holder rotated rt-0 to rt-1 and
/// died) another process cut short `lease - 5 s` after the take-over; others then hold the
/// lease until `others_until` from the start. Returned once the watch was cut short.
async fn a_watch_cut_short(
    others_until: Duration,
) -> (
    Harness,
    Arc<Hooked<OthersHoldUntil, Arc<MemoryStore>>>,
    TokenManager<Arc<Fake>>,
    broadcast::Receiver<Event>,
) {
    let h = harness(|_| {});
    let lease = ManagerConfig::default().lease_ttl;
    let hooks = OthersHoldUntil::new(
        lease - Duration::from_secs(5),
        tokio::time::Instant::now() + others_until,
    );
    let store = Arc::new(Hooked::over(h.store.clone(), hooks));
    let survivor = process(&h, store.clone());
    let events = survivor.subscribe();
    survivor.insert("s", fresh_pair(&h)).await.unwrap();
    dies_after_the_rotation(&h, "s").await;
    for _ in 0..lease.as_secs() * 4 {
        if store
            .first_taken
            .lock()
            .unwrap()
            .is_some_and(|at| at.elapsed() > lease)
        {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let session = survivor.inner.known_session("s").unwrap();
    assert!(
        session.unresolved_open(&RefreshToken::new("rt-0")),
        "the watch was cut short and rt-0 noted"
    );
    assert!(presented(&h).is_empty());
    (h, store, survivor, events)
}

/// The session is removed after the watch was cut short: rt-0 is not presented, the
/// asking ends, and nothing keeps running.
#[tokio::test(start_paused = true)]
async fn a_removal_after_a_watch_cut_short_ends_the_asking() {
    let window = Duration::from_secs(300);
    let (h, _store, survivor, mut events) = a_watch_cut_short(window / 2).await;
    survivor.remove("s").await.unwrap();
    let removed_at = tokio::time::Instant::now();
    let mut idle_at = None;
    for _ in 0..window.as_secs() {
        if idle_at.is_none() && survivor.inner.tasks.is_empty() {
            idle_at = Some(removed_at.elapsed());
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "tasks idle {idle_at:?} after the remove; presented {:?}",
        presented(&h)
    );
    assert!(
        presented(&h).is_empty(),
        "nothing presented after the remove"
    );
    assert!(survivor.inner.tasks.is_empty(), "a task still runs");
    assert!(h.stored("s").await.is_none());
    survivor.shutdown(Duration::from_secs(1)).await.unwrap();
    no_reauth(&mut events);
}

/// A new pair is inserted after the watch was cut short: neither rt-0 nor the new refresh
/// token is presented (the new access token is fresh), and the asking ends.
#[tokio::test(start_paused = true)]
async fn an_insert_after_a_watch_cut_short_ends_the_asking_without_a_call() {
    let window = Duration::from_secs(300);
    let (h, _store, survivor, mut events) = a_watch_cut_short(window * 3).await;
    let pair = TokenSet::new(AccessToken::new("at-9"))
        .with_refresh_token(RefreshToken::new("rt-9"))
        .with_access_expires_at(h.clock.now() + HOUR);
    survivor.insert("s", pair).await.unwrap();
    for _ in 0..window.as_secs() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "presented {:?}, tasks {}",
        presented(&h),
        survivor.inner.tasks.len()
    );
    assert!(
        presented(&h).is_empty(),
        "nothing presented after the insert"
    );
    let session = survivor.inner.known_session("s").unwrap();
    assert!(!session.unresolved_open(&RefreshToken::new("rt-0")));
    assert_eq!(
        survivor.access_token("s").await.unwrap().expose_secret(),
        "at-9"
    );
    assert_eq!(refresh_of(&h.stored("s").await.unwrap()), "rt-9");
    no_reauth(&mut events);
}

/// Another process records a re-auth verdict after the watch was cut short, then gives the
/// lease back: rt-0 is not presented over it.
#[tokio::test(start_paused = true)]
async fn a_verdict_after_a_watch_cut_short_is_not_presented_over() {
    let window = Duration::from_secs(300);
    let (h, _store, survivor, _events) = a_watch_cut_short(window / 2).await;
    let key = SessionKey::new("fake", "s");
    let v0 = h.stored("s").await.unwrap().version;
    let verdict =
        crate::store::ReauthVerdict::new(None, "refused", h.clock.now()).replacing(Some(v0));
    h.store.save(&key, &verdict.into(), Some(v0)).await.unwrap();
    for _ in 0..window.as_secs() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!("presented {:?}", presented(&h));
    assert!(presented(&h).is_empty(), "rt-0 presented over the verdict");
    let answer = survivor.access_token("s").await;
    assert!(
        matches!(answer, Err(Error::ReauthRequired(_))),
        "the verdict is served: {answer:?}"
    );
}

/// Holder A rotates rt-0 (to rt-1) and then cannot reach the store: its lease lapses, but A
/// lives and saves rt-1 after rt-0's reuse window has closed. The survivor takes the lease
/// over, watches a lease length for A's save, presents rt-0 and gets 503s; it asks for rt-0
/// again in the background, while others hold the lease until the window has closed. The
/// asking ends with the window, which runs from A's rotation: no replay of rt-0 after it,
/// which a provider that detects reuse answers by revoking A's rt-1. (With the window
/// counted from the end of the watch, the asking took it to be open still and presented
/// rt-0 at once as it took the lease over again, a lease length after the close.)
#[tokio::test(start_paused = true)]
async fn a_token_asked_for_after_a_watch_is_not_presented_after_its_window_closed() {
    let h = harness(|fake| fake.revoke_on_replay = true);
    let lease = ManagerConfig::default().lease_ttl;
    let window = h.fake.reuse_window;
    let start = tokio::time::Instant::now();
    let hooks = OthersHoldUntil {
        // Past the watch and the presentation's retries (a second or two).
        cut_after: lease + Duration::from_secs(5),
        back_at: start + window + lease + Duration::from_secs(10),
        first_taken: StdMutex::default(),
        taken_again: StdMutex::default(),
    };
    let store = Arc::new(Hooked::over(h.store.clone(), hooks));
    let survivor = process(&h, store.clone());
    let mut events = survivor.subscribe();
    survivor.insert("s", fresh_pair(&h)).await.unwrap();
    let attempts = RetryPolicy::default().max_attempts;
    for _ in 0..attempts {
        (h.fake.script.lock().unwrap()).push_back(Step::Fail(unavailable(None)));
    }
    a_live_holder_saves_late(&h, store.back_at + lease).await;
    assert!(
        store.taken_again.lock().unwrap().is_some(),
        "the lease was taken over again after the window"
    );
    assert_eq!(
        presented(&h),
        vec!["rt-0"; attempts as usize],
        "rt-0 presented (and failed) after the watch only, not after its window"
    );
    a_s_pair_is_kept(&h, &survivor).await;
    no_reauth(&mut events);
}

/// A login lands in the store (through another process) as this one takes a lapsed lease
/// over, after the look read the record stored as the lease lapsed.
struct LoginAtTheTakeOver {
    login: StdMutex<Option<StoredRecord>>,
}

#[async_trait]
impl Hooks for LoginAtTheTakeOver {
    async fn lease(
        &self,
        key: &SessionKey,
        store: &dyn TokenStore,
        granted: Lease,
    ) -> Result<Lease, StoreError> {
        let login = match granted {
            Lease::TakenOver => self.login.lock().unwrap().take(),
            _ => None,
        };
        if let Some(login) = login {
            let stored = store.load(key).await?.map(|record| record.version);
            store.save(key, &login, stored).await?;
        }
        Ok(granted)
    }
}

/// A process dies after the provider rotated on its refresh of `s`; the survivor's look
/// finds its lapsed lease, and as the survivor takes it over a login lands (rt-9, through
/// another process). The login was written after the lease lapsed: it is nothing the dead
/// holder spent, and the survivor serves it without presenting its refresh token (an
/// extra rotation of a token nobody spent).
#[tokio::test(start_paused = true)]
async fn a_login_that_lands_as_a_lapsed_lease_is_taken_over_is_not_presented() {
    let h = harness(|_| {});
    let login: TokenSet = TokenSet::new(AccessToken::new("at-9"))
        .with_refresh_token(RefreshToken::new("rt-9"))
        .with_access_expires_at(h.clock.now() + HOUR);
    let hooks = LoginAtTheTakeOver {
        login: StdMutex::new(Some(login.to_stored().unwrap().into())),
    };
    let store = Arc::new(Hooked::over(h.store.clone(), hooks));
    let survivor = process(&h, store.clone());
    let mut events = survivor.subscribe();
    survivor.insert("s", fresh_pair(&h)).await.unwrap();
    dies_after_the_rotation(&h, "s").await;
    let lease = ManagerConfig::default().lease_ttl;
    for _ in 0..(lease * 10).as_secs() {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert!(store.login.lock().unwrap().is_none(), "the login landed");
    assert_eq!(presented(&h), Vec::<String>::new(), "nothing presented");
    assert_eq!(refresh_of(&h.stored("s").await.unwrap()), "rt-9");
    let token = survivor.access_token("s").await.unwrap();
    assert_eq!(token.expose_secret(), "at-9");
    no_reauth(&mut events);
}

/// A process shutting down while it still asks for the pair its lost answer left (the
/// provider failing each ask) leaves its refresh lease to lapse rather than give it back:
/// another process's look for lapsed leases takes it over and presents the token again
/// inside the reuse window, though no caller asks there. Given back, the lease told nobody
/// that the stored token may be spent, and the pair was lost when the window closed
/// (two-process model seed 73972).
#[tokio::test(start_paused = true)]
async fn a_process_shutting_down_while_asking_for_a_lost_pair_leaves_the_asking_to_another() {
    let h = harness(|_| {});
    let shared: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let a = process(&h, shared.clone());
    let b = process(&h, shared.clone());
    let mut events = b.subscribe();
    a.insert("s", expired_pair(&h)).await.unwrap();
    lose_the_answer_to_rt_0(&h, &a).await;
    // B is at work on another session (its look for lapsed leases runs).
    b.insert("other", login(&h)).await.unwrap();
    for _ in 0..10 {
        h.fake.then(Step::Fail(unavailable(None)));
    }
    let calls = h.calls();
    a.shutdown(Duration::from_secs(60)).await.unwrap();
    assert!(h.calls() > calls, "A asked once more as it shut down");
    h.fake.script.lock().unwrap().clear();
    tokio::time::sleep(h.fake.reuse_window).await;
    let key = SessionKey::new("fake", "s");
    let stored = shared.load(&key).await.unwrap().unwrap();
    assert_eq!(
        refresh_of(&stored),
        "rt-1",
        "the pair rt-0 was rotated to is kept"
    );
    assert_eq!(presented(&h).last().map(String::as_str), Some("rt-0"));
    no_reauth(&mut events);
}

/// Fails every load from the first take-over of a lapsed lease it grants until a renewal
/// a lease length after it: the reads of the watch for the lapsed holder's save, its last
/// one included (an outage of reads that lasts the watch); every other call goes through.
#[derive(Default)]
struct ReadsDownForTheWatch {
    /// When the take-over was granted, and whether the watch is over.
    taken_over: StdMutex<Option<(tokio::time::Instant, bool)>>,
    /// How many loads fail still once the watch is over.
    after: AtomicU32,
}

#[async_trait]
impl Hooks for ReadsDownForTheWatch {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        let (watching, over) = match *self.taken_over.lock().unwrap() {
            Some((_, over)) => (!over, over),
            None => (false, false),
        };
        let after = call == Call::Load
            && over
            && (self.after)
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        match call == Call::Load && watching || after {
            true => Err(disk_full()),
            false => Ok(()),
        }
    }

    async fn lease(
        &self,
        _: &SessionKey,
        _: &dyn TokenStore,
        granted: Lease,
    ) -> Result<Lease, StoreError> {
        let lease = ManagerConfig::default().lease_ttl;
        let now = tokio::time::Instant::now();
        match &mut *self.taken_over.lock().unwrap() {
            Some((at, over)) if now >= *at + lease => *over = true,
            Some(_) => {}
            taken_over @ None if granted == Lease::TakenOver => *taken_over = Some((now, false)),
            None => {}
        }
        Ok(granted)
    }
}

/// How B's refresh in [`a_take_over_whose_watch_cannot_read`] goes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum AfterTheWatch {
    /// A `refresh_now`: it presents rt-1, and is answered a 503.
    Presents,
    /// An `access_token`: it takes at-1 (fresh), presenting nothing.
    Takes,
    /// An `access_token` whose read after the watch fails too: it fails, having read
    /// nothing, and gives the lease back.
    ReadsNothing,
}

/// B holds rt-0. Another process refreshed it (at-1, rt-1, fresh for an hour, stored), and
/// a third took the lease, spent rt-1 (the provider rotated to rt-2) and died. B's
/// refresh takes the lapsed lease over and watches for the dead holder's save while every
/// read fails; the read after the watch finds rt-1, the token the dead holder may have
/// spent (or, `ReadsNothing`, fails too, and B's asking for its own token again later
/// finds rt-1 under a lease granted anew, no take-over). Whichever, rt-1 is asked for again
/// in the background inside the reuse window, though no caller comes, and rt-2 comes back:
/// not rt-0 (B's own, out of date) asked for instead, rt-1 left stored, spent, until the
/// window has closed.
async fn a_take_over_whose_watch_cannot_read(then: AfterTheWatch) {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::new(ReadsDownForTheWatch {
        after: AtomicU32::new(u32::from(then == AfterTheWatch::ReadsNothing)),
        ..ReadsDownForTheWatch::default()
    }));
    let config = ManagerConfig::default()
        .with_lapsed_lease_scan(false)
        .with_retry(RetryPolicy::never());
    let b = process_with(&h, store.clone(), config);
    let mut events = b.subscribe();
    b.insert("s", expired_pair(&h)).await.unwrap();
    let key = SessionKey::new("fake", "s");
    let base = store.inner.load(&key).await.unwrap().unwrap().version;
    let refreshed: StoredRecord = h.fake.rotate("rt-0").unwrap().to_stored().unwrap().into();
    store
        .inner
        .save(&key, &refreshed, Some(base))
        .await
        .unwrap();
    let lease = ManagerConfig::default().lease_ttl;
    store
        .inner
        .acquire_lease(&key, "dead", lease)
        .await
        .unwrap();
    h.fake.rotate("rt-1").unwrap();
    tokio::time::sleep(lease + Duration::from_secs(1)).await;

    match then {
        AfterTheWatch::Presents => {
            h.fake.then(Step::Fail(unavailable(None)));
            let failed = b.refresh_now("s").await.unwrap_err();
            assert_eq!(failed.kind(), ErrorKind::Transient, "{failed}");
            assert_eq!(presented(&h), ["rt-1"]);
        }
        AfterTheWatch::Takes => {
            let token = b.access_token("s").await.unwrap();
            assert_eq!(token.expose_secret(), "at-1");
            assert!(presented(&h).is_empty());
        }
        AfterTheWatch::ReadsNothing => {
            let failed = b.access_token("s").await.unwrap_err();
            assert!(matches!(failed, Error::Store(_)), "{failed:?}");
            assert!(presented(&h).is_empty());
        }
    }
    let over = store
        .taken_over
        .lock()
        .unwrap()
        .is_some_and(|(_, over)| over);
    assert!(over, "the lease was taken over, and watched");
    // Nobody calls; a second at a time on the paused clock, bounded by the window.
    let stored = || async { store.inner.load(&key).await.unwrap() };
    for _ in 0..300 {
        if stored().await.as_ref().map(refresh_of) == Some("rt-2") {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let stored = stored().await;
    assert_eq!(
        stored.as_ref().map(refresh_of),
        Some("rt-2"),
        "the successor came back"
    );
    assert_eq!(presented(&h).last().map(String::as_str), Some("rt-1"));
    no_reauth(&mut events);
}

#[tokio::test(start_paused = true)]
async fn a_token_presented_after_a_take_over_whose_watch_could_not_read_is_asked_for_again() {
    a_take_over_whose_watch_cannot_read(AfterTheWatch::Presents).await;
}

#[tokio::test(start_paused = true)]
async fn a_token_taken_after_a_take_over_whose_watch_could_not_read_is_asked_for_again() {
    a_take_over_whose_watch_cannot_read(AfterTheWatch::Takes).await;
}

#[tokio::test(start_paused = true)]
async fn a_take_over_that_read_nothing_at_all_asks_for_the_token_found_later_again() {
    a_take_over_whose_watch_cannot_read(AfterTheWatch::ReadsNothing).await;
}

/// A process waiting for the lease of another's refresh whose answer arrived already
/// expired (used by that process for `min_refresh_interval`) takes that answer too: it does
/// not spend, at once, the refresh token the provider has just rotated to. (It found the
/// stored set expired and refreshed again: two refreshes for one need, one per process.)
#[tokio::test(start_paused = true)]
async fn a_process_waiting_for_the_lease_takes_an_answer_that_arrived_expired() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    let shared: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let (a, b) = (process(&h, shared.clone()), process(&h, shared));
    a.insert("s", expired_pair(&h)).await.unwrap();
    h.fake.then(Step::AnswerExpired).then(Step::AnswerExpired);
    let first = asks(&a);
    h.until_calls(1).await;
    let second = asks(&b);
    let waiting =
        || (b.inner.sessions.pin().get("s")).is_some_and(|entry| entry.session.in_flight());
    assert!(until(waiting).await, "B's refresh started");
    gate.add_permits(2);
    assert_eq!(first.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(second.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(h.calls(), 1, "one refresh for both processes");
    assert_eq!(presented(&h), ["rt-0"]);
}

/// A process that reads, a moment after another process refreshed, a set whose access
/// token arrived already expired uses it as that process does, for `min_refresh_interval`:
/// it does not refresh the session again at its first call.
#[tokio::test(start_paused = true)]
async fn a_set_that_arrived_expired_is_used_by_every_process_reading_it() {
    let h = harness(|_| {});
    let shared: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let (a, b) = (process(&h, shared.clone()), process(&h, shared));
    a.insert("s", expired_pair(&h)).await.unwrap();
    h.fake.then(Step::AnswerExpired).then(Step::AnswerExpired);
    for _ in 0..4 {
        tokio::time::advance(Duration::from_secs(1)).await;
        assert_eq!(a.access_token("s").await.unwrap().expose_secret(), "at-1");
        assert_eq!(b.access_token("s").await.unwrap().expose_secret(), "at-1");
    }
    assert_eq!(h.calls(), 1);
}

/// A process that reads a pair another process has just got, whose new refresh token was
/// answered as already expired (a provider's clock behind, an expiry of the login that
/// rotation does not move), does not refresh it again at once: as for the process that got
/// it, that expiry is no reason to refresh (it cannot be renewed by refreshing), and the
/// access token schedules the next refresh.
#[tokio::test(start_paused = true)]
async fn a_pair_whose_refresh_token_arrived_expired_is_not_refreshed_again_by_another_process() {
    let h = harness(|_| {});
    let shared: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let (a, b) = (process(&h, shared.clone()), process(&h, shared));
    a.insert("s", expired_pair(&h)).await.unwrap();
    for _ in 0..10 {
        h.fake
            .then(Step::AnswerRefreshExpiring(datetime!(2025-12-31 23:00 UTC)));
    }
    for _ in 0..60 {
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(a.access_token("s").await.unwrap().expose_secret(), "at-1");
        assert_eq!(b.access_token("s").await.unwrap().expose_secret(), "at-1");
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }
    assert_eq!(
        h.calls(),
        1,
        "refreshed again to renew an expired refresh token"
    );
}

/// `refresh_now` in a process that finds another process's refresh of the session under way
/// (its lease held) takes that refresh's answer, as it shares a refresh under way in its own
/// process: one refresh for both, not a second at once with the refresh token just rotated
/// to.
#[tokio::test(start_paused = true)]
async fn a_forced_refresh_waiting_for_another_processs_refresh_takes_its_answer() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    let shared: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let (a, b) = (process(&h, shared.clone()), process(&h, shared));
    let valid = expired_pair(&h).with_access_expires_at(h.clock.now() + HOUR);
    a.insert("s", valid).await.unwrap();
    assert_eq!(b.access_token("s").await.unwrap().expose_secret(), "at-0");
    let (first, forced) = forced_in_both(&h, &gate, &a, &b, 1).await;
    assert_eq!(first.unwrap().expose_secret(), "at-1");
    assert_eq!(forced.unwrap().expose_secret(), "at-1");
    assert_eq!(presented(&h), ["rt-0"], "one refresh for both processes");
}

/// As the test above, with a provider that renews the access token in place (the same
/// token, a later expiry, the refresh token kept, as WeChat may): the answer is that
/// refresh's all the same, though it holds the token the waiting process held.
#[tokio::test(start_paused = true)]
async fn a_forced_refresh_waiting_for_another_processs_renewal_in_place_takes_it() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    let shared: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let (a, b) = (process(&h, shared.clone()), process(&h, shared));
    let valid = expired_pair(&h).with_access_expires_at(h.clock.now() + HOUR / 2);
    a.insert("s", valid).await.unwrap();
    assert_eq!(b.access_token("s").await.unwrap().expose_secret(), "at-0");
    h.fake.then(Step::ExtendAccess).then(Step::ExtendAccess);
    let (first, forced) = forced_in_both(&h, &gate, &a, &b, 1).await;
    assert_eq!(first.unwrap().expose_secret(), "at-0");
    assert_eq!(forced.unwrap().expose_secret(), "at-0");
    assert_eq!(presented(&h), ["rt-0"], "one refresh for both processes");
}

/// The other side of the two tests above: a `refresh_now` that waited for another process's
/// refresh takes only what that refresh saved, a record written after the one the store
/// held as the wait began. Here the store holds a set the waiting process has not seen yet
/// (the other process's refresh an hour ago), and the other process's refresh now fails and
/// saves nothing: the forced refresh refreshes itself, with the stored refresh token, rather
/// than answer the hour-old token as if it were new.
#[tokio::test(start_paused = true)]
async fn a_forced_refresh_after_another_processs_refresh_failed_refreshes_itself() {
    let gate = Arc::new(Semaphore::new(1));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    let shared: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let (a, b) = (process(&h, shared.clone()), process(&h, shared));
    let valid = expired_pair(&h).with_access_expires_at(h.clock.now() + HOUR * 3);
    a.insert("s", valid).await.unwrap();
    assert_eq!(b.access_token("s").await.unwrap().expose_secret(), "at-0");
    // A refreshes; B, whose at-0 is valid for hours yet, does not read the store.
    assert_eq!(a.refresh_now("s").await.unwrap().expose_secret(), "at-1");
    assert_eq!(b.access_token("s").await.unwrap().expose_secret(), "at-0");
    gate.acquire().await.unwrap().forget();
    h.fake.then(Step::Fail(invalid_scope()));
    let (first, forced) = forced_in_both(&h, &gate, &a, &b, 2).await;
    assert!(first.is_err(), "A's refresh failed");
    assert_eq!(forced.unwrap().expose_secret(), "at-2");
    assert_eq!(presented(&h), ["rt-0", "rt-1", "rt-1"]);
}

/// A store that fails every call while `down` is set, and every save while `saves_down` is.
#[derive(Default)]
struct SavesDown {
    down: AtomicBool,
    saves_down: AtomicBool,
}

#[async_trait]
impl Hooks for SavesDown {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        let saves = matches!(call, Call::Save) && self.saves_down.load(Ordering::SeqCst);
        match self.down.load(Ordering::SeqCst) || saves {
            true => Err(disk_full()),
            false => Ok(()),
        }
    }
}

/// A `refresh_now` in a process holding a pair it could not save yet (at-1, its lease
/// lapsed meanwhile and taken over by another process, which watches for that save): that
/// pair's save, landing while the call waits for the lease, is no refresh's answer (it
/// was in this process before the call), and the call must not answer with it: it
/// refreshes rt-1.
#[tokio::test(start_paused = true)]
async fn a_forced_refresh_waiting_for_a_lease_does_not_answer_its_own_pairs_late_save() {
    let gate = Arc::new(Semaphore::new(0));
    // No reuse window: no look for lapsed leases takes A's over before B's refresh does.
    let h = harness(|fake| {
        fake.gate = Some(gate.clone());
        fake.reuse_window = Duration::ZERO;
    });
    let store_a = Arc::new(Hooked::over(h.store.clone(), SavesDown::default()));
    let (a, b) = (process(&h, store_a.clone()), process(&h, h.store.clone()));
    let pair = expired_pair(&h).with_access_expires_at(h.clock.now() + Duration::from_secs(600));
    b.insert("s", pair).await.unwrap();
    assert_eq!(a.access_token("s").await.unwrap().expose_secret(), "at-0");
    let first = {
        let a = a.clone();
        tokio::spawn(async move { a.refresh_now("s").await })
    };
    h.until_calls(1).await;
    store_a.down.store(true, Ordering::SeqCst);
    gate.add_permits(10);
    assert_eq!(
        first.await.unwrap().unwrap().expose_secret(),
        "at-1",
        "kept unsaved"
    );
    // A's lease lapses; at-0 expires. B takes the lease over, and watches for A's save.
    tokio::time::sleep(Duration::from_secs(660)).await;
    let needed = asks(&b);
    tokio::time::sleep(Duration::from_secs(1)).await;
    store_a.saves_down.store(true, Ordering::SeqCst);
    store_a.down.store(false, Ordering::SeqCst);
    let forced = {
        let a = a.clone();
        tokio::spawn(async move { a.refresh_now("s").await })
    };
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A's save of at-1 lands while its refresh_now waits for B's lease.
    store_a.saves_down.store(false, Ordering::SeqCst);
    assert_eq!(needed.await.unwrap().unwrap().expose_secret(), "at-1");
    let forced = forced.await.unwrap().unwrap();
    assert_ne!(
        forced.expose_secret(),
        "at-1",
        "refresh_now answered the token A held before the call"
    );
    assert_eq!(presented(&h), ["rt-0", "rt-1"]);
}

/// `refresh_now` of `s` in A, held at the provider (its `calls`th call) behind `gate`, then
/// in B, which finds A's lease held; then the gate opens. Their answers, A's first.
async fn forced_in_both(
    h: &Harness,
    gate: &Semaphore,
    a: &TokenManager<Arc<Fake>>,
    b: &TokenManager<Arc<Fake>>,
    calls: u32,
) -> (Result<AccessToken, Error>, Result<AccessToken, Error>) {
    let first = {
        let a = a.clone();
        tokio::spawn(async move { a.refresh_now("s").await })
    };
    h.until_calls(calls).await;
    let forced = {
        let b = b.clone();
        tokio::spawn(async move { b.refresh_now("s").await })
    };
    let waiting =
        || (b.inner.sessions.pin().get("s")).is_some_and(|entry| entry.session.in_flight());
    assert!(until(waiting).await, "B's refresh started");
    gate.add_permits(2);
    (first.await.unwrap(), forced.await.unwrap())
}
