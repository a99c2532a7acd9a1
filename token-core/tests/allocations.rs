//! Memory a long-running service's manager keeps, measured with a counting allocator (this
//! binary's only test, so nothing else allocates meanwhile): by-name calls, handles and
//! insert/remove cycles over ever new names leave what the manager holds flat.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicIsize, Ordering};

use token_core::{
    async_trait, error::Error, manager::TokenManager, provider::CallContext, provider::Provider,
    secret::AccessToken, secret::RefreshToken, store::MemoryStore, token_set::NoExtras,
    token_set::TokenSet,
};

/// Counts the bytes allocated and not yet freed.
struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

// SAFETY: every call is passed on to the system allocator unchanged; only counted.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        // SAFETY: the caller's contract, passed on.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(
            new_size as isize - layout.size() as isize,
            Ordering::Relaxed,
        );
        // SAFETY: the caller's contract, passed on.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// A provider that is never asked: every session here is fresh or has no tokens.
struct Unused;

#[async_trait]
impl Provider for Unused {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "unused"
    }

    async fn refresh(&self, _: &CallContext, _: &TokenSet) -> Result<TokenSet, Error> {
        unreachable!("no session here needs a refresh")
    }
}

fn fresh() -> TokenSet {
    TokenSet::new(AccessToken::new("at"))
        .with_refresh_token(RefreshToken::new("rt"))
        .with_access_expires_at(time::OffsetDateTime::now_utc() + time::Duration::hours(1))
}

/// Asks for `n` names never seen (by name, and through a handle) and inserts and removes `n`
/// more, each name new: `round` keeps them apart.
async fn churn(manager: &TokenManager<Unused>, round: usize, n: usize) {
    for i in 0..n {
        let name = format!("ghost-{round}-{i}");
        assert!(matches!(
            manager.access_token(&name).await,
            Err(Error::NoTokens(_))
        ));
        let handle = manager.session(&format!("held-{round}-{i}"));
        assert!(handle.access_token().await.is_err());
        drop(handle);
        let name = format!("user-{round}-{i}");
        manager.insert(&name, fresh()).await.unwrap();
        assert_eq!(
            manager.access_token(&name).await.unwrap().expose_secret(),
            "at"
        );
        manager.remove(&name).await.unwrap();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn new_names_without_end_leave_the_managers_memory_flat() {
    let manager = TokenManager::builder(Unused)
        .store(MemoryStore::new())
        .build()
        .unwrap();
    manager.insert("kept", fresh()).await.unwrap();
    // Up to every bound (the unknown names kept, the tables' sizes) first.
    churn(&manager, 0, 4_000).await;
    let warm = LIVE.load(Ordering::Relaxed);
    for round in 1..=4 {
        churn(&manager, round, 4_000).await;
    }
    let grown = LIVE.load(Ordering::Relaxed) - warm;
    // 16000 names of each kind more: a few bytes each would be 100 KiB and more.
    assert!(
        grown < 32 * 1024,
        "{grown} bytes more after 48000 new names"
    );
    assert_eq!(
        manager.access_token("kept").await.unwrap().expose_secret(),
        "at"
    );
}
