//! WeChat's refresh endpoint on the token-core sandbox, served from the same definitions the
//! client uses: `GET /sns/oauth2/refresh_token` for one `appid`, over an issuer that keeps
//! the refresh token (30 days from the authorization) and answers it again.
//!
//! ```
//! use std::sync::Arc;
//! use token_core::{provider::CallContext, provider::Provider, clock::SystemClock, token_set::TokenSet};
//! use token_provider_wechat::{WeChat, WeChatConfig, sandbox};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = WeChatConfig::new("wx520c15f417810387");
//! let sandbox = sandbox::start(Arc::new(SystemClock), sandbox::issuer_config(), &config).await?;
//! let first = TokenSet::from_stored(sandbox.issue_with("user", serde_json::json!({"openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"})).await?)?;
//! let provider = WeChat::new(sandbox.base_url(), config);
//! let next = provider.refresh(&CallContext::new(sandbox.client(), sandbox.clock().clone(), "user"), &first).await?;
//! assert_eq!(next.refresh_token, first.refresh_token); // kept, and sent again
//! assert_eq!(next.extras.openid.as_deref(), Some("o6_bmjrPTlm6_2sgVt7hMZOPfL2M"));
//! # Ok(()) }
//! ```
#![cfg(feature = "sandbox")]

use std::sync::Arc;
use std::time::Duration;

use token_core::clock::Clock;
use token_core::issuer::{IssuerConfig, RefreshRotation};
use token_core::sandbox::{RunningSandbox, Sandbox, SandboxError};

use crate::{SnsRefreshToken, WeChatConfig};

/// The issuer as WeChat documents it: access tokens for 7200 s, refresh tokens for 30 days,
/// kept (and sent again) by every refresh.
pub fn issuer_config() -> IssuerConfig {
    IssuerConfig::default()
        .with_access_ttl(Duration::from_secs(7200))
        .with_refresh_ttl(Some(Duration::from_secs(30 * 24 * 3600)))
        .with_refresh_rotation(RefreshRotation::KeepAndResend)
}

/// Starts a sandbox on 127.0.0.1 serving `GET /sns/oauth2/refresh_token` for `config`'s
/// `appid` ([`SandboxBuilder::serve`](token_core::sandbox::SandboxBuilder::serve)): another
/// `appid` is answered `40013`, a dead refresh token `40030` or `42002`, as
/// [`WeChatCode`](crate::WeChatCode) declares.
pub async fn start(
    clock: Arc<dyn Clock>,
    issuer: IssuerConfig,
    config: &WeChatConfig,
) -> Result<RunningSandbox, SandboxError> {
    let builder = Sandbox::builder().clock(clock).issuer_config(issuer);
    builder.serve::<SnsRefreshToken>(config).start().await
}
