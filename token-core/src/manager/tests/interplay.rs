//! How today's safety nets meet each other: writes that run to the end after their caller
//! gave up, a verdict recorded later, an answer saved as it came after a panic.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use super::*;

/// A store with no faults: every call answers at once.
struct Plain;

impl Hooks for Plain {}

/// Polls `future` once.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

fn login(h: &Harness, name: &str) -> TokenSet {
    TokenSet::new(AccessToken::new(format!("at-{name}")))
        .with_refresh_token(RefreshToken::new(format!("rt-{name}")))
        .with_access_expires_at(h.clock.now() + HOUR)
}

/// The access token stored for `s`.
async fn stored_access(store: &MemoryStore) -> String {
    let key = SessionKey::new("fake", "s");
    let found = store.load(&key).await.unwrap().unwrap();
    found
        .value
        .tokens()
        .unwrap()
        .access_token
        .expose_secret()
        .to_owned()
}

/// A caller that gives up on an insert (or a remove) and then inserts again: the set it
/// inserted last is what the session keeps, in the store and in memory, even on a runtime
/// whose worker runs the task spawned last first (tokio's multi-thread scheduler does).
#[test]
fn a_write_given_up_does_not_land_after_the_next_insert_of_its_caller() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    for remove_first in [false, true] {
        runtime.block_on(async move {
            // On the worker, where spawned tasks go to its own queue.
            tokio::spawn(async move {
                let h = harness(|_| {});
                let shared = Arc::new(MemoryStore::new());
                let store: Arc<dyn TokenStore> = Arc::new(Hooked::over(shared.clone(), Plain));
                let manager = manager_over(&h, store);
                manager.insert("s", login(&h, "0")).await.unwrap();
                let mut first = match remove_first {
                    true => Box::pin(manager.remove("s")),
                    false => Box::pin(manager.insert("s", login(&h, "a")))
                        as Pin<Box<dyn Future<Output = _> + Send>>,
                };
                let polled = poll_once(&mut first).await;
                assert!(polled.is_pending(), "the write waits for its task");
                drop(first);
                manager.insert("s", login(&h, "b")).await.unwrap();
                // Whatever ran meanwhile, the given-up write finishes within these turns.
                for _ in 0..100 {
                    tokio::task::yield_now().await;
                }
                let context = format!("remove first: {remove_first}");
                assert_eq!(stored_access(&shared).await, "at-b", "{context}");
                assert_eq!(
                    manager.access_token("s").await.unwrap().expose_secret(),
                    "at-b",
                    "{context}"
                );
            })
            .await
            .unwrap();
        });
    }
}

/// A verdict the store failed to record is recorded later at the refused version only:
/// a login another process stored meanwhile is kept, and `shutdown` (which tries the
/// verdict at once) is not held until its deadline by a verdict with nothing left to
/// record over. Without the login, `shutdown` records it.
#[tokio::test(start_paused = true)]
async fn a_verdict_recorded_later_never_overwrites_a_login_and_shutdown_ends_at_once() {
    use super::faults::over_failing_saves;
    for login_meanwhile in [true, false] {
        let h = harness(|fake| fake.reuse_window = Duration::ZERO);
        let (shared, store, manager) = over_failing_saves(&h, RetryPolicy::never()).await;
        // The provider rotated past rt-0 elsewhere: it refuses it.
        *h.fake.live.lock().unwrap() = "rt-other".into();
        store.saves_fail.store(true, Ordering::SeqCst);
        let error = manager.access_token("s").await.unwrap_err();
        assert!(matches!(error, Error::ReauthRequired(_)), "{error:?}");
        if login_meanwhile {
            let other = manager_over(&h, shared.clone());
            other.insert("s", login(&h, "login")).await.unwrap();
        }
        store.saves_fail.store(false, Ordering::SeqCst);
        let started = tokio::time::Instant::now();
        manager.shutdown(HOUR).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{login_meanwhile}"
        );
        let key = SessionKey::new("fake", "s");
        let record = shared.load(&key).await.unwrap().unwrap().value;
        match login_meanwhile {
            true => assert_eq!(stored_access(&shared).await, "at-login"),
            false => assert!(matches!(record, StoredRecord::Reauth(_)), "{record:?}"),
        }
    }
}

/// A refresh that an insert overtook while it waited for its lease, and that then finds in
/// the store a set another process wrote after the insert, cannot publish it (the insert
/// won): it answers its callers with what the process holds, not with a set the process
/// does not serve (its next caller would get an older token than the one before).
#[tokio::test(start_paused = true)]
async fn a_refresh_overtaken_by_an_insert_answers_what_the_process_then_serves() {
    let h = harness(|_| {});
    let shared = Arc::new(MemoryStore::new());
    let store = Arc::new(Hooked::over(shared.clone(), HeldCalls::default()));
    let a = manager_over(&h, store.clone());
    let b = manager_over(&h, shared.clone());
    a.insert("s", expired_pair(&h)).await.unwrap();
    let acquire = store.hold(Call::Acquire);
    let caller = tokio::spawn({
        let a = a.clone();
        async move { a.access_token("s").await }
    });
    store.until_reached(1).await;
    // A's insert overtakes its refresh; B then inserts another login.
    a.insert("s", login(&h, "a")).await.unwrap();
    b.insert("s", login(&h, "b")).await.unwrap();
    acquire.add_permits(1);
    let answered = caller.await.unwrap().unwrap();
    let served = a.access_token("s").await.unwrap();
    assert_eq!(
        answered.expose_secret(),
        served.expose_secret(),
        "the refresh's caller and the next one"
    );
    assert_eq!(h.calls(), 0);
}
