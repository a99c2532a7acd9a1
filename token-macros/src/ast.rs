//! The typed model of one annotated item: its kind, item-level attributes, and its fields or
//! variants with their parsed `#[token(...)]` attributes, each keeping its syn node for spans.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Fields, GenericArgument, Ident, PathArguments, Type};

use crate::attr::{self, Errors, FieldAttrs, Keyed, Source, TopAttrs, VariantAttrs};
use crate::symbol::{
    AnswerRole, ErrorRole, ExtrasRole, ItemKind, Method, RequestRole, RoleName, SessionValue,
};

pub struct Model<'a> {
    pub item: &'a syn::Item,
    pub ident: &'a Ident,
    pub top: TopAttrs,
    pub data: Data<'a>,
}

/// The members of an item, typed by its kind: each kind's fields take that kind's roles.
pub enum Data<'a> {
    Request(Vec<Field<'a, RequestRole>>),
    /// A field group: request fields that requests flatten.
    Fields(Vec<Field<'a, RequestRole>>),
    Response(Vec<Field<'a, AnswerRole>>),
    Error(Vec<Field<'a, ErrorRole>>),
    Extras(Vec<Field<'a, ExtrasRole>>),
    ErrorCode(Vec<Variant<'a>>),
    /// A provider's config: its fields, for `new` and the `with_<field>` setters.
    Config(Vec<ConfigField<'a>>),
}

/// A field of a provider's config.
pub struct ConfigField<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    /// `T` when the type is written `Option<T>`: set by `with_<field>`, `None` in `new`.
    pub optional: Option<&'a Type>,
    /// The field's own docs, repeated on its setter.
    pub docs: Vec<&'a syn::Attribute>,
    /// The field's `#[cfg(...)]` attributes, carried by its parameter and its setter.
    pub cfgs: Vec<&'a syn::Attribute>,
}

pub struct Field<'a, R> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    /// Whether the type is written `Option<...>`: then absent values are omitted.
    pub optional: bool,
    pub attrs: FieldAttrs<R>,
    /// The role the field takes without a role key: from its type or its name (response
    /// fields only). A declared role wins.
    pub inferred: Option<Inferred<R>>,
    /// The name on the wire: `rename`, else `rename_all` applied, else the field name.
    pub wire: String,
    /// The field's `#[cfg(...)]` attributes: the generated code carries them wherever it
    /// touches the field, so a field compiled out is not touched at all.
    pub cfgs: Vec<&'a syn::Attribute>,
}

/// A role a field takes without a role key, and what gave it.
#[derive(Clone, Copy)]
pub struct Inferred<R> {
    pub role: R,
    pub by: InferredBy,
}

/// What gave a field its inferred role.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum InferredBy {
    /// The type, as written (`AccessToken`, `Option<RefreshToken>`, the `extras = Type`).
    Type,
    /// The field's name (`expires_in`, `scope`, `token_type`; an error's `code`, `message`).
    Name,
    /// The request's method: a GET's fields go in the query.
    Method,
    /// A response's `declare_extras = Name`: its fields with no other role are the extras.
    DeclaredExtras,
}

impl<R: Copy> Field<'_, R> {
    /// The role: the declared one, else the inferred one, if any.
    pub fn role(&self) -> Option<R> {
        match &self.attrs.role {
            Some(declared) => Some(declared.value),
            None => self.inferred.map(|i| i.role),
        }
    }

    /// How the field has its role, when it has one without a role key.
    pub fn inferred_by(&self) -> Option<InferredBy> {
        match &self.attrs.role {
            Some(_) => None,
            None => self.inferred.map(|i| i.by),
        }
    }

    /// The span of what gave the field its role: the role's key, else the type or the name
    /// it was inferred from (the field's name, when it has no role).
    pub fn role_span(&self) -> Span {
        match (&self.attrs.role, self.inferred_by()) {
            (Some(declared), _) => declared.key.span(),
            (None, Some(InferredBy::Type)) => self.ty.span(),
            (
                None,
                Some(InferredBy::Name | InferredBy::Method | InferredBy::DeclaredExtras) | None,
            ) => self.ident.span(),
        }
    }
}

impl<R> Field<'_, R> {
    /// Whether the field reads the session's `value` (`from = refresh_token`).
    pub fn reads(&self, value: SessionValue) -> bool {
        matches!(&self.attrs.from, Some(from) if matches!(&from.value, Source::Session(s) if s.value == value))
    }
}

impl Field<'_, RequestRole> {
    /// Where a request field goes: its role, else the body.
    pub fn goes(&self) -> RequestRole {
        self.role().unwrap_or(RequestRole::Body)
    }
}

pub struct Variant<'a> {
    pub original: &'a syn::Variant,
    pub attrs: VariantAttrs,
    /// The provider's code: `code = "..."` or `code = 40030`, else `rename_all` applied to
    /// the variant name.
    pub code: String,
    /// The variant's `#[cfg(...)]` attributes: every generated arm naming it carries them.
    pub cfgs: Vec<&'a syn::Attribute>,
}

/// Whether an error-code enum's codes are integers (`#[token(code = 40030)]`).
pub fn numeric_codes(variants: &[Variant]) -> bool {
    variants
        .iter()
        .any(|v| v.attrs.code.as_ref().is_some_and(|c| c.numeric))
}

/// Builds the model; `None` when the item is not something the macro can read at all.
pub fn build<'a>(item: &'a syn::Item, top: TopAttrs, errors: &mut Errors) -> Option<Model<'a>> {
    let (ident, generics, attrs) = match item {
        syn::Item::Struct(s) => (&s.ident, &s.generics, &s.attrs),
        syn::Item::Enum(e) => (&e.ident, &e.generics, &e.attrs),
        other => {
            errors.at(
                other,
                "`#[token_endpoint]` goes on a struct with named fields, or an enum of error codes",
            );
            return None;
        }
    };
    if !generics.params.is_empty() || generics.where_clause.is_some() {
        errors.at(generics, "`#[token_endpoint]` items cannot be generic");
    }
    attr::reject_token_attrs(
        attrs,
        "`#[token(...)]` goes on fields and variants; item settings go in `#[token_endpoint(...)]`",
        errors,
    );
    let kind = top.kind;
    reject_serde_attrs(item, kind, errors);
    let data = match (item, kind) {
        (syn::Item::Enum(e), ItemKind::ErrorCode) => Data::ErrorCode(
            e.variants
                .iter()
                .map(|v| variant(v, &top, errors))
                .collect(),
        ),
        (syn::Item::Enum(_), _) => {
            errors.at(ident, "only `#[token_endpoint(error_code)]` goes on an enum; requests, responses, errors, extras, field groups and configs are structs");
            return None;
        }
        (syn::Item::Struct(_), ItemKind::ErrorCode) => {
            errors.at(
                ident,
                "`#[token_endpoint(error_code)]` goes on an enum of error codes",
            );
            return None;
        }
        (syn::Item::Struct(s), _) => {
            let Fields::Named(named) = &s.fields else {
                errors.at(
                    ident,
                    "`#[token_endpoint]` needs a struct with named fields",
                );
                return None;
            };
            let named = &named.named;
            // Every item but a config is read back (a request by the server side, an answer
            // by the client), so it owns its values: a borrowed field would be a lifetime
            // error inside the generated serde, far from the field.
            if kind != ItemKind::Config {
                for field in named {
                    if let syn::Type::Reference(r) = &field.ty {
                        errors.at(
                            r,
                            "a `#[token_endpoint]` field owns its value, read back from the wire: write an owned type (`String`, not `&str`)",
                        );
                    }
                }
            }
            match kind {
                ItemKind::Request => {
                    let mut fields = fields(named, &top, errors);
                    infer_request_sources(&mut fields);
                    if matches!(&top.method, Some((m, _)) if m.value == Method::Get) {
                        query_by_default(&mut fields);
                    }
                    Data::Request(fields)
                }
                ItemKind::Fields => {
                    let mut fields = fields(named, &top, errors);
                    infer_request_sources(&mut fields);
                    Data::Fields(fields)
                }
                ItemKind::Response => {
                    let mut fields = fields(named, &top, errors);
                    infer_answer_roles(&mut fields, &top, errors);
                    if top.declare_extras.is_some() {
                        declared_extras(&mut fields);
                    }
                    Data::Response(fields)
                }
                ItemKind::Error => {
                    let mut fields = fields(named, &top, errors);
                    infer_error_roles(&mut fields, errors);
                    Data::Error(fields)
                }
                ItemKind::Extras => Data::Extras(fields(named, &top, errors)),
                ItemKind::Config => Data::Config(config_fields(named, errors)),
                ItemKind::ErrorCode => return None,
            }
        }
        _ => return None,
    };
    Some(Model {
        item,
        ident,
        top,
        data,
    })
}

fn fields<'a, R: RoleName>(
    named: &'a syn::punctuated::Punctuated<syn::Field, syn::Token![,]>,
    top: &TopAttrs,
    errors: &mut Errors,
) -> Vec<Field<'a, R>> {
    named
        .iter()
        .filter_map(|field| {
            let ident = field.ident.as_ref()?;
            let attrs = attr::parse_field::<R>(&field.attrs, top.kind, errors);
            let wire = match (&attrs.rename, top.rename_all) {
                (Some(rename), _) => rename.value(),
                (None, Some(rule)) => rule.apply_to_field(&ident.to_string()),
                (None, None) => ident.to_string().trim_start_matches("r#").to_owned(),
            };
            Some(Field {
                ident,
                ty: &field.ty,
                optional: option_inner(&field.ty).is_some(),
                attrs,
                inferred: None,
                wire,
                cfgs: cfgs(&field.attrs),
            })
        })
        .collect()
}

/// The items the macro writes serde for itself, from `#[token(...)]`: a user's
/// `#[serde(...)]` on them, their fields or variants would be a second word on the wire
/// (serde's "duplicate attribute", or silently another name), so it is an error at it.
fn reject_serde_attrs(item: &syn::Item, kind: ItemKind, errors: &mut Errors) {
    if !matches!(
        kind,
        ItemKind::Response | ItemKind::Error | ItemKind::Extras | ItemKind::ErrorCode
    ) {
        return;
    }
    let (own, inner): (&[syn::Attribute], Vec<&[syn::Attribute]>) = match item {
        syn::Item::Struct(s) => (&s.attrs, s.fields.iter().map(|f| &f.attrs[..]).collect()),
        syn::Item::Enum(e) => (&e.attrs, e.variants.iter().map(|v| &v.attrs[..]).collect()),
        _ => return,
    };
    for attr in std::iter::once(own).chain(inner).flatten() {
        if attr.path().is_ident("serde") {
            errors.at(
                attr,
                "`#[token_endpoint]` derives serde itself: write the wire name as `#[token(rename = \"...\")]` and the casing as `rename_all` in `#[token_endpoint(...)]`",
            );
        }
    }
}

/// A field's or variant's `#[cfg(...)]` attributes.
fn cfgs(attrs: &[syn::Attribute]) -> Vec<&syn::Attribute> {
    attrs.iter().filter(|a| a.path().is_ident("cfg")).collect()
}

/// A config's fields take no `#[token(...)]`: `new` takes the required ones, in order, and
/// each `Option` one has its setter.
fn config_fields<'a>(
    named: &'a syn::punctuated::Punctuated<syn::Field, syn::Token![,]>,
    errors: &mut Errors,
) -> Vec<ConfigField<'a>> {
    named
        .iter()
        .filter_map(|field| {
            attr::reject_token_attrs(
                &field.attrs,
                "a config's fields take no `#[token(...)]`: `new` takes every field that is not an `Option`, and `with_<field>` sets an `Option` one",
                errors,
            );
            Some(ConfigField {
                ident: field.ident.as_ref()?,
                ty: &field.ty,
                optional: option_inner(&field.ty),
                docs: field
                    .attrs
                    .iter()
                    .filter(|a| a.path().is_ident("doc"))
                    .collect(),
                cfgs: cfgs(&field.attrs),
            })
        })
        .collect()
}

fn variant<'a>(variant: &'a syn::Variant, top: &TopAttrs, errors: &mut Errors) -> Variant<'a> {
    let mut attrs = attr::parse_variant(&variant.attrs, errors);
    // `InvalidRefreshToken = 40030`: the integer code as the discriminant (stripped on
    // expansion, so the enum may also hold the `Other(String)` catch-all).
    if let Some((_, expr)) = &variant.discriminant {
        match &attrs.code {
            Some(code) => errors.at(
                &code.tokens,
                format!(
                    "`{}` has its code twice: as `= {}` and in `#[token(code = ...)]`; keep the discriminant",
                    variant.ident,
                    quote::ToTokens::to_token_stream(expr)
                ),
            ),
            None => attrs.code = attr::discriminant_code(expr, errors),
        }
    }
    // The one variant holding a `String` is the catch-all, without `#[token(other)]`.
    if attrs.other.is_none() && holds_one_string(variant) {
        attrs.other = Some(variant.ident.clone());
    }
    let code = match (&attrs.code, top.rename_all) {
        (Some(code), _) => code.text.clone(),
        (None, Some(rule)) => rule.apply_to_variant(&variant.ident.to_string()),
        (None, None) => variant.ident.to_string(),
    };
    Variant {
        original: variant,
        attrs,
        code,
        cfgs: cfgs(&variant.attrs),
    }
}

/// `Other(String)`: a tuple variant of one field whose type is written `String`.
fn holds_one_string(variant: &syn::Variant) -> bool {
    let Fields::Unnamed(fields) = &variant.fields else {
        return false;
    };
    fields.unnamed.len() == 1
        && last_segment(&fields.unnamed[0].ty)
            .is_some_and(|s| s.ident == "String" && s.arguments.is_none())
}

/// A GET sends no body: its fields without a place of their own go in the query.
fn query_by_default(fields: &mut [Field<RequestRole>]) {
    for field in fields.iter_mut().filter(|f| f.attrs.role.is_none()) {
        field.inferred = Some(Inferred {
            role: RequestRole::Query,
            by: InferredBy::Method,
        });
    }
}

/// The roles of an error's fields without a role key, where the name says it: RFC 6749
/// section 5.2's `error` and `error_description`, the plain `code` and `message`, and the
/// `errcode` and `errmsg` of WeChat's family of APIs. A role declared with a key takes it
/// from every name (Vault.ist's `#[token(message)] error_description` leaves its `message` a
/// plain field); two names for one role, with no key, is an error naming both.
fn infer_error_roles(fields: &mut [Field<ErrorRole>], errors: &mut Errors) {
    for role in [ErrorRole::Code, ErrorRole::Message, ErrorRole::RequestId] {
        if fields
            .iter()
            .any(|f| f.attrs.role.as_ref().is_some_and(|r| r.value == role))
        {
            continue;
        }
        let names: &[&str] = match role {
            ErrorRole::Code => crate::symbol::ERROR_CODE_NAMES,
            ErrorRole::RequestId => crate::symbol::ERROR_REQUEST_ID_NAMES,
            _ => crate::symbol::ERROR_MESSAGE_NAMES,
        };
        let mut first: Option<String> = None;
        for field in fields.iter_mut().filter(|f| f.attrs.role.is_none()) {
            let name = field.ident.to_string();
            if !names.contains(&name.trim_start_matches("r#")) {
                continue;
            }
            if let Some(first) = &first {
                errors.at(
                    field.ident,
                    format!(
                        "`{first}` and `{name}` are both the `{}` by their names: mark the one that is with `#[token({})]`",
                        role.name(),
                        role.name()
                    ),
                );
                continue;
            }
            first = Some(name);
            field.inferred = Some(Inferred {
                role,
                by: InferredBy::Name,
            });
        }
    }
}

/// With `declare_extras = Name`, a response's fields that have no role, given or inferred,
/// are the fields of the extras struct the macro declares: each an `extra`.
fn declared_extras(fields: &mut [Field<AnswerRole>]) {
    for field in fields.iter_mut().filter(|f| f.role().is_none()) {
        field.inferred = Some(Inferred {
            role: AnswerRole::Extra,
            by: InferredBy::DeclaredExtras,
        });
    }
}

/// The roles of a response's fields without a role key, where the type or the RFC 6749
/// section 5.1 name says it: `AccessToken` (or `Option<AccessToken>`, which the access
/// token's rule then refuses), `RefreshToken` or `Option<RefreshToken>`, the `extras = Type`;
/// `expires_in`, `scope`, `token_type`. Types are recognised by their last path segment as
/// written, like `Option`. A field whose type and name say two different roles is an error.
fn infer_answer_roles(fields: &mut [Field<AnswerRole>], top: &TopAttrs, errors: &mut Errors) {
    let extras = top.extras.as_ref().and_then(|e| last_segment(&e.value));
    for field in fields.iter_mut().filter(|f| f.attrs.role.is_none()) {
        let spelled = option_inner(field.ty).unwrap_or(field.ty);
        let by_type = match last_segment(spelled) {
            Some(s) if s.ident == "AccessToken" && s.arguments.is_none() => {
                Some(AnswerRole::AccessToken)
            }
            Some(s) if s.ident == "RefreshToken" && s.arguments.is_none() => {
                Some(AnswerRole::RefreshToken)
            }
            _ => None,
        }
        .or_else(|| {
            // The extras type itself, not an `Option` of it.
            let own = last_segment(field.ty)?;
            (extras == Some(own)).then_some(AnswerRole::Extras)
        });
        let name = field.ident.to_string();
        let by_name = match name.trim_start_matches("r#") {
            "expires_in" => Some(AnswerRole::Expiry),
            "refresh_expires_in" | "refresh_token_expires_in" => Some(AnswerRole::RefreshExpiry),
            "scope" => Some(AnswerRole::Scope),
            "token_type" => Some(AnswerRole::TokenType),
            _ => None,
        };
        if let (Some(typed), Some(named)) = (by_type, by_name) {
            errors.at(
                field.ident,
                format!(
                    "`{name}` is the `{}` by its type and the `{}` by its name: give it its role with `#[token(...)]`",
                    typed.name(),
                    named.name()
                ),
            );
        }
        field.inferred = match (by_type, by_name) {
            (Some(role), _) => Some(Inferred {
                role,
                by: InferredBy::Type,
            }),
            (None, Some(role)) => Some(Inferred {
                role,
                by: InferredBy::Name,
            }),
            (None, None) => None,
        };
        // An expiry type says the field is an expiry, not whose: without a role it would be
        // read and ignored, and the tokens' expiry silently unknown.
        if field.inferred.is_none()
            && let Some(s) = last_segment(spelled)
            && s.arguments.is_none()
            && crate::symbol::EXPIRY_TYPES.iter().any(|t| s.ident == t)
        {
            errors.at(
                field.ident,
                format!(
                    "`{name}` is of an expiry type (`{}`) but has no role, so it would be read and ignored: give it `#[token(expiry)]` (the access token's) or `#[token(refresh_expiry)]` (the refresh token's)",
                    s.ident
                ),
            );
        }
    }
}

/// The source of a request field without `from`, where its type says it: a `RefreshToken`
/// (or `Option<RefreshToken>`) is the session's refresh token, an `AccessToken` its access
/// token, as a response's fields take their roles from these types. A flattened group's
/// fields say their own.
fn infer_request_sources(fields: &mut [Field<RequestRole>]) {
    for field in fields
        .iter_mut()
        .filter(|f| f.attrs.from.is_none() && f.goes() != RequestRole::Flatten)
    {
        let spelled = option_inner(field.ty).unwrap_or(field.ty);
        let value = match last_segment(spelled) {
            Some(s) if s.ident == "RefreshToken" && s.arguments.is_none() => {
                SessionValue::RefreshToken
            }
            Some(s) if s.ident == "AccessToken" && s.arguments.is_none() => {
                SessionValue::AccessToken
            }
            _ => continue,
        };
        let span = field.ty.span();
        field.attrs.from = Some(Keyed {
            key: Ident::new("from", span),
            value: Source::Session(Keyed {
                key: Ident::new(value.name(), span),
                value,
            }),
        });
    }
}

/// The last segment of a type written as a path (`token_core::secret::AccessToken`).
/// The type inside the invisible groups (a `macro_rules!` macro's `$ty`) and parentheses
/// around it.
pub fn ungroup(mut ty: &Type) -> &Type {
    loop {
        match ty {
            Type::Group(g) => ty = &g.elem,
            Type::Paren(p) => ty = &p.elem,
            _ => return ty,
        }
    }
}

fn last_segment(ty: &Type) -> Option<&syn::PathSegment> {
    match ungroup(ty) {
        Type::Path(path) if path.qself.is_none() => path.path.segments.last(),
        _ => None,
    }
}

/// `T` when `ty` is written `Option<T>` (or `core::option::Option<T>`...).
pub fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ungroup(ty) else {
        return None;
    };
    if path.qself.is_some() {
        return None;
    }
    let last = path.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(inner) if args.args.len() == 1 => Some(inner),
        _ => None,
    }
}
