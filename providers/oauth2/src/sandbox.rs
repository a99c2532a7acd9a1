//! The token endpoint (all three grants) and an authorization endpoint on the token-core
//! sandbox, served from the same definitions the client uses.
//!
//! - `POST /token` answers `refresh_token` (the issuer rotates), `client_credentials` (a pair
//!   whose subject is the client id; any secret is accepted) and `authorization_code` (a code
//!   from `GET /authorize`, single use, checked against its redirect URI and its S256 PKCE
//!   challenge), with [`OAuthError`](token_core::oauth::OAuthError) answers: `invalid_grant` for a dead refresh token or a
//!   bad code or verifier.
//! - `GET /authorize` approves at once, for the user named by `login_hint` (default
//!   `sandbox-user`), and redirects (302) to `redirect_uri` with `code` and `state`; without
//!   a `redirect_uri` it answers `{"code", "state"}`.
//!
//! [`routes_at`] serves the same at other paths (GitHub's `/login/oauth/access_token`, say);
//! [`config`] is a client's config for a running sandbox.
//!
//! ```
//! use std::sync::Arc;
//! use token_core::{CallContext, SystemClock, issuer::IssuerConfig};
//! use token_core::oauth::TOKEN_PATH;
//! use token_provider_oauth2::OAuth2;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let sandbox = token_provider_oauth2::sandbox::start(Arc::new(SystemClock), IssuerConfig::default()).await?;
//! let config = token_provider_oauth2::sandbox::config(&sandbox, "app-1").with_client_credentials(true);
//! let provider = OAuth2::new(config);
//! let cx = CallContext::new(sandbox.client(), sandbox.clock().clone(), "app");
//! use token_core::Provider as _;
//! let set = provider.issue(&cx).await?;
//! assert_eq!(sandbox.issuer().authenticate(set.access_token.expose_secret()).await?.subject, "app-1");
//! assert_eq!(sandbox.calls(TOKEN_PATH), 1);
//! # Ok(()) }
//! ```

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use http::{Method, StatusCode};
use serde_json::json;
use token_core::Clock;
use token_core::codec::Endpoint;
use token_core::issuer::IssuerConfig;
use token_core::pkce::{S256, challenge_s256};
use token_core::sandbox::endpoint::{Refusal, RefusalReason, ServeEndpoint};
use token_core::sandbox::{
    Handler, RunningSandbox, Sandbox, SandboxBuilder, SandboxContext, SandboxError, json_response,
};
use url::{Url, form_urlencoded};
use uuid::Uuid;

use crate::config::OAuth2Config;
use token_core::oauth::{
    AuthorizationCodeGrant, ClientCredentialsGrant, OAuthError, RefreshTokenGrant, TOKEN_PATH,
};

/// The authorization endpoint's path.
pub const AUTHORIZE_PATH: &str = "/authorize";

/// Starts a sandbox serving [`routes`] (and token-core's protected API under `/api/`) on
/// 127.0.0.1, with `clock` and the issuer configured by `issuer`.
pub async fn start(
    clock: Arc<dyn Clock>,
    issuer: IssuerConfig,
) -> Result<RunningSandbox, SandboxError> {
    routes(
        Sandbox::builder()
            .clock(clock)
            .issuer_config(issuer)
            .oauth_routes(false),
    )
    .start()
    .await
}

/// The config of a public client `client_id` of `sandbox`: its token URL ([`TOKEN_PATH`]) and
/// authorize URL ([`AUTHORIZE_PATH`]).
pub fn config(sandbox: &RunningSandbox, client_id: impl Into<String>) -> OAuth2Config {
    OAuth2Config::new(client_id, sandbox.url(TOKEN_PATH))
        .with_authorize_url(sandbox.url(AUTHORIZE_PATH))
}

/// Registers `POST /token` and `GET /authorize` on `builder`.
pub fn routes(builder: SandboxBuilder) -> SandboxBuilder {
    routes_at(builder, TOKEN_PATH, AUTHORIZE_PATH)
}

/// Registers the token endpoint at `token_path` and the authorization endpoint at
/// `authorize_path` on `builder` (a server whose paths are not `/token` and `/authorize`).
pub fn routes_at(
    builder: SandboxBuilder,
    token_path: &str,
    authorize_path: &str,
) -> SandboxBuilder {
    let codes = Codes::default();
    let refresh = ServeEndpoint::<RefreshTokenGrant>::refresh(|grant| grant.refresh_token.clone());
    let client_credentials = ServeEndpoint::<ClientCredentialsGrant>::new(
        |grant: ClientCredentialsGrant, cx: SandboxContext| async move {
            let client_id = grant.basic_user.or(grant.client_id).ok_or_else(|| {
                Refusal::new(RefusalReason::BadRequest, "missing client authentication")
            })?;
            Ok(cx.issuer().issue(client_id, json!({})).await?)
        },
    );
    let redeem = codes.clone();
    let authorization_code = ServeEndpoint::<AuthorizationCodeGrant>::new(
        move |grant: AuthorizationCodeGrant, cx: SandboxContext| {
            let subject = redeem.redeem(&grant);
            async move {
                let subject = subject.ok_or_else(|| {
                    Refusal::new(
                        RefusalReason::InvalidAuthCode,
                        "the authorization code is invalid or used, or the code verifier or redirect URI does not match",
                    )
                })?;
                Ok(cx.issuer().issue(subject, json!({})).await?)
            }
        },
    );
    let token = TokenRoute {
        refresh,
        client_credentials,
        authorization_code,
    };
    let authorize = move |request: http::Request<Vec<u8>>, _cx: SandboxContext| {
        let answer = codes.authorize(&request);
        async move { answer }
    };
    builder
        .route(Method::POST, token_path, token)
        .route(Method::GET, authorize_path, authorize)
}

/// `POST /token`: the grant whose definition reads the request (its `grant_type` constant
/// decides) serves it.
struct TokenRoute {
    refresh: ServeEndpoint<RefreshTokenGrant>,
    client_credentials: ServeEndpoint<ClientCredentialsGrant>,
    authorization_code: ServeEndpoint<AuthorizationCodeGrant>,
}

#[token_core::async_trait]
impl Handler for TokenRoute {
    async fn handle(
        &self,
        request: http::Request<Vec<u8>>,
        cx: &SandboxContext,
    ) -> http::Response<Vec<u8>> {
        if AuthorizationCodeGrant::decode_request(&request).is_ok() {
            return self.authorization_code.handle(request, cx).await;
        }
        if ClientCredentialsGrant::decode_request(&request).is_ok() {
            return self.client_credentials.handle(request, cx).await;
        }
        if RefreshTokenGrant::decode_request(&request).is_ok() {
            return self.refresh.handle(request, cx).await;
        }
        Refusal::new(
            RefusalReason::BadRequest,
            "expected grant_type refresh_token, client_credentials or authorization_code with its parameters",
        )
        .answer::<OAuthError>()
    }
}

/// Authorization codes handed out by `GET /authorize`, until redeemed once.
#[derive(Clone, Default)]
struct Codes(Arc<Mutex<HashMap<String, Pending>>>);

struct Pending {
    subject: String,
    redirect_uri: Option<String>,
    challenge: Option<String>,
}

impl Codes {
    fn authorize(&self, request: &http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        let query: HashMap<String, String> =
            form_urlencoded::parse(request.uri().query().unwrap_or_default().as_bytes())
                .into_owned()
                .collect();
        let bad = |description: &str| {
            Refusal::new(RefusalReason::BadRequest, description).answer::<OAuthError>()
        };
        if query.get("response_type").map(String::as_str) != Some("code") {
            return bad("response_type must be code");
        }
        if query.get("client_id").is_none_or(String::is_empty) {
            return bad("missing client_id");
        }
        let challenge = query.get("code_challenge").cloned();
        if challenge.is_some()
            && query.get("code_challenge_method").map(String::as_str) != Some(S256)
        {
            return bad("only the S256 code_challenge_method is supported");
        }
        let code = Uuid::new_v4().simple().to_string();
        let redirect_uri = query.get("redirect_uri").cloned();
        let state = query.get("state").cloned();
        self.0.lock().unwrap_or_else(|p| p.into_inner()).insert(
            code.clone(),
            Pending {
                subject: query
                    .get("login_hint")
                    .cloned()
                    .unwrap_or_else(|| "sandbox-user".to_owned()),
                redirect_uri: redirect_uri.clone(),
                challenge,
            },
        );
        let Some(Ok(mut location)) = redirect_uri.as_deref().map(Url::parse) else {
            return json_response(StatusCode::OK, &json!({"code": code, "state": state}));
        };
        location.query_pairs_mut().append_pair("code", &code);
        if let Some(state) = &state {
            location.query_pairs_mut().append_pair("state", state);
        }
        let mut response = json_response(StatusCode::FOUND, &json!({}));
        if let Ok(value) = http::HeaderValue::try_from(location.as_str()) {
            response.headers_mut().insert(http::header::LOCATION, value);
        }
        response
    }

    /// The subject of `grant`'s code, if the code is known, unused, and the redirect URI
    /// and PKCE verifier match what the authorization request said.
    fn redeem(&self, grant: &AuthorizationCodeGrant) -> Option<String> {
        let pending = self
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .remove(grant.code.expose_secret())?;
        if pending.redirect_uri.is_some() && pending.redirect_uri != grant.redirect_uri {
            return None;
        }
        match (&pending.challenge, &grant.code_verifier) {
            (Some(challenge), Some(verifier)) if *challenge == challenge_s256(verifier) => {}
            (None, _) => {}
            _ => return None,
        }
        Some(pending.subject)
    }
}
