//! Rules that involve several attributes: one access-token field, a body format, a config
//! type for `config.*` sources, a catch-all error code... Each error points at its token.

use crate::ast::{Data, Field, InferredBy, Model, Variant, numeric_codes};
use crate::attr::{Algorithm, Errors, SignEncoding, SignPart, SlotKind, Source};
use crate::symbol::{
    AnswerRole, ErrorRole, ExtrasRole, Kind, Method, Refusal, RequestRole, RoleName, SessionValue,
};
use quote::ToTokens;

pub fn check(model: &Model, errors: &mut Errors) {
    match &model.data {
        Data::Request(fields) => {
            request(model, fields, errors);
            provider(model, fields, errors);
        }
        Data::Fields(fields) => group(model, fields, errors),
        Data::Response(fields) => {
            response(model, fields, errors);
            whole_extras(model, fields, errors);
            declared_extras(model, fields, errors);
        }
        Data::Error(fields) => error(model, fields, errors),
        Data::Extras(fields) => kept_extras(fields, errors),
        Data::ErrorCode(variants) => error_code(model, variants, errors),
        // Any named fields make a config.
        Data::Config(_) => {}
    }
}

/// `provider = "name"`: the provider's refresh endpoint, built from the context and served
/// by the sandbox, so it reads a refresh token and every field says where it comes from (a
/// flattened group's fields say so in the group, and may read the refresh token). With
/// `issue` it is the provider's grant with no user instead, and reads no refresh token.
fn provider(model: &Model, fields: &[Field<RequestRole>], errors: &mut Errors) {
    let Some(name) = &model.top.provider else {
        if let Some(issue) = &model.top.issue {
            errors.at(
                issue,
                "`issue` makes the request the provider's grant with no user, which the manager issues with: add `provider = \"name\"`",
            );
        }
        return;
    };
    if name.value().is_empty() {
        errors.at(
            name,
            "the provider's name is not empty, such as `provider = \"wechat\"`",
        );
    }
    let flattens = fields.iter().any(|f| f.goes() == RequestRole::Flatten);
    let refresh_token = fields.iter().find(|f| f.reads(SessionValue::RefreshToken));
    match (&model.top.issue, refresh_token) {
        (Some(_), Some(field)) => errors.at(
            field.ident,
            "an `issue` request is the provider's grant with no user (client credentials) and sends no refresh token: remove this field, or remove `issue` to declare the refresh endpoint",
        ),
        (None, None) if !flattens => errors.at(
            name,
            "`provider = ...` declares the refresh endpoint: one field reads `from = refresh_token` (or add `issue` for a grant with no user, such as client credentials)",
        ),
        _ => {}
    }
    let unsourced = fields
        .iter()
        .find(|f| f.attrs.from.is_none() && f.goes() != RequestRole::Flatten);
    if let Some(field) = unsourced {
        errors.at(
            field.ident,
            "`provider = ...` builds the request from the context: this field needs `from = ...`",
        );
    }
}

/// `#[token(keep)]` on an extras field: kept from the previous set when an answer lacks it,
/// which only an `Option` can say.
fn kept_extras(fields: &[Field<ExtrasRole>], errors: &mut Errors) {
    for field in fields {
        match field.role() {
            Some(ExtrasRole::Keep) if !field.optional => errors.at(
                field.ty,
                "a `keep` field is an `Option<...>`: kept from the previous set when an answer has none",
            ),
            Some(ExtrasRole::Keep) | None => {}
        }
    }
}

/// `#[token(extras)]` on a response field: the whole extras type, read from the answer's
/// top level (serde's `flatten`).
fn whole_extras(model: &Model, fields: &[Field<AnswerRole>], errors: &mut Errors) {
    let Some(field) = fields.iter().find(|f| f.role() == Some(AnswerRole::Extras)) else {
        return;
    };
    if model.top.declare_extras.is_some() {
        // `declared_extras` says what is wrong.
        return;
    }
    if model.top.extras.is_none() {
        errors.span(
            field.role_span(),
            "an `extras` field holds the extras type: add `extras = Type` to `#[token_endpoint(response, ...)]`",
        );
    }
    if let Some(extra) = fields.iter().find(|f| f.role() == Some(AnswerRole::Extra)) {
        errors.at(
            extra.ident,
            format!(
                "`extra` conflicts with the `extras` field `{}`, which holds every extra",
                field.ident
            ),
        );
    }
    if let Some(rename) = &field.attrs.rename {
        errors.at(rename, "an `extras` field has no name on the wire: its fields are read at the answer's top level");
    }
}

/// `declare_extras = Name` on a response: the extras are declared here, from its fields
/// with no other role, so not also by `extras = Type` or in an `extras` field, and there is
/// at least one; `keep` marks one of those fields, an `Option`.
fn declared_extras(model: &Model, fields: &[Field<AnswerRole>], errors: &mut Errors) {
    let declared = &model.top.declare_extras;
    if let Some(declared) = declared {
        if let Some(extras) = &model.top.extras {
            errors.at(
                &declared.key,
                format!(
                    "`declare_extras` conflicts with `{}`: the extras are declared here, from this response's fields, or by their own struct, not both",
                    extras.key
                ),
            );
        }
        if let Some(field) = fields.iter().find(|f| f.role() == Some(AnswerRole::Extras)) {
            errors.span(
                field.role_span(),
                format!(
                    "`declare_extras = {}` declares the extras from this response's fields: an `extras` field would hold them twice",
                    declared.value
                ),
            );
        }
        if !fields.iter().any(|f| f.role() == Some(AnswerRole::Extra)) {
            errors.at(
                &declared.value,
                format!(
                    "`{}` would have no field: every field of the response has a role; declare an extras field, or remove `declare_extras`",
                    declared.value
                ),
            );
        }
    }
    for field in fields {
        let Some(keep) = &field.attrs.keep else {
            continue;
        };
        if declared.is_none() {
            errors.at(
                keep,
                "`keep` marks an extras field: on a response, one that `declare_extras = Name` declares (or put it on the field of the `#[token_endpoint(extras)]` struct)",
            );
        } else if let Some(role) = field.role().filter(|r| *r != AnswerRole::Extra) {
            errors.at(
                keep,
                format!(
                    "`keep` marks an extras field, and `{}` is the `{}`",
                    field.ident,
                    role.name()
                ),
            );
        } else if !field.optional {
            errors.at(
                field.ty,
                "a `keep` field is an `Option<...>`: kept from the previous set when an answer has none",
            );
        }
    }
}

fn request(model: &Model, fields: &[Field<RequestRole>], errors: &mut Errors) {
    let top = &model.top;
    if let Some((_, path)) = &top.method
        && !path.value().starts_with('/')
    {
        errors.at(
            path,
            "the path starts with `/`, relative to the provider's base URL",
        );
    }
    if top.response.is_none() && !top.unread {
        errors.at(model.ident, "missing `response = Type` in `#[token_endpoint(...)]`: the token answer of this request");
    }
    if top.error.is_none() && !top.unread {
        errors.at(
            model.ident,
            "missing `error = Type` in `#[token_endpoint(...)]`: the error answer of this request",
        );
    }
    for constant in top.headers.iter() {
        header_name(&constant.name, errors);
    }
    client_id(model, fields, errors);
    for (field, window) in fields
        .iter()
        .filter_map(|f| Some((f, f.attrs.window.as_ref()?)))
    {
        let now = matches!(&field.attrs.from, Some(from) if matches!(from.value, Source::Now(..)));
        if !now {
            errors.at(
                &window.key,
                "`window` bounds the time a field carries: add `from = now_unix` (or `now_unix_ms`, `now_rfc3339`, `now_rfc3339(\"+07:00\")`, `now_datetime(\"+08:00\")`)",
            );
        } else if top.provider.is_none() {
            errors.at(
                &window.key,
                "`window` is checked by the sandbox serving a refresh endpoint: add `provider = \"...\"` to `#[token_endpoint(...)]`",
            );
        }
    }
    for field in fields.iter().filter(|f| f.goes() == RequestRole::Flatten) {
        if field.optional {
            errors.at(
                field.ty,
                "a flattened group is not optional: write the group's type, and make its fields `Option<...>`",
            );
        }
        if let Some(from) = &field.attrs.from {
            errors.at(
                &from.key,
                "a flattened group's fields say where their values come from: `from` goes on them",
            );
        }
    }
    if let Some((method, _)) = &top.method
        && method.value == Method::Get
    {
        get_without_body(model, fields, errors);
    }
    request_fields(model, fields, errors);
    wire_collisions(model, fields, errors);
    signature(model, fields, errors);
}

/// One thing a request writes to a named place: a field, a constant or the signature.
struct Wire<'m> {
    role: RequestRole,
    name: String,
    what: String,
    constant: bool,
    at: &'m dyn quote::ToTokens,
}

/// No two things a request writes go to one place: a constant beside a field or another
/// constant of the same name, a header in any case, the signature beside either, and,
/// in a form request, a query parameter beside a body field of the same name (the server
/// side refuses a parameter sent in both, as RFC 6749 section 3.1 does one sent twice). Its
/// own fields among themselves are checked by `request_fields`, and flattened groups where
/// the request expands.
fn wire_collisions(model: &Model, fields: &[Field<RequestRole>], errors: &mut Errors) {
    let top = &model.top;
    let form =
        matches!(&top.format, Some(format) if format.value == crate::symbol::BodyFormat::Form);
    let mut wires: Vec<Wire<'_>> = Vec::new();
    for field in fields {
        let role = field.goes();
        if matches!(
            role,
            RequestRole::Body | RequestRole::Header | RequestRole::Query
        ) {
            wires.push(Wire {
                role,
                name: field.wire.clone(),
                what: format!("field `{}`", field.ident),
                constant: false,
                at: field.ident,
            });
        }
    }
    // `bearer` and HTTP Basic write `Authorization` (one of them: `request_fields` refuses
    // both), which a header of that name would write again.
    if let Some(field) = fields.iter().find(|f| {
        matches!(
            f.goes(),
            RequestRole::Bearer | RequestRole::BasicUser | RequestRole::BasicPassword
        )
    }) {
        wires.push(Wire {
            role: RequestRole::Header,
            name: "Authorization".to_owned(),
            what: format!("`{}` field `{}`", field.goes().name(), field.ident),
            constant: true,
            at: field.ident,
        });
    }
    for (role, constants) in [
        (RequestRole::Header, &top.headers),
        (RequestRole::Query, &top.queries),
        (RequestRole::Body, &top.bodies),
    ] {
        for c in constants {
            wires.push(Wire {
                role,
                name: c.name.value(),
                what: format!("the constant `{}`", c.name.value()),
                constant: true,
                at: &c.name,
            });
        }
    }
    if let Some(sign) = &top.signature
        && let Some((kind, name)) = &sign.into
    {
        let role = match kind {
            SlotKind::Body => RequestRole::Body,
            SlotKind::Header => RequestRole::Header,
            SlotKind::Query => RequestRole::Query,
        };
        wires.push(Wire {
            role,
            name: name.value(),
            what: "the signature".to_owned(),
            constant: true,
            at: name,
        });
    }
    // A JSON body nests a dotted constant: `a.b` writes inside `a`.
    let nests = |outer: &str, inner: &str| {
        !form
            && inner
                .strip_prefix(outer)
                .is_some_and(|rest| rest.starts_with('.'))
    };
    for (i, second) in wires.iter().enumerate() {
        let first = wires[..i].iter().find(|first| {
            let crossing = form
                && matches!(
                    (first.role, second.role),
                    (RequestRole::Query, RequestRole::Body)
                        | (RequestRole::Body, RequestRole::Query)
                );
            // Two fields in one place are `request_fields`' to report.
            if !crossing && !first.constant && !second.constant {
                return false;
            }
            let same_place = first.role == second.role || crossing;
            let same_name = match second.role {
                RequestRole::Header => first.name.eq_ignore_ascii_case(&second.name),
                RequestRole::Body if first.role == RequestRole::Body => {
                    first.name == second.name
                        || nests(&first.name, &second.name)
                        || nests(&second.name, &first.name)
                }
                _ => first.name == second.name,
            };
            same_place && same_name
        });
        if let Some(first) = first {
            let place = |wire: &Wire<'_>| match wire.role {
                RequestRole::Header => format!("header `{}`", wire.name),
                RequestRole::Query => format!("query parameter `{}`", wire.name),
                _ => format!("body field `{}`", wire.name),
            };
            let message = if first.role == second.role {
                format!(
                    "{} and {} both go to {}: it would be sent twice, and the server side refuses a repeated one",
                    first.what,
                    second.what,
                    place(second)
                )
            } else {
                format!(
                    "{} goes to {} and {} to {}: a form request sends the query and the body as one set of parameters, and the server side refuses one sent in both",
                    first.what,
                    place(first),
                    second.what,
                    place(second)
                )
            };
            errors.at(second.at, message);
        }
    }
}

/// A GET request sends no body (servers and proxies ignore or refuse one): nothing of it goes
/// there, neither a field declared `body` (its fields go in the query by default), a
/// constant, the signature, nor (checked where the request expands) a flattened group's field.
fn get_without_body(model: &Model, fields: &[Field<RequestRole>], errors: &mut Errors) {
    let top = &model.top;
    for field in fields.iter().filter(|f| f.goes() == RequestRole::Body) {
        errors.span(
            field.role_span(),
            format!(
                "a GET request sends no body: remove `body` and `{}` goes in the query (a GET's fields go there), or put it in a header",
                field.ident
            ),
        );
    }
    for constant in &top.bodies {
        errors.at(
            &constant.name,
            "a GET request sends no body: make it a query constant, `query(name = ..., value = ...)`",
        );
    }
    if let Some(format) = &top.format {
        errors.at(
            &format.key,
            format!("a GET request sends no body: remove `{}`", format.key),
        );
    }
    if let Some(sign) = &top.signature
        && let Some((SlotKind::Body, name)) = &sign.into
    {
        errors.at(
            name,
            "a GET request sends no body: put the signature in the query or a header",
        );
    }
}

/// A field group: its fields follow a request's field rules, and each says where its value
/// comes from (a request's `FromContext` fills the group through the group's own).
fn group(model: &Model, fields: &[Field<RequestRole>], errors: &mut Errors) {
    request_fields(model, fields, errors);
    for field in fields.iter().filter(|f| f.attrs.from.is_none()) {
        errors.at(
            field.ident,
            "a field of a field group says where its value comes from: add `from = ...`, such as `from = config.client_id`",
        );
    }
}

/// The rules of a request's (or a group's) own fields: one field for each header, query
/// parameter, body field and credential; valid header names; sources with their types.
fn request_fields(model: &Model, fields: &[Field<RequestRole>], errors: &mut Errors) {
    let top = &model.top;
    let mut wires: Vec<(RequestRole, &str, &Field<RequestRole>)> = Vec::new();
    let mut singles: Vec<(RequestRole, &Field<RequestRole>)> = Vec::new();
    for field in fields {
        let role = field.goes();
        match role {
            RequestRole::Body | RequestRole::Header | RequestRole::Query => {
                if role == RequestRole::Header {
                    if let Some(rename) = &field.attrs.rename {
                        header_name(rename, errors);
                    } else if !is_header_name(&field.wire) {
                        errors.at(
                            field.ident,
                            format!(
                                "`{}` is not a valid header name; add `rename = \"...\"`",
                                field.wire
                            ),
                        );
                    }
                }
                // A header's name is the same in any case (the two would be sent twice).
                let same = |r: &RequestRole, w: &str| {
                    *r == role
                        && match role {
                            RequestRole::Header => w.eq_ignore_ascii_case(&field.wire),
                            _ => w == field.wire,
                        }
                };
                if let Some((_, _, first)) = wires.iter().find(|(r, w, _)| same(r, w)) {
                    errors.at(
                        field.ident,
                        format!(
                            "`{}` and `{}` both go to {} `{}`",
                            first.ident,
                            field.ident,
                            role.name(),
                            field.wire
                        ),
                    );
                }
                wires.push((role, &field.wire, field));
            }
            RequestRole::Bearer
            | RequestRole::BasicUser
            | RequestRole::BasicPassword
            | RequestRole::SigningKey
            | RequestRole::Flatten => {
                if let Some(rename) = &field.attrs.rename {
                    errors.at(
                        rename,
                        format!("`rename` has no meaning on a `{}` field", role.name()),
                    );
                }
                // A request flattens any number of groups.
                if role == RequestRole::Flatten {
                    continue;
                }
                if let Some((_, first)) = singles.iter().find(|(r, _)| *r == role) {
                    errors.span(
                        field.role_span(),
                        format!(
                            "duplicate `{}`: field `{}` already has this role",
                            role.name(),
                            first.ident
                        ),
                    );
                }
                singles.push((role, field));
            }
        }
        match field.attrs.from.as_ref().map(|from| (&from.key, &from.value)) {
            Some((key, Source::Config(_))) if top.config.is_none() => errors.at(
                key,
                "`from = config.*` needs the config type: add `config = Type` to `#[token_endpoint(...)]`",
            ),
            Some((key, Source::Extras(_))) if top.extras.is_none() => errors.at(
                key,
                "`from = extras.*` needs the session's extras type: add `extras = Type` to `#[token_endpoint(...)]`",
            ),
            _ => {}
        }
    }
    let has = |role: RequestRole| singles.iter().find(|(r, _)| *r == role).map(|(_, f)| *f);
    match (has(RequestRole::BasicUser), has(RequestRole::BasicPassword)) {
        (Some(user), None) => errors.at(
            user.ident,
            "`basic_user` needs a `basic_password` field for HTTP Basic",
        ),
        (None, Some(password)) => errors.at(
            password.ident,
            "`basic_password` needs a `basic_user` field for HTTP Basic",
        ),
        _ => {}
    }
    if let (Some(_), Some(password)) = (has(RequestRole::Bearer), has(RequestRole::BasicPassword)) {
        errors.at(
            password.ident,
            "`bearer` and HTTP Basic both set `Authorization`: keep one",
        );
    }
}

/// `client_id` marks one field, read from the config, of a refresh endpoint; never the
/// signing key.
fn client_id(model: &Model, fields: &[Field<RequestRole>], errors: &mut Errors) {
    let mut marked = fields
        .iter()
        .filter_map(|f| Some((f, f.attrs.client_id.as_ref()?)));
    let Some((field, key)) = marked.next() else {
        return;
    };
    for (_, again) in marked {
        errors.at(
            again,
            format!(
                "`client_id` is already on `{}`: one field names the client",
                field.ident
            ),
        );
    }
    if field.goes() == RequestRole::SigningKey {
        errors.at(
            key,
            "a `signing_key` is a secret and cannot name the client: put `client_id` on the field that sends the client's id",
        );
    } else if matches!(&field.attrs.from, Some(from) if !matches!(from.value, Source::Config(_))) {
        errors.at(
            key,
            "`client_id` names the client the config is for: read it `from = config.<field>`",
        );
    } else if model.top.provider.is_none() {
        errors.at(
            key,
            "`client_id` names the client of a refresh endpoint: add `provider = \"...\"` to `#[token_endpoint(...)]`",
        );
    }
}

/// `sign(...)` and its `signing_key` field go together; a signed timestamp needs one `now_*`
/// field; the signature's slot is not also a field's.
fn signature(model: &Model, fields: &[Field<RequestRole>], errors: &mut Errors) {
    let key = fields.iter().find(|f| f.goes() == RequestRole::SigningKey);
    let Some(sign) = &model.top.signature else {
        if let Some(field) = key {
            errors.span(
                field.role_span(),
                "a `signing_key` field is the key of the request's signature: add `sign(...)` to `#[token_endpoint(...)]`",
            );
        }
        return;
    };
    if key.is_none() {
        errors.at(
            &sign.key,
            "`sign(...)` needs its key: a field `#[token(signing_key, from = config.<secret>)]` of type `ClientSecret`",
        );
    }
    if let (Some((Algorithm::RsaSha256, _)), Some((encoding, ident))) =
        (&sign.algorithm, &sign.encoding)
        && *encoding != SignEncoding::Base64
    {
        errors.at(
            ident,
            "an RSA-SHA256 signature is written `encoding = base64`",
        );
    }
    let clocks: Vec<&Field<RequestRole>> = fields
        .iter()
        .filter(|f| matches!(&f.attrs.from, Some(from) if matches!(from.value, Source::Now(..))))
        .collect();
    if let Some((_, part)) = sign.parts.iter().find(|(p, _)| *p == SignPart::Timestamp) {
        match clocks.as_slice() {
            [one] if slot_of(one.goes()).is_none() => {
                errors.at(one.ident, "the signed timestamp travels in the body, a header or the query")
            }
            [_] => {}
            [] => errors.at(
                part,
                "`timestamp` signs the request's time: add a field `#[token(from = now_unix)]` (or `now_unix_ms`, `now_rfc3339`, `now_rfc3339(\"+07:00\")`, `now_datetime(\"+08:00\")`)",
            ),
            [_, second, ..] => errors.at(
                second.ident,
                "a signed `timestamp` reads one `now_*` field; this request has several",
            ),
        }
    }
    if let Some((kind, name)) = &sign.into {
        if *kind == SlotKind::Body
            && let Some((_, part)) = sign.parts.iter().find(|(p, _)| *p == SignPart::Body)
        {
            errors.at(part, "a signature that goes in the body cannot cover the body: put it in a header or the query");
        }
        if *kind == SlotKind::Header {
            header_name(name, errors);
        }
        // A field or constant in the signature's place: `wire_collisions`.
    }
    // A signed parameter is one the request sends: its own field or constant, or (checked
    // where the request expands, against their `WIRES`) a flattened group's field.
    let grouped = fields.iter().any(|f| f.goes() == RequestRole::Flatten);
    for (part, tokens) in &sign.parts {
        let SignPart::Param(kind, name) = part else {
            continue;
        };
        let place = match kind {
            SlotKind::Query => "query parameter",
            SlotKind::Body => "body field",
            SlotKind::Header => "header",
        };
        if sign
            .into
            .as_ref()
            .is_some_and(|(k, n)| k == kind && n.value() == *name)
        {
            errors.at(
                tokens,
                format!(
                    "{place} `{name}` is where the signature goes: a signature cannot cover itself"
                ),
            );
        } else if *kind == SlotKind::Body
            && name.contains('.')
            && model.top.bodies.iter().any(|c| c.name.value() == *name)
        {
            errors.at(
                tokens,
                format!("the body constant `{name}` nests (its dotted name is a path): only a top-level body field can be signed"),
            );
        } else if !grouped && !param_declared(model, fields, *kind, name) {
            let (key, constant) = match kind {
                SlotKind::Query => ("query", "query"),
                SlotKind::Body => ("body", "body"),
                SlotKind::Header => ("header", "header"),
            };
            errors.at(
                tokens,
                format!(
                    "the request sends no {place} `{name}` to sign: add a field `#[token({key}, rename = \"{name}\", from = ...)]` or a constant `{constant}(name = \"{name}\", value = \"...\")`"
                ),
            );
        }
    }
}

/// Whether the request itself (a field or a constant, not a flattened group) sends the
/// parameter `name` in `kind`.
pub fn param_declared(
    model: &Model,
    fields: &[Field<RequestRole>],
    kind: SlotKind,
    name: &str,
) -> bool {
    let same = |wire: &str| match kind {
        SlotKind::Header => wire.eq_ignore_ascii_case(name),
        SlotKind::Query | SlotKind::Body => wire == name,
    };
    let constants = match kind {
        SlotKind::Query => &model.top.queries,
        SlotKind::Body => &model.top.bodies,
        SlotKind::Header => &model.top.headers,
    };
    fields
        .iter()
        .any(|f| slot_of(f.goes()) == Some(kind) && same(&f.wire))
        // A dotted body constant nests (`result.code`): no top-level field of that name.
        || constants.iter().any(|c| {
            let constant = c.name.value();
            same(&constant) && !(kind == SlotKind::Body && constant.contains('.'))
        })
}

/// The slot a request field's value travels in, when it travels as a named parameter.
pub fn slot_of(role: RequestRole) -> Option<SlotKind> {
    match role {
        RequestRole::Body => Some(SlotKind::Body),
        RequestRole::Header => Some(SlotKind::Header),
        RequestRole::Query => Some(SlotKind::Query),
        RequestRole::Bearer
        | RequestRole::BasicUser
        | RequestRole::BasicPassword
        | RequestRole::SigningKey
        | RequestRole::Flatten => None,
    }
}

fn response(model: &Model, fields: &[Field<AnswerRole>], errors: &mut Errors) {
    let mut access = None;
    let mut seen: Vec<(AnswerRole, &Field<AnswerRole>)> = Vec::new();
    let mut extra = None;
    for field in fields {
        let Some(role) = field.role() else { continue };
        if role == AnswerRole::Extra {
            extra.get_or_insert(field);
            continue;
        }
        if let Some((_, first)) = seen.iter().find(|(r, _)| *r == role) {
            errors.span(field.role_span(), duplicate_answer_role(role, first, field));
            continue;
        }
        match role {
            AnswerRole::AccessToken => {
                access = Some(field);
                if field.optional {
                    errors.at(field.ty, "the access-token field is required: write `AccessToken`, not `Option<...>`");
                }
            }
            AnswerRole::RefreshToken if !field.optional => errors.at(
                field.ty,
                "the refresh-token field is `Option<RefreshToken>`: an answer without one keeps the previous token",
            ),
            AnswerRole::RefreshToken
            | AnswerRole::Expiry
            | AnswerRole::RefreshExpiry
            | AnswerRole::TokenType
            | AnswerRole::Scope
            | AnswerRole::Extra
            | AnswerRole::Extras => {}
        }
        seen.push((role, field));
    }
    if access.is_none() {
        errors.at(
            model.ident,
            "a response needs one access-token field: a field of type `AccessToken` (or marked `#[token(access_token)]`)",
        );
    }
    if let (Some(field), None, None) = (extra, &model.top.extras, &model.top.declare_extras) {
        errors.span(
            field.role_span(),
            "`extra` fields go to the extras type: add `extras = Type` to `#[token_endpoint(response, ...)]`",
        );
    }
    if let Some(envelope) = &model.top.envelope {
        let name = envelope.value();
        if name.is_empty() || name.contains('.') {
            errors.at(
                envelope,
                "the envelope is the name of the object holding the tokens, such as `data`",
            );
        }
    }
    for constant in &model.top.bodies {
        if constant.name.value().split('.').any(str::is_empty) {
            errors.at(
                &constant.name,
                "expected a field name or a dotted path such as `result.resultStatus`",
            );
        }
    }
}

/// Two response fields with one role: `second` is named, with how each has it and how to
/// give `second` another role.
fn duplicate_answer_role(
    role: AnswerRole,
    first: &Field<AnswerRole>,
    second: &Field<AnswerRole>,
) -> String {
    let how = |field: &Field<AnswerRole>| match field.inferred_by() {
        Some(InferredBy::Type) => " (by its type)",
        Some(InferredBy::Name) => " (by its name)",
        // A request's role, never an answer's; an `extra` role, which any number hold.
        Some(InferredBy::Method | InferredBy::DeclaredExtras) | None => "",
    };
    let mut message = format!(
        "duplicate `{}`: field `{}` already has this role{}",
        role.name(),
        first.ident,
        how(first)
    );
    match second.inferred_by() {
        Some(InferredBy::Type) => message.push_str(&format!(
            "; `{}` takes it by its type: give it another role with `#[token(...)]` (such as `extra`)",
            second.ident
        )),
        Some(InferredBy::Name) => message.push_str(&format!(
            "; `{0}` takes it by its name: give it another role with `#[token(...)]`, or another name (`#[token(rename = \"{1}\")]` keeps its name on the wire)",
            second.ident, second.wire
        )),
        Some(InferredBy::Method | InferredBy::DeclaredExtras) | None => {}
    }
    message
}

fn error(model: &Model, fields: &[Field<ErrorRole>], errors: &mut Errors) {
    let mut seen: Vec<(ErrorRole, &Field<ErrorRole>)> = Vec::new();
    for field in fields {
        let Some(role) = field.role() else { continue };
        if let Some((_, first)) = seen.iter().find(|(r, _)| *r == role) {
            errors.span(
                field.role_span(),
                format!(
                    "duplicate `{}`: field `{}` already has this role",
                    role.name(),
                    first.ident
                ),
            );
            continue;
        }
        if role == ErrorRole::Code && field.optional {
            errors.at(
                field.ty,
                "the code field is required: an answer without a code is not this error",
            );
        }
        seen.push((role, field));
    }
    let has = |role: ErrorRole| seen.iter().any(|(r, _)| *r == role);
    if !has(ErrorRole::Code) {
        errors.at(
            model.ident,
            "an error needs one code field, the provider's error code: a field named `error`, `code` or `errcode`, or one marked `#[token(code)]`",
        );
    }
    let mut declared: Vec<Refusal> = Vec::new();
    for refusal in &model.top.refusals {
        let name = &refusal.name;
        if declared.contains(&name.refusal) {
            errors.at(
                &name.ident,
                format!(
                    "duplicate `refusal({}, ...)`: one answer for each refusal",
                    name.refusal.name()
                ),
            );
        }
        declared.push(name.refusal);
        // The client reads an empty code, or one of `success_codes(...)`, as a success: the
        // sandbox's refusal would not be one.
        if let Some(code) = &refusal.code {
            let mut success = model
                .top
                .success_codes
                .iter()
                .flat_map(|codes| &codes.value);
            if code.value().is_empty() {
                errors.at(
                    code,
                    "an empty code is read as a success, not this error: give the refusal the provider's code for it",
                );
            } else if success.any(|success| success.text == code.value()) {
                errors.at(
                    code,
                    format!(
                        "`{}` is one of `success_codes(...)`: the answer to this refusal would be read as a success, not this error",
                        code.value()
                    ),
                );
            }
        }
        if let Some(key) = &refusal.status_key
            && !has(ErrorRole::HttpStatus)
        {
            errors.at(
                key,
                "an answer's status travels in its body's `#[token(http_status)]` field: add one, or declare the status on the code's variant (`#[token(code = ..., status = 401, refusal = ...)]`)",
            );
        }
    }
    if let Some(envelope) = &model.top.envelope
        && envelope.value().is_empty()
    {
        errors.at(
            envelope,
            "the envelope is the name of the object holding the result, such as `result`",
        );
    }
}

fn error_code(model: &Model, variants: &[Variant], errors: &mut Errors) {
    let numeric = numeric_codes(variants);
    let mut answered: Vec<(Refusal, &syn::Ident)> = Vec::new();
    for variant in variants {
        if let Some(retry_after) = &variant.attrs.retry_after
            && variant.attrs.kind.as_ref().map(|k| k.value) != Some(Kind::Transient)
        {
            errors.at(
                &retry_after.key,
                "`retry_after` is the wait before retrying a code declared `kind = transient`: declare it so, or drop the wait",
            );
        }
        for name in &variant.attrs.refusals {
            if variant.attrs.other.is_some() {
                errors.at(
                    &name.ident,
                    "the catch-all `other` variant answers no refusal: it keeps the codes nobody declared; put `refusal` on a variant with its own code",
                );
                continue;
            }
            match answered.iter().find(|(r, _)| *r == name.refusal) {
                Some((_, first)) => errors.at(
                    &name.ident,
                    format!(
                        "refusal `{}` is already answered by `{first}`: one code answers each refusal",
                        name.refusal.name()
                    ),
                ),
                None => answered.push((name.refusal, &variant.original.ident)),
            }
        }
    }
    let mut other = None;
    // A variant written as the catch-all but not one (`Other(u32)`, `Other` with no field),
    // while no variant is: one error there, not also "give it a code" and "no catch-all".
    let declared_other = variants.iter().any(|v| v.attrs.other.is_some());
    let mut meant_other = false;
    let mut codes: Vec<(&str, &syn::Ident)> = Vec::new();
    for variant in variants {
        let v = variant.original;
        if let Some(key) = &variant.attrs.other {
            if let Some(first) = other.replace(&v.ident) {
                errors.at(
                    key,
                    format!("duplicate catch-all: `{first}` already keeps every other code"),
                );
            }
            let one_field = matches!(&v.fields, syn::Fields::Unnamed(f) if f.unnamed.len() == 1);
            if !one_field {
                errors.at(
                    v,
                    "the catch-all variant holds the code: write `Other(String)`",
                );
            }
            if let Some(code) = &variant.attrs.code {
                errors.at(
                    &code.tokens,
                    "the catch-all variant takes every other code; it has no `code`",
                );
            }
            if let Some(cfg) = variant.cfgs.first() {
                errors.at(
                    cfg,
                    "the catch-all variant cannot be under `#[cfg(...)]`: it keeps every code nobody declared, whichever `cfg` holds",
                );
            }
            continue;
        }
        if let Some(code) = &variant.attrs.code
            && code.numeric != numeric
        {
            errors.at(
                &code.tokens,
                "the codes of one enum are all integers or all strings: write this code as an integer, or every other one as a string",
            );
        }
        let unit = matches!(v.fields, syn::Fields::Unit);
        if !declared_other && (!unit || v.ident == "Other") {
            meant_other = true;
            let at = if unit {
                v.ident.to_token_stream()
            } else {
                v.fields.to_token_stream()
            };
            errors.at(
                at,
                "the catch-all variant keeps every other code as text: write `Other(String)`",
            );
            continue;
        }
        if !unit {
            errors.at(
                &v.fields,
                "error-code variants are unit variants, except the `Other(String)` catch-all",
            );
            continue;
        }
        if let Some(code) = &variant.attrs.code
            && !code.numeric
            && code.text.is_empty()
        {
            errors.at(
                &code.tokens,
                "an empty code is read as a success, not this error: give the variant the provider's code",
            );
        }
        if numeric && variant.attrs.code.is_none() {
            errors.at(
                &v.ident,
                "the codes of this enum are integers: give this variant one, such as `InvalidRefreshToken = 40030`",
            );
        }
        if let Some((_, first)) = codes.iter().find(|(c, _)| *c == variant.code) {
            errors.at(v, format!("code `{}` is already `{first}`", variant.code));
        }
        codes.push((&variant.code, &v.ident));
    }
    if other.is_none() && !meant_other {
        errors.at(
            model.ident,
            "an error-code enum needs a catch-all variant that keeps every other code: `Other(String)`",
        );
    }
}

fn header_name(lit: &syn::LitStr, errors: &mut Errors) {
    if !is_header_name(&lit.value()) {
        errors.at(
            lit,
            format!("`{}` is not a valid HTTP header name", lit.value()),
        );
    }
}

fn is_header_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}
