//! What the fuzz targets drive: every provider's response, error and request decoders.
//!
//! Each function takes the fuzzer's bytes, picks an endpoint with the first byte and builds
//! an HTTP message from the rest. Decoders must never panic, and their outcomes must keep the
//! classification rules: a token set only from a 2xx, a 5xx or 429 never a verdict on the
//! token. A broken rule is a panic here, which the fuzzer reports as a crash.

use time::OffsetDateTime;
use token_core::error::ErrorKind;
use token_core::codec::{Endpoint, ErrorResponse, decode_response};

const NOW: i64 = 1_767_225_600; // 2026-01-01T00:00:00Z

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(NOW).unwrap_or(OffsetDateTime::UNIX_EPOCH)
}

/// Reads a status and a body: `[status hi, status lo, flags, body...]`.
fn response(data: &[u8]) -> http::Response<Vec<u8>> {
    let (head, body) = data.split_at(data.len().min(3));
    let raw = u16::from_be_bytes([
        head.first().copied().unwrap_or(0),
        head.get(1).copied().unwrap_or(200),
    ]);
    let status = 100 + raw % 500;
    let mut response = http::Response::new(body.to_vec());
    *response.status_mut() = http::StatusCode::from_u16(status).unwrap_or(http::StatusCode::OK);
    let flags = head.get(2).copied().unwrap_or(0);
    if flags & 1 == 1 {
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
    }
    if flags & 2 == 2 {
        response.headers_mut().insert(
            http::header::RETRY_AFTER,
            http::HeaderValue::from_static("Thu, 01 Jan 2026 00:00:30 GMT"),
        );
    }
    response
}

fn check_response<E: Endpoint>(data: &[u8]) {
    let response = response(data);
    let status = response.status();
    match decode_response::<E>(&response, now(), &["rt-known-secret"]) {
        Ok(set) => {
            assert!(status.is_success(), "a token set from HTTP {status}");
            let _ = format!("{set:?}");
        }
        Err(error) => {
            let kind = error.kind();
            if status.is_server_error() || status.as_u16() == 429 {
                assert!(
                    matches!(kind, ErrorKind::Transient | ErrorKind::OutcomeUnknown),
                    "HTTP {status} classified {kind}"
                );
            }
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("rt-known-secret"), "{shown}");
        }
    }
}

fn check_error<R: ErrorResponse>(data: &[u8]) {
    let response = response(data);
    let status = response.status();
    if let Some(error) = R::decode_error(status, response.body()) {
        let _ = (error.code(), error.message(), error.kind(status));
        // The server side writes what the client side reads.
        let (_, body) = error.encode_error();
        let _ = R::decode_error(status, &body);
    }
}

/// Reads headers and a body: `[count, (name index, length, value...)*, body...]`.
fn request<E: Endpoint>(data: &[u8]) -> http::Request<Vec<u8>> {
    const NAMES: &[&str] = &[
        "authorization",
        "content-type",
        "partnerId",
        "grantType",
        "x-merchant-id",
        "request-reference-no",
        "client-id",
        "request-time",
        "signature",
    ];
    let mut rest = data;
    let mut request = http::Request::new(Vec::new());
    *request.method_mut() = E::METHOD;
    *request.uri_mut() = http::Uri::from_static(E::PATH);
    let first = rest.first().copied().unwrap_or(0);
    let count = first % 5;
    rest = rest.get(1..).unwrap_or(&[]);
    for _ in 0..count {
        let (Some(&name), Some(&len)) = (rest.first(), rest.get(1)) else {
            break;
        };
        let len = usize::from(len % 64).min(rest.len().saturating_sub(2));
        let value = &rest[2..2 + len];
        rest = &rest[2 + len..];
        if let Ok(value) = http::HeaderValue::from_bytes(value) {
            let name = NAMES[usize::from(name) % NAMES.len()];
            if let Ok(name) = http::HeaderName::from_bytes(name.as_bytes()) {
                request.headers_mut().append(name, value);
            }
        }
    }
    // The readers refuse a body whose `Content-Type` is not the endpoint's format: without
    // one drawn above, declare one (the high bit picks which), so that the body's decoding
    // is reached as often as before.
    if !request.headers().contains_key(http::header::CONTENT_TYPE) {
        let declared = if first & 0x80 == 0 {
            "application/json"
        } else {
            "application/x-www-form-urlencoded"
        };
        request.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static(declared),
        );
    }
    *request.body_mut() = rest.to_vec();
    request
}

fn check_request<E: Endpoint>(data: &[u8]) {
    let request = request::<E>(data);
    if let Ok(decoded) = E::decode_request(&request) {
        // What the server read, the client side can write again.
        let base = url::Url::parse("https://provider.example/").expect("a URL");
        let _ = decoded.encode_request(&base);
    }
}

macro_rules! endpoints {
    ($($endpoint:ty),* $(,)?) => {
        /// Every provider's endpoints, in one table for the selectors below.
        const ENDPOINTS: usize = [$(stringify!($endpoint)),*].len();

        fn dispatch(selector: u8, data: &[u8], what: Check) {
            let mut index = 0;
            let chosen = usize::from(selector) % ENDPOINTS;
            $(
                if index == chosen {
                    match what {
                        Check::Response => check_response::<$endpoint>(data),
                        Check::Error => {
                            check_error::<<$endpoint as Endpoint>::Error>(data)
                        }
                        Check::Request => check_request::<$endpoint>(data),
                    }
                }
                index += 1;
            )*
            let _ = index;
        }
    };
}

#[derive(Clone, Copy)]
enum Check {
    Response,
    Error,
    Request,
}

endpoints![
    token_core::oauth::RefreshTokenGrant,
    token_core::oauth::ClientCredentialsGrant,
    token_core::oauth::AuthorizationCodeGrant,
    token_provider_maya::MiniAppRefresh,
    token_provider_alipayplus::ApplyToken,
    token_provider_alipayplus::ApplyTokenByCode,
    token_provider_paymentsgate::RefreshServiceToken,
    token_provider_paymentsgate::IssueServiceToken,
    token_provider_vaultist::RefreshV3,
    token_provider_vaultist::RefreshV2,
    token_provider_wechat::SnsRefreshToken,
    token_provider_lazada::RefreshAccessToken,
];

/// Client side: `codec::decode_response` of a refresh or issue endpoint.
pub fn decode_responses(data: &[u8]) {
    if let Some((&selector, rest)) = data.split_first() {
        dispatch(selector, rest, Check::Response);
    }
}

/// Client side: the error decoders alone (`ErrorResponse::decode_error`), then the server
/// side writing the error again.
pub fn decode_errors(data: &[u8]) {
    if let Some((&selector, rest)) = data.split_first() {
        dispatch(selector, rest, Check::Error);
    }
}

/// Server side: `Endpoint::decode_request` (the sandboxes', and an Alipay+ MPP's applyToken).
pub fn decode_requests(data: &[u8]) {
    if let Some((&selector, rest)) = data.split_first() {
        dispatch(selector, rest, Check::Request);
    }
}

/// Polls a future that never waits on anything outside (the in-memory issuer): the fuzz
/// targets have no runtime.
fn ready<F: std::future::Future>(future: F) -> F::Output {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    let mut future = std::pin::pin!(future);
    for _ in 0..64 {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("an in-memory future did not complete");
}

/// The MPP side of Alipay+ applyToken, whole: `Mpp::answer` verifies the request's signature
/// (parsing the `Signature` header) and decodes and processes the grant.
///
/// The first byte chooses: odd, the request goes as the fuzzer made it (its own `Signature`,
/// `Client-Id`, `Request-Time` headers: the signature parser); even, the request is signed
/// with the sandbox client's key first, so its body reaches the grant decoding and the issuer
/// (`@RT@` in the body is replaced by a live refresh token, `@PSP@` by the sandbox PSP id).
/// Every answer must be signed so that the client verifies it.
pub fn mpp_answer(data: &[u8]) {
    use token_provider_alipayplus::sandbox::{
        AlipayPlusSandbox, CLIENT_ID, client_private_key, mpp_public_key, PSP_ID,
    };
    use token_provider_alipayplus::{ApplyToken, Rsa256Signer};
    // Keys are parsed once: RSA key checks would otherwise dominate every run.
    static CLIENT: std::sync::LazyLock<Rsa256Signer> = std::sync::LazyLock::new(|| {
        Rsa256Signer::from_pem(CLIENT_ID, 1, client_private_key(), mpp_public_key())
            .expect("the sandbox keys")
    });
    static MPP: std::sync::LazyLock<AlipayPlusSandbox> =
        std::sync::LazyLock::new(AlipayPlusSandbox::new);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let clock = std::sync::Arc::new(token_core::clock::ManualClock::new(now()));
    let issuer = token_core::issuer::Issuer::in_memory(clock, token_core::issuer::IssuerConfig::default());
    let live = ready(issuer.issue("user-1", serde_json::json!({}))).expect("issues");
    let live_refresh = live
        .tokens
        .refresh_token
        .as_ref()
        .map(|t| t.expose_secret().to_owned())
        .unwrap_or_default();
    let mut request = request::<ApplyToken>(rest);
    let client = &*CLIENT;
    if mode % 2 == 0 {
        let body = String::from_utf8_lossy(request.body())
            .replace("@RT@", &live_refresh)
            .replace("@PSP@", PSP_ID);
        *request.body_mut() = body.into_bytes();
        client.sign_request(&mut request, now()).expect("signs");
    }
    let answer = ready(MPP.mpp().answer(&issuer, &request));
    assert!(
        client.verify_response(&request, &answer).is_ok(),
        "an unsigned MPP answer: HTTP {}",
        answer.status()
    );
    let _ = decode_response::<ApplyToken>(&answer, now(), &[]);
}
