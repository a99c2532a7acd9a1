//! Response fields without a role key take the role their type or RFC 6749 name says, and a
//! role key wins over both.

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
