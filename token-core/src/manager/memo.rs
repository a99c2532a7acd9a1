//! Each thread's memo of its last fresh by-name read, checked before the session map.
//!
//! Most callers read one session (one merchant, one partner) many times in a row. The memo
//! holds the last token a thread read by name, with the session's name, its "fresh until"
//! and the manager's map epoch at the time of that read; a read of the same name by the
//! same manager is answered from it while the epoch has not moved, without the session
//! map's guard or the name's hash. Every change of a map entry (a publication, a remove)
//! moves the epoch both before the change (one change more under way) and after it (one
//! less, and the epoch proper moved), so a memo never outlives what it copied: a memo is
//! taken only at an epoch with no change under way, and a read that finds the epoch
//! unchanged since comes before any change began, as it would have through the map. (Moved
//! only after the change, a read in between, after another thread's read found the new
//! entry through the map and said so, would answer the older token from its memo.)
//!
//! A [`SessionHandle`](super::SessionHandle) reads exactly as a by-name read of its session's
//! name does (the memo, then the map's entry): while a handle holds its session, the name maps
//! to that session. A publication's change is under way from before it sets the session's own
//! state (`Inner::show` marks it as it is made, before the publication it is given to), which
//! the slow path reads.
//!
//! A memo holds one token per thread until that thread's next fresh read of another entry
//! or session (of any manager), or until it exits: a removed session's token, or a dropped
//! manager's, may stay in memory that long (as it may in a caller's hands), never to be
//! answered again. Nothing prints it (`AccessToken`'s `Debug` is redacted, and the memo has
//! no `Debug`).

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::secret::AccessToken;

use super::name::same;

/// The low bits of an epoch: how many changes of map entries are under way.
const CHANGING: u64 = (1 << 20) - 1;
/// The epoch proper, moved once per change: the bits above [`CHANGING`].
const CHANGED: u64 = CHANGING + 1;

/// A manager's map epoch: the changes of map entries made so far and under way. Every
/// move adds, so an epoch never comes back.
#[derive(Default)]
pub(super) struct Epoch(AtomicU64);

impl Epoch {
    /// The epoch now, read before a by-name read looks at its memo or the map: it sees
    /// every change completed before (Acquire, paired with [`Changing`]'s Release).
    #[inline]
    pub(super) fn now(&self) -> u64 {
        self.0.load(Ordering::Acquire)
    }

    /// Marks a change of map entries as under way until the returned guard is dropped,
    /// after the change (even by a panic): a read whose thread learnt of the change
    /// (through the map, or anything the change made visible) finds the epoch moved.
    pub(super) fn changing(&self) -> Changing<'_> {
        // Before the change's own writes (papaya's are Release, and so come after this).
        self.0.fetch_add(1, Ordering::AcqRel);
        Changing(&self.0)
    }
}

/// A change of map entries under way ([`Epoch::changing`]).
pub(super) struct Changing<'a>(&'a AtomicU64);

impl Drop for Changing<'_> {
    fn drop(&mut self) {
        // One change less under way, and the epoch proper moved.
        self.0.fetch_add(CHANGED - 1, Ordering::Release);
    }
}

/// A manager's identity for the memo: never reused in a process, so a memo of a dropped
/// manager never answers for a new one built at the same address.
pub(super) fn next_manager_id() -> u64 {
    static NEXT: AtomicU64 = AtomicU64::new(1);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

/// What the last fresh by-name read of this thread copied.
struct Memo {
    manager: u64,
    epoch: u64,
    name: Arc<str>,
    token: AccessToken,
    fresh_until: i64,
}

/// A thread's memo, and the map entry its last read that the memo did not answer found.
struct Last {
    memo: Option<Memo>,
    /// Where that entry was: a memo is taken only when two reads in a row find the same
    /// entry, so reads of another name each time (a random session among many) pay no
    /// reference counts for a memo that would not be used.
    candidate: usize,
}

thread_local! {
    static LAST: RefCell<Last> = const {
        RefCell::new(Last {
            memo: None,
            candidate: 0,
        })
    };
}

/// The memo's token, if this thread's last fresh by-name read was of `name` by `manager`
/// at `epoch` (the manager's epoch read before this call looks anywhere else) and its
/// token is fresh at any instant up to `at_least`.
#[inline]
pub(super) fn recall(
    manager: u64,
    epoch: u64,
    name: &str,
    at_least: i64,
) -> Result<Option<AccessToken>, std::thread::AccessError> {
    LAST.try_with(|last| {
        let last = last.try_borrow().ok()?;
        let memo = last.memo.as_ref()?;
        (memo.manager == manager
            && memo.epoch == epoch
            && at_least < memo.fresh_until
            && (std::ptr::eq(name, &*memo.name) || same(name, &memo.name)))
        .then(|| memo.token.clone())
    })
}

/// Notes a fresh read of `name` by `manager` at `epoch` (read before the map was) that
/// found the map entry at `entry`; remembers it if the last read that was not recalled
/// found the same entry, and lets go of the memo if not. Not at an epoch with a change
/// under way: that change may already show in the map to other threads, and the epoch
/// will not move again at its end for a memo taken before it.
#[inline]
pub(super) fn remember(
    manager: u64,
    epoch: u64,
    entry: usize,
    name: &Arc<str>,
    token: &AccessToken,
    fresh_until: i64,
) {
    let _ = LAST.try_with(|last| {
        let Ok(mut last) = last.try_borrow_mut() else {
            return;
        };
        if last.candidate != entry {
            // Another entry than the last read found: the memo (of another name, or of an
            // entry replaced since) is let go of, not kept until the next one is taken.
            last.candidate = entry;
            last.memo = None;
            return;
        }
        if epoch & CHANGING != 0 {
            return;
        }
        last.memo = Some(Memo {
            manager,
            epoch,
            name: name.clone(),
            token: token.clone(),
            fresh_until,
        });
    });
}

/// The name this thread's memo holds a token of, if any.
#[cfg(test)]
pub(super) fn held() -> Option<Arc<str>> {
    LAST.with(|last| last.borrow().memo.as_ref().map(|memo| memo.name.clone()))
}
