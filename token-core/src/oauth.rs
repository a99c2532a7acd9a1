//! RFC 6749 once: the token endpoint's three grants, its answer, its error codes and what
//! each means for a session, and HTTP Basic client credentials both ways.
//!
//! Every definition is a [`token_endpoint`] item, so a client encodes with it and a server
//! (the sandbox, a wallet) decodes with it. `token-provider-oauth2` posts these grants to any
//! RFC 6749 server; providers whose token endpoint is RFC 6749 (Maya Connect) use them as
//! they are, and providers with endpoints of their own answer with [`OAuthError`] when their
//! errors have its shape.
//!
//! ```
//! use token_core::codec::{Endpoint, ErrorResponse, FromContext, RequestContext};
//! use token_core::oauth::{Client, ClientAuth, OAuthCode, OAuthError, RefreshTokenGrant};
//! use token_core::{secret::ClientSecret, error::ErrorKind, secret::RefreshToken, token_set::TokenSet, secret::AccessToken};
//!
//! let client = Client::new("app", Some(ClientSecret::new("secret")), ClientAuth::Basic);
//! let session: TokenSet = TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"));
//! let grant = RefreshTokenGrant::from_context(&RequestContext::for_refresh(&client, &session))?;
//! let request = grant.encode_request(&"https://id.example/oauth/".parse()?)?;
//! assert_eq!(request.headers()["authorization"], "Basic YXBwOnNlY3JldA==");
//! assert_eq!(request.body(), b"grant_type=refresh_token&refresh_token=rt");
//! // The server side reads the same definition.
//! assert_eq!(RefreshTokenGrant::decode_request(&request)?, grant);
//!
//! let status = http::StatusCode::BAD_REQUEST;
//! let error = OAuthError::decode_error(status, br#"{"error":"invalid_grant"}"#).unwrap();
//! assert_eq!(error.error, OAuthCode::InvalidGrant);
//! assert_eq!(error.kind(status), ErrorKind::ReauthRequired);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Serialize};

use crate::codec::{Endpoint, RequestError};
use crate::expiry::ExpiresIn;
use crate::secret::{AccessToken, AuthCode, ClientSecret, RefreshToken};
use crate::token_endpoint;

/// The path the grants are defined at (and the sandbox serves them at); a client posts them
/// to its server's token URL, whatever its path.
pub const TOKEN_PATH: &str = <RefreshTokenGrant as Endpoint>::PATH;

/// Where a confidential client sends its id and secret (RFC 6749 section 2.3.1).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ClientAuth {
    /// `Authorization: Basic base64(client_id:client_secret)`.
    #[default]
    Basic,
    /// `client_id` and `client_secret` form fields.
    Body,
}

/// The client as the grants send it: each credential either in HTTP Basic or in the body
/// (never both), plus the scope and redirect URI. The grants' `FromContext` reads it.
///
/// ```
/// use token_core::secret::ClientSecret;
/// use token_core::oauth::{Client, ClientAuth};
///
/// let basic = Client::new("app", Some(ClientSecret::new("s")), ClientAuth::Basic);
/// assert_eq!(basic.basic_user.as_deref(), Some("app"));
/// assert_eq!(basic.client_id, None);
/// let body = Client::new("app", Some(ClientSecret::new("s")), ClientAuth::Body);
/// assert_eq!(body.client_id.as_deref(), Some("app"));
/// assert_eq!(body.basic_user, None);
/// let public = Client::new("spa", None, ClientAuth::Basic);
/// assert_eq!(public.client_id.as_deref(), Some("spa"));
/// assert_eq!(public.client_secret, None);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Client {
    /// The HTTP Basic user (the client id), for [`ClientAuth::Basic`].
    pub basic_user: Option<String>,
    /// The HTTP Basic password (the client secret), for [`ClientAuth::Basic`].
    pub basic_password: Option<ClientSecret>,
    /// The `client_id` form field, for [`ClientAuth::Body`] and public clients.
    pub client_id: Option<String>,
    /// The `client_secret` form field, for [`ClientAuth::Body`].
    pub client_secret: Option<ClientSecret>,
    /// The `scope` form field.
    pub scope: Option<String>,
    /// The `redirect_uri` form field of the code exchange.
    pub redirect_uri: Option<String>,
}

impl Client {
    /// The client `client_id`, its secret placed where `auth` says; without a secret a public
    /// client, which sends only `client_id` in the body.
    pub fn new(
        client_id: impl Into<String>,
        secret: Option<ClientSecret>,
        auth: ClientAuth,
    ) -> Self {
        let client_id = client_id.into();
        match (secret, auth) {
            (Some(secret), ClientAuth::Basic) => Self {
                basic_user: Some(client_id),
                basic_password: Some(secret),
                ..Self::default()
            },
            (Some(secret), ClientAuth::Body) => Self {
                client_id: Some(client_id),
                client_secret: Some(secret),
                ..Self::default()
            },
            (None, _) => Self {
                client_id: Some(client_id),
                ..Self::default()
            },
        }
    }

    /// Sets the scope every grant sends.
    pub fn with_scope(mut self, scope: Option<String>) -> Self {
        self.scope = scope;
        self
    }

    /// Sets the redirect URI the code exchange sends.
    pub fn with_redirect_uri(mut self, redirect_uri: Option<String>) -> Self {
        self.redirect_uri = redirect_uri;
        self
    }

    /// The client id, wherever it is sent.
    pub fn id(&self) -> Option<&str> {
        self.basic_user.as_deref().or(self.client_id.as_deref())
    }
}

/// The client's credentials, as every grant sends them: HTTP Basic (`basic_user`,
/// `basic_password`) or the body (`client_id`, `client_secret`; public clients send only
/// `client_id`). [`Client::new`] sets one pair, never both.
///
/// ```
/// use token_core::codec::{Endpoint, FieldGroup};
/// use token_core::{secret::ClientSecret, secret::RefreshToken};
/// use token_core::oauth::{ClientAuthentication, RefreshTokenGrant};
///
/// let grant = RefreshTokenGrant {
///     refresh_token: RefreshToken::new("rt"),
///     scope: None,
///     client: ClientAuthentication {
///         client_id: Some("app".into()),
///         client_secret: Some(ClientSecret::new("secret")),
///         ..ClientAuthentication::default()
///     },
/// };
/// let request = grant.encode_request(&"https://id.example".parse()?)?;
/// assert_eq!(request.body(), b"grant_type=refresh_token&refresh_token=rt&client_id=app&client_secret=secret");
/// assert_eq!(RefreshTokenGrant::decode_request(&request)?, grant);
/// assert_eq!(grant.client.secrets(), ["secret"]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[token_endpoint(fields, config = Client)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientAuthentication {
    /// The client id in the body ([`ClientAuth::Body`], public clients).
    #[token(from = config.client_id)]
    pub client_id: Option<String>,
    /// The client secret in the body ([`ClientAuth::Body`]).
    #[token(from = config.client_secret)]
    pub client_secret: Option<ClientSecret>,
    /// The client id as the HTTP Basic user ([`ClientAuth::Basic`]).
    #[token(basic_user, from = config.basic_user)]
    pub basic_user: Option<String>,
    /// The client secret as the HTTP Basic password ([`ClientAuth::Basic`]).
    #[token(basic_password, from = config.basic_password)]
    pub basic_password: Option<ClientSecret>,
}

impl ClientAuthentication {
    /// The client id, from HTTP Basic or the body.
    pub fn client_id(&self) -> Option<&str> {
        self.basic_user.as_deref().or(self.client_id.as_deref())
    }
}

/// `grant_type=refresh_token` (RFC 6749 section 6), with the client's credentials where the
/// [`Client`] puts them and its scope.
///
/// ```
/// use token_core::codec::Endpoint;
/// use token_core::secret::RefreshToken;
/// use token_core::oauth::RefreshTokenGrant;
///
/// let grant = RefreshTokenGrant::new(RefreshToken::new("rt_1"));
/// let request = grant.encode_request(&"http://127.0.0.1:8080/".parse()?)?;
/// assert_eq!(request.uri(), "http://127.0.0.1:8080/token");
/// assert_eq!(request.body(), b"grant_type=refresh_token&refresh_token=rt_1");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[token_endpoint(post = "/token", form, response = OAuthTokens, error = OAuthError,
                 config = Client, body(name = "grant_type", value = "refresh_token"))]
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshTokenGrant {
    /// The refresh token.
    pub refresh_token: RefreshToken,
    /// The requested scope.
    #[token(from = config.scope)]
    pub scope: Option<String>,
    /// The client's credentials, where the [`Client`] puts them.
    #[token(flatten)]
    pub client: ClientAuthentication,
}

impl RefreshTokenGrant {
    /// A refresh with `refresh_token` alone: no client authentication, no scope.
    pub fn new(refresh_token: RefreshToken) -> Self {
        Self {
            refresh_token,
            scope: None,
            client: ClientAuthentication::default(),
        }
    }
}

/// `grant_type=client_credentials` (RFC 6749 section 4.4): tokens for the client itself.
///
/// ```
/// use token_core::codec::{Endpoint, FromContext, RequestContext};
/// use token_core::secret::ClientSecret;
/// use token_core::oauth::{Client, ClientAuth, ClientCredentialsGrant};
///
/// let client = Client::new("app", Some(ClientSecret::new("secret")), ClientAuth::Body)
///     .with_scope(Some("payments".into()));
/// let grant = ClientCredentialsGrant::from_context(&RequestContext::new(&client))?;
/// let request = grant.encode_request(&"https://id.example".parse()?)?;
/// assert!(request.headers().get("authorization").is_none());
/// assert_eq!(
///     request.body(),
///     b"grant_type=client_credentials&scope=payments&client_id=app&client_secret=secret"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[token_endpoint(post = "/token", form, response = OAuthTokens, error = OAuthError,
                 config = Client, body(name = "grant_type", value = "client_credentials"))]
#[derive(Clone, Debug, PartialEq)]
pub struct ClientCredentialsGrant {
    /// The requested scope.
    #[token(from = config.scope)]
    pub scope: Option<String>,
    /// The client's credentials, where the [`Client`] puts them.
    #[token(flatten)]
    pub client: ClientAuthentication,
}

impl ClientCredentialsGrant {
    /// A grant for `client_id`: with a secret in HTTP Basic, without one (a public client)
    /// the id in the body.
    pub fn new(client_id: impl Into<String>, secret: Option<ClientSecret>) -> Self {
        let client = Client::new(client_id, secret, ClientAuth::Basic);
        Self {
            scope: None,
            client: ClientAuthentication {
                client_id: client.client_id,
                basic_user: client.basic_user,
                basic_password: client.basic_password,
                ..ClientAuthentication::default()
            },
        }
    }
}

/// `grant_type=authorization_code` (RFC 6749 section 4.1.3) with the PKCE `code_verifier`
/// (RFC 7636 section 4.5) when the authorization request carried a challenge.
///
/// ```
/// use token_core::codec::{Endpoint, FromContext, RequestContext};
/// use token_core::secret::AuthCode;
/// use token_core::oauth::{AuthorizationCodeGrant, Client, ClientAuth};
///
/// let client = Client::new("spa", None, ClientAuth::Basic)
///     .with_redirect_uri(Some("https://app.example/cb".into()));
/// let code = AuthCode::new("c-1");
/// let cx = RequestContext::new(&client).with_auth_code(&code, Some("verifier"));
/// let request = AuthorizationCodeGrant::from_context(&cx)?.encode_request(&"https://id.example".parse()?)?;
/// assert_eq!(
///     std::str::from_utf8(request.body())?,
///     "grant_type=authorization_code&code=c-1&redirect_uri=https%3A%2F%2Fapp.example%2Fcb\
///      &code_verifier=verifier&client_id=spa"
/// );
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[token_endpoint(post = "/token", form, response = OAuthTokens, error = OAuthError,
                 config = Client, body(name = "grant_type", value = "authorization_code"))]
#[derive(Clone, PartialEq)]
pub struct AuthorizationCodeGrant {
    /// The authorization code.
    #[token(from = auth_code)]
    pub code: AuthCode,
    /// The redirect URI of the authorization request.
    #[token(from = config.redirect_uri)]
    pub redirect_uri: Option<String>,
    /// The PKCE code verifier.
    #[token(from = code_verifier)]
    pub code_verifier: Option<String>,
    /// The client's credentials, where the [`Client`] puts them.
    #[token(flatten)]
    pub client: ClientAuthentication,
}

/// Never shows the PKCE verifier (whoever holds it with the code redeems the code), as the
/// code itself, an [`AuthCode`], is never shown.
impl fmt::Debug for AuthorizationCodeGrant {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AuthorizationCodeGrant")
            .field("code", &self.code)
            .field("redirect_uri", &self.redirect_uri)
            .field(
                "code_verifier",
                &self.code_verifier.as_ref().map(|_| "[redacted]"),
            )
            .field("client", &self.client)
            .finish()
    }
}

/// The RFC 6749 section 5.1 answer, read tolerantly: `expires_in` as a number, a numeric
/// string or `null` (then the access token's JWT `exp`), Keycloak's `refresh_expires_in`,
/// no `refresh_token` (the previous one is kept).
///
/// ```
/// use token_core::codec::TokenResponse;
/// use token_core::oauth::OAuthTokens;
///
/// let now = time::OffsetDateTime::now_utc();
/// let set = OAuthTokens::decode_body(br#"{"access_token":"at","expires_in":"60","token_type":"bearer"}"#)?
///     .into_token_set(now)?;
/// assert_eq!(set.access_expires_at, Some(now + time::Duration::seconds(60)));
/// assert_eq!(set.refresh_token, None);
/// # Ok::<(), String>(())
/// ```
#[token_endpoint(response, jwt_expiry)]
#[derive(Clone, Debug, PartialEq)]
pub struct OAuthTokens {
    /// The access token.
    pub access_token: AccessToken,
    /// The token type (`Bearer`).
    pub token_type: Option<String>,
    /// Seconds until the access token expires.
    pub expires_in: Option<ExpiresIn>,
    /// The new refresh token, if the server issued one.
    pub refresh_token: Option<RefreshToken>,
    /// Seconds until the refresh token expires (Keycloak and others).
    pub refresh_expires_in: Option<ExpiresIn>,
    /// The granted scope.
    pub scope: Option<String>,
}

/// RFC 6749 section 5.2 error codes (with RFC 6750's `invalid_token` and RFC 8628's
/// `slow_down`), and what each means for the session.
#[token_endpoint(error_code, rename_all = "snake_case")]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OAuthCode {
    /// The refresh token or code is invalid, expired, revoked or used.
    #[token(kind = reauth_required, refusal(invalid_refresh_token, invalid_auth_code))]
    InvalidGrant,
    /// Some servers say this of a dead refresh token (Maya Connect: "Invalid refresh token").
    #[token(kind = reauth_required)]
    InvalidToken,
    /// Client authentication failed.
    #[token(kind = misconfigured, status = 401, refusal(unknown_client, bad_signature, invalid_access_token))]
    InvalidClient,
    /// The client may not use this grant.
    #[token(kind = misconfigured)]
    UnauthorizedClient,
    /// The server does not support the grant (or does not enable it for the client).
    #[token(kind = misconfigured)]
    UnsupportedGrantType,
    /// A parameter is missing or malformed.
    #[token(kind = rejected, refusal = bad_request)]
    InvalidRequest,
    /// The requested scope is invalid or exceeds the grant.
    #[token(kind = rejected)]
    InvalidScope,
    /// The resource owner or server refused.
    #[token(kind = rejected)]
    AccessDenied,
    /// The server is overloaded or in maintenance.
    #[token(kind = transient, status = 503)]
    TemporarilyUnavailable,
    /// The client polls too fast: wait and try again.
    #[token(kind = transient)]
    SlowDown,
    /// The server failed.
    #[token(kind = transient, status = 500, refusal = server_error)]
    ServerError,
    /// Any other code: classified by the HTTP status.
    Other(String),
}

/// `{"error", "error_description", "error_uri"}`, recognised on any status (200 too).
///
/// ```
/// use token_core::{error::ErrorKind, codec::ErrorResponse};
/// use token_core::oauth::{OAuthCode, OAuthError};
///
/// let ok = http::StatusCode::OK;
/// let error = OAuthError::decode_error(ok, br#"{"error":"invalid_grant"}"#).unwrap();
/// assert_eq!(error.error, OAuthCode::InvalidGrant);
/// assert_eq!(error.kind(ok), ErrorKind::ReauthRequired);
/// assert!(OAuthError::decode_error(ok, br#"{"access_token":"at"}"#).is_none());
/// ```
#[token_endpoint(error)]
#[derive(Clone, Debug, PartialEq)]
pub struct OAuthError {
    /// The error code.
    pub error: OAuthCode,
    /// The human-readable description.
    pub error_description: Option<String>,
    /// A page about the error.
    pub error_uri: Option<String>,
}

impl OAuthError {
    /// An answer with `code` and `description`.
    pub fn new(code: OAuthCode, description: impl Into<String>) -> Self {
        Self {
            error: code,
            error_description: Some(description.into()),
            error_uri: None,
        }
    }
}

/// The query of the authorization endpoint (RFC 6749 section 4.1.1, `response_type=code`),
/// with the S256 PKCE challenge of RFC 7636 when there is one: what a client sends its user
/// to, and what a server reads back.
///
/// ```
/// use token_core::oauth::AuthorizeQuery;
///
/// let query = AuthorizeQuery::new("spa")
///     .with_redirect_uri(Some("https://app.example/cb".into()))
///     .with_state("s-1");
/// let url = query.to_url("https://id.example/authorize".parse()?);
/// assert_eq!(
///     url.as_str(),
///     "https://id.example/authorize?response_type=code&client_id=spa\
///      &redirect_uri=https%3A%2F%2Fapp.example%2Fcb&state=s-1"
/// );
/// assert_eq!(AuthorizeQuery::from_query(url.query().unwrap_or_default())?, query);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuthorizeQuery {
    /// The client id.
    pub client_id: String,
    /// Where the code is sent back.
    pub redirect_uri: Option<String>,
    /// Space-separated scopes.
    pub scope: Option<String>,
    /// The value the callback must carry back.
    pub state: Option<String>,
    /// The S256 PKCE challenge (`code_challenge_method=S256`).
    pub code_challenge: Option<String>,
}

impl AuthorizeQuery {
    /// The query of client `client_id`, with nothing else.
    pub fn new(client_id: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            redirect_uri: None,
            scope: None,
            state: None,
            code_challenge: None,
        }
    }

    /// Sets the redirect URI.
    pub fn with_redirect_uri(mut self, redirect_uri: Option<String>) -> Self {
        self.redirect_uri = redirect_uri;
        self
    }

    /// Sets the scopes.
    pub fn with_scope(mut self, scope: Option<String>) -> Self {
        self.scope = scope;
        self
    }

    /// Sets the state.
    pub fn with_state(mut self, state: impl Into<String>) -> Self {
        self.state = Some(state.into());
        self
    }

    /// Sets the S256 PKCE challenge ([`PkceVerifier::challenge`](crate::pkce::PkceVerifier::challenge)).
    pub fn with_challenge(mut self, challenge: String) -> Self {
        self.code_challenge = Some(challenge);
        self
    }

    /// `authorize_url` with this query appended, in the order RFC 6749 lists the parameters.
    /// A parameter `authorize_url` already has is kept, in its place, unless this query sets
    /// it: then only the query's value is sent (a parameter is sent once, RFC 6749 section
    /// 3.1).
    pub fn to_url(&self, mut authorize_url: url::Url) -> url::Url {
        let challenge_method = self.code_challenge.as_ref().map(|_| crate::pkce::S256);
        let ours = [
            ("response_type", Some("code")),
            ("client_id", Some(self.client_id.as_str())),
            ("redirect_uri", self.redirect_uri.as_deref()),
            ("scope", self.scope.as_deref()),
            ("state", self.state.as_deref()),
            ("code_challenge", self.code_challenge.as_deref()),
            ("code_challenge_method", challenge_method),
        ];
        let sets = |name: &str| {
            ours.iter()
                .any(|(ours, value)| *ours == name && value.is_some())
        };
        let kept: Vec<(String, String)> = (authorize_url.query_pairs())
            .filter(|(name, _)| !sets(name))
            .map(|(name, value)| (name.into_owned(), value.into_owned()))
            .collect();
        authorize_url.set_query(None);
        authorize_url
            .query_pairs_mut()
            .extend_pairs(kept)
            .extend_pairs(
                ours.iter()
                    .filter_map(|(name, value)| Some((*name, (*value)?))),
            );
        authorize_url
    }

    /// Reads a query string (without `?`): `response_type` must be `code`, `client_id` is
    /// required, a challenge must be `S256` (RFC 7636's `plain` is refused), and none of
    /// these parameters may be sent twice (RFC 6749 section 3.1). A parameter sent without a
    /// value is read as omitted (RFC 6749 section 3.1, as the token endpoint reads its form):
    /// an empty `redirect_uri` or `code_challenge` binds the code to none. Other parameters
    /// are ignored.
    pub fn from_query(query: &str) -> Result<Self, RequestError> {
        let mut read = Self::new("");
        let (mut response_type, mut method) = (None, None);
        let mut seen: Vec<String> = Vec::new();
        for (name, value) in url::form_urlencoded::parse(query.as_bytes()).into_owned() {
            // A repeated parameter is a malformed request, not a choice between its values:
            // whoever checked the request before (a proxy, a consent page) may have read the
            // other `redirect_uri`.
            if AUTHORIZE_PARAMETERS.contains(&name.as_str()) {
                if seen.contains(&name) {
                    return Err(RequestError(format!("parameter `{name}` is repeated")));
                }
                seen.push(name.clone());
            }
            if value.is_empty() {
                continue;
            }
            match name.as_str() {
                "response_type" => response_type = Some(value),
                "client_id" => read.client_id = value,
                "redirect_uri" => read.redirect_uri = Some(value),
                "scope" => read.scope = Some(value),
                "state" => read.state = Some(value),
                "code_challenge" => read.code_challenge = Some(value),
                "code_challenge_method" => method = Some(value),
                _ => {}
            }
        }
        if response_type.as_deref() != Some("code") {
            return Err(RequestError("response_type must be code".to_owned()));
        }
        if read.client_id.is_empty() {
            return Err(RequestError("missing client_id".to_owned()));
        }
        if read.code_challenge.is_some() && method.as_deref() != Some(crate::pkce::S256) {
            return Err(RequestError(
                "only the S256 code_challenge_method is supported".to_owned(),
            ));
        }
        Ok(read)
    }
}

/// The parameters [`AuthorizeQuery::from_query`] reads.
const AUTHORIZE_PARAMETERS: [&str; 7] = [
    "response_type",
    "client_id",
    "redirect_uri",
    "scope",
    "state",
    "code_challenge",
    "code_challenge_method",
];

/// HTTP Basic client credentials (RFC 6749 section 2.3.1): each part form-urlencoded, then
/// `user:password` in Base64, so a `:` in the id, a `+` or non-ASCII text survive the trip.
/// `Debug` shows the client id, never the secret.
///
/// ```
/// use token_core::secret::ClientSecret;
/// use token_core::oauth::BasicCredentials;
///
/// let credentials = BasicCredentials::new("app:1", ClientSecret::new("s e+cret"));
/// let header = credentials.to_header();
/// assert_eq!(header, "Basic YXBwJTNBMTpzK2UlMkJjcmV0");
/// assert_eq!(BasicCredentials::from_header(&header), Some(credentials));
/// assert_eq!(BasicCredentials::from_header("Bearer x"), None);
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct BasicCredentials {
    /// The user: the client id.
    pub user: String,
    /// The password: the client secret.
    pub password: ClientSecret,
}

impl BasicCredentials {
    /// The credentials `user` with `password`.
    pub fn new(user: impl Into<String>, password: ClientSecret) -> Self {
        Self {
            user: user.into(),
            password,
        }
    }

    /// The `Authorization` header value: `Basic base64(form(user) ":" form(password))`.
    pub fn to_header(&self) -> String {
        let encode =
            |part: &str| url::form_urlencoded::byte_serialize(part.as_bytes()).collect::<String>();
        let credentials = format!(
            "{}:{}",
            encode(&self.user),
            encode(self.password.expose_secret())
        );
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(credentials)
        )
    }

    /// Reads an `Authorization` header value: the `Basic` scheme (any case), Base64, split at
    /// the first `:`, each part form-urldecoded (`+` is a space, `%XX` a byte). `None` for
    /// another scheme or anything malformed (bad Base64, no `:`, escapes that are not UTF-8).
    pub fn from_header(value: &str) -> Option<Self> {
        let (scheme, encoded) = value.trim().split_once(' ')?;
        if !scheme.eq_ignore_ascii_case("basic") {
            return None;
        }
        let decoded = base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .ok()?;
        let text = String::from_utf8(decoded).ok()?;
        let (user, password) = text.split_once(':')?;
        let decode = |part: &str| {
            let spaced = part.replace('+', " ");
            percent_encoding::percent_decode_str(&spaced)
                .decode_utf8()
                .ok()
                .map(|text| text.into_owned())
        };
        Some(Self::new(
            decode(user)?,
            ClientSecret::new(decode(password)?),
        ))
    }
}

impl fmt::Debug for BasicCredentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BasicCredentials")
            .field("user", &self.user)
            .field("password", &self.password)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::codec::{ErrorResponse, RefusalReason};
    use crate::error::ErrorKind;
    use http::StatusCode;

    /// An authorization URL configured with parameters of its own keeps those the query does
    /// not set, in their order, and takes the query's value for each it does: every
    /// parameter once (RFC 6749 section 3.1), never a configured `response_type=token`
    /// beside the query's `code`.
    #[test]
    fn a_configured_authorize_url_keeps_its_own_parameters_once() {
        let configured: url::Url =
            "https://id.example/authorize?prompt=consent&response_type=token&client_id=old&state=x"
                .parse()
                .unwrap();
        let url = AuthorizeQuery::new("spa")
            .with_state("s-1")
            .with_challenge("c".repeat(43))
            .to_url(configured);
        let pairs: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let names: Vec<&str> = pairs.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "prompt",
                "response_type",
                "client_id",
                "state",
                "code_challenge",
                "code_challenge_method"
            ],
            "{url}"
        );
        assert_eq!(
            AuthorizeQuery::from_query(url.query().unwrap()).unwrap(),
            AuthorizeQuery::new("spa")
                .with_state("s-1")
                .with_challenge("c".repeat(43))
        );
        // A parameter the query leaves unset stays as configured.
        let scoped: url::Url = "https://id.example/authorize?scope=openid".parse().unwrap();
        let url = AuthorizeQuery::new("spa").to_url(scoped);
        assert_eq!(
            url.as_str(),
            "https://id.example/authorize?scope=openid&response_type=code&client_id=spa"
        );
    }

    #[test]
    fn each_code_has_its_kind() {
        let kind = |code: &str, status: u16| {
            let status = StatusCode::from_u16(status).unwrap();
            let body = format!(r#"{{"error":"{code}"}}"#);
            OAuthError::decode_error(status, body.as_bytes())
                .unwrap()
                .kind(status)
        };
        assert_eq!(kind("invalid_grant", 400), ErrorKind::ReauthRequired);
        assert_eq!(kind("invalid_token", 400), ErrorKind::ReauthRequired);
        assert_eq!(kind("invalid_client", 401), ErrorKind::Misconfigured);
        assert_eq!(kind("unauthorized_client", 400), ErrorKind::Misconfigured);
        assert_eq!(
            kind("unsupported_grant_type", 400),
            ErrorKind::Misconfigured
        );
        assert_eq!(kind("invalid_request", 400), ErrorKind::Rejected);
        assert_eq!(kind("invalid_scope", 400), ErrorKind::Rejected);
        assert_eq!(kind("access_denied", 400), ErrorKind::Rejected);
        assert_eq!(kind("temporarily_unavailable", 503), ErrorKind::Transient);
        assert_eq!(kind("slow_down", 400), ErrorKind::Transient);
        assert_eq!(kind("server_error", 500), ErrorKind::Transient);
        assert_eq!(kind("weird", 503), ErrorKind::Transient);
        assert_eq!(kind("weird", 200), ErrorKind::Rejected);
    }

    #[test]
    fn refusals_answer_the_rfc_codes() {
        let answer = |reason: RefusalReason| {
            let error = OAuthError::from_refusal(reason, "x");
            let (status, _) = error.encode_error();
            (error.error, status.as_u16())
        };
        assert_eq!(
            answer(RefusalReason::InvalidRefreshToken),
            (OAuthCode::InvalidGrant, 400)
        );
        assert_eq!(
            answer(RefusalReason::ExpiredRefreshToken),
            (OAuthCode::InvalidGrant, 400)
        );
        assert_eq!(
            answer(RefusalReason::InvalidAuthCode),
            (OAuthCode::InvalidGrant, 400)
        );
        assert_eq!(
            answer(RefusalReason::UnknownClient),
            (OAuthCode::InvalidClient, 401)
        );
        assert_eq!(
            answer(RefusalReason::BadRequest),
            (OAuthCode::InvalidRequest, 400)
        );
        assert_eq!(
            answer(RefusalReason::ServerError),
            (OAuthCode::ServerError, 500)
        );
    }

    /// The PKCE verifier is a secret (RFC 7636: whoever holds it with the code redeems the
    /// code): a token request as a server decodes it (the sandbox's token endpoint), shown
    /// with `Debug`, shows neither the verifier nor the code.
    #[test]
    fn an_authorization_code_grant_never_shows_its_verifier() {
        use crate::codec::Endpoint as _;
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let body = format!(
            "grant_type=authorization_code&code=ac_sEcReT&code_verifier={verifier}&client_id=spa"
        );
        let request = http::Request::post("https://id.example/token")
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body.into_bytes())
            .unwrap();
        let grant = AuthorizationCodeGrant::decode_request(&request).unwrap();
        assert_eq!(grant.code_verifier.as_deref(), Some(verifier));
        let shown = format!("{grant:?}");
        assert!(!shown.contains(verifier), "{shown}");
        assert!(!shown.contains("sEcReT"), "{shown}");
        assert!(shown.contains("spa"), "{shown}");
    }

    #[test]
    fn basic_credentials_round_trip_and_refuse_what_is_malformed() {
        for (user, password) in [("app", "secret"), ("app:1 +ü", "s e:c+r/ét%"), ("a", "")] {
            let credentials = BasicCredentials::new(user, ClientSecret::new(password));
            assert_eq!(
                BasicCredentials::from_header(&credentials.to_header()),
                Some(credentials)
            );
        }
        // Scheme in any case; a secret in the password is never shown.
        let read = BasicCredentials::from_header("basic YXBwOnNlY3JldA==").unwrap();
        assert_eq!(read.user, "app");
        assert!(!format!("{read:?}").contains("secret"), "{read:?}");
        for bad in [
            "Basic",
            "Basic !!!",
            "Basic YXBw",     // "app": no ':'
            "Basic JUZGOng=", // "%FF:x": not UTF-8
            "Digest YXBwOnNlY3JldA==",
        ] {
            assert_eq!(BasicCredentials::from_header(bad), None, "{bad}");
        }
    }

    #[test]
    fn grant_constructors_place_the_client_as_a_client_would() {
        let grant = ClientCredentialsGrant::new("app", Some(ClientSecret::new("s")));
        assert_eq!(grant.client.client_id(), Some("app"));
        let request = grant
            .encode_request(&"http://127.0.0.1/".parse().unwrap())
            .unwrap();
        assert!(request.headers().contains_key(http::header::AUTHORIZATION));
        assert_eq!(
            ClientCredentialsGrant::decode_request(&request).unwrap(),
            grant
        );
        let public = ClientCredentialsGrant::new("spa", None);
        let request = public
            .encode_request(&"http://127.0.0.1/".parse().unwrap())
            .unwrap();
        assert_eq!(
            request.body(),
            b"grant_type=client_credentials&client_id=spa"
        );
        assert_eq!(
            ClientCredentialsGrant::decode_request(&request)
                .unwrap()
                .client
                .client_id(),
            Some("spa")
        );
    }
}
