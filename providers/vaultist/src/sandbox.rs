//! Vault.ist's refresh endpoint on the token-core sandbox, both versions on one path, served
//! from the same definitions the client uses.
//!
//! `POST /v1/auth/token` answers a v3 request (the `grantType` header) with the v3 shapes and
//! a v2 request (`grant_type` in the body) with the v2 shapes: a dead refresh token is v3
//! 400 `invalid_grant` or v2 401 `UNAUTHORIZED` ("The Token has expired on ..." when it
//! expired). Sessions are issued with [`RunningSandbox::issue_with`] (Vault.ist's own login
//! is out of scope); a `user_id` in their extras comes back in every answer. Started with a
//! merchant id, the sandbox refuses requests without that `X-Merchant-ID` with the generic
//! `{"error": "COMMON", ...}` (v3) or 400 `BAD_REQUEST` (v2).
//!
//! ```
//! use std::sync::Arc;
//! use token_core::{CallContext, Provider, SystemClock, TokenSet};
//! use token_provider_vaultist::{Vaultist, VaultistConfig, sandbox};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = sandbox::start(Arc::new(SystemClock), sandbox::issuer_config(), None).await?;
//! let first = TokenSet::from_stored(sandbox.issue_with("partner", serde_json::json!({"user_id": "usr:1"})).await?)?;
//! let provider = Vaultist::new(sandbox.base_url(), VaultistConfig::new(42));
//! let cx = CallContext::new(sandbox.client(), sandbox.clock().clone(), "partner");
//! let next = provider.refresh(&cx, &first).await?;
//! assert_ne!(next.refresh_token, first.refresh_token);
//! assert_eq!(next.extras.user_id.as_deref(), Some("usr:1"));
//! # Ok(()) }
//! ```

use std::sync::Arc;
use std::time::Duration;

use token_core::__private::http::{self, Method};
use token_core::__private::uuid::Uuid;
use token_core::Clock;
use token_core::codec::Endpoint;
use token_core::issuer::{IssuerConfig, IssuerError};
use token_core::sandbox::endpoint::{Refusal, ServeEndpoint};
use token_core::sandbox::{
    Handler, RunningSandbox, Sandbox, SandboxBuilder, SandboxContext, SandboxError,
};

use crate::endpoints::{
    REFRESH_PATH, RefreshV2, RefreshV3, VaultistCode, VaultistError, VaultistV2Error,
    VaultistV2Status,
};

/// The issuer as the v3 example answers: access tokens that last 3600 s (the v2 text says
/// 24 h: set that with [`IssuerConfig::with_access_ttl`]).
pub fn issuer_config() -> IssuerConfig {
    IssuerConfig::default().with_access_ttl(Duration::from_secs(3600))
}

/// Starts a sandbox serving [`routes`] (and token-core's protected API under `/api/`) on
/// 127.0.0.1.
pub async fn start(
    clock: Arc<dyn Clock>,
    issuer: IssuerConfig,
    merchant_id: Option<&str>,
) -> Result<RunningSandbox, SandboxError> {
    let builder = Sandbox::builder()
        .clock(clock)
        .issuer_config(issuer)
        .oauth_routes(false);
    routes(builder, merchant_id).start().await
}

/// Registers `POST /v1/auth/token` (v3 and v2) on `builder`; with `merchant_id`, requests
/// must carry that `X-Merchant-ID`.
pub fn routes(builder: SandboxBuilder, merchant_id: Option<&str>) -> SandboxBuilder {
    let merchant = merchant_id.map(str::to_owned);
    let v3_merchant = merchant.clone();
    let v3 = ServeEndpoint::<RefreshV3>::new(
        move |refresh: RefreshV3, cx: SandboxContext| {
            rotate(
                v3_merchant.clone(),
                refresh.merchant_id,
                refresh.refresh_token,
                cx,
            )
        },
        refuse_v3,
    );
    let v2 = ServeEndpoint::<RefreshV2>::new(
        move |refresh: RefreshV2, cx: SandboxContext| {
            rotate(
                merchant.clone(),
                refresh.merchant_id,
                refresh.refresh_token,
                cx,
            )
        },
        refuse_v2,
    );
    builder.route(Method::POST, REFRESH_PATH, Versions { v3, v2 })
}

/// The handler's refusal of a request whose `X-Merchant-ID` is not the configured one.
const UNKNOWN_MERCHANT: &str = "unknown_merchant";

async fn rotate(
    expected: Option<String>,
    sent: Option<String>,
    refresh_token: token_core::RefreshToken,
    cx: SandboxContext,
) -> Result<token_core::issuer::Issued, Refusal> {
    if expected.is_some() && expected != sent {
        return Err(Refusal::custom(UNKNOWN_MERCHANT, "Merchant not found"));
    }
    cx.issuer()
        .refresh(refresh_token.expose_secret())
        .await
        .map_err(Refusal::Issuer)
}

fn refuse_v3(refusal: Refusal) -> VaultistError {
    match refusal {
        Refusal::BadRequest(error) => VaultistError::new(VaultistCode::InvalidRequest, error.0),
        Refusal::Issuer(error) if error.is_refresh_rejection() => VaultistError::new(
            VaultistCode::InvalidGrant,
            "Refresh token has expired or is invalid.",
        ),
        Refusal::Custom { code, message } if code == UNKNOWN_MERCHANT => VaultistError {
            error: VaultistCode::Common,
            error_description: None,
            message: Some(message),
            error_id: Some(Uuid::new_v4().to_string()),
            system_id: Some("vault-sandbox".into()),
        },
        _ => VaultistError::new(
            VaultistCode::Other("server_error".into()),
            "the issuer failed",
        ),
    }
}

fn refuse_v2(refusal: Refusal) -> VaultistV2Error {
    match refusal {
        Refusal::BadRequest(error) => VaultistV2Error::new(VaultistV2Status::BadRequest, error.0),
        Refusal::Issuer(IssuerError::ExpiredRefreshToken) => {
            VaultistV2Error::new(VaultistV2Status::Unauthorized, "The Token has expired")
        }
        Refusal::Issuer(error) if error.is_refresh_rejection() => {
            VaultistV2Error::new(VaultistV2Status::Unauthorized, "The Token is invalid")
        }
        Refusal::Custom { code, message } if code == UNKNOWN_MERCHANT => {
            VaultistV2Error::new(VaultistV2Status::BadRequest, message)
        }
        _ => VaultistV2Error::new(
            VaultistV2Status::Other("INTERNAL_SERVER_ERROR".into()),
            "the issuer failed",
        ),
    }
}

/// `POST /v1/auth/token`: the version whose definition reads the request serves it; a
/// request neither reads is answered in the v3 shape.
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
        if RefreshV2::decode_request(&request).is_ok() {
            return self.v2.handle(request, cx).await;
        }
        self.v3.handle(request, cx).await
    }
}
