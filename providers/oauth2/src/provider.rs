//! [`OAuth2`]: the grants tied together for the manager, plus the authorization-code flow
//! the application drives.

use std::time::Duration;

use token_core::async_trait;
use token_core::oauth::{
    AuthorizationCodeGrant, Client, ClientCredentialsGrant, RefreshTokenGrant,
};
use token_core::pkce::PkceVerifier;
use token_core::{
    codec::FromContext, codec::RequestContext, error::Error, provider::CallContext,
    provider::Provider, secret::AuthCode, token_set::NoExtras, token_set::TokenSet,
};
use url::Url;

use crate::config::OAuth2Config;
use crate::endpoints::{AuthorizationRequest, authorize_query};

/// A generic OAuth 2.0 server: refresh, `client_credentials` and the authorization code
/// exchange, each posted to the config's `token_url`.
///
/// ```
/// use std::time::Duration;
/// use token_provider_oauth2::{OAuth2, OAuth2Config};
/// use token_core::provider::Provider;
///
/// let config = OAuth2Config::new("app", "https://id.example/oauth/token".parse()?)
///     .with_reuse_window(Duration::from_secs(300));
/// let provider = OAuth2::new(config);
/// assert_eq!(provider.name(), "oauth2");
/// assert_eq!(provider.reuse_window().as_secs(), 300);
/// assert!(!provider.can_issue());
/// # Ok::<(), url::ParseError>(())
/// ```
#[derive(Clone, Debug)]
pub struct OAuth2 {
    config: OAuth2Config,
    client: Client,
}

impl OAuth2 {
    /// A provider for the server and client `config` describes.
    pub fn new(config: OAuth2Config) -> Self {
        let client = config.client();
        Self { config, client }
    }

    /// The configuration.
    pub fn config(&self) -> &OAuth2Config {
        &self.config
    }

    /// The token endpoint every grant is posted to.
    pub fn token_url(&self) -> &Url {
        &self.config.token_url
    }

    /// An authorization URL (`response_type=code`, the client id, redirect URI, scope,
    /// `state` and an S256 PKCE challenge) with the verifier that goes with it. Fails when
    /// the config has no `authorize_url`.
    ///
    /// ```
    /// use token_provider_oauth2::{OAuth2, OAuth2Config};
    ///
    /// let config = OAuth2Config::new("spa", "https://id.example/token".parse()?)
    ///     .with_authorize_url("https://id.example/authorize".parse()?)
    ///     .with_redirect_uri("https://app.example/cb");
    /// let provider = OAuth2::new(config);
    /// let request = provider.authorization_request("s-1").unwrap();
    /// let query: Vec<(String, String)> = request.url.query_pairs().into_owned().collect();
    /// assert!(query.contains(&("code_challenge".into(), request.verifier.challenge())));
    /// assert!(query.contains(&("code_challenge_method".into(), "S256".into())));
    /// assert!(query.contains(&("state".into(), "s-1".into())));
    /// # Ok::<(), url::ParseError>(())
    /// ```
    pub fn authorization_request(&self, state: &str) -> Result<AuthorizationRequest, Error> {
        let verifier = PkceVerifier::generate();
        let (url, query) = authorize_query(&self.config, state)?;
        Ok(AuthorizationRequest {
            url: query.with_challenge(verifier.challenge()).to_url(url),
            state: state.to_owned(),
            verifier,
        })
    }

    /// Exchanges an authorization code (and its PKCE verifier, if the authorization request
    /// had a challenge) for a token set; store it with
    /// [`TokenManager::insert`](token_core::manager::TokenManager::insert). Use the manager's
    /// [`call_context`](token_core::manager::TokenManager::call_context) so the call shares its transport.
    ///
    /// ```no_run
    /// # async fn run(manager: token_core::manager::TokenManager<token_provider_oauth2::OAuth2>,
    /// #              request: token_provider_oauth2::AuthorizationRequest) -> Result<(), token_core::error::Error> {
    /// // The callback brought `?code=...&state=...`; `request` is what the redirect was built from.
    /// let code = token_core::secret::AuthCode::new("code-from-callback");
    /// let cx = manager.call_context(&request.state);
    /// let set = manager.provider().exchange_code(&cx, &code, Some(&request.verifier)).await?;
    /// manager.insert(&request.state, set).await?;
    /// # Ok(()) }
    /// ```
    pub async fn exchange_code(
        &self,
        cx: &CallContext,
        code: &AuthCode,
        verifier: Option<&PkceVerifier>,
    ) -> Result<TokenSet, Error> {
        let context = RequestContext::new(&self.client)
            .with_auth_code(code, verifier.map(PkceVerifier::expose_secret));
        let grant = AuthorizationCodeGrant::from_context(&context)?;
        cx.call_to(&self.config.token_url, &grant).await
    }
}

#[async_trait]
impl Provider for OAuth2 {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        self.config.name.as_deref().unwrap_or("oauth2")
    }

    /// The client id at the token endpoint's origin and path (`app-1@https://id.example/token`,
    /// never its user info or query): a refresh token is bound to the client and to the
    /// server that issued it, and a generic config reaches any server, two of which may
    /// know a client by one id (a realm per customer, each with its `payments` client).
    /// A `@` or `%` in the client id is written `%40` or `%25`, so that the first `@` always
    /// ends the id: the client `a@https://x.example/y` at `https://z.example/w` is not the
    /// client `a` at `https://x.example/y@https://z.example/w`.
    fn client_id(&self) -> Option<String> {
        let url = &self.config.token_url;
        let origin = url.origin().ascii_serialization();
        const SEPARATOR: &percent_encoding::AsciiSet =
            &percent_encoding::AsciiSet::EMPTY.add(b'@').add(b'%');
        let id = percent_encoding::utf8_percent_encode(&self.config.client_id, SEPARATOR);
        Some(format!("{id}@{origin}{}", url.path()))
    }

    fn reuse_window(&self) -> Duration {
        Duration::from_secs(self.config.reuse_window_secs)
    }

    async fn refresh(&self, cx: &CallContext, current: &TokenSet) -> Result<TokenSet, Error> {
        let grant =
            RefreshTokenGrant::from_context(&RequestContext::for_refresh(&self.client, current))?;
        cx.call_to(&self.config.token_url, &grant).await
    }

    fn can_issue(&self) -> bool {
        self.config.client_credentials
    }

    async fn issue(&self, cx: &CallContext) -> Result<TokenSet, Error> {
        if !self.config.client_credentials {
            return Err(Error::Config(
                "the oauth2 config does not allow `client_credentials`".to_owned(),
            ));
        }
        let grant = ClientCredentialsGrant::from_context(&RequestContext::new(&self.client))?;
        cx.call_to(&self.config.token_url, &grant).await
    }

    /// The authorization URL with `state` = the session (no PKCE: the manager cannot keep a
    /// verifier for the application; use [`OAuth2::authorization_request`] for that).
    fn authorize_url(&self, session: &str) -> Option<String> {
        let (url, query) = authorize_query(&self.config, session).ok()?;
        Some(query.to_url(url).into())
    }
}
