//! Alipay+ applyToken for [`token_core`]: the client ([`AlipayPlus`]) for the
//! `REFRESH_TOKEN` and `AUTHORIZATION_CODE` grants, RSA256 signatures in both directions
//! ([`Rsa256Signer`]), and the MPP side ([`mpp::Mpp`]) that a wallet runs over the core
//! issuer.
//!
//! - **Requests** ([`ApplyToken`], [`ApplyTokenByCode`]): `POST
//!   /aps/api/v1/authorizations/applyToken` with `{acquirerId?, pspId, grantType, authCode?,
//!   refreshToken?}`, every value a string, absent optional fields left out.
//! - **Answers** ([`ApplyTokenResult`]): `accessToken`, `accessTokenExpiryTime`,
//!   `refreshToken`, `refreshTokenExpiryTime` (ISO 8601 with offset), and the extras
//!   `customerId`, `userLoginId` ([`AlipayExtras`]). The manager watches both expiries.
//! - **The result envelope** ([`AlipayError`], [`AlipayCode`]): `resultStatus` `S` is success;
//!   `F` is classified by `resultCode`: `INVALID_REFRESH_TOKEN`, `EXPIRED_REFRESH_TOKEN`,
//!   `USED_REFRESH_TOKEN`, `INVALID_AUTH_CODE`, `EXPIRED_AUTH_CODE` mean re-authorization,
//!   `INVALID_SIGNATURE` and `PARAM_ILLEGAL` a misconfiguration, anything else a definitive
//!   refusal; `U` is outcome-unknown, and the manager sends the same request again inside the
//!   declared reuse window (5 minutes by default, as Alipay+ recommends), after a backoff.
//!   `REQUEST_TRAFFIC_EXCEED_LIMIT` comes with `U` and is retried so, as Alipay+ asks ("call
//!   the interface again"); outside the window (or with none declared) it is not sent again,
//!   since the same request then could be a replay. Sent with `F`, it is retried as transient.
//! - **Signatures** ([`signature`]): `Client-Id`, `Request-Time`, `Signature: algorithm=RSA256,
//!   keyVersion=N, signature=<url-encoded base64>` over `<METHOD> <Request-URI>\n<Client-Id>.
//!   <Request-Time>.<Body>`, SHA256withRSA with a PKCS#8 key; answers are verified the same
//!   way with `Response-Time`. A 2xx answer without a valid signature is refused
//!   (misconfigured); a non-2xx answer (a gateway's 5xx or 429) is classified by its status,
//!   and the result its body may carry is read only when the answer is signed.
//!
//! # Configuration
//!
//! [`AlipayPlusConfig`] reads from JSON (unknown keys are refused):
//!
//! | key | type | meaning |
//! |---|---|---|
//! | `client_id` | string, required | the `Client-Id` Alipay+ assigned |
//! | `psp_id` | string, required | `pspId` |
//! | `acquirer_id` | string, optional | `acquirerId`, left out when absent |
//! | `base_url` | URL, default `https://open-sea-global.alipayplus.com` | also `open-sea`, `open-na`, `open-na-global` |
//! | `private_key` or `private_key_file` | string / path, exactly one | the client's PKCS#8 RSA private key, PEM or bare Base64 |
//! | `server_public_key` or `server_public_key_file` | string / path, exactly one | the server's RSA public key that answers are verified with |
//! | `key_version` | integer, default 1 | `keyVersion` in `Signature` |
//! | `reuse_window_secs` | integer, default 300 | how long the server answers a used refresh token with the same pair |
//! | `authorize_url` | URL, optional | carried by the re-auth signal, with `state=<session>` |
//!
//! ```
//! use token_provider_alipayplus::AlipayPlusConfig;
//!
//! let config: AlipayPlusConfig = serde_json::from_str(r#"{
//!     "client_id": "SANDBOX_5Y60382Z2VX",
//!     "psp_id": "102208800000000001",
//!     "private_key_file": "/etc/app/alipayplus.key.pem",
//!     "server_public_key_file": "/etc/app/alipayplus.pub.pem"
//! }"#)?;
//! assert_eq!(config.reuse_window_secs, 300);
//! assert_eq!(config.base_url.as_str(), "https://open-sea-global.alipayplus.com/");
//! # Ok::<(), serde_json::Error>(())
//! ```
#![forbid(unsafe_code)]
#![warn(missing_docs)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod config;
mod endpoints;
#[cfg(feature = "mpp")]
pub mod mpp;
mod provider;
pub mod sandbox;
pub mod signature;

pub use config::{AlipayPlusConfig, ConfigError};
pub use endpoints::{
    AlipayCode, AlipayError, AlipayExtras, ApplyToken, ApplyTokenByCode, ApplyTokenResult,
};
pub use provider::AlipayPlus;
pub use signature::Rsa256Signer;
