use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }

// `bearer` writes `Authorization`: a header of that name would be a second one.
#[token_endpoint(post = "/token", response = Tokens, error = Failure,
                 header(name = "authorization", value = "Basic YXBwOnNlY3JldA=="))]
pub struct Refresh {
    #[token(bearer, from = access_token)]
    pub access_token: AccessToken,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

#[token_endpoint(post = "/token", form, response = Tokens, error = Failure)]
pub struct BasicRefresh {
    #[token(basic_user)]
    pub client_id: String,
    #[token(basic_password)]
    pub client_secret: String,
    #[token(header, rename = "Authorization")]
    pub proxy_authorization: String,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
}

fn main() {}
