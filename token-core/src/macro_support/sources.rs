//! Where a request's fields come from, its signature, and the wire checks.

use super::*;
pub use time::OffsetDateTime;

// ---- FromContext sources -------------------------------------------------------------

/// A required value from the context, converted into the field's type.
pub fn required<T: ?Sized + ToOwned, U: From<T::Owned>>(
    value: Option<&T>,
    what: &str,
) -> Result<U, EndpointError> {
    value.map(|v| U::from(v.to_owned())).ok_or_else(|| {
        EndpointError::Encode(format!(
            "the request needs a {what} and the session has none"
        ))
    })
}

/// An optional value from the context, converted into the field's type.
pub fn optional<T: ?Sized + ToOwned, U: From<T::Owned>>(value: Option<&T>) -> Option<U> {
    value.map(|v| U::from(v.to_owned()))
}

/// The value the provider added under `name` (`from = value("name")`), if any; one added
/// under that name with another type than the field's is an error naming the type it needs,
/// not an absent value (an `Option` field would be silently left out).
pub fn context_value<'a, T: std::any::Any, C: ?Sized>(
    cx: &RequestContext<'a, C>,
    name: &str,
) -> Result<Option<&'a T>, EndpointError> {
    match cx.value::<T>(name) {
        None if cx.has_value(name) => Err(EndpointError::Encode(format!(
            "the context value `{name}` is not a `{}`, the type of the field that reads it",
            std::any::type_name::<T>()
        ))),
        value => Ok(value),
    }
}

/// A type a session holds as its extras: an `#[token_endpoint(extras)]` struct (or the one a
/// response's `declare_extras = Name` declares), which the macro implements this for. A
/// request's (or group's) `extras = Type` is one, so that its `from = extras.*` fields read
/// what sessions hold rather than failing every call with an `EndpointError::Encode`.
#[diagnostic::on_unimplemented(
    message = "`extras = {Self}` is not an extras struct: `from = extras.*` reads a session's extras, and `{Self}` is not a `#[token_endpoint(extras)]` struct",
    label = "not an extras struct",
    note = "a session's extras are its response's `extras = Type` (an `#[token_endpoint(extras)]` struct) or the struct its `declare_extras = Name` declares: name that type, or every call fails reading `from = extras.*` with `EndpointError::Encode`"
)]
pub trait DeclaredExtras {}

/// The session's extras that `from = extras.*` fields read (the request's `extras = X`), if
/// the context holds extras; a session holding another type is an error naming the type the
/// request reads, not absent extras (its `Option` fields would be silently left out).
pub fn context_extras<'a, X: std::any::Any, C: ?Sized>(
    cx: &RequestContext<'a, C>,
) -> Result<Option<&'a X>, EndpointError> {
    match cx.extras::<X>() {
        None if cx.has_extras() => Err(EndpointError::Encode(format!(
            "the session's extras are not a `{}`, the request's `extras = ...` that its `from = extras.*` fields read",
            std::any::type_name::<X>()
        ))),
        extras => Ok(extras),
    }
}

/// The error of a source the context lacks (`what` names it).
pub fn missing_source(what: &str) -> EndpointError {
    EndpointError::Encode(format!(
        "the request needs a {what} and the session has none"
    ))
}

/// How a `now_*` source writes the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeFormat {
    UnixSeconds,
    UnixMillis,
    Rfc3339,
    /// `yyyy-MM-dd HH:mm:ss` at this UTC offset, in seconds east of UTC.
    DateTime(i32),
    /// `yyyy-MM-ddTHH:mm:ss+07:00`: RFC 3339 in whole seconds at this UTC offset, in seconds
    /// east of UTC (SNAP BI's `X-TIMESTAMP`, Jakarta time).
    Rfc3339At(i32),
}

/// The context's time as the field `what` takes it; an error naming the field when the
/// context has no time (`RequestContext::with_now`).
pub fn timestamp<T: TextValue>(
    now: Option<OffsetDateTime>,
    format: TimeFormat,
    what: &str,
) -> Result<T, EndpointError> {
    let now = now.ok_or_else(|| {
        EndpointError::Encode(format!(
            "the request needs the current time for `{what}`: build its context `with_now(cx.now())`"
        ))
    })?;
    let unwritable = || EndpointError::Encode(format!("the time for `{what}` cannot be written"));
    let text = match format {
        TimeFormat::UnixSeconds => now.unix_timestamp().to_string(),
        TimeFormat::UnixMillis => (now.unix_timestamp_nanos() / 1_000_000).to_string(),
        // UTC with `Z`, whatever the offset of the clock's time (an injectable clock need
        // not be UTC).
        TimeFormat::Rfc3339 => now
            .checked_to_offset(time::UtcOffset::UTC)
            .ok_or_else(unwritable)?
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|_| unwritable())?,
        TimeFormat::DateTime(offset) | TimeFormat::Rfc3339At(offset) => {
            let utc = time::UtcOffset::from_whole_seconds(offset).map_err(|_| unwritable())?;
            let at = now
                .checked_to_offset(utc)
                .filter(|at| (0..=9999).contains(&at.year()))
                .ok_or_else(unwritable)?;
            let date = format!(
                "{:04}-{:02}-{:02}",
                at.year(),
                u8::from(at.month()),
                at.day()
            );
            let clock = format!("{:02}:{:02}:{:02}", at.hour(), at.minute(), at.second());
            match format {
                TimeFormat::Rfc3339At(_) => {
                    let (hours, minutes, _) = utc.as_hms();
                    let sign = if offset < 0 { '-' } else { '+' };
                    let (hours, minutes) = (hours.unsigned_abs(), minutes.unsigned_abs());
                    format!("{date}T{clock}{sign}{hours:02}:{minutes:02}")
                }
                _ => format!("{date} {clock}"),
            }
        }
    };
    T::from_text(&text).ok_or_else(|| {
        EndpointError::Encode(format!("the time for `{what}` does not fit its type"))
    })
}

/// Server side: whether the time a `now_*` field carries (`value`, written as `format`) is
/// less than `window` seconds from `now`, either way (`#[token(window = 7200)]`). An absent or
/// unreadable time is not.
pub fn time_within<T: TextValue>(
    value: Option<&T>,
    format: TimeFormat,
    window: u64,
    now: OffsetDateTime,
) -> bool {
    let Some(text) = value.map(TextValue::to_text) else {
        return false;
    };
    let text = text.trim();
    let at = match format {
        TimeFormat::UnixSeconds => text
            .parse::<i64>()
            .ok()
            .and_then(|s| OffsetDateTime::from_unix_timestamp(s).ok()),
        TimeFormat::UnixMillis => text.parse::<i64>().ok().and_then(|ms| {
            OffsetDateTime::from_unix_timestamp_nanos(i128::from(ms) * 1_000_000).ok()
        }),
        TimeFormat::Rfc3339 | TimeFormat::Rfc3339At(_) => {
            OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339).ok()
        }
        TimeFormat::DateTime(offset) => {
            let layout = time::format_description::parse_borrowed::<2>(
                "[year]-[month]-[day] [hour]:[minute]:[second]",
            )
            .ok();
            let offset = time::UtcOffset::from_whole_seconds(offset).ok();
            layout.zip(offset).and_then(|(layout, offset)| {
                time::PrimitiveDateTime::parse(text, &layout)
                    .ok()
                    .map(|at| at.assume_offset(offset))
            })
        }
    };
    let window = i64::try_from(window).unwrap_or(i64::MAX);
    at.is_some_and(|at| (at - now).abs() < time::Duration::seconds(window))
}

/// Client side: signs the encoded request with its declared signature.
pub fn sign_request(
    signature: Option<RequestSignature>,
    request: &mut http::Request<Vec<u8>>,
    key: &ClientSecret,
) -> Result<(), EndpointError> {
    match signature {
        Some(signature) => signature.sign(request, key),
        None => Ok(()),
    }
}

/// Server side: checks the request's declared signature.
pub fn verify_request(
    signature: Option<RequestSignature>,
    request: &http::Request<Vec<u8>>,
    key: &ClientSecret,
) -> Result<(), crate::sign::SignatureError> {
    match signature {
        Some(signature) => signature.verify(request, key),
        None => Ok(()),
    }
}

/// Whether a group's `wires` hold one that goes where `at` and `name` go: the same body
/// field (`At::Form` stands for the body, JSON or form), query parameter or header (in any
/// case), or the same part of `Authorization` (a bearer token and HTTP Basic are both
/// `Authorization`).
pub const fn wires_have(wires: &[(At, &str)], at: At, name: &str) -> bool {
    let mut i = 0;
    while i < wires.len() {
        if same_place(wires[i].0, wires[i].1, at, name) {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether a group's `wires` hold one that goes to `at` (a GET request's groups write no
/// body field, `At::Form`).
pub const fn wires_at(wires: &[(At, &str)], at: At) -> bool {
    let mut i = 0;
    while i < wires.len() {
        if wires[i].0 as u8 == at as u8 {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether two groups write to the same place.
pub const fn wires_clash(a: &[(At, &str)], b: &[(At, &str)]) -> bool {
    let mut i = 0;
    while i < a.len() {
        if wires_have(b, a[i].0, a[i].1) {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether one group writes a query parameter and the other a body field of the same name:
/// in a form request, one parameter sent in both.
pub const fn wires_cross(a: &[(At, &str)], b: &[(At, &str)]) -> bool {
    let mut i = 0;
    while i < a.len() {
        let other = match a[i].0 {
            At::Query => At::Form,
            At::Form => At::Query,
            _ => {
                i += 1;
                continue;
            }
        };
        if wires_have(b, other, a[i].1) {
            return true;
        }
        i += 1;
    }
    false
}

const fn credential(at: At) -> bool {
    matches!(at, At::Bearer | At::BasicUser | At::BasicPassword)
}

const fn same_place(a: At, a_name: &str, b: At, b_name: &str) -> bool {
    if credential(a) || credential(b) {
        // Bearer beside anything in `Authorization`, or the same half of Basic twice.
        return credential(a)
            && credential(b)
            && (matches!(a, At::Bearer) || matches!(b, At::Bearer) || a as u8 == b as u8);
    }
    if a as u8 != b as u8 {
        return false;
    }
    let (x, y) = (a_name.as_bytes(), b_name.as_bytes());
    if x.len() != y.len() {
        return false;
    }
    let header = matches!(a, At::Header);
    let mut i = 0;
    while i < x.len() {
        let (p, q) = if header {
            (x[i].to_ascii_lowercase(), y[i].to_ascii_lowercase())
        } else {
            (x[i], y[i])
        };
        if p != q {
            return false;
        }
        i += 1;
    }
    true
}

/// What `decode_request` answers for a signed request.
pub fn unverified() -> RequestError {
    RequestError("the request is signed: decode it with `decode_signed_request` and its key".into())
}

/// A fresh UUIDv4 (Maya's `Request-Reference-No`).
pub fn fresh_uuid<U: From<String>>() -> U {
    U::from(uuid::Uuid::new_v4().to_string())
}

#[cfg(test)]
mod window_tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn an_rfc3339_time_at_an_offset_is_whole_seconds_with_that_offset_written() {
        // SNAP BI's `X-TIMESTAMP`: `YYYY-MM-DDTHH:mm:ss+07:00`, 25 characters, Jakarta time,
        // whatever the fraction of the clock and the offset it reads in.
        let now = datetime!(2020-12-18 08:06:00.123456789 UTC);
        let at =
            |offset| timestamp::<String>(Some(now), TimeFormat::Rfc3339At(offset), "t").unwrap();
        assert_eq!(at(7 * 3600), "2020-12-18T15:06:00+07:00");
        assert_eq!(at(-(5 * 3600 + 30 * 60)), "2020-12-18T02:36:00-05:30");
        assert_eq!(at(0), "2020-12-18T08:06:00+00:00");
        let plain = timestamp::<String>(Some(now), TimeFormat::Rfc3339, "t").unwrap();
        assert_eq!(
            plain, "2020-12-18T08:06:00.123456789Z",
            "`now_rfc3339` keeps its form"
        );
    }

    #[test]
    fn a_time_is_inside_its_window_in_every_format_and_an_odd_one_never() {
        let now = datetime!(2018-02-05 08:46:32 UTC);
        let inside = |text: &str, format| time_within(Some(&text.to_owned()), format, 7200, now);
        // Lazada's worked example's `timestamp`, and the same instant in the other formats.
        assert!(inside("1517820392000", TimeFormat::UnixMillis));
        assert!(inside("1517820392", TimeFormat::UnixSeconds));
        assert!(inside("2018-02-05T08:46:32Z", TimeFormat::Rfc3339));
        assert!(inside(
            "2018-02-05 16:46:32",
            TimeFormat::DateTime(8 * 3600)
        ));
        assert!(inside(
            "2018-02-05T15:46:32+07:00",
            TimeFormat::Rfc3339At(7 * 3600)
        ));
        // "less than 7200s difference", either way.
        assert!(inside("1517827591000", TimeFormat::UnixMillis));
        assert!(!inside("1517827592000", TimeFormat::UnixMillis));
        assert!(!inside("1517813192000", TimeFormat::UnixMillis));
        // Unreadable, absent or out of range: outside.
        for odd in [
            "",
            "soon",
            "1e12",
            "99999999999999999999",
            "-9223372036854775808",
        ] {
            assert!(!inside(odd, TimeFormat::UnixMillis), "{odd}");
            assert!(!inside(odd, TimeFormat::UnixSeconds), "{odd}");
        }
        assert!(!inside("2018-02-05 16:46", TimeFormat::DateTime(8 * 3600)));
        assert!(!time_within::<String>(
            None,
            TimeFormat::UnixMillis,
            7200,
            now
        ));
        // A window of any size cannot overflow.
        let long_ago = OffsetDateTime::UNIX_EPOCH;
        let window = u64::MAX;
        assert!(time_within(
            Some(&"1517820392000".to_owned()),
            TimeFormat::UnixMillis,
            window,
            long_ago
        ));
    }
}
