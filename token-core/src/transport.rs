//! Moving bytes: the [`HttpClient`] trait the manager calls, and its reqwest implementation
//! with a body-size limit, timeouts, and no answer read from another origin.

use std::sync::Arc;
#[cfg(feature = "reqwest")]
use std::time::Duration;

use async_trait::async_trait;

#[cfg(feature = "reqwest")]
use crate::error::ErrorKind;
use crate::error::TransportError;

/// Sends one request and reads its whole answer.
///
/// Errors say whether the request may have reached the provider: `Transient` when it surely
/// did not (connection refused), `OutcomeUnknown` when it may have.
#[async_trait]
pub trait HttpClient: Send + Sync + 'static {
    /// Sends `request` and reads the answer.
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError>;
}

#[async_trait]
impl<T: HttpClient + ?Sized> HttpClient for Arc<T> {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        (**self).send(request).await
    }
}

const _: Option<&dyn HttpClient> = None;

/// The default largest answer body read: 1 MiB. Token answers are a few hundred bytes.
pub const DEFAULT_MAX_BODY: usize = 1024 * 1024;

#[cfg(feature = "reqwest")]
/// [`HttpClient`] over reqwest. Follows no redirect (a token endpoint has no business
/// redirecting, and a redirect must never carry credentials elsewhere), reads at most
/// [`DEFAULT_MAX_BODY`] bytes, and times out after 30 s.
///
/// Whatever client it wraps, an answer that comes from another origin (scheme, host, port)
/// than the request's is refused with [`TransportError::cross_origin`] and its body is never
/// read, nor is one from another URL of the same origin (a redirect the client followed); and request bodies are sent so that they cannot be replayed, so even a client that
/// follows redirects does not resend a body (the refresh token) on a 307 or 308.
///
/// A proxy from the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`, minus `NO_PROXY`)
/// carries the calls to other hosts, never one to a loopback host (as Go's `net/http` has
/// it): plain `http` to loopback is allowed because it stays on the machine, and the sandbox
/// or a sidecar on `127.0.0.1` is not reachable through a proxy elsewhere anyway.
#[derive(Clone, Debug)]
pub struct ReqwestClient {
    client: reqwest::Client,
    /// For loopback hosts: the same settings, no proxy (`None` for a wrapped client, whose
    /// own settings apply to every call).
    loopback: Option<reqwest::Client>,
    max_body: usize,
    plain_http: bool,
}

#[cfg(feature = "reqwest")]
impl ReqwestClient {
    /// A client with the defaults above.
    pub fn new() -> Result<Self, crate::error::Error> {
        Self::with_timeout(Some(Duration::from_secs(30)))
    }

    /// A client with the given overall timeout per call (`None`: no timeout, for tests on
    /// tokio's paused clock).
    pub fn with_timeout(timeout: Option<Duration>) -> Result<Self, crate::error::Error> {
        #[cfg(feature = "rustls-ring")]
        {
            // reqwest's rustls without a provider uses the process default: ring, unless
            // the application installed one already (then that one stays).
            let _ = rustls::crypto::ring::default_provider().install_default();
        }
        let build = |builder: reqwest::ClientBuilder| {
            let mut builder = builder
                .redirect(reqwest::redirect::Policy::none())
                .user_agent(concat!("token-core/", env!("CARGO_PKG_VERSION")));
            if let Some(timeout) = timeout {
                builder = builder
                    .timeout(timeout)
                    .connect_timeout(timeout.min(Duration::from_secs(10)));
            }
            builder.build().map_err(|e| {
                crate::error::Error::Config(format!(
                    "could not build the HTTP client: {}",
                    e.without_url()
                ))
            })
        };
        Ok(Self {
            client: build(reqwest::Client::builder())?,
            loopback: Some(build(reqwest::Client::builder().no_proxy())?),
            max_body: DEFAULT_MAX_BODY,
            plain_http: false,
        })
    }

    /// Wraps a configured reqwest client.
    ///
    /// Build it with `.redirect(reqwest::redirect::Policy::none())` and a `.timeout(...)`, as
    /// [`new`](Self::new) does: reqwest cannot change a built client's redirect policy, and
    /// its overall timeout is the only bound on an answer whose body trickles or never ends
    /// (the size limit bounds its length, not its time). Whatever its policy,
    /// token calls stay at their origin:
    ///
    /// - a body is never resent: the 307 or 308 that would forward it (and the refresh token
    ///   in it) is returned as it is, and [`codec::decode_response`](crate::codec::decode_response)
    ///   reads it as a refusal (`Rejected`), not as the provider's verdict on the token;
    /// - a redirect the client follows without the body (301, 302, 303 become a `GET`) to
    ///   another origin ends in [`TransportError::cross_origin`] (`Misconfigured`), and that
    ///   origin's answer is never read as a token answer; one to another URL of the same
    ///   origin (a trailing slash added, a login page) is a refusal (`Rejected`), its answer
    ///   unread as well. Except a round trip that ends at the URL the call was sent to (a
    ///   single sign-on gateway sending the client away and back): reqwest keeps no history
    ///   of the redirects it followed, so that answer, to the bodiless `GET` made last, is
    ///   read as the answer to the call, and an `invalid_grant` in it ends the session.
    ///
    /// A client that follows redirects still sends the request's headers, minus
    /// `Authorization` (reqwest drops it across origins), on such a `GET`: with such a
    /// client, do not put a secret in another header. It also sends the URL it was
    /// redirected from, query included, as `Referer`: build it with `.referer(false)` too,
    /// or a token request that carries its secret in the query (WeChat's refresh token, a
    /// signature in Lazada's) hands it to the origin the redirect points to.
    ///
    /// Its proxy settings apply to every call, loopback hosts included: build it with
    /// `.no_proxy()`, or a `NO_PROXY` naming them, if a proxy is configured.
    pub fn from_client(client: reqwest::Client) -> Self {
        Self {
            client,
            loopback: None,
            max_body: DEFAULT_MAX_BODY,
            plain_http: false,
        }
    }

    /// Sets the largest answer body read; a larger one is a [`TransportError`].
    pub fn max_body(mut self, bytes: usize) -> Self {
        self.max_body = bytes;
        self
    }

    /// Sends to plain `http://` hosts that are not loopback too. By default such a call is
    /// refused unsent ([`Misconfigured`](ErrorKind::Misconfigured)): a token call carries a
    /// refresh token or client credentials, which anyone on the way could read. Loopback
    /// hosts (`127.0.0.0/8`, `::1`, `::ffff:127.0.0.0/104`, the name `localhost`), where the
    /// sandbox listens, are always allowed (and never sent through a proxy, unless the
    /// client was [wrapped](Self::from_client) with one). For a provider reached over a
    /// network you trust (a TLS-terminating sidecar, a test environment's containers).
    pub fn allow_plain_http(mut self) -> Self {
        self.plain_http = true;
        self
    }
}

/// Whether a call to `url` would send its credentials in the clear over a network: plain
/// `http://` to a host that is not loopback. Loopback is a loopback address, or the name
/// `localhost` (which resolvers answer from the hosts file); not the names under it
/// (`api.localhost`), which a resolver without special rules asks the network's DNS for.
#[cfg(feature = "reqwest")]
fn in_the_clear(url: &url::Url) -> bool {
    url.scheme() == "http" && !is_loopback(url)
}

/// Whether `url`'s host is loopback: a loopback address, or the name `localhost`.
#[cfg(feature = "reqwest")]
fn is_loopback(url: &url::Url) -> bool {
    match url.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => {
            ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|ip| ip.is_loopback())
        }
        Some(url::Host::Domain(name)) => {
            let name = name.strip_suffix('.').unwrap_or(name);
            name.eq_ignore_ascii_case("localhost")
        }
        None => false,
    }
}

#[cfg(feature = "reqwest")]
#[async_trait]
impl HttpClient for ReqwestClient {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, TransportError> {
        // A body that cannot be cloned is never replayed by a redirect-following client (a
        // 307 or 308 comes back as it is); its exact length is still sent as Content-Length.
        let request = reqwest::Request::try_from(
            request.map(|body| reqwest::Body::wrap(reqwest::Body::from(body))),
        )
        .map_err(|e| TransportError {
            kind: ErrorKind::Misconfigured,
            message: e.without_url().to_string(),
            status: None,
            retry_after: None,
        })?;
        let requested = request.url().clone();
        let origin = requested.origin();
        if !self.plain_http && in_the_clear(&requested) {
            return Err(TransportError {
                kind: ErrorKind::Misconfigured,
                message: format!(
                    "refused to send a token call to {} over plain http (its credentials \
                     would cross the network unencrypted): use https, or \
                     ReqwestClient::allow_plain_http for a network you trust",
                    origin.ascii_serialization()
                ),
                status: None,
                retry_after: None,
            });
        }
        let client = match &self.loopback {
            Some(direct) if is_loopback(&requested) => direct,
            _ => &self.client,
        };
        let mut response = client.execute(request).await.map_err(classify)?;
        let answered_by = response.url().origin();
        if answered_by != origin {
            return Err(TransportError::cross_origin(&origin, &answered_by));
        }
        if *response.url() != requested {
            // A redirect the client followed within the origin: the answer is to the
            // bodiless request made then, not to this one (a server's `invalid_grant` to a
            // request without a refresh token is no verdict on the token). As a redirect
            // returned unfollowed, a refusal. No path: a query may hold a secret.
            return Err(TransportError {
                kind: ErrorKind::Rejected,
                message: format!(
                    "the token endpoint redirected to another URL of {} and the client \
                     followed; a token call's answer comes from the URL it was sent to, so \
                     this one was not read",
                    origin.ascii_serialization()
                ),
                status: None,
                retry_after: None,
            });
        }
        let status = response.status();
        // Asked for even if the body is then lost: a provider's throttling is honoured.
        let retry_after = (!status.is_success())
            .then(|| crate::codec::retry_after(response.headers(), time::OffsetDateTime::now_utc()))
            .flatten();
        let mut builder = http::Response::builder()
            .status(status)
            .version(response.version());
        if let Some(headers) = builder.headers_mut() {
            *headers = std::mem::take(response.headers_mut());
        }
        let mut body = Vec::new();
        while let Some(chunk) = (response.chunk().await)
            .map_err(|e| read_failed(status, e).with_retry_after(retry_after))?
        {
            if body.len() + chunk.len() > self.max_body {
                let message = format!(
                    "answer body exceeds {} bytes (HTTP {status})",
                    self.max_body
                );
                return Err(
                    TransportError::body_lost(status, message).with_retry_after(retry_after)
                );
            }
            body.extend_from_slice(&chunk);
        }
        builder
            .body(body)
            .map_err(|e| TransportError::answer_lost(format!("unreadable answer: {e}")))
    }
}

#[cfg(feature = "reqwest")]
fn classify(error: reqwest::Error) -> TransportError {
    let (connect, builder) = (error.is_connect(), error.is_builder());
    let message = error.without_url().to_string();
    if connect {
        TransportError::not_sent(message)
    } else if builder {
        TransportError {
            kind: ErrorKind::Misconfigured,
            message,
            status: None,
            retry_after: None,
        }
    } else {
        TransportError::answer_lost(message)
    }
}

#[cfg(feature = "reqwest")]
fn read_failed(status: http::StatusCode, error: reqwest::Error) -> TransportError {
    TransportError::body_lost(
        status,
        format!(
            "answer lost while reading (HTTP {status}): {}",
            error.without_url()
        ),
    )
}

#[cfg(all(test, feature = "reqwest"))]
mod plain_http_tests {
    /// Loopback by its address or the name `localhost`; a name under `localhost` is sent
    /// to whatever address the DNS gives, so it is not trusted by its spelling.
    #[test]
    fn only_loopback_addresses_and_localhost_may_be_sent_to_in_the_clear() {
        for loopback in [
            "http://127.0.0.1:8080/token",
            "http://127.1/token",
            "http://[::1]/token",
            "http://[::ffff:127.0.0.1]/token",
            "http://localhost/token",
            "http://LOCALHOST./token",
            "https://api.example.com/token",
        ] {
            let url = url::Url::parse(loopback).unwrap();
            assert!(!super::in_the_clear(&url), "{loopback}");
        }
        for remote in [
            "http://api.example.com/token",
            "http://api.localhost/token",
            "http://localhost.example.com/token",
            "http://0.0.0.0/token",
            "http://[::ffff:10.0.0.1]/token",
            "http://10.0.0.1/token",
        ] {
            let url = url::Url::parse(remote).unwrap();
            assert!(super::in_the_clear(&url), "{remote}");
        }
    }
}

#[cfg(all(test, feature = "reqwest"))]
mod proxy_tests {
    use std::io::{Read, Write};
    use std::net::TcpListener;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::{HttpClient, ReqwestClient};

    /// Set in the child process this test starts: the loopback server's URL.
    const CHILD: &str = "TOKEN_CORE_PROXY_TEST_SERVER";

    /// Accepts at most `n` connections on a thread; each is counted and answered `answer`
    /// once its request head has arrived.
    fn serve(n: usize, answer: &'static str) -> (u16, Arc<AtomicUsize>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = Arc::new(AtomicUsize::new(0));
        let counted = seen.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().take(n) {
                let Ok(mut stream) = stream else { continue };
                counted.fetch_add(1, Ordering::SeqCst);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
                    match stream.read(&mut byte) {
                        Ok(1) => head.push(byte[0]),
                        _ => break,
                    }
                }
                let _ = stream.write_all(answer.as_bytes());
            }
        });
        (port, seen)
    }

    /// A proxy configured in the environment (`HTTP_PROXY`, `HTTPS_PROXY`, `ALL_PROXY`)
    /// carries the calls to other hosts, never a call to a loopback host: such a call is
    /// allowed over plain `http` because it does not leave the machine, and through a proxy
    /// it would (the sandbox and a sidecar on `127.0.0.1` are unreachable through a proxy
    /// elsewhere, too). The environment is the process's, so the client runs in a child
    /// process of this test binary.
    #[test]
    fn a_proxy_from_the_environment_never_carries_a_loopback_call() {
        if let Ok(server) = std::env::var(CHILD) {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async {
                let client = ReqwestClient::new().unwrap();
                let get = |url: &str| http::Request::get(url).body(Vec::new()).unwrap();
                let answer = client.send(get(&server)).await.expect("sent directly");
                assert_eq!(answer.body(), b"ok");
                // Another host still goes through the proxy (which refuses it).
                let elsewhere = client.send(get("https://proxied.invalid/token")).await;
                assert!(elsewhere.is_err(), "{elsewhere:?}");
            });
            return;
        }
        let (server, to_server) = serve(
            4,
            "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok",
        );
        let (proxy, to_proxy) = serve(
            4,
            "HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
        );
        let proxy_url = format!("http://127.0.0.1:{proxy}");
        let mut child = std::process::Command::new(std::env::current_exe().unwrap());
        child
            .args([
                "transport::proxy_tests::a_proxy_from_the_environment_never_carries_a_loopback_call",
                "--exact",
                "--test-threads=1",
            ])
            .env(CHILD, format!("http://127.0.0.1:{server}/token"))
            .env_remove("NO_PROXY")
            .env_remove("no_proxy")
            .env_remove("REQUEST_METHOD");
        for var in [
            "HTTP_PROXY",
            "http_proxy",
            "HTTPS_PROXY",
            "https_proxy",
            "ALL_PROXY",
        ] {
            child.env(var, &proxy_url);
        }
        let output = child.output().unwrap();
        assert!(
            output.status.success(),
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        assert!(
            String::from_utf8_lossy(&output.stdout).contains("1 passed"),
            "the child ran the test"
        );
        assert_eq!(
            to_server.load(Ordering::SeqCst),
            1,
            "the loopback call went directly"
        );
        assert_eq!(
            to_proxy.load(Ordering::SeqCst),
            1,
            "only the other host's call was proxied"
        );
    }
}
