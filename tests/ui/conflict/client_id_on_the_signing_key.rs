use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub app_secret: ClientSecret }

// The signing key is a secret: it never names the client (the namespace is no secret).
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App, provider = "acme",
                 sign(hmac_sha256, over(sorted_params), encoding = hex_upper, into = query("sign")))]
pub struct Refresh {
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.app_secret, client_id)]
    pub app_secret: ClientSecret,
}

fn main() {}
