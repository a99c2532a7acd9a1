//! A signature declared `into = body("...")` goes in the request's own body format: a JSON
//! request whose other fields all travel elsewhere (headers, the query) sends the signature
//! in a JSON object, which the server side reads back with the same declaration.

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
    #[token(code)]
    pub error: String,
}

pub struct App {
    pub app_id: String,
    pub secret: ClientSecret,
}

#[token_endpoint(post = "/token", json, response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(method, path, sorted_params), into = body("sign")))]
pub struct HeaderOnlyRefresh {
    #[token(header, rename = "X-App-Id", from = config.app_id)]
    pub app_id: String,
    #[token(header, rename = "X-Refresh-Token")]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub secret: ClientSecret,
}

#[test]
fn a_json_request_with_only_its_signature_in_the_body_sends_a_json_object() {
    let app = App {
        app_id: "app-1".into(),
        secret: ClientSecret::new("app-secret"),
    };
    let session: TokenSet =
        TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"));
    let refresh = HeaderOnlyRefresh::from_context(&RequestContext::for_refresh(&app, &session))
        .expect("every source is there");
    let request = refresh
        .encode_request(&"https://api.example".parse().unwrap())
        .expect("the request is signed");
    assert_eq!(
        request.headers()[http::header::CONTENT_TYPE],
        "application/json"
    );
    let body: serde_json::Value = serde_json::from_slice(request.body()).expect("the body is JSON");
    let sign = body["sign"].as_str().expect("the signature is in the body");
    assert_eq!(sign.len(), 64, "a lower-hex HMAC-SHA256");
    assert_eq!(body.as_object().map(|o| o.len()), Some(1), "{body}");
    // The server side reads it back, signature and all.
    let decoded = HeaderOnlyRefresh::decode_signed_request(&request, &app.secret)
        .expect("the sandbox accepts its own client's request");
    assert_eq!(decoded.app_id, "app-1");
    assert_eq!(decoded.refresh_token.expose_secret(), "rt");
    assert!(
        HeaderOnlyRefresh::decode_signed_request(&request, &ClientSecret::new("guess")).is_err()
    );
}
