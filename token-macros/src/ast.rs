//! The typed model of one annotated item: its kind, item-level attributes, and its fields or
//! variants with their parsed `#[token(...)]` attributes, each keeping its syn node for spans.

use syn::{Fields, GenericArgument, Ident, PathArguments, Type};

use crate::attr::{self, Errors, FieldAttrs, TopAttrs, VariantAttrs};
use crate::symbol::Place;

pub struct Model<'a> {
    pub item: &'a syn::Item,
    pub ident: &'a Ident,
    pub top: TopAttrs,
    pub fields: Vec<Field<'a>>,
    pub variants: Vec<Variant<'a>>,
}

pub struct Field<'a> {
    pub ident: &'a Ident,
    pub ty: &'a Type,
    /// Whether the type is written `Option<...>`: then absent values are omitted.
    pub optional: bool,
    pub attrs: FieldAttrs,
    /// The name on the wire: `rename`, else `rename_all` applied, else the field name.
    pub wire: String,
}

impl Field<'_> {
    pub fn role(&self) -> Option<String> {
        self.attrs.role.as_ref().map(|r| r.to_string())
    }
}

pub struct Variant<'a> {
    pub original: &'a syn::Variant,
    pub attrs: VariantAttrs,
    /// The provider's code: `code = "..."` or `code = 40030`, else `rename_all` applied to
    /// the variant name.
    pub code: String,
}

impl Model<'_> {
    /// Whether an error-code enum's codes are integers (`#[token(code = 40030)]`).
    pub fn numeric_codes(&self) -> bool {
        self.variants
            .iter()
            .any(|v| v.attrs.code.as_ref().is_some_and(|c| c.numeric))
    }
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
    let mut model = Model {
        item,
        ident,
        top,
        fields: Vec::new(),
        variants: Vec::new(),
    };
    let field_place = match model.top.place {
        Place::Request => Place::RequestField,
        Place::Response => Place::ResponseField,
        Place::Error => Place::ErrorField,
        Place::Extras => Place::ExtrasField,
        _ => Place::Variant,
    };
    match (item, model.top.place) {
        (syn::Item::Struct(s), Place::Request | Place::Response | Place::Error | Place::Extras) => {
            let Fields::Named(named) = &s.fields else {
                errors.at(
                    ident,
                    "`#[token_endpoint]` needs a struct with named fields",
                );
                return None;
            };
            for field in &named.named {
                let Some(ident) = field.ident.as_ref() else {
                    continue;
                };
                let attrs = attr::parse_field(&field.attrs, field_place, errors);
                let optional = option_inner(&field.ty).is_some();
                let wire = match (&attrs.rename, model.top.rename_all) {
                    (Some(rename), _) => rename.value(),
                    (None, Some(rule)) => rule.apply_to_field(&ident.to_string()),
                    (None, None) => ident.to_string().trim_start_matches("r#").to_owned(),
                };
                model.fields.push(Field {
                    ident,
                    ty: &field.ty,
                    optional,
                    attrs,
                    wire,
                });
            }
        }
        (syn::Item::Enum(e), Place::ErrorCode) => {
            for variant in &e.variants {
                let attrs = attr::parse_variant(&variant.attrs, errors);
                let code = match (&attrs.code, model.top.rename_all) {
                    (Some(code), _) => code.text.clone(),
                    (None, Some(rule)) => rule.apply_to_variant(&variant.ident.to_string()),
                    (None, None) => variant.ident.to_string(),
                };
                model.variants.push(Variant {
                    original: variant,
                    attrs,
                    code,
                });
            }
        }
        (syn::Item::Enum(_), _) => {
            errors.at(ident, "only `#[token_endpoint(error_code)]` goes on an enum; requests, responses, errors and extras are structs");
            return None;
        }
        _ => {
            errors.at(
                ident,
                "`#[token_endpoint(error_code)]` goes on an enum of error codes",
            );
            return None;
        }
    }
    Some(model)
}

/// `T` when `ty` is written `Option<T>` (or `core::option::Option<T>`...).
pub fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(path) = ty else { return None };
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
