//! Runtime support for the code `#[token_endpoint]` generates, re-exported from `__private`.
//! Not a public API: names and signatures change with the macro. One file per thing the
//! generated code does:
//!
//! - `request`: writing and reading requests (bodies, headers, query, secrets, field groups);
//! - `sources`: where a request's fields come from (`FromContext`), signing, wire checks;
//! - `answer`: decoding and encoding answers and provider errors, success versus error;
//! - `expiry`: expiry fields and their safe range;
//! - `error_code`: error-code enums and their wire form.
#![allow(missing_docs)]

mod answer;
mod error_code;
mod expiry;
mod request;
mod sources;

pub use answer::*;
pub use error_code::*;
pub use expiry::*;
pub use request::*;
pub use sources::*;

pub use crate::codec::{
    AccessTokenField, ClientId, Endpoint, ErrorResponse, FieldGroup, FromContext, RefusalReason,
    RequestContext, RequestError, SignedRequestError, SigningKey, TokenResponse,
};
pub use crate::error::{EndpointError, ErrorKind};
pub use crate::expiry::{ExpiresIn, Iso8601, UnixMillis, UnixMillisText, UnixTime, jwt_exp};
pub use crate::secret::{AccessToken, AuthCode, ClientSecret, RefreshToken};
pub use crate::sign::{self, RequestSignature};
pub use crate::token_set::{NoExtras, TokenSet, TokenType};
