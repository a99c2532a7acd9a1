//! The two providers: [`MayaApp`] (the partner's client-credentials app token) and [`Maya`]
//! (customer sessions, refreshed with the app token that a `TokenManager<MayaApp>` keeps).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use token_core::{
    clock::Clock, codec::FromContext, codec::RequestContext, error::EndpointError, error::Error,
    error::ErrorKind, manager::TokenManager, provider::CallContext, provider::Provider,
    secret::AccessToken, token_set::NoExtras, token_set::TokenSet, transport::HttpClient,
};

use token_core::oauth::{ClientCredentialsGrant, RefreshTokenGrant};

use crate::config::{MayaConfig, RefreshShape};
use crate::endpoints::MiniAppRefresh;

/// The session name under which the app token is kept in its manager.
pub const APP_SESSION: &str = "app";

/// The partner app's own Maya Connect token (client credentials, HTTP Basic).
///
/// It can always [issue](Provider::issue) and has no refresh token, so a
/// [`TokenManager<MayaApp>`] obtains a new one whenever the current one expires.
#[derive(Clone, Debug)]
pub struct MayaApp {
    config: Arc<MayaConfig>,
}

impl MayaApp {
    /// The app token provider for `config`.
    pub fn new(config: Arc<MayaConfig>) -> Self {
        Self { config }
    }
}

#[async_trait]
impl Provider for MayaApp {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "maya-app"
    }

    fn client_id(&self) -> Option<String> {
        Some(self.config.client_id.clone())
    }

    async fn refresh(&self, cx: &CallContext, _current: &TokenSet) -> Result<TokenSet, Error> {
        // Client credentials have no refresh token: a new token is simply issued.
        self.issue(cx).await
    }

    fn can_issue(&self) -> bool {
        true
    }

    async fn issue(&self, cx: &CallContext) -> Result<TokenSet, Error> {
        let client = self.config.connect_client();
        let grant = ClientCredentialsGrant::from_context(&RequestContext::new(&client))?;
        cx.call(&self.config.connect_url, &grant).await
    }
}

/// Maya customer sessions: refreshed by the Mini App `POST /tokens` with the partner's app
/// token, or by Maya Connect's refresh-token grant (`"refresh": "oauth"`).
///
/// Sessions cannot be issued without the customer: their first tokens come from the Session
/// URL ([`SessionReceiver`](crate::SessionReceiver)), and a dead session's re-auth signal
/// carries the Maya Connect authorize URL.
///
/// ```
/// use std::sync::Arc;
/// use token_core::{clock::SystemClock, manager::TokenManager};
/// use token_provider_maya::{Maya, MayaConfig};
///
/// # fn run(config: MayaConfig) -> Result<(), token_core::error::Error> {
/// let client = Arc::new(token_core::transport::ReqwestClient::new()?);
/// let maya = Maya::from_config(config, client.clone(), Arc::new(SystemClock))?;
/// let customers = TokenManager::builder(maya).shared_client(client).build()?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct Maya {
    config: Arc<MayaConfig>,
    app: TokenManager<MayaApp>,
}

impl Maya {
    /// Customer sessions for `config`, taking app tokens from `app` (a manager of
    /// [`MayaApp`] for the same config; share its store to share the app token between
    /// processes).
    pub fn new(config: Arc<MayaConfig>, app: TokenManager<MayaApp>) -> Self {
        Self { config, app }
    }

    /// Customer sessions for `config`, with an app token manager of its own (in memory) over
    /// `client` and `clock`.
    pub fn from_config(
        config: MayaConfig,
        client: Arc<dyn HttpClient>,
        clock: Arc<dyn Clock>,
    ) -> Result<Self, Error> {
        let config = Arc::new(config);
        let app = TokenManager::builder(MayaApp::new(config.clone()))
            .shared_client(client)
            .clock(clock)
            .build()?;
        Ok(Self::new(config, app))
    }

    /// The configuration.
    pub fn config(&self) -> &MayaConfig {
        &self.config
    }

    /// The manager that keeps the app token.
    pub fn app_tokens(&self) -> &TokenManager<MayaApp> {
        &self.app
    }

    async fn app_token(&self) -> Result<AccessToken, Error> {
        self.app
            .access_token(APP_SESSION)
            .await
            .map_err(app_failure)
    }

    async fn mini_app_refresh(
        &self,
        cx: &CallContext,
        current: &TokenSet,
        app_token: &AccessToken,
    ) -> Result<TokenSet, Error> {
        let context =
            RequestContext::for_refresh(&*self.config, current).with_value("app_token", app_token);
        let refresh = MiniAppRefresh::from_context(&context)?;
        cx.call(&self.config.api_url, &refresh).await
    }
}

#[async_trait]
impl Provider for Maya {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "maya"
    }

    fn client_id(&self) -> Option<String> {
        Some(self.config.client_id.clone())
    }

    fn reuse_window(&self) -> Duration {
        Duration::from_secs(self.config.reuse_window_secs)
    }

    async fn refresh(&self, cx: &CallContext, current: &TokenSet) -> Result<TokenSet, Error> {
        let refreshed = match self.config.refresh {
            RefreshShape::MiniApp => {
                let app_token = self.app_token().await?;
                match self.mini_app_refresh(cx, current, &app_token).await {
                    // The app token was refused (revoked, or expired early): renew it once.
                    Err(error) if app_token_refused(&error) => {
                        tracing::info!("Maya refused the app token; renewing it");
                        let app_token = self
                            .app
                            .refresh_rejected(APP_SESSION, &app_token)
                            .await
                            .map_err(app_failure)?;
                        self.mini_app_refresh(cx, current, &app_token)
                            .await
                            .map_err(renewed_app_token_refused)
                    }
                    other => other,
                }
            }
            RefreshShape::OAuth => {
                let client = self.config.connect_client().with_scope(None);
                let refresh = RefreshTokenGrant::from_context(&RequestContext::for_refresh(
                    &client, current,
                ))?;
                cx.call(&self.config.connect_url, &refresh).await
            }
        }?;
        Ok(self
            .config
            .stamp_refresh_expiry(refreshed, Some(current), cx.now()))
    }

    fn authorize_url(&self, session: &str) -> Option<String> {
        self.config.authorize_url_for(session).map(String::from)
    }
}

/// Whether `/tokens` refused its bearer, the app token: an HTTP 401, whatever its body (an
/// RFC 6749 error, a gateway's page, none at all). Maya says a customer's refresh token is
/// dead with a 400.
fn app_token_refused(error: &Error) -> bool {
    let status = match error {
        Error::Endpoint(EndpointError::Provider(e)) => e.status,
        Error::Endpoint(EndpointError::Parse { status, .. }) => *status,
        _ => return false,
    };
    status == http::StatusCode::UNAUTHORIZED
}

/// A 401 to the refresh sent with a renewed app token: the partner may not call `/tokens`
/// (its client disabled, a scope withdrawn), which is no verdict on the customer's refresh
/// token, whatever code it carries (RFC 6750's `invalid_token` reads as a dead grant
/// elsewhere): a misconfiguration, the provider's code and message kept.
fn renewed_app_token_refused(error: Error) -> Error {
    if app_token_refused(&error) {
        return reclassified(error, ErrorKind::Misconfigured);
    }
    error
}

/// The app token is the partner's, not the customer's: failing to get one must never end a
/// customer session, and says nothing of the customer's refresh token, which was not sent
/// (an app token whose answer was lost is a transient failure of the customer's refresh,
/// not an unknown outcome).
fn app_failure(error: Error) -> Error {
    match error.kind() {
        ErrorKind::ReauthRequired => Error::Config(format!("no Maya app token: {error}")),
        ErrorKind::OutcomeUnknown => reclassified(error, ErrorKind::Transient),
        _ => error,
    }
}

/// `error` as a failure of `kind`, its code, message and status kept.
fn reclassified(mut error: Error, kind: ErrorKind) -> Error {
    fn set(error: &mut Error, kind: ErrorKind) {
        match error {
            Error::Endpoint(EndpointError::Provider(e)) => e.kind = kind,
            Error::Endpoint(EndpointError::Parse { kind: found, .. }) => *found = kind,
            Error::Transport(e) => e.kind = kind,
            Error::RetriesExhausted { last, .. } => set(last, kind),
            _ => {}
        }
    }
    set(&mut error, kind);
    error
}
