//! The MPP side of applyToken: what a wallet runs when Alipay+ asks it for tokens, over the
//! token-core [`Issuer`], with the same definitions the client uses.
//!
//! As the seed describes it: the request's signature is verified; `REFRESH_TOKEN` checks the
//! refresh token (invalid: `F INVALID_REFRESH_TOKEN`; expired: `F EXPIRED_REFRESH_TOKEN`),
//! issues a new pair and invalidates the old one, and answers the same refresh token again
//! with the same pair for the issuer's reuse window (give it 5 minutes:
//! [`IssuerConfig::with_reuse_window`](token_core::issuer::IssuerConfig::with_reuse_window));
//! `AUTHORIZATION_CODE` exchanges a single-use code minted by [`Mpp::authorize`] (the issuer's
//! authorization codes: hashed at rest, shared by replicas on a `PostgresIssuerStore`, dead
//! after [`IssuerConfig::code_ttl`](token_core::issuer::IssuerConfig::code_ttl)). Every answer is
//! signed. A failure of the MPP itself is `U UNKNOWN_EXCEPTION` (the same request may be
//! sent again), except a request its issuer store refuses as one it cannot hold
//! ([`StoreError::Unsupported`]), which would fail again: `F PROCESS_FAIL`.
//!
//! A pair is bound to the `Client-Id` whose code exchange obtained it (RFC 6749 section 6):
//! several MPPs (several `Client-Id`s) may share one issuer store, and a refresh token presented
//! by another one is `F INVALID_REFRESH_TOKEN`, like an unknown one, rotating nothing. Pairs
//! the wallet issues itself ([`Issuer::issue`]) are bound to no client.
//!
//! A request whose `Request-Time` is more than [`Mpp::with_request_time_window`] (5 minutes
//! by default) away from the issuer's clock, either way, is refused as `F INVALID_SIGNATURE`
//! like a wrong signature, before the issuer sees it: a signed request captured and sent
//! again later (a replayed code exchange would revoke the pair it gave) is worth nothing
//! outside that window. Inside it, the same bytes are indistinguishable from Alipay+ sending
//! the same request again after a `U` answer: a refresh sent again is answered by the
//! issuer's reuse window; a code exchange sent again after its answer was lost finds the
//! code used, is refused `F INVALID_AUTH_CODE`, and revokes the pair it gave (the user
//! authorizes again).

use std::time::Duration;

use time::OffsetDateTime;
use token_core::codec::{Endpoint, encode_error, encode_response};
use token_core::error::{EndpointError, StoreError};
use token_core::issuer::{CodeExchange, CodeGrant, Issued, IssuerError};
use token_core::token_set::{StoredTokenSet, TokenSet};
use token_core::{codec::TokenResponse, issuer::Issuer, secret::AuthCode};

use crate::endpoints::{
    AlipayCode, AlipayError, AlipayExtras, ApplyToken, ApplyTokenByCode, ApplyTokenResult,
};
use crate::signature::{REQUEST_TIME, Rsa256Signer, parse_time};

/// An MPP's applyToken service.
///
/// ```
/// # #[cfg(feature = "sandbox")] mod example {
/// # use std::sync::Arc;
/// # use token_core::{issuer::Issuer, issuer::IssuerConfig, clock::SystemClock};
/// use token_provider_alipayplus::mpp::Mpp;
/// use token_provider_alipayplus::signature::Rsa256Signer;
/// # use token_provider_alipayplus::sandbox::{client_public_key, mpp_private_key};
///
/// # async fn serve(request: http::Request<Vec<u8>>) -> Result<(), Box<dyn std::error::Error>> {
/// // The MPP signs with its own key and verifies Alipay+'s requests with Alipay+'s key.
/// let signer = Rsa256Signer::from_pem("client-id", 1, mpp_private_key(), client_public_key())?;
/// let mpp = Mpp::new(signer).with_psp_id("102208800000000001");
/// let issuer = Issuer::in_memory(Arc::new(SystemClock),
///     IssuerConfig::default().with_reuse_window(std::time::Duration::from_secs(300)));
/// let answer: http::Response<Vec<u8>> = mpp.answer(&issuer, &request).await;
/// # Ok(()) }
/// # }
/// ```
#[derive(Debug)]
pub struct Mpp {
    signer: Rsa256Signer,
    psp_id: Option<String>,
    request_time_window: Duration,
}

/// `pspId` is at most 64 characters.
const MAX_PSP_ID: usize = 64;

/// How far a request's `Request-Time` may be from the MPP's clock, either way, unless
/// [`Mpp::with_request_time_window`] says otherwise: 5 minutes.
pub const DEFAULT_REQUEST_TIME_WINDOW: Duration = Duration::from_secs(300);

impl Mpp {
    /// An MPP that verifies requests and signs answers with `signer`.
    pub fn new(signer: Rsa256Signer) -> Self {
        Self {
            signer,
            psp_id: None,
            request_time_window: DEFAULT_REQUEST_TIME_WINDOW,
        }
    }

    /// Refuses requests whose `Request-Time` is more than `window` before or after the
    /// issuer's clock (default [`DEFAULT_REQUEST_TIME_WINDOW`]); `Duration::MAX` accepts any
    /// time. Keep the wallet's clock in step (NTP) well within it.
    pub fn with_request_time_window(mut self, window: Duration) -> Self {
        self.request_time_window = window;
        self
    }

    /// Accepts only requests for `psp_id`.
    pub fn with_psp_id(mut self, psp_id: impl Into<String>) -> Self {
        self.psp_id = Some(psp_id.into());
        self
    }

    /// Records the consent of `subject` and returns a single-use authorization code for it
    /// from `issuer`, for the Alipay+ client whose signed applyToken redeems it; the pair it
    /// is exchanged for carries `extras`.
    pub async fn authorize(
        &self,
        issuer: &Issuer,
        subject: &str,
        extras: AlipayExtras,
    ) -> Result<AuthCode, IssuerError> {
        let extras = serde_json::to_value(&extras)
            .map_err(|e| IssuerError::Store(StoreError::Corrupt(e.to_string())))?;
        let grant = CodeGrant::new(self.signer.client_id(), subject).with_extras(extras);
        issuer.issue_code(grant).await
    }

    /// Answers an applyToken request, signed. A pair whose extras are not Alipay+ extras (a
    /// wallet's own [`Issuer::issue`] with a number for `customerId`) is answered with the
    /// extras fields that are text, not refused: it is rotated already.
    ///
    /// The request arrives read whole: bounding what is read is the wallet's HTTP server's
    /// job, before this call (an applyToken request is well under 4 KiB; a limit of 64 KiB
    /// is ample, as is a read timeout of a few seconds). The loopback sandbox does both.
    ///
    /// Its URI is the path (and query) Alipay+ called: the request's signature covers them,
    /// and so does the answer's, which Alipay+ checks against the path it called. Where the
    /// wallet's server hands its handler a shorter path (axum's `Router::nest` strips its
    /// prefix, as does a proxy that forwards `/alipay/...` as `/...`), put the original back
    /// first (axum keeps it as the `OriginalUri` extension): with the shorter one, every
    /// request is refused `F INVALID_SIGNATURE`.
    pub async fn answer(
        &self,
        issuer: &Issuer,
        request: &http::Request<Vec<u8>>,
    ) -> http::Response<Vec<u8>> {
        let now = issuer.clock().now();
        let verified = self
            .signer
            .verify_request(request)
            .map_err(|error| AlipayError::failed(AlipayCode::InvalidSignature, unverified(error)))
            .and_then(|()| self.check_request_time(request, now));
        let outcome = match verified {
            Err(error) => Err(error),
            Ok(()) => self.process(issuer, request).await,
        };
        let response = match outcome {
            Ok(issued) => match alipay_set(issued.tokens) {
                Some(set) => encode_response(&ApplyTokenResult::from_token_set(&set, now)),
                None => encode_error(&AlipayError::unknown(
                    AlipayCode::UnknownException,
                    "the pair cannot be answered",
                )),
            },
            Err(error) => encode_error(&error),
        };
        self.signed(request, response, now)
    }

    /// Answers `request` with `error`, signed: for refusals of the MPP's own (risk control,
    /// maintenance).
    pub fn answer_error(
        &self,
        request: &http::Request<Vec<u8>>,
        error: &AlipayError,
        now: OffsetDateTime,
    ) -> http::Response<Vec<u8>> {
        self.signed(request, encode_error(error), now)
    }

    async fn process(
        &self,
        issuer: &Issuer,
        request: &http::Request<Vec<u8>>,
    ) -> Result<Issued, AlipayError> {
        #[derive(serde::Deserialize)]
        #[serde(rename_all = "camelCase")]
        struct Grant {
            grant_type: Option<String>,
        }
        let grant = serde_json::from_slice::<Grant>(request.body())
            .ok()
            .and_then(|g| g.grant_type);
        match grant.as_deref() {
            Some("REFRESH_TOKEN") => {
                let apply = ApplyToken::decode_request(request).map_err(param_illegal)?;
                self.check_psp(&apply.psp_id)?;
                issuer
                    .refresh_for(apply.refresh_token.expose_secret(), self.signer.client_id())
                    .await
                    .map_err(refresh_refusal)
            }
            Some("AUTHORIZATION_CODE") => {
                let apply = ApplyTokenByCode::decode_request(request).map_err(param_illegal)?;
                self.check_psp(&apply.psp_id)?;
                let exchange = CodeExchange::new(self.signer.client_id());
                issuer
                    .redeem_code(apply.auth_code.expose_secret(), exchange)
                    .await
                    .map_err(code_refusal)
            }
            _ => Err(AlipayError::failed(
                AlipayCode::ParamIllegal,
                "grantType must be AUTHORIZATION_CODE or REFRESH_TOKEN",
            )),
        }
    }

    /// Whether the (verified) request was signed within the window around `now`.
    fn check_request_time(
        &self,
        request: &http::Request<Vec<u8>>,
        now: OffsetDateTime,
    ) -> Result<(), AlipayError> {
        let sent = request
            .headers()
            .get(REQUEST_TIME)
            .and_then(|value| value.to_str().ok())
            .and_then(parse_time)
            .ok_or_else(|| {
                AlipayError::failed(
                    AlipayCode::InvalidSignature,
                    "`Request-Time` is not an ISO 8601 time with an offset",
                )
            })?;
        let within = time::Duration::try_from(self.request_time_window)
            .map_or(true, |window| (now - sent).abs() <= window);
        if within {
            Ok(())
        } else {
            Err(AlipayError::failed(
                AlipayCode::InvalidSignature,
                format!(
                    "`Request-Time` is more than {} s away from the MPP's clock",
                    self.request_time_window.as_secs()
                ),
            ))
        }
    }

    fn check_psp(&self, psp_id: &str) -> Result<(), AlipayError> {
        let known = self.psp_id.as_deref().is_none_or(|p| p == psp_id);
        if psp_id.is_empty() || psp_id.chars().count() > MAX_PSP_ID || !known {
            return Err(AlipayError::failed(
                AlipayCode::ParamIllegal,
                "pspId is not this MPP's",
            ));
        }
        Ok(())
    }

    fn signed(
        &self,
        request: &http::Request<Vec<u8>>,
        mut response: http::Response<Vec<u8>>,
        now: OffsetDateTime,
    ) -> http::Response<Vec<u8>> {
        if let Err(error) = self.signer.sign_response(request, &mut response, now) {
            tracing::error!(%error, "could not sign the applyToken answer");
        }
        response
    }
}

/// The pair as Alipay+ answers it. Extras that are not Alipay+'s (a wallet's own
/// [`Issuer::issue`] given a number for `customerId`, or not an object) are read field by
/// field, each kept when it is text: the pair is rotated in the store by now, and an error
/// answer would lose it (every retry answered the same error, then the token was used up).
fn alipay_set(stored: StoredTokenSet) -> Option<TokenSet<AlipayExtras>> {
    if let Ok(set) = TokenSet::from_stored(stored.clone()) {
        return Some(set);
    }
    tracing::warn!(
        "the pair's extras are not Alipay+ extras; answered with the fields that are text"
    );
    let text = |name: &str| {
        stored
            .extras
            .get(name)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let readable = AlipayExtras {
        customer_id: text("customerId"),
        user_login_id: text("userLoginId"),
    };
    let mut plain = stored;
    plain.extras = serde_json::Value::Null;
    // Without extras there is nothing to fail on.
    let set = TokenSet::<AlipayExtras>::from_stored(plain).ok()?;
    Some(set.with_extras(readable))
}

/// Why a request's signature did not verify, said of the request: the signer's errors are
/// worded for the client, of an answer.
fn unverified(error: EndpointError) -> String {
    match error {
        EndpointError::Signature(reason) => {
            format!("the request's signature did not verify: {reason}")
        }
        error => error.to_string(),
    }
}

/// A request the endpoint cannot read (a missing field, a wrong constant) is
/// `F PARAM_ILLEGAL`, with the reader's reason.
fn param_illegal(error: token_core::codec::RequestError) -> AlipayError {
    AlipayError::failed(AlipayCode::ParamIllegal, error.0)
}

/// An authorization code that is unknown, used or not this client's is `INVALID_AUTH_CODE`,
/// an expired one `EXPIRED_AUTH_CODE`; a request the issuer's store cannot hold is
/// [`unsupported`]; any other failure of the MPP itself is `U`.
fn code_refusal(error: IssuerError) -> AlipayError {
    match error {
        IssuerError::Store(StoreError::Unsupported(_)) => unsupported(),
        IssuerError::ExpiredAuthCode => {
            AlipayError::failed(AlipayCode::ExpiredAuthCode, "the authCode has expired")
        }
        error if error.is_code_rejection() => {
            AlipayError::failed(AlipayCode::InvalidAuthCode, "the authCode is invalid")
        }
        _ => AlipayError::unknown(AlipayCode::UnknownException, "try again"),
    }
}

/// The seed's codes: invalid (unknown, revoked, already used) is `INVALID_REFRESH_TOKEN`,
/// expired is `EXPIRED_REFRESH_TOKEN`; a request the issuer's store cannot hold is
/// [`unsupported`]; any other failure of the MPP itself is `U`.
fn refresh_refusal(error: IssuerError) -> AlipayError {
    match error {
        IssuerError::Store(StoreError::Unsupported(_)) => unsupported(),
        IssuerError::ExpiredRefreshToken => AlipayError::failed(
            AlipayCode::ExpiredRefreshToken,
            "the refresh token has expired",
        ),
        error if error.is_refresh_rejection() => AlipayError::failed(
            AlipayCode::InvalidRefreshToken,
            "the refresh token is invalid",
        ),
        _ => AlipayError::unknown(AlipayCode::UnknownException, "try again"),
    }
}

/// A request the issuer's store refused as one it cannot hold (`StoreError::Unsupported`:
/// the same request would fail again, and nothing changed) is `F PROCESS_FAIL`, definitive,
/// not a `U` the client would send again; the store's reason stays in the MPP.
fn unsupported() -> AlipayError {
    AlipayError::failed(AlipayCode::ProcessFail, "the request cannot be processed")
}

#[cfg(test)]
mod tests {
    use time::macros::datetime;

    use super::parse_time;

    #[test]
    fn request_times_are_read_in_the_iso_8601_forms_alipay_plus_writes() {
        let at = datetime!(2019-04-04 12:08:56 +05:30);
        for text in [
            "2019-04-04T12:08:56+05:30",
            " 2019-04-04T12:08:56+05:30 ",
            "2019-04-04T06:38:56Z",
            "2019-04-04T12:08:56+0530",
        ] {
            assert_eq!(parse_time(text), Some(at), "{text}");
        }
        assert_eq!(
            parse_time("2019-04-04T12:08:56.250+05:30"),
            Some(at + time::Duration::milliseconds(250))
        );
        for text in ["", "2019-04-04T12:08:56", "yesterday", "1554359936"] {
            assert_eq!(parse_time(text), None, "{text}");
        }
    }

    /// Signed requests a buggy or compromised peer could send: every one is answered with a
    /// signed `F` result (never a panic, never a rotation, never a token quoted back), and the
    /// client's pair lives on.
    #[cfg(feature = "sandbox")]
    mod hostile {
        use std::sync::Arc;

        use token_core::clock::ManualClock;
        use token_core::issuer::Issuer;

        use crate::sandbox::{
            AlipayPlusSandbox, CLIENT_ID, PSP_ID, client_private_key, mpp_public_key,
        };
        use crate::signature::Rsa256Signer;

        fn signed(body: Vec<u8>, issuer: &Issuer) -> http::Request<Vec<u8>> {
            let signer =
                Rsa256Signer::from_pem(CLIENT_ID, 1, client_private_key(), mpp_public_key())
                    .unwrap();
            let mut request =
                http::Request::post("https://mpp.example/aps/api/v1/authorizations/applyToken")
                    .body(body)
                    .unwrap();
            signer
                .sign_request(&mut request, issuer.clock().now())
                .unwrap();
            request
        }

        /// An issuer with the sandbox's configuration, on a manual clock.
        fn issuer() -> Issuer {
            let clock = ManualClock::new(time::macros::datetime!(2026-01-01 00:00 UTC));
            Issuer::in_memory(Arc::new(clock), AlipayPlusSandbox::issuer_config())
        }

        /// `pspId` is at most 64 characters: an MPP that accepts any `pspId` measures it in
        /// characters, not in UTF-8 bytes (one of 64 non-ASCII characters is within the
        /// limit, one of 65 is not).
        #[tokio::test]
        async fn a_psp_id_is_measured_in_characters() {
            let signer = Rsa256Signer::from_pem(
                CLIENT_ID,
                1,
                crate::sandbox::mpp_private_key(),
                crate::sandbox::client_public_key(),
            )
            .unwrap();
            let mpp = crate::mpp::Mpp::new(signer);
            let issuer = issuer();
            let live = issuer.issue("alice", serde_json::json!({})).await.unwrap();
            let token = live.tokens.refresh_token.clone().unwrap();
            let body = |psp: &str| {
                format!(
                    r#"{{"pspId":"{psp}","grantType":"REFRESH_TOKEN","refreshToken":"{}"}}"#,
                    token.expose_secret()
                )
                .into_bytes()
            };
            for psp in ["é".repeat(65), "x".repeat(65), String::new()] {
                let answer = mpp.answer(&issuer, &signed(body(&psp), &issuer)).await;
                assert_eq!(
                    result(&answer),
                    ("F".to_owned(), "PARAM_ILLEGAL".to_owned()),
                    "{psp}"
                );
            }
            let answer = mpp
                .answer(&issuer, &signed(body(&"é".repeat(64)), &issuer))
                .await;
            assert_eq!(result(&answer), ("S".to_owned(), "SUCCESS".to_owned()));
        }

        /// The signature covers the path Alipay+ called: handed the path a router or a
        /// proxy shortened (axum's `nest` strips its prefix), the MPP refuses the request
        /// as unsigned; with the original path put back, it answers.
        #[tokio::test]
        async fn a_request_is_verified_against_the_path_alipay_plus_called() {
            let sandbox = AlipayPlusSandbox::new();
            let mpp = sandbox.mpp();
            let issuer = issuer();
            let live = issuer.issue("alice", serde_json::json!({})).await.unwrap();
            let token = live.tokens.refresh_token.clone().unwrap();
            let body = format!(
                r#"{{"pspId":"{PSP_ID}","grantType":"REFRESH_TOKEN","refreshToken":"{}"}}"#,
                token.expose_secret()
            );
            let called = signed(body.into_bytes(), &issuer);
            let (mut parts, body) = called.into_parts();
            let original = parts.uri.clone();
            parts.uri = "/api/v1/authorizations/applyToken".parse().unwrap();
            let nested = http::Request::from_parts(parts, body);
            let answer = mpp.answer(&issuer, &nested).await;
            assert_eq!(
                result(&answer),
                ("F".to_owned(), "INVALID_SIGNATURE".to_owned())
            );
            let (mut parts, body) = nested.into_parts();
            parts.uri = original;
            let answer = mpp
                .answer(&issuer, &http::Request::from_parts(parts, body))
                .await;
            assert_eq!(result(&answer), ("S".to_owned(), "SUCCESS".to_owned()));
        }

        /// The body of an applyToken exchanging `code`.
        fn code_exchange(code: &token_core::secret::AuthCode) -> Vec<u8> {
            format!(
                r#"{{"pspId":"{PSP_ID}","grantType":"AUTHORIZATION_CODE","authCode":"{}"}}"#,
                code.expose_secret()
            )
            .into_bytes()
        }

        fn result(answer: &http::Response<Vec<u8>>) -> (String, String) {
            let body: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
            let field = |name: &str| body["result"][name].as_str().unwrap_or("").to_owned();
            (field("resultStatus"), field("resultCode"))
        }

        #[tokio::test]
        async fn hostile_signed_bodies_are_refused_and_rotate_nothing() {
            let sandbox = AlipayPlusSandbox::new();
            let mpp = sandbox.mpp();
            let issuer = issuer();
            let live = issuer.issue("alice", serde_json::json!({})).await.unwrap();
            let token = live.tokens.refresh_token.clone().unwrap();
            let token = token.expose_secret();
            let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
            let refresh = |psp: &str, grant: &str, refresh: &str| {
                format!(r#"{{"pspId":{psp},"grantType":{grant},"refreshToken":{refresh}}}"#)
                    .into_bytes()
            };
            let (psp, grant, quoted) = (
                format!("\"{PSP_ID}\""),
                "\"REFRESH_TOKEN\"".to_owned(),
                format!("\"{token}\""),
            );
            let bodies: Vec<(Vec<u8>, &str)> = vec![
                (refresh(&psp, &grant, &deep), "PARAM_ILLEGAL"),
                (
                    format!(
                        r#"{{"x":{deep},"pspId":{psp},"grantType":{grant},"refreshToken":{quoted}}}"#
                    )
                    .into_bytes(),
                    "PARAM_ILLEGAL",
                ),
                (refresh(&psp, &grant, "12345"), "PARAM_ILLEGAL"),
                (refresh(PSP_ID, &grant, &quoted), "PARAM_ILLEGAL"),
                (refresh(&psp, "[\"REFRESH_TOKEN\"]", &quoted), "PARAM_ILLEGAL"),
                (
                    refresh(&format!("\"{}\"", "é".repeat(40)), &grant, &quoted),
                    "PARAM_ILLEGAL",
                ),
                (
                    refresh(&psp, &grant, &format!("\"{token}\\u0000\"")),
                    "INVALID_REFRESH_TOKEN",
                ),
                (
                    refresh(&psp, &grant, &format!("\"{}\"", "\u{1F600}".repeat(100_000))),
                    "INVALID_REFRESH_TOKEN",
                ),
                (b"\xff\xfe not json".to_vec(), "PARAM_ILLEGAL"),
                (Vec::new(), "PARAM_ILLEGAL"),
            ];
            for (body, code) in bodies {
                let shown = String::from_utf8_lossy(&body[..body.len().min(80)]).into_owned();
                let answer = mpp.answer(&issuer, &signed(body, &issuer)).await;
                assert_eq!(answer.status(), http::StatusCode::OK, "{shown}");
                assert!(answer.headers().contains_key("signature"), "{shown}");
                assert_eq!(
                    result(&answer),
                    ("F".to_owned(), code.to_owned()),
                    "{shown}"
                );
                let text = String::from_utf8_lossy(answer.body()).into_owned();
                assert!(!text.contains(token), "{shown}: {text}");
            }
            issuer
                .authenticate(live.tokens.access_token.expose_secret())
                .await
                .unwrap();
        }

        /// A request whose signature does not verify (missing, repeated, another key, another
        /// `Client-Id`) is answered `F INVALID_SIGNATURE` with a message about the request,
        /// the message Alipay+ logs to tell what to fix: never the client's own wording for
        /// an answer whose signature did not verify.
        #[tokio::test]
        async fn a_request_whose_signature_does_not_verify_is_told_so() {
            let sandbox = AlipayPlusSandbox::new();
            let mpp = sandbox.mpp();
            let issuer = issuer();
            let body = format!(
                r#"{{"pspId":"{PSP_ID}","grantType":"REFRESH_TOKEN","refreshToken":"rt_x"}}"#
            )
            .into_bytes();
            let mut unsigned = signed(body.clone(), &issuer);
            unsigned.headers_mut().remove("signature");
            let mut repeated = signed(body.clone(), &issuer);
            let signature = repeated.headers()["signature"].clone();
            repeated.headers_mut().append("signature", signature);
            let mut tampered = signed(body, &issuer);
            tampered.body_mut().push(b' ');
            for request in [unsigned, repeated, tampered] {
                let answer = mpp.answer(&issuer, &request).await;
                assert!(answer.headers().contains_key("signature"));
                assert_eq!(
                    result(&answer),
                    ("F".to_owned(), "INVALID_SIGNATURE".to_owned())
                );
                let body: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
                let message = body["result"]["resultMessage"].as_str().unwrap();
                assert!(message.contains("request"), "{message}");
                assert!(!message.contains("answer"), "{message}");
            }
        }

        /// Pairs the wallet issued itself ([`Issuer::issue`]) with extras that are not
        /// Alipay+'s (a numeric `customerId`, not an object): a refresh rotates them in the
        /// store, so its answer must carry the new pair (with the extras it can read), not a
        /// `U` that loses it. Asked again (Alipay+ retrying), the same pair.
        #[tokio::test]
        async fn a_pair_with_extras_that_are_not_alipay_plus_extras_is_refreshed_not_lost() {
            let sandbox = AlipayPlusSandbox::new();
            let mpp = sandbox.mpp();
            let issuer = issuer();
            for (extras, customer) in [
                (serde_json::json!({"customerId": 12345}), None),
                (
                    serde_json::json!({"customerId": "c-1", "userLoginId": 7}),
                    Some("c-1"),
                ),
                (serde_json::json!("c-1"), None),
                (serde_json::json!([1, 2]), None),
            ] {
                let live = issuer.issue("alice", extras.clone()).await.unwrap();
                let token = live.tokens.refresh_token.clone().unwrap();
                let body = format!(
                    r#"{{"pspId":"{PSP_ID}","grantType":"REFRESH_TOKEN","refreshToken":"{}"}}"#,
                    token.expose_secret()
                );
                let answer = mpp
                    .answer(&issuer, &signed(body.clone().into_bytes(), &issuer))
                    .await;
                assert_eq!(
                    result(&answer),
                    ("S".to_owned(), "SUCCESS".to_owned()),
                    "{extras}"
                );
                let tokens: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
                assert_eq!(tokens["customerId"].as_str(), customer, "{extras}");
                let access = tokens["accessToken"].as_str().unwrap();
                issuer.authenticate(access).await.unwrap();
                let again = mpp
                    .answer(&issuer, &signed(body.into_bytes(), &issuer))
                    .await;
                let again: serde_json::Value = serde_json::from_slice(again.body()).unwrap();
                assert_eq!(again["accessToken"].as_str(), Some(access), "{extras}");
            }
        }

        /// A code exchange sent again with the same signed bytes, inside the `Request-Time`
        /// window (Alipay+ after a lost answer, or someone who captured the request): the
        /// code is used (RFC 6749 section 4.1.2: denied, and the pair it gave revoked), unlike
        /// a refresh, which the issuer's reuse window answers again.
        #[tokio::test]
        async fn a_code_exchange_sent_again_is_refused_and_revokes_the_pair_it_gave() {
            use crate::endpoints::AlipayExtras;
            let sandbox = AlipayPlusSandbox::new();
            let mpp = sandbox.mpp();
            let issuer = issuer();
            let code = mpp
                .authorize(&issuer, "alice", AlipayExtras::default())
                .await
                .unwrap();
            let request = signed(code_exchange(&code), &issuer);
            let first = mpp.answer(&issuer, &request).await;
            assert_eq!(result(&first), ("S".to_owned(), "SUCCESS".to_owned()));
            let first: serde_json::Value = serde_json::from_slice(first.body()).unwrap();
            let access = first["accessToken"].as_str().unwrap();
            issuer.authenticate(access).await.unwrap();
            let again = mpp.answer(&issuer, &request).await;
            assert_eq!(
                result(&again),
                ("F".to_owned(), "INVALID_AUTH_CODE".to_owned())
            );
            assert!(issuer.authenticate(access).await.is_err());
        }

        /// Two MPPs (two Alipay+ `Client-Id`s, say two regions) over one issuer store: a
        /// refresh token issued through one client's code exchange is refused when the other
        /// client presents it (RFC 6749 section 6: the refresh token must have been issued to
        /// the authenticated client).
        #[tokio::test]
        async fn a_refresh_token_is_refused_to_another_client_id() {
            use crate::endpoints::AlipayExtras;
            let mpp_for = |client: &str| {
                let signer = Rsa256Signer::from_pem(
                    client,
                    1,
                    crate::sandbox::mpp_private_key(),
                    crate::sandbox::client_public_key(),
                )
                .unwrap();
                crate::mpp::Mpp::new(signer).with_psp_id(PSP_ID)
            };
            let (region_a, region_b) = (mpp_for(CLIENT_ID), mpp_for("OTHER_REGION_CLIENT"));
            let issuer = issuer();
            let code = region_a
                .authorize(&issuer, "alice", AlipayExtras::default())
                .await
                .unwrap();
            let answer = region_a
                .answer(&issuer, &signed(code_exchange(&code), &issuer))
                .await;
            let tokens: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
            let refresh = tokens["refreshToken"].as_str().unwrap();
            let body = format!(
                r#"{{"pspId":"{PSP_ID}","grantType":"REFRESH_TOKEN","refreshToken":"{refresh}"}}"#
            );
            let signer = Rsa256Signer::from_pem(
                "OTHER_REGION_CLIENT",
                1,
                client_private_key(),
                mpp_public_key(),
            )
            .unwrap();
            let mut request =
                http::Request::post("https://mpp.example/aps/api/v1/authorizations/applyToken")
                    .body(body.into_bytes())
                    .unwrap();
            signer
                .sign_request(&mut request, issuer.clock().now())
                .unwrap();
            let answer = region_b.answer(&issuer, &request).await;
            assert_eq!(
                result(&answer),
                ("F".to_owned(), "INVALID_REFRESH_TOKEN".to_owned())
            );
            // Nothing rotated: the client the token was issued to still refreshes it.
            let body = format!(
                r#"{{"pspId":"{PSP_ID}","grantType":"REFRESH_TOKEN","refreshToken":"{refresh}"}}"#
            );
            let answer = region_a
                .answer(&issuer, &signed(body.into_bytes(), &issuer))
                .await;
            assert_eq!(result(&answer), ("S".to_owned(), "SUCCESS".to_owned()));
        }
    }
}
