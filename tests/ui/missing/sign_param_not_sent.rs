use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub partner_id: i64, pub secret: ClientSecret }

// `partner_id` goes in the body, not the query the signature reads.
#[token_endpoint(post = "/token", response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(query("partner_id"), path), into = query("sign")))]
pub struct Refresh {
    #[token(from = config.partner_id)]
    pub partner_id: i64,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub key: ClientSecret,
}

// A dotted body constant nests: the body has no top-level `meta.partner`.
#[token_endpoint(post = "/token", response = Tokens, error = Failure, config = App,
                 body(name = "meta.partner", value = "7"),
                 sign(hmac_sha256, over(body("meta.partner"), path), into = query("sign")))]
pub struct Nested {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub key: ClientSecret,
}

fn main() {}
