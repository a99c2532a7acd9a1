//! Property tests of every provider's decoders (the same ones the fuzz targets in `fuzz/`
//! drive): arbitrary bytes, mutated seed answers and seed answers with one field replaced by
//! any JSON value never panic, and always give a token set or a typed, classified error.
//!
//! - Client side: `codec::decode_response` of each refresh endpoint, under any status. A token
//!   set comes only from a 2xx; a 5xx or 429 is `Transient` (or `OutcomeUnknown`, a status
//!   `U`), never a verdict on the token; a token value under a token key of the answer never
//!   appears in the error.
//! - Server side: `Endpoint::decode_request` of each refresh endpoint (the sandbox's and an
//!   Alipay+ MPP's request decoding) on arbitrary bodies, headers and paths.

mod subjects;

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::Value;
use time::macros::datetime;
use token_core::codec::{Endpoint, decode_response};
use token_core::{error::ErrorKind, secret::RefreshToken, token_set::TokenSet};

use token_test_support::rig::Subject;

const STATUSES: &[u16] = &[
    200, 201, 202, 204, 206, 301, 302, 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502, 503,
    504,
];

fn config() -> Config {
    Config {
        cases: 384,
        failure_persistence: None,
        ..Config::default()
    }
}

fn status() -> impl Strategy<Value = u16> {
    prop_oneof![
        3 => proptest::sample::select(STATUSES),
        1 => 100u16..600,
    ]
}

fn answer(status: u16, body: Vec<u8>, json: bool) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body);
    *response.status_mut() = http::StatusCode::from_u16(status).expect("100..600");
    if json {
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    response
}

/// Decodes and checks the properties every outcome must have. `secrets`: values that sit
/// under a token key of the answer and so must never be shown.
fn check<E: Endpoint>(
    response: &http::Response<Vec<u8>>,
    secrets: &[String],
) -> Result<(), TestCaseError> {
    let now = datetime!(2026-01-01 00:00 UTC);
    let status = response.status();
    match decode_response::<E>(response, now, &[]) {
        Ok(set) => {
            prop_assert!(status.is_success(), "a token set from HTTP {status}");
            let set: TokenSet<_> = set;
            let _ = set.access_token.expose_secret();
        }
        Err(error) => {
            let kind = error.kind();
            if status.is_server_error() || status.as_u16() == 429 {
                prop_assert!(
                    matches!(kind, ErrorKind::Transient | ErrorKind::OutcomeUnknown),
                    "HTTP {status} classified {kind}: {error}"
                );
            }
            let shown = format!("{error} {error:?}");
            // Positive control: the text searched is the error's own account of this failure.
            prop_assert!(
                shown.contains(kind.as_str()),
                "the error does not name its kind {kind}: {shown}"
            );
            for secret in secrets {
                prop_assert!(!shown.contains(secret.as_str()), "shown: {shown}");
            }
        }
    }
    Ok(())
}

/// The sample's string values under token-like keys.
fn token_values(value: &Value, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (key, value) in map {
                let key = key.to_ascii_lowercase().replace('_', "");
                match value {
                    Value::String(s) if key == "accesstoken" || key == "refreshtoken" => {
                        out.push(s.clone())
                    }
                    other => token_values(other, out),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|v| token_values(v, out)),
        _ => {}
    }
}

fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        ".{0,24}".prop_map(Value::String),
        Just(Value::String("2022-06-06T12:12:12+08:00".into())),
        Just(Value::String("3600".into())),
        Just(Value::String("-1".into())),
        Just(Value::from(i64::MAX)),
        Just(Value::from(-1)),
    ];
    leaf.prop_recursive(3, 16, 4, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::btree_map("[a-zA-Z_]{1,12}", inner, 0..4)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A byte-level mutation of a seed answer.
#[derive(Clone, Debug)]
enum Mutation {
    Flip(usize, u8),
    Insert(usize, u8),
    Delete(usize),
    Truncate(usize),
}

fn mutations() -> impl Strategy<Value = Vec<Mutation>> {
    let one = prop_oneof![
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Flip(i, b)),
        (any::<usize>(), any::<u8>()).prop_map(|(i, b)| Mutation::Insert(i, b)),
        any::<usize>().prop_map(Mutation::Delete),
        any::<usize>().prop_map(Mutation::Truncate),
    ];
    proptest::collection::vec(one, 1..6)
}

fn mutate(mut bytes: Vec<u8>, mutations: &[Mutation]) -> Vec<u8> {
    for mutation in mutations {
        let len = bytes.len().max(1);
        match *mutation {
            Mutation::Flip(i, b) if !bytes.is_empty() => bytes[i % len] ^= b | 1,
            Mutation::Insert(i, b) => bytes.insert(i % (bytes.len() + 1), b),
            Mutation::Delete(i) if !bytes.is_empty() => {
                bytes.remove(i % len);
            }
            Mutation::Truncate(i) => bytes.truncate(i % len),
            _ => {}
        }
    }
    bytes
}

/// Every key path of `value` (as JSON pointers), objects only.
fn pointers(value: &Value, prefix: String, out: &mut Vec<String>) {
    if let Value::Object(map) = value {
        for (key, child) in map {
            let pointer = format!("{prefix}/{key}");
            out.push(pointer.clone());
            pointers(child, pointer, out);
        }
    }
}

fn replace_at(sample: &Value, pointer: &str, with: Value) -> Value {
    let mut sample = sample.clone();
    if let Some(slot) = sample.pointer_mut(pointer) {
        *slot = with;
    }
    sample
}

/// A server-side request with any body, headers and path.
fn request() -> impl Strategy<Value = http::Request<Vec<u8>>> {
    let header = (
        proptest::sample::select(
            &[
                "authorization",
                "content-type",
                "partnerId",
                "grantType",
                "x-merchant-id",
                "request-reference-no",
                "client-id",
                "request-time",
                "signature",
            ][..],
        ),
        "[ -~]{0,48}",
    );
    (
        proptest::collection::vec(any::<u8>(), 0..384),
        proptest::collection::vec(header, 0..6),
        "(/[a-zA-Z0-9._~%-]{0,12}){0,4}(\\?[a-z=&%0-9]{0,16})?",
    )
        .prop_map(|(body, headers, path)| {
            let mut request = http::Request::new(body);
            *request.method_mut() = http::Method::POST;
            if let Ok(uri) = if path.is_empty() {
                "/".to_owned()
            } else {
                path
            }
            .parse()
            {
                *request.uri_mut() = uri;
            }
            for (name, value) in headers {
                if let (Ok(name), Ok(value)) = (
                    http::HeaderName::from_bytes(name.as_bytes()),
                    http::HeaderValue::from_str(&value),
                ) {
                    request.headers_mut().append(name, value);
                }
            }
            request
        })
}

/// A well-formed request of `E` (the encoded form) with its body mutated.
fn encoded_and_mutated<E: Endpoint>(
    endpoint: &E,
    mutations: &[Mutation],
) -> http::Request<Vec<u8>> {
    let base = url::Url::parse("https://provider.example/").expect("a URL");
    let request = endpoint.encode_request(&base).expect("encodes");
    let (parts, body) = request.into_parts();
    let mut request = http::Request::from_parts(parts, mutate(body, mutations));
    if let Some(path) = request.uri().path_and_query().cloned() {
        *request.uri_mut() = path.as_str().parse().expect("a path");
    }
    request
}

macro_rules! decoders {
    ($($module:ident: $endpoint:ty, $subject:expr, $client_request:expr;)*) => {$(
        mod $module {
            use super::*;

            fn sample() -> Value {
                $subject.success_sample()
            }

            fn sample_secrets() -> Vec<String> {
                let mut out = Vec::new();
                token_values(&sample(), &mut out);
                out
            }

            #[test]
            fn the_seed_answer_decodes() {
                let body = serde_json::to_vec(&sample()).expect("JSON");
                let set = decode_response::<$endpoint>(
                    &answer(200, body, true),
                    datetime!(2022-06-06 00:00 UTC),
                    &[],
                );
                assert!(set.is_ok(), "{set:?}");
            }

            /// The leak property's positive control: the seed answer's tokens under an HTTP
            /// 503 give an error that names the status, and not the tokens.
            #[test]
            fn a_503_with_the_seed_answer_names_the_status_and_no_token() {
                let secrets: Vec<String> =
                    sample_secrets().into_iter().filter(|s| s.len() >= 8).collect();
                assert!(secrets.len() >= 2, "the sample's tokens: {secrets:?}");
                let body = serde_json::to_vec(&sample()).expect("JSON");
                let error = decode_response::<$endpoint>(
                    &answer(503, body, true),
                    datetime!(2022-06-06 00:00 UTC),
                    &[],
                )
                .expect_err("a 503 is no token set");
                let shown = format!("{error} {error:?}");
                assert_eq!(error.kind(), ErrorKind::Transient, "{shown}");
                assert!(shown.contains("503"), "{shown}");
                for secret in &secrets {
                    assert!(!shown.contains(secret.as_str()), "{secret} in: {shown}");
                }
            }

            proptest! {
                #![proptest_config(config())]

                #[test]
                fn arbitrary_answers_give_a_set_or_a_typed_error(
                    status in status(),
                    body in proptest::collection::vec(any::<u8>(), 0..512),
                    json in any::<bool>(),
                ) {
                    check::<$endpoint>(&answer(status, body, json), &[])?;
                }

                #[test]
                fn mutated_seed_answers_give_a_set_or_a_typed_error(
                    status in status(),
                    mutations in mutations(),
                ) {
                    let body = serde_json::to_vec(&sample()).expect("JSON");
                    check::<$endpoint>(&answer(status, mutate(body, &mutations), true), &[])?;
                }

                #[test]
                fn seed_answers_with_any_field_value_never_show_a_token(
                    status in status(),
                    pick in any::<usize>(),
                    value in json_value(),
                ) {
                    let sample = sample();
                    let mut paths = Vec::new();
                    pointers(&sample, String::new(), &mut paths);
                    let pointer = &paths[pick % paths.len()];
                    let replaced = replace_at(&sample, pointer, value);
                    // Only the token values still under their keys must stay hidden.
                    let mut secrets = Vec::new();
                    token_values(&replaced, &mut secrets);
                    secrets.retain(|s| s.len() >= 8 && sample_secrets().contains(s));
                    let body = serde_json::to_vec(&replaced).expect("JSON");
                    check::<$endpoint>(&answer(status, body, true), &secrets)?;
                }

                #[test]
                fn arbitrary_requests_decode_or_give_a_request_error(request in request()) {
                    let _ = <$endpoint as Endpoint>::decode_request(&request);
                }

                #[test]
                fn mutated_client_requests_decode_or_give_a_request_error(mutations in mutations()) {
                    let request = encoded_and_mutated(&$client_request, &mutations);
                    let _ = <$endpoint as Endpoint>::decode_request(&request);
                }
            }
        }
    )*};
}

fn refresh_token() -> RefreshToken {
    RefreshToken::new("rt_dGhpcyBpcyBhIHJlZnJlc2hUb2tlbi4uLg")
}

decoders! {
    core_oauth: token_core::oauth::RefreshTokenGrant, subjects::CoreOAuth,
        token_core::oauth::RefreshTokenGrant::new(refresh_token());
    oauth2: token_core::oauth::RefreshTokenGrant, subjects::OAuth2,
        token_core::oauth::RefreshTokenGrant {
            refresh_token: refresh_token(),
            scope: Some("payments".into()),
            client: token_core::oauth::ClientAuthentication {
                basic_user: Some("app-1".into()),
                basic_password: Some("s3cret".into()),
                ..Default::default()
            },
        };
    maya: token_provider_maya::MiniAppRefresh, subjects::Maya, maya_request();
    alipayplus: token_provider_alipayplus::ApplyToken, subjects::AlipayPlus, alipay_request();
    paymentsgate: token_provider_paymentsgate::RefreshServiceToken, subjects::Paymentsgate,
        token_provider_paymentsgate::RefreshServiceToken {
            access_token: Some(token_core::secret::AccessToken::new("eyJhbGciOiJub25lIn0.e30.")),
            refresh_token: refresh_token(),
        };
    vaultist: token_provider_vaultist::RefreshV3, subjects::Vaultist, vaultist_request();
    wechat: token_provider_wechat::SnsRefreshToken, subjects::WeChat, wechat_request();
    lazada: token_provider_lazada::RefreshAccessToken, subjects::Lazada, lazada_request();
}

fn maya_request() -> token_provider_maya::MiniAppRefresh {
    let config = token_provider_maya::MayaConfig::new(
        "partner-1",
        token_core::secret::ClientSecret::new("s3cret"),
        "https://connect.example/".parse().expect("a URL"),
    );
    let set: TokenSet = TokenSet::new(token_core::secret::AccessToken::new("at"))
        .with_refresh_token(refresh_token());
    let app = token_core::secret::AccessToken::new("app-token");
    let cx =
        token_core::codec::RequestContext::for_refresh(&config, &set).with_value("app_token", &app);
    <token_provider_maya::MiniAppRefresh as token_core::codec::FromContext<_>>::from_context(&cx)
        .expect("builds")
}

fn alipay_request() -> token_provider_alipayplus::ApplyToken {
    let config = token_provider_alipayplus::sandbox::AlipayPlusSandbox::new();
    let _ = &config;
    let set: TokenSet = TokenSet::new(token_core::secret::AccessToken::new("at"))
        .with_refresh_token(refresh_token());
    let config = token_provider_alipayplus::AlipayPlusConfig::new(
        token_provider_alipayplus::sandbox::CLIENT_ID,
        token_provider_alipayplus::sandbox::PSP_ID,
        token_provider_alipayplus::sandbox::client_private_key(),
        token_provider_alipayplus::sandbox::mpp_public_key(),
    );
    let cx = token_core::codec::RequestContext::for_refresh(&config, &set);
    <token_provider_alipayplus::ApplyToken as token_core::codec::FromContext<_>>::from_context(&cx)
        .expect("builds")
}

fn vaultist_request() -> token_provider_vaultist::RefreshV3 {
    let config = token_provider_vaultist::VaultistConfig::new(1001);
    let set: TokenSet = TokenSet::new(token_core::secret::AccessToken::new("at"))
        .with_refresh_token(refresh_token());
    let cx = token_core::codec::RequestContext::for_refresh(&config, &set);
    <token_provider_vaultist::RefreshV3 as token_core::codec::FromContext<_>>::from_context(&cx)
        .expect("builds")
}

fn wechat_request() -> token_provider_wechat::SnsRefreshToken {
    let config = token_provider_wechat::WeChatConfig::new("wx-app-1");
    let set: TokenSet = TokenSet::new(token_core::secret::AccessToken::new("at"))
        .with_refresh_token(refresh_token());
    let cx = token_core::codec::RequestContext::for_refresh(&config, &set);
    <token_provider_wechat::SnsRefreshToken as token_core::codec::FromContext<_>>::from_context(&cx)
        .expect("builds")
}

fn lazada_request() -> token_provider_lazada::RefreshAccessToken {
    let config = token_provider_lazada::LazadaConfig::new("123456", "helloworld");
    let set: TokenSet = TokenSet::new(token_core::secret::AccessToken::new("at"))
        .with_refresh_token(refresh_token());
    // The signed timestamp: the request's decoding checks it against no clock.
    let cx = token_core::codec::RequestContext::for_refresh(&config, &set)
        .with_now(datetime!(2026-01-01 00:00 UTC));
    <token_provider_lazada::RefreshAccessToken as token_core::codec::FromContext<_>>::from_context(
        &cx,
    )
    .expect("builds")
}
