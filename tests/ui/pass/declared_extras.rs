//! Extras declared on the response: casing, a rename, a required field, `keep`, a `cfg`,
//! an envelope, and a private response (its extras private too).
#![deny(missing_docs)]
//! A crate whose every public item has docs: the declared struct has its own.
use time::macros::datetime;
use token_core::codec::TokenResponse;
use token_core::provider::KeepExtras;
use token_core::{secret::AccessToken, token_endpoint};

/// An answer under `data`, in camelCase.
#[token_endpoint(response, rename_all = "camelCase", envelope = "data", declare_extras = Seller)]
#[derive(Debug)]
pub struct Tokens {
    /// The token.
    pub access_token: AccessToken,
    /// The seller, kept when an answer has none.
    #[token(keep)]
    pub seller_id: Option<String>,
    /// Sent as `login`.
    #[token(rename = "login")]
    pub login_id: String,
    /// Only on unix.
    #[cfg(unix)]
    pub shell: Option<String>,
    /// Not on any target.
    #[cfg(any())]
    pub never: Option<String>,
    /// An `extra` written out: the same role.
    #[token(extra)]
    pub country: Option<String>,
}

#[token_endpoint(response, declare_extras = Hidden)]
struct Private {
    access_token: AccessToken,
    note: Option<String>,
}

fn main() {
    let now = datetime!(2024-01-01 00:00 UTC);
    let body = br#"{"data":{"accessToken":"at","sellerId":"s1","login":"l1","country":"sg"}}"#;
    let set = Tokens::decode_body(body).unwrap().into_token_set(now).unwrap();
    let seller: &Seller = &set.extras;
    assert_eq!(seller.seller_id.as_deref(), Some("s1"));
    assert_eq!(seller.login_id, "l1");
    assert_eq!(seller.country.as_deref(), Some("sg"));
    assert_eq!(<Seller as KeepExtras>::WIRE_NAMES, ["sellerId", "login", "shell", "country"]);
    let mut next = Seller { login_id: "l2".into(), ..Seller::default() };
    next.keep_from(seller);
    assert_eq!(next.seller_id.as_deref(), Some("s1"));
    assert_eq!(next.country, None); // not kept: no `keep`
    let _ = Private::decode_body(br#"{"access_token":"at","note":"n"}"#).map(|p| Hidden::clone(&p.into_token_set(now).unwrap().extras));
    let _ = Private { access_token: AccessToken::new("at"), note: None };
}
