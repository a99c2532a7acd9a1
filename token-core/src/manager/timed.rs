//! The manager's store, each call bounded by `ManagerConfig::store_timeout`.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use async_trait::async_trait;
use tokio::sync::watch;

use super::refresh::CatchUnwind;
use crate::error::StoreError;
use crate::store::{Lease, SessionKey, StoredRecord, TokenStore, Unreadable, Version, Versioned};

type Pending = Arc<Mutex<HashMap<SessionKey, watch::Receiver<bool>>>>;

/// A store whose calls fail after `timeout` instead of waiting for ever (a database that
/// does not answer, a file on a hung network volume): a refresh waiting on it would hold
/// its session, and callers waiting on that refresh, for good.
pub(super) struct Timed {
    inner: Arc<dyn TokenStore>,
    timeout: Duration,
    /// The unconditional deletes under way (of a record the store cannot tell apart), by
    /// key. One that did not answer in time may still reach the store (a file store's
    /// blocking I/O, a query already sent): every later call for its key waits for it
    /// first, so that it cannot delete tokens saved after it.
    pending: Pending,
    /// Where such calls run.
    runtime: super::tasks::Runtime,
}

impl Timed {
    pub(super) fn new(
        inner: Arc<dyn TokenStore>,
        timeout: Duration,
        runtime: super::tasks::Runtime,
    ) -> Self {
        Self {
            inner,
            timeout,
            pending: Arc::default(),
            runtime,
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

    fn panicked(what: &str) -> StoreError {
        StoreError::Backend {
            message: format!("the store's {what} panicked"),
            source: None,
        }
    }

    /// `call` for `key`, after the unconditional write of `key` under way (if any), within
    /// the timeout. A store whose code panics fails the call, as a store that errs does: a
    /// panic unwinding through a refresh would drop the pair the provider has just sent
    /// (its save panicked), or end the background save that is its only copy.
    async fn bounded<T>(
        &self,
        what: &str,
        key: &SessionKey,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        let call = async {
            let pending = lock(&self.pending).get(key).cloned();
            if let Some(mut done) = pending {
                // Closed without an answer: the task ended (the store panicked).
                let _ = done.wait_for(|done| *done).await;
            }
            call.await
        };
        self.within(what, call).await
    }

    /// `call` within the timeout, a panic in it failing the call.
    async fn within<T>(
        &self,
        what: &str,
        call: impl Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.timeout, CatchUnwind(Box::pin(call))).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(())) => Err(Self::panicked(what)),
            Err(_) => Err(self.timed_out(what)),
        }
    }

    /// Runs `call` for `key` in a task of its own, after the one under way for `key` (if
    /// any), watched until it ends even when it answers too late.
    async fn detached<T: Send + 'static>(
        &self,
        what: &str,
        key: &SessionKey,
        call: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        let (tx, rx) = watch::channel(false);
        let previous = lock(&self.pending).insert(key.clone(), rx.clone());
        // Dropped however the task ends (answered, panicked, or dropped with its runtime).
        let done = Done {
            pending: self.pending.clone(),
            key: key.clone(),
            rx,
            tx,
        };
        let task = self.runtime.spawn(async move {
            if let Some(mut before) = previous {
                let _ = before.wait_for(|done| *done).await;
            }
            let answer = call.await;
            drop(done);
            answer
        });
        match tokio::time::timeout(self.timeout, task).await {
            Ok(Ok(answer)) => answer,
            Ok(Err(error)) if error.is_cancelled() => Err(StoreError::Backend {
                message: format!("the store's {what} was cancelled (its runtime shut down)"),
                source: None,
            }),
            Ok(Err(_)) => Err(Self::panicked(what)),
            Err(_) => Err(self.timed_out(what)),
        }
    }
}

/// An unconditional write's mark in [`Timed::pending`], taken out as its task ends.
struct Done {
    pending: Pending,
    key: SessionKey,
    rx: watch::Receiver<bool>,
    tx: watch::Sender<bool>,
}

impl Drop for Done {
    fn drop(&mut self) {
        let _ = self.tx.send(true);
        let mut pending = lock(&self.pending);
        if pending
            .get(&self.key)
            .is_some_and(|found| found.same_channel(&self.rx))
        {
            pending.remove(&self.key);
        }
    }
}

fn lock(pending: &Pending) -> MutexGuard<'_, HashMap<SessionKey, watch::Receiver<bool>>> {
    // A map of channels, each entry written whole: a panic leaves none half-set.
    pending
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

#[async_trait]
impl TokenStore for Timed {
    async fn load(&self, key: &SessionKey) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
        self.bounded("load", key, self.inner.load(key)).await
    }

    async fn save(
        &self,
        key: &SessionKey,
        record: &StoredRecord,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        self.bounded("save", key, self.inner.save(key, record, expected))
            .await
    }

    async fn delete(
        &self,
        key: &SessionKey,
        expected: Option<Version>,
    ) -> Result<bool, StoreError> {
        if expected.is_some() {
            // Compare-and-swap: landing late, it deletes nothing written since.
            return (self.bounded("delete", key, self.inner.delete(key, expected))).await;
        }
        let (inner, owned) = (self.inner.clone(), key.clone());
        let call = async move { inner.delete(&owned, None).await };
        self.detached("delete", key, call).await
    }

    async fn unreadable(&self, key: &SessionKey) -> Result<Option<Unreadable>, StoreError> {
        (self.bounded("load", key, self.inner.unreadable(key))).await
    }

    async fn delete_unreadable(
        &self,
        key: &SessionKey,
        seen: &Unreadable,
    ) -> Result<bool, StoreError> {
        if *seen == Unreadable::unidentified() {
            // The store cannot compare: removed whatever it is, as an unconditional delete.
            return self.delete(key, None).await;
        }
        // Compare-and-swap: landing late, it deletes nothing written since.
        let call = self.inner.delete_unreadable(key, seen);
        self.bounded("delete", key, call).await
    }

    async fn acquire_lease(
        &self,
        key: &SessionKey,
        holder: &str,
        ttl: Duration,
    ) -> Result<Lease, StoreError> {
        let call = self.inner.acquire_lease(key, holder, ttl);
        self.bounded("lease request", key, call).await
    }

    async fn release_lease(&self, key: &SessionKey, holder: &str) -> Result<(), StoreError> {
        // Not waited for by later calls: one that does not answer could then wedge the
        // session for good. One that lands late is harmless, since the manager asks for
        // leases under a new name after it (`Inner::lease_holder`).
        let call = self.inner.release_lease(key, holder);
        self.within("lease release", call).await
    }

    async fn lapsed_leases(&self, provider: &str) -> Result<Vec<String>, StoreError> {
        let call = self.inner.lapsed_leases(provider);
        self.within("listing of lapsed leases", call).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::{MemoryStore, Versioned};
    use tokio::sync::Notify;

    /// A memory store whose deletes never answer, saying when one has begun.
    #[derive(Default)]
    struct StuckDeletes {
        inner: MemoryStore,
        entered: Notify,
    }

    #[async_trait]
    impl TokenStore for StuckDeletes {
        async fn load(
            &self,
            key: &SessionKey,
        ) -> Result<Option<Versioned<StoredRecord>>, StoreError> {
            self.inner.load(key).await
        }

        async fn save(
            &self,
            key: &SessionKey,
            record: &StoredRecord,
            expected: Option<Version>,
        ) -> Result<Version, StoreError> {
            self.inner.save(key, record, expected).await
        }

        async fn delete(
            &self,
            _key: &SessionKey,
            _expected: Option<Version>,
        ) -> Result<bool, StoreError> {
            self.entered.notify_one();
            std::future::pending().await
        }
    }

    /// A delete whose task ends with the runtime given to the manager (shut down while the
    /// store had not answered) is answered as cancelled, not as a panic of the store's, and
    /// leaves no pending entry for its key behind.
    #[test]
    fn a_delete_whose_runtime_shuts_down_is_cancelled_not_a_panic() {
        let given = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        let store = Arc::new(StuckDeletes::default());
        let runtime = super::super::tasks::Runtime::given(Some(given.handle().clone()));
        let timed = Timed::new(store.clone(), Duration::from_secs(3600), runtime);
        let key = SessionKey::new("p", "s");
        let caller = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let answer = caller.block_on(async {
            let shut_down = async {
                store.entered.notified().await;
                given.shutdown_background();
                std::future::pending::<()>().await
            };
            tokio::select! {
                answer = timed.delete(&key, None) => answer,
                () = shut_down => unreachable!(),
            }
        });
        let error = answer.unwrap_err().to_string();
        assert!(error.contains("cancelled"), "{error}");
        assert!(!error.contains("panicked"), "{error}");
        assert!(lock(&timed.pending).is_empty(), "a pending entry was left");
    }
}
