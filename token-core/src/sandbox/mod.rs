//! A loopback sandbox of any provider: its endpoints served on 127.0.0.1 (port from the OS)
//! over the [issuer](crate::issuer), with a controllable clock, call counters and fault
//! injection, for tests, examples and benchmarks.
//!
//! Routes are [`Handler`]s over `http` types; provider crates register their own. Until they
//! do, the sandbox serves a plain RFC 6749 token endpoint ([`oauth`]) and a protected API
//! under `/api/`. [`RunningSandbox::client`] calls the same handlers in process, with the
//! same counters and faults and no socket, so tests can run on tokio's paused clock.
//!
//! ```
//! use std::sync::Arc;
//! use token_core::sandbox::{Failure, Sandbox};
//! use token_core::oauth::RefreshTokenGrant;
//! use token_core::{provider::CallContext, error::ErrorKind};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = Sandbox::builder().build().start().await?;
//! let first = sandbox.issue("customer-1").await?;
//! let refresh = first.refresh_token.clone().expect("the issuer always issues one");
//!
//! let cx = CallContext::new(sandbox.client(), sandbox.clock().clone(), "customer-1");
//! sandbox.fail_next("/token", 1, Failure::service_unavailable().with_retry_after(1));
//! let error = cx.call(&sandbox.base_url(), &RefreshTokenGrant::new(refresh.clone())).await.unwrap_err();
//! assert_eq!(error.kind(), ErrorKind::Transient);
//!
//! let second = cx.call(&sandbox.base_url(), &RefreshTokenGrant::new(refresh)).await?;
//! assert_ne!(second.access_token, first.access_token);
//! assert_eq!(sandbox.calls("/token"), 2);
//! # Ok(())
//! # }
//! ```

pub mod endpoint;
mod faults;
pub mod oauth;
mod provider;
mod server;

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use http::{HeaderValue, Method, StatusCode};
use time::OffsetDateTime;

use crate::clock::{Clock, SystemClock};
use crate::issuer::{Issuer, IssuerConfig, IssuerError, IssuerStore, MemoryIssuerStore};
use crate::manager::CatchUnwind;
use crate::secret::ClientSecret;
use crate::token_set::StoredTokenSet;
use crate::transport::HttpClient;

pub use faults::Failure;
pub use provider::SandboxOAuth;

/// The default largest request body: 64 KiB. A larger one is answered 413.
pub const DEFAULT_MAX_BODY: usize = 64 * 1024;

/// The default read timeout: 30 s for a request's headers, then 30 s for its body; a
/// connection idle that long between requests is closed.
pub const DEFAULT_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// The default number of connections served at once: 1024.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// How many distinct paths [`RunningSandbox::calls`] counts: 1024. Calls to further paths
/// count in [`RunningSandbox::total_calls`] only, so that requests to made-up paths cannot
/// grow the counters without bound.
pub const MAX_COUNTED_PATHS: usize = 1024;

/// The longest read timeout: a day (a longer one is taken as this).
const MAX_READ_TIMEOUT: Duration = Duration::from_secs(24 * 60 * 60);

/// One route's behaviour: turns a request into an answer, with the sandbox's issuer and
/// clock at hand. A handler that panics is answered 500 `{"error": "server_error"}` (on
/// both transports), and the sandbox goes on serving.
///
/// Closures `Fn(http::Request<Vec<u8>>, SandboxContext) -> impl Future<Output =
/// http::Response<Vec<u8>>>` are handlers:
///
/// ```
/// use token_core::sandbox::{Sandbox, SandboxContext, json_response};
///
/// let sandbox = Sandbox::builder().route(
///     http::Method::GET,
///     "/whoami",
///     |_request: http::Request<Vec<u8>>, cx: SandboxContext| async move {
///         json_response(http::StatusCode::OK, &serde_json::json!({"now": cx.now().unix_timestamp()}))
///     },
/// );
/// ```
#[async_trait]
pub trait Handler: Send + Sync + 'static {
    /// Answers `request`. The URI is in origin form (`/token?x=1`), as a server sees it.
    async fn handle(
        &self,
        request: http::Request<Vec<u8>>,
        cx: &SandboxContext,
    ) -> http::Response<Vec<u8>>;
}

#[async_trait]
impl<F, Fut> Handler for F
where
    F: Fn(http::Request<Vec<u8>>, SandboxContext) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = http::Response<Vec<u8>>> + Send + 'static,
{
    async fn handle(
        &self,
        request: http::Request<Vec<u8>>,
        cx: &SandboxContext,
    ) -> http::Response<Vec<u8>> {
        self(request, cx.clone()).await
    }
}

const _: Option<&dyn Handler> = None;

/// What a [`Handler`] works with: the sandbox's issuer and clock. Cheap to clone.
#[derive(Clone, Debug)]
pub struct SandboxContext {
    issuer: Arc<Issuer>,
    clock: Arc<dyn Clock>,
}

impl SandboxContext {
    /// The issuer.
    pub fn issuer(&self) -> &Issuer {
        &self.issuer
    }

    /// The clock (the issuer's).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The current time.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }
}

/// A JSON answer with `Content-Type: application/json`.
pub fn json_response(status: StatusCode, body: &serde_json::Value) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.to_string().into_bytes());
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// A sandbox ready to [`start`](Self::start). Built with [`Sandbox::builder`].
pub struct Sandbox {
    builder: SandboxBuilder,
}

impl fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sandbox")
            .field("builder", &self.builder)
            .finish()
    }
}

impl Default for Sandbox {
    fn default() -> Self {
        Self::builder().build()
    }
}

impl Sandbox {
    /// A builder with the defaults: [`SystemClock`], the default [`IssuerConfig`] over a
    /// [`MemoryIssuerStore`], the built-in `/token` and `/api/` routes, 64 KiB bodies, a 30 s
    /// read timeout, 1024 connections at once.
    pub fn builder() -> SandboxBuilder {
        SandboxBuilder {
            clock: None,
            issuer_config: IssuerConfig::default(),
            issuer_store: None,
            routes: Vec::new(),
            oauth_routes: None,
            serves_endpoint: false,
            unverifiable: Vec::new(),
            api_routes: true,
            max_body: DEFAULT_MAX_BODY,
            read_timeout: DEFAULT_READ_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
        }
    }

    /// Binds 127.0.0.1 on a port chosen by the OS and starts serving in a background task.
    pub async fn start(self) -> Result<RunningSandbox, SandboxError> {
        let SandboxBuilder {
            clock,
            issuer_config,
            issuer_store,
            mut routes,
            oauth_routes,
            serves_endpoint,
            unverifiable,
            api_routes,
            max_body,
            read_timeout,
            max_connections,
        } = self.builder;
        if let Some(path) = unverifiable.first() {
            return Err(SandboxError::UnverifiableSignature { path });
        }
        // A sandbox serving a provider's endpoint is that provider's, unless told otherwise.
        let oauth_routes = oauth_routes.unwrap_or(!serves_endpoint);
        let clock = clock.unwrap_or_else(|| Arc::new(SystemClock));
        let store = issuer_store.unwrap_or_else(|| Arc::new(MemoryIssuerStore::new()));
        let issuer = Arc::new(Issuer::new(store, clock.clone(), issuer_config));
        // Registered routes come first, so a provider may replace a built-in one.
        if oauth_routes {
            routes.push(Route::new(
                Some(Method::POST),
                crate::oauth::TOKEN_PATH,
                oauth::TokenHandler::default(),
            ));
            routes.push(Route::new(
                Some(Method::GET),
                oauth::AUTHORIZE_PATH,
                oauth::AuthorizeHandler,
            ));
        }
        if api_routes {
            routes.push(Route::new(None, "/api/*", oauth::ApiHandler));
        }
        let shared = Arc::new(Shared {
            cx: SandboxContext { issuer, clock },
            routes,
            max_body,
            read_timeout,
            calls: Mutex::new(HashMap::new()),
            total: AtomicU64::new(0),
            faults: Mutex::new(faults::FaultTable::default()),
            stop: tokio::sync::watch::Sender::new(false),
        });
        let listener = tokio::net::TcpListener::bind((std::net::Ipv4Addr::LOCALHOST, 0))
            .await
            .map_err(|source| SandboxError::Bind { source })?;
        let addr = listener
            .local_addr()
            .map_err(|source| SandboxError::Bind { source })?;
        let base_url =
            url::Url::parse(&format!("http://{addr}/")).map_err(|e| SandboxError::Bind {
                source: std::io::Error::other(e),
            })?;
        let task = tokio::spawn(server::serve(listener, shared.clone(), max_connections));
        Ok(RunningSandbox {
            shared,
            addr,
            base_url,
            task,
        })
    }
}

/// Configures a [`Sandbox`].
pub struct SandboxBuilder {
    clock: Option<Arc<dyn Clock>>,
    issuer_config: IssuerConfig,
    issuer_store: Option<Arc<dyn IssuerStore>>,
    routes: Vec<Route>,
    /// `oauth_routes(...)` as set; unset, the built-in routes are served unless `serve` is.
    oauth_routes: Option<bool>,
    serves_endpoint: bool,
    /// The paths `serve` registered whose declared signature no config value checks (RSA:
    /// the client's public key): `start` refuses them rather than every request.
    unverifiable: Vec<&'static str>,
    api_routes: bool,
    max_body: usize,
    read_timeout: Duration,
    max_connections: usize,
}

impl fmt::Debug for SandboxBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxBuilder")
            .field("clock", &self.clock)
            .field("issuer_config", &self.issuer_config)
            .field("routes", &self.routes)
            .field("oauth_routes", &self.oauth_routes)
            .field("serves_endpoint", &self.serves_endpoint)
            .field("api_routes", &self.api_routes)
            .field("max_body", &self.max_body)
            .field("read_timeout", &self.read_timeout)
            .field("max_connections", &self.max_connections)
            .finish_non_exhaustive()
    }
}

impl SandboxBuilder {
    /// The clock of the issuer and of every handler (default [`SystemClock`]). Pass a
    /// [`ManualClock`](crate::clock::ManualClock) (keep a clone to move it) or a
    /// [`TokioClock`](crate::clock::TokioClock) on tokio's paused clock.
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// The issuer's configuration (lifetimes, reuse window, token format).
    pub fn issuer_config(mut self, config: IssuerConfig) -> Self {
        self.issuer_config = config;
        self
    }

    /// The issuer's store (default a fresh [`MemoryIssuerStore`]).
    pub fn issuer_store(mut self, store: Arc<dyn IssuerStore>) -> Self {
        self.issuer_store = Some(store);
        self
    }

    /// Serves `handler` for `method` on `path`. A path ending in `/*` matches every path
    /// under it (`/api/*` matches `/api/x/y`). Routes registered here win over the built-in
    /// ones, and earlier ones over later ones.
    pub fn route(mut self, method: Method, path: &str, handler: impl Handler) -> Self {
        self.routes.push(Route::new(Some(method), path, handler));
        self
    }

    /// Serves the refresh endpoint `E` for `config`, at `E`'s method and path, as its
    /// declarations say ([`ServeEndpoint::declared`](endpoint::ServeEndpoint::declared)):
    /// a provider's sandbox is its issuer settings and this line. The sandbox then serves
    /// the provider's endpoints without the built-in RFC 6749 routes, unless
    /// [`oauth_routes(true)`](Self::oauth_routes) asks for them.
    ///
    /// ```
    /// use token_core::sandbox::Sandbox;
    /// # use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
    /// # #[token_endpoint(response)] pub struct Tokens { pub access_token: AccessToken }
    /// # #[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
    /// # #[derive(Clone, Debug)] pub struct AcmeConfig { pub client_id: String }
    /// # #[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = AcmeConfig, provider = "acme")]
    /// # pub struct Refresh { #[token(from = config.client_id)] pub client_id: String, pub refresh_token: RefreshToken }
    ///
    /// let config = AcmeConfig { client_id: "app-1".into() };
    /// let sandbox = Sandbox::builder().serve::<Refresh>(&config); // no built-in `/token`
    /// # let _ = sandbox;
    /// ```
    ///
    /// An endpoint whose declared signature is checked with a key the config does not hold
    /// (`sign(rsa_sha256, ...)`: the client's public key) is served with
    /// [`serve_verified`](Self::serve_verified); `serve` of one makes [`start`](Self::start)
    /// fail with [`SandboxError::UnverifiableSignature`] (without the key, every request
    /// would be refused as unreadable).
    pub fn serve<E>(mut self, config: &E::Config) -> Self
    where
        E: crate::provider::RefreshEndpoint,
        E::Config: Clone,
        E::Error: Send,
    {
        if E::SIGNATURE.is_some() && E::verify_key(config).is_none() {
            self.unverifiable.push(E::PATH);
        }
        self.serves_endpoint = true;
        self.route(
            E::METHOD,
            E::PATH,
            endpoint::ServeEndpoint::<E>::declared(config),
        )
    }

    /// Serves the refresh endpoint `E` for `config` like [`serve`](Self::serve), its
    /// declared signature checked with `key` ([`ServeEndpoint::verify_with`](endpoint::ServeEndpoint::verify_with)):
    /// the client's public key (PEM or Base64 SPKI) for `sign(rsa_sha256, ...)`, which the
    /// client's config, holding the private key, cannot give.
    ///
    /// ```
    /// use token_core::sandbox::Sandbox;
    /// use token_core::secret::ClientSecret;
    /// # use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
    /// # #[token_endpoint(response)] pub struct Tokens { pub access_token: AccessToken }
    /// # #[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
    /// # #[derive(Clone, Debug)] pub struct Client { pub client_key: String, pub private_key: ClientSecret }
    /// #[token_endpoint(post = "/v1.0/access-token/b2b2c", response = Tokens, error = Failure,
    ///                  config = Client, provider = "snap",
    ///                  sign(rsa_sha256, over(header("X-CLIENT-KEY"), timestamp), separator = "|",
    ///                       encoding = base64, into = header("X-SIGNATURE")))]
    /// pub struct Refresh {
    ///     #[token(header, rename = "X-TIMESTAMP", from = now_rfc3339("+07:00"))]
    ///     pub timestamp: String,
    ///     #[token(header, rename = "X-CLIENT-KEY", from = config.client_key)]
    ///     pub client_key: String,
    ///     pub refresh_token: RefreshToken,
    ///     #[token(signing_key, from = config.private_key)]
    ///     pub private_key: ClientSecret,
    /// }
    ///
    /// # let public_key = ClientSecret::new("MIIBIjANBg...");
    /// let client = Client { client_key: "c-1".into(), private_key: ClientSecret::new("MIIEvQ...") };
    /// let sandbox = Sandbox::builder().serve_verified::<Refresh>(&client, public_key);
    /// # let _ = sandbox;
    /// ```
    pub fn serve_verified<E>(mut self, config: &E::Config, key: ClientSecret) -> Self
    where
        E: crate::provider::RefreshEndpoint,
        E::Config: Clone,
        E::Error: Send,
    {
        self.serves_endpoint = true;
        self.route(
            E::METHOD,
            E::PATH,
            endpoint::ServeEndpoint::<E>::declared(config).verify_with(key),
        )
    }

    /// Serves `handler` for every method on `path` (see [`route`](Self::route)).
    pub fn route_any(mut self, path: &str, handler: impl Handler) -> Self {
        self.routes.push(Route::new(None, path, handler));
        self
    }

    /// Whether to serve the built-in RFC 6749 `POST /token` and `GET /authorize` (default
    /// `true`, and `false` once the sandbox [`serve`](Self::serve)s a provider's endpoint).
    pub fn oauth_routes(mut self, enabled: bool) -> Self {
        self.oauth_routes = Some(enabled);
        self
    }

    /// Whether to serve the built-in protected API under `/api/` (default `true`).
    pub fn api_routes(mut self, enabled: bool) -> Self {
        self.api_routes = enabled;
        self
    }

    /// The largest request body accepted; larger ones are answered 413 without calling the
    /// handler.
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// How long the sandbox waits for a request over the socket (default
    /// [`DEFAULT_READ_TIMEOUT`], at least a millisecond, at most a day): for its headers,
    /// then again for its body. A
    /// connection whose headers do not arrive in time, or that stays idle that long after an
    /// answer, is closed; a body that does not arrive in time is answered 408 without calling
    /// the handler; and so is a connection whose answers cannot be written for that long (a
    /// client that sends requests and reads no answer). A client that trickles a request,
    /// opens a connection and sends nothing, or stops reading holds no connection for longer.
    pub fn read_timeout(mut self, timeout: Duration) -> Self {
        // Zero would close every connection before its first request.
        self.read_timeout = timeout.clamp(Duration::from_millis(1), MAX_READ_TIMEOUT);
        self
    }

    /// How many connections are served at once (default [`DEFAULT_MAX_CONNECTIONS`], at
    /// least one). Beyond it no connection is accepted until one closes: they wait in the
    /// listen queue, so many clients (or many idle ones, until the
    /// [read timeout](Self::read_timeout)) cannot grow the sandbox's tasks and sockets
    /// without bound.
    pub fn max_connections(mut self, max: usize) -> Self {
        self.max_connections = max.max(1);
        self
    }

    /// The sandbox.
    pub fn build(self) -> Sandbox {
        Sandbox { builder: self }
    }

    /// Builds and [starts](Sandbox::start).
    pub async fn start(self) -> Result<RunningSandbox, SandboxError> {
        self.build().start().await
    }
}

/// A sandbox serving on 127.0.0.1. Stops when dropped or [shut down](Self::shutdown).
pub struct RunningSandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    base_url: url::Url,
    task: tokio::task::JoinHandle<()>,
}

impl fmt::Debug for RunningSandbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunningSandbox")
            .field("addr", &self.addr)
            .field("total_calls", &self.total_calls())
            .finish_non_exhaustive()
    }
}

impl RunningSandbox {
    /// `http://127.0.0.1:<port>/`.
    pub fn base_url(&self) -> url::Url {
        self.base_url.clone()
    }

    /// `path` on this sandbox (`/token` gives `http://127.0.0.1:<port>/token`).
    pub fn url(&self, path: &str) -> url::Url {
        self.base_url
            .join(path.trim_start_matches('/'))
            .unwrap_or_else(|_| self.base_url.clone())
    }

    /// The socket address served.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The issuer behind every route.
    pub fn issuer(&self) -> &Issuer {
        &self.shared.cx.issuer
    }

    /// The clock of the issuer and the handlers.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.shared.cx.clock
    }

    /// What handlers get.
    pub fn context(&self) -> &SandboxContext {
        &self.shared.cx
    }

    /// Issues a first pair for `subject` (no extras): the tokens a test hands to a client.
    pub async fn issue(&self, subject: &str) -> Result<StoredTokenSet, IssuerError> {
        self.issue_with(subject, serde_json::json!({})).await
    }

    /// Issues a first pair for `subject` carrying `extras`.
    pub async fn issue_with(
        &self,
        subject: &str,
        extras: serde_json::Value,
    ) -> Result<StoredTokenSet, IssuerError> {
        Ok(self.issuer().issue(subject, extras).await?.tokens)
    }

    /// How many requests arrived for `path` (faulted ones included), over the socket and in
    /// process. The first [`MAX_COUNTED_PATHS`] distinct paths are counted; calls to any
    /// other count in [`total_calls`](Self::total_calls) only.
    pub fn calls(&self, path: &str) -> u64 {
        self.shared.calls().get(path).copied().unwrap_or(0)
    }

    /// How many requests arrived in all.
    pub fn total_calls(&self) -> u64 {
        self.shared.total.load(Ordering::SeqCst)
    }

    /// Sets every counter to zero.
    pub fn reset_calls(&self) {
        self.shared.calls().clear();
        self.shared.total.store(0, Ordering::SeqCst);
    }

    /// The next `times` calls to `path` get `failure` and their handler does not run.
    /// Queued after the failures already pending for `path`.
    pub fn fail_next(&self, path: &str, times: u32, failure: Failure) {
        self.shared.faults().fail_next(path, times, failure);
    }

    /// The next `times` calls to `path` wait `delay` (a tokio sleep) before anything else.
    pub fn delay_next(&self, path: &str, times: u32, delay: Duration) {
        self.shared.faults().delay_next(path, times, delay);
    }

    /// For the next `times` calls to `path` whose handler runs, the answer is lost: the
    /// connection is closed without a response (in process: a
    /// [`TransportError::answer_lost`](crate::error::TransportError::answer_lost)). The handler's
    /// effects (a rotation) stay.
    pub fn drop_next(&self, path: &str, times: u32) {
        self.shared.faults().drop_next(path, times);
    }

    /// Whether any fault is pending for `path`.
    pub fn faults_pending(&self, path: &str) -> bool {
        self.shared.faults().pending(path)
    }

    /// Removes every pending fault.
    pub fn clear_faults(&self) {
        self.shared.faults().clear();
    }

    /// An [`HttpClient`] that calls the handlers in process: same routes, counters and faults,
    /// no socket, so it runs on tokio's paused clock. Requests may use any host; only the
    /// path and query are used.
    pub fn client(&self) -> Arc<dyn HttpClient> {
        Arc::new(server::InProcessClient::new(self.shared.clone()))
    }

    /// Stops serving: the listener closes and open connections are dropped. In-process
    /// clients answer [`TransportError::not_sent`](crate::error::TransportError::not_sent) from now on;
    /// their calls in flight end with
    /// [`TransportError::answer_lost`](crate::error::TransportError::answer_lost), like a
    /// dropped connection's, and run no handler after the stop.
    pub async fn shutdown(mut self) {
        self.shared.stop();
        self.task.abort();
        // Wait for the task so the port is released when this returns; the result is the
        // cancellation just caused.
        let _ = (&mut self.task).await;
    }
}

impl Drop for RunningSandbox {
    fn drop(&mut self) {
        self.shared.stop();
        self.task.abort();
    }
}

/// Why a sandbox could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// 127.0.0.1 could not be bound.
    #[error("sandbox: could not listen on 127.0.0.1: {source}")]
    Bind {
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// [`SandboxBuilder::serve`] of an endpoint whose declared signature needs a key its
    /// config does not hold (RSA: the client's public key): serve it with
    /// [`SandboxBuilder::serve_verified`].
    #[error(
        "sandbox: the signature of `{path}` is checked with a key its config does not hold (RSA: the client's public key): serve it with `serve_verified::<E>(&config, public_key)`"
    )]
    UnverifiableSignature {
        /// The endpoint's path.
        path: &'static str,
    },
}

struct Route {
    method: Option<Method>,
    pattern: Pattern,
    handler: Arc<dyn Handler>,
}

impl fmt::Debug for Route {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let method = self.method.as_ref().map_or("*", Method::as_str);
        match &self.pattern {
            Pattern::Exact(path) => write!(f, "{method} {path}"),
            Pattern::Prefix(prefix) => write!(f, "{method} {prefix}*"),
        }
    }
}

enum Pattern {
    Exact(String),
    /// Matches the prefix (which ends with `/`) followed by anything.
    Prefix(String),
}

impl Route {
    fn new(method: Option<Method>, path: &str, handler: impl Handler) -> Self {
        let pattern = match path.strip_suffix('*') {
            Some(prefix) if prefix.ends_with('/') => Pattern::Prefix(prefix.to_owned()),
            _ => Pattern::Exact(path.to_owned()),
        };
        Self {
            method,
            pattern,
            handler: Arc::new(handler),
        }
    }

    fn matches_path(&self, path: &str) -> bool {
        match &self.pattern {
            Pattern::Exact(exact) => exact == path,
            Pattern::Prefix(prefix) => path.starts_with(prefix.as_str()),
        }
    }
}

/// What the framework does with one call after the handler.
pub(crate) enum Outcome {
    Respond(http::Response<Vec<u8>>),
    /// Close the connection without answering.
    Drop,
}

/// State shared by the server task, the in-process clients and [`RunningSandbox`].
pub(crate) struct Shared {
    cx: SandboxContext,
    routes: Vec<Route>,
    max_body: usize,
    read_timeout: Duration,
    calls: Mutex<HashMap<String, u64>>,
    total: AtomicU64,
    faults: Mutex<faults::FaultTable>,
    /// Set once the sandbox stops: in-process calls refuse to start, and those in flight
    /// end.
    stop: tokio::sync::watch::Sender<bool>,
}

impl Shared {
    fn calls(&self) -> MutexGuard<'_, HashMap<String, u64>> {
        // Counters stay meaningful after a panic elsewhere: every update is one increment.
        self.calls.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn faults(&self) -> MutexGuard<'_, faults::FaultTable> {
        self.faults.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub(crate) fn max_body(&self) -> usize {
        self.max_body
    }

    pub(crate) fn read_timeout(&self) -> Duration {
        self.read_timeout
    }

    pub(crate) fn is_stopped(&self) -> bool {
        *self.stop.borrow()
    }

    /// Marks the sandbox stopped and ends the in-process calls in flight.
    fn stop(&self) {
        self.stop.send_replace(true);
    }

    /// Resolves once the sandbox has stopped.
    pub(crate) async fn stopped(&self) {
        let mut stop = self.stop.subscribe();
        let _ = stop.wait_for(|stopped| *stopped).await;
    }

    fn count(&self, path: &str) {
        self.total.fetch_add(1, Ordering::SeqCst);
        let mut calls = self.calls();
        if let Some(count) = calls.get_mut(path) {
            *count += 1;
        } else if calls.len() < MAX_COUNTED_PATHS {
            calls.insert(path.to_owned(), 1);
        }
    }

    /// A request whose body exceeded the limit: counted, answered 413, no handler.
    pub(crate) fn too_large(&self, path: &str) -> http::Response<Vec<u8>> {
        self.count(path);
        json_response(
            StatusCode::PAYLOAD_TOO_LARGE,
            &serde_json::json!({"error": "invalid_request", "error_description": "request body too large"}),
        )
    }

    /// A request whose body did not arrive within the read timeout: counted, answered 408
    /// (closing the connection), no handler.
    pub(crate) fn timed_out(&self, path: &str) -> http::Response<Vec<u8>> {
        self.count(path);
        let mut response = json_response(
            StatusCode::REQUEST_TIMEOUT,
            &serde_json::json!({"error": "invalid_request", "error_description": "request body not received in time"}),
        );
        response
            .headers_mut()
            .insert(http::header::CONNECTION, HeaderValue::from_static("close"));
        response
    }

    /// Counts the call, applies its faults and runs the matching handler.
    pub(crate) async fn dispatch(&self, request: http::Request<Vec<u8>>) -> Outcome {
        let path = request.uri().path().to_owned();
        self.count(&path);
        let before = self.faults().before_call(&path);
        if let Some(delay) = before.delay {
            tokio::time::sleep(delay).await;
        }
        if let Some(failure) = before.failure {
            return Outcome::Respond(failure.to_response());
        }
        let response = self.route(request).await;
        if self.faults().drop_after_call(&path) {
            return Outcome::Drop;
        }
        Outcome::Respond(response)
    }

    async fn route(&self, request: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        let path = request.uri().path();
        let mut allowed: Vec<&str> = Vec::new();
        let mut found = None;
        for route in self.routes.iter().filter(|r| r.matches_path(path)) {
            match &route.method {
                None => {
                    found = Some(route);
                    break;
                }
                Some(method) if method == request.method() => {
                    found = Some(route);
                    break;
                }
                Some(method) => allowed.push(method.as_str()),
            }
        }
        if let Some(route) = found {
            let handled = CatchUnwind(Box::pin(route.handler.handle(request, &self.cx))).await;
            // A handler's bug is the sandbox's failure, answered like one: the caller's task
            // (in process) and the connection (over the socket) go on.
            return handled.unwrap_or_else(|()| {
                // The route as registered, not the request's path: that is the sender's text.
                tracing::error!(route = ?route, "sandbox: a handler panicked; answered 500");
                json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &serde_json::json!({"error": "server_error", "error_description": "the sandbox's handler failed"}),
                )
            });
        }
        if allowed.is_empty() {
            return json_response(
                StatusCode::NOT_FOUND,
                &serde_json::json!({"error": "not_found", "error_description": "no such route in the sandbox"}),
            );
        }
        let mut response = json_response(
            StatusCode::METHOD_NOT_ALLOWED,
            &serde_json::json!({"error": "method_not_allowed"}),
        );
        if let Ok(allow) = HeaderValue::try_from(allowed.join(", ")) {
            response.headers_mut().insert(http::header::ALLOW, allow);
        }
        response
    }
}

#[cfg(test)]
mod hostile_tests;
#[cfg(test)]
mod tests;
