//! Maya's definitions against the documented shapes: requests encode as Maya expects and decode
//! back on the sandbox side, answers and errors decode and encode, config keys.

use serde_json::{Value, json};
use time::macros::datetime;
use token_core::codec::{decode_response, encode_error};
use token_core::oauth::{ClientCredentialsGrant, OAuthCode, OAuthError, RefreshTokenGrant};
use token_core::{
    codec::Endpoint, codec::ErrorResponse, codec::FromContext, codec::RequestContext,
    codec::TokenResponse, error::EndpointError, error::ErrorKind, secret::AccessToken,
    secret::ClientSecret, secret::RefreshToken, token_set::TokenSet,
};
use token_provider_maya::{MayaConfig, MayaTokens, MiniAppRefresh, RefreshShape};

fn config() -> MayaConfig {
    MayaConfig::new(
        "client",
        ClientSecret::new("s3cret"),
        url::Url::parse("https://connect.example/oauth").unwrap(),
    )
}

fn session() -> TokenSet {
    TokenSet::new(AccessToken::new("customer-at")).with_refresh_token(RefreshToken::new("rt/1+2"))
}

fn answer(status: u16, body: &str) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.as_bytes().to_vec());
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap();
    response
}

fn provider_error<T: std::fmt::Debug>(
    result: Result<T, EndpointError>,
) -> token_core::error::ProviderError {
    match result {
        Err(EndpointError::Provider(e)) => e,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

#[test]
fn mini_app_refresh_carries_a_fresh_uuid_the_app_token_and_the_refresh_token() {
    let config = config();
    let session = session();
    let app = AccessToken::new("app-token");
    let cx = RequestContext::for_refresh(&config, &session).with_value("app_token", &app);
    let first = MiniAppRefresh::from_context(&cx).unwrap();
    let second = MiniAppRefresh::from_context(&cx).unwrap();
    assert_ne!(first.request_reference_no, second.request_reference_no);
    let request = first.encode_request(&config.api_url).unwrap();
    assert_eq!(request.method(), http::Method::POST);
    assert_eq!(request.uri(), "https://op-sandbox.paymaya.com/tokens");
    assert_eq!(request.headers()["accept"], "application/json");
    assert_eq!(request.headers()["content-type"], "application/json");
    assert_eq!(request.headers()["authorization"], "Bearer app-token");
    let reference = request.headers()["Request-Reference-No"].to_str().unwrap();
    assert_eq!(
        uuid::Uuid::parse_str(reference).unwrap().get_version_num(),
        4
    );
    assert_eq!(
        serde_json::from_slice::<Value>(request.body()).unwrap(),
        json!({"refreshToken": "rt/1+2"})
    );
    assert_eq!(MiniAppRefresh::decode_request(&request).unwrap(), first);
    assert!(
        MiniAppRefresh::from_context(&RequestContext::for_refresh(&config, &session))
            .unwrap_err()
            .to_string()
            .contains("`app_token`")
    );
}

#[test]
fn maya_tokens_read_expires_at_in_unix_seconds_both_ways() {
    let body = r#"{"accessToken":"at-2","refreshToken":"rt-2","expiresAt":1767229200}"#;
    let now = datetime!(2026-01-01 00:00 UTC);
    let set = decode_response::<MiniAppRefresh>(&answer(200, body), now, &[]).unwrap();
    assert_eq!(set.access_expires_at, Some(datetime!(2026-01-01 01:00 UTC)));
    assert_eq!(set.refresh_token.as_ref().unwrap().expose_secret(), "rt-2");
    assert_eq!(set.refresh_expires_at, None, "Maya does not send it");
    let sent = MayaTokens::from_token_set(&set, now).encode_body();
    assert_eq!(
        serde_json::from_slice::<Value>(&sent).unwrap(),
        serde_json::from_str::<Value>(body).unwrap()
    );
}

#[test]
fn the_app_token_is_a_client_credentials_grant_with_basic_auth() {
    let config = config();
    let client = config.connect_client();
    let grant = ClientCredentialsGrant::from_context(&RequestContext::new(&client)).unwrap();
    let request = grant.encode_request(&config.connect_url).unwrap();
    assert_eq!(request.uri(), "https://connect.example/oauth/token");
    assert_eq!(
        request.headers()["authorization"],
        "Basic Y2xpZW50OnMzY3JldA=="
    );
    assert_eq!(request.body(), b"grant_type=client_credentials");
    assert_eq!(
        ClientCredentialsGrant::decode_request(&request).unwrap(),
        grant
    );
    let set = decode_response::<ClientCredentialsGrant>(
        &answer(
            200,
            r#"{"access_token":"app","token_type":"Bearer","expires_in":3600}"#,
        ),
        datetime!(2026-01-01 00:00 UTC),
        &[],
    )
    .unwrap();
    assert_eq!(set.access_expires_at, Some(datetime!(2026-01-01 01:00 UTC)));
    assert_eq!(set.refresh_token, None);
}

#[test]
fn the_forum_shape_is_a_refresh_token_grant_at_maya_connect() {
    let config = config().with_refresh(RefreshShape::OAuth);
    let session = session();
    let client = config.connect_client().with_scope(None);
    let refresh =
        RefreshTokenGrant::from_context(&RequestContext::for_refresh(&client, &session)).unwrap();
    let request = refresh.encode_request(&config.connect_url).unwrap();
    assert_eq!(request.uri(), "https://connect.example/oauth/token");
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
}

#[test]
fn maya_connect_codes_decide_the_kind() {
    let now = datetime!(2026-01-01 00:00 UTC);
    let cases = [
        (400, "invalid_token", ErrorKind::ReauthRequired),
        (400, "invalid_grant", ErrorKind::ReauthRequired),
        (401, "invalid_client", ErrorKind::Misconfigured),
        (400, "invalid_request", ErrorKind::Rejected),
        (400, "unsupported_grant_type", ErrorKind::Misconfigured),
        (400, "something_new", ErrorKind::Rejected),
        (503, "invalid_token", ErrorKind::Transient),
    ];
    for (status, code, kind) in cases {
        let body = json!({"error": code, "error_description": "x"}).to_string();
        let error = provider_error(decode_response::<MiniAppRefresh>(
            &answer(status, &body),
            now,
            &[],
        ));
        assert_eq!(
            (error.code.as_str(), error.kind),
            (code, kind),
            "HTTP {status}"
        );
    }
}

#[test]
fn an_invalid_token_message_echoing_the_refresh_token_is_scrubbed() {
    let client = config().connect_client();
    let session: TokenSet =
        TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt-LEAKED-42"));
    let refresh =
        RefreshTokenGrant::from_context(&RequestContext::for_refresh(&client, &session)).unwrap();
    let body =
        r#"{"error":"invalid_token","error_description":"Invalid refresh token: rt-LEAKED-42."}"#;
    let error = provider_error(decode_response::<RefreshTokenGrant>(
        &answer(400, body),
        datetime!(2026-01-01 00:00 UTC),
        &refresh.secrets(),
    ));
    assert_eq!(error.kind, ErrorKind::ReauthRequired);
    // The text still names the failure, with the token cut out of it.
    let shown = error.to_string();
    assert!(shown.contains("invalid_token"), "{shown}");
    assert!(shown.contains("Invalid refresh token"), "{shown}");
    assert!(!shown.contains("rt-LEAKED-42"), "{shown}");
}

#[test]
fn the_sandbox_writes_mayas_error_answers_with_their_status() {
    let client = OAuthError::new(OAuthCode::InvalidClient, "Bad client credentials.");
    let sent = encode_error(&client);
    assert_eq!(sent.status(), 401);
    assert_eq!(
        serde_json::from_slice::<Value>(sent.body()).unwrap(),
        json!({"error": "invalid_client", "error_description": "Bad client credentials."})
    );
    let missing = OAuthError::new(OAuthCode::InvalidRequest, "Missing grant type.");
    assert_eq!(encode_error(&missing).status(), 400);
    assert_eq!(
        OAuthError::decode_error(
            http::StatusCode::BAD_REQUEST,
            &encode_error(&missing).into_body()
        ),
        Some(missing)
    );
}

#[test]
fn config_keys_are_read_from_json_and_unknown_ones_refused() {
    let config: MayaConfig = serde_json::from_value(json!({
        "client_id": "c",
        "client_secret": "s",
        "connect_url": "https://connect.example",
        "api_url": "https://op.example",
        "refresh": "oauth",
        "authorize_url": "https://login.example/authorize",
        "scope": "openid",
        "refresh_token_lifetime_secs": 86400,
        "reuse_window_secs": 60
    }))
    .unwrap();
    assert_eq!(config.refresh, RefreshShape::OAuth);
    assert_eq!(config.refresh_token_lifetime_secs, Some(86400));
    let url = config.authorize_url_for("s-1").unwrap();
    assert_eq!(
        url.as_str(),
        "https://login.example/authorize?response_type=code&client_id=c&scope=openid&state=s-1"
    );
    let typo = serde_json::from_value::<MayaConfig>(json!({
        "client_id": "c", "client_secret": "s", "connect_url": "https://connect.example",
        "refersh": "oauth"
    }));
    assert!(typo.unwrap_err().to_string().contains("refersh"));
}

/// The default authorize URL is `{connect_url}/authorize` as the token endpoint is
/// `{connect_url}/token`: after the base's own path (with or without a trailing slash),
/// the base's own query kept as the query (first), its fragment dropped. Appended to the
/// whole text of a base with a query, the path landed inside the query.
#[test]
fn the_default_authorize_url_follows_the_connect_urls_path_whatever_its_query_or_fragment() {
    for (connect_url, query) in [
        ("https://connect.example/oauth", ""),
        ("https://connect.example/oauth/", ""),
        ("https://connect.example/oauth?tenant=7", "tenant=7&"),
        ("https://connect.example/oauth/?tenant=7", "tenant=7&"),
        ("https://connect.example/oauth#login", ""),
        ("https://connect.example/oauth?tenant=7#login", "tenant=7&"),
    ] {
        let config = MayaConfig::new("c", ClientSecret::new("s"), connect_url.parse().unwrap());
        let url = config.authorize_url_for("s-1").unwrap();
        assert_eq!(
            url.as_str(),
            format!(
                "https://connect.example/oauth/authorize?{query}response_type=code&client_id=c&state=s-1"
            ),
            "{connect_url}"
        );
    }
}

#[test]
fn a_configured_refresh_lifetime_too_long_for_the_calendar_saturates() {
    let now = datetime!(2026-01-01 00:00 UTC);
    for secs in [u64::MAX, i64::MAX as u64, 1 << 40] {
        let config = config().with_refresh_token_lifetime(std::time::Duration::from_secs(secs));
        let set = config.stamp_refresh_expiry(session(), None, now);
        assert_eq!(
            set.refresh_expires_at,
            Some(token_core::expiry::LATEST),
            "{secs}"
        );
    }
    let config = config().with_refresh_token_lifetime(std::time::Duration::from_secs(86400));
    let set = config.stamp_refresh_expiry(session(), None, now);
    assert_eq!(
        set.refresh_expires_at,
        Some(datetime!(2026-01-02 00:00 UTC))
    );
}

/// A URL in the config that cannot be read is not repeated in the error: its user
/// information may hold a password, its query a key. serde's (url's) message quoted it whole.
#[test]
fn a_config_url_that_cannot_be_read_is_not_quoted_in_the_error() {
    token_test_support::assert_unreadable_config_urls_unquoted::<MayaConfig>(
        &json!({
            "client_id": "c", "client_secret": "s", "connect_url": "https://connect.example"
        }),
        &["connect_url", "api_url", "authorize_url"],
    );
}

/// The configured URLs' passwords and queries (credentials an integrator may put there) are
/// shown by no `Debug`: the config's, the app provider's.
#[test]
fn no_debug_shows_a_credential_of_a_configured_url() {
    use token_test_support::url_credentials::{
        assert_shows_no_url_credential, url_with_credentials,
    };
    let mut config = MayaConfig::new(
        "client",
        ClientSecret::new("s3cret"),
        url_with_credentials(),
    )
    .with_api_url(url_with_credentials());
    config.authorize_url = Some(url_with_credentials());
    let app = token_provider_maya::MayaApp::new(std::sync::Arc::new(config.clone()));
    for shown in [format!("{config:?}"), format!("{app:?}")] {
        assert_shows_no_url_credential(&shown);
        assert_eq!(shown.matches("host.example/token").count(), 3, "{shown}");
    }
}
