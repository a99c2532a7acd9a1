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

use axum::body::Body;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::MethodRouter;

use crate::receiver::{MAX_BODY, SessionReceiver, too_large};

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
    let body = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(body) => body.to_vec(),
        // Read no further than the receiver would accept.
        Err(_) => return too_large().map(Body::from),
    };
    let answer = receiver
        .receive(http::Request::from_parts(parts, body))
        .await;
    answer.map(Body::from)
}
