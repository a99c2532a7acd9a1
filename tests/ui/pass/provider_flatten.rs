//! A `provider = "..."` refresh whose refresh token is read by a flattened group: a group
//! without a config type serves a request without one (`Config = ()`).
use token_core::provider::RefreshEndpoint;
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

#[token_endpoint(response)] pub struct Tokens { #[token(access_token)] pub access_token: AccessToken }
#[token_endpoint(error)] pub struct Failure { #[token(code)] pub error: String }

#[token_endpoint(fields)]
pub struct Grant {
    #[token(from = refresh_token)]
    pub refresh_token: Option<RefreshToken>,
    #[token(from = value("grant_type"))]
    pub grant_type: String,
}

#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, provider = "bare")]
pub struct Refresh {
    #[token(flatten)]
    pub grant: Grant,
}

fn main() {
    let request = Refresh {
        grant: Grant { refresh_token: Some(RefreshToken::new("rt")), grant_type: "refresh_token".into() },
    };
    assert_eq!(request.refresh_token(), Some(RefreshToken::new("rt")));
    assert_eq!(request.config_mismatch(&()), None);
    assert_eq!(<Refresh as RefreshEndpoint>::PROVIDER, "bare");
}
