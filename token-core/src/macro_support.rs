//! Runtime support for the code `#[token_endpoint]` generates, re-exported from `__private`.
//! Not a public API: names and signatures change with the macro.
#![allow(missing_docs)]

use crate::oauth::BasicCredentials;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};
use time::OffsetDateTime;

pub use crate::codec::{
    AccessTokenField, Endpoint, ErrorResponse, FieldGroup, FromContext, RefusalReason,
    RequestContext, RequestError, SignedRequestError, SigningKey, TokenResponse,
};
pub use crate::error::{EndpointError, ErrorKind};
pub use crate::expiry::{ExpiresIn, Iso8601, UnixMillis, UnixMillisText, UnixTime, jwt_exp};
pub use crate::secret::{AccessToken, AuthCode, ClientSecret, RefreshToken};
pub use crate::sign::{self, RequestSignature};
pub use crate::token_set::{NoExtras, TokenSet};

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
/// [`RefreshEndpoint`](crate::RefreshEndpoint) reads from the group's fields, against the
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
/// `(&SecretProbe(&self.field)).collect_if_secret(&mut out)` with both traits in scope;
/// [`IsSecret`] on `SecretProbe<T>` wins when `T: SecretType`, else [`NotSecret`] on
/// `&SecretProbe<T>` applies).
pub struct SecretProbe<'a, T: ?Sized>(pub &'a T);

pub trait IsSecret<'a> {
    fn collect_if_secret(&self, out: &mut Vec<&'a str>);
}

impl<'a, T: SecretType + ?Sized> IsSecret<'a> for SecretProbe<'a, T> {
    fn collect_if_secret(&self, out: &mut Vec<&'a str>) {
        self.0.collect_secrets(out);
    }
}

pub trait NotSecret<'a> {
    fn collect_if_secret(&self, out: &mut Vec<&'a str>);
}

impl<'a, T: ?Sized> NotSecret<'a> for &SecretProbe<'a, T> {
    fn collect_if_secret(&self, _out: &mut Vec<&'a str>) {}
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
            error: None,
        }
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

    /// A JSON body field.
    pub fn json<T: Serialize + ?Sized>(&mut self, name: &'static str, value: &T) {
        match serde_json::to_value(value) {
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

    pub fn finish(self, base_url: &url::Url) -> Result<http::Request<Vec<u8>>, EndpointError> {
        if let Some(error) = self.error {
            return Err(error);
        }
        let mut url = url::Url::parse(&format!(
            "{}{}",
            base_url.as_str().trim_end_matches('/'),
            self.path
        ))
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
            BodyFormat::Json if !self.json.is_empty() => {
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
        for (name, value) in &self.headers {
            let value = http::HeaderValue::from_str(value).map_err(|_| {
                EndpointError::Encode(format!(
                    "the value of header `{name}` is not valid header text"
                ))
            })?;
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
        let mut json = Map::new();
        let mut form = Vec::new();
        match format {
            BodyFormat::Json if !blank => match serde_json::from_slice::<Value>(body) {
                Ok(Value::Object(map)) => json = map,
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

    fn raw(&self, at: At, name: &str) -> Result<Option<String>, RequestError> {
        let header = |name: &str| -> Result<Option<String>, RequestError> {
            match self.request.headers().get(name) {
                None => Ok(None),
                Some(value) => value
                    .to_str()
                    .map(|v| Some(v.trim().to_owned()))
                    .map_err(|_| RequestError(format!("header `{name}` is not text"))),
            }
        };
        let find = |pairs: &[(String, String)]| {
            pairs
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        };
        Ok(match at {
            At::Header => header(name)?,
            At::Query => find(&self.query),
            At::Form => find(&self.form).filter(|v| !v.is_empty()),
            At::Bearer => {
                let Some(value) = header(http::header::AUTHORIZATION.as_str())? else {
                    return Ok(None);
                };
                let token = value
                    .split_once(' ')
                    .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
                    .map(|(_, token)| token.trim().to_owned());
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

    /// Checks a constant: `at == None` is the body.
    pub fn expect(&self, at: Option<At>, name: &str, expected: &str) -> Result<(), RequestError> {
        let found = match at {
            Some(at) => self.raw(at, name)?,
            None if self.format == BodyFormat::Form => self.raw(At::Form, name)?,
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

// ---- FromContext sources -------------------------------------------------------------

/// A required value from the context, converted into the field's type.
pub fn required<T: ?Sized + ToOwned, U: From<T::Owned>>(
    value: Option<&T>,
    what: &str,
) -> Result<U, EndpointError> {
    value.map(|v| U::from(v.to_owned())).ok_or_else(|| {
        EndpointError::Encode(format!(
            "the request needs a {what} and the session has none"
        ))
    })
}

/// An optional value from the context, converted into the field's type.
pub fn optional<T: ?Sized + ToOwned, U: From<T::Owned>>(value: Option<&T>) -> Option<U> {
    value.map(|v| U::from(v.to_owned()))
}

/// The error of a source the context lacks (`what` names it).
pub fn missing_source(what: &str) -> EndpointError {
    EndpointError::Encode(format!(
        "the request needs a {what} and the session has none"
    ))
}

/// How a `now_*` source writes the time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeFormat {
    UnixSeconds,
    UnixMillis,
    Rfc3339,
}

/// The context's time as the field `what` takes it; an error naming the field when the
/// context has no time (`RequestContext::with_now`).
pub fn timestamp<T: TextValue>(
    now: Option<OffsetDateTime>,
    format: TimeFormat,
    what: &str,
) -> Result<T, EndpointError> {
    let now = now.ok_or_else(|| {
        EndpointError::Encode(format!(
            "the request needs the current time for `{what}`: build its context `with_now(cx.now())`"
        ))
    })?;
    let text = match format {
        TimeFormat::UnixSeconds => now.unix_timestamp().to_string(),
        TimeFormat::UnixMillis => (now.unix_timestamp_nanos() / 1_000_000).to_string(),
        TimeFormat::Rfc3339 => now
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|_| {
                EndpointError::Encode(format!("the time for `{what}` cannot be written"))
            })?,
    };
    T::from_text(&text).ok_or_else(|| {
        EndpointError::Encode(format!("the time for `{what}` does not fit its type"))
    })
}

/// Client side: signs the encoded request with its declared signature.
pub fn sign_request(
    signature: Option<RequestSignature>,
    request: &mut http::Request<Vec<u8>>,
    key: &ClientSecret,
) -> Result<(), EndpointError> {
    match signature {
        Some(signature) => signature.sign(request, key),
        None => Ok(()),
    }
}

/// Server side: checks the request's declared signature.
pub fn verify_request(
    signature: Option<RequestSignature>,
    request: &http::Request<Vec<u8>>,
    key: &ClientSecret,
) -> Result<(), crate::sign::SignatureError> {
    match signature {
        Some(signature) => signature.verify(request, key),
        None => Ok(()),
    }
}

/// Whether a group's `wires` hold one that goes where `at` and `name` go: the same body
/// field (`At::Form` stands for the body, JSON or form), query parameter or header (in any
/// case), or the same part of `Authorization` (a bearer token and HTTP Basic are both
/// `Authorization`).
pub const fn wires_have(wires: &[(At, &str)], at: At, name: &str) -> bool {
    let mut i = 0;
    while i < wires.len() {
        if same_place(wires[i].0, wires[i].1, at, name) {
            return true;
        }
        i += 1;
    }
    false
}

/// Whether two groups write to the same place.
pub const fn wires_clash(a: &[(At, &str)], b: &[(At, &str)]) -> bool {
    let mut i = 0;
    while i < a.len() {
        if wires_have(b, a[i].0, a[i].1) {
            return true;
        }
        i += 1;
    }
    false
}

const fn credential(at: At) -> bool {
    matches!(at, At::Bearer | At::BasicUser | At::BasicPassword)
}

const fn same_place(a: At, a_name: &str, b: At, b_name: &str) -> bool {
    if credential(a) || credential(b) {
        // Bearer beside anything in `Authorization`, or the same half of Basic twice.
        return credential(a)
            && credential(b)
            && (matches!(a, At::Bearer) || matches!(b, At::Bearer) || a as u8 == b as u8);
    }
    if a as u8 != b as u8 {
        return false;
    }
    let (x, y) = (a_name.as_bytes(), b_name.as_bytes());
    if x.len() != y.len() {
        return false;
    }
    let header = matches!(a, At::Header);
    let mut i = 0;
    while i < x.len() {
        let (p, q) = if header {
            (x[i].to_ascii_lowercase(), y[i].to_ascii_lowercase())
        } else {
            (x[i], y[i])
        };
        if p != q {
            return false;
        }
        i += 1;
    }
    true
}

/// What `decode_request` answers for a signed request.
pub fn unverified() -> RequestError {
    RequestError("the request is signed: decode it with `decode_signed_request` and its key".into())
}

/// A fresh UUIDv4 (Maya's `Request-Reference-No`).
pub fn fresh_uuid<U: From<String>>() -> U {
    U::from(uuid::Uuid::new_v4().to_string())
}

// ---- responses and errors ------------------------------------------------------------

/// Reads a JSON body whatever its content type; the reason never quotes the body's strings
/// (they may be secrets).
pub fn decode_json<T: DeserializeOwned>(body: &[u8]) -> Result<T, String> {
    serde_json::from_slice(body).map_err(|e| unquote(&e.to_string()))
}

/// Reads a success answer so that no odd field other than the tokens costs the tokens: the
/// body must be a JSON object (whatever its content type), and so must the object under
/// `envelope` when one is declared (`{"code":0,"data":{...}}`); a duplicate key is resolved
/// by its last value; an expiry field its type cannot read (`-5`, `1e300`, `"NaN"`, an
/// object) is read as `null` (an unknown expiry), with a warning naming the field, never its
/// value. The reason of an error never quotes the body's strings.
pub fn decode_answer_json<T: DeserializeOwned>(
    body: &[u8],
    envelope: Option<&str>,
    expiry_fields: &[(&str, ReadsAs)],
) -> Result<T, String> {
    let mut value: Value = decode_json(body)?;
    if let Some(envelope) = envelope {
        let Value::Object(outer) = &mut value else {
            return Err("expected a JSON object".into());
        };
        value = match outer.remove(envelope) {
            Some(inner @ Value::Object(_)) => inner,
            Some(_) => return Err(format!("expected a JSON object in `{envelope}`")),
            None => return Err(format!("the answer has no `{envelope}` object")),
        };
    }
    let Value::Object(map) = &mut value else {
        return Err("expected a JSON object".into());
    };
    for (name, reads) in expiry_fields {
        if let Some(field) = map.get_mut(*name)
            && !field.is_null()
            && !reads(field)
        {
            tracing::warn!(
                field = *name,
                "the provider's answer has an invalid expiry in `{name}`; the tokens are kept and this expiry is treated as unknown"
            );
            *field = Value::Null;
        }
    }
    serde_json::from_value(value).map_err(|e| unquote(&e.to_string()))
}

/// Whether a JSON value reads as some field type: [`reads_as::<T>`](reads_as).
pub type ReadsAs = fn(&Value) -> bool;

/// Whether `value` reads as a `T`.
pub fn reads_as<T: DeserializeOwned>(value: &Value) -> bool {
    T::deserialize(value).is_ok()
}

/// An expiry instant read from the field `name`, kept inside
/// [`EARLIEST`](crate::expiry::EARLIEST)..=[`LATEST`](crate::expiry::LATEST) so that later
/// arithmetic cannot overflow; a warning names the field when its instant was out of range.
pub fn bounded_expiry(at: Option<OffsetDateTime>, name: &str) -> Option<OffsetDateTime> {
    bounded(at, name)
}

fn bounded(at: Option<OffsetDateTime>, name: &str) -> Option<OffsetDateTime> {
    let at = at?;
    let kept = crate::expiry::plausible(at);
    if kept != Some(at) {
        tracing::warn!(
            field = name,
            "the provider's answer has an out-of-range expiry in `{name}`; it is treated as {}",
            if kept.is_some() {
                "the latest expiry"
            } else {
                "unknown"
            }
        );
    }
    kept
}

fn unquote(message: &str) -> String {
    // serde_json quotes offending string values (`invalid type: string "..."`); field names
    // are in backticks and survive.
    let mut out = String::with_capacity(message.len());
    let mut inside = false;
    for ch in message.chars() {
        if ch == '"' {
            if !inside {
                out.push_str("\"…\"");
            }
            inside = !inside;
        } else if !inside {
            out.push(ch);
        }
    }
    out
}

/// Writes `value` as JSON, inside `envelope` if given, plus constant fields at dotted paths
/// (from the top of the answer, outside the envelope).
pub fn encode_json<T: Serialize>(
    value: &T,
    envelope: Option<&str>,
    constants: &[(&str, Value)],
) -> Vec<u8> {
    if constants.is_empty() {
        // Straight from the struct, so fields keep their declared order.
        let inner = serde_json::to_vec(value).unwrap_or_else(|_| b"null".to_vec());
        let Some(envelope) = envelope else {
            return inner;
        };
        let mut out = b"{".to_vec();
        out.extend(serde_json::to_vec(envelope).unwrap_or_default());
        out.push(b':');
        out.extend(inner);
        out.push(b'}');
        return out;
    }
    let mut value = serde_json::to_value(value).unwrap_or(Value::Null);
    if let Some(envelope) = envelope {
        let mut outer = Map::new();
        outer.insert(envelope.to_owned(), value);
        value = Value::Object(outer);
    }
    if !constants.is_empty() {
        if !value.is_object() {
            value = Value::Object(Map::new());
        }
        if let Value::Object(map) = &mut value {
            for (path, constant) in constants {
                insert_path(map, path, constant.clone());
            }
        }
    }
    serde_json::to_vec(&value).unwrap_or_default()
}

/// Reads an error answer (inside `envelope` if given); `None` when the body is not one.
///
/// The code under `code_field` decides first: absent, `null`, `""` or one of
/// `success_codes` (compared as text, so `0` matches `0` and `"0"`) is not an error, whatever
/// else the body holds (`{"error": "", "access_token": ...}`, `{"code": 0, "data": ...}`).
pub fn decode_error_json<T: DeserializeOwned>(
    body: &[u8],
    envelope: Option<&str>,
    code_field: &str,
    success_codes: &[&str],
) -> Option<T> {
    let mut value: Value = serde_json::from_slice(body).ok()?;
    if let Some(envelope) = envelope {
        value = value.get_mut(envelope)?.take();
    }
    let code = value.as_object_mut()?.get_mut(code_field)?;
    let text = match code {
        Value::Null => return None,
        Value::String(text) => text.clone(),
        // Only whole numbers are codes (`1.5`, `1e30` are not).
        Value::Number(number) if number.is_i64() || number.is_u64() => number.to_string(),
        // A code of no type a code has: the body is not this error.
        _ => return None,
    };
    if text.is_empty() || success_codes.contains(&text.as_str()) {
        return None;
    }
    // Every code type reads text: `String` and the generated enums alike.
    *code = Value::String(text);
    serde_json::from_value(value).ok()
}

/// Whether the success answer `R` declares, at the top of the answer, the field that holds
/// the error `E`'s code while `E` has no rule telling a success code from an error code:
/// then every success answer carrying that field would be read as an error. Evaluated at
/// compile time for each request, which names both.
pub const fn code_field_trap<R: TokenResponse, E: ErrorResponse>() -> bool {
    let Some(code) = E::CODE_PATH else {
        return false;
    };
    if E::SUCCESS_RULE {
        return false;
    }
    let paths = R::ANSWER_PATHS;
    let mut i = 0;
    while i < paths.len() {
        if same_text(paths[i], code) {
            return true;
        }
        i += 1;
    }
    false
}

const fn same_text(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// A result envelope's status `S`: the answer is a success, not an error.
pub fn is_success(result_status: Option<String>) -> bool {
    result_status.is_some_and(|s| s.trim().eq_ignore_ascii_case("S"))
}

/// The kind of an error answer, by [`crate::codec::classify_answer`].
pub fn classify(
    result_status: Option<String>,
    code_kind: Option<ErrorKind>,
    on_status: &[(u16, ErrorKind)],
    status: http::StatusCode,
) -> ErrorKind {
    crate::codec::classify_answer(status, result_status.as_deref(), code_kind, on_status)
}

/// The status an error answer is sent with: its own field, its code's, the endpoint default.
pub fn error_status(field: Option<u16>, code: Option<u16>, default: u16) -> http::StatusCode {
    http::StatusCode::from_u16(field.or(code).unwrap_or(default))
        .unwrap_or(http::StatusCode::BAD_REQUEST)
}

/// An error code: a generated enum with a catch-all, or a plain `String`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an error code",
    label = "the `#[token(code)]` field's type",
    note = "use `String`, or an enum annotated `#[token_endpoint(error_code)]` (its codes may be integers: `#[token(code = 40030)]`)"
)]
pub trait ErrorCode: Sized {
    /// Whether the code is written as a JSON number (`{"errcode": 40030}`). Any code is read
    /// from a string or an integer.
    const NUMERIC: bool = false;
    /// The code as the provider writes it (`invalid_grant`, `40030`).
    fn as_code(&self) -> String;
    /// The code read from its text; an unknown code lands in the catch-all.
    fn from_code(code: &str) -> Self;
    /// The kind this code means, if it decides one.
    fn kind(&self) -> Option<ErrorKind>;
    /// The HTTP status this code is sent with (server side), if it has one.
    fn status(&self) -> Option<u16>;
    /// The code that answers `reason`, if one declares it.
    fn for_refusal(reason: RefusalReason) -> Option<Self> {
        let _ = reason;
        None
    }
    /// The code and HTTP status that answer `reason`: the error struct's own declaration
    /// (`refusal(invalid_refresh_token, code = "...", status = 401)`), else the variant that
    /// declares it, trying each [`RefusalReason::fallback`]; else the reason's name as the
    /// code with [`RefusalReason::status`]. A `None` status leaves it to the code's.
    fn answer_refusal(
        reason: RefusalReason,
        declared: &[(RefusalReason, Option<&str>, Option<u16>)],
    ) -> (Self, Option<u16>) {
        let mut at = Some(reason);
        while let Some(this) = at {
            if let Some((_, code, status)) = declared.iter().find(|(r, ..)| *r == this) {
                let code = code
                    .map(Self::from_code)
                    .or_else(|| Self::for_refusal(this))
                    .unwrap_or_else(|| Self::from_code(this.name()));
                return (code, *status);
            }
            if let Some(code) = Self::for_refusal(this) {
                return (code, None);
            }
            at = this.fallback();
        }
        (Self::from_code(reason.name()), Some(reason.status()))
    }
}

impl ErrorCode for String {
    fn as_code(&self) -> String {
        self.clone()
    }
    fn from_code(code: &str) -> Self {
        code.to_owned()
    }
    fn kind(&self) -> Option<ErrorKind> {
        None
    }
    fn status(&self) -> Option<u16> {
        None
    }
}

pub fn serialize_code<C: ErrorCode, S: serde::Serializer>(
    code: &C,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    let text = code.as_code();
    match text.parse::<i64>() {
        Ok(number) if C::NUMERIC => serializer.serialize_i64(number),
        _ => serializer.serialize_str(&text),
    }
}

/// Reads a code written as a string or an integer; any other JSON type is not a code.
pub fn deserialize_code<'de, C: ErrorCode, D: serde::Deserializer<'de>>(
    deserializer: D,
) -> Result<C, D::Error> {
    #[derive(serde::Deserialize)]
    #[serde(untagged)]
    enum Code {
        Text(String),
        Signed(i64),
        Unsigned(u64),
    }
    let text = match <Code as serde::Deserialize>::deserialize(deserializer)? {
        Code::Text(text) => text,
        Code::Signed(n) => n.to_string(),
        Code::Unsigned(n) => n.to_string(),
    };
    Ok(C::from_code(&text))
}

/// A text field that may be absent: `String` or `Option<String>`.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not a text field",
    label = "expected `String` or `Option<String>`"
)]
pub trait TextSlot {
    /// The text, if any.
    fn get_text(&self) -> Option<String>;
    /// The field holding `text` (an empty `String` for `None`).
    fn from_text(text: Option<String>) -> Self;
}

impl TextSlot for String {
    fn get_text(&self) -> Option<String> {
        Some(self.clone())
    }
    fn from_text(text: Option<String>) -> Self {
        text.unwrap_or_default()
    }
}

impl TextSlot for Option<String> {
    fn get_text(&self) -> Option<String> {
        self.clone()
    }
    fn from_text(text: Option<String>) -> Self {
        text
    }
}

/// An HTTP status carried in an error body (Paymentsgate `statusCode`).
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an HTTP status field",
    label = "expected an integer or `Option` of one"
)]
pub trait StatusField {
    /// The status, if the field holds a valid one.
    fn get_status(&self) -> Option<u16>;
    /// The field holding `status` (server side).
    fn from_status(status: u16) -> Self;
}

macro_rules! status_field {
    ($($ty:ty),*) => {$(
        impl StatusField for $ty {
            fn get_status(&self) -> Option<u16> {
                u16::try_from(*self).ok()
            }
            fn from_status(status: u16) -> Self {
                Self::from(status)
            }
        }
        impl StatusField for Option<$ty> {
            fn get_status(&self) -> Option<u16> {
                self.and_then(|s| u16::try_from(s).ok())
            }
            fn from_status(status: u16) -> Self {
                Some(<$ty>::from(status))
            }
        }
    )*};
}
status_field!(u16, u32, u64, i32, i64);

/// An expiry as a provider sends it: relative seconds, UNIX seconds or milliseconds, or ISO
/// 8601.
#[diagnostic::on_unimplemented(
    message = "`{Self}` is not an expiry",
    label = "expected `ExpiresIn`, `UnixTime`, `UnixMillis`, `UnixMillisText`, `Iso8601` or `Option` of one",
    note = "these types are in `token_core::expiry`"
)]
pub trait ExpiryField {
    /// The absolute instant, relative forms counted from `now`; `None` when unknown.
    fn instant(&self, now: OffsetDateTime) -> Option<OffsetDateTime>;
    /// The field for the instant `at` (server side), relative forms counted from `now`.
    fn from_instant(at: Option<OffsetDateTime>, now: OffsetDateTime) -> Self;
    /// The instant as a refresh token's expiry: like [`instant`](Self::instant), except
    /// that a relative lifetime of zero seconds means the refresh token does not expire
    /// (Keycloak's `refresh_expires_in: 0` for offline tokens).
    fn refresh_instant(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.instant(now)
    }
}

impl ExpiryField for ExpiresIn {
    fn instant(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.at(now)
    }
    fn refresh_instant(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        match self.0 {
            Some(0) => None,
            _ => self.at(now),
        }
    }
    fn from_instant(at: Option<OffsetDateTime>, now: OffsetDateTime) -> Self {
        at.map(|at| ExpiresIn::until(at, now)).unwrap_or_default()
    }
}

/// The absolute forms: the instant as sent.
macro_rules! absolute_expiry {
    ($($ty:ty),*) => {$(
        impl ExpiryField for $ty {
            fn instant(&self, _: OffsetDateTime) -> Option<OffsetDateTime> {
                Some(self.0)
            }
            fn from_instant(at: Option<OffsetDateTime>, now: OffsetDateTime) -> Self {
                Self(at.unwrap_or(now))
            }
        }
    )*};
}
absolute_expiry!(UnixTime, Iso8601, UnixMillis, UnixMillisText);

impl<T: ExpiryField> ExpiryField for Option<T> {
    fn instant(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.as_ref().and_then(|t| t.instant(now))
    }
    fn from_instant(at: Option<OffsetDateTime>, now: OffsetDateTime) -> Self {
        at.map(|at| T::from_instant(Some(at), now))
    }
    fn refresh_instant(&self, now: OffsetDateTime) -> Option<OffsetDateTime> {
        self.as_ref().and_then(|t| t.refresh_instant(now))
    }
}

/// The access token's expiry: the field's, else (with `jwt_expiry`) the JWT `exp` claim
/// (kept in range by [`jwt_exp`]).
pub fn access_expiry(
    field: Option<OffsetDateTime>,
    token: &AccessToken,
    jwt: bool,
) -> Option<OffsetDateTime> {
    field.or_else(|| {
        if jwt {
            jwt_exp(token.expose_secret())
        } else {
            None
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_reasons_never_quote_body_strings() {
        let reason = decode_json::<Map<String, Value>>(br#""RT-SECRET""#).unwrap_err();
        assert!(!reason.contains("RT-SECRET"), "{reason}");
    }

    #[test]
    fn constants_nest_at_dotted_paths() {
        let body = encode_json(
            &Map::new(),
            None,
            &[
                ("result.resultStatus", Value::from("S")),
                ("result.resultCode", Value::from("SUCCESS")),
            ],
        );
        assert_eq!(
            body,
            br#"{"result":{"resultCode":"SUCCESS","resultStatus":"S"}}"#
        );
    }
}
