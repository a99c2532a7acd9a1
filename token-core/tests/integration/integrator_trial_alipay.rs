//! Alipay's open platform `alipay.system.oauth.token` with `grant_type=refresh_token`,
//! declared from its documents with `#[token_endpoint]` only.
//!
//! Verified in the public reference (opendocs `alipay.system.oauth.token`, its mirrors and
//! the signing guide): `POST https://openapi.alipay.com/gateway.do`, every parameter a form
//! field: the public `app_id`, `method` (`alipay.system.oauth.token`), `format` (`JSON`),
//! `charset`, `sign_type` (`RSA2`), `timestamp` (`yyyy-MM-dd HH:mm:ss`, China time),
//! `version` (`1.0`) and `sign`, and the business `grant_type` and `refresh_token`.
//! `sign` is the Base64 SHA256withRSA signature, with the app's private key, of every
//! parameter but `sign` (empty ones left out) sorted by name and written
//! `name=value` joined by `&`, the values not URL-encoded. The answer is the object under
//! `alipay_system_oauth_token_response` (`user_id`, `access_token`, `expires_in` and
//! `re_expires_in` as strings of seconds, `refresh_token`), beside Alipay's `sign` of it; an
//! error is the object under `error_response`, on HTTP 200: the gateway's `code` and `msg`
//! (`40002` `Invalid Arguments`, `20000` `Service Currently Unavailable`) and the business
//! `sub_code` and `sub_msg`, which say what went wrong: `isv.refresh-token-invalid` (wrong
//! or spent) and `isv.refresh-token-time-out` (expired) ask for a new authorization,
//! `isv.unmatched-app-id` is another app's token, `isv.grant-type-invalid` a wrong
//! `grant_type`, `isp.unknow-error` is to be retried.
//!
//! Assumptions: a refresh returns a new refresh token and the old one dies (the sandbox
//! rotates); `isv.invalid-signature` (the gateway's answer to a bad `sign`) is a
//! misconfiguration; the business `sub_code` is present on every error, so it is the code
//! the kind is read from; `isv.refreshed-token-invalid` ("refresh again with the returned
//! token") is left to the catch-all. The parameters travel in the body; Alipay's SDKs put the
//! public ones in the query, which the gateway takes too.
//!
//! Not declarable: checking the answer's `sign` with Alipay's public key (`sign(...)`
//! signs requests only); classifying an `error_response` that carries the gateway's `code`
//! but no `sub_code` (one code field per error: such an answer is unreadable, of unknown
//! outcome).

use std::sync::Arc;
use std::time::Duration;

use http::{Method, StatusCode};
use time::OffsetDateTime;
use time::macros::datetime;
use token_core::codec::{
    Endpoint, ErrorResponse, FromContext, RefusalReason, RequestContext, SignedRequestError,
    decode_response,
};
use token_core::expiry::ExpiresIn;
use token_core::provider::RefreshProvider;
use token_core::sandbox::endpoint::ServeEndpoint;
use token_core::sandbox::{Failure, RunningSandbox, Sandbox};
use token_core::{
    clock::Clock, clock::TokioClock, error::EndpointError, error::ErrorKind,
    manager::ManagerConfig, manager::RetryPolicy, manager::TokenManager, secret::AccessToken,
    secret::ClientSecret, secret::RefreshToken, token_endpoint, token_set::TokenSet,
};

use crate::integrator_trial::{
    HTML, answer, assert_hidden, huge_body, revoked_session_asks_for_reauthorization, shown,
};

#[token_endpoint(config)]
#[derive(Clone, Debug, PartialEq)]
pub struct AlipayConfig {
    pub app_id: String,
    /// The app's RSA private key (PKCS#8), the key of every request's `sign`.
    pub app_private_key: ClientSecret,
}

/// Whom the tokens are for, and when the authorization started.
#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct AlipayUser {
    #[token(keep)]
    pub user_id: Option<String>,
    pub auth_start: Option<String>,
}

#[token_endpoint(response, extras = AlipayUser, envelope = "alipay_system_oauth_token_response")]
#[derive(Debug)]
pub struct AlipayTokens {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    pub expires_in: Option<ExpiresIn>,
    #[token(refresh_expiry)]
    pub re_expires_in: Option<ExpiresIn>,
    pub user: AlipayUser,
}

#[token_endpoint(error_code)]
#[derive(Clone, Debug, PartialEq)]
pub enum AlipaySubCode {
    #[token(code = "isv.refresh-token-invalid", kind = reauth_required, refusal = invalid_refresh_token)]
    RefreshTokenInvalid,
    #[token(code = "isv.refresh-token-time-out", kind = reauth_required, refusal = expired_refresh_token)]
    RefreshTokenTimeOut,
    #[token(code = "isv.unmatched-app-id", kind = misconfigured, refusal = unknown_client)]
    UnmatchedAppId,
    #[token(code = "isv.grant-type-invalid", kind = misconfigured, refusal = bad_request)]
    GrantTypeInvalid,
    #[token(code = "isv.invalid-signature", kind = misconfigured, refusal = bad_signature)]
    InvalidSignature,
    #[token(code = "isp.unknow-error", kind = transient, refusal = server_error)]
    UnknownError,
    Other(String),
}

#[token_endpoint(error, envelope = "error_response")]
#[derive(Debug)]
pub struct AlipayError {
    /// The gateway's code (`40002`): the same for a dead token and a wrong grant type, so a
    /// plain field; `sub_code` is the code.
    pub code: Option<String>,
    pub msg: Option<String>,
    #[token(code)]
    pub sub_code: AlipaySubCode,
    #[token(message)]
    pub sub_msg: Option<String>,
}

#[token_endpoint(post = "/gateway.do", form, response = AlipayTokens, error = AlipayError,
                 config = AlipayConfig, provider = "alipay",
                 body(name = "method", value = "alipay.system.oauth.token"),
                 body(name = "format", value = "JSON"), body(name = "charset", value = "utf-8"),
                 body(name = "sign_type", value = "RSA2"), body(name = "version", value = "1.0"),
                 body(name = "grant_type", value = "refresh_token"),
                 sign(rsa_sha256, over(sorted_params(pair = "=", join = "&")), encoding = base64, into = body("sign")))]
#[derive(Debug)]
pub struct AlipayRefresh {
    #[token(from = config.app_id)]
    pub app_id: String,
    /// China time, `2014-07-24 03:07:50`.
    #[token(from = now_datetime("+08:00"))]
    pub timestamp: String,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.app_private_key)]
    pub app_private_key: ClientSecret,
}

const APP_PRIVATE_KEY: &str = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQDBT7/dW1wRSRJNpTCdwkVy661FdIDULkRXKoVm5IRnpf59zR6Vin/MS5FmM+Z4J+XDxQ2otfqnj4nPB+kk6PNm2yDYR3fQ6yBQZib7u8aOLKUIvdFd0r4mz79UZiUwwxm2/jwhtqqVNVARPeVXaRSDUDsfIyLhywlQ0lW1jWhs9EsX4aoMPOhxDv7xz/fSRI4b0frI3qBWDL6cvZAAmPQ0LQx+/n7+fsS5ljovti3fV/N/Sn6ubAjCuvcYu0P59WD0Zzyn2XDMS3xjXQ1C5tAeZbLRllRpZLwATE3XJp/KobN1HVyx4EdJVsyNDyrw/z8N+J+q3gNCU8+eXIcOBDT/AgMBAAECggEAQPb0o0bnL3XvnUF1D6dwoHjcj7lh7CyqUeLb1yLX7l9GIe/zpczYOwdwUzkA7IN3/20zNG4H0RT3eqiNbRaOahQdOyH1fbPu9aYG1tWZmkEdq0zjVhUTS0bI5Wu4duUyOKHDAo95T1CN2mWDM/d/6ctmOwYbXGdX953gKPXfULHJGK8rHHbd90hvjlOHf2fZ4qtV8Rwb5k17PACilfsaC39n4BIK4ADCR9vqd7Zps0HvivlKWCiyEWw2SbvY2AALYYR8cvlK2+D0BU/rnpY1oEGwGbjho0Iqs9WYjtYow799JY3g5lcjvuxhmiluHHTe/fvZimKKedVHwGCY/hK3yQKBgQDikmdOmkjxZbjy2Gq4bRuiBoXawgoqmSA9Mv/pM8k2if1mJYMmT33NhQbuMupwXIFwywvu8wCZECadO8JIQ8tqyBxSpKuAm3vtcDV4B3tn32Sdbk2oKl7pPwjEZybMxt82+MzMKbGrYSBcj9uQFNHO3dpgw+z1O9ou/m4bJpQY2QKBgQDaa21Cjs7x+wSalPOSmKo8NAP3MzaenN4q5+udh23anJxNGu5sukhh6CyWQnfQe/16+zsEt3Mm0T6gOGmXDHmT3gKsyVmh85G0nkT8NDKVakTNobamQizKjfpSe5XYuQ2Uofxk5SVNr8GXvZwGy+SumgJj0Lvv9/XVlcM5fcXVlwKBgCIw+coQ2mUjdq+fHSvLu1nOJjEHC0W2afkSUzA8Emdal5TsoEgNwuxa4NrdcCeYrif5XEmo/jQbDdi4he8l2/K3VB7cnsz/qcoBHvCIIIViXuqrFKkGC+CjFI2fC2nnsRO4pB9DQ36bX6jYRMgPfEH9lND5gC7Z42koGDGctsixAoGBAKiwJS8tSija/CBC/6btnzRl29Y0SG/RqUgr2+3K5Y3cPF7UeOWiLTrobF8UMKLkz80GcPtgj1+gZSSqzOnqqY8I/LnjvAT3L0X2okLCMXryGvdReNYI77z0UCsZ5Y3+xb1QKbTmwJuyLOr7dqBNIm2y5juevzdDIyr0wlUJjRw7AoGATUQAWWaxRQpKgSdSvmtGJkVmJIwSsNHSSrWp+pmB/esw7MB/oWPHwfUBXE1EUEGkfFEDkzIA4HjOsZL76vsyqleFAFAixQHVaHLm8yHjzZkJXkFPtAjiuns+iXhUSub8J1MF0OBJk3YE/wixKlbY3DF9uEaHrLYGqaNeeflH+j4=";
const APP_PUBLIC_KEY: &str = "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwU+/3VtcEUkSTaUwncJFcuutRXSA1C5EVyqFZuSEZ6X+fc0elYp/zEuRZjPmeCflw8UNqLX6p4+JzwfpJOjzZtsg2Ed30OsgUGYm+7vGjiylCL3RXdK+Js+/VGYlMMMZtv48IbaqlTVQET3lV2kUg1A7HyMi4csJUNJVtY1obPRLF+GqDDzocQ7+8c/30kSOG9H6yN6gVgy+nL2QAJj0NC0Mfv5+/n7EuZY6L7Yt31fzf0p+rmwIwrr3GLtD+fVg9Gc8p9lwzEt8Y10NQubQHmWy0ZZUaWS8AExN1yafyqGzdR1cseBHSVbMjQ8q8P8/Dfifqt4DQlPPnlyHDgQ0/wIDAQAB";

const APP_ID: &str = "2014072300007148";
const REFRESH_TOKEN: &str = "201208134b203fe6c11548bcabd8da5bb087a83b";

fn config() -> AlipayConfig {
    AlipayConfig::new(APP_ID, APP_PRIVATE_KEY)
}

/// 2014-07-24 03:07:50 in China (UTC+8), the documents' sample time.
fn now() -> OffsetDateTime {
    datetime!(2014-07-23 19:07:50 UTC)
}

fn session() -> TokenSet<AlipayUser> {
    TokenSet::new(AccessToken::new("at-old")).with_refresh_token(RefreshToken::new(REFRESH_TOKEN))
}

fn refresh() -> AlipayRefresh {
    let (config, session) = (config(), session());
    let cx = RequestContext::for_refresh(&config, &session).with_now(now());
    AlipayRefresh::from_context(&cx).unwrap()
}

fn decode(status: u16, body: &[u8]) -> Result<TokenSet<AlipayUser>, EndpointError> {
    decode_response::<AlipayRefresh>(&answer(status, body), now(), &refresh().secrets())
}

fn form(body: &[u8]) -> Vec<(String, String)> {
    url::form_urlencoded::parse(body).into_owned().collect()
}

#[test]
fn the_request_is_the_documented_form_signed_over_its_sorted_name_value_pairs() {
    let request = refresh()
        .encode_request(&"https://openapi.alipay.com".parse().unwrap())
        .unwrap();
    assert_eq!(request.uri(), "https://openapi.alipay.com/gateway.do");
    let fields = form(request.body());
    let field = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(field("timestamp"), Some("2014-07-24 03:07:50"));
    assert_eq!(field("method"), Some("alipay.system.oauth.token"));
    assert_eq!(field("refresh_token"), Some(REFRESH_TOKEN));
    assert_eq!(field("app_private_key"), None, "the key is never sent");
    // printf '%s' 'app_id=2014072300007148&charset=utf-8&format=JSON&grant_type=refresh_token&method=alipay.system.oauth.token&refresh_token=2012...a83b&sign_type=RSA2&timestamp=2014-07-24 03:07:50&version=1.0' \
    //   | openssl dgst -sha256 -sign app_private_key.pem | base64 -w0
    assert_eq!(
        field("sign"),
        Some(
            "K/MiR3XvuUmpRssKyP6mvSwqfBEJmwoaH5Br1+4q+hhgKbFP25lppDeaGj91GZ9jok7bGmxqMA9UTkSwQ+MrAlRTuReCWqCtfo3OUnEy7gLkQETBKUjwluqBayuCPbHtgiwVDs6WPuDU/7xLksWYDvGHaxPpyb8PR4aRprlXANNnmjXrqrfkzjeWoG8i6w9mn46aMjlgB0OXY9Ty34x2wJguWWdh/EMZAU6a1gkPMEmw+DR3hOhrB6+Kvqb9exhGeSlgTBg7Hz6QJv/s6iZN6CwNCffVS09XTHcctfRKab3hLAoQTkhnVVdWIPBqIqx8LxHz29CG9aRmqgzsnkvrKQ=="
        )
    );
    assert_eq!(refresh().secrets(), [REFRESH_TOKEN, APP_PRIVATE_KEY]);
    assert_hidden(
        &format!("{:?}", refresh()),
        &[REFRESH_TOKEN, APP_PRIVATE_KEY],
    );
    // The server side checks it with the app's public key.
    let public = ClientSecret::new(APP_PUBLIC_KEY);
    assert_eq!(
        AlipayRefresh::decode_signed_request(&request, &public)
            .unwrap()
            .timestamp,
        "2014-07-24 03:07:50"
    );
    let mut tampered = request.clone();
    *tampered.body_mut() = String::from_utf8(request.body().clone())
        .unwrap()
        .replace("version=1.0", "version=2.0")
        .into_bytes();
    assert!(matches!(
        AlipayRefresh::decode_signed_request(&tampered, &public),
        Err(SignedRequestError::BadSignature(_))
    ));
}

#[test]
fn the_documented_answer_is_read_from_its_envelope() {
    let body = br#"{
    "alipay_system_oauth_token_response": {
        "user_id": "2088102150477652",
        "access_token": "20120823ac6ffaa4d2d84e7384bf983531473993",
        "expires_in": "3600",
        "refresh_token": "20120823ac6ffdsdf2d84e7384bf983531473993",
        "re_expires_in": "3600",
        "auth_start": "2010-11-11 11:11:11"
    },
    "sign": "ERITJKEIJKJHKKKKKKKHJEREEEEEEEEEEE"
}"#;
    let set = decode(200, body).unwrap();
    assert_eq!(
        set.access_token.expose_secret(),
        "20120823ac6ffaa4d2d84e7384bf983531473993"
    );
    assert_eq!(
        set.refresh_token.as_ref().map(RefreshToken::expose_secret),
        Some("20120823ac6ffdsdf2d84e7384bf983531473993")
    );
    assert_eq!(
        set.access_expires_at,
        Some(now() + time::Duration::hours(1))
    );
    assert_eq!(
        set.refresh_expires_at,
        Some(now() + time::Duration::hours(1))
    );
    assert_eq!(set.extras.user_id.as_deref(), Some("2088102150477652"));
    assert_eq!(
        set.extras.auth_start.as_deref(),
        Some("2010-11-11 11:11:11")
    );
    // The tokens outside the envelope are no answer.
    let flat = br#"{"access_token":"at","expires_in":"3600","sign":"x"}"#;
    assert!(matches!(
        decode(200, flat),
        Err(EndpointError::Parse { .. })
    ));
}

#[test]
fn the_documented_errors_are_classified_by_their_sub_code_on_200() {
    let cases = [
        (
            r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.refresh-token-invalid","sub_msg":"刷新令牌refresh_token无效"},"sign":"x"}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.refresh-token-time-out","sub_msg":"刷新令牌refresh_token过期"}}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.unmatched-app-id","sub_msg":"app_id不匹配"}}"#,
            ErrorKind::Misconfigured,
        ),
        (
            r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.grant-type-invalid","sub_msg":"grant_type无效"}}"#,
            ErrorKind::Misconfigured,
        ),
        (
            r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.invalid-signature","sub_msg":"验签出错"}}"#,
            ErrorKind::Misconfigured,
        ),
        (
            r#"{"error_response":{"code":"20000","msg":"Service Currently Unavailable","sub_code":"isp.unknow-error","sub_msg":"系统繁忙"},"sign":"ERITJKEIJKJHKKKKKKKHJEREEEEEEEEEEE"}"#,
            ErrorKind::Transient,
        ),
        (
            r#"{"error_response":{"code":"40002","msg":"Invalid Arguments","sub_code":"isv.refreshed-token-invalid","sub_msg":"?"}}"#,
            ErrorKind::Rejected,
        ),
    ];
    for (body, kind) in cases {
        let error = decode(200, body.as_bytes()).unwrap_err();
        assert_eq!(error.kind(), kind, "{body}");
    }
    // An `error_response` without a `sub_code` has no code to classify: not a success (there
    // are no tokens), but unreadable, of unknown outcome on HTTP 200.
    let bare = br#"{"error_response":{"code":"20000","msg":"Service Currently Unavailable"}}"#;
    let error = decode(200, bare).unwrap_err();
    assert!(matches!(error, EndpointError::Parse { .. }), "{error:?}");
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown);
    let refused = AlipayError::from_refusal(RefusalReason::ExpiredRefreshToken, "expired");
    assert_eq!(refused.sub_code, AlipaySubCode::RefreshTokenTimeOut);
    assert_eq!(refused.encode_error().0, StatusCode::OK);
}

#[test]
fn hostile_answers_are_typed_errors_that_never_show_a_token() {
    let bodies: Vec<(u16, Vec<u8>)> = vec![
        (200, HTML.to_vec()),
        (502, HTML.to_vec()),
        (200, br#"{"alipay_system_oauth_token_response":{}}"#.to_vec()),
        (200, br#"{"alipay_system_oauth_token_response":{"access_token":7}}"#.to_vec()),
        (200, br#"{"alipay_system_oauth_token_response":"x"}"#.to_vec()),
        (200, br#"{"alipay_system_oauth_token_response":null}"#.to_vec()),
        (200, br#"{"error_response":{"code":"40002","sub_code":{"a":1}}}"#.to_vec()),
        (
            200,
            format!(r#"{{"error_response":{{"sub_code":"{REFRESH_TOKEN}","sub_msg":"{REFRESH_TOKEN}"}}}}"#)
                .into_bytes(),
        ),
        (200, b"".to_vec()),
        (200, b"[]".to_vec()),
    ];
    for (status, body) in bodies {
        let error = decode(status, &body).unwrap_err();
        let text = shown(&error);
        assert_hidden(&text, &[REFRESH_TOKEN, APP_PRIVATE_KEY]);
        assert!(text.len() < 8 << 10, "{} bytes shown", text.len());
    }
    let huge = huge_body();
    let error = decode(200, &huge[..huge.len() - 2]).unwrap_err();
    assert!(shown(&error).len() < 8 << 10);
}

async fn sandbox(clock: Arc<dyn Clock>) -> RunningSandbox {
    let serve = ServeEndpoint::<AlipayRefresh>::declared(&config())
        .verify_with(ClientSecret::new(APP_PUBLIC_KEY));
    Sandbox::builder()
        .clock(clock)
        .oauth_routes(false)
        .route(Method::POST, AlipayRefresh::PATH, serve)
        .start()
        .await
        .unwrap()
}

fn manager(
    sandbox: &RunningSandbox,
    clock: Arc<dyn Clock>,
    config: AlipayConfig,
) -> TokenManager<RefreshProvider<AlipayRefresh>> {
    TokenManager::builder(RefreshProvider::<AlipayRefresh>::new(
        sandbox.base_url(),
        config,
    ))
    .shared_client(sandbox.client())
    .clock(clock)
    .config(ManagerConfig::default().with_retry(
        RetryPolicy::default().with_backoff(Duration::from_millis(200), Duration::from_secs(5)),
    ))
    .build()
    .unwrap()
}

#[tokio::test(start_paused = true)]
async fn the_manager_rotates_retries_a_busy_gateway_and_asks_for_reauthorization() {
    let clock: Arc<dyn Clock> = Arc::new(TokioClock::starting_at(now()));
    let sandbox = sandbox(clock.clone()).await;
    let manager = manager(&sandbox, clock.clone(), config());
    let issued = sandbox
        .issue_with("user", serde_json::json!({"user_id": "2088102150477652"}))
        .await
        .unwrap();
    let first: TokenSet<AlipayUser> = TokenSet::from_stored(issued).unwrap();
    manager.insert("user", first.clone()).await.unwrap();

    // A refresh rotates the refresh token and keeps the user.
    tokio::time::advance(Duration::from_secs(2 * 3600)).await;
    let second = manager.token_set("user").await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.extras.user_id.as_deref(), Some("2088102150477652"));
    assert_eq!(sandbox.calls(AlipayRefresh::PATH), 1);

    // A busy gateway (HTTP 200, `isp.unknow-error`) is retried.
    tokio::time::advance(Duration::from_secs(2 * 3600)).await;
    let busy = serde_json::json!({"error_response": {"code": "20000",
        "msg": "Service Currently Unavailable", "sub_code": "isp.unknow-error", "sub_msg": "系统繁忙"}});
    sandbox.fail_next(
        AlipayRefresh::PATH,
        1,
        Failure::new(StatusCode::OK).with_json(&busy),
    );
    let third = manager.token_set("user").await.unwrap();
    assert_ne!(third.access_token, second.access_token);
    assert_eq!(sandbox.calls(AlipayRefresh::PATH), 3);

    // A revoked authorization asks for a new one, once.
    revoked_session_asks_for_reauthorization(
        &manager,
        &sandbox,
        "user",
        &third,
        Duration::from_secs(2 * 3600),
        "isv.refresh-token-invalid",
    )
    .await;
    assert_eq!(sandbox.calls(AlipayRefresh::PATH), 4);

    // Another app's key: the gateway refuses the signature, a misconfiguration, asked once.
    let stranger = self::manager(
        &sandbox,
        clock.clone(),
        AlipayConfig::new(APP_ID, another_private_key()),
    );
    let issued = sandbox
        .issue_with("other", serde_json::json!({"user_id": "2088000000000001"}))
        .await
        .unwrap();
    let other: TokenSet<AlipayUser> = TokenSet::from_stored(issued).unwrap();
    stranger.insert("other", other).await.unwrap();
    tokio::time::advance(Duration::from_secs(2 * 3600)).await;
    let error = stranger.access_token("other").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured, "{error}");
    assert_eq!(error.provider_code(), Some("isv.invalid-signature"));
    assert_eq!(sandbox.calls(AlipayRefresh::PATH), 5, "not retried");
}

/// A PKCS#8 RSA private key of another app, Base64 DER, made for this test.
fn another_private_key() -> String {
    use aws_lc_rs::encoding::AsDer;
    use aws_lc_rs::rsa::{KeyPair, KeySize};
    use base64::Engine as _;
    let pair = KeyPair::generate(KeySize::Rsa2048).unwrap();
    base64::engine::general_purpose::STANDARD.encode(pair.as_der().unwrap().as_ref())
}
