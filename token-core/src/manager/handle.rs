//! A handle on one session, looked up once: its fresh-token read skips the map.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use super::TokenManager;
use super::session::Session;
use crate::error::Error;
use crate::provider::Provider;
use crate::secret::AccessToken;

/// One session of a [`TokenManager`], looked up once ([`TokenManager::session`]).
///
/// Its [`access_token`](Self::access_token) reads a fresh token straight from the session
/// (an atomic load and the token's reference count, no map lookup) and otherwise does
/// exactly what [`TokenManager::access_token`] does for the session's name: one refresh
/// at a time, a proactive refresh near expiry, the set of the latest
/// [`insert`](TokenManager::insert), and the by-name call's error once the session was
/// [`remove`](TokenManager::remove)d. Cheap to clone; hold one per session you call often
/// ([`BearerAuth`](crate::middleware::BearerAuth) does). While a handle is held its session
/// stays in the manager's map even without tokens (a later insert reaches the handle's fast
/// path); once the last one is dropped, a session without tokens leaves it.
///
/// ```no_run
/// # async fn run<P: token_core::provider::Provider>(manager: token_core::manager::TokenManager<P>)
/// # -> Result<(), token_core::error::Error> {
/// let customer = manager.session("customer-42");
/// let token = customer.access_token().await?;
/// # let _ = token; Ok(()) }
/// ```
pub struct SessionHandle<P: Provider> {
    manager: TokenManager<P>,
    session: Arc<Session<P::Extras>>,
}

impl<P: Provider> Clone for SessionHandle<P> {
    fn clone(&self) -> Self {
        self.session.handle_taken();
        Self {
            manager: self.manager.clone(),
            session: self.session.clone(),
        }
    }
}

impl<P: Provider> Drop for SessionHandle<P> {
    fn drop(&mut self) {
        // The last handle gone, a session without tokens leaves the map, as it would have
        // after a by-name call.
        if self.session.handle_dropped() {
            // Never a panic out of `drop` (the clock's, say): dropped as its holder unwinds
            // from a panic, the handle would abort the process. The session then stays in
            // the map, as a held one does, until a by-name call finds it without tokens.
            let forget = || self.manager.inner.forget_unheld(&self.session);
            if catch_unwind(AssertUnwindSafe(forget)).is_err() {
                tracing::error!("forgetting a session as its last handle went panicked; ignored");
            }
        }
    }
}

impl<P: Provider> std::fmt::Debug for SessionHandle<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SessionHandle")
            .field("provider", &self.manager.inner.provider.name())
            .field("session", &&**self.session.name())
            .finish_non_exhaustive()
    }
}

impl<P: Provider> TokenManager<P> {
    /// A handle on `session`, for callers that use one session often: see
    /// [`SessionHandle`].
    pub fn session(&self, session: &str) -> SessionHandle<P> {
        // A session retired between the lookup and the count (it left the map) is looked
        // up again: a handle on it would never see a later insert.
        let session = loop {
            let session = self.inner.session(session);
            if session.take_handle() {
                break session;
            }
        };
        SessionHandle {
            manager: self.clone(),
            session,
        }
    }
}

impl<P: Provider> SessionHandle<P> {
    /// The session's name.
    pub fn name(&self) -> &str {
        self.session.name()
    }

    /// The manager.
    pub fn manager(&self) -> &TokenManager<P> {
        &self.manager
    }

    /// A valid access token, as [`TokenManager::access_token`] gives for this session.
    pub async fn access_token(&self) -> Result<AccessToken, Error> {
        if let Some(token) = self.fresh_token() {
            #[cfg(feature = "metrics")]
            super::metered(|| self.manager.inner.cache.hits.increment(1));
            return Ok(token);
        }
        // Everything else by name: after a `remove`, the name leads to the session's new
        // state, not to this handle's old one.
        Box::pin(self.manager.slow_access_token(self.session.name())).await
    }

    /// As [`TokenManager::refresh_rejected`] for this session.
    pub async fn refresh_rejected(&self, rejected: &AccessToken) -> Result<AccessToken, Error> {
        self.manager
            .refresh_rejected(self.session.name(), rejected)
            .await
    }

    /// The fresh path, the by-name read's: this thread's memo of its last read, else the
    /// session map's entry, lock-free both. While a handle holds its session the name maps
    /// to that very session, so the memo of either read is the other's.
    #[inline]
    pub(crate) fn fresh_token(&self) -> Option<AccessToken> {
        self.manager.fresh_token(self.session.name())
    }
}
