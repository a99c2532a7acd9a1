//! Two managers, each with its own `FileStore` on one directory (as two processes on one
//! machine would have), refreshing the same sessions: the issuer's call count is the evidence.

use std::sync::Arc;
use std::time::Duration;

use time::macros::datetime;
use token_core::issuer::IssuerConfig;
use token_core::oauth::TOKEN_PATH;
use token_core::sandbox::{RunningSandbox, Sandbox, SandboxOAuth};
use token_core::{
    clock::Clock, clock::ManualClock, manager::ManagerConfig, manager::TokenManager,
    store::FileStore, token_set::TokenSet,
};

fn manager(
    sandbox: &RunningSandbox,
    clock: &ManualClock,
    dir: &std::path::Path,
) -> TokenManager<SandboxOAuth> {
    TokenManager::builder(SandboxOAuth::new(sandbox.base_url()))
        .shared_client(sandbox.client())
        .clock(Arc::new(clock.clone()))
        // Its own store instance: its own OS lock handle, like another process.
        .store(FileStore::open(dir).unwrap())
        .config(ManagerConfig::default().with_lease_ttl(Duration::from_secs(30)))
        .build()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_on_one_directory_refresh_each_expiry_once() {
    let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
    // No reuse window: a refresh token sent twice is refused, and a second refresh would
    // show up as a second call or as a re-auth.
    let sandbox = Sandbox::builder()
        .clock(Arc::new(clock.clone()) as Arc<dyn Clock>)
        .issuer_config(IssuerConfig::default().with_reuse_window(Duration::ZERO))
        .start()
        .await
        .unwrap();
    let tmp = tempfile::TempDir::new().unwrap();
    let a = manager(&sandbox, &clock, tmp.path());
    let b = manager(&sandbox, &clock, tmp.path());
    let first = sandbox.issue("shared").await.unwrap();
    a.insert("shared", TokenSet::from_stored(first).unwrap())
        .await
        .unwrap();

    for round in 1..=10u64 {
        clock.advance(time::Duration::hours(2));
        let mut callers = tokio::task::JoinSet::new();
        for i in 0..8 {
            let manager = if i % 2 == 0 { a.clone() } else { b.clone() };
            callers.spawn(async move { manager.access_token("shared").await });
        }
        let mut tokens = std::collections::HashSet::new();
        while let Some(token) = callers.join_next().await {
            let token = token
                .unwrap()
                .unwrap_or_else(|e| panic!("round {round}: {e}"));
            tokens.insert(token.expose_secret().to_owned());
        }
        assert_eq!(
            tokens.len(),
            1,
            "round {round}: both managers use one new token"
        );
        assert_eq!(
            sandbox.calls(TOKEN_PATH),
            round,
            "round {round}: one refresh per expiry across both managers"
        );
    }
}
