//! The provider's configuration as an integrator writes it (JSON), and the client identity
//! as the grants put it on the wire.

use serde::{Deserialize, Serialize};
use token_core::ClientSecret;

/// How a generic OAuth 2.0 client identifies itself and what it asks for. See the crate docs
/// for the JSON keys.
///
/// ```
/// use token_provider_oauth2::{ClientAuth, OAuth2Config};
/// use token_core::ClientSecret;
///
/// let config = OAuth2Config {
///     client_secret: Some(ClientSecret::new("s3cret")),
///     scope: Some("read".into()),
///     ..OAuth2Config::new("app-1")
/// };
/// assert_eq!(config.client_auth, ClientAuth::Basic);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Config {
    /// The client id.
    pub client_id: String,
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
    /// The authorization endpoint (a full URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub authorize_url: Option<String>,
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

impl OAuth2Config {
    /// A public client `client_id` with every other key at its default.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            ..Self::default()
        }
    }

    /// The client identity placed where `client_auth` says, with the scope and redirect URI:
    /// what the grants read.
    ///
    /// ```
    /// use token_provider_oauth2::{ClientAuth, OAuth2Config};
    /// use token_core::ClientSecret;
    ///
    /// let basic = OAuth2Config { client_secret: Some(ClientSecret::new("s")), ..OAuth2Config::new("app") };
    /// assert_eq!(basic.client().basic_user.as_deref(), Some("app"));
    /// assert_eq!(basic.client().client_id, None);
    /// let body = OAuth2Config { client_auth: ClientAuth::Body, ..basic.clone() };
    /// assert_eq!(body.client().client_id.as_deref(), Some("app"));
    /// assert_eq!(body.client().basic_user, None);
    /// let public = OAuth2Config::new("spa");
    /// assert_eq!(public.client().client_id.as_deref(), Some("spa"));
    /// assert_eq!(public.client().client_secret, None);
    /// ```
    pub fn client(&self) -> Client {
        let (basic, body) = match (&self.client_secret, self.client_auth) {
            (Some(secret), ClientAuth::Basic) => (
                (Some(self.client_id.clone()), Some(secret.clone())),
                (None, None),
            ),
            (Some(secret), ClientAuth::Body) => (
                (None, None),
                (Some(self.client_id.clone()), Some(secret.clone())),
            ),
            (None, _) => ((None, None), (Some(self.client_id.clone()), None)),
        };
        Client {
            basic_user: basic.0,
            basic_password: basic.1,
            client_id: body.0,
            client_secret: body.1,
            scope: self.scope.clone(),
            redirect_uri: self.redirect_uri.clone(),
        }
    }
}

/// Where a confidential client sends its id and secret (RFC 6749 section 2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `Authorization: Basic base64(client_id:client_secret)`.
    #[default]
    Basic,
    /// `client_id` and `client_secret` form fields.
    Body,
}

/// The client as the grants send it: each credential either in HTTP Basic or in the body
/// (never both), plus the scope and redirect URI. Built by [`OAuth2Config::client`]; the
/// grants' `FromContext` reads it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Client {
    /// The HTTP Basic user (the client id), for `client_auth = basic`.
    pub basic_user: Option<String>,
    /// The HTTP Basic password (the client secret), for `client_auth = basic`.
    pub basic_password: Option<ClientSecret>,
    /// The `client_id` form field, for `client_auth = body` and public clients.
    pub client_id: Option<String>,
    /// The `client_secret` form field, for `client_auth = body`.
    pub client_secret: Option<ClientSecret>,
    /// The `scope` form field.
    pub scope: Option<String>,
    /// The `redirect_uri` form field of the code exchange.
    pub redirect_uri: Option<String>,
}
