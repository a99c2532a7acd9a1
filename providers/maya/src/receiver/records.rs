//! The receiver's bookkeeping, kept in the manager's store beside the tokens: which
//! `Request-Reference-No` claimed which `sessionId`, whether that session is pending or
//! redeemed, and the index of sessions still remembered.
//!
//! Every record is a [`StoredRecord::Coordination`] under the [`SESSION_URL_NAMESPACE`] of the
//! manager's namespace, so the replicas sharing a store see the same records, and its
//! compare-and-swap settles their races; another client's receiver on the store sees none.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use token_core::error::StoreError;
use token_core::store::{SessionKey, StoredRecord, TokenStore, Version, Versioned};

/// The start of the namespace of the [`SessionReceiver`](super::SessionReceiver)'s records
/// in the manager's store: followed by `/` and the manager's
/// [`namespace`](token_core::manager::TokenManager::namespace) (whose own sessions are under
/// `maya:{client_id}`), so the receivers of two clients sharing a store never see each
/// other's records. They are `ref:{Request-Reference-No}`, `id:{sessionId}` and one `index`.
///
/// ```
/// use token_core::store::SessionKey;
/// use token_provider_maya::SESSION_URL_NAMESPACE;
/// // The key of the claim of Maya's `Request-Reference-No: 6f1c…`, for client `partner-1`:
/// let claim = SessionKey::new(format!("{SESSION_URL_NAMESPACE}/maya:partner-1"), "ref:6f1c…");
/// assert_eq!(claim.to_string(), "maya/session-url/maya:partner-1/ref:6f1c…");
/// ```
pub const SESSION_URL_NAMESPACE: &str = "maya/session-url";
/// The index's key in the records' namespace; claims are `ref:…` and sessions `id:…`, so no
/// reference or `sessionId` can name it.
const INDEX: &str = "index";
/// How often a compare-and-swap that keeps losing to other writers is tried.
const CAS_ATTEMPTS: usize = 16;

// The records skip fields they do not know: during a rolling upgrade a replica of an
// earlier release reads a later one's records as it wrote them (a later release adds only
// optional fields, such as `boundOver`, which an earlier one may drop when it writes the
// record again). A state it does not know is refused.

/// `ref:{reference}`: the reference's claim, written once by the first replica to see it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Claim {
    pub session_id: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    /// The fingerprint of the tokens of the POST that claimed the reference (absent in
    /// records of earlier releases): a POST of other tokens under the reference is not
    /// Maya's retry, told apart before any tokens are stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tokens: Option<String>,
}

/// `id:{sessionId}`: the session's state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Session {
    pub reference: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
    pub state: State,
    /// The partner's session the tokens were moved to, once redeemed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_to: Option<String>,
    /// What `bound_to` held in the store when the redemption took the session (absent in
    /// records of earlier releases): a redemption finishing the move that finds it written
    /// since knows the tokens reached it, and may have been refreshed (rotated) there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bound_over: Option<BoundOver>,
}

/// The partner session's record in the store as a redemption found it before taking the
/// session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) struct BoundOver {
    /// Its version; `None`: no record (or one that could not be read).
    pub version: Option<Version>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(super) enum State {
    /// Received, not redeemed.
    Pending,
    /// Redeemed for `bound_to`; the tokens may not have reached it yet (the redemption
    /// failed or was dropped midway): a redemption for the same session finishes it.
    Redeemed,
    /// Redeemed, and the tokens reached `bound_to`.
    Bound,
}

/// One entry of the index: enough to forget the session and its claim when it lapses, even
/// if its other records were never written (a replica that died midway).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct Remembered {
    pub session_id: String,
    pub reference: String,
    #[serde(with = "time::serde::rfc3339")]
    pub received_at: OffsetDateTime,
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct Index {
    sessions: Vec<Remembered>,
}

impl Session {
    pub(super) fn pending(reference: &str, received_at: OffsetDateTime) -> Self {
        Self {
            reference: reference.to_owned(),
            received_at,
            state: State::Pending,
            bound_to: None,
            bound_over: None,
        }
    }

    /// Whether the tokens still under the `sessionId` belong to nobody: never redeemed, or
    /// redeemed to another session (whatever is left under the id is a stray copy).
    pub(super) fn tokens_unowned(&self, session_id: &str) -> bool {
        match self.state {
            State::Pending => true,
            State::Redeemed | State::Bound => {
                self.bound_to.as_deref().is_some_and(|to| to != session_id)
            }
        }
    }

    /// Whether a redemption took the session (whether or not it finished).
    pub(super) fn redeemed(&self) -> bool {
        self.state != State::Pending
    }
}

/// What [`Records::claim`] found.
pub(super) enum Claimed {
    /// This call wrote the claim.
    Ours(Claim),
    /// The reference was claimed before (by another replica, or by Maya's earlier try).
    Before(Claim),
    /// The index holds as many sessions as it may: nothing was claimed or written.
    Full,
}

/// The receiver's records in one store.
#[derive(Clone)]
pub(super) struct Records {
    store: Arc<dyn TokenStore>,
    /// [`SESSION_URL_NAMESPACE`], `/` and the manager's namespace.
    namespace: Arc<str>,
}

impl std::fmt::Debug for Records {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Records")
            .field("namespace", &self.namespace)
            .finish_non_exhaustive()
    }
}

impl Records {
    /// The records of the receiver of the manager whose namespace is `manager` (its
    /// [`TokenManager::namespace`](token_core::manager::TokenManager::namespace)).
    pub(super) fn new(store: Arc<dyn TokenStore>, manager: &str) -> Self {
        let namespace = format!("{SESSION_URL_NAMESPACE}/{manager}").into();
        Self { store, namespace }
    }

    fn claim_key(&self, reference: &str) -> SessionKey {
        SessionKey::new(self.namespace.clone(), format!("ref:{reference}"))
    }

    fn session_key(&self, session_id: &str) -> SessionKey {
        SessionKey::new(self.namespace.clone(), format!("id:{session_id}"))
    }

    fn index_key(&self) -> SessionKey {
        SessionKey::new(self.namespace.clone(), INDEX)
    }

    /// Claims `reference` for `claim` atomically (a save that expects no record): exactly one
    /// caller across replicas gets [`Claimed::Ours`].
    pub(super) async fn claim(
        &self,
        reference: &str,
        claim: &Claim,
    ) -> Result<Claimed, StoreError> {
        let key = self.claim_key(reference);
        for _ in 0..CAS_ATTEMPTS {
            match self.save(&key, claim, None).await {
                Ok(_) => return Ok(Claimed::Ours(claim.clone())),
                Err(StoreError::Conflict { .. }) => {}
                Err(error) => return Err(error),
            }
            // Gone again between the save and the load (forgotten): claim once more.
            if let Some(found) = self.load::<Claim>(&key).await? {
                return Ok(Claimed::Before(found.value));
            }
        }
        Err(busy(&key))
    }

    /// `reference`'s claim, if it was claimed.
    pub(super) async fn claimed(&self, reference: &str) -> Result<Option<Claim>, StoreError> {
        Ok(self
            .load::<Claim>(&self.claim_key(reference))
            .await?
            .map(|found| found.value))
    }

    /// Removes `reference`'s claim if it still names `session_id`.
    pub(super) async fn release_claim(
        &self,
        reference: &str,
        session_id: &str,
    ) -> Result<(), StoreError> {
        let key = self.claim_key(reference);
        match self.load::<Claim>(&key).await? {
            Some(found) if found.value.session_id == session_id => {
                self.delete(&key, found.version).await.map(drop)
            }
            _ => Ok(()),
        }
    }

    /// The session's record.
    pub(super) async fn session(
        &self,
        session_id: &str,
    ) -> Result<Option<Versioned<Session>>, StoreError> {
        self.load(&self.session_key(session_id)).await
    }

    /// Writes `pending` as the session's record unless it has one; returns the record there.
    pub(super) async fn open(
        &self,
        session_id: &str,
        pending: &Session,
    ) -> Result<Versioned<Session>, StoreError> {
        let key = self.session_key(session_id);
        for _ in 0..CAS_ATTEMPTS {
            match self.save(&key, pending, None).await {
                Ok(version) => {
                    return Ok(Versioned {
                        version,
                        value: pending.clone(),
                    });
                }
                Err(StoreError::Conflict { .. }) => {}
                Err(error) => return Err(error),
            }
            if let Some(found) = self.load(&key).await? {
                return Ok(found);
            }
        }
        Err(busy(&key))
    }

    /// Replaces the session's record at `expected` with `next` (compare-and-swap).
    pub(super) async fn swap_session(
        &self,
        session_id: &str,
        next: &Session,
        expected: Version,
    ) -> Result<Version, StoreError> {
        self.save(&self.session_key(session_id), next, Some(expected))
            .await
    }

    /// Deletes the session's record if it is still at `expected`; `false` if it moved on.
    pub(super) async fn delete_session(
        &self,
        session_id: &str,
        expected: Version,
    ) -> Result<bool, StoreError> {
        self.delete(&self.session_key(session_id), expected).await
    }

    /// Every session the index remembers.
    pub(super) async fn remembered(&self) -> Result<Vec<Remembered>, StoreError> {
        Ok(self
            .load::<Index>(&self.index_key())
            .await?
            .map(|index| index.value.sessions)
            .unwrap_or_default())
    }

    /// Adds `entry` to the index, unless it is there already.
    pub(super) async fn remember(&self, entry: &Remembered) -> Result<(), StoreError> {
        self.remember_within(entry, usize::MAX).await.map(drop)
    }

    /// Adds `entry` to the index unless it is there already; `false`, nothing written, when
    /// the index holds `max` sessions or more (read in the same compare-and-swap, so that
    /// POSTs arriving at once, or on several replicas, cannot each find room). An entry for
    /// the same reference is another POST of it (Maya's retry) being claimed: this one then
    /// finds that claim, its entry is taken out again, and the reference takes no more room.
    pub(super) async fn remember_within(
        &self,
        entry: &Remembered,
        max: usize,
    ) -> Result<bool, StoreError> {
        let full = AtomicBool::new(false);
        self.update_index(|sessions| {
            full.store(false, Ordering::Relaxed);
            if sessions.iter().any(|s| s.session_id == entry.session_id) {
                return false;
            }
            if sessions.len() >= max && !sessions.iter().any(|s| s.reference == entry.reference) {
                full.store(true, Ordering::Relaxed);
                return false;
            }
            sessions.push(entry.clone());
            true
        })
        .await?;
        Ok(!full.load(Ordering::Relaxed))
    }

    /// Takes `session_ids` out of the index.
    pub(super) async fn forget(&self, session_ids: &[String]) -> Result<(), StoreError> {
        if session_ids.is_empty() {
            return Ok(());
        }
        self.update_index(|sessions| {
            let before = sessions.len();
            sessions.retain(|s| !session_ids.contains(&s.session_id));
            sessions.len() != before
        })
        .await
    }

    /// Applies `change` (which says whether it changed anything) to the index by
    /// compare-and-swap, loading it again after every lost race. An empty index is deleted,
    /// so a receiver with nothing to remember leaves nothing in the store.
    async fn update_index(
        &self,
        change: impl Fn(&mut Vec<Remembered>) -> bool,
    ) -> Result<(), StoreError> {
        let key = self.index_key();
        for _ in 0..CAS_ATTEMPTS {
            let found = self.load::<Index>(&key).await?;
            let version = found.as_ref().map(|f| f.version);
            let mut index = found.map(|f| f.value).unwrap_or_default();
            if !change(&mut index.sessions) {
                return Ok(());
            }
            let written = match version {
                Some(version) if index.sessions.is_empty() => self.delete(&key, version).await,
                _ => self.save(&key, &index, version).await.map(|_| true),
            };
            match written {
                Ok(true) => return Ok(()),
                Ok(false) | Err(StoreError::Conflict { .. }) => {}
                Err(error) => return Err(error),
            }
        }
        Err(busy(&key))
    }

    async fn load<T: DeserializeOwned>(
        &self,
        key: &SessionKey,
    ) -> Result<Option<Versioned<T>>, StoreError> {
        let Some(found) = self.store.load(key).await? else {
            return Ok(None);
        };
        let value = found
            .value
            .into_coordination()
            .and_then(|value| serde_json::from_value(value).ok())
            // serde's message could quote a value: name the key only.
            .ok_or_else(|| {
                StoreError::Corrupt(format!("{key} is not a Session URL receiver record"))
            })?;
        Ok(Some(Versioned {
            version: found.version,
            value,
        }))
    }

    async fn save<T: Serialize>(
        &self,
        key: &SessionKey,
        value: &T,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        let value = serde_json::to_value(value)
            .map_err(|e| StoreError::backend(format!("cannot encode {key}"), e))?;
        self.store
            .save(key, &StoredRecord::coordination(value), expected)
            .await
    }

    /// Deletes `key` if it is at `expected`; `false` if it moved on or is gone.
    async fn delete(&self, key: &SessionKey, expected: Version) -> Result<bool, StoreError> {
        match self.store.delete(key, Some(expected)).await {
            Err(StoreError::Conflict { .. }) => Ok(false),
            deleted => deleted,
        }
    }
}

/// A compare-and-swap that lost [`CAS_ATTEMPTS`] times in a row.
fn busy(key: &SessionKey) -> StoreError {
    StoreError::Backend {
        message: format!("{key}: too many concurrent writers, try again"),
        source: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn records_keep_their_json_shape() {
        let at = datetime!(2026-01-01 00:00:00.5 UTC);
        let session = Session {
            bound_to: Some("user-1".into()),
            state: State::Redeemed,
            ..Session::pending("ref-1", at)
        };
        let json = serde_json::to_value(&session).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"reference": "ref-1", "receivedAt": "2026-01-01T00:00:00.5Z",
                               "state": "redeemed", "boundTo": "user-1"})
        );
        assert_eq!(serde_json::from_value::<Session>(json).unwrap(), session);
        let over = Session {
            bound_over: Some(BoundOver { version: Some(7) }),
            ..session.clone()
        };
        let json = serde_json::to_value(&over).unwrap();
        assert_eq!(json["boundOver"], serde_json::json!({"version": 7}));
        assert_eq!(serde_json::from_value::<Session>(json).unwrap(), over);
        let claim = Claim {
            session_id: "s-1".into(),
            received_at: at,
            tokens: None,
        };
        let json = serde_json::to_value(&claim).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"sessionId": "s-1", "receivedAt": "2026-01-01T00:00:00.5Z"})
        );
        assert_eq!(serde_json::from_value::<Claim>(json).unwrap(), claim);
        let claim = Claim {
            tokens: Some("ab12".into()),
            ..claim
        };
        let json = serde_json::to_value(&claim).unwrap();
        assert_eq!(json["tokens"], "ab12");
        assert_eq!(serde_json::from_value::<Claim>(json).unwrap(), claim);
    }

    /// Replicas of two releases share the store during a rolling upgrade: a field a later
    /// release adds is skipped by an earlier one, which reads the rest as before. A state
    /// it does not know is still refused.
    #[test]
    fn a_field_of_a_later_release_is_skipped_an_unknown_state_is_not() {
        let at = "2026-01-01T00:00:00.5Z";
        let session: Session = serde_json::from_value(serde_json::json!({
            "reference": "ref-1", "receivedAt": at, "state": "redeemed", "boundTo": "user-1",
            "boundOver": {"version": 3, "addedLater": true}, "addedLater": [1, 2]
        }))
        .unwrap();
        assert_eq!(
            (
                session.state,
                session.bound_to.as_deref(),
                session.bound_over
            ),
            (
                State::Redeemed,
                Some("user-1"),
                Some(BoundOver { version: Some(3) })
            )
        );
        let claim: Claim = serde_json::from_value(
            serde_json::json!({"sessionId": "s-1", "receivedAt": at, "addedLater": 1}),
        )
        .unwrap();
        assert_eq!(claim.session_id, "s-1");
        let index: Index = serde_json::from_value(serde_json::json!({
            "sessions": [{"sessionId": "s-1", "reference": "ref-1", "receivedAt": at, "addedLater": 1}],
            "addedLater": {}
        }))
        .unwrap();
        assert_eq!(index.sessions.len(), 1);
        let later_state =
            serde_json::json!({"reference": "ref-1", "receivedAt": at, "state": "handedOver"});
        assert!(serde_json::from_value::<Session>(later_state).is_err());
    }
}
