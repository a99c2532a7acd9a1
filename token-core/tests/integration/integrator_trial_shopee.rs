//! Shopee Open Platform v2, declared from its documents with `#[token_endpoint]` only.
//!
//! `POST /api/v2/auth/access_token/get?partner_id=..&timestamp=..&sign=..` with the JSON body
//! `{"refresh_token", "partner_id", "shop_id"}` (integers); `sign` is the lower-hex
//! HMAC-SHA256, keyed with the partner key, of partner_id + path + timestamp (UNIX seconds).
//! Success: `{"error": "", "message": "", "access_token", "refresh_token", "expire_in",
//! "request_id", ...}`; errors `{"error": "error_auth", "message", "request_id"}` on HTTP 200
//! or 4xx.
//!
//! Assumptions (the public pages found are partner guides and SDK samples, not Shopee's
//! reference): `error_auth` is a dead refresh token or an expired shop authorization
//! (re-authorize), `error_param` a wrong parameter such as an unknown partner_id,
//! `error_sign` a wrong partner key, `error_server` and `error_too_many_request` transient;
//! the answer also carries `partner_id` and `shop_id`, and the access token lives 4 hours.
//! `error_auth` also covers other refusals of the shop's authorization; only the message
//! tells them apart, and the kind cannot be declared by message.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use time::OffsetDateTime;
use time::macros::datetime;
use token_core::codec::{
    Endpoint, ErrorResponse, FromContext, RequestContext, SignedRequestError, decode_response,
};
use token_core::expiry::ExpiresIn;
use token_core::provider::RefreshProvider;
use token_core::sandbox::Sandbox;
use token_core::{
    clock::ManualClock, error::EndpointError, error::Error, error::ErrorKind,
    manager::TokenManager, secret::AccessToken, secret::ClientSecret, secret::RefreshToken,
    token_endpoint, token_set::TokenSet,
};

#[token_endpoint(config)]
#[derive(Clone, Debug, PartialEq)]
pub struct ShopeeConfig {
    pub partner_id: i64,
    pub partner_key: ClientSecret,
}

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shop {
    #[token(keep)]
    pub shop_id: Option<i64>,
    pub request_id: Option<String>,
}

/// The success answer: `"error": ""` and `"message": ""` are written by the server.
#[token_endpoint(response, extras = Shop, body(name = "error", value = ""),
                 body(name = "message", value = ""))]
#[derive(Debug)]
pub struct ShopeeTokens {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    #[token(expiry)]
    pub expire_in: Option<ExpiresIn>,
    pub shop: Shop,
}

#[token_endpoint(error_code, rename_all = "snake_case")]
#[derive(Clone, Debug, PartialEq)]
pub enum ShopeeCode {
    /// A wrong or missing parameter (an unknown partner_id).
    #[token(kind = misconfigured, refusal(bad_request, unknown_client))]
    ErrorParam,
    /// The shop's authorization is gone: a dead refresh token, an expired authorization.
    #[token(kind = reauth_required, refusal(invalid_refresh_token, expired_refresh_token))]
    ErrorAuth,
    #[token(kind = misconfigured, refusal = bad_signature)]
    ErrorSign,
    #[token(kind = transient, refusal = server_error)]
    ErrorServer,
    #[token(kind = transient)]
    ErrorTooManyRequest,
    #[token(other)]
    Other(String),
}

#[token_endpoint(error, rename_all = "snake_case")] // `"error": ""` is always a success
#[derive(Debug)]
pub struct ShopeeError {
    #[token(code)]
    pub error: ShopeeCode,
    #[token(message)]
    pub message: Option<String>,
    pub request_id: Option<String>,
}

#[token_endpoint(post = "/api/v2/auth/access_token/get", json, response = ShopeeTokens,
                 error = ShopeeError, config = ShopeeConfig, extras = Shop, provider = "shopee",
                 sign(hmac_sha256, over(query("partner_id"), path, timestamp), encoding = hex_lower,
                      into = query("sign")))]
#[derive(Debug)]
pub struct ShopeeRefresh {
    #[token(query, rename = "partner_id", from = config.partner_id)]
    pub partner_id_query: i64,
    #[token(query, from = now_unix)]
    pub timestamp: i64,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(from = config.partner_id)]
    pub partner_id: i64,
    #[token(from = extras.shop_id)]
    pub shop_id: Option<i64>,
    #[token(signing_key, from = config.partner_key)]
    pub partner_key: ClientSecret,
}

use crate::integrator_trial::{HTML, answer, assert_hidden, huge_body, shown};

const PARTNER_KEY: &str = "1391fd986fe8ec7569bebed75b0c33ee35eb5a305bed7038657a5cd5f75b1c88";
const REFRESH_TOKEN: &str = "594741416d76724f4a544d4a4c4a734e";

fn config() -> ShopeeConfig {
    ShopeeConfig::new(2006566, PARTNER_KEY)
}

fn now() -> OffsetDateTime {
    datetime!(2023-04-12 08:00 UTC)
}

fn session() -> TokenSet<Shop> {
    let mut set = TokenSet::<Shop>::new(AccessToken::new("at-old"))
        .with_refresh_token(RefreshToken::new(REFRESH_TOKEN));
    set.extras.shop_id = Some(1234567);
    set
}

fn refresh() -> ShopeeRefresh {
    let (config, session) = (config(), session());
    let cx = RequestContext::for_refresh(&config, &session).with_now(now());
    ShopeeRefresh::from_context(&cx).unwrap()
}

fn decode(status: u16, body: &[u8]) -> Result<TokenSet<Shop>, EndpointError> {
    let refresh = refresh();
    decode_response::<ShopeeRefresh>(&answer(status, body), now(), &refresh.secrets())
}

#[test]
fn the_request_is_the_documented_one_signed_over_partner_id_path_and_timestamp() {
    let request = refresh()
        .encode_request(&"https://partner.shopeemobile.com".parse().unwrap())
        .unwrap();
    // echo -n "2006566/api/v2/auth/access_token/get1681286400" | openssl dgst -sha256 -hmac <key>
    let sign = "f8ea905de5335b6acb089321c0b007623d74d75c055226a7921a2b7749cd0941";
    assert_eq!(
        request.uri().to_string(),
        format!(
            "https://partner.shopeemobile.com/api/v2/auth/access_token/get?partner_id=2006566&timestamp=1681286400&sign={sign}"
        )
    );
    let body: serde_json::Value = serde_json::from_slice(request.body()).unwrap();
    assert_eq!(
        body,
        serde_json::json!({"refresh_token": REFRESH_TOKEN, "partner_id": 2006566, "shop_id": 1234567})
    );
    let shown = format!("{:?}", refresh());
    assert!(
        !shown.contains(PARTNER_KEY) && !shown.contains(REFRESH_TOKEN),
        "{shown}"
    );
    assert_eq!(refresh().secrets(), [REFRESH_TOKEN, PARTNER_KEY]);
    // The server side checks it with the same declaration.
    let key = ClientSecret::new(PARTNER_KEY);
    assert_eq!(
        ShopeeRefresh::decode_signed_request(&request, &key)
            .unwrap()
            .shop_id,
        Some(1234567)
    );
    assert!(matches!(
        ShopeeRefresh::decode_signed_request(&request, &ClientSecret::new("guess")),
        Err(SignedRequestError::BadSignature(_))
    ));
}

#[test]
fn the_documented_success_with_an_empty_error_is_a_success() {
    let body = br#"{"refresh_token":"4a4b4e6c48554e4a4a6c4f4e7a417774","access_token":"6e746b6a6f53706b4a6e4d4d6a7a4151","expire_in":14400,"request_id":"d6c7eac3a3a0f6d1a2f1b0e0e7e1d2c3","error":"","message":"","partner_id":2006566,"shop_id":1234567}"#;
    let set = decode(200, body).unwrap();
    assert_eq!(
        set.access_token.expose_secret(),
        "6e746b6a6f53706b4a6e4d4d6a7a4151"
    );
    assert_eq!(
        set.refresh_token.as_ref().map(RefreshToken::expose_secret),
        Some("4a4b4e6c48554e4a4a6c4f4e7a417774")
    );
    assert_eq!(
        set.access_expires_at,
        Some(now() + time::Duration::hours(4))
    );
    assert_eq!(set.extras.shop_id, Some(1234567));
    assert_eq!(
        set.extras.request_id.as_deref(),
        Some("d6c7eac3a3a0f6d1a2f1b0e0e7e1d2c3")
    );
    // `"error": null` and no `error` at all are successes too.
    for body in [
        &br#"{"access_token":"at","expire_in":14400,"error":null}"#[..],
        br#"{"access_token":"at","expire_in":14400}"#,
    ] {
        assert_eq!(
            decode(200, body).unwrap().access_token.expose_secret(),
            "at"
        );
    }
}

#[test]
fn the_documented_errors_are_classified_by_their_code_on_200_and_4xx() {
    let cases = [
        (
            r#"{"error":"error_auth","message":"Invalid refresh_token.","request_id":"a1"}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"error":"error_param","message":"Wrong partner_id.","request_id":"a2"}"#,
            ErrorKind::Misconfigured,
        ),
        (
            r#"{"error":"error_sign","message":"Wrong sign.","request_id":"a3"}"#,
            ErrorKind::Misconfigured,
        ),
        (
            r#"{"error":"error_server","message":"Something wrong.","request_id":"a4"}"#,
            ErrorKind::Transient,
        ),
        (
            r#"{"error":"error_too_many_request","message":"Too many requests.","request_id":"a5"}"#,
            ErrorKind::Transient,
        ),
    ];
    for (body, kind) in cases {
        for status in [200, 400, 403] {
            let error = decode(status, body.as_bytes()).unwrap_err();
            assert_eq!(error.kind(), kind, "{status} {body}");
            let Error::Endpoint(EndpointError::Provider(provider)) = Error::from(error) else {
                panic!("a provider error: {body}")
            };
            assert!(body.contains(&provider.code), "{}", provider.code);
        }
    }
    // An unknown code on HTTP 200 is still the provider's refusal, not a success.
    let unknown = decode(200, br#"{"error":"error_new","message":"?"}"#).unwrap_err();
    assert_eq!(unknown.kind(), ErrorKind::Rejected);
    // The sandbox's answer to a refusal is the declared code.
    let refused = ShopeeError::from_refusal(
        token_core::codec::RefusalReason::BadSignature,
        "Wrong sign.",
    );
    assert_eq!(refused.error, ShopeeCode::ErrorSign);
    assert_eq!(refused.encode_error().0, StatusCode::BAD_REQUEST);
}

#[test]
fn hostile_answers_are_typed_errors_that_never_show_a_token() {
    let bodies: Vec<(u16, Vec<u8>)> = vec![
        (200, HTML.to_vec()),
        (502, HTML.to_vec()),
        (200, format!("<html>{REFRESH_TOKEN}</html>").into_bytes()),
        (200, br#"{"error":"","message":""}"#.to_vec()),
        (200, br#"{"error":"","access_token":12345}"#.to_vec()),
        (200, br#"{"error":"","access_token":null}"#.to_vec()),
        (200, br#"{"error":"","access_token":""}"#.to_vec()),
        (200, br#"{"error":"","access_token":["a"]}"#.to_vec()),
        (200, b"".to_vec()),
        (200, b"[]".to_vec()),
        (200, b"null".to_vec()),
        (
            200,
            format!(r#"{{"error":"{REFRESH_TOKEN}","message":"{REFRESH_TOKEN} is dead"}}"#)
                .into_bytes(),
        ),
        (200, br#"{"error":12,"message":"numeric"}"#.to_vec()),
        (200, br#"{"error":{"nested":true}}"#.to_vec()),
    ];
    for (status, body) in bodies {
        let error = decode(status, &body).unwrap_err();
        let text = shown(&error);
        assert_hidden(&text, &[REFRESH_TOKEN, PARTNER_KEY]);
        assert!(text.len() < 8 << 10, "{} bytes shown", text.len());
    }
    // An empty refresh token is none: the session keeps its own.
    let set = decode(
        200,
        br#"{"error":"","access_token":"at","refresh_token":"","expire_in":14400}"#,
    )
    .unwrap();
    assert_eq!(set.refresh_token, None);
    // An error whose code is empty on a 4xx is no provider code: the status decides.
    let error = decode(403, br#"{"error":"","message":"forbidden"}"#).unwrap_err();
    assert!(matches!(error, EndpointError::Parse { .. }), "{error:?}");
    // An odd expiry never costs the tokens: 1e400, a negative, text.

    for expiry in ["1e400", "-5", r#""soon""#, "null", r#""""#] {
        let body = format!(r#"{{"error":"","access_token":"at","expire_in":{expiry}}}"#);
        let set = decode(200, body.as_bytes()).unwrap();
        assert_eq!(set.access_expires_at, None, "{expiry}");
    }
    // A huge answer that cannot be read is bounded in what it shows.
    let huge = huge_body();
    let error = decode(200, &huge[..huge.len() - 2]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown);
    assert!(shown(&error).len() < 8 << 10);
}

#[tokio::test]
async fn the_manager_refreshes_over_the_sandbox_and_a_wrong_key_is_refused() {
    let clock = ManualClock::new(now());
    let sandbox = Sandbox::builder()
        .clock(Arc::new(clock.clone()))
        .oauth_routes(false)
        .serve::<ShopeeRefresh>(&config())
        .start()
        .await
        .unwrap();
    let manager_for = |config: ShopeeConfig| {
        TokenManager::builder(RefreshProvider::<ShopeeRefresh>::new(
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
        .issue_with("shop", serde_json::json!({"shop_id": 1234567}))
        .await
        .unwrap();
    let first: TokenSet<Shop> = TokenSet::from_stored(issued).unwrap();
    manager.insert("shop", first.clone()).await.unwrap();
    clock.advance(time::Duration::hours(2));
    let second = manager.token_set("shop").await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(second.extras.shop_id, Some(1234567));
    assert_eq!(sandbox.calls(ShopeeRefresh::PATH), 1);
    assert!(
        sandbox
            .issuer()
            .authenticate(second.access_token.expose_secret())
            .await
            .is_ok()
    );

    let stranger = manager_for(ShopeeConfig::new(2006566, "not-the-partner-key"));
    let issued = sandbox
        .issue_with("other", serde_json::json!({"shop_id": 7}))
        .await
        .unwrap();
    stranger
        .insert("other", TokenSet::from_stored(issued).unwrap())
        .await
        .unwrap();
    clock.advance(time::Duration::hours(2));
    let error = stranger.access_token("other").await.unwrap_err();
    assert_eq!(
        (error.kind(), error.provider_code()),
        (ErrorKind::Misconfigured, Some("error_sign"))
    );
    assert!(!format!("{error} {error:?}").contains("not-the-partner-key"));
    let _ = Duration::ZERO;
}
