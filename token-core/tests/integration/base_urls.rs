//! The endpoint's path is joined to the provider's base URL: after the base's own path
//! prefix (Lazada's `https://auth.lazada.com/rest`), and before the base's own query
//! parameters (a gateway's `?api-version=2`), which the request keeps, first, beside its own;
//! a signature over the sorted parameters covers them on both sides.

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
