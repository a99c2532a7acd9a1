#![allow(unused)]
use token_core::token_endpoint;

#[token_endpoint(config)]
pub struct Settings {
    #[token(rename = "appKey")]
    pub app_key: String,
    pub region: Option<String>,
}

fn main() {}
