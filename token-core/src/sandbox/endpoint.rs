//! Serving a provider's `#[token_endpoint]` definitions over the issuer, so a provider's
//! sandbox is its client definitions read the other way round.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Handler, SandboxContext};
use crate::codec::{
    Endpoint, ErrorResponse, RefusalReason, RequestError, SignedRequestError, TokenResponse,
    encode_error, encode_response,
};
use crate::error::StoreError;
use crate::issuer::{Issued, IssuerError};
use crate::provider::RefreshEndpoint;
use crate::secret::ClientSecret;
use crate::token_set::TokenSet;

/// Why a request was refused: a standard [`RefusalReason`] and a message. The endpoint's
/// error answers it as its definitions declare ([`ErrorResponse::from_refusal`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Refusal {
    /// The reason, which picks the provider's code.
    pub reason: RefusalReason,
    /// What went wrong, for the answer's message.
    pub message: String,
}

impl Refusal {
    /// A refusal for `reason`, worded `message`.
    ///
    /// ```
    /// use token_core::codec::RefusalReason;
    /// use token_core::sandbox::endpoint::Refusal;
    ///
    /// let refusal = Refusal::new(RefusalReason::UnknownClient, "unknown account or public key");
    /// assert_eq!(refusal.reason, RefusalReason::UnknownClient);
    /// ```
    pub fn new(reason: RefusalReason, message: impl Into<String>) -> Self {
        Self {
            reason,
            message: message.into(),
        }
    }

    /// The provider's answer to this refusal: `E`'s declared error, encoded.
    pub fn answer<E: ErrorResponse>(&self) -> http::Response<Vec<u8>> {
        encode_error(&E::from_refusal(self.reason, &self.message))
    }
}

impl From<IssuerError> for Refusal {
    /// Invalid and used refresh tokens are `invalid_refresh_token`, expired ones
    /// `expired_refresh_token`, refused authorization codes `invalid_auth_code`, rejected access tokens `invalid_access_token`, a store
    /// failure `server_error` (its details are not sent), a name the store cannot hold
    /// ([`StoreError::Unsupported`]) `bad_request`.
    fn from(error: IssuerError) -> Self {
        let reason = match error {
            IssuerError::InvalidRefreshToken | IssuerError::UsedRefreshToken => {
                RefusalReason::InvalidRefreshToken
            }
            IssuerError::ExpiredRefreshToken => RefusalReason::ExpiredRefreshToken,
            IssuerError::InvalidAuthCode
            | IssuerError::ExpiredAuthCode
            | IssuerError::UsedAuthCode
            | IssuerError::AuthCodeMismatch => RefusalReason::InvalidAuthCode,
            IssuerError::InvalidAccessToken | IssuerError::ExpiredAccessToken => {
                RefusalReason::InvalidAccessToken
            }
            // A name the store cannot hold (a NUL character, an overlong subject): the
            // request's fault, and its message names no secret.
            IssuerError::Store(StoreError::Unsupported(reason)) => {
                return Self::new(RefusalReason::BadRequest, reason);
            }
            IssuerError::Store(_) => {
                return Self::new(RefusalReason::ServerError, "the issuer failed");
            }
        };
        Self::new(reason, error.to_string())
    }
}

impl From<RequestError> for Refusal {
    /// `bad_request`, worded as the request's reader found it.
    fn from(error: RequestError) -> Self {
        Self::new(RefusalReason::BadRequest, error.0)
    }
}

impl From<SignedRequestError> for Refusal {
    /// `bad_request` for an unreadable request or one without its signature (a mandatory
    /// parameter missing: Lazada's `MissingParameter` for `sign`), `bad_signature` for a
    /// wrong one (its message names no secret).
    fn from(error: SignedRequestError) -> Self {
        match error {
            SignedRequestError::Invalid(error) => error.into(),
            SignedRequestError::BadSignature(error @ crate::sign::SignatureError::Missing(_)) => {
                Self::new(RefusalReason::BadRequest, error.to_string())
            }
            SignedRequestError::BadSignature(error) => {
                Self::new(RefusalReason::BadSignature, error.to_string())
            }
        }
    }
}

type Grant<E> = dyn Fn(E, SandboxContext) -> Pin<Box<dyn Future<Output = Result<Issued, Refusal>> + Send>>
    + Send
    + Sync;

/// A [`Handler`] for endpoint `E`: decodes the request with `E`'s own definition, runs the
/// grant, and answers with `E`'s response, or with `E`'s error as its definitions declare
/// for the refusal.
///
/// ```
/// use token_core::sandbox::Sandbox;
/// use token_core::sandbox::endpoint::ServeEndpoint;
/// use token_core::oauth::RefreshTokenGrant;
///
/// let refresh = ServeEndpoint::<RefreshTokenGrant>::refresh(|grant| grant.refresh_token.clone());
/// let sandbox = Sandbox::builder().oauth_routes(false).route(http::Method::POST, "/oauth/token", refresh);
/// ```
pub struct ServeEndpoint<E: Endpoint> {
    grant: Arc<Grant<E>>,
    key: Option<ClientSecret>,
    _endpoint: PhantomData<fn() -> E>,
}

impl<E> ServeEndpoint<E>
where
    E: Endpoint + Send + 'static,
{
    /// Serves `E` with `grant` deciding what to issue.
    pub fn new<F, Fut>(grant: F) -> Self
    where
        F: Fn(E, SandboxContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Issued, Refusal>> + Send + 'static,
    {
        Self {
            grant: Arc::new(move |endpoint, cx| Box::pin(grant(endpoint, cx))),
            key: None,
            _endpoint: PhantomData,
        }
    }

    /// Checks each request's declared signature (`sign(...)`) with `key` (the shared secret
    /// for HMAC, the client's public key for RSA) before the grant runs; a wrong signature
    /// is refused as [`RefusalReason::BadSignature`], a missing one as
    /// [`RefusalReason::BadRequest`]. Without a key, a signed
    /// endpoint refuses every request as unreadable.
    pub fn verify_with(mut self, key: ClientSecret) -> Self {
        self.key = Some(key);
        self
    }

    /// Serves a refresh endpoint: the issuer rotates the refresh token `token_of` reads
    /// from the request, for no client in particular
    /// ([`Issuer::refresh`](crate::issuer::Issuer::refresh)): pairs issued with
    /// [`Issuer::issue`](crate::issuer::Issuer::issue) are refreshed, pairs bound to a client
    /// refused as unknown.
    pub fn refresh(
        token_of: impl Fn(&E) -> crate::secret::RefreshToken + Send + Sync + 'static,
    ) -> Self {
        let token_of = Arc::new(token_of);
        Self::new(move |endpoint: E, cx: SandboxContext| {
            let token = token_of(&endpoint);
            async move { Ok(cx.issuer().refresh(token.expose_secret()).await?) }
        })
    }

    /// Refuses with `refusal` every request that fails `check` (an unknown app id, a wrong
    /// merchant), before the grant runs.
    ///
    /// ```
    /// use token_core::codec::RefusalReason;
    /// use token_core::sandbox::endpoint::{Refusal, ServeEndpoint};
    /// use token_core::oauth::RefreshTokenGrant;
    ///
    /// let refresh = ServeEndpoint::<RefreshTokenGrant>::refresh(|grant| grant.refresh_token.clone())
    ///     .require(
    ///         |grant| grant.scope.as_deref() != Some("admin"),
    ///         Refusal::new(RefusalReason::BadRequest, "no admin tokens here"),
    ///     );
    /// # let _ = refresh;
    /// ```
    pub fn require(
        self,
        check: impl Fn(&E) -> bool + Send + Sync + 'static,
        refusal: Refusal,
    ) -> Self {
        let grant = self.grant;
        let checked = Self::new(move |endpoint: E, cx: SandboxContext| {
            let run = check(&endpoint).then(|| grant(endpoint, cx));
            let refusal = refusal.clone();
            async move {
                match run {
                    Some(run) => run.await,
                    None => Err(refusal),
                }
            }
        });
        // The signature key set before (`verify_with`) still applies.
        Self {
            key: self.key,
            ..checked
        }
    }
}

impl<E> ServeEndpoint<E>
where
    E: RefreshEndpoint,
    E::Config: Clone,
{
    /// Serves `E`'s refresh as its declarations read the other way round: a request whose
    /// `from = config.*` fields are not `config`'s is refused as
    /// [`RefusalReason::UnknownClient`], one whose `now_*` field with a `window` is outside
    /// it from the sandbox's clock ([`RefreshEndpoint::stale_time`]) or that has no refresh
    /// token as [`RefusalReason::BadRequest`]; a declared HMAC signature is checked with the config's
    /// `signing_key` (an RSA one needs [`verify_with`](Self::verify_with) and the public key);
    /// then the issuer issues a new set for an [`issue`](crate::provider::RefreshEndpoint::ISSUES)
    /// endpoint, and otherwise rotates the refresh token as its [`IssuerConfig`](crate::issuer::IssuerConfig)
    /// says, for no client in particular, like [`refresh`](Self::refresh) (the sandbox serves
    /// the one client `config` names). [`SandboxBuilder::serve`](super::SandboxBuilder::serve) registers it at `E`'s
    /// method and path.
    pub fn declared(config: &E::Config) -> Self {
        let key = E::verify_key(config);
        let config = config.clone();
        let serve = Self::new(move |endpoint: E, cx: SandboxContext| {
            let stale = endpoint.stale_time(cx.now());
            let token = match (endpoint.config_mismatch(&config), stale) {
                (Some(field), _) => Err(Refusal::new(
                    RefusalReason::UnknownClient,
                    format!("`{field}` is not the one this sandbox serves"),
                )),
                // A replayed or badly clocked request: its time is outside the declared window.
                (None, Some(field)) => Err(Refusal::new(
                    RefusalReason::BadRequest,
                    format!("`{field}` is too far from the server's time"),
                )),
                (None, None) if E::ISSUES => Ok(None),
                (None, None) => endpoint.refresh_token().map(Some).ok_or_else(|| {
                    Refusal::new(
                        RefusalReason::BadRequest,
                        "the request has no refresh token",
                    )
                }),
            };
            async move {
                match token? {
                    Some(token) => Ok(cx.issuer().refresh(token.expose_secret()).await?),
                    // A grant with no user (`issue`): a new set for the provider's client.
                    None => Ok(cx
                        .issuer()
                        .issue(E::PROVIDER, serde_json::Value::Object(Default::default()))
                        .await?),
                }
            }
        });
        Self { key, ..serve }
    }
}

#[async_trait]
impl<E> Handler for ServeEndpoint<E>
where
    E: Endpoint + Send + 'static,
    E::Error: Send,
{
    async fn handle(
        &self,
        request: http::Request<Vec<u8>>,
        cx: &SandboxContext,
    ) -> http::Response<Vec<u8>> {
        let decoded = match &self.key {
            Some(key) => E::decode_signed_request(&request, key),
            None => E::decode_request(&request).map_err(SignedRequestError::from),
        };
        let endpoint = match decoded {
            Ok(endpoint) => endpoint,
            Err(error) => return Refusal::from(error).answer::<E::Error>(),
        };
        let issued = match (self.grant)(endpoint, cx.clone()).await {
            Ok(issued) => issued,
            Err(refusal) => return refusal.answer::<E::Error>(),
        };
        // The pair is rotated in the store by now: an error answer would lose it (the old
        // refresh token is used up), so extras that do not fit the answer are left out.
        type Extras<E> = <<E as Endpoint>::Response as TokenResponse>::Extras;
        let set = match TokenSet::<Extras<E>>::from_stored(issued.tokens.clone()) {
            Ok(set) => set,
            Err(_) => {
                tracing::warn!(
                    "sandbox: the pair's extras do not fit the endpoint's answer; answered without them"
                );
                let mut plain = issued.tokens;
                plain.extras = serde_json::Value::Null;
                match TokenSet::<Extras<E>>::from_stored(plain) {
                    Ok(set) => set,
                    Err(error) => {
                        return Refusal::new(
                            RefusalReason::ServerError,
                            format!("the issued pair does not fit the response: {error}"),
                        )
                        .answer::<E::Error>();
                    }
                }
            }
        };
        encode_response(&E::Response::from_token_set(&set, cx.now()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::RefreshTokenGrant;
    use crate::sandbox::Sandbox;
    use crate::{
        clock::SystemClock, error::ErrorKind, provider::CallContext, secret::RefreshToken,
    };

    /// A name the issuer's store cannot hold is the request's fault (a bad request); any
    /// other store failure is the server's, and says nothing of its cause.
    #[test]
    fn a_name_the_store_cannot_hold_is_a_bad_request_not_a_server_error() {
        let refusal = Refusal::from(IssuerError::Store(StoreError::Unsupported(
            "a subject holding a NUL character".into(),
        )));
        assert_eq!(refusal.reason, RefusalReason::BadRequest);
        assert!(refusal.message.contains("NUL"), "{}", refusal.message);
        let refusal = Refusal::from(IssuerError::Store(StoreError::Backend {
            message: "postgres: insert a pair: 08006".into(),
            source: None,
        }));
        assert_eq!(refusal.reason, RefusalReason::ServerError);
        assert!(!refusal.message.contains("postgres"), "{}", refusal.message);
    }

    #[tokio::test]
    async fn an_endpoint_definition_is_served_over_the_issuer() {
        let sandbox = Sandbox::builder()
            .oauth_routes(false)
            .route(
                http::Method::POST,
                "/token",
                ServeEndpoint::<RefreshTokenGrant>::refresh(|grant| grant.refresh_token.clone()),
            )
            .start()
            .await
            .unwrap();
        let first = sandbox.issue("alice").await.unwrap();
        let cx = CallContext::new(sandbox.client(), Arc::new(SystemClock), "alice");
        let refreshed = cx
            .call(
                &sandbox.base_url(),
                &RefreshTokenGrant::new(first.refresh_token.clone().unwrap()),
            )
            .await
            .unwrap();
        assert_ne!(refreshed.refresh_token, first.refresh_token);
        assert!(
            sandbox
                .issuer()
                .authenticate(refreshed.access_token.expose_secret())
                .await
                .is_ok()
        );

        let error = cx
            .call(
                &sandbox.base_url(),
                &RefreshTokenGrant::new(RefreshToken::new("rt_unknown")),
            )
            .await
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ReauthRequired);
        assert_eq!(error.provider_code(), Some("invalid_grant"));

        let mut request = http::Request::new(b"grant_type=refresh_token".to_vec());
        *request.method_mut() = http::Method::POST;
        *request.uri_mut() = sandbox.url("/token").as_str().parse().unwrap();
        let answer = sandbox.client().send(request).await.unwrap();
        assert_eq!(answer.status(), 400);
        assert!(String::from_utf8_lossy(answer.body()).contains("invalid_request"));
    }

    #[tokio::test]
    async fn a_grant_refusing_by_its_own_rule_is_answered_by_the_provider() {
        let sandbox = Sandbox::builder()
            .oauth_routes(false)
            .route(
                http::Method::POST,
                "/token",
                ServeEndpoint::<RefreshTokenGrant>::new(
                    |grant: RefreshTokenGrant, _cx: SandboxContext| async move {
                        Err::<Issued, _>(match grant.refresh_token.expose_secret() {
                            "rt_client" => {
                                Refusal::new(RefusalReason::UnknownClient, "unknown client app-9")
                            }
                            _ => {
                                Refusal::new(RefusalReason::BadRequest, "refresh on weekdays only")
                            }
                        })
                    },
                ),
            )
            .start()
            .await
            .unwrap();
        let cx = CallContext::new(sandbox.client(), Arc::new(SystemClock), "alice");
        let call = |token: &'static str| {
            let (cx, url) = (cx.clone(), sandbox.base_url());
            async move {
                cx.call(&url, &RefreshTokenGrant::new(RefreshToken::new(token)))
                    .await
                    .unwrap_err()
            }
        };
        let error = call("rt_client").await;
        assert_eq!(error.kind(), ErrorKind::Misconfigured);
        assert_eq!(error.provider_code(), Some("invalid_client"));
        assert!(
            error.to_string().contains("unknown client app-9"),
            "{error}"
        );
        let error = call("rt_other").await;
        assert_eq!(error.provider_code(), Some("invalid_request"));
        assert!(error.to_string().contains("weekdays only"), "{error}");
    }
}
