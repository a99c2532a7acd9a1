//! The Session URL receiver as an axum 0.8 route.
//!
//! ```
//! use std::sync::Arc;
//! use token_provider_maya::SessionReceiver;
//!
//! fn app(receiver: Arc<SessionReceiver>) -> axum::Router {
//!     axum::Router::new().route("/maya/session", token_provider_maya::axum::session_url(receiver))
//! }
//! ```

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::MethodRouter;
use http::StatusCode;

use crate::receiver::{MAX_BODY, SessionReceiver, refuse, too_large};

/// How long [`handle`] waits for a POST's body: 30 s. A body that trickles or never ends is
/// answered 408 without reaching the receiver, so that it holds no task for ever (axum's
/// `serve` sets no timeout of its own; give the server one for the headers). It runs on
/// tokio's timer, which `#[tokio::main]` and `axum::serve` have.
pub const READ_TIMEOUT: Duration = Duration::from_secs(30);

/// A route (every method: the receiver answers 405 itself) serving `receiver`.
pub fn session_url<S>(receiver: Arc<SessionReceiver>) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    axum::routing::any(handle).with_state(receiver)
}

/// The axum handler behind [`session_url`], for routers that wire state themselves.
pub async fn handle(State(receiver): State<Arc<SessionReceiver>>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let read = tokio::time::timeout(READ_TIMEOUT, axum::body::to_bytes(body, MAX_BODY)).await;
    let body = match read {
        Ok(Ok(body)) => body.to_vec(),
        // Read no further than the receiver would accept.
        Ok(Err(error)) if is_too_large(&error) => return too_large().map(Body::from),
        // The client went away mid-body, or sent no valid one: nothing to store.
        Ok(Err(_)) => {
            return refuse(
                StatusCode::BAD_REQUEST,
                "the request body could not be read",
            )
            .map(Body::from);
        }
        Err(_) => {
            return refuse(
                StatusCode::REQUEST_TIMEOUT,
                "the request body was not received in time",
            )
            .map(Body::from);
        }
    };
    let answer = receiver
        .receive(http::Request::from_parts(parts, body))
        .await;
    answer.map(Body::from)
}

/// Whether reading the body stopped at a limit: [`MAX_BODY`], or one of the application's
/// own further out (tower-http's `RequestBodyLimitLayer`, whose error comes wrapped once
/// more).
fn is_too_large(error: &axum::Error) -> bool {
    let mut cause = std::error::Error::source(error);
    while let Some(error) = cause {
        if error.is::<http_body_util::LengthLimitError>() {
            return true;
        }
        cause = error.source();
    }
    false
}
