//! Each thread's memo of its last fresh by-name read, checked before the session map.
//!
//! Most callers read one session (one merchant, one partner) many times in a row. The memo
//! holds the last token a thread read by name, with the session's name, its "fresh until"
//! and the manager's map epoch at the time of that read; a read of the same name by the
//! same manager is answered from it while the epoch has not moved, without the session
//! map's guard or the name's hash. Every change of a map entry (a publication, a remove)
//! moves the epoch after the change, so a memo never outlives what it copied: a read that
//! finds the epoch unchanged comes before the change, as it would have through the map.
//!
//! A [`SessionHandle`](super::SessionHandle) reads and takes the same memo by its session's
//! name: while a handle holds its session, the name maps to that session.
//!
//! A memo holds one token per thread until that thread takes another memo, or exits: a
//! removed session's token, or a dropped manager's, may stay in memory that long (as it may
//! in a caller's hands), never to be answered again. Nothing prints it (`AccessToken`'s
//! `Debug` is redacted, and the memo has no `Debug`).

use std::cell::RefCell;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::secret::AccessToken;

use super::name::same;

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
    /// entry, so reads of another name each time (a random session among many) pay no reference
    /// counts for a memo that would not be used.
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
pub(super) fn recall(manager: u64, epoch: u64, name: &str, at_least: i64) -> Option<AccessToken> {
    LAST.try_with(|last| {
        let last = last.try_borrow().ok()?;
        let memo = last.memo.as_ref()?;
        (memo.manager == manager
            && memo.epoch == epoch
            && at_least < memo.fresh_until
            && (std::ptr::eq(name, &*memo.name) || same(name, &memo.name)))
        .then(|| memo.token.clone())
    })
    .ok()
    .flatten()
}

/// Notes a fresh read of `name` by `manager` at `epoch` (read before the map was) that
/// found the map entry at `entry`; remembers it if the last read that was not recalled
/// found the same entry.
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
            last.candidate = entry;
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
