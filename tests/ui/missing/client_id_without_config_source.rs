use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub client_id: String }

// `client_id` names the client the config is for: the field must read the config, not the session.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App, provider = "acme")]
pub struct Refresh {
    #[token(from = refresh_token, client_id)]
    pub refresh_token: RefreshToken,
}

fn main() {}
