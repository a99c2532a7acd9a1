//! What the client side does with hostile or odd provider answers, through the code
//! `#[token_endpoint]` generates and `codec::decode_response`:
//!
//! - provider-supplied text (the error code, the message, a raw body) never shows a known
//!   secret, whole or in part (any run of 8 or more of its characters);
//! - an odd expiry (negative, huge, `"NaN"`, the wrong type) or a duplicate key never costs
//!   the tokens of a success answer: the expiry becomes unknown, with a warning; nor does
//!   an odd scope or token type (Twitch's array of scopes);
//! - `refresh_expires_in: 0` is "no refresh expiry", `expires_in: 0` stays "expires now";
//! - extreme instants and `Retry-After` values never panic;
//! - an access token carrying a control character, with no refresh token beside it, is
//!   refused, naming the field, never the value (beside one, the answer is kept).
//! - an empty access token alone is refused (beside a new refresh token it is returned
//!   empty, for the manager to set aside); an empty refresh token is read as none, so the
//!   previous one is kept.
//! - a UTF-8 byte order mark before the JSON is ignored;
//! - a redirect (3xx) is a refusal, whatever its body says.

use http::StatusCode;
use time::OffsetDateTime;
use time::macros::datetime;
use token_core::codec::{Endpoint, FromContext, RequestContext, decode_response};
use token_core::expiry::{ExpiresIn, UnixTime};
use token_core::{
    error::EndpointError, error::Error, error::ErrorKind, secret::AccessToken,
    secret::RefreshToken, token_endpoint, token_set::TokenSet,
};

#[token_endpoint(response, jwt_expiry)]
#[derive(Debug)]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(refresh_token)]
    pub refresh_token: Option<RefreshToken>,
    #[token(expiry)]
    pub expires_in: Option<ExpiresIn>,
    #[token(refresh_expiry)]
    pub refresh_expires_in: Option<ExpiresIn>,
}

#[token_endpoint(response, rename_all = "camelCase")]
#[derive(Debug)]
pub struct UnixTokens {
    #[token(access_token)]
    pub access_token: AccessToken,
    #[token(refresh_token)]
    pub refresh_token: Option<RefreshToken>,
    #[token(expiry)]
    pub expires_at: Option<UnixTime>,
}

#[token_endpoint(error)]
#[derive(Debug)]
pub struct Failure {
    #[token(code)]
    pub error: String,
    #[token(message)]
    pub error_description: Option<String>,
}

#[token_endpoint(post = "/token", form, response = Tokens, error = Failure,
                 body(name = "grant_type", value = "refresh_token"))]
#[derive(Debug)]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

#[token_endpoint(post = "/token", json, response = UnixTokens, error = Failure)]
#[derive(Debug)]
pub struct UnixRefresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

/// 34 characters, as in the issue's probe.
const REFRESH_TOKEN: &str = "rt-9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4";

fn now() -> OffsetDateTime {
    datetime!(2026-03-01 12:00 UTC)
}

fn session() -> TokenSet {
    TokenSet::new(AccessToken::new("at-current"))
        .with_refresh_token(RefreshToken::new(REFRESH_TOKEN))
}

fn refresh() -> Refresh {
    Refresh::from_context(&RequestContext::for_refresh(&(), &session())).unwrap()
}

fn answer(status: u16, body: &str) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.as_bytes().to_vec());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}

fn decode(status: u16, body: &str) -> Result<TokenSet, EndpointError> {
    let refresh = refresh();
    decode_response::<Refresh>(&answer(status, body), now(), &refresh.secrets())
}

/// Every way an error is shown: `Display` and `Debug` of the endpoint error and of the
/// library error it becomes.
fn shown(error: &EndpointError) -> String {
    let wrapped = Error::from(error.clone());
    format!("{error}\n{error:?}\n{wrapped}\n{wrapped:?}")
}

fn assert_no_echo(text: &str) {
    assert_eq!(REFRESH_TOKEN.len(), 34);
    for start in 0..=REFRESH_TOKEN.len() - 8 {
        let run = &REFRESH_TOKEN[start..start + 8];
        assert!(
            !text.contains(run),
            "`{run}` of the refresh token shows in {text}"
        );
    }
}

// ---- provider-supplied text is scrubbed ------------------------------------------------

#[test]
fn a_refresh_token_echoed_whole_in_the_error_code_is_redacted() {
    let error = decode(400, &format!(r#"{{"error":"{REFRESH_TOKEN}"}}"#)).unwrap_err();
    let text = shown(&error);
    // Positive control: this is the provider's answer, shown.
    assert!(text.contains("HTTP 400"), "{text}");
    assert!(text.contains("[redacted]"), "{text}");
    assert_no_echo(&text);
    let Error::Endpoint(EndpointError::Provider(provider)) = Error::from(error) else {
        panic!("a provider error")
    };
    assert_eq!(provider.code, "[redacted]");
}

#[test]
fn a_partly_echoed_refresh_token_in_code_and_message_is_redacted() {
    // 24 of the 34 characters, from the middle, in both the code and the message.
    let part = &REFRESH_TOKEN[6..30];
    let body =
        format!(r#"{{"error":"bad_{part}","error_description":"token {part}... is not valid"}}"#);
    let error = decode(400, &body).unwrap_err();
    let text = shown(&error);
    assert!(text.contains("bad_[redacted]"), "{text}");
    assert!(text.contains("token [redacted]... is not valid"), "{text}");
    assert_no_echo(&text);
}

#[test]
fn a_refresh_token_echoed_in_a_body_that_is_not_json_is_redacted() {
    let part = &REFRESH_TOKEN[3..27];
    for status in [200, 400, 502] {
        let body = format!("<html><p>refresh {part} rejected</p><p>{REFRESH_TOKEN}</p></html>");
        let error = decode(status, &body).unwrap_err();
        let text = shown(&error);
        assert!(
            text.contains("<html><p>refresh [redacted] rejected"),
            "{status}: {text}"
        );
        assert_no_echo(&text);
    }
}

#[test]
fn a_legitimate_error_code_is_untouched() {
    let error = decode(
        400,
        r#"{"error":"invalid_grant","error_description":"refresh token expired"}"#,
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    let Error::Endpoint(EndpointError::Provider(provider)) = Error::from(error.clone()) else {
        panic!("a provider error")
    };
    assert_eq!(provider.code, "invalid_grant");
    assert_eq!(provider.message.as_deref(), Some("refresh token expired"));
    assert!(shown(&error).contains("`invalid_grant`: refresh token expired"));
}

#[test]
fn a_secret_shorter_than_a_partial_echo_is_still_redacted_whole() {
    let session: TokenSet =
        TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt-77"));
    let refresh = Refresh::from_context(&RequestContext::for_refresh(&(), &session)).unwrap();
    let error = decode_response::<Refresh>(
        &answer(
            400,
            r#"{"error":"rt-77","error_description":"rt-77 is dead"}"#,
        ),
        now(),
        &refresh.secrets(),
    )
    .unwrap_err();
    let text = shown(&error);
    assert!(text.contains("[redacted] is dead"), "{text}");
    assert!(!text.contains("rt-77"), "{text}");
}

// ---- an odd expiry never costs the tokens ----------------------------------------------

fn success(expiry: &str) -> String {
    format!(
        r#"{{"access_token":"at-new","refresh_token":"rt-new","expires_in":{expiry},"refresh_expires_in":600}}"#
    )
}

#[test]
fn an_odd_expires_in_keeps_the_new_pair_with_an_unknown_expiry() {
    for expiry in [
        "-5",
        "1e300",
        "-1e300",
        r#""NaN""#,
        r#""inf""#,
        r#""soon""#,
        "true",
        "{}",
        "[60]",
        "18446744073709551616",
    ] {
        let set =
            decode(200, &success(expiry)).unwrap_or_else(|e| panic!("expires_in {expiry}: {e}"));
        assert_pair_kept_without_expiry(&set, "at-new", expiry);
    }
}

/// The new pair is kept (`access`, `rt-new`) with an unknown access expiry, and the
/// refresh token's expiry (600 s) is still read.
fn assert_pair_kept_without_expiry(set: &TokenSet, access: &str, expiry: &str) {
    assert_eq!(set.access_token.expose_secret(), access, "{expiry}");
    assert_eq!(
        set.refresh_token.as_ref().map(RefreshToken::expose_secret),
        Some("rt-new"),
        "{expiry}"
    );
    assert_eq!(set.access_expires_at, None, "{expiry}");
    assert_eq!(
        set.refresh_expires_at,
        Some(now() + time::Duration::seconds(600)),
        "{expiry}"
    );
}

#[test]
fn an_expiry_beyond_any_double_keeps_the_new_pair_with_an_unknown_expiry() {
    for expiry in ["1e400", "-1e400", "1E+999", "0.5e309"] {
        let body = format!(
            r#"{{"access_token":"at-1e400","refresh_token":"rt-new","expires_in":{expiry},"refresh_expires_in":600}}"#
        );
        let mut set = None;
        let logs = capture_warnings(|| {
            set = Some(decode(200, &body).unwrap_or_else(|e| panic!("expires_in {expiry}: {e}")));
        });
        let set = set.unwrap();
        assert_pair_kept_without_expiry(&set, "at-1e400", expiry);
        assert!(logs.contains("expires_in"), "{expiry}: {logs}");
    }
}

#[test]
fn an_odd_scope_or_token_type_keeps_the_new_pair() {
    // Twitch answers its scopes as an array; others send odd token types.
    for (field, value) in [
        ("scope", r#"["channel:read","chat:edit"]"#),
        ("scope", "42"),
        ("token_type", "5"),
        ("token_type", r#"{"kind":"bearer"}"#),
    ] {
        let body = format!(
            r#"{{"access_token":"at-new","refresh_token":"rt-new","expires_in":60,"{field}":{value}}}"#
        );
        let grant = token_core::oauth::RefreshTokenGrant::new(RefreshToken::new(REFRESH_TOKEN));
        let mut set = None;
        let logs = capture_warnings(|| {
            set = Some(
                decode_response::<token_core::oauth::RefreshTokenGrant>(
                    &answer(200, &body),
                    now(),
                    &grant.secrets(),
                )
                .unwrap_or_else(|e| panic!("{field} {value}: {e}")),
            );
        });
        let set = set.unwrap();
        assert_eq!(set.access_token.expose_secret(), "at-new", "{body}");
        assert_eq!(
            set.refresh_token.as_ref().map(RefreshToken::expose_secret),
            Some("rt-new"),
            "{body}"
        );
        assert_eq!(
            set.access_expires_at,
            Some(now() + time::Duration::seconds(60)),
            "{body}"
        );
        assert_eq!((set.scope, set.token_type), (None, None), "{body}");
        assert!(logs.contains(field), "{body}: {logs}");
        assert!(
            !logs.contains("rt-new") && !logs.contains("at-new"),
            "{logs}"
        );
    }
}

/// Salesforce's `instance_url`, TikTok's `seller_name`: what the answer says beside the tokens.
#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Org {
    pub instance_url: Option<String>,
    pub user_type: Option<i64>,
    pub required: String,
}

#[token_endpoint(response, extras = Org)]
pub struct OrgTokens {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    pub org: Org,
}

#[token_endpoint(response, extras = Org)]
pub struct OneExtra {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    #[token(extra)]
    pub instance_url: Option<String>,
}

#[token_endpoint(post = "/token", form, response = OrgTokens, error = Failure)]
pub struct OrgRefresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

#[token_endpoint(post = "/token", form, response = OneExtra, error = Failure)]
pub struct OneExtraRefresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

#[test]
fn an_odd_optional_extra_keeps_the_new_pair() {
    for (field, value) in [
        ("instance_url", r#"{"url":"https://na1"}"#),
        ("instance_url", "42"),
        ("user_type", r#""seller""#),
        ("user_type", "1e400"),
    ] {
        let body = format!(
            r#"{{"access_token":"at-new","refresh_token":"rt-new","required":"r","{field}":{value}}}"#
        );
        let mut sets = None;
        let logs = capture_warnings(|| {
            let whole = decode_response::<OrgRefresh>(&answer(200, &body), now(), &[])
                .unwrap_or_else(|e| panic!("{field} {value}: {e}"));
            let one = decode_response::<OneExtraRefresh>(&answer(200, &body), now(), &[]);
            sets = Some((whole, one));
        });
        let (whole, one) = sets.unwrap();
        assert_eq!(whole.access_token.expose_secret(), "at-new", "{body}");
        assert_eq!(
            whole.refresh_token.unwrap().expose_secret(),
            "rt-new",
            "{body}"
        );
        assert_eq!(whole.extras.required, "r");
        assert_eq!(
            (whole.extras.instance_url, whole.extras.user_type),
            (None, None)
        );
        if field == "instance_url" {
            assert_eq!(
                one.unwrap().refresh_token.unwrap().expose_secret(),
                "rt-new"
            );
        }
        assert!(logs.contains(field), "{body}: {logs}");
        assert!(
            !logs.contains("rt-new") && !logs.contains("https://na1"),
            "{logs}"
        );
    }
    // A required extra the answer cannot read is no extra at all: the answer is unreadable.
    let body = r#"{"access_token":"at-new","refresh_token":"rt-new","required":5}"#;
    let error = decode_response::<OrgRefresh>(&answer(200, body), now(), &[]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown);
}

/// TikTok's `access_token_expire_in` is a UNIX time, Shopee's `expire_in` a lifetime: a field
/// declared as the other is kept as read, with a warning naming it and what it looks like.
#[test]
fn an_expiry_that_looks_misdeclared_is_kept_with_a_warning() {
    // A UNIX time read as a lifetime: 54 years from now.
    let mut set = None;
    let logs = capture_warnings(|| {
        set = Some(decode(200, r#"{"access_token":"at","expires_in":1722342011}"#).unwrap());
    });
    assert_eq!(
        set.unwrap().access_expires_at,
        Some(now() + time::Duration::seconds(1_722_342_011))
    );
    assert!(
        logs.contains("expires_in") && logs.contains("UnixTime"),
        "{logs}"
    );
    // A lifetime read as a UNIX time: 1970.
    let logs = capture_warnings(|| {
        let refresh =
            UnixRefresh::from_context(&RequestContext::for_refresh(&(), &session())).unwrap();
        let set = decode_response::<UnixRefresh>(
            &answer(200, r#"{"accessToken":"at","expiresAt":14400}"#),
            now(),
            &refresh.secrets(),
        )
        .unwrap();
        assert_eq!(set.access_expires_at, Some(datetime!(1970-01-01 04:00 UTC)));
    });
    assert!(
        logs.contains("expiresAt") && logs.contains("ExpiresIn"),
        "{logs}"
    );
    // Plausible values say nothing.
    let logs = capture_warnings(|| {
        decode(200, r#"{"access_token":"at","expires_in":7200}"#).unwrap();
    });
    assert!(logs.is_empty(), "{logs}");
}

#[test]
fn an_odd_refresh_expiry_keeps_the_new_pair() {
    let body = r#"{"access_token":"at-new","refresh_token":"rt-new","expires_in":60,"refresh_expires_in":"NaN"}"#;
    let set = decode(200, body).unwrap();
    assert_eq!(set.refresh_token.unwrap().expose_secret(), "rt-new");
    assert_eq!(set.refresh_expires_at, None);
    assert_eq!(
        set.access_expires_at,
        Some(now() + time::Duration::seconds(60))
    );
}

#[test]
fn an_odd_unix_expiry_keeps_the_new_pair() {
    for expiry in [
        "-62135596801000",
        "18446744073709551615",
        "1e300",
        r#""NaN""#,
        r#""2026-03-01""#,
        "null",
    ] {
        let body =
            format!(r#"{{"accessToken":"at-new","refreshToken":"rt-new","expiresAt":{expiry}}}"#);
        let refresh =
            UnixRefresh::from_context(&RequestContext::for_refresh(&(), &session())).unwrap();
        let set = decode_response::<UnixRefresh>(&answer(200, &body), now(), &refresh.secrets())
            .unwrap_or_else(|e| panic!("expiresAt {expiry}: {e}"));
        assert_eq!(set.access_token.expose_secret(), "at-new", "{expiry}");
        assert_eq!(
            set.refresh_token.unwrap().expose_secret(),
            "rt-new",
            "{expiry}"
        );
        assert_eq!(set.access_expires_at, None, "{expiry}");
    }
}

#[test]
fn duplicate_keys_keep_the_new_pair_and_the_last_value_wins() {
    let body = r#"{"access_token":"at-first","expires_in":30,"access_token":"at-new","refresh_token":"rt-new","expires_in":60}"#;
    let set = decode(200, body).unwrap();
    assert_eq!(set.access_token.expose_secret(), "at-new");
    assert_eq!(set.refresh_token.unwrap().expose_secret(), "rt-new");
    assert_eq!(
        set.access_expires_at,
        Some(now() + time::Duration::seconds(60))
    );
}

#[test]
fn a_missing_or_non_string_access_token_is_still_a_parse_error() {
    for body in [
        r#"{"refresh_token":"rt-new","expires_in":60}"#,
        r#"{"access_token":42,"refresh_token":"rt-new","expires_in":60}"#,
        r#"{"access_token":null,"refresh_token":"rt-new"}"#,
        r#"["at-new"]"#,
    ] {
        let error = decode(200, body).unwrap_err();
        assert!(
            matches!(error, EndpointError::Parse { .. }),
            "{body}: {error}"
        );
        assert_eq!(error.kind(), ErrorKind::OutcomeUnknown, "{body}");
        assert!(!shown(&error).contains("rt-new"), "{}", shown(&error));
    }
}

#[test]
fn an_odd_expiry_is_reported_by_field_name_in_a_warning() {
    let logs = capture_warnings(|| {
        decode(200, &success(r#""NaN""#)).unwrap();
    });
    assert!(logs.contains("expires_in"), "{logs}");
    assert!(logs.contains("WARN"), "{logs}");
    assert!(
        !logs.contains("at-new") && !logs.contains("rt-new"),
        "{logs}"
    );
}

// ---- zero lifetimes ---------------------------------------------------------------------

#[test]
fn refresh_expires_in_zero_means_the_refresh_token_does_not_expire() {
    let body = r#"{"access_token":"at-new","refresh_token":"rt-offline","expires_in":300,"refresh_expires_in":0}"#;
    let set = decode(200, body).unwrap();
    assert_eq!(set.refresh_expires_at, None);
    assert_eq!(
        set.access_expires_at,
        Some(now() + time::Duration::seconds(300))
    );
}

#[test]
fn expires_in_zero_still_means_the_access_token_expires_now() {
    let body = r#"{"access_token":"at-new","expires_in":0}"#;
    assert_eq!(decode(200, body).unwrap().access_expires_at, Some(now()));
}

// ---- extreme values never panic -------------------------------------------------------

fn jwt(exp: &str) -> String {
    use base64::Engine as _;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(format!(r#"{{"sub":"acct","exp":{exp}}}"#));
    format!("eyJhbGciOiJIUzI1NiJ9.{payload}.sig")
}

#[test]
fn a_jwt_exp_at_the_edges_of_time_is_unknown_or_bounded_never_a_panic() {
    for exp in [
        i64::MIN.to_string(),
        i64::MAX.to_string(),
        u64::MAX.to_string(),
        "1e300".into(),
        "-1e300".into(),
        // Years -9999 and +9999.
        "-377705116800".into(),
        "253402300799".into(),
        "-1".into(),
    ] {
        let body = format!(
            r#"{{"access_token":"{}","refresh_token":"rt-new"}}"#,
            jwt(&exp)
        );
        let set = decode(200, &body).unwrap_or_else(|e| panic!("exp {exp}: {e}"));
        assert_eq!(set.refresh_token.unwrap().expose_secret(), "rt-new");
        if let Some(at) = set.access_expires_at {
            // Whatever is kept leaves room for the manager's arithmetic either side.
            let year = time::Duration::days(366);
            assert!(at.checked_add(year * 100).is_some(), "exp {exp}: {at}");
            assert!(at.checked_sub(year * 100).is_some(), "exp {exp}: {at}");
        }
    }
    // A sane past `exp` is kept as it is: the token has expired.
    let body = format!(r#"{{"access_token":"{}"}}"#, jwt("1700000000"));
    assert_eq!(
        decode(200, &body).unwrap().access_expires_at,
        Some(datetime!(2023-11-14 22:13:20 UTC))
    );
}

/// A lifetime that would end past the year 9000 is nonsense, not "for ever": an unknown
/// expiry (so a configured default lifetime and the unknown-expiry note apply), never an
/// overflow. A long but representable one is kept, with room for the manager's arithmetic.
#[test]
fn extreme_lifetimes_are_unknown_and_long_ones_leave_room_for_arithmetic() {
    for expiry in [
        u64::MAX.to_string(),
        i64::MAX.to_string(),
        (i64::MAX as u64 + 1).to_string(),
        "1.7e19".into(),
    ] {
        let set = decode(200, &success(&expiry)).unwrap();
        assert_eq!(set.access_expires_at, None, "{expiry}");
        assert_eq!(set.access_token.expose_secret(), "at-new", "{expiry}");
    }
    let thousand_years = (365u64 * 1000 * 86_400).to_string();
    let at = decode(200, &success(&thousand_years))
        .unwrap()
        .access_expires_at
        .expect("a long lifetime is kept");
    assert!(at > now() + time::Duration::days(365 * 999), "{at}");
    assert!(
        at.checked_add(time::Duration::days(366 * 100)).is_some(),
        "{at}"
    );
}

// ---- Retry-After never overflows -------------------------------------------------------

#[test]
fn a_huge_retry_after_is_clamped() {
    let mut response = answer(503, "overloaded");
    for value in ["18446744073709551615", "99999999999999999999999", "86401"] {
        response
            .headers_mut()
            .insert(http::header::RETRY_AFTER, value.parse().unwrap());
        let refresh = refresh();
        let error = Error::from(
            decode_response::<Refresh>(&response, now(), &refresh.secrets()).unwrap_err(),
        );
        assert_eq!(error.kind(), ErrorKind::Transient, "{value}");
        assert_eq!(
            error.retry_after(),
            Some(std::time::Duration::from_secs(24 * 60 * 60)),
            "{value}"
        );
        // The clamped delay can be added to any instant.
        let _ = std::time::Instant::now() + error.retry_after().unwrap();
        let _ = now() + error.retry_after().unwrap();
    }
}

// ---- control characters ----------------------------------------------------------------

/// How a 200 with `body` that is no answer (an unknown outcome, unread) is shown.
fn no_answer(body: &str) -> String {
    let error = decode(200, body).unwrap_err();
    assert!(
        matches!(error, EndpointError::Parse { .. }),
        "{body}: {error}"
    );
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown, "{body}");
    shown(&error)
}

/// An access token with a control character cannot be sent in a header: with no refresh
/// token beside it the answer holds nothing to keep and is refused (an unknown outcome),
/// naming the field, never the value.
#[test]
fn an_unsendable_access_token_alone_is_refused_naming_the_field_not_the_value() {
    for body in [
        r#"{"access_token":"at-\r\nX-Injected: 1","expires_in":60}"#,
        r#"{"access_token":"at-new\u0000"}"#,
        r#"{"access_token":"at-\tnew","refresh_token":""}"#,
    ] {
        let text = no_answer(body);
        assert!(
            text.contains("the access token contains a control character"),
            "{text}"
        );
        for value in ["Injected", "at-new"] {
            assert!(!text.contains(value), "{value} in {text}");
        }
    }
}

/// Beside a refresh token, an access token that cannot be sent is returned as it came: the
/// refresh token must not be lost (the manager saves it and never serves the access
/// token). A refresh token with a control character is read too: it travels escaped, in a
/// body or a query.
#[test]
fn a_control_character_beside_a_refresh_token_keeps_the_answer() {
    for (body, access, refresh) in [
        (
            r#"{"access_token":"at-\r\nX-Injected: 1","refresh_token":"rt-new"}"#,
            "at-\r\nX-Injected: 1",
            "rt-new",
        ),
        (
            r#"{"access_token":"at-new\u0000","refresh_token":"rt-new"}"#,
            "at-new\0",
            "rt-new",
        ),
        (
            r#"{"access_token":"at-new","refresh_token":"rt-\nnew-secret"}"#,
            "at-new",
            "rt-\nnew-secret",
        ),
        (
            r#"{"access_token":"at-new","refresh_token":"rt-\u007fnew-secret"}"#,
            "at-new",
            "rt-\u{7f}new-secret",
        ),
    ] {
        let set = decode(200, body).unwrap();
        assert_eq!(set.access_token.expose_secret(), access, "{body}");
        assert_eq!(
            set.refresh_token.as_ref().map(|t| t.expose_secret()),
            Some(refresh),
            "{body}"
        );
    }
}

/// Such a refresh token is sent escaped at the next refresh: percent-encoded in a form body,
/// a JSON escape in a JSON one; nothing of it reaches a header.
#[test]
fn a_refresh_token_with_a_control_character_travels_escaped_in_a_body() {
    let base = url::Url::parse("https://provider.example/").unwrap();
    let session: TokenSet = TokenSet::new(AccessToken::new("at-current"))
        .with_refresh_token(RefreshToken::new("rt-\r\nX-Injected: 1\0"));
    let context = RequestContext::for_refresh(&(), &session);
    let form = Refresh::from_context(&context).unwrap();
    let request = form.encode_request(&base).unwrap();
    let body = String::from_utf8(request.body().clone()).unwrap();
    assert!(
        body.contains("refresh_token=rt-%0D%0AX-Injected%3A+1%00"),
        "{body}"
    );
    let json = UnixRefresh::from_context(&context).unwrap();
    let request = json.encode_request(&base).unwrap();
    let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(body["refresh_token"], "rt-\r\nX-Injected: 1\0", "{body}");
    for request in [form.encode_request(&base), json.encode_request(&base)] {
        let headers = format!("{:?}", request.unwrap().headers());
        assert!(!headers.contains("Injected"), "{headers}");
    }
}

// ---- empty tokens ----------------------------------------------------------------------

/// An empty (or blank) access token alone is no answer; beside a new refresh token the
/// answer is returned with the access token empty, as one that cannot be sent is: the
/// manager saves the refresh token (the one presented may be spent) and never serves the
/// access token.
#[test]
fn an_empty_access_token_is_refused_not_cached() {
    for body in [
        r#"{"access_token":"","expires_in":3600}"#,
        r#"{"access_token":"  ","refresh_token":""}"#,
    ] {
        let text = no_answer(body);
        assert!(text.contains("the access token is empty"), "{text}");
    }
    for body in [
        r#"{"access_token":"","refresh_token":"rt-new-secret"}"#,
        r#"{"access_token":" \t ","refresh_token":"rt-new-secret","expires_in":3600}"#,
    ] {
        let set = decode(200, body).unwrap();
        assert_eq!(set.access_token.expose_secret(), "", "{body}");
        assert_eq!(
            set.refresh_token.as_ref().map(RefreshToken::expose_secret),
            Some("rt-new-secret"),
            "{body}"
        );
    }
}

#[test]
fn a_success_answer_that_cannot_be_read_shows_none_of_the_tokens_it_may_carry() {
    // New tokens in a 2xx answer the decoder does not understand: the whole body, a text
    // body, under keys no list of token names knows.
    // Unlike the request's refresh token, which is scrubbed as a known secret.
    let new = "NEWqWeRtYuIoPaSdFgHjKlZxCvBnM1357";
    for body in [
        format!(r#""{new}""#),
        new.to_owned(),
        format!("token {new} expires 3600"),
        format!(r#"{{"data":{{"tkn":"{new}","ttl":3600}}}}"#),
        format!(r#"[{{"value":"{new}"}}]"#),
    ] {
        let error = decode(200, &body).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::OutcomeUnknown, "{body}");
        let text = shown(&error);
        for start in 0..=new.len() - 8 {
            let run = &new[start..start + 8];
            assert!(
                !text.contains(run),
                "`{run}` of the new token shows in {text}"
            );
        }
    }
    // Positive control: what is no token stays readable, on success and error statuses.
    let page = "<html><title>Service Unavailable</title> retry later</html>";
    let error = decode(200, page).unwrap_err();
    assert!(shown(&error).contains("Service Unavailable"), "{error:?}");
    let error = decode(200, r#"{"data":{"ttl":3600}}"#).unwrap_err();
    assert!(
        shown(&error).contains("ttl"),
        "the keys and shape are kept: {error:?}"
    );
    let error = decode(502, &format!("upstream said {new}")).unwrap_err();
    assert!(
        shown(&error).contains("upstream said"),
        "an error status's body keeps its text: {error:?}"
    );
}

#[test]
fn a_success_answer_that_cannot_be_read_shows_no_escaped_or_encoded_token() {
    // A token of base64 characters, in a body that is not JSON: JSON that is cut or
    // followed by more text, its `/` escaped as `\/` (as PHP writes it), or a form body
    // under a key no list of token names knows, percent-encoded.
    let new = "NEWqWeRtYu/IoPaSdFgH+jKlZxCvBnM/1357";
    let escaped = new.replace('/', "\\/");
    let encoded = new.replace('/', "%2F").replace('+', "%2B");
    for body in [
        format!(r#"{{"data":{{"tkn":"{escaped}","ttl":3600"#),
        format!(r#"{{"data":{{"tkn":"{escaped}"}}}} trailing"#),
        format!("tkn={encoded}&ttl=3600"),
    ] {
        let error = decode(200, &body).unwrap_err();
        let text = shown(&error);
        for start in 0..=new.len() - 8 {
            let run = &new[start..start + 8];
            assert!(
                !text.contains(run),
                "`{run}` of the new token shows in {text}"
            );
        }
        for part in new.split(['/', '+']) {
            assert!(
                !text.contains(part),
                "`{part}` of the new token shows in {text}"
            );
        }
    }
}

#[test]
fn a_hand_written_decoder_passing_serde_s_message_shows_no_quoted_token() {
    // serde_json quotes the offending value: here the new token, in a field of the wrong type.
    let new = "NEWqWeRtYuIoPaSdFgHjKlZxCvBnM1357";
    let body = format!(r#"{{"expires_in":"{new}"}}"#);
    let serde_reason = serde_json::from_str::<std::collections::HashMap<String, u64>>(&body)
        .unwrap_err()
        .to_string();
    assert!(
        serde_reason.contains(new),
        "positive control: {serde_reason}"
    );
    let error = EndpointError::parse(http::StatusCode::OK, serde_reason, body.as_bytes(), &[]);
    let text = shown(&error);
    assert!(!text.contains("NEWqWeRt"), "{text}");
    assert!(
        text.contains("invalid type"),
        "the rest of the reason is kept: {text}"
    );
}

#[test]
fn an_empty_refresh_token_keeps_the_previous_one() {
    let previous = session();
    let set = decode(
        200,
        r#"{"access_token":"at-new","refresh_token":"","expires_in":3600}"#,
    )
    .unwrap();
    assert_eq!(set.access_token.expose_secret(), "at-new");
    assert_eq!(set.refresh_token, None, "read as absent");
    let stored = set.or_previous(&previous);
    assert_eq!(
        stored
            .refresh_token
            .as_ref()
            .map(RefreshToken::expose_secret),
        Some(REFRESH_TOKEN)
    );
}

// ---- byte order mark -------------------------------------------------------------------

#[test]
fn a_byte_order_mark_before_the_json_costs_neither_the_pair_nor_the_error_code() {
    let set = decode(
        200,
        "\u{feff}{\"access_token\":\"at-new\",\"refresh_token\":\"rt-new\",\"expires_in\":60}",
    )
    .unwrap();
    assert_eq!(set.access_token.expose_secret(), "at-new");
    assert_eq!(
        set.refresh_token.as_ref().map(RefreshToken::expose_secret),
        Some("rt-new")
    );
    assert_eq!(
        set.access_expires_at,
        Some(now() + time::Duration::seconds(60))
    );

    let error = decode(400, "\u{feff}{\"error\":\"invalid_grant\"}").unwrap_err();
    assert!(
        matches!(error, EndpointError::Provider(ref e) if e.code == "invalid_grant"),
        "{error:?}"
    );
}

// ---- redirects -------------------------------------------------------------------------

#[test]
fn a_redirect_is_no_verdict_on_the_refresh_token_whatever_its_body() {
    for status in [301, 302, 303, 307, 308] {
        for body in [
            r#"{"error":"invalid_grant","error_description":"moved"}"#,
            r#"{"error":"invalid_client"}"#,
            "",
        ] {
            let grant = token_core::oauth::RefreshTokenGrant::new(RefreshToken::new(REFRESH_TOKEN));
            let error = decode_response::<token_core::oauth::RefreshTokenGrant>(
                &answer(status, body),
                now(),
                &grant.secrets(),
            )
            .unwrap_err();
            assert_eq!(
                error.kind(),
                ErrorKind::Rejected,
                "{status} {body}: {error}"
            );
        }
    }
}

// ---- helpers -------------------------------------------------------------------------

/// Runs `f` with a subscriber that records WARN lines, and returns them.
/// The warnings `f` logs on this thread. One global subscriber (installed once) writes each
/// line to the buffer of the thread that logged it: a thread-local default would race with
/// other tests on tracing's callsite interest cache (a callsite first hit while no subscriber
/// was interested stays off), and the warning would be lost now and then.
fn capture_warnings(f: impl FnOnce()) -> String {
    use std::cell::RefCell;
    use std::sync::{Arc, Mutex, Once};

    thread_local! {
        static CAPTURE: RefCell<Option<Arc<Mutex<Vec<u8>>>>> = const { RefCell::new(None) };
    }
    struct ThisThread;
    impl std::io::Write for ThisThread {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            CAPTURE.with(|capture| {
                if let Some(buffer) = &*capture.borrow() {
                    buffer.lock().unwrap().extend_from_slice(bytes);
                }
            });
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::WARN)
            .with_ansi(false)
            .with_writer(|| ThisThread)
            .finish();
        tracing::subscriber::set_global_default(subscriber).expect("the only subscriber");
    });
    let buffer = Arc::new(Mutex::new(Vec::new()));
    CAPTURE.with(|capture| *capture.borrow_mut() = Some(buffer.clone()));
    f();
    CAPTURE.with(|capture| *capture.borrow_mut() = None);
    String::from_utf8(buffer.lock().unwrap().clone()).unwrap()
}

/// A refresh token holding control characters (the manager keeps and presents such a token
/// now), echoed by the provider in its error answer in any spelling: raw (JSON decoded), as
/// a JSON string escapes it (`\n`, `\u0000`) in a body the codec cannot read as JSON, or
/// percent-encoded. Its runs between the control characters are short (7 characters), so
/// no run of the raw token is long enough to be matched alone: none of them shows.
#[test]
fn a_refresh_token_with_control_characters_echoed_in_an_error_shows_in_no_spelling() {
    let token = "Qz7kLmP\nWx3vBnR\r\nTy8uIoA\0Hj2gFdS";
    let runs = ["Qz7kLmP", "Wx3vBnR", "Ty8uIoA", "Hj2gFdS"];
    let session = TokenSet::<token_core::token_set::NoExtras>::new(AccessToken::new("at"))
        .with_refresh_token(RefreshToken::new(token));
    let refresh = Refresh::from_context(&RequestContext::for_refresh(&(), &session)).unwrap();
    let escaped = serde_json::to_string(token).unwrap();
    let escaped = escaped.trim_matches('"');
    let encoded: String = url::form_urlencoded::byte_serialize(token.as_bytes()).collect();
    for body in [
        format!(
            r#"{{"error":"invalid_grant","error_description":{}}}"#,
            serde_json::to_string(token).unwrap()
        ),
        format!(r#"{{"error":"invalid_grant","error_description":"unknown {escaped}"#),
        format!("<html><p>unknown refresh token {escaped}</p></html>"),
        format!("<html><p>unknown refresh token {encoded}</p></html>"),
    ] {
        let error =
            decode_response::<Refresh>(&answer(400, &body), now(), &refresh.secrets()).unwrap_err();
        let text = shown(&error);
        for run in runs {
            assert!(
                !text.contains(run),
                "`{run}` of the refresh token shows in {text}"
            );
        }
    }
}

// ---- a declared error is read whatever its other fields hold ---------------------------

#[token_endpoint(error, rename_all = "camelCase", on_status(status = 401, kind = reauth_required))]
#[derive(Debug)]
pub struct GatewayFailure {
    #[token(code)]
    pub error: String,
    #[token(message)]
    pub message: String,
    pub request_id: Option<String>,
}

#[token_endpoint(post = "/token", json, response = UnixTokens, error = GatewayFailure)]
#[derive(Debug)]
pub struct GatewayRefresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

/// The error's code (and its status) decide, as the docs' `GatewayError` declares: an
/// answer without the message, or with a request id that is a number, is still that error,
/// not an unreadable body classified by its status alone (`Rejected`, the declared re-auth
/// lost).
#[test]
fn a_declared_error_with_an_odd_or_missing_other_field_is_still_that_error() {
    for body in [
        r#"{"error":"Unauthorized"}"#,
        r#"{"error":"Unauthorized","message":"expired","requestId":12}"#,
        r#"{"error":"Unauthorized","message":null}"#,
    ] {
        let error =
            decode_response::<GatewayRefresh>(&answer(401, body), now(), &[]).expect_err(body);
        assert_eq!(error.kind(), ErrorKind::ReauthRequired, "{body}: {error}");
    }
}

/// An instant past `LATEST` (year 9892 here, which `time` can still hold) is the nonsense a
/// lifetime past it is: an unknown expiry, so the manager's default lifetime applies, as for
/// `expires_in` (`extreme_lifetimes_are_unknown...`), not a token kept fresh until the year
/// 9000.
#[test]
fn an_instant_past_latest_is_unknown_like_a_lifetime_past_it() {
    let refresh = UnixRefresh::from_context(&RequestContext::for_refresh(&(), &session())).unwrap();
    let body = r#"{"accessToken":"at-new","refreshToken":"rt-new","expiresAt":250000000000}"#;
    let set =
        decode_response::<UnixRefresh>(&answer(200, body), now(), &refresh.secrets()).unwrap();
    assert_eq!(set.access_token.expose_secret(), "at-new");
    assert_eq!(
        set.access_expires_at, None,
        "kept as {:?}",
        set.access_expires_at
    );
    // The same distance written as a lifetime is already unknown.
    let lifetime = (250_000_000_000i64 - now().unix_timestamp()).to_string();
    assert_eq!(
        decode(200, &success(&lifetime)).unwrap().access_expires_at,
        None
    );
}
