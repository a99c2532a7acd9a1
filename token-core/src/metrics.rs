//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`).
//!
//! Install any `metrics` recorder (Prometheus, StatsD, ...) in the application; the managers
//! then report, labelled by `provider` (the provider's [`name`](crate::provider::Provider::name)) and
//! never by session or token:
//!
//! | name | type | labels | counts |
//! |---|---|---|---|
//! | [`REFRESHES`] | counter | `provider`, `outcome` = `refreshed`, `issued`, `adopted` | new sets: refreshed, issued anew, or taken from another process |
//! | [`FAILURES`] | counter | `provider`, `kind` = the [`ErrorKind`](crate::error::ErrorKind) in snake case | refreshes that failed |
//! | [`REAUTHS`] | counter | `provider` | sessions declared dead (re-auth required) |
//! | [`PERSIST_FAILURES`] | counter | `provider` | new sets that could not be saved at once |
//! | [`CACHE_HITS`] | counter | `provider` | `access_token` calls served by the fresh path, without a wait |
//! | [`CACHE_MISSES`] | counter | `provider` | `access_token` calls that loaded, waited for or refreshed the session |
//! | [`REFRESH_SECONDS`] | histogram | `provider`, `result` = `ok`, `error` | the provider calls of one refresh, retries included |
//!
//! Without a recorder each report is a no-op. The cache counters are registered when a
//! manager is built: install the recorder before building managers. A recorder that
//! panics as a refresh reports is ignored (and logged), like a panicking `on_event` hook:
//! the refresh and the saving of its pair go on.

use std::time::Duration;

use crate::manager::Event;

/// Counter of new sets.
pub const REFRESHES: &str = "token_refreshes_total";
/// Counter of failed refreshes.
pub const FAILURES: &str = "token_refresh_failures_total";
/// Counter of sessions that need the user to authorize again.
pub const REAUTHS: &str = "token_reauth_required_total";
/// Counter of new sets whose first save failed.
pub const PERSIST_FAILURES: &str = "token_persist_failures_total";
/// Counter of `access_token` calls served by the fresh path.
pub const CACHE_HITS: &str = "token_cache_hits_total";
/// Counter of `access_token` calls that had to load, wait for or refresh the session.
pub const CACHE_MISSES: &str = "token_cache_misses_total";
/// Histogram of the time a refresh spent calling the provider, in seconds.
pub const REFRESH_SECONDS: &str = "token_refresh_duration_seconds";

/// Reports `event` of a manager of `provider`.
pub(crate) fn record(provider: &str, event: &Event) {
    let provider = provider.to_owned();
    match event {
        Event::Refreshed { issued, .. } => {
            let outcome = if *issued { "issued" } else { "refreshed" };
            metrics::counter!(REFRESHES, "provider" => provider, "outcome" => outcome).increment(1);
        }
        Event::Adopted { .. } => {
            metrics::counter!(REFRESHES, "provider" => provider, "outcome" => "adopted")
                .increment(1);
        }
        Event::ReauthRequired(_) => {
            metrics::counter!(REAUTHS, "provider" => provider).increment(1);
        }
        Event::RefreshFailed { kind, .. } => {
            metrics::counter!(FAILURES, "provider" => provider, "kind" => kind.as_str())
                .increment(1);
        }
        Event::PersistFailed { .. } => {
            metrics::counter!(PERSIST_FAILURES, "provider" => provider).increment(1);
        }
        Event::Persisted { .. } | Event::ExpiryAdjusted { .. } | Event::ExtrasNotStored { .. } => {}
    }
}

/// Reports how long one refresh spent calling `provider`.
pub(crate) fn record_refresh(provider: &str, elapsed: Duration, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    metrics::histogram!(REFRESH_SECONDS, "provider" => provider.to_owned(), "result" => result)
        .record(elapsed.as_secs_f64());
}

/// The cache counters of one manager: registered once, so the hot path only adds to an
/// atomic.
pub(crate) struct CacheCounters {
    pub(crate) hits: metrics::Counter,
    pub(crate) misses: metrics::Counter,
}

impl CacheCounters {
    /// Registered with the installed recorder; counters that count nothing if it panics
    /// (the application's code: logged, and the manager is built all the same).
    pub(crate) fn new(provider: &str) -> Self {
        let register = |name: &'static str| {
            std::panic::catch_unwind(|| metrics::counter!(name, "provider" => provider.to_owned()))
                .unwrap_or_else(|_| {
                    tracing::error!(
                        "the metrics recorder panicked registering {name}; not counted"
                    );
                    metrics::Counter::noop()
                })
        };
        Self {
            hits: register(CACHE_HITS),
            misses: register(CACHE_MISSES),
        }
    }
}
