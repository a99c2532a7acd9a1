//! A hostile token endpoint and a hostile API, met over loopback sockets and through
//! hand-written providers: what the default transport, the manager and the bearer
//! middleware make of answers no provider should send.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use token_core::error::{Error, ErrorKind};
use token_core::manager::{Event, ManagerConfig, TokenManager};
use token_core::provider::{CallContext, Provider};
use token_core::secret::{AccessToken, RefreshToken};
use token_core::store::{MemoryStore, SessionKey, StoredRecord, TokenStore as _};
use token_core::token_set::{NoExtras, TokenSet};

const SESSION: &str = "s";

/// A hand-written provider that answers every refresh with `access` and a new refresh
/// token `rt-N`, and counts its calls.
struct Answering {
    access: &'static str,
    calls: AtomicU32,
}

#[token_core::async_trait]
impl Provider for Answering {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "answering"
    }

    async fn refresh(&self, cx: &CallContext, _: &TokenSet) -> Result<TokenSet, Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(TokenSet::new(AccessToken::new(self.access))
            .with_refresh_token(RefreshToken::new(format!("rt-{n}")))
            .with_access_expires_at(cx.now() + time::Duration::hours(1)))
    }
}

/// A manager over `provider` whose session holds `at-0` (expired if `expired`) and `rt-0`.
struct Subject<P: Provider> {
    manager: TokenManager<P>,
    store: Arc<MemoryStore>,
    events: Arc<Mutex<Vec<String>>>,
}

impl<P: Provider<Extras = NoExtras>> Subject<P> {
    async fn new(provider: P, expired: bool) -> Self {
        Self::with_config(provider, expired, ManagerConfig::default()).await
    }

    async fn with_config(provider: P, expired: bool, config: ManagerConfig) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let store = Arc::new(MemoryStore::new());
        let manager = TokenManager::builder(provider)
            .store(store.clone())
            .config(config)
            .on_event(move |event: &Event| seen.lock().unwrap().push(format!("{event:?}")))
            .build()
            .unwrap();
        let hour = time::Duration::hours(if expired { -1 } else { 1 });
        let set = TokenSet::new(AccessToken::new("at-0"))
            .with_refresh_token(RefreshToken::new("rt-0"))
            .with_access_expires_at(time::OffsetDateTime::now_utc() + hour);
        manager.insert(SESSION, set).await.unwrap();
        Self {
            manager,
            store,
            events,
        }
    }

    /// The stored access and refresh tokens.
    async fn stored(&self) -> (String, Option<String>) {
        let key = SessionKey::new(self.manager.provider().name(), SESSION);
        match self.store.load(&key).await.unwrap().map(|v| v.value) {
            Some(StoredRecord::Tokens(set)) => (
                set.access_token.expose_secret().to_owned(),
                set.refresh_token.map(|t| t.expose_secret().to_owned()),
            ),
            other => panic!("no tokens stored: {other:?}"),
        }
    }

    fn events(&self) -> String {
        self.events.lock().unwrap().join("\n")
    }
}

/// Access tokens no `Authorization` header can carry.
const UNSENDABLE: [&str; 4] = [
    "at-CANARY\r\nX-Injected: 1",
    "at-CANARY\n",
    "at-CANARY\0",
    "at-CANARY\u{7f}",
];

/// A hand-written provider (no declared codec to refuse it) answering with an access token
/// that cannot be sent: the manager never serves it (it would fail every API call until it
/// expires), the caller gets a typed error that shows no token, and the stored refresh
/// token is the one the manager had, never a verdict of re-auth.
#[tokio::test]
async fn an_unsendable_access_token_from_a_hand_written_provider_is_never_served() {
    for access in UNSENDABLE {
        let provider = Answering {
            access,
            calls: AtomicU32::new(0),
        };
        let subject = Subject::new(provider, true).await;
        for _ in 0..3 {
            let error = subject
                .manager
                .access_token(SESSION)
                .await
                .expect_err("an access token that cannot be sent is no token");
            assert_eq!(
                error.kind(),
                ErrorKind::OutcomeUnknown,
                "{access:?}: {error}"
            );
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("CANARY"), "{shown}");
            assert!(shown.contains("access token"), "{shown}");
        }
        let stored = subject.stored().await;
        assert_eq!(stored, ("at-0".into(), Some("rt-0".into())), "{access:?}");
        let events = subject.events();
        assert!(!events.contains("ReauthRequired"), "{events}");
        assert!(!events.contains("CANARY"), "{events}");
    }
}

/// The same tokens handed to `insert` are refused there, naming no value, and what the
/// session held stays.
#[tokio::test]
async fn an_unsendable_token_is_refused_by_insert() {
    let subject = Subject::new(
        Answering {
            access: "at-1",
            calls: AtomicU32::new(0),
        },
        false,
    )
    .await;
    let sets = UNSENDABLE
        .iter()
        .map(|access| {
            TokenSet::new(AccessToken::new(*access)).with_refresh_token(RefreshToken::new("rt-9"))
        })
        .chain(UNSENDABLE.iter().map(|refresh| {
            TokenSet::new(AccessToken::new("at-9")).with_refresh_token(RefreshToken::new(*refresh))
        }));
    for set in sets {
        let error = subject
            .manager
            .insert(SESSION, set)
            .await
            .expect_err("a token that cannot be sent is refused");
        assert!(matches!(error, Error::Config(_)), "{error:?}");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("CANARY"), "{shown}");
        assert_eq!(subject.stored().await, ("at-0".into(), Some("rt-0".into())));
        let served = subject.manager.access_token(SESSION).await.unwrap();
        assert_eq!(served.expose_secret(), "at-0");
    }
}
