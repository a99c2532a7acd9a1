//! The cross-process lease: taken before a refresh, the store re-read after taking it,
//! renewed while the refresh runs, and checked before a refresh token is spent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use super::refresh::CatchUnwind;
use super::session::{Ready, Reason, Session, Stamp, State};
use super::{Event, Inner, from_stored, not_a_session};
use crate::error::{AbortReason, Error, StoreError};
use crate::provider::Provider;
use crate::redact::Printable;
use crate::store::{Lease, StoredRecord};

pub(super) enum LeaseTaken<X> {
    /// Another process refreshed meanwhile; nothing left to do.
    Settled(Ready<X>),
    /// The lease is ours; refresh from `current`. `taken_over`: over a holder whose lease
    /// lapsed unreleased (it may have spent the stored refresh token and not saved yet).
    /// `held_at`: when the request that last granted or renewed it was sent.
    Held {
        current: Option<Ready<X>>,
        taken_over: bool,
        held_at: tokio::time::Instant,
    },
    /// Another process took the lease over while this one waited for a lapsed holder's
    /// save (given back here): the refresh starts again (waits for that process, reads what
    /// it saves). With the set last read from the store, to compare it with then.
    Lost(Option<Ready<X>>),
}

/// How the wait for a lapsed holder's save ended.
enum Awaited<X> {
    /// It saved a set that serves the refresh's callers.
    Settled(Ready<X>),
    /// Nothing to take (or a set to refresh from, now in `current`): refresh. `unread`:
    /// every read of the watch failed, so the record the take-over found is read only after
    /// it; whatever that read finds is what the lapsed holder may have spent, from then.
    Refresh {
        unread: Option<tokio::time::Instant>,
    },
    /// Another process took the lease (released here).
    Lost,
}

/// What the store holds, compared with what this process holds.
pub(super) enum Stored<X> {
    /// The same version (or nothing newer).
    Unchanged,
    /// Newer tokens, now published.
    Tokens(Ready<X>),
    /// A re-auth verdict another process recorded, now published.
    Dead(Error),
    /// The session was removed (here or by another process): nothing to refresh.
    Removed(Error),
}

/// What a renewal found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Renewal {
    Held,
    /// Taken by another holder (ours lapsed).
    Lost,
    /// Granted again over another holder whose lease lapsed in turn (ours lapsed first):
    /// that holder may have spent the stored refresh token and not saved yet.
    TakenOver,
    /// The store could not be asked.
    Unknown,
}

/// Between a refresh and its heartbeat: the heartbeat notes when the lease was lost, the
/// refresh says when it is done; both note when the lease was last known held.
pub(super) struct LeaseWatch {
    lost: AtomicBool,
    /// A renewal was granted over another holder whose lease lapsed (`Renewal::TakenOver`).
    lapsed_holder: AtomicBool,
    done: tokio::sync::Notify,
    /// When the request that last granted or renewed the lease was sent: it lasts at least a
    /// lease length from then.
    held_at: std::sync::Mutex<tokio::time::Instant>,
}

impl LeaseWatch {
    pub(super) fn new(held_at: tokio::time::Instant) -> Self {
        Self {
            lost: AtomicBool::new(false),
            lapsed_holder: AtomicBool::new(false),
            done: tokio::sync::Notify::new(),
            held_at: std::sync::Mutex::new(held_at),
        }
    }

    pub(super) fn lost(&self) -> bool {
        self.lost.load(Ordering::SeqCst)
    }

    /// Whether a renewal took the lease over from another holder whose lease lapsed: it is
    /// held again, but that holder may have spent the token, and its save is waited for
    /// before a verdict or another call.
    pub(super) fn lapsed_holder(&self) -> bool {
        self.lapsed_holder.load(Ordering::SeqCst)
    }

    /// Notes what a renewal found that leaves the lease not held throughout.
    fn note_lost(&self, renewal: Renewal) {
        if renewal == Renewal::TakenOver {
            self.lapsed_holder.store(true, Ordering::SeqCst);
        }
        self.lost.store(true, Ordering::SeqCst);
    }

    fn held_at(&self) -> tokio::time::Instant {
        *self.held_at.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A renewal sent at `asked` was granted, and answered now: whether the lease was held
    /// throughout. Only if answered before the last grant's lease length ran out: a grant
    /// answered later may have been made after the lease lapsed, been taken over by another
    /// process (which may have spent the token) and given back meanwhile.
    fn renewed(&self, asked: tokio::time::Instant, ttl: Duration) -> bool {
        let mut held_at = self.held_at.lock().unwrap_or_else(|p| p.into_inner());
        if held_at.elapsed() >= ttl {
            return false;
        }
        *held_at = (*held_at).max(asked);
        true
    }

    /// Ends the heartbeat (after the renewal it may be making).
    pub(super) fn stop(&self) {
        // A stored permit if the heartbeat is not waiting yet: no wake-up is lost.
        self.done.notify_one();
    }
}

/// How many users in this process hold a session's store lease (a refresh, and a background
/// save that keeps it until its set is saved): it is released at zero. Taken and given back
/// under its lock, so this process's grants and releases of the lease reach the store in the
/// order they are counted.
#[derive(Default)]
pub(super) struct LeaseUsers {
    /// Held to count and to ask the store, so both happen in one order.
    pub(super) order: tokio::sync::Mutex<()>,
    /// Written under `order`, except by a task dropped unfinished ([`Counted`]).
    pub(super) count: AtomicUsize,
}

impl LeaseUsers {
    /// Counts a user out; how many are left.
    fn count_out(&self) -> usize {
        let before = self
            .count
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                Some(n.saturating_sub(1))
            });
        before.unwrap_or(0).saturating_sub(1)
    }
}

tokio::task_local! {
    /// The lease users the current refresh or background save counted in and has not
    /// counted out yet.
    static COUNTED: Counted;
}

/// The lease users a task counted in and has not counted out: counted out when the task is
/// dropped unfinished (its runtime shut down under it), so that a user that will never
/// give the lease back does not keep this process from ever giving it back. The lease
/// itself then lapses in the store, as after a crash.
#[derive(Default)]
pub(super) struct Counted(std::sync::Mutex<Vec<Arc<LeaseUsers>>>);

impl Counted {
    fn list(&self) -> std::sync::MutexGuard<'_, Vec<Arc<LeaseUsers>>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `task` with a ledger of its own, holding `handed` (users counted by the task
    /// that started it, handed over).
    pub(super) fn scope<F: std::future::Future>(
        handed: Option<Arc<LeaseUsers>>,
        task: F,
    ) -> impl std::future::Future<Output = F::Output> {
        COUNTED.scope(
            Counted(std::sync::Mutex::new(handed.into_iter().collect())),
            task,
        )
    }

    /// Notes `users` counted in by the current task.
    fn note(users: &Arc<LeaseUsers>) {
        let _ = COUNTED.try_with(|counted| counted.list().push(users.clone()));
    }

    /// Whether the current task counted `users` in and has not counted them out.
    pub(super) fn holds(users: &Arc<LeaseUsers>) -> bool {
        COUNTED
            .try_with(|counted| counted.list().iter().any(|noted| Arc::ptr_eq(noted, users)))
            .unwrap_or(false)
    }

    /// Takes `users` off the current task's ledger (counted out, or handed over); whether
    /// it was there.
    pub(super) fn take(users: &Arc<LeaseUsers>) -> bool {
        COUNTED
            .try_with(|counted| {
                let mut list = counted.list();
                let at = list.iter().position(|noted| Arc::ptr_eq(noted, users));
                at.map(|at| list.swap_remove(at)).is_some()
            })
            .unwrap_or(false)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let list = self.0.get_mut().unwrap_or_else(|p| p.into_inner());
        for users in list.drain(..) {
            users.count_out();
        }
    }
}

impl<P: Provider> Inner<P> {
    /// Takes the store's refresh lease, waiting while another process holds it; then
    /// re-reads the store, since the other process may have refreshed meanwhile (a replica
    /// must never refresh with a refresh token another one already used). `lapsed_holder`:
    /// this process's lease was last granted over a lapsed holder and is still its own in
    /// the store, so granting it again at once is a take-over from that holder.
    pub(super) async fn take_lease(
        &self,
        session: &Session<P::Extras>,
        generation: u64,
        mut current: Option<Ready<P::Extras>>,
        reason: &Reason,
        lapsed_holder: bool,
    ) -> Result<LeaseTaken<P::Extras>, Error> {
        let started = tokio::time::Instant::now();
        let mut polls = 0u32;
        // A forced refresh that finds another process's under way takes its answer.
        let mut during_another = None;
        let (taken_over, held_at) = loop {
            let (answer, asked) = self.acquire(session).await;
            match answer? {
                Lease::Acquired => break (lapsed_holder && polls == 0, asked),
                Lease::TakenOver => break (true, asked),
                Lease::HeldByOther { remaining } => {
                    polls += 1;
                    if matches!(reason, Reason::Forced) && during_another.is_none() {
                        let held = (current.as_ref())
                            .map(|c| (c.access_token().clone(), c.stored.access_expires_at));
                        // What the store holds while that refresh runs: its answer is a
                        // record written after this one. One more store call, only when a
                        // forced refresh meets another process's.
                        match self
                            .read_newer(session, generation, current.as_ref())
                            .await?
                        {
                            Stored::Unchanged => {}
                            Stored::Dead(error) | Stored::Removed(error) => return Err(error),
                            Stored::Tokens(adopted) => current = Some(adopted),
                        }
                        let seen = current.as_ref().and_then(|c| c.version());
                        during_another = Some(Reason::ForcedDuringAnother(seen, held));
                    }
                    let reason = during_another.as_ref().unwrap_or(reason);
                    // A holder may keep the lease (renewing it) for as long as its refresh
                    // may retry, and one that died leaves it for a lease length, after
                    // which its successor waits another one for a save: past all that,
                    // something is wrong.
                    let patience = self
                        .config
                        .retry
                        .deadline
                        .saturating_add(self.config.lease_ttl.saturating_mul(3));
                    if started.elapsed() > patience {
                        return Err(Error::Store(StoreError::Backend {
                            message: "another process held the refresh lease too long".into(),
                            source: None,
                        }));
                    }
                    let wait = self
                        .config
                        .retry
                        .backoff(polls, None)
                        .min(remaining)
                        .max(Duration::from_millis(10));
                    // Nothing is spent or held yet: a shutdown ends the wait.
                    tokio::select! {
                        () = tokio::time::sleep(wait) => {}
                        () = self.stopping.cancelled() => return Err(Error::ShuttingDown),
                    }
                    match self
                        .read_newer(session, generation, current.as_ref())
                        .await?
                    {
                        Stored::Unchanged => {}
                        Stored::Dead(error) | Stored::Removed(error) => return Err(error),
                        Stored::Tokens(adopted) => {
                            if self.serves(reason, &adopted, self.clock.now()) {
                                return Ok(LeaseTaken::Settled(adopted));
                            }
                            current = Some(adopted);
                        }
                    }
                }
            }
        };
        // A panic (in a store's code, say) must not leave the lease counted as taken here:
        // it would never be given back again.
        let reason = during_another.as_ref().unwrap_or(reason);
        match CatchUnwind(Box::pin(self.reread_after_taking(
            session, generation, current, reason, taken_over, held_at,
        )))
        .await
        {
            Ok(taken) => taken,
            Err(()) => {
                tracing::error!("the refresh panicked");
                // Given back only if this task still counts it: the panic may have come
                // after a release had counted it out (a `tracing` subscriber's, say), and
                // counting out again would take the count of another user of the lease.
                if Counted::holds(&self.lease_users(session)) {
                    self.release(session).await;
                }
                Err(Error::RefreshAborted(AbortReason::Panicked))
            }
        }
    }

    /// With the lease just taken: waits for a lapsed holder's save if it was taken over,
    /// then re-reads the store. Gives the lease back unless it returns it held.
    async fn reread_after_taking(
        &self,
        session: &Session<P::Extras>,
        generation: u64,
        mut current: Option<Ready<P::Extras>>,
        reason: &Reason,
        taken_over: bool,
        mut held_at: tokio::time::Instant,
    ) -> Result<LeaseTaken<P::Extras>, Error> {
        let mut unread = None;
        if taken_over {
            tracing::warn!(
                "took over a refresh lease that lapsed unreleased; waiting for its holder's save"
            );
            match self
                .await_lapsed_holder(session, generation, &mut current, reason, &mut held_at)
                .await?
            {
                Awaited::Settled(settled) => {
                    self.release(session).await;
                    return Ok(LeaseTaken::Settled(settled));
                }
                Awaited::Lost => return Ok(LeaseTaken::Lost(current)),
                Awaited::Refresh { unread: found } => unread = found,
            }
        }
        // An earlier take-over here that read nothing at all: this read is its first.
        let unread = session.take_unread_take_over().or(unread);
        let newer = match self.read_newer(session, generation, current.as_ref()).await {
            Ok(newer) => newer,
            Err(error) => {
                // Nothing read still: the next read under the lease here takes this one's
                // place (the lease is given back, so no other process knows of the lapsed
                // holder, and the token asked for again is this process's own).
                if let Some(spent_from) = unread {
                    session.note_unread_take_over(spent_from);
                }
                self.release(session).await;
                return Err(error);
            }
        };
        match newer {
            Stored::Unchanged => {}
            Stored::Dead(error) | Stored::Removed(error) => {
                self.release(session).await;
                return Err(error);
            }
            Stored::Tokens(adopted) => {
                let serves = self.serves(reason, &adopted, self.clock.now());
                // The record the take-over found, read only now (every read of the watch
                // failed, and maybe the read after an earlier watch too): the lapsed holder
                // may have spent its refresh token. As for one read
                // during the watch, that token is asked for again inside the reuse window,
                // whether it is presented now (the call may fail, and no caller come) or
                // taken as it serves; not the token this process held, which it replaces.
                // Not for a look's refresh settled by it: it is newer than the record the
                // look read after the lease lapsed (see `await_lapsed_holder`).
                if let (Some(spent_from), Some(token)) = (unread, &adopted.stored.refresh_token)
                    && !(serves && matches!(reason, Reason::Lapsed(_)))
                {
                    self.ask_again_later(session, token, spent_from);
                }
                if serves {
                    self.release(session).await;
                    return Ok(LeaseTaken::Settled(adopted));
                }
                current = Some(adopted);
            }
        }
        Ok(LeaseTaken::Held {
            current,
            taken_over,
            held_at,
        })
    }

    /// After taking over a lapsed lease: the previous holder may have spent the stored
    /// refresh token and still be trying to save what it got (its store was unreachable
    /// longer than its lease). Spending the same token now would be refused, so watch the
    /// store for up to one lease length, keeping the lease, and take what appears.
    ///
    /// The store is read at once first: what it holds as the lease is taken over (taken
    /// into `current` if newer than this process's set) is what the holder may have spent,
    /// never its save, however new to this process. Only a record written after it is.
    /// When none comes, the refresh presents that record's refresh token whatever the
    /// refresh was for (a set that is still fresh too): if the holder died having spent it,
    /// presenting it again now, inside the provider's reuse window, is the one way to get
    /// its successor back; later, it would be refused. A record found at once that serves
    /// the refresh's callers (the holder's own save, landed just before its lease lapsed,
    /// looks the same as a set it spent) is taken at once instead, and its refresh token
    /// presented again in the background inside the reuse window, as for an answer lost in
    /// transit ([`resolve_later`](Self::resolve_later), started as the flight ends). So is
    /// the token found when another process cuts the watch short by taking the lease over;
    /// the next take-over here then presents it at once, without a second watch.
    async fn await_lapsed_holder(
        &self,
        session: &Session<P::Extras>,
        generation: u64,
        current: &mut Option<Ready<P::Extras>>,
        reason: &Reason,
        held_at: &mut tokio::time::Instant,
    ) -> Result<Awaited<P::Extras>, Error> {
        let mut started = tokio::time::Instant::now();
        // When the lapsed holder spent the token found, if it did: while it held the lease,
        // so before the lease lapsed (before this grant), and after its last grant or
        // renewal unless it kept renewing past its call. The token's reuse window is counted
        // from a lease length before this grant, not from now (a watch, and a pause, later):
        // a window counted from now would let it be presented after the provider's closed,
        // a replay (one that detects reuse then revokes the holder's successor too).
        let spent_from = held_at
            .checked_sub(self.config.lease_ttl)
            .unwrap_or(*held_at);
        let mut extended = false;
        let poll = (self.config.lease_ttl / 6).max(Duration::from_millis(50));
        // Whether the record found at the take-over has been read (and is in `current`).
        let mut found = false;
        let mut first = true;
        while first || started.elapsed() < self.config.lease_ttl {
            // Nothing is spent yet: a shutdown ends the wait and gives the lease back.
            if !std::mem::take(&mut first) {
                tokio::select! {
                    () = tokio::time::sleep(poll) => {}
                    () = self.stopping.cancelled() => {
                        self.release(session).await;
                        return Err(Error::ShuttingDown);
                    }
                }
            }
            match self.read_newer(session, generation, current.as_ref()).await {
                Ok(Stored::Unchanged) => found = true,
                // Not the holder's save: what it may have spent.
                Ok(Stored::Tokens(adopted)) if !std::mem::replace(&mut found, true) => {
                    if self.serves(reason, &adopted, self.clock.now()) {
                        // It serves the refresh's callers now (it may be the holder's own
                        // save, landed just before its lease lapsed); its refresh token is
                        // presented again in the background, inside the reuse window.
                        // Not for a look's refresh: it is settled only by a record newer
                        // than the one the look read after the lease lapsed, written since
                        // (a login, a save), which the dead holder cannot have spent.
                        if let (false, Some(token)) = (
                            matches!(reason, Reason::Lapsed(_)),
                            &adopted.stored.refresh_token,
                        ) {
                            self.ask_again_later(session, token, spent_from);
                        }
                        return Ok(Awaited::Settled(adopted));
                    }
                    *current = Some(adopted);
                }
                Ok(Stored::Tokens(adopted)) => {
                    if self.serves(reason, &adopted, self.clock.now()) {
                        return Ok(Awaited::Settled(adopted));
                    }
                    *current = Some(adopted);
                    return Ok(Awaited::Refresh { unread: None });
                }
                Ok(Stored::Dead(error)) | Ok(Stored::Removed(error)) => {
                    self.release(session).await;
                    return Err(error);
                }
                Err(error) => tracing::warn!(%error, "could not read the store"),
            }
            // The set to refresh holds the refresh token this process presented and lost
            // the answer to (or found at a take-over whose watch another process cut
            // short): its window runs from that call (or is open yet), and whether the
            // holder spent it after that or not, the provider answers it again inside it.
            // Waiting here could outlast the window (two processes paused longer than the
            // lease take it over from each other in turn, each waiting for the other's
            // save).
            if found
                && current
                    .as_ref()
                    .and_then(|c| c.stored.refresh_token.as_ref())
                    .is_some_and(|token| session.unresolved_open(token))
            {
                tracing::info!(
                    "presenting again, inside its reuse window, a refresh token whose answer was lost here"
                );
                return Ok(Awaited::Refresh { unread: None });
            }
            let asked = tokio::time::Instant::now();
            match self.renew(session).await {
                Renewal::Held => *held_at = asked,
                // Ours again, over another holder that took it meanwhile and let it lapse in
                // turn: its save is waited for a lease length from now, once (a store that
                // answers every request so, a lease no release can read, would hold the
                // refresh for ever).
                Renewal::TakenOver => {
                    *held_at = asked;
                    if !std::mem::replace(&mut extended, true) {
                        started = tokio::time::Instant::now();
                    }
                }
                Renewal::Unknown => {}
                // Another process took the lease over from this watch (this one was paused
                // longer than the lease): it watches in turn, and may be cut short as this
                // one was. Processes doing so in turn would watch until the window closed,
                // none presenting: the token found is asked for again here inside its
                // window, and presented at once the next time this process takes the lease
                // over (as a token whose answer was lost here is).
                Renewal::Lost => {
                    if found
                        && let Some(token) =
                            (current.as_ref()).and_then(|c| c.stored.refresh_token.as_ref())
                    {
                        self.ask_again_later(session, token, spent_from);
                    }
                    self.release(session).await;
                    return Ok(Awaited::Lost);
                }
            }
        }
        // No save came: the refresh presents the token the holder may have spent. If that
        // presentation fails (a 503, the lease lost) and no caller comes, nothing would
        // present it again before the reuse window closes: it is asked for again in the
        // background, as for an answer lost in transit, until the set moves on. If every
        // read failed, that is this process's own set until the read after the watch finds
        // the record the holder may have spent, whose token is then asked for instead
        // (`reread_after_taking`).
        if let Some(token) = current
            .as_ref()
            .and_then(|c| c.stored.refresh_token.as_ref())
        {
            self.ask_again_later(session, token, spent_from);
        }
        Ok(Awaited::Refresh {
            unread: (!found).then_some(spent_from),
        })
    }

    /// Looks at the store and takes what another writer put there since `current`.
    pub(super) async fn read_newer(
        &self,
        session: &Session<P::Extras>,
        generation: u64,
        current: Option<&Ready<P::Extras>>,
    ) -> Result<Stored<P::Extras>, Error> {
        let Some(record) = self.store.load(&self.key(session)).await? else {
            // Gone from the store although this process had it there: removed.
            if let Some(version) = current.and_then(|c| c.version()) {
                tracing::info!(version, "the session was removed from the store");
                self.publish_if(
                    session,
                    generation,
                    State::Absent {
                        checked_at: Stamp::at(self.clock.now()),
                    },
                );
                return Ok(Stored::Removed(self.no_tokens(session)));
            }
            return Ok(Stored::Unchanged);
        };
        // The version this process's set is at (saved), or replaces (unsaved): anything
        // else was written by someone else since.
        if current.is_some_and(|c| c.version() == Some(record.version)) {
            return Ok(Stored::Unchanged);
        }
        // Versions only grow for a key: a record older than the one this process saved its
        // set at (or its unsaved set replaces) is one the store went back to, losing writes
        // it acknowledged (a database failed over to a replica the commit had not reached, a
        // backup restored). Not for a set read from the store (`known_latest`).
        // This process's set is the newer: kept, and written back over that record by its
        // next save (`persist`), rather than given up for tokens that may be spent.
        if let Some(held) = current
            .filter(|c| c.known_latest())
            .and_then(|c| c.version())
            && record.version < held
        {
            tracing::warn!(
                found = record.version,
                held,
                "the store holds an older record than this process's; keeping this process's"
            );
            return Ok(Stored::Unchanged);
        }
        match record.value {
            StoredRecord::Tokens(set) => {
                let (set, extras) = from_stored(set)?;
                let adopted =
                    Ready::new(self.current_from(set, extras, Some(record.version), true));
                if self.publish_if(session, generation, adopted.clone()) {
                    self.emit(Event::Adopted {
                        session: session.name().clone(),
                        version: record.version,
                    });
                } else if let Some(held) = self.state(session).as_ref().and_then(Ready::of) {
                    // An insert overtook the refresh: its callers get what the process
                    // holds (and serves next), not a set it did not take.
                    return Ok(Stored::Tokens(held));
                }
                Ok(Stored::Tokens(adopted))
            }
            // A verdict on the very record an unsaved set of this process replaces: reached
            // by a process that took the lease over and sent the token this one had already
            // spent (its pair not saved yet). That pair lives: it is saved over the verdict
            // (before any refresh spends its token), not given up for it.
            StoredRecord::Reauth(verdict)
                if current.is_some_and(|c| {
                    !c.saved() && verdict.replaced.is_some() && verdict.replaced == c.version()
                }) =>
            {
                tracing::warn!(
                    "another process recorded a re-auth verdict on the token this one spent; \
                     saving its pair over it"
                );
                Ok(Stored::Unchanged)
            }
            // A verdict on a record older than the one this process saved its set at (or its
            // unsaved set replaces): reached by a process that read a store gone back to that
            // record (see above), and sent the token this process had already spent. This
            // process's pair is the newer: kept, and saved over the verdict by its next save
            // (`persist`), as over the older record itself.
            StoredRecord::Reauth(verdict)
                if current
                    .filter(|c| c.known_latest())
                    .and_then(|c| c.version())
                    .is_some_and(|held| verdict.replaced.is_some_and(|judged| judged < held)) =>
            {
                tracing::warn!(
                    "the store holds a re-auth verdict on a record older than this process's; \
                     keeping this process's"
                );
                Ok(Stored::Unchanged)
            }
            StoredRecord::Reauth(verdict) => {
                // Another process reached and reported the verdict: no second event.
                let reauth = self.reauth_from(session, verdict);
                self.publish_if(
                    session,
                    generation,
                    State::Dead {
                        reauth: Box::new(reauth.clone()),
                        version: Some(record.version),
                        checked_at: Stamp::at(self.clock.now()),
                    },
                );
                Ok(Stored::Dead(Error::ReauthRequired(reauth)))
            }
            StoredRecord::Coordination { .. } => Err(not_a_session(&self.key(session))),
        }
    }

    /// Renews the lease.
    pub(super) async fn renew(&self, session: &Session<P::Extras>) -> Renewal {
        let holder = self.lease_holder(session);
        let answer = self
            .store
            .acquire_lease(&self.key(session), &holder, self.config.lease_ttl)
            .await;
        note_grant(session, &answer);
        match answer {
            Ok(Lease::Acquired) => Renewal::Held,
            // Another holder had it, and let it lapse (ours lapsed first).
            Ok(Lease::TakenOver) => Renewal::TakenOver,
            // Another holder has it (ours lapsed meanwhile).
            Ok(_) => Renewal::Lost,
            Err(error) => {
                tracing::warn!(%error, "could not renew the refresh lease");
                Renewal::Unknown
            }
        }
    }

    /// Whether a refresh token may be sent now: the lease is known held for a while yet.
    /// A lease granted or renewed less than a heartbeat ago is; otherwise it is renewed
    /// first (`renew`: always), and a renewal the store could not answer leaves it held only
    /// while the last grant is less than two thirds of a lease length old, and one answered
    /// after the last grant ran out does not count. Another process may take a lapsed lease
    /// over and, a lease length later, send the same token. A lease found not held is noted
    /// lost in `watch` (the refresh then starts again).
    pub(super) async fn still_held(
        &self,
        session: &Session<P::Extras>,
        watch: &LeaseWatch,
        renew: bool,
    ) -> bool {
        if watch.lost() {
            return false;
        }
        if !renew && watch.held_at().elapsed() < self.config.heartbeat() {
            return true;
        }
        self.renewed_and_held(session, watch).await && !watch.lost()
    }

    /// Renews the lease now and judges the answer: held if granted within a lease length
    /// of the last grant, or unanswered while the last grant is less than two thirds of a
    /// lease length old; otherwise noted lost (or taken over) in `watch`. Whether it is held.
    async fn renewed_and_held(&self, session: &Session<P::Extras>, watch: &LeaseWatch) -> bool {
        let asked = tokio::time::Instant::now();
        let renewal = self.renew(session).await;
        let held = match renewal {
            Renewal::Held => watch.renewed(asked, self.config.lease_ttl),
            Renewal::Lost | Renewal::TakenOver => false,
            Renewal::Unknown => watch.held_at().elapsed() < self.unsure_after(),
        };
        if !held {
            watch.note_lost(renewal);
        }
        held
    }

    /// How long after its last grant a lease whose renewals fail is taken as held.
    fn unsure_after(&self) -> Duration {
        self.config.lease_ttl / 3 * 2
    }

    /// Renews the lease every third of its length (from its last grant) until stopped;
    /// notes when it was lost, or when it may have lapsed because the store could not be
    /// reached for two thirds of its length (another process reaching the store may have
    /// taken it then).
    ///
    /// It runs beside the refresh, in its task: a panic in it (the application's code runs
    /// here too, a `tracing` subscriber's say) ends the heartbeat, not the refresh, which
    /// may be saving the pair the provider has just sent. The lease is then taken as lost
    /// (it may lapse unrenewed): no refresh token is sent under it.
    pub(super) async fn heartbeat(&self, session: &Session<P::Extras>, watch: &LeaseWatch) {
        if CatchUnwind(Box::pin(self.renew_until_done(session, watch)))
            .await
            .is_err()
        {
            watch.note_lost(Renewal::Unknown);
            watch.done.notified().await;
        }
    }

    /// [`heartbeat`](Self::heartbeat)'s renewals.
    async fn renew_until_done(&self, session: &Session<P::Extras>, watch: &LeaseWatch) {
        // The last renewal (or the grant) sent; no instant is computed ahead (a lease
        // length may be as long as a `Duration` holds).
        let mut from = watch.held_at();
        loop {
            let wait = self.config.heartbeat().saturating_sub(from.elapsed());
            tokio::select! {
                biased;
                () = watch.done.notified() => return,
                () = tokio::time::sleep(wait) => {}
            }
            from = tokio::time::Instant::now();
            if !self.renewed_and_held(session, watch).await {
                tracing::warn!("the refresh lease was lost, or may have lapsed");
                return watch.done.notified().await;
            }
        }
    }

    /// This process's users of the session's store lease (by name: a session removed and
    /// inserted again while a refresh of the old one runs is under the same lease).
    pub(super) fn lease_users(&self, session: &Session<P::Extras>) -> Arc<LeaseUsers> {
        let mut users = self.lease_users.lock().unwrap_or_else(|p| p.into_inner());
        users.entry(session.name().clone()).or_default().clone()
    }

    /// Forgets `users` once nobody uses or waits for the lease (`count`, read under its lock).
    fn tidy_lease_users(
        &self,
        session: &Session<P::Extras>,
        users: &Arc<LeaseUsers>,
        count: usize,
    ) {
        let mut all = self.lease_users.lock().unwrap_or_else(|p| p.into_inner());
        // Two references: the map's and the caller's; a waiter for the lock holds a third.
        if count == 0
            && Arc::strong_count(users) == 2
            && all
                .get(&**session.name())
                .is_some_and(|found| Arc::ptr_eq(found, users))
        {
            all.remove(&**session.name());
        }
    }

    /// Asks the store for the lease, and counts a new user in this process if granted. In
    /// order with this process's releases: a release whose last user left cannot reach the
    /// store after a grant it did not count, and take away the lease of a refresh that
    /// believes it holds it. Also says when the request was sent (after this process's
    /// turn): a grant lasts at least a lease length from then.
    async fn acquire(
        &self,
        session: &Session<P::Extras>,
    ) -> (Result<Lease, StoreError>, tokio::time::Instant) {
        let users = self.lease_users(session);
        let _order = users.order.lock().await;
        self.release_left(session).await;
        let asked = tokio::time::Instant::now();
        let holder = self.lease_holder(session);
        let answer = self
            .store
            .acquire_lease(&self.key(session), &holder, self.config.lease_ttl)
            .await;
        note_grant(session, &answer);
        if matches!(answer, Ok(Lease::Acquired | Lease::TakenOver)) {
            users.count.fetch_add(1, Ordering::SeqCst);
            Counted::note(&users);
        }
        self.tidy_lease_users(session, &users, users.count.load(Ordering::SeqCst));
        (answer, asked)
    }

    /// Counts a user of the lease out without giving the lease back to the store, where it
    /// stays this process's until it lapses or is taken again here.
    pub(super) async fn leave(&self, session: &Session<P::Extras>) {
        self.stop_using(session, false).await;
    }

    /// Gives the lease back once its last user in this process is done with it.
    pub(super) async fn release(&self, session: &Session<P::Extras>) {
        self.stop_using(session, true).await;
    }

    /// Gives the lease back if no user in this process counts it, counting nobody out: for
    /// a set whose background save was dropped with its runtime (which counted it out)
    /// and was saved at shutdown.
    pub(super) async fn release_unused(&self, session: &Session<P::Extras>) {
        let users = self.lease_users(session);
        let _order = users.order.lock().await;
        let count = users.count.load(Ordering::SeqCst);
        if count == 0 {
            self.give_back(session).await;
        }
        self.tidy_lease_users(session, &users, count);
    }

    /// Counts a user of the lease out (off the task's ledger too) and, with `give_back`,
    /// gives the lease back to the store if it was the last one.
    async fn stop_using(&self, session: &Session<P::Extras>, give_back: bool) {
        let users = self.lease_users(session);
        let _order = users.order.lock().await;
        Counted::take(&users);
        let count = users.count_out();
        if give_back && count == 0 {
            self.give_back(session).await;
        }
        self.tidy_lease_users(session, &users, count);
    }

    /// Releases this process's lease in the store (under the order lock, no user left).
    async fn give_back(&self, session: &Session<P::Extras>) {
        let holder = self.lease_holder(session);
        let mut unconfirmed = NewHolderUnlessReleased {
            inner: self,
            session,
            released: false,
        };
        let answer = self.store.release_lease(&self.key(session), &holder).await;
        // Given back, or left under a name this process asks under no more.
        session.note_grant_unheard(false);
        // Only an answer that it did nothing is final. An outage (`Backend`) may come
        // after the call went out: a store's own deadline passed with its statement
        // sent (PostgresStore's "no answer within", whose cancel may not reach the
        // server), a connection lost mid-query, as well as this manager's timeout or a
        // panic in the store (both `Backend`): such a release may still land.
        unconfirmed.released = !matches!(answer, Err(StoreError::Backend { .. }));
        if let Err(error) = answer {
            tracing::warn!(%error, "could not release the refresh lease; it will lapse");
        }
    }

    /// This process's name in the session's lease. A release that did not answer in time
    /// (or was dropped under way) may still reach the store (a query already sent, a file
    /// store's blocking I/O): it must
    /// not take away a lease granted here after it, since another process could then take
    /// the lease and spend the refresh token this one is spending. So from then on this
    /// process asks for the session's lease under a new name, and such a release finds no
    /// lease of its name; the lease it left behind lapses as a dead holder's does. No store
    /// call waits for it, so a release that never answers wedges nothing.
    pub(super) fn lease_holder(&self, session: &Session<P::Extras>) -> std::borrow::Cow<'_, str> {
        let epochs = self.holder_epochs.lock().unwrap_or_else(|p| p.into_inner());
        self.holder_named(epochs.1.get(&**session.name()).map(|e| e.epoch))
    }

    fn holder_named(&self, epoch: Option<u64>) -> std::borrow::Cow<'_, str> {
        match epoch {
            Some(epoch) => format!("{}.{epoch}", self.holder).into(),
            None => self.holder.as_str().into(),
        }
    }

    /// Releases again the session's lease under the names this process used before whose
    /// release is in doubt (under the order lock, before the lease is asked for): the
    /// lease such a release may have left is this process's, which spent nothing under it
    /// that it did not save (it was given back with no user left), so it is removed rather
    /// than left to lapse as a dead holder's (the next grant would wait for it, then watch
    /// a lease length for a save that cannot come, and the look for lapsed leases would
    /// take it for a death). No grant is ever made under those names again, so this
    /// release, landing late in turn, takes nothing away either.
    async fn release_left(&self, session: &Session<P::Extras>) {
        self.release_left_of(session.name(), &self.key(session))
            .await;
    }

    /// [`release_left`](Self::release_left) for the session `name` (its key `key`).
    /// Whether the store answered each release (it stops at the first it did not: each may
    /// take a store timeout).
    async fn release_left_of(&self, name: &str, key: &crate::store::SessionKey) -> bool {
        let left = {
            let epochs = self.holder_epochs.lock().unwrap_or_else(|p| p.into_inner());
            match epochs.1.get(name) {
                Some(epoch) if !epoch.left.is_empty() => epoch.left.clone(),
                _ => return true,
            }
        };
        for holder in left {
            if let Err(error) = self.store.release_lease(key, &holder).await {
                tracing::debug!(%error, "could not release a refresh lease left under an old name");
                return false;
            }
            let mut epochs = self.holder_epochs.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(epoch) = epochs.1.get_mut(name) {
                epoch.left.retain(|left| *left != holder);
            }
        }
        true
    }

    /// [`release_left`](Self::release_left) for every session that has such names, before
    /// a look for lapsed leases: a lease this process left is not taken for a death. Ends
    /// at the first release the store does not answer, so that a store that answers none
    /// delays the look by one store timeout at most, not one per such session.
    async fn release_all_left(&self) {
        let names: Vec<Arc<str>> = {
            let epochs = self.holder_epochs.lock().unwrap_or_else(|p| p.into_inner());
            (epochs.1.iter())
                .filter(|(_, epoch)| !epoch.left.is_empty())
                .map(|(name, _)| name.clone())
                .collect()
        };
        for name in names {
            if self.closing() {
                return;
            }
            let key = crate::store::SessionKey::new(self.namespace.clone(), &*name);
            if !self.release_left_of(&name, &key).await {
                return;
            }
        }
    }
}

/// Notes in `session` what a request for its lease answered: one that failed may have
/// been granted over a holder that let the lease lapse (an outage after the statement was
/// sent, its answer lost), and the next grant at once, this process's own lease extended,
/// says [`Lease::Acquired`]; an answer saying whose the lease is ends that doubt.
fn note_grant<X>(session: &Session<X>, answer: &Result<Lease, StoreError>) {
    match answer {
        Err(StoreError::Backend { .. }) => session.note_grant_unheard(true),
        Ok(Lease::TakenOver | Lease::HeldByOther { .. }) => session.note_grant_unheard(false),
        Ok(Lease::Acquired) | Err(_) => {}
    }
}

/// This process's name in a session's lease since a release of it was in doubt (see
/// [`Inner::lease_holder`]), and the names used before whose release is still in doubt.
#[derive(Default)]
pub(super) struct HolderEpoch {
    epoch: u64,
    left: Vec<String>,
}

/// How many names whose release is in doubt are kept per session: the store holds one
/// lease per session, under the last of them at most unless a release was sent with no
/// grant before it (at shutdown); any other lapses as before.
const LEFT_NAMES_KEPT: usize = 4;

/// Gives the session's lease a new holder name in this process when dropped, unless the
/// release it guards answered (see [`Inner::lease_holder`]).
struct NewHolderUnlessReleased<'a, P: Provider> {
    inner: &'a Inner<P>,
    session: &'a Session<P::Extras>,
    released: bool,
}

impl<P: Provider> Drop for NewHolderUnlessReleased<'_, P> {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let mut epochs = self
            .inner
            .holder_epochs
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        epochs.0 += 1;
        let next = epochs.0;
        let entry = epochs.1.entry(self.session.name().clone()).or_default();
        let before = (entry.epoch != 0).then_some(entry.epoch);
        let old = self.inner.holder_named(before).into_owned();
        if entry.left.len() >= LEFT_NAMES_KEPT {
            entry.left.remove(0);
        }
        entry.left.push(old);
        entry.epoch = next;
    }
}

impl<P: Provider> Inner<P> {
    /// Starts, once, the task that looks every lease length for leases of this provider's
    /// sessions that lapsed unreleased in the store, and takes each over
    /// ([`scan_lapsed_leases`](Self::scan_lapsed_leases)). Only for a provider with a reuse
    /// window (without one, nothing a dead holder spent can be got back), unless
    /// `lapsed_lease_scan` is off, and inside a Tokio runtime. The task holds the manager
    /// weakly: it ends when the manager is dropped, and when `shutdown` begins (which does
    /// not wait for it).
    pub(super) fn start_scanning(self: &Arc<Self>) {
        if self.scanning.load(Ordering::Relaxed)
            || !self.config.lapsed_lease_scan
            || self.provider.reuse_window().is_zero()
            || tokio::runtime::Handle::try_current().is_err()
            || self.scanning.swap(true, Ordering::SeqCst)
        {
            return;
        }
        let manager = Arc::downgrade(self);
        let (stopping, every) = (self.stopping.clone(), self.config.lease_ttl);
        // Dropped with its runtime (shut down while the manager lives on in another), the
        // task is started again by the next refresh or insert.
        struct Scanning<P: Provider>(std::sync::Weak<Inner<P>>, bool);
        impl<P: Provider> Drop for Scanning<P> {
            fn drop(&mut self) {
                if let (false, Some(inner)) = (self.1, self.0.upgrade()) {
                    inner.scanning.store(false, Ordering::SeqCst);
                }
            }
        }
        let scanning = Scanning(manager.clone(), false);
        self.tasks.runtime.spawn(async move {
            // The whole guard moves into the task (not only the field set below).
            let mut scanning = scanning;
            if super::in_runtime().is_ok() {
                loop {
                    tokio::select! {
                        () = tokio::time::sleep(every) => {}
                        () = stopping.cancelled() => break,
                    }
                    let Some(inner) = manager.upgrade() else {
                        break;
                    };
                    inner.scan_lapsed_leases().await;
                }
            }
            // Ended here (a shutdown, the manager dropped, no timers): not started again.
            scanning.1 = true;
        });
    }

    /// One look for lapsed leases. A holder whose lease lapsed unreleased died or lost the
    /// store mid-refresh, and may have spent the stored refresh token without saving its
    /// successor, which only a presentation inside the provider's reuse window gets back: a
    /// refresh of each such session is started here (joining one under way), even if its
    /// access token is fresh and no caller comes. It takes the lease over as any refresh
    /// would (watching for the holder's save first), and is settled by any record written
    /// after the one stored as the lease lapsed (another process's recovery, or the
    /// holder's save).
    pub(super) async fn scan_lapsed_leases(self: &Arc<Self>) {
        self.release_all_left().await;
        let names = match self.store.lapsed_leases(&self.namespace).await {
            Ok(names) => names,
            Err(error) => {
                tracing::warn!(%error, "could not list the store's lapsed refresh leases");
                return;
            }
        };
        for name in names {
            // Each read may wait a store timeout: none once `shutdown` began (no refresh
            // would start anyway).
            if self.closing() {
                return;
            }
            // The session is looked up (and mapped, if this process never used it) only to
            // be refreshed: a name with nothing to refresh leaves no entry behind.
            let key = crate::store::SessionKey::new(self.namespace.clone(), name.as_str());
            let record = match self.store.load(&key).await {
                Ok(Some(record)) => record,
                Ok(None) => continue,
                Err(error) => {
                    tracing::warn!(%error, session = %Printable(&name), "could not read a session whose lease lapsed");
                    continue;
                }
            };
            if matches!(&record.value, StoredRecord::Tokens(set) if set.refresh_token.is_some()) {
                tracing::info!(
                    session = %Printable(&name),
                    "a refresh lease lapsed unreleased; taking it over to present its token again"
                );
                let session = self.session(&name);
                drop(self.start_flight(&session, Reason::Lapsed(record.version)));
            }
        }
    }
}
