//! A field group declared once (`#[token_endpoint(fields)]`) and flattened into requests
//! (`#[token(flatten)]`): written at the flatten position, read back, scrubbed and signed
//! with the request's own fields, in form, JSON and query requests alike.

use time::macros::datetime;
use token_core::codec::{Endpoint, FieldGroup, FromContext, RequestContext, SignedRequestError};
use token_core::{
    secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint,
    token_set::TokenSet,
};

#[token_endpoint(response)]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
}

#[token_endpoint(error)]
pub struct Failure {
    #[token(code)]
    pub error: String,
}

pub struct App {
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub tenant: String,
    pub app_key: String,
    pub app_secret: ClientSecret,
}

fn app() -> App {
    App {
        client_id: "app".into(),
        client_secret: ClientSecret::new("s3cret"),
        tenant: "eu".into(),
        app_key: "123456".into(),
        app_secret: ClientSecret::new("helloworld"),
    }
}

/// The client's credentials in the body, and its tenant in a header.
#[token_endpoint(fields, config = App)]
#[derive(Clone, Debug, PartialEq)]
pub struct ClientAuth {
    #[token(from = config.client_id)]
    pub client_id: String,
    #[token(from = config.client_secret)]
    pub client_secret: ClientSecret,
    #[token(header, rename = "X-Tenant", from = config.tenant)]
    pub tenant: String,
}

#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App,
                 body(name = "grant_type", value = "refresh_token"))]
#[derive(Clone, Debug, PartialEq)]
pub struct FormRefresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(flatten)]
    pub auth: ClientAuth,
    #[token(from = value("scope"))]
    pub scope: Option<String>,
}

#[token_endpoint(post = "/token", json, rename_all = "camelCase", response = Tokens,
                 error = Failure, config = App)]
#[derive(Clone, Debug, PartialEq)]
pub struct JsonRefresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(flatten)]
    pub auth: ClientAuth,
    #[token(from = value("scope"))]
    pub scope: Option<String>,
}

/// An app's key and the time, in the query.
#[token_endpoint(fields, config = App)]
#[derive(Clone, Debug, PartialEq)]
pub struct AppQuery {
    #[token(query, from = config.app_key)]
    pub app_key: String,
    #[token(query, from = config.tenant)]
    pub region: String,
}

#[token_endpoint(post = "/auth/token/refresh", form, response = Tokens, error = Failure,
                 config = App, query(name = "sign_method", value = "sha256"),
                 sign(hmac_sha256, over(path, sorted_params), encoding = hex_upper,
                      into = query("sign")))]
#[derive(Clone, Debug, PartialEq)]
pub struct SignedRefresh {
    #[token(flatten)]
    pub app: AppQuery,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.app_secret)]
    pub app_secret: ClientSecret,
}

fn session() -> TokenSet {
    TokenSet::new(AccessToken::new("at")).with_refresh_token(RefreshToken::new("rt"))
}

fn base() -> url::Url {
    "https://id.example".parse().unwrap()
}

/// A request of type `R` built from the app's config and the session.
fn built<R: FromContext<App>>() -> R {
    R::from_context(&RequestContext::for_refresh(&app(), &session())).unwrap()
}

#[test]
fn a_form_request_writes_the_group_at_the_flatten_position_and_reads_it_back() {
    let (app, session, scope) = (app(), session(), "payments".to_owned());
    let cx = RequestContext::for_refresh(&app, &session).with_value("scope", &scope);
    let refresh = FormRefresh::from_context(&cx).unwrap();
    assert_eq!(refresh.auth.client_id, "app");
    let request = refresh.encode_request(&base()).unwrap();
    assert_eq!(
        std::str::from_utf8(request.body()).unwrap(),
        "grant_type=refresh_token&refresh_token=rt&client_id=app&client_secret=s3cret&scope=payments"
    );
    assert_eq!(request.headers()["X-Tenant"], "eu");
    assert_eq!(FormRefresh::decode_request(&request).unwrap(), refresh);
}

#[test]
fn a_json_request_writes_the_group_at_the_flatten_position_and_reads_it_back() {
    let refresh: JsonRefresh = built();
    let request = refresh.encode_request(&base()).unwrap();
    // The group's own wire names: `rename_all` is the request's, not the group's.
    assert_eq!(
        request.body(),
        br#"{"refreshToken":"rt","client_id":"app","client_secret":"s3cret"}"#
    );
    assert_eq!(request.headers()["X-Tenant"], "eu");
    assert_eq!(JsonRefresh::decode_request(&request).unwrap(), refresh);
}

#[test]
fn a_missing_group_field_is_a_request_error_on_the_server_side() {
    let refresh: FormRefresh = built();
    let mut request = refresh.encode_request(&base()).unwrap();
    request.headers_mut().remove("X-Tenant");
    let error = FormRefresh::decode_request(&request).unwrap_err();
    assert!(error.0.contains("X-Tenant"), "{error}");
}

#[test]
fn the_group_secrets_are_the_requests_secrets() {
    let refresh: FormRefresh = built();
    assert_eq!(refresh.auth.secrets(), ["s3cret"]);
    assert_eq!(refresh.secrets(), ["rt", "s3cret"]);
    let shown = format!("{refresh:?}");
    assert!(
        !shown.contains("s3cret") && !shown.contains("\"rt\""),
        "{shown}"
    );
}

#[test]
fn a_signature_over_sorted_params_covers_the_flattened_query_fields() {
    let (app, session) = (app(), session());
    let cx =
        RequestContext::for_refresh(&app, &session).with_now(datetime!(2018-02-05 08:46:32 UTC));
    let refresh = SignedRefresh::from_context(&cx).unwrap();
    let request = refresh.encode_request(&base()).unwrap();
    let uri = request.uri().to_string();
    assert!(
        uri.starts_with("https://id.example/auth/token/refresh?sign_method=sha256&app_key=123456&region=eu&sign="),
        "{uri}"
    );
    let decoded = SignedRefresh::decode_signed_request(&request, &app.app_secret).unwrap();
    assert_eq!(decoded, refresh);

    // Changing a flattened parameter breaks the signature.
    let mut tampered = request.clone();
    *tampered.uri_mut() = uri
        .replace("app_key=123456", "app_key=654321")
        .parse()
        .unwrap();
    assert!(matches!(
        SignedRefresh::decode_signed_request(&tampered, &app.app_secret),
        Err(SignedRequestError::BadSignature(_))
    ));
}
