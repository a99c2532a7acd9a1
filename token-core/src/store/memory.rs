//! The in-process store: the default, and the one to use when one process owns its sessions.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use std::time::Duration;

use super::{Lease, SessionKey, StoredRecord, TokenStore, Unreadable, Version, Versioned};
use crate::error::StoreError;
use crate::token_set::StoredTokenSet;

/// Keeps token sets in memory. Cheap, and gone when the process ends. Managers sharing one
/// `MemoryStore` (through `Arc`) also share its refresh leases, so they refresh a session
/// one at a time as managers of several processes do over a shared store. A lease that
/// lapsed unreleased goes with its session's record; a live one stays for its holder.
///
/// ```
/// # tokio_test_block_on(async {
/// use token_core::store::{MemoryStore, SessionKey, TokenStore};
/// use token_core::{secret::AccessToken, token_set::TokenSet};
/// let store = MemoryStore::new();
/// let key = SessionKey::new("vaultist", "customer-1");
/// let set = TokenSet::<serde_json::Value>::new(AccessToken::new("at")).to_stored().unwrap().into();
/// let v1 = store.save(&key, &set, None).await.unwrap();
/// assert!(store.save(&key, &set, None).await.is_err()); // not at the expected version
/// store.save(&key, &set, Some(v1)).await.unwrap();
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
#[derive(Debug, Default)]
pub struct MemoryStore {
    records: Mutex<Records>,
    // One counter for all keys: versions then never repeat, even after a delete.
    next_version: AtomicU64,
    /// Refresh leases, for several managers sharing this store in one process.
    leases: Mutex<HashMap<SessionKey, (String, tokio::time::Instant)>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many sessions are stored.
    pub fn len(&self) -> usize {
        let providers = self.lock();
        providers
            .0
            .values()
            .map(|sessions| sessions.lock().len())
            .sum()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Records> {
        lock(&self.records)
    }

    /// The records of `provider`, if it has a table.
    fn sessions(&self, provider: &str) -> Option<Arc<Sessions>> {
        self.lock().0.get(provider).cloned()
    }

    /// The records of `provider`, its table made if it has none.
    fn sessions_or_new(&self, provider: &Arc<str>) -> Arc<Sessions> {
        let mut providers = self.lock();
        match providers.0.get(&**provider) {
            Some(sessions) => sessions.clone(),
            None => providers.0.entry(provider.clone()).or_default().clone(),
        }
    }

    /// Drops the table of `provider` if it is empty and nothing holds it (a store bound to
    /// a manager keeps its provider's table).
    fn forget_if_empty(&self, provider: &str) {
        let mut providers = self.lock();
        let unused = providers
            .0
            .get(provider)
            .is_some_and(|sessions| Arc::strong_count(sessions) == 1 && sessions.lock().is_empty());
        if unused {
            providers.0.remove(provider);
        }
    }

    /// This store as the manager of `provider` writes to it: that provider's table at hand.
    pub(crate) fn bind(self: &Arc<Self>, provider: &Arc<str>) -> BoundMemoryStore {
        BoundMemoryStore {
            sessions: self.sessions_or_new(provider),
            provider: provider.clone(),
            store: self.clone(),
        }
    }

    /// `save` of a token set the caller keeps too (a `TokenManager`'s current state): the
    /// store keeps the same `Arc`, not a copy, and records its version in it.
    pub(crate) fn save_shared(
        &self,
        key: &SessionKey,
        set: Arc<dyn SharedSet>,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        self.save_entry(key, expected, Held::shared(set))
    }

    /// Writes `set` whatever is stored (the application's own tokens, which have the last
    /// word); returns the new version. (A manager writes through its bound store's
    /// [`put_own`](BoundMemoryStore::put_own).)
    #[cfg(test)]
    pub(crate) fn put_shared(&self, key: &SessionKey, set: Arc<dyn SharedSet>) -> (Version, LetGo) {
        let sessions = self.sessions_or_new(key.provider_shared());
        sessions.put(key.session_shared(), &self.next_version, Held::shared(set))
    }

    /// Forgets `key`'s lease if it lapsed, as its record goes: a lease outlives its session
    /// only while its holder may still be refreshing it (as in the other stores).
    fn forget_lapsed_lease(&self, key: &SessionKey) {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if leases
            .get(key)
            .is_some_and(|(_, until)| *until <= tokio::time::Instant::now())
        {
            leases.remove(key);
        }
    }

    /// Writes the record `make` makes at the new version, if the stored one is at
    /// `expected`.
    fn save_entry(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
        make: impl FnOnce(Version) -> Held,
    ) -> Result<Version, StoreError> {
        let sessions = match (self.sessions(key.provider()), expected) {
            (Some(sessions), _) => sessions,
            (None, None) => self.sessions_or_new(key.provider_shared()),
            (None, Some(_)) => {
                return Err(StoreError::Conflict {
                    expected,
                    found: None,
                });
            }
        };
        sessions.save(key, expected, &self.next_version, make)
    }
}

/// A [`MemoryStore`] bound to the one provider whose manager writes to it: its table of
/// that provider's records at hand, so an insert neither looks the provider up nor takes
/// the store-wide lock. Keys of another provider go through the store.
pub(crate) struct BoundMemoryStore {
    sessions: Arc<Sessions>,
    provider: Arc<str>,
    store: Arc<MemoryStore>,
}

impl BoundMemoryStore {
    /// The bound table, if `key` is of its provider.
    fn sessions(&self, key: &SessionKey) -> Option<&Sessions> {
        let ours =
            Arc::ptr_eq(&self.provider, key.provider_shared()) || *self.provider == *key.provider();
        ours.then_some(&*self.sessions)
    }

    /// As [`MemoryStore::save_shared`].
    pub(crate) fn save_shared(
        &self,
        key: &SessionKey,
        set: Arc<dyn SharedSet>,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        match self.sessions(key) {
            Some(sessions) => {
                sessions.save(key, expected, &self.store.next_version, Held::shared(set))
            }
            None => self.store.save_shared(key, set, expected),
        }
    }

    /// Writes `set` as the record of the bound provider's session `name`, whatever is
    /// stored (a manager's `insert`: the application's own tokens have the last word);
    /// returns the new version. No key to make, no provider to compare.
    pub(crate) fn put_own(&self, name: &Arc<str>, set: Arc<dyn SharedSet>) -> (Version, LetGo) {
        (self.sessions).put(name, &self.store.next_version, Held::shared(set))
    }

    /// Deletes the record of the bound provider's session `name`, whatever its version (a
    /// manager's `remove`), and its lease if that lapsed.
    pub(crate) fn remove_own(&self, name: &Arc<str>) -> LetGo {
        let removed = self.sessions.lock().remove(&**name);
        if removed.is_some() {
            let key = SessionKey::new(self.provider.clone(), name.clone());
            self.store.forget_lapsed_lease(&key);
        }
        LetGo(removed)
    }

    /// Whether the record of `key` is `set` itself (kept shared, not a copy).
    #[cfg(test)]
    pub(crate) fn holds(&self, key: &SessionKey, set: &StoredTokenSet) -> bool {
        self.store.holds(key, set)
    }
}

#[cfg(test)]
impl MemoryStore {
    /// Whether the record of `key` is `set` itself (kept shared, not a copy).
    pub(crate) fn holds(&self, key: &SessionKey, set: &StoredTokenSet) -> bool {
        let Some(sessions) = self.sessions(key.provider()) else {
            return false;
        };
        let sessions = sessions.lock();
        sessions.get(key.session()).is_some_and(|held| match held {
            Held::Shared(held) => held.tokens().is_some_and(|held| std::ptr::eq(held, set)),
            Held::Owned(_) => false,
        })
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding the lock cannot leave a record half-written
    // (records are replaced whole), so the data stays good.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn next_version(counter: &AtomicU64) -> Version {
    counter.fetch_add(1, Ordering::Relaxed) + 1
}

/// The records, by provider and then by session name: a slot holds one name, not a whole
/// [`SessionKey`] (every key of one provider shares its provider name), and a save or a
/// load hashes the session's name only. Keyed with foldhash (seeded per process). Each
/// provider's table has a lock of its own: a manager bound to its provider's table writes
/// without the store-wide lock.
#[derive(Debug, Default)]
struct Records(HashMap<Arc<str>, Arc<Sessions>, Hasher>);

type Hasher = foldhash::quality::RandomState;

/// One provider's records, by session name.
#[derive(Debug, Default)]
struct Sessions(Mutex<HashMap<Arc<str>, Held, Hasher>>);

impl Sessions {
    fn lock(&self) -> MutexGuard<'_, HashMap<Arc<str>, Held, Hasher>> {
        lock(&self.0)
    }

    /// Writes `held` under `key`, replacing what is there; returns its version.
    fn put(
        &self,
        name: &Arc<str>,
        counter: &AtomicU64,
        held: impl FnOnce(Version) -> Held,
    ) -> (Version, LetGo) {
        let mut sessions = self.lock();
        let version = next_version(counter);
        let held = held(version);
        let replaced = match sessions.get_mut(&**name) {
            Some(found) => Some(std::mem::replace(found, held)),
            None => {
                sessions.insert(name.clone(), held);
                None
            }
        };
        (version, LetGo(replaced))
    }

    /// As [`put`](Self::put), if the stored record is at `expected`.
    fn save(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
        counter: &AtomicU64,
        make: impl FnOnce(Version) -> Held,
    ) -> Result<Version, StoreError> {
        let mut sessions = self.lock();
        let found = sessions.get_mut(key.session());
        let found_version = found.as_ref().map(|held| held.version());
        if found_version != expected {
            return Err(StoreError::Conflict {
                expected,
                found: found_version,
            });
        }
        let version = next_version(counter);
        let held = make(version);
        match found {
            Some(found) => *found = held,
            None => {
                sessions.insert(key.session_shared().clone(), held);
            }
        }
        Ok(version)
    }
}

/// A token set that a store keeps shared with its owner: a `TokenManager`'s current state,
/// which holds its set and its version inline, is kept whole (one allocation for both),
/// not copied.
pub(crate) trait SharedSet: Send + Sync + 'static {
    /// The set; `None` only for a value that holds none, which is never given to a store.
    fn tokens(&self) -> Option<&StoredTokenSet>;

    /// The version it was last saved at ([`saved_at`](Self::saved_at)).
    fn version(&self) -> Version;

    /// Records that the store saves it at `version`: called by the store, under its lock,
    /// as it saves it.
    fn saved_at(&self, version: Version);
}

/// A stored record and its version (a slot of the table holds the name and this, no more).
/// A record the store let go of (replaced or removed), handed to the caller to drop once it
/// holds no lock: a manager's shared set may be the last holder of a state whose extras are
/// the application's type, whose `Drop` may call back into the manager.
#[must_use = "dropped here, it is dropped under the caller's locks"]
pub(crate) struct LetGo(#[allow(dead_code, reason = "held only to be dropped later")] Option<Held>);

enum Held {
    /// A set shared with its owner, which keeps the version.
    Shared(Arc<dyn SharedSet>),
    /// A record written through [`TokenStore::save`], and its version.
    Owned(Box<(Version, StoredRecord)>),
}

impl Held {
    /// `set`, shared, recording the version it is saved at.
    fn shared(set: Arc<dyn SharedSet>) -> impl FnOnce(Version) -> Held {
        move |version| {
            set.saved_at(version);
            Held::Shared(set)
        }
    }

    fn version(&self) -> Version {
        match self {
            Self::Shared(set) => set.version(),
            Self::Owned(owned) => owned.0,
        }
    }

    fn to_record(&self) -> Result<StoredRecord, StoreError> {
        match self {
            Self::Shared(set) => set
                .tokens()
                .map(|set| StoredRecord::Tokens(set.clone()))
                .ok_or_else(|| StoreError::Corrupt("a shared record without tokens".into())),
            Self::Owned(owned) => Ok(owned.1.clone()),
        }
    }
}

impl std::fmt::Debug for Held {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (version, record) = match self {
            Self::Shared(set) => (set.version(), set.tokens().map(|set| set as &dyn Debug)),
            Self::Owned(owned) => (owned.0, Some(&owned.1 as &dyn Debug)),
        };
        f.debug_struct("Held")
            .field("version", &version)
            .field("record", &record)
            .finish()
    }
}

#[async_trait]
impl TokenStore for MemoryStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        let Some(sessions) = self.sessions(key.provider()) else {
            return Ok(None);
        };
        let sessions = sessions.lock();
        let Some(held) = sessions.get(key.session()) else {
            return Ok(None);
        };
        Ok(Some(Versioned {
            version: held.version(),
            value: held.to_record()?,
        }))
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        self.save_entry(key, expected, |version| {
            Held::Owned(Box::new((version, record.clone())))
        })
    }

    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        let Some(sessions) = self.sessions(key.provider()) else {
            return Ok(false);
        };
        let mut records = sessions.lock();
        match (records.get(key.session()).map(Held::version), expected) {
            (None, _) => Ok(false),
            (Some(found), Some(expected)) if found != expected => Err(StoreError::Conflict {
                expected: Some(expected),
                found: Some(found),
            }),
            _ => {
                records.remove(key.session());
                drop(records);
                drop(sessions);
                self.forget_if_empty(key.provider());
                self.forget_lapsed_lease(key);
                Ok(true)
            }
        }
    }

    async fn unreadable(&self, key: &SessionKey) -> Result<Option<Unreadable>, StoreError> {
        let Some(sessions) = self.sessions(key.provider()) else {
            return Ok(None);
        };
        let sessions = sessions.lock();
        Ok((sessions.get(key.session()))
            .filter(|held| held.to_record().is_err())
            .map(|held| Unreadable::at_version(held.version())))
    }

    async fn delete_unreadable(
        &self,
        key: &SessionKey,
        seen: &Unreadable,
    ) -> Result<bool, StoreError> {
        // A version is never reused, and the record at one never changes.
        let Some(version) = seen.version() else {
            return Ok(false);
        };
        match self.delete(key, Some(version)).await {
            Err(StoreError::Conflict { .. }) => Ok(false),
            deleted => deleted,
        }
    }

    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let now = tokio::time::Instant::now();
        let until = now
            .checked_add(ttl)
            .unwrap_or(now + Duration::from_secs(86_400 * 365));
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let lease = match leases.get(key) {
            Some((other, expires)) if other != holder && *expires > now => {
                return Ok(Lease::HeldByOther {
                    remaining: *expires - now,
                });
            }
            Some((other, _)) if other != holder => Lease::TakenOver,
            _ => Lease::Acquired,
        };
        leases.insert(key.clone(), (holder.to_owned(), until));
        Ok(lease)
    }

    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        if leases.get(key).is_some_and(|(held, _)| held == holder) {
            leases.remove(key);
        }
        Ok(())
    }

    async fn lapsed_leases(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        let now = tokio::time::Instant::now();
        let leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        let mut lapsed: Vec<_> = (leases.iter())
            .filter(|(key, (_, expires))| key.provider() == provider && *expires <= now)
            .map(|(key, (_, expires))| (*expires, key.session()))
            .collect();
        lapsed.sort_unstable_by(|a, b| b.cmp(a));
        Ok(lapsed
            .into_iter()
            .take(super::LAPSED_LEASES_LISTED)
            .map(|(_, session)| session.to_owned())
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{secret::AccessToken, token_set::TokenSet};

    fn set(token: &str) -> StoredRecord {
        TokenSet::<serde_json::Value>::new(AccessToken::new(token))
            .to_stored()
            .unwrap()
            .into()
    }

    #[tokio::test]
    async fn one_session_name_under_two_providers_is_two_records() {
        let store = MemoryStore::new();
        let (a, b) = (SessionKey::new("p", "s"), SessionKey::new("q", "s"));
        let va = store.save(&a, &set("a"), None).await.unwrap();
        let vb = store.save(&b, &set("b"), None).await.unwrap();
        assert_eq!(store.len(), 2);
        let token = |found: Option<Versioned<StoredRecord>>| {
            let found = found.unwrap();
            let token = found
                .value
                .tokens()
                .unwrap()
                .access_token
                .expose_secret()
                .to_owned();
            (found.version, token)
        };
        assert_eq!(token(store.load(&a).await.unwrap()), (va, "a".to_owned()));
        assert_eq!(token(store.load(&b).await.unwrap()), (vb, "b".to_owned()));
        assert!(store.delete(&a, Some(va)).await.unwrap());
        assert!(store.load(&a).await.unwrap().is_none());
        assert_eq!(token(store.load(&b).await.unwrap()), (vb, "b".to_owned()));
        assert_eq!(store.len(), 1);
        // A provider whose last session went can be written to again.
        store.save(&a, &set("c"), None).await.unwrap();
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn save_is_compare_and_swap() {
        let store = MemoryStore::new();
        let key = SessionKey::new("p", "s");
        let v1 = store.save(&key, &set("a"), None).await.unwrap();
        let err = store.save(&key, &set("b"), None).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict { expected: None, found: Some(v) } if v == v1));
        let v2 = store.save(&key, &set("b"), Some(v1)).await.unwrap();
        assert!(v2 > v1);
        assert!(
            store.save(&key, &set("c"), Some(v1)).await.is_err(),
            "stale version must lose"
        );
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(
            (
                loaded.version,
                loaded.value.tokens().unwrap().access_token.expose_secret()
            ),
            (v2, "b")
        );
    }

    /// A shared record holding no tokens cannot be read back (a manager never gives one):
    /// it is removed only at the version read.
    #[tokio::test]
    async fn an_unreadable_record_is_removed_only_while_it_is_the_one_read() {
        struct Empty(AtomicU64);
        impl SharedSet for Empty {
            fn tokens(&self) -> Option<&StoredTokenSet> {
                None
            }
            fn version(&self) -> Version {
                self.0.load(Ordering::SeqCst)
            }
            fn saved_at(&self, version: Version) {
                self.0.store(version, Ordering::SeqCst);
            }
        }
        let store = MemoryStore::new();
        let key = SessionKey::new("p", "s");
        assert_eq!(store.unreadable(&key).await.unwrap(), None);
        let empty = || Arc::new(Empty(AtomicU64::new(0))) as Arc<dyn SharedSet>;
        let (first, _) = store.put_shared(&key, empty());
        assert!(matches!(
            store.load(&key).await,
            Err(StoreError::Corrupt(_))
        ));
        let seen = store.unreadable(&key).await.unwrap().unwrap();
        assert_eq!(seen, Unreadable::at_version(first));
        // Replaced since (readable or not): the delete of what was read keeps it.
        let (second, _) = store.put_shared(&key, empty());
        assert!(!store.delete_unreadable(&key, &seen).await.unwrap());
        let login = store.save(&key, &set("login"), Some(second)).await.unwrap();
        assert_eq!(store.unreadable(&key).await.unwrap(), None);
        assert!(!store.delete_unreadable(&key, &seen).await.unwrap());
        assert_eq!(store.load(&key).await.unwrap().unwrap().version, login);
        let _ = store.put_shared(&key, empty());
        let now = store.unreadable(&key).await.unwrap().unwrap();
        assert!(store.delete_unreadable(&key, &now).await.unwrap());
        assert!(store.load(&key).await.unwrap().is_none());
    }

    /// A set its owner shares with the store, which records the version in it.
    struct Shared(StoredTokenSet, AtomicU64);

    impl SharedSet for Shared {
        fn tokens(&self) -> Option<&StoredTokenSet> {
            Some(&self.0)
        }

        fn version(&self) -> Version {
            self.1.load(Ordering::Relaxed)
        }

        fn saved_at(&self, version: Version) {
            self.1.store(version, Ordering::Relaxed);
        }
    }

    fn shared(token: &str) -> Arc<Shared> {
        let set = TokenSet::<serde_json::Value>::new(AccessToken::new(token))
            .to_stored()
            .unwrap();
        Arc::new(Shared(set, AtomicU64::new(0)))
    }

    #[tokio::test(start_paused = true)]
    async fn a_deleted_session_leaves_no_lapsed_lease_and_keeps_a_live_one() {
        let store = Arc::new(MemoryStore::new());
        // The removes a manager makes go through its bound store.
        let bound = store.bind(&Arc::from("p"));
        let ttl = Duration::from_secs(30);
        // Sessions made and removed for good, each of whose refresh lease lapsed unreleased
        // (its refresh dropped with its runtime): nothing is left of them.
        for i in 0..100 {
            let key = SessionKey::new("p", format!("gone-{i}"));
            store.save(&key, &set("a"), None).await.unwrap();
            store.acquire_lease(&key, "dead", ttl).await.unwrap();
        }
        tokio::time::advance(ttl).await;
        for i in 0..100 {
            let key = SessionKey::new("p", format!("gone-{i}"));
            if i % 2 == 0 {
                assert!(store.delete(&key, None).await.unwrap());
            } else {
                let _ = bound.remove_own(key.session_shared());
            }
        }
        assert!(store.is_empty());
        assert_eq!(
            store.leases.lock().unwrap().len(),
            0,
            "lapsed leases of deleted sessions stay for good"
        );
        // A live lease outlives the delete: its holder may still be refreshing.
        let live = SessionKey::new("p", "live");
        store.save(&live, &set("a"), None).await.unwrap();
        store.acquire_lease(&live, "alive", ttl).await.unwrap();
        assert!(store.delete(&live, None).await.unwrap());
        assert!(matches!(
            store.acquire_lease(&live, "other", ttl).await.unwrap(),
            Lease::HeldByOther { .. }
        ));
        store.release_lease(&live, "alive").await.unwrap();
        assert_eq!(store.leases.lock().unwrap().len(), 0);
    }

    #[tokio::test]
    async fn a_shared_set_is_kept_not_copied_and_reads_back_like_a_saved_one() {
        let store = MemoryStore::new();
        let key = SessionKey::new("p", "s");
        let first = shared("a");
        assert!(
            store.save_shared(&key, first.clone(), Some(7)).is_err(),
            "compare and swap"
        );
        assert_eq!(first.version(), 0, "a refused save records no version");
        let v1 = store.save_shared(&key, first.clone(), None).unwrap();
        assert_eq!(Arc::strong_count(&first), 2, "the store holds the same Arc");
        assert!(store.holds(&key, &first.0));
        assert_eq!(
            first.version(),
            v1,
            "the version is recorded in the shared set"
        );
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(
            (loaded.version, loaded.value.tokens().unwrap()),
            (v1, &first.0)
        );
        assert!(
            store.save(&key, &loaded.value, Some(v1 + 1)).await.is_err(),
            "compare and swap against the shared set's version"
        );
        // `put_shared` overwrites whatever is there, at a new version.
        let other = shared("b");
        let (v2, let_go) = store.put_shared(&key, other.clone());
        assert!(v2 > v1);
        assert_eq!((first.version(), other.version()), (v1, v2));
        assert_eq!(
            Arc::strong_count(&first),
            2,
            "handed back, not dropped under the lock"
        );
        drop(let_go);
        assert_eq!(Arc::strong_count(&first), 1, "the old set is dropped");
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(
            (loaded.version, loaded.value.tokens().unwrap()),
            (v2, &other.0)
        );
        assert_eq!(store.len(), 1);
        // A save through the trait replaces it with a record of the store's own.
        let v3 = store.save(&key, &set("c"), Some(v2)).await.unwrap();
        assert!(!store.holds(&key, &other.0));
        assert_eq!(other.version(), v2);
        assert_eq!(store.load(&key).await.unwrap().unwrap().version, v3);
    }

    #[tokio::test]
    async fn a_bound_providers_table_outlives_its_last_record_and_others_go_with_theirs() {
        let store = Arc::new(MemoryStore::new());
        let provider: Arc<str> = Arc::from("p");
        let bound = store.bind(&provider);
        let key = SessionKey::new(provider.clone(), "s");
        let (v1, _) = bound.put_own(key.session_shared(), shared("a"));
        assert_eq!(store.load(&key).await.unwrap().unwrap().version, v1);
        assert!(store.delete(&key, Some(v1)).await.unwrap());
        // Emptied, the bound table is still the store's: what is written through it is
        // seen through the store.
        let (v2, _) = bound.put_own(key.session_shared(), shared("b"));
        assert_eq!(store.load(&key).await.unwrap().unwrap().version, v2);
        let _ = bound.remove_own(key.session_shared());
        assert!(store.is_empty());
        let v3 = store.save(&key, &set("c"), None).await.unwrap();
        assert!(
            bound.save_shared(&key, shared("d"), Some(v2)).is_err(),
            "compare and swap"
        );
        let v4 = bound.save_shared(&key, shared("d"), Some(v3)).unwrap();
        assert_eq!(store.load(&key).await.unwrap().unwrap().version, v4);
        // Another provider's table goes with its last record.
        let other = SessionKey::new("q", "s");
        store.save(&other, &set("e"), None).await.unwrap();
        assert!(store.delete(&other, None).await.unwrap());
        assert_eq!(store.lock().0.len(), 1);
        // A key of another provider, given to the bound store, is written to the store.
        let v5 = bound.save_shared(&other, shared("f"), None).unwrap();
        assert_eq!(store.load(&other).await.unwrap().unwrap().version, v5);
        assert_eq!(store.len(), 2);
    }

    #[tokio::test]
    async fn versions_never_repeat_after_delete() {
        let store = MemoryStore::new();
        let key = SessionKey::new("p", "s");
        let v1 = store.save(&key, &set("a"), None).await.unwrap();
        assert!(store.delete(&key, Some(v1)).await.unwrap());
        assert!(!store.delete(&key, None).await.unwrap());
        let v2 = store.save(&key, &set("b"), None).await.unwrap();
        assert_ne!(v1, v2);
        assert!(
            store.delete(&key, Some(v1)).await.is_err(),
            "delete at a stale version must lose"
        );
        assert_eq!(store.len(), 1);
    }

    /// Listed: a lease of the provider that lapsed unreleased; not a live one, a released
    /// one, nor another provider's.
    #[tokio::test(start_paused = true)]
    async fn lapsed_leases_lists_the_provider_s_leases_that_lapsed_unreleased() {
        let store = MemoryStore::new();
        let (short, long) = (Duration::from_secs(1), Duration::from_secs(3600));
        for (provider, session, ttl) in [("p", "a", short), ("p", "b", long), ("q", "c", short)] {
            let key = SessionKey::new(provider, session);
            store.acquire_lease(&key, "h", ttl).await.unwrap();
        }
        let released = SessionKey::new("p", "d");
        store.acquire_lease(&released, "h", short).await.unwrap();
        store.release_lease(&released, "h").await.unwrap();
        assert!(store.lapsed_leases("p").await.unwrap().is_empty());
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(store.lapsed_leases("p").await.unwrap(), ["a"]);
        assert_eq!(store.lapsed_leases("q").await.unwrap(), ["c"]);
    }

    /// More lapsed leases than one answer lists: those that lapsed last come first. A lease
    /// left for good (its session removed, or given a verdict, while a holder that then died
    /// held it) lapsed long ago, and must not hide a recent death, still recoverable.
    #[tokio::test(start_paused = true)]
    async fn lapsed_leases_lists_those_that_lapsed_last_first() {
        let store = MemoryStore::new();
        let (count, expected) = super::super::lapsed_last_first();
        for n in 0..count {
            let key = SessionKey::new("p", format!("s{n}"));
            store
                .acquire_lease(&key, "h", Duration::from_secs(1))
                .await
                .unwrap();
            tokio::time::advance(Duration::from_millis(10)).await;
        }
        tokio::time::advance(Duration::from_secs(2)).await;
        assert_eq!(store.lapsed_leases("p").await.unwrap(), expected);
    }

    #[tokio::test(start_paused = true)]
    async fn leases_exclude_other_holders_renew_and_lapse() {
        let store = MemoryStore::new();
        let key = SessionKey::new("p", "s");
        let ttl = Duration::from_secs(30);
        assert_eq!(
            store.acquire_lease(&key, "a", ttl).await.unwrap(),
            Lease::Acquired
        );
        assert_eq!(
            store.acquire_lease(&key, "b", ttl).await.unwrap(),
            Lease::HeldByOther { remaining: ttl }
        );
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(
            store.acquire_lease(&key, "a", ttl).await.unwrap(),
            Lease::Acquired
        );
        tokio::time::advance(Duration::from_secs(20)).await;
        assert_eq!(
            store.acquire_lease(&key, "b", ttl).await.unwrap(),
            Lease::HeldByOther {
                remaining: Duration::from_secs(10)
            },
            "renewed at 20 s"
        );
        tokio::time::advance(Duration::from_secs(10)).await;
        assert_eq!(
            store.acquire_lease(&key, "b", ttl).await.unwrap(),
            Lease::TakenOver,
            "lapsed unreleased"
        );
        store.release_lease(&key, "a").await.unwrap();
        assert!(
            matches!(
                store.acquire_lease(&key, "a", ttl).await.unwrap(),
                Lease::HeldByOther { .. }
            ),
            "only the holder releases"
        );
        store.release_lease(&key, "b").await.unwrap();
        assert_eq!(
            store.acquire_lease(&key, "a", ttl).await.unwrap(),
            Lease::Acquired
        );
    }
}
