#![allow(unused)]
use token_core::{secret::AccessToken, token_endpoint};

#[token_endpoint(config, response)]
pub struct Settings {
    pub app_key: String,
}

fn main() {}
