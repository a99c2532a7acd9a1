use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub client_secret: ClientSecret }

// A store key and log lines show the client id: a secret cannot be one (its text is a
// redaction mark, the same for every client).
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App, provider = "acme")]
pub struct Refresh {
    #[token(from = config.client_secret, client_id)]
    pub client_secret: ClientSecret,
    pub refresh_token: RefreshToken,
}

fn main() {}
