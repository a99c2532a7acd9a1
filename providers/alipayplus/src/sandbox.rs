//! Alipay+ applyToken on the token-core sandbox: the [`Mpp`] answering with the sandbox's
//! issuer, with fixed sandbox keys so client and MPP verify each other, and a fault that
//! answers `U` after processing.
//!
//! The keys below are published test keys: never use them outside a sandbox.
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

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use http::Method;
use token_core::codec::Endpoint;
use token_core::sandbox::{RunningSandbox, SandboxBuilder, SandboxContext};
use token_core::{AuthCode, IssuerConfig};

use crate::config::AlipayPlusConfig;
use crate::endpoints::{AlipayCode, AlipayError, AlipayExtras, ApplyToken};
use crate::mpp::Mpp;
use crate::signature::Rsa256Signer;

/// The sandbox client's PKCS#8 private key (test key).
pub const CLIENT_PRIVATE_KEY: &str = include_str!("sandbox_keys/client.key.pem");
/// The sandbox client's public key.
pub const CLIENT_PUBLIC_KEY: &str = include_str!("sandbox_keys/client.pub.pem");
/// The sandbox MPP's PKCS#8 private key (test key).
pub const MPP_PRIVATE_KEY: &str = include_str!("sandbox_keys/mpp.key.pem");
/// The sandbox MPP's public key.
pub const MPP_PUBLIC_KEY: &str = include_str!("sandbox_keys/mpp.pub.pem");
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
        let signer = Rsa256Signer::from_pem(CLIENT_ID, 1, MPP_PRIVATE_KEY, CLIENT_PUBLIC_KEY)
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
        AlipayPlusConfig::new(CLIENT_ID, PSP_ID, CLIENT_PRIVATE_KEY, MPP_PUBLIC_KEY)
            .with_base_url(sandbox.base_url())
            .with_acquirer_id(ACQUIRER_ID)
    }

    /// The MPP.
    pub fn mpp(&self) -> &Mpp {
        &self.mpp
    }

    /// The user `subject` consents: an authorization code for it, at the sandbox's time.
    pub fn authorize(
        &self,
        sandbox: &RunningSandbox,
        subject: &str,
        extras: AlipayExtras,
    ) -> AuthCode {
        self.mpp.authorize(subject, extras, sandbox.clock().now())
    }

    /// The next `times` applyToken requests are processed (a refresh rotates) and then
    /// answered `U UNKNOWN_EXCEPTION`, signed: the outcome the client cannot know.
    pub fn answer_unknown_next(&self, times: u32) {
        self.unknown_next.fetch_add(times, Ordering::SeqCst);
    }
}
