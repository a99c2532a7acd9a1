//! Compile-time behaviour of `#[token_endpoint]`: the grammar's forms compile, and each
//! misuse is one error at its token saying what is allowed (`TRYBUILD=overwrite` to refresh).

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.pass("ui/pass/*.rs");
    for category in [
        "unknown-attribute",
        "duplicate-attribute",
        "wrong-placement",
        "missing",
        "conflict",
        "invalid-value",
        "type-mismatch",
        "multiple-errors",
        "unsupported",
    ] {
        t.compile_fail(format!("ui/{category}/*.rs"));
    }
}
