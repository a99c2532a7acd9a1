//! Writing and reading requests: bodies, headers, query, HTTP Basic, secrets.

use super::*;
use crate::oauth::BasicCredentials;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

/// The body format of a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Form,
}

/// Where a text value travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum At {
    Header,
    Query,
    /// A form body field.
    Form,
    /// `Authorization: Bearer <value>`.
    Bearer,
    /// The user half of `Authorization: Basic`.
    BasicUser,
    /// The password half of `Authorization: Basic`.
    BasicPassword,
}

/// The server side of a field group flattened into a `provider = "..."` request: what
/// [`RefreshEndpoint`](crate::provider::RefreshEndpoint) reads from the group's fields, against the
/// config `C` the group's `FromContext` takes.
pub trait GroupRefresh<C: ?Sized> {
    /// Whether a field of the group reads `from = refresh_token`.
    const READS_REFRESH_TOKEN: bool;
    /// The refresh token the group's `from = refresh_token` field carries.
    fn refresh_token(&self) -> Option<RefreshToken>;
    /// The wire name of the first field read `from = config.*` whose value is not
    /// `config`'s.
    fn config_mismatch(&self, config: &C) -> Option<&'static str>;
}

/// The extras type a `provider = "..."` request reads `from = extras.*` (its
/// `extras = Type`) is its response's: the sessions it refreshes hold those, so with another
/// type every such field would read nothing. Implemented for every type as its own.
#[diagnostic::on_unimplemented(
    message = "`extras = {Self}` is not the extras type of this request's response, `{Session}`",
    label = "the sessions this request refreshes hold `{Session}`",
    note = "a `provider = \"...\"` request refreshes sessions holding its response's extras (its `extras = Type` or `declare_extras = Name`): name that type, or every `from = extras.*` field reads nothing"
)]
pub trait SessionExtras<Session> {}

impl<T> SessionExtras<T> for T {}

/// A value that travels as text: a header, a query parameter, a form field, a credential.
#[diagnostic::on_unimplemented(
    message = "`{Self}` cannot travel as text in a header, query parameter, form field or `Authorization`",
    label = "this field's type",
    note = "use `String`, an integer, `bool`, `uuid::Uuid` or a token type (`AccessToken`, `RefreshToken`, `AuthCode`, `ClientSecret`); put other types in a JSON body"
)]
pub trait TextValue: Sized {
    /// The value as the text sent.
    fn to_text(&self) -> String;
    /// The value read back from its text (server side); `None` when it does not parse.
    fn from_text(text: &str) -> Option<Self>;
}

impl TextValue for String {
    fn to_text(&self) -> String {
        self.clone()
    }
    fn from_text(text: &str) -> Option<Self> {
        Some(text.to_owned())
    }
}

macro_rules! parsed_text {
    ($($ty:ty),*) => {$(
        impl TextValue for $ty {
            fn to_text(&self) -> String {
                self.to_string()
            }
            fn from_text(text: &str) -> Option<Self> {
                text.trim().parse().ok()
            }
        }
    )*};
}
parsed_text!(
    bool,
    u8,
    u16,
    u32,
    u64,
    i8,
    i16,
    i32,
    i64,
    usize,
    uuid::Uuid
);

macro_rules! secret_text {
    ($($ty:ty),*) => {$(
        impl TextValue for $ty {
            fn to_text(&self) -> String {
                self.expose_secret().to_owned()
            }
            fn from_text(text: &str) -> Option<Self> {
                Some(Self::new(text))
            }
        }
        impl AsSecret for $ty {
            fn collect_secrets<'a>(&'a self, out: &mut Vec<&'a str>) {
                out.push(self.expose_secret());
            }
        }
    )*};
}
secret_text!(AccessToken, RefreshToken, AuthCode, ClientSecret);

/// A request field whose raw value must be scrubbed from error bodies.
pub trait AsSecret {
    fn collect_secrets<'a>(&'a self, out: &mut Vec<&'a str>);
}

impl AsSecret for String {
    fn collect_secrets<'a>(&'a self, out: &mut Vec<&'a str>) {
        out.push(self);
    }
}

impl<T: AsSecret> AsSecret for Option<T> {
    fn collect_secrets<'a>(&'a self, out: &mut Vec<&'a str>) {
        if let Some(value) = self {
            value.collect_secrets(out);
        }
    }
}

/// A secret type: a request field of this type is a secret whatever its role or source (a
/// config's `ClientSecret` in the body, a hand-set `AuthCode`...).
pub trait SecretType: AsSecret {}

impl SecretType for AccessToken {}
impl SecretType for RefreshToken {}
impl SecretType for AuthCode {}
impl SecretType for ClientSecret {}
impl<T: SecretType> SecretType for Option<T> {}

/// Collects a field's secrets when its type is a [`SecretType`], and nothing otherwise
/// (autoref specialization: the generated code calls
/// `(&SecretProbe(&self.field)).__token_collect_if_secret(&mut out)` with both traits in scope;
/// [`IsSecret`] on `SecretProbe<T>` wins when `T: SecretType`, else [`NotSecret`] on
/// `&SecretProbe<T>` applies).
pub struct SecretProbe<'a, T: ?Sized>(pub &'a T);

pub trait IsSecret<'a> {
    fn __token_collect_if_secret(&self, out: &mut Vec<&'a str>);
}

impl<'a, T: SecretType + ?Sized> IsSecret<'a> for SecretProbe<'a, T> {
    fn __token_collect_if_secret(&self, out: &mut Vec<&'a str>) {
        self.0.collect_secrets(out);
    }
}

pub trait NotSecret<'a> {
    fn __token_collect_if_secret(&self, out: &mut Vec<&'a str>);
}

impl<'a, T: ?Sized> NotSecret<'a> for &SecretProbe<'a, T> {
    fn __token_collect_if_secret(&self, _out: &mut Vec<&'a str>) {}
}

/// Client side: assembles a request field by field.
pub struct RequestWriter {
    method: http::Method,
    path: &'static str,
    format: BodyFormat,
    headers: Vec<(&'static str, String)>,
    query: Vec<(&'static str, String)>,
    json: Map<String, Value>,
    /// The JSON body's top-level members in the order they were written (declaration
    /// order): `json` alone would write them sorted.
    json_order: Vec<String>,
    form: Vec<(&'static str, String)>,
    bearer: Option<String>,
    basic: (Option<String>, Option<String>),
    /// A JSON body is written even with no member: its signature goes in it.
    signed_json: bool,
    error: Option<EndpointError>,
}

impl RequestWriter {
    pub fn new(method: http::Method, path: &'static str, format: BodyFormat) -> Self {
        Self {
            method,
            path,
            format,
            headers: Vec::new(),
            query: Vec::new(),
            json: Map::new(),
            json_order: Vec::new(),
            form: Vec::new(),
            bearer: None,
            basic: (None, None),
            signed_json: false,
            error: None,
        }
    }

    /// The request's signature goes in its body (`into = body("...")`): a JSON body is then
    /// an object even when no field goes there, so the signature is added to it as a member
    /// rather than sent as a form the server side cannot read.
    pub fn signature_in_body(&mut self) {
        self.signed_json = self.format == BodyFormat::Json;
    }

    /// Records a top-level JSON member the first time it is written.
    fn note_member(&mut self, name: &str) {
        if !self.json_order.iter().any(|known| known == name) {
            self.json_order.push(name.to_owned());
        }
    }

    /// A constant: `header(...)`, `query(...)` or `body(...)` (`at == None`) on the item.
    pub fn constant(&mut self, at: Option<At>, name: &'static str, value: &'static str) {
        match at {
            Some(at) => self.put(at, name, value.to_owned()),
            None if self.format == BodyFormat::Json => {
                self.note_member(name.split('.').next().unwrap_or(name));
                insert_path(&mut self.json, name, Value::from(value))
            }
            None => self.form.push((name, value.to_owned())),
        }
    }

    /// A field of a flattened group that goes in the body: JSON or form, as the request's.
    pub fn body<T: Serialize + ?Sized>(&mut self, name: &'static str, text: String, value: &T) {
        match self.format {
            BodyFormat::Json => self.json(name, value),
            BodyFormat::Form => self.put(At::Form, name, text),
        }
    }

    /// A field that travels as text.
    pub fn put(&mut self, at: At, name: &'static str, value: String) {
        match at {
            At::Header => self.headers.push((name, value)),
            At::Query => self.query.push((name, value)),
            At::Form => self.form.push((name, value)),
            At::Bearer => self.bearer = Some(value),
            At::BasicUser => self.basic.0 = Some(value),
            At::BasicPassword => self.basic.1 = Some(value),
        }
    }

    /// A JSON body field. One written as `null` is an encoding error: the server side reads
    /// a `null` member as an absent one (a required field missing, an `Option` as `None`),
    /// and a float that is not finite, which JSON cannot write, is written so.
    pub fn json<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) {
        match serde_json::to_value(value) {
            Ok(Value::Null) => {
                self.error.get_or_insert_with(|| {
                    EndpointError::Encode(format!(
                        "body field `{name}` is written as JSON `null` (a float that is not finite is), which reads as absent: leave it out with `None`"
                    ))
                });
            }
            Ok(value) => {
                self.note_member(name);
                self.json.insert(name.to_owned(), value);
            }
            Err(_) => {
                self.error.get_or_insert_with(|| {
                    EndpointError::Encode(format!(
                        "body field `{name}` could not be written as JSON"
                    ))
                });
            }
        }
    }

    /// The request, against `base_url`. A header that carries one of `secrets` (the
    /// request's [`Endpoint::secrets`](crate::codec::Endpoint::secrets)) is marked
    /// sensitive, as `Authorization` is: no `Debug` shows it, and HTTP/2 keeps it out of its
    /// header-compression table.
    pub fn finish(
        self,
        base_url: &url::Url,
        secrets: &[&str],
    ) -> Result<http::Request<Vec<u8>>, EndpointError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut url = crate::codec::endpoint_url(base_url, self.path)
            .map_err(|e| EndpointError::Encode(format!("invalid endpoint URL: {e}")))?;
        if !self.query.is_empty() {
            url.query_pairs_mut()
                .extend_pairs(self.query.iter().map(|(k, v)| (*k, v.as_str())));
        }
        let mut builder = http::Request::builder()
            .method(self.method)
            .uri(url.as_str())
            .header(http::header::ACCEPT, "application/json");
        let body = match self.format {
            BodyFormat::Json if !self.json.is_empty() || self.signed_json => {
                builder = builder.header(http::header::CONTENT_TYPE, "application/json");
                serde_json::to_vec(&Ordered(&self.json_order, &self.json)).map_err(|e| {
                    EndpointError::Encode(format!("could not write the JSON body: {e}"))
                })?
            }
            BodyFormat::Form if !self.form.is_empty() => {
                builder = builder.header(
                    http::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                );
                serde_urlencoded::to_string(&self.form)
                    .map_err(|e| {
                        EndpointError::Encode(format!("could not write the form body: {e}"))
                    })?
                    .into_bytes()
            }
            _ => Vec::new(),
        };
        for (name, text) in &self.headers {
            let mut value = http::HeaderValue::from_str(text).map_err(|_| {
                EndpointError::Encode(format!(
                    "the value of header `{name}` is not valid header text"
                ))
            })?;
            if secrets
                .iter()
                .any(|secret| !secret.is_empty() && text.contains(secret))
            {
                value.set_sensitive(true);
            }
            // A declared `Content-Type` or `Accept` (a charset, a vendor media type) replaces
            // the default written above rather than being sent beside it.
            let replaces = [http::header::CONTENT_TYPE, http::header::ACCEPT]
                .iter()
                .any(|default| default.as_str().eq_ignore_ascii_case(name));
            if replaces
                && let Some(headers) = builder.headers_mut()
                && let Ok(name) = http::HeaderName::from_bytes(name.as_bytes())
            {
                headers.remove(&name);
            }
            builder = builder.header(*name, value);
        }
        let authorization = match (self.bearer, self.basic) {
            (Some(token), _) => Some(format!("Bearer {token}")),
            (None, (Some(user), Some(password))) => {
                Some(BasicCredentials::new(user, ClientSecret::new(password)).to_header())
            }
            _ => None,
        };
        if let Some(authorization) = authorization {
            let mut value = http::HeaderValue::from_str(&authorization).map_err(|_| {
                EndpointError::Encode("the credential is not valid header text".into())
            })?;
            value.set_sensitive(true);
            builder = builder.header(http::header::AUTHORIZATION, value);
        }
        builder
            .body(body)
            .map_err(|e| EndpointError::Encode(format!("could not build the request: {e}")))
    }
}

/// A JSON object written with its members in a given order.
struct Ordered<'a>(&'a [String], &'a Map<String, Value>);

impl Serialize for Ordered<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for name in self.0 {
            if let Some(value) = self.1.get(name) {
                map.serialize_entry(name, value)?;
            }
        }
        map.end()
    }
}

/// A request body must be declared in the endpoint's format, as a real server reads it: JSON
/// as `application/json` (or a `+json` type), a form as `application/x-www-form-urlencoded`
/// (RFC 6749 section 3.2), parameters such as `charset` aside and in any case. A body sent
/// with another type, or none, is not read as that format by the provider, so it is refused
/// rather than read anyway.
fn declared_as(request: &http::Request<Vec<u8>>, format: BodyFormat) -> Result<(), RequestError> {
    let mut values = request.headers().get_all(http::header::CONTENT_TYPE).iter();
    let declared = match (values.next(), values.next()) {
        (Some(value), None) => value.to_str().ok(),
        _ => None,
    };
    let media = declared
        .and_then(|value| value.split(';').next())
        .map(|media| media.trim().to_ascii_lowercase());
    let (fits, expected) = match format {
        BodyFormat::Json => (
            media
                .as_deref()
                .is_some_and(|m| m == "application/json" || m.ends_with("+json")),
            "application/json",
        ),
        BodyFormat::Form => (
            media.as_deref() == Some("application/x-www-form-urlencoded"),
            "application/x-www-form-urlencoded",
        ),
    };
    if fits {
        Ok(())
    } else {
        Err(RequestError(format!(
            "the body is not declared `Content-Type: {expected}`"
        )))
    }
}

/// Server side: reads a request field by field.
pub struct RequestReader<'r> {
    request: &'r http::Request<Vec<u8>>,
    format: BodyFormat,
    json: Map<String, Value>,
    form: Vec<(String, String)>,
    query: Vec<(String, String)>,
}

impl<'r> RequestReader<'r> {
    pub fn new(
        request: &'r http::Request<Vec<u8>>,
        method: http::Method,
        format: BodyFormat,
    ) -> Result<Self, RequestError> {
        if request.method() != method {
            return Err(RequestError(format!(
                "expected method {method}, got {}",
                request.method()
            )));
        }
        let body = request.body();
        let blank = body.iter().all(u8::is_ascii_whitespace);
        if !blank {
            declared_as(request, format)?;
        }
        let mut json = Map::new();
        let mut form = Vec::new();
        match format {
            BodyFormat::Json if !blank => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => {
                    // As a repeated form parameter: a key twice is a malformed request, not a
                    // choice between its values (another reader of the same signed bytes
                    // may keep the other one).
                    if repeats_a_key(body) {
                        return Err(RequestError("the body repeats a JSON key".into()));
                    }
                    json = map;
                }
                _ => return Err(RequestError("the body is not a JSON object".into())),
            },
            BodyFormat::Form if !blank => {
                form = serde_urlencoded::from_bytes(body)
                    .map_err(|_| RequestError("the body is not a form".into()))?;
            }
            _ => {}
        }
        let query = request
            .uri()
            .query()
            .map(|q| {
                url::form_urlencoded::parse(q.as_bytes())
                    .into_owned()
                    .collect()
            })
            .unwrap_or_default();
        Ok(Self {
            request,
            format,
            json,
            form,
            query,
        })
    }

    /// A field's value: an empty form field is an absent one (an `Option` field the client
    /// left out, as some clients send it).
    fn raw(&self, at: At, name: &str) -> Result<Option<String>, RequestError> {
        Ok(self
            .sent(at, name)?
            .filter(|v| at != At::Form || !v.is_empty()))
    }

    /// The value as sent, an empty one too: what a constant is checked against.
    fn sent(&self, at: At, name: &str) -> Result<Option<String>, RequestError> {
        // A header sent twice (whatever the case of its name) is refused like a repeated
        // parameter below: a proxy in front may have read the other one.
        let header = |name: &str| -> Result<Option<String>, RequestError> {
            let mut values = self.request.headers().get_all(name).iter();
            let Some(value) = values.next() else {
                return Ok(None);
            };
            if values.next().is_some() {
                return Err(RequestError(format!("header `{name}` is repeated")));
            }
            // Read as UTF-8, not as visible ASCII only: the client writes any text it holds
            // (an access token beyond ASCII travels in `Authorization`), and its bytes go as
            // they are; only bytes that are not UTF-8 are no text. The whitespace around a
            // value is HTTP's, spaces and tabs (RFC 9110 section 5.5), not all of Unicode's.
            std::str::from_utf8(value.as_bytes())
                .map(|v| Some(v.trim_matches(HTTP_WHITESPACE).to_owned()))
                .map_err(|_| RequestError(format!("header `{name}` is not text")))
        };
        // RFC 6749 section 3.1: a parameter sent more than once is a malformed request, not
        // a choice between its values.
        let find = |pairs: &[(String, String)]| {
            let mut found = pairs.iter().filter(|(k, _)| k == name).map(|(_, v)| v);
            let first = found.next().cloned();
            match found.next() {
                Some(_) => Err(RequestError(format!("parameter `{name}` is repeated"))),
                None => Ok(first),
            }
        };
        // So is one sent in both the query and a form body (which some servers merge).
        let once = |other: &[(String, String)]| match other.iter().any(|(k, _)| k == name) {
            true => Err(RequestError(format!(
                "parameter `{name}` is sent in both the query and the body"
            ))),
            false => Ok(()),
        };
        Ok(match at {
            At::Header => header(name)?,
            At::Query => {
                once(&self.form)?;
                find(&self.query)?
            }
            At::Form => {
                once(&self.query)?;
                find(&self.form)?
            }
            At::Bearer => {
                let Some(value) = header(http::header::AUTHORIZATION.as_str())? else {
                    return Ok(None);
                };
                let token = value
                    .split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token.trim_matches(HTTP_WHITESPACE).to_owned());
                Some(
                    token.ok_or_else(|| {
                        RequestError("`Authorization` is not a bearer token".into())
                    })?,
                )
            }
            At::BasicUser | At::BasicPassword => {
                let Some(value) = header(http::header::AUTHORIZATION.as_str())? else {
                    return Ok(None);
                };
                let credentials = BasicCredentials::from_header(&value)
                    .ok_or_else(|| RequestError("`Authorization` is not HTTP Basic".into()))?;
                Some(if at == At::BasicUser {
                    credentials.user
                } else {
                    credentials.password.expose_secret().to_owned()
                })
            }
        })
    }

    /// A required text field, read with `parse` (its type's [`TextValue::from_text`]).
    pub fn text<T>(
        &self,
        at: At,
        name: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<T, RequestError> {
        self.text_opt(at, name, parse)?
            .ok_or_else(|| RequestError(format!("missing {}", describe(at, name))))
    }

    /// An optional text field.
    pub fn text_opt<T>(
        &self,
        at: At,
        name: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<Option<T>, RequestError> {
        match self.raw(at, name)? {
            None => Ok(None),
            Some(raw) => parse(&raw).map(Some).ok_or_else(|| {
                RequestError(format!("{} has an invalid value", describe(at, name)))
            }),
        }
    }

    /// A required body field of a flattened group: JSON or form, as the request's.
    pub fn body<T: DeserializeOwned>(
        &self,
        name: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<T, RequestError> {
        self.body_opt(name, parse)?
            .ok_or_else(|| RequestError(format!("missing body field `{name}`")))
    }

    /// An optional body field of a flattened group.
    pub fn body_opt<T: DeserializeOwned>(
        &self,
        name: &str,
        parse: fn(&str) -> Option<T>,
    ) -> Result<Option<T>, RequestError> {
        match self.format {
            BodyFormat::Json => self.json_opt(name),
            BodyFormat::Form => self.text_opt(At::Form, name, parse),
        }
    }

    /// A required JSON body field.
    pub fn json<T: DeserializeOwned>(&self, name: &str) -> Result<T, RequestError> {
        self.json_opt(name)?
            .ok_or_else(|| RequestError(format!("missing body field `{name}`")))
    }

    /// An optional JSON body field (absent or `null`).
    pub fn json_opt<T: DeserializeOwned>(&self, name: &str) -> Result<Option<T>, RequestError> {
        match self.json.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => serde_json::from_value(value.clone())
                .map(Some)
                .map_err(|_| RequestError(format!("body field `{name}` has an invalid value"))),
        }
    }

    /// Checks a constant: `at == None` is the body. An empty constant (`value = ""`) is
    /// sent as `name=`, and read so.
    pub fn expect(&self, at: Option<At>, name: &str, expected: &str) -> Result<(), RequestError> {
        let found = match at {
            Some(at) => self.sent(at, name)?,
            None if self.format == BodyFormat::Form => self.sent(At::Form, name)?,
            None => get_path(&self.json, name).and_then(|v| v.as_str().map(str::to_owned)),
        };
        match found {
            Some(found) if found == expected => Ok(()),
            Some(_) => Err(RequestError(format!(
                "{} must be `{expected}`",
                describe_constant(at, name)
            ))),
            None => Err(RequestError(format!(
                "missing {}",
                describe_constant(at, name)
            ))),
        }
    }
}

/// The whitespace HTTP strips around a header's value (RFC 9110 section 5.5).
const HTTP_WHITESPACE: [char; 2] = [' ', '\t'];

fn describe(at: At, name: &str) -> String {
    match at {
        At::Header => format!("header `{name}`"),
        At::Query => format!("query parameter `{name}`"),
        At::Form => format!("body field `{name}`"),
        At::Bearer => "bearer `Authorization`".into(),
        At::BasicUser | At::BasicPassword => "HTTP Basic `Authorization`".into(),
    }
}

fn describe_constant(at: Option<At>, name: &str) -> String {
    at.map(|at| describe(at, name))
        .unwrap_or_else(|| format!("body field `{name}`"))
}

/// Deserializes from any JSON and fails on an object that names a key twice, at any depth
/// (escapes decoded: `"a"` and `"\u0061"` are one key).
struct NoRepeatedKeys;

/// Whether the JSON `body` repeats a key in one of its objects (false if it is not JSON).
pub(crate) fn repeats_a_key(body: &[u8]) -> bool {
    serde_json::from_slice::<NoRepeatedKeys>(body)
        .is_err_and(|e| e.classify() == serde_json::error::Category::Data)
}

impl<'de> serde::Deserialize<'de> for NoRepeatedKeys {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(NoRepeatedKeys)
    }
}

impl<'de> serde::de::Visitor<'de> for NoRepeatedKeys {
    type Value = NoRepeatedKeys;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, _: bool) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_i64<E>(self, _: i64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_u64<E>(self, _: u64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_f64<E>(self, _: f64) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_str<E>(self, _: &str) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_unit<E>(self) -> Result<Self, E> {
        Ok(self)
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self, A::Error> {
        while seq.next_element::<NoRepeatedKeys>()?.is_some() {}
        Ok(self)
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self, A::Error> {
        let mut seen = std::collections::HashSet::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if !seen.insert(key) {
                return Err(serde::de::Error::custom("a repeated key"));
            }
            map.next_value::<NoRepeatedKeys>()?;
        }
        Ok(self)
    }
}

/// Inserts `value` at a dotted path (`result.resultStatus`), creating objects on the way.
pub fn insert_path(map: &mut Map<String, Value>, path: &str, value: Value) {
    match path.split_once('.') {
        None => {
            map.insert(path.to_owned(), value);
        }
        Some((head, rest)) => {
            let child = map
                .entry(head.to_owned())
                .or_insert_with(|| Value::Object(Map::new()));
            if !child.is_object() {
                *child = Value::Object(Map::new());
            }
            if let Value::Object(child) = child {
                insert_path(child, rest, value);
            }
        }
    }
}

fn get_path<'v>(map: &'v Map<String, Value>, path: &str) -> Option<&'v Value> {
    match path.split_once('.') {
        None => map.get(path),
        Some((head, rest)) => match map.get(head)? {
            Value::Object(child) => get_path(child, rest),
            _ => None,
        },
    }
}
