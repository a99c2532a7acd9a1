//! Code generation from a checked model. Nothing here can fail: every rule was checked in
//! `valid.rs`. Generated paths are `::core`, `::std` and `::token_core::__private` only.

use proc_macro2::{Span, TokenStream};
use quote::{format_ident, quote, quote_spanned};
use syn::spanned::Spanned;
use syn::{Ident, LitStr};

use crate::ast::{ConfigField, Data, Field, Model, Variant, numeric_codes, option_inner};
use crate::attr::{
    Algorithm, Code, Keyed, SignEncoding, SignPart, Signature, SlotKind, Source, Timestamp,
};
use crate::symbol::{
    AnswerRole, BodyFormat, ErrorRole, ExtrasRole, Kind, Method, Refusal, RequestRole, SessionValue,
};
use crate::valid::slot_of;

fn private() -> TokenStream {
    quote!(::token_core::__private)
}

/// The item, its helper attributes removed, plus the trait impls.
pub fn expand(model: &Model) -> TokenStream {
    let mut item = strip(model.item);
    let imp = match &model.data {
        Data::Request(fields) => request(model, fields),
        Data::Fields(fields) => group(model, fields),
        Data::Response(fields) => {
            add_serde(
                &mut item,
                fields,
                |f| f.role().is_none(),
                |f| f.role() == Some(AnswerRole::Extras),
            );
            let declared = declared_extras(model, fields);
            let response = response(model, fields);
            quote!(#declared #response)
        }
        Data::Error(fields) => {
            // The code alone decides what an error answer is: every other field may be
            // absent (or odd, read as absent: see `error`).
            add_serde(
                &mut item,
                fields,
                |f| f.role() != Some(ErrorRole::Code),
                |_| false,
            );
            error(model, fields)
        }
        Data::Extras(fields) => {
            add_serde(&mut item, fields, |f| f.role().is_none(), |_| false);
            keep_extras(model, fields)
        }
        Data::ErrorCode(variants) => error_code(model, variants),
        Data::Config(fields) => config(model, fields),
    };
    quote!(#item #imp)
}

/// The item with every `#[token(...)]` removed, and an error-code enum's discriminants (its
/// integer codes, which rustc would refuse beside the `Other(String)` catch-all): what is
/// emitted, and emitted beside `compile_error!`.
pub fn strip(item: &syn::Item) -> syn::Item {
    strip_but(item, &["token"])
}

/// The item as [`strip`] emits it beside `compile_error!`, its `#[serde(...)]` removed too:
/// with no derive of the macro's to read them they would each be a second error.
pub fn strip_for_error(item: &syn::Item) -> syn::Item {
    strip_but(item, &["token", "serde"])
}

fn strip_but(item: &syn::Item, removed: &[&str]) -> syn::Item {
    let mut item = item.clone();
    let keep = |a: &syn::Attribute| !removed.iter().any(|name| a.path().is_ident(name));
    match &mut item {
        syn::Item::Struct(s) => {
            s.attrs.retain(keep);
            for field in s.fields.iter_mut() {
                field.attrs.retain(keep);
            }
        }
        syn::Item::Enum(e) => {
            e.attrs.retain(keep);
            for variant in e.variants.iter_mut() {
                variant.attrs.retain(keep);
                variant.discriminant = None;
                for field in variant.fields.iter_mut() {
                    field.attrs.retain(keep);
                }
            }
        }
        _ => {}
    }
    item
}

/// Serde derives on response and error structs, with each field's wire name; a `defaulted`
/// field absent from the answer takes its `Default`; a `flattened` field (a response's whole
/// extras) is read from the top level instead.
fn add_serde<R: Copy>(
    item: &mut syn::Item,
    fields: &[Field<R>],
    defaulted: impl Fn(&Field<R>) -> bool,
    flattened: impl Fn(&Field<R>) -> bool,
) {
    let syn::Item::Struct(s) = item else { return };
    let p = private();
    let derive: syn::Attribute =
        syn::parse_quote!(#[derive(#p::serde::Serialize, #p::serde::Deserialize)]);
    let krate: syn::Attribute =
        syn::parse_quote!(#[serde(crate = "::token_core::__private::serde")]);
    s.attrs.insert(0, krate);
    s.attrs.insert(0, derive);
    for (field, model_field) in s.fields.iter_mut().zip(fields) {
        if flattened(model_field) {
            field.attrs.push(syn::parse_quote!(#[serde(flatten)]));
            continue;
        }
        let wire = &model_field.wire;
        field
            .attrs
            .push(syn::parse_quote!(#[serde(rename = #wire)]));
        if model_field.optional {
            field.attrs.push(syn::parse_quote!(
                #[serde(default, skip_serializing_if = "::core::option::Option::is_none")]
            ));
        } else if defaulted(model_field) {
            field.attrs.push(syn::parse_quote!(#[serde(default)]));
        }
    }
}

/// The field of `role`, if any.
fn role_of<'m, 'a, R: Copy + PartialEq>(
    fields: &'m [Field<'a, R>],
    role: R,
) -> Option<&'m Field<'a, R>> {
    fields.iter().find(|f| f.role() == Some(role))
}

fn kind_path(kind: &Keyed<Kind>) -> TokenStream {
    let p = private();
    let variant = Ident::new(kind.value.variant(), kind.key.span());
    quote!(#p::ErrorKind::#variant)
}

/// A constant as a `serde_json::Value`: a string, or an `i64`.
fn json_value(code: &Code) -> TokenStream {
    let p = private();
    if code.numeric {
        let number = code.text.parse::<i64>().unwrap_or_default();
        quote!(<#p::serde_json::Value as ::core::convert::From<i64>>::from(#number))
    } else {
        let text = &code.text;
        quote!(<#p::serde_json::Value as ::core::convert::From<&str>>::from(#text))
    }
}

fn some_or_none(value: Option<TokenStream>) -> TokenStream {
    match value {
        Some(value) => quote!(::core::option::Option::Some(#value)),
        None => quote!(::core::option::Option::None),
    }
}

/// A field's `#[cfg(...)]` attributes, for each statement, struct-literal field, list
/// element and item that touches it: a field compiled out is not touched.
fn cfgs<R>(field: &Field<R>) -> TokenStream {
    let cfgs = &field.cfgs;
    quote!(#(#cfgs)*)
}

/// `value`, an expression that reads a field under `cfgs`, or `fallback` (of type `ty`) when
/// the field is compiled out.
fn cfg_or(
    cfgs: &[&syn::Attribute],
    ty: TokenStream,
    value: TokenStream,
    fallback: TokenStream,
) -> TokenStream {
    if cfgs.is_empty() {
        return value;
    }
    let predicates = cfgs.iter().map(|a| match &a.meta {
        syn::Meta::List(list) => list.tokens.clone(),
        _ => quote!(all()),
    });
    quote! {{
        #(#cfgs)*
        let __field: #ty = #value;
        #[cfg(not(all(#(#predicates),*)))]
        let __field: #ty = #fallback;
        __field
    }}
}

// ---- requests ------------------------------------------------------------------------

/// Where a request's (or a group's) body fields go.
#[derive(Clone, Copy, PartialEq, Eq)]
enum BodyAt {
    Json,
    Form,
    /// A group's: the body of whichever request flattens it, JSON or form.
    OfRequest,
}

/// The code of each field: written (`__w`, a `&mut RequestWriter`), read back (`__r`, a
/// `&RequestReader`), scrubbed (`__s`). Calls are spelled in full (`Type::method(..)`), never
/// by method syntax, which a user's extension trait in scope could take over.
#[derive(Default)]
struct Codec {
    writes: Vec<TokenStream>,
    reads: Vec<TokenStream>,
    secrets: Vec<TokenStream>,
}

fn codec(fields: &[Field<RequestRole>], body: BodyAt) -> Codec {
    let p = private();
    let mut out = Codec::default();
    for field in fields {
        let role = field.goes();
        let f = field.ident;
        let ty = field.ty;
        let span = ty.span();
        let cfg = cfgs(field);
        let at = match role {
            RequestRole::SigningKey => {
                // Never on the wire: the server side holds the key it verified with.
                out.reads
                    .push(quote_spanned!(span=> #cfg #f: <#ty as #p::SigningKey>::from_key(__key)));
                out.secrets.push(quote_spanned!(span=> #cfg { #p::AsSecret::collect_secrets(<#ty as #p::SigningKey>::key(&self.#f), &mut __s); }));
                continue;
            }
            RequestRole::Flatten => {
                out.writes.push(
                    quote_spanned!(span=> #cfg { <#ty as #p::FieldGroup>::write_fields(&self.#f, __w); }),
                );
                out.reads.push(
                    quote_spanned!(span=> #cfg #f: <#ty as #p::FieldGroup>::read_fields(__r)?),
                );
                out.secrets.push(
                    quote_spanned!(span=> #cfg { ::core::iter::Extend::extend(&mut __s, <#ty as #p::FieldGroup>::secrets(&self.#f)); }),
                );
                continue;
            }
            RequestRole::Header => Some(quote!(#p::At::Header)),
            RequestRole::Query => Some(quote!(#p::At::Query)),
            RequestRole::Bearer => Some(quote!(#p::At::Bearer)),
            RequestRole::BasicUser => Some(quote!(#p::At::BasicUser)),
            RequestRole::BasicPassword => Some(quote!(#p::At::BasicPassword)),
            RequestRole::Body => match body {
                BodyAt::Json | BodyAt::OfRequest => None,
                BodyAt::Form => Some(quote!(#p::At::Form)),
            },
        };
        let wire = &field.wire;
        let inner = option_inner(ty).unwrap_or(ty);
        // Every use of the field's type names its trait in full at the type, so a type that
        // does not fit is one error there, not one per use.
        let to_text = quote_spanned!(span=> <#inner as #p::TextValue>::to_text);
        let from_text = quote_spanned!(span=> <#inner as #p::TextValue>::from_text);
        let opt = if field.optional { "_opt" } else { "" };
        let (write, read) = match (&at, body) {
            (Some(at), _) => {
                let read = format_ident!("text{opt}");
                (
                    quote!(#p::RequestWriter::put(__w, #at, #wire, #to_text(__v));),
                    quote!(#p::RequestReader::#read(__r, #at, #wire, #from_text)?),
                )
            }
            (None, BodyAt::OfRequest) => {
                let read = format_ident!("body{opt}");
                (
                    quote!(#p::RequestWriter::body(__w, #wire, #to_text(__v), __v);),
                    quote!(#p::RequestReader::#read(__r, #wire, #from_text)?),
                )
            }
            (None, _) => {
                let read = format_ident!("json{opt}");
                (
                    quote_spanned!(span=> #p::RequestWriter::json(__w, #wire, __v);),
                    quote_spanned!(span=> #p::RequestReader::#read(__r, #wire)?),
                )
            }
        };
        out.writes.push(if field.optional {
            quote!(#cfg if let ::core::option::Option::Some(__v) = &self.#f { #write })
        } else {
            quote!(#cfg { let __v = &self.#f; #write })
        });
        out.reads.push(quote!(#cfg #f: #read));
        let source = field.attrs.from.as_ref().map(|from| &from.value);
        let (session, fresh) = match source {
            Some(Source::Session(_)) => (true, false),
            Some(Source::Uuid | Source::Now(..)) => (false, true),
            Some(Source::Config(_) | Source::Extras(_) | Source::Value(_)) | None => (false, false),
        };
        let credential = matches!(role, RequestRole::Bearer | RequestRole::BasicPassword);
        if session || credential {
            out.secrets.push(
                quote_spanned!(span=> #cfg { #p::AsSecret::collect_secrets(&self.#f, &mut __s); }),
            );
        } else if !fresh {
            // Any other field (a config's `ClientSecret`, a hand-set token, a provider's
            // context value) is a secret when its type is one.
            out.secrets.push(quote! {#cfg {
                #[allow(unused_imports)]
                use #p::{IsSecret as _, NotSecret as _};
                (&#p::SecretProbe(&self.#f)).__token_collect_if_secret(&mut __s);
            }});
        }
    }
    out
}

fn secrets_fn(secrets: &[TokenStream]) -> TokenStream {
    if secrets.is_empty() {
        return quote!();
    }
    quote! {
        fn secrets(&self) -> ::std::vec::Vec<&str> {
            let mut __s = ::std::vec::Vec::new();
            #(#secrets)*
            __s
        }
    }
}

/// Where a request field (or constant) goes, as `FieldGroup::WIRES` lists it: the body, a
/// header, the query, or a credential (`Authorization`).
fn wire_at(role: RequestRole) -> Option<TokenStream> {
    let p = private();
    match role {
        RequestRole::Body => Some(quote!(#p::At::Form)),
        RequestRole::Header => Some(quote!(#p::At::Header)),
        RequestRole::Query => Some(quote!(#p::At::Query)),
        RequestRole::Bearer => Some(quote!(#p::At::Bearer)),
        RequestRole::BasicUser => Some(quote!(#p::At::BasicUser)),
        RequestRole::BasicPassword => Some(quote!(#p::At::BasicPassword)),
        RequestRole::SigningKey | RequestRole::Flatten => None,
    }
}

/// "body field `a`", "header `X-A`", "query parameter `q`", "`Authorization`".
fn wire_words(role: RequestRole, wire: &str) -> String {
    match role {
        RequestRole::Body => format!("body field `{wire}`"),
        RequestRole::Header => format!("header `{wire}`"),
        RequestRole::Query => format!("query parameter `{wire}`"),
        RequestRole::Bearer | RequestRole::BasicUser | RequestRole::BasicPassword => {
            "`Authorization`".to_owned()
        }
        RequestRole::SigningKey | RequestRole::Flatten => String::new(),
    }
}

/// Compile-time checks that no flattened group writes where the request itself, or another
/// group, already does: the groups' fields are known only to their own expansion.
fn flatten_checks(model: &Model, fields: &[Field<RequestRole>]) -> TokenStream {
    let p = private();
    let groups: Vec<&Field<RequestRole>> = fields
        .iter()
        .filter(|f| f.goes() == RequestRole::Flatten)
        .collect();
    if groups.is_empty() {
        return quote!();
    }
    // What the request writes itself: its fields, its constants, its signature; each with
    // the `cfg` of the field it is.
    let mut own: Vec<(RequestRole, String, String, Span, TokenStream)> = Vec::new();
    for field in fields {
        let role = field.goes();
        if wire_at(role).is_some() {
            let name = match role {
                RequestRole::Bearer | RequestRole::BasicUser | RequestRole::BasicPassword => {
                    String::new()
                }
                _ => field.wire.clone(),
            };
            let what = format!("field `{}`", field.ident);
            own.push((role, name, what, field.ident.span(), cfgs(field)));
        }
    }
    let top = &model.top;
    for (role, constants) in [
        (RequestRole::Header, &top.headers),
        (RequestRole::Query, &top.queries),
        (RequestRole::Body, &top.bodies),
    ] {
        for c in constants {
            let name = c.name.value();
            let name = name.split('.').next().unwrap_or_default().to_owned();
            let what = format!("the constant {}", wire_words(role, &name));
            own.push((role, name, what, c.name.span(), quote!()));
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
        own.push((
            role,
            name.value(),
            "the signature".to_owned(),
            name.span(),
            quote!(),
        ));
    }
    let mut checks = Vec::new();
    let get = matches!(&top.method, Some((method, _)) if method.value == Method::Get);
    let form = matches!(&top.format, Some(format) if format.value == BodyFormat::Form);
    for (i, group) in groups.iter().enumerate() {
        let (g, ty) = (group.ident, group.ty);
        let wires = quote_spanned!(ty.span()=> <#ty as #p::FieldGroup>::WIRES);
        let group_cfg = cfgs(group);
        if get {
            let message = format!(
                "the group flattened at `{g}` writes body fields, and a GET request sends no body: put them in the query or a header"
            );
            checks.push(quote_spanned! {ty.span()=>
                #group_cfg
                const _: () = if #p::wires_at(#wires, #p::At::Form) {
                    ::core::panic!(#message)
                };
            });
        }
        for (role, name, what, span, own_cfg) in &own {
            let at = wire_at(*role);
            let message = format!(
                "{what} and a field of the group flattened at `{g}` both go to {}",
                wire_words(*role, name)
            );
            checks.push(quote_spanned! {*span=>
                #group_cfg
                #own_cfg
                const _: () = if #p::wires_have(#wires, #at, #name) {
                    ::core::panic!(#message)
                };
            });
            // A form request's query and body are one set of parameters: the server side
            // refuses one sent in both.
            let other = match role {
                RequestRole::Query if form => RequestRole::Body,
                RequestRole::Body if form => RequestRole::Query,
                _ => continue,
            };
            let other_at = wire_at(other);
            let message = format!(
                "{what} goes to {} and a field of the group flattened at `{g}` to {}: a form request sends the query and the body as one set of parameters, and the server side refuses one sent in both",
                wire_words(*role, name),
                wire_words(other, name)
            );
            checks.push(quote_spanned! {*span=>
                #group_cfg
                #own_cfg
                const _: () = if #p::wires_have(#wires, #other_at, #name) {
                    ::core::panic!(#message)
                };
            });
        }
        for earlier in &groups[..i] {
            let (e, ety) = (earlier.ident, earlier.ty);
            let earlier_cfg = cfgs(earlier);
            let message =
                format!("the groups flattened at `{e}` and `{g}` both write the same field");
            checks.push(quote_spanned! {g.span()=>
                #group_cfg
                #earlier_cfg
                const _: () = if #p::wires_clash(<#ety as #p::FieldGroup>::WIRES, #wires) {
                    ::core::panic!(#message)
                };
            });
            if form {
                let message = format!(
                    "the groups flattened at `{e}` and `{g}` write a parameter of the same name, one in the query and one in the body: a form request sends them as one set of parameters, and the server side refuses one sent in both"
                );
                checks.push(quote_spanned! {g.span()=>
                    #group_cfg
                    #earlier_cfg
                    const _: () = if #p::wires_cross(<#ety as #p::FieldGroup>::WIRES, #wires) {
                        ::core::panic!(#message)
                    };
                });
            }
        }
    }
    // A signed parameter the request does not send itself is a flattened group's.
    for (part, tokens) in top.signature.iter().flat_map(|sign| &sign.parts) {
        let SignPart::Param(kind, name) = part else {
            continue;
        };
        if crate::valid::param_declared(model, fields, *kind, name) {
            continue;
        }
        let role = match kind {
            SlotKind::Body => RequestRole::Body,
            SlotKind::Header => RequestRole::Header,
            SlotKind::Query => RequestRole::Query,
        };
        let at = wire_at(role);
        let message = format!(
            "the request sends no {} to sign: neither its fields, its constants nor its flattened groups",
            wire_words(role, name)
        );
        let found = groups.iter().map(|group| {
            let ty = group.ty;
            cfg_or(
                &group.cfgs,
                quote!(bool),
                quote!(#p::wires_have(<#ty as #p::FieldGroup>::WIRES, #at, #name)),
                quote!(false),
            )
        });
        checks.push(quote_spanned! {tokens.span()=>
            const _: () = if !(#(#found)||*) {
                ::core::panic!(#message)
            };
        });
    }
    quote!(#(#checks)*)
}

fn request(model: &Model, fields: &[Field<RequestRole>]) -> TokenStream {
    let p = private();
    let top = &model.top;
    let ident = model.ident;
    let (method, path) = match &top.method {
        Some((method, path)) => (method.value, path.clone()),
        None => (Method::Post, LitStr::new("/", Span::call_site())),
    };
    let method = Ident::new(method.constant(), Span::call_site());
    let format_kind = top.format.as_ref().map_or(BodyFormat::Json, |f| f.value);
    let (format, body) = match format_kind {
        BodyFormat::Json => (quote!(#p::BodyFormat::Json), BodyAt::Json),
        BodyFormat::Form => (quote!(#p::BodyFormat::Form), BodyAt::Form),
    };
    let response = top.response.as_ref().map(|r| &r.value);
    let error = top.error.as_ref().map(|e| &e.value);

    let mut writes = Vec::new();
    let mut checks = Vec::new();
    for (at, constants) in [
        (
            quote!(::core::option::Option::Some(#p::At::Header)),
            &top.headers,
        ),
        (
            quote!(::core::option::Option::Some(#p::At::Query)),
            &top.queries,
        ),
        (quote!(::core::option::Option::None), &top.bodies),
    ] {
        for c in constants {
            let (name, value) = (&c.name, &c.value.text);
            writes.push(quote!(#p::RequestWriter::constant(__w, #at, #name, #value);));
            checks.push(quote!(#p::RequestReader::expect(__r, #at, #name, #value)?;));
        }
    }
    let Codec {
        writes: field_writes,
        reads,
        secrets,
    } = codec(fields, body);
    writes.extend(field_writes);
    if let Some(Signature {
        into: Some((SlotKind::Body, _)),
        ..
    }) = &top.signature
    {
        writes.push(quote!(#p::RequestWriter::signature_in_body(__w);));
    }
    let secrets = secrets_fn(&secrets);
    let from_context = from_context(model, fields);
    let extras_check = extras_check(model);
    let flatten_checks = flatten_checks(model, fields);
    let refresh_endpoint = refresh_endpoint(model, fields);
    let signing_key = fields.iter().find(|f| f.goes() == RequestRole::SigningKey);
    let (signature, encode, decode) = match (&top.signature, signing_key) {
        (Some(sign), Some(key)) => {
            let declared = signature(fields, sign);
            (
                quote!(const SIGNATURE: ::core::option::Option<#p::RequestSignature> = ::core::option::Option::Some(#declared);),
                {
                    let (f, ty) = (key.ident, key.ty);
                    let key = quote_spanned!(ty.span()=> <#ty as #p::SigningKey>::key(&self.#f));
                    quote! {
                        let mut __request = #p::RequestWriter::finish(__writer, base_url, &<Self as #p::Endpoint>::secrets(self))?;
                        #p::sign_request(Self::SIGNATURE, &mut __request, #key)?;
                        ::core::result::Result::Ok(__request)
                    }
                },
                quote! {
                    fn decode_request(
                        _request: &#p::http::Request<::std::vec::Vec<u8>>,
                    ) -> ::core::result::Result<Self, #p::RequestError> {
                        ::core::result::Result::Err(#p::unverified())
                    }

                    fn decode_signed_request(
                        request: &#p::http::Request<::std::vec::Vec<u8>>,
                        __key: &#p::ClientSecret,
                    ) -> ::core::result::Result<Self, #p::SignedRequestError> {
                        #p::verify_request(Self::SIGNATURE, request, __key)?;
                        let __r = &#p::RequestReader::new(request, Self::METHOD, #format)?;
                        #(#checks)*
                        ::core::result::Result::Ok(Self { #(#reads,)* })
                    }
                },
            )
        }
        _ => (
            quote!(),
            quote!(#p::RequestWriter::finish(__writer, base_url, &<Self as #p::Endpoint>::secrets(self))),
            quote! {
                fn decode_request(
                    request: &#p::http::Request<::std::vec::Vec<u8>>,
                ) -> ::core::result::Result<Self, #p::RequestError> {
                    let __r = &#p::RequestReader::new(request, Self::METHOD, #format)?;
                    #(#checks)*
                    ::core::result::Result::Ok(Self { #(#reads,)* })
                }
            },
        ),
    };
    // A success answer that declares its error's code field (or writes under its error's
    // envelope), with no rule telling a success code from an error code, would be read as
    // that error: refuse to compile.
    let trap = match (response, error) {
        (Some(response), Some(_)) => quote_spanned! {response.span()=>
            const _: () = if #p::endpoint_code_field_trap::<#ident>() {
                ::core::panic!(
                    "the response declares the field that holds its error's code (or a field under the error's envelope), and the error does not say which codes mean success: every success answer carrying that field would be read as an error. Add `success_codes(...)` to the error's `#[token_endpoint(error, ...)]` (`\"\"`, `null` and an absent code are always a success), or a `#[token(result_status)]` field to an envelope error"
                )
            };
        },
        _ => quote!(),
    };
    quote! {
        impl #p::Endpoint for #ident {
            type Response = #response;
            type Error = #error;
            const METHOD: #p::http::Method = #p::http::Method::#method;
            const PATH: &'static str = #path;
            #signature

            fn encode_request(
                &self,
                base_url: &#p::url::Url,
            ) -> ::core::result::Result<#p::http::Request<::std::vec::Vec<u8>>, #p::EndpointError> {
                let mut __writer = #p::RequestWriter::new(Self::METHOD, Self::PATH, #format);
                let __w = &mut __writer;
                #(#writes)*
                #encode
            }

            #decode

            #secrets
        }
        #trap
        #flatten_checks
        #from_context
        #extras_check
        #refresh_endpoint
    }
}

/// A field group: written, read and scrubbed by the requests that flatten it, and filled
/// from the context by its own `FromContext`.
fn group(model: &Model, fields: &[Field<RequestRole>]) -> TokenStream {
    let p = private();
    let ident = model.ident;
    let Codec {
        writes,
        reads,
        secrets,
    } = codec(fields, BodyAt::OfRequest);
    let wires = fields.iter().filter_map(|f| {
        let role = f.goes();
        let at = wire_at(role)?;
        let name = match role {
            RequestRole::Bearer | RequestRole::BasicUser | RequestRole::BasicPassword => "",
            _ => f.wire.as_str(),
        };
        let cfg = cfgs(f);
        Some(quote!(#cfg (#at, #name)))
    });
    let from_context = from_context(model, fields);
    let extras_check = extras_check(model);
    let group_refresh = group_refresh(model, fields);
    quote! {
        impl #p::FieldGroup for #ident {
            const WIRES: &'static [(#p::At, &'static str)] = &[#(#wires),*];

            fn write_fields(&self, __w: &mut #p::RequestWriter) {
                #(#writes)*
            }

            fn read_fields(__r: &#p::RequestReader<'_>) -> ::core::result::Result<Self, #p::RequestError> {
                ::core::result::Result::Ok(Self { #(#reads,)* })
            }

            fn secrets(&self) -> ::std::vec::Vec<&str> {
                #[allow(unused_mut)]
                let mut __s = ::std::vec::Vec::new();
                #(#secrets)*
                __s
            }
        }
        #from_context
        #extras_check
        #group_refresh
    }
}

/// The config type a request or group reads `from = config.*` (`config = Type`), and the
/// generics of an impl over it: without one, any config (`__C`).
fn config_of(model: &Model) -> (TokenStream, syn::Type) {
    match &model.top.config {
        Some(config) => (quote!(), config.value.clone()),
        None => {
            let c = format_ident!("__C");
            (quote!(<#c: ?::core::marker::Sized>), syn::parse_quote!(#c))
        }
    }
}

/// The server side's reading of a request's (or group's) own fields: the refresh token of
/// the field `from = refresh_token`, and a check of each field read `from = config.*`
/// (but the signing key) against `__config`.
struct ServerSide {
    refresh_token: Option<TokenStream>,
    checks: Vec<TokenStream>,
}

fn server_side(fields: &[Field<RequestRole>]) -> ServerSide {
    let mut out = ServerSide {
        refresh_token: None,
        checks: Vec::new(),
    };
    for field in fields {
        let (f, ty, wire) = (field.ident, field.ty, &field.wire);
        let span = ty.span();
        let cfg = cfgs(field);
        match (
            field.goes(),
            field.attrs.from.as_ref().map(|from| &from.value),
        ) {
            (_, Some(Source::Session(value))) if value.value == SessionValue::RefreshToken => {
                let value = if field.optional {
                    quote_spanned!(span=> ::core::option::Option::map(::core::option::Option::as_ref(&self.#f), |__t| ::core::convert::Into::into(::core::clone::Clone::clone(__t))))
                } else {
                    quote_spanned!(span=> ::core::option::Option::Some(::core::convert::Into::into(::core::clone::Clone::clone(&self.#f))))
                };
                let p = private();
                out.refresh_token = Some(cfg_or(
                    &field.cfgs,
                    quote!(::core::option::Option<#p::RefreshToken>),
                    value,
                    quote!(::core::option::Option::None),
                ));
            }
            // The key is checked by verifying the signature.
            (RequestRole::SigningKey, _) => {}
            (_, Some(Source::Config(members))) => out.checks.push({
                let config_value = config_value(span, ty, members);
                quote_spanned! {span=>
                    #cfg
                    if self.#f != #config_value {
                        return ::core::option::Option::Some(#wire);
                    }
                }
            }),
            _ => {}
        }
    }
    out
}

/// The server side's reading of a `from = config.a.b` field of type `ty` from `__config`:
/// a clone converted with `Into`, as `FromContext` reads it.
fn config_value(span: Span, ty: &syn::Type, members: &[syn::Member]) -> TokenStream {
    quote_spanned! {span=>
        ::core::convert::Into::<#ty>::into(::core::clone::Clone::clone(&__config #(.#members)*))
    }
}

/// `RefreshEndpoint`, for a request declaring `provider = "name"`: its config type and
/// name, and the server side's reading of its sources (the refresh token, the fields taken
/// from the config, the HMAC key), its flattened groups' included.
fn refresh_endpoint(model: &Model, fields: &[Field<RequestRole>]) -> TokenStream {
    let Some(name) = &model.top.provider else {
        return quote!();
    };
    let p = private();
    let ident = model.ident;
    let config = match &model.top.config {
        Some(config) => {
            let ty = &config.value;
            quote!(#ty)
        }
        None => quote!(()),
    };
    let ServerSide {
        refresh_token,
        mut checks,
    } = server_side(fields);
    let groups: Vec<&Field<RequestRole>> = fields
        .iter()
        .filter(|f| f.goes() == RequestRole::Flatten)
        .collect();
    let group = |ty: &syn::Type| quote_spanned!(ty.span()=> <#ty as #p::GroupRefresh<#config>>);
    let mut refresh_token = refresh_token.unwrap_or_else(|| quote!(::core::option::Option::None));
    let mut reads = Vec::new();
    for field in &groups {
        let (f, g) = (field.ident, group(field.ty));
        let cfg = cfgs(field);
        let group_token = cfg_or(
            &field.cfgs,
            quote!(::core::option::Option<#p::RefreshToken>),
            quote!(#g::refresh_token(&self.#f)),
            quote!(::core::option::Option::None),
        );
        refresh_token = quote!(::core::option::Option::or_else(#refresh_token, || #group_token));
        checks.push(quote! {
            #cfg
            if let ::core::option::Option::Some(__wire) = #g::config_mismatch(&self.#f, __config) {
                return ::core::option::Option::Some(__wire);
            }
        });
        reads.push(cfg_or(
            &field.cfgs,
            quote!(bool),
            quote!(#g::READS_REFRESH_TOKEN),
            quote!(false),
        ));
    }
    // Without a field of its own reading the refresh token (`valid.rs` said so when it has
    // no group either), one of its groups does.
    let reads_own = fields.iter().any(|f| f.reads(SessionValue::RefreshToken));
    let issues = model.top.issue.is_some();
    let group_reads = (!issues && !reads_own && !groups.is_empty()).then(|| {
        let message = format!(
            "`provider = \"{}\"` declares the refresh endpoint: one field reads `from = refresh_token`, and neither `{}` nor a group it flattens has one",
            name.value(),
            ident
        );
        quote_spanned! {name.span()=>
            const _: () = if !(#(#reads)||*) {
                ::core::panic!(#message)
            };
        }
    });
    let key = match (
        &model.top.signature,
        fields.iter().find(|f| f.goes() == RequestRole::SigningKey),
    ) {
        (
            Some(Signature {
                algorithm: Some((Algorithm::HmacSha256, _)),
                ..
            }),
            Some(field),
        ) => match field.attrs.from.as_ref().map(|from| &from.value) {
            Some(Source::Config(members)) => {
                let ty = field.ty;
                let key = config_value(ty.span(), ty, members);
                quote_spanned! {ty.span()=>
                    ::core::option::Option::Some(::core::clone::Clone::clone(<#ty as #p::SigningKey>::key(&#key)))
                }
            }
            _ => quote!(::core::option::Option::None),
        },
        _ => quote!(::core::option::Option::None),
    };
    // The sessions `RefreshProvider` refreshes hold the response's extras: a request reading
    // `from = extras.*` from another type would read nothing.
    let session_extras = match (&model.top.extras, &model.top.response) {
        (Some(extras), Some(response)) => {
            let (ty, response) = (&extras.value, &response.value);
            quote_spanned! {ty.span()=>
                const _: () = {
                    fn __session_extras<__X: #p::SessionExtras<__S>, __S>() {}
                    fn __check() {
                        __session_extras::<#ty, <#response as #p::TokenResponse>::Extras>();
                    }
                };
            }
        }
        _ => quote!(),
    };
    let client_id = fields
        .iter()
        .filter(|f| f.attrs.client_id.is_some())
        .find_map(
            |field| match field.attrs.from.as_ref().map(|from| &from.value) {
                Some(Source::Config(members)) => {
                    let span = field
                        .attrs
                        .client_id
                        .as_ref()
                        .map_or(field.ident.span(), Ident::span);
                    let ty = quote!(::core::option::Option<::std::string::String>);
                    // A field compiled out names no client (its config field may be gone too).
                    let value = cfg_or(
                        &field.cfgs,
                        ty.clone(),
                        {
                            // Read as the request reads it (a clone, converted with `Into`), then
                            // named through the field type's `ClientId`, which no secret has.
                            let fty = field.ty;
                            let p = private();
                            let id = config_value(span, fty, members);
                            quote_spanned!(fty.span()=> <#fty as #p::ClientId>::client_id(&#id))
                        },
                        quote!(::core::option::Option::None),
                    );
                    Some(quote_spanned! {span=>
                        fn client_id(__config: &Self::Config) -> #ty {
                            #value
                        }
                    })
                }
                _ => None,
            },
        );
    let windows = windows(fields);
    let stale_time = (!windows.is_empty()).then(|| {
        quote! {
            fn stale_time(&self, __now: #p::OffsetDateTime) -> ::core::option::Option<&'static str> {
                #(#windows)*
                ::core::option::Option::None
            }
        }
    });
    quote! {
        impl #p::RefreshEndpoint for #ident {
            type Config = #config;
            const PROVIDER: &'static str = #name;
            const ISSUES: bool = #issues;

            fn refresh_token(&self) -> ::core::option::Option<#p::RefreshToken> {
                #refresh_token
            }

            #[allow(unused_variables)]
            fn config_mismatch(&self, __config: &Self::Config) -> ::core::option::Option<&'static str> {
                #(#checks)*
                ::core::option::Option::None
            }

            #[allow(unused_variables)]
            fn verify_key(__config: &Self::Config) -> ::core::option::Option<#p::ClientSecret> {
                #key
            }

            #stale_time
            #client_id
        }
        #group_reads
        #session_extras
    }
}

/// The `TimeFormat` a `now_*` source writes.
fn time_format(format: &Timestamp) -> TokenStream {
    let p = private();
    match format {
        Timestamp::UnixSeconds => quote!(#p::TimeFormat::UnixSeconds),
        Timestamp::UnixMillis => quote!(#p::TimeFormat::UnixMillis),
        Timestamp::Rfc3339 => quote!(#p::TimeFormat::Rfc3339),
        Timestamp::DateTime(offset) => quote!(#p::TimeFormat::DateTime(#offset)),
        Timestamp::Rfc3339At(offset) => quote!(#p::TimeFormat::Rfc3339At(#offset)),
    }
}

/// `stale_time`'s checks: each `now_*` field with a `window` (`valid.rs` allows it there
/// only) within it of the server's clock.
fn windows(fields: &[Field<RequestRole>]) -> Vec<TokenStream> {
    let p = private();
    fields
        .iter()
        .filter_map(|field| {
            let window = field.attrs.window.as_ref()?.value;
            let Source::Now(format) = &field.attrs.from.as_ref()?.value else {
                return None;
            };
            let (f, wire, format) = (field.ident, &field.wire, time_format(format));
            let cfg = cfgs(field);
            let value = if field.optional {
                quote!(::core::option::Option::as_ref(&self.#f))
            } else {
                quote!(::core::option::Option::Some(&self.#f))
            };
            Some(quote! {
                #cfg
                if !#p::time_within(#value, #format, #window, __now) {
                    return ::core::option::Option::Some(#wire);
                }
            })
        })
        .collect()
}

/// A group's [`server_side`], for the `provider = "..."` requests that flatten it.
fn group_refresh(model: &Model, fields: &[Field<RequestRole>]) -> TokenStream {
    let p = private();
    let ident = model.ident;
    let (generics, config) = config_of(model);
    let ServerSide {
        refresh_token,
        checks,
    } = server_side(fields);
    let reads = refresh_token.is_some();
    let refresh_token = refresh_token.unwrap_or_else(|| quote!(::core::option::Option::None));
    quote! {
        impl #generics #p::GroupRefresh<#config> for #ident {
            const READS_REFRESH_TOKEN: bool = #reads;

            fn refresh_token(&self) -> ::core::option::Option<#p::RefreshToken> {
                #refresh_token
            }

            #[allow(unused_variables)]
            fn config_mismatch(&self, __config: &#config) -> ::core::option::Option<&'static str> {
                #(#checks)*
                ::core::option::Option::None
            }
        }
    }
}

/// The `RequestSignature` a `sign(...)` declares, as a constant expression; with
/// `rsa_sha256`, a compile-time check that token-core's `rsa` feature is on.
fn signature(fields: &[Field<RequestRole>], sign: &Signature) -> TokenStream {
    let p = private();
    let algorithm = match sign.algorithm.as_ref().map(|(a, _)| *a) {
        Some(Algorithm::RsaSha256) => quote!(#p::sign::Algorithm::RsaSha256),
        Some(Algorithm::HmacSha256) | None => quote!(#p::sign::Algorithm::HmacSha256),
    };
    let rsa_check = match &sign.algorithm {
        Some((Algorithm::RsaSha256, ident)) => quote_spanned! {ident.span()=>
            const _: () = ::core::assert!(#p::sign::RSA_ENABLED, "`sign(rsa_sha256, ...)` needs token-core's `rsa` feature: `token-core = {{ ..., features = [\"rsa\"] }}`");
        },
        _ => quote!(),
    };
    let slot = |kind: SlotKind, name: &str| match kind {
        SlotKind::Query => quote!(#p::sign::Slot::Query(#name)),
        SlotKind::Body => quote!(#p::sign::Slot::Body(#name)),
        SlotKind::Header => quote!(#p::sign::Slot::Header(#name)),
    };
    let parts = sign.parts.iter().map(|(part, _)| match part {
        SignPart::Method => quote!(#p::sign::Part::Method),
        SignPart::Path => quote!(#p::sign::Part::Path),
        SignPart::Timestamp => quote!(#p::sign::Part::Timestamp),
        SignPart::SortedParams => quote!(#p::sign::Part::SortedParams),
        SignPart::SortedPairs(pair, join) => {
            quote!(#p::sign::Part::SortedPairs { pair: #pair, join: #join })
        }
        SignPart::Body => quote!(#p::sign::Part::Body),
        SignPart::Param(kind, name) => {
            let slot = slot(*kind, name);
            quote!(#p::sign::Part::Param(#slot))
        }
    });
    let default = match sign.algorithm.as_ref().map(|(a, _)| *a) {
        Some(Algorithm::RsaSha256) => SignEncoding::Base64,
        _ => SignEncoding::HexLower,
    };
    let encoding = match sign.encoding.as_ref().map_or(default, |(e, _)| *e) {
        SignEncoding::HexLower => quote!(#p::sign::Encoding::HexLower),
        SignEncoding::HexUpper => quote!(#p::sign::Encoding::HexUpper),
        SignEncoding::Base64 => quote!(#p::sign::Encoding::Base64),
    };
    let into = match &sign.into {
        Some((kind, name)) => slot(*kind, &name.value()),
        None => slot(SlotKind::Query, "sign"),
    };
    let separator = sign.separator.as_ref().map(|s| quote!(.with_separator(#s)));
    let timestamp = fields
        .iter()
        .find(|f| matches!(&f.attrs.from, Some(from) if matches!(from.value, Source::Now(..))))
        .filter(|_| sign.parts.iter().any(|(p, _)| *p == SignPart::Timestamp))
        .map(|f| {
            // Checked: the signed timestamp travels in a named slot.
            let slot = slot(slot_of(f.goes()).unwrap_or(SlotKind::Body), &f.wire);
            quote!(.with_timestamp(#slot))
        });
    quote! {{
        #rsa_check
        #p::RequestSignature::new(#algorithm, Self::PATH, &[#(#parts),*], #encoding, #into)
            #separator #timestamp
    }}
}

/// A request's or group's `extras = Type` is an extras struct: `from = extras.*` reads the
/// session's extras, so another type would compile and fail every call. A `provider = "..."`
/// request's is checked against its response's extras instead (`SessionExtras`), which says
/// more.
fn extras_check(model: &Model) -> TokenStream {
    let p = private();
    match &model.top.extras {
        Some(extras) if model.top.provider.is_none() || model.top.response.is_none() => {
            let ty = &extras.value;
            quote_spanned! {ty.span()=>
                const _: () = {
                    fn __declared_extras<__X: #p::DeclaredExtras>() {}
                    fn __check() {
                        __declared_extras::<#ty>();
                    }
                };
            }
        }
        _ => quote!(),
    }
}

/// `FromContext`, when every field says where its value comes from (a flattened group's
/// fields, through the group's own).
fn from_context(model: &Model, fields: &[Field<RequestRole>]) -> TokenStream {
    let p = private();
    let ident = model.ident;
    let (generics, config) = config_of(model);
    let mut inits = Vec::new();
    let mut bounds = Vec::new();
    for field in fields {
        let f = field.ident;
        let span = field.ty.span();
        let cfg = cfgs(field);
        if field.goes() == RequestRole::Flatten {
            let ty = field.ty;
            inits.push(
                quote_spanned!(span=> #cfg #f: <#ty as #p::FieldGroup>::from_context::<#config>(__cx)?),
            );
            if model.top.config.is_none() {
                bounds.push(quote_spanned!(span=> #ty: #p::FromContext<#config>));
            }
            continue;
        }
        let Some(from) = &field.attrs.from else {
            return quote!();
        };
        let inner = option_inner(field.ty).unwrap_or(field.ty);
        let what = field.wire.as_str();
        let value = match &from.value {
            Source::Uuid => {
                let fresh = quote_spanned!(span=> #p::fresh_uuid());
                if field.optional {
                    some_or_none(Some(fresh))
                } else {
                    fresh
                }
            }
            Source::Now(format) => {
                let format = time_format(format);
                let now = quote_spanned!(span=> #p::timestamp::<#inner>(__cx.now, #format, #what)?);
                if field.optional {
                    some_or_none(Some(now))
                } else {
                    now
                }
            }
            Source::Session(value) => {
                let name = Ident::new(value.value.name(), value.key.span());
                let what = value.value.name().replace('_', " ");
                if field.optional {
                    quote_spanned!(span=> #p::optional(__cx.#name))
                } else {
                    quote_spanned!(span=> #p::required(__cx.#name, #what)?)
                }
            }
            Source::Value(name) => {
                let what = format!("context value `{}`", name.value());
                let value = quote_spanned!(span=> #p::context_value::<#inner, _>(__cx, #name)?);
                if field.optional {
                    quote_spanned!(span=> #p::optional(#value))
                } else {
                    quote_spanned!(span=> #p::required(#value, #what)?)
                }
            }
            Source::Extras(members) => {
                let extras = model.top.extras.as_ref().map(|e| e.value.clone());
                let absent = if field.optional {
                    quote!(::core::option::Option::None)
                } else {
                    let what = format!("session extra `{}`", quote!(#(#members).*));
                    quote!(return ::core::result::Result::Err(#p::missing_source(#what)))
                };
                quote_spanned! {span=>
                    match #p::context_extras::<#extras, _>(__cx)? {
                        ::core::option::Option::Some(__x) => ::core::convert::Into::into(::core::clone::Clone::clone(&__x #(.#members)*)),
                        ::core::option::Option::None => #absent,
                    }
                }
            }
            Source::Config(members) => quote_spanned! {span=>
                ::core::convert::Into::into(::core::clone::Clone::clone(&__cx.config #(.#members)*))
            },
        };
        inits.push(quote!(#cfg #f: #value));
    }
    let bounds = (!bounds.is_empty()).then(|| quote!(where #(#bounds),*));
    quote! {
        impl #generics #p::FromContext<#config> for #ident #bounds {
            fn from_context(
                __cx: &#p::RequestContext<'_, #config>,
            ) -> ::core::result::Result<Self, #p::EndpointError> {
                ::core::result::Result::Ok(Self { #(#inits,)* })
            }
        }
    }
}

// ---- responses -----------------------------------------------------------------------

/// `KeepExtras` for an extras struct: its `#[token(keep)]` fields are kept from the
/// previous set when a refresh's answer has none (or a blank one).
fn keep_extras(model: &Model, fields: &[Field<ExtrasRole>]) -> TokenStream {
    let p = private();
    let ident = model.ident;
    let kept = fields.iter().filter_map(|field| {
        let f = match field.role()? {
            ExtrasRole::Keep => field.ident,
        };
        let cfg = cfgs(field);
        Some(quote! {
            #cfg
            if #p::names_nothing(&self.#f) {
                self.#f = ::core::clone::Clone::clone(&__previous.#f);
            }
        })
    });
    // Every `Option` field is read leniently: an odd value there must not cost the tokens.
    let lenient = fields.iter().filter(|f| f.optional).map(|f| {
        let (ty, wire, cfg) = (f.ty, &f.wire, cfgs(f));
        quote_spanned!(ty.span()=> #cfg (#wire, #p::reads_as::<#ty> as #p::ReadsAs))
    });
    let wires = fields.iter().map(|f| {
        let (wire, cfg) = (&f.wire, cfgs(f));
        quote!(#cfg #wire)
    });
    quote! {
        impl #p::DeclaredExtras for #ident {}

        impl #p::KeepExtras for #ident {
            const LENIENT_FIELDS: &'static [(&'static str, #p::ReadsAs)] = &[#(#lenient),*];
            const WIRE_NAMES: &'static [&'static str] = &[#(#wires),*];

            #[allow(unused_variables)]
            fn keep_from(&mut self, __previous: &Self) {
                #(#kept)*
            }
        }
    }
}

/// The extras struct a response's `declare_extras = Name` declares: the response's `extra`
/// fields (those with no other role), each with its docs, `cfg`, wire name and `keep`, as
/// an `#[token_endpoint(extras)]` struct of the response's visibility would declare them.
fn declared_extras(model: &Model, fields: &[Field<AnswerRole>]) -> TokenStream {
    let (Some(declared), syn::Item::Struct(item)) = (&model.top.declare_extras, model.item) else {
        return quote!();
    };
    let name = &declared.value;
    let vis = &item.vis;
    let doc = format!(
        "The session's extras that [`{}`] declares: its fields with no token role, kept with the tokens.",
        model.ident
    );
    let members = fields
        .iter()
        .zip(&item.fields)
        .filter(|(f, _)| f.role() == Some(AnswerRole::Extra))
        .map(|(f, original)| {
            let (ident, ty, wire) = (f.ident, f.ty, &f.wire);
            let vis = &original.vis;
            let docs = original
                .attrs
                .iter()
                .filter(|a| a.path().is_ident("doc") || a.path().is_ident("cfg"));
            let keep = f.attrs.keep.as_ref().map(|keep| quote!(, #keep));
            quote! {
                #(#docs)*
                #[token(rename = #wire #keep)]
                #vis #ident: #ty
            }
        });
    quote! {
        #[doc = #doc]
        #[::token_core::token_endpoint(extras)]
        #[derive(
            ::core::clone::Clone,
            ::core::fmt::Debug,
            ::core::default::Default,
            ::core::cmp::PartialEq
        )]
        #vis struct #name {
            #(#members,)*
        }
    }
}

fn response(model: &Model, fields: &[Field<AnswerRole>]) -> TokenStream {
    let p = private();
    let ident = model.ident;
    let extras = match (&model.top.extras, &model.top.declare_extras) {
        (Some(extras), _) => {
            let ty = &extras.value;
            quote!(#ty)
        }
        (None, Some(declared)) => {
            let ident = &declared.value;
            quote!(#ident)
        }
        (None, None) => quote!(#p::NoExtras),
    };
    let constants = model.top.bodies.iter().map(|c| {
        let name = &c.name;
        let value = json_value(&c.value);
        quote!((#name, #value))
    });
    let envelope = model.top.envelope.as_ref().map(LitStr::value);
    // The extras type's own fields are not known here: its `KeepExtras::WIRE_NAMES` are
    // checked beside these (`EXTRAS_PATHS`).
    let answer_paths = fields
        .iter()
        .filter(|f| f.role() != Some(AnswerRole::Extras))
        .map(|f| {
            let path = match &envelope {
                Some(envelope) => format!("{envelope}.{}", f.wire),
                None => f.wire.clone(),
            };
            let cfg = cfgs(f);
            quote!(#cfg #path)
        })
        // A constant `""` (Shopee's `"error": ""`) is a success code whatever the error
        // declares: it cannot be read as an error, so it sets no trap.
        .chain(
            model
                .top
                .bodies
                .iter()
                .filter(|c| !c.value.text.is_empty())
                .map(|c| {
                    let name = c.name.value();
                    quote!(#name)
                }),
        )
        .collect::<Vec<_>>();
    let envelope = some_or_none(envelope.map(|e| quote!(#e)));
    let extras_paths = role_of(fields, AnswerRole::Extras).map(|field| {
        let (ty, cfg) = (field.ty, cfgs(field));
        quote_spanned! {ty.span()=>
            #cfg
            const EXTRAS_PATHS: (::core::option::Option<&'static str>, &'static [&'static str]) =
                (#envelope, <#ty as #p::KeepExtras>::WIRE_NAMES);
        }
    });
    // A field of the flattened extras type on the wire path of one of the answer's own
    // fields or constants is never read (the answer's field takes the key), and a server
    // writing the answer writes the key twice: refuse to compile.
    let extras_clash = role_of(fields, AnswerRole::Extras).map(|field| {
        let (ty, cfg) = (field.ty, cfgs(field));
        quote_spanned! {ty.span()=>
            #cfg
            const _: () = if #p::extras_clash::<#ident>() {
                ::core::panic!(
                    "a field of this extras type has the wire name of one of the response's own fields or constants: the response's field takes the key, so the extras field is never read, and a server writing the answer would write the key twice. Give one of them another wire name (`#[token(rename = \"...\")]`), or leave the field to one of them"
                )
            };
        }
    });
    let jwt = model.top.jwt_expiry;

    let mut into = Vec::new();
    let mut from = Vec::new();
    let access = role_of(fields, AnswerRole::AccessToken);
    // Both directions name the field's type through one trait, so a wrong type is one error.
    let access_init = match access {
        Some(field) => {
            let (f, ty) = (field.ident, field.ty);
            from.push(quote_spanned!(ty.span()=>
                #f: <#ty as #p::AccessTokenField>::from_token(&__set.access_token)));
            quote_spanned!(ty.span()=>
                #p::TokenSet::<Self::Extras>::new(<#ty as #p::AccessTokenField>::into_token(self.#f)))
        }
        None => quote!(::core::unreachable!()),
    };
    let expiry_instant = match role_of(fields, AnswerRole::Expiry) {
        Some(field) => {
            let (f, ty, wire) = (field.ident, field.ty, &field.wire);
            cfg_or(
                &field.cfgs,
                quote!(::core::option::Option<#p::time::OffsetDateTime>),
                quote_spanned!(ty.span()=> <#ty as #p::ExpiryField>::checked_instant(&self.#f, __now, #wire)),
                quote!(::core::option::Option::None),
            )
        }
        None => quote!(::core::option::Option::None),
    };
    // Expiry, token type and scope fields are read leniently: an odd value there must not
    // cost the tokens; so are `Option` extras, the answer's own and the extras type's.
    let lenient_fields = fields
        .iter()
        .filter(|f| {
            matches!(
                f.role(),
                Some(
                    AnswerRole::Expiry
                        | AnswerRole::RefreshExpiry
                        | AnswerRole::TokenType
                        | AnswerRole::Scope
                )
            ) || f.role() == Some(AnswerRole::Extra) && f.optional
        })
        .map(|f| {
            let (ty, wire, cfg) = (f.ty, &f.wire, cfgs(f));
            quote_spanned!(ty.span()=> #cfg (#wire, #p::reads_as::<#ty> as #p::ReadsAs))
        });
    let extras_lenient = match role_of(fields, AnswerRole::Extras) {
        Some(field) => {
            let ty = field.ty;
            cfg_or(
                &field.cfgs,
                quote!(&'static [(&'static str, #p::ReadsAs)]),
                quote_spanned!(ty.span()=> <#ty as #p::KeepExtras>::LENIENT_FIELDS),
                quote!(&[]),
            )
        }
        None => quote!(&[]),
    };
    into.push(quote!(__set.access_expires_at = #p::access_expiry(#expiry_instant, &__set.access_token, #jwt);));
    for field in fields {
        let f = field.ident;
        let ty = field.ty;
        let span = ty.span();
        let cfg = cfgs(field);
        let (into_len, from_len) = (into.len(), from.len());
        match field.role() {
            Some(AnswerRole::AccessToken) => {}
            Some(AnswerRole::RefreshToken) => {
                into.push(quote_spanned!(span=> __set.refresh_token = self.#f;));
                from.push(
                    quote_spanned!(span=> #f: ::core::clone::Clone::clone(&__set.refresh_token)),
                );
            }
            Some(AnswerRole::Expiry) => {
                from.push(quote_spanned!(span=> #f: <#ty as #p::ExpiryField>::from_instant(__set.access_expires_at, __now)));
            }
            Some(AnswerRole::RefreshExpiry) => {
                let wire = &field.wire;
                into.push(quote_spanned!(span=> __set.refresh_expires_at = <#ty as #p::ExpiryField>::checked_refresh_instant(&self.#f, __now, #wire);));
                from.push(quote_spanned!(span=> #f: <#ty as #p::ExpiryField>::from_instant(__set.refresh_expires_at, __now)));
            }
            Some(AnswerRole::TokenType) => {
                into.push(quote_spanned!(span=>
                    __set.token_type = <#ty as #p::TextSlot>::get_text(&self.#f).map(<#p::TokenType as ::core::convert::From<::std::string::String>>::from);));
                from.push(quote_spanned!(span=>
                    #f: <#ty as #p::TextSlot>::from_text(::core::option::Option::map(::core::option::Option::as_ref(&__set.token_type), |t| ::std::string::ToString::to_string(#p::TokenType::as_str(t))))));
            }
            Some(AnswerRole::Scope) => {
                into.push(
                    quote_spanned!(span=> __set.scope = <#ty as #p::TextSlot>::get_text(&self.#f);),
                );
                from.push(quote_spanned!(span=>
                    #f: <#ty as #p::TextSlot>::from_text(::core::clone::Clone::clone(&__set.scope))));
            }
            // Both directions name the field's type through one trait, so a wrong type is
            // one error.
            Some(AnswerRole::Extras) => {
                into.push(quote_spanned!(span=>
                    __set.extras = <#ty as #p::ExtrasSlot<_>>::into_slot(self.#f);));
                from.push(quote_spanned!(span=>
                    #f: <#ty as #p::ExtrasSlot<_>>::from_slot(::core::clone::Clone::clone(&__set.extras))));
            }
            Some(AnswerRole::Extra) => {
                into.push(quote_spanned!(span=>
                    __set.extras.#f = <#ty as #p::ExtrasSlot<_>>::into_slot(self.#f);));
                from.push(quote_spanned!(span=>
                    #f: <#ty as #p::ExtrasSlot<_>>::from_slot(::core::clone::Clone::clone(&__set.extras.#f))));
            }
            None => from.push(quote_spanned!(span=> #f: ::core::default::Default::default())),
        }
        // What touches the field carries its `cfg`: a statement as a block (an assignment
        // takes no attribute), a struct literal's field as it is.
        for statement in &mut into[into_len..] {
            *statement = quote!(#cfg { #statement });
        }
        for init in &mut from[from_len..] {
            *init = quote!(#cfg #init);
        }
    }
    quote! {
        impl #p::TokenResponse for #ident {
            type Extras = #extras;
            const ANSWER_PATHS: &'static [&'static str] = &[#(#answer_paths),*];
            #extras_paths

            fn decode_body(body: &[u8]) -> ::core::result::Result<Self, ::std::string::String> {
                #p::decode_answer_json(body, #envelope, &[#(#lenient_fields),*], #extras_lenient)
            }

            fn encode_body(&self) -> ::std::vec::Vec<u8> {
                #p::encode_json(self, #envelope, &[#(#constants),*])
            }

            fn into_token_set(
                self,
                __now: #p::time::OffsetDateTime,
            ) -> ::core::result::Result<#p::TokenSet<Self::Extras>, ::std::string::String> {
                let mut __set = #access_init;
                #(#into)*
                ::core::result::Result::Ok(__set)
            }

            fn from_token_set(
                __set: &#p::TokenSet<Self::Extras>,
                __now: #p::time::OffsetDateTime,
            ) -> Self {
                Self { #(#from,)* }
            }
        }
        #extras_clash
    }
}

// ---- errors --------------------------------------------------------------------------

fn error(model: &Model, fields: &[Field<ErrorRole>]) -> TokenStream {
    let p = private();
    let ident = model.ident;
    let field = |role: ErrorRole| role_of(fields, role);
    let envelope = some_or_none(model.top.envelope.as_ref().map(|e| quote!(#e)));
    let code = |method: TokenStream| match field(ErrorRole::Code) {
        Some(f) => {
            let (i, ty) = (f.ident, f.ty);
            quote_spanned!(ty.span()=> <#ty as #p::ErrorCode>::#method(&self.#i))
        }
        None => quote!(::core::unreachable!()),
    };
    let (as_code, code_kind, code_status, code_wait) = (
        code(quote!(as_code)),
        code(quote!(kind)),
        code(quote!(status)),
        code(quote!(retry_after)),
    );
    let text = |role: ErrorRole, on: TokenStream| match field(role) {
        Some(f) => {
            let (i, ty) = (f.ident, f.ty);
            cfg_or(
                &f.cfgs,
                quote!(::core::option::Option<::std::string::String>),
                quote_spanned!(ty.span()=> <#ty as #p::TextSlot>::get_text(&#on.#i)),
                quote!(::core::option::Option::None),
            )
        }
        None => quote!(::core::option::Option::None),
    };
    let result_status_of_decoded = text(ErrorRole::ResultStatus, quote!(__e));
    let result_status = text(ErrorRole::ResultStatus, quote!(self));
    let message = text(ErrorRole::Message, quote!(self));
    let request_id = text(ErrorRole::RequestId, quote!(self));
    let status_field = match field(ErrorRole::HttpStatus) {
        Some(f) => {
            let (i, ty) = (f.ident, f.ty);
            cfg_or(
                &f.cfgs,
                quote!(::core::option::Option<u16>),
                quote_spanned!(ty.span()=> <#ty as #p::StatusField>::get_status(&self.#i)),
                quote!(::core::option::Option::None),
            )
        }
        None => quote!(::core::option::Option::None),
    };
    let default_status = model.top.status.unwrap_or(if model.top.envelope.is_some() {
        200
    } else {
        400
    });
    let on_status = model.top.on_status.iter().map(|on| {
        let status = on.status;
        let kind = kind_path(&on.kind);
        quote!((#status, #kind))
    });
    let code_wire = field(ErrorRole::Code)
        .map(|f| f.wire.clone())
        .unwrap_or_default();
    let code_path = match &model.top.envelope {
        Some(envelope) => format!("{}.{code_wire}", envelope.value()),
        None => code_wire.clone(),
    };
    // An integer code arriving as text is read as an integer by the success check as by the
    // code type itself.
    let numeric = match field(ErrorRole::Code) {
        Some(f) => {
            let ty = f.ty;
            quote_spanned!(ty.span()=> <#ty as #p::ErrorCode>::NUMERIC)
        }
        None => quote!(false),
    };
    let success_codes = model
        .top
        .success_codes
        .iter()
        .flat_map(|codes| codes.value.iter().map(|c| &c.text));
    // A success code that is also a variant's code: that variant is never read.
    let success_is_a_variant = match (&model.top.success_codes, field(ErrorRole::Code)) {
        (Some(codes), Some(f)) => {
            let (ty, texts) = (f.ty, codes.value.iter().map(|c| &c.text));
            quote_spanned! {codes.key.span()=>
                const _: () = if #p::success_code_is_declared::<#ty>(&[#(#texts),*]) {
                    ::core::panic!(
                        "a code of `success_codes(...)` is also a variant's code in the error's code enum: an answer with it is read as a success, never as that variant (and the sandbox's refusal with it reaches the client as a success). Remove one of them"
                    )
                };
            }
        }
        _ => quote!(),
    };
    // A result status compiled out is no rule.
    let success_rule = match (&model.top.success_codes, field(ErrorRole::ResultStatus)) {
        (Some(_), _) => quote!(true),
        (None, Some(f)) => cfg_or(&f.cfgs, quote!(bool), quote!(true), quote!(false)),
        (None, None) => quote!(false),
    };
    let from_refusal = from_refusal(model, fields, default_status);
    // Every field but the code is read leniently: a value its type cannot read is absent
    // (its default), so that an odd message or request id never hides a declared code.
    let lenient = fields
        .iter()
        .filter(|f| f.role() != Some(ErrorRole::Code))
        .map(|f| {
            let (ty, wire, cfg) = (f.ty, &f.wire, cfgs(f));
            quote_spanned!(ty.span()=> #cfg (#wire, #p::reads_as::<#ty> as #p::ReadsAs))
        });
    quote! {
        #success_is_a_variant
        impl #p::ErrorResponse for #ident {
            const CODE_PATH: ::core::option::Option<&'static str> =
                ::core::option::Option::Some(#code_path);
            const SUCCESS_RULE: bool = #success_rule;
            const ON_STATUS: &'static [(u16, #p::ErrorKind)] = &[#(#on_status),*];

            fn decode_error(
                __status: #p::http::StatusCode,
                body: &[u8],
            ) -> ::core::option::Option<Self> {
                let __e: Self =
                    #p::decode_error_json(body, #envelope, #code_wire, #numeric, &[#(#success_codes),*], &[#(#lenient),*])?;
                if #p::is_success(#result_status_of_decoded) {
                    return ::core::option::Option::None;
                }
                ::core::option::Option::Some(__e)
            }

            fn code(&self) -> ::std::string::String {
                #as_code
            }

            fn message(&self) -> ::core::option::Option<::std::string::String> {
                #message
            }

            fn request_id(&self) -> ::core::option::Option<::std::string::String> {
                #request_id
            }

            fn retry_after(&self) -> ::core::option::Option<::core::time::Duration> {
                #code_wait
            }

            fn kind(&self, status: #p::http::StatusCode) -> #p::ErrorKind {
                #p::classify(#result_status, #code_kind, Self::ON_STATUS, status)
            }

            fn encode_error(&self) -> (#p::http::StatusCode, ::std::vec::Vec<u8>) {
                (
                    #p::error_status(#status_field, #code_status, #default_status),
                    #p::encode_json(self, #envelope, &[]),
                )
            }

            #from_refusal
        }
    }
}

/// `ErrorResponse::from_refusal`: the code (and status) declared for the refusal, its
/// message, `F` in a result status, and every other field's `Default`.
fn from_refusal(model: &Model, fields: &[Field<ErrorRole>], default_status: u16) -> TokenStream {
    let p = private();
    let declared = model.top.refusals.iter().map(|r| {
        let reason = refusal_path(r.name.refusal, &r.name.ident);
        let code = some_or_none(r.code.as_ref().map(|c| quote!(#c)));
        let status = some_or_none(r.status.map(|s| quote!(#s)));
        quote!((#reason, #code, #status))
    });
    let code_ty = match role_of(fields, ErrorRole::Code) {
        Some(f) => f.ty.clone(),
        None => syn::parse_quote!(::std::string::String),
    };
    let answer = quote_spanned! {code_ty.span()=>
        <#code_ty as #p::ErrorCode>::answer_refusal(__reason, &[#(#declared),*])
    };
    let mut inits = Vec::new();
    let mut status_used = false;
    for field in fields {
        let (f, ty) = (field.ident, field.ty);
        let value = match field.role() {
            Some(ErrorRole::Code) => quote!(__code),
            Some(ErrorRole::Message) => quote_spanned!(ty.span()=>
                <#ty as #p::TextSlot>::from_text(::core::option::Option::Some(::std::string::ToString::to_string(__message)))),
            Some(ErrorRole::ResultStatus) => quote_spanned!(ty.span()=>
                <#ty as #p::TextSlot>::from_text(::core::option::Option::Some(::std::string::ToString::to_string("F")))),
            Some(ErrorRole::HttpStatus) => {
                status_used = true;
                quote_spanned!(ty.span()=>
                    <#ty as #p::StatusField>::from_status(__status))
            }
            // A sandbox's refusal has no request id of its own.
            Some(ErrorRole::RequestId) | None => {
                quote_spanned!(ty.span()=> ::core::default::Default::default())
            }
        };
        let cfg = cfgs(field);
        inits.push(quote!(#cfg #f: #value));
    }
    let status = match status_used {
        true => quote_spanned! {code_ty.span()=>
            let __status = __status
                .or_else(|| <#code_ty as #p::ErrorCode>::status(&__code))
                .unwrap_or(#default_status);
            // Unused when the status field is compiled out.
            let _ = __status;
        },
        false => quote!(let _ = __status;),
    };
    quote! {
        fn from_refusal(__reason: #p::RefusalReason, __message: &str) -> Self {
            let (__code, __status) = #answer;
            #status
            Self { #(#inits,)* }
        }
    }
}

/// `::token_core::__private::RefusalReason::<Variant>`, spanned at the declaration.
fn refusal_path(refusal: Refusal, at: &Ident) -> TokenStream {
    let p = private();
    let variant = Ident::new(refusal.variant(), at.span());
    quote!(#p::RefusalReason::#variant)
}

fn error_code(model: &Model, variants: &[Variant]) -> TokenStream {
    let p = private();
    let ident = model.ident;
    let mut as_code = Vec::new();
    let mut from_code = Vec::new();
    let mut kinds = Vec::new();
    let mut statuses = Vec::new();
    let mut waits = Vec::new();
    let mut other = None;
    for variant in variants {
        let v = &variant.original.ident;
        let cfgs = &variant.cfgs;
        let kind = some_or_none(variant.attrs.kind.as_ref().map(kind_path));
        let status = some_or_none(variant.attrs.status.map(|s| quote!(#s)));
        let wait = some_or_none((variant.attrs.retry_after.as_ref()).map(|w| {
            let secs = w.value;
            quote!(::core::time::Duration::from_secs(#secs))
        }));
        if variant.attrs.other.is_some() {
            as_code.push(quote!(Self::#v(__c) => ::std::string::ToString::to_string(__c)));
            kinds.push(quote!(Self::#v(_) => #kind));
            statuses.push(quote!(Self::#v(_) => #status));
            waits.push(quote!(Self::#v(_) => #wait));
            other = Some(v);
        } else {
            let code = &variant.code;
            as_code.push(quote!(#(#cfgs)* Self::#v => ::core::convert::From::from(#code)));
            from_code.push(quote!(#(#cfgs)* #code => Self::#v));
            kinds.push(quote!(#(#cfgs)* Self::#v => #kind));
            statuses.push(quote!(#(#cfgs)* Self::#v => #status));
            waits.push(quote!(#(#cfgs)* Self::#v => #wait));
        }
    }
    let refusals: Vec<TokenStream> = variants
        .iter()
        .flat_map(|v| {
            let ident = &v.original.ident;
            let cfgs = &v.cfgs;
            v.attrs.refusals.iter().map(move |r| {
                let reason = refusal_path(r.refusal, &r.ident);
                quote!(#(#cfgs)* #reason => ::core::option::Option::Some(Self::#ident))
            })
        })
        .collect();
    let for_refusal = (!refusals.is_empty()).then(|| {
        quote! {
            fn for_refusal(reason: #p::RefusalReason) -> ::core::option::Option<Self> {
                match reason {
                    #(#refusals,)*
                    _ => ::core::option::Option::None,
                }
            }
        }
    });
    let fallback = match other {
        Some(v) => quote!(__other => Self::#v(::core::convert::From::from(__other))),
        None => quote!(_ => ::core::unreachable!()),
    };
    let numeric = numeric_codes(variants);
    let codes = variants
        .iter()
        .filter(|v| v.attrs.other.is_none())
        .map(|v| &v.code);
    quote! {
        impl #p::ErrorCode for #ident {
            const NUMERIC: bool = #numeric;
            const CODES: &'static [&'static str] = &[#(#codes),*];
            fn as_code(&self) -> ::std::string::String {
                match self { #(#as_code,)* }
            }
            fn from_code(code: &str) -> Self {
                // An integer code however written (`"040030"`) is the number it says.
                let __code = #p::canonical_code(code, #numeric);
                match &*__code { #(#from_code,)* #fallback }
            }
            fn kind(&self) -> ::core::option::Option<#p::ErrorKind> {
                match self { #(#kinds,)* }
            }
            fn status(&self) -> ::core::option::Option<u16> {
                match self { #(#statuses,)* }
            }
            fn retry_after(&self) -> ::core::option::Option<::core::time::Duration> {
                match self { #(#waits,)* }
            }
            #for_refusal
        }

        impl #p::serde::Serialize for #ident {
            fn serialize<__S: #p::serde::Serializer>(
                &self,
                serializer: __S,
            ) -> ::core::result::Result<__S::Ok, __S::Error> {
                #p::serialize_code(self, serializer)
            }
        }

        impl<'de> #p::serde::Deserialize<'de> for #ident {
            fn deserialize<__D: #p::serde::Deserializer<'de>>(
                deserializer: __D,
            ) -> ::core::result::Result<Self, __D::Error> {
                #p::deserialize_code(deserializer)
            }
        }
    }
}

// ---- configs -------------------------------------------------------------------------

/// The primitive types a config's `new` and setters take as they are: an integer literal
/// does not infer through `impl Into<u64>`.
const PRIMITIVES: &[&str] = &[
    "bool", "char", "f32", "f64", "i8", "i16", "i32", "i64", "i128", "isize", "u8", "u16", "u32",
    "u64", "u128", "usize",
];

/// The parameter `value` for a value of `ty`, and the value it gives: `ty` itself when it
/// is a primitive (by spelling), else `impl Into<ty>`, converted.
fn config_param(ty: &syn::Type, value: &Ident) -> (TokenStream, TokenStream) {
    let primitive = matches!(crate::ast::ungroup(ty), syn::Type::Path(p) if p.qself.is_none()
        && p.path.get_ident().is_some_and(|i| PRIMITIVES.iter().any(|n| i == n)));
    if primitive {
        (quote!(#ty), quote!(#value))
    } else {
        (
            quote_spanned!(ty.span()=> impl ::core::convert::Into<#ty>),
            quote_spanned!(ty.span()=> ::core::convert::Into::<#ty>::into(#value)),
        )
    }
}

/// `new` with every field that is not an `Option`, in declaration order (the `Option`s
/// start as `None`), and `with_<field>` for each `Option` field.
fn config(model: &Model, fields: &[ConfigField]) -> TokenStream {
    use syn::ext::IdentExt as _;
    let ident = model.ident;
    let vis = match model.item {
        syn::Item::Struct(s) => s.vis.clone(),
        _ => syn::Visibility::Inherited,
    };
    let code = |names: &[&ConfigField]| {
        names
            .iter()
            .map(|f| format!("`{}`", f.ident.unraw()))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let required: Vec<&ConfigField> = fields.iter().filter(|f| f.optional.is_none()).collect();
    let optional: Vec<&ConfigField> = fields.iter().filter(|f| f.optional.is_some()).collect();
    let mut new_doc = match required.as_slice() {
        [] => format!("A `{ident}` with every field `None`"),
        _ => format!("A `{ident}` with its {}", code(&required)),
    };
    if !required.is_empty() && !optional.is_empty() {
        new_doc.push_str(&format!(
            "; {} start{} as `None`",
            code(&optional),
            if optional.len() == 1 { "s" } else { "" }
        ));
    }
    new_doc.push('.');
    let mut params = Vec::new();
    let mut inits = Vec::new();
    for f in fields {
        let name = f.ident;
        let cfgs = &f.cfgs;
        if f.optional.is_some() {
            inits.push(quote!(#(#cfgs)* #name: ::core::option::Option::None));
        } else {
            let (param, value) = config_param(f.ty, name);
            params.push(quote!(#(#cfgs)* #name: #param));
            inits.push(quote!(#(#cfgs)* #name: #value));
        }
    }
    let setters = optional.iter().filter_map(|f| {
        let (name, inner) = (f.ident, f.optional?);
        let setter = format_ident!("with_{}", name.unraw());
        let doc = format!(
            "Sets `{}`, which [`new`](Self::new) leaves `None`.",
            name.unraw()
        );
        let docs = &f.docs;
        let blank = (!docs.is_empty()).then(|| quote!(#[doc = ""]));
        let (param, value) = config_param(inner, &format_ident!("value"));
        let cfgs = &f.cfgs;
        Some(quote! {
            #[doc = #doc]
            #blank
            #(#docs)*
            #(#cfgs)*
            #vis fn #setter(mut self, value: #param) -> Self {
                self.#name = ::core::option::Option::Some(#value);
                self
            }
        })
    });
    quote! {
        impl #ident {
            #[doc = #new_doc]
            #[allow(clippy::new_without_default, clippy::too_many_arguments)]
            #vis fn new(#(#params),*) -> Self {
                Self { #(#inits,)* }
            }

            #(#setters)*
        }
    }
}
