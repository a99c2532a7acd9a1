//! Manager behaviour against a scripted in-memory provider, on tokio's paused clock.

use std::collections::VecDeque;
use std::sync::Mutex as StdMutex;
use std::sync::atomic::{AtomicU32, Ordering};

use async_trait::async_trait;
use http::StatusCode;
use time::macros::datetime;
use tokio::sync::Semaphore;

use super::*;
use crate::clock::{ManualClock, TokioClock};
use crate::error::{AbortReason, EndpointError, ErrorKind, ProviderError, TransportError};
use crate::secret::RefreshToken;
use crate::store::{Lease, StoredRecord, Version, Versioned};
use crate::test_logs::capture_logs;
use crate::token_set::{NoExtras, StoredTokenSet};

const HOUR: Duration = Duration::from_secs(3600);

/// What the fake provider does on its next call instead of answering normally.
enum Step {
    Fail(Error),
    /// Rotate, then lose the answer (as if the connection dropped).
    LoseAfterRotate,
    /// Rotate, then answer this error instead of the pair (a server that failed after its
    /// commit, a gateway whose upstream answered too late).
    FailAfterRotate(Error),
    /// Panic inside the refresh.
    Panic,
    /// Rotate, then panic (as a decoder of the answer may).
    PanicAfterRotate,
    /// Rotate, answering an access token that has already expired.
    AnswerExpired,
    /// Rotate, answering no access-token expiry.
    AnswerWithoutExpiry,
    /// Rotate, answering an access token that lives this long.
    AnswerLiving(Duration),
    /// Rotate, answering the new refresh token's expiry as this instant.
    AnswerRefreshExpiring(OffsetDateTime),
    /// Rotate, answering an access token that cannot be sent in a header (a new line).
    AnswerUnsendableAccess,
    /// A new access token, no refresh token: the session keeps its own (and its expiry).
    KeepRefreshToken,
    /// As `KeepRefreshToken`, the refresh token's expiry answered as this instant (as a
    /// provider's remaining life in whole seconds, read a moment later, gives).
    KeepRefreshTokenUntil(OffsetDateTime),
    /// The same access token, its expiry extended by an hour, and no refresh token (the
    /// session keeps its own): a provider that renews an access token in place.
    ExtendAccess,
    /// Never answer.
    Hang,
    /// Rotate, then never answer (a connection that stalls once the server committed).
    HangAfterRotate,
}

/// A provider that rotates on every refresh and keeps the previous answer for its reuse
/// window, like the issuer.
struct Fake {
    clock: Arc<dyn Clock>,
    calls: AtomicU32,
    issues: AtomicU32,
    presented: StdMutex<Vec<String>>,
    script: StdMutex<VecDeque<Step>>,
    live: StdMutex<String>,
    /// (old refresh token, its successor, when rotated)
    previous: StdMutex<Option<(String, TokenSet, OffsetDateTime)>>,
    generation: AtomicU32,
    reuse_window: Duration,
    can_issue: bool,
    /// How many of the next grants of the client's own are refused (`invalid_grant`).
    refused_issues: AtomicU32,
    gate: Option<Arc<Semaphore>>,
    /// Reuse detection (as RFC 9700 recommends): a spent refresh token presented after its
    /// reuse window revokes its successor too.
    revoke_on_replay: bool,
    /// `authorize_url` panics (a provider's code slicing a session name too short for it).
    panicking_authorize_url: bool,
}

impl Fake {
    fn new(clock: Arc<dyn Clock>) -> Self {
        Self {
            clock,
            calls: AtomicU32::new(0),
            issues: AtomicU32::new(0),
            presented: StdMutex::new(Vec::new()),
            script: StdMutex::new(VecDeque::new()),
            live: StdMutex::new("rt-0".into()),
            previous: StdMutex::new(None),
            generation: AtomicU32::new(0),
            reuse_window: Duration::from_secs(300),
            can_issue: false,
            refused_issues: AtomicU32::new(0),
            gate: None,
            revoke_on_replay: false,
            panicking_authorize_url: false,
        }
    }

    fn then(&self, step: Step) -> &Self {
        self.script.lock().unwrap().push_back(step);
        self
    }

    fn mint(&self) -> TokenSet {
        let n = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        TokenSet::new(AccessToken::new(format!("at-{n}")))
            .with_refresh_token(RefreshToken::new(format!("rt-{n}")))
            .with_access_expires_at(self.clock.now() + HOUR)
    }

    fn rotate(&self, presented: &str) -> Result<TokenSet, Error> {
        let mut live = self.live.lock().unwrap();
        if *live == presented {
            let next = self.mint();
            *self.previous.lock().unwrap() =
                Some((presented.to_owned(), next.clone(), self.clock.now()));
            *live = next
                .refresh_token
                .as_ref()
                .unwrap()
                .expose_secret()
                .to_owned();
            return Ok(next);
        }
        if let Some((old, successor, at)) = &*self.previous.lock().unwrap()
            && old == presented
            && self.clock.now() - *at < self.reuse_window
        {
            return Ok(successor.clone());
        }
        if self.revoke_on_replay
            && let Some((old, _, _)) = &*self.previous.lock().unwrap()
            && old == presented
        {
            live.clear();
        }
        Err(invalid_grant())
    }
}

fn invalid_grant() -> Error {
    EndpointError::from(
        ProviderError::new(
            ErrorKind::ReauthRequired,
            StatusCode::BAD_REQUEST,
            "invalid_grant",
        )
        .with_message("Refresh token has expired or is invalid."),
    )
    .into()
}

/// A 429 asking to wait `retry_after`.
fn too_many_requests(retry_after: Duration) -> Error {
    EndpointError::from(
        ProviderError::new(ErrorKind::Transient, StatusCode::TOO_MANY_REQUESTS, "429")
            .with_retry_after(Some(retry_after)),
    )
    .into()
}

fn unavailable(retry_after: Option<Duration>) -> Error {
    EndpointError::from(
        ProviderError::new(ErrorKind::Transient, StatusCode::SERVICE_UNAVAILABLE, "503")
            .with_retry_after(retry_after),
    )
    .into()
}

#[async_trait]
impl Provider for Arc<Fake> {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "fake"
    }

    fn reuse_window(&self) -> Duration {
        self.reuse_window
    }

    async fn refresh(&self, _cx: &CallContext, current: &TokenSet) -> Result<TokenSet, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        let presented = current
            .refresh_token
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned();
        self.presented.lock().unwrap().push(presented.clone());
        if let Some(gate) = &self.gate {
            let _permit = gate.acquire().await.unwrap();
        }
        let step = self.script.lock().unwrap().pop_front();
        match step {
            Some(Step::Fail(error)) => Err(error),
            Some(Step::LoseAfterRotate) => {
                self.rotate(&presented)?;
                Err(TransportError::answer_lost("connection closed before the answer").into())
            }
            Some(Step::FailAfterRotate(error)) => {
                self.rotate(&presented)?;
                Err(error)
            }
            Some(Step::Panic) => panic!("the provider's code panicked"),
            Some(Step::PanicAfterRotate) => {
                self.rotate(&presented)?;
                panic!("the provider's decoder panicked")
            }
            Some(Step::ExtendAccess) => Ok(TokenSet::new(current.access_token.clone())
                .with_access_expires_at(self.clock.now() + HOUR)),
            Some(Step::Hang) => std::future::pending().await,
            Some(Step::HangAfterRotate) => {
                self.rotate(&presented)?;
                std::future::pending().await
            }
            Some(Step::AnswerExpired) => {
                let mut set = self.rotate(&presented)?;
                set.access_expires_at = Some(self.clock.now() - Duration::from_secs(1));
                Ok(set)
            }
            Some(Step::KeepRefreshToken) => {
                let mut set = self.mint();
                set.refresh_token = None;
                Ok(set)
            }
            Some(Step::KeepRefreshTokenUntil(at)) => {
                let mut set = self.mint();
                set.refresh_token = None;
                set.refresh_expires_at = Some(at);
                Ok(set)
            }
            Some(Step::AnswerLiving(life)) => {
                let mut set = self.rotate(&presented)?;
                set.access_expires_at = Some(self.clock.now() + life);
                Ok(set)
            }
            Some(Step::AnswerRefreshExpiring(at)) => {
                let mut set = self.rotate(&presented)?;
                set.refresh_expires_at = Some(at);
                Ok(set)
            }
            Some(Step::AnswerWithoutExpiry) => {
                let mut set = self.rotate(&presented)?;
                set.access_expires_at = None;
                Ok(set)
            }
            Some(Step::AnswerUnsendableAccess) => {
                let mut set = self.rotate(&presented)?;
                set.access_token = AccessToken::new("at-CANARY\r\nX-Injected: 1");
                Ok(set)
            }
            None => self.rotate(&presented),
        }
    }

    fn can_issue(&self) -> bool {
        self.can_issue
    }

    async fn issue(&self, _cx: &CallContext) -> Result<TokenSet, Error> {
        self.issues.fetch_add(1, Ordering::SeqCst);
        if let Some(gate) = &self.gate {
            let _permit = gate.acquire().await.unwrap();
        }
        let refused = |n: u32| n.checked_sub(1);
        if self
            .refused_issues
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, refused)
            .is_ok()
        {
            return Err(invalid_grant());
        }
        let mut set = self.mint();
        *self.live.lock().unwrap() = set
            .refresh_token
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned();
        let mut script = self.script.lock().unwrap();
        if matches!(script.front(), Some(Step::AnswerUnsendableAccess)) {
            script.pop_front();
            set.access_token = AccessToken::new("at-CANARY\r\nX-Injected: 1");
        }
        Ok(set)
    }

    fn authorize_url(&self, session: &str) -> Option<String> {
        assert!(!self.panicking_authorize_url, "authorize_url panicked");
        Some(format!("https://auth.example/authorize?state={session}"))
    }
}

/// A store call, as the hooks of a test store see it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Call {
    Load,
    Save,
    Delete,
    Acquire,
    Release,
    /// A look for lapsed leases.
    Lapsed,
}

/// What a test store adds around the store it wraps (see [`Hooked`]).
#[async_trait]
trait Hooks: Send + Sync + 'static {
    /// Runs before `call` reaches the store: an error fails the call (the store is not
    /// asked); it may also wait, never end, or panic.
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        let _ = call;
        Ok(())
    }

    /// Runs after `call` reached the store, before its answer is returned; it may wait.
    async fn after(&self, call: Call) {
        let _ = call;
    }

    /// Added to every version the store answers, and taken off every version it is given
    /// (0 by default): lowered, the store numbers the same records lower than before, as a
    /// database restored with its version sequence rewound does.
    fn shift(&self) -> Version {
        0
    }

    /// An answer to a load in place of the store's (a read that lags its writes), which is
    /// then not asked; `None` (the default) asks it.
    fn instead_of_load(&self) -> Option<Option<Versioned<StoredRecord>>> {
        None
    }

    /// An answer to a save at `expected` in place of the store's, which is then not asked;
    /// `None` (the default) asks it.
    async fn instead_of_save(
        &self,
        expected: Option<Version>,
    ) -> Option<Result<Version, StoreError>> {
        let _ = expected;
        None
    }

    /// The answer to a lease request, given the store's (`granted`): by default that one.
    async fn lease(
        &self,
        key: &SessionKey,
        store: &dyn TokenStore,
        granted: Lease,
    ) -> Result<Lease, StoreError> {
        let _ = (key, store);
        Ok(granted)
    }
}

/// `inner` (a `MemoryStore` unless said otherwise) with `hooks` around its calls; derefs to
/// the hooks, whose switches the tests flip.
#[derive(Default)]
struct Hooked<H, S = MemoryStore> {
    hooks: H,
    inner: S,
}

impl<H, S> Hooked<H, S> {
    fn over(inner: S, hooks: H) -> Self {
        Self { hooks, inner }
    }
}

impl<H> Hooked<H> {
    fn new(hooks: H) -> Self {
        Self::over(MemoryStore::new(), hooks)
    }
}

impl<H, S> std::ops::Deref for Hooked<H, S> {
    type Target = H;

    fn deref(&self) -> &H {
        &self.hooks
    }
}

#[async_trait]
impl<H: Hooks, S: TokenStore> TokenStore for Hooked<H, S> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        self.hooks.before(Call::Load).await?;
        if let Some(answer) = self.hooks.instead_of_load() {
            return Ok(answer);
        }
        let answer = self.inner.load(key).await;
        self.hooks.after(Call::Load).await;
        let shift = self.hooks.shift();
        answer.map(|found| {
            found.map(|mut found| {
                found.version += shift;
                found
            })
        })
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        self.hooks.before(Call::Save).await?;
        if let Some(answer) = self.hooks.instead_of_save(expected).await {
            return answer;
        }
        let shift = self.hooks.shift();
        let given = expected.map(|at| at.saturating_sub(shift));
        let answer = self.inner.save(key, record, given).await;
        self.hooks.after(Call::Save).await;
        match answer {
            Err(StoreError::Conflict { found, .. }) => Err(StoreError::Conflict {
                expected,
                found: found.map(|at| at + shift),
            }),
            answer => answer.map(|at| at + shift),
        }
    }
    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        self.hooks.before(Call::Delete).await?;
        let given = expected.map(|at| at.saturating_sub(self.hooks.shift()));
        let answer = self.inner.delete(key, given).await;
        self.hooks.after(Call::Delete).await;
        answer
    }
    // Its identity is the inner store's, given back to it as it is.
    async fn unreadable(
        &self,
        key: &SessionKey,
    ) -> Result<Option<crate::store::Unreadable>, StoreError> {
        self.hooks.before(Call::Load).await?;
        let answer = self.inner.unreadable(key).await;
        self.hooks.after(Call::Load).await;
        answer
    }
    async fn delete_unreadable(
        &self,
        key: &SessionKey,
        seen: &crate::store::Unreadable,
    ) -> Result<bool, StoreError> {
        self.hooks.before(Call::Delete).await?;
        let answer = self.inner.delete_unreadable(key, seen).await;
        self.hooks.after(Call::Delete).await;
        answer
    }
    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        self.hooks.before(Call::Acquire).await?;
        let granted = self.inner.acquire_lease(key, holder, ttl).await;
        self.hooks.after(Call::Acquire).await;
        self.hooks.lease(key, &self.inner, granted?).await
    }
    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        self.hooks.before(Call::Release).await?;
        let answer = self.inner.release_lease(key, holder).await;
        self.hooks.after(Call::Release).await;
        answer
    }

    async fn lapsed_leases(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        self.hooks.before(Call::Lapsed).await?;
        let answer = self.inner.lapsed_leases(provider).await;
        self.hooks.after(Call::Lapsed).await;
        answer
    }
}

/// A harness whose provider holds each call at `gate` (no permit yet), `s` seeded with an
/// expired token, and a caller whose refresh is at the provider.
async fn held_refresh() -> (
    Harness,
    Arc<Semaphore>,
    tokio::task::JoinHandle<Result<AccessToken, Error>>,
) {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    h.seed("s", Duration::ZERO).await;
    let manager = h.manager.clone();
    let caller = tokio::spawn(async move { manager.access_token("s").await });
    h.until_calls(1).await;
    (h, gate, caller)
}

/// The refresh token of a stored record holding tokens.
fn refresh_of(record: &Versioned<StoredRecord>) -> &str {
    record
        .value
        .tokens()
        .unwrap()
        .refresh_token
        .as_ref()
        .unwrap()
        .expose_secret()
}

/// `at-0`/`rt-0`, the access token expiring now: the next call refreshes.
fn expired_pair(h: &Harness) -> TokenSet {
    TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(h.clock.now())
}

/// The error of a store that is full.
fn disk_full() -> StoreError {
    StoreError::Backend {
        message: "disk full".into(),
        source: None,
    }
}

/// A transport that must never be used: the fake provider does no I/O.
struct NoTransport;

#[async_trait]
impl HttpClient for NoTransport {
    async fn send(
        &self,
        _: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, crate::error::TransportError> {
        unreachable!("the fake provider makes no HTTP calls")
    }
}

/// Lets the other tasks run (no time passes) until `done`, for at most 10,000 turns; says
/// whether it came.
async fn until(mut done: impl FnMut() -> bool) -> bool {
    for _ in 0..10_000 {
        if done() {
            return true;
        }
        tokio::task::yield_now().await;
    }
    done()
}

/// `BearerLayer::only_to` sends a request whose URI has no origin (a tonic channel's: the
/// channel adds its origin below the layer) on without the token, and says so once: a
/// channel that never gets a token is not left a silent mystery, nor the log flooded.
#[cfg(feature = "tower")]
#[tokio::test(flavor = "current_thread")]
async fn only_to_warns_once_of_requests_without_an_origin() {
    use tower::{Service as _, ServiceExt as _};
    let logs = crate::test_logs::capture_logs();
    let h = harness(|_| {});
    let api = tower::service_fn(|request: http::Request<()>| async move {
        let authorized = request.headers().contains_key(http::header::AUTHORIZATION);
        Ok::<_, std::convert::Infallible>(http::Response::new(authorized))
    });
    let layer = crate::tower::BearerLayer::new(h.manager.clone(), "s")
        .only_to("https://api.example")
        .unwrap();
    let mut client = tower::ServiceBuilder::new().layer(layer).service(api);
    for _ in 0..3 {
        let request = http::Request::post("/acme.Payments/Charge")
            .body(())
            .unwrap();
        let ready = client.ready().await.unwrap();
        let response = ready.call(request).await.unwrap();
        assert!(
            !response.into_body(),
            "no token for a URI without an origin"
        );
    }
    let text = logs.text();
    assert_eq!(text.matches("BearerLayer::only_to").count(), 1, "{text}");
    assert!(text.contains("WARN") && text.contains("tonic"), "{text}");
}

struct Harness {
    fake: Arc<Fake>,
    manager: TokenManager<Arc<Fake>>,
    store: Arc<MemoryStore>,
    clock: TokioClock,
    events: broadcast::Receiver<Event>,
}

fn harness(configure: impl FnOnce(&mut Fake)) -> Harness {
    let clock = TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC));
    let mut fake = Fake::new(Arc::new(clock));
    configure(&mut fake);
    let fake = Arc::new(fake);
    let store = Arc::new(MemoryStore::new());
    let manager = TokenManager::builder(fake.clone())
        .shared_store(store.clone())
        .client(NoTransport)
        .clock(Arc::new(clock))
        .config(
            ManagerConfig::default()
                .with_refresh_skew(Duration::from_secs(60), Duration::ZERO)
                .with_retry(
                    RetryPolicy::default()
                        .with_backoff(Duration::from_millis(100), Duration::from_secs(2)),
                ),
        )
        .build()
        .unwrap();
    let events = manager.subscribe();
    Harness {
        fake,
        manager,
        store,
        clock,
        events,
    }
}

impl Harness {
    /// Inserts `at-0`/`rt-0` into `session`, the access token valid for an hour and the
    /// refresh token for `refresh`; returns the refresh token's expiry.
    async fn insert_expiring(&self, session: &str, refresh: Duration) -> OffsetDateTime {
        let expires = self.clock.now() + refresh;
        let set = TokenSet::new(AccessToken::new("at-0"))
            .with_refresh_token(RefreshToken::new("rt-0"))
            .with_access_expires_at(self.clock.now() + HOUR)
            .with_refresh_expires_at(expires);
        self.manager.insert(session, set).await.unwrap();
        expires
    }

    /// Calls `access_token(session)` every 5 s for `span` (paused time), letting background
    /// refreshes run between calls.
    async fn use_for(&self, session: &str, span: Duration) {
        for _ in 0..span.as_secs() / 5 {
            tokio::time::advance(Duration::from_secs(5)).await;
            self.manager.access_token(session).await.unwrap();
            for _ in 0..10 {
                tokio::task::yield_now().await;
            }
        }
    }

    /// Seeds the session with `rt-0`, its access token expiring `expires_in` from now.
    async fn seed(&self, session: &str, expires_in: Duration) {
        let set = TokenSet::new(AccessToken::new("at-0"))
            .with_refresh_token(RefreshToken::new("rt-0"))
            .with_access_expires_at(self.clock.now() + expires_in);
        self.manager.insert(session, set).await.unwrap();
    }

    fn calls(&self) -> u32 {
        self.fake.calls.load(Ordering::SeqCst)
    }

    /// Lets the other tasks run until the provider has been called `n` times (bounded).
    async fn until_calls(&self, n: u32) {
        if !until(|| self.calls() >= n).await {
            panic!("the provider was called {} times, not {n}", self.calls());
        }
    }

    fn drain(&mut self) -> Vec<Event> {
        let mut events = Vec::new();
        while let Ok(event) = self.events.try_recv() {
            events.push(event);
        }
        events
    }

    async fn stored(&self, session: &str) -> Option<Versioned<StoredRecord>> {
        self.store
            .load(&SessionKey::new("fake", session))
            .await
            .unwrap()
    }

    /// The stored tokens of `session`, `None` when it has none (absent, or a re-auth verdict).
    async fn stored_tokens(&self, session: &str) -> Option<Versioned<StoredTokenSet>> {
        let record = self.stored(session).await?;
        Some(Versioned {
            version: record.version,
            value: record.value.into_tokens()?,
        })
    }
}

#[tokio::test(start_paused = true)]
async fn a_fresh_token_is_served_without_refresh() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    for _ in 0..10 {
        assert_eq!(
            h.manager.access_token("s").await.unwrap().expose_secret(),
            "at-0"
        );
    }
    assert_eq!(h.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn concurrent_callers_on_an_expired_token_share_one_refresh() {
    let h = harness(|_| {});
    h.seed("s", Duration::from_secs(10)).await;
    tokio::time::advance(Duration::from_secs(11)).await;
    let tasks: Vec<_> = (0..1000)
        .map(|_| {
            let manager = h.manager.clone();
            tokio::spawn(async move { manager.access_token("s").await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().expose_secret(), "at-1");
    }
    assert_eq!(h.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn near_expiry_callers_keep_the_current_token_while_one_background_refresh_runs() {
    let h = harness(|_| {});
    h.seed("s", Duration::from_secs(300)).await;
    tokio::time::advance(Duration::from_secs(250)).await; // inside the 60 s skew
    for _ in 0..50 {
        assert_eq!(
            h.manager.access_token("s").await.unwrap().expose_secret(),
            "at-0"
        );
    }
    // Let the background refresh finish.
    tokio::task::yield_now().await;
    let mut rounds = 0;
    while h.manager.access_token("s").await.unwrap().expose_secret() == "at-0" {
        rounds += 1;
        assert!(rounds < 100, "background refresh never landed");
        tokio::task::yield_now().await;
    }
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(h.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_cancelled_first_caller_does_not_fail_the_rest() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    h.seed("s", Duration::from_secs(1)).await;
    tokio::time::advance(Duration::from_secs(2)).await;

    let first = {
        let manager = h.manager.clone();
        tokio::spawn(async move { manager.access_token("s").await })
    };
    // Wait until the refresh is in the provider, then cancel the caller that started it.
    h.until_calls(1).await;
    first.abort();
    assert!(first.await.unwrap_err().is_cancelled());

    let second = {
        let manager = h.manager.clone();
        tokio::spawn(async move { manager.access_token("s").await })
    };
    gate.add_permits(1);
    assert_eq!(second.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(h.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_inside_the_reuse_window_recovers_without_reauth() {
    let mut h = harness(|_| {});
    h.fake.then(Step::LoseAfterRotate);
    h.seed("s", Duration::ZERO).await;
    let token = h.manager.access_token("s").await.unwrap();
    assert_eq!(
        token.expose_secret(),
        "at-1",
        "the retry got the pair the provider had already issued"
    );
    assert_eq!(h.calls(), 2);
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0", "rt-0"]);
    assert!(
        !h.drain()
            .iter()
            .any(|e| matches!(e, Event::ReauthRequired(_)))
    );
    let stored = h.stored("s").await.unwrap();
    assert_eq!(refresh_of(&stored), "rt-1");
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_without_a_reuse_window_is_surfaced_and_the_set_kept() {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    h.fake.then(Step::LoseAfterRotate);
    h.seed("s", Duration::ZERO).await;
    let error = h.manager.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown);
    assert_eq!(
        h.calls(),
        1,
        "the same refresh token is not sent again outside the window"
    );
    assert!(
        h.stored("s").await.is_some(),
        "an unknown outcome is no reason to drop the set"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rotated_refresh_token_is_never_sent_again() {
    let h = harness(|_| {});
    h.seed("s", Duration::ZERO).await;
    for round in 1..=5u32 {
        let token = h.manager.access_token("s").await.unwrap();
        assert_eq!(token.expose_secret(), format!("at-{round}"));
        tokio::time::advance(HOUR).await;
    }
    let presented = h.fake.presented.lock().unwrap().clone();
    assert_eq!(presented, ["rt-0", "rt-1", "rt-2", "rt-3", "rt-4"]);
}

#[tokio::test(start_paused = true)]
async fn a_transient_failure_is_retried_with_backoff_honouring_retry_after() {
    let h = harness(|_| {});
    h.fake
        .then(Step::Fail(unavailable(None)))
        .then(Step::Fail(unavailable(Some(Duration::from_secs(7)))));
    h.seed("s", Duration::ZERO).await;
    let started = tokio::time::Instant::now();
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(h.calls(), 3);
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "Retry-After was not honoured: {:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn transient_retries_stop_at_the_attempt_bound() {
    let h = harness(|_| {});
    for _ in 0..10 {
        h.fake.then(Step::Fail(unavailable(None)));
    }
    h.seed("s", Duration::ZERO).await;
    let error = h.manager.access_token("s").await.unwrap_err();
    assert!(
        matches!(error, Error::RetriesExhausted { attempts: 4, .. }),
        "{error}"
    );
    assert_eq!(error.kind(), ErrorKind::Transient);
    assert_eq!(h.calls(), 4);
}

/// A session without tokens is a re-auth signal like a dead one: `reauth()` gives the
/// session and where to send the user, so an application that redirects on `reauth()`
/// redirects a user who never logged in (or was removed) too.
#[tokio::test(start_paused = true)]
async fn a_session_without_tokens_is_a_reauth_signal_with_the_authorize_url() {
    let h = harness(|_| {});
    for error in [
        h.manager.access_token("nobody").await.unwrap_err(),
        h.manager
            .session("nobody")
            .access_token()
            .await
            .unwrap_err(),
    ] {
        assert!(matches!(error, Error::NoTokens(_)), "{error:?}");
        assert_eq!(error.kind(), ErrorKind::ReauthRequired);
        let reauth = error.reauth().expect("a re-auth signal");
        assert_eq!(reauth.session, "nobody");
        assert_eq!(
            reauth.authorize_url.as_deref(),
            Some("https://auth.example/authorize?state=nobody")
        );
        assert_eq!(
            error.to_string(),
            "reauth_required: no tokens for session `nobody`"
        );
    }
    assert_eq!(h.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn invalid_grant_is_not_retried_and_signals_reauth_once() {
    let mut h = harness(|_| {});
    h.fake.then(Step::Fail(invalid_grant()));
    h.seed("s", Duration::ZERO).await;
    let error = h.manager.access_token("s").await.unwrap_err();
    let reauth = error.reauth().expect("a re-auth signal");
    assert_eq!(reauth.code.as_deref(), Some("invalid_grant"));
    assert_eq!(
        reauth.authorize_url.as_deref(),
        Some("https://auth.example/authorize?state=s")
    );
    assert_eq!(h.calls(), 1);
    let verdict = h.stored("s").await.expect("the verdict is recorded");
    assert_eq!(
        verdict
            .value
            .reauth()
            .expect("a re-auth record")
            .code
            .as_deref(),
        Some("invalid_grant")
    );
    assert!(h.stored_tokens("s").await.is_none(), "the dead set is gone");

    // Later callers get the same signal with no further call and no second event.
    for _ in 0..3 {
        assert_eq!(
            h.manager.access_token("s").await.unwrap_err().kind(),
            ErrorKind::ReauthRequired
        );
    }
    assert_eq!(h.calls(), 1);
    let reauths = h
        .drain()
        .into_iter()
        .filter(|e| matches!(e, Event::ReauthRequired(_)))
        .count();
    assert_eq!(reauths, 1);

    // New tokens from the application end the re-auth state.
    h.seed("s", HOUR).await;
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-0"
    );
}

#[tokio::test(start_paused = true)]
async fn a_rotated_set_is_saved_before_callers_see_it() {
    let h = harness(|_| {});
    h.seed("s", Duration::ZERO).await;
    let before = h.stored("s").await.unwrap().version;
    let token = h.manager.access_token("s").await.unwrap();
    let stored = h.stored("s").await.unwrap();
    assert!(stored.version > before);
    assert_eq!(stored.value.tokens().unwrap().access_token, token);
    assert_eq!(refresh_of(&stored), "rt-1");
}

#[tokio::test(start_paused = true)]
async fn the_managers_memory_store_keeps_the_sessions_own_state_not_a_copy() {
    let h = harness(|_| {});
    let manager = TokenManager::builder(h.fake.clone())
        .store(MemoryStore::new())
        .client(NoTransport)
        .clock(Arc::new(h.clock))
        .build()
        .unwrap();
    let key = SessionKey::new("fake", "s");
    let memory = manager.inner.memory.as_ref().unwrap();
    // Whether the store holds the session's current set itself, and the version and saved
    // flag the session's state was settled with.
    let shared = || {
        let state = manager.inner.session("s").load().unwrap();
        let current = Ready::of(&state).unwrap();
        let held = memory.holds(&key, &current.stored);
        (held, current.version(), current.saved())
    };
    let set = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(h.clock.now() + HOUR);
    manager.insert("s", set).await.unwrap();
    let inserted = manager.store().load(&key).await.unwrap().unwrap();
    assert_eq!(shared(), (true, Some(inserted.version), true));
    let token = manager.refresh_now("s").await.unwrap();
    let refreshed = manager.store().load(&key).await.unwrap().unwrap();
    assert_eq!(refreshed.value.tokens().unwrap().access_token, token);
    assert!(refreshed.version > inserted.version);
    assert_eq!(shared(), (true, Some(refreshed.version), true));
}

#[tokio::test(start_paused = true)]
async fn a_session_is_loaded_from_the_store_on_first_use() {
    let h = harness(|_| {});
    let set = TokenSet::<NoExtras>::new(AccessToken::new("at-stored"))
        .with_access_expires_at(h.clock.now() + HOUR)
        .to_stored()
        .unwrap();
    h.store
        .save(&SessionKey::new("fake", "s"), &set.into(), None)
        .await
        .unwrap();
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-stored"
    );
    let missing = h.manager.access_token("nobody").await.unwrap_err();
    assert!(matches!(missing, Error::NoTokens(_)), "{missing}");
    assert_eq!(missing.kind(), ErrorKind::ReauthRequired);
}

#[tokio::test(start_paused = true)]
async fn a_refresh_token_about_to_expire_is_refreshed_while_in_use() {
    let h = harness(|_| {});
    let set = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(h.clock.now() + HOUR)
        .with_refresh_expires_at(h.clock.now() + Duration::from_secs(900));
    h.manager.insert("s", set).await.unwrap();
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-0"
    );
    assert_eq!(h.calls(), 0);
    // The skew (600 s) is longer than half the refresh token's life: half is taken.
    tokio::time::advance(Duration::from_secs(400)).await;
    h.manager.access_token("s").await.unwrap();
    assert_eq!(h.calls(), 0, "not yet at half of the refresh token's life");
    tokio::time::advance(Duration::from_secs(60)).await;
    h.manager.access_token("s").await.unwrap();
    let mut rounds = 0;
    while h.calls() == 0 {
        rounds += 1;
        assert!(rounds < 100);
        tokio::task::yield_now().await;
    }
    assert_eq!(h.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refresh_that_could_not_renew_an_expiring_refresh_token_is_not_repeated() {
    let h = harness(|_| {});
    h.insert_expiring("s", Duration::from_secs(900)).await;
    // The provider keeps its refresh tokens: every answer is a new access token alone.
    for _ in 0..300 {
        h.fake.then(Step::KeepRefreshToken);
    }
    // Twenty minutes of use. Past half the refresh token's life a refresh tries to renew
    // it; each answer that cannot is followed by one more try halfway to the expiry, not by
    // one at every `min_refresh_interval` (about 45 until the expiry, and on after it).
    h.use_for("s", Duration::from_secs(1200)).await;
    let calls = h.calls();
    assert!((2..=10).contains(&calls), "{calls} refreshes");
    // Once the refresh token's expiry has passed, the access token alone schedules.
    h.use_for("s", Duration::from_secs(1200)).await;
    assert_eq!(h.calls(), calls);
}

/// A provider that rotates the refresh token but answers its expiry as already past (a
/// clock behind, an expiry of the login that rotation does not move): refreshing cannot renew
/// what the answer says has passed, so the access token alone schedules the next refresh,
/// not `min_refresh_interval` for as long as the session is used.
#[tokio::test(start_paused = true)]
async fn a_rotated_refresh_token_answered_as_already_expired_is_not_refreshed_at_every_interval() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    for _ in 0..100 {
        h.fake
            .then(Step::AnswerRefreshExpiring(datetime!(2025-12-31 23:00 UTC)));
    }
    h.manager.refresh_now("s").await.unwrap();
    // Ten minutes of use: the new access token lives an hour.
    h.use_for("s", Duration::from_secs(600)).await;
    assert_eq!(
        h.calls(),
        1,
        "refreshed again to renew an expired refresh token"
    );
    // Its expiry still schedules the next refresh, which renews the pair.
    h.use_for("s", HOUR).await;
    let calls = h.calls();
    assert!((2..=3).contains(&calls), "{calls} refreshes");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_token_renewed_only_near_its_end_is_renewed_before_it_expires() {
    let h = harness(|_| {});
    h.insert_expiring("s", Duration::from_secs(900)).await;
    // The provider keeps the refresh token three times, then rotates it.
    for _ in 0..3 {
        h.fake.then(Step::KeepRefreshToken);
    }
    h.use_for("s", Duration::from_secs(895)).await;
    assert_eq!(h.calls(), 4, "asked again before the refresh token expired");
    let set = h.manager.token_set("s").await.unwrap();
    assert_eq!(
        set.refresh_token.as_ref().map(RefreshToken::expose_secret),
        Some("rt-4"),
        "renewed before it expired"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refresh_token_expiry_answered_a_moment_later_is_no_renewal() {
    let h = harness(|_| {});
    let expires = h.insert_expiring("s", Duration::from_secs(900)).await;
    // The provider keeps its refresh token and reports its remaining life: read at the
    // client, the instant comes out a little later on each answer (whole seconds, and the
    // time the answer travelled), although the token expires when it always did.
    for n in 1..300u64 {
        h.fake.then(Step::KeepRefreshTokenUntil(
            expires + Duration::from_millis(300 * n),
        ));
    }
    h.use_for("s", Duration::from_secs(1200)).await;
    let calls = h.calls();
    assert!((2..=10).contains(&calls), "{calls} refreshes");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_token_past_its_local_expiry_is_still_tried_once() {
    let h = harness(|_| {});
    let set = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(h.clock.now() + Duration::from_secs(10))
        .with_refresh_expires_at(h.clock.now() + Duration::from_secs(10));
    h.manager.insert("s", set.clone()).await.unwrap();
    // A clock jump (or a wrong expiry) is not a verdict: the provider decides.
    tokio::time::advance(Duration::from_secs(30 * 24 * 3600)).await;
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(h.calls(), 1);

    // When the provider refuses it, that is the verdict.
    h.manager.insert("t", set).await.unwrap();
    h.fake.then(Step::Fail(invalid_grant()));
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(
        h.manager.access_token("t").await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    assert_eq!(h.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_refused_grant_of_the_clients_own_is_no_verdict_and_is_asked_again_later() {
    for refreshed_first in [false, true] {
        let mut h = harness(|fake| fake.can_issue = true);
        if refreshed_first {
            // A session with a refresh token that the provider refuses, and then refuses the
            // client's own grant too.
            h.seed("svc", Duration::ZERO).await;
            *h.fake.live.lock().unwrap() = "rt-other".into();
        }
        h.fake.refused_issues.store(1, Ordering::SeqCst);
        let refused = h.manager.access_token("svc").await.unwrap_err();
        assert_eq!(refused.kind(), ErrorKind::ReauthRequired, "{refused:?}");
        // No user can authorize the client again: no verdict, in memory or in the store.
        let events = h.drain();
        assert!(
            !events.iter().any(|e| matches!(e, Event::ReauthRequired(_))),
            "refreshed_first={refreshed_first}: {events:?}"
        );
        assert!(
            h.stored("svc")
                .await
                .is_none_or(|record| record.value.reauth().is_none()),
            "refreshed_first={refreshed_first}"
        );
        // The provider answers again after the failure cooldown: the session is not dead.
        tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
        let token = h.manager.access_token("svc").await.unwrap();
        assert_eq!(
            token.expose_secret(),
            "at-1",
            "refreshed_first={refreshed_first}"
        );
        assert_eq!(h.fake.issues.load(Ordering::SeqCst), 2);
    }
}

#[tokio::test(start_paused = true)]
async fn a_provider_that_can_issue_issues_instead_of_asking_for_reauth() {
    let mut h = harness(|fake| fake.can_issue = true);
    // No tokens yet: issued.
    assert_eq!(
        h.manager.access_token("svc").await.unwrap().expose_secret(),
        "at-1"
    );
    // Refresh refused: issued again, no re-auth.
    h.fake.then(Step::Fail(invalid_grant()));
    tokio::time::advance(HOUR).await;
    assert_eq!(
        h.manager.access_token("svc").await.unwrap().expose_secret(),
        "at-2"
    );
    assert_eq!(h.fake.issues.load(Ordering::SeqCst), 2);
    assert!(
        !h.drain()
            .iter()
            .any(|e| matches!(e, Event::ReauthRequired(_)))
    );
}

#[tokio::test(start_paused = true)]
async fn a_401_refreshes_once_unless_the_token_was_already_replaced() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    let old = h.manager.access_token("s").await.unwrap();
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let (manager, old) = (h.manager.clone(), old.clone());
            tokio::spawn(async move { manager.refresh_rejected("s", &old).await })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap().unwrap().expose_secret(), "at-1");
    }
    // A late report about the old token does not refresh again.
    assert_eq!(
        h.manager
            .refresh_rejected("s", &old)
            .await
            .unwrap()
            .expose_secret(),
        "at-1"
    );
    assert_eq!(h.calls(), 1);
}

/// A `MemoryStore` whose lease answers a test scripts: the n-th request gets `answers[n]`
/// (the last one repeats), and request `plant.0` first writes `plant.1` over the session's
/// record, as another process whose refresh lands then.
struct ScriptedLeases {
    requests: AtomicU32,
    answers: Vec<Lease>,
    plant: Option<(u32, StoredRecord)>,
}
impl ScriptedLeases {
    fn new(
        answers: impl IntoIterator<Item = Lease>,
        plant: Option<(u32, StoredRecord)>,
    ) -> Hooked<Self> {
        Hooked::new(Self {
            requests: AtomicU32::new(0),
            answers: answers.into_iter().collect(),
            plant,
        })
    }
}

#[async_trait]
impl Hooks for ScriptedLeases {
    async fn lease(
        &self,
        key: &SessionKey,
        store: &dyn TokenStore,
        _: Lease,
    ) -> Result<Lease, StoreError> {
        let request = self.requests.fetch_add(1, Ordering::SeqCst);
        if let Some((at, record)) = &self.plant
            && *at == request
        {
            let current = store.load(key).await?.map(|r| r.version);
            store.save(key, record, current).await?;
        }
        let last = self.answers.len().saturating_sub(1);
        Ok(self.answers[(request as usize).min(last)].clone())
    }
}

/// What another replica saved after refreshing: `access`, with its refresh token.
fn other_replicas_set(access: &str) -> StoredRecord {
    TokenSet::<NoExtras>::new(AccessToken::new(access))
        .with_refresh_token(RefreshToken::new(access.replace("at-", "rt-")))
        .with_access_expires_at(datetime!(2026-01-01 02:00 UTC))
        .to_stored()
        .unwrap()
        .into()
}

/// Fails `save` while `failing` is set; counts `load`s; grants every lease request (a store
/// without leases).
#[derive(Default)]
struct FlakyStore {
    failing: std::sync::atomic::AtomicBool,
    loads: AtomicU32,
}

#[async_trait]
impl Hooks for FlakyStore {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        match call {
            Call::Load => drop(self.loads.fetch_add(1, Ordering::SeqCst)),
            Call::Save if self.failing.load(Ordering::SeqCst) => return Err(disk_full()),
            _ => {}
        }
        Ok(())
    }

    async fn lease(
        &self,
        _: &SessionKey,
        _: &dyn TokenStore,
        _: Lease,
    ) -> Result<Lease, StoreError> {
        Ok(Lease::Acquired)
    }
}

/// A manager over a [`FlakyStore`] (saving for now), its provider configured by
/// `configure`, and `s` inserted with `at-0`/`rt-0`, the access token expiring now.
async fn over_flaky_store(
    configure: impl FnOnce(&mut Fake),
) -> (Arc<Fake>, Arc<Hooked<FlakyStore>>, TokenManager<Arc<Fake>>) {
    let clock = TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC));
    let mut fake = Fake::new(Arc::new(clock));
    configure(&mut fake);
    let fake = Arc::new(fake);
    let store = Arc::new(Hooked::<FlakyStore>::default());
    let manager = TokenManager::builder(fake.clone())
        .shared_store(store.clone())
        .client(NoTransport)
        .clock(Arc::new(clock))
        .build()
        .unwrap();
    let set = TokenSet::new(AccessToken::new("at-0")).with_refresh_token(RefreshToken::new("rt-0"));
    manager
        .insert("s", set.with_access_expires_at(clock.now()))
        .await
        .unwrap();
    (fake, store, manager)
}

/// A session removed while its refresh is at the provider, and the store failing the
/// refreshed set's save: the refresh's callers are answered `NoTokens`, as when the save
/// finds the session gone, not handed the tokens of a removed session; nothing is left in
/// the session map.
#[tokio::test(start_paused = true)]
async fn a_refresh_whose_session_was_removed_and_whose_save_failed_answers_no_tokens() {
    let gate = Arc::new(Semaphore::new(0));
    let (fake, store, manager) = over_flaky_store(|fake| fake.gate = Some(gate.clone())).await;
    let waiting = tokio::spawn({
        let manager = manager.clone();
        async move { manager.access_token("s").await }
    });
    assert!(until(|| fake.calls.load(Ordering::SeqCst) == 1).await);
    store.failing.store(true, Ordering::SeqCst);
    manager.remove("s").await.unwrap();
    gate.add_permits(10);
    let answered = waiting.await.unwrap();
    assert!(matches!(answered, Err(Error::NoTokens(_))), "{answered:?}");
    assert_eq!(manager.inner.sessions.len(), 0);
    assert!(matches!(
        manager.access_token("s").await,
        Err(Error::NoTokens(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_failed_save_keeps_the_new_set_in_use_and_saves_it_later() {
    let (fake, store, manager) = over_flaky_store(|_| {}).await;
    let mut events = manager.subscribe();

    store.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert!(matches!(
        events.recv().await.unwrap(),
        Event::PersistFailed { .. }
    ));
    assert!(matches!(
        events.recv().await.unwrap(),
        Event::Refreshed { version: None, .. }
    ));
    // The rotated set is what callers get, never the dead one.
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );

    store.failing.store(false, Ordering::SeqCst);
    let persisted = tokio::time::timeout(Duration::from_secs(600), events.recv())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(persisted, Event::Persisted { .. }),
        "{persisted:?}"
    );
    let stored = store
        .inner
        .load(&SessionKey::new("fake", "s"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(refresh_of(&stored), "rt-1");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
}

/// Refuses every call with `StoreError::Unsupported` (a name the store cannot hold) while
/// `refusing` is set, and counts the calls refused.
#[derive(Default)]
struct RefusingStore {
    refusing: std::sync::atomic::AtomicBool,
    refused: AtomicU32,
    saves_only: bool,
}

#[async_trait]
impl Hooks for RefusingStore {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        let applies = !self.saves_only || matches!(call, Call::Save);
        if applies && self.refusing.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            return Err(StoreError::Unsupported(
                "a name this store cannot hold".into(),
            ));
        }
        Ok(())
    }
}

/// A name the store refuses is a verdict, not an outage: the caller gets a `Rejected` error
/// without the provider being asked or the store asked again; a set whose save is refused
/// stays in use in memory, and the background save gives up rather than retry for ever.
#[tokio::test(start_paused = true)]
async fn a_name_the_store_refuses_is_rejected_not_retried_as_an_outage() {
    let clock = TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC));
    let fake = Arc::new(Fake::new(Arc::new(clock)));
    let manager_over = |store: Arc<Hooked<RefusingStore>>| {
        TokenManager::builder(fake.clone())
            .shared_store(store)
            .client(NoTransport)
            .clock(Arc::new(clock))
            .build()
            .unwrap()
    };

    // Every call refused (what a PostgresStore answers for such a name).
    let store = Arc::new(Hooked::<RefusingStore>::default());
    store.refusing.store(true, Ordering::SeqCst);
    let manager = manager_over(store.clone());
    let error = manager.access_token("s").await.unwrap_err();
    assert!(
        matches!(&error, Error::Store(StoreError::Unsupported(_))),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Rejected);
    let set = TokenSet::new(AccessToken::new("at-0")).with_refresh_token(RefreshToken::new("rt-0"));
    let error = manager.insert("s", set.clone()).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected, "{error:?}");
    let refused = store.refused.load(Ordering::SeqCst);
    tokio::time::advance(Duration::from_secs(3600)).await;
    assert_eq!(store.refused.load(Ordering::SeqCst), refused, "asked again");
    assert_eq!(fake.calls.load(Ordering::SeqCst), 0);
    manager.shutdown(Duration::from_secs(60)).await.unwrap();

    // Only saves refused (another store's limit): the rotated set is kept in use, and its
    // background save stops at the refusal.
    let store = Arc::new(Hooked::over(
        MemoryStore::new(),
        RefusingStore {
            saves_only: true,
            ..RefusingStore::default()
        },
    ));
    let manager = manager_over(store.clone());
    manager
        .insert("s", set.with_access_expires_at(clock.now()))
        .await
        .unwrap();
    store.refusing.store(true, Ordering::SeqCst);
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    // Well before at-1 is due for a refresh (an hour): a background save retrying would
    // have asked many times by then.
    for _ in 0..20 {
        tokio::time::advance(Duration::from_secs(60)).await;
        until(|| false).await;
    }
    let refused = store.refused.load(Ordering::SeqCst);
    // The refresh's save, then the background one; each tried once more without the
    // provider's extras (what makes a record too large for a store that refuses it).
    assert_eq!(refused, 4, "the refresh's save, then the background one");
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 1);
    // Only in memory: `shutdown` says so.
    let shut = manager.shutdown(Duration::from_secs(60)).await;
    assert!(
        matches!(&shut, Err(Error::Unpersisted { sessions }) if sessions == &["s"]),
        "{shut:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_replica_waiting_on_the_lease_adopts_the_other_replicas_set() {
    let clock = TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC));
    let fake = Arc::new(Fake::new(Arc::new(clock)));
    // Held by another replica, which refreshes meanwhile; then free.
    let store = Arc::new(ScriptedLeases::new(
        [
            Lease::HeldByOther {
                remaining: Duration::from_secs(5),
            },
            Lease::Acquired,
        ],
        Some((0, other_replicas_set("at-other"))),
    ));
    let manager = TokenManager::builder(fake.clone())
        .shared_store(store.clone())
        .client(NoTransport)
        .clock(Arc::new(clock))
        .build()
        .unwrap();
    let set = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(clock.now());
    manager.insert("s", set).await.unwrap();
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-other"
    );
    assert_eq!(
        fake.calls.load(Ordering::SeqCst),
        0,
        "no refresh with a refresh token another replica used"
    );
}

// Holding the lock across the await is the point: the fast path must not need it.
#[allow(clippy::await_holding_lock)]
#[tokio::test(start_paused = true)]
async fn the_fast_path_takes_no_lock() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    h.manager.access_token("s").await.unwrap();
    // Hold the session's only lock; a fresh token must still be served.
    let session = h.manager.inner.session("s");
    let _held = session.flight_slot();
    let token = tokio::time::timeout(Duration::from_secs(1), h.manager.access_token("s")).await;
    assert_eq!(
        token
            .expect("fast path blocked on a lock")
            .unwrap()
            .expose_secret(),
        "at-0"
    );
}

#[tokio::test(start_paused = true)]
async fn events_errors_and_logs_never_contain_a_secret() {
    let captured = capture_logs();
    let mut h = harness(|_| {});
    h.fake
        .then(Step::Fail(unavailable(None)))
        .then(Step::LoseAfterRotate);
    h.seed("s", Duration::ZERO).await;
    h.manager.access_token("s").await.unwrap();
    tokio::time::advance(HOUR).await;
    h.fake.then(Step::Fail(invalid_grant()));
    let error = h.manager.access_token("s").await.unwrap_err();
    let mut shown = vec![
        format!("{error}"),
        format!("{error:?}"),
        format!("{:?}", h.manager),
    ];
    for event in h.drain() {
        shown.push(format!("{event:?}"));
    }
    let logs = captured.text();
    assert!(
        logs.contains("token_refresh") && logs.contains("re-authorization required"),
        "{logs}"
    );
    shown.push(logs);
    let generations = h.fake.generation.load(Ordering::SeqCst);
    for text in &shown {
        for n in 0..=generations {
            for secret in [format!("at-{n}"), format!("rt-{n}")] {
                assert!(!text.contains(&secret), "{secret} leaked in {text}");
            }
        }
    }
    assert!(shown.len() > 3);
}

/// A session name is often a caller's (a user id taken from a request): one holding a line
/// break or another control character is escaped wherever the manager or a store writes it
/// (a log line, an error's message), so it cannot forge a line of the application's log.
#[tokio::test(start_paused = true)]
async fn a_session_name_with_control_characters_forges_no_log_line_or_message() {
    let captured = capture_logs();
    let h = harness(|_| {});
    let name = "customer-42\nERROR forged: the vault was opened\u{1b}[2K";
    h.manager.insert(name, expired_pair(&h)).await.unwrap();
    h.fake.then(Step::Fail(invalid_grant()));
    let dead = h.manager.access_token(name).await.unwrap_err();
    h.manager.remove(name).await.unwrap();
    let absent = h.manager.access_token(name).await.unwrap_err();
    let corrupt = not_a_session(&SessionKey::new("fake", name));
    let logs = captured.text();
    assert!(logs.contains("token_refresh"), "{logs}");
    for text in [
        dead.to_string(),
        absent.to_string(),
        corrupt.to_string(),
        logs,
    ] {
        assert!(text.contains(r"customer-42\nERROR forged"), "{text}");
        assert!(
            !text.lines().any(|line| line.starts_with("ERROR forged"))
                && !text.contains("opened\u{1b}"),
            "{text}"
        );
    }
    // The name itself is the caller's, unchanged.
    assert_eq!(dead.reauth().unwrap().session, name);
}

/// A store's key prints its names escaped in `Debug` too (an application's `?key`).
#[test]
fn a_session_keys_debug_escapes_control_characters() {
    let key = SessionKey::new("fake", "customer-42\nERROR forged");
    let shown = format!("{key:?}");
    assert!(!shown.contains('\n'), "{shown}");
    assert!(shown.contains(r"customer-42\nERROR forged"), "{shown}");
}

// --- Faults: panics, overflows, races with insert, throttling, shutdown, several managers ---

/// The builder of a manager of `provider` over `store`, on the harness's clock, with no
/// transport and the default configuration.
fn builder_of<Q: Provider>(
    h: &Harness,
    provider: Q,
    store: Arc<dyn TokenStore>,
) -> TokenManagerBuilder<Q> {
    TokenManager::builder(provider)
        .shared_store(store)
        .client(NoTransport)
        .clock(Arc::new(h.clock))
}

fn manager_over(h: &Harness, store: Arc<dyn TokenStore>) -> TokenManager<Arc<Fake>> {
    manager_of(h, h.fake.clone(), store)
}

/// A manager of `provider` over `store`, on the harness's clock, never retrying.
fn manager_of<Q: Provider>(
    h: &Harness,
    provider: Q,
    store: Arc<dyn TokenStore>,
) -> TokenManager<Q> {
    builder_of(h, provider, store)
        .config(
            ManagerConfig::default()
                .with_refresh_skew(Duration::from_secs(60), Duration::ZERO)
                .with_retry(RetryPolicy::never()),
        )
        .build()
        .unwrap()
}

#[tokio::test(start_paused = true)]
async fn a_panicking_refresh_is_an_error_for_its_callers_and_a_later_call_refreshes() {
    let h = harness(|_| {});
    h.seed("s", Duration::ZERO).await;
    h.fake.then(Step::Panic).then(Step::Panic);
    let error = h.manager.access_token("s").await.unwrap_err();
    assert!(
        matches!(error, Error::RefreshAborted(AbortReason::Panicked)),
        "{error:?}"
    );
    assert_eq!(error.kind(), ErrorKind::Transient);
    // Answered again for `failure_cooldown`, as a provider's failure is: a provider whose
    // code panics every time is not called once per caller.
    for _ in 0..5 {
        let again = h.manager.access_token("s").await.unwrap_err();
        assert!(
            matches!(again, Error::RefreshAborted(AbortReason::Panicked)),
            "{again:?}"
        );
    }
    assert_eq!(h.calls(), 1);
    // Then the slot is clear and a new refresh runs (and panics again, and is remembered).
    let cooldown = ManagerConfig::default().failure_cooldown;
    tokio::time::advance(cooldown).await;
    assert!(h.manager.access_token("s").await.is_err());
    assert_eq!(h.calls(), 2);
    tokio::time::advance(cooldown).await;
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(h.calls(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_huge_retry_after_late_in_a_refresh_neither_panics_nor_wedges_the_session() {
    let h = harness(|_| {});
    h.seed("s", Duration::ZERO).await;
    h.fake
        .then(Step::Fail(unavailable(Some(Duration::from_secs(2)))))
        .then(Step::Fail(unavailable(Some(Duration::from_secs(u64::MAX)))));
    let error = h.manager.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Transient, "{error:?}");
    assert_eq!(h.calls(), 2);
    // Remembered (capped at an hour), then the session refreshes again.
    let cooling = h.manager.access_token("s").await.unwrap_err();
    let Error::CoolingDown { remaining } = cooling else {
        panic!("{cooling:?}")
    };
    assert!(remaining <= Duration::from_secs(3600), "{remaining:?}");
    assert_eq!(h.calls(), 2);
    tokio::time::advance(Duration::from_secs(3601)).await;
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
}

#[tokio::test(start_paused = true)]
async fn a_jwt_style_expiry_near_the_end_of_time_does_not_panic() {
    let h = harness(|_| {});
    let set = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(datetime!(-9999-01-01 00:00 UTC))
        .with_refresh_expires_at(datetime!(-9999-01-01 00:00 UTC));
    h.manager.insert("s", set).await.unwrap();
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    let far = TokenSet::new(AccessToken::new("at-far"))
        .with_access_expires_at(datetime!(9999-12-31 23:59 UTC));
    h.manager.insert("t", far).await.unwrap();
    assert_eq!(
        h.manager.access_token("t").await.unwrap().expose_secret(),
        "at-far"
    );
}

/// A clock past 2262 (a `TokioClock` or an application's own `Clock`; `ManualClock` stops
/// there) serves a set until its expiry: a state's instants compare exactly (`i128`). (Saturated
/// to the years 1677-2262, as they briefly were, every instant past the end was one and the
/// same, every set with an expiry read as expired, and each call refreshed.)
#[tokio::test(start_paused = true)]
async fn a_clock_past_2262_serves_a_token_until_its_expiry() {
    let clock = TokioClock::starting_at(datetime!(2300-01-01 00:00 UTC));
    let fake = Arc::new(Fake::new(Arc::new(clock)));
    let manager = TokenManager::builder(fake.clone())
        .client(NoTransport)
        .clock(Arc::new(clock))
        .config(
            ManagerConfig::default()
                .with_refresh_skew(Duration::from_secs(60), Duration::ZERO)
                .with_retry(RetryPolicy::never()),
        )
        .build()
        .unwrap();
    let set = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(clock.now() + HOUR);
    manager.insert("s", set).await.unwrap();
    let token = manager.access_token("s").await.unwrap();
    assert_eq!(
        (token.expose_secret(), fake.calls.load(Ordering::SeqCst)),
        ("at-0", 0),
        "fresh for another hour"
    );
}

#[tokio::test(start_paused = true)]
async fn a_panicking_hook_is_caught_and_never_fatal() {
    let clock = TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC));
    let fake = Arc::new(Fake::new(Arc::new(clock)));
    let panicked = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flag = panicked.clone();
    let manager = TokenManager::builder(fake.clone())
        .client(NoTransport)
        .clock(Arc::new(clock))
        .on_event(move |_| {
            if !flag.swap(true, Ordering::SeqCst) {
                panic!("the application's hook panicked");
            }
        })
        .build()
        .unwrap();
    let set = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(clock.now());
    manager.insert("s", set).await.unwrap();
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert!(panicked.load(Ordering::SeqCst), "the hook ran and panicked");
    assert_eq!(
        manager.refresh_now("s").await.unwrap().expose_secret(),
        "at-2"
    );
}

#[tokio::test(start_paused = true)]
async fn retry_after_is_remembered_between_callers() {
    let h = harness(|_| {});
    h.seed("s", Duration::ZERO).await;
    h.fake
        .then(Step::Fail(too_many_requests(Duration::from_secs(120))));
    assert_eq!(
        h.manager.access_token("s").await.unwrap_err().kind(),
        ErrorKind::Transient
    );
    for _ in 0..100 {
        let error = h.manager.access_token("s").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Transient);
        assert!(
            error
                .retry_after()
                .is_some_and(|left| left <= Duration::from_secs(120)),
            "{error:?}"
        );
    }
    assert_eq!(h.calls(), 1, "callers are answered from the cooldown");
    tokio::time::advance(Duration::from_secs(121)).await;
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(h.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_session_cooling_down_takes_a_set_another_process_stored_meanwhile() {
    let h = harness(|_| {});
    let other = manager_over(&h, h.store.clone());
    h.seed("s", Duration::ZERO).await;
    h.fake
        .then(Step::Fail(too_many_requests(Duration::from_secs(600))));
    assert!(
        h.manager
            .access_token("s")
            .await
            .unwrap_err()
            .retry_after()
            .is_some()
    );
    // The user logs in again through another process sharing the store.
    let login = TokenSet::new(AccessToken::new("at-login"))
        .with_refresh_token(RefreshToken::new("rt-login"))
        .with_access_expires_at(h.clock.now() + HOUR);
    other.insert("s", login).await.unwrap();
    // The provider's wait is for its calls, not for what the store holds: once the failure
    // is no longer answered from memory, the login is served.
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    let token = h.manager.access_token("s").await.unwrap();
    assert_eq!(token.expose_secret(), "at-login");
    assert_eq!(h.calls(), 1, "the provider is not asked during its wait");
}

#[tokio::test(start_paused = true)]
async fn an_answer_already_expired_is_used_and_refreshes_are_spaced() {
    let mut h = harness(|_| {});
    h.seed("s", Duration::ZERO).await;
    h.fake.then(Step::AnswerExpired).then(Step::AnswerExpired);
    for _ in 0..100 {
        assert_eq!(
            h.manager.access_token("s").await.unwrap().expose_secret(),
            "at-1"
        );
    }
    assert_eq!(h.calls(), 1);
    assert!(h.drain().iter().any(|e| matches!(
        e,
        Event::ExpiryAdjusted {
            note: ExpiryNote::AlreadyExpired,
            ..
        }
    )));
    tokio::time::advance(ManagerConfig::default().min_refresh_interval).await;
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-2"
    );
    assert_eq!(h.calls(), 2);
}

/// An answer whose access token lives less than a second (a provider's clock a little
/// behind this host's, an expiry with sub-second precision) is used for
/// `min_refresh_interval`, as one already expired is: its callers are not answered by a
/// provider call each, at up to one per caller's call (a thousand a second here, for a
/// token that lives 1 ms). One that lives a few seconds is refreshed as it expires.
#[tokio::test(start_paused = true)]
async fn a_short_lived_answer_is_used_and_refreshes_are_spaced() {
    for life in [Duration::from_millis(1), Duration::from_millis(900)] {
        let mut h = harness(|_| {});
        h.seed("s", Duration::ZERO).await;
        for _ in 0..2000 {
            h.fake.then(Step::AnswerLiving(life));
        }
        for _ in 0..2000 {
            tokio::time::advance(Duration::from_millis(1)).await;
            h.manager.access_token("s").await.unwrap();
        }
        assert_eq!(h.calls(), 1, "{life:?}");
        assert!(h.drain().iter().any(|e| matches!(
            e,
            Event::ExpiryAdjusted {
                note: ExpiryNote::ShortLived,
                ..
            }
        )));
        tokio::time::advance(ManagerConfig::default().min_refresh_interval).await;
        assert_eq!(
            h.manager.access_token("s").await.unwrap().expose_secret(),
            "at-2"
        );
        assert_eq!(h.calls(), 2, "{life:?}");
    }
    // Not served past its expiry: refreshed then, a second apart at most.
    let h = harness(|_| {});
    h.seed("s", Duration::ZERO).await;
    for _ in 0..10 {
        h.fake.then(Step::AnswerLiving(Duration::from_secs(2)));
    }
    for _ in 0..5000 {
        tokio::time::advance(Duration::from_millis(1)).await;
        h.manager.access_token("s").await.unwrap();
        let set = h.manager.token_set("s").await.unwrap();
        assert!(set.access_expires_at.unwrap() > h.clock.now());
    }
    assert_eq!(h.calls(), 3);
}

/// A rotated pair whose access token cannot be sent in a header but whose new refresh token
/// can: the refresh token is kept and saved (beside an access token never served), so the
/// next refresh presents it. It used to be an unknown outcome, nothing saved: with no reuse
/// window the spent token was presented next and the session lost (a false re-auth). The
/// caller gets a typed error (`Rejected`) naming no token; the events say the pair rotated
/// and that the refresh failed.
#[tokio::test(start_paused = true)]
async fn a_rotated_pair_whose_access_token_cannot_be_sent_keeps_its_refresh_token() {
    let mut h = harness(|fake| fake.reuse_window = Duration::ZERO);
    h.seed("s", Duration::ZERO).await;
    h.drain();
    h.fake.then(Step::AnswerUnsendableAccess);
    let error = h.manager.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected, "{error}");
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains("CANARY") && !shown.contains("rt-1"),
        "{shown}"
    );
    assert!(shown.contains("access token"), "{shown}");
    let stored = h.stored_tokens("s").await.expect("tokens stored").value;
    assert_eq!(
        stored
            .refresh_token
            .as_ref()
            .map(RefreshToken::expose_secret),
        Some("rt-1"),
        "the new refresh token is saved"
    );
    assert!(!stored.access_token.expose_secret().contains("CANARY"));
    assert!(
        stored
            .access_expires_at
            .is_some_and(|at| at <= h.clock.now())
    );
    let events = h.drain();
    let shown = format!("{events:?}");
    assert!(
        !shown.contains("CANARY") && !shown.contains("rt-1"),
        "{shown}"
    );
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::Refreshed { rotated: true, .. })),
        "{shown}"
    );
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::RefreshFailed {
                kind: ErrorKind::Rejected,
                ..
            }
        )),
        "{shown}"
    );
    assert!(!shown.contains("ReauthRequired"), "{shown}");
    // Callers meanwhile get the same failure, the provider not asked again.
    for _ in 0..10 {
        let again = h.manager.access_token("s").await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Rejected);
    }
    assert_eq!(h.calls(), 1);
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    let token = h.manager.access_token("s").await.unwrap();
    assert_eq!(token.expose_secret(), "at-2");
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0", "rt-1"]);
    let stored = h.stored_tokens("s").await.unwrap().value;
    assert_eq!(stored.access_token.expose_secret(), "at-2");
}

/// A provider that keeps answering rotated pairs whose access tokens cannot be sent is not
/// hammered: one call per `failure_cooldown` at most, however often callers ask, and each
/// call presents the newest refresh token (never a spent one: no re-auth).
/// A set-aside access token (empty, or one that cannot be sent) is stored expiring at the
/// Unix epoch; a clock that reads earlier (an injected one, a device that has not set its
/// clock) must still never serve it: the first call refreshes.
#[tokio::test(start_paused = true)]
async fn a_set_aside_access_token_is_never_served_by_a_clock_before_1970() {
    let clock = TokioClock::starting_at(datetime!(1960-01-01 00:00 UTC));
    let fake = Arc::new(Fake::new(Arc::new(clock)));
    let manager = TokenManager::builder(fake.clone())
        .client(NoTransport)
        .clock(Arc::new(clock))
        .build()
        .unwrap();
    for (session, access) in [("empty", ""), ("unsendable", "at\nX-Injected: 1")] {
        let set = TokenSet::new(AccessToken::new(access))
            .with_refresh_token(RefreshToken::new(fake.live.lock().unwrap().clone()))
            .with_access_expires_at(clock.now() + HOUR);
        manager.insert(session, set).await.unwrap();
        let token = manager.access_token(session).await.unwrap();
        assert!(token.expose_secret().starts_with("at-"), "{session}");
    }
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_provider_that_keeps_answering_unsendable_access_tokens_is_not_hammered() {
    let mut h = harness(|fake| fake.reuse_window = Duration::ZERO);
    h.seed("s", Duration::ZERO).await;
    for _ in 0..1000 {
        h.fake.then(Step::AnswerUnsendableAccess);
    }
    let span = Duration::from_secs(60);
    for _ in 0..span.as_millis() / 250 {
        let error = h.manager.access_token("s").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Rejected, "{error}");
        tokio::time::advance(Duration::from_millis(250)).await;
    }
    let cooldown = ManagerConfig::default().failure_cooldown;
    let bound = (span.as_millis() / cooldown.as_millis()) as u32 + 1;
    assert!(h.calls() <= bound, "{} calls in {span:?}", h.calls());
    assert!(h.calls() >= 2, "asked again after the cooldown");
    let presented = h.fake.presented.lock().unwrap().clone();
    let expected: Vec<String> = (0..presented.len()).map(|n| format!("rt-{n}")).collect();
    assert_eq!(
        presented, expected,
        "each call presents the newest refresh token"
    );
    let shown = format!("{:?}", h.drain());
    assert!(!shown.contains("ReauthRequired") && !shown.contains("CANARY"));
    // Once the provider answers a usable token, it is served.
    h.fake.script.lock().unwrap().clear();
    tokio::time::advance(cooldown).await;
    let token = h.manager.access_token("s").await.unwrap();
    assert_eq!(token.expose_secret(), format!("at-{}", h.calls()));
}

/// A set-aside pair seen by another process sharing the store: that process never serves
/// the placeholder (by name, by handle, by `token_set`, after a 401 to an empty bearer or
/// to the old token it held), refreshes once with the saved refresh token, and the process
/// that set the token aside then adopts that process's set rather than presenting the
/// saved refresh token again (spent: with no reuse window that would be a false re-auth).
#[tokio::test(start_paused = true)]
async fn a_set_aside_pair_is_refreshed_once_by_another_process_and_adopted_here() {
    let mut h = harness(|fake| fake.reuse_window = Duration::ZERO);
    h.seed("s", Duration::ZERO).await;
    let other = manager_over(&h, h.store.clone());
    h.drain();
    h.fake.then(Step::AnswerUnsendableAccess);
    let error = h.manager.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected, "{error}");
    assert_eq!(h.calls(), 1);
    // The other process: every way in refreshes once, with rt-1, and serves at-2.
    let empty = AccessToken::new("");
    assert_eq!(
        other
            .refresh_rejected("s", &empty)
            .await
            .unwrap()
            .expose_secret(),
        "at-2"
    );
    assert_eq!(
        other.access_token("s").await.unwrap().expose_secret(),
        "at-2"
    );
    assert_eq!(
        other
            .session("s")
            .access_token()
            .await
            .unwrap()
            .expose_secret(),
        "at-2"
    );
    let set = other.token_set("s").await.unwrap();
    assert_eq!(set.access_token.expose_secret(), "at-2");
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0", "rt-1"]);
    // Here, once the failure is no longer answered: the other process's set, adopted.
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    let token = h.manager.access_token("s").await;
    assert_eq!(token.unwrap().expose_secret(), "at-2");
    let set = h.manager.token_set("s").await.unwrap();
    assert_eq!(set.access_token.expose_secret(), "at-2");
    assert_eq!(h.calls(), 2, "rt-1 is not presented again");
    let shown = format!("{:?}", h.drain());
    assert!(!shown.contains("ReauthRequired"), "{shown}");
}

/// A process that still holds the old access token (fresh when it loaded it) while another
/// sets the rotated pair's access token aside: a 401 to the old token makes it read the
/// store and refresh with the saved refresh token, never serve the placeholder. Its forced
/// refresh does the same.
#[tokio::test(start_paused = true)]
async fn a_process_holding_the_old_token_refreshes_past_a_set_aside_pair() {
    for forced in [false, true] {
        let mut h = harness(|fake| fake.reuse_window = Duration::ZERO);
        h.seed("s", HOUR).await;
        let other = manager_over(&h, h.store.clone());
        assert_eq!(
            other.access_token("s").await.unwrap().expose_secret(),
            "at-0"
        );
        h.drain();
        h.fake.then(Step::AnswerUnsendableAccess);
        let error = h.manager.refresh_now("s").await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Rejected, "{error}");
        let token = if forced {
            other.refresh_now("s").await
        } else {
            other.refresh_rejected("s", &AccessToken::new("at-0")).await
        };
        assert_eq!(token.unwrap().expose_secret(), "at-2", "forced={forced}");
        assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0", "rt-1"]);
        let shown = format!("{:?}", h.drain());
        assert!(!shown.contains("ReauthRequired"), "{shown}");
    }
}

/// A provider that issues sets of the client's own: an issued set whose access token cannot
/// be sent, beside a refresh token, is kept like a refreshed one (the access token set aside,
/// `Rejected` for the callers, never an empty bearer); after the cooldown the saved refresh
/// token is presented, not a new set issued. Also when the issue followed a refused refresh.
#[tokio::test(start_paused = true)]
async fn an_issued_set_whose_access_token_cannot_be_sent_keeps_its_refresh_token() {
    for refused in [false, true] {
        let mut h = harness(|fake| {
            fake.can_issue = true;
            fake.reuse_window = Duration::ZERO;
        });
        if refused {
            h.seed("svc", Duration::ZERO).await;
            h.fake.then(Step::Fail(invalid_grant()));
        }
        h.fake.then(Step::AnswerUnsendableAccess);
        let error = h.manager.access_token("svc").await.unwrap_err();
        assert_eq!(
            error.kind(),
            ErrorKind::Rejected,
            "refused={refused}: {error}"
        );
        let again = h.manager.access_token("svc").await.unwrap_err();
        assert_eq!(again.kind(), ErrorKind::Rejected);
        assert_eq!(h.fake.issues.load(Ordering::SeqCst), 1);
        let stored = h.stored_tokens("svc").await.expect("saved").value;
        assert_eq!(
            stored
                .refresh_token
                .as_ref()
                .map(RefreshToken::expose_secret),
            Some("rt-1")
        );
        tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
        let token = h.manager.access_token("svc").await.unwrap();
        assert_eq!(token.expose_secret(), "at-2", "refused={refused}");
        assert_eq!(h.fake.issues.load(Ordering::SeqCst), 1, "not issued again");
        assert_eq!(h.fake.presented.lock().unwrap().last().unwrap(), "rt-1");
        let shown = format!("{:?}", h.drain());
        assert!(
            !shown.contains("ReauthRequired") && !shown.contains("CANARY"),
            "{shown}"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn an_answer_without_expiry_gets_the_default_lifetime_and_an_event() {
    let clock = TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC));
    let fake = Arc::new(Fake::new(Arc::new(clock)));
    let manager = TokenManager::builder(fake.clone())
        .client(NoTransport)
        .clock(Arc::new(clock))
        .config(ManagerConfig::default().with_default_access_lifetime(Some(HOUR)))
        .build()
        .unwrap();
    let mut events = manager.subscribe();
    manager
        .insert(
            "s",
            TokenSet::new(AccessToken::new("at-0"))
                .with_refresh_token(RefreshToken::new("rt-0"))
                .with_access_expires_at(clock.now()),
        )
        .await
        .unwrap();
    fake.then(Step::AnswerWithoutExpiry);
    let set = manager.token_set("s").await.unwrap();
    assert_eq!(
        set.access_token.expose_secret(),
        "at-1",
        "the tokens are kept"
    );
    assert_eq!(set.access_expires_at, Some(clock.now() + HOUR));
    let mut notes = Vec::new();
    while let Ok(event) = events.try_recv() {
        if let Event::ExpiryAdjusted { note, .. } = event {
            notes.push(note);
        }
    }
    assert_eq!(notes, [ExpiryNote::Unknown]);
}

#[tokio::test(start_paused = true)]
async fn an_insert_wins_over_a_refresh_under_way() {
    // The provider answers, refuses, or answers an access token that cannot be sent.
    for (refused, unsendable) in [(false, false), (true, false), (false, true)] {
        let gate = Arc::new(Semaphore::new(0));
        let mut h = harness(|fake| {
            fake.gate = Some(gate.clone());
            fake.reuse_window = Duration::ZERO;
        });
        h.seed("s", Duration::ZERO).await;
        if refused {
            h.fake.then(Step::Fail(invalid_grant()));
        }
        if unsendable {
            h.fake.then(Step::AnswerUnsendableAccess);
        }
        let manager = h.manager.clone();
        let waiting = tokio::spawn(async move { manager.access_token("s").await });
        h.until_calls(1).await;
        // The user logs in again while the refresh is at the provider.
        let inserted = TokenSet::new(AccessToken::new("at-login"))
            .with_refresh_token(RefreshToken::new("rt-login"))
            .with_access_expires_at(h.clock.now() + HOUR);
        h.manager.insert("s", inserted).await.unwrap();
        gate.add_permits(1);
        let answered = waiting.await.unwrap().unwrap();
        assert_eq!(
            answered.expose_secret(),
            "at-login",
            "{refused} {unsendable}"
        );
        assert_eq!(
            h.manager.access_token("s").await.unwrap().expose_secret(),
            "at-login"
        );
        let stored = h.stored_tokens("s").await.unwrap();
        assert_eq!(stored.value.access_token.expose_secret(), "at-login");
        let events = h.drain();
        assert!(
            !events.iter().any(|e| matches!(e, Event::ReauthRequired(_))),
            "refused={refused}: no re-auth for the replaced tokens"
        );
        if unsendable {
            // Nor a failure: the session does not keep the set that failed.
            let failed = |e: &Event| matches!(e, Event::RefreshFailed { .. });
            assert!(!events.iter().any(failed), "{events:?}");
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_refresh_overtaken_by_two_expired_logins_in_a_row_answers_a_usable_token() {
    let (h, gate, waiting) = held_refresh().await;
    // A login whose access token has already expired (as `insert_refresh_token`'s is).
    let login = |n: u32| {
        TokenSet::new(AccessToken::new(format!("at-login-{n}")))
            .with_refresh_token(RefreshToken::new(format!("rt-login-{n}")))
            .with_access_expires_at(h.clock.now() - Duration::from_secs(1))
    };
    // Lets the call at the gate through, and only that one (the gate is fair: the permit
    // comes back to this task, not to the next call).
    let pass_one = || async {
        gate.add_permits(1);
        gate.acquire().await.unwrap().forget();
    };
    // The user logs in while the refresh is at the provider; the refresh of that login
    // is overtaken by the next login in turn.
    h.manager.insert("s", login(1)).await.unwrap();
    pass_one().await;
    h.until_calls(2).await;
    h.manager.insert("s", login(2)).await.unwrap();
    *h.fake.live.lock().unwrap() = "rt-login-1".into();
    pass_one().await;
    h.until_calls(3).await;
    *h.fake.live.lock().unwrap() = "rt-login-2".into();
    pass_one().await;
    let answered = waiting.await.unwrap().unwrap();
    assert_eq!(
        h.fake.presented.lock().unwrap()[1..],
        ["rt-login-1", "rt-login-2"]
    );
    assert_eq!(answered.expose_secret(), "at-3", "the last login's refresh");
}

/// A refusal that is no verdict (a scope withdrawn): not retried.
fn invalid_scope() -> Error {
    EndpointError::from(ProviderError::new(
        ErrorKind::Rejected,
        StatusCode::BAD_REQUEST,
        "invalid_scope",
    ))
    .into()
}

/// The user logs in (`rt-login` alone, through `insert_refresh_token`) while the refresh of
/// [`held_refresh`] is at the provider: returns once the login is stored, its own refresh
/// then joining the one under way.
async fn log_in_while_held(h: &Harness) -> tokio::task::JoinHandle<Result<AccessToken, Error>> {
    *h.fake.live.lock().unwrap() = "rt-login".into();
    let manager = h.manager.clone();
    let login = tokio::spawn(async move {
        let login = RefreshToken::new("rt-login");
        manager.insert_refresh_token("s", login).await
    });
    for _ in 0..1000 {
        if h.stored_tokens("s").await.is_some_and(|stored| {
            stored.value.refresh_token.as_ref().unwrap().expose_secret() == "rt-login"
        }) {
            return login;
        }
        tokio::task::yield_now().await;
    }
    panic!("the login was not stored");
}

#[tokio::test(start_paused = true)]
async fn a_refresh_overtaken_by_an_insert_does_not_answer_its_failure_for_the_inserted_tokens() {
    let (h, gate, waiting) = held_refresh().await;
    // The old grant's refresh ends in a refusal that is no verdict (a scope withdrawn).
    h.fake.then(Step::Fail(invalid_scope()));
    let login = log_in_while_held(&h).await;
    gate.add_permits(10);
    // The refusal was of the replaced tokens: the login is refreshed, not refused with it.
    let first = login.await.unwrap().unwrap();
    assert_eq!(first.expose_secret(), "at-1");
    assert_eq!(waiting.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0", "rt-login"]);
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
}

/// A refresh overtaken by an expired login once `shutdown` has begun does not go on to
/// refresh the login (a new provider call that the shutdown's deadline may cut off, its
/// answer lost): its callers are answered `ShuttingDown`, whether the overtaken refresh
/// succeeded or failed.
#[tokio::test(start_paused = true)]
async fn a_refresh_overtaken_by_a_login_during_shutdown_does_not_refresh_the_login() {
    for fails in [false, true] {
        let (h, gate, waiting) = held_refresh().await;
        if fails {
            h.fake.then(Step::Fail(invalid_scope()));
        }
        let login = log_in_while_held(&h).await;
        let manager = h.manager.clone();
        let shutting = tokio::spawn(async move { manager.shutdown(Duration::from_secs(30)).await });
        tokio::task::yield_now().await;
        gate.add_permits(100);
        shutting.await.unwrap().unwrap();
        assert_eq!(
            *h.fake.presented.lock().unwrap(),
            ["rt-0"],
            "fails: {fails}"
        );
        let login = login.await.unwrap();
        assert!(
            matches!(login, Err(Error::ShuttingDown)),
            "{fails}: {login:?}"
        );
        let waiting = waiting.await.unwrap();
        assert!(
            matches!(waiting, Err(Error::ShuttingDown)),
            "{fails}: {waiting:?}"
        );
        // The login is kept for the next process.
        let stored = h.stored_tokens("s").await.unwrap();
        assert_eq!(
            stored.value.refresh_token.unwrap().expose_secret(),
            "rt-login"
        );
    }
}

#[tokio::test(start_paused = true)]
async fn shutdown_waits_for_the_refresh_in_flight_and_saves_it() {
    let (h, gate, waiting) = held_refresh().await;
    let manager = h.manager.clone();
    let shutting = tokio::spawn(async move { manager.shutdown(Duration::from_secs(30)).await });
    tokio::task::yield_now().await;
    assert!(!shutting.is_finished(), "shutdown waits for the refresh");
    gate.add_permits(10);
    shutting.await.unwrap().unwrap();
    assert_eq!(waiting.await.unwrap().unwrap().expose_secret(), "at-1");
    let stored = h.stored_tokens("s").await.unwrap();
    assert_eq!(
        stored.value.refresh_token.unwrap().expose_secret(),
        "rt-1",
        "the rotated pair is saved"
    );
    // No new refresh after shutdown; fresh tokens are still served.
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert!(matches!(
        h.manager.refresh_now("s").await,
        Err(Error::ShuttingDown)
    ));
}

#[tokio::test(start_paused = true)]
async fn shutdown_reports_work_still_running_at_its_deadline() {
    let (h, _gate, _waiting) = held_refresh().await;
    let error = h
        .manager
        .shutdown(Duration::from_secs(1))
        .await
        .unwrap_err();
    assert!(
        matches!(error, Error::ShutdownTimedOut { pending: 1 }),
        "{error:?}"
    );
}

/// A refresh waiting for another process's lease (or, having taken over a lapsed one, for
/// its holder's save) has spent nothing: a shutdown ends the wait at once, the callers get
/// `ShuttingDown`, no token is sent and the lease is given back.
#[tokio::test(start_paused = true)]
async fn a_shutdown_ends_a_refresh_waiting_for_a_lease_at_once() {
    let held = Lease::HeldByOther {
        remaining: Duration::from_secs(30),
    };
    for (name, leases) in [
        ("held by another process", vec![held]),
        ("taken over from a lapsed holder", vec![Lease::TakenOver]),
    ] {
        let h = harness(|_| {});
        let store = ScriptedLeases::new(leases, None);
        let manager = manager_over(&h, Arc::new(store));
        manager.insert("s", expired_pair(&h)).await.unwrap();
        let waiting = tokio::spawn({
            let manager = manager.clone();
            async move { manager.access_token("s").await }
        });
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert!(!waiting.is_finished(), "{name}: waits for the lease");
        let started = tokio::time::Instant::now();
        manager.shutdown(Duration::from_secs(60)).await.unwrap();
        assert!(
            started.elapsed() < Duration::from_secs(1),
            "{name}: {:?}",
            started.elapsed()
        );
        let answer = waiting.await.unwrap();
        assert!(
            matches!(answer, Err(Error::ShuttingDown)),
            "{name}: {answer:?}"
        );
        assert_eq!(h.calls(), 0, "{name}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_verdict_is_recorded_once_and_another_manager_sends_nothing_more() {
    let mut h = harness(|fake| fake.reuse_window = Duration::ZERO);
    h.seed("s", HOUR).await;
    let store: Arc<dyn TokenStore> = h.store.clone();
    let other = manager_over(&h, store.clone());
    let mut other_events = other.subscribe();
    // The other manager has the set cached before the verdict.
    assert_eq!(
        other.access_token("s").await.unwrap().expose_secret(),
        "at-0"
    );
    h.fake.then(Step::Fail(invalid_grant()));
    tokio::time::advance(HOUR).await;
    assert_eq!(
        h.manager.access_token("s").await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    assert_eq!(h.calls(), 1);
    // The other manager sees the verdict in the store: no provider call, no event.
    assert_eq!(
        other.access_token("s").await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    let third = manager_over(&h, store);
    assert_eq!(
        third.access_token("s").await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    assert_eq!(h.calls(), 1, "the dead token is not spent again");
    assert_eq!(
        h.drain()
            .iter()
            .filter(|e| matches!(e, Event::ReauthRequired(_)))
            .count(),
        1
    );
    while let Ok(event) = other_events.try_recv() {
        assert!(!matches!(event, Event::ReauthRequired(_)), "{event:?}");
    }
    // A login inserted through one manager ends the verdict for the others too.
    other
        .insert(
            "s",
            TokenSet::new(AccessToken::new("at-login"))
                .with_refresh_token(RefreshToken::new("rt-login"))
                .with_access_expires_at(h.clock.now() + HOUR),
        )
        .await
        .unwrap();
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-login"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refused_token_is_no_verdict_when_the_store_holds_a_newer_pair() {
    let gate = Arc::new(Semaphore::new(0));
    let mut h = harness(|fake| {
        fake.gate = Some(gate.clone());
        fake.reuse_window = Duration::ZERO;
    });
    // A store without leases, so both managers refresh the same token.
    let (first_manager, store) = flaky_manager(&h);
    let mut events = first_manager.subscribe();
    first_manager.insert("s", expired_pair(&h)).await.unwrap();
    let manager = first_manager.clone();
    let first = tokio::spawn(async move { manager.access_token("s").await });
    h.until_calls(1).await;
    // Another process refreshes the same token first and saves.
    let other = manager_over(&h, store);
    let second = tokio::spawn(async move { other.access_token("s").await });
    h.until_calls(2).await;
    gate.add_permits(1);
    let second_token = second.await.unwrap().unwrap();
    gate.add_permits(1);
    let first_token = first.await.unwrap().unwrap();
    assert_eq!(
        first_token, second_token,
        "the newer stored pair is adopted"
    );
    while let Ok(event) = events.try_recv() {
        assert!(
            !matches!(event, Event::ReauthRequired(_)),
            "no false re-auth"
        );
    }
    let _ = h.drain();
}

/// A token obtained after a 401 stands against another 401 only for the failure cooldown:
/// one the API accepted for a while and then refused (revoked) is refreshed again, or every
/// request would be refused until it expires (for ever with no expiry known). An API that
/// refuses every token gets one refresh per cooldown at most.
#[tokio::test(start_paused = true)]
async fn a_token_obtained_after_a_401_is_refreshed_again_when_refused_after_the_cooldown() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    let token = h.manager.access_token("s").await.unwrap();
    let fresh = h.manager.refresh_rejected("s", &token).await.unwrap();
    assert_eq!(fresh.expose_secret(), "at-1");
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    let again = h.manager.refresh_rejected("s", &fresh).await.unwrap();
    assert_eq!(
        again.expose_secret(),
        "at-2",
        "the refused at-1 is refreshed"
    );
    let stands = h.manager.refresh_rejected("s", &again).await.unwrap();
    assert_eq!(stands, again, "within the cooldown at-2 stands");
    assert_eq!(h.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_api_that_refuses_every_token_rotates_it_once() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    let token = h.manager.access_token("s").await.unwrap();
    let fresh = h.manager.refresh_rejected("s", &token).await.unwrap();
    assert_eq!(fresh.expose_secret(), "at-1");
    for _ in 0..20 {
        let again = h.manager.refresh_rejected("s", &fresh).await.unwrap();
        assert_eq!(
            again, fresh,
            "a token obtained after a 401 is not refreshed for a 401"
        );
    }
    assert_eq!(h.calls(), 1);
    // The next natural refresh allows one 401-driven refresh again.
    let forced = h.manager.refresh_now("s").await.unwrap();
    let after = h.manager.refresh_rejected("s", &forced).await.unwrap();
    assert_ne!(after, forced);
    assert_eq!(h.calls(), 3);
}

/// As above on a clock past 2106 (a clock stepped forward by decades, a host set far
/// ahead): an instant that no longer fits in 32-bit Unix seconds still holds off a refresh
/// for each 401, rather than letting every request refused rotate the session.
#[tokio::test(start_paused = true)]
async fn an_api_that_refuses_every_token_rotates_it_once_whatever_the_year() {
    for year in [2107, 2300] {
        let start = datetime!(2026-01-01 00:00 UTC).replace_year(year).unwrap();
        let clock = TokioClock::starting_at(start);
        let fake = Arc::new(Fake::new(Arc::new(clock)));
        let manager = TokenManager::builder(fake.clone())
            .client(NoTransport)
            .clock(Arc::new(clock))
            .build()
            .unwrap();
        let set = TokenSet::new(AccessToken::new("at-0"))
            .with_refresh_token(RefreshToken::new("rt-0"))
            .with_access_expires_at(clock.now() + HOUR);
        manager.insert("s", set).await.unwrap();
        let token = manager.access_token("s").await.unwrap();
        let fresh = manager.refresh_rejected("s", &token).await.unwrap();
        assert_eq!(fresh.expose_secret(), "at-1");
        for _ in 0..20 {
            let again = manager.refresh_rejected("s", &fresh).await.unwrap();
            assert_eq!(again, fresh, "{year}");
        }
        assert_eq!(fake.calls.load(Ordering::SeqCst), 1, "{year}");
    }
}

#[tokio::test(start_paused = true)]
async fn no_refresh_token_is_sent_after_the_lease_was_lost() {
    let h = harness(|_| {});
    // Granted once, then taken by another holder.
    let store = Arc::new(ScriptedLeases::new(
        [
            Lease::Acquired,
            Lease::HeldByOther {
                remaining: Duration::from_secs(5),
            },
        ],
        None,
    ));
    let manager = TokenManager::builder(h.fake.clone())
        .shared_store(store.clone())
        .client(NoTransport)
        .clock(Arc::new(h.clock))
        .build()
        .unwrap();
    manager.insert("s", expired_pair(&h)).await.unwrap();
    h.fake.then(Step::Fail(unavailable(None)));
    // The refresh starts again, waiting for the other holder, which here never lets go.
    let error = manager.access_token("s").await.unwrap_err();
    assert!(
        matches!(&error, Error::Store(e) if e.to_string().contains("held the refresh lease too long")),
        "{error:?}"
    );
    assert_eq!(h.calls(), 1, "the retry is not sent without the lease");
}

#[tokio::test(start_paused = true)]
async fn a_lease_taken_over_from_a_lapsed_holder_waits_for_its_save_instead_of_spending() {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    // Taken over from a lapsed holder, whose save lands while the manager waits.
    let store = Arc::new(ScriptedLeases::new(
        [Lease::TakenOver, Lease::Acquired],
        Some((1, other_replicas_set("at-theirs"))),
    ));
    let manager = manager_over(&h, store.clone());
    manager.insert("s", expired_pair(&h)).await.unwrap();
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-theirs"
    );
    assert_eq!(
        h.calls(),
        0,
        "the token the lapsed holder spent is not sent again"
    );
}

/// Another component's record under a session's key is a typed corruption wherever the
/// manager meets it (first load, re-read after the lease, save conflict), never a panic, and
/// the manager never writes over it with a refresh.
#[tokio::test(start_paused = true)]
async fn a_coordination_record_under_a_session_key_is_corrupt_not_a_session() {
    let corrupt = |result: Result<AccessToken, Error>| {
        let error = result.unwrap_err();
        assert!(
            matches!(&error, Error::Store(StoreError::Corrupt(m)) if m.contains("coordination")),
            "{error:?}"
        );
    };
    let record = StoredRecord::coordination(serde_json::json!({"state": "pending"}));
    let key = |session: &str| SessionKey::new("fake", session);

    // First load.
    let h = harness(|_| {});
    h.store.save(&key("loaded"), &record, None).await.unwrap();
    corrupt(h.manager.access_token("loaded").await);

    // The re-read after taking the lease.
    h.seed("reread", Duration::from_secs(1)).await;
    let seeded = h.stored("reread").await.unwrap().version;
    h.store
        .save(&key("reread"), &record, Some(seeded))
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(2)).await;
    corrupt(h.manager.access_token("reread").await);
    assert_eq!(
        h.calls(),
        0,
        "no refresh from a record that is not a session"
    );

    // A save that finds it in place of the set it refreshed.
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    h.seed("saved", Duration::from_secs(1)).await;
    tokio::time::advance(Duration::from_secs(2)).await;
    let refresh = {
        let manager = h.manager.clone();
        tokio::spawn(async move { manager.access_token("saved").await })
    };
    h.until_calls(1).await;
    let seeded = h.stored("saved").await.unwrap().version;
    h.store
        .save(&key("saved"), &record, Some(seeded))
        .await
        .unwrap();
    gate.add_permits(100);
    // The provider already rotated: the new token is served, as for any failed save.
    assert_eq!(refresh.await.unwrap().unwrap().expose_secret(), "at-1");
    // Only in memory, for good: `shutdown` says so.
    let shut = h.manager.shutdown(Duration::from_secs(600)).await;
    assert!(
        matches!(&shut, Err(Error::Unpersisted { sessions }) if sessions == &["saved"]),
        "{shut:?}"
    );
    assert_eq!(
        h.stored("saved").await.unwrap().value,
        record,
        "the coordination record is not overwritten"
    );
}

// --- Removes, unsaved sets, absent sessions, unrecorded verdicts ---

fn flaky_manager(h: &Harness) -> (TokenManager<Arc<Fake>>, Arc<Hooked<FlakyStore>>) {
    let store = Arc::new(Hooked::<FlakyStore>::default());
    (manager_over(h, store.clone()), store)
}

fn login(h: &Harness) -> TokenSet {
    TokenSet::new(AccessToken::new("at-login"))
        .with_refresh_token(RefreshToken::new("rt-login"))
        .with_access_expires_at(h.clock.now() + HOUR)
}

/// Holds every lease request at a gate while `hold` is set, and fails every save while
/// `failing` is.
struct HeldLeases {
    hold: std::sync::atomic::AtomicBool,
    waiting: AtomicU32,
    gate: Semaphore,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Hooks for HeldLeases {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        match call {
            Call::Acquire if self.hold.load(Ordering::SeqCst) => {
                self.waiting.fetch_add(1, Ordering::SeqCst);
                self.gate.acquire().await.unwrap().forget();
            }
            Call::Save if self.failing.load(Ordering::SeqCst) => return Err(disk_full()),
            _ => {}
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_login_inserted_as_a_refresh_takes_the_lease_is_refreshed_once_though_its_pair_is_unsaved()
 {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let store = Arc::new(Hooked::new(HeldLeases {
        hold: true.into(),
        waiting: AtomicU32::new(0),
        gate: Semaphore::new(0),
        failing: false.into(),
    }));
    let manager = manager_over(&h, store.clone());
    manager.insert("s", expired_pair(&h)).await.unwrap();
    let caller = tokio::spawn({
        let manager = manager.clone();
        async move { manager.access_token("s").await }
    });
    assert!(until(|| store.waiting.load(Ordering::SeqCst) > 0).await);
    // The user logs in while the refresh (of `rt-0`, in the generation before) asks for the
    // lease; the store then takes no save.
    let login = TokenSet::new(AccessToken::new("at-login"))
        .with_refresh_token(RefreshToken::new("rt-login"))
        .with_access_expires_at(h.clock.now());
    manager.insert("s", login).await.unwrap();
    *h.fake.live.lock().unwrap() = "rt-login".into();
    store.failing.store(true, Ordering::SeqCst);
    store.hold.store(false, Ordering::SeqCst);
    store.gate.add_permits(1);
    let answered = caller.await.unwrap().unwrap();
    assert_eq!(answered.expose_secret(), "at-1");
    // The new pair, unsaved, is kept (with the lease) and refreshed from: the login's token
    // is not presented again.
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-login"]);
    store.failing.store(false, Ordering::SeqCst);
    manager.shutdown(Duration::from_secs(60)).await.unwrap();
    let stored = store.inner.load(&SessionKey::new("fake", "s")).await;
    assert_eq!(refresh_of(&stored.unwrap().unwrap()), "rt-1");
}

/// Holds the next save at a gate once `hold_next` is set (and lets it through to the store
/// then); fails every other save while `failing` is set.
struct HeldSave {
    hold_next: std::sync::atomic::AtomicBool,
    held: AtomicU32,
    gate: Semaphore,
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Hooks for HeldSave {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        if call == Call::Save {
            if self.hold_next.swap(false, Ordering::SeqCst) {
                self.held.fetch_add(1, Ordering::SeqCst);
                self.gate.acquire().await.unwrap().forget();
                return Ok(());
            }
            if self.failing.load(Ordering::SeqCst) {
                return Err(disk_full());
            }
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_login_inserted_while_a_refresh_saves_its_unsaved_pair_is_refreshed_once() {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let store = Arc::new(Hooked::new(HeldSave {
        hold_next: false.into(),
        held: AtomicU32::new(0),
        gate: Semaphore::new(0),
        failing: false.into(),
    }));
    let manager = manager_over(&h, store.clone());
    manager.insert("s", expired_pair(&h)).await.unwrap();
    // A refresh whose new pair cannot be saved: kept in memory, unsaved.
    store.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    // The next refresh saves that pair first; the user logs in while that save is on its
    // way, and new pairs cannot be saved again.
    store.hold_next.store(true, Ordering::SeqCst);
    let caller = tokio::spawn({
        let manager = manager.clone();
        async move { manager.refresh_now("s").await }
    });
    assert!(until(|| store.held.load(Ordering::SeqCst) > 0).await);
    store.failing.store(false, Ordering::SeqCst);
    let login = TokenSet::new(AccessToken::new("at-login"))
        .with_refresh_token(RefreshToken::new("rt-login"))
        .with_access_expires_at(h.clock.now());
    manager.insert("s", login).await.unwrap();
    *h.fake.live.lock().unwrap() = "rt-login".into();
    store.failing.store(true, Ordering::SeqCst);
    store.gate.add_permits(1);
    let answered = caller.await.unwrap().unwrap();
    assert_eq!(answered.expose_secret(), "at-2");
    // The save found the login in the store: the refresh (of the generation before) gave
    // way, and the login was refreshed once, its unsaved pair kept.
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0", "rt-login"]);
    store.failing.store(false, Ordering::SeqCst);
    manager.shutdown(Duration::from_secs(60)).await.unwrap();
    let stored = store.inner.load(&SessionKey::new("fake", "s")).await;
    assert_eq!(refresh_of(&stored.unwrap().unwrap()), "rt-2");
}

#[tokio::test(start_paused = true)]
async fn a_remove_during_a_refresh_is_not_undone_by_it() {
    let (h, gate, refreshing) = held_refresh().await;
    h.manager.remove("s").await.unwrap();
    gate.add_permits(1);
    let answered = refreshing.await.unwrap();
    assert!(matches!(answered, Err(Error::NoTokens(_))), "{answered:?}");
    assert!(
        h.stored("s").await.is_none(),
        "the removed session stays removed"
    );
    assert!(matches!(
        h.manager.access_token("s").await,
        Err(Error::NoTokens(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_session_removed_by_another_manager_is_not_refreshed_back() {
    let h = harness(|_| {});
    h.seed("s", HOUR).await;
    let other = manager_over(&h, h.store.clone());
    assert_eq!(
        other.access_token("s").await.unwrap().expose_secret(),
        "at-0"
    );
    h.manager.remove("s").await.unwrap();
    tokio::time::advance(HOUR).await;
    assert!(matches!(
        other.access_token("s").await,
        Err(Error::NoTokens(_))
    ));
    assert_eq!(h.calls(), 0, "the removed session's token is not spent");
    assert!(h.stored("s").await.is_none());
}

#[tokio::test(start_paused = true)]
async fn a_session_absent_here_is_found_once_another_manager_inserts_it() {
    let h = harness(|_| {});
    let other = manager_over(&h, h.store.clone());
    assert!(matches!(
        other.access_token("s").await,
        Err(Error::NoTokens(_))
    ));
    h.manager.insert("s", login(&h)).await.unwrap();
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    assert_eq!(
        other.access_token("s").await.unwrap().expose_secret(),
        "at-login"
    );
}

#[tokio::test(start_paused = true)]
async fn a_set_whose_save_failed_is_saved_before_its_token_is_spent_again() {
    let h = harness(|_| {});
    let (manager, store) = flaky_manager(&h);
    manager.insert("s", expired_pair(&h)).await.unwrap();
    store.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    store.failing.store(false, Ordering::SeqCst);
    // Refreshed again at once (before the background save ran): at-1's pair is saved
    // first, then replaced by at-2's, and nothing drops the newest pair.
    assert_eq!(
        manager.refresh_now("s").await.unwrap().expose_secret(),
        "at-2"
    );
    manager.shutdown(Duration::from_secs(600)).await.unwrap();
    let stored = store
        .inner
        .load(&SessionKey::new("fake", "s"))
        .await
        .unwrap()
        .unwrap();
    let tokens = stored.value.tokens().unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "at-2");
    assert_eq!(
        tokens.refresh_token.as_ref().unwrap().expose_secret(),
        "rt-2"
    );
    assert_eq!(h.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn an_unsaved_set_gives_way_to_tokens_another_process_inserted() {
    let h = harness(|_| {});
    let (manager, store) = flaky_manager(&h);
    manager.insert("s", expired_pair(&h)).await.unwrap();
    store.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    // Another process inserts the user's new login in the store.
    let key = SessionKey::new("fake", "s");
    let found = store.inner.load(&key).await.unwrap().unwrap().version;
    store
        .inner
        .save(&key, &login(&h).to_stored().unwrap().into(), Some(found))
        .await
        .unwrap();
    store.failing.store(false, Ordering::SeqCst);
    manager.shutdown(Duration::from_secs(600)).await.unwrap();
    let stored = store
        .inner
        .load(&SessionKey::new("fake", "s"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.value.tokens().unwrap().access_token.expose_secret(),
        "at-login",
        "the background save does not overwrite the insert"
    );
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-login"
    );
}

/// What each save does, in order (then every save passes): pass, fail, or wait at `gate`
/// and then pass.
struct ScriptedSaves {
    script: StdMutex<VecDeque<SaveStep>>,
    held: AtomicU32,
    gate: Semaphore,
}

#[derive(Clone, Copy)]
enum SaveStep {
    Pass,
    Fail,
    Hold,
}

#[async_trait]
impl Hooks for ScriptedSaves {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        if call != Call::Save {
            return Ok(());
        }
        let step = self.script.lock().unwrap().pop_front();
        match step.unwrap_or(SaveStep::Pass) {
            SaveStep::Pass => Ok(()),
            SaveStep::Fail => Err(disk_full()),
            SaveStep::Hold => {
                self.held.fetch_add(1, Ordering::SeqCst);
                self.gate.acquire().await.unwrap().forget();
                Ok(())
            }
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_late_background_save_does_not_publish_its_old_pair_over_a_newer_one() {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let store = Arc::new(Hooked::new(ScriptedSaves {
        script: StdMutex::new(VecDeque::new()),
        held: AtomicU32::new(0),
        gate: Semaphore::new(0),
    }));
    let manager = manager_over(&h, store.clone());
    manager.insert("s", expired_pair(&h)).await.unwrap();
    // The refresh's save of at-1's pair fails (kept in memory, saved in the background);
    // the background save is then held on its way to the store; a forced refresh saves
    // at-1's pair itself, spends rt-1, and cannot save at-2's pair.
    store.script.lock().unwrap().extend([
        SaveStep::Fail,
        SaveStep::Hold,
        SaveStep::Pass,
        SaveStep::Fail,
    ]);
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    // The background save waits out its backoff (paused time): a minute at most.
    for _ in 0..600 {
        if store.held.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        store.held.load(Ordering::SeqCst) > 0,
        "the background save came"
    );
    assert_eq!(
        manager.refresh_now("s").await.unwrap().expose_secret(),
        "at-2"
    );
    // The held background save of at-1's pair reaches the store now, and finds it there.
    store.gate.add_permits(1);
    manager.shutdown(Duration::from_secs(600)).await.unwrap();
    let stored = store
        .inner
        .load(&SessionKey::new("fake", "s"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        refresh_of(&stored),
        "rt-2",
        "at-2's pair, whose refresh token is the live one, is saved, not dropped"
    );
    assert_eq!(*h.fake.presented.lock().unwrap(), ["rt-0", "rt-1"]);
}

#[tokio::test(start_paused = true)]
async fn a_verdict_that_could_not_be_recorded_does_not_revive_the_dead_token() {
    let mut h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let (manager, store) = flaky_manager(&h);
    let mut events = manager.subscribe();
    manager.insert("s", expired_pair(&h)).await.unwrap();
    h.fake.then(Step::Fail(invalid_grant()));
    store.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        manager.access_token("s").await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    for _ in 0..3 {
        tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
        assert_eq!(
            manager.access_token("s").await.unwrap_err().kind(),
            ErrorKind::ReauthRequired
        );
    }
    assert_eq!(h.calls(), 1, "the dead token is not sent again");
    let mut reauths = 0;
    while let Ok(event) = events.try_recv() {
        reauths += usize::from(matches!(event, Event::ReauthRequired(_)));
    }
    assert_eq!(reauths, 1);
    let _ = h.drain();
}

#[tokio::test(start_paused = true)]
async fn a_failing_provider_is_asked_once_per_cooldown_when_the_token_has_expired() {
    let h = harness(|_| {});
    h.seed("s", Duration::ZERO).await;
    let refused = EndpointError::from(ProviderError::new(
        ErrorKind::Rejected,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    ));
    for _ in 0..3 {
        h.fake.then(Step::Fail(refused.clone().into()));
    }
    for _ in 0..50 {
        assert_eq!(
            h.manager.access_token("s").await.unwrap_err().kind(),
            ErrorKind::Rejected
        );
    }
    assert_eq!(h.calls(), 1);
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    assert_eq!(
        h.manager.access_token("s").await.unwrap_err().kind(),
        ErrorKind::Rejected
    );
    assert_eq!(h.calls(), 2);
    // Callers that keep calling do not keep the remembered failure alive: it lapses, the
    // provider is asked again, and its answer (now a token) is served.
    for _ in 0..12 {
        tokio::time::advance(Duration::from_secs(1)).await;
        let _ = h.manager.access_token("s").await;
    }
    assert_eq!(h.calls(), 4);
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
}

#[tokio::test(start_paused = true)]
async fn a_lease_shorter_than_a_second_is_refused_at_build() {
    let h = harness(|_| {});
    let config = ManagerConfig {
        lease_ttl: Duration::from_millis(10),
        ..ManagerConfig::default()
    };
    let built = TokenManager::builder(h.fake.clone())
        .client(NoTransport)
        .config(config)
        .build();
    assert!(matches!(built, Err(Error::Config(_))));
}

#[tokio::test(start_paused = true)]
async fn a_provider_call_that_never_answers_ends_at_the_call_timeout() {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    h.seed("s", Duration::ZERO).await;
    h.fake.then(Step::Hang);
    let started = tokio::time::Instant::now();
    let error = h.manager.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown, "{error:?}");
    assert_eq!(started.elapsed(), ManagerConfig::default().call_timeout);
    assert_eq!(
        h.calls(),
        1,
        "a lost answer is not retried outside the reuse window"
    );
}

#[tokio::test(start_paused = true)]
async fn a_session_started_from_a_refresh_token_alone_serves_a_real_token_at_once() {
    let h = harness(|_| {});
    let first = h
        .manager
        .insert_refresh_token("s", RefreshToken::new("rt-0"))
        .await
        .unwrap();
    assert_eq!(first.expose_secret(), "at-1");
    assert_eq!(h.manager.access_token("s").await.unwrap(), first);
    assert_eq!(h.calls(), 1);
    // A refresh token the provider refuses is known at once.
    h.fake.then(Step::Fail(invalid_grant()));
    let refused = h
        .manager
        .insert_refresh_token("t", RefreshToken::new("rt-unknown"))
        .await
        .unwrap_err();
    assert_eq!(refused.kind(), ErrorKind::ReauthRequired);
}

/// A `MemoryStore` whose lease release waits for a permit: a refresh that has published its
/// result is still in its flight slot meanwhile.
struct SlowRelease {
    gate: Semaphore,
}

#[async_trait]
impl Hooks for SlowRelease {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        if call == Call::Release {
            drop(self.gate.acquire().await.unwrap());
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_refusal_of_the_token_a_running_refresh_just_produced_gets_a_refresh_of_its_own() {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::new(SlowRelease {
        gate: Semaphore::new(0),
    }));
    let manager = manager_over(&h, store.clone());
    manager
        .insert(
            "s",
            TokenSet::new(AccessToken::new("at-0"))
                .with_refresh_token(RefreshToken::new("rt-0"))
                .with_access_expires_at(h.clock.now() + Duration::from_secs(30)),
        )
        .await
        .unwrap();
    // Near expiry: a proactive refresh runs in the background and publishes at-1, but is
    // still releasing its lease.
    tokio::time::advance(Duration::from_secs(20)).await;
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-0"
    );
    let mut fresh = None;
    for _ in 0..1000 {
        let token = manager.access_token("s").await.unwrap();
        if token.expose_secret() == "at-1" {
            fresh = Some(token);
            break;
        }
        tokio::task::yield_now().await;
    }
    let fresh = fresh.expect("the proactive refresh published at-1");
    assert_eq!(h.calls(), 1);
    // The API refuses at-1 while that refresh is still in its slot.
    let rejecting = {
        let manager = manager.clone();
        let fresh = fresh.clone();
        tokio::spawn(async move { manager.refresh_rejected("s", &fresh).await })
    };
    tokio::task::yield_now().await;
    store.gate.add_permits(10);
    let answer = rejecting.await.unwrap().unwrap();
    assert_ne!(answer, fresh, "not the refused token back");
    assert_eq!(h.calls(), 2);
}

#[tokio::test(start_paused = true)]
async fn a_herd_of_10000_with_half_cancelled_mid_refresh_gets_one_refresh_and_one_token() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    h.seed("s", Duration::from_secs(1)).await;
    tokio::time::advance(Duration::from_secs(2)).await;
    let callers: Vec<_> = (0..10_000)
        .map(|_| {
            let manager = h.manager.clone();
            tokio::spawn(async move { manager.access_token("s").await })
        })
        .collect();
    // The refresh is in the provider: cancel every other caller, then let it answer.
    h.until_calls(1).await;
    for caller in callers.iter().step_by(2) {
        caller.abort();
    }
    gate.add_permits(1);
    let mut answered = 0;
    for (i, caller) in callers.into_iter().enumerate() {
        match caller.await {
            Ok(token) => {
                assert_eq!(token.unwrap().expose_secret(), "at-1");
                answered += 1;
            }
            Err(e) => assert!(e.is_cancelled() && i % 2 == 0, "caller {i}: {e}"),
        }
    }
    assert!(answered >= 5_000, "{answered} answered");
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(h.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn the_fast_path_goes_stale_exactly_at_the_refresh_instant_of_a_test_clock() {
    let start = datetime!(2026-01-01 00:00 UTC);
    let clock = ManualClock::new(start);
    let manager = TokenManager::builder(Arc::new(Fake::new(Arc::new(clock.clone()))))
        .client(NoTransport)
        .clock(Arc::new(clock.clone()))
        .config(ManagerConfig::default().with_refresh_skew(Duration::from_secs(60), Duration::ZERO))
        .build()
        .unwrap();
    let set = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(start + Duration::from_secs(600));
    manager.insert("s", set).await.unwrap();
    let handle = manager.session("s");
    // Refresh instant: 600 s - 60 s of skew.
    clock.set(start + Duration::from_secs(540) - time::Duration::nanoseconds(1));
    assert!(manager.fresh_token("s").is_some());
    assert!(handle.fresh_token().is_some());
    clock.set(start + Duration::from_secs(540));
    assert!(manager.fresh_token("s").is_none());
    assert!(handle.fresh_token().is_none());
    // A clock stepped back makes it fresh again, as the exact check would.
    clock.set(start);
    assert!(manager.fresh_token("s").is_some());
}

#[tokio::test(start_paused = true)]
async fn a_session_handle_has_the_by_name_calls_semantics() {
    let h = harness(|_| {});
    h.seed("s", Duration::from_secs(300)).await;
    let handle = h.manager.session("s");
    assert_eq!(handle.name(), "s");
    assert!(!format!("{handle:?}").contains("at-0"));
    assert_eq!(handle.access_token().await.unwrap().expose_secret(), "at-0");
    assert_eq!(h.calls(), 0);
    // Expired: one refresh, shared with the by-name callers.
    tokio::time::advance(Duration::from_secs(301)).await;
    let (a, b) = tokio::join!(handle.access_token(), h.manager.access_token("s"));
    assert_eq!(a.unwrap().expose_secret(), "at-1");
    assert_eq!(b.unwrap().expose_secret(), "at-1");
    assert_eq!(h.calls(), 1);
    // A new generation from `insert` is seen by the handle.
    let inserted = TokenSet::new(AccessToken::new("at-inserted"))
        .with_refresh_token(RefreshToken::new("rt-inserted"))
        .with_access_expires_at(h.clock.now() + HOUR);
    h.manager.insert("s", inserted.clone()).await.unwrap();
    assert_eq!(
        handle.access_token().await.unwrap().expose_secret(),
        "at-inserted"
    );
    // Removed: the handle errors like the by-name call.
    h.manager.remove("s").await.unwrap();
    let by_handle = handle.access_token().await.unwrap_err();
    let by_name = h.manager.access_token("s").await.unwrap_err();
    assert_eq!(by_handle.kind(), by_name.kind());
    assert!(matches!(by_handle, Error::NoTokens(_)), "{by_handle:?}");
    // Inserted again: the handle still reads it, from its fast path (a session held by a
    // handle stays in the map when removed, so the handle does not fall to the by-name
    // path for good).
    h.manager.insert("s", inserted).await.unwrap();
    assert_eq!(
        handle.fresh_token().map(|t| t.expose_secret().to_owned()),
        Some("at-inserted".to_owned())
    );
    assert_eq!(
        handle.access_token().await.unwrap().expose_secret(),
        "at-inserted"
    );
    assert_eq!(
        h.manager
            .session("s")
            .access_token()
            .await
            .unwrap()
            .expose_secret(),
        "at-inserted"
    );
    assert_eq!(h.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_removed_session_nobody_holds_leaves_the_map() {
    let h = harness(|_| {});
    h.seed("s", Duration::from_secs(300)).await;
    h.manager.remove("s").await.unwrap();
    assert!(h.manager.inner.sessions.pin().get("s").is_none());
    // Held by a handle: kept (absent), and the handle's session is the map's again.
    h.seed("t", Duration::from_secs(300)).await;
    let handle = h.manager.session("t");
    h.manager.remove("t").await.unwrap();
    assert!(h.manager.inner.sessions.pin().get("t").is_some());
    assert!(handle.fresh_token().is_none(), "removed");
    drop(handle);
    h.manager.remove("t").await.unwrap();
    assert!(h.manager.inner.sessions.pin().get("t").is_none());
}

// --- Panics and leases, placeholders, clocks stepped back ---

#[tokio::test(start_paused = true)]
async fn a_panicking_refresh_gives_its_lease_back() {
    let h = harness(|_| {});
    h.seed("s", Duration::ZERO).await;
    h.fake.then(Step::Panic);
    let error = h.manager.access_token("s").await.unwrap_err();
    assert!(
        matches!(error, Error::RefreshAborted(AbortReason::Panicked)),
        "{error:?}"
    );
    let key = SessionKey::new("fake", "s");
    let ttl = ManagerConfig::default().lease_ttl;
    assert_eq!(
        h.store.acquire_lease(&key, "another", ttl).await.unwrap(),
        Lease::Acquired,
        "the lease of the refresh that panicked is released"
    );
    h.store.release_lease(&key, "another").await.unwrap();
    // And the refreshes after it (once the failure is no longer answered again) give theirs
    // back too.
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(
        h.store.acquire_lease(&key, "another", ttl).await.unwrap(),
        Lease::Acquired,
        "the lease of the next refresh is released"
    );
}

#[tokio::test(start_paused = true)]
async fn a_refresh_token_inserted_during_a_refresh_is_refreshed_not_answered_with_no_token() {
    let (h, gate, refreshing) = held_refresh().await;
    // A login hands over a refresh token while that refresh is at the provider (the token
    // it spends, rt-0, is still inside the provider's reuse window afterwards).
    let manager = h.manager.clone();
    let started = tokio::spawn(async move {
        manager
            .insert_refresh_token("s", RefreshToken::new("rt-0"))
            .await
    });
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(10);
    let refreshed = refreshing.await.unwrap().unwrap();
    assert_eq!(
        refreshed.expose_secret(),
        "at-1",
        "nor to the refresh it overtook"
    );
    let first = started.await.unwrap().unwrap();
    assert!(
        !first.expose_secret().is_empty(),
        "the placeholder of the inserted refresh token is never handed out"
    );
    assert_eq!(first.expose_secret(), "at-1");
    assert_eq!(h.calls(), 2, "the inserted refresh token was sent");
}

/// Two managers over one store, on a clock the test sets (and steps back).
fn managers_on_a_manual_clock() -> (ManualClock, Arc<Fake>, [TokenManager<Arc<Fake>>; 2]) {
    let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
    let fake = Arc::new(Fake::new(Arc::new(clock.clone())));
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let manager = || {
        TokenManager::builder(fake.clone())
            .shared_store(store.clone())
            .client(NoTransport)
            .clock(Arc::new(clock.clone()))
            .config(ManagerConfig::default().with_retry(RetryPolicy::never()))
            .build()
            .unwrap()
    };
    (clock.clone(), fake.clone(), [manager(), manager()])
}

/// `at-0`/`rt-0`, the access token expiring at `at`.
fn pair_0(at: OffsetDateTime) -> TokenSet {
    TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(at)
}

/// `one` (another process) inserts session `s` (`at-login`, fresh for two hours on the
/// clock as it reads now).
async fn login_through(one: &TokenManager<Arc<Fake>>, clock: &ManualClock) {
    let login = TokenSet::new(AccessToken::new("at-login"))
        .with_refresh_token(RefreshToken::new("rt-login"))
        .with_access_expires_at(clock.now() + HOUR * 2);
    one.insert("s", login).await.unwrap();
}

/// `other` answers the login: it looked at the store again (`why`).
async fn finds_the_login(other: &TokenManager<Arc<Fake>>, why: &str) {
    let answer = other.access_token("s").await;
    let answer = answer.map(|token| token.expose_secret().to_owned());
    assert_eq!(format!("{answer:?}"), r#"Ok("at-login")"#, "{why}");
}

/// `one` inserts `s` with its access token expiring now, and the provider will refuse its
/// refresh token: the next refresh declares `s` dead.
async fn refused_at_the_next_refresh(
    clock: &ManualClock,
    fake: &Fake,
    one: &TokenManager<Arc<Fake>>,
) {
    one.insert("s", pair_0(clock.now())).await.unwrap();
    fake.then(Step::Fail(invalid_grant()));
}

/// The clock is stepped back an hour; then `one` (another process) inserts session `s`:
/// `other` finds it once its cooldown has passed, not an hour later.
async fn login_after_a_step_back(
    clock: &ManualClock,
    one: &TokenManager<Arc<Fake>>,
    other: &TokenManager<Arc<Fake>>,
) {
    clock.advance(-time::Duration::hours(1));
    login_through(one, clock).await;
    clock.advance(time::Duration::seconds(5));
    finds_the_login(
        other,
        "looked up again after the cooldown, not an hour later",
    )
    .await;
}

#[tokio::test(start_paused = true)]
async fn a_clock_stepped_back_does_not_keep_an_inserted_session_absent() {
    let (clock, _fake, [one, other]) = managers_on_a_manual_clock();
    assert!(matches!(
        other.access_token("s").await,
        Err(Error::NoTokens(_))
    ));
    login_after_a_step_back(&clock, &one, &other).await;
}

#[tokio::test(start_paused = true)]
async fn a_clock_stepped_back_does_not_keep_a_session_dead_after_a_new_login() {
    let (clock, fake, [one, other]) = managers_on_a_manual_clock();
    refused_at_the_next_refresh(&clock, &fake, &one).await;
    assert_eq!(
        other.access_token("s").await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    login_after_a_step_back(&clock, &one, &other).await;
}

/// The clock is stepped back a minute, then `one` (another process) inserts session `s`,
/// and 63 s pass (on the monotonic clock too): `other`'s clock reads 3 s after its look at
/// the store, within the cooldown, though that look is 63 s old. It finds the login all
/// the same: a step back shorter than the time since (NTP's usual) stretches no look.
/// (Three-process model seeds 664 and 2577: a process answered `NoTokens` minutes after
/// another's login.)
async fn login_after_a_short_step_back(
    clock: &ManualClock,
    one: &TokenManager<Arc<Fake>>,
    other: &TokenManager<Arc<Fake>>,
) {
    clock.advance(-time::Duration::minutes(1));
    login_through(one, clock).await;
    tokio::time::advance(Duration::from_secs(63)).await;
    clock.advance(time::Duration::seconds(63));
    let why = "looked up again once the cooldown has passed, not a minute after it";
    finds_the_login(other, why).await;
}

#[tokio::test(start_paused = true)]
async fn a_clock_stepped_back_less_than_the_time_since_does_not_keep_an_inserted_session_absent() {
    let (clock, _fake, [one, other]) = managers_on_a_manual_clock();
    assert!(matches!(
        other.access_token("s").await,
        Err(Error::NoTokens(_))
    ));
    login_after_a_short_step_back(&clock, &one, &other).await;
}

/// As above, the session held by a handle (its state kept in the map, `Absent`).
#[tokio::test(start_paused = true)]
async fn a_clock_stepped_back_less_than_the_time_since_does_not_keep_a_held_session_absent() {
    let (clock, _fake, [one, other]) = managers_on_a_manual_clock();
    let handle = other.session("s");
    assert!(matches!(
        handle.access_token().await,
        Err(Error::NoTokens(_))
    ));
    login_after_a_short_step_back(&clock, &one, &other).await;
    assert_eq!(
        handle.access_token().await.unwrap().expose_secret(),
        "at-login"
    );
}

#[tokio::test(start_paused = true)]
async fn a_clock_stepped_back_less_than_the_time_since_does_not_keep_a_session_dead() {
    let (clock, fake, [one, other]) = managers_on_a_manual_clock();
    let handle = other.session("s");
    refused_at_the_next_refresh(&clock, &fake, &one).await;
    assert_eq!(
        handle.access_token().await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    login_after_a_short_step_back(&clock, &one, &other).await;
}

/// A refresh failed (the provider's code panicked); the clock is stepped back a minute and
/// 63 s pass (on the monotonic clock too): the failure, remembered for the 5 s cooldown, is
/// not answered again (three-process model seed 582: a panic remembered at a clock's 1:10:29
/// was answered seven minutes later, after a refresh that succeeded, once a step back of
/// 550 s brought the clock to 1:10:33).
#[tokio::test(start_paused = true)]
async fn a_clock_stepped_back_less_than_the_time_since_does_not_bring_back_a_failure() {
    let (clock, fake, [manager, _]) = managers_on_a_manual_clock();
    manager
        .insert("s", pair_0(clock.now() + HOUR))
        .await
        .unwrap();
    fake.then(Step::Panic);
    assert!(manager.refresh_now("s").await.is_err());
    clock.advance(-time::Duration::minutes(1));
    tokio::time::advance(Duration::from_secs(63)).await;
    clock.advance(time::Duration::seconds(63));
    assert_eq!(
        format!(
            "{:?}",
            manager
                .refresh_now("s")
                .await
                .map(|t| t.expose_secret().to_owned())
        ),
        r#"Ok("at-1")"#,
        "the provider is asked again: the failure is 63 s old"
    );
}

#[tokio::test(start_paused = true)]
async fn a_clock_stepped_back_does_not_stretch_a_remembered_failure() {
    let (clock, fake, [manager, _]) = managers_on_a_manual_clock();
    manager
        .insert("s", pair_0(clock.now() - HOUR * 2))
        .await
        .unwrap();
    let refused = EndpointError::from(ProviderError::new(
        ErrorKind::Rejected,
        StatusCode::BAD_REQUEST,
        "invalid_request",
    ));
    fake.then(Step::Fail(refused.into()));
    assert_eq!(
        manager.access_token("s").await.unwrap_err().kind(),
        ErrorKind::Rejected
    );
    clock.advance(-time::Duration::hours(1));
    clock.advance(time::Duration::seconds(5));
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1",
        "the provider is asked again after the cooldown, not an hour later"
    );
    assert_eq!(fake.calls.load(Ordering::SeqCst), 2);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_reported_for_another_token_is_not_answered_with_an_expired_one() {
    let h = harness(|_| {});
    h.seed("s", Duration::from_secs(600)).await;
    let first = h.manager.access_token("s").await.unwrap();
    // A token of another replica's (or one long replaced) is refused after the session's
    // own token has expired, with no caller asking for it meanwhile.
    tokio::time::advance(HOUR).await;
    let retry_with = h
        .manager
        .refresh_rejected("s", &AccessToken::new("at-elsewhere"))
        .await
        .unwrap();
    assert_ne!(retry_with, first, "not the expired token");
    assert_eq!(retry_with.expose_secret(), "at-1");
    assert_eq!(h.calls(), 1);
}

#[tokio::test(start_paused = true)]
async fn a_refresh_of_a_removed_session_does_not_release_the_lease_of_its_successor() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    h.seed("s", Duration::ZERO).await;
    // The old refresh is answered, the new one is not.
    h.fake.then(Step::AnswerExpired).then(Step::Hang);
    let manager = h.manager.clone();
    let old = tokio::spawn(async move { manager.access_token("s").await });
    h.until_calls(1).await;
    // Logged out and in again while that refresh is at the provider; the new session's
    // token needs a refresh too.
    h.manager.remove("s").await.unwrap();
    let mut again = login(&h);
    again.access_expires_at = Some(h.clock.now());
    h.manager.insert("s", again).await.unwrap();
    let manager = h.manager.clone();
    let new = tokio::spawn(async move { manager.access_token("s").await });
    h.until_calls(2).await;
    // The old refresh ends (its caller goes on to the new session's refresh); the new one
    // is still at the provider.
    gate.add_permits(2);
    let users = h.manager.inner.lease_users.lock().unwrap()["s"].clone();
    until(|| users.order.try_lock().is_ok() && users.count.load(Ordering::SeqCst) == 1).await;
    assert_eq!(
        users.count.load(Ordering::SeqCst),
        1,
        "the new refresh's use of the lease"
    );
    let key = SessionKey::new("fake", "s");
    assert!(
        matches!(
            h.store
                .acquire_lease(&key, "another process", Duration::from_secs(30))
                .await
                .unwrap(),
            Lease::HeldByOther { .. }
        ),
        "the lease of the refresh still running is kept"
    );
    new.abort();
    old.abort();
}

#[tokio::test(start_paused = true)]
async fn a_lease_that_never_lapses_neither_panics_nor_wedges_the_session() {
    let h = harness(|_| {});
    let manager = TokenManager::builder(h.fake.clone())
        .shared_store(h.store.clone())
        .client(NoTransport)
        .clock(Arc::new(h.clock))
        .config(ManagerConfig::default().with_lease_ttl(Duration::MAX))
        .build()
        .unwrap();
    manager.insert("s", expired_pair(&h)).await.unwrap();
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
}

/// `s`'s access token expired, and the provider answers its refresh with a 503 asking to
/// wait 120 s.
async fn a_retry_after_of_two_minutes(
    clock: &ManualClock,
    fake: &Fake,
    manager: &TokenManager<Arc<Fake>>,
) {
    manager
        .insert("s", pair_0(clock.now() - HOUR * 2))
        .await
        .unwrap();
    fake.then(Step::Fail(unavailable(Some(Duration::from_secs(120)))));
    assert_eq!(
        manager.access_token("s").await.unwrap_err().kind(),
        ErrorKind::Transient
    );
}

#[tokio::test(start_paused = true)]
async fn a_clock_stepped_back_does_not_stretch_a_retry_after() {
    let (clock, fake, [manager, _]) = managers_on_a_manual_clock();
    a_retry_after_of_two_minutes(&clock, &fake, &manager).await;
    clock.advance(-time::Duration::hours(1));
    let Err(Error::CoolingDown { remaining }) = manager.access_token("s").await else {
        panic!("cooling down")
    };
    assert!(remaining <= Duration::from_secs(120), "{remaining:?}");
    clock.advance(time::Duration::seconds(121));
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1",
        "the provider is asked again after its Retry-After, not an hour later"
    );
}

/// A `Retry-After` of 120 s; 100 s later (on both clocks) the clock is stepped back 60 s,
/// less than the time since: the wait is not stretched by the step, and the provider is
/// asked again 21 s later, not a minute after that.
#[tokio::test(start_paused = true)]
async fn a_clock_stepped_back_less_than_the_time_since_does_not_stretch_a_retry_after() {
    let (clock, fake, [manager, _]) = managers_on_a_manual_clock();
    a_retry_after_of_two_minutes(&clock, &fake, &manager).await;
    let both = |by: i64| {
        clock.advance(time::Duration::seconds(by));
        tokio::time::advance(Duration::from_secs(by.unsigned_abs()))
    };
    both(100).await;
    clock.advance(-time::Duration::seconds(60));
    let Err(Error::CoolingDown { remaining }) = manager.access_token("s").await else {
        panic!("cooling down")
    };
    assert!(remaining <= Duration::from_secs(20), "{remaining:?}");
    both(21).await;
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1",
        "the provider is asked again after its Retry-After, not a minute later"
    );
}

#[tokio::test(start_paused = true)]
async fn a_valid_access_token_without_a_refresh_token_is_served_until_it_expires() {
    let mut h = harness(|_| {});
    // Tokens handed over without a refresh token; 10 s from expiry, inside the skew.
    h.manager
        .insert(
            "s",
            TokenSet::new(AccessToken::new("at-only"))
                .with_access_expires_at(h.clock.now() + Duration::from_secs(30)),
        )
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(20)).await;
    for _ in 0..20 {
        assert_eq!(
            h.manager.access_token("s").await.unwrap().expose_secret(),
            "at-only",
            "still valid: served, not declared dead ahead of its expiry"
        );
        tokio::task::yield_now().await;
    }
    assert!(
        h.stored_tokens("s").await.is_some(),
        "no verdict in the store"
    );
    assert!(
        !h.drain()
            .iter()
            .any(|e| matches!(e, Event::ReauthRequired(_)))
    );
    // Once expired, nothing can renew it: re-auth.
    tokio::time::advance(Duration::from_secs(11)).await;
    assert_eq!(
        h.manager.access_token("s").await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    assert_eq!(h.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_remove_during_a_first_issue_is_not_undone_by_it() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| {
        fake.can_issue = true;
        fake.gate = Some(gate.clone());
    });
    let manager = h.manager.clone();
    let issuing = tokio::spawn(async move { manager.access_token("s").await });
    for _ in 0..100 {
        if h.fake.issues.load(Ordering::SeqCst) == 1 {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(h.fake.issues.load(Ordering::SeqCst), 1);
    h.manager.remove("s").await.unwrap();
    gate.add_permits(1);
    let answered = issuing.await.unwrap();
    assert!(matches!(answered, Err(Error::NoTokens(_))), "{answered:?}");
    assert!(
        h.stored("s").await.is_none(),
        "the removed session stays removed from the store"
    );
}

#[tokio::test(start_paused = true)]
async fn an_insert_during_a_refresh_that_panics_is_not_answered_with_the_panic() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    h.seed("s", Duration::ZERO).await;
    h.fake.then(Step::Panic);
    let manager = h.manager.clone();
    let refreshing = tokio::spawn(async move { manager.refresh_now("s").await });
    h.until_calls(1).await;
    // The user logs in again while the refresh is at the provider.
    let inserted = TokenSet::new(AccessToken::new("at-login"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(h.clock.now() + HOUR);
    h.manager.insert("s", inserted).await.unwrap();
    gate.add_permits(10);
    // The panic was the replaced tokens' refresh: its callers get the inserted set, as
    // when that refresh succeeds or is refused.
    let answered = refreshing.await.unwrap().unwrap();
    assert_eq!(answered.expose_secret(), "at-login");
    // The insert ended what the refresh of the replaced tokens remembers: a refresh of the
    // inserted set calls the provider, not answered with the panic for failure_cooldown.
    let refreshed = h.manager.refresh_now("s").await.unwrap();
    assert_eq!(refreshed.expose_secret(), "at-1");
    assert_eq!(h.calls(), 2);
}

// --- Answers lost after the rotation ---

/// Loses the answer after the provider rotated `rt-0`, then answers 503 until the refresh
/// gives up: the stored `rt-0` is spent, and only the reuse window still turns it into the
/// pair the provider rotated to.
async fn lose_the_rotated_pair(h: &Harness) {
    h.seed("s", Duration::ZERO).await;
    lose_the_answer_to_rt_0(h, &h.manager).await;
    let stored = h.stored_tokens("s").await.unwrap().value;
    assert_eq!(stored.refresh_token.unwrap().expose_secret(), "rt-0");
}

/// `manager`'s refresh of session `s` (holding an expired `rt-0`) loses its answer after
/// the provider rotated to `rt-1`, then is answered 503 until it gives up.
async fn lose_the_answer_to_rt_0(h: &Harness, manager: &TokenManager<Arc<Fake>>) {
    h.fake.then(Step::LoseAfterRotate);
    for _ in 0..10 {
        h.fake.then(Step::Fail(unavailable(None)));
    }
    assert!(manager.access_token("s").await.is_err());
    assert_eq!(*h.fake.live.lock().unwrap(), "rt-1");
    h.fake.script.lock().unwrap().clear();
}

#[tokio::test(start_paused = true)]
async fn a_pair_lost_in_transit_is_fetched_inside_the_reuse_window_without_a_caller() {
    let h = harness(|_| {});
    lose_the_rotated_pair(&h).await;
    // Nobody calls until the window (300 s) is over: the manager asks again before that.
    tokio::time::sleep(h.fake.reuse_window).await;
    let stored = h.stored_tokens("s").await.unwrap().value;
    assert_eq!(
        stored.refresh_token.unwrap().expose_secret(),
        "rt-1",
        "the rotated pair is kept"
    );
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    let calls = h.calls();
    tokio::time::sleep(h.fake.reuse_window).await;
    assert_eq!(h.calls(), calls, "and then no more calls");
}

/// A 5xx answered after the provider rotated (a 504 from a gateway whose upstream answered
/// too late, a 500 after the commit) loses the pair as an answer lost in transit does: the
/// refresh gives up after more 503s, and nobody calls until the reuse window is over. The
/// manager asks again inside the window, as for a lost answer; otherwise the next caller
/// presents the spent refresh token after the window and the session is declared dead.
#[tokio::test(start_paused = true)]
async fn a_pair_lost_behind_a_gateway_timeout_is_fetched_inside_the_reuse_window() {
    for status in [
        StatusCode::GATEWAY_TIMEOUT,
        StatusCode::INTERNAL_SERVER_ERROR,
    ] {
        let h = harness(|_| {});
        h.seed("s", Duration::ZERO).await;
        let failure = EndpointError::from(ProviderError::new(
            ErrorKind::Transient,
            status,
            status.as_str(),
        ));
        h.fake.then(Step::FailAfterRotate(failure.into()));
        for _ in 0..10 {
            h.fake.then(Step::Fail(unavailable(None)));
        }
        assert!(h.manager.access_token("s").await.is_err());
        assert_eq!(*h.fake.live.lock().unwrap(), "rt-1");
        h.fake.script.lock().unwrap().clear();
        tokio::time::sleep(h.fake.reuse_window).await;
        let answered = h.manager.access_token("s").await;
        assert_eq!(
            answered.as_ref().ok().map(AccessToken::expose_secret),
            Some("at-1"),
            "after a {status}: {answered:?}"
        );
        let stored = h.stored_tokens("s").await.unwrap().value;
        assert_eq!(stored.refresh_token.unwrap().expose_secret(), "rt-1");
    }
}

#[tokio::test(start_paused = true)]
async fn a_pair_lost_in_transit_that_a_caller_fetches_is_not_asked_for_again() {
    let h = harness(|_| {});
    lose_the_rotated_pair(&h).await;
    tokio::time::sleep(ManagerConfig::default().failure_cooldown).await;
    let calls = h.calls();
    h.manager.refresh_now("s").await.unwrap();
    tokio::time::sleep(h.fake.reuse_window).await;
    assert_eq!(h.calls(), calls + 1);
}

#[tokio::test(start_paused = true)]
async fn shutdown_does_not_wait_for_the_window_of_a_pair_lost_in_transit() {
    let h = harness(|_| {});
    lose_the_rotated_pair(&h).await;
    let started = tokio::time::Instant::now();
    h.manager.shutdown(Duration::from_secs(600)).await.unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );
}

// --- A lease that lapsed because its holder lost the store ---

/// Every call fails while `cut` is set: this process has lost the store (others have not).
#[derive(Default)]
struct CutOff {
    cut: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Hooks for CutOff {
    async fn before(&self, _: Call) -> Result<(), StoreError> {
        if self.cut.load(Ordering::SeqCst) {
            return Err(StoreError::Backend {
                message: "the store is unreachable from here".into(),
                source: None,
            });
        }
        Ok(())
    }
}

/// A shared store as one process reaches it, through a way that can be cut off.
type CutOffStore = Hooked<CutOff, Arc<MemoryStore>>;

/// A provider without a reuse window (a refresh token presented twice is refused) whose
/// answers wait at the gate returned, a store shared by two processes, and A's way to it,
/// which `cut` cuts off.
fn a_store_to_cut_off() -> (Harness, Arc<Semaphore>, Arc<MemoryStore>, Arc<CutOffStore>) {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| {
        fake.gate = Some(gate.clone());
        fake.reuse_window = Duration::ZERO;
    });
    let shared = Arc::new(MemoryStore::new());
    let store_a = Arc::new(Hooked::over(shared.clone(), CutOff::default()));
    (h, gate, shared, store_a)
}

/// A provider that does not answer within `call_timeout` is reported with the timeout as
/// set, sub-second part included: "within 0 s" for half a second said nothing.
#[tokio::test(start_paused = true)]
async fn a_call_timeout_is_reported_as_set() {
    let h = harness(|_| {});
    let manager = builder_of(&h, h.fake.clone(), h.store.clone())
        .config(
            ManagerConfig::default()
                .with_retry(RetryPolicy::never())
                .with_call_timeout(Duration::from_millis(1500)),
        )
        .build()
        .unwrap();
    manager.insert("s", expired_pair(&h)).await.unwrap();
    h.fake.then(Step::Hang);
    let error = manager.refresh_now("s").await.unwrap_err();
    assert!(error.to_string().contains("within 1.5s"), "{error}");
}

#[tokio::test(start_paused = true)]
async fn a_refusal_after_taking_over_from_a_holder_that_lost_the_store_waits_for_its_save() {
    let (h, gate, shared, store_a) = a_store_to_cut_off();
    // A provider slower than two lease lengths: A's call outlives its lease.
    let process = |store: Arc<dyn TokenStore>| {
        TokenManager::builder(h.fake.clone())
            .shared_store(store)
            .client(NoTransport)
            .clock(Arc::new(h.clock))
            .config(
                ManagerConfig::default()
                    .with_retry(RetryPolicy::never())
                    .with_call_timeout(Duration::from_secs(600)),
            )
            .build()
            .unwrap()
    };
    let (a, b) = (process(store_a.clone()), process(shared.clone()));
    let mut events = b.subscribe();
    b.insert("s", expired_pair(&h)).await.unwrap();
    // A takes the lease and sends rt-0; then it loses the store, and its lease lapses.
    let first = tokio::spawn({
        let a = a.clone();
        async move { a.access_token("s").await }
    });
    h.until_calls(1).await;
    store_a.cut.store(true, Ordering::SeqCst);
    let lease = ManagerConfig::default().lease_ttl;
    tokio::time::sleep(lease * 2).await;
    // B takes the lapsed lease over, waits a lease length for a save, and sends rt-0 too.
    let second = tokio::spawn({
        let b = b.clone();
        async move { b.access_token("s").await }
    });
    for _ in 0..120 {
        if h.calls() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    assert_eq!(h.calls(), 2, "B sent rt-0 after a lease length");
    // The provider answers A (rt-0 -> rt-1), which cannot save; then refuses B's rt-0.
    gate.add_permits(1);
    assert_eq!(first.await.unwrap().unwrap().expose_secret(), "at-1");
    gate.add_permits(1);
    tokio::time::sleep(Duration::from_secs(1)).await;
    // A reaches the store again and saves its pair: B takes it, with no re-auth declared.
    store_a.cut.store(false, Ordering::SeqCst);
    assert_eq!(second.await.unwrap().unwrap().expose_secret(), "at-1");
    while let Ok(event) = events.try_recv() {
        assert!(!matches!(event, Event::ReauthRequired(_)), "{event:?}");
    }
    let stored = shared
        .load(&SessionKey::new("fake", "s"))
        .await
        .unwrap()
        .unwrap();
    let tokens = stored.value.into_tokens().unwrap();
    assert_eq!(tokens.refresh_token.unwrap().expose_secret(), "rt-1");
}

#[tokio::test(start_paused = true)]
async fn a_dead_token_after_taking_over_a_lapsed_lease_is_declared_a_lease_length_later() {
    let h = harness(|fake| fake.reuse_window = Duration::ZERO);
    let shared = Arc::new(MemoryStore::new());
    let b = manager_over(&h, shared.clone());
    let mut events = b.subscribe();
    b.insert("s", expired_pair(&h)).await.unwrap();
    // A holder that died with the lease; the provider has revoked rt-0 meanwhile.
    let lease = ManagerConfig::default().lease_ttl;
    let key = SessionKey::new("fake", "s");
    shared.acquire_lease(&key, "gone", lease).await.unwrap();
    *h.fake.live.lock().unwrap() = "rt-revoked".into();
    tokio::time::sleep(lease).await;
    let started = tokio::time::Instant::now();
    let error = b.access_token("s").await.unwrap_err();
    assert!(matches!(error, Error::ReauthRequired(_)), "{error:?}");
    assert!(started.elapsed() >= lease * 2, "{:?}", started.elapsed());
    assert_eq!(h.calls(), 1);
    assert!(matches!(
        events.recv().await.unwrap(),
        Event::ReauthRequired(_)
    ));
}

#[tokio::test(start_paused = true)]
async fn a_session_removed_while_its_lost_pair_is_unresolved_stays_removed() {
    // A provider that can issue tokens of its own: a refresh of a session without tokens
    // would issue a new set.
    let h = harness(|fake| fake.can_issue = true);
    lose_the_rotated_pair(&h).await;
    h.manager.remove("s").await.unwrap();
    // Nobody calls; the background asking for the lost pair must not bring the session back.
    tokio::time::sleep(h.fake.reuse_window).await;
    assert!(
        h.stored("s").await.is_none(),
        "the removed session stays removed"
    );
    assert_eq!(
        h.fake.issues.load(Ordering::SeqCst),
        0,
        "nothing is issued for it"
    );
}

#[tokio::test(start_paused = true)]
async fn a_pair_lost_in_transit_is_still_asked_for_after_joining_a_refresh_that_kept_it() {
    let mut h = harness(|_| {});
    // A refresh ahead of expiry loses the pair the provider rotated to, then gives up; the
    // access token is still valid.
    h.seed("s", Duration::from_secs(90)).await;
    tokio::time::advance(Duration::from_secs(50)).await;
    h.fake.then(Step::LoseAfterRotate);
    for _ in 0..10 {
        h.fake.then(Step::Fail(unavailable(None)));
    }
    assert_eq!(
        h.manager.access_token("s").await.unwrap().expose_secret(),
        "at-0"
    );
    for _ in 0..100 {
        if let Event::RefreshFailed { .. } = h.events.recv().await.unwrap() {
            break;
        }
    }
    assert_eq!(*h.fake.live.lock().unwrap(), "rt-1");
    h.fake.script.lock().unwrap().clear();
    // A caller reports a 401 to an access token older than the current one just as the
    // manager is about to ask for the lost pair: that refresh is answered with the current
    // set (its refresh token still the spent one) without calling the provider, and the
    // asking joins it.
    let session = h.manager.inner.session("s");
    let writing = session.writer().lock().await;
    let rejected = h
        .manager
        .inner
        .start_flight(&session, Reason::Rejected(AccessToken::new("at-older")));
    tokio::time::sleep(ManagerConfig::default().failure_cooldown * 2).await;
    drop(writing);
    let mut rejected = rejected;
    let answered = rejected.wait_for(Option::is_some).await.unwrap().clone();
    let answered = answered.unwrap().unwrap();
    assert_eq!(answered.access_token().expose_secret(), "at-0");
    let calls = h.calls();
    // Nobody calls until the window is over: the manager still asks for the lost pair.
    tokio::time::sleep(h.fake.reuse_window).await;
    assert_eq!(h.calls(), calls + 1);
    let stored = h.stored_tokens("s").await.unwrap().value;
    assert_eq!(stored.refresh_token.unwrap().expose_secret(), "rt-1");
}

/// Polls `future` once, with a waker that does nothing: the test orders the polls.
fn poll_once<F: std::future::Future + Unpin>(future: &mut F) -> std::task::Poll<F::Output> {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(future).poll(&mut cx)
}

/// Another process's record of `s` after it presented a refresh token inside the reuse
/// window too and set the answer's access token aside: `refresh` beside the placeholder.
async fn save_set_aside_elsewhere(h: &Harness, refresh: &str) {
    let key = SessionKey::new("fake", "s");
    let found = h.store.load(&key).await.unwrap().unwrap().version;
    let set_aside: TokenSet = TokenSet::new(AccessToken::new(""))
        .with_refresh_token(RefreshToken::new(refresh))
        .with_access_expires_at(OffsetDateTime::UNIX_EPOCH);
    let record = set_aside.to_stored().unwrap().into();
    h.store.save(&key, &record, Some(found)).await.unwrap();
}

/// A caller of `s` by name that joins `askings` askings for the pair lost in transit in a
/// row, each ending with another process's record (`rt-1`, `rt-2`, ...) whose access token
/// it set aside, adopted; each asking after the first begins before the caller retries (as
/// the asking's own retry once did at once). Then the provider answers every call.
async fn join_askings_that_end_set_aside(askings: u32) -> (Harness, Result<AccessToken, Error>) {
    let gate = Arc::new(Semaphore::new(1_000));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    lose_the_rotated_pair(&h).await;
    gate.forget_permits(gate.available_permits());
    let calls = h.calls();
    tokio::time::sleep(ManagerConfig::default().failure_cooldown).await;
    let session = h.manager.inner.session("s");
    let mut caller = Box::pin(h.manager.access_token("s"));
    for n in 1..=askings {
        if n > 1 {
            let lost = RefreshToken::new("rt-0");
            drop(
                h.manager
                    .inner
                    .start_flight(&session, Reason::Unresolved(lost)),
            );
        }
        // The asking presents rt-0 (then rt-1, ...) again, and the caller joins it there.
        h.until_calls(calls + n).await;
        let presented = h.fake.presented.lock().unwrap().last().unwrap().clone();
        assert_eq!(presented, format!("rt-{}", n - 1));
        let asking = session.flight_slot().as_ref().unwrap().rx.clone();
        assert!(poll_once(&mut caller).is_pending());
        save_set_aside_elsewhere(&h, &format!("rt-{n}")).await;
        // It alone passes (the gate is fair): the gate is closed again behind it.
        gate.add_permits(1);
        gate.acquire().await.unwrap().forget();
        assert!(until(|| asking.borrow().is_some()).await);
        let adopted = asking.borrow().clone().unwrap().unwrap();
        assert_eq!(adopted.access_token().expose_secret(), "");
    }
    gate.add_permits(1_000);
    let answered = caller.await;
    drop(session);
    (h, answered)
}

/// A caller that needs a token and joins the asking for a pair lost in transit is never
/// answered an access token another process set aside. The asking (which needs no usable
/// token) ends with that process's record, adopted; the caller, retrying, may join the
/// asking again, which ends the same way: the caller then refreshes the saved refresh token
/// rather than serve the placeholder (three-process model seed 49662, where the asking's own
/// retry was that second asking).
#[tokio::test(start_paused = true)]
async fn a_caller_whose_retry_joins_the_asking_for_a_lost_pair_is_not_answered_a_set_aside_token() {
    let (h, answered) = join_askings_that_end_set_aside(2).await;
    assert_eq!(answered.unwrap().expose_secret(), "at-3");
    let stored = h.stored_tokens("s").await.unwrap().value;
    assert_eq!(stored.refresh_token.unwrap().expose_secret(), "rt-3");
}

/// A caller that joins so many askings in a row that it stops waiting (four flights) is
/// answered an error, never the placeholder it was last answered.
#[tokio::test(start_paused = true)]
async fn a_caller_that_joins_askings_until_it_stops_waiting_is_answered_an_error() {
    let (_h, answered) = join_askings_that_end_set_aside(4).await;
    let error = answered.unwrap_err();
    assert!(
        matches!(error, Error::RefreshAborted(AbortReason::NoAccessToken)),
        "{error:?}"
    );
}

/// The asking's calls failing while an insert replaces the tokens: that failure is the
/// replaced tokens', and a caller that joined the asking is answered the inserted set, as a
/// caller of any other refresh is. Without an insert, it is answered the asking's failure,
/// with no call of its own.
#[tokio::test(start_paused = true)]
async fn a_caller_that_joined_the_asking_gets_a_set_inserted_meanwhile_not_the_failure() {
    for inserted in [true, false] {
        let gate = Arc::new(Semaphore::new(1_000));
        let h = harness(|fake| fake.gate = Some(gate.clone()));
        lose_the_rotated_pair(&h).await;
        gate.forget_permits(gate.available_permits());
        for _ in 0..4 {
            h.fake.then(Step::Fail(unavailable(None)));
        }
        let calls = h.calls();
        tokio::time::sleep(ManagerConfig::default().failure_cooldown).await;
        h.until_calls(calls + 1).await;
        let mut caller = Box::pin(h.manager.access_token("s"));
        assert!(poll_once(&mut caller).is_pending());
        if inserted {
            let login = TokenSet::new(AccessToken::new("at-login"))
                .with_refresh_token(RefreshToken::new("rt-login"))
                .with_access_expires_at(h.clock.now() + HOUR);
            h.manager.insert("s", login).await.unwrap();
        }
        gate.add_permits(1_000);
        let answered = caller.await;
        assert_eq!(
            h.calls(),
            calls + 4,
            "inserted={inserted}: the asking's four attempts"
        );
        match inserted {
            true => assert_eq!(answered.unwrap().expose_secret(), "at-login"),
            false => assert_eq!(answered.unwrap_err().kind(), ErrorKind::Transient),
        }
    }
}

/// A provider that fails now and then: the pair lost in transit is asked for again soon
/// after an ask that failed, while most of the window is left (at doubling gaps from the
/// failure cooldown), not half the window later: asks that fail in a row still leave
/// several more inside the window.
#[tokio::test(start_paused = true)]
async fn a_pair_lost_in_transit_is_asked_for_again_soon_after_an_ask_that_failed() {
    let h = harness(|_| {});
    lose_the_rotated_pair(&h).await;
    // The first ask (after the failure cooldown) fails, each of its four attempts.
    for _ in 0..4 {
        h.fake.then(Step::Fail(unavailable(None)));
    }
    // A fifth of the window (300 s) later, the pair is back.
    tokio::time::sleep(Duration::from_secs(60)).await;
    let stored = h.stored_tokens("s").await.unwrap().value;
    assert_eq!(stored.refresh_token.unwrap().expose_secret(), "rt-1");
    assert!(
        h.fake.script.lock().unwrap().is_empty(),
        "every failure was met"
    );
}

#[tokio::test(start_paused = true)]
async fn a_pair_lost_in_transit_is_asked_for_when_the_failure_cooldown_outlasts_the_window() {
    let h = harness(|fake| fake.reuse_window = Duration::from_secs(30));
    // Failures are answered again for longer than the provider's reuse window.
    let manager = TokenManager::builder(h.fake.clone())
        .shared_store(h.store.clone())
        .client(NoTransport)
        .clock(Arc::new(h.clock))
        .config(
            ManagerConfig::default()
                .with_failure_cooldown(Duration::from_secs(120))
                .with_retry(
                    RetryPolicy::default()
                        .with_backoff(Duration::from_millis(100), Duration::from_secs(2)),
                ),
        )
        .build()
        .unwrap();
    h.seed("s", Duration::ZERO).await;
    lose_the_answer_to_rt_0(&h, &manager).await;
    // Nobody calls until the window is over: the manager asks for the lost pair inside it,
    // not answered by the failure it remembers.
    tokio::time::sleep(h.fake.reuse_window).await;
    let stored = h.stored_tokens("s").await.unwrap().value;
    assert_eq!(stored.refresh_token.unwrap().expose_secret(), "rt-1");
}

#[tokio::test(start_paused = true)]
async fn a_pair_lost_in_transit_under_a_long_retry_after_is_asked_for_a_few_times_at_most() {
    let h = harness(|_| {});
    h.seed("s", Duration::ZERO).await;
    h.fake.then(Step::LoseAfterRotate);
    // The provider then asks for a wait longer than its own reuse window.
    h.fake
        .then(Step::Fail(unavailable(Some(Duration::from_secs(600)))));
    assert!(h.manager.access_token("s").await.is_err());
    let calls = h.calls();
    // The wait is honoured, and the asking for the lost pair ends with the window: it is
    // answered "cooling down" a bounded number of times, not once per instant left.
    let started = tokio::time::Instant::now();
    for _ in 0..40 {
        tokio::time::sleep(Duration::from_secs(10)).await;
    }
    assert!(started.elapsed() >= h.fake.reuse_window);
    assert_eq!(h.calls(), calls);
    assert!(h.manager.inner.tasks.is_empty(), "no task is left asking");
}

// --- A store that never answers ---

/// A store whose every call hangs once `hung` is set.
#[derive(Default)]
struct HangingStore {
    hung: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Hooks for HangingStore {
    async fn before(&self, _: Call) -> Result<(), StoreError> {
        if self.hung.load(Ordering::SeqCst) {
            std::future::pending::<()>().await;
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn a_store_that_never_answers_fails_the_call_after_store_timeout() {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::<HangingStore>::default());
    let manager = manager_over(&h, store.clone());
    let set = expired_pair(&h);
    manager.insert("s", set).await.unwrap();
    store.hung.store(true, Ordering::SeqCst);
    let timeout = ManagerConfig::default().store_timeout;
    let started = tokio::time::Instant::now();
    // The refresh's lease request hangs: the caller gets a store error, not a wait for ever.
    let bounded = |call| tokio::time::timeout(timeout * 4, call);
    let error = bounded(manager.access_token("s"))
        .await
        .expect("answered")
        .unwrap_err();
    assert!(matches!(error, Error::Store(_)), "{error:?}");
    assert!(error.to_string().contains("did not answer"), "{error}");
    assert!(started.elapsed() <= timeout * 2, "{:?}", started.elapsed());
    assert_eq!(h.calls(), 0, "no refresh without the lease");
    // And a session never loaded: its load hangs.
    let error = bounded(manager.access_token("t"))
        .await
        .expect("answered")
        .unwrap_err();
    assert!(matches!(error, Error::Store(_)), "{error:?}");
    // Inserts too.
    let error = tokio::time::timeout(timeout * 4, manager.insert("u", login(&h)))
        .await
        .expect("answered")
        .unwrap_err();
    assert!(matches!(error, Error::Store(_)), "{error:?}");
    // Once the store answers again, the session refreshes.
    store.hung.store(false, Ordering::SeqCst);
    tokio::time::sleep(ManagerConfig::default().failure_cooldown).await;
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
}

/// A store timeout or a provider call timeout of zero would fail every call (a provider
/// call past its timeout is a lost answer, asked for again): refused at build.
#[test]
fn a_store_or_call_timeout_of_zero_is_a_config_error() {
    let h = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(async { harness(|_| {}) });
    for (config, field) in [
        (
            ManagerConfig::default().with_store_timeout(Duration::ZERO),
            "store_timeout",
        ),
        (
            ManagerConfig::default().with_call_timeout(Duration::ZERO),
            "call_timeout",
        ),
    ] {
        let built = TokenManager::builder(h.fake.clone())
            .client(NoTransport)
            .config(config)
            .build();
        match built {
            Err(Error::Config(message)) => assert!(message.contains(field), "{message}"),
            other => panic!("{field}: {:?}", other.map(drop)),
        }
    }
}

/// A manager keeps its sessions under its namespace: the provider's name when the provider
/// names no client, or the one the builder gives. Two namespaces on one store keep two
/// sessions of one name apart; an empty namespace is refused at build.
#[tokio::test(start_paused = true)]
async fn a_namespace_keeps_its_own_sessions_in_a_shared_store() {
    let h = harness(|_| {});
    assert_eq!(
        h.manager.namespace(),
        "fake",
        "the provider's name: it names no client"
    );
    assert_eq!(h.manager.session_key("s").provider(), "fake");
    let built = |namespace: &str| {
        builder_of(&h, h.fake.clone(), h.store.clone())
            .namespace(namespace)
            .build()
    };
    let (a, b) = (built("tenant-a").unwrap(), built("tenant-b").unwrap());
    assert_eq!(a.session_key("s"), SessionKey::new("tenant-a", "s"));
    for (manager, token) in [(&a, "at-a"), (&b, "at-b"), (&h.manager, "at-fake")] {
        let set = TokenSet::new(AccessToken::new(token))
            .with_access_expires_at(h.clock.now() + time::Duration::hours(1));
        manager.insert("s", set).await.unwrap();
    }
    for (manager, token) in [(&a, "at-a"), (&b, "at-b"), (&h.manager, "at-fake")] {
        assert_eq!(
            manager.access_token("s").await.unwrap().expose_secret(),
            token
        );
        let stored = h
            .store
            .load(&manager.session_key("s"))
            .await
            .unwrap()
            .unwrap();
        let tokens = stored.value.tokens().unwrap();
        assert_eq!(tokens.access_token.expose_secret(), token);
    }
    a.remove("s").await.unwrap();
    assert!(h.store.load(&a.session_key("s")).await.unwrap().is_none());
    assert_eq!(b.access_token("s").await.unwrap().expose_secret(), "at-b");
    match built("") {
        Err(Error::Config(message)) => assert!(message.contains("namespace"), "{message}"),
        other => panic!("an empty namespace: {:?}", other.map(drop)),
    }
}

/// A store whose lease releases and deletes run on in a task of their own once asked, as
/// a file store's blocking I/O does: a caller that stops waiting does not stop the call,
/// which reaches the store when its gate (`gate`, `delete_gate`) lets it.
struct DetachedReleases {
    inner: Arc<MemoryStore>,
    gate: StdMutex<Option<Arc<Semaphore>>>,
    delete_gate: StdMutex<Option<Arc<Semaphore>>>,
    /// Whether the inner store's lapsed leases are listed (the look for them runs).
    lists_lapsed: bool,
    /// Whether a gated release answers at once with the error a store gives when its own
    /// deadline passed with the statement sent (PostgresStore's "no answer within"), and
    /// lands when the gate lets it (a statement held in the network).
    answers_early: bool,
}

#[async_trait]
impl TokenStore for DetachedReleases {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        self.inner.load(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        self.inner.save(key, record, expected).await
    }
    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        let (inner, key) = (self.inner.clone(), key.clone());
        let gate = self.delete_gate.lock().unwrap().take();
        tokio::spawn(async move {
            if let Some(gate) = gate {
                drop(gate.acquire().await.unwrap());
            }
            inner.delete(&key, expected).await
        })
        .await
        .unwrap()
    }
    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        self.inner.acquire_lease(key, holder, ttl).await
    }
    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        let (inner, key, holder) = (self.inner.clone(), key.clone(), holder.to_owned());
        let gate = self.gate.lock().unwrap().take();
        let answer_early = self.answers_early && gate.is_some();
        let release = tokio::spawn(async move {
            if let Some(gate) = gate {
                drop(gate.acquire().await.unwrap());
            }
            inner.release_lease(&key, &holder).await
        });
        if answer_early {
            return Err(StoreError::Backend {
                message: "postgres: release the lease: no answer within 10s".into(),
                source: None,
            });
        }
        release.await.unwrap()
    }
    async fn lapsed_leases(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        match self.lists_lapsed {
            true => self.inner.lapsed_leases(provider).await,
            false => Ok(Vec::new()),
        }
    }
}

impl DetachedReleases {
    /// Over `inner`, with no call held.
    fn over(inner: &Arc<MemoryStore>) -> Self {
        Self {
            inner: inner.clone(),
            gate: StdMutex::new(None),
            delete_gate: StdMutex::new(None),
            lists_lapsed: false,
            answers_early: false,
        }
    }

    /// The same, listing the inner store's lapsed leases.
    fn listing_lapsed(self) -> Self {
        Self {
            lists_lapsed: true,
            ..self
        }
    }

    /// The same, a gated release answering at once with an outage error.
    fn answering_early(self) -> Self {
        Self {
            answers_early: true,
            ..self
        }
    }
}

/// Inserts the session `s` (`at-0`, `rt-0`) due for a refresh.
async fn seed_due<Q: Provider<Extras = NoExtras>>(h: &Harness, manager: &TokenManager<Q>) {
    let set = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(h.clock.now());
    manager.insert("s", set).await.unwrap();
}

/// A manager over `DetachedReleases` of `inner`, its session `s` (`rt-0`) due for a refresh.
async fn detached_releases(
    h: &Harness,
    inner: &Arc<MemoryStore>,
) -> (Arc<DetachedReleases>, TokenManager<Arc<Fake>>) {
    let store = Arc::new(DetachedReleases::over(inner));
    let manager = manager_over(h, store.clone());
    seed_due(h, &manager).await;
    (store, manager)
}

#[tokio::test(start_paused = true)]
async fn a_lease_release_that_answers_after_the_store_timeout_takes_no_later_lease_away() {
    let gate = Arc::new(Semaphore::new(1));
    let h = harness(|fake| fake.gate = Some(gate.clone()));
    let inner = Arc::new(MemoryStore::new());
    let released = Arc::new(Semaphore::new(0));
    let (store, manager) = detached_releases(&h, &inner).await;
    // The first refresh's lease release hangs past store_timeout, and reaches the store
    // later.
    *store.gate.lock().unwrap() = Some(released.clone());
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    // The provider answers no more calls until the test lets it.
    gate.acquire().await.unwrap().forget();
    // The next refresh takes the lease again and is at the provider when the late release
    // lands.
    let refreshing = tokio::spawn({
        let manager = manager.clone();
        async move { manager.refresh_now("s").await }
    });
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    released.add_permits(1);
    // The lease the first refresh left is gone (or lapses): the next one is granted, under
    // a new name.
    for _ in 0..1000 {
        if h.calls() >= 2 {
            break;
        }
        tokio::time::advance(Duration::from_millis(100)).await;
    }
    h.until_calls(2).await;
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    // The lease of the refresh under way is still held: another process cannot take it
    // and spend the same refresh token.
    let other = inner
        .acquire_lease(&SessionKey::new("fake", "s"), "other-process", HOUR)
        .await
        .unwrap();
    assert!(matches!(other, Lease::HeldByOther { .. }), "{other:?}");
    gate.add_permits(1);
    assert_eq!(refreshing.await.unwrap().unwrap().expose_secret(), "at-2");
}

/// A lease release that never answers (a connection that died silently, a hung volume)
/// does not wedge the session: later store calls for it do not wait on that release for
/// ever, and the next refresh gets a lease of its own once the one left behind lapses (that
/// the release, should it land after all, cannot take such a lease away is the test above).
#[tokio::test(start_paused = true)]
async fn a_lease_release_that_never_answers_does_not_wedge_the_session() {
    let h = harness(|_| {});
    let inner = Arc::new(MemoryStore::new());
    let (store, manager) = detached_releases(&h, &inner).await;
    let mut late = Vec::new();
    for n in 1..=3 {
        // This refresh's release never answers until the test lets it.
        let never = Arc::new(Semaphore::new(0));
        *store.gate.lock().unwrap() = Some(never.clone());
        late.push(never);
        let token = tokio::time::timeout(Duration::from_secs(600), manager.refresh_now("s"))
            .await
            .expect("the refresh ends");
        assert_eq!(
            token.unwrap().expose_secret(),
            format!("at-{n}"),
            "refresh {n}"
        );
    }
    assert_eq!(h.fake.calls.load(Ordering::SeqCst), 3);
    // The releases, landing at last, change nothing.
    for never in &late {
        never.add_permits(1);
    }
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-3"
    );
}

#[tokio::test(start_paused = true)]
async fn a_remove_that_answers_after_the_store_timeout_deletes_no_later_login() {
    let h = harness(|_| {});
    let inner = Arc::new(MemoryStore::new());
    let deleted = Arc::new(Semaphore::new(0));
    let store = Arc::new(DetachedReleases::over(&inner));
    *store.delete_gate.lock().unwrap() = Some(deleted.clone());
    let manager = manager_over(&h, store.clone());
    manager.insert("s", login(&h)).await.unwrap();
    // The user logs out; the store does not answer the delete in time (it reaches the
    // store later), and the user logs in again.
    assert!(matches!(manager.remove("s").await, Err(Error::Store(_))));
    let again = TokenSet::new(AccessToken::new("at-again"))
        .with_refresh_token(RefreshToken::new("rt-again"))
        .with_access_expires_at(h.clock.now() + HOUR);
    let inserting = tokio::spawn({
        let manager = manager.clone();
        async move { manager.insert("s", again).await }
    });
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    deleted.add_permits(1);
    inserting.await.unwrap().unwrap();
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    // The login is what the store holds.
    let stored = inner.load(&SessionKey::new("fake", "s")).await.unwrap();
    let stored = stored
        .expect("the login is stored")
        .value
        .into_tokens()
        .unwrap();
    assert_eq!(stored.access_token.expose_secret(), "at-again");
}

// --- Unknown session names ---

#[tokio::test(start_paused = true)]
async fn names_without_a_session_leave_nothing_behind() {
    let h = harness(|_| {});
    for i in 0..3 * name::UNKNOWN_NAMES_KEPT {
        let name = format!("ghost-{i}");
        let no_tokens = |r: Result<AccessToken, Error>| matches!(r, Err(Error::NoTokens(_)));
        assert!(no_tokens(h.manager.access_token(&name).await));
        assert!(no_tokens(h.manager.refresh_now(&name).await));
        assert!(no_tokens(
            h.manager
                .refresh_rejected(&name, &AccessToken::new("at"))
                .await
        ));
        assert!(matches!(
            h.manager.token_set(&name).await,
            Err(Error::NoTokens(_))
        ));
    }
    // Memory does not grow with the names callers ask for: no session entry is kept for
    // a name without tokens, and the names remembered as unknown are bounded.
    assert_eq!(h.manager.inner.sessions.len(), 0);
    assert!(h.manager.inner.unknown.len() <= name::UNKNOWN_NAMES_KEPT);
    // A name that gets tokens is served at once, and so are real sessions.
    h.seed("ghost-1", Duration::from_secs(300)).await;
    assert_eq!(
        h.manager
            .access_token("ghost-1")
            .await
            .unwrap()
            .expose_secret(),
        "at-0"
    );
    assert_eq!(h.manager.inner.sessions.len(), 1);
    assert_eq!(h.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn an_unknown_name_is_answered_from_memory_for_the_failure_cooldown() {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::<FlakyStore>::default());
    let manager = manager_over(&h, store.clone());
    for _ in 0..5 {
        assert!(matches!(
            manager.access_token("ghost").await,
            Err(Error::NoTokens(_))
        ));
    }
    assert_eq!(
        store.loads.load(Ordering::SeqCst),
        1,
        "the store is asked once"
    );
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    assert!(matches!(
        manager.access_token("ghost").await,
        Err(Error::NoTokens(_))
    ));
    assert_eq!(
        store.loads.load(Ordering::SeqCst),
        2,
        "and again after the cooldown"
    );
    // A handle on an unknown name keeps its session (and its fast path for later).
    let handle = manager.session("ghost");
    assert!(handle.access_token().await.is_err());
    assert_eq!(manager.inner.sessions.len(), 1);
}

/// The names answered from memory are the first `UNKNOWN_NAMES_KEPT` asked for within
/// `failure_cooldown`, not the latest: a full set makes room only for looks that lapsed, so a
/// flood of new names costs a store lookup each rather than a pass over the set, and turns
/// none of the remembered names back to the store.
#[tokio::test(start_paused = true)]
async fn the_names_answered_from_memory_are_the_first_ones_within_the_cooldown() {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::<FlakyStore>::default());
    let manager = manager_over(&h, store.clone());
    let loads = || store.loads.load(Ordering::SeqCst);
    for i in 0..=name::UNKNOWN_NAMES_KEPT {
        let error = manager
            .access_token(&format!("ghost-{i}"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::NoTokens(_)), "{error:?}");
    }
    let asked = loads();
    assert_eq!(asked as usize, name::UNKNOWN_NAMES_KEPT + 1);
    // Every one of the first names is answered without the store.
    for i in 0..name::UNKNOWN_NAMES_KEPT {
        let error = manager
            .access_token(&format!("ghost-{i}"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::NoTokens(_)), "{error:?}");
    }
    assert_eq!(loads(), asked, "the first names are answered from memory");
    // The one past them is looked up in the store each time.
    let last = format!("ghost-{}", name::UNKNOWN_NAMES_KEPT);
    for turn in 1..=3 {
        let error = manager.access_token(&last).await.unwrap_err();
        assert!(matches!(error, Error::NoTokens(_)), "{error:?}");
        assert_eq!(loads(), asked + turn, "a name past the set is looked up");
    }
    // Once the looks lapse, a name is remembered again.
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    for _ in 0..3 {
        assert!(manager.access_token(&last).await.is_err());
    }
    assert_eq!(loads(), asked + 4);
    assert_eq!(manager.inner.sessions.len(), 0);
}

/// Holds the next call of each kind given to [`hold`](HeldCalls::hold) until its gate
/// opens, counting the calls that reached their hold.
#[derive(Default)]
struct HeldCalls {
    held: StdMutex<Vec<(Call, Arc<Semaphore>)>>,
    reached: AtomicU32,
}

impl HeldCalls {
    /// Holds the next `call`; returns its gate.
    fn hold(&self, call: Call) -> Arc<Semaphore> {
        let gate = Arc::new(Semaphore::new(0));
        self.held.lock().unwrap().push((call, gate.clone()));
        gate
    }

    /// Lets the other tasks run until `n` held calls have reached their hold (bounded).
    async fn until_reached(&self, n: u32) {
        if until(|| self.reached.load(Ordering::SeqCst) >= n).await {
            return;
        }
        panic!(
            "{} held calls reached, not {n}",
            self.reached.load(Ordering::SeqCst)
        );
    }
}

#[async_trait]
impl Hooks for HeldCalls {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        let gate = {
            let mut held = self.held.lock().unwrap();
            let at = held.iter().position(|(c, _)| *c == call);
            at.map(|at| held.remove(at).1)
        };
        if let Some(gate) = gate {
            self.reached.fetch_add(1, Ordering::SeqCst);
            drop(gate.acquire().await.unwrap());
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn an_insert_that_overlaps_the_lookup_of_its_unknown_name_is_served() {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::<HeldCalls>::default());
    let manager = manager_over(&h, store.clone());
    // A caller asks for a name the store has no tokens for yet; its look at the store is
    // slow.
    let looked = store.hold(Call::Load);
    let asking = tokio::spawn({
        let manager = manager.clone();
        async move { manager.access_token("new").await }
    });
    store.until_reached(1).await;
    // Meanwhile the user logs in: the insert is being saved when the look answers "none".
    let saved = store.hold(Call::Save);
    let inserting = tokio::spawn({
        let manager = manager.clone();
        let set = login(&h);
        async move { manager.insert("new", set).await }
    });
    store.until_reached(2).await;
    looked.add_permits(1);
    assert!(matches!(asking.await.unwrap(), Err(Error::NoTokens(_))));
    saved.add_permits(1);
    inserting.await.unwrap().unwrap();
    // Written once: the look did not forget the session while the insert was writing it
    // (the insert would then have written again, on the session the name maps to next,
    // over whatever another process wrote in between).
    let stored = store.inner.load(&SessionKey::new("fake", "new")).await;
    assert_eq!(stored.unwrap().unwrap().version, 1);
    // The insert has returned: its tokens are served, not "no tokens" for failure_cooldown.
    assert_eq!(
        manager.access_token("new").await.unwrap().expose_secret(),
        "at-login"
    );
    let handle = manager.session("new");
    assert_eq!(
        handle.access_token().await.unwrap().expose_secret(),
        "at-login"
    );
    assert_eq!(h.calls(), 0);
}

/// A store whose loads fail while `failing` is set.
#[derive(Default)]
struct FailingLoads {
    failing: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Hooks for FailingLoads {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        if call == Call::Load && self.failing.load(Ordering::SeqCst) {
            return Err(disk_full());
        }
        Ok(())
    }
}

#[tokio::test(start_paused = true)]
async fn names_asked_for_while_the_store_fails_leave_nothing_behind() {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::<FailingLoads>::default());
    let manager = manager_over(&h, store.clone());
    manager.insert("real", login(&h)).await.unwrap();
    store.failing.store(true, Ordering::SeqCst);
    for i in 0..100 {
        let error = manager
            .access_token(&format!("ghost-{i}"))
            .await
            .unwrap_err();
        assert!(matches!(error, Error::Store(_)), "{error:?}");
    }
    // The names never loaded keep no entry: an outage does not make memory grow with the
    // names callers ask for.
    assert_eq!(manager.inner.sessions.len(), 1);
    // Once the store answers, a name is looked up again, and a real session is served.
    store.failing.store(false, Ordering::SeqCst);
    assert!(matches!(
        manager.access_token("ghost-1").await,
        Err(Error::NoTokens(_))
    ));
    assert_eq!(
        manager.access_token("real").await.unwrap().expose_secret(),
        "at-login"
    );
}

// --- Stores shared by several processes: unreadable records, vanished directories ---

/// Overwrites the one record file of a `FileStore` directory with `bytes` (a record of a
/// newer release, a half-restored backup).
fn overwrite_record_file(dir: &std::path::Path, bytes: &[u8]) {
    let records: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    std::fs::write(&records[0], bytes).unwrap();
}

#[tokio::test(start_paused = true)]
async fn an_insert_replaces_a_record_the_store_cannot_read() {
    let h = harness(|_| {});
    let tmp = tempfile::TempDir::new().unwrap();
    let store = Arc::new(crate::store::FileStore::open(tmp.path()).unwrap());
    let manager = manager_over(&h, store.clone());
    manager
        .insert(
            "s",
            TokenSet::new(AccessToken::new("at-0"))
                .with_refresh_token(RefreshToken::new("rt-0"))
                .with_access_expires_at(h.clock.now() + HOUR),
        )
        .await
        .unwrap();
    // A record of a kind this release does not know (written by a newer one).
    overwrite_record_file(
        tmp.path(),
        br#"{"version": 7, "provider": "fake", "session": "s", "record": {"kind": "pending"}}"#,
    );
    let fresh = manager_over(&h, store.clone());
    assert!(matches!(
        fresh.access_token("s").await,
        Err(Error::Store(StoreError::Corrupt(_)))
    ));
    // The user logs in again: the tokens of the login replace the record, and are served.
    fresh.insert("s", login(&h)).await.unwrap();
    assert_eq!(
        fresh.access_token("s").await.unwrap().expose_secret(),
        "at-login"
    );
    let stored = store
        .load(&SessionKey::new("fake", "s"))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        stored.value.tokens().unwrap().access_token.expose_secret(),
        "at-login"
    );
    // Another process sees the login, not the unreadable record.
    let other = manager_over(&h, store);
    assert_eq!(
        other.access_token("s").await.unwrap().expose_secret(),
        "at-login"
    );
    assert_eq!(h.calls(), 0);
}

/// Another process's store: deletes it is asked for (of any kind) are sent but land only
/// when the test says ([`land`](Self::land)), in tasks of their own, so one whose caller
/// gave up (its `store_timeout`) still reaches the store then, as a query the database
/// took late does.
struct LateDeletes {
    inner: Arc<dyn TokenStore>,
    held: std::sync::Mutex<
        Vec<(
            tokio::sync::oneshot::Sender<()>,
            tokio::task::JoinHandle<()>,
        )>,
    >,
}

impl LateDeletes {
    fn over(inner: Arc<dyn TokenStore>) -> Arc<Self> {
        Arc::new(Self {
            inner,
            held: Default::default(),
        })
    }

    async fn hold<T: Send + 'static>(
        &self,
        call: impl std::future::Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (go, gate) = tokio::sync::oneshot::channel();
        let (answer, answered) = tokio::sync::oneshot::channel();
        let task = tokio::spawn(async move {
            if gate.await.is_ok() {
                let _ = answer.send(call.await);
            }
        });
        self.held.lock().unwrap().push((go, task));
        (answered.await).unwrap_or_else(|_| Err(StoreError::Corrupt("never landed".into())))
    }

    /// Lets every held delete reach the store, and waits until each has: how many.
    async fn land(&self) -> usize {
        let held = std::mem::take(&mut *self.held.lock().unwrap());
        let count = held.len();
        for (go, task) in held {
            go.send(()).unwrap();
            task.await.unwrap();
        }
        count
    }
}

#[async_trait]
impl TokenStore for LateDeletes {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        self.inner.load(key).await
    }
    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        self.inner.save(key, record, expected).await
    }
    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        let (inner, key) = (self.inner.clone(), key.clone());
        self.hold(async move { inner.delete(&key, expected).await })
            .await
    }
    async fn unreadable(
        &self,
        key: &SessionKey,
    ) -> Result<Option<crate::store::Unreadable>, StoreError> {
        self.inner.unreadable(key).await
    }
    async fn delete_unreadable(
        &self,
        key: &SessionKey,
        seen: &crate::store::Unreadable,
    ) -> Result<bool, StoreError> {
        let (inner, key, seen) = (self.inner.clone(), key.clone(), seen.clone());
        self.hold(async move { inner.delete_unreadable(&key, &seen).await })
            .await
    }
}

/// Two processes on one `FileStore` directory. One inserts over a record it cannot read (a
/// newer release's, a damaged one); its removal of that record is sent but does not answer
/// in time, so the insert fails. The other process logs the user in meanwhile. The late
/// removal then reaches the store: it removes nothing, since the record it was meant for is
/// gone, and the login stays.
#[tokio::test(start_paused = true)]
async fn an_insert_over_an_unreadable_record_removes_no_login_saved_after_it() {
    let h = harness(|_| {});
    for unreadable in [
        &br#"{"version": 7, "provider": "fake", "session": "s", "record": {"kind": "pending"}}"#[..],
        br#"{"version": 7, "provi"#,
    ] {
        let tmp = tempfile::TempDir::new().unwrap();
        let open = || Arc::new(crate::store::FileStore::open(tmp.path()).unwrap());
        let late = LateDeletes::over(open());
        let (a, b) = (manager_over(&h, late.clone()), manager_over(&h, open()));
        b.insert("s", login(&h)).await.unwrap();
        overwrite_record_file(tmp.path(), unreadable);

        let inserted = TokenSet::new(AccessToken::new("at-a"))
            .with_refresh_token(RefreshToken::new("rt-a"))
            .with_access_expires_at(h.clock.now() + HOUR);
        let error = a.insert("s", inserted).await.unwrap_err();
        assert!(
            matches!(error, Error::Store(StoreError::Backend { .. })),
            "{error:?}"
        );
        let relogin = TokenSet::new(AccessToken::new("at-relogin"))
            .with_refresh_token(RefreshToken::new("rt-relogin"))
            .with_access_expires_at(h.clock.now() + HOUR);
        b.insert("s", relogin).await.unwrap();
        assert_eq!(late.land().await, 1);

        let stored = open().load(&SessionKey::new("fake", "s")).await.unwrap();
        let stored = stored.expect("the login is kept");
        assert_eq!(
            stored.value.tokens().unwrap().access_token.expose_secret(),
            "at-relogin"
        );
        // A third process sees it.
        let c = manager_over(&h, open());
        assert_eq!(
            c.access_token("s").await.unwrap().expose_secret(),
            "at-relogin"
        );
    }
    assert_eq!(h.calls(), 0);
}

/// Two processes on one `FileStore` directory. One removes the session; its delete is
/// sent but does not answer in time, so the remove fails. The other logs the user in
/// again. The late delete then reaches the store: it was for the record the remove read,
/// which is gone, so the login stays.
#[tokio::test(start_paused = true)]
async fn a_remove_that_times_out_removes_no_login_saved_after_it() {
    let h = harness(|_| {});
    let tmp = tempfile::TempDir::new().unwrap();
    let open = || Arc::new(crate::store::FileStore::open(tmp.path()).unwrap());
    let late = LateDeletes::over(open());
    let (a, b) = (manager_over(&h, late.clone()), manager_over(&h, open()));
    let first = TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(h.clock.now() + HOUR);
    b.insert("s", first).await.unwrap();
    assert_eq!(a.access_token("s").await.unwrap().expose_secret(), "at-0");

    let error = a.remove("s").await.unwrap_err();
    assert!(
        matches!(error, Error::Store(StoreError::Backend { .. })),
        "{error:?}"
    );
    b.insert("s", login(&h)).await.unwrap();
    assert_eq!(late.land().await, 1);

    let stored = open().load(&SessionKey::new("fake", "s")).await.unwrap();
    let stored = stored.expect("the login is kept");
    assert_eq!(
        stored.value.tokens().unwrap().access_token.expose_secret(),
        "at-login"
    );
    let c = manager_over(&h, open());
    assert_eq!(
        c.access_token("s").await.unwrap().expose_secret(),
        "at-login"
    );
    // A remove that is answered removes the session, whatever refresh saved it last.
    b.remove("s").await.unwrap();
    assert!(
        open()
            .load(&SessionKey::new("fake", "s"))
            .await
            .unwrap()
            .is_none()
    );
    assert_eq!(h.calls(), 0);
}

#[cfg(unix)]
#[tokio::test(start_paused = true)]
async fn a_file_store_whose_directory_vanished_gives_up_no_session() {
    let h = harness(|_| {});
    let tmp = tempfile::TempDir::new().unwrap();
    let dir = tmp.path().join("tokens");
    let store = Arc::new(crate::store::FileStore::open(&dir).unwrap());
    let manager = manager_over(&h, store.clone());
    h.fake.then(Step::Fail(invalid_grant()));
    manager
        .insert(
            "s",
            TokenSet::new(AccessToken::new("at-0"))
                .with_refresh_token(RefreshToken::new("rt-0"))
                .with_access_expires_at(h.clock.now() + Duration::from_secs(30)),
        )
        .await
        .unwrap();
    // The volume goes away and its empty mount point stays (or the directory is wiped).
    std::fs::remove_dir_all(&dir).unwrap();
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let unavailable = |result: Result<AccessToken, Error>| {
        let error = result.unwrap_err();
        assert!(
            matches!(error, Error::Store(StoreError::Backend { .. })),
            "the store is unavailable, the session not gone: {error:?}"
        );
    };
    // Another process meets the session for the first time: the store cannot say.
    let other = manager_over(&h, store.clone());
    unavailable(other.access_token("s").await);
    // Its refresh (which the provider would refuse) neither finds the session removed nor
    // calls the provider: the store cannot be read.
    tokio::time::advance(Duration::from_secs(31)).await;
    unavailable(manager.access_token("s").await);
    assert_eq!(h.calls(), 0, "no refresh without the store");
    assert!(
        !std::fs::read_dir(&dir).unwrap().any(|entry| {
            let name = entry.unwrap().file_name();
            name.to_string_lossy().ends_with(".json")
        }),
        "nothing is written into a directory that is not the store's"
    );
}

/// Over a store shared with other managers: fails `save` while `failing`, and holds the
/// answer of the next `acquire_lease` after `hold` is set (the store has granted it, the
/// answer is on its way) until the test lets it go.
struct HeldAnswers {
    failing: std::sync::atomic::AtomicBool,
    hold: StdMutex<Option<Arc<Semaphore>>>,
    holding: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Hooks for HeldAnswers {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        if call == Call::Save && self.failing.load(Ordering::SeqCst) {
            return Err(disk_full());
        }
        Ok(())
    }

    async fn lease(
        &self,
        _: &SessionKey,
        _: &dyn TokenStore,
        granted: Lease,
    ) -> Result<Lease, StoreError> {
        let hold = self.hold.lock().unwrap().take();
        if let Some(hold) = hold {
            self.holding.store(true, Ordering::SeqCst);
            drop(hold.acquire().await.unwrap());
        }
        Ok(granted)
    }
}

#[tokio::test(start_paused = true)]
async fn a_lease_taken_again_while_a_background_save_gives_it_back_stays_taken() {
    let provider_gate = Arc::new(Semaphore::new(1));
    let h = harness(|fake| fake.gate = Some(provider_gate.clone()));
    let shared = Arc::new(MemoryStore::new());
    let store = Arc::new(Hooked::over(
        shared.clone(),
        HeldAnswers {
            failing: false.into(),
            hold: StdMutex::new(None),
            holding: false.into(),
        },
    ));
    let here = manager_over(&h, store.clone());
    let mut events = here.subscribe();
    let elsewhere = manager_over(&h, shared.clone());
    here.insert("s", expired_pair(&h)).await.unwrap();
    // The new pair cannot be saved: it is used, and saved in the background, the lease kept.
    store.failing.store(true, Ordering::SeqCst);
    assert_eq!(
        here.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    provider_gate.acquire().await.unwrap().forget();

    // A forced refresh here takes the lease again; the store's answer is on its way...
    let hold = Arc::new(Semaphore::new(0));
    *store.hold.lock().unwrap() = Some(hold.clone());
    let forced = {
        let here = here.clone();
        tokio::spawn(async move { here.refresh_now("s").await })
    };
    for _ in 0..1000 {
        if store.holding.load(Ordering::SeqCst) {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert!(store.holding.load(Ordering::SeqCst));
    // ...while the background save succeeds and gives its use of the lease back.
    store.failing.store(false, Ordering::SeqCst);
    tokio::time::advance(ManagerConfig::default().heartbeat()).await;
    let mut persisted = false;
    for _ in 0..1000 {
        match events.try_recv() {
            Ok(Event::Persisted { .. }) => persisted = true,
            Ok(_) => continue,
            Err(_) if persisted => break,
            Err(_) => {}
        }
        tokio::task::yield_now().await;
    }
    assert!(persisted, "the background save landed");
    hold.add_permits(1);
    h.until_calls(2).await;
    assert_eq!(h.fake.presented.lock().unwrap()[1], "rt-1");

    // The forced refresh is at the provider with rt-1: another process must wait for it.
    let waiting = {
        let elsewhere = elsewhere.clone();
        tokio::spawn(async move { elsewhere.refresh_now("s").await })
    };
    for _ in 0..1000 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        *h.fake.presented.lock().unwrap(),
        ["rt-0", "rt-1"],
        "a refresh token is sent by one process at a time"
    );
    provider_gate.add_permits(10);
    assert_eq!(forced.await.unwrap().unwrap().expose_secret(), "at-2");
    // The other process's forced refresh takes the answer of the one it waited for.
    assert_eq!(waiting.await.unwrap().unwrap().expose_secret(), "at-2");
    let presented = h.fake.presented.lock().unwrap().clone();
    assert_eq!(presented, ["rt-0", "rt-1"]);
}

/// Over a store shared with other managers: `load` panics once `panics` is set (a store's
/// own code, or a bug in it), `save` once `save_panics` is, and `save` fails while
/// `save_fails` is.
struct PanickingStore {
    panics: std::sync::atomic::AtomicBool,
    save_panics: std::sync::atomic::AtomicBool,
    save_fails: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Hooks for PanickingStore {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        match call {
            Call::Load if self.panics.swap(false, Ordering::SeqCst) => {
                panic!("the store's code panicked")
            }
            Call::Save if self.save_panics.swap(false, Ordering::SeqCst) => {
                panic!("the store's code panicked")
            }
            Call::Save if self.save_fails.load(Ordering::SeqCst) => Err(disk_full()),
            _ => Ok(()),
        }
    }
}

/// The store error a call of a store whose code panicked answers.
fn is_store_panic(error: &Error) -> bool {
    matches!(error, Error::Store(StoreError::Backend { message, .. }) if message.ends_with("panicked"))
}

#[tokio::test(start_paused = true)]
async fn a_store_that_panics_once_the_lease_is_taken_does_not_keep_it_taken() {
    let h = harness(|_| {});
    let shared = Arc::new(MemoryStore::new());
    let store = Arc::new(Hooked::over(
        shared.clone(),
        PanickingStore {
            panics: false.into(),
            save_panics: false.into(),
            save_fails: false.into(),
        },
    ));
    let manager = manager_over(&h, store.clone());
    let key = SessionKey::new("fake", "s");
    let ttl = ManagerConfig::default().lease_ttl;
    let free = || async {
        let free = shared
            .acquire_lease(&key, "another process", ttl)
            .await
            .unwrap();
        shared.release_lease(&key, "another process").await.unwrap();
        free
    };
    manager.insert("s", expired_pair(&h)).await.unwrap();
    // The re-read after the lease was taken panics.
    store.panics.store(true, Ordering::SeqCst);
    let error = manager.access_token("s").await.unwrap_err();
    assert!(is_store_panic(&error), "{error:?}");
    assert_eq!(free().await, Lease::Acquired, "the lease was given back");
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-1"
    );
    assert_eq!(
        free().await,
        Lease::Acquired,
        "and is given back after the next refresh"
    );

    assert_eq!(h.calls(), 1);

    // A set whose save failed is saved again before its refresh token is spent: that save
    // panics.
    let mut events = manager.subscribe();
    store.save_fails.store(true, Ordering::SeqCst);
    tokio::time::advance(HOUR).await;
    assert_eq!(
        manager.access_token("s").await.unwrap().expose_secret(),
        "at-2"
    );
    store.save_fails.store(false, Ordering::SeqCst);
    store.save_panics.store(true, Ordering::SeqCst);
    let error = manager.refresh_now("s").await.unwrap_err();
    assert!(is_store_panic(&error), "{error:?}");
    assert_eq!(h.calls(), 2, "no token spent without the save");
    // The background save lands, and gives the lease back.
    let persisted = tokio::time::timeout(HOUR, async {
        loop {
            if let Event::Persisted { .. } = events.recv().await.unwrap() {
                return;
            }
        }
    });
    persisted.await.unwrap();
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    assert_eq!(
        free().await,
        Lease::Acquired,
        "given back after a panicking save"
    );
}

// --- Sessions left behind: a caller holding a session the map no longer has ---

/// The answer of a refresh asked of `session` directly (as a caller that looked it up
/// before the map changed goes on to ask).
fn ask_directly(
    h: &Harness,
    session: Arc<Session<NoExtras>>,
) -> tokio::task::JoinHandle<Result<AccessToken, Error>> {
    let inner = h.manager.inner.clone();
    tokio::spawn(async move {
        let outcome = inner.flight(&session, Reason::Needed).await;
        inner
            .forget_if_unknown(&session, outcome)
            .map(|current| current.access_token().clone())
    })
}

#[tokio::test(start_paused = true)]
async fn a_session_left_behind_by_a_remove_and_a_login_never_refreshes_beside_the_new_one() {
    let gate = Arc::new(Semaphore::new(0));
    let h = harness(|fake| {
        fake.gate = Some(gate.clone());
        fake.reuse_window = Duration::ZERO;
    });
    h.seed("s", Duration::from_secs(300)).await;
    // A caller looks the session up; before it goes on, a remove and a login replace it.
    let left_behind = h.manager.inner.known_session("s").unwrap();
    h.manager.remove("s").await.unwrap();
    h.manager.insert("s", expired_pair(&h)).await.unwrap();
    let manager = h.manager.clone();
    let mapped = tokio::spawn(async move { manager.access_token("s").await });
    h.until_calls(1).await;
    // Past the remove's own "no tokens" answer.
    tokio::time::advance(Duration::from_secs(6)).await;
    let late = ask_directly(&h, left_behind);
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
    gate.add_permits(2);
    let (mapped, late) = (mapped.await.unwrap().unwrap(), late.await.unwrap().unwrap());
    assert_eq!(
        *h.fake.presented.lock().unwrap(),
        ["rt-0"],
        "rt-0 spent once"
    );
    assert_eq!(mapped.expose_secret(), "at-1");
    assert_eq!(late.expose_secret(), "at-1");
    assert_eq!(refresh_of(&h.stored("s").await.unwrap()), "rt-1");
}

#[tokio::test(start_paused = true)]
async fn a_session_forgotten_as_unknown_answers_with_the_tokens_inserted_since() {
    let h = harness(|_| {});
    // Looked up while the store has nothing; another caller's lookup then forgets it.
    let left_behind = h.manager.inner.session("s");
    assert!(matches!(
        h.manager.access_token("s").await,
        Err(Error::NoTokens(_))
    ));
    assert!(h.manager.inner.sessions.pin().get("s").is_none());
    h.seed("s", Duration::from_secs(300)).await;
    let late = ask_directly(&h, left_behind).await.unwrap();
    assert_eq!(late.unwrap().expose_secret(), "at-0");
    assert_eq!(h.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_session_out_of_the_map_takes_no_handle_and_a_held_one_stays_in_it() {
    let h = harness(|_| {});
    h.seed("s", Duration::from_secs(300)).await;
    let left_behind = h.manager.inner.session("s");
    h.manager.remove("s").await.unwrap();
    assert!(
        !left_behind.take_handle(),
        "out of the map: a handle on it would never see a new insert"
    );
    // A session a handle holds is neither removed nor forgotten out of the map.
    let handle = h.manager.session("t");
    assert!(matches!(
        handle.access_token().await,
        Err(Error::NoTokens(_))
    ));
    h.manager.remove("t").await.unwrap();
    assert!(h.manager.inner.sessions.pin().get("t").is_some());
    h.seed("t", Duration::from_secs(300)).await;
    assert_eq!(handle.fresh_token().unwrap().expose_secret(), "at-0");
}

#[test]
fn no_extras_are_kept_as_serde_would_make_them() {
    assert_eq!(
        extras_json(&NoExtras {}).unwrap(),
        serde_json::to_value(NoExtras {}).unwrap()
    );
    let other = serde_json::json!({"user_id": "u-1"});
    assert_eq!(extras_json(&other).unwrap(), other);
}

mod bounds;
mod cancel;
mod crash;
mod faults;
mod hostile;
mod interplay;
mod lifecycle;
mod memo;
mod model;
mod processes;
mod release_doubt;
mod threads;

/// Fails the first `load` after the provider was called once (the re-read before a verdict).
struct FailsTheLookAfterTheCall {
    fake: Arc<Fake>,
    failed: std::sync::atomic::AtomicBool,
}

#[async_trait]
impl Hooks for FailsTheLookAfterTheCall {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        if call == Call::Load
            && self.fake.calls.load(Ordering::SeqCst) >= 1
            && !self.failed.swap(true, Ordering::SeqCst)
        {
            return Err(disk_full());
        }
        Ok(())
    }
}

/// A refusal whose verdict waited for a store that could not be read then (it may hold a
/// pair another process got with that token): the next call does not present the refused
/// refresh token again (a provider that takes a second presentation for a replay revokes
/// the whole grant, another process's new pair with it), it looks at the store and judges.
#[tokio::test(start_paused = true)]
async fn a_refused_refresh_token_is_not_presented_again_while_its_verdict_waits_for_the_store() {
    let h = harness(|_| {});
    let hooks = FailsTheLookAfterTheCall {
        fake: h.fake.clone(),
        failed: std::sync::atomic::AtomicBool::new(false),
    };
    let store: Arc<dyn TokenStore> = Arc::new(Hooked::over(MemoryStore::new(), hooks));
    let manager = manager_over(&h, store);
    manager.insert("s", expired_pair(&h)).await.unwrap();
    h.fake.then(Step::Fail(invalid_grant()));
    let first = manager.access_token("s").await.unwrap_err();
    assert!(
        matches!(first, Error::Store(_)),
        "no verdict yet: {first:?}"
    );
    tokio::time::advance(ManagerConfig::default().failure_cooldown + Duration::from_secs(1)).await;
    let second = manager.access_token("s").await.unwrap_err();
    assert_eq!(second.kind(), ErrorKind::ReauthRequired, "{second:?}");
    assert_eq!(h.calls(), 1, "the refused token is presented once");
}

/// Fails `save` while `failing` is set, and holds each lease request at `gate` while
/// `holding` is set (counting those held in `held`).
#[derive(Default)]
struct FailingSavesHeldLeases {
    failing: std::sync::atomic::AtomicBool,
    holding: std::sync::atomic::AtomicBool,
    held: AtomicU32,
    gate: tokio::sync::Notify,
}

#[async_trait]
impl Hooks for FailingSavesHeldLeases {
    async fn before(&self, call: Call) -> Result<(), StoreError> {
        match call {
            Call::Save if self.failing.load(Ordering::SeqCst) => return Err(disk_full()),
            Call::Acquire if self.holding.load(Ordering::SeqCst) => {
                let released = self.gate.notified();
                self.held.fetch_add(1, Ordering::SeqCst);
                released.await;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A set the provider issued for a session the store had no record of, whose save failed,
/// is saved again in the background; a remove of the session while that save is under way
/// (its lease renewed first) is not undone by it: the store keeps no record of the removed
/// session.
#[tokio::test(start_paused = true)]
async fn a_remove_during_the_background_save_of_an_issued_set_is_not_undone_by_it() {
    let clock = TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC));
    let mut fake = Fake::new(Arc::new(clock));
    fake.can_issue = true;
    let fake = Arc::new(fake);
    let store = Arc::new(Hooked::<FailingSavesHeldLeases>::default());
    let manager = TokenManager::builder(fake.clone())
        .shared_store(store.clone())
        .client(NoTransport)
        .clock(Arc::new(clock))
        .build()
        .unwrap();
    store.failing.store(true, Ordering::SeqCst);
    let issued = manager.access_token("s").await.unwrap();
    assert_eq!(issued.expose_secret(), "at-1");
    assert_eq!(fake.issues.load(Ordering::SeqCst), 1);
    // The store is back; the background save renews its lease first, and is held there.
    store.failing.store(false, Ordering::SeqCst);
    store.holding.store(true, Ordering::SeqCst);
    for _ in 0..100 {
        if store.held.load(Ordering::SeqCst) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        store.held.load(Ordering::SeqCst),
        1,
        "the background save renews"
    );
    store.holding.store(false, Ordering::SeqCst);
    manager.remove("s").await.unwrap();
    store.gate.notify_waiters();
    assert!(manager.shutdown(Duration::from_secs(60)).await.is_ok());
    let key = SessionKey::new("fake", "s");
    assert!(
        store.inner.load(&key).await.unwrap().is_none(),
        "the removed session stays removed from the store"
    );
}

/// `min_refresh_interval` is what keeps a provider that answers expired tokens from being
/// asked again at once: below a second (zero, say) it would let every call refresh (two
/// provider calls per `access_token` here, each spending a refresh token), so the build
/// refuses it, as it refuses a lease shorter than a second.
#[tokio::test(start_paused = true)]
async fn a_min_refresh_interval_under_a_second_is_refused_at_build() {
    for interval in [Duration::ZERO, Duration::from_millis(999)] {
        let built = TokenManager::builder(Arc::new(Fake::new(Arc::new(crate::clock::SystemClock))))
            .client(NoTransport)
            .config(ManagerConfig::default().with_min_refresh_interval(interval))
            .build();
        assert!(
            matches!(&built, Err(Error::Config(message)) if message.contains("min_refresh_interval")),
            "{interval:?}: {:?}",
            built.err()
        );
    }
    let one_second = ManagerConfig::default().with_min_refresh_interval(Duration::from_secs(1));
    let built = TokenManager::builder(Arc::new(Fake::new(Arc::new(crate::clock::SystemClock))))
        .client(NoTransport)
        .config(one_second)
        .build();
    assert!(built.is_ok());
}

/// A provider of a given name and client id, which refreshes nothing.
struct NamedClient {
    name: &'static str,
    client: Option<&'static str>,
}

#[async_trait]
impl Provider for NamedClient {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        self.name
    }

    fn client_id(&self) -> Option<String> {
        self.client.map(str::to_owned)
    }

    async fn refresh(&self, _cx: &CallContext, _current: &TokenSet) -> Result<TokenSet, Error> {
        Err(invalid_grant())
    }
}

/// The default namespace tells every (name, client id) apart, whatever they hold: a
/// provider `a` for client `b:c` and a provider `a:b` for client `c` (or `a:b` naming no
/// client and `a` for client `b`) sharing a store never read each other's sessions.
#[tokio::test(start_paused = true)]
async fn providers_whose_name_and_client_id_join_alike_keep_apart_in_a_shared_store() {
    let h = harness(|_| {});
    let pairs = [
        (("a", Some("b:c")), ("a:b", Some("c"))),
        (("a", Some("b")), ("a:b", None)),
        (("a%3Ab", Some("c")), ("a:b", Some("c"))),
    ];
    for ((name_a, client_a), (name_b, client_b)) in pairs {
        let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
        let provider = |name, client| NamedClient { name, client };
        let a = builder_of(&h, provider(name_a, client_a), store.clone())
            .build()
            .unwrap();
        let b = builder_of(&h, provider(name_b, client_b), store.clone())
            .build()
            .unwrap();
        assert_ne!(
            a.namespace(),
            b.namespace(),
            "{name_a}/{client_a:?} and {name_b}/{client_b:?}"
        );
        let set = TokenSet::new(AccessToken::new("at-a"))
            .with_access_expires_at(h.clock.now() + time::Duration::hours(1));
        a.insert("s", set).await.unwrap();
        assert!(store.load(&b.session_key("s")).await.unwrap().is_none());
        assert!(b.access_token("s").await.is_err());
    }
    // A name without the separator keeps the namespace it always had.
    let plain = builder_of(
        &h,
        NamedClient {
            name: "wechat",
            client: Some("wx:1"),
        },
        h.store.clone(),
    );
    assert_eq!(plain.build().unwrap().namespace(), "wechat:wx:1");
}
