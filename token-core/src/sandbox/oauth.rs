//! The sandbox's built-in routes until providers bring their own: a plain RFC 6749 token
//! endpoint (`POST /token`) and an RFC 6750 protected API (`/api/*`).
//!
//! The endpoint's codec is written by hand against token-core's codec traits, so tests use
//! the same types on the client side ([`CallContext::call`](crate::CallContext::call),
//! [`decode_response`](crate::codec::decode_response)) that the sandbox uses on the server side.
//!
//! ```
//! use token_core::codec::{Endpoint, decode_response};
//! use token_core::sandbox::oauth::{OAuthErrorAnswer, RefreshGrant};
//! use token_core::{ErrorKind, RefreshToken};
//!
//! let base = url::Url::parse("http://127.0.0.1:8080/").unwrap();
//! let request = RefreshGrant::new(RefreshToken::new("rt_1")).encode_request(&base).unwrap();
//! assert_eq!(request.uri(), "http://127.0.0.1:8080/token");
//! assert_eq!(request.body(), b"grant_type=refresh_token&refresh_token=rt_1");
//!
//! let answer = token_core::codec::encode_error(&OAuthErrorAnswer::invalid_grant("expired"));
//! let error = decode_response::<RefreshGrant>(&answer, time::OffsetDateTime::now_utc(), &[]);
//! assert_eq!(error.unwrap_err().kind(), ErrorKind::ReauthRequired);
//! ```

use std::collections::HashMap;

use async_trait::async_trait;
use base64::Engine as _;
use http::{HeaderValue, Method, StatusCode};
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::{Handler, SandboxContext, json_response};
use crate::codec::{
    Endpoint, ErrorResponse, RefusalReason, RequestError, TokenResponse, encode_error,
};
use crate::error::{EndpointError, ErrorKind};
use crate::expiry::{ExpiresIn, jwt_exp};
use crate::issuer::IssuerError;
use crate::secret::{AccessToken, ClientSecret, RefreshToken};
use crate::token_set::{NoExtras, StoredTokenSet, TokenSet};

/// The path of the token endpoint.
pub const TOKEN_PATH: &str = "/token";

/// The prefix of the protected API.
pub const API_PREFIX: &str = "/api/";

const FORM: &str = "application/x-www-form-urlencoded";

/// `grant_type=refresh_token` (RFC 6749 section 6).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RefreshGrant {
    /// The refresh token.
    pub refresh_token: RefreshToken,
    /// The requested scope, if any.
    pub scope: Option<String>,
}

impl RefreshGrant {
    /// A refresh with `refresh_token` and no scope.
    pub fn new(refresh_token: RefreshToken) -> Self {
        Self {
            refresh_token,
            scope: None,
        }
    }

    /// Sets the requested scope.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }
}

impl Endpoint for RefreshGrant {
    type Response = TokenAnswer;
    type Error = OAuthErrorAnswer;
    const METHOD: Method = Method::POST;
    const PATH: &'static str = TOKEN_PATH;

    fn encode_request(&self, base_url: &url::Url) -> Result<http::Request<Vec<u8>>, EndpointError> {
        let mut fields = vec![
            ("grant_type", "refresh_token"),
            ("refresh_token", self.refresh_token.expose_secret()),
        ];
        if let Some(scope) = &self.scope {
            fields.push(("scope", scope));
        }
        form_request(base_url, Self::PATH, &fields, None)
    }

    fn decode_request(request: &http::Request<Vec<u8>>) -> Result<Self, RequestError> {
        let form = read_form(request)?;
        expect_grant(&form, "refresh_token")?;
        let refresh_token = form
            .get("refresh_token")
            .filter(|t| !t.is_empty())
            .ok_or_else(|| RequestError("missing refresh_token".to_owned()))?;
        Ok(Self {
            refresh_token: RefreshToken::new(refresh_token.as_str()),
            scope: form.get("scope").cloned(),
        })
    }

    fn secrets(&self) -> Vec<&str> {
        vec![self.refresh_token.expose_secret()]
    }
}

/// `grant_type=client_credentials` (RFC 6749 section 4.4): the sandbox issues a pair whose
/// subject is the client id. The client authenticates with HTTP Basic; the server side also
/// accepts `client_id`/`client_secret` in the body.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientCredentialsGrant {
    /// The client id.
    pub client_id: String,
    /// The client secret, if the client has one.
    pub client_secret: Option<ClientSecret>,
    /// The requested scope, if any.
    pub scope: Option<String>,
}

impl ClientCredentialsGrant {
    /// A grant for `client_id` with `client_secret`.
    pub fn new(client_id: impl Into<String>, client_secret: Option<ClientSecret>) -> Self {
        Self {
            client_id: client_id.into(),
            client_secret,
            scope: None,
        }
    }
}

impl Endpoint for ClientCredentialsGrant {
    type Response = TokenAnswer;
    type Error = OAuthErrorAnswer;
    const METHOD: Method = Method::POST;
    const PATH: &'static str = TOKEN_PATH;

    fn encode_request(&self, base_url: &url::Url) -> Result<http::Request<Vec<u8>>, EndpointError> {
        let mut fields = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &self.scope {
            fields.push(("scope", scope));
        }
        // RFC 6749 section 2.3.1: form-encode both parts before Base64.
        let secret = self
            .client_secret
            .as_ref()
            .map_or("", |s| s.expose_secret());
        let credentials = format!("{}:{}", form_encode(&self.client_id), form_encode(secret));
        let basic = format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        );
        let basic = HeaderValue::try_from(basic).map_err(|_| {
            EndpointError::Encode("the client credentials are not a valid header".to_owned())
        })?;
        form_request(base_url, Self::PATH, &fields, Some(basic))
    }

    fn decode_request(request: &http::Request<Vec<u8>>) -> Result<Self, RequestError> {
        let form = read_form(request)?;
        expect_grant(&form, "client_credentials")?;
        let (client_id, client_secret) = match basic_credentials(request)? {
            Some(credentials) => credentials,
            None => (
                form.get("client_id")
                    .filter(|id| !id.is_empty())
                    .cloned()
                    .ok_or_else(|| RequestError("missing client authentication".to_owned()))?,
                form.get("client_secret").cloned(),
            ),
        };
        Ok(Self {
            client_id,
            client_secret: client_secret
                .filter(|s| !s.is_empty())
                .map(ClientSecret::new),
            scope: form.get("scope").cloned(),
        })
    }

    fn secrets(&self) -> Vec<&str> {
        self.client_secret
            .iter()
            .map(|s| s.expose_secret())
            .collect()
    }
}

/// The RFC 6749 section 5.1 success answer.
///
/// `expires_in` is read as a number, a numeric string or null; without it the expiry comes
/// from the access token's JWT `exp` claim, if it is a JWT. `refresh_expires_in` is an
/// extension some servers (Keycloak) send.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenAnswer {
    /// The access token.
    pub access_token: AccessToken,
    /// The token type (`Bearer`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub token_type: Option<String>,
    /// Seconds until the access token expires.
    #[serde(default)]
    pub expires_in: ExpiresIn,
    /// The new refresh token, if one was issued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<RefreshToken>,
    /// Seconds until the refresh token expires.
    #[serde(default, skip_serializing_if = "is_unset")]
    pub refresh_expires_in: ExpiresIn,
    /// The granted scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

fn is_unset(value: &ExpiresIn) -> bool {
    value.0.is_none()
}

impl TokenAnswer {
    /// The answer for an issued set (any extras), lifetimes relative to `now`.
    pub fn from_stored(set: &StoredTokenSet, now: OffsetDateTime) -> Self {
        Self {
            access_token: set.access_token.clone(),
            token_type: set.token_type.clone(),
            expires_in: set
                .access_expires_at
                .map_or(ExpiresIn(None), |at| ExpiresIn::until(at, now)),
            refresh_token: set.refresh_token.clone(),
            refresh_expires_in: set
                .refresh_expires_at
                .map_or(ExpiresIn(None), |at| ExpiresIn::until(at, now)),
            scope: set.scope.clone(),
        }
    }
}

impl TokenResponse for TokenAnswer {
    type Extras = NoExtras;

    fn decode_body(body: &[u8]) -> Result<Self, String> {
        use crate::macro_support::{ReadsAs, decode_answer_json, reads_as};
        decode_answer_json(
            body,
            None,
            &[
                ("expires_in", reads_as::<ExpiresIn> as ReadsAs),
                ("refresh_expires_in", reads_as::<ExpiresIn>),
            ],
        )
    }

    fn encode_body(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }

    fn into_token_set(self, now: OffsetDateTime) -> Result<TokenSet<NoExtras>, String> {
        use crate::macro_support::{ExpiryField as _, bounded_expiry};
        let access_expires_at = bounded_expiry(self.expires_in.instant(now), "expires_in")
            .or_else(|| jwt_exp(self.access_token.expose_secret()));
        let mut set = TokenSet::new(self.access_token);
        set.access_expires_at = access_expires_at;
        set.refresh_token = self.refresh_token;
        set.refresh_expires_at = bounded_expiry(
            self.refresh_expires_in.refresh_instant(now),
            "refresh_expires_in",
        );
        set.token_type = self.token_type;
        set.scope = self.scope;
        Ok(set)
    }

    fn from_token_set(set: &TokenSet<NoExtras>, now: OffsetDateTime) -> Self {
        match set.to_stored() {
            Ok(stored) => Self::from_stored(&stored, now),
            // `NoExtras` always serializes; keep the tokens regardless.
            Err(_) => Self::from_stored(
                &TokenSet {
                    access_token: set.access_token.clone(),
                    refresh_token: set.refresh_token.clone(),
                    access_expires_at: set.access_expires_at,
                    refresh_expires_at: set.refresh_expires_at,
                    token_type: set.token_type.clone(),
                    scope: set.scope.clone(),
                    extras: serde_json::Value::Null,
                },
                now,
            ),
        }
    }
}

/// The RFC 6749 section 5.2 error answer `{"error", "error_description"}`, with its status.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct OAuthErrorAnswer {
    /// The HTTP status it is (or was) sent with.
    pub status: StatusCode,
    /// The error code (`invalid_grant`).
    pub error: String,
    /// The human-readable description. Never contains a token.
    pub error_description: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct OAuthErrorBody {
    error: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    error_description: Option<String>,
}

impl OAuthErrorAnswer {
    /// An error answer.
    pub fn new(
        status: StatusCode,
        error: impl Into<String>,
        description: impl Into<String>,
    ) -> Self {
        Self {
            status,
            error: error.into(),
            error_description: Some(description.into()),
        }
    }

    /// 400 `invalid_grant`: the refresh token is invalid, used or expired.
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", description)
    }

    /// 400 `invalid_request`: a parameter is missing or malformed.
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", description)
    }

    /// 400 `unsupported_grant_type`.
    pub fn unsupported_grant_type(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            description,
        )
    }

    /// 401 `invalid_client`: client authentication failed.
    pub fn invalid_client(description: impl Into<String>) -> Self {
        Self::new(StatusCode::UNAUTHORIZED, "invalid_client", description)
    }

    /// 500 `server_error`.
    pub fn server_error(description: impl Into<String>) -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            description,
        )
    }

    /// The answer for an issuer refusal: refresh rejections are `invalid_grant`, a store
    /// failure is `server_error`.
    pub fn from_issuer(error: &IssuerError) -> Self {
        if error.is_refresh_rejection() {
            Self::invalid_grant(error.to_string())
        } else {
            Self::server_error("the issuer failed")
        }
    }
}

impl ErrorResponse for OAuthErrorAnswer {
    fn decode_error(status: StatusCode, body: &[u8]) -> Option<Self> {
        let body: OAuthErrorBody = serde_json::from_slice(body).ok()?;
        Some(Self {
            status,
            error: body.error,
            error_description: body.error_description,
        })
    }

    fn code(&self) -> String {
        self.error.clone()
    }

    fn message(&self) -> Option<String> {
        self.error_description.clone()
    }

    fn kind(&self, status: StatusCode) -> ErrorKind {
        match self.error.as_str() {
            "invalid_grant" => ErrorKind::ReauthRequired,
            "invalid_client" | "unauthorized_client" | "unsupported_grant_type" => {
                ErrorKind::Misconfigured
            }
            "invalid_request" | "invalid_scope" | "access_denied" => ErrorKind::Rejected,
            "temporarily_unavailable" | "server_error" | "slow_down" => ErrorKind::Transient,
            _ if status.is_success() => ErrorKind::Rejected,
            _ => ErrorKind::from_status(status),
        }
    }

    fn encode_error(&self) -> (StatusCode, Vec<u8>) {
        let body = OAuthErrorBody {
            error: self.error.clone(),
            error_description: self.error_description.clone(),
        };
        (self.status, serde_json::to_vec(&body).unwrap_or_default())
    }

    fn from_refusal(reason: RefusalReason, message: &str) -> Self {
        match reason {
            RefusalReason::BadRequest => Self::invalid_request(message),
            RefusalReason::UnknownClient
            | RefusalReason::BadSignature
            | RefusalReason::InvalidAccessToken => Self::invalid_client(message),
            RefusalReason::ServerError => Self::server_error(message),
            _ => Self::invalid_grant(message),
        }
    }
}

/// `POST /token`: dispatches on `grant_type` to the issuer. `refresh_token` rotates
/// ([`Issuer::refresh`](crate::issuer::Issuer::refresh)); `client_credentials` issues a pair
/// whose subject is the client id, accepting any client secret (this is a sandbox).
#[derive(Clone, Copy, Debug, Default)]
pub struct TokenHandler;

#[async_trait]
impl Handler for TokenHandler {
    async fn handle(
        &self,
        request: http::Request<Vec<u8>>,
        cx: &SandboxContext,
    ) -> http::Response<Vec<u8>> {
        let form = match read_form(&request) {
            Ok(form) => form,
            Err(e) => return encode_error(&OAuthErrorAnswer::invalid_request(e.0)),
        };
        let issued = match form.get("grant_type").map(String::as_str) {
            None | Some("") => {
                return encode_error(&OAuthErrorAnswer::invalid_request("missing grant_type"));
            }
            Some("refresh_token") => match RefreshGrant::decode_request(&request) {
                Ok(grant) => {
                    cx.issuer()
                        .refresh(grant.refresh_token.expose_secret())
                        .await
                }
                Err(e) => return encode_error(&OAuthErrorAnswer::invalid_request(e.0)),
            },
            Some("client_credentials") => match ClientCredentialsGrant::decode_request(&request) {
                Ok(grant) => {
                    cx.issuer()
                        .issue(grant.client_id, serde_json::json!({}))
                        .await
                }
                Err(e) => return encode_error(&OAuthErrorAnswer::invalid_client(e.0)),
            },
            Some(_) => {
                return encode_error(&OAuthErrorAnswer::unsupported_grant_type(
                    "supported: refresh_token, client_credentials",
                ));
            }
        };
        match issued {
            Ok(issued) => {
                let mut response = crate::codec::encode_response(&TokenAnswer::from_stored(
                    &issued.tokens,
                    cx.now(),
                ));
                no_store(&mut response);
                response
            }
            Err(error) => encode_error(&OAuthErrorAnswer::from_issuer(&error)),
        }
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

/// The bearer token of `Authorization: Bearer <token>`, if any.
pub fn bearer_token<B>(request: &http::Request<B>) -> Option<&str> {
    let value = request
        .headers()
        .get(http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
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

fn form_request(
    base_url: &url::Url,
    path: &str,
    fields: &[(&str, &str)],
    authorization: Option<HeaderValue>,
) -> Result<http::Request<Vec<u8>>, EndpointError> {
    let url = base_url
        .join(path.trim_start_matches('/'))
        .map_err(|e| EndpointError::Encode(format!("bad endpoint URL: {e}")))?;
    let body = serde_urlencoded::to_string(fields)
        .map_err(|e| EndpointError::Encode(format!("could not encode the form: {e}")))?;
    let mut request = http::Request::builder()
        .method(Method::POST)
        .uri(url.as_str())
        .header(http::header::CONTENT_TYPE, FORM)
        .header(http::header::ACCEPT, "application/json");
    if let Some(authorization) = authorization {
        request = request.header(http::header::AUTHORIZATION, authorization);
    }
    request
        .body(body.into_bytes())
        .map_err(|e| EndpointError::Encode(format!("could not build the request: {e}")))
}

fn read_form(request: &http::Request<Vec<u8>>) -> Result<HashMap<String, String>, RequestError> {
    serde_urlencoded::from_bytes(request.body()).map_err(|_| {
        RequestError("the body is not an application/x-www-form-urlencoded form".to_owned())
    })
}

fn form_encode(value: &str) -> String {
    let encoded = serde_urlencoded::to_string([("v", value)]).unwrap_or_default();
    encoded.strip_prefix("v=").unwrap_or_default().to_owned()
}

fn expect_grant(form: &HashMap<String, String>, grant: &str) -> Result<(), RequestError> {
    match form.get("grant_type") {
        Some(found) if found == grant => Ok(()),
        Some(_) => Err(RequestError(format!("grant_type is not {grant}"))),
        None => Err(RequestError("missing grant_type".to_owned())),
    }
}

/// `Authorization: Basic` credentials, form-decoded (RFC 6749 section 2.3.1).
fn basic_credentials(
    request: &http::Request<Vec<u8>>,
) -> Result<Option<(String, Option<String>)>, RequestError> {
    let Some(value) = request.headers().get(http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let bad = || RequestError("malformed Basic client authentication".to_owned());
    let value = value.to_str().map_err(|_| bad())?;
    let Some((scheme, encoded)) = value.trim().split_once(' ') else {
        return Err(bad());
    };
    if !scheme.eq_ignore_ascii_case("basic") {
        return Ok(None);
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim())
        .map_err(|_| bad())?;
    let decoded = String::from_utf8(decoded).map_err(|_| bad())?;
    let (id, secret) = decoded.split_once(':').ok_or_else(bad)?;
    let decode = |s: &str| -> Result<String, RequestError> {
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(&format!("v={s}")).map_err(|_| bad())?;
        Ok(pairs.into_iter().next().map(|(_, v)| v).unwrap_or_default())
    };
    let id = decode(id)?;
    if id.is_empty() {
        return Err(bad());
    }
    Ok(Some((id, Some(decode(secret)?))))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::decode_response;
    use time::macros::datetime;

    fn base() -> url::Url {
        url::Url::parse("http://127.0.0.1:9/").unwrap()
    }

    #[test]
    fn refresh_grant_round_trips_through_the_server_side() {
        let grant = RefreshGrant::new(RefreshToken::new("rt_a+b/c=")).with_scope("read write");
        let request = grant.encode_request(&base()).unwrap();
        assert_eq!(request.method(), Method::POST);
        assert_eq!(request.headers()[http::header::CONTENT_TYPE], FORM);
        assert_eq!(RefreshGrant::decode_request(&request).unwrap(), grant);
        assert_eq!(grant.secrets(), vec!["rt_a+b/c="]);
        assert!(!format!("{grant:?}").contains("rt_a"));
    }

    #[test]
    fn refresh_grant_requires_its_fields() {
        let request = |body: &str| http::Request::new(body.as_bytes().to_vec());
        assert!(RefreshGrant::decode_request(&request("grant_type=refresh_token")).is_err());
        assert!(
            RefreshGrant::decode_request(&request("grant_type=refresh_token&refresh_token="))
                .is_err()
        );
        assert!(RefreshGrant::decode_request(&request("refresh_token=x")).is_err());
        assert!(
            RefreshGrant::decode_request(&request("grant_type=password&refresh_token=x")).is_err()
        );
    }

    #[test]
    fn client_credentials_use_form_encoded_basic_auth() {
        let grant = ClientCredentialsGrant::new("client:1", Some(ClientSecret::new("s3cr%t&")));
        let request = grant.encode_request(&base()).unwrap();
        assert!(
            request.headers()[http::header::AUTHORIZATION]
                .to_str()
                .unwrap()
                .starts_with("Basic ")
        );
        assert_eq!(
            ClientCredentialsGrant::decode_request(&request).unwrap(),
            grant
        );

        let in_body = http::Request::new(
            b"grant_type=client_credentials&client_id=app&client_secret=x".to_vec(),
        );
        let decoded = ClientCredentialsGrant::decode_request(&in_body).unwrap();
        assert_eq!(decoded.client_id, "app");
        let anonymous = http::Request::new(b"grant_type=client_credentials".to_vec());
        assert!(ClientCredentialsGrant::decode_request(&anonymous).is_err());
    }

    #[test]
    fn token_answer_converts_relative_and_absolute_expiry() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let stored: StoredTokenSet = TokenSet::new(AccessToken::new("at_1"))
            .with_refresh_token(RefreshToken::new("rt_1"))
            .with_access_expires_at(datetime!(2026-01-01 01:00 UTC))
            .with_refresh_expires_at(datetime!(2026-01-02 00:00 UTC))
            .with_token_type("Bearer");
        let answer = TokenAnswer::from_stored(&stored, now);
        let json: serde_json::Value = serde_json::from_slice(&answer.encode_body()).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"access_token": "at_1", "token_type": "Bearer", "expires_in": 3600,
                "refresh_token": "rt_1", "refresh_expires_in": 86400})
        );
        let set = TokenAnswer::decode_body(&answer.encode_body())
            .unwrap()
            .into_token_set(now)
            .unwrap();
        assert_eq!(set.access_expires_at, stored.access_expires_at);
        assert_eq!(set.refresh_expires_at, stored.refresh_expires_at);
        assert_eq!(set.refresh_token, stored.refresh_token);

        // `expires_in` as a string, or absent with a JWT access token.
        let answer =
            TokenAnswer::decode_body(br#"{"access_token":"a","expires_in":"60"}"#).unwrap();
        assert_eq!(
            answer.into_token_set(now).unwrap().access_expires_at,
            Some(datetime!(2026-01-01 00:01 UTC))
        );
        let jwt = "eyJhbGciOiJub25lIn0.eyJleHAiOjE3NjcyMjU2MDB9.";
        let answer =
            TokenAnswer::decode_body(format!(r#"{{"access_token":"{jwt}"}}"#).as_bytes()).unwrap();
        assert_eq!(
            answer.into_token_set(now).unwrap().access_expires_at,
            Some(datetime!(2026-01-01 00:00 UTC))
        );
    }

    #[test]
    fn oauth_errors_are_classified() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let kind = |answer: OAuthErrorAnswer| {
            decode_response::<RefreshGrant>(&encode_error(&answer), now, &[])
                .unwrap_err()
                .kind()
        };
        assert_eq!(
            kind(OAuthErrorAnswer::invalid_grant("x")),
            ErrorKind::ReauthRequired
        );
        assert_eq!(
            kind(OAuthErrorAnswer::invalid_request("x")),
            ErrorKind::Rejected
        );
        assert_eq!(
            kind(OAuthErrorAnswer::unsupported_grant_type("x")),
            ErrorKind::Misconfigured
        );
        assert_eq!(
            kind(OAuthErrorAnswer::invalid_client("x")),
            ErrorKind::Misconfigured
        );
        assert_eq!(
            kind(OAuthErrorAnswer::server_error("x")),
            ErrorKind::Transient
        );
        let odd = OAuthErrorAnswer::new(StatusCode::OK, "weird", "200 with an error");
        assert_eq!(kind(odd), ErrorKind::Rejected);
        let decoded = OAuthErrorAnswer::decode_error(
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant"}"#,
        )
        .unwrap();
        assert_eq!(decoded.error_description, None);
        assert!(
            OAuthErrorAnswer::decode_error(StatusCode::OK, br#"{"access_token":"a"}"#).is_none()
        );
    }

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
    }
}
