use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub client_id: String, pub secret: ClientSecret }

// A constant and a field in one place, a header in two cases, the signature beside a
// constant: each would be sent twice, and the server side refuses a repeated one.
#[token_endpoint(post = "/token", json, response = Tokens, error = Failure, config = App,
                 header(name = "X-Grant", value = "refresh"), query(name = "sign", value = "v1"),
                 body(name = "device.kind", value = "web"),
                 sign(hmac_sha256, over(path, sorted_params), into = query("sign")))]
pub struct Refresh {
    #[token(header, rename = "x-grant")]
    pub grant: String,
    #[token(header, rename = "X-App")]
    pub app: String,
    #[token(header, rename = "x-app")]
    pub app_again: String,
    pub device: String,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub key: ClientSecret,
}

// A form request's query and body are one set of parameters: one sent in both is refused.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App,
                 query(name = "grant_type", value = "refresh_token"))]
pub struct FormRefresh {
    pub grant_type: String,
    #[token(query)]
    pub client_id: String,
    #[token(body, rename = "client_id")]
    pub client: String,
    pub refresh_token: RefreshToken,
}

#[token_endpoint(fields, config = App)]
pub struct ClientAuth {
    #[token(from = config.client_id)]
    pub client_id: String,
}

#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App)]
pub struct GroupedRefresh {
    #[token(query, rename = "client_id", from = config.client_id)]
    pub id: String,
    #[token(flatten)]
    pub auth: ClientAuth,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

fn main() {}
