use token_core::token_endpoint;

// `message` is the message by its name, and a message is text.
#[token_endpoint(error)]
pub struct Failure {
    pub code: String,
    pub message: Vec<String>,
}

fn main() {}
