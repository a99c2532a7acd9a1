//! Removing secrets from text that may be shown: raw response bodies kept in parse errors,
//! the codes and messages of a provider's error answers, and configured URLs (read by
//! [`url()`] without being quoted, shown by [`url_shown`] without their credentials).
//!
//! A provider's broken answer is worth keeping for diagnosis, but it may echo a token back
//! (Maya's `invalid_token` message does), whole or in part, in any field. Bodies are cut to a
//! bound and scrubbed first; every other provider-supplied text goes through
//! [`scrub_secrets`].

/// A value that must never be shown; implemented by every secret type.
pub trait Secret {
    /// The raw value.
    fn expose_secret(&self) -> &str;
}

/// The text every secret prints instead of its value.
pub const REDACTED: &str = "[redacted]";

/// A name from outside (a session's, often a user id taken from a request) as a log line or
/// an error's message shows it: each control character (a line break, an escape) and line
/// separator written as its escape (`\n`, `\u{1b}`), so that a name cannot forge a line of
/// the application's log or drive its terminal.
pub(crate) struct Printable<'a>(pub(crate) &'a str);

impl std::fmt::Display for Printable<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let text = self.0;
        let mut start = 0;
        let escaped = |c: &char| c.is_control() || matches!(c, '\u{2028}' | '\u{2029}');
        for (at, c) in text.char_indices().filter(|(_, c)| escaped(c)) {
            f.write_str(&text[start..at])?;
            write!(f, "{}", c.escape_default())?;
            start = at + c.len_utf8();
        }
        f.write_str(&text[start..])
    }
}

/// How much of a raw body a parse error keeps.
pub const MAX_KEPT_BODY: usize = 1024;

/// The shortest part of a known secret that is redacted where it appears: any run of this
/// many consecutive bytes of a secret (a partial echo) is removed, not only the whole value.
pub const MIN_ECHO: usize = 8;

/// Known secrets shorter than this are not looked for at all: replacing every `rt` in a text
/// would hide everything and protect nothing.
const MIN_SECRET: usize = 4;

/// JSON keys whose string values are always treated as secrets, whatever the provider.
const SECRET_KEYS: &[&str] = &[
    "access_token",
    "accesstoken",
    "refresh_token",
    "refreshtoken",
    "id_token",
    "token",
    "code",
    "authcode",
    "auth_code",
    "client_secret",
    "clientsecret",
    "password",
    "secret",
    "code_verifier",
    "assertion",
];

/// Reads a URL from a configuration (`#[serde(deserialize_with = "token_core::redact::url")]`)
/// without repeating it in the error when it cannot be read: its user information may hold
/// a password and its query a key, and `url`'s own `Deserialize` quotes the whole text.
///
/// ```
/// #[derive(serde::Deserialize)]
/// struct Config {
///     #[serde(deserialize_with = "token_core::redact::url")]
///     token_url: url::Url,
/// }
/// let error = serde_json::from_str::<Config>(r#"{"token_url": "https://u:hunter2@h:99999/"}"#)
///     .err()
///     .unwrap();
/// assert!(!error.to_string().contains("hunter2"));
/// ```
pub fn url<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<::url::Url, D::Error> {
    struct UrlText;
    impl serde::de::Visitor<'_> for UrlText {
        type Value = ::url::Url;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a URL")
        }

        fn visit_str<E: serde::de::Error>(self, text: &str) -> Result<::url::Url, E> {
            ::url::Url::parse(text).map_err(|e| {
                E::custom(format_args!(
                    "not a URL ({e}); the value is not repeated, as it may hold a credential"
                ))
            })
        }
    }
    deserializer.deserialize_str(UrlText)
}

/// `url` as a `Debug` may show it: its password, its query and its fragment, where an
/// integrator may have put a credential (`https://user:password@host/`, `?key=...`),
/// replaced by `redacted`; its scheme, user, host, port and path kept. For the hand-written `Debug` of a type
/// holding a configured URL, whose derived `Debug` would show the URL whole.
///
/// ```
/// use token_core::redact::url_shown;
///
/// let url = "https://partner:hunter2@api.acme.example/rest?key=sk_live_1".parse()?;
/// assert_eq!(url_shown(&url), "https://partner:redacted@api.acme.example/rest?redacted");
/// let fragment = "https://api.acme.example/authorize#token=t0k".parse()?;
/// assert_eq!(url_shown(&fragment), "https://api.acme.example/authorize#redacted");
/// let plain = "https://api.acme.example/rest".parse()?;
/// assert_eq!(url_shown(&plain), "https://api.acme.example/rest");
/// # Ok::<(), url::ParseError>(())
/// ```
pub fn url_shown(url: &::url::Url) -> String {
    let mut shown = url.clone();
    if shown.password().is_some() {
        // Only a URL that cannot have a password refuses one, and this one has one.
        let _ = shown.set_password(Some("redacted"));
    }
    if shown.query().is_some() {
        shown.set_query(Some("redacted"));
    }
    if shown.fragment().is_some() {
        shown.set_fragment(Some("redacted"));
    }
    shown.into()
}

/// [`url_shown`] for a URL held as text; text that is not a URL is not shown at all.
pub(crate) fn url_text_shown(text: &str) -> String {
    ::url::Url::parse(text).map_or_else(|_| REDACTED.to_owned(), |url| url_shown(&url))
}

/// [`url()`] for an optional URL (`#[serde(default, deserialize_with = "token_core::redact::optional_url")]`).
pub fn optional_url<'de, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<::url::Url>, D::Error> {
    struct MaybeUrl;
    impl<'de> serde::de::Visitor<'de> for MaybeUrl {
        type Value = Option<::url::Url>;

        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a URL or null")
        }

        fn visit_none<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }

        fn visit_some<D: serde::Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            url(d).map(Some)
        }
    }
    deserializer.deserialize_option(MaybeUrl)
}

/// A body made safe to show: at most [`MAX_KEPT_BODY`] bytes, every `known` secret replaced
/// (whole or in part, see [`scrub_secrets`]), the values of token-like JSON keys replaced
/// (strings, numbers, arrays and objects alike), and the credentials after `Basic ` or
/// `Bearer ` (an echoed `Authorization` header: Base64 of a client's id and secret matches
/// no known secret) masked.
pub fn scrub_body(body: &[u8], known: &[&str]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            scrub_json(&mut value);
            value.to_string()
        }
        // Not JSON (truncated, HTML, a form): token-like `key: value` and `key=value` pairs
        // are still masked, so a cut-off answer cannot show the token it carried.
        Err(_) => scrub_text(&String::from_utf8_lossy(body)),
    };
    scrub_bounded(&text, known)
}

/// `text` without the `known` secrets, cut to [`MAX_KEPT_BODY`] bytes.
pub(crate) fn scrub_bounded(text: &str, known: &[&str]) -> String {
    let mut text = scrub_secrets(text, known);
    // Scrub before cutting, so a secret straddling the cut cannot survive half-visible.
    if text.len() > MAX_KEPT_BODY {
        let mut end = MAX_KEPT_BODY;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// A success answer's body (2xx) made safe to show: as [`scrub_body`], and more, because a
/// success answer is where new tokens come, under any key or as the whole body: every JSON
/// string value is replaced (the keys and the shape are kept), and in a body that is not
/// JSON every run of [`MIN_TOKEN_RUN`] or more token characters (letters, digits and
/// `-._~+/=`, and `\` and `%`: a token written with JSON's `\/` or percent-encoded is
/// one run too).
///
/// ```
/// use token_core::redact::scrub_answer_body;
///
/// let shown = scrub_answer_body(br#"{"data":{"t":"9f8e7d6c5b4a3f2e1d0c"},"n":3}"#, &[]);
/// assert_eq!(shown, r#"{"data":{"t":"[redacted]"},"n":3}"#);
/// let shown = scrub_answer_body(b"<title>Bad Gateway</title> eyJhbGciOiJIUzI1NiJ9.e30.sig", &[]);
/// assert_eq!(shown, "<title>Bad Gateway</title> [redacted]");
/// ```
pub fn scrub_answer_body(body: &[u8], known: &[&str]) -> String {
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            mask_strings(&mut value);
            value.to_string()
        }
        Err(_) => scrub_text(&mask_token_runs(&String::from_utf8_lossy(body))),
    };
    scrub_bounded(&text, known)
}

/// The shortest run of token characters that [`scrub_answer_body`] masks in a body that is
/// not JSON: longer than the words of an error page, shorter than any token.
pub const MIN_TOKEN_RUN: usize = 16;

fn mask_strings(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(text) if !text.is_empty() => *text = REDACTED.to_owned(),
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                // A token sent as a number is a token all the same.
                if !redact_secret_value(key, value) {
                    mask_strings(value);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(mask_strings),
        _ => {}
    }
}

fn mask_token_runs(text: &str) -> String {
    let is_token = |c: char| c.is_ascii_alphanumeric() || "-._~+/=\\%".contains(c);
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(start) = rest.find(is_token) {
        out.push_str(&rest[..start]);
        let run = &rest[start..];
        let end = run.find(|c: char| !is_token(c)).unwrap_or(run.len());
        out.push_str(if end >= MIN_TOKEN_RUN {
            REDACTED
        } else {
            &run[..end]
        });
        rest = &run[end..];
    }
    out.push_str(rest);
    out
}

/// `message` with every double-quoted part replaced by `"…"`: serde_json quotes the
/// offending string values of a body in its messages, and a body's strings may be tokens.
pub(crate) fn unquote(message: &str) -> String {
    // serde_json quotes offending string values (`invalid type: string "..."`), escaping a
    // quote or backslash inside them (`"a\"b"`); field names are in backticks and survive,
    // but so are offending numbers (`invalid type: integer `123``), which may be tokens.
    let message = &unquote_numbers(message);
    let mut out = String::with_capacity(message.len());
    let (mut inside, mut escaped) = (false, false);
    for ch in message.chars() {
        if inside && escaped {
            escaped = false;
        } else if inside && ch == '\\' {
            escaped = true;
        } else if ch == '"' {
            if !inside {
                out.push_str("\"…\"");
            }
            inside = !inside;
        } else if !inside {
            out.push(ch);
        }
    }
    out
}

/// `message` with every number serde quotes in backticks (`integer `123``, `floating
/// point `1e20``) replaced by `…`; field names in backticks are kept.
pub(crate) fn unquote_numbers(message: &str) -> String {
    let mut parts = message.split('`');
    let mut out = String::with_capacity(message.len());
    out.push_str(parts.next().unwrap_or_default());
    for (i, part) in parts.enumerate() {
        out.push('`');
        let quoted = i % 2 == 0;
        let number = part.bytes().any(|b| b.is_ascii_digit())
            && (part.bytes()).all(|b| b.is_ascii_digit() || b"+-.eE".contains(&b));
        out.push_str(if quoted && number { "…" } else { part });
    }
    out
}

/// `text` with every echo of a `known` secret replaced by the redaction marker: any run of
/// [`MIN_ECHO`] or more consecutive bytes of a secret (so a token echoed whole, cut, or
/// wrapped in other text), its form-urlencoded spelling too, and whole occurrences of a
/// secret shorter than that (from 4 bytes). Echoes inside JSON strings are found in any
/// spelling JSON allows (`\n` or `\u000A` or `\u000a`, `\/` for `/`, any character as
/// `\uXXXX` or a surrogate pair), once or twice escaped (JSON quoted in a JSON string): the
/// text is also read with its escapes decoded, and what a decoded echo was spelled with is
/// redacted.
///
/// Linear in the text: every [`MIN_ECHO`]-byte window of the text (and of its decoded
/// readings) is looked up among the windows of the secrets (a few dozen per token).
///
/// ```
/// use token_core::redact::scrub_secrets;
///
/// let token = "rt-9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4";
/// assert_eq!(scrub_secrets(token, &[token]), "[redacted]");
/// assert_eq!(
///     scrub_secrets("invalid_grant: rt-9f8e7d6c5b4a3f2e1d0c9b8a is dead", &[token]),
///     "invalid_grant: [redacted] is dead"
/// );
/// assert_eq!(
///     scrub_secrets(r#"{"t":"rt-\u0039f8e7d6c5b4a3f2e1d0c"}"#, &[token]),
///     r#"{"t":"[redacted]"}"#
/// );
/// assert_eq!(scrub_secrets("invalid_grant", &[token]), "invalid_grant");
/// ```
pub fn scrub_secrets(text: &str, known: &[&str]) -> String {
    let bytes = text.as_bytes();
    let mut masked = vec![false; bytes.len()];
    let mut windows: Vec<u64> = Vec::new();
    let mut shorts: Vec<&[u8]> = Vec::new();
    let mut encoded = Vec::new();
    for secret in known {
        let form: String = url::form_urlencoded::byte_serialize(secret.as_bytes()).collect();
        if form != *secret {
            encoded.push(form);
        }
    }
    for secret in known
        .iter()
        .copied()
        .chain(encoded.iter().map(String::as_str))
    {
        let secret = secret.as_bytes();
        if secret.len() >= MIN_ECHO {
            windows.extend(secret.windows(MIN_ECHO).map(window_key));
        } else if secret.len() >= MIN_SECRET {
            shorts.push(secret);
        }
    }
    windows.sort_unstable();
    windows.dedup();
    let echoes = Echoes { windows, shorts };
    echoes.mark(bytes, None, &mut masked);
    // JSON's spellings (a refresh token may hold control characters, `/` may be written
    // `\/`, any character `\uXXXX` in either case): read once and twice decoded, each byte
    // of a reading mapped back to the bytes of `text` that spell it.
    if let Some((once, spans)) = json_unescaped(bytes, None) {
        echoes.mark(&once, Some(&spans), &mut masked);
        if let Some((twice, spans)) = json_unescaped(&once, Some(&spans)) {
            echoes.mark(&twice, Some(&spans), &mut masked);
        }
    }
    if !masked.contains(&true) {
        return text.to_owned();
    }
    // Whole characters only: a masked byte hides the character it belongs to.
    let mut out = String::with_capacity(text.len());
    let mut in_run = false;
    for (at, ch) in text.char_indices() {
        if masked[at..at + ch.len_utf8()].contains(&true) {
            if !in_run {
                out.push_str(REDACTED);
                in_run = true;
            }
        } else {
            out.push(ch);
            in_run = false;
        }
    }
    out
}

/// What [`scrub_secrets`] looks for: the [`MIN_ECHO`]-byte windows of the long secrets
/// (sorted), and the short secrets whole.
struct Echoes<'a> {
    windows: Vec<u64>,
    shorts: Vec<&'a [u8]>,
}

impl Echoes<'_> {
    /// Marks in `masked` (one flag per byte of the text) every echo found in `view`: the
    /// text itself (`spans` none), or a decoded reading of it whose byte `i` is spelled by
    /// the text's bytes `spans[i]`.
    fn mark(&self, view: &[u8], spans: Option<&[Span]>, masked: &mut [bool]) {
        let mut mask = |from: usize, to: usize| match spans {
            None => masked[from..to].fill(true),
            Some(spans) => masked[spans[from].0..spans[to - 1].1].fill(true),
        };
        for short in &self.shorts {
            let mut from = 0;
            while let Some(at) = find(&view[from..], short) {
                mask(from + at, from + at + short.len());
                from += at + 1;
            }
        }
        if !self.windows.is_empty() {
            for (at, window) in view.windows(MIN_ECHO).enumerate() {
                if self.windows.binary_search(&window_key(window)).is_ok() {
                    mask(at, at + MIN_ECHO);
                }
            }
        }
    }
}

/// The bytes of a text (from, to) that spell one byte of a decoded reading of it.
type Span = (usize, usize);

/// `bytes` with every JSON string escape decoded (`\"`, `\\`, `\/`, `\b`, `\f`, `\n`,
/// `\r`, `\t`, `\uXXXX` in either case, a surrogate pair as one character; anything else,
/// a lone surrogate too, is kept as it is), and for each byte of the result the range of
/// the original text that spells it (`spans` maps `bytes` itself back to that text, if it
/// is already a reading of it). None if nothing was decoded.
fn json_unescaped(bytes: &[u8], spans: Option<&[Span]>) -> Option<(Vec<u8>, Vec<Span>)> {
    let span = |from: usize, to: usize| match spans {
        None => (from, to),
        Some(spans) => (spans[from].0, spans[to - 1].1),
    };
    let hex = |at: usize| -> Option<u32> {
        let digits = bytes.get(at..at + 4)?;
        let digits = std::str::from_utf8(digits).ok()?;
        if !digits.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(digits, 16).ok()
    };
    let unit = |at: usize| -> Option<u32> {
        (bytes.get(at..at + 2) == Some(b"\\u"))
            .then(|| hex(at + 2))
            .flatten()
    };
    if !bytes.contains(&b'\\') {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len());
    let mut out_spans = Vec::with_capacity(bytes.len());
    let mut decoded = false;
    let mut at = 0;
    while at < bytes.len() {
        let simple = match bytes[at..] {
            [b'\\', escape, ..] => match escape {
                b'"' | b'\\' | b'/' => Some(escape),
                b'b' => Some(0x08),
                b'f' => Some(0x0c),
                b'n' => Some(b'\n'),
                b'r' => Some(b'\r'),
                b't' => Some(b'\t'),
                _ => None,
            },
            _ => None,
        };
        if let Some(byte) = simple {
            out.push(byte);
            out_spans.push(span(at, at + 2));
            decoded = true;
            at += 2;
            continue;
        }
        let escaped = unit(at).and_then(|first| match first {
            0xD800..=0xDBFF => {
                let second = unit(at + 6).filter(|second| (0xDC00..=0xDFFF).contains(second))?;
                let code = 0x10000 + ((first - 0xD800) << 10) + (second - 0xDC00);
                Some((char::from_u32(code)?, 12))
            }
            _ => Some((char::from_u32(first)?, 6)),
        });
        if let Some((ch, len)) = escaped {
            let mut utf8 = [0; 4];
            for &byte in ch.encode_utf8(&mut utf8).as_bytes() {
                out.push(byte);
                out_spans.push(span(at, at + len));
            }
            decoded = true;
            at += len;
            continue;
        }
        out.push(bytes[at]);
        out_spans.push(span(at, at + 1));
        at += 1;
    }
    decoded.then_some((out, out_spans))
}

fn window_key(window: &[u8]) -> u64 {
    let mut key = [0; MIN_ECHO];
    key.copy_from_slice(window);
    u64::from_le_bytes(key)
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// The authentication schemes whose credentials an echoed `Authorization` header shows: the
/// client's HTTP Basic credentials (Base64 of `id:secret`, which no known secret matches) and
/// a bearer sent on a token call.
const SCHEMES: [&str; 2] = ["basic", "bearer"];

/// Masks the credentials after every `Basic` or `Bearer` scheme name followed by a space (an
/// echoed `Authorization` header, however its page writes or quotes it): a run of 8 or more
/// token68 characters (RFC 9110 section 11.4) that is not a lowercase word, so "Bearer
/// realm" and "Basic authentication failed" keep their words.
fn mask_credentials(text: &str) -> String {
    let bytes = text.as_bytes();
    let token68 = |b: u8| b.is_ascii_alphanumeric() || b"-._~+/=".contains(&b);
    let mut out = String::with_capacity(text.len());
    let (mut copied, mut at) = (0, 0);
    while at < bytes.len() {
        let word_start = at == 0 || !bytes[at - 1].is_ascii_alphanumeric();
        let scheme = SCHEMES.iter().find(|scheme| {
            word_start
                && bytes
                    .get(at..at + scheme.len())
                    .is_some_and(|b| b.eq_ignore_ascii_case(scheme.as_bytes()))
        });
        let Some(scheme) = scheme else {
            at += 1;
            continue;
        };
        let after = at + scheme.len();
        // The space after the scheme, also as a form or a URL spells it (`+`, `%20`).
        let mut start = after;
        loop {
            match bytes.get(start) {
                Some(b' ' | b'\t' | b'+') => start += 1,
                Some(b'%') if bytes.get(start + 1..start + 3) == Some(b"20") => start += 3,
                _ => break,
            }
        }
        let mut end = start;
        while end < bytes.len() && token68(bytes[end]) {
            end += 1;
        }
        let run = &bytes[start..end];
        if start > after && run.len() >= 8 && !run.iter().all(u8::is_ascii_lowercase) {
            out.push_str(&text[copied..start]);
            out.push_str(REDACTED);
            copied = end;
            at = end;
        } else {
            // What follows may itself be a scheme (`Basic Basic <credentials>`).
            at = after;
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// Masks the credentials of echoed `Authorization` headers ([`mask_credentials`]), then
/// the value after every token-like key followed by `:` or `=` (quoted or not, up to its
/// closing quote, or to the next delimiter, or to the end of a cut-off text).
fn scrub_text(text: &str) -> String {
    let text = &mask_credentials(text);
    let mut out = String::with_capacity(text.len());
    let mut rest = text.as_str();
    while let Some(at) = rest.find([':', '=']) {
        let (before, after) = rest.split_at(at);
        out.push_str(before);
        out.push_str(&after[..1]);
        rest = &after[1..];
        let key = before
            .trim_end_matches(|c: char| c.is_whitespace() || c == '"' || c == '\\')
            .rsplit(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .next()
            .unwrap_or("")
            .to_ascii_lowercase();
        if !SECRET_KEYS.contains(&key.as_str()) {
            continue;
        }
        let value = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '\\');
        out.push_str(&rest[..rest.len() - value.len()]);
        let (quoted, value) = match value.strip_prefix('"') {
            Some(inner) => (true, inner),
            None => (false, value),
        };
        let end = if quoted {
            value.find(['"', '\\']).unwrap_or(value.len())
        } else {
            value
                .find(|c: char| c.is_whitespace() || "&,;}<\"'".contains(c))
                .unwrap_or(value.len())
        };
        if quoted {
            out.push('"');
        }
        if end > 0 {
            out.push_str(REDACTED);
        }
        rest = &value[end..];
    }
    out.push_str(rest);
    out
}

fn scrub_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, value) in map.iter_mut() {
                if !redact_secret_value(key, value) {
                    scrub_json(value);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub_json),
        serde_json::Value::String(text) => *text = mask_credentials(text),
        _ => {}
    }
}

/// Replaces `value` by the redaction marker if `key` names a secret and `value` could hold
/// one, whatever its shape (a string, a number, or an array or object holding them: a
/// provider that sends a token in another shape than expected sent it all the same, and
/// the decode fails on it, keeping the body). Whether it did.
fn redact_secret_value(key: &str, value: &mut serde_json::Value) -> bool {
    let key = key.to_ascii_lowercase();
    let holds = match value {
        serde_json::Value::Null | serde_json::Value::Bool(_) => false,
        // A number under `code` is an error code (TikTok's, WeChat's `errcode`...), which
        // an answer's reader needs; an authorization code is text.
        serde_json::Value::Number(_) => key != "code",
        _ => true,
    };
    if holds && SECRET_KEYS.contains(&key.as_str()) {
        *value = serde_json::Value::String(REDACTED.to_owned());
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_like_json_values_are_scrubbed() {
        let body =
            br#"{"access_token":"AT-1","nested":{"refreshToken":"RT-1"},"expires_in":"soon"}"#;
        let shown = scrub_body(body, &[]);
        assert!(
            !shown.contains("AT-1") && !shown.contains("RT-1"),
            "{shown}"
        );
        assert!(shown.contains("soon"));
    }

    /// A provider that sends a token in another shape than a string (a number, an array,
    /// an object) sent it all the same: the decode fails on it, and the body kept in that
    /// error must not show it, in an error answer or a success one.
    #[test]
    fn token_like_keys_are_scrubbed_whatever_the_shape_of_their_value() {
        for body in [
            br#"{"access_token":["AT-SECRET-0001"],"expires_in":3600}"#.as_slice(),
            br#"{"access_token":{"value":"AT-SECRET-0002"},"expires_in":3600}"#,
            br#"{"refreshToken":[{"v":["AT-SECRET-0003"]}]}"#,
            br#"{"access_token":987654321098765432,"token_type":"bearer"}"#,
            br#"{"nested":{"refresh_token":1.2345678901e20}}"#,
        ] {
            for shown in [scrub_body(body, &[]), scrub_answer_body(body, &[])] {
                assert!(
                    !shown.contains("SECRET")
                        && !shown.contains("98765432")
                        && !shown.contains("12345678"),
                    "{shown}"
                );
                assert!(shown.contains(REDACTED), "{shown}");
            }
        }
        // Other keys keep their numbers and shapes; a null or boolean token is no secret.
        let body = br#"{"expires_in":3600,"scope":["a","b"],"refresh_token":null}"#;
        let shown = scrub_body(body, &[]);
        assert!(
            shown.contains("3600") && shown.contains(r#"["a","b"]"#),
            "{shown}"
        );
        assert!(shown.contains(r#""refresh_token":null"#), "{shown}");
        let shown = scrub_body(br#"{"code":40001,"message":"bad"}"#, &[]);
        assert!(shown.contains("40001"), "an error code is kept: {shown}");
        assert!(scrub_answer_body(body, &[]).contains("3600"));
    }

    /// serde_json quotes an offending number in backticks, as it does a field name: a
    /// token sent as a number must not survive in a decoder's reason.
    #[test]
    fn numbers_quoted_by_the_decoder_are_removed_and_field_names_kept() {
        for (message, shown) in [
            (
                "invalid type: integer `987654321098765432`, expected a string",
                "invalid type: integer `…`, expected a string",
            ),
            (
                "invalid type: floating point `1.2345678901e20`, expected a string",
                "invalid type: floating point `…`, expected a string",
            ),
            (
                "missing field `access_token`",
                "missing field `access_token`",
            ),
            (
                "unknown field `x1`, expected `a` or `b`",
                "unknown field `x1`, expected `a` or `b`",
            ),
            (
                "invalid value: integer `-5` at `",
                "invalid value: integer `…` at `",
            ),
            (
                "invalid type: string \"AT-1\"",
                "invalid type: string \"…\"",
            ),
        ] {
            assert_eq!(unquote(message), shown);
        }
    }

    #[test]
    fn echoed_credentials_are_masked_and_words_kept() {
        let table = [
            (
                "Authorization: Basic YXBwOnNlY3JldA==",
                "Authorization: Basic [redacted]",
            ),
            (
                "h: bearer\teyJhbGciOi.e30.c2ln, x",
                "h: bearer\t[redacted], x",
            ),
            (r#"["BEARER 0123456789abcdef"]"#, r#"["BEARER [redacted]"]"#),
            ("Basic authentication failed", "Basic authentication failed"),
            (
                r#"Bearer realm="api", error="invalid_token""#,
                r#"Bearer realm="api", error="invalid_token""#,
            ),
            ("Basically AbCdEfGh12345", "Basically AbCdEfGh12345"),
            ("xbasic AbCdEfGh12345", "xbasic AbCdEfGh12345"),
            ("é Bearer ééé Basic", "é Bearer ééé Basic"),
            ("Bearer", "Bearer"),
        ];
        for (text, shown) in table {
            assert_eq!(scrub_body(text.as_bytes(), &[]), shown, "{text:?}");
        }
    }

    /// An `Authorization` header echoed form-encoded (a page that dumps the request as a
    /// query string: `Basic+`, `Basic%20`), or right after another scheme name, has its
    /// credentials masked: the client's id and secret in Base64, which no known secret
    /// matches.
    #[test]
    fn echoed_credentials_are_masked_however_the_echo_spells_the_space() {
        let credentials = "YXBwOnNlY3JldA";
        let shown: Vec<String> = [
            "authorization=Basic%20YXBwOnNlY3JldA%3D%3D&x=1",
            "authorization=Basic+YXBwOnNlY3JldA%3D%3D&x=1",
            "Authorization: Basic Basic YXBwOnNlY3JldA==",
        ]
        .iter()
        .map(|text| scrub_body(text.as_bytes(), &[]))
        .filter(|shown| shown.contains(credentials))
        .collect();
        assert!(shown.is_empty(), "{shown:?}");
    }

    #[test]
    fn known_secrets_are_scrubbed_from_any_text() {
        let body = b"<html>Invalid refresh token: RT-SECRET-9.</html>";
        let shown = scrub_body(body, &["RT-SECRET-9"]);
        assert!(!shown.contains("RT-SECRET-9"), "{shown}");
        assert!(shown.contains("<html>"));
    }

    #[test]
    fn token_like_values_are_scrubbed_from_text_that_is_not_json() {
        for body in [
            &br#"{"access_token":"AT-CUT-OFF-1","expires_in":36"#[..],
            br#"{"refreshToken" : "RT-CUT-OFF-2"#,
            b"access_token=AT-FORM-3&token_type=bearer&expires_in=60",
            br#"<html>{\"access_token\":\"AT-ESCAPED-4\"}</html>"#,
        ] {
            let shown = scrub_body(body, &[]);
            assert!(
                !shown.contains("CUT-OFF") && !shown.contains("FORM") && !shown.contains("ESCAPED"),
                "{shown}"
            );
            assert!(shown.contains(REDACTED), "{shown}");
        }
        let shown = scrub_body(b"<html>error: bad gateway, code=502 at 10:30</html>", &[]);
        assert_eq!(
            shown,
            "<html>error: bad gateway, code=[redacted] at 10:30</html>"
        );
    }

    #[test]
    fn partial_echoes_of_a_known_secret_are_scrubbed() {
        let token = "rt-9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4";
        for start in 0..=token.len() - MIN_ECHO {
            for end in start + MIN_ECHO..=token.len() {
                let text = format!("code {} here", &token[start..end]);
                assert_eq!(
                    scrub_secrets(&text, &[token]),
                    "code [redacted] here",
                    "{start}..{end}"
                );
            }
        }
        // Seven characters are not an echo: ordinary text must survive.
        let text = format!("code {} here", &token[3..10]);
        assert_eq!(scrub_secrets(&text, &[token]), text);
    }

    #[test]
    fn scrubbing_keeps_other_text_and_whole_characters() {
        let token = "tok-ünïcödé-0123456789";
        let text = format!("é {} ü, invalid_grant", &token[..13]);
        let shown = scrub_secrets(&text, &[token, "", "ab"]);
        assert_eq!(shown, "é [redacted] ü, invalid_grant");
        assert_eq!(scrub_secrets("invalid_grant", &[token]), "invalid_grant");
        assert_eq!(scrub_secrets("", &[token]), "");
    }

    #[test]
    fn a_form_encoded_echo_is_scrubbed() {
        let token = "rt_a+b/c=0123456789";
        let shown = scrub_secrets("refresh_token=rt_a%2Bb%2Fc%3D0123456789&x=1", &[token]);
        assert!(!shown.contains("0123456789"), "{shown}");
        assert!(shown.ends_with("&x=1"), "{shown}");
    }

    #[test]
    fn an_echo_in_any_json_spelling_is_scrubbed() {
        // A refresh token with a line feed, a slash and a character outside the BMP.
        let token = "rt/9f8e\n7d6c5b4a3f2e1d0c\u{1F511}9b8a";
        let escape_all = |upper: bool| -> String {
            token
                .encode_utf16()
                .map(|unit| match upper {
                    true => format!("\\u{unit:04X}"),
                    false => format!("\\u{unit:04x}"),
                })
                .collect()
        };
        let spellings = [
            // serde_json's own spelling, as before.
            serde_json::to_string(token)
                .unwrap()
                .trim_matches('"')
                .to_owned(),
            "rt\\/9f8e\\u000A7d6c5b4a3f2e1d0c\u{1F511}9b8a".to_owned(),
            "rt/9f8e\\u000a7d6c5b4a3f2e1d0c\\uD83D\\uDD119b8a".to_owned(),
            "rt\\u002F9f8e\\n7d6c5b4a3f2e1d0c\\ud83d\\udd119b8a".to_owned(),
            escape_all(true),
            escape_all(false),
            // JSON quoted in a JSON string: escaped twice.
            "rt\\\\/9f8e\\\\u000A7d6c5b4a3f2e1d0c\u{1F511}9b8a".to_owned(),
        ];
        for spelling in &spellings {
            let text = format!(r#"<p>{{"error":"invalid_grant","hint":"{spelling}"}}</p>"#);
            let shown = scrub_secrets(&text, &[token]);
            assert_eq!(
                shown, r#"<p>{"error":"invalid_grant","hint":"[redacted]"}</p>"#,
                "{spelling}"
            );
            // Its second half too: nothing of it is left to find, in any spelling.
            let mut cut = spelling.len() / 2;
            while !spelling.is_char_boundary(cut) {
                cut += 1;
            }
            let part = &spelling[cut..];
            let shown = scrub_secrets(&format!("got {part} here"), &[token]);
            assert!(shown.contains(REDACTED), "{part}: {shown}");
            assert_eq!(scrub_secrets(&shown, &[token]), shown, "{part}");
            // And in a body excerpt that is not JSON (cut off).
            let body = format!(r#"{{"hint":"{spelling}"#);
            let shown = scrub_body(body.as_bytes(), &[token]);
            assert!(
                !shown.contains("b4a3f2") && !shown.contains("9b8a"),
                "{shown}"
            );
        }
        // Escapes that spell nothing of it are left as they are.
        let text = r#"{"a":"line\u000Abreak \/ \uD83D alone \q"}"#;
        assert_eq!(scrub_secrets(text, &[token]), text);
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = vec![b'x'; 10 * 1024 * 1024];
        assert!(scrub_body(&body, &[]).len() <= MAX_KEPT_BODY + 3);
    }
}

#[cfg(test)]
mod numeric_token_tests {
    /// A success answer whose token is a number (not the string the endpoint declares):
    /// the provider may have rotated to it, and the error that says the answer could not
    /// be read holds it neither in its reason nor in the body it keeps.
    #[test]
    fn a_token_sent_as_a_number_is_in_no_decode_error() {
        use crate::codec::decode_response;
        use crate::oauth::RefreshTokenGrant;
        for body in [
            r#"{"access_token":987654321098765432,"refresh_token":"rt-new-abcdefgh","expires_in":3600}"#,
            r#"{"access_token":"at-new-abcdefgh","refresh_token":987654321098765432,"expires_in":3600}"#,
        ] {
            let response = http::Response::new(body.as_bytes().to_vec());
            let now = time::OffsetDateTime::now_utc();
            let error = decode_response::<RefreshTokenGrant>(&response, now, &[]).unwrap_err();
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("98765432"), "{shown}");
        }
    }
}
