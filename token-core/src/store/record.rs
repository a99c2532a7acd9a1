//! What a store keeps under one key: a session's tokens or the verdict that ended it, or a
//! small coordination record of another component sharing the store.

use serde::{Deserialize, Serialize};
use time::OffsetDateTime;

use super::Version;
use crate::token_set::StoredTokenSet;

/// A session's stored record.
///
/// A session whose refresh token the provider refused is not deleted but kept as
/// [`StoredRecord::Reauth`]: every process sharing the store then sees the verdict on its
/// next load, sends no second refresh with the dead token and reports no second re-auth.
/// Inserting new tokens (a save over the verdict) ends it.
///
/// A component that must coordinate replicas through the same store (the Maya Session URL
/// receiver's pending sessions, say) keeps its own small records here as
/// [`StoredRecord::Coordination`], under a provider namespace of its own; the
/// [`TokenManager`](crate::manager::TokenManager) never reads one as a session, and finding one under a
/// session's key is [`StoreError::Corrupt`](crate::error::StoreError::Corrupt).
///
/// Serialized as JSON with a `kind` tag (`"tokens"`, `"reauth"` or `"coordination"`) beside
/// the fields. A store of another backend keeps it as JSON too (or in another format that
/// describes itself): the tag and the stored extras are read by asking the format what
/// comes next, which formats that do not describe themselves (postcard, bincode) cannot
/// answer; they write a record, and then fail to read it back (a [`TokenSet`] alone they
/// read back).
///
/// [`TokenSet`]: crate::token_set::TokenSet
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[non_exhaustive]
pub enum StoredRecord {
    /// The session's current tokens.
    Tokens(StoredTokenSet),
    /// The provider refused the session's newest refresh token; new tokens must be obtained
    /// from the user (an authorization) and inserted.
    Reauth(ReauthVerdict),
    /// Another component's coordination record, kept beside the tokens under its own
    /// provider namespace; never a session.
    Coordination {
        /// The component's own JSON, any shape (nested under `value`, so its keys never meet
        /// the `kind` tag).
        value: serde_json::Value,
    },
}

impl StoredRecord {
    /// The tokens, unless the record is a re-auth verdict.
    pub fn tokens(&self) -> Option<&StoredTokenSet> {
        match self {
            Self::Tokens(set) => Some(set),
            Self::Reauth(_) | Self::Coordination { .. } => None,
        }
    }

    /// The tokens, unless the record is a re-auth verdict.
    pub fn into_tokens(self) -> Option<StoredTokenSet> {
        match self {
            Self::Tokens(set) => Some(set),
            Self::Reauth(_) | Self::Coordination { .. } => None,
        }
    }

    /// The verdict, if the record is one.
    pub fn reauth(&self) -> Option<&ReauthVerdict> {
        match self {
            Self::Reauth(verdict) => Some(verdict),
            Self::Tokens(_) | Self::Coordination { .. } => None,
        }
    }

    /// A coordination record of another component.
    ///
    /// ```
    /// use token_core::store::StoredRecord;
    ///
    /// let record = StoredRecord::coordination(serde_json::json!({"state": "pending"}));
    /// assert_eq!(record.as_coordination().unwrap()["state"], "pending");
    /// assert!(record.tokens().is_none() && record.reauth().is_none());
    /// ```
    pub fn coordination(value: serde_json::Value) -> Self {
        Self::Coordination { value }
    }

    /// The coordination record's JSON, if the record is one.
    pub fn as_coordination(&self) -> Option<&serde_json::Value> {
        match self {
            Self::Coordination { value } => Some(value),
            Self::Tokens(_) | Self::Reauth(_) => None,
        }
    }

    /// The coordination record's JSON, if the record is one.
    pub fn into_coordination(self) -> Option<serde_json::Value> {
        match self {
            Self::Coordination { value } => Some(value),
            Self::Tokens(_) | Self::Reauth(_) => None,
        }
    }
}

impl From<StoredTokenSet> for StoredRecord {
    fn from(set: StoredTokenSet) -> Self {
        Self::Tokens(set)
    }
}

impl From<ReauthVerdict> for StoredRecord {
    fn from(verdict: ReauthVerdict) -> Self {
        Self::Reauth(verdict)
    }
}

/// Why and when a session was declared dead. Holds no secret: the reason is the scrubbed
/// error text.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ReauthVerdict {
    /// The provider's error code, if it sent one.
    pub code: Option<String>,
    /// What the provider answered, without secrets.
    pub reason: String,
    /// When the verdict was reached.
    #[serde(with = "time::serde::rfc3339")]
    pub at: OffsetDateTime,
    /// The version of the record whose refresh token was refused (the one this verdict
    /// replaced), if known; none in verdicts recorded by earlier releases. A manager whose
    /// save of a refreshed pair finds a verdict in its place overwrites it only if it judged
    /// the version that refresh started from (the provider has just answered that very
    /// token): a verdict on a later record (a login inserted meanwhile) stands.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replaced: Option<Version>,
}

impl ReauthVerdict {
    /// A verdict reached `at`.
    pub fn new(code: Option<String>, reason: impl Into<String>, at: OffsetDateTime) -> Self {
        Self {
            code,
            reason: reason.into(),
            at,
            replaced: None,
        }
    }

    /// The verdict, on the record stored at `version` ([`replaced`](Self::replaced)).
    pub fn replacing(mut self, version: Option<Version>) -> Self {
        self.replaced = version;
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{secret::AccessToken, token_set::TokenSet};
    use time::macros::datetime;

    #[test]
    fn both_kinds_round_trip_through_json_with_a_tag() {
        let tokens: StoredRecord = TokenSet::<serde_json::Value>::new(AccessToken::new("at"))
            .to_stored()
            .unwrap()
            .into();
        let json = serde_json::to_value(&tokens).unwrap();
        assert_eq!(json["kind"], "tokens");
        assert_eq!(
            serde_json::from_value::<StoredRecord>(json).unwrap(),
            tokens
        );

        let verdict: StoredRecord = ReauthVerdict::new(
            Some("invalid_grant".into()),
            "refused",
            datetime!(2026-01-01 00:00 UTC),
        )
        .into();
        let json = serde_json::to_value(&verdict).unwrap();
        assert_eq!(json["kind"], "reauth");
        assert_eq!(json["code"], "invalid_grant");
        let back: StoredRecord = serde_json::from_value(json.clone()).unwrap();
        assert_eq!(back, verdict);
        assert!(back.tokens().is_none() && back.reauth().is_some());
        // Without the version it replaced (as earlier releases wrote it), and with one.
        assert!(json.get("replaced").is_none(), "{json}");
        let judged = ReauthVerdict::new(None, "refused", datetime!(2026-01-01 00:00 UTC))
            .replacing(Some(u64::MAX - 1));
        let json = serde_json::to_value(StoredRecord::from(judged.clone())).unwrap();
        let back: StoredRecord = serde_json::from_value(json).unwrap();
        assert_eq!(back.reauth(), Some(&judged));
    }

    #[test]
    fn a_coordination_record_round_trips_whatever_its_keys_and_shape() {
        for value in [
            serde_json::json!({"sessionId": "s-1", "kind": "not the tag", "n": [1, 2]}),
            serde_json::json!("a bare string"),
            serde_json::json!(null),
        ] {
            let record = StoredRecord::coordination(value.clone());
            let json = serde_json::to_value(&record).unwrap();
            assert_eq!(json["kind"], "coordination", "{json}");
            assert_eq!(json["value"], value);
            let back: StoredRecord = serde_json::from_value(json).unwrap();
            assert_eq!(back, record);
            assert_eq!(back.as_coordination(), Some(&value));
            assert!(back.tokens().is_none() && back.reauth().is_none());
            assert_eq!(back.into_coordination(), Some(value));
        }
    }
}
