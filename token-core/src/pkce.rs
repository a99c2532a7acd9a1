//! PKCE (RFC 7636): the code verifier a client keeps between the authorization request and
//! the code exchange, and the S256 challenge it sends in the authorization request.
//!
//! ```
//! use token_core::pkce::{PkceVerifier, S256, challenge_s256};
//!
//! let verifier = PkceVerifier::generate();
//! assert_eq!(verifier.expose_secret().len(), 43);
//! // The authorization request carries `code_challenge` and `code_challenge_method=S256`;
//! // the server checks the verifier of the code exchange against it.
//! let challenge = verifier.challenge();
//! assert_eq!(challenge, challenge_s256(verifier.expose_secret()));
//! assert_eq!(S256, "S256");
//! assert!(!format!("{verifier:?}").contains(verifier.expose_secret()));
//! ```

use std::fmt;
use std::sync::Arc;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::redact::REDACTED;

/// The `code_challenge_method` of [`PkceVerifier::challenge`].
pub const S256: &str = "S256";

/// A PKCE code verifier: 43 to 128 unreserved characters (RFC 7636 section 4.1).
///
/// `Debug` and `Display` print a redacted form; serializing writes the raw value, so an
/// application can keep it (in its session) between the redirect and the callback.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PkceVerifier(Arc<str>);

impl PkceVerifier {
    /// A fresh verifier: 32 random bytes, Base64url without padding (43 characters).
    pub fn generate() -> Self {
        let bytes: [u8; 32] = crate::random::bytes();
        Self(Arc::from(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        ))
    }

    /// Wraps a verifier received from elsewhere, checking its length and alphabet.
    pub fn new(value: impl Into<String>) -> Result<Self, PkceError> {
        let value = value.into();
        let unreserved = |c: char| c.is_ascii_alphanumeric() || "-._~".contains(c);
        if !(43..=128).contains(&value.len()) || !value.chars().all(unreserved) {
            return Err(PkceError);
        }
        Ok(Self(Arc::from(value)))
    }

    /// The raw value, sent as `code_verifier` in the code exchange.
    pub fn expose_secret(&self) -> &str {
        &self.0
    }

    /// The S256 challenge: Base64url (no padding) of the verifier's SHA-256.
    pub fn challenge(&self) -> String {
        challenge_s256(&self.0)
    }
}

/// The S256 challenge of `verifier` (what a server compares with the stored challenge).
pub fn challenge_s256(verifier: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(crate::crypto::sha256(verifier.as_bytes()))
}

/// A verifier that is not 43 to 128 characters of `A-Z a-z 0-9 - . _ ~`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error("a PKCE code verifier is 43 to 128 characters of A-Z, a-z, 0-9, `-`, `.`, `_`, `~`")]
pub struct PkceError;

impl fmt::Debug for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "PkceVerifier({REDACTED})")
    }
}

impl fmt::Display for PkceVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for PkceVerifier {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PkceVerifier {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Self::new(String::deserialize(deserializer)?).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rfc_7636_appendix_b_example_gives_its_challenge() {
        let verifier = PkceVerifier::new("dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk").unwrap();
        assert_eq!(
            verifier.challenge(),
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
        );
    }

    #[test]
    fn generated_verifiers_are_valid_and_distinct() {
        let a = PkceVerifier::generate();
        let b = PkceVerifier::generate();
        assert_ne!(a, b);
        assert!(PkceVerifier::new(a.expose_secret()).is_ok());
        assert_eq!(format!("{a:?}"), "PkceVerifier([redacted])");
        assert_eq!(a.to_string(), REDACTED);
    }

    #[test]
    fn short_or_odd_verifiers_are_refused() {
        assert_eq!(PkceVerifier::new("short"), Err(PkceError));
        assert!(PkceVerifier::new("a".repeat(129)).is_err());
        assert!(PkceVerifier::new(format!("{}+", "a".repeat(43))).is_err());
        let json = serde_json::to_string(&PkceVerifier::new("a".repeat(43)).unwrap()).unwrap();
        assert_eq!(json, format!("\"{}\"", "a".repeat(43)));
        assert!(serde_json::from_str::<PkceVerifier>(r#""short""#).is_err());
    }
}
