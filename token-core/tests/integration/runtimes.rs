//! A manager on the real reqwest transport, used from runtimes other than the one that
//! built it: its pooled connections belong to the runtime that opened them, and once that
//! runtime is gone the next refresh must still reach the provider (a new connection), with
//! no error and no refresh token spent twice.

use std::sync::Arc;

use token_core::clock::ManualClock;
use token_core::manager::TokenManager;
use token_core::oauth::TOKEN_PATH;
use token_core::sandbox::{RunningSandbox, Sandbox, SandboxOAuth};
use token_core::token_set::TokenSet;

fn runtime(threads: Option<usize>) -> tokio::runtime::Runtime {
    match threads {
        None => tokio::runtime::Builder::new_current_thread(),
        Some(n) => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            builder.worker_threads(n);
            builder
        }
    }
    .enable_all()
    .build()
    .unwrap()
}

#[test]
fn a_reqwest_manager_refreshes_from_another_runtime_once_the_first_is_gone() {
    // The sandbox on a runtime of its own, alive throughout.
    let server = runtime(Some(1));
    let sandbox: RunningSandbox = server.block_on(async {
        Sandbox::builder()
            .clock(Arc::new(ManualClock::default()))
            .start()
            .await
            .unwrap()
    });
    for (first_threads, next_threads) in [(None, None), (Some(2), None), (None, Some(2))] {
        sandbox.reset_calls();
        let first = runtime(first_threads);
        let manager = first.block_on(async {
            let manager = TokenManager::builder(SandboxOAuth::new(sandbox.base_url()))
                .build()
                .unwrap();
            let issued = sandbox.issue("s").await.unwrap();
            let set = TokenSet::from_stored(issued).unwrap();
            manager.insert("s", set).await.unwrap();
            // A keep-alive connection opened in this runtime, left in the pool.
            manager.refresh_now("s").await.unwrap();
            manager
        });
        drop(first);
        let next = runtime(next_threads);
        next.block_on(async {
            for _ in 0..3 {
                let refreshed = manager.refresh_now("s").await;
                assert!(
                    refreshed.is_ok(),
                    "{first_threads:?} then {next_threads:?}: {refreshed:?}"
                );
            }
            manager
                .shutdown(std::time::Duration::from_secs(10))
                .await
                .unwrap();
        });
        assert_eq!(
            sandbox.calls(TOKEN_PATH),
            4,
            "{first_threads:?} then {next_threads:?}"
        );
    }
    server.block_on(sandbox.shutdown());
}
