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
