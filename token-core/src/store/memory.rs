//! The in-process store: the default, and the one to use when one process owns its sessions.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;

use std::time::Duration;

use super::{Lease, SessionKey, StoredRecord, TokenStore, Version, Versioned};
use crate::error::StoreError;
use crate::token_set::StoredTokenSet;

/// Keeps token sets in memory. Cheap, and gone when the process ends. Managers sharing one
/// `MemoryStore` (through `Arc`) also share its refresh leases, so they refresh a session
/// one at a time as managers of several processes do over a shared store.
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
        self.lock().len()
    }

    /// Whether no session is stored.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Records> {
        // A panic elsewhere while holding the lock cannot leave a record half-written
        // (records are replaced whole), so the data stays good.
        self.records
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn next_version(&self) -> Version {
        self.next_version.fetch_add(1, Ordering::Relaxed) + 1
    }

    /// `save` of a token set the caller keeps too (a `TokenManager`'s current state): the
    /// store keeps the same `Arc`, not a copy, and records its version in it.
    pub(crate) fn save_shared(
        &self,
        key: &SessionKey,
        set: Arc<dyn SharedSet>,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        self.save_entry(key, expected, |version| {
            set.saved_at(version);
            Held::Shared(set)
        })
    }

    /// Writes `set` whatever is stored (the application's own tokens, which have the last
    /// word); returns the new version.
    pub(crate) fn put_shared(&self, key: &SessionKey, set: Arc<dyn SharedSet>) -> Version {
        let mut records = self.lock();
        let version = self.next_version();
        set.saved_at(version);
        records.put(key, Held::Shared(set));
        version
    }

    /// Whether the record of `key` is `set` itself (kept shared, not a copy).
    #[cfg(test)]
    pub(crate) fn holds(&self, key: &SessionKey, set: &StoredTokenSet) -> bool {
        self.lock().get(key).is_some_and(|held| match held {
            Held::Shared(held) => held.tokens().is_some_and(|held| std::ptr::eq(held, set)),
            Held::Owned(_) => false,
        })
    }

    /// Deletes the record of `key`, whatever its version (a `TokenManager`'s `remove`).
    pub(crate) fn remove(&self, key: &SessionKey) {
        self.lock().remove(key);
    }

    /// Writes the record `make` makes at the new version, if the stored one is at
    /// `expected`.
    fn save_entry(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
        make: impl FnOnce(Version) -> Held,
    ) -> Result<Version, StoreError> {
        let mut records = self.lock();
        let found = records.get_mut(key);
        let found_version = found.as_ref().map(|held| held.version());
        if found_version != expected {
            return Err(StoreError::Conflict {
                expected,
                found: found_version,
            });
        }
        let version = self.next_version();
        let held = make(version);
        match found {
            Some(found) => *found = held,
            None => records.put(key, held),
        }
        Ok(version)
    }
}

/// The records, by provider and then by session name: a slot holds one name, not a whole
/// [`SessionKey`] (every key of one provider shares its provider name), and a save or a
/// load hashes the session's name only. Keyed with foldhash (seeded per process).
#[derive(Debug, Default)]
struct Records(HashMap<Arc<str>, HashMap<Arc<str>, Held, Hasher>, Hasher>);

type Hasher = foldhash::quality::RandomState;

impl Records {
    fn len(&self) -> usize {
        self.0.values().map(HashMap::len).sum()
    }

    fn get(&self, key: &SessionKey) -> Option<&Held> {
        self.0.get(key.provider())?.get(key.session())
    }

    fn get_mut(&mut self, key: &SessionKey) -> Option<&mut Held> {
        self.0.get_mut(key.provider())?.get_mut(key.session())
    }

    /// Writes `held` under `key`, replacing what is there.
    fn put(&mut self, key: &SessionKey, held: Held) {
        let sessions = match self.0.get_mut(key.provider()) {
            Some(sessions) => sessions,
            None => self.0.entry(key.provider_shared().clone()).or_default(),
        };
        match sessions.get_mut(key.session()) {
            Some(found) => *found = held,
            None => {
                sessions.insert(key.session_shared().clone(), held);
            }
        }
    }

    fn remove(&mut self, key: &SessionKey) -> Option<Held> {
        let sessions = self.0.get_mut(key.provider())?;
        let removed = sessions.remove(key.session());
        if sessions.is_empty() {
            self.0.remove(key.provider());
        }
        removed
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
enum Held {
    /// A set shared with its owner, which keeps the version.
    Shared(Arc<dyn SharedSet>),
    /// A record written through [`TokenStore::save`], and its version.
    Owned(Box<(Version, StoredRecord)>),
}

impl Held {
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
        let records = self.lock();
        let Some(held) = records.get(key) else {
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
        let mut records = self.lock();
        match (records.get(key).map(Held::version), expected) {
            (None, _) => Ok(false),
            (Some(found), Some(expected)) if found != expected => Err(StoreError::Conflict {
                expected: Some(expected),
                found: Some(found),
            }),
            _ => Ok(records.remove(key).is_some()),
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
        let v2 = store.put_shared(&key, other.clone());
        assert!(v2 > v1);
        assert_eq!((first.version(), other.version()), (v1, v2));
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
