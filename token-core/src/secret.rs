//! Secret values (tokens, codes, client secrets) that redact themselves.
//!
//! `Debug` and `Display` never print the value; the only way to read it is an explicit
//! [`expose_secret`](AccessToken::expose_secret) call, so a secret cannot reach a log by accident.

use crate::redact::REDACTED;
use std::fmt;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

macro_rules! secret_type {
    ($(#[$meta:meta])* $name:ident) => {
        $(#[$meta])*
        ///
        /// `Debug` and `Display` print a redacted form; cloning is cheap (the value is shared);
        /// `==` compares in a time that depends on the lengths only (a server comparing a
        /// presented value with a stored one reveals no prefix of it). Serializing writes
        /// the raw value, because stores and codecs must transmit it.
        #[derive(Clone)]
        pub struct $name(Arc<str>);

        impl std::hash::Hash for $name {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                // As the value's: equal values hash alike, whichever way they are compared.
                self.0.hash(state);
            }
        }

        impl PartialEq for $name {
            fn eq(&self, other: &Self) -> bool {
                Arc::ptr_eq(&self.0, &other.0)
                    || crate::sign::constant_time_eq(self.0.as_bytes(), other.0.as_bytes())
            }
        }

        impl Eq for $name {}

        impl $name {
            /// Wraps a raw value.
            pub fn new(value: impl Into<String>) -> Self {
                Self(Arc::from(value.into()))
            }

            /// The raw value. Call this only where the value must be transmitted or stored.
            pub fn expose_secret(&self) -> &str {
                &self.0
            }

            /// A short, stable, non-reversible tag of the value (8 hex digits of its SHA-256),
            /// safe for logs: it tells two values apart without revealing either.
            pub fn fingerprint(&self) -> Fingerprint {
                Fingerprint::of(&self.0)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, concat!(stringify!($name), "({})"), REDACTED)
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(REDACTED)
            }
        }

        impl From<String> for $name {
            fn from(value: String) -> Self {
                Self::new(value)
            }
        }

        impl From<&str> for $name {
            fn from(value: &str) -> Self {
                Self::new(value)
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
                serializer.serialize_str(&self.0)
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
                deserialize_secret(deserializer).map(Self::new)
            }
        }

        impl crate::redact::Secret for $name {
            fn expose_secret(&self) -> &str {
                &self.0
            }
        }
    };
}

/// Reads a secret's text. Not as `String` does: a format's error, or serde's, quotes a
/// number it was given instead (a secret written without quotes); such an error is given
/// again without the number.
fn deserialize_secret<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    deserializer
        .deserialize_string(SecretText)
        .map_err(|error| {
            let shown = error.to_string();
            let unquoted = crate::redact::unquote_numbers(&shown);
            match unquoted == shown {
                true => error,
                false => serde::de::Error::custom(unquoted),
            }
        })
}

/// Reads a secret: text only. Whatever else it is given is refused without being quoted in
/// the error (serde's default messages quote numbers, characters and bytes).
struct SecretText;

impl serde::de::Visitor<'_> for SecretText {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: serde::de::Error>(self, value: &str) -> Result<String, E> {
        Ok(value.to_owned())
    }

    fn visit_string<E: serde::de::Error>(self, value: String) -> Result<String, E> {
        Ok(value)
    }

    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<String, E> {
        Err(self.refuse("an integer"))
    }

    fn visit_i128<E: serde::de::Error>(self, _: i128) -> Result<String, E> {
        Err(self.refuse("an integer"))
    }

    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<String, E> {
        Err(self.refuse("an integer"))
    }

    fn visit_u128<E: serde::de::Error>(self, _: u128) -> Result<String, E> {
        Err(self.refuse("an integer"))
    }

    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<String, E> {
        Err(self.refuse("a number"))
    }

    fn visit_char<E: serde::de::Error>(self, _: char) -> Result<String, E> {
        Err(self.refuse("a character"))
    }

    fn visit_bytes<E: serde::de::Error>(self, _: &[u8]) -> Result<String, E> {
        Err(self.refuse("bytes"))
    }
}

impl SecretText {
    fn refuse<E: serde::de::Error>(&self, what: &str) -> E {
        E::invalid_type(serde::de::Unexpected::Other(what), self)
    }
}

secret_type!(
    /// A bearer access token.
    AccessToken
);
secret_type!(
    /// A refresh token. Providers that rotate invalidate it once it has been used.
    RefreshToken
);
secret_type!(
    /// A one-time authorization code.
    AuthCode
);
secret_type!(
    /// A client secret, account key or password used to authenticate the client itself.
    ClientSecret
);

/// A log-safe tag of a secret: the first 8 hex digits of its SHA-256.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint([u8; 4]);

impl Fingerprint {
    fn of(value: &str) -> Self {
        let digest = crate::crypto::sha256(value.as_bytes());
        Self([digest[0], digest[1], digest[2], digest[3]])
    }
}

impl fmt::Display for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Fingerprint({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A secret written as a number (an all-digit client secret left unquoted in a YAML or
    /// TOML config, which those formats read as a number; a provider's numeric token) is
    /// refused, and the error does not quote it as serde's own message does
    /// (`invalid type: integer `…``).
    #[test]
    fn a_secret_that_is_not_text_is_refused_without_being_quoted() {
        #[derive(Debug, serde::Deserialize)]
        #[allow(dead_code)]
        struct Config {
            client_secret: ClientSecret,
        }
        for value in [
            serde_json::json!(987654321098765432u64),
            serde_json::json!(-987654321098765432i64),
            serde_json::json!(9.876543210987654e30),
        ] {
            let shown = [
                serde_json::from_value::<ClientSecret>(value.clone()).unwrap_err(),
                serde_json::from_str::<AccessToken>(&value.to_string()).unwrap_err(),
                serde_json::from_value::<Config>(serde_json::json!({"client_secret": value}))
                    .unwrap_err(),
            ]
            .map(|error| format!("{error} {error:?}"));
            for shown in shown {
                assert!(!shown.contains("98765432"), "{shown}");
                assert!(shown.contains("expected a string"), "{shown}");
            }
        }
        assert_eq!(
            serde_json::from_str::<RefreshToken>(r#""rt-1""#).unwrap(),
            RefreshToken::new("rt-1")
        );
    }

    #[test]
    fn secrets_compare_by_value_and_hash_alike() {
        use std::collections::HashSet;
        let a = ClientSecret::new("s3cret");
        assert_eq!(a, a.clone());
        assert_eq!(a, ClientSecret::new("s3cret"));
        assert_ne!(a, ClientSecret::new("s3creT"));
        assert_ne!(a, ClientSecret::new("s3cre"));
        assert_ne!(a, ClientSecret::new(""));
        let set: HashSet<_> = [RefreshToken::new("rt"), RefreshToken::new("rt")].into();
        assert_eq!(set.len(), 1);
    }

    #[test]
    fn debug_and_display_never_show_the_value() {
        let values = [
            format!("{:?}", AccessToken::new("at-SECRET")),
            format!("{}", AccessToken::new("at-SECRET")),
            format!("{:?}", RefreshToken::new("rt-SECRET")),
            format!("{}", RefreshToken::new("rt-SECRET")),
            format!("{:?}", AuthCode::new("code-SECRET")),
            format!("{}", AuthCode::new("code-SECRET")),
            format!("{:?}", ClientSecret::new("cs-SECRET")),
            format!("{}", ClientSecret::new("cs-SECRET")),
            format!("{:#?}", Some(AccessToken::new("at-SECRET"))),
        ];
        for shown in values {
            assert!(!shown.contains("SECRET"), "{shown}");
            assert!(shown.contains(REDACTED), "{shown}");
        }
        assert_eq!(
            format!("{:?}", AccessToken::new("x")),
            "AccessToken([redacted])"
        );
    }

    #[test]
    fn expose_secret_and_serde_carry_the_raw_value() {
        let token = RefreshToken::new("rt-1");
        assert_eq!(token.expose_secret(), "rt-1");
        assert_eq!(serde_json::to_string(&token).unwrap(), r#""rt-1""#);
        let back: RefreshToken = serde_json::from_str(r#""rt-1""#).unwrap();
        assert_eq!(back, token);
    }

    #[test]
    fn fingerprint_tells_values_apart_without_revealing_them() {
        let a = AccessToken::new("aaaa-secret");
        let b = AccessToken::new("bbbb-secret");
        assert_eq!(
            a.fingerprint(),
            AccessToken::new("aaaa-secret").fingerprint()
        );
        assert_ne!(a.fingerprint(), b.fingerprint());
        let shown = a.fingerprint().to_string();
        assert_eq!(shown.len(), 8);
        assert!(!shown.contains("secret"));
    }

    #[test]
    fn a_token_that_is_not_a_string_is_a_serde_error() {
        assert!(serde_json::from_str::<AccessToken>("42").is_err());
        assert!(serde_json::from_str::<AccessToken>("{}").is_err());
    }
}
