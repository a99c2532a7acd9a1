//! The shared core of typed token refresh for payment providers.
//!
//! A provider crate (`token-provider-oauth2`, `-paymentsgate`, `-vaultist`, `-maya`,
//! `-alipayplus`, or one of your own) is a few annotated structs; this crate turns them into
//! a client that keeps each session's access token fresh: one refresh per session however
//! many callers and processes ask, the rotated pair persisted before use, transient failures
//! retried, a dead refresh token reported once, and no secret in any log, `Debug` or error.
//!
//! ```
//! use token_core::prelude::*;
//!
//! /// A provider written by hand; provider crates derive this from `#[token_endpoint]` items.
//! struct Counter(std::sync::atomic::AtomicU32);
//!
//! #[async_trait]
//! impl Provider for Counter {
//!     type Extras = NoExtras;
//!     fn name(&self) -> &str {
//!         "counter"
//!     }
//!     async fn refresh(&self, cx: &CallContext, _current: &TokenSet) -> Result<TokenSet, Error> {
//!         let n = self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst) + 1;
//!         Ok(TokenSet::new(AccessToken::new(format!("at-{n}")))
//!             .with_refresh_token(RefreshToken::new(format!("rt-{n}")))
//!             .with_access_expires_at(cx.now() + time::Duration::hours(1)))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")] async fn main() -> Result<(), Error> {
//! let manager = TokenManager::builder(Counter(0.into())).store(MemoryStore::new()).build()?;
//! // The refresh token from a login: the manager refreshes at once...
//! manager.insert_refresh_token("customer-1", RefreshToken::new("rt-0")).await?;
//! // ...and serves the fresh token without a call until it nears its expiry.
//! let token = manager.access_token("customer-1").await?;
//! assert_eq!(token.expose_secret(), "at-1");
//! assert_eq!(format!("{token:?}"), "AccessToken([redacted])");
//! # Ok(()) }
//! ```
//!
//! # The layers
//!
//! One refresh travels down these layers and its answer back up:
//!
//! | layer | where | what it does |
//! |---|---|---|
//! | definitions | [`token_endpoint`] | request, response, error and error-code items of a provider, declared |
//! | codecs | [`codec`], [`expiry`] | the traits the macro implements; the one classifier of an answer's [`ErrorKind`](error::ErrorKind) |
//! | RFC 6749 | [`oauth`] | the token endpoint's grants, answer and error codes, HTTP Basic credentials, defined once |
//! | transport | [`transport`], [`provider`] | [`HttpClient`](transport::HttpClient) (reqwest by default), [`CallContext::call`](provider::CallContext::call), [`Signer`](provider::Signer) |
//! | manager | [`manager`] | [`TokenManager`](manager::TokenManager): single flight, proactive refresh, retries, leases, events |
//! | stores | [`store`] | [`MemoryStore`](store::MemoryStore), [`FileStore`](store::FileStore), `PostgresStore`: compare-and-swap and leases |
//! | middleware | [`middleware`], `tower` | [`BearerAuth`](middleware::BearerAuth) (reqwest-middleware) and `tower::BearerLayer`: the bearer header on every call, one refresh after a 401 |
//! | server | [`issuer`] | [`Issuer`](issuer::Issuer): the token issuing side (pairs, rotation, single-use authorization codes), for wallets that serve refresh themselves |
//! | sandbox | `sandbox` | a loopback server of any provider from its definitions, with fault injection |
//!
//! Secrets ([`AccessToken`](secret::AccessToken), [`RefreshToken`](secret::RefreshToken), [`ClientSecret`](secret::ClientSecret), [`AuthCode`](secret::AuthCode)) redact
//! themselves in `Debug`; [`redact`] scrubs them from provider text.
//!
//! # Features
//!
//! | feature | default | adds |
//! |---|---|---|
//! | `reqwest` | yes | `ReqwestClient`, the manager's HTTP client unless another [`HttpClient`](transport::HttpClient) is given |
//! | `middleware` | yes | `middleware::BearerAuth` for reqwest-middleware clients |
//! | `rustls` | yes | TLS by rustls with aws-lc-rs (its build compiles the aws-lc C library) |
//! | `rustls-ring` | no | TLS by rustls with ring, installed as rustls' process default; with `default-features = false` no aws-lc |
//! | `native-tls` | no | TLS by the platform's library (OpenSSL on Linux), with `rustcrypto` |
//! | `rustcrypto` | no | SHA-256 and HMAC from the RustCrypto crates; with `rustls` or `rustls-ring` they come from aws-lc-rs or ring, which rustls brings anyway |
//! | `idna-unicode-rs` | yes | `url`'s IDNA by the unicode-rs tables (`idna_adapter` 1.1) instead of ICU4X: the same UTS 46 mapping, about twenty fewer crates; without it the application's `Cargo.lock` chooses |
//! | `http2` | no | HTTP/2 in `ReqwestClient` (token endpoints answer HTTP/1.1) |
//! | `server` | no | `issuer`: the token issuing side a wallet serves refresh from |
//! | `sandbox` | no | `sandbox` (and `server`): serve any provider's endpoints on 127.0.0.1 over the issuer, with faults |
//! | `postgres` | no | `PostgresStore` and `PostgresIssuerStore`, for several replicas |
//! | `metrics` | no | `metrics`: refreshes, failures by kind, re-auths, refresh latency and cache hits through the `metrics` facade |
//! | `tower` | no | `tower::BearerLayer`: the bearer token for any tower HTTP client (hyper-util, tonic) |
//!
//! # Provider crates
//!
//! | crate | provider |
//! |---|---|
//! | `token-provider-oauth2` | any RFC 6749 server: refresh, authorization code with PKCE, client credentials |
//! | `token-provider-paymentsgate` | Paymentsgate service tokens |
//! | `token-provider-vaultist` | Vault.ist v3 and v2 |
//! | `token-provider-maya` | Maya Mini App and Maya Connect, with the Session URL receiver |
//! | `token-provider-alipayplus` | Alipay+ `applyToken`, RSA256 signatures, and the MPP side |
//! | `token-provider-wechat` | WeChat OAuth web login refresh (`/sns/oauth2/refresh_token`) |
//! | `token-provider-lazada` | Lazada Open Platform `/auth/token/refresh`, HMAC-signed |
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

// `#[token_endpoint]` items in this crate (`oauth`) name it as their generated code does.
extern crate self as token_core;

pub mod clock;
pub mod codec;
mod crypto;
pub mod error;
pub mod expiry;
#[cfg(feature = "server")]
pub mod issuer;
mod macro_support;
pub mod manager;
#[cfg(feature = "metrics")]
pub mod metrics;
pub mod middleware;
pub mod oauth;
pub mod pkce;
#[cfg(feature = "postgres")]
pub mod postgres;
pub mod provider;
mod random;
pub mod redact;
#[cfg(feature = "sandbox")]
pub mod sandbox;
pub mod secret;
pub mod sign;
pub mod store;
#[cfg(test)]
mod test_logs;
pub mod token_set;
#[cfg(feature = "tower")]
pub mod tower;
pub mod transport;

/// The attribute `Provider` (and `TokenStore`, `HttpClient`, `Signer`) impls take: the traits
/// have async methods and are used as trait objects.
pub use async_trait::async_trait;
#[doc = include_str!("token_endpoint.md")]
pub use token_macros::token_endpoint;

/// The names most code uses, in one import: `use token_core::prelude::*;`. Every name here
/// also has its one home in the module of its layer, but serde's `Serialize` and
/// `Deserialize` (the traits and their derives, for a provider's config), whose derives name
/// `serde`: a crate deriving them depends on serde.
pub mod prelude {
    pub use crate::error::{Error, ErrorKind};
    pub use crate::expiry::ExpiresIn;
    pub use crate::manager::{ManagerConfig, SessionHandle, TokenManager};
    pub use crate::provider::{CallContext, Provider};
    pub use crate::secret::{AccessToken, ClientSecret, RefreshToken};
    pub use crate::store::{MemoryStore, SessionKey, TokenStore};
    pub use crate::token_set::{NoExtras, TokenSet};
    pub use crate::{async_trait, token_endpoint};
    pub use serde::{Deserialize, Serialize};
}

/// What generated code needs; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::macro_support::*;
    pub use crate::provider::{KeepExtras, RefreshEndpoint};
    pub use async_trait::async_trait;
    pub use http;
    pub use serde;
    pub use serde_json;
    pub use serde_urlencoded;
    pub use time;
    pub use url;
    pub use uuid;
}
