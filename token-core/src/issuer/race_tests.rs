//! Refreshes racing revocations, purges and each other on a multi-threaded runtime, and a
//! clock that steps: the issuer's answers stay those of some order of the calls.

use std::sync::Arc;
use std::time::Duration;

use time::macros::datetime;

use super::tests::refresh;
use super::*;
use crate::clock::ManualClock;

const WINDOW: Duration = Duration::from_secs(300);

fn issuer_with(config: IssuerConfig) -> (Arc<Issuer>, ManualClock) {
    let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
    let issuer = Issuer::in_memory(Arc::new(clock.clone()), config);
    (Arc::new(issuer), clock)
}

fn access(issued: &Issued) -> String {
    issued.tokens.access_token.expose_secret().to_owned()
}

/// A logout (revoke of the refresh token) racing a refresh with that token: whichever runs
/// first, the revoke answers `true` and afterwards no pair of the family is alive: not the
/// old one, and not the successor the racing refresh may have been given. So with a reuse
/// window, and with none but `revoke_on_reuse`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_racing_a_revoke_leaves_no_live_pair() {
    for config in [
        IssuerConfig::default().with_reuse_window(WINDOW),
        IssuerConfig::default().with_revoke_on_reuse(true),
    ] {
        a_refresh_racing_a_revoke_leaves_no_live_pair_with(config).await;
    }
}

async fn a_refresh_racing_a_revoke_leaves_no_live_pair_with(config: IssuerConfig) {
    let (issuer, _clock) = issuer_with(config);
    for _ in 0..50 {
        let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
        let token = refresh(&first);
        let rotation = tokio::spawn({
            let (issuer, token) = (issuer.clone(), token.clone());
            async move { issuer.refresh(&token).await }
        });
        let revocation = tokio::spawn({
            let (issuer, token) = (issuer.clone(), token.clone());
            async move { issuer.revoke(&token).await }
        });
        assert!(
            revocation.await.unwrap().unwrap(),
            "a live pair was revoked"
        );
        if let Ok(second) = rotation.await.unwrap() {
            assert!(issuer.authenticate(&access(&second)).await.is_err());
            assert!(issuer.refresh(&refresh(&second)).await.is_err());
        }
        assert!(issuer.authenticate(&access(&first)).await.is_err());
        assert!(issuer.refresh(&token).await.is_err());
    }
}

/// A purge racing refreshes inside and after the reuse window: a pending reuse answer is
/// never forgotten (the old token still answers its successor), and a token whose window
/// closed is refused whether its record was purged yet or not, never rotated again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_purge_racing_refreshes_forgets_no_pending_reuse_answer() {
    let (issuer, clock) = issuer_with(IssuerConfig::default().with_reuse_window(WINDOW));
    for _ in 0..20 {
        let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
        let second = issuer.refresh(&refresh(&first)).await.unwrap();
        clock.advance(time::Duration::seconds(299));
        let purge = tokio::spawn({
            let issuer = issuer.clone();
            async move { issuer.purge().await }
        });
        let again = issuer.refresh(&refresh(&first)).await.unwrap();
        assert_eq!(again.tokens, second.tokens);
        purge.await.unwrap().unwrap();
        assert_eq!(
            issuer.refresh(&refresh(&first)).await.unwrap().tokens,
            second.tokens
        );
        clock.advance(time::Duration::seconds(1) + time::Duration::try_from(PURGE_GRACE).unwrap());
        let purge = tokio::spawn({
            let issuer = issuer.clone();
            async move { issuer.purge().await }
        });
        let late = issuer.refresh(&refresh(&first)).await;
        assert!(late.as_ref().is_err_and(IssuerError::is_refresh_rejection));
        purge.await.unwrap().unwrap();
        assert!(issuer.refresh(&refresh(&first)).await.is_err());
        // The successor lives on: its access token expired by now, its refresh token not.
        issuer.refresh(&refresh(&second)).await.unwrap();
    }
}

/// A chain A -> B -> C, its tokens presented again concurrently: A answers nothing (B moved
/// on), B answers C for as long as C is live, and nothing once C is rotated.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_chain_start_presented_again_answers_nothing_once_its_successor_moved_on() {
    let (issuer, _clock) = issuer_with(IssuerConfig::default().with_reuse_window(WINDOW));
    let a = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let b = issuer.refresh(&refresh(&a)).await.unwrap();
    assert_eq!(issuer.refresh(&refresh(&a)).await.unwrap().tokens, b.tokens);
    let c = issuer.refresh(&refresh(&b)).await.unwrap();
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let issuer = issuer.clone();
            let token = if i % 2 == 0 { refresh(&a) } else { refresh(&b) };
            tokio::spawn(async move { issuer.refresh(&token).await })
        })
        .collect();
    for (i, task) in tasks.into_iter().enumerate() {
        match (i % 2, task.await.unwrap()) {
            (0, answer) => assert!(
                matches!(answer, Err(IssuerError::UsedRefreshToken)),
                "A answered {answer:?}"
            ),
            (_, answer) => assert_eq!(answer.unwrap().tokens, c.tokens, "B answers C"),
        }
    }
    // Once C itself is rotated, B answers nothing either.
    let d = issuer.refresh(&refresh(&c)).await.unwrap();
    for earlier in [&a, &b] {
        assert!(matches!(
            issuer.refresh(&refresh(earlier)).await,
            Err(IssuerError::UsedRefreshToken)
        ));
    }
    issuer.authenticate(&access(&d)).await.unwrap();
}

/// A clock set at the ends of the calendar (the clocks saturate at what they can tell), or
/// stepping between them: no call panics, every expiry is after the instant it was issued at
/// and no later than [`LATEST`](crate::expiry::LATEST), and the issuer's own operations
/// (rotation, reuse, purge, codes) keep working.
#[tokio::test]
async fn a_clock_at_the_ends_of_the_calendar_issues_bounded_expiries_and_panics_nowhere() {
    let (issuer, clock) = issuer_with(
        IssuerConfig::default()
            .with_reuse_window(WINDOW)
            .with_access_format(AccessTokenFormat::UnsignedJwt)
            .with_refresh_ttl(Some(Duration::MAX)),
    );
    for at in [
        OffsetDateTime::UNIX_EPOCH,
        crate::expiry::LATEST,
        time::PrimitiveDateTime::MAX.assume_utc(),
        time::PrimitiveDateTime::MIN.assume_utc(),
        datetime!(2026-01-01 00:00 UTC),
    ] {
        clock.set(at);
        let now = clock.now();
        let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
        let expiries = [
            first.tokens.access_expires_at,
            first.tokens.refresh_expires_at,
        ];
        for expiry in expiries.into_iter().map(Option::unwrap) {
            assert!(
                expiry > now && expiry <= crate::expiry::LATEST,
                "{at}: {expiry}"
            );
        }
        issuer.authenticate(&access(&first)).await.unwrap();
        let second = issuer.refresh(&refresh(&first)).await.unwrap();
        let again = issuer.refresh(&refresh(&first)).await.unwrap();
        assert_eq!(again.tokens, second.tokens, "{at}");
        issuer.purge().await.unwrap();
        let code = issuer
            .issue_code(CodeGrant::new("app", "alice"))
            .await
            .unwrap();
        issuer
            .redeem_code(code.expose_secret(), CodeExchange::new("app"))
            .await
            .unwrap();
    }
}
