#![allow(unused)]
use token_core::token_endpoint;

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct User {
    #[token(keep)]
    pub unionid: String,
}
fn main() {}
