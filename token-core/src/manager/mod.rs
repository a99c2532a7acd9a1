//! The refresh-and-retry manager: one cached token set per session, refreshed ahead of
//! expiry by exactly one task, persisted before use, with events for what happened.
//!
//! The fast path of [`TokenManager::access_token`] is a lock-free map lookup ([`papaya`]),
//! whose entry holds the session's access token and until when it is fresh, after a
//! per-thread memo of the last read (`memo`); a [`SessionHandle`] reads the same way. Locks
//! and I/O are only on the slow path.
//!
//! One concern per module: [`config`](ManagerConfig) (settings), `session` (a session's
//! state in memory, its generation), `flight` (one refresh per session, cleared on every
//! exit path), `lease` (the cross-process lease and re-reads), `refresh` (one refresh and
//! what its outcome means), `persist` (saving, and saving again), `retry` (backoff and the
//! retry decision), `event` (what is reported).

mod config;
mod event;
mod flight;
mod handle;
mod lease;
mod memo;
mod name;
mod persist;
mod refresh;
mod retry;
mod session;
mod tasks;
mod timed;

#[cfg(feature = "sandbox")]
pub(crate) use refresh::CatchUnwind;

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use time::OffsetDateTime;
use tokio::sync::broadcast;

pub use config::ManagerConfig;
pub use event::{Event, ExpiryNote};
pub use handle::SessionHandle;
pub use retry::RetryPolicy;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Reauth, StoreError};
use crate::provider::{CallContext, Provider};
use crate::secret::{AccessToken, RefreshToken};
use crate::store::{BoundMemoryStore, MemoryStore, ReauthVerdict, SessionKey, TokenStore};
use crate::token_set::{StoredTokenSet, TokenSet};
use crate::transport::HttpClient;
use name::{Name, UnknownNames};
use session::{Current, Ready, Reason, Session, Stamp, State, later};

type Hook = Arc<dyn Fn(&Event) + Send + Sync>;

/// Builds a [`TokenManager`].
pub struct TokenManagerBuilder<P: Provider> {
    provider: P,
    store: Option<Arc<dyn TokenStore>>,
    /// The store, when it is a `MemoryStore` (which can share the manager's sets).
    memory: Option<Arc<MemoryStore>>,
    client: Option<Arc<dyn HttpClient>>,
    clock: Option<Arc<dyn Clock>>,
    config: ManagerConfig,
    hook: Option<Hook>,
    runtime: Option<tokio::runtime::Handle>,
    namespace: Option<Arc<str>>,
}

impl<P: Provider> TokenManagerBuilder<P> {
    /// Where sessions are persisted (default: a new [`MemoryStore`]).
    ///
    /// A [`MemoryStore`] given here (or the default one) keeps the very token sets the
    /// manager holds, not copies: one copy of each set in memory.
    pub fn store(mut self, store: impl TokenStore) -> Self {
        let mut store = store;
        if let Some(memory) = (&mut store as &mut dyn std::any::Any).downcast_mut::<MemoryStore>() {
            let memory = Arc::new(std::mem::take(memory));
            self.memory = Some(memory.clone());
            self.store = Some(memory);
        } else {
            self.memory = None;
            self.store = Some(Arc::new(store));
        }
        self
    }

    /// The namespace the store keeps this manager's sessions under, instead of the default:
    /// the provider's [`name`](Provider::name), followed by its
    /// [`client_id`](Provider::client_id) when it has one (`"wechat:wx-app-1"`; a generic
    /// OAuth 2.0 client's names its token endpoint too,
    /// `"oauth2:app-1@https://id.example/token"`; a `:` or `%` in the name is written `%3A`
    /// or `%25`, so that no two names and client ids join alike).
    ///
    /// Managers sharing a store must not share a namespace unless they refresh the same
    /// sessions at the same server for the same client (the replicas of one application):
    /// one would send the other's refresh tokens to its own server, and record that
    /// server's refusal as the end of the other's session. The default keeps two clients
    /// apart; give a namespace of its own to each of two managers whose providers have
    /// neither a name nor a client id of their own (a staging and a production server
    /// reached with one app's id, or a custom provider without
    /// [`client_id`](Provider::client_id)). An empty namespace is refused by
    /// [`build`](Self::build).
    ///
    /// ```
    /// # async fn run<P: token_core::provider::Provider>(production: P, staging: P) -> Result<(), token_core::error::Error> {
    /// use std::sync::Arc;
    /// use token_core::{manager::TokenManager, store::{MemoryStore, TokenStore}};
    ///
    /// let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    /// let live = TokenManager::builder(production).shared_store(store.clone()).namespace("acme-live").build()?;
    /// let test = TokenManager::builder(staging).shared_store(store).namespace("acme-test").build()?;
    /// assert_eq!(live.session_key("customer-42").provider(), "acme-live");
    /// # Ok(()) }
    /// ```
    pub fn namespace(mut self, namespace: impl Into<Arc<str>>) -> Self {
        self.namespace = Some(namespace.into());
        self
    }

    /// Shares a store with other managers or the application.
    pub fn shared_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.memory = None;
        self.store = Some(store);
        self
    }

    /// The transport (default, with the `reqwest` feature: [`ReqwestClient::new`](crate::transport::ReqwestClient::new)).
    pub fn client(mut self, client: impl HttpClient) -> Self {
        self.client = Some(Arc::new(client));
        self
    }

    /// Shares a transport.
    pub fn shared_client(mut self, client: Arc<dyn HttpClient>) -> Self {
        self.client = Some(client);
        self
    }

    /// The clock expiry is compared against (default: [`SystemClock`]).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Refresh timing and retry bounds.
    pub fn config(mut self, config: ManagerConfig) -> Self {
        self.config = config;
        self
    }

    /// Runs the manager's own tasks on `runtime`: refreshes (a proactive one too), the
    /// writes of `insert` and `remove`, background saves, store calls and the look for
    /// lapsed leases. By default each runs on the runtime of the call that starts it.
    ///
    /// For applications that call the manager from a runtime that does not keep running: a
    /// `current_thread` helper driven by `block_on` now and then beside the application's
    /// main runtime. A refresh started there (a call near expiry starts one in the
    /// background) would wait until the helper runs again, and so would every caller of its
    /// session meanwhile; given the main runtime here, it runs there. `runtime` must have
    /// its time driver (`enable_all`; [`build`](Self::build) checks), keep running (a
    /// multi-thread runtime, or the one the application's `block_on` lives in) and outlive
    /// the manager: once it is shut down, refreshes and writes fail with
    /// [`Error::ShuttingDown`] or [`Error::RefreshAborted`]. Callers still need a Tokio
    /// runtime of their own (with timers) for anything but a fresh token.
    ///
    /// ```no_run
    /// # fn run<P: token_core::provider::Provider>(provider: P) -> Result<(), token_core::error::Error> {
    /// use token_core::manager::TokenManager;
    /// let main = tokio::runtime::Runtime::new().expect("a runtime");
    /// let manager = TokenManager::builder(provider).runtime(main.handle().clone()).build()?;
    /// // A blocking helper with a runtime of its own: the refreshes it starts run on `main`.
    /// let helper = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    /// let token = helper.block_on(manager.access_token("customer-42"))?;
    /// # Ok(()) }
    /// ```
    pub fn runtime(mut self, runtime: tokio::runtime::Handle) -> Self {
        self.runtime = Some(runtime);
        self
    }

    /// A callback run for every [`Event`], in the task where it happened. Keep it short. A
    /// panic in it is caught and logged; it never stops a refresh.
    pub fn on_event(mut self, hook: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Builds the manager. A lease shorter than a second is refused: it would lapse before
    /// a refresh could use it. So is a `min_refresh_interval` shorter than a second: a
    /// provider answering tokens that are already expired would be asked again at every
    /// call.
    pub fn build(self) -> Result<TokenManager<P>, Error> {
        for (length, name) in [
            (self.config.lease_ttl, "lease_ttl"),
            (self.config.min_refresh_interval, "min_refresh_interval"),
        ] {
            if length < Duration::from_secs(1) {
                return Err(Error::Config(format!(
                    "ManagerConfig::{name} must be at least one second"
                )));
            }
        }
        let client = match self.client {
            Some(client) => client,
            #[cfg(feature = "reqwest")]
            None => Arc::new(crate::transport::ReqwestClient::new()?),
            #[cfg(not(feature = "reqwest"))]
            None => {
                return Err(Error::Config(
                    "no HTTP client: give one with TokenManagerBuilder::client, or enable \
                     token-core's `reqwest` feature"
                        .into(),
                ));
            }
        };
        if let Some(runtime) = &self.runtime {
            let _entered = runtime.enter();
            if !has_timers() {
                return Err(Error::Config(
                    "TokenManagerBuilder::runtime: the runtime has no timers; build it with \
                     `enable_time` (or `enable_all`)"
                        .into(),
                ));
            }
        }
        let runtime = tasks::Runtime::given(self.runtime);
        for (timeout, name) in [
            (self.config.store_timeout, "store_timeout"),
            (self.config.call_timeout, "call_timeout"),
        ] {
            if timeout.is_zero() {
                return Err(Error::Config(format!(
                    "ManagerConfig::{name} must not be zero"
                )));
            }
        }
        let (events, _) = broadcast::channel(1024);
        let (store, memory) = match self.store {
            // A `MemoryStore` never waits; any other store's calls are bounded.
            Some(store) if self.memory.is_some() => (store, self.memory),
            Some(store) => {
                let timeout = self.config.store_timeout;
                let timed = timed::Timed::new(store, timeout, runtime.clone());
                (Arc::new(timed) as Arc<dyn TokenStore>, None)
            }
            None => {
                let memory = Arc::new(MemoryStore::new());
                (memory.clone() as Arc<dyn TokenStore>, Some(memory))
            }
        };
        let namespace: Arc<str> = match self.namespace {
            Some(namespace) => namespace,
            None => default_namespace(self.provider.name(), self.provider.client_id()).into(),
        };
        if namespace.is_empty() {
            return Err(Error::Config(
                "the manager's namespace must not be empty: give the provider a name, or \
                 TokenManagerBuilder::namespace one"
                    .into(),
            ));
        }
        #[cfg(feature = "metrics")]
        let cache = crate::metrics::CacheCounters::new(self.provider.name());
        Ok(TokenManager {
            inner: Arc::new(Inner {
                memory: memory.map(|memory| memory.bind(&namespace)),
                namespace,
                provider: self.provider,
                store,
                client,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                config: self.config,
                // Blocking resizes: an incremental one is only helped along by inserts, and
                // sessions are added through `get_or_insert_with`, so the old tables would
                // stay in every lookup's probe for ever.
                sessions: papaya::HashMap::builder()
                    .hasher(foldhash::quality::RandomState::default())
                    .resize_mode(papaya::ResizeMode::Blocking)
                    .build(),
                id: memo::next_manager_id(),
                epoch: memo::Epoch::default(),
                unknown: UnknownNames::default(),
                events,
                hook: self.hook,
                holder: uuid::Uuid::new_v4().to_string(),
                holder_epochs: Default::default(),
                lease_users: Default::default(),
                tasks: tasks::Tasks::on(runtime),
                closing: AtomicBool::new(false),
                stopping: tokio_util::sync::CancellationToken::new(),
                halting: Default::default(),
                shutdowns: tokio::sync::watch::channel(0).0,
                cooldown: session::Cooldown::default(),
                scanning: AtomicBool::new(false),
                #[cfg(feature = "metrics")]
                cache,
            }),
        })
    }
}

/// Keeps every session's token fresh.
///
/// Cheap to clone (all clones share the same sessions). Each session is refreshed by one
/// task at a time; callers arriving meanwhile wait for it or, while the current access token
/// is still valid, keep using it.
///
/// Refreshes, writes through a store other than the [`MemoryStore`] and
/// [`shutdown`](Self::shutdown) run on the Tokio runtime of their caller, whichever it is
/// (not necessarily the one the manager was built in, which may be gone), which needs its
/// time driver (`enable_all`, as `#[tokio::main]` gives), or on the runtime given to
/// [`TokenManagerBuilder::runtime`]. Outside any runtime (a future polled by another
/// executor), or on one without timers, they fail with [`Error::Config`]; a fresh token is
/// served anywhere. A refresh started on a caller's runtime that is then left idle (a
/// `current_thread` helper between two `block_on`s: a call near expiry starts one in the
/// background there) waits until that runtime runs again, and so does every caller of its
/// session meanwhile: call from runtimes that keep running, or give the manager one that
/// does.
///
/// ```no_run
/// # async fn run<P: token_core::provider::Provider>(provider: P) -> Result<(), token_core::error::Error> {
/// use token_core::{store::FileStore, manager::TokenManager};
/// let manager = TokenManager::builder(provider)
///     .store(FileStore::open("/var/lib/app/tokens")?)
///     .build()?;
/// let token = manager.access_token("customer-42").await?;
/// // send `token.expose_secret()` as the bearer token
/// # Ok(()) }
/// ```
pub struct TokenManager<P: Provider> {
    inner: Arc<Inner<P>>,
}

impl<P: Provider> Clone for TokenManager<P> {
    fn clone(&self) -> Self {
        Self {
            inner: self.inner.clone(),
        }
    }
}

impl<P: Provider> std::fmt::Debug for TokenManager<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenManager")
            .field("provider", &self.inner.provider.name())
            .field("sessions", &self.inner.sessions.len())
            .finish_non_exhaustive()
    }
}

/// The namespace of a provider named `name` for `client`: `name:client`, or `name` alone.
/// A `:` or `%` in the name is written `%3A` or `%25`, so that the first `:` always ends
/// the name: a provider `a` for client `b:c` and a provider `a:b` for client `c` (or `a:b`
/// naming no client and `a` for client `b`) would otherwise share one namespace, and each
/// read and refresh the other's sessions. A name holding neither keeps the namespace it
/// always had.
fn default_namespace(name: &str, client: Option<String>) -> String {
    const SEPARATOR: &percent_encoding::AsciiSet =
        &percent_encoding::AsciiSet::EMPTY.add(b':').add(b'%');
    let name = percent_encoding::utf8_percent_encode(name, SEPARATOR);
    match client {
        Some(client) => format!("{name}:{client}"),
        None => name.to_string(),
    }
}

impl<P: Provider> TokenManager<P> {
    /// Starts building a manager for `provider`.
    pub fn builder(provider: P) -> TokenManagerBuilder<P> {
        TokenManagerBuilder {
            provider,
            store: None,
            memory: None,
            client: None,
            clock: None,
            config: ManagerConfig::default(),
            hook: None,
            runtime: None,
            namespace: None,
        }
    }

    /// The provider.
    pub fn provider(&self) -> &P {
        &self.inner.provider
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn TokenStore> {
        &self.inner.store
    }

    /// The namespace the store keeps this manager's sessions under: the provider's name,
    /// followed by its [`client_id`](Provider::client_id) when it has one, unless the
    /// builder gave another ([`TokenManagerBuilder::namespace`]).
    pub fn namespace(&self) -> &str {
        &self.inner.namespace
    }

    /// The store's key of `session`: this manager's [`namespace`](Self::namespace) and the
    /// name.
    pub fn session_key(&self, session: &str) -> SessionKey {
        SessionKey::new(self.inner.namespace.clone(), session)
    }

    /// A context for a provider's own calls outside refresh (an authorization-code exchange),
    /// through this manager's transport and clock. Insert what they obtain with
    /// [`insert`](Self::insert).
    pub fn call_context(&self, session: &str) -> CallContext {
        CallContext::new(self.inner.client.clone(), self.inner.clock.clone(), session)
    }

    /// Receives every [`Event`] from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Event> {
        self.inner.events.subscribe()
    }

    /// A valid access token for `session`, refreshing first if it has expired.
    ///
    /// Near expiry, one background refresh starts and the current token is returned.
    pub async fn access_token(&self, session: &str) -> Result<AccessToken, Error> {
        if let Some(token) = self.fresh_token(session) {
            #[cfg(feature = "metrics")]
            metered(|| self.inner.cache.hits.increment(1));
            return Ok(token);
        }
        Box::pin(self.slow_access_token(session)).await
    }

    /// A token that the fresh path could not give: loaded, waited for or refreshed.
    ///
    /// Not inlined into the callers' futures: they stay small (the fast path builds and
    /// polls one per call), and this one is boxed only when it runs.
    async fn slow_access_token(&self, session: &str) -> Result<AccessToken, Error> {
        #[cfg(feature = "metrics")]
        metered(|| self.inner.cache.misses.increment(1));
        Ok(self.current(session).await?.access_token().clone())
    }

    /// The hot path: a fresh token read under the map's guard alone (each entry holds its
    /// session's access token and until when it is fresh, beside the session), with no
    /// lock, no memory touched but the entry, its name and the token, and no exact clock
    /// read.
    ///
    /// A thread that reads the same name again is answered from its memo of the last read
    /// while no map entry has changed since ([`memo`]): no guard, no hash.
    #[inline]
    pub(crate) fn fresh_token(&self, name: &str) -> Option<AccessToken> {
        let inner = &*self.inner;
        let at_least = inner.clock.now_nanos_at_least();
        // Read before the memo and the map: a change begun after this reading moves the
        // epoch.
        let epoch = inner.epoch.now();
        match memo::recall(inner.id, epoch, name, at_least) {
            Ok(Some(token)) => Some(token),
            Ok(None) => {
                let sessions = inner.sessions.pin();
                let (key, entry) = sessions.get_key_value(name)?;
                let fresh = entry.fresh_at(at_least)?;
                let found = std::ptr::from_ref(entry) as usize;
                memo::remember(inner.id, epoch, found, &key.0, &fresh.token, fresh.until);
                Some(fresh.token.clone())
            }
            // This thread's thread-locals are being destroyed: the read comes from another
            // one's destructor. The map's guard, which keeps its thread id in one, may be
            // gone too, and pinning it would then panic, which aborts the process there. A
            // guard of its own (slower: it takes a thread id for itself) reads the entry.
            Err(_) => Some(
                (inner
                    .sessions
                    .pin_owned()
                    .get(name)?
                    .fresh_at(at_least)?
                    .token)
                    .clone(),
            ),
        }
    }

    /// The whole current set of `session` (extras included), refreshing first if needed.
    pub async fn token_set(&self, session: &str) -> Result<TokenSet<P::Extras>, Error> {
        Ok(self.current(session).await?.set())
    }

    /// Starts `session` from a refresh token alone (what a login or a partner's dashboard
    /// hands over): stores it, like [`insert`](Self::insert), and refreshes at once, so a
    /// refresh token the provider refuses is known now, not at the first API call. Returns
    /// the first access token. An empty or blank refresh token is refused with
    /// [`Error::Config`], and the session keeps what it had.
    ///
    /// ```no_run
    /// # async fn run<P: token_core::provider::Provider>(manager: token_core::manager::TokenManager<P>)
    /// # -> Result<(), token_core::error::Error> {
    /// use token_core::secret::RefreshToken;
    /// let first = manager
    ///     .insert_refresh_token("partner-42", RefreshToken::new("rt-from-login"))
    ///     .await?;
    /// # let _ = first; Ok(()) }
    /// ```
    pub async fn insert_refresh_token(
        &self,
        session: &str,
        refresh_token: RefreshToken,
    ) -> Result<AccessToken, Error> {
        // Nothing to refresh with: refused before it replaces what the session has.
        if refresh_token.expose_secret().trim().is_empty() {
            return Err(Error::Config("the refresh token is empty".into()));
        }
        // No access token yet: an empty one that has always expired, never served.
        let set = TokenSet::new(AccessToken::new(""))
            .with_refresh_token(refresh_token)
            .with_access_expires_at(OffsetDateTime::UNIX_EPOCH);
        self.insert(session, set).await?;
        self.refresh_now(session).await
    }

    /// Refreshes now, whatever the expiry, unless a refresh is already under way (whose
    /// result is then shared): in this process, or in another process sharing the store,
    /// found holding the session's refresh lease (its answer is taken once saved; if it
    /// saves none, this call refreshes).
    pub async fn refresh_now(&self, session: &str) -> Result<AccessToken, Error> {
        let session = self.inner.known_session(session)?;
        let outcome = self.inner.flight(&session, Reason::Forced).await;
        Ok(self
            .inner
            .forget_if_unknown(&session, outcome)?
            .access_token()
            .clone())
    }

    /// Reports that the provider's API refused `rejected` (HTTP 401) and returns a token to
    /// try again with: the current one if another caller already replaced `rejected`,
    /// otherwise a refreshed one. A token this call obtained is answered again, not
    /// refreshed, if it is refused within the failure cooldown (an API that refuses every
    /// token does not rotate the session on every request); refused later (accepted for a
    /// while, then revoked), it is refreshed.
    pub async fn refresh_rejected(
        &self,
        session: &str,
        rejected: &AccessToken,
    ) -> Result<AccessToken, Error> {
        let session = self.inner.known_session(session)?;
        let outcome = self
            .inner
            .flight(&session, Reason::Rejected(rejected.clone()))
            .await;
        Ok(self
            .inner
            .forget_if_unknown(&session, outcome)?
            .access_token()
            .clone())
    }

    /// Stores tokens obtained outside the manager (an authorization-code exchange, Maya's
    /// session URL) as the session's current set, replacing whatever it had, and ends a
    /// re-auth state. It wins over any refresh of the session already under way: that
    /// refresh's result (or verdict, or failure) is dropped. Once it has its turn (inserts
    /// and removes of a session take turns in the order they are called), it runs to the
    /// end even if the returned future is dropped (a caller that gives up does not leave
    /// the store and this process holding different sets), before the next insert or
    /// remove of the session, and [`shutdown`](Self::shutdown) waits for it.
    ///
    /// An access token holding an ASCII control character (CR, LF, NUL...) cannot be sent
    /// in a header: beside a refresh token it is set aside (stored empty and expired, never
    /// served; the first call refreshes, so a login whose code is spent is not lost), alone
    /// it is refused with [`Error::Config`] and the session keeps what it had (a provider's
    /// answer holding one is no answer either, unless a new refresh token comes with it:
    /// that is saved, the access token set aside). A refresh token may hold
    /// one: it travels escaped, in a body or a query. An empty (or blank) access token is
    /// taken but never served, whatever its expiry: the first call refreshes (as after
    /// [`insert_refresh_token`](Self::insert_refresh_token)); alone, it is refused with
    /// [`Error::Config`] too (nothing could serve or refresh it), unless the provider
    /// [can issue](Provider::can_issue), whose first call then issues. An empty or blank
    /// refresh token is none, as in a provider's answer.
    ///
    /// A stored record the store cannot read (damaged, or written by a newer release) is
    /// removed first, by compare-and-swap on the record as read
    /// ([`TokenStore::delete_unreadable`]): a removal that reaches the store late (its call
    /// timed out, and the insert failed) removes no record written since, such as another
    /// process's login.
    pub async fn insert(&self, session: &str, set: TokenSet<P::Extras>) -> Result<(), Error> {
        let name = session;
        let inner = &self.inner;
        let set = without_blank_refresh_token(set);
        if set.refresh_token.is_none()
            && set.access_token.expose_secret().trim().is_empty()
            && !inner.provider.can_issue()
        {
            return Err(Error::Config(
                "the access token is empty and no refresh token comes with it: nothing \
                 could serve or refresh it"
                    .into(),
            ));
        }
        let (stored, extras) = split(set)?;
        inner.start_scanning();
        // Each turn looks the name up: a session that left the map since its lookup (a
        // `remove`, or a lookup that found no tokens) is retired, and what is written must
        // reach the session the name maps to now.
        if let Some(memory) = &inner.memory {
            let refresh_at = inner.schedule(&stored);
            // One pin of the session map for the lookup and the publication (nothing here
            // awaits).
            let sessions = inner.sessions.pin();
            let session = loop {
                let session = inner.session_in(name, &sessions);
                // The store write and the publication under the session's generation lock:
                // no refresh starts in between, and one that started before publishes
                // nothing over this.
                let Some(writing) = session.writing() else {
                    continue;
                };
                // Saved, then settled: the store keeps this very state.
                let ready = Ready::new(inner.current_at(stored, extras, None, false, refresh_at));
                let (version, replaced) = memory.put_own(session.name(), ready.shared());
                ready.settle(Some(version), true);
                writing.publish(ready.into(), inner.show_in(session, &sessions));
                // Dropped with no lock held (see `LetGo`).
                drop(replaced);
                break session;
            };
            // Forgotten meanwhile (its lookup found no tokens as this insert began), the
            // session is no longer in the map: its name must not be answered "no tokens"
            // from memory now that the store has them.
            inner.unknown.forget(session.name());
            return Ok(());
        }
        // The store write and its publication run to the end even if the caller gives up
        // meanwhile: dropped between them, the store would hold the inserted set while this
        // process kept serving the one it replaced. The turn is taken here, in the caller's
        // task: a write its caller gave up on still comes before the caller's next one.
        // Counted among the tasks `shutdown` waits for while it waits for its turn too: an
        // insert under way behind another of the session is under way all the same.
        let tracked = inner.tasks.token();
        let turn = inner.write_turn(name).await;
        let (manager, name) = (self.clone(), Arc::<str>::from(name));
        to_the_end(&inner.tasks, async move {
            let _tracked = tracked;
            (manager.insert_through_store(&name, turn, stored, extras)).await
        })
        .await
    }

    /// [`insert`](Self::insert) through a store other than the manager's `MemoryStore`,
    /// starting in `turn`.
    async fn insert_through_store(
        &self,
        name: &str,
        turn: WriteTurn<P::Extras>,
        stored: StoredTokenSet,
        extras: P::Extras,
    ) -> Result<(), Error> {
        let inner = &self.inner;
        // Scheduled before the store write (the clock is read then): nothing that can fail
        // or panic comes between that write and the publication.
        let refresh_at = inner.schedule(&stored);
        let mut turn = Some(turn);
        loop {
            // Inserts and removes of one session run one at a time, and no refresh starts
            // meanwhile; one that started before publishes nothing over this.
            let (session, writing_turn) = match turn.take() {
                Some(turn) => turn,
                None => inner.write_turn(name).await,
            };
            let unsettled = Unsettled::new(inner, &session);
            let saved = inner
                .save_authoritative(&inner.key(&session), &stored)
                .await;
            unsettled.disarm();
            let version = match saved {
                Ok(version) => version,
                Err(error) => {
                    drop(writing_turn);
                    inner.forget_unwritten(&session);
                    return Err(error);
                }
            };
            if let Some(writing) = session.writing() {
                let current = inner.current_at(stored, extras, Some(version), true, refresh_at);
                // Written here (not read from the store).
                current.settle(Some(version), true);
                writing.publish(Ready::new(current).into(), inner.show(&session));
                inner.unknown.forget(session.name());
                return Ok(());
            }
        }
    }

    /// Forgets `session`: removes its set from the store and from memory. A refresh under
    /// way neither brings it back nor reports on it. (Copies of its access token already
    /// handed out stay with their holders, and so does a thread's memo of its last by-name
    /// read, until that thread reads another session.) Like [`insert`](Self::insert), once it
    /// has its turn it runs to the end even if the returned future is dropped, and
    /// [`shutdown`](Self::shutdown) waits for it.
    ///
    /// The store's record is deleted at the version read (a record saved between the read
    /// and the delete, another process's refresh, is read and deleted in turn; one that
    /// cannot be read is deleted as read, see [`insert`](Self::insert)): a delete that
    /// reaches the store late (its call timed out, and the remove failed) deletes no
    /// record written since, such as another process's next login.
    pub async fn remove(&self, session: &str) -> Result<(), Error> {
        if self.inner.memory.is_some() {
            // Nothing to wait for: done before the caller could give up.
            return self.remove_now(session, None).await;
        }
        // As in `insert`, the store write and its publication run to the end: dropped
        // between them, the store would have forgotten the session and this process would
        // keep serving its tokens. The turn is taken here, as there, and counted among the
        // tasks `shutdown` waits for meanwhile.
        let tracked = self.inner.tasks.token();
        let turn = self.inner.write_turn(session).await;
        let (manager, name) = (self.clone(), Arc::<str>::from(session));
        to_the_end(&self.inner.tasks, async move {
            let _tracked = tracked;
            manager.remove_now(&name, Some(turn)).await
        })
        .await
    }

    /// [`remove`](Self::remove), starting in `turn` if it was taken already.
    async fn remove_now(
        &self,
        session: &str,
        mut turn: Option<WriteTurn<P::Extras>>,
    ) -> Result<(), Error> {
        let name = session;
        let inner = &self.inner;
        // Made before the store write (the clock is read then): nothing that can fail or
        // panic comes between that write and the publication.
        let absent = || {
            Arc::new(State::Absent {
                checked_at: Stamp::at(inner.clock.now()),
            })
        };
        // As in `insert`, a retired session is looked up again: the delete must leave the
        // session the name maps to absent too.
        let session = loop {
            let (session, writing) = match turn.take() {
                Some((session, writing)) => (session, Some(writing)),
                None => (inner.session(name), None),
            };
            let removed = if let Some(memory) = &inner.memory {
                let mut let_go = None;
                let removed = session.replace(
                    || {
                        let absent = absent();
                        let_go = Some(memory.remove_own(session.name()));
                        Ok::<_, Error>(absent)
                    },
                    inner.show(&session),
                );
                // Dropped with no lock held (see `LetGo`).
                drop(let_go);
                removed?
            } else {
                let writing = match writing {
                    Some(writing) => writing,
                    None => session.writer().clone().lock_owned().await,
                };
                let absent = absent();
                let unsettled = Unsettled::new(inner, &session);
                let deleted = inner.delete_whatever(&inner.key(&session)).await;
                unsettled.disarm();
                if let Err(error) = deleted {
                    drop(writing);
                    inner.forget_unwritten(&session);
                    return Err(error);
                }
                session.replace(|| Ok::<_, Error>(absent), inner.show(&session))?
            };
            if removed {
                break session;
            }
        };
        // The entry goes unless a `SessionHandle` holds the session (or an insert has
        // published into it since): the handle then keeps reading it, from its fast path,
        // once tokens are inserted again.
        session.retire_if_absent(|_| {
            let _changing = inner.epoch.changing();
            inner
                .sessions
                .pin()
                .remove_if(&**session.name(), |_, entry| {
                    Arc::ptr_eq(&entry.session, &session)
                })
                .is_ok_and(|removed| removed.is_some())
        });
        Ok(())
    }

    /// Stops starting refreshes and waits, up to `within`, for those under way, for the
    /// inserts and removes under way (one waiting for its turn behind another of the
    /// session's too), and for the background saves of sets (and re-auth verdicts) whose
    /// save had failed, so that a normal exit loses no token the provider
    /// already rotated: those are tried again at once as each call begins (not after their
    /// backoff, which may be longer than `within`), then on until the deadline; so are sets
    /// whose background save was dropped unfinished with the runtime that ran it. A refresh
    /// that has spent nothing yet and is waiting on another process (for its refresh
    /// lease, or for its save) ends at once, its callers answered [`Error::ShuttingDown`].
    /// Afterwards fresh tokens are still served, but every call that needs a refresh fails
    /// with [`Error::ShuttingDown`]; inserts and removes still reach the store.
    ///
    /// Returns [`Error::ShutdownTimedOut`] if work was still running at the deadline,
    /// [`Error::Unpersisted`] (naming the sessions) if none was but a set is only in memory
    /// because the store refused it for good (a record of another kind under its key, a
    /// name it cannot hold: saving again cannot help), and `Ok` only when neither: a refresh
    /// asked for while `shutdown` runs is either waited for or never starts (its callers
    /// answered [`Error::ShuttingDown`]). Called again, or from several tasks at once, each
    /// call waits for the same work up to its own deadline.
    ///
    /// When the last call under way returns, with an error or not, the background writes
    /// (saves of sets whose save had failed, re-auth verdicts to record, asks for a pair
    /// whose answer was lost) stop for good: none of them writes to the store afterwards,
    /// where it could land over another process's newer record. A set whose save had not
    /// succeeded stays in memory, unsaved: a later `shutdown` tries it again (as it begins,
    /// then until its deadline), nothing else does. Such a task holding a session's refresh
    /// lease leaves it to lapse (its release would be a write); so does the last ask for a
    /// pair lost in transit when it fails, for another process's look for lapsed leases to
    /// take the lease over and ask for the pair inside the provider's window. A refresh
    /// still under way (its provider call or store calls, each bounded) is not stopped: a
    /// later `shutdown` waits for it, and its pair is saved by compare-and-swap as any
    /// refresh's is.
    pub async fn shutdown(&self, within: Duration) -> Result<(), Error> {
        in_runtime()?;
        let _last_halts = ShutdownCall::begin(&self.inner);
        self.inner.closing.store(true, Ordering::SeqCst);
        self.inner.stopping.cancel();
        self.inner
            .shutdowns
            .send_modify(|calls| *calls = calls.wrapping_add(1));
        // A lost pair whose asking task was dropped with the runtime that ran it is asked
        // for once more, as the others are (their tasks ask at once as `stopping` ends).
        for entry in self.inner.sessions.pin().values() {
            self.inner.resolve_later(&entry.session);
        }
        self.inner.tasks.close();
        // A set whose background save was dropped unfinished (with the runtime it ran on)
        // is saved here: no task is left to wait for, and the set is the only copy.
        let unsaved = std::sync::atomic::AtomicUsize::new(0);
        let work = async {
            self.inner.tasks.wait().await;
            let mut attempt = 0u32;
            loop {
                let left = self.inner.save_orphans().await;
                unsaved.store(left, Ordering::SeqCst);
                if left == 0 {
                    return;
                }
                attempt = attempt.saturating_add(1);
                tokio::time::sleep(self.inner.background_wait(attempt)).await;
            }
        };
        match tokio::time::timeout(within, work).await {
            Ok(()) => match self.inner.unpersisted() {
                sessions if sessions.is_empty() => Ok(()),
                sessions => Err(Error::Unpersisted { sessions }),
            },
            Err(_) => Err(Error::ShutdownTimedOut {
                pending: self.inner.tasks.len() + unsaved.load(Ordering::SeqCst),
            }),
        }
    }

    async fn current(&self, name: &str) -> Result<Ready<P::Extras>, Error> {
        let session = self.inner.known_session(name)?;
        let now = self.inner.clock.now();
        if let Some(state) = self.inner.state(&session) {
            if let Some(current) = Ready::of(&state) {
                if current.fresh(now) {
                    return Ok(current);
                }
                if current.usable(now) {
                    drop(self.inner.start_flight(&session, Reason::Proactive));
                    return Ok(current);
                }
            }
            match &*state {
                // Looked at in the store within the cooldown (a clock stepped back since
                // is no reason to wait for it to catch up: the refresh looks again).
                State::Dead {
                    reauth, checked_at, ..
                } if checked_at.within(now, self.inner.config.failure_cooldown) => {
                    return Err(Error::ReauthRequired((**reauth).clone()));
                }
                State::Absent { checked_at }
                    if !self.inner.provider.can_issue()
                        && checked_at.within(now, self.inner.config.failure_cooldown) =>
                {
                    return Err(self.inner.no_tokens(&session));
                }
                _ => {}
            }
        }
        let outcome = self.inner.flight(&session, Reason::Needed).await;
        self.inner.forget_if_unknown(&session, outcome)
    }
}

/// The session map, pinned (its guard held).
type Pinned<'m, X> =
    papaya::HashMapRef<'m, Name, Entry<X>, foldhash::quality::RandomState, papaya::LocalGuard<'m>>;

struct Inner<P: Provider> {
    provider: P,
    store: Arc<dyn TokenStore>,
    /// `store` itself when it is a `MemoryStore`: saved to through `Arc`s of the sets, in
    /// this provider's table of it.
    memory: Option<BoundMemoryStore>,
    client: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    config: ManagerConfig,
    /// Keyed with foldhash (seeded per process) rather than SipHash: a by-name read hashes
    /// the session name on the hot path, and foldhash does it in a fraction of the time.
    sessions: papaya::HashMap<Name, Entry<P::Extras>, foldhash::quality::RandomState>,
    /// This manager's identity in each thread's memo of its last by-name read ([`memo`]).
    id: u64,
    /// Moved before and after every change of a `sessions` entry ([`memo::Epoch`]): a
    /// memo taken at another epoch is not answered from.
    epoch: memo::Epoch,
    /// Names the store had no tokens for, which the session map keeps no entry for.
    unknown: UnknownNames,
    /// The namespace of every session's key in the store ([`TokenManager::namespace`]).
    namespace: Arc<str>,
    events: broadcast::Sender<Event>,
    hook: Option<Hook>,
    /// This manager's name in the store's leases.
    holder: String,
    /// The sessions whose lease release did not answer (in time, or was dropped under way), each with the epoch this process's name in their
    /// leases carries since, and the last epoch given out: such a release may still reach
    /// the store, and must find no lease of that name there (see `Inner::lease_holder`).
    /// Only ever grows, by one small entry per such session. With each epoch, the names
    /// of the session's lease this process used before whose release is still in doubt
    /// (the last few): released again before the lease is next asked for, so that the
    /// lease left under such a name does not hold up this process's next grant, as a dead
    /// holder's would (see `Inner::release_left`).
    holder_epochs: std::sync::Mutex<(u64, std::collections::HashMap<Arc<str>, lease::HolderEpoch>)>,
    /// How many users in this process hold each session's store lease (a refresh, and a
    /// background save that keeps it until its set is saved): it is released at zero.
    /// Counted by name, not per `Session`: one removed and inserted again while a refresh
    /// of the old one runs is a new `Session` under the same lease.
    lease_users: std::sync::Mutex<std::collections::HashMap<Arc<str>, Arc<lease::LeaseUsers>>>,
    /// Refreshes and background saves, waited for by `shutdown`, and where the manager's
    /// tasks run.
    tasks: tasks::Tasks,
    closing: AtomicBool,
    /// Cancelled by `shutdown`: background work that only waits (for a reuse window) stops.
    stopping: tokio_util::sync::CancellationToken,
    /// The `shutdown` calls under way, and what the background writes (failed sets' saves,
    /// verdicts to record, asks for lost pairs) stop at: cancelled as the last call under
    /// way ends, so none writes after `shutdown` returned ([`Inner::spawn_background`]);
    /// a new one as a call begins with none under way, so that call's writes run until it
    /// ends.
    halting: std::sync::Mutex<(usize, tokio_util::sync::CancellationToken)>,
    /// How many times `shutdown` was called: each call ends the backoff of the background
    /// writes (`Inner::background_pause`), so that each tries at once.
    shutdowns: tokio::sync::watch::Sender<u64>,
    /// No issuing call (a grant of the client's own) before this instant.
    cooldown: session::Cooldown,
    /// Whether the task that looks for lapsed leases was started.
    scanning: AtomicBool,
    /// Cache hits and misses, registered with the recorder installed at build time.
    #[cfg(feature = "metrics")]
    cache: crate::metrics::CacheCounters,
}

impl<P: Provider> Inner<P> {
    /// The session named `name`, unless the store had no tokens for that name within
    /// `failure_cooldown` (and the provider cannot issue them): then `NoTokens`, without
    /// a session entry or a store read.
    fn known_session(&self, name: &str) -> Result<Arc<Session<P::Extras>>, Error> {
        if let Some(entry) = self.sessions.pin().get(name) {
            return Ok(entry.session.clone());
        }
        let (now, within) = (self.clock.now(), self.config.failure_cooldown);
        if !self.provider.can_issue() {
            if self.unknown.recent(name, now, within) {
                return Err(self.no_tokens_for(name));
            }
        } else if let Some(failure) = self.unknown.recent_failure(name, now, within) {
            return Err(failure);
        }
        Ok(self.session(name))
    }

    /// Passes `outcome` on; when it is `NoTokens`, the session leaves the map (unless it
    /// is held or has tokens again) and its name is remembered among the unknown ones; when
    /// it is another error and the session was never loaded, the session leaves the map.
    fn forget_if_unknown<T>(
        &self,
        session: &Arc<Session<P::Extras>>,
        outcome: Result<T, Error>,
    ) -> Result<T, Error> {
        if let Err(error) = &outcome {
            self.forget_after(session, error);
        }
        outcome
    }

    /// What [`forget_if_unknown`](Self::forget_if_unknown) does after `error`. Also done by
    /// the refresh's own task as it ends, so that a session is forgotten though every
    /// caller gave up waiting for it.
    fn forget_after(&self, session: &Arc<Session<P::Extras>>, error: &Error) {
        let unknown = matches!(error, Error::NoTokens(_));
        // A provider that issues tokens of its own failed to for a name without tokens:
        // that failure is answered again from the bounded set of names, not from a session
        // kept for every name asked for while the provider is down.
        // So does a wait the provider asked of the whole client: it answers every name.
        // An issue whose code panicked too: it is answered again for a while as well, and
        // a session kept for it would make memory grow with the names asked for. Not a
        // refresh aborted otherwise (its lease taken by another process, which may be
        // issuing for the name and save tokens at once; its task cancelled): that says
        // nothing of the provider, and the next call looks at the store again.
        let issuing = self.provider.can_issue();
        let failed_issue = issuing && (refresh::remembered(error) || refresh::panicked(error));
        let cooling_down = issuing && matches!(error, Error::CoolingDown { .. });
        // The name is remembered under the session's generation lock, as the entry goes:
        // an insert into this session publishes after both, and then forgets the name
        // again. A session never loaded (the store failed) goes too, but its name is not
        // remembered: the store is asked again next time. One with a refresh under way
        // stays (that refresh may load it, or issue for it): looked at under the generation
        // lock, so a refresh starting after this reads the session's generation after the
        // retirement, and hands over to the mapped one.
        session.retire_if_absent(|checked_at| {
            if checked_at.is_some() && !unknown && !failed_issue && !cooling_down {
                return false;
            }
            self.unmap_absent(session, checked_at, failed_issue.then(|| error.clone()))
        });
    }

    /// After the last [`SessionHandle`] on `session` is dropped: the session leaves the map
    /// if it holds no tokens (never loaded, or absent) and no refresh is under way, as a
    /// by-name call would have left it. Otherwise every handle taken on a name without
    /// tokens, and every session removed while a handle held it, would stay for good.
    fn forget_unheld(&self, session: &Arc<Session<P::Extras>>) {
        session.retire_if_absent(|checked_at| self.unmap_absent(session, checked_at, None));
    }

    /// After an insert or a remove of `session` that the store refused (its writer lock let
    /// go): the session leaves the map if it holds no tokens (never loaded, or absent), as
    /// after a by-name call that found none, so that names whose writes failed (a store
    /// down, a name it refuses for good) are not kept one session each. Its name is not
    /// remembered among the unknown ones, and is forgotten there if a lookup put it there
    /// before the write: the write may have landed all the same (its call timed out), and
    /// the next call asks the store.
    fn forget_unwritten(&self, session: &Arc<Session<P::Extras>>) {
        // Forgotten first: while the session is still in the map, no call answers from it.
        self.unknown.forget(session.name());
        session.retire_if_absent(|_| self.unmap_absent(session, None, None));
    }

    /// Under `session`'s generation lock, as it is retired: takes it out of the map unless
    /// a refresh of it is under way (that refresh may load it, or issue for it), and
    /// remembers its name among the unknown ones if the store was asked (`checked_at`),
    /// with the `failure` of an issue for it (from now). Whether it left the map.
    fn unmap_absent(
        &self,
        session: &Arc<Session<P::Extras>>,
        checked_at: Option<Stamp>,
        failure: Option<Error>,
    ) -> bool {
        if session.in_flight() {
            return false;
        }
        // Read before the entry goes: a clock that panics leaves the map as it was.
        let now = checked_at.map(|_| self.clock.now());
        let changing = self.epoch.changing();
        let removed = self
            .sessions
            .pin()
            .remove_if(&**session.name(), |_, entry| {
                Arc::ptr_eq(&entry.session, session)
            })
            .is_ok_and(|removed| removed.is_some());
        drop(changing);
        if let (Some(checked_at), Some(now)) = (checked_at.filter(|_| removed), now) {
            let within = self.config.failure_cooldown;
            // A failure is answered again for a cooldown from when it happened.
            let at = match failure {
                Some(_) => Stamp::at(now),
                None => checked_at,
            };
            let name = session.name().clone();
            (self.unknown).remember(name, at, now, within, failure);
        }
        removed
    }

    fn session(&self, name: &str) -> Arc<Session<P::Extras>> {
        self.session_in(name, &self.sessions.pin()).clone()
    }

    /// The store's key of `session`: this manager's namespace and the session's name.
    fn key(&self, session: &Session<P::Extras>) -> SessionKey {
        SessionKey::new(self.namespace.clone(), session.name().clone())
    }

    /// [`session`](Self::session) under the guard of `sessions` (the session map pinned):
    /// no reference count taken.
    fn session_in<'g>(
        &self,
        name: &str,
        sessions: &'g Pinned<'_, P::Extras>,
    ) -> &'g Arc<Session<P::Extras>> {
        if let Some(entry) = sessions.get(name) {
            return &entry.session;
        }
        let name: Arc<str> = Arc::from(name);
        &sessions
            .get_or_insert_with(Name(name.clone()), || Entry {
                session: Arc::new(Session::new(name)),
                fresh: None,
            })
            .session
    }

    /// The session `name` maps to, with its writer lock taken (inserts and removes of one
    /// session take turns in the order they ask): a session retired meanwhile is looked up
    /// again, so that what is written reaches the session the name maps to.
    async fn write_turn(&self, name: &str) -> WriteTurn<P::Extras> {
        loop {
            let session = self.session(name);
            let writing = session.writer().clone().lock_owned().await;
            if !session.is_retired() {
                return (session, writing);
            }
        }
    }

    /// What a publication of `session`'s state also does (under its generation lock, so in
    /// the order of publication): the session map's entry takes the new current set, if
    /// the entry is still this session's (a removed session is not brought back).
    fn show<'a>(
        &'a self,
        session: &'a Session<P::Extras>,
    ) -> impl FnOnce(&Arc<State<P::Extras>>) + 'a {
        // The change is under way from here, before the publication this is given to sets
        // the session's own state (which the slow path reads), until the map's entry took
        // it (or the publication did not happen: this dropped uncalled) ([`memo`]).
        let changing = self.epoch.changing();
        move |state| {
            let _changing = changing;
            Self::show_entry(session, state, &self.sessions.pin());
        }
    }

    /// [`show`](Self::show) under the guard of `sessions`, which an `insert` pinned for
    /// its lookup too (one pin, not two).
    fn show_in<'a>(
        &'a self,
        session: &'a Session<P::Extras>,
        sessions: &'a Pinned<'_, P::Extras>,
    ) -> impl FnOnce(&Arc<State<P::Extras>>) + 'a {
        let changing = self.epoch.changing();
        move |state| {
            let _changing = changing;
            Self::show_entry(session, state, sessions);
        }
    }

    /// The session map's entry of `session` takes `state`'s current set, if it is still
    /// this session's entry.
    fn show_entry(
        session: &Session<P::Extras>,
        state: &Arc<State<P::Extras>>,
        sessions: &Pinned<'_, P::Extras>,
    ) {
        let fresh = Fresh::of(state);
        let ours = |entry: &Entry<P::Extras>| std::ptr::eq(&*entry.session, session);
        sessions.compute(Name(session.name().clone()), |found| match found {
            Some((_, entry)) if ours(entry) && !Fresh::same(&entry.fresh, &fresh) => {
                papaya::Operation::Insert(Entry {
                    session: entry.session.clone(),
                    fresh: fresh.clone(),
                })
            }
            _ => papaya::Operation::Abort(()),
        });
    }

    /// Whether `current` serves `reason` at `now` ([`Reason::satisfied_by`], a token
    /// obtained after a refusal standing for the failure cooldown).
    fn serves(&self, reason: &Reason, current: &Current<P::Extras>, now: OffsetDateTime) -> bool {
        reason.satisfied_by(current, now, self.config.failure_cooldown)
    }

    /// The state of `session`, if loaded.
    fn state(&self, session: &Session<P::Extras>) -> Option<Arc<State<P::Extras>>> {
        session.load()
    }

    /// Publishes `state` if `session` is still at `generation`.
    fn publish_if(
        &self,
        session: &Session<P::Extras>,
        generation: u64,
        state: impl Into<Arc<State<P::Extras>>>,
    ) -> bool {
        session.publish_if(generation, state.into(), self.show(session))
    }

    /// Publishes a refreshed set if `session` is still at `generation` or still holds
    /// `started_from`.
    fn publish_refreshed(
        &self,
        session: &Session<P::Extras>,
        generation: u64,
        started_from: Option<&Ready<P::Extras>>,
        state: impl Into<Arc<State<P::Extras>>>,
    ) -> bool {
        session.publish_refreshed(generation, started_from, state.into(), self.show(session))
    }

    /// Publishes `state` in place of `replaced` if `session` still holds exactly that.
    fn publish_over(
        &self,
        session: &Session<P::Extras>,
        replaced: &Ready<P::Extras>,
        state: impl Into<Arc<State<P::Extras>>>,
    ) -> bool {
        session.publish_over(replaced, state.into(), self.show(session))
    }

    fn closing(&self) -> bool {
        self.closing.load(Ordering::SeqCst)
    }

    /// The `shutdown` calls under way and what background writes stop at.
    fn halting(&self) -> std::sync::MutexGuard<'_, (usize, tokio_util::sync::CancellationToken)> {
        // A count and a token, each written whole: a panic leaves neither half-set.
        (self.halting.lock()).unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Spawns a background write among the tasks `shutdown` waits for: it stops where it
    /// is (dropped, writing nothing more) once the last `shutdown` call under way ends, and
    /// at once if it is spawned after one ended with none under way ([`halting`]).
    ///
    /// [`halting`]: Self::halting
    fn spawn_background(&self, write: impl std::future::Future<Output = ()> + Send + 'static) {
        let halted = self.halting().1.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                biased;
                () = halted.cancelled() => {}
                () = write => {}
            }
        });
    }

    /// The sessions whose current set is only in memory (its save not done).
    fn unsaved(&self) -> Vec<Arc<Session<P::Extras>>> {
        (self.sessions.pin().values())
            .filter(|entry| {
                (self
                    .state(&entry.session)
                    .and_then(|state| Ready::of(&state)))
                .is_some_and(|current| !current.saved())
            })
            .map(|entry| entry.session.clone())
            .collect()
    }

    /// The names of the [`unsaved`](Self::unsaved) sessions, sorted.
    fn unpersisted(&self) -> Vec<String> {
        let mut sessions: Vec<String> = (self.unsaved().iter())
            .map(|session| session.name().to_string())
            .collect();
        sessions.sort_unstable();
        sessions
    }

    fn current_from(
        &self,
        stored: StoredTokenSet,
        extras: P::Extras,
        version: Option<crate::store::Version>,
        saved: bool,
    ) -> Current<P::Extras> {
        let refresh_at = self.schedule(&stored);
        self.current_at(stored, extras, version, saved, refresh_at)
    }

    /// A current set to be refreshed at `refresh_at` (Unix nanoseconds).
    #[inline]
    fn current_at(
        &self,
        stored: StoredTokenSet,
        extras: P::Extras,
        version: Option<crate::store::Version>,
        saved: bool,
        refresh_at: Option<i128>,
    ) -> Current<P::Extras> {
        Current::new(stored, extras, version, saved, refresh_at)
    }

    /// When to refresh `set` ahead of expiry: before the access token expires (skew plus a
    /// random jitter), and before the refresh token does (unless it already has).
    fn schedule(&self, set: &StoredTokenSet) -> Option<i128> {
        self.schedule_by(set, true)
    }

    /// As [`schedule`](Self::schedule), by the access token's expiry alone unless
    /// `refresh_expiry`. In Unix nanoseconds.
    fn schedule_by(&self, set: &StoredTokenSet, refresh_expiry: bool) -> Option<i128> {
        let jitter = crate::random::up_to(self.config.skew_jitter);
        // In Unix nanoseconds (as `i128`, which holds every instant `time` represents with
        // room for the arithmetic): no calendar arithmetic on every insert and refresh. "Now"
        // is the clock's cheap upper bound (the system clock's is up to a tick and 50 ms
        // late): the half of the remaining life below comes out that much shorter at most.
        let now = i128::from(self.clock.now_nanos_at_least());
        // A skew longer than half the token's remaining life would refresh it at once, and
        // again after every answer: take at most half.
        let at_most_half = |at: OffsetDateTime, skew: Duration| {
            let at = at.unix_timestamp_nanos();
            let skew = i128::try_from(skew.as_nanos()).unwrap_or(i128::MAX);
            at - skew.min((at - now).max(0) / 2)
        };
        let access = set
            .access_expires_at
            .map(|at| at_most_half(at, self.config.refresh_skew.saturating_add(jitter)));
        // A refresh token whose expiry has passed is no reason to refresh: that cannot renew
        // it (the provider judges it at the next refresh the access token schedules). So for
        // a set read from the store too, not only for the answer of this process's refresh
        // (`refreshed`): another process that got a pair whose new refresh token was answered
        // as already expired would otherwise be followed at once by a refresh of each process
        // that reads it.
        let refresh = set
            .refresh_expires_at
            .filter(|at| refresh_expiry && at.unix_timestamp_nanos() > now)
            .map(|at| at_most_half(at, self.config.refresh_token_skew));
        match (access, refresh) {
            (Some(a), Some(r)) => Some(a.min(r)),
            (a, r) => a.or(r),
        }
    }

    /// Reports `event` to the metrics recorder, the hook and the subscribers. A panicking
    /// hook or recorder is caught and logged: it must not take the refresh down with it.
    fn emit(&self, event: Event) {
        #[cfg(feature = "metrics")]
        metered(|| crate::metrics::record(self.provider.name(), &event));
        if let Some(hook) = &self.hook
            && catch_unwind(AssertUnwindSafe(|| hook(&event))).is_err()
        {
            tracing::error!(event = event.name(), "the on_event hook panicked; ignored");
        }
        let _ = self.events.send(event);
    }

    fn reauth_for(&self, session: &Session<P::Extras>, error: &Error) -> Reauth {
        if let Some(reauth) = error.reauth() {
            let mut reauth = reauth.clone();
            reauth.authorize_url = reauth
                .authorize_url
                .or_else(|| self.authorize_url(session.name()));
            return reauth;
        }
        Reauth {
            session: session.name().to_string(),
            code: error.provider_code().map(str::to_owned),
            reason: error.to_string(),
            authorize_url: self.authorize_url(session.name()),
        }
    }

    fn reauth_from(&self, session: &Session<P::Extras>, verdict: ReauthVerdict) -> Reauth {
        Reauth {
            session: session.name().to_string(),
            code: verdict.code,
            reason: verdict.reason,
            authorize_url: self.authorize_url(session.name()),
        }
    }

    /// Where the provider sends a user to log `session` in again. A provider whose
    /// `authorize_url` panics costs the signal its URL, not the verdict it comes with (a
    /// panic there would end the refresh before the verdict is recorded, and the dead
    /// refresh token be presented again after every cooldown).
    fn authorize_url(&self, session: &str) -> Option<String> {
        catch_unwind(AssertUnwindSafe(|| self.provider.authorize_url(session))).unwrap_or_else(
            |_| {
                tracing::error!(
                    "the provider's authorize_url panicked; the re-auth signal has no URL"
                );
                None
            },
        )
    }

    fn no_tokens(&self, session: &Session<P::Extras>) -> Error {
        self.no_tokens_for(session.name())
    }

    fn no_tokens_for(&self, session: &str) -> Error {
        let mut reauth = Reauth::new(session, "no tokens are stored for the session");
        reauth.authorize_url = self.authorize_url(session);
        Error::NoTokens(reauth)
    }
}

/// A call of `shutdown` under way: the last to end (returned, or dropped) stops the
/// manager's background writes ([`Inner::halting`]).
struct ShutdownCall<'a, P: Provider>(&'a Inner<P>);

impl<'a, P: Provider> ShutdownCall<'a, P> {
    fn begin(inner: &'a Inner<P>) -> Self {
        let mut halting = inner.halting();
        if halting.0 == 0 && halting.1.is_cancelled() {
            halting.1 = tokio_util::sync::CancellationToken::new();
        }
        halting.0 += 1;
        Self(inner)
    }
}

impl<P: Provider> Drop for ShutdownCall<'_, P> {
    fn drop(&mut self) {
        let mut halting = self.0.halting();
        halting.0 -= 1;
        if halting.0 == 0 {
            halting.1.cancel();
        }
    }
}

/// A session and its writer lock, held: the turn of an insert or a remove.
type WriteTurn<X> = (Arc<Session<X>>, tokio::sync::OwnedMutexGuard<()>);

/// An insert's or a remove's write through the store under way: dropped unfinished (its
/// task dropped with the runtime that ran it, while the manager lives on in another), the
/// write may have landed, and the session's set in memory may no longer be the store's. The
/// session is then unloaded, and the next call reads it from the store, rather than serve a
/// removed session's tokens, or the ones an insert replaced, until their expiry.
struct Unsettled<'a, P: Provider> {
    inner: &'a Inner<P>,
    session: Option<&'a Session<P::Extras>>,
}

impl<'a, P: Provider> Unsettled<'a, P> {
    fn new(inner: &'a Inner<P>, session: &'a Session<P::Extras>) -> Self {
        Self {
            inner,
            session: Some(session),
        }
    }

    /// The write answered: the insert or remove goes on.
    fn disarm(mut self) {
        self.session = None;
    }
}

impl<P: Provider> Drop for Unsettled<'_, P> {
    fn drop(&mut self) {
        let Some(session) = self.session.take() else {
            return;
        };
        let changing = self.inner.epoch.changing();
        session.unload(|| {
            let ours = |entry: &Entry<P::Extras>| std::ptr::eq(&*entry.session, session);
            (self.inner.sessions.pin()).compute(
                Name(session.name().clone()),
                |found| match found {
                    Some((_, entry)) if ours(entry) && entry.fresh.is_some() => {
                        papaya::Operation::Insert(Entry {
                            session: entry.session.clone(),
                            fresh: None,
                        })
                    }
                    _ => papaya::Operation::Abort(()),
                },
            );
        });
        drop(changing);
    }
}

/// Runs `write` in a task of its own among `tasks` (which `shutdown` waits for) and waits for
/// it: a caller that gives up does not stop it halfway. A panic in it (in a clock, say)
/// reaches the caller as if it ran there.
async fn to_the_end<T: Send + 'static>(
    tasks: &tasks::Tasks,
    write: impl std::future::Future<Output = Result<T, Error>> + Send + 'static,
) -> Result<T, Error> {
    use tracing::Instrument;
    in_runtime()?;
    match tasks
        .spawn(write.instrument(tracing::Span::current()))
        .await
    {
        Ok(done) => done,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        // Cancelled only as the runtime shuts down.
        Err(_) => Err(Error::ShuttingDown),
    }
}

/// Runs `record` (a call of the installed metrics recorder, the application's code): a
/// panic in it is logged and ignored, as one in the `on_event` hook is.
#[cfg(feature = "metrics")]
pub(crate) fn metered(record: impl FnOnce()) {
    if catch_unwind(AssertUnwindSafe(record)).is_err() {
        tracing::error!("the metrics recorder panicked; ignored");
    }
}

/// Whether the caller runs inside a Tokio runtime with its time driver, where refreshes
/// and writes are spawned and bounded by timeouts (a future polled by another executor, or
/// by hand, is not in one; a runtime built without `enable_time` has no timers): a typed
/// error otherwise, rather than the panic of `tokio::spawn` or of a timeout.
fn in_runtime() -> Result<(), Error> {
    if tokio::runtime::Handle::try_current().is_err() {
        return Err(Error::Config(
            "the token manager was called outside a Tokio runtime; it runs refreshes and \
             store writes as Tokio tasks"
                .into(),
        ));
    }
    if !has_timers() {
        return Err(Error::Config(
            "the token manager was called on a Tokio runtime without timers; build the \
             runtime with `enable_time` (or `enable_all`)"
                .into(),
        ));
    }
    Ok(())
}

/// Whether the runtime entered has its time driver. Tokio has no question for it: making a
/// timer panics without the driver (and the panic hook reports it, once per such call).
fn has_timers() -> bool {
    catch_unwind(|| drop(tokio::time::sleep(Duration::ZERO))).is_ok()
}

/// A session map entry: the session, and what the by-name fast path reads of its current
/// set (replaced with it).
struct Entry<X> {
    session: Arc<Session<X>>,
    fresh: Option<Fresh>,
}

impl<X> Entry<X> {
    /// The session's access token and until when it is fresh, if it is at `at_least`.
    #[inline]
    fn fresh_at(&self, at_least: i64) -> Option<&Fresh> {
        self.fresh.as_ref().filter(|fresh| at_least < fresh.until)
    }
}

/// The access token of a session's current set and until when it is fresh, in the map's
/// entry itself: a by-name read touches the entry and the token, not the set's state (one
/// dependent memory access less per read of a session not in cache).
#[derive(Clone)]
struct Fresh {
    token: AccessToken,
    /// [`Current::fresh_until`](session::Current): Unix nanoseconds.
    until: i64,
}

impl Fresh {
    /// What the fast path reads of `state`: nothing unless it is ready.
    fn of<X>(state: &State<X>) -> Option<Self> {
        match state {
            State::Ready(current) => Some(Self {
                token: current.access_token().clone(),
                until: current.fresh_until,
            }),
            State::Absent { .. } | State::Dead { .. } => None,
        }
    }

    /// Whether the fast path would read the same in `a` and `b` (the same token, shared,
    /// fresh until the same instant): an entry showing one needs no replacement by the other.
    fn same(a: &Option<Self>, b: &Option<Self>) -> bool {
        match (a, b) {
            (Some(a), Some(b)) => {
                std::ptr::eq(a.token.expose_secret(), b.token.expose_secret()) && a.until == b.until
            }
            (None, None) => true,
            _ => false,
        }
    }
}

/// `set` (its blank refresh token already dropped) in the form stores keep (moved, not
/// copied) and its typed extras.
fn split<X: crate::token_set::Extras>(mut set: TokenSet<X>) -> Result<(StoredTokenSet, X), Error> {
    // Served, it would fail every API call until it expires; the value is not repeated.
    if crate::codec::unsendable(set.access_token.expose_secret()) {
        if set.refresh_token.is_none() {
            return Err(Error::Config(format!(
                "{} and cannot be sent in a header, and no refresh token comes with it",
                crate::codec::UNSENDABLE_ACCESS
            )));
        }
        // A login's refresh token (an authorization code, spent, got it) is kept: the
        // access token is set aside, and the first call refreshes.
        crate::codec::set_aside_unusable_access(&mut set);
        tracing::warn!(
            "{} and cannot be sent in a header: set aside, the session is refreshed first",
            crate::codec::UNSENDABLE_ACCESS
        );
    }
    // serde's message may quote a value (an extra can be personal data): name its kind only.
    let json = extras_json(&set.extras).map_err(|e| {
        Error::Config(format!(
            "the provider's extras could not be serialized ({:?} error)",
            e.classify()
        ))
    })?;
    Ok(untyped(set, json))
}

/// `set` without a blank refresh token: one is no refresh token (a refresh's answer keeps
/// the previous one), for a hand-written provider's set and an inserted one as for a
/// declared answer (`decode_response`): stored, it could never refresh, and presented, it
/// would be refused as a dead session's.
pub(super) fn without_blank_refresh_token<X>(mut set: TokenSet<X>) -> TokenSet<X> {
    if (set.refresh_token.as_ref()).is_some_and(|t| t.expose_secret().trim().is_empty()) {
        set.refresh_token = None;
    }
    set
}

/// `extras` as JSON. [`NoExtras`](crate::token_set::NoExtras) (most providers') is the
/// empty object that serde would make, without serde's machinery on every insert and refresh.
/// A `Serialize` that panics fails like one that errs: in a refresh, the tokens the provider
/// sent are then saved without their extras, not dropped.
fn extras_json<X: crate::token_set::Extras>(
    extras: &X,
) -> Result<serde_json::Value, serde_json::Error> {
    use std::any::TypeId;
    if TypeId::of::<X>() == TypeId::of::<crate::token_set::NoExtras>() {
        return Ok(serde_json::Value::Object(serde_json::Map::new()));
    }
    catch_unwind(AssertUnwindSafe(|| serde_json::to_value(extras))).unwrap_or_else(|_| {
        Err(serde::ser::Error::custom(
            "the extras' Serialize implementation panicked",
        ))
    })
}

/// `set` with `json` for its extras, and the typed extras.
fn untyped<X>(set: TokenSet<X>, json: serde_json::Value) -> (StoredTokenSet, X) {
    let TokenSet {
        access_token,
        refresh_token,
        access_expires_at,
        refresh_expires_at,
        token_type,
        scope,
        extras,
    } = set;
    let stored = TokenSet {
        access_token,
        refresh_token,
        access_expires_at,
        refresh_expires_at,
        token_type,
        scope,
        extras: json,
    };
    (stored, extras)
}

/// What finding another component's coordination record under a session's key is.
fn not_a_session(key: &SessionKey) -> Error {
    StoreError::Corrupt(format!("{key} holds a coordination record, not a session")).into()
}

/// A set as a store gave it, with its extras typed.
fn from_stored<X: crate::token_set::Extras>(
    stored: StoredTokenSet,
) -> Result<(StoredTokenSet, X), Error> {
    let extras = match &stored.extras {
        serde_json::Value::Null => X::default(),
        json => X::deserialize(json).map_err(|e| {
            Error::from(StoreError::Corrupt(format!(
                "stored extras do not fit this provider ({:?} error)",
                e.classify()
            )))
        })?,
    };
    Ok((stored, extras))
}

#[cfg(test)]
mod tests;
