//! Cross-crate tests: UI tests, conformance and fault injection live in `tests/tests/`.
