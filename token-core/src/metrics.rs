//! Metrics through the [`metrics`](https://docs.rs/metrics) facade (feature `metrics`).
//!
//! Install any `metrics` recorder (Prometheus, StatsD, ...) in the application; the managers
//! then report, labelled by `provider` (the provider's [`name`](crate::Provider::name)) and
//! never by session or token:
//!
//! | name | type | labels | counts |
//! |---|---|---|---|
//! | [`REFRESHES`] | counter | `provider`, `outcome` = `refreshed`, `issued`, `adopted` | new sets: refreshed, issued anew, or taken from another process |
//! | [`FAILURES`] | counter | `provider`, `kind` = the [`ErrorKind`](crate::ErrorKind) in snake case | refreshes that failed |
//! | [`REAUTHS`] | counter | `provider` | sessions declared dead (re-auth required) |
//! | [`PERSIST_FAILURES`] | counter | `provider` | new sets that could not be saved at once |
//! | [`REFRESH_SECONDS`] | histogram | `provider`, `result` = `ok`, `error` | the provider calls of one refresh, retries included |
//!
//! Without a recorder each report is a no-op.

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
        Event::Persisted { .. } | Event::ExpiryAdjusted { .. } => {}
    }
}

/// Reports how long one refresh spent calling `provider`.
pub(crate) fn record_refresh(provider: &str, elapsed: Duration, ok: bool) {
    let result = if ok { "ok" } else { "error" };
    metrics::histogram!(REFRESH_SECONDS, "provider" => provider.to_owned(), "result" => result)
        .record(elapsed.as_secs_f64());
}
