//! The `Provider` trait that ties a provider's endpoints together, and the [`CallContext`]
//! through which it makes its calls.

use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::codec::{Endpoint, FromContext, RequestContext, TokenResponse, decode_response};
use crate::error::{EndpointError, Error, TransportError};
use crate::secret::{ClientSecret, RefreshToken};
use crate::token_set::{Extras, NoExtras, TokenSet};
use crate::transport::HttpClient;

/// A provider: how to refresh a session, how (if at all) to obtain tokens with no user,
/// its reuse window, and where a user re-authorizes.
///
/// Implementations are a few lines over `#[token_endpoint]` definitions; the manager
/// supplies retries, single-flight, persistence and events.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    /// The typed extras this provider's token sets carry.
    type Extras: Extras;

    /// A stable name (`"vaultist"`): stores keep sessions under it and the
    /// [`client_id`](Self::client_id), and logs and metrics name the provider with it.
    fn name(&self) -> &str;

    /// The client this provider refreshes for, as the provider's server knows it (an OAuth
    /// `client_id`, an app key, a partner or merchant id), if it has one; never a secret.
    /// Where a config can name any server, the server too: the generic OAuth 2.0
    /// provider's is `app-1@https://id.example/token`.
    ///
    /// A refresh token is bound to the client it was issued to (RFC 6749 §6), so a manager
    /// keeps its sessions in the store under the provider's name and this id
    /// ([`TokenManager::namespace`](crate::manager::TokenManager::namespace)): two managers
    /// of one provider for two clients (two merchants, or two servers a generic OAuth 2.0
    /// config reaches under one name) can share a store, and neither loads, refreshes with
    /// or sends to its server the other's tokens. Changing it starts from no sessions, as
    /// the old client's refresh tokens would be refused anyway. `None` (the default) keeps
    /// sessions under the name alone.
    fn client_id(&self) -> Option<String> {
        None
    }

    /// How long after a rotation the provider answers the old refresh token again with the
    /// same new pair. A refresh whose answer was lost is retried only inside this window.
    fn reuse_window(&self) -> Duration {
        Duration::ZERO
    }

    /// Refreshes `current` (which has not been merged: the manager keeps the previous refresh
    /// token when the answer carries none).
    async fn refresh(
        &self,
        cx: &CallContext,
        current: &TokenSet<Self::Extras>,
    ) -> Result<TokenSet<Self::Extras>, Error>;

    /// Whether [`issue`](Self::issue) can obtain a set with no user (client credentials,
    /// an account key). The manager then issues instead of asking for re-authorization,
    /// and when a refresh is refused for a reason the provider does not say
    /// ([`ErrorKind::Rejected`](crate::error::ErrorKind::Rejected)).
    fn can_issue(&self) -> bool {
        false
    }

    /// Obtains a new set with no user involved.
    async fn issue(&self, cx: &CallContext) -> Result<TokenSet<Self::Extras>, Error> {
        let _ = cx;
        Err(Error::Config(format!(
            "provider `{}` cannot obtain tokens without a user",
            self.name()
        )))
    }

    /// Where to send the user of `session` to authorize again, if the provider has such a URL.
    fn authorize_url(&self, session: &str) -> Option<String> {
        let _ = session;
        None
    }
}

/// A provider's refresh endpoint, declared with `provider = "name"` in its
/// `#[token_endpoint(...)]`: what [`RefreshProvider`] refreshes with, and what the sandbox
/// serves ([`SandboxBuilder::serve`](crate::sandbox::SandboxBuilder::serve)) by reading the
/// same declarations the other way round.
///
/// ```
/// use token_core::provider::RefreshEndpoint;
/// use token_core::{secret::RefreshToken, token_endpoint};
/// # #[token_endpoint(response)] pub struct Tokens { pub access_token: token_core::secret::AccessToken }
/// # #[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
///
/// #[derive(Clone, Debug)]
/// pub struct AcmeConfig {
///     pub client_id: String,
/// }
///
/// #[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = AcmeConfig, provider = "acme")]
/// pub struct Refresh {
///     #[token(from = config.client_id)]
///     pub client_id: String,
///     pub refresh_token: RefreshToken,
/// }
///
/// let config = AcmeConfig { client_id: "app-1".into() };
/// let request = Refresh { client_id: "app-2".into(), refresh_token: RefreshToken::new("rt") };
/// assert_eq!(Refresh::PROVIDER, "acme");
/// assert_eq!(request.refresh_token().unwrap().expose_secret(), "rt");
/// assert_eq!(request.config_mismatch(&config), Some("client_id"));
/// assert!(Refresh::verify_key(&config).is_none()); // no declared signature
/// ```
pub trait RefreshEndpoint: Endpoint + FromContext<Self::Config> + Send + Sync + 'static {
    /// The provider's configuration (`config = Type`; `()` without one).
    type Config: Send + Sync + 'static;
    /// The provider's name (`provider = "name"`): [`Provider::name`] of the
    /// [`RefreshProvider`].
    const PROVIDER: &'static str;

    /// Whether the endpoint obtains tokens with no user (`issue`: client credentials, SNAP
    /// BI's B2B access token): [`RefreshProvider`] then issues with it when a session has
    /// no refresh token, and asks it again rather than refreshing; the sandbox issues a new
    /// set for each request.
    const ISSUES: bool = false;

    /// Server side: the refresh token the request carries (the field `from = refresh_token`).
    fn refresh_token(&self) -> Option<RefreshToken>;

    /// Server side: the wire name of the first field read `from = config.*` whose value is
    /// not `config`'s (another app id, a wrong client secret); `None` when all match.
    fn config_mismatch(&self, config: &Self::Config) -> Option<&'static str>;

    /// Server side: the key that checks the request's declared HMAC signature, the config
    /// value its `signing_key` field reads. `None` without a signature, and for RSA, whose
    /// requests are checked with the public key the config does not hold.
    fn verify_key(config: &Self::Config) -> Option<ClientSecret>;

    /// The client `config` is for, the value of the field declared
    /// `#[token(from = config.<field>, client_id)]`: [`Provider::client_id`] of the
    /// [`RefreshProvider`]. `None` when no field is declared so.
    fn client_id(config: &Self::Config) -> Option<String> {
        let _ = config;
        None
    }

    /// Server side: the wire name of the first `now_*` field declared with a `window`
    /// (`#[token(from = now_unix_ms, window = 7200)]`) whose time is missing, unreadable,
    /// or not less than the window from `now`, either way; `None` when every such time is
    /// inside its window (and for requests that declare none).
    fn stale_time(&self, now: time::OffsetDateTime) -> Option<&'static str> {
        let _ = now;
        None
    }
}

/// What a refresh keeps of the extras it replaces: `#[token(keep)]` fields of an
/// `#[token_endpoint(extras)]` struct are taken from the previous set when the answer has
/// none, or a blank one (`""`) (WeChat names a user's `unionid` at authorization, not on
/// refresh).
///
/// [`RefreshProvider`] applies it; a hand-written [`Provider`] calls it in its `refresh`.
///
/// ```
/// use token_core::provider::KeepExtras;
/// use token_core::token_endpoint;
///
/// #[token_endpoint(extras)]
/// #[derive(Clone, Debug, Default, PartialEq)]
/// pub struct User {
///     pub openid: Option<String>,
///     #[token(keep)]
///     pub unionid: Option<String>,
/// }
///
/// let previous = User { openid: Some("o1".into()), unionid: Some("u1".into()) };
/// let mut answer = User { openid: None, unionid: None };
/// answer.keep_from(&previous);
/// assert_eq!(answer, User { openid: None, unionid: Some("u1".into()) });
/// ```
pub trait KeepExtras: Extras {
    /// The `Option` fields, by wire name, that a success answer reads leniently: a value
    /// the field's type cannot read is treated as absent, with a warning, rather than costing
    /// the tokens. `#[token_endpoint(extras)]` lists every `Option` field; the default none.
    #[doc(hidden)]
    const LENIENT_FIELDS: &'static [(&'static str, crate::macro_support::ReadsAs)] = &[];

    /// Every field's wire name: what a response flattening these extras (`#[token(extras)]`)
    /// reads at its top level, so that a request checks at compile time that none of them is
    /// its error's code field (see [`TokenResponse::EXTRAS_PATHS`](crate::codec::TokenResponse::EXTRAS_PATHS)).
    /// `#[token_endpoint(extras)]` lists them; the default none.
    #[doc(hidden)]
    const WIRE_NAMES: &'static [&'static str] = &[];

    /// Fills what `self`, the answer's extras, lacks from `previous`, the session's. The
    /// default keeps nothing.
    fn keep_from(&mut self, previous: &Self) {
        let _ = previous;
    }
}

impl KeepExtras for NoExtras {}

/// The [`Provider`] of a provider whose refresh is one declared endpoint `E`: the
/// request built from the config and the session, sent to `base_url`, its answer decoded;
/// the name is `E`'s `provider = "..."`. A provider crate names it with a type alias:
///
/// ```
/// # use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
/// # #[token_endpoint(response)] pub struct Tokens { pub access_token: AccessToken }
/// # #[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
/// # #[derive(Clone, Debug)] pub struct AcmeConfig { pub client_id: String }
/// # #[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = AcmeConfig, provider = "acme")]
/// # pub struct Refresh { #[token(from = config.client_id)] pub client_id: String, pub refresh_token: RefreshToken }
/// use token_core::provider::Provider;
/// use token_core::provider::RefreshProvider;
///
/// /// Acme at `base_url`.
/// pub type Acme = RefreshProvider<Refresh>;
///
/// let acme = Acme::new("https://auth.acme.example".parse()?, AcmeConfig { client_id: "app-1".into() });
/// assert_eq!(acme.name(), "acme");
/// assert_eq!(acme.config().client_id, "app-1");
/// assert!(!acme.can_issue()); // a dead refresh token means the user authorizes again
/// # Ok::<(), url::ParseError>(())
/// ```
///
/// A grant with no user (client credentials) declared with `issue` is a provider too: the
/// manager issues with it, and asks it again when the token expires.
///
/// ```
/// # use token_core::{secret::AccessToken, token_endpoint};
/// # #[token_endpoint(response)] pub struct Tokens { pub access_token: AccessToken }
/// # #[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
/// # #[derive(Clone, Debug)] pub struct AcmeConfig { pub client_id: String }
/// use token_core::provider::{Provider, RefreshProvider};
///
/// #[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = AcmeConfig,
///                  provider = "acme-app", issue, body(name = "grant_type", value = "client_credentials"))]
/// pub struct AppToken {
///     #[token(from = config.client_id)]
///     pub client_id: String,
/// }
///
/// let app = RefreshProvider::<AppToken>::new("https://auth.acme.example".parse()?, AcmeConfig { client_id: "app-1".into() });
/// assert!(app.can_issue());
/// # Ok::<(), url::ParseError>(())
/// ```
///
/// Errors are the manager's [`Error`]: a session without a refresh token (or without a
/// value the request reads) is [`Error::Endpoint`] with [`EndpointError::Encode`] and no call
/// is made; the provider's answer is classified as its error type declares.
pub struct RefreshProvider<E: RefreshEndpoint> {
    base_url: url::Url,
    config: E::Config,
    reuse_window: Duration,
    authorize_url: Option<Arc<AuthorizeUrl>>,
    _endpoint: PhantomData<fn() -> E>,
}

type AuthorizeUrl = dyn Fn(&str) -> String + Send + Sync;

impl<E: RefreshEndpoint> RefreshProvider<E> {
    /// The provider for the API at `base_url`.
    pub fn new(base_url: url::Url, config: E::Config) -> Self {
        Self {
            base_url,
            config,
            reuse_window: Duration::ZERO,
            authorize_url: None,
            _endpoint: PhantomData,
        }
    }

    /// Declares the provider's reuse window ([`Provider::reuse_window`]): how long it answers
    /// a rotated refresh token again with the same new pair.
    pub fn with_reuse_window(mut self, window: Duration) -> Self {
        self.reuse_window = window;
        self
    }

    /// Where a session's user authorizes again ([`Provider::authorize_url`]), made from the
    /// session's name.
    ///
    /// ```
    /// # use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
    /// # #[token_endpoint(response)] pub struct Tokens { pub access_token: AccessToken }
    /// # #[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
    /// # #[token_endpoint(post = "/token", form, response = Tokens, error = Failure, provider = "acme")]
    /// # pub struct Refresh { pub refresh_token: RefreshToken }
    /// use token_core::provider::Provider;
    /// use token_core::provider::RefreshProvider;
    ///
    /// let acme = RefreshProvider::<Refresh>::new("https://auth.acme.example".parse()?, ())
    ///     .with_authorize_url(|session| format!("https://acme.example/connect?state={session}"));
    /// assert_eq!(acme.authorize_url("alice").as_deref(), Some("https://acme.example/connect?state=alice"));
    /// # Ok::<(), url::ParseError>(())
    /// ```
    pub fn with_authorize_url(
        mut self,
        url: impl Fn(&str) -> String + Send + Sync + 'static,
    ) -> Self {
        self.authorize_url = Some(Arc::new(url));
        self
    }

    /// The configuration.
    pub fn config(&self) -> &E::Config {
        &self.config
    }

    /// The API's base URL.
    pub fn base_url(&self) -> &url::Url {
        &self.base_url
    }
}

impl<E: RefreshEndpoint> Clone for RefreshProvider<E>
where
    E::Config: Clone,
{
    fn clone(&self) -> Self {
        Self {
            base_url: self.base_url.clone(),
            config: self.config.clone(),
            reuse_window: self.reuse_window,
            authorize_url: self.authorize_url.clone(),
            _endpoint: PhantomData,
        }
    }
}

impl<E: RefreshEndpoint> fmt::Debug for RefreshProvider<E>
where
    E::Config: fmt::Debug,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RefreshProvider")
            .field("provider", &E::PROVIDER)
            .field("base_url", &crate::redact::url_shown(&self.base_url))
            .field("config", &self.config)
            .field("reuse_window", &self.reuse_window)
            .field("authorize_url", &self.authorize_url.is_some())
            .finish()
    }
}

#[async_trait]
impl<E> Provider for RefreshProvider<E>
where
    E: RefreshEndpoint,
    <E::Response as TokenResponse>::Extras: KeepExtras,
{
    type Extras = <E::Response as TokenResponse>::Extras;

    fn name(&self) -> &str {
        E::PROVIDER
    }

    fn client_id(&self) -> Option<String> {
        E::client_id(&self.config)
    }

    fn reuse_window(&self) -> Duration {
        self.reuse_window
    }

    fn authorize_url(&self, session: &str) -> Option<String> {
        self.authorize_url.as_ref().map(|url| url(session))
    }

    fn can_issue(&self) -> bool {
        E::ISSUES
    }

    async fn issue(&self, cx: &CallContext) -> Result<TokenSet<Self::Extras>, Error> {
        if !E::ISSUES {
            return Err(Error::Config(format!(
                "provider `{}` cannot obtain tokens without a user",
                E::PROVIDER
            )));
        }
        let context = RequestContext::new(&self.config).with_now(cx.now());
        let request = E::from_context(&context)?;
        cx.call(&self.base_url, &request).await
    }

    async fn refresh(
        &self,
        cx: &CallContext,
        current: &TokenSet<Self::Extras>,
    ) -> Result<TokenSet<Self::Extras>, Error> {
        if E::ISSUES {
            // A grant with no user has nothing to refresh: it is asked again.
            return self.issue(cx).await;
        }
        let context = RequestContext::for_refresh(&self.config, current).with_now(cx.now());
        // A refresh needs the token even where the request declares it optional.
        context.refresh_token()?;
        let request = E::from_context(&context)?;
        let mut set = cx.call(&self.base_url, &request).await?;
        set.extras.keep_from(&current.extras);
        Ok(set)
    }
}

/// Signs requests and verifies answers: the open extension point for schemes that a
/// declared `sign(...)` ([`crate::sign`]) cannot describe, such as Alipay+'s RSA256 over
/// `<METHOD> <URI>\n<Client-Id>.<Request-Time>.<Body>` with a structured `Signature` header
/// and signed answers. Pass one to [`CallContext::call_signed`].
///
/// A signer may change anything in the encoded request: add headers, or query parameters
/// (rebuild the URI), or rewrite the body. `now` is the manager's clock.
///
/// ```
/// use time::OffsetDateTime;
/// use token_core::{error::EndpointError, provider::Signer};
///
/// /// Adds `ts=<UNIX seconds>` to the query, and an `X-Sign` header over the query.
/// struct QuerySigner;
///
/// impl Signer for QuerySigner {
///     fn sign(&self, request: &mut http::Request<Vec<u8>>, now: OffsetDateTime) -> Result<(), EndpointError> {
///         let uri = request.uri().to_string();
///         let joined = if uri.contains('?') { '&' } else { '?' };
///         let uri = format!("{uri}{joined}ts={}", now.unix_timestamp());
///         *request.uri_mut() = uri.parse().map_err(|_| EndpointError::Encode("bad URI".into()))?;
///         let mac = token_core::sign::hmac_sha256(b"secret", request.uri().query().unwrap_or("").as_bytes());
///         request.headers_mut().insert("X-Sign", mac.iter().map(|b| format!("{b:02x}")).collect::<String>().parse().unwrap());
///         Ok(())
///     }
/// }
///
/// let mut request = http::Request::post("https://api.example/token?a=1").body(Vec::new()).unwrap();
/// QuerySigner.sign(&mut request, OffsetDateTime::UNIX_EPOCH + time::Duration::seconds(7)).unwrap();
/// assert_eq!(request.uri(), "https://api.example/token?a=1&ts=7");
/// assert_eq!(request.headers()["X-Sign"].len(), 64);
/// ```
pub trait Signer: Send + Sync {
    /// Adds the signature headers to `request`.
    fn sign(
        &self,
        request: &mut http::Request<Vec<u8>>,
        now: OffsetDateTime,
    ) -> Result<(), EndpointError>;
    /// Checks the answer's signature.
    fn verify(
        &self,
        request: &http::Request<Vec<u8>>,
        response: &http::Response<Vec<u8>>,
    ) -> Result<(), EndpointError> {
        let _ = (request, response);
        Ok(())
    }
}

/// What a provider's calls go through: the transport, the clock and the session.
#[derive(Clone)]
pub struct CallContext {
    client: Arc<dyn HttpClient>,
    clock: Arc<dyn Clock>,
    session: Arc<str>,
}

impl std::fmt::Debug for CallContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CallContext")
            .field("session", &self.session)
            .finish_non_exhaustive()
    }
}

impl CallContext {
    /// A context for `session`.
    pub fn new(
        client: Arc<dyn HttpClient>,
        clock: Arc<dyn Clock>,
        session: impl Into<Arc<str>>,
    ) -> Self {
        Self {
            client,
            clock,
            session: session.into(),
        }
    }

    /// The session the call is for.
    pub fn session(&self) -> &str {
        &self.session
    }

    /// The current time.
    pub fn now(&self) -> OffsetDateTime {
        self.clock.now()
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The transport.
    pub fn client(&self) -> &Arc<dyn HttpClient> {
        &self.client
    }

    /// Sends a raw request.
    pub async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        self.client.send(request).await
    }

    /// Encodes `endpoint` against `base_url`, sends it and decodes the answer.
    pub async fn call<E: Endpoint>(
        &self,
        base_url: &url::Url,
        endpoint: &E,
    ) -> Result<TokenSet<<E::Response as TokenResponse>::Extras>, Error> {
        self.call_inner(base_url, endpoint, None, false).await
    }

    /// Like [`call`](Self::call), sent to `url` itself: its path replaces the endpoint's
    /// (a token URL configured whole, as OAuth 2.0's `token_url` is); `url`'s query and
    /// the endpoint's own query parameters are both sent, as with a base URL. An endpoint
    /// with a declared signature (`sign(...)`), which may cover its path, is an
    /// [`EndpointError::Encode`], nothing sent.
    pub async fn call_to<E: Endpoint>(
        &self,
        url: &url::Url,
        endpoint: &E,
    ) -> Result<TokenSet<<E::Response as TokenResponse>::Extras>, Error> {
        self.call_inner(url, endpoint, None, true).await
    }

    /// Like [`call`](Self::call), signing the request and verifying the answer with `signer`.
    pub async fn call_signed<E: Endpoint>(
        &self,
        base_url: &url::Url,
        endpoint: &E,
        signer: &dyn Signer,
    ) -> Result<TokenSet<<E::Response as TokenResponse>::Extras>, Error> {
        self.call_inner(base_url, endpoint, Some(signer), false)
            .await
    }

    /// Sends `endpoint` against `base_url`, or to it, its path in place of the endpoint's
    /// (`at_url`), and decodes the answer, every secret the request carried kept out of
    /// errors.
    async fn call_inner<E: Endpoint>(
        &self,
        base_url: &url::Url,
        endpoint: &E,
        signer: Option<&dyn Signer>,
        at_url: bool,
    ) -> Result<TokenSet<<E::Response as TokenResponse>::Extras>, Error> {
        if at_url && E::SIGNATURE.is_some() {
            // Its declared signature may cover the endpoint's path, which `url` replaces.
            return Err(EndpointError::Encode(
                "a signed request is sent against a base URL (`call`), not to a token URL"
                    .to_owned(),
            )
            .into());
        }
        let mut request = endpoint.encode_request(base_url)?;
        if at_url {
            // Encoded against `base_url`, its query is `base_url`'s and the endpoint's.
            let mut url = base_url.clone();
            url.set_fragment(None);
            url.set_query(request.uri().query());
            *request.uri_mut() = http::Uri::try_from(url.as_str()).map_err(|_| {
                EndpointError::Encode("the token URL is not a request URI".to_owned())
            })?;
        }
        if let Some(signer) = signer {
            signer.sign(&mut request, self.now())?;
        }
        let retained = signer.map(|_| clone_request(&request));
        // The declared signature is kept out of errors too: an answer may echo it.
        let signature = E::SIGNATURE.and_then(|declared| declared.carried_by(&request));
        // So are the credentials of its `Authorization` as sent: HTTP Basic's Base64 of the
        // client id and secret, which anyone decodes, may be echoed in that spelling.
        let authorization = request.headers().get(http::header::AUTHORIZATION).cloned();
        let response = self.send(request).await?;
        if let (Some(signer), Some(request)) = (signer, retained.as_ref()) {
            signer.verify(request, &response)?;
        }
        let mut secrets = endpoint.secrets();
        secrets.extend(signature.as_deref());
        secrets.extend(authorization.as_ref().and_then(credentials));
        Ok(decode_response::<E>(&response, self.now(), &secrets)?)
    }
}

/// The credentials of an `Authorization` value, after its scheme (`Basic`, `Bearer`).
fn credentials(authorization: &http::HeaderValue) -> Option<&str> {
    let (_scheme, credentials) = authorization.to_str().ok()?.trim().split_once(' ')?;
    Some(credentials.trim())
}

fn clone_request(request: &http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    let mut copy = http::Request::new(request.body().clone());
    *copy.method_mut() = request.method().clone();
    *copy.uri_mut() = request.uri().clone();
    *copy.headers_mut() = request.headers().clone();
    copy
}

/// Provider trait objects are not needed (the manager is generic), but the signer is used
/// behind `dyn`: keep it object safe.
const _: Option<&dyn Signer> = None;
