use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Grant {
    pub open_id: Option<String>,
    pub scope: Option<String>, // also the response's own field
}

#[token_endpoint(response, extras = Grant)]
pub struct Tokens {
    pub access_token: AccessToken,
    pub scope: Option<String>,
    pub grant: Grant,
}

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Envelope {
    pub code: Option<String>, // the answer's constant `code` is outside `data`: no clash
}

#[token_endpoint(response, extras = Envelope, envelope = "data", body(name = "code", value = 0))]
pub struct Enveloped {
    pub access_token: AccessToken,
    pub user: Envelope,
}

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Coded {
    pub code: Option<String>,
}

#[token_endpoint(response, extras = Coded, body(name = "code", value = "0"))]
pub struct Flat {
    pub access_token: AccessToken,
    pub user: Coded,
}

fn main() {}
