//! The real provider crates' refresh endpoints against hostile or odd answers built from
//! their seeds: an odd expiry or a duplicate key never costs a rotated pair, Keycloak's
//! `refresh_expires_in: 0` is "no refresh expiry", an access token with a control character
//! is refused by field name (kept for the manager beside a refresh token), and a refresh token echoed (whole or in part) in an error answer
//! shows nowhere. Over a loopback socket, the transport's limits hold for the body too: one
//! that trickles or never ends costs at most the timeout, one that grows without end at
//! most the size limit.

use http::StatusCode;
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use token_core::codec::{Endpoint, FromContext, RequestContext, decode_response};
use token_core::oauth::RefreshTokenGrant;
use token_core::{
    error::EndpointError, error::Error, error::ErrorKind, secret::AccessToken,
    secret::ClientSecret, secret::RefreshToken, token_set::TokenSet,
};
use token_provider_alipayplus::ApplyToken;
use token_provider_maya::MiniAppRefresh;
use token_provider_oauth2::OAuth2Config;
use token_provider_paymentsgate::RefreshServiceToken;
use token_provider_vaultist::{RefreshV2, RefreshV3};

// Seeds (see each provider crate's tests), with the expiry written as a placeholder.
const OAUTH2: &str = r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","token_type":"example","expires_in":EXPIRY,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","example_parameter":"example_value"}"#;
const KEYCLOAK: &str = r#"{"access_token":"2YotnFZFEjr1zCsicMWpAA","expires_in":300,"refresh_expires_in":EXPIRY,"refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA","token_type":"Bearer"}"#;
const VAULTIST_V3: &str = r#"{"access_token":"eyJhbGciOiJIUzI1NiIsIn...","refresh_token":"dGhpcyBpcyBhIHJlZnJlc2h...","expires_in":EXPIRY,"token_type":"Bearer"}"#;
const VAULTIST_V2: &str = r#"{"access_token":"eyJraWQiOiJmODAyNjg0OC1mNTJkLTRmY","token_type":"Bearer","refresh_token":"eyJraWQiOiJmFGGghrwghhnEGFGrehrnjdf7653kFZ_uusa3WYE","scope":"accounts:read","expires_in":EXPIRY,"user_id":"usr:b06d9aaa-4310-4c0d-9e5343c1b35"}"#;
const PAYMENTSGATE: &str = r#"{"access_token":"eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...","refresh_token":"8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl...","expires_in":EXPIRY}"#;
const MAYA_MINI_APP: &str = r#"{"accessToken":"at-2","refreshToken":"rt-2","expiresAt":EXPIRY}"#;
const MAYA_CONNECT: &str =
    r#"{"access_token":"at-3","refresh_token":"rt-3","expires_in":EXPIRY,"token_type":"Bearer"}"#;
const ALIPAY: &str = r#"{"result":{"resultCode":"SUCCESS","resultMessage":"success","resultStatus":"S"},"accessToken":"281010033AB2F588D14B43238637264FCA5AAF35","accessTokenExpiryTime":EXPIRY,"refreshToken":"2810100334F62CBC577F468AAC87CFC6C9107811","refreshTokenExpiryTime":"2022-06-08T12:12:12+08:00","customerId":"2789808900000000000000001","userLoginId":"62-***2736"}"#;

/// Values no expiry type reads, whatever its format.
const ODD: &[&str] = &[
    "-5",
    "1e300",
    r#""NaN""#,
    r#""-5""#,
    "true",
    "{}",
    "[3600]",
    r#""2022-13-45T99:00:00+08:00""#,
    "-62135596801000",
];

fn now() -> OffsetDateTime {
    datetime!(2026-01-01 00:00 UTC)
}

fn answer(status: u16, body: &str) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.as_bytes().to_vec());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/json".parse().unwrap(),
    );
    response
}

/// Decodes a 200 answer; extras as JSON so that every provider's set has one type.
fn decode<E: Endpoint>(body: &str) -> Result<TokenSet<serde_json::Value>, EndpointError> {
    decode_response::<E>(&answer(200, body), now(), &[]).map(|set| set.to_stored().unwrap())
}

fn pair(set: &TokenSet<serde_json::Value>) -> (&str, Option<&str>) {
    (
        set.access_token.expose_secret(),
        set.refresh_token.as_ref().map(RefreshToken::expose_secret),
    )
}

/// Decodes `seed` with `EXPIRY` replaced by each odd value; the pair must survive with an
/// unknown access expiry. With `good` in its place the expiry is read (the control).
fn odd_expiries_keep_the_pair<E: Endpoint>(
    name: &str,
    seed: &str,
    good: &str,
    (access, refresh): (&str, &str),
) {
    let good = decode::<E>(&seed.replace("EXPIRY", good))
        .unwrap_or_else(|e| panic!("{name}: the control answer decodes: {e}"));
    assert_eq!(pair(&good), (access, Some(refresh)), "{name}: control");
    assert!(
        good.access_expires_at.is_some(),
        "{name}: control has an expiry"
    );
    for odd in ODD {
        let body = seed.replace("EXPIRY", odd);
        let set = decode::<E>(&body).unwrap_or_else(|e| panic!("{name} with {odd}: {e}"));
        assert_eq!(pair(&set), (access, Some(refresh)), "{name} with {odd}");
        assert_eq!(set.access_expires_at, None, "{name} with {odd}");
        assert_eq!(set.extras, good.extras, "{name} with {odd}: extras kept");
    }
}

#[test]
fn an_odd_expiry_keeps_the_rotated_pair_in_every_provider() {
    odd_expiries_keep_the_pair::<RefreshTokenGrant>(
        "oauth2",
        OAUTH2,
        "3600",
        ("2YotnFZFEjr1zCsicMWpAA", "tGzv3JOkF0XG5Qx2TlKWIA"),
    );
    odd_expiries_keep_the_pair::<RefreshV3>(
        "vaultist v3",
        VAULTIST_V3,
        "3600",
        ("eyJhbGciOiJIUzI1NiIsIn...", "dGhpcyBpcyBhIHJlZnJlc2h..."),
    );
    odd_expiries_keep_the_pair::<RefreshV2>(
        "vaultist v2",
        VAULTIST_V2,
        "86400",
        (
            "eyJraWQiOiJmODAyNjg0OC1mNTJkLTRmY",
            "eyJraWQiOiJmFGGghrwghhnEGFGrehrnjdf7653kFZ_uusa3WYE",
        ),
    );
    odd_expiries_keep_the_pair::<RefreshServiceToken>(
        "paymentsgate",
        PAYMENTSGATE,
        r#""3600""#,
        (
            "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
            "8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl...",
        ),
    );
    odd_expiries_keep_the_pair::<MiniAppRefresh>(
        "maya mini app",
        MAYA_MINI_APP,
        "1767229200",
        ("at-2", "rt-2"),
    );
    odd_expiries_keep_the_pair::<RefreshTokenGrant>(
        "maya connect",
        MAYA_CONNECT,
        "3600",
        ("at-3", "rt-3"),
    );
    odd_expiries_keep_the_pair::<ApplyToken>(
        "alipay+",
        ALIPAY,
        r#""2022-06-06T12:12:12+08:00""#,
        (
            "281010033AB2F588D14B43238637264FCA5AAF35",
            "2810100334F62CBC577F468AAC87CFC6C9107811",
        ),
    );
}

#[test]
fn an_odd_refresh_expiry_keeps_the_rotated_pair() {
    for odd in ODD {
        let set = decode::<RefreshTokenGrant>(&KEYCLOAK.replace("EXPIRY", odd)).unwrap();
        assert_eq!(pair(&set).1, Some("tGzv3JOkF0XG5Qx2TlKWIA"), "{odd}");
        assert_eq!(set.refresh_expires_at, None, "{odd}");
        assert_eq!(set.access_expires_at, Some(now() + Duration::seconds(300)));
        let alipay = ALIPAY
            .replace("EXPIRY", r#""2022-06-06T12:12:12+08:00""#)
            .replace(r#""2022-06-08T12:12:12+08:00""#, odd);
        let set = decode::<ApplyToken>(&alipay).unwrap();
        assert_eq!(
            pair(&set).1,
            Some("2810100334F62CBC577F468AAC87CFC6C9107811"),
            "{odd}"
        );
        assert_eq!(set.refresh_expires_at, None, "{odd}");
    }
}

#[test]
fn duplicate_keys_keep_the_rotated_pair_and_the_last_value_wins() {
    let oauth2 = r#"{"access_token":"at-old","expires_in":60,"refresh_token":"rt-old","access_token":"at-new","expires_in":120,"refresh_token":"rt-new","token_type":"Bearer","token_type":"bearer"}"#;
    let set = decode::<RefreshTokenGrant>(oauth2).unwrap();
    assert_eq!(pair(&set), ("at-new", Some("rt-new")));
    assert_eq!(set.access_expires_at, Some(now() + Duration::seconds(120)));
    assert_eq!(set.token_type.as_deref(), Some("bearer"));

    let maya = r#"{"accessToken":"at-new","expiresAt":1767229200,"refreshToken":"rt-new","expiresAt":1767232800}"#;
    let set = decode::<MiniAppRefresh>(maya).unwrap();
    assert_eq!(pair(&set), ("at-new", Some("rt-new")));
    assert_eq!(set.access_expires_at, Some(datetime!(2026-01-01 02:00 UTC)));

    let vaultist = VAULTIST_V2
        .replace("EXPIRY", "86400")
        .replace(r#""user_id":"#, r#""user_id":"usr:first","user_id":"#);
    let set = decode::<RefreshV2>(&vaultist).unwrap();
    assert_eq!(set.extras["user_id"], "usr:b06d9aaa-4310-4c0d-9e5343c1b35");

    let alipay = ALIPAY
        .replace("EXPIRY", r#""2022-06-06T12:12:12+08:00""#)
        .replace(
            r#""customerId":"#,
            r#""accessToken":"at-dup","customerId":"#,
        );
    let set = decode::<ApplyToken>(&alipay).unwrap();
    assert_eq!(pair(&set).0, "at-dup");
}

/// Text that is not Unicode, a lone UTF-16 surrogate escaped (`"\ud83d"`: a Java back end
/// cutting an emoji in half), in an odd field never costs the rotated pair: that value is
/// read as absent. In a token it is no token (one that cannot be held is never altered into
/// another): the answer cannot be read.
#[test]
fn a_lone_surrogate_in_an_odd_field_keeps_the_rotated_pair() {
    fn kept<E: Endpoint>(name: &str, body: &str, (access, refresh): (&str, &str), field: &str) {
        let set = decode::<E>(body).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(pair(&set), (access, Some(refresh)), "{name}");
        let read = match field {
            "scope" => set.scope.is_some(),
            _ => set.extras.get(field).is_some(),
        };
        assert!(!read, "{name}: {set:?}");
    }
    let seeds = |seed: &str, from: &str, to: &str| seed.replace("EXPIRY", "3600").replace(from, to);
    kept::<RefreshTokenGrant>(
        "oauth2 scope",
        &seeds(
            OAUTH2,
            r#""token_type""#,
            r#""scope":"read \ud83d","token_type""#,
        ),
        ("2YotnFZFEjr1zCsicMWpAA", "tGzv3JOkF0XG5Qx2TlKWIA"),
        "scope",
    );
    kept::<RefreshV2>(
        "vaultist v2 user_id",
        &seeds(VAULTIST_V2, "usr:b06d9aaa", r#"\udc00usr:b06d9aaa"#),
        (
            "eyJraWQiOiJmODAyNjg0OC1mNTJkLTRmY",
            "eyJraWQiOiJmFGGghrwghhnEGFGrehrnjdf7653kFZ_uusa3WYE",
        ),
        "user_id",
    );
    kept::<token_provider_wechat::SnsRefreshToken>(
        "wechat openid",
        r#"{"access_token":"at-w","expires_in":7200,"refresh_token":"rt-w","openid":"o6_\ud83d","scope":"snsapi_userinfo"}"#,
        ("at-w", "rt-w"),
        "openid",
    );
    // Nor does one in an error's message hide its code.
    let error = decode::<token_provider_wechat::SnsRefreshToken>(
        r#"{"errcode":40030,"errmsg":"invalid refresh_token \ud83d"}"#,
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired, "{error}");
    // In a token: no pair to keep, never a token altered.
    let error =
        decode::<RefreshTokenGrant>(&seeds(OAUTH2, "tGzv3JOkF0XG5Qx2TlKWIA", r#"tGzv\ud83d"#))
            .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown, "{error}");
}

/// A lone surrogate in an object's key (`{"\ud83d": 1}`) is a key that is not Unicode: no
/// declared field's, so it is left out (not kept among the extras), and a JSON value field
/// holding one is read as absent; the rotated pair is kept, and an error's code still
/// decides.
#[test]
fn a_lone_surrogate_in_a_key_keeps_the_rotated_pair() {
    let shown = |set: &TokenSet<serde_json::Value>| format!("{:?}", set.extras);
    let body = VAULTIST_V2.replace("EXPIRY", "3600").replace(
        r#""token_type""#,
        r#""odd \ud83d":1,"\udc00":{"x":2},"token_type""#,
    );
    let set = decode::<RefreshV2>(&body).unwrap_or_else(|e| panic!("vaultist: {e}"));
    assert_eq!(
        pair(&set),
        (
            "eyJraWQiOiJmODAyNjg0OC1mNTJkLTRmY",
            Some("eyJraWQiOiJmFGGghrwghhnEGFGrehrnjdf7653kFZ_uusa3WYE")
        )
    );
    assert_eq!(
        set.extras.get("user_id"),
        Some(&serde_json::json!("usr:b06d9aaa-4310-4c0d-9e5343c1b35"))
    );
    assert!(
        !shown(&set).contains("not Unicode") && !shown(&set).contains("\\0"),
        "{}",
        shown(&set)
    );
    // In a JSON value field (Lazada's `country_user_info`): that field alone is unread.
    let lazada = r#"{"code":"0","access_token":"at-l","refresh_token":"rt-l","expires_in":3600,"country_user_info":[{"\ud800country":"sg","seller_id":"1"}],"account":"a@b.c"}"#;
    let set = decode::<token_provider_lazada::RefreshAccessToken>(lazada)
        .unwrap_or_else(|e| panic!("lazada: {e}"));
    assert_eq!(pair(&set), ("at-l", Some("rt-l")));
    assert_eq!(set.extras.get("account"), Some(&serde_json::json!("a@b.c")));
    assert!(
        set.extras
            .get("country_user_info")
            .is_none_or(serde_json::Value::is_null),
        "{}",
        shown(&set)
    );
    // Nor does one hide an error's code.
    let error = decode::<token_provider_wechat::SnsRefreshToken>(
        r#"{"errcode":40030,"\ud83d":"x","errmsg":"invalid refresh_token"}"#,
    )
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired, "{error}");
}

#[test]
fn keycloak_refresh_expires_in_zero_means_no_refresh_expiry() {
    let set = decode::<RefreshTokenGrant>(&KEYCLOAK.replace("EXPIRY", "0")).unwrap();
    assert_eq!(set.refresh_expires_at, None);
    assert_eq!(pair(&set).1, Some("tGzv3JOkF0XG5Qx2TlKWIA"));
    let set = decode::<RefreshTokenGrant>(&KEYCLOAK.replace("EXPIRY", "1800")).unwrap();
    assert_eq!(
        set.refresh_expires_at,
        Some(now() + Duration::seconds(1800))
    );
    // The access token's zero stays "expires now": the manager handles that answer.
    let set = decode::<RefreshTokenGrant>(&OAUTH2.replace("EXPIRY", "0")).unwrap();
    assert_eq!(set.access_expires_at, Some(now()));
}

/// Every provider's declared answer: an access token with a control character beside no
/// refresh token is refused (nothing to keep), naming the field, never the value; beside a
/// refresh token the answer is kept for the manager (which saves the refresh token and
/// never serves the access token); a refresh token with one is read (it travels escaped).
#[test]
fn a_token_with_a_control_character_is_refused_or_kept_by_every_provider() {
    fn refused<E: Endpoint>(name: &str, body: &str) {
        let error = decode::<E>(body).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::OutcomeUnknown, "{name}");
        let shown = format!("{error} {error:?}");
        assert!(
            shown.contains("the access token contains a control character"),
            "{name}: {shown}"
        );
        assert!(!shown.contains("SECRETPART"), "{name}: {shown}");
    }
    fn kept<E: Endpoint>(name: &str, body: &str, refresh: &str) {
        let set = decode::<E>(body).unwrap();
        let refresh_token = set.refresh_token.as_ref().map(|t| t.expose_secret());
        assert_eq!(refresh_token, Some(refresh), "{name}");
    }
    refused::<RefreshTokenGrant>(
        "oauth2",
        r#"{"access_token":"at-SECRETPART\r\nX-Evil: 1","expires_in":60}"#,
    );
    kept::<RefreshTokenGrant>(
        "oauth2",
        r#"{"access_token":"at-SECRETPART\r\nX-Evil: 1","refresh_token":"rt-1","expires_in":60}"#,
        "rt-1",
    );
    kept::<RefreshV3>(
        "vaultist",
        r#"{"access_token":"at-1","refresh_token":"rt-SECRETPART\u0000","expires_in":60}"#,
        "rt-SECRETPART\0",
    );
    kept::<MiniAppRefresh>(
        "maya",
        r#"{"accessToken":"at-SECRETPART\n","refreshToken":"rt-2","expiresAt":1767229200}"#,
        "rt-2",
    );
    kept::<ApplyToken>(
        "alipay+",
        &ALIPAY
            .replace("EXPIRY", r#""2022-06-06T12:12:12+08:00""#)
            .replace(
                "2810100334F62CBC577F468AAC87CFC6C9107811",
                "SECRETPART\\r2810100334F62CBC577F468AAC87CFC6C9107811",
            ),
        "SECRETPART\r2810100334F62CBC577F468AAC87CFC6C9107811",
    );
}

// ---- echoes of the refresh token in error answers -----------------------------------------

/// 34 characters, as in the probe that found the leak.
const ECHOED: &str = "rt-9f8e7d6c5b4a3f2e1d0c9b8a7f6e5d4";

fn assert_no_echo(text: &str) {
    assert!(!text.is_empty());
    for start in 0..=ECHOED.len() - 8 {
        let run = &ECHOED[start..start + 8];
        assert!(
            !text.contains(run),
            "`{run}` of the refresh token in {text}"
        );
    }
}

fn shown(error: EndpointError) -> String {
    let error = Error::from(error);
    format!("{error}\n{error:?}")
}

/// The oauth2 provider's refresh of `ECHOED`, its client secret in HTTP Basic.
fn echoed_grant() -> RefreshTokenGrant {
    let config = OAuth2Config::new("app", "https://id.example/token".parse().unwrap())
        .with_client_secret(ClientSecret::new("cs-0123456789abcdef"));
    let session: TokenSet =
        TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new(ECHOED));
    RefreshTokenGrant::from_context(&RequestContext::for_refresh(&config.client(), &session))
        .unwrap()
}

#[test]
fn an_echoed_refresh_token_shows_nowhere_in_the_oauth2_providers_errors() {
    let grant = echoed_grant();
    let secrets = grant.secrets();
    assert!(secrets.contains(&ECHOED));
    let part = &ECHOED[5..29];
    for (status, body, expect) in [
        (
            400,
            format!(r#"{{"error":"{ECHOED}","error_description":"bad"}}"#),
            "`[redacted]`: bad",
        ),
        (
            400,
            format!(r#"{{"error":"x{part}","error_description":"token {part} expired"}}"#),
            "`x[redacted]`: token [redacted] expired",
        ),
        (
            200,
            format!(r#"{{"error":"invalid_grant","error_description":"{part}"}}"#),
            "`invalid_grant`: [redacted]",
        ),
        (
            502,
            format!("<html>upstream refused {part}</html>"),
            "<html>upstream refused [redacted]</html>",
        ),
        (
            200,
            format!("refresh_token={part}; oops"),
            "[redacted]; oops",
        ),
    ] {
        let error = decode_response::<RefreshTokenGrant>(&answer(status, &body), now(), &secrets)
            .unwrap_err();
        let text = shown(error);
        assert!(text.contains(expect), "{status} {body}: {text}");
        assert_no_echo(&text);
    }
}

/// An error page that echoes the request's headers (a proxy's or a framework's debug page,
/// a WAF's block page) shows the client's HTTP Basic credentials, Base64 of `id:secret`,
/// and a bearer sent on refresh (Paymentsgate's, Maya's app token): neither shows in the
/// error, whatever the status and however the header is written.
#[test]
fn echoed_authorization_headers_show_nowhere_in_an_error() {
    let grant = echoed_grant();
    let request = grant
        .encode_request(&"https://id.example/".parse().unwrap())
        .unwrap();
    let basic = request.headers()[http::header::AUTHORIZATION]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        basic.starts_with("Basic "),
        "HTTP Basic: the client secret is in it"
    );
    let bearer = "Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlLW9mLWl0";
    let secrets = grant.secrets();
    for header in [basic.as_str(), bearer] {
        let value = header.split_once(' ').unwrap().1;
        for (status, body) in [
            (
                500,
                format!("<pre>POST /token\r\nAuthorization: {header}\r\nHost: id.example</pre>"),
            ),
            (
                400,
                format!("request headers: authorization={header}; host=id.example"),
            ),
            (
                502,
                format!(r#"{{"error":"bad_gateway","headers":{{"Authorization":"{header}"}}}}"#),
            ),
            (
                403,
                format!(r#"<td>HTTP_AUTHORIZATION</td><td>"{header}"</td>"#),
            ),
        ] {
            let error =
                decode_response::<RefreshTokenGrant>(&answer(status, &body), now(), &secrets)
                    .unwrap_err();
            let text = shown(error);
            assert!(!text.contains(value), "{status}: {text}");
            assert!(!text.contains(&value[..12]), "{status}: {text}");
        }
    }
}

#[test]
fn an_echoed_refresh_token_shows_nowhere_in_a_result_envelope_error() {
    let part = &ECHOED[2..26];
    let body = format!(
        r#"{{"result":{{"resultStatus":"F","resultCode":"{part}","resultMessage":"refresh token {ECHOED} is invalid"}}}}"#
    );
    let error = decode_response::<ApplyToken>(&answer(200, &body), now(), &[ECHOED]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    let text = shown(error);
    assert!(
        text.contains("refresh token [redacted] is invalid"),
        "{text}"
    );
    assert_no_echo(&text);

    let v2 = format!(
        r#"{{"status":"UNAUTHORIZED","message":"The Token {part} has expired","traceId":"t","errors":[]}}"#
    );
    let error = decode_response::<RefreshV2>(&answer(401, &v2), now(), &[ECHOED]).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    let text = shown(error);
    assert!(text.contains("The Token [redacted] has expired"), "{text}");
    assert_no_echo(&text);
}

// ---- codes on HTTP 200, answer envelopes, millisecond expiries (issue 12) -------------

mod declared {
    use token_core::expiry::{ExpiresIn, UnixMillisText};
    use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

    /// Integer codes, as WeChat sends them on HTTP 200 (`{"errcode": 40030, ...}`).
    #[token_endpoint(error_code)]
    #[derive(Debug, PartialEq)]
    pub enum WalletCode {
        #[token(code = 105002, kind = reauth_required)]
        RefreshTokenExpired,
        #[token(code = -1, kind = transient)]
        Busy,
        #[token(code = 40013, kind = misconfigured)]
        BadAppId,
        #[token(other)]
        Other(String),
    }

    #[token_endpoint(error, success_codes(0))]
    pub struct WalletError {
        #[token(code)]
        pub code: WalletCode,
        #[token(message)]
        pub message: Option<String>,
    }

    #[token_endpoint(
        response,
        envelope = "data",
        body(name = "code", value = 0),
        body(name = "message", value = "success")
    )]
    pub struct WalletTokens {
        #[token(access_token)]
        pub access_token: AccessToken,
        #[token(refresh_token)]
        pub refresh_token: Option<RefreshToken>,
        #[token(expiry)]
        pub expires_in: Option<ExpiresIn>,
    }

    #[token_endpoint(post = "/token", response = WalletTokens, error = WalletError)]
    pub struct WalletRefresh {
        #[token(from = refresh_token)]
        pub refresh_token: RefreshToken,
    }

    /// RFC 6749 errors beside a success answer that carries `"error": ""`.
    #[token_endpoint(error, success_codes(""))]
    pub struct PlainError {
        #[token(code)]
        pub error: String,
    }

    #[token_endpoint(response)]
    pub struct PlainTokens {
        #[token(access_token)]
        pub access_token: AccessToken,
        #[token(expiry)]
        pub issued_at: Option<UnixMillisText>,
        pub error: Option<String>,
    }

    #[token_endpoint(post = "/token", response = PlainTokens, error = PlainError)]
    pub struct PlainRefresh {
        #[token(from = refresh_token)]
        pub refresh_token: RefreshToken,
    }
}

#[test]
fn a_success_answer_carrying_an_empty_error_is_a_success() {
    let set = decode::<declared::PlainRefresh>(
        r#"{"access_token":"at","error":"","issued_at":"1278448832702"}"#,
    )
    .unwrap();
    assert_eq!(set.access_token.expose_secret(), "at");
    assert_eq!(
        set.access_expires_at,
        Some(datetime!(2010-07-06 20:40:32.702 UTC))
    );
    // `null` is no code either; a real one is the provider's error.
    assert!(decode::<declared::PlainRefresh>(r#"{"access_token":"at","error":null}"#).is_ok());
    let error = decode::<declared::PlainRefresh>(r#"{"error":"invalid_grant"}"#).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
}

#[test]
fn an_error_code_on_http_200_is_classified_by_its_code() {
    let error =
        decode::<declared::WalletRefresh>(r#"{"code":105002,"message":"refresh token expired"}"#)
            .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired, "{error}");
    let EndpointError::Provider(provider) = error else {
        panic!("a provider error")
    };
    assert_eq!(provider.code, "105002");
    assert_eq!(provider.message.as_deref(), Some("refresh token expired"));
    // The same code as a string, a negative code, an unknown one.
    for (body, kind) in [
        (r#"{"code":"105002"}"#, ErrorKind::ReauthRequired),
        (r#"{"code":-1,"message":"busy"}"#, ErrorKind::Transient),
        (r#"{"code":40013}"#, ErrorKind::Misconfigured),
        (r#"{"code":777}"#, ErrorKind::Rejected),
    ] {
        assert_eq!(
            decode::<declared::WalletRefresh>(body).unwrap_err().kind(),
            kind,
            "{body}"
        );
    }
}

#[test]
fn an_enveloped_success_with_its_success_code_round_trips() {
    use token_core::codec::TokenResponse;
    let body = r#"{"code":0,"message":"success","data":{"access_token":"at","refresh_token":"rt","expires_in":7200}}"#;
    let set = decode::<declared::WalletRefresh>(body).unwrap();
    assert_eq!(pair(&set), ("at", Some("rt")));
    assert_eq!(set.access_expires_at, Some(now() + Duration::seconds(7200)));
    // `"0"` is the success code too.
    assert!(
        decode::<declared::WalletRefresh>(&body.replace(r#""code":0"#, r#""code":"0""#)).is_ok()
    );
    // The server side writes the envelope and the success code.
    let typed = declared::WalletTokens::decode_body(body.as_bytes())
        .unwrap()
        .into_token_set(now())
        .unwrap();
    let written = declared::WalletTokens::from_token_set(&typed, now()).encode_body();
    let json = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).unwrap();
    assert_eq!(json(&written), json(body.as_bytes()));
    // And an error written by the server is read back as the same error.
    use token_core::codec::ErrorResponse;
    let error = declared::WalletError {
        code: declared::WalletCode::RefreshTokenExpired,
        message: None,
    };
    let (status, bytes) = error.encode_error();
    assert_eq!(json(&bytes), serde_json::json!({"code": 105002}));
    let back = declared::WalletError::decode_error(status, &bytes).unwrap();
    assert_eq!(back.code, declared::WalletCode::RefreshTokenExpired);
}

#[test]
fn hostile_codes_and_envelopes_give_typed_errors_and_never_cost_a_success() {
    let tokens = r#""data":{"access_token":"at","refresh_token":"rt"}"#;
    // A code of no code type, or a huge one, is not this error: the tokens are read.
    for code in [
        "true",
        "{}",
        "[0]",
        "1.5",
        "1e400000000",
        "99999999999999999999999",
    ] {
        let body = format!(r#"{{"code":{code},{tokens}}}"#);
        match decode::<declared::WalletRefresh>(&body) {
            Ok(set) => assert_eq!(pair(&set), ("at", Some("rt")), "{code}"),
            // `1e400000000` is not JSON at all.
            Err(e) => assert!(matches!(e, EndpointError::Parse { .. }), "{code}: {e}"),
        }
    }
    // A missing envelope, or one that is not an object: a parse error that keeps the body.
    for body in [
        r#"{"code":0,"access_token":"at"}"#,
        r#"{"code":0,"data":"at"}"#,
        r#"{"code":0,"data":null}"#,
        r#"{"code":0,"data":[{"access_token":"at"}]}"#,
        r#"[{"code":0}]"#,
    ] {
        let error = decode::<declared::WalletRefresh>(body).unwrap_err();
        let EndpointError::Parse { kind, .. } = &error else {
            panic!("{body}: {error}")
        };
        assert_eq!(*kind, ErrorKind::OutcomeUnknown, "{body}");
    }
    // An odd expiry inside the envelope keeps the pair.
    let set = decode::<declared::WalletRefresh>(
        r#"{"code":0,"data":{"access_token":"at","refresh_token":"rt","expires_in":"NaN"}}"#,
    )
    .unwrap();
    assert_eq!(
        (pair(&set), set.access_expires_at),
        (("at", Some("rt")), None)
    );
    // A huge millisecond expiry is unknown, not a lost pair.
    let set = decode::<declared::PlainRefresh>(
        r#"{"access_token":"at","issued_at":"99999999999999999999"}"#,
    )
    .unwrap();
    assert_eq!(set.access_expires_at, None);
}

/// An answer on HTTP 200 that carries a new pair and an error code that means a dead grant
/// contradicts itself: the provider may have rotated to that pair (then the refresh token
/// presented is spent), or refused it. It is no verdict on the session (the pair in hand
/// would be dropped with the session); an unknown outcome, asked again inside the reuse
/// window, and never shown with a token of the pair.
#[test]
fn a_200_with_a_new_pair_and_a_dead_grant_code_is_an_unknown_outcome() {
    fn check<E: Endpoint>(name: &str, body: &str) {
        let error = decode_response::<E>(&answer(200, body), now(), &[])
            .map(|_| ())
            .expect_err(name);
        assert_eq!(error.kind(), ErrorKind::OutcomeUnknown, "{name}: {error}");
        let text = shown(error);
        for token in ["at-NEW-0123456789", "rt-NEW-0123456789"] {
            assert!(!text.contains(token), "{name}: {text}");
        }
    }
    let pair = r#""access_token":"at-NEW-0123456789","refresh_token":"rt-NEW-0123456789","expires_in":3600"#;
    let camel = r#""accessToken":"at-NEW-0123456789","refreshToken":"rt-NEW-0123456789""#;
    check::<RefreshTokenGrant>("oauth2", &format!(r#"{{"error":"invalid_grant",{pair}}}"#));
    check::<RefreshTokenGrant>(
        "oauth2 invalid_token",
        &format!(r#"{{{pair},"error":"invalid_token","error_description":"expired"}}"#),
    );
    // Its text echoing a token of the pair it carries shows none of it either.
    check::<RefreshTokenGrant>(
        "oauth2 echoing the pair",
        &format!(
            r#"{{{pair},"error":"invalid_grant at-NEW-0123456789","error_description":"use rt-NEW-0123456789 instead"}}"#
        ),
    );
    check::<MiniAppRefresh>(
        "maya /tokens",
        &format!(r#"{{"error":"invalid_token",{camel},"expiresAt":1700000000}}"#),
    );
    check::<RefreshV3>(
        "vaultist v3",
        &format!(r#"{{"error":"invalid_grant",{pair}}}"#),
    );
    check::<RefreshV2>(
        "vaultist v2",
        &format!(r#"{{"status":"UNAUTHORIZED","message":"The Token has expired",{pair}}}"#),
    );
    check::<ApplyToken>(
        "alipay+",
        &format!(
            r#"{{"result":{{"resultStatus":"F","resultCode":"INVALID_REFRESH_TOKEN"}},{camel}}}"#
        ),
    );
    check::<token_provider_wechat::SnsRefreshToken>(
        "wechat",
        &format!(r#"{{"errcode":40030,"errmsg":"invalid refresh_token",{pair},"openid":"o"}}"#),
    );
    check::<token_provider_lazada::RefreshAccessToken>(
        "lazada",
        &format!(r#"{{"code":"IllegalRefreshToken","type":"ISP",{pair}}}"#),
    );
    // The same codes without a pair are the verdicts they say; so are they on a 4xx.
    for (status, body) in [
        (200, r#"{"error":"invalid_grant"}"#.to_owned()),
        (400, format!(r#"{{"error":"invalid_grant",{pair}}}"#)),
    ] {
        let error = decode_response::<RefreshTokenGrant>(&answer(status, &body), now(), &[])
            .map(|_| ())
            .unwrap_err();
        assert_eq!(error.kind(), ErrorKind::ReauthRequired, "{status} {body}");
    }
}

/// A loopback server for one connection: reads the request, writes `head`, then `chunk`
/// every `every` (tokio's clock) at most `times` times, then holds the connection open.
/// Returns its URL and how many body bytes it wrote.
async fn body_server(
    head: &'static str,
    chunk: Vec<u8>,
    every: std::time::Duration,
    times: usize,
) -> (url::Url, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::Ordering;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://{}/token", listener.local_addr().unwrap())).unwrap();
    let written = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let counter = written.clone();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        let mut request = [0; 4096];
        let _ = stream.read(&mut request).await;
        stream.write_all(head.as_bytes()).await.unwrap();
        for _ in 0..times {
            if stream.write_all(&chunk).await.is_err() {
                return; // the client gave up
            }
            counter.fetch_add(chunk.len(), Ordering::SeqCst);
            tokio::time::sleep(every).await;
        }
        std::future::pending::<()>().await;
    });
    (url, written)
}

/// Sends a refresh to `url` through the default transport; `Err` also when no verdict came
/// within an hour of tokio's clock (so a broken limit fails the test instead of hanging it).
async fn send_to(
    url: &url::Url,
) -> Result<http::Response<Vec<u8>>, token_core::error::TransportError> {
    use token_core::transport::HttpClient as _;
    let request = RefreshTokenGrant::new(RefreshToken::new("rt-canary"))
        .encode_request(url)
        .unwrap();
    let client = token_core::transport::ReqwestClient::new().unwrap();
    let send = client.send(request);
    tokio::time::timeout(std::time::Duration::from_secs(3600), send)
        .await
        .expect("no verdict within an hour")
}

#[tokio::test(start_paused = true)]
async fn a_body_that_trickles_or_never_comes_costs_at_most_the_timeout() {
    use std::sync::atomic::Ordering;
    let second = std::time::Duration::from_secs(1);
    let cases = [
        // One byte every 10 s of a 100 000-byte answer: each read is quick, the whole is not.
        (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n",
            10 * second,
            ErrorKind::OutcomeUnknown,
        ),
        (
            "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n",
            10 * second,
            ErrorKind::Transient,
        ),
        // The headers, then nothing.
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 50\r\n\r\n",
            3600 * second,
            ErrorKind::OutcomeUnknown,
        ),
    ];
    for (head, every, kind) in cases {
        let chunk = if head.contains("chunked") {
            b"1\r\n{\r\n".to_vec()
        } else {
            b"{".to_vec()
        };
        let (url, written) = body_server(head, chunk, every, 10_000).await;
        let started = tokio::time::Instant::now();
        let error = send_to(&url)
            .await
            .expect_err("an answer that never completes");
        assert_eq!(error.kind, kind, "{head:?}: {error}");
        assert!(
            started.elapsed() <= 31 * second,
            "{head:?}: {:?}",
            started.elapsed()
        );
        assert!(written.load(Ordering::SeqCst) < 100, "{head:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn a_body_that_grows_without_end_is_cut_at_the_size_limit() {
    use std::sync::atomic::Ordering;
    let cases = [
        (
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n",
            ErrorKind::OutcomeUnknown,
        ),
        (
            "HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n",
            ErrorKind::Transient,
        ),
        (
            "HTTP/1.1 200 OK\r\nContent-Length: 1000000000000\r\n\r\n",
            ErrorKind::OutcomeUnknown,
        ),
    ];
    for (head, kind) in cases {
        let chunk = if head.contains("chunked") {
            let mut chunk = b"10000\r\n".to_vec(); // 64 KiB
            chunk.resize(chunk.len() + 0x10000, b'x');
            chunk.extend_from_slice(b"\r\n");
            chunk
        } else {
            vec![b'x'; 0x10000]
        };
        // 64 MiB at most, at once; then the connection stays open.
        let (url, written) = body_server(head, chunk, std::time::Duration::ZERO, 1024).await;
        let started = tokio::time::Instant::now();
        let error = send_to(&url).await.expect_err("an answer over the limit");
        assert_eq!(error.kind, kind, "{head:?}: {error}");
        assert!(error.message.contains("exceeds"), "{head:?}: {error}");
        assert_eq!(
            started.elapsed(),
            std::time::Duration::ZERO,
            "{head:?}: cut without waiting"
        );
        assert!(
            written.load(Ordering::SeqCst) < 64 << 20,
            "{head:?}: read to its end"
        );
    }
}

// ---- WeChat and Lazada: hostile answers to their own clients over a loopback socket --------

mod wallets {
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    use http::header::CONTENT_TYPE;
    use http::{HeaderValue, StatusCode};
    use serde_json::{Value, json};
    use token_core::clock::{Clock, ManualClock};
    use token_core::error::ErrorKind;
    use token_core::manager::{ManagerConfig, RetryPolicy, TokenManager};
    use token_core::provider::Provider;
    use token_core::sandbox::{Failure, RunningSandbox};
    use token_core::store::StoredRecord;
    use token_core::token_set::{StoredTokenSet, TokenSet};
    use token_core::transport::ReqwestClient;
    use token_provider_lazada::{Lazada, LazadaConfig, RefreshAccessToken};
    use token_provider_wechat::{SnsRefreshToken, WeChat, WeChatConfig};
    use token_test_support::harness::START;

    const SESSION: &str = "user-1";
    const APP_SECRET: &str = "lazada-app-SECRET-9f8e";

    /// What the caller gets, and what the store holds afterwards.
    #[derive(Clone, Copy, Debug, PartialEq)]
    pub enum Outcome {
        /// A token; the stored set is the answer's.
        Token,
        /// An error of this kind after this many calls; the stored set is the seeded one.
        Kept(ErrorKind, u64),
        /// Re-auth after one call; the store holds the verdict.
        Reauth,
        /// `Rejected` after one call; the store holds the answer's refresh token `rt-new`
        /// beside an empty access token, set aside (never served).
        SetAside,
    }

    pub struct Case {
        pub what: &'static str,
        pub failure: Failure,
        pub outcome: Outcome,
    }

    pub fn json_200(body: impl Into<Vec<u8>>) -> Failure {
        Failure::new(StatusCode::OK)
            .with_header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .with_body(body)
    }

    pub fn fifty_megabytes(token: &str) -> Vec<u8> {
        let mut body = format!(r#"{{"access_token":"{token}","padding":""#).into_bytes();
        body.resize(50 * 1024 * 1024, b'x');
        body.extend_from_slice(b"\"}");
        body
    }

    /// The cases both providers meet, whatever their envelope.
    pub fn common(token_key: &str) -> Vec<Case> {
        use Outcome::Kept;
        vec![
            Case {
                what: "an HTML page on HTTP 200",
                failure: Failure::new(StatusCode::OK)
                    .with_header(CONTENT_TYPE, HeaderValue::from_static("text/html"))
                    .with_body("<!doctype html><title>Sign in to Wi-Fi</title>"),
                outcome: Kept(ErrorKind::OutcomeUnknown, 1),
            },
            Case {
                what: "a truncated JSON body",
                failure: json_200(format!(r#"{{"{token_key}":"at-CANARY-1","expires_in":72"#)),
                outcome: Kept(ErrorKind::OutcomeUnknown, 1),
            },
            Case {
                what: "a 50 MB body",
                failure: json_200(fifty_megabytes("at-CANARY-2")),
                outcome: Kept(ErrorKind::OutcomeUnknown, 1),
            },
        ]
    }

    /// What differs between the providers' runs.
    pub struct Setup {
        /// The refresh path.
        pub path: &'static str,
        /// The seeded session's extras.
        pub extras: Value,
        /// How long until the seeded access token needs a refresh.
        pub expire: time::Duration,
        /// The provider's secrets besides the refresh token.
        pub secrets: &'static [&'static str],
    }

    /// Seeds `SESSION` with a pair the sandbox issued, lets its access token expire, injects
    /// `case` and asks for a token, over a real socket.
    pub async fn run<P: Provider>(
        provider: impl FnOnce(url::Url) -> P,
        sandbox: RunningSandbox,
        clock: ManualClock,
        setup: &Setup,
        case: Case,
    ) {
        let Setup {
            path,
            extras,
            expire,
            secrets,
        } = setup;
        let what = case.what;
        let shown = Arc::new(Mutex::new(Vec::<String>::new()));
        let manager = socket_manager(provider(sandbox.base_url()), &clock, &shown);
        let seeded = sandbox.issue_with(SESSION, extras.clone()).await.unwrap();
        let first = TokenSet::<P::Extras>::from_stored(seeded.clone()).unwrap();
        manager.insert(SESSION, first).await.unwrap();
        clock.advance(*expire);
        sandbox.reset_calls();
        sandbox.fail_next(path, 10, case.failure);

        let result = manager.access_token(SESSION).await;
        let calls = sandbox.calls(path);
        let key = manager.session_key(SESSION);
        let stored = manager.store().load(&key).await.unwrap().map(|v| v.value);
        match (case.outcome, &result) {
            (Outcome::Token, Ok(_)) => {}
            (Outcome::Kept(kind, n), Err(error)) => {
                assert_eq!((error.kind(), calls), (kind, n), "{what}: {error}");
                let Some(StoredRecord::Tokens(kept)) = &stored else {
                    panic!("{what}: the stored set is gone: {stored:?}")
                };
                assert_same(kept, &seeded, what);
            }
            (Outcome::Reauth, Err(error)) => {
                assert_eq!(
                    (error.kind(), calls),
                    (ErrorKind::ReauthRequired, 1),
                    "{what}: {error}"
                );
                assert!(
                    matches!(stored, Some(StoredRecord::Reauth(_))),
                    "{what}: {stored:?}"
                );
            }
            (Outcome::SetAside, Err(error)) => {
                assert_eq!(
                    (error.kind(), calls),
                    (ErrorKind::Rejected, 1),
                    "{what}: {error}"
                );
                let Some(StoredRecord::Tokens(kept)) = &stored else {
                    panic!("{what}: the stored set is gone: {stored:?}")
                };
                assert_eq!(kept.access_token.expose_secret(), "", "{what}");
                let refresh = kept.refresh_token.as_ref().map(|t| t.expose_secret());
                assert_eq!(refresh, Some("rt-new"), "{what}");
            }
            (expected, got) => panic!("{what}: expected {expected:?}, got {got:?}"),
        }
        if let Err(error) = &result {
            shown.lock().unwrap().push(format!("{error} {error:?}"));
        }
        let refresh = seeded.refresh_token.as_ref().unwrap().expose_secret();
        for text in shown.lock().unwrap().iter() {
            for secret in secrets.iter().copied().chain([refresh, "CANARY"]) {
                assert!(!text.contains(secret), "{what}: `{secret}` in {text}");
            }
        }
        sandbox.shutdown().await;
    }

    async fn wechat_sandbox(clock: &ManualClock) -> (RunningSandbox, WeChatConfig) {
        let config = WeChatConfig::new("wx520c15f417810387");
        let sandbox = token_provider_wechat::sandbox::start(
            Arc::new(clock.clone()),
            token_provider_wechat::sandbox::issuer_config(),
            &config,
        )
        .await
        .unwrap();
        (sandbox, config)
    }

    async fn lazada_sandbox(clock: &ManualClock) -> (RunningSandbox, LazadaConfig) {
        let app = LazadaConfig::new("123456", APP_SECRET);
        let sandbox = token_provider_lazada::sandbox::start(
            Arc::new(clock.clone()),
            token_provider_lazada::sandbox::issuer_config(),
            &app,
        )
        .await
        .unwrap();
        (sandbox, app)
    }

    /// A manager over `provider` on a real socket and `clock`, its events' `Debug` collected
    /// in `shown`.
    fn socket_manager<P: Provider>(
        provider: P,
        clock: &ManualClock,
        shown: &Arc<Mutex<Vec<String>>>,
    ) -> TokenManager<P> {
        let config = ManagerConfig::default().with_retry(
            RetryPolicy::default()
                .with_max_attempts(3)
                .with_backoff(Duration::from_millis(1), Duration::from_millis(5)),
        );
        let events = shown.clone();
        TokenManager::builder(provider)
            .client(ReqwestClient::with_timeout(Some(Duration::from_secs(20))).unwrap())
            .clock(Arc::new(clock.clone()) as Arc<dyn Clock>)
            .config(config)
            .on_event(move |event| events.lock().unwrap().push(format!("{event:?}")))
            .build()
            .unwrap()
    }

    fn assert_same(kept: &StoredTokenSet, seeded: &StoredTokenSet, what: &str) {
        assert_eq!(kept.access_token, seeded.access_token, "{what}");
        assert_eq!(kept.refresh_token, seeded.refresh_token, "{what}");
    }

    fn errcode(code: Value) -> Failure {
        json_200(json!({"errcode": code, "errmsg": "invalid refresh_token"}).to_string())
    }

    fn wechat_cases() -> Vec<Case> {
        use Outcome::{Kept, Reauth, SetAside, Token};
        let mut cases = common("access_token");
        cases.extend([
            Case { what: "errcode 40030 as a string", failure: errcode(json!("40030")), outcome: Reauth },
            Case { what: "errcode 42002 as a float", failure: errcode(json!(42002.0)), outcome: Reauth },
            Case { what: "errcode null and no token", failure: errcode(Value::Null), outcome: Kept(ErrorKind::OutcomeUnknown, 1) },
            Case { what: "errcode 0 and no token", failure: json_200(r#"{"errcode":0,"errmsg":"ok"}"#), outcome: Kept(ErrorKind::OutcomeUnknown, 1) },
            Case { what: "a success carrying errcode 0", failure: json_200(r#"{"errcode":0,"errmsg":"ok","access_token":"at-new","expires_in":7200,"refresh_token":"rt-new","openid":"o"}"#), outcome: Token },
            Case { what: "a token that is a number", failure: json_200(r#"{"access_token":12345678901,"expires_in":7200}"#), outcome: Kept(ErrorKind::OutcomeUnknown, 1) },
            Case { what: "an empty access token", failure: json_200(r#"{"access_token":"","expires_in":7200,"refresh_token":"rt-new"}"#), outcome: SetAside },
            Case { what: "an empty access token alone", failure: json_200(r#"{"access_token":"","expires_in":7200}"#), outcome: Kept(ErrorKind::OutcomeUnknown, 1) },
            Case { what: "an unknown errcode", failure: errcode(json!(40163)), outcome: Kept(ErrorKind::Rejected, 1) },
            Case { what: "an unknown errcode as text", failure: errcode(json!("nope")), outcome: Kept(ErrorKind::Rejected, 1) },
            // "Retry next minute": no second call within this manager's retry deadline.
            Case { what: "the minute quota (45011)", failure: errcode(json!(45011)), outcome: Kept(ErrorKind::Transient, 1) },
            Case { what: "the daily quota (45009)", failure: errcode(json!(45009)), outcome: Kept(ErrorKind::Transient, 3) },
            Case { what: "system busy (-1)", failure: errcode(json!(-1)), outcome: Kept(ErrorKind::Transient, 3) },
            Case { what: "invalid appid (40013)", failure: errcode(json!(40013)), outcome: Kept(ErrorKind::Misconfigured, 1) },
        ]);
        cases
    }

    #[tokio::test]
    async fn wechat_hostile_answers_give_typed_errors_and_keep_the_set() {
        for case in wechat_cases() {
            let clock = ManualClock::new(START);
            let (sandbox, config) = wechat_sandbox(&clock).await;
            run(
                |url| WeChat::new(url, config),
                sandbox,
                clock,
                &Setup {
                    path: <SnsRefreshToken as token_core::codec::Endpoint>::PATH,
                    extras: json!({"openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}),
                    expire: time::Duration::hours(3),
                    secrets: &[],
                },
                case,
            )
            .await;
        }
    }

    #[tokio::test]
    async fn wechat_sends_the_same_refresh_token_back_and_it_is_kept() {
        let clock = ManualClock::new(START);
        let (sandbox, config) = wechat_sandbox(&clock).await;
        let shown = Arc::new(Mutex::new(Vec::new()));
        let manager = socket_manager(WeChat::new(sandbox.base_url(), config), &clock, &shown);
        let first = TokenSet::from_stored(sandbox.issue(SESSION).await.unwrap()).unwrap();
        manager.insert(SESSION, first.clone()).await.unwrap();
        for _ in 0..3 {
            clock.advance(time::Duration::hours(3));
            let token = manager.access_token(SESSION).await.unwrap();
            assert_ne!(token, first.access_token);
            let set = manager.token_set(SESSION).await.unwrap();
            assert_eq!(set.refresh_token, first.refresh_token);
        }
        assert_eq!(
            sandbox.calls(<SnsRefreshToken as token_core::codec::Endpoint>::PATH),
            3
        );
    }

    fn code(code: &str) -> Failure {
        json_200(
            json!({"type": "ISV", "code": code, "message": "m", "request_id": "0ba2887315178178017221014"})
                .to_string(),
        )
    }

    fn tokens(expires_in: Option<&str>) -> Failure {
        let expiry = expires_in.map_or(String::new(), |e| format!(r#","expires_in":{e}"#));
        json_200(format!(
            r#"{{"code":"0","access_token":"at-new","refresh_token":"rt-new","refresh_expires_in":60{expiry},"request_id":"0b1"}}"#
        ))
    }

    fn lazada_cases() -> Vec<Case> {
        use Outcome::{Kept, Reauth, SetAside, Token};
        let mut cases = common("access_token");
        cases.extend([
            Case {
                what: "IllegalRefreshToken",
                failure: code("IllegalRefreshToken"),
                outcome: Reauth,
            },
            Case {
                what: "code 0 and no expires_in",
                failure: tokens(None),
                outcome: Token,
            },
            Case {
                what: "expires_in as a string",
                failure: tokens(Some(r#""2592000""#)),
                outcome: Token,
            },
            Case {
                what: "a negative expires_in",
                failure: tokens(Some("-5")),
                outcome: Token,
            },
            Case {
                what: "expires_in u64::MAX",
                failure: tokens(Some("18446744073709551615")),
                outcome: Token,
            },
            Case {
                what: "expires_in 1e300",
                failure: tokens(Some("1e300")),
                outcome: Token,
            },
            Case {
                what: "code 0 and no access token",
                failure: json_200(r#"{"code":"0","refresh_token":"rt-new","expires_in":10}"#),
                outcome: Kept(ErrorKind::OutcomeUnknown, 1),
            },
            Case {
                what: "a token that is a number",
                failure: json_200(r#"{"code":"0","access_token":5,"refresh_token":"rt-new"}"#),
                outcome: Kept(ErrorKind::OutcomeUnknown, 1),
            },
            Case {
                what: "an empty access token",
                failure: json_200(r#"{"code":"0","access_token":"","refresh_token":"rt-new"}"#),
                outcome: SetAside,
            },
            Case {
                what: "an unknown code on 200",
                failure: code("SomethingNew"),
                outcome: Kept(ErrorKind::Rejected, 1),
            },
            // Lazada's codes are names: a number is none of its codes, and the answer,
            // with no tokens either, cannot be read.
            Case {
                what: "a numeric code on 200",
                failure: json_200(r#"{"code":500,"message":"m"}"#),
                outcome: Kept(ErrorKind::OutcomeUnknown, 1),
            },
            Case {
                what: "ApiCallLimit",
                failure: code("ApiCallLimit"),
                outcome: Kept(ErrorKind::Transient, 3),
            },
            Case {
                what: "IncompleteSignature",
                failure: code("IncompleteSignature"),
                outcome: Kept(ErrorKind::Misconfigured, 1),
            },
        ]);
        cases
    }

    #[tokio::test]
    async fn lazada_hostile_answers_give_typed_errors_and_keep_the_set() {
        for case in lazada_cases() {
            let clock = ManualClock::new(START);
            let (sandbox, app) = lazada_sandbox(&clock).await;
            run(
                |url| Lazada::new(url, app),
                sandbox,
                clock,
                &Setup {
                    path: <RefreshAccessToken as token_core::codec::Endpoint>::PATH,
                    extras: json!({}),
                    expire: time::Duration::days(31),
                    secrets: &[APP_SECRET],
                },
                case,
            )
            .await;
        }
    }

    /// Lazada's error echoing the request's `sign` and refresh token, whole and in part:
    /// neither shows in the error or an event.
    #[tokio::test]
    async fn lazada_an_echoed_signature_shows_nowhere() {
        use token_core::codec::{Endpoint, FromContext, RequestContext};
        let clock = ManualClock::new(START);
        let (sandbox, app) = lazada_sandbox(&clock).await;
        let shown = Arc::new(Mutex::new(Vec::<String>::new()));
        let manager = socket_manager(Lazada::new(sandbox.base_url(), app.clone()), &clock, &shown);
        let seeded = sandbox.issue_with(SESSION, json!({})).await.unwrap();
        let session = TokenSet::from_stored(seeded.clone()).unwrap();
        manager.insert(SESSION, session.clone()).await.unwrap();
        clock.advance(time::Duration::days(31));
        // The request the manager is about to send, signed at the same instant.
        let request = RefreshAccessToken::from_context(
            &RequestContext::for_refresh(&app, &session).with_now(clock.now()),
        )
        .unwrap()
        .encode_request(&sandbox.base_url())
        .unwrap();
        let query = request.uri().query().unwrap().to_owned();
        let sign = query
            .split("sign=")
            .nth(1)
            .unwrap()
            .split('&')
            .next()
            .unwrap()
            .to_owned();
        let refresh = seeded
            .refresh_token
            .as_ref()
            .unwrap()
            .expose_secret()
            .to_owned();
        let message = format!(
            "sign {sign} of {refresh} does not match; got {}",
            &sign[8..40]
        );
        let path = <RefreshAccessToken as Endpoint>::PATH;
        sandbox.fail_next(
            path,
            1,
            json_200(
                json!({"type": "ISV", "code": "IncompleteSignature", "message": message})
                    .to_string(),
            ),
        );
        let error = manager.access_token(SESSION).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Misconfigured);
        assert_eq!(sandbox.calls(path), 1);
        shown.lock().unwrap().push(format!("{error} {error:?}"));
        for text in shown.lock().unwrap().iter() {
            for start in (0..sign.len() - 16).step_by(8) {
                let part = &sign[start..start + 16];
                assert!(!text.contains(part), "`{part}` of the signature in {text}");
            }
            assert!(!text.contains(&refresh), "the refresh token in {text}");
            assert!(!text.contains(APP_SECRET), "the app secret in {text}");
        }
    }

    /// WeChat documents `expires_in: 7200`; a lifetime of `u64::MAX` seconds (or any beyond
    /// the latest instant an expiry may have) is nonsense like `1e300`: unknown, so the
    /// manager assumes the lifetime it is configured with and refreshes again, instead of
    /// keeping the token for seven thousand years.
    #[tokio::test]
    async fn wechat_an_absurd_lifetime_is_unknown_not_forever() {
        let clock = ManualClock::new(START);
        let (sandbox, config) = wechat_sandbox(&clock).await;
        let lifetime = Duration::from_secs(7200);
        let manager = TokenManager::builder(WeChat::new(sandbox.base_url(), config))
            .client(ReqwestClient::with_timeout(Some(Duration::from_secs(20))).unwrap())
            .clock(Arc::new(clock.clone()) as Arc<dyn Clock>)
            .config(ManagerConfig::default().with_default_access_lifetime(Some(lifetime)))
            .build()
            .unwrap();
        let first = TokenSet::from_stored(sandbox.issue(SESSION).await.unwrap()).unwrap();
        manager.insert(SESSION, first).await.unwrap();
        for absurd in ["18446744073709551615", "1e300", "9223372036854775807"] {
            clock.advance(time::Duration::days(1));
            let path = <SnsRefreshToken as token_core::codec::Endpoint>::PATH;
            sandbox.fail_next(
                path,
                1,
                json_200(format!(
                    r#"{{"access_token":"at-{absurd}","expires_in":{absurd},"openid":"o"}}"#
                )),
            );
            manager.access_token(SESSION).await.unwrap();
            let set = manager.token_set(SESSION).await.unwrap();
            assert_eq!(
                set.access_expires_at,
                Some(clock.now() + lifetime),
                "{absurd}: the default lifetime"
            );
        }
    }
}
