//! One refresh, start to end: load, lease, re-read, call the provider with retries,
//! persist, publish; and what each failure means for the session.

use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use super::lease::{Counted, LeaseTaken, LeaseWatch, Stored};
use super::persist::Persisted;
use super::session::{
    Current, MAX_COOLDOWN, Outcome, RETIRED, Ready, Reason, Session, Stamp, State, Unresolved,
    later,
};
use super::{Event, ExpiryNote, Inner, from_stored, not_a_session, retry};
use crate::error::StoreError;
use crate::error::{AbortReason, Error, ErrorKind};
use crate::provider::{CallContext, Provider};
use crate::secret::RefreshToken;
use crate::store::{ReauthVerdict, StoredRecord};
use crate::token_set::{StoredTokenSet, TokenSet};

impl<P: Provider> Inner<P> {
    pub(super) async fn run(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        reason: Reason,
    ) -> Outcome<P::Extras> {
        let mut notes = RunNotes::default();
        let outcome = loop {
            notes.overtaken = false;
            notes.replayed = false;
            let outcome = self.run_once(session, reason.clone(), &mut notes).await;
            // The generation the turn ended in (it may have started over in a later one).
            let replaced = session.generation() != notes.generation;
            let asking = matches!(reason, Reason::Unresolved(_));
            match &outcome {
                // An insert (here, or in the store by another process) overtook the refresh
                // and left a set whose access token is not usable (a login's, expired; the
                // placeholder of `insert_refresh_token`): that set is refreshed now, in this
                // flight. Its callers asked for a usable token, and one more insert during
                // their own next try would hand them an expired one. Each turn needs another
                // insert. (The asking for a lost pair needs no usable token.)
                // Not once `shutdown` began: that would be a new refresh (a call its deadline
                // may cut off, the answer lost), and the inserted set is kept for later.
                Ok(current)
                    if !current.usable(self.clock.now())
                        && !asking
                        && (notes.overtaken || replaced) =>
                {
                    if self.closing() {
                        break Err(Error::ShuttingDown);
                    }
                }
                // A failure of the tokens an insert replaced meanwhile is not the inserted
                // set's (it was never sent): the callers get that set, or its refresh (not
                // once `shutdown` began, as above).
                // A remove meanwhile: its callers get what the by-name call answers for a
                // removed session, as when the refresh succeeds, not the removed tokens'
                // failure.
                Err(_) if replaced && !asking => {
                    let state = self.state(session);
                    match state.as_ref().and_then(Ready::of) {
                        Some(inserted) if inserted.usable(self.clock.now()) => break Ok(inserted),
                        Some(_) if self.closing() => break Err(Error::ShuttingDown),
                        Some(_) => {}
                        None if matches!(state.as_deref(), Some(State::Absent { .. })) => {
                            break Err(self.no_tokens(session));
                        }
                        None => break outcome,
                    }
                }
                _ => break outcome,
            }
        };
        // A call whose answer was lost (before this failure, or a panic) is asked again
        // before the provider's window for it closes; also when the flight's callers were
        // answered all the same (a set already held served their reason once the refresh
        // started again): the stored refresh token may be the one the lost call spent.
        self.resolve_later(session);
        if notes.replayed {
            // A remembered failure answered again: not remembered anew, so it lapses.
            return outcome;
        }
        if let Err(error) = &outcome {
            // Answer the next callers with this failure for a while rather than calling the
            // provider again once per caller (`remembered` says which failures).
            if remembered(error) {
                // Not for a generation an insert (or a remove) started since.
                let (at, lasting) = (Stamp::at(self.clock.now()), self.config.failure_cooldown);
                session.remember_failure_at(notes.generation, at, lasting, error.clone());
            }
        }
        outcome
    }

    async fn run_once(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        reason: Reason,
        notes: &mut RunNotes,
    ) -> Outcome<P::Extras> {
        // Wait out an insert or remove under way, then start in the generation it left.
        let generation = {
            let _writing = session.writer().lock().await;
            session.generation()
        };
        notes.generation = generation;
        if generation == RETIRED {
            return self.on_mapped(session, reason).await;
        }
        let now = self.clock.now();
        let state = match self.state(session) {
            Some(state) => state,
            None => {
                let state = self.load_state(session).await?;
                self.publish_if(session, generation, state);
                match self.state(session) {
                    Some(state) => state,
                    // Retired while it loaded: not published.
                    None if session.is_retired() => {
                        return self.on_mapped(session, reason).await;
                    }
                    None => return Err(self.no_tokens(session)),
                }
            }
        };
        let current = match &*state {
            State::Dead {
                reauth,
                version,
                checked_at,
            } => {
                // Another process may have inserted new tokens since: look again, now and
                // then, without calling the provider.
                if checked_at.within(now, self.config.failure_cooldown) {
                    return Err(Error::ReauthRequired((**reauth).clone()));
                }
                match self.store.load(&self.key(session)).await? {
                    Some(record) if Some(record.version) != *version => {
                        let state = self.state_from(session, record)?;
                        self.publish_if(session, generation, state);
                        return Box::pin(self.run_once(session, reason, notes)).await;
                    }
                    _ => {
                        self.publish_if(
                            session,
                            generation,
                            State::Dead {
                                reauth: reauth.clone(),
                                version: *version,
                                checked_at: Stamp::at(now),
                            },
                        );
                        return Err(Error::ReauthRequired((**reauth).clone()));
                    }
                }
            }
            State::Absent { checked_at }
                if !checked_at.within(now, self.config.failure_cooldown) =>
            {
                // Another process may have inserted the session since: look again.
                let state = self.load_state(session).await?;
                let found = !matches!(state, State::Absent { .. });
                self.publish_if(session, generation, state);
                if found {
                    return Box::pin(self.run_once(session, reason, notes)).await;
                }
                if !self.provider.can_issue() {
                    return Err(self.no_tokens(session));
                }
                None
            }
            State::Ready(_) => match Ready::of(&state) {
                Some(current) if self.serves(&reason, &current, now) => {
                    return Ok(current);
                }
                current => current,
            },
            State::Absent { .. } if self.provider.can_issue() => None,
            State::Absent { .. } => return Err(self.no_tokens(session)),
        };
        if current.is_none() && matches!(reason, Reason::Unresolved(_) | Reason::Lapsed(_)) {
            // The session has no tokens (removed since the answer was lost, or since a look
            // for lapsed leases read its record): nothing is left to ask for, and a
            // provider that can issue must not bring it back.
            return Err(self.no_tokens(session));
        }
        let issuing = current
            .as_ref()
            .is_none_or(|c| c.stored.refresh_token.is_none());
        if let Some(remaining) = session
            .cooldown_left(now)
            .or_else(|| self.cooldown.left(now).filter(|_| issuing))
        {
            return self
                .cooling_down(session, generation, current.as_ref(), &reason, remaining)
                .await;
        }
        // Not for the asking after a lost pair: a few calls in all, which must fall inside
        // the provider's reuse window however long `failure_cooldown` is.
        if !matches!(reason, Reason::Unresolved(_))
            && let Some(error) = session.recent_failure(now, self.config.failure_cooldown)
        {
            notes.replayed = true;
            return Err(error);
        }
        // A name without tokens past the bounded set of names: an issue that failed for
        // such a name is answered again for the cooldown, not asked for once per caller.
        if current.is_none()
            && let Some(error) =
                (self.unknown).failure_past_the_set(now, self.config.failure_cooldown)
        {
            notes.replayed = true;
            return Err(error);
        }

        let lapsed_holder = std::mem::take(&mut notes.lapsed_holder);
        let (current, taken_over, held_at) = match self
            .take_lease(session, generation, current, &reason, lapsed_holder)
            .await?
        {
            LeaseTaken::Settled(current) => return Ok(current),
            LeaseTaken::Lost(_) if notes.restart_after_losing_the_lease() => {
                return Box::pin(self.run_once(session, reason, notes)).await;
            }
            LeaseTaken::Lost(_) => return Err(Error::RefreshAborted(AbortReason::LeaseLost)),
            LeaseTaken::Held {
                current,
                taken_over,
                held_at,
            } => (current, taken_over, held_at),
        };
        if session.generation() != generation {
            // An insert or a remove meanwhile: what the store holds now (read since) may be
            // the new generation's set, which a refresh of this generation could spend but
            // not publish (and a pair it could not save would then be dropped, its spent
            // token left in the store). Start over in the new generation; retired meanwhile,
            // the start hands over to the mapped session.
            self.release(session).await;
            return Box::pin(self.run_once(session, reason, notes)).await;
        }
        notes.taken_over = taken_over;
        let watch = LeaseWatch::new(held_at);
        let work = async {
            // A panic (in the provider, or in a store) must not leave the lease taken: it
            // ends this refresh like any failure, and the lease is given back below.
            let done = CatchUnwind(Box::pin(
                self.refresh_held(session, generation, current, &reason, &watch, notes),
            ))
            .await
            .unwrap_or_else(|()| {
                tracing::error!("the refresh panicked");
                let error = Error::RefreshAborted(AbortReason::Panicked);
                // Answered again for a while, as the provider's failures are: a provider
                // whose code panics on every answer is not called once per caller. Unless
                // the clock cannot be read: the panic may have been its, and a second one
                // here would end the refresh before its lease is given back.
                let lasting = self.config.failure_cooldown;
                if let Ok(now) = catch_unwind(AssertUnwindSafe(|| self.clock.now())) {
                    session.remember_failure_at(generation, Stamp::at(now), lasting, error.clone());
                }
                // Not given back if the background save of a pair that could not be saved
                // took this refresh's count of it before the panic came (as the refresh
                // let go of what it held): that save keeps the lease until the pair is
                // saved.
                let handed_over = !Counted::holds(&self.lease_users(session));
                (Err(error), handed_over)
            });
            watch.stop();
            done
        };
        // The heartbeat is stopped and awaited, not dropped: a renewal still in flight could
        // otherwise reach the store after the release below and hold the lease again.
        let ((outcome, keep_lease), ()) = tokio::join!(work, self.heartbeat(session, &watch));
        // Shutting down with a pair lost in transit still to ask for inside its window (this
        // ask failed, and this process asks no more): the lease is left to lapse, for another
        // process's look for lapsed leases to take over and present the token again. Given
        // back, it would tell nobody that the stored token may be spent.
        let asking_left = self.closing()
            && outcome.as_ref().is_err_and(|error| {
                matches!(
                    error.kind(),
                    ErrorKind::Transient | ErrorKind::OutcomeUnknown
                )
            })
            && session.any_unresolved_open();
        if !keep_lease {
            if notes.start_over && watch.lapsed_holder() {
                // Granted last over a holder that let it lapse, which may have spent the
                // token: kept in the store, where nobody takes it without waiting for that
                // holder's save, and taken again by the next turn as a take-over.
                notes.lapsed_holder = true;
                self.leave(session).await;
            } else if asking_left {
                tracing::warn!(
                    "shutting down before a pair lost in transit was got back: the refresh lease is left to lapse, for another process to ask for it"
                );
                self.leave(session).await;
            } else {
                self.release(session).await;
            }
        }
        if std::mem::take(&mut notes.start_over) {
            return Box::pin(self.run_once(session, reason, notes)).await;
        }
        outcome
    }

    /// A refresh asked while the provider's `Retry-After` runs: no provider call, but the
    /// store is looked at (another process may have stored a set since, a login say: the
    /// wait may last an hour) unless a failure was remembered within `failure_cooldown`
    /// (the one that began the wait, or the previous look).
    async fn cooling_down(
        &self,
        session: &Session<P::Extras>,
        generation: u64,
        current: Option<&Ready<P::Extras>>,
        reason: &Reason,
        remaining: Duration,
    ) -> Outcome<P::Extras> {
        let (now, within) = (self.clock.now(), self.config.failure_cooldown);
        let cooling = Error::CoolingDown { remaining };
        if session.recent_failure(now, within).is_some() {
            return Err(cooling);
        }
        match self.read_newer(session, generation, current).await {
            Ok(Stored::Tokens(adopted)) if self.serves(reason, &adopted, self.clock.now()) => {
                return Ok(adopted);
            }
            Ok(Stored::Dead(error) | Stored::Removed(error)) => return Err(error),
            Ok(_) => {}
            Err(error) => tracing::warn!(%error, "could not read the store while cooling down"),
        }
        let lasting = within.min(remaining);
        session.remember_failure_at(generation, Stamp::at(now), lasting, cooling.clone());
        Err(cooling)
    }

    /// A refresh asked of a retired session (it left the session map after its caller
    /// looked it up: a `remove`, or a lookup that found no tokens) runs on the session its
    /// name maps to now, so that two sessions of one name never refresh side by side. The
    /// asking for a pair lost in transit ends there: the session it was lost in is gone.
    async fn on_mapped(
        self: &Arc<Self>,
        session: &Session<P::Extras>,
        reason: Reason,
    ) -> Outcome<P::Extras> {
        if matches!(reason, Reason::Unresolved(_)) {
            return Err(self.no_tokens(session));
        }
        let mapped = self.known_session(session.name())?;
        let outcome = Box::pin(self.flight(&mapped, reason)).await;
        self.forget_if_unknown(&mapped, outcome)
    }

    pub(super) async fn load_state(
        &self,
        session: &Session<P::Extras>,
    ) -> Result<State<P::Extras>, Error> {
        match self.store.load(&self.key(session)).await? {
            Some(record) => self.state_from(session, record),
            None => Ok(State::Absent {
                checked_at: Stamp::at(self.clock.now()),
            }),
        }
    }

    fn state_from(
        &self,
        session: &Session<P::Extras>,
        record: crate::store::Versioned<StoredRecord>,
    ) -> Result<State<P::Extras>, Error> {
        Ok(match record.value {
            StoredRecord::Tokens(set) => {
                let (set, extras) = from_stored(set)?;
                State::Ready(self.current_from(set, extras, Some(record.version), true))
            }
            StoredRecord::Reauth(verdict) => State::Dead {
                reauth: Box::new(self.reauth_from(session, verdict)),
                version: Some(record.version),
                checked_at: Stamp::at(self.clock.now()),
            },
            StoredRecord::Coordination { .. } => return Err(not_a_session(&self.key(session))),
        })
    }

    /// The refresh proper, with the lease held. Returns the outcome and whether the lease
    /// must be kept (a new set that could not be saved keeps it until it is).
    async fn refresh_held(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        generation: u64,
        current: Option<Ready<P::Extras>>,
        reason: &Reason,
        watch: &LeaseWatch,
        notes: &mut RunNotes,
    ) -> (Outcome<P::Extras>, bool) {
        // A set whose save failed is saved before its refresh token is spent again: the
        // next pair must replace it in the store, or another process would find the old
        // one there and spend a token that is already spent.
        let current = match current {
            Some(unsaved) if !unsaved.saved() => match self.save_unsaved(session, &unsaved).await {
                Ok(saved) => Some(saved),
                Err(error) => return (Err(error), false),
            },
            current => current,
        };
        if session.generation() != generation {
            // An insert or a remove while the set was saved: what the save found in the store
            // instead (`Superseded`) may be the new generation's set, which a refresh of this
            // generation could spend but not publish (a pair it could not save would then be
            // dropped, its spent token left in the store). Start over in the new generation.
            notes.start_over = true;
            let error = Error::RefreshAborted(AbortReason::SessionReplaced);
            return (Err(error), false);
        }
        // Refused before, its verdict waiting for the store: not presented again (another
        // process may hold the pair it was spent for, and a provider that takes a second
        // presentation for a replay would revoke that too); judged now that the store
        // answers.
        if let Some(refusal) = (current.as_ref())
            .and_then(|c| c.stored.refresh_token.as_ref())
            .and_then(|token| session.refusal_of(token))
        {
            let outcome = self
                .refused(session, generation, current.as_ref(), refusal, notes, watch)
                .await;
            return (outcome, false);
        }
        let cx = CallContext::new(
            self.client.clone(),
            self.clock.clone(),
            session.name().clone(),
        );
        #[cfg(feature = "metrics")]
        let started = std::time::Instant::now();
        let from = current.as_deref().map(Current::set);
        // Nothing to refresh with (no refresh token, no grant of the client's own): the
        // provider is not asked, and refuses nothing. While the access token is still valid
        // that is no verdict: it is served until it expires.
        let unrenewable_but_valid = !self.provider.can_issue()
            && current
                .as_ref()
                .is_some_and(|c| c.stored.refresh_token.is_none() && c.usable(self.clock.now()));
        let result = self.obtain(&cx, session, from.as_ref(), watch).await;
        #[cfg(feature = "metrics")]
        super::metered(|| {
            crate::metrics::record_refresh(self.provider.name(), started.elapsed(), result.is_ok())
        });
        match result {
            Ok((mut set, issued)) => {
                // A new refresh token beside an access token that cannot be served (empty, or
                // unsendable): the pair is saved with the access token set aside, and its
                // callers get a failure.
                let set_aside = crate::codec::set_aside_unusable_access(&mut set);
                let base = current.as_ref().and_then(|c| c.version());
                let (set, extras, extras_dropped) = stored_form(set);
                // A panic from here on (in the clock, say) must not drop the pair the
                // provider sent, its refresh token spent: it is saved as it came. The spare
                // is made without a panic too: extras whose `Clone` panics are read back
                // from their stored form (or left at their default, the stored record
                // keeping them whole).
                let spare = (set.clone(), spare_extras(&extras, &set), current.clone());
                let answer = (set, extras, extras_dropped, issued, set_aside);
                let refreshed = self.refreshed(session, generation, current, reason, answer, notes);
                match CatchUnwind(Box::pin(refreshed)).await {
                    Ok(done) => done,
                    Err(()) => self.save_as_sent(session, generation, spare, base).await,
                }
            }
            // A refusal is a verdict only on a refresh token: a provider that can issue
            // answers a refused one by issuing, and a refused grant of the client's own
            // leaves nobody to authorize again (it is a failure, asked again after the
            // cooldown, as a misconfiguration is).
            Err(error)
                if error.kind() == ErrorKind::ReauthRequired
                    && !self.provider.can_issue()
                    && !unrenewable_but_valid =>
            {
                (
                    self.refused(session, generation, current.as_ref(), error, notes, watch)
                        .await,
                    false,
                )
            }
            // The lease was lost before a call could be sent (another process may be
            // sending the same token): start again, which waits for that process and reads
            // what it saves, rather than fail the callers.
            Err(error @ Error::RefreshAborted(_))
                if watch.lost() && notes.restart_after_losing_the_lease() =>
            {
                notes.start_over = true;
                (Err(error), false)
            }
            Err(error) => (self.failed(session, generation, current, error), false),
        }
    }

    /// Asks the provider again, in the background, for the pair a lost answer carried (the
    /// provider may have rotated to a pair this process never saw): a few times before its
    /// reuse window closes (first after `failure_cooldown`, then after twice the wait before
    /// each time, at most halfway to the close), until the session holds another refresh
    /// token, a verdict or none, even if no caller asks meanwhile. One task per session,
    /// asking for the latest such token. At `shutdown` it asks once more at once, then
    /// stops: the next process would present the stored token only when it refreshes,
    /// which for a fresh access token comes after the window has closed (`shutdown` waits
    /// for that ask, within its deadline).
    ///
    /// A task dropped unfinished (its runtime shut down while the manager lives on in
    /// another) leaves the token to ask for, and no task: `shutdown` starts one again.
    pub(super) fn resolve_later(self: &Arc<Self>, session: &Arc<Session<P::Extras>>) {
        if !session.start_resolving() {
            return;
        }
        let (inner, session) = (self.clone(), session.clone());
        self.spawn_background(async move {
            let mut dropped = ResolvingDropped(Some(session.clone()));
            let mut asking: Option<RefreshToken> = None;
            let mut gap = Duration::ZERO;
            while let Some(lost) = session.next_unresolved() {
                let first = asking.as_ref() != Some(&lost.token);
                let left = lost
                    .closes
                    .saturating_duration_since(tokio::time::Instant::now());
                // The last second is left alone: a call sent then may land after the close.
                let Some(usable) =
                    (left.checked_sub(Duration::from_secs(1))).filter(|usable| !usable.is_zero())
                else {
                    session.resolved(&lost.token);
                    continue;
                };
                // The first ask waits the failure cooldown, each later one twice the wait
                // before it (a second at least): a provider that fails now and then is
                // asked again soon, while most of the window is left. Never more than half
                // of what is left, and never below a second (or what is left of the usable
                // time): a session answered at once each time (a provider's `Retry-After`, a
                // store that fails) is asked a few times in all, not once per instant left.
                let half = (usable / 2).max(usable.min(Duration::from_secs(1)));
                gap = match first {
                    true => inner.config.failure_cooldown,
                    false => gap.saturating_mul(2).max(Duration::from_secs(1)),
                };
                let wait = gap.min(half);
                tokio::select! {
                    () = tokio::time::sleep(wait) => {}
                    () = inner.stopping.cancelled() => {}
                }
                let last = inner.closing();
                asking = Some(lost.token.clone());
                if session
                    .next_unresolved()
                    .is_none_or(|next| next.token != lost.token)
                {
                    // Another call's answer was lost meanwhile: that token is asked for.
                    continue;
                }
                let reason = Reason::Unresolved(lost.token.clone());
                match inner.flight(&session, reason).await {
                    Err(error)
                        if matches!(
                            error.kind(),
                            ErrorKind::Transient | ErrorKind::OutcomeUnknown
                        ) && !matches!(error, Error::ShuttingDown) => {}
                    // A refresh under way for another reason, joined, may have been answered
                    // without asking (a 401 to an older access token): the set still holds
                    // the spent token, and it is asked for again.
                    Ok(current) if current.stored.refresh_token.as_ref() == Some(&lost.token) => {}
                    // Settled, a verdict, or nothing left to ask for.
                    _ => session.resolved(&lost.token),
                }
                if last {
                    session.stop_resolving();
                    dropped.0 = None;
                    return;
                }
            }
            dropped.0 = None;
        });
    }

    async fn refreshed(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        generation: u64,
        current: Option<Ready<P::Extras>>,
        reason: &Reason,
        // The provider's answer as stores keep it, its typed extras, whether those could
        // not be serialized (`stored_form`), whether it was issued anew, and why its access
        // token was set aside, if it was (it could not be served: the pair is saved for its
        // refresh token, and the callers get a failure).
        (mut set, extras, extras_dropped, issued, set_aside): (
            StoredTokenSet,
            P::Extras,
            bool,
            bool,
            Option<&'static str>,
        ),
        turn: &mut RunNotes,
    ) -> (Outcome<P::Extras>, bool) {
        let now = self.clock.now();
        let mut notes = Vec::new();
        if set.access_expires_at.is_none() {
            notes.push(ExpiryNote::Unknown);
            if let Some(lifetime) = self.config.default_access_lifetime {
                set.access_expires_at = Some(later(now, lifetime));
            }
        }
        let rotated = current
            .as_ref()
            .is_some_and(|c| set.refresh_token != c.stored.refresh_token);
        let base = current.as_ref().and_then(|c| c.version());
        // An answer that did not renew the refresh token (the same one, expiring no later)
        // is not renewed by refreshing again soon: the access token's expiry alone schedules
        // the next refresh. Otherwise a refresh token near (or past) its expiry would be
        // refreshed at every `min_refresh_interval` for as long as the session is used. An
        // expiry later by no more than that interval is no renewal either: a provider that
        // reports the remaining life (in whole seconds) of a token it keeps answers an
        // instant that wobbles by a second or so, and refreshing at every interval to gain
        // less than the interval never gets ahead.
        let renewed = current.as_ref().is_none_or(|c| {
            set.refresh_token != c.stored.refresh_token
                || match (set.refresh_expires_at, c.stored.refresh_expires_at) {
                    (Some(next), Some(before)) => {
                        next > later(before, self.config.min_refresh_interval)
                    }
                    (next, before) => next > before,
                }
        });
        let refresh_at = if renewed {
            // A refresh token answered as already expired (a provider's clock behind, an
            // expiry of the login that rotation does not move) is no reason to refresh
            // again: that cannot renew what the answer says has passed, and would refresh
            // at every `min_refresh_interval` while the session is used. The access token
            // schedules the next refresh, and the provider judges the token then.
            let alive = set.refresh_expires_at.is_none_or(|at| now < at);
            self.schedule_by(&set, alive)
        } else {
            // The next try to renew it comes halfway to its expiry (a provider may renew a
            // refresh token only near its end: asked a few times in all, not at every
            // interval), and none once it has passed; the access token schedules the rest.
            let halfway = set
                .refresh_expires_at
                .filter(|at| now < *at)
                .map(|at| now.checked_add((at - now) / 2).unwrap_or(at))
                .map(time::OffsetDateTime::unix_timestamp_nanos);
            match (self.schedule_by(&set, false), halfway) {
                (Some(access), Some(halfway)) => Some(access.min(halfway)),
                (access, halfway) => access.or(halfway),
            }
        };
        // Built before it is saved (a `MemoryStore` keeps this very state), settled after.
        let mut next = self.current_at(set, extras, base, false, refresh_at);
        if matches!(reason, Reason::Rejected(_)) {
            next.obtained_after_rejection(now);
        }
        // Refreshes of one session are spaced by at least the minimum interval, whatever
        // the answer's expiries say.
        let earliest = later(now, self.config.min_refresh_interval);
        next.refresh_no_earlier_than(earliest);
        // (Not an access token set aside: never served.)
        let expires = next
            .stored
            .access_expires_at
            .filter(|_| set_aside.is_none());
        let short = later(now, SHORT_LIFE.min(self.config.min_refresh_interval));
        if let Some(at) = expires.filter(|at| *at < short) {
            // Already expired on arrival, or expiring within a second (a provider's clock
            // behind this one, an expiry with sub-second precision): used all the same, for
            // a short while, rather than refreshed again at once (at every call, once it
            // expires: as often as the callers call, for a token that lives a millisecond).
            notes.push(match at <= now {
                true => ExpiryNote::AlreadyExpired,
                false => ExpiryNote::ShortLived,
            });
            next.usable_until_at_least(earliest);
            // Saved with the expiry it is used until, as a default lifetime is: another
            // process reading it from the store (one that waited for this refresh's lease)
            // would otherwise find it expired and spend the refresh token it was just
            // rotated to at once, once per process.
            next.stored.access_expires_at = Some(earliest);
        }
        let next = Ready::new(next.sealed());
        let known_latest = current.as_ref().is_some_and(|c| c.known_latest());
        let kept = KeptIfDropped::new(self, session, generation, current.as_ref(), &next);
        let persisted = self
            .persist(&self.key(session), &next, base, known_latest)
            .await;
        kept.disarm();
        let (version, saved, failure) = match persisted {
            Persisted::Saved(version)
                if base.is_none() && self.removed_since(session, generation, version).await =>
            {
                return (Err(self.no_tokens(session)), false);
            }
            Persisted::Saved(version) => (Some(version), true, None),
            Persisted::Superseded(found) => {
                // An insert replaced the set meanwhile: it has the last word.
                turn.overtaken = true;
                let adopted = found
                    .value
                    .into_tokens()
                    .ok_or_else(|| {
                        StoreError::Corrupt("a superseding record without tokens".into())
                    })
                    .map_err(Error::from)
                    .and_then(from_stored)
                    .map(|(set, extras)| {
                        Ready::new(self.current_from(set, extras, Some(found.version), true))
                    });
                if let Ok(adopted) = &adopted
                    && self.publish_if(session, generation, adopted.clone())
                {
                    self.emit(Event::Adopted {
                        session: session.name().clone(),
                        version: found.version,
                    });
                }
                return (self.after_insert(session, adopted), false);
            }
            Persisted::Judged(verdict) => {
                // A login inserted meanwhile was refused: it had the last word.
                turn.overtaken = true;
                let (dead, error) = self.judged_elsewhere(session, verdict);
                self.publish_if(session, generation, dead);
                return (self.after_insert(session, Err(error)), false);
            }
            Persisted::Removed => {
                // Removed while the provider answered: the answer is dropped, not saved.
                self.publish_if(
                    session,
                    generation,
                    State::Absent {
                        checked_at: Stamp::at(self.clock.now()),
                    },
                );
                return (Err(self.no_tokens(session)), false);
            }
            Persisted::Failed(error) => (base, false, Some(error)),
        };
        next.settle(version, saved);
        if !self.publish_refreshed(session, generation, current.as_ref(), next.clone()) {
            // An insert replaced the session while the provider answered: it wins, and the
            // answer (for the replaced tokens) is dropped. A remove did (its delete seen by
            // no save, the store failing): nothing is answered, as when a save finds the
            // session gone.
            tracing::info!("the session was replaced during the refresh; its result is dropped");
            return (
                self.after_insert(session, Err(self.no_tokens(session))),
                false,
            );
        }
        if let Some(error) = &failure {
            tracing::error!(%error, "could not save the new token set; keeping it in memory");
            self.emit(Event::PersistFailed {
                session: session.name().clone(),
                error: error.to_string(),
            });
        }
        tracing::info!(rotated, issued, saved, "token set refreshed");
        self.emit(Event::Refreshed {
            session: session.name().clone(),
            rotated,
            issued,
            access_expires_at: next.stored.access_expires_at,
            version: saved.then_some(version).flatten(),
        });
        if extras_dropped {
            tracing::warn!("the provider's extras could not be serialized; stored without them");
            self.emit(Event::ExtrasNotStored {
                session: session.name().clone(),
            });
        }
        for note in notes {
            tracing::warn!(note = note.as_str(), "the provider's expiry was adjusted");
            self.emit(Event::ExpiryAdjusted {
                session: session.name().clone(),
                note,
            });
        }
        let outcome = if let Some(why) = set_aside {
            let error = unusable_access_token(why);
            tracing::warn!(%error, "refresh failed");
            self.emit(Event::RefreshFailed {
                session: session.name().clone(),
                kind: error.kind(),
                error: error.to_string(),
            });
            Err(error)
        } else {
            Ok(next.clone())
        };
        if !saved {
            self.clone().spawn_save_retry(session.clone(), next);
            return (outcome, true);
        }
        (outcome, false)
    }

    /// What a refresh that panicked after the provider answered does with the answer
    /// (`spare`: as it came, its typed extras, and the set it was refreshed from): saves it
    /// as `persist` saves any answer, over `base`, the version it was refreshed from (or a
    /// verdict found there), unless newer tokens were saved there since (the refresh's own
    /// save, or an insert) or the session was removed. The next refresh then reads it from
    /// the store instead of spending the old token again. Without a stored version (a set
    /// issued for a session the store did not have) it is not saved: no stored token was
    /// spent, and a session removed meanwhile must not come back. A store that fails keeps
    /// the answer in memory, with the lease, and saved again in the background, as any set
    /// whose save failed. The clock is not read (the panic may have been its): the answer
    /// is refreshed when its access token expires. Returns the outcome and whether the
    /// lease is kept.
    async fn save_as_sent(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        generation: u64,
        (spare, extras, current): (StoredTokenSet, P::Extras, Option<Ready<P::Extras>>),
        base: Option<crate::store::Version>,
    ) -> (Outcome<P::Extras>, bool) {
        tracing::error!("the refresh panicked after the provider answered");
        let aborted = Err(Error::RefreshAborted(AbortReason::Panicked));
        if base.is_none() {
            return (aborted, false);
        }
        let refresh_at = (spare.access_expires_at).map(time::OffsetDateTime::unix_timestamp_nanos);
        let unsaved = Ready::new(self.current_at(spare, extras, base, false, refresh_at));
        let known_latest = current.as_ref().is_some_and(|c| c.known_latest());
        let kept = KeptIfDropped::new(self, session, generation, current.as_ref(), &unsaved);
        let persisted = (self.persist(&self.key(session), &unsaved, base, known_latest)).await;
        kept.disarm();
        let error = match persisted {
            Persisted::Failed(error) => error,
            // Saved, or the store moved on (an insert, a remove): read there next time.
            _ => return (aborted, false),
        };
        tracing::error!(%error, "could not save the provider's answer; keeping it in memory");
        if !self.publish_refreshed(session, generation, current.as_ref(), unsaved.clone()) {
            // An insert or a remove meanwhile: it has the last word, as in `refreshed`.
            return (aborted, false);
        }
        self.emit(Event::PersistFailed {
            session: session.name().clone(),
            error: error.to_string(),
        });
        self.clone().spawn_save_retry(session.clone(), unsaved);
        (aborted, true)
    }

    /// After saving `version`, a set for a session the store had no record of: whether the
    /// session was removed since the refresh started (a save that expects no record cannot
    /// tell a removed session from a new one); if so, the save is taken back, so that the
    /// refresh does not bring the session back.
    async fn removed_since(
        &self,
        session: &Session<P::Extras>,
        generation: u64,
        version: crate::store::Version,
    ) -> bool {
        // A remove through the store holds this for its delete and its publication.
        let _writing = session.writer().lock().await;
        let removed = session.generation() != generation
            && matches!(self.state(session).as_deref(), Some(State::Absent { .. }));
        if removed && let Err(error) = self.store.delete(&self.key(session), Some(version)).await {
            tracing::warn!(%error, "could not take back the set saved for a removed session");
        }
        removed
    }

    /// The state an insert left, for the callers of a refresh it overtook.
    fn after_insert(
        &self,
        session: &Session<P::Extras>,
        fallback: Outcome<P::Extras>,
    ) -> Outcome<P::Extras> {
        match self.state(session) {
            Some(state) => match &*state {
                State::Ready(_) => Ready::of(&state).ok_or(()).or(fallback),
                State::Dead { reauth, .. } => Err(Error::ReauthRequired((**reauth).clone())),
                State::Absent { .. } => fallback,
            },
            None => fallback,
        }
    }

    /// The provider refused the refresh token. The verdict is reached only if that token is
    /// still the newest one: the store is read first, and what another process or an
    /// insert put there is taken instead.
    async fn refused(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        generation: u64,
        current: Option<&Ready<P::Extras>>,
        error: Error,
        notes: &mut RunNotes,
        watch: &LeaseWatch,
    ) -> Outcome<P::Extras> {
        if session.generation() != generation {
            return self.after_insert(session, Err(error));
        }
        if watch.lost() {
            return self
                .refused_after_losing_the_lease(
                    session,
                    generation,
                    current,
                    error,
                    notes,
                    watch.lapsed_holder(),
                )
                .await;
        }
        // Over a lease that lapsed unreleased, the refusal may only mean that its holder
        // spent the token and cannot reach the store yet (it lost the store, not the
        // provider): its save is watched for one more lease length (the lease kept) before
        // a verdict. So over a lease whose grant went unanswered (the grant heard since is
        // this process's own lease extended): that grant may have been such a take-over.
        let watched = if notes.taken_over || session.grant_unheard() {
            tracing::warn!(
                "the refresh token was refused under a lease that may have been taken over from \
                 a lapsed holder; waiting for that holder's save"
            );
            self.config.lease_ttl
        } else {
            Duration::ZERO
        };
        self.judge(session, generation, current, error, notes, watched)
            .await
    }

    /// The provider refused a token sent under a lease that was lost during the call: a
    /// process that took the lease over may have spent the token first, and be saving what
    /// it got (it keeps the lease until then). The lease is taken again, as by any refresh
    /// (waiting while another process holds it, watching the store, a lease length more
    /// after a holder that let it lapse), and the store re-read, before a verdict: one
    /// reached under the lease, and at once when nobody else took it. `lapsed_holder`: a
    /// renewal took the lease over from a holder that let it lapse (it is still this
    /// process's): that holder's save is waited for as after any take-over.
    async fn refused_after_losing_the_lease(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        generation: u64,
        current: Option<&Ready<P::Extras>>,
        error: Error,
        notes: &mut RunNotes,
        mut lapsed_holder: bool,
    ) -> Outcome<P::Extras> {
        tracing::warn!(
            "the refresh token was refused after the lease was lost; taking it again before a verdict"
        );
        // Settled by a set holding another refresh token.
        let newer = match current.and_then(|c| c.stored.refresh_token.clone()) {
            Some(refused) => Reason::Unresolved(refused),
            None => Reason::Forced,
        };
        let version = current.and_then(|c| c.version());
        let mut seen = current.cloned();
        let taken = loop {
            let taken = self
                .take_lease(
                    session,
                    generation,
                    seen,
                    &newer,
                    std::mem::take(&mut lapsed_holder),
                )
                .await?;
            match taken {
                // Another process took the lease over while this one waited for a save: it
                // is taken again (twice at most, as a refresh starts again), which waits for
                // that process and takes what it saves; the refused token is not sent again.
                LeaseTaken::Lost(latest) if notes.restart_after_losing_the_lease() => {
                    seen = latest;
                }
                taken => break taken,
            }
        };
        match taken {
            LeaseTaken::Settled(adopted) => {
                notes.overtaken = true;
                Ok(adopted)
            }
            // Another process took the lease again and again: no verdict; the next call
            // starts a new refresh (and waits for that process).
            LeaseTaken::Lost(_) => Err(Error::RefreshAborted(AbortReason::LeaseLost)),
            LeaseTaken::Held { current: now, .. } => {
                let outcome = match now {
                    // Written since, if with the same refresh token: taken, no verdict.
                    Some(now) if now.version() != version => {
                        notes.overtaken = true;
                        Ok(now)
                    }
                    _ => CatchUnwind(Box::pin(self.judge(
                        session,
                        generation,
                        current,
                        error,
                        notes,
                        Duration::ZERO,
                    )))
                    .await
                    .unwrap_or_else(|()| {
                        tracing::error!("the refresh panicked");
                        Err(Error::RefreshAborted(AbortReason::Panicked))
                    }),
                };
                self.release(session).await;
                outcome
            }
        }
    }

    /// What the store holds after the refusal of `current`'s refresh token (`error`), if it
    /// answers the refresh: a newer set (taken), a verdict or a removal; or, when the store
    /// cannot be read, that error, with the refusal kept so that the next call looks again
    /// without presenting the refused token again (`refresh_held`). `None`: nothing newer.
    async fn newer_than_refused(
        &self,
        session: &Session<P::Extras>,
        generation: u64,
        current: Option<&Ready<P::Extras>>,
        error: &Error,
        notes: &mut RunNotes,
    ) -> Option<Outcome<P::Extras>> {
        match self.read_newer(session, generation, current).await {
            Ok(Stored::Tokens(adopted)) => {
                notes.overtaken = true;
                Some(Ok(adopted))
            }
            Ok(Stored::Dead(dead) | Stored::Removed(dead)) => Some(Err(dead)),
            Ok(Stored::Unchanged) => None,
            Err(store_error) => {
                tracing::warn!(error = %store_error, "the refresh token was refused and the store cannot be read");
                self.keep_refused(session, current, error);
                Some(Err(store_error))
            }
        }
    }

    /// The verdict on a refused token, unless the store holds another set (looked at for
    /// `watched`).
    async fn judge(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        generation: u64,
        current: Option<&Ready<P::Extras>>,
        error: Error,
        notes: &mut RunNotes,
        watched: Duration,
    ) -> Outcome<P::Extras> {
        let poll = (self.config.lease_ttl / 6).max(Duration::from_millis(50));
        let started = tokio::time::Instant::now();
        loop {
            if let Some(outcome) = self
                .newer_than_refused(session, generation, current, &error, notes)
                .await
            {
                return outcome;
            }
            if started.elapsed() >= watched {
                break;
            }
            // A shutdown ends the wait with no verdict (the next process looks again).
            tokio::select! {
                () = tokio::time::sleep(poll) => {}
                () = self.stopping.cancelled() => return Err(Error::ShuttingDown),
            }
        }
        let reauth = self.reauth_for(session, &error);
        let version = current.and_then(|c| c.version());
        let verdict =
            ReauthVerdict::new(reauth.code.clone(), reauth.reason.clone(), self.clock.now())
                .replacing(version);
        let record = StoredRecord::from(verdict);
        // The record the verdict is saved over: the refused one, or an older one the store
        // went back to.
        let mut expected = version;
        let mut recorded = None;
        // A few tries, as a new set's save has: a store that keeps answering conflicts
        // while it holds the refused record gets the verdict in the background.
        for _ in 0..3 {
            match self.store.save(&self.key(session), &record, expected).await {
                Ok(version) => {
                    recorded = Some(version);
                    break;
                }
                Err(StoreError::Conflict { .. }) => {
                    // Written meanwhile: take it instead.
                    if let Some(outcome) = self
                        .newer_than_refused(session, generation, current, &error, notes)
                        .await
                    {
                        return outcome;
                    }
                    // Nothing newer: the store holds the refused record itself (a store that
                    // refused the compare-and-swap wrongly, or answered one whose write it
                    // lost), or went back to a record older than the refused set, which
                    // this process wrote itself (see `read_newer`). The verdict is saved
                    // over that record, as a new set would be: left unrecorded, every later
                    // call would present the refused token again.
                    if let Some(found) = self.verdict_over(session, current).await {
                        tracing::warn!(
                            found,
                            "the store refused the verdict's save at a record it replaces; saving it again"
                        );
                        expected = Some(found);
                    }
                }
                Err(store_error) => {
                    tracing::warn!(
                        error = %store_error,
                        "could not record the re-auth verdict; recording it again in the background"
                    );
                    break;
                }
            }
        }
        let unrecorded = recorded.is_none().then_some(expected).flatten();
        if recorded.is_none() {
            // Kept here until it is recorded: never presented again, whatever the store
            // shows meanwhile (the refused record again, after the older one).
            self.keep_refused(session, current, &error);
        }
        let dead = State::Dead {
            reauth: Box::new(reauth.clone()),
            // Not recorded: the record it is to be saved over (the refused one, or the
            // older one the store went back to), so a later look at the store does not
            // take the dead token back for a live one.
            version: recorded.or(expected),
            checked_at: Stamp::at(self.clock.now()),
        };
        if !self.publish_if(session, generation, dead) {
            return self.after_insert(session, Err(Error::ReauthRequired(reauth)));
        }
        if let Some(at) = unrecorded {
            self.record_later(session, generation, &reauth, version, at);
        }
        tracing::warn!(reason = %reauth.reason, "re-authorization required");
        self.emit(Event::ReauthRequired(reauth.clone()));
        Err(Error::ReauthRequired(reauth))
    }

    /// Notes that the provider refused `current`'s refresh token, whose verdict is not in
    /// the store: it is judged again, never presented again (`refresh_held`).
    fn keep_refused(
        &self,
        session: &Session<P::Extras>,
        current: Option<&Ready<P::Extras>>,
        error: &Error,
    ) {
        if let Some(token) = current.and_then(|c| c.stored.refresh_token.clone()) {
            session.note_refused(token, error.clone());
        }
    }

    /// The version of the record a verdict on `current`'s refresh token is to be saved over
    /// after a conflict that found nothing newer: the refused record itself, still in the
    /// store, or one older than it, which this process wrote itself (or replaces), the
    /// store having gone back to it, losing writes it acknowledged. `None`: neither (the
    /// store could not be read, or moved on since).
    async fn verdict_over(
        &self,
        session: &Session<P::Extras>,
        current: Option<&Ready<P::Extras>>,
    ) -> Option<crate::store::Version> {
        let refused = current?.version()?;
        let known_latest = current.is_some_and(|c| c.known_latest());
        match self.store.load(&self.key(session)).await {
            Ok(Some(found))
                if found.value.as_coordination().is_none()
                    && (found.version == refused || known_latest && found.version < refused) =>
            {
                Some(found.version)
            }
            _ => None,
        }
    }

    /// Records in the background the verdict on the set stored at `refused`, over the
    /// record at `at` (that one, or an older one the store went back to), which the store
    /// failed to take as it was reached, so that every process sees it there and none sends
    /// the dead token again: until it is recorded, or the record moved on (an insert, a
    /// remove, another process's save), or the session did here. `shutdown` waits for it.
    fn record_later(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        generation: u64,
        reauth: &crate::error::Reauth,
        refused: Option<crate::store::Version>,
        at: crate::store::Version,
    ) {
        let verdict =
            ReauthVerdict::new(reauth.code.clone(), reauth.reason.clone(), self.clock.now())
                .replacing(refused);
        let record = StoredRecord::from(verdict);
        let (inner, session) = (self.clone(), session.clone());
        self.spawn_background(async move {
            let mut shutdowns = inner.shutdowns_seen();
            let mut attempt = 0u32;
            loop {
                attempt = attempt.saturating_add(1);
                // `shutdown` waits for this task as for a failed set's saves: as each call
                // begins, the verdict is tried at once, then on as before until its deadline.
                inner.background_pause(attempt, &mut shutdowns).await;
                if session.generation() != generation {
                    return;
                }
                // A panic in an attempt (the application's code runs there too: a `tracing`
                // subscriber's as a failure is logged) fails that attempt, as a store that
                // errs does: ended here, the task would leave the verdict unrecorded for
                // good, for every other process to present the dead token again.
                let tried = CatchUnwind(Box::pin(
                    inner.record_attempt(&session, &record, at, attempt),
                ));
                if tried.await.unwrap_or(false) {
                    return;
                }
            }
        });
    }

    /// One attempt of [`record_later`](Self::record_later): whether it is done (recorded,
    /// or nothing left to record over).
    async fn record_attempt(
        &self,
        session: &Session<P::Extras>,
        record: &StoredRecord,
        at: crate::store::Version,
        attempt: u32,
    ) -> bool {
        match self.store.save(&self.key(session), record, Some(at)).await {
            Ok(_) => true,
            // Written meanwhile: nothing to record over, unless the store still holds that
            // very record (a conflict it answered wrongly), or cannot say (the next try
            // will).
            Err(StoreError::Conflict { .. }) => match self.store.load(&self.key(session)).await {
                Ok(Some(found)) if found.version == at && found.value.tokens().is_some() => {
                    tracing::warn!(
                        attempt,
                        "the store refused the verdict's save at the record it replaces; recording it again"
                    );
                    false
                }
                Err(error) => {
                    tracing::warn!(attempt, %error, "could not read the store");
                    false
                }
                Ok(_) => true,
            },
            // Never to be written.
            Err(StoreError::Corrupt(_) | StoreError::Unsupported(_)) => true,
            Err(error) => {
                tracing::warn!(attempt, %error, "recording the re-auth verdict failed again");
                false
            }
        }
    }

    fn failed(
        &self,
        session: &Session<P::Extras>,
        generation: u64,
        current: Option<Ready<P::Extras>>,
        error: Error,
    ) -> Outcome<P::Extras> {
        tracing::warn!(kind = %error.kind(), %error, "refresh failed");
        if session.generation() != generation {
            // An insert or a remove replaced the session while the provider answered: the
            // failure is the replaced tokens', dropped with them (what its callers get is
            // decided as the refresh ends), and not reported: the session does not keep the
            // set that failed.
            return Err(error);
        }
        self.emit(Event::RefreshFailed {
            session: session.name().clone(),
            kind: error.kind(),
            error: error.to_string(),
        });
        if let Some(current) = current {
            // Still valid: keep it, and hold off the next ahead-of-expiry attempt.
            let now = self.clock.now();
            if current.usable(now) {
                let retry_at = later(now, self.config.failure_cooldown);
                self.publish_if(session, generation, Ready::new(current.retry_at(retry_at)));
            }
        }
        Err(error)
    }

    /// Calls the provider until it answers, retrying transient failures, and lost answers
    /// inside the reuse window. Returns the new set and whether it was issued anew.
    async fn obtain(
        &self,
        cx: &CallContext,
        session: &Session<P::Extras>,
        current: Option<&TokenSet<P::Extras>>,
        watch: &LeaseWatch,
    ) -> Result<(TokenSet<P::Extras>, bool), Error> {
        let policy = &self.config.retry;
        let can_issue = self.provider.can_issue();
        // A refresh token past its local expiry is still tried once: the provider decides
        // (a clock may be wrong, and some providers send 0 for "never").
        let refreshable = current.filter(|c| c.refresh_token.is_some());
        let mut issuing = refreshable.is_none();
        if issuing && !can_issue {
            return Err(Error::ReauthRequired(crate::error::Reauth::new(
                cx.session(),
                "the session has no refresh token",
            )));
        }
        let mut started = tokio::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            // A retry renews the lease first; a first call too if the lease was granted a
            // while ago (a slow re-read or save since).
            if !self.still_held(session, watch, attempt > 1).await {
                // Another process may be refreshing with the same token now: stop, and let
                // the next call take the lease and read the store again.
                return Err(Error::RefreshAborted(AbortReason::LeaseLost));
            }
            let sent = tokio::time::Instant::now();
            let call = async {
                match (issuing, refreshable) {
                    (false, Some(set)) => self
                        .provider
                        .refresh(cx, set)
                        .await
                        .map(|new| super::without_blank_refresh_token(new).or_previous(set)),
                    _ => self
                        .provider
                        .issue(cx)
                        .await
                        .map(super::without_blank_refresh_token),
                }
            };
            // Whatever the transport, no call holds the refresh (and its lease) for ever. The
            // request may have been processed: its outcome is unknown.
            let call = CatchUnwind(Box::pin(call));
            let presented = refreshable
                .filter(|_| !issuing)
                .and_then(|set| set.refresh_token.as_ref());
            let unanswered = AskedIfDropped {
                inner: self,
                session,
                presented,
                sent,
            };
            let answer = tokio::time::timeout(self.config.call_timeout, call).await;
            unanswered.disarm();
            let result = match answer {
                Ok(Ok(result)) => result,
                Ok(Err(())) => {
                    // The provider's code panicked, perhaps decoding an answer its server
                    // sent after rotating: as for an answer lost in transit, the token is
                    // asked for again inside the reuse window. The refresh ends as a panic.
                    self.note_unresolved(session, issuing, refreshable, sent);
                    std::panic::resume_unwind(Box::new("the provider's code panicked"));
                }
                Err(_) => Err(crate::error::TransportError::answer_lost(format!(
                    "the provider did not answer within {:?}",
                    self.config.call_timeout
                ))
                .into()),
            };
            // An access token that cannot be sent (or an empty one: no bearer) would be
            // served, and fail every API call, until it expires: a hand-written provider's
            // set is held to what a declared answer is. Beside a new refresh token the answer
            // is kept (the refresh token saved, the access token set aside: `refresh_held`):
            // the provider may have spent the one presented. Without one there is nothing to
            // keep, and the outcome is unknown (the provider may have rotated to a pair not
            // received).
            let result = result.and_then(|set| {
                let presented = refreshable
                    .filter(|_| !issuing)
                    .and_then(|set| set.refresh_token.as_ref());
                let kept = set.refresh_token.is_some() && set.refresh_token.as_ref() != presented;
                match crate::codec::unusable_access(set.access_token.expose_secret()) {
                    Some(why) if !kept => {
                        Err(
                            crate::error::EndpointError::parse(http::StatusCode::OK, why, b"", &[])
                                .into(),
                        )
                    }
                    _ => Ok(set),
                }
            });
            let error = match result {
                Ok(set) => {
                    if let Some(token) = refreshable.and_then(|set| set.refresh_token.as_ref()) {
                        session.resolved(token);
                    }
                    return Ok((set, issuing));
                }
                Err(error) => error,
            };
            let kind = error.kind();
            tracing::debug!(attempt, %kind, issuing, "call failed");
            if kind == ErrorKind::OutcomeUnknown || may_follow_a_rotation(&error) {
                self.note_unresolved(session, issuing, refreshable, sent);
            }
            let wait = policy.backoff(attempt, error.retry_after());
            let next_call_at = started.elapsed().saturating_add(wait);
            match retry::decide(
                kind,
                issuing,
                can_issue,
                next_call_at,
                self.provider.reuse_window(),
            ) {
                retry::Decision::Issue => {
                    tracing::info!(
                        "refresh refused; issuing a new set with the provider's credentials"
                    );
                    issuing = true;
                    attempt = 0;
                    started = tokio::time::Instant::now();
                    continue;
                }
                retry::Decision::GiveUp => {
                    self.note_cooldown(session, &error, issuing);
                    return Err(error);
                }
                retry::Decision::Retry => {}
            }
            if attempt >= policy.max_attempts || next_call_at > policy.deadline {
                self.note_cooldown(session, &error, issuing);
                return Err(Error::RetriesExhausted {
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Notes the refresh token of a call sent at `sent` whose outcome is unknown (the
    /// provider may have rotated it), to be asked for again inside the reuse window.
    fn note_unresolved(
        &self,
        session: &Session<P::Extras>,
        issuing: bool,
        refreshable: Option<&TokenSet<P::Extras>>,
        sent: tokio::time::Instant,
    ) {
        if let (false, Some(set)) = (issuing, refreshable)
            && let Some(token) = &set.refresh_token
        {
            self.ask_again_later(session, token, sent);
        }
    }

    /// Notes `token`, which the provider may have spent at `sent` or later without this
    /// process getting its successor, to be presented again before the provider's reuse
    /// window for it closes ([`resolve_later`](Self::resolve_later)). Without a reuse
    /// window a spent token cannot be answered again, and nothing is noted.
    pub(super) fn ask_again_later(
        &self,
        session: &Session<P::Extras>,
        token: &RefreshToken,
        sent: tokio::time::Instant,
    ) {
        let window = self.provider.reuse_window();
        if window.is_zero() {
            return;
        }
        // The provider's reuse window runs from its rotation, at the earliest at `sent`.
        session.note_unresolved(Unresolved {
            token: token.clone(),
            // A window too long for the clock is a year: asked a few times in all.
            closes: (sent.checked_add(window))
                .unwrap_or_else(|| sent + Duration::from_secs(365 * 24 * 3600)),
        });
    }

    /// Remembers the provider's `Retry-After` beyond this refresh: for the session, and for
    /// the whole client when the call was a grant of the client's own (issuing).
    fn note_cooldown(&self, session: &Session<P::Extras>, error: &Error, issuing: bool) {
        let Some(wait) = error.retry_after() else {
            return;
        };
        // A provider asking for more than an hour is taken at an hour: a typo in its
        // header must not silence a session for days.
        let wait = wait.min(MAX_COOLDOWN);
        let until = later(self.clock.now(), wait);
        session.extend_cooldown(until, wait);
        if issuing {
            self.cooldown.extend(until, wait);
        }
    }
}

/// A copy of `extras` (whose stored form `set` holds) for the spare of a refresh's answer,
/// made without a panic: user code runs in `Clone` (and in `Deserialize`, the fallback).
fn spare_extras<X: crate::token_set::Extras>(extras: &X, set: &StoredTokenSet) -> X {
    catch_unwind(AssertUnwindSafe(|| extras.clone()))
        .ok()
        .or_else(|| {
            catch_unwind(AssertUnwindSafe(|| from_stored::<X>(set.clone()).ok()))
                .ok()
                .flatten()
                .map(|(_, extras)| extras)
        })
        .unwrap_or_default()
}

/// A provider's answer as stores keep it, its typed extras, and whether those could not be
/// serialized: stored as none then (a later load gets their default), since the tokens the
/// provider sent are saved all the same, or the spent refresh token would stay in the
/// store. This process keeps the typed extras.
fn stored_form<X: crate::token_set::Extras>(set: TokenSet<X>) -> (StoredTokenSet, X, bool) {
    match super::extras_json(&set.extras) {
        Ok(json) => {
            let (set, extras) = super::untyped(set, json);
            (set, extras, false)
        }
        Err(_) => {
            let (set, extras) = super::untyped(set, serde_json::Value::Null);
            (set, extras, true)
        }
    }
}

/// Whether a provider's failure, though `Transient` (retried, not bounded by the reuse
/// window), may have come after the provider rotated the refresh token presented: a 5xx
/// other than 503 (a server that failed after its commit, a gateway whose upstream answered
/// too late or not at all). Its pair is then asked for again inside the reuse window if the
/// refresh gives up, as for an answer lost in transit. A 503 (nothing taken on) and a 429
/// are not. Whether its body was read or lost on the way.
fn may_follow_a_rotation(error: &Error) -> bool {
    use crate::error::{EndpointError, TransportError};
    let status = match error {
        Error::Endpoint(EndpointError::Provider(e)) => e.status,
        Error::Endpoint(EndpointError::Parse { status, .. }) => *status,
        Error::Transport(TransportError {
            status: Some(status),
            ..
        }) => *status,
        _ => return false,
    };
    status.is_server_error() && status != http::StatusCode::SERVICE_UNAVAILABLE
}

/// Whether a refresh's failure is answered again for `failure_cooldown` rather than the
/// provider asked once per caller: only the provider's failures (a store that failed is
/// asked again at once; a verdict or a wait the provider asked for is kept otherwise).
pub(super) fn remembered(error: &Error) -> bool {
    matches!(
        error,
        Error::Endpoint(_) | Error::Transport(_) | Error::RetriesExhausted { .. }
    )
}

/// What the callers of a refresh get when the provider answered a new refresh token beside
/// an access token that cannot be sent in a header (`why`: empty, or a control character):
/// `Rejected` (a definitive answer, not an unknown outcome: the pair was received, its
/// refresh token saved). The refresh token is presented at the next refresh, after
/// `failure_cooldown` (this failure is answered meanwhile, the provider not asked).
fn unusable_access_token(why: &str) -> Error {
    crate::error::EndpointError::Parse {
        kind: ErrorKind::Rejected,
        status: http::StatusCode::OK,
        reason: format!(
            "{why} and cannot be sent in a header; the new refresh token was saved and is \
             presented at the next refresh"
        ),
        body: String::new(),
    }
    .into()
}

/// An access token that expires sooner than this after it arrived is used for
/// `min_refresh_interval` all the same, as one already expired is ([`ExpiryNote::ShortLived`]):
/// refreshed at its expiry, it would be refreshed more than once a second.
const SHORT_LIFE: Duration = Duration::from_secs(1);

/// How many times one refresh starts over (or, after a refusal, takes the lease again) after
/// losing its lease to another process before its callers get [`Error::RefreshAborted`]:
/// each time, that process made progress.
const MAX_LEASE_RESTARTS: u8 = 2;

/// Whether `error` is a refresh whose code panicked: not a lost lease, a cancelled task or
/// a replaced session, which say nothing of the provider.
pub(super) fn panicked(error: &Error) -> bool {
    matches!(error, Error::RefreshAborted(AbortReason::Panicked))
}

/// What one turn of a refresh noted for the next.
#[derive(Default)]
pub(super) struct RunNotes {
    /// A remembered failure was answered again (not remembered anew, so it lapses).
    replayed: bool,
    /// The lease was taken over from a holder whose lease lapsed unreleased.
    taken_over: bool,
    /// The generation changed before the provider was called, or the lease was lost
    /// before a call could be sent: the refresh starts over.
    start_over: bool,
    /// How many times the refresh started over after losing its lease.
    lease_restarts: u8,
    /// The generation the latest turn (or start over) ran in.
    generation: u64,
    /// The lease was lost to a renewal that took it over from a holder that let it lapse:
    /// kept in the store for the next turn, whose grant is a take-over.
    lapsed_holder: bool,
    /// The answer is what another writer put in the store, not the provider's (an insert
    /// by another process superseded the refreshed set, or a refused token gave way to a
    /// newer one).
    overtaken: bool,
}

impl RunNotes {
    /// Whether the refresh may start again after losing its lease (at most
    /// [`MAX_LEASE_RESTARTS`] times, wherever it was lost), counting the restart if so.
    fn restart_after_losing_the_lease(&mut self) -> bool {
        let may = self.lease_restarts < MAX_LEASE_RESTARTS;
        self.lease_restarts += u8::from(may);
        may
    }
}

/// A pair the provider sent, being saved: dropped unfinished there (its task dropped with
/// the runtime that ran it, while the manager lives on in another), it is published unsaved
/// rather than lost with the task, its refresh token spent, as a set whose save failed is:
/// the next refresh saves it before spending its refresh token, and `shutdown` saves it.
/// Not during a panic, which the refresh handles itself (`save_as_sent`).
struct KeptIfDropped<'a, P: Provider> {
    inner: &'a Inner<P>,
    session: &'a Session<P::Extras>,
    generation: u64,
    started_from: Option<Ready<P::Extras>>,
    set: Option<Ready<P::Extras>>,
}

impl<'a, P: Provider> KeptIfDropped<'a, P> {
    fn new(
        inner: &'a Inner<P>,
        session: &'a Session<P::Extras>,
        generation: u64,
        started_from: Option<&Ready<P::Extras>>,
        set: &Ready<P::Extras>,
    ) -> Self {
        Self {
            inner,
            session,
            generation,
            started_from: started_from.cloned(),
            set: Some(set.clone()),
        }
    }

    /// The save answered: what it found decides.
    fn disarm(mut self) {
        self.set = None;
    }
}

impl<P: Provider> Drop for KeptIfDropped<'_, P> {
    fn drop(&mut self) {
        let Some(set) = self.set.take() else {
            return;
        };
        if std::thread::panicking() {
            return;
        }
        tracing::error!(
            "the refresh was dropped while saving the new token set; keeping it in memory"
        );
        let started_from = self.started_from.as_ref();
        (self.inner).publish_refreshed(self.session, self.generation, started_from, set);
    }
}

/// A provider call under way: dropped unanswered (its task dropped with the runtime that
/// ran it, while the manager lives on in another), the provider may have rotated the
/// refresh token it presented, so that token is asked for again inside the reuse window,
/// as after an answer lost in transit (by the next failed refresh, or by `shutdown`).
struct AskedIfDropped<'a, P: Provider> {
    inner: &'a Inner<P>,
    session: &'a Session<P::Extras>,
    /// `None` once answered (or for a grant of the client's own, which spends nothing).
    presented: Option<&'a RefreshToken>,
    sent: tokio::time::Instant,
}

impl<P: Provider> AskedIfDropped<'_, P> {
    /// The call answered (or timed out, or panicked): the refresh decides.
    fn disarm(mut self) {
        self.presented = None;
    }
}

impl<P: Provider> Drop for AskedIfDropped<'_, P> {
    fn drop(&mut self) {
        if let Some(token) = self.presented.take() {
            (self.inner).ask_again_later(self.session, token, self.sent);
        }
    }
}

/// Held by the task that asks again for a lost pair: dropped before the task ends (with
/// the runtime that ran it), it lets the next call of `resolve_later` start another.
struct ResolvingDropped<X>(Option<Arc<Session<X>>>);

impl<X> Drop for ResolvingDropped<X> {
    fn drop(&mut self) {
        if let Some(session) = self.0.take() {
            session.resolving_dropped();
        }
    }
}

/// A future's output, or `Err` if polling it panicked (the sandbox answers a handler's
/// panic with it too).
pub(crate) struct CatchUnwind<F>(pub(crate) Pin<Box<F>>);

impl<F: Future> Future for CatchUnwind<F> {
    type Output = Result<F::Output, ()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Ready(output)) => Poll::Ready(Ok(output)),
            Ok(Poll::Pending) => Poll::Pending,
            Err(_) => Poll::Ready(Err(())),
        }
    }
}
