use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }
pub struct App { pub secret: ClientSecret }

// TikTok's refresh is a GET with every parameter in the query (its fields' default): a
// field put in the body would travel in a GET body, which servers ignore.
#[token_endpoint(get = "/api/v2/token/refresh", response = Tokens, error = Failure, config = App,
                 body(name = "grant_type", value = "refresh_token"),
                 sign(hmac_sha256, over(path), into = body("sign")))]
pub struct Refresh {
    #[token(body, from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(signing_key, from = config.secret)]
    pub key: ClientSecret,
}

#[token_endpoint(fields)]
pub struct Grant {
    #[token(from = uuid)]
    pub nonce: String,
}

#[token_endpoint(get = "/api/v2/token/refresh", response = Tokens, error = Failure)]
pub struct Grouped {
    #[token(query, from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(flatten)]
    pub grant: Grant,
}

fn main() {}
