//! The grants against RFC 6749's literal samples, both directions, and the tolerant decoding
//! real servers need.

use serde_json::{Value, json};
use time::macros::datetime;
use time::{Duration, OffsetDateTime};
use token_core::codec::{decode_response, encode_error, encode_response};
use token_core::oauth::{
    AuthorizationCodeGrant, ClientAuth, ClientCredentialsGrant, OAuthCode, OAuthError, OAuthTokens,
    RefreshTokenGrant,
};
use token_core::{
    codec::Endpoint, codec::ErrorResponse, codec::FromContext, codec::RequestContext,
    codec::TokenResponse, error::EndpointError, error::ErrorKind, secret::AccessToken,
    secret::AuthCode, secret::ClientSecret, secret::RefreshToken, token_set::TokenSet,
};
use token_provider_oauth2::OAuth2Config;

// RFC 6749: client `s6BhdRkqt3` with secret `gX1fBat3bV` (section 4.1.3).
const BASIC: &str = "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW";
const SECTION_6_REQUEST: &str = "grant_type=refresh_token&refresh_token=tGzv3JOkF0XG5Qx2TlKWIA";
const SECTION_4_1_3_REQUEST: &str = "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA\
                                     &redirect_uri=https%3A%2F%2Fclient%2Eexample%2Ecom%2Fcb";
const SECTION_4_4_2_REQUEST: &str = "grant_type=client_credentials";
const SECTION_5_1_RESPONSE: &str = r#"{
       "access_token":"2YotnFZFEjr1zCsicMWpAA",
       "token_type":"example",
       "expires_in":3600,
       "refresh_token":"tGzv3JOkF0XG5Qx2TlKWIA",
       "example_parameter":"example_value"
     }"#;
const SECTION_5_2_RESPONSE: &str = r#"{
       "error":"invalid_request"
     }"#;

fn now() -> OffsetDateTime {
    datetime!(2026-01-01 00:00 UTC)
}

fn rfc_client() -> OAuth2Config {
    OAuth2Config::new("s6BhdRkqt3", base().join("token").unwrap())
        .with_client_secret(ClientSecret::new("gX1fBat3bV"))
        .with_redirect_uri("https://client.example.com/cb")
}

fn base() -> url::Url {
    "https://server.example.com".parse().unwrap()
}

fn answer(status: u16, content_type: &str, body: &str) -> http::Response<Vec<u8>> {
    http::Response::builder()
        .status(status)
        .header("content-type", content_type)
        .body(body.as_bytes().to_vec())
        .unwrap()
}

fn server_request(authorization: Option<&str>, body: &str) -> http::Request<Vec<u8>> {
    let mut request = http::Request::builder()
        .method("POST")
        .uri("/token")
        .header("content-type", "application/x-www-form-urlencoded");
    if let Some(authorization) = authorization {
        request = request.header("authorization", authorization);
    }
    request.body(body.as_bytes().to_vec()).unwrap()
}

fn provider_error<T: std::fmt::Debug>(
    result: Result<T, EndpointError>,
) -> token_core::error::ProviderError {
    match result {
        Err(EndpointError::Provider(error)) => error,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

#[test]
fn refresh_encodes_the_section_6_request_with_basic_client_auth() {
    let session: TokenSet = TokenSet::new(AccessToken::new("at"))
        .with_refresh_token(RefreshToken::new("tGzv3JOkF0XG5Qx2TlKWIA"));
    let client = rfc_client().client();
    let grant =
        RefreshTokenGrant::from_context(&RequestContext::for_refresh(&client, &session)).unwrap();
    let request = grant.encode_request(&base()).unwrap();
    assert_eq!(request.uri(), "https://server.example.com/token");
    assert_eq!(request.headers()["authorization"], BASIC);
    assert!(request.headers()["authorization"].is_sensitive());
    assert_eq!(
        request.headers()["content-type"],
        "application/x-www-form-urlencoded"
    );
    assert_eq!(
        std::str::from_utf8(request.body()).unwrap(),
        SECTION_6_REQUEST
    );
    assert_eq!(grant.secrets(), ["tGzv3JOkF0XG5Qx2TlKWIA", "gX1fBat3bV"]);
}

#[test]
fn the_server_side_reads_the_section_6_request() {
    let grant =
        RefreshTokenGrant::decode_request(&server_request(Some(BASIC), SECTION_6_REQUEST)).unwrap();
    assert_eq!(
        grant.refresh_token.expose_secret(),
        "tGzv3JOkF0XG5Qx2TlKWIA"
    );
    assert_eq!(grant.client.basic_user.as_deref(), Some("s6BhdRkqt3"));
    assert_eq!(
        grant
            .client
            .basic_password
            .as_ref()
            .map(ClientSecret::expose_secret),
        Some("gX1fBat3bV")
    );
    assert_eq!(grant.client.client_id, None);
    // Another grant type is not this definition's request.
    assert!(
        RefreshTokenGrant::decode_request(&server_request(Some(BASIC), SECTION_4_4_2_REQUEST))
            .unwrap_err()
            .0
            .contains("grant_type")
    );
}

#[test]
fn client_auth_in_the_body_moves_both_credentials_into_the_form() {
    let config = rfc_client()
        .with_client_auth(ClientAuth::Body)
        .with_scope("read write");
    let session: TokenSet =
        TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"));
    let client = config.client();
    let grant =
        RefreshTokenGrant::from_context(&RequestContext::for_refresh(&client, &session)).unwrap();
    let request = grant.encode_request(&base()).unwrap();
    assert!(request.headers().get("authorization").is_none());
    assert_eq!(
        std::str::from_utf8(request.body()).unwrap(),
        "grant_type=refresh_token&refresh_token=rt&scope=read+write\
         &client_id=s6BhdRkqt3&client_secret=gX1fBat3bV"
    );
    assert_eq!(RefreshTokenGrant::decode_request(&request).unwrap(), grant);
}

#[test]
fn a_public_client_sends_only_its_id() {
    let client = OAuth2Config::new("spa", base()).client();
    let grant = ClientCredentialsGrant::from_context(&RequestContext::new(&client)).unwrap();
    let request = grant.encode_request(&base()).unwrap();
    assert!(request.headers().get("authorization").is_none());
    assert_eq!(
        request.body(),
        b"grant_type=client_credentials&client_id=spa"
    );
}

#[test]
fn client_credentials_encode_and_decode_section_4_4_2() {
    let client = rfc_client().client();
    let grant = ClientCredentialsGrant::from_context(&RequestContext::new(&client)).unwrap();
    let request = grant.encode_request(&base()).unwrap();
    assert_eq!(request.headers()["authorization"], BASIC);
    assert_eq!(request.body(), SECTION_4_4_2_REQUEST.as_bytes());
    let read =
        ClientCredentialsGrant::decode_request(&server_request(Some(BASIC), SECTION_4_4_2_REQUEST))
            .unwrap();
    assert_eq!(read, grant);
}

#[test]
fn the_code_exchange_reads_section_4_1_3_and_writes_the_verifier() {
    let read =
        AuthorizationCodeGrant::decode_request(&server_request(Some(BASIC), SECTION_4_1_3_REQUEST))
            .unwrap();
    assert_eq!(read.code.expose_secret(), "SplxlOBeZQQYbYS6WxSbIA");
    assert_eq!(
        read.redirect_uri.as_deref(),
        Some("https://client.example.com/cb")
    );
    assert_eq!(read.code_verifier, None);

    let client = rfc_client().client();
    let code = AuthCode::new("SplxlOBeZQQYbYS6WxSbIA");
    let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
    let grant = AuthorizationCodeGrant::from_context(
        &RequestContext::new(&client).with_auth_code(&code, Some(verifier)),
    )
    .unwrap();
    let request = grant.encode_request(&base()).unwrap();
    assert_eq!(
        std::str::from_utf8(request.body()).unwrap(),
        "grant_type=authorization_code&code=SplxlOBeZQQYbYS6WxSbIA\
         &redirect_uri=https%3A%2F%2Fclient.example.com%2Fcb\
         &code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"
    );
    assert_eq!(
        AuthorizationCodeGrant::decode_request(&request).unwrap(),
        grant
    );
    assert!(grant.secrets().contains(&"SplxlOBeZQQYbYS6WxSbIA"));
    assert!(grant.secrets().contains(&verifier));
    // No code in the context: the request cannot be built.
    let error = AuthorizationCodeGrant::from_context(&RequestContext::new(&client)).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
}

#[test]
fn the_section_5_1_answer_decodes_and_the_server_writes_it_back() {
    let set = decode_response::<RefreshTokenGrant>(
        &answer(200, "application/json;charset=UTF-8", SECTION_5_1_RESPONSE),
        now(),
        &[],
    )
    .unwrap();
    assert_eq!(set.access_token.expose_secret(), "2YotnFZFEjr1zCsicMWpAA");
    assert_eq!(
        set.refresh_token.as_ref().unwrap().expose_secret(),
        "tGzv3JOkF0XG5Qx2TlKWIA"
    );
    assert_eq!(set.access_expires_at, Some(now() + Duration::hours(1)));
    assert_eq!(set.token_type.as_deref(), Some("example"));

    let sent = encode_response(&OAuthTokens::from_token_set(&set, now()));
    let mut expected: Value = serde_json::from_str(SECTION_5_1_RESPONSE).unwrap();
    expected
        .as_object_mut()
        .unwrap()
        .remove("example_parameter");
    assert_eq!(
        serde_json::from_slice::<Value>(sent.body()).unwrap(),
        expected
    );
}

#[test]
fn the_section_5_2_error_round_trips() {
    let error = provider_error(decode_response::<RefreshTokenGrant>(
        &answer(400, "application/json", SECTION_5_2_RESPONSE),
        now(),
        &[],
    ));
    assert_eq!(
        (error.kind, error.code.as_str()),
        (ErrorKind::Rejected, "invalid_request")
    );
    let decoded = OAuthError::decode_error(
        http::StatusCode::BAD_REQUEST,
        SECTION_5_2_RESPONSE.as_bytes(),
    )
    .unwrap();
    let sent = encode_error(&decoded);
    assert_eq!(sent.status(), 400);
    assert_eq!(
        serde_json::from_slice::<Value>(sent.body()).unwrap(),
        serde_json::from_str::<Value>(SECTION_5_2_RESPONSE).unwrap()
    );
    assert_eq!(
        encode_error(&OAuthError::new(OAuthCode::InvalidClient, "bad")).status(),
        401
    );
}

#[test]
fn expires_in_as_a_string_or_null_is_read() {
    let decode = |body: &str| {
        decode_response::<RefreshTokenGrant>(&answer(200, "application/json", body), now(), &[])
            .unwrap()
    };
    assert_eq!(
        decode(r#"{"access_token":"a","expires_in":"3600"}"#).access_expires_at,
        Some(now() + Duration::hours(1))
    );
    assert_eq!(
        decode(r#"{"access_token":"a","expires_in":null}"#).access_expires_at,
        None
    );
    // No lifetime, but a JWT access token: its `exp` decides.
    let jwt = "eyJhbGciOiJub25lIn0.eyJleHAiOjE3NjcyMjU2MDB9.";
    assert_eq!(
        decode(&format!(r#"{{"access_token":"{jwt}","expires_in":null}}"#)).access_expires_at,
        Some(datetime!(2026-01-01 00:00 UTC))
    );
    // Keycloak's refresh token lifetime.
    assert_eq!(
        decode(r#"{"access_token":"a","refresh_token":"r","refresh_expires_in":1800}"#)
            .refresh_expires_at,
        Some(now() + Duration::minutes(30))
    );
}

#[test]
fn text_plain_json_and_201_created_are_successes() {
    let body = r#"{"access_token":"at-2","expires_in":60}"#;
    for (status, content_type) in [
        (200, "text/plain"),
        (201, "application/json"),
        (201, "text/html"),
    ] {
        let set =
            decode_response::<RefreshTokenGrant>(&answer(status, content_type, body), now(), &[])
                .unwrap();
        assert_eq!(
            set.access_token.expose_secret(),
            "at-2",
            "{status} {content_type}"
        );
    }
}

#[test]
fn an_error_with_status_200_is_an_error() {
    let error = provider_error(decode_response::<RefreshTokenGrant>(
        &answer(
            200,
            "application/json",
            r#"{"error":"invalid_grant","error_description":"expired"}"#,
        ),
        now(),
        &[],
    ));
    assert_eq!(error.kind, ErrorKind::ReauthRequired);
    assert_eq!(error.status, 200);
    assert_eq!(error.message.as_deref(), Some("expired"));
    let odd = provider_error(decode_response::<RefreshTokenGrant>(
        &answer(200, "text/plain", r#"{"error":"something_new"}"#),
        now(),
        &[],
    ));
    assert_eq!(
        odd.kind,
        ErrorKind::Rejected,
        "never a success, never retried"
    );
}

#[test]
fn codes_are_classified() {
    let kind = |status: u16, code: &str| {
        provider_error(decode_response::<RefreshTokenGrant>(
            &answer(
                status,
                "application/json",
                &json!({"error": code}).to_string(),
            ),
            now(),
            &[],
        ))
        .kind
    };
    assert_eq!(kind(400, "invalid_grant"), ErrorKind::ReauthRequired);
    assert_eq!(kind(401, "invalid_token"), ErrorKind::ReauthRequired);
    assert_eq!(kind(401, "invalid_client"), ErrorKind::Misconfigured);
    assert_eq!(kind(400, "unauthorized_client"), ErrorKind::Misconfigured);
    assert_eq!(
        kind(400, "unsupported_grant_type"),
        ErrorKind::Misconfigured
    );
    assert_eq!(kind(400, "invalid_scope"), ErrorKind::Rejected);
    assert_eq!(kind(503, "temporarily_unavailable"), ErrorKind::Transient);
    assert_eq!(kind(429, "slow_down"), ErrorKind::Transient);
    assert_eq!(
        kind(500, "invalid_grant"),
        ErrorKind::Transient,
        "a 5xx is no verdict"
    );
}

#[test]
fn a_refresh_token_echoed_in_an_error_is_scrubbed() {
    let session: TokenSet =
        TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt-LEAKED"));
    let client = rfc_client().client();
    let grant =
        RefreshTokenGrant::from_context(&RequestContext::for_refresh(&client, &session)).unwrap();
    let error = provider_error(decode_response::<RefreshTokenGrant>(
        &answer(
            400,
            "application/json",
            r#"{"error":"invalid_grant","error_description":"unknown token rt-LEAKED"}"#,
        ),
        now(),
        &grant.secrets(),
    ));
    // The message is kept, and names the failure, with the token cut out of it.
    assert_eq!(error.code, "invalid_grant");
    let message = error.message.expect("the provider's message is kept");
    assert!(message.contains("unknown token"), "{message}");
    assert!(!message.contains("rt-LEAKED"), "{message}");
}

/// A URL in the config that cannot be read is not repeated in the error: its user
/// information may hold a password, its query a key. serde's (url's) message quoted it whole.
#[test]
fn a_config_url_that_cannot_be_read_is_not_quoted_in_the_error() {
    token_test_support::assert_unreadable_config_urls_unquoted::<OAuth2Config>(
        &json!({"client_id": "app", "token_url": "https://id.example/token"}),
        &["token_url", "authorize_url"],
    );
}

/// A token or authorization URL's password and query (credentials an integrator may put
/// there) are shown by no `Debug`: the config's, the provider's, an authorization request's.
#[test]
fn no_debug_shows_a_credential_of_a_configured_url() {
    use token_provider_oauth2::OAuth2;
    use token_test_support::url_credentials::{
        assert_shows_no_url_credential, url_with_credentials,
    };
    let config = OAuth2Config::new("app", url_with_credentials())
        .with_authorize_url(url_with_credentials())
        .with_client_secret(ClientSecret::new("client-secret-1"));
    let provider = OAuth2::new(config.clone());
    let request = provider.authorization_request("s-1").unwrap();
    for shown in [
        format!("{config:?}"),
        format!("{provider:?}"),
        format!("{request:?}"),
    ] {
        assert_shows_no_url_credential(&shown);
        assert!(!shown.contains("client-secret-1"), "{shown}");
    }
}
