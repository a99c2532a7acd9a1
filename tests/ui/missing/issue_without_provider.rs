use token_core::{secret::AccessToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub client_id: String }

// `issue` says the manager issues with this grant: it needs the provider's name.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App, issue,
                 body(name = "grant_type", value = "client_credentials"))]
pub struct AppToken {
    #[token(from = config.client_id)]
    pub client_id: String,
}

fn main() {}
