use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub client_id: String, pub merchant_id: String }

// One field names the client.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App, provider = "acme")]
pub struct Refresh {
    #[token(from = config.client_id, client_id)]
    pub client_id: String,
    #[token(from = config.merchant_id, client_id)]
    pub merchant_id: String,
    pub refresh_token: RefreshToken,
}

fn main() {}
