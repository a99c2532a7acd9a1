//! `config = ...` as a qualified path: `crate::`, `self::` and a module's path.
use token_core::{secret::AccessToken, secret::ClientSecret, secret::RefreshToken, codec::Endpoint, token_endpoint};

mod cfg {
    pub struct App {
        pub id: String,
        pub secret: token_core::secret::ClientSecret,
    }
}

pub struct Local {
    pub id: String,
}

#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
}

#[token_endpoint(error)]
pub struct Failure {
    pub error: String,
}

#[token_endpoint(post = "/token", form, response = self::Tokens, error = crate::Failure, config = crate::cfg::App)]
pub struct ByCrate {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(from = config.id)]
    pub client_id: String,
    #[token(from = config.secret)]
    pub client_secret: ClientSecret,
}

#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = self::Local)]
pub struct BySelf {
    #[token(from = refresh_token)]
    pub refresh_token: RefreshToken,
    #[token(from = config.id)]
    pub client_id: String,
}

fn assert_endpoint<E: Endpoint>() {}

fn main() {
    assert_endpoint::<ByCrate>();
    assert_endpoint::<BySelf>();
}
