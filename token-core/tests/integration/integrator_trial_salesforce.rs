//! Salesforce's refresh token flow, declared from its documents with `#[token_endpoint]` only.
//!
//! `POST /services/oauth2/token` with a form body `grant_type=refresh_token`, `client_id`,
//! `client_secret` (optional: only when the connected app requires it) and `refresh_token`.
//! The answer has no `expires_in`: `access_token`, `signature`, `scope`, `instance_url`,
//! `id`, `token_type` and `issued_at` (when it was issued, UNIX milliseconds as text); the
//! refresh token is not in it unless rotation is on. Errors are RFC 6749's
//! `{"error": "invalid_grant", "error_description": "expired access/refresh token"}`, HTTP 400.
//!
//! Assumptions: the access lifetime is the org's session timeout, which only the application
//! knows (two hours here, `with_default_access_lifetime`); `invalid_client_id` and
//! `invalid_client` are misconfigurations; `invalid_grant` always means re-authorize, although
//! Salesforce also sends it for an inactive user or an IP restriction ("authentication
//! failure", "authentication failure - invalid client credentials"), which only its
//! description tells apart: the kind cannot be declared by description.
//!
//! Not declarable: checking the answer's `signature` (Base64 HMAC-SHA256 of `id` +
//! `issued_at` keyed with the client secret); `sign(...)` signs requests only.

use std::sync::Arc;
use std::time::Duration;

use http::StatusCode;
use time::OffsetDateTime;
use time::macros::datetime;
use token_core::codec::{Endpoint, ErrorResponse, FromContext, RequestContext, decode_response};
use token_core::issuer::{IssuerConfig, RefreshRotation};
use token_core::provider::RefreshProvider;
use token_core::sandbox::Sandbox;
use token_core::{
    clock::ManualClock, error::EndpointError, error::ErrorKind, manager::ManagerConfig,
    manager::TokenManager, secret::AccessToken, secret::ClientSecret, secret::RefreshToken,
    token_endpoint, token_set::TokenSet,
};

use crate::integrator_trial::{HTML, answer, assert_hidden, huge_body, shown};

#[token_endpoint(config)]
#[derive(Clone, Debug, PartialEq)]
pub struct SalesforceConfig {
    pub client_id: String,
    pub client_secret: Option<ClientSecret>,
}

/// Where the session's API calls go, and whom it is for.
#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Org {
    pub instance_url: Option<String>,
    pub id: Option<String>,
    /// When the token was issued, UNIX milliseconds as text: not an expiry.
    pub issued_at: Option<String>,
    pub signature: Option<String>,
}

#[token_endpoint(response, extras = Org)]
#[derive(Debug)]
pub struct SalesforceTokens {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    pub scope: Option<String>,
    pub token_type: Option<String>,
    pub org: Org,
}

#[token_endpoint(error_code, rename_all = "snake_case")]
#[derive(Clone, Debug, PartialEq)]
pub enum SalesforceCode {
    #[token(kind = reauth_required, refusal(invalid_refresh_token, expired_refresh_token))]
    InvalidGrant,
    #[token(kind = misconfigured, refusal(unknown_client, bad_signature))]
    InvalidClient,
    #[token(kind = misconfigured)]
    InvalidClientId,
    #[token(kind = misconfigured, refusal = bad_request)]
    UnsupportedGrantType,
    #[token(code = "temporarily_unavailable", kind = transient, status = 503, refusal = server_error)]
    Unavailable,
    #[token(other)]
    Other(String),
}

#[token_endpoint(error)]
#[derive(Debug)]
pub struct SalesforceError {
    #[token(code)]
    pub error: SalesforceCode,
    #[token(message)]
    pub error_description: Option<String>,
}

#[token_endpoint(post = "/services/oauth2/token", form, response = SalesforceTokens,
                 error = SalesforceError, config = SalesforceConfig, provider = "salesforce",
                 body(name = "grant_type", value = "refresh_token"))]
#[derive(Debug)]
pub struct SalesforceRefresh {
    #[token(from = config.client_id)]
    pub client_id: String,
    #[token(from = config.client_secret)]
    pub client_secret: Option<ClientSecret>,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

const CLIENT_ID: &str =
    "3MVG9lKcPoNINVBIPJjdw1J9LLM82HnFVVX19KY1uA5mu0QqEWhqKpoW3svG3XHrXDiCQjK1mdgAvhCscA9GE";
const CLIENT_SECRET: &str = "1955279925675241571";
const REFRESH_TOKEN: &str = "5Aep861TSESvWeug_xvFHRBTTbf_YrTWgEyjBJrGMf1Q8o2wzJ7Q";

fn config() -> SalesforceConfig {
    SalesforceConfig::new(CLIENT_ID).with_client_secret(CLIENT_SECRET)
}

fn now() -> OffsetDateTime {
    datetime!(2024-02-16 04:45 UTC)
}

fn session() -> TokenSet<Org> {
    TokenSet::new(AccessToken::new("at-old")).with_refresh_token(RefreshToken::new(REFRESH_TOKEN))
}

fn decode(status: u16, body: &[u8]) -> Result<TokenSet<Org>, EndpointError> {
    let (config, session) = (config(), session());
    let refresh =
        SalesforceRefresh::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    decode_response::<SalesforceRefresh>(&answer(status, body), now(), &refresh.secrets())
}

const SAMPLE: &str = r#"{
"access_token": "00Dxx0000001gPL!AR8AQJXg5oj8jXSgxJfA0lBog.39AsX.LVpxezPwuX5VAIrrbbHMuol7GQxnMeYMN7cj8EoWr78nt1u44zU31IbYNNJguseu",
"signature": "HfBA4xxxxSOUcg8ndBMnw4GuvDY1M+oWUQ8PU1l0HWbc=",
"scope": "refresh_token web api id full",
"instance_url": "https://yourInstance.my.salesforce.com",
"id": "https://login.salesforce.com/id/00Dxx0000001gPLEAY/005xx000001SwiUAAS",
"token_type": "Bearer",
"issued_at": "1708058728442"
}"#;

#[test]
fn the_request_is_the_documented_form() {
    let (config, session) = (config(), session());
    let refresh =
        SalesforceRefresh::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    let request = refresh
        .encode_request(&"https://login.salesforce.com".parse().unwrap())
        .unwrap();
    assert_eq!(
        request.uri(),
        "https://login.salesforce.com/services/oauth2/token"
    );
    assert_eq!(
        request.body(),
        format!("grant_type=refresh_token&client_id={CLIENT_ID}&client_secret={CLIENT_SECRET}&refresh_token={REFRESH_TOKEN}").as_bytes()
    );
    assert!(!format!("{refresh:?}").contains(CLIENT_SECRET));
    // Without a secret (the app does not require one) the field is left out.
    let public = SalesforceConfig::new(CLIENT_ID);
    let request = SalesforceRefresh::from_context(&RequestContext::for_refresh(&public, &session))
        .unwrap()
        .encode_request(&"https://login.salesforce.com".parse().unwrap())
        .unwrap();
    assert!(!String::from_utf8_lossy(request.body()).contains("client_secret"));
}

#[test]
fn the_documented_answer_has_no_expiry_and_keeps_the_refresh_token() {
    let set = decode(200, SAMPLE.as_bytes()).unwrap();
    assert!(
        set.access_token
            .expose_secret()
            .starts_with("00Dxx0000001gPL!")
    );
    assert_eq!(set.access_expires_at, None, "issued_at is not an expiry");
    assert_eq!(
        set.refresh_token, None,
        "no rotation: the manager keeps the previous one"
    );
    assert_eq!(
        set.extras.instance_url.as_deref(),
        Some("https://yourInstance.my.salesforce.com")
    );
    assert_eq!(set.extras.issued_at.as_deref(), Some("1708058728442"));
    assert_eq!(set.scope.as_deref(), Some("refresh_token web api id full"));
}

#[test]
fn the_documented_errors_are_classified_by_their_code() {
    let cases = [
        (
            400,
            r#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#,
            ErrorKind::ReauthRequired,
        ),
        (
            400,
            r#"{"error":"invalid_client_id","error_description":"client identifier invalid"}"#,
            ErrorKind::Misconfigured,
        ),
        (
            400,
            r#"{"error":"invalid_client","error_description":"invalid client credentials"}"#,
            ErrorKind::Misconfigured,
        ),
        (
            400,
            r#"{"error":"unsupported_grant_type","error_description":"grant type not supported"}"#,
            ErrorKind::Misconfigured,
        ),
        (
            503,
            r#"{"error":"temporarily_unavailable","error_description":"busy"}"#,
            ErrorKind::Transient,
        ),
        (
            429,
            r#"{"error":"rate_limit_exceeded","error_description":"too many requests"}"#,
            ErrorKind::Transient,
        ),
        (
            400,
            r#"{"error":"inactive_org","error_description":"org is inactive"}"#,
            ErrorKind::Rejected,
        ),
    ];
    for (status, body, kind) in cases {
        let error = decode(status, body.as_bytes()).unwrap_err();
        assert_eq!(error.kind(), kind, "{body}");
    }
    let answer = SalesforceError::from_refusal(
        token_core::codec::RefusalReason::ExpiredRefreshToken,
        "expired access/refresh token",
    );
    assert_eq!(
        answer.encode_error(),
        (
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant","error_description":"expired access/refresh token"}"#
                .to_vec()
        )
    );
}

#[test]
fn hostile_answers_are_typed_errors_that_never_show_a_token() {
    let bodies: Vec<(u16, Vec<u8>)> = vec![
        (200, HTML.to_vec()),
        (400, HTML.to_vec()),
        (200, br#"{"instance_url":"https://x"}"#.to_vec()),
        (200, br#"{"access_token":null}"#.to_vec()),
        (200, br#"{"access_token":{"value":"x"}}"#.to_vec()),
        (200, br#"{"access_token":""}"#.to_vec()),
        (200, br#"{"error":null}"#.to_vec()),
        (400, br#"{"error":null,"error_description":"?"}"#.to_vec()),
        (
            400,
            format!(r#"{{"error":"invalid_grant","error_description":"{REFRESH_TOKEN}"}}"#)
                .into_bytes(),
        ),
        (401, format!("{CLIENT_SECRET} {REFRESH_TOKEN}").into_bytes()),
        (200, b"access_token=abc&instance_url=x".to_vec()),
    ];
    for (status, body) in bodies {
        let error = decode(status, &body).unwrap_err();
        let text = shown(&error);
        assert_hidden(&text, &[REFRESH_TOKEN, CLIENT_SECRET]);
        assert!(text.len() < 8 << 10, "{} bytes shown", text.len());
    }
    // `"error": ""` on a 400 is no code: the status decides, as an unreadable answer.
    let error = decode(400, br#"{"error":"","error_description":""}"#).unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected);
    let huge = huge_body();
    let error = decode(200, &huge[..huge.len() - 2]).unwrap_err();
    assert!(shown(&error).len() < 8 << 10);
}

#[test]
fn an_odd_extra_field_never_costs_the_tokens() {
    // `issued_at` as a number, `instance_url` as an object: the tokens are still read.
    for odd in [
        r#""issued_at": 1708058728442"#,
        r#""issued_at": 1e400"#,
        r#""instance_url": {"x": 1}"#,
    ] {
        let body = SAMPLE.replace(
            r#""token_type": "Bearer""#,
            &format!(r#""token_type": "Bearer", {odd}"#),
        );
        let set = decode(200, body.as_bytes()).unwrap_or_else(|e| panic!("{odd}: {e}"));
        assert!(set.access_token.expose_secret().starts_with("00Dxx"));
    }
}

#[tokio::test]
async fn the_manager_refreshes_without_an_expiry_and_a_wrong_secret_is_refused() {
    let clock = ManualClock::new(now());
    let sandbox = Sandbox::builder()
        .clock(Arc::new(clock.clone()))
        .oauth_routes(false)
        // Salesforce keeps the refresh token and leaves it out of the answer.
        .issuer_config(IssuerConfig::default().with_refresh_rotation(RefreshRotation::KeepUnsent))
        .serve::<SalesforceRefresh>(&config())
        .start()
        .await
        .unwrap();
    let manager_for = |config: SalesforceConfig| {
        TokenManager::builder(RefreshProvider::<SalesforceRefresh>::new(
            sandbox.base_url(),
            config,
        ))
        .shared_client(sandbox.client())
        .clock(Arc::new(clock.clone()))
        .config(
            ManagerConfig::default()
                .with_default_access_lifetime(Some(Duration::from_secs(2 * 3600))),
        )
        .build()
        .unwrap()
    };
    let manager = manager_for(config());
    let issued = sandbox
        .issue_with(
            "user",
            serde_json::json!({"instance_url": "https://na1.my.salesforce.com"}),
        )
        .await
        .unwrap();
    let first: TokenSet<Org> = TokenSet::from_stored(issued).unwrap();
    manager.insert("user", first.clone()).await.unwrap();
    clock.advance(time::Duration::hours(3));
    let second = manager.token_set("user").await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_eq!(
        second.extras.instance_url.as_deref(),
        Some("https://na1.my.salesforce.com")
    );
    assert_eq!(sandbox.calls(SalesforceRefresh::PATH), 1);
    // No expiry in the answer: the configured lifetime holds it for two hours.
    clock.advance(time::Duration::minutes(30));
    assert_eq!(
        manager.access_token("user").await.unwrap(),
        second.access_token
    );
    assert_eq!(sandbox.calls(SalesforceRefresh::PATH), 1);
    clock.advance(time::Duration::hours(2));
    assert_ne!(
        manager.access_token("user").await.unwrap(),
        second.access_token
    );
    assert_eq!(sandbox.calls(SalesforceRefresh::PATH), 2);

    let stranger =
        manager_for(SalesforceConfig::new(CLIENT_ID).with_client_secret("not-the-secret"));
    stranger
        .insert(
            "other",
            TokenSet::from_stored(sandbox.issue("other").await.unwrap()).unwrap(),
        )
        .await
        .unwrap();
    clock.advance(time::Duration::hours(3));
    let error = stranger.access_token("other").await.unwrap_err();
    assert_eq!(
        (error.kind(), error.provider_code()),
        (ErrorKind::Misconfigured, Some("invalid_client"))
    );
    assert!(!format!("{error} {error:?}").contains("not-the-secret"));
}
