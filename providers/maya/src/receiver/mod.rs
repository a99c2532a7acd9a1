//! The Session URL receiver: Maya POSTs a customer's first tokens to the partner, which keeps
//! them under a new single-use `sessionId` that its front-end redeems once.
//!
//! Framework-agnostic over `http` types; see [`crate::axum`] (feature `axum`) for an adapter.
//! Its own records live in the manager's store beside the tokens (`records`).

mod records;

use std::time::Duration;

use http::{Method, StatusCode};
use time::OffsetDateTime;
use token_core::codec::{TokenResponse, encode_error};
use token_core::{error::Error, error::StoreError, manager::TokenManager, token_set::TokenSet};

use token_core::oauth::{OAuthCode, OAuthError};

use crate::endpoints::MayaTokens;
use crate::provider::Maya;
use records::{BoundOver, Claim, Claimed, Records, Remembered, Session, State};
use token_core::store::Version;

pub use records::SESSION_URL_NAMESPACE;

/// The header Maya sends with the Session URL POST.
const REFERENCE: &str = "Request-Reference-No";
/// Maya's limit for `sessionId`, which also bounds what we accept as a reference number.
const MAX_LEN: usize = 255;
/// The largest Session URL body accepted: Maya's three tokens fit many times over.
pub(crate) const MAX_BODY: usize = 64 * 1024;

/// How many sessions a [`SessionReceiver`] remembers at once unless
/// [`with_max_sessions`](SessionReceiver::with_max_sessions) says otherwise.
pub const DEFAULT_MAX_SESSIONS: usize = 1000;

/// Receives Maya's Session URL POST and hands the tokens over to the partner's user session.
///
/// One "use" of a `sessionId` is its [redemption](Self::redeem): the partner's front-end
/// (to which Maya passes the `sessionId`) asks the back-end to bind it to the user's own
/// session, which moves the tokens from under the `sessionId` to the partner's session key.
/// A second redemption, or one after [`redeem_within`](Self::with_redeem_within), is
/// refused, so a `sessionId` that leaked from a URL or a log is worth nothing.
///
/// Handling of Maya's POST ([`receive`](Self::receive)):
/// - only `POST`, with one `Request-Reference-No` of 1 to 255 visible ASCII characters, a body
///   of at most 64 KiB `{"accessToken", "refreshToken", "expiresAt"}` (read with
///   [`MayaTokens`]) and tokens that are not empty, the access token free of control characters
///   (a refresh token may hold one: it travels escaped, in a body); anything else is answered 4xx
///   `{"error": "invalid_request", ...}` and stores nothing;
/// - the tokens are inserted in the [`TokenManager<Maya>`] under a new UUIDv4 `sessionId`,
///   then answered 200 `{"sessionId": "..."}`;
/// - the same `Request-Reference-No` again (Maya retrying after losing our answer) gets the
///   same `sessionId` while it is unredeemed, and 409 once redeemed; with other tokens than
///   the POST that claimed the reference (or than the session holds) it is not Maya's retry
///   (a reference number is no secret: it is logged) and gets 409 too, never the
///   `sessionId`;
/// - the POST carries no credential, so whoever finds the Session URL can send one: with
///   [`with_max_sessions`](Self::with_max_sessions) sessions remembered (1000 by default,
///   pending or redeemed, each for twice `redeem_within`), a new reference is answered 503
///   and stores nothing, so a flood of made-up references cannot grow the store without
///   bound. A reference already claimed is still answered.
///
/// **Several replicas.** Which reference claimed which `sessionId`, and whether a session is
/// pending or redeemed, is kept in the manager's own store ([`TokenManager::store`]) beside
/// the tokens, as [coordination records](token_core::store::StoredRecord::Coordination)
/// under the namespace [`SESSION_URL_NAMESPACE`]`/` and the manager's
/// [`namespace`](TokenManager::namespace) (the receiver of another client on the store has
/// its own). Give every replica a manager over
/// one shared store (a `PostgresStore`; a `FileStore` directory for processes on one
/// machine) and any replica can take Maya's POST and any other the redemption. Across the
/// replicas sharing the store:
/// - a reference is claimed atomically (a compare-and-swap save that expects no record), so
///   the same reference POSTed to two replicas at once, or retried on another one after a
///   lost answer, yields one session and the same `sessionId` in every answer; a replica
///   that finds the claim completes whatever the claimer had not stored yet;
/// - a redemption moves the session from pending to redeemed by compare-and-swap, so exactly
///   one of several concurrent redemptions wins; if moving the tokens then fails, the session
///   is pending again and can be redeemed once more;
/// - every session is remembered for twice [`redeem_within`](Self::with_redeem_within), so
///   that Maya's retry still gets its `sessionId`, then forgotten by whichever replica
///   receives the next POST or is asked to redeem it: its records are deleted, and the
///   tokens of a session never redeemed are removed through the manager;
/// - deadlines are read from each replica's manager clock, so keep the replicas' clocks in
///   step (NTP) to well within `redeem_within`.
///
/// With the default [`MemoryStore`](token_core::store::MemoryStore) all of this holds inside one
/// process only.
///
/// ```
/// # async fn run(manager: token_core::manager::TokenManager<token_provider_maya::Maya>,
/// #              request: http::Request<Vec<u8>>) -> Result<(), token_provider_maya::RedeemError> {
/// use token_provider_maya::SessionReceiver;
///
/// let receiver = SessionReceiver::new(manager.clone());
/// // Maya's POST to the Session URL:
/// let answer = receiver.receive(request).await; // 200 {"sessionId": "…"}
/// # let session_id = String::new();
/// // Later the front-end sends `sessionId` to the back-end, which binds it to its user:
/// receiver.redeem(&session_id, "user-42").await?;
/// let token = manager.access_token("user-42").await;
/// # Ok(()) }
/// ```
///
/// Two replicas, each with its own manager over the one shared store:
///
/// ```
/// # use std::sync::Arc;
/// # use token_core::{manager::TokenManager, store::TokenStore};
/// # use token_provider_maya::{Maya, SessionReceiver};
/// # async fn run(maya_on_a: Maya, maya_on_b: Maya, store: Arc<dyn TokenStore>,
/// #              request: http::Request<Vec<u8>>) -> Result<(), Box<dyn std::error::Error>> {
/// // `store`: a PostgresStore (feature `postgres` of token-core) every replica opens.
/// let replica = |maya| TokenManager::builder(maya).shared_store(store.clone()).build();
/// let on_a = SessionReceiver::new(replica(maya_on_a)?);
/// let on_b = SessionReceiver::new(replica(maya_on_b)?);
/// let answer = on_a.receive(request).await; // Maya's POST reached replica A
/// # let session_id = String::new();
/// on_b.redeem(&session_id, "user-42").await?; // the front-end's call reached replica B
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct SessionReceiver {
    manager: TokenManager<Maya>,
    records: Records,
    redeem_within: Duration,
    max_sessions: usize,
}

/// Why a `sessionId` could not be redeemed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RedeemError {
    /// No tokens were received under this `sessionId` (or it lapsed and was forgotten).
    #[error("unknown sessionId")]
    Unknown,
    /// The `sessionId` was redeemed before: it is single use.
    #[error("the sessionId was already used")]
    AlreadyUsed,
    /// The `sessionId` was not redeemed in time.
    #[error("the sessionId has expired")]
    Expired,
    /// The tokens could not be moved to the partner's session (store failure); a
    /// redemption of the `sessionId` for the same partner session finishes the move.
    #[error(transparent)]
    Tokens(#[from] Error),
    /// The receiver's own records could not be read or written (a store failure).
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What became of a valid POST.
enum Opened {
    /// The reference's session, pending: answer its `sessionId`.
    Pending(String),
    /// The reference's session was redeemed already.
    Redeemed,
    /// The reference's session holds other tokens than the POST: not Maya's retry.
    OtherTokens,
    /// A new reference while as many sessions are remembered as may be: nothing stored.
    Full,
}

impl SessionReceiver {
    /// A receiver storing through `manager`, its records in the manager's store; a
    /// `sessionId` must be redeemed within 10 minutes.
    pub fn new(manager: TokenManager<Maya>) -> Self {
        Self {
            records: Records::new(manager.store().clone(), manager.namespace()),
            manager,
            redeem_within: Duration::from_secs(600),
            max_sessions: DEFAULT_MAX_SESSIONS,
        }
    }

    /// Sets how many sessions are remembered at once (default [`DEFAULT_MAX_SESSIONS`]);
    /// beyond it a new `Request-Reference-No` is answered 503. Every POST reads and rewrites
    /// one index record that lists them, so keep it to what arrives within twice
    /// `redeem_within`. Replicas count the sessions they share; give every one the same.
    pub fn with_max_sessions(mut self, max: usize) -> Self {
        self.max_sessions = max;
        self
    }

    /// Sets how long a `sessionId` can wait for its redemption. Give every replica the same.
    pub fn with_redeem_within(mut self, within: Duration) -> Self {
        self.redeem_within = within;
        self
    }

    /// The manager the tokens go to.
    pub fn manager(&self) -> &TokenManager<Maya> {
        &self.manager
    }

    /// Answers Maya's Session URL POST (see the type's docs).
    pub async fn receive(&self, request: http::Request<Vec<u8>>) -> http::Response<Vec<u8>> {
        if request.method() != Method::POST {
            let mut answer = refuse(StatusCode::METHOD_NOT_ALLOWED, "only POST is accepted");
            answer
                .headers_mut()
                .insert(http::header::ALLOW, http::HeaderValue::from_static("POST"));
            return answer;
        }
        if request.body().len() > MAX_BODY {
            return too_large();
        }
        let Some(reference) = reference_of(&request) else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "missing or invalid Request-Reference-No",
            );
        };
        let now = self.now();
        let set = match tokens_of(request.body(), now) {
            Ok(set) => set,
            Err(reason) => return refuse(StatusCode::BAD_REQUEST, &reason),
        };
        let set = self
            .manager
            .provider()
            .config()
            .stamp_refresh_expiry(set, None, now);

        // An entry for this reference is another POST of it (Maya's retry) being stored:
        // this one is the same session, not a new one past the cap.
        let remembered = self.forget_lapsed(now, &reference).await;
        if remembered.is_some_and(|(count, entered)| count >= self.max_sessions && !entered) {
            match self.records.claimed(&reference).await {
                Ok(Some(_)) => {}
                Ok(None) => return too_many_sessions(self.max_sessions),
                Err(error) => {
                    tracing::error!(%error, "could not read the Maya session claims");
                    return refuse(
                        StatusCode::INTERNAL_SERVER_ERROR,
                        "could not store the tokens",
                    );
                }
            }
        }
        match self.open(&reference, set, now).await {
            Ok(Opened::Pending(session_id)) => {
                tracing::info!("Maya session received");
                session_answer(&session_id)
            }
            Ok(Opened::Full) => too_many_sessions(self.max_sessions),
            Ok(Opened::Redeemed) => {
                refuse(StatusCode::CONFLICT, "this Request-Reference-No was used")
            }
            Ok(Opened::OtherTokens) => {
                tracing::warn!(
                    "Maya session refused: other tokens under a Request-Reference-No already claimed"
                );
                refuse(StatusCode::CONFLICT, "this Request-Reference-No was used")
            }
            Err(error) => {
                // Maya tries again; the retry finds the claim and completes the session.
                tracing::error!(%error, "could not store the tokens Maya sent");
                refuse(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "could not store the tokens",
                )
            }
        }
    }

    /// Redeems `session_id` once: moves its tokens to the partner's session `bind_to` (the
    /// same name keeps them where they are) and returns them.
    ///
    /// A redemption that failed or was dropped midway (a store failure, a store's reply
    /// lost, a client that hung up) is finished by a redemption for the same `bind_to`; for
    /// any other, the `sessionId` is [`RedeemError::AlreadyUsed`] from the moment a
    /// redemption took it, so its tokens never reach two partner sessions.
    pub async fn redeem(&self, session_id: &str, bind_to: &str) -> Result<TokenSet, RedeemError> {
        if session_id.is_empty() || session_id.len() > MAX_LEN {
            return Err(RedeemError::Unknown);
        }
        let now = self.now();
        // Loops only when another replica moved the session first.
        for _ in 0..3 {
            let found = self
                .records
                .session(session_id)
                .await?
                .ok_or(RedeemError::Unknown)?;
            let session = found.value;
            let ours = session.bound_to.as_deref() == Some(bind_to);
            match session.state {
                State::Pending => {}
                State::Redeemed if ours => {
                    return self
                        .finish(session_id, bind_to, &session, found.version)
                        .await;
                }
                State::Bound if ours => {
                    self.remove_copy(session_id, bind_to).await;
                    return Ok(self.manager.token_set(bind_to).await?);
                }
                State::Redeemed | State::Bound => return Err(RedeemError::AlreadyUsed),
            }
            if lapsed(session.received_at, self.redeem_within, now) {
                if lapsed(session.received_at, self.keep(), now) {
                    self.forget_all(&[Remembered {
                        session_id: session_id.to_owned(),
                        reference: session.reference.clone(),
                        received_at: session.received_at,
                    }])
                    .await;
                }
                return Err(RedeemError::Expired);
            }
            // What the partner's session holds before the move: a redemption finishing this
            // one tells by it whether the tokens got there.
            let bound_over = match bind_to != session_id {
                true => Some(BoundOver {
                    version: self.version_of(bind_to).await?,
                }),
                false => None,
            };
            let redeemed = Session {
                state: State::Redeemed,
                bound_to: Some(bind_to.to_owned()),
                bound_over,
                ..session.clone()
            };
            let version = match self
                .records
                .swap_session(session_id, &redeemed, found.version)
                .await
            {
                Ok(version) => version,
                // Another replica moved it first: look again.
                Err(StoreError::Conflict { .. }) => continue,
                // The swap may have landed all the same (its reply lost): a redemption for
                // the same `bind_to` finishes it.
                Err(error) => return Err(error.into()),
            };
            return self.bind(session_id, bind_to, &redeemed, version).await;
        }
        Err(RedeemError::AlreadyUsed)
    }

    /// Finishes the redemption of `session_id` for `bind_to` that took it (`session`, at
    /// `version`) and did not mark it bound: it failed or was dropped, before or after the
    /// tokens reached `bind_to`. If `bind_to` was written since that redemption took the
    /// session, they did, and may have been refreshed there since (the refresh token rotated,
    /// the copy's spent): the copy is neither put back over them nor refreshed.
    async fn finish(
        &self,
        session_id: &str,
        bind_to: &str,
        session: &Session,
        version: Version,
    ) -> Result<TokenSet, RedeemError> {
        let moved = match session.bound_over {
            Some(BoundOver { version: before }) if bind_to != session_id => {
                self.version_of(bind_to).await? != before
            }
            _ => false,
        };
        if !moved {
            return self.bind(session_id, bind_to, session, version).await;
        }
        self.mark_bound(session_id, bind_to, session, version).await;
        Ok(self.manager.token_set(bind_to).await?)
    }

    /// The version of `session`'s record in the store; `None` if it has none, or one that
    /// cannot be read (which an insert replaces).
    async fn version_of(&self, session: &str) -> Result<Option<Version>, StoreError> {
        let key = self.manager.session_key(session);
        match self.manager.store().load(&key).await {
            Ok(found) => Ok(found.map(|found| found.version)),
            Err(StoreError::Corrupt(_)) => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Moves the tokens of `session_id`, redeemed for `bind_to` (`session`, at `version`),
    /// there, and marks the session bound. A failure leaves the session redeemed for
    /// `bind_to`, for a redemption for `bind_to` to finish.
    async fn bind(
        &self,
        session_id: &str,
        bind_to: &str,
        session: &Session,
        version: Version,
    ) -> Result<TokenSet, RedeemError> {
        let set = match self.manager.token_set(session_id).await {
            Ok(set) => set,
            // Moved already, the session not yet marked (its mark failed): they are there.
            Err(error @ Error::NoTokens(_)) if bind_to != session_id => {
                match self.manager.token_set(bind_to).await {
                    Ok(set) => set,
                    Err(_) => return Err(error.into()),
                }
            }
            Err(error) => return Err(error.into()),
        };
        if bind_to != session_id {
            self.manager.insert(bind_to, set.clone()).await?;
        }
        self.mark_bound(session_id, bind_to, session, version).await;
        Ok(set)
    }

    /// Marks `session_id` (`session`, at `version`), whose tokens are in `bind_to`, bound,
    /// and removes its copy of them.
    async fn mark_bound(
        &self,
        session_id: &str,
        bind_to: &str,
        session: &Session,
        version: Version,
    ) {
        let bound = Session {
            state: State::Bound,
            ..session.clone()
        };
        if let Err(error) = self.records.swap_session(session_id, &bound, version).await {
            // The tokens are where they belong; a later redemption for `bind_to` finds them.
            tracing::warn!(%error, "a Maya redemption could not be marked finished");
        }
        self.remove_copy(session_id, bind_to).await;
    }

    /// Removes what is left under `session_id` once its tokens reached `bind_to`; a copy
    /// left by a failure is removed when the session lapses.
    async fn remove_copy(&self, session_id: &str, bind_to: &str) {
        if bind_to != session_id
            && let Err(error) = self.manager.remove(session_id).await
        {
            tracing::warn!(%error, "the copy of redeemed Maya tokens is left until the session lapses");
        }
    }

    /// Claims `reference` for a new session, or finds the session that claimed it, and makes
    /// sure that session is complete in the store.
    async fn open(
        &self,
        reference: &str,
        set: TokenSet,
        now: OffsetDateTime,
    ) -> Result<Opened, Error> {
        // Twice at most: a lapsed claim is forgotten and the reference claimed anew.
        for _ in 0..2 {
            let theirs = match self.records.claimed(reference).await? {
                Some(theirs) => theirs,
                None => match self.claim(reference, &set, now).await? {
                    Claimed::Ours(ours) => return self.complete(reference, ours, set).await,
                    Claimed::Before(theirs) => theirs,
                    Claimed::Full => return Ok(Opened::Full),
                },
            };
            if lapsed(theirs.received_at, self.keep(), now) {
                self.forget_all(&[Remembered {
                    session_id: theirs.session_id,
                    reference: reference.to_owned(),
                    received_at: theirs.received_at,
                }])
                .await;
                continue;
            }
            return self.complete(reference, theirs, set).await;
        }
        Err(StoreError::Backend {
            message: "the Request-Reference-No's old session could not be forgotten".into(),
            source: None,
        }
        .into())
    }

    /// Claims `reference` for a new session, entered in the index first: a claim is never in
    /// the store without the index entry by which it is forgotten when it lapses (a claim
    /// whose sender never came back would otherwise stay for good). An entry left by a
    /// failed or lost claim names no session and lapses harmlessly; one that lost to
    /// another claim is taken out at once.
    async fn claim(
        &self,
        reference: &str,
        set: &TokenSet,
        now: OffsetDateTime,
    ) -> Result<Claimed, StoreError> {
        let session_id = uuid::Uuid::new_v4().to_string();
        let ours = Claim {
            tokens: Some(fingerprint(&session_id, set)),
            session_id,
            received_at: now,
        };
        let entry = Remembered {
            session_id: ours.session_id.clone(),
            reference: reference.to_owned(),
            received_at: now,
        };
        if !self
            .records
            .remember_within(&entry, self.max_sessions)
            .await?
        {
            return Ok(Claimed::Full);
        }
        let claimed = self.records.claim(reference, &ours).await?;
        if let Claimed::Before(_) = &claimed
            && let Err(error) = self.records.forget(&[ours.session_id]).await
        {
            tracing::warn!(%error, "could not update the index of Maya sessions");
        }
        Ok(claimed)
    }

    /// Stores whatever of the claimed session is not in the store yet: its index entry, its
    /// pending record, its tokens. Whoever finds a claim does this too, since the replica
    /// that claimed may have died midway; the tokens of a retry are Maya's same tokens.
    /// Other tokens than those that claimed the reference are refused before anything is
    /// stored: looked for in the store only, they would be missed while the claimer has not
    /// stored its own yet, and both POSTs answered the `sessionId`.
    async fn complete(
        &self,
        reference: &str,
        claim: Claim,
        set: TokenSet,
    ) -> Result<Opened, Error> {
        if let Some(claimed) = &claim.tokens {
            let posted = fingerprint(&claim.session_id, &set);
            if !token_core::sign::constant_time_eq(claimed.as_bytes(), posted.as_bytes()) {
                return Ok(Opened::OtherTokens);
            }
        }
        self.records
            .remember(&Remembered {
                session_id: claim.session_id.clone(),
                reference: reference.to_owned(),
                received_at: claim.received_at,
            })
            .await?;
        let session = self
            .records
            .open(
                &claim.session_id,
                &Session::pending(reference, claim.received_at),
            )
            .await?;
        if session.value.redeemed() {
            return Ok(Opened::Redeemed);
        }
        let tokens = self.manager.session_key(&claim.session_id);
        match self.manager.store().load(&tokens).await? {
            None => self.manager.insert(&claim.session_id, set).await?,
            // The reference is no secret: whoever sends other tokens under it is not Maya
            // retrying, and must not learn the session's id.
            Some(stored) if !same_tokens(stored.value.tokens(), &set) => {
                return Ok(Opened::OtherTokens);
            }
            Some(_) => {}
        }
        Ok(Opened::Pending(claim.session_id))
    }

    /// Forgets every remembered session older than twice `redeem_within`, and returns how
    /// many are remembered besides and whether one of those is for `reference` (`None`: the
    /// index could not be read). Failures are logged: the next POST tries again.
    async fn forget_lapsed(&self, now: OffsetDateTime, reference: &str) -> Option<(usize, bool)> {
        let (lapsed, kept): (Vec<Remembered>, Vec<Remembered>) =
            match self.records.remembered().await {
                Ok(remembered) => remembered
                    .into_iter()
                    .partition(|r| lapsed(r.received_at, self.keep(), now)),
                Err(error) => {
                    tracing::warn!(%error, "could not read the Maya sessions to forget");
                    return None;
                }
            };
        self.forget_all(&lapsed).await;
        Some((kept.len(), kept.iter().any(|r| r.reference == reference)))
    }

    async fn forget_all(&self, lapsed: &[Remembered]) {
        let mut forgotten = Vec::new();
        for entry in lapsed {
            match self.forget(entry).await {
                Ok(true) => forgotten.push(entry.session_id.clone()),
                Ok(false) => {}
                Err(error) => tracing::warn!(%error, "could not forget a lapsed Maya session"),
            }
        }
        if let Err(error) = self.records.forget(&forgotten).await {
            tracing::warn!(%error, "could not update the index of Maya sessions");
        }
    }

    /// Forgets one lapsed session: its tokens unless a redemption bound them under its own
    /// id, then its claim and its record. `false` when its record moved on meanwhile.
    async fn forget(&self, entry: &Remembered) -> Result<bool, Error> {
        let session = self.records.session(&entry.session_id).await?;
        if let Some(found) = &session
            && found.value.tokens_unowned(&entry.session_id)
        {
            // Never redeemed (or a stray copy): the tokens have no owner.
            self.manager.remove(&entry.session_id).await?;
        }
        self.records
            .release_claim(&entry.reference, &entry.session_id)
            .await?;
        match session {
            Some(found) => Ok(self
                .records
                .delete_session(&entry.session_id, found.version)
                .await?),
            None => Ok(true),
        }
    }

    /// How long a session is remembered: twice `redeem_within`, for Maya's retries.
    fn keep(&self) -> Duration {
        self.redeem_within.saturating_mul(2)
    }

    fn now(&self) -> OffsetDateTime {
        self.manager.call_context("").now()
    }
}

/// Whether `within` has passed since `since`; never, if the sum is past the calendar.
fn lapsed(since: OffsetDateTime, within: Duration, now: OffsetDateTime) -> bool {
    time::Duration::try_from(within)
        .ok()
        .and_then(|within| since.checked_add(within))
        .is_some_and(|deadline| now >= deadline)
}

/// Whether `stored` holds the access and refresh token of `set`, compared in a time that
/// does not depend on where they differ.
fn same_tokens(stored: Option<&token_core::token_set::StoredTokenSet>, set: &TokenSet) -> bool {
    use token_core::sign::constant_time_eq;
    let Some(stored) = stored else {
        return false;
    };
    fn secret(token: Option<&token_core::secret::RefreshToken>) -> &[u8] {
        token.map_or(&[][..], |token| token.expose_secret().as_bytes())
    }
    let access = constant_time_eq(
        stored.access_token.expose_secret().as_bytes(),
        set.access_token.expose_secret().as_bytes(),
    );
    let refresh = constant_time_eq(
        secret(stored.refresh_token.as_ref()),
        secret(set.refresh_token.as_ref()),
    );
    access & refresh
}

/// The fingerprint of `set`'s access and refresh token that a claim keeps: the lowercase hex
/// of their HMAC-SHA256 keyed with the session's id (each token's length first, so that no
/// two pairs read alike).
fn fingerprint(session_id: &str, set: &TokenSet) -> String {
    let mut message = Vec::new();
    let tokens = [
        set.access_token.expose_secret(),
        set.refresh_token
            .as_ref()
            .map_or("", |token| token.expose_secret()),
    ];
    for token in tokens {
        message.extend_from_slice(&(token.len() as u64).to_be_bytes());
        message.extend_from_slice(token.as_bytes());
    }
    token_core::sign::hmac_sha256(session_id.as_bytes(), &message)
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

/// Reads Maya's body into a token set, or says (without quoting a token) why not.
fn tokens_of(body: &[u8], now: OffsetDateTime) -> Result<TokenSet, String> {
    // Which of two values Maya meant cannot be known (a proxy or a log may keep the other).
    if token_core::codec::repeats_a_key(body) {
        return Err("the body repeats a JSON key".into());
    }
    let set = MayaTokens::decode_body(body)?.into_token_set(now)?;
    let Some(refresh) = &set.refresh_token else {
        return Err("missing refreshToken".into());
    };
    for (field, token) in [
        ("accessToken", set.access_token.expose_secret()),
        ("refreshToken", refresh.expose_secret()),
    ] {
        if token.trim().is_empty() {
            return Err(format!("{field} is empty"));
        }
    }
    // An access token that cannot travel in a header would fail every API call (and
    // `insert` refuses it). A refresh token may hold a control character: it travels in the
    // refresh's JSON body, escaped, as `insert` takes it.
    if (set.access_token.expose_secret().chars()).any(|c| c.is_ascii_control()) {
        return Err("accessToken contains a control character".into());
    }
    Ok(set)
}

fn reference_of<B>(request: &http::Request<B>) -> Option<String> {
    // Sent twice, it is no choice between the two: whoever keyed Maya's retries on the
    // other one (a proxy, a log) would see another session.
    let mut values = request.headers().get_all(REFERENCE).iter();
    let value = values.next()?;
    if values.next().is_some() {
        return None;
    }
    let value = value.to_str().ok()?.trim();
    let valid =
        !value.is_empty() && value.len() <= MAX_LEN && value.bytes().all(|b| b.is_ascii_graphic());
    valid.then(|| value.to_owned())
}

fn session_answer(session_id: &str) -> http::Response<Vec<u8>> {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Answer<'a> {
        session_id: &'a str,
    }
    let body = serde_json::to_vec(&Answer { session_id }).unwrap_or_default();
    let mut answer = http::Response::new(body);
    answer.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    answer
}

/// The answer to a body larger than [`MAX_BODY`].
/// The answer to a new reference while `max_sessions` sessions are remembered.
fn too_many_sessions(max_sessions: usize) -> http::Response<Vec<u8>> {
    tracing::warn!(
        max_sessions,
        "Maya session refused: too many sessions remembered"
    );
    refuse(
        StatusCode::SERVICE_UNAVAILABLE,
        "too many sessions await their redemption",
    )
}

pub(crate) fn too_large() -> http::Response<Vec<u8>> {
    refuse(
        StatusCode::PAYLOAD_TOO_LARGE,
        "the request body is too large",
    )
}

pub(crate) fn refuse(status: StatusCode, description: &str) -> http::Response<Vec<u8>> {
    let mut answer = encode_error(&OAuthError::new(OAuthCode::InvalidRequest, description));
    *answer.status_mut() = status;
    answer
}
