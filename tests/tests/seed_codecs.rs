//! The seed providers' refresh endpoints, as the provider crates define them, against the
//! seeds' literal JSON: client encode and decode, server decode and encode, round trips.
//! (`#[token_endpoint]` itself is tested on small fixtures of its own in token-macros.)

use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use token_core::codec::{decode_response, encode_error, encode_response};
use token_core::oauth::{
    ClientAuthentication, ClientCredentialsGrant, OAuthCode, OAuthError, OAuthTokens,
    RefreshTokenGrant,
};
use token_core::{
    codec::Endpoint, codec::ErrorResponse, codec::FromContext, codec::RequestContext,
    codec::TokenResponse, error::EndpointError, error::ErrorKind, secret::AccessToken,
    secret::ClientSecret, secret::RefreshToken, token_set::TokenSet,
};
use token_provider_alipayplus::{
    AlipayCode, AlipayError, AlipayExtras, AlipayPlusConfig, ApplyToken, ApplyTokenResult,
};
use token_provider_maya::{MayaConfig, MayaTokens, MiniAppRefresh};
use token_provider_paymentsgate::{
    PaymentsgateConfig, PaymentsgateError, PaymentsgateTokens, RefreshServiceToken,
};
use token_provider_vaultist::{
    RefreshV3, VaultistCode, VaultistConfig, VaultistError, VaultistExtras, VaultistTokens,
    VaultistV2Error, VaultistV2Status,
};

fn now() -> OffsetDateTime {
    datetime!(2022-06-06 00:00 UTC)
}

fn base() -> url::Url {
    url::Url::parse("https://provider.example/").unwrap()
}

fn body_json(request: &http::Request<Vec<u8>>) -> Value {
    serde_json::from_slice(request.body()).unwrap()
}

fn answer(status: u16, body: &str) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.as_bytes().to_vec());
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    response
}

fn provider_error(
    result: Result<impl std::fmt::Debug, EndpointError>,
) -> token_core::error::ProviderError {
    match result {
        Err(EndpointError::Provider(e)) => e,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

// ---- Vault.ist v3 --------------------------------------------------------------------------

const VAULT_REQUEST: &str = r#"{
  "refreshToken": "dGhpcyBpcyBhIHJlZnJlc2hUb2tlbi..."
}"#;
const VAULT_RESPONSE: &str = r#"{
  "access_token": "eyJhbGciOiJIUzI1NiIsIn...",
  "refresh_token": "dGhpcyBpcyBhIHJlZnJlc2h...",
  "expires_in": 3600,
  "token_type": "Bearer"
}"#;
const VAULT_EXPIRED: &str = r#"{
  "error": "invalid_grant",
  "error_description": "Refresh token has expired or is invalid."
}"#;
const VAULT_MISSING: &str = r#"{
  "error": "invalid_request",
  "error_description": "Missing refresh token."
}"#;

fn vault_session() -> TokenSet<VaultistExtras> {
    TokenSet::new(AccessToken::new("at-old"))
        .with_refresh_token(RefreshToken::new("dGhpcyBpcyBhIHJlZnJlc2hUb2tlbi..."))
}

#[test]
fn vaultist_request_encodes_the_seed_body_and_headers() {
    let config = VaultistConfig::new(42);
    let session = vault_session();
    let refresh = RefreshV3::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    let request = refresh.encode_request(&base()).unwrap();
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(request.uri(), "https://provider.example/v1/auth/token");
    assert_eq!(request.headers()["partnerId"], "42");
    assert_eq!(request.headers()["grantType"], "refresh_token");
    assert!(request.headers().get("X-Merchant-ID").is_none());
    assert_eq!(request.headers()["content-type"], "application/json");
    assert_eq!(
        body_json(&request),
        serde_json::from_str::<Value>(VAULT_REQUEST).unwrap()
    );
    assert_eq!(refresh.secrets(), vec!["dGhpcyBpcyBhIHJlZnJlc2hUb2tlbi..."]);
}

#[test]
fn vaultist_server_decodes_the_seed_request_and_checks_the_grant_header() {
    let request = http::Request::builder()
        .method("POST")
        .uri("/v1/auth/token")
        .header("partnerId", "42")
        .header("grantType", "refresh_token")
        .header("content-type", "application/json")
        .body(VAULT_REQUEST.as_bytes().to_vec())
        .unwrap();
    let decoded = RefreshV3::decode_request(&request).unwrap();
    assert_eq!(
        decoded,
        RefreshV3 {
            partner_id: 42,
            merchant_id: None,
            refresh_token: "dGhpcyBpcyBhIHJlZnJlc2hUb2tlbi...".into()
        }
    );

    let wrong_grant = http::Request::builder()
        .method("POST")
        .uri("/v1/auth/token")
        .header("partnerId", "42")
        .header("grantType", "password")
        .header("content-type", "application/json")
        .body(VAULT_REQUEST.as_bytes().to_vec())
        .unwrap();
    let error = RefreshV3::decode_request(&wrong_grant).unwrap_err();
    assert!(error.0.contains("grantType"), "{error}");
    let no_partner = http::Request::builder()
        .method("POST")
        .header("grantType", "refresh_token")
        .header("content-type", "application/json")
        .body(VAULT_REQUEST.as_bytes().to_vec())
        .unwrap();
    assert!(
        RefreshV3::decode_request(&no_partner)
            .unwrap_err()
            .0
            .contains("partnerId")
    );
}

#[test]
fn vaultist_seed_response_becomes_a_token_set() {
    let set = decode_response::<RefreshV3>(&answer(200, VAULT_RESPONSE), now(), &[]).unwrap();
    assert_eq!(
        set.access_token.expose_secret(),
        "eyJhbGciOiJIUzI1NiIsIn..."
    );
    assert_eq!(
        set.refresh_token.as_ref().unwrap().expose_secret(),
        "dGhpcyBpcyBhIHJlZnJlc2h..."
    );
    assert_eq!(set.access_expires_at, Some(now() + Duration::seconds(3600)));
    assert_eq!(set.token_type.as_deref(), Some("Bearer"));
    assert_eq!(set.scope, None);
    assert_eq!(set.extras, VaultistExtras::default(), "v3 sends no user_id");
}

#[test]
fn vaultist_server_encodes_the_seed_response_from_a_token_set() {
    let set = decode_response::<RefreshV3>(&answer(200, VAULT_RESPONSE), now(), &[]).unwrap();
    let response = encode_response(&VaultistTokens::from_token_set(&set, now()));
    assert_eq!(response.status(), 200);
    let sent: Value = serde_json::from_slice(response.body()).unwrap();
    assert_eq!(sent, serde_json::from_str::<Value>(VAULT_RESPONSE).unwrap());
}

#[test]
fn vaultist_seed_errors_are_classified_and_round_trip() {
    let expired = provider_error(decode_response::<RefreshV3>(
        &answer(400, VAULT_EXPIRED),
        now(),
        &[],
    ));
    assert_eq!(expired.kind, ErrorKind::ReauthRequired);
    assert_eq!(expired.code, "invalid_grant");
    assert_eq!(
        expired.message.as_deref(),
        Some("Refresh token has expired or is invalid.")
    );
    let missing = provider_error(decode_response::<RefreshV3>(
        &answer(400, VAULT_MISSING),
        now(),
        &[],
    ));
    assert_eq!(missing.kind, ErrorKind::Rejected);
    assert_eq!(missing.code, "invalid_request");

    // Server side: the same definition writes the seed's error body back.
    let error =
        VaultistError::decode_error(http::StatusCode::BAD_REQUEST, VAULT_EXPIRED.as_bytes())
            .unwrap();
    assert_eq!(error.error, VaultistCode::InvalidGrant);
    let sent = encode_error(&error);
    assert_eq!(sent.status(), 400);
    assert_eq!(
        serde_json::from_slice::<Value>(sent.body()).unwrap(),
        serde_json::from_str::<Value>(VAULT_EXPIRED).unwrap()
    );
    // Maya Connect's RFC 6749 codes: `invalid_client` carries a status of its own.
    let client = OAuthError {
        error: OAuthCode::InvalidClient,
        error_description: None,
        error_uri: None,
    };
    assert_eq!(
        encode_error(&client).status(),
        401,
        "a code's own status wins"
    );
    assert_eq!(
        encode_error(&client).body(),
        br#"{"error":"invalid_client"}"#
    );
}

#[test]
fn unknown_codes_fall_to_the_catch_all_and_the_status() {
    let body = r#"{"error":"slow_down","error_description":"later"}"#;
    let error =
        VaultistError::decode_error(http::StatusCode::BAD_REQUEST, body.as_bytes()).unwrap();
    assert_eq!(error.error, VaultistCode::Other("slow_down".into()));
    assert_eq!(
        error.kind(http::StatusCode::BAD_REQUEST),
        ErrorKind::Rejected
    );
    assert_eq!(
        error.kind(http::StatusCode::OK),
        ErrorKind::Rejected,
        "an error on a 200 is still an error"
    );
    let overloaded = provider_error(decode_response::<RefreshV3>(&answer(503, body), now(), &[]));
    assert_eq!(overloaded.kind, ErrorKind::Transient);
    assert_eq!(
        serde_json::to_string(&error.error).unwrap(),
        r#""slow_down""#
    );
}

// ---- Vault.ist v2: a custom error body -----------------------------------------------------

#[test]
fn vaultist_v2_custom_error_maps_by_status() {
    let body = r#"{"status":"UNAUTHORIZED","message":"The Token has expired on 2024-01-01","traceId":"t-1","errors":[]}"#;
    let error =
        VaultistV2Error::decode_error(http::StatusCode::UNAUTHORIZED, body.as_bytes()).unwrap();
    assert_eq!(error.status, VaultistV2Status::Unauthorized);
    assert_eq!(error.code(), "UNAUTHORIZED");
    assert_eq!(error.trace_id.as_deref(), Some("t-1"));
    assert_eq!(
        error.kind(http::StatusCode::UNAUTHORIZED),
        ErrorKind::ReauthRequired
    );
    let unknown = r#"{"status":"FORBIDDEN","message":"no","traceId":"t-2","errors":[]}"#;
    let unknown =
        VaultistV2Error::decode_error(http::StatusCode::FORBIDDEN, unknown.as_bytes()).unwrap();
    assert_eq!(
        unknown.kind(http::StatusCode::FORBIDDEN),
        ErrorKind::Rejected
    );
    let (status, sent) = error.encode_error();
    assert_eq!(status, 401);
    assert_eq!(
        serde_json::from_slice::<Value>(&sent).unwrap(),
        serde_json::from_str::<Value>(body).unwrap()
    );
    assert!(
        VaultistV2Error::decode_error(http::StatusCode::OK, VAULT_RESPONSE.as_bytes()).is_none()
    );
}

// ---- Paymentsgate --------------------------------------------------------------------------

const PG_REQUEST: &str = r#"{
        "refresh_token": "8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl..."
      }"#;
const PG_RESPONSE: &str = r#"{
      "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
      "refresh_token": "8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl...",
      "expires_in": 3600
    }"#;

fn paymentsgate_account() -> PaymentsgateConfig {
    PaymentsgateConfig::new("acct-1", "cHVibGljLWtleQ==")
}

#[test]
fn paymentsgate_request_carries_the_bearer_and_the_seed_body() {
    let session = TokenSet::<token_core::token_set::NoExtras>::new(AccessToken::new(
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9...",
    ))
    .with_refresh_token(RefreshToken::new("8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl..."));
    let account = paymentsgate_account();
    let refresh =
        RefreshServiceToken::from_context(&RequestContext::for_refresh(&account, &session))
            .unwrap();
    let request = refresh
        .encode_request(&url::Url::parse("https://secure.sandbox.paymentsgate.io").unwrap())
        .unwrap();
    assert_eq!(
        request.uri(),
        "https://secure.sandbox.paymentsgate.io/auth/token/refresh"
    );
    assert_eq!(
        request.headers()["authorization"],
        "Bearer eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9..."
    );
    assert!(request.headers()["authorization"].is_sensitive());
    assert_eq!(
        body_json(&request),
        serde_json::from_str::<Value>(PG_REQUEST).unwrap()
    );
    assert_eq!(
        RefreshServiceToken::decode_request(&request).unwrap(),
        refresh
    );

    // Like the official Node and PHP clients: no Authorization header at all.
    let bare = RefreshServiceToken {
        access_token: None,
        ..refresh
    };
    let request = bare.encode_request(&base()).unwrap();
    assert!(request.headers().get("authorization").is_none());
    assert_eq!(RefreshServiceToken::decode_request(&request).unwrap(), bare);
}

#[test]
fn paymentsgate_refresh_without_a_refresh_token_is_an_encode_error() {
    let session = TokenSet::<token_core::token_set::NoExtras>::new(AccessToken::new("at"));
    let account = paymentsgate_account();
    let error = RefreshServiceToken::from_context(&RequestContext::for_refresh(&account, &session))
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    assert!(error.to_string().contains("refresh token"));
}

#[test]
fn paymentsgate_seed_response_and_jwt_fallback() {
    let set =
        decode_response::<RefreshServiceToken>(&answer(200, PG_RESPONSE), now(), &[]).unwrap();
    assert_eq!(set.access_expires_at, Some(now() + Duration::seconds(3600)));
    // No expires_in: the access token's JWT `exp` (1700003600) decides.
    let jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhY2N0IiwiZXhwIjoxNzAwMDAzNjAwfQ.sig";
    let body = format!(r#"{{"access_token":"{jwt}","refresh_token":"rt-2"}}"#);
    let set = decode_response::<RefreshServiceToken>(&answer(200, &body), now(), &[]).unwrap();
    assert_eq!(
        set.access_expires_at.unwrap().unix_timestamp(),
        1_700_003_600
    );
    let sent = serde_json::from_slice::<Value>(
        &PaymentsgateTokens::from_token_set(&set, set.access_expires_at.unwrap()).encode_body(),
    )
    .unwrap();
    assert_eq!(
        sent,
        json!({"access_token": jwt, "refresh_token": "rt-2", "expires_in": 0})
    );
}

#[test]
fn paymentsgate_errors_keep_code_message_and_status() {
    let body = r#"{"error":"Unauthorized","message":"Invalid refresh token","statusCode":401}"#;
    let error = provider_error(decode_response::<RefreshServiceToken>(
        &answer(401, body),
        now(),
        &[],
    ));
    assert_eq!(
        (error.kind, error.code.as_str(), error.message.as_deref()),
        (
            ErrorKind::ReauthRequired,
            "Unauthorized",
            Some("Invalid refresh token")
        )
    );
    let forbidden = r#"{"error":"Forbidden","message":"no"}"#;
    assert_eq!(
        provider_error(decode_response::<RefreshServiceToken>(
            &answer(403, forbidden),
            now(),
            &[]
        ))
        .kind,
        ErrorKind::Misconfigured
    );
    let mut limited = answer(
        429,
        r#"{"error":"TooManyRequests","message":"slow down","statusCode":429}"#,
    );
    limited
        .headers_mut()
        .insert("retry-after", "7".parse().unwrap());
    let limited = provider_error(decode_response::<RefreshServiceToken>(&limited, now(), &[]));
    assert_eq!(limited.kind, ErrorKind::Transient);
    assert_eq!(limited.retry_after, Some(std::time::Duration::from_secs(7)));

    let decoded =
        PaymentsgateError::decode_error(http::StatusCode::UNAUTHORIZED, body.as_bytes()).unwrap();
    let (status, sent) = decoded.encode_error();
    assert_eq!(
        status, 401,
        "the body's statusCode decides the server's status"
    );
    assert_eq!(
        serde_json::from_slice::<Value>(&sent).unwrap(),
        serde_json::from_str::<Value>(body).unwrap()
    );
}

// ---- Alipay+ applyToken --------------------------------------------------------------------

const ALIPAY_REQUEST: &str = r#"{
"acquirerId":"102218800000000001",
"pspId":"102208800000000001",
"refreshToken": "2810100334F62CBC577F468AAC87CFC6C9107811",
"grantType": "REFRESH_TOKEN"
}"#;
const ALIPAY_RESPONSE: &str = r#"{
"result": {
"resultCode": "SUCCESS",
"resultMessage": "success",
"resultStatus": "S"
},
"accessToken": "281010033AB2F588D14B43238637264FCA5AAF35",
"accessTokenExpiryTime": "2022-06-06T12:12:12+08:00",
"refreshToken": "2810100334F62CBC577F468AAC87CFC6C9107811",
"refreshTokenExpiryTime": "2022-06-08T12:12:12+08:00",
"customerId":"2789808900000000000000001",
"userLoginId":"62-***2736"
}"#;

fn alipay_config() -> AlipayPlusConfig {
    AlipayPlusConfig::new(
        "client-1",
        "102208800000000001",
        "private key",
        "public key",
    )
    .with_acquirer_id("102218800000000001")
}

#[test]
fn alipay_apply_token_request_is_the_seed_request() {
    let config = alipay_config();
    let session = TokenSet::<AlipayExtras>::new(AccessToken::new("at")).with_refresh_token(
        RefreshToken::new("2810100334F62CBC577F468AAC87CFC6C9107811"),
    );
    let apply = ApplyToken::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    let request = apply
        .encode_request(&url::Url::parse("https://open-sea-global.alipayplus.com").unwrap())
        .unwrap();
    assert_eq!(
        request.uri().path(),
        "/aps/api/v1/authorizations/applyToken"
    );
    assert_eq!(
        body_json(&request),
        serde_json::from_str::<Value>(ALIPAY_REQUEST).unwrap()
    );

    // The MPP side reads the seed's literal request.
    let seed = http::Request::builder()
        .method("POST")
        .header("content-type", "application/json; charset=UTF-8")
        .body(ALIPAY_REQUEST.as_bytes().to_vec())
        .unwrap();
    assert_eq!(ApplyToken::decode_request(&seed).unwrap(), apply);
}

#[test]
fn alipay_optional_fields_are_left_out_never_empty() {
    let apply = ApplyToken {
        acquirer_id: None,
        psp_id: "p".into(),
        refresh_token: "rt".into(),
    };
    let request = apply.encode_request(&base()).unwrap();
    assert_eq!(
        body_json(&request),
        json!({"pspId": "p", "refreshToken": "rt", "grantType": "REFRESH_TOKEN"})
    );
    assert_eq!(ApplyToken::decode_request(&request).unwrap(), apply);
    let with_null =
        br#"{"acquirerId":null,"pspId":"p","refreshToken":"rt","grantType":"REFRESH_TOKEN"}"#;
    let request = http::Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .body(with_null.to_vec())
        .unwrap();
    assert_eq!(
        ApplyToken::decode_request(&request).unwrap().acquirer_id,
        None
    );
    let wrong_grant = br#"{"pspId":"p","refreshToken":"rt","grantType":"AUTHORIZATION_CODE"}"#;
    let request = http::Request::builder()
        .method("POST")
        .header("content-type", "application/json")
        .body(wrong_grant.to_vec())
        .unwrap();
    assert!(
        ApplyToken::decode_request(&request)
            .unwrap_err()
            .0
            .contains("grantType")
    );
}

#[test]
fn alipay_seed_response_keeps_offsets_and_extras() {
    let set = decode_response::<ApplyToken>(&answer(200, ALIPAY_RESPONSE), now(), &[]).unwrap();
    assert_eq!(
        set.access_token.expose_secret(),
        "281010033AB2F588D14B43238637264FCA5AAF35"
    );
    assert_eq!(
        set.access_expires_at,
        Some(datetime!(2022-06-06 12:12:12 +08:00))
    );
    assert_eq!(
        set.refresh_expires_at,
        Some(datetime!(2022-06-08 04:12:12 UTC))
    );
    assert_eq!(
        set.extras.customer_id.as_deref(),
        Some("2789808900000000000000001")
    );
    assert_eq!(set.extras.user_login_id.as_deref(), Some("62-***2736"));

    // The MPP writes the same answer, `result` envelope included, from the token set.
    let sent = encode_response(&ApplyTokenResult::from_token_set(&set, now()));
    assert_eq!(sent.status(), 200);
    assert_eq!(
        serde_json::from_slice::<Value>(sent.body()).unwrap(),
        serde_json::from_str::<Value>(ALIPAY_RESPONSE).unwrap()
    );
}

#[test]
fn alipay_result_envelope_on_200_is_an_error_by_status() {
    let failed = r#"{"result":{"resultCode":"INVALID_REFRESH_TOKEN","resultStatus":"F","resultMessage":"invalid"}}"#;
    let error = provider_error(decode_response::<ApplyToken>(
        &answer(200, failed),
        now(),
        &[],
    ));
    assert_eq!(
        (error.kind, error.code.as_str(), error.status.as_u16()),
        (ErrorKind::ReauthRequired, "INVALID_REFRESH_TOKEN", 200)
    );
    let expired = r#"{"result":{"resultCode":"EXPIRED_REFRESH_TOKEN","resultStatus":"F","resultMessage":"expired"}}"#;
    assert_eq!(
        provider_error(decode_response::<ApplyToken>(
            &answer(200, expired),
            now(),
            &[]
        ))
        .kind,
        ErrorKind::ReauthRequired
    );
    let unknown =
        r#"{"result":{"resultCode":"PROCESS_FAIL","resultStatus":"U","resultMessage":"?"}}"#;
    assert_eq!(
        provider_error(decode_response::<ApplyToken>(
            &answer(200, unknown),
            now(),
            &[]
        ))
        .kind,
        ErrorKind::OutcomeUnknown
    );
    let new_code = r#"{"result":{"resultCode":"SOMETHING_NEW","resultStatus":"F"}}"#;
    let error = provider_error(decode_response::<ApplyToken>(
        &answer(200, new_code),
        now(),
        &[],
    ));
    assert_eq!(
        (error.kind, error.code.as_str()),
        (ErrorKind::Rejected, "SOMETHING_NEW")
    );
    assert!(
        AlipayError::decode_error(http::StatusCode::OK, ALIPAY_RESPONSE.as_bytes()).is_none(),
        "status S is a success"
    );

    // The MPP answers with the envelope on 200.
    let answer_back = AlipayError::failed(AlipayCode::ExpiredRefreshToken, "expired");
    let sent = encode_error(&answer_back);
    assert_eq!(sent.status(), 200);
    assert_eq!(
        serde_json::from_slice::<Value>(sent.body()).unwrap(),
        serde_json::from_str::<Value>(expired).unwrap()
    );
}

// ---- Maya ----------------------------------------------------------------------------------

fn maya_config() -> MayaConfig {
    MayaConfig::new("client", ClientSecret::new("s3cret"), base())
}

#[test]
fn maya_mini_app_refresh_sends_a_fresh_reference_and_the_app_token() {
    let session = TokenSet::<token_core::token_set::NoExtras>::new(AccessToken::new("customer-at"))
        .with_refresh_token("customer-rt".into());
    let app = AccessToken::new("app-token");
    let cx = RequestContext::for_refresh(&(), &session).with_value("app_token", &app);
    let first = MiniAppRefresh::from_context(&cx).unwrap();
    let second = MiniAppRefresh::from_context(&cx).unwrap();
    assert_ne!(first.request_reference_no, second.request_reference_no);
    let request = first
        .encode_request(&url::Url::parse("https://op-sandbox.paymaya.com").unwrap())
        .unwrap();
    assert_eq!(request.uri(), "https://op-sandbox.paymaya.com/tokens");
    let reference = request.headers()["Request-Reference-No"].to_str().unwrap();
    assert_eq!(reference.len(), 36);
    assert_eq!(&reference[14..15], "4", "a UUIDv4");
    assert_eq!(request.headers()["authorization"], "Bearer app-token");
    assert_eq!(body_json(&request), json!({"refreshToken": "customer-rt"}));
    assert_eq!(MiniAppRefresh::decode_request(&request).unwrap(), first);
    assert_eq!(first.secrets(), vec!["app-token", "customer-rt"]);

    let without_app = RequestContext::for_refresh(&(), &session);
    assert!(
        MiniAppRefresh::from_context(&without_app)
            .unwrap_err()
            .to_string()
            .contains("`app_token`")
    );
}

#[test]
fn maya_tokens_read_unix_expiry_both_ways() {
    let body = r#"{"accessToken":"at-2","refreshToken":"rt-2","expiresAt":1654473600}"#;
    let set = decode_response::<MiniAppRefresh>(&answer(200, body), now(), &[]).unwrap();
    assert_eq!(set.access_expires_at, Some(datetime!(2022-06-06 00:00 UTC)));
    let sent = MayaTokens::from_token_set(&set, now()).encode_body();
    assert_eq!(
        serde_json::from_slice::<Value>(&sent).unwrap(),
        serde_json::from_str::<Value>(body).unwrap()
    );
}

#[test]
fn maya_connect_refresh_is_a_form_with_basic_client_auth() {
    let config = maya_config();
    let session = TokenSet::<token_core::token_set::NoExtras>::new(AccessToken::new("at"))
        .with_refresh_token("rt/1+2".into());
    let refresh = RefreshTokenGrant::from_context(&RequestContext::for_refresh(
        &config.connect_client(),
        &session,
    ))
    .unwrap();
    let request = refresh.encode_request(&base()).unwrap();
    assert_eq!(
        request.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        request.headers()["authorization"],
        "Basic Y2xpZW50OnMzY3JldA=="
    );
    assert_eq!(
        std::str::from_utf8(request.body()).unwrap(),
        "grant_type=refresh_token&refresh_token=rt%2F1%2B2"
    );
    assert_eq!(
        RefreshTokenGrant::decode_request(&request).unwrap(),
        refresh
    );
    let mut secrets = refresh.secrets();
    secrets.sort_unstable();
    assert_eq!(secrets, vec!["rt/1+2", "s3cret"]);
}

#[test]
fn maya_invalid_token_echoing_the_secret_is_scrubbed() {
    let refresh = RefreshTokenGrant {
        refresh_token: "rt-LEAKED".into(),
        scope: None,
        client: ClientAuthentication {
            basic_user: Some("client".into()),
            basic_password: Some(ClientSecret::new("s3cret")),
            ..ClientAuthentication::default()
        },
    };
    let body =
        r#"{"error":"invalid_token","error_description":"Invalid refresh token: rt-LEAKED."}"#;
    let error = provider_error(decode_response::<RefreshTokenGrant>(
        &answer(400, body),
        now(),
        &refresh.secrets(),
    ));
    assert_eq!(error.kind, ErrorKind::ReauthRequired);
    let message = error.message.expect("the provider's message is kept");
    assert!(message.contains("Invalid refresh token"), "{message}");
    assert!(!message.contains("rt-LEAKED"), "{message}");
    let client = r#"{"error":"invalid_client","error_description":"Bad client credentials."}"#;
    assert_eq!(
        provider_error(decode_response::<RefreshTokenGrant>(
            &answer(401, client),
            now(),
            &[]
        ))
        .kind,
        ErrorKind::Misconfigured
    );
}

// ---- round trips ---------------------------------------------------------------------------

#[test]
fn token_sets_round_trip_through_every_response_definition() {
    let set = TokenSet::<token_core::token_set::NoExtras>::new(AccessToken::new("at"))
        .with_refresh_token("rt".into())
        .with_access_expires_at(now() + Duration::seconds(600))
        .with_token_type("Bearer")
        .with_scope("payments");
    fn round<R: TokenResponse>(set: &TokenSet<R::Extras>) -> TokenSet<R::Extras> {
        let body = R::from_token_set(set, now()).encode_body();
        R::decode_body(&body)
            .unwrap()
            .into_token_set(now())
            .unwrap()
    }
    assert_eq!(round::<OAuthTokens>(&set), set);
    let vault = TokenSet::<VaultistExtras>::new(AccessToken::new("at"))
        .with_refresh_token("rt".into())
        .with_access_expires_at(now() + Duration::seconds(600))
        .with_token_type("Bearer")
        .with_scope("payments")
        .with_extras(VaultistExtras {
            user_id: Some("usr:1".into()),
        });
    assert_eq!(round::<VaultistTokens>(&vault), vault);
    let plain = TokenSet::<token_core::token_set::NoExtras>::new(AccessToken::new("at"))
        .with_refresh_token("rt".into())
        .with_access_expires_at(now() + Duration::seconds(600));
    assert_eq!(round::<PaymentsgateTokens>(&plain), plain);
    assert_eq!(round::<MayaTokens>(&plain), plain);
    let alipay = TokenSet::<AlipayExtras>::new(AccessToken::new("at"))
        .with_refresh_token("rt".into())
        .with_access_expires_at(datetime!(2022-06-06 12:12:12 +08:00))
        .with_refresh_expires_at(datetime!(2022-06-08 12:12:12 +08:00))
        .with_extras(AlipayExtras {
            customer_id: Some("c".into()),
            user_login_id: None,
        });
    assert_eq!(round::<ApplyTokenResult>(&alipay), alipay);
}

#[test]
fn requests_round_trip_through_the_server_side() {
    let vault = RefreshV3 {
        partner_id: -7,
        merchant_id: Some("m-1".into()),
        refresh_token: "rt".into(),
    };
    assert_eq!(
        RefreshV3::decode_request(&vault.encode_request(&base()).unwrap()).unwrap(),
        vault
    );
    let apply = ApplyToken {
        acquirer_id: Some("a".into()),
        psp_id: "p".into(),
        refresh_token: "rt".into(),
    };
    assert_eq!(
        ApplyToken::decode_request(&apply.encode_request(&base()).unwrap()).unwrap(),
        apply
    );
    let connect = ClientCredentialsGrant {
        scope: Some("openid profile".into()),
        client: ClientAuthentication {
            basic_user: Some("c:id".into()),
            basic_password: Some(ClientSecret::new("p:w")),
            ..ClientAuthentication::default()
        },
    };
    assert_eq!(
        ClientCredentialsGrant::decode_request(&connect.encode_request(&base()).unwrap()).unwrap(),
        connect
    );
    let get = http::Request::builder()
        .method("GET")
        .body(Vec::new())
        .unwrap();
    assert!(
        RefreshV3::decode_request(&get)
            .unwrap_err()
            .0
            .contains("method")
    );
}
