//! Single flight: at most one refresh per session in this process, run in its own task so
//! a cancelled caller never cancels it for the others, and cleared on every exit path.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio::sync::watch;
use tracing::Instrument;

use super::Inner;
use super::session::{Flight, Outcome, Reason, Session};
use crate::error::{AbortReason, Error};
use crate::provider::Provider;

static NEXT_FLIGHT: AtomicU64 = AtomicU64::new(1);

/// The refreshes a caller waits for at most ([`Inner::flight`]).
const MAX_TURNS: usize = 4;

/// Owns a flight's answer channel. Dropped without an answer (the refresh panicked, or its
/// task was cancelled at shutdown) it frees the slot and answers the waiters with
/// [`Error::RefreshAborted`], so the next call starts a new refresh.
struct FlightGuard<X> {
    session: Arc<Session<X>>,
    id: u64,
    tx: Option<watch::Sender<Option<Outcome<X>>>>,
}

impl<X> FlightGuard<X> {
    fn finish(mut self, outcome: Outcome<X>) {
        self.answer(outcome);
    }

    fn answer(&mut self, outcome: Outcome<X>) {
        // Free the slot before waking the waiters, so a caller that finds no flight also
        // finds the new state.
        {
            let mut slot = self.session.flight_slot();
            if slot.as_ref().is_some_and(|flight| flight.id == self.id) {
                slot.take();
            }
        }
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Some(outcome));
        }
    }
}

impl<X> Drop for FlightGuard<X> {
    fn drop(&mut self) {
        if self.tx.is_some() {
            // Dropped during an unwind: a panic the refresh's own catch did not see.
            let reason = if std::thread::panicking() {
                AbortReason::Panicked
            } else {
                AbortReason::Cancelled
            };
            tracing::error!("the refresh ended without an answer: {reason}");
            self.answer(Err(Error::RefreshAborted(reason)));
        }
    }
}

impl<P: Provider> Inner<P> {
    /// Joins the refresh under way for `session`, or starts one in its own task.
    pub(super) fn start_flight(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        reason: Reason,
    ) -> watch::Receiver<Option<Outcome<P::Extras>>> {
        self.join_or_start(session, reason).0
    }

    /// As [`start_flight`](Self::start_flight), and whether the refresh is the asking for a
    /// pair lost in transit.
    fn join_or_start(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        reason: Reason,
    ) -> (watch::Receiver<Option<Outcome<P::Extras>>>, bool) {
        let mut slot = session.flight_slot();
        if let Some(running) = slot.as_ref() {
            return (running.rx.clone(), running.asking);
        }
        // Counted among the tracked tasks before the tracker is looked at, until the refresh's
        // own task is: a `shutdown` that closes the tracker after this look waits for the
        // refresh, and one that closed it before is seen here. Otherwise a refresh could
        // start after `shutdown` returned `Ok` (nothing running), and the process exit with
        // the pair it rotated to unsaved. Once `shutdown` began, only the last ask for a pair
        // whose answer was lost starts (see `resolve_later`: from a tracked task, so before
        // `shutdown` can return).
        let _tracked = self.tasks.token();
        if (self.closing() || self.tasks.is_closed()) && !matches!(reason, Reason::Unresolved(_)) {
            return (watch::channel(Some(Err(Error::ShuttingDown))).1, false);
        }
        if let Err(error) = super::in_runtime() {
            return (watch::channel(Some(Err(error))).1, false);
        }
        self.start_scanning();
        let id = NEXT_FLIGHT.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = watch::channel(None);
        let asking = matches!(reason, Reason::Unresolved(_));
        *slot = Some(Flight {
            id,
            rx: rx.clone(),
            asking,
        });
        drop(slot);
        let guard = FlightGuard {
            session: session.clone(),
            id,
            tx: Some(tx),
        };
        let inner = self.clone();
        let session = session.clone();
        let span = tracing::info_span!(
            "token_refresh",
            provider = %self.provider.name(),
            session = %crate::redact::Printable(session.name()),
            reason = reason.as_str(),
        );
        self.tasks.spawn(super::lease::Counted::scope(
            None,
            async move {
                let outcome = inner.run(&session, reason).await;
                let failed = outcome.as_ref().err().cloned();
                guard.finish(outcome);
                // Its callers may all have given up: a session found without tokens (or
                // never loaded) leaves the map here too, not only when a caller reads the
                // answer.
                if let Some(error) = failed {
                    inner.forget_after(&session, &error);
                }
            }
            .instrument(span),
        ));
        (rx, asking)
    }

    /// Starts or joins a refresh and waits for its answer.
    pub(super) async fn flight(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        reason: Reason,
    ) -> Outcome<P::Extras> {
        // Refreshes of our own reason after the first, at most one; each refresh joined that
        // was the asking for a lost pair is one more turn (a few at most).
        let (mut own, mut turns) = (0, 0);
        loop {
            let (rx, asking) = self.join_or_start(session, reason.clone());
            let outcome = self.wait(rx).await;
            turns += 1;
            own += usize::from(!asking);
            let again = match (&reason, &outcome) {
                // The asking for a lost pair needs no usable token: it takes what it got.
                (Reason::Unresolved(_), _) => false,
                // The asking's failure, joined, may be the replaced tokens' (an insert
                // meanwhile; the asking answers it as it is): our own refresh decides, and
                // answers a failure it remembers without calling again.
                (_, Err(_)) if asking => true,
                // A refresh that an insert overtook answers with the inserted set, which may
                // have no usable token (the placeholder of `insert_refresh_token`), and the
                // asking for a lost pair, joined, with whatever set it ended with (one whose
                // access token another process set aside, adopted): run one of our own.
                (_, Ok(current)) if !current.usable(self.clock.now()) => true,
                // A refusal of the very token a refresh under way (started for another
                // reason) has just produced is not answered by that refresh: run one of our
                // own.
                (Reason::Rejected(rejected), Ok(current)) => {
                    current.access_token() == rejected
                        && !current.after_rejection(self.clock.now(), self.config.failure_cooldown)
                }
                _ => false,
            };
            if !again || own >= 2 || turns >= MAX_TURNS {
                return match outcome {
                    // Never the placeholder of a set whose access token was set aside (or of
                    // `insert_refresh_token`): a caller asked for a token to send.
                    Ok(current)
                        if current.access_token().expose_secret().is_empty()
                            && !matches!(reason, Reason::Unresolved(_)) =>
                    {
                        Err(Error::RefreshAborted(AbortReason::NoAccessToken))
                    }
                    outcome => outcome,
                };
            }
        }
    }

    async fn wait(
        &self,
        mut rx: watch::Receiver<Option<Outcome<P::Extras>>>,
    ) -> Outcome<P::Extras> {
        let outcome = match rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        outcome.unwrap_or(Err(Error::RefreshAborted(AbortReason::Cancelled)))
    }
}
