//! TikTok Shop's refresh, declared from its documents with `#[token_endpoint]` only.
//!
//! `GET /api/v2/token/refresh?app_key=..&app_secret=..&refresh_token=..&grant_type=refresh_token`
//! on `auth.tiktok-shops.com`; the answer is an envelope `{"code": 0, "message": "success",
//! "data": {"access_token", "access_token_expire_in", "refresh_token",
//! "refresh_token_expire_in", "open_id", "seller_name", "seller_base_region", "user_type",
//! "granted_scopes"}, "request_id"}` whose two `*_expire_in` are UNIX timestamps, not
//! lifetimes; errors are a non-zero integer `code` on HTTP 200.
//!
//! Assumptions (the pages found are SDK samples and partner guides, not the reference):
//! `36004004` is an invalid refresh token (re-authorize), `36004005` an expired one,
//! `36004002` a wrong app key or secret, `36009003` an internal error (retried); a rate
//! limit is HTTP 429, transient whatever its body.
//!
//! Not declarable: the top-level `request_id` as an extra (extras are read inside the
//! `data` envelope only).

use std::sync::Arc;

use http::StatusCode;
use time::OffsetDateTime;
use time::macros::datetime;
use token_core::codec::{Endpoint, ErrorResponse, FromContext, RequestContext, decode_response};
use token_core::expiry::UnixTime;
use token_core::provider::RefreshProvider;
use token_core::sandbox::Sandbox;
use token_core::{
    clock::ManualClock, error::EndpointError, error::Error, error::ErrorKind,
    manager::TokenManager, secret::AccessToken, secret::ClientSecret, secret::RefreshToken,
    token_endpoint, token_set::TokenSet,
};

use crate::integrator_trial::{HTML, answer, assert_hidden, huge_body, shown};

#[token_endpoint(config)]
#[derive(Clone, Debug, PartialEq)]
pub struct TikTokConfig {
    pub app_key: String,
    pub app_secret: ClientSecret,
}

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seller {
    pub open_id: Option<String>,
    pub seller_name: Option<String>,
    pub seller_base_region: Option<String>,
    pub user_type: Option<i64>,
    pub granted_scopes: Option<Vec<String>>,
}

#[token_endpoint(response, extras = Seller, envelope = "data", body(name = "code", value = 0),
                 body(name = "message", value = "success"))]
#[derive(Debug)]
pub struct TikTokTokens {
    pub access_token: AccessToken,
    /// A UNIX timestamp, whatever its name says.
    #[token(expiry)]
    pub access_token_expire_in: Option<UnixTime>,
    pub refresh_token: Option<RefreshToken>,
    #[token(refresh_expiry)]
    pub refresh_token_expire_in: Option<UnixTime>,
    pub seller: Seller,
}

#[token_endpoint(error_code)]
#[derive(Clone, Debug, PartialEq)]
pub enum TikTokCode {
    #[token(code = 36004004, kind = reauth_required, refusal = invalid_refresh_token)]
    InvalidRefreshToken,
    #[token(code = 36004005, kind = reauth_required, refusal = expired_refresh_token)]
    ExpiredRefreshToken,
    #[token(code = 36004002, kind = misconfigured, refusal(unknown_client, bad_request))]
    InvalidApp,
    #[token(code = 36009003, kind = transient, refusal = server_error)]
    InternalError,
    #[token(other)]
    Other(String),
}

#[token_endpoint(error, status = 200, success_codes(0))]
#[derive(Debug)]
pub struct TikTokError {
    #[token(code)]
    pub code: TikTokCode,
    #[token(message)]
    pub message: Option<String>,
    pub request_id: Option<String>,
}

#[token_endpoint(get = "/api/v2/token/refresh", response = TikTokTokens, error = TikTokError,
                 config = TikTokConfig, provider = "tiktok_shop",
                 query(name = "grant_type", value = "refresh_token"))]
#[derive(Debug)]
pub struct TikTokRefresh {
    #[token(query, from = config.app_key)]
    pub app_key: String,
    #[token(query, from = config.app_secret)]
    pub app_secret: ClientSecret,
    #[token(query, from = refresh_token)]
    pub refresh_token: RefreshToken,
}

const APP_SECRET: &str = "e59af819cc8e3f1b0c8e2a7c4d6b1f3a9e5d7c2b";
const REFRESH_TOKEN: &str = "GCP_hAxxZzQAAAAA2PqDD_wQ4AbHO9wxdIU8hjbJDvCwMlnC";

fn config() -> TikTokConfig {
    TikTokConfig::new("6kc76cungq9pl", APP_SECRET)
}

fn now() -> OffsetDateTime {
    datetime!(2024-07-23 12:00 UTC)
}

fn refresh() -> TikTokRefresh {
    let (config, session) = (config(), session());
    TikTokRefresh::from_context(&RequestContext::for_refresh(&config, &session)).unwrap()
}

fn session() -> TokenSet<Seller> {
    TokenSet::new(AccessToken::new("at-old")).with_refresh_token(RefreshToken::new(REFRESH_TOKEN))
}

fn decode(status: u16, body: &[u8]) -> Result<TokenSet<Seller>, EndpointError> {
    let refresh = refresh();
    decode_response::<TikTokRefresh>(&answer(status, body), now(), &refresh.secrets())
}

const SAMPLE: &str = r#"{
  "code": 0,
  "message": "success",
  "data": {
    "access_token": "GCP_3nABCDEF",
    "access_token_expire_in": 1722342011,
    "refresh_token": "GCP_hAGHIJKL",
    "refresh_token_expire_in": 4841467787,
    "open_id": "_VIz.abc",
    "seller_name": "Origeens",
    "seller_base_region": "GB",
    "user_type": 0,
    "granted_scopes": ["seller.authorization.info", "seller.order.info"]
  },
  "request_id": "20240723123456ABCDEF"
}"#;

#[test]
fn the_request_carries_the_documented_query_and_lists_its_secrets() {
    let request = refresh()
        .encode_request(&"https://auth.tiktok-shops.com".parse().unwrap())
        .unwrap();
    assert_eq!(request.method(), "GET");
    assert_eq!(
        request.uri().to_string(),
        format!(
            "https://auth.tiktok-shops.com/api/v2/token/refresh?grant_type=refresh_token&app_key=6kc76cungq9pl&app_secret={APP_SECRET}&refresh_token={REFRESH_TOKEN}"
        )
    );
    assert!(request.body().is_empty());
    let refresh = refresh();
    assert_eq!(refresh.secrets(), [APP_SECRET, REFRESH_TOKEN]);
    assert!(!format!("{refresh:?}").contains(APP_SECRET));
}

#[test]
fn the_documented_sample_decodes_with_instants_not_lifetimes() {
    let set = decode(200, SAMPLE.as_bytes()).unwrap();
    assert_eq!(set.access_token.expose_secret(), "GCP_3nABCDEF");
    assert_eq!(
        set.access_expires_at,
        Some(datetime!(2024-07-30 12:20:11 UTC))
    );
    // 4841467787 is 2123: kept as far as the library keeps instants, not read as seconds.
    assert!(set.refresh_expires_at.unwrap() > datetime!(2100-01-01 0:00 UTC));
    assert_eq!(set.extras.seller_name.as_deref(), Some("Origeens"));
    assert_eq!(set.extras.granted_scopes.as_ref().map(Vec::len), Some(2));
    // `"code": "0"` is the same success as `0`, and so is no code at all.
    let text_code = SAMPLE.replace(r#""code": 0"#, r#""code": "0""#);
    assert_eq!(
        decode(200, text_code.as_bytes()).unwrap().access_token,
        set.access_token
    );
    let no_code = SAMPLE.replace(r#""code": 0,"#, "");
    assert_eq!(
        decode(200, no_code.as_bytes()).unwrap().access_token,
        set.access_token
    );
}

#[test]
fn the_documented_errors_are_classified_by_their_code() {
    let cases = [
        (
            r#"{"code":36004004,"message":"invalid refresh token","data":null,"request_id":"r1"}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"code":"36004004","message":"invalid refresh token","request_id":"r1"}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"code":36004005,"message":"refresh token expired","data":{},"request_id":"r2"}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"code":36004002,"message":"invalid app_key or app_secret","request_id":"r3"}"#,
            ErrorKind::Misconfigured,
        ),
        (
            r#"{"code":36009003,"message":"internal error","request_id":"r4"}"#,
            ErrorKind::Transient,
        ),
        (
            r#"{"code":105001,"message":"unknown","request_id":"r5"}"#,
            ErrorKind::Rejected,
        ),
    ];
    for (body, kind) in cases {
        let error = decode(200, body.as_bytes()).unwrap_err();
        assert_eq!(error.kind(), kind, "{body}");
    }
    let limited = decode(429, br#"{"code":36009999,"message":"too many requests"}"#).unwrap_err();
    assert_eq!(limited.kind(), ErrorKind::Transient);
    let answer = TikTokError::from_refusal(
        token_core::codec::RefusalReason::InvalidRefreshToken,
        "invalid refresh token",
    );
    assert_eq!(answer.encode_error().0, StatusCode::OK);
    assert!(
        String::from_utf8(answer.encode_error().1)
            .unwrap()
            .starts_with(r#"{"code":36004004"#)
    );
}

#[test]
fn hostile_answers_are_typed_errors_that_never_show_a_token() {
    let bodies: Vec<(u16, Vec<u8>)> = vec![
        (200, HTML.to_vec()),
        (503, HTML.to_vec()),
        (200, br#"{"code":0,"message":"success"}"#.to_vec()),
        (
            200,
            br#"{"code":0,"message":"success","data":null}"#.to_vec(),
        ),
        (200, br#"{"code":0,"data":{"access_token":42}}"#.to_vec()),
        (200, br#"{"code":0,"data":{"access_token":""}}"#.to_vec()),
        (200, br#"{"code":0,"data":"GCP_token_as_text"}"#.to_vec()),
        (200, br#"{"code":null,"message":"success"}"#.to_vec()),
        (200, br#"{"code":1e400,"message":"?"}"#.to_vec()),
        (200, br#"{"code":36004004.5,"message":"?"}"#.to_vec()),
        (200, br#"{"code":true}"#.to_vec()),
        (
            200,
            format!(r#"{{"code":36004004,"message":"{REFRESH_TOKEN} is invalid"}}"#).into_bytes(),
        ),
        (
            200,
            format!(r#"{{"code":0,"data":{{"access_token":"at\u0000{REFRESH_TOKEN}"}}}}"#)
                .into_bytes(),
        ),
        (200, b"".to_vec()),
    ];
    for (status, body) in bodies {
        let error = decode(status, &body).unwrap_err();
        let text = shown(&error);
        assert_hidden(&text, &[REFRESH_TOKEN, APP_SECRET]);
        assert!(text.len() < 8 << 10, "{} bytes shown", text.len());
    }
    for expiry in ["1e400", "-5", r#""soon""#, "null", r#""""#, "1.5e300"] {
        let body = format!(
            r#"{{"code":0,"data":{{"access_token":"at","access_token_expire_in":{expiry}}}}}"#
        );
        assert_eq!(
            decode(200, body.as_bytes()).unwrap().access_expires_at,
            None,
            "{expiry}"
        );
    }
    let huge = huge_body();
    let error = decode(200, &huge[..huge.len() - 2]).unwrap_err();
    assert!(shown(&error).len() < 8 << 10);
}

#[tokio::test]
async fn the_manager_refreshes_over_the_sandbox_and_a_wrong_secret_is_refused() {
    let clock = ManualClock::new(now());
    let sandbox = Sandbox::builder()
        .clock(Arc::new(clock.clone()))
        .oauth_routes(false)
        .serve::<TikTokRefresh>(&config())
        .start()
        .await
        .unwrap();
    let manager_for = |config: TikTokConfig| {
        TokenManager::builder(RefreshProvider::<TikTokRefresh>::new(
            sandbox.base_url(),
            config,
        ))
        .shared_client(sandbox.client())
        .clock(Arc::new(clock.clone()))
        .build()
        .unwrap()
    };
    let manager = manager_for(config());
    let issued = sandbox
        .issue_with(
            "seller",
            serde_json::json!({"open_id": "_VIz.abc", "seller_name": "Origeens"}),
        )
        .await
        .unwrap();
    let first: TokenSet<Seller> = TokenSet::from_stored(issued).unwrap();
    manager.insert("seller", first.clone()).await.unwrap();
    clock.advance(time::Duration::hours(2));
    let second = manager.token_set("seller").await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.extras.seller_name.as_deref(), Some("Origeens"));
    assert_eq!(sandbox.calls(TikTokRefresh::PATH), 1);
    // The instants the sandbox wrote are read back as instants.
    assert!(second.access_expires_at.unwrap() > clock_now(&clock));

    let stranger = manager_for(TikTokConfig::new("6kc76cungq9pl", "not-the-app-secret"));
    let issued = sandbox.issue("other").await.unwrap();
    stranger
        .insert("other", TokenSet::from_stored(issued).unwrap())
        .await
        .unwrap();
    clock.advance(time::Duration::hours(2));
    let error = stranger.access_token("other").await.unwrap_err();
    assert_eq!(
        (error.kind(), error.provider_code()),
        (ErrorKind::Misconfigured, Some("36004002"))
    );
    assert!(!format!("{error} {error:?}").contains("not-the-app-secret"));
    let Error::Endpoint(EndpointError::Provider(_)) = error else {
        panic!("a provider error: {error:?}")
    };
}

fn clock_now(clock: &ManualClock) -> OffsetDateTime {
    token_core::clock::Clock::now(clock)
}

/// Tokens in an answer that is not taken (unreadable, or not a 2xx) are no known secret of
/// the request, and still never show in its error.
#[test]
fn fresh_tokens_in_an_answer_not_taken_never_show() {
    let fresh_access = "GCP_3nAbCdEfGhIjKlMnOpQrStUvWxYz0123456789";
    let fresh_refresh = "GCP_hAzYxWvUtSrQpOnMlKjIhGfEdCbA9876543210";
    for status in [200, 400, 401, 500, 503] {
        for body in [
            format!(
                r#"{{"code":0,"message":"success","data":{{"access_token":"{fresh_access}","refresh_token":"{fresh_refresh}","access_token_expire_in":"x"}},"oops":}}"#
            ),
            format!(
                r#"{{"code":0,"message":"success","data":{{"access_token":"{fresh_access}","refresh_token":"{fresh_refresh}"}}}}"#
            ),
            format!(
                r#"{{"code":36004004,"message":"bad","data":{{"access_token":"{fresh_access}"}}}}"#
            ),
            format!(r#"<html>access_token={fresh_access}&refresh_token={fresh_refresh}</html>"#),
        ] {
            match decode(status, body.as_bytes()) {
                Ok(_) => assert_eq!(status, 200),
                Err(error) => {
                    assert_hidden(&shown(&error), &[fresh_access, fresh_refresh]);
                }
            }
        }
    }
}
