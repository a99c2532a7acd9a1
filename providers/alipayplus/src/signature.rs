//! Alipay+ RSA256 message signatures, both directions, as a token-core [`Signer`].
//!
//! The content signed is `<METHOD> <Request-URI>\n<Client-Id>.<Time>.<Body>`, where `<Time>` is
//! the `Request-Time` header of a request and the `Response-Time` header of a response; the
//! signature is SHA256withRSA (PKCS#1 v1.5) with a PKCS#8 key, Base64, then URL-encoded, sent as
//! `Signature: algorithm=RSA256, keyVersion=<n>, signature=<value>`.
//!
//! The RSA work is done by [`aws-lc-rs`](https://docs.rs/aws-lc-rs) (constant-time; the same
//! library rustls uses); keys are given as PEM, DER, or the bare Base64 of the DER that
//! Alipay+'s portal shows, so no key type of another crate is part of this API.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use http::HeaderValue;
use percent_encoding::{NON_ALPHANUMERIC, percent_decode_str, utf8_percent_encode};
use std::sync::Arc;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaKeyPair,
};
use time::OffsetDateTime;
use time::format_description::BorrowedFormatItem;
use time::macros::format_description;
use token_core::codec::ErrorResponse as _;
use token_core::{error::EndpointError, provider::Signer};

use crate::endpoints::AlipayError;

/// `Client-Id`.
pub const CLIENT_ID: &str = "Client-Id";
/// `Request-Time`.
pub const REQUEST_TIME: &str = "Request-Time";
/// `Response-Time`.
pub const RESPONSE_TIME: &str = "Response-Time";
/// `Signature`.
pub const SIGNATURE: &str = "Signature";
/// How far an answer's `Response-Time` may be from its request's `Request-Time` (either
/// way): the window the MPP allows a request's time from its clock.
pub const ANSWER_TIME_WINDOW: std::time::Duration = std::time::Duration::from_secs(300);
/// The content type Alipay+ sends and expects.
pub const CONTENT_TYPE: &str = "application/json; charset=UTF-8";

/// ISO 8601 with a numeric offset, as in Alipay+'s samples (`2022-06-06T12:12:12+08:00`).
const TIME_FORMAT: &[BorrowedFormatItem<'static>] = format_description!(
    "[year]-[month]-[day]T[hour]:[minute]:[second][offset_hour sign:mandatory]:[offset_minute]"
);

/// A key that could not be read. It names the key and why, never a byte of it.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct KeyError {
    what: &'static str,
    reason: String,
}

impl KeyError {
    fn private(reason: impl Into<String>) -> Self {
        Self {
            what: "the RSA private key (PKCS#8) could not be read",
            reason: reason.into(),
        }
    }

    fn public(reason: impl Into<String>) -> Self {
        Self {
            what: "the peer's RSA public key (SubjectPublicKeyInfo) could not be read",
            reason: reason.into(),
        }
    }
}

/// Signs outgoing messages with one party's private key and verifies incoming ones with the
/// other party's public key.
///
/// As a client's [`Signer`] it signs requests and verifies responses; an MPP uses the same
/// type the other way round ([`sign_response`](Self::sign_response),
/// [`verify_request`](Self::verify_request)).
///
/// ```
/// # #[cfg(feature = "sandbox")] {
/// use token_provider_alipayplus::signature::Rsa256Signer;
/// # let (key, peer) = (token_provider_alipayplus::sandbox::client_private_key(), token_provider_alipayplus::sandbox::mpp_public_key());
/// let signer = Rsa256Signer::from_pem("2022010123456789", 1, key, peer)?;
/// let mut request = http::Request::new(br#"{"pspId":"p"}"#.to_vec());
/// *request.method_mut() = http::Method::POST;
/// *request.uri_mut() = "https://open-sea-global.alipayplus.com/aps/api/v1/authorizations/applyToken".parse()?;
/// let content = signer.sign_request(&mut request, time::macros::datetime!(2022-06-06 12:12:12 +08:00))?;
/// assert_eq!(content, b"POST /aps/api/v1/authorizations/applyToken\n2022010123456789.2022-06-06T12:12:12+08:00.{\"pspId\":\"p\"}");
/// assert!(request.headers()["Signature"].to_str()?.starts_with("algorithm=RSA256, keyVersion=1, signature="));
/// # }
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct Rsa256Signer {
    client_id: String,
    key_version: u32,
    own: Arc<RsaKeyPair>,
    peer: Arc<ParsedPublicKey>,
}

impl std::fmt::Debug for Rsa256Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Rsa256Signer")
            .field("client_id", &self.client_id)
            .field("key_version", &self.key_version)
            .finish_non_exhaustive()
    }
}

impl Rsa256Signer {
    /// A signer for `client_id` with its own PKCS#8 private key and the peer's public key
    /// (SubjectPublicKeyInfo). Each is PEM (`-----BEGIN PRIVATE KEY-----`, `-----BEGIN PUBLIC
    /// KEY-----`), or the bare Base64 of the DER as Alipay+'s portal shows keys. PKCS#1 keys
    /// (`-----BEGIN RSA PRIVATE KEY-----`, `-----BEGIN RSA PUBLIC KEY-----`) are read too.
    /// Keys from 2048 to 8192 bits are accepted.
    pub fn from_pem(
        client_id: impl Into<String>,
        key_version: u32,
        private_key: &str,
        peer_public_key: &str,
    ) -> Result<Self, KeyError> {
        let own =
            der_of(private_key, "PRIVATE KEY", "RSA PRIVATE KEY").map_err(KeyError::private)?;
        let peer =
            der_of(peer_public_key, "PUBLIC KEY", "RSA PUBLIC KEY").map_err(KeyError::public)?;
        Self::from_der(client_id, key_version, &own, &peer)
    }

    /// A signer from DER: its own private key (PKCS#8, or PKCS#1 `RSAPrivateKey`) and the
    /// peer's public key (SubjectPublicKeyInfo, or PKCS#1 `RSAPublicKey`).
    pub fn from_der(
        client_id: impl Into<String>,
        key_version: u32,
        private_key: &[u8],
        peer_public_key: &[u8],
    ) -> Result<Self, KeyError> {
        let own = RsaKeyPair::from_pkcs8(private_key)
            .or_else(|pkcs8| RsaKeyPair::from_der(private_key).map_err(|_| pkcs8))
            .map_err(|e| KeyError::private(e.to_string()))?;
        let peer = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, peer_public_key)
            .map_err(|e| KeyError::public(e.to_string()))?;
        // Parsing does not look at the size, which verification refuses outside 2048 to 8192
        // bits: every answer would then be unreadable, after its refresh token was spent.
        let sized = aws_lc_rs::rsa::PublicKey::from_der(peer_public_key)
            .map_err(|e| e.to_string())
            .and_then(|key| key.as_der().map_err(|e| e.to_string()))
            .and_then(|spki| {
                aws_lc_rs::rsa::PublicEncryptingKey::from_der(spki.as_ref())
                    .map_err(|e| e.to_string())
            });
        sized.map_err(KeyError::public)?;
        Ok(Self {
            client_id: client_id.into(),
            key_version,
            own: Arc::new(own),
            peer: Arc::new(peer),
        })
    }

    /// The `Client-Id` this signer sends and expects.
    pub fn client_id(&self) -> &str {
        &self.client_id
    }

    /// Signs `request`: sets `Client-Id`, `Request-Time`, `Signature` and the content type.
    /// Returns the content that was signed.
    pub fn sign_request(
        &self,
        request: &mut http::Request<Vec<u8>>,
        now: OffsetDateTime,
    ) -> Result<Vec<u8>, EndpointError> {
        let (content, stamp) = self.signed(
            REQUEST_TIME,
            request.method(),
            request.uri(),
            request.body(),
            now,
        )?;
        for (name, value) in stamp {
            request.headers_mut().insert(name, value);
        }
        Ok(content)
    }

    /// Signs `response` to `request`: sets `Client-Id`, `Response-Time`, `Signature` and the
    /// content type.
    pub fn sign_response<B>(
        &self,
        request: &http::Request<B>,
        response: &mut http::Response<Vec<u8>>,
        now: OffsetDateTime,
    ) -> Result<(), EndpointError> {
        let (_, stamp) = self.signed(
            RESPONSE_TIME,
            request.method(),
            request.uri(),
            response.body(),
            now,
        )?;
        for (name, value) in stamp {
            response.headers_mut().insert(name, value);
        }
        Ok(())
    }

    /// Checks a request's signature with the peer's key, and that it names this `Client-Id`.
    pub fn verify_request(&self, request: &http::Request<Vec<u8>>) -> Result<(), EndpointError> {
        self.verify_message(
            request.method(),
            request.uri(),
            request.headers(),
            REQUEST_TIME,
            request.body(),
        )
    }

    /// Checks the signature of `response` to `request` with the peer's key, and that it was
    /// signed within [`ANSWER_TIME_WINDOW`] of the request's `Request-Time`: the signature
    /// covers neither the request's body nor its time, so an answer recorded long ago (and
    /// replayed by whoever sits between, a TLS-terminating proxy) would otherwise read as
    /// today's, for any session of this client.
    pub fn verify_response(
        &self,
        request: &http::Request<Vec<u8>>,
        response: &http::Response<Vec<u8>>,
    ) -> Result<(), EndpointError> {
        self.verify_message(
            request.method(),
            request.uri(),
            response.headers(),
            RESPONSE_TIME,
            response.body(),
        )?;
        let time = |headers: &http::HeaderMap, name: &str| {
            (headers.get(name).and_then(|value| value.to_str().ok())).and_then(parse_time)
        };
        let Some(asked) = time(request.headers(), REQUEST_TIME) else {
            // Not signed here: nothing to compare with.
            return Ok(());
        };
        let answered = time(response.headers(), RESPONSE_TIME).ok_or_else(|| {
            EndpointError::Signature("`Response-Time` is not an ISO 8601 time".into())
        })?;
        let window = time::Duration::try_from(ANSWER_TIME_WINDOW).unwrap_or(time::Duration::MAX);
        if (answered - asked).abs() > window {
            return Err(EndpointError::Signature(format!(
                "the answer was signed more than {} s from the request",
                ANSWER_TIME_WINDOW.as_secs()
            )));
        }
        Ok(())
    }

    /// The content a message signs and the headers that carry its signature (`Client-Id`, the
    /// time under `time_header`, `Signature`, the content type): one rule for requests and
    /// responses.
    fn signed(
        &self,
        time_header: &'static str,
        method: &http::Method,
        uri: &http::Uri,
        body: &[u8],
        now: OffsetDateTime,
    ) -> Result<(Vec<u8>, SignatureHeaders), EndpointError> {
        let time = format_time(now)?;
        let content = content(method, uri, &self.client_id, &time, body);
        let stamp = [
            (CLIENT_ID, header(&self.client_id)?),
            (time_header, header(&time)?),
            (SIGNATURE, self.signature_header(&content)?),
            ("content-type", HeaderValue::from_static(CONTENT_TYPE)),
        ];
        Ok((content, stamp))
    }

    fn signature_header(&self, content: &[u8]) -> Result<HeaderValue, EndpointError> {
        let mut signature = vec![0; self.own.public_modulus_len()];
        self.own
            .sign(
                &RSA_PKCS1_SHA256,
                &SystemRandom::new(),
                content,
                &mut signature,
            )
            .map_err(|_| EndpointError::Encode("the RSA256 signature could not be made".into()))?;
        let encoded = STANDARD.encode(signature);
        header(&format!(
            "algorithm=RSA256, keyVersion={}, signature={}",
            self.key_version,
            utf8_percent_encode(&encoded, NON_ALPHANUMERIC)
        ))
    }

    fn verify_message(
        &self,
        method: &http::Method,
        uri: &http::Uri,
        headers: &http::HeaderMap,
        time_header: &str,
        body: &[u8],
    ) -> Result<(), EndpointError> {
        // A header sent twice is refused, whichever copy is valid: a proxy in front (or the
        // peer's own stack) may have read the other one.
        let text = |name: &str| {
            let mut values = headers.get_all(name).iter();
            let value = values
                .next()
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| EndpointError::Signature(format!("missing `{name}` header")))?;
            match values.next() {
                Some(_) => Err(EndpointError::Signature(format!(
                    "the `{name}` header is repeated"
                ))),
                None => Ok(value),
            }
        };
        let client_id = text(CLIENT_ID)?;
        if client_id != self.client_id {
            // The value received is the peer's text: not quoted in an error.
            return Err(EndpointError::Signature(format!(
                "`Client-Id` is not the expected `{}`",
                self.client_id
            )));
        }
        let time = text(time_header)?;
        let signature = signature_of(text(SIGNATURE)?)?;
        let content = content(method, uri, client_id, time, body);
        self.peer
            .verify_sig(&content, &signature)
            .map_err(|_| EndpointError::Signature("the RSA256 signature does not match".into()))
    }
}

impl Signer for Rsa256Signer {
    fn sign(
        &self,
        request: &mut http::Request<Vec<u8>>,
        now: OffsetDateTime,
    ) -> Result<(), EndpointError> {
        self.sign_request(request, now).map(drop)
    }

    /// Verifies every 2xx answer (Alipay+ answers results, `F` and `U` included, with 200 and
    /// signs them): one signed wrongly is refused as a misconfiguration (the keys), and one
    /// with no `Signature` at all, an intermediary's (a captive portal's page), as an
    /// unreadable 2xx, an unknown outcome (it may stand in for an answer sent after the
    /// rotation). A non-2xx answer is a gateway's or server's failure that carries no
    /// signature; it is left to the codec, which classifies it by status. Except that one
    /// whose body reads as an Alipay+ result must be signed like any result: unsigned, its
    /// result is nobody's word (a forged `INVALID_REFRESH_TOKEN` would end the session), and
    /// the answer is refused as unreadable, classified by its status alone.
    fn verify(
        &self,
        request: &http::Request<Vec<u8>>,
        response: &http::Response<Vec<u8>>,
    ) -> Result<(), EndpointError> {
        let status = response.status();
        if status.is_success() {
            if !response.headers().contains_key(SIGNATURE) {
                return Err(unread(status, "an unsigned 2xx answer"));
            }
            return self.verify_response(request, response);
        }
        let carries_result = AlipayError::decode_error(status, response.body()).is_some();
        if carries_result && self.verify_response(request, response).is_err() {
            return Err(unread(
                status,
                "an unsigned answer carries an Alipay+ result",
            ));
        }
        Ok(())
    }
}

/// An answer refused unread, `what` it is: classified by its status alone (a 2xx is an
/// unknown outcome).
fn unread(status: http::StatusCode, what: &str) -> EndpointError {
    EndpointError::parse(status, format!("{what}; it is not read"), &[], &[])
}

/// `Client-Id`, the time, `Signature` and the content type of one signed message.
type SignatureHeaders = [(&'static str, HeaderValue); 4];

/// `<METHOD> <Request-URI>\n<Client-Id>.<Time>.<Body>`.
pub fn content(
    method: &http::Method,
    uri: &http::Uri,
    client_id: &str,
    time: &str,
    body: &[u8],
) -> Vec<u8> {
    let path = uri.path_and_query().map_or("/", |p| p.as_str());
    let mut content = format!("{method} {path}\n{client_id}.{time}.").into_bytes();
    content.extend_from_slice(body);
    content
}

/// Reads the signature out of `algorithm=RSA256, keyVersion=N, signature=<url-encoded base64>`.
/// Parameter names are matched without regard to case, with whitespace around them and
/// around `=` (RFC 9110 section 11.2, auth-params), and `RSA256` in any case. A parameter
/// named twice is refused, whichever copy is valid (like a header sent twice: another reader
/// may take the other copy).
fn signature_of(header: &str) -> Result<Vec<u8>, EndpointError> {
    let mut algorithm = None;
    let mut value = None;
    for part in header.split(',') {
        let Some((name, v)) = part.split_once('=') else {
            continue;
        };
        let (slot, name) = match name.trim() {
            name if name.eq_ignore_ascii_case("algorithm") => (&mut algorithm, "algorithm"),
            name if name.eq_ignore_ascii_case("signature") => (&mut value, "signature"),
            _ => continue,
        };
        if slot.replace(v.trim()).is_some() {
            return Err(EndpointError::Signature(format!(
                "`Signature` names `{name}` twice"
            )));
        }
    }
    if !algorithm.is_some_and(|a| a.eq_ignore_ascii_case("RSA256")) {
        return Err(EndpointError::Signature(
            "`Signature` is not `algorithm=RSA256`".into(),
        ));
    }
    let value =
        value.ok_or_else(|| EndpointError::Signature("`Signature` has no `signature=`".into()))?;
    let base64 = percent_decode_str(value)
        .decode_utf8()
        .map_err(|_| EndpointError::Signature("the signature is not URL-encoded text".into()))?;
    STANDARD
        .decode(base64.as_bytes())
        .map_err(|_| EndpointError::Signature("the signature is not Base64".into()))
}

/// Reads a `Request-Time` or `Response-Time` in the ISO 8601 forms Alipay+ writes (an
/// offset required).
pub(crate) fn parse_time(text: &str) -> Option<OffsetDateTime> {
    use time::format_description::well_known::{Iso8601, Rfc3339};
    let text = text.trim();
    OffsetDateTime::parse(text, &Rfc3339)
        .or_else(|_| OffsetDateTime::parse(text, &Iso8601::DEFAULT))
        .ok()
}

/// Formats `at` for `Request-Time` / `Response-Time`.
pub fn format_time(at: OffsetDateTime) -> Result<String, EndpointError> {
    at.format(TIME_FORMAT)
        .map_err(|e| EndpointError::Encode(format!("the time cannot be formatted: {e}")))
}

fn header(value: &str) -> Result<HeaderValue, EndpointError> {
    HeaderValue::try_from(value)
        .map_err(|_| EndpointError::Encode("a signature header is not a valid header".into()))
}

/// The DER inside `text`: a PEM block labelled `label` or `pkcs1_label`, or bare Base64 (the
/// whole text). The reasons never quote the text, which may be a private key.
fn der_of(text: &str, label: &str, pkcs1_label: &str) -> Result<Vec<u8>, String> {
    let body = match text.find("-----BEGIN ") {
        None => text,
        Some(start) => {
            let rest = &text[start + "-----BEGIN ".len()..];
            let (found, rest) = rest
                .split_once("-----")
                .ok_or("the PEM `-----BEGIN` line is not closed")?;
            if found != label && found != pkcs1_label {
                // A label is capitals and spaces; anything else is not quoted (it may be key
                // material from a text whose `-----BEGIN` line is broken).
                let plain =
                    found.len() <= 40 && found.bytes().all(|b| b.is_ascii_uppercase() || b == b' ');
                let found = if plain { found } else { "(malformed)" };
                return Err(format!(
                    "a PEM `{found}` block, expected `{label}` or `{pkcs1_label}`"
                ));
            }
            let end = format!("-----END {found}-----");
            let (body, _) = rest
                .split_once(&end)
                .ok_or_else(|| format!("the PEM block has no `{end}` line"))?;
            body
        }
    };
    let base64: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    if base64.is_empty() {
        return Err("the key is empty".into());
    }
    STANDARD
        .decode(base64)
        .map_err(|_| "neither PEM nor Base64".into())
}
