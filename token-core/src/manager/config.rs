//! The manager's settings: when to refresh, how to retry, how long a lease lasts.

use std::time::Duration;

use super::RetryPolicy;

/// When to refresh, how to retry, how long a cross-process lease lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// Refresh this long before the access token expires, or at half its remaining life
    /// when that comes later (a token that lives less than twice the skew is refreshed
    /// halfway, not at once and again after every answer).
    pub refresh_skew: Duration,
    /// Refresh up to this much earlier again, chosen at random per token set, so sessions
    /// issued together do not all refresh in the same instant.
    pub skew_jitter: Duration,
    /// Refresh this long before the refresh token expires (at most half its remaining life
    /// ahead), if the session is in use then. A refresh token a provider answers as already
    /// expired schedules no refresh of its own (refreshing cannot renew it).
    pub refresh_token_skew: Duration,
    /// Backoff and bounds for retrying a failed refresh.
    pub retry: RetryPolicy,
    /// How long a refresh lease is held in a store shared by several processes. The holder
    /// renews it every third of this while its refresh runs, and until the new set is saved.
    /// Give every process sharing a store the same value: one that takes over a lapsed lease
    /// waits its own `lease_ttl` for the dead holder's save, so a process with a shorter one
    /// may stop watching before a holder with a longer one could have saved.
    pub lease_ttl: Duration,
    /// After a failed ahead-of-expiry refresh, wait this long before trying again (the
    /// current token is still valid meanwhile). Also how often a session declared dead is
    /// looked up in the store again (another process may have inserted new tokens).
    pub failure_cooldown: Duration,
    /// The shortest time from a refresh to the next one it schedules, whatever the answer's
    /// expiry says: a provider that answers with a token that is already expired (or that
    /// lives less than this) is not asked again at once. An answer already expired, or
    /// expiring within a second, is used for this long, and saved with that expiry (so that
    /// the other processes sharing the store use it too, rather than refresh it again). At
    /// least one second (a [`Config`](crate::error::Error::Config) error at build).
    pub min_refresh_interval: Duration,
    /// The access-token lifetime assumed when the provider's answer gives none (or one that
    /// cannot be read); `None`: such a token is used until the API refuses it.
    pub default_access_lifetime: Option<Duration>,
    /// After this many failed attempts to save a set in the background, `PersistFailed` is
    /// reported again (the attempts go on, the lease kept, until the set is saved).
    pub save_retries: u32,
    /// The longest one provider call may take, whatever the transport's own timeouts; past
    /// it the call's outcome is unknown (the provider may have rotated). Not zero (a
    /// [`Config`](crate::error::Error::Config) error at build).
    pub call_timeout: Duration,
    /// The longest one store call may take (a database that does not answer, a file on a
    /// hung network volume); past it the call fails with [`StoreError`](crate::error::StoreError)
    /// and is treated as any store failure. A `MemoryStore` never waits.
    pub store_timeout: Duration,
    /// Whether to look for refresh leases that lapsed unreleased in the store, every
    /// `lease_ttl`, and take each over ([`TokenStore::lapsed_leases`](crate::store::TokenStore::lapsed_leases)):
    /// its holder died or lost the store mid-refresh, and may have spent the stored refresh
    /// token, whose successor only a presentation inside the provider's reuse window gets
    /// back. Without it, a death during the refresh of a session whose access token is still
    /// fresh (a `refresh_now`, a 401) is noticed at that session's next refresh, which may
    /// come after the window. On by default; only for a provider with a reuse window.
    pub lapsed_lease_scan: bool,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            refresh_skew: Duration::from_secs(60),
            skew_jitter: Duration::from_secs(30),
            refresh_token_skew: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            lease_ttl: Duration::from_secs(30),
            failure_cooldown: Duration::from_secs(5),
            min_refresh_interval: Duration::from_secs(10),
            default_access_lifetime: None,
            save_retries: 30,
            call_timeout: Duration::from_secs(60),
            store_timeout: Duration::from_secs(30),
            lapsed_lease_scan: true,
        }
    }
}

impl ManagerConfig {
    /// Sets the skew and its jitter.
    pub fn with_refresh_skew(mut self, skew: Duration, jitter: Duration) -> Self {
        self.refresh_skew = skew;
        self.skew_jitter = jitter;
        self
    }

    /// Sets how long before refresh-token expiry a session in use is refreshed.
    pub fn with_refresh_token_skew(mut self, skew: Duration) -> Self {
        self.refresh_token_skew = skew;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets whether lapsed leases are looked for ([`lapsed_lease_scan`](Self::lapsed_lease_scan)).
    pub fn with_lapsed_lease_scan(mut self, scan: bool) -> Self {
        self.lapsed_lease_scan = scan;
        self
    }

    /// Sets the lease length (at least one second).
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl.max(Duration::from_secs(1));
        self
    }

    /// Sets the cooldown after a failed ahead-of-expiry refresh.
    pub fn with_failure_cooldown(mut self, cooldown: Duration) -> Self {
        self.failure_cooldown = cooldown;
        self
    }

    /// Sets the shortest time between refreshes answered with an already expired token.
    pub fn with_min_refresh_interval(mut self, interval: Duration) -> Self {
        self.min_refresh_interval = interval;
        self
    }

    /// Sets the lifetime assumed for an access token whose expiry the provider did not give.
    pub fn with_default_access_lifetime(mut self, lifetime: Option<Duration>) -> Self {
        self.default_access_lifetime = lifetime;
        self
    }

    /// Sets how many times a failed save is retried in the background.
    pub fn with_save_retries(mut self, retries: u32) -> Self {
        self.save_retries = retries;
        self
    }

    /// Sets the longest time one provider call may take.
    pub fn with_call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Sets the longest time one store call may take.
    pub fn with_store_timeout(mut self, timeout: Duration) -> Self {
        self.store_timeout = timeout;
        self
    }

    /// How often a held lease is renewed.
    pub(super) fn heartbeat(&self) -> Duration {
        (self.lease_ttl / 3).max(Duration::from_millis(100))
    }
}
