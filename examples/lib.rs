//! Runnable examples of the token-refresh workspace: see the `[[example]]` targets.

/// The README's code blocks, compiled and run as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;
