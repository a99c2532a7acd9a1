//! Paymentsgate's issue and refresh endpoints on the token-core sandbox, served from the same
//! definitions the client uses, over an issuer that mints JWT access tokens (with `exp`).
//!
//! - `POST /auth/token` issues a pair for the one account the sandbox was started with; other
//!   credentials get 401 `{"error": "Unauthorized", ...}`.
//! - `POST /auth/token/refresh` rotates the pair, with or without the bearer header; a bearer
//!   that is sent must be an access token the sandbox issued (expired or not: the documents
//!   refresh once it has expired), else 401 `{"error": "Unauthorized", ...}` and nothing
//!   rotates; a dead refresh token gets 401 `{"error": "Unauthorized", ...}`, a malformed
//!   request 400.
//!
//! ```
//! use std::sync::Arc;
//! use token_core::{provider::CallContext, provider::Provider, clock::SystemClock};
//! use token_provider_paymentsgate::{ISSUE_PATH, Paymentsgate, PaymentsgateConfig, sandbox};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let account = PaymentsgateConfig::new("acct-1", "cHVibGljLWtleQ==");
//! let sandbox = sandbox::start(Arc::new(SystemClock), sandbox::issuer_config(), &account).await?;
//! let provider = Paymentsgate::new(sandbox.base_url(), account);
//! let cx = CallContext::new(sandbox.client(), sandbox.clock().clone(), "service");
//! let set = provider.issue(&cx).await?;
//! assert_eq!(set.access_token.expose_secret().split('.').count(), 3, "a JWT");
//! assert_eq!(sandbox.calls(ISSUE_PATH), 1);
//! # Ok(()) }
//! ```
#![cfg(feature = "sandbox")]

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use token_core::clock::Clock;
use token_core::codec::RefusalReason;
use token_core::issuer::{AccessTokenFormat, IssuerConfig, TokenHash};
use token_core::sandbox::endpoint::{Refusal, ServeEndpoint};
use token_core::sandbox::{RunningSandbox, Sandbox, SandboxBuilder, SandboxContext, SandboxError};

use crate::config::PaymentsgateConfig;
use crate::endpoints::{ISSUE_PATH, IssueServiceToken, REFRESH_PATH, RefreshServiceToken};

/// The issuer as Paymentsgate documents it: JWT access tokens that last 3600 s.
pub fn issuer_config() -> IssuerConfig {
    IssuerConfig::default()
        .with_access_format(AccessTokenFormat::UnsignedJwt)
        .with_access_ttl(Duration::from_secs(3600))
}

/// Starts a sandbox serving [`routes`] for `account` (and token-core's protected API under
/// `/api/`) on 127.0.0.1.
pub async fn start(
    clock: Arc<dyn Clock>,
    issuer: IssuerConfig,
    account: &PaymentsgateConfig,
) -> Result<RunningSandbox, SandboxError> {
    let builder = Sandbox::builder()
        .clock(clock)
        .issuer_config(issuer)
        .oauth_routes(false);
    routes(builder, account).start().await
}

/// Registers `POST /auth/token` (accepting only `account`'s credentials) and
/// `POST /auth/token/refresh` (checking the bearer when one is sent) on `builder`. Refusals
/// are answered as
/// [`IssueError`](crate::IssueError) and [`PaymentsgateError`](crate::PaymentsgateError)
/// declare.
pub fn routes(builder: SandboxBuilder, account: &PaymentsgateConfig) -> SandboxBuilder {
    let expected = (account.account_id.clone(), account.public_key.clone());
    let issue = ServeEndpoint::<IssueServiceToken>::new(
        |issue: IssueServiceToken, cx: SandboxContext| async move {
            Ok(cx
                .issuer()
                .issue(issue.account_id, serde_json::json!({}))
                .await?)
        },
    )
    .require(
        move |issue| expected.0 == issue.account_id && expected.1 == issue.public_key,
        Refusal::new(
            RefusalReason::UnknownClient,
            "unknown account or public key",
        ),
    );
    let refresh = ServeEndpoint::<RefreshServiceToken>::new(
        |refresh: RefreshServiceToken, cx: SandboxContext| async move {
            if let Some(bearer) = &refresh.access_token {
                // Any access token the sandbox issued, live, expired or rotated since: the
                // bearer says who calls; the refresh token decides what rotates.
                let hash = TokenHash::of(bearer.expose_secret());
                let known = cx.issuer().store().find_by_access(&hash).await;
                match known {
                    Ok(Some(_)) => {}
                    Ok(None) => {
                        return Err(Refusal::new(
                            RefusalReason::InvalidAccessToken,
                            "invalid bearer token",
                        ));
                    }
                    Err(_) => {
                        return Err(Refusal::new(
                            RefusalReason::ServerError,
                            "the issuer failed",
                        ));
                    }
                }
            }
            Ok(cx
                .issuer()
                .refresh(refresh.refresh_token.expose_secret())
                .await?)
        },
    );
    builder
        .route(Method::POST, ISSUE_PATH, issue)
        .route(Method::POST, REFRESH_PATH, refresh)
}
