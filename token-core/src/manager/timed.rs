//! The manager's store, each call bounded by `ManagerConfig::store_timeout`.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;

use crate::error::StoreError;
use crate::store::{Lease, SessionKey, StoredRecord, TokenStore, Version, Versioned};

/// A store whose calls fail after `timeout` instead of waiting for ever (a database that
/// does not answer, a file on a hung network volume): a refresh waiting on it would hold
/// its session, and callers waiting on that refresh, for good.
pub(super) struct Timed {
    pub(super) inner: Arc<dyn TokenStore>,
    pub(super) timeout: Duration,
}

impl Timed {
    async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(StoreError::Backend {
                message: format!(
                    "the store did not answer a {what} within {} ms",
                    self.timeout.as_millis()
                ),
                source: None,
            }),
        }
    }
}

#[async_trait]
impl TokenStore for Timed {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        self.bounded("load", self.inner.load(key)).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        self.bounded("save", self.inner.save(key, record, expected))
            .await
    }

    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        self.bounded("delete", self.inner.delete(key, expected))
            .await
    }

    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let call = self.inner.acquire_lease(key, holder, ttl);
        self.bounded("lease request", call).await
    }

    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        let call = self.inner.release_lease(key, holder);
        self.bounded("lease release", call).await
    }
}
