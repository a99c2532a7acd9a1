//! Callers that give up at every await point: each public call is polled N times (every
//! store call and provider call pending until the test lets one more through) and then
//! dropped, for N = 1, 2, ... until it completes. Afterwards the refresh another caller
//! waits for still answers it, no refresh token is presented twice, the lease is given
//! back, the session still refreshes, and what the manager serves is what the store holds.

use std::future::Future;
use std::pin::Pin;
use std::task::Poll;

use super::*;

/// Store calls wait for a permit of `gate` while `gated` is set.
struct Gated {
    gate: Arc<Semaphore>,
    gated: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl Hooks for Gated {
    async fn before(&self, _: Call) -> Result<(), StoreError> {
        if self.gated.load(Ordering::SeqCst) {
            self.gate.acquire().await.unwrap().forget();
        }
        Ok(())
    }
}

/// As [`Gated`], but each call reaches the store first and its answer then waits: a
/// write lands even if the caller is dropped while it waits (a database that committed
/// and has not answered yet).
struct AnswersLate(Gated);

#[async_trait]
impl Hooks for AnswersLate {
    async fn after(&self, call: Call) {
        let _ = self.0.before(call).await;
    }
}

/// A public call of the manager, made on session `s`.
#[derive(Clone, Copy, Debug)]
enum Op {
    AccessToken,
    HandleAccessToken,
    TokenSet,
    RefreshNow,
    RefreshRejected,
    Insert,
    InsertRefreshToken,
    Remove,
}

impl Op {
    fn call(
        self,
        manager: &TokenManager<Arc<Fake>>,
        clock: &TokioClock,
    ) -> Pin<Box<dyn Future<Output = Result<(), Error>> + Send + 'static>> {
        let manager = manager.clone();
        let now = clock.now();
        Box::pin(async move {
            match self {
                Op::AccessToken => manager.access_token("s").await.map(drop),
                Op::HandleAccessToken => manager.session("s").access_token().await.map(drop),
                Op::TokenSet => manager.token_set("s").await.map(drop),
                Op::RefreshNow => manager.refresh_now("s").await.map(drop),
                Op::RefreshRejected => manager
                    .refresh_rejected("s", &AccessToken::new("at-0"))
                    .await
                    .map(drop),
                Op::Insert => {
                    let login = TokenSet::new(AccessToken::new("at-login"))
                        .with_refresh_token(RefreshToken::new("rt-login"))
                        .with_access_expires_at(now + HOUR);
                    manager.insert("s", login).await
                }
                Op::InsertRefreshToken => manager
                    .insert_refresh_token("s", RefreshToken::new("rt-login"))
                    .await
                    .map(drop),
                Op::Remove => manager.remove("s").await,
            }
        })
    }
}

/// Polls `future` once.
async fn poll_once<F: Future + Unpin>(future: &mut F) -> Poll<F::Output> {
    std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *future).poll(cx))).await
}

/// Lets the other tasks run (no time passes).
async fn turns(n: usize) {
    for _ in 0..n {
        tokio::task::yield_now().await;
    }
}

/// One run: `op` dropped after `polls` polls, another caller waiting for the session's
/// refresh throughout. Whether `op` completed within them.
async fn dropped_after(op: Op, polls: usize, (fresh, late, other_first): Setup) -> bool {
    let provider_gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| {
        fake.reuse_window = Duration::ZERO;
        fake.gate = Some(provider_gate.clone());
    });
    let fake = h.fake.clone();
    let gate = Arc::new(Semaphore::new(0));
    let shared = Arc::new(MemoryStore::new());
    let gated = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let hooks = Gated {
        gate: gate.clone(),
        gated: gated.clone(),
    };
    let store: Arc<dyn TokenStore> = if late {
        Arc::new(Hooked::over(shared.clone(), AnswersLate(hooks)))
    } else {
        Arc::new(Hooked::over(shared.clone(), hooks))
    };
    let manager = manager_over(&h, store);
    let mut first = expired_pair(&h);
    if fresh {
        first.access_expires_at = Some(h.clock.now() + HOUR);
    }
    manager.insert("s", first).await.unwrap();
    gated.store(true, Ordering::SeqCst);
    // Another caller, whose refresh the dropped call may join (`other_first`), or which
    // joins the refresh the dropped call started.
    let spawn_other = || {
        let manager = manager.clone();
        tokio::spawn(async move { manager.access_token("s").await })
    };
    let mut other = other_first.then(spawn_other);
    turns(20).await;
    let mut call = op.call(&manager, &h.clock);
    let mut completed = false;
    for _ in 0..polls {
        let polled = poll_once(&mut call).await;
        other = other.or_else(|| Some(spawn_other()));
        if polled.is_ready() {
            completed = true;
            break;
        }
        // One more store call, and one more provider call, may go through.
        gate.add_permits(1);
        provider_gate.add_permits(1);
        turns(20).await;
    }
    drop(call);
    gated.store(false, Ordering::SeqCst);
    gate.add_permits(1000);
    provider_gate.add_permits(1000);
    let other = other.unwrap_or_else(spawn_other);
    let other = tokio::time::timeout(Duration::from_secs(60), other)
        .await
        .unwrap_or_else(|_| panic!("{op:?} dropped after {polls} polls: the other caller hangs"))
        .unwrap();
    match &other {
        Ok(_) | Err(Error::NoTokens(_)) => {}
        // The refresh token of an inserted login is not the provider's.
        Err(Error::ReauthRequired(_)) if matches!(op, Op::Insert | Op::InsertRefreshToken) => {}
        Err(error) => panic!("{op:?} dropped after {polls} polls: the other caller got {error:?}"),
    }
    for _ in 0..5 {
        tokio::time::advance(Duration::from_secs(1)).await;
        turns(100).await;
    }
    let context = format!(
        "{op:?} dropped after {polls} polls (fresh {fresh}, late {late}, other first {other_first}; other caller: {other:?}; presented {:?})",
        fake.presented.lock().unwrap()
    );
    let presented = fake.presented.lock().unwrap().clone();
    let mut once = presented.clone();
    once.sort();
    once.dedup();
    assert_eq!(
        presented.len(),
        once.len(),
        "{context}: a token presented twice"
    );
    let key = SessionKey::new("fake", "s");
    assert_eq!(
        shared.acquire_lease(&key, "another", HOUR).await.unwrap(),
        Lease::Acquired,
        "{context}: the lease is given back"
    );
    shared.release_lease(&key, "another").await.unwrap();
    // What the manager serves is what the store holds, and the session still refreshes.
    let stored = shared.load(&key).await.unwrap();
    let stored_access = stored
        .as_ref()
        .and_then(|record| record.value.tokens())
        .map(|set| set.access_token.expose_secret().to_owned());
    let served = manager.access_token("s").await;
    match (&served, &stored_access) {
        (Ok(token), Some(access)) => assert_eq!(token.expose_secret(), access, "{context}"),
        (Err(Error::NoTokens(_)), None) => {}
        (Err(Error::ReauthRequired(_)), _) if matches!(op, Op::Insert | Op::InsertRefreshToken) => {
        }
        _ => panic!("{context}: served {served:?}, stored {stored:?}"),
    }
    if served.is_ok() {
        let refreshed = manager.refresh_now("s").await;
        assert!(
            refreshed.is_ok() || matches!(op, Op::Insert | Op::InsertRefreshToken),
            "{context}: then {refreshed:?}"
        );
    }
    completed
}

/// Whether the session's access token is still fresh, whether the store writes before it
/// answers late, and whether the other caller starts the refresh.
type Setup = (bool, bool, bool);

async fn every_drop_point(op: Op) {
    for fresh in [false, true] {
        for late in [false, true] {
            for other_first in [false, true] {
                every_drop_point_from(op, (fresh, late, other_first)).await;
            }
        }
    }
}

async fn every_drop_point_from(op: Op, setup: Setup) {
    for polls in 1..100 {
        if dropped_after(op, polls, setup).await {
            return;
        }
    }
    panic!("{op:?} did not complete within 100 polls");
}

#[tokio::test(start_paused = true)]
async fn access_token_dropped_at_any_await_loses_nothing() {
    every_drop_point(Op::AccessToken).await;
}

#[tokio::test(start_paused = true)]
async fn a_handles_access_token_dropped_at_any_await_loses_nothing() {
    every_drop_point(Op::HandleAccessToken).await;
}

#[tokio::test(start_paused = true)]
async fn token_set_dropped_at_any_await_loses_nothing() {
    every_drop_point(Op::TokenSet).await;
}

#[tokio::test(start_paused = true)]
async fn refresh_now_dropped_at_any_await_loses_nothing() {
    every_drop_point(Op::RefreshNow).await;
}

#[tokio::test(start_paused = true)]
async fn refresh_rejected_dropped_at_any_await_loses_nothing() {
    every_drop_point(Op::RefreshRejected).await;
}

#[tokio::test(start_paused = true)]
async fn insert_dropped_at_any_await_loses_nothing() {
    every_drop_point(Op::Insert).await;
}

#[tokio::test(start_paused = true)]
async fn insert_refresh_token_dropped_at_any_await_loses_nothing() {
    every_drop_point(Op::InsertRefreshToken).await;
}

#[tokio::test(start_paused = true)]
async fn remove_dropped_at_any_await_loses_nothing() {
    every_drop_point(Op::Remove).await;
}

/// `shutdown` waits for the writes it began: an insert whose caller gave up while its store
/// write was under way is one of them. Once `shutdown` returns `Ok`, the store holds the
/// login (a process exiting then does not lose it).
#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_an_insert_given_up_while_it_writes() {
    let h = harness(|_| {});
    let gate = Arc::new(Semaphore::new(0));
    let gated = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let shared = Arc::new(MemoryStore::new());
    let hooks = Gated {
        gate: gate.clone(),
        gated: gated.clone(),
    };
    let manager = manager_over(&h, Arc::new(Hooked::over(shared.clone(), hooks)));
    let login = TokenSet::new(AccessToken::new("at-login"))
        .with_refresh_token(RefreshToken::new("rt-login"))
        .with_access_expires_at(h.clock.now() + HOUR);
    let mut call = Box::pin(manager.insert("s", login));
    for _ in 0..3 {
        assert!(poll_once(&mut call).await.is_pending());
        turns(20).await;
    }
    drop(call);
    let shutdown = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.shutdown(Duration::from_secs(60)).await })
    };
    turns(20).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown returned with the insert's write under way"
    );
    gated.store(false, Ordering::SeqCst);
    gate.add_permits(1000);
    shutdown.await.unwrap().unwrap();
    let stored = shared.load(&SessionKey::new("fake", "s")).await.unwrap();
    let access = stored
        .as_ref()
        .and_then(|record| record.value.tokens())
        .map(|set| set.access_token.expose_secret().to_owned());
    assert_eq!(access.as_deref(), Some("at-login"));
}

/// An insert or a remove waiting for its turn as `shutdown` begins (an insert of the
/// session is writing) is under way too: `shutdown` waits for it, and returns `Ok` only once
/// the store holds what it wrote. Otherwise the first insert's end let `shutdown` return
/// while the second write was about to start, and a process exiting then lost it (a login,
/// or a logout).
#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_an_insert_or_remove_waiting_for_its_turn() {
    for remove in [false, true] {
        a_write_waiting_for_its_turn_is_waited_for(remove).await;
    }
}

async fn a_write_waiting_for_its_turn_is_waited_for(remove: bool) {
    let h = harness(|_| {});
    let gate = Arc::new(Semaphore::new(0));
    let gated = Arc::new(std::sync::atomic::AtomicBool::new(true));
    let shared = Arc::new(MemoryStore::new());
    let hooks = Gated {
        gate: gate.clone(),
        gated: gated.clone(),
    };
    let manager = manager_over(&h, Arc::new(Hooked::over(shared.clone(), hooks)));
    let insert = |n: u32| {
        let manager = manager.clone();
        let login = TokenSet::new(AccessToken::new(format!("at-login-{n}")))
            .with_refresh_token(RefreshToken::new(format!("rt-login-{n}")))
            .with_access_expires_at(h.clock.now() + HOUR);
        tokio::spawn(async move { manager.insert("s", login).await })
    };
    let first = insert(1);
    turns(20).await;
    let second = if remove {
        let manager = manager.clone();
        tokio::spawn(async move { manager.remove("s").await })
    } else {
        insert(2)
    };
    turns(20).await;
    let shutdown = {
        let manager = manager.clone();
        tokio::spawn(async move { manager.shutdown(Duration::from_secs(60)).await })
    };
    turns(20).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown returned with writes under way"
    );
    // The first insert's store calls, one at a time, until it is done: the second write
    // then has its turn, and its first store call waits.
    while !first.is_finished() {
        gate.add_permits(1);
        turns(20).await;
    }
    first.await.unwrap().unwrap();
    turns(20).await;
    assert!(
        !second.is_finished(),
        "the second write's store call is held"
    );
    assert!(
        !shutdown.is_finished(),
        "shutdown returned with a write (remove: {remove}) waiting for its turn as it began"
    );
    gated.store(false, Ordering::SeqCst);
    gate.add_permits(1000);
    shutdown.await.unwrap().unwrap();
    let stored = shared.load(&SessionKey::new("fake", "s")).await.unwrap();
    let access = stored
        .as_ref()
        .and_then(|record| record.value.tokens())
        .map(|set| set.access_token.expose_secret().to_owned());
    let expected = (!remove).then_some("at-login-2");
    assert_eq!(access.as_deref(), expected, "remove: {remove}");
    second.await.unwrap().unwrap();
}
