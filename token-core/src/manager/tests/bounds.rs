//! Resource bounds a hostile or careless caller, or a long-running deployment, would meet:
//! what the manager keeps per name, per cycle and per refresh returns to its baseline, and
//! nothing it spawns outlives its use.

use super::*;

#[tokio::test(start_paused = true)]
async fn handles_on_names_without_tokens_leave_nothing_behind_once_dropped() {
    let h = harness(|_| {});
    h.seed("real", HOUR).await;
    for i in 0..3 * name::UNKNOWN_NAMES_KEPT {
        let name = format!("ghost-{i}");
        // Taken and dropped unused, or used once: a web service that makes a `BearerAuth`
        // for a user id from its request does both.
        let handle = h.manager.session(&name);
        if i % 2 == 0 {
            assert!(matches!(
                handle.access_token().await,
                Err(Error::NoTokens(_))
            ));
        }
        let clone = handle.clone();
        drop(handle);
        drop(clone);
    }
    assert_eq!(
        h.manager.inner.sessions.len(),
        1,
        "a dropped handle's session without tokens stays in the map"
    );
    assert!(h.manager.inner.unknown.len() <= name::UNKNOWN_NAMES_KEPT);
    assert_eq!(
        h.manager
            .access_token("real")
            .await
            .unwrap()
            .expose_secret(),
        "at-0"
    );
    assert_eq!(h.calls(), 0);
}

/// Names without tokens are remembered a thousand at a time: long ones (a caller's 64 KiB
/// user id) must not make that a gigabyte. What the set holds stays within a few hundred
/// KiB, and a long name is still answered (looked up in the store each time).
#[tokio::test(start_paused = true)]
async fn long_names_without_tokens_are_not_kept_by_the_thousand() {
    let h = harness(|_| {});
    for i in 0..name::UNKNOWN_NAMES_KEPT {
        let name = format!("{i:06}-{}", "x".repeat(64 << 10));
        assert!(matches!(
            h.manager.access_token(&name).await,
            Err(Error::NoTokens(_))
        ));
    }
    let held = h.manager.inner.unknown.name_bytes();
    assert!(held <= 512 << 10, "{held} bytes of names kept");
    let long = format!("000000-{}", "x".repeat(64 << 10));
    h.seed(&long, HOUR).await;
    assert_eq!(
        h.manager.access_token(&long).await.unwrap().expose_secret(),
        "at-0"
    );
    assert_eq!(h.manager.inner.sessions.len(), 1);
}

#[tokio::test(start_paused = true)]
async fn sessions_removed_while_a_handle_held_them_leave_the_map_once_it_is_dropped() {
    let h = harness(|_| {});
    for i in 0..2_000 {
        let name = format!("s-{i}");
        h.seed(&name, HOUR).await;
        let handle = h.manager.session(&name);
        assert_eq!(handle.access_token().await.unwrap().expose_secret(), "at-0");
        h.manager.remove(&name).await.unwrap();
        drop(handle);
    }
    assert_eq!(h.manager.inner.sessions.len(), 0);
    assert!(h.store.is_empty());
    assert_eq!(h.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn names_whose_callers_gave_up_during_the_lookup_leave_nothing_behind() {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::<HeldCalls>::default());
    let manager = manager_over(&h, store.clone());
    const NAMES: u32 = 200;
    let gates: Vec<_> = (0..NAMES).map(|_| store.hold(Call::Load)).collect();
    for i in 0..NAMES {
        // A caller with a deadline of its own (a web request's): it gives up while the
        // store is looked at; the lookup goes on in its own task and finds nothing.
        let name = format!("ghost-{i}");
        let asked = manager.access_token(&name);
        assert!(
            tokio::time::timeout(Duration::from_millis(10), asked)
                .await
                .is_err()
        );
    }
    store.until_reached(NAMES).await;
    for gate in gates {
        gate.add_permits(1);
    }
    assert!(until(|| manager.inner.tasks.is_empty()).await);
    assert_eq!(
        manager.inner.sessions.len(),
        0,
        "a name found without tokens stays in the map once its caller gave up"
    );
    assert!(manager.inner.unknown.len() <= name::UNKNOWN_NAMES_KEPT);
}

/// Whether another holder would be granted `session`'s lease as free (released), not taken
/// over (lapsed unreleased) nor refused (held).
async fn lease_released(store: &dyn TokenStore, session: &str) -> bool {
    let key = SessionKey::new("fake", session);
    let lease = store.acquire_lease(&key, "probe", HOUR).await.unwrap();
    store.release_lease(&key, "probe").await.unwrap();
    lease == Lease::Acquired
}

#[tokio::test(start_paused = true)]
async fn a_manager_dropped_mid_refresh_is_freed_once_the_refresh_ends() {
    let h = harness(|_| {});
    h.seed("s", Duration::ZERO).await;
    h.fake.then(Step::Hang);
    let caller = tokio::spawn({
        let manager = h.manager.clone();
        async move { manager.access_token("s").await }
    });
    h.until_calls(1).await;
    let Harness { manager, store, .. } = h;
    let weak = Arc::downgrade(&manager.inner);
    caller.abort();
    drop(manager);
    // Nothing keeps it past the refresh's own bounds (the call timeout, the retries).
    tokio::time::sleep(HOUR).await;
    assert!(
        weak.upgrade().is_none(),
        "the dropped manager is still alive"
    );
    assert!(lease_released(&*store, "s").await);
}

#[tokio::test(start_paused = true)]
async fn a_manager_dropped_while_a_lost_pair_is_unresolved_is_freed_by_the_windows_close() {
    let h = harness(|_| {});
    lose_the_rotated_pair(&h).await;
    let reuse_window = h.fake.reuse_window;
    let Harness { manager, store, .. } = h;
    let weak = Arc::downgrade(&manager.inner);
    drop(manager);
    tokio::time::sleep(reuse_window).await;
    assert!(
        weak.upgrade().is_none(),
        "the dropped manager is still alive"
    );
    assert!(lease_released(&*store, "s").await);
}

/// A memory store whose saves fail while `failing` is set; leases as the memory store's.
fn saves_failing(failing: bool) -> Arc<Hooked<HeldLeases>> {
    Arc::new(Hooked::over(
        MemoryStore::new(),
        HeldLeases {
            hold: false.into(),
            waiting: AtomicU32::new(0),
            gate: Semaphore::new(0),
            failing: failing.into(),
        },
    ))
}

#[tokio::test(start_paused = true)]
async fn a_manager_dropped_while_its_new_pair_cannot_be_saved_keeps_trying_to_save_it() {
    let h = harness(|_| {});
    let store = saves_failing(true);
    let manager = manager_over(&h, store.clone());
    store.failing.store(false, Ordering::SeqCst);
    manager.insert("s", expired_pair(&h)).await.unwrap();
    store.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    let weak = Arc::downgrade(&manager.inner);
    drop(manager);
    tokio::time::sleep(HOUR).await;
    assert!(!lease_released(&*store, "s").await, "kept until saved");
    store.failing.store(false, Ordering::SeqCst);
    tokio::time::sleep(HOUR).await;
    assert!(
        weak.upgrade().is_none(),
        "the dropped manager is still alive"
    );
    assert!(lease_released(&*store, "s").await);
    let stored = store
        .inner
        .load(&SessionKey::new("fake", "s"))
        .await
        .unwrap();
    assert_eq!(
        refresh_of(&stored.unwrap()),
        "rt-1",
        "the rotated pair was saved after the manager was dropped"
    );
}

#[tokio::test(start_paused = true)]
async fn a_session_refreshed_ten_thousand_times_keeps_nothing_per_refresh() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    // A subscriber that never reads, and a hook that keeps nothing.
    let never_read = h.manager.subscribe();
    let session = h.manager.inner.session("s");
    let baseline = Arc::strong_count(&session);
    const REFRESHES: u32 = 10_000;
    for i in 0..REFRESHES {
        let token = h.manager.refresh_now("s").await.unwrap();
        assert_eq!(token.expose_secret(), format!("at-{}", i + 1));
        if i % 1000 == 0 {
            tokio::time::advance(Duration::from_secs(1)).await;
        }
    }
    assert_eq!(h.calls(), REFRESHES);
    assert!(until(|| h.manager.inner.tasks.is_empty()).await);
    assert_eq!(h.manager.inner.sessions.len(), 1);
    assert_eq!(h.store.len(), 1);
    assert!(h.manager.inner.lease_users.lock().unwrap().is_empty());
    assert_eq!(h.manager.inner.unknown.len(), 0);
    assert!(lease_released(&*h.store, "s").await);
    // Events wait for a reader in a bounded ring: the oldest are dropped, not queued.
    let mut never_read = never_read;
    assert!(matches!(
        never_read.try_recv(),
        Err(broadcast::error::TryRecvError::Lagged(_))
    ));
    let mut kept = 0;
    while never_read.try_recv().is_ok() {
        kept += 1;
    }
    assert!(kept <= 1024, "{kept}");
    // Nothing holds the session or its states but the map, the store and this test (and
    // the map's replaced entries, which papaya frees in batches).
    let held = Arc::strong_count(&session);
    assert!(held <= baseline + 64, "{held} references to the session");
    let state = session.load().unwrap();
    assert!(
        Arc::strong_count(&state) <= 4,
        "{}",
        Arc::strong_count(&state)
    );
}

/// The names of the files in `dir`.
fn files(dir: &std::path::Path) -> Vec<String> {
    let mut names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    names
}

/// Inserts an expired pair as `name`, refreshes it (a lease taken and given back, the
/// record replaced) and removes it while a handle holds it, then drops the handle.
async fn cycle(h: &Harness, manager: &TokenManager<Arc<Fake>>, name: &str) {
    manager.insert(name, expired_pair(h)).await.unwrap();
    let handle = manager.session(name);
    assert!(handle.access_token().await.is_ok());
    manager.remove(name).await.unwrap();
    drop(handle);
}

#[tokio::test(start_paused = true)]
async fn sessions_inserted_refreshed_and_removed_leave_the_file_store_directory_as_it_was() {
    let h = harness(|_| {});
    let tmp = tempfile::TempDir::new().unwrap();
    let store = Arc::new(crate::store::FileStore::open(tmp.path()).unwrap());
    let manager = manager_over(&h, store.clone());
    // One session lives throughout; the directory's bookkeeping files exist from here on.
    manager.insert("kept", login(&h)).await.unwrap();
    let baseline = files(tmp.path());
    for i in 0..150 {
        let name = format!("s-{i}");
        cycle(&h, &manager, &name).await;
        // And removed again with nobody holding it.
        if i % 2 == 0 {
            manager.remove(&name).await.unwrap();
        }
    }
    assert!(until(|| manager.inner.tasks.is_empty()).await);
    assert_eq!(files(tmp.path()), baseline);
    assert_eq!(manager.inner.sessions.len(), 1);
    assert!(manager.inner.lease_users.lock().unwrap().is_empty());
}

#[cfg(feature = "postgres")]
#[tokio::test]
async fn sessions_inserted_refreshed_and_removed_leave_no_postgres_rows() {
    use crate::store::postgres::tests::{drop_schema, rows, test_db, test_url};
    let Some(url) = test_url("sessions_inserted_refreshed_and_removed_leave_no_postgres_rows")
    else {
        return;
    };
    let db = test_db(&url, "token-core-test-manager-cycles");
    let h = harness(|_| {});
    let store = Arc::new(crate::store::PostgresStore::open(&db).await.unwrap());
    let manager = manager_over(&h, store.clone());
    for i in 0..100 {
        cycle(&h, &manager, &format!("s-{i}")).await;
    }
    // Real time (the database's): the background work is waited for by a shutdown.
    manager.shutdown(Duration::from_secs(30)).await.unwrap();
    assert_eq!(rows(&db, "token_sets").await, 0);
    assert_eq!(rows(&db, "token_leases").await, 0);
    assert_eq!(manager.inner.sessions.len(), 0);
    drop_schema(&db).await;
}

/// How many panics threads named `bounds-rt` had.
static RUNTIME_PANICS: AtomicU32 = AtomicU32::new(0);

#[test]
fn a_runtime_dropped_mid_refresh_panics_on_no_thread() {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().name() == Some("bounds-rt") {
                RUNTIME_PANICS.fetch_add(1, Ordering::SeqCst);
            }
            previous(info);
        }));
    });
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("bounds-rt")
        .enable_all()
        .build()
        .unwrap();
    let gate = Arc::new(Semaphore::new(0));
    let (manager, store) = runtime.block_on(async {
        let h = harness(|fake| fake.gate = Some(gate.clone()));
        let store = saves_failing(false);
        let manager = manager_over(&h, store.clone());
        manager.insert("saving", expired_pair(&h)).await.unwrap();
        manager
            .insert("refreshing", expired_pair(&h))
            .await
            .unwrap();
        // One session's new pair cannot be saved: a background save retries it, keeping
        // the lease.
        store.failing.store(true, Ordering::SeqCst);
        gate.add_permits(1);
        manager.access_token("saving").await.unwrap();
        gate.acquire().await.unwrap().forget();
        // Another's refresh waits for the provider, its lease held and renewed, and
        // callers wait for it.
        for _ in 0..3 {
            let manager = manager.clone();
            tokio::spawn(async move { manager.access_token("refreshing").await });
        }
        // Real time, several threads: the other tasks get there in their own time (a
        // bounded poll, ten seconds at most).
        for _ in 0..10_000 {
            if h.calls() == 2 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(h.calls(), 2);
        (manager, store)
    });
    drop(runtime);
    assert_eq!(RUNTIME_PANICS.load(Ordering::SeqCst), 0);
    // The manager outlives its runtime (a static shared by tests, each with a runtime of
    // its own): in the next one, both sessions refresh and give their leases back.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        store.failing.store(false, Ordering::SeqCst);
        gate.add_permits(100);
        for session in ["refreshing", "saving"] {
            manager.refresh_now(session).await.unwrap();
        }
        manager.shutdown(Duration::from_secs(30)).await.unwrap();
        for session in ["refreshing", "saving"] {
            assert!(
                lease_released(&*store, session).await,
                "{session}: the lease stays taken for good"
            );
        }
        assert!(manager.inner.lease_users.lock().unwrap().is_empty());
    });
    drop(runtime);
    // What is left outside any runtime is freed without one.
    let weak = Arc::downgrade(&manager.inner);
    drop(manager);
    assert!(
        weak.upgrade().is_none(),
        "the tasks' references went with the runtime"
    );
    drop(store);
}

/// A provider that can issue tokens of its own (client credentials) and is down, asking
/// to wait this long if at all (or whose code panics as it issues, with `true`); counts the
/// issues asked for.
#[derive(Default)]
struct IssuerDown(AtomicU32, Option<Duration>, bool);

#[async_trait]
impl Provider for Arc<IssuerDown> {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "down"
    }

    async fn refresh(&self, _: &CallContext, _: &TokenSet) -> Result<TokenSet, Error> {
        Err(unavailable(None))
    }

    fn can_issue(&self) -> bool {
        true
    }

    async fn issue(&self, _: &CallContext) -> Result<TokenSet, Error> {
        self.0.fetch_add(1, Ordering::SeqCst);
        assert!(!self.2, "the provider's code panics");
        Err(unavailable(self.1))
    }
}

/// A manager of `provider` on a paused clock, never retrying.
fn manager_issuing(provider: &Arc<IssuerDown>) -> TokenManager<Arc<IssuerDown>> {
    manager_issuing_over(provider, None)
}

/// As [`manager_issuing`], over `store` if given.
fn manager_issuing_over(
    provider: &Arc<IssuerDown>,
    store: Option<Arc<dyn TokenStore>>,
) -> TokenManager<Arc<IssuerDown>> {
    let builder = TokenManager::builder(provider.clone());
    let builder = match store {
        Some(store) => builder.shared_store(store),
        None => builder,
    };
    builder
        .client(NoTransport)
        .clock(Arc::new(TokioClock::starting_at(
            datetime!(2026-01-01 00:00 UTC),
        )))
        .config(ManagerConfig::default().with_retry(RetryPolicy::never()))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn names_asked_for_while_an_issuing_provider_is_down_leave_nothing_behind() {
    let provider = Arc::new(IssuerDown::default());
    let manager = manager_issuing(&provider);
    let names = 3 * name::UNKNOWN_NAMES_KEPT;
    for i in 0..names {
        assert!(manager.access_token(&format!("tenant-{i}")).await.is_err());
    }
    assert_eq!(
        manager.inner.sessions.len(),
        0,
        "a session kept for every name asked for while the provider was down"
    );
    assert!(manager.inner.unknown.len() <= name::UNKNOWN_NAMES_KEPT);
    // A failure is still answered again for the cooldown, not asked once per caller: by
    // name for the names the set holds, and past it from the one failure kept for them.
    let asked = provider.0.load(Ordering::SeqCst);
    assert_eq!(asked as usize, name::UNKNOWN_NAMES_KEPT + 1);
    for turn in 0..2 {
        for _ in 0..5 {
            let error = manager.access_token("tenant-1").await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Transient, "{error:?}");
        }
        assert_eq!(provider.0.load(Ordering::SeqCst), asked + turn);
        tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    }
    assert_eq!(manager.inner.sessions.len(), 0);
}

#[tokio::test(start_paused = true)]
async fn names_asked_for_while_an_issuing_provider_asks_to_wait_leave_nothing_behind() {
    let provider = Arc::new(IssuerDown(AtomicU32::new(0), Some(HOUR), false));
    let manager = manager_issuing(&provider);
    for i in 0..3 * name::UNKNOWN_NAMES_KEPT {
        assert!(manager.access_token(&format!("tenant-{i}")).await.is_err());
    }
    // The provider's wait is the whole client's: asked once.
    assert_eq!(provider.0.load(Ordering::SeqCst), 1);
    assert_eq!(manager.inner.sessions.len(), 0);
}

/// Past the bounded set of names, a failed issue is answered again for the cooldown too:
/// a name asked for while the set is full of younger looks, and while the provider is down,
/// does not send each of its callers to the provider.
#[tokio::test(start_paused = true)]
async fn a_failed_issue_for_a_name_past_the_bounded_set_is_answered_again_for_the_cooldown() {
    let provider = Arc::new(IssuerDown::default());
    let manager = manager_issuing(&provider);
    for i in 0..name::UNKNOWN_NAMES_KEPT {
        assert!(manager.access_token(&format!("tenant-{i}")).await.is_err());
    }
    let asked = provider.0.load(Ordering::SeqCst);
    assert_eq!(asked as usize, name::UNKNOWN_NAMES_KEPT);
    for turn in 0..2 {
        for caller in 0..5 {
            let error = manager.access_token("tenant-past").await.unwrap_err();
            assert_eq!(error.kind(), ErrorKind::Transient, "{error:?}");
            assert_eq!(
                provider.0.load(Ordering::SeqCst),
                asked + turn + 1,
                "turn {turn}, caller {caller}: the provider asked once per cooldown"
            );
        }
        tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    }
    assert_eq!(manager.inner.sessions.len(), 0);
    assert!(manager.inner.unknown.len() <= name::UNKNOWN_NAMES_KEPT);
}

/// An issue that panics keeps no session for the name either: names asked for while the
/// provider's code panics cost no memory beyond the bounded set, and the panic is answered
/// again for the cooldown, not asked once per caller.
#[tokio::test(start_paused = true)]
async fn names_asked_for_while_an_issuing_provider_panics_leave_nothing_behind() {
    let provider = Arc::new(IssuerDown(AtomicU32::new(0), None, true));
    let manager = manager_issuing(&provider);
    for i in 0..3 * name::UNKNOWN_NAMES_KEPT {
        let error = manager
            .access_token(&format!("tenant-{i}"))
            .await
            .unwrap_err();
        assert!(
            matches!(error, Error::RefreshAborted(AbortReason::Panicked)),
            "{error:?}"
        );
    }
    assert_eq!(
        manager.inner.sessions.len(),
        0,
        "a session kept for every name asked for while the provider's code panicked"
    );
    let asked = provider.0.load(Ordering::SeqCst);
    for _ in 0..5 {
        assert!(manager.access_token("tenant-1").await.is_err());
    }
    assert_eq!(provider.0.load(Ordering::SeqCst), asked);
}

/// After `shutdown`, names without tokens asked of a provider that could issue them (it is
/// asked no more) keep no session either.
#[tokio::test(start_paused = true)]
async fn names_asked_for_after_shutdown_leave_nothing_behind() {
    let provider = Arc::new(IssuerDown::default());
    let manager = manager_issuing(&provider);
    manager.shutdown(Duration::from_secs(1)).await.unwrap();
    for i in 0..3 * name::UNKNOWN_NAMES_KEPT {
        let error = manager
            .access_token(&format!("tenant-{i}"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::ShuttingDown), "{error:?}");
    }
    assert_eq!(provider.0.load(Ordering::SeqCst), 0);
    assert_eq!(manager.inner.sessions.len(), 0);
}

/// Names asked of an issuing provider while the store cannot be read keep no session
/// either, and the provider is not asked (the store may hold their tokens).
#[tokio::test(start_paused = true)]
async fn names_asked_of_an_issuing_provider_while_the_store_fails_leave_nothing_behind() {
    let provider = Arc::new(IssuerDown::default());
    let store = Arc::new(Hooked::<FailingLoads>::default());
    store.failing.store(true, Ordering::SeqCst);
    let manager = manager_issuing_over(&provider, Some(store.clone()));
    for i in 0..3 * name::UNKNOWN_NAMES_KEPT {
        let error = manager
            .access_token(&format!("tenant-{i}"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Store(_)), "{error:?}");
    }
    assert_eq!(provider.0.load(Ordering::SeqCst), 0);
    assert_eq!(manager.inner.sessions.len(), 0);
}

/// A name without tokens whose issue gave way, again and again, to another process taking
/// the refresh lease over (that process issuing for the same name) is no failed issue: the
/// other process's save is served at the next call, not the lost lease answered again for
/// the cooldown without a look at the store.
#[tokio::test(start_paused = true)]
async fn an_issue_that_lost_its_lease_to_another_process_is_not_answered_again() {
    let provider = Arc::new(IssuerDown::default());
    let lost = Lease::HeldByOther {
        remaining: Duration::from_secs(30),
    };
    let store = Arc::new(ScriptedLeases::new(
        [
            Lease::TakenOver,
            lost.clone(),
            Lease::TakenOver,
            lost.clone(),
            Lease::TakenOver,
            lost,
            Lease::Acquired,
        ],
        Some((6, other_replicas_set("at-other"))),
    ));
    let manager = manager_issuing_over(&provider, Some(store.clone()));
    let error = manager.access_token("tenant").await.unwrap_err();
    assert!(
        matches!(error, Error::RefreshAborted(AbortReason::LeaseLost)),
        "{error:?}"
    );
    assert_eq!(store.requests.load(Ordering::SeqCst), 6);
    // The other process saved what it issued: the next call takes it.
    let token = manager.access_token("tenant").await.unwrap();
    assert_eq!(token.expose_secret(), "at-other");
    assert_eq!(provider.0.load(Ordering::SeqCst), 0);
}

/// Inserts and removes of names the store does not take (an outage, or a key it refuses
/// for good: a name longer than PostgreSQL's limit) leave no session behind: a service
/// that keys sessions by its users' ids would otherwise keep one in the map (with its
/// name, as long as the caller sent it) for every name tried while the store failed.
#[tokio::test(start_paused = true)]
async fn inserts_and_removes_the_store_refused_leave_nothing_behind() {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::<FailingLoads>::default());
    store.failing.store(true, Ordering::SeqCst);
    let manager = manager_over(&h, store.clone());
    for i in 0..1_000 {
        let error = manager
            .insert(&format!("user-{i}"), login(&h))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Store(_)), "{error:?}");
        let error = manager.remove(&format!("gone-{i}")).await.unwrap_err();
        assert!(matches!(error, Error::Store(_)), "{error:?}");
    }
    assert!(until(|| manager.inner.tasks.is_empty()).await);
    assert_eq!(
        manager.inner.sessions.len(),
        0,
        "a session kept for every name whose insert or remove the store refused"
    );
    // The store back, the names are served as any other.
    store.failing.store(false, Ordering::SeqCst);
    manager.insert("user-1", login(&h)).await.unwrap();
    let token = manager.access_token("user-1").await.unwrap();
    assert_eq!(token.expose_secret(), "at-login");
    manager.remove("gone-1").await.unwrap();
    assert_eq!(manager.inner.sessions.len(), 1);
}

/// An insert the store refused may have landed all the same (its call timed out): the
/// next call reads the store, even for a name a lookup found without tokens just before
/// (remembered among the unknown ones, which would answer "no tokens" from memory for a
/// cooldown, without the session the insert left in the map to read the store through).
#[tokio::test(start_paused = true)]
async fn a_refused_insert_of_a_name_found_without_tokens_reads_the_store_next() {
    let h = harness(|_| {});
    let shared = Arc::new(MemoryStore::new());
    let store = Arc::new(Hooked::over(shared.clone(), FailingLoads::default()));
    let manager = manager_over(&h, store.clone());
    assert!(matches!(
        manager.access_token("user").await,
        Err(Error::NoTokens(_))
    ));
    store.failing.store(true, Ordering::SeqCst);
    let error = manager.insert("user", login(&h)).await.unwrap_err();
    assert!(matches!(error, Error::Store(_)), "{error:?}");
    store.failing.store(false, Ordering::SeqCst);
    // The login reached the store all the same (here through another process's manager).
    let other = manager_over(&h, shared.clone());
    other.insert("user", login(&h)).await.unwrap();
    let token = manager.access_token("user").await;
    assert_eq!(
        token.map(|token| token.expose_secret().to_owned()).ok(),
        Some("at-login".to_owned()),
        "answered \"no tokens\" from memory after an insert of the name"
    );
}
