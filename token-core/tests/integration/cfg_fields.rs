//! Fields under `#[cfg(...)]` in every kind of declared item: the generated code carries
//! each field's `cfg` wherever it touches the field, so a field compiled out
//! (`#[cfg(any())]`, never true) is neither written, read, listed nor scrubbed, and one
//! compiled in (`#[cfg(all())]`, always true) is all of them, as if it had no `cfg`.

// `all()` is the always-true `cfg` a feature that is on stands for here.
#![allow(clippy::non_minimal_cfg)]

use http::StatusCode;
use time::macros::datetime;
use token_core::codec::{Endpoint, ErrorResponse, FromContext, RequestContext, TokenResponse};
use token_core::expiry::ExpiresIn;
use token_core::provider::KeepExtras;
use token_core::{
    secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint,
    token_set::TokenSet,
};

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    #[token(keep)]
    pub user_id: Option<String>,
    #[cfg(any())]
    #[token(keep)]
    pub gone: Option<String>,
    #[cfg(all())]
    #[token(keep)]
    pub region: Option<String>,
}

#[token_endpoint(response, extras = User)]
#[derive(Debug)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    #[cfg(any())]
    pub token_type: Option<String>,
    #[cfg(all())]
    #[token(expiry)]
    pub lifetime: Option<ExpiresIn>,
    #[cfg(any())]
    pub scope: Option<String>,
    #[cfg(all())]
    #[token(extra)]
    pub user_id: Option<String>,
    #[cfg(all())]
    pub note: Option<String>,
}

#[token_endpoint(error, success_codes("0"))]
#[derive(Debug)]
pub struct Failure {
    pub error: String,
    #[cfg(any())]
    pub details: Option<String>,
    #[cfg(all())]
    pub error_description: Option<String>,
    #[cfg(any())]
    #[token(http_status)]
    pub status: Option<u16>,
}

/// Its message compiled out: it has none.
#[token_endpoint(error)]
#[derive(Debug)]
pub struct Quiet {
    pub error: String,
    #[cfg(any())]
    pub error_description: Option<String>,
}

pub struct Client {
    pub id: String,
    pub secret: ClientSecret,
}

#[token_endpoint(fields, config = Client)]
#[derive(Debug, PartialEq)]
pub struct ClientAuth {
    #[token(from = config.id)]
    pub client_id: String,
    #[cfg(any())]
    #[token(header, rename = "X-Gone", from = config.id)]
    pub gone: String,
    #[cfg(all())]
    #[token(from = config.secret)]
    pub client_secret: ClientSecret,
}

#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = Client,
                 extras = User, body(name = "grant_type", value = "refresh_token"))]
#[derive(Debug)]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[cfg(any())]
    #[token(header, rename = "X-Gone", from = uuid)]
    pub gone: String,
    #[cfg(any())]
    #[token(from = value("never"))]
    pub never: NotEvenAType,
    #[cfg(all())]
    #[token(header, rename = "X-User", from = extras.user_id)]
    pub user: Option<String>,
    #[cfg(all())]
    #[token(query, from = now_unix)]
    pub timestamp: String,
    #[cfg(all())]
    #[token(flatten)]
    pub client: ClientAuth,
    #[cfg(any())]
    #[token(flatten)]
    pub other_client: ClientAuth,
}

#[token_endpoint(config)]
#[derive(Debug)]
pub struct Settings {
    pub key: String,
    #[cfg(any())]
    pub gone: u32,
    #[cfg(all())]
    pub port: u16,
    #[cfg(any())]
    pub gone_option: Option<String>,
    #[cfg(all())]
    pub region: Option<String>,
}

fn client() -> Client {
    Client {
        id: "app".into(),
        secret: ClientSecret::new("s3cret-value"),
    }
}

#[test]
fn a_request_writes_reads_and_scrubs_only_the_fields_compiled_in() {
    let mut session: TokenSet<User> =
        TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"));
    session.extras.user_id = Some("u-1".into());
    let client = client();
    let cx =
        RequestContext::for_refresh(&client, &session).with_now(datetime!(2024-01-01 00:00 UTC));
    let refresh = Refresh::from_context(&cx).unwrap();
    let request = refresh
        .encode_request(&"https://id.example".parse().unwrap())
        .unwrap();
    assert_eq!(
        request.uri(),
        "https://id.example/token?timestamp=1704067200"
    );
    assert_eq!(request.headers()["X-User"], "u-1");
    assert!(!request.headers().contains_key("X-Gone"));
    assert_eq!(
        request.body(),
        b"grant_type=refresh_token&refresh_token=rt&client_id=app&client_secret=s3cret-value"
    );
    assert_eq!(refresh.secrets(), ["rt", "s3cret-value"]);

    let read = Refresh::decode_request(&request).unwrap();
    assert_eq!(read.user.as_deref(), Some("u-1"));
    assert_eq!(read.timestamp, "1704067200");
    assert_eq!(read.client, refresh.client);
}

#[test]
fn a_response_reads_and_writes_only_the_fields_compiled_in() {
    let now = datetime!(2024-01-01 00:00 UTC);
    // `token_type` and `scope` are compiled out: read and ignored as unknown fields.
    let body = br#"{"access_token":"at","token_type":"bearer","lifetime":60,"scope":"x","user_id":"u-1","region":"eu","note":"n"}"#;
    let tokens = Tokens::decode_body(body).unwrap();
    assert_eq!(tokens.note.as_deref(), Some("n"));
    let set = tokens.into_token_set(now).unwrap();
    assert_eq!(set.access_expires_at, Some(datetime!(2024-01-01 00:01 UTC)));
    assert_eq!((set.scope.as_ref(), set.token_type.as_ref()), (None, None));
    assert_eq!(set.extras.user_id.as_deref(), Some("u-1"));
    // A lifetime the compiled-in expiry cannot read is unknown, not the tokens lost.
    let odd = Tokens::decode_body(br#"{"access_token":"at","lifetime":"soon"}"#).unwrap();
    assert_eq!(odd.into_token_set(now).unwrap().access_expires_at, None);

    let back = Tokens::from_token_set(&set, now).encode_body();
    let json = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).unwrap();
    assert_eq!(
        json(&back),
        json(br#"{"access_token":"at","lifetime":60,"user_id":"u-1"}"#)
    );
}

#[test]
fn an_error_and_extras_use_only_the_fields_compiled_in() {
    let ok = StatusCode::OK;
    let e = Failure::decode_error(
        ok,
        br#"{"error":"invalid_grant","details":"m","error_description":"d","status":401}"#,
    )
    .unwrap();
    assert_eq!(e.message().as_deref(), Some("d"));
    assert!(Failure::decode_error(ok, br#"{"error":"0"}"#).is_none());
    let quiet = Quiet::decode_error(ok, br#"{"error":"x","error_description":"d"}"#).unwrap();
    assert_eq!(quiet.message(), None);
    assert_eq!(
        e.encode_error(),
        (
            StatusCode::BAD_REQUEST,
            br#"{"error":"invalid_grant","error_description":"d"}"#.to_vec()
        )
    );

    let previous = User {
        user_id: Some("u-1".into()),
        region: Some("eu".into()),
    };
    let mut answer = User::default();
    answer.keep_from(&previous);
    assert_eq!(answer, previous);
    let names: Vec<&str> = User::LENIENT_FIELDS.iter().map(|(name, _)| *name).collect();
    assert_eq!(names, ["user_id", "region"]);
}

#[test]
fn a_config_takes_only_the_fields_compiled_in() {
    let settings = Settings::new("k", 8080).with_region("eu");
    assert_eq!(
        (
            settings.key.as_str(),
            settings.port,
            settings.region.as_deref()
        ),
        ("k", 8080, Some("eu"))
    );
}

/// A provider's refresh endpoint: the server side's reading of its sources (the refresh
/// token, the fields taken from the config, a time's window) skips the fields compiled out.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = Client,
                 provider = "cfg-test")]
#[derive(Debug)]
pub struct ProviderRefresh {
    #[cfg(any())]
    #[token(from = refresh_token)]
    pub old_token: RefreshToken,
    #[cfg(all())]
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[cfg(any())]
    #[token(query, rename = "ts_gone", from = now_unix, window = 1)]
    pub gone: String,
    #[cfg(all())]
    #[token(query, from = now_unix, window = 60)]
    pub timestamp: String,
    #[cfg(any())]
    #[token(flatten)]
    pub gone_client: ClientAuth,
    #[cfg(all())]
    #[token(flatten)]
    pub client: ClientAuth,
}

#[test]
fn a_refresh_endpoint_s_server_side_reads_only_the_fields_compiled_in() {
    use token_core::provider::RefreshEndpoint;
    let session: TokenSet =
        TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"));
    let client = client();
    let now = datetime!(2024-01-01 00:00 UTC);
    let cx = RequestContext::for_refresh(&client, &session).with_now(now);
    let request = ProviderRefresh::from_context(&cx)
        .unwrap()
        .encode_request(&"https://id.example".parse().unwrap())
        .unwrap();
    let read = ProviderRefresh::decode_request(&request).unwrap();
    assert_eq!(read.refresh_token().unwrap().expose_secret(), "rt");
    assert_eq!(read.config_mismatch(&client), None);
    let other = Client {
        id: "other".into(),
        secret: ClientSecret::new("s3cret-value"),
    };
    assert_eq!(read.config_mismatch(&other), Some("client_id"));
    assert_eq!(read.stale_time(datetime!(2024-01-01 00:00:30 UTC)), None);
    assert_eq!(
        read.stale_time(datetime!(2024-01-01 00:05 UTC)),
        Some("timestamp")
    );
}

/// A config whose client's id is compiled out, and a number compiled in.
pub struct App {
    #[cfg(any())]
    pub gone_id: String,
    #[cfg(all())]
    pub app_id: u32,
}

/// `client_id` on a field compiled out: the endpoint names no client.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App,
                 provider = "cfg-gone")]
#[derive(Debug)]
pub struct GoneClientRefresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[cfg(any())]
    #[token(from = config.gone_id, client_id)]
    pub client_id: String,
}

/// `client_id` on a field compiled in: the endpoint names the client by it.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App,
                 provider = "cfg-kept")]
#[derive(Debug)]
pub struct KeptClientRefresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[cfg(all())]
    #[token(from = config.app_id, client_id)]
    pub client_id: u32,
}

#[test]
fn a_client_id_field_names_the_client_only_when_compiled_in() {
    use token_core::provider::RefreshEndpoint;
    let app = App { app_id: 7 };
    assert_eq!(GoneClientRefresh::client_id(&app), None);
    assert_eq!(KeptClientRefresh::client_id(&app).as_deref(), Some("7"));
}

/// Variants under `#[cfg(...)]`: one compiled out is neither read, written, given a kind or
/// a status nor answers its refusal (its code lands in the catch-all); one compiled in is all
/// of them.
#[token_endpoint(error_code, rename_all = "snake_case")]
#[derive(Debug, PartialEq)]
pub enum Code {
    #[token(kind = reauth_required, refusal = invalid_refresh_token)]
    InvalidGrant,
    #[cfg(any())]
    #[token(kind = transient, status = 503, refusal = server_error)]
    Gone,
    #[cfg(all())]
    #[token(kind = misconfigured, status = 401, refusal = unknown_client)]
    InvalidClient,
    Other(String),
}

#[test]
fn an_error_code_enum_has_only_the_variants_compiled_in() {
    use token_core::codec::{ErrorCode, RefusalReason};
    assert_eq!(Code::from_code("invalid_client"), Code::InvalidClient);
    assert_eq!(Code::from_code("gone"), Code::Other("gone".into()));
    assert_eq!(Code::InvalidClient.as_code(), "invalid_client");
    assert_eq!(Code::InvalidClient.status(), Some(401));
    assert_eq!(Code::from_code("gone").status(), None);
    assert_eq!(
        Code::for_refusal(RefusalReason::UnknownClient),
        Some(Code::InvalidClient)
    );
    assert_eq!(Code::for_refusal(RefusalReason::ServerError), None);
}
