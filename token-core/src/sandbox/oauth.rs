//! The sandbox's built-in routes until providers bring their own: the RFC 6749 token
//! endpoint (`POST /token`, all three grants) served from [`crate::oauth`]'s definitions over
//! the issuer, the authorization endpoint (`GET /authorize`) handing out the issuer's
//! single-use codes, and an RFC 6750 protected API (`/api/*`).
//!
//! [`routes_at`] serves the token and authorization endpoints at other paths (GitHub's
//! `/login/oauth/access_token`, say).
//!
//! ```
//! use token_core::codec::{decode_response, encode_error};
//! use token_core::oauth::{OAuthCode, OAuthError, RefreshTokenGrant};
//! use token_core::{error::ErrorKind, secret::RefreshToken};
//!
//! let answer = encode_error(&OAuthError::new(OAuthCode::InvalidGrant, "expired"));
//! let error = decode_response::<RefreshTokenGrant>(&answer, time::OffsetDateTime::now_utc(), &[]);
//! assert_eq!(error.unwrap_err().kind(), ErrorKind::ReauthRequired);
//! ```

use async_trait::async_trait;
use http::{HeaderValue, StatusCode};
use serde_json::json;

use super::endpoint::{Refusal, ServeEndpoint};
use super::{Handler, SandboxBuilder, SandboxContext, json_response};
use crate::codec::RefusalReason;
use crate::issuer::{CodeExchange, CodeGrant, IssuerError};
use crate::oauth::{
    AuthorizationCodeGrant, AuthorizeQuery, ClientAuthentication, ClientCredentialsGrant,
    OAuthCode, OAuthError, RefreshTokenGrant,
};

/// The prefix of the protected API.
pub const API_PREFIX: &str = "/api/";

/// The authorization endpoint's path.
pub const AUTHORIZE_PATH: &str = "/authorize";

/// Registers the token endpoint ([`TokenHandler`]) at `token_path` and the authorization
/// endpoint ([`AuthorizeHandler`]) at `authorize_path` on `builder`.
pub fn routes_at(
    builder: SandboxBuilder,
    token_path: &str,
    authorize_path: &str,
) -> SandboxBuilder {
    builder
        .route(http::Method::POST, token_path, TokenHandler::default())
        .route(http::Method::GET, authorize_path, AuthorizeHandler)
}

/// `POST /token`: the grant named by `grant_type` is read with its own definition and served
/// over the issuer. `client_credentials` issues an access token to the client, whose subject
/// is the client id, accepting any client secret (this is a sandbox), and no refresh token
/// (RFC 6749 section 4.4.3); `authorization_code` redeems a
/// code of [`AuthorizeHandler`] ([`Issuer::redeem_code`](crate::issuer::Issuer::redeem_code):
/// once, by its client, with its redirect URI and PKCE verifier); `refresh_token` rotates
/// for the client the request names, in HTTP Basic or the body (a request naming one client
/// in each is refused) ([`Issuer::refresh_for`](crate::issuer::Issuer::refresh_for); without one,
/// [`Issuer::refresh`](crate::issuer::Issuer::refresh)): a pair either of the other grants
/// issued is refreshed only by its own client, and refused to any other as `invalid_grant`,
/// like an unknown refresh token. Answers carry `Cache-Control: no-store`.
pub struct TokenHandler {
    refresh: ServeEndpoint<RefreshTokenGrant>,
    client_credentials: ServeEndpoint<ClientCredentialsGrant>,
    authorization_code: ServeEndpoint<AuthorizationCodeGrant>,
}

impl Default for TokenHandler {
    fn default() -> Self {
        Self {
            refresh: ServeEndpoint::new(
                |grant: RefreshTokenGrant, cx: SandboxContext| async move {
                    let token = grant.refresh_token.expose_secret();
                    let issuer = cx.issuer();
                    Ok(match client_of(&grant.client)? {
                        Some(client) => issuer.refresh_for(token, client).await?,
                        None => issuer.refresh(token).await?,
                    })
                },
            ),
            client_credentials: ServeEndpoint::new(
                |grant: ClientCredentialsGrant, cx: SandboxContext| async move {
                    let client = client_of(&grant.client)?
                        .map(str::to_owned)
                        .ok_or_else(|| {
                            Refusal::new(
                                RefusalReason::UnknownClient,
                                "missing client authentication",
                            )
                        })?;
                    // RFC 6749 section 4.4.3: "A refresh token SHOULD NOT be included"; the
                    // client asks again with its credentials. The issuer's refresh token is
                    // never sent, so nothing can refresh the pair, and it is forgotten once
                    // its access token has expired.
                    Ok(cx
                        .issuer()
                        .issue_access_for(client.clone(), client, json!({}))
                        .await?)
                },
            ),
            authorization_code: ServeEndpoint::new(
                |grant: AuthorizationCodeGrant, cx: SandboxContext| async move {
                    let client = client_of(&grant.client)?.ok_or_else(|| {
                        Refusal::new(
                            RefusalReason::UnknownClient,
                            "missing client authentication",
                        )
                    })?;
                    let exchange = CodeExchange::new(client)
                        .with_redirect_uri(grant.redirect_uri.as_deref())
                        .with_verifier(grant.code_verifier.as_deref());
                    Ok(cx
                        .issuer()
                        .redeem_code(grant.code.expose_secret(), exchange)
                        .await?)
                },
            ),
        }
    }
}

impl std::fmt::Debug for TokenHandler {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenHandler").finish_non_exhaustive()
    }
}

#[async_trait]
impl Handler for TokenHandler {
    async fn handle(
        &self,
        request: http::Request<Vec<u8>>,
        cx: &SandboxContext,
    ) -> http::Response<Vec<u8>> {
        let mut response = match grant_type(&request).as_ref().map(Option::as_deref) {
            Err(refusal) => refusal.answer::<OAuthError>(),
            Ok(Some("refresh_token")) => self.refresh.handle(request, cx).await,
            Ok(Some("client_credentials")) => self.client_credentials.handle(request, cx).await,
            Ok(Some("authorization_code")) => self.authorization_code.handle(request, cx).await,
            Ok(None | Some("")) => {
                Refusal::new(RefusalReason::BadRequest, "missing grant_type").answer::<OAuthError>()
            }
            Ok(Some(_)) => crate::codec::encode_error(&OAuthError::new(
                OAuthCode::UnsupportedGrantType,
                "supported: refresh_token, client_credentials, authorization_code",
            )),
        };
        no_store(&mut response);
        response
    }
}

/// The client a token request names, in HTTP Basic or the body. Naming two (RFC 6749
/// section 2.3: one authentication method per request) is refused as `invalid_request`,
/// not settled by taking one of them; the same client named both ways is that client.
fn client_of(client: &ClientAuthentication) -> Result<Option<&str>, Refusal> {
    match (client.basic_user.as_deref(), client.client_id.as_deref()) {
        (Some(basic), Some(body)) if basic != body => Err(Refusal::new(
            RefusalReason::BadRequest,
            "the request names one client in HTTP Basic and another in the body",
        )),
        (basic, body) => Ok(basic.or(body)),
    }
}

/// The `grant_type` of a token request's form body. RFC 6749 section 3.1: no parameter may be
/// sent more than once, so a second `grant_type`, or a body parameter the query names too
/// (whoever read the query, a proxy or a log, saw another request than the one served), is
/// refused as `invalid_request` before any grant runs.
fn grant_type(request: &http::Request<Vec<u8>>) -> Result<Option<String>, Refusal> {
    let body: Vec<(String, String)> =
        serde_urlencoded::from_bytes(request.body()).unwrap_or_default();
    let query = request.uri().query().unwrap_or_default();
    // Each query name looked up once: both lists are the sender's, as long as the limits
    // allow, and comparing every pair would cost seconds of one request.
    let named: std::collections::HashSet<&str> = body.iter().map(|(own, _)| own.as_str()).collect();
    let in_query = url::form_urlencoded::parse(query.as_bytes())
        .find(|(name, _)| named.contains(name.as_ref()));
    if let Some((name, _)) = in_query {
        // Named when it is one of RFC 6749's: any other name is the sender's text.
        let name = TOKEN_PARAMETERS
            .iter()
            .find(|known| **known == name)
            .map_or_else(
                || "a body parameter".to_owned(),
                |known| format!("parameter `{known}`"),
            );
        return Err(Refusal::new(
            RefusalReason::BadRequest,
            format!("{name} is sent in both the query and the body"),
        ));
    }
    let mut grant_types = body.into_iter().filter(|(name, _)| name == "grant_type");
    match (grant_types.next(), grant_types.next()) {
        (_, Some(_)) => Err(Refusal::new(
            RefusalReason::BadRequest,
            "parameter `grant_type` is repeated",
        )),
        (grant_type, None) => Ok(grant_type.map(|(_, value)| value)),
    }
}

/// The token request parameters of RFC 6749 and RFC 7636.
const TOKEN_PARAMETERS: [&str; 8] = [
    "grant_type",
    "refresh_token",
    "client_id",
    "client_secret",
    "scope",
    "code",
    "redirect_uri",
    "code_verifier",
];

/// `GET /authorize`: approves at once, for the user named by `login_hint` (default
/// `sandbox-user`, also for an empty one), and redirects (302) to `redirect_uri` with `code`
/// and `state`; without a `redirect_uri` it answers `{"code", "state"}`. The code is the issuer's
/// ([`Issuer::issue_code`](crate::issuer::Issuer::issue_code)), bound to the client id,
/// redirect URI, S256 challenge and scope of the request.
#[derive(Clone, Copy, Debug, Default)]
pub struct AuthorizeHandler;

#[async_trait]
impl Handler for AuthorizeHandler {
    async fn handle(
        &self,
        request: http::Request<Vec<u8>>,
        cx: &SandboxContext,
    ) -> http::Response<Vec<u8>> {
        let raw = request.uri().query().unwrap_or_default();
        let query = match AuthorizeQuery::from_query(raw) {
            Ok(query) => query,
            Err(error) => return Refusal::from(error).answer::<OAuthError>(),
        };
        let mut hints = url::form_urlencoded::parse(raw.as_bytes())
            .filter(|(name, _)| name == "login_hint")
            .map(|(_, hint)| hint);
        let subject = match (hints.next(), hints.next()) {
            (_, Some(_)) => {
                return Refusal::new(
                    RefusalReason::BadRequest,
                    "parameter `login_hint` is repeated",
                )
                .answer::<OAuthError>();
            }
            // RFC 6749 section 3.1: a parameter without a value is omitted.
            (Some(hint), None) if !hint.is_empty() => hint.into_owned(),
            (_, None) => "sandbox-user".to_owned(),
        };
        let grant = CodeGrant::new(query.client_id, subject)
            .with_redirect_uri(query.redirect_uri.clone())
            .with_challenge(query.code_challenge)
            .with_scope(query.scope);
        let code = match cx.issuer().issue_code(grant).await {
            Ok(code) => code,
            Err(error) => return Refusal::from(error).answer::<OAuthError>(),
        };
        let state = query.state;
        let Some(Ok(mut location)) = query.redirect_uri.as_deref().map(url::Url::parse) else {
            return json_response(
                StatusCode::OK,
                &json!({"code": code.expose_secret(), "state": state}),
            );
        };
        location
            .query_pairs_mut()
            .append_pair("code", code.expose_secret());
        if let Some(state) = &state {
            location.query_pairs_mut().append_pair("state", state);
        }
        let mut response = json_response(StatusCode::FOUND, &json!({}));
        if let Ok(value) = HeaderValue::try_from(location.as_str()) {
            response.headers_mut().insert(http::header::LOCATION, value);
        }
        response
    }
}

/// Any method under `/api/`: 200 `{"ok": true, "subject": ...}` for a valid bearer access
/// token, 401 with `WWW-Authenticate: Bearer` otherwise (`error="invalid_token"` when a token
/// was presented, RFC 6750 section 3.1).
#[derive(Clone, Copy, Debug, Default)]
pub struct ApiHandler;

#[async_trait]
impl Handler for ApiHandler {
    async fn handle(
        &self,
        request: http::Request<Vec<u8>>,
        cx: &SandboxContext,
    ) -> http::Response<Vec<u8>> {
        let Some(token) = bearer_token(&request) else {
            return unauthorized(None);
        };
        match cx.issuer().authenticate(token).await {
            Ok(grant) => json_response(
                StatusCode::OK,
                &serde_json::json!({
                    "ok": true,
                    "subject": grant.subject,
                    "method": request.method().as_str(),
                    "path": request.uri().path(),
                }),
            ),
            Err(error) if error.is_access_rejection() => unauthorized(Some(&error)),
            Err(_) => json_response(
                StatusCode::INTERNAL_SERVER_ERROR,
                &serde_json::json!({"ok": false, "error": "server_error"}),
            ),
        }
    }
}

/// The bearer token of `Authorization: Bearer <token>`, if any: none when `Authorization`
/// is sent more than once.
pub fn bearer_token<B>(request: &http::Request<B>) -> Option<&str> {
    let mut values = request
        .headers()
        .get_all(http::header::AUTHORIZATION)
        .iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn unauthorized(error: Option<&IssuerError>) -> http::Response<Vec<u8>> {
    let (challenge, body) = match error {
        Some(error) => (
            format!(
                r#"Bearer realm="sandbox", error="invalid_token", error_description="{error}""#
            ),
            serde_json::json!({"ok": false, "error": "invalid_token", "error_description": error.to_string()}),
        ),
        None => (
            r#"Bearer realm="sandbox""#.to_owned(),
            serde_json::json!({"ok": false, "error": "unauthorized"}),
        ),
    };
    let mut response = json_response(StatusCode::UNAUTHORIZED, &body);
    if let Ok(challenge) = HeaderValue::try_from(challenge) {
        response
            .headers_mut()
            .insert(http::header::WWW_AUTHENTICATE, challenge);
    }
    response
}

fn no_store(response: &mut http::Response<Vec<u8>>) {
    response.headers_mut().insert(
        http::header::CACHE_CONTROL,
        HeaderValue::from_static("no-store"),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bearer_tokens_are_read_case_insensitively() {
        let request = |value: &str| {
            http::Request::builder()
                .header(http::header::AUTHORIZATION, value)
                .body(())
                .unwrap()
        };
        assert_eq!(bearer_token(&request("Bearer at_1")), Some("at_1"));
        assert_eq!(bearer_token(&request("bearer  at_1 ")), Some("at_1"));
        assert_eq!(bearer_token(&request("Basic abc")), None);
        assert_eq!(bearer_token(&request("Bearer ")), None);
        assert_eq!(bearer_token(&http::Request::new(())), None);
        let mut twice = request("Bearer at_1");
        twice.headers_mut().append(
            http::header::AUTHORIZATION,
            HeaderValue::from_static("Bearer at_1"),
        );
        assert_eq!(bearer_token(&twice), None);
    }
}
