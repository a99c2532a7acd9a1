//! Paymentsgate's issue and refresh endpoints on the token-core sandbox, served from the same
//! definitions the client uses, over an issuer that mints JWT access tokens (with `exp`).
//!
//! - `POST /auth/token` issues a pair for the one account the sandbox was started with; other
//!   credentials get 401 `{"error": "Unauthorized", ...}`.
//! - `POST /auth/token/refresh` rotates the pair, with or without the bearer header; a dead
//!   refresh token gets 401 `{"error": "Unauthorized", ...}`, a malformed request 400.
//!
//! ```
//! use std::sync::Arc;
//! use token_core::{CallContext, Provider, SystemClock};
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

use std::sync::Arc;
use std::time::Duration;

use token_core::__private::http::Method;
use token_core::__private::serde_json::json;
use token_core::issuer::{AccessTokenFormat, IssuerConfig};
use token_core::sandbox::endpoint::{Refusal, ServeEndpoint};
use token_core::sandbox::{RunningSandbox, Sandbox, SandboxBuilder, SandboxContext, SandboxError};
use token_core::{ClientSecret, Clock};

use crate::endpoints::{
    ISSUE_PATH, IssueError, IssueServiceToken, PaymentsgateError, REFRESH_PATH, RefreshServiceToken,
};
use crate::provider::PaymentsgateConfig;

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
/// `POST /auth/token/refresh` on `builder`.
pub fn routes(builder: SandboxBuilder, account: &PaymentsgateConfig) -> SandboxBuilder {
    let expected = (account.account_id.clone(), account.public_key.clone());
    let issue = ServeEndpoint::<IssueServiceToken>::new(
        move |issue: IssueServiceToken, cx: SandboxContext| {
            let known = known_account(&expected, &issue.account_id, &issue.public_key);
            async move {
                if !known {
                    return Err(Refusal::custom(
                        "unknown_account",
                        "unknown account or public key",
                    ));
                }
                cx.issuer()
                    .issue(issue.account_id, json!({}))
                    .await
                    .map_err(Refusal::Issuer)
            }
        },
        refuse_issue,
    );
    let refresh = ServeEndpoint::<RefreshServiceToken>::refresh(
        |refresh| refresh.refresh_token.clone(),
        refuse_refresh,
    );
    builder
        .route(Method::POST, ISSUE_PATH, issue)
        .route(Method::POST, REFRESH_PATH, refresh)
}

fn known_account(expected: &(String, ClientSecret), id: &str, key: &ClientSecret) -> bool {
    expected.0 == id && expected.1 == *key
}

fn refuse_issue(refusal: Refusal) -> IssueError {
    match refusal {
        Refusal::BadRequest(error) => IssueError::new(400, "Bad Request", error.0),
        Refusal::Custom { code, message } if code == "unknown_account" => {
            IssueError::new(401, "Unauthorized", message)
        }
        _ => IssueError::new(500, "Internal Server Error", "the issuer failed"),
    }
}

fn refuse_refresh(refusal: Refusal) -> PaymentsgateError {
    match refusal {
        Refusal::BadRequest(error) => PaymentsgateError::new(400, "Bad Request", error.0),
        Refusal::Issuer(error) if error.is_refresh_rejection() => {
            PaymentsgateError::new(401, "Unauthorized", error.to_string())
        }
        _ => PaymentsgateError::new(500, "Internal Server Error", "the issuer failed"),
    }
}
