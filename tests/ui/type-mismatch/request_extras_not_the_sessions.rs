use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shop {
    pub shop_id: Option<String>,
}

// The sessions this endpoint refreshes hold `ShopInfo`, its answer's extras...
#[token_endpoint(response, declare_extras = ShopInfo)]
pub struct ShopTokens {
    pub access_token: AccessToken,
    pub refresh_token: Option<RefreshToken>,
    pub shop_id: Option<String>,
}

// ...so `from = extras.shop_id` read from a `Shop` would never find one.
#[token_endpoint(post = "/token", response = ShopTokens, error = Failure, extras = Shop,
                 provider = "shop")]
pub struct Refresh {
    #[token(header, rename = "X-Shop", from = extras.shop_id)]
    pub shop_id: Option<String>,
    pub refresh_token: RefreshToken,
}

fn main() {}
