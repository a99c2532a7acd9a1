//! A provider whose extras cannot be serialized: the refreshed tokens are used and stored
//! all the same, without the extras (a later load gets their default), since the old refresh
//! token is already spent; the dropped extras are reported.

use std::sync::Arc;

use serde::{Deserialize, Serialize, Serializer};
use token_core::store::{SessionKey, TokenStore};
use token_core::{
    async_trait, error::Error, manager::Event, manager::TokenManager, provider::CallContext,
    provider::Provider, secret::AccessToken, secret::RefreshToken, store::MemoryStore,
    token_set::TokenSet,
};

/// Extras that refuse to be written (a map with non-string keys, a failing custom impl...).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
struct Unwritable;

impl Serialize for Unwritable {
    fn serialize<S: Serializer>(&self, _: S) -> Result<S::Ok, S::Error> {
        Err(serde::ser::Error::custom("this value cannot be written"))
    }
}

struct Odd;

#[async_trait]
impl Provider for Odd {
    type Extras = Unwritable;

    fn name(&self) -> &str {
        "odd"
    }

    async fn refresh(
        &self,
        cx: &CallContext,
        _: &TokenSet<Unwritable>,
    ) -> Result<TokenSet<Unwritable>, Error> {
        Ok(TokenSet::new(AccessToken::new("at-new"))
            .with_refresh_token(RefreshToken::new("rt-new"))
            .with_access_expires_at(cx.now() + time::Duration::hours(1)))
    }
}

/// A manager of `Odd` over a `MemoryStore` holding session `s`'s set (saved without extras:
/// only the provider's answers carry the unwritable ones), and the set's version.
async fn stored_session() -> (
    Arc<MemoryStore>,
    TokenManager<Odd>,
    SessionKey,
    token_core::store::Version,
) {
    let store = Arc::new(MemoryStore::new());
    let manager = TokenManager::builder(Odd)
        .shared_store(store.clone())
        .build()
        .unwrap();
    let key = SessionKey::new("odd", "s");
    let first = TokenSet::<serde_json::Value>::new(AccessToken::new("at-old"))
        .with_refresh_token(RefreshToken::new("rt-old"))
        .to_stored()
        .unwrap();
    let version = store.save(&key, &first.into(), None).await.unwrap();
    (store, manager, key, version)
}

#[tokio::test]
async fn the_refreshed_tokens_are_stored_without_the_extras_and_the_drop_reported() {
    let (store, manager, key, version) = stored_session().await;
    let mut events = manager.subscribe();

    let token = manager.refresh_now("s").await.unwrap();
    assert_eq!(
        token.expose_secret(),
        "at-new",
        "the provider's answer is used"
    );
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-new"
    );

    let stored = store.load(&key).await.unwrap().unwrap();
    assert!(stored.version > version, "the new set was saved");
    let tokens = stored.value.into_tokens().expect("a token set");
    assert_eq!(
        tokens.refresh_token.as_ref().map(|t| t.expose_secret()),
        Some("rt-new"),
        "the store holds the live refresh token, not the spent one"
    );
    assert_eq!(
        tokens.extras,
        serde_json::Value::Null,
        "stored without extras"
    );
    // Reported during the refresh, so already queued (no wait).
    let mut dropped = false;
    while let Ok(event) = events.try_recv() {
        match event {
            Event::ExtrasNotStored { session } => {
                assert_eq!(&*session, "s");
                dropped = true;
            }
            Event::PersistFailed { error, .. } => panic!("the save failed: {error}"),
            _ => {}
        }
    }
    assert!(dropped, "an ExtrasNotStored event");
}

#[tokio::test]
async fn another_process_takes_the_stored_tokens_with_default_extras() {
    let (store, manager, _, _) = stored_session().await;
    manager.refresh_now("s").await.unwrap();
    let other = TokenManager::builder(Odd)
        .shared_store(store.clone())
        .build()
        .unwrap();
    let set = other.token_set("s").await.unwrap();
    assert_eq!(set.access_token.expose_secret(), "at-new");
    assert_eq!(
        set.refresh_token.as_ref().map(|t| t.expose_secret()),
        Some("rt-new")
    );
    assert_eq!(set.extras, Unwritable);
}

#[tokio::test]
async fn a_session_whose_extras_cannot_be_stored_is_refreshed_again() {
    let (_, manager, _, _) = stored_session().await;
    assert_eq!(
        manager.refresh_now("s").await.unwrap().expose_secret(),
        "at-new"
    );
    // The set stored without its extras holds the only refresh token the provider still
    // accepts: the session refreshes from it, rather than failing for good.
    assert_eq!(
        manager.refresh_now("s").await.unwrap().expose_secret(),
        "at-new"
    );
}

#[tokio::test(start_paused = true)]
async fn a_set_stored_without_its_extras_holds_up_neither_shutdown_nor_the_lease() {
    let (store, manager, key, _) = stored_session().await;
    assert_eq!(
        manager.refresh_now("s").await.unwrap().expose_secret(),
        "at-new"
    );
    // Saved at once: no save is left to retry in the background, keeping the lease and
    // `shutdown` waiting.
    assert_eq!(
        store
            .acquire_lease(&key, "another-manager", std::time::Duration::from_secs(30))
            .await
            .unwrap(),
        token_core::store::Lease::Acquired,
        "the lease was given back"
    );
    manager
        .shutdown(std::time::Duration::from_secs(60))
        .await
        .expect("nothing left to wait for");
    // The set is still served from memory.
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-new"
    );
}
