//! The manager's lifecycle: `shutdown` (twice, concurrently, with work in flight, with no
//! time at all), calls after it, a manager dropped without it, and managers used across
//! runtimes.

use super::faults::SavesFail;
use super::*;

/// A manager over a store whose saves fail while `saves_fail` is set, its background
/// writes waiting `backoff` (jittered to half of it at least), and `s` holding an expired
/// `at-0`/`rt-0`.
async fn over_failing_saves(
    h: &Harness,
    backoff: Duration,
) -> (
    Arc<MemoryStore>,
    Arc<Hooked<SavesFail, Arc<MemoryStore>>>,
    TokenManager<Arc<Fake>>,
) {
    let shared = Arc::new(MemoryStore::new());
    let store = Arc::new(Hooked::over(shared.clone(), SavesFail::default()));
    let manager = TokenManager::builder(h.fake.clone())
        .shared_store(store.clone())
        .client(NoTransport)
        .clock(Arc::new(h.clock))
        .config(
            ManagerConfig::default()
                .with_refresh_skew(Duration::from_secs(60), Duration::ZERO)
                .with_retry(RetryPolicy::never().with_backoff(backoff, backoff)),
        )
        .build()
        .unwrap();
    manager.insert("s", expired_pair(h)).await.unwrap();
    (shared, store, manager)
}

/// A rotated pair whose save failed is saved again in the background, a backoff (up to a
/// heartbeat) apart. Once `shutdown` begins it is tried at once, as a verdict recorded
/// later is: a shutdown whose deadline is shorter than that wait, after the store came
/// back, saves the pair and returns `Ok` rather than leave the process to exit with the
/// only copy of the pair in memory.
#[tokio::test(start_paused = true)]
async fn shutdown_tries_a_failed_save_at_once_and_saves_the_pair() {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let (shared, store, manager) = over_failing_saves(&h, Duration::from_secs(8)).await;
    store.saves_fail.store(true, Ordering::SeqCst);
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    // The background save's first try (after 4 to 8 s) fails too.
    tokio::time::advance(Duration::from_secs(9)).await;
    run_ready().await;
    store.saves_fail.store(false, Ordering::SeqCst);
    let started = tokio::time::Instant::now();
    let shut = manager.shutdown(Duration::from_millis(100)).await;
    assert!(shut.is_ok(), "{shut:?}");
    assert!(started.elapsed() < Duration::from_millis(100));
    let key = SessionKey::new("fake", "s");
    let stored = shared.load(&key).await.unwrap().unwrap();
    assert_eq!(refresh_of(&stored), "rt-1", "the rotated pair is saved");
    assert_eq!(
        shared.acquire_lease(&key, "another", HOUR).await.unwrap(),
        Lease::Acquired,
        "and the lease given back"
    );
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0"]);
}

/// Lets every task run (no time passes), a bounded number of turns.
async fn run_ready() {
    for _ in 0..200 {
        tokio::task::yield_now().await;
    }
}
