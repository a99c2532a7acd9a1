//! A tower [`Layer`] that adds the session's bearer token to every request of any tower HTTP
//! client (hyper-util's `Client`, tonic channels, axum's test clients), and after a 401 (or
//! a gRPC `UNAUTHENTICATED`, which a gRPC server sends as HTTP 200 with `grpc-status: 16`)
//! refreshes once and, when the body can be cloned, resends once.
//!
//! The reqwest-middleware equivalent is [`BearerAuth`](crate::middleware::BearerAuth).
//!
//! ```
//! use std::convert::Infallible;
//! use tower::{Service, ServiceBuilder, ServiceExt, service_fn};
//! use token_core::tower::BearerLayer;
//! # use token_core::{secret::AccessToken, provider::CallContext, error::Error, store::MemoryStore, token_set::NoExtras, provider::Provider, manager::TokenManager, token_set::TokenSet, async_trait};
//! # struct Fixed;
//! # #[async_trait] impl Provider for Fixed {
//! #     type Extras = NoExtras;
//! #     fn name(&self) -> &str { "fixed" }
//! #     async fn refresh(&self, _: &CallContext, _: &TokenSet) -> Result<TokenSet, Error> { unreachable!() }
//! # }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let manager = TokenManager::builder(Fixed).store(MemoryStore::new()).build()?;
//! manager.insert("customer-1", TokenSet::new(AccessToken::new("at-1"))).await?;
//!
//! // Any `Service<http::Request<B>>`: here one that echoes the header it was sent.
//! let api = service_fn(|request: http::Request<String>| async move {
//!     let auth = request.headers()["authorization"].to_str().unwrap().to_owned();
//!     Ok::<_, Infallible>(http::Response::new(auth))
//! });
//! let mut client = ServiceBuilder::new()
//!     .layer(BearerLayer::new(manager, "customer-1"))
//!     .service(api);
//! let response = client.ready().await?.call(http::Request::new(String::new())).await?;
//! assert_eq!(response.body(), "Bearer at-1");
//! # Ok(()) }
//! ```

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use http::StatusCode;
use http::header::{AUTHORIZATION, CONTENT_TYPE};
use tower_layer::Layer;
use tower_service::Service;

use crate::error::Error;
use crate::manager::TokenManager;
use crate::middleware::{BearerHeader, NoResend, OriginScope, Session, insufficient_scope};
use crate::provider::Provider;

/// Whether a request can be sent again after a 401: [`Resend`] for bodies that can be cloned
/// (`String`, `Full<Bytes>`, `Vec<u8>`), [`RefreshOnly`] for any body.
pub trait ResendPolicy<B>: Clone + Send + Sync + 'static {
    /// A copy of `request` to resend, or `None` to return the 401 as it is.
    fn copy(&self, request: &http::Request<B>) -> Option<http::Request<B>>;
}

/// Resends a request after a 401 with a fresh token, once; its body, headers and
/// extensions are cloned before the first send. A request carrying [`NoResend`] in its
/// extensions is not resent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Resend;

impl<B: Clone> ResendPolicy<B> for Resend {
    fn copy(&self, request: &http::Request<B>) -> Option<http::Request<B>> {
        if request.extensions().get::<NoResend>().is_some() {
            return None;
        }
        let mut copy = http::Request::new(request.body().clone());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.version_mut() = request.version();
        *copy.headers_mut() = request.headers().clone();
        // Every extension (the session, a trace context, a deadline the inner service
        // reads): the resend is the same request.
        *copy.extensions_mut() = request.extensions().clone();
        Some(copy)
    }
}

/// Never resends: after a 401 (or a gRPC `UNAUTHENTICATED`) the token is refreshed for the
/// next request and the answer is returned (or, if that refresh fails, its error, as
/// [`BearerError::Token`]). For streaming bodies (tonic, hyper's `Incoming`) that cannot be
/// sent twice.
#[derive(Clone, Copy, Debug, Default)]
pub struct RefreshOnly;

impl<B> ResendPolicy<B> for RefreshOnly {
    fn copy(&self, _: &http::Request<B>) -> Option<http::Request<B>> {
        None
    }
}

/// The [`Layer`] that wraps a service in [`BearerService`].
pub struct BearerLayer<P: Provider, R = Resend> {
    manager: TokenManager<P>,
    session: Option<Arc<str>>,
    policy: R,
    /// The last token's `Authorization` value, shared by every service the layer makes.
    header: Arc<BearerHeader>,
    /// Set by [`only_to`](Self::only_to): other origins get no token.
    scope: Option<Arc<OriginScope>>,
}

impl<P: Provider, R: Clone> Clone for BearerLayer<P, R> {
    fn clone(&self) -> Self {
        Self {
            manager: self.manager.clone(),
            session: self.session.clone(),
            policy: self.policy.clone(),
            header: self.header.clone(),
            scope: self.scope.clone(),
        }
    }
}

/// The manager, the session, the resend policy and the origin: not the last token sent.
impl<P: Provider, R: std::fmt::Debug> std::fmt::Debug for BearerLayer<P, R> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerLayer")
            .field("manager", &self.manager)
            .field("session", &self.session)
            .field("policy", &self.policy)
            .field("only_to", &self.scope)
            .finish_non_exhaustive()
    }
}

impl<P: Provider> BearerLayer<P> {
    /// Authenticates every request as `session` (unless a request carries [`Session`] in its
    /// extensions), resending after a 401.
    pub fn new(manager: TokenManager<P>, session: impl Into<Arc<str>>) -> Self {
        Self {
            manager,
            session: Some(session.into()),
            policy: Resend,
            header: Arc::default(),
            scope: None,
        }
    }

    /// Authenticates each request as the [`Session`] in its extensions; a request without
    /// one fails with [`Error::Config`].
    pub fn per_request(manager: TokenManager<P>) -> Self {
        Self {
            manager,
            session: None,
            policy: Resend,
            header: Arc::default(),
            scope: None,
        }
    }
}

impl<P: Provider, R> BearerLayer<P, R> {
    /// Sets what happens after a 401: [`Resend`] (the default) or [`RefreshOnly`].
    pub fn resend<Q>(self, policy: Q) -> BearerLayer<P, Q> {
        BearerLayer {
            manager: self.manager,
            session: self.session,
            policy,
            header: self.header,
            scope: self.scope,
        }
    }

    /// Sends the token only to requests for `origin` (`https://api.example.com`, a port if
    /// not the scheme's default): a request for any other origin, or with a relative URI,
    /// goes to the inner service untouched, without the token, and its 401 is no verdict on
    /// the token.
    ///
    /// A tonic channel sends relative URIs (a path; the channel adds its origin below this
    /// layer), so with `only_to` none of its requests would get the token: the first such
    /// request logs a warning. A channel is bound to one origin and follows no redirect:
    /// leave `only_to` unset there.
    ///
    /// Without it every request through the layer gets the token, whatever its URI. That
    /// matters where a layer that follows redirects sits *outside* this one (each hop is a
    /// new request through it: tower-http's `FollowRedirect` wrapped around this layer would
    /// hand the token to whatever host a redirect names). With `only_to`, that is the place
    /// for it: each hop to another origin goes without the token, and its 401 refreshes
    /// nothing. Placed inside this layer instead, `FollowRedirect`'s default policy drops
    /// `Authorization` on a hop to another origin, but this layer sees only the last hop's
    /// answer, not where it came from: that origin's 401 refreshes the token (and the
    /// request is resent) as if the API had refused it.
    ///
    /// Fails with [`Error::Config`] if `origin` is not an `http` or `https` origin (a
    /// path, a query or user information is refused).
    pub fn only_to(mut self, origin: &str) -> Result<Self, Error> {
        self.scope = Some(Arc::new(OriginScope::parse(origin)?));
        Ok(self)
    }
}

impl<P: Provider, R: Clone, S> Layer<S> for BearerLayer<P, R> {
    type Service = BearerService<P, S, R>;

    fn layer(&self, inner: S) -> Self::Service {
        BearerService {
            manager: self.manager.clone(),
            session: self.session.clone(),
            policy: self.policy.clone(),
            header: self.header.clone(),
            scope: self.scope.clone(),
            inner,
        }
    }
}

/// Adds `Authorization: Bearer <token>` from a [`TokenManager`] to every request of `S`
/// that has no `Authorization` header of its own (a request the caller gave credentials of
/// its own goes to `S` untouched, and its 401 is no verdict on the token).
pub struct BearerService<P: Provider, S, R = Resend> {
    manager: TokenManager<P>,
    session: Option<Arc<str>>,
    policy: R,
    header: Arc<BearerHeader>,
    scope: Option<Arc<OriginScope>>,
    inner: S,
}

impl<P: Provider, S: Clone, R: Clone> Clone for BearerService<P, S, R> {
    fn clone(&self) -> Self {
        Self {
            manager: self.manager.clone(),
            session: self.session.clone(),
            policy: self.policy.clone(),
            header: self.header.clone(),
            scope: self.scope.clone(),
            inner: self.inner.clone(),
        }
    }
}

/// As [`BearerLayer`]'s, with the inner service.
impl<P: Provider, S: std::fmt::Debug, R: std::fmt::Debug> std::fmt::Debug
    for BearerService<P, S, R>
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BearerService")
            .field("manager", &self.manager)
            .field("session", &self.session)
            .field("policy", &self.policy)
            .field("only_to", &self.scope)
            .field("inner", &self.inner)
            .finish_non_exhaustive()
    }
}

/// What a [`BearerService`] fails with: the token could not be had, or the inner service
/// failed.
///
/// It is a [`std::error::Error`] (and so goes into a `Box<dyn Error>`, an `anyhow::Error`,
/// or under tower's layers that take any `Into<BoxError>`: a `Buffer` or a `Timeout`
/// outside) when the inner service's error is one. tower's own middleware fail with a
/// `BoxError` (`Box<dyn Error + Send + Sync>`), which is not: with a `Timeout`, a `Buffer`
/// or a `LoadShed` under the layer, map their errors to one below it,
/// `.layer(BearerLayer::new(manager, "customer-1")).map_err(std::io::Error::other).timeout(...)`
/// (it shows the boxed error's message and causes, and `get_ref` gives the boxed error back
/// for a downcast: `Elapsed`, `Overloaded`).
#[derive(Debug, thiserror::Error)]
pub enum BearerError<E> {
    /// No token: the manager's error (re-auth, a transient provider failure, ...).
    #[error("no access token: {0}")]
    Token(#[source] Error),
    /// The inner service's error.
    #[error(transparent)]
    Inner(E),
}

/// The future of a [`BearerService`] call.
pub type BearerFuture<T, E> = Pin<Box<dyn Future<Output = Result<T, BearerError<E>>> + Send>>;

impl<P, S, R, B, RB> Service<http::Request<B>> for BearerService<P, S, R>
where
    P: Provider,
    S: Service<http::Request<B>, Response = http::Response<RB>> + Clone + Send + 'static,
    S::Future: Send,
    S::Error: Send,
    R: ResendPolicy<B>,
    B: Send + 'static,
    RB: Send + 'static,
{
    type Response = http::Response<RB>;
    type Error = BearerError<S::Error>;
    type Future = BearerFuture<Self::Response, S::Error>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx).map_err(BearerError::Inner)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The inner service was made ready for this call: take it, and leave a fresh clone
        // (tower's rule for services called from a boxed future).
        let fresh = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, fresh);
        // A request with credentials of the caller's own, or for another origin than
        // `only_to`'s: untouched, and its 401 is no verdict on the token.
        if request.headers().contains_key(AUTHORIZATION)
            || self
                .scope
                .as_ref()
                .is_some_and(|scope| !scope.admits_uri(request.uri()))
        {
            return Box::pin(async move { inner.call(request).await.map_err(BearerError::Inner) });
        }
        let manager = self.manager.clone();
        let session = request
            .extensions()
            .get::<Session>()
            .map(|Session(name)| name.clone())
            .or_else(|| self.session.clone());
        let policy = self.policy.clone();
        let header = self.header.clone();
        Box::pin(async move {
            let session = session.ok_or_else(|| {
                BearerError::Token(Error::Config(
                    "BearerLayer::per_request needs a Session extension on the request".into(),
                ))
            })?;
            let token = manager
                .access_token(&session)
                .await
                .map_err(BearerError::Token)?;
            let again = policy.copy(&request);
            request.headers_mut().insert(
                AUTHORIZATION,
                header.value(&token).map_err(BearerError::Token)?,
            );
            let response = inner.call(request).await.map_err(BearerError::Inner)?;
            if !refuses_token(&response) {
                return Ok(response);
            }
            tracing::debug!(session = %crate::redact::Printable(&session), "API refused the access token; refreshing");
            let fresh = manager
                .refresh_rejected(&session, &token)
                .await
                .map_err(BearerError::Token)?;
            let Some(mut again) = again else {
                return Ok(response);
            };
            if fresh == token {
                // A token obtained after a 401 a moment ago (within the failure cooldown)
                // refused again: the API refuses more than the token, and its answer stands.
                return Ok(response);
            }
            again.headers_mut().insert(
                AUTHORIZATION,
                header.value(&fresh).map_err(BearerError::Token)?,
            );
            // Let go of the refused answer (and its connection, its body perhaps still
            // coming) before the resend: a server or proxy that allows one connection per
            // client would never take the resend's.
            drop(response);
            // The inner service was ready for the first call only; wait for it again.
            std::future::poll_fn(|cx| inner.poll_ready(cx))
                .await
                .map_err(BearerError::Inner)?;
            inner.call(again).await.map_err(BearerError::Inner)
        })
    }
}

/// Whether `response` refuses the token: an HTTP 401, or a gRPC answer of `UNAUTHENTICATED`
/// (16), which a gRPC server (its auth interceptor) sends as HTTP 200 with the status among
/// the headers ("trailers-only"), never as a 401. Not one whose `WWW-Authenticate` says the
/// token lacks a scope: a refresh returns the same grant.
fn refuses_token<B>(response: &http::Response<B>) -> bool {
    let headers = response.headers();
    let grpc_unauthenticated = || {
        response.status() == StatusCode::OK
            && (headers.get(CONTENT_TYPE))
                .is_some_and(|value| value.as_bytes().starts_with(b"application/grpc"))
            && (headers.get("grpc-status")).is_some_and(|value| value.as_bytes() == b"16")
    };
    (response.status() == StatusCode::UNAUTHORIZED || grpc_unauthenticated())
        && !insufficient_scope(headers)
}
