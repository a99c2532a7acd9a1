//! Error-code enums and their wire form.

use super::*;

/// An error code: a generated enum with a catch-all, or a plain `String`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an error code",
    label = "the `#[token(code)]` field's type",
    note = "use `String`, or an enum annotated `#[token_endpoint(error_code)]` (its codes may be integers: `#[token(code = 40030)]`)"
)]
pub trait ErrorCode: Sized {
    /// Whether the code is written as a JSON number (`{"errcode": 40030}`). Any code is read
    /// from a string or an integer.
    const NUMERIC: bool = false;
    /// The codes of the declared variants, the catch-all's aside, whatever `cfg` holds:
    /// checked at compile time against the error's `success_codes(...)`.
    const CODES: &'static [&'static str] = &[];
    /// The code as the provider writes it (`invalid_grant`, `40030`).
    fn as_code(&self) -> String;
    /// The code read from its text; an unknown code lands in the catch-all.
    fn from_code(code: &str) -> Self;
    /// The kind this code means, if it decides one.
    fn kind(&self) -> Option<ErrorKind>;
    /// The HTTP status this code is sent with (server side), if it has one.
    fn status(&self) -> Option<u16>;
    /// How long this code asks to wait before another call (`retry_after = 60`: WeChat's
    /// minute quota), taken as a `Retry-After` the answer does not send.
    fn retry_after(&self) -> Option<std::time::Duration> {
        None
    }
    /// The code that answers `reason`, if one declares it.
    fn for_refusal(reason: RefusalReason) -> Option<Self> {
        let _ = reason;
        None
    }
    /// The code and HTTP status that answer `reason`: the error struct's own declaration
    /// (`refusal(invalid_refresh_token, code = "...", status = 401)`), else the variant that
    /// declares it, trying each [`RefusalReason::fallback`]; else the reason's name as the
    /// code with [`RefusalReason::status`]. A `None` status leaves it to the code's.
    fn answer_refusal(
        reason: RefusalReason,
        declared: &[(RefusalReason, Option<&str>, Option<u16>)],
    ) -> (Self, Option<u16>) {
        let mut at = Some(reason);
        while let Some(this) = at {
            if let Some((_, code, status)) = declared.iter().find(|(r, ..)| *r == this) {
                let code = code
                    .map(Self::from_code)
                    .or_else(|| Self::for_refusal(this))
                    .unwrap_or_else(|| Self::from_code(this.name()));
                return (code, *status);
            }
            if let Some(code) = Self::for_refusal(this) {
                return (code, None);
            }
            at = this.fallback();
        }
        (Self::from_code(reason.name()), Some(reason.status()))
    }
}

impl ErrorCode for String {
    fn as_code(&self) -> String {
        self.clone()
    }
    fn from_code(code: &str) -> Self {
        code.to_owned()
    }
    fn kind(&self) -> Option<ErrorKind> {
        None
    }
    fn status(&self) -> Option<u16> {
        None
    }
}

pub fn serialize_code<C: ErrorCode, S: serde::Serializer>(
    code: &C,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let text = code.as_code();
    match text.parse::<i64>() {
        Ok(number) if C::NUMERIC => serializer.serialize_i64(number),
        _ => serializer.serialize_str(&text),
    }
}

/// A code as read, for a code type whose codes are integers (`numeric`): an integer however
/// written in text (`"040030"`, `"+40030"`, `"-0"`, `" 40030 "`: whitespace around it, as
/// `expires_in` is read) is the number it says (`40030`, `0`); any other text, and every
/// code of a string-coded type, is kept as it came. The success check, the variant matching
/// and the catch-all all read a code through this, so they agree.
pub fn canonical_code(text: &str, numeric: bool) -> std::borrow::Cow<'_, str> {
    if numeric {
        let number = text.trim();
        if let Ok(n) = number.parse::<i64>() {
            return n.to_string().into();
        }
        if let Ok(n) = number.parse::<u64>() {
            return n.to_string().into();
        }
    }
    text.into()
}

/// Whether one of an error's `success_codes` is also the code of a declared variant of its
/// code type `C`, compared as [`canonical_code`] compares them (`"00"` is `0` among integer
/// codes): an answer with that code is a success, so the variant is never read, and the
/// sandbox's answer with it (its `refusal`) reaches the client as a success. Evaluated at
/// compile time for each error struct with `success_codes(...)`.
pub const fn success_code_is_declared<C: ErrorCode>(success: &[&str]) -> bool {
    let mut i = 0;
    while i < success.len() {
        let mut j = 0;
        while j < C::CODES.len() {
            if same_code(success[i].as_bytes(), C::CODES[j].as_bytes(), C::NUMERIC) {
                return true;
            }
            j += 1;
        }
        i += 1;
    }
    false
}

/// `a` and `b` are one code: the same text, or, among integer codes, the same integer
/// (surrounding whitespace, a sign and leading zeros aside).
const fn same_code(a: &[u8], b: &[u8], numeric: bool) -> bool {
    if numeric && let (Some((a_neg, a)), Some((b_neg, b))) = (integer(a), integer(b)) {
        return same_bytes(a, b) && (a_neg == b_neg || a.is_empty());
    }
    same_bytes(a, b)
}

/// An integer's sign and its digits without leading zeros (none for zero); `None` if the
/// text is no integer.
const fn integer(text: &[u8]) -> Option<(bool, &[u8])> {
    let text = text.trim_ascii();
    let (negative, mut digits) = match text {
        [b'-', rest @ ..] => (true, rest),
        [b'+', rest @ ..] => (false, rest),
        _ => (false, text),
    };
    if digits.is_empty() {
        return None;
    }
    let mut i = 0;
    while i < digits.len() {
        if !digits[i].is_ascii_digit() {
            return None;
        }
        i += 1;
    }
    while let [b'0', rest @ ..] = digits {
        digits = rest;
    }
    Some((negative, digits))
}

/// Whether `a` and `b` hold the same bytes (in a `const fn`, where `==` on slices is not
/// allowed).
pub(super) const fn same_bytes(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// Whether `f` is a whole number that names one integer: up to 2^53, where every integer is
/// exact in a float (beyond, `1e30` stands for many).
pub(crate) fn whole(f: f64) -> bool {
    f.fract() == 0.0 && f.abs() <= 9_007_199_254_740_992.0
}

/// Reads a code written as a string or a number; any other JSON type is not a code.
///
/// A whole number written as a float (`40030.0`, `4.003e4`: some back ends write every
/// number so) is the integer it says; any other float (`1.5`, `1e30`) is not a code.
pub fn deserialize_code<'de, C: ErrorCode, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<C, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Code {
        Text(String),
        Signed(i64),
        Unsigned(u64),
        Float(f64),
    }
    let text = match <Code as serde::Deserialize>::deserialize(deserializer)? {
        // An integer code in a string, however written (`"040030"`, `"+40030"`), is the
        // number it says; any other text is kept as it came (the catch-all's).
        // `from_code` reads it so too.
        Code::Text(text) => canonical_code(&text, C::NUMERIC).into_owned(),
        Code::Signed(n) => n.to_string(),
        Code::Unsigned(n) => n.to_string(),
        Code::Float(f) if whole(f) => (f as i64).to_string(),
        Code::Float(_) => {
            return Err(serde::de::Error::custom(
                "a code is a whole number, a string or null",
            ));
        }
    };
    Ok(C::from_code(&text))
}
