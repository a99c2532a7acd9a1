//! Fault injection: what the sandbox does instead of (or around) a handler for the next calls
//! to a path. Faults are consumed one per call and applied by the framework, so every route,
//! built in or registered by a provider crate, can fail the same ways.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use http::{HeaderMap, HeaderName, HeaderValue, StatusCode};

/// An answer sent instead of calling the handler (the handler does not run, so the issuer
/// does not rotate).
///
/// ```
/// use token_core::sandbox::Failure;
/// let failure = Failure::new(http::StatusCode::SERVICE_UNAVAILABLE)
///     .with_retry_after(2)
///     .with_json(&serde_json::json!({"error": "temporarily_unavailable"}));
/// assert_eq!(failure.to_response().status(), 503);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Failure {
    status: StatusCode,
    headers: HeaderMap,
    body: Vec<u8>,
}

impl Failure {
    /// A failure with `status`, no header and an empty body.
    pub fn new(status: StatusCode) -> Self {
        Self {
            status,
            headers: HeaderMap::new(),
            body: Vec::new(),
        }
    }

    /// A 503 with `{"error": "temporarily_unavailable"}`.
    pub fn service_unavailable() -> Self {
        Self::new(StatusCode::SERVICE_UNAVAILABLE)
            .with_json(&serde_json::json!({"error": "temporarily_unavailable"}))
    }

    /// Adds a header (appended, so a name may repeat).
    pub fn with_header(mut self, name: HeaderName, value: HeaderValue) -> Self {
        self.headers.append(name, value);
        self
    }

    /// Sets `Retry-After` to `seconds`.
    pub fn with_retry_after(mut self, seconds: u64) -> Self {
        self.headers
            .insert(http::header::RETRY_AFTER, HeaderValue::from(seconds));
        self
    }

    /// Sets the body (no content type).
    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }

    /// Sets a JSON body and `Content-Type: application/json`.
    pub fn with_json(mut self, body: &serde_json::Value) -> Self {
        self.body = body.to_string().into_bytes();
        self.headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        self
    }

    /// The status.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The answer this failure sends.
    pub fn to_response(&self) -> http::Response<Vec<u8>> {
        let mut response = http::Response::new(self.body.clone());
        *response.status_mut() = self.status;
        *response.headers_mut() = self.headers.clone();
        response
    }
}

/// The faults pending for every path.
#[derive(Debug, Default)]
pub(crate) struct FaultTable {
    paths: HashMap<String, PathFaults>,
}

#[derive(Debug, Default)]
struct PathFaults {
    failures: VecDeque<(Failure, u32)>,
    delays: VecDeque<(Duration, u32)>,
    drops: u32,
}

/// What to do before the handler of one call.
#[derive(Debug, Default)]
pub(crate) struct BeforeCall {
    pub(crate) delay: Option<Duration>,
    pub(crate) failure: Option<Failure>,
}

impl FaultTable {
    pub(crate) fn fail_next(&mut self, path: &str, times: u32, failure: Failure) {
        if times > 0 {
            self.path(path).failures.push_back((failure, times));
        }
    }

    pub(crate) fn delay_next(&mut self, path: &str, times: u32, delay: Duration) {
        if times > 0 {
            self.path(path).delays.push_back((delay, times));
        }
    }

    pub(crate) fn drop_next(&mut self, path: &str, times: u32) {
        let faults = self.path(path);
        faults.drops = faults.drops.saturating_add(times);
    }

    pub(crate) fn clear(&mut self) {
        self.paths.clear();
    }

    pub(crate) fn pending(&self, path: &str) -> bool {
        self.paths
            .get(path)
            .is_some_and(|f| !f.failures.is_empty() || !f.delays.is_empty() || f.drops > 0)
    }

    /// Consumes one delay and one failure for a call to `path`.
    pub(crate) fn before_call(&mut self, path: &str) -> BeforeCall {
        let Some(faults) = self.paths.get_mut(path) else {
            return BeforeCall::default();
        };
        BeforeCall {
            delay: take_one(&mut faults.delays),
            failure: take_one(&mut faults.failures),
        }
    }

    /// Consumes one drop for a call to `path` whose handler ran.
    pub(crate) fn drop_after_call(&mut self, path: &str) -> bool {
        match self.paths.get_mut(path) {
            Some(faults) if faults.drops > 0 => {
                faults.drops -= 1;
                true
            }
            _ => false,
        }
    }

    fn path(&mut self, path: &str) -> &mut PathFaults {
        self.paths.entry(path.to_owned()).or_default()
    }
}

fn take_one<T: Clone>(queue: &mut VecDeque<(T, u32)>) -> Option<T> {
    let (value, remaining) = queue.front_mut()?;
    let value = value.clone();
    *remaining -= 1;
    if *remaining == 0 {
        queue.pop_front();
    }
    Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn faults_are_consumed_one_per_call_in_order() {
        let mut table = FaultTable::default();
        table.fail_next("/token", 2, Failure::new(StatusCode::BAD_GATEWAY));
        table.fail_next("/token", 1, Failure::new(StatusCode::TOO_MANY_REQUESTS));
        table.delay_next("/token", 1, Duration::from_secs(3));
        table.drop_next("/token", 1);
        table.fail_next("/token", 0, Failure::new(StatusCode::IM_A_TEAPOT));

        let first = table.before_call("/token");
        assert_eq!(first.delay, Some(Duration::from_secs(3)));
        assert_eq!(
            first.failure.map(|f| f.status()),
            Some(StatusCode::BAD_GATEWAY)
        );
        let second = table.before_call("/token");
        assert_eq!(second.delay, None);
        assert_eq!(
            second.failure.map(|f| f.status()),
            Some(StatusCode::BAD_GATEWAY)
        );
        let third = table.before_call("/token");
        assert_eq!(
            third.failure.map(|f| f.status()),
            Some(StatusCode::TOO_MANY_REQUESTS)
        );
        assert!(table.before_call("/token").failure.is_none());
        assert!(table.before_call("/other").failure.is_none());

        assert!(table.pending("/token"));
        assert!(!table.drop_after_call("/other"));
        assert!(table.drop_after_call("/token"));
        assert!(!table.drop_after_call("/token"));
        assert!(!table.pending("/token"));

        table.fail_next("/token", 5, Failure::service_unavailable());
        table.clear();
        assert!(table.before_call("/token").failure.is_none());
    }

    #[test]
    fn a_failure_answers_its_status_headers_and_body() {
        let response = Failure::service_unavailable()
            .with_retry_after(7)
            .with_header(
                HeaderName::from_static("x-trace"),
                HeaderValue::from_static("t-1"),
            )
            .to_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(response.headers()[http::header::RETRY_AFTER], "7");
        assert_eq!(response.headers()["x-trace"], "t-1");
        assert_eq!(
            response.headers()[http::header::CONTENT_TYPE],
            "application/json"
        );
        assert_eq!(response.body(), br#"{"error":"temporarily_unavailable"}"#);
    }
}
