//! [`MemoryIssuerStore`]: the issuer's pairs and authorization codes in `HashMap`s behind one
//! mutex, for the sandbox, tests and single-process issuers.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use async_trait::async_trait;
use time::OffsetDateTime;

use super::{
    CodeRecord, CodeRejection, CodeState, CodeVerdict, IssuerStore, PairRecord, PairState,
    RedeemOutcome, Redemption, RotateOutcome, RotateRejection, RotateVerdict, Rotation, TokenHash,
};
use crate::error::StoreError;

/// An in-memory [`IssuerStore`]. Every operation holds one mutex (never across an `.await`),
/// which makes [`rotate`](IssuerStore::rotate) and [`redeem_code`](IssuerStore::redeem_code)
/// atomic.
///
/// Its [`purge`](IssuerStore::purge) forgets what is dead at the instant it is given, the
/// issuer's clock: a clock that reads far ahead for a moment (a VM resumed with a stale
/// offset) makes it forget pairs that are still live, for good. The PostgreSQL store takes
/// that instant no later than the database's own clock; with this one, purge on a clock
/// you trust, or set [`purge_every`](super::IssuerConfig::purge_every) to `None` and call
/// [`Issuer::purge`](super::Issuer::purge) yourself.
#[derive(Debug, Default)]
pub struct MemoryIssuerStore {
    inner: Mutex<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Records keyed by their refresh token hash.
    records: HashMap<TokenHash, PairRecord>,
    /// Access token hash to refresh token hash.
    by_access: HashMap<TokenHash, TokenHash>,
    /// Authorization codes keyed by their hash.
    codes: HashMap<TokenHash, CodeRecord>,
}

impl MemoryIssuerStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many records are kept (live, replaced or revoked, until purged).
    pub fn len(&self) -> usize {
        self.lock().records.len()
    }

    /// Whether no record is kept.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave a half-written record (every write is
        // one insert or one field assignment), so a poisoned lock is still usable.
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl Inner {
    fn insert(&mut self, record: PairRecord) {
        self.by_access
            .insert(record.access_hash, record.refresh_hash);
        self.records.insert(record.refresh_hash, record);
    }

    /// Revokes every live record `which` picks; returns how many.
    fn revoke_live(&mut self, which: impl Fn(&PairRecord) -> bool, at: OffsetDateTime) -> usize {
        let mut revoked = 0;
        for record in self.records.values_mut() {
            if matches!(record.state, PairState::Active) && which(record) {
                record.state = PairState::Revoked { at };
                revoked += 1;
            }
        }
        revoked
    }

    fn key_of(&self, token: &TokenHash) -> Option<TokenHash> {
        if self.records.contains_key(token) {
            Some(*token)
        } else {
            self.by_access.get(token).copied()
        }
    }
}

#[async_trait]
impl IssuerStore for MemoryIssuerStore {
    async fn insert(&self, record: PairRecord) -> Result<(), StoreError> {
        self.lock().insert(record);
        Ok(())
    }

    async fn find_by_access(&self, access: &TokenHash) -> Result<Option<PairRecord>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .by_access
            .get(access)
            .and_then(|key| inner.records.get(key))
            .cloned())
    }

    async fn find_by_refresh(&self, refresh: &TokenHash) -> Result<Option<PairRecord>, StoreError> {
        Ok(self.lock().records.get(refresh).cloned())
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        let mut inner = self.lock();
        let Some(current) = inner.records.get(rotation.presented) else {
            return Ok(RotateOutcome::Rejected(RotateRejection::Unknown));
        };
        let successor = match &current.state {
            PairState::Replaced { successor, .. } => inner.records.get(successor),
            _ => None,
        };
        match current.verdict(rotation.client, successor, rotation.now) {
            RotateVerdict::Reject(rejection) => Ok(RotateOutcome::Rejected(rejection)),
            RotateVerdict::Reuse(tokens) => Ok(RotateOutcome::Reused {
                subject: current.subject.clone(),
                tokens,
            }),
            RotateVerdict::Rotate => {
                let minted = (rotation.mint)(current);
                let subject = current.subject.clone();
                if current.is_kept_by(&minted) {
                    let old_access = current.access_hash;
                    inner.by_access.remove(&old_access);
                } else if let Some(current) = inner.records.get_mut(rotation.presented) {
                    current.replace_with(&minted, rotation.now, rotation.reuse_window);
                }
                inner.insert(minted.record);
                Ok(RotateOutcome::Rotated {
                    subject,
                    tokens: minted.tokens,
                })
            }
        }
    }

    async fn revoke(&self, token: &TokenHash, at: OffsetDateTime) -> Result<bool, StoreError> {
        let mut inner = self.lock();
        let Some(key) = inner.key_of(token) else {
            return Ok(false);
        };
        match inner.records.get_mut(&key) {
            Some(record) if matches!(record.state, PairState::Active) => {
                record.state = PairState::Revoked { at };
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    async fn revoke_subject(&self, subject: &str, at: OffsetDateTime) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        for code in inner.codes.values_mut() {
            if code.grant.subject == subject && code.state == CodeState::Pending {
                code.expires_at = code.expires_at.min(code.issued_at);
            }
        }
        Ok(inner.revoke_live(|record| record.subject == subject, at))
    }

    async fn revoke_family(
        &self,
        family: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        Ok(self
            .lock()
            .revoke_live(|record| record.family == *family, at))
    }

    async fn insert_code(&self, record: CodeRecord) -> Result<(), StoreError> {
        self.lock().codes.insert(record.code_hash, record);
        Ok(())
    }

    async fn redeem_code(&self, redemption: Redemption<'_>) -> Result<RedeemOutcome, StoreError> {
        let mut inner = self.lock();
        let Some(code) = inner.codes.get(redemption.presented) else {
            return Ok(RedeemOutcome::Rejected(CodeRejection::Unknown));
        };
        let (at, pair, outcome) = match code.verdict(&redemption.exchange, redemption.now) {
            CodeVerdict::Reject(rejection) => return Ok(RedeemOutcome::Rejected(rejection)),
            CodeVerdict::Burn => (
                redemption.now,
                None,
                RedeemOutcome::Rejected(CodeRejection::Mismatch),
            ),
            CodeVerdict::Redeem => {
                let minted = (redemption.mint)(code);
                let pair = minted.record.refresh_hash;
                let outcome = RedeemOutcome::Redeemed {
                    subject: minted.record.subject.clone(),
                    tokens: minted.tokens,
                };
                inner.insert(minted.record);
                (redemption.now, Some(pair), outcome)
            }
        };
        if let Some(code) = inner.codes.get_mut(redemption.presented) {
            code.state = CodeState::Redeemed { at, pair };
        }
        Ok(outcome)
    }

    async fn purge(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let mut inner = self.lock();
        let before = inner.records.len() + inner.codes.len();
        // A live code names the family its pair started, which outlives the pair: nothing
        // to keep for it.
        inner.records.retain(|_, record| !record.is_dead(now));
        inner.codes.retain(|_, code| !code.is_dead(now));
        let Inner {
            records, by_access, ..
        } = &mut *inner;
        by_access.retain(|_, key| records.contains_key(key));
        Ok(before - inner.records.len() - inner.codes.len())
    }
}
