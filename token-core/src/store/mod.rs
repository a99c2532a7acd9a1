//! Token stores: versioned records keyed by (provider, session), saved by compare-and-swap.
//!
//! [`MemoryStore`] is the default; [`FileStore`] survives restarts. Stores shared by several
//! processes also grant leases, so one replica refreshes a session at a time.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;
mod file;
pub(crate) mod json;
mod memory;
#[cfg(feature = "postgres")]
pub(crate) mod postgres;
#[cfg(all(test, feature = "postgres"))]
pub(crate) mod postgres_test_server;
mod record;

pub use file::FileStore;
pub use memory::MemoryStore;
pub(crate) use memory::{BoundMemoryStore, SharedSet};
#[cfg(feature = "postgres")]
pub use postgres::{PostgresStore, TOKEN_STORE_SCHEMA_VERSION};
pub use record::{ReauthVerdict, StoredRecord};

/// Identifies one session: the namespace it is kept under (a manager's
/// [`TokenManager::namespace`](crate::manager::TokenManager::namespace), the provider's name
/// and its client's id, `"wechat:wx-app-1"`; or a component's own) and the session's name.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionKey {
    provider: Arc<str>,
    session: Arc<str>,
}

impl SessionKey {
    /// The key of `session` under `provider`, a namespace.
    pub fn new(provider: impl Into<Arc<str>>, session: impl Into<Arc<str>>) -> Self {
        Self {
            provider: provider.into(),
            session: session.into(),
        }
    }

    /// The namespace (a manager's: the provider's name and its client's id).
    pub fn provider(&self) -> &str {
        &self.provider
    }

    /// The session's name.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The session's name, shared.
    pub(crate) fn session_shared(&self) -> &Arc<str> {
        &self.session
    }

    /// The namespace, shared.
    pub(crate) fn provider_shared(&self) -> &Arc<str> {
        &self.provider
    }
}

impl fmt::Debug for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionKey({self})")
    }
}

/// Control characters in either name are shown escaped (a line break as `\n`): the key goes
/// into log lines and messages.
impl fmt::Display for SessionKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        use crate::redact::Printable;
        write!(
            f,
            "{}/{}",
            Printable(&self.provider),
            Printable(&self.session)
        )
    }
}

/// A record's version: strictly increasing for a key, never reused after a delete.
pub type Version = u64;

/// A stored value with its version.
#[derive(Clone, Debug, PartialEq)]
pub struct Versioned<T> {
    /// The version to pass as `expected` to the next save.
    pub version: Version,
    /// The value.
    pub value: T,
}

/// A record of a session that [`TokenStore::load`] cannot read (damaged, or written by a
/// newer release), as the store read it: what [`TokenStore::delete_unreadable`] compares
/// with, so that it removes that very record and never one written after it was read (a
/// login another process saved meanwhile, landing before a delete sent earlier).
///
/// A store identifies it by its version when it can still read that, or by its content
/// (a SHA-256 digest of its bytes); a store that cannot identify it at all says
/// [`unidentified`](Self::unidentified). Its `Debug` shows neither bytes nor digest.
///
/// ```
/// use token_core::store::Unreadable;
///
/// let damaged = br#"{"version": 3, "provi"#;
/// let seen = Unreadable::with_content(damaged);
/// assert!(seen.has_content(damaged) && !seen.has_content(b"{}"));
/// assert_eq!(format!("{seen:?}"), "Unreadable(by content)");
/// assert_eq!(Unreadable::at_version(7).version(), Some(7));
/// assert_ne!(Unreadable::at_version(7), Unreadable::at_version(8));
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Unreadable(Identity);

#[derive(Clone, PartialEq, Eq)]
enum Identity {
    Version(Version),
    Content([u8; 32]),
    Unidentified,
}

impl Unreadable {
    /// The unreadable record stored at `version`.
    pub fn at_version(version: Version) -> Self {
        Self(Identity::Version(version))
    }

    /// The unreadable record whose stored bytes are `bytes`.
    pub fn with_content(bytes: &[u8]) -> Self {
        Self(Identity::Content(crate::crypto::sha256(bytes)))
    }

    /// An unreadable record the store cannot tell from another (the default of
    /// [`TokenStore::unreadable`]).
    pub fn unidentified() -> Self {
        Self(Identity::Unidentified)
    }

    /// The version it was identified by, if any.
    pub fn version(&self) -> Option<Version> {
        match self.0 {
            Identity::Version(version) => Some(version),
            Identity::Content(_) | Identity::Unidentified => None,
        }
    }

    /// Whether it was identified by its content and `bytes` is that content.
    pub fn has_content(&self, bytes: &[u8]) -> bool {
        match &self.0 {
            Identity::Content(digest) => *digest == crate::crypto::sha256(bytes),
            Identity::Version(_) | Identity::Unidentified => false,
        }
    }
}

impl fmt::Debug for Unreadable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Identity::Version(version) => write!(f, "Unreadable(version {version})"),
            Identity::Content(_) => f.write_str("Unreadable(by content)"),
            Identity::Unidentified => f.write_str("Unreadable(unidentified)"),
        }
    }
}

/// The outcome of asking for a session's refresh lease.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lease {
    /// This holder may refresh until the lease expires or is released.
    Acquired,
    /// Granted, but over another holder's lease that lapsed instead of being released: that
    /// holder may have sent the stored refresh token and not saved what it got yet (it
    /// died, or lost the store for longer than its lease). The manager waits up to one lease
    /// length for such a save to appear before it refreshes.
    TakenOver,
    /// Another holder is refreshing; wait for a new version, or for the lease to lapse.
    HeldByOther {
        /// How long until the other holder's lease lapses.
        remaining: Duration,
    },
}

/// Versioned, compare-and-swap storage of session records ([`StoredRecord`]: tokens, a
/// re-auth verdict, or another component's coordination record).
///
/// Implement it for another backend by honouring three rules: `save` writes only when the
/// record is at `expected` (`None`: absent) and returns the new version; versions never
/// repeat for a key; `load` after a successful `save` returns what was saved (keep records
/// as JSON: see [`StoredRecord`]). (A manager
/// that finds a record at a lower version than one it saved itself takes it for writes the
/// store lost, after a failover or a restored backup, and saves its newer set over it.)
#[async_trait]
pub trait TokenStore: Send + Sync + 'static {
    /// The record of `key`, if any.
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError>;

    /// Writes `record` if the stored one is at `expected`; returns the new version, or
    /// [`StoreError::Conflict`].
    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError>;

    /// Removes the record if it is at `expected` (`None`: whatever its version). Returns
    /// whether a record was removed.
    async fn delete(&self, key: &SessionKey, expected: Option<Version>)
    -> Result<bool, StoreError>;

    /// The record of `key` if [`load`](Self::load) cannot read it (it fails with
    /// [`StoreError::Corrupt`]), identified for
    /// [`delete_unreadable`](Self::delete_unreadable); `None` if there is no record or it
    /// can be read.
    ///
    /// The default, for a store that does not implement these two methods, answers
    /// [`Unreadable::unidentified`] whenever `load` fails as corrupt, and its
    /// `delete_unreadable` removes whatever record is there: a store that can identify an
    /// unreadable record (the stores of this crate do) should implement both.
    async fn unreadable(&self, key: &SessionKey) -> Result<Option<Unreadable>, StoreError> {
        match self.load(key).await {
            Ok(_) => Ok(None),
            Err(StoreError::Corrupt(_)) => Ok(Some(Unreadable::unidentified())),
            Err(error) => Err(error),
        }
    }

    /// Removes the record of `key` if it is still the unreadable record `seen` (as
    /// [`unreadable`](Self::unreadable) identified it): compare-and-swap, as `delete` with a
    /// version, so a call that lands late removes nothing written since. Returns whether a
    /// record was removed. A record that can be read, or another unreadable one, is kept.
    ///
    /// The default removes whatever record is there (`delete(key, None)`) if `seen` is
    /// [`unidentified`](Unreadable::unidentified), and nothing otherwise.
    async fn delete_unreadable(
        &self,
        key: &SessionKey,
        seen: &Unreadable,
    ) -> Result<bool, StoreError> {
        match seen.0 {
            Identity::Unidentified => self.delete(key, None).await,
            Identity::Version(_) | Identity::Content(_) => Ok(false),
        }
    }

    /// Asks for the exclusive right to refresh `key` for `ttl`.
    ///
    /// A store shared by several processes grants it when nobody holds it, when it lapsed,
    /// or when `holder` already holds it: then it renews it, to `ttl` from now, so a holder
    /// calls this again as a heartbeat while its refresh runs, and
    /// [`HeldByOther`](Lease::HeldByOther) in answer to a renewal means the lease was lost.
    /// Stores used by one process grant it at once (the manager already runs one refresh
    /// per session in a process).
    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let _ = (key, holder, ttl);
        Ok(Lease::Acquired)
    }

    /// Gives the lease back early; does nothing unless `holder` holds it.
    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        let _ = (key, holder);
        Ok(())
    }

    /// The sessions of `provider` whose refresh lease lapsed without being released (at
    /// most [`LAPSED_LEASES_LISTED`] of them, those that lapsed last first): each holder
    /// died, or lost the store, in the middle of a refresh, and may have spent the stored
    /// refresh token without saving what it got. The manager takes such a lease over and
    /// presents that token again inside the provider's reuse window, even when no refresh of
    /// the session is due. A lease no take-over gives back (its session given a verdict while
    /// a holder that then died held it) stays lapsed for good: listed first, enough of them
    /// would hide every later death. One whose session was removed meanwhile has no record to
    /// list it by; the file and PostgreSQL stores delete it a lease length after it lapsed,
    /// as they answer this, and as they are opened.
    ///
    /// The default lists none (a store used by one process, or one that cannot tell): such
    /// a death is then noticed at the session's next refresh only.
    async fn lapsed_leases(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        let _ = provider;
        Ok(Vec::new())
    }
}

/// The most sessions [`TokenStore::lapsed_leases`] lists in one answer: the latest lapsed
/// (a recent death is the one whose pair may still come back; a lease that lapsed long ago
/// and was never taken over, its session's record a verdict, must not crowd it out).
pub const LAPSED_LEASES_LISTED: usize = 64;

/// For the stores' tests of [`TokenStore::lapsed_leases`]: how many leases to grant, one
/// lapsing after the other, to sessions `s0`, `s1`, ...; and what is listed once all lapsed
/// (those that lapsed last first, as many as one answer lists).
#[cfg(test)]
pub(crate) fn lapsed_last_first() -> (usize, Vec<String>) {
    let count = LAPSED_LEASES_LISTED * 3;
    let listed = (0..count).rev().take(LAPSED_LEASES_LISTED);
    (count, listed.map(|n| format!("s{n}")).collect())
}

#[async_trait]
impl<S: TokenStore + ?Sized> TokenStore for Arc<S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        (**self).load(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        (**self).save(key, record, expected).await
    }
    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        (**self).delete(key, expected).await
    }
    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        (**self).acquire_lease(key, holder, ttl).await
    }
    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        (**self).release_lease(key, holder).await
    }

    async fn lapsed_leases(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        (**self).lapsed_leases(provider).await
    }
    async fn unreadable(&self, key: &SessionKey) -> Result<Option<Unreadable>, StoreError> {
        (**self).unreadable(key).await
    }
    async fn delete_unreadable(
        &self,
        key: &SessionKey,
        seen: &Unreadable,
    ) -> Result<bool, StoreError> {
        (**self).delete_unreadable(key, seen).await
    }
}

const _: Option<&dyn TokenStore> = None;
