//! A [`Provider`] for the sandbox's built-in RFC 6749 endpoint, for tests, benchmarks and
//! examples that need a provider before choosing one.

use std::time::Duration;

use async_trait::async_trait;

use crate::error::Error;
use crate::oauth::{ClientAuthentication, ClientCredentialsGrant, RefreshTokenGrant};
use crate::provider::{CallContext, Provider};
use crate::token_set::{NoExtras, TokenSet};

/// Refreshes against `POST /token` of a sandbox (or any plain RFC 6749 server); with a
/// client id it can also issue sets by `client_credentials` (which carry no refresh token:
/// the manager issues again when one expires), and names that client in its refreshes (the
/// sandbox refreshes a pair only for the client it was issued to).
#[derive(Clone)]
pub struct SandboxOAuth {
    base_url: url::Url,
    reuse_window: Duration,
    client_id: Option<String>,
}

impl std::fmt::Debug for SandboxOAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxOAuth")
            .field("base_url", &crate::redact::url_shown(&self.base_url))
            .field("reuse_window", &self.reuse_window)
            .field("client_id", &self.client_id)
            .finish()
    }
}

impl SandboxOAuth {
    /// A provider for the server at `base_url`, with no reuse window and no way to issue.
    pub fn new(base_url: url::Url) -> Self {
        Self {
            base_url,
            reuse_window: Duration::ZERO,
            client_id: None,
        }
    }

    /// Declares the server's reuse window (match the issuer's).
    pub fn with_reuse_window(mut self, window: Duration) -> Self {
        self.reuse_window = window;
        self
    }

    /// Lets the manager issue sets with `client_credentials` for `client_id`.
    pub fn with_client_credentials(mut self, client_id: impl Into<String>) -> Self {
        self.client_id = Some(client_id.into());
        self
    }
}

#[async_trait]
impl Provider for SandboxOAuth {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "sandbox-oauth"
    }

    fn reuse_window(&self) -> Duration {
        self.reuse_window
    }

    async fn refresh(&self, cx: &CallContext, current: &TokenSet) -> Result<TokenSet, Error> {
        let refresh_token = current
            .refresh_token
            .clone()
            .ok_or_else(|| Error::Config("the session has no refresh token".into()))?;
        // A pair issued to the client (a code's) is bound to it: its refresh names it.
        let grant = RefreshTokenGrant {
            client: ClientAuthentication {
                client_id: self.client_id.clone(),
                ..ClientAuthentication::default()
            },
            ..RefreshTokenGrant::new(refresh_token)
        };
        cx.call(&self.base_url, &grant).await
    }

    fn can_issue(&self) -> bool {
        self.client_id.is_some()
    }

    async fn issue(&self, cx: &CallContext) -> Result<TokenSet, Error> {
        let client_id = self
            .client_id
            .clone()
            .ok_or_else(|| Error::Config("no client id for client_credentials".into()))?;
        cx.call(
            &self.base_url,
            &ClientCredentialsGrant::new(client_id, None),
        )
        .await
    }

    fn authorize_url(&self, session: &str) -> Option<String> {
        let mut url = self.base_url.join("/authorize").ok()?;
        url.query_pairs_mut().append_pair("state", session);
        Some(url.to_string())
    }
}
