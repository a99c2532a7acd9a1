//! A request's declared constants (`body(...)`, `query(...)`, `header(...)`), as the client
//! writes them and the server side (`Endpoint::decode_request`, which a sandbox serving the
//! endpoint calls) reads them back: every constant the client wrote, an empty one too.

use token_core::codec::{Endpoint, FromContext, RequestContext};
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint, token_set::TokenSet};

#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
}

#[token_endpoint(error)]
pub struct Failure {
    pub error: String,
}

fn base() -> url::Url {
    "https://id.example".parse().unwrap()
}

fn session() -> TokenSet {
    TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"))
}

/// A provider that wants an empty `scope` and `state` sent, in a form body, in the query and
/// in a header.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure,
                 body(name = "grant_type", value = "refresh_token"),
                 body(name = "scope", value = ""),
                 query(name = "state", value = ""),
                 header(name = "X-Tenant", value = ""))]
#[derive(Debug)]
pub struct FormRefresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

/// The same constants in a JSON body.
#[token_endpoint(post = "/token", json, response = Tokens, error = Failure,
                 body(name = "scope", value = ""))]
#[derive(Debug)]
pub struct JsonRefresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

#[test]
fn an_empty_constant_the_client_writes_is_read_back() {
    let session = session();
    let cx = RequestContext::for_refresh(&(), &session);
    let request = FormRefresh::from_context(&cx)
        .unwrap()
        .encode_request(&base())
        .unwrap();
    assert_eq!(
        request.body(),
        b"grant_type=refresh_token&scope=&refresh_token=rt"
    );
    assert_eq!(request.uri(), "https://id.example/token?state=");
    assert_eq!(request.headers()["X-Tenant"], "");
    let read = FormRefresh::decode_request(&request)
        .expect("the server side reads the request the client built");
    assert_eq!(read.refresh_token.expose_secret(), "rt");

    // The constant is still checked: absent, or holding another value, it is refused.
    for body in [
        &b"grant_type=refresh_token&refresh_token=rt"[..],
        b"grant_type=refresh_token&scope=all&refresh_token=rt",
    ] {
        let mut other = request.clone();
        *other.body_mut() = body.to_vec();
        let refused = FormRefresh::decode_request(&other).unwrap_err();
        assert!(refused.to_string().contains("`scope`"), "{refused}");
    }

    let request = JsonRefresh::from_context(&cx)
        .unwrap()
        .encode_request(&base())
        .unwrap();
    assert_eq!(request.body(), br#"{"scope":"","refresh_token":"rt"}"#);
    JsonRefresh::decode_request(&request).expect("the JSON constant is read back");
}

/// A provider that names its media types: SNAP BI's `Content-Type: application/json`
/// spelled its own way, a vendor `Accept`.
#[token_endpoint(post = "/token", json, response = Tokens, error = Failure,
                 header(name = "Content-Type", value = "application/json; charset=utf-8"),
                 header(name = "Accept", value = "application/vnd.acme+json"))]
pub struct MediaTypes {
    pub refresh_token: RefreshToken,
}

/// A declared `Content-Type` or `Accept` replaces the one the client writes by default: it
/// was sent beside it, two of each, which the server side refuses as a repeated header.
#[test]
fn a_declared_content_type_or_accept_is_the_only_one_sent() {
    let request = MediaTypes {
        refresh_token: RefreshToken::new("rt"),
    }
    .encode_request(&base())
    .unwrap();
    let all = |name: http::header::HeaderName| {
        request
            .headers()
            .get_all(name)
            .iter()
            .map(|v| v.to_str().unwrap().to_owned())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        all(http::header::CONTENT_TYPE),
        ["application/json; charset=utf-8"]
    );
    assert_eq!(all(http::header::ACCEPT), ["application/vnd.acme+json"]);
    assert_eq!(request.body(), br#"{"refresh_token":"rt"}"#);
    MediaTypes::decode_request(&request).expect("the server side reads it back");
}
