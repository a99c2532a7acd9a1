//! `#[token_endpoint]`: derives a provider endpoint's codecs and error mapping from
//! annotated structs and enums.
//!
//! Use it through `token_core::token_endpoint`, whose documentation describes the whole
//! grammar with runnable examples. The phases live in their own files: `attr.rs` parses the
//! vocabulary declared in `symbol.rs` into the model of `ast.rs`, `valid.rs` checks the rules
//! that involve several attributes, and `expand.rs` generates code and cannot fail.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod ast;
mod attr;
mod case;
mod expand;
mod symbol;
mod valid;

use proc_macro2::TokenStream;

/// Declares one piece of a provider endpoint: a request struct, its response struct, its
/// error struct, an extras struct, an enum of error codes, a field group, or the provider's
/// config. See `token_core::token_endpoint` for the grammar.
#[proc_macro_attribute]
pub fn token_endpoint(
    args: proc_macro::TokenStream,
    input: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand_attribute(args.into(), input.into()).into()
}

/// The whole macro over `proc_macro2` streams. On any error it emits the item (without its
/// helper attributes) beside `compile_error!`, so the rest of the crate still type-checks.
fn expand_attribute(args: TokenStream, input: TokenStream) -> TokenStream {
    let item = match syn::parse2::<syn::Item>(input.clone()) {
        Ok(item) => item,
        Err(error) => {
            let error = error.to_compile_error();
            return quote::quote!(#error #input);
        }
    };
    let mut errors = attr::Errors::default();
    let model =
        attr::parse_top(args, &mut errors).and_then(|top| ast::build(&item, top, &mut errors));
    if let Some(model) = &model {
        valid::check(model, &mut errors);
    }
    match (errors.finish(), model) {
        (None, Some(model)) => expand::expand(&model),
        (error, _) => {
            let error = error.unwrap_or_else(|| {
                syn::Error::new(
                    proc_macro2::Span::call_site(),
                    "`#[token_endpoint]` could not read this item",
                )
            });
            let item = expand::strip_for_error(&item);
            let error = error.to_compile_error();
            quote::quote!(#item #error)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use quote::quote;

    fn errors_of(output: &TokenStream) -> usize {
        output.to_string().matches("compile_error").count()
    }

    #[test]
    fn every_mistake_in_an_item_is_reported_at_once() {
        let output = expand_attribute(
            quote!(
                post = "/t",
                fromat = json,
                rename_all = "camel",
                response = T,
                error = E
            ),
            quote!(
                pub struct R {
                    #[token(header, rename = "bad header")]
                    pub a: i32,
                    #[token(access_token)]
                    pub b: String,
                }
            ),
        );
        assert_eq!(errors_of(&output), 4, "{output}");
        assert!(
            output.to_string().contains("pub struct R"),
            "the item is still emitted"
        );
        assert!(
            !output.to_string().contains("# [token"),
            "helper attributes are removed"
        );
    }

    #[test]
    fn malformed_input_is_an_error_never_a_panic() {
        let cases = [
            (
                quote!(post = ),
                quote!(
                    pub struct R {
                        a: i32,
                    }
                ),
            ),
            (
                quote!(post = "/t", header(name)),
                quote!(
                    pub struct R {
                        a: i32,
                    }
                ),
            ),
            (
                quote!(post = "/t", header("x" = "y")),
                quote!(
                    pub struct R;
                ),
            ),
            (
                quote!(a::b = 1),
                quote!(
                    pub fn f() {}
                ),
            ),
            (
                quote!(error_code),
                quote!(
                    pub enum E {
                        #[token(other)]
                        A,
                        #[token(other)]
                        B { x: u8 },
                    }
                ),
            ),
            (
                quote!(response),
                quote!(
                    pub struct R {
                        #[token]
                        a: i32,
                        #[token = 1]
                        b: i32,
                    }
                ),
            ),
            (
                quote!(error, on_status(status = "x", kind = 1, other)),
                quote!(
                    pub struct E {
                        #[token(code)]
                        c: Option<String>,
                    }
                ),
            ),
            (quote!(post = "/t"), quote!(not an item)),
        ];
        for (args, item) in cases {
            let output = expand_attribute(args, item);
            assert!(errors_of(&output) >= 1, "{output}");
        }
    }

    #[test]
    fn a_config_gets_new_with_its_required_fields_and_a_setter_per_option() {
        let output = expand_attribute(
            quote!(config),
            quote!(
                pub struct C {
                    pub key: String,
                    /// Sent when set.
                    pub region: Option<String>,
                    pub id: u64,
                }
            ),
        )
        .to_string();
        assert_eq!(errors_of(&output.parse().unwrap()), 0, "{output}");
        let new = output.find("fn new").expect("new");
        let signature = &output[new..new + output[new..].find('{').unwrap()];
        assert!(
            signature.contains("key : impl :: core :: convert :: Into < String >")
                && signature.contains("id : u64")
                && !signature.contains("region"),
            "{signature}"
        );
        assert!(
            output.contains("region : :: core :: option :: Option :: None"),
            "{output}"
        );
        assert!(output.contains("pub fn with_region"), "{output}");
        assert!(
            !output.contains("with_key") && !output.contains("with_id"),
            "{output}"
        );
    }

    #[test]
    fn integer_discriminants_are_the_codes_and_leave_the_emitted_enum() {
        let output = expand_attribute(
            quote!(error_code),
            quote!(
                pub enum Code {
                    #[token(kind = transient)]
                    Busy = -1,
                    InvalidRefreshToken = 40030,
                    Other(String),
                }
            ),
        )
        .to_string();
        assert_eq!(errors_of(&output.parse().unwrap()), 0, "{output}");
        let item = &output[..output.find("impl").expect("the impls")];
        assert!(
            !item.contains('=') && item.contains("Other (String)"),
            "{item}"
        );
        assert!(output.contains("\"-1\" => Self :: Busy"), "{output}");
        assert!(
            output.contains("\"40030\" => Self :: InvalidRefreshToken"),
            "{output}"
        );
        assert!(output.contains("const NUMERIC : bool = true"), "{output}");
        assert!(
            output.contains("__other => Self :: Other"),
            "the `String` variant is the catch-all: {output}"
        );
    }

    /// `InvalidRefreshToken = $code` in a `macro_rules!` macro: the discriminant arrives in
    /// an invisible group, and reads as if written out.
    #[test]
    fn an_integer_discriminant_from_a_macro_fragment_is_the_code() {
        let fragment = |code: proc_macro2::TokenStream| {
            proc_macro2::TokenTree::Group(proc_macro2::Group::new(
                proc_macro2::Delimiter::None,
                code,
            ))
        };
        let (busy, invalid) = (fragment(quote!(-1)), fragment(quote!(40030)));
        let output = expand_attribute(
            quote!(error_code),
            quote!(
                pub enum Code {
                    #[token(kind = transient)]
                    Busy = #busy,
                    InvalidRefreshToken = #invalid,
                    Other(String),
                }
            ),
        )
        .to_string();
        assert_eq!(errors_of(&output.parse().unwrap()), 0, "{output}");
        assert!(output.contains("\"-1\" => Self :: Busy"), "{output}");
        assert!(
            output.contains("\"40030\" => Self :: InvalidRefreshToken"),
            "{output}"
        );
    }

    #[test]
    fn a_kind_named_in_another_form_is_not_taken_for_the_typo() {
        let output = expand_attribute(
            quote!(extras = X, psot = "/t"),
            quote!(
                pub struct R {
                    a: i32,
                }
            ),
        )
        .to_string();
        assert_eq!(errors_of(&output.parse().unwrap()), 1, "{output}");
        assert!(output.contains("did you mean `post`?"), "{output}");
    }

    #[test]
    fn a_valid_request_expands_to_endpoint_and_from_context() {
        let output = expand_attribute(
            quote!(post = "/t", response = T, error = E),
            quote!(
                pub struct R {
                    #[token(from = refresh_token)]
                    pub refresh_token: RefreshToken,
                }
            ),
        )
        .to_string();
        assert!(output.contains("Endpoint for R"), "{output}");
        assert!(output.contains("FromContext"), "{output}");
        assert_eq!(errors_of(&output.parse().unwrap()), 0);
    }
}
