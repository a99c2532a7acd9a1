//! The file store: one JSON record per session in a private directory, replaced atomically,
//! with compare-and-swap saves and refresh leases that hold across the processes of one
//! machine (not across machines, nor on a network filesystem).
//!
//! Layout of the directory (created `0700` on unix):
//!
//! - `<sha256>.json`: one record per session key, `0600`, holding
//!   `{"version": u64, "provider": .., "session": .., "record": StoredRecord}`. The name is the
//!   hex SHA-256 of the (length-prefixed) provider and session, so any key is a safe file
//!   name and no key can name a path outside the directory. A file of the releases before a
//!   record could be a verdict holds `"set": StoredTokenSet` instead, read as its tokens.
//! - `<sha256>.lease`: the session's refresh lease while someone holds it, `0600`, holding
//!   `{"holder": .., "expires_at_unix_nanos": u64, "ttl_nanos": u64}` (the system clock).
//!   Released leases are removed; one left by a killed process lapses at its expiry, and
//!   goes a lease length later if its session has no record by then (at `lapsed_leases`,
//!   and when a store is opened).
//! - `.<sha256>.<uuid>.tmp`: a record or lease being written. Loads never read these; a crash
//!   can leave one behind, and [`FileStore::open`] removes such leftovers.
//! - `.lock`: taken exclusively (an OS file lock) around every read-check-write of a record
//!   or a lease, so compare-and-swap and leases hold across processes sharing the directory;
//!   on unix the directory itself is locked first, so a lock file removed under its holder
//!   lets nobody write beside it. It also holds the directory's version counter (see
//!   [`FileStore`]).

use std::fmt;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::crypto::Sha256;
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{Lease, SessionKey, StoredRecord, TokenStore, Unreadable, Version, Versioned};
use crate::clock::{Clock, SystemClock};
use crate::error::StoreError;
use crate::token_set::StoredTokenSet;

/// The lock file, which also holds the directory's version counter.
const LOCK_FILE: &str = ".lock";
/// The extension of record files.
const RECORD_SUFFIX: &str = ".json";
/// The extension of refresh leases.
const LEASE_SUFFIX: &str = ".lease";
/// The extension of records and leases being written.
const TEMP_SUFFIX: &str = ".tmp";
/// A record larger than this is not one of ours: twice what the client reads of an answer
/// by default ([`DEFAULT_MAX_BODY`](crate::transport::DEFAULT_MAX_BODY)), so that any set an
/// answer holds is saved (written as compact JSON, a record is about the answer's size).
const MAX_RECORD_BYTES: u64 = 2 << 20;
/// A lease larger than this is not one of ours.
const MAX_LEASE_BYTES: u64 = 64 << 10;
/// Domain separation for record file names.
const NAME_DOMAIN: &[u8] = b"token-core/file-store/v1\0";

/// Keeps token sets in a directory, one file per session, so they survive restarts and can
/// be shared by several processes on one machine.
///
/// **What it guarantees across processes.** Processes (and stores) sharing the directory on
/// one machine see one history per session: a `save` wins only at the version it expected,
/// versions never repeat, and a session's refresh lease has one holder at a time, so
/// managers in several processes refresh a session once, not once each. A process killed at
/// any point leaves a whole record (old or new) and a lease that lapses after its ttl. It is
/// **not** for several machines, nor for a directory on a network filesystem (NFS, SMB,
/// cloud drives): their file locks and renames are not reliably exclusive or atomic, and
/// leases would compare different machines' clocks. Use the PostgreSQL store there.
///
/// Every `save` is compare-and-swap under two locks: a mutex inside the store (tasks of one
/// process) and an exclusive OS lock on the directory's lock file (other processes). A record
/// is written to a private temporary file, synced, renamed over the old record and the
/// directory synced, so a crash leaves either the old or the new record, never a mix. Blocking
/// file work runs on Tokio's blocking pool. Loads take no lock. On unix the OS lock is the
/// directory's own as well as the lock file's, so a `.lock` file removed while a store holds
/// it (a cleaner of old files) costs only the version counter it held; elsewhere, never
/// remove it while stores use the directory.
///
/// **A private directory.** Whoever can write to the directory can replace tokens, so
/// [`open`](Self::open) refuses (on unix) a directory that another user owns or that group
/// or others may write to. Every file of the store is opened without following symbolic
/// links: a link planted as the lock file or a record is [`StoreError::Insecure`] (and its
/// target is never written); one planted as a lease is replaced like any unreadable lease.
/// A lock file with another name (a hard link) or that is not a regular file is `Insecure`
/// too; a FIFO or device planted as a record is an error, as a lease it is unreadable, and
/// none is waited on.
/// The directory's ancestors are not checked: keep it under one that only its user (or
/// root) can change, such as `/var/lib/<app>`.
///
/// **Leases.** [`acquire_lease`](TokenStore::acquire_lease) reads, checks and writes the
/// session's lease file under the same OS lock, so one holder at a time refreshes a session
/// across every process on the machine: it grants the lease if there is none, if it lapsed,
/// or if `holder` already holds it (then it renews it for `ttl` from now, which is how a
/// manager keeps it while a refresh runs); otherwise it answers [`Lease::HeldByOther`] with
/// the time left. [`release_lease`](TokenStore::release_lease) removes it only for its
/// holder. A process killed while holding a lease leaves it to lapse after its ttl. A lease
/// file that cannot be read (damaged, foreign, another release's format) counts as lapsed
/// and is replaced, as a takeover ([`Lease::TakenOver`]: the manager waits for a save of
/// whoever held it before it trusts a refusal), and `lapsed_leases` lists it (leases are
/// not synced: a machine crash may leave a dying holder's lease file empty). A lease file the
/// file system fails to open or read (too many open files, an I/O error, no permission) may
/// be a live holder's: the call fails ([`StoreError::Backend`]) and nothing is taken over.
/// Expiry is the
/// system clock's, which every process on one machine shares; if that clock goes back, a
/// lease still lapses at most its ttl after it is next looked at (by `acquire_lease` or
/// [`lapsed_leases`](TokenStore::lapsed_leases)). A holder name too long for a lease file
/// (64 KiB encoded) is refused ([`StoreError::Unsupported`]): read back, such a lease could
/// not be trusted, and would count as lapsed. `delete` removes a lapsed
/// lease with the record, but keeps a live one until its holder releases it or it lapses,
/// as the PostgreSQL store does.
///
/// **Versions.** A new version is `max(previous + 1, counter + 1, now)`, where `previous`
/// is the version being replaced (none after a delete), `counter` is the highest version the
/// directory has issued (kept in its lock file, updated before the record is written) and
/// `now` is the current UNIX time in nanoseconds. Versions therefore strictly increase for a
/// key and never repeat after a delete; the clock term keeps this true even if the counter is
/// lost (the directory wiped and recreated), unless the system clock also went backwards.
///
/// A record that cannot be read back is [`StoreError::Corrupt`], whose message never holds
/// the file's content. `delete(key, None)` removes even a corrupt record, so it can be cleared;
/// [`delete_unreadable`](TokenStore::delete_unreadable) removes it only while the file holds
/// the very bytes [`unreadable`](TokenStore::unreadable) read (compared by their SHA-256).
///
/// **A directory that goes away.** A record read from a directory that is no longer the one
/// [`open`](Self::open) found at its path (removed, or removed and created again, as the
/// empty mount point of an unmounted volume is), missing or not, is a
/// [`StoreError::Backend`], not an absent session nor that directory's record (a stale copy
/// left at a mount point before a volume was mounted over it): a manager then neither gives
/// the session up, nor takes up a stale pair, nor writes it elsewhere. Reopen the store to
/// use the new directory.
///
/// ```
/// # tokio_test_block_on(async {
/// use token_core::store::{FileStore, SessionKey, TokenStore};
/// use token_core::{secret::AccessToken, token_set::TokenSet};
/// # let unique = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
/// let dir = std::env::temp_dir().join(format!("token-core-doc-{}-{unique}", std::process::id()));
/// let store = FileStore::open(&dir).unwrap();
/// let key = SessionKey::new("vaultist", "customer-1");
/// let set = TokenSet::<serde_json::Value>::new(AccessToken::new("at")).to_stored().unwrap().into();
/// let v1 = store.save(&key, &set, None).await.unwrap();
/// assert!(store.save(&key, &set, None).await.is_err()); // not at the expected version
///
/// // Another store over the same directory (another process, a restart) sees the record.
/// let reopened = FileStore::open(&dir).unwrap();
/// assert_eq!(reopened.load(&key).await.unwrap().unwrap().version, v1);
/// # std::fs::remove_dir_all(&dir).unwrap();
/// # });
/// # fn tokio_test_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(f)
/// # }
/// ```
pub struct FileStore {
    dir: Arc<Path>,
    // The directory opened: a record missing from another one (the directory removed, or
    // replaced, as by an unmounted volume's empty mount point) is no removed session.
    opened: DirId,
    // Serializes this store's writers. The OS lock alone would not: locks taken through one
    // process's handles may not exclude each other on every platform. The guard is moved
    // into the blocking task, so a cancelled caller cannot release it while a write runs.
    writer: Arc<tokio::sync::Mutex<()>>,
    // When leases lapse. The system clock, except in tests that move time themselves.
    clock: Arc<dyn Clock>,
}

impl fmt::Debug for FileStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FileStore").field("dir", &self.dir).finish()
    }
}

impl FileStore {
    /// Opens the store in `dir`, creating the directory (`0700` on unix) if it is absent.
    ///
    /// On unix, `dir` is resolved once through any symbolic links, and the directory it names
    /// must belong to this process's user and be writable by nobody else (`chmod 700`, or
    /// `0750`/`0755` if others must list it); otherwise, or if its `.lock` file is a symbolic
    /// link, this is [`StoreError::Insecure`], whose message says what to fix. An existing
    /// directory is never changed. Temporary files left by a crashed writer, and refresh
    /// leases left by a dead holder of a session removed since (lapsed a lease length ago,
    /// without a record), are removed when no other process is writing at that moment.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with_clock(dir, Arc::new(SystemClock))
    }

    /// [`open`](Self::open), with leases timed by `clock` instead of the system clock.
    /// Every process sharing the directory must use the same clock, so only tests use this.
    pub(crate) fn open_with_clock(
        dir: impl AsRef<Path>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, StoreError> {
        let dir = std::path::absolute(dir.as_ref()).map_err(|e| {
            StoreError::backend(
                format!("file store: cannot resolve {}", dir.as_ref().display()),
                e,
            )
        })?;
        create_private_dir(&dir)?;
        let dir = resolve_private_dir(&dir)?;
        let lock = open_lock_file(&dir)?;
        // After the lock file is there: creating an entry may copy a directory of a
        // container image's lower layer up (overlayfs), which gives it another identity.
        let opened = dir_id(&dir).map_err(|e| {
            StoreError::backend(format!("file store: cannot inspect {}", dir.display()), e)
        })?;
        drop(lock);
        if let Some(_held) = DirLock::try_acquire(&dir)? {
            // Temporary files are only created under this lock: every one now is a leftover.
            remove_stray_temp_files(&dir);
            remove_stale_leases(&dir, unix_nanos(clock.now()));
        }
        Ok(Self {
            dir: dir.into(),
            opened,
            writer: Arc::new(tokio::sync::Mutex::new(())),
            clock,
        })
    }

    /// The directory the records live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Runs `f` on the blocking pool while holding this store's writer mutex.
    async fn write<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Path) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, StoreError> {
        let guard = Arc::clone(&self.writer).lock_owned().await;
        let dir = Arc::clone(&self.dir);
        blocking(move || {
            let _guard = guard;
            f(&dir)
        })
        .await
    }
}

#[async_trait]
impl TokenStore for FileStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        // No lock: records are replaced by rename, so a reader sees a whole old or new record.
        let (dir, opened) = (Arc::clone(&self.dir), self.opened);
        let key = key.clone();
        let record = blocking(move || read_record(&dir, opened, &key)).await?;
        Ok(record.map(|r| Versioned {
            version: r.version,
            value: r.record,
        }))
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        let key = key.clone();
        let value = record.clone();
        let opened = self.opened;
        self.write(move |dir| {
            let lock = DirLock::acquire(dir)?;
            let found = read_record(dir, opened, &key)?.map(|r| r.version);
            if found != expected {
                return Err(StoreError::Conflict { expected, found });
            }
            let version = next_version(found, lock.counter())?;
            let record = RecordRef {
                version,
                provider: key.provider(),
                session: key.session(),
                record: &value,
            };
            let bytes = serde_json::to_vec(&record).map_err(|e| {
                StoreError::backend(format!("file store: cannot encode the record of {key}"), e)
            })?;
            if super::json::depth(&bytes) > super::json::MAX_DEPTH {
                // `load` would refuse it: keep the record that loads.
                return Err(StoreError::Unsupported(format!(
                    "file store: the record of {key} would be nested more than {} deep, which \
                     this store does not load",
                    super::json::MAX_DEPTH
                )));
            }
            if bytes.len() as u64 > MAX_RECORD_BYTES {
                // `load` would refuse it: keep the record that loads.
                return Err(StoreError::Unsupported(format!(
                    "file store: the record of {key} would be larger than {MAX_RECORD_BYTES} \
                     bytes, which this store does not load"
                )));
            }
            lock.set_counter(version)?;
            replace_file(dir, &record_stem(&key), RECORD_SUFFIX, &bytes, Durable::Yes)?;
            Ok(version)
        })
        .await
    }

    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        let key = key.clone();
        let clock = Arc::clone(&self.clock);
        let opened = self.opened;
        self.write(move |dir| {
            let lock = DirLock::acquire(dir)?;
            match (read_record(dir, opened, &key), expected) {
                (Ok(None), _) => return Ok(false),
                (Ok(Some(record)), expected) => {
                    if let Some(expected) = expected
                        && record.version != expected
                    {
                        return Err(StoreError::Conflict {
                            expected: Some(expected),
                            found: Some(record.version),
                        });
                    }
                    // Keep the counter ahead of every version this directory ever held, even
                    // one written while the counter was lost.
                    if record.version > lock.counter() {
                        lock.set_counter(record.version)?;
                    }
                }
                // A corrupt record has no version to compare, but may be removed unconditionally.
                (Err(StoreError::Corrupt(_)), None) => {}
                (Err(e), _) => return Err(e),
            }
            remove_record(dir, &key, &*clock)
        })
        .await
    }

    async fn unreadable(&self, key: &SessionKey) -> Result<Option<Unreadable>, StoreError> {
        // No lock, as for `load`.
        let (dir, opened) = (Arc::clone(&self.dir), self.opened);
        let key = key.clone();
        blocking(move || read_unreadable(&dir, opened, &key)).await
    }

    async fn delete_unreadable(
        &self,
        key: &SessionKey,
        seen: &Unreadable,
    ) -> Result<bool, StoreError> {
        let (key, seen) = (key.clone(), seen.clone());
        let clock = Arc::clone(&self.clock);
        let opened = self.opened;
        self.write(move |dir| {
            let _lock = DirLock::acquire(dir)?;
            // The file as it is now, compared by content with the one read: a record saved
            // since (a login), readable or not, is another file.
            match read_unreadable(dir, opened, &key)? {
                Some(found) if found == seen => remove_record(dir, &key, &*clock),
                _ => Ok(false),
            }
        })
        .await
    }

    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let key = key.clone();
        let holder = holder.to_owned();
        let clock = Arc::clone(&self.clock);
        let ttl = u64::try_from(ttl.as_nanos()).unwrap_or(u64::MAX);
        self.write(move |dir| {
            let _lock = DirLock::acquire(dir)?;
            // Read under the lock: time spent waiting for it must not shorten the lease.
            let now = unix_nanos(clock.now());
            let on_file = read_lease(dir, &key)?;
            if let OnFile::Lease(held) = &on_file
                && held.holder != holder
                && held.expires_at_unix_nanos > now
            {
                let mut remaining = held.expires_at_unix_nanos - now;
                if remaining > held.ttl_nanos {
                    // The clock went back: the lease lasts at most its ttl from now, so an
                    // odd clock cannot keep a session locked for the size of the jump.
                    remaining = held.ttl_nanos;
                    write_lease(dir, &key, &held.holder, now, held.ttl_nanos)?;
                }
                return Ok(Lease::HeldByOther {
                    remaining: Duration::from_nanos(remaining),
                });
            }
            write_lease(dir, &key, &holder, now, ttl)?;
            // Another holder's lease still on file lapsed instead of being released; one
            // that cannot be read is someone's too (damaged, or another release's format).
            let taken_over = match on_file {
                OnFile::Lease(held) => held.holder != holder,
                OnFile::Unreadable => true,
                OnFile::None => false,
            };
            Ok(if taken_over {
                Lease::TakenOver
            } else {
                Lease::Acquired
            })
        })
        .await
    }

    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        let key = key.clone();
        let holder = holder.to_owned();
        self.write(move |dir| {
            let _lock = DirLock::acquire(dir)?;
            if matches!(read_lease(dir, &key)?, OnFile::Lease(held) if held.holder == holder) {
                remove_if_present(&lease_path(dir, &key)).map_err(|e| {
                    StoreError::backend(
                        format!("file store: cannot remove the refresh lease of {key}"),
                        e,
                    )
                })?;
            }
            Ok(())
        })
        .await
    }

    /// Reads the directory without its lock (a lease taken or given back meanwhile is
    /// listed or not; the manager's take-over decides): the `.lease` files that lapsed, the
    /// latest first, whose records name sessions of `provider`.
    async fn lapsed_leases(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        let (dir, clock, provider) = (self.dir.clone(), self.clock.clone(), provider.to_owned());
        blocking(move || {
            let now = unix_nanos(clock.now());
            let entries = fs::read_dir(&dir)
                .map_err(|e| StoreError::backend("file store: cannot list the directory", e))?;
            // Those that lapsed last first: one left long ago (its holder died, and nobody
            // has taken it over since) must not hide a recent death.
            let (mut lapsed, mut stretched) = (Vec::new(), Vec::new());
            for entry in entries.flatten() {
                let name = entry.file_name();
                // A session's lease is named by its record's stem; a file with another name
                // is no session's, and is neither read nor written (cut, its temporary file
                // could even be named longer than the file system allows, failing the call).
                let stem = name.to_str().and_then(|n| n.strip_suffix(LEASE_SUFFIX));
                let Some(stem) = stem.filter(|stem| is_record_stem(stem)) else {
                    continue;
                };
                match lease_look(&dir, stem, now) {
                    Some(LeaseLook::Lapsed(expires)) => lapsed.push((expires, stem.to_owned())),
                    Some(LeaseLook::Stretched) => stretched.push(stem.to_owned()),
                    None => {}
                }
            }
            // Looked at, a lease lasts at most its ttl from now (as `acquire_lease` has it):
            // one stretched by a clock that went back is cut to that, or a holder that died
            // before the step would be listed only the size of the step later.
            if !stretched.is_empty() {
                #[cfg(test)]
                tests::before_cutting(&dir);
                let _lock = DirLock::acquire(&dir)?;
                // Read under the lock, as `acquire_lease` reads it: a lease its holder renewed
                // while this waited for the lock must not be cut to its ttl counted from
                // before that wait (it would lapse early, its holder still refreshing).
                let now = unix_nanos(clock.now());
                for stem in stretched.iter().take(super::LAPSED_LEASES_LISTED) {
                    cut_stretched_lease(&dir, stem, now)?;
                }
            }
            // A lapsed lease without a record beside it was left by a holder that died after
            // its session was removed (a delete keeps a live lease, for its holder): gone a
            // lease length after it lapsed, when no take-over waits on it any more.
            let stale: Vec<&str> = (lapsed.iter())
                .filter(|(_, stem)| !record_on_file(&dir, stem))
                .map(|(_, stem)| stem.as_str())
                .take(super::LAPSED_LEASES_LISTED)
                .collect();
            if !stale.is_empty() {
                let _lock = DirLock::acquire(&dir)?;
                let now = unix_nanos(clock.now());
                for stem in stale {
                    remove_stale_lease(&dir, stem, now);
                }
            }
            lapsed.sort_unstable_by(|a, b| b.cmp(a));
            Ok((lapsed.iter())
                .filter_map(|(_, stem)| session_of(&dir, stem, &provider))
                .take(super::LAPSED_LEASES_LISTED)
                .collect())
        })
        .await
    }
}

/// Reads `<stem><suffix>` in `dir`, if it holds at most `limit` bytes.
fn read_small(dir: &Path, stem: &str, suffix: &str, limit: u64) -> Option<Vec<u8>> {
    let mut bytes = Vec::new();
    let file = open_for_reading(&dir.join(format!("{stem}{suffix}"))).ok()?;
    file.take(limit + 1).read_to_end(&mut bytes).ok()?;
    (bytes.len() as u64 <= limit).then_some(bytes)
}

/// What a look at a lease file finds.
enum LeaseLook {
    /// It lapsed at this instant, by now.
    Lapsed(u64),
    /// It lapses later than its ttl from now: the clock went back since it was written.
    Stretched,
}

/// What the lease file `<stem>.lease` holds at `now`; `None`: live, or no lease file.
fn lease_look(dir: &Path, stem: &str, now: u64) -> Option<LeaseLook> {
    let path = dir.join(format!("{stem}{LEASE_SUFFIX}"));
    let lease = match lease_at(&path) {
        Ok(lease) => lease?,
        // Not read now: perhaps a live holder's; looked at again next time.
        Err(LeaseUnread::Failed(error)) => {
            tracing::warn!(%error, "file store: a refresh lease could not be read; not listed as lapsed");
            return None;
        }
        // A file that is not a lease: someone's all the same, lapsed as `acquire_lease`
        // takes it (a takeover). One left empty by a machine crash (leases are not synced)
        // is a holder's that died mid-refresh: lapsed when it was written, as far as can be
        // told. (Not what was planted instead of a file: a link, a FIFO.)
        Err(LeaseUnread::Foreign(_)) => {
            let file = fs::symlink_metadata(&path).ok()?;
            return (file.is_file()).then(|| LeaseLook::Lapsed(written_at(&file)));
        }
    };
    let expires = lease.expires_at_unix_nanos;
    if expires <= now {
        Some(LeaseLook::Lapsed(expires))
    } else {
        (expires - now > lease.ttl_nanos).then_some(LeaseLook::Stretched)
    }
}

fn read_lease_file(dir: &Path, stem: &str) -> Option<LeaseRecord> {
    lease_at(&dir.join(format!("{stem}{LEASE_SUFFIX}")))
        .ok()
        .flatten()
}

/// When the file of `metadata` was last written, in UNIX nanoseconds (0 if unknown).
fn written_at(metadata: &fs::Metadata) -> u64 {
    metadata.modified().map_or(0, |at| unix_nanos(at.into()))
}

/// Under the directory's lock: cuts the lease `<stem>.lease` to its ttl from `now` if it
/// still lapses later than that.
fn cut_stretched_lease(dir: &Path, stem: &str, now: u64) -> Result<(), StoreError> {
    let Some(mut lease) = read_lease_file(dir, stem) else {
        return Ok(());
    };
    let cut = now.saturating_add(lease.ttl_nanos);
    if lease.expires_at_unix_nanos <= cut {
        return Ok(());
    }
    lease.expires_at_unix_nanos = cut;
    put_lease(dir, stem, &lease, &"a session")
}

/// Whether a file (of any kind) is where the record `<stem>.json` would be.
fn record_on_file(dir: &Path, stem: &str) -> bool {
    match fs::symlink_metadata(dir.join(format!("{stem}{RECORD_SUFFIX}"))) {
        Ok(_) => true,
        Err(e) => e.kind() != io::ErrorKind::NotFound,
    }
}

/// Under the directory's lock: removes the lease `<stem>.lease` if it lapsed a lease length
/// or more before `now` and no record is beside it (none was saved since it was listed).
/// One that cannot be read is left as it is.
fn remove_stale_lease(dir: &Path, stem: &str, now: u64) {
    let path = dir.join(format!("{stem}{LEASE_SUFFIX}"));
    let Ok(Some(lease)) = lease_at(&path) else {
        return;
    };
    if lease.expires_at_unix_nanos.saturating_add(lease.ttl_nanos) > now
        || record_on_file(dir, stem)
    {
        return;
    }
    if let Err(error) = remove_if_present(&path) {
        tracing::debug!(%error, "file store: cannot remove a lapsed lease left without a record");
    }
}

/// The session of the record `<stem>.json` if it names a session of `provider` (a lease
/// without a record has no refresh token to recover).
fn session_of(dir: &Path, stem: &str, provider: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Names {
        provider: String,
        session: String,
    }
    let bytes = read_small(dir, stem, RECORD_SUFFIX, MAX_RECORD_BYTES)?;
    let names: Names = serde_json::from_slice(&bytes).ok()?;
    let key = SessionKey::new(names.provider, names.session);
    (key.provider() == provider && record_stem(&key) == stem).then(|| key.session().to_owned())
}

/// A refresh lease as stored in `<sha256>.lease`.
#[derive(Serialize, Deserialize)]
struct LeaseRecord {
    holder: String,
    /// When the lease lapses, in UNIX nanoseconds of the system clock.
    expires_at_unix_nanos: u64,
    /// The ttl it was taken for, which bounds what is left of it if the clock goes back.
    ttl_nanos: u64,
}

/// What `key`'s lease file holds.
enum OnFile {
    /// No lease file.
    None,
    Lease(LeaseRecord),
    /// A file that is not a lease this release reads (damaged, a stranger's, or another
    /// release's format): it counts as lapsed, and the next holder takes it over.
    Unreadable,
}

/// The lease of `key`; an error if whether there is one cannot be told now (see
/// [`LeaseUnread::Failed`]).
fn read_lease(dir: &Path, key: &SessionKey) -> Result<OnFile, StoreError> {
    match lease_at(&lease_path(dir, key)) {
        Ok(Some(lease)) => Ok(OnFile::Lease(lease)),
        Ok(None) => Ok(OnFile::None),
        Err(LeaseUnread::Foreign(why)) => {
            tracing::warn!(
                session = %key,
                "file store: the refresh lease of {key} {why}; treating it as lapsed"
            );
            Ok(OnFile::Unreadable)
        }
        Err(LeaseUnread::Failed(error)) => Err(StoreError::backend(
            format!("file store: cannot read the refresh lease of {key}"),
            error,
        )),
    }
}

/// Why a lease file that is there was not read.
enum LeaseUnread {
    /// It is not a lease this release reads (damaged, too large, another release's format,
    /// or not a file at all: a link, a FIFO): someone's, lapsed (see [`OnFile::Unreadable`]).
    Foreign(&'static str),
    /// The file system failed to open or read it (too many open files, an I/O error, no
    /// permission): it may be a live holder's, so nothing is decided from it.
    Failed(io::Error),
}

/// The lease file at `path`: `None` if there is none, and why not if it is there but was
/// not read as a lease.
fn lease_at(path: &Path) -> Result<Option<LeaseRecord>, LeaseUnread> {
    let opened = open_for_reading(path);
    #[cfg(test)]
    let opened = tests::lease_read_fault(path).map_or(opened, Err);
    let Some(file) = lease_opened(opened, || is_symlink(path))? else {
        return Ok(None);
    };
    let mut bytes = Vec::new();
    (file.take(MAX_LEASE_BYTES + 1).read_to_end(&mut bytes)).map_err(LeaseUnread::Failed)?;
    if bytes.len() as u64 > MAX_LEASE_BYTES {
        return Err(LeaseUnread::Foreign("is too large"));
    }
    // Not the parser's message: it could quote the file, which is not ours to show.
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|_| LeaseUnread::Foreign("is not a lease"))
}

/// What opening a lease file (`opened`) says: `None` if there is none. What this store
/// never writes at a lease's path (`planted`: a symbolic link; or not a regular file) is
/// foreign; any other error, the file system's failure.
fn lease_opened(
    opened: io::Result<File>,
    planted: impl FnOnce() -> bool,
) -> Result<Option<File>, LeaseUnread> {
    match opened {
        Ok(file) => Ok(Some(file)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) if e.kind() == io::ErrorKind::InvalidInput => {
            Err(LeaseUnread::Foreign("is not a regular file"))
        }
        // `O_NOFOLLOW` on a link: `ELOOP` (a socket: `ENXIO`), whatever the platform names it.
        Err(_) if planted() => Err(LeaseUnread::Foreign("is a symbolic link")),
        #[cfg(unix)]
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NXIO.raw_os_error()) => {
            Err(LeaseUnread::Foreign("is not a regular file"))
        }
        Err(e) => Err(LeaseUnread::Failed(e)),
    }
}

/// Gives `key`'s lease to `holder` until `now + ttl`.
fn write_lease(
    dir: &Path,
    key: &SessionKey,
    holder: &str,
    now: u64,
    ttl: u64,
) -> Result<(), StoreError> {
    let lease = LeaseRecord {
        holder: holder.to_owned(),
        expires_at_unix_nanos: now.saturating_add(ttl),
        ttl_nanos: ttl,
    };
    put_lease(dir, &record_stem(key), &lease, key)
}

/// Writes `lease` as `<stem>.lease` (the lease of `key`, as errors name it).
fn put_lease(
    dir: &Path,
    stem: &str,
    lease: &LeaseRecord,
    key: &dyn fmt::Display,
) -> Result<(), StoreError> {
    let bytes = serde_json::to_vec(lease).map_err(|e| {
        StoreError::backend(
            format!("file store: cannot encode the refresh lease of {key}"),
            e,
        )
    })?;
    // Read back, it would be too large to trust: lapsed, and the next holder's.
    if bytes.len() as u64 > MAX_LEASE_BYTES {
        return Err(StoreError::Unsupported(format!(
            "file store: a lease holder name of {} bytes is too long for the refresh lease of \
             {key} (at most {MAX_LEASE_BYTES} bytes once encoded)",
            lease.holder.len()
        )));
    }
    // Not synced: after a machine crash no holder is left for the lease to protect.
    replace_file(dir, stem, LEASE_SUFFIX, &bytes, Durable::No)
}

/// Best effort: removes `key`'s lease if it lapsed by `now` (or is foreign).
fn remove_lapsed_lease(dir: &Path, key: &SessionKey, now: u64) {
    match read_lease(dir, key) {
        Ok(OnFile::Lease(held)) if held.expires_at_unix_nanos > now => return,
        Ok(_) => {}
        Err(error) => {
            tracing::debug!(%error, "file store: a refresh lease left as it is");
            return;
        }
    }
    if let Err(error) = remove_if_present(&lease_path(dir, key)) {
        tracing::debug!(%error, "file store: cannot remove a lapsed refresh lease");
    }
}

fn lease_path(dir: &Path, key: &SessionKey) -> PathBuf {
    dir.join(format!("{}{LEASE_SUFFIX}", record_stem(key)))
}

/// `at` in UNIX nanoseconds, clamped to what a `u64` holds (1970 to 2554).
fn unix_nanos(at: time::OffsetDateTime) -> u64 {
    u64::try_from(at.unix_timestamp_nanos().max(0)).unwrap_or(u64::MAX)
}

fn remove_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// A record as written.
#[derive(Serialize)]
struct RecordRef<'a> {
    version: Version,
    provider: &'a str,
    session: &'a str,
    record: &'a StoredRecord,
}

/// A record as read.
struct Record {
    version: Version,
    record: StoredRecord,
}

/// A record file as written by this release (`record`) or by the releases before a
/// session's record could be a verdict (`set`: the tokens alone, without a `kind`).
#[derive(Deserialize)]
struct RecordOnFile {
    version: Version,
    provider: String,
    session: String,
    #[serde(default)]
    record: Option<StoredRecord>,
    #[serde(default)]
    set: Option<StoredTokenSet>,
}

/// Removes `key`'s record file (under the directory's lock), and its lease if it lapsed.
/// Whether there was one.
fn remove_record(dir: &Path, key: &SessionKey, clock: &dyn Clock) -> Result<bool, StoreError> {
    let path = record_path(dir, key);
    match fs::remove_file(&path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(false),
        Err(e) => {
            return Err(StoreError::backend(
                format!("file store: cannot remove the record of {key}"),
                e,
            ));
        }
    }
    // A lease outlives its session only while its holder may still be refreshing (as in the
    // PostgreSQL store); a lapsed one is garbage.
    remove_lapsed_lease(dir, key, unix_nanos(clock.now()));
    sync_dir(dir)?;
    Ok(true)
}

/// Runs blocking file work on Tokio's blocking pool.
async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| StoreError::backend("file store: the blocking I/O task failed", e))?
}

/// The hex SHA-256 naming `key`'s record. Lengths are hashed too, so (`a/b`, `c`) and
/// (`a`, `b/c`) name different files.
fn record_stem(key: &SessionKey) -> String {
    let mut hasher = Sha256::new();
    hasher.update(NAME_DOMAIN);
    hasher.update((key.provider().len() as u64).to_be_bytes());
    hasher.update(key.provider().as_bytes());
    hasher.update((key.session().len() as u64).to_be_bytes());
    hasher.update(key.session().as_bytes());
    hasher.finish().iter().map(|b| format!("{b:02x}")).collect()
}

fn record_path(dir: &Path, key: &SessionKey) -> PathBuf {
    dir.join(format!("{}{RECORD_SUFFIX}", record_stem(key)))
}

/// Reads and checks `key`'s record: `None` if there is none in the directory `opened`.
fn read_record(dir: &Path, opened: DirId, key: &SessionKey) -> Result<Option<Record>, StoreError> {
    (read_record_bytes(dir, opened, key)?)
        .map(|bytes| parse_record(&bytes, key))
        .transpose()
}

/// `key`'s record file as stored (at most one byte more than [`MAX_RECORD_BYTES`]), read
/// or not: `None` if there is none in the directory `opened`, and its identity if it
/// cannot be read as a record.
fn read_unreadable(
    dir: &Path,
    opened: DirId,
    key: &SessionKey,
) -> Result<Option<Unreadable>, StoreError> {
    Ok(read_record_bytes(dir, opened, key)?
        .filter(|bytes| parse_record(bytes, key).is_err())
        .map(|bytes| Unreadable::with_content(&bytes)))
}

/// The bytes of `key`'s record file (at most one more than [`MAX_RECORD_BYTES`]): `None` if
/// there is none in the directory `opened`; an error if the directory is no longer `opened`,
/// whether or not it holds one.
fn read_record_bytes(
    dir: &Path,
    opened: DirId,
    key: &SessionKey,
) -> Result<Option<Vec<u8>>, StoreError> {
    let stem = record_stem(key);
    let path = dir.join(format!("{stem}{RECORD_SUFFIX}"));
    let file = match open_for_reading(&path) {
        Ok(file) => file,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            still_opened(dir, opened)?;
            return Ok(None);
        }
        Err(_) if is_symlink(&path) => {
            return Err(StoreError::Insecure(format!(
                "the record of {key} (file {}) is a symbolic link, which this store never \
                 creates and does not follow; remove it, and find out who planted it",
                path.display()
            )));
        }
        Err(e) => {
            return Err(StoreError::backend(
                format!("file store: cannot open the record of {key}"),
                e,
            ));
        }
    };
    let mut bytes = Vec::new();
    file.take(MAX_RECORD_BYTES + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| {
            StoreError::backend(format!("file store: cannot read the record of {key}"), e)
        })?;
    // Checked once it is read: a directory that took the path meanwhile is not the store's.
    still_opened(dir, opened)?;
    Ok(Some(bytes))
}

/// `bytes`, read from `key`'s record file, as its record.
fn parse_record(bytes: &[u8], key: &SessionKey) -> Result<Record, StoreError> {
    let stem = record_stem(key);
    if bytes.len() as u64 > MAX_RECORD_BYTES {
        return Err(StoreError::Corrupt(format!(
            "the record of {key} (file {stem}{RECORD_SUFFIX}) is larger than {MAX_RECORD_BYTES} bytes"
        )));
    }
    // serde_json's messages may quote the offending value (a token), so only the category
    // and position of the failure are kept.
    let record: RecordOnFile = super::json::from_slice(bytes).map_err(|e| {
        let what = match e.classify() {
            serde_json::error::Category::Syntax => "is not valid JSON",
            serde_json::error::Category::Eof => "is truncated",
            serde_json::error::Category::Data => "does not have the shape of a record",
            serde_json::error::Category::Io => "could not be read",
        };
        StoreError::Corrupt(format!(
            "the record of {key} (file {stem}{RECORD_SUFFIX}) {what} (line {}, column {})",
            e.line(),
            e.column()
        ))
    })?;
    if record.provider != key.provider() || record.session != key.session() {
        return Err(StoreError::Corrupt(format!(
            "file {stem}{RECORD_SUFFIX} holds the record of another session than {key}"
        )));
    }
    let Some(value) = (record.record).or(record.set.map(StoredRecord::Tokens)) else {
        return Err(StoreError::Corrupt(format!(
            "the record of {key} (file {stem}{RECORD_SUFFIX}) holds neither a record nor a set"
        )));
    };
    Ok(Record {
        version: record.version,
        record: value,
    })
}

/// What tells one directory from another that later takes its path: its device and inode
/// (unix), and its creation time where the filesystem keeps one (a new directory may get
/// the inode of a removed one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct DirId {
    #[cfg(unix)]
    device: u64,
    #[cfg(unix)]
    inode: u64,
    created: Option<SystemTime>,
}

fn dir_id(dir: &Path) -> io::Result<DirId> {
    let meta = fs::metadata(dir)?;
    if !meta.is_dir() {
        return Err(io::Error::new(io::ErrorKind::NotFound, "not a directory"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok(DirId {
            device: meta.dev(),
            inode: meta.ino(),
            created: meta.created().ok(),
        })
    }
    #[cfg(not(unix))]
    Ok(DirId {
        created: meta.created().ok(),
    })
}

/// Fails unless `dir` is still the directory the store opened: a record missing from a
/// directory that is gone or another one says nothing about the session.
fn still_opened(dir: &Path, opened: DirId) -> Result<(), StoreError> {
    match dir_id(dir) {
        Ok(found) if found == opened => Ok(()),
        Ok(_) => Err(StoreError::Backend {
            message: format!(
                "file store: {} is no longer the directory the store opened (removed and \
                 created again, or a volume unmounted); reopen the store",
                dir.display()
            ),
            source: None,
        }),
        Err(e) => Err(StoreError::backend(
            format!("file store: the directory {} is gone", dir.display()),
            e,
        )),
    }
}

/// The version that replaces `found`, given the directory's `counter` (see [`FileStore`]).
fn next_version(found: Option<Version>, counter: Version) -> Result<Version, StoreError> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .ok()
        .and_then(|d| u64::try_from(d.as_nanos()).ok())
        .unwrap_or(0);
    let after_found = match found {
        Some(found) => found.checked_add(1),
        None => Some(1),
    };
    match (after_found, counter.checked_add(1)) {
        (Some(a), Some(b)) => Ok(a.max(b).max(now)),
        _ => Err(StoreError::Backend {
            message: "file store: versions are exhausted".into(),
            source: None,
        }),
    }
}

/// The exclusive OS lock on the directory, released when dropped: on unix the directory's
/// own (a lock file removed under its holder, by a cleaner of old files say, would let the
/// next writer create another, lock it and write beside the holder; a directory with files
/// in it cannot be removed), and the lock file's (the one earlier releases of this crate
/// take, alone; it holds the version counter), in that order.
struct DirLock {
    file: File,
    // Released after the lock file's (fields drop after `drop`).
    #[cfg(unix)]
    _dir: Option<File>,
}

impl DirLock {
    fn acquire(dir: &Path) -> Result<Self, StoreError> {
        Self::take(dir, true)?.ok_or_else(|| StoreError::Backend {
            message: format!("file store: cannot lock {}", dir.display()),
            source: None,
        })
    }

    /// The lock if no other holder has it; `None` otherwise.
    fn try_acquire(dir: &Path) -> Result<Option<Self>, StoreError> {
        Self::take(dir, false)
    }

    fn take(dir: &Path, wait: bool) -> Result<Option<Self>, StoreError> {
        let cannot =
            |e| StoreError::backend(format!("file store: cannot lock {}", dir.display()), e);
        let lock = |file: &File| match wait {
            true => os_lock(file).map(|()| true),
            false => os_try_lock(file),
        };
        // A directory that cannot be opened or locked (a filesystem that refuses to lock
        // one): the lock file alone, as before.
        #[cfg(unix)]
        let dir_lock = match open_dir(dir).and_then(|handle| lock(&handle).map(|l| (handle, l))) {
            Ok((handle, true)) => Some(handle),
            Ok((_, false)) => return Ok(None),
            Err(error) => {
                tracing::debug!(%error, "file store: cannot lock the directory itself");
                None
            }
        };
        let file = open_lock_file(dir)?;
        if !lock(&file).map_err(cannot)? {
            return Ok(None);
        }
        Ok(Some(Self {
            file,
            #[cfg(unix)]
            _dir: dir_lock,
        }))
    }

    /// The highest version the directory has issued; 0 when unknown (the clock term of
    /// [`next_version`] then still keeps versions from repeating).
    fn counter(&self) -> Version {
        let mut text = String::new();
        let read = (&self.file)
            .seek(SeekFrom::Start(0))
            .and_then(|_| (&self.file).take(64).read_to_string(&mut text));
        match read {
            Ok(_) if text.trim().is_empty() => 0,
            Ok(_) => text.trim().parse().unwrap_or_else(|_| {
                tracing::warn!(
                    "file store: the version counter is unreadable; relying on the clock"
                );
                0
            }),
            Err(error) => {
                tracing::warn!(%error, "file store: cannot read the version counter; relying on the clock");
                0
            }
        }
    }

    fn set_counter(&self, version: Version) -> Result<(), StoreError> {
        let text = format!("{version:020}\n");
        let mut file = &self.file;
        file.seek(SeekFrom::Start(0))
            .and_then(|_| file.write_all(text.as_bytes()))
            .and_then(|()| file.set_len(text.len() as u64))
            .and_then(|()| file.sync_data())
            .map_err(|e| StoreError::backend("file store: cannot write the version counter", e))
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        // Closing the file releases the lock too; unlocking first just makes it prompt.
        let _ = os_unlock(&self.file);
    }
}

// `File::lock` and its siblings are stable since Rust 1.89, above the workspace's declared
// `rust-version` (1.88): that declaration must be raised to 1.89 for this module. Every use
// goes through these three functions so the exception stays in one place.

/// Takes the exclusive OS lock on `file`, waiting for other holders.
#[allow(clippy::incompatible_msrv)]
fn os_lock(file: &File) -> io::Result<()> {
    file.lock()
}

/// Takes the exclusive OS lock on `file` if it is free; `false` if another holder has it.
#[allow(clippy::incompatible_msrv)]
fn os_try_lock(file: &File) -> io::Result<bool> {
    match file.try_lock() {
        Ok(()) => Ok(true),
        Err(TryLockError::WouldBlock) => Ok(false),
        Err(TryLockError::Error(e)) => Err(e),
    }
}

/// Releases the OS lock on `file`.
#[allow(clippy::incompatible_msrv)]
fn os_unlock(file: &File) -> io::Result<()> {
    file.unlock()
}

/// Opens the store's directory itself (to lock it), never through a symbolic link.
#[cfg(unix)]
fn open_dir(dir: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::DIRECTORY).bits() as i32,
    );
    options.open(dir)
}

/// Opens an existing file of the store for reading, never through a symbolic link, and
/// only a regular file: a FIFO or a device planted in the directory would hold the open (or
/// the read) for ever, and a blocking-pool thread with it. (Opened without waiting for a
/// FIFO's writer; a regular file's reads ignore that flag.)
fn open_for_reading(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    // `no_follow`'s flag, and not blocking.
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        &mut options,
        (rustix::fs::OFlags::NOFOLLOW | rustix::fs::OFlags::NONBLOCK).bits() as i32,
    );
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "not a regular file (this store writes none other)",
        ));
    }
    Ok(file)
}

fn open_lock_file(dir: &Path) -> Result<File, StoreError> {
    let path = dir.join(LOCK_FILE);
    let mut options = OpenOptions::new();
    options.read(true).write(true).create(true).truncate(false);
    private_mode(&mut options);
    no_follow(&mut options);
    let file = options.open(&path).map_err(|e| {
        if is_symlink(&path) {
            // Following it would let whoever planted it choose a file for us to overwrite.
            StoreError::Insecure(format!(
                "the lock file {} is a symbolic link, which this store never creates and \
                 does not follow; remove it, and find out who planted it",
                path.display()
            ))
        } else {
            StoreError::backend(
                format!("file store: cannot open the lock file in {}", dir.display()),
                e,
            )
        }
    })?;
    // A hard link planted as the lock file passes the symbolic-link check: the version
    // counter written into it would overwrite the file it links to.
    let metadata = file.metadata().map_err(|e| {
        StoreError::backend(
            format!("file store: cannot read the lock file in {}", dir.display()),
            e,
        )
    })?;
    if !metadata.is_file() || links(&metadata) > 1 {
        return Err(StoreError::Insecure(format!(
            "the lock file {} is not a file of its own (a hard link, or not a regular file), \
             which this store never creates and does not write; remove it, and find out who \
             planted it",
            path.display()
        )));
    }
    Ok(file)
}

/// How many names the file of `metadata` has (1 where the system does not say).
fn links(metadata: &fs::Metadata) -> u64 {
    #[cfg(unix)]
    return std::os::unix::fs::MetadataExt::nlink(metadata);
    #[cfg(not(unix))]
    {
        let _ = metadata;
        1
    }
}

/// Makes `options` fail on a symbolic link in the last component of the path (unix; the
/// error code differs between systems, so callers ask [`is_symlink`] why it failed).
fn no_follow(options: &mut OpenOptions) {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(
        options,
        rustix::fs::OFlags::NOFOLLOW.bits() as i32,
    );
    #[cfg(not(unix))]
    let _ = options;
}

fn is_symlink(path: &Path) -> bool {
    fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink())
}

/// The directory `dir` resolved (unix: through any symbolic links, once, so the store keeps
/// using that directory whatever the links later point at), refused unless it is private.
fn resolve_private_dir(dir: &Path) -> Result<PathBuf, StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        let cannot = |what: &str, e| {
            StoreError::backend(format!("file store: cannot {what} {}", dir.display()), e)
        };
        let resolved = fs::canonicalize(dir).map_err(|e| cannot("resolve", e))?;
        let meta = fs::metadata(&resolved).map_err(|e| cannot("inspect", e))?;
        check_private_dir(&resolved, meta.mode(), meta.uid(), current_uid())?;
        Ok(resolved)
    }
    #[cfg(not(unix))]
    {
        Ok(dir.to_owned())
    }
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    let mut builder = fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| StoreError::backend(format!("file store: cannot create {}", dir.display()), e))
}

/// The user this process acts as.
#[cfg(unix)]
fn current_uid() -> u32 {
    rustix::process::geteuid().as_raw()
}

/// Refuses a directory (of `mode` and `owner`) that another user than `me` could change.
#[cfg(unix)]
fn check_private_dir(dir: &Path, mode: u32, owner: u32, me: u32) -> Result<(), StoreError> {
    let shown = dir.display();
    if owner != me {
        return Err(StoreError::Insecure(format!(
            "the file store directory {shown} is owned by uid {owner}, not by this process's \
             user (uid {me}); use a directory this user owns (or `chown {me} {shown}`)"
        )));
    }
    let writers = match (mode & 0o020 != 0, mode & 0o002 != 0) {
        (true, true) => "group and others",
        (true, false) => "group",
        (false, true) => "others",
        (false, false) => return Ok(()),
    };
    Err(StoreError::Insecure(format!(
        "the file store directory {shown} is writable by {writers} (mode {:o}), who could \
         replace its files; run `chmod 700 {shown}`",
        mode & 0o7777
    )))
}

/// Makes files created through `options` readable and writable by their owner only.
fn private_mode(options: &mut OpenOptions) {
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(options, 0o600);
    #[cfg(not(unix))]
    let _ = options;
}

/// A new, private temporary file for the record `stem`, next to it.
fn create_temp_file(dir: &Path, stem: &str) -> io::Result<(PathBuf, File)> {
    let path = dir.join(format!(
        ".{stem}.{}{TEMP_SUFFIX}",
        uuid::Uuid::new_v4().simple()
    ));
    let mut options = OpenOptions::new();
    options.write(true).create_new(true);
    private_mode(&mut options);
    no_follow(&mut options);
    let file = options.open(&path)?;
    Ok((path, file))
}

/// Whether a replaced file must survive a machine crash.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Durable {
    Yes,
    No,
}

/// Replaces the file `<stem><suffix>` with `bytes`: temporary file, rename, and when
/// `durable`, an fsync of the file before the rename and of the directory after it.
fn replace_file(
    dir: &Path,
    stem: &str,
    suffix: &str,
    bytes: &[u8],
    durable: Durable,
) -> Result<(), StoreError> {
    let fail = |step: &str, e: io::Error| {
        StoreError::backend(format!("file store: cannot {step} in {}", dir.display()), e)
    };
    let (temp, mut file) =
        create_temp_file(dir, stem).map_err(|e| fail("create a temporary file", e))?;
    let written = file
        .write_all(bytes)
        .map_err(|e| fail("write a temporary file", e))
        .and_then(|()| match durable {
            Durable::Yes => file
                .sync_all()
                .map_err(|e| fail("sync a temporary file", e)),
            Durable::No => Ok(()),
        });
    drop(file);
    let renamed = written.and_then(|()| {
        fs::rename(&temp, dir.join(format!("{stem}{suffix}")))
            .map_err(|e| fail("replace a file", e))
    });
    if let Err(e) = renamed {
        let _ = fs::remove_file(&temp);
        return Err(e);
    }
    match durable {
        Durable::Yes => sync_dir(dir),
        Durable::No => Ok(()),
    }
}

/// Makes renames and removals in `dir` durable.
fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        let synced = File::open(dir).and_then(|d| d.sync_all());
        dir_sync_answer(synced).map_err(|e| {
            StoreError::backend(format!("file store: cannot sync {}", dir.display()), e)
        })
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(())
    }
}

/// What a directory's `fsync` answered, as the store reads it: a file system that cannot
/// sync a directory at all (`EINVAL` or `EBADF`: some FUSE and overlay mounts) has made the
/// rename or removal as durable as it can, which is not a failure (PostgreSQL reads it so
/// too); reported as one, it would tell an `insert` that saved its tokens that it failed.
#[cfg(unix)]
fn dir_sync_answer(synced: std::io::Result<()>) -> std::io::Result<()> {
    match synced {
        Err(e)
            if rustix::io::Errno::from_io_error(&e).is_some_and(|errno| {
                errno == rustix::io::Errno::INVAL || errno == rustix::io::Errno::BADF
            }) =>
        {
            Ok(())
        }
        other => other,
    }
}

/// Whether `stem` is one [`record_stem`] makes (the hex SHA-256, lowercase).
fn is_record_stem(stem: &str) -> bool {
    stem.len() == 64 && stem.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// Whether `name` is one of this store's temporary files.
fn is_temp_file_name(name: &str) -> bool {
    name.strip_prefix('.')
        .and_then(|rest| rest.strip_suffix(TEMP_SUFFIX))
        .and_then(|rest| rest.split_once('.'))
        .is_some_and(|(stem, _)| stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// Best effort: removes the leases that lapsed a lease length ago or more without a record
/// beside them ([`remove_stale_lease`]). Call under the lock.
fn remove_stale_leases(dir: &Path, now: u64) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let stem = name.to_str().and_then(|n| n.strip_suffix(LEASE_SUFFIX));
        if let Some(stem) = stem.filter(|stem| is_record_stem(stem))
            && !record_on_file(dir, stem)
        {
            remove_stale_lease(dir, stem, now);
        }
    }
}

/// Best effort: removes temporary files left by crashed writers. Call under the lock.
fn remove_stray_temp_files(dir: &Path) {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(error) => {
            tracing::debug!(%error, "file store: cannot list the directory to clean up");
            return;
        }
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        if name.to_str().is_some_and(is_temp_file_name)
            && let Err(error) = fs::remove_file(entry.path())
        {
            tracing::debug!(%error, "file store: cannot remove a stray temporary file");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::time::Duration;

    use tempfile::TempDir;

    use super::*;
    use crate::clock::ManualClock;
    use crate::{secret::AccessToken, secret::RefreshToken, token_set::TokenSet};

    /// A file system that cannot sync a directory (some FUSE and overlay mounts answer
    /// `EINVAL`) does not fail a save that was renamed into place; any other error does.
    #[cfg(unix)]
    #[test]
    fn a_directory_sync_the_file_system_does_not_support_is_no_failure() {
        use rustix::io::Errno;
        let refused = |errno: Errno| Err(std::io::Error::from_raw_os_error(errno.raw_os_error()));
        assert!(dir_sync_answer(refused(Errno::INVAL)).is_ok());
        assert!(dir_sync_answer(refused(Errno::BADF)).is_ok());
        assert!(dir_sync_answer(refused(Errno::IO)).is_err());
        assert!(dir_sync_answer(refused(Errno::NOSPC)).is_err());
        assert!(dir_sync_answer(Ok(())).is_ok());
    }

    /// A lease file the file system fails to open (too many open files, an I/O error, no
    /// permission) is no lapsed lease to take over: it may be a live holder's. What this
    /// store never writes there (a link, a socket, not a regular file) is foreign, and lapsed.
    #[cfg(unix)]
    #[test]
    fn a_lease_file_that_fails_to_open_is_an_error_not_a_lapsed_lease() {
        use rustix::io::Errno;
        let failing = |errno: Errno| Err(io::Error::from_raw_os_error(errno.raw_os_error()));
        let opened = |result, planted| match lease_opened(result, || planted) {
            Ok(file) => format!("present: {}", file.is_some()),
            Err(LeaseUnread::Foreign(_)) => "foreign".into(),
            Err(LeaseUnread::Failed(_)) => "failed".into(),
        };
        for errno in [
            Errno::MFILE,
            Errno::NFILE,
            Errno::IO,
            Errno::ACCESS,
            Errno::INTR,
        ] {
            assert_eq!(opened(failing(errno), false), "failed", "{errno:?}");
        }
        assert_eq!(opened(failing(Errno::NOENT), false), "present: false");
        assert_eq!(opened(failing(Errno::LOOP), true), "foreign");
        assert_eq!(opened(failing(Errno::NXIO), false), "foreign");
        let not_a_file = Err(io::Error::new(io::ErrorKind::InvalidInput, "not a file"));
        assert_eq!(opened(not_a_file, false), "foreign");
    }

    /// Another process's lease that this one fails to read (here: its file system answers
    /// `EMFILE`) is neither taken over nor released.
    #[tokio::test]
    async fn a_live_lease_this_process_fails_to_read_is_not_taken_over() {
        let dir = TempDir::new().unwrap();
        let store = FileStore::open(dir.path()).unwrap();
        let key = SessionKey::new("p", "s");
        let ttl = Duration::from_secs(60);
        assert_eq!(
            store.acquire_lease(&key, "a", ttl).await.unwrap(),
            Lease::Acquired
        );
        let path = lease_path(dir.path(), &key);
        // Too many open files, as `open` would answer: the file stays unread.
        let fault = LeaseReadFault::at(&path);
        let taken = store.acquire_lease(&key, "b", ttl).await;
        assert!(
            matches!(taken, Err(StoreError::Backend { .. })),
            "{taken:?}"
        );
        store.release_lease(&key, "a").await.unwrap_err();
        drop(fault);
        let held = store.acquire_lease(&key, "b", ttl).await.unwrap();
        assert!(matches!(held, Lease::HeldByOther { .. }), "{held:?}");
    }

    /// Paths whose lease file fails to open, as with too many open files.
    static LEASE_READ_FAULTS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

    pub(super) fn lease_read_fault(path: &Path) -> Option<io::Error> {
        let faults = LEASE_READ_FAULTS.lock().unwrap();
        (faults.iter().any(|failing| failing == path))
            .then(|| io::Error::other("too many open files"))
    }

    /// While held, opening the lease file at its path fails.
    struct LeaseReadFault(PathBuf);

    impl LeaseReadFault {
        fn at(path: &Path) -> Self {
            LEASE_READ_FAULTS.lock().unwrap().push(path.to_owned());
            Self(path.to_owned())
        }
    }

    impl Drop for LeaseReadFault {
        fn drop(&mut self) {
            LEASE_READ_FAULTS.lock().unwrap().retain(|p| *p != self.0);
        }
    }

    fn set(token: &str) -> StoredRecord {
        TokenSet::<serde_json::Value>::new(AccessToken::new(token))
            .with_refresh_token(RefreshToken::new(format!("rt-{token}")))
            .to_stored()
            .unwrap()
            .into()
    }

    fn access(loaded: &Option<Versioned<StoredRecord>>) -> Option<(Version, String)> {
        loaded.as_ref().map(|v| {
            (
                v.version,
                v.value
                    .tokens()
                    .unwrap()
                    .access_token
                    .expose_secret()
                    .to_owned(),
            )
        })
    }

    fn names(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn save_is_compare_and_swap_and_stale_versions_lose() {
        let tmp = TempDir::new().unwrap();
        let store = FileStore::open(tmp.path()).unwrap();
        let key = SessionKey::new("p", "s");
        assert!(store.load(&key).await.unwrap().is_none());

        let v1 = store.save(&key, &set("a"), None).await.unwrap();
        let err = store.save(&key, &set("b"), None).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { expected: None, found: Some(v) } if v == v1),
            "{err:?}"
        );
        let err = store.save(&key, &set("b"), Some(v1 + 1)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { found: Some(v), .. } if v == v1),
            "{err:?}"
        );

        let v2 = store.save(&key, &set("b"), Some(v1)).await.unwrap();
        assert!(v2 > v1);
        let err = store.save(&key, &set("c"), Some(v1)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { expected: Some(e), found: Some(f) } if e == v1 && f == v2)
        );
        let err = store.delete(&key, Some(v1)).await.unwrap_err();
        assert!(
            matches!(err, StoreError::Conflict { .. }),
            "a stale delete must lose: {err:?}"
        );

        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.version, v2);
        assert_eq!(loaded.value, set("b"));
        // An absent record stays absent whatever the expected version.
        assert!(
            !store
                .delete(&SessionKey::new("p", "other"), Some(v2))
                .await
                .unwrap()
        );
        assert!(store.delete(&key, Some(v2)).await.unwrap());
        assert!(store.load(&key).await.unwrap().is_none());
    }

    /// A record file of the releases before a session's record could be a verdict holds the
    /// set alone, under `set` and without a `kind` (as the PostgreSQL store's rows of schema
    /// version 1 did, which its migration tags): it is the session's tokens, read as such,
    /// not an unreadable record an insert removes and whose refresh token is lost.
    #[tokio::test]
    async fn a_record_file_of_an_earlier_release_loads_as_its_tokens() {
        let tmp = TempDir::new().unwrap();
        let store = FileStore::open(tmp.path()).unwrap();
        let key = SessionKey::new("vaultist", "customer-1");
        let earlier = serde_json::json!({
            "version": 41,
            "provider": "vaultist",
            "session": "customer-1",
            "set": {
                "access_token": "at-old",
                "refresh_token": "rt-old",
                "access_expires_at": "2026-11-20T10:00:00Z",
                "token_type": "Bearer",
                "extras": {"user_id": "u-1"}
            }
        });
        fs::write(
            record_path(store.dir(), &key),
            serde_json::to_vec_pretty(&earlier).unwrap(),
        )
        .unwrap();

        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(loaded.version, 41);
        let tokens = loaded.value.tokens().unwrap();
        assert_eq!(
            tokens.refresh_token.as_ref().unwrap().expose_secret(),
            "rt-old"
        );
        assert_eq!(tokens.extras["user_id"], "u-1");
        assert_eq!(store.unreadable(&key).await.unwrap(), None);
        // Saved over at its version, in this release's form.
        let v = store.save(&key, &set("at-new"), Some(41)).await.unwrap();
        assert_eq!(
            access(&store.load(&key).await.unwrap()),
            Some((v, "at-new".into()))
        );
    }

    #[tokio::test]
    async fn a_reopened_store_loads_what_was_saved() {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("nested").join("tokens");
        let key = SessionKey::new("vaultist", "customer-1");
        let saved = TokenSet::<serde_json::Value>::new(AccessToken::new("at-1"))
            .with_refresh_token(RefreshToken::new("rt-1"))
            .with_access_expires_at(time::macros::datetime!(2030-01-01 00:00 UTC))
            .with_token_type("Bearer")
            .with_extras(serde_json::json!({ "user_id": 42 }))
            .into();
        let version = {
            let store = FileStore::open(&dir).unwrap();
            store.save(&key, &saved, None).await.unwrap()
        };

        let store = FileStore::open(&dir).unwrap();
        let loaded = store.load(&key).await.unwrap().unwrap();
        assert_eq!(
            loaded,
            Versioned {
                version,
                value: saved
            }
        );
        assert!(store.save(&key, &set("b"), Some(version)).await.unwrap() > version);
    }

    /// Any set a provider's answer can hold (the client reads at most
    /// `transport::DEFAULT_MAX_BODY` bytes) is saved and loads back: its record is written as
    /// compact JSON, which is about the size of the answer, and the store loads records
    /// well over that size. Pretty-printed, a few kilobytes of nested extras grow past a
    /// megabyte (every element on its own line, indented by its depth), and a save that can
    /// never succeed keeps the spent refresh token in the store.
    #[tokio::test]
    async fn a_set_as_large_as_an_answer_can_hold_is_saved_and_loads() {
        let tmp = TempDir::new().unwrap();
        let store = FileStore::open(tmp.path()).unwrap();
        let key = SessionKey::new("p", "s");
        // 10 KB of JSON: 5,000 numbers 100 arrays deep.
        let mut nested = serde_json::Value::Array(vec![serde_json::json!(1); 5_000]);
        for _ in 0..100 {
            nested = serde_json::Value::Array(vec![nested]);
        }
        assert!(serde_json::to_vec(&nested).unwrap().len() < 11_000);
        // A string filling what an answer can hold.
        let long = "x".repeat(crate::transport::DEFAULT_MAX_BODY - 100);
        for extras in [nested, serde_json::json!({ "note": long })] {
            let record: StoredRecord = TokenSet::<serde_json::Value>::new(AccessToken::new("at"))
                .with_refresh_token(RefreshToken::new("rt"))
                .with_extras(extras)
                .into();
            let version = store.save(&key, &record, None).await.unwrap();
            let loaded = store.load(&key).await.unwrap().unwrap();
            assert_eq!((loaded.version, &loaded.value), (version, &record));
            store.delete(&key, Some(version)).await.unwrap();
        }
    }

    /// The store saves only what it loads back, however deep
    /// (`json::saves_only_what_loads`): a set that saved and then never loaded would leave
    /// the store holding something no process can use.
    #[tokio::test]
    async fn a_record_saves_only_if_it_loads_back_however_deep() {
        let tmp = TempDir::new().unwrap();
        let store = FileStore::open(tmp.path()).unwrap();
        super::super::json::saves_only_what_loads(&store).await;
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn records_temp_files_and_lock_are_0600_and_the_directory_0700() {
        use std::os::unix::fs::PermissionsExt;
        let mode = |path: &Path| fs::metadata(path).unwrap().permissions().mode() & 0o777;

        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("store");
        let store = FileStore::open(&dir).unwrap();
        let key = SessionKey::new("p", "s");
        let v1 = store.save(&key, &set("a"), None).await.unwrap();
        store.save(&key, &set("b"), Some(v1)).await.unwrap();

        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&record_path(&dir, &key)), 0o600);
        assert_eq!(mode(&dir.join(LOCK_FILE)), 0o600);
        let (temp, _file) = create_temp_file(&dir, &record_stem(&key)).unwrap();
        assert_eq!(mode(&temp), 0o600);
        assert!(is_temp_file_name(
            temp.file_name().unwrap().to_str().unwrap()
        ));
    }

    #[tokio::test]
    async fn leftover_temp_files_do_not_affect_load_and_are_cleaned_on_open() {
        let tmp = TempDir::new().unwrap();
        let store = FileStore::open(tmp.path()).unwrap();
        let key = SessionKey::new("p", "s");
        let v1 = store.save(&key, &set("good"), None).await.unwrap();

        // A writer that crashed mid-write of a newer record, and one that left garbage.
        let stem = record_stem(&key);
        let partial = tmp.path().join(format!(".{stem}.{}.tmp", "0".repeat(32)));
        fs::write(
            &partial,
            format!(
                r#"{{"version": {}, "provider": "p", "session": "s", "record": {{"kind": "tokens", "access_tok"#,
                v1 + 1
            ),
        )
        .unwrap();
        let garbage = tmp.path().join(format!(".{stem}.{}.tmp", "1".repeat(32)));
        fs::write(&garbage, [0xff, 0x00, 0x13, 0x37]).unwrap();
        let unrelated = tmp.path().join("notes.tmp");
        fs::write(&unrelated, "not ours").unwrap();

        assert_eq!(
            access(&store.load(&key).await.unwrap()),
            Some((v1, "good".into()))
        );
        let v2 = store.save(&key, &set("next"), Some(v1)).await.unwrap();
        assert_eq!(
            access(&store.load(&key).await.unwrap()),
            Some((v2, "next".into()))
        );
        assert!(
            partial.exists() && garbage.exists(),
            "a running store leaves them alone"
        );

        let reopened = FileStore::open(tmp.path()).unwrap();
        assert!(
            !partial.exists() && !garbage.exists(),
            "open removes leftovers"
        );
        assert!(unrelated.exists(), "files that are not ours stay");
        assert_eq!(
            access(&reopened.load(&key).await.unwrap()),
            Some((v2, "next".into()))
        );
    }

    #[tokio::test]
    async fn a_corrupt_record_is_corrupt_without_leaking_its_content() {
        let tmp = TempDir::new().unwrap();
        let store = FileStore::open(tmp.path()).unwrap();
        let key = SessionKey::new("p", "s");
        let path = record_path(tmp.path(), &key);
        let planted = [
            ("SECRET-not-json", "SECRET-not-json {{{".to_owned()),
            ("SECRET-truncated", r#"{"version": 1, "provider": "p", "session": "s", "record": {"kind": "tokens", "access_token": "SECRET-truncated"#.to_owned()),
            ("SECRET-version", r#"{"version": "SECRET-version", "provider": "p", "session": "s", "record": {}}"#.to_owned()),
            ("987654321", r#"{"version": 1, "provider": "p", "session": "s", "record": {"kind": "tokens", "access_token": 987654321}}"#.to_owned()),
            ("SECRET-array", r#"{"version": 1, "provider": "p", "session": "s", "record": {"kind": "tokens", "access_token": ["SECRET-array"]}}"#.to_owned()),
            ("SECRET-missing", r#"{"version": 1, "provider": "p", "session": "s", "record": {"kind": "tokens", "refresh_token": "SECRET-missing"}}"#.to_owned()),
            (
                "SECRET-other-key",
                r#"{"version": 1, "provider": "p", "session": "t", "record": {"kind": "tokens", "access_token": "SECRET-other-key"}}"#.to_owned(),
            ),
            ("SECRET-huge", format!("\"SECRET-huge{}\"", "x".repeat(MAX_RECORD_BYTES as usize))),
        ];
        for (secret, content) in planted {
            fs::write(&path, &content).unwrap();
            let errors = [
                store.load(&key).await.unwrap_err(),
                store.save(&key, &set("new"), Some(1)).await.unwrap_err(),
                store.delete(&key, Some(1)).await.unwrap_err(),
            ];
            for err in errors {
                assert!(matches!(err, StoreError::Corrupt(_)), "{secret}: {err:?}");
                let shown = format!("{err} {err:?}");
                assert!(!shown.contains(secret), "{shown}");
                assert!(shown.contains("p/s"), "names the session: {shown}");
            }
            assert_eq!(
                fs::read_to_string(&path).unwrap(),
                content,
                "a failed save leaves the file alone"
            );
        }
        // An unconditional delete clears a corrupt record.
        assert!(store.delete(&key, None).await.unwrap());
        assert!(store.load(&key).await.unwrap().is_none());
    }

    /// An unreadable record is removed only while it is the file read: a login saved over
    /// it since (by another process), or another unreadable file (a newer release's), is
    /// kept by a delete that lands after it.
    #[tokio::test]
    async fn an_unreadable_record_is_removed_only_while_it_is_the_one_read() {
        let tmp = TempDir::new().unwrap();
        let store = FileStore::open(tmp.path()).unwrap();
        let key = SessionKey::new("p", "s");
        let path = record_path(tmp.path(), &key);
        assert_eq!(store.unreadable(&key).await.unwrap(), None);
        fs::write(&path, "{\"version\": 3, \"provider\"").unwrap();
        let seen = store.unreadable(&key).await.unwrap().unwrap();
        assert!(!format!("{seen:?}").contains("version\""), "{seen:?}");
        // Replaced by a login since: kept.
        store.delete(&key, None).await.unwrap();
        let login = store.save(&key, &set("login"), None).await.unwrap();
        assert_eq!(store.unreadable(&key).await.unwrap(), None);
        assert!(!store.delete_unreadable(&key, &seen).await.unwrap());
        assert_eq!(store.load(&key).await.unwrap().unwrap().version, login);
        // Replaced by another unreadable record: kept.
        let newer =
            r#"{"version": 9, "provider": "p", "session": "s", "record": {"kind": "pending"}}"#;
        fs::write(&path, newer).unwrap();
        assert!(!store.delete_unreadable(&key, &seen).await.unwrap());
        assert_eq!(fs::read_to_string(&path).unwrap(), newer);
        // The one read is removed.
        let now = store.unreadable(&key).await.unwrap().unwrap();
        assert!(store.delete_unreadable(&key, &now).await.unwrap());
        assert!(store.load(&key).await.unwrap().is_none());
        assert!(!store.delete_unreadable(&key, &now).await.unwrap());
    }

    #[tokio::test]
    async fn a_record_too_large_to_load_is_not_saved() {
        let tmp = TempDir::new().unwrap();
        let store = FileStore::open(tmp.path()).unwrap();
        let key = SessionKey::new("p", "s");
        let v1 = store.save(&key, &set("small"), None).await.unwrap();
        let huge = set(&"x".repeat(MAX_RECORD_BYTES as usize));
        let refused = store.save(&key, &huge, Some(v1)).await.unwrap_err();
        assert!(
            !matches!(refused, StoreError::Conflict { .. }),
            "{refused:?}"
        );
        assert!(!format!("{refused} {refused:?}").contains("xxxxxxxx"));
        // What a successful save wrote always loads: here, the record before.
        assert_eq!(
            access(&store.load(&key).await.unwrap()),
            Some((v1, "small".into()))
        );
    }

    #[tokio::test]
    async fn versions_never_repeat_after_delete() {
        let tmp = TempDir::new().unwrap();
        let key = SessionKey::new("p", "s");
        let mut seen = HashSet::new();
        let mut last = 0;
        for round in 0..3 {
            // A new store each round: the counter lives in the directory, not the process.
            let store = FileStore::open(tmp.path()).unwrap();
            let v1 = store.save(&key, &set("a"), None).await.unwrap();
            let v2 = store.save(&key, &set("b"), Some(v1)).await.unwrap();
            assert!(last < v1 && v1 < v2, "round {round}: {last} {v1} {v2}");
            assert!(
                seen.insert(v1) && seen.insert(v2),
                "round {round}: a version repeated"
            );
            assert!(store.delete(&key, Some(v2)).await.unwrap());
            assert!(!store.delete(&key, None).await.unwrap());
            let err = store.delete(&key, Some(v2)).await;
            assert!(matches!(err, Ok(false)), "{err:?}");
            last = v2;
        }
        // Even when the counter is lost, the clock keeps versions new.
        fs::remove_file(tmp.path().join(LOCK_FILE)).unwrap();
        let store = FileStore::open(tmp.path()).unwrap();
        let v = store.save(&key, &set("c"), None).await.unwrap();
        assert!(v > last && !seen.contains(&v));
        // A corrupt counter is not fatal either.
        fs::write(tmp.path().join(LOCK_FILE), "garbage").unwrap();
        let w = store.save(&key, &set("d"), Some(v)).await.unwrap();
        assert!(w > v);
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_directory_removed_or_replaced_under_the_store_is_an_error_not_an_empty_store() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("store");
        let store = FileStore::open(&dir).unwrap();
        let key = SessionKey::new("p", "s");
        let v1 = store.save(&key, &set("a"), None).await.unwrap();
        // A record another store removed is absent, as ever.
        assert!(
            FileStore::open(&dir)
                .unwrap()
                .delete(&key, Some(v1))
                .await
                .unwrap()
        );
        assert!(store.load(&key).await.unwrap().is_none());
        let v2 = store.save(&key, &set("b"), None).await.unwrap();

        let gone = |result: Result<_, StoreError>, what: &str| {
            assert!(
                matches!(&result, Err(StoreError::Backend { .. })),
                "{what}: {:?}",
                result.map(|_| ())
            );
        };
        fs::remove_dir_all(&dir).unwrap();
        gone(store.load(&key).await.map(drop), "load, removed");
        // Created again at the same path (a new inode may be the old one's).
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        gone(store.load(&key).await.map(drop), "load, replaced");
        gone(
            store.save(&key, &set("c"), None).await.map(drop),
            "save, replaced",
        );
        gone(
            store.save(&key, &set("c"), Some(v2)).await.map(drop),
            "save at v2, replaced",
        );
        gone(store.delete(&key, None).await.map(drop), "delete, replaced");
        assert!(
            !names(&dir).iter().any(|name| name.ends_with(RECORD_SUFFIX)),
            "no record written into another directory"
        );
        // Reopened, the new directory is the store's.
        let reopened = FileStore::open(&dir).unwrap();
        assert!(reopened.load(&key).await.unwrap().is_none());
        reopened.save(&key, &set("d"), None).await.unwrap();
    }

    #[test]
    fn next_version_takes_the_largest_candidate() {
        assert_eq!(next_version(Some(u64::MAX - 2), 0).unwrap(), u64::MAX - 1);
        assert_eq!(next_version(None, u64::MAX - 2).unwrap(), u64::MAX - 1);
        assert!(
            next_version(None, 5).unwrap() > 1_000_000_000_000_000_000,
            "the clock term"
        );
        assert!(next_version(Some(u64::MAX), 0).is_err());
        assert!(next_version(None, u64::MAX).is_err());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn two_stores_racing_on_one_directory_let_exactly_one_cas_win() {
        let tmp = TempDir::new().unwrap();
        // Two instances stand in for two processes: they share nothing but the directory.
        let a = Arc::new(FileStore::open(tmp.path()).unwrap());
        let b = Arc::new(FileStore::open(tmp.path()).unwrap());
        let key = SessionKey::new("p", "s");
        let v0 = a.save(&key, &set("start"), None).await.unwrap();

        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..50 {
            let store = if i % 2 == 0 {
                Arc::clone(&a)
            } else {
                Arc::clone(&b)
            };
            let key = key.clone();
            tasks.spawn(
                async move { (i, store.save(&key, &set(&format!("t{i}")), Some(v0)).await) },
            );
        }
        let mut winners = Vec::new();
        let mut losers = Vec::new();
        while let Some(joined) = tasks.join_next().await {
            match joined.unwrap() {
                (i, Ok(version)) => winners.push((i, version)),
                (_, Err(StoreError::Conflict { expected, found })) => {
                    assert_eq!(expected, Some(v0));
                    losers.push(found);
                }
                (_, Err(e)) => panic!("unexpected error: {e:?}"),
            }
        }
        assert_eq!(winners.len(), 1, "{winners:?}");
        let (winner, version) = winners[0];
        assert!(
            losers.iter().all(|found| *found == Some(version)),
            "{losers:?}"
        );
        for store in [&a, &b] {
            assert_eq!(
                access(&store.load(&key).await.unwrap()),
                Some((version, format!("t{winner}")))
            );
        }
        assert!(
            names(tmp.path()).iter().all(|n| !n.ends_with(TEMP_SUFFIX)),
            "no temporary file left"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn save_waits_for_another_process_holding_the_directory_lock() {
        let tmp = TempDir::new().unwrap();
        let store = Arc::new(FileStore::open(tmp.path()).unwrap());
        let key = SessionKey::new("p", "s");
        let other = File::options()
            .read(true)
            .write(true)
            .open(tmp.path().join(LOCK_FILE))
            .unwrap();
        os_lock(&other).unwrap();

        let save = tokio::spawn({
            let (store, key) = (Arc::clone(&store), key.clone());
            async move { store.save(&key, &set("a"), None).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!save.is_finished(), "save must wait for the lock");
        assert!(
            store.load(&key).await.unwrap().is_none(),
            "loads do not wait"
        );
        os_unlock(&other).unwrap();
        let version = tokio::time::timeout(Duration::from_secs(10), save)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(
            access(&store.load(&key).await.unwrap()),
            Some((version, "a".into()))
        );
    }

    /// The lock file removed while a process holds it (a cleaner of old files, a hand
    /// tidying the directory): another process's write still waits for that holder, rather
    /// than create a new lock file, lock it, and run its compare-and-swap beside the
    /// holder's (both would win at one version, and one saved pair be overwritten).
    #[cfg(unix)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_waits_for_a_holder_whose_lock_file_was_removed() {
        let tmp = TempDir::new().unwrap();
        let store = Arc::new(FileStore::open(tmp.path()).unwrap());
        let key = SessionKey::new("p", "s");
        let v0 = store.save(&key, &set("start"), None).await.unwrap();
        // Another process, in the middle of its own read-check-write.
        let other = DirLock::acquire(tmp.path()).unwrap();
        fs::remove_file(tmp.path().join(LOCK_FILE)).unwrap();

        let save = tokio::spawn({
            let (store, key) = (Arc::clone(&store), key.clone());
            async move { store.save(&key, &set("a"), Some(v0)).await }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !save.is_finished(),
            "the save must wait for the holder: {:?}",
            store.load(&key).await
        );
        let lease = tokio::spawn({
            let (store, key) = (Arc::clone(&store), key.clone());
            async move {
                store
                    .acquire_lease(&key, "b", Duration::from_secs(30))
                    .await
            }
        });
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert!(!lease.is_finished(), "so must a lease request");
        drop(other);
        let version = tokio::time::timeout(Duration::from_secs(10), save)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert!(version > v0);
        let lease = tokio::time::timeout(Duration::from_secs(10), lease).await;
        assert_eq!(lease.unwrap().unwrap().unwrap(), Lease::Acquired);
    }

    /// A refresh token holding CR, LF, NUL, DEL and a quote (the manager keeps such a token:
    /// it travels escaped) is saved and read back as it was, by this store and by another
    /// one opened on the same directory (another process), and shows in no Debug.
    #[tokio::test]
    async fn a_refresh_token_with_control_characters_is_kept_as_it_was() {
        let tmp = TempDir::new().unwrap();
        let store = FileStore::open(tmp.path()).unwrap();
        let key = SessionKey::new("p", "s");
        let raw = "rt-\r\n\0\u{7f}\"\\SECRET";
        let record: StoredRecord = TokenSet::<serde_json::Value>::new(AccessToken::new(""))
            .with_refresh_token(RefreshToken::new(raw))
            .to_stored()
            .unwrap()
            .into();
        let version = store.save(&key, &record, None).await.unwrap();
        let other = FileStore::open(tmp.path()).unwrap();
        for store in [&store, &other] {
            let loaded = store.load(&key).await.unwrap().unwrap();
            assert_eq!((loaded.version, &loaded.value), (version, &record));
            let shown = format!("{loaded:?}");
            assert!(!shown.contains("SECRET"), "{shown}");
        }
    }

    #[tokio::test]
    async fn keys_with_odd_characters_stay_inside_the_directory() {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("store");
        let store = FileStore::open(&dir).unwrap();
        let keys = [
            SessionKey::new("../x", "../../y"),
            SessionKey::new("a/b", "c"),
            SessionKey::new("a", "b/c"),
            SessionKey::new("/etc", "passwd"),
            SessionKey::new("..", "."),
            SessionKey::new("", ""),
            SessionKey::new("ünï", "çødé 😀\\\0\n"),
            SessionKey::new("p", "x".repeat(4096)),
        ];
        for (i, key) in keys.iter().enumerate() {
            store.save(key, &set(&format!("t{i}")), None).await.unwrap();
        }
        for (i, key) in keys.iter().enumerate() {
            let loaded = store.load(key).await.unwrap().unwrap();
            assert_eq!(
                loaded.value.tokens().unwrap().access_token.expose_secret(),
                format!("t{i}"),
                "{key:?}"
            );
        }
        assert_eq!(
            names(tmp.path()),
            ["store"],
            "nothing written outside the directory"
        );
        let files = names(&dir);
        assert_eq!(files.len(), keys.len() + 1, "{files:?}");
        for name in files.iter().filter(|n| *n != LOCK_FILE) {
            let stem = name.strip_suffix(RECORD_SUFFIX).unwrap();
            assert!(
                stem.len() == 64 && stem.bytes().all(|b| b.is_ascii_hexdigit()),
                "{name}"
            );
        }
    }

    #[tokio::test]
    async fn a_lease_excludes_another_store_on_the_directory_until_released() {
        let tmp = TempDir::new().unwrap();
        // Two instances stand in for two processes: each takes the directory's OS lock
        // through its own open file description (see `os_locks_through_two_opens_exclude_each_other`).
        let a = FileStore::open(tmp.path()).unwrap();
        let b = FileStore::open(tmp.path()).unwrap();
        let key = SessionKey::new("p", "s");
        let ttl = Duration::from_secs(30);

        assert_eq!(
            a.acquire_lease(&key, "a", ttl).await.unwrap(),
            Lease::Acquired
        );
        match b.acquire_lease(&key, "b", ttl).await.unwrap() {
            Lease::HeldByOther { remaining } => {
                assert!(remaining <= ttl && remaining > ttl / 2, "{remaining:?}")
            }
            other => panic!("b must wait for a: {other:?}"),
        }
        // Another session's lease is independent.
        let other = SessionKey::new("p", "t");
        assert_eq!(
            b.acquire_lease(&other, "b", ttl).await.unwrap(),
            Lease::Acquired
        );
        // Only the holder can release it.
        b.release_lease(&key, "b").await.unwrap();
        assert!(matches!(
            b.acquire_lease(&key, "b", ttl).await.unwrap(),
            Lease::HeldByOther { .. }
        ));
        a.release_lease(&key, "a").await.unwrap();
        assert_eq!(
            b.acquire_lease(&key, "b", ttl).await.unwrap(),
            Lease::Acquired
        );
        assert!(matches!(
            a.acquire_lease(&key, "a", ttl).await.unwrap(),
            Lease::HeldByOther { .. }
        ));
    }

    fn advance(clock: &ManualClock, by: Duration) {
        clock.advance(time::Duration::try_from(by).unwrap());
    }

    /// Two stores on one directory whose leases follow `clock`.
    fn two_stores_with(clock: &ManualClock, dir: &Path) -> (FileStore, FileStore) {
        let open = || FileStore::open_with_clock(dir, Arc::new(clock.clone())).unwrap();
        (open(), open())
    }

    /// Listed: a lease of the provider that lapsed unreleased, for a session with a record;
    /// not a live one, a released one, one without a record, another provider's, nor a
    /// lease file whose record names another session than its own name says.
    #[tokio::test]
    async fn lapsed_leases_lists_the_provider_s_sessions_whose_lease_lapsed_unreleased() {
        let tmp = TempDir::new().unwrap();
        let clock = ManualClock::default();
        let (store, _) = two_stores_with(&clock, tmp.path());
        let (short, long) = (Duration::from_secs(1), Duration::from_secs(3600));
        for (provider, session, ttl, saved) in [
            ("p", "a", short, true),
            ("p", "b", long, true),
            ("q", "c", short, true),
            ("p", "no record", short, false),
            ("p", "released", short, true),
        ] {
            let key = SessionKey::new(provider, session);
            if saved {
                store.save(&key, &set("rt"), None).await.unwrap();
            }
            store.acquire_lease(&key, "h", ttl).await.unwrap();
        }
        let released = SessionKey::new("p", "released");
        store.release_lease(&released, "h").await.unwrap();
        // A lease file beside another session's record (a copied directory, a hand edit).
        let stray = SessionKey::new("p", "stray");
        let a = SessionKey::new("p", "a");
        std::fs::copy(lease_path(tmp.path(), &a), lease_path(tmp.path(), &stray)).unwrap();
        std::fs::copy(
            record_path(tmp.path(), &SessionKey::new("q", "c")),
            record_path(tmp.path(), &stray),
        )
        .unwrap();
        assert!(store.lapsed_leases("p").await.unwrap().is_empty());
        advance(&clock, Duration::from_secs(2));
        assert_eq!(store.lapsed_leases("p").await.unwrap(), ["a"]);
        assert_eq!(store.lapsed_leases("q").await.unwrap(), ["c"]);
    }

    /// A lease left to lapse by a holder that died after its session was removed (a delete
    /// keeps a live lease, for its holder) goes once it lapsed a lease length ago: nobody
    /// waits on it then, and kept, every such death would leave a file in the directory for
    /// good, read again at every look for lapsed leases. One that lapsed less long ago, one
    /// beside a record, and a live one stay.
    #[tokio::test]
    async fn a_lapsed_lease_without_a_record_goes_a_lease_length_later() {
        let tmp = TempDir::new().unwrap();
        let clock = ManualClock::default();
        let (store, other) = two_stores_with(&clock, tmp.path());
        let ttl = Duration::from_secs(10);
        let removed = SessionKey::new("p", "removed");
        store.save(&removed, &set("rt"), None).await.unwrap();
        store.acquire_lease(&removed, "dead", ttl).await.unwrap();
        // Removed by another process while the holder, which then died, held the lease.
        assert!(other.delete(&removed, None).await.unwrap());
        let recorded = SessionKey::new("p", "recorded");
        store.save(&recorded, &set("rt"), None).await.unwrap();
        store.acquire_lease(&recorded, "dead", ttl).await.unwrap();
        let longer = SessionKey::new("q", "longer");
        store.acquire_lease(&longer, "dead", 3 * ttl).await.unwrap();
        let kept = |key: &SessionKey| lease_path(tmp.path(), key).exists();
        advance(&clock, ttl + ttl / 2);
        assert_eq!(store.lapsed_leases("p").await.unwrap(), ["recorded"]);
        assert!(kept(&removed) && kept(&recorded) && kept(&longer));
        advance(&clock, ttl);
        assert_eq!(store.lapsed_leases("p").await.unwrap(), ["recorded"]);
        assert!(!kept(&removed), "a lease without a record is kept for good");
        assert!(kept(&recorded) && kept(&longer));
        advance(&clock, 5 * ttl);
        store.lapsed_leases("p").await.unwrap();
        assert!(!kept(&longer));
        assert!(kept(&recorded));
        // The session logged in again: its lease is granted as a free one.
        store.save(&removed, &set("rt-2"), None).await.unwrap();
        let granted = store.acquire_lease(&removed, "h", ttl).await.unwrap();
        assert_eq!(granted, Lease::Acquired);
    }

    /// Opened again (a restart), the store removes what a dead holder of a removed session
    /// left as `lapsed_leases` does: a store whose manager never looks for lapsed leases (a
    /// provider without a reuse window) does not keep such files for good either.
    #[tokio::test]
    async fn a_lapsed_lease_without_a_record_goes_when_the_store_is_opened() {
        let tmp = TempDir::new().unwrap();
        let clock = ManualClock::default();
        let (store, _) = two_stores_with(&clock, tmp.path());
        let ttl = Duration::from_secs(10);
        let (removed, recorded) = (
            SessionKey::new("p", "removed"),
            SessionKey::new("p", "kept"),
        );
        for key in [&removed, &recorded] {
            store.save(key, &set("rt"), None).await.unwrap();
            store.acquire_lease(key, "dead", ttl).await.unwrap();
        }
        assert!(store.delete(&removed, None).await.unwrap());
        let kept = |key: &SessionKey| lease_path(tmp.path(), key).exists();
        advance(&clock, ttl + ttl / 2);
        let _reopened = two_stores_with(&clock, tmp.path());
        assert!(
            kept(&removed),
            "removed before it lapsed a lease length ago"
        );
        advance(&clock, ttl);
        let _reopened = two_stores_with(&clock, tmp.path());
        assert!(!kept(&removed), "a lease without a record is kept for good");
        assert!(kept(&recorded));
    }

    /// A lease file that cannot be read counts as lapsed for `acquire_lease` (a takeover),
    /// and so for `lapsed_leases`: leases are not synced, so a machine that crashed while a
    /// holder was refreshing may leave its lease file empty, and that holder may have spent
    /// the stored refresh token. Listed like any lapsed lease (if its session has a record),
    /// and no longer once taken over.
    #[tokio::test]
    async fn an_unreadable_lease_of_a_session_with_a_record_is_listed_as_lapsed() {
        let tmp = TempDir::new().unwrap();
        let clock = ManualClock::default();
        let (store, _) = two_stores_with(&clock, tmp.path());
        let ttl = Duration::from_secs(3600);
        let live = SessionKey::new("p", "live");
        store.save(&live, &set("live"), None).await.unwrap();
        store.acquire_lease(&live, "h", ttl).await.unwrap();
        for (session, content, saved) in [
            ("crashed", &b""[..], true),
            (
                "damaged",
                &b"{\"holder\": \"h\", \"expires_at_unix_n"[..],
                true,
            ),
            ("no record", &b""[..], false),
        ] {
            let key = SessionKey::new("p", session);
            if saved {
                store.save(&key, &set(session), None).await.unwrap();
            }
            fs::write(lease_path(tmp.path(), &key), content).unwrap();
        }
        let mut listed = store.lapsed_leases("p").await.unwrap();
        listed.sort();
        assert_eq!(listed, ["crashed", "damaged"]);
        assert!(store.lapsed_leases("q").await.unwrap().is_empty());

        let crashed = SessionKey::new("p", "crashed");
        assert_eq!(
            store.acquire_lease(&crashed, "next", ttl).await.unwrap(),
            Lease::TakenOver
        );
        assert_eq!(store.lapsed_leases("p").await.unwrap(), ["damaged"]);
    }

    /// More lapsed leases than one answer lists: those that lapsed last come first (one
    /// left for good long ago must not hide a recent death, still recoverable).
    #[tokio::test]
    async fn lapsed_leases_lists_those_that_lapsed_last_first() {
        let tmp = TempDir::new().unwrap();
        let clock = ManualClock::default();
        let (store, _) = two_stores_with(&clock, tmp.path());
        let (count, expected) = super::super::lapsed_last_first();
        for n in 0..count {
            let key = SessionKey::new("p", format!("s{n}"));
            store.save(&key, &set("t"), None).await.unwrap();
            store
                .acquire_lease(&key, "h", Duration::from_secs(1))
                .await
                .unwrap();
            advance(&clock, Duration::from_millis(10));
        }
        advance(&clock, Duration::from_secs(2));
        assert_eq!(store.lapsed_leases("p").await.unwrap(), expected);
    }

    #[tokio::test]
    async fn the_holder_renews_its_lease_and_a_lapsed_one_is_taken_over() {
        let tmp = TempDir::new().unwrap();
        let clock = ManualClock::default();
        let (a, b) = two_stores_with(&clock, tmp.path());
        let key = SessionKey::new("p", "s");
        let ttl = Duration::from_secs(30);

        assert_eq!(
            a.acquire_lease(&key, "a", ttl).await.unwrap(),
            Lease::Acquired
        );
        advance(&clock, Duration::from_secs(20));
        assert_eq!(
            b.acquire_lease(&key, "b", ttl).await.unwrap(),
            Lease::HeldByOther {
                remaining: Duration::from_secs(10)
            }
        );
        // A heartbeat: the holder asks again and the lease runs a full ttl from now.
        assert_eq!(
            a.acquire_lease(&key, "a", ttl).await.unwrap(),
            Lease::Acquired
        );
        advance(&clock, Duration::from_secs(20));
        assert_eq!(
            b.acquire_lease(&key, "b", ttl).await.unwrap(),
            Lease::HeldByOther {
                remaining: Duration::from_secs(10)
            },
            "renewed at 20 s for 30 s"
        );
        // The holder stops renewing (it crashed): at its expiry the lease is taken over, and
        // said so (the crashed holder may have spent the refresh token).
        advance(&clock, Duration::from_secs(10));
        assert_eq!(
            b.acquire_lease(&key, "b", ttl).await.unwrap(),
            Lease::TakenOver
        );
        // The old holder's renewal now says it lost the lease, and its release is a no-op.
        assert_eq!(
            a.acquire_lease(&key, "a", ttl).await.unwrap(),
            Lease::HeldByOther { remaining: ttl }
        );
        a.release_lease(&key, "a").await.unwrap();
        assert!(matches!(
            a.acquire_lease(&key, "a", ttl).await.unwrap(),
            Lease::HeldByOther { .. }
        ));
        b.release_lease(&key, "b").await.unwrap();
        assert!(
            !lease_path(tmp.path(), &key).exists(),
            "a released lease leaves no file"
        );
    }

    /// An unreadable lease is someone's (a damaged file, or a lease of a release that writes
    /// another format, during a rolling upgrade): taking it is a takeover, so the manager
    /// waits for that holder's save before trusting a refusal, as after a lapsed lease.
    #[tokio::test]
    async fn an_unreadable_lease_is_taken_over_and_replaced() {
        let tmp = TempDir::new().unwrap();
        let store = FileStore::open(tmp.path()).unwrap();
        let key = SessionKey::new("p", "s");
        let ttl = Duration::from_secs(30);
        let path = lease_path(tmp.path(), &key);
        let planted: [&[u8]; 5] = [
            b"",
            b"{\"holder\": \"other\", \"expires_at_unix_n",
            b"{\"holder\": 7, \"expires_at_unix_nanos\": 1, \"ttl_nanos\": 1}",
            &[0xff, 0x00, 0x13, 0x37],
            &[b' '; MAX_LEASE_BYTES as usize + 1],
        ];
        for content in planted {
            fs::write(&path, content).unwrap();
            assert_eq!(
                store.acquire_lease(&key, "a", ttl).await.unwrap(),
                Lease::TakenOver
            );
            // Replaced by a real lease: another holder is now kept out.
            assert!(matches!(
                store.acquire_lease(&key, "b", ttl).await.unwrap(),
                Lease::HeldByOther { .. }
            ));
            store.release_lease(&key, "a").await.unwrap();
        }
        // A lease far in the future, left by a clock that has since gone back, lasts at
        // most its own ttl from now.
        fs::write(
            &path,
            format!(
                r#"{{"holder": "other", "expires_at_unix_nanos": {}, "ttl_nanos": 30000000000}}"#,
                u64::MAX
            ),
        )
        .unwrap();
        assert_eq!(
            store.acquire_lease(&key, "a", ttl).await.unwrap(),
            Lease::HeldByOther { remaining: ttl }
        );
        let clock = ManualClock::default();
        advance(&clock, ttl);
        let later = FileStore::open_with_clock(tmp.path(), Arc::new(clock)).unwrap();
        assert_eq!(
            later.acquire_lease(&key, "a", ttl).await.unwrap(),
            Lease::TakenOver
        );
    }

    #[tokio::test]
    async fn delete_removes_a_lapsed_lease_and_keeps_a_live_one() {
        let tmp = TempDir::new().unwrap();
        let clock = ManualClock::default();
        let (a, b) = two_stores_with(&clock, tmp.path());
        let ttl = Duration::from_secs(30);
        let (live, lapsed) = (SessionKey::new("p", "live"), SessionKey::new("p", "lapsed"));
        for key in [&live, &lapsed] {
            a.save(key, &set("a"), None).await.unwrap();
        }
        assert_eq!(
            a.acquire_lease(&lapsed, "a", ttl).await.unwrap(),
            Lease::Acquired
        );
        advance(&clock, ttl);
        assert_eq!(
            a.acquire_lease(&live, "a", ttl).await.unwrap(),
            Lease::Acquired
        );

        assert!(b.delete(&lapsed, None).await.unwrap());
        assert!(b.delete(&live, None).await.unwrap());
        assert!(!lease_path(tmp.path(), &lapsed).exists());
        // Its holder may still be refreshing the deleted session: it keeps the lease (as in
        // the PostgreSQL store) until it releases it or it lapses.
        assert!(matches!(
            b.acquire_lease(&live, "b", ttl).await.unwrap(),
            Lease::HeldByOther { .. }
        ));
        a.release_lease(&live, "a").await.unwrap();
        assert_eq!(names(tmp.path()), [LOCK_FILE]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_lease_requests_on_two_stores_have_exactly_one_winner() {
        let tmp = TempDir::new().unwrap();
        let stores = [
            Arc::new(FileStore::open(tmp.path()).unwrap()),
            Arc::new(FileStore::open(tmp.path()).unwrap()),
        ];
        let key = SessionKey::new("p", "s");
        let mut tasks = tokio::task::JoinSet::new();
        for i in 0..40 {
            let (store, key) = (Arc::clone(&stores[i % 2]), key.clone());
            tasks.spawn(async move {
                let holder = format!("h{i}");
                let ttl = Duration::from_secs(30);
                store.acquire_lease(&key, &holder, ttl).await.unwrap()
            });
        }
        let mut acquired = 0;
        while let Some(lease) = tasks.join_next().await {
            match lease.unwrap() {
                Lease::Acquired => acquired += 1,
                Lease::HeldByOther { remaining } => {
                    assert!(remaining <= Duration::from_secs(30))
                }
                Lease::TakenOver => panic!("nobody held the lease before"),
            }
        }
        assert_eq!(acquired, 1);
    }

    /// Set in the child process of `a_lease_holds_across_processes_and_lapses_after_a_kill`.
    const CHILD_DIR_VAR: &str = "TOKEN_CORE_FILE_LEASE_CHILD_DIR";

    #[cfg(unix)]
    #[tokio::test]
    async fn a_lease_holds_across_processes_and_lapses_after_a_kill() {
        use std::io::{BufRead, BufReader};
        use std::process::{Command, Stdio};

        let tmp = TempDir::new().unwrap();
        // This test binary again, running only `lease_holder_child_process`.
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "store::file::tests::lease_holder_child_process"])
            .args(["--ignored", "--nocapture", "--test-threads=1"])
            .env(CHILD_DIR_VAR, tmp.path())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut lines = stdout.lines();
        // libtest may print the test's name on the same line first.
        let said = lines
            .by_ref()
            .map(Result::unwrap)
            .find_map(|line| Some(line.split_once("lease-child: ")?.1.to_owned()))
            .expect("the child reports");
        assert_eq!(said, "acquired");

        let clock = ManualClock::default();
        let store = FileStore::open_with_clock(tmp.path(), Arc::new(clock.clone())).unwrap();
        let key = SessionKey::new("p", "s");
        let ttl = Duration::from_secs(60);
        let held = store.acquire_lease(&key, "parent", ttl).await.unwrap();
        assert!(
            matches!(held, Lease::HeldByOther { remaining } if remaining > ttl / 2 && remaining <= ttl),
            "{held:?}"
        );
        // SIGKILL: the child releases nothing, and its lease stays until it lapses.
        child.kill().unwrap();
        child.wait().unwrap();
        assert!(matches!(
            store.acquire_lease(&key, "parent", ttl).await.unwrap(),
            Lease::HeldByOther { .. }
        ));
        advance(&clock, ttl);
        assert_eq!(
            store.acquire_lease(&key, "parent", ttl).await.unwrap(),
            Lease::TakenOver
        );
    }

    /// The other process of `a_lease_holds_across_processes_and_lapses_after_a_kill`: takes
    /// the lease on the system clock, says so, and waits to be killed (or for its parent to
    /// go away, which closes stdin).
    #[test]
    #[ignore = "run by a_lease_holds_across_processes_and_lapses_after_a_kill"]
    fn lease_holder_child_process() {
        let Some(dir) = std::env::var_os(CHILD_DIR_VAR) else {
            return;
        };
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let store = FileStore::open(&dir).unwrap();
        let key = SessionKey::new("p", "s");
        let lease = runtime
            .block_on(store.acquire_lease(&key, "child", Duration::from_secs(60)))
            .unwrap();
        assert_eq!(lease, Lease::Acquired);
        println!("\nlease-child: acquired");
        let _ = io::stdin().read_to_end(&mut Vec::new());
    }

    #[test]
    fn os_locks_through_two_opens_exclude_each_other() {
        // `File::lock` is `flock(2)` on unix and `LockFileEx` on Windows: both lock per open
        // file description (handle), not per process. So two opens in one process exclude
        // each other as two processes would, and tests with two `FileStore`s on a directory
        // (each `DirLock` opens the lock file anew) exercise the cross-process exclusion.
        let tmp = TempDir::new().unwrap();
        let _store = FileStore::open(tmp.path()).unwrap();
        let first = open_lock_file(tmp.path()).unwrap();
        let second = open_lock_file(tmp.path()).unwrap();
        os_lock(&first).unwrap();
        assert!(!os_try_lock(&second).unwrap(), "the second open must wait");
        os_unlock(&first).unwrap();
        assert!(os_try_lock(&second).unwrap());
        os_unlock(&second).unwrap();
    }

    /// Asserts `result` is [`StoreError::Insecure`] with a message that has every word of
    /// `says`.
    #[cfg(unix)]
    fn assert_insecure<T: fmt::Debug>(result: Result<T, StoreError>, says: &[&str]) {
        match result {
            Err(StoreError::Insecure(message)) => {
                for word in says {
                    assert!(message.contains(word), "{word:?} not in {message:?}");
                }
            }
            other => panic!("expected an unsafe-location error, got {other:?}"),
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_planted_lock_symlink_is_refused_and_its_target_untouched() {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("store");
        let outside = tmp.path().join("precious");
        fs::write(&outside, "precious content").unwrap();
        let key = SessionKey::new("p", "s");

        // Planted before the store is opened.
        fs::create_dir(&dir).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join(LOCK_FILE)).unwrap();
        assert_insecure(
            FileStore::open(&dir),
            &[LOCK_FILE, "symbolic link", "remove"],
        );

        // Planted while a store uses the directory: every write refuses it.
        fs::remove_file(dir.join(LOCK_FILE)).unwrap();
        let store = FileStore::open(&dir).unwrap();
        fs::remove_file(dir.join(LOCK_FILE)).unwrap();
        std::os::unix::fs::symlink(&outside, dir.join(LOCK_FILE)).unwrap();
        assert_insecure(store.save(&key, &set("a"), None).await, &[LOCK_FILE]);
        assert_insecure(store.delete(&key, None).await, &[LOCK_FILE]);
        let ttl = Duration::from_secs(30);
        assert_insecure(store.acquire_lease(&key, "a", ttl).await, &[LOCK_FILE]);
        assert_insecure(store.release_lease(&key, "a").await, &[LOCK_FILE]);
        assert_eq!(fs::read_to_string(&outside).unwrap(), "precious content");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_planted_record_symlink_is_refused_and_its_target_untouched() {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("store");
        let store = FileStore::open(&dir).unwrap();
        let key = SessionKey::new("p", "s");
        // A record elsewhere, well formed, that a planted link would make ours.
        let elsewhere = tmp.path().join("elsewhere");
        let other = FileStore::open(&elsewhere).unwrap();
        other.save(&key, &set("planted"), None).await.unwrap();
        let outside = record_path(&elsewhere, &key);
        let content = fs::read(&outside).unwrap();
        std::os::unix::fs::symlink(&outside, record_path(&dir, &key)).unwrap();

        assert_insecure(store.load(&key).await, &["symbolic link", "p/s", "remove"]);
        assert_insecure(store.save(&key, &set("a"), None).await, &["symbolic link"]);
        assert_insecure(store.delete(&key, None).await, &["symbolic link"]);
        assert_eq!(fs::read(&outside).unwrap(), content);
        assert!(
            fs::symlink_metadata(record_path(&dir, &key))
                .unwrap()
                .is_symlink()
        );
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_planted_lease_symlink_is_replaced_not_followed() {
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("store");
        let store = FileStore::open(&dir).unwrap();
        let key = SessionKey::new("p", "s");
        let outside = tmp.path().join("precious");
        fs::write(&outside, "precious content").unwrap();
        std::os::unix::fs::symlink(&outside, lease_path(&dir, &key)).unwrap();

        let ttl = Duration::from_secs(30);
        assert_eq!(
            store.acquire_lease(&key, "a", ttl).await.unwrap(),
            Lease::TakenOver
        );
        assert!(
            !fs::symlink_metadata(lease_path(&dir, &key))
                .unwrap()
                .is_symlink()
        );
        assert!(matches!(
            store.acquire_lease(&key, "b", ttl).await.unwrap(),
            Lease::HeldByOther { .. }
        ));
        assert_eq!(fs::read_to_string(&outside).unwrap(), "precious content");
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_directory_others_may_write_to_is_refused_and_a_private_one_used() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new().unwrap();
        for mode in [0o777, 0o770, 0o707, 0o722] {
            let dir = tmp.path().join(format!("{mode:o}"));
            fs::create_dir(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
            assert_insecure(FileStore::open(&dir), &["writable", "chmod 700"]);
            assert!(names(&dir).is_empty(), "{mode:o}: nothing written");
            let kept = fs::metadata(&dir).unwrap().permissions().mode() & 0o777;
            assert_eq!(
                kept, mode,
                "the directory is not changed behind the user's back"
            );
        }
        for mode in [0o700, 0o750, 0o755] {
            let dir = tmp.path().join(format!("{mode:o}"));
            fs::create_dir(&dir).unwrap();
            fs::set_permissions(&dir, fs::Permissions::from_mode(mode)).unwrap();
            let store = FileStore::open(&dir).unwrap();
            store
                .save(&SessionKey::new("p", "s"), &set("a"), None)
                .await
                .unwrap();
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_directory_of_another_user_is_refused() {
        let me = current_uid();
        assert!(check_private_dir(Path::new("/d"), 0o700, me, me).is_ok());
        let err = check_private_dir(Path::new("/d"), 0o700, me.wrapping_add(1), me);
        assert_insecure(err, &["/d", "owned by", "chown"]);
        let err = check_private_dir(Path::new("/d"), 0o777, me, me);
        assert_insecure(err, &["/d", "writable by group and others", "chmod 700 /d"]);
        let err = check_private_dir(Path::new("/d"), 0o720, me, me);
        assert_insecure(err, &["writable by group", "chmod 700 /d"]);

        // As root, make the real thing: a directory that belongs to somebody else.
        if me == 0 {
            let tmp = TempDir::new().unwrap();
            let dir = tmp.path().join("theirs");
            fs::create_dir(&dir).unwrap();
            std::os::unix::fs::chown(&dir, Some(65534), None).unwrap();
            assert_insecure(FileStore::open(&dir), &["owned by", "65534"]);
        }
    }

    #[cfg(unix)]
    #[tokio::test]
    async fn a_symlinked_directory_path_is_resolved_and_checked() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new().unwrap();
        let real = tmp.path().join("real");
        let link = tmp.path().join("link");
        fs::create_dir(&real).unwrap();
        fs::set_permissions(&real, fs::Permissions::from_mode(0o700)).unwrap();
        std::os::unix::fs::symlink(&real, &link).unwrap();

        let store = FileStore::open(&link).unwrap();
        assert_eq!(store.dir(), fs::canonicalize(&real).unwrap());
        let key = SessionKey::new("p", "s");
        store.save(&key, &set("a"), None).await.unwrap();
        assert!(record_path(&real, &key).exists());

        // What the link points at must be private too.
        fs::set_permissions(&real, fs::Permissions::from_mode(0o777)).unwrap();
        assert_insecure(FileStore::open(&link), &["writable", "chmod 700"]);
    }

    #[test]
    fn debug_shows_the_directory_only() {
        let tmp = TempDir::new().unwrap();
        let store = FileStore::open(tmp.path()).unwrap();
        let shown = format!("{store:?}");
        let dir = fs::canonicalize(tmp.path()).unwrap();
        assert_eq!(shown, format!("FileStore {{ dir: {dir:?} }}"));
    }

    /// A hard link planted as the lock file passes the symbolic-link check: it is refused
    /// as `Insecure` too, and the file it links to is never written (the version counter
    /// would overwrite it).
    #[cfg(unix)]
    #[tokio::test]
    async fn a_hard_link_planted_as_the_lock_file_is_refused_and_its_target_untouched() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("store");
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        let outside = tmp.path().join("precious");
        fs::write(&outside, "precious content").unwrap();
        fs::hard_link(&outside, dir.join(LOCK_FILE)).unwrap();
        let key = SessionKey::new("p", "s");
        let refused = match FileStore::open(&dir) {
            Err(error) => error,
            Ok(store) => store.save(&key, &set("a"), None).await.unwrap_err(),
        };
        assert!(matches!(refused, StoreError::Insecure(_)), "{refused:?}");
        assert_eq!(
            fs::read_to_string(&outside).unwrap(),
            "precious content",
            "the lock file's hard-link target was overwritten"
        );
    }

    /// A holder name whose lease would be larger than a lease is read back (which would
    /// then count as lapsed: another holder would take it over at once) is refused, and no
    /// lease is written.
    #[tokio::test]
    async fn a_holder_name_too_long_for_a_lease_is_refused_not_taken_over() {
        let tmp = TempDir::new().unwrap();
        let clock = ManualClock::default();
        let store = FileStore::open_with_clock(tmp.path(), Arc::new(clock.clone())).unwrap();
        let ttl = Duration::from_secs(30);
        let holders = [
            ("long", "h".repeat(MAX_LEASE_BYTES as usize)),
            // 11,000 chars, 66,000 bytes once JSON escapes each NUL as \u0000.
            ("nul", "\0".repeat(11_000)),
        ];
        for (what, holder) in holders {
            let key = SessionKey::new("p", what);
            let first = store.acquire_lease(&key, &holder, ttl).await;
            assert!(
                matches!(first, Err(StoreError::Unsupported(_))),
                "{what}: {first:?}"
            );
            assert!(!lease_path(tmp.path(), &key).exists(), "{what}");
            let other = store.acquire_lease(&key, "other", ttl).await.unwrap();
            assert_eq!(other, Lease::Acquired, "{what}");
        }
    }

    /// A lease lasts at most its ttl from when it is looked at, for `lapsed_leases` as for
    /// `acquire_lease`: a holder that died just before the clock stepped back an hour is
    /// listed one ttl later, not an hour later (long after a provider's reuse window for the
    /// pair it may have spent).
    #[tokio::test]
    async fn a_dead_holder_is_listed_one_ttl_after_a_clock_stepped_back() {
        let tmp = TempDir::new().unwrap();
        let clock = ManualClock::default();
        let store = FileStore::open_with_clock(tmp.path(), Arc::new(clock.clone())).unwrap();
        let key = SessionKey::new("p", "s");
        let ttl = Duration::from_secs(30);
        store.save(&key, &set("a"), None).await.unwrap();
        assert_eq!(
            store.acquire_lease(&key, "dead", ttl).await.unwrap(),
            Lease::Acquired
        );
        // The holder dies; the clock steps back an hour.
        clock.advance(time::Duration::hours(-1));
        assert!(
            store.lapsed_leases("p").await.unwrap().is_empty(),
            "looked at: live"
        );
        advance(&clock, ttl + Duration::from_secs(1));
        let listed = store.lapsed_leases("p").await.unwrap();
        assert_eq!(listed, ["s"]);
    }

    /// A FIFO planted as a record or a lease is not waited on (an open of it for reading
    /// waits for a writer, for ever, and holds a blocking-pool thread): `load` answers a
    /// typed error, `lapsed_leases` passes over it. (The timeouts only end a test that
    /// would hang.)
    #[cfg(unix)]
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_fifo_planted_as_a_record_or_a_lease_does_not_hang_the_store() {
        use std::os::unix::fs::OpenOptionsExt;
        let tmp = TempDir::new().unwrap();
        let store = FileStore::open(tmp.path()).unwrap();
        let key = SessionKey::new("p", "s");
        let mkfifo = |path: &Path| {
            let status = std::process::Command::new("mkfifo")
                .arg(path)
                .status()
                .unwrap();
            assert!(status.success());
        };
        // Unblocks a reader stuck in open(2) on `path`, so the runtime can shut down.
        let unblock = |path: &Path| {
            let _ = fs::OpenOptions::new()
                .write(true)
                .custom_flags(rustix::fs::OFlags::NONBLOCK.bits() as i32)
                .open(path);
        };
        let bound = Duration::from_secs(3);

        let record = record_path(tmp.path(), &key);
        mkfifo(&record);
        let load = tokio::time::timeout(bound, store.load(&key)).await;
        unblock(&record);
        fs::remove_file(&record).unwrap();

        store.save(&key, &set("a"), None).await.unwrap();
        let lease = lease_path(tmp.path(), &key);
        mkfifo(&lease);
        let lapsed = tokio::time::timeout(bound, store.lapsed_leases("p")).await;
        unblock(&lease);

        let load = load.expect("load of a FIFO record still waiting");
        assert!(matches!(load, Err(StoreError::Backend { .. })), "{load:?}");
        let lapsed = lapsed.expect("lapsed_leases with a FIFO lease still waiting");
        assert_eq!(lapsed.unwrap(), Vec::<String>::new());
    }

    /// A `.lease` file whose name is no session's (a stranger's file, however long its
    /// name) is neither read as a lease nor written: `lapsed_leases` lists the sessions'
    /// lapsed leases beside it, and leaves it as it was, even when it says it lapses later
    /// than its ttl (as a lease stretched by a clock that stepped back does).
    #[tokio::test]
    async fn a_lease_file_named_for_no_session_is_left_alone_by_lapsed_leases() {
        let tmp = TempDir::new().unwrap();
        let clock = ManualClock::default();
        let store = FileStore::open_with_clock(tmp.path(), Arc::new(clock.clone())).unwrap();
        let key = SessionKey::new("p", "s");
        let ttl = Duration::from_secs(30);
        store.save(&key, &set("a"), None).await.unwrap();
        store.acquire_lease(&key, "dead", ttl).await.unwrap();
        // Strangers' files that read as leases stretched an hour past their ttl.
        let now = unix_nanos(clock.now());
        let stranger = serde_json::to_vec(&LeaseRecord {
            holder: "someone".into(),
            expires_at_unix_nanos: now + 3_600_000_000_000,
            ttl_nanos: 1_000_000_000,
        })
        .unwrap();
        let strangers = [
            format!("notes{LEASE_SUFFIX}"),
            format!("{}{LEASE_SUFFIX}", "x".repeat(230)),
        ];
        for name in &strangers {
            fs::write(tmp.path().join(name), &stranger).unwrap();
        }
        let before = names(tmp.path());
        advance(&clock, ttl + Duration::from_secs(1));
        let listed = store.lapsed_leases("p").await;
        assert_eq!(listed.unwrap(), ["s"]);
        assert_eq!(names(tmp.path()), before);
        for name in &strangers {
            assert_eq!(fs::read(tmp.path().join(name)).unwrap(), stranger, "{name}");
        }
    }

    /// What runs once in `lapsed_leases` of a store on a directory, between its look at
    /// the leases and its taking the directory's lock to cut stretched ones.
    type Hook = Box<dyn FnOnce() + Send>;
    static BEFORE_CUTTING: std::sync::Mutex<Vec<(PathBuf, Hook)>> =
        std::sync::Mutex::new(Vec::new());

    pub(super) fn before_cutting(dir: &Path) {
        let hooks = {
            let mut all = BEFORE_CUTTING.lock().unwrap();
            let (ours, others) = all.drain(..).partition(|(at, _)| at == dir);
            *all = others;
            ours
        };
        for (_, hook) in hooks {
            hook();
        }
    }

    /// A lease its holder renews while `lapsed_leases` waits for the directory's lock (to
    /// cut leases stretched by a clock that stepped back) keeps what the renewal gave it:
    /// cut to its ttl counted from before that wait, it would lapse early, and another
    /// process would take it over while its holder still refreshes.
    #[tokio::test]
    async fn a_lease_renewed_while_lapsed_leases_waits_for_the_lock_is_not_cut_short() {
        let tmp = TempDir::new().unwrap();
        let clock = ManualClock::default();
        let (store, holder) = two_stores_with(&clock, tmp.path());
        let holder = Arc::new(holder);
        let key = SessionKey::new("p", "s");
        let ttl = Duration::from_secs(30);
        store.save(&key, &set("a"), None).await.unwrap();
        assert_eq!(
            holder.acquire_lease(&key, "h", ttl).await.unwrap(),
            Lease::Acquired
        );
        // The clock steps back an hour: the lease lapses later than its ttl from now.
        clock.advance(time::Duration::hours(-1));
        // Between the look and the lock, ten seconds pass and the holder renews its lease.
        let renewal = {
            let (holder, key, clock) = (holder.clone(), key.clone(), clock.clone());
            let runtime = tokio::runtime::Handle::current();
            move || {
                advance(&clock, Duration::from_secs(10));
                let renewed = runtime.block_on(holder.acquire_lease(&key, "h", ttl));
                assert_eq!(renewed.unwrap(), Lease::Acquired);
            }
        };
        BEFORE_CUTTING
            .lock()
            .unwrap()
            .push((store.dir().to_owned(), Box::new(renewal)));
        assert!(store.lapsed_leases("p").await.unwrap().is_empty());
        // Short of the renewed lease's ttl, it is still the holder's.
        advance(&clock, ttl - Duration::from_secs(1));
        assert!(store.lapsed_leases("p").await.unwrap().is_empty());
        let other = store.acquire_lease(&key, "other", ttl).await.unwrap();
        assert!(matches!(other, Lease::HeldByOther { .. }), "{other:?}");
    }

    /// A directory that replaced the store's at its path is not the store's even when it
    /// holds a record of the session (a copy left at a volume's mount point before the
    /// volume was mounted over it, seen again once it is unmounted): its stale record is
    /// neither loaded nor written over; reopened, the store uses it.
    #[cfg(unix)]
    #[tokio::test]
    async fn a_directory_replaced_by_one_holding_the_session_is_an_error_not_its_record() {
        use std::os::unix::fs::PermissionsExt;
        let tmp = TempDir::new().unwrap();
        let dir = tmp.path().join("store");
        let store = FileStore::open(&dir).unwrap();
        let key = SessionKey::new("p", "s");
        let v1 = store.save(&key, &set("a"), None).await.unwrap();
        let stale = fs::read(record_path(&dir, &key)).unwrap();
        let v2 = store.save(&key, &set("b"), Some(v1)).await.unwrap();

        fs::remove_dir_all(&dir).unwrap();
        fs::create_dir(&dir).unwrap();
        fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
        fs::write(record_path(&dir, &key), &stale).unwrap();
        let gone = |result: Result<(), StoreError>, what: &str| {
            assert!(
                matches!(&result, Err(StoreError::Backend { .. })),
                "{what}: {result:?}"
            );
        };
        gone(store.load(&key).await.map(drop), "load");
        gone(
            store.save(&key, &set("c"), Some(v1)).await.map(drop),
            "save at the stale version",
        );
        gone(
            store.save(&key, &set("c"), Some(v2)).await.map(drop),
            "save at the version saved",
        );
        gone(store.delete(&key, None).await.map(drop), "delete");
        assert_eq!(fs::read(record_path(&dir, &key)).unwrap(), stale);
        // Reopened, the new directory is the store's.
        let reopened = FileStore::open(&dir).unwrap();
        assert_eq!(
            access(&reopened.load(&key).await.unwrap()),
            Some((v1, "a".into()))
        );
    }
}
