//! Paymentsgate service-account tokens for [`token_core`]: issued with the account's
//! credentials, refreshed with the refresh token, and issued anew whenever a refresh is
//! refused (a service account needs no user).
//!
//! - **Issue** ([`IssueServiceToken`]): `POST /auth/token` with `{"account_id", "public_key"}`
//!   (the Base64 of the account's PEM public key).
//! - **Refresh** ([`RefreshServiceToken`]): `POST /auth/token/refresh` with
//!   `{"refresh_token"}` and, as the documentation shows, `Authorization: Bearer <access
//!   token>`. The official Node and PHP clients send no `Authorization` header: turn it off
//!   with `"refresh_bearer": false`.
//! - **Answers** ([`PaymentsgateTokens`]): `{access_token, refresh_token, expires_in}`; without
//!   `expires_in`, the expiry is the access token's JWT `exp` claim (as the official clients
//!   read it).
//! - **Errors** ([`PaymentsgateError`], `{error, message, details?, statusCode?}`): a refresh
//!   refused with 400 or 401 means the pair is dead, and since [`Paymentsgate`] can issue, the
//!   [`TokenManager`](token_core::manager::TokenManager) issues a new pair with the account
//!   credentials instead of asking for re-authorization (as it does for a refusal whose
//!   body is not Paymentsgate's error, such as NestJS's default `{"statusCode":401,
//!   "message":"Unauthorized"}`); 403 is a misconfiguration; 429 and 5xx are retried. The issue call's 400, 401 and 403 ([`IssueError`]) mean the account
//!   credentials are wrong: a misconfiguration, never retried.
//!
//! The documented sandbox host is `https://secure.sandbox.paymentsgate.io`; paths are
//! relative to the base URL.
//!
//! # Configuration
//!
//! [`PaymentsgateConfig`] reads from JSON (unknown keys are refused):
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `account_id` | string, required | the service account id |
//! | `public_key` | string, required | the Base64 of the account's PEM public key, as Paymentsgate registered it |
//! | `refresh_bearer` | bool, default `true` | send `Authorization: Bearer <access token>` on refresh (the documented request); `false` as the official clients do |
//!
//! ```
//! use token_provider_paymentsgate::PaymentsgateConfig;
//!
//! let config: PaymentsgateConfig = serde_json::from_str(r#"{
//!     "account_id": "acct-1",
//!     "public_key": "LS0tLS1CRUdJTiBQVUJMSUMgS0VZLS0tLS0K"
//! }"#)?;
//! assert!(config.refresh_bearer);
//! let shown = format!("{config:?}");
//! assert!(shown.contains("public_key: ClientSecret([redacted])"), "{shown}");
//! assert!(!shown.contains("LS0t"));
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! ```no_run
//! use token_core::manager::TokenManager;
//! use token_provider_paymentsgate::{Paymentsgate, PaymentsgateConfig};
//!
//! # async fn run(config: PaymentsgateConfig) -> Result<(), Box<dyn std::error::Error>> {
//! let provider = Paymentsgate::new("https://secure.sandbox.paymentsgate.io".parse()?, config);
//! let manager = TokenManager::builder(provider).build()?;
//! // No session yet: the manager issues one with the account credentials.
//! let token = manager.access_token("service-account").await?;
//! # let _ = token;
//! # Ok(()) }
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod endpoints;
mod provider;
pub mod sandbox;

pub use config::PaymentsgateConfig;
pub use endpoints::{
    ISSUE_PATH, IssueError, IssueServiceToken, PaymentsgateError, PaymentsgateTokens, REFRESH_PATH,
    RefreshServiceToken,
};
pub use provider::Paymentsgate;
