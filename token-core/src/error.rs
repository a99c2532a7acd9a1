//! Errors, and the one classification that decides what the manager does with each.
//!
//! Deciding *what kind* of failure something is lives here ([`ErrorKind`]); deciding *when* to
//! retry lives in the manager's backoff policy.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;

/// What a failure means for the session, and so what the manager does with it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum ErrorKind {
    /// The refresh token is invalid or expired: stop, and tell the application, which may
    /// need to send the user through authorization again.
    ReauthRequired,
    /// 5xx, 429, a connection that could not be made: back off and retry.
    Transient,
    /// The request was sent but its answer was lost or unreadable (Alipay+ status `U`): the
    /// provider may have rotated. Retried with the same refresh token only inside the
    /// provider's reuse window.
    OutcomeUnknown,
    /// The client itself is wrong: bad client credentials, signature, configuration.
    Misconfigured,
    /// Any other definitive refusal. Never retried.
    Rejected,
}

impl ErrorKind {
    /// The snake_case name (`reauth_required`).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ReauthRequired => "reauth_required",
            Self::Transient => "transient",
            Self::OutcomeUnknown => "outcome_unknown",
            Self::Misconfigured => "misconfigured",
            Self::Rejected => "rejected",
        }
    }

    /// The kind an HTTP status implies when the body says nothing more useful. A 2xx that
    /// cannot be read, and a 1xx that came as the last answer (a `101` nobody asked for:
    /// the request was sent, and no final answer came), are `OutcomeUnknown`.
    pub fn from_status(status: StatusCode) -> Self {
        match status.as_u16() {
            408 | 425 | 429 => Self::Transient,
            s if s >= 500 => Self::Transient,
            s if (100..300).contains(&s) => Self::OutcomeUnknown,
            _ => Self::Rejected,
        }
    }
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A provider's decoded error answer: its own code and message, classified.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{kind}: provider answered HTTP {status} `{code}`{}{}",
    message.as_deref().map(|m| format!(": {m}")).unwrap_or_default(),
    request_id.as_deref().map(|id| format!(" (request id `{id}`)")).unwrap_or_default()
)]
#[non_exhaustive]
pub struct ProviderError {
    /// What the manager does about it.
    pub kind: ErrorKind,
    /// The HTTP status of the answer (200 for a result envelope).
    pub status: StatusCode,
    /// The provider's own error code (`invalid_grant`, `INVALID_REFRESH_TOKEN`), with any
    /// echo of the request's secrets removed, cut to
    /// [`MAX_KEPT_BODY`](crate::redact::MAX_KEPT_BODY) bytes as the message is.
    pub code: String,
    /// The provider's message, with any secret removed.
    pub message: Option<String>,
    /// The provider's id of the request, when its error answer gives one (an error field
    /// with the `request_id` role, such as Lazada's `request_id`): what its support asks
    /// for, with any secret removed, cut as the code is. `Display` shows it after the
    /// message.
    pub request_id: Option<String>,
    /// How long the provider asked us to wait (`Retry-After`).
    pub retry_after: Option<Duration>,
}

impl ProviderError {
    /// A provider error with no message and no `Retry-After`.
    pub fn new(kind: ErrorKind, status: StatusCode, code: impl Into<String>) -> Self {
        Self {
            kind,
            status,
            code: code.into(),
            message: None,
            request_id: None,
            retry_after: None,
        }
    }

    /// Sets the message.
    pub fn with_message(mut self, message: impl Into<String>) -> Self {
        self.message = Some(message.into());
        self
    }

    /// Sets the provider's id of the request.
    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Sets the `Retry-After` delay.
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }
}

/// A failure of one endpoint call before transport or after it: encoding the request,
/// the provider's error answer, or an answer that could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EndpointError {
    /// The provider answered with an error.
    #[error(transparent)]
    Provider(#[from] ProviderError),
    /// The provider's answer could not be read (malformed JSON, an HTML page, a missing
    /// field, a wrongly typed field). A 2xx we cannot read is `OutcomeUnknown`: the provider
    /// may have rotated. So is one whose access token cannot be sent in a header (a
    /// control character) and that carries no new refresh token; with one, the manager
    /// saves the refresh token, sets the access token aside, and its callers get this
    /// error as `Rejected` (the pair was received: the outcome is known) until the next
    /// refresh, after `failure_cooldown`.
    #[error("{kind}: could not read the provider's answer (HTTP {status}): {reason}")]
    Parse {
        /// What the manager does about it.
        kind: ErrorKind,
        /// The HTTP status of the answer.
        status: StatusCode,
        /// What was wrong.
        reason: String,
        /// The raw body, cut and with secrets removed (see [`crate::redact::scrub_body`];
        /// a 2xx body as [`crate::redact::scrub_answer_body`]).
        body: String,
    },
    /// The request could not be built (a config value that is not a valid header, ...).
    #[error("misconfigured: could not encode the request: {0}")]
    Encode(String),
    /// A signature on the answer did not verify.
    #[error("misconfigured: the answer's signature did not verify: {0}")]
    Signature(String),
}

impl EndpointError {
    /// The classification.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Provider(e) => e.kind,
            Self::Parse { kind, .. } => *kind,
            Self::Encode(_) | Self::Signature(_) => ErrorKind::Misconfigured,
        }
    }

    /// A parse failure classified by the status it came with.
    pub fn parse(
        status: StatusCode,
        reason: impl fmt::Display,
        body: &[u8],
        known_secrets: &[&str],
    ) -> Self {
        Self::Parse {
            kind: ErrorKind::from_status(status),
            status,
            // A decoder's reason may quote a key or value of the answer (serde_json quotes
            // the offending string: a new token, in a success answer).
            reason: crate::redact::scrub_secrets(
                &crate::redact::unquote(&reason.to_string()),
                known_secrets,
            ),
            // A success answer may carry new tokens anywhere in it.
            body: if status.is_success() {
                crate::redact::scrub_answer_body(body, known_secrets)
            } else {
                crate::redact::scrub_body(body, known_secrets)
            },
        }
    }
}

/// A failure to exchange bytes with the provider.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: transport: {message}")]
#[non_exhaustive]
pub struct TransportError {
    /// `Transient` when the request surely never reached the provider (connect refused),
    /// `OutcomeUnknown` once it may have.
    pub kind: ErrorKind,
    /// What happened, without URL or secret.
    pub message: String,
    /// The HTTP status of an answer whose head came but whose body was lost or left unread
    /// ([`body_lost`](Self::body_lost)); `None` otherwise.
    pub status: Option<StatusCode>,
    /// How long such an answer asked to wait (its `Retry-After`, at most
    /// [`MAX_RETRY_AFTER`](crate::codec::MAX_RETRY_AFTER)).
    pub retry_after: Option<Duration>,
}

impl TransportError {
    /// The request never left: safe to retry.
    pub fn not_sent(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::Transient,
            message: message.into(),
            status: None,
            retry_after: None,
        }
    }

    /// The request may have been processed; its answer is lost.
    pub fn answer_lost(message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::OutcomeUnknown,
            message: message.into(),
            status: None,
            retry_after: None,
        }
    }

    /// An answer whose status came but whose body was lost (cut, timed out) or left unread
    /// (too large): classified by its status ([`ErrorKind::from_status`]), never read as a
    /// verdict on the token. The manager takes a 5xx other than 503 so answered, as one
    /// read whole, as perhaps coming after the provider rotated.
    pub fn body_lost(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            kind: ErrorKind::from_status(status),
            message: message.into(),
            status: Some(status),
            retry_after: None,
        }
    }

    /// Sets the wait the answer asked for (`Retry-After`).
    pub fn with_retry_after(mut self, retry_after: Option<Duration>) -> Self {
        self.retry_after = retry_after;
        self
    }

    /// The answer came from another origin than the request's (a redirect the HTTP client
    /// followed): `Misconfigured`, never read as the provider's answer, so never taken for
    /// the provider's verdict on the token. Names the two origins (scheme, host and port:
    /// no path, query or credentials).
    pub fn cross_origin(requested: &url::Origin, answered_by: &url::Origin) -> Self {
        Self {
            kind: ErrorKind::Misconfigured,
            message: format!(
                "the answer came from {} after a redirect from {}; a token call must stay at \
                 its origin, so the answer was not read",
                answered_by.ascii_serialization(),
                requested.ascii_serialization()
            ),
            status: None,
            retry_after: None,
        }
    }
}

/// A token store failed.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StoreError {
    /// Compare-and-swap lost: the record is not at the expected version.
    #[error("store: version conflict (expected {expected:?}, found {found:?})")]
    Conflict {
        /// The version the writer expected (`None`: absent).
        expected: Option<u64>,
        /// The version found (`None`: absent).
        found: Option<u64>,
    },
    /// A stored record could not be read back.
    #[error("store: corrupt record: {0}")]
    Corrupt(String),
    /// The store's location is not private to this process's user, so it was not used: a
    /// directory that others may write to or that another user owns, or a symbolic link
    /// where the store keeps a file. The message says what is wrong and how to fix it.
    #[error("store: unsafe location: {0}")]
    Insecure(String),
    /// The store cannot hold this name (a provider, session or lease holder name: the
    /// `PostgresStore` takes no NUL character, and no provider and session names longer
    /// together than its `MAX_KEY_BYTES`) or this record (larger, or nested deeper, than the
    /// store loads: the manager then saves the set without its extras). Refused before
    /// anything was written, so nothing changed; asking again cannot help (the manager does
    /// not retry it: its [kind](Error::kind) is [`Rejected`](ErrorKind::Rejected)).
    #[error("store: unsupported: {0}")]
    Unsupported(String),
    /// The backend failed (I/O, database unreachable).
    #[error("store: {message}")]
    Backend {
        /// What failed, without secrets.
        message: String,
        /// The underlying error.
        #[source]
        source: Option<Arc<dyn std::error::Error + Send + Sync>>,
    },
}

impl StoreError {
    /// A backend failure wrapping `source`.
    pub fn backend(
        message: impl Into<String>,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        Self::Backend {
            message: message.into(),
            source: Some(Arc::new(source)),
        }
    }
}

/// What the application needs to restore a session that can no longer be refreshed. Its
/// `Debug` shows the authorize URL without its password and query
/// ([`url_shown`](crate::redact::url_shown)).
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Reauth {
    /// The session that needs authorization, as the application named it (`Display` shows
    /// its control characters escaped).
    pub session: String,
    /// The provider's code, when it gave one (`invalid_grant`, `EXPIRED_REFRESH_TOKEN`).
    pub code: Option<String>,
    /// Why, in words, without secrets.
    pub reason: String,
    /// Where to send the user (Maya Connect's authorize URL), when the provider has one.
    pub authorize_url: Option<String>,
}

impl Reauth {
    /// A re-auth signal for `session`.
    pub fn new(session: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            session: session.into(),
            code: None,
            reason: reason.into(),
            authorize_url: None,
        }
    }
}

impl fmt::Debug for Reauth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let authorize_url = (self.authorize_url.as_deref()).map(crate::redact::url_text_shown);
        f.debug_struct("Reauth")
            .field("session", &self.session)
            .field("code", &self.code)
            .field("reason", &self.reason)
            .field("authorize_url", &authorize_url)
            .finish()
    }
}

impl fmt::Display for Reauth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "session `{}` must be authorized again: {}",
            crate::redact::Printable(&self.session),
            self.reason
        )?;
        if let Some(code) = &self.code {
            write!(f, " (`{code}`)")?;
        }
        Ok(())
    }
}

/// Every error the library returns.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// An endpoint call failed: the provider's error, or an unreadable answer.
    #[error(transparent)]
    Endpoint(#[from] EndpointError),
    /// Bytes could not be exchanged with the provider.
    #[error(transparent)]
    Transport(#[from] TransportError),
    /// The session's refresh token is dead; the verdict is recorded in the store.
    #[error("reauth_required: {0}")]
    ReauthRequired(Reauth),
    /// No tokens are stored for the session and the provider cannot obtain any without a user:
    /// a re-auth signal like [`ReauthRequired`](Self::ReauthRequired) (the same
    /// [`reauth`](Self::reauth), with where to send the user), but no refresh token was
    /// refused and nothing is recorded in the store.
    #[error("reauth_required: no tokens for session `{}`", crate::redact::Printable(&.0.session))]
    NoTokens(Reauth),
    /// The token store failed: [`Transient`](ErrorKind::Transient), except a name the
    /// store cannot hold ([`StoreError::Unsupported`], [`Rejected`](ErrorKind::Rejected)).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Retrying stopped at its attempt or time bound; the last failure is inside.
    #[error("gave up after {attempts} attempts: {last}")]
    RetriesExhausted {
        /// How many calls were made.
        attempts: u32,
        /// The last failure.
        last: Box<Error>,
    },
    /// The library or provider was set up wrongly.
    #[error("misconfigured: {0}")]
    Config(String),
    /// The provider asked to wait (`Retry-After`) and the wait is not over; no call was made.
    #[error("the provider asked to wait; {} ms left", remaining.as_millis())]
    CoolingDown {
        /// How long until the provider may be called again.
        remaining: Duration,
    },
    /// The refresh ended without an answer for its callers; the next call starts a new one.
    /// Why is typed: only [`AbortReason::Panicked`] says anything of the provider's code.
    #[error("the refresh was aborted: {0}")]
    RefreshAborted(AbortReason),
    /// The manager is shutting down and starts no new refresh.
    #[error("the token manager is shutting down")]
    ShuttingDown,
    /// [`shutdown`](crate::manager::TokenManager::shutdown) ran out of time with work still in flight.
    #[error("shutdown timed out with {pending} task(s) still running")]
    ShutdownTimedOut {
        /// Refreshes and saves still running.
        pending: usize,
    },
    /// [`shutdown`](crate::manager::TokenManager::shutdown) finished its work, but the
    /// newest tokens of these sessions are only in this process's memory: the store
    /// refused them for good (a record of another kind under the session's key, a name it
    /// cannot hold), so they are lost when the process exits, and the session's next
    /// process finds what the store holds. Names the sessions, never a token.
    #[error("shutdown left the newest tokens of session(s) {} only in memory: the store cannot hold them", crate::redact::Printable(&.sessions.join(", ")))]
    Unpersisted {
        /// The sessions, sorted.
        sessions: Vec<String>,
    },
}

/// Why a refresh ended without an answer ([`Error::RefreshAborted`]). Each is
/// [`Transient`](ErrorKind::Transient): the next call starts a new refresh (after a panic,
/// once [`failure_cooldown`](crate::manager::ManagerConfig::failure_cooldown) is over).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum AbortReason {
    /// The provider's or the store's code panicked during the refresh.
    Panicked,
    /// The refresh's task ended before it answered: cancelled, or its runtime shut down.
    Cancelled,
    /// Another process took the refresh lease (it had lapsed, or this process could not
    /// renew it): the store is read again before the next attempt.
    LeaseLost,
    /// The session was inserted anew or removed while its refresh was under way.
    SessionReplaced,
    /// The refreshes waited for left no access token to send.
    NoAccessToken,
}

impl fmt::Display for AbortReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Panicked => "the refresh panicked",
            Self::Cancelled => "the refresh task ended before it answered",
            Self::LeaseLost => "the refresh lease was taken by another process",
            Self::SessionReplaced => "the session was replaced",
            Self::NoAccessToken => "no access token to send after the refreshes waited for",
        })
    }
}

impl Error {
    /// The classification that decides what the manager and the application do.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::Endpoint(e) => e.kind(),
            Self::Transport(e) => e.kind,
            Self::ReauthRequired(_) | Self::NoTokens(_) => ErrorKind::ReauthRequired,
            Self::Store(StoreError::Unsupported(_)) | Self::Unpersisted { .. } => {
                ErrorKind::Rejected
            }
            Self::Store(_) => ErrorKind::Transient,
            Self::RetriesExhausted { last, .. } => last.kind(),
            Self::Config(_) => ErrorKind::Misconfigured,
            Self::CoolingDown { .. }
            | Self::RefreshAborted(_)
            | Self::ShuttingDown
            | Self::ShutdownTimedOut { .. } => ErrorKind::Transient,
        }
    }

    /// How long the provider asked to wait before the next attempt, if it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Self::Endpoint(EndpointError::Provider(e)) => e.retry_after,
            Self::Transport(e) => e.retry_after,
            Self::RetriesExhausted { last, .. } => last.retry_after(),
            Self::CoolingDown { remaining } => Some(*remaining),
            _ => None,
        }
    }

    /// The provider's own error code, if the provider gave one.
    pub fn provider_code(&self) -> Option<&str> {
        match self {
            Self::Endpoint(EndpointError::Provider(e)) => Some(&e.code),
            Self::ReauthRequired(r) => r.code.as_deref(),
            Self::RetriesExhausted { last, .. } => last.provider_code(),
            _ => None,
        }
    }

    /// The re-auth signal, when this error is one: a dead session
    /// ([`ReauthRequired`](Self::ReauthRequired)) or one without tokens
    /// ([`NoTokens`](Self::NoTokens)), each with where to send the user if the provider
    /// has such a place. Whenever [`kind`](Self::kind) is
    /// [`ReauthRequired`](ErrorKind::ReauthRequired), this is `Some`.
    pub fn reauth(&self) -> Option<&Reauth> {
        match self {
            Self::ReauthRequired(r) | Self::NoTokens(r) => Some(r),
            Self::RetriesExhausted { last, .. } => last.reauth(),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_alone_classifies_conservatively() {
        assert_eq!(
            ErrorKind::from_status(StatusCode::SERVICE_UNAVAILABLE),
            ErrorKind::Transient
        );
        assert_eq!(
            ErrorKind::from_status(StatusCode::TOO_MANY_REQUESTS),
            ErrorKind::Transient
        );
        assert_eq!(
            ErrorKind::from_status(StatusCode::BAD_REQUEST),
            ErrorKind::Rejected
        );
        assert_eq!(
            ErrorKind::from_status(StatusCode::UNAUTHORIZED),
            ErrorKind::Rejected
        );
        assert_eq!(
            ErrorKind::from_status(StatusCode::OK),
            ErrorKind::OutcomeUnknown
        );
        assert_eq!(
            ErrorKind::from_status(StatusCode::SWITCHING_PROTOCOLS),
            ErrorKind::OutcomeUnknown
        );
    }

    #[test]
    fn parse_errors_keep_a_scrubbed_body() {
        let err = EndpointError::parse(
            StatusCode::OK,
            "missing field `access_token`",
            br#"{"refresh_token":"RT-LEAK","oops":1}"#,
            &[],
        );
        assert_eq!(err.kind(), ErrorKind::OutcomeUnknown);
        let shown = format!("{err} {err:?}");
        assert!(!shown.contains("RT-LEAK"), "{shown}");
        assert!(shown.contains("oops"));
    }

    #[test]
    fn nested_errors_keep_kind_code_and_retry_after() {
        let provider = ProviderError::new(
            ErrorKind::Transient,
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
        )
        .with_retry_after(Some(Duration::from_secs(7)));
        let err = Error::RetriesExhausted {
            attempts: 3,
            last: Box::new(EndpointError::from(provider).into()),
        };
        assert_eq!(err.kind(), ErrorKind::Transient);
        assert_eq!(err.retry_after(), Some(Duration::from_secs(7)));
        assert_eq!(err.provider_code(), Some("rate_limited"));
        assert_eq!(
            err.to_string(),
            "gave up after 3 attempts: transient: provider answered HTTP 429 Too Many Requests `rate_limited`"
        );
    }

    #[test]
    fn a_provider_error_shows_the_request_id_its_support_asks_for() {
        let error = ProviderError::new(
            ErrorKind::ReauthRequired,
            StatusCode::OK,
            "IllegalRefreshToken",
        )
        .with_message("refresh token is invalid")
        .with_request_id("0b8e9f1c17070123");
        assert_eq!(
            error.to_string(),
            "reauth_required: provider answered HTTP 200 OK `IllegalRefreshToken`: refresh token is invalid (request id `0b8e9f1c17070123`)"
        );
        let without =
            ProviderError::new(ErrorKind::Rejected, StatusCode::OK, "x").with_request_id("r-1");
        assert_eq!(
            without.to_string(),
            "rejected: provider answered HTTP 200 OK `x` (request id `r-1`)"
        );
    }
}
