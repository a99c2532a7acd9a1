//! Decoding and encoding answers and provider errors.

use super::*;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

// ---- responses and errors ------------------------------------------------------------

/// Reads a JSON body whatever its content type, after a UTF-8 byte order mark if it starts
/// with one (RFC 8259 section 8.1 lets a reader ignore it); the reason never quotes the
/// body's strings (they may be secrets).
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(without_bom(body)).map_err(|e| crate::redact::unquote(&e.to_string()))
}

/// `body` without a leading UTF-8 byte order mark.
fn without_bom(body: &[u8]) -> &[u8] {
    body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body)
}

/// `body` made readable where `serde_json` refuses the whole of it for one value: every
/// number too large for a double (`1e400`) written as a string holding its text, and every
/// string value holding a lone UTF-16 surrogate (`"\ud83d"`: text that is not Unicode, a Java
/// back end cutting an emoji in half) written as [`NOT_UNICODE`], which no token or text
/// field reads, so that such a field alone is unreadable (an expiry or other lenient field
/// then absent, a JSON value field too: see [`holds_not_unicode`]), and a token is never
/// altered into another; an object key holding one written as a key of its own that no field
/// has (see [`is_not_unicode_key`]), which the readers leave out; `None` when it has none of
/// these. The strings holding no lone surrogate are copied as they are.
fn readable_again(body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body.len() + 8);
    let (mut at, mut changed, mut keys) = (0, false, 0_usize);
    while at < body.len() {
        let byte = body[at];
        if byte == b'"' {
            let end = string_end(body, at);
            let string = &body[at..end];
            let key = body[end..].iter().find(|b| !b.is_ascii_whitespace()) == Some(&b':');
            if has_lone_surrogate(string) {
                if key {
                    // Numbered, so that two such keys of one object stay two.
                    keys += 1;
                    out.extend_from_slice(format!("\"{NOT_UNICODE_KEY}{keys}\"").as_bytes());
                } else {
                    out.extend_from_slice(NOT_UNICODE);
                }
                changed = true;
            } else {
                out.extend_from_slice(string);
            }
            at = end;
        } else if byte == b'-' || byte.is_ascii_digit() {
            let start = at;
            while at < body.len()
                && matches!(body[at], b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E')
            {
                at += 1;
            }
            let number = &body[start..at];
            let infinite = std::str::from_utf8(number)
                .ok()
                .and_then(|text| text.parse::<f64>().ok())
                .is_some_and(f64::is_infinite);
            if infinite {
                out.push(b'"');
                out.extend_from_slice(number);
                out.push(b'"');
                changed = true;
            } else {
                out.extend_from_slice(number);
            }
        } else {
            out.push(byte);
            at += 1;
        }
    }
    changed.then_some(out)
}

/// What [`readable_again`] writes for a string that is not Unicode: an object, which no
/// token or text field reads, and which [`holds_not_unicode`] finds in a field that reads any
/// JSON value.
const NOT_UNICODE: &[u8] = br#"{"\u0000":"not Unicode"}"#;

/// How [`readable_again`] writes an object key that is not Unicode, as JSON text, before its
/// number: a NUL first, which no declared field's name has.
const NOT_UNICODE_KEY: &str = "\\u0000not Unicode ";

/// Whether `key` is what [`readable_again`] wrote for an object key that is not Unicode.
fn is_not_unicode_key(key: &str) -> bool {
    key.starts_with("\0not Unicode ")
}

/// Whether `value` is, or holds, what [`readable_again`] wrote for a string or an object key
/// that is not Unicode (`serde_json` nests values 128 deep at most, so the walk is bounded).
fn holds_not_unicode(value: &Value) -> bool {
    match value {
        Value::Object(map) => {
            (map.len() == 1 && map.get("\0").and_then(Value::as_str) == Some("not Unicode"))
                || map.keys().any(|key| is_not_unicode_key(key))
                || map.values().any(holds_not_unicode)
        }
        Value::Array(items) => items.iter().any(holds_not_unicode),
        _ => false,
    }
}

/// Where the quoted string opening at `start` (a JSON string, an HTTP quoted-string) ends:
/// after its closing quote, or at the end of `body`. A backslash keeps the byte after it
/// inside the string.
pub(crate) fn string_end(body: &[u8], start: usize) -> usize {
    let mut at = start + 1;
    while at < body.len() {
        match body[at] {
            b'\\' => at += 2,
            b'"' => return at + 1,
            _ => at += 1,
        }
    }
    body.len()
}

/// Whether a JSON string, as written, escapes a UTF-16 surrogate that has no partner.
fn has_lone_surrogate(string: &[u8]) -> bool {
    let unit = |at: usize| {
        let hex = string.get(at..at + 6)?.strip_prefix(b"\\u")?;
        u16::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()
    };
    let mut at = 0;
    while at < string.len() {
        if string[at] != b'\\' {
            at += 1;
            continue;
        }
        match unit(at) {
            Some(0xD800..=0xDBFF) if matches!(unit(at + 6), Some(0xDC00..=0xDFFF)) => at += 12,
            Some(0xD800..=0xDFFF) => return true,
            Some(_) => at += 6,
            None => at += 2,
        }
    }
    false
}

/// Reads a success answer so that no odd field other than the tokens costs the tokens: the
/// body must be a JSON object (whatever its content type), and so must the object under
/// `envelope` when one is declared (`{"code":0,"data":{...}}`); a duplicate key is resolved
/// by its last value; an expiry field its type cannot read (`-5`, `1e300`, `1e400`, `"NaN"`,
/// an object) is read as `null` (an unknown expiry), and so is a token type or scope field
/// its type cannot read (Twitch's array of scopes), with a warning naming the field, never its
/// value; so is an `Option` extras field (`extras_fields`, the extras type's
/// [`KeepExtras::LENIENT_FIELDS`](crate::provider::KeepExtras::LENIENT_FIELDS)), and any of
/// them holding text that is not Unicode (a lone surrogate, `"\ud83d"`), which a token
/// holding is not read at all; an object key that is not Unicode is no field's, and is left
/// out. The reason of an error never quotes the body's strings.
pub fn decode_answer_json<T: DeserializeOwned>(
    body: &[u8],
    envelope: Option<&str>,
    lenient_fields: &[(&str, ReadsAs)],
    extras_fields: &[(&str, ReadsAs)],
) -> Result<T, String> {
    let (mut value, rewritten): (Value, bool) = match decode_json(body) {
        Ok(value) => (value, false),
        // A number beyond a double, or a lone surrogate, fails the whole body: read it again
        // with such values made unreadable alone, so that an expiry or an odd field holding
        // one is unknown, not the tokens lost.
        Err(reason) => readable_again(without_bom(body))
            .and_then(|body| serde_json::from_slice(&body).ok())
            .map(|value| (value, true))
            .ok_or(reason)?,
    };
    if let Some(envelope) = envelope {
        let Value::Object(outer) = &mut value else {
            return Err("expected a JSON object".into());
        };
        value = match outer.remove(envelope) {
            Some(inner @ Value::Object(_)) => inner,
            Some(_) => return Err(format!("expected a JSON object in `{envelope}`")),
            None => return Err(format!("the answer has no `{envelope}` object")),
        };
    }
    let Value::Object(map) = &mut value else {
        return Err("expected a JSON object".into());
    };
    if rewritten {
        // A key that is not Unicode is no field's: not kept among the extras either.
        map.retain(|key, _| !is_not_unicode_key(key));
    }
    for (name, reads) in lenient_fields.iter().chain(extras_fields) {
        if let Some(field) = map.get_mut(*name)
            && !field.is_null()
            && (!reads(field) || rewritten && holds_not_unicode(field))
        {
            tracing::warn!(
                field = *name,
                "the provider's answer has an invalid value in `{name}`; the tokens are kept and this field is treated as absent"
            );
            *field = Value::Null;
        }
    }
    serde_json::from_value(value).map_err(|e| crate::redact::unquote(&e.to_string()))
}

/// Whether a `keep` extras field of a refresh's answer names nothing, so that the session's
/// value is kept: absent, or a value written as `null` or as blank text (`"openid": ""`: an
/// empty id is no id, as an empty refresh token is no refresh token).
pub fn names_nothing<T: Serialize>(field: &Option<T>) -> bool {
    match field {
        None => true,
        Some(value) => match serde_json::to_value(value) {
            Ok(Value::Null) => true,
            Ok(Value::String(text)) => text.trim().is_empty(),
            _ => false,
        },
    }
}

/// Whether a JSON value reads as some field type: [`reads_as::<T>`](reads_as).
pub type ReadsAs = fn(&Value) -> bool;

/// Whether `value` reads as a `T`.
pub fn reads_as<T: DeserializeOwned>(value: &Value) -> bool {
    T::deserialize(value).is_ok()
}

/// Writes `value` as JSON, inside `envelope` if given, plus constant fields at dotted paths
/// (from the top of the answer, outside the envelope).
pub fn encode_json<T: Serialize>(
    value: &T,
    envelope: Option<&str>,
    constants: &[(&str, Value)],
) -> Vec<u8> {
    if constants.is_empty() {
        // Straight from the struct, so fields keep their declared order.
        let inner = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
        let Some(envelope) = envelope else {
            return inner;
        };
        let mut out = b"{".to_vec();
        out.extend(serde_json::to_vec(envelope).unwrap_or_default());
        out.push(b':');
        out.extend(inner);
        out.push(b'}');
        return out;
    }
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    if let Some(envelope) = envelope {
        let mut outer = Map::new();
        outer.insert(envelope.to_owned(), value);
        value = Value::Object(outer);
    }
    if !constants.is_empty() {
        if !value.is_object() {
            value = Value::Object(Map::new());
        }
        if let Value::Object(map) = &mut value {
            for (path, constant) in constants {
                insert_path(map, path, constant.clone());
            }
        }
    }
    serde_json::to_vec(&value).unwrap_or_default()
}

/// Reads an error answer (inside `envelope` if given); `None` when the body is not one.
///
/// The code under `code_field` decides first: absent, `null`, `""` (or blank) or one of
/// `success_codes` (compared as text, so `0` matches `0` and `"0"`; for a code type whose
/// codes are integers, `numeric`, both sides are read as integers first, so `"00"` and `"+0"`
/// are `0`, as the variant matching reads them) is not an error, whatever
/// else the body holds (`{"error": "", "access_token": ...}`, `{"code": 0, "data": ...}`);
/// nor is any other number where the codes are text (not `numeric`).
/// Any other code is the error, whatever the other fields hold: one of `lenient_fields` its
/// type cannot read (a number as the message, a structured request id) is read as absent,
/// with a warning naming the field, never its value.
pub fn decode_error_json<T: DeserializeOwned>(
    body: &[u8],
    envelope: Option<&str>,
    code_field: &str,
    numeric: bool,
    success_codes: &[&str],
    lenient_fields: &[(&str, ReadsAs)],
) -> Option<T> {
    let body = without_bom(body);
    // As for a success answer: a number beyond a double elsewhere in the body must not hide
    // the error's code.
    let (mut value, quoted): (Value, bool) = match serde_json::from_slice(body) {
        Ok(value) => (value, false),
        Err(_) => (serde_json::from_slice(&readable_again(body)?).ok()?, true),
    };
    if let Some(envelope) = envelope {
        value = value.get_mut(envelope)?.take();
    }
    let code = value.as_object_mut()?.get_mut(code_field)?;
    let number = code.is_number();
    let text = match code {
        Value::Null => return None,
        // A code that was itself a number beyond a double is no code, as `1.5` is not.
        Value::String(text) if quoted && text.parse::<f64>().is_ok_and(f64::is_infinite) => {
            return None;
        }
        Value::String(text) => text.clone(),
        // Only whole numbers are codes (`1.5`, `1e30` are not); a whole one written as a
        // float (`40030.0`, `4.003e4`) is the integer it says.
        Value::Number(number) if number.is_i64() || number.is_u64() => number.to_string(),
        Value::Number(number) => match number.as_f64() {
            Some(f) if super::error_code::whole(f) => (f as i64).to_string(),
            _ => return None,
        },
        // A code of no type a code has: the body is not this error.
        _ => return None,
    };
    let text = super::error_code::canonical_code(&text, numeric).into_owned();
    // A blank code is no code, as an empty one is; a number where the codes are text (a
    // `String`, an enum of names) is none of this error's but its success code: Spring Boot's
    // default `{"status": 401, ...}` is not Vault.ist's `"status": "UNAUTHORIZED"`, and a
    // status that means re-auth for this error's own codes must not read so from it.
    if text.trim().is_empty()
        || success_codes
            .iter()
            .any(|success| super::error_code::canonical_code(success, numeric) == text)
        || (number && !numeric)
    {
        return None;
    }
    // Every code type reads text: `String` and the generated enums alike.
    *code = Value::String(text);
    if let Value::Object(map) = &mut value {
        if quoted {
            map.retain(|key, _| !is_not_unicode_key(key));
        }
        for (name, reads) in lenient_fields {
            if map.get(*name).is_some_and(|field| !reads(field)) {
                tracing::warn!(
                    field = *name,
                    "the provider's error answer has an invalid value in `{name}`; it is read by its code, and this field is treated as absent"
                );
                map.remove(*name);
            }
        }
    }
    serde_json::from_value(value).ok()
}

/// Whether a field the answer `R`'s extras type adds (`R::EXTRAS_PATHS`, flattened beside
/// the answer's own fields) has the path of one of the answer's own fields or constants
/// (`R::ANSWER_PATHS`): the answer's field reads that key first, so the extras field would
/// never be read, and a server writing the answer would write the key twice, the client
/// then reading one value for both. Evaluated at compile time for each response that
/// flattens an extras type.
pub const fn extras_clash<R: TokenResponse>() -> bool {
    let (envelope, names) = R::EXTRAS_PATHS;
    let envelope = match envelope {
        Some(envelope) => envelope.as_bytes(),
        None => &[],
    };
    let paths = R::ANSWER_PATHS;
    let mut i = 0;
    while i < names.len() {
        let name = names[i].as_bytes();
        let mut j = 0;
        while j < paths.len() {
            if same_path(envelope, name, paths[j].as_bytes()) {
                return true;
            }
            j += 1;
        }
        i += 1;
    }
    false
}

/// Whether `envelope.name` (`name` alone without an envelope) is `path`.
const fn same_path(envelope: &[u8], name: &[u8], path: &[u8]) -> bool {
    let tail = if envelope.is_empty() {
        path
    } else if path.len() > envelope.len()
        && path[envelope.len()] == b'.'
        && super::error_code::same_bytes(path.split_at(envelope.len()).0, envelope)
    {
        path.split_at(envelope.len() + 1).1
    } else {
        return false;
    };
    super::error_code::same_bytes(tail, name)
}

/// [`code_field_trap`] for the request `P`, reading its answers through its [`Endpoint`]
/// impl, so that a `response` or `error` of the wrong kind is reported once, there, and not
/// again here. Evaluated at compile time for each request.
pub const fn endpoint_code_field_trap<P: Endpoint>() -> bool {
    code_field_trap::<P::Response, P::Error>()
}

/// Whether the success answer `R` declares, at the top of the answer, the field that holds
/// the error `E`'s code, or (for an error under an envelope, `result.resultCode`) anything
/// under that envelope, while `E` has no rule telling a success code from an error code:
/// then every success answer carrying that field or envelope would be read as an error. The
/// answer's fields are its own, its constants, and those of the extras type it flattens
/// (`#[token(extras)]`). Evaluated at compile time for each request, which names both.
pub const fn code_field_trap<R: TokenResponse, E: ErrorResponse>() -> bool {
    let Some(code) = E::CODE_PATH else {
        return false;
    };
    if E::SUCCESS_RULE {
        return false;
    }
    let code = code.as_bytes();
    let paths = R::ANSWER_PATHS;
    let mut i = 0;
    while i < paths.len() {
        if traps(&[], paths[i].as_bytes(), code) {
            return true;
        }
        i += 1;
    }
    let (envelope, names) = R::EXTRAS_PATHS;
    let envelope = match envelope {
        Some(envelope) => envelope.as_bytes(),
        None => &[],
    };
    let mut i = 0;
    while i < names.len() {
        if traps(envelope, names[i].as_bytes(), code) {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether the answer's field at `envelope.name` (`name` alone without an envelope) is the
/// error's `code` path, or lies under the error's envelope.
const fn traps(envelope: &[u8], name: &[u8], code: &[u8]) -> bool {
    let len = if envelope.is_empty() {
        name.len()
    } else {
        envelope.len() + 1 + name.len()
    };
    // The byte at `i` of the field's dotted path.
    const fn at(envelope: &[u8], name: &[u8], i: usize) -> u8 {
        if envelope.is_empty() {
            name[i]
        } else if i < envelope.len() {
            envelope[i]
        } else if i == envelope.len() {
            b'.'
        } else {
            name[i - envelope.len() - 1]
        }
    }
    const fn prefix(envelope: &[u8], name: &[u8], of: &[u8], n: usize) -> bool {
        let mut i = 0;
        while i < n {
            if at(envelope, name, i) != of[i] {
                return false;
            }
            i += 1;
        }
        true
    }
    if len == code.len() && prefix(envelope, name, code, len) {
        return true;
    }
    let error_envelope = envelope_of(code);
    error_envelope > 0
        && len > error_envelope
        && at(envelope, name, error_envelope) == b'.'
        && prefix(envelope, name, code, error_envelope)
}

/// The length of a dotted path's first segment (its envelope), or 0 for a top-level field.
const fn envelope_of(path: &[u8]) -> usize {
    let mut i = 0;
    while i < path.len() {
        if path[i] == b'.' {
            return i;
        }
        i += 1;
    }
    0
}

/// A result envelope's status `S`: the answer is a success, not an error.
pub fn is_success(result_status: Option<String>) -> bool {
    result_status.is_some_and(|s| s.trim().eq_ignore_ascii_case("S"))
}

/// The kind of an error answer, by [`crate::codec::classify_answer`].
pub fn classify(
    result_status: Option<String>,
    code_kind: Option<ErrorKind>,
    on_status: &[(u16, ErrorKind)],
    status: http::StatusCode,
) -> ErrorKind {
    crate::codec::classify_answer(status, result_status.as_deref(), code_kind, on_status)
}

/// The status an error answer is sent with: its own field, its code's, the endpoint default.
pub fn error_status(field: Option<u16>, code: Option<u16>, default: u16) -> http::StatusCode {
    http::StatusCode::from_u16(field.or(code).unwrap_or(default))
        .unwrap_or(http::StatusCode::BAD_REQUEST)
}

/// A text field that may be absent: `String` or `Option<String>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a text field",
    label = "expected `String` or `Option<String>`",
    note = "text fields are a response's `scope` and `token_type` and an error's `message` (marked so, or named so without a key: `message`, `error_description`, `errmsg`), `request_id` (likewise) and `result_status`; a field named so that is not text takes another name, and keeps its name on the wire with `#[token(rename = \"...\")]`"
)]
pub trait TextSlot {
    /// The text, if any.
    fn get_text(&self) -> Option<String>;
    /// The field holding `text` (an empty `String` for `None`).
    fn from_text(text: Option<String>) -> Self;
}

impl TextSlot for String {
    fn get_text(&self) -> Option<String> {
        Some(self.clone())
    }
    fn from_text(text: Option<String>) -> Self {
        text.unwrap_or_default()
    }
}

impl TextSlot for Option<String> {
    fn get_text(&self) -> Option<String> {
        self.clone()
    }
    fn from_text(text: Option<String>) -> Self {
        text
    }
}

/// An HTTP status carried in an error body (Paymentsgate `statusCode`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an HTTP status field",
    label = "expected an integer or `Option` of one"
)]
pub trait StatusField {
    /// The status, if the field holds a valid one.
    fn get_status(&self) -> Option<u16>;
    /// The field holding `status` (server side).
    fn from_status(status: u16) -> Self;
}

macro_rules! status_field {
    ($($ty:ty),*) => {$(
        impl StatusField for $ty {
            fn get_status(&self) -> Option<u16> {
                u16::try_from(*self).ok()
            }
            fn from_status(status: u16) -> Self {
                Self::from(status)
            }
        }
        impl StatusField for Option<$ty> {
            fn get_status(&self) -> Option<u16> {
                self.and_then(|s| u16::try_from(s).ok())
            }
            fn from_status(status: u16) -> Self {
                Some(<$ty>::from(status))
            }
        }
    )*};
}
status_field!(u16, u32, u64, i32, i64);

/// A response's `extra` or `extras` field has the type the extras hold there: the field's
/// value goes in and comes out through this one trait, so a wrong type is one error (the same
/// in both directions, reported once), at the field's type. The second impl only keeps the
/// slot's type from being inferred from the field's: it is read from the slot.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not `{Slot}`, the type the session's extras hold here",
    label = "the field's type",
    note = "an `extra` field has the type of its extras struct's field of that name; an `extras` field has the response's `extras = Type`"
)]
pub trait ExtrasSlot<Slot>: Sized {
    /// The field's value, put in the extras.
    fn into_slot(self) -> Slot;
    /// The field's value, taken from the extras (server side).
    fn from_slot(slot: Slot) -> Self;
}

impl<T> ExtrasSlot<T> for T {
    fn into_slot(self) -> T {
        self
    }
    fn from_slot(slot: T) -> T {
        slot
    }
}

/// Never a slot's type: see [`ExtrasSlot`].
pub struct NotASlot<T>(T);

impl<T> ExtrasSlot<NotASlot<T>> for T {
    fn into_slot(self) -> NotASlot<T> {
        NotASlot(self)
    }
    fn from_slot(slot: NotASlot<T>) -> T {
        slot.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_error_answer_with_a_number_beyond_a_double_is_still_read() {
        let body = br#"{"error":"invalid_grant","retry_in":1e400}"#;
        let error: Map<String, Value> =
            decode_error_json(body, None, "error", false, &[], &[]).expect("the error is read");
        assert_eq!(error["error"], "invalid_grant");
        assert_eq!(
            error["retry_in"], "1e400",
            "the odd number kept as its text"
        );
    }

    #[test]
    fn only_strings_with_a_lone_surrogate_are_made_unreadable() {
        let again = |body: &str| readable_again(body.as_bytes()).map(String::from_utf8);
        // A pair, an escaped backslash before `u`, a key that is Unicode: copied as they are.
        for body in [
            r#"{"a":"\ud83d\ude00","b":"\\ud83d"}"#,
            r#"{"\ud83d\ude00":"x"}"#,
            r#"{"a":"\u00e9"}"#,
        ] {
            assert_eq!(again(body), None, "{body}");
        }
        // Keys that are not Unicode: each a key of its own no field has.
        let body = r#"{"\ud83d":"x", "b":{"\udc00" :1,"\ud800":2}}"#;
        let read = again(body).unwrap().unwrap();
        assert_eq!(
            read,
            r#"{"\u0000not Unicode 1":"x", "b":{"\u0000not Unicode 2" :1,"\u0000not Unicode 3":2}}"#
        );
        let value: Value = serde_json::from_str(&read).unwrap();
        assert!(holds_not_unicode(&value["b"]));
        assert!(
            value
                .as_object()
                .unwrap()
                .keys()
                .any(|key| is_not_unicode_key(key))
        );
        for (body, read) in [
            (r#"{"a":"x\ud83d","b":"ok"}"#, r#"{"a":{},"b":"ok"}"#),
            (
                r#"["\ude00", "\ud83d\u0041", 1e400]"#,
                r#"[{}, {}, "1e400"]"#,
            ),
            (r#"{"a":"\ud83d"  ,"b":"\"\udfff"}"#, r#"{"a":{}  ,"b":{}}"#),
        ] {
            let read = read.replace("{}", std::str::from_utf8(NOT_UNICODE).unwrap());
            assert_eq!(again(body), Some(Ok(read)), "{body}");
        }
    }

    #[test]
    fn parse_reasons_never_quote_body_strings() {
        let reason = decode_json::<Map<String, Value>>(br#""RT-SECRET""#).unwrap_err();
        assert!(!reason.contains("RT-SECRET"), "{reason}");
    }

    #[test]
    fn parse_reasons_never_quote_body_strings_with_escaped_quotes() {
        for body in [
            &br#""RT"SECRET-TAIL""#[..],
            br#""RT\"SECRET-TAIL""#,
            br#"{"token_type":"x"SECRET-TAIL"y"}"#,
        ] {
            let reason = match decode_json::<Map<String, Value>>(body) {
                Err(reason) => reason,
                Ok(_) => decode_json::<std::collections::HashMap<String, u8>>(body).unwrap_err(),
            };
            assert!(!reason.contains("SECRET"), "{reason}");
            assert!(
                reason.contains("expected"),
                "the rest of the reason is kept: {reason}"
            );
        }
    }

    #[test]
    fn constants_nest_at_dotted_paths() {
        let body = encode_json(
            &Map::new(),
            None,
            &[
                ("result.resultStatus", Value::from("S")),
                ("result.resultCode", Value::from("SUCCESS")),
            ],
        );
        assert_eq!(
            body,
            br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S"}}"#
        );
    }
}
