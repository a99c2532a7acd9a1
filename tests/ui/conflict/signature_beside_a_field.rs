use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub secret: ClientSecret }

// Header names are the same in any case: the request would carry two `X-Sign` headers.
#[token_endpoint(post = "/token", response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(path, body), into = header("X-Sign")))]
pub struct Refresh {
    #[token(header, rename = "x-sign")]
    pub legacy_sign: String,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub key: ClientSecret,
}

// The same name, in a form request's body: one error, not one per rule.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(path, sorted_params), into = query("sign")))]
pub struct FormRefresh {
    pub sign: String,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub key: ClientSecret,
}

#[token_endpoint(post = "/token", response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(path, body), into = header("X-Sign")))]
pub struct SameName {
    #[token(header, rename = "X-Sign")]
    pub legacy_sign: String,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub key: ClientSecret,
}

fn main() {}
