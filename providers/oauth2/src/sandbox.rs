//! The token endpoint (all three grants) and an authorization endpoint on the token-core
//! sandbox, served from the same definitions the client uses (token-core's
//! [`sandbox::oauth`](token_core::sandbox::oauth) handlers, over the issuer's single-use
//! authorization codes).
//!
//! - `POST /token` answers `refresh_token` (the issuer rotates), `client_credentials` (an
//!   access token whose subject is the client id, and no refresh token, as RFC 6749 section
//!   4.4.3 says; any secret is accepted) and `authorization_code` (a code
//!   from `GET /authorize`, single use, checked against its redirect URI and its S256 PKCE
//!   challenge), with [`OAuthError`](token_core::oauth::OAuthError) answers: `invalid_grant` for a dead refresh token or a
//!   bad code or verifier.
//! - `GET /authorize` approves at once, for the user named by `login_hint` (default
//!   `sandbox-user`, also for an empty one), and redirects (302) to `redirect_uri` with
//!   `code` and `state`; without a `redirect_uri` it answers `{"code", "state"}`.
//!
//! [`routes_at`] serves the same at other paths
//! (GitHub's `/login/oauth/access_token`, say); [`config`] is a client's config for a running
//! sandbox.
//!
//! ```
//! use std::sync::Arc;
//! use token_core::{provider::CallContext, clock::SystemClock, issuer::IssuerConfig};
//! use token_core::oauth::TOKEN_PATH;
//! use token_provider_oauth2::OAuth2;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = token_provider_oauth2::sandbox::start(Arc::new(SystemClock), IssuerConfig::default()).await?;
//! let config = token_provider_oauth2::sandbox::config(&sandbox, "app-1").with_client_credentials(true);
//! let provider = OAuth2::new(config);
//! let cx = CallContext::new(sandbox.client(), sandbox.clock().clone(), "app");
//! use token_core::provider::Provider as _;
//! let set = provider.issue(&cx).await?;
//! assert_eq!(sandbox.issuer().authenticate(set.access_token.expose_secret()).await?.subject, "app-1");
//! assert_eq!(sandbox.calls(TOKEN_PATH), 1);
//! # Ok(()) }
//! ```
#![cfg(feature = "sandbox")]

use std::sync::Arc;

use token_core::clock::Clock;
use token_core::issuer::IssuerConfig;
use token_core::oauth::TOKEN_PATH;
use token_core::sandbox::oauth::{AUTHORIZE_PATH, routes_at};
use token_core::sandbox::{RunningSandbox, Sandbox, SandboxBuilder, SandboxError};

use crate::config::OAuth2Config;

/// Starts a sandbox serving [`routes`] (and token-core's protected API under `/api/`) on
/// 127.0.0.1, with `clock` and the issuer configured by `issuer`.
pub async fn start(
    clock: Arc<dyn Clock>,
    issuer: IssuerConfig,
) -> Result<RunningSandbox, SandboxError> {
    routes(
        Sandbox::builder()
            .clock(clock)
            .issuer_config(issuer)
            .oauth_routes(false),
    )
    .start()
    .await
}

/// The config of a public client `client_id` of `sandbox`: its token URL ([`TOKEN_PATH`]) and
/// authorize URL ([`AUTHORIZE_PATH`]).
pub fn config(sandbox: &RunningSandbox, client_id: impl Into<String>) -> OAuth2Config {
    OAuth2Config::new(client_id, sandbox.url(TOKEN_PATH))
        .with_authorize_url(sandbox.url(AUTHORIZE_PATH))
}

/// Registers `POST /token` and `GET /authorize` on `builder`.
pub fn routes(builder: SandboxBuilder) -> SandboxBuilder {
    routes_at(builder, TOKEN_PATH, AUTHORIZE_PATH)
}
