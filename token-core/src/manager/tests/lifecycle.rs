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

/// Polls `future` once, outside any async context, with a waker that does nothing.
fn poll_once_here<F: std::future::Future>(future: F) -> std::task::Poll<F::Output> {
    let mut future = std::pin::pin!(future);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    future.as_mut().poll(&mut cx)
}

/// A provider whose `name()`, once armed, runs `shutdown` to its end (polled once, its
/// deadline zero) where it is called: inside the start of a refresh, after the manager
/// looked whether it is closing.
struct ShutsDownInName {
    fake: Arc<Fake>,
    armed: std::sync::atomic::AtomicBool,
    shutdown: std::sync::OnceLock<Box<dyn Fn() -> Result<(), Error> + Send + Sync>>,
    answered: StdMutex<Option<Result<(), Error>>>,
}

#[async_trait]
impl Provider for Arc<ShutsDownInName> {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        if self.armed.swap(false, Ordering::SeqCst) {
            let answer = (self.shutdown.get().unwrap())();
            *self.answered.lock().unwrap() = Some(answer);
        }
        "fake"
    }

    async fn refresh(&self, cx: &CallContext, current: &TokenSet) -> Result<TokenSet, Error> {
        self.fake.refresh(cx, current).await
    }
}

/// A refresh that starts while `shutdown` runs either is waited for by it, or does not
/// start: `shutdown` never returns `Ok` with a refresh about to call the provider (whose
/// rotated pair the exiting process would then lose).
#[tokio::test(start_paused = true)]
async fn a_refresh_starting_as_shutdown_runs_is_waited_for_or_never_starts() {
    let _logs = capture_logs();
    let h = harness(|_| {});
    let provider = Arc::new(ShutsDownInName {
        fake: h.fake.clone(),
        armed: false.into(),
        shutdown: std::sync::OnceLock::new(),
        answered: StdMutex::new(None),
    });
    let manager = manager_of(&h, provider.clone(), h.store.clone());
    manager.insert("s", expired_pair(&h)).await.unwrap();
    let closer = manager.clone();
    let _ = provider.shutdown.set(Box::new(move || {
        match poll_once_here(closer.shutdown(Duration::ZERO)) {
            std::task::Poll::Ready(answer) => answer,
            std::task::Poll::Pending => panic!("shutdown(0) is ready at once"),
        }
    }));
    provider.armed.store(true, Ordering::SeqCst);
    let answer = manager.access_token("s").await;
    let shut = provider.answered.lock().unwrap().take();
    let Some(shut) = shut else {
        panic!("the refresh named its provider before it was spawned: {answer:?}");
    };
    run_ready().await;
    match shut {
        // `shutdown` found nothing running: nothing may run after it.
        Ok(()) => {
            assert!(matches!(answer, Err(Error::ShuttingDown)), "{answer:?}");
            assert_eq!(
                h.calls(),
                0,
                "the provider was called after shutdown returned Ok"
            );
        }
        Err(error) => assert!(matches!(error, Error::ShutdownTimedOut { .. })),
    }
}

/// Outside any runtime (a future polled by another executor, or by hand), a call that
/// would start a refresh, write through a store, or wait for a deadline is a typed error,
/// not a panic; a fresh token is still served.
#[test]
fn calls_outside_a_runtime_are_typed_errors() {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .unwrap();
    let (h, shared) = runtime.block_on(async {
        let h = harness(|_| {});
        h.seed("fresh", HOUR).await;
        h.seed("expired", Duration::ZERO).await;
        (h, Arc::new(Hooked::new(SavesFail::default())))
    });
    let through_store = runtime.block_on(async { manager_over(&h, shared.clone()) });
    drop(runtime);
    let fresh = poll_once_here(h.manager.access_token("fresh"));
    assert!(matches!(fresh, std::task::Poll::Ready(Ok(_))), "{fresh:?}");
    let outside = |answer: std::task::Poll<Result<(), Error>>| match answer {
        std::task::Poll::Ready(Err(Error::Config(message))) => {
            assert!(message.contains("runtime"), "{message}")
        }
        other => panic!("{other:?}"),
    };
    let expired = poll_once_here(h.manager.access_token("expired"));
    outside(expired.map(|r| r.map(drop)));
    outside(poll_once_here(through_store.insert("s", login(&h))));
    outside(poll_once_here(through_store.remove("s")));
    outside(poll_once_here(h.manager.shutdown(HOUR)));
    assert_eq!(h.calls(), 0);
}
