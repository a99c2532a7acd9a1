//! One session's state in memory: its current set (or verdict), its generation and the
//! slot of the refresh under way.

use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::watch;

use crate::error::{Error, Reauth};
use crate::secret::{AccessToken, RefreshToken};
use crate::store::{SharedSet, Version};
use crate::token_set::{StoredTokenSet, TokenSet};

pub(super) type Outcome<X> = Result<Ready<X>, Error>;

/// The refresh under way: its id (so only its own guard clears the slot) and its answer.
pub(super) struct Flight<X> {
    pub(super) id: u64,
    pub(super) rx: watch::Receiver<Option<Outcome<X>>>,
    /// The asking for a pair lost in transit ([`Reason::Unresolved`]): it answers with
    /// whatever set it ends with, usable or not.
    pub(super) asking: bool,
}

pub(super) struct Session<X> {
    /// The generation and the state, under one lock, which also orders publications. A
    /// lock, not an `arc-swap` cell: a publication holds it anyway, and a store into such a
    /// cell walks every thread's debt slots (its cost grows with the threads that ever read
    /// one); a read holds it for a reference count. The fresh path (by name and by handle)
    /// never takes it: the session map's entry has what it needs.
    published: Mutex<Published<X>>,
    /// The session's name (shared with the map's key). Not a whole `SessionKey`: every
    /// session of a manager has the same provider, and the manager makes the key for a
    /// store call (16 bytes less per session).
    name: Arc<str>,
    /// What only refreshes and writes through a store of its own need, allocated on first
    /// use: a session that is only read and inserted into (with a `MemoryStore`) never
    /// pays for it.
    cold: OnceLock<Box<Cold<X>>>,
}

/// The parts of a session that its reads never touch.
struct Cold<X> {
    /// The refresh under way, if any.
    flight: Mutex<Option<Flight<X>>>,
    /// How many [`SessionHandle`](super::SessionHandle)s hold the session: `remove` keeps
    /// a held session in the map, so its handles keep reading it after a new insert.
    handles: std::sync::atomic::AtomicUsize,
    /// The provider's `Retry-After` for this session.
    cooldown: Cooldown,
    /// The last failure, answered again until the instant it holds instead of calling the
    /// provider (or the store) once per caller.
    /// Boxed: rare, and an `Error` is large.
    failure: Mutex<Option<Box<(Stamp, Duration, Error)>>>,
    /// The refresh token whose call's answer was lost, to be asked again before its reuse
    /// window closes, and whether a task is doing that.
    unresolved: Mutex<(Option<Unresolved>, bool)>,
    /// A refresh token the provider refused whose verdict waited for a store that could
    /// not be read, and the refusal: judged again, never presented again.
    /// Boxed: rare, and an `Error` is large.
    refused: Mutex<Option<Box<(RefreshToken, Error)>>>,
    /// A take-over of a lapsed lease that could read nothing (the read after its watch
    /// failed too): the instant from which the lapsed holder may have spent the token of the
    /// record the next read under the lease finds.
    unread_take_over: Mutex<Option<tokio::time::Instant>>,
    /// A request for the lease went unanswered (the store failed after it may have been
    /// sent), and no answer since says whose the lease is: it may have been granted to this
    /// process over a holder that let it lapse, and the next grant at once, this process's
    /// own lease extended, does not say so.
    grant_unheard: std::sync::atomic::AtomicBool,
    /// Held by `insert` and `remove` for their whole write (through a store other than the
    /// manager's `MemoryStore`), and briefly by a refresh as it starts: a refresh never
    /// starts from a state an insert is about to replace. Shared, so that an insert or a
    /// remove can take its turn in its caller's task and write in a task of its own.
    writer: Arc<tokio::sync::Mutex<()>>,
}

impl<X> Default for Cold<X> {
    fn default() -> Self {
        Self {
            flight: Mutex::new(None),
            handles: std::sync::atomic::AtomicUsize::new(0),
            cooldown: Cooldown::default(),
            failure: Mutex::new(None),
            unresolved: Mutex::new((None, false)),
            refused: Mutex::new(None),
            unread_take_over: Mutex::new(None),
            grant_unheard: std::sync::atomic::AtomicBool::new(false),
            writer: Arc::default(),
        }
    }
}

/// The generation of a session that has left the session map (removed, or forgotten as
/// unknown): no refresh started in another generation matches it, so nothing publishes into
/// the session again ([`Session::retire_if_absent`]).
pub(super) const RETIRED: u64 = u64::MAX;

/// What a session's lock guards.
struct Published<X> {
    /// Bumped by every `insert` and `remove`; a refresh publishes only into the generation
    /// it started in.
    generation: u64,
    /// `None` until loaded from the store.
    state: Option<Arc<State<X>>>,
}

impl<X> Published<X> {
    /// Sets `state` and runs `show` with it, under the lock. Returns the state replaced, to
    /// be dropped once the lock is let go: its extras are the application's type, whose
    /// `Drop` may read the session.
    #[must_use]
    fn set(
        &mut self,
        state: Arc<State<X>>,
        show: impl FnOnce(&Arc<State<X>>),
    ) -> Option<Arc<State<X>>> {
        let replaced = self.state.replace(state);
        if let Some(state) = &self.state {
            show(state);
        }
        replaced
    }

    /// [`set`](Self::set) under `guard`, then lets go of the lock, then drops the state
    /// replaced.
    fn set_and_let_go(
        mut guard: MutexGuard<'_, Self>,
        state: Arc<State<X>>,
        show: impl FnOnce(&Arc<State<X>>),
    ) {
        let replaced = guard.set(state, show);
        drop(guard);
        drop(replaced);
    }
}

/// A session's generation lock, held by an insert or a remove to write and publish under
/// it ([`Session::writing`]).
pub(super) struct Writing<'a, X> {
    session: &'a Session<X>,
    published: MutexGuard<'a, Published<X>>,
}

impl<X> Writing<'_, X> {
    /// Starts a new generation and publishes `state`; `show` runs with it, before any later
    /// publication. A failure remembered or a `Retry-After` of the tokens it replaces is
    /// forgotten.
    pub(super) fn publish(self, state: Arc<State<X>>, show: impl FnOnce(&Arc<State<X>>)) {
        let Self {
            session,
            mut published,
        } = self;
        published.generation += 1;
        let replaced = published.set(state, show);
        if let Some(cold) = session.cold.get() {
            cold.cooldown.clear();
            *lock(&cold.failure) = None;
        }
        drop(published);
        drop(replaced);
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // Every value behind these locks is replaced whole; a panic cannot leave one half-set.
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl<X> Session<X> {
    pub(super) fn new(name: Arc<str>) -> Self {
        Self {
            published: Mutex::new(Published {
                generation: 0,
                state: None,
            }),
            name,
            cold: OnceLock::new(),
        }
    }

    fn cold(&self) -> &Cold<X> {
        self.cold.get_or_init(Box::default)
    }

    /// Counts a new handle on the session, unless it is retired (out of the session map:
    /// a handle on it would never see a later insert). Under the generation lock, which
    /// [`retire_if_absent`](Self::retire_if_absent) holds as it looks at the count.
    pub(super) fn take_handle(&self) -> bool {
        if lock(&self.published).generation == RETIRED {
            return false;
        }
        self.handle_taken();
        true
    }

    /// Counts a new handle on a session a handle already holds (so not retired).
    pub(super) fn handle_taken(&self) {
        self.cold()
            .handles
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    }

    /// Counts a handle gone; whether it was the last.
    pub(super) fn handle_dropped(&self) -> bool {
        self.cold.get().is_some_and(|cold| {
            cold.handles
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed)
                == 1
        })
    }

    /// Whether a handle holds the session.
    pub(super) fn has_handles(&self) -> bool {
        self.cold
            .get()
            .is_some_and(|cold| cold.handles.load(std::sync::atomic::Ordering::Relaxed) > 0)
    }

    /// The session's name.
    pub(super) fn name(&self) -> &Arc<str> {
        &self.name
    }

    /// The state, if loaded.
    pub(super) fn load(&self) -> Option<Arc<State<X>>> {
        lock(&self.published).state.clone()
    }

    /// Whether the session's lock is held now (by this thread or another): for a test that
    /// checks what runs under it.
    #[cfg(test)]
    pub(super) fn locked(&self) -> bool {
        matches!(
            self.published.try_lock(),
            Err(std::sync::TryLockError::WouldBlock)
        )
    }

    /// The session's generation; [`RETIRED`] once it has left the session map.
    pub(super) fn generation(&self) -> u64 {
        lock(&self.published).generation
    }

    /// Whether the session has left the session map (see [`RETIRED`]).
    pub(super) fn is_retired(&self) -> bool {
        self.generation() == RETIRED
    }

    /// Publishes `state` if the session is still at `generation`; `show` then runs with
    /// it, before any later publication (the session map's copy of the current set).
    pub(super) fn publish_if(
        &self,
        generation: u64,
        state: Arc<State<X>>,
        show: impl FnOnce(&Arc<State<X>>),
    ) -> bool {
        let current = lock(&self.published);
        if current.generation != generation {
            return false;
        }
        Published::set_and_let_go(current, state, show);
        true
    }

    /// Publishes a refreshed set if the session is still at `generation`, or still holds
    /// exactly the set the refresh started from (an insert that failed, or has not published
    /// yet and will publish over this).
    pub(super) fn publish_refreshed(
        &self,
        generation: u64,
        started_from: Option<&Ready<X>>,
        state: Arc<State<X>>,
        show: impl FnOnce(&Arc<State<X>>),
    ) -> bool {
        let current = lock(&self.published);
        let unchanged = match (&current.state, started_from) {
            (Some(now), Some(from)) => Arc::ptr_eq(now, &from.0),
            _ => false,
        };
        if current.generation == RETIRED || (current.generation != generation && !unchanged) {
            return false;
        }
        Published::set_and_let_go(current, state, show);
        true
    }

    /// Publishes `state` in place of `replaced` if the session still holds exactly that
    /// (whatever its generation: an insert that has not published yet publishes over this),
    /// unless it is retired. For a background save of an unsaved set: once anything else
    /// was published (a newer pair, within the same generation), the saved set is stale.
    pub(super) fn publish_over(
        &self,
        replaced: &Ready<X>,
        state: Arc<State<X>>,
        show: impl FnOnce(&Arc<State<X>>),
    ) -> bool {
        let current = lock(&self.published);
        let unchanged = (current.state.as_ref()).is_some_and(|now| replaced.is(now));
        if current.generation == RETIRED || !unchanged {
            return false;
        }
        Published::set_and_let_go(current, state, show);
        true
    }

    /// Starts a new generation and publishes the state `write` makes (a remove, after its
    /// store write; `write` may make that write itself, which then no refresh start can come
    /// between). A retired session is left alone (`write` is not called): `false`.
    pub(super) fn replace<E>(
        &self,
        write: impl FnOnce() -> Result<Arc<State<X>>, E>,
        show: impl FnOnce(&Arc<State<X>>),
    ) -> Result<bool, E> {
        let Some(writing) = self.writing() else {
            return Ok(false);
        };
        writing.publish(write()?, show);
        Ok(true)
    }

    /// The generation lock, for an insert or a remove to write and then publish under it,
    /// unless the session is retired: the caller then looks its name up again, so that
    /// what it writes reaches the session the name maps to.
    pub(super) fn writing(&self) -> Option<Writing<'_, X>> {
        let published = lock(&self.published);
        (published.generation != RETIRED).then_some(Writing {
            session: self,
            published,
        })
    }

    /// Starts a new generation with nothing loaded (the next call loads the session from
    /// the store), unless the session is retired; `clear` runs under the lock (the session
    /// map's copy of the current set goes). For an insert or a remove whose store write was
    /// dropped unfinished: it may have landed, and the set held here may no longer be the
    /// store's. A set not saved yet is kept: it may be the only copy of a pair the provider
    /// rotated to, and its save (in the background, or at shutdown) compares it with what
    /// the write left there and takes that instead if it landed.
    pub(super) fn unload(&self, clear: impl FnOnce()) {
        let mut published = lock(&self.published);
        let unsaved = matches!(
            published.state.as_deref(),
            Some(State::Ready(current)) if !current.saved()
        );
        if published.generation == RETIRED || unsaved {
            return;
        }
        published.generation += 1;
        let replaced = published.state.take();
        clear();
        drop(published);
        drop(replaced);
    }

    /// Takes the session out of the session map with `unmap` (given the instant the store
    /// was last asked, `None` if the session was never loaded; it says whether it took the
    /// session out), if the session holds no tokens (absent, or never loaded), no handle
    /// holds it and no insert or remove is writing it. Under the generation lock: a handle taken, or an insert or a load
    /// publishing, meanwhile is either seen here (and the session kept) or finds it
    /// retired. From then on nothing publishes into it, no handle is taken on it, and a
    /// refresh asked of it runs on the session its name maps to instead: two sessions of
    /// one name never refresh side by side.
    pub(super) fn retire_if_absent(&self, unmap: impl FnOnce(Option<Stamp>) -> bool) -> bool {
        let mut published = lock(&self.published);
        if published.generation == RETIRED || self.has_handles() {
            return false;
        }
        // An insert or a remove through the store holds the writer lock from before its
        // write to its publication: retired in between, the session would refuse that
        // publication, and the insert (or remove) would write again on the session the name
        // maps to next, over whatever was written meanwhile (a login already refreshed by
        // another process and spent). A refresh holds it only briefly.
        if (self.cold.get()).is_some_and(|cold| cold.writer.try_lock().is_err()) {
            return false;
        }
        let checked_at = match published.state.as_deref() {
            Some(State::Absent { checked_at }) => Some(*checked_at),
            None => None,
            Some(_) => return false,
        };
        if !unmap(checked_at) {
            return false;
        }
        published.generation = RETIRED;
        true
    }

    /// Whether a refresh of the session is under way.
    pub(super) fn in_flight(&self) -> bool {
        self.cold
            .get()
            .is_some_and(|cold| lock(&cold.flight).is_some())
    }

    /// Records `lost` as the refresh token to ask again for, replacing another token's
    /// (the same token keeps its first close: the provider's window runs from its first
    /// rotation).
    pub(super) fn note_unresolved(&self, lost: Unresolved) {
        let mut slot = lock(&self.cold().unresolved);
        if slot
            .0
            .as_ref()
            .is_none_or(|known| known.token != lost.token)
        {
            slot.0 = Some(lost);
        }
    }

    /// Whether a token is to be asked for and no task does it yet; if so the caller starts
    /// that task.
    pub(super) fn start_resolving(&self) -> bool {
        let Some(cold) = self.cold.get() else {
            return false;
        };
        let mut slot = lock(&cold.unresolved);
        slot.0.is_some() && !std::mem::replace(&mut slot.1, true)
    }

    /// The refresh token to ask again for; `None` when there is none, and the task that
    /// asked then ends.
    pub(super) fn next_unresolved(&self) -> Option<Unresolved> {
        let mut slot = lock(&self.cold().unresolved);
        let next = slot.0.clone();
        slot.1 = next.is_some();
        next
    }

    /// Whether `token` is the one a lost answer left to ask for again, and its reuse window
    /// is open for more than a second still: the provider answers it again whoever spent it
    /// after this process did (its window runs from the first rotation).
    pub(super) fn unresolved_open(&self, token: &RefreshToken) -> bool {
        self.open_unresolved(|lost| lost == token)
    }

    /// Whether any token is left to ask for again with its reuse window open for more than
    /// a second still.
    pub(super) fn any_unresolved_open(&self) -> bool {
        self.open_unresolved(|_| true)
    }

    fn open_unresolved(&self, which: impl FnOnce(&RefreshToken) -> bool) -> bool {
        let Some(cold) = self.cold.get() else {
            return false;
        };
        lock(&cold.unresolved).0.as_ref().is_some_and(|lost| {
            which(&lost.token)
                && lost
                    .closes
                    .saturating_duration_since(tokio::time::Instant::now())
                    > std::time::Duration::from_secs(1)
        })
    }

    /// `token` needs no more asking (answered, replaced, refused, or out of time).
    pub(super) fn resolved(&self, token: &RefreshToken) {
        let Some(cold) = self.cold.get() else {
            return;
        };
        let mut slot = lock(&cold.unresolved);
        if slot.0.as_ref().is_some_and(|lost| &lost.token == token) {
            slot.0 = None;
        }
    }

    /// The task that asked was dropped unfinished (with the runtime that ran it): the
    /// token is kept, and the next [`start_resolving`](Self::start_resolving) (a failed
    /// refresh's, or `shutdown`'s) starts a task again.
    pub(super) fn resolving_dropped(&self) {
        if let Some(cold) = self.cold.get() {
            lock(&cold.unresolved).1 = false;
        }
    }

    /// The task that asked ends (at `shutdown`): nothing is asked for any more.
    pub(super) fn stop_resolving(&self) {
        *lock(&self.cold().unresolved) = (None, false);
    }

    /// The lock `insert` and `remove` hold for a write through the store.
    pub(super) fn writer(&self) -> &Arc<tokio::sync::Mutex<()>> {
        &self.cold().writer
    }

    /// How long the provider's `Retry-After` for this session asks to wait still.
    pub(super) fn cooldown_left(&self, now: OffsetDateTime) -> Option<Duration> {
        self.cold.get()?.cooldown.left(now)
    }

    /// No provider call for this session before `until`, `wait` from now.
    pub(super) fn extend_cooldown(&self, until: OffsetDateTime, wait: Duration) {
        self.cold().cooldown.extend(until, wait);
    }

    /// The failure to answer again, while it is recent: remembered until an instant at
    /// most `within` from now (so a clock stepped back cannot stretch it).
    /// The failure remembered less than its while ago (and less than `within`), on both
    /// clocks ([`Stamp`]).
    pub(super) fn recent_failure(&self, now: OffsetDateTime, within: Duration) -> Option<Error> {
        lock(&self.cold.get()?.failure)
            .as_ref()
            .filter(|failure| failure.0.within(now, failure.1.min(within)))
            .map(|failure| failure.2.clone())
    }

    /// Remembers `error`, which happened `at`, to be answered again for `lasting`.
    pub(super) fn remember_failure(&self, at: Stamp, lasting: Duration, error: Error) {
        *lock(&self.cold().failure) = Some(Box::new((at, lasting, error)));
    }

    /// As [`remember_failure`](Self::remember_failure), if the session is still at
    /// `generation`: an insert or remove since (which forgets the failures before it) is
    /// not answered with a failure of the tokens it replaced.
    pub(super) fn remember_failure_at(
        &self,
        generation: u64,
        at: Stamp,
        lasting: Duration,
        error: Error,
    ) {
        let current = lock(&self.published);
        if current.generation == generation {
            self.remember_failure(at, lasting, error);
        }
    }

    /// Notes that the provider refused `token` and the verdict waits for the store.
    pub(super) fn note_refused(&self, token: RefreshToken, error: Error) {
        *lock(&self.cold().refused) = Some(Box::new((token, error)));
    }

    /// The refusal of `token`, if the provider refused it and the verdict waited for the
    /// store.
    pub(super) fn refusal_of(&self, token: &RefreshToken) -> Option<Error> {
        lock(&self.cold.get()?.refused)
            .as_ref()
            .filter(|refused| refused.0 == *token)
            .map(|refused| refused.1.clone())
    }

    /// Notes a take-over of a lapsed lease that read nothing: the record the next read
    /// under the lease finds may have been spent from `spent_from`.
    pub(super) fn note_unread_take_over(&self, spent_from: tokio::time::Instant) {
        *lock(&self.cold().unread_take_over) = Some(spent_from);
    }

    /// Takes the note of a take-over that read nothing, if any.
    pub(super) fn take_unread_take_over(&self) -> Option<tokio::time::Instant> {
        lock(&self.cold.get()?.unread_take_over).take()
    }

    /// Notes whether the last request for the lease went unanswered (`true`), or was
    /// answered with a grant over another holder or a refusal, or the lease given back
    /// (`false`): see `Cold::grant_unheard`.
    pub(super) fn note_grant_unheard(&self, unheard: bool) {
        if unheard || self.cold.get().is_some() {
            self.cold().grant_unheard.store(unheard, Ordering::SeqCst);
        }
    }

    /// Whether this process's lease may have been granted over a holder that let it lapse
    /// without this process hearing so (see [`note_grant_unheard`](Self::note_grant_unheard)).
    pub(super) fn grant_unheard(&self) -> bool {
        (self.cold.get()).is_some_and(|cold| cold.grant_unheard.load(Ordering::SeqCst))
    }

    pub(super) fn flight_slot(&self) -> MutexGuard<'_, Option<Flight<X>>> {
        lock(&self.cold().flight)
    }
}

/// A refresh token a call presented whose answer was lost: the provider may have rotated it
/// and answers it again (with the new pair) until its reuse window `closes`.
#[derive(Clone)]
pub(super) struct Unresolved {
    pub(super) token: RefreshToken,
    pub(super) closes: tokio::time::Instant,
}

/// No provider call before an instant: the provider's `Retry-After`, for a session or for
/// the whole client.
#[derive(Default)]
pub(super) struct Cooldown(Mutex<Option<(OffsetDateTime, Duration, tokio::time::Instant)>>);

impl Cooldown {
    /// How long the provider asked to wait still, if it did, on both clocks (as a
    /// [`Stamp`]'s while): never longer than it asked, so a clock stepped back past the
    /// request cannot stretch it (the wait then starts again from now, on the manager's
    /// clock), nor one stepped back less than the time since (the monotonic clock runs on).
    pub(super) fn left(&self, now: OffsetDateTime) -> Option<Duration> {
        let mut cooldown = lock(&self.0);
        let (until, wait, until_mono) = (*cooldown)?;
        let left_mono = until_mono.saturating_duration_since(tokio::time::Instant::now());
        let left = Duration::try_from(until - now)
            .ok()
            .filter(|d| !d.is_zero() && !left_mono.is_zero())?;
        if left > wait {
            *cooldown = Some((later(now, wait), wait, until_mono));
            return Some(wait.min(left_mono));
        }
        Some(left.min(left_mono))
    }

    /// Waits until `until` at least (`wait` from now).
    pub(super) fn extend(&self, until: OffsetDateTime, wait: Duration) {
        let mut cooldown = lock(&self.0);
        let until_mono = mono_later(tokio::time::Instant::now(), wait);
        *cooldown = Some(match *cooldown {
            Some((at, asked, at_mono)) => (at.max(until), asked.max(wait), at_mono.max(until_mono)),
            None => (until, wait, until_mono),
        });
    }

    pub(super) fn clear(&self) {
        *lock(&self.0) = None;
    }
}

pub(super) enum State<X> {
    /// The store had no set for the session when last looked at.
    Absent {
        /// When the store was last looked at (another process may insert meanwhile).
        checked_at: Stamp,
    },
    /// Inline, so a session's current set and its state are one allocation: a [`Ready`]
    /// holds the `Arc` of this state.
    Ready(Current<X>),
    /// Re-auth was signalled; nothing is refreshed until new tokens are inserted (here or,
    /// seen on a later look at the store, by another process).
    Dead {
        /// Boxed: it is large, and the state of every live session pays for the largest.
        reauth: Box<Reauth>,
        /// The store version holding the verdict, or (if it could not be recorded) the
        /// version whose refresh token was refused: anything else in the store is newer.
        version: Option<Version>,
        /// When the store was last looked at.
        checked_at: Stamp,
    },
}

pub(super) struct Current<X> {
    /// The set in the form stores keep, its extras as JSON, inline: the state is one
    /// allocation. A [`MemoryStore`] the manager saves to keeps the state itself: one copy
    /// of the set for both. The fast path reads its access token and `fresh_until`.
    ///
    /// [`MemoryStore`]: crate::store::MemoryStore
    pub(super) stored: StoredTokenSet,
    /// The extras, typed.
    pub(super) extras: X,
    /// The store version this set is at (or, unsaved, the version it replaces), if
    /// `settled` says it has one.
    version: AtomicU64,
    /// [`HAS_VERSION`] and [`SAVED`]: written once more after the state is built (see
    /// [`settle`](Self::settle)); atomics, so the state needs no lock and no copy for it.
    settled: AtomicU8,
    /// When to refresh ahead of expiry, in Unix nanoseconds ([`NEVER`]: only when refused
    /// or forced). Nanoseconds, not an `OffsetDateTime`: an insert computes it without
    /// calendar arithmetic.
    refresh_at: Nanos,
    /// Until when the access token is handed out, in Unix nanoseconds ([`NEVER`]: no expiry
    /// known): its expiry, or a short grace for a set that arrived already expired.
    usable_until: Nanos,
    /// Obtained by a refresh after the API refused the previous token, at this instant
    /// (Unix seconds, rounded up, modulo 2^32: only its distance to a later instant is read,
    /// so it holds past 2106; 0: not): a refusal of this one too is not refreshed again for a
    /// while (an API that refuses everything must not rotate the session on every
    /// request), but is once the while has passed (a token the API accepted, then
    /// revoked). Four bytes, beside `settled`'s one: no larger a state.
    after_rejection_at: u32,
    /// The earlier of `refresh_at` and `usable_until` in Unix nanoseconds, for the fast
    /// path: fresh while the clock reads earlier. Set by [`sealed`](Self::sealed) whenever
    /// either changes.
    pub(super) fresh_until: i64,
}

/// A state known to be [`State::Ready`], shared: what holds a session's current set (the
/// session, the session map, a refresh's answer) holds the state itself, no second `Arc`.
pub(super) struct Ready<X>(Arc<State<X>>);

impl<X> Ready<X> {
    /// `current` as a new ready state.
    #[inline]
    pub(super) fn new(current: Current<X>) -> Self {
        Self(Arc::new(State::Ready(current)))
    }

    /// The state, if it is ready.
    pub(super) fn of(state: &Arc<State<X>>) -> Option<Self> {
        matches!(**state, State::Ready(_)).then(|| Self(state.clone()))
    }

    /// Whether `a` and `b` are the same publication.
    pub(super) fn ptr_eq(a: &Self, b: &Self) -> bool {
        Arc::ptr_eq(&a.0, &b.0)
    }

    /// Whether this is the publication `state`.
    pub(super) fn is(&self, state: &Arc<State<X>>) -> bool {
        Arc::ptr_eq(&self.0, state)
    }

    /// The state, as a [`MemoryStore`](crate::store::MemoryStore) keeps it: its set, shared.
    pub(super) fn shared(&self) -> Arc<dyn SharedSet>
    where
        X: Send + Sync + 'static,
    {
        self.0.clone()
    }
}

/// Only ready states are given to a store (through [`Ready::shared`]).
impl<X: Send + Sync + 'static> SharedSet for State<X> {
    fn tokens(&self) -> Option<&StoredTokenSet> {
        match self {
            State::Ready(current) => Some(&current.stored),
            State::Absent { .. } | State::Dead { .. } => None,
        }
    }

    fn version(&self) -> Version {
        match self {
            State::Ready(current) => current.version().unwrap_or_default(),
            State::Absent { .. } | State::Dead { .. } => Version::default(),
        }
    }

    fn saved_at(&self, version: Version) {
        if let State::Ready(current) = self {
            current.settle(Some(version), true);
        }
    }
}

impl<X> Clone for Ready<X> {
    fn clone(&self) -> Self {
        Self(self.0.clone())
    }
}

impl<X> std::ops::Deref for Ready<X> {
    type Target = Current<X>;

    #[inline]
    fn deref(&self) -> &Current<X> {
        match &*self.0 {
            State::Ready(current) => current,
            // Made only by `new` and `of`, from a ready state; states are never mutated.
            _ => unreachable!("a Ready of a state that is not ready"),
        }
    }
}

impl<X> From<Ready<X>> for Arc<State<X>> {
    fn from(ready: Ready<X>) -> Self {
        ready.0
    }
}

impl<X> Current<X> {
    /// A set at `version` (saved, or the version it replaces), to be refreshed at
    /// `refresh_at` (Unix nanoseconds).
    #[inline]
    pub(super) fn new(
        mut stored: StoredTokenSet,
        extras: X,
        version: Option<Version>,
        saved: bool,
        refresh_at: Option<i128>,
    ) -> Self {
        // An access token that cannot be sent, found in a store (`insert` refuses one, a
        // refresh sets one aside), or an empty one (no bearer to send, whatever its
        // expiry): set aside too, never served, so the first caller refreshes with the
        // stored refresh token, and a provider that sends the current access token on
        // refresh sends none rather than failing to encode the request.
        let set_aside = crate::codec::set_aside_unusable_access(&mut stored).is_some();
        // Built in one go (no pass through `sealed`): an insert moves the set once less.
        // Whatever the clock reads (one before the Unix epoch, the set-aside expiry, too).
        let usable_until = if set_aside {
            UNUSABLE
        } else {
            nanos_or_never(stored.access_expires_at)
        };
        let refresh_at = refresh_at.map_or(NEVER, Nanos::new);
        Self {
            usable_until,
            stored,
            extras,
            version: AtomicU64::new(version.unwrap_or(0)),
            settled: AtomicU8::new(flags(version, saved)),
            refresh_at,
            after_rejection_at: 0,
            fresh_until: fresh_until(refresh_at, usable_until),
        }
    }

    /// Computes `fresh_until` from `refresh_at` and `usable_until`.
    pub(super) fn sealed(mut self) -> Self {
        self.fresh_until = fresh_until(self.refresh_at, self.usable_until);
        self
    }

    /// When the set is to be refreshed ahead of expiry.
    #[cfg(test)]
    pub(super) fn refresh_at(&self) -> Option<OffsetDateTime> {
        instant(self.refresh_at)
    }

    /// Until when the access token is handed out.
    #[cfg(test)]
    pub(super) fn usable_until(&self) -> Option<OffsetDateTime> {
        instant(self.usable_until)
    }

    /// Refreshes no earlier than `earliest` (if at all ahead of expiry).
    pub(super) fn refresh_no_earlier_than(&mut self, earliest: OffsetDateTime) {
        if self.refresh_at != NEVER {
            self.refresh_at = self.refresh_at.max(Nanos::of(earliest));
        }
    }

    /// Handed out until `earliest` at least (if it has an end).
    pub(super) fn usable_until_at_least(&mut self, earliest: OffsetDateTime) {
        if self.usable_until != NEVER {
            self.usable_until = self.usable_until.max(Nanos::of(earliest));
        }
    }

    /// The access token.
    #[inline]
    pub(super) fn access_token(&self) -> &AccessToken {
        &self.stored.access_token
    }

    /// The store version this set is at (saved) or replaces (unsaved).
    pub(super) fn version(&self) -> Option<Version> {
        let flags = self.settled.load(Ordering::Acquire);
        (flags & HAS_VERSION != 0).then(|| self.version.load(Ordering::Relaxed))
    }

    /// Whether the set is saved at [`version`](Self::version).
    pub(super) fn saved(&self) -> bool {
        self.settled.load(Ordering::Acquire) & SAVED != 0
    }

    /// Records the outcome of the set's save. Only before the state is published: a
    /// [`MemoryStore`](crate::store::MemoryStore) keeps the state itself, so it is saved
    /// first and settled after.
    pub(super) fn settle(&self, version: Option<Version>, saved: bool) {
        self.version.store(version.unwrap_or(0), Ordering::Relaxed);
        let written = if saved { WRITTEN } else { 0 };
        self.settled
            .store(flags(version, saved) | written, Ordering::Release);
    }

    /// Whether this process knows of no newer record than this set's version: it saved
    /// the set there itself ([`settle`](Self::settle)), or the set, unsaved, replaces that
    /// version. A record found at a lower version is then one the store went back to (its
    /// versions only grow), not a newer write; a set read from the store knows no such thing
    /// (a store restored from a backup may issue lower versions again, to newer writes).
    pub(super) fn known_latest(&self) -> bool {
        let flags = self.settled.load(Ordering::Acquire);
        flags & SAVED == 0 || flags & WRITTEN != 0
    }
}

impl<X: Clone> Current<X> {
    /// The whole set, typed (for the provider and [`token_set`](crate::manager::TokenManager::token_set)).
    pub(super) fn set(&self) -> TokenSet<X> {
        let stored = &self.stored;
        TokenSet {
            access_token: stored.access_token.clone(),
            refresh_token: stored.refresh_token.clone(),
            access_expires_at: stored.access_expires_at,
            refresh_expires_at: stored.refresh_expires_at,
            token_type: stored.token_type.clone(),
            scope: stored.scope.clone(),
            extras: self.extras.clone(),
        }
    }

    pub(super) fn fresh(&self, now: OffsetDateTime) -> bool {
        Nanos::of(now) < self.refresh_at.min(self.usable_until)
    }

    pub(super) fn usable(&self, now: OffsetDateTime) -> bool {
        Nanos::of(now) < self.usable_until
    }

    /// Marks the set as obtained, at `now`, by a refresh after the API refused the token
    /// before it.
    pub(super) fn obtained_after_rejection(&mut self, now: OffsetDateTime) {
        // The next whole second (or this one, if `now` is whole): the while ends no earlier
        // than `window` after `now`.
        let whole = now.unix_timestamp() + i64::from(now.nanosecond() > 0);
        // Wrapped, not saturated: past 2106 a saturated instant would lie in the past of
        // every later one, and every refusal would be refreshed again.
        self.after_rejection_at = (whole as u32).max(1);
    }

    /// Whether the set was obtained after a refusal less than `window` (a second at least)
    /// before `now`: a refusal of it is not refreshed again yet. The instant is kept in
    /// whole seconds, rounded up, so the while is the whole `window` however late in its
    /// second the set came, and less than a second more. A clock that went back past the
    /// second it was obtained in ends the while too.
    pub(super) fn after_rejection(&self, now: OffsetDateTime, window: std::time::Duration) -> bool {
        let at = self.after_rejection_at;
        // Saturating: a cooldown of `Duration::MAX` (whole seconds past `u64::MAX`) is the
        // longest one, not an overflow.
        let whole = (window.as_secs()).saturating_add(u64::from(window.subsec_nanos() > 0));
        let window = u32::try_from(whole.max(1)).unwrap_or(u32::MAX);
        // From the second before `at` (it was rounded up) to `window` after it, in the same
        // wrapped seconds: a clock gone back before that second reads as far after it.
        let since = (now.unix_timestamp() as u32).wrapping_sub(at.wrapping_sub(1));
        at != 0 && since < window.saturating_add(1)
    }

    /// The same set, saved at `version`.
    pub(super) fn saved_at(&self, version: Version) -> Self {
        Self {
            stored: self.stored.clone(),
            extras: self.extras.clone(),
            version: AtomicU64::new(version),
            settled: AtomicU8::new(HAS_VERSION | SAVED | WRITTEN),
            refresh_at: self.refresh_at,
            usable_until: self.usable_until,
            after_rejection_at: self.after_rejection_at,
            fresh_until: self.fresh_until,
        }
    }

    /// The same set, to be refreshed again no earlier than `at`.
    pub(super) fn retry_at(&self, at: OffsetDateTime) -> Self {
        Self {
            stored: self.stored.clone(),
            extras: self.extras.clone(),
            version: AtomicU64::new(self.version.load(Ordering::Relaxed)),
            settled: AtomicU8::new(self.settled.load(Ordering::Acquire)),
            refresh_at: Nanos::of(at).min(self.usable_until),
            usable_until: self.usable_until,
            after_rejection_at: self.after_rejection_at,
            fresh_until: 0,
        }
        .sealed()
    }
}

/// [`Current::refresh_at`] or [`Current::usable_until`] that never comes: later than every
/// instant `time` represents.
const NEVER: Nanos = Nanos::new(i128::MAX);

/// [`Current::usable_until`] of an access token set aside: earlier than every instant.
const UNUSABLE: Nanos = Nanos::new(i128::MIN);

/// Unix nanoseconds (an `i128`) kept as two 8-byte halves, ordered as the `i128`: aligned
/// to 8 bytes, not 16, so a state is not padded to a multiple of 16.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Nanos {
    high: i64,
    low: u64,
}

impl Nanos {
    const fn new(nanos: i128) -> Self {
        Self {
            high: (nanos >> 64) as i64,
            low: nanos as u64,
        }
    }

    fn of(at: OffsetDateTime) -> Self {
        Self::new(at.unix_timestamp_nanos())
    }

    fn get(self) -> i128 {
        (i128::from(self.high) << 64) | i128::from(self.low)
    }
}

/// The earlier of `refresh_at` and `usable_until`, clamped to `i64` (the fast path's clock).
fn fresh_until(refresh_at: Nanos, usable_until: Nanos) -> i64 {
    let until = refresh_at.min(usable_until).get();
    until.clamp(i128::from(i64::MIN), i128::from(i64::MAX)) as i64
}

fn nanos_or_never(at: Option<OffsetDateTime>) -> Nanos {
    at.map_or(NEVER, Nanos::of)
}

/// The instant `nanos` is, `None` for [`NEVER`].
#[cfg(test)]
fn instant(nanos: Nanos) -> Option<OffsetDateTime> {
    (nanos != NEVER).then(|| from_unix_nanos(nanos.get()))
}

/// [`Current::settled`]: the set has a version.
const HAS_VERSION: u8 = 1;
/// [`Current::settled`]: the set is saved at its version.
const SAVED: u8 = 2;

/// [`Current::settled`]: saved at its version by this process (a refresh's save, an
/// insert's), not read from the store.
const WRITTEN: u8 = 4;

fn flags(version: Option<Version>, saved: bool) -> u8 {
    (if version.is_some() { HAS_VERSION } else { 0 }) | if saved { SAVED } else { 0 }
}

/// Why a refresh was started; decides whether the state found when it runs already
/// satisfies it.
#[derive(Clone, Debug)]
pub(super) enum Reason {
    /// A caller found the token near expiry but still valid.
    Proactive,
    /// A caller has no usable token (none loaded, or expired).
    Needed,
    /// The API refused this token.
    Rejected(AccessToken),
    /// The application asked.
    Forced,
    /// The application asked, and found another process's refresh of the session under way
    /// (its lease held) when the store held this version (none: no record): settled by a
    /// record written after it, that refresh's answer, as a refresh under way in this
    /// process is shared. Not by one holding the access token this process held as it
    /// asked with the same expiry (its own unsaved pair, saved late): that is no refresh's
    /// answer (one renewing that token in place extends its expiry).
    ForcedDuringAnother(
        Option<crate::store::Version>,
        Option<(AccessToken, Option<OffsetDateTime>)>,
    ),
    /// A call that presented this refresh token may have been answered (its answer was
    /// lost), and the refresh that made it gave up: settled once the set holds another
    /// refresh token.
    Unresolved(RefreshToken),
    /// A lease of this session lapsed unreleased in the store, holding the record at this
    /// version: its holder may have spent that record's refresh token (see
    /// [`Inner::scan_lapsed_leases`](super::Inner::scan_lapsed_leases)). Settled by a record
    /// written after it.
    Lapsed(crate::store::Version),
}

impl Reason {
    pub(super) fn as_str(&self) -> &'static str {
        match self {
            Self::Proactive => "proactive",
            Self::Needed => "needed",
            Self::Rejected(_) => "rejected",
            Self::Forced | Self::ForcedDuringAnother(..) => "forced",
            Self::Unresolved(_) => "unresolved",
            Self::Lapsed(_) => "lapsed",
        }
    }

    /// Whether `current` serves this reason at `now`; a token obtained after a refusal
    /// stands against another for `after_rejection` (the failure cooldown).
    pub(super) fn satisfied_by<X: Clone>(
        &self,
        current: &Current<X>,
        now: OffsetDateTime,
        after_rejection: std::time::Duration,
    ) -> bool {
        match self {
            Self::Proactive | Self::Needed => current.fresh(now),
            // Another token to retry with (or one obtained after a refusal a moment ago), if
            // it is still valid: an expired one would only be refused in turn.
            Self::Rejected(token) => {
                current.usable(now)
                    && (current.access_token() != token
                        || current.after_rejection(now, after_rejection))
            }
            Self::Forced => false,
            // Another pair than the one asked about, if its access token can be served (a
            // pair whose access token was set aside is refreshed with its refresh token).
            Self::Unresolved(token) => {
                current.usable(now) && current.stored.refresh_token.as_ref() != Some(token)
            }
            Self::Lapsed(version) => {
                current.usable(now) && current.version().is_some_and(|at| at > *version)
            }
            Self::ForcedDuringAnother(seen, held) => {
                current.usable(now)
                    && current
                        .version()
                        .is_some_and(|at| seen.is_none_or(|seen| at > seen))
                    && held.as_ref().is_none_or(|(token, expiry)| {
                        token != current.access_token()
                            || *expiry != current.stored.access_expires_at
                    })
            }
        }
    }
}

/// An instant on the manager's clock and on the monotonic one (tokio's): what is remembered
/// for a while from it (a look at the store, a failure) lapses as soon as either clock says
/// the while has passed. A wall clock stepped back (NTP) stretches nothing, since the
/// monotonic clock runs on; stepped back past the instant, or forward, it ends the while at
/// once; and a test that moves only the manager's clock ends it too.
#[derive(Clone, Copy, Debug)]
pub(super) struct Stamp {
    wall: OffsetDateTime,
    mono: tokio::time::Instant,
}

impl Stamp {
    /// `wall` (the manager's clock's now), and now on the monotonic clock.
    pub(super) fn at(wall: OffsetDateTime) -> Self {
        Self {
            wall,
            mono: tokio::time::Instant::now(),
        }
    }

    /// On the manager's clock.
    pub(super) fn wall(&self) -> OffsetDateTime {
        self.wall
    }

    /// On the monotonic clock.
    pub(super) fn mono(&self) -> tokio::time::Instant {
        self.mono
    }

    /// Whether less than `within` has passed since this on both clocks: `now` (the
    /// manager's clock) is not before it and less than `within` after it, and less than
    /// `within` has passed on the monotonic clock.
    pub(super) fn within(&self, now: OffsetDateTime, within: Duration) -> bool {
        self.wall <= now && now < later(self.wall, within) && self.mono.elapsed() < within
    }
}

/// `by` after `at` on the monotonic clock; a while too long for it, a century.
pub(super) fn mono_later(at: tokio::time::Instant, by: Duration) -> tokio::time::Instant {
    (at.checked_add(by)).unwrap_or_else(|| at + Duration::from_secs(100 * 365 * 24 * 3600))
}

/// The longest wait remembered from a provider's `Retry-After`.
pub(super) const MAX_COOLDOWN: Duration = Duration::from_secs(3600);

/// The latest representable instant: what "now plus a huge duration" saturates to.
const FAR_FUTURE: OffsetDateTime =
    crate::expiry::utc(9999, time::Month::December, 31, (23, 59, 59));
/// The earliest representable instant.
#[cfg(test)]
const FAR_PAST: OffsetDateTime = crate::expiry::utc(-9999, time::Month::January, 1, (0, 0, 0));

/// `at + by`, saturating instead of overflowing.
pub(super) fn later(at: OffsetDateTime, by: Duration) -> OffsetDateTime {
    time::Duration::try_from(by)
        .ok()
        .and_then(|by| at.checked_add(by))
        .unwrap_or(FAR_FUTURE)
}

/// The instant `nanos` after the Unix epoch, saturating at the representable range.
#[cfg(test)]
fn from_unix_nanos(nanos: i128) -> OffsetDateTime {
    // Through `i64` seconds where the instant fits (the years 1677 to 2262): no 128-bit
    // division.
    let at = match i64::try_from(nanos) {
        Ok(nanos) => OffsetDateTime::from_unix_timestamp(nanos.div_euclid(1_000_000_000))
            .ok()
            .and_then(|at| {
                let within = nanos.rem_euclid(1_000_000_000) as u32;
                at.replace_nanosecond(within).ok()
            }),
        Err(_) => OffsetDateTime::from_unix_timestamp_nanos(nanos).ok(),
    };
    at.unwrap_or(if nanos < 0 { FAR_PAST } else { FAR_FUTURE })
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn nanos_in_halves_keep_their_value_and_order() {
        let values = [
            i128::MIN,
            -(1 << 64) - 1,
            -(1 << 64),
            -1,
            0,
            1,
            1 << 64,
            (1 << 64) + 1,
        ];
        for a in values.into_iter().chain([i128::MAX]) {
            assert_eq!(Nanos::new(a).get(), a);
            for b in values {
                assert_eq!(Nanos::new(a).cmp(&Nanos::new(b)), a.cmp(&b), "{a} {b}");
            }
        }
    }

    #[test]
    fn instant_arithmetic_saturates() {
        let now = datetime!(2026-01-01 00:00 UTC);
        assert_eq!(later(now, Duration::MAX), FAR_FUTURE);
        assert_eq!(later(now, Duration::from_secs(u64::MAX)), FAR_FUTURE);
        assert_eq!(from_unix_nanos(i128::MAX), FAR_FUTURE);
        assert_eq!(from_unix_nanos(i128::MIN), FAR_PAST);
        for at in [
            now,
            now - time::Duration::nanoseconds(1),
            now + time::Duration::nanoseconds(999_999_999),
            datetime!(1969-12-31 23:59:59.5 UTC),
            datetime!(1500-06-01 12:00:00.25 UTC),
            datetime!(3000-06-01 12:00:00.75 UTC),
            FAR_FUTURE,
            FAR_PAST,
        ] {
            assert_eq!(from_unix_nanos(at.unix_timestamp_nanos()), at, "{at}");
        }
        assert_eq!(
            later(now, Duration::from_secs(60)),
            datetime!(2026-01-01 00:01 UTC)
        );
    }
}
