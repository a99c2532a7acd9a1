//! The two ways into a sandbox's handlers: hyper 1 over a loopback TCP listener, and an
//! in-process [`HttpClient`] that skips the socket.

use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

use super::{Outcome, Shared};
use crate::error::TransportError;
use crate::transport::HttpClient;

/// Accepts connections until the task is aborted, at most `max_connections` served at once
/// (the others wait in the listen queue); dropping the `JoinSet` then aborts every
/// connection task with it.
pub(super) async fn serve(listener: TcpListener, shared: Arc<Shared>, max_connections: usize) {
    let mut connections = JoinSet::new();
    loop {
        tokio::select! {
            accepted = listener.accept(), if connections.len() < max_connections => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve_connection(stream, shared.clone()));
                }
                Err(error) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::debug!(%error, "sandbox: accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(stream: TcpStream, shared: Arc<Shared>) {
    let read_timeout = shared.read_timeout();
    let service = service_fn(move |request| {
        let shared = shared.clone();
        async move { answer(&shared, request).await }
    });
    // An error here is a client going away or a dropped answer: nothing to report.
    // The header timeout also closes a connection idle between requests.
    let _ = http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(read_timeout)
        .serve_connection(TokioIo::new(Stalling::new(stream, read_timeout)), service)
        .await;
}

/// A stream whose writes fail once they have been blocked for `limit`: a client that stops
/// reading its answers (they fill the buffers) cannot hold its connection for ever.
struct Stalling {
    stream: TcpStream,
    limit: Duration,
    /// Set while a write waits: when it gives up.
    deadline: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Stalling {
    fn new(stream: TcpStream, limit: Duration) -> Self {
        Self {
            stream,
            limit,
            deadline: None,
        }
    }

    /// Passes on a write's progress; a write still pending after `limit` is an error.
    fn watch<T>(&mut self, cx: &mut Context<'_>, poll: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if poll.is_ready() {
            self.deadline = None;
            return poll;
        }
        let limit = self.limit;
        let deadline = self
            .deadline
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match deadline.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "the client read no answer in time",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }
}

impl AsyncRead for Stalling {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Stalling {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write(cx, buf);
        self.watch(cx, poll)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let poll = Pin::new(&mut self.stream).poll_write_vectored(cx, bufs);
        self.watch(cx, poll)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_flush(cx);
        self.watch(cx, poll)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let poll = Pin::new(&mut self.stream).poll_shutdown(cx);
        self.watch(cx, poll)
    }
}

/// Returned to hyper to close the connection without writing a response.
#[derive(Debug)]
struct DropConnection;

impl fmt::Display for DropConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("the sandbox dropped the connection (fault injection)")
    }
}

impl std::error::Error for DropConnection {}

async fn answer(
    shared: &Shared,
    request: http::Request<Incoming>,
) -> Result<http::Response<Full<Bytes>>, DropConnection> {
    let (parts, body) = request.into_parts();
    let path = parts.uri.path().to_owned();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > shared.max_body() as u64) {
        return Ok(to_hyper(shared.too_large(&path)));
    }
    let body = Limited::new(body, shared.max_body()).collect();
    let body = match tokio::time::timeout(shared.read_timeout(), body).await {
        Ok(Ok(collected)) => collected.to_bytes().to_vec(),
        Ok(Err(error)) if error.is::<http_body_util::LengthLimitError>() => {
            return Ok(to_hyper(shared.too_large(&path)));
        }
        // The client went away mid-body.
        Ok(Err(_)) => return Err(DropConnection),
        // A body trickled or never sent must not hold the connection.
        Err(_) => return Ok(to_hyper(shared.timed_out(&path))),
    };
    match shared
        .dispatch(http::Request::from_parts(parts, body))
        .await
    {
        Outcome::Respond(response) => Ok(to_hyper(response)),
        Outcome::Drop => Err(DropConnection),
    }
}

fn to_hyper(response: http::Response<Vec<u8>>) -> http::Response<Full<Bytes>> {
    response.map(|body| Full::new(Bytes::from(body)))
}

/// The in-process transport of [`RunningSandbox::client`](super::RunningSandbox::client).
pub(super) struct InProcessClient {
    shared: Arc<Shared>,
}

impl InProcessClient {
    pub(super) fn new(shared: Arc<Shared>) -> Self {
        Self { shared }
    }
}

#[async_trait]
impl HttpClient for InProcessClient {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        if self.shared.is_stopped() {
            return Err(TransportError::not_sent("the sandbox has stopped"));
        }
        let request = origin_form(request);
        if request.body().len() > self.shared.max_body() {
            return Ok(self.shared.too_large(request.uri().path()));
        }
        // A call in flight when the sandbox stops ends like one over a socket whose
        // connection is dropped: no answer, and no handler run after the stop.
        let outcome = tokio::select! {
            biased;
            () = self.shared.stopped() => Outcome::Drop,
            outcome = self.shared.dispatch(request) => outcome,
        };
        match outcome {
            Outcome::Respond(response) => Ok(response),
            Outcome::Drop => Err(TransportError::answer_lost(
                "the connection was closed before an answer arrived",
            )),
        }
    }
}

/// What a server sees: the path and query as the URI, the authority in `Host`.
fn origin_form(request: http::Request<Vec<u8>>) -> http::Request<Vec<u8>> {
    let (mut parts, body) = request.into_parts();
    if let Some(authority) = parts.uri.authority()
        && !parts.headers.contains_key(http::header::HOST)
        && let Ok(host) = http::HeaderValue::try_from(authority.as_str())
    {
        parts.headers.insert(http::header::HOST, host);
    }
    let path = parts
        .uri
        .path_and_query()
        .map_or("/", |p| p.as_str())
        .to_owned();
    if let Ok(uri) = http::Uri::try_from(path) {
        parts.uri = uri;
    }
    http::Request::from_parts(parts, body)
}
