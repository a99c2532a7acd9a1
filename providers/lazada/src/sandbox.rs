//! Lazada's refresh on the token-core sandbox, served from the same definition the client
//! uses: the sandbox checks every request's `sign` with the app secret and its `app_key`,
//! then rotates the pair. A bad signature is answered `IncompleteSignature`, another app key
//! `InvalidAppKey`, a dead refresh token `IllegalRefreshToken`, all with HTTP 200.
//!
//! ```
//! use std::sync::Arc;
//! use token_core::{provider::CallContext, provider::Provider, clock::SystemClock, token_set::TokenSet};
//! use token_provider_lazada::{Lazada, LazadaConfig, sandbox};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let app = LazadaConfig::new("123456", "helloworld");
//! let sandbox = sandbox::start(Arc::new(SystemClock), sandbox::issuer_config(), &app).await?;
//! let first = TokenSet::from_stored(sandbox.issue("seller-1").await?)?;
//! let cx = CallContext::new(sandbox.client(), sandbox.clock().clone(), "seller-1");
//! let second = Lazada::new(sandbox.base_url(), app).refresh(&cx, &first).await?;
//! assert_ne!(second.refresh_token, first.refresh_token);
//! # Ok(()) }
//! ```
#![cfg(feature = "sandbox")]

use std::sync::Arc;
use std::time::Duration;

use token_core::clock::Clock;
use token_core::issuer::IssuerConfig;
use token_core::sandbox::{RunningSandbox, Sandbox, SandboxError};

use crate::{LazadaConfig, RefreshAccessToken};

/// The issuer as Lazada documents a live app: access tokens for 30 days, refresh tokens for
/// 180 days, rotated on every refresh.
pub fn issuer_config() -> IssuerConfig {
    IssuerConfig::default()
        .with_access_ttl(Duration::from_secs(30 * 24 * 3600))
        .with_refresh_ttl(Some(Duration::from_secs(180 * 24 * 3600)))
}

/// Starts a sandbox on 127.0.0.1 serving `POST /auth/token/refresh` for `app`
/// ([`SandboxBuilder::serve`](token_core::sandbox::SandboxBuilder::serve)): the `sign` is
/// checked with its app secret, and its `app_key` is the only one accepted.
pub async fn start(
    clock: Arc<dyn Clock>,
    issuer: IssuerConfig,
    app: &LazadaConfig,
) -> Result<RunningSandbox, SandboxError> {
    let builder = Sandbox::builder().clock(clock).issuer_config(issuer);
    builder.serve::<RefreshAccessToken>(app).start().await
}
