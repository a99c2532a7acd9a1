//! When to try again: exponential backoff with jitter, bounded by attempts and a deadline.
//!
//! Whether a failure is worth another call is decided by its [`ErrorKind`] in one pure
//! function ([`decide`]); the policy decides how long to wait.

use std::time::Duration;

use crate::error::ErrorKind;

/// Backoff and bounds for retrying a refresh. A set the store refused is saved again in
/// the background after the same backoff, kept between a tenth of a second and a third of
/// [`lease_ttl`](super::ManagerConfig::lease_ttl).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// Calls at most, the first included.
    pub max_attempts: u32,
    /// The wait before the second call; doubled for each further call.
    pub initial_backoff: Duration,
    /// The longest wait between calls (a longer `Retry-After` is honoured up to `deadline`).
    pub max_backoff: Duration,
    /// No call starts later than this after the first.
    pub deadline: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
            deadline: Duration::from_secs(60),
        }
    }
}

impl RetryPolicy {
    /// A policy that never retries.
    pub fn never() -> Self {
        Self {
            max_attempts: 1,
            ..Self::default()
        }
    }

    /// Sets the attempt bound.
    pub fn with_max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts.max(1);
        self
    }

    /// Sets the first and the longest wait.
    pub fn with_backoff(mut self, initial: Duration, max: Duration) -> Self {
        self.initial_backoff = initial;
        self.max_backoff = max.max(initial);
        self
    }

    /// Sets the deadline.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// The wait after failed call number `attempt` (1-based): "equal jitter" exponential
    /// backoff (half fixed, half random, so waits never collapse to zero), or the provider's
    /// `Retry-After` when it asked for longer.
    pub fn backoff(&self, attempt: u32, retry_after: Option<Duration>) -> Duration {
        let exp = self
            .initial_backoff
            .saturating_mul(2u32.saturating_pow(attempt.saturating_sub(1)))
            .min(self.max_backoff);
        let half = exp / 2;
        let jittered = half + crate::random::up_to(half);
        match retry_after {
            Some(asked) if asked > jittered => asked,
            _ => jittered,
        }
    }
}

/// What to do after a failed call.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Decision {
    /// Call again after the backoff (if the attempt and time bounds allow).
    Retry,
    /// The refresh was refused, but the provider can issue a new set with the client's own
    /// credentials: do that.
    Issue,
    /// Stop: the failure is the answer.
    GiveUp,
}

/// Whether a failure of `kind` is worth another call: transient failures always; a lost
/// answer when issuing (always safe) or while the next call would still fall inside the
/// provider's reuse window (the provider then answers the same refresh token with the same
/// pair); a refused refresh by issuing anew when the provider can, whether the refusal says
/// the refresh token is dead or is one the provider does not explain (a gateway's or a
/// framework's default body): issuing costs one call and gives up nothing, where giving up
/// would present the same dead pair at every call. Nothing else: 4xx answers are verdicts.
pub(crate) fn decide(
    kind: ErrorKind,
    issuing: bool,
    can_issue: bool,
    next_call_at: Duration,
    reuse_window: Duration,
) -> Decision {
    match kind {
        ErrorKind::Transient => Decision::Retry,
        ErrorKind::OutcomeUnknown if issuing || next_call_at < reuse_window => Decision::Retry,
        ErrorKind::ReauthRequired | ErrorKind::Rejected if !issuing && can_issue => Decision::Issue,
        _ => Decision::GiveUp,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_decision_table() {
        use Decision::*;
        use ErrorKind::*;
        let s = Duration::from_secs;
        // (kind, issuing, can_issue, next call at, reuse window) -> decision
        let table = [
            (Transient, false, false, s(1), s(0), Retry),
            (Transient, true, true, s(100), s(0), Retry),
            (OutcomeUnknown, false, false, s(1), s(0), GiveUp),
            (OutcomeUnknown, false, false, s(1), s(300), Retry),
            (OutcomeUnknown, false, false, s(300), s(300), GiveUp),
            (OutcomeUnknown, true, true, s(1), s(0), Retry),
            (ReauthRequired, false, false, s(1), s(300), GiveUp),
            (ReauthRequired, false, true, s(1), s(0), Issue),
            (ReauthRequired, true, true, s(1), s(0), GiveUp),
            (Misconfigured, false, true, s(1), s(300), GiveUp),
            (Rejected, false, true, s(1), s(300), Issue),
            (Rejected, true, true, s(1), s(0), GiveUp),
            (Rejected, false, false, s(1), s(300), GiveUp),
        ];
        for (kind, issuing, can_issue, at, window, expected) in table {
            assert_eq!(
                decide(kind, issuing, can_issue, at, window),
                expected,
                "{kind:?} issuing={issuing} can_issue={can_issue} at={at:?} window={window:?}"
            );
        }
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let policy =
            RetryPolicy::default().with_backoff(Duration::from_millis(100), Duration::from_secs(1));
        for _ in 0..100 {
            let first = policy.backoff(1, None);
            assert!(
                (Duration::from_millis(50)..=Duration::from_millis(100)).contains(&first),
                "{first:?}"
            );
            let third = policy.backoff(3, None);
            assert!(
                (Duration::from_millis(200)..=Duration::from_millis(400)).contains(&third),
                "{third:?}"
            );
            let capped = policy.backoff(30, None);
            assert!(capped <= Duration::from_secs(1), "{capped:?}");
        }
        assert_eq!(
            policy.backoff(1, Some(Duration::from_secs(7))),
            Duration::from_secs(7)
        );
    }
}
