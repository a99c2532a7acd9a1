//! Fields without a role key take the role their type or name says (a response's RFC 6749
//! names and Keycloak's `refresh_expires_in`, an error's `code` and `message` names), a GET's
//! fields go in the query, and a role key wins over all of them.

use time::macros::datetime;
use token_core::codec::TokenResponse;
use token_core::expiry::{ExpiresIn, UnixTime};
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

/// Vault.ist v3's documented answer, every role inferred.
#[token_endpoint(response)]
pub struct Inferred {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    pub expires_in: Option<ExpiresIn>,
    pub token_type: Option<String>,
    pub scope: Option<String>,
}

const VAULTIST_SEED: &[u8] = br#"{
  "access_token": "eyJhbGciOiJIUzI1NiIsIn...",
  "refresh_token": "dGhpcyBpcyBhIHJlZnJlc2h...",
  "expires_in": 3600,
  "token_type": "Bearer",
  "scope": "read write"
}"#;

#[test]
fn inferred_roles_read_the_documented_answer() {
    let now = datetime!(2025-01-01 00:00 UTC);
    let set = Inferred::decode_body(VAULTIST_SEED)
        .unwrap()
        .into_token_set(now)
        .unwrap();
    assert_eq!(
        set.access_token.expose_secret(),
        "eyJhbGciOiJIUzI1NiIsIn..."
    );
    assert_eq!(
        set.refresh_token.as_ref().map(RefreshToken::expose_secret),
        Some("dGhpcyBpcyBhIHJlZnJlc2h...")
    );
    assert_eq!(set.access_expires_at, Some(datetime!(2025-01-01 01:00 UTC)));
    assert_eq!(set.token_type.as_deref(), Some("Bearer"));
    assert_eq!(set.scope.as_deref(), Some("read write"));

    // The server side writes every role back.
    let back = Inferred::from_token_set(&set, now).encode_body();
    let json = |bytes: &[u8]| serde_json::from_slice::<serde_json::Value>(bytes).unwrap();
    assert_eq!(json(&back), json(VAULTIST_SEED));
}

/// A role key wins: `expires_in` here is the refresh token's lifetime, and the access
/// token's expiry is another field; `scope` is an extra, not the set's scope.
#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Granted {
    pub scope: Option<String>,
}

#[token_endpoint(response, rename_all = "camelCase", extras = Granted)]
pub struct Overridden {
    pub access_token: AccessToken,
    #[token(refresh_expiry)]
    pub expires_in: Option<ExpiresIn>,
    #[token(expiry)]
    pub access_expires_at: Option<UnixTime>,
    #[token(extra)]
    pub scope: Option<String>,
}

#[test]
fn a_role_key_wins_over_the_name() {
    let now = datetime!(2025-01-01 00:00 UTC);
    let body = br#"{"accessToken":"at","expiresIn":60,"accessExpiresAt":1735690860,"scope":"s"}"#;
    let set = Overridden::decode_body(body)
        .unwrap()
        .into_token_set(now)
        .unwrap();
    assert_eq!(
        set.refresh_expires_at,
        Some(datetime!(2025-01-01 00:01 UTC))
    );
    assert_eq!(set.access_expires_at, Some(datetime!(2025-01-01 00:21 UTC)));
    assert_eq!(set.scope, None);
    assert_eq!(set.extras.scope.as_deref(), Some("s"));
}

/// Types are recognised by their last segment as written; names are the Rust field's,
/// whatever the wire says; the extras type by its `extras = ...` spelling.
#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    pub openid: Option<String>,
}

#[token_endpoint(response, rename_all = "camelCase", extras = self::User)]
pub struct Spelled {
    pub token: token_core::secret::AccessToken,
    pub next: core::option::Option<token_core::secret::RefreshToken>,
    pub expires_in: ExpiresIn,
    pub user: User,
}

#[test]
fn inference_is_by_spelling_and_by_the_rust_name() {
    let now = datetime!(2025-01-01 00:00 UTC);
    let body = br#"{"token":"at","next":"rt","expiresIn":"120","openid":"o-1"}"#;
    let set = Spelled::decode_body(body)
        .unwrap()
        .into_token_set(now)
        .unwrap();
    assert_eq!(set.access_token.expose_secret(), "at");
    assert_eq!(
        set.refresh_token.as_ref().map(RefreshToken::expose_secret),
        Some("rt")
    );
    assert_eq!(set.access_expires_at, Some(datetime!(2025-01-01 00:02 UTC)));
    assert_eq!(set.extras.openid.as_deref(), Some("o-1"));
}

/// A request's `RefreshToken` field reads the session's refresh token, and an `AccessToken`
/// field its access token, without `from`: `provider = ...` accepts it as the refresh
/// endpoint.
#[token_endpoint(post = "/refresh", form, response = Inferred, error = token_core::oauth::OAuthError,
                 config = RefreshConfig, provider = "inferred")]
pub struct InferredRefresh {
    #[token(from = config.client_id)]
    pub client_id: String,
    pub refresh_token: RefreshToken,
    #[token(bearer)]
    pub access_token: Option<AccessToken>,
}

#[token_endpoint(config)]
#[derive(Clone, Debug)]
pub struct RefreshConfig {
    pub client_id: String,
}

#[test]
fn request_sources_are_inferred_from_the_token_types() {
    use token_core::codec::{Endpoint, FromContext, RequestContext};
    use token_core::token_set::TokenSet;

    let config = RefreshConfig::new("app-1");
    let session = TokenSet::<token_core::token_set::NoExtras>::new(AccessToken::new("at-1"))
        .with_refresh_token(RefreshToken::new("rt-1"));
    let request = InferredRefresh::from_context(&RequestContext::for_refresh(&config, &session))
        .unwrap()
        .encode_request(&"https://provider.example".parse().unwrap())
        .unwrap();
    assert_eq!(request.body(), b"client_id=app-1&refresh_token=rt-1");
    assert_eq!(request.headers()["authorization"], "Bearer at-1");
}

/// `refresh_expires_in` is the refresh token's lifetime by its name, as `expires_in` is the
/// access token's (Keycloak, Lazada).
#[token_endpoint(response)]
pub struct BothLifetimes {
    pub access_token: AccessToken,
    pub expires_in: Option<ExpiresIn>,
    pub refresh_expires_in: Option<ExpiresIn>,
}

#[test]
fn refresh_expires_in_is_the_refresh_tokens_lifetime_by_its_name() {
    let now = datetime!(2025-01-01 00:00 UTC);
    let body = br#"{"access_token":"at","expires_in":60,"refresh_expires_in":"1800"}"#;
    let set = BothLifetimes::decode_body(body)
        .unwrap()
        .into_token_set(now)
        .unwrap();
    assert_eq!(set.access_expires_at, Some(datetime!(2025-01-01 00:01 UTC)));
    assert_eq!(
        set.refresh_expires_at,
        Some(datetime!(2025-01-01 00:30 UTC))
    );
    let back = BothLifetimes::from_token_set(&set, now).encode_body();
    assert_eq!(
        back,
        br#"{"access_token":"at","expires_in":60,"refresh_expires_in":1800}"#
    );
}

/// An error's code and message by their names: WeChat's `errcode` and `errmsg`.
#[token_endpoint(error_code)]
#[derive(Debug, PartialEq)]
pub enum Errcode {
    #[token(kind = reauth_required)]
    InvalidRefreshToken = 40030,
    Other(String),
}

#[token_endpoint(error, status = 200, success_codes(0))]
#[derive(Debug)]
pub struct Errmsg {
    pub errcode: Errcode,
    pub errmsg: Option<String>,
}

/// A role key takes the role from every name: `message` stays a plain field here.
#[token_endpoint(error)]
#[derive(Debug)]
pub struct TwoMessages {
    pub error: String,
    #[token(message)]
    pub error_description: Option<String>,
    pub message: Option<String>,
}

#[test]
fn an_errors_code_and_message_are_found_by_their_names() {
    use token_core::codec::ErrorResponse;
    use token_core::error::ErrorKind;

    let ok = http::StatusCode::OK;
    let seed = br#"{"errcode":40030,"errmsg":"invalid refresh_token"}"#;
    let error = Errmsg::decode_error(ok, seed).unwrap();
    assert_eq!(error.errcode, Errcode::InvalidRefreshToken);
    assert_eq!(error.message().as_deref(), Some("invalid refresh_token"));
    assert_eq!(error.kind(ok), ErrorKind::ReauthRequired);
    assert_eq!(error.encode_error(), (ok, seed.to_vec()));
    assert!(Errmsg::decode_error(ok, br#"{"errcode":0,"errmsg":"ok"}"#).is_none());

    let bad = http::StatusCode::BAD_REQUEST;
    let body = br#"{"error":"invalid_grant","error_description":"expired","message":"generic"}"#;
    let error = TwoMessages::decode_error(bad, body).unwrap();
    assert_eq!(error.code(), "invalid_grant");
    assert_eq!(error.message().as_deref(), Some("expired"));
    assert_eq!(error.message.as_deref(), Some("generic"));
}

/// A GET's fields without a place go in the query (WeChat's refresh).
#[token_endpoint(get = "/sns/oauth2/refresh_token", response = Inferred, error = Errmsg,
                 config = RefreshConfig, query(name = "grant_type", value = "refresh_token"))]
pub struct QueryByDefault {
    #[token(from = config.client_id)]
    pub appid: String,
    pub refresh_token: RefreshToken,
    #[token(header, rename = "X-Trace", from = uuid)]
    pub trace: String,
}

#[test]
fn a_gets_fields_go_in_the_query_without_a_key() {
    use token_core::codec::{Endpoint, FromContext, RequestContext};
    use token_core::token_set::TokenSet;

    let config = RefreshConfig::new("wx1");
    let session = TokenSet::<token_core::token_set::NoExtras>::new(AccessToken::new("at"))
        .with_refresh_token(RefreshToken::new("rt"));
    let request = QueryByDefault::from_context(&RequestContext::for_refresh(&config, &session))
        .unwrap()
        .encode_request(&"https://api.weixin.qq.com".parse().unwrap())
        .unwrap();
    assert_eq!(request.method(), "GET");
    assert_eq!(
        request.uri(),
        "https://api.weixin.qq.com/sns/oauth2/refresh_token?grant_type=refresh_token&appid=wx1&refresh_token=rt"
    );
    assert_eq!(request.headers()["X-Trace"].len(), 36);
    assert!(request.body().is_empty());
    let decoded = QueryByDefault::decode_request(&request).unwrap();
    assert_eq!(
        (
            decoded.appid.as_str(),
            decoded.refresh_token.expose_secret()
        ),
        ("wx1", "rt")
    );
}
