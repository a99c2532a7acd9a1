//! What the manager reports: refreshes, rotations, re-auth and failures. No event holds a
//! secret, so events can be logged as they are.

use std::sync::Arc;

use time::OffsetDateTime;

use crate::error::{ErrorKind, Reauth};
use crate::store::Version;

/// Something that happened to a session.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A new set was obtained and is in use (saved). When the provider's new refresh token
    /// came beside an access token that cannot be sent in a header, the access token was
    /// set aside (`access_expires_at` is the Unix epoch): a [`RefreshFailed`](Self::RefreshFailed)
    /// (`Rejected`) follows, and the next refresh presents the saved refresh token.
    Refreshed {
        /// The session.
        session: Arc<str>,
        /// The provider sent a new refresh token (the old one is dead).
        rotated: bool,
        /// The set was issued anew (client credentials, account key) rather than refreshed.
        issued: bool,
        /// When the new access token expires.
        access_expires_at: Option<OffsetDateTime>,
        /// The stored version, `None` when saving failed (see [`Event::PersistFailed`]).
        version: Option<Version>,
    },
    /// Another process refreshed the session; its newer stored set was taken.
    Adopted {
        /// The session.
        session: Arc<str>,
        /// The stored version taken.
        version: Version,
    },
    /// The session can no longer be refreshed; the verdict replaced its set in the store.
    /// Reported once, by the process that reached it.
    ReauthRequired(Reauth),
    /// A refresh failed; the session keeps its current set.
    RefreshFailed {
        /// The session.
        session: Arc<str>,
        /// The classification.
        kind: ErrorKind,
        /// What failed, without secrets.
        error: String,
    },
    /// A new set could not be saved; it is kept in memory and the save is retried.
    PersistFailed {
        /// The session.
        session: Arc<str>,
        /// What failed, without secrets.
        error: String,
    },
    /// A set whose save had failed is now saved.
    Persisted {
        /// The session.
        session: Arc<str>,
        /// The stored version.
        version: Version,
    },
    /// The provider's extras could not be serialized (a failing `Serialize`), or made the
    /// record larger or nested deeper than the store holds: the set was stored without them, so a later load (another process, a restart) gets the extras'
    /// `Default`; this process keeps them. The tokens are stored as usual.
    ExtrasNotStored {
        /// The session.
        session: Arc<str>,
    },
    /// The provider's answer had an odd expiry; the tokens were kept and the expiry
    /// adjusted as the note says.
    ExpiryAdjusted {
        /// The session.
        session: Arc<str>,
        /// What was odd.
        note: ExpiryNote,
    },
}

/// What was odd about the expiry of a provider's answer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ExpiryNote {
    /// No access-token expiry (none sent, or one that could not be read): the configured
    /// default lifetime applies, if any.
    Unknown,
    /// The access token had already expired on arrival: it is used all the same for
    /// [`min_refresh_interval`](super::ManagerConfig::min_refresh_interval) (and saved with
    /// that expiry, so a process that reads it from the store uses it too), and the next
    /// refresh waits that long. (One that expires within the refresh skew is no odd expiry:
    /// it is refreshed at half its remaining life.)
    AlreadyExpired,
    /// The access token expires less than a second after arrival (a provider whose clock is
    /// behind, an expiry with sub-second precision): it is used all the same for
    /// [`min_refresh_interval`](super::ManagerConfig::min_refresh_interval), past its expiry,
    /// as one already expired is, rather than refreshed again at every call once it expires.
    ShortLived,
}

impl ExpiryNote {
    /// A short name for logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Unknown => "unknown",
            Self::AlreadyExpired => "already_expired",
            Self::ShortLived => "short_lived",
        }
    }
}

impl Event {
    /// The session the event is about.
    pub fn session(&self) -> &str {
        match self {
            Self::Refreshed { session, .. }
            | Self::Adopted { session, .. }
            | Self::RefreshFailed { session, .. }
            | Self::PersistFailed { session, .. }
            | Self::Persisted { session, .. }
            | Self::ExpiryAdjusted { session, .. }
            | Self::ExtrasNotStored { session } => session,
            Self::ReauthRequired(reauth) => &reauth.session,
        }
    }

    /// A short name of the event's kind, for logs.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Refreshed { .. } => "refreshed",
            Self::Adopted { .. } => "adopted",
            Self::ReauthRequired(_) => "reauth_required",
            Self::RefreshFailed { .. } => "refresh_failed",
            Self::PersistFailed { .. } => "persist_failed",
            Self::Persisted { .. } => "persisted",
            Self::ExpiryAdjusted { .. } => "expiry_adjusted",
            Self::ExtrasNotStored { .. } => "extras_not_stored",
        }
    }
}
