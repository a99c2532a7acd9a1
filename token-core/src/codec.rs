//! The codec traits `#[token_endpoint]` implements, and the one driver that turns an HTTP
//! answer into a `TokenSet` or a classified error.
//!
//! Codecs do no I/O: they map between endpoint types and `http::Request<Vec<u8>>` /
//! `http::Response<Vec<u8>>`, in both directions, so the client and the server side (the
//! issuer, the sandbox, an Alipay+ MPP) share one definition.

use std::any::Any;
use std::time::Duration;

use http::{HeaderMap, StatusCode};
use time::OffsetDateTime;

use crate::error::{EndpointError, ErrorKind, ProviderError};

use crate::macro_support::{At, RequestReader, RequestWriter};
/// The traits the types of annotated fields implement; a diagnostic names the one a field's
/// type misses. Implemented for the types the `#[token_endpoint]` docs list (and by the
/// macro for error-code enums); implement them for a type of your own to use it in that
/// role.
pub use crate::macro_support::{
    DeclaredExtras, ErrorCode, ExpiryField, ExtrasSlot, SessionExtras, StatusField, TextSlot,
    TextValue,
};
use crate::secret::{AccessToken, AuthCode, ClientSecret, RefreshToken};
use crate::sign::{RequestSignature, SignatureError};
use crate::token_set::{Extras, TokenSet};

/// Where the values of a client-side request come from: the provider config, the session's
/// current secrets and typed extras, values the provider adds by name, and the time.
///
/// ```
/// use time::macros::datetime;
/// use token_core::{secret::AccessToken, secret::RefreshToken, codec::RequestContext, token_set::TokenSet};
///
/// let session: TokenSet = TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"));
/// let app = AccessToken::new("app");
/// let cx = RequestContext::for_refresh(&(), &session)
///     .with_value("app_token", &app)
///     .with_now(datetime!(2024-01-01 00:00 UTC));
/// assert_eq!(cx.value::<AccessToken>("app_token"), Some(&app));
/// assert_eq!(cx.value::<String>("app_token"), None); // another type
/// assert!(format!("{cx:?}").contains("app_token") && !format!("{cx:?}").contains("\"app\""));
/// ```
#[non_exhaustive]
pub struct RequestContext<'a, C: ?Sized> {
    /// The provider's configuration (base URL, client id, partner id, keys...).
    pub config: &'a C,
    /// The session's current refresh token.
    pub refresh_token: Option<&'a RefreshToken>,
    /// The session's current access token (Paymentsgate sends it on refresh).
    pub access_token: Option<&'a AccessToken>,
    /// An authorization code being exchanged.
    pub auth_code: Option<&'a AuthCode>,
    /// The PKCE code verifier that goes with `auth_code`.
    pub code_verifier: Option<&'a str>,
    /// The current time, from the manager's clock ([`CallContext::now`](crate::provider::CallContext::now)):
    /// what `from = now_unix`, `now_unix_ms` and `now_rfc3339` read.
    pub now: Option<OffsetDateTime>,
    /// The session's typed extras, what `from = extras.field` reads.
    extras: Option<&'a (dyn Any + Send + Sync)>,
    /// Values the provider adds by name (Maya's app token), what `from = value("name")`
    /// reads.
    values: Vec<(&'static str, &'a (dyn Any + Send + Sync))>,
}

impl<C: ?Sized> std::fmt::Debug for RequestContext<'_, C> {
    /// Names only: every value here may be a secret.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let names: Vec<&str> = self.values.iter().map(|(name, _)| *name).collect();
        f.debug_struct("RequestContext")
            .field("refresh_token", &self.refresh_token)
            .field("access_token", &self.access_token)
            .field("auth_code", &self.auth_code)
            .field("code_verifier", &self.code_verifier.map(|_| "[redacted]"))
            .field("now", &self.now)
            .field("extras", &self.extras.is_some())
            .field("values", &names)
            .finish_non_exhaustive()
    }
}

impl<'a, C: ?Sized> RequestContext<'a, C> {
    /// A context with only the config.
    pub fn new(config: &'a C) -> Self {
        Self {
            config,
            refresh_token: None,
            access_token: None,
            auth_code: None,
            code_verifier: None,
            now: None,
            extras: None,
            values: Vec::new(),
        }
    }

    /// A context for refreshing `set`: its refresh and access tokens, and its extras. An
    /// empty access token is none: the one of a session that has no access token yet (as
    /// `insert_refresh_token` stores it) or whose token was set aside as unusable, so a
    /// request sending the current access token on refresh sends none (an `Option` field
    /// is left out, a required one is an [`EndpointError::Encode`] saying the session has
    /// none) rather than an empty bearer.
    pub fn for_refresh<X: Extras>(config: &'a C, set: &'a TokenSet<X>) -> Self {
        Self {
            refresh_token: set.refresh_token.as_ref(),
            access_token: Some(&set.access_token).filter(|t| !t.expose_secret().is_empty()),
            extras: Some(&set.extras),
            ..Self::new(config)
        }
    }

    /// Sets the current time (pass [`CallContext::now`](crate::provider::CallContext::now), so tests
    /// control it).
    pub fn with_now(mut self, now: OffsetDateTime) -> Self {
        self.now = Some(now);
        self
    }

    /// Adds a value the provider's requests read with `from = value("name")`.
    pub fn with_value<T: Any + Send + Sync>(mut self, name: &'static str, value: &'a T) -> Self {
        self.values.push((name, value));
        self
    }

    /// The value added under `name`, if it is a `T`.
    pub fn value<T: Any>(&self, name: &str) -> Option<&'a T> {
        self.values
            .iter()
            .rev()
            .find(|(n, _)| *n == name)
            .and_then(|(_, value)| (*value as &dyn Any).downcast_ref())
    }

    /// Whether a value was added under `name`, whatever its type.
    pub(crate) fn has_value(&self, name: &str) -> bool {
        self.values.iter().any(|(n, _)| *n == name)
    }

    /// Whether the context holds the session's extras, whatever their type.
    pub(crate) fn has_extras(&self) -> bool {
        self.extras.is_some()
    }

    /// The session's extras, if they are an `X`.
    pub fn extras<X: Any>(&self) -> Option<&'a X> {
        self.extras
            .and_then(|extras| (extras as &dyn Any).downcast_ref())
    }

    /// Sets the authorization code (and PKCE verifier).
    pub fn with_auth_code(mut self, code: &'a AuthCode, verifier: Option<&'a str>) -> Self {
        self.auth_code = Some(code);
        self.code_verifier = verifier;
        self
    }

    /// The refresh token, or an error saying the session has none.
    pub fn refresh_token(&self) -> Result<&'a RefreshToken, EndpointError> {
        self.refresh_token.ok_or_else(|| missing("refresh token"))
    }

    /// The access token, or an error saying the session has none.
    pub fn access_token(&self) -> Result<&'a AccessToken, EndpointError> {
        self.access_token.ok_or_else(|| missing("access token"))
    }

    /// The authorization code, or an error saying none was given.
    pub fn auth_code(&self) -> Result<&'a AuthCode, EndpointError> {
        self.auth_code.ok_or_else(|| missing("authorization code"))
    }
}

fn missing(what: &str) -> EndpointError {
    EndpointError::Encode(format!(
        "the request needs a {what} and the session has none"
    ))
}

/// Builds a request from a [`RequestContext`].
pub trait FromContext<C: ?Sized>: Sized {
    /// Builds the request.
    fn from_context(cx: &RequestContext<'_, C>) -> Result<Self, EndpointError>;
}

/// A group of request fields declared once, `#[token_endpoint(fields, ...)]`, and written
/// into each request that flattens it, `#[token(flatten)]`: the group's fields go where they
/// would go as the request's own, at the `flatten` field's position, and are read back,
/// scrubbed, signed and filled from the context with the request's. See
/// [`token_endpoint`](crate::token_endpoint#field-groups).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a field group",
    label = "the `flatten` field's type",
    note = "a flattened field's type is a struct annotated `#[token_endpoint(fields, ...)]`"
)]
pub trait FieldGroup: Sized {
    /// Where each field goes, so that a request flattening the group checks at compile time
    /// that none of its own fields goes to the same place.
    #[doc(hidden)]
    const WIRES: &'static [(At, &'static str)];

    /// Client side: writes the fields into the request being encoded.
    #[doc(hidden)]
    fn write_fields(&self, writer: &mut RequestWriter);

    /// Server side: reads the fields back from a request.
    #[doc(hidden)]
    fn read_fields(reader: &RequestReader<'_>) -> Result<Self, RequestError>;

    /// The raw secrets the group carries, as [`Endpoint::secrets`] lists a request's.
    fn secrets(&self) -> Vec<&str>;

    /// The group filled from `cx`, by its [`FromContext`].
    #[doc(hidden)]
    fn from_context<C: ?Sized>(cx: &RequestContext<'_, C>) -> Result<Self, EndpointError>
    where
        Self: FromContext<C>,
    {
        <Self as FromContext<C>>::from_context(cx)
    }
}

/// The type of a success answer's access-token field (`#[token(access_token)]`, or a field of
/// a type named `AccessToken`): [`AccessToken`], which redacts itself in `Debug`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an access token",
    label = "the access-token field's type",
    note = "write `AccessToken` (`token_core::secret::AccessToken`): it redacts itself in `Debug`"
)]
pub trait AccessTokenField {
    /// The token the field holds.
    fn into_token(self) -> AccessToken;
    /// The field holding `token` (server side).
    fn from_token(token: &AccessToken) -> Self;
}

impl AccessTokenField for AccessToken {
    fn into_token(self) -> AccessToken {
        self
    }
    fn from_token(token: &AccessToken) -> Self {
        token.clone()
    }
}

/// The key of a request's declared signature: the type of its `#[token(signing_key)]`
/// field.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a signing key",
    label = "the `signing_key` field's type",
    note = "a signing key is a `ClientSecret`: the HMAC secret, or the PKCS#8 RSA private key (PEM or Base64 DER)"
)]
pub trait SigningKey {
    /// The key the client signs with.
    fn key(&self) -> &ClientSecret;
    /// The server side's key, which the decoded request holds.
    fn from_key(key: &ClientSecret) -> Self;
}

impl SigningKey for ClientSecret {
    fn key(&self) -> &ClientSecret {
        self
    }
    fn from_key(key: &ClientSecret) -> Self {
        key.clone()
    }
}

/// The type of a request field declared `#[token(client_id)]`: text that names the client
/// to the provider, never a secret (a store key and log lines show it), so the secret
/// types do not implement it. [`RefreshEndpoint::client_id`](crate::provider::RefreshEndpoint::client_id)
/// is the field's value as this text.
///
/// ```
/// use token_core::codec::ClientId;
/// assert_eq!("wx-app-1".to_owned().client_id(), Some("wx-app-1".to_owned()));
/// assert_eq!(7_u32.client_id(), Some("7".to_owned()));
/// assert_eq!(None::<String>.client_id(), None);
/// ```
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot name the client",
    label = "the `client_id` field's type",
    note = "a client id is text or a number (`String`, `u64`...), never a secret: a store key and log lines show it"
)]
pub trait ClientId {
    /// The client's id as text; `None` for an absent one.
    fn client_id(&self) -> Option<String>;
}

impl<T: ClientId + ?Sized> ClientId for &T {
    fn client_id(&self) -> Option<String> {
        (**self).client_id()
    }
}

impl<T: ClientId> ClientId for Option<T> {
    fn client_id(&self) -> Option<String> {
        self.as_ref().and_then(ClientId::client_id)
    }
}

macro_rules! client_id_as_text {
    ($($ty:ty),*) => {$(
        impl ClientId for $ty {
            fn client_id(&self) -> Option<String> {
                Some(self.to_string())
            }
        }
    )*};
}

client_id_as_text!(
    str,
    String,
    Box<str>,
    std::sync::Arc<str>,
    std::borrow::Cow<'_, str>,
    u8,
    u16,
    u32,
    u64,
    u128,
    usize,
    i8,
    i16,
    i32,
    i64,
    i128,
    isize,
    uuid::Uuid
);

/// A failure to read a request on the server side; answered with the provider's own
/// "invalid request" error.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("invalid request: {0}")]
pub struct RequestError(pub String);

/// A failure to read a signed request on the server side
/// ([`Endpoint::decode_signed_request`]).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignedRequestError {
    /// The request could not be read (a missing field, a wrong constant): answered with the
    /// provider's "invalid request" error.
    #[error(transparent)]
    Invalid(#[from] RequestError),
    /// The signature is missing or wrong: answered with the provider's "bad signature"
    /// error.
    #[error(transparent)]
    BadSignature(#[from] SignatureError),
}

/// One endpoint: a request type tied to its token answer and error answer.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a token endpoint",
    note = "annotate the request struct with `#[token_endpoint(post = \"/path\", response = ..., error = ...)]`"
)]
pub trait Endpoint: Sized {
    /// The success answer.
    type Response: TokenResponse;
    /// The error answer.
    type Error: ErrorResponse;
    /// The HTTP method.
    const METHOD: http::Method;
    /// The path, relative to the provider's base URL.
    const PATH: &'static str;
    /// The request's declared signature (`sign(...)`), which
    /// [`encode_request`](Self::encode_request) adds and
    /// [`decode_signed_request`](Self::decode_signed_request) checks.
    const SIGNATURE: Option<RequestSignature> = None;

    /// Client side: encodes the request against `base_url`.
    fn encode_request(&self, base_url: &url::Url) -> Result<http::Request<Vec<u8>>, EndpointError>;

    /// Server side: decodes a request the client encoded. A signed request is refused here,
    /// since checking it needs its key: decode it with
    /// [`decode_signed_request`](Self::decode_signed_request). A header, form or query
    /// parameter sent twice, a JSON body whose objects name a key twice, or a body not
    /// declared in the endpoint's format (`Content-Type: application/json` for JSON,
    /// `application/x-www-form-urlencoded` for a form) is a malformed request.
    fn decode_request(request: &http::Request<Vec<u8>>) -> Result<Self, RequestError>;

    /// Server side: checks the request's declared signature with `key` (the shared secret
    /// for HMAC, the client's public key for RSA), in constant time, then decodes it; the
    /// `signing_key` field holds `key`. A request with no declared signature is decoded as
    /// by [`decode_request`](Self::decode_request).
    fn decode_signed_request(
        request: &http::Request<Vec<u8>>,
        key: &crate::secret::ClientSecret,
    ) -> Result<Self, SignedRequestError> {
        let _ = key;
        Ok(Self::decode_request(request)?)
    }

    /// The raw secrets this request carries, so an error body echoing one can be scrubbed.
    fn secrets(&self) -> Vec<&str> {
        Vec::new()
    }
}

/// The success answer of an endpoint.
pub trait TokenResponse: Sized {
    /// The typed extras the answer carries.
    type Extras: Extras;

    /// The dotted paths, from the top of the answer, of every field this answer declares
    /// (`data.access_token` under an envelope, constants such as `code`). A request checks at
    /// compile time that none of them is its error's code field unless that error tells a
    /// success code from an error code.
    const ANSWER_PATHS: &'static [&'static str] = &[];

    /// The fields the extras type adds to the answer when the response flattens it (a field
    /// `#[token(extras)]`, or of the `extras = Type`): the envelope they sit under, if any,
    /// and their names ([`KeepExtras::WIRE_NAMES`](crate::provider::KeepExtras::WIRE_NAMES)).
    /// Checked with [`ANSWER_PATHS`](Self::ANSWER_PATHS), since a success answer carries
    /// them as it carries the response's own fields.
    const EXTRAS_PATHS: (Option<&'static str>, &'static [&'static str]) = (None, &[]);

    /// Reads the answer body (JSON, whatever its content type).
    fn decode_body(body: &[u8]) -> Result<Self, String>;
    /// Writes the answer body (server side).
    fn encode_body(&self) -> Vec<u8>;
    /// Converts to a token set, expiry made absolute against `now`.
    fn into_token_set(self, now: OffsetDateTime) -> Result<TokenSet<Self::Extras>, String>;
    /// Converts from a token set, expiry made relative to `now` where the format needs it
    /// (server side).
    fn from_token_set(set: &TokenSet<Self::Extras>, now: OffsetDateTime) -> Self;
}

/// The error answer of an endpoint, and how each of its codes is classified.
pub trait ErrorResponse: Sized {
    /// The dotted path of the field holding the provider's code (`errcode`,
    /// `result.resultCode`), if the answer has one.
    const CODE_PATH: Option<&'static str> = None;
    /// Whether the answer tells a success from an error by its content (a result status, or
    /// declared success codes), so that a success answer carrying the code field is not
    /// read as an error.
    const SUCCESS_RULE: bool = false;
    /// The kind each declared status means (`on_status(status = 401, kind = ...)`): for an
    /// answer carrying this error's code when the code decides none, and for a refusal whose
    /// body is not this error at all (no code field, an empty or HTML body), which
    /// [`decode_response`] classifies by this table before the status's default, but for
    /// `ReauthRequired`: only the provider's own error can say that a session is dead.
    const ON_STATUS: &'static [(u16, ErrorKind)] = &[];

    /// Reads an error answer; `None` when the body is not one. Called for every status,
    /// because some providers answer errors with 200 (a result envelope, an RFC 6749 error).
    fn decode_error(status: StatusCode, body: &[u8]) -> Option<Self>;
    /// The provider's code.
    fn code(&self) -> String;
    /// The provider's message.
    fn message(&self) -> Option<String>;
    /// The provider's id of the request, when its answer gives one (Lazada's `request_id`):
    /// what its support asks for. `None` unless a field takes the `request_id` role.
    fn request_id(&self) -> Option<String> {
        None
    }
    /// The wait this answer's code asks for before another call (an error-code variant's
    /// `retry_after = 60`), when the answer sends no `Retry-After` header.
    fn retry_after(&self) -> Option<std::time::Duration> {
        None
    }
    /// The classification of this answer arriving with `status`.
    fn kind(&self, status: StatusCode) -> ErrorKind;
    /// Writes the answer (server side): status and body.
    fn encode_error(&self) -> (StatusCode, Vec<u8>);
    /// This error as the provider answers a standard refusal (server side: what a sandbox
    /// sends), worded `message`. `#[token_endpoint]` derives it from the refusals the
    /// error-code variants (or the error struct) declare.
    fn from_refusal(reason: RefusalReason, message: &str) -> Self;
}

/// A standard reason a server refuses a request. An error-code variant declares the ones it
/// answers (`#[token(refusal = invalid_refresh_token)]`), so a sandbox serving the endpoint
/// answers each in the provider's own words ([`ErrorResponse::from_refusal`]).
///
/// ```
/// use token_core::codec::RefusalReason;
///
/// assert_eq!(RefusalReason::ExpiredRefreshToken.name(), "expired_refresh_token");
/// // Declared nowhere, an expired refresh token is answered as an invalid one.
/// assert_eq!(RefusalReason::ExpiredRefreshToken.fallback(), Some(RefusalReason::InvalidRefreshToken));
/// assert_eq!(RefusalReason::ServerError.status(), 500);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum RefusalReason {
    /// `bad_request`: the request could not be read (a missing field, a wrong constant).
    BadRequest,
    /// `unknown_client`: the client (app id, account, merchant, client credentials) is not
    /// known.
    UnknownClient,
    /// `bad_signature`: the request's signature does not verify.
    BadSignature,
    /// `invalid_refresh_token`: the refresh token is unknown, revoked or already used.
    InvalidRefreshToken,
    /// `expired_refresh_token`: the refresh token has expired.
    ExpiredRefreshToken,
    /// `invalid_access_token`: an access token the request carries (an app token) is
    /// invalid or expired.
    InvalidAccessToken,
    /// `invalid_auth_code`: the authorization code (or its PKCE verifier, or redirect URI)
    /// is invalid or used.
    InvalidAuthCode,
    /// `server_error`: the server failed (its store).
    ServerError,
}

impl RefusalReason {
    /// Every reason, in declaration order.
    pub const ALL: [RefusalReason; 8] = [
        Self::BadRequest,
        Self::UnknownClient,
        Self::BadSignature,
        Self::InvalidRefreshToken,
        Self::ExpiredRefreshToken,
        Self::InvalidAccessToken,
        Self::InvalidAuthCode,
        Self::ServerError,
    ];

    /// The name a declaration uses (`invalid_refresh_token`).
    pub fn name(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownClient => "unknown_client",
            Self::BadSignature => "bad_signature",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::ExpiredRefreshToken => "expired_refresh_token",
            Self::InvalidAccessToken => "invalid_access_token",
            Self::InvalidAuthCode => "invalid_auth_code",
            Self::ServerError => "server_error",
        }
    }

    /// The reason answered instead when an error declares none for this one: an expired
    /// refresh token and an invalid authorization code are, like RFC 6749's `invalid_grant`,
    /// a dead grant (`invalid_refresh_token`).
    pub fn fallback(self) -> Option<RefusalReason> {
        match self {
            Self::ExpiredRefreshToken | Self::InvalidAuthCode => Some(Self::InvalidRefreshToken),
            _ => None,
        }
    }

    /// The HTTP status of an answer that declares none: 500 for `server_error`, 401 for
    /// `unknown_client`, `bad_signature` and `invalid_access_token`, else 400.
    pub fn status(self) -> u16 {
        match self {
            Self::ServerError => 500,
            Self::UnknownClient | Self::BadSignature | Self::InvalidAccessToken => 401,
            _ => 400,
        }
    }
}

impl std::fmt::Display for RefusalReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Client side: turns an HTTP answer into a token set or a classified error.
///
/// An error body the endpoint recognises wins, whatever the status but a redirect's (3xx: a
/// refusal, `Rejected`, whatever its body says); on a 2xx that also carries an access token
/// (a new pair beside an error code: the provider may have rotated) it is `OutcomeUnknown`
/// unless `Transient`, never a verdict; then 5xx, 429, 408 and 425 are
/// transient (with `Retry-After`), any other non-2xx is classified by the kind its error
/// declares for that status ([`ErrorResponse::ON_STATUS`]) unless that is re-auth (a body
/// that is not the provider's error is no verdict on the token), else by its status, and a 2xx
/// that cannot be read is `OutcomeUnknown` (the provider may already have rotated). So is a
/// 2xx whose access token is empty (or blank), or contains an ASCII control character (CR,
/// LF, NUL...: it cannot be sent in a header), and that carries no refresh token. With a
/// refresh token, such an answer is returned (a blank access token as the empty one): the
/// refresh token must not be lost (the provider may have spent the one presented), and the
/// manager keeps it and never serves the access token. A refresh token may hold control characters: it
/// travels in a body or a query, escaped. An empty refresh token is read as none (the
/// previous one is kept). Every provider-supplied text in an error is
/// scrubbed of `known_secrets`, whole or in part (see [`crate::redact::scrub_secrets`]).
pub fn decode_response<E: Endpoint>(
    response: &http::Response<Vec<u8>>,
    now: OffsetDateTime,
    known_secrets: &[&str],
) -> Result<TokenSet<<E::Response as TokenResponse>::Extras>, EndpointError> {
    let status = response.status();
    let body = response.body();
    let retry_after = retry_after(response.headers(), now);
    // A redirect is no answer (the token calls follow none): whatever its body says, it is
    // not the provider's verdict on the request.
    let error = if status.is_redirection() {
        None
    } else {
        E::Error::decode_error(status, body)
    };
    if let Some(error) = error {
        // The endpoint's own reading of its error, then the rules every answer obeys.
        let mut kind = classify_answer(status, None, Some(error.kind(status)), &[]);
        // A 2xx that carries a new pair beside its error code contradicts itself: the
        // provider may have rotated to that pair, so the answer is no verdict (a dead grant
        // would drop the session with the pair in hand); it is asked again inside the reuse
        // window, as a lost answer is.
        let pair = status
            .is_success()
            .then(|| carried_pair::<E>(body, now))
            .flatten();
        if pair.is_some() && kind != ErrorKind::Transient {
            kind = ErrorKind::OutcomeUnknown;
        }
        // Both are the provider's text and may echo a secret of the request, whole or in
        // part, or one of the pair the answer carries.
        let mut secrets = known_secrets.to_vec();
        if let Some(set) = &pair {
            secrets.push(set.access_token.expose_secret());
            secrets.extend(set.refresh_token.as_ref().map(RefreshToken::expose_secret));
        }
        let message = error
            .message()
            .map(|m| crate::redact::scrub_body(m.as_bytes(), &secrets));
        // Cut as the message is: an error is kept per session, per name without tokens and
        // per event for a while, and the provider's text must not make that megabytes.
        let request_id = error
            .request_id()
            .map(|id| crate::redact::scrub_bounded(&id, &secrets));
        return Err(ProviderError {
            kind,
            status,
            code: crate::redact::scrub_bounded(&error.code(), &secrets),
            message,
            request_id,
            retry_after: retry_after.or_else(|| error.retry_after()),
        }
        .into());
    }
    if !status.is_success() {
        // A body that is not the declared error (no code field: a gateway's page, a
        // framework's default refusal) still has the status the endpoint declares a kind for,
        // but for re-auth: such a body is no verdict on the refresh token. A gateway or proxy
        // in front of a provider whose 401 error means a dead token would otherwise declare
        // every session dead (its own 401 for a wrong merchant id, a login page).
        let kind = classify_answer(status, None, None, E::Error::ON_STATUS);
        let declared = kind != ErrorKind::ReauthRequired
            && (E::Error::ON_STATUS.iter()).any(|(s, _)| *s == status.as_u16());
        if kind == ErrorKind::Transient || declared {
            return Err(
                ProviderError::new(kind, status, status.as_u16().to_string())
                    .with_message(crate::redact::scrub_body(body, known_secrets))
                    .with_retry_after(retry_after)
                    .into(),
            );
        }
        return Err(EndpointError::parse(
            status,
            "unexpected HTTP status",
            body,
            known_secrets,
        ));
    }
    let decoded = E::Response::decode_body(body)
        .map_err(|reason| EndpointError::parse(status, reason, body, known_secrets))?;
    let mut set = decoded
        .into_token_set(now)
        .map_err(|reason| EndpointError::parse(status, reason, body, known_secrets))?;
    // An empty refresh token is no refresh token: the previous one is kept, as when the
    // field is absent, instead of being replaced by one that can never refresh.
    if set
        .refresh_token
        .as_ref()
        .is_some_and(|t| t.expose_secret().trim().is_empty())
    {
        set.refresh_token = None;
    }
    if set.access_token.expose_secret().trim().is_empty() {
        if set.refresh_token.is_none() {
            return Err(EndpointError::parse(
                status,
                EMPTY_ACCESS,
                body,
                known_secrets,
            ));
        }
        // Beside a new refresh token, as one that cannot be sent (below): the refresh token
        // must not be lost (the one presented may be spent); the manager sets the access
        // token aside, never serving it. A blank one is the empty one it stands for.
        set.access_token = AccessToken::new("");
    }
    // An access token that cannot travel in a header would be cached and fail every API
    // call; with no refresh token beside it, the answer holds nothing to keep.
    if set.refresh_token.is_none() && unsendable(set.access_token.expose_secret()) {
        let mut secrets = known_secrets.to_vec();
        secrets.push(set.access_token.expose_secret());
        return Err(EndpointError::parse(
            status,
            UNSENDABLE_ACCESS,
            body,
            &secrets,
        ));
    }
    Ok(set)
}

/// The pair `body` carries if it also reads as the endpoint's success answer with an
/// access token.
fn carried_pair<E: Endpoint>(
    body: &[u8],
    now: OffsetDateTime,
) -> Option<TokenSet<<E::Response as TokenResponse>::Extras>> {
    E::Response::decode_body(body)
        .and_then(|answer| answer.into_token_set(now))
        .ok()
        .filter(|set| !set.access_token.expose_secret().trim().is_empty())
}

/// What an error says of an access token that cannot be sent (never the value).
pub(crate) const UNSENDABLE_ACCESS: &str = "the access token contains a control character";

/// Whether an access token cannot travel in a header: it holds an ASCII control character
/// (CR, LF, NUL, DEL...). The one rule for a declared answer ([`decode_response`]), a
/// hand-written provider's set, an inserted one and a stored one. Only the access token is
/// held to it: it goes in `Authorization`. A refresh token travels in a form or JSON body,
/// or a query, each escaped (a request that puts one in a header fails to encode, a typed
/// `EndpointError::Encode`, and the token is kept).
pub(crate) fn unsendable(token: &str) -> bool {
    // Every byte looked at, without stopping at the first control character: the compiler
    // then compares 16 or 32 bytes at a time (an `insert` checks each access token).
    (token.bytes()).fold(false, |found, b| found | (b < 0x20) | (b == 0x7f))
}

/// What an error says of an empty access token (an empty bearer is no credential).
pub(crate) const EMPTY_ACCESS: &str = "the access token is empty";

/// Why an access token cannot be served, never its value: it is empty or blank (no bearer
/// to send, as [`decode_response`] reads a blank one), or it cannot travel in a header
/// ([`unsendable`]). `None` for one that can be served.
pub(crate) fn unusable_access(token: &str) -> Option<&'static str> {
    if token.trim().is_empty() {
        Some(EMPTY_ACCESS)
    } else if unsendable(token) {
        Some(UNSENDABLE_ACCESS)
    } else {
        None
    }
}

/// Sets aside an access token of `set` that cannot be served ([`unusable_access`]): it
/// becomes the empty one of a session that has no access token yet (as
/// `insert_refresh_token` stores), expired since the Unix epoch, so it is never served and
/// the next call refreshes with the set's refresh token (a provider that sends the current
/// access token on refresh sends none). Returns why, if it did.
pub(crate) fn set_aside_unusable_access<X>(set: &mut TokenSet<X>) -> Option<&'static str> {
    let why = unusable_access(set.access_token.expose_secret())?;
    set.access_token = crate::secret::AccessToken::new("");
    set.access_expires_at = Some(OffsetDateTime::UNIX_EPOCH);
    Some(why)
}

/// The kind of an error answer: the one place where an answer's status, its result
/// envelope and its provider code decide what the manager does (the generated error codecs
/// and [`decode_response`] both call it). In order:
///
/// 1. a result envelope's `U` (or a code that means "unknown outcome"): `OutcomeUnknown`;
/// 2. 5xx, 429, 408 and 425: `Transient`, whatever code the body carries (a server failure,
///    a throttled request, one the server timed out reading or would not risk replaying, is
///    not a verdict on the token);
/// 3. the provider code's own kind (`invalid_grant`: `ReauthRequired`);
/// 4. the endpoint's declared kind for this status;
/// 5. an error on a 2xx: `Rejected`; otherwise the status's default
///    ([`ErrorKind::from_status`]).
///
/// What the manager then does with the kind (retry, issue anew, give up, inside or outside
/// the reuse window) is decided by one pure function as well, in the manager's retry module.
pub fn classify_answer(
    status: StatusCode,
    result_status: Option<&str>,
    code_kind: Option<ErrorKind>,
    on_status: &[(u16, ErrorKind)],
) -> ErrorKind {
    if result_status.is_some_and(|s| s.trim().eq_ignore_ascii_case("U"))
        || code_kind == Some(ErrorKind::OutcomeUnknown)
    {
        return ErrorKind::OutcomeUnknown;
    }
    if ErrorKind::from_status(status) == ErrorKind::Transient {
        return ErrorKind::Transient;
    }
    if let Some(kind) = code_kind {
        return kind;
    }
    if let Some((_, kind)) = on_status.iter().find(|(s, _)| *s == status.as_u16()) {
        return *kind;
    }
    if status.is_success() {
        ErrorKind::Rejected
    } else {
        ErrorKind::from_status(status)
    }
}

/// Server side: whether a JSON body (a byte-order mark skipped) repeats a key in any of its
/// objects, which [`TokenResponse::decode_body`] reads as its last value: a server taking
/// tokens in a request body refuses such a body, whose reader cannot know which value the
/// sender meant (a proxy or a log may keep the other). A body that is not JSON is not
/// answered here: its decode fails anyway.
///
/// ```
/// use token_core::codec::repeats_a_key;
/// assert!(repeats_a_key(br#"{"refreshToken":"rt-1","refreshToken":"rt-2"}"#));
/// assert!(repeats_a_key(br#"{"a":{"b":1,"b":2}}"#));
/// assert!(!repeats_a_key(br#"{"a":{"b":1},"b":[{"b":2}]}"#));
/// assert!(!repeats_a_key(b"not json"));
/// ```
pub fn repeats_a_key(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    crate::macro_support::repeats_a_key(body)
}

/// The URL of `path` (which may carry a query of its own) under `base_url`: after the
/// base's own path, the base's own query (a gateway's `?api-version=2`) kept as the query,
/// first, and its fragment dropped (appended to the whole base URL, the path would land
/// inside its query). Where a declared endpoint is sent; a hand-written provider's other
/// URLs under the same base (an authorize page) are made the same way.
///
/// ```
/// use token_core::codec::endpoint_url;
/// let base = "https://gw.example/v1/?api-version=2#top".parse()?;
/// assert_eq!(
///     endpoint_url(&base, "/oauth/token")?.as_str(),
///     "https://gw.example/v1/oauth/token?api-version=2"
/// );
/// # Ok::<(), url::ParseError>(())
/// ```
pub fn endpoint_url(base_url: &url::Url, path: &str) -> Result<url::Url, url::ParseError> {
    let mut base = base_url.clone();
    let base_query = base.query().filter(|q| !q.is_empty()).map(str::to_owned);
    base.set_query(None);
    base.set_fragment(None);
    let mut url = url::Url::parse(&format!("{}{path}", base.as_str().trim_end_matches('/')))?;
    if let Some(base_query) = base_query {
        let query = match url.query() {
            Some(own) if !own.is_empty() => format!("{base_query}&{own}"),
            _ => base_query,
        };
        url.set_query(Some(&query));
    }
    Ok(url)
}

/// Server side: encodes a success answer.
pub fn encode_response<R: TokenResponse>(response: &R) -> http::Response<Vec<u8>> {
    json_response(StatusCode::OK, response.encode_body())
}

/// Server side: encodes an error answer.
pub fn encode_error<R: ErrorResponse>(error: &R) -> http::Response<Vec<u8>> {
    let (status, body) = error.encode_error();
    json_response(status, body)
}

fn json_response(status: StatusCode, body: Vec<u8>) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    response
}

/// The longest `Retry-After` honoured: one day. A longer one (`18446744073709551615`) is
/// read as this, so that adding it to any instant cannot overflow.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(24 * 60 * 60);

/// Reads `Retry-After` as seconds or an HTTP date, at most [`MAX_RETRY_AFTER`].
pub fn retry_after(headers: &HeaderMap, now: OffsetDateTime) -> Option<Duration> {
    let value = headers
        .get(http::header::RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        // Too many digits for a `u64` is still a (very long) delay.
        let secs = value.parse::<u64>().unwrap_or(u64::MAX);
        return Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    let at = OffsetDateTime::from(at);
    let delay = Duration::try_from(at - now).unwrap_or(Duration::ZERO);
    Some(delay.min(MAX_RETRY_AFTER))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unsendable_is_a_control_character_anywhere() {
        let clean = "at-0123456789abcdef0123456789abcdef0123456789";
        assert!(!unsendable(clean) && !unsendable("") && !unsendable("é€ ~"));
        for c in (0u8..=0x7f)
            .map(char::from)
            .chain(['\u{80}', '\u{9f}', 'é'])
        {
            for at in [0, 1, 15, 16, 31, 32, clean.len()] {
                let mut token = clean.to_owned();
                token.insert(at, c);
                assert_eq!(unsendable(&token), c.is_ascii_control(), "{:?} at {at}", c);
            }
        }
    }

    /// A provider's error code is its text as much as its message: a code of a megabyte
    /// (the transport's limit) is kept as long as the message is, not whole. The error is
    /// kept for a while per session, per name without tokens (a thousand of them for a
    /// provider that issues its own), per event in the subscribers' ring and in a re-auth
    /// verdict in the store: whole, a hostile or broken provider could make that gigabytes.
    #[test]
    fn a_providers_error_code_is_kept_as_bounded_as_its_message() {
        let now = time::macros::datetime!(2026-01-01 00:00 UTC);
        let huge = "x".repeat(crate::transport::DEFAULT_MAX_BODY / 2 - 64);
        let body = format!(r#"{{"error":"{huge}","error_description":"{huge}"}}"#);
        let mut answer = http::Response::new(body.into_bytes());
        *answer.status_mut() = StatusCode::BAD_REQUEST;
        let error =
            decode_response::<crate::oauth::RefreshTokenGrant>(&answer, now, &[]).unwrap_err();
        let EndpointError::Provider(error) = error else {
            panic!("{error:?}");
        };
        let message = error.message.as_deref().unwrap_or_default();
        assert!(
            message.len() <= crate::redact::MAX_KEPT_BODY + 3,
            "{}",
            message.len()
        );
        assert!(
            error.code.len() <= crate::redact::MAX_KEPT_BODY + 3,
            "a code of {} bytes kept",
            error.code.len()
        );
        assert!(error.code.starts_with("xxxx"));
        assert_eq!(error.kind, ErrorKind::Rejected);
    }

    #[test]
    fn the_classification_table() {
        use ErrorKind::*;
        let declared = [(401, ReauthRequired), (403, Misconfigured)];
        // (status, result status, code's kind, expected)
        let table: &[(u16, Option<&str>, Option<ErrorKind>, ErrorKind)] = &[
            (200, Some("U"), None, OutcomeUnknown),
            (200, Some(" u "), Some(ReauthRequired), OutcomeUnknown),
            (503, Some("U"), None, OutcomeUnknown),
            (503, None, Some(OutcomeUnknown), OutcomeUnknown),
            (503, None, Some(ReauthRequired), Transient),
            (500, None, None, Transient),
            (429, None, Some(Rejected), Transient),
            (400, None, Some(ReauthRequired), ReauthRequired),
            (200, Some("F"), Some(ReauthRequired), ReauthRequired),
            (401, None, None, ReauthRequired),
            (403, None, None, Misconfigured),
            (403, None, Some(Rejected), Rejected),
            (200, Some("F"), None, Rejected),
            (200, None, None, Rejected),
            (400, None, None, Rejected),
            (408, None, None, Transient),
            // A request the server timed out on (408), or would not risk replaying (425),
            // was not read: whatever code comes with it, no verdict on the token.
            (408, None, Some(ReauthRequired), Transient),
            (425, None, Some(ReauthRequired), Transient),
            (425, Some("U"), None, OutcomeUnknown),
        ];
        for &(status, result, code, expected) in table {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                classify_answer(status, result, code, &declared),
                expected,
                "{status} {result:?} {code:?}"
            );
        }
    }
    use time::macros::datetime;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(7)));
        headers.insert(
            http::header::RETRY_AFTER,
            "Thu, 01 Jan 2026 00:00:30 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(30)));
        headers.insert(http::header::RETRY_AFTER, "soon".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
    }

    #[test]
    fn retry_after_is_clamped_to_a_day() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let mut headers = HeaderMap::new();
        for value in [
            "18446744073709551615",
            "340282366920938463463374607431768211456",
            "86401",
            "Fri, 31 Dec 9999 23:59:59 GMT",
        ] {
            headers.insert(http::header::RETRY_AFTER, value.parse().unwrap());
            assert_eq!(retry_after(&headers, now), Some(MAX_RETRY_AFTER), "{value}");
        }
        headers.insert(http::header::RETRY_AFTER, "86400".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(MAX_RETRY_AFTER));
        headers.insert(http::header::RETRY_AFTER, "-5".parse().unwrap());
        assert_eq!(retry_after(&headers, now), None);
        headers.insert(
            http::header::RETRY_AFTER,
            "Thu, 01 Jan 1970 00:00:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&headers, now), Some(Duration::ZERO));
    }

    /// What no sender should write: no panic, no overflow, and either a bounded wait or
    /// none (the backoff's own); of several headers, the first.
    #[test]
    fn an_odd_retry_after_is_bounded_or_ignored() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let ignored = [
            "1.5",
            "+5",
            "5, 7",
            "0x10",
            "1e3",
            "-0",
            "",
            " ",
            "\t",
            "soon",
            "NaN",
            "Thu, 01 Jan 2026 00:00:30",
            "Thu, 32 Jan 2026 00:00:30 GMT",
        ];
        for value in ignored {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::RETRY_AFTER, value.parse().unwrap());
            assert_eq!(retry_after(&headers, now), None, "{value:?}");
        }
        let obs_text = http::HeaderValue::from_bytes("\u{663}".as_bytes()).unwrap();
        let mut headers = HeaderMap::new();
        headers.insert(http::header::RETRY_AFTER, obs_text);
        assert_eq!(retry_after(&headers, now), None);
        let read = [
            (" 7 ", Duration::from_secs(7)),
            ("007", Duration::from_secs(7)),
            ("0", Duration::ZERO),
            ("Sun, 06 Nov 1994 08:49:37 GMT", Duration::ZERO),
            ("Sunday, 06-Nov-94 08:49:37 GMT", Duration::ZERO),
            ("Sun Nov  6 08:49:37 1994", Duration::ZERO),
            ("Thu, 01 Jan 2026 00:00:30 GMT", Duration::from_secs(30)),
            ("Sat, 01 Jan 2000 00:00:00 GMT", Duration::ZERO),
            ("Fri, 31 Dec 9999 23:59:59 GMT", MAX_RETRY_AFTER),
            (
                "99999999999999999999999999999999999999999999999999",
                MAX_RETRY_AFTER,
            ),
        ];
        for (value, wait) in read {
            let mut headers = HeaderMap::new();
            headers.insert(http::header::RETRY_AFTER, value.parse().unwrap());
            assert_eq!(retry_after(&headers, now), Some(wait), "{value:?}");
        }
        let mut headers = HeaderMap::new();
        headers.append(http::header::RETRY_AFTER, "3".parse().unwrap());
        headers.append(http::header::RETRY_AFTER, "86400".parse().unwrap());
        assert_eq!(retry_after(&headers, now), Some(Duration::from_secs(3)));
    }
}
