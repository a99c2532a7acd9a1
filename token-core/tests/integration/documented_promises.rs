//! The manager's documented promises, probed from the public API alone: a scripted provider
//! that counts its calls, a `MemoryStore` or a `FileStore` in a temporary directory, two
//! managers on one store standing in for two processes, and tokio's paused clock.
//!
//! Each test names the sentence of the documentation (README, rustdoc) it holds the code to.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use http::StatusCode;
use time::macros::datetime;
use token_core::async_trait;
use token_core::clock::{Clock, TokioClock};
use token_core::error::{AbortReason, EndpointError, Error, ErrorKind, ProviderError, StoreError};
use token_core::manager::{Event, ExpiryNote, ManagerConfig, RetryPolicy, TokenManager};
use token_core::provider::{CallContext, Provider};
use token_core::secret::{AccessToken, RefreshToken};
use token_core::store::{FileStore, MemoryStore, SessionKey, StoredRecord, TokenStore};
use token_core::token_set::{NoExtras, TokenSet};
use tokio::sync::{Semaphore, broadcast, mpsc};

const HOUR: Duration = Duration::from_secs(3600);

/// One answer of the scripted provider; without a script it rotates (`at-N`, `rt-N`, an
/// hour's life).
enum Step {
    Fail(Error),
    /// A new access token, no refresh token (the provider keeps the one it was sent).
    KeepRefreshToken,
    /// A new pair without an access-token expiry.
    NoExpiry,
    /// A new pair whose access token lives this long.
    Lives(Duration),
    /// The provider's code panics.
    Panic,
    /// A new access token beside a blank refresh token (a hand-written provider that reads
    /// an absent field as an empty string).
    BlankRefreshToken(&'static str),
    /// A blank access token beside a new refresh token.
    BlankAccessToken,
}

#[derive(Default)]
struct Scripted {
    calls: AtomicU32,
    minted: AtomicU32,
    script: Mutex<VecDeque<Step>>,
    /// When set, every call waits for a permit before it answers.
    gate: Option<Arc<Semaphore>>,
    /// Told of every call as it reaches the provider.
    entered: Mutex<Option<mpsc::UnboundedSender<()>>>,
    can_issue: bool,
    /// When each call reached the provider.
    times: Mutex<Vec<time::OffsetDateTime>>,
}

impl Scripted {
    fn then(&self, step: Step) {
        self.script.lock().unwrap().push_back(step);
    }

    fn calls(&self) -> u32 {
        self.calls.load(Ordering::SeqCst)
    }

    fn answer(&self, cx: &CallContext) -> Result<TokenSet, Error> {
        let step = self.script.lock().unwrap().pop_front();
        match step {
            Some(Step::Fail(error)) => return Err(error),
            Some(Step::Panic) => panic!("the provider's code panicked"),
            _ => {}
        }
        let n = self.minted.fetch_add(1, Ordering::SeqCst) + 1;
        let set = TokenSet::new(AccessToken::new(format!("at-{n}")))
            .with_refresh_token(RefreshToken::new(format!("rt-{n}")))
            .with_access_expires_at(cx.now() + HOUR);
        Ok(match step {
            None | Some(Step::Fail(_) | Step::Panic) => set,
            Some(Step::KeepRefreshToken) => {
                TokenSet::new(set.access_token).with_access_expires_at(cx.now() + HOUR)
            }
            Some(Step::NoExpiry) => {
                TokenSet::new(set.access_token).with_refresh_token(set.refresh_token.unwrap())
            }
            Some(Step::Lives(life)) => set.with_access_expires_at(cx.now() + life),
            Some(Step::BlankAccessToken) => TokenSet::new(AccessToken::new("   "))
                .with_refresh_token(set.refresh_token.unwrap())
                .with_access_expires_at(cx.now() + HOUR),
            Some(Step::BlankRefreshToken(blank)) => TokenSet::new(set.access_token)
                .with_refresh_token(RefreshToken::new(blank))
                .with_access_expires_at(cx.now() + HOUR),
        })
    }

    async fn call(&self, cx: &CallContext) -> Result<TokenSet, Error> {
        self.calls.fetch_add(1, Ordering::SeqCst);
        self.times.lock().unwrap().push(cx.now());
        if let Some(entered) = &*self.entered.lock().unwrap() {
            let _ = entered.send(());
        }
        if let Some(gate) = &self.gate {
            gate.acquire().await.unwrap().forget();
        }
        self.answer(cx)
    }
}

struct Probe(Arc<Scripted>);

#[async_trait]
impl Provider for Probe {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "probe"
    }

    async fn refresh(&self, cx: &CallContext, _: &TokenSet) -> Result<TokenSet, Error> {
        self.0.call(cx).await
    }

    fn can_issue(&self) -> bool {
        self.0.can_issue
    }

    async fn issue(&self, cx: &CallContext) -> Result<TokenSet, Error> {
        self.0.call(cx).await
    }

    fn authorize_url(&self, session: &str) -> Option<String> {
        Some(format!("https://probe.example/authorize?state={session}"))
    }
}

fn clock() -> TokioClock {
    TokioClock::starting_at(datetime!(2026-01-01 00:00 UTC))
}

fn config() -> ManagerConfig {
    ManagerConfig::default()
        .with_refresh_skew(Duration::from_secs(60), Duration::ZERO)
        .with_retry(RetryPolicy::never())
}

/// One transport for every manager of the tests (the scripted provider sends nothing):
/// building one per manager costs a tenth of a second each.
fn transport() -> Arc<dyn token_core::transport::HttpClient> {
    static CLIENT: std::sync::OnceLock<Arc<dyn token_core::transport::HttpClient>> =
        std::sync::OnceLock::new();
    CLIENT
        .get_or_init(|| Arc::new(token_core::transport::ReqwestClient::new().unwrap()))
        .clone()
}

fn manager_with(
    provider: &Arc<Scripted>,
    store: Arc<dyn TokenStore>,
    config: ManagerConfig,
) -> TokenManager<Probe> {
    TokenManager::builder(Probe(provider.clone()))
        .shared_store(store)
        .shared_client(transport())
        .clock(Arc::new(clock()))
        .config(config)
        .build()
        .unwrap()
}

fn manager(provider: &Arc<Scripted>, store: Arc<dyn TokenStore>) -> TokenManager<Probe> {
    manager_with(provider, store, config())
}

/// A login: `at-login`/`rt-login`, an hour's life from `manager`'s now.
fn login(manager: &TokenManager<Probe>) -> TokenSet {
    TokenSet::new(AccessToken::new("at-login"))
        .with_refresh_token(RefreshToken::new("rt-login"))
        .with_access_expires_at(manager.call_context("s").now() + HOUR)
}

/// Lets the other tasks run (no time passes): a background refresh reaches the provider.
async fn settle() {
    for _ in 0..100 {
        tokio::task::yield_now().await;
    }
}

/// The first set, `at-0`/`rt-0`, living `life` from the start of a test.
fn first(life: Duration) -> TokenSet {
    TokenSet::new(AccessToken::new("at-0"))
        .with_refresh_token(RefreshToken::new("rt-0"))
        .with_access_expires_at(clock().now() + life)
}

fn invalid_grant() -> Error {
    EndpointError::from(ProviderError::new(
        ErrorKind::ReauthRequired,
        StatusCode::BAD_REQUEST,
        "invalid_grant",
    ))
    .into()
}

fn unavailable() -> Error {
    EndpointError::from(ProviderError::new(
        ErrorKind::Transient,
        StatusCode::SERVICE_UNAVAILABLE,
        "503",
    ))
    .into()
}

fn drain(events: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    let mut drained = Vec::new();
    while let Ok(event) = events.try_recv() {
        drained.push(event);
    }
    drained
}

fn count(events: &[Event], name: &str) -> usize {
    events.iter().filter(|e| e.name() == name).count()
}

fn key() -> SessionKey {
    SessionKey::new("probe", "s")
}

async fn stored(store: &dyn TokenStore) -> Option<StoredRecord> {
    store.load(&key()).await.unwrap().map(|v| v.value)
}

async fn stored_access(store: &dyn TokenStore) -> Option<String> {
    let record = stored(store).await?;
    Some(record.tokens()?.access_token.expose_secret().to_owned())
}

/// A `FileStore` in a fresh directory, and a second store over the same directory (another
/// process's own OS lock handle).
fn file_stores() -> (tempfile::TempDir, Arc<dyn TokenStore>, Arc<dyn TokenStore>) {
    let dir = tempfile::TempDir::new().unwrap();
    let a = Arc::new(FileStore::open(dir.path()).unwrap());
    let b = Arc::new(FileStore::open(dir.path()).unwrap());
    (dir, a, b)
}

/// Cuts the one record file in `dir` short; its path and what it now holds.
fn damage_the_record(dir: &std::path::Path) -> (std::path::PathBuf, &'static [u8]) {
    let records: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "json"))
        .collect();
    assert_eq!(records.len(), 1, "{records:?}");
    let damaged: &[u8] = b"{\"version\": 3, \"record\": {\"kind\": \"tok";
    std::fs::write(&records[0], damaged).unwrap();
    (records[0].clone(), damaged)
}

/// The access token `manager` serves for `s`.
async fn served(manager: &TokenManager<Probe>) -> String {
    let token = manager.access_token("s").await.unwrap();
    token.expose_secret().to_owned()
}

/// Moves the clock on `by`, asks `manager` for `s` (a token is served) and lets a refresh
/// that started reach the provider: how many calls the provider has had.
async fn calls_after(by: Duration, manager: &TokenManager<Probe>, provider: &Scripted) -> u32 {
    tokio::time::advance(by).await;
    manager.access_token("s").await.unwrap();
    settle().await;
    provider.calls()
}

/// Two processes: a provider, managers `a` and `b` of it with a `FileStore` each on one
/// directory, session `s` (`first(HOUR)`) inserted through `a`, `a`'s store and the
/// directory.
async fn two_processes() -> (
    Arc<Scripted>,
    TokenManager<Probe>,
    TokenManager<Probe>,
    Arc<dyn TokenStore>,
    tempfile::TempDir,
) {
    let provider = Arc::new(Scripted::default());
    let (dir, store_a, store_b) = file_stores();
    let a = manager(&provider, store_a.clone());
    let b = manager(&provider, store_b);
    a.insert("s", first(HOUR)).await.unwrap();
    (provider, a, b, store_a, dir)
}

/// A provider whose calls wait at a gate, and a channel that tells of each call.
fn gated() -> (Arc<Scripted>, Arc<Semaphore>, mpsc::UnboundedReceiver<()>) {
    let gate = Arc::new(Semaphore::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let provider = Arc::new(Scripted {
        gate: Some(gate.clone()),
        entered: Mutex::new(Some(tx)),
        ..Scripted::default()
    });
    (provider, gate, rx)
}

/// A provider, a manager over a `MemoryStore` holding session `s` (`first(life)`), the
/// store, and the manager's events from then on.
async fn one_session(
    life: Duration,
) -> (
    Arc<Scripted>,
    TokenManager<Probe>,
    Arc<dyn TokenStore>,
    broadcast::Receiver<Event>,
) {
    let provider = Arc::new(Scripted::default());
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let manager = manager(&provider, store.clone());
    manager.insert("s", first(life)).await.unwrap();
    let events = manager.subscribe();
    (provider, manager, store, events)
}

/// `Event::Refreshed`: "A new set was obtained and is in use"; `Event::Adopted`: "Another
/// process refreshed the session; its newer stored set was taken." One refresh seen by two
/// processes is one `Refreshed` (where it ran) and one `Adopted` (where it was taken), one
/// provider call.
#[tokio::test(start_paused = true)]
async fn one_refresh_seen_by_two_processes_is_one_refreshed_and_one_adopted() {
    let (provider, a, b, store_a, _dir) = two_processes().await;
    assert_eq!(served(&b).await, "at-0");
    let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());

    tokio::time::advance(2 * HOUR).await;
    assert_eq!(served(&a).await, "at-1");
    assert_eq!(served(&b).await, "at-1");
    for _ in 0..10 {
        a.access_token("s").await.unwrap();
        b.access_token("s").await.unwrap();
    }
    assert_eq!(provider.calls(), 1);

    let version = store_a.load(&key()).await.unwrap().unwrap().version;
    let (seen_a, seen_b) = (drain(&mut events_a), drain(&mut events_b));
    assert_eq!(seen_a.len(), 1, "{seen_a:?}");
    assert!(
        matches!(
            &seen_a[0],
            Event::Refreshed { rotated: true, issued: false, version: Some(v), .. } if *v == version
        ),
        "{seen_a:?}"
    );
    assert_eq!(
        seen_b,
        vec![Event::Adopted {
            session: "s".into(),
            version
        }]
    );
}

/// `Event::ReauthRequired`: "the verdict replaced its set in the store. Reported once, by the
/// process that reached it"; README: "the verdict replaces the set in the store, so every
/// process sees it; `Event::ReauthRequired` is sent once with the provider's code and the
/// authorize URL; `insert` ends it".
#[tokio::test(start_paused = true)]
async fn a_verdict_is_one_event_one_stored_record_and_no_call_from_the_other_process() {
    let (provider, a, b, store_a, _dir) = two_processes().await;
    b.access_token("s").await.unwrap();
    let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());

    provider.then(Step::Fail(invalid_grant()));
    tokio::time::advance(2 * HOUR).await;
    let error = a.access_token("s").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(error.provider_code(), Some("invalid_grant"));
    let verdict = stored(&*store_a).await.unwrap();
    assert_eq!(
        verdict.reauth().map(|v| v.code.as_deref()),
        Some(Some("invalid_grant")),
        "{verdict:?}"
    );

    let recorded = store_a.load(&key()).await.unwrap().unwrap().version;
    // The other process: the verdict from the store, with its code and URL, and no call.
    for round in 0..4 {
        for manager in [&a, &b] {
            let error = manager.access_token("s").await.unwrap_err();
            let reauth = error.reauth().expect("a re-auth error");
            assert_eq!(reauth.code.as_deref(), Some("invalid_grant"), "{round}");
            assert_eq!(
                reauth.authorize_url.as_deref(),
                Some("https://probe.example/authorize?state=s")
            );
        }
        tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    }
    assert_eq!(provider.calls(), 1, "the dead token is sent once");
    let version = store_a.load(&key()).await.unwrap().unwrap().version;
    assert_eq!(version, recorded, "the verdict is recorded once");

    let (seen_a, seen_b) = (drain(&mut events_a), drain(&mut events_b));
    let reauths: Vec<_> = seen_a
        .iter()
        .filter_map(|e| match e {
            Event::ReauthRequired(reauth) => Some(reauth),
            _ => None,
        })
        .collect();
    assert_eq!(reauths.len(), 1, "{seen_a:?}");
    assert_eq!(reauths[0].code.as_deref(), Some("invalid_grant"));
    assert_eq!(
        reauths[0].authorize_url.as_deref(),
        Some("https://probe.example/authorize?state=s")
    );
    assert_eq!(count(&seen_b, "reauth_required"), 0, "{seen_b:?}");

    // A login through the other process ends it here too, once this one looks again.
    b.insert("s", login(&b)).await.unwrap();
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    assert_eq!(served(&a).await, "at-login");
    assert_eq!(provider.calls(), 1);
    assert_eq!(count(&drain(&mut events_a), "reauth_required"), 0);
}

/// `refresh_rejected`: "returns a token to try again with: the current one if another caller
/// already replaced `rejected`, otherwise a refreshed one"; DESIGN: after a 401 the
/// middleware "forces one refresh (unless another caller already rotated)". Another
/// process's rotation is in the store: a 401 to the token it replaced takes that, with no
/// second refresh.
#[tokio::test(start_paused = true)]
async fn a_401_to_a_token_another_process_replaced_takes_its_set_without_a_refresh() {
    let (provider, a, b, _, _dir) = two_processes().await;
    let old = b.access_token("s").await.unwrap();
    assert_eq!(a.refresh_now("s").await.unwrap().expose_secret(), "at-1");
    assert_eq!(provider.calls(), 1);

    // The other process still serves the replaced token (it is fresh); the API refuses it.
    assert_eq!(b.access_token("s").await.unwrap(), old);
    let retry_with = b.refresh_rejected("s", &old).await.unwrap();
    assert_eq!(retry_with.expose_secret(), "at-1");
    assert_eq!(
        provider.calls(),
        1,
        "no second refresh for a replaced token"
    );
    // A late report about the same old token still refreshes nothing.
    let again = b.session("s").refresh_rejected(&old).await.unwrap();
    assert_eq!(again.expose_secret(), "at-1");
    assert_eq!(provider.calls(), 1);

    // The other way round: the API refuses the set this process took (its first refusal),
    // and then the first process's copy of it.
    let second = b.refresh_rejected("s", &retry_with).await.unwrap();
    assert_eq!(
        second.expose_secret(),
        "at-2",
        "one refresh for a token refused once"
    );
    assert_eq!(provider.calls(), 2);
    assert_eq!(a.access_token("s").await.unwrap(), retry_with);
    let from_a = a.refresh_rejected("s", &retry_with).await.unwrap();
    assert_eq!(from_a.expose_secret(), "at-2");
    assert_eq!(
        provider.calls(),
        2,
        "no second refresh for a replaced token"
    );
}

/// `refresh_rejected`: "A token this call obtained is answered again, not refreshed, if it
/// is refused within the failure cooldown", with the longest cooldown a `Duration` holds:
/// the token obtained after a 401 is answered again, without a panic of the refresh task.
#[tokio::test(start_paused = true)]
async fn a_401_within_the_longest_failure_cooldown_answers_the_token_obtained_after_one() {
    let provider = Arc::new(Scripted::default());
    let mut config = config();
    config.failure_cooldown = Duration::MAX;
    let manager = manager_with(&provider, Arc::new(MemoryStore::new()), config);
    manager.insert("s", first(HOUR)).await.unwrap();
    let refused = manager.access_token("s").await.unwrap();
    let fresh = manager.refresh_rejected("s", &refused).await.unwrap();
    assert_eq!(fresh.expose_secret(), "at-1");
    let again = manager.refresh_rejected("s", &fresh).await;
    assert_eq!(again.unwrap().expose_secret(), "at-1");
    assert_eq!(provider.calls(), 1);
}

/// Where the two managers of a race keep their sessions.
#[derive(Clone, Copy, Debug)]
enum Stores {
    /// A `MemoryStore` given to the first manager (which then keeps its sets in it, not
    /// copies), the second with one of its own.
    OwnedMemory,
    /// One `MemoryStore` shared by both managers.
    SharedMemory,
    /// A `FileStore` each, on one directory.
    File,
}

/// Two managers `a` and `b` of one gated provider, session `s` inserted through `a` and
/// expired, and `a`'s events from then on.
struct Race {
    provider: Arc<Scripted>,
    gate: Arc<Semaphore>,
    entered: mpsc::UnboundedReceiver<()>,
    a: TokenManager<Probe>,
    b: TokenManager<Probe>,
    /// What `a` stores in.
    store: Arc<dyn TokenStore>,
    events: broadcast::Receiver<Event>,
    _dir: tempfile::TempDir,
}

/// The races run: each store kind, the session changed through the refreshing manager or
/// through the other one.
const RACES: [(Stores, bool); 5] = [
    (Stores::OwnedMemory, false),
    (Stores::SharedMemory, false),
    (Stores::SharedMemory, true),
    (Stores::File, false),
    (Stores::File, true),
];

/// What the provider answers the refresh a race overtakes.
const ANSWERS: [&str; 3] = ["a new pair", "invalid_grant", "503"];

/// Every race with every answer, and its label.
fn race_cases() -> impl Iterator<Item = (Stores, bool, &'static str, String)> {
    RACES.into_iter().flat_map(|(stores, from_other)| {
        ANSWERS.map(|answer| {
            let label =
                format!("{stores:?}, from the other manager: {from_other}, answer: {answer}");
            (stores, from_other, answer, label)
        })
    })
}

impl Race {
    /// The overtaken refresh made one call, and reported no result of it: no set in use, no
    /// verdict, and no failure unless another process made the change (not seen before the
    /// store is read: the failure of the tokens this process holds is reported).
    fn nothing_reported(&mut self, from_other: bool, answer: &str, label: &str) {
        assert_eq!(self.provider.calls(), 1, "{label}");
        let seen = drain(&mut self.events);
        assert_eq!(count(&seen, "refreshed"), 0, "{label}: {seen:?}");
        assert_eq!(count(&seen, "reauth_required"), 0, "{label}: {seen:?}");
        let failed = usize::from(from_other && answer == "503");
        assert_eq!(count(&seen, "refresh_failed"), failed, "{label}: {seen:?}");
    }

    /// Scripts the provider's answer to the refresh (one of [`ANSWERS`]).
    fn answer(&self, answer: &str) {
        match answer {
            "invalid_grant" => self.provider.then(Step::Fail(invalid_grant())),
            "503" => self.provider.then(Step::Fail(unavailable())),
            _ => {}
        }
    }

    /// The manager that changes the session during the refresh.
    fn actor(&self, from_other: bool) -> TokenManager<Probe> {
        if from_other {
            self.b.clone()
        } else {
            self.a.clone()
        }
    }

    async fn new(stores: Stores) -> Self {
        let (provider, gate, entered) = gated();
        let dir = tempfile::TempDir::new().unwrap();
        let (a, b, store) = match stores {
            Stores::OwnedMemory => {
                let a = TokenManager::builder(Probe(provider.clone()))
                    .store(MemoryStore::new())
                    .shared_client(transport())
                    .clock(Arc::new(clock()))
                    .config(config())
                    .build()
                    .unwrap();
                let store = a.store().clone();
                let b = manager(&provider, Arc::new(MemoryStore::new()));
                (a, b, store)
            }
            Stores::SharedMemory => {
                let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
                let a = manager(&provider, store.clone());
                (a, manager(&provider, store.clone()), store)
            }
            Stores::File => {
                let store: Arc<dyn TokenStore> = Arc::new(FileStore::open(dir.path()).unwrap());
                let other = Arc::new(FileStore::open(dir.path()).unwrap());
                let a = manager(&provider, store.clone());
                (a, manager(&provider, other), store)
            }
        };
        a.insert("s", first(Duration::ZERO)).await.unwrap();
        let events = a.subscribe();
        Race {
            provider,
            gate,
            entered,
            a,
            b,
            store,
            events,
            _dir: dir,
        }
    }

    /// What `a.access_token("s")` answers when `meanwhile` runs while its refresh is at the
    /// provider.
    async fn meanwhile(
        &mut self,
        meanwhile: impl Future<Output = ()>,
    ) -> Result<AccessToken, Error> {
        let refreshing = tokio::spawn({
            let a = self.a.clone();
            async move { a.access_token("s").await }
        });
        self.entered.recv().await.unwrap();
        meanwhile.await;
        self.gate.add_permits(1);
        refreshing.await.unwrap()
    }
}

/// `insert`: "It wins over any refresh of the session already under way: that refresh's
/// result (or verdict, or failure) is dropped"; DESIGN invariant 4. Through this manager
/// (whatever its store) and through another process: the store keeps the login, and the
/// dropped result is not reported as a set in use.
#[tokio::test(start_paused = true)]
async fn an_insert_during_a_refresh_is_what_the_store_keeps() {
    for (stores, from_other, answer, label) in race_cases() {
        let mut race = Race::new(stores).await;
        race.answer(answer);
        let actor = race.actor(from_other);
        let answered = race
            .meanwhile(async { actor.insert("s", login(&actor)).await.unwrap() })
            .await;

        assert_eq!(
            stored_access(&*race.store).await.as_deref(),
            Some("at-login"),
            "{label}: the refresh's result overwrote the login"
        );
        if from_other {
            // A failure is answered again for the cooldown; then the store is read.
            tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
        }
        assert_eq!(served(&race.a).await, "at-login", "{label}");
        if !from_other {
            // Inserted here, the login is what the overtaken refresh's callers get.
            assert_eq!(answered.unwrap().expose_secret(), "at-login", "{label}");
        }
        race.nothing_reported(from_other, answer, &label);
    }
}

/// `remove`: "Forgets `session`: removes its set from the store and from memory. A refresh
/// under way neither brings it back nor reports on it."
#[tokio::test(start_paused = true)]
async fn a_remove_during_a_refresh_is_neither_undone_nor_reported() {
    for (stores, from_other, answer, label) in race_cases() {
        let mut race = Race::new(stores).await;
        race.answer(answer);
        let actor = race.actor(from_other);
        let answered = race
            .meanwhile(async { actor.remove("s").await.unwrap() })
            .await;

        assert!(
            stored(&*race.store).await.is_none(),
            "{label}: brought back"
        );
        if !from_other {
            // The callers of the refresh get the by-name call's answer for a removed session.
            assert!(
                matches!(answered, Err(Error::NoTokens(_))),
                "{label}: {answered:?}"
            );
            assert!(
                matches!(race.a.access_token("s").await, Err(Error::NoTokens(_))),
                "{label}"
            );
        }
        settle().await;
        race.nothing_reported(from_other, answer, &label);
        assert!(
            stored(&*race.store).await.is_none(),
            "{label}: brought back late"
        );
    }
}

/// `ManagerConfig::refresh_skew`: refresh that long before the access token expires (no
/// jitter here); `access_token`: "Near expiry, one background refresh starts and the current
/// token is returned."
#[tokio::test(start_paused = true)]
async fn the_refresh_ahead_of_expiry_starts_at_the_skew_and_serves_the_current_token() {
    let (provider, manager, _, mut events) = one_session(HOUR).await;

    tokio::time::advance(HOUR - Duration::from_secs(61)).await;
    assert_eq!(served(&manager).await, "at-0");
    settle().await;
    assert_eq!(provider.calls(), 0, "a minute and a second before expiry");

    tokio::time::advance(Duration::from_secs(1)).await;
    // At the skew: the current token, while one refresh starts in the background.
    for _ in 0..20 {
        assert_eq!(served(&manager).await, "at-0");
    }
    settle().await;
    assert_eq!(provider.calls(), 1);
    assert_eq!(served(&manager).await, "at-1");
    assert_eq!(count(&drain(&mut events), "refreshed"), 1);
}

/// `ManagerConfig::refresh_skew`: a token whose life is shorter than twice the skew is
/// refreshed at half its remaining life, not at once (so an answer that lives less than the
/// skew is not refreshed again and again); such an answer is no odd expiry.
#[tokio::test(start_paused = true)]
async fn a_token_living_less_than_twice_the_skew_is_refreshed_at_half_its_life() {
    let (provider, manager, _, mut events) = one_session(Duration::from_secs(60)).await;
    assert_eq!(
        calls_after(Duration::from_secs(29), &manager, &provider).await,
        0,
        "before half its life"
    );
    assert_eq!(
        calls_after(Duration::from_secs(1), &manager, &provider).await,
        1,
        "at half its life"
    );

    // The provider answers a token that lives 30 s (under the 60 s skew): used, refreshed
    // after 15 s, and no `ExpiryAdjusted`.
    provider.then(Step::Lives(Duration::from_secs(30)));
    manager.refresh_now("s").await.unwrap();
    assert_eq!(provider.calls(), 2);
    tokio::time::advance(Duration::from_secs(14)).await;
    assert_eq!(served(&manager).await, "at-2");
    settle().await;
    assert_eq!(provider.calls(), 2);
    assert_eq!(
        calls_after(Duration::from_secs(1), &manager, &provider).await,
        3
    );
    let seen = drain(&mut events);
    assert_eq!(count(&seen, "expiry_adjusted"), 0, "{seen:?}");
}

/// `ManagerConfig::default_access_lifetime`: "`None`: such a token is used until the API
/// refuses it"; `ExpiryNote::Unknown`: reported.
#[tokio::test(start_paused = true)]
async fn an_answer_without_expiry_is_used_until_the_api_refuses_it() {
    let (provider, manager, _, mut events) = one_session(Duration::ZERO).await;
    provider.then(Step::NoExpiry);
    let token = manager.access_token("s").await.unwrap();
    assert_eq!(token.expose_secret(), "at-1");
    let seen = drain(&mut events);
    assert_eq!(
        seen.iter()
            .filter(|e| matches!(
                e,
                Event::ExpiryAdjusted {
                    note: ExpiryNote::Unknown,
                    ..
                }
            ))
            .count(),
        1,
        "{seen:?}"
    );
    for _ in 0..10 {
        tokio::time::advance(30 * 24 * HOUR).await;
        assert_eq!(manager.access_token("s").await.unwrap(), token);
    }
    settle().await;
    assert_eq!(provider.calls(), 1, "no refresh without an expiry");
    let next = manager.refresh_rejected("s", &token).await.unwrap();
    assert_eq!(next.expose_secret(), "at-2");
    assert_eq!(provider.calls(), 2);
}

/// README: "an empty refresh token read as none (the previous one is kept)", for the set
/// a hand-written provider returns as for a declared answer: the previous refresh token is
/// stored and presented next, not the blank one.
#[tokio::test(start_paused = true)]
async fn a_blank_refresh_token_from_a_hand_written_provider_keeps_the_previous_one() {
    for blank in ["", "  "] {
        let (provider, manager, store, _events) = one_session(Duration::ZERO).await;
        provider.then(Step::BlankRefreshToken(blank));
        assert_eq!(served(&manager).await, "at-1");
        let record = stored(&*store).await.unwrap();
        let tokens = record.tokens().unwrap();
        assert_eq!(
            tokens.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some("rt-0"),
            "{blank:?}"
        );
        let kept = manager.token_set("s").await.unwrap().refresh_token;
        assert_eq!(kept.as_ref().map(|t| t.expose_secret()), Some("rt-0"));
    }
}

/// README: "an empty (or blank) access token is no answer ... unless a new refresh token
/// comes with it: then the refresh token is saved, the access token set aside (stored empty
/// and expired, never served)", for the set a hand-written provider returns as for a
/// declared answer: a blank bearer is never served.
#[tokio::test(start_paused = true)]
async fn a_blank_access_token_from_a_hand_written_provider_is_set_aside_never_served() {
    let (provider, manager, store, _events) = one_session(Duration::ZERO).await;
    provider.then(Step::BlankAccessToken);
    let answered = manager.access_token("s").await;
    let error = answered.expect_err("a blank bearer is not served");
    assert_eq!(error.kind(), ErrorKind::Rejected, "{error}");
    let record = stored(&*store).await.unwrap();
    let tokens = record.tokens().unwrap();
    assert_eq!(
        tokens.refresh_token.as_ref().map(|t| t.expose_secret()),
        Some("rt-1")
    );
    assert_eq!(tokens.access_token.expose_secret(), "");
    tokio::time::advance(config().failure_cooldown).await;
    assert_eq!(served(&manager).await, "at-2");
    assert_eq!(provider.calls(), 2);
}

/// README: "A rotated set is saved ... before anyone uses it"; DESIGN: "A response without a
/// refresh token keeps the previous one"; `Event::Refreshed::rotated`: "The provider sent a
/// new refresh token".
#[tokio::test(start_paused = true)]
async fn an_answer_without_a_refresh_token_keeps_and_stores_the_previous_one() {
    let (provider, manager, store, mut events) = one_session(Duration::ZERO).await;
    provider.then(Step::KeepRefreshToken);
    assert_eq!(served(&manager).await, "at-1");
    let record = stored(&*store).await.unwrap();
    let tokens = record.tokens().unwrap();
    assert_eq!(tokens.access_token.expose_secret(), "at-1");
    assert_eq!(
        tokens.refresh_token.as_ref().map(|t| t.expose_secret()),
        Some("rt-0")
    );
    let seen = drain(&mut events);
    assert!(
        matches!(
            &seen[..],
            [Event::Refreshed {
                rotated: false,
                issued: false,
                version: Some(_),
                ..
            }]
        ),
        "{seen:?}"
    );
}

/// `ManagerConfig::failure_cooldown`: "After a failed ahead-of-expiry refresh, wait this long
/// before trying again (the current token is still valid meanwhile)"; `Event::RefreshFailed`:
/// "A refresh failed; the session keeps its current set."
#[tokio::test(start_paused = true)]
async fn a_failed_refresh_ahead_of_expiry_keeps_the_token_and_waits_the_cooldown() {
    let (provider, manager, _, mut events) = one_session(Duration::from_secs(600)).await;
    tokio::time::advance(Duration::from_secs(560)).await;
    provider.then(Step::Fail(unavailable()));
    let cooldown = ManagerConfig::default().failure_cooldown;
    for _ in 0..50 {
        assert_eq!(served(&manager).await, "at-0");
        settle().await;
    }
    assert_eq!(provider.calls(), 1);
    let seen = drain(&mut events);
    assert_eq!(count(&seen, "refresh_failed"), 1, "{seen:?}");
    assert!(
        matches!(
            &seen[0],
            Event::RefreshFailed {
                kind: ErrorKind::Transient,
                ..
            }
        ),
        "{seen:?}"
    );
    tokio::time::advance(cooldown - Duration::from_millis(1)).await;
    assert_eq!(served(&manager).await, "at-0");
    settle().await;
    assert_eq!(provider.calls(), 1, "inside the cooldown");
    assert_eq!(
        calls_after(Duration::from_millis(1), &manager, &provider).await,
        2,
        "after the cooldown"
    );
    assert_eq!(served(&manager).await, "at-1");
}

/// `TokenManager` rustdoc: "Each session is refreshed by one task at a time"; README:
/// "exactly one refresh runs per session". A herd on an expired token: one call, one
/// `Refreshed`.
#[tokio::test(start_paused = true)]
async fn a_herd_on_an_expired_token_is_one_call_and_one_event() {
    let (provider, manager, _, mut events) = one_session(Duration::ZERO).await;
    let mut herd = tokio::task::JoinSet::new();
    for i in 0..64 {
        let manager = manager.clone();
        herd.spawn(async move {
            match i % 3 {
                0 => manager.access_token("s").await,
                1 => manager.session("s").access_token().await,
                _ => manager.refresh_now("s").await,
            }
        });
    }
    while let Some(token) = herd.join_next().await {
        assert_eq!(token.unwrap().unwrap().expose_secret(), "at-1");
    }
    assert_eq!(provider.calls(), 1);
    let seen = drain(&mut events);
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].name(), "refreshed");
}

/// `shutdown`: "Afterwards fresh tokens are still served, but every call that needs a
/// refresh fails with [`Error::ShuttingDown`]."
#[tokio::test(start_paused = true)]
async fn after_shutdown_fresh_tokens_are_served_and_refreshes_refused_without_a_call() {
    let provider = Arc::new(Scripted::default());
    let manager = manager(&provider, Arc::new(MemoryStore::new()));
    manager.insert("fresh", first(HOUR)).await.unwrap();
    manager
        .insert("stale", first(Duration::ZERO))
        .await
        .unwrap();
    manager.shutdown(Duration::from_secs(1)).await.unwrap();
    assert_eq!(
        manager.access_token("fresh").await.unwrap().expose_secret(),
        "at-0"
    );
    assert!(matches!(
        manager.access_token("stale").await,
        Err(Error::ShuttingDown)
    ));
    assert!(matches!(
        manager.refresh_now("fresh").await,
        Err(Error::ShuttingDown)
    ));
    let at0 = AccessToken::new("at-0");
    assert!(matches!(
        manager.refresh_rejected("fresh", &at0).await,
        Err(Error::ShuttingDown)
    ));
    assert_eq!(provider.calls(), 0);
}

/// `insert_refresh_token`: "refreshes at once, so a refresh token the provider refuses is
/// known now"; invariant 1: the verdict is recorded in the store, and reported once.
#[tokio::test(start_paused = true)]
async fn a_refused_login_by_refresh_token_is_known_at_once_and_recorded() {
    let provider = Arc::new(Scripted::default());
    let store: Arc<dyn TokenStore> = Arc::new(MemoryStore::new());
    let manager = manager(&provider, store.clone());
    let mut events = manager.subscribe();
    provider.then(Step::Fail(invalid_grant()));
    let error = manager
        .insert_refresh_token("s", RefreshToken::new("rt-refused"))
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert!(stored(&*store).await.unwrap().reauth().is_some());
    for _ in 0..5 {
        assert_eq!(
            manager.access_token("s").await.unwrap_err().kind(),
            ErrorKind::ReauthRequired
        );
    }
    assert_eq!(provider.calls(), 1);
    assert_eq!(count(&drain(&mut events), "reauth_required"), 1);
}

/// `Event::Refreshed::issued`: "The set was issued anew (client credentials, account key)
/// rather than refreshed."
#[tokio::test(start_paused = true)]
async fn a_set_issued_for_a_new_session_is_reported_as_issued() {
    let provider = Arc::new(Scripted {
        can_issue: true,
        ..Scripted::default()
    });
    let manager = manager(&provider, Arc::new(MemoryStore::new()));
    let mut events = manager.subscribe();
    assert_eq!(served(&manager).await, "at-1");
    let seen = drain(&mut events);
    assert!(
        matches!(&seen[..], [Event::Refreshed { issued: true, .. }]),
        "{seen:?}"
    );
}

/// Invariant 2: "a refresh token is never sent ... without a re-read"; the rules for bad
/// input: a typed error, never a lost stored token. A record damaged under a session this
/// process has cached: the refresh's re-read fails as a store error, no token is sent, and
/// the record is left as it is.
#[tokio::test(start_paused = true)]
async fn a_record_damaged_under_a_cached_session_is_a_store_error_and_left_as_it_is() {
    let provider = Arc::new(Scripted::default());
    let dir = tempfile::TempDir::new().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::open(dir.path()).unwrap());
    let manager = manager(&provider, store.clone());
    manager.insert("s", first(HOUR)).await.unwrap();
    let (record, damaged) = damage_the_record(dir.path());

    tokio::time::advance(2 * HOUR).await;
    for _ in 0..3 {
        let error = manager.access_token("s").await.unwrap_err();
        assert!(
            matches!(error, Error::Store(StoreError::Corrupt(_))),
            "{error:?}"
        );
        assert_eq!(error.kind(), ErrorKind::Transient);
        tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    }
    assert_eq!(
        provider.calls(),
        0,
        "no token sent without a readable re-read"
    );
    assert_eq!(std::fs::read(&record).unwrap(), damaged);
}

/// Both managers call at once on an expired token (one `FileStore` directory), for a rotation
/// and for a refusal: one provider call; one `Refreshed` in all and one `Adopted` (the other
/// process took the stored set), or one `ReauthRequired` in all ("Reported once, by the
/// process that reached it").
#[tokio::test(start_paused = true)]
async fn two_processes_racing_on_an_expired_token_report_it_once_between_them() {
    for refused in [false, true] {
        let (provider, a, b, _, _dir) = two_processes().await;
        b.access_token("s").await.unwrap();
        let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());
        if refused {
            provider.then(Step::Fail(invalid_grant()));
        }
        tokio::time::advance(2 * HOUR).await;
        let mut callers = tokio::task::JoinSet::new();
        for i in 0..16 {
            let manager = if i % 2 == 0 { a.clone() } else { b.clone() };
            callers.spawn(async move { manager.access_token("s").await });
        }
        while let Some(answer) = callers.join_next().await {
            match answer.unwrap() {
                Ok(token) => assert!(!refused && token.expose_secret() == "at-1"),
                Err(error) => assert!(refused && error.kind() == ErrorKind::ReauthRequired),
            }
        }
        assert_eq!(provider.calls(), 1, "refused: {refused}");
        let mut seen = drain(&mut events_a);
        seen.extend(drain(&mut events_b));
        let expected: &[(&str, usize)] = if refused {
            &[("reauth_required", 1), ("refreshed", 0), ("adopted", 0)]
        } else {
            &[("refreshed", 1), ("adopted", 1), ("reauth_required", 0)]
        };
        for (name, times) in expected {
            assert_eq!(
                count(&seen, name),
                *times,
                "{name}, refused: {refused}: {seen:?}"
            );
        }
    }
}

/// A store whose next `failing` saves fail (a database outage), over a `MemoryStore`.
struct FlakyStore {
    inner: MemoryStore,
    failing: AtomicU32,
}

#[async_trait]
impl TokenStore for FlakyStore {
    async fn load(
        &self,
        key: &SessionKey,
    ) -> Result<Option<token_core::store::Versioned<StoredRecord>>, StoreError> {
        self.inner.load(key).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<token_core::store::Version>,
    ) -> Result<token_core::store::Version, StoreError> {
        let failing = self.failing.load(Ordering::SeqCst);
        if failing > 0 {
            self.failing.store(failing - 1, Ordering::SeqCst);
            return Err(StoreError::backend(
                "the database is down",
                std::io::Error::other("connection refused"),
            ));
        }
        self.inner.save(key, record, expected).await
    }

    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<token_core::store::Version>,
    ) -> Result<bool, StoreError> {
        self.inner.delete(key, expected).await
    }
}

/// README: "if the save fails, the new set is used anyway ..., saved again in the background,
/// and `Event::PersistFailed`/`Persisted` say so"; `Event::Refreshed::version`: "`None` when
/// saving failed"; `ManagerConfig::save_retries`: "After this many failed attempts to save a
/// set in the background, `PersistFailed` is reported again"; `shutdown`: "waits ... for the
/// background saves of sets whose save had failed", and "Returns
/// [`Error::ShutdownTimedOut`] if work was still running at the deadline".
#[tokio::test(start_paused = true)]
async fn a_set_whose_save_failed_is_reported_saved_again_and_waited_for_by_shutdown() {
    for heals in [true, false] {
        let provider = Arc::new(Scripted::default());
        let store = Arc::new(FlakyStore {
            inner: MemoryStore::new(),
            failing: AtomicU32::new(0),
        });
        let manager = manager_with(&provider, store.clone(), config().with_save_retries(3));
        manager.insert("s", first(Duration::ZERO)).await.unwrap();
        let mut events = manager.subscribe();
        // The refresh's save and seven background attempts fail, or every save does.
        let failing = if heals { 8 } else { u32::MAX };
        store.failing.store(failing, Ordering::SeqCst);
        assert_eq!(served(&manager).await, "at-1");
        assert_eq!(stored_access(&*store).await.as_deref(), Some("at-0"));

        let stopped = manager.shutdown(Duration::from_secs(3600)).await;
        let seen = drain(&mut events);
        assert_eq!(provider.calls(), 1);
        assert_eq!(
            seen.iter()
                .filter(|e| matches!(e, Event::Refreshed { version: None, .. }))
                .count(),
            1,
            "{seen:?}"
        );
        if heals {
            stopped.unwrap();
            let saved = store.load(&key()).await.unwrap().unwrap();
            assert_eq!(
                saved.value.tokens().unwrap().access_token.expose_secret(),
                "at-1"
            );
            // Reported at the refresh's failure, and after the 3rd and 6th background one.
            assert_eq!(count(&seen, "persist_failed"), 3, "{seen:?}");
            let persisted: Vec<_> = seen
                .iter()
                .filter_map(|e| match e {
                    Event::Persisted { version, .. } => Some(*version),
                    _ => None,
                })
                .collect();
            assert_eq!(persisted, vec![saved.version], "{seen:?}");
        } else {
            assert!(
                matches!(stopped, Err(Error::ShutdownTimedOut { pending }) if pending >= 1),
                "{stopped:?}"
            );
            assert_eq!(count(&seen, "persisted"), 0, "{seen:?}");
            assert_eq!(stored_access(&*store).await.as_deref(), Some("at-0"));
        }
    }
}

/// `RetryPolicy::deadline`: "No call starts later than this after the first";
/// `max_attempts`: "Calls at most, the first included".
#[tokio::test(start_paused = true)]
async fn no_retry_starts_after_the_deadline() {
    let provider = Arc::new(Scripted::default());
    let retry = RetryPolicy::default()
        .with_max_attempts(100)
        .with_backoff(Duration::from_secs(10), Duration::from_secs(10))
        .with_deadline(Duration::from_secs(25));
    let manager = manager_with(
        &provider,
        Arc::new(MemoryStore::new()),
        config().with_retry(retry),
    );
    manager.insert("s", first(Duration::ZERO)).await.unwrap();
    for _ in 0..100 {
        provider.then(Step::Fail(unavailable()));
    }
    let started = tokio::time::Instant::now();
    let error = manager.access_token("s").await.unwrap_err();
    assert!(
        matches!(error, Error::RetriesExhausted { attempts, .. } if attempts == provider.calls()),
        "{error:?}"
    );
    assert!(provider.calls() >= 3, "{}", provider.calls());
    let times = provider.times.lock().unwrap().clone();
    let last = *times.last().unwrap();
    assert!(
        last - times[0] <= Duration::from_secs(25),
        "a call {:?} after the first",
        last - times[0]
    );
    assert!(started.elapsed() <= Duration::from_secs(25));
}

/// `FileStore`: "`delete(key, None)` removes even a corrupt record, so it can be cleared";
/// `remove`: "removes its set from the store and from memory". A session whose record is
/// damaged is removed, and is then a session without tokens.
#[tokio::test(start_paused = true)]
async fn a_session_whose_record_is_damaged_can_be_removed() {
    let provider = Arc::new(Scripted::default());
    let dir = tempfile::TempDir::new().unwrap();
    let store: Arc<dyn TokenStore> = Arc::new(FileStore::open(dir.path()).unwrap());
    let manager = manager(&provider, store.clone());
    manager.insert("s", first(HOUR)).await.unwrap();
    damage_the_record(dir.path());
    let fresh = self::manager(&provider, store.clone());
    assert!(matches!(
        fresh.access_token("s").await,
        Err(Error::Store(StoreError::Corrupt(_)))
    ));
    fresh.remove("s").await.unwrap();
    assert!(stored(&*store).await.is_none());
    // The first manager (another process) sees the remove once its token needs a refresh.
    tokio::time::advance(2 * HOUR).await;
    for manager in [&manager, &fresh] {
        assert!(matches!(
            manager.access_token("s").await,
            Err(Error::NoTokens(_))
        ));
    }
    assert_eq!(provider.calls(), 0);
}

/// Up to ten virtual minutes (the paused clock), until `manager` serves `expected` for `s`.
async fn until_served(manager: &TokenManager<Probe>, expected: &str) {
    for _ in 0..600 {
        if served(manager).await == expected {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("{expected} was never served");
}

/// README: "Near expiry ... exactly one refresh runs per session, in its own task, while
/// callers keep the still-valid token", across processes on one `FileStore`: both managers
/// reach the skew together, both keep serving the current token, one call is made, and the
/// other process takes its result.
#[tokio::test(start_paused = true)]
async fn two_processes_at_the_skew_keep_the_current_token_and_refresh_once() {
    let (provider, a, b, _, _dir) = two_processes().await;
    b.access_token("s").await.unwrap();
    let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());
    tokio::time::advance(HOUR - Duration::from_secs(60)).await;
    for manager in [&a, &b, &a, &b] {
        assert_eq!(served(manager).await, "at-0");
    }
    until_served(&a, "at-1").await;
    until_served(&b, "at-1").await;
    assert_eq!(provider.calls(), 1);
    let mut seen = drain(&mut events_a);
    seen.extend(drain(&mut events_b));
    assert_eq!(count(&seen, "refreshed"), 1, "{seen:?}");
    assert_eq!(count(&seen, "adopted"), 1, "{seen:?}");
}

/// `insert_refresh_token`: "stores it, like `insert`, and refreshes at once"; the stored
/// placeholder has no access token to serve: another process asking meanwhile waits for the
/// first refresh and takes its set, with one provider call.
#[tokio::test(start_paused = true)]
async fn a_login_by_refresh_token_is_refreshed_once_while_another_process_asks_for_it() {
    let (provider, gate, mut entered) = gated();
    let (_dir, store_a, store_b) = file_stores();
    let a = manager(&provider, store_a);
    let b = manager(&provider, store_b);
    let login = tokio::spawn({
        let a = a.clone();
        async move {
            a.insert_refresh_token("s", RefreshToken::new("rt-login"))
                .await
        }
    });
    entered.recv().await.unwrap();
    let asking = tokio::spawn({
        let b = b.clone();
        async move { b.access_token("s").await }
    });
    settle().await;
    gate.add_permits(1);
    assert_eq!(login.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(asking.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(provider.calls(), 1);
}

/// `refresh_now`: "Refreshes now, whatever the expiry, unless a refresh is already under way
/// (whose result is then shared)".
#[tokio::test(start_paused = true)]
async fn refresh_now_shares_a_refresh_under_way_and_otherwise_refreshes() {
    let (provider, gate, mut entered) = gated();
    let manager = manager(&provider, Arc::new(MemoryStore::new()));
    manager.insert("s", first(HOUR)).await.unwrap();
    tokio::time::advance(HOUR - Duration::from_secs(30)).await;
    // The refresh ahead of expiry starts in the background.
    assert_eq!(served(&manager).await, "at-0");
    entered.recv().await.unwrap();
    let forced = tokio::spawn({
        let manager = manager.clone();
        async move { manager.refresh_now("s").await }
    });
    settle().await;
    gate.add_permits(1);
    assert_eq!(forced.await.unwrap().unwrap().expose_secret(), "at-1");
    assert_eq!(provider.calls(), 1, "shared");
    // Nothing under way: a fresh token is refreshed all the same.
    gate.add_permits(1);
    assert_eq!(
        manager.refresh_now("s").await.unwrap().expose_secret(),
        "at-2"
    );
    assert_eq!(provider.calls(), 2);
}

/// README: "A `Retry-After` is remembered for the session ... without calling the provider";
/// `RetryPolicy::max_backoff`: "a longer `Retry-After` is honoured". Asked to wait during a
/// refresh ahead of expiry, the manager keeps serving the still valid token and calls the
/// provider again only once the wait is over, though `failure_cooldown` is shorter.
#[tokio::test(start_paused = true)]
async fn a_retry_after_during_a_refresh_ahead_of_expiry_is_waited_out_with_the_current_token() {
    let (provider, manager, _, mut events) = one_session(Duration::from_secs(600)).await;
    // Longer than the cooldown, within the token's life after the skew (60 s).
    let wait = Duration::from_secs(30);
    provider.then(Step::Fail(
        EndpointError::from(
            ProviderError::new(ErrorKind::Transient, StatusCode::TOO_MANY_REQUESTS, "429")
                .with_retry_after(Some(wait)),
        )
        .into(),
    ));
    tokio::time::advance(Duration::from_secs(540)).await;
    for _ in 0..(wait.as_secs() - 1) {
        assert_eq!(served(&manager).await, "at-0");
        settle().await;
        tokio::time::advance(Duration::from_secs(1)).await;
    }
    assert_eq!(
        provider.calls(),
        1,
        "asked again before the Retry-After was over"
    );
    assert_eq!(
        calls_after(Duration::from_secs(1), &manager, &provider).await,
        2
    );
    assert_eq!(served(&manager).await, "at-1");
    assert_eq!(count(&drain(&mut events), "refresh_failed"), 1);
}

/// README: "A panic in a refresh ...: the callers of that refresh get an error
/// (`RefreshAborted`), the refresh lease is given back, and a later call starts a new one (a
/// refresh that panicked is answered again for `failure_cooldown`, as a provider's failure
/// is, so a provider whose code always panics is not called once per caller)".
#[tokio::test(start_paused = true)]
async fn a_panicking_provider_is_asked_once_per_failure_cooldown() {
    let provider = Arc::new(Scripted::default());
    let (_dir, store_a, store_b) = file_stores();
    let a = manager(&provider, store_a);
    let b = manager(&provider, store_b);
    a.insert("s", first(Duration::ZERO)).await.unwrap();
    provider.then(Step::Panic);
    for _ in 0..10 {
        assert!(
            matches!(
                a.access_token("s").await,
                Err(Error::RefreshAborted(AbortReason::Panicked))
            ),
            "answered again for the cooldown"
        );
    }
    assert_eq!(provider.calls(), 1);
    // The lease was given back: the other process refreshes at once.
    assert_eq!(served(&b).await, "at-1");
    assert_eq!(provider.calls(), 2);
    tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
    assert_eq!(served(&a).await, "at-1");
    assert_eq!(provider.calls(), 2, "the other process's set is taken");
}

/// DESIGN invariant 1: "the verdict is recorded once in the store, and every process sees it
/// there"; README: "other processes see it on their next look and neither call the provider
/// with the dead token nor report it again". The store fails the moment the verdict is to be
/// recorded, then heals: the verdict still reaches the store, and another process sends
/// nothing.
#[tokio::test(start_paused = true)]
async fn a_verdict_the_store_failed_to_record_is_recorded_once_it_heals() {
    let provider = Arc::new(Scripted::default());
    let store = Arc::new(FlakyStore {
        inner: MemoryStore::new(),
        failing: AtomicU32::new(0),
    });
    let a = manager(&provider, store.clone());
    a.insert("s", first(Duration::ZERO)).await.unwrap();
    let mut events_a = a.subscribe();
    // The provider refuses the dead token whoever sends it.
    provider.then(Step::Fail(invalid_grant()));
    provider.then(Step::Fail(invalid_grant()));
    store.failing.store(1, Ordering::SeqCst);
    assert_eq!(
        a.access_token("s").await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    assert_eq!(provider.calls(), 1);
    for _ in 0..3 {
        tokio::time::advance(ManagerConfig::default().failure_cooldown).await;
        assert_eq!(
            a.access_token("s").await.unwrap_err().kind(),
            ErrorKind::ReauthRequired
        );
    }
    let b = manager(&provider, store.clone());
    let mut events_b = b.subscribe();
    let answer = b.access_token("s").await;
    let record = stored(&*store).await;
    assert_eq!(count(&drain(&mut events_a), "reauth_required"), 1);
    assert!(
        record.as_ref().is_some_and(|r| r.reauth().is_some()),
        "the verdict never reached the store: {record:?}"
    );
    assert_eq!(answer.unwrap_err().kind(), ErrorKind::ReauthRequired);
    assert_eq!(provider.calls(), 1, "the other process sent the dead token");
    assert_eq!(count(&drain(&mut events_b), "reauth_required"), 0);
}

/// DESIGN: "graceful shutdown persists every refresh in flight". A verdict the store failed
/// to record is a refresh's result not yet persisted: `shutdown` right after it (before the
/// background retry's first wait is over) still records it once the store answers.
#[tokio::test(start_paused = true)]
async fn shutdown_records_a_verdict_the_store_failed_to_record() {
    let provider = Arc::new(Scripted::default());
    let store = Arc::new(FlakyStore {
        inner: MemoryStore::new(),
        failing: AtomicU32::new(0),
    });
    let a = manager(&provider, store.clone());
    a.insert("s", first(Duration::ZERO)).await.unwrap();
    provider.then(Step::Fail(invalid_grant()));
    provider.then(Step::Fail(invalid_grant()));
    store.failing.store(1, Ordering::SeqCst);
    assert_eq!(
        a.access_token("s").await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    a.shutdown(Duration::from_secs(30)).await.unwrap();
    let record = stored(&*store).await;
    assert!(
        record.as_ref().is_some_and(|r| r.reauth().is_some()),
        "shutdown returned with the verdict unrecorded: {record:?}"
    );
    let b = manager(&provider, store.clone());
    assert_eq!(
        b.access_token("s").await.unwrap_err().kind(),
        ErrorKind::ReauthRequired
    );
    assert_eq!(provider.calls(), 1, "the next process sent the dead token");
}

/// `NoResend`: "the 401 is returned, and the token is refreshed for the next request (a
/// refresh that fails returns its error instead)"; `RefreshOnly`: "after a 401 the token is
/// refreshed for the next request and the 401 is returned". The tower layer, with a refresh
/// after the 401 that the provider refuses: the refusal is the answer, the request was sent
/// once, and the dead token is sent to the provider once.
#[cfg(feature = "tower")]
#[tokio::test(start_paused = true)]
async fn after_a_401_a_failed_refresh_is_the_tower_layers_answer_and_nothing_is_resent() {
    use token_core::middleware::NoResend;
    use token_core::tower::{BearerError, BearerLayer, RefreshOnly};
    use tower::{Service, ServiceBuilder, ServiceExt, service_fn};

    for (no_resend, refresh_only) in [(true, false), (false, true), (false, false)] {
        let label = format!("NoResend: {no_resend}, RefreshOnly: {refresh_only}");
        let (provider, manager, _, _) = one_session(HOUR).await;
        provider.then(Step::Fail(invalid_grant()));
        let sent = Arc::new(AtomicU32::new(0));
        let api = service_fn({
            let sent = sent.clone();
            move |_: http::Request<String>| {
                sent.fetch_add(1, Ordering::SeqCst);
                let mut refused = http::Response::new(String::new());
                *refused.status_mut() = StatusCode::UNAUTHORIZED;
                async move { Ok::<_, std::convert::Infallible>(refused) }
            }
        });
        let layer = BearerLayer::new(manager.clone(), "s");
        let mut request = http::Request::new("pay once".to_owned());
        if no_resend {
            request.extensions_mut().insert(NoResend);
        }
        let answer = if refresh_only {
            let mut client = ServiceBuilder::new()
                .layer(layer.resend(RefreshOnly))
                .service(api);
            client.ready().await.unwrap().call(request).await
        } else {
            let mut client = ServiceBuilder::new().layer(layer).service(api);
            client.ready().await.unwrap().call(request).await
        };
        match answer {
            Err(BearerError::Token(error)) => {
                assert_eq!(error.kind(), ErrorKind::ReauthRequired, "{label}")
            }
            Err(BearerError::Inner(never)) => match never {},
            Ok(response) => panic!("{label}: {}", response.status()),
        }
        assert_eq!(sent.load(Ordering::SeqCst), 1, "{label}");
        assert_eq!(provider.calls(), 1, "{label}");
    }
}

/// `ManagerConfig::skew_jitter`: "Refresh up to this much earlier again, chosen at random
/// per token set": every session's refresh ahead of expiry starts within
/// `[expiry - skew - jitter, expiry - skew]`.
#[tokio::test(start_paused = true)]
async fn the_refresh_ahead_of_expiry_starts_within_the_skew_and_its_jitter() {
    let provider = Arc::new(Scripted::default());
    let config = config().with_refresh_skew(Duration::from_secs(60), Duration::from_secs(30));
    let manager = manager_with(&provider, Arc::new(MemoryStore::new()), config);
    let sessions: Vec<String> = (0..16).map(|i| format!("s{i}")).collect();
    for name in &sessions {
        manager.insert(name, first(HOUR)).await.unwrap();
    }
    tokio::time::advance(HOUR - Duration::from_secs(91)).await;
    for name in &sessions {
        manager.access_token(name).await.unwrap();
    }
    settle().await;
    assert_eq!(provider.calls(), 0, "earlier than the skew and its jitter");
    for _ in 0..31 {
        tokio::time::advance(Duration::from_secs(1)).await;
        for name in &sessions {
            manager.access_token(name).await.unwrap();
        }
        settle().await;
    }
    assert_eq!(provider.calls(), 16, "one refresh each, by the skew");
}

/// A 401 in one process leads to a verdict; the other process, still holding the same
/// (unexpired) token, meets a 401 too: it finds the verdict in the store, sends nothing and
/// reports nothing ("Reported once, by the process that reached it").
#[tokio::test(start_paused = true)]
async fn a_401_after_another_process_reached_a_verdict_sends_and_reports_nothing() {
    let (provider, a, b, _, _dir) = two_processes().await;
    let token = b.access_token("s").await.unwrap();
    let mut events_b = b.subscribe();
    provider.then(Step::Fail(invalid_grant()));
    provider.then(Step::Fail(invalid_grant()));
    let error = a.refresh_rejected("s", &token).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(provider.calls(), 1);
    let error = b.refresh_rejected("s", &token).await.unwrap_err();
    assert_eq!(error.provider_code(), Some("invalid_grant"));
    assert_eq!(provider.calls(), 1, "the dead token is sent once");
    assert_eq!(count(&drain(&mut events_b), "reauth_required"), 0);
}

/// `Event::ExpiryAdjusted`: "The provider's answer had an odd expiry": reported by the
/// process that got the answer, once; the process that takes the stored set reports only
/// `Adopted`.
#[tokio::test(start_paused = true)]
async fn an_odd_expiry_is_reported_once_by_the_process_that_got_the_answer() {
    let (provider, a, b, _, _dir) = two_processes().await;
    b.access_token("s").await.unwrap();
    let (mut events_a, mut events_b) = (a.subscribe(), b.subscribe());
    provider.then(Step::NoExpiry);
    tokio::time::advance(2 * HOUR).await;
    assert_eq!(served(&a).await, "at-1");
    assert_eq!(served(&b).await, "at-1");
    tokio::time::advance(30 * 24 * HOUR).await;
    for manager in [&a, &b] {
        assert_eq!(served(manager).await, "at-1");
    }
    assert_eq!(provider.calls(), 1);
    let (seen_a, seen_b) = (drain(&mut events_a), drain(&mut events_b));
    let names = |seen: &[Event]| seen.iter().map(Event::name).collect::<Vec<_>>();
    assert_eq!(
        names(&seen_a),
        ["refreshed", "expiry_adjusted"],
        "{seen_a:?}"
    );
    assert_eq!(names(&seen_b), ["adopted"], "{seen_b:?}");
}

/// A verdict waiting to be recorded (the store failed it) gives way to what the application
/// did since: a remove stays a remove, an insert's login stays in the store (README: "`insert`
/// ends it"; `remove`: nothing "brings it back").
#[tokio::test(start_paused = true)]
async fn a_verdict_waiting_to_be_recorded_gives_way_to_a_remove_or_an_insert() {
    for insert in [false, true] {
        let provider = Arc::new(Scripted::default());
        let store = Arc::new(FlakyStore {
            inner: MemoryStore::new(),
            failing: AtomicU32::new(0),
        });
        let manager = manager(&provider, store.clone());
        manager.insert("s", first(Duration::ZERO)).await.unwrap();
        provider.then(Step::Fail(invalid_grant()));
        // The verdict's save and the next few fail.
        store.failing.store(3, Ordering::SeqCst);
        assert!(manager.access_token("s").await.is_err());
        store.failing.store(0, Ordering::SeqCst);
        if insert {
            manager.insert("s", login(&manager)).await.unwrap();
        } else {
            manager.remove("s").await.unwrap();
        }
        tokio::time::advance(Duration::from_secs(600)).await;
        settle().await;
        let expected = insert.then_some("at-login");
        assert_eq!(
            stored_access(&*store).await.as_deref(),
            expected,
            "insert: {insert}"
        );
        if !insert {
            assert!(stored(&*store).await.is_none(), "no verdict written back");
        }
    }
}

/// `BearerAuth`: after a 401 "it asks the manager for a new token ... and resends the request
/// once"; `NoResend`: "the 401 is returned, and the token is refreshed for the next request
/// (a refresh that fails returns its error instead)". An API on 127.0.0.1 that answers 401 to
/// everything, and a provider that refuses the refresh: the refusal is the answer, the
/// request was sent once, the dead token sent to the provider once.
#[cfg(feature = "middleware")]
#[tokio::test]
async fn after_a_401_a_failed_refresh_is_the_middlewares_answer_and_nothing_is_resent() {
    use token_core::middleware::{BearerAuth, NoResend};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/pay", listener.local_addr().unwrap());
    let sent = Arc::new(AtomicU32::new(0));
    tokio::spawn({
        let sent = sent.clone();
        async move {
            // Every request on its own connection, each read to the end of its headers.
            for _ in 0..16 {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let mut head = Vec::new();
                let mut buf = [0u8; 1024];
                while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => break,
                        Ok(n) => head.extend_from_slice(&buf[..n]),
                    }
                }
                sent.fetch_add(1, Ordering::SeqCst);
                let answer =
                    b"HTTP/1.1 401 Unauthorized\r\ncontent-length: 0\r\nconnection: close\r\n\r\n";
                let _ = socket.write_all(answer).await;
            }
        }
    });
    for no_resend in [true, false] {
        sent.store(0, Ordering::SeqCst);
        let (provider, manager, _, _) = one_session(HOUR).await;
        provider.then(Step::Fail(invalid_grant()));
        let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
            .with(BearerAuth::new(manager, "s"))
            .build();
        let mut request = client.post(&url).body("pay once");
        if no_resend {
            request = request.with_extension(NoResend);
        }
        let error = request.send().await.unwrap_err();
        let reauth = match &error {
            reqwest_middleware::Error::Middleware(error) => error.downcast_ref::<Error>(),
            reqwest_middleware::Error::Reqwest(_) => None,
        };
        assert_eq!(
            reauth.map(Error::kind),
            Some(ErrorKind::ReauthRequired),
            "NoResend: {no_resend}: {error}"
        );
        assert_eq!(sent.load(Ordering::SeqCst), 1, "NoResend: {no_resend}");
        assert_eq!(provider.calls(), 1, "NoResend: {no_resend}");
    }
}
