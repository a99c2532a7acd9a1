use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub secret: ClientSecret }

// `separator` joins the parts; inside `sorted_params(...)` the parameters are joined by `join`.
#[token_endpoint(post = "/gateway.do", form, response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(sorted_params(pair = "=", separator = "&")), into = body("sign")))]
pub struct Refresh {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub key: ClientSecret,
}

// Signing the parameters twice.
#[token_endpoint(post = "/gateway.do", form, response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(sorted_params, sorted_params(join = "&")), into = body("sign")))]
pub struct Twice {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub key: ClientSecret,
}

fn main() {}
