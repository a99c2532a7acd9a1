//! The endpoint's path is joined to the provider's base URL: after the base's own path
//! prefix (Lazada's `https://auth.lazada.com/rest`), and before the base's own query
//! parameters (a gateway's `?api-version=2`), which the request keeps, first, beside its own;
//! a signature over the sorted parameters covers them on both sides. `CallContext::call_to`
//! sends to a token URL configured whole instead.

use token_core::codec::{Endpoint, FromContext, RequestContext};
use token_core::{
    secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint,
    token_set::TokenSet,
};

#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
}

#[token_endpoint(error)]
pub struct Failure {
    pub error: String,
}

pub struct App {
    pub app_key: String,
    pub secret: ClientSecret,
}

#[token_endpoint(post = "/auth/token/refresh", form, response = Tokens, error = Failure,
                 config = App, query(name = "sign_method", value = "sha256"),
                 sign(hmac_sha256, over(path, sorted_params), encoding = hex_upper, into = query("sign")))]
pub struct Refresh {
    #[token(query, from = config.app_key)]
    pub app_key: String,
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub secret: ClientSecret,
}

fn encoded(base: &str) -> http::Request<Vec<u8>> {
    let app = App {
        app_key: "123456".into(),
        secret: ClientSecret::new("helloworld"),
    };
    let session: TokenSet =
        TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"));
    Refresh::from_context(&RequestContext::for_refresh(&app, &session))
        .unwrap()
        .encode_request(&base.parse().unwrap())
        .unwrap()
}

#[test]
fn the_path_follows_the_base_urls_own_path() {
    for base in [
        "https://auth.lazada.com/rest",
        "https://auth.lazada.com/rest/",
    ] {
        let request = encoded(base);
        assert_eq!(request.uri().path(), "/rest/auth/token/refresh", "{base}");
    }
}

#[test]
fn the_base_urls_own_query_is_kept_and_signed() {
    let request = encoded("https://gw.example/rest?api-version=2");
    assert_eq!(request.uri().path(), "/rest/auth/token/refresh");
    let query = request.uri().query().unwrap();
    assert!(
        query.starts_with("api-version=2&sign_method=sha256&app_key=123456&sign="),
        "{query}"
    );
    // The server side, which receives the same query, verifies the signature over it.
    let decoded = Refresh::decode_signed_request(&request, &ClientSecret::new("helloworld"));
    assert!(decoded.is_ok(), "{:?}", decoded.err());
}

/// A transport that keeps the request it is sent and answers a token.
#[derive(Default)]
struct Kept(std::sync::Mutex<Option<http::Request<Vec<u8>>>>);

#[token_core::async_trait]
impl token_core::transport::HttpClient for Kept {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, token_core::error::TransportError> {
        *self.0.lock().unwrap() = Some(request);
        Ok(http::Response::new(br#"{"access_token": "at-2"}"#.to_vec()))
    }
}

#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App,
                 query(name = "v", value = "2"))]
pub struct Unsigned {
    #[token(query, from = config.app_key)]
    pub app_key: String,
    pub refresh_token: RefreshToken,
}

fn call_context(kept: &std::sync::Arc<Kept>) -> token_core::provider::CallContext {
    token_core::provider::CallContext::new(
        kept.clone(),
        std::sync::Arc::new(token_core::clock::SystemClock),
        "s",
    )
}

/// `CallContext::call_to` sends to a token URL configured whole: its path in place of the
/// endpoint's, its query and the endpoint's query parameters both kept.
#[tokio::test]
async fn call_to_sends_to_the_url_itself_with_both_queries() {
    let kept = std::sync::Arc::new(Kept::default());
    let refresh = Unsigned {
        app_key: "123456".into(),
        refresh_token: RefreshToken::new("rt"),
    };
    let url = "https://id.example/realms/pay/protocol/openid-connect/token?tenant=7#part";
    let set = call_context(&kept)
        .call_to(&url.parse().unwrap(), &refresh)
        .await
        .unwrap();
    assert_eq!(set.access_token.expose_secret(), "at-2");
    let sent = kept.0.lock().unwrap().take().unwrap();
    assert_eq!(
        sent.uri(),
        "https://id.example/realms/pay/protocol/openid-connect/token?tenant=7&v=2&app_key=123456"
    );
    assert_eq!(sent.body(), b"refresh_token=rt");
}

/// A signed request's signature may cover its path, which a token URL would replace:
/// `call_to` refuses it, sending nothing.
#[tokio::test]
async fn call_to_refuses_a_signed_request() {
    let kept = std::sync::Arc::new(Kept::default());
    let refresh = Refresh {
        app_key: "123456".into(),
        refresh_token: RefreshToken::new("rt"),
        secret: ClientSecret::new("helloworld"),
    };
    let refused = call_context(&kept)
        .call_to(&"https://gw.example/token".parse().unwrap(), &refresh)
        .await;
    assert!(
        matches!(
            refused,
            Err(token_core::error::Error::Endpoint(
                token_core::error::EndpointError::Encode(_)
            ))
        ),
        "{refused:?}"
    );
    assert!(kept.0.lock().unwrap().is_none(), "nothing is sent");
}
