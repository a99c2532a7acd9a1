use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub client_id: String }

// A grant with no user sends no refresh token: `issue` or a refresh, not both.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App,
                 provider = "app", issue)]
pub struct AppToken {
    #[token(from = config.client_id)]
    pub client_id: String,
    pub refresh_token: RefreshToken,
}

fn main() {}
