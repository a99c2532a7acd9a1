//! Stores whose answers are odd or hostile: conflicts that name the very version a save
//! expected, versions that go back, saves that land while their loads fail. Whatever they
//! answer, a pair the provider rotated to is never given up for the one it replaced.

use super::*;

/// Answers the first `storm` saves with a conflict that names the very version the save
/// expected (a store whose compare-and-swap is wrongly refused, and writes nothing), then
/// lets the saves through.
struct ConflictStorm {
    storm: AtomicU32,
}

#[async_trait]
impl Hooks for ConflictStorm {
    async fn instead_of_save(
        &self,
        expected: Option<Version>,
    ) -> Option<Result<Version, StoreError>> {
        let left = self.storm.load(Ordering::SeqCst);
        if expected.is_none() || left == 0 {
            return None;
        }
        self.storm.store(left - 1, Ordering::SeqCst);
        Some(Err(StoreError::Conflict {
            expected,
            found: expected,
        }))
    }
}

/// A refreshed set whose saves are answered a conflict while the store still holds the
/// version the set replaces: that record's refresh token is spent, so the set is kept and
/// saved over it, never given up for it (with no reuse window, the old token presented
/// again would be refused, a false re-auth).
#[tokio::test(start_paused = true)]
async fn a_conflict_naming_the_version_the_save_expected_never_gives_up_the_new_pair() {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let (fake, clock) = (h.fake.clone(), h.clock);
    let store = Arc::new(Hooked::new(ConflictStorm {
        storm: AtomicU32::new(0),
    }));
    let manager = manager_of(&h, fake.clone(), store.clone());
    let mut events = manager.subscribe();
    let set = TokenSet::new(AccessToken::new("at-0")).with_refresh_token(RefreshToken::new("rt-0"));
    manager
        .insert("s", set.with_access_expires_at(clock.now()))
        .await
        .unwrap();
    store.storm.store(5, Ordering::SeqCst);

    let answered = manager.access_token("s").await.unwrap();
    assert_eq!(answered.expose_secret(), "at-1");
    // Every later call is answered from the new pair, and the store ends with it.
    for _ in 0..20 {
        tokio::time::advance(Duration::from_secs(30)).await;
        let token = manager.access_token("s").await.unwrap();
        assert_eq!(token.expose_secret(), "at-1");
    }
    assert_eq!(*fake.presented.lock().unwrap(), ["rt-0"]);
    let key = SessionKey::new("fake", "s");
    let stored = store.inner.load(&key).await.unwrap();
    assert_eq!(stored.as_ref().map(refresh_of), Some("rt-1"));
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event, Event::ReauthRequired(_)), "{event:?}");
    }
}

/// Fails every `load` (an outage of reads alone: a replica gone, a table another release
/// locked) while `failing` is set; every other call goes through.
#[derive(Default)]
struct LoadsFail {
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Hooks for LoadsFail {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        match call == Call::Load && self.failing.load(Ordering::SeqCst) {
            true => Err(StoreError::Backend {
                message: "reads are down".into(),
                source: None,
            }),
            false => Ok(()),
        }
    }
}

/// A store whose saves succeed but whose loads then fail: a refresh that takes the lease
/// cannot re-read the store, so it spends nothing (another process may have refreshed) and
/// gives the lease back; no verdict, and once reads come back the stored token is presented,
/// once.
#[tokio::test(start_paused = true)]
async fn a_store_that_saves_but_cannot_load_spends_nothing_and_gives_nothing_up() {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let store = Arc::new(Hooked::new(LoadsFail::default()));
    let manager = manager_of(&h, h.fake.clone(), store.clone());
    let mut events = manager.subscribe();
    manager.insert("s", expired_pair(&h)).await.unwrap();
    store.failing.store(true, Ordering::SeqCst);
    for _ in 0..3 {
        let failed = manager.access_token("s").await;
        assert!(
            matches!(&failed, Err(Error::Store(StoreError::Backend { .. }))),
            "{failed:?}"
        );
        tokio::time::advance(Duration::from_secs(60)).await;
    }
    assert_eq!(h.calls(), 0, "no token is spent without a re-read");
    let key = SessionKey::new("fake", "s");
    let probe = store.inner.acquire_lease(&key, "probe", HOUR).await;
    assert_eq!(probe.unwrap(), Lease::Acquired, "the lease was given back");
    store.inner.release_lease(&key, "probe").await.unwrap();

    store.failing.store(false, Ordering::SeqCst);
    let token = manager.access_token("s").await.unwrap();
    assert_eq!(token.expose_secret(), "at-1");
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0"]);
    let stored = store.inner.load(&key).await.unwrap();
    assert_eq!(stored.as_ref().map(refresh_of), Some("rt-1"));
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event, Event::ReauthRequired(_)), "{event:?}");
    }
}

/// A `FileStore` whose directory is moved away while a refresh is at the provider, a file
/// left at its path: the new pair cannot be saved there, so it is kept in memory (served,
/// never given up for the spent one) and saved once the directory is back at its path;
/// nothing is presented twice and no re-auth is declared.
#[tokio::test(start_paused = true)]
async fn a_file_store_whose_directory_became_a_file_mid_refresh_keeps_the_pair_and_saves_it_later()
{
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| {
        fake.reuse_window = Duration::ZERO;
        fake.gate = Some(gate.clone());
    });
    let tmp = tempfile::TempDir::new().unwrap();
    let (dir, aside) = (tmp.path().join("store"), tmp.path().join("aside"));
    let store = Arc::new(crate::store::FileStore::open(&dir).unwrap());
    let manager = manager_of(&h, h.fake.clone(), store.clone());
    let mut events = manager.subscribe();
    manager.insert("s", expired_pair(&h)).await.unwrap();
    let asking = tokio::spawn({
        let manager = manager.clone();
        async move { manager.access_token("s").await }
    });
    h.until_calls(1).await;
    std::fs::rename(&dir, &aside).unwrap();
    std::fs::write(&dir, b"not a directory").unwrap();
    gate.add_permits(100);
    let answered = asking.await.unwrap().unwrap();
    assert_eq!(answered.expose_secret(), "at-1");
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_secs(20)).await;
        let token = manager.access_token("s").await.unwrap();
        assert_eq!(token.expose_secret(), "at-1", "the unsaved pair is served");
    }
    // The directory comes back (the same one): the background save lands there.
    std::fs::remove_file(&dir).unwrap();
    std::fs::rename(&aside, &dir).unwrap();
    let key = SessionKey::new("fake", "s");
    let mut saved = None;
    for _ in 0..60 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        saved = store.load(&key).await.unwrap();
        if saved.as_ref().map(refresh_of) == Some("rt-1") {
            break;
        }
    }
    assert_eq!(saved.as_ref().map(refresh_of), Some("rt-1"));
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0"]);
    manager.shutdown(Duration::from_secs(60)).await.unwrap();
    let mut failed = 0;
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event, Event::ReauthRequired(_)), "{event:?}");
        failed += usize::from(matches!(event, Event::PersistFailed { .. }));
    }
    assert!(failed > 0, "the save failed while the directory was away");
}

/// Reads that may lag the store's writes (a replica behind its primary): while `lagging`
/// is set, the next `load` answers the record `stale` holds instead of the current one.
#[derive(Default)]
struct LaggingReads {
    lagging: std::sync::atomic::AtomicBool,
    stale: StdMutex<Option<Versioned<StoredRecord>>>,
}

impl Hooks for LaggingReads {
    fn instead_of_load(&self) -> Option<Option<Versioned<StoredRecord>>> {
        let lagging = self.lagging.swap(false, Ordering::SeqCst);
        lagging.then(|| self.stale.lock().unwrap().clone())
    }
}

/// Another process inserts a login while a refresh is at the provider, and the refresh's
/// save, refused, reads back the record it replaced from a store whose reads lag: that
/// record is not taken for the newer write (its refresh token was just spent). The save is
/// tried again, finds the login, and the login, which had the last word, is served; no
/// token is presented twice and no re-auth is declared.
#[tokio::test(start_paused = true)]
async fn a_lagging_read_after_a_refused_save_does_not_bring_back_the_spent_pair() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| {
        fake.reuse_window = Duration::ZERO;
        fake.gate = Some(gate.clone());
    });
    let store = Arc::new(Hooked::new(LaggingReads::default()));
    let manager = manager_of(&h, h.fake.clone(), store.clone());
    let mut events = manager.subscribe();
    manager.insert("s", expired_pair(&h)).await.unwrap();
    let key = SessionKey::new("fake", "s");
    let base = store.inner.load(&key).await.unwrap().unwrap();
    let asking = tokio::spawn({
        let manager = manager.clone();
        async move { manager.access_token("s").await }
    });
    h.until_calls(1).await;
    // Another process's login lands; the next read still shows the record it replaced.
    let login = TokenSet::<NoExtras>::new(AccessToken::new("at-login"))
        .with_refresh_token(RefreshToken::new("rt-login"))
        .with_access_expires_at(h.clock.now() + HOUR);
    let record = StoredRecord::Tokens(login.to_stored().unwrap());
    let saved = store.inner.save(&key, &record, Some(base.version)).await;
    saved.unwrap();
    *store.stale.lock().unwrap() = Some(base);
    store.lagging.store(true, Ordering::SeqCst);
    gate.add_permits(100);
    let answered = asking.await.unwrap().unwrap();
    assert_eq!(answered.expose_secret(), "at-login");
    // The provider's live grant is the login's.
    *h.fake.live.lock().unwrap() = "rt-login".into();
    tokio::time::sleep(2 * HOUR).await;
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-2",
        "the login is refreshed in turn"
    );
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0", "rt-login"]);
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event, Event::ReauthRequired(_)), "{event:?}");
    }
}

/// The provider refuses the refresh token (the grant was revoked) and the saves of its
/// verdict are answered a conflict that names the very version they expected, while the
/// store still holds the refused record (a store that refused the compare-and-swap wrongly,
/// or answered one whose write it lost): `storm` of them. The verdict is saved over that
/// record again (or, past a few tries, kept here and recorded in the background once the
/// store takes it) and reported once; the refused token is never presented again.
async fn a_verdict_whose_saves_conflict_at_the_refused_version(storm: u32) {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let store = Arc::new(Hooked::new(ConflictStorm {
        storm: AtomicU32::new(0),
    }));
    let manager = manager_of(&h, h.fake.clone(), store.clone());
    let mut events = manager.subscribe();
    manager.insert("s", expired_pair(&h)).await.unwrap();
    h.fake.live.lock().unwrap().clear();
    store.storm.store(storm, Ordering::SeqCst);
    for _ in 0..3 {
        let refused = manager.access_token("s").await;
        assert!(
            matches!(&refused, Err(Error::ReauthRequired(_))),
            "{refused:?}"
        );
        // Past the failure cooldown: the next call looks at the store again.
        tokio::time::sleep(Duration::from_secs(120)).await;
    }
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0"]);
    // The storm ends (if it has not): the verdict is in the store, on the paused clock
    // within a few minutes at most.
    store.storm.store(0, Ordering::SeqCst);
    let key = SessionKey::new("fake", "s");
    let mut stored = None;
    for _ in 0..60 {
        stored = store
            .inner
            .load(&key)
            .await
            .unwrap()
            .map(|found| found.value);
        if matches!(stored, Some(StoredRecord::Reauth(_))) {
            break;
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
    assert!(
        matches!(stored, Some(StoredRecord::Reauth(_))),
        "the verdict is recorded"
    );
    let refused = manager.access_token("s").await;
    assert!(
        matches!(&refused, Err(Error::ReauthRequired(_))),
        "{refused:?}"
    );
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0"]);
    let mut verdicts = 0;
    while let Ok(event) = events.try_recv() {
        verdicts += usize::from(matches!(event, Event::ReauthRequired(_)));
    }
    assert_eq!(verdicts, 1, "the verdict is reported once");
}

/// Two conflicts: the third save records the verdict.
#[tokio::test(start_paused = true)]
async fn a_verdict_save_answered_a_conflict_at_the_refused_version_is_saved_again() {
    a_verdict_whose_saves_conflict_at_the_refused_version(2).await;
}

/// Conflicts past the tries of the refresh: the verdict stands here and is recorded in the
/// background once the store takes it.
#[tokio::test(start_paused = true)]
async fn a_verdict_whose_saves_keep_conflicting_at_the_refused_version_is_recorded_later() {
    a_verdict_whose_saves_conflict_at_the_refused_version(1000).await;
}
