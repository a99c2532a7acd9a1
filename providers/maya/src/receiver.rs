//! The Session URL receiver: Maya POSTs a customer's first tokens to the partner, which keeps
//! them under a new single-use `sessionId` that its front-end redeems once.
//!
//! Framework-agnostic over `http` types; see [`crate::axum`] (feature `axum`) for an adapter.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use http::{Method, StatusCode};
use time::OffsetDateTime;
use token_core::codec::{TokenResponse, encode_error};
use token_core::{Error, TokenManager, TokenSet};

use crate::endpoints::{MayaCode, MayaError, MayaTokens};
use crate::provider::Maya;

/// The header Maya sends with the Session URL POST.
const REFERENCE: &str = "Request-Reference-No";
/// Maya's limit for `sessionId`, which also bounds what we accept as a reference number.
const MAX_LEN: usize = 255;

/// Receives Maya's Session URL POST and hands the tokens over to the partner's user session.
///
/// One "use" of a `sessionId` is its [redemption](Self::redeem): the partner's front-end
/// (to which Maya passes the `sessionId`) asks the back-end to bind it to the user's own
/// session, which moves the tokens from under the `sessionId` to the partner's session key.
/// A second redemption, or one after [`redeem_within`](Self::with_redeem_within), is
/// refused, so a `sessionId` that leaked from a URL or a log is worth nothing.
///
/// Handling of Maya's POST ([`receive`](Self::receive)):
/// - only `POST`, with a `Request-Reference-No` of 1 to 255 visible ASCII characters, and a
///   body `{"accessToken", "refreshToken", "expiresAt"}` (read with [`MayaTokens`]); anything
///   else is answered 4xx `{"error": "invalid_request", ...}` and stores nothing;
/// - the tokens are inserted in the [`TokenManager<Maya>`] under a new UUIDv4 `sessionId`,
///   then answered 200 `{"sessionId": "..."}`;
/// - the same `Request-Reference-No` again (Maya retrying after losing our answer) gets the
///   same `sessionId` while it is unredeemed, and 409 once redeemed.
///
/// Which sessions are pending and which were redeemed is kept in this process's memory: with
/// several replicas, route the Session URL POST and the redemption to the same one (or redeem
/// through it). The tokens themselves are in the manager's store.
///
/// ```
/// # async fn run(manager: token_core::TokenManager<token_provider_maya::Maya>,
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
#[derive(Debug)]
pub struct SessionReceiver {
    manager: TokenManager<Maya>,
    redeem_within: Duration,
    sessions: Mutex<Sessions>,
}

#[derive(Debug, Default)]
struct Sessions {
    by_id: HashMap<String, Pending>,
    by_reference: HashMap<String, String>,
}

#[derive(Debug)]
struct Pending {
    reference: String,
    received_at: OffsetDateTime,
    redeemed: bool,
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
    /// The tokens could not be moved to the partner's session (store failure); the
    /// `sessionId` can be redeemed again.
    #[error(transparent)]
    Tokens(#[from] Error),
}

impl SessionReceiver {
    /// A receiver storing through `manager`; a `sessionId` must be redeemed within 10 minutes.
    pub fn new(manager: TokenManager<Maya>) -> Self {
        Self {
            manager,
            redeem_within: Duration::from_secs(600),
            sessions: Mutex::new(Sessions::default()),
        }
    }

    /// Sets how long a `sessionId` can wait for its redemption.
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
        let Some(reference) = reference_of(&request) else {
            return refuse(
                StatusCode::BAD_REQUEST,
                "missing or invalid Request-Reference-No",
            );
        };
        let now = self.now();
        let tokens = match MayaTokens::decode_body(request.body()) {
            Ok(tokens) => tokens,
            Err(reason) => return refuse(StatusCode::BAD_REQUEST, &reason),
        };
        let set = match tokens.into_token_set(now) {
            Ok(set) => set,
            Err(reason) => return refuse(StatusCode::BAD_REQUEST, &reason),
        };
        if set.refresh_token.is_none() {
            return refuse(StatusCode::BAD_REQUEST, "missing refreshToken");
        }
        let set = self
            .manager
            .provider()
            .config()
            .stamp_refresh_expiry(set, None, now);

        let lapsed = {
            let mut sessions = self.sessions();
            if let Some(id) = sessions.by_reference.get(&reference) {
                return match sessions.by_id.get(id) {
                    Some(pending) if !pending.redeemed => session_answer(id),
                    _ => refuse(StatusCode::CONFLICT, "this Request-Reference-No was used"),
                };
            }
            sessions.lapse(now, self.redeem_within * 2)
        };
        for id in lapsed {
            // Never redeemed: its tokens have no owner.
            if let Err(error) = self.manager.remove(&id).await {
                tracing::warn!(%error, "could not remove an unredeemed Maya session");
            }
        }

        let session_id = uuid::Uuid::new_v4().to_string();
        if let Err(error) = self.manager.insert(&session_id, set).await {
            tracing::error!(%error, "could not store the tokens Maya sent");
            return refuse(
                StatusCode::INTERNAL_SERVER_ERROR,
                "could not store the tokens",
            );
        }
        let mut sessions = self.sessions();
        sessions
            .by_reference
            .insert(reference.clone(), session_id.clone());
        sessions.by_id.insert(
            session_id.clone(),
            Pending {
                reference,
                received_at: now,
                redeemed: false,
            },
        );
        tracing::info!("Maya session received");
        session_answer(&session_id)
    }

    /// Redeems `session_id` once: moves its tokens to the partner's session `bind_to` (the
    /// same name keeps them where they are) and returns them.
    pub async fn redeem(&self, session_id: &str, bind_to: &str) -> Result<TokenSet, RedeemError> {
        let now = self.now();
        {
            let mut sessions = self.sessions();
            let pending = sessions
                .by_id
                .get_mut(session_id)
                .ok_or(RedeemError::Unknown)?;
            if pending.redeemed {
                return Err(RedeemError::AlreadyUsed);
            }
            if now >= pending.received_at + self.redeem_within {
                return Err(RedeemError::Expired);
            }
            // Marked before any await: a concurrent second use is refused.
            pending.redeemed = true;
        }
        match self.bind(session_id, bind_to).await {
            Ok(set) => Ok(set),
            Err(error) => {
                if let Some(pending) = self.sessions().by_id.get_mut(session_id) {
                    pending.redeemed = false;
                }
                Err(error.into())
            }
        }
    }

    async fn bind(&self, session_id: &str, bind_to: &str) -> Result<TokenSet, Error> {
        let set = self.manager.token_set(session_id).await?;
        if bind_to != session_id {
            self.manager.insert(bind_to, set.clone()).await?;
            self.manager.remove(session_id).await?;
        }
        Ok(set)
    }

    fn now(&self) -> OffsetDateTime {
        self.manager.call_context("").now()
    }

    fn sessions(&self) -> MutexGuard<'_, Sessions> {
        // Every update leaves the maps consistent; a panic elsewhere does not corrupt them.
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Sessions {
    /// Forgets sessions older than `keep`; returns the ids that were never redeemed.
    fn lapse(&mut self, now: OffsetDateTime, keep: Duration) -> Vec<String> {
        let old: Vec<String> = self
            .by_id
            .iter()
            .filter(|(_, p)| now >= p.received_at + keep)
            .map(|(id, _)| id.clone())
            .collect();
        let mut unredeemed = Vec::new();
        for id in old {
            if let Some(pending) = self.by_id.remove(&id) {
                self.by_reference.remove(&pending.reference);
                if !pending.redeemed {
                    unredeemed.push(id);
                }
            }
        }
        unredeemed
    }
}

fn reference_of<B>(request: &http::Request<B>) -> Option<String> {
    let value = request.headers().get(REFERENCE)?.to_str().ok()?.trim();
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

fn refuse(status: StatusCode, description: &str) -> http::Response<Vec<u8>> {
    let mut answer = encode_error(&MayaError::new(MayaCode::InvalidRequest, description));
    *answer.status_mut() = status;
    answer
}
