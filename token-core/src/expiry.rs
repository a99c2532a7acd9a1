//! Turning whatever a provider sends about expiry into absolute instants.
//!
//! Providers send `expires_in` seconds (a number, a string or null), UNIX seconds or
//! milliseconds, RFC 3339 with an offset, or nothing but a JWT whose `exp` claim says it. All
//! become `OffsetDateTime`, inside [`EARLIEST`]..=[`LATEST`] so that no skew or lifetime
//! added or subtracted later can overflow.

use std::fmt;

use base64::Engine as _;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use time::format_description::well_known::Rfc3339;
use time::{Duration, OffsetDateTime};

/// The earliest expiry instant a provider's answer can give: the UNIX epoch. An instant
/// before it (a JWT `exp` of year -9999) is nonsense, read as "expiry unknown".
pub const EARLIEST: OffsetDateTime = OffsetDateTime::UNIX_EPOCH;

/// The latest expiry instant a provider's answer can give: a lifetime beyond it ends there.
/// A thousand years below the last representable instant, so that adding any sane duration
/// to an expiry cannot overflow.
pub const LATEST: OffsetDateTime = utc(9000, time::Month::January, 1, (0, 0, 0));

/// A UTC instant from its calendar parts, for constants (a wrong date fails to compile).
pub(crate) const fn utc(
    year: i32,
    month: time::Month,
    day: u8,
    (hour, minute, second): (u8, u8, u8),
) -> OffsetDateTime {
    match time::Date::from_calendar_date(year, month, day) {
        Ok(date) => match date.with_hms(hour, minute, second) {
            Ok(at) => at.assume_utc(),
            Err(_) => panic!("not a time of day"),
        },
        Err(_) => panic!("not a calendar date"),
    }
}

/// An instant a provider sent, if it is one an expiry can be: `None` (unknown) before
/// [`EARLIEST`] or after [`LATEST`], a provider's nonsense, as a lifetime that ends after
/// [`LATEST`] is (see [`ExpiresIn::at`]): a manager then assumes its default lifetime
/// rather than keeping the token for millennia.
///
/// ```
/// use token_core::expiry::{LATEST, plausible};
/// use time::macros::datetime;
///
/// let at = datetime!(2026-01-01 00:00 UTC);
/// assert_eq!(plausible(at), Some(at));
/// assert_eq!(plausible(LATEST), Some(LATEST));
/// assert_eq!(plausible(datetime!(-9999-01-01 00:00 UTC)), None);
/// assert_eq!(plausible(datetime!(9999-12-31 23:59 UTC)), None);
/// ```
pub fn plausible(at: OffsetDateTime) -> Option<OffsetDateTime> {
    (EARLIEST..=LATEST).contains(&at).then_some(at)
}

/// Lifetime in seconds from the moment of the response, as `expires_in` carries it.
///
/// Deserializes from a number (`3600`, `3600.0`), a numeric string (`"3600"`) or `null`
/// (no lifetime given). Serializes as a number, or `null`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ExpiresIn(pub Option<u64>);

impl ExpiresIn {
    /// The absolute instant `now + self`, if a lifetime was given.
    ///
    /// A lifetime that ends beyond [`LATEST`] (`18446744073709551615`: a provider's
    /// nonsense, like `1e300`) is no lifetime: the expiry is unknown, so a manager assumes
    /// its default lifetime rather than keeping the token for millennia.
    ///
    /// ```
    /// use token_core::expiry::ExpiresIn;
    /// use time::macros::datetime;
    ///
    /// let now = datetime!(2026-01-01 00:00 UTC);
    /// assert_eq!(ExpiresIn(Some(7200)).at(now), Some(datetime!(2026-01-01 02:00 UTC)));
    /// assert_eq!(ExpiresIn(Some(u64::MAX)).at(now), None);
    /// ```
    pub fn at(self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        let secs = i64::try_from(self.0?).ok()?;
        now.checked_add(Duration::seconds(secs))
            .filter(|at| *at <= LATEST)
    }

    /// The lifetime left from `now` until `at`, rounded down, zero if already past.
    pub fn until(at: OffsetDateTime, now: OffsetDateTime) -> Self {
        Self(Some((at - now).whole_seconds().max(0) as u64))
    }
}

impl Serialize for ExpiresIn {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0 {
            Some(secs) => serializer.serialize_u64(secs),
            None => serializer.serialize_none(),
        }
    }
}

impl<'de> Deserialize<'de> for ExpiresIn {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match NumberOrString::deserialize(deserializer)? {
            NumberOrString::Null => Ok(Self(None)),
            other => other
                .seconds()
                .map(|s| Self(Some(s)))
                .map_err(serde::de::Error::custom),
        }
    }
}

/// An absolute instant sent as UNIX seconds (a number or a numeric string).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnixTime(pub OffsetDateTime);

impl Serialize for UnixTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(self.0.unix_timestamp())
    }
}

impl<'de> Deserialize<'de> for UnixTime {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let secs = NumberOrString::deserialize(deserializer)?
            .seconds()
            .map_err(serde::de::Error::custom)?;
        // Beyond `i64` is out of range, not a wrapped (past) instant.
        i64::try_from(secs)
            .map_err(|_| ExpiryError::OutOfRange)
            .and_then(from_unix)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// An absolute instant sent as UNIX milliseconds: a number (`1278448832702`) or a numeric
/// string (`"1278448832702"`, Salesforce's `issued_at`). Serializes as a number; see
/// [`UnixMillisText`] for a provider that writes a string.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnixMillis(pub OffsetDateTime);

/// Like [`UnixMillis`] (reads a number or a numeric string), but serializes as a string of
/// digits, so a sandbox writes the answer the way the provider does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct UnixMillisText(pub OffsetDateTime);

impl Serialize for UnixMillis {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_i64(unix_millis(self.0))
    }
}

impl Serialize for UnixMillisText {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&unix_millis(self.0).to_string())
    }
}

impl<'de> Deserialize<'de> for UnixMillis {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_millis(deserializer).map(Self)
    }
}

impl<'de> Deserialize<'de> for UnixMillisText {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        read_millis(deserializer).map(Self)
    }
}

/// Whole milliseconds since the UNIX epoch (saturating; every instant a provider's answer
/// can give fits).
fn unix_millis(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn read_millis<'de, D: Deserializer<'de>>(deserializer: D) -> Result<OffsetDateTime, D::Error> {
    let millis = NumberOrString::deserialize(deserializer)?
        .seconds()
        .map_err(serde::de::Error::custom)?;
    // Beyond `i64` is out of range, not a wrapped (past) instant.
    i64::try_from(millis)
        .ok()
        .and_then(|ms| OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok())
        .ok_or(ExpiryError::OutOfRange)
        .map_err(serde::de::Error::custom)
}

/// An absolute instant sent as RFC 3339 / ISO 8601 with an offset
/// (`2022-06-06T12:12:12+08:00`). The offset is kept, so it serializes back as it came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Iso8601(pub OffsetDateTime);

impl Serialize for Iso8601 {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let text = self.0.format(&Rfc3339).map_err(serde::ser::Error::custom)?;
        serializer.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for Iso8601 {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        parse_rfc3339(&text)
            .map(Self)
            .map_err(serde::de::Error::custom)
    }
}

/// Parses RFC 3339 / ISO 8601 with an offset.
pub fn parse_rfc3339(text: &str) -> Result<OffsetDateTime, ExpiryError> {
    OffsetDateTime::parse(text.trim(), &Rfc3339).map_err(|_| ExpiryError::NotRfc3339)
}

/// Formats an instant as RFC 3339 (`2022-06-06T04:12:12Z` for UTC).
pub fn format_rfc3339(at: OffsetDateTime) -> String {
    at.format(&Rfc3339)
        .unwrap_or_else(|_| at.unix_timestamp().to_string())
}

/// The instant of `secs` UNIX seconds.
pub fn from_unix(secs: i64) -> Result<OffsetDateTime, ExpiryError> {
    OffsetDateTime::from_unix_timestamp(secs).map_err(|_| ExpiryError::OutOfRange)
}

/// The `exp` claim of a JWT, read without verifying the signature.
///
/// Only for scheduling a refresh of one's own token: never trust an unverified claim for
/// anything else. Returns `None` when the value is not a JWT or has no numeric `exp`, or an
/// `exp` before the UNIX epoch or beyond [`LATEST`] (see [`plausible`]).
pub fn jwt_exp(token: &str) -> Option<OffsetDateTime> {
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload.trim_end_matches('='))
        .ok()?;
    #[derive(Deserialize)]
    struct Claims {
        exp: Option<serde_json::Value>,
    }
    let claims: Claims = serde_json::from_slice(&bytes).ok()?;
    let secs = match claims.exp? {
        serde_json::Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64))?,
        serde_json::Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    from_unix(secs).ok().and_then(plausible)
}

/// Why an expiry value could not be read.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ExpiryError {
    /// Not a number of seconds (negative, fractional nonsense, or not numeric text).
    #[error("expected a whole number of seconds")]
    NotSeconds,
    /// Not RFC 3339 / ISO 8601 with an offset.
    #[error("expected an RFC 3339 / ISO 8601 date-time with an offset")]
    NotRfc3339,
    /// Outside the representable range of date-times.
    #[error("date-time out of range")]
    OutOfRange,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum NumberOrString {
    Null,
    Unsigned(u64),
    Signed(i64),
    Float(f64),
    Text(String),
}

impl NumberOrString {
    fn seconds(self) -> Result<u64, ExpiryError> {
        match self {
            Self::Unsigned(n) => Ok(n),
            Self::Signed(n) => u64::try_from(n).map_err(|_| ExpiryError::NotSeconds),
            Self::Null => Err(ExpiryError::NotSeconds),
            Self::Float(f) if f.is_finite() && f >= 0.0 && f < u64::MAX as f64 => Ok(f as u64),
            Self::Float(_) => Err(ExpiryError::NotSeconds),
            Self::Text(text) => {
                let text = text.trim();
                text.parse::<u64>()
                    .ok()
                    .or_else(|| {
                        text.parse::<f64>()
                            .ok()
                            .filter(|f| f.is_finite() && *f >= 0.0 && *f < u64::MAX as f64)
                            .map(|f| f as u64)
                    })
                    .ok_or(ExpiryError::NotSeconds)
            }
        }
    }
}

impl fmt::Display for ExpiresIn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(secs) => write!(f, "{secs}s"),
            None => f.write_str("unknown"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn expires_in_accepts_number_string_and_null() {
        let parse = |s: &str| serde_json::from_str::<ExpiresIn>(s);
        assert_eq!(parse("3600").unwrap(), ExpiresIn(Some(3600)));
        assert_eq!(parse("3600.0").unwrap(), ExpiresIn(Some(3600)));
        assert_eq!(parse(r#""3600""#).unwrap(), ExpiresIn(Some(3600)));
        assert_eq!(parse(r#"" 86400 ""#).unwrap(), ExpiresIn(Some(86400)));
        assert_eq!(parse("null").unwrap(), ExpiresIn(None));
        assert!(parse("-5").is_err());
        assert!(parse(r#""soon""#).is_err());
        assert!(parse("{}").is_err());
    }

    #[test]
    fn expires_in_is_relative_to_now() {
        let now = datetime!(2026-01-01 00:00 UTC);
        assert_eq!(
            ExpiresIn(Some(60)).at(now),
            Some(datetime!(2026-01-01 00:01 UTC))
        );
        assert_eq!(ExpiresIn(None).at(now), None);
        // Nonsense lifetimes (ending past `LATEST`) are unknown, never an overflow: the
        // manager's default lifetime applies, as to `1e300`.
        for secs in [u64::MAX, i64::MAX as u64, i64::MAX as u64 + 1, 1 << 40] {
            assert_eq!(ExpiresIn(Some(secs)).at(now), None, "{secs}");
        }
        assert_eq!(
            ExpiresIn(Some(u64::MAX)).at(time::PrimitiveDateTime::MAX.assume_utc()),
            None
        );
        assert_eq!(ExpiresIn(Some(0)).at(LATEST), Some(LATEST));
        assert_eq!(ExpiresIn(Some(1)).at(LATEST), None);
        // A long but sane lifetime is kept, with room for more arithmetic.
        let far = ExpiresIn(Some(1 << 36)).at(now).unwrap();
        assert!(far > now + Duration::days(365 * 1000));
        assert!(far.format(&Rfc3339).is_ok(), "stores can still write it");
        assert!(far.checked_add(Duration::days(366 * 100)).is_some());
        assert_eq!(
            ExpiresIn::until(now, datetime!(2026-01-01 00:05 UTC)),
            ExpiresIn(Some(0))
        );
    }

    #[test]
    fn unix_seconds_from_number_or_string() {
        let a: UnixTime = serde_json::from_str("1700000000").unwrap();
        let b: UnixTime = serde_json::from_str(r#""1700000000""#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.0.unix_timestamp(), 1_700_000_000);
        assert_eq!(serde_json::to_string(&a).unwrap(), "1700000000");
        // Past `i64` is an error, not a wrapped instant in 1969.
        assert!(serde_json::from_str::<UnixTime>("18446744073709551615").is_err());
    }

    #[test]
    fn unix_millis_from_number_or_string() {
        let a: UnixMillis = serde_json::from_str("1278448832702").unwrap();
        let b: UnixMillis = serde_json::from_str(r#""1278448832702""#).unwrap();
        assert_eq!(a, b);
        assert_eq!(a.0, datetime!(2010-07-06 20:40:32.702 UTC));
        assert_eq!(serde_json::to_string(&a).unwrap(), "1278448832702");
        let text: UnixMillisText = serde_json::from_str("1278448832702").unwrap();
        assert_eq!(text.0, a.0);
        assert_eq!(serde_json::to_string(&text).unwrap(), r#""1278448832702""#);
        for odd in ["-1", "18446744073709551615", r#""soon""#, "{}", "null"] {
            assert!(serde_json::from_str::<UnixMillis>(odd).is_err(), "{odd}");
        }
    }

    #[test]
    fn iso8601_keeps_the_offset() {
        let at: Iso8601 = serde_json::from_str(r#""2022-06-06T12:12:12+08:00""#).unwrap();
        assert_eq!(at.0, datetime!(2022-06-06 04:12:12 UTC));
        assert_eq!(
            serde_json::to_string(&at).unwrap(),
            r#""2022-06-06T12:12:12+08:00""#
        );
        assert!(serde_json::from_str::<Iso8601>(r#""2022-06-06 12:12""#).is_err());
    }

    #[test]
    fn jwt_exp_is_read_without_verification() {
        let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(br#"{"sub":"acct","exp":1700003600}"#);
        let jwt = format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig");
        assert_eq!(jwt_exp(&jwt).unwrap().unix_timestamp(), 1_700_003_600);
        assert_eq!(jwt_exp("not-a-jwt"), None);
        assert_eq!(jwt_exp("a.!!!.c"), None);
        let no_exp = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(br#"{"sub":1}"#);
        assert_eq!(jwt_exp(&format!("a.{no_exp}.c")), None);
    }

    #[test]
    fn jwt_exp_at_the_edges_of_time_is_unknown() {
        let jwt = |exp: &str| {
            let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(format!(r#"{{"exp":{exp}}}"#));
            format!("h.{payload}.s")
        };
        for exp in [
            i64::MIN.to_string(),
            "-377705116800".into(),
            "-1".into(),
            "-1e300".into(),
        ] {
            assert_eq!(jwt_exp(&jwt(&exp)), None, "{exp}");
        }
        for exp in [
            "253402300799".to_string(),
            i64::MAX.to_string(),
            u64::MAX.to_string(),
            "1e300".into(),
        ] {
            assert_eq!(jwt_exp(&jwt(&exp)), None, "{exp}");
        }
        let latest = LATEST.unix_timestamp().to_string();
        assert_eq!(jwt_exp(&jwt(&latest)), Some(LATEST));
        assert_eq!(jwt_exp(&jwt("0")), Some(EARLIEST));
    }
}
