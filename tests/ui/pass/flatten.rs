//! A field group flattened into two requests, one JSON and one form, each filled from the
//! same config; the group's fields travel where they say, at the flatten position.
use token_core::codec::{Endpoint, FromContext, RequestContext};
use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_set::TokenSet, token_endpoint};

#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }

pub struct App {
    pub client_id: String,
    pub client_secret: Option<ClientSecret>,
}

#[token_endpoint(fields, config = App, rename_all = "camelCase")]
#[derive(Debug, PartialEq)]
pub struct ClientAuth {
    #[token(from = config.client_id)]
    pub client_id: String,
    #[token(from = config.client_secret)]
    pub client_secret: Option<ClientSecret>,
    #[token(header, rename = "X-Request-Id", from = uuid)]
    pub request_id: String,
}

#[token_endpoint(post = "/token", json, response = Tokens, error = Failure, config = App)]
pub struct JsonRefresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(flatten)]
    pub auth: ClientAuth,
}

// No `config = Type`: generic over any config the group reads.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure)]
pub struct FormRefresh {
    #[token(flatten)]
    pub auth: ClientAuth,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

fn main() {
    let app = App { client_id: "app".into(), client_secret: None };
    let session: TokenSet = TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"));
    let cx = RequestContext::for_refresh(&app, &session);
    let base = "https://id.example".parse().unwrap();
    let json = JsonRefresh::from_context(&cx).unwrap().encode_request(&base).unwrap();
    assert_eq!(json.body(), br#"{"refresh_token":"rt","clientId":"app"}"#);
    assert_eq!(json.headers()["X-Request-Id"].len(), 36);
    let form = FormRefresh::from_context(&cx).unwrap();
    let request = form.encode_request(&base).unwrap();
    assert_eq!(request.body(), b"clientId=app&refresh_token=rt");
    assert_eq!(FormRefresh::decode_request(&request).unwrap().auth, form.auth);
}
