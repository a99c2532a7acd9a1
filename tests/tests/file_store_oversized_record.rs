//! A provider's answer within the transport's limit (`DEFAULT_MAX_BODY`, 1 MiB) whose extras
//! (numbers written `1e15`) re-encode to a record larger than the `FileStore` loads (2 MiB):
//! the store refuses the save for good (`Unsupported`), and the manager saves the pair
//! without its extras (`Event::ExtrasNotStored`). Before, the refusal was a `Backend` error,
//! taken for an outage: the background save tried again for ever, renewing the refresh lease
//! before every try, so another process on the directory could never refresh the session,
//! and a restart lost the pair.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use token_core::async_trait;
use token_core::error::{Error, StoreError};
use token_core::manager::{ManagerConfig, TokenManager};
use token_core::provider::{CallContext, Provider};
use token_core::secret::{AccessToken, RefreshToken};
use token_core::store::{FileStore, SessionKey, StoredRecord, TokenStore, Version};
use token_core::token_set::TokenSet;
use token_test_support::stores::{Forwarding, Intercept};

/// The provider's answer: a new pair and a list of numbers, within the transport's limit.
fn answer() -> Vec<u8> {
    let mut body = String::from(
        r#"{"access_token":"at-new","refresh_token":"rt-new","expires_in":3600,"n":["#,
    );
    while body.len() < token_core::transport::DEFAULT_MAX_BODY - 64 {
        body.push_str("1e15,");
    }
    body.push_str("1e15]}");
    assert!(body.len() <= token_core::transport::DEFAULT_MAX_BODY);
    body.into_bytes()
}

struct Big;

#[async_trait]
impl Provider for Big {
    type Extras = serde_json::Value;

    fn name(&self) -> &str {
        "big"
    }

    async fn refresh(
        &self,
        cx: &CallContext,
        _: &TokenSet<serde_json::Value>,
    ) -> Result<TokenSet<serde_json::Value>, Error> {
        // As a decoder keeping unknown fields as extras reads the answer.
        let mut answer: serde_json::Value = serde_json::from_slice(&answer()).unwrap();
        let extras = answer["n"].take();
        Ok(TokenSet::new(AccessToken::new("at-new"))
            .with_refresh_token(RefreshToken::new("rt-new"))
            .with_access_expires_at(cx.now() + time::Duration::hours(1))
            .with_extras(extras))
    }
}

/// Counts the saves it forwards.
#[derive(Default)]
struct CountSaves(AtomicU32);

#[async_trait]
impl Intercept for CountSaves {
    async fn save(
        &self,
        _: &SessionKey,
        _: &StoredRecord,
        _: Option<Version>,
    ) -> Result<(), StoreError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

fn manager(store: Arc<dyn TokenStore>) -> TokenManager<Big> {
    TokenManager::builder(Big)
        .shared_store(store)
        .config(ManagerConfig::default().with_lease_ttl(Duration::from_secs(30)))
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_record_the_file_store_can_never_hold_is_not_retried_for_ever_under_its_lease() {
    let tmp = tempfile::TempDir::new().unwrap();
    let a_store = Arc::new(Forwarding::new(
        Arc::new(FileStore::open(tmp.path()).unwrap()),
        CountSaves::default(),
    ));
    let a = manager(a_store.clone());
    // Process B: its own store instance on the same directory.
    let b = manager(Arc::new(FileStore::open(tmp.path()).unwrap()));
    // An expired pair, stored.
    let key = SessionKey::new("big", "s");
    let old: StoredRecord = TokenSet::<serde_json::Value>::new(AccessToken::new("at-old"))
        .with_refresh_token(RefreshToken::new("rt-old"))
        .with_access_expires_at(time::OffsetDateTime::now_utc() - time::Duration::hours(1))
        .into();
    a_store.inner().save(&key, &old, None).await.unwrap();

    // A refreshes (spending rt-old); its pair cannot be saved with its extras, ever.
    let mut events = a.subscribe();
    let token = a.access_token("s").await.unwrap();
    assert_eq!(token.expose_secret(), "at-new");
    let after_refresh = a_store.0.load(Ordering::SeqCst);

    // Five minutes on: a save the store refuses for good is not tried again and again.
    tokio::time::sleep(Duration::from_secs(300)).await;
    let saves = a_store.0.load(Ordering::SeqCst) - after_refresh;

    // Nor does A keep the lease for ever: B, finding the stored pair expired, gets an
    // answer other than "another process held the refresh lease too long".
    let b_asks = tokio::time::timeout(Duration::from_secs(3600), b.access_token("s")).await;
    let b_error = match &b_asks {
        Ok(Err(error)) => Some(error.to_string()),
        _ => None,
    };
    let b_locked_out = b_error
        .as_deref()
        .is_some_and(|e| e.contains("held the refresh lease too long"));
    assert!(
        saves <= 3 && !b_locked_out,
        "the save of a record the store can never hold was tried {saves} more times in five \
         minutes; process B asking for the session got {b_error:?}"
    );
    // The pair is stored, without its extras; nothing is left unsaved.
    let stored = a_store.inner().load(&key).await.unwrap().unwrap();
    let tokens = stored.value.tokens().unwrap();
    assert_eq!(
        tokens.refresh_token.as_ref().map(|t| t.expose_secret()),
        Some("rt-new")
    );
    assert!(tokens.extras.is_null());
    let mut extras_not_stored = 0;
    while let Ok(event) = events.try_recv() {
        extras_not_stored += usize::from(matches!(
            event,
            token_core::manager::Event::ExtrasNotStored { .. }
        ));
    }
    assert_eq!(extras_not_stored, 1);
    let shut = a.shutdown(Duration::from_secs(5)).await;
    assert!(shut.is_ok(), "{shut:?}");
}
