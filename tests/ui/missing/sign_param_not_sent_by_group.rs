use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub partner_id: i64, pub secret: ClientSecret }

#[token_endpoint(fields, config = App)]
pub struct Partner {
    #[token(query, from = config.partner_id)]
    pub partner_id: i64,
}

// The group sends `partner_id`; the signature reads `partner`.
#[token_endpoint(post = "/token", response = Tokens, error = Failure, config = App,
                 sign(hmac_sha256, over(query("partner"), path), into = query("sign")))]
pub struct Refresh {
    #[token(flatten)]
    pub partner: Partner,
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub key: ClientSecret,
}

fn main() {}
