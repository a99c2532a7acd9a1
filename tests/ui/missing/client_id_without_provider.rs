use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub client_id: String }

// `client_id` names the client of a refresh endpoint: it needs `provider = "..."`.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App)]
pub struct Refresh {
    #[token(from = config.client_id, client_id)]
    pub client_id: String,
    pub refresh_token: RefreshToken,
}

fn main() {}
