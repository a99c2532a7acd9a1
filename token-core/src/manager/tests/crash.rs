//! A process that dies at each step of a refresh: its runtime is shut down with the refresh
//! parked at that step, so nothing after it runs (no save, no lease release). Another
//! process on the same `FileStore` directory takes over once the lease lapses, and nothing
//! is lost: the session ends with the provider's live refresh token, and no refresh token
//! is presented after the provider's reuse window.

use std::sync::mpsc;

use super::*;
use crate::store::FileStore;

#[derive(Clone, Copy, Debug, PartialEq)]
enum Dies {
    /// The lease is taken; the provider was not called.
    BeforeTheProvider,
    /// The provider rotated; its answer never arrived.
    AfterTheRotation,
    /// The answer arrived; the save never finished.
    InTheSave,
    /// The new pair is saved; the lease was never released.
    InTheRelease,
}

/// Signals that the refresh reached the step, then parks there for good.
async fn park(reached: &mpsc::SyncSender<Dies>, at: Dies) -> ! {
    let _ = reached.send(at);
    std::future::pending().await
}

/// The provider of the process that dies.
struct Dying {
    fake: Arc<Fake>,
    at: Dies,
    reached: mpsc::SyncSender<Dies>,
}

#[async_trait]
impl Provider for Dying {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "fake"
    }

    fn reuse_window(&self) -> Duration {
        self.fake.reuse_window
    }

    async fn refresh(&self, cx: &CallContext, current: &TokenSet) -> Result<TokenSet, Error> {
        match self.at {
            Dies::BeforeTheProvider => park(&self.reached, self.at).await,
            Dies::AfterTheRotation => {
                let presented = current.refresh_token.as_ref().unwrap().expose_secret();
                self.fake.rotate(presented)?;
                park(&self.reached, self.at).await
            }
            _ => self.fake.refresh(cx, current).await,
        }
    }
}

/// The store of the process that dies.
struct DyingStore {
    at: Dies,
    reached: mpsc::SyncSender<Dies>,
}

#[async_trait]
impl Hooks for DyingStore {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        match (call, self.at) {
            (Call::Save, Dies::InTheSave) | (Call::Release, Dies::InTheRelease) => {
                park(&self.reached, self.at).await
            }
            _ => Ok(()),
        }
    }
}

const LEASE: Duration = Duration::from_secs(30);

fn config() -> ManagerConfig {
    ManagerConfig::default()
        .with_lease_ttl(LEASE)
        .with_retry(RetryPolicy::never())
}

fn survivor(
    fake: &Arc<Fake>,
    clock: &ManualClock,
    dir: &std::path::Path,
) -> TokenManager<Arc<Fake>> {
    TokenManager::builder(fake.clone())
        .store(FileStore::open_with_clock(dir, Arc::new(clock.clone())).unwrap())
        .client(NoTransport)
        .clock(Arc::new(clock.clone()))
        .config(config())
        .build()
        .unwrap()
}

fn paused_runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .start_paused(true)
        .build()
        .unwrap()
}

/// `reuse_window`: the provider's. Without one, the pair the provider sent to a process that
/// died before saving it is lost with the process, and the session needs re-auth.
fn dies_at(at: Dies, reuse_window: Duration) {
    let dir = tempfile::TempDir::new().unwrap();
    let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
    let mut fake = Fake::new(Arc::new(clock.clone()));
    fake.reuse_window = reuse_window;
    let fake = Arc::new(fake);
    let expired = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(clock.now());
    paused_runtime().block_on(async {
        let seeding = survivor(&fake, &clock, dir.path());
        seeding.insert("s", expired).await.unwrap();
    });

    // The process that dies: its own runtime, store handle and provider.
    let (reached, signal) = mpsc::sync_channel(4);
    let dying = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let store = Hooked::over(
        FileStore::open_with_clock(dir.path(), Arc::new(clock.clone())).unwrap(),
        DyingStore {
            at,
            reached: reached.clone(),
        },
    );
    let provider = Dying {
        fake: fake.clone(),
        at,
        reached,
    };
    let manager = TokenManager::builder(provider)
        .store(store)
        .client(NoTransport)
        .clock(Arc::new(clock.clone()))
        .config(config())
        .build()
        .unwrap();
    dying.spawn(async move { manager.access_token("s").await });
    assert_eq!(
        signal.recv_timeout(std::time::Duration::from_secs(60)),
        Ok(at),
        "the refresh reaches the step"
    );
    dying.shutdown_background();

    // Its lease lapses; another process (within the provider's reuse window) carries on.
    clock.advance(time::Duration::try_from(LEASE).unwrap() + time::Duration::SECOND);
    paused_runtime().block_on(async {
        let manager = survivor(&fake, &clock, dir.path());
        let token = manager.access_token("s").await.unwrap();
        assert_eq!(token.expose_secret(), "at-1", "{at:?}");
        let live = fake.live.lock().unwrap().clone();
        let stored = manager.token_set("s").await.unwrap().refresh_token.unwrap();
        assert_eq!(
            stored.expose_secret(),
            live,
            "{at:?}: the live refresh token is kept"
        );
        // Still refreshable from what is stored: nothing was lost.
        assert_eq!(
            manager.refresh_now("s").await.unwrap().expose_secret(),
            "at-2",
            "{at:?}"
        );
    });
}

#[test]
fn a_process_dying_at_any_step_of_a_refresh_loses_nothing() {
    for at in [
        Dies::BeforeTheProvider,
        Dies::AfterTheRotation,
        Dies::InTheSave,
        Dies::InTheRelease,
    ] {
        dies_at(at, Duration::from_secs(300));
    }
}

#[test]
fn without_a_reuse_window_a_process_dying_before_spending_or_after_saving_loses_nothing() {
    // A provider that refuses a refresh token presented twice: the survivor must present
    // the stored token only if the dead process never did, or never present it at all.
    for at in [Dies::BeforeTheProvider, Dies::InTheRelease] {
        dies_at(at, Duration::ZERO);
    }
}
