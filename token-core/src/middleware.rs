//! The request extensions that choose a session ([`Session`]) and forbid a resend
//! ([`NoResend`]), and (feature `middleware`) `BearerAuth`: a reqwest-middleware `Middleware`
//! that sends the session's bearer token, and after a 401 refreshes once and resends once.

use std::sync::Arc;

#[cfg(any(feature = "middleware", feature = "tower"))]
use arc_swap::ArcSwapOption;
#[cfg(feature = "middleware")]
use async_trait::async_trait;
#[cfg(any(feature = "middleware", feature = "tower"))]
use http::HeaderValue;
#[cfg(feature = "middleware")]
use http::{Extensions, StatusCode, header::AUTHORIZATION};
#[cfg(feature = "middleware")]
use reqwest::{Request, Response};
#[cfg(feature = "middleware")]
use reqwest_middleware::{Middleware, Next};

#[cfg(feature = "middleware")]
use crate::manager::{SessionHandle, TokenManager};
#[cfg(feature = "middleware")]
use crate::provider::Provider;
#[cfg(any(feature = "middleware", feature = "tower"))]
use crate::secret::AccessToken;

#[cfg(feature = "middleware")]
/// Adds `Authorization: Bearer <token>` from a [`TokenManager`] to every request that has
/// no `Authorization` header of its own (a request the caller gave credentials of its own,
/// `.basic_auth(...)` say, goes on untouched, and its 401 is no verdict on the token).
///
/// After a 401 it asks the manager for a new token (which refreshes only if no other caller
/// already replaced the refused one) and resends the request once; a 401 that another origin
/// answered (after a redirect the client followed) is returned as it is, and so is one whose
/// `WWW-Authenticate` says `error="insufficient_scope"` (RFC 6750: a refresh returns the same
/// grant, so it would not help). Put [`NoResend`] in a
/// request's extensions to turn the resend off (a non-idempotent call: its 401 is returned,
/// and the next request has the new token; if that refresh fails, its error is returned
/// instead, as after any 401), and [`Session`] to choose the session per request.
///
/// ```no_run
/// # async fn run<P: token_core::provider::Provider>(manager: token_core::manager::TokenManager<P>) -> Result<(), Box<dyn std::error::Error>> {
/// use token_core::middleware::{BearerAuth, NoResend};
/// let client = reqwest_middleware::ClientBuilder::new(reqwest::Client::new())
///     .with(BearerAuth::new(manager, "customer-42"))
///     .build();
/// let balance = client.get("https://api.example.com/balance").send().await?;
/// let payment = client.post("https://api.example.com/payments").with_extension(NoResend).send().await?;
/// # Ok(()) }
/// ```
pub struct BearerAuth<P: Provider> {
    target: Target<P>,
    header: BearerHeader,
    /// Set by [`only_to`](Self::only_to): other origins get no token.
    scope: Option<OriginScope>,
}

#[cfg(feature = "middleware")]
/// The session (or the manager, per request) and the origin: not the last token sent.
impl<P: Provider> std::fmt::Debug for BearerAuth<P> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut out = f.debug_struct("BearerAuth");
        match &self.target {
            Target::One(session) => out.field("session", session),
            Target::PerRequest(manager) => out.field("per_request", manager),
        };
        out.field("only_to", &self.scope).finish_non_exhaustive()
    }
}

#[cfg(feature = "middleware")]
enum Target<P: Provider> {
    /// One session, looked up once.
    One(SessionHandle<P>),
    /// The [`Session`] in each request's extensions.
    PerRequest(TokenManager<P>),
}

#[cfg(any(feature = "middleware", feature = "tower"))]
/// The `Authorization` value of the last token sent, built once per token (the usual case:
/// a token serves many requests), for [`BearerAuth`] and the tower layer alike.
#[derive(Default)]
pub(crate) struct BearerHeader(ArcSwapOption<Bearer>);

#[cfg(any(feature = "middleware", feature = "tower"))]
/// A token and its `Authorization` value.
struct Bearer {
    token: AccessToken,
    value: HeaderValue,
}

#[cfg(any(feature = "middleware", feature = "tower"))]
impl BearerHeader {
    /// `Bearer <token>`, marked sensitive (kept out of `Debug` and HPACK tables): the last
    /// value built if it was for the same token, else a new one.
    pub(crate) fn value(&self, token: &AccessToken) -> Result<HeaderValue, crate::error::Error> {
        if let Some(last) = &*self.0.load()
            && last.token == *token
        {
            return Ok(last.value.clone());
        }
        let mut value = HeaderValue::try_from(format!("Bearer {}", token.expose_secret()))
            .map_err(|_| {
                crate::error::Error::Config("the access token is not a valid header value".into())
            })?;
        value.set_sensitive(true);
        self.0.store(Some(Arc::new(Bearer {
            token: token.clone(),
            value: value.clone(),
        })));
        Ok(value)
    }
}

#[cfg(any(feature = "middleware", feature = "tower"))]
/// The one origin (scheme, host, port) a layer sends its token to, when it was given one.
#[derive(Debug)]
pub(crate) struct OriginScope {
    scheme: Box<str>,
    host: Box<str>,
    port: u16,
    /// Whether a request without an origin in its URI was seen (and said once).
    #[cfg(feature = "tower")]
    relative_seen: std::sync::atomic::AtomicBool,
}

#[cfg(any(feature = "middleware", feature = "tower"))]
impl OriginScope {
    /// `origin` as `https://host[:port]` (a trailing `/` allowed; nothing else after it).
    pub(crate) fn parse(origin: &str) -> Result<Self, crate::error::Error> {
        // The value is not repeated: what follows a host may be a credential (a password
        // in user information, a token in a query).
        let invalid = || {
            crate::error::Error::Config(
                "only_to: not an origin: expected http or https, a host, an optional port and nothing after them"
                    .into(),
            )
        };
        let uri: http::Uri = origin.parse().map_err(|_| invalid())?;
        let scheme = uri.scheme_str().filter(|s| *s == "http" || *s == "https");
        let (Some(scheme), Some(authority)) = (scheme, uri.authority()) else {
            return Err(invalid());
        };
        let bare = matches!(uri.path(), "" | "/") && uri.query().is_none();
        if !bare || authority.as_str().contains('@') || authority.host().is_empty() {
            return Err(invalid());
        }
        // A port written that is no port (`:99999`) is refused, not read as the default.
        let written_port = (authority.as_str().strip_prefix(authority.host()))
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|port| !port.is_empty());
        if written_port && authority.port_u16().is_none() {
            return Err(invalid());
        }
        Ok(Self {
            port: authority.port_u16().unwrap_or(default_port(scheme)),
            scheme: scheme.into(),
            host: authority.host().to_ascii_lowercase().into(),
            #[cfg(feature = "tower")]
            relative_seen: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether a request for this scheme, host and port (its scheme's default if `None`)
    /// goes to the origin.
    fn admits(&self, scheme: Option<&str>, host: Option<&str>, port: Option<u16>) -> bool {
        let (Some(scheme), Some(host)) = (scheme, host) else {
            return false;
        };
        scheme.eq_ignore_ascii_case(&self.scheme)
            && host.eq_ignore_ascii_case(&self.host)
            && port.unwrap_or(default_port(&self.scheme)) == self.port
    }

    /// Whether `uri` (a tower request's) goes to the origin; a relative one does not, and
    /// the first one says so: a tonic channel's requests carry only a path (the channel adds
    /// its origin below the layer), so that none of them would get the token without a word.
    #[cfg(feature = "tower")]
    pub(crate) fn admits_uri(&self, uri: &http::Uri) -> bool {
        use std::sync::atomic::Ordering::Relaxed;
        if uri.host().is_none()
            && !self.relative_seen.load(Relaxed)
            && !self.relative_seen.swap(true, Relaxed)
        {
            tracing::warn!(
                "BearerLayer::only_to: a request whose URI has no origin (a tonic channel's, which adds it below this layer) goes on without the token, as every such request will; a client bound to one origin needs no only_to"
            );
        }
        self.admits(uri.scheme_str(), uri.host(), uri.port_u16())
    }

    /// Whether `url` (a reqwest request's) goes to the origin.
    #[cfg(feature = "middleware")]
    fn admits_url(&self, url: &reqwest::Url) -> bool {
        self.admits(Some(url.scheme()), url.host_str(), url.port())
    }
}

#[cfg(all(test, any(feature = "middleware", feature = "tower")))]
mod origin_tests {
    /// What `only_to` refuses may carry a credential (a password in user information, a
    /// token in a query or path): the error does not repeat it.
    #[test]
    fn an_origin_refused_is_not_repeated_in_the_error() {
        for origin in [
            "https://user:hunter2@api.example.com",
            "https://api.example.com/?access_token=hunter2",
            "https://api.example.com/hunter2",
            "hunter2",
        ] {
            let error = super::OriginScope::parse(origin).unwrap_err();
            let shown = format!("{error} {error:?}");
            assert!(!shown.contains("hunter2"), "{shown}");
        }
    }
}

#[cfg(all(test, any(feature = "middleware", feature = "tower")))]
mod origin_port_tests {
    /// A port that is no port (out of range, not a number) is refused, not read as the
    /// scheme's default: `only_to("https://api.example.com:99999")` admitted port 443.
    #[test]
    fn an_origin_whose_port_is_no_port_is_refused() {
        for origin in [
            "https://api.example.com:99999",
            "https://api.example.com:65536",
            "http://api.example.com:4430000000",
        ] {
            assert!(
                super::OriginScope::parse(origin).is_err(),
                "{origin} was taken"
            );
        }
        let scope = super::OriginScope::parse("https://api.example.com:8443").unwrap();
        assert_eq!(scope.port, 8443);
    }
}

#[cfg(any(feature = "middleware", feature = "tower"))]
/// Whether a 401's `WWW-Authenticate` challenges say the token lacks a scope the call needs
/// (RFC 6750 section 3.1, `error="insufficient_scope"`) and none says the token is invalid:
/// a refresh returns the same grant, so such a 401 is answered as it is, without a refresh.
pub(crate) fn insufficient_scope(headers: &http::HeaderMap) -> bool {
    // Read whatever bytes a challenge holds: a description in the server's language (not
    // ASCII, so no `to_str`) must not hide the `error` beside it.
    let challenges: Vec<_> = headers
        .get_all(http::header::WWW_AUTHENTICATE)
        .iter()
        .map(|value| String::from_utf8_lossy(value.as_bytes()))
        .collect();
    let errors: Vec<&str> = challenges
        .iter()
        .flat_map(|challenge| error_params(challenge))
        .collect();
    let said = |error: &str| errors.iter().any(|e| e.eq_ignore_ascii_case(error));
    said("insufficient_scope") && !said("invalid_token")
}

#[cfg(any(feature = "middleware", feature = "tower"))]
/// The values of the `error` auth-params in `challenges` (RFC 9110 section 11.6.1), whatever
/// their scheme; quoted strings are skipped whole, so a description or realm that mentions
/// an error is not one. Bounded by the header's length.
fn error_params(challenges: &str) -> Vec<&str> {
    let bytes = challenges.as_bytes();
    let tchar = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    let skip_space = |mut i: usize| {
        while i < bytes.len() && matches!(bytes[i], b' ' | b'\t') {
            i += 1;
        }
        i
    };
    // The index just past the quoted string that opens at `start`.
    let past_quoted = |start: usize| crate::macro_support::string_end(bytes, start);
    let mut errors = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'"' {
            i = past_quoted(i);
            continue;
        }
        if !tchar(bytes[i]) {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len() && tchar(bytes[i]) {
            i += 1;
        }
        let name = &challenges[start..i];
        let equals = skip_space(i);
        if bytes.get(equals) != Some(&b'=') {
            continue; // a scheme, or a token68
        }
        let value = skip_space(equals + 1);
        let (text, next) = if bytes.get(value) == Some(&b'"') {
            let end = past_quoted(value);
            (challenges.get(value + 1..end - 1).unwrap_or(""), end)
        } else {
            let mut end = value;
            while end < bytes.len() && tchar(bytes[end]) {
                end += 1;
            }
            (&challenges[value..end], end)
        };
        if name.eq_ignore_ascii_case("error") {
            errors.push(text);
        }
        i = next.max(i);
    }
    errors
}

#[cfg(all(test, any(feature = "middleware", feature = "tower")))]
mod challenge_tests {
    /// The `error` auth-params of challenges, odd ones included: never a panic, and no
    /// error read out of a quoted string.
    #[test]
    fn error_params_are_read_outside_quoted_strings_only() {
        let table: &[(&str, &[&str])] = &[
            (
                r#"Bearer error="insufficient_scope""#,
                &["insufficient_scope"],
            ),
            (
                r#"Bearer realm="a,b", Error = invalid_token"#,
                &["invalid_token"],
            ),
            (
                r#"Basic realm="x", Bearer error="a", error="b""#,
                &["a", "b"],
            ),
            (
                r#"Bearer realm="error=\"x\"", error_description="error=y""#,
                &[],
            ),
            (r#"Bearer error=""#, &[""]),
            (r#"Bearer error="\"#, &[""]),
            (r#"Bearer error="a\"b""#, &[r#"a\"b"#]),
            ("Bearer error=", &[""]),
            ("Bearer error", &[]),
            ("=error", &[]),
            ("abc==, error=x", &["x"]),
            ("", &[]),
            ("\"", &[]),
            ("\\", &[]),
            (",,,", &[]),
        ];
        for (challenges, errors) in table {
            assert_eq!(super::error_params(challenges), *errors, "{challenges:?}");
        }
        let long = "\"".repeat(10_000) + "error=x";
        assert_eq!(super::error_params(&long), ["x"]);
    }

    /// A description that is not ASCII (UTF-8, Latin-1, bytes of neither) does not hide the
    /// `error` of its challenge.
    #[test]
    fn a_challenge_is_read_whatever_bytes_its_description_holds() {
        for description in [
            &b"Zugriff f\xc3\xbcr Zahlungen"[..],
            b"Zugriff f\xfcr",
            b"\xff\xfe\x80",
        ] {
            let mut value = br#"Bearer error="insufficient_scope", error_description=""#.to_vec();
            value.extend_from_slice(description);
            value.push(b'"');
            let mut headers = http::HeaderMap::new();
            headers.insert(
                http::header::WWW_AUTHENTICATE,
                http::HeaderValue::from_bytes(&value).unwrap(),
            );
            assert!(super::insufficient_scope(&headers), "{description:?}");
        }
    }
}

#[cfg(any(feature = "middleware", feature = "tower"))]
fn default_port(scheme: &str) -> u16 {
    if scheme.eq_ignore_ascii_case("https") {
        443
    } else {
        80
    }
}

#[cfg(feature = "middleware")]
impl<P: Provider> BearerAuth<P> {
    /// Authenticates every request as `session` (unless a request carries [`Session`]).
    pub fn new(manager: TokenManager<P>, session: impl Into<Arc<str>>) -> Self {
        Self::for_session(manager.session(&session.into()))
    }

    /// Authenticates every request as the handle's session (unless a request carries
    /// [`Session`]).
    pub fn for_session(session: SessionHandle<P>) -> Self {
        Self {
            target: Target::One(session),
            header: BearerHeader::default(),
            scope: None,
        }
    }

    /// Authenticates each request as the [`Session`] in its extensions; a request without
    /// one fails.
    pub fn per_request(manager: TokenManager<P>) -> Self {
        Self {
            target: Target::PerRequest(manager),
            header: BearerHeader::default(),
            scope: None,
        }
    }

    /// Sends the token only to requests for `origin` (`https://api.example.com`, a port if
    /// not the scheme's default): a request for any other origin goes on untouched, without
    /// the token, and its 401 is no verdict on the token. For a client that also calls other
    /// hosts. (Redirects reqwest follows itself never carry the token to another origin:
    /// reqwest drops `Authorization` on the way.)
    ///
    /// Fails with [`Error::Config`](crate::error::Error::Config) if `origin` is not an
    /// `http` or `https` origin (a path, a query or user information is refused).
    ///
    /// ```
    /// # fn run<P: token_core::provider::Provider>(manager: token_core::manager::TokenManager<P>) -> Result<(), token_core::error::Error> {
    /// use token_core::middleware::BearerAuth;
    /// let auth = BearerAuth::new(manager, "customer-42").only_to("https://api.example.com")?;
    /// # Ok(()) }
    /// ```
    pub fn only_to(mut self, origin: &str) -> Result<Self, crate::error::Error> {
        self.scope = Some(OriginScope::parse(origin)?);
        Ok(self)
    }

    fn manager(&self) -> &TokenManager<P> {
        match &self.target {
            Target::One(handle) => handle.manager(),
            Target::PerRequest(manager) => manager,
        }
    }

    /// The `Authorization` value for `token`.
    fn header(&self, token: &AccessToken) -> reqwest_middleware::Result<HeaderValue> {
        self.header
            .value(token)
            .map_err(reqwest_middleware::Error::middleware)
    }
}

/// Request extension: the session to authenticate this request as.
#[derive(Clone, Debug)]
pub struct Session(pub Arc<str>);

impl Session {
    /// The session named `name`.
    pub fn new(name: impl Into<Arc<str>>) -> Self {
        Self(name.into())
    }
}

/// Request extension: do not resend this request after a 401 (it may not be idempotent); the
/// 401 is returned, and the token is refreshed for the next request (a refresh that fails
/// returns its error instead).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoResend;

#[cfg(feature = "middleware")]
#[async_trait]
impl<P: Provider> Middleware for BearerAuth<P> {
    async fn handle(
        &self,
        mut request: Request,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        // A request with credentials of the caller's own, or for another origin than
        // `only_to`'s: untouched, and its 401 is no verdict on the token.
        if request.headers().contains_key(AUTHORIZATION)
            || (self.scope.as_ref()).is_some_and(|scope| !scope.admits_url(request.url()))
        {
            return next.run(request, extensions).await;
        }
        // A fresh token without awaiting anything; everything else in a future of its own,
        // so that the one this method's future carries (boxed on every request) stays small.
        let token = match self.fresh_token(extensions) {
            Some(token) => token,
            None => Box::pin(self.token(extensions)).await?,
        };
        let resend = if extensions.get::<NoResend>().is_some() {
            Err(request.url().origin())
        } else {
            resendable(&request).ok_or_else(|| request.url().origin())
        };
        request
            .headers_mut()
            .insert(AUTHORIZATION, self.header(&token)?);
        let response = next.clone().run(request, extensions).await?;
        if response.status() != StatusCode::UNAUTHORIZED || insufficient_scope(response.headers()) {
            return Ok(response);
        }
        // A 401 from another origin (the client followed a redirect, and dropped the token
        // on the way) is no verdict on the token.
        let (same_origin, again) = match resend {
            Ok(again) => (response.url().origin() == again.url().origin(), Some(again)),
            Err(origin) => (response.url().origin() == origin, None),
        };
        if !same_origin {
            return Ok(response);
        }
        Box::pin(self.after_401(response, again, token, extensions, next)).await
    }
}

/// Bodies up to this size are copied for a resend; larger ones are shared
/// ([`Request::try_clone`]).
#[cfg(feature = "middleware")]
const COPIED_BODY: usize = 1024;

/// A copy of `request` to send again after a 401, or `None` for a streaming body.
///
/// The same request as [`Request::try_clone`] makes, for less: `try_clone` also makes and
/// drops a map of request settings on every call (most of this middleware's own work on a
/// request that is not refused). A reqwest 0.13 request is its method, URL, headers,
/// version, timeout (the one setting that map holds) and body; a body is copied if small,
/// and shared through `try_clone` otherwise.
#[cfg(feature = "middleware")]
fn resendable(request: &Request) -> Option<Request> {
    let body = match request.body() {
        None => None,
        Some(body) => match body.as_bytes() {
            Some(bytes) if bytes.len() <= COPIED_BODY => Some(reqwest::Body::from(bytes.to_vec())),
            _ => return request.try_clone(),
        },
    };
    let mut copy = Request::new(request.method().clone(), request.url().clone());
    *copy.headers_mut() = request.headers().clone();
    *copy.version_mut() = request.version();
    if let Some(timeout) = request.timeout() {
        *copy.timeout_mut() = Some(*timeout);
    }
    *copy.body_mut() = body;
    Some(copy)
}

#[cfg(feature = "middleware")]
impl<P: Provider> BearerAuth<P> {
    /// The request's session's token, if it is fresh (no lock, no await).
    fn fresh_token(&self, extensions: &Extensions) -> Option<AccessToken> {
        match (extensions.get::<Session>(), &self.target) {
            (Some(Session(name)), _) => self.manager().fresh_token(name),
            (None, Target::One(handle)) => handle.fresh_token(),
            (None, Target::PerRequest(_)) => None,
        }
    }

    /// The request's session's token, refreshed if need be.
    async fn token(&self, extensions: &Extensions) -> reqwest_middleware::Result<AccessToken> {
        match (extensions.get::<Session>(), &self.target) {
            (Some(Session(name)), _) => self.manager().access_token(name).await,
            (None, Target::One(handle)) => handle.access_token().await,
            (None, Target::PerRequest(_)) => {
                return Err(reqwest_middleware::Error::middleware(
                    crate::error::Error::Config(
                        "BearerAuth::per_request needs a Session extension on the request".into(),
                    ),
                ));
            }
        }
        .map_err(reqwest_middleware::Error::middleware)
    }

    /// After a 401 to `token`: a new token, and the request sent again with it if it can
    /// be (`again`); otherwise the 401 is returned, and the next request has the new token.
    async fn after_401(
        &self,
        response: Response,
        again: Option<Request>,
        token: AccessToken,
        extensions: &mut Extensions,
        next: Next<'_>,
    ) -> reqwest_middleware::Result<Response> {
        let fresh = match (extensions.get::<Session>(), &self.target) {
            (Some(Session(name)), _) => {
                tracing::debug!(session = %crate::redact::Printable(name), "API refused the access token; refreshing and resending once");
                self.manager().refresh_rejected(name, &token).await
            }
            (None, Target::One(handle)) => {
                tracing::debug!(session = %crate::redact::Printable(handle.name()), "API refused the access token; refreshing and resending once");
                handle.refresh_rejected(&token).await
            }
            (None, Target::PerRequest(_)) => return Ok(response),
        }
        .map_err(reqwest_middleware::Error::middleware)?;
        let Some(mut again) = again else {
            return Ok(response);
        };
        if fresh == token {
            // The token was itself obtained after a 401 a moment ago (within the failure
            // cooldown): the API refuses more than the token. Its answer stands; nothing is
            // resent.
            return Ok(response);
        }
        again
            .headers_mut()
            .insert(AUTHORIZATION, self.header(&fresh)?);
        // Let go of the refused answer (and its connection, its body perhaps still coming)
        // before the resend: a server or proxy that allows one connection per client would
        // never take the resend's.
        drop(response);
        next.run(again, extensions).await
    }
}
