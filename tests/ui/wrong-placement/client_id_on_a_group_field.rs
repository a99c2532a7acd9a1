use token_core::token_endpoint;
pub struct App { pub client_id: String }

// A group's fields are written into requests; the request's own field names the client.
#[token_endpoint(fields, config = App)]
pub struct ClientAuth {
    #[token(from = config.client_id, client_id)]
    pub client_id: String,
}

fn main() {}
