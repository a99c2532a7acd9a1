//! The server side of token refresh: issue token pairs, rotate them on refresh, authenticate
//! access tokens, revoke. A wallet (an Alipay+ MPP answering applyToken) runs it for real; the
//! sandbox (feature `sandbox`) runs it for tests.
//!
//! Tokens are random and stored only as SHA-256 hashes behind the [`IssuerStore`] trait, whose
//! one atomic [`rotate`](IssuerStore::rotate) makes concurrent refreshes with the same refresh
//! token agree on one successor. Within the configured reuse window the old refresh token
//! answers that same successor again (a client whose answer was lost can recover); after it,
//! or once the successor itself was rotated, the old token is dead.
//!
//! A pair issued to a client ([`Issuer::issue_for`], or a code exchange) is bound to it, and
//! so is every successor: only that client may refresh it ([`Issuer::refresh_for`], RFC 6749
//! section 6); to any other it is an unknown refresh token. A pair issued without a client
//! ([`Issuer::issue`]) may be refreshed by anyone holding its refresh token.
//!
//! Authorization codes ([`Issuer::issue_code`], [`Issuer::redeem_code`]) are kept the same
//! way, as hashes, bound to a client, redirect URI, PKCE challenge, scope and subject; the
//! store redeems each at most once, and a code presented again revokes the pair it gave.
//!
//! ```
//! use std::sync::Arc;
//! use std::time::Duration;
//! use token_core::clock::ManualClock;
//! use token_core::issuer::{Issuer, IssuerConfig, IssuerError, MemoryIssuerStore};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), IssuerError> {
//! let clock = ManualClock::default();
//! let config = IssuerConfig::default().with_reuse_window(Duration::from_secs(300));
//! let issuer = Issuer::new(Arc::new(MemoryIssuerStore::new()), Arc::new(clock.clone()), config);
//!
//! let first = issuer.issue("customer-1", serde_json::json!({})).await?;
//! let refresh = first.tokens.refresh_token.clone().expect("the issuer always issues one");
//! let second = issuer.refresh(refresh.expose_secret()).await?;
//! // The answer was lost? The same refresh token answers the same pair for 5 minutes.
//! assert_eq!(issuer.refresh(refresh.expose_secret()).await?.tokens, second.tokens);
//! // The old access token died with the rotation.
//! assert!(issuer.authenticate(first.tokens.access_token.expose_secret()).await.is_err());
//! # Ok(())
//! # }
//! ```

mod code;
pub mod memory;
#[cfg(feature = "postgres")]
pub mod postgres;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use base64::Engine as _;
use time::OffsetDateTime;

use crate::clock::Clock;
use crate::error::StoreError;
use crate::secret::{AccessToken, AuthCode, RefreshToken};
use crate::token_set::{StoredTokenSet, TokenSet};

pub use code::{
    CodeExchange, CodeGrant, CodeRecord, CodeRejection, CodeState, CodeVerdict, RedeemOutcome,
    Redemption,
};
pub use memory::MemoryIssuerStore;
#[cfg(feature = "postgres")]
pub use postgres::PostgresIssuerStore;

/// Issues, rotates, authenticates and revokes token pairs over an [`IssuerStore`].
#[derive(Clone)]
pub struct Issuer {
    store: Arc<dyn IssuerStore>,
    clock: Arc<dyn Clock>,
    config: IssuerConfig,
    /// The earliest instant (Unix seconds) of the next purge after a write (shared by
    /// clones).
    next_purge: Arc<std::sync::atomic::AtomicI64>,
}

impl fmt::Debug for Issuer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Issuer")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Issuer {
    /// An issuer over `store`, reading the time from `clock`.
    pub fn new(store: Arc<dyn IssuerStore>, clock: Arc<dyn Clock>, config: IssuerConfig) -> Self {
        let first_purge = after(clock.now(), config.purge_every);
        Self {
            store,
            clock,
            config,
            next_purge: Arc::new(std::sync::atomic::AtomicI64::new(first_purge)),
        }
    }

    /// Forgets the pairs and codes that have been dead for [`PURGE_GRACE`] at least
    /// ([`IssuerStore::purge`]); returns how many. The issuer also does it by itself, every
    /// [`purge_every`](IssuerConfig::purge_every).
    pub async fn purge(&self) -> Result<usize, IssuerError> {
        Ok(self.store.purge(purge_horizon(self.clock.now())).await?)
    }

    /// After a write: purges if [`purge_every`](IssuerConfig::purge_every) has passed since
    /// the last purge (or the clock has stepped back since), in a task of its own (inline
    /// outside a tokio runtime), once however many writes find it due. Without it the store
    /// keeps a record per rotation for ever.
    async fn purge_when_due(&self, now: OffsetDateTime) {
        use std::sync::atomic::Ordering;
        let Some(every) = self.config.purge_every else {
            return;
        };
        let due = self.next_purge.load(Ordering::Relaxed);
        let at = now.unix_timestamp();
        // Due; or set more than an interval ahead, by a clock that has stepped back since
        // (waiting for it would postpone every purge by the size of the step).
        let interval = i64::try_from(every.as_secs()).unwrap_or(i64::MAX);
        let is_due = at >= due || due.saturating_sub(at) > interval;
        if !is_due
            || self
                .next_purge
                .compare_exchange(
                    due,
                    after(now, Some(every)),
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_err()
        {
            return;
        }
        let store = self.store.clone();
        let purge = async move {
            match store.purge(purge_horizon(now)).await {
                Ok(purged) => tracing::debug!(purged, "the issuer purged dead records"),
                Err(error) => tracing::warn!(%error, "the issuer could not purge dead records"),
            }
        };
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => drop(runtime.spawn(purge)),
            Err(_) => purge.await,
        }
    }

    /// An issuer over a fresh [`MemoryIssuerStore`].
    pub fn in_memory(clock: Arc<dyn Clock>, config: IssuerConfig) -> Self {
        Self::new(Arc::new(MemoryIssuerStore::new()), clock, config)
    }

    /// The configuration.
    pub fn config(&self) -> &IssuerConfig {
        &self.config
    }

    /// The clock every expiry is checked against.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn IssuerStore> {
        &self.store
    }

    /// Issues a new pair for `subject`, carrying `extras` (Alipay+ `customerId`...) in the
    /// token set and in every successor. The pair is bound to no client: whoever presents
    /// its refresh token may refresh it, with [`refresh`](Self::refresh) or
    /// [`refresh_for`](Self::refresh_for) (a wallet issuing for its own customers, a
    /// sandbox). [`issue_for`](Self::issue_for) binds it to a client.
    pub async fn issue(
        &self,
        subject: impl Into<String>,
        extras: serde_json::Value,
    ) -> Result<Issued, IssuerError> {
        self.issue_bound(None, subject.into(), extras, false).await
    }

    /// Issues a new pair for `subject` to the client `client_id` (a `client_credentials`
    /// grant, say), carrying `extras` like [`issue`](Self::issue). The pair and every
    /// successor are bound to that client: only [`refresh_for`](Self::refresh_for) with the
    /// same client refreshes it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use token_core::clock::ManualClock;
    /// use token_core::issuer::{Issuer, IssuerConfig, IssuerError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), IssuerError> {
    /// let issuer = Issuer::in_memory(Arc::new(ManualClock::default()), IssuerConfig::default());
    /// let issued = issuer.issue_for("app-1", "app-1", serde_json::json!({})).await?;
    /// let refresh = issued.tokens.refresh_token.clone().expect("the issuer always issues one");
    /// // Another client, or none, learns only that the token is invalid...
    /// assert!(matches!(
    ///     issuer.refresh_for(refresh.expose_secret(), "app-2").await,
    ///     Err(IssuerError::InvalidRefreshToken)
    /// ));
    /// assert!(issuer.refresh(refresh.expose_secret()).await.is_err());
    /// // ...and the client it was issued to still refreshes it.
    /// issuer.refresh_for(refresh.expose_secret(), "app-1").await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn issue_for(
        &self,
        client_id: impl Into<String>,
        subject: impl Into<String>,
        extras: serde_json::Value,
    ) -> Result<Issued, IssuerError> {
        self.issue_bound(Some(client_id.into()), subject.into(), extras, false)
            .await
    }

    /// Issues like [`issue`](Self::issue), an access token alone (a `client_credentials`
    /// grant, RFC 6749 section 4.4.3: "A refresh token SHOULD NOT be included"): the answer
    /// carries no refresh token, and the refresh token the pair is recorded with, which
    /// nobody holds, expires with the access token, so that a purge forgets the pair once
    /// its access token has expired. (Issued with [`issue`](Self::issue) and the refresh
    /// token taken out of the answer, it would be kept until that refresh token's expiry,
    /// 30 days by default: a record per request for all that time.)
    ///
    /// ```
    /// use std::sync::Arc;
    /// use token_core::clock::ManualClock;
    /// use token_core::issuer::{Issuer, IssuerConfig, IssuerError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), IssuerError> {
    /// let issuer = Issuer::in_memory(Arc::new(ManualClock::default()), IssuerConfig::default());
    /// let issued = issuer.issue_access("app-1", serde_json::json!({})).await?;
    /// assert_eq!(issued.tokens.refresh_token, None);
    /// issuer.authenticate(issued.tokens.access_token.expose_secret()).await?;
    /// # Ok(())
    /// # }
    /// ```
    pub async fn issue_access(
        &self,
        subject: impl Into<String>,
        extras: serde_json::Value,
    ) -> Result<Issued, IssuerError> {
        self.issue_bound(None, subject.into(), extras, true).await
    }

    /// Issues like [`issue_for`](Self::issue_for), an access token alone, as
    /// [`issue_access`](Self::issue_access) does.
    pub async fn issue_access_for(
        &self,
        client_id: impl Into<String>,
        subject: impl Into<String>,
        extras: serde_json::Value,
    ) -> Result<Issued, IssuerError> {
        self.issue_bound(Some(client_id.into()), subject.into(), extras, true)
            .await
    }

    /// Issues a first pair; `access_only`: an access token alone (see
    /// [`issue_access`](Self::issue_access)).
    async fn issue_bound(
        &self,
        client: Option<String>,
        subject: String,
        extras: serde_json::Value,
        access_only: bool,
    ) -> Result<Issued, IssuerError> {
        let now = self.clock.now();
        let mut minted = self.mint(
            Pair {
                client,
                subject,
                extras,
                family: None,
            },
            now,
        );
        if access_only {
            minted.record.refresh_expires_at = Some(minted.record.access_expires_at);
            minted.tokens.refresh_token = None;
            minted.tokens.refresh_expires_at = None;
        }
        let issued = Issued {
            subject: minted.record.subject.clone(),
            tokens: minted.tokens,
            reused: false,
        };
        self.store.insert(minted.record).await?;
        self.purge_when_due(now).await;
        Ok(issued)
    }

    /// Rotates for a caller that authenticated no client: checks `refresh_token`, issues the
    /// successor pair and invalidates the old access and refresh token at once.
    ///
    /// Presented again within the reuse window, the old refresh token answers exactly the
    /// same successor ([`Issued::reused`] is then `true`), as long as that successor has not
    /// been rotated or revoked itself; otherwise it is [`IssuerError::UsedRefreshToken`].
    ///
    /// Only a pair issued without a client ([`issue`](Self::issue)) is refreshed this way; a
    /// pair bound to a client is [`IssuerError::InvalidRefreshToken`] here (see
    /// [`refresh_for`](Self::refresh_for)).
    pub async fn refresh(&self, refresh_token: &str) -> Result<Issued, IssuerError> {
        self.rotate(refresh_token, None).await
    }

    /// Rotates like [`refresh`](Self::refresh), for the authenticated client `client_id`
    /// (RFC 6749 section 6: the refresh token must have been issued to it).
    ///
    /// A pair bound to another client ([`issue_for`](Self::issue_for), a code exchange) is
    /// refused exactly as an unknown refresh token is, [`IssuerError::InvalidRefreshToken`]:
    /// nothing rotates, nothing is revoked (even with
    /// [`revoke_on_reuse`](IssuerConfig::revoke_on_reuse), the pair's own client is not
    /// punished for another's request), nothing is logged, and the presenting client learns
    /// nothing about the token. A pair issued without a client is refreshed for any client.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use token_core::clock::ManualClock;
    /// use token_core::issuer::{CodeExchange, CodeGrant, Issuer, IssuerConfig, IssuerError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), IssuerError> {
    /// let issuer = Issuer::in_memory(Arc::new(ManualClock::default()), IssuerConfig::default());
    /// let code = issuer.issue_code(CodeGrant::new("app-1", "alice")).await?;
    /// let issued = issuer.redeem_code(code.expose_secret(), CodeExchange::new("app-1")).await?;
    /// let refresh = issued.tokens.refresh_token.clone().expect("the issuer always issues one");
    /// assert!(matches!(
    ///     issuer.refresh_for(refresh.expose_secret(), "app-2").await,
    ///     Err(IssuerError::InvalidRefreshToken)
    /// ));
    /// let next = issuer.refresh_for(refresh.expose_secret(), "app-1").await?;
    /// assert_eq!(next.subject, "alice");
    /// # Ok(())
    /// # }
    /// ```
    pub async fn refresh_for(
        &self,
        refresh_token: &str,
        client_id: &str,
    ) -> Result<Issued, IssuerError> {
        self.rotate(refresh_token, Some(client_id)).await
    }

    async fn rotate(
        &self,
        refresh_token: &str,
        client: Option<&str>,
    ) -> Result<Issued, IssuerError> {
        let now = self.clock.now();
        let presented = TokenHash::of(refresh_token);
        let mint = |old: &PairRecord| {
            let mut minted = match self.config.refresh_rotation {
                RefreshRotation::Rotate => self.mint(Pair::of(old), now),
                keep => self.renew_access(old, refresh_token, keep, now),
            };
            // Never recorded issued before the pair it replaces (a clock stepped back since
            // that one was issued): that pair is recorded replaced no earlier than it was
            // issued (`PairRecord::replace_with`), and so must this one be, or a purge could
            // forget this one while keeping that one.
            minted.record.issued_at = minted.record.issued_at.max(old.issued_at);
            minted
        };
        let rotation = Rotation {
            presented: &presented,
            client,
            now,
            reuse_window: self.config.reuse_window,
            mint: &mint,
        };
        let outcome = self.store.rotate(rotation).await?;
        let answer = self.rotation_answer(outcome).await;
        // A purge, this one or another replica's, may forget the replayed pair before or
        // while its replay is punished: the punishment names the family the rotation's
        // verdict gave, not the pair, and so revokes what it revealed all the same.
        self.purge_when_due(now).await;
        answer
    }

    /// What a rotation's `outcome` answers; a used-up token is punished first.
    async fn rotation_answer(&self, outcome: RotateOutcome) -> Result<Issued, IssuerError> {
        match outcome {
            RotateOutcome::Rotated { subject, tokens } => Ok(Issued {
                subject,
                tokens,
                reused: false,
            }),
            RotateOutcome::Reused { subject, tokens } => Ok(Issued {
                subject,
                tokens,
                reused: true,
            }),
            RotateOutcome::Rejected(rejection) => Err(match rejection {
                RotateRejection::Unknown | RotateRejection::Revoked => {
                    IssuerError::InvalidRefreshToken
                }
                RotateRejection::Expired => IssuerError::ExpiredRefreshToken,
                RotateRejection::Used { family } => {
                    if self.config.revoke_on_reuse {
                        self.punish(Some(family), Replay::RefreshToken).await?;
                    }
                    IssuerError::UsedRefreshToken
                }
            }),
        }
    }

    /// Checks an access token presented to a protected API.
    pub async fn authenticate(&self, access_token: &str) -> Result<Grant, IssuerError> {
        let now = self.clock.now();
        let record = self
            .store
            .find_by_access(&TokenHash::of(access_token))
            .await?
            .ok_or(IssuerError::InvalidAccessToken)?;
        if !matches!(record.state, PairState::Active) {
            return Err(IssuerError::InvalidAccessToken);
        }
        if record.access_expires_at <= now {
            return Err(IssuerError::ExpiredAccessToken);
        }
        Ok(Grant {
            subject: record.subject,
            extras: record.extras,
            issued_at: record.issued_at,
            access_expires_at: record.access_expires_at,
        })
    }

    /// Issues a single-use authorization code for `grant` (RFC 6749 section 4.1.2), valid for
    /// the configured [`code_ttl`](IssuerConfig::code_ttl). The store keeps only its hash.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use token_core::clock::ManualClock;
    /// use token_core::issuer::{CodeExchange, CodeGrant, Issuer, IssuerConfig, IssuerError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), IssuerError> {
    /// let issuer = Issuer::in_memory(Arc::new(ManualClock::default()), IssuerConfig::default());
    /// let grant = CodeGrant::new("app-1", "alice").with_redirect_uri(Some("https://app.example/cb".into()));
    /// let code = issuer.issue_code(grant).await?;
    /// let exchange = CodeExchange::new("app-1").with_redirect_uri(Some("https://app.example/cb"));
    /// let issued = issuer.redeem_code(code.expose_secret(), exchange).await?;
    /// assert_eq!(issued.subject, "alice");
    /// // Once only: a second redemption fails and revokes the pair the first one gave.
    /// assert!(matches!(
    ///     issuer.redeem_code(code.expose_secret(), exchange).await,
    ///     Err(IssuerError::UsedAuthCode)
    /// ));
    /// assert!(issuer.authenticate(issued.tokens.access_token.expose_secret()).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn issue_code(&self, grant: CodeGrant) -> Result<AuthCode, IssuerError> {
        let now = whole(self.clock.now());
        let code = format!("ac_{}", random_token());
        let record = CodeRecord {
            code_hash: TokenHash::of(&code),
            grant,
            issued_at: now,
            expires_at: later(now, self.config.code_ttl),
            state: CodeState::Pending,
        };
        self.store.insert_code(record).await?;
        self.purge_when_due(now).await;
        Ok(AuthCode::new(code))
    }

    /// Redeems `code` (RFC 6749 section 4.1.3): issues a pair for the code's subject (carrying
    /// its extras, the answer its scope), once, bound to the code's client (only
    /// [`refresh_for`](Self::refresh_for) that client refreshes it). The exchange's client
    /// must be the code's, its redirect URI the authorization request's (when that had one),
    /// and its PKCE verifier must match the code's challenge (and be absent without one).
    ///
    /// A wrong client, redirect URI or verifier uses the code up ([`IssuerError::AuthCodeMismatch`]).
    /// A code presented again is [`IssuerError::UsedAuthCode`], and the pair the first
    /// redemption issued is revoked, with whatever it was rotated into (RFC 6749 section
    /// 4.1.2): a replayed code is a sign it was stolen.
    pub async fn redeem_code(
        &self,
        code: &str,
        exchange: CodeExchange<'_>,
    ) -> Result<Issued, IssuerError> {
        let now = self.clock.now();
        let presented = TokenHash::of(code);
        let mint = |record: &CodeRecord| {
            let grant = &record.grant;
            let pair = Pair {
                client: Some(grant.client_id.clone()),
                subject: grant.subject.clone(),
                extras: grant.extras.clone(),
                family: None,
            };
            let mut minted = self.mint(pair, now);
            minted.tokens.scope = grant.scope.clone();
            minted
        };
        let redemption = Redemption {
            presented: &presented,
            exchange,
            now,
            mint: &mint,
        };
        let outcome = self.store.redeem_code(redemption).await?;
        let answer = match outcome {
            RedeemOutcome::Redeemed { subject, tokens } => Ok(Issued {
                subject,
                tokens,
                reused: false,
            }),
            RedeemOutcome::Rejected(rejection) => Err(match rejection {
                CodeRejection::Unknown => IssuerError::InvalidAuthCode,
                CodeRejection::Expired => IssuerError::ExpiredAuthCode,
                CodeRejection::Mismatch => IssuerError::AuthCodeMismatch,
                CodeRejection::Used { pair } => {
                    let client_id = exchange.client_id.to_owned();
                    self.punish(pair, Replay::AuthCode { client_id }).await?;
                    IssuerError::UsedAuthCode
                }
            }),
        };
        // As in `rotate`: the code names the family it gave, which no purge forgets.
        self.purge_when_due(now).await;
        answer
    }

    /// Revokes what `replay` revealed as stolen (the live pair of `family`, see
    /// [`IssuerStore::revoke_family`]) and logs it, in a task of its own under a tokio
    /// runtime: the replay's request cancelled halfway (its client hung up, a timeout) still
    /// revokes it, and the replay is still seen.
    async fn punish(&self, family: Option<TokenHash>, replay: Replay) -> Result<(), IssuerError> {
        let issuer = self.clone();
        let punish = async move {
            let revoked = match family {
                Some(family) => {
                    let now = issuer.clock.now();
                    issuer.store.revoke_family(&family, now).await?
                }
                None => 0,
            };
            replay.report(revoked);
            Ok(())
        };
        let Ok(runtime) = tokio::runtime::Handle::try_current() else {
            return punish.await;
        };
        match runtime.spawn(punish).await {
            Ok(punished) => punished,
            Err(failed) if failed.is_panic() => std::panic::resume_unwind(failed.into_panic()),
            Err(_) => Err(IssuerError::Store(StoreError::Backend {
                message: "the revocation was cancelled with its runtime".to_owned(),
                source: None,
            })),
        }
    }

    /// Revokes the pair that `token` (its access or its refresh token) belongs to, whichever
    /// client it was issued to (a wallet's own logout; a client's request goes through
    /// [`revoke_for`](Self::revoke_for)). Returns whether a live pair was revoked; an unknown
    /// token is not an error (RFC 7009).
    ///
    /// A rotated refresh token still inside its reuse window answers its successor, so
    /// revoking it, or the access token of its pair, revokes that successor: afterwards the
    /// pair's refresh token obtains nothing (a client whose refresh answer was lost logs out
    /// with the tokens it has). With [`revoke_on_reuse`](IssuerConfig::revoke_on_reuse), a
    /// used-up refresh token the issuer still remembers revokes the live pair it led to, as
    /// presenting it for a refresh would (a logout racing the refresh that rotated it).
    pub async fn revoke(&self, token: &str) -> Result<bool, IssuerError> {
        let now = self.clock.now();
        let hash = TokenHash::of(token);
        if self.store.revoke(&hash, now).await? {
            return Ok(true);
        }
        let Some(record) = self.find_by_either(&hash).await? else {
            return Ok(false);
        };
        let PairState::Replaced { successor, .. } = &record.state else {
            return Ok(false);
        };
        let next = self.store.find_by_refresh(successor).await?;
        let revokes_line = match record.state_verdict(next.as_ref(), now) {
            // The successor is the family's live pair (or what it has become since).
            RotateVerdict::Reuse(_) => true,
            // Used up, and presented for a refresh it would revoke its line: presented for a
            // revocation (a logout racing the refresh that rotated it), it does as much.
            _ => self.config.revoke_on_reuse && record.refresh_hash == hash,
        };
        if !revokes_line {
            return Ok(false);
        }
        Ok(self.store.revoke_family(&record.family, now).await? > 0)
    }

    /// Revokes like [`revoke`](Self::revoke), for the authenticated client `client_id`
    /// (RFC 7009 section 2.1: a client revokes only the tokens issued to it).
    ///
    /// A token of a pair bound to another client ([`issue_for`](Self::issue_for), a code
    /// exchange) revokes nothing and answers `false`, exactly as an unknown token does: the
    /// presenting client learns nothing about it. A pair issued without a client is revoked
    /// for any client.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use token_core::clock::ManualClock;
    /// use token_core::issuer::{Issuer, IssuerConfig, IssuerError};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), IssuerError> {
    /// let issuer = Issuer::in_memory(Arc::new(ManualClock::default()), IssuerConfig::default());
    /// let issued = issuer.issue_for("app-1", "app-1", serde_json::json!({})).await?;
    /// let access = issued.tokens.access_token.expose_secret();
    /// assert!(!issuer.revoke_for(access, "app-2").await?);
    /// issuer.authenticate(access).await?;
    /// assert!(issuer.revoke_for(access, "app-1").await?);
    /// assert!(issuer.authenticate(access).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub async fn revoke_for(&self, token: &str, client_id: &str) -> Result<bool, IssuerError> {
        let record = self.find_by_either(&TokenHash::of(token)).await?;
        // A pair's client is kept by every successor: the check holds for whatever the
        // pair has become by the time `revoke` runs.
        match record {
            Some(record) if record.is_refreshable_by(Some(client_id)) => self.revoke(token).await,
            _ => Ok(false),
        }
    }

    /// The pair whose refresh token, or else access token, has this hash.
    async fn find_by_either(&self, hash: &TokenHash) -> Result<Option<PairRecord>, IssuerError> {
        Ok(match self.store.find_by_refresh(hash).await? {
            Some(record) => Some(record),
            None => self.store.find_by_access(hash).await?,
        })
    }

    /// Revokes every live pair of `subject` (a logout everywhere); returns how many. Its
    /// authorization codes not yet redeemed expire too: a code issued before (a login under
    /// way, or one someone intercepted) gives no pair after it.
    pub async fn revoke_subject(&self, subject: &str) -> Result<usize, IssuerError> {
        let now = self.clock.now();
        Ok(self.store.revoke_subject(subject, now).await?)
    }

    fn mint(&self, pair: Pair, now: OffsetDateTime) -> Minted {
        let refresh_expires_at = self.config.refresh_ttl.map(|ttl| later(whole(now), ttl));
        let refresh = format!("rt_{}", random_token());
        self.mint_with(pair, refresh, refresh_expires_at, now)
    }

    /// The successor of `old` when refresh tokens are kept: a new access token beside the
    /// same refresh token (its expiry unchanged), which the answer carries again or leaves out.
    fn renew_access(
        &self,
        old: &PairRecord,
        refresh_token: &str,
        keep: RefreshRotation,
        now: OffsetDateTime,
    ) -> Minted {
        let mut minted = self.mint_with(
            Pair::of(old),
            refresh_token.to_owned(),
            old.refresh_expires_at,
            now,
        );
        if keep == RefreshRotation::KeepUnsent {
            minted.tokens.refresh_token = None;
            minted.tokens.refresh_expires_at = None;
        }
        minted
    }

    fn mint_with(
        &self,
        pair: Pair,
        refresh: String,
        refresh_expires_at: Option<OffsetDateTime>,
        now: OffsetDateTime,
    ) -> Minted {
        let Pair {
            client,
            subject,
            extras,
            family,
        } = pair;
        let now = whole(now);
        let access_expires_at = later(now, self.config.access_ttl);
        let access = match self.config.access_format {
            AccessTokenFormat::Opaque => format!("at_{}", random_token()),
            AccessTokenFormat::UnsignedJwt => unsigned_jwt(&subject, now, access_expires_at),
        };
        let refresh_hash = TokenHash::of(&refresh);
        let record = PairRecord {
            client,
            subject,
            access_hash: TokenHash::of(&access),
            refresh_hash,
            // A first pair starts its family, named by its own refresh token hash.
            family: family.unwrap_or(refresh_hash),
            issued_at: now,
            access_expires_at,
            refresh_expires_at,
            extras: extras.clone(),
            state: PairState::Active,
        };
        let mut tokens: StoredTokenSet = TokenSet::new(AccessToken::new(access))
            .with_refresh_token(RefreshToken::new(refresh))
            .with_access_expires_at(access_expires_at)
            .with_token_type(self.config.token_type.clone())
            .with_extras(extras);
        tokens.refresh_expires_at = refresh_expires_at;
        Minted { record, tokens }
    }
}

/// A replay the issuer detected: what it logs once it has revoked what the replay revealed.
enum Replay {
    /// A used-up refresh token presented again (with `revoke_on_reuse`).
    RefreshToken,
    /// An authorization code presented again, by this client.
    AuthCode { client_id: String },
}

impl Replay {
    fn report(&self, revoked: usize) {
        match self {
            Self::RefreshToken => tracing::warn!(
                revoked,
                "a used-up refresh token was presented again; the pair descended from it is revoked"
            ),
            Self::AuthCode { client_id } => tracing::warn!(
                client_id = client_id.as_str(),
                revoked,
                "an authorization code was presented again; the pair it gave is revoked"
            ),
        }
    }
}

/// Who a pair is for and what it carries: what every successor inherits.
struct Pair {
    client: Option<String>,
    subject: String,
    extras: serde_json::Value,
    /// The family of the pair it succeeds; `None`: a first pair, which starts its own.
    family: Option<TokenHash>,
}

impl Pair {
    /// What `old`'s successor inherits.
    fn of(old: &PairRecord) -> Self {
        Self {
            client: old.client.clone(),
            subject: old.subject.clone(),
            extras: old.extras.clone(),
            family: Some(old.family),
        }
    }
}

/// Whole seconds: what a client computes from `expires_in` or a JWT `exp` is then never later
/// than what the issuer enforces.
fn whole(now: OffsetDateTime) -> OffsetDateTime {
    now.replace_nanosecond(0).unwrap_or(now)
}

/// `at + lifetime`, ending at [`LATEST`](crate::expiry::LATEST) (what clients cap an expiry
/// at): a lifetime too long for the calendar ("forever") never overflows.
fn later(at: OffsetDateTime, lifetime: Duration) -> OffsetDateTime {
    time::Duration::try_from(lifetime)
        .ok()
        .and_then(|lifetime| at.checked_add(lifetime))
        .map_or(crate::expiry::LATEST, |end| end.min(crate::expiry::LATEST))
}

/// What a refresh does to the refresh token.
///
/// With either `Keep` form, each refresh replaces the pair's access token in place: the
/// access token a refresh answered stops working at the next refresh, and the reuse window
/// does not apply (nothing is retired), so of two refreshes at once, one caller is left with
/// a token already replaced. Clients sharing one store (the manager's replicas) refresh
/// once and adopt the stored answer.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum RefreshRotation {
    /// Each refresh issues a new refresh token and retires the presented one (with the
    /// reuse window).
    #[default]
    Rotate,
    /// The refresh token is kept (its expiry unchanged) and the answer carries it again
    /// (WeChat's `refresh_token`).
    KeepAndResend,
    /// The refresh token is kept and the answer leaves it out (Salesforce, Google): the
    /// client keeps the one it has.
    KeepUnsent,
}

/// How an [`Issuer`] issues: lifetimes, reuse window, refresh rotation and access token
/// format. A lifetime or window too long for the calendar (`Duration::MAX` for "forever")
/// ends at [`expiry::LATEST`](crate::expiry::LATEST).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IssuerConfig {
    /// How long an access token lives. Default 3600 s.
    pub access_ttl: Duration,
    /// How long a refresh token lives from its issue (each rotation issues a new one);
    /// `None`: until rotated or revoked. Default 30 days.
    pub refresh_ttl: Option<Duration>,
    /// How long after a rotation the old refresh token answers the same successor again.
    /// Default zero (no reuse); Alipay+ recommends 5 minutes.
    pub reuse_window: Duration,
    /// The access token format. Default [`AccessTokenFormat::Opaque`].
    pub access_format: AccessTokenFormat,
    /// The token type issued sets carry. Default `Bearer`.
    pub token_type: String,
    /// Whether a refresh rotates the refresh token or keeps it. Default
    /// [`RefreshRotation::Rotate`].
    pub refresh_rotation: RefreshRotation,
    /// How long an authorization code can wait for its exchange. Default 600 s (RFC 6749
    /// section 4.1.2 recommends at most 10 minutes).
    pub code_ttl: Duration,
    /// Whether a refresh token presented after it was used up (past the reuse window, or
    /// once its successor was rotated) revokes the live pair descended from it, as RFC 9700
    /// section 4.14.2 recommends: one of the two parties holding that token is not the
    /// client. Default `false` (the successor lives on, as providers without reuse
    /// detection do).
    ///
    /// A used-up token is recognised while its pair's record is kept: a store's
    /// [`purge`](IssuerStore::purge) forgets a replaced pair once its reuse window has
    /// ended, or, without a window, once it was replaced (and the issuer's [`PURGE_GRACE`]
    /// after that, at least; one record per rotation would otherwise pile up for the
    /// refresh tokens' whole life), and a token replayed after that is
    /// [`IssuerError::InvalidRefreshToken`] and revokes nothing. Purge less often
    /// ([`purge_every`](Self::purge_every)) to detect replays over a longer span.
    ///
    /// A replay recognised is punished by its [family](PairRecord::family), which the
    /// store's rotation names with its verdict: the live pair is revoked however many
    /// rotations the family has had, and even when a purge (this replica's, another's)
    /// forgets the replayed pair and its successors between the verdict and the revocation.
    pub revoke_on_reuse: bool,
    /// How often the issuer forgets dead records by itself: after an issue, a rotation, or
    /// an authorization code's issue or redemption, once this span (in whole seconds) has
    /// passed since the last time, it runs the store's [`purge`](IssuerStore::purge) in a
    /// task of its own, for what has been dead for [`PURGE_GRACE`] at least. Default 1
    /// hour; `None`: never (the application calls [`Issuer::purge`] on a schedule of its
    /// own, or the store grows by a record per rotation).
    pub purge_every: Option<Duration>,
}

impl Default for IssuerConfig {
    fn default() -> Self {
        Self {
            access_ttl: Duration::from_secs(3600),
            refresh_ttl: Some(Duration::from_secs(30 * 24 * 3600)),
            reuse_window: Duration::ZERO,
            access_format: AccessTokenFormat::Opaque,
            token_type: "Bearer".to_owned(),
            refresh_rotation: RefreshRotation::Rotate,
            code_ttl: Duration::from_secs(600),
            revoke_on_reuse: false,
            purge_every: Some(Duration::from_secs(3600)),
        }
    }
}

/// How long after a record died the issuer's purges ([`Issuer::purge`], and the ones
/// [`purge_every`](IssuerConfig::purge_every) runs) still keep it: 5 minutes.
///
/// A purge is the one irreversible step, and replicas sharing a store read their own clocks:
/// without a margin, a replica whose clock runs ahead would forget a rotated pair whose reuse
/// window is still open on the replica the client asks, and refuse the client the pair it
/// lost in transit. Keep the replicas' clocks (NTP) well within it.
pub const PURGE_GRACE: Duration = Duration::from_secs(300);

/// The instant a purge at `now` forgets what was dead at: [`PURGE_GRACE`] before it.
fn purge_horizon(now: OffsetDateTime) -> OffsetDateTime {
    time::Duration::try_from(PURGE_GRACE)
        .ok()
        .and_then(|grace| now.checked_sub(grace))
        .unwrap_or(now)
}

/// `span` after `now`, in Unix seconds (`i64::MAX` for never).
fn after(now: OffsetDateTime, span: Option<Duration>) -> i64 {
    span.and_then(|span| i64::try_from(span.as_secs()).ok())
        .map_or(i64::MAX, |secs| now.unix_timestamp().saturating_add(secs))
}

impl IssuerConfig {
    /// Sets the access token lifetime.
    pub fn with_access_ttl(mut self, ttl: Duration) -> Self {
        self.access_ttl = ttl;
        self
    }

    /// Sets the refresh token lifetime (`None`: no expiry).
    pub fn with_refresh_ttl(mut self, ttl: Option<Duration>) -> Self {
        self.refresh_ttl = ttl;
        self
    }

    /// Sets the reuse window.
    pub fn with_reuse_window(mut self, window: Duration) -> Self {
        self.reuse_window = window;
        self
    }

    /// Sets whether a used-up refresh token presented again revokes the live pair
    /// descended from it (see [`revoke_on_reuse`](Self::revoke_on_reuse)).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), token_core::issuer::IssuerError> {
    /// use std::sync::Arc;
    /// use token_core::{clock::SystemClock, issuer::{Issuer, IssuerConfig, IssuerError}};
    ///
    /// let config = IssuerConfig::default().with_revoke_on_reuse(true);
    /// let issuer = Issuer::in_memory(Arc::new(SystemClock), config);
    /// let first = issuer.issue("alice", serde_json::Value::Null).await?;
    /// let stolen = first.tokens.refresh_token.clone().unwrap();
    /// let second = issuer.refresh(stolen.expose_secret()).await?; // the client rotates
    /// // The thief presents the old token: refused, and the client's pair is revoked too.
    /// assert!(matches!(issuer.refresh(stolen.expose_secret()).await, Err(IssuerError::UsedRefreshToken)));
    /// let access = second.tokens.access_token.expose_secret();
    /// assert!(matches!(issuer.authenticate(access).await, Err(IssuerError::InvalidAccessToken)));
    /// # Ok(()) }
    /// ```
    pub fn with_revoke_on_reuse(mut self, revoke: bool) -> Self {
        self.revoke_on_reuse = revoke;
        self
    }

    /// Sets how often the issuer purges dead records by itself (`None`: never).
    pub fn with_purge_every(mut self, every: Option<Duration>) -> Self {
        self.purge_every = every;
        self
    }

    /// Sets the access token format.
    pub fn with_access_format(mut self, format: AccessTokenFormat) -> Self {
        self.access_format = format;
        self
    }

    /// Sets whether a refresh rotates the refresh token or keeps it.
    ///
    /// ```
    /// use std::sync::Arc;
    /// use token_core::clock::ManualClock;
    /// use token_core::issuer::{Issuer, IssuerConfig, IssuerError, RefreshRotation};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), IssuerError> {
    /// let config = IssuerConfig::default().with_refresh_rotation(RefreshRotation::KeepUnsent);
    /// let issuer = Issuer::in_memory(Arc::new(ManualClock::default()), config);
    /// let first = issuer.issue("customer-1", serde_json::json!({})).await?;
    /// let refresh = first.tokens.refresh_token.clone().expect("issued with one");
    /// let second = issuer.refresh(refresh.expose_secret()).await?;
    /// assert_eq!(second.tokens.refresh_token, None); // left out of the answer...
    /// let third = issuer.refresh(refresh.expose_secret()).await?; // ...and still good
    /// assert_ne!(third.tokens.access_token, second.tokens.access_token);
    /// assert!(issuer.authenticate(second.tokens.access_token.expose_secret()).await.is_err());
    /// # Ok(())
    /// # }
    /// ```
    pub fn with_refresh_rotation(mut self, rotation: RefreshRotation) -> Self {
        self.refresh_rotation = rotation;
        self
    }

    /// Sets how long an authorization code can wait for its exchange.
    pub fn with_code_ttl(mut self, ttl: Duration) -> Self {
        self.code_ttl = ttl;
        self
    }

    /// Sets the token type.
    pub fn with_token_type(mut self, token_type: impl Into<String>) -> Self {
        self.token_type = token_type.into();
        self
    }
}

/// What an access token looks like.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum AccessTokenFormat {
    /// `at_` and 43 random URL-safe characters.
    #[default]
    Opaque,
    /// A JWT with `alg: none` carrying `sub`, `iat`, `exp` and a random `jti`, for clients
    /// that read expiry from `exp` (Paymentsgate). Unsigned: for sandboxes only; the issuer
    /// still checks it against its store like an opaque token.
    UnsignedJwt,
}

/// A pair that was just issued (or, within the reuse window, issued again).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Issued {
    /// Whom the pair was issued to.
    pub subject: String,
    /// The tokens with absolute expiries, the token type and the subject's extras.
    pub tokens: StoredTokenSet,
    /// `true` when the old refresh token was presented again within the reuse window and
    /// this is the successor issued before.
    pub reused: bool,
}

/// What an access token grants: the result of [`Issuer::authenticate`].
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Grant {
    /// Whom the token was issued to.
    pub subject: String,
    /// The extras given when the session was issued.
    pub extras: serde_json::Value,
    /// When this pair was issued.
    pub issued_at: OffsetDateTime,
    /// When the access token expires.
    pub access_expires_at: OffsetDateTime,
}

/// Why the issuer refused. Messages never contain a token.
#[derive(Clone, Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IssuerError {
    /// The refresh token is unknown, revoked, or issued to another client.
    #[error("the refresh token is invalid")]
    InvalidRefreshToken,
    /// The refresh token was already used for a rotation, outside the reuse window or with a
    /// successor that has been rotated itself (Alipay+ `USED_REFRESH_TOKEN`).
    #[error("the refresh token was already used")]
    UsedRefreshToken,
    /// The refresh token has expired.
    #[error("the refresh token has expired")]
    ExpiredRefreshToken,
    /// The access token is unknown, rotated away or revoked.
    #[error("the access token is invalid")]
    InvalidAccessToken,
    /// The access token has expired.
    #[error("the access token has expired")]
    ExpiredAccessToken,
    /// The authorization code is unknown (never issued, or forgotten after its expiry).
    #[error("the authorization code is invalid")]
    InvalidAuthCode,
    /// The authorization code has expired.
    #[error("the authorization code has expired")]
    ExpiredAuthCode,
    /// The authorization code was redeemed before; the pair it gave is revoked.
    #[error("the authorization code was already used")]
    UsedAuthCode,
    /// The authorization code was issued to another client or redirect URI, or the PKCE
    /// verifier is missing or wrong; the code is used up.
    #[error(
        "the authorization code was issued to another client or redirect URI, or the code verifier does not match"
    )]
    AuthCodeMismatch,
    /// The issuer's store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl IssuerError {
    /// Whether the refresh token is dead for good (invalid, used or expired): the client
    /// must obtain a new pair another way.
    pub fn is_refresh_rejection(&self) -> bool {
        matches!(
            self,
            Self::InvalidRefreshToken | Self::UsedRefreshToken | Self::ExpiredRefreshToken
        )
    }

    /// Whether the authorization code is refused for good (invalid, expired, used or
    /// presented with the wrong client, redirect URI or verifier).
    pub fn is_code_rejection(&self) -> bool {
        matches!(
            self,
            Self::InvalidAuthCode
                | Self::ExpiredAuthCode
                | Self::UsedAuthCode
                | Self::AuthCodeMismatch
        )
    }

    /// Whether the access token is not accepted (invalid or expired).
    pub fn is_access_rejection(&self) -> bool {
        matches!(self, Self::InvalidAccessToken | Self::ExpiredAccessToken)
    }
}

/// The SHA-256 of a token: what stores keep instead of the token. `Debug` shows 8 hex digits.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct TokenHash([u8; 32]);

impl TokenHash {
    /// The hash of `token`.
    pub fn of(token: &str) -> Self {
        Self(crate::crypto::sha256(token.as_bytes()))
    }

    /// A hash read back from storage.
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The 32 bytes, for storage.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    /// All 64 lowercase hex digits, for storage as text.
    pub fn to_hex(&self) -> String {
        self.0.iter().map(|b| format!("{b:02x}")).collect()
    }
}

impl fmt::Debug for TokenHash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "TokenHash(")?;
        for byte in &self.0[..4] {
            write!(f, "{byte:02x}")?;
        }
        write!(f, "..)")
    }
}

/// One issued pair as a store keeps it: hashes, never tokens (except a successor's tokens
/// kept for the reuse window, see [`Reuse`]). Stores build it back from their rows, so it is
/// not `#[non_exhaustive]`.
#[derive(Clone, Debug, PartialEq)]
pub struct PairRecord {
    /// The client the pair was issued to, and only it may refresh it (kept by every
    /// successor); `None`: issued without a client ([`Issuer::issue`]), any client may.
    pub client: Option<String>,
    /// Whom the pair was issued to.
    pub subject: String,
    /// The hash of the access token.
    pub access_hash: TokenHash,
    /// The hash of the refresh token.
    pub refresh_hash: TokenHash,
    /// The family: the `refresh_hash` of the first pair of its line (issued by
    /// [`Issuer::issue`], [`Issuer::issue_for`] or a code exchange), kept by every successor.
    /// A replay revokes the family's live pair by it ([`IssuerStore::revoke_family`]),
    /// however many of the line's pairs a purge has forgotten since.
    pub family: TokenHash,
    /// When the pair was issued (by the issuer's clock, and no earlier than the pair it
    /// replaced).
    pub issued_at: OffsetDateTime,
    /// When the access token expires.
    pub access_expires_at: OffsetDateTime,
    /// When the refresh token expires (`None`: never).
    pub refresh_expires_at: Option<OffsetDateTime>,
    /// Extras carried into every successor.
    pub extras: serde_json::Value,
    /// Live, replaced by a successor, or revoked.
    pub state: PairState,
}

impl PairRecord {
    /// What a rotation presenting this record's refresh token for `client` (the
    /// authenticated client, `None` for none) does at `now`. `successor` is the record that
    /// replaced this one, if it was replaced and the store still has it.
    ///
    /// A pair bound to another client is [`RotateRejection::Unknown`] whatever its state:
    /// the same answer as a token never issued, and never [`RotateRejection::Used`], which
    /// could revoke the pair's own client's successor.
    ///
    /// Stores call this inside their atomic [`IssuerStore::rotate`], so every store applies
    /// the same rules.
    pub fn verdict(
        &self,
        client: Option<&str>,
        successor: Option<&PairRecord>,
        now: OffsetDateTime,
    ) -> RotateVerdict {
        if !self.is_refreshable_by(client) {
            return RotateVerdict::Reject(RotateRejection::Unknown);
        }
        self.state_verdict(successor, now)
    }

    /// Whether `client` (`None`: no authenticated client) may refresh this pair: it is the
    /// pair's client, or the pair has none.
    pub fn is_refreshable_by(&self, client: Option<&str>) -> bool {
        self.client.as_deref().is_none_or(|own| client == Some(own))
    }

    /// [`verdict`](Self::verdict) by the pair's state alone, whoever presents it.
    fn state_verdict(&self, successor: Option<&PairRecord>, now: OffsetDateTime) -> RotateVerdict {
        match &self.state {
            PairState::Active => {
                if self.refresh_expires_at.is_some_and(|at| at <= now) {
                    RotateVerdict::Reject(RotateRejection::Expired)
                } else {
                    RotateVerdict::Rotate
                }
            }
            PairState::Replaced { reuse, .. } => match (reuse, successor) {
                (Some(reuse), Some(successor))
                    if now < reuse.until && matches!(successor.state, PairState::Active) =>
                {
                    RotateVerdict::Reuse(reuse.tokens.clone())
                }
                _ => RotateVerdict::Reject(RotateRejection::Used {
                    family: self.family,
                }),
            },
            PairState::Revoked { .. } => RotateVerdict::Reject(RotateRejection::Revoked),
        }
    }

    /// Whether `successor` keeps this record's refresh token (an issuer configured with
    /// [`RefreshRotation::KeepAndResend`] or [`KeepUnsent`](RefreshRotation::KeepUnsent)):
    /// then a store's [`rotate`](IssuerStore::rotate) replaces this record by the successor
    /// in place (the new access token, the old one forgotten) instead of marking it replaced.
    pub fn is_kept_by(&self, successor: &Minted) -> bool {
        self.refresh_hash == successor.record.refresh_hash
    }

    /// Marks this record replaced by `successor` at `now`, keeping the successor's tokens
    /// until `now + reuse_window` when the window is not zero.
    ///
    /// Never at an instant before this record was issued (a replica whose clock is behind
    /// the one that issued it, a clock stepped back): a record is replaced no earlier than
    /// the one it replaced was, so a purge that forgets it forgets that one too, and what is
    /// kept of a line is its newest part. (A replay's revocation does not depend on it: it
    /// names the [family](PairRecord::family), not the chain of rotations.)
    pub fn replace_with(
        &mut self,
        successor: &Minted,
        now: OffsetDateTime,
        reuse_window: Duration,
    ) {
        let now = now.max(self.issued_at);
        let reuse = (!reuse_window.is_zero()).then(|| Reuse {
            until: later(now, reuse_window),
            tokens: successor.tokens.clone(),
        });
        self.state = PairState::Replaced {
            at: now,
            successor: successor.record.refresh_hash,
            reuse,
        };
    }

    /// Whether a store may forget this record at `now`: no token of it can be accepted any
    /// more and no reuse answer is pending. A replaced pair dies when its reuse window ends,
    /// or when it was replaced if it has none: the issuer's purges pass a `now`
    /// [`PURGE_GRACE`] in the past, so that a used-up refresh token is still recognised for
    /// that long after its rotation (see [`IssuerConfig::revoke_on_reuse`]).
    pub fn is_dead(&self, now: OffsetDateTime) -> bool {
        let refresh_dead = self.refresh_expires_at.is_some_and(|at| at <= now);
        match &self.state {
            PairState::Active => refresh_dead && self.access_expires_at <= now,
            PairState::Replaced { at, reuse, .. } => reuse.as_ref().map_or(*at, |r| r.until) <= now,
            PairState::Revoked { .. } => true,
        }
    }
}

/// The life cycle of a pair.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum PairState {
    /// Both tokens may be used (until they expire).
    Active,
    /// Rotated away: neither token is accepted, except the refresh token within the reuse
    /// window.
    Replaced {
        /// When it was rotated.
        at: OffsetDateTime,
        /// The refresh token hash of the successor pair.
        successor: TokenHash,
        /// What the old refresh token answers within the reuse window.
        reuse: Option<Reuse>,
    },
    /// Revoked: nothing is accepted.
    Revoked {
        /// When it was revoked.
        at: OffsetDateTime,
    },
}

/// The successor pair kept, as issued, for the reuse window: answering "the same pair again"
/// needs the tokens themselves. A store should drop it once `until` has passed (see
/// [`PairRecord::is_dead`]) and may encrypt it at rest.
#[derive(Clone, Debug, PartialEq)]
pub struct Reuse {
    /// The end of the reuse window.
    pub until: OffsetDateTime,
    /// The successor as it was issued.
    pub tokens: StoredTokenSet,
}

/// A freshly generated pair: the record to store and the tokens to hand out.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Minted {
    /// The record (hashes only).
    pub record: PairRecord,
    /// The tokens.
    pub tokens: StoredTokenSet,
}

/// One refresh presented to [`IssuerStore::rotate`].
#[non_exhaustive]
pub struct Rotation<'a> {
    /// The hash of the presented refresh token.
    pub presented: &'a TokenHash,
    /// The authenticated client presenting it (`None`: none); see [`PairRecord::verdict`].
    pub client: Option<&'a str>,
    /// The issuer's current time.
    pub now: OffsetDateTime,
    /// The issuer's reuse window.
    pub reuse_window: Duration,
    /// Generates the successor of the given record; call it at most once, only when the
    /// verdict is [`RotateVerdict::Rotate`].
    pub mint: &'a (dyn Fn(&PairRecord) -> Minted + Send + Sync),
}

impl fmt::Debug for Rotation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Rotation")
            .field("presented", self.presented)
            .field("client", &self.client)
            .field("now", &self.now)
            .field("reuse_window", &self.reuse_window)
            .finish_non_exhaustive()
    }
}

/// What [`PairRecord::verdict`] decided.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RotateVerdict {
    /// Mint the successor, store it, and mark the record replaced.
    Rotate,
    /// Answer this successor again; change nothing.
    Reuse(StoredTokenSet),
    /// Refuse.
    Reject(RotateRejection),
}

/// What a store's [`rotate`](IssuerStore::rotate) did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RotateOutcome {
    /// The successor was minted and stored; the old pair is replaced.
    Rotated {
        /// The subject.
        subject: String,
        /// The successor's tokens.
        tokens: StoredTokenSet,
    },
    /// Within the reuse window: the successor issued before.
    Reused {
        /// The subject.
        subject: String,
        /// The successor's tokens.
        tokens: StoredTokenSet,
    },
    /// Refused.
    Rejected(RotateRejection),
}

/// Why a rotation was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RotateRejection {
    /// No pair has this refresh token, or it was issued to another client.
    Unknown,
    /// The refresh token has expired.
    Expired,
    /// The refresh token was already rotated (outside the reuse window, or its successor
    /// moved on).
    Used {
        /// The presented pair's [family](PairRecord::family), read in the same atomic step
        /// as the verdict: what a replay revokes ([`IssuerStore::revoke_family`]), even if a
        /// purge forgets the presented pair before the revocation runs.
        family: TokenHash,
    },
    /// The pair was revoked.
    Revoked,
}

/// Where an [`Issuer`] keeps its pairs and authorization codes, keyed by their hashes.
///
/// Implementations must make [`rotate`](Self::rotate) atomic (a mutex, a database
/// transaction with a row lock): two concurrent rotations with the same refresh token must
/// both see the outcome of one of them. The rules themselves are in
/// [`PairRecord::verdict`] and [`PairRecord::replace_with`].
#[async_trait]
pub trait IssuerStore: Send + Sync + 'static {
    /// Stores a newly issued pair.
    async fn insert(&self, record: PairRecord) -> Result<(), StoreError>;

    /// The pair whose access token has this hash.
    async fn find_by_access(&self, access: &TokenHash) -> Result<Option<PairRecord>, StoreError>;

    /// The pair whose refresh token has this hash.
    async fn find_by_refresh(&self, refresh: &TokenHash) -> Result<Option<PairRecord>, StoreError>;

    /// Atomically: finds the pair of `rotation.presented`, asks [`PairRecord::verdict`]
    /// (with `rotation.client`, and the successor record if replaced), and on
    /// [`RotateVerdict::Rotate`] mints the successor, stores it and marks the old pair
    /// [replaced](PairRecord::replace_with); or, when the successor
    /// [keeps](PairRecord::is_kept_by) the refresh token, stores the successor in the old
    /// pair's place (the old access token no longer found).
    async fn rotate(&self, rotation: Rotation<'_>) -> Result<RotateOutcome, StoreError>;

    /// Revokes the live pair whose access or refresh token has this hash; returns whether one
    /// was revoked.
    async fn revoke(&self, token: &TokenHash, at: OffsetDateTime) -> Result<bool, StoreError>;

    /// Revokes every live pair of `subject`; returns how many. A rotation running at the same
    /// time must not leave its successor live: once this returns, no pair of `subject` that
    /// was live when it began is live, nor any successor of one. The subject's codes not
    /// yet redeemed expire ([`CodeRecord::expires_at`] set to its `issued_at`), and a
    /// redemption running at the same time must not leave its pair live either.
    async fn revoke_subject(&self, subject: &str, at: OffsetDateTime) -> Result<usize, StoreError>;

    /// Revokes the live pair of `family` (the pairs whose [`PairRecord::family`] it is; a
    /// family has at most one); returns how many. What a replayed refresh token or
    /// authorization code revokes: by the family id every pair keeps, never by following
    /// rotations from the replayed pair, which a purge may have forgotten (with any number
    /// of its successors) since its verdict. A rotation running at the same time must not
    /// leave its successor live: once this returns, no pair of `family` is live that was
    /// live when it began, nor any successor of one.
    async fn revoke_family(
        &self,
        family: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError>;

    /// Stores a newly issued authorization code.
    async fn insert_code(&self, record: CodeRecord) -> Result<(), StoreError>;

    /// Atomically: finds the code of `redemption.presented`, asks [`CodeRecord::verdict`],
    /// and on [`CodeVerdict::Redeem`] mints the pair, stores it and marks the code
    /// [redeemed](CodeState::Redeemed) with the pair's refresh token hash; on
    /// [`CodeVerdict::Burn`] marks it redeemed without a pair. Two concurrent redemptions of
    /// one code: exactly one is redeemed.
    async fn redeem_code(&self, redemption: Redemption<'_>) -> Result<RedeemOutcome, StoreError>;

    /// Forgets the pairs that are [dead](PairRecord::is_dead) and the codes that are
    /// [dead](CodeRecord::is_dead) at `now`; returns how many.
    ///
    /// A code still alive names the pair it gave ([`CodeState::Redeemed`]), which is its
    /// family's id: that pair may be forgotten, and its replay still revokes the family's
    /// live pair ([`revoke_family`](Self::revoke_family)).
    async fn purge(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        let _ = now;
        Ok(0)
    }
}

const _: Option<&dyn IssuerStore> = None;

/// 32 random bytes, base64url without padding (43 characters).
fn random_token() -> String {
    let bytes: [u8; 32] = crate::random::bytes();
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

fn unsigned_jwt(subject: &str, now: OffsetDateTime, expires_at: OffsetDateTime) -> String {
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let header = engine.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let claims = serde_json::json!({
        "sub": subject,
        "iat": now.unix_timestamp(),
        "exp": expires_at.unix_timestamp(),
        "jti": random_token(),
    });
    let payload = engine.encode(claims.to_string());
    format!("{header}.{payload}.")
}

#[cfg(test)]
mod client_tests;
#[cfg(test)]
mod code_tests;
#[cfg(test)]
mod race_tests;
#[cfg(test)]
mod tests;
