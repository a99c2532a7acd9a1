//! `from = value("name")` reads a value the provider adds to the context by name, of the
//! field's type: a value added under that name with another type is an error naming it, not
//! an absent value (an `Option` field was silently left out of the request).

use token_core::codec::{FromContext, RequestContext};
use token_core::error::EndpointError;
use token_core::{secret::AccessToken, secret::ClientSecret, token_endpoint};

#[token_endpoint(response)]
pub struct Tokens {
    pub access_token: AccessToken,
}

#[token_endpoint(error)]
pub struct Failure {
    pub error: String,
}

#[token_endpoint(post = "/token", json, response = Tokens, error = Failure)]
pub struct Register {
    #[token(header, rename = "X-Device", from = value("device"))]
    pub device: Option<String>,
    #[token(bearer, from = value("app_token"))]
    pub app_token: AccessToken,
}

#[test]
fn a_value_of_another_type_is_an_error_naming_it() {
    let app = AccessToken::new("app-token-secret");
    // `&"web-1"` adds a `&str`, where the field reads a `String`.
    let cx = RequestContext::new(&())
        .with_value("app_token", &app)
        .with_value("device", &"web-1");
    match Register::from_context(&cx) {
        Err(EndpointError::Encode(reason)) => {
            assert!(reason.contains("`device`"), "{reason}");
            assert!(reason.contains("String"), "{reason}");
        }
        Err(other) => panic!("another error: {other}"),
        Ok(register) => panic!(
            "the value was read as {:?} instead of an error",
            register.device
        ),
    }
    // A required field likewise says the type, not that the value is missing.
    // A `ClientSecret` where the field reads an `AccessToken`.
    let name = ClientSecret::new("app-token-secret");
    let device = String::from("web-1");
    let cx = RequestContext::new(&())
        .with_value("app_token", &name)
        .with_value("device", &device);
    let error = Register::from_context(&cx).err().expect("another type");
    let shown = error.to_string();
    assert!(
        shown.contains("`app_token`") && shown.contains("AccessToken"),
        "{shown}"
    );
    assert!(!shown.contains("app-token-secret"), "{shown}");
}

#[test]
fn values_of_the_fields_types_are_read_and_absent_ones_are_none() {
    let app = AccessToken::new("app");
    let device = String::from("web-1");
    let cx = RequestContext::new(&())
        .with_value("app_token", &app)
        .with_value("device", &device);
    let register = Register::from_context(&cx).unwrap();
    assert_eq!(register.device.as_deref(), Some("web-1"));
    let cx = RequestContext::new(&()).with_value("app_token", &app);
    assert_eq!(Register::from_context(&cx).unwrap().device, None);
    let missing = Register::from_context(&RequestContext::new(&()))
        .err()
        .unwrap();
    assert!(missing.to_string().contains("`app_token`"), "{missing}");
}

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Shop {
    pub shop_id: Option<String>,
}

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Seller {
    pub shop_id: Option<String>,
}

/// A request a provider written by hand fills from its sessions, which hold `Shop`.
#[token_endpoint(post = "/token", json, response = Tokens, error = Failure, extras = Shop)]
pub struct ShopRefresh {
    #[token(header, rename = "X-Shop", from = extras.shop_id)]
    pub shop_id: Option<String>,
}

#[test]
fn session_extras_of_another_type_are_an_error_naming_it() {
    use token_core::token_set::TokenSet;
    let mut shop: TokenSet<Shop> = TokenSet::new(AccessToken::new("at"));
    shop.extras.shop_id = Some("shop-7".into());
    let read = ShopRefresh::from_context(&RequestContext::for_refresh(&(), &shop)).unwrap();
    assert_eq!(read.shop_id.as_deref(), Some("shop-7"));
    // No extras in the context: the optional field is absent.
    let none = ShopRefresh::from_context(&RequestContext::new(&())).unwrap();
    assert_eq!(none.shop_id, None);
    // A session holding another type: the field cannot be read, and says so.
    let mut seller: TokenSet<Seller> = TokenSet::new(AccessToken::new("at"));
    seller.extras.shop_id = Some("shop-7".into());
    match ShopRefresh::from_context(&RequestContext::for_refresh(&(), &seller)) {
        Err(EndpointError::Encode(reason)) => {
            assert!(reason.contains("Shop"), "{reason}");
        }
        Err(other) => panic!("another error: {other}"),
        Ok(read) => panic!("read as {:?} instead of an error", read.shop_id),
    }
}
