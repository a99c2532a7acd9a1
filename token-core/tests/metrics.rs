//! The `metrics` feature: refreshes, failures by kind, re-auths and refresh latency reach an
//! installed recorder, labelled by provider and never by session or token.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use http::StatusCode;
use metrics_util::debugging::{DebugValue, DebuggingRecorder};
use token_core::metrics::{
    CACHE_HITS, CACHE_MISSES, FAILURES, REAUTHS, REFRESH_SECONDS, REFRESHES,
};
use token_core::{
    async_trait, error::EndpointError, error::Error, error::ErrorKind, error::ProviderError,
    manager::ManagerConfig, manager::RetryPolicy, manager::TokenManager, provider::CallContext,
    provider::Provider, secret::AccessToken, secret::RefreshToken, store::MemoryStore,
    token_set::NoExtras, token_set::TokenSet,
};

/// Answers each refresh with the next scripted result.
struct Scripted(Mutex<VecDeque<Result<&'static str, ErrorKind>>>);

#[async_trait]
impl Provider for Scripted {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "scripted"
    }

    async fn refresh(&self, cx: &CallContext, _: &TokenSet) -> Result<TokenSet, Error> {
        match self
            .0
            .lock()
            .unwrap()
            .pop_front()
            .expect("a scripted answer")
        {
            Ok(token) => Ok(TokenSet::new(AccessToken::new(token))
                .with_refresh_token(RefreshToken::new("secret-rt-next"))
                .with_access_expires_at(cx.now() + time::Duration::hours(1))),
            Err(kind) => Err(EndpointError::from(ProviderError::new(
                kind,
                StatusCode::BAD_REQUEST,
                "scripted",
            ))
            .into()),
        }
    }
}

#[tokio::test]
async fn refreshes_failures_and_reauths_are_counted_by_provider() {
    let recorder = DebuggingRecorder::new();
    let snapshotter = recorder.snapshotter();
    recorder
        .install()
        .expect("the only recorder of this test binary");

    let script = [
        Ok("secret-at-1"),
        Err(ErrorKind::Misconfigured),
        Err(ErrorKind::ReauthRequired),
    ];
    let manager = TokenManager::builder(Scripted(Mutex::new(script.into())))
        .store(MemoryStore::new())
        .config(
            ManagerConfig::default()
                .with_retry(RetryPolicy::never())
                .with_failure_cooldown(Duration::ZERO)
                .with_min_refresh_interval(Duration::from_secs(1)),
        )
        .build()
        .unwrap();
    for session in ["session-a", "session-b", "session-c"] {
        let set = TokenSet::new(AccessToken::new("secret-at-0"))
            .with_refresh_token(RefreshToken::new("secret-rt-0"));
        manager.insert(session, set).await.unwrap();
    }
    manager.refresh_now("session-a").await.unwrap();
    let error = manager.refresh_now("session-b").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    let error = manager.refresh_now("session-c").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    // Two reads of a fresh token (by name and by handle), and one of a session not cached.
    manager.access_token("session-a").await.unwrap();
    manager.session("session-a").access_token().await.unwrap();
    manager.access_token("session-unknown").await.unwrap_err();

    let mut seen = Vec::new();
    for (key, _, _, value) in snapshotter.snapshot().into_vec() {
        let key = key.key();
        let mut labels: Vec<String> = key
            .labels()
            .map(|l| format!("{}={}", l.key(), l.value()))
            .collect();
        labels.sort();
        let text = format!("{} {labels:?} {value:?}", key.name());
        assert!(
            !text.contains("session-") && !text.contains("secret-"),
            "{text}"
        );
        seen.push((key.name().to_owned(), labels, value));
    }
    let find = |name: &str, labels: &[&str]| {
        seen.iter()
            .find(|(n, l, _)| n == name && l.iter().map(String::as_str).eq(labels.iter().copied()))
            .map(|(_, _, value)| value)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in {seen:?}"))
    };
    assert_eq!(
        find(REFRESHES, &["outcome=refreshed", "provider=scripted"]),
        &DebugValue::Counter(1)
    );
    assert_eq!(
        find(FAILURES, &["kind=misconfigured", "provider=scripted"]),
        &DebugValue::Counter(1)
    );
    assert_eq!(
        find(REAUTHS, &["provider=scripted"]),
        &DebugValue::Counter(1)
    );
    assert_eq!(
        find(CACHE_HITS, &["provider=scripted"]),
        &DebugValue::Counter(2)
    );
    assert_eq!(
        find(CACHE_MISSES, &["provider=scripted"]),
        &DebugValue::Counter(1)
    );
    let DebugValue::Histogram(ok) = find(REFRESH_SECONDS, &["provider=scripted", "result=ok"])
    else {
        panic!("a histogram")
    };
    let DebugValue::Histogram(failed) =
        find(REFRESH_SECONDS, &["provider=scripted", "result=error"])
    else {
        panic!("a histogram")
    };
    assert_eq!((ok.len(), failed.len()), (1, 2));
}
