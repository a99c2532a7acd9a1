//! Stores that forward to another and look on: [`Forwarding`] runs an [`Intercept`] before
//! each call it forwards (to record, hold or fail it); [`SavedRefresh`] records every refresh
//! token the manager saves; [`RecordingIssuerStore`] records every token the issuer hands
//! out and every rotation it refuses, and can fail the refreshes.

use std::collections::HashSet;
use std::ops::Deref;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use time::OffsetDateTime;
use token_core::issuer::{
    CodeRecord, IssuerStore, MemoryIssuerStore, PairRecord, PairState, RedeemOutcome, Redemption,
    RotateOutcome, RotateRejection, Rotation, TokenHash,
};
use token_core::store::{
    Lease, MemoryStore, SessionKey, StoredRecord, TokenStore, Unreadable, Version, Versioned,
};
use token_core::{error::StoreError, token_set::StoredTokenSet};

use crate::lock;

/// What a [`Forwarding`] store does before it forwards a call. Every method does nothing by
/// default; an error it returns is the call's answer, and the call is not forwarded.
#[async_trait]
pub trait Intercept: Send + Sync + 'static {
    /// Before `load`.
    async fn load(&self, _key: &SessionKey) -> Result<(), StoreError> {
        Ok(())
    }

    /// Before `save`.
    async fn save(
        &self,
        _key: &SessionKey,
        _record: &StoredRecord,
        _expected: Option<Version>,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Before `delete`.
    async fn delete(
        &self,
        _key: &SessionKey,
        _expected: Option<Version>,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Before `delete_unreadable`.
    async fn delete_unreadable(
        &self,
        _key: &SessionKey,
        _seen: &Unreadable,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Before `acquire_lease`.
    async fn acquire_lease(
        &self,
        _key: &SessionKey,
        _holder: &str,
        _ttl: Duration,
    ) -> Result<(), StoreError> {
        Ok(())
    }

    /// Before `release_lease`.
    async fn release_lease(&self, _key: &SessionKey, _holder: &str) -> Result<(), StoreError> {
        Ok(())
    }
}

/// A store that forwards every call to `inner` after its [`Intercept`] has seen it. Derefs to
/// the intercept, so a test reads what it recorded, or tells it what to do, through the store.
pub struct Forwarding<I> {
    inner: Arc<dyn TokenStore>,
    intercept: I,
}

impl<I: Intercept> Forwarding<I> {
    /// Forwards to `inner` through `intercept`.
    pub fn new(inner: Arc<dyn TokenStore>, intercept: I) -> Self {
        Self { inner, intercept }
    }

    /// Forwards to a new `MemoryStore` through `intercept`.
    pub fn over_memory(intercept: I) -> Self {
        Self::new(Arc::new(MemoryStore::new()), intercept)
    }

    /// The store forwarded to (to look at it behind the intercept's back).
    pub fn inner(&self) -> &Arc<dyn TokenStore> {
        &self.inner
    }
}

impl<I: Intercept + Default> Default for Forwarding<I> {
    fn default() -> Self {
        Self::over_memory(I::default())
    }
}

impl<I> Deref for Forwarding<I> {
    type Target = I;

    fn deref(&self) -> &I {
        &self.intercept
    }
}

#[async_trait]
impl<I: Intercept> TokenStore for Forwarding<I> {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        self.intercept.load(key).await?;
        self.inner.load(key).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        self.intercept.save(key, record, expected).await?;
        self.inner.save(key, record, expected).await
    }

    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        self.intercept.delete(key, expected).await?;
        self.inner.delete(key, expected).await
    }

    /// Forwarded after the intercept's `load` (it reads the record).
    async fn unreadable(&self, key: &SessionKey) -> Result<Option<Unreadable>, StoreError> {
        self.intercept.load(key).await?;
        self.inner.unreadable(key).await
    }

    async fn delete_unreadable(
        &self,
        key: &SessionKey,
        seen: &Unreadable,
    ) -> Result<bool, StoreError> {
        self.intercept.delete_unreadable(key, seen).await?;
        self.inner.delete_unreadable(key, seen).await
    }

    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        self.intercept.acquire_lease(key, holder, ttl).await?;
        self.inner.acquire_lease(key, holder, ttl).await
    }

    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        self.intercept.release_lease(key, holder).await?;
        self.inner.release_lease(key, holder).await
    }

    async fn lapsed_leases(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        self.inner.lapsed_leases(provider).await
    }
}

/// Records the hash of every refresh token the manager saves.
#[derive(Debug, Default)]
pub struct SavedRefresh {
    /// Hashes of every refresh token ever saved.
    pub saved_refresh: Mutex<HashSet<TokenHash>>,
}

#[async_trait]
impl Intercept for SavedRefresh {
    async fn save(
        &self,
        _key: &SessionKey,
        record: &StoredRecord,
        _expected: Option<Version>,
    ) -> Result<(), StoreError> {
        if let Some(refresh) = record.tokens().and_then(|set| set.refresh_token.as_ref()) {
            lock(&self.saved_refresh).insert(TokenHash::of(refresh.expose_secret()));
        }
        Ok(())
    }
}

/// The manager's store, recording the hash of every refresh token it was asked to keep.
pub type RecordingStore = Forwarding<SavedRefresh>;

/// A failed store call, as a backend would report it.
pub fn backend_error(message: &str) -> StoreError {
    StoreError::Backend {
        message: message.into(),
        source: None,
    }
}

/// How one rotation presented to the issuer ended.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The hash of the refresh token presented.
    pub presented: TokenHash,
    /// The subject of the presented pair (`None`: unknown token).
    pub subject: Option<String>,
    /// Why.
    pub rejection: RotateRejection,
    /// For a used token: the refresh-token hash of the pair that replaced it.
    pub successor: Option<TokenHash>,
}

/// The issuer's store, recording every token it hands out and every refusal.
#[derive(Default)]
pub struct RecordingIssuerStore {
    inner: MemoryIssuerStore,
    /// While set, every look-up of a refresh token and every rotation fails with this error,
    /// changing nothing.
    pub failing_refreshes: Mutex<Option<StoreError>>,
    /// Every token value the issuer minted or answered again (the leak check's list).
    pub minted: Mutex<Vec<String>>,
    /// Every refused rotation.
    pub refusals: Mutex<Vec<Refusal>>,
    /// Rotations answered from the reuse window.
    pub reused: Mutex<u64>,
    /// Rotations that minted a successor.
    pub rotated: Mutex<u64>,
}

impl RecordingIssuerStore {
    /// The error refreshes fail with now, if they do.
    fn refresh_failure(&self) -> Result<(), StoreError> {
        lock(&self.failing_refreshes).clone().map_or(Ok(()), Err)
    }

    fn record(&self, set: &StoredTokenSet) {
        let mut minted = lock(&self.minted);
        minted.push(set.access_token.expose_secret().to_owned());
        if let Some(refresh) = &set.refresh_token {
            minted.push(refresh.expose_secret().to_owned());
        }
    }
}

#[async_trait]
impl IssuerStore for RecordingIssuerStore {
    async fn insert(&self, record: PairRecord) -> Result<(), StoreError> {
        self.inner.insert(record).await
    }

    async fn insert_code(&self, record: CodeRecord) -> Result<(), StoreError> {
        self.inner.insert_code(record).await
    }

    async fn redeem_code(&self, redemption: Redemption<'_>) -> Result<RedeemOutcome, StoreError> {
        self.inner.redeem_code(redemption).await
    }

    async fn find_by_access(&self, access: &TokenHash) -> Result<Option<PairRecord>, StoreError> {
        self.inner.find_by_access(access).await
    }

    async fn find_by_refresh(&self, refresh: &TokenHash) -> Result<Option<PairRecord>, StoreError> {
        self.refresh_failure()?;
        self.inner.find_by_refresh(refresh).await
    }

    async fn rotate(&self, rotation: Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        self.refresh_failure()?;
        let rotation_presented = rotation.presented;
        let presented = self.inner.find_by_refresh(rotation_presented).await?;
        let outcome = self.inner.rotate(rotation).await?;
        match &outcome {
            RotateOutcome::Rotated { tokens, .. } => {
                self.record(tokens);
                *lock(&self.rotated) += 1;
            }
            RotateOutcome::Reused { tokens, .. } => {
                self.record(tokens);
                *lock(&self.reused) += 1;
            }
            RotateOutcome::Rejected(rejection) => {
                let successor = presented.as_ref().and_then(|p| match &p.state {
                    PairState::Replaced { successor, .. } => Some(*successor),
                    _ => None,
                });
                lock(&self.refusals).push(Refusal {
                    presented: *rotation_presented,
                    subject: presented.map(|p| p.subject),
                    rejection: *rejection,
                    successor,
                });
            }
            _ => {}
        }
        Ok(outcome)
    }

    async fn revoke(&self, token: &TokenHash, at: OffsetDateTime) -> Result<bool, StoreError> {
        self.inner.revoke(token, at).await
    }

    async fn revoke_subject(&self, subject: &str, at: OffsetDateTime) -> Result<usize, StoreError> {
        self.inner.revoke_subject(subject, at).await
    }

    async fn revoke_family(
        &self,
        family: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        self.inner.revoke_family(family, at).await
    }
}
