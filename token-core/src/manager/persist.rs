//! Persistence: a new set is saved before anyone uses it; one that cannot be saved is kept
//! in memory, with its lease, and saved again in the background.

use std::sync::Arc;

use super::refresh::CatchUnwind;
use super::session::{Ready, Session, Stamp, State};
use super::{Event, Inner, not_a_session};
use crate::error::{Error, StoreError};
use crate::provider::Provider;
use crate::store::{
    ReauthVerdict, SessionKey, SharedSet, StoredRecord, TokenStore, Version, Versioned,
};
use crate::token_set::StoredTokenSet;

/// What became of a refreshed set.
pub(super) enum Persisted {
    /// Saved at this version.
    Saved(Version),
    /// The store moved past the version the refresh started from, to tokens written by
    /// someone with the last word (an `insert`): keep theirs.
    Superseded(Versioned<StoredRecord>),
    /// The session was removed from the store meanwhile: the set is dropped, not saved.
    Removed,
    /// A re-auth verdict on a later record (a login inserted meanwhile, whose refresh token
    /// the provider refused) was recorded meanwhile: it stands, and the set is dropped.
    Judged(Versioned<ReauthVerdict>),
    /// Not saved (the store failed); kept in memory.
    Failed(Error),
}

impl<P: Provider> Inner<P> {
    /// Saves a set just obtained from the provider, replacing the version it was refreshed
    /// from. A re-auth verdict on that version found in its place is overwritten (the
    /// provider has just answered, so the session lives); newer tokens are not, nor a
    /// verdict on a later record (a login inserted meanwhile and refused).
    ///
    /// `base_known_latest`: this process knows of no record newer than `base` (see
    /// `Current::known_latest`), so a record older than it is one the store went back to.
    pub(super) async fn persist(
        &self,
        key: &SessionKey,
        set: &Ready<P::Extras>,
        base: Option<Version>,
        base_known_latest: bool,
    ) -> Persisted {
        let mut record = None;
        let mut expected = base;
        let mut without_extras = false;
        for _ in 0..3 {
            let shared = Some(set.shared());
            match self
                .save_set(key, &set.stored, shared, &mut record, expected)
                .await
            {
                Ok(version) => {
                    if without_extras {
                        self.emit(Event::ExtrasNotStored {
                            session: key.session().into(),
                        });
                    }
                    return Persisted::Saved(version);
                }
                // The store can never hold this record (too large, nested too deep): the
                // provider's extras are what can make it so, and the pair must not stay
                // unsaved for that (its refresh token is spent). Saved without them, as
                // extras that cannot be serialized are; this process keeps them.
                Err(StoreError::Unsupported(reason))
                    if !without_extras && !set.stored.extras.is_null() =>
                {
                    tracing::warn!(
                        %reason,
                        "the store cannot hold the token set with its extras; saving it without them"
                    );
                    let mut bare = set.stored.clone();
                    bare.extras = serde_json::Value::Null;
                    record = Some(StoredRecord::Tokens(bare));
                    without_extras = true;
                }
                Err(StoreError::Conflict { .. }) => match self.store.load(key).await {
                    // Older than the version the set replaces: the store went back to it,
                    // losing writes it acknowledged (see `read_newer`). The set, newer, is
                    // written over it.
                    Ok(Some(found))
                        if base_known_latest
                            && base.is_some_and(|base| found.version < base)
                            && found.value.as_coordination().is_none() =>
                    {
                        tracing::warn!(
                            found = found.version,
                            "the store went back to an older record; saving the new set over it"
                        );
                        expected = Some(found.version);
                    }
                    // The very record the set replaces, whose refresh token was just spent
                    // for it: the conflict named nothing newer (a store that refused the
                    // compare-and-swap wrongly, or answered one whose write it lost). The
                    // set is saved over it again, never given up for it.
                    Ok(Some(found))
                        if base == Some(found.version)
                            && found.value.as_coordination().is_none() =>
                    {
                        tracing::warn!(
                            found = found.version,
                            "the store refused a save at the version it holds; saving again"
                        );
                        expected = base;
                    }
                    Ok(Some(found)) if found.value.tokens().is_some() => {
                        return Persisted::Superseded(found);
                    }
                    Ok(Some(found)) if found.value.as_coordination().is_some() => {
                        return Persisted::Failed(not_a_session(key));
                    }
                    // A verdict on the very version this set was refreshed from is
                    // overwritten (the provider has just answered its token: it was
                    // reached by a process that took a lapsed lease over and sent the token
                    // again), and so is one on an older record (a store gone back to it);
                    // one on a later record is not (an insert had the last word).
                    Ok(Some(Versioned {
                        version,
                        value: StoredRecord::Reauth(verdict),
                    })) if verdict
                        .replaced
                        .is_some_and(|judged| base.is_none_or(|base| judged > base)) =>
                    {
                        return Persisted::Judged(Versioned {
                            version,
                            value: verdict,
                        });
                    }
                    // Removed since the refresh started: a refresh must not bring it back.
                    Ok(None) if base.is_some() => return Persisted::Removed,
                    Ok(found) => expected = found.map(|f| f.version),
                    Err(error) => return Persisted::Failed(error.into()),
                },
                Err(error) => return Persisted::Failed(error.into()),
            }
        }
        Persisted::Failed(
            StoreError::Conflict {
                expected,
                found: None,
            }
            .into(),
        )
    }

    /// Saves a set the application handed over (it has the last word): on a version
    /// conflict it overwrites what it finds, and a record the store cannot read (written by
    /// a newer release, damaged) is removed first (see [`clear_unreadable`]).
    ///
    /// [`clear_unreadable`]: Self::clear_unreadable
    pub(super) async fn save_authoritative(
        &self,
        key: &SessionKey,
        set: &StoredTokenSet,
    ) -> Result<Version, Error> {
        let mut record = None;
        let mut expected = self.clear_unreadable(key).await?;
        for _ in 0..3 {
            match self.save_set(key, set, None, &mut record, expected).await {
                Ok(version) => return Ok(version),
                Err(StoreError::Conflict { found, .. }) => expected = found,
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::Conflict {
            expected,
            found: None,
        }
        .into())
    }

    /// The version of `key`'s record (`None`: none), for a write that replaces or removes
    /// whatever it holds (an insert, a remove). A record the store cannot read (written by a
    /// newer release, damaged) is removed first, kept it would refuse every new login of the
    /// session for good: by compare-and-swap on the record as read
    /// ([`TokenStore::delete_unreadable`]), so that a delete landing late (after its call
    /// timed out) removes no record written since, such as another process's login.
    pub(super) async fn clear_unreadable(
        &self,
        key: &SessionKey,
    ) -> Result<Option<Version>, Error> {
        let mut unread = String::new();
        for _ in 0..3 {
            match self.store.load(key).await {
                Ok(found) => return Ok(found.map(|found| found.version)),
                Err(StoreError::Corrupt(reason)) => {
                    // None: readable or gone since, looked at again.
                    if let Some(seen) = self.store.unreadable(key).await? {
                        tracing::warn!(%reason, "removing a record that cannot be read");
                        self.store.delete_unreadable(key, &seen).await?;
                    }
                    unread = reason;
                }
                Err(error) => return Err(error.into()),
            }
        }
        // Unreadable again at each look: the store keeps writing such records.
        Err(StoreError::Corrupt(unread).into())
    }

    /// Removes `key`'s record, whatever it holds, by compare-and-swap on the version read
    /// (or on the unreadable record read, see [`clear_unreadable`]): a delete landing late
    /// (after its call timed out) removes no record written since, such as another
    /// process's next login. A record saved between the read and the delete (another
    /// process's refresh) is read and removed in turn, a few times at most.
    ///
    /// [`clear_unreadable`]: Self::clear_unreadable
    pub(super) async fn delete_whatever(&self, key: &SessionKey) -> Result<(), Error> {
        let mut expected = None;
        for _ in 0..3 {
            let Some(version) = self.clear_unreadable(key).await? else {
                return Ok(());
            };
            expected = Some(version);
            match self.store.delete(key, Some(version)).await {
                Ok(_) => return Ok(()),
                Err(StoreError::Conflict { .. }) => {}
                Err(error) => return Err(error.into()),
            }
        }
        Err(StoreError::Conflict {
            expected,
            found: None,
        }
        .into())
    }

    /// Saves `set` if the stored record is at `expected`: a `MemoryStore` keeps `shared`
    /// (the state that holds `set`) itself, any other store is given a record made once (in
    /// `record`) for all attempts.
    async fn save_set(
        &self,
        key: &SessionKey,
        set: &StoredTokenSet,
        shared: Option<Arc<dyn SharedSet>>,
        record: &mut Option<StoredRecord>,
        expected: Option<Version>,
    ) -> Result<Version, StoreError> {
        if let (Some(memory), Some(shared)) = (&self.memory, shared) {
            return memory.save_shared(key, shared, expected);
        }
        let record = record.get_or_insert_with(|| StoredRecord::Tokens(set.clone()));
        self.store.save(key, record, expected).await
    }

    /// Saves `unsaved` again in the background, keeping the refresh lease (renewed before
    /// every attempt) until it is saved, so no other process refreshes with the refresh
    /// token this one already spent. Releases the lease at the end.
    pub(super) fn spawn_save_retry(
        self: Arc<Self>,
        session: Arc<Session<P::Extras>>,
        unsaved: Ready<P::Extras>,
    ) {
        let inner = self.clone();
        // The refresh's count of the lease goes with the save.
        let users = self.lease_users(&session);
        let handed = super::lease::Counted::take(&users).then_some(users);
        self.spawn_background(super::lease::Counted::scope(handed, async move {
            inner.save_retry(&session, &unsaved).await;
            inner.release(&session).await;
        }));
    }

    async fn save_retry(&self, session: &Session<P::Extras>, unsaved: &Ready<P::Extras>) {
        // Until saved, superseded or removed: this set is the only copy of a pair the
        // provider has already rotated to. `shutdown` waits for it (and says so if it must
        // stop first): as each call begins, the set is tried at once (the process may exit
        // at its deadline, shorter than the wait), then on as before until that deadline.
        let mut shutdowns = self.shutdowns_seen();
        let mut attempt = 0u32;
        loop {
            attempt = attempt.saturating_add(1);
            self.background_pause(attempt, &mut shutdowns).await;
            // A panic in an attempt (the application's code runs there too: a `tracing`
            // subscriber's as a failure is logged) fails that attempt, as a store that errs
            // does: ended here, the task would leave the set unsaved and its lease to lapse,
            // for another process to take and present the refresh token already spent.
            let tried = CatchUnwind(Box::pin(self.save_attempt(session, unsaved, attempt)));
            if tried.await.unwrap_or(false) {
                return;
            }
        }
    }

    /// One attempt of [`save_retry`](Self::save_retry): whether it is done (saved, or no
    /// longer to be saved).
    async fn save_attempt(
        &self,
        session: &Session<P::Extras>,
        unsaved: &Ready<P::Extras>,
        attempt: u32,
    ) -> bool {
        let still_current = self
            .state(session)
            .and_then(|state| Ready::of(&state))
            .is_some_and(|current| Ready::ptr_eq(&current, unsaved));
        if !still_current {
            return true;
        }
        if matches!(
            self.renew(session).await,
            super::lease::Renewal::Lost | super::lease::Renewal::TakenOver
        ) {
            tracing::error!("the refresh lease was lost before the new token set could be saved");
        }
        match self.save_again(session, unsaved).await {
            SavedAgain::Done | SavedAgain::Never => true,
            SavedAgain::Failed(error) => {
                tracing::warn!(attempt, %error, "saving the token set failed again");
                if self.config.save_retries > 0 && attempt.is_multiple_of(self.config.save_retries)
                {
                    self.emit(Event::PersistFailed {
                        session: session.name().clone(),
                        error: error.to_string(),
                    });
                }
                false
            }
        }
    }

    /// Saves again a set whose save had failed ([`save_unsaved`](Self::save_unsaved)), for
    /// the background save and for `shutdown`: done (saved, superseded, or the session
    /// removed), never to be saved (logged), or failed again.
    async fn save_again(
        &self,
        session: &Session<P::Extras>,
        unsaved: &Ready<P::Extras>,
    ) -> SavedAgain {
        match self.save_unsaved(session, unsaved).await {
            Ok(_) | Err(Error::NoTokens(_) | Error::ReauthRequired(_)) => SavedAgain::Done,
            Err(error @ Error::Store(StoreError::Corrupt(_) | StoreError::Unsupported(_))) => {
                // Another kind of record sits under the key, or the store cannot hold the
                // key: saving again cannot help.
                tracing::error!(%error, "the new token set cannot be saved; kept in memory");
                SavedAgain::Never
            }
            Err(error) => SavedAgain::Failed(error),
        }
    }

    /// After `shutdown`'s wait for its tasks: saves every set still unsaved in memory, whose
    /// background save no longer runs (its task was dropped with the runtime that ran it,
    /// which this process outlived), and gives its lease back unless another user in this
    /// process counts it (the dropped task counted itself out). How many are left unsaved
    /// (the store failed again).
    pub(super) async fn save_orphans(&self) -> usize {
        let mut left = 0;
        for session in self.unsaved() {
            // A panic in one (the application's code runs there too: a `tracing`
            // subscriber's as a failure is logged) fails that save as a store error does:
            // it is tried again until the deadline, and `shutdown` returns rather than
            // unwind with the pairs still unsaved.
            let saved = CatchUnwind(Box::pin(self.save_orphan(&session))).await;
            left += usize::from(!saved.unwrap_or(false));
        }
        left
    }

    /// [`save_orphans`](Self::save_orphans) for one session: whether it is done (saved,
    /// never to be saved, or no longer unsaved).
    async fn save_orphan(&self, session: &Session<P::Extras>) -> bool {
        let current = self.state(session).and_then(|state| Ready::of(&state));
        let Some(unsaved) = current.filter(|current| !current.saved()) else {
            return true;
        };
        match self.save_again(session, &unsaved).await {
            SavedAgain::Done => {
                self.release_unused(session).await;
                true
            }
            SavedAgain::Never => true,
            SavedAgain::Failed(error) => {
                tracing::warn!(%error, "saving the token set failed again at shutdown");
                false
            }
        }
    }

    /// What a background write watches to try at once when `shutdown` is called: as if
    /// called already when it has been.
    pub(super) fn shutdowns_seen(&self) -> tokio::sync::watch::Receiver<u64> {
        let mut shutdowns = self.shutdowns.subscribe();
        if self.closing() {
            shutdowns.mark_changed();
        }
        shutdowns
    }

    /// The wait of a background write before its `attempt`th try ([`background_wait`]),
    /// ended early by a call of `shutdown` (each call, seen through `shutdowns`).
    ///
    /// [`background_wait`]: Self::background_wait
    pub(super) async fn background_pause(
        &self,
        attempt: u32,
        shutdowns: &mut tokio::sync::watch::Receiver<u64>,
    ) {
        tokio::select! {
            () = tokio::time::sleep(self.background_wait(attempt)) => {}
            Ok(()) = shutdowns.changed() => {}
        }
    }

    /// How long a background write (a failed set's save, a verdict's record) waits before
    /// its `attempt`th try: the retry policy's backoff, but at most a heartbeat, so that a
    /// store back from an outage is written to within one, and at least a tenth of a
    /// second, so that a policy without backoff (meant for the provider's retries) does not
    /// call a failing store, and log its failure, as fast as it answers.
    pub(super) fn background_wait(&self, attempt: u32) -> std::time::Duration {
        self.config
            .retry
            .backoff(attempt, None)
            .min(self.config.heartbeat())
            .max(std::time::Duration::from_millis(100))
    }

    /// Saves a set whose save had failed, replacing the version it was refreshed from, and
    /// publishes the saved set (or what superseded it) if the session still holds `unsaved`:
    /// a background save and a refresh may both save it, and the refresh may have published
    /// a newer pair (in the same generation) by the time the other save returns.
    pub(super) async fn save_unsaved(
        &self,
        session: &Session<P::Extras>,
        unsaved: &Ready<P::Extras>,
    ) -> Result<Ready<P::Extras>, Error> {
        match (self.persist(&self.key(session), unsaved, unsaved.version(), true)).await {
            // A set for a session the store had no record of (issued): a save that expects
            // no record cannot tell a removed session from a new one, so a remove while it
            // was under way would be undone by it; the save is taken back, as a refresh's
            // is (`removed_since`).
            Persisted::Saved(version)
                if unsaved.version().is_none()
                    && self.removed_while_unsaved(session, unsaved, version).await =>
            {
                Err(self.no_tokens(session))
            }
            Persisted::Saved(version) => {
                // A new publication (its saved flag is part of what callers compare), with
                // the same set.
                let saved = Ready::new(unsaved.saved_at(version));
                self.publish_over(session, unsaved, saved.clone());
                self.emit(Event::Persisted {
                    session: session.name().clone(),
                    version,
                });
                Ok(saved)
            }
            Persisted::Superseded(found) => {
                let version = found.version;
                let (set, extras) = found
                    .value
                    .into_tokens()
                    .ok_or_else(|| {
                        Error::from(StoreError::Corrupt("a record without tokens".into()))
                    })
                    .and_then(super::from_stored)?;
                let adopted = Ready::new(self.current_from(set, extras, Some(version), true));
                if self.publish_over(session, unsaved, adopted.clone()) {
                    self.emit(Event::Adopted {
                        session: session.name().clone(),
                        version,
                    });
                }
                Ok(adopted)
            }
            Persisted::Removed => {
                self.publish_over(
                    session,
                    unsaved,
                    State::Absent {
                        checked_at: Stamp::at(self.clock.now()),
                    },
                );
                Err(self.no_tokens(session))
            }
            Persisted::Judged(verdict) => {
                let (dead, error) = self.judged_elsewhere(session, verdict);
                self.publish_over(session, unsaved, dead);
                Err(error)
            }
            Persisted::Failed(error) => Err(error),
        }
    }
}

impl<P: Provider> Inner<P> {
    /// After saving `unsaved` at `version` where the store had no record: whether the
    /// session was removed since `unsaved` was published (it holds no tokens now, and not
    /// that set); if so, the save is taken back, so that it does not bring the session
    /// back.
    async fn removed_while_unsaved(
        &self,
        session: &Session<P::Extras>,
        unsaved: &Ready<P::Extras>,
        version: Version,
    ) -> bool {
        // A remove through the store holds this for its delete and its publication: it
        // either published before this look, or deletes the record saved here.
        let _writing = session.writer().lock().await;
        let removed = self
            .state(session)
            .is_some_and(|state| !unsaved.is(&state) && matches!(*state, State::Absent { .. }));
        if removed && let Err(error) = self.store.delete(&self.key(session), Some(version)).await {
            tracing::warn!(%error, "could not take back the set saved for a removed session");
        }
        removed
    }

    /// The state and the error of a session whose verdict another process recorded (and
    /// reported: no second event).
    pub(super) fn judged_elsewhere(
        &self,
        session: &Session<P::Extras>,
        verdict: Versioned<ReauthVerdict>,
    ) -> (State<P::Extras>, Error) {
        let reauth = self.reauth_from(session, verdict.value);
        tracing::warn!(
            "a re-auth verdict on a later record was recorded meanwhile; the refreshed set is dropped"
        );
        let error = Error::ReauthRequired(reauth.clone());
        let dead = State::Dead {
            reauth: Box::new(reauth),
            version: Some(verdict.version),
            checked_at: Stamp::at(self.clock.now()),
        };
        (dead, error)
    }
}

/// How a set whose save had failed fared when saved again.
enum SavedAgain {
    /// Saved, or no longer the session's to save (superseded, removed).
    Done,
    /// The store cannot hold it (another kind of record, or a key it refuses).
    Never,
    /// The store failed again.
    Failed(Error),
}
