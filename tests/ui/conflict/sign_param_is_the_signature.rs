use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub secret: ClientSecret }

#[token_endpoint(post = "/token", response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(path, query("sign")), into = query("sign")))]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub key: ClientSecret,
}

fn main() {}
