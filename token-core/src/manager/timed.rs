//! The manager's store, each call bounded by `ManagerConfig::store_timeout`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use crate::error::StoreError;
use crate::store::{Lease, SessionKey, StoredRecord, TokenStore, Version, Versioned};

/// A store whose calls fail after `timeout` instead of waiting for ever (a database that
/// does not answer, a file on a hung network volume): a refresh waiting on it would hold
/// its session, and callers waiting on that refresh, for good.
pub(super) struct Timed {
    inner: Arc<dyn TokenStore>,
    timeout: Duration,
    /// The lease releases under way, by key. One that did not answer in time may still
    /// reach the store (a file store's blocking I/O, a query already sent): a lease request
    /// for its key waits for it first, so that it cannot take away a lease granted after
    /// it (another process could then spend the refresh token the new holder is spending).
    releasing: Arc<Mutex<HashMap<SessionKey, watch::Receiver<bool>>>>,
}

impl Timed {
    pub(super) fn new(inner: Arc<dyn TokenStore>, timeout: Duration) -> Self {
        Self {
            inner,
            timeout,
            releasing: Arc::default(),
        }
    }

    fn timed_out(&self, what: &str) -> StoreError {
        StoreError::Backend {
            message: format!(
                "the store did not answer a {what} within {} ms",
                self.timeout.as_millis()
            ),
            source: None,
        }
    }

    async fn bounded<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, call).await {
            Ok(answer) => answer,
            Err(_) => Err(self.timed_out(what)),
        }
    }

    fn releases(&self) -> std::sync::MutexGuard<'_, HashMap<SessionKey, watch::Receiver<bool>>> {
        // A map of channels, each entry written whole: a panic leaves none half-set.
        self.releasing
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
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
        let call = async {
            // A release of this key still under way reaches the store first.
            let pending = self.releases().get(key).cloned();
            if let Some(mut done) = pending {
                // Closed without an answer: the release task ended (it panicked).
                let _ = done.wait_for(|done| *done).await;
            }
            self.inner.acquire_lease(key, holder, ttl).await
        };
        self.bounded("lease request", call).await
    }

    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        // In a task of its own, watched until it ends even when it answers too late.
        let (tx, rx) = watch::channel(false);
        let previous = self.releases().insert(key.clone(), rx.clone());
        let (inner, releasing) = (self.inner.clone(), self.releasing.clone());
        let (key, holder) = (key.clone(), holder.to_owned());
        let task = tokio::spawn(async move {
            if let Some(mut before) = previous {
                let _ = before.wait_for(|done| *done).await;
            }
            let answer = inner.release_lease(&key, &holder).await;
            let _ = tx.send(true);
            let mut releasing = releasing.lock().unwrap_or_else(|p| p.into_inner());
            if releasing
                .get(&key)
                .is_some_and(|found| found.same_channel(&rx))
            {
                releasing.remove(&key);
            }
            answer
        });
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(_)) => Err(StoreError::Backend {
                message: "the store's lease release panicked".into(),
                source: None,
            }),
            Err(_) => Err(self.timed_out("lease release")),
        }
    }
}
