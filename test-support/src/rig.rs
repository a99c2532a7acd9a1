//! One provider under test ([`Subject`]): its sandbox and a manager over it ([`Rig`]), built
//! from an [`Env`] that chooses the clock, the transport (in process or a real socket), the
//! retry policy and where the provider sends its calls, and that records every token the
//! issuer minted, every refresh token the manager saved and every event.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use token_core::sandbox::{Failure, RunningSandbox, Sandbox, SandboxBuilder};
use token_core::store::{SessionKey, TokenStore};
use token_core::{
    clock::Clock, clock::ManualClock, error::Error, issuer::IssuerConfig, manager::RetryPolicy,
    manager::TokenManager, provider::Provider, secret::AccessToken, token_set::StoredTokenSet,
    token_set::TokenSet, transport::HttpClient, transport::ReqwestClient,
};

use crate::events::EventLog;
use crate::harness::manager_config;
use crate::stores::{RecordingIssuerStore, RecordingStore};

/// The session every single-session test uses.
pub const SESSION: &str = "customer-7";

/// How the manager reaches the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Transport {
    /// The sandbox's in-process client, on tokio's paused clock.
    InProcess,
    /// A real `ReqwestClient` over the loopback socket, with this timeout per call.
    Socket(Duration),
}

/// The clock a rig's manager and issuer share.
#[derive(Clone)]
pub enum RigClock {
    /// `TokioClock` on the paused clock: sleeps (backoff, `Retry-After`) move it.
    Tokio(Arc<dyn Clock>),
    /// A manual clock, for tests on real time.
    Manual(ManualClock),
}

impl RigClock {
    /// The clock to hand out.
    pub fn clock(&self) -> Arc<dyn Clock> {
        match self {
            Self::Tokio(clock) => clock.clone(),
            Self::Manual(clock) => Arc::new(clock.clone()),
        }
    }

    /// Moves time forward for the manager and the issuer.
    pub async fn advance(&self, by: Duration) {
        match self {
            Self::Tokio(_) => tokio::time::advance(by).await,
            Self::Manual(clock) => {
                clock.advance(time::Duration::try_from(by).expect("a short duration"))
            }
        }
    }
}

/// What a subject builds its rig with.
#[derive(Clone)]
pub struct Env {
    pub clock: RigClock,
    pub issuer_store: Arc<RecordingIssuerStore>,
    pub store: Arc<RecordingStore>,
    /// The issuer's reuse window; the provider is configured to match.
    pub reuse: Duration,
    pub transport: Transport,
    pub retry: RetryPolicy,
    /// Point the provider here instead of at its sandbox (a dead port, a resetting server).
    pub base_url_override: Option<url::Url>,
    /// Every event of the manager.
    pub events: EventLog,
}

impl Env {
    /// A fresh environment.
    pub fn new(clock: RigClock, reuse: Duration, transport: Transport) -> Self {
        Self {
            clock,
            issuer_store: Arc::new(RecordingIssuerStore::default()),
            store: Arc::new(RecordingStore::default()),
            reuse,
            transport,
            retry: RetryPolicy::default()
                .with_max_attempts(3)
                .with_backoff(Duration::from_millis(100), Duration::from_secs(1))
                .with_deadline(Duration::from_secs(60)),
            base_url_override: None,
            events: EventLog::default(),
        }
    }

    /// The manager's transport.
    pub fn client(&self, sandbox: &RunningSandbox) -> Arc<dyn HttpClient> {
        match self.transport {
            Transport::InProcess => sandbox.client(),
            Transport::Socket(timeout) => Arc::new(
                ReqwestClient::with_timeout(Some(timeout)).expect("a reqwest client builds"),
            ),
        }
    }

    /// Where the provider sends its calls.
    pub fn base_url(&self, sandbox: &RunningSandbox) -> url::Url {
        self.base_url_override
            .clone()
            .unwrap_or_else(|| sandbox.base_url())
    }

    /// A manager over `provider`, with this environment's store, transport, clock and hook.
    pub fn manager<P: Provider>(&self, provider: P, sandbox: &RunningSandbox) -> TokenManager<P> {
        TokenManager::builder(provider)
            .shared_store(self.store.clone())
            .shared_client(self.client(sandbox))
            .clock(self.clock.clock())
            .config(manager_config().with_retry(self.retry.clone()))
            .on_event(self.events.hook())
            .build()
            .expect("the manager builds")
    }
}

/// A running sandbox and a manager over it, for one provider.
#[async_trait]
pub trait Rig: Send + Sync {
    fn sandbox(&self) -> &RunningSandbox;
    /// The manager's namespace (the store's key prefix).
    fn namespace(&self) -> &str;
    async fn access_token(&self, session: &str) -> Result<AccessToken, Error>;
    /// Issues a first pair for `session` at the sandbox and inserts it into the manager.
    async fn seed(&self, session: &str) -> StoredTokenSet;
    /// What the manager's store holds for `session`.
    async fn stored(&self, session: &str) -> Option<StoredTokenSet>;
    /// The manager, for `Debug`.
    fn debug(&self) -> String;
}

/// The generic rig: any provider's manager.
pub struct ManagedRig<P: Provider> {
    pub sandbox: RunningSandbox,
    pub manager: TokenManager<P>,
    pub store: Arc<RecordingStore>,
    /// The extras a seeded pair carries.
    pub extras: Value,
}

#[async_trait]
impl<P: Provider> Rig for ManagedRig<P> {
    fn sandbox(&self) -> &RunningSandbox {
        &self.sandbox
    }

    fn namespace(&self) -> &str {
        self.manager.namespace()
    }

    async fn access_token(&self, session: &str) -> Result<AccessToken, Error> {
        self.manager.access_token(session).await
    }

    async fn seed(&self, session: &str) -> StoredTokenSet {
        let first = self
            .sandbox
            .issue_with(session, self.extras.clone())
            .await
            .expect("the issuer issues");
        let set = TokenSet::from_stored(first.clone()).expect("the extras fit the provider");
        self.manager.insert(session, set).await.expect("insert");
        first
    }

    async fn stored(&self, session: &str) -> Option<StoredTokenSet> {
        let key = SessionKey::new(self.namespace().to_owned(), session.to_owned());
        self.store
            .load(&key)
            .await
            .expect("the store loads")
            .and_then(|r| r.value.into_tokens())
    }

    fn debug(&self) -> String {
        format!("{:?} {:?}", self.manager, self.sandbox)
    }
}

/// One provider under test.
#[async_trait]
pub trait Subject: Send + Sync {
    /// The provider's name in test output.
    fn name(&self) -> &'static str;
    /// The path of its refresh call.
    fn refresh_path(&self) -> &'static str;
    /// A success answer of its refresh call (the seed document's sample).
    fn success_sample(&self) -> Value;
    /// JSON pointers, in that sample, to the access token and to the expiry.
    fn access_pointer(&self) -> &'static str;
    fn expiry_pointer(&self) -> &'static str;
    /// Starts its sandbox and a manager over it.
    async fn start(&self, env: &Env) -> Box<dyn Rig>;
    /// Whether the provider's reuse window can be configured (else it has none).
    fn reuse_configurable(&self) -> bool {
        true
    }
    /// Whether the provider obtains a new set itself when a refresh is refused.
    fn can_issue(&self) -> bool {
        false
    }
    /// Whether a refresh rotates the refresh token (WeChat keeps it: an answer lost after a
    /// refresh leaves the stored refresh token good).
    fn rotates(&self) -> bool {
        true
    }
    /// Whether a 401 to its refresh is taken for the refusal of a credential of its own (Maya's
    /// partner app token), which it renews before sending the refresh again.
    fn renews_on_401(&self) -> bool {
        false
    }
    /// The kinds its refresh's error declares for HTTP statuses (`on_status`), which a
    /// refusal whose body is not that error (a firewall's page) takes.
    fn on_status(&self) -> &'static [(u16, token_core::error::ErrorKind)] {
        &[]
    }
    /// A fault answer as the provider's server would send it at `now`, its clock (Alipay+
    /// signs its answers, with the time).
    fn seal(&self, failure: Failure, now: time::OffsetDateTime) -> Failure {
        let _ = now;
        failure
    }
}

/// token-core's built-in RFC 6749 sandbox and `SandboxOAuth`.
pub struct CoreOAuth;

#[async_trait]
impl Subject for CoreOAuth {
    fn name(&self) -> &'static str {
        "token-core SandboxOAuth"
    }

    fn refresh_path(&self) -> &'static str {
        token_core::oauth::TOKEN_PATH
    }

    fn success_sample(&self) -> Value {
        json!({
            "access_token": "2YotnFZFEjr1zCsicMWpAA",
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": "tGzv3JOkF0XG5Qx2TlKWIA",
        })
    }

    fn access_pointer(&self) -> &'static str {
        "/access_token"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/expires_in"
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let sandbox = builder(env, IssuerConfig::default())
            .start()
            .await
            .expect("the sandbox starts");
        let provider = token_core::sandbox::SandboxOAuth::new(env.base_url(&sandbox))
            .with_reuse_window(env.reuse);
        rig(env, sandbox, provider, json!({}))
    }
}

/// A rig of `provider` over `sandbox`, whose seeded pairs carry `extras`.
pub fn rig<P: Provider>(
    env: &Env,
    sandbox: RunningSandbox,
    provider: P,
    extras: Value,
) -> Box<dyn Rig> {
    let manager = env.manager(provider, &sandbox);
    Box::new(ManagedRig {
        sandbox,
        manager,
        store: env.store.clone(),
        extras,
    })
}

/// A sandbox on `env`'s clock and issuer store, its issuer configured by `issuer` with `env`'s
/// reuse window.
pub fn builder(env: &Env, issuer: IssuerConfig) -> SandboxBuilder {
    Sandbox::builder()
        .clock(env.clock.clock())
        .issuer_store(env.issuer_store.clone())
        .issuer_config(issuer.with_reuse_window(env.reuse))
}
