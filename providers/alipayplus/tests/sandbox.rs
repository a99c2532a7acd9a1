//! `TokenManager<AlipayPlus>` against the sandbox MPP on tokio's paused clock: client and MPP
//! sign and verify each other; call counts are the evidence.

use std::time::Duration;

use token_core::error::StoreError;
use token_core::issuer::IssuerConfig;
use token_core::sandbox::{Failure, RunningSandbox, Sandbox};
use token_core::{
    error::ErrorKind, manager::TokenManager, provider::CallContext, token_set::TokenSet,
};
use token_provider_alipayplus::sandbox::{
    AlipayPlusSandbox, client_private_key, client_public_key, mpp_private_key,
};
use token_provider_alipayplus::{
    AlipayExtras, AlipayPlus, AlipayPlusConfig, ApplyToken, ApplyTokenByCode,
};
use token_test_support::events::{assert_no_reauth, drain};
use token_test_support::harness::{self, accepted, paused_clock};
use token_test_support::stores::RecordingIssuerStore;

const APPLY: &str = "/aps/api/v1/authorizations/applyToken";

struct World {
    mpp: AlipayPlusSandbox,
    sandbox: RunningSandbox,
    manager: TokenManager<AlipayPlus>,
}

fn extras(customer: &str) -> AlipayExtras {
    AlipayExtras {
        customer_id: Some(customer.into()),
        user_login_id: Some("62-***2736".into()),
    }
}

async fn world_with(
    issuer: IssuerConfig,
    tweak: impl FnOnce(AlipayPlusConfig) -> AlipayPlusConfig,
) -> World {
    let clock = paused_clock();
    let mpp = AlipayPlusSandbox::new();
    let sandbox = mpp
        .routes(
            Sandbox::builder()
                .clock(clock.clone())
                .issuer_config(issuer),
        )
        .start()
        .await
        .unwrap();
    let config = tweak(mpp.config(&sandbox).with_authorize_url(
        url::Url::parse("https://merchant.example/alipayplus/consent").unwrap(),
    ));
    let manager = harness::manager(AlipayPlus::new(config).unwrap(), &sandbox, &clock);
    World {
        mpp,
        sandbox,
        manager,
    }
}

async fn world() -> World {
    world_with(AlipayPlusSandbox::issuer_config(), |c| c).await
}

impl World {
    /// The user consents at the MPP; the client exchanges the code and keeps the tokens.
    async fn user(&self, session: &str) -> TokenSet<AlipayExtras> {
        let code = self
            .mpp
            .authorize(&self.sandbox, session, extras(session))
            .await
            .unwrap();
        let set = self
            .manager
            .provider()
            .apply_token_by_code(&self.manager.call_context(session), &code)
            .await
            .unwrap();
        self.manager.insert(session, set.clone()).await.unwrap();
        set
    }

    fn cx(&self) -> CallContext {
        self.manager.call_context("direct")
    }
}

#[tokio::test(start_paused = true)]
async fn an_auth_code_gives_the_first_tokens_with_extras_once() {
    let world = world().await;
    let code = world
        .mpp
        .authorize(&world.sandbox, "alice", extras("cust-alice"))
        .await
        .unwrap();
    let provider = world.manager.provider();
    let set = provider
        .apply_token_by_code(&world.cx(), &code)
        .await
        .unwrap();
    assert!(accepted(&world.sandbox, &set.access_token).await);
    assert_eq!(set.extras, extras("cust-alice"));
    assert!(
        set.refresh_expires_at.is_some(),
        "the MPP sends refreshTokenExpiryTime"
    );

    let again = provider
        .apply_token_by_code(&world.cx(), &code)
        .await
        .unwrap_err();
    assert_eq!(again.kind(), ErrorKind::ReauthRequired);
    assert_eq!(again.provider_code(), Some("INVALID_AUTH_CODE"));
    // A replayed code is a stolen one: the pair it gave is revoked (RFC 6749 section 4.1.2).
    assert!(!accepted(&world.sandbox, &set.access_token).await);
    let late = world
        .mpp
        .authorize(&world.sandbox, "bob", AlipayExtras::default())
        .await
        .unwrap();
    tokio::time::advance(Duration::from_secs(601)).await;
    let expired = provider
        .apply_token_by_code(&world.cx(), &late)
        .await
        .unwrap_err();
    assert_eq!(expired.provider_code(), Some("EXPIRED_AUTH_CODE"));
    assert_eq!(world.sandbox.calls(APPLY), 3);
}

#[tokio::test(start_paused = true)]
async fn refresh_rotates_keeps_the_customer_and_invalidates_the_old_pair() {
    let world = world().await;
    let first = world.user("alice").await;
    tokio::time::advance(Duration::from_secs(3601)).await;
    let second = world.manager.token_set("alice").await.unwrap();
    assert_ne!(second.access_token, first.access_token);
    assert_ne!(second.refresh_token, first.refresh_token);
    assert_eq!(second.extras, extras("alice"));
    assert!(accepted(&world.sandbox, &second.access_token).await);
    assert!(!accepted(&world.sandbox, &first.access_token).await);
    assert_eq!(
        world.sandbox.calls(APPLY),
        2,
        "the code exchange and one refresh"
    );
}

#[tokio::test(start_paused = true)]
async fn near_expiry_the_current_token_is_served_while_one_refresh_runs() {
    let world = world().await;
    let first = world.user("alice").await;
    tokio::time::advance(Duration::from_secs(3600 - 30)).await;
    assert_eq!(
        world.manager.access_token("alice").await.unwrap(),
        first.access_token
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(world.sandbox.calls(APPLY), 2);
    assert_ne!(
        world.manager.access_token("alice").await.unwrap(),
        first.access_token
    );
}

#[tokio::test(start_paused = true)]
async fn a_5xx_and_a_429_with_retry_after_are_retried() {
    let world = world().await;
    world.user("alice").await;
    tokio::time::advance(Duration::from_secs(3601)).await;
    world
        .sandbox
        .fail_next(APPLY, 1, Failure::service_unavailable());
    world.sandbox.fail_next(
        APPLY,
        1,
        Failure::new(http::StatusCode::TOO_MANY_REQUESTS).with_retry_after(7),
    );
    let started = tokio::time::Instant::now();
    let token = world.manager.access_token("alice").await.unwrap();
    assert!(accepted(&world.sandbox, &token).await);
    assert_eq!(world.sandbox.calls(APPLY), 1 + 3);
    assert!(
        started.elapsed() >= Duration::from_secs(7),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(start_paused = true)]
async fn a_u_answer_is_retried_with_the_same_refresh_token() {
    let world = world().await;
    world.user("alice").await;
    let mut events = world.manager.subscribe();
    tokio::time::advance(Duration::from_secs(3601)).await;
    // The MPP rotates, then answers U: only the same request again can recover the pair.
    world.mpp.answer_unknown_next(1);
    let token = world.manager.access_token("alice").await.unwrap();
    assert!(
        accepted(&world.sandbox, &token).await,
        "the pair the MPP had issued"
    );
    assert_eq!(world.sandbox.calls(APPLY), 1 + 2);
    assert_no_reauth(&drain(&mut events));
}

#[tokio::test(start_paused = true)]
async fn a_lost_answer_is_recovered_inside_the_reuse_window() {
    let world = world().await;
    world.user("alice").await;
    tokio::time::advance(Duration::from_secs(3601)).await;
    world.sandbox.drop_next(APPLY, 1);
    let token = world.manager.access_token("alice").await.unwrap();
    assert!(accepted(&world.sandbox, &token).await);
    assert_eq!(world.sandbox.calls(APPLY), 1 + 2);
}

#[tokio::test(start_paused = true)]
async fn the_mpp_answers_a_used_refresh_token_the_same_for_five_minutes_then_invalid() {
    let world = world().await;
    let first = world.user("alice").await;
    let config = world.manager.provider().config();
    let apply = ApplyToken {
        acquirer_id: config.acquirer_id.clone(),
        psp_id: config.psp_id.clone(),
        refresh_token: first.refresh_token.clone().unwrap(),
    };
    let signer = config.signer().unwrap();
    let base = world.sandbox.base_url();
    let new = world
        .cx()
        .call_signed(&base, &apply, &signer)
        .await
        .unwrap();
    assert!(
        !accepted(&world.sandbox, &first.access_token).await,
        "the old pair is invalid"
    );
    tokio::time::advance(Duration::from_secs(240)).await;
    let again = world
        .cx()
        .call_signed(&base, &apply, &signer)
        .await
        .unwrap();
    assert_eq!(again.access_token, new.access_token);
    assert_eq!(again.refresh_token, new.refresh_token);
    tokio::time::advance(Duration::from_secs(61)).await;
    let late = world
        .cx()
        .call_signed(&base, &apply, &signer)
        .await
        .unwrap_err();
    assert_eq!(late.provider_code(), Some("INVALID_REFRESH_TOKEN"));
    assert_eq!(late.kind(), ErrorKind::ReauthRequired);
}

#[tokio::test(start_paused = true)]
async fn an_expired_refresh_token_is_reauth_with_the_authorize_url() {
    let issuer =
        AlipayPlusSandbox::issuer_config().with_refresh_ttl(Some(Duration::from_secs(1800)));
    let world = world_with(issuer, |c| c).await;
    // A client that did not keep the refresh expiry learns it from the MPP.
    let mut set = world.user("alice").await;
    set.refresh_expires_at = None;
    world.manager.insert("alice", set).await.unwrap();
    tokio::time::advance(Duration::from_secs(3601)).await;
    let error = world.manager.access_token("alice").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(error.provider_code(), Some("EXPIRED_REFRESH_TOKEN"));
    assert_eq!(
        error.reauth().unwrap().authorize_url.as_deref(),
        Some("https://merchant.example/alipayplus/consent?state=alice")
    );
    assert_eq!(world.sandbox.calls(APPLY), 2);

    // One past its refresh token's known expiry asks once (a local expiry is no verdict:
    // a clock can be wrong), and the provider's refusal is the verdict.
    world.user("bob").await;
    tokio::time::advance(Duration::from_secs(3601)).await;
    let error = world.manager.access_token("bob").await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(
        world.sandbox.calls(APPLY),
        4,
        "bob's code exchange and one refresh"
    );
}

#[tokio::test(start_paused = true)]
async fn wrong_keys_are_misconfigured_in_both_directions_and_keep_the_session() {
    // The client signs with a key the MPP does not know.
    let world = world_with(AlipayPlusSandbox::issuer_config(), |mut c| {
        c.private_key = Some(token_core::secret::ClientSecret::new(mpp_private_key()));
        c
    })
    .await;
    let code = world
        .mpp
        .authorize(&world.sandbox, "alice", AlipayExtras::default())
        .await
        .unwrap();
    let error = world
        .manager
        .provider()
        .apply_token_by_code(&world.cx(), &code)
        .await
        .unwrap_err();
    assert_eq!(error.provider_code(), Some("INVALID_SIGNATURE"));
    assert_eq!(error.kind(), ErrorKind::Misconfigured);

    // The client expects another server key: the MPP's answer does not verify.
    let world = world_with(AlipayPlusSandbox::issuer_config(), |mut c| {
        c.server_public_key = Some(client_public_key().into());
        c
    })
    .await;
    let code = world
        .mpp
        .authorize(&world.sandbox, "alice", AlipayExtras::default())
        .await
        .unwrap();
    let config = world.manager.provider().config();
    let apply = ApplyTokenByCode {
        acquirer_id: None,
        psp_id: config.psp_id.clone(),
        auth_code: code,
    };
    let error = world
        .cx()
        .call_signed(&world.sandbox.base_url(), &apply, &config.signer().unwrap())
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    assert!(error.to_string().contains("signature"), "{error}");
    assert!(!client_private_key().is_empty());

    // A session whose refresh meets a misconfiguration is kept, not dropped.
    let right = world_with(AlipayPlusSandbox::issuer_config(), |c| c).await;
    let set = right.user("carol").await;
    world.manager.insert("carol", set).await.unwrap();
    tokio::time::advance(Duration::from_secs(3601)).await;
    assert_eq!(
        world
            .manager
            .access_token("carol")
            .await
            .unwrap_err()
            .kind(),
        ErrorKind::Misconfigured
    );
    assert!(
        world
            .manager
            .store()
            .load(&world.manager.session_key("carol"))
            .await
            .unwrap()
            .is_some()
    );
}

#[tokio::test(start_paused = true)]
async fn an_unsigned_error_answer_cannot_end_the_session() {
    let world = world().await;
    world.user("alice").await;
    let mut events = world.manager.subscribe();
    tokio::time::advance(Duration::from_secs(3601)).await;
    // Not the MPP's answer: no signature, a status the MPP never answers with, and a
    // session-ending result in the body.
    for status in [400, 401, 403] {
        world.sandbox.fail_next(
            APPLY,
            1,
            Failure::new(http::StatusCode::from_u16(status).unwrap()).with_json(
                &serde_json::json!({"result": {
                    "resultStatus": "F",
                    "resultCode": "INVALID_REFRESH_TOKEN",
                    "resultMessage": "forged"
                }}),
            ),
        );
        let error = world.manager.access_token("alice").await.unwrap_err();
        assert_ne!(error.kind(), ErrorKind::ReauthRequired, "{status}: {error}");
        assert_eq!(error.provider_code(), None, "{status}: {error}");
        assert!(
            !world.sandbox.faults_pending(APPLY),
            "{status}: the answer was read"
        );
        // Past the manager's memory of the failure: the next call asks the MPP again.
        tokio::time::advance(Duration::from_secs(6)).await;
    }
    assert_no_reauth(&drain(&mut events));
    // The MPP itself still refreshes the session.
    let token = world.manager.access_token("alice").await.unwrap();
    assert!(accepted(&world.sandbox, &token).await);
}

/// A 2xx without a signature is no answer of the MPP's (it signs every result, `F` and `U`
/// too) but an intermediary's, a captive portal's page, which may stand in for an answer
/// sent after the MPP rotated: unreadable, so an unknown outcome, asked again with the same
/// refresh token inside the reuse window (the MPP's, here its new pair), never a
/// misconfiguration given up at once.
#[tokio::test(start_paused = true)]
async fn an_unsigned_2xx_is_an_unknown_outcome_asked_again() {
    let world = world().await;
    world.user("alice").await;
    tokio::time::advance(Duration::from_secs(3601)).await;
    world.sandbox.fail_next(
        APPLY,
        1,
        Failure::new(http::StatusCode::OK)
            .with_header(
                http::header::CONTENT_TYPE,
                http::HeaderValue::from_static("text/html"),
            )
            .with_body("<html><title>Sign in to the Wi-Fi</title></html>"),
    );
    let token = world.manager.access_token("alice").await.unwrap();
    assert!(!world.sandbox.faults_pending(APPLY));
    assert!(accepted(&world.sandbox, &token).await);
}

/// A signed applyToken captured and sent again later is refused by its `Request-Time` before
/// it reaches the issuer: replaying an old authorization-code exchange cannot revoke the pair
/// that exchange gave (the issuer revokes the pair of a code presented twice).
#[tokio::test(start_paused = true)]
async fn a_signed_request_replayed_outside_the_request_time_window_is_refused() {
    let world = world().await;
    let code = world
        .mpp
        .authorize(&world.sandbox, "alice", extras("alice"))
        .await
        .unwrap();
    let config = world.manager.provider().config();
    let body = serde_json::json!({
        "acquirerId": config.acquirer_id,
        "pspId": config.psp_id,
        "authCode": code.expose_secret(),
        "grantType": "AUTHORIZATION_CODE",
    });
    let signer = config.signer().unwrap();
    let signed_at = |offset: i64| {
        let mut request = http::Request::post(world.sandbox.url(APPLY).as_str())
            .body(body.to_string().into_bytes())
            .unwrap();
        let at = world.sandbox.clock().now() + time::Duration::seconds(offset);
        signer.sign_request(&mut request, at).unwrap();
        request
    };
    let send = async |request: http::Request<Vec<u8>>| {
        let answer = world.sandbox.client().send(request).await.unwrap();
        serde_json::from_slice::<serde_json::Value>(answer.body()).unwrap()
    };
    let copy = |request: &http::Request<Vec<u8>>| {
        let mut copy = http::Request::new(request.body().clone());
        *copy.method_mut() = request.method().clone();
        *copy.uri_mut() = request.uri().clone();
        *copy.headers_mut() = request.headers().clone();
        copy
    };

    // Signed now, delivered four minutes later (a slow network, a skewed clock): accepted.
    let captured = signed_at(0);
    tokio::time::advance(Duration::from_secs(240)).await;
    let first = send(copy(&captured)).await;
    assert_eq!(first["result"]["resultStatus"], "S", "{first}");
    let access = token_core::secret::AccessToken::new(first["accessToken"].as_str().unwrap());

    // The same bytes again, six minutes after they were signed: refused as a stale signature,
    // and the pair the first exchange gave lives on.
    tokio::time::advance(Duration::from_secs(120)).await;
    let replay = send(copy(&captured)).await;
    assert_eq!(replay["result"]["resultStatus"], "F", "{replay}");
    assert_eq!(
        replay["result"]["resultCode"], "INVALID_SIGNATURE",
        "{replay}"
    );
    assert!(accepted(&world.sandbox, &access).await, "the pair lives on");

    // A Request-Time far ahead of the MPP's clock is refused the same way.
    let ahead = send(signed_at(600)).await;
    assert_eq!(
        ahead["result"]["resultCode"], "INVALID_SIGNATURE",
        "{ahead}"
    );
    assert!(accepted(&world.sandbox, &access).await);
}

/// A signed body that names `refreshToken` twice (once escaped) is malformed: refused as
/// `PARAM_ILLEGAL`, not read as whichever value one JSON parser keeps, and nothing rotates.
#[tokio::test(start_paused = true)]
async fn a_signed_body_with_a_repeated_field_is_refused_and_rotates_nothing() {
    let world = world().await;
    let first = world.user("alice").await;
    let config = world.manager.provider().config();
    let live = first.refresh_token.clone().unwrap();
    let signer = config.signer().unwrap();
    let send = async |body: String| {
        let mut request = http::Request::post(world.sandbox.url(APPLY).as_str())
            .body(body.into_bytes())
            .unwrap();
        signer
            .sign_request(&mut request, world.sandbox.clock().now())
            .unwrap();
        let answer = world.sandbox.client().send(request).await.unwrap();
        serde_json::from_slice::<serde_json::Value>(answer.body()).unwrap()
    };
    let head = format!(
        r#"{{"acquirerId":{},"pspId":{},"grantType":"REFRESH_TOKEN","#,
        serde_json::json!(config.acquirer_id),
        serde_json::json!(config.psp_id),
    );
    for repeated in [
        format!(
            r#""refreshToken":"not-a-token","refreshToken":"{}"}}"#,
            live.expose_secret()
        ),
        format!(
            r#""refreshToken":"not-a-token","refresh\u0054oken":"{}"}}"#,
            live.expose_secret()
        ),
    ] {
        let answer = send(format!("{head}{repeated}")).await;
        assert_eq!(answer["result"]["resultStatus"], "F", "{answer}");
        assert_eq!(answer["result"]["resultCode"], "PARAM_ILLEGAL", "{answer}");
    }
    assert!(
        accepted(&world.sandbox, &first.access_token).await,
        "the pair was not rotated"
    );
}

/// An answer's signature covers neither the request's body nor its time: an answer signed
/// more than five minutes from the request (a recorded one, replayed by whoever sits
/// between) is refused, never read. One signed within the window is read.
#[test]
fn an_answer_signed_far_from_its_request_is_refused() {
    use token_provider_alipayplus::Rsa256Signer;
    use token_provider_alipayplus::sandbox::{CLIENT_ID, mpp_public_key};
    let client =
        Rsa256Signer::from_pem(CLIENT_ID, 1, client_private_key(), mpp_public_key()).unwrap();
    let mpp = Rsa256Signer::from_pem(CLIENT_ID, 1, mpp_private_key(), client_public_key()).unwrap();
    let now = time::macros::datetime!(2026-01-01 00:00 UTC);
    let mut request = http::Request::post(APPLY).body(b"{}".to_vec()).unwrap();
    client.sign_request(&mut request, now).unwrap();
    for (offset, read) in [
        (-86_400 * 365, false),
        (-301, false),
        (301, false),
        (-299, true),
        (299, true),
    ] {
        let mut answer = http::Response::new(br#"{"result":{"resultStatus":"S"}}"#.to_vec());
        let at = now + time::Duration::seconds(offset);
        mpp.sign_response(&request, &mut answer, at).unwrap();
        let verified = client.verify_response(&request, &answer);
        assert_eq!(verified.is_ok(), read, "{offset} s: {verified:?}");
    }
}

/// `customerId` and `userLoginId` are optional in the answer: a refresh answer naming the
/// customer but not the login id (or the other way round) keeps the session's value of the
/// one it leaves out, as it keeps both when it names neither.
#[tokio::test(start_paused = true)]
async fn a_refresh_answer_naming_one_extra_keeps_the_sessions_other() {
    use token_core::provider::Provider as _;
    let world = world().await;
    let provider = world.manager.provider();
    for (sent, expected) in [
        (
            serde_json::json!({"customerId": "cust-alice"}),
            extras("cust-alice"),
        ),
        (
            serde_json::json!({"userLoginId": "62-***9999"}),
            AlipayExtras {
                customer_id: Some("cust-alice".into()),
                user_login_id: Some("62-***9999".into()),
            },
        ),
    ] {
        let issued = world.sandbox.issue_with("alice", sent).await.unwrap();
        let session = TokenSet::<AlipayExtras>::from_stored(issued)
            .unwrap()
            .with_extras(extras("cust-alice"));
        let next = provider.refresh(&world.cx(), &session).await.unwrap();
        assert_ne!(next.refresh_token, session.refresh_token);
        assert_eq!(next.extras, expected);
    }
}

/// A blank `customerId` or `userLoginId` (`""`, `"  "`) in a refresh answer names no
/// customer, as an absent one does: the session keeps its value, as a `#[token(keep)]` extra
/// does, rather than losing the customer it belongs to.
#[tokio::test(start_paused = true)]
async fn a_refresh_answer_with_a_blank_extra_keeps_the_sessions_value() {
    use token_core::provider::Provider as _;
    let world = world().await;
    let provider = world.manager.provider();
    for sent in [
        serde_json::json!({"customerId": "", "userLoginId": "  "}),
        serde_json::json!({"customerId": " ", "userLoginId": ""}),
    ] {
        let issued = world
            .sandbox
            .issue_with("alice", sent.clone())
            .await
            .unwrap();
        let session = TokenSet::<AlipayExtras>::from_stored(issued)
            .unwrap()
            .with_extras(extras("cust-alice"));
        let next = provider.refresh(&world.cx(), &session).await.unwrap();
        assert_ne!(next.refresh_token, session.refresh_token);
        assert_eq!(next.extras, extras("cust-alice"), "{sent}");
    }
}

/// A refresh the MPP's issuer store refuses as `Unsupported` (the same request would fail
/// again) is answered `F PROCESS_FAIL`, definitive: the client does not send it again as an
/// unknown outcome, and the session is kept, not ended.
#[tokio::test(start_paused = true)]
async fn a_refresh_the_issuer_store_cannot_hold_is_a_definitive_failure_not_an_unknown() {
    let clock = paused_clock();
    let store = std::sync::Arc::new(RecordingIssuerStore::default());
    let mpp = AlipayPlusSandbox::new();
    let builder = Sandbox::builder()
        .clock(clock.clone())
        .issuer_config(AlipayPlusSandbox::issuer_config())
        .issuer_store(store.clone());
    let sandbox = mpp.routes(builder).start().await.unwrap();
    let manager = harness::manager(
        AlipayPlus::new(mpp.config(&sandbox)).unwrap(),
        &sandbox,
        &clock,
    );
    let world = World {
        mpp,
        sandbox,
        manager,
    };
    let first = world.user("dave").await;
    let mut events = world.manager.subscribe();
    // A name its tables cannot hold: the same request always fails.
    *store.failing_refreshes.lock().unwrap() = Some(StoreError::Unsupported(
        "the store cannot hold it (test)".into(),
    ));
    let calls = world.sandbox.calls(APPLY);
    let error = world.manager.refresh_now("dave").await.unwrap_err();
    assert_eq!(error.provider_code(), Some("PROCESS_FAIL"), "{error}");
    assert_ne!(error.kind(), ErrorKind::OutcomeUnknown, "{error}");
    assert!(error.reauth().is_none(), "{error}");
    assert_eq!(
        world.sandbox.calls(APPLY),
        calls + 1,
        "sent once, not again"
    );
    assert_no_reauth(&drain(&mut events));
    let kept = world.manager.token_set("dave").await;
    assert_eq!(
        kept.unwrap().refresh_token,
        first.refresh_token,
        "the session is kept"
    );
}
