//! The workspace's test harness, shared by the provider crates' tests and the cross-crate
//! tests in `tests/`: a [`TokenManager`](token_core::manager::TokenManager) over a running sandbox on a
//! test clock ([`harness`]), an event recorder ([`events`]), forwarding and recording stores
//! ([`stores`]), a URL holding credentials for the tests that no `Debug` shows them
//! ([`url_credentials`]), and, behind features, one provider's sandbox with a manager over it in process
//! or over a socket (`rig`), a `tracing` capture per runtime (`logs`) and the PostgreSQL test
//! database with a proxy that can cut it off (`postgres`).
//!
//! A provider crate takes it as a dev-dependency; its integration tests (`tests/*.rs`) then
//! link one token-core, the one this crate was built against:
//!
//! ```
//! use std::time::Duration;
//!
//! use token_core::sandbox::{Sandbox, SandboxOAuth};
//! use token_test_support::harness;
//!
//! # #[tokio::main(flavor = "current_thread", start_paused = true)]
//! # async fn main() {
//! let clock = harness::paused_clock();
//! let sandbox = Sandbox::builder().clock(clock.clone()).start().await.unwrap();
//! let manager = harness::manager(SandboxOAuth::new(sandbox.base_url()), &sandbox, &clock);
//! let first = harness::seed(&manager, &sandbox, "alice", serde_json::json!({})).await;
//! assert_eq!(manager.access_token("alice").await.unwrap(), first.access_token);
//!
//! tokio::time::advance(Duration::from_secs(3600)).await;
//! let second = manager.access_token("alice").await.unwrap();
//! assert_ne!(second, first.access_token);
//! assert!(harness::accepted(&sandbox, &second).await);
//! # }
//! ```
//!
//! # Not for token-core's own unit tests
//!
//! This crate depends on token-core. token-core's unit tests (`src/**/tests.rs`) are compiled
//! into a second instance of token-core, with `cfg(test)`, whose `TokenStore`, `Clock` and
//! `Event` are other types than the ones this crate names: nothing here fits them, and they
//! read the manager's private state besides. They keep the few stores of their own they need
//! (each a handful of lines, over a `MemoryStore`). Integration tests, token-core's included,
//! are ordinary dependents of token-core and can use this crate.

use std::sync::{Mutex, MutexGuard};

pub mod events;
pub mod harness;
#[cfg(feature = "logs")]
pub mod logs;
#[cfg(feature = "postgres")]
pub mod pg;
#[cfg(feature = "postgres")]
pub mod proxy;
#[cfg(feature = "rig")]
pub mod rig;
pub mod stores;
pub mod url_credentials;

/// Locks, whatever a panicking holder left (every update here is one push or insert).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

/// The first `secret` (of at least 8 characters) found in `text`, if any.
pub fn leaked<'a>(text: &str, secrets: impl IntoIterator<Item = &'a String>) -> Option<String> {
    secrets
        .into_iter()
        .filter(|s| s.len() >= 8)
        .find(|s| text.contains(s.as_str()))
        .cloned()
}

/// Asserts that a config of type `T`, `config` with each of `keys` set in turn to a URL that
/// cannot be read (its port out of range) holding credentials, fails to deserialize, from a
/// value and from text, with an error that says it is the URL and does not repeat it: its
/// user information may hold a password, its query a key.
#[track_caller]
pub fn assert_unreadable_config_urls_unquoted<T>(config: &serde_json::Value, keys: &[&str])
where
    T: for<'de> token_core::prelude::Deserialize<'de> + std::fmt::Debug,
{
    let broken = "https://app:pw-hunter2@host.example:99999/token?key=k-hunter2";
    for key in keys {
        let mut config = config.clone();
        config[*key] = serde_json::json!(broken);
        let from_value = serde_json::from_value::<T>(config.clone()).unwrap_err();
        let from_text = serde_json::from_str::<T>(&config.to_string()).unwrap_err();
        for error in [from_value, from_text] {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("hunter2"), "{key}: {shown}");
            assert!(shown.contains("URL"), "{key}: {shown}");
        }
    }
}
