//! Expiry fields and their safe range.

use super::*;
use time::OffsetDateTime;

/// A UNIX time in seconds above this (2001-09-09) is a lifetime of over 31 years.
const UNIX_2001: u64 = 1_000_000_000;

fn bounded(at: Option<OffsetDateTime>, name: &str) -> Option<OffsetDateTime> {
    let at = at?;
    let kept = crate::expiry::plausible(at);
    if kept.is_none() {
        tracing::warn!(
            field = name,
            "the provider's answer has an out-of-range expiry in `{name}`; it is treated as unknown"
        );
    }
    kept
}

/// An expiry as a provider sends it: relative seconds, UNIX seconds or milliseconds, or ISO
/// 8601.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an expiry",
    label = "expected `ExpiresIn`, `UnixTime`, `UnixMillis`, `UnixMillisText`, `Iso8601` or `Option` of one",
    note = "these types are in `token_core::expiry`",
    note = "a response field named `expires_in` is the `expiry` without a key; to keep it unread, name it otherwise and keep its name on the wire with `#[token(rename = \"expires_in\")]`"
)]
pub trait ExpiryField {
    /// The absolute instant, relative forms counted from `now`; `None` when unknown.
    fn instant(&self, now: OffsetDateTime) -> Option<OffsetDateTime>;
    /// The field for the instant `at` (server side), relative forms counted from `now`.
    fn from_instant(at: Option<OffsetDateTime>, now: OffsetDateTime) -> Self;
    /// The instant as a refresh token's expiry: like [`instant`](Self::instant), except
    /// that a relative lifetime of zero seconds means the refresh token does not expire
    /// (Keycloak's `refresh_expires_in: 0` for offline tokens).
    fn refresh_instant(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.instant(now)
    }
    /// What the value looks like when it is likely the other kind of expiry than this type
    /// reads, for a warning: a lifetime of over 31 years (a UNIX time read as seconds to
    /// wait), an instant before 2001 (a lifetime, or UNIX seconds read as milliseconds).
    fn looks_misdeclared(&self) -> Option<&'static str> {
        None
    }
    /// The access token's expiry read from the field `name`: [`instant`](Self::instant), kept
    /// inside [`EARLIEST`](crate::expiry::EARLIEST)..=[`LATEST`](crate::expiry::LATEST) so
    /// that later arithmetic cannot overflow, with a warning naming the field when it was out
    /// of range or [looks misdeclared](Self::looks_misdeclared) (the instant is kept as read).
    fn checked_instant(&self, now: OffsetDateTime, name: &str) -> Option<OffsetDateTime> {
        warn_misdeclared(self.looks_misdeclared(), name);
        bounded(self.instant(now), name)
    }
    /// The refresh token's expiry read from the field `name`, as
    /// [`checked_instant`](Self::checked_instant) reads the access token's.
    fn checked_refresh_instant(&self, now: OffsetDateTime, name: &str) -> Option<OffsetDateTime> {
        warn_misdeclared(self.looks_misdeclared(), name);
        bounded(self.refresh_instant(now), name)
    }
}

fn warn_misdeclared(hint: Option<&'static str>, name: &str) {
    if let Some(hint) = hint {
        tracing::warn!(
            field = name,
            "the provider's answer has {hint} in `{name}`; it is read as declared"
        );
    }
}

impl ExpiryField for ExpiresIn {
    fn instant(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.at(now)
    }
    fn refresh_instant(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        match self.0 {
            Some(0) => None,
            _ => self.at(now),
        }
    }
    fn from_instant(at: Option<OffsetDateTime>, now: OffsetDateTime) -> Self {
        at.map(|at| ExpiresIn::until(at, now)).unwrap_or_default()
    }
    fn looks_misdeclared(&self) -> Option<&'static str> {
        self.0.is_some_and(|seconds| seconds >= UNIX_2001).then_some(
            "a lifetime of over 31 years, which looks like a UNIX time (a field holding an instant is declared `UnixTime`)",
        )
    }
}

/// The absolute forms: the instant as sent.
macro_rules! absolute_expiry {
    ($($ty:ty),*) => {$(
        impl ExpiryField for $ty {
            fn instant(&self, _: OffsetDateTime) -> Option<OffsetDateTime> {
                Some(self.0)
            }
            fn from_instant(at: Option<OffsetDateTime>, now: OffsetDateTime) -> Self {
                Self(at.unwrap_or(now))
            }
            fn looks_misdeclared(&self) -> Option<&'static str> {
                (self.0.unix_timestamp() < UNIX_2001 as i64).then_some(
                    "an instant before 2001, which looks like a lifetime (declared `ExpiresIn`) or UNIX seconds read as milliseconds (declared `UnixTime`)",
                )
            }
        }
    )*};
}
absolute_expiry!(UnixTime, Iso8601, UnixMillis, UnixMillisText);

impl<T: ExpiryField> ExpiryField for Option<T> {
    fn instant(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.as_ref().and_then(|t| t.instant(now))
    }
    fn from_instant(at: Option<OffsetDateTime>, now: OffsetDateTime) -> Self {
        at.map(|at| T::from_instant(Some(at), now))
    }
    fn refresh_instant(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.as_ref().and_then(|t| t.refresh_instant(now))
    }
    fn looks_misdeclared(&self) -> Option<&'static str> {
        self.as_ref().and_then(T::looks_misdeclared)
    }
}

/// The access token's expiry: the field's, else (with `jwt_expiry`) the JWT `exp` claim
/// (kept in range by [`jwt_exp`]).
pub fn access_expiry(
    field: Option<OffsetDateTime>,
    token: &AccessToken,
    jwt: bool,
) -> Option<OffsetDateTime> {
    field.or_else(|| {
        if jwt {
            jwt_exp(token.expose_secret())
        } else {
            None
        }
    })
}
