#![allow(unused)]
use token_core::token_endpoint;

#[token_endpoint(config)]
pub struct AppId(pub String);

fn main() {}
