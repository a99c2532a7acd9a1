//! The partner's Maya configuration, read from JSON (keys in the crate docs), and the two
//! things derived from it: the authorize URL and the refresh token's expiry.

use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use time::OffsetDateTime;
use token_core::oauth::{AuthorizeQuery, Client, ClientAuth};
use token_core::redact::url_shown;
use token_core::{secret::ClientSecret, token_set::TokenSet};

/// A partner's Maya settings. See the crate docs for the JSON keys. Its `Debug` shows the
/// URLs without their passwords and queries ([`url_shown`]).
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
#[non_exhaustive]
pub struct MayaConfig {
    /// Maya Connect client id.
    pub client_id: String,
    /// Maya Connect client secret.
    pub client_secret: ClientSecret,
    /// Maya Connect's base URL (`{connect_url}/token`).
    #[serde(deserialize_with = "token_core::redact::url")]
    pub connect_url: url::Url,
    /// The Mini App API host (`{api_url}/tokens`).
    #[serde(
        default = "default_api_url",
        deserialize_with = "token_core::redact::url"
    )]
    pub api_url: url::Url,
    /// Which customer refresh shape to use.
    #[serde(default)]
    pub refresh: RefreshShape,
    /// Maya Connect's authorize endpoint (default `{connect_url}/authorize`).
    #[serde(default, deserialize_with = "token_core::redact::optional_url")]
    pub authorize_url: Option<url::Url>,
    /// The redirect URI added to the authorize URL.
    #[serde(default)]
    pub redirect_uri: Option<String>,
    /// The scope requested with the app token and added to the authorize URL.
    #[serde(default)]
    pub scope: Option<String>,
    /// The customer refresh token's lifetime, which Maya does not send.
    #[serde(default)]
    pub refresh_token_lifetime_secs: Option<u64>,
    /// How long Maya answers a used refresh token again with the same pair.
    #[serde(default)]
    pub reuse_window_secs: u64,
}

/// The customer refresh call.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RefreshShape {
    /// Mini App `POST {api_url}/tokens` with the app token as bearer (developers.maya.ph).
    #[default]
    MiniApp,
    /// `grant_type=refresh_token` at `{connect_url}/token` (the forum answer).
    #[serde(rename = "oauth")]
    OAuth,
}

fn default_api_url() -> url::Url {
    url::Url::parse("https://op-sandbox.paymaya.com").expect("a valid constant URL")
}

impl fmt::Debug for MayaConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Every field named, so that a new one cannot be left out unseen.
        let Self {
            client_id,
            client_secret,
            connect_url,
            api_url,
            refresh,
            authorize_url,
            redirect_uri,
            scope,
            refresh_token_lifetime_secs,
            reuse_window_secs,
        } = self;
        f.debug_struct("MayaConfig")
            .field("client_id", client_id)
            .field("client_secret", client_secret)
            .field("connect_url", &url_shown(connect_url))
            .field("api_url", &url_shown(api_url))
            .field("refresh", refresh)
            .field("authorize_url", &authorize_url.as_ref().map(url_shown))
            .field("redirect_uri", redirect_uri)
            .field("scope", scope)
            .field("refresh_token_lifetime_secs", refresh_token_lifetime_secs)
            .field("reuse_window_secs", reuse_window_secs)
            .finish()
    }
}

impl MayaConfig {
    /// A config with the required keys and every default.
    pub fn new(
        client_id: impl Into<String>,
        client_secret: ClientSecret,
        connect_url: url::Url,
    ) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            connect_url,
            api_url: default_api_url(),
            refresh: RefreshShape::default(),
            authorize_url: None,
            redirect_uri: None,
            scope: None,
            refresh_token_lifetime_secs: None,
            reuse_window_secs: 0,
        }
    }

    /// Sets the Mini App API host.
    pub fn with_api_url(mut self, url: url::Url) -> Self {
        self.api_url = url;
        self
    }

    /// Sets the customer refresh shape.
    pub fn with_refresh(mut self, shape: RefreshShape) -> Self {
        self.refresh = shape;
        self
    }

    /// Sets the customer refresh token's lifetime.
    pub fn with_refresh_token_lifetime(mut self, lifetime: Duration) -> Self {
        self.refresh_token_lifetime_secs = Some(lifetime.as_secs());
        self
    }

    /// Sets the reuse window.
    pub fn with_reuse_window(mut self, window: Duration) -> Self {
        self.reuse_window_secs = window.as_secs();
        self
    }

    /// Sets the redirect URI of the authorize URL.
    pub fn with_redirect_uri(mut self, uri: impl Into<String>) -> Self {
        self.redirect_uri = Some(uri.into());
        self
    }

    /// Where the customer of `session` authorizes again: Maya Connect's authorize endpoint
    /// with `response_type=code`, `client_id`, `redirect_uri` and `scope` when set, and the
    /// session as `state`.
    pub fn authorize_url_for(&self, session: &str) -> Option<url::Url> {
        let url = match &self.authorize_url {
            Some(url) => url.clone(),
            // Under the base as the token endpoint is: after its path, its query kept.
            None if self.connect_url.cannot_be_a_base() => return None,
            None => token_core::codec::endpoint_url(&self.connect_url, "/authorize").ok()?,
        };
        let query = AuthorizeQuery::new(self.client_id.clone())
            .with_redirect_uri(self.redirect_uri.clone())
            .with_scope(self.scope.clone())
            .with_state(session);
        Some(query.to_url(url))
    }

    /// The partner as Maya Connect's token endpoint reads it: the client id and secret in
    /// HTTP Basic, and the configured scope (requested with the app token). The customer
    /// refresh sends the same client without the scope.
    ///
    /// ```
    /// use token_core::secret::ClientSecret;
    /// use token_provider_maya::MayaConfig;
    ///
    /// let config = MayaConfig::new("partner-1", ClientSecret::new("s"), "https://connect.example".parse()?);
    /// let client = config.connect_client();
    /// assert_eq!(client.basic_user.as_deref(), Some("partner-1"));
    /// assert_eq!(client.client_id, None);
    /// # Ok::<(), url::ParseError>(())
    /// ```
    pub fn connect_client(&self) -> Client {
        Client::new(
            self.client_id.clone(),
            Some(self.client_secret.clone()),
            ClientAuth::Basic,
        )
        .with_scope(self.scope.clone())
    }

    /// Gives a newly received refresh token its expiry from `refresh_token_lifetime_secs`,
    /// when Maya did not send one. A refresh token that did not change keeps the expiry it had
    /// in `previous`.
    pub fn stamp_refresh_expiry<X: token_core::token_set::Extras>(
        &self,
        mut set: TokenSet<X>,
        previous: Option<&TokenSet<X>>,
        now: OffsetDateTime,
    ) -> TokenSet<X> {
        if set.refresh_expires_at.is_some() || set.refresh_token.is_none() {
            return set;
        }
        if let Some(previous) = previous.filter(|p| p.refresh_token == set.refresh_token) {
            set.refresh_expires_at = previous.refresh_expires_at;
            return set;
        }
        if let Some(secs) = self.refresh_token_lifetime_secs {
            // Saturating: a configured lifetime too long for the calendar is "for as long as
            // can be said" (not a provider's nonsense, which is an unknown expiry), and must
            // not panic a refresh.
            let lifetime = time::Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX));
            let latest = token_core::expiry::LATEST;
            set.refresh_expires_at = Some(
                now.checked_add(lifetime)
                    .map_or(latest, |at| at.min(latest)),
            );
        }
        set
    }
}
