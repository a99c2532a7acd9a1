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

#[token_endpoint(post = "/refresh", json, response = Tokens, error = Failure)]
pub struct RefreshWithBearer {
    /// The session's current access token, when it has one.
    #[token(bearer)]
    pub access_token: Option<token_core::secret::AccessToken>,
    #[token(body, rename = "refreshToken")]
    pub refresh_token: token_core::secret::RefreshToken,
}

#[token_endpoint(post = "/refresh", form, response = Tokens, error = Failure)]
pub struct RefreshWithAccessToken {
    #[token(body)]
    pub access_token: token_core::secret::AccessToken,
    #[token(body)]
    pub refresh_token: token_core::secret::RefreshToken,
}

/// A session with no access token yet (`insert_refresh_token` stores the empty one, and one
/// that cannot be served is set aside as it) has none to send on refresh: an `Option` field
/// reading it is left out, not sent as an empty `Authorization: Bearer `, which the server
/// side refuses as no bearer token; a required one is an error saying the session has none.
#[test]
fn the_empty_access_token_of_a_session_is_no_access_token() {
    use token_core::codec::Endpoint;
    use token_core::secret::RefreshToken;
    use token_core::token_set::TokenSet;
    let session: TokenSet =
        TokenSet::new(AccessToken::new("")).with_refresh_token(RefreshToken::new("rt-1"));
    let cx = RequestContext::for_refresh(&(), &session);
    let refresh = RefreshWithBearer::from_context(&cx).unwrap();
    assert!(refresh.access_token.is_none());
    let request = refresh
        .encode_request(&"https://api.example".parse().unwrap())
        .unwrap();
    assert!(
        request.headers().get("authorization").is_none(),
        "{request:?}"
    );
    let read = RefreshWithBearer::decode_request(&request).expect("the server reads it");
    assert_eq!(read.refresh_token.expose_secret(), "rt-1");
    let refused = RefreshWithAccessToken::from_context(&cx).err();
    assert!(
        matches!(&refused, Some(EndpointError::Encode(why)) if why.contains("access token")),
        "{refused:?}"
    );
    // A session with one sends it.
    let session: TokenSet =
        TokenSet::new(AccessToken::new("at-1")).with_refresh_token(RefreshToken::new("rt-1"));
    let refresh =
        RefreshWithBearer::from_context(&RequestContext::for_refresh(&(), &session)).unwrap();
    assert_eq!(refresh.access_token.unwrap().expose_secret(), "at-1");
}
