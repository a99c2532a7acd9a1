//! Vault.ist's refresh endpoint on the token-core sandbox, both versions on one path, served
//! from the same definitions the client uses.
//!
//! `POST /v1/auth/token` answers a v3 request (the `grantType` header) with the v3 shapes and
//! a v2 request (`grant_type` in the body, even one it cannot read) with the v2 shapes: a
//! dead refresh token is v3 400 `invalid_grant` or v2 401 `UNAUTHORIZED` ("The Token has
//! expired on ..." when it expired). Sessions are issued with [`RunningSandbox::issue_with`] (Vault.ist's own login
//! is out of scope); a `user_id` in their extras comes back in every answer. The sandbox
//! serves one partner: a v3 request with another `partnerId` is refused with the generic
//! `{"error": "COMMON", ...}`; and when that partner's config has a merchant id, a request
//! without that `X-Merchant-ID` is refused the same way (v3) or 400 `BAD_REQUEST` (v2). A
//! failure of the sandbox itself (its issuer store) is HTTP 500, `server_error` (v3) or
//! `INTERNAL_SERVER_ERROR` (v2).
//!
//! ```
//! use std::sync::Arc;
//! use token_core::{provider::CallContext, provider::Provider, clock::SystemClock, token_set::TokenSet};
//! use token_provider_vaultist::{Vaultist, VaultistConfig, sandbox};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let config = VaultistConfig::new(42);
//! let sandbox = sandbox::start(Arc::new(SystemClock), sandbox::issuer_config(), &config).await?;
//! let first = TokenSet::from_stored(sandbox.issue_with("partner", serde_json::json!({"user_id": "usr:1"})).await?)?;
//! let provider = Vaultist::new(sandbox.base_url(), config);
//! let cx = CallContext::new(sandbox.client(), sandbox.clock().clone(), "partner");
//! let next = provider.refresh(&cx, &first).await?;
//! assert_ne!(next.refresh_token, first.refresh_token);
//! assert_eq!(next.extras.user_id.as_deref(), Some("usr:1"));
//! # Ok(()) }
//! ```
#![cfg(feature = "sandbox")]

use std::sync::Arc;
use std::time::Duration;

use http::Method;
use token_core::clock::Clock;
use token_core::codec::RefusalReason;
use token_core::issuer::IssuerConfig;
use token_core::sandbox::endpoint::{Refusal, ServeEndpoint};
use token_core::sandbox::{
    Handler, RunningSandbox, Sandbox, SandboxBuilder, SandboxContext, SandboxError,
};

use crate::config::VaultistConfig;
use crate::endpoints::{REFRESH_PATH, RefreshV2, RefreshV3};

/// The issuer as the v3 example answers: access tokens that last 3600 s (the v2 text says
/// 24 h: set that with [`IssuerConfig::with_access_ttl`]).
pub fn issuer_config() -> IssuerConfig {
    IssuerConfig::default().with_access_ttl(Duration::from_secs(3600))
}

/// Starts a sandbox serving [`routes`] for `partner` (and token-core's protected API under
/// `/api/`) on 127.0.0.1.
pub async fn start(
    clock: Arc<dyn Clock>,
    issuer: IssuerConfig,
    partner: &VaultistConfig,
) -> Result<RunningSandbox, SandboxError> {
    let builder = Sandbox::builder()
        .clock(clock)
        .issuer_config(issuer)
        .oauth_routes(false);
    routes(builder, partner).start().await
}

/// Registers `POST /v1/auth/token` (v3 and v2) on `builder` for `partner`: v3 requests must
/// carry its `partnerId` (v2 requests carry none), and when it has a `merchant_id`, every
/// request must carry that `X-Merchant-ID`. Refusals are answered with the codes
/// [`VaultistCode`](crate::VaultistCode) and [`VaultistV2Status`](crate::VaultistV2Status)
/// declare for them.
pub fn routes(builder: SandboxBuilder, partner: &VaultistConfig) -> SandboxBuilder {
    let merchant = partner.merchant_id.clone();
    let partner_id = partner.partner_id;
    let unknown = || Refusal::new(RefusalReason::UnknownClient, "Merchant not found");
    let known = move |sent: &Option<String>| merchant.is_none() || merchant == *sent;
    let v3_known = known.clone();
    let v3 = ServeEndpoint::<RefreshV3>::refresh(|r| r.refresh_token.clone())
        .require(move |r| v3_known(&r.merchant_id), unknown())
        .require(
            move |r| r.partner_id == partner_id,
            Refusal::new(RefusalReason::UnknownClient, "Partner not found"),
        );
    let v2 = ServeEndpoint::<RefreshV2>::refresh(|r| r.refresh_token.clone())
        .require(move |r| known(&r.merchant_id), unknown());
    builder.route(Method::POST, REFRESH_PATH, Versions { v3, v2 })
}

/// `POST /v1/auth/token`: a request whose JSON body names `grant_type` is v2's and served by
/// v2, its refusals in v2's shape even when the rest of it cannot be read; any other is v3's.
struct Versions {
    v3: ServeEndpoint<RefreshV3>,
    v2: ServeEndpoint<RefreshV2>,
}

#[token_core::async_trait]
impl Handler for Versions {
    async fn handle(
        &self,
        request: http::Request<Vec<u8>>,
        cx: &SandboxContext,
    ) -> http::Response<Vec<u8>> {
        if is_v2(&request) {
            return self.v2.handle(request, cx).await;
        }
        self.v3.handle(request, cx).await
    }
}

/// Whether `request` is v2's: its JSON body names `grant_type` (v3 sends the `grantType`
/// header instead).
fn is_v2(request: &http::Request<Vec<u8>>) -> bool {
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(request.body())
        .is_ok_and(|body| body.contains_key("grant_type"))
}
