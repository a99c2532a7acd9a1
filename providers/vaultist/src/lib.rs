//! Vault.ist token refresh for [`token_core`], in both published shapes.
//!
//! - **v3** ([`RefreshV3`], api.vault.ist v3.0): `POST /v1/auth/token` with the headers
//!   `partnerId` (int32) and `grantType: refresh_token` and the body `{"refreshToken"}`,
//!   answered `{access_token, refresh_token (if applicable), expires_in, token_type}`; errors
//!   are `{"error": "invalid_grant" | "invalid_request", "error_description"}`
//!   ([`VaultistError`]), and the sandbox host's generic `{"message", "errorId", "systemId",
//!   "error": "COMMON"}` reads with the same definition.
//! - **v2** ([`RefreshV2`], api.vault.ist v2.0): the body `{"grant_type": "refresh_token",
//!   "refresh_token"}`, answered with `scope` and `user_id` as well (`user_id` lands in
//!   [`VaultistExtras`]); an expired refresh token is HTTP 401 `{"status": "UNAUTHORIZED",
//!   "message": "The Token has expired on ...", "traceId", "errors": []}`
//!   ([`VaultistV2Error`]). The v2 documents name the endpoint only as "the OAuth2.0
//!   endpoint"; this crate uses v3's `/v1/auth/token`.
//! - Both send the optional `X-Merchant-ID` header (the sandbox host requires it).
//! - **Errors**: `invalid_grant` and v2's 401 `UNAUTHORIZED` mean re-authorization (Vault.ist
//!   issues first tokens only through its own login); `invalid_request` and v2's
//!   `BAD_REQUEST` are definitive refusals; 5xx and 429 are retried, and so are v3's
//!   `server_error` and v2's `INTERNAL_SERVER_ERROR` whatever their status (the sandbox
//!   answers its own failure so, with HTTP 500). The text says access tokens last 24 h and
//!   the v3 example says `expires_in: 3600`: the answer decides.
//!
//! # Configuration
//!
//! [`VaultistConfig`] reads from JSON (unknown keys are refused):
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `partner_id` | integer (int32), required | the partner id, sent as the v3 `partnerId` header (v2 does not send it) |
//! | `api_version` | `"v3"` (default) or `"v2"` | which request and error shape to use |
//! | `merchant_id` | string, optional | sent as `X-Merchant-ID` |
//!
//! ```
//! use token_provider_vaultist::{ApiVersion, VaultistConfig};
//!
//! let config: VaultistConfig = serde_json::from_str(r#"{"partner_id": 42, "merchant_id": "m-1"}"#)?;
//! assert_eq!(config.api_version, ApiVersion::V3);
//! let v2: VaultistConfig = serde_json::from_str(r#"{"partner_id": 42, "api_version": "v2"}"#)?;
//! assert_eq!(v2.api_version, ApiVersion::V2);
//! # Ok::<(), serde_json::Error>(())
//! ```
//!
//! ```no_run
//! use token_core::{secret::RefreshToken, manager::TokenManager};
//! use token_provider_vaultist::{Vaultist, VaultistConfig};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let provider = Vaultist::new(
//!     "https://api.vault.sandbox.testessential.net".parse()?,
//!     VaultistConfig::new(42).with_merchant_id("m-1"),
//! );
//! let manager = TokenManager::builder(provider).build()?;
//! // Tokens from Vault.ist's login, stored once; the manager refreshes from then on.
//! let token = manager
//!     .insert_refresh_token("partner", RefreshToken::new("rt-from-login"))
//!     .await?;
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

pub use config::{ApiVersion, VaultistConfig};
pub use endpoints::{
    REFRESH_PATH, RefreshV2, RefreshV3, VaultistCode, VaultistError, VaultistExtras,
    VaultistTokens, VaultistV2Error, VaultistV2Status,
};
pub use provider::Vaultist;
