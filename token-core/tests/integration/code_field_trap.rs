//! The trap a request refuses at compile time (`tests/ui/missing/*_without_success_rule.rs`):
//! its success answer declares the field that holds its error's code, and the error has no
//! rule telling a success code from an error code, so every success carrying that field
//! would be read as the error. Here the check the generated code evaluates in a constant is
//! called directly, for each way a field reaches the answer: the response's own fields and
//! constants, its `extra` fields, and the fields of its extras type (`#[token(extras)]` or
//! a field of the `extras = Type`, flattened into the answer).

use token_core::__private::code_field_trap;
use token_core::{secret::AccessToken, token_endpoint};

/// `{"error": "..."}` is an error.
#[token_endpoint(error)]
pub struct Failure {
    pub error: String,
}

/// The same, with a rule: `""` and `"0"` are successes.
#[token_endpoint(error, success_codes("0"))]
pub struct RuledFailure {
    pub error: String,
}

/// Under an envelope: `{"result": {"resultCode": "..."}}`.
#[token_endpoint(error, envelope = "result", rename_all = "camelCase")]
pub struct EnvelopeFailure {
    #[token(code)]
    pub result_code: String,
}

/// An extras type whose fields include the error's code field, `error`.
#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Carrying {
    pub user_id: Option<String>,
    pub error: Option<String>,
}

/// One that reaches it only through `rename_all`.
#[token_endpoint(extras, rename_all = "snake_case")]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Renamed {
    #[token(rename = "error")]
    pub last_error: Option<String>,
}

/// One whose fields are all elsewhere.
#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Harmless {
    pub user_id: Option<String>,
}

/// An extras type with a field named as the envelope error's code.
#[token_endpoint(extras, rename_all = "camelCase")]
#[derive(Clone, Debug, Default, PartialEq)]
pub struct CarryingResultCode {
    pub result_code: Option<String>,
}

/// The extras through a field marked `#[token(extras)]`.
#[token_endpoint(response, extras = Carrying)]
pub struct MarkedExtras {
    pub access_token: AccessToken,
    #[token(extras)]
    pub extras: Carrying,
}

/// The extras through a field of the `extras = Type` (its role inferred).
#[token_endpoint(response, extras = Carrying)]
pub struct InferredExtras {
    pub access_token: AccessToken,
    pub user: Carrying,
}

#[token_endpoint(response, extras = Renamed)]
pub struct RenamedExtras {
    pub access_token: AccessToken,
    pub user: Renamed,
}

#[token_endpoint(response, extras = Harmless)]
pub struct HarmlessExtras {
    pub access_token: AccessToken,
    pub user: Harmless,
}

/// The extras under the response's envelope: `{"data": {"error": ...}}`.
#[token_endpoint(response, envelope = "data", extras = Carrying)]
pub struct EnvelopedExtras {
    pub access_token: AccessToken,
    pub user: Carrying,
}

/// An `extra` field, copied to the extras type: one of the response's own fields.
#[token_endpoint(response, extras = Carrying)]
pub struct OneExtra {
    pub access_token: AccessToken,
    #[token(extra)]
    pub error: Option<String>,
}

/// The extras fields at the top of the answer, beside an envelope error's `result` object.
#[token_endpoint(response, extras = CarryingResultCode)]
pub struct BesideTheEnvelope {
    pub access_token: AccessToken,
    pub user: CarryingResultCode,
}

#[test]
fn a_code_field_in_the_extras_sets_the_trap() {
    assert!(code_field_trap::<MarkedExtras, Failure>());
    assert!(code_field_trap::<InferredExtras, Failure>());
    assert!(code_field_trap::<RenamedExtras, Failure>());
    assert!(code_field_trap::<OneExtra, Failure>());
}

#[test]
fn a_rule_or_another_field_or_place_sets_none() {
    // A success rule tells `""`, `"0"` from an error.
    assert!(!code_field_trap::<MarkedExtras, RuledFailure>());
    assert!(!code_field_trap::<InferredExtras, RuledFailure>());
    // No extras field named `error`.
    assert!(!code_field_trap::<HarmlessExtras, Failure>());
    // Under the response's envelope, `data.error` is not the top-level `error`.
    assert!(!code_field_trap::<EnvelopedExtras, Failure>());
    // `resultCode` at the top is not `result.resultCode`.
    assert!(!code_field_trap::<BesideTheEnvelope, EnvelopeFailure>());
}
