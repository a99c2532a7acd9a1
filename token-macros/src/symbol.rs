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

/// Where an attribute key is written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Place {
    /// `#[token_endpoint(post = "...", ...)]` on a request struct.
    Request,
    /// `#[token_endpoint(response, ...)]` on a response struct.
    Response,
    /// `#[token_endpoint(error, ...)]` on an error struct.
    Error,
    /// `#[token_endpoint(error_code, ...)]` on an error-code enum.
    ErrorCode,
    /// `#[token_endpoint(extras, ...)]` on a typed extras struct.
    Extras,
    /// `#[token(...)]` on a field of a request struct.
    RequestField,
    /// `#[token(...)]` on a field of a response struct.
    ResponseField,
    /// `#[token(...)]` on a field of an error struct.
    ErrorField,
    /// `#[token(...)]` on a variant of an error-code enum.
    Variant,
    /// `#[token(...)]` on a field of an extras struct.
    ExtrasField,
}

impl Place {
    /// Where this is, in words that name the attribute to use.
    pub fn describe(self) -> &'static str {
        match self {
            Place::Request => "on a request struct (`#[token_endpoint(post = \"/path\", ...)]`)",
            Place::Response => "on a response struct (`#[token_endpoint(response, ...)]`)",
            Place::Error => "on an error struct (`#[token_endpoint(error, ...)]`)",
            Place::ErrorCode => "on an error-code enum (`#[token_endpoint(error_code, ...)]`)",
            Place::Extras => "on an extras struct (`#[token_endpoint(extras, ...)]`)",
            Place::ExtrasField => "in `#[token(...)]` on a field of an extras struct",
            Place::RequestField => "in `#[token(...)]` on a field of a request struct",
            Place::ResponseField => "in `#[token(...)]` on a field of a response struct",
            Place::ErrorField => "in `#[token(...)]` on a field of an error struct",
            Place::Variant => "in `#[token(...)]` on a variant of an error-code enum",
        }
    }
}

/// Every key: name, form, place.
pub const KEYS: &[(&str, Form, Place)] = &[
    // request struct
    ("post", Form::Str, Place::Request),
    ("get", Form::Str, Place::Request),
    ("put", Form::Str, Place::Request),
    ("json", Form::Flag, Place::Request),
    ("form", Form::Flag, Place::Request),
    ("response", Form::Path, Place::Request),
    ("error", Form::Path, Place::Request),
    ("config", Form::Path, Place::Request),
    ("rename_all", Form::Str, Place::Request),
    ("header", Form::List, Place::Request),
    ("body", Form::List, Place::Request),
    ("query", Form::List, Place::Request),
    ("sign", Form::List, Place::Request),
    ("extras", Form::Path, Place::Request),
    ("provider", Form::Str, Place::Request),
    // response struct
    ("response", Form::Flag, Place::Response),
    ("rename_all", Form::Str, Place::Response),
    ("extras", Form::Path, Place::Response),
    ("jwt_expiry", Form::Flag, Place::Response),
    ("envelope", Form::Str, Place::Response),
    ("body", Form::List, Place::Response),
    // error struct
    ("error", Form::Flag, Place::Error),
    ("rename_all", Form::Str, Place::Error),
    ("envelope", Form::Str, Place::Error),
    ("status", Form::Int, Place::Error),
    ("on_status", Form::List, Place::Error),
    ("success_codes", Form::List, Place::Error),
    // error-code enum
    ("error_code", Form::Flag, Place::ErrorCode),
    ("rename_all", Form::Str, Place::ErrorCode),
    // extras struct
    ("extras", Form::Flag, Place::Extras),
    ("rename_all", Form::Str, Place::Extras),
    ("rename", Form::Str, Place::ExtrasField),
    ("keep", Form::Flag, Place::ExtrasField),
    // request fields
    ("body", Form::Flag, Place::RequestField),
    ("header", Form::Flag, Place::RequestField),
    ("query", Form::Flag, Place::RequestField),
    ("bearer", Form::Flag, Place::RequestField),
    ("basic_user", Form::Flag, Place::RequestField),
    ("basic_password", Form::Flag, Place::RequestField),
    ("rename", Form::Str, Place::RequestField),
    ("from", Form::Source, Place::RequestField),
    ("signing_key", Form::Flag, Place::RequestField),
    // response fields
    ("access_token", Form::Flag, Place::ResponseField),
    ("refresh_token", Form::Flag, Place::ResponseField),
    ("expiry", Form::Flag, Place::ResponseField),
    ("refresh_expiry", Form::Flag, Place::ResponseField),
    ("token_type", Form::Flag, Place::ResponseField),
    ("scope", Form::Flag, Place::ResponseField),
    ("extra", Form::Flag, Place::ResponseField),
    ("extras", Form::Flag, Place::ResponseField),
    ("rename", Form::Str, Place::ResponseField),
    // error fields
    ("code", Form::Flag, Place::ErrorField),
    ("message", Form::Flag, Place::ErrorField),
    ("result_status", Form::Flag, Place::ErrorField),
    ("http_status", Form::Flag, Place::ErrorField),
    ("rename", Form::Str, Place::ErrorField),
    // error-code variants
    ("code", Form::Str, Place::Variant),
    ("code", Form::Int, Place::Variant),
    ("kind", Form::Path, Place::Variant),
    ("status", Form::Int, Place::Variant),
    ("other", Form::Flag, Place::Variant),
    ("refusal", Form::Path, Place::Variant),
    ("refusal", Form::List, Place::Variant),
    // error struct, for a `String` code
    ("refusal", Form::List, Place::Error),
];

/// Keys inside `header(...)`, `body(...)`, `query(...)` constants.
pub const CONSTANT_KEYS: &[&str] = &["name", "value"];
/// Keys inside an error struct's `refusal(<reason>, ...)`, after the reason.
pub const REFUSAL_KEYS: &[&str] = &["code", "status"];
/// Keys inside `on_status(...)`.
pub const ON_STATUS_KEYS: &[&str] = &["status", "kind"];

/// The error kinds a code or status maps to.
pub const KINDS: &[(&str, &str)] = &[
    ("reauth_required", "ReauthRequired"),
    ("transient", "Transient"),
    ("outcome_unknown", "OutcomeUnknown"),
    ("misconfigured", "Misconfigured"),
    ("rejected", "Rejected"),
];

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
    "config.<field>",
    "extras.<field>",
    "value(\"<name>\")",
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
