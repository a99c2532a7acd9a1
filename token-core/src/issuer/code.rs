//! Authorization codes (RFC 6749 section 4.1): issued bound to a client, a redirect URI, a
//! PKCE challenge, a scope and a subject; redeemed once for a pair; dead at their expiry.
//!
//! The rules are here, as pure functions on a [`CodeRecord`], so every [`IssuerStore`]
//! applies the same ones inside its atomic [`redeem_code`](IssuerStore::redeem_code).
//!
//! [`IssuerStore`]: super::IssuerStore

use std::fmt;

use time::OffsetDateTime;

use super::{Minted, TokenHash};
use crate::pkce::challenge_s256;
use crate::sign::constant_time_eq;

/// What an authorization code is bound to, given to [`Issuer::issue_code`](super::Issuer::issue_code).
///
/// ```
/// use token_core::issuer::CodeGrant;
///
/// let grant = CodeGrant::new("app-1", "alice")
///     .with_redirect_uri(Some("https://app.example/cb".into()))
///     .with_scope(Some("payments".into()));
/// assert_eq!(grant.client_id, "app-1");
/// ```
///
/// Stores build it back from their rows, so it is not `#[non_exhaustive]`.
#[derive(Clone, Debug, PartialEq)]
pub struct CodeGrant {
    /// The client the code is for: only it may redeem the code.
    pub client_id: String,
    /// The redirect URI of the authorization request; the exchange must send the same one.
    pub redirect_uri: Option<String>,
    /// The S256 PKCE challenge of the authorization request; the exchange must send its
    /// verifier.
    pub code_challenge: Option<String>,
    /// The granted scope, carried by the issued pair's answer.
    pub scope: Option<String>,
    /// Whom the pair is issued to.
    pub subject: String,
    /// Extras carried by the issued pair and every successor.
    pub extras: serde_json::Value,
}

impl CodeGrant {
    /// A code for `client_id` to obtain a pair for `subject`, with no redirect URI, challenge,
    /// scope or extras.
    pub fn new(client_id: impl Into<String>, subject: impl Into<String>) -> Self {
        Self {
            client_id: client_id.into(),
            redirect_uri: None,
            code_challenge: None,
            scope: None,
            subject: subject.into(),
            extras: serde_json::json!({}),
        }
    }

    /// Sets the redirect URI the exchange must repeat.
    pub fn with_redirect_uri(mut self, redirect_uri: Option<String>) -> Self {
        self.redirect_uri = redirect_uri;
        self
    }

    /// Sets the S256 PKCE challenge whose verifier the exchange must send.
    pub fn with_challenge(mut self, challenge: Option<String>) -> Self {
        self.code_challenge = challenge;
        self
    }

    /// Sets the granted scope.
    pub fn with_scope(mut self, scope: Option<String>) -> Self {
        self.scope = scope;
        self
    }

    /// Sets the extras the pair carries.
    pub fn with_extras(mut self, extras: serde_json::Value) -> Self {
        self.extras = extras;
        self
    }
}

/// What a code exchange presents besides the code, given to
/// [`Issuer::redeem_code`](super::Issuer::redeem_code). `Debug` never shows the verifier.
#[derive(Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct CodeExchange<'a> {
    /// The authenticated client.
    pub client_id: &'a str,
    /// The `redirect_uri` parameter, if sent.
    pub redirect_uri: Option<&'a str>,
    /// The PKCE `code_verifier`, if sent.
    pub code_verifier: Option<&'a str>,
}

impl<'a> CodeExchange<'a> {
    /// An exchange by `client_id`, without redirect URI or verifier.
    pub fn new(client_id: &'a str) -> Self {
        Self {
            client_id,
            redirect_uri: None,
            code_verifier: None,
        }
    }

    /// Sets the redirect URI sent.
    pub fn with_redirect_uri(mut self, redirect_uri: Option<&'a str>) -> Self {
        self.redirect_uri = redirect_uri;
        self
    }

    /// Sets the PKCE verifier sent.
    pub fn with_verifier(mut self, code_verifier: Option<&'a str>) -> Self {
        self.code_verifier = code_verifier;
        self
    }
}

impl fmt::Debug for CodeExchange<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CodeExchange")
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("code_verifier", &self.code_verifier.map(|_| "[redacted]"))
            .finish()
    }
}

/// One authorization code as a store keeps it: its hash, never the code. Stores build it back
/// from their rows, so it is not `#[non_exhaustive]`.
#[derive(Clone, Debug, PartialEq)]
pub struct CodeRecord {
    /// The hash of the code.
    pub code_hash: TokenHash,
    /// What the code is bound to.
    pub grant: CodeGrant,
    /// When it was issued.
    pub issued_at: OffsetDateTime,
    /// When it stops being redeemable.
    pub expires_at: OffsetDateTime,
    /// Waiting, or redeemed (used up).
    pub state: CodeState,
}

/// The life cycle of a code.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeState {
    /// Not redeemed yet.
    Pending,
    /// Used up: redeemed, or presented once with the wrong client, redirect URI or verifier.
    Redeemed {
        /// When.
        at: OffsetDateTime,
        /// The refresh token hash of the pair issued for it (`None`: refused, none issued):
        /// the [family](super::PairRecord::family) that pair starts, whose live pair a
        /// replay of the code revokes, whatever purges have forgotten since.
        pair: Option<TokenHash>,
    },
}

/// What [`CodeRecord::verdict`] decided.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeVerdict {
    /// Issue the pair, store it and mark the code redeemed with it.
    Redeem,
    /// Mark the code used up (no pair) and refuse: a wrong client, redirect URI or verifier
    /// gets one try, so guessing a verifier is worth nothing.
    Burn,
    /// Refuse; change nothing.
    Reject(CodeRejection),
}

/// Why a redemption was refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum CodeRejection {
    /// No code has this hash (never issued, or purged after its expiry).
    Unknown,
    /// The code has expired.
    Expired,
    /// The code was redeemed before; `pair` is the refresh token hash of the pair it gave.
    Used {
        /// The pair issued for the first redemption, if one was: its family's id.
        pair: Option<TokenHash>,
    },
    /// Another client, another redirect URI, or a missing or wrong PKCE verifier.
    Mismatch,
}

impl CodeRecord {
    /// What a redemption presenting this code with `exchange` does at `now`: a used code is
    /// refused as used (whatever else), an expired one as expired, then the client, redirect
    /// URI and PKCE verifier must match.
    pub fn verdict(&self, exchange: &CodeExchange<'_>, now: OffsetDateTime) -> CodeVerdict {
        if let CodeState::Redeemed { pair, .. } = self.state {
            return CodeVerdict::Reject(CodeRejection::Used { pair });
        }
        if self.expires_at <= now {
            return CodeVerdict::Reject(CodeRejection::Expired);
        }
        let grant = &self.grant;
        let client = grant.client_id == exchange.client_id;
        // RFC 6749 section 4.1.3: required, and identical, when the authorization request had one.
        let redirect = grant
            .redirect_uri
            .as_deref()
            .is_none_or(|uri| exchange.redirect_uri == Some(uri));
        // RFC 7636 section 4.6; a verifier without a challenge is refused too (a downgrade).
        let pkce = match (&grant.code_challenge, exchange.code_verifier) {
            (Some(challenge), Some(verifier)) => {
                constant_time_eq(challenge.as_bytes(), challenge_s256(verifier).as_bytes())
            }
            (None, None) => true,
            _ => false,
        };
        if client && redirect && pkce {
            CodeVerdict::Redeem
        } else {
            CodeVerdict::Burn
        }
    }

    /// Whether a store may forget this code at `now`: it has expired (a replay after that is
    /// an unknown code).
    pub fn is_dead(&self, now: OffsetDateTime) -> bool {
        self.expires_at <= now
    }
}

/// One code exchange presented to [`IssuerStore::redeem_code`](super::IssuerStore::redeem_code).
#[non_exhaustive]
pub struct Redemption<'a> {
    /// The hash of the presented code.
    pub presented: &'a TokenHash,
    /// The client, redirect URI and verifier presented with it.
    pub exchange: CodeExchange<'a>,
    /// The issuer's current time.
    pub now: OffsetDateTime,
    /// Generates the pair for the code's grant; call it at most once, only when the verdict
    /// is [`CodeVerdict::Redeem`].
    pub mint: &'a (dyn Fn(&CodeRecord) -> Minted + Send + Sync),
}

impl fmt::Debug for Redemption<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Redemption")
            .field("presented", self.presented)
            .field("exchange", &self.exchange)
            .field("now", &self.now)
            .finish_non_exhaustive()
    }
}

/// What a store's [`redeem_code`](super::IssuerStore::redeem_code) did.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum RedeemOutcome {
    /// The pair was minted and stored; the code is used up.
    Redeemed {
        /// The subject.
        subject: String,
        /// The pair's tokens.
        tokens: crate::token_set::StoredTokenSet,
    },
    /// Refused.
    Rejected(CodeRejection),
}
