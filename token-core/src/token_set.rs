//! `TokenSet`: what a session holds after a grant or a refresh, with absolute expiry.

use std::borrow::Cow;
use std::fmt::{self, Debug};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use crate::secret::{AccessToken, RefreshToken};

/// Typed provider extras carried beside the tokens (Alipay+ `customerId`, Vault.ist
/// `user_id`). Blanket-implemented for every type with the listed traits.
pub trait Extras:
    Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

impl<T> Extras for T where
    T: Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
}

/// Extras of a provider that sends none.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoExtras {}

/// An access token's type (RFC 6749 section 7.1) as the provider spelled it: nearly
/// always `Bearer`, which (like the other registered types) is kept without an allocation
/// of its own, whatever the number of sessions that hold it.
///
/// Compared as written; [`is_bearer`](Self::is_bearer) compares without regard to case,
/// as RFC 6749 section 5.1 asks. Serialized as its text.
///
/// ```
/// use token_core::token_set::TokenType;
/// let sent = TokenType::from("bearer");
/// assert!(sent.is_bearer());
/// assert_eq!(sent, "bearer");
/// assert_eq!(sent.as_str(), "bearer");
/// assert_eq!(serde_json::to_string(&sent).unwrap(), r#""bearer""#);
/// assert_eq!(serde_json::from_str::<TokenType>(r#""DPoP""#).unwrap(), "DPoP");
/// ```
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenType(Cow<'static, str>);

/// Spellings kept as static text: the registered types and the usual cases of `Bearer`.
const KNOWN_TOKEN_TYPES: &[&str] = &["Bearer", "bearer", "BEARER", "DPoP", "N_A", "mac", "MAC"];

impl TokenType {
    /// The type `text`.
    pub fn new(text: impl Into<String>) -> Self {
        Self::from(text.into())
    }

    /// The type as the provider spelled it.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether this is the `Bearer` type, in any case.
    pub fn is_bearer(&self) -> bool {
        self.0.eq_ignore_ascii_case("bearer")
    }

    fn known(text: &str) -> Option<Self> {
        KNOWN_TOKEN_TYPES
            .iter()
            .find(|known| **known == text)
            .map(|known| Self(Cow::Borrowed(known)))
    }
}

impl From<&str> for TokenType {
    fn from(text: &str) -> Self {
        Self::known(text).unwrap_or_else(|| Self(Cow::Owned(text.to_owned())))
    }
}

impl From<String> for TokenType {
    fn from(text: String) -> Self {
        Self::known(&text).unwrap_or(Self(Cow::Owned(text)))
    }
}

impl std::ops::Deref for TokenType {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for TokenType {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for TokenType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl PartialEq<str> for TokenType {
    fn eq(&self, other: &str) -> bool {
        *self.0 == *other
    }
}

impl PartialEq<&str> for TokenType {
    fn eq(&self, other: &&str) -> bool {
        *self.0 == **other
    }
}

impl Serialize for TokenType {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for TokenType {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = Cow::<'de, str>::deserialize(deserializer)?;
        Ok(match text {
            Cow::Borrowed(text) => Self::from(text),
            Cow::Owned(text) => Self::from(text),
        })
    }
}

/// The form every store keeps: extras as JSON, so one store serves every provider.
pub type StoredTokenSet = TokenSet<serde_json::Value>;

/// An access token with its optional refresh token, both expiries as absolute instants,
/// and the provider's typed extras.
///
/// `Debug` shows the tokens redacted, and typed extras as their own `Debug` says (a field of
/// a secret type redacted). The stored form's extras, JSON that may hold such a field's raw
/// value (an OpenID `id_token`), show their keys only:
///
/// ```
/// use token_core::{token_set::StoredTokenSet, token_set::TokenSet, secret::AccessToken, secret::RefreshToken};
/// let set: TokenSet = TokenSet::new(AccessToken::new("at-secret"))
///     .with_refresh_token(RefreshToken::new("rt-secret"));
/// assert!(!format!("{set:?}").contains("secret"));
/// let mut stored: StoredTokenSet = set.to_stored().unwrap();
/// stored.extras = serde_json::json!({"id_token": "id-secret"});
/// assert!(format!("{stored:?}").contains(r#"extras: {"id_token": [redacted]}"#));
/// ```
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TokenSet<X = NoExtras> {
    /// The bearer token sent to the provider's API.
    pub access_token: AccessToken,
    /// The token that obtains the next access token; `None` for grants without one.
    pub refresh_token: Option<RefreshToken>,
    /// When the access token stops working; `None` when the provider did not say.
    #[serde(with = "rfc3339_option", default)]
    pub access_expires_at: Option<OffsetDateTime>,
    /// When the refresh token stops working; `None` when the provider did not say.
    #[serde(with = "rfc3339_option", default)]
    pub refresh_expires_at: Option<OffsetDateTime>,
    /// Token type as the provider sent it (`Bearer`), if it did.
    #[serde(default)]
    pub token_type: Option<TokenType>,
    /// Granted scope as the provider sent it, if it did.
    #[serde(default)]
    pub scope: Option<String>,
    /// Typed provider extras.
    #[serde(default)]
    pub extras: X,
}

/// An optional instant as RFC 3339 text, or none. Not `time::serde::rfc3339::option`, whose
/// reading of a present value asks the format what comes (`deserialize_any`), which formats
/// that do not describe themselves (postcard, bincode) cannot say: a set written with an
/// expiry could not be read back. Here a present value is read as text, as it was written,
/// and as that text itself (not wrapped in a newtype, which RON would read as `(..)` only).
mod rfc3339_option {
    use std::fmt;

    use serde::{Deserializer, Serializer, de};
    use time::OffsetDateTime;

    pub(super) fn serialize<S: Serializer>(
        at: &Option<OffsetDateTime>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        time::serde::rfc3339::option::serialize(at, serializer)
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<OffsetDateTime>, D::Error> {
        deserializer.deserialize_option(MaybeInstant)
    }

    struct MaybeInstant;

    impl<'de> de::Visitor<'de> for MaybeInstant {
        type Value = Option<OffsetDateTime>;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("an RFC3339-formatted `Option<OffsetDateTime>`")
        }

        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            time::serde::rfc3339::deserialize(d).map(Some)
        }
    }
}

impl<X: Debug + 'static> Debug for TokenSet<X> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let stored = (&self.extras as &dyn std::any::Any).downcast_ref::<serde_json::Value>();
        let mut out = f.debug_struct("TokenSet");
        out.field("access_token", &self.access_token)
            .field("refresh_token", &self.refresh_token)
            .field("access_expires_at", &self.access_expires_at)
            .field("refresh_expires_at", &self.refresh_expires_at)
            .field("token_type", &self.token_type)
            .field("scope", &self.scope);
        match stored {
            Some(json) => out.field("extras", &StoredExtras(json)),
            None => out.field("extras", &self.extras),
        };
        out.finish()
    }
}

/// A stored set's extras in `Debug`: the keys of an object, no value (a typed field of a
/// secret type is plain text here).
struct StoredExtras<'a>(&'a serde_json::Value);

impl Debug for StoredExtras<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        struct Redacted;
        impl Debug for Redacted {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("[redacted]")
            }
        }
        match self.0 {
            serde_json::Value::Null => f.write_str("Null"),
            serde_json::Value::Object(map) => f
                .debug_map()
                .entries(map.keys().map(|key| (key, Redacted)))
                .finish(),
            _ => Redacted.fmt(f),
        }
    }
}

impl<X: Extras> TokenSet<X> {
    /// A set with only an access token, no expiry known.
    pub fn new(access_token: AccessToken) -> Self {
        Self {
            access_token,
            refresh_token: None,
            access_expires_at: None,
            refresh_expires_at: None,
            token_type: None,
            scope: None,
            extras: X::default(),
        }
    }

    /// Sets the refresh token.
    pub fn with_refresh_token(mut self, refresh_token: RefreshToken) -> Self {
        self.refresh_token = Some(refresh_token);
        self
    }

    /// Sets when the access token expires.
    pub fn with_access_expires_at(mut self, at: OffsetDateTime) -> Self {
        self.access_expires_at = Some(at);
        self
    }

    /// Sets when the refresh token expires.
    pub fn with_refresh_expires_at(mut self, at: OffsetDateTime) -> Self {
        self.refresh_expires_at = Some(at);
        self
    }

    /// Sets the token type.
    pub fn with_token_type(mut self, token_type: impl Into<TokenType>) -> Self {
        self.token_type = Some(token_type.into());
        self
    }

    /// Sets the scope.
    pub fn with_scope(mut self, scope: impl Into<String>) -> Self {
        self.scope = Some(scope.into());
        self
    }

    /// Sets the extras.
    pub fn with_extras(mut self, extras: X) -> Self {
        self.extras = extras;
        self
    }

    /// Completes a refresh answer from the set it replaces: a response without a refresh
    /// token keeps the previous one (and its expiry), as RFC 6749 section 6 allows.
    pub fn or_previous(mut self, previous: &Self) -> Self {
        if self.refresh_token.is_none() {
            self.refresh_token = previous.refresh_token.clone();
            self.refresh_expires_at = self.refresh_expires_at.or(previous.refresh_expires_at);
        }
        if self.scope.is_none() {
            self.scope = previous.scope.clone();
        }
        self
    }

    /// Whether the refresh token differs from `previous`'s (the provider rotated it).
    pub fn rotated_from(&self, previous: &Self) -> bool {
        self.refresh_token != previous.refresh_token
    }

    /// Whether the access token has expired at `now` (unknown expiry never expires).
    pub fn access_expired(&self, now: OffsetDateTime) -> bool {
        self.access_expires_at.is_some_and(|at| at <= now)
    }

    /// Whether the refresh token has expired at `now` (unknown expiry never expires).
    pub fn refresh_expired(&self, now: OffsetDateTime) -> bool {
        self.refresh_expires_at.is_some_and(|at| at <= now)
    }

    /// Converts to the form stores keep.
    pub fn to_stored(&self) -> Result<StoredTokenSet, serde_json::Error> {
        Ok(TokenSet {
            access_token: self.access_token.clone(),
            refresh_token: self.refresh_token.clone(),
            access_expires_at: self.access_expires_at,
            refresh_expires_at: self.refresh_expires_at,
            token_type: self.token_type.clone(),
            scope: self.scope.clone(),
            extras: serde_json::to_value(&self.extras)?,
        })
    }

    /// Converts from the form stores keep.
    pub fn from_stored(stored: StoredTokenSet) -> Result<Self, serde_json::Error> {
        let extras = match stored.extras {
            serde_json::Value::Null => X::default(),
            value => serde_json::from_value(value)?,
        };
        Ok(TokenSet {
            access_token: stored.access_token,
            refresh_token: stored.refresh_token,
            access_expires_at: stored.access_expires_at,
            refresh_expires_at: stored.refresh_expires_at,
            token_type: stored.token_type,
            scope: stored.scope,
            extras,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct CustomerExtras {
        customer_id: Option<String>,
    }

    #[test]
    fn a_response_without_refresh_token_keeps_the_previous_one() {
        let old: TokenSet = TokenSet::new("at-1".into())
            .with_refresh_token("rt-1".into())
            .with_refresh_expires_at(datetime!(2030-01-01 00:00 UTC));
        let new = TokenSet::new("at-2".into()).or_previous(&old);
        assert_eq!(new.refresh_token, Some("rt-1".into()));
        assert_eq!(
            new.refresh_expires_at,
            Some(datetime!(2030-01-01 00:00 UTC))
        );
        assert!(!new.rotated_from(&old));
        let rotated = TokenSet::new("at-3".into())
            .with_refresh_token("rt-3".into())
            .or_previous(&old);
        assert!(rotated.rotated_from(&old));
    }

    #[test]
    fn stored_form_round_trips_typed_extras() {
        let set = TokenSet::new("at".into())
            .with_access_expires_at(datetime!(2026-01-01 00:00 +08:00))
            .with_extras(CustomerExtras {
                customer_id: Some("c-1".into()),
            });
        let stored = set.to_stored().unwrap();
        assert_eq!(stored.extras["customerId"], "c-1");
        let json = serde_json::to_string(&stored).unwrap();
        let back =
            TokenSet::<CustomerExtras>::from_stored(serde_json::from_str(&json).unwrap()).unwrap();
        assert_eq!(back, set);
    }

    #[test]
    fn expiry_checks_treat_unknown_as_never() {
        let now = datetime!(2026-01-01 00:00 UTC);
        let set: TokenSet = TokenSet::new("at".into());
        assert!(!set.access_expired(now) && !set.refresh_expired(now));
        let set = set.with_access_expires_at(now);
        assert!(set.access_expired(now));
    }
}
