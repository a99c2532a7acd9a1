use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }

// Not an `#[token_endpoint(extras)]` struct: no session holds one...
#[derive(Clone, Debug, Default)]
pub struct Shop {
    pub shop_id: Option<String>,
}

// ...so `from = extras.shop_id` would fail every call.
#[token_endpoint(post = "/token", response = Tokens, error = Failure, extras = Shop)]
pub struct Refresh {
    #[token(header, rename = "X-Shop", from = extras.shop_id)]
    pub shop_id: Option<String>,
    pub refresh_token: RefreshToken,
}

fn main() {}
