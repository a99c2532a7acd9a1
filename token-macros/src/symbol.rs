//! The attribute vocabulary, declared once: every key, the form it takes, and where it may
//! appear. Parsing, placement errors and "expected one of" lists all read these tables.

use crate::attr::{Algorithm, SignEncoding, SignPart};

/// The syntactic form a key takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Form {
    /// `key`
    Flag,
    /// `key = "text"`
    Str,
    /// `key = 123` (or `key = -1`)
    Int,
    /// `key = Type` or `key = ident`
    Path,
    /// `key = source` (`refresh_token`, `config.field`, ...)
    Source,
    /// `key(...)`
    List,
}

impl Form {
    /// How the form is written, for error messages.
    pub fn example(self, key: &str) -> String {
        match self {
            Form::Flag => format!("`{key}`"),
            Form::Str => format!("`{key} = \"...\"`"),
            Form::Int => format!("`{key} = <integer>`"),
            Form::Path => format!("`{key} = <path>`"),
            Form::Source => format!("`{key} = <source>`"),
            Form::List => format!("`{key}(...)`"),
        }
    }
}

/// What an annotated item is, as its `#[token_endpoint(...)]` says.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ItemKind {
    /// `post = "/path"` (or `get`, `put`): a request struct.
    Request,
    /// `response`: a success answer.
    Response,
    /// `error`: an error answer.
    Error,
    /// `error_code`: an enum of error codes.
    ErrorCode,
    /// `extras`: a typed extras struct.
    Extras,
    /// `fields`: a group of request fields that requests flatten.
    Fields,
    /// `config`: a provider's config struct, given `new` and `with_<field>`.
    Config,
}

/// Where an attribute key is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// `#[token_endpoint(...)]` on an item of this kind.
    Item(ItemKind),
    /// `#[token(...)]` on a field (a variant, for an error-code enum) of an item of this kind.
    Member(ItemKind),
}

impl Place {
    /// Where this is, in words that name the attribute to use.
    pub fn describe(self) -> &'static str {
        match self {
            Place::Item(ItemKind::Request) => {
                "on a request struct (`#[token_endpoint(post = \"/path\", ...)]`)"
            }
            Place::Item(ItemKind::Response) => {
                "on a response struct (`#[token_endpoint(response, ...)]`)"
            }
            Place::Item(ItemKind::Error) => "on an error struct (`#[token_endpoint(error, ...)]`)",
            Place::Item(ItemKind::ErrorCode) => {
                "on an error-code enum (`#[token_endpoint(error_code, ...)]`)"
            }
            Place::Item(ItemKind::Extras) => {
                "on an extras struct (`#[token_endpoint(extras, ...)]`)"
            }
            Place::Item(ItemKind::Fields) => "on a field group (`#[token_endpoint(fields, ...)]`)",
            Place::Item(ItemKind::Config) => "on a provider config (`#[token_endpoint(config)]`)",
            Place::Member(ItemKind::Request) => "in `#[token(...)]` on a field of a request struct",
            Place::Member(ItemKind::Response) => {
                "in `#[token(...)]` on a field of a response struct"
            }
            Place::Member(ItemKind::Error) => "in `#[token(...)]` on a field of an error struct",
            Place::Member(ItemKind::ErrorCode) => {
                "in `#[token(...)]` on a variant of an error-code enum"
            }
            Place::Member(ItemKind::Extras) => "in `#[token(...)]` on a field of an extras struct",
            Place::Member(ItemKind::Fields) => "in `#[token(...)]` on a field of a field group",
            Place::Member(ItemKind::Config) => "in `#[token(...)]` on a field of a provider config",
        }
    }
}

/// A field's role: the flag key in its `#[token(...)]` that says what the field is. Each
/// kind of item has its own set, so code over one kind matches its roles exhaustively.
pub trait RoleName: Copy + PartialEq + 'static {
    /// Every role, with its key.
    const ALL: &'static [(&'static str, Self)];

    /// The role named `name`.
    fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
    }

    /// The key that names this role.
    fn name(self) -> &'static str {
        Self::ALL
            .iter()
            .find(|(_, r)| *r == self)
            .map_or("", |(n, _)| *n)
    }
}

/// Where a field of a request (or of a field group) goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RequestRole {
    /// The body: the default.
    Body,
    Header,
    Query,
    /// `Authorization: Bearer <field>`.
    Bearer,
    /// The user half of `Authorization: Basic`.
    BasicUser,
    /// The password half of `Authorization: Basic`.
    BasicPassword,
    /// The key of the request's signature, never sent.
    SigningKey,
    /// A field group whose fields are written here.
    Flatten,
}

impl RoleName for RequestRole {
    const ALL: &'static [(&'static str, Self)] = &[
        ("body", Self::Body),
        ("header", Self::Header),
        ("query", Self::Query),
        ("bearer", Self::Bearer),
        ("basic_user", Self::BasicUser),
        ("basic_password", Self::BasicPassword),
        ("signing_key", Self::SigningKey),
        ("flatten", Self::Flatten),
    ];
}

/// What a field of a success answer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AnswerRole {
    AccessToken,
    RefreshToken,
    Expiry,
    RefreshExpiry,
    TokenType,
    Scope,
    /// A field of the extras type.
    Extra,
    /// The whole extras type, read from the answer's top level.
    Extras,
}

impl RoleName for AnswerRole {
    const ALL: &'static [(&'static str, Self)] = &[
        ("access_token", Self::AccessToken),
        ("refresh_token", Self::RefreshToken),
        ("expiry", Self::Expiry),
        ("refresh_expiry", Self::RefreshExpiry),
        ("token_type", Self::TokenType),
        ("scope", Self::Scope),
        ("extra", Self::Extra),
        ("extras", Self::Extras),
    ];
}

/// What a field of an error answer holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ErrorRole {
    Code,
    Message,
    /// The provider's id of the request, for its support.
    RequestId,
    ResultStatus,
    HttpStatus,
}

impl RoleName for ErrorRole {
    const ALL: &'static [(&'static str, Self)] = &[
        ("code", Self::Code),
        ("message", Self::Message),
        ("request_id", Self::RequestId),
        ("result_status", Self::ResultStatus),
        ("http_status", Self::HttpStatus),
    ];
}

/// What a field of an extras struct is, beyond an extra.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExtrasRole {
    /// Kept from the previous set when a refresh's answer has none.
    Keep,
}

impl RoleName for ExtrasRole {
    const ALL: &'static [(&'static str, Self)] = &[("keep", Self::Keep)];
}

/// A request's method.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    Post,
    Get,
    Put,
}

impl Method {
    pub const ALL: [(&'static str, Method); 3] =
        [("post", Self::Post), ("get", Self::Get), ("put", Self::Put)];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, m)| *m)
    }

    /// The `http::Method` constant.
    pub fn constant(self) -> &'static str {
        match self {
            Self::Post => "POST",
            Self::Get => "GET",
            Self::Put => "PUT",
        }
    }
}

/// A request's body format.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyFormat {
    Json,
    Form,
}

/// A session value a request field reads (`from = refresh_token`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SessionValue {
    RefreshToken,
    AccessToken,
    AuthCode,
    CodeVerifier,
}

impl SessionValue {
    pub const ALL: [(&'static str, SessionValue); 4] = [
        ("refresh_token", Self::RefreshToken),
        ("access_token", Self::AccessToken),
        ("auth_code", Self::AuthCode),
        ("code_verifier", Self::CodeVerifier),
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, v)| *v)
    }

    /// The `RequestContext` field that holds it.
    pub fn name(self) -> &'static str {
        match self {
            Self::RefreshToken => "refresh_token",
            Self::AccessToken => "access_token",
            Self::AuthCode => "auth_code",
            Self::CodeVerifier => "code_verifier",
        }
    }
}

/// The error kinds a code or status maps to: `token_core::error::ErrorKind`, one for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    ReauthRequired,
    Transient,
    OutcomeUnknown,
    Misconfigured,
    Rejected,
}

impl Kind {
    pub const ALL: [(&'static str, Kind); 5] = [
        ("reauth_required", Self::ReauthRequired),
        ("transient", Self::Transient),
        ("outcome_unknown", Self::OutcomeUnknown),
        ("misconfigured", Self::Misconfigured),
        ("rejected", Self::Rejected),
    ];

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.iter().find(|(n, _)| *n == name).map(|(_, k)| *k)
    }

    /// The `ErrorKind` variant.
    pub fn variant(self) -> &'static str {
        match self {
            Self::ReauthRequired => "ReauthRequired",
            Self::Transient => "Transient",
            Self::OutcomeUnknown => "OutcomeUnknown",
            Self::Misconfigured => "Misconfigured",
            Self::Rejected => "Rejected",
        }
    }

    /// "`reauth_required`, `transient`, ...".
    pub fn expected() -> String {
        list(&Self::ALL.map(|(n, _)| n))
    }
}

/// Every key: name, form, place.
pub const KEYS: &[(&str, Form, Place)] = &[
    // request struct
    ("post", Form::Str, Place::Item(ItemKind::Request)),
    ("get", Form::Str, Place::Item(ItemKind::Request)),
    ("put", Form::Str, Place::Item(ItemKind::Request)),
    ("json", Form::Flag, Place::Item(ItemKind::Request)),
    ("form", Form::Flag, Place::Item(ItemKind::Request)),
    ("response", Form::Path, Place::Item(ItemKind::Request)),
    ("error", Form::Path, Place::Item(ItemKind::Request)),
    ("config", Form::Path, Place::Item(ItemKind::Request)),
    ("rename_all", Form::Str, Place::Item(ItemKind::Request)),
    ("header", Form::List, Place::Item(ItemKind::Request)),
    ("body", Form::List, Place::Item(ItemKind::Request)),
    ("query", Form::List, Place::Item(ItemKind::Request)),
    ("sign", Form::List, Place::Item(ItemKind::Request)),
    ("extras", Form::Path, Place::Item(ItemKind::Request)),
    ("provider", Form::Str, Place::Item(ItemKind::Request)),
    ("issue", Form::Flag, Place::Item(ItemKind::Request)),
    // response struct
    ("response", Form::Flag, Place::Item(ItemKind::Response)),
    ("rename_all", Form::Str, Place::Item(ItemKind::Response)),
    ("extras", Form::Path, Place::Item(ItemKind::Response)),
    (
        "declare_extras",
        Form::Path,
        Place::Item(ItemKind::Response),
    ),
    ("jwt_expiry", Form::Flag, Place::Item(ItemKind::Response)),
    ("envelope", Form::Str, Place::Item(ItemKind::Response)),
    ("body", Form::List, Place::Item(ItemKind::Response)),
    // error struct
    ("error", Form::Flag, Place::Item(ItemKind::Error)),
    ("rename_all", Form::Str, Place::Item(ItemKind::Error)),
    ("envelope", Form::Str, Place::Item(ItemKind::Error)),
    ("status", Form::Int, Place::Item(ItemKind::Error)),
    ("on_status", Form::List, Place::Item(ItemKind::Error)),
    ("success_codes", Form::List, Place::Item(ItemKind::Error)),
    // error-code enum
    ("error_code", Form::Flag, Place::Item(ItemKind::ErrorCode)),
    ("rename_all", Form::Str, Place::Item(ItemKind::ErrorCode)),
    // extras struct
    ("extras", Form::Flag, Place::Item(ItemKind::Extras)),
    ("rename_all", Form::Str, Place::Item(ItemKind::Extras)),
    ("rename", Form::Str, Place::Member(ItemKind::Extras)),
    ("keep", Form::Flag, Place::Member(ItemKind::Extras)),
    // request fields
    ("body", Form::Flag, Place::Member(ItemKind::Request)),
    ("header", Form::Flag, Place::Member(ItemKind::Request)),
    ("query", Form::Flag, Place::Member(ItemKind::Request)),
    ("bearer", Form::Flag, Place::Member(ItemKind::Request)),
    ("basic_user", Form::Flag, Place::Member(ItemKind::Request)),
    (
        "basic_password",
        Form::Flag,
        Place::Member(ItemKind::Request),
    ),
    ("rename", Form::Str, Place::Member(ItemKind::Request)),
    ("from", Form::Source, Place::Member(ItemKind::Request)),
    ("window", Form::Int, Place::Member(ItemKind::Request)),
    ("signing_key", Form::Flag, Place::Member(ItemKind::Request)),
    ("client_id", Form::Flag, Place::Member(ItemKind::Request)),
    ("flatten", Form::Flag, Place::Member(ItemKind::Request)),
    // field group
    ("fields", Form::Flag, Place::Item(ItemKind::Fields)),
    ("config", Form::Path, Place::Item(ItemKind::Fields)),
    ("extras", Form::Path, Place::Item(ItemKind::Fields)),
    ("rename_all", Form::Str, Place::Item(ItemKind::Fields)),
    ("body", Form::Flag, Place::Member(ItemKind::Fields)),
    ("header", Form::Flag, Place::Member(ItemKind::Fields)),
    ("query", Form::Flag, Place::Member(ItemKind::Fields)),
    ("bearer", Form::Flag, Place::Member(ItemKind::Fields)),
    ("basic_user", Form::Flag, Place::Member(ItemKind::Fields)),
    (
        "basic_password",
        Form::Flag,
        Place::Member(ItemKind::Fields),
    ),
    ("rename", Form::Str, Place::Member(ItemKind::Fields)),
    ("from", Form::Source, Place::Member(ItemKind::Fields)),
    // response fields
    (
        "access_token",
        Form::Flag,
        Place::Member(ItemKind::Response),
    ),
    (
        "refresh_token",
        Form::Flag,
        Place::Member(ItemKind::Response),
    ),
    ("expiry", Form::Flag, Place::Member(ItemKind::Response)),
    (
        "refresh_expiry",
        Form::Flag,
        Place::Member(ItemKind::Response),
    ),
    ("token_type", Form::Flag, Place::Member(ItemKind::Response)),
    ("scope", Form::Flag, Place::Member(ItemKind::Response)),
    ("extra", Form::Flag, Place::Member(ItemKind::Response)),
    ("extras", Form::Flag, Place::Member(ItemKind::Response)),
    ("rename", Form::Str, Place::Member(ItemKind::Response)),
    ("keep", Form::Flag, Place::Member(ItemKind::Response)),
    // error fields
    ("code", Form::Flag, Place::Member(ItemKind::Error)),
    ("message", Form::Flag, Place::Member(ItemKind::Error)),
    ("request_id", Form::Flag, Place::Member(ItemKind::Error)),
    ("result_status", Form::Flag, Place::Member(ItemKind::Error)),
    ("http_status", Form::Flag, Place::Member(ItemKind::Error)),
    ("rename", Form::Str, Place::Member(ItemKind::Error)),
    // error-code variants
    ("code", Form::Str, Place::Member(ItemKind::ErrorCode)),
    ("code", Form::Int, Place::Member(ItemKind::ErrorCode)),
    ("kind", Form::Path, Place::Member(ItemKind::ErrorCode)),
    ("status", Form::Int, Place::Member(ItemKind::ErrorCode)),
    ("retry_after", Form::Int, Place::Member(ItemKind::ErrorCode)),
    ("other", Form::Flag, Place::Member(ItemKind::ErrorCode)),
    ("refusal", Form::Path, Place::Member(ItemKind::ErrorCode)),
    ("refusal", Form::List, Place::Member(ItemKind::ErrorCode)),
    // error struct, for a `String` code
    ("refusal", Form::List, Place::Item(ItemKind::Error)),
    // provider config
    ("config", Form::Flag, Place::Item(ItemKind::Config)),
];

/// Keys inside `header(...)`, `body(...)`, `query(...)` constants.
pub const CONSTANT_KEYS: &[&str] = &["name", "value"];
/// Keys inside an error struct's `refusal(<reason>, ...)`, after the reason.
pub const REFUSAL_KEYS: &[&str] = &["code", "status"];
/// Keys inside `on_status(...)`.
pub const ON_STATUS_KEYS: &[&str] = &["status", "kind"];

/// A standard refusal a code answers: `token_core::codec::RefusalReason`, one for one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    BadRequest,
    UnknownClient,
    BadSignature,
    InvalidRefreshToken,
    ExpiredRefreshToken,
    InvalidAccessToken,
    InvalidAuthCode,
    ServerError,
}

impl Refusal {
    pub const ALL: [Refusal; 8] = [
        Self::BadRequest,
        Self::UnknownClient,
        Self::BadSignature,
        Self::InvalidRefreshToken,
        Self::ExpiredRefreshToken,
        Self::InvalidAccessToken,
        Self::InvalidAuthCode,
        Self::ServerError,
    ];

    /// The name a declaration uses.
    pub fn name(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::UnknownClient => "unknown_client",
            Self::BadSignature => "bad_signature",
            Self::InvalidRefreshToken => "invalid_refresh_token",
            Self::ExpiredRefreshToken => "expired_refresh_token",
            Self::InvalidAccessToken => "invalid_access_token",
            Self::InvalidAuthCode => "invalid_auth_code",
            Self::ServerError => "server_error",
        }
    }

    /// The `RefusalReason` variant.
    pub fn variant(self) -> &'static str {
        match self {
            Self::BadRequest => "BadRequest",
            Self::UnknownClient => "UnknownClient",
            Self::BadSignature => "BadSignature",
            Self::InvalidRefreshToken => "InvalidRefreshToken",
            Self::ExpiredRefreshToken => "ExpiredRefreshToken",
            Self::InvalidAccessToken => "InvalidAccessToken",
            Self::InvalidAuthCode => "InvalidAuthCode",
            Self::ServerError => "ServerError",
        }
    }

    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|r| r.name() == name)
    }

    /// "`bad_request`, `unknown_client`, ...".
    pub fn expected() -> String {
        list(&Self::ALL.map(Self::name))
    }
}

/// The candidate closest to `name` by edit distance, when close enough to be a typo.
pub fn closest<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (distance(name, c), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Damerau-Levenshtein (optimal string alignment) distance: a swap of two neighbours
/// (`psot`) is one edit.
fn distance(a: &str, b: &str) -> usize {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut d = vec![vec![0usize; b.len() + 1]; a.len() + 1];
    for (i, row) in d.iter_mut().enumerate() {
        row[0] = i;
    }
    for (j, cell) in d[0].iter_mut().enumerate() {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut best = (d[i - 1][j] + 1)
                .min(d[i][j - 1] + 1)
                .min(d[i - 1][j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                best = best.min(d[i - 2][j - 2] + 1);
            }
            d[i][j] = best;
        }
    }
    d[a.len()][b.len()]
}

/// " (did you mean `post`?)" when `name` is a typo of one of `candidates`, else "".
pub fn did_you_mean<'a>(name: &str, candidates: impl IntoIterator<Item = &'a str>) -> String {
    closest(name, candidates)
        .map(|c| format!("; did you mean `{c}`?"))
        .unwrap_or_default()
}

/// Where a request field's value comes from in `FromContext`.
pub const SOURCES: &[&str] = &[
    "refresh_token",
    "access_token",
    "auth_code",
    "code_verifier",
    "uuid",
    "now_unix",
    "now_unix_ms",
    "now_rfc3339",
    "now_rfc3339(\"+07:00\")",
    "now_datetime(\"+08:00\")",
    "config.<field>",
    "extras.<field>",
    "value(\"<name>\")",
];

/// The names that make an error's field its code without `#[token(code)]`.
pub const ERROR_CODE_NAMES: &[&str] = &["error", "code", "errcode"];
/// The names that make an error's field its message without `#[token(message)]`.
pub const ERROR_MESSAGE_NAMES: &[&str] = &["error_description", "message", "errmsg"];
/// The names that make an error's field the provider's request id without
/// `#[token(request_id)]`.
pub const ERROR_REQUEST_ID_NAMES: &[&str] = &["request_id"];

/// The expiry types of `token_core::expiry`, by the last segment of their path as written: a
/// response field of one needs an `expiry` or `refresh_expiry` role.
pub const EXPIRY_TYPES: &[&str] = &[
    "ExpiresIn",
    "UnixTime",
    "UnixMillis",
    "UnixMillisText",
    "Iso8601",
];

/// The algorithms of `sign(...)`.
pub const SIGN_ALGORITHMS: &[(&str, Algorithm)] = &[
    ("hmac_sha256", Algorithm::HmacSha256),
    ("rsa_sha256", Algorithm::RsaSha256),
];
/// The other keys of `sign(...)`.
pub const SIGN_KEYS: &[&str] = &["over", "encoding", "into", "separator"];
/// The parts `over(...)` lists.
pub const SIGN_PARTS: &[(&str, SignPart)] = &[
    ("method", SignPart::Method),
    ("path", SignPart::Path),
    ("timestamp", SignPart::Timestamp),
    ("sorted_params", SignPart::SortedParams),
    ("body", SignPart::Body),
];
/// The encodings of a signature.
pub const SIGN_ENCODINGS: &[(&str, SignEncoding)] = &[
    ("hex_lower", SignEncoding::HexLower),
    ("hex_upper", SignEncoding::HexUpper),
    ("base64", SignEncoding::Base64),
];

/// The forms `key` takes in `place`, if any.
pub fn forms_in(key: &str, place: Place) -> Vec<Form> {
    KEYS.iter()
        .filter(|(k, _, p)| *k == key && *p == place)
        .map(|(_, f, _)| *f)
        .collect()
}

/// The places `key` is allowed in.
pub fn places_of(key: &str) -> Vec<Place> {
    let mut places: Vec<Place> = Vec::new();
    for (k, _, p) in KEYS {
        if *k == key && !places.contains(p) {
            places.push(*p);
        }
    }
    places
}

/// The keys that say what an item is.
pub const ITEM_KINDS: &[&str] = &[
    "post",
    "get",
    "put",
    "response",
    "error",
    "error_code",
    "extras",
    "fields",
    "config",
];

/// The keys allowed in `place`.
pub fn keys_in(place: Place) -> impl Iterator<Item = &'static str> {
    KEYS.iter()
        .filter(move |(_, _, p)| *p == place)
        .map(|(k, _, _)| *k)
}

/// "`a`, `b`, `c`": the keys allowed in `place`.
pub fn expected_in(place: Place) -> String {
    let mut names: Vec<&str> = Vec::new();
    for (k, _, p) in KEYS {
        if *p == place && !names.contains(k) {
            names.push(k);
        }
    }
    list(&names)
}

/// "`a`, `b`, `c`".
pub fn list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
