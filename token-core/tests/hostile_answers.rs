//! What the client side does with hostile or odd provider answers, through the code
//! `#[token_endpoint]` generates and `codec::decode_response`:
//!
//! - provider-supplied text (the error code, the message, a raw body) never shows a known
//!   secret, whole or in part (any run of 8 or more of its characters);
//! - an odd expiry (negative, huge, `"NaN"`, the wrong type) or a duplicate key never costs
//!   the tokens of a success answer: the expiry becomes unknown, with a warning;
//! - `refresh_expires_in: 0` is "no refresh expiry", `expires_in: 0` stays "expires now";
//! - extreme instants and `Retry-After` values never panic;
//! - a token carrying a control character is refused, naming the field, never the value.

use http::StatusCode;
use time::OffsetDateTime;
use time::macros::datetime;
use token_core::codec::{Endpoint, FromContext, RequestContext, decode_response};
use token_core::expiry::{ExpiresIn, UnixTime};
use token_core::{
    AccessToken, EndpointError, Error, ErrorKind, RefreshToken, TokenSet, token_endpoint,
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
