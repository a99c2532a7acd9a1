//! Parsing the attribute vocabulary: `#[token_endpoint(...)]` on the item and `#[token(...)]`
//! on its fields and variants, into typed values that keep their tokens for spans.
//!
//! Every problem is pushed to [`Errors`] and parsing goes on, so one build shows them all.

use proc_macro2::{Delimiter, Group, Span, TokenStream, TokenTree};
use quote::ToTokens;
use syn::punctuated::Punctuated;
use syn::{Expr, Ident, Lit, LitInt, LitStr, Member, Meta, Token, Type};

use crate::case::{RULES, RenameRule};
use crate::symbol::{
    self, BodyFormat, Form, ItemKind, Kind, Method, Place, Refusal, RoleName, SessionValue,
};

/// The error collector: every phase pushes here, expansion reads the combination.
#[derive(Default)]
pub struct Errors(Vec<syn::Error>);

impl Errors {
    pub fn push(&mut self, error: syn::Error) {
        self.0.push(error);
    }

    pub fn at(&mut self, tokens: impl ToTokens, message: impl std::fmt::Display) {
        self.0.push(syn::Error::new_spanned(tokens, message));
    }

    pub fn span(&mut self, span: Span, message: impl std::fmt::Display) {
        self.0.push(syn::Error::new(span, message));
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn finish(self) -> Option<syn::Error> {
        self.0.into_iter().reduce(|mut all, e| {
            all.combine(e);
            all
        })
    }
}

/// A value with the key that introduced it (for spans).
#[derive(Clone)]
pub struct Keyed<T> {
    pub key: Ident,
    pub value: T,
}

/// A constant `header(name = "...", value = "...")`, `body(...)` or `query(...)`; a
/// response's `body(...)` constant may be an integer (`value = 0`).
pub struct Constant {
    pub name: LitStr,
    pub value: Code,
}

/// A code or constant written as a string or an integer literal, as its text on the wire.
#[derive(Clone)]
pub struct Code {
    /// The text: the string, or the integer in decimal (`-1`, `40030`).
    pub text: String,
    /// Whether it was written as an integer.
    pub numeric: bool,
    /// The literal, for spans.
    pub tokens: TokenStream,
}

/// `on_status(status = 401, kind = reauth_required)`.
pub struct OnStatus {
    pub status: u16,
    pub kind: Keyed<Kind>,
}

/// A refusal named in a declaration, with its name's token for spans.
#[derive(Clone)]
pub struct RefusalName {
    pub ident: Ident,
    pub refusal: Refusal,
}

/// An error struct's `refusal(invalid_refresh_token, code = "...", status = 401)`.
pub struct StructRefusal {
    pub name: RefusalName,
    pub code: Option<LitStr>,
    pub status: Option<u16>,
    /// The `status` key, for spans.
    pub status_key: Option<Ident>,
}

/// Where a request field's value comes from in `FromContext`.
#[derive(Clone)]
pub enum Source {
    /// `refresh_token`, `access_token`, `auth_code`, `code_verifier`: the session's secrets.
    Session(Keyed<SessionValue>),
    /// `uuid`: a fresh UUIDv4.
    Uuid,
    /// `now_unix`, `now_unix_ms`, `now_rfc3339`: the context's clock.
    Now(Timestamp),
    /// `config.a.b`
    Config(Vec<Member>),
    /// `extras.a`: the session's typed extras.
    Extras(Vec<Member>),
    /// `value("name")`: a value the provider adds to the context.
    Value(LitStr),
}

/// How a `now_*` source writes the time.
#[derive(Clone, Copy)]
pub enum Timestamp {
    UnixSeconds,
    UnixMillis,
    Rfc3339,
    /// `now_datetime("+08:00")`: `yyyy-MM-dd HH:mm:ss` at this UTC offset, in seconds.
    DateTime(i32),
    /// `now_rfc3339("+07:00")`: `yyyy-MM-ddTHH:mm:ss+07:00`, whole seconds at this UTC
    /// offset, in seconds.
    Rfc3339At(i32),
}

/// `sign(...)` on a request: the declared signature.
pub struct Signature {
    /// The `sign` key, for spans.
    pub key: Ident,
    pub algorithm: Option<(Algorithm, Ident)>,
    /// Each part with its tokens, for spans.
    pub parts: Vec<(SignPart, TokenStream)>,
    pub separator: Option<LitStr>,
    pub encoding: Option<(SignEncoding, Ident)>,
    pub into: Option<(SlotKind, LitStr)>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Algorithm {
    HmacSha256,
    RsaSha256,
}

#[derive(Clone, PartialEq, Eq)]
pub enum SignPart {
    Method,
    Path,
    Timestamp,
    SortedParams,
    /// `sorted_params(pair = "=", join = "&")`: the sorted parameters, each name, `pair`,
    /// value, joined by `join`.
    SortedPairs(String, String),
    Body,
    /// `query("partner_id")`: the value of one named parameter, as it travels.
    Param(SlotKind, String),
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SignEncoding {
    HexLower,
    HexUpper,
    Base64,
}

/// Where a signature (or a timestamp) travels.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum SlotKind {
    Query,
    Body,
    Header,
}

/// The item-level attribute.
pub struct TopAttrs {
    pub kind: ItemKind,
    /// `post = "/path"`: the method, its key, and the path.
    pub method: Option<(Keyed<Method>, LitStr)>,
    /// `json` or `form`.
    pub format: Option<Keyed<BodyFormat>>,
    pub response: Option<Keyed<Type>>,
    pub error: Option<Keyed<Type>>,
    pub config: Option<Keyed<Type>>,
    pub extras: Option<Keyed<Type>>,
    /// `declare_extras = Name` on a response: the extras struct the macro declares from the
    /// response's fields with no other role.
    pub declare_extras: Option<Keyed<Ident>>,
    /// `provider = "name"` on a request: the provider's refresh endpoint.
    pub provider: Option<LitStr>,
    /// `issue` on a request: the provider's grant with no user (client credentials), which
    /// the manager issues with; the key, for spans.
    pub issue: Option<Ident>,
    pub rename_all: Option<RenameRule>,
    pub jwt_expiry: bool,
    pub envelope: Option<LitStr>,
    pub status: Option<u16>,
    /// `success_codes(...)` on an error: the codes that mean success.
    pub success_codes: Option<Keyed<Vec<Code>>>,
    pub headers: Vec<Constant>,
    pub bodies: Vec<Constant>,
    pub queries: Vec<Constant>,
    pub on_status: Vec<OnStatus>,
    /// `sign(...)` on a request.
    pub signature: Option<Signature>,
    /// An error struct's `refusal(...)` declarations.
    pub refusals: Vec<StructRefusal>,
    /// Whether a key could not be read (reported already): rules about missing keys then
    /// stay quiet, so one mistake gives one error.
    pub unread: bool,
}

/// `#[token(...)]` on a field of an item whose fields take the roles `R`.
pub struct FieldAttrs<R> {
    /// The role key (`body`, `header`, `access_token`, `code`...), at most one.
    pub role: Option<Keyed<R>>,
    pub rename: Option<LitStr>,
    pub from: Option<Keyed<Source>>,
    /// `window = seconds` on a `from = now_*` request field: how far from the server's
    /// clock its time may be.
    pub window: Option<Keyed<u64>>,
    /// `keep` on a response field that `declare_extras` makes an extras field: kept from
    /// the session when an answer has none.
    pub keep: Option<Ident>,
    /// `client_id` on a request field read `from = config.*`: the value names the client
    /// (`RefreshEndpoint::client_id`).
    pub client_id: Option<Ident>,
}

/// `#[token(...)]` on a variant.
#[derive(Default)]
pub struct VariantAttrs {
    pub code: Option<Code>,
    pub kind: Option<Keyed<Kind>>,
    pub status: Option<u16>,
    /// `retry_after = 60`: the seconds a transient code asks to wait before another call.
    pub retry_after: Option<Keyed<u64>>,
    pub other: Option<Ident>,
    /// `refusal = name` or `refusal(a, b)`.
    pub refusals: Vec<RefusalName>,
}

/// One `key`, `key = value` or `key(...)` entry.
struct Entry {
    key: Ident,
    meta: Meta,
}

fn entries(tokens: TokenStream, errors: &mut Errors) -> Vec<Entry> {
    parsed_entries(tokens, errors).unwrap_or_default()
}

/// The entries, or `None` when the tokens are not `key`, `key = value` or `key(...)`
/// separated by commas (`post = ,`): the parser's one error, at the spot, is reported.
fn parsed_entries(tokens: TokenStream, errors: &mut Errors) -> Option<Vec<Entry>> {
    let parser = Punctuated::<Meta, Token![,]>::parse_terminated;
    let metas = match syn::parse::Parser::parse2(parser, ungroup(tokens)) {
        Ok(metas) => metas,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    let mut out = Vec::new();
    for meta in metas {
        match meta.path().get_ident() {
            Some(key) => out.push(Entry {
                key: key.clone(),
                meta,
            }),
            None => errors.at(
                meta.path(),
                "expected a single key such as `rename`, not a path",
            ),
        }
    }
    Some(out)
}

/// The tokens with every invisible group opened: a `macro_rules!` macro passes its `$ty`,
/// `$path` and `$lit:literal` fragments in such groups, which read as what they hold (their
/// tokens keep their spans).
fn ungroup(tokens: TokenStream) -> TokenStream {
    tokens
        .into_iter()
        .flat_map(|tree| match tree {
            TokenTree::Group(g) if g.delimiter() == Delimiter::None => ungroup(g.stream()),
            TokenTree::Group(g) => {
                let mut open = Group::new(g.delimiter(), ungroup(g.stream()));
                open.set_span(g.span());
                TokenStream::from(TokenTree::Group(open))
            }
            other => TokenStream::from(other),
        })
        .collect()
}

fn form_of(meta: &Meta) -> Vec<Form> {
    match meta {
        Meta::Path(_) => vec![Form::Flag],
        Meta::List(_) => vec![Form::List],
        Meta::NameValue(nv) => match &nv.value {
            Expr::Lit(lit) => match &lit.lit {
                Lit::Str(_) => vec![Form::Str],
                Lit::Int(_) => vec![Form::Int],
                _ => vec![],
            },
            Expr::Unary(syn::ExprUnary {
                op: syn::UnOp::Neg(_),
                expr,
                ..
            }) if matches!(
                &**expr,
                Expr::Lit(syn::ExprLit {
                    lit: Lit::Int(_),
                    ..
                })
            ) =>
            {
                vec![Form::Int]
            }
            Expr::Path(_) => vec![Form::Path, Form::Source],
            Expr::Field(_) | Expr::Call(_) => vec![Form::Source],
            _ => vec![],
        },
    }
}

/// Checks that `entry` is a known key, allowed in `place`, in a form it takes. Returns the
/// form when it is.
fn check(entry: &Entry, place: Place, what: &str, errors: &mut Errors) -> Option<Form> {
    let name = entry.key.to_string();
    let allowed = symbol::forms_in(&name, place);
    if allowed.is_empty() {
        let elsewhere = symbol::places_of(&name);
        if elsewhere.is_empty() {
            errors.at(
                &entry.key,
                format!(
                    "unknown {what} attribute `{name}`, expected one of {}{}",
                    symbol::expected_in(place),
                    symbol::did_you_mean(&name, symbol::keys_in(place)),
                ),
            );
        } else {
            let wheres: Vec<&str> = elsewhere.iter().map(|p| p.describe()).collect();
            errors.at(
                &entry.key,
                format!(
                    "`{name}` is not allowed {}; it belongs {}",
                    place.describe(),
                    wheres.join(", or ")
                ),
            );
        }
        return None;
    }
    let found = form_of(&entry.meta);
    match allowed.iter().find(|f| found.contains(f)) {
        Some(form) => Some(*form),
        None => {
            let forms: Vec<String> = allowed.iter().map(|f| f.example(&name)).collect();
            errors.at(
                &entry.meta,
                format!("`{name}` is written {}", forms.join(" or ")),
            );
            None
        }
    }
}

fn value_of(meta: &Meta) -> Option<&Expr> {
    match meta {
        Meta::NameValue(nv) => Some(&nv.value),
        _ => None,
    }
}

fn lit_str(meta: &Meta) -> Option<LitStr> {
    match value_of(meta) {
        Some(Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        })) => Some(s.clone()),
        _ => None,
    }
}

fn lit_int(meta: &Meta) -> Option<LitInt> {
    match value_of(meta) {
        Some(Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        })) => Some(i.clone()),
        _ => None,
    }
}

/// A number of seconds above zero (`window = 7200`); `None` (and an error at it) otherwise.
fn seconds(meta: &Meta, errors: &mut Errors) -> Option<u64> {
    let lit = lit_int(meta)?;
    match lit.base10_parse::<u64>() {
        Ok(n) if n > 0 => Some(n),
        _ => {
            errors.at(&lit, "a number of seconds above zero, such as `7200`");
            None
        }
    }
}

fn path_type(meta: &Meta, errors: &mut Errors) -> Option<Type> {
    let expr = value_of(meta)?;
    match syn::parse2::<Type>(expr.to_token_stream()) {
        Ok(ty) => Some(ty),
        Err(e) => {
            errors.push(e);
            None
        }
    }
}

/// A code written `"text"`, `123` or `-1`; `None` (and an error at `expr`) otherwise.
fn code(expr: &Expr, errors: &mut Errors) -> Option<Code> {
    let tokens = expr.to_token_stream();
    let integer = |lit: &LitInt, negative: bool, errors: &mut Errors| {
        let text = if negative {
            format!("-{}", lit.base10_digits())
        } else {
            lit.base10_digits().to_owned()
        };
        match text.parse::<i64>() {
            Ok(n) => Some(n.to_string()),
            Err(_) => {
                errors.at(expr, "an integer code fits in an `i64`");
                None
            }
        }
    };
    let (text, numeric) = match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Str(s), ..
        }) => (s.value(), false),
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(i), ..
        }) => (integer(i, false, errors)?, true),
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr: inner,
            ..
        }) => match &**inner {
            Expr::Lit(syn::ExprLit {
                lit: Lit::Int(i), ..
            }) => (integer(i, true, errors)?, true),
            _ => return code_error(expr, errors),
        },
        _ => return code_error(expr, errors),
    };
    Some(Code {
        text,
        numeric,
        tokens,
    })
}

/// A variant's discriminant as its code: an integer (`= 40030`, `= -1`) and nothing else.
/// One given through a `macro_rules!` fragment (`= $code`) reads as if written out.
pub fn discriminant_code(expr: &Expr, errors: &mut Errors) -> Option<Code> {
    let opened = syn::parse2::<Expr>(ungroup(expr.to_token_stream()));
    let expr = opened.as_ref().unwrap_or(expr);
    let integer = match expr {
        Expr::Lit(syn::ExprLit {
            lit: Lit::Int(_), ..
        }) => true,
        Expr::Unary(syn::ExprUnary {
            op: syn::UnOp::Neg(_),
            expr: inner,
            ..
        }) => matches!(
            &**inner,
            Expr::Lit(syn::ExprLit {
                lit: Lit::Int(_),
                ..
            })
        ),
        _ => false,
    };
    if !integer {
        errors.at(
            expr,
            "a discriminant is the variant's integer code, such as `InvalidRefreshToken = 40030`; a string code is `#[token(code = \"...\")]`, or the variant's name with `rename_all`",
        );
        return None;
    }
    code(expr, errors)
}

fn code_error(expr: &Expr, errors: &mut Errors) -> Option<Code> {
    errors.at(
        expr,
        "expected a code: a string or an integer, such as `0`, `-1` or `\"0\"`",
    );
    None
}

/// `success_codes(0, "0", "SUCCESS")`: at least one code.
fn success_codes(meta: &Meta, errors: &mut Errors) -> Option<Vec<Code>> {
    let Meta::List(list) = meta else { return None };
    let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
    let exprs = match syn::parse::Parser::parse2(parser, list.tokens.clone()) {
        Ok(exprs) => exprs,
        Err(e) => {
            errors.push(e);
            return None;
        }
    };
    if exprs.is_empty() {
        errors.at(
            meta,
            "`success_codes(...)` lists the codes that mean success, such as `success_codes(0)`",
        );
        return None;
    }
    let codes: Vec<Option<Code>> = exprs.iter().map(|e| code(e, errors)).collect();
    codes.into_iter().collect()
}

/// An HTTP status written `status = <integer>`; an error at the value otherwise.
fn status_value(meta: &Meta, errors: &mut Errors) -> Option<u16> {
    match lit_int(meta) {
        Some(lit) => http_status(&lit, errors),
        None => {
            errors.at(
                value_of(meta).map_or_else(|| meta.to_token_stream(), |v| v.to_token_stream()),
                "expected an HTTP status between 100 and 599",
            );
            None
        }
    }
}

fn http_status(lit: &LitInt, errors: &mut Errors) -> Option<u16> {
    match lit.base10_parse::<u16>() {
        Ok(status) if (100..=599).contains(&status) => Some(status),
        _ => {
            errors.at(lit, "expected an HTTP status between 100 and 599");
            None
        }
    }
}

fn error_kind(meta: &Meta, errors: &mut Errors) -> Option<Keyed<Kind>> {
    let ident = match value_of(meta) {
        Some(Expr::Path(p)) => p.path.get_ident().cloned(),
        _ => None,
    };
    match ident.and_then(|key| Kind::parse(&key.to_string()).map(|value| Keyed { key, value })) {
        Some(kind) => Some(kind),
        None => {
            let at = value_of(meta)
                .map(|v| v.to_token_stream())
                .unwrap_or_else(|| meta.to_token_stream());
            let written = at.to_string();
            errors.at(
                at,
                format!(
                    "unknown error kind, expected one of {}{}",
                    Kind::expected(),
                    symbol::did_you_mean(&written, Kind::ALL.map(|(n, _)| n))
                ),
            );
            None
        }
    }
}

fn rename_rule(meta: &Meta, errors: &mut Errors) -> Option<RenameRule> {
    let lit = lit_str(meta)?;
    match RenameRule::parse(&lit.value()) {
        Some(rule) => Some(rule),
        None => {
            let names: Vec<&str> = RULES.iter().map(|(n, _)| *n).collect();
            errors.at(
                &lit,
                format!(
                    "unknown casing `{}`, expected one of {}{}",
                    lit.value(),
                    symbol::list(&names),
                    symbol::did_you_mean(&lit.value(), names.iter().copied())
                ),
            );
            None
        }
    }
}

fn source(meta: &Meta, errors: &mut Errors) -> Option<Source> {
    let expr = value_of(meta)?;
    let names: Vec<&str> = symbol::SOURCES.to_vec();
    // A typo of a source's name (`refresh_tokne`, `now_unixms(...)`) is suggested.
    let written = match expr {
        Expr::Path(p) => p.path.get_ident(),
        Expr::Call(call) => match &*call.func {
            Expr::Path(f) => f.path.get_ident(),
            _ => None,
        },
        _ => None,
    }
    .map(ToString::to_string);
    let fail = |errors: &mut Errors| {
        // A source's name written in a wrong form (`value(app_token)`) is no typo.
        let hint = match written.as_deref() {
            Some(w) if !names.iter().any(|n| n.split('(').next() == Some(w)) => {
                symbol::did_you_mean(w, names.iter().map(|n| n.split('(').next().unwrap_or(n)))
            }
            _ => String::new(),
        };
        errors.at(
            expr,
            format!(
                "unknown value source, expected one of {}{hint}",
                symbol::list(&names)
            ),
        );
        None
    };
    match expr {
        Expr::Path(p) => {
            let Some(ident) = p.path.get_ident() else {
                return fail(errors);
            };
            let name = ident.to_string();
            if let Some(value) = SessionValue::parse(&name) {
                return Some(Source::Session(Keyed {
                    key: ident.clone(),
                    value,
                }));
            }
            let source = match name.as_str() {
                "uuid" => Source::Uuid,
                "now_unix" => Source::Now(Timestamp::UnixSeconds),
                "now_unix_ms" => Source::Now(Timestamp::UnixMillis),
                "now_rfc3339" => Source::Now(Timestamp::Rfc3339),
                _ => return fail(errors),
            };
            Some(source)
        }
        Expr::Call(call) => match (&*call.func, call.args.first()) {
            (
                Expr::Path(f),
                Some(Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(name),
                    ..
                })),
            ) if f.path.is_ident("value") && call.args.len() == 1 => {
                Some(Source::Value(name.clone()))
            }
            (
                Expr::Path(f),
                Some(Expr::Lit(syn::ExprLit {
                    lit: Lit::Str(offset),
                    ..
                })),
            ) if (f.path.is_ident("now_datetime") || f.path.is_ident("now_rfc3339"))
                && call.args.len() == 1 =>
            {
                let at = if f.path.is_ident("now_datetime") {
                    Timestamp::DateTime
                } else {
                    Timestamp::Rfc3339At
                };
                match utc_offset(&offset.value()) {
                    Some(seconds) => Some(Source::Now(at(seconds))),
                    None => {
                        errors.at(
                            offset,
                            format!(
                                "`{}` is not a UTC offset: write it `+08:00` or `-05:30`",
                                offset.value()
                            ),
                        );
                        None
                    }
                }
            }
            _ => fail(errors),
        },
        Expr::Field(_) => {
            let mut members = Vec::new();
            let mut current = expr;
            while let Expr::Field(field) = current {
                members.push(field.member.clone());
                current = &field.base;
            }
            members.reverse();
            match current {
                Expr::Path(p) if p.path.is_ident("config") => Some(Source::Config(members)),
                Expr::Path(p) if p.path.is_ident("extras") && members.len() == 1 => {
                    Some(Source::Extras(members))
                }
                _ => fail(errors),
            }
        }
        _ => fail(errors),
    }
}

/// `+08:00` or `-05:30` in seconds east of UTC; `None` for anything else.
fn utc_offset(text: &str) -> Option<i32> {
    let bytes = text.as_bytes();
    let sign = match bytes.first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let digits = |range: std::ops::Range<usize>| -> Option<i32> {
        let part = text.get(range)?;
        part.bytes()
            .all(|b| b.is_ascii_digit())
            .then(|| part.parse().ok())?
    };
    if bytes.len() != 6 || bytes[3] != b':' {
        return None;
    }
    let (hours, minutes) = (digits(1..3)?, digits(4..6)?);
    (hours <= 23 && minutes <= 59).then_some(sign * (hours * 3600 + minutes * 60))
}

/// `sign(hmac_sha256, over(path, sorted_params), encoding = hex_upper, into = query("sign"))`.
/// Every mistake is reported where it stands; what is missing is reported at `sign`.
pub fn signature(key: &Ident, meta: &Meta, errors: &mut Errors) -> Signature {
    let mut out = Signature {
        key: key.clone(),
        algorithm: None,
        parts: Vec::new(),
        separator: None,
        encoding: None,
        into: None,
    };
    let mut seen = Vec::new();
    // An unknown algorithm is reported where it stands, not again as a missing one.
    let mut named_algorithm = false;
    for entry in sub_entries(meta, errors) {
        let name = entry.key.to_string();
        named_algorithm |= matches!(entry.meta, Meta::Path(_));
        let algorithm = symbol::SIGN_ALGORITHMS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, a)| *a);
        match (&entry.meta, name.as_str()) {
            (Meta::Path(_), _) => match (algorithm, &out.algorithm) {
                (Some(_), Some((_, first))) => errors.at(
                    &entry.key,
                    format!("`{name}` conflicts with `{first}`: a signature has one algorithm"),
                ),
                (Some(algorithm), None) => out.algorithm = Some((algorithm, entry.key.clone())),
                (None, _) => errors.at(
                    &entry.key,
                    format!(
                        "unknown signature algorithm `{name}`, expected one of {}",
                        symbol::list(
                            &symbol::SIGN_ALGORITHMS
                                .iter()
                                .map(|(n, _)| *n)
                                .collect::<Vec<_>>()
                        )
                    ),
                ),
            },
            (_, "over" | "encoding" | "into" | "separator")
                if !once(&mut seen, &entry.key, errors) => {}
            (Meta::List(list), "over") => out.parts = sign_parts(list, errors),
            (Meta::NameValue(_), "encoding") => {
                let ident = match value_of(&entry.meta) {
                    Some(Expr::Path(p)) => p.path.get_ident().cloned(),
                    _ => None,
                };
                let found = ident.as_ref().and_then(|i| {
                    symbol::SIGN_ENCODINGS
                        .iter()
                        .find(|(n, _)| i == n)
                        .map(|(_, e)| *e)
                });
                match (found, ident) {
                    (Some(encoding), Some(ident)) => out.encoding = Some((encoding, ident)),
                    _ => errors.at(
                        value_of(&entry.meta)
                            .map(|v| v.to_token_stream())
                            .unwrap_or_default(),
                        format!(
                            "unknown signature encoding, expected one of {}",
                            symbol::list(
                                &symbol::SIGN_ENCODINGS
                                    .iter()
                                    .map(|(n, _)| *n)
                                    .collect::<Vec<_>>()
                            )
                        ),
                    ),
                }
            }
            (Meta::NameValue(_), "separator") => match lit_str(&entry.meta) {
                Some(lit) => out.separator = Some(lit),
                None => errors.at(&entry.meta, "`separator` is written `separator = \"...\"`"),
            },
            (Meta::NameValue(_), "into") => out.into = slot(value_of(&entry.meta), errors),
            _ => errors.at(
                &entry.key,
                format!(
                    "unknown `sign(...)` key `{name}`, expected an algorithm ({}) or one of {}",
                    symbol::list(
                        &symbol::SIGN_ALGORITHMS
                            .iter()
                            .map(|(n, _)| *n)
                            .collect::<Vec<_>>()
                    ),
                    symbol::list(symbol::SIGN_KEYS)
                ),
            ),
        }
    }
    let missing: Vec<&str> = [
        (
            !named_algorithm,
            "an algorithm (`hmac_sha256` or `rsa_sha256`)",
        ),
        (
            out.parts.is_empty() && !seen.iter().any(|k| k == "over"),
            "`over(...)`, the signed parts",
        ),
        (
            out.into.is_none() && !seen.iter().any(|k| k == "into"),
            "`into = query(\"...\")` (or `body`, `header`), where the signature goes",
        ),
    ]
    .into_iter()
    .filter(|(missing, _)| *missing)
    .map(|(_, what)| what)
    .collect();
    if !missing.is_empty() {
        errors.at(key, format!("`sign(...)` needs {}", missing.join(", ")));
    }
    out
}

fn sign_parts(list: &syn::MetaList, errors: &mut Errors) -> Vec<(SignPart, TokenStream)> {
    let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
    let exprs = match syn::parse::Parser::parse2(parser, list.tokens.clone()) {
        Ok(exprs) => exprs,
        Err(e) => {
            errors.push(e);
            return Vec::new();
        }
    };
    let mut out: Vec<(SignPart, TokenStream)> = Vec::new();
    for expr in exprs {
        let named = match &expr {
            Expr::Path(p) => p.path.get_ident().and_then(|ident| {
                symbol::SIGN_PARTS
                    .iter()
                    .find(|(n, _)| ident == n)
                    .map(|(_, part)| part.clone())
            }),
            _ => None,
        };
        let part = match (named, &expr) {
            (Some(part), _) => Some(part),
            (None, Expr::Call(call)) if is_ident(&call.func, "sorted_params") => {
                match sorted_pairs(call, errors) {
                    Some(part) => Some(part),
                    None => continue,
                }
            }
            (None, Expr::Call(_)) => {
                slot_call(&expr).map(|(kind, name)| SignPart::Param(kind, name.value()))
            }
            (None, _) => None,
        };
        let sorted = |p: &SignPart| matches!(p, SignPart::SortedParams | SignPart::SortedPairs(..));
        match part {
            Some(part)
                if out
                    .iter()
                    .any(|(p, _)| *p == part || (sorted(p) && sorted(&part))) =>
            {
                errors.at(&expr, format!("duplicate signed part `{}`", written(&expr)))
            }
            Some(part) => out.push((part, expr.to_token_stream())),
            None => errors.at(
                &expr,
                format!(
                    "unknown signed part `{}`, expected one of {} or a parameter's value, `query(\"name\")`, `body(\"name\")` or `header(\"name\")`",
                    written(&expr),
                    symbol::list(&symbol::SIGN_PARTS.iter().map(|(n, _)| *n).collect::<Vec<_>>())
                ),
            ),
        }
    }
    if out.is_empty() && errors.is_empty() {
        errors.at(
            list,
            "`over(...)` lists the signed parts, such as `over(path, sorted_params)`",
        );
    }
    out
}

fn is_ident(expr: &Expr, name: &str) -> bool {
    matches!(expr, Expr::Path(p) if p.path.is_ident(name))
}

/// `sorted_params(pair = "=", join = "&")`: each key once, a string each, at least one.
fn sorted_pairs(call: &syn::ExprCall, errors: &mut Errors) -> Option<SignPart> {
    let (mut pair, mut join) = (None, None);
    let mut ok = true;
    for arg in &call.args {
        let assigned = match arg {
            Expr::Assign(assign) => match (&*assign.left, &*assign.right) {
                (
                    Expr::Path(key),
                    Expr::Lit(syn::ExprLit {
                        lit: Lit::Str(value),
                        ..
                    }),
                ) => key.path.get_ident().map(|key| (key.clone(), value.value())),
                _ => None,
            },
            _ => None,
        };
        let slot = match &assigned {
            Some((key, _)) if key == "pair" => &mut pair,
            Some((key, _)) if key == "join" => &mut join,
            _ => {
                errors.at(
                    arg,
                    "`sorted_params(...)` takes `pair = \"=\"` (what is written between a name and its value) and `join = \"&\"` (what is written between two parameters)",
                );
                ok = false;
                continue;
            }
        };
        if slot.is_some() {
            errors.at(arg, "duplicate key in `sorted_params(...)`");
            ok = false;
        }
        *slot = assigned.map(|(_, value)| value);
    }
    if ok && pair.is_none() && join.is_none() {
        errors.at(
            call,
            "`sorted_params(...)` takes `pair = \"=\"` and `join = \"&\"`; without them write `sorted_params`",
        );
        ok = false;
    }
    ok.then(|| SignPart::SortedPairs(pair.unwrap_or_default(), join.unwrap_or_default()))
}

/// A signed part as it is written (`query("name")`, without the space tokens print).
fn written(expr: &Expr) -> String {
    expr.to_token_stream().to_string().replace(" (", "(")
}

/// `query("name")`, `body("name")` or `header("name")`, or `None`.
fn slot_call(expr: &Expr) -> Option<(SlotKind, LitStr)> {
    if let Expr::Call(call) = expr
        && let Expr::Path(f) = &*call.func
        && let (
            Some(Expr::Lit(syn::ExprLit {
                lit: Lit::Str(name),
                ..
            })),
            1,
        ) = (call.args.first(), call.args.len())
    {
        let kind = match f.path.get_ident().map(Ident::to_string).as_deref() {
            Some("query") => SlotKind::Query,
            Some("body") => SlotKind::Body,
            Some("header") => SlotKind::Header,
            _ => return None,
        };
        return Some((kind, name.clone()));
    }
    None
}

/// `query("sign")`, `body("sign")` or `header("X-Sign")`.
fn slot(expr: Option<&Expr>, errors: &mut Errors) -> Option<(SlotKind, LitStr)> {
    let expr = expr?;
    let found = slot_call(expr);
    if found.is_none() {
        errors.at(
            expr,
            "expected where the signature goes: `query(\"name\")`, `body(\"name\")` or `header(\"name\")`",
        );
    }
    found
}

/// Marks `key` seen; reports a duplicate at the second one.
fn once(seen: &mut Vec<String>, key: &Ident, errors: &mut Errors) -> bool {
    let name = key.to_string();
    if seen.contains(&name) {
        errors.at(key, format!("duplicate `{name}`"));
        false
    } else {
        seen.push(name);
        true
    }
}

/// Parses the `#[token_endpoint(...)]` arguments. `None` when the item kind cannot be told.
pub fn parse_top(args: TokenStream, errors: &mut Errors) -> Option<TopAttrs> {
    // Unreadable (`post = ,`): the parser said where, and nothing else can be judged.
    let entries = parsed_entries(args, errors)?;
    // The item kind first: it decides which keys are allowed.
    let mut kind: Option<(ItemKind, Ident)> = None;
    for entry in &entries {
        let name = entry.key.to_string();
        let this = match (&entry.meta, name.as_str()) {
            (Meta::Path(_), "response") => ItemKind::Response,
            (Meta::Path(_), "error") => ItemKind::Error,
            (Meta::Path(_), "error_code") => ItemKind::ErrorCode,
            (Meta::Path(_), "extras") => ItemKind::Extras,
            (Meta::Path(_), "fields") => ItemKind::Fields,
            (Meta::Path(_), "config") => ItemKind::Config,
            (Meta::NameValue(_), "post" | "get" | "put") => ItemKind::Request,
            _ => continue,
        };
        match &kind {
            None => kind = Some((this, entry.key.clone())),
            Some((first, key)) if *first != this => {
                errors.at(
                    &entry.key,
                    format!("`{name}` conflicts with `{key}`: an item is one of a request, `response`, `error`, `extras`, `error_code`, `fields` or `config`"),
                );
                // Every other key would be judged against the wrong kind: stop here.
                return None;
            }
            Some(_) => {}
        }
    }
    let Some((kind, _)) = kind else {
        // A typo of the kind key (`psot = "/x"`, `respnse`): point at it, and say nothing
        // about the other keys, which cannot be judged without the kind.
        // A kind's own name written in another form (`extras = Type`, `config = Type` on a
        // request whose kind key is mistyped) is not the typo.
        let typo = entries.iter().find_map(|entry| {
            let name = entry.key.to_string();
            let kinds = symbol::ITEM_KINDS.iter().copied().filter(|k| *k != name);
            symbol::closest(&name, kinds).map(|kind| (entry, name, kind))
        });
        if let Some((entry, name, kind)) = typo {
            errors.at(
                &entry.key,
                format!(
                    "unknown token_endpoint attribute `{name}`; did you mean `{kind}`? The item kind is one of {}",
                    symbol::list(symbol::ITEM_KINDS)
                ),
            );
            return None;
        }
        errors.span(
            Span::call_site(),
            "expected the item kind: `post = \"/path\"` (or `get`, `put`) for a request struct, \
             `response`, `error`, `extras`, `fields` (a group of request fields), `config` (a provider's config), \
             or `error_code` (on an enum)",
        );
        return None;
    };
    let place = Place::Item(kind);
    let mut top = TopAttrs {
        kind,
        method: None,
        format: None,
        response: None,
        error: None,
        config: None,
        extras: None,
        declare_extras: None,
        provider: None,
        rename_all: None,
        jwt_expiry: false,
        issue: None,
        envelope: None,
        status: None,
        success_codes: None,
        headers: Vec::new(),
        bodies: Vec::new(),
        queries: Vec::new(),
        on_status: Vec::new(),
        signature: None,
        refusals: Vec::new(),
        unread: false,
    };
    let mut seen = Vec::new();
    for entry in &entries {
        let Some(form) = check(entry, place, "token_endpoint", errors) else {
            top.unread = true;
            continue;
        };
        let name = entry.key.to_string();
        let repeatable = form == Form::List;
        if !repeatable && !once(&mut seen, &entry.key, errors) {
            continue;
        }
        let meta = &entry.meta;
        match (name.as_str(), form) {
            ("post" | "get" | "put", _) => {
                if let Some((first, _)) = &top.method {
                    errors.at(
                        &entry.key,
                        format!(
                            "`{name}` conflicts with `{}`: a request has one method",
                            first.key
                        ),
                    );
                } else if let (Some(method), Some(path)) = (Method::parse(&name), lit_str(meta)) {
                    top.method = Some((
                        Keyed {
                            key: entry.key.clone(),
                            value: method,
                        },
                        path,
                    ));
                }
            }
            ("json" | "form", _) => {
                if let Some(first) = &top.format {
                    errors.at(
                        &entry.key,
                        format!(
                            "`{name}` conflicts with `{}`: a request has one body format",
                            first.key
                        ),
                    );
                } else {
                    top.format = Some(Keyed {
                        key: entry.key.clone(),
                        value: if name == "json" {
                            BodyFormat::Json
                        } else {
                            BodyFormat::Form
                        },
                    });
                }
            }
            ("response", Form::Path) => {
                top.response = path_type(meta, errors).map(|value| Keyed {
                    key: entry.key.clone(),
                    value,
                })
            }
            ("error", Form::Path) => {
                top.error = path_type(meta, errors).map(|value| Keyed {
                    key: entry.key.clone(),
                    value,
                })
            }
            ("config", Form::Path) => {
                top.config = path_type(meta, errors).map(|value| Keyed {
                    key: entry.key.clone(),
                    value,
                })
            }
            ("extras", _) => {
                top.extras = path_type(meta, errors).map(|value| Keyed {
                    key: entry.key.clone(),
                    value,
                })
            }
            ("declare_extras", _) => {
                top.declare_extras = path_type(meta, errors).and_then(|ty| match &ty {
                    Type::Path(path) if path.qself.is_none() => match path.path.get_ident() {
                        Some(name) => Some(Keyed {
                            key: entry.key.clone(),
                            value: name.clone(),
                        }),
                        None => {
                            errors.at(&ty, "`declare_extras` names the struct it declares here: a single name such as `Seller`, not a path");
                            None
                        }
                    },
                    _ => {
                        errors.at(&ty, "`declare_extras` names the struct it declares here: a single name such as `Seller`");
                        None
                    }
                })
            }
            ("provider", _) => top.provider = lit_str(meta),
            ("issue", _) => top.issue = Some(entry.key.clone()),
            ("rename_all", _) => top.rename_all = rename_rule(meta, errors),
            ("jwt_expiry", _) => top.jwt_expiry = true,
            ("envelope", _) => top.envelope = lit_str(meta),
            ("status", _) => top.status = status_value(meta, errors),
            ("success_codes", _) => {
                if top.success_codes.is_some() {
                    errors.at(&entry.key, "duplicate `success_codes`");
                } else if let Some(codes) = success_codes(meta, errors) {
                    top.success_codes = Some(Keyed {
                        key: entry.key.clone(),
                        value: codes,
                    });
                }
            }
            ("header" | "body" | "query", Form::List) => {
                // Only an answer's JSON body takes integer constants (`"code": 0`).
                let integers = kind == ItemKind::Response;
                if let Some(constant) = constant(meta, &name, integers, errors) {
                    match name.as_str() {
                        "header" => top.headers.push(constant),
                        "body" => top.bodies.push(constant),
                        _ => top.queries.push(constant),
                    }
                }
            }
            ("on_status", _) => {
                if let Some(on) = on_status(meta, errors) {
                    top.on_status.push(on);
                }
            }
            ("sign", _) => {
                if top.signature.is_some() {
                    errors.at(
                        &entry.key,
                        "duplicate `sign(...)`: a request has one signature",
                    );
                } else {
                    top.signature = Some(crate::attr::signature(&entry.key, meta, errors));
                }
            }
            ("refusal", _) => {
                if let Some(refusal) = struct_refusal(meta, errors) {
                    top.refusals.push(refusal);
                }
            }
            // Kind markers (`response`, `error`, `error_code` flags) carry nothing more.
            _ => {}
        }
    }
    Some(top)
}

fn sub_entries(meta: &Meta, errors: &mut Errors) -> Vec<Entry> {
    match meta {
        Meta::List(list) => entries(list.tokens.clone(), errors),
        _ => Vec::new(),
    }
}

fn constant(meta: &Meta, kind: &str, integers: bool, errors: &mut Errors) -> Option<Constant> {
    let mut name = None;
    let mut value = None;
    let mut seen = Vec::new();
    for entry in sub_entries(meta, errors) {
        let key = entry.key.to_string();
        if !symbol::CONSTANT_KEYS.contains(&key.as_str()) {
            errors.at(
                &entry.key,
                format!(
                    "unknown `{kind}(...)` key `{key}`, expected one of {}",
                    symbol::list(symbol::CONSTANT_KEYS)
                ),
            );
            continue;
        }
        if !once(&mut seen, &entry.key, errors) {
            continue;
        }
        match (lit_str(&entry.meta), key.as_str()) {
            (Some(lit), "name") => name = Some(lit),
            (_, "value") if integers && value_of(&entry.meta).is_some() => {
                if let Some(expr) = value_of(&entry.meta) {
                    value = code(expr, errors);
                }
            }
            (Some(lit), _) => {
                value = Some(Code {
                    text: lit.value(),
                    numeric: false,
                    tokens: lit.to_token_stream(),
                })
            }
            (None, _) => errors.at(&entry.meta, format!("`{key}` is written `{key} = \"...\"`")),
        }
    }
    match (name, value) {
        (Some(name), Some(value)) => Some(Constant { name, value }),
        // A key written wrongly was reported where it stands.
        _ if seen.len() == symbol::CONSTANT_KEYS.len() => None,
        _ => {
            errors.at(
                meta,
                format!("`{kind}(...)` needs both `name = \"...\"` and `value = \"...\"`"),
            );
            None
        }
    }
}

fn on_status(meta: &Meta, errors: &mut Errors) -> Option<OnStatus> {
    let mut status = None;
    let mut kind = None;
    let mut seen = Vec::new();
    for entry in sub_entries(meta, errors) {
        let key = entry.key.to_string();
        if !symbol::ON_STATUS_KEYS.contains(&key.as_str()) {
            errors.at(
                &entry.key,
                format!(
                    "unknown `on_status(...)` key `{key}`, expected one of {}",
                    symbol::list(symbol::ON_STATUS_KEYS)
                ),
            );
            continue;
        }
        if !once(&mut seen, &entry.key, errors) {
            continue;
        }
        if key == "status" {
            status = status_value(&entry.meta, errors);
        } else {
            kind = error_kind(&entry.meta, errors);
        }
    }
    match (status, kind) {
        (Some(status), Some(kind)) => Some(OnStatus { status, kind }),
        _ => {
            errors.at(
                meta,
                "`on_status(...)` needs `status = <integer>` and `kind = <error kind>`",
            );
            None
        }
    }
}

/// A refusal's name written as a bare identifier (`invalid_refresh_token`).
fn refusal_name(expr: &Expr, errors: &mut Errors) -> Option<RefusalName> {
    let ident = match expr {
        Expr::Path(p) => p.path.get_ident(),
        _ => None,
    };
    let Some(ident) = ident else {
        errors.at(
            expr,
            format!("expected a refusal, one of {}", Refusal::expected()),
        );
        return None;
    };
    let name = ident.to_string();
    match Refusal::parse(&name) {
        Some(refusal) => Some(RefusalName {
            ident: ident.clone(),
            refusal,
        }),
        None => {
            errors.at(
                ident,
                format!(
                    "unknown refusal `{name}`, expected one of {}{}",
                    Refusal::expected(),
                    symbol::did_you_mean(&name, Refusal::ALL.map(Refusal::name)),
                ),
            );
            None
        }
    }
}

/// A variant's `refusal = name` or `refusal(a, b)`.
fn variant_refusals(meta: &Meta, errors: &mut Errors) -> Vec<RefusalName> {
    let exprs: Vec<Expr> = match meta {
        Meta::NameValue(nv) => vec![nv.value.clone()],
        Meta::List(list) => {
            let parser = Punctuated::<Expr, Token![,]>::parse_terminated;
            match syn::parse::Parser::parse2(parser, list.tokens.clone()) {
                Ok(exprs) => exprs.into_iter().collect(),
                Err(e) => {
                    errors.push(e);
                    return Vec::new();
                }
            }
        }
        Meta::Path(_) => Vec::new(),
    };
    if exprs.is_empty() {
        errors.at(
            meta,
            format!(
                "`refusal` names the refusals this code answers, such as `refusal = invalid_refresh_token`; one of {}",
                Refusal::expected()
            ),
        );
    }
    exprs
        .iter()
        .filter_map(|e| refusal_name(e, errors))
        .collect()
}

/// An error struct's `refusal(<reason>, code = "...", status = 401)`.
fn struct_refusal(meta: &Meta, errors: &mut Errors) -> Option<StructRefusal> {
    let mut name = None;
    let mut code = None;
    let (mut status, mut status_key) = (None, None);
    let mut seen = Vec::new();
    for entry in sub_entries(meta, errors) {
        if let Meta::Path(path) = &entry.meta {
            if name.is_some() {
                errors.at(
                    &entry.key,
                    "`refusal(...)` declares one refusal; write one `refusal(...)` per refusal",
                );
            } else {
                name = refusal_name(&syn::parse_quote!(#path), errors);
            }
            continue;
        }
        let key = entry.key.to_string();
        if !symbol::REFUSAL_KEYS.contains(&key.as_str()) {
            errors.at(
                &entry.key,
                format!(
                    "unknown `refusal(...)` key `{key}`, expected one of {}{}",
                    symbol::list(symbol::REFUSAL_KEYS),
                    symbol::did_you_mean(&key, symbol::REFUSAL_KEYS.iter().copied()),
                ),
            );
            continue;
        }
        if !once(&mut seen, &entry.key, errors) {
            continue;
        }
        if key == "code" {
            code = lit_str(&entry.meta);
            if code.is_none() {
                errors.at(&entry.meta, "`code` is written `code = \"...\"`");
            }
        } else {
            status = status_value(&entry.meta, errors);
            status_key = Some(entry.key.clone());
        }
    }
    let Some(name) = name else {
        errors.at(
            meta,
            format!(
                "`refusal(...)` starts with the refusal it answers, such as `refusal(invalid_refresh_token, code = \"Unauthorized\", status = 401)`; one of {}",
                Refusal::expected()
            ),
        );
        return None;
    };
    Some(StructRefusal {
        name,
        code,
        status,
        status_key,
    })
}

fn token_attrs(attrs: &[syn::Attribute], errors: &mut Errors) -> Vec<Entry> {
    let mut out = Vec::new();
    for attr in attrs.iter().filter(|a| a.path().is_ident("token")) {
        match &attr.meta {
            Meta::List(list) => out.extend(entries(list.tokens.clone(), errors)),
            other => errors.at(other, "expected `#[token(...)]`"),
        }
    }
    out
}

/// Parses `#[token(...)]` on a field of an item of kind `kind`, whose fields take the roles
/// `R`.
pub fn parse_field<R: RoleName>(
    attrs: &[syn::Attribute],
    kind: ItemKind,
    errors: &mut Errors,
) -> FieldAttrs<R> {
    let place = Place::Member(kind);
    let mut out = FieldAttrs {
        role: None,
        rename: None,
        from: None,
        window: None,
        keep: None,
        client_id: None,
    };
    let mut seen = Vec::new();
    for entry in token_attrs(attrs, errors) {
        let Some(form) = check(&entry, place, "field", errors) else {
            continue;
        };
        if !once(&mut seen, &entry.key, errors) {
            continue;
        }
        let name = entry.key.to_string();
        match (name.as_str(), form) {
            ("rename", _) => out.rename = lit_str(&entry.meta),
            // An extras struct's `keep` is its role; a response field's is not.
            ("keep", _) if kind == ItemKind::Response => out.keep = Some(entry.key.clone()),
            ("client_id", _) => out.client_id = Some(entry.key.clone()),
            ("window", _) => {
                out.window = seconds(&entry.meta, errors).map(|value| Keyed {
                    key: entry.key.clone(),
                    value,
                })
            }
            ("from", _) => {
                out.from = source(&entry.meta, errors).map(|value| Keyed {
                    key: entry.key.clone(),
                    value,
                })
            }
            (_, Form::Flag) => match (&out.role, R::parse(&name)) {
                (Some(first), _) => errors.at(
                    &entry.key,
                    format!(
                        "`{name}` conflicts with `{}`: a field has one role",
                        first.key
                    ),
                ),
                (None, Some(value)) => {
                    out.role = Some(Keyed {
                        key: entry.key.clone(),
                        value,
                    })
                }
                // Every flag allowed on a field is a role of its item's kind.
                (None, None) => {}
            },
            _ => {}
        }
    }
    out
}

/// Parses `#[token(...)]` on a variant of an error-code enum.
pub fn parse_variant(attrs: &[syn::Attribute], errors: &mut Errors) -> VariantAttrs {
    let mut out = VariantAttrs::default();
    let mut seen = Vec::new();
    for entry in token_attrs(attrs, errors) {
        if check(
            &entry,
            Place::Member(ItemKind::ErrorCode),
            "variant",
            errors,
        )
        .is_none()
            || !once(&mut seen, &entry.key, errors)
        {
            continue;
        }
        match entry.key.to_string().as_str() {
            "code" => out.code = value_of(&entry.meta).and_then(|e| code(e, errors)),
            "kind" => out.kind = error_kind(&entry.meta, errors),
            "status" => out.status = status_value(&entry.meta, errors),
            "retry_after" => {
                out.retry_after = seconds(&entry.meta, errors).map(|value| Keyed {
                    key: entry.key.clone(),
                    value,
                });
            }
            "refusal" => out.refusals = variant_refusals(&entry.meta, errors),
            _ => out.other = Some(entry.key.clone()),
        }
    }
    out
}

/// Reports `#[token(...)]` where it has no meaning (on an item, or any `token` attribute
/// on a kind that takes none).
pub fn reject_token_attrs(attrs: &[syn::Attribute], why: &str, errors: &mut Errors) {
    for attr in attrs.iter().filter(|a| a.path().is_ident("token")) {
        errors.at(attr, why);
    }
}
