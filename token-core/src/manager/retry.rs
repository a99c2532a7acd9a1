//! When to try again: exponential backoff with jitter, bounded by attempts and a deadline.
//!
//! Whether a failure is worth retrying is decided by its [`ErrorKind`](crate::ErrorKind);
//! this module only decides how long to wait.

use std::time::Duration;

use rand::Rng;

/// Backoff and bounds for retrying a refresh.
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
        let jittered = half + rand::rng().random_range(Duration::ZERO..=half);
        match retry_after {
            Some(asked) if asked > jittered => asked,
            _ => jittered,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
