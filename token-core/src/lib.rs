//! Typed token refresh for payment providers.
//!
//! `token-core` holds everything providers share: [secrets](secret) that redact themselves,
//! [`TokenSet`] with absolute expiry, the [codec traits](codec) that `#[token_endpoint]`
//! implements, the [`Provider`] trait, [token stores](store), the refresh-and-retry
//! [`TokenManager`], the server-side [issuer], and (feature `sandbox`) a loopback
//! sandbox of any provider.
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

pub mod clock;
pub mod codec;
pub mod error;
pub mod expiry;
pub mod issuer;
mod macro_support;
pub mod manager;
pub mod middleware;
pub mod pkce;
pub mod provider;
pub mod redact;
#[cfg(feature = "sandbox")]
#[cfg_attr(docsrs, doc(cfg(feature = "sandbox")))]
pub mod sandbox;
pub mod secret;
pub mod store;
pub mod token_set;
pub mod transport;

/// The attribute `Provider` (and `TokenStore`, `HttpClient`, `Signer`) impls take: the traits
/// have async methods and are used as trait objects.
pub use async_trait::async_trait;
pub use clock::{Clock, ManualClock, SystemClock, TokioClock};
pub use codec::{
    Endpoint, ErrorResponse, FromContext, RefusalReason, RequestContext, TokenResponse,
};
pub use error::{
    EndpointError, Error, ErrorKind, ProviderError, Reauth, StoreError, TransportError,
};
pub use issuer::{
    Issuer, IssuerConfig, IssuerError, IssuerStore, MemoryIssuerStore, RefreshRotation,
};
pub use manager::{Event, ExpiryNote, ManagerConfig, RetryPolicy, TokenManager};
pub use middleware::BearerAuth;
pub use pkce::PkceVerifier;
pub use provider::{CallContext, Provider, Signer};
#[cfg(feature = "sandbox")]
pub use sandbox::{RunningSandbox, Sandbox};
pub use secret::{AccessToken, AuthCode, ClientSecret, RefreshToken};
pub use store::FileStore;
pub use store::{MemoryStore, SessionKey, TokenStore};
#[doc = include_str!("token_endpoint.md")]
pub use token_macros::token_endpoint;
pub use token_set::{Extras, NoExtras, StoredTokenSet, TokenSet};
pub use transport::{HttpClient, ReqwestClient};

/// What generated code needs; not a public API.
#[doc(hidden)]
pub mod __private {
    pub use crate::macro_support::*;
    pub use async_trait::async_trait;
    pub use http;
    pub use serde;
    pub use serde_json;
    pub use serde_urlencoded;
    pub use time;
    pub use url;
    pub use uuid;
}
