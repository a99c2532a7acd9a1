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

/// A sandbox whose issuer has no reuse window, on a manual clock, a directory, and a
/// manager on it holding session `shared`, just issued.
async fn one_session_without_reuse() -> (
    ManualClock,
    RunningSandbox,
    tempfile::TempDir,
    TokenManager<SandboxOAuth>,
) {
    let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
    let sandbox = Sandbox::builder()
        .clock(Arc::new(clock.clone()) as Arc<dyn Clock>)
        .issuer_config(IssuerConfig::default().with_reuse_window(Duration::ZERO))
        .start()
        .await
        .unwrap();
    let tmp = tempfile::TempDir::new().unwrap();
    let a = manager(&sandbox, &clock, tmp.path());
    let first = sandbox.issue("shared").await.unwrap();
    a.insert("shared", TokenSet::from_stored(first).unwrap())
        .await
        .unwrap();
    (clock, sandbox, tmp, a)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_managers_on_one_directory_refresh_each_expiry_once() {
    // No reuse window: a refresh token sent twice is refused, and a second refresh would
    // show up as a second call or as a re-auth.
    let (clock, sandbox, tmp, a) = one_session_without_reuse().await;
    let b = manager(&sandbox, &clock, tmp.path());

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

/// The store's directory restored from a backup taken before the last refresh (its record
/// holds the refresh token that refresh spent): the manager that saved the newer pair keeps
/// it, writes it back, and refreshes it, rather than take the spent token from the backup
/// and lose the session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_record_restored_from_a_backup_does_not_cost_the_pair_saved_since() {
    let (clock, sandbox, tmp, a) = one_session_without_reuse().await;
    let record = std::fs::read_dir(tmp.path())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .find(|path| path.extension().is_some_and(|ext| ext == "json"))
        .unwrap();
    let backup = std::fs::read(&record).unwrap();
    clock.advance(time::Duration::hours(2));
    a.access_token("shared").await.unwrap();
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
    std::fs::write(&record, &backup).unwrap();
    clock.advance(time::Duration::hours(2));
    let token = a.access_token("shared").await;
    assert!(token.is_ok(), "{token:?}");
    assert_eq!(sandbox.calls(TOKEN_PATH), 2);
    // Another process reads what the first wrote back, and refreshed.
    let b = manager(&sandbox, &clock, tmp.path());
    assert_eq!(
        b.access_token("shared").await.unwrap().expose_secret(),
        token.unwrap().expose_secret()
    );
}
