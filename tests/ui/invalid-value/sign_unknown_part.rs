use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub secret: ClientSecret }

#[token_endpoint(post = "/token", response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(path, headers), into = query("sign")))]
pub struct Refresh {
    #[token(query, from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub key: ClientSecret,
}

// A parameter is signed by where it travels, not by its field's name.
#[token_endpoint(post = "/token", response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(field("partner_id"), path), into = query("sign")))]
pub struct ByField {
    #[token(query, from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub key: ClientSecret,
}

fn main() {}
