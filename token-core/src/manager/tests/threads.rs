//! One session under callers on several threads at once (real time, no paused clock):
//! lookups, handles, 401s, forced refreshes, logins and removes racing each other. Whatever
//! the interleaving, no refresh token is presented twice (a provider that treats reuse as
//! theft would revoke the grant) and no re-auth is declared: every login is a live grant.

use std::collections::HashMap;

use super::model::Rng;
use super::*;

/// A provider with any number of grants, each refresh token good for one refresh and no
/// reuse window: a second presentation is refused, and counted.
#[derive(Default)]
struct OneUse {
    /// Whether some calls fail before the provider reads the token: a 503 or a panic.
    faults: bool,
    calls: AtomicU32,
    minted: AtomicU32,
    /// Each refresh token minted, and how many times it was presented.
    presented: StdMutex<HashMap<String, u32>>,
}

impl OneUse {
    /// A new grant, its access token already expired (the next call refreshes).
    fn login(&self) -> TokenSet {
        let n = self.minted.fetch_add(1, Ordering::SeqCst) + 1;
        self.presented.lock().unwrap().insert(format!("rt-{n}"), 0);
        TokenSet::new(AccessToken::new(format!("at-{n}")))
            .with_refresh_token(RefreshToken::new(format!("rt-{n}")))
            .with_access_expires_at(OffsetDateTime::UNIX_EPOCH)
    }
}

#[async_trait]
impl Provider for Arc<OneUse> {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "one-use"
    }

    fn reuse_window(&self) -> Duration {
        Duration::ZERO
    }

    async fn refresh(&self, _: &CallContext, current: &TokenSet) -> Result<TokenSet, Error> {
        let presented = current.refresh_token.as_ref().unwrap().expose_secret();
        let call = self.calls.fetch_add(1, Ordering::SeqCst);
        if self.faults && call % 7 == 3 {
            return Err(unavailable(None));
        }
        if self.faults && call % 13 == 5 {
            panic!("the provider's code panicked");
        }
        let first = {
            let mut all = self.presented.lock().unwrap();
            let count = all.entry(presented.to_owned()).or_default();
            *count += 1;
            *count == 1
        };
        tokio::task::yield_now().await;
        if !first {
            return Err(invalid_grant());
        }
        let mut next = self.login();
        next.access_expires_at = Some(OffsetDateTime::now_utc() + HOUR);
        Ok(next)
    }
}

/// Eight tasks on four threads, spread over `managers`, each making `calls` random calls on
/// one session; then the provider's count of each refresh token's presentations.
fn race(
    faults: bool,
    calls: usize,
    managers: impl Fn(&Arc<OneUse>) -> Vec<TokenManager<Arc<OneUse>>>,
) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let provider = Arc::new(OneUse {
            faults,
            ..OneUse::default()
        });
        let managers = managers(&provider);
        managers[0].insert("s", provider.login()).await.unwrap();
        let tasks: Vec<_> = (0..8u64)
            .map(|seed| {
                let manager = managers[seed as usize % managers.len()].clone();
                let provider = provider.clone();
                tokio::spawn(async move {
                    let mut rng = Rng(seed);
                    let mut unexpected = Vec::new();
                    let mut last = None;
                    // Held across the calls: its session stays in the map through removes.
                    let held = manager.session("s");
                    for _ in 0..calls {
                        let answer = match rng.below(11) {
                            0..=2 => manager.access_token("s").await,
                            3 => held.access_token().await,
                            4 => manager.session("s").access_token().await,
                            5 => match &last {
                                Some(token) => manager.refresh_rejected("s", token).await,
                                None => manager.refresh_now("s").await,
                            },
                            6 => manager.refresh_now("s").await,
                            7 => manager.remove("s").await.map(|()| AccessToken::new("")),
                            _ => {
                                let set = provider.login();
                                manager
                                    .insert("s", set)
                                    .await
                                    .map(|()| AccessToken::new(""))
                            }
                        };
                        match answer {
                            Ok(token) => last = Some(token),
                            Err(Error::NoTokens { .. }) => {}
                            // The provider's 503s and panics, when it has faults.
                            Err(error)
                                if faults
                                    && error.kind() != ErrorKind::ReauthRequired
                                    && !matches!(error, Error::ReauthRequired(_)) => {}
                            Err(other) => unexpected.push(format!("{other:?}")),
                        }
                    }
                    unexpected
                })
            })
            .collect();
        for task in tasks {
            assert_eq!(task.await.unwrap(), Vec::<String>::new());
        }
        let presented = provider.presented.lock().unwrap();
        let twice: Vec<_> = presented.iter().filter(|(_, n)| **n > 1).collect();
        assert!(twice.is_empty(), "presented more than once: {twice:?}");
        assert!(presented.values().any(|n| *n == 1), "refreshes ran");
    });
}

/// Every lookup that found nothing looks again at once, and every failure is tried again
/// soon; refreshes are not spaced.
fn config() -> ManagerConfig {
    ManagerConfig::default()
        .with_failure_cooldown(Duration::from_millis(1))
        .with_min_refresh_interval(Duration::ZERO)
        .with_retry(
            RetryPolicy::default().with_backoff(Duration::from_millis(1), Duration::from_millis(2)),
        )
}

fn one_manager(provider: &Arc<OneUse>) -> Vec<TokenManager<Arc<OneUse>>> {
    vec![
        TokenManager::builder(provider.clone())
            .client(NoTransport)
            .config(config())
            .build()
            .unwrap(),
    ]
}

#[test]
fn one_session_raced_from_several_threads_never_spends_a_refresh_token_twice() {
    race(false, 400, one_manager);
}

#[test]
fn one_session_raced_from_several_threads_with_503s_and_panics_never_spends_a_token_twice() {
    race(true, 400, one_manager);
}

#[test]
fn two_processes_on_one_store_raced_from_several_threads_never_spend_a_refresh_token_twice() {
    let store = Arc::new(MemoryStore::new());
    race(true, 400, |provider| {
        (0..2)
            .map(|_| {
                TokenManager::builder(provider.clone())
                    .shared_store(store.clone())
                    .client(NoTransport)
                    .config(config())
                    .build()
                    .unwrap()
            })
            .collect()
    });
}

#[test]
fn two_processes_on_one_file_store_raced_from_several_threads_never_spend_a_token_twice() {
    let dir = tempfile::tempdir().unwrap();
    // Fewer calls: each writes and syncs files.
    race(true, 150, |provider| {
        (0..2)
            .map(|_| {
                let store = crate::store::FileStore::open(dir.path()).unwrap();
                TokenManager::builder(provider.clone())
                    .store(store)
                    .client(NoTransport)
                    .config(config())
                    .build()
                    .unwrap()
            })
            .collect()
    });
}
