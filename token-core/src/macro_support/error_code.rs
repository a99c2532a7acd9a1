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
