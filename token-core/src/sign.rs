//! Declared request signatures: what `sign(...)` on a `#[token_endpoint]` request declares,
//! and the one implementation that signs (client) and verifies (server) it.
//!
//! A signature covers chosen [`Part`]s of the request (method, path, timestamp, the sorted
//! query and body parameters as key+value or as `key=value&...`, the body, one named
//! parameter's value), joined by a separator, signed with
//! HMAC-SHA256 (hex lower, hex upper or Base64) or RSA-SHA256 (PKCS#1 v1.5, Base64; feature
//! `rsa`), and placed in a query parameter, a body field or a header ([`Slot`]). Both
//! directions read the encoded `http::Request`, so the server verifies exactly the bytes it
//! received. The key and the signature never appear in an error, a log or `Debug`.
//!
//! Lazada's scheme: the API path followed by every parameter, sorted, as key+value; an
//! upper-hex HMAC-SHA256 with the app secret, in the `sign` query parameter.
//!
//! ```
//! use token_core::secret::ClientSecret;
//! use token_core::sign::{Algorithm, Encoding, Part, RequestSignature, Slot};
//!
//! const LAZADA: RequestSignature = RequestSignature::new(
//!     Algorithm::HmacSha256,
//!     "/auth/token/refresh",
//!     &[Part::Path, Part::SortedParams],
//!     Encoding::HexUpper,
//!     Slot::Query("sign"),
//! );
//! let key = ClientSecret::new("secret");
//! let mut request = http::Request::post("https://auth.lazada.com/rest/auth/token/refresh?refresh_token=rt&app_key=123")
//!     .body(Vec::new())?;
//! assert_eq!(LAZADA.string_to_sign(&request)?, b"/auth/token/refreshapp_key123refresh_tokenrt");
//! LAZADA.sign(&mut request, &key)?;
//! assert!(request.uri().query().unwrap().contains("&sign="));
//! assert!(LAZADA.verify(&request, &key).is_ok());
//! assert!(LAZADA.verify(&request, &ClientSecret::new("wrong")).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! Schemes that do not fit these parts (Alipay+'s `<METHOD> <URI>\n<Client-Id>.<Request-Time>.<Body>`
//! with a structured `Signature` header, or a signed answer) implement
//! [`Signer`](crate::provider::Signer) instead.

use base64::Engine as _;

use crate::error::EndpointError;
use crate::secret::ClientSecret;

/// The signature algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Algorithm {
    /// HMAC-SHA256 keyed with the secret's bytes.
    HmacSha256,
    /// RSA-SHA256, PKCS#1 v1.5 (feature `rsa`): the client signs with a PKCS#8 private key
    /// (PEM, or the Base64 of its DER), the server verifies with the public key (PEM or
    /// Base64 DER, SubjectPublicKeyInfo or PKCS#1).
    RsaSha256,
}

/// How the signature's bytes are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Encoding {
    /// Lowercase hexadecimal.
    HexLower,
    /// Uppercase hexadecimal.
    HexUpper,
    /// Standard Base64 with padding.
    Base64,
}

/// A part of the request the signature covers, in the declared order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Part {
    /// The HTTP method (`POST`).
    Method,
    /// The endpoint's declared path (`/auth/token/refresh`), relative to the base URL.
    Path,
    /// The request's timestamp, as it travels (see [`RequestSignature::timestamp`]).
    Timestamp,
    /// Every query parameter and body field (form fields, or the top-level JSON members,
    /// strings as their text and other values as JSON), the signature's own slot left out,
    /// sorted by name then value, each written name then value with nothing between.
    SortedParams,
    /// The same sorted parameters but the empty ones, each written name, `pair`, value,
    /// and joined by `join`: `sorted_params(pair = "=", join = "&")` is Alipay's `a=1&b=2`
    /// (values as they are, not URL-encoded; a parameter with an empty value is not signed).
    SortedPairs {
        /// What is written between a name and its value (`"="`).
        pair: &'static str,
        /// What is written between two parameters (`"&"`).
        join: &'static str,
    },
    /// The body's bytes.
    Body,
    /// The value of one named parameter as it travels (Shopee signs its `partner_id`
    /// query parameter, then the path and the timestamp).
    Param(Slot),
}

/// Where a value travels: the signature (`into`) or the timestamp.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Slot {
    /// A query parameter.
    Query(&'static str),
    /// A body field (a form field, or a top-level JSON member).
    Body(&'static str),
    /// A header.
    Header(&'static str),
}

/// One request signature, as `sign(...)` declares it. See the [module docs](self).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct RequestSignature {
    /// The algorithm.
    pub algorithm: Algorithm,
    /// The endpoint's path, for [`Part::Path`].
    pub path: &'static str,
    /// The covered parts, in order.
    pub parts: &'static [Part],
    /// What joins the parts (`""` by default).
    pub separator: &'static str,
    /// How the signature is written.
    pub encoding: Encoding,
    /// Where the signature goes.
    pub into: Slot,
    /// Where the request's timestamp travels, for [`Part::Timestamp`].
    pub timestamp: Option<Slot>,
}

/// Why a request's signature was refused, or could not be made. Never holds the key or the
/// signature.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SignatureError {
    /// The request carries no signature where the declaration puts it.
    #[error("the request carries no signature in {0}")]
    Missing(String),
    /// The signature does not match the request.
    #[error("the request's signature does not match")]
    Mismatch,
    /// The key cannot be used (not a PKCS#8 RSA key, or the `rsa` feature is off).
    #[error("the signing key cannot be used: {0}")]
    Key(&'static str),
    /// A signed part cannot be read (a body that is neither a form nor a JSON object, no
    /// timestamp).
    #[error("the request cannot be signed: {0}")]
    Request(String),
}

impl RequestSignature {
    /// A declaration with no separator and no timestamp part.
    pub const fn new(
        algorithm: Algorithm,
        path: &'static str,
        parts: &'static [Part],
        encoding: Encoding,
        into: Slot,
    ) -> Self {
        Self {
            algorithm,
            path,
            parts,
            separator: "",
            encoding,
            into,
            timestamp: None,
        }
    }

    /// Joins the parts with `separator` (`"\n"`).
    pub const fn with_separator(mut self, separator: &'static str) -> Self {
        self.separator = separator;
        self
    }

    /// Where the timestamp that [`Part::Timestamp`] covers travels.
    pub const fn with_timestamp(mut self, slot: Slot) -> Self {
        self.timestamp = Some(slot);
        self
    }

    /// The bytes the signature covers, read from `request` (its own slot left out).
    pub fn string_to_sign(
        &self,
        request: &http::Request<Vec<u8>>,
    ) -> Result<Vec<u8>, SignatureError> {
        let mut out = Vec::new();
        for (i, part) in self.parts.iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(self.separator.as_bytes());
            }
            match part {
                Part::Method => out.extend_from_slice(request.method().as_str().as_bytes()),
                Part::Path => out.extend_from_slice(self.path.as_bytes()),
                Part::Timestamp => {
                    let slot = self.timestamp.ok_or_else(|| {
                        SignatureError::Request("no timestamp is declared".into())
                    })?;
                    let value = read_slot(request, slot)?.ok_or_else(|| {
                        SignatureError::Request(format!("no timestamp in {}", describe(slot)))
                    })?;
                    out.extend_from_slice(value.as_bytes());
                }
                Part::SortedParams => self.sorted(request, None, &mut out)?,
                Part::SortedPairs { pair, join } => {
                    self.sorted(request, Some((pair, join)), &mut out)?;
                }
                Part::Body => out.extend_from_slice(request.body()),
                Part::Param(slot) => {
                    let value = read_slot(request, *slot)?.ok_or_else(|| {
                        SignatureError::Request(format!("no {} to sign", describe(*slot)))
                    })?;
                    out.extend_from_slice(value.as_bytes());
                }
            }
        }
        Ok(out)
    }

    /// The signature `request` carries in this declaration's slot, if any: a value to keep
    /// out of errors, as a provider's answer may echo it.
    ///
    /// ```
    /// use token_core::sign::{Algorithm, Encoding, Part, RequestSignature, Slot};
    ///
    /// const SIGN: RequestSignature = RequestSignature::new(
    ///     Algorithm::HmacSha256, "/t", &[Part::Path], Encoding::HexUpper, Slot::Query("sign"));
    /// let request = http::Request::get("https://h/t?a=1&sign=ABC").body(Vec::new()).unwrap();
    /// assert_eq!(SIGN.carried_by(&request).as_deref(), Some("ABC"));
    /// ```
    pub fn carried_by(&self, request: &http::Request<Vec<u8>>) -> Option<String> {
        read_slot(request, self.into)
            .ok()
            .flatten()
            .filter(|v| !v.is_empty())
    }

    /// Client side: signs `request` with `key` and puts the signature in its slot.
    pub fn sign(
        &self,
        request: &mut http::Request<Vec<u8>>,
        key: &ClientSecret,
    ) -> Result<(), EndpointError> {
        let encode = |e: SignatureError| EndpointError::Encode(e.to_string());
        let message = self.string_to_sign(request).map_err(encode)?;
        let signature = match self.algorithm {
            Algorithm::HmacSha256 => {
                self.write(&hmac_sha256(key.expose_secret().as_bytes(), &message))
            }
            Algorithm::RsaSha256 => {
                self.write(&rsa::sign(key.expose_secret(), &message).map_err(encode)?)
            }
        };
        put_slot(request, self.into, &signature).map_err(encode)
    }

    /// Server side: checks the signature `request` carries against `key` (the shared secret
    /// for HMAC, the public key for RSA), in constant time.
    pub fn verify(
        &self,
        request: &http::Request<Vec<u8>>,
        key: &ClientSecret,
    ) -> Result<(), SignatureError> {
        let received = read_slot(request, self.into)?
            .ok_or_else(|| SignatureError::Missing(describe(self.into)))?;
        let message = self.string_to_sign(request)?;
        let matches = match self.algorithm {
            Algorithm::HmacSha256 => {
                let expected = self.write(&hmac_sha256(key.expose_secret().as_bytes(), &message));
                constant_time_eq(expected.as_bytes(), received.as_bytes())
            }
            Algorithm::RsaSha256 => {
                let signature = self.read(received.trim()).ok_or(SignatureError::Mismatch)?;
                rsa::verify(key.expose_secret(), &message, &signature)?
            }
        };
        if matches {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }

    /// Every parameter but the signature's own, sorted by name then value, written name
    /// then value; with `(pair, join)`, the empty ones left out and each written name,
    /// `pair`, value, joined by `join`.
    fn sorted(
        &self,
        request: &http::Request<Vec<u8>>,
        pairs: Option<(&str, &str)>,
        out: &mut Vec<u8>,
    ) -> Result<(), SignatureError> {
        let (pair, join) = pairs.unwrap_or_default();
        let mut params = params(request)?;
        params.retain(|(name, value, slot)| {
            !self.is_own_slot(name, *slot) && (pairs.is_none() || !value.is_empty())
        });
        params.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
        for (i, (name, value, _)) in params.into_iter().enumerate() {
            if i > 0 {
                out.extend_from_slice(join.as_bytes());
            }
            out.extend_from_slice(name.as_bytes());
            out.extend_from_slice(pair.as_bytes());
            out.extend_from_slice(value.as_bytes());
        }
        Ok(())
    }

    fn write(&self, bytes: &[u8]) -> String {
        match self.encoding {
            Encoding::HexLower => hex(bytes, b"0123456789abcdef"),
            Encoding::HexUpper => hex(bytes, b"0123456789ABCDEF"),
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.encode(bytes),
        }
    }

    fn read(&self, text: &str) -> Option<Vec<u8>> {
        match self.encoding {
            Encoding::Base64 => base64::engine::general_purpose::STANDARD.decode(text).ok(),
            Encoding::HexLower | Encoding::HexUpper => (0..text.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(text.get(i..i + 2)?, 16).ok())
                .collect(),
        }
    }

    fn is_own_slot(&self, name: &str, slot: Slot) -> bool {
        match (self.into, slot) {
            (Slot::Query(own), Slot::Query(_)) | (Slot::Body(own), Slot::Body(_)) => own == name,
            _ => false,
        }
    }
}

/// HMAC-SHA256 of `message` keyed with `key`.
///
/// ```
/// // echo -n "message" | openssl dgst -sha256 -hmac "key"
/// let mac = token_core::sign::hmac_sha256(b"key", b"message");
/// assert_eq!(mac[..4], [0x6e, 0x9e, 0xf2, 0x9b]);
/// ```
pub fn hmac_sha256(key: &[u8], message: &[u8]) -> [u8; 32] {
    crate::crypto::hmac_sha256(key, message)
}

/// Whether `a == b`, in a time that depends on their lengths only.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let difference = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(difference) == 0
}

fn hex(bytes: &[u8], digits: &[u8; 16]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        out.push(digits[usize::from(byte >> 4)] as char);
        out.push(digits[usize::from(byte & 0x0f)] as char);
    }
    out
}

fn describe(slot: Slot) -> String {
    match slot {
        Slot::Query(name) => format!("query parameter `{name}`"),
        Slot::Body(name) => format!("body field `{name}`"),
        Slot::Header(name) => format!("header `{name}`"),
    }
}

fn is_form(request: &http::Request<Vec<u8>>) -> bool {
    request
        .headers()
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"))
}

fn blank(body: &[u8]) -> bool {
    body.iter().all(u8::is_ascii_whitespace)
}

/// Every query parameter and body field, with where it travels.
fn params(request: &http::Request<Vec<u8>>) -> Result<Vec<(String, String, Slot)>, SignatureError> {
    let mut out: Vec<(String, String, Slot)> = request
        .uri()
        .query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .into_owned()
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v, Slot::Query("")))
        .collect();
    let body = request.body();
    if blank(body) {
        return Ok(out);
    }
    if is_form(request) {
        out.extend(
            url::form_urlencoded::parse(body)
                .into_owned()
                .map(|(k, v)| (k, v, Slot::Body(""))),
        );
        return Ok(out);
    }
    match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(map)) => {
            out.extend(map.into_iter().map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, text, Slot::Body(""))
            }));
            Ok(out)
        }
        _ => Err(SignatureError::Request(
            "the body is neither a form nor a JSON object".into(),
        )),
    }
}

/// The signature `request` carries in `slot`. Carried twice, it is a malformed request (as
/// any parameter sent twice is): which copy a reader takes must not decide what verifies.
fn read_slot(
    request: &http::Request<Vec<u8>>,
    slot: Slot,
) -> Result<Option<String>, SignatureError> {
    let (first, copies) = match slot {
        Slot::Header(name) => {
            let values = request.headers().get_all(name);
            // A header's value is what lies between its surrounding whitespace, which a
            // server strips (RFC 9110 section 5.5): signed as the server reads it.
            let first = match values.iter().next() {
                Some(value) => Some(value.to_str().map(str::trim).map_err(|_| {
                    SignatureError::Request(format!("{} is not ASCII text", describe(slot)))
                })?),
                None => None,
            };
            (first.map(str::to_owned), values.iter().count())
        }
        Slot::Query(name) | Slot::Body(name) => {
            let mut found = (params(request)?.into_iter())
                .filter(|(k, _, at)| {
                    k == name && std::mem::discriminant(at) == std::mem::discriminant(&slot)
                })
                .map(|(_, v, _)| v);
            let first = found.next();
            let copies = usize::from(first.is_some()) + found.count();
            (first, copies)
        }
    };
    if copies > 1 {
        return Err(SignatureError::Request(format!(
            "the signature ({}) is carried more than once",
            describe(slot)
        )));
    }
    Ok(first)
}

fn put_slot(
    request: &mut http::Request<Vec<u8>>,
    slot: Slot,
    value: &str,
) -> Result<(), SignatureError> {
    match slot {
        Slot::Header(name) => {
            let mut value = http::HeaderValue::from_str(value)
                .map_err(|_| SignatureError::Request("the signature is not header text".into()))?;
            value.set_sensitive(true);
            let name = http::HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| SignatureError::Request(format!("`{name}` is not a header name")))?;
            request.headers_mut().insert(name, value);
        }
        Slot::Query(name) => {
            let pair = url::form_urlencoded::Serializer::new(String::new())
                .append_pair(name, value)
                .finish();
            let uri = request.uri().to_string();
            let joined = match request.uri().query() {
                Some(q) if !q.is_empty() => format!("{uri}&{pair}"),
                Some(_) => format!("{uri}{pair}"),
                None => format!("{uri}?{pair}"),
            };
            *request.uri_mut() = joined
                .parse()
                .map_err(|_| SignatureError::Request("the signed URI is invalid".into()))?;
        }
        Slot::Body(name)
            if is_form(request)
                || blank(request.body()) && request.method() != http::Method::GET =>
        {
            let pair = url::form_urlencoded::Serializer::new(String::new())
                .append_pair(name, value)
                .finish();
            let body = request.body_mut();
            if !blank(body) {
                body.push(b'&');
            } else {
                body.clear();
            }
            body.extend_from_slice(pair.as_bytes());
            request.headers_mut().insert(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("application/x-www-form-urlencoded"),
            );
        }
        Slot::Body(name) => {
            // Appended as the last member, so the body keeps its order and its other bytes.
            let body = request.body_mut();
            let end = body
                .iter()
                .rposition(|b| *b == b'}')
                .ok_or_else(|| SignatureError::Request("the body is not a JSON object".into()))?;
            let empty = body[..end].iter().rev().find(|b| !b.is_ascii_whitespace()) == Some(&b'{');
            let member = format!(
                "{}{}:{}",
                if empty { "" } else { "," },
                serde_json::Value::from(name),
                serde_json::Value::from(value)
            );
            body.splice(end..end, member.into_bytes());
        }
    }
    Ok(())
}

/// Whether RSA-SHA256 signatures are built in (token-core's `rsa` feature): a request that
/// declares `sign(rsa_sha256, ...)` does not compile without it.
pub const RSA_ENABLED: bool = cfg!(feature = "rsa");

#[cfg(feature = "rsa")]
mod rsa {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{self, RsaKeyPair, UnparsedPublicKey};

    use super::SignatureError;

    pub fn sign(key: &str, message: &[u8]) -> Result<Vec<u8>, SignatureError> {
        let der = super::der(key, "PRIVATE KEY").ok_or(SignatureError::Key(
            "expected a PKCS#8 private key, PEM or Base64 DER",
        ))?;
        let pair = RsaKeyPair::from_pkcs8(&der)
            .map_err(|_| SignatureError::Key("expected a PKCS#8 RSA private key"))?;
        let mut out = vec![0; pair.public_modulus_len()];
        pair.sign(
            &signature::RSA_PKCS1_SHA256,
            &SystemRandom::new(),
            message,
            &mut out,
        )
        .map_err(|_| SignatureError::Key("the RSA key could not sign"))?;
        Ok(out)
    }

    pub fn verify(key: &str, message: &[u8], signature: &[u8]) -> Result<bool, SignatureError> {
        let der = super::der(key, "PUBLIC KEY").ok_or(SignatureError::Key(
            "expected an RSA public key, PEM or Base64 DER",
        ))?;
        Ok(
            UnparsedPublicKey::new(&signature::RSA_PKCS1_2048_8192_SHA256, der)
                .verify(message, signature)
                .is_ok(),
        )
    }
}

#[cfg(not(feature = "rsa"))]
mod rsa {
    use super::SignatureError;

    const OFF: SignatureError = SignatureError::Key("RSA-SHA256 needs token-core's `rsa` feature");

    pub fn sign(_: &str, _: &[u8]) -> Result<Vec<u8>, SignatureError> {
        Err(OFF)
    }

    pub fn verify(_: &str, _: &[u8], _: &[u8]) -> Result<bool, SignatureError> {
        Err(OFF)
    }
}

/// The DER bytes of a PEM block (any `-----BEGIN ...-----` label ending in `label`, so
/// `RSA PUBLIC KEY` is read too) or of Base64 text.
#[cfg_attr(not(feature = "rsa"), allow(dead_code))]
fn der(text: &str, label: &str) -> Option<Vec<u8>> {
    let text = text.trim();
    let body: String = if text.starts_with("-----BEGIN ") {
        let first = text.lines().next()?;
        if !first.trim_end_matches('-').ends_with(label) {
            return None;
        }
        text.lines()
            .filter(|line| !line.starts_with("-----"))
            .collect::<Vec<_>>()
            .concat()
    } else {
        text.to_owned()
    };
    let compact: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LAZADA: RequestSignature = RequestSignature::new(
        Algorithm::HmacSha256,
        "/auth/token/refresh",
        &[Part::Path, Part::SortedParams],
        Encoding::HexUpper,
        Slot::Query("sign"),
    );

    fn request(uri: &str, content_type: Option<&str>, body: &str) -> http::Request<Vec<u8>> {
        let mut builder = http::Request::post(uri);
        if let Some(content_type) = content_type {
            builder = builder.header(http::header::CONTENT_TYPE, content_type);
        }
        builder.body(body.as_bytes().to_vec()).unwrap()
    }

    #[test]
    fn a_named_parameter_is_signed_by_its_value_as_it_travels() {
        // Shopee: partner_id + path + timestamp, lower-hex HMAC-SHA256 with the partner key.
        const SHOPEE: RequestSignature = RequestSignature::new(
            Algorithm::HmacSha256,
            "/api/v2/auth/access_token/get",
            &[
                Part::Param(Slot::Query("partner_id")),
                Part::Path,
                Part::Timestamp,
            ],
            Encoding::HexLower,
            Slot::Query("sign"),
        )
        .with_timestamp(Slot::Query("timestamp"));
        let key =
            ClientSecret::new("1391fd986fe8ec7569bebed75b0c33ee35eb5a305bed7038657a5cd5f75b1c88");
        let uri = "https://partner.shopeemobile.com/api/v2/auth/access_token/get?partner_id=2006566&timestamp=1681286400";
        let mut signed = request(uri, Some("application/json"), r#"{"partner_id":1}"#);
        assert_eq!(
            SHOPEE.string_to_sign(&signed).unwrap(),
            b"2006566/api/v2/auth/access_token/get1681286400"
        );
        SHOPEE.sign(&mut signed, &key).unwrap();
        // echo -n "2006566/api/v2/auth/access_token/get1681286400" | openssl dgst -sha256 -hmac <key>
        assert!(
            signed.uri().to_string().ends_with(
                "&sign=f8ea905de5335b6acb089321c0b007623d74d75c055226a7921a2b7749cd0941"
            )
        );
        assert!(SHOPEE.verify(&signed, &key).is_ok());
        // The body's `partner_id` is another parameter: the query's value is the one signed.
        let forged = request(
            &signed
                .uri()
                .to_string()
                .replace("partner_id=2006566", "partner_id=7"),
            Some("application/json"),
            r#"{"partner_id":2006566}"#,
        );
        assert_eq!(SHOPEE.verify(&forged, &key), Err(SignatureError::Mismatch));
        // A request without the parameter cannot be signed, and says which one it lacks.
        let missing = request(
            "https://partner.shopeemobile.com/api/v2/auth/access_token/get?timestamp=1",
            None,
            "",
        );
        let error = SHOPEE.string_to_sign(&missing).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the request cannot be signed: no query parameter `partner_id` to sign"
        );
    }

    /// A header's value is what it holds between its leading and trailing whitespace (RFC
    /// 9110 section 5.5: a server strips them), so a value sent with them is signed as the
    /// server reads it.
    #[test]
    fn a_signed_header_is_its_value_without_surrounding_whitespace() {
        const SIGNED: RequestSignature = RequestSignature::new(
            Algorithm::HmacSha256,
            "/p",
            &[Part::Path, Part::Param(Slot::Header("X-Merchant-Id"))],
            Encoding::HexLower,
            Slot::Query("sign"),
        );
        let key = ClientSecret::new("k");
        let mut sent = http::Request::post("https://h/p")
            .header("X-Merchant-Id", " m-1 ")
            .body(Vec::new())
            .unwrap();
        assert_eq!(SIGNED.string_to_sign(&sent).unwrap(), b"/pm-1");
        SIGNED.sign(&mut sent, &key).unwrap();
        // As a server receives it: the whitespace stripped.
        let mut received = sent.clone();
        received
            .headers_mut()
            .insert("X-Merchant-Id", http::HeaderValue::from_static("m-1"));
        assert_eq!(SIGNED.verify(&received, &key), Ok(()));
        assert_eq!(SIGNED.verify(&sent, &key), Ok(()));
    }

    /// A header whose value is not text (bytes beyond ASCII) is said to be so, not missing.
    #[test]
    fn a_signed_header_that_is_not_text_is_named_so() {
        const SIGNED: RequestSignature = RequestSignature::new(
            Algorithm::HmacSha256,
            "/p",
            &[Part::Path, Part::Param(Slot::Header("X-Shop"))],
            Encoding::HexLower,
            Slot::Query("sign"),
        );
        let request = http::Request::post("https://h/p")
            .header(
                "X-Shop",
                http::HeaderValue::from_bytes("Café".as_bytes()).unwrap(),
            )
            .body(Vec::new())
            .unwrap();
        let error = SIGNED.string_to_sign(&request).unwrap_err();
        assert_eq!(
            error.to_string(),
            "the request cannot be signed: header `X-Shop` is not ASCII text"
        );
    }

    #[test]
    fn hmac_matches_openssl() {
        // echo -n "/auth/token/refreshapp_key123456refresh_tokenrtsign_methodsha256timestamp1700000000000" \
        //   | openssl dgst -sha256 -hmac "secret"
        let message = b"/auth/token/refreshapp_key123456refresh_tokenrtsign_methodsha256timestamp1700000000000";
        let mac = hmac_sha256(b"secret", message);
        assert_eq!(
            hex(&mac, b"0123456789abcdef"),
            "b16cf36a3176072f804ca667c99bbdb8b17c850be555663db32eb1f19aa39852"
        );
    }

    #[test]
    fn sorted_params_cover_query_and_form_body_without_the_signature() {
        let request = request(
            "https://h/rest/auth/token/refresh?timestamp=1&sign=X&app_key=k",
            Some("application/x-www-form-urlencoded"),
            "refresh_token=r+t&b=2",
        );
        assert_eq!(
            LAZADA.string_to_sign(&request).unwrap(),
            b"/auth/token/refreshapp_keykb2refresh_tokenr ttimestamp1"
        );
    }

    #[test]
    fn sorted_pairs_write_name_pair_value_joined_and_leave_the_signature_out() {
        let alipay = RequestSignature::new(
            Algorithm::HmacSha256,
            "/gateway.do",
            &[Part::SortedPairs {
                pair: "=",
                join: "&",
            }],
            Encoding::Base64,
            Slot::Body("sign"),
        );
        let form = request(
            "https://h/gateway.do?charset=utf-8",
            Some("application/x-www-form-urlencoded"),
            "timestamp=2014-07-24+03%3A07%3A50&sign=X&app_id=1&b=",
        );
        // Values as they are, not URL-encoded; an empty one is left out.
        assert_eq!(
            alipay.string_to_sign(&form).unwrap(),
            b"app_id=1&charset=utf-8&timestamp=2014-07-24 03:07:50"
        );
        let none = request("https://h/gateway.do", None, "");
        assert_eq!(alipay.string_to_sign(&none).unwrap(), b"");
    }

    #[test]
    fn every_slot_signs_and_verifies_and_a_changed_request_is_refused() {
        let key = ClientSecret::new("k");
        for into in [
            Slot::Query("sign"),
            Slot::Body("sign"),
            Slot::Header("X-Sign"),
        ] {
            for (content_type, body) in [
                (Some("application/json"), r#"{"b":1,"a":"x"}"#),
                (Some("application/json"), "{}"),
                (Some("application/x-www-form-urlencoded"), "a=x"),
                (None, ""),
            ] {
                let declared = RequestSignature::new(
                    Algorithm::HmacSha256,
                    "/p",
                    &[Part::Method, Part::Path, Part::SortedParams],
                    Encoding::Base64,
                    into,
                )
                .with_separator("\n");
                let mut signed = request("https://h/p?q=1", content_type, body);
                declared.sign(&mut signed, &key).unwrap();
                assert_eq!(declared.verify(&signed, &key), Ok(()), "{into:?} {body}");
                assert_eq!(
                    declared.verify(&signed, &ClientSecret::new("other")),
                    Err(SignatureError::Mismatch)
                );
                let mut changed = signed;
                *changed.uri_mut() = changed
                    .uri()
                    .to_string()
                    .replace("q=1", "q=2")
                    .parse()
                    .unwrap();
                assert_eq!(
                    declared.verify(&changed, &key),
                    Err(SignatureError::Mismatch)
                );
            }
        }
    }

    #[test]
    fn a_json_body_keeps_its_member_order() {
        let declared = RequestSignature::new(
            Algorithm::HmacSha256,
            "/p",
            &[Part::SortedParams],
            Encoding::HexLower,
            Slot::Body("sign"),
        );
        let mut signed = request("https://h/p", Some("application/json"), r#"{"z":1,"a":2}"#);
        declared.sign(&mut signed, &ClientSecret::new("k")).unwrap();
        let body = String::from_utf8(signed.body().clone()).unwrap();
        assert!(body.starts_with(r#"{"z":1,"a":2,"sign":""#), "{body}");
    }

    #[test]
    fn a_missing_signature_and_a_missing_timestamp_are_typed_errors() {
        let unsigned = request("https://h/p?a=1", None, "");
        assert_eq!(
            LAZADA.verify(&unsigned, &ClientSecret::new("k")),
            Err(SignatureError::Missing("query parameter `sign`".into()))
        );
        let declared = RequestSignature::new(
            Algorithm::HmacSha256,
            "/p",
            &[Part::Timestamp],
            Encoding::HexLower,
            Slot::Header("sign"),
        )
        .with_timestamp(Slot::Header("X-Time"));
        assert!(matches!(
            declared.string_to_sign(&unsigned),
            Err(SignatureError::Request(_))
        ));
    }

    #[test]
    fn the_key_and_the_signature_stay_out_of_errors_and_debug() {
        let key = ClientSecret::new("KEY-SECRET-1");
        let mut signed = request("https://h/p?a=1", None, "");
        LAZADA.sign(&mut signed, &key).unwrap();
        let signature = read_slot(&signed, Slot::Query("sign")).unwrap().unwrap();
        let refused = LAZADA
            .verify(&signed, &ClientSecret::new("KEY-SECRET-2"))
            .unwrap_err();
        for shown in [
            format!("{refused} {refused:?}"),
            format!("{key:?} {LAZADA:?}"),
            format!("{:?}", SignatureError::Missing("x".into())),
        ] {
            assert!(!shown.contains("KEY-SECRET"), "{shown}");
            assert!(!shown.contains(&signature), "{shown}");
        }
    }

    #[test]
    fn constant_time_eq_compares_whole_slices() {
        assert!(constant_time_eq(b"abc", b"abc"));
        assert!(!constant_time_eq(b"abc", b"abd"));
        assert!(!constant_time_eq(b"abc", b"ab"));
    }

    #[cfg(feature = "rsa")]
    #[test]
    fn rsa_sha256_signs_with_the_private_key_and_verifies_with_the_public_key() {
        use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der, PublicKeyX509Der};
        use aws_lc_rs::rsa::{KeySize, PrivateDecryptingKey};
        let private = PrivateDecryptingKey::generate(KeySize::Rsa2048).unwrap();
        let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
        let pkcs8: Pkcs8V1Der = private.as_der().unwrap();
        let spki: PublicKeyX509Der = private.public_key().as_der().unwrap();
        let pem = format!(
            "-----BEGIN PRIVATE KEY-----\n{}\n-----END PRIVATE KEY-----\n",
            b64(pkcs8.as_ref())
        );
        let declared = RequestSignature::new(
            Algorithm::RsaSha256,
            "/p",
            &[Part::Method, Part::Path, Part::Body],
            Encoding::Base64,
            Slot::Header("Signature"),
        );
        for key in [pem, b64(pkcs8.as_ref())] {
            let mut signed = request("https://h/p", Some("application/json"), r#"{"a":1}"#);
            declared.sign(&mut signed, &ClientSecret::new(key)).unwrap();
            let public = ClientSecret::new(b64(spki.as_ref()));
            assert_eq!(declared.verify(&signed, &public), Ok(()));
            *signed.body_mut() = br#"{"a":2}"#.to_vec();
            assert_eq!(
                declared.verify(&signed, &public),
                Err(SignatureError::Mismatch)
            );
        }
        let mut signed = request("https://h/p", None, "");
        let refused = declared
            .sign(&mut signed, &ClientSecret::new("not a key"))
            .unwrap_err();
        assert!(!refused.to_string().contains("not a key"), "{refused}");
    }

    /// A signature carried twice is a malformed request, whichever copy is the good one and
    /// in every slot: which copy a reader takes must not decide what verifies.
    #[test]
    fn a_signature_carried_twice_is_a_malformed_request() {
        let key = ClientSecret::new("k");
        for into in [
            Slot::Query("sign"),
            Slot::Header("X-Sign"),
            Slot::Body("sign"),
        ] {
            let declared = RequestSignature::new(
                Algorithm::HmacSha256,
                "/p",
                &[Part::Path, Part::SortedParams],
                Encoding::HexLower,
                into,
            );
            let form = Some("application/x-www-form-urlencoded");
            let mut signed = request("https://h/p?a=1", form, "b=2");
            declared.sign(&mut signed, &key).unwrap();
            assert_eq!(declared.verify(&signed, &key), Ok(()), "{into:?}");
            match into {
                Slot::Query(_) => {
                    let uri = format!("{}&sign=00", signed.uri());
                    *signed.uri_mut() = uri.parse().unwrap();
                }
                Slot::Header(_) => {
                    signed.headers_mut().append("X-Sign", "00".parse().unwrap());
                }
                Slot::Body(_) => signed.body_mut().extend_from_slice(b"&sign=00"),
            }
            let refused = declared.verify(&signed, &key);
            assert!(
                matches!(refused, Err(SignatureError::Request(_))),
                "{into:?}: {refused:?}"
            );
        }
    }
}
