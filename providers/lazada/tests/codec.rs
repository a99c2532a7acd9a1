//! Lazada's definitions against its documents: the signature page's worked example, the
//! refresh reference's sample answer and error codes, and the request read back and verified
//! by the server side.

use http::StatusCode;
use time::macros::datetime;
use token_core::codec::{SignedRequestError, decode_response};
use token_core::sign::{Algorithm, Encoding, Part, RequestSignature, SignatureError, Slot};
use token_core::{
    codec::Endpoint, codec::ErrorResponse, codec::FromContext, codec::RequestContext,
    codec::TokenResponse, error::EndpointError, error::ErrorKind, secret::AccessToken,
    secret::ClientSecret, secret::RefreshToken, token_set::TokenSet,
};
use token_provider_lazada::{
    LazadaCode, LazadaConfig, LazadaError, LazadaSeller, LazadaTokens, RefreshAccessToken,
};

fn app() -> LazadaConfig {
    LazadaConfig::new("123456", "helloworld")
}

fn session() -> TokenSet<LazadaSeller> {
    TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("RT-SECRET"))
}

fn request() -> http::Request<Vec<u8>> {
    let session = session();
    let app = app();
    let cx =
        RequestContext::for_refresh(&app, &session).with_now(datetime!(2018-02-05 08:46:32 UTC));
    RefreshAccessToken::from_context(&cx)
        .unwrap()
        .encode_request(&"https://auth.lazada.com/rest".parse().unwrap())
        .unwrap()
}

/// The worked example of Lazada's signature page
/// (https://open.lazada.com/apps/doc/doc?nodeId=10450&docId=108068, mirrored at
/// https://open.alitrip.com/docs/doc.htm?articleId=108069): GetOrder with the app secret
/// `helloworld`.
#[test]
fn the_declared_signature_reproduces_lazadas_worked_example() {
    const GET_ORDER: RequestSignature = RequestSignature::new(
        Algorithm::HmacSha256,
        "/order/get",
        &[Part::Path, Part::SortedParams],
        Encoding::HexUpper,
        Slot::Query("sign"),
    );
    let mut request = http::Request::get(
        "http://api.lazada.com/rest/order/get?app_key=123456&access_token=test&timestamp=1517820392000&sign_method=sha256&order_id=1234",
    )
    .body(Vec::new())
    .unwrap();
    assert_eq!(
        GET_ORDER.string_to_sign(&request).unwrap(),
        b"/order/getaccess_tokentestapp_key123456order_id1234sign_methodsha256timestamp1517820392000"
    );
    GET_ORDER
        .sign(&mut request, &ClientSecret::new("helloworld"))
        .unwrap();
    assert!(
        request
            .uri()
            .to_string()
            .ends_with("&sign=4190D32361CFB9581350222F345CB77F3B19F0E31D162316848A2C1FFD5FAB4A"),
        "{}",
        request.uri()
    );
}

#[test]
fn the_refresh_is_signed_over_the_path_and_every_sorted_parameter() {
    let request = request();
    let signature = RefreshAccessToken::SIGNATURE.unwrap();
    assert_eq!(
        signature.string_to_sign(&request).unwrap(),
        b"/auth/token/refreshapp_key123456refresh_tokenRT-SECRETsign_methodsha256timestamp1517820392000"
    );
    assert_eq!(request.body(), b"refresh_token=RT-SECRET");
    assert_eq!(
        request.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
}

#[test]
fn the_server_side_verifies_the_signature_and_reads_the_request_back() {
    let request = request();
    let decoded =
        RefreshAccessToken::decode_signed_request(&request, &ClientSecret::new("helloworld"))
            .unwrap();
    assert_eq!(decoded.app_key, "123456");
    assert_eq!(decoded.timestamp, "1517820392000");
    assert_eq!(decoded.refresh_token.expose_secret(), "RT-SECRET");
    // Without its key a signed request is not read at all.
    assert!(RefreshAccessToken::decode_request(&request).is_err());
}

#[test]
fn a_wrong_secret_or_a_changed_parameter_is_a_bad_signature() {
    let request = request();
    let wrong = RefreshAccessToken::decode_signed_request(&request, &ClientSecret::new("other"));
    assert_eq!(
        wrong,
        Err(SignedRequestError::BadSignature(SignatureError::Mismatch))
    );
    let mut changed = request;
    *changed.body_mut() = b"refresh_token=RT-OTHER".to_vec();
    let error =
        RefreshAccessToken::decode_signed_request(&changed, &ClientSecret::new("helloworld"))
            .unwrap_err();
    assert!(matches!(error, SignedRequestError::BadSignature(_)));
}

#[test]
fn no_secret_appears_in_the_request_debug_or_the_signature_errors() {
    let session = session();
    let app = app();
    let cx =
        RequestContext::for_refresh(&app, &session).with_now(datetime!(2018-02-05 08:46:32 UTC));
    let refresh = RefreshAccessToken::from_context(&cx).unwrap();
    let sign = request()
        .uri()
        .query()
        .unwrap()
        .split("sign=")
        .nth(1)
        .unwrap()
        .to_owned();
    let error = RefreshAccessToken::decode_signed_request(&request(), &ClientSecret::new("other"))
        .unwrap_err();
    for shown in [
        format!("{refresh:?}"),
        format!("{error} {error:?}"),
        format!("{cx:?}"),
    ] {
        for secret in ["helloworld", "RT-SECRET", sign.as_str()] {
            assert!(!shown.contains(secret), "{secret} in {shown}");
        }
    }
    assert_eq!(refresh.secrets(), ["RT-SECRET", "helloworld"]);
}

/// The refresh reference's response sample
/// (https://open.lazada.com/apps/doc/api?path=%2Fauth%2Ftoken%2Frefresh), written as the JSON
/// Lazada sends (the page lists it as `key=value` lines), with `code` and `request_id`.
const SAMPLE: &str = r#"{
    "code": "0",
    "expires_in": 10,
    "account_id": "7063844",
    "country": "sg",
    "country_user_info_list": {"sg": {"seller_id": "1001", "user_id": 10101}, "my": {"seller_id": "2001", "user_id": 20101}},
    "account_platform": "seller_center",
    "access_token": "50000601c30atpedfgu3LVvik87Ixlsvle3mSoB7701ceb156fPunYZ43GBg",
    "account": "xxx@126.com",
    "refresh_expires_in": 60,
    "refresh_token": "500016000300bwa2WteaQyfwBMnPxurcA0mXGhQdTt18356663CfcDTYpWoi",
    "request_id": "0ba2887315178178017221014"
}"#;

#[test]
fn the_reference_sample_answer_decodes_with_its_seller_extras() {
    let now = datetime!(2026-01-01 00:00 UTC);
    let response = http::Response::new(SAMPLE.as_bytes().to_vec());
    let set = decode_response::<RefreshAccessToken>(&response, now, &[]).unwrap();
    assert_eq!(
        set.access_token.expose_secret(),
        "50000601c30atpedfgu3LVvik87Ixlsvle3mSoB7701ceb156fPunYZ43GBg"
    );
    assert_eq!(
        set.access_expires_at,
        Some(datetime!(2026-01-01 00:00:10 UTC))
    );
    assert_eq!(
        set.refresh_expires_at,
        Some(datetime!(2026-01-01 00:01 UTC))
    );
    assert_eq!(
        set.extras.account_platform.as_deref(),
        Some("seller_center")
    );
    assert_eq!(set.extras.country.as_deref(), Some("sg"));
    // The reference lists `account_id` (a string, null for a seller_center account).
    assert_eq!(set.extras.account_id.as_deref(), Some("7063844"));
    assert_eq!(
        set.extras.country_user_info_list.as_ref().unwrap()["sg"]["seller_id"],
        "1001"
    );
    // The sandbox writes the same shape back, `"code": "0"` included.
    let back = LazadaTokens::from_token_set(&set, now).encode_body();
    let back: serde_json::Value = serde_json::from_slice(&back).unwrap();
    assert_eq!(back["code"], "0");
    assert_eq!(back["account_id"], "7063844");
    assert_eq!(back["refresh_expires_in"], 60);
}

#[test]
fn refresh_reference_codes_are_classified() {
    let ok = StatusCode::OK;
    let cases = [
        (
            r#"{"type":"ISV","code":"IllegalRefreshToken","message":"The specified refresh token is invalid or expired","request_id":"0b1"}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"type":"ISV","code":"AUTH_TYPE_UNSUPPORTED","message":"appkey can only be authorized by market, not support refresh"}"#,
            ErrorKind::Misconfigured,
        ),
        (
            r#"{"type":"ISV","code":"IncompleteSignature","message":"The request signature does not conform to lazop standards"}"#,
            ErrorKind::Misconfigured,
        ),
        (
            r#"{"type":"ISV","code":"InvalidAppKey","message":"Invalid app Key"}"#,
            ErrorKind::Misconfigured,
        ),
        (
            r#"{"type":"ISP","code":"ServiceTemporaryUnavailable","message":"busy"}"#,
            ErrorKind::Transient,
        ),
        (
            r#"{"type":"ISV","code":"ApiCallLimit","message":"slow down"}"#,
            ErrorKind::Transient,
        ),
        (
            r#"{"type":"ISV","code":"SomethingNew","message":"?"}"#,
            ErrorKind::Rejected,
        ),
    ];
    for (body, kind) in cases {
        let error = LazadaError::decode_error(ok, body.as_bytes()).expect(body);
        assert_eq!(error.kind(ok), kind, "{body}");
    }
    let error = LazadaError::decode_error(ok, cases[0].0.as_bytes()).unwrap();
    assert_eq!(error.code, LazadaCode::IllegalRefreshToken);
    assert_eq!(error.request_id.as_deref(), Some("0b1"));
    assert!(
        LazadaError::decode_error(ok, SAMPLE.as_bytes()).is_none(),
        "code 0 is a success"
    );
}

/// Every code the crate maps, and codes it leaves unmapped: only a dead refresh token is
/// re-auth; an unmapped code (whatever its `type`) is a refusal, never re-auth.
#[test]
fn the_error_code_table() {
    let ok = StatusCode::OK;
    let table: &[(&str, ErrorKind)] = &[
        ("IllegalRefreshToken", ErrorKind::ReauthRequired),
        ("AUTH_TYPE_UNSUPPORTED", ErrorKind::Misconfigured),
        ("IncompleteSignature", ErrorKind::Misconfigured),
        ("InvalidAppKey", ErrorKind::Misconfigured),
        ("MissingParameter", ErrorKind::Misconfigured),
        ("ApiCallLimit", ErrorKind::Transient),
        ("ServiceTemporaryUnavailable", ErrorKind::Transient),
        // Not mapped: token creation's code, another API's token code, numeric codes.
        ("InvalidCode", ErrorKind::Rejected),
        ("IllegalAccessToken", ErrorKind::Rejected),
        ("500", ErrorKind::Rejected),
        ("E0001", ErrorKind::Rejected),
    ];
    for &(code, kind) in table {
        for r#type in ["ISV", "ISP", "SYSTEM"] {
            let body = format!(
                r#"{{"type":"{type}","code":"{code}","message":"m","request_id":"0ba2887315178178017221014"}}"#
            );
            let error = LazadaError::decode_error(ok, body.as_bytes()).expect(code);
            assert_eq!(error.kind(ok), kind, "{body}");
            let set = decode_response::<RefreshAccessToken>(
                &http::Response::new(body.into_bytes()),
                datetime!(2026-01-01 00:00 UTC),
                &[],
            );
            let error = set.unwrap_err();
            assert_eq!(error.kind(), kind, "{code}");
            // Lazada's id of the request reaches the caller, for its support.
            let EndpointError::Provider(provider) = error else {
                panic!("{code}: {error}")
            };
            assert_eq!(
                provider.request_id.as_deref(),
                Some("0ba2887315178178017221014")
            );
        }
    }
}

/// The code decides on HTTP 200 and on a 4xx alike; a server failure or throttling is
/// retried whatever its body's code says (a gateway's 503 is no verdict on the token).
#[test]
fn the_code_decides_on_any_status_but_a_server_failure() {
    let body = r#"{"type":"ISV","code":"IllegalRefreshToken","message":"m","request_id":"0b1"}"#;
    for (status, kind) in [
        (200, ErrorKind::ReauthRequired),
        (400, ErrorKind::ReauthRequired),
        (401, ErrorKind::ReauthRequired),
        (429, ErrorKind::Transient),
        (503, ErrorKind::Transient),
    ] {
        let mut response = http::Response::new(body.as_bytes().to_vec());
        *response.status_mut() = StatusCode::from_u16(status).unwrap();
        let error =
            decode_response::<RefreshAccessToken>(&response, datetime!(2026-01-01 00:00 UTC), &[])
                .unwrap_err();
        assert_eq!(error.kind(), kind, "{status}");
    }
}

/// A refresh token holding control characters and the form's own delimiters (the manager
/// keeps such a token: it travels escaped) is sent percent-encoded in the body, signed over
/// its decoded value (what Lazada reads and signs), and read back whole by the server side.
#[test]
fn a_refresh_token_with_control_characters_is_signed_as_lazada_reads_it() {
    let raw = "RT-\r\n\0\t+&=%; SECRET";
    let session = TokenSet::<LazadaSeller>::new(AccessToken::new("at"))
        .with_refresh_token(RefreshToken::new(raw));
    let app = app();
    let cx =
        RequestContext::for_refresh(&app, &session).with_now(datetime!(2018-02-05 08:46:32 UTC));
    let request = RefreshAccessToken::from_context(&cx)
        .unwrap()
        .encode_request(&"https://auth.lazada.com/rest".parse().unwrap())
        .unwrap();
    let body = std::str::from_utf8(request.body()).unwrap();
    assert!(!body.bytes().any(|b| b.is_ascii_control()), "{body:?}");
    assert!(!request.uri().to_string().contains("SECRET"));
    let signed = RefreshAccessToken::SIGNATURE
        .unwrap()
        .string_to_sign(&request)
        .unwrap();
    let mut expected = b"/auth/token/refreshapp_key123456refresh_token".to_vec();
    expected.extend_from_slice(raw.as_bytes());
    expected.extend_from_slice(b"sign_methodsha256timestamp1517820392000");
    assert_eq!(signed, expected);
    let decoded =
        RefreshAccessToken::decode_signed_request(&request, &ClientSecret::new("helloworld"))
            .unwrap();
    assert_eq!(decoded.refresh_token.expose_secret(), raw);
    let shown = format!("{request:?} {decoded:?}");
    assert!(!shown.contains("SECRET"), "{shown}");
}

/// A declared code on HTTP 200 decides the kind even when another field of the error has a
/// type the struct does not expect (`request_id` as a number, `type` as a number, a
/// structured `message`): the code alone says what the answer is. Otherwise a dead refresh
/// token is read as an unknown outcome (retried, never re-auth) and a busy Lazada as one too.
#[test]
fn a_declared_code_decides_whatever_the_other_fields_hold() {
    let cases = [
        (
            r#"{"type":"ISV","code":"IllegalRefreshToken","message":"m","request_id":210117}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"type":1,"code":"IllegalRefreshToken","message":"m"}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"type":"ISV","code":"IllegalRefreshToken","message":{"en":"invalid"}}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            r#"{"type":"ISP","code":"ServiceTemporaryUnavailable","message":"busy","request_id":7}"#,
            ErrorKind::Transient,
        ),
        (
            r#"{"type":"ISV","code":"InvalidAppKey","message":null,"request_id":["a"]}"#,
            ErrorKind::Misconfigured,
        ),
    ];
    for (body, kind) in cases {
        let result = decode_response::<RefreshAccessToken>(
            &http::Response::new(body.as_bytes().to_vec()),
            datetime!(2026-01-01 00:00 UTC),
            &[],
        );
        let error = result.expect_err(body);
        assert_eq!(error.kind(), kind, "{body}: {error}");
    }
    // Beside a pair, a declared error code is no success (an unknown outcome), whatever the
    // other fields hold; today the pair is taken as a fresh success.
    let body = r#"{"type":"ISV","code":"IllegalRefreshToken","request_id":5,"access_token":"at","refresh_token":"rt2","expires_in":60}"#;
    let result = decode_response::<RefreshAccessToken>(
        &http::Response::new(body.as_bytes().to_vec()),
        datetime!(2026-01-01 00:00 UTC),
        &[],
    );
    assert_eq!(
        result
            .map(|set| set.access_expires_at)
            .map_err(|e| e.kind()),
        Err(ErrorKind::OutcomeUnknown),
        "{body}"
    );
}

/// A parameter sent in both the query and the form body is sent twice (RFC 6749 section
/// 3.1, as the sandbox's own `/token` refuses it): which copy a reader takes must not decide
/// what is served. Lazada merges query and body parameters; the declared reader reads the
/// body's `refresh_token` and the query's `app_key`, whatever the other copy says, even
/// with a valid signature over both.
#[test]
fn a_parameter_in_both_the_query_and_the_body_is_refused() {
    let key = ClientSecret::new("helloworld");
    for (query, body) in [
        ("&refresh_token=RT-OTHER", ""),
        ("", "&app_key=654321"),
        ("", "&timestamp=1"),
    ] {
        let mut twice = request();
        let uri = twice.uri().to_string();
        let (unsigned, _) = uri.split_once("&sign=").unwrap();
        *twice.uri_mut() = format!("{unsigned}{query}").parse().unwrap();
        twice.body_mut().extend_from_slice(body.as_bytes());
        RefreshAccessToken::SIGNATURE
            .unwrap()
            .sign(&mut twice, &key)
            .unwrap();
        let decoded = RefreshAccessToken::decode_signed_request(&twice, &key);
        assert!(
            matches!(decoded, Err(SignedRequestError::Invalid(_))),
            "{query}{body}: {:?}",
            decoded.map(|d| (d.app_key, d.timestamp))
        );
    }
}

/// A lone surrogate inside a JSON value extras field (a seller's user id cut in half) makes
/// that field absent, as it does a text field: never a value altered into another and kept.
#[test]
fn a_lone_surrogate_in_a_json_value_field_makes_it_absent_not_altered() {
    let now = datetime!(2026-01-01 00:00 UTC);
    let body = r#"{"code":"0","access_token":"AT","refresh_token":"RT","expires_in":10,
        "country_user_info_list":{"sg":{"seller_id":"1001","user_id":"abc\ud83d"}}}"#;
    let response = http::Response::new(body.as_bytes().to_vec());
    let set = decode_response::<RefreshAccessToken>(&response, now, &[]).unwrap();
    assert_eq!(set.access_token.expose_secret(), "AT");
    assert_eq!(set.extras.country_user_info_list, None);
}
