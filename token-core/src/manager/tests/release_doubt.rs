//! Lease releases whose outcome is in doubt: the manager may not assume that a release the
//! store answered with an error will never land, that a lease it left behind under an old
//! holder name holds nothing up, nor that an unconditional delete ends.

use std::sync::atomic::AtomicBool;

use super::*;

/// A manager of the harness's provider over `store`, store calls bounded by `timeout`.
fn timed_manager(
    h: &Harness,
    store: Arc<dyn TokenStore>,
    timeout: Duration,
) -> TokenManager<Arc<Fake>> {
    TokenManager::builder(h.fake.clone())
        .shared_store(store)
        .client(NoTransport)
        .clock(Arc::new(h.clock))
        .config(
            ManagerConfig::default()
                .with_refresh_skew(Duration::from_secs(60), Duration::ZERO)
                .with_retry(RetryPolicy::never())
                .with_store_timeout(timeout),
        )
        .build()
        .unwrap()
}

/// After a release that never answers, the lease it left under the process's old name is
/// the process's own, and nothing was spent under it that was not saved: the next refresh
/// must not wait for it to lapse and then watch a lease length for a "lapsed holder's save"
/// that cannot come (README: one that never answers "holds up nothing").
#[tokio::test(start_paused = true)]
async fn a_lease_release_that_never_answers_does_not_hold_up_the_next_refresh() {
    let h = harness(|_| {});
    let inner = Arc::new(MemoryStore::new());
    let store = Arc::new(DetachedReleases::over(&inner));
    let manager = timed_manager(&h, store.clone(), Duration::from_secs(2));
    seed_due(&h, &manager).await;
    // The first refresh's release never answers.
    let never = Arc::new(Semaphore::new(0));
    *store.gate.lock().unwrap() = Some(never.clone());
    assert_eq!(
        manager.refresh_now("s").await.unwrap().expose_secret(),
        "at-1"
    );
    let started = tokio::time::Instant::now();
    let second = tokio::time::timeout(Duration::from_secs(600), manager.refresh_now("s"))
        .await
        .expect("the second refresh ends");
    assert_eq!(second.unwrap().expose_secret(), "at-2");
    let took = started.elapsed();
    // A few store calls, each bounded by 2 s; not the rest of a lease (30 s) and then a
    // lease length's watch.
    assert!(
        took < Duration::from_secs(10),
        "the next refresh was held up {took:?} by this process's own old lease"
    );
    drop(never);
}

/// The lease a release that never answered left under this process's old name lapses
/// unreleased: this process's look for lapsed leases must not take it for a dead holder's
/// and rotate a healthy session nobody asked to refresh (another process's look still may,
/// between the lapse and this process's next look or grant).
#[tokio::test(start_paused = true)]
async fn a_lease_release_that_never_answers_sets_off_no_refresh_of_a_fresh_session() {
    let h = harness(|_| {});
    let inner = Arc::new(MemoryStore::new());
    let store = Arc::new(DetachedReleases::over(&inner).listing_lapsed());
    let manager = timed_manager(&h, store.clone(), Duration::from_secs(2));
    seed_due(&h, &manager).await;
    let never = Arc::new(Semaphore::new(0));
    *store.gate.lock().unwrap() = Some(never.clone());
    assert_eq!(
        manager.refresh_now("s").await.unwrap().expose_secret(),
        "at-1"
    );
    // at-1 lasts an hour; nobody calls for five minutes.
    for _ in 0..300 {
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(
        h.calls(),
        1,
        "a fresh session was refreshed by nobody's call"
    );
    drop(never);
}

/// A release the store answered with an outage error after the call went out (its own
/// deadline passed, the connection dropped mid-query) may still land: it must not take away
/// the lease of this process's next refresh, or another process takes it and spends the
/// same refresh token.
#[tokio::test(start_paused = true)]
async fn a_lease_release_answered_with_an_outage_error_takes_no_later_lease_away() {
    let gate = Arc::new(Semaphore::new(1));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    let inner = Arc::new(MemoryStore::new());
    let released = Arc::new(Semaphore::new(0));
    let store = Arc::new(DetachedReleases::over(&inner).answering_early());
    *store.gate.lock().unwrap() = Some(released.clone());
    let manager = manager_over(&h, store.clone());
    seed_due(&h, &manager).await;
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    // The provider answers no more calls until the test lets it.
    gate.acquire().await.unwrap().forget();
    let refreshing = tokio::spawn({
        let manager = manager.clone();
        async move { manager.refresh_now("s").await }
    });
    for _ in 0..1000 {
        if h.calls() >= 2 {
            break;
        }
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    h.until_calls(2).await;
    // The first release lands now, with the second refresh at the provider.
    released.add_permits(1);
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    let other = inner
        .acquire_lease(&SessionKey::new("fake", "s"), "other-process", HOUR)
        .await
        .unwrap();
    assert!(matches!(other, Lease::HeldByOther { .. }), "{other:?}");
    gate.add_permits(1);
    assert_eq!(refreshing.await.unwrap().unwrap().expose_secret(), "at-2");
}

/// A store that keeps no identity for an unreadable record (the trait's default
/// `unreadable`), whose unconditional delete never answers.
struct CorruptHungDelete {
    inner: Arc<MemoryStore>,
    corrupt: AtomicBool,
}

#[async_trait]
impl TokenStore for CorruptHungDelete {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        if self.corrupt.load(Ordering::SeqCst) {
            return Err(StoreError::Corrupt("damaged".into()));
        }
        self.inner.load(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        self.inner.save(key, record, expected).await
    }
    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        if expected.is_none() && self.corrupt.load(Ordering::SeqCst) {
            // A connection that died silently: no answer, ever.
            return std::future::pending().await;
        }
        self.inner.delete(key, expected).await
    }
}

/// An unconditional delete that never answers (its store's unreadable record cannot be
/// identified) wedges its session for good: every later store call for the key waits on
/// it first, and times out, even once the store is healthy again.
#[tokio::test(start_paused = true)]
#[ignore = "not fixed: later store calls for the key wait on the delete, and letting them pass could let the delete land after a newer save"]
async fn an_unconditional_delete_that_never_answers_does_not_wedge_the_session() {
    let h = harness(|_| {});
    let inner = Arc::new(MemoryStore::new());
    let store = Arc::new(CorruptHungDelete {
        inner: inner.clone(),
        corrupt: AtomicBool::new(true),
    });
    let manager = timed_manager(&h, store.clone(), Duration::from_secs(2));
    let login = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(h.clock.now() + HOUR);
    assert!(manager.insert("s", login.clone()).await.is_err());
    // An operator clears the damaged record; the store answers again.
    store.corrupt.store(false, Ordering::SeqCst);
    tokio::time::sleep(HOUR).await;
    let again = tokio::time::timeout(Duration::from_secs(600), manager.insert("s", login))
        .await
        .expect("the insert ends");
    assert!(again.is_ok(), "{again:?}");
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-0"
    );
}
