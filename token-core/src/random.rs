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
pub(crate) fn up_to(max: Duration) -> Duration {
    let max = u64::try_from(max.as_nanos()).unwrap_or(u64::MAX);
    if max == 0 {
        return Duration::ZERO;
    }
    let draw = u64::from_le_bytes(bytes());
    // The modulo's bias is at most max / 2^64: nothing for jitter.
    Duration::from_nanos(draw % max.saturating_add(1).max(1))
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
        assert!(up_to(Duration::MAX) <= Duration::MAX);
    }

    #[test]
    fn bytes_differ() {
        assert_ne!(bytes::<32>(), bytes::<32>());
    }
}
