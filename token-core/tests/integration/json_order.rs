//! A JSON request body keeps its members in declaration order, its constants first (serde_json's
//! map alone would sort them), and the server side reads it back whatever the order.

use token_core::codec::Endpoint;
use token_core::{secret::AccessToken, secret::RefreshToken, token_endpoint};

#[token_endpoint(response)]
pub struct Tokens {
    #[token(access_token)]
    pub access_token: AccessToken,
}

#[token_endpoint(error)]
pub struct Failure {
    #[token(code)]
    pub error: String,
}

#[token_endpoint(post = "/token", json, rename_all = "camelCase", response = Tokens,
                 error = Failure, body(name = "grantType", value = "refresh_token"))]
pub struct Refresh {
    pub zone: String,
    pub refresh_token: RefreshToken,
    pub app_id: Option<String>,
}

#[test]
fn members_are_written_in_declaration_order_and_read_back() {
    let refresh = Refresh {
        zone: "eu".into(),
        refresh_token: RefreshToken::new("rt"),
        app_id: Some("app".into()),
    };
    let request = refresh
        .encode_request(&"https://id.example".parse().unwrap())
        .unwrap();
    let body = std::str::from_utf8(request.body()).unwrap();
    let at = |member: &str| {
        body.find(&format!("\"{member}\""))
            .unwrap_or_else(|| panic!("{member} in {body}"))
    };
    assert!(
        at("zone") < at("refreshToken") && at("refreshToken") < at("appId"),
        "{body}"
    );
    // The constants come first, as the docs say (SNAP BI's sample starts with `grantType`).
    assert!(
        body.starts_with(r#"{"grantType":"refresh_token","zone""#),
        "{body}"
    );
    let back = Refresh::decode_request(&request).unwrap();
    assert_eq!(back.zone, "eu");
    assert_eq!(back.app_id.as_deref(), Some("app"));
}

#[token_endpoint(post = "/quote", json, response = Tokens, error = Failure)]
#[derive(Debug)]
pub struct Quote {
    pub ratio: f64,
    pub limit: Option<f64>,
    pub refresh_token: RefreshToken,
}

/// A JSON body field written as `null` reads back as absent: a float that is not finite,
/// which JSON cannot write (`serde_json` writes `null` for it), is an encoding error naming
/// the field, not a request the server side reads as missing that field (or, for an
/// `Option`, as `None`).
#[test]
fn a_body_field_written_as_null_is_an_encoding_error() {
    let base: url::Url = "https://id.example".parse().unwrap();
    for (ratio, limit) in [(f64::NAN, None), (1.5, Some(f64::INFINITY))] {
        let quote = Quote {
            ratio,
            limit,
            refresh_token: RefreshToken::new("rt"),
        };
        let error = quote.encode_request(&base).err();
        assert!(
            matches!(&error, Some(token_core::error::EndpointError::Encode(why))
                if why.contains("ratio") || why.contains("limit")),
            "{error:?}"
        );
    }
    // Finite values travel and read back.
    let quote = Quote {
        ratio: 0.25,
        limit: Some(-1e300),
        refresh_token: RefreshToken::new("rt"),
    };
    let read = Quote::decode_request(&quote.encode_request(&base).unwrap()).unwrap();
    assert_eq!((read.ratio, read.limit), (0.25, Some(-1e300)));
}
