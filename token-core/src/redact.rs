//! Removing secrets from text that may be shown: raw response bodies kept in parse errors.
//!
//! A provider's broken answer is worth keeping for diagnosis, but it may echo a token back
//! (Maya's `invalid_token` message does). Bodies are cut to a bound and scrubbed first.

/// A value that must never be shown; implemented by every secret type.
pub trait Secret {
    /// The raw value.
    fn expose_secret(&self) -> &str;
}

/// How much of a raw body a parse error keeps.
pub const MAX_KEPT_BODY: usize = 1024;

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

/// A body made safe to show: at most [`MAX_KEPT_BODY`] bytes, every `known` secret replaced,
/// and the string values of token-like JSON keys replaced.
pub fn scrub_body(body: &[u8], known: &[&str]) -> String {
    let mut text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(mut value) => {
            scrub_json(&mut value);
            value.to_string()
        }
        // Not JSON (truncated, HTML, a form): token-like `key: value` and `key=value` pairs
        // are still masked, so a cut-off answer cannot show the token it carried.
        Err(_) => scrub_text(&String::from_utf8_lossy(body)),
    };
    for secret in known.iter().filter(|s| s.len() >= 4) {
        text = text.replace(secret, crate::secret::REDACTED);
    }
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

/// Masks the value after every token-like key followed by `:` or `=` (quoted or not, up to
/// its closing quote, or to the next delimiter, or to the end of a cut-off text).
fn scrub_text(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
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
            out.push_str(crate::secret::REDACTED);
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
                let lower = key.to_ascii_lowercase();
                if value.is_string() && SECRET_KEYS.contains(&lower.as_str()) {
                    *value = serde_json::Value::String(crate::secret::REDACTED.to_owned());
                } else {
                    scrub_json(value);
                }
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(scrub_json),
        _ => {}
    }
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
            assert!(shown.contains(crate::secret::REDACTED), "{shown}");
        }
        let shown = scrub_body(b"<html>error: bad gateway, code=502 at 10:30</html>", &[]);
        assert_eq!(
            shown,
            "<html>error: bad gateway, code=[redacted] at 10:30</html>"
        );
    }

    #[test]
    fn long_bodies_are_cut() {
        let body = vec![b'x'; 10 * 1024 * 1024];
        assert!(scrub_body(&body, &[]).len() <= MAX_KEPT_BODY + 3);
    }
}
