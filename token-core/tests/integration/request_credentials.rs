//! What `#[token_endpoint]` requests do with credentials: HTTP Basic client authentication
//! form-urlencodes both parts before Base64 (RFC 6749 section 2.3.1) and the server side
//! reverses it; `secrets()` lists every secret-typed value the request carries, whatever its
//! role or source, so an error message echoing one is scrubbed.

use http::StatusCode;
use time::OffsetDateTime;
use token_core::codec::{Endpoint, FromContext, RequestContext, decode_response};
use token_core::{
    error::Error, secret::AccessToken, secret::AuthCode, secret::ClientSecret,
    secret::RefreshToken, token_set::TokenSet,
};
use token_core::{error::ErrorKind, token_endpoint};

#[token_endpoint(response)]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
}

#[token_endpoint(error)]
pub struct Failure {
    #[token(code)]
    pub error: String,
    #[token(message)]
    pub error_description: Option<String>,
}

#[token_endpoint(post = "/token", form, response = Tokens, error = Failure,
                 body(name = "grant_type", value = "client_credentials"))]
#[derive(Debug, PartialEq)]
pub struct BasicGrant {
    #[token(basic_user)]
    pub client_id: String,
    #[token(basic_password)]
    pub client_secret: ClientSecret,
}

fn base() -> url::Url {
    "https://id.example".parse().unwrap()
}

fn with_authorization(value: &str) -> http::Request<Vec<u8>> {
    let mut request = http::Request::new(b"grant_type=client_credentials".to_vec());
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = "https://id.example/token".parse().unwrap();
    request
        .headers_mut()
        .insert(http::header::AUTHORIZATION, value.parse().unwrap());
    request.headers_mut().insert(
        http::header::CONTENT_TYPE,
        "application/x-www-form-urlencoded".parse().unwrap(),
    );
    request
}

#[test]
fn basic_credentials_are_form_urlencoded_before_base64() {
    let grant = BasicGrant {
        client_id: "app:1 +ü".into(),
        client_secret: ClientSecret::new("s e:c+r/ét%"),
    };
    let request = grant.encode_request(&base()).unwrap();
    // base64("app%3A1+%2B%C3%BC:s+e%3Ac%2Br%2F%C3%A9t%25")
    assert_eq!(
        request.headers()["authorization"],
        "Basic YXBwJTNBMSslMkIlQzMlQkM6cytlJTNBYyUyQnIlMkYlQzMlQTl0JTI1"
    );
    assert!(request.headers()["authorization"].is_sensitive());
    assert_eq!(BasicGrant::decode_request(&request).unwrap(), grant);
}

#[test]
fn plain_credentials_look_as_before() {
    let grant = BasicGrant {
        client_id: "s6BhdRkqt3".into(),
        client_secret: ClientSecret::new("gX1fBat3bV"),
    };
    let request = grant.encode_request(&base()).unwrap();
    assert_eq!(
        request.headers()["authorization"],
        "Basic czZCaGRSa3F0MzpnWDFmQmF0M2JW"
    );
}

#[test]
fn the_server_form_urldecodes_each_part() {
    // What a conforming client sends for `app:1 +ü` / `s e:c+r/ét%`.
    let read = BasicGrant::decode_request(&with_authorization(
        "Basic YXBwJTNBMSslMkIlQzMlQkM6cytlJTNBYyUyQnIlMkYlQzMlQTl0JTI1",
    ))
    .unwrap();
    assert_eq!(read.client_id, "app:1 +ü");
    assert_eq!(read.client_secret.expose_secret(), "s e:c+r/ét%");
    // `%20` is a space too; an empty secret is kept empty.
    let read = BasicGrant::decode_request(&with_authorization(
        "basic YSUyMGI6", // "a%20b:"
    ))
    .unwrap();
    assert_eq!(read.client_id, "a b");
    assert_eq!(read.client_secret.expose_secret(), "");
    // Escapes that are not UTF-8 are not credentials.
    assert!(
        BasicGrant::decode_request(&with_authorization("Basic JUZGOng=")) // "%FF:x"
            .is_err()
    );
}

#[cfg(feature = "sandbox")]
#[test]
fn the_sandbox_client_credentials_grant_reads_what_the_macro_writes() {
    use token_core::oauth::ClientCredentialsGrant;
    let grant = BasicGrant {
        client_id: "app:1 +ü".into(),
        client_secret: ClientSecret::new("s e:c+r/ét%"),
    };
    let request = grant.encode_request(&base()).unwrap();
    let read = ClientCredentialsGrant::decode_request(&request).unwrap();
    assert_eq!(read.client.client_id(), Some("app:1 +ü"));
    assert_eq!(
        read.client.basic_password.unwrap().expose_secret(),
        "s e:c+r/ét%"
    );
}

pub struct ClientConfig {
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub spare_secret: Option<ClientSecret>,
}

/// Secrets from every kind of source: the config (in the body, not HTTP Basic), the session,
/// a hand-set field; and values that are not secrets (a config `String`, a fresh UUID).
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = ClientConfig)]
pub struct BodyAuthRefresh {
    #[token(from = config.client_id)]
    pub client_id: String,
    #[token(from = config.client_secret)]
    pub client_secret: ClientSecret,
    #[token(from = config.spare_secret)]
    pub spare_secret: Option<ClientSecret>,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(header, rename = "X-Request-Id", from = uuid)]
    pub request_id: String,
}

#[token_endpoint(post = "/token", json, response = Tokens, error = Failure)]
pub struct HandSet {
    pub code: AuthCode,
    pub previous: Option<AccessToken>,
    pub device: String,
    pub attempt: u32,
}

fn now() -> OffsetDateTime {
    OffsetDateTime::UNIX_EPOCH
}

fn config() -> ClientConfig {
    ClientConfig {
        client_id: "app-1".into(),
        client_secret: ClientSecret::new("cs-Leaky-9"),
        spare_secret: Some(ClientSecret::new("cs-Spare-7")),
    }
}

#[test]
fn secrets_include_secret_typed_fields_from_the_config_and_by_hand() {
    let session: TokenSet =
        TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt-1"));
    let config = config();
    let refresh =
        BodyAuthRefresh::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    assert_eq!(refresh.secrets(), ["cs-Leaky-9", "cs-Spare-7", "rt-1"]);

    let hand = HandSet {
        code: AuthCode::new("ac-1"),
        previous: Some(AccessToken::new("at-0")),
        device: "phone".into(),
        attempt: 2,
    };
    assert_eq!(hand.secrets(), ["ac-1", "at-0"]);
    let hand = HandSet {
        previous: None,
        ..hand
    };
    assert_eq!(hand.secrets(), ["ac-1"]);
}

#[test]
fn a_client_secret_echoed_in_an_error_message_is_redacted() {
    let session: TokenSet =
        TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt-1"));
    let config = config();
    let refresh =
        BodyAuthRefresh::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    let mut answer = http::Response::new(
        br#"{"error":"invalid_client","error_description":"client app-1 sent cs-Leaky-9, expected another"}"#
            .to_vec(),
    );
    *answer.status_mut() = StatusCode::UNAUTHORIZED;
    answer.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    let error = Error::from(
        decode_response::<BodyAuthRefresh>(&answer, now(), &refresh.secrets()).unwrap_err(),
    );
    assert_eq!(error.kind(), ErrorKind::Rejected);
    let shown = error.to_string();
    assert!(!shown.contains("cs-Leaky-9"), "{shown}");
    assert!(
        shown.contains("client app-1 sent [redacted], expected another"),
        "{shown}"
    );
}

/// An API key sent in a header of its own, beside a value that is not a secret.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = ClientConfig)]
pub struct HeaderKeyRefresh {
    #[token(header, rename = "X-Api-Key", from = config.client_secret)]
    pub api_key: ClientSecret,
    #[token(header, rename = "X-Client-Id", from = config.client_id)]
    pub client_id: String,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

/// A secret sent in a header other than `Authorization` is marked sensitive, as the
/// `Authorization` header is: a `Debug` of the request does not show it, and HTTP/2 does not
/// keep it in its header-compression table. A header that holds no secret is not marked.
#[test]
fn a_secret_in_a_header_of_its_own_is_marked_sensitive() {
    let session: TokenSet =
        TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt-1"));
    let config = config();
    let refresh =
        HeaderKeyRefresh::from_context(&RequestContext::for_refresh(&config, &session)).unwrap();
    let request = refresh.encode_request(&base()).unwrap();
    let key = request.headers().get("X-Api-Key").unwrap();
    assert_eq!(key.as_bytes(), b"cs-Leaky-9");
    assert!(key.is_sensitive());
    assert!(!request.headers().get("X-Client-Id").unwrap().is_sensitive());
    let shown = format!("{request:?}");
    assert!(!shown.contains("cs-Leaky-9"), "{shown}");
}

#[token_endpoint(post = "/token", form, response = Tokens, error = Failure,
                 body(name = "grant_type", value = "refresh_token"))]
#[derive(Debug, PartialEq)]
pub struct BearerRefresh {
    #[token(bearer)]
    pub access_token: AccessToken,
    #[token(header, rename = "X-Merchant-Name")]
    pub merchant: String,
    #[token(header, rename = "X-Shop")]
    pub shop: Option<String>,
}

/// An access token beyond ASCII travels in a header (only control characters keep one out
/// of it), and so does any header text the client writes: the server side reads back what
/// the client sent, rather than refusing the request as one whose header is not text.
#[test]
fn header_text_beyond_ascii_is_read_back_as_sent() {
    let sent = BearerRefresh {
        access_token: AccessToken::new("ät-ü\u{a0}"),
        merchant: "Café Müller".into(),
        // A space that is not HTTP's whitespace is the value's own.
        shop: Some("東京\u{3000}".into()),
    };
    let request = sent.encode_request(&base()).unwrap();
    let read = BearerRefresh::decode_request(&request).expect("the server reads what was sent");
    assert_eq!(read.access_token.expose_secret(), "ät-ü\u{a0}");
    assert_eq!(read.merchant, "Café Müller");
    assert_eq!(read.shop.as_deref(), Some("東京\u{3000}"));
    // Bytes that are not UTF-8 are still no text.
    let mut odd = request.clone();
    odd.headers_mut().insert(
        "X-Merchant-Name",
        http::HeaderValue::from_bytes(b"caf\xe9").unwrap(),
    );
    let refused = BearerRefresh::decode_request(&odd).unwrap_err();
    assert!(refused.0.contains("is not text"), "{refused}");
}
