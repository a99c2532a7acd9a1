//! A reqwest-middleware [`Middleware`] that sends the session's bearer token, and after a
//! 401 refreshes once and resends once.

use std::sync::Arc;

use async_trait::async_trait;
use http::{Extensions, HeaderValue, StatusCode, header::AUTHORIZATION};
use reqwest::{Request, Response};
use reqwest_middleware::{Middleware, Next};

use crate::manager::TokenManager;
use crate::provider::Provider;
use crate::secret::AccessToken;

/// Adds `Authorization: Bearer <token>` from a [`TokenManager`].
///
/// After a 401 it asks the manager for a new token (which refreshes only if no other caller
/// already replaced the refused one) and resends the request once. Put [`NoResend`] in a
/// request's extensions to turn the resend off (a non-idempotent call), and [`Session`] to
/// choose the session per request.
///
/// ```no_run
/// # async fn run<P: token_core::Provider>(manager: token_core::TokenManager<P>) -> Result<(), Box<dyn std::error::Error>> {
/// use token_core::middleware::{BearerAuth, NoResend};
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(BearerAuth::new(manager, "customer-42"))
///     .build();
/// let balance = client.get("https://api.example.com/balance").send().await?;
/// let payment = client.post("https://api.example.com/payments").with_extension(NoResend).send().await?;
/// # Ok(()) }
/// ```
pub struct BearerAuth<P: Provider> {
    manager: TokenManager<P>,
    session: Option<Arc<str>>,
}

impl<P: Provider> BearerAuth<P> {
    /// Authenticates every request as `session` (unless a request carries [`Session`]).
    pub fn new(manager: TokenManager<P>, session: impl Into<Arc<str>>) -> Self {
        Self {
            manager,
            session: Some(session.into()),
        }
    }

    /// Authenticates each request as the [`Session`] in its extensions; a request without
    /// one fails.
    pub fn per_request(manager: TokenManager<P>) -> Self {
        Self {
            manager,
            session: None,
        }
    }
}

/// Request extension: the session to authenticate this request as.
#[derive(Clone, Debug)]
pub struct Session(pub Arc<str>);

impl Session {
    /// The session named `name`.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }
}

/// Request extension: do not resend this request after a 401 (it may not be idempotent).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoResend;

#[async_trait]
impl<P: Provider> Middleware for BearerAuth<P> {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let session = match (extensions.get::<Session>(), &self.session) {
            (Some(Session(name)), _) | (None, Some(name)) => name.clone(),
            (None, None) => {
                return Err(reqwest_middleware::Error::middleware(crate::Error::Config(
                    "BearerAuth::per_request needs a Session extension on the request".into(),
                )));
            }
        };
        let token = self
            .manager
            .access_token(&session)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        let resend = if extensions.get::<NoResend>().is_some() {
            None
        } else {
            request.try_clone()
        };
        set_bearer(&mut request, &token)?;
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED {
            return Ok(response);
        }
        let Some(mut again) = resend else {
            return Ok(response);
        };
        tracing::debug!(session = %session, "API refused the access token; refreshing and resending once");
        let fresh = self
            .manager
            .refresh_rejected(&session, &token)
            .await
            .map_err(reqwest_middleware::Error::middleware)?;
        if fresh == token {
            // The token was itself obtained after a 401: the API refuses more than the
            // token. Its answer stands; nothing is resent.
            return Ok(response);
        }
        set_bearer(&mut again, &fresh)?;
        next.run(again, extensions).await
    }
}

fn set_bearer(request: &mut Request, token: &AccessToken) -> reqwest_middleware::Result<()> {
    let mut value =
        HeaderValue::try_from(format!("Bearer {}", token.expose_secret())).map_err(|_| {
            reqwest_middleware::Error::middleware(crate::Error::Config(
                "the access token is not a valid header value".into(),
            ))
        })?;
    value.set_sensitive(true);
    request.headers_mut().insert(AUTHORIZATION, value);
    Ok(())
}
