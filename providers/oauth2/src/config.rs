//! The provider's configuration as an integrator writes it (JSON), and the client identity
//! as the grants put it on the wire.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use token_core::oauth::{Client, ClientAuth};
use token_core::redact::url_shown;
use token_core::secret::ClientSecret;
use url::Url;

/// A generic OAuth 2.0 client: the server's endpoints, how the client identifies itself and
/// what it asks for. See the crate docs for the JSON keys.
///
/// ```
/// use token_provider_oauth2::OAuth2Config;
/// use token_core::secret::ClientSecret;
/// use token_core::oauth::ClientAuth;
///
/// let config = OAuth2Config::new("app-1", "https://github.com/login/oauth/access_token".parse()?)
///     .with_client_secret(ClientSecret::new("s3cret"))
///     .with_scope("read");
/// assert_eq!(config.client_auth, ClientAuth::Basic);
/// assert_eq!(config.token_url.path(), "/login/oauth/access_token");
/// # Ok::<(), url::ParseError>(())
/// ```
///
/// Its `Debug` shows the URLs without their passwords and queries
/// ([`url_shown`](token_core::redact::url_shown)).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct OAuth2Config {
    /// The client id.
    pub client_id: String,
    /// The token endpoint, a full URL (`https://oauth2.googleapis.com/token`,
    /// `https://github.com/login/oauth/access_token`): every grant is posted here.
    #[serde(deserialize_with = "token_core::redact::url")]
    pub token_url: Url,
    /// The client secret; `None` for a public client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_secret: Option<ClientSecret>,
    /// Where a confidential client sends its credentials.
    #[serde(default)]
    pub client_auth: ClientAuth,
    /// Space-separated scopes, sent with every grant and in the authorization URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The redirect URI registered for the client.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub redirect_uri: Option<String>,
    /// The authorization endpoint (a full URL), for the authorization code flow and the
    /// re-auth signal.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "token_core::redact::optional_url"
    )]
    pub authorize_url: Option<Url>,
    /// Whether the manager may obtain tokens with `client_credentials` (service accounts).
    #[serde(default)]
    pub client_credentials: bool,
    /// The server's reuse window for a used refresh token, in seconds.
    #[serde(default)]
    pub reuse_window_secs: u64,
    /// The provider name sessions are stored under (default `oauth2`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
}

impl fmt::Debug for OAuth2Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every field named, so that a new one cannot be left out unseen.
        let Self {
            client_id,
            token_url,
            client_secret,
            client_auth,
            scope,
            redirect_uri,
            authorize_url,
            client_credentials,
            reuse_window_secs,
            name,
        } = self;
        f.debug_struct("OAuth2Config")
            .field("client_id", client_id)
            .field("token_url", &url_shown(token_url))
            .field("client_secret", client_secret)
            .field("client_auth", client_auth)
            .field("scope", scope)
            .field("redirect_uri", redirect_uri)
            .field("authorize_url", &authorize_url.as_ref().map(url_shown))
            .field("client_credentials", client_credentials)
            .field("reuse_window_secs", reuse_window_secs)
            .field("name", name)
            .finish()
    }
}

impl OAuth2Config {
    /// A public client `client_id` of the server whose token endpoint is `token_url`, with
    /// every other key at its default.
    pub fn new(client_id: impl Into<String>, token_url: Url) -> Self {
        Self {
            client_id: client_id.into(),
            token_url,
            client_secret: None,
            client_auth: ClientAuth::default(),
            scope: None,
            redirect_uri: None,
            authorize_url: None,
            client_credentials: false,
            reuse_window_secs: 0,
            name: None,
        }
    }

    /// Makes the client confidential, with `secret`.
    pub fn with_client_secret(mut self, secret: ClientSecret) -> Self {
        self.client_secret = Some(secret);
        self
    }

    /// Sets where a confidential client sends its credentials.
    pub fn with_client_auth(mut self, client_auth: ClientAuth) -> Self {
        self.client_auth = client_auth;
        self
    }

    /// Sets the space-separated scopes.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets the redirect URI.
    pub fn with_redirect_uri(mut self, redirect_uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(redirect_uri.into());
        self
    }

    /// Sets the authorization endpoint.
    pub fn with_authorize_url(mut self, authorize_url: Url) -> Self {
        self.authorize_url = Some(authorize_url);
        self
    }

    /// Lets the manager obtain tokens with `client_credentials` (service accounts only).
    pub fn with_client_credentials(mut self, allowed: bool) -> Self {
        self.client_credentials = allowed;
        self
    }

    /// Sets the server's reuse window for a used refresh token.
    pub fn with_reuse_window(mut self, window: Duration) -> Self {
        self.reuse_window_secs = window.as_secs();
        self
    }

    /// Sets the provider name sessions are stored under.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// The client identity placed where `client_auth` says, with the scope and redirect URI:
    /// what the grants read.
    ///
    /// ```
    /// use token_provider_oauth2::OAuth2Config;
    /// use token_core::secret::ClientSecret;
    /// use token_core::oauth::ClientAuth;
    ///
    /// let token_url: url::Url = "https://id.example/token".parse()?;
    /// let basic = OAuth2Config::new("app", token_url.clone()).with_client_secret(ClientSecret::new("s"));
    /// assert_eq!(basic.client().basic_user.as_deref(), Some("app"));
    /// assert_eq!(basic.client().client_id, None);
    /// let body = basic.clone().with_client_auth(ClientAuth::Body);
    /// assert_eq!(body.client().client_id.as_deref(), Some("app"));
    /// assert_eq!(body.client().basic_user, None);
    /// let public = OAuth2Config::new("spa", token_url);
    /// assert_eq!(public.client().client_id.as_deref(), Some("spa"));
    /// assert_eq!(public.client().client_secret, None);
    /// # Ok::<(), url::ParseError>(())
    /// ```
    pub fn client(&self) -> Client {
        Client::new(
            self.client_id.clone(),
            self.client_secret.clone(),
            self.client_auth,
        )
        .with_scope(self.scope.clone())
        .with_redirect_uri(self.redirect_uri.clone())
    }
}
