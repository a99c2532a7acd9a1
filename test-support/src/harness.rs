//! A manager over a running sandbox: the clock the tests start at, the manager configuration
//! they share, a first pair issued by the sandbox, and whether its issuer takes a token.

use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use time::OffsetDateTime;
use time::macros::datetime;
use token_core::manager::TokenManagerBuilder;
use token_core::sandbox::RunningSandbox;
use token_core::{
    clock::Clock, clock::ManualClock, clock::TokioClock, manager::ManagerConfig,
    manager::RetryPolicy, manager::TokenManager, provider::Provider, secret::AccessToken,
    token_set::Extras, token_set::TokenSet,
};

/// Where every test clock starts: 2026-01-01 00:00 UTC.
pub const START: OffsetDateTime = datetime!(2026-01-01 00:00 UTC);

/// A clock on tokio's clock from [`START`]: with a paused runtime, `tokio::time::advance`
/// moves it, and so do the manager's sleeps (backoff, `Retry-After`).
pub fn paused_clock() -> Arc<dyn Clock> {
    Arc::new(TokioClock::starting_at(START))
}

/// A clock that moves only when told, from [`START`], for tests on real time.
pub fn manual_clock() -> ManualClock {
    ManualClock::new(START)
}

/// What the tests' managers share: refresh 60 seconds ahead of expiry (up to 10 seconds
/// earlier, spread), retries backing off from 200 ms to 5 s.
pub fn manager_config() -> ManagerConfig {
    ManagerConfig::default()
        .with_refresh_skew(Duration::from_secs(60), Duration::from_secs(10))
        .with_retry(
            RetryPolicy::default().with_backoff(Duration::from_millis(200), Duration::from_secs(5)),
        )
}

/// A builder of a manager over `provider` that calls `sandbox` in process, on `clock`, with
/// [`manager_config`], for a test to add to (a store, an event hook).
pub fn builder<P: Provider>(
    provider: P,
    sandbox: &RunningSandbox,
    clock: &Arc<dyn Clock>,
) -> TokenManagerBuilder<P> {
    TokenManager::builder(provider)
        .shared_client(sandbox.client())
        .clock(clock.clone())
        .config(manager_config())
}

/// A manager over `provider` that calls `sandbox` in process, on `clock`, with
/// [`manager_config`] and a memory store.
pub fn manager<P: Provider>(
    provider: P,
    sandbox: &RunningSandbox,
    clock: &Arc<dyn Clock>,
) -> TokenManager<P> {
    builder(provider, sandbox, clock)
        .build()
        .expect("the manager builds")
}

/// A first pair the sandbox issues for `session` carrying `extras` (as after a login), as
/// the provider's token set.
pub async fn issued<E: Extras>(
    sandbox: &RunningSandbox,
    session: &str,
    extras: Value,
) -> TokenSet<E> {
    let stored = sandbox
        .issue_with(session, extras)
        .await
        .expect("the issuer issues");
    TokenSet::from_stored(stored).expect("the extras fit the provider")
}

/// Has the sandbox issue a first pair for `session` carrying `extras` ([`issued`]) and
/// inserts it into `manager`; returns the pair.
pub async fn seed<P: Provider>(
    manager: &TokenManager<P>,
    sandbox: &RunningSandbox,
    session: &str,
    extras: Value,
) -> TokenSet<P::Extras> {
    let set = issued(sandbox, session, extras).await;
    manager
        .insert(session, set.clone())
        .await
        .expect("the manager keeps the pair");
    set
}

/// Whether the sandbox's issuer takes `token` (a good token of a live pair).
pub async fn accepted(sandbox: &RunningSandbox, token: &AccessToken) -> bool {
    sandbox
        .issuer()
        .authenticate(token.expose_secret())
        .await
        .is_ok()
}
