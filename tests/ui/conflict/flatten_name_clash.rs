use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }

pub struct App {
    pub client_id: String,
    pub client_secret: ClientSecret,
}

#[token_endpoint(fields, config = App)]
pub struct ClientAuth {
    #[token(from = config.client_id)]
    pub client_id: String,
    #[token(from = config.client_secret)]
    pub client_secret: ClientSecret,
}

#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App)]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(flatten)]
    pub auth: ClientAuth,
    #[token(from = config.client_id)]
    pub client_id: String,
}

fn main() {}
