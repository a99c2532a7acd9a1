//! Where "now" comes from: the system clock, tokio's (pausable) clock, or a manual one.
//!
//! Expiry is wall-clock time, so every component that compares against it takes a [`Clock`].

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use time::{Duration, OffsetDateTime};

/// A source of the current wall-clock time.
pub trait Clock: Send + Sync + 'static {
    /// The current time.
    fn now(&self) -> OffsetDateTime;
}

impl fmt::Debug for dyn Clock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Clock({})", self.now())
    }
}

impl<C: Clock + ?Sized> Clock for Arc<C> {
    fn now(&self) -> OffsetDateTime {
        (**self).now()
    }
}

/// The operating system's clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// Wall time that follows tokio's clock: anchored to the system time when created, it then
/// advances with `tokio::time::Instant`, so `tokio::time::pause`/`advance` move it too.
#[derive(Clone, Copy, Debug)]
pub struct TokioClock {
    wall: OffsetDateTime,
    start: tokio::time::Instant,
}

impl TokioClock {
    /// Anchors at the current system time.
    pub fn new() -> Self {
        Self::starting_at(OffsetDateTime::now_utc())
    }

    /// Anchors at `wall`.
    pub fn starting_at(wall: OffsetDateTime) -> Self {
        Self {
            wall,
            start: tokio::time::Instant::now(),
        }
    }
}

impl Default for TokioClock {
    fn default() -> Self {
        Self::new()
    }
}

impl Clock for TokioClock {
    fn now(&self) -> OffsetDateTime {
        self.wall + self.start.elapsed()
    }
}

/// A clock that moves only when told to. Clones share the same time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    unix_nanos: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock stopped at `at`.
    pub fn new(at: OffsetDateTime) -> Self {
        Self {
            unix_nanos: Arc::new(AtomicI64::new(to_nanos(at))),
        }
    }

    /// Moves the clock forward (or back, with a negative duration).
    pub fn advance(&self, by: impl Into<Duration>) {
        let by = by.into().whole_nanoseconds() as i64;
        self.unix_nanos.fetch_add(by, Ordering::SeqCst);
    }

    /// Sets the clock to `at`.
    pub fn set(&self, at: OffsetDateTime) {
        self.unix_nanos.store(to_nanos(at), Ordering::SeqCst);
    }
}

impl Default for ManualClock {
    fn default() -> Self {
        Self::new(OffsetDateTime::now_utc())
    }
}

impl Clock for ManualClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp_nanos(self.unix_nanos.load(Ordering::SeqCst) as i128)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

fn to_nanos(at: OffsetDateTime) -> i64 {
    at.unix_timestamp_nanos().clamp(0, i64::MAX as i128) as i64
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn manual_clock_moves_only_when_told_and_clones_share_it() {
        let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
        let other = clock.clone();
        assert_eq!(clock.now(), datetime!(2026-01-01 00:00 UTC));
        other.advance(Duration::minutes(5));
        assert_eq!(clock.now(), datetime!(2026-01-01 00:05 UTC));
        clock.set(datetime!(2027-01-01 00:00 UTC));
        assert_eq!(other.now(), datetime!(2027-01-01 00:00 UTC));
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC));
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        assert_eq!(clock.now(), datetime!(2026-01-01 00:01:30 UTC));
    }
}
