//! The refresh-and-retry manager: one cached token set per session, refreshed ahead of
//! expiry by exactly one task, persisted before use, with events for what happened.
//!
//! The fast path of [`TokenManager::access_token`] is a lock-free map lookup
//! ([`papaya`]) and an atomic load ([`arc_swap`]); locks and I/O are only on the slow path.

mod event;
mod retry;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use arc_swap::ArcSwapOption;
use rand::Rng;
use time::OffsetDateTime;
use tokio::sync::{broadcast, watch};
use tracing::Instrument;

pub use event::Event;
pub use retry::RetryPolicy;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, ErrorKind, Reauth, StoreError};
use crate::provider::{CallContext, Provider};
use crate::secret::AccessToken;
use crate::store::{
    Lease, MemoryStore, ReauthVerdict, SessionKey, StoredRecord, TokenStore, Version,
};
use crate::token_set::TokenSet;
use crate::transport::{HttpClient, ReqwestClient};

/// When to refresh, how to retry, how long a cross-process lease lasts.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ManagerConfig {
    /// Refresh this long before the access token expires.
    pub refresh_skew: Duration,
    /// Refresh up to this much earlier again, chosen at random per token set, so sessions
    /// issued together do not all refresh in the same instant.
    pub skew_jitter: Duration,
    /// Refresh this long before the refresh token expires, if the session is in use then.
    pub refresh_token_skew: Duration,
    /// Backoff and bounds for retrying a failed refresh.
    pub retry: RetryPolicy,
    /// How long a refresh lease is held in a store shared by several processes.
    pub lease_ttl: Duration,
    /// After a failed ahead-of-expiry refresh, wait this long before trying again (the
    /// current token is still valid meanwhile).
    pub failure_cooldown: Duration,
    /// How many times a set whose save failed is saved again in the background.
    pub save_retries: u32,
}

impl Default for ManagerConfig {
    fn default() -> Self {
        Self {
            refresh_skew: Duration::from_secs(60),
            skew_jitter: Duration::from_secs(30),
            refresh_token_skew: Duration::from_secs(600),
            retry: RetryPolicy::default(),
            lease_ttl: Duration::from_secs(30),
            failure_cooldown: Duration::from_secs(5),
            save_retries: 8,
        }
    }
}

impl ManagerConfig {
    /// Sets the skew and its jitter.
    pub fn with_refresh_skew(mut self, skew: Duration, jitter: Duration) -> Self {
        self.refresh_skew = skew;
        self.skew_jitter = jitter;
        self
    }

    /// Sets how long before refresh-token expiry a session in use is refreshed.
    pub fn with_refresh_token_skew(mut self, skew: Duration) -> Self {
        self.refresh_token_skew = skew;
        self
    }

    /// Sets the retry policy.
    pub fn with_retry(mut self, retry: RetryPolicy) -> Self {
        self.retry = retry;
        self
    }

    /// Sets the lease length.
    pub fn with_lease_ttl(mut self, ttl: Duration) -> Self {
        self.lease_ttl = ttl;
        self
    }

    /// Sets the cooldown after a failed ahead-of-expiry refresh.
    pub fn with_failure_cooldown(mut self, cooldown: Duration) -> Self {
        self.failure_cooldown = cooldown;
        self
    }
}

type Hook = Arc<dyn Fn(&Event) + Send + Sync>;

/// Builds a [`TokenManager`].
pub struct TokenManagerBuilder<P: Provider> {
    provider: P,
    store: Option<Arc<dyn TokenStore>>,
    client: Option<Arc<dyn HttpClient>>,
    clock: Option<Arc<dyn Clock>>,
    config: ManagerConfig,
    hook: Option<Hook>,
}

impl<P: Provider> TokenManagerBuilder<P> {
    /// Where sessions are persisted (default: a new [`MemoryStore`]).
    pub fn store(mut self, store: impl TokenStore) -> Self {
        self.store = Some(Arc::new(store));
        self
    }

    /// Shares a store with other managers or the application.
    pub fn shared_store(mut self, store: Arc<dyn TokenStore>) -> Self {
        self.store = Some(store);
        self
    }

    /// The transport (default: [`ReqwestClient::new`]).
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

    /// A callback run for every [`Event`], in the task where it happened. Keep it short.
    pub fn on_event(mut self, hook: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.hook = Some(Arc::new(hook));
        self
    }

    /// Builds the manager.
    pub fn build(self) -> Result<TokenManager<P>, Error> {
        let client = match self.client {
            Some(client) => client,
            None => Arc::new(ReqwestClient::new()?),
        };
        let (events, _) = broadcast::channel(1024);
        Ok(TokenManager {
            inner: Arc::new(Inner {
                provider: self.provider,
                store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
                client,
                clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
                config: self.config,
                sessions: papaya::HashMap::new(),
                events,
                hook: self.hook,
                holder: uuid::Uuid::new_v4().to_string(),
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
/// ```no_run
/// # async fn run<P: token_core::Provider>(provider: P) -> Result<(), token_core::Error> {
/// use token_core::{FileStore, TokenManager};
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

impl<P: Provider> TokenManager<P> {
    /// Starts building a manager for `provider`.
    pub fn builder(provider: P) -> TokenManagerBuilder<P> {
        TokenManagerBuilder {
            provider,
            store: None,
            client: None,
            clock: None,
            config: ManagerConfig::default(),
            hook: None,
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
            return Ok(token);
        }
        Ok(self.current(session).await?.set.access_token.clone())
    }

    /// The hot path: a fresh token read through the map's guard and the cell's guard, with
    /// no lock and no reference count touched but the token's own.
    fn fresh_token(&self, name: &str) -> Option<AccessToken> {
        let sessions = self.inner.sessions.pin();
        let state = sessions.get(name)?.state.load();
        match state.as_deref()? {
            State::Ready(current) if current.fresh(self.inner.clock.now()) => {
                Some(current.set.access_token.clone())
            }
            _ => None,
        }
    }

    /// The whole current set of `session` (extras included), refreshing first if needed.
    pub async fn token_set(&self, session: &str) -> Result<TokenSet<P::Extras>, Error> {
        Ok(self.current(session).await?.set.clone())
    }

    /// Refreshes now, whatever the expiry, unless a refresh is already under way (whose
    /// result is then shared).
    pub async fn refresh_now(&self, session: &str) -> Result<AccessToken, Error> {
        let session = self.inner.session(session);
        let outcome = self.inner.flight(&session, Reason::Forced).await?;
        Ok(outcome.set.access_token.clone())
    }

    /// Reports that the provider's API refused `rejected` (HTTP 401) and returns a token to
    /// try again with: the current one if another caller already replaced `rejected`,
    /// otherwise a refreshed one.
    pub async fn refresh_rejected(
        &self,
        session: &str,
        rejected: &AccessToken,
    ) -> Result<AccessToken, Error> {
        let session = self.inner.session(session);
        let outcome = self
            .inner
            .flight(&session, Reason::Rejected(rejected.clone()))
            .await?;
        Ok(outcome.set.access_token.clone())
    }

    /// Stores tokens obtained outside the manager (an authorization-code exchange, Maya's
    /// session URL) as the session's current set, replacing whatever it had, and ends a
    /// re-auth state.
    pub async fn insert(&self, session: &str, set: TokenSet<P::Extras>) -> Result<(), Error> {
        let session = self.inner.session(session);
        let stored = to_stored(&set)?;
        let existing = self
            .inner
            .store
            .load(&session.key)
            .await?
            .map(|r| r.version);
        let version = self
            .inner
            .save_authoritative(&session.key, &stored, existing)
            .await?;
        let current = self.inner.current_from(set, Some(version), true);
        session.publish(State::Ready(Arc::new(current)));
        Ok(())
    }

    /// Forgets `session`: removes its set from the store and from memory.
    pub async fn remove(&self, session: &str) -> Result<(), Error> {
        let session = self.inner.session(session);
        self.inner.store.delete(&session.key, None).await?;
        session.publish(State::Absent);
        Ok(())
    }

    async fn current(&self, name: &str) -> Result<Arc<Current<P::Extras>>, Error> {
        let session = self.inner.session(name);
        let now = self.inner.clock.now();
        if let Some(state) = &*session.state.load() {
            match &**state {
                State::Ready(current) if current.fresh(now) => return Ok(current.clone()),
                State::Ready(current) if current.usable(now) => {
                    drop(self.inner.start_flight(&session, Reason::Proactive));
                    return Ok(current.clone());
                }
                State::Dead(reauth) => return Err(Error::ReauthRequired(reauth.clone())),
                _ => {}
            }
        }
        self.inner.flight(&session, Reason::Needed).await
    }
}

/// Why a refresh was started; decides whether the state found when it runs already
/// satisfies it.
#[derive(Clone, Debug)]
enum Reason {
    /// A caller found the token near expiry but still valid.
    Proactive,
    /// A caller has no usable token (none loaded, or expired).
    Needed,
    /// The API refused this token.
    Rejected(AccessToken),
    /// The application asked.
    Forced,
}

impl Reason {
    fn as_str(&self) -> &'static str {
        match self {
            Self::Proactive => "proactive",
            Self::Needed => "needed",
            Self::Rejected(_) => "rejected",
            Self::Forced => "forced",
        }
    }

    fn satisfied_by<X>(&self, current: &Current<X>, now: OffsetDateTime) -> bool {
        match self {
            Self::Proactive | Self::Needed => current.fresh(now),
            Self::Rejected(token) => current.set.access_token != *token,
            Self::Forced => false,
        }
    }
}

struct Inner<P: Provider> {
    provider: P,
    store: Arc<dyn TokenStore>,
    client: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    config: ManagerConfig,
    sessions: papaya::HashMap<Arc<str>, Arc<Session<P::Extras>>>,
    events: broadcast::Sender<Event>,
    hook: Option<Hook>,
    holder: String,
}

type Outcome<X> = Result<Arc<Current<X>>, Error>;

struct Session<X> {
    key: SessionKey,
    name: Arc<str>,
    /// `None` until loaded from the store.
    state: ArcSwapOption<State<X>>,
    /// The refresh under way, if any. Locked only on the slow path.
    flight: Mutex<Option<watch::Receiver<Option<Outcome<X>>>>>,
}

impl<X> Session<X> {
    fn publish(&self, state: State<X>) {
        self.state.store(Some(Arc::new(state)));
    }

    fn flight_slot(&self) -> MutexGuard<'_, Option<watch::Receiver<Option<Outcome<X>>>>> {
        // The slot holds a receiver only; a panic cannot leave it inconsistent.
        self.flight
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

enum State<X> {
    /// The store has no set for the session.
    Absent,
    Ready(Arc<Current<X>>),
    /// Re-auth was signalled; nothing is refreshed until new tokens are inserted.
    Dead(Reauth),
}

struct Current<X> {
    set: TokenSet<X>,
    /// The store version this set is at (or, unsaved, the version it replaces).
    version: Option<Version>,
    saved: bool,
    /// When to refresh ahead of expiry; `None`: only when refused or forced.
    refresh_at: Option<OffsetDateTime>,
}

impl<X> Current<X> {
    fn fresh(&self, now: OffsetDateTime) -> bool {
        self.refresh_at.is_none_or(|at| now < at) && self.usable(now)
    }

    fn usable(&self, now: OffsetDateTime) -> bool {
        self.set.access_expires_at.is_none_or(|at| now < at)
    }
}

impl<P: Provider> Inner<P> {
    fn session(&self, name: &str) -> Arc<Session<P::Extras>> {
        let sessions = self.sessions.pin();
        if let Some(session) = sessions.get(name) {
            return session.clone();
        }
        let name: Arc<str> = Arc::from(name);
        sessions
            .get_or_insert_with(name.clone(), || {
                Arc::new(Session {
                    key: SessionKey::new(self.provider.name(), name.clone()),
                    name,
                    state: ArcSwapOption::empty(),
                    flight: Mutex::new(None),
                })
            })
            .clone()
    }

    fn current_from(
        &self,
        set: TokenSet<P::Extras>,
        version: Option<Version>,
        saved: bool,
    ) -> Current<P::Extras> {
        let refresh_at = self.schedule(&set);
        Current {
            set,
            version,
            saved,
            refresh_at,
        }
    }

    /// When to refresh `set` ahead of expiry: before the access token expires (skew plus a
    /// random jitter), and before the refresh token does.
    fn schedule(&self, set: &TokenSet<P::Extras>) -> Option<OffsetDateTime> {
        let jitter = self.config.skew_jitter.as_millis() as u64;
        let jitter = Duration::from_millis(if jitter == 0 {
            0
        } else {
            rand::rng().random_range(0..=jitter)
        });
        let access = set
            .access_expires_at
            .map(|at| at - self.config.refresh_skew - jitter);
        let refresh = set
            .refresh_expires_at
            .map(|at| at - self.config.refresh_token_skew);
        match (access, refresh) {
            (Some(a), Some(r)) => Some(a.min(r)),
            (a, r) => a.or(r),
        }
    }

    fn emit(&self, event: Event) {
        if let Some(hook) = &self.hook {
            hook(&event);
        }
        let _ = self.events.send(event);
    }

    /// Joins the refresh under way for `session`, or starts one in its own task.
    fn start_flight(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        reason: Reason,
    ) -> watch::Receiver<Option<Outcome<P::Extras>>> {
        let mut slot = session.flight_slot();
        if let Some(running) = slot.as_ref() {
            return running.clone();
        }
        let (tx, rx) = watch::channel(None);
        *slot = Some(rx.clone());
        drop(slot);
        let inner = self.clone();
        let session = session.clone();
        let span = tracing::info_span!(
            "token_refresh",
            provider = %self.provider.name(),
            session = %session.name,
            reason = reason.as_str(),
        );
        tokio::spawn(
            async move {
                let outcome = inner.run(&session, reason).await;
                // The new state is published inside `run`; free the slot before waking the
                // waiters, so a caller that finds no flight also finds the new state.
                session.flight_slot().take();
                let _ = tx.send(Some(outcome));
            }
            .instrument(span),
        );
        rx
    }

    async fn flight(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        reason: Reason,
    ) -> Outcome<P::Extras> {
        let mut rx = self.start_flight(session, reason);
        let outcome = match rx.wait_for(Option::is_some).await {
            Ok(outcome) => outcome.clone(),
            Err(_) => None,
        };
        outcome.unwrap_or_else(|| {
            Err(Error::Config(
                "the refresh task ended without an answer".into(),
            ))
        })
    }

    /// One refresh, start to end: load, lease, re-read, call the provider with retries,
    /// persist, publish.
    async fn run(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        reason: Reason,
    ) -> Outcome<P::Extras> {
        let state = match session.state.load_full() {
            Some(state) => state,
            None => {
                let state = Arc::new(self.load_state(session).await?);
                session.state.store(Some(state.clone()));
                state
            }
        };
        let now = self.clock.now();
        let current = match &*state {
            State::Dead(reauth) => return Err(Error::ReauthRequired(reauth.clone())),
            State::Ready(current) if reason.satisfied_by(current, now) => {
                return Ok(current.clone());
            }
            State::Ready(current) => Some(current.clone()),
            State::Absent if self.provider.can_issue() => None,
            State::Absent => return Err(self.no_tokens(session)),
        };

        let current = match self.take_lease(session, current, &reason).await? {
            LeaseTaken::Settled(current) => return Ok(current),
            LeaseTaken::Held(current) => current,
        };
        let outcome = self.refresh_held(session, current).await;
        if let Err(error) = self.store.release_lease(&session.key, &self.holder).await {
            tracing::warn!(%error, "could not release the refresh lease; it will lapse");
        }
        outcome
    }

    async fn load_state(&self, session: &Session<P::Extras>) -> Result<State<P::Extras>, Error> {
        Ok(match self.store.load(&session.key).await? {
            Some(record) => match record.value {
                StoredRecord::Tokens(set) => {
                    let set = from_stored(set)?;
                    State::Ready(Arc::new(self.current_from(set, Some(record.version), true)))
                }
                StoredRecord::Reauth(verdict) => State::Dead(self.reauth_from(session, verdict)),
            },
            None => State::Absent,
        })
    }

    /// Takes the store's refresh lease, waiting while another process holds it; then
    /// re-reads the store, since the other process may have refreshed meanwhile (a replica
    /// must never refresh with a refresh token another one already used).
    async fn take_lease(
        &self,
        session: &Session<P::Extras>,
        mut current: Option<Arc<Current<P::Extras>>>,
        reason: &Reason,
    ) -> Result<LeaseTaken<P::Extras>, Error> {
        let started = tokio::time::Instant::now();
        let mut polls = 0u32;
        loop {
            match self
                .store
                .acquire_lease(&session.key, &self.holder, self.config.lease_ttl)
                .await?
            {
                Lease::Acquired => break,
                Lease::HeldByOther { remaining } => {
                    polls += 1;
                    if started.elapsed() > self.config.lease_ttl * 2 {
                        return Err(Error::Store(StoreError::Backend {
                            message: "another process held the refresh lease too long".into(),
                            source: None,
                        }));
                    }
                    let wait = self
                        .config
                        .retry
                        .backoff(polls, None)
                        .min(remaining)
                        .max(Duration::from_millis(10));
                    tokio::time::sleep(wait).await;
                    if let Some(adopted) = self.adopt_newer(session, current.as_ref()).await? {
                        if reason.satisfied_by(&adopted, self.clock.now()) {
                            return Ok(LeaseTaken::Settled(adopted));
                        }
                        current = Some(adopted);
                    }
                }
            }
        }
        if let Some(adopted) = self.adopt_newer(session, current.as_ref()).await? {
            if reason.satisfied_by(&adopted, self.clock.now()) {
                let _ = self.store.release_lease(&session.key, &self.holder).await;
                return Ok(LeaseTaken::Settled(adopted));
            }
            current = Some(adopted);
        }
        Ok(LeaseTaken::Held(current))
    }

    /// Takes the stored set if another writer replaced ours.
    async fn adopt_newer(
        &self,
        session: &Session<P::Extras>,
        current: Option<&Arc<Current<P::Extras>>>,
    ) -> Result<Option<Arc<Current<P::Extras>>>, Error> {
        // An unsaved set is newer than anything stored: keep it.
        if current.is_some_and(|c| !c.saved) {
            return Ok(None);
        }
        let Some(record) = self.store.load(&session.key).await? else {
            return Ok(None);
        };
        if current.is_some_and(|c| c.version == Some(record.version)) {
            return Ok(None);
        }
        let set = match record.value {
            StoredRecord::Tokens(set) => set,
            StoredRecord::Reauth(verdict) => {
                let reauth = self.reauth_from(session, verdict);
                session.publish(State::Dead(reauth.clone()));
                return Err(Error::ReauthRequired(reauth));
            }
        };
        let adopted = Arc::new(self.current_from(from_stored(set)?, Some(record.version), true));
        session.publish(State::Ready(adopted.clone()));
        self.emit(Event::Adopted {
            session: session.name.clone(),
            version: record.version,
        });
        Ok(Some(adopted))
    }

    async fn refresh_held(
        self: &Arc<Self>,
        session: &Arc<Session<P::Extras>>,
        current: Option<Arc<Current<P::Extras>>>,
    ) -> Outcome<P::Extras> {
        let cx = CallContext::new(
            self.client.clone(),
            self.clock.clone(),
            session.name.clone(),
        );
        match self.obtain(&cx, current.as_deref().map(|c| &c.set)).await {
            Ok((set, issued)) => {
                let rotated = current.as_ref().is_some_and(|c| set.rotated_from(&c.set));
                let base = current.as_ref().and_then(|c| c.version);
                let next = self.persist(session, set, base).await;
                let next = Arc::new(next);
                session.publish(State::Ready(next.clone()));
                tracing::info!(rotated, issued, saved = next.saved, "token set refreshed");
                self.emit(Event::Refreshed {
                    session: session.name.clone(),
                    rotated,
                    issued,
                    access_expires_at: next.set.access_expires_at,
                    version: next.saved.then_some(next.version).flatten(),
                });
                if !next.saved {
                    self.clone().spawn_save_retry(session.clone(), next.clone());
                }
                Ok(next)
            }
            Err(error) if error.kind() == ErrorKind::ReauthRequired => {
                let reauth = self.reauth_for(session, &error);
                let version = current.as_ref().and_then(|c| c.version);
                let verdict = ReauthVerdict::new(
                    reauth.code.clone(),
                    reauth.reason.clone(),
                    self.clock.now(),
                );
                if let Err(store_error) = self
                    .store
                    .save(&session.key, &verdict.into(), version)
                    .await
                {
                    tracing::warn!(error = %store_error, "could not record the re-auth verdict");
                }
                session.publish(State::Dead(reauth.clone()));
                tracing::warn!(reason = %reauth.reason, "re-authorization required");
                self.emit(Event::ReauthRequired(reauth.clone()));
                Err(Error::ReauthRequired(reauth))
            }
            Err(error) => {
                tracing::warn!(kind = %error.kind(), %error, "refresh failed");
                self.emit(Event::RefreshFailed {
                    session: session.name.clone(),
                    kind: error.kind(),
                    error: error.to_string(),
                });
                if let Some(current) = current {
                    // Still valid: keep it, and hold off the next ahead-of-expiry attempt.
                    let now = self.clock.now();
                    if current.usable(now) {
                        let retry_at = now + self.config.failure_cooldown;
                        let refresh_at = match current.set.access_expires_at {
                            Some(expires) => retry_at.min(expires),
                            None => retry_at,
                        };
                        session.publish(State::Ready(Arc::new(Current {
                            set: current.set.clone(),
                            version: current.version,
                            saved: current.saved,
                            refresh_at: Some(refresh_at),
                        })));
                    }
                }
                Err(error)
            }
        }
    }

    /// Calls the provider until it answers, retrying transient failures, and lost answers
    /// inside the reuse window. Returns the new set and whether it was issued anew.
    async fn obtain(
        &self,
        cx: &CallContext,
        current: Option<&TokenSet<P::Extras>>,
    ) -> Result<(TokenSet<P::Extras>, bool), Error> {
        let policy = &self.config.retry;
        let can_issue = self.provider.can_issue();
        let refreshable = current.filter(|c| c.refresh_token.is_some());
        let mut issuing = refreshable.is_none();
        if let Some(set) = refreshable
            && set.refresh_expired(cx.now())
        {
            if !can_issue {
                return Err(Error::ReauthRequired(Reauth::new(
                    cx.session(),
                    "the refresh token has expired",
                )));
            }
            issuing = true;
        }
        if issuing && !can_issue {
            return Err(Error::ReauthRequired(Reauth::new(
                cx.session(),
                "the session has no refresh token",
            )));
        }
        let mut started = tokio::time::Instant::now();
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            let result = match (issuing, refreshable) {
                (false, Some(set)) => self
                    .provider
                    .refresh(cx, set)
                    .await
                    .map(|new| new.or_previous(set)),
                _ => self.provider.issue(cx).await,
            };
            let error = match result {
                Ok(set) => return Ok((set, issuing)),
                Err(error) => error,
            };
            let kind = error.kind();
            tracing::debug!(attempt, %kind, issuing, "call failed");
            let retryable = match kind {
                ErrorKind::Transient => true,
                // Issuing again is always safe; refreshing again only while the provider
                // still answers the same refresh token with the same pair.
                ErrorKind::OutcomeUnknown => {
                    issuing
                        || started.elapsed() + policy.backoff(attempt, None)
                            < self.provider.reuse_window()
                }
                ErrorKind::ReauthRequired if !issuing && can_issue => {
                    tracing::info!(
                        "refresh refused; issuing a new set with the provider's credentials"
                    );
                    issuing = true;
                    attempt = 0;
                    started = tokio::time::Instant::now();
                    continue;
                }
                _ => false,
            };
            if !retryable {
                return Err(error);
            }
            let wait = policy.backoff(attempt, error.retry_after());
            if attempt >= policy.max_attempts || started.elapsed() + wait > policy.deadline {
                return Err(Error::RetriesExhausted {
                    attempts: attempt,
                    last: Box::new(error),
                });
            }
            tokio::time::sleep(wait).await;
        }
    }

    /// Saves a new set before anyone uses it. When the save fails the set is kept anyway
    /// (the provider has already invalidated the old one) and marked unsaved.
    async fn persist(
        &self,
        session: &Session<P::Extras>,
        set: TokenSet<P::Extras>,
        base: Option<Version>,
    ) -> Current<P::Extras> {
        let saved = match to_stored(&set) {
            Ok(stored) => self.save_authoritative(&session.key, &stored, base).await,
            Err(error) => Err(error),
        };
        match saved {
            Ok(version) => self.current_from(set, Some(version), true),
            Err(error) => {
                tracing::error!(%error, "could not save the new token set; keeping it in memory");
                self.emit(Event::PersistFailed {
                    session: session.name.clone(),
                    error: error.to_string(),
                });
                self.current_from(set, base, false)
            }
        }
    }

    /// Saves a set this process knows to be the newest (it just came from the provider, or
    /// from the application): on a version conflict it overwrites what it finds.
    async fn save_authoritative(
        &self,
        key: &SessionKey,
        stored: &StoredRecord,
        base: Option<Version>,
    ) -> Result<Version, Error> {
        let mut expected = base;
        for _ in 0..3 {
            match self.store.save(key, stored, expected).await {
                Ok(version) => return Ok(version),
                Err(StoreError::Conflict { found, .. }) => expected = found,
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::Conflict {
            expected,
            found: None,
        }
        .into())
    }

    fn spawn_save_retry(
        self: Arc<Self>,
        session: Arc<Session<P::Extras>>,
        unsaved: Arc<Current<P::Extras>>,
    ) {
        tokio::spawn(async move {
            let Ok(stored) = to_stored(&unsaved.set) else {
                return;
            };
            for attempt in 1..=self.config.save_retries {
                tokio::time::sleep(self.config.retry.backoff(attempt, None)).await;
                let still_current = matches!(
                    session.state.load().as_deref(),
                    Some(State::Ready(current)) if Arc::ptr_eq(current, &unsaved)
                );
                if !still_current {
                    return;
                }
                match self
                    .save_authoritative(&session.key, &stored, unsaved.version)
                    .await
                {
                    Ok(version) => {
                        let saved = Arc::new(Current {
                            set: unsaved.set.clone(),
                            version: Some(version),
                            saved: true,
                            refresh_at: unsaved.refresh_at,
                        });
                        // Publish only if nothing replaced the set while saving.
                        session.state.rcu(|state| match state.as_deref() {
                            Some(State::Ready(current)) if Arc::ptr_eq(current, &unsaved) => {
                                Some(Arc::new(State::Ready(saved.clone())))
                            }
                            _ => state.clone(),
                        });
                        self.emit(Event::Persisted {
                            session: session.name.clone(),
                            version,
                        });
                        return;
                    }
                    Err(error) => {
                        tracing::warn!(attempt, %error, "saving the token set failed again")
                    }
                }
            }
        });
    }

    fn reauth_for(&self, session: &Session<P::Extras>, error: &Error) -> Reauth {
        if let Some(reauth) = error.reauth() {
            let mut reauth = reauth.clone();
            reauth.authorize_url = reauth
                .authorize_url
                .or_else(|| self.provider.authorize_url(&session.name));
            return reauth;
        }
        Reauth {
            session: session.name.to_string(),
            code: error.provider_code().map(str::to_owned),
            reason: error.to_string(),
            authorize_url: self.provider.authorize_url(&session.name),
        }
    }

    fn reauth_from(&self, session: &Session<P::Extras>, verdict: ReauthVerdict) -> Reauth {
        Reauth {
            session: session.name.to_string(),
            code: verdict.code,
            reason: verdict.reason,
            authorize_url: self.provider.authorize_url(&session.name),
        }
    }

    fn no_tokens(&self, session: &Session<P::Extras>) -> Error {
        Error::NoTokens {
            session: session.name.to_string(),
            authorize_url: self.provider.authorize_url(&session.name),
        }
    }
}

enum LeaseTaken<X> {
    /// Another process refreshed meanwhile; nothing left to do.
    Settled(Arc<Current<X>>),
    /// The lease is ours; refresh from this set.
    Held(Option<Arc<Current<X>>>),
}

fn to_stored<X: crate::Extras>(set: &TokenSet<X>) -> Result<StoredRecord, Error> {
    set.to_stored().map(StoredRecord::from).map_err(|e| {
        Error::Config(format!(
            "the provider's extras could not be serialized: {e}"
        ))
    })
}

fn from_stored<X: crate::Extras>(stored: crate::StoredTokenSet) -> Result<TokenSet<X>, Error> {
    TokenSet::from_stored(stored).map_err(|e| {
        StoreError::Corrupt(format!("stored extras do not fit this provider: {e}")).into()
    })
}

#[cfg(test)]
mod tests;
