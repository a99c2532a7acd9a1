//! The session map's key: a session's name, compared inline on the read path.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use foldhash::quality::RandomState;
use time::OffsetDateTime;

use papaya::Equivalent;

use super::session::Stamp;
use crate::error::Error;

/// A session's name as the session map's key (shared with the session's `SessionKey`).
///
/// Hashed as its `str`, so a lookup hashes the caller's `&str` without building a key, and
/// compared with [`same`] rather than a call to `memcmp`: names are short, and a by-name
/// read compares one.
#[derive(Clone)]
pub(super) struct Name(pub(super) Arc<str>);

impl Hash for Name {
    fn hash<H: Hasher>(&self, state: &mut H) {
        (*self.0).hash(state);
    }
}

impl PartialEq for Name {
    fn eq(&self, other: &Self) -> bool {
        same(&self.0, &other.0)
    }
}

impl Eq for Name {}

impl Equivalent<Name> for str {
    #[inline]
    fn equivalent(&self, key: &Name) -> bool {
        same(self, &key.0)
    }
}

/// `a == b`, inline: the length first, then 8 bytes at a time (the last word overlapping
/// the one before), shorter names 4 or 1 bytes at a time.
#[inline]
pub(super) fn same(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    let n = a.len();
    if n != b.len() {
        return false;
    }
    if n >= 8 {
        let mut at = 0;
        while at + 8 < n {
            if word8(a, at) != word8(b, at) {
                return false;
            }
            at += 8;
        }
        return word8(a, n - 8) == word8(b, n - 8);
    }
    if n >= 4 {
        return word4(a, 0) == word4(b, 0) && word4(a, n - 4) == word4(b, n - 4);
    }
    a == b
}

/// The 8 bytes of `s` from `at`.
#[inline(always)]
fn word8(s: &[u8], at: usize) -> u64 {
    let mut word = [0u8; 8];
    word.copy_from_slice(&s[at..at + 8]);
    u64::from_ne_bytes(word)
}

/// The 4 bytes of `s` from `at`.
#[inline(always)]
fn word4(s: &[u8], at: usize) -> u32 {
    let mut word = [0u8; 4];
    word.copy_from_slice(&s[at..at + 4]);
    u32::from_ne_bytes(word)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_agrees_with_eq_at_every_length_and_position() {
        for n in 0..40 {
            let a: String = (0..n).map(|i| char::from(b'a' + (i % 26) as u8)).collect();
            assert!(same(&a, &a.clone()), "{n}");
            for at in 0..n {
                let mut b = a.clone().into_bytes();
                b[at] = b'Z';
                let b = String::from_utf8(b).unwrap();
                assert!(!same(&a, &b), "{n} differing at {at}");
            }
            assert!(!same(&a, &format!("{a}x")), "{n} and longer");
        }
        assert!(same("", ""));
        assert!(same("é€", "é€"));
    }

    #[test]
    fn a_name_hashes_as_its_str() {
        let state = foldhash::quality::RandomState::default();
        use std::hash::BuildHasher;
        let name = Name(Arc::from("customer-42"));
        assert_eq!(state.hash_one(&name), state.hash_one("customer-42"));
    }
}

/// How many names without tokens a manager remembers, each answered without the store for
/// `failure_cooldown`; past that, a name without tokens is looked up in the store each time.
pub(super) const UNKNOWN_NAMES_KEPT: usize = 1024;

/// The longest name (in bytes) the set of names without tokens keeps: a longer one (a
/// caller's whole request body taken as a user id) is treated as one past the full set,
/// looked up in the store each time, so that the set holds a few hundred KiB at most,
/// not a thousand times whatever length callers send.
pub(super) const UNKNOWN_NAME_MAX_BYTES: usize = 256;

/// The names the store had no tokens for, and when it was asked (or, for a provider that
/// issues tokens of its own, whose issue failed, and how): the session map keeps no entry
/// for them, so memory does not grow with the names callers ask for (a web service that
/// keys sessions by a user id from its requests), and this set is bounded.
#[derive(Default)]
pub(super) struct UnknownNames {
    names: Mutex<Names>,
    /// How many names the set holds, written under its lock: an `insert` (which forgets its
    /// name) does not take the lock while the set is empty, as it is unless names without
    /// tokens are asked for.
    held: std::sync::atomic::AtomicUsize,
    /// How many passes over the whole set were made.
    #[cfg(test)]
    passes: std::sync::atomic::AtomicUsize,
}

/// When a name was found without tokens, and the failure of the issue that followed, if
/// any (answered again instead of asking the provider once per caller).
struct Look {
    at: Stamp,
    failure: Option<Box<Error>>,
}

/// The looks by name, the earliest instant one of them lapses (on each clock, see
/// [`Stamp`]) and the latest look (`None` while none is held): a full set is not scanned
/// for lapsed looks before then (nor while the clock has not stepped back past a look,
/// which lapses it too), so that a flood of new names costs a lookup each, not a pass over
/// the whole set.
#[derive(Default)]
struct Names {
    looks: HashMap<Arc<str>, Look, RandomState>,
    first_lapse: Option<OffsetDateTime>,
    first_lapse_mono: Option<tokio::time::Instant>,
    latest: Option<OffsetDateTime>,
    /// The latest failed issue for a name the full set could not take, answered again
    /// for `failure_cooldown` to the names past the set, so that their callers are not each
    /// sent to the provider while it is down.
    past_the_set: Option<Look>,
}

impl Names {
    /// Keeps `failure`, of an issue for a name the full set could not take at `checked`,
    /// as the one answered past the set, unless that one is still within `within`.
    fn keep_past_the_set(
        &mut self,
        checked: Stamp,
        now: OffsetDateTime,
        within: Duration,
        failure: Option<Error>,
    ) {
        let Some(failure) = failure else {
            return;
        };
        if (self.past_the_set.as_ref()).is_some_and(|look| look.at.within(now, within)) {
            return;
        }
        self.past_the_set = Some(Look {
            at: checked,
            failure: Some(Box::new(failure)),
        });
    }
}

impl UnknownNames {
    fn names(&self) -> MutexGuard<'_, Names> {
        // A map of names and looks, each entry written whole: a panic leaves none half-set.
        self.names
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn count(&self, names: &Names) {
        self.held
            .store(names.looks.len(), std::sync::atomic::Ordering::Release);
    }

    /// The look at `name` made within `within` before `now` (and not after it: a clock
    /// stepped back since is no reason to trust an old look).
    fn recent_look<T>(
        &self,
        name: &str,
        now: OffsetDateTime,
        within: Duration,
        what: impl FnOnce(&Look) -> T,
    ) -> Option<T> {
        self.names()
            .looks
            .get(name)
            .filter(|look| look.at.within(now, within))
            .map(what)
    }

    /// Whether `name` was found without tokens within `within` before `now`.
    pub(super) fn recent(&self, name: &str, now: OffsetDateTime, within: Duration) -> bool {
        self.recent_look(name, now, within, |look| look.failure.is_none())
            .unwrap_or(false)
    }

    /// The failure of an issue for `name` within `within` before `now`.
    pub(super) fn recent_failure(
        &self,
        name: &str,
        now: OffsetDateTime,
        within: Duration,
    ) -> Option<Error> {
        self.recent_look(name, now, within, |look| look.failure.as_deref().cloned())
            .flatten()
    }

    /// The failed issue for a name the full set could not take, within `within` before
    /// `now`: answered to a name without tokens in place of asking the provider again.
    pub(super) fn failure_past_the_set(
        &self,
        now: OffsetDateTime,
        within: Duration,
    ) -> Option<Error> {
        self.names()
            .past_the_set
            .as_ref()
            .filter(|look| look.at.within(now, within))
            .and_then(|look| look.failure.as_deref().cloned())
    }

    /// Remembers that `name` had no tokens when the store was asked at `checked` (and, with
    /// `failure`, that issuing them failed so). When the set is full, the looks older than
    /// `within` go first; if none is, `name` is not remembered, and its `failure` is kept
    /// as the one past the set (unless one is kept within `within` already: a failure
    /// answered again is not a new one). So is a name longer than [`UNKNOWN_NAME_MAX_BYTES`].
    pub(super) fn remember(
        &self,
        name: Arc<str>,
        checked: Stamp,
        now: OffsetDateTime,
        within: Duration,
        failure: Option<Error>,
    ) {
        let mut names = self.names();
        if name.len() > UNKNOWN_NAME_MAX_BYTES {
            names.keep_past_the_set(checked, now, within, failure);
            return;
        }
        let lapses = |at: OffsetDateTime| super::later(at, within);
        let lapses_mono = |at: Stamp| super::session::mono_later(at.mono(), within);
        if names.looks.len() >= UNKNOWN_NAMES_KEPT && !names.looks.contains_key(&*name) {
            // Nothing lapsed yet (and the clock did not step back, which lapses looks too):
            // no pass over the set.
            if names.first_lapse.is_some_and(|first| now < first)
                && (names.first_lapse_mono).is_some_and(|first| tokio::time::Instant::now() < first)
                && names.latest.is_some_and(|latest| latest <= now)
            {
                names.keep_past_the_set(checked, now, within, failure);
                return;
            }
            #[cfg(test)]
            self.passes
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            names.looks.retain(|_, look| look.at.within(now, within));
            names.first_lapse = names
                .looks
                .values()
                .map(|look| lapses(look.at.wall()))
                .min();
            names.first_lapse_mono = names.looks.values().map(|look| lapses_mono(look.at)).min();
            names.latest = names.looks.values().map(|look| look.at.wall()).max();
            if names.looks.len() >= UNKNOWN_NAMES_KEPT {
                names.keep_past_the_set(checked, now, within, failure);
                self.count(&names);
                return;
            }
        }
        let failure = failure.map(Box::new);
        names.looks.insert(
            name,
            Look {
                at: checked,
                failure,
            },
        );
        let (lapse, lapse_mono) = (lapses(checked.wall()), lapses_mono(checked));
        let checked = checked.wall();
        names.first_lapse = Some(names.first_lapse.map_or(lapse, |first| first.min(lapse)));
        names.first_lapse_mono =
            Some((names.first_lapse_mono).map_or(lapse_mono, |first| first.min(lapse_mono)));
        names.latest = Some(names.latest.map_or(checked, |latest| latest.max(checked)));
        self.count(&names);
    }

    /// Forgets that `name` had no tokens (tokens were inserted for it).
    pub(super) fn forget(&self, name: &str) {
        if self.held.load(std::sync::atomic::Ordering::Acquire) == 0 {
            return;
        }
        let mut names = self.names();
        names.looks.remove(name);
        self.count(&names);
    }

    #[cfg(test)]
    pub(super) fn len(&self) -> usize {
        self.names().looks.len()
    }

    /// The bytes of the names the set holds.
    #[cfg(test)]
    pub(super) fn name_bytes(&self) -> usize {
        self.names().looks.keys().map(|name| name.len()).sum()
    }
}

#[cfg(test)]
mod bound_tests {
    use super::*;
    use std::sync::atomic::Ordering;
    use time::macros::datetime;

    #[test]
    fn a_full_set_is_not_scanned_for_every_new_name() {
        let names = UnknownNames::default();
        let within = Duration::from_secs(5);
        let now = datetime!(2026-01-01 00:00 UTC);
        for i in 0..10 * UNKNOWN_NAMES_KEPT {
            names.remember(
                Arc::from(format!("ghost-{i}")),
                Stamp::at(now),
                now,
                within,
                None,
            );
        }
        assert_eq!(names.len(), UNKNOWN_NAMES_KEPT);
        // Full of looks that lapse together: one pass finds nothing to drop, and the next
        // 9000 names are turned away without another.
        assert!(
            names.passes.load(Ordering::Relaxed) <= 1,
            "{:?}",
            names.passes
        );
        // Once they lapse, a pass makes room; a clock stepped back lapses them too.
        let later = now + within;
        names.remember(Arc::from("late"), Stamp::at(later), later, within, None);
        assert!(names.recent("late", later, within));
        assert_eq!(names.len(), 1);
        for i in 0..UNKNOWN_NAMES_KEPT {
            names.remember(
                Arc::from(format!("again-{i}")),
                Stamp::at(later),
                later,
                within,
                None,
            );
        }
        let back = now - within;
        names.remember(Arc::from("back"), Stamp::at(back), back, within, None);
        assert!(names.recent("back", back, within));
        assert!(!names.recent("late", back, within));
    }
}
