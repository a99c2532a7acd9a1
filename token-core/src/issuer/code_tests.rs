//! Authorization code scenarios, run on every issuer store (the memory store in `tests.rs`,
//! PostgreSQL with two replicas in `postgres.rs`): `a` and `b` share one store and `clock`.

use super::tests::refresh as refresh_of;
use super::*;
use crate::clock::ManualClock;
use crate::pkce::challenge_s256;
use crate::test_logs::capture_logs;

const CLIENT: &str = "app-1";
const REDIRECT: &str = "https://app.example/cb";
const VERIFIER: &str = "dBjftJeZ4CVP-mJ92K9qP-Ur5lz3kSJ6dQ8Y8uO4c9s";

fn grant() -> CodeGrant {
    CodeGrant::new(CLIENT, "alice")
        .with_redirect_uri(Some(REDIRECT.into()))
        .with_challenge(Some(challenge_s256(VERIFIER)))
        .with_scope(Some("payments".into()))
        .with_extras(serde_json::json!({"customerId": "c-1"}))
}

fn exchange() -> CodeExchange<'static> {
    CodeExchange::new(CLIENT)
        .with_redirect_uri(Some(REDIRECT))
        .with_verifier(Some(VERIFIER))
}

/// Redeemed once: the pair carries the subject, extras and scope. Presented again (on the
/// other replica): refused as used, and the pair it gave, rotated since, is revoked.
pub(super) async fn a_code_is_redeemed_once_and_a_replay_revokes_its_pair(a: &Issuer, b: &Issuer) {
    let code = a.issue_code(grant()).await.unwrap();
    assert!(code.expose_secret().starts_with("ac_"));
    let first = b
        .redeem_code(code.expose_secret(), exchange())
        .await
        .unwrap();
    assert_eq!(first.subject, "alice");
    assert_eq!(first.tokens.extras["customerId"], "c-1");
    assert_eq!(first.tokens.scope.as_deref(), Some("payments"));
    let rotated = a.refresh_for(&refresh_of(&first), CLIENT).await.unwrap();
    let live = rotated.tokens.access_token.expose_secret();
    assert!(b.authenticate(live).await.is_ok());

    let again = a.redeem_code(code.expose_secret(), exchange()).await;
    assert!(matches!(again, Err(IssuerError::UsedAuthCode)), "{again:?}");
    assert!(matches!(
        b.authenticate(live).await,
        Err(IssuerError::InvalidAccessToken)
    ));
    assert!(b.refresh_for(&refresh_of(&rotated), CLIENT).await.is_err());
    // An unrelated pair of the same subject lives on.
    let other = a.issue("alice", serde_json::json!({})).await.unwrap();
    let replay = b.redeem_code(code.expose_secret(), exchange()).await;
    assert!(matches!(replay, Err(IssuerError::UsedAuthCode)));
    assert!(
        a.authenticate(other.tokens.access_token.expose_secret())
            .await
            .is_ok()
    );
    assert!(matches!(
        a.redeem_code("ac_never_issued", exchange()).await,
        Err(IssuerError::InvalidAuthCode)
    ));
}

/// Sixteen tasks on both replicas redeem one code: exactly one gets a pair, the others are
/// refused as used (and, being replays, revoke it).
pub(super) async fn concurrent_redemptions_of_one_code_give_one_pair(a: &Issuer, b: &Issuer) {
    let code = a.issue_code(grant()).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..16 {
        let issuer = if i % 2 == 0 { a.clone() } else { b.clone() };
        let code = code.expose_secret().to_owned();
        tasks.spawn(async move { issuer.redeem_code(&code, exchange()).await });
    }
    let (mut won, mut used) = (Vec::new(), 0);
    while let Some(result) = tasks.join_next().await {
        match result.unwrap() {
            Ok(issued) => won.push(issued),
            Err(IssuerError::UsedAuthCode) => used += 1,
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!((won.len(), used), (1, 15));
    let winner = won[0].tokens.access_token.expose_secret();
    assert!(
        a.authenticate(winner).await.is_err(),
        "the replays revoked it"
    );
}

/// A code lives `code_ttl` by the issuer's clock: a second before, it is redeemed; at the
/// end, it is expired.
pub(super) async fn a_code_expires_by_the_issuers_clock(
    a: &Issuer,
    b: &Issuer,
    clock: &ManualClock,
) {
    let ttl = time::Duration::try_from(a.config().code_ttl).unwrap();
    let early = a.issue_code(grant()).await.unwrap();
    let late = a.issue_code(grant()).await.unwrap();
    clock.advance(ttl - time::Duration::seconds(1));
    assert!(
        b.redeem_code(early.expose_secret(), exchange())
            .await
            .is_ok()
    );
    clock.advance(time::Duration::seconds(1));
    let expired = b.redeem_code(late.expose_secret(), exchange()).await;
    assert!(
        matches!(expired, Err(IssuerError::ExpiredAuthCode)),
        "{expired:?}"
    );
    // Purged after its expiry, it is just unknown.
    a.store()
        .purge(crate::clock::Clock::now(clock))
        .await
        .unwrap();
    assert!(matches!(
        b.redeem_code(late.expose_secret(), exchange()).await,
        Err(IssuerError::InvalidAuthCode)
    ));
}

/// Another client, another (or no) redirect URI, a wrong, missing or unexpected verifier:
/// refused, and the code is used up (the right exchange after it gets no pair either).
pub(super) async fn a_code_is_refused_to_another_client_redirect_or_verifier(
    a: &Issuer,
    b: &Issuer,
) {
    let wrong = [
        CodeExchange::new("app-2")
            .with_redirect_uri(Some(REDIRECT))
            .with_verifier(Some(VERIFIER)),
        exchange().with_redirect_uri(Some("https://evil.example/cb")),
        exchange().with_redirect_uri(None),
        exchange().with_verifier(Some("not-the-verifier-not-the-verifier-not-the-v")),
        exchange().with_verifier(None),
    ];
    for (i, exchange_) in wrong.into_iter().enumerate() {
        let code = a.issue_code(grant()).await.unwrap();
        let refused = b.redeem_code(code.expose_secret(), exchange_).await;
        assert!(
            matches!(refused, Err(IssuerError::AuthCodeMismatch)),
            "{i}: {refused:?}"
        );
        let after = a.redeem_code(code.expose_secret(), exchange()).await;
        assert!(
            matches!(after, Err(IssuerError::UsedAuthCode)),
            "{i}: {after:?}"
        );
    }
    // A code without a challenge refuses a verifier (a downgrade), and takes none.
    let plain = CodeGrant::new(CLIENT, "bob");
    let code = a.issue_code(plain.clone()).await.unwrap();
    let refused = b.redeem_code(code.expose_secret(), exchange()).await;
    assert!(matches!(refused, Err(IssuerError::AuthCodeMismatch)));
    let code = a.issue_code(plain).await.unwrap();
    let issued = b
        .redeem_code(
            code.expose_secret(),
            CodeExchange::new(CLIENT).with_redirect_uri(Some(REDIRECT)),
        )
        .await
        .unwrap();
    assert_eq!(issued.subject, "bob");
}

/// The code appears in no log line, no `Debug` (of the issuer, the store, the errors), and
/// no error message.
pub(super) async fn a_code_is_never_logged_or_shown(a: &Issuer, store: &dyn fmt::Debug) {
    let captured = capture_logs();

    let code = a.issue_code(grant()).await.unwrap();
    let secret = code.expose_secret().to_owned();
    let mut shown = vec![format!("{code:?}"), format!("{a:?}"), format!("{store:?}")];
    let issued = a.redeem_code(&secret, exchange()).await.unwrap();
    shown.push(format!("{issued:?}"));
    for _ in 0..2 {
        let error = a.redeem_code(&secret, exchange()).await.unwrap_err();
        shown.push(format!("{error:?} {error}"));
    }
    let mismatch = a.issue_code(grant()).await.unwrap();
    let error = a
        .redeem_code(mismatch.expose_secret(), CodeExchange::new("app-2"))
        .await
        .unwrap_err();
    shown.push(format!("{error:?} {error} {:?}", exchange()));
    shown.push(format!("{store:?}"));
    shown.push(captured.text());
    for text in &shown {
        assert!(!text.contains(&secret), "{text}");
        assert!(!text.contains(mismatch.expose_secret()), "{text}");
        assert!(!text.contains(VERIFIER), "{text}");
    }
}

/// Without a reuse window a rotated pair is dead at once, and a purge forgets it while the
/// code that gave it still lives: a replay of the code must still revoke the live pair
/// descended from it. `a` and `b` rotate without a window and never purge by themselves.
pub(super) async fn a_replayed_code_revokes_its_pair_after_a_purge(
    a: &Issuer,
    b: &Issuer,
    clock: &ManualClock,
) {
    let code = a.issue_code(grant()).await.unwrap();
    let first = b
        .redeem_code(code.expose_secret(), exchange())
        .await
        .unwrap();
    let second = a.refresh_for(&refresh_of(&first), CLIENT).await.unwrap();
    let third = b.refresh_for(&refresh_of(&second), CLIENT).await.unwrap();
    clock.advance(time::Duration::try_from(PURGE_GRACE).unwrap() + time::Duration::seconds(1));
    assert!(
        a.purge().await.unwrap() >= 2,
        "the rotated pairs are forgotten"
    );
    let live = third.tokens.access_token.expose_secret();
    assert!(b.authenticate(live).await.is_ok());

    let replay = b.redeem_code(code.expose_secret(), exchange()).await;
    assert!(
        matches!(replay, Err(IssuerError::UsedAuthCode)),
        "{replay:?}"
    );
    assert!(
        matches!(
            a.authenticate(live).await,
            Err(IssuerError::InvalidAccessToken)
        ),
        "the pair descended from the replayed code is revoked"
    );
}

/// A logout everywhere (`revoke_subject`) ends the subject's codes not yet redeemed, not
/// only its pairs: a code issued before it (a login under way, or a code someone
/// intercepted) is refused as expired, on either replica, and gives no pair. Another
/// subject's code, and a code issued after the logout, are redeemed.
pub(super) async fn a_logout_everywhere_ends_the_subjects_pending_codes(a: &Issuer, b: &Issuer) {
    let pending = a.issue_code(grant()).await.unwrap();
    let other = a
        .issue_code(CodeGrant::new(CLIENT, "bob").with_challenge(Some(challenge_s256(VERIFIER))))
        .await
        .unwrap();
    a.revoke_subject("alice").await.unwrap();
    let late = b.redeem_code(pending.expose_secret(), exchange()).await;
    assert!(
        matches!(late, Err(IssuerError::ExpiredAuthCode)),
        "{late:?}"
    );
    let bob = CodeExchange::new(CLIENT).with_verifier(Some(VERIFIER));
    assert_eq!(
        b.redeem_code(other.expose_secret(), bob)
            .await
            .unwrap()
            .subject,
        "bob"
    );
    let after = a.issue_code(grant()).await.unwrap();
    let issued = b
        .redeem_code(after.expose_secret(), exchange())
        .await
        .unwrap();
    assert_eq!(issued.subject, "alice");
}
