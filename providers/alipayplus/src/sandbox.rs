//! Alipay+ applyToken on the token-core sandbox: the [`Mpp`] answering with the sandbox's
//! issuer, with sandbox keys so client and MPP verify each other, and a fault that answers `U`
//! after processing.
//!
//! The sandbox keys are RSA-2048 pairs made at first use in each process ([`client_private_key`]
//! and the functions beside it); no private key is shipped with this crate.
//!
//! ```
//! use token_core::sandbox::Sandbox;
//! use token_provider_alipayplus::sandbox::AlipayPlusSandbox;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mpp = AlipayPlusSandbox::new();
//! let sandbox = mpp
//!     .routes(Sandbox::builder().issuer_config(AlipayPlusSandbox::issuer_config()))
//!     .start()
//!     .await?;
//! let config = mpp.config(&sandbox); // the client's config, pointing at the sandbox
//! assert_eq!(config.base_url, sandbox.base_url());
//! # Ok(()) }
//! ```
#![cfg(feature = "sandbox")]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::{KeyPair, KeySize};
use aws_lc_rs::signature::KeyPair as _;
use base64::Engine as _;

use http::Method;
use token_core::codec::Endpoint;
use token_core::issuer::IssuerError;
use token_core::sandbox::{RunningSandbox, SandboxBuilder, SandboxContext};
use token_core::{issuer::IssuerConfig, secret::AuthCode};

use crate::config::AlipayPlusConfig;
use crate::endpoints::{AlipayCode, AlipayError, AlipayExtras, ApplyToken};
use crate::mpp::Mpp;
use crate::signature::Rsa256Signer;

/// The sandbox client's PKCS#8 private key, PEM (made for this process).
pub fn client_private_key() -> &'static str {
    &KEYS.client.private
}

/// The sandbox client's public key (SubjectPublicKeyInfo), PEM.
pub fn client_public_key() -> &'static str {
    &KEYS.client.public
}

/// The sandbox MPP's PKCS#8 private key, PEM (made for this process).
pub fn mpp_private_key() -> &'static str {
    &KEYS.mpp.private
}

/// The sandbox MPP's public key (SubjectPublicKeyInfo), PEM.
pub fn mpp_public_key() -> &'static str {
    &KEYS.mpp.public
}

struct SandboxKeys {
    client: PemPair,
    mpp: PemPair,
}

struct PemPair {
    private: String,
    public: String,
}

static KEYS: LazyLock<SandboxKeys> = LazyLock::new(|| SandboxKeys {
    client: PemPair::generate(),
    mpp: PemPair::generate(),
});

impl PemPair {
    fn generate() -> Self {
        let pair = KeyPair::generate(KeySize::Rsa2048).expect("RSA-2048 key generation works");
        let private = pair.as_der().expect("a new key encodes as PKCS#8");
        let public = pair
            .public_key()
            .as_der()
            .expect("a public key encodes as SPKI");
        Self {
            private: pem("PRIVATE KEY", private.as_ref()),
            public: pem("PUBLIC KEY", public.as_ref()),
        }
    }
}

fn pem(label: &str, der: &[u8]) -> String {
    let base64 = base64::engine::general_purpose::STANDARD.encode(der);
    let mut text = format!("-----BEGIN {label}-----\n");
    for line in base64.as_bytes().chunks(64) {
        text.push_str(std::str::from_utf8(line).expect("Base64 is ASCII"));
        text.push('\n');
    }
    text.push_str(&format!("-----END {label}-----\n"));
    text
}

/// The sandbox `Client-Id`.
pub const CLIENT_ID: &str = "SANDBOX_5Y60382Z2VX";
/// The sandbox `pspId` (the seed's).
pub const PSP_ID: &str = "102208800000000001";
/// The sandbox `acquirerId` (the seed's).
pub const ACQUIRER_ID: &str = "102218800000000001";

/// An MPP for the sandbox.
#[derive(Clone, Debug)]
pub struct AlipayPlusSandbox {
    mpp: Arc<Mpp>,
    unknown_next: Arc<AtomicU32>,
}

impl Default for AlipayPlusSandbox {
    fn default() -> Self {
        Self::new()
    }
}

impl AlipayPlusSandbox {
    /// An MPP with the sandbox keys, accepting [`PSP_ID`].
    pub fn new() -> Self {
        let signer = Rsa256Signer::from_pem(CLIENT_ID, 1, mpp_private_key(), client_public_key())
            .expect("the sandbox keys are valid");
        Self {
            mpp: Arc::new(Mpp::new(signer).with_psp_id(PSP_ID)),
            unknown_next: Arc::new(AtomicU32::new(0)),
        }
    }

    /// The issuer configuration the seed recommends to MPPs: a 5-minute reuse window.
    pub fn issuer_config() -> IssuerConfig {
        IssuerConfig::default().with_reuse_window(Duration::from_secs(300))
    }

    /// Registers `POST /aps/api/v1/authorizations/applyToken` on `builder`.
    pub fn routes(&self, builder: SandboxBuilder) -> SandboxBuilder {
        let (mpp, unknown_next) = (self.mpp.clone(), self.unknown_next.clone());
        builder.route(
            Method::POST,
            ApplyToken::PATH,
            move |request: http::Request<Vec<u8>>, cx: SandboxContext| {
                let (mpp, unknown_next) = (mpp.clone(), unknown_next.clone());
                async move {
                    let answer = mpp.answer(cx.issuer(), &request).await;
                    let unknown = unknown_next
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                        .is_ok();
                    if unknown {
                        let error = AlipayError::unknown(
                            AlipayCode::UnknownException,
                            "sandbox: outcome unknown",
                        );
                        return mpp.answer_error(&request, &error, cx.now());
                    }
                    answer
                }
            },
        )
    }

    /// The client's config for `sandbox`: the sandbox client's key, the MPP's public key.
    pub fn config(&self, sandbox: &RunningSandbox) -> AlipayPlusConfig {
        AlipayPlusConfig::new(CLIENT_ID, PSP_ID, client_private_key(), mpp_public_key())
            .with_base_url(sandbox.base_url())
            .with_acquirer_id(ACQUIRER_ID)
    }

    /// The MPP.
    pub fn mpp(&self) -> &Mpp {
        &self.mpp
    }

    /// The user `subject` consents: an authorization code for it from the sandbox's issuer.
    pub async fn authorize(
        &self,
        sandbox: &RunningSandbox,
        subject: &str,
        extras: AlipayExtras,
    ) -> Result<AuthCode, IssuerError> {
        self.mpp.authorize(sandbox.issuer(), subject, extras).await
    }

    /// The next `times` applyToken requests are processed (a refresh rotates) and then
    /// answered `U UNKNOWN_EXCEPTION`, signed: the outcome the client cannot know.
    pub fn answer_unknown_next(&self, times: u32) {
        self.unknown_next.fetch_add(times, Ordering::SeqCst);
    }
}
