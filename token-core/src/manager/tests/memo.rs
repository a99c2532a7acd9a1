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
    crate::manager::memo::recall(inner.id, epoch, name, inner.clock.now_nanos_at_least()).unwrap()
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
    after_a_newer_read(false, false);
}

/// As above, both readers reading through `SessionHandle`s (which read as by name).
#[test]
fn a_read_after_another_threads_handle_read_of_a_newer_token_never_answers_an_older_one() {
    after_a_newer_read(true, true);
}

/// A by-name read after another thread's handle read of a newer token never answers an
/// older one: a handle reads what a by-name read does, never a set the map's entry does not
/// show yet (it read the session's own state, set a moment before the entry, and did).
#[test]
fn a_by_name_read_after_another_threads_handle_read_never_answers_an_older_token() {
    after_a_newer_read(true, false);
}

fn after_a_newer_read(first_by_handle: bool, second_by_handle: bool) {
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
        // Reads `s` by name or through its handle (never twice in a row: no memo of it).
        scope.spawn(move || {
            let (s, u) = (manager.session("s"), manager.session("u"));
            let mut reads = 0u64;
            while !done.load(Ordering::SeqCst) && reads < 100_000_000 {
                reads += 1;
                let found = match first_by_handle {
                    true => s.fresh_token(),
                    false => manager.fresh_token("s"),
                };
                seen.fetch_max(number(&found.unwrap()), Ordering::SeqCst);
                match first_by_handle {
                    true => u.fresh_token().unwrap(),
                    false => manager.fresh_token("u").unwrap(),
                };
            }
        });
        // Reads `s` again and again (from its memo), each time after reading `seen`: by
        // name, or through a handle of its own when the first reads through handles.
        scope.spawn(move || {
            let s = manager.session("s");
            let mut reads = 0u64;
            while !done.load(Ordering::SeqCst) && reads < 100_000_000 {
                reads += 1;
                let floor = seen.load(Ordering::SeqCst);
                let found = match second_by_handle {
                    true => s.fresh_token(),
                    false => manager.fresh_token("s"),
                };
                let n = number(&found.unwrap());
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

/// The memo holds a token until its thread reads another name (the module's promise): a
/// removed session's token, read twice before its remove, is let go of at the next fresh
/// read of another name, though that read takes no memo of its own.
#[tokio::test(start_paused = true)]
async fn a_read_of_another_name_lets_go_of_the_memo_of_a_removed_session() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    h.seed("t", HOUR).await;
    h.manager.access_token("s").await.unwrap();
    h.manager.access_token("s").await.unwrap();
    assert_eq!(crate::manager::memo::held().as_deref(), Some("s"));
    h.manager.remove("s").await.unwrap();
    h.manager.access_token("t").await.unwrap();
    assert_eq!(
        crate::manager::memo::held(),
        None,
        "the removed session's token is still held after a read of another name"
    );
}

/// Tasks on a multi-thread runtime move between its threads (and their memos) between
/// reads: what one task reads of a session never goes back, and never answers older than
/// an insert that returned before the read began.
#[test]
fn a_task_moving_between_threads_never_reads_an_older_token() {
    const INSERTS: u64 = 2_000;
    let manager = threaded_manager();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        manager.insert("s", fresh_set(0, HOUR)).await.unwrap();
        let inserted = Arc::new(AtomicU64::new(0));
        let readers: Vec<_> = (0..4)
            .map(|_| {
                let (manager, inserted) = (manager.clone(), inserted.clone());
                tokio::spawn(async move {
                    let mut last = 0;
                    // Bounded: ends with the inserts, or after this many rounds.
                    for _ in 0..1_000_000 {
                        let floor = inserted.load(Ordering::SeqCst);
                        for _ in 0..3 {
                            let n = number(&manager.access_token("s").await.unwrap());
                            assert!(n >= floor, "at-{n} read after at-{floor} was inserted");
                            assert!(n >= last, "at-{n} read after at-{last}");
                            last = n;
                        }
                        if floor == INSERTS {
                            break;
                        }
                        // Perhaps resumed on the other thread.
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        let writer = {
            let (manager, inserted) = (manager.clone(), inserted.clone());
            tokio::spawn(async move {
                for n in 1..=INSERTS {
                    manager.insert("s", fresh_set(n, HOUR)).await.unwrap();
                    inserted.store(n, Ordering::SeqCst);
                    tokio::task::yield_now().await;
                }
            })
        };
        writer.await.unwrap();
        for reader in readers {
            reader.await.unwrap();
        }
    });
}

/// What a by-name read from the destructor of a thread-local answers, with the memo's own
/// thread-local and the session map's (its guard's thread id) registered before that one
/// (`early`: so destroyed after it) or after it (destroyed before it). Each of three reads
/// is recorded.
fn read_while_destroyed(early: bool) -> Vec<String> {
    type Reading = (TokenManager<Arc<Fake>>, Arc<StdMutex<Vec<String>>>);
    struct ReadOnDrop(std::cell::RefCell<Option<Reading>>);
    impl Drop for ReadOnDrop {
        fn drop(&mut self) {
            if let Some((manager, read)) = self.0.borrow_mut().take() {
                for _ in 0..3 {
                    let token = manager.fresh_token("s");
                    let token = token.map_or("none".into(), |t| t.expose_secret().to_owned());
                    read.lock().unwrap().push(token);
                }
            }
        }
    }
    thread_local! {
        static READER: ReadOnDrop = const { ReadOnDrop(std::cell::RefCell::new(None)) };
    }
    let manager = threaded_manager();
    runtime().block_on(async {
        manager.insert("s", fresh_set(1, HOUR)).await.unwrap();
    });
    let read = Arc::new(StdMutex::new(Vec::new()));
    // Joined natively (not a scoped thread, whose join may come before its thread-locals'
    // destructors have run).
    let thread = {
        let (manager, read) = (manager.clone(), read.clone());
        std::thread::spawn(move || {
            let manager = &manager;
            let twice = || {
                manager.fresh_token("s").unwrap();
                manager.fresh_token("s").unwrap();
                assert_eq!(crate::manager::memo::held().as_deref(), Some("s"));
            };
            if early {
                twice();
            }
            READER.with(|reader| {
                *reader.0.borrow_mut() = Some((manager.clone(), read));
            });
            if !early {
                twice();
            }
            // A newer set: the memo (if still there as the reader reads) must not answer
            // at-1.
            runtime().block_on(async {
                manager.insert("s", fresh_set(2, HOUR)).await.unwrap();
            });
        })
    };
    thread.join().unwrap();
    Arc::try_unwrap(read).unwrap().into_inner().unwrap()
}

/// A by-name read from the destructor of a thread-local destroyed before the memo's: the
/// current token, not the memo's older one.
#[test]
fn a_read_from_a_thread_local_destroyed_before_the_memo_answers_the_current_token() {
    assert_eq!(read_while_destroyed(true), ["at-2", "at-2", "at-2"]);
}

/// The same read from one destroyed after the memo's and the session map's thread-locals:
/// the memo is passed over (it is gone), and so is the map's thread-local guard, whose
/// thread id is gone with its thread-local (pinned, it panicked, which aborted the process:
/// a panic in a thread-local's destructor); a guard of the read's own reads the map.
#[test]
fn a_read_from_a_thread_local_destroyed_after_the_map_s_answers_the_current_token() {
    assert_eq!(read_while_destroyed(false), ["at-2", "at-2", "at-2"]);
}

/// What a by-name read would answer through the session map alone (no memo).
fn mapped<P: Provider>(manager: &TokenManager<P>, name: &str) -> Option<AccessToken> {
    let inner = &*manager.inner;
    let at_least = inner.clock.now_nanos_at_least();
    let sessions = inner.sessions.pin();
    let fresh = sessions.get(name)?.fresh.as_ref()?;
    (at_least < fresh.until).then(|| fresh.token.clone())
}

/// A token the API refused while fresh, read twice by this thread first (its memo holds
/// it), and each way a refresh after the refusal can end (a verdict, a lost answer, a
/// panic, an answer already expired, a failure, none yet): after each, and after the
/// background work it leaves, a by-name read on this thread answers what the map alone
/// would (the memo adds no token of its own).
#[tokio::test(start_paused = true)]
async fn after_a_refusal_the_memo_answers_what_the_map_would_whatever_the_refresh_did() {
    let steps = [
        Step::Fail(invalid_grant()),
        Step::LoseAfterRotate,
        Step::Panic,
        Step::PanicAfterRotate,
        Step::AnswerExpired,
        Step::AnswerWithoutExpiry,
        Step::KeepRefreshToken,
        Step::Hang,
    ];
    for (i, step) in steps.into_iter().enumerate() {
        let h = harness(|_| {});
        h.seed("s", HOUR).await;
        let refused = h.manager.access_token("s").await.unwrap();
        h.manager.access_token("s").await.unwrap();
        assert!(recalled(&h.manager, "s").is_some(), "step {i}");
        h.fake.then(step);
        let manager = h.manager.clone();
        let rejected = tokio::spawn(async move {
            let _ = manager.refresh_rejected("s", &refused).await;
        });
        // Bounded: the refresh's tasks (a hung one too) get their turns.
        for _ in 0..50 {
            tokio::task::yield_now().await;
            for _ in 0..2 {
                let read = h.manager.fresh_token("s");
                assert_eq!(read, mapped(&h.manager, "s"), "step {i}");
            }
        }
        assert_eq!(h.calls(), 1, "step {i}: the refusal was refreshed");
        tokio::time::advance(Duration::from_secs(30)).await;
        for _ in 0..50 {
            tokio::task::yield_now().await;
        }
        for _ in 0..2 {
            assert_eq!(
                h.manager.fresh_token("s"),
                mapped(&h.manager, "s"),
                "step {i}"
            );
        }
        rejected.abort();
    }
}

/// A remove while a handle holds the session keeps its map entry (without a set): the
/// memo of the removed token does not answer, and an insert after it is read by name and
/// through the handle alike.
#[tokio::test(start_paused = true)]
async fn a_remove_while_a_handle_holds_the_session_is_not_answered_from_the_memo() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    let handle = h.manager.session("s");
    h.manager.access_token("s").await.unwrap();
    h.manager.access_token("s").await.unwrap();
    assert!(recalled(&h.manager, "s").is_some());
    h.manager.remove("s").await.unwrap();
    assert!(h.manager.inner.sessions.pin().get("s").is_some(), "held");
    assert!(matches!(
        h.manager.access_token("s").await,
        Err(Error::NoTokens(_))
    ));
    assert!(matches!(
        handle.access_token().await,
        Err(Error::NoTokens(_))
    ));
    h.manager.insert("s", fresh_set(5, HOUR)).await.unwrap();
    for _ in 0..3 {
        assert_eq!(number(&h.manager.access_token("s").await.unwrap()), 5);
        assert_eq!(number(&handle.access_token().await.unwrap()), 5);
    }
    h.manager.shutdown(Duration::from_secs(1)).await.unwrap();
    assert_eq!(number(&h.manager.access_token("s").await.unwrap()), 5);
}

/// Another process (a manager over the same store) refreshes the session and saves the
/// new set; this one, whose thread's memo holds the old token, finds it in the store after
/// the API refused the old one: by-name reads on this thread answer the adopted set at once.
#[tokio::test(start_paused = true)]
async fn a_set_adopted_from_the_store_is_read_at_once_by_the_thread_whose_memo_holds_the_old_one() {
    let (clock, fake, [one, other]) = managers_on_a_manual_clock();
    one.insert(
        "s",
        TokenSet::new(AccessToken::new("at-login"))
            .with_refresh_token(RefreshToken::new("rt-0"))
            .with_access_expires_at(clock.now() + HOUR * 2),
    )
    .await
    .unwrap();
    let old = one.access_token("s").await.unwrap();
    one.access_token("s").await.unwrap();
    assert_eq!(recalled(&one, "s").as_ref(), Some(&old));
    assert_eq!(other.access_token("s").await.unwrap(), old);
    let saved = other.refresh_now("s").await.unwrap();
    assert_ne!(saved, old);
    assert_eq!(
        one.access_token("s").await.unwrap(),
        old,
        "not looked up yet"
    );
    assert_eq!(one.refresh_rejected("s", &old).await.unwrap(), saved);
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        1,
        "adopted, not refreshed"
    );
    for _ in 0..3 {
        assert_eq!(one.access_token("s").await.unwrap(), saved);
    }
    assert_eq!(recalled(&one, "s").as_ref(), Some(&saved));
}

/// A handle reads and takes the same memo as a by-name read of its session's name: each
/// answers what the other read, until an insert, a refresh or a remove moves the epoch.
#[tokio::test(start_paused = true)]
async fn a_handle_shares_the_memo_of_its_name_and_sees_every_change() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    let handle = h.manager.session("s");
    for _ in 0..2 {
        assert_eq!(handle.access_token().await.unwrap().expose_secret(), "at-0");
    }
    assert_eq!(recalled(&h.manager, "s").unwrap().expose_secret(), "at-0");
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-0"
    );

    // The provider's live refresh token, so that the refresh below succeeds.
    let set = TokenSet::new(AccessToken::new("at-7"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(h.clock.now() + HOUR);
    h.manager.insert("s", set).await.unwrap();
    assert_eq!(handle.access_token().await.unwrap().expose_secret(), "at-7");
    assert_eq!(handle.access_token().await.unwrap().expose_secret(), "at-7");
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-7"
    );

    let rejected = handle.access_token().await.unwrap();
    assert_eq!(
        handle
            .refresh_rejected(&rejected)
            .await
            .unwrap()
            .expose_secret(),
        "at-1"
    );
    assert_eq!(handle.access_token().await.unwrap().expose_secret(), "at-1");

    h.manager.remove("s").await.unwrap();
    assert!(matches!(
        handle.access_token().await,
        Err(Error::NoTokens(_))
    ));
    assert!(matches!(
        h.manager.access_token("s").await,
        Err(Error::NoTokens(_))
    ));
    // Tokens inserted again reach the handle (it kept its session in the map).
    h.seed("s", HOUR).await;
    for _ in 0..2 {
        assert_eq!(handle.access_token().await.unwrap().expose_secret(), "at-0");
    }
}
