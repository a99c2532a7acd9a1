use token_core::{secret::ClientSecret, token_endpoint};

pub struct App {
    pub client_id: String,
}

#[token_endpoint(fields, config = App)]
pub struct ClientAuth {
    #[token(from = config.client_id)]
    pub client_id: String,
    pub client_secret: ClientSecret,
}

fn main() {}
