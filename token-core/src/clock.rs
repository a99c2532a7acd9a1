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

    /// Unix nanoseconds no earlier than what [`now`](Self::now) returns at this instant,
    /// read as cheaply as the clock allows.
    ///
    /// The manager's fast path compares a token's precomputed "fresh until" with it: a
    /// reading that is a little late only sends that call on to the exact check with `now`,
    /// so it never serves a token longer. The default is `now()` itself.
    fn now_nanos_at_least(&self) -> i64 {
        unix_nanos(self.now())
    }
}

/// `at` as Unix nanoseconds, saturating at the bounds of `i64` (years 1677 and 2262).
pub(crate) fn unix_nanos(at: OffsetDateTime) -> i64 {
    at.unix_timestamp_nanos()
        .clamp(i64::MIN as i128, i64::MAX as i128) as i64
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

    fn now_nanos_at_least(&self) -> i64 {
        (**self).now_nanos_at_least()
    }
}

/// The operating system's clock.
///
/// On Linux its [`now_nanos_at_least`](Clock::now_nanos_at_least) reads the kernel's coarse
/// clock (`CLOCK_REALTIME_COARSE`, a few ns through the vDSO, against about 25 ns for the
/// exact clock and 50 to 80 ns for an `OffsetDateTime`) and adds the coarse clock's
/// resolution (one kernel tick, 1 to 10 ms) and a slack of 50 ms, so the reading is an
/// upper bound of the exact time unless the kernel's timekeeping runs more than 50 ms late
/// (on a loaded VM the coarse clock was seen a quarter of a millisecond past its tick): a
/// token is not served from the fast path past its refresh instant; in the last 50 ms or
/// so before it, calls take the exact check instead.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }

    #[cfg(any(target_os = "linux", target_os = "android"))]
    fn now_nanos_at_least(&self) -> i64 {
        coarse::now_at_least()
    }
}

/// The kernel's coarse wall clock plus its resolution.
#[cfg(any(target_os = "linux", target_os = "android"))]
mod coarse {
    use std::sync::atomic::{AtomicI64, Ordering};

    use rustix::time::{ClockId, Timespec, clock_getres, clock_gettime};

    /// The coarse clock's resolution plus the slack, in ns; 0 until first asked.
    static AHEAD: AtomicI64 = AtomicI64::new(0);

    /// Beyond one tick: how late the kernel's timekeeping may run.
    const SLACK: i64 = 50_000_000;

    fn nanos(t: Timespec) -> i64 {
        t.tv_sec
            .saturating_mul(1_000_000_000)
            .saturating_add(t.tv_nsec)
    }

    pub(super) fn now_at_least() -> i64 {
        let mut ahead = AHEAD.load(Ordering::Relaxed);
        if ahead == 0 {
            // A resolution of at least 1 ms and at most 100 ms, whatever the kernel says: a
            // coarse clock is never finer than a tick, and a wild value must not send every
            // call to the exact check.
            let resolution =
                nanos(clock_getres(ClockId::RealtimeCoarse)).clamp(1_000_000, 100_000_000);
            ahead = resolution + SLACK;
            AHEAD.store(ahead, Ordering::Relaxed);
        }
        nanos(clock_gettime(ClockId::RealtimeCoarse)).saturating_add(ahead)
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
        // Saturating at the last instant `time` holds: a paused clock advanced that far
        // must not panic every caller.
        (Duration::try_from(self.start.elapsed()).ok())
            .and_then(|elapsed| self.wall.checked_add(elapsed))
            .unwrap_or(LAST_INSTANT)
    }
}

/// The last whole second an `OffsetDateTime` holds (in UTC, without `time`'s `large-dates`
/// feature), as the manager's own saturating arithmetic has it.
const LAST_INSTANT: OffsetDateTime =
    crate::expiry::utc(9999, time::Month::December, 31, (23, 59, 59));

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

    /// Moves the clock forward (or back, with a negative duration), stopping at the ends
    /// of the range it holds (the Unix epoch, and the year 2262), as [`new`](Self::new)
    /// and [`set`](Self::set) do.
    pub fn advance(&self, by: impl Into<Duration>) {
        let by = by.into().whole_nanoseconds();
        // Saturating, not wrapping: a clock moved past 2262 must not read as 1741.
        let _ = (self.unix_nanos).fetch_update(Ordering::SeqCst, Ordering::SeqCst, |at| {
            Some((i128::from(at).saturating_add(by)).clamp(0, i128::from(i64::MAX)) as i64)
        });
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

    fn now_nanos_at_least(&self) -> i64 {
        self.unix_nanos.load(Ordering::SeqCst)
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

    #[test]
    fn a_manual_clock_moved_by_centuries_saturates_rather_than_wraps() {
        let start = datetime!(2026-01-01 00:00 UTC);
        let clock = ManualClock::new(start);
        // Three centuries on: past what Unix nanoseconds in an `i64` hold (2262).
        clock.advance(Duration::days(300 * 365));
        assert!(clock.now() > start, "{}", clock.now());
        assert_eq!(clock.now_nanos_at_least(), i64::MAX);
        clock.advance(Duration::MAX);
        assert_eq!(clock.now_nanos_at_least(), i64::MAX);
        // And back, below the epoch: no earlier than `new` and `set` allow.
        clock.set(start);
        clock.advance(Duration::MIN);
        assert_eq!(clock.now(), OffsetDateTime::UNIX_EPOCH);
        assert_eq!(clock.now_nanos_at_least(), 0);
        clock.advance(Duration::minutes(5));
        assert_eq!(clock.now(), datetime!(1970-01-01 00:05 UTC));
    }

    #[test]
    fn every_clock_reads_an_upper_bound_of_now() {
        let manual = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
        assert_eq!(manual.now_nanos_at_least(), unix_nanos(manual.now()));
        let system: Arc<dyn Clock> = Arc::new(SystemClock);
        for _ in 0..1000 {
            let before = unix_nanos(system.now());
            let bound = system.now_nanos_at_least();
            let after = unix_nanos(system.now());
            assert!(bound >= before, "{bound} < {before}");
            // Never more than the largest resolution and the slack ahead.
            assert!(bound <= after + 200_000_000, "{bound} far past {after}");
        }
        assert_eq!(unix_nanos(OffsetDateTime::UNIX_EPOCH), 0);
        assert_eq!(unix_nanos(datetime!(9999-01-01 00:00 UTC)), i64::MAX);
        assert_eq!(unix_nanos(datetime!(-9999-01-01 00:00 UTC)), i64::MIN);
    }

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_run_past_the_last_instant_saturates_rather_than_panics() {
        let clock = TokioClock::starting_at(datetime!(9999-12-31 23:59 UTC));
        tokio::time::advance(std::time::Duration::from_secs(120)).await;
        assert_eq!(clock.now(), datetime!(9999-12-31 23:59:59 UTC));
        assert_eq!(clock.now_nanos_at_least(), i64::MAX);
    }

    #[tokio::test(start_paused = true)]
    async fn tokio_clock_follows_paused_time() {
        let clock = TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC));
        tokio::time::advance(std::time::Duration::from_secs(90)).await;
        assert_eq!(clock.now(), datetime!(2026-01-01 00:01:30 UTC));
    }
}
