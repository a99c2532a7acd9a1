//! The endpoints of an RFC 6749 server as this client uses them: the token endpoint's grants,
//! answer and error are token-core's ([`token_core::oauth`]), posted to the configured token
//! URL; the authorization endpoint's request is built here from the config.

use token_core::error::Error;
use token_core::oauth::AuthorizeQuery;
use token_core::pkce::PkceVerifier;
use url::Url;

use crate::config::OAuth2Config;

/// An authorization URL to send the user to, with the PKCE verifier to keep until the code
/// comes back (then pass it to [`OAuth2::exchange_code`](crate::OAuth2::exchange_code)).
/// Its `Debug` shows the URL without its password and query (where the configured
/// authorize URL may hold a credential).
#[derive(Clone)]
#[non_exhaustive]
pub struct AuthorizationRequest {
    /// Where to send the user.
    pub url: Url,
    /// The `state` the callback must carry back.
    pub state: String,
    /// The PKCE code verifier; its S256 challenge is in `url`.
    pub verifier: PkceVerifier,
}

impl std::fmt::Debug for AuthorizationRequest {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthorizationRequest")
            .field("url", &token_core::redact::url_shown(&self.url))
            .field("state", &self.state)
            .field("verifier", &self.verifier)
            .finish()
    }
}

/// The authorization endpoint's query for `config` with `state`: the client id, redirect URI
/// and scope. Fails when the config has no `authorize_url`.
pub(crate) fn authorize_query(
    config: &OAuth2Config,
    state: &str,
) -> Result<(Url, AuthorizeQuery), Error> {
    let url = config
        .authorize_url
        .clone()
        .ok_or_else(|| Error::Config("the oauth2 config has no `authorize_url`".to_owned()))?;
    let query = AuthorizeQuery::new(config.client_id.clone())
        .with_redirect_uri(config.redirect_uri.clone())
        .with_scope(config.scope.clone())
        .with_state(state);
    Ok((url, query))
}
