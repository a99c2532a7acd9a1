//! What the three integrator trials share: answers as the client receives them, how an
//! error is shown, and the hostile answers every decoder must refuse with a typed error.

#![allow(dead_code)] // each trial uses its own part

use std::time::Duration;

use http::StatusCode;
use token_core::error::{EndpointError, Error, ErrorKind};
use token_core::manager::TokenManager;
use token_core::provider::Provider;
use token_core::sandbox::RunningSandbox;
use token_core::token_set::TokenSet;

/// An answer with `status` and `body`, as the transport hands it to the decoder.
pub fn answer(status: u16, body: &[u8]) -> http::Response<Vec<u8>> {
    let mut response = http::Response::new(body.to_vec());
    *response.status_mut() = StatusCode::from_u16(status).unwrap();
    response
}

/// Every way an error is shown: `Display` and `Debug`, of the endpoint error and of the
/// library error it becomes.
pub fn shown(error: &EndpointError) -> String {
    let wrapped = Error::from(error.clone());
    format!("{error}\n{error:?}\n{wrapped}\n{wrapped:?}")
}

/// Asserts that no secret shows in `text`, whole or as a run of 8 of its characters.
pub fn assert_hidden(text: &str, secrets: &[&str]) {
    for secret in secrets {
        let run = 8.min(secret.len());
        for start in 0..=secret.len() - run {
            let part = &secret[start..start + run];
            assert!(!text.contains(part), "`{part}` of a secret shows in {text}");
        }
    }
}

/// A 2 MiB body: a JSON string member far beyond any token answer.
pub fn huge_body() -> Vec<u8> {
    let mut body = br#"{"access_token":""#.to_vec();
    body.extend(std::iter::repeat_n(b'a', 2 << 20));
    body.extend_from_slice(br#""}"#);
    body
}

/// The HTML page a gateway answers with.
pub const HTML: &[u8] =
    b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>";

/// Revokes `set`'s refresh token at the sandbox's issuer (the user withdrew the
/// authorization), lets `wait` pass on tokio's paused clock, and checks that the session's
/// next token is refused for re-authorization with the provider's `code`.
pub async fn revoked_session_asks_for_reauthorization<P: Provider>(
    manager: &TokenManager<P>,
    sandbox: &RunningSandbox,
    session: &str,
    set: &TokenSet<P::Extras>,
    wait: Duration,
    code: &str,
) {
    let refresh_token = set
        .refresh_token
        .as_ref()
        .expect("a refresh token to revoke");
    sandbox
        .issuer()
        .revoke(refresh_token.expose_secret())
        .await
        .unwrap();
    tokio::time::advance(wait).await;
    let error = manager.access_token(session).await.unwrap_err();
    assert_eq!(
        (error.kind(), error.provider_code()),
        (ErrorKind::ReauthRequired, Some(code))
    );
}
