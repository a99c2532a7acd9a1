//! Maya on the token-core sandbox: Maya Connect's token endpoint (client credentials and the
//! refresh-token grant) and the Mini App `POST /tokens`, served from the crate's own
//! definitions over the sandbox's issuer; plus the Session URL POST Maya would send.
//!
//! ```
//! use token_core::secret::ClientSecret;
//! use token_core::sandbox::Sandbox;
//! use token_provider_maya::sandbox::MayaSandbox;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let maya = MayaSandbox::new("partner-1", ClientSecret::new("s3cret"));
//! let sandbox = maya.routes(Sandbox::builder()).start().await?;
//! let config = maya.config(&sandbox); // points at the sandbox
//! assert_eq!(config.api_url, sandbox.base_url());
//! # Ok(()) }
//! ```
#![cfg(feature = "sandbox")]

use std::sync::Arc;

use http::Method;
use time::OffsetDateTime;
use token_core::codec::RefusalReason;
use token_core::codec::{Endpoint, TokenResponse, encode_error};
use token_core::issuer::IssuerError;
use token_core::sandbox::endpoint::{Refusal, ServeEndpoint};
use token_core::sandbox::{Handler, RunningSandbox, SandboxBuilder, SandboxContext};
use token_core::{secret::ClientSecret, token_set::TokenSet};

use crate::config::MayaConfig;
use token_core::oauth::{
    ClientCredentialsGrant, OAuthCode, OAuthError, RefreshTokenGrant, TOKEN_PATH,
};

use crate::endpoints::{MayaTokens, MiniAppRefresh};

/// The prefix of the subject the sandbox issues app tokens to; `/tokens` accepts only those.
const APP_SUBJECT: &str = "app:";

/// Maya's endpoints for one partner client.
#[derive(Clone, Debug)]
pub struct MayaSandbox {
    client_id: String,
    client_secret: ClientSecret,
}

impl MayaSandbox {
    /// A sandbox Maya that knows the client `client_id` with `client_secret`.
    pub fn new(client_id: impl Into<String>, client_secret: ClientSecret) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
        }
    }

    /// Registers `POST /token` (Maya Connect) and `POST /tokens` (Mini App) on `builder`, in
    /// place of the sandbox's built-in RFC 6749 route.
    pub fn routes(&self, builder: SandboxBuilder) -> SandboxBuilder {
        builder
            .oauth_routes(false)
            .route(Method::POST, TOKEN_PATH, self.connect_handler())
            .route(Method::POST, MiniAppRefresh::PATH, mini_app_handler())
    }

    /// A config for this client pointing both hosts at `sandbox`.
    pub fn config(&self, sandbox: &RunningSandbox) -> MayaConfig {
        MayaConfig::new(
            self.client_id.clone(),
            self.client_secret.clone(),
            sandbox.base_url(),
        )
        .with_api_url(sandbox.base_url())
    }

    /// Maya Connect's token endpoint: dispatches on `grant_type`, checks the client's Basic
    /// credentials, then serves the `client_credentials` grant (an app token, no refresh
    /// token) or the `refresh_token` grant (a dead refresh token answered `400
    /// invalid_token`, as Maya does).
    fn connect_handler(&self) -> impl Handler {
        let client = Arc::new(self.clone());
        let app = ServeEndpoint::<ClientCredentialsGrant>::new(
            |grant: ClientCredentialsGrant, cx: SandboxContext| async move {
                let subject = format!(
                    "{APP_SUBJECT}{}",
                    grant.client.client_id().unwrap_or_default()
                );
                // Maya Connect answers client credentials with an access token alone (RFC
                // 6749 section 4.4.3): the pair is forgotten once it has expired.
                Ok(cx
                    .issuer()
                    .issue_access(subject, serde_json::json!({}))
                    .await?)
            },
        );
        let refresh =
            ServeEndpoint::<RefreshTokenGrant>::refresh(|grant| grant.refresh_token.clone());
        let (app, refresh) = (Arc::new(app), Arc::new(refresh));
        move |request: http::Request<Vec<u8>>, cx: SandboxContext| {
            let (client, app, refresh) = (client.clone(), app.clone(), refresh.clone());
            async move {
                #[derive(serde::Deserialize)]
                struct GrantType {
                    grant_type: Option<String>,
                }
                let grant_type = serde_urlencoded::from_bytes::<GrantType>(request.body())
                    .ok()
                    .and_then(|g| g.grant_type);
                let credentials = match grant_type.as_deref() {
                    Some("client_credentials") => ClientCredentialsGrant::decode_request(&request)
                        .map(|g| (g.client.basic_user, g.client.basic_password)),
                    Some("refresh_token") => RefreshTokenGrant::decode_request(&request)
                        .map(|g| (g.client.basic_user, g.client.basic_password)),
                    None | Some("") => {
                        return Refusal::new(RefusalReason::BadRequest, "Missing grant type.")
                            .answer::<OAuthError>();
                    }
                    Some(other) => {
                        return encode_error(&OAuthError::new(
                            OAuthCode::UnsupportedGrantType,
                            format!("Unsupported grant type: {other}"),
                        ));
                    }
                };
                match credentials {
                    Ok((Some(id), Some(secret)))
                        if id == client.client_id && secret == client.client_secret => {}
                    Ok(_) => {
                        return Refusal::new(
                            RefusalReason::UnknownClient,
                            "Bad client credentials.",
                        )
                        .answer::<OAuthError>();
                    }
                    Err(error) => return Refusal::from(error).answer::<OAuthError>(),
                }
                match grant_type.as_deref() {
                    Some("client_credentials") => app.handle(request, &cx).await,
                    _ => as_maya_connect_refusal(refresh.handle(request, &cx).await),
                }
            }
        }
    }
}

/// Maya Connect's answer to a refresh-token grant: a dead refresh token (unknown, used,
/// revoked or expired), which RFC 6749 answers `invalid_grant`, is `400 invalid_token`
/// "Invalid refresh token." there (Maya's `invalid_grant` is a locked account). Maya quotes
/// the token in its message; the sandbox does not.
fn as_maya_connect_refusal(answer: http::Response<Vec<u8>>) -> http::Response<Vec<u8>> {
    let dead_refresh_token = answer.status() == http::StatusCode::BAD_REQUEST
        && serde_json::from_slice::<serde_json::Value>(answer.body())
            .is_ok_and(|body| body["error"] == "invalid_grant");
    if dead_refresh_token {
        encode_error(&OAuthError::new(
            OAuthCode::InvalidToken,
            "Invalid refresh token.",
        ))
    } else {
        answer
    }
}

/// Mini App `POST /tokens`: the reference must be a UUIDv4, as Maya's reference says, and
/// the bearer a live app token.
fn mini_app_handler() -> impl Handler {
    ServeEndpoint::<MiniAppRefresh>::new(|refresh: MiniAppRefresh, cx: SandboxContext| async move {
        let reference = uuid::Uuid::parse_str(&refresh.request_reference_no);
        if !reference.is_ok_and(|r| r.get_version() == Some(uuid::Version::Random)) {
            return Err(Refusal::new(
                RefusalReason::BadRequest,
                "Request-Reference-No must be a UUIDv4",
            ));
        }
        let app = cx
            .issuer()
            .authenticate(refresh.app_token.expose_secret())
            .await?;
        if !app.subject.starts_with(APP_SUBJECT) {
            // A live token, but a customer's: only the partner app's may refresh.
            return Err(Refusal::new(
                RefusalReason::InvalidAccessToken,
                "Invalid or expired app token.",
            ));
        }
        Ok(cx
            .issuer()
            .refresh(refresh.refresh_token.expose_secret())
            .await?)
    })
}

/// The POST Maya sends to a partner's Session URL `uri` with a customer's `tokens`: a fresh
/// `Request-Reference-No` and `{"accessToken", "refreshToken", "expiresAt"}`.
pub fn session_url_post(
    uri: &str,
    tokens: &TokenSet,
    now: OffsetDateTime,
) -> http::Request<Vec<u8>> {
    let mut request = http::Request::new(MayaTokens::from_token_set(tokens, now).encode_body());
    *request.method_mut() = Method::POST;
    if let Ok(uri) = uri.parse() {
        *request.uri_mut() = uri;
    }
    let headers = request.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(reference) = http::HeaderValue::try_from(uuid::Uuid::new_v4().to_string()) {
        headers.insert("Request-Reference-No", reference);
    }
    request
}

/// Issues a first pair for the customer `subject` on `sandbox` and returns the Session URL
/// POST carrying it (as Maya would send it after the customer logged in).
pub async fn new_customer(
    sandbox: &RunningSandbox,
    subject: &str,
    session_url: &str,
) -> Result<http::Request<Vec<u8>>, IssuerError> {
    let issued = sandbox.issue(subject).await?;
    let tokens = TokenSet::from_stored(issued)
        .map_err(|e| IssuerError::Store(token_core::error::StoreError::Corrupt(e.to_string())))?;
    Ok(session_url_post(
        session_url,
        &tokens,
        sandbox.clock().now(),
    ))
}
