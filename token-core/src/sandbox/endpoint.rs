//! Serving a provider's `#[token_endpoint]` definitions over the issuer, so a provider's
//! sandbox is its client definitions read the other way round.

use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;

use async_trait::async_trait;

use super::{Handler, SandboxContext};
use crate::codec::{
    Endpoint, RequestError, SignedRequestError, TokenResponse, encode_error, encode_response,
};
use crate::issuer::{Issued, IssuerError};
use crate::secret::ClientSecret;
use crate::sign::SignatureError;
use crate::token_set::TokenSet;

/// Why a grant was refused; the provider turns it into its own error answer.
#[derive(Debug)]
#[non_exhaustive]
pub enum Refusal {
    /// The request could not be read (a missing field, a wrong constant).
    BadRequest(RequestError),
    /// The request's declared signature is missing or wrong (see
    /// [`ServeEndpoint::verify_with`]).
    BadSignature(SignatureError),
    /// The issuer refused (an invalid or expired refresh token...).
    Issuer(IssuerError),
    /// The handler refused by a rule of its own (a bad authorization code, unknown account
    /// credentials, a wrong merchant id): `code` names the rule for the provider's answer,
    /// `message` words it.
    Custom {
        /// The rule, as the handler names it (`"invalid_code"`, `"unknown_account"`...).
        code: String,
        /// What went wrong, for the answer's message.
        message: String,
    },
}

impl Refusal {
    /// A [`Refusal::Custom`] for the handler's rule `code`.
    ///
    /// ```
    /// use token_core::sandbox::endpoint::Refusal;
    ///
    /// let refusal = Refusal::custom("unknown_account", "unknown account or public key");
    /// assert!(matches!(&refusal, Refusal::Custom { code, .. } if code == "unknown_account"));
    /// ```
    pub fn custom(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self::Custom {
            code: code.into(),
            message: message.into(),
        }
    }
}

type Grant<E> = dyn Fn(E, SandboxContext) -> Pin<Box<dyn Future<Output = Result<Issued, Refusal>> + Send>>
    + Send
    + Sync;

/// A [`Handler`] for endpoint `E`: decodes the request with `E`'s own definition, runs the
/// grant, and answers with `E`'s response or error encoding.
///
/// ```
/// use token_core::sandbox::{Sandbox, oauth::{RefreshGrant, OAuthErrorAnswer}};
/// use token_core::sandbox::endpoint::{ServeEndpoint, Refusal};
///
/// let refresh = ServeEndpoint::<RefreshGrant>::refresh(
///     |grant| grant.refresh_token.clone(),
///     |refusal| match refusal {
///         Refusal::BadRequest(e) => OAuthErrorAnswer::invalid_request(e.0),
///         Refusal::Issuer(e) => OAuthErrorAnswer::from_issuer(&e),
///         _ => OAuthErrorAnswer::server_error("unexpected"),
///     },
/// );
/// let sandbox = Sandbox::builder().oauth_routes(false).route(http::Method::POST, "/oauth/token", refresh);
/// ```
pub struct ServeEndpoint<E: Endpoint> {
    grant: Arc<Grant<E>>,
    refuse: Arc<dyn Fn(Refusal) -> E::Error + Send + Sync>,
    key: Option<ClientSecret>,
    _endpoint: PhantomData<fn() -> E>,
}

impl<E> ServeEndpoint<E>
where
    E: Endpoint + Send + 'static,
{
    /// Serves `E` with `grant` deciding what to issue.
    pub fn new<F, Fut>(
        grant: F,
        refuse: impl Fn(Refusal) -> E::Error + Send + Sync + 'static,
    ) -> Self
    where
        F: Fn(E, SandboxContext) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Issued, Refusal>> + Send + 'static,
    {
        Self {
            grant: Arc::new(move |endpoint, cx| Box::pin(grant(endpoint, cx))),
            refuse: Arc::new(refuse),
            key: None,
            _endpoint: PhantomData,
        }
    }

    /// Checks each request's declared signature (`sign(...)`) with `key` (the shared secret
    /// for HMAC, the client's public key for RSA) before the grant runs; a missing or wrong
    /// signature is refused with [`Refusal::BadSignature`]. Without a key, a signed endpoint
    /// refuses every request as unreadable.
    pub fn verify_with(mut self, key: ClientSecret) -> Self {
        self.key = Some(key);
        self
    }

    /// Serves a refresh endpoint: the issuer rotates the refresh token `token_of` reads
    /// from the request.
    pub fn refresh(
        token_of: impl Fn(&E) -> crate::RefreshToken + Send + Sync + 'static,
        refuse: impl Fn(Refusal) -> E::Error + Send + Sync + 'static,
    ) -> Self {
        let token_of = Arc::new(token_of);
        Self::new(
            move |endpoint: E, cx: SandboxContext| {
                let token = token_of(&endpoint);
                async move {
                    cx.issuer()
                        .refresh(token.expose_secret())
                        .await
                        .map_err(Refusal::Issuer)
                }
            },
            refuse,
        )
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
            Err(SignedRequestError::Invalid(error)) => {
                return encode_error(&(self.refuse)(Refusal::BadRequest(error)));
            }
            Err(SignedRequestError::BadSignature(error)) => {
                return encode_error(&(self.refuse)(Refusal::BadSignature(error)));
            }
        };
        let issued = match (self.grant)(endpoint, cx.clone()).await {
            Ok(issued) => issued,
            Err(refusal) => return encode_error(&(self.refuse)(refusal)),
        };
        match TokenSet::<<E::Response as TokenResponse>::Extras>::from_stored(issued.tokens) {
            Ok(set) => encode_response(&E::Response::from_token_set(&set, cx.now())),
            Err(error) => {
                let error = RequestError(format!(
                    "the issued extras do not fit the response: {error}"
                ));
                encode_error(&(self.refuse)(Refusal::BadRequest(error)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sandbox::Sandbox;
    use crate::sandbox::oauth::{OAuthErrorAnswer, RefreshGrant};
    use crate::{CallContext, ErrorKind, RefreshToken, SystemClock};

    fn refuse(refusal: Refusal) -> OAuthErrorAnswer {
        match refusal {
            Refusal::BadRequest(e) => OAuthErrorAnswer::invalid_request(e.0),
            Refusal::BadSignature(e) => OAuthErrorAnswer::invalid_client(e.to_string()),
            Refusal::Issuer(e) => OAuthErrorAnswer::from_issuer(&e),
            Refusal::Custom { code, message } if code == "invalid_client" => {
                OAuthErrorAnswer::invalid_client(message)
            }
            Refusal::Custom { message, .. } => OAuthErrorAnswer::invalid_request(message),
        }
    }

    #[tokio::test]
    async fn an_endpoint_definition_is_served_over_the_issuer() {
        let sandbox = Sandbox::builder()
            .oauth_routes(false)
            .route(
                http::Method::POST,
                "/token",
                ServeEndpoint::<RefreshGrant>::refresh(|grant| grant.refresh_token.clone(), refuse),
            )
            .start()
            .await
            .unwrap();
        let first = sandbox.issue("alice").await.unwrap();
        let cx = CallContext::new(sandbox.client(), Arc::new(SystemClock), "alice");
        let refreshed = cx
            .call(
                &sandbox.base_url(),
                &RefreshGrant::new(first.refresh_token.clone().unwrap()),
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
                &RefreshGrant::new(RefreshToken::new("rt_unknown")),
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
                ServeEndpoint::<RefreshGrant>::new(
                    |grant: RefreshGrant, _cx: SandboxContext| async move {
                        Err::<Issued, _>(match grant.refresh_token.expose_secret() {
                            "rt_client" => {
                                Refusal::custom("invalid_client", "unknown client app-9")
                            }
                            _ => Refusal::custom("house_rule", "refresh on weekdays only"),
                        })
                    },
                    refuse,
                ),
            )
            .start()
            .await
            .unwrap();
        let cx = CallContext::new(sandbox.client(), Arc::new(SystemClock), "alice");
        let call = |token: &'static str| {
            let (cx, url) = (cx.clone(), sandbox.base_url());
            async move {
                cx.call(&url, &RefreshGrant::new(RefreshToken::new(token)))
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
