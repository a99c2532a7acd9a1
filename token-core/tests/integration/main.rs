//! token-core's integration tests, one module per subject, in one test binary: each binary
//! links the whole dependency tree, so one binary instead of thirty keeps the test build's
//! disk and link time down.
//!
//! Three subjects have binaries of their own because they own process-wide state:
//! `allocations` (a counting global allocator), `hostile_answers` (a global tracing
//! subscriber) and `metrics` (a global metrics recorder). A module needing features beyond
//! the defaults is compiled with them only.

mod base_urls;
mod cfg_fields;
mod code_field_trap;
mod context_values;
#[cfg(feature = "reqwest")]
mod documented_promises;
#[cfg(feature = "sandbox")]
mod file_store_managers;
mod flatten;
#[cfg(all(feature = "middleware", feature = "tower"))]
mod hostile_http;
mod inferred_roles;
mod integer_codes;
#[cfg(feature = "sandbox")]
mod integrator_trial;
#[cfg(all(feature = "sandbox", feature = "rsa"))]
mod integrator_trial_alipay;
#[cfg(feature = "sandbox")]
mod integrator_trial_salesforce;
#[cfg(feature = "sandbox")]
mod integrator_trial_shopee;
#[cfg(all(feature = "sandbox", feature = "rsa"))]
mod integrator_trial_snap;
#[cfg(feature = "sandbox")]
mod integrator_trial_square;
#[cfg(feature = "sandbox")]
mod integrator_trial_tiktok;
#[cfg(feature = "sandbox")]
mod integrator_trial_xero;
#[cfg(all(feature = "middleware", feature = "tower", feature = "sandbox"))]
mod interop;
mod json_order;
#[cfg(feature = "sandbox")]
mod refresh_provider;
mod request_constants;
mod request_credentials;
#[cfg(feature = "sandbox")]
mod runtimes;
#[cfg(feature = "sandbox")]
mod sandbox_manager;
mod serde_formats;
mod signed_bodies;
mod time_sources;
#[cfg(all(feature = "tower", feature = "sandbox"))]
mod tower_layer;
mod unstorable_extras;
