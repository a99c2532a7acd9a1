//! The public types an integrator persists themselves, through serde formats other than
//! the stores' JSON.

use token_core::{secret::AccessToken, secret::RefreshToken, token_set::TokenSet};

#[derive(Clone, Debug, Default, PartialEq, serde::Serialize, serde::Deserialize)]
struct MyExtras {
    customer_id: Option<String>,
    tier: u8,
}

/// The instant the sets below expire at.
fn at() -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp(1_900_000_000).unwrap()
}

/// A set with a refresh token whose access token expires at [`at`].
fn expiring() -> TokenSet {
    TokenSet::new(AccessToken::new("at-secret"))
        .with_refresh_token(RefreshToken::new("rt-secret"))
        .with_access_expires_at(at())
}

/// The token sets an integrator persists themselves, through postcard (no field names, no
/// types on the wire): they come back as they went, expiries included (the expiries were
/// read by asking the format what comes next, which postcard and bincode cannot answer:
/// `WontImplement` for any set with an expiry).
#[test]
fn token_sets_with_expiries_round_trip_through_a_format_that_is_not_self_describing() {
    let at = at();
    let plain = expiring().with_token_type("Bearer").with_scope("pay");
    let bytes = postcard::to_stdvec(&plain).unwrap();
    assert_eq!(postcard::from_bytes::<TokenSet>(&bytes).unwrap(), plain);
    let typed = TokenSet::new(AccessToken::new("at-secret"))
        .with_access_expires_at(at)
        .with_refresh_expires_at(at + time::Duration::days(30))
        .with_extras(MyExtras {
            customer_id: Some("c-1".into()),
            tier: 3,
        });
    let bytes = postcard::to_stdvec(&typed).unwrap();
    assert_eq!(
        postcard::from_bytes::<TokenSet<MyExtras>>(&bytes).unwrap(),
        typed
    );
    // Cut short: an error, no panic, no token in it.
    for cut in 0..bytes.len() {
        if let Err(error) = postcard::from_bytes::<TokenSet<MyExtras>>(&bytes[..cut]) {
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("secret"), "{shown}");
        }
    }
}

/// A store record is kept as JSON, as `StoredRecord`'s docs say: through postcard it is
/// written but not read back (a typed error, no panic, no token in it), through JSON it
/// comes back as it went.
#[test]
fn a_store_record_round_trips_through_json_and_not_through_postcard() {
    use token_core::store::StoredRecord;
    let record = StoredRecord::from(expiring().to_stored().unwrap());
    let json = serde_json::to_vec(&record).unwrap();
    assert_eq!(
        serde_json::from_slice::<StoredRecord>(&json).unwrap(),
        record
    );
    let bytes = postcard::to_stdvec(&record).unwrap();
    let error = postcard::from_bytes::<StoredRecord>(&bytes).unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("secret"), "{shown}");
}

/// Through RON (self-describing, but strict about a newtype struct, which it writes and
/// reads as `(..)`), the expiries come back as they went, as they always did: they are
/// written as the bare text, and must be read as that, not as a newtype around it.
#[test]
fn token_sets_with_expiries_round_trip_through_ron() {
    let at = at();
    let set = expiring().with_refresh_expires_at(at + time::Duration::days(30));
    let text = ron::to_string(&set).unwrap();
    assert_eq!(ron::from_str::<TokenSet>(&text).unwrap(), set);
    let none: TokenSet = TokenSet::new(AccessToken::new("at-secret"));
    let text = ron::to_string(&none).unwrap();
    assert_eq!(ron::from_str::<TokenSet>(&text).unwrap(), none);
    // JSON as before: null or missing is none, the text an instant, a number refused.
    let json = |expiry: &str| {
        serde_json::from_str::<TokenSet>(&format!(r#"{{"access_token":"at-secret"{expiry}}}"#))
            .map(|set| set.access_expires_at)
    };
    assert_eq!(json("").unwrap(), None);
    assert_eq!(json(r#","access_expires_at":null"#).unwrap(), None);
    let text = r#","access_expires_at":"2030-03-17T17:46:40Z""#;
    assert_eq!(json(text).unwrap(), Some(at));
    assert!(json(r#","access_expires_at":1900000000"#).is_err());
}
