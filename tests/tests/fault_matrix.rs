//! The fault matrix: every provider against its sandbox, under every fault of the table below.
//!
//! Each row starts a fresh sandbox and manager, seeds one session, lets its access token
//! expire, injects the fault and asks the manager for a token. It checks:
//!
//! - the caller's result: a token, or an error of the row's [`ErrorKind`];
//! - the refresh calls the sandbox saw: retries stay within their bound (3 attempts here),
//!   4xx and unreadable 2xx answers are not retried, lost answers only inside the reuse window;
//! - afterwards, with the fault gone: the session is still usable (the manager refreshes it
//!   and the issuer accepts the stored refresh token) or re-auth was signalled (an error,
//!   an event, and nothing left in the store): never a silent loss;
//! - no token value (seeded, minted by the issuer, or planted in a faulty answer) appears in
//!   the captured `tracing` output, the error's `Display`/`Debug`, any event, or the
//!   manager's `Debug`; and first, that these are there and are the row's: the refresh span's
//!   `call failed` line and the outcome's line, the outcome's event, an error naming its kind
//!   (captured by `token_test_support::logs`, which cannot miss a line of the row's runtime).
//!
//! In-process rows run on tokio's paused clock; the timeout, body-limit and connection rows
//! use a real `ReqwestClient` over the loopback socket.

mod subjects;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use http::{HeaderValue, StatusCode, header::CONTENT_TYPE};
use serde_json::{Value, json};
use time::macros::datetime;
use token_core::sandbox::{Failure, RunningSandbox};
use token_core::{
    clock::ManualClock, clock::TokioClock, error::Error, error::ErrorKind, manager::Event,
};

use token_test_support::logs::{Captured, has_line};
use token_test_support::rig::{Env, Rig, RigClock, SESSION, Subject, Transport};
use token_test_support::{leaked, lock};

/// The client timeout of the socket rows: long enough for a loaded CI machine to answer an
/// undelayed call in a debug build, short beside the 30 s delay of the timeout rows.
const TIMEOUT: Duration = Duration::from_secs(1);
const REUSE: Duration = Duration::from_secs(300);
const NO_REUSE: Duration = Duration::ZERO;
/// A value planted in faulty answers: it must never be shown anywhere.
const CANARY: &str = "at_CANARYd0NotLeak7f3a9c";

/// What the caller gets.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    Token,
    Error(ErrorKind),
}

/// The session afterwards, with the fault gone.
#[derive(Clone, Copy, Debug, PartialEq)]
enum After {
    /// Still stored, refreshed by the manager, and accepted by the issuer.
    Usable,
    /// Re-auth signalled: the next call says so, an event said so, the store holds nothing.
    Reauth,
    /// The faulty answer's tokens were kept (an odd field is no reason to drop them): stored
    /// with their refresh token, the odd expiry unknown, and no re-auth.
    Kept,
}

/// Where the provider's calls go.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Target {
    Sandbox,
    /// A port nothing listens on.
    Refused,
    /// A server that reads the request and closes the connection.
    Reset,
}

struct Row {
    fault: &'static str,
    transport: Transport,
    reuse: Duration,
    target: Target,
    inject: fn(&Fx<'_>),
    expect: Expect,
    /// Refresh calls the sandbox (or the resetting server) sees.
    calls: u64,
    /// The least time the call takes (paused clock: `Retry-After` honoured).
    at_least: Duration,
    after: After,
    /// The status of a refusal whose body is no provider's error: a provider that declares a
    /// kind for it expects that kind instead.
    refused_with: Option<u16>,
}

/// What an injection works with.
struct Fx<'a> {
    sandbox: &'a RunningSandbox,
    path: &'a str,
    subject: &'a dyn Subject,
    seeded: &'a token_core::token_set::StoredTokenSet,
}

impl Fx<'_> {
    fn fail(&self, times: u32, failure: Failure) {
        self.sandbox.fail_next(
            self.path,
            times,
            self.subject.seal(failure, self.sandbox.clock().now()),
        );
    }

    /// The provider's success sample with one field replaced (`None`: removed).
    fn sample_with(&self, pointer: &str, value: Option<Value>) -> Vec<u8> {
        let mut sample = self.subject.success_sample();
        let (parent, key) = pointer.rsplit_once('/').expect("a JSON pointer");
        let object = sample
            .pointer_mut(parent)
            .and_then(Value::as_object_mut)
            .expect("the pointer's parent is an object");
        match value {
            Some(value) => object.insert(key.to_owned(), value),
            None => object.remove(key),
        };
        serde_json::to_vec(&sample).expect("JSON")
    }
}

fn json_200(body: Vec<u8>) -> Failure {
    Failure::new(StatusCode::OK)
        .with_header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
        .with_body(body)
}

fn html(status: StatusCode, body: &str) -> Failure {
    Failure::new(status)
        .with_header(
            CONTENT_TYPE,
            HeaderValue::from_static("text/html; charset=utf-8"),
        )
        .with_body(body.to_owned())
}

const IN_PROCESS: Transport = Transport::InProcess;
const SOCKET: Transport = Transport::Socket(TIMEOUT);
const NONE: Duration = Duration::ZERO;
use After::{Kept, Reauth, Usable};
use ErrorKind::{OutcomeUnknown, ReauthRequired, Rejected, Transient};
use Expect::{Error as Fails, Token};
use Target::{Refused, Reset, Sandbox};

#[rustfmt::skip]
fn table() -> Vec<Row> {
    vec![
        // fault                                      transport    reuse     target   inject                                                                                      expect                 calls  at least                 after
        row("5xx once, then an answer",                IN_PROCESS, NO_REUSE, Sandbox, |f| f.fail(1, Failure::service_unavailable()),                                               Token,                 2,     NONE,                    Usable),
        row("5xx on every call",                       IN_PROCESS, NO_REUSE, Sandbox, |f| f.fail(10, Failure::new(StatusCode::INTERNAL_SERVER_ERROR)),                             Fails(Transient),      3,     NONE,                    Usable),
        row("429 with Retry-After: 2 on every call",   IN_PROCESS, NO_REUSE, Sandbox, |f| f.fail(10, Failure::new(StatusCode::TOO_MANY_REQUESTS).with_retry_after(2)),            Fails(Transient),      3,     Duration::from_secs(4),  Usable),
        row("429 with Retry-After: 2, then an answer", IN_PROCESS, NO_REUSE, Sandbox, |f| f.fail(1, Failure::new(StatusCode::TOO_MANY_REQUESTS).with_retry_after(2)),             Token,                 2,     Duration::from_secs(2),  Usable),
        row("timeout, inside the reuse window",        SOCKET,     REUSE,    Sandbox, |f| f.sandbox.delay_next(f.path, 1, Duration::from_secs(30)),                               Token,                 2,     NONE,                    Usable),
        row("timeout, no reuse window",                SOCKET,     NO_REUSE, Sandbox, |f| f.sandbox.delay_next(f.path, 1, Duration::from_secs(30)),                               Fails(OutcomeUnknown), 1,     NONE,                    Usable),
        row("connection refused",                      SOCKET,     NO_REUSE, Refused, |_| {},                                                                                      Fails(Transient),      0,     NONE,                    Usable),
        row("connection reset after the request",      SOCKET,     NO_REUSE, Reset,   |_| {},                                                                                      Fails(OutcomeUnknown), 1,     NONE,                    Usable),
        row("answer lost after rotation, reuse window",IN_PROCESS, REUSE,    Sandbox, |f| f.sandbox.drop_next(f.path, 1),                                                          Token,                 2,     NONE,                    Usable),
        row("answer lost after rotation, no window",   IN_PROCESS, NO_REUSE, Sandbox, |f| f.sandbox.drop_next(f.path, 1),                                                          Fails(OutcomeUnknown), 1,     NONE,                    Reauth),
        row("answer lost over the socket, reuse window",SOCKET,    REUSE,    Sandbox, |f| f.sandbox.drop_next(f.path, 1),                                                          Token,                 2,     NONE,                    Usable),
        row("malformed JSON (truncated), HTTP 200",    IN_PROCESS, NO_REUSE, Sandbox, |f| f.fail(1, json_200(format!(r#"{{"access_token":"{CANARY}","expires_in":36"#).into_bytes())), Fails(OutcomeUnknown), 1, NONE,                    Usable),
        row("malformed JSON, inside the reuse window", IN_PROCESS, REUSE,    Sandbox, |f| f.fail(1, json_200(b"{\"access_token\":".to_vec())),                                     Token,                 2,     NONE,                    Usable),
        row("HTML error page, HTTP 502",               IN_PROCESS, NO_REUSE, Sandbox, |f| f.fail(1, html(StatusCode::BAD_GATEWAY, "<html><body><h1>502 Bad Gateway</h1></body></html>")), Token,     2,     NONE,                    Usable),
        row("HTML page, HTTP 200 (a captive portal)",  IN_PROCESS, NO_REUSE, Sandbox, |f| f.fail(1, html(StatusCode::OK, "<!doctype html><title>Sign in to Wi-Fi</title>")),     Fails(OutcomeUnknown), 1,     NONE,                    Usable),
        row("HTML page, HTTP 403 (a firewall)",        IN_PROCESS, NO_REUSE, Sandbox, |f| f.fail(1, html(StatusCode::FORBIDDEN, "<html><h1>Request blocked</h1></html>")),        Fails(Rejected),       1,     NONE,                    Usable).refused_with(403),
        row("HTML page, HTTP 401 (a gateway's login)", IN_PROCESS, NO_REUSE, Sandbox, |f| f.fail(1, html(StatusCode::UNAUTHORIZED, "<html><h1>401 Authorization Required</h1></html>")), Fails(Rejected), 1, NONE,            Usable).refused_with(401),
        row("10 MB body, HTTP 200",                    SOCKET,     NO_REUSE, Sandbox, |f| f.fail(1, json_200(ten_megabytes())),                                                 Fails(OutcomeUnknown), 1,     NONE,                    Usable),
        row("10 MB body, HTTP 503",                    SOCKET,     NO_REUSE, Sandbox, |f| f.fail(1, Failure::new(StatusCode::SERVICE_UNAVAILABLE).with_body(ten_megabytes())), Token,                2,     NONE,                    Usable),
        row("missing field: no access token",          IN_PROCESS, NO_REUSE, Sandbox, |f| f.fail(1, json_200(f.sample_with(f.subject.access_pointer(), None))),              Fails(OutcomeUnknown), 1,     NONE,                    Usable),
        row("wrongly typed: access token as a number", IN_PROCESS, NO_REUSE, Sandbox, |f| f.fail(1, json_200(f.sample_with(f.subject.access_pointer(), Some(json!(12345678901_u64))))), Fails(OutcomeUnknown), 1, NONE,  Usable),
        row("wrongly typed: expiry as an object",      IN_PROCESS, NO_REUSE, Sandbox, |f| f.fail(1, json_200(f.sample_with(f.subject.expiry_pointer(), Some(json!({"s": 1}))))),  Token,                 1,     NONE,                    Kept),
        row("refresh token revoked at the provider",   IN_PROCESS, NO_REUSE, Sandbox, revoke_seeded,                                                                               Fails(ReauthRequired), 1,     NONE,                    Reauth),
    ]
}

#[allow(clippy::too_many_arguments)]
fn row(
    fault: &'static str,
    transport: Transport,
    reuse: Duration,
    target: Target,
    inject: fn(&Fx<'_>),
    expect: Expect,
    calls: u64,
    at_least: Duration,
    after: After,
) -> Row {
    Row {
        fault,
        transport,
        reuse,
        target,
        inject,
        expect,
        calls,
        at_least,
        after,
        refused_with: None,
    }
}

impl Row {
    /// The row's fault is a refusal with `status` and a body that is no provider's error.
    fn refused_with(mut self, status: u16) -> Self {
        self.refused_with = Some(status);
        self
    }
}

fn ten_megabytes() -> Vec<u8> {
    let mut body = format!(r#"{{"access_token":"{CANARY}","padding":""#).into_bytes();
    body.resize(10 * 1024 * 1024, b'x');
    body.extend_from_slice(b"\"}");
    body
}

fn revoke_seeded(f: &Fx<'_>) {
    let refresh = f
        .seeded
        .refresh_token
        .clone()
        .expect("seeded with a refresh token");
    let issuer = f.sandbox.issuer();
    // Injections are synchronous; the issuer's memory store answers at once.
    now_or_never(issuer.revoke(refresh.expose_secret())).expect("revoke");
}

/// Polls a future that completes without waiting (the memory issuer store).
fn now_or_never<F: std::future::Future>(future: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut future = std::pin::pin!(future);
    for _ in 0..1000 {
        if let std::task::Poll::Ready(output) = future.as_mut().poll(&mut cx) {
            return output;
        }
    }
    panic!("the future did not complete without waiting");
}

#[test]
fn every_provider_under_every_fault() {
    token_test_support::logs::install();
    let mut failures = Vec::new();
    let mut ran = 0;
    for subject in subjects::subjects() {
        for mut row in table() {
            if !row.reuse.is_zero() && !subject.reuse_configurable() {
                // The provider declares no reuse window: these rows do not apply.
                continue;
            }
            if subject.can_issue() {
                // A refused refresh makes the manager issue a new set with the provider's
                // credentials: the session recovers instead of asking for re-auth.
                if row.expect == Expect::Error(ReauthRequired) {
                    row.expect = Expect::Token;
                }
                if row.after == After::Reauth {
                    row.after = After::Usable;
                }
            }
            if let Some((_, kind)) = (row.refused_with)
                .and_then(|status| subject.on_status().iter().find(|(s, _)| *s == status))
            {
                // A refusal whose body is not the provider's error takes the kind the
                // provider declares for its status, but re-auth: only the provider's own
                // error says a session is dead.
                row.expect = Expect::Error(match kind {
                    ReauthRequired => Rejected,
                    kind => *kind,
                });
            }
            if subject.renews_on_401() && row.refused_with == Some(401) {
                // Maya renews its app token and sends the refresh again, which is answered.
                row.expect = Expect::Token;
                row.calls += 1;
            }
            if subject.can_issue()
                && row.refused_with.is_some()
                && row.expect == Expect::Error(Rejected)
            {
                // A refresh refused, for a reason the provider does not say: a provider that
                // can issue issues a new set, as for a dead refresh token.
                row.expect = Expect::Token;
            }
            if !subject.rotates()
                && row.expect == Expect::Error(OutcomeUnknown)
                && row.after == After::Reauth
            {
                // An answer lost after a refresh that kept the refresh token: the stored one
                // is still good, and the next refresh uses it.
                row.after = After::Usable;
            }
            ran += 1;
            if let Err(failure) = run_row(subject.as_ref(), &row) {
                failures.push(format!("{} / {}: {failure}", subject.name(), row.fault));
            }
        }
    }
    println!(
        "{ran} rows run over {} providers",
        subjects::subjects().len()
    );
    assert!(
        failures.is_empty(),
        "{} of {ran} rows failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

fn run_row(subject: &dyn Subject, row: &Row) -> Result<(), String> {
    let paused = row.transport == Transport::InProcess;
    let runtime = Captured::new(
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .start_paused(paused),
    );
    runtime.block_on(run_row_async(subject, row, &runtime))
}

async fn run_row_async(subject: &dyn Subject, row: &Row, logs: &Captured) -> Result<(), String> {
    let start = datetime!(2026-01-01 00:00 UTC);
    let clock = match row.transport {
        Transport::InProcess => RigClock::Tokio(Arc::new(TokioClock::starting_at(start))),
        Transport::Socket(_) => RigClock::Manual(ManualClock::new(start)),
    };
    let mut env = Env::new(clock.clone(), row.reuse, row.transport);
    let accepted = Arc::new(AtomicUsize::new(0));
    env.base_url_override = match row.target {
        Target::Sandbox => None,
        Target::Refused => Some(refused_url().await),
        Target::Reset => Some(resetting_server(accepted.clone()).await),
    };
    let rig = subject.start(&env).await;
    let seeded = rig.seed(SESSION).await;
    clock.advance(Duration::from_secs(3601)).await;
    let path = subject.refresh_path();
    rig.sandbox().reset_calls();
    (row.inject)(&Fx {
        sandbox: rig.sandbox(),
        path,
        subject,
        seeded: &seeded,
    });

    let started = tokio::time::Instant::now();
    let result = rig.access_token(SESSION).await;
    let took = started.elapsed();
    let calls = match row.target {
        Target::Sandbox => rig.sandbox().calls(path),
        Target::Refused => 0,
        Target::Reset => accepted.load(Ordering::SeqCst) as u64,
    };
    let mut shown = Vec::new();
    match (&result, row.expect) {
        (Ok(token), Expect::Token) => {
            if token == &seeded.access_token {
                return Err("the caller got the expired token".into());
            }
        }
        (Err(error), Expect::Error(kind)) if error.kind() == kind => {
            shown.push(format!("{error} {error:?}"));
            if kind == Transient && calls > 1 && !matches!(error, Error::RetriesExhausted { .. }) {
                return Err(format!("retried, but not reported as such: {error}"));
            }
            if row.fault.starts_with("429") && error.retry_after() != Some(Duration::from_secs(2)) {
                return Err(format!("Retry-After lost: {:?}", error.retry_after()));
            }
        }
        (result, expect) => {
            return Err(format!(
                "expected {expect:?}, got {:?}",
                result.as_ref().map_err(|e| (e.kind(), e.to_string()))
            ));
        }
    }
    if calls != row.calls {
        return Err(format!(
            "{calls} refresh calls (want {}); result {:?}",
            row.calls,
            result.as_ref().map_err(|e| e.to_string())
        ));
    }
    if took < row.at_least {
        return Err(format!("took {took:?}, less than {:?}", row.at_least));
    }
    // What the call was told and logged, before the aftermath adds its own.
    let events = env.events.events().clone();
    let logged = logs.text();
    expected_shown(row.expect, &result, &events, &logged)?;
    // Nothing lost on the way: the store holds a set, the seeded one or a newer one.
    if rig.stored(SESSION).await.is_none() && row.after != After::Reauth {
        return Err("the store lost the session".into());
    }

    rig.sandbox().clear_faults();
    rig.sandbox().reset_calls();
    check_after(rig.as_ref(), row, &env, &clock).await?;

    // No secret shown anywhere: in every log line (the refresh's, checked above, and the
    // aftermath's), the manager's and sandbox's `Debug`, any event, the error.
    let debug = rig.debug();
    if !debug.contains("TokenManager") {
        return Err(format!("the Debug inspected is not the manager's: {debug}"));
    }
    shown.push(logs.text());
    shown.push(debug);
    for event in env.events.events().iter() {
        shown.push(format!("{event:?}"));
    }
    let mut secrets = lock(&env.issuer_store.minted).clone();
    secrets.push(seeded.access_token.expose_secret().to_owned());
    secrets.extend(
        seeded
            .refresh_token
            .iter()
            .map(|t| t.expose_secret().to_owned()),
    );
    secrets.push(CANARY.to_owned());
    // The seeded pair and the canary at least, each long enough for `leaked` to look for.
    if secrets.iter().filter(|s| s.len() >= 8).count() < 3 {
        return Err(format!("too few secrets to look for: {}", secrets.len()));
    }
    for text in &shown {
        if let Some(secret) = leaked(text, &secrets) {
            let at = text.find(&secret).unwrap_or(0);
            let context = &text[at.saturating_sub(120)..(at + secret.len() + 40).min(text.len())];
            return Err(format!("a token was shown: ...{context}..."));
        }
    }
    Ok(())
}

/// The positive control of the leak check: the call's error, events and log lines are there,
/// and they are the ones of this row's outcome, so "no secret in them" means something.
fn expected_shown(
    expect: Expect,
    result: &Result<token_core::secret::AccessToken, Error>,
    events: &[Event],
    logged: &str,
) -> Result<(), String> {
    let in_refresh = |parts: &[&str]| {
        let mut parts = parts.to_vec();
        parts.extend(["token_refresh{", "session=customer-7"]);
        has_line(logged, &parts)
    };
    // Every row's fault makes at least one call fail, or (an odd expiry, whose tokens are
    // kept) is reported by the field's name, or (a 401 to Maya's refresh) renews the app
    // token inside the provider's call.
    if !in_refresh(&["call failed", "attempt=1"])
        && !in_refresh(&["invalid value", "field="])
        && !in_refresh(&["refused the app token; renewing it"])
    {
        return Err(format!(
            "no `call failed` line in the refresh span was captured:\n{logged}"
        ));
    }
    let ours = |session: &str| session == SESSION;
    let (line, event): (Vec<String>, bool) = match expect {
        Expect::Token => (
            vec!["token set refreshed".into()],
            events
                .iter()
                .any(|e| matches!(e, Event::Refreshed { session, .. } if ours(session))),
        ),
        Expect::Error(ReauthRequired) => (
            vec!["re-authorization required".into()],
            events
                .iter()
                .any(|e| matches!(e, Event::ReauthRequired(r) if ours(&r.session))),
        ),
        Expect::Error(kind) => (
            vec!["refresh failed".into(), format!("kind={kind}")],
            events.iter().any(|e| {
                matches!(e, Event::RefreshFailed { session, kind: k, error }
                    if ours(session) && *k == kind && error.contains(kind.as_str()))
            }),
        ),
    };
    let line: Vec<&str> = line.iter().map(String::as_str).collect();
    if !in_refresh(&line) {
        return Err(format!(
            "no {line:?} line in the refresh span was captured:\n{logged}"
        ));
    }
    if !event {
        return Err(format!("no event of the outcome {expect:?}: {events:?}"));
    }
    if let (Err(error), Expect::Error(kind)) = (result, expect)
        && !error.to_string().contains(kind.as_str())
    {
        return Err(format!("the error does not name its kind {kind}: {error}"));
    }
    Ok(())
}

async fn check_after(rig: &dyn Rig, row: &Row, env: &Env, clock: &RigClock) -> Result<(), String> {
    let reauth_events = || env.events.reauth_count();
    match row.after {
        After::Reauth => {
            if row.expect != Expect::Error(ReauthRequired) {
                // The manager learns it at the next refresh.
                clock.advance(Duration::from_secs(3601)).await;
                let again = rig.access_token(SESSION).await;
                if again.as_ref().map_err(Error::kind).err() != Some(ReauthRequired) {
                    return Err(format!(
                        "afterwards: expected re-auth, got {:?}",
                        again.map_err(|e| e.to_string())
                    ));
                }
            }
            let again = rig.access_token(SESSION).await;
            if again.as_ref().map_err(Error::kind).err() != Some(ReauthRequired) {
                return Err("a dead session did not keep saying re-auth".into());
            }
            if reauth_events() != 1 {
                return Err(format!("{} re-auth events (want 1)", reauth_events()));
            }
            if rig.stored(SESSION).await.is_some() {
                return Err("a dead session stayed in the store".into());
            }
        }
        After::Usable => {
            if reauth_events() != 0 {
                return Err("re-auth was signalled for a usable session".into());
            }
            if env.base_url_override.is_none() {
                clock.advance(Duration::from_secs(3601)).await;
                let token = rig
                    .access_token(SESSION)
                    .await
                    .map_err(|e| format!("afterwards the manager could not refresh: {e}"))?;
                rig.sandbox()
                    .issuer()
                    .authenticate(token.expose_secret())
                    .await
                    .map_err(|e| format!("afterwards the issuer refused the token: {e}"))?;
            }
            let stored = rig
                .stored(SESSION)
                .await
                .ok_or("afterwards the store holds nothing")?;
            let refresh = stored
                .refresh_token
                .ok_or("the stored set lost its refresh token")?;
            rig.sandbox()
                .issuer()
                .refresh(refresh.expose_secret())
                .await
                .map_err(|e| format!("the issuer refuses the stored refresh token: {e}"))?;
        }
        After::Kept => {
            if reauth_events() != 0 {
                return Err("re-auth was signalled for an answer with tokens".into());
            }
            let stored = rig
                .stored(SESSION)
                .await
                .ok_or("the answer's tokens were not stored")?;
            if stored.refresh_token.is_none() {
                return Err("the stored set lost its refresh token".into());
            }
            if stored.access_expires_at.is_some() {
                return Err("the odd expiry was not treated as unknown".into());
            }
        }
    }
    Ok(())
}

/// A loopback URL on a port nothing listens on (bound by the OS, then released).
async fn refused_url() -> url::Url {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    format!("http://{addr}/").parse().expect("url")
}

/// A loopback server that reads each request and closes the connection unanswered.
async fn resetting_server(accepted: Arc<AtomicUsize>) -> url::Url {
    use tokio::io::AsyncReadExt;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        for _ in 0..16 {
            let Ok((mut stream, _)) = listener.accept().await else {
                return;
            };
            accepted.fetch_add(1, Ordering::SeqCst);
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            drop(stream);
        }
    });
    format!("http://{addr}/").parse().expect("url")
}
