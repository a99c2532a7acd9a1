//! Randomness from the operating system (`getrandom`, the source uuid already uses): secret
//! bytes for tokens and PKCE verifiers, and jitter.

use std::time::Duration;

/// `N` bytes from the operating system's cryptographic random number generator.
///
/// # Panics
/// If the operating system has no random number generator to give (no secret can be made
/// without one).
pub(crate) fn bytes<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random number generator failed");
    bytes
}

/// A duration from zero to `max`, both included, at nanosecond resolution (for jitter).
///
/// Not for secrets: the draws come from a per-thread generator (SplitMix64) seeded once from
/// the operating system, so a jitter costs a few nanoseconds, not a system call (every
/// `insert` and every refresh draws one).
pub(crate) fn up_to(max: Duration) -> Duration {
    let max = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if max == 0 {
        return Duration::ZERO;
    }
    // The draw scaled to 0..=max by a multiplication, not a division (a 64-bit division
    // costs more than the rest of the draw); its bias is at most max / 2^64: nothing for
    // jitter.
    let scaled = (u128::from(next_u64()) * (u128::from(max) + 1)) >> 64;
    Duration::from_nanos(u64::try_from(scaled).unwrap_or(max))
}

/// The next draw of this thread's generator (SplitMix64: every seed gives a full period
/// of 2^64 well-mixed values).
fn next_u64() -> u64 {
    use std::cell::Cell;
    thread_local! {
        static STATE: Cell<u64> = Cell::new(u64::from_le_bytes(bytes()));
    }
    STATE.with(|state| {
        let next = state.get().wrapping_add(0x9E37_79B9_7F4A_7C15);
        state.set(next);
        let mut z = next;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_stays_in_range_and_varies() {
        assert_eq!(up_to(Duration::ZERO), Duration::ZERO);
        let max = Duration::from_millis(10);
        let draws: Vec<_> = (0..64).map(|_| up_to(max)).collect();
        assert!(draws.iter().all(|d| *d <= max));
        assert!(draws.iter().any(|d| *d != draws[0]), "not constant");
        // Both halves of the range, and both ends of the smallest one (each fails once in
        // 2^63 runs).
        assert!(draws.iter().any(|d| *d < max / 2) && draws.iter().any(|d| *d > max / 2));
        let one = Duration::from_nanos(1);
        let tiny: Vec<_> = (0..64).map(|_| up_to(one)).collect();
        assert!(tiny.contains(&Duration::ZERO) && tiny.contains(&one));
        assert!(up_to(Duration::MAX) <= Duration::MAX);
    }

    #[test]
    fn bytes_differ() {
        assert_ne!(bytes::<32>(), bytes::<32>());
    }
}
