//! Records read and written as JSON, nested at most [`MAX_DEPTH`] deep.
//!
//! serde_json reads at most 128 levels of nesting by default, and a provider's answer is
//! read with that limit: its extras can be nested up to 126 deep, and the record that holds
//! them adds a few levels of its own. A store reads records with a limit of its own,
//! checked before parsing, so that every record a store saves loads back, and a record
//! nested deeper than any store reads is refused when it is saved, not when a process
//! needs it.

use serde::de::{DeserializeOwned, Error as _};

/// The deepest nesting of arrays and objects a stored record may have: an answer's 128
/// and room for the record around it.
pub(crate) const MAX_DEPTH: usize = 160;

/// The deepest nesting of arrays and objects in `json` (which need not be valid JSON: a
/// bracket inside a string does not count).
pub(crate) fn depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest) = (0usize, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for &byte in json {
        if in_string {
            match byte {
                _ if escaped => escaped = false,
                b'\\' => escaped = true,
                b'"' => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// The deepest nesting of arrays and objects in `value`, as [`depth`] counts it in its JSON.
/// Without recursion: a value built in memory (a wallet's extras) may be nested however deep.
#[cfg(any(test, feature = "postgres"))]
pub(crate) fn value_depth(value: &serde_json::Value) -> usize {
    use serde_json::Value;
    let (mut deepest, mut pending) = (0, vec![(value, 0)]);
    while let Some((value, depth)) = pending.pop() {
        match value {
            Value::Array(items) => pending.extend(items.iter().map(|item| (item, depth + 1))),
            Value::Object(fields) => pending.extend(fields.values().map(|v| (v, depth + 1))),
            _ => continue,
        }
        deepest = deepest.max(depth + 1);
    }
    deepest
}

/// `json` read as a `T`, if it is nested at most [`MAX_DEPTH`] deep.
pub(crate) fn from_slice<T: DeserializeOwned>(json: &[u8]) -> Result<T, serde_json::Error> {
    if depth(json) > MAX_DEPTH {
        return Err(serde_json::Error::custom(format_args!(
            "nested more than {MAX_DEPTH} deep"
        )));
    }
    let mut deserializer = serde_json::Deserializer::from_slice(json);
    // The depth is bounded above, which is what serde_json's own limit is for.
    deserializer.disable_recursion_limit();
    let value = T::deserialize(&mut deserializer)?;
    deserializer.end()?;
    Ok(value)
}

/// A set whose extras are nested `extras_depth` deep.
#[cfg(test)]
pub(crate) fn nested_set(extras_depth: usize) -> crate::store::StoredRecord {
    let json = format!("{}1{}", "[".repeat(extras_depth), "]".repeat(extras_depth));
    let extras: serde_json::Value = from_slice(json.as_bytes()).unwrap();
    crate::token_set::TokenSet::new(crate::secret::AccessToken::new("at"))
        .with_refresh_token(crate::secret::RefreshToken::new("rt"))
        .with_extras(extras)
        .into()
}

/// Holds `store` to saving only what it loads back: a set whose extras are nested as deep as
/// a provider's answer can hold (126 under serde_json's limit of 128) saves and loads back,
/// although its record nests deeper than 128; a record nested deeper than [`MAX_DEPTH`] is
/// refused at the save as `Unsupported` (the manager saves such a set without its extras), and the
/// record before it stays.
#[cfg(test)]
pub(crate) async fn saves_only_what_loads(store: &dyn crate::store::TokenStore) {
    use crate::error::StoreError;
    let key = crate::store::SessionKey::new("p", "deep");
    let record = nested_set(126);
    let version = store.save(&key, &record, None).await.unwrap();
    let loaded = store.load(&key).await.unwrap().unwrap();
    assert_eq!((loaded.version, &loaded.value), (version, &record));
    let refused = store
        .save(&key, &nested_set(MAX_DEPTH), Some(version))
        .await;
    assert!(
        matches!(refused, Err(StoreError::Unsupported(_))),
        "{refused:?}"
    );
    let kept = store.load(&key).await.unwrap().unwrap();
    assert_eq!((kept.version, &kept.value), (version, &record));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn depth_counts_brackets_outside_strings_only() {
        assert_eq!(depth(b"1"), 0);
        assert_eq!(depth(br#"{"a":[1,{"b":[]}]}"#), 4);
        assert_eq!(depth(br#"{"a":"[[[{{\"[["}"#), 1);
        assert_eq!(depth(br#"["\\",[["#), 3);
        let value: serde_json::Value =
            serde_json::from_str(r#"{"a":[1,{"b":[]}],"c":{}}"#).unwrap();
        assert_eq!(value_depth(&value), 4);
        let value: serde_json::Value =
            serde_json::from_str(r#"{"a":[1,{"b":[]}],"c":{}}"#).unwrap();
        assert_eq!(value_depth(&value), 4);
    }

    #[test]
    fn a_document_nested_up_to_the_limit_reads_and_one_deeper_is_refused() {
        let nested = |n: usize| format!("{}1{}", "[".repeat(n), "]".repeat(n));
        let read = from_slice::<serde_json::Value>(nested(MAX_DEPTH).as_bytes()).unwrap();
        assert_eq!(
            depth(serde_json::to_string(&read).unwrap().as_bytes()),
            MAX_DEPTH
        );
        let refused = from_slice::<serde_json::Value>(nested(MAX_DEPTH + 1).as_bytes());
        assert_eq!(
            refused.unwrap_err().classify(),
            serde_json::error::Category::Data
        );
        // Trailing input is refused as serde_json::from_slice refuses it.
        assert!(from_slice::<serde_json::Value>(b"[1] 2").is_err());
    }
}
