//! Runnable examples of the token-refresh workspace: see the `[[example]]` targets.
