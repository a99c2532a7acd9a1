#![allow(unused)]
use token_core::token_endpoint;

#[token_endpoint(config)]
pub enum Region {
    Eu,
    Us,
}

fn main() {}
