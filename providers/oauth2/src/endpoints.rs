//! The token endpoint's three grants, its answer and its error, as `#[token_endpoint]`
//! definitions: the client encodes with them and the sandbox serves them.

use token_core::codec::Endpoint;
use token_core::expiry::ExpiresIn;
use token_core::{AccessToken, AuthCode, ClientSecret, RefreshToken, token_endpoint};

use crate::config::Client;

/// The path the grants are defined at, and the sandbox serves them at; a client posts them
/// to its configured [`token_url`](crate::OAuth2Config::token_url) instead.
pub const TOKEN_PATH: &str = <RefreshTokenGrant as Endpoint>::PATH;

/// The client's credentials (RFC 6749 section 2.3.1), as every grant sends them: the id and
/// secret as HTTP Basic (`client_auth = basic`), or as the `client_id` and `client_secret`
/// body fields (`client_auth = body`, and public clients, which send only `client_id`).
/// [`OAuth2Config::client`](crate::OAuth2Config::client) sets one pair, never both.
///
/// ```
/// use token_core::codec::{Endpoint, FieldGroup};
/// use token_core::{ClientSecret, RefreshToken};
/// use token_provider_oauth2::{ClientAuthentication, RefreshTokenGrant};
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
    /// The client id in the body (`client_auth = body`, public clients).
    #[token(from = config.client_id)]
    pub client_id: Option<String>,
    /// The client secret in the body (`client_auth = body`).
    #[token(from = config.client_secret)]
    pub client_secret: Option<ClientSecret>,
    /// The client id as the HTTP Basic user (`client_auth = basic`).
    #[token(basic_user, from = config.basic_user)]
    pub basic_user: Option<String>,
    /// The client secret as the HTTP Basic password (`client_auth = basic`).
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
/// config puts them and the configured scope.
///
/// ```
/// use token_core::{AccessToken, ClientSecret, Endpoint, FromContext, RefreshToken, RequestContext, TokenSet};
/// use token_provider_oauth2::{OAuth2Config, RefreshTokenGrant};
///
/// let config = OAuth2Config::new("app", "https://id.example/oauth/token".parse()?)
///     .with_client_secret(ClientSecret::new("secret"));
/// let session: TokenSet = TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"));
/// let client = config.client();
/// let grant = RefreshTokenGrant::from_context(&RequestContext::for_refresh(&client, &session))?;
/// let request = grant.encode_request(&"https://id.example/oauth".parse()?)?;
/// assert_eq!(request.uri(), "https://id.example/oauth/token");
/// assert_eq!(request.headers()["authorization"], "Basic YXBwOnNlY3JldA==");
/// assert_eq!(request.body(), b"grant_type=refresh_token&refresh_token=rt");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[token_endpoint(post = "/token", form, response = OAuthTokens, error = OAuthError,
                 config = Client, body(name = "grant_type", value = "refresh_token"))]
#[derive(Clone, Debug, PartialEq)]
pub struct RefreshTokenGrant {
    /// The refresh token.
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    /// The requested scope.
    #[token(from = config.scope)]
    pub scope: Option<String>,
    /// The client's credentials.
    #[token(flatten)]
    pub client: ClientAuthentication,
}

/// `grant_type=client_credentials` (RFC 6749 section 4.4): tokens for the client itself.
///
/// ```
/// use token_core::{ClientSecret, Endpoint, FromContext, RequestContext};
/// use token_provider_oauth2::{ClientAuth, ClientCredentialsGrant, OAuth2Config};
///
/// let config = OAuth2Config::new("app", "https://id.example/token".parse()?)
///     .with_client_secret(ClientSecret::new("secret"))
///     .with_client_auth(ClientAuth::Body)
///     .with_scope("payments");
/// let grant = ClientCredentialsGrant::from_context(&RequestContext::new(&config.client()))?;
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
    /// The client's credentials.
    #[token(flatten)]
    pub client: ClientAuthentication,
}

/// `grant_type=authorization_code` (RFC 6749 section 4.1.3) with the PKCE `code_verifier`
/// (RFC 7636 section 4.5) when the authorization request carried a challenge.
///
/// ```
/// use token_core::{AuthCode, Endpoint, FromContext, RequestContext};
/// use token_provider_oauth2::{AuthorizationCodeGrant, OAuth2Config};
///
/// let config = OAuth2Config::new("spa", "https://id.example/token".parse()?)
///     .with_redirect_uri("https://app.example/cb");
/// let client = config.client();
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
#[derive(Clone, Debug, PartialEq)]
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
    /// The client's credentials.
    #[token(flatten)]
    pub client: ClientAuthentication,
}

/// The RFC 6749 section 5.1 answer, read tolerantly: `expires_in` as a number, a numeric
/// string or `null` (then the access token's JWT `exp`), Keycloak's `refresh_expires_in`,
/// no `refresh_token` (the previous one is kept).
///
/// ```
/// use token_core::TokenResponse;
/// use token_provider_oauth2::OAuthTokens;
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
    #[token(access_token)]
    pub access_token: AccessToken,
    /// The token type (`Bearer`).
    #[token(token_type)]
    pub token_type: Option<String>,
    /// Seconds until the access token expires.
    #[token(expiry)]
    pub expires_in: Option<ExpiresIn>,
    /// The new refresh token, if the server issued one.
    #[token(refresh_token)]
    pub refresh_token: Option<RefreshToken>,
    /// Seconds until the refresh token expires (Keycloak and others).
    #[token(refresh_expiry)]
    pub refresh_expires_in: Option<ExpiresIn>,
    /// The granted scope.
    #[token(scope)]
    pub scope: Option<String>,
}

/// RFC 6749 section 5.2 error codes, and what each means for the session.
#[token_endpoint(error_code, rename_all = "snake_case")]
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum OAuthCode {
    /// The refresh token or code is invalid, expired, revoked or used.
    #[token(kind = reauth_required, refusal(invalid_refresh_token, invalid_auth_code))]
    InvalidGrant,
    /// Some servers say this of a dead refresh token.
    #[token(kind = reauth_required)]
    InvalidToken,
    /// Client authentication failed.
    #[token(kind = misconfigured, status = 401, refusal = unknown_client)]
    InvalidClient,
    /// The client may not use this grant.
    #[token(kind = misconfigured)]
    UnauthorizedClient,
    /// The server does not support the grant.
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
    /// The server failed.
    #[token(kind = transient, status = 500, refusal = server_error)]
    ServerError,
    /// Any other code: classified by the HTTP status.
    #[token(other)]
    Other(String),
}

/// `{"error", "error_description", "error_uri"}`, recognised on any status (200 too).
///
/// ```
/// use token_core::{ErrorKind, ErrorResponse};
/// use token_provider_oauth2::{OAuthCode, OAuthError};
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
    #[token(code)]
    pub error: OAuthCode,
    /// The human-readable description.
    #[token(message)]
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
