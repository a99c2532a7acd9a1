//! The `Provider` trait that ties a provider's endpoints together, and the [`CallContext`]
//! through which it makes its calls.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::codec::{Endpoint, TokenResponse, decode_response};
use crate::error::{EndpointError, Error, TransportError};
use crate::token_set::{Extras, TokenSet};
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

    /// A stable name; stores keep sessions under it (`"vaultist"`).
    fn name(&self) -> &str;

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
    /// an account key). The manager then issues instead of asking for re-authorization.
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
/// use token_core::{EndpointError, Signer};
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
        self.call_inner(base_url, endpoint, None).await
    }

    /// Like [`call`](Self::call), signing the request and verifying the answer with `signer`.
    pub async fn call_signed<E: Endpoint>(
        &self,
        base_url: &url::Url,
        endpoint: &E,
        signer: &dyn Signer,
    ) -> Result<TokenSet<<E::Response as TokenResponse>::Extras>, Error> {
        self.call_inner(base_url, endpoint, Some(signer)).await
    }

    async fn call_inner<E: Endpoint>(
        &self,
        base_url: &url::Url,
        endpoint: &E,
        signer: Option<&dyn Signer>,
    ) -> Result<TokenSet<<E::Response as TokenResponse>::Extras>, Error> {
        let mut request = endpoint.encode_request(base_url)?;
        if let Some(signer) = signer {
            signer.sign(&mut request, self.now())?;
        }
        let retained = signer.map(|_| clone_request(&request));
        let response = self.send(request).await?;
        if let (Some(signer), Some(request)) = (signer, retained.as_ref()) {
            signer.verify(request, &response)?;
        }
        Ok(decode_response::<E>(
            &response,
            self.now(),
            &endpoint.secrets(),
        )?)
    }
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
