//! Every request form: methods, formats, placements, sources, constants, casings.
use token_core::{secret::AccessToken, secret::AuthCode, secret::ClientSecret, codec::Endpoint, codec::FromContext, secret::RefreshToken, token_endpoint};

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

pub struct Config {
    pub client_id: String,
    pub client_secret: ClientSecret,
    pub nested: Nested,
}

pub struct Nested {
    pub partner_id: u32,
}

#[token_endpoint(post = "/oauth/token", form, response = Tokens, error = Failure, config = Config,
                 body(name = "grant_type", value = "authorization_code"),
                 header(name = "X-Api-Version", value = "2"), query(name = "tenant", value = "main"))]
pub struct ExchangeCode {
    #[token(basic_user, from = config.client_id)]
    pub client_id: String,
    #[token(basic_password, from = config.client_secret)]
    pub client_secret: ClientSecret,
    #[token(body, from = auth_code)]
    pub code: AuthCode,
    #[token(from = code_verifier)]
    pub code_verifier: Option<String>,
    #[token(query, rename = "partner", from = config.nested.partner_id)]
    pub partner_id: u32,
}

#[token_endpoint(get = "/introspect", response = Tokens, error = Failure, rename_all = "SCREAMING-KEBAB-CASE")]
pub struct Introspect {
    #[token(bearer, from = access_token)]
    pub access_token: AccessToken,
    #[token(header, from = uuid)]
    pub request_id: String,
}

#[token_endpoint(put = "/session", json, response = Tokens, error = Failure, rename_all = "PascalCase")]
pub struct PutSession {
    #[token(bearer, from = value("app_token"))]
    pub app_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    pub labels: Vec<String>,
}

fn assert_endpoint<E: Endpoint>() {}
fn assert_from_context<E: FromContext<C>, C>() {}

fn main() {
    assert_endpoint::<ExchangeCode>();
    assert_endpoint::<Introspect>();
    assert_endpoint::<PutSession>();
    assert_from_context::<ExchangeCode, Config>();
    assert_from_context::<Introspect, ()>();
    assert_eq!(Introspect::METHOD, http_method());
}

fn http_method() -> http::Method {
    http::Method::GET
}
