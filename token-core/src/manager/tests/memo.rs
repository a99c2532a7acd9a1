//! Each thread's memo of its last by-name read (`memo`): it answers a repeated read, and
//! never answers once the map entry it copied has changed (insert, refresh, remove), for
//! another manager, or past the token's freshness.

use std::sync::atomic::AtomicU64;

use super::*;

/// `at-N` as N.
fn number(token: &AccessToken) -> u64 {
    token.expose_secret()[3..].parse().unwrap()
}

fn fresh_set(n: u64, valid_for: Duration) -> TokenSet {
    TokenSet::new(AccessToken::new(format!("at-{n}")))
        .with_refresh_token(RefreshToken::new(format!("rt-{n}")))
        .with_access_expires_at(OffsetDateTime::now_utc() + valid_for)
}

/// What this thread's memo answers for `name` read by `manager` now.
fn recalled<P: Provider>(manager: &TokenManager<P>, name: &str) -> Option<AccessToken> {
    let inner = &*manager.inner;
    let epoch = inner.epoch.now();
    crate::manager::memo::recall(inner.id, epoch, name, inner.clock.now_nanos_at_least())
}

/// A manager on the system clock, for tests whose threads each run their own runtime.
fn threaded_manager() -> TokenManager<Arc<Fake>> {
    let provider = Arc::new(Fake::new(Arc::new(SystemClock)));
    TokenManager::builder(provider)
        .client(NoTransport)
        .build()
        .unwrap()
}

/// A runtime of the calling thread alone.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_repeated_read_is_answered_from_the_memo_until_an_insert() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    assert!(recalled(&h.manager, "s").is_none(), "no read yet");
    let token = h.manager.access_token("s").await.unwrap();
    assert_eq!(token.expose_secret(), "at-0");
    assert!(
        recalled(&h.manager, "s").is_none(),
        "taken on a second read in a row"
    );
    h.manager.access_token("s").await.unwrap();
    // The memo answers the next read (the same token).
    assert_eq!(recalled(&h.manager, "s").unwrap().expose_secret(), "at-0");
    assert!(recalled(&h.manager, "t").is_none(), "another name");

    let set = TokenSet::new(AccessToken::new("at-9"))
        .with_refresh_token(RefreshToken::new("rt-9"))
        .with_access_expires_at(h.clock.now() + HOUR);
    h.manager.insert("s", set).await.unwrap();
    assert!(
        recalled(&h.manager, "s").is_none(),
        "the insert moved the epoch"
    );
    let token = h.manager.access_token("s").await.unwrap();
    assert_eq!(token.expose_secret(), "at-9");
    let handle = h.manager.session("s");
    assert_eq!(handle.access_token().await.unwrap().expose_secret(), "at-9");
}

#[tokio::test(start_paused = true)]
async fn reads_of_another_name_each_time_take_no_memo() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    h.seed("t", HOUR).await;
    for _ in 0..3 {
        h.manager.access_token("s").await.unwrap();
        h.manager.access_token("t").await.unwrap();
        assert!(recalled(&h.manager, "s").is_none());
        assert!(recalled(&h.manager, "t").is_none());
    }
}

#[tokio::test(start_paused = true)]
async fn a_removed_session_is_not_answered_from_the_memo() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    h.manager.access_token("s").await.unwrap();
    h.manager.access_token("s").await.unwrap();
    h.manager.remove("s").await.unwrap();
    assert!(recalled(&h.manager, "s").is_none());
    assert!(matches!(
        h.manager.access_token("s").await,
        Err(Error::NoTokens(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_refresh_by_another_task_is_read_at_once_by_a_thread_whose_memo_holds_the_old_token() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    h.manager.access_token("s").await.unwrap();
    let old = h.manager.access_token("s").await.unwrap();
    assert_eq!(recalled(&h.manager, "s").as_ref(), Some(&old));
    // The API refused the still-fresh token: another task refreshes it.
    let manager = h.manager.clone();
    let refreshed = tokio::spawn(async move { manager.refresh_rejected("s", &old).await })
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refreshed.expose_secret(), "at-1");
    assert!(
        recalled(&h.manager, "s").is_none(),
        "the publication moved the epoch"
    );
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(h.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_memo_does_not_answer_past_the_tokens_freshness() {
    let h = harness(|_| {});
    h.seed("s", Duration::from_secs(600)).await;
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-0"
    );
    // Past the refresh instant and the expiry: the read refreshes first.
    tokio::time::advance(Duration::from_secs(601)).await;
    assert!(recalled(&h.manager, "s").is_none());
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(h.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn two_managers_with_the_same_session_name_each_answer_their_own_token() {
    let a = harness(|_| {});
    let b = harness(|_| {});
    a.seed("s", HOUR).await;
    let set = TokenSet::new(AccessToken::new("at-b"))
        .with_refresh_token(RefreshToken::new("rt-b"))
        .with_access_expires_at(b.clock.now() + HOUR);
    b.manager.insert("s", set).await.unwrap();
    // Each read twice in a row (the second takes a memo), the other manager's next: the
    // two managers are at the same epoch (one insert each).
    assert_eq!(a.manager.inner.epoch.now(), b.manager.inner.epoch.now());
    for _ in 0..3 {
        for _ in 0..2 {
            assert_eq!(
                a.manager.access_token("s").await.unwrap().expose_secret(),
                "at-0"
            );
        }
        for _ in 0..2 {
            assert_eq!(
                b.manager.access_token("s").await.unwrap().expose_secret(),
                "at-b"
            );
        }
    }
    // A manager dropped and another built (perhaps at the same address) with the same
    // session name: the memo of the first does not answer for it.
    let epoch = a.manager.inner.epoch.now();
    drop(a);
    let c = harness(|_| {});
    assert_eq!(c.manager.inner.epoch.now(), 0);
    let set = TokenSet::new(AccessToken::new("at-c"))
        .with_refresh_token(RefreshToken::new("rt-c"))
        .with_access_expires_at(c.clock.now() + HOUR);
    c.manager.insert("s", set).await.unwrap();
    assert!(epoch > 0);
    assert_eq!(
        c.manager.access_token("s").await.unwrap().expose_secret(),
        "at-c"
    );
}

/// Writers on one thread insert `at-1`, `at-2`, ... into a few sessions while readers on
/// other threads read them by name: a read that begins after an insert returned never
/// answers an older token (from its thread's memo or anywhere), and reads never go back.
#[test]
fn readers_on_other_threads_never_answer_a_token_older_than_an_insert_that_returned() {
    const SESSIONS: usize = 3;
    const INSERTS: u64 = 300;
    let manager = threaded_manager();
    let inserted: Vec<AtomicU64> = (0..SESSIONS).map(|_| AtomicU64::new(0)).collect();
    let done = AtomicBool::new(false);
    runtime().block_on(async {
        for (i, _) in inserted.iter().enumerate() {
            manager
                .insert(&format!("s{i}"), fresh_set(0, HOUR))
                .await
                .unwrap();
        }
    });
    std::thread::scope(|scope| {
        for reader in 0..2 {
            let (manager, inserted, done) = (&manager, &inserted, &done);
            scope.spawn(move || {
                runtime().block_on(async move {
                    let mut last = [0u64; SESSIONS];
                    let mut reads = 0u64;
                    // Bounded: the writer ends after INSERTS rounds.
                    while !done.load(Ordering::SeqCst) && reads < 10_000_000 {
                        reads += 1;
                        let i = (reads as usize + reader) % SESSIONS;
                        // Read the same session several times in a row (memo hits).
                        for _ in 0..4 {
                            let floor = inserted[i].load(Ordering::SeqCst);
                            let token = manager.access_token(&format!("s{i}")).await.unwrap();
                            let n = number(&token);
                            assert!(
                                n >= floor,
                                "s{i}: at-{n} read after at-{floor} was inserted"
                            );
                            assert!(n >= last[i], "s{i}: at-{n} read after at-{}", last[i]);
                            last[i] = n;
                        }
                    }
                });
            });
        }
        runtime().block_on(async {
            for n in 1..=INSERTS {
                for (i, inserted) in inserted.iter().enumerate() {
                    manager
                        .insert(&format!("s{i}"), fresh_set(n, HOUR))
                        .await
                        .unwrap();
                    inserted.store(n, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            }
        });
        done.store(true, Ordering::SeqCst);
    });
}

/// A writer inserts `at-1`, `at-2`, ... into one session; a reader that never takes a memo
/// of it (it reads another name in between) reads it through the map and says what it
/// found; a reader that does take one reads it after hearing that. A read that begins
/// after another read found `at-n` in the map must not answer older than `at-n`: through
/// the map it could not (the map's own ordering), and the memo must not either, also in
/// the moment between a change of the entry and the move of the epoch after it.
#[test]
fn a_read_after_another_threads_read_of_a_newer_token_never_answers_an_older_one() {
    const INSERTS: u64 = 200_000;
    let manager = threaded_manager();
    runtime().block_on(async {
        manager.insert("s", fresh_set(0, HOUR)).await.unwrap();
        manager.insert("u", fresh_set(0, HOUR)).await.unwrap();
    });
    // The newest token the map-reading thread found, and how often the memo answered
    // older than that.
    let seen = AtomicU64::new(0);
    let older = AtomicU64::new(0);
    let done = AtomicBool::new(false);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    std::thread::scope(|scope| {
        let (manager, seen, older, done) = (&manager, &seen, &older, &done);
        // Reads `s` through the map (never twice in a row: no memo of it).
        scope.spawn(move || {
            let mut reads = 0u64;
            while !done.load(Ordering::SeqCst) && reads < 100_000_000 {
                reads += 1;
                let n = number(&manager.fresh_token("s").unwrap());
                seen.fetch_max(n, Ordering::SeqCst);
                manager.fresh_token("u").unwrap();
            }
        });
        // Reads `s` again and again (from its memo), each time after reading `seen`.
        scope.spawn(move || {
            let mut reads = 0u64;
            while !done.load(Ordering::SeqCst) && reads < 100_000_000 {
                reads += 1;
                let floor = seen.load(Ordering::SeqCst);
                let n = number(&manager.fresh_token("s").unwrap());
                if n < floor {
                    older.fetch_add(1, Ordering::SeqCst);
                }
            }
        });
        runtime().block_on(async {
            for n in 1..=INSERTS {
                manager.insert("s", fresh_set(n, HOUR)).await.unwrap();
                if std::time::Instant::now() > deadline || older.load(Ordering::SeqCst) > 0 {
                    break;
                }
            }
        });
        done.store(true, Ordering::SeqCst);
    });
    assert_eq!(
        older.load(Ordering::SeqCst),
        0,
        "reads answered a token older than one another thread had read before they began"
    );
}
