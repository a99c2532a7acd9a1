//! WeChat's refresh against the documents' literal samples, both directions.

use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use token_core::codec::{decode_response, encode_error, encode_response};
use token_core::{
    codec::Endpoint, codec::ErrorResponse, codec::FromContext, codec::RequestContext,
    codec::TokenResponse, error::EndpointError, error::ErrorKind, secret::AccessToken,
    secret::RefreshToken, token_set::TokenSet,
};
use token_provider_wechat::{
    SnsRefreshToken, WeChatCode, WeChatConfig, WeChatError, WeChatTokens, WeChatUser,
};

// developers.weixin.qq.com/doc/service/en/api/webdev/access/api_snsrefreshtoken.html,
// "Example Requests" and "Return an example".
const REQUEST: &str = "https://api.weixin.qq.com/sns/oauth2/refresh_token?appid=APPID&grant_type=refresh_token&refresh_token=REFRESH_TOKEN";
const RESPONSE: &str = r#"{
  "access_token":"ACCESS_TOKEN",
  "expires_in":7200,
  "refresh_token":"REFRESH_TOKEN",
  "openid":"OPENID",
  "scope":"SCOPE"
}"#;
// The web-app document "刷新access_token有效期", "错误返回样例".
const INVALID: &str = r#"{"errcode":40030,"errmsg":"invalid refresh_token"}"#;
// Global return codes: -1 "System is busy", 42002 "refresh_token timeout", 40013 "invalid
// appid"; 45009 as the quota document words it.
const BUSY: &str = r#"{"errcode":-1,"errmsg":"system error"}"#;
const TIMEOUT: &str = r#"{"errcode":42002,"errmsg":"refresh_token timeout"}"#;
const APPID: &str = r#"{"errcode":40013,"errmsg":"invalid appid"}"#;
const QUOTA: &str = r#"{"errcode":45009,"errmsg":"api freq out of limit"}"#;

fn now() -> OffsetDateTime {
    datetime!(2026-01-01 00:00 UTC)
}

fn answer(body: &str) -> http::Response<Vec<u8>> {
    // WeChat sends its errors with HTTP 200, like its successes.
    http::Response::new(body.as_bytes().to_vec())
}

fn refresh() -> Result<TokenSet<WeChatUser>, EndpointError> {
    decode_response::<SnsRefreshToken>(&answer(RESPONSE), now(), &[])
}

#[test]
fn the_request_is_the_documented_query() {
    let config = WeChatConfig::new("APPID");
    let session = TokenSet::<WeChatUser>::new(AccessToken::new("ACCESS_TOKEN"))
        .with_refresh_token(RefreshToken::new("REFRESH_TOKEN"));
    let request = SnsRefreshToken::from_context(&RequestContext::for_refresh(&config, &session))
        .unwrap()
        .encode_request(&"https://api.weixin.qq.com".parse().unwrap())
        .unwrap();
    assert_eq!(request.method(), http::Method::GET);
    let url = url::Url::parse(&request.uri().to_string()).unwrap();
    let documented = url::Url::parse(REQUEST).unwrap();
    assert_eq!(url.path(), documented.path());
    let mut sent: Vec<_> = url.query_pairs().collect();
    let mut expected: Vec<_> = documented.query_pairs().collect();
    sent.sort();
    expected.sort();
    assert_eq!(sent, expected);
    assert!(request.body().is_empty());

    // The server side reads the documented URL back.
    let mut incoming = http::Request::new(Vec::new());
    *incoming.uri_mut() = "/sns/oauth2/refresh_token?appid=APPID&grant_type=refresh_token&refresh_token=REFRESH_TOKEN".parse().unwrap();
    let read = SnsRefreshToken::decode_request(&incoming).unwrap();
    assert_eq!(read.appid, "APPID");
    assert_eq!(read.refresh_token.expose_secret(), "REFRESH_TOKEN");
    *incoming.uri_mut() =
        "/sns/oauth2/refresh_token?appid=APPID&grant_type=authorization_code&refresh_token=R"
            .parse()
            .unwrap();
    assert!(SnsRefreshToken::decode_request(&incoming).is_err());
}

#[test]
fn the_documented_answer_decodes_with_its_user() {
    let set = refresh().unwrap();
    assert_eq!(set.access_token.expose_secret(), "ACCESS_TOKEN");
    assert_eq!(set.refresh_token.unwrap().expose_secret(), "REFRESH_TOKEN");
    assert_eq!(set.access_expires_at, Some(now() + Duration::seconds(7200)));
    assert_eq!(set.scope.as_deref(), Some("SCOPE"));
    assert_eq!(set.extras.openid.as_deref(), Some("OPENID"));
    assert_eq!(set.extras.unionid, None);
}

#[test]
fn the_answer_encodes_back_to_the_sample() {
    let set = refresh().unwrap();
    let back = WeChatTokens::from_token_set(&set, now()).encode_body();
    let json = |bytes: &[u8]| serde_json::from_slice::<Value>(bytes).unwrap();
    assert_eq!(json(&back), json(RESPONSE.as_bytes()));
    assert_eq!(
        encode_response(&WeChatTokens::from_token_set(&set, now())).status(),
        200
    );
    let with_union = WeChatTokens::decode_body(
        json!({"access_token": "a", "openid": "o", "unionid": "u"})
            .to_string()
            .as_bytes(),
    )
    .unwrap();
    assert_eq!(with_union.unionid.as_deref(), Some("u"));
}

#[test]
fn errors_on_http_200_are_classified_by_errcode() {
    let cases = [
        (
            INVALID,
            WeChatCode::InvalidRefreshToken,
            ErrorKind::ReauthRequired,
        ),
        (
            TIMEOUT,
            WeChatCode::RefreshTokenTimeout,
            ErrorKind::ReauthRequired,
        ),
        (APPID, WeChatCode::InvalidAppId, ErrorKind::Misconfigured),
        (BUSY, WeChatCode::SystemBusy, ErrorKind::Transient),
        (QUOTA, WeChatCode::DailyQuotaReached, ErrorKind::Transient),
    ];
    for (body, code, kind) in cases {
        let error = decode_response::<SnsRefreshToken>(&answer(body), now(), &[]).unwrap_err();
        let EndpointError::Provider(provider) = error else {
            panic!("{body}: {error:?}")
        };
        assert_eq!(provider.kind, kind, "{body}");
        assert_eq!(provider.status, 200, "{body}");
        let decoded = WeChatError::decode_error(http::StatusCode::OK, body.as_bytes()).unwrap();
        assert_eq!(decoded.errcode, code);
        // The sandbox writes the same bytes, with the same HTTP 200.
        let (status, written) = decoded.encode_error();
        assert_eq!(status, 200);
        assert_eq!(written, body.as_bytes());
        assert_eq!(encode_error(&decoded).status(), 200);
    }
    let error = decode_response::<SnsRefreshToken>(&answer(INVALID), now(), &[]).unwrap_err();
    assert!(matches!(error, EndpointError::Provider(p) if p.code == "40030"));
}

#[test]
fn an_unknown_code_is_a_refusal_and_a_zero_code_a_success() {
    let body = r#"{"errcode":40163,"errmsg":"code been used"}"#;
    let error = decode_response::<SnsRefreshToken>(&answer(body), now(), &[]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    assert_eq!(
        WeChatError::decode_error(http::StatusCode::OK, body.as_bytes())
            .unwrap()
            .errcode,
        WeChatCode::Other("40163".into())
    );
    let with_zero =
        r#"{"errcode":0,"errmsg":"ok","access_token":"a","expires_in":7200,"openid":"o"}"#;
    let set = decode_response::<SnsRefreshToken>(&answer(with_zero), now(), &[]).unwrap();
    assert_eq!(set.access_token.expose_secret(), "a");
    // The codes are integers: written as text, `"00"` and `"+0"` are the success code too.
    for zero in [r#""00""#, r#""+0""#, "0.0"] {
        let body = format!(r#"{{"errcode":{zero},"access_token":"a","expires_in":7200}}"#);
        let set = decode_response::<SnsRefreshToken>(&answer(&body), now(), &[]);
        assert_eq!(set.unwrap().access_token.expose_secret(), "a", "{zero}");
    }
}

#[test]
fn an_echoed_refresh_token_is_scrubbed_from_the_error() {
    let body = r#"{"errcode":40030,"errmsg":"invalid refresh_token: rt-SECRET-1, rid: 6114eeb9"}"#;
    let error =
        decode_response::<SnsRefreshToken>(&answer(body), now(), &["rt-SECRET-1"]).unwrap_err();
    let shown = format!("{error} {error:?}");
    assert!(!shown.contains("rt-SECRET-1"), "{shown}");
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
}

/// Every code the crate maps, the quota codes, and documented codes it leaves unmapped:
/// only a dead refresh token is re-auth; an unmapped code is a refusal, never re-auth.
#[test]
fn the_error_code_table() {
    // (errcode, errmsg as WeChat words it, kind)
    let table: &[(i64, &str, ErrorKind)] = &[
        (40030, "invalid refresh_token", ErrorKind::ReauthRequired),
        (42002, "refresh_token timeout", ErrorKind::ReauthRequired),
        (
            42007,
            "access_token and refresh_token exception",
            ErrorKind::ReauthRequired,
        ),
        (40013, "invalid appid", ErrorKind::Misconfigured),
        (40125, "invalid appsecret", ErrorKind::Misconfigured),
        (-1, "system error", ErrorKind::Transient),
        (
            45009,
            "reach max api daily quota limit",
            ErrorKind::Transient,
        ),
        (
            45011,
            "api minute-quota reach limit, must slower, retry next minute",
            ErrorKind::Transient,
        ),
        (40035, "invalid parameter", ErrorKind::Rejected),
        // Documented global codes the crate does not map.
        (40002, "invalid grant_type", ErrorKind::Rejected),
        (40029, "invalid code", ErrorKind::Rejected),
        (41002, "appid missing", ErrorKind::Rejected),
        (41003, "refresh_token missing", ErrorKind::Rejected),
        (40163, "code been used", ErrorKind::Rejected),
        (48001, "api unauthorized", ErrorKind::Rejected),
        (99999, "?", ErrorKind::Rejected),
    ];
    for &(code, message, kind) in table {
        let body = json!({"errcode": code, "errmsg": format!("{message}, rid: 6114eeb9")});
        let error =
            decode_response::<SnsRefreshToken>(&answer(&body.to_string()), now(), &[]).unwrap_err();
        assert_eq!(error.kind(), kind, "{code}");
        let EndpointError::Provider(provider) = error else {
            panic!("{code}: a provider error")
        };
        assert_eq!(provider.code, code.to_string());
    }
}

/// A declared `errcode` on HTTP 200 decides the kind even when `errmsg` is not text (a
/// number, an object): `40030` is re-auth, `-1` is transient, never an unknown outcome.
#[test]
fn a_declared_errcode_decides_whatever_errmsg_holds() {
    for (body, kind) in [
        (
            r#"{"errcode":40030,"errmsg":40030}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"errcode":42002,"errmsg":{"zh":"refresh_token timeout"}}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"errcode":-1,"errmsg":["system error"]}"#,
            ErrorKind::Transient,
        ),
        (
            r#"{"errcode":40013,"errmsg":false}"#,
            ErrorKind::Misconfigured,
        ),
    ] {
        let error = decode_response::<SnsRefreshToken>(&answer(body), now(), &[]).expect_err(body);
        assert_eq!(error.kind(), kind, "{body}: {error}");
    }
    // Beside a pair, a declared error code is no success (the documented rule: an unknown
    // outcome), whatever `errmsg` holds; today the pair is taken as a fresh success.
    let body = r#"{"errcode":40030,"errmsg":0,"access_token":"at","refresh_token":"rt2","expires_in":7200}"#;
    let result = decode_response::<SnsRefreshToken>(&answer(body), now(), &[]);
    assert_eq!(
        result
            .map(|set| set.access_expires_at)
            .map_err(|e| e.kind()),
        Err(ErrorKind::OutcomeUnknown),
        "{body}"
    );
}

/// An integer code written as text reads as the integer it says with the whitespace around it
/// too, as `expires_in` does: `" 40030 "` is a dead refresh token (re-auth), not an unknown
/// code refused as such, and `" 0 "` beside a pair is a success.
#[test]
fn a_code_written_as_text_with_whitespace_is_its_integer() {
    for (body, kind) in [
        (
            r#"{"errcode":" 40030 ","errmsg":"invalid refresh_token"}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"errcode":"42002\n","errmsg":"refresh_token timeout"}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"errcode":"\t-1","errmsg":"system error"}"#,
            ErrorKind::Transient,
        ),
    ] {
        let error = decode_response::<SnsRefreshToken>(&answer(body), now(), &[]).expect_err(body);
        assert_eq!(error.kind(), kind, "{body}: {error}");
    }
    let body = r#"{"errcode":" 0 ","access_token":"at","refresh_token":"rt","expires_in":7200}"#;
    let set = decode_response::<SnsRefreshToken>(&answer(body), now(), &[]).expect(body);
    assert_eq!(set.access_token.expose_secret(), "at");
}

/// Global return code `42007` ("用户修改微信密码，accesstoken 和 refreshtoken 失效，需要重新授权":
/// the user changed their WeChat password, the access and refresh tokens are void, and the
/// user must authorize again) says the refresh token is dead, as `40030` and `42002` do: the
/// session needs re-authorization, not a refusal that leaves it failing every refresh
/// without a re-auth signal.
#[test]
fn a_password_change_that_voided_the_refresh_token_is_reauth() {
    let body =
        r#"{"errcode":42007,"errmsg":"access_token and refresh_token exception, rid: 6114eeb9"}"#;
    let error = decode_response::<SnsRefreshToken>(&answer(body), now(), &[]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired, "{error}");
    let decoded = WeChatError::decode_error(http::StatusCode::OK, body.as_bytes()).unwrap();
    assert!(
        !matches!(decoded.errcode, WeChatCode::Other(_)),
        "{:?}",
        decoded.errcode
    );
}
