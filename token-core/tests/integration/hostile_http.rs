//! A hostile token endpoint and a hostile API, met over loopback sockets and through
//! hand-written providers: what the default transport, the manager and the bearer
//! middleware make of answers no provider should send.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use token_core::error::{Error, ErrorKind};
use token_core::manager::{Event, ManagerConfig, RetryPolicy, TokenManager};
use token_core::provider::{CallContext, Provider};
use token_core::secret::{AccessToken, RefreshToken};
use token_core::store::{MemoryStore, SessionKey, StoredRecord, TokenStore as _};
use token_core::token_set::{NoExtras, TokenSet};
use token_core::transport::ReqwestClient;

const SESSION: &str = "s";
const MILLISECOND: std::time::Duration = std::time::Duration::from_millis(1);

/// A hand-written provider that answers every refresh with `access` and a new refresh
/// token `rt-N`, and counts its calls.
struct Answering {
    access: &'static str,
    calls: AtomicU32,
}

#[token_core::async_trait]
impl Provider for Answering {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "answering"
    }

    async fn refresh(&self, cx: &CallContext, _: &TokenSet) -> Result<TokenSet, Error> {
        let n = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        Ok(TokenSet::new(AccessToken::new(self.access))
            .with_refresh_token(RefreshToken::new(format!("rt-{n}")))
            .with_access_expires_at(cx.now() + time::Duration::hours(1)))
    }
}

/// A manager over `provider` whose session holds `at-0` (expired if `expired`) and `rt-0`.
struct Subject<P: Provider> {
    manager: TokenManager<P>,
    store: Arc<MemoryStore>,
    events: Arc<Mutex<Vec<String>>>,
}

impl<P: Provider<Extras = NoExtras>> Subject<P> {
    async fn new(provider: P, expired: bool) -> Self {
        Self::with_config(provider, expired, ManagerConfig::default()).await
    }

    async fn with_config(provider: P, expired: bool, config: ManagerConfig) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let seen = events.clone();
        let store = Arc::new(MemoryStore::new());
        // One transport for every manager (each test's endpoint has a port of its own, so
        // no connection is reused across tests): building one costs a tenth of a second.
        static TRANSPORT: std::sync::OnceLock<ReqwestClient> = std::sync::OnceLock::new();
        let transport = TRANSPORT.get_or_init(|| ReqwestClient::new().unwrap());
        let manager = TokenManager::builder(provider)
            .store(store.clone())
            .client(transport.clone())
            .config(config)
            .on_event(move |event: &Event| seen.lock().unwrap().push(format!("{event:?}")))
            .build()
            .unwrap();
        let hour = time::Duration::hours(if expired { -1 } else { 1 });
        let set = TokenSet::new(AccessToken::new("at-0"))
            .with_refresh_token(RefreshToken::new("rt-0"))
            .with_access_expires_at(time::OffsetDateTime::now_utc() + hour);
        manager.insert(SESSION, set).await.unwrap();
        Self {
            manager,
            store,
            events,
        }
    }

    /// The stored access and refresh tokens.
    async fn stored(&self) -> (String, Option<String>) {
        let key = self.manager.session_key(SESSION);
        match self.store.load(&key).await.unwrap().map(|v| v.value) {
            Some(StoredRecord::Tokens(set)) => (
                set.access_token.expose_secret().to_owned(),
                set.refresh_token.map(|t| t.expose_secret().to_owned()),
            ),
            other => panic!("no tokens stored: {other:?}"),
        }
    }

    fn events(&self) -> String {
        self.events.lock().unwrap().join("\n")
    }
}

/// Access tokens no `Authorization` header can carry.
const UNSENDABLE: [&str; 4] = [
    "at-CANARY\r\nX-Injected: 1",
    "at-CANARY\n",
    "at-CANARY\0",
    "at-CANARY\u{7f}",
];

/// A hand-written provider (no declared codec to refuse it) answering with an access token
/// that cannot be sent beside a new refresh token: the manager never serves the access token
/// (it would fail every API call until it expires) and saves the refresh token (the one it
/// presented may be spent); the caller gets a typed error (`Rejected`) that shows no token,
/// answered again for `failure_cooldown` without asking the provider; never a re-auth.
#[tokio::test]
async fn an_unsendable_access_token_from_a_hand_written_provider_is_never_served() {
    for access in UNSENDABLE {
        let provider = Answering {
            access,
            calls: AtomicU32::new(0),
        };
        let subject = Subject::new(provider, true).await;
        for _ in 0..3 {
            let error = subject
                .manager
                .access_token(SESSION)
                .await
                .expect_err("an access token that cannot be sent is no token");
            assert_eq!(error.kind(), ErrorKind::Rejected, "{access:?}: {error}");
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("CANARY"), "{shown}");
            assert!(shown.contains("access token"), "{shown}");
        }
        assert_eq!(subject.manager.provider().calls.load(Ordering::SeqCst), 1);
        let (stored_access, stored_refresh) = subject.stored().await;
        assert!(!stored_access.contains("CANARY"), "{access:?}");
        assert_eq!(stored_refresh.as_deref(), Some("rt-1"), "{access:?}");
        let events = subject.events();
        assert!(!events.contains("ReauthRequired"), "{events}");
        assert!(!events.contains("CANARY"), "{events}");
    }
}

/// A hand-written provider answering an empty access token beside a new refresh token (what
/// a declared answer refuses, and what the manager's own placeholder for a set-aside token
/// is): never served as a bearer, here or by another process sharing the store.
#[tokio::test]
async fn an_empty_access_token_from_a_hand_written_provider_is_never_served() {
    let provider = Answering {
        access: "",
        calls: AtomicU32::new(0),
    };
    let subject = Subject::new(provider, true).await;
    for _ in 0..3 {
        match subject.manager.access_token(SESSION).await {
            Ok(token) => assert!(!token.expose_secret().is_empty(), "an empty bearer served"),
            Err(error) => assert_eq!(error.kind(), ErrorKind::Rejected, "{error}"),
        }
    }
    // Nor from the store, by another process, nor inserted with an expiry to come.
    let set = TokenSet::new(AccessToken::new(""))
        .with_refresh_token(RefreshToken::new("rt-9"))
        .with_access_expires_at(time::OffsetDateTime::now_utc() + time::Duration::hours(1));
    subject.manager.insert("other", set).await.unwrap();
    if let Ok(token) = subject.manager.access_token("other").await {
        assert!(!token.expose_secret().is_empty(), "an empty bearer served");
    }
    let (_, stored_refresh) = subject.stored().await;
    assert!(
        stored_refresh.is_some_and(|t| t != "rt-0"),
        "the new refresh token is kept"
    );
    let events = subject.events();
    assert!(!events.contains("ReauthRequired"), "{events}");
}

/// The same access tokens handed to `insert` alone are refused there, naming no value, and
/// what the session held stays; beside a refresh token (a login from a spent authorization
/// code) the refresh token is kept, the access token set aside, and the first call
/// refreshes. A refresh token with a control character is taken: it travels escaped, in a
/// body or a query (and a request that would put it in a header fails to encode, a typed
/// error, the token kept).
#[tokio::test]
async fn insert_sets_an_unsendable_access_token_aside_beside_a_refresh_token() {
    let subject = Subject::new(
        Answering {
            access: "at-1",
            calls: AtomicU32::new(0),
        },
        false,
    )
    .await;
    for access in UNSENDABLE {
        let set = TokenSet::new(AccessToken::new(access));
        let error = subject
            .manager
            .insert(SESSION, set)
            .await
            .expect_err("an access token that cannot be sent, alone, is refused");
        assert!(matches!(error, Error::Config(_)), "{error:?}");
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("CANARY"), "{shown}");
        assert_eq!(subject.stored().await, ("at-0".into(), Some("rt-0".into())));
        let served = subject.manager.access_token(SESSION).await.unwrap();
        assert_eq!(served.expose_secret(), "at-0");
    }
    for access in UNSENDABLE {
        let set =
            TokenSet::new(AccessToken::new(access)).with_refresh_token(RefreshToken::new("rt-9"));
        subject.manager.insert(SESSION, set).await.unwrap();
        assert_eq!(
            subject.stored().await,
            ("".into(), Some("rt-9".into())),
            "set aside"
        );
        let served = subject.manager.access_token(SESSION).await.unwrap();
        assert_eq!(served.expose_secret(), "at-1", "refreshed first, with rt-9");
        let set = TokenSet::new(AccessToken::new("at-0"))
            .with_refresh_token(RefreshToken::new("rt-0"))
            .with_access_expires_at(time::OffsetDateTime::now_utc() + time::Duration::hours(1));
        subject.manager.insert(SESSION, set).await.unwrap();
    }
    for refresh in UNSENDABLE {
        let set =
            TokenSet::new(AccessToken::new("at-9")).with_refresh_token(RefreshToken::new(refresh));
        subject.manager.insert(SESSION, set).await.unwrap();
        assert_eq!(
            subject.stored().await,
            ("at-9".into(), Some(refresh.into()))
        );
        let served = subject.manager.access_token(SESSION).await.unwrap();
        assert_eq!(served.expose_secret(), "at-9");
    }
}

/// A token endpoint that echoes the credentials of the request's `Authorization` (HTTP
/// Basic's Base64 of the client id and secret), as they came, in an answer of `status` whose
/// body is `body` with `{}` replaced by them.
struct EchoingCredentials {
    status: http::StatusCode,
    body: &'static str,
}

#[token_core::async_trait]
impl token_core::transport::HttpClient for EchoingCredentials {
    async fn send(
        &self,
        request: http::Request<Vec<u8>>,
    ) -> Result<http::Response<Vec<u8>>, token_core::error::TransportError> {
        let authorization = request.headers()[http::header::AUTHORIZATION]
            .to_str()
            .unwrap();
        let credentials = authorization.strip_prefix("Basic ").unwrap();
        let mut response = http::Response::new(self.body.replace("{}", credentials).into_bytes());
        *response.status_mut() = self.status;
        Ok(response)
    }
}

/// The client secret sent in HTTP Basic and echoed by the endpoint in that spelling (Base64,
/// which anyone decodes), whole or in part, is in no error of the call.
#[tokio::test]
async fn client_credentials_echoed_in_their_basic_spelling_are_in_no_error() {
    use token_core::oauth::{ClientAuthentication, RefreshTokenGrant};
    use token_core::secret::ClientSecret;
    let grant = RefreshTokenGrant {
        refresh_token: RefreshToken::new("rt-0123456789"),
        scope: None,
        client: ClientAuthentication {
            basic_user: Some("app".into()),
            basic_password: Some(ClientSecret::new("s3cr3t-CANARY-xyz")),
            ..ClientAuthentication::default()
        },
    };
    // `app:s3cr3t-CANARY-xyz`, and the part of it that spells the secret alone.
    let base64 = "YXBwOnMzY3IzdC1DQU5BUlkteHl6";
    let echoes: [(u16, &str); 5] = [
        (
            400,
            r#"{"error":"invalid_grant","error_description":"credentials {}"}"#,
        ),
        (
            401,
            r#"{"error":"invalid_client","error_description":"{} is unknown"}"#,
        ),
        (500, "upstream refused {}"),
        (502, r#"{"echo":"{}"}"#),
        (400, "you sent {}"),
    ];
    let base = url::Url::parse("http://127.0.0.1:9/").unwrap();
    for (status, body) in echoes {
        let client = EchoingCredentials {
            status: http::StatusCode::from_u16(status).unwrap(),
            body,
        };
        let cx = CallContext::new(
            Arc::new(client),
            Arc::new(token_core::clock::SystemClock),
            SESSION,
        );
        let error = cx.call(&base, &grant).await.unwrap_err();
        let shown = format!("{error} {error:?}");
        assert!(!shown.contains("CANARY"), "{shown}");
        for part in [base64, &base64[8..], &base64[12..24]] {
            assert!(!shown.contains(part), "{part} in {shown}");
        }
    }
}

// ---- a hostile token endpoint over a loopback socket --------------------------------------

/// A token endpoint on 127.0.0.1 that answers its `n`th connection with `replies[n]` (a
/// raw HTTP/1.1 answer, then `close`s it or, if not, holds it open), after reading the
/// request; connections past the script are closed unanswered. Returns its base URL and
/// what it saw.
async fn scripted_endpoint(replies: Vec<Reply>) -> (url::Url, Arc<Seen>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://{}/", listener.local_addr().unwrap())).unwrap();
    let accepted = Arc::new(Seen::default());
    let seen = accepted.clone();
    tokio::spawn(async move {
        for reply in replies {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            seen.connections.fetch_add(1, Ordering::SeqCst);
            let seen = seen.clone();
            tokio::spawn(async move {
                // The whole request: its head, then as many body bytes as it declared.
                let mut request = Vec::new();
                let mut buffer = [0; 4096];
                for _ in 0..64 {
                    match stream.read(&mut buffer).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buffer[..n]),
                    }
                    if complete(&request) {
                        break;
                    }
                }
                let head = request.split(|b| *b == b'\n').skip(1);
                let lines = head.map(|line| String::from_utf8_lossy(line).trim_end().to_owned());
                seen.headers.lock().unwrap().push(lines.collect());
                for (chunk, pause) in reply.chunks {
                    if stream.write_all(&chunk).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(pause).await;
                }
                if !reply.close {
                    std::future::pending::<()>().await;
                }
            });
        }
    });
    (url, accepted)
}

/// What a scripted endpoint saw: its connections, and each request's header lines (up to
/// the blank line and the body after it).
#[derive(Default)]
struct Seen {
    connections: AtomicU32,
    headers: Mutex<Vec<Vec<String>>>,
}

impl Seen {
    fn count(&self) -> u32 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Each request's body (its last line).
    fn bodies(&self) -> Vec<String> {
        let requests = self.headers.lock().unwrap();
        requests
            .iter()
            .filter_map(|lines| lines.last().cloned())
            .collect()
    }

    /// The values of the `name` header lines of every request, in order.
    fn header(&self, name: &str) -> Vec<String> {
        let prefix = format!("{}:", name.to_ascii_lowercase());
        let requests = self.headers.lock().unwrap();
        let lines = requests.iter().flatten();
        lines
            .filter(|line| line.to_ascii_lowercase().starts_with(&prefix))
            .map(|line| line[prefix.len()..].trim().to_owned())
            .collect()
    }
}

/// Whether `request` holds a whole HTTP/1.1 request with a `Content-Length` body.
fn complete(request: &[u8]) -> bool {
    let Some(end) = request.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&request[..end]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length:"))
        .and_then(|n| n.trim().parse::<usize>().ok())
        .unwrap_or(0);
    request.len() >= end + 4 + length
}

/// One scripted answer: chunks written with a pause after each, then closed or held open.
struct Reply {
    chunks: Vec<(Vec<u8>, std::time::Duration)>,
    close: bool,
}

impl Reply {
    /// `raw` at once, then the connection closed.
    fn once(raw: &str) -> Self {
        Self {
            chunks: vec![(raw.as_bytes().to_vec(), std::time::Duration::ZERO)],
            close: true,
        }
    }

    /// A 200 with a fresh pair, `at-new` and `rt-new`.
    fn tokens() -> Self {
        Self::tokens_of_type("Bearer")
    }

    /// A 200 with a fresh pair, `at-new` and `rt-new`, of `token_type` (JSON-escaped).
    fn tokens_of_type(token_type: &str) -> Self {
        let body = format!(
            r#"{{"access_token":"at-new","refresh_token":"rt-new","expires_in":3600,"token_type":{}}}"#,
            serde_json::Value::from(token_type)
        );
        Self::once(&format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        ))
    }
}

/// An RFC 6749 client of a scripted endpoint, with a reuse window.
struct Grant {
    base: url::Url,
    reuse: std::time::Duration,
}

#[token_core::async_trait]
impl Provider for Grant {
    type Extras = NoExtras;

    fn name(&self) -> &str {
        "grant"
    }

    fn reuse_window(&self) -> std::time::Duration {
        self.reuse
    }

    async fn refresh(&self, cx: &CallContext, current: &TokenSet) -> Result<TokenSet, Error> {
        let token = current.refresh_token.clone().expect("a refresh token");
        let grant = token_core::oauth::RefreshTokenGrant::new(token);
        let answer = cx.call(&self.base, &grant).await?;
        let mut set = TokenSet::new(answer.access_token);
        set.refresh_token = answer.refresh_token;
        set.access_expires_at = answer.access_expires_at;
        set.token_type = answer.token_type;
        Ok(set)
    }
}

/// A subject whose expired session refreshes at a scripted endpoint through the default
/// transport, retrying at once (a millisecond's backoff).
async fn over_socket(
    replies: Vec<Reply>,
    reuse: std::time::Duration,
) -> (Subject<Grant>, Arc<Seen>) {
    let (base, accepted) = scripted_endpoint(replies).await;
    let retry = RetryPolicy::default().with_backoff(MILLISECOND, MILLISECOND);
    let config = ManagerConfig::default().with_retry(retry);
    let subject = Subject::with_config(Grant { base, reuse }, true, config).await;
    (subject, accepted)
}

/// A subject whose expired session refreshes at a scripted endpoint answering each of
/// `bodies` (a 200 of JSON, then `close`) in turn, with no reuse window and no failure
/// cooldown (a failure is asked again at once: these tests run on the real clock).
async fn answering_json(bodies: &[&str]) -> (Subject<Grant>, Arc<Seen>) {
    let replies = bodies.iter().map(|body| {
        Reply::once(&format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ))
    });
    let (base, seen) = scripted_endpoint(replies.collect()).await;
    let retry = RetryPolicy::default().with_backoff(MILLISECOND, MILLISECOND);
    let mut config = ManagerConfig::default().with_retry(retry);
    config.failure_cooldown = std::time::Duration::ZERO;
    let reuse = std::time::Duration::ZERO;
    let subject = Subject::with_config(Grant { base, reuse }, true, config).await;
    (subject, seen)
}

/// A declared answer (RFC 6749, over a socket) whose access token cannot be sent, beside a
/// new refresh token: the refresh token is saved and presented at the next refresh (with no
/// reuse window the spent one would be refused: a false re-auth), and the caller's error is
/// `Rejected`, showing no token.
#[tokio::test]
async fn a_declared_answer_with_an_unsendable_access_token_keeps_its_refresh_token() {
    let (subject, seen) = answering_json(&[
        r#"{"access_token":"at-CANARY\r\nX-Injected: 1","refresh_token":"rt-new","expires_in":3600}"#,
        r#"{"access_token":"at-2","refresh_token":"rt-2","expires_in":3600}"#,
    ])
    .await;
    let error = subject.manager.access_token(SESSION).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Rejected, "{error}");
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains("CANARY") && !shown.contains("rt-new"),
        "{shown}"
    );
    let (access, refresh) = subject.stored().await;
    assert!(!access.contains("CANARY"));
    assert_eq!(refresh.as_deref(), Some("rt-new"));
    let token = subject.manager.access_token(SESSION).await.unwrap();
    assert_eq!(token.expose_secret(), "at-2");
    let bodies = seen.bodies();
    assert_eq!(bodies.len(), 2);
    assert!(bodies[0].contains("refresh_token=rt-0"), "{bodies:?}");
    assert!(bodies[1].contains("refresh_token=rt-new"), "{bodies:?}");
    assert_eq!(subject.stored().await, ("at-2".into(), Some("rt-2".into())));
    let events = subject.events();
    assert!(
        !events.contains("ReauthRequired") && !events.contains("CANARY"),
        "{events}"
    );
}

/// A declared answer whose access token is empty (or blank) beside a new refresh token, as
/// a hand-written provider's is: the refresh token is saved and presented at the next
/// refresh (the one sent may be spent), the empty access token never served, the caller's
/// error `Rejected`; never a re-auth.
#[tokio::test]
async fn a_declared_answer_with_an_empty_access_token_keeps_its_refresh_token() {
    for access in ["", "  "] {
        let first =
            format!(r#"{{"access_token":"{access}","refresh_token":"rt-new","expires_in":3600}}"#);
        let second = r#"{"access_token":"at-2","refresh_token":"rt-2","expires_in":3600}"#;
        let (subject, seen) = answering_json(&[&first, second]).await;
        let error = subject.manager.access_token(SESSION).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Rejected, "{access:?}: {error}");
        assert!(
            !format!("{error} {error:?}").contains("rt-new"),
            "{error:?}"
        );
        let (stored, refresh) = subject.stored().await;
        assert!(stored.trim().is_empty(), "{access:?}: {stored:?}");
        assert_eq!(refresh.as_deref(), Some("rt-new"), "{access:?}");
        let token = subject.manager.access_token(SESSION).await.unwrap();
        assert_eq!(token.expose_secret(), "at-2");
        let bodies = seen.bodies();
        assert_eq!(bodies.len(), 2);
        assert!(bodies[1].contains("refresh_token=rt-new"), "{bodies:?}");
        assert!(!subject.events().contains("ReauthRequired"));
    }
}

/// The same with no access token at all (the key absent, or `null`) beside a new refresh
/// token: the answer is still read as no answer, so the refresh token the provider may have
/// rotated to is dropped with it. Reading it as an empty access token (tried: a few lines in
/// `decode_answer_json`) makes this pass but breaks the fault matrix's rows "missing field"
/// and "access token as a number": a malformed 200 from something that did not rotate
/// (a proxy, a broken deployment) would then store its refresh token over the good one, and
/// the session would be lost at the next refresh. As no answer, the outcome is unknown and
/// the stored token is asked again (inside a reuse window, that gets a rotated pair back).
#[tokio::test]
#[ignore = "design call: a 200 without an access token is no answer (the fault matrix keeps the stored token); keeping its refresh token would trust a malformed answer over the stored one"]
async fn a_declared_answer_without_an_access_token_keeps_its_refresh_token() {
    for first in [
        r#"{"refresh_token":"rt-new","expires_in":3600}"#,
        r#"{"access_token":null,"refresh_token":"rt-new","expires_in":3600}"#,
    ] {
        let second = r#"{"access_token":"at-2","refresh_token":"rt-2","expires_in":3600}"#;
        let (subject, _) = answering_json(&[first, second]).await;
        let _ = subject.manager.access_token(SESSION).await;
        assert_eq!(
            subject.stored().await.1.as_deref(),
            Some("rt-new"),
            "{first}"
        );
    }
}

/// A refresh token with a control character travels escaped in the refresh's form body, so
/// it is kept like any other: beside a usable access token the set is served and saved;
/// beside an access token that cannot be sent as well, the access token is set aside as
/// above. Either way the next refresh presents it, percent-encoded, never a re-auth.
#[tokio::test]
async fn a_refresh_token_with_a_control_character_is_kept_and_presented_escaped() {
    for access in ["at-1", "at-CANARY\\n"] {
        let first = format!(
            r#"{{"access_token":"{access}","refresh_token":"rt-\r\nSECRET","expires_in":3600}}"#
        );
        let second = r#"{"access_token":"at-2","refresh_token":"rt-2","expires_in":3600}"#;
        let (subject, seen) = answering_json(&[&first, second]).await;
        let usable = access == "at-1";
        match subject.manager.access_token(SESSION).await {
            Ok(token) if usable => assert_eq!(token.expose_secret(), "at-1"),
            Err(error) if !usable => {
                assert_eq!(error.kind(), ErrorKind::Rejected, "{error}");
                let shown = format!("{error} {error:?}");
                assert!(!shown.contains("CANARY") && !shown.contains("SECRET"));
            }
            other => panic!("{access:?}: {other:?}"),
        }
        assert_eq!(subject.stored().await.1.as_deref(), Some("rt-\r\nSECRET"));
        let token = subject.manager.refresh_now(SESSION).await.unwrap();
        assert_eq!(token.expose_secret(), "at-2");
        let bodies = seen.bodies();
        assert_eq!(bodies.len(), 2, "{access:?}");
        assert!(
            bodies[1].contains("refresh_token=rt-%0D%0ASECRET"),
            "{bodies:?}"
        );
        let events = subject.events();
        assert!(
            !events.contains("ReauthRequired") && !events.contains("SECRET"),
            "{events}"
        );
    }
}

/// A 1xx is no final answer (hyper skips `100` and `103` itself; a `101` nobody asked for
/// comes back as it is): the request was sent and its outcome is unknown, so it is asked
/// again inside the reuse window, and never read as a refusal.
#[tokio::test]
async fn a_final_1xx_answer_is_an_unknown_outcome_asked_again_inside_the_reuse_window() {
    let switching =
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: h2c\r\nConnection: upgrade\r\n\r\n";
    let reuse = std::time::Duration::from_secs(300);
    let (subject, accepted) =
        over_socket(vec![Reply::once(switching), Reply::tokens()], reuse).await;
    let token = subject.manager.access_token(SESSION).await.unwrap();
    assert_eq!(token.expose_secret(), "at-new");
    assert_eq!(accepted.count(), 2);
    // Without a reuse window: an unknown outcome, no verdict, the pair kept.
    let (subject, accepted) =
        over_socket(vec![Reply::once(switching)], std::time::Duration::ZERO).await;
    let error = subject.manager.access_token(SESSION).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::OutcomeUnknown, "{error}");
    assert_eq!(accepted.count(), 1);
    assert_eq!(subject.stored().await, ("at-0".into(), Some("rt-0".into())));
    assert!(!subject.events().contains("ReauthRequired"));
}

/// Answers that begin and never end well: a body dripped a byte a second (each read quick,
/// the whole never done), a `Content-Length` larger than what is sent before the server
/// closes, the headers and then a close. Each ends within the transport's 30 s timeout
/// (tokio's paused clock) as an unknown outcome: asked again inside the reuse window, and
/// without one the caller's error, the pair kept, never a verdict.
#[tokio::test(start_paused = true)]
async fn an_answer_cut_or_dripped_is_asked_again_inside_the_reuse_window_never_a_verdict() {
    let second = std::time::Duration::from_secs(1);
    let head =
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n";
    let dripped = || Reply {
        chunks: std::iter::once((head.as_bytes().to_vec(), second))
            .chain((0..1000).map(|_| (b" ".to_vec(), second)))
            .collect(),
        close: false,
    };
    let cut = || Reply::once(&format!("{head}{{\"access_token\":\"at-CANARY\","));
    let headers_only = || Reply::once(head);
    let faults: [(&str, &dyn Fn() -> Reply); 3] = [
        ("dripped", &dripped),
        ("cut", &cut),
        ("headers only", &headers_only),
    ];
    for (what, fault) in faults {
        let reuse = std::time::Duration::from_secs(300);
        let (subject, accepted) = over_socket(vec![fault(), Reply::tokens()], reuse).await;
        let started = tokio::time::Instant::now();
        let token = subject.manager.access_token(SESSION).await;
        assert_eq!(token.unwrap().expose_secret(), "at-new", "{what}");
        assert!(
            started.elapsed() <= 31 * second,
            "{what}: {:?}",
            started.elapsed()
        );
        assert_eq!(accepted.count(), 2, "{what}");

        let (subject, accepted) = over_socket(vec![fault()], std::time::Duration::ZERO).await;
        let error = subject.manager.access_token(SESSION).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::OutcomeUnknown, "{what}: {error}");
        assert!(!format!("{error} {error:?}").contains("CANARY"), "{what}");
        assert_eq!(accepted.count(), 1, "{what}");
        assert_eq!(subject.stored().await, ("at-0".into(), Some("rt-0".into())));
        assert!(!subject.events().contains("ReauthRequired"), "{what}");
    }
}

/// A 5xx other than 503 may come after the provider rotated (a gateway whose upstream
/// answered too late): when the refresh gives up, the pair is asked for again inside the
/// reuse window, whether the 5xx's body was read, cut, or larger than the transport reads.
/// Otherwise nobody asks until a caller comes, perhaps after the window, with the spent
/// refresh token.
#[tokio::test(start_paused = true)]
async fn a_5xx_whose_body_is_lost_is_asked_again_inside_the_reuse_window() {
    let head = |length: usize| {
        format!(
            "HTTP/1.1 504 Gateway Timeout\r\nContent-Type: text/html\r\nContent-Length: {length}\r\n\r\n"
        )
    };
    let page = "<html>upstream timed out</html>";
    let read = Reply::once(&format!("{}{page}", head(page.len())));
    let cut = Reply::once(&format!("{}{page}", head(100_000)));
    let huge = over_the_limit(&head(4 * 1024 * 1024));
    let unavailable =
        || Reply::once("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n");
    for (what, fault) in [("read", read), ("cut", cut), ("over the limit", huge)] {
        let reuse = std::time::Duration::from_secs(300);
        let replies = vec![
            fault,
            unavailable(),
            unavailable(),
            unavailable(),
            Reply::tokens(),
        ];
        let (subject, accepted) = over_socket(replies, reuse).await;
        let error = subject.manager.access_token(SESSION).await.unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Transient, "{what}: {error}");
        assert_eq!(accepted.count(), 4, "{what}");
        // Nobody calls; the manager asks for the pair inside the window.
        tokio::time::sleep(reuse).await;
        assert_eq!(accepted.count(), 5, "{what}");
        assert_eq!(
            subject.stored().await,
            ("at-new".into(), Some("rt-new".into())),
            "{what}"
        );
    }
}

/// A 429 or 503 whose body is lost (cut, or larger than the transport reads) asks for its
/// wait all the same: its `Retry-After` is the error's, and the provider is not asked again
/// before it is over, as when the body is read.
#[tokio::test]
async fn a_retry_after_is_honoured_whether_or_not_the_body_arrives() {
    for status in ["429 Too Many Requests", "503 Service Unavailable"] {
        let head = |length: usize| {
            format!("HTTP/1.1 {status}\r\nRetry-After: 120\r\nContent-Length: {length}\r\n\r\n")
        };
        let read = Reply::once(&format!("{}slow down", head(9)));
        let cut = Reply::once(&format!("{}slow", head(100_000)));
        let huge = over_the_limit(&head(4 * 1024 * 1024));
        for (what, fault) in [("read", read), ("cut", cut), ("over the limit", huge)] {
            let (base, accepted) = scripted_endpoint(vec![fault, Reply::tokens()]).await;
            let mut config = ManagerConfig::default().with_retry(RetryPolicy::never());
            config.failure_cooldown = std::time::Duration::ZERO;
            let reuse = std::time::Duration::ZERO;
            let subject = Subject::with_config(Grant { base, reuse }, true, config).await;
            let error = subject.manager.access_token(SESSION).await.unwrap_err();
            assert_eq!(
                error.kind(),
                ErrorKind::Transient,
                "{status} {what}: {error}"
            );
            assert_eq!(
                error.retry_after(),
                Some(std::time::Duration::from_secs(120)),
                "{status} {what}: {error}"
            );
            let again = subject.manager.access_token(SESSION).await.unwrap_err();
            assert_eq!(accepted.count(), 1, "{status} {what}: {again}");
        }
    }
}

/// `head`, then a body larger than the transport reads.
fn over_the_limit(head: &str) -> Reply {
    let body = vec![b' '; token_core::transport::DEFAULT_MAX_BODY + 1];
    Reply {
        chunks: vec![
            (head.as_bytes().to_vec(), std::time::Duration::ZERO),
            (body, std::time::Duration::ZERO),
        ],
        close: true,
    }
}

// ---- a hostile API behind the bearer layers -----------------------------------------------

/// `WWW-Authenticate` challenges of a 401, and whether a refresh (and a resend) answers it:
/// a token without the scope a call needs (RFC 6750 section 3.1) gets no better by a
/// refresh, which returns the same grant; anything else may be a token the API no longer
/// takes.
const CHALLENGES: [(&str, bool); 8] = [
    (
        r#"Bearer realm="api", error="insufficient_scope", scope="payments:write""#,
        false,
    ),
    // A description in the server's language (UTF-8, outside what RFC 6750 allows in it,
    // but sent all the same): the challenge still says what it says.
    (
        r#"Bearer error="insufficient_scope", error_description="Zugriff für Zahlungen verweigert""#,
        false,
    ),
    (r#"Bearer error=insufficient_scope"#, false),
    (r#"Bearer realm="api", ERROR = "Insufficient_Scope""#, false),
    (r#"Bearer realm="api", error="invalid_token""#, true),
    (
        r#"Bearer error="invalid_token", error_description="not error=\"insufficient_scope\"""#,
        true,
    ),
    (r#"Bearer realm="error=insufficient_scope""#, true),
    ("", true),
];

/// A reqwest client through `BearerAuth` for the session of `manager` (one reqwest client
/// for every test: each API has a port of its own, so no connection is reused across them).
fn bearer_client<P: Provider>(
    manager: &TokenManager<P>,
) -> reqwest_middleware::ClientWithMiddleware {
    static CLIENT: std::sync::OnceLock<reqwest::Client> = std::sync::OnceLock::new();
    let client = CLIENT.get_or_init(reqwest::Client::new).clone();
    reqwest_middleware::ClientBuilder::new(client)
        .with(token_core::middleware::BearerAuth::new(
            manager.clone(),
            SESSION,
        ))
        .build()
}

/// `BearerAuth` in front of an API on 127.0.0.1 that answers 401 with `challenge` to every
/// request, sent `sends` requests one after the other: how many requests the API saw and how
/// many refreshes the manager made.
async fn through_bearer_auth(challenge: &str, sends: u32) -> (u32, u32) {
    let header = if challenge.is_empty() {
        String::new()
    } else {
        format!("WWW-Authenticate: {challenge}\r\n")
    };
    let answer: &'static str = Box::leak(
        format!(
            "HTTP/1.1 401 Unauthorized\r\n{header}Content-Length: 0\r\nConnection: close\r\n\r\n"
        )
        .into_boxed_str(),
    );
    let replies = (0..2 * sends).map(|_| Reply::once(answer)).collect();
    let (api, requests) = scripted_endpoint(replies).await;
    let provider = Answering {
        access: "at-1",
        calls: AtomicU32::new(0),
    };
    let subject = Subject::new(provider, false).await;
    let client = bearer_client(&subject.manager);
    for _ in 0..sends {
        let response = client.get(api.join("pay").unwrap()).send().await.unwrap();
        assert_eq!(
            response.status(),
            http::StatusCode::UNAUTHORIZED,
            "{challenge}"
        );
    }
    let refreshes = subject.manager.provider().calls.load(Ordering::SeqCst);
    (requests.count(), refreshes)
}

#[tokio::test]
async fn bearer_auth_refreshes_for_a_401_only_when_the_token_may_be_the_reason() {
    for (challenge, refreshed) in CHALLENGES {
        let expected = if refreshed { (2, 1) } else { (1, 0) };
        assert_eq!(
            through_bearer_auth(challenge, 1).await,
            expected,
            "{challenge}"
        );
    }
}

/// An API that redirects to itself for ever: reqwest gives up after its 10 redirects and
/// `BearerAuth` returns that error, with no refresh (no 401 came) and no token in it; nothing
/// loops past the client's bound.
#[tokio::test]
async fn bearer_auth_through_a_redirect_loop_ends_with_the_client_s_error() {
    let loop_back =
        "HTTP/1.1 302 Found\r\nLocation: /pay\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let (api, requests) =
        scripted_endpoint((0..30).map(|_| Reply::once(loop_back)).collect()).await;
    let provider = Answering {
        access: "at-loop-0123456789",
        calls: AtomicU32::new(0),
    };
    let subject = Subject::new(provider, false).await;
    let error = bearer_client(&subject.manager)
        .get(api.join("pay").unwrap())
        .send()
        .await
        .expect_err("too many redirects");
    assert!(error.is_redirect(), "{error}");
    assert_eq!(requests.count(), 11, "the first request and 10 redirects");
    assert_eq!(subject.manager.provider().calls.load(Ordering::SeqCst), 0);
    let shown = format!("{error} {error:?}");
    assert!(
        !shown.contains("at-0") && !shown.contains("at-loop"),
        "{shown}"
    );
}

/// An API that answers 401 to every token: the first request is refreshed for and resent
/// once; the token obtained after that 401 is refused too, and it is not refreshed again:
/// each later request is sent once and its 401 returned, with no refresh and no loop.
#[tokio::test]
async fn bearer_auth_against_an_api_refusing_every_token_refreshes_once_in_all() {
    let challenge = r#"Bearer error="invalid_token""#;
    assert_eq!(through_bearer_auth(challenge, 5).await, (6, 1));
}

#[tokio::test]
async fn bearer_layer_refreshes_for_a_401_only_when_the_token_may_be_the_reason() {
    use tower::{Service as _, ServiceExt as _};
    for (challenge, refreshed) in CHALLENGES {
        let requests = Arc::new(AtomicU32::new(0));
        let seen = requests.clone();
        let api = tower::service_fn(move |_: http::Request<String>| {
            seen.fetch_add(1, Ordering::SeqCst);
            let mut answer = http::Response::builder().status(http::StatusCode::UNAUTHORIZED);
            if !challenge.is_empty() {
                answer = answer.header(http::header::WWW_AUTHENTICATE, challenge);
            }
            std::future::ready(Ok::<_, std::convert::Infallible>(
                answer.body(String::new()).unwrap(),
            ))
        });
        let provider = Answering {
            access: "at-1",
            calls: AtomicU32::new(0),
        };
        let subject = Subject::new(provider, false).await;
        let mut client = tower::ServiceBuilder::new()
            .layer(token_core::tower::BearerLayer::new(
                subject.manager.clone(),
                SESSION,
            ))
            .service(api);
        let request = http::Request::post("http://api.test/pay")
            .body(String::new())
            .unwrap();
        let response = client.ready().await.unwrap().call(request).await.unwrap();
        assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
        let refreshes = subject.manager.provider().calls.load(Ordering::SeqCst);
        let expected = if refreshed { (2, 1) } else { (1, 0) };
        assert_eq!(
            (requests.load(Ordering::SeqCst), refreshes),
            expected,
            "{challenge}"
        );
    }
}

/// A 401 to a request whose body cannot be sent twice (a stream): `BearerAuth` refreshes
/// once and returns the 401 (nothing is resent, the body is gone); the next request goes
/// with the new token and no second refresh.
#[tokio::test]
async fn bearer_auth_returns_the_401_of_a_body_it_cannot_resend_and_refreshes_once() {
    let refused = "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
    let accepted = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
    let (api, requests) =
        scripted_endpoint(vec![Reply::once(refused), Reply::once(accepted)]).await;
    let provider = Answering {
        access: "at-1",
        calls: AtomicU32::new(0),
    };
    let subject = Subject::new(provider, false).await;
    let client = bearer_client(&subject.manager);
    let stream = reqwest::Body::wrap(http_body_util::Full::new(bytes::Bytes::from_static(
        b"{\"amount\":1}",
    )));
    let url = api.join("pay").unwrap();
    let response = client.post(url.clone()).body(stream).send().await.unwrap();
    assert_eq!(response.status(), http::StatusCode::UNAUTHORIZED);
    assert_eq!(requests.count(), 1);
    assert_eq!(subject.manager.provider().calls.load(Ordering::SeqCst), 1);
    let response = client.get(url).send().await.unwrap();
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(requests.count(), 2);
    assert_eq!(subject.manager.provider().calls.load(Ordering::SeqCst), 1);
    let served = subject.manager.access_token(SESSION).await.unwrap();
    assert_eq!(served.expose_secret(), "at-1");
}

/// Access tokens that are odd but can travel in a header (100 KB, non-ASCII bytes, inner
/// spaces and `=`) are sent whole by `BearerAuth` over a socket: no panic, no error of ours.
#[tokio::test]
async fn an_odd_but_sendable_access_token_is_sent() {
    let huge: &'static str = Box::leak("a".repeat(100 * 1024).into_boxed_str());
    for access in [huge, "ät-ü", "at one two", "at=="] {
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let (api, requests) = scripted_endpoint(vec![Reply::once(ok)]).await;
        let provider = Answering {
            access,
            calls: AtomicU32::new(0),
        };
        let subject = Subject::new(provider, true).await;
        let client = bearer_client(&subject.manager);
        let response = client.get(api.join("balance").unwrap()).send().await;
        assert_eq!(response.unwrap().status(), http::StatusCode::OK);
        assert_eq!(
            requests.header("authorization"),
            [format!("Bearer {access}")]
        );
    }
}

/// A stored access token that cannot be sent (written by another process's older version,
/// or by hand) is not served: the manager refreshes with the stored refresh token, and the
/// API call goes with the new token.
#[tokio::test]
async fn an_unsendable_access_token_found_in_the_store_is_refreshed_not_served() {
    for access in UNSENDABLE {
        let store = Arc::new(MemoryStore::new());
        let key = SessionKey::new("answering", SESSION);
        let stored = TokenSet::new(AccessToken::new(access))
            .with_refresh_token(RefreshToken::new("rt-0"))
            .with_access_expires_at(time::OffsetDateTime::now_utc() + time::Duration::hours(1))
            .with_extras(serde_json::json!({}));
        store
            .save(&key, &StoredRecord::Tokens(stored), None)
            .await
            .unwrap();
        let provider = Answering {
            access: "at-1",
            calls: AtomicU32::new(0),
        };
        let manager = TokenManager::builder(provider)
            .store(store.clone())
            .build()
            .unwrap();
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let (api, requests) = scripted_endpoint(vec![Reply::once(ok)]).await;
        let response = bearer_client(&manager).get(api).send().await;
        assert_eq!(
            response.unwrap().status(),
            http::StatusCode::OK,
            "{access:?}"
        );
        assert_eq!(requests.count(), 1);
        assert_eq!(manager.provider().calls.load(Ordering::SeqCst), 1);
        let served = manager.access_token(SESSION).await.unwrap();
        assert_eq!(served.expose_secret(), "at-1");
    }
}

/// A success answer nested twenty thousand deep (under the 1 MiB body limit), in the
/// token's place, beside it and in an error's place: a typed error, never a stack overflow.
#[test]
fn a_deeply_nested_answer_is_a_typed_error_not_a_stack_overflow() {
    use token_core::codec::decode_response;
    use token_core::oauth::RefreshTokenGrant;
    let deep = format!("{}{}", "[".repeat(20_000), "]".repeat(20_000));
    let bodies = [
        format!(r#"{{"access_token":{deep}}}"#),
        format!(r#"{{"access_token":"at-CANARY","extra":{deep}}}"#),
        format!(r#"{{"error":{deep}}}"#),
        format!(r#"{{"error":"invalid_grant","error_description":{deep}}}"#),
        deep.clone(),
    ];
    for status in [200, 400, 503] {
        for body in &bodies {
            let response = http::Response::builder()
                .status(status)
                .header("content-type", "application/json")
                .body(body.clone().into_bytes())
                .unwrap();
            let now = time::OffsetDateTime::now_utc();
            let result = decode_response::<RefreshTokenGrant>(&response, now, &[]);
            let error = result.expect_err("no token in a nested answer");
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("CANARY"), "{shown}");
            assert!(
                shown.len() < 20_000,
                "{status}: {} bytes shown",
                shown.len()
            );
        }
    }
}

/// A token type no header could carry (CR/LF, NUL, non-ASCII, 100 KB) is kept as the
/// provider sent it, with the pair, and never sent: `BearerAuth` writes `Bearer` and the
/// token, one header, nothing injected.
#[tokio::test]
async fn a_hostile_token_type_is_kept_and_never_sent() {
    let huge = "B".repeat(100 * 1024);
    for token_type in ["Bearer\r\nX-Injected: 1", "Bearer\0", "Bäärer", &huge] {
        let reuse = std::time::Duration::ZERO;
        let (subject, _) = over_socket(vec![Reply::tokens_of_type(token_type)], reuse).await;
        let ok = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let (api, seen) = scripted_endpoint(vec![Reply::once(ok)]).await;
        let response = bearer_client(&subject.manager).get(api).send().await;
        assert_eq!(response.unwrap().status(), http::StatusCode::OK);
        assert_eq!(seen.header("authorization"), ["Bearer at-new"]);
        assert_eq!(seen.header("x-injected"), Vec::<String>::new());
        let set = subject.manager.token_set(SESSION).await.unwrap();
        assert_eq!(set.token_type.as_deref(), Some(token_type));
        assert_eq!(
            subject.stored().await,
            ("at-new".into(), Some("rt-new".into()))
        );
    }
}

/// Reads one request from `stream` and counts it in `seen`; false if the stream ended first.
async fn read_request(stream: &mut tokio::net::TcpStream, seen: &AtomicU32) -> bool {
    use tokio::io::AsyncReadExt as _;
    let mut request = Vec::new();
    let mut buffer = [0; 4096];
    while !complete(&request) {
        match stream.read(&mut buffer).await {
            Ok(0) | Err(_) => return false,
            Ok(n) => request.extend_from_slice(&buffer[..n]),
        }
    }
    seen.fetch_add(1, Ordering::SeqCst);
    true
}

/// An API on 127.0.0.1 that serves one connection at a time (a device, or a proxy that
/// allows one connection per client): its first connection is answered 401 with the head
/// and half the body, the rest of the body still to come, and the next connection is
/// taken only once the client has closed that one; that one is answered 200. Returns the
/// URL and the count of requests read.
async fn one_connection_at_a_time() -> (url::Url, Arc<AtomicU32>) {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = url::Url::parse(&format!("http://{}/pay", listener.local_addr().unwrap())).unwrap();
    let requests = Arc::new(AtomicU32::new(0));
    let seen = requests.clone();
    tokio::spawn(async move {
        let Ok((mut first, _)) = listener.accept().await else {
            return;
        };
        if !read_request(&mut first, &seen).await {
            return;
        }
        let refused = "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Bearer error=\"invalid_token\"\r\nContent-Length: 64\r\n\r\nhalf of ";
        if first.write_all(refused.as_bytes()).await.is_err() {
            return;
        }
        // The next connection only once the client let go of this one.
        let mut rest = [0; 4096];
        while let Ok(n) = first.read(&mut rest).await {
            if n == 0 {
                break;
            }
        }
        drop(first);
        let Ok((mut second, _)) = listener.accept().await else {
            return;
        };
        if read_request(&mut second, &seen).await {
            let accepted = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok";
            let _ = second.write_all(accepted.as_bytes()).await;
        }
    });
    (url, requests)
}

/// After a 401, `BearerAuth` lets go of the refused answer before it sends the request
/// again: held through the resend, the 401 (its body still coming) keeps its connection
/// busy, so the resend needs another one, which a server or proxy that allows one
/// connection per client never takes: the call hangs until its timeout. (Over HTTP/2 with
/// one stream allowed, likewise: the 401's stream is still open.)
#[tokio::test]
async fn bearer_auth_lets_go_of_the_refused_answer_before_it_resends() {
    let (api, requests) = one_connection_at_a_time().await;
    let provider = Answering {
        access: "at-1",
        calls: AtomicU32::new(0),
    };
    let subject = Subject::new(provider, false).await;
    let client = bearer_client(&subject.manager);
    // The timeout only bounds the failure (a hang); a passing run never waits on it.
    let answer = client
        .get(api)
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await;
    assert_eq!(subject.manager.provider().calls.load(Ordering::SeqCst), 1);
    let response = answer.expect("the resend is answered (it timed out: never read)");
    assert_eq!(response.status(), http::StatusCode::OK);
    assert_eq!(requests.load(Ordering::SeqCst), 2);
}
