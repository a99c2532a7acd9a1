//! A URL holding credentials where an integrator may put them (a password in its user
//! information, a key in its query), for the tests that no `Debug` shows them.
//!
//! Standalone (it needs only `url`), so that token-core's own integration tests, which do
//! not depend on this crate, take it in with `#[path]`.

/// `https://user:s3cret@host.example/token?key=k3y`.
pub const URL_WITH_CREDENTIALS: &str = "https://user:s3cret@host.example/token?key=k3y";

/// [`URL_WITH_CREDENTIALS`], parsed.
pub fn url_with_credentials() -> url::Url {
    URL_WITH_CREDENTIALS.parse().expect("a valid constant URL")
}

/// Asserts that `shown`, the `Debug` of something configured with [`URL_WITH_CREDENTIALS`],
/// holds neither its password nor its query's key, and still its host and path (what makes
/// it worth showing).
#[track_caller]
pub fn assert_shows_no_url_credential(shown: &str) {
    assert!(
        !shown.contains("s3cret") && !shown.contains("k3y"),
        "a URL credential is shown: {shown}"
    );
    assert!(
        shown.contains("host.example/token"),
        "the URL is not shown: {shown}"
    );
}
