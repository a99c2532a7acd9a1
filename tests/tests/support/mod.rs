//! What the fault matrix, the soak and the security tests share: one [`Subject`] per provider
//! (its sandbox and a manager over it), recording stores that see every token and every
//! refusal, a `tracing` capture ([`logs`]), and the PostgreSQL test database ([`pg`]).
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use token_core::issuer::{
    IssuerStore, MemoryIssuerStore, PairRecord, PairState, RotateOutcome, RotateRejection,
    Rotation, TokenHash,
};
use token_core::sandbox::{Failure, RunningSandbox, Sandbox};
use token_core::store::{
    Lease, MemoryStore, SessionKey, StoredRecord, TokenStore, Version, Versioned,
};
use token_core::{
    AccessToken, Clock, Error, Event, HttpClient, ManagerConfig, ManualClock, Provider,
    ReqwestClient, RetryPolicy, StoreError, StoredTokenSet, TokenManager, TokenSet,
};

/// The session every single-session test uses.
pub const SESSION: &str = "customer-7";

/// Locks, whatever a panicking holder left (every update here is one push or insert).
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|p| p.into_inner())
}

// ---- recording stores ---------------------------------------------------------------------

/// How one rotation presented to the issuer ended.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The hash of the refresh token presented.
    pub presented: TokenHash,
    /// The subject of the presented pair (`None`: unknown token).
    pub subject: Option<String>,
    /// Why.
    pub rejection: RotateRejection,
    /// For a used token: the refresh-token hash of the pair that replaced it.
    pub successor: Option<TokenHash>,
}

/// The issuer's store, recording every token it hands out and every refusal.
#[derive(Default)]
pub struct RecordingIssuerStore {
    inner: MemoryIssuerStore,
    /// Every token value the issuer minted or answered again (the leak check's list).
    pub minted: Mutex<Vec<String>>,
    /// Every refused rotation.
    pub refusals: Mutex<Vec<Refusal>>,
    /// Rotations answered from the reuse window.
    pub reused: Mutex<u64>,
    /// Rotations that minted a successor.
    pub rotated: Mutex<u64>,
}

impl RecordingIssuerStore {
    fn record(&self, set: &StoredTokenSet) {
        let mut minted = lock(&self.minted);
        minted.push(set.access_token.expose_secret().to_owned());
        if let Some(refresh) = &set.refresh_token {
            minted.push(refresh.expose_secret().to_owned());
        }
    }
}

#[async_trait]
impl IssuerStore for RecordingIssuerStore {
    async fn insert(&self, record: PairRecord) -> Result<(), StoreError> {
        self.inner.insert(record).await
    }

    async fn find_by_access(&self, access: &TokenHash) -> Result<Option<PairRecord>, StoreError> {
        self.inner.find_by_access(access).await
    }

    async fn find_by_refresh(&self, refresh: &TokenHash) -> Result<Option<PairRecord>, StoreError> {
        self.inner.find_by_refresh(refresh).await
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        let rotation_presented = rotation.presented;
        let presented = self.inner.find_by_refresh(rotation_presented).await?;
        let outcome = self.inner.rotate(rotation).await?;
        match &outcome {
            RotateOutcome::Rotated { tokens, .. } => {
                self.record(tokens);
                *lock(&self.rotated) += 1;
            }
            RotateOutcome::Reused { tokens, .. } => {
                self.record(tokens);
                *lock(&self.reused) += 1;
            }
            RotateOutcome::Rejected(rejection) => {
                let successor = presented.as_ref().and_then(|p| match &p.state {
                    PairState::Replaced { successor, .. } => Some(*successor),
                    _ => None,
                });
                lock(&self.refusals).push(Refusal {
                    presented: *rotation_presented,
                    subject: presented.map(|p| p.subject),
                    rejection: *rejection,
                    successor,
                });
            }
            _ => {}
        }
        Ok(outcome)
    }

    async fn revoke(
        &self,
        token: &TokenHash,
        at: time::OffsetDateTime,
    ) -> Result<bool, StoreError> {
        self.inner.revoke(token, at).await
    }

    async fn revoke_subject(
        &self,
        subject: &str,
        at: time::OffsetDateTime,
    ) -> Result<usize, StoreError> {
        self.inner.revoke_subject(subject, at).await
    }
}

/// The manager's store, recording the hash of every refresh token it was asked to keep.
pub struct RecordingStore {
    inner: Arc<dyn TokenStore>,
    /// Hashes of every refresh token ever saved.
    pub saved_refresh: Mutex<HashSet<TokenHash>>,
}

impl Default for RecordingStore {
    fn default() -> Self {
        Self::over(Arc::new(MemoryStore::new()))
    }
}

impl RecordingStore {
    /// Records what the manager saves into `inner`.
    pub fn over(inner: Arc<dyn TokenStore>) -> Self {
        Self {
            inner,
            saved_refresh: Mutex::default(),
        }
    }
}

#[async_trait]
impl TokenStore for RecordingStore {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        self.inner.load(key).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        if let Some(refresh) = record.tokens().and_then(|set| set.refresh_token.as_ref()) {
            lock(&self.saved_refresh).insert(TokenHash::of(refresh.expose_secret()));
        }
        self.inner.save(key, record, expected).await
    }

    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        self.inner.delete(key, expected).await
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
        self.inner.release_lease(key, holder).await
    }
}

// ---- tracing capture, the PostgreSQL test database, leak checks ---------------------------

pub mod logs;
pub mod pg;
pub mod proxy;

/// The first `secret` (of at least 8 characters) found in `text`, if any.
pub fn leaked<'a>(text: &str, secrets: impl IntoIterator<Item = &'a String>) -> Option<String> {
    secrets
        .into_iter()
        .filter(|s| s.len() >= 8)
        .find(|s| text.contains(s.as_str()))
        .cloned()
}

// ---- subjects: a provider with its sandbox ------------------------------------------------

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
    pub events: Arc<Mutex<Vec<Event>>>,
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
            events: Arc::default(),
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
        let events = self.events.clone();
        TokenManager::builder(provider)
            .shared_store(self.store.clone())
            .shared_client(self.client(sandbox))
            .clock(self.clock.clock())
            .config(
                ManagerConfig::default()
                    .with_refresh_skew(Duration::from_secs(60), Duration::from_secs(10))
                    .with_retry(self.retry.clone()),
            )
            .on_event(move |event| lock(&events).push(event.clone()))
            .build()
            .expect("the manager builds")
    }
}

/// A running sandbox and a manager over it, for one provider.
#[async_trait]
pub trait Rig: Send + Sync {
    fn sandbox(&self) -> &RunningSandbox;
    /// The provider's name (the store's key prefix).
    fn provider(&self) -> &str;
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

    fn provider(&self) -> &str {
        self.manager.provider().name()
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
        let key = SessionKey::new(self.provider().to_owned(), session.to_owned());
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
    /// A fault answer as the provider's server would send it (Alipay+ signs its answers).
    fn seal(&self, failure: Failure) -> Failure {
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
        token_core::sandbox::oauth::TOKEN_PATH
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
        let sandbox = token_core::Sandbox::builder()
            .clock(env.clock.clock())
            .issuer_store(env.issuer_store.clone())
            .issuer_config(token_core::IssuerConfig::default().with_reuse_window(env.reuse))
            .start()
            .await
            .expect("the sandbox starts");
        let provider = token_core::sandbox::SandboxOAuth::new(env.base_url(&sandbox))
            .with_reuse_window(env.reuse);
        let manager = env.manager(provider, &sandbox);
        Box::new(ManagedRig {
            sandbox,
            manager,
            store: env.store.clone(),
            extras: json!({}),
        })
    }
}

fn rig<P: Provider>(
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

fn builder(env: &Env, issuer: token_core::IssuerConfig) -> token_core::sandbox::SandboxBuilder {
    Sandbox::builder()
        .clock(env.clock.clock())
        .issuer_store(env.issuer_store.clone())
        .issuer_config(issuer.with_reuse_window(env.reuse))
}

/// `token-provider-oauth2` (generic RFC 6749), a confidential client with HTTP Basic.
pub struct OAuth2;

#[async_trait]
impl Subject for OAuth2 {
    fn name(&self) -> &'static str {
        "oauth2"
    }

    fn refresh_path(&self) -> &'static str {
        token_provider_oauth2::TOKEN_PATH
    }

    fn success_sample(&self) -> Value {
        CoreOAuth.success_sample()
    }

    fn access_pointer(&self) -> &'static str {
        "/access_token"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/expires_in"
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let sandbox = token_provider_oauth2::sandbox::routes(
            builder(env, token_core::IssuerConfig::default()).oauth_routes(false),
        )
        .start()
        .await
        .expect("the sandbox starts");
        let token_url = env
            .base_url(&sandbox)
            .join(token_provider_oauth2::TOKEN_PATH.trim_start_matches('/'))
            .expect("a token URL");
        let config = token_provider_oauth2::OAuth2Config::new("app-1", token_url)
            .with_client_secret("s3cret-client".into())
            .with_reuse_window(env.reuse);
        let provider = token_provider_oauth2::OAuth2::new(config);
        rig(env, sandbox, provider, json!({}))
    }
}

/// `token-provider-maya`: the Mini App `/tokens` refresh, with the app token from Maya
/// Connect (always at the sandbox; only the refresh call is pointed elsewhere).
pub struct Maya;

#[async_trait]
impl Subject for Maya {
    fn name(&self) -> &'static str {
        "maya"
    }

    fn refresh_path(&self) -> &'static str {
        "/tokens"
    }

    fn success_sample(&self) -> Value {
        json!({
            "accessToken": "eyJhbGciOiJIUzI1NiJ9.e30.mini-app-access",
            "refreshToken": "eyJhbGciOiJIUzI1NiJ9.e30.mini-app-refresh",
            "expiresAt": 1_767_229_200,
        })
    }

    fn access_pointer(&self) -> &'static str {
        "/accessToken"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/expiresAt"
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let secret = token_core::ClientSecret::new("partner-s3cret");
        let maya = token_provider_maya::sandbox::MayaSandbox::new("partner-1", secret.clone());
        let sandbox = maya
            .routes(builder(env, token_core::IssuerConfig::default()))
            .start()
            .await
            .expect("the sandbox starts");
        let config = token_provider_maya::MayaConfig::new("partner-1", secret, sandbox.base_url())
            .with_api_url(env.base_url(&sandbox))
            .with_reuse_window(env.reuse);
        let provider =
            token_provider_maya::Maya::from_config(config, env.client(&sandbox), env.clock.clock())
                .expect("the provider builds");
        rig(env, sandbox, provider, json!({}))
    }
}

/// `token-provider-alipayplus`: applyToken with `REFRESH_TOKEN`, RSA256 both ways.
pub struct AlipayPlus;

const APPLY_TOKEN: &str = "/aps/api/v1/authorizations/applyToken";

#[async_trait]
impl Subject for AlipayPlus {
    fn name(&self) -> &'static str {
        "alipayplus"
    }

    fn refresh_path(&self) -> &'static str {
        APPLY_TOKEN
    }

    fn success_sample(&self) -> Value {
        json!({
            "result": {"resultCode": "SUCCESS", "resultMessage": "success", "resultStatus": "S"},
            "accessToken": "281010033AB2F588D14B43238637264FCA5AAF35",
            "accessTokenExpiryTime": "2022-06-06T12:12:12+08:00",
            "refreshToken": "2810100334F62CBC577F468AAC87CFC6C9107811",
            "refreshTokenExpiryTime": "2022-06-08T12:12:12+08:00",
            "customerId": "2789808900000000000000001",
            "userLoginId": "62-***2736",
        })
    }

    fn access_pointer(&self) -> &'static str {
        "/accessToken"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/accessTokenExpiryTime"
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let mpp = token_provider_alipayplus::sandbox::AlipayPlusSandbox::new();
        let sandbox = mpp
            .routes(builder(env, token_core::IssuerConfig::default()))
            .start()
            .await
            .expect("the sandbox starts");
        let mut config = mpp.config(&sandbox).with_base_url(env.base_url(&sandbox));
        config.reuse_window_secs = env.reuse.as_secs();
        let provider =
            token_provider_alipayplus::AlipayPlus::new(config).expect("the provider builds");
        let extras =
            json!({"customerId": "2789808900000000000000001", "userLoginId": "62-***2736"});
        rig(env, sandbox, provider, extras)
    }

    /// The MPP signs every 2xx answer; the client refuses an unsigned one as misconfigured.
    fn seal(&self, failure: Failure) -> Failure {
        use token_provider_alipayplus::sandbox::{CLIENT_ID, client_public_key, mpp_private_key};
        let mut response = failure.to_response();
        if !response.status().is_success() {
            return failure;
        }
        let signer = token_provider_alipayplus::signature::Rsa256Signer::from_pem(
            CLIENT_ID,
            1,
            mpp_private_key(),
            client_public_key(),
        )
        .expect("the sandbox keys");
        let request = http::Request::post(APPLY_TOKEN)
            .body(Vec::<u8>::new())
            .expect("a request");
        signer
            .sign_response(&request, &mut response, time::OffsetDateTime::now_utc())
            .expect("signed");
        let mut sealed = Failure::new(response.status()).with_body(response.body().clone());
        for (name, value) in response.headers() {
            sealed = sealed.with_header(name.clone(), value.clone());
        }
        sealed
    }
}

/// `token-provider-paymentsgate`: a service account; a refused refresh issues anew.
pub struct Paymentsgate;

#[async_trait]
impl Subject for Paymentsgate {
    fn name(&self) -> &'static str {
        "paymentsgate"
    }

    fn refresh_path(&self) -> &'static str {
        token_provider_paymentsgate::REFRESH_PATH
    }

    fn success_sample(&self) -> Value {
        json!({
            "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl",
            "refresh_token": "8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl",
            "expires_in": 3600,
        })
    }

    fn access_pointer(&self) -> &'static str {
        "/access_token"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/expires_in"
    }

    fn reuse_configurable(&self) -> bool {
        false
    }

    fn can_issue(&self) -> bool {
        true
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let account =
            token_provider_paymentsgate::PaymentsgateConfig::new("acct-1", "cHVibGljLWtleQ==");
        let sandbox = token_provider_paymentsgate::sandbox::routes(
            builder(env, token_provider_paymentsgate::sandbox::issuer_config()).oauth_routes(false),
            &account,
        )
        .start()
        .await
        .expect("the sandbox starts");
        let provider =
            token_provider_paymentsgate::Paymentsgate::new(env.base_url(&sandbox), account);
        rig(env, sandbox, provider, json!({}))
    }
}

/// `token-provider-vaultist`: the v3 refresh (`partnerId` and `grantType` headers).
pub struct Vaultist;

#[async_trait]
impl Subject for Vaultist {
    fn name(&self) -> &'static str {
        "vaultist"
    }

    fn refresh_path(&self) -> &'static str {
        token_provider_vaultist::REFRESH_PATH
    }

    fn success_sample(&self) -> Value {
        json!({
            "access_token": "eyJhbGciOiJIUzI1NiIsIn...",
            "refresh_token": "dGhpcyBpcyBhIHJlZnJlc2h...",
            "expires_in": 3600,
            "token_type": "Bearer",
        })
    }

    fn access_pointer(&self) -> &'static str {
        "/access_token"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/expires_in"
    }

    fn reuse_configurable(&self) -> bool {
        false
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let sandbox = token_provider_vaultist::sandbox::routes(
            builder(env, token_provider_vaultist::sandbox::issuer_config()).oauth_routes(false),
            None,
        )
        .start()
        .await
        .expect("the sandbox starts");
        let provider = token_provider_vaultist::Vaultist::new(
            env.base_url(&sandbox),
            token_provider_vaultist::VaultistConfig::new(1001),
        );
        rig(env, sandbox, provider, json!({}))
    }
}

/// `token-provider-lazada`: the HMAC-SHA256 signed refresh, verified by its sandbox.
pub struct Lazada;

#[async_trait]
impl Subject for Lazada {
    fn name(&self) -> &'static str {
        "lazada"
    }

    fn refresh_path(&self) -> &'static str {
        token_provider_lazada::REFRESH_PATH
    }

    fn success_sample(&self) -> Value {
        // The refresh reference's sample, as JSON.
        json!({
            "code": "0",
            "expires_in": 10,
            "country": "sg",
            "account_platform": "seller_center",
            "access_token": "50000601c30atpedfgu3LVvik87Ixlsvle3mSoB7701ceb156fPunYZ43GBg",
            "account": "xxx@126.com",
            "refresh_expires_in": 60,
            "refresh_token": "500016000300bwa2WteaQyfwBMnPxurcA0mXGhQdTt18356663CfcDTYpWoi",
            "request_id": "0ba2887315178178017221014",
        })
    }

    fn access_pointer(&self) -> &'static str {
        "/access_token"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/expires_in"
    }

    fn reuse_configurable(&self) -> bool {
        false
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let app = token_provider_lazada::LazadaConfig::new("123456", "helloworld");
        // The matrix lets an access token of one hour expire (Lazada's last 30 days).
        let issuer = token_provider_lazada::sandbox::issuer_config()
            .with_access_ttl(std::time::Duration::from_secs(3600));
        let sandbox = builder(env, issuer)
            .oauth_routes(false)
            .serve::<token_provider_lazada::RefreshAccessToken>(&app)
            .start()
            .await
            .expect("the sandbox starts");
        let provider = token_provider_lazada::Lazada::new(env.base_url(&sandbox), app);
        rig(env, sandbox, provider, json!({}))
    }
}

/// `token-provider-wechat`: `GET /sns/oauth2/refresh_token`, `errcode` errors on HTTP 200,
/// the refresh token kept.
pub struct WeChat;

#[async_trait]
impl Subject for WeChat {
    fn name(&self) -> &'static str {
        "wechat"
    }

    fn refresh_path(&self) -> &'static str {
        token_provider_wechat::REFRESH_PATH
    }

    fn success_sample(&self) -> Value {
        // developers.weixin.qq.com, snsRefreshToken, "Return an example".
        json!({
            "access_token": "ACCESS_TOKEN",
            "expires_in": 7200,
            "refresh_token": "REFRESH_TOKEN",
            "openid": "OPENID",
            "scope": "SCOPE",
        })
    }

    fn access_pointer(&self) -> &'static str {
        "/access_token"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/expires_in"
    }

    fn reuse_configurable(&self) -> bool {
        false
    }

    fn rotates(&self) -> bool {
        false
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let config = token_provider_wechat::WeChatConfig::new("wx520c15f417810387");
        // The matrix lets an hour pass; WeChat's access tokens last two.
        let issuer = token_provider_wechat::sandbox::issuer_config()
            .with_access_ttl(std::time::Duration::from_secs(3600));
        let sandbox = builder(env, issuer)
            .oauth_routes(false)
            .serve::<token_provider_wechat::SnsRefreshToken>(&config)
            .start()
            .await
            .expect("the sandbox starts");
        let provider = token_provider_wechat::WeChat::new(env.base_url(&sandbox), config);
        rig(env, sandbox, provider, json!({"openid": "OPENID"}))
    }
}

/// Every provider the matrix covers.
pub fn subjects() -> Vec<Box<dyn Subject>> {
    vec![
        Box::new(CoreOAuth),
        Box::new(OAuth2),
        Box::new(Maya),
        Box::new(AlipayPlus),
        Box::new(Paymentsgate),
        Box::new(Vaultist),
        Box::new(Lazada),
        Box::new(WeChat),
    ]
}
