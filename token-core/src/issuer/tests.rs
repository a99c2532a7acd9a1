use std::sync::Arc;
use std::time::Duration;

use time::macros::datetime;

use super::*;
use crate::clock::ManualClock;
use crate::test_logs::capture_logs;

const WINDOW: Duration = Duration::from_secs(300);

fn issuer_with(config: IssuerConfig) -> (Issuer, ManualClock, Arc<MemoryIssuerStore>) {
    let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
    let store = Arc::new(MemoryIssuerStore::new());
    let issuer = Issuer::new(store.clone(), Arc::new(clock.clone()), config);
    (issuer, clock, store)
}

fn issuer() -> (Issuer, ManualClock, Arc<MemoryIssuerStore>) {
    issuer_with(IssuerConfig::default().with_reuse_window(WINDOW))
}

fn access(issued: &Issued) -> String {
    issued.tokens.access_token.expose_secret().to_owned()
}

pub(super) fn refresh(issued: &Issued) -> String {
    issued
        .tokens
        .refresh_token
        .as_ref()
        .map(|t| t.expose_secret().to_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn issue_gives_prefixed_random_tokens_with_absolute_expiry() {
    let (issuer, _clock, _store) = issuer();
    let a = issuer
        .issue("alice", serde_json::json!({"customerId": "c-1"}))
        .await
        .unwrap();
    let b = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    assert!(access(&a).starts_with("at_") && refresh(&a).starts_with("rt_"));
    assert_ne!(access(&a), access(&b));
    assert_ne!(refresh(&a), refresh(&b));
    assert_eq!(a.subject, "alice");
    assert_eq!(
        a.tokens.access_expires_at,
        Some(datetime!(2026-01-01 01:00 UTC))
    );
    assert_eq!(
        a.tokens.refresh_expires_at,
        Some(datetime!(2026-01-31 00:00 UTC))
    );
    assert_eq!(a.tokens.token_type.as_deref(), Some("Bearer"));
    assert_eq!(a.tokens.extras["customerId"], "c-1");
    let grant = issuer.authenticate(&access(&a)).await.unwrap();
    assert_eq!(grant.subject, "alice");
    assert_eq!(grant.extras["customerId"], "c-1");
}

#[tokio::test]
async fn rotation_invalidates_the_old_pair_at_once() {
    let (issuer, _clock, _store) = issuer_with(IssuerConfig::default());
    let first = issuer
        .issue("alice", serde_json::json!({"customerId": "c-1"}))
        .await
        .unwrap();
    let second = issuer.refresh(&refresh(&first)).await.unwrap();
    assert!(!second.reused);
    assert_eq!(second.subject, "alice");
    assert_eq!(
        second.tokens.extras["customerId"], "c-1",
        "extras follow the rotation"
    );
    assert_ne!(access(&second), access(&first));
    assert_ne!(refresh(&second), refresh(&first));

    assert!(matches!(
        issuer.authenticate(&access(&first)).await,
        Err(IssuerError::InvalidAccessToken)
    ));
    assert!(matches!(
        issuer.refresh(&refresh(&first)).await,
        Err(IssuerError::UsedRefreshToken)
    ));
    assert_eq!(
        issuer.authenticate(&access(&second)).await.unwrap().subject,
        "alice"
    );
    assert!(issuer.refresh(&refresh(&second)).await.is_ok());
}

#[tokio::test]
async fn unknown_tokens_are_invalid() {
    let (issuer, _clock, _store) = issuer();
    assert!(matches!(
        issuer.refresh("rt_nope").await,
        Err(IssuerError::InvalidRefreshToken)
    ));
    assert!(matches!(
        issuer.authenticate("at_nope").await,
        Err(IssuerError::InvalidAccessToken)
    ));
    // An access token is not a refresh token, nor the other way round.
    let issued = issuer
        .issue("alice", serde_json::Value::Null)
        .await
        .unwrap();
    assert!(matches!(
        issuer.refresh(&access(&issued)).await,
        Err(IssuerError::InvalidRefreshToken)
    ));
    assert!(matches!(
        issuer.authenticate(&refresh(&issued)).await,
        Err(IssuerError::InvalidAccessToken)
    ));
}

#[tokio::test]
async fn reuse_window_returns_the_identical_pair_and_stops_after_the_window() {
    let (issuer, clock, _store) = issuer();
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    clock.advance(time::Duration::seconds(10));
    let second = issuer.refresh(&refresh(&first)).await.unwrap();

    clock.advance(time::Duration::seconds(299));
    let again = issuer.refresh(&refresh(&first)).await.unwrap();
    assert!(again.reused);
    assert_eq!(
        again.tokens, second.tokens,
        "same tokens and same absolute expiries"
    );
    assert_eq!(again.subject, "alice");
    // Reuse does not resurrect the old access token.
    assert!(issuer.authenticate(&access(&first)).await.is_err());

    clock.advance(time::Duration::seconds(1));
    assert!(matches!(
        issuer.refresh(&refresh(&first)).await,
        Err(IssuerError::UsedRefreshToken)
    ));
    // The successor is unaffected.
    assert!(issuer.authenticate(&access(&second)).await.is_ok());
}

#[tokio::test]
async fn reuse_stops_once_the_successor_was_rotated_or_revoked() {
    let (issuer, _clock, _store) = issuer();
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let second = issuer.refresh(&refresh(&first)).await.unwrap();
    let third = issuer.refresh(&refresh(&second)).await.unwrap();
    assert!(!third.reused);
    assert!(matches!(
        issuer.refresh(&refresh(&first)).await,
        Err(IssuerError::UsedRefreshToken)
    ));
    // `second` may still be reused (its successor `third` is live)...
    assert_eq!(
        issuer.refresh(&refresh(&second)).await.unwrap().tokens,
        third.tokens
    );
    // ...until `third` is revoked.
    assert!(issuer.revoke(&access(&third)).await.unwrap());
    assert!(matches!(
        issuer.refresh(&refresh(&second)).await,
        Err(IssuerError::UsedRefreshToken)
    ));
}

#[tokio::test]
async fn a_zero_window_never_reuses() {
    let (issuer, _clock, _store) = issuer_with(IssuerConfig::default());
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    issuer.refresh(&refresh(&first)).await.unwrap();
    assert!(matches!(
        issuer.refresh(&refresh(&first)).await,
        Err(IssuerError::UsedRefreshToken)
    ));
}

#[tokio::test]
async fn access_tokens_expire_against_the_clock() {
    let (issuer, clock, _store) =
        issuer_with(IssuerConfig::default().with_access_ttl(Duration::from_secs(60)));
    let issued = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    clock.advance(time::Duration::seconds(59));
    assert!(issuer.authenticate(&access(&issued)).await.is_ok());
    clock.advance(time::Duration::seconds(1));
    assert!(matches!(
        issuer.authenticate(&access(&issued)).await,
        Err(IssuerError::ExpiredAccessToken)
    ));
    // An expired access token is what refresh is for.
    let next = issuer.refresh(&refresh(&issued)).await.unwrap();
    assert!(issuer.authenticate(&access(&next)).await.is_ok());
}

#[tokio::test]
async fn refresh_tokens_expire_against_the_clock() {
    let (issuer, clock, _store) =
        issuer_with(IssuerConfig::default().with_refresh_ttl(Some(Duration::from_secs(600))));
    let issued = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    assert_eq!(
        issued.tokens.refresh_expires_at,
        Some(datetime!(2026-01-01 00:10 UTC))
    );
    clock.advance(time::Duration::seconds(600));
    assert!(matches!(
        issuer.refresh(&refresh(&issued)).await,
        Err(IssuerError::ExpiredRefreshToken)
    ));
    assert!(IssuerError::ExpiredRefreshToken.is_refresh_rejection());

    // Without a refresh lifetime, refresh tokens live until used.
    let (issuer, clock, _store) = issuer_with(IssuerConfig::default().with_refresh_ttl(None));
    let issued = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    assert_eq!(issued.tokens.refresh_expires_at, None);
    clock.advance(time::Duration::days(3650));
    assert!(issuer.refresh(&refresh(&issued)).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_with_the_same_token_get_the_same_successor() {
    let (issuer, _clock, store) = issuer();
    let issuer = Arc::new(issuer);
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let token = Arc::new(refresh(&first));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (issuer, token) = (issuer.clone(), token.clone());
            tokio::spawn(async move { issuer.refresh(&token).await })
        })
        .collect();
    let mut answers = Vec::new();
    for task in tasks {
        answers.push(task.await.unwrap().unwrap());
    }
    let rotated: Vec<_> = answers.iter().filter(|a| !a.reused).collect();
    assert_eq!(rotated.len(), 1, "exactly one rotation");
    assert!(answers.iter().all(|a| a.tokens == rotated[0].tokens));
    assert_eq!(store.len(), 2, "one successor stored");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refreshes_without_a_window_rotate_exactly_once() {
    let (issuer, _clock, store) = issuer_with(IssuerConfig::default());
    let issuer = Arc::new(issuer);
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let token = Arc::new(refresh(&first));
    let tasks: Vec<_> = (0..100)
        .map(|_| {
            let (issuer, token) = (issuer.clone(), token.clone());
            tokio::spawn(async move { issuer.refresh(&token).await })
        })
        .collect();
    let mut ok = 0;
    for task in tasks {
        match task.await.unwrap() {
            Ok(_) => ok += 1,
            Err(e) => assert!(matches!(e, IssuerError::UsedRefreshToken), "{e}"),
        }
    }
    assert_eq!(ok, 1);
    assert_eq!(store.len(), 2);
}

#[tokio::test]
async fn revoke_kills_a_pair_by_either_token_and_by_subject() {
    let (issuer, _clock, _store) = issuer();
    let a = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    assert!(issuer.revoke(&refresh(&a)).await.unwrap());
    assert!(
        !issuer.revoke(&refresh(&a)).await.unwrap(),
        "already revoked"
    );
    assert!(!issuer.revoke("rt_unknown").await.unwrap());
    assert!(matches!(
        issuer.authenticate(&access(&a)).await,
        Err(IssuerError::InvalidAccessToken)
    ));
    assert!(matches!(
        issuer.refresh(&refresh(&a)).await,
        Err(IssuerError::InvalidRefreshToken)
    ));

    let b = issuer.issue("bob", serde_json::json!({})).await.unwrap();
    let c = issuer.issue("bob", serde_json::json!({})).await.unwrap();
    let d = issuer.issue("carol", serde_json::json!({})).await.unwrap();
    assert_eq!(issuer.revoke_subject("bob").await.unwrap(), 2);
    assert!(issuer.authenticate(&access(&b)).await.is_err());
    assert!(issuer.authenticate(&access(&c)).await.is_err());
    assert!(issuer.authenticate(&access(&d)).await.is_ok());
}

#[tokio::test]
async fn purge_forgets_dead_records_only() {
    let (issuer, clock, store) = issuer_with(
        IssuerConfig::default()
            .with_reuse_window(WINDOW)
            .with_refresh_ttl(Some(Duration::from_secs(86_400))),
    );
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let second = issuer.refresh(&refresh(&first)).await.unwrap();
    let now = clock.now();
    assert_eq!(
        store.purge(now).await.unwrap(),
        0,
        "the reuse answer is pending"
    );
    clock.advance(time::Duration::seconds(300));
    assert_eq!(store.purge(clock.now()).await.unwrap(), 1);
    assert!(issuer.authenticate(&access(&second)).await.is_ok());
    clock.advance(time::Duration::days(2));
    assert_eq!(store.purge(clock.now()).await.unwrap(), 1);
    assert!(store.is_empty());
}

#[tokio::test]
async fn the_issuer_purges_dead_records_by_itself_once_per_interval() {
    let (issuer, clock, store) = issuer_with(
        IssuerConfig::default()
            .with_reuse_window(WINDOW)
            .with_purge_every(Some(Duration::from_secs(600))),
    );
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let second = issuer.refresh(&refresh(&first)).await.unwrap();
    // The first pair is dead once its reuse window is over; not yet an interval since the
    // issuer started.
    clock.advance(time::Duration::seconds(301));
    let third = issuer.refresh(&refresh(&second)).await.unwrap();
    tokio::task::yield_now().await;
    assert_eq!(store.len(), 3, "not due");
    // Due: the next write purges, in a task of its own.
    clock.advance(time::Duration::seconds(600));
    let fourth = issuer.refresh(&refresh(&third)).await.unwrap();
    for _ in 0..100 {
        if store.len() < 4 {
            break;
        }
        tokio::task::yield_now().await;
    }
    // Gone: the first two (replaced long ago); kept: the third (its successor is still
    // answered again) and the fourth.
    assert_eq!(store.len(), 2);
    assert!(issuer.authenticate(&access(&fourth)).await.is_ok());
    // Not due again before another interval: the next rotation's dead record stays.
    clock.advance(time::Duration::seconds(301));
    issuer.refresh(&refresh(&fourth)).await.unwrap();
    tokio::task::yield_now().await;
    assert_eq!(store.len(), 3);
    assert_eq!(
        issuer.purge().await.unwrap(),
        0,
        "dead for less than the grace"
    );
    clock.advance(time::Duration::try_from(PURGE_GRACE).unwrap());
    assert_eq!(issuer.purge().await.unwrap(), 1, "the third is dead now");
}

#[tokio::test]
async fn an_issuer_that_never_purges_keeps_every_record() {
    let (issuer, clock, store) = issuer_with(
        IssuerConfig::default()
            .with_reuse_window(WINDOW)
            .with_purge_every(None),
    );
    let mut pair = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    for _ in 0..5 {
        clock.advance(time::Duration::days(1));
        pair = issuer.refresh(&refresh(&pair)).await.unwrap();
        tokio::task::yield_now().await;
    }
    assert_eq!(store.len(), 6);
}

#[tokio::test]
async fn unsigned_jwt_access_tokens_carry_exp_and_sub() {
    let (issuer, _clock, _store) =
        issuer_with(IssuerConfig::default().with_access_format(AccessTokenFormat::UnsignedJwt));
    let issued = issuer.issue("acct-7", serde_json::json!({})).await.unwrap();
    let token = access(&issued);
    assert_eq!(token.split('.').count(), 3);
    assert_eq!(
        crate::expiry::jwt_exp(&token),
        issued.tokens.access_expires_at
    );
    let payload = token.split('.').nth(1).unwrap_or_default();
    let claims: serde_json::Value = serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap();
    assert_eq!(claims["sub"], "acct-7");
    assert!(issuer.authenticate(&token).await.is_ok());
    // Two tokens issued in the same second still differ (random `jti`).
    let other = issuer.issue("acct-7", serde_json::json!({})).await.unwrap();
    assert_ne!(access(&other), token);
}

#[tokio::test]
async fn errors_and_debug_never_contain_a_token() {
    let (issuer, clock, store) = issuer_with(
        IssuerConfig::default()
            .with_reuse_window(WINDOW)
            .with_access_ttl(Duration::from_secs(1))
            .with_refresh_ttl(Some(Duration::from_secs(10))),
    );
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let second = issuer.refresh(&refresh(&first)).await.unwrap();
    let secrets = [
        access(&first),
        refresh(&first),
        access(&second),
        refresh(&second),
    ];

    let mut shown = vec![
        format!("{first:?}"),
        format!("{second:?}"),
        format!("{issuer:?}"),
        format!("{store:?}"),
    ];
    let record = store
        .find_by_refresh(&TokenHash::of(&refresh(&first)))
        .await
        .unwrap();
    shown.push(format!("{record:?}"));
    clock.advance(time::Duration::seconds(5));
    for error in [
        issuer.refresh("rt_unknown").await.err(),
        issuer.authenticate(&access(&first)).await.err(),
        issuer.authenticate(&access(&second)).await.err(),
    ] {
        let error = error.expect("each of these fails");
        shown.push(format!("{error} {error:?}"));
    }
    clock.advance(time::Duration::seconds(600));
    let error = issuer.refresh(&refresh(&second)).await.err();
    shown.push(format!("{error:?}"));
    let error = issuer.refresh(&refresh(&first)).await.err();
    shown.push(format!("{error:?}"));

    for text in &shown {
        for secret in &secrets {
            assert!(!text.contains(secret.as_str()), "{text}");
            // Not even the random part without its prefix.
            assert!(!text.contains(&secret[3..]), "{text}");
        }
    }
}

#[tokio::test]
async fn a_kept_refresh_token_renews_the_access_token_and_keeps_its_expiry() {
    let config = IssuerConfig::default().with_refresh_rotation(RefreshRotation::KeepAndResend);
    let (issuer, clock, store) = issuer_with(config);
    let first = issuer
        .issue("c", serde_json::json!({"k": 1}))
        .await
        .unwrap();
    clock.advance(time::Duration::seconds(60));
    let second = issuer.refresh(&refresh(&first)).await.unwrap();
    assert_eq!(
        refresh(&second),
        refresh(&first),
        "the same refresh token, sent again"
    );
    assert_eq!(
        second.tokens.refresh_expires_at, first.tokens.refresh_expires_at,
        "a kept refresh token keeps its expiry"
    );
    assert_ne!(access(&second), access(&first));
    assert!(second.tokens.access_expires_at > first.tokens.access_expires_at);
    assert!(issuer.authenticate(&access(&first)).await.is_err());
    assert_eq!(
        issuer.authenticate(&access(&second)).await.unwrap().extras,
        serde_json::json!({"k": 1})
    );
    let third = issuer.refresh(&refresh(&first)).await.unwrap();
    assert!(!third.reused);
    assert!(issuer.authenticate(&access(&second)).await.is_err());
    assert_eq!(store.len(), 1, "one record, replaced in place");
    // Revocation and expiry still end it.
    assert!(issuer.revoke(&refresh(&first)).await.unwrap());
    assert!(matches!(
        issuer.refresh(&refresh(&first)).await,
        Err(IssuerError::InvalidRefreshToken)
    ));
}

mod codes {
    use super::*;
    use crate::issuer::code_tests;

    #[tokio::test]
    async fn a_code_is_redeemed_once_and_a_replay_revokes_its_pair() {
        let (issuer, _clock, _store) = issuer();
        code_tests::a_code_is_redeemed_once_and_a_replay_revokes_its_pair(&issuer, &issuer).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_redemptions_of_one_code_give_one_pair() {
        let (issuer, _clock, _store) = issuer();
        for _ in 0..20 {
            code_tests::concurrent_redemptions_of_one_code_give_one_pair(&issuer, &issuer).await;
        }
    }

    #[tokio::test]
    async fn a_replayed_code_revokes_its_pair_after_a_purge() {
        let (issuer, clock, _store) = issuer_with(IssuerConfig::default().with_purge_every(None));
        code_tests::a_replayed_code_revokes_its_pair_after_a_purge(&issuer, &issuer, &clock).await;
    }

    #[tokio::test]
    async fn a_logout_everywhere_ends_the_subjects_pending_codes() {
        let (issuer, _clock, _store) = issuer();
        code_tests::a_logout_everywhere_ends_the_subjects_pending_codes(&issuer, &issuer).await;
    }

    #[tokio::test]
    async fn a_code_expires_by_the_issuers_clock() {
        let (issuer, clock, _store) = issuer();
        code_tests::a_code_expires_by_the_issuers_clock(&issuer, &issuer, &clock).await;
    }

    #[tokio::test]
    async fn a_code_is_refused_to_another_client_redirect_or_verifier() {
        let (issuer, _clock, _store) = issuer();
        code_tests::a_code_is_refused_to_another_client_redirect_or_verifier(&issuer, &issuer)
            .await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_code_is_never_logged_or_shown() {
        let (issuer, _clock, store) = issuer();
        code_tests::a_code_is_never_logged_or_shown(&issuer, &store).await;
    }

    #[tokio::test]
    async fn the_store_keeps_the_codes_hash_and_purges_expired_codes() {
        let (issuer, clock, store) = issuer();
        let code = issuer
            .issue_code(CodeGrant::new("app-1", "alice"))
            .await
            .unwrap();
        let shown = format!("{store:?}");
        assert!(!shown.contains(code.expose_secret()), "{shown}");
        assert!(shown.contains(&format!("{:?}", TokenHash::of(code.expose_secret()))));
        clock.advance(time::Duration::minutes(10));
        assert_eq!(
            store.purge(crate::clock::Clock::now(&clock)).await.unwrap(),
            1
        );
    }
}

mod clients {
    use super::*;
    use crate::issuer::client_tests;

    fn issuer() -> (Issuer, ManualClock, Arc<MemoryIssuerStore>) {
        issuer_with(
            IssuerConfig::default()
                .with_reuse_window(WINDOW)
                .with_revoke_on_reuse(true),
        )
    }

    #[tokio::test]
    async fn a_pair_is_refreshed_only_by_the_client_it_was_issued_to() {
        let (issuer, _clock, _store) = issuer();
        client_tests::a_pair_is_refreshed_only_by_the_client_it_was_issued_to(&issuer, &issuer)
            .await;
    }

    #[tokio::test]
    async fn a_pair_is_revoked_only_by_the_client_it_was_issued_to() {
        let (issuer, _clock, _store) = issuer();
        client_tests::a_pair_is_revoked_only_by_the_client_it_was_issued_to(&issuer, &issuer).await;
    }

    #[tokio::test]
    async fn a_wrong_client_gets_no_reuse_answer_and_revokes_nothing() {
        let (issuer, clock, _store) = issuer();
        client_tests::a_wrong_client_gets_no_reuse_answer_and_revokes_nothing(
            &issuer, &issuer, &clock,
        )
        .await;
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_refresh_refused_to_another_client_logs_nothing() {
        let (issuer, clock, _store) = issuer();
        let captured = capture_logs();
        let first = issuer
            .issue_for("app-1", "alice", serde_json::json!({}))
            .await
            .unwrap();
        let token = refresh(&first);
        let second = issuer.refresh_for(&token, "app-1").await.unwrap();
        issuer
            .refresh_for(&refresh(&second), "app-1")
            .await
            .unwrap();
        clock.advance(time::Duration::seconds(1));
        let refused = issuer.refresh_for(&token, "app-2").await;
        assert!(matches!(refused, Err(IssuerError::InvalidRefreshToken)));
        assert_eq!(captured.text(), "", "nothing logged, let alone the token");
        // The client's own replay is logged (without the token): the capture works.
        let used = issuer.refresh_for(&token, "app-1").await;
        assert!(matches!(used, Err(IssuerError::UsedRefreshToken)));
        let logged = captured.text();
        assert!(logged.contains("used-up refresh token"), "{logged}");
        assert!(!logged.contains(&token[3..]), "{logged}");
    }

    #[test]
    fn a_pair_without_a_client_is_refreshable_by_any_and_a_bound_one_by_its_own() {
        let (issuer, _clock, _store) = issuer();
        let mut record = issuer
            .mint(
                Pair {
                    client: None,
                    subject: "alice".into(),
                    extras: serde_json::json!({}),
                    family: None,
                },
                issuer.clock.now(),
            )
            .record;
        for client in [None, Some("app-1"), Some("")] {
            assert!(record.is_refreshable_by(client), "{client:?}");
        }
        record.client = Some("app-1".into());
        assert!(record.is_refreshable_by(Some("app-1")));
        for client in [None, Some("app-2"), Some(""), Some("APP-1"), Some("app-1 ")] {
            assert!(!record.is_refreshable_by(client), "{client:?}");
        }
    }
}

#[tokio::test]
async fn with_revoke_on_reuse_a_used_up_refresh_token_revokes_its_live_descendant() {
    let (issuer, clock, _store) = issuer_with(
        IssuerConfig::default()
            .with_reuse_window(WINDOW)
            .with_revoke_on_reuse(true),
    );
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let second = issuer.refresh(&refresh(&first)).await.unwrap();
    // Inside the window the old token still answers its successor, and revokes nothing.
    assert!(issuer.refresh(&refresh(&first)).await.unwrap().reused);
    assert!(issuer.authenticate(&access(&second)).await.is_ok());
    let third = issuer.refresh(&refresh(&second)).await.unwrap();

    // `first` again, now that its successor was rotated: used up. The live pair it led to
    // (`third`) is revoked with it.
    clock.advance(time::Duration::seconds(1));
    assert!(matches!(
        issuer.refresh(&refresh(&first)).await,
        Err(IssuerError::UsedRefreshToken)
    ));
    assert!(matches!(
        issuer.authenticate(&access(&third)).await,
        Err(IssuerError::InvalidAccessToken)
    ));
    assert!(issuer.refresh(&refresh(&third)).await.is_err());
    // Another subject's pairs are untouched.
    let bob = issuer.issue("bob", serde_json::json!({})).await.unwrap();
    assert!(matches!(
        issuer.refresh(&refresh(&first)).await,
        Err(IssuerError::UsedRefreshToken)
    ));
    assert!(issuer.authenticate(&access(&bob)).await.is_ok());
}

/// The replay of a used-up refresh token, or of an authorization code, that arrives when a
/// purge is due: the purge that request starts may forget the replayed pair (dead for longer
/// than [`PURGE_GRACE`]), but only once the replay has revoked what it revealed. Before, the
/// purge ran first, and the revocation, following the chain from a pair no longer there,
/// revoked nothing: the replay was refused as used, and the pair it led to lived on.
#[tokio::test]
async fn a_replay_that_starts_a_purge_still_revokes_what_it_revealed() {
    let (issuer, clock, _store) = issuer_with(
        IssuerConfig::default()
            .with_reuse_window(WINDOW)
            .with_revoke_on_reuse(true),
    );
    let every = issuer.config().purge_every.unwrap();
    let past_the_purge = time::Duration::try_from(every).unwrap() + time::Duration::seconds(1);

    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let second = issuer.refresh(&refresh(&first)).await.unwrap();
    clock.advance(past_the_purge);
    assert!(matches!(
        issuer.refresh(&refresh(&first)).await,
        Err(IssuerError::UsedRefreshToken)
    ));
    assert!(matches!(
        issuer.authenticate(&access(&second)).await,
        Err(IssuerError::InvalidAccessToken)
    ));
    assert!(issuer.refresh(&refresh(&second)).await.is_err());

    let code = issuer
        .issue_code(CodeGrant::new("app-1", "bob"))
        .await
        .unwrap();
    let exchanged = issuer
        .redeem_code(code.expose_secret(), CodeExchange::new("app-1"))
        .await
        .unwrap();
    let next = issuer
        .refresh_for(&refresh(&exchanged), "app-1")
        .await
        .unwrap();
    clock.advance(past_the_purge);
    assert!(matches!(
        issuer
            .redeem_code(code.expose_secret(), CodeExchange::new("app-1"))
            .await,
        Err(IssuerError::UsedAuthCode)
    ));
    assert!(matches!(
        issuer.authenticate(&access(&next)).await,
        Err(IssuerError::InvalidAccessToken)
    ));
}

/// A replayed used-up refresh token recognised as used, or a replayed authorization code,
/// with a purge landing between that verdict and the revocation (run by another request,
/// replica or the application): the purge forgets the replayed pair (dead for longer than
/// [`PURGE_GRACE`]) and every dead pair after it. The revocation must still revoke the live
/// pair the replay revealed: before, it followed the chain of rotations from the replayed
/// pair, found nothing, and the live pair survived a replay answered as detected. `store`'s
/// issuers detect reuse; neither purges by itself.
pub(super) async fn a_purge_landing_between_a_replays_verdict_and_its_revocation_leaves_no_live_pair<
    S: IssuerStore,
>(
    store: Arc<Faulty<S>>,
) {
    let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
    let config = IssuerConfig::default()
        .with_reuse_window(WINDOW)
        .with_revoke_on_reuse(true)
        .with_purge_every(None);
    let issuer = Issuer::new(store.clone(), Arc::new(clock.clone()), config);
    let window = time::Duration::try_from(WINDOW).unwrap();
    let grace = time::Duration::try_from(PURGE_GRACE).unwrap();
    let past_the_grace = window + grace + time::Duration::seconds(1);
    // Past the grace, then a replay: the purge lands between its verdict and its revocation.
    let replay_past_the_grace = async |replay: std::pin::Pin<Box<dyn Future<Output = _> + '_>>| {
        clock.advance(past_the_grace);
        store.purge_after_verdict(clock.now() - grace);
        replay.await
    };
    let forgotten = async |issued: &Issued| {
        let hash = TokenHash::of(&refresh(issued));
        issuer.find_by_either(&hash).await.unwrap().is_none()
    };

    // A refresh token: three pairs, the first two rotated away long ago.
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let second = issuer.refresh(&refresh(&first)).await.unwrap();
    let third = issuer.refresh(&refresh(&second)).await.unwrap();
    let used = refresh(&first);
    assert!(matches!(
        replay_past_the_grace(Box::pin(issuer.refresh(&used))).await,
        Err(IssuerError::UsedRefreshToken)
    ));
    assert!(
        forgotten(&first).await,
        "setup: the purge forgot the replayed pair before its revocation"
    );
    assert!(
        issuer.authenticate(&access(&third)).await.is_err(),
        "the replay was answered as used up, yet the live pair it led to survives"
    );
    assert!(issuer.refresh(&refresh(&third)).await.is_err());

    // An authorization code: the pair it gave, rotated twice since.
    let code = issuer
        .issue_code(CodeGrant::new("app-1", "bob"))
        .await
        .unwrap();
    let exchange = CodeExchange::new("app-1");
    let given = issuer
        .redeem_code(code.expose_secret(), exchange)
        .await
        .unwrap();
    let next = issuer.refresh_for(&refresh(&given), "app-1").await.unwrap();
    let live = issuer.refresh_for(&refresh(&next), "app-1").await.unwrap();
    assert!(matches!(
        replay_past_the_grace(Box::pin(issuer.redeem_code(code.expose_secret(), exchange))).await,
        Err(IssuerError::UsedAuthCode)
    ));
    assert!(
        forgotten(&given).await,
        "setup: the purge forgot the pair the code gave before its revocation"
    );
    assert!(
        issuer.authenticate(&access(&live)).await.is_err(),
        "the code's replay was answered as used, yet the live pair it led to survives"
    );
}

#[tokio::test]
async fn a_purge_between_a_replays_verdict_and_its_revocation_leaves_no_live_pair() {
    a_purge_landing_between_a_replays_verdict_and_its_revocation_leaves_no_live_pair(Arc::new(
        Faulty::default(),
    ))
    .await;
}

/// A line rotated more than 10,000 times (the most that following rotations one by one
/// ever went): a replay of its first refresh token still revokes its live pair, which the
/// family names directly. Before, the chain was followed for 10,000 steps at most, and a
/// longer one left the live pair alive.
#[tokio::test]
async fn a_replay_revokes_the_live_pair_of_a_line_rotated_more_than_ten_thousand_times() {
    let (issuer, _clock, store) = issuer_with(
        IssuerConfig::default()
            .with_revoke_on_reuse(true)
            .with_purge_every(None),
    );
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let mut live = issuer.refresh(&refresh(&first)).await.unwrap();
    for _ in 0..10_001 {
        live = issuer.refresh(&refresh(&live)).await.unwrap();
    }
    assert_eq!(store.len(), 10_003);
    assert!(matches!(
        issuer.refresh(&refresh(&first)).await,
        Err(IssuerError::UsedRefreshToken)
    ));
    assert!(matches!(
        issuer.authenticate(&access(&live)).await,
        Err(IssuerError::InvalidAccessToken)
    ));
}

/// With `revoke_on_reuse`, a used-up refresh token presented for a revocation (a logout
/// racing the refresh that rotated it, with no reuse window) revokes the live pair it led
/// to, as presenting it for a refresh does: no more than its holder could do through a
/// refresh. Without `revoke_on_reuse` it revokes nothing, as a refresh with it does not.
#[tokio::test]
async fn with_revoke_on_reuse_a_logout_with_a_used_up_refresh_token_revokes_its_live_descendant() {
    for revoke_on_reuse in [true, false] {
        let (issuer, clock, _store) =
            issuer_with(IssuerConfig::default().with_revoke_on_reuse(revoke_on_reuse));
        let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
        let second = issuer.refresh(&refresh(&first)).await.unwrap();
        let third = issuer.refresh(&refresh(&second)).await.unwrap();
        let bob = issuer.issue("bob", serde_json::json!({})).await.unwrap();
        clock.advance(time::Duration::seconds(1));
        let revoked = issuer.revoke(&refresh(&first)).await.unwrap();
        assert_eq!(revoked, revoke_on_reuse);
        let live = issuer.authenticate(&access(&third)).await.is_ok();
        assert_eq!(live, !revoke_on_reuse, "revoke_on_reuse {revoke_on_reuse}");
        // An old access token revokes no more than its own pair, as before.
        assert!(!issuer.revoke(&access(&first)).await.unwrap());
        assert!(issuer.authenticate(&access(&bob)).await.is_ok());
    }
}

#[tokio::test]
async fn without_revoke_on_reuse_the_descendant_lives_on() {
    let (issuer, clock, _store) = issuer();
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let second = issuer.refresh(&refresh(&first)).await.unwrap();
    clock.advance(time::Duration::seconds(301));
    assert!(matches!(
        issuer.refresh(&refresh(&first)).await,
        Err(IssuerError::UsedRefreshToken)
    ));
    assert!(issuer.authenticate(&access(&second)).await.is_ok());
    assert!(issuer.refresh(&refresh(&second)).await.is_ok());
}

/// Without a reuse window, a rotated pair is dead at once, yet the issuer's purges keep it
/// [`PURGE_GRACE`] after its rotation (as they keep a windowed one after its window): a
/// used-up refresh token replayed a moment after a purge is still recognised, and with
/// `revoke_on_reuse` the pair it led to is revoked. `a` and `b` share one store (two replicas)
/// and `clock`; neither purges by itself.
pub(super) async fn a_purge_keeps_a_used_up_refresh_token_recognised_for_the_grace(
    a: &Issuer,
    b: &Issuer,
    clock: &ManualClock,
) {
    let first = a.issue("alice", serde_json::json!({})).await.unwrap();
    let second = a.refresh(&refresh(&first)).await.unwrap();
    clock.advance(time::Duration::seconds(1));
    b.purge().await.unwrap();
    let replay = b.refresh(&refresh(&first)).await;
    assert!(
        matches!(replay, Err(IssuerError::UsedRefreshToken)),
        "a second after the rotation, the replay is a used-up token: {replay:?}"
    );
    assert!(
        a.authenticate(&access(&second)).await.is_err(),
        "the pair the used-up token led to is revoked"
    );
    // Once the grace is over, the purge forgets both.
    clock.advance(time::Duration::try_from(PURGE_GRACE).unwrap());
    assert_eq!(a.purge().await.unwrap(), 2);
    assert!(matches!(
        b.refresh(&refresh(&first)).await,
        Err(IssuerError::InvalidRefreshToken)
    ));
}

#[tokio::test]
async fn a_purge_keeps_a_used_up_refresh_token_recognised_for_the_grace_in_memory() {
    let (a, clock, store) = issuer_with(
        IssuerConfig::default()
            .with_revoke_on_reuse(true)
            .with_purge_every(None),
    );
    let b = Issuer::new(store, Arc::new(clock.clone()), a.config().clone());
    a_purge_keeps_a_used_up_refresh_token_recognised_for_the_grace(&a, &b, &clock).await;
}

#[tokio::test]
async fn lifetimes_too_long_for_the_calendar_end_at_the_latest_expiry() {
    // "Forever", written as the largest duration or as one past the calendar's end: every
    // expiry ends at `expiry::LATEST` instead of overflowing (a panic in every call).
    let config = IssuerConfig::default()
        .with_access_ttl(Duration::MAX)
        .with_refresh_ttl(Some(Duration::from_secs(1 << 40)))
        .with_reuse_window(Duration::MAX)
        .with_code_ttl(Duration::MAX);
    let (issuer, clock, _store) = issuer_with(config);
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    assert_eq!(first.tokens.access_expires_at, Some(crate::expiry::LATEST));
    assert_eq!(first.tokens.refresh_expires_at, Some(crate::expiry::LATEST));
    let second = issuer.refresh(&refresh(&first)).await.unwrap();
    clock.advance(time::Duration::days(100 * 365));
    let again = issuer.refresh(&refresh(&first)).await.unwrap();
    assert!(again.reused, "the reuse window is still open");
    assert_eq!(again.tokens, second.tokens);
    assert!(issuer.authenticate(&access(&second)).await.is_ok());

    let code = issuer
        .issue_code(CodeGrant::new("app-1", "alice"))
        .await
        .unwrap();
    clock.advance(time::Duration::days(365));
    let redeemed = issuer
        .redeem_code(code.expose_secret(), CodeExchange::new("app-1"))
        .await
        .unwrap();
    assert_eq!(
        redeemed.tokens.access_expires_at,
        Some(crate::expiry::LATEST)
    );
}

#[tokio::test]
async fn revoking_a_token_of_a_pair_rotated_inside_its_reuse_window_revokes_the_pair_it_answers() {
    // The client's answer was lost: it holds only the old pair, whose refresh token still
    // answers the successor for the reuse window. Revoking either of its tokens (a logout;
    // RFC 7009 lets it present either) must leave nothing that refresh token can obtain, as
    // for a live pair: the successor is revoked and the old refresh token answers nothing.
    let (issuer, _clock, _store) = issuer();
    let token_of_first = refresh as fn(&Issued) -> String;
    for (which, token_of) in [("refresh", token_of_first), ("access", access)] {
        let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
        let lost = issuer.refresh(&refresh(&first)).await.unwrap();
        assert!(issuer.revoke(&token_of(&first)).await.unwrap(), "{which}");
        let again = issuer.refresh(&refresh(&first)).await;
        assert!(
            matches!(again, Err(IssuerError::UsedRefreshToken)),
            "revoked by its {which} token, the old refresh token still obtains: {again:?}"
        );
        assert!(matches!(
            issuer.authenticate(&access(&lost)).await,
            Err(IssuerError::InvalidAccessToken)
        ));
        assert!(issuer.refresh(&refresh(&lost)).await.is_err());

        // Once the successor moved on, the old tokens answer nothing and revoking one
        // revokes nothing: the live pair is the client's own.
        let first = issuer.issue("bob", serde_json::json!({})).await.unwrap();
        let second = issuer.refresh(&refresh(&first)).await.unwrap();
        let third = issuer.refresh(&refresh(&second)).await.unwrap();
        assert!(!issuer.revoke(&token_of(&first)).await.unwrap(), "{which}");
        assert!(issuer.authenticate(&access(&third)).await.is_ok());
    }
}

/// Two replicas on one store, the second's clock two minutes ahead (NTP misses happen): its
/// purge must not take from the first's clients the reuse answer their window still promises.
#[tokio::test]
async fn a_replica_whose_clock_runs_ahead_does_not_purge_a_pending_reuse_answer() {
    let store = Arc::new(MemoryIssuerStore::new());
    let start = datetime!(2026-01-01 00:00 UTC);
    let (clock_a, clock_b) = (
        ManualClock::new(start),
        ManualClock::new(start + time::Duration::minutes(2)),
    );
    let config = IssuerConfig::default()
        .with_reuse_window(WINDOW)
        .with_purge_every(None);
    let a = Issuer::new(store.clone(), Arc::new(clock_a.clone()), config.clone());
    let b = Issuer::new(store.clone(), Arc::new(clock_b.clone()), config);
    let first = a.issue("alice", serde_json::json!({})).await.unwrap();
    // Rotated on A; the answer is lost on its way to the client.
    let lost = a.refresh(&refresh(&first)).await.unwrap();
    clock_a.advance(time::Duration::minutes(4));
    clock_b.advance(time::Duration::minutes(4));
    b.purge().await.unwrap();
    // Four minutes into a five-minute window, by A's clock: the client's retry gets its pair.
    let again = a.refresh(&refresh(&first)).await;
    assert!(
        matches!(&again, Ok(issued) if issued.tokens == lost.tokens),
        "{again:?}"
    );
}

/// A store (the memory store unless told) with faults: `lose_rotation_answer` makes the next
/// rotation commit and then fail (a database connection lost after the commit was sent);
/// `fail_purges` makes every purge fail. `purges` counts the purges asked of it.
/// `hold_revoke` makes the next family revocation (a replay's) tell `revoke_entered` and wait
/// for `revoke_released`.
/// [`purge_after_verdict`](Self::purge_after_verdict) makes the next rotation or code
/// redemption purge at a horizon before it answers (a purge run by another request, replica
/// or the application, landing between a replay's verdict and its revocation).
pub(super) struct Faulty<S = MemoryIssuerStore> {
    inner: S,
    purge_after_verdict: std::sync::Mutex<Option<OffsetDateTime>>,
    lose_rotation_answer: std::sync::atomic::AtomicBool,
    fail_purges: std::sync::atomic::AtomicBool,
    purges: std::sync::atomic::AtomicUsize,
    hold_revoke: std::sync::atomic::AtomicBool,
    revoke_entered: tokio::sync::Notify,
    revoke_released: tokio::sync::Notify,
}

impl Default for Faulty {
    fn default() -> Self {
        Self::over(MemoryIssuerStore::new())
    }
}

impl<S> Faulty<S> {
    /// `inner`, without faults until told.
    pub(super) fn over(inner: S) -> Self {
        Self {
            inner,
            purge_after_verdict: std::sync::Mutex::default(),
            lose_rotation_answer: std::sync::atomic::AtomicBool::default(),
            fail_purges: std::sync::atomic::AtomicBool::default(),
            purges: std::sync::atomic::AtomicUsize::default(),
            hold_revoke: std::sync::atomic::AtomicBool::default(),
            revoke_entered: tokio::sync::Notify::default(),
            revoke_released: tokio::sync::Notify::default(),
        }
    }

    /// Makes the next rotation or code redemption purge at `horizon` before it answers.
    pub(super) fn purge_after_verdict(&self, horizon: OffsetDateTime) {
        *self.purge_after_verdict.lock().unwrap() = Some(horizon);
    }
}

impl<S: IssuerStore> Faulty<S> {
    /// The purge [`purge_after_verdict`](Self::purge_after_verdict) asked for, if any.
    async fn purge_if_told(&self) -> Result<(), StoreError> {
        let horizon = self.purge_after_verdict.lock().unwrap().take();
        if let Some(horizon) = horizon {
            self.inner.purge(horizon).await?;
        }
        Ok(())
    }
}

fn failure() -> StoreError {
    StoreError::Backend {
        message: "connection closed".into(),
        source: None,
    }
}

#[async_trait]
impl<S: IssuerStore> IssuerStore for Faulty<S> {
    async fn insert(&self, record: PairRecord) -> Result<(), StoreError> {
        self.inner.insert(record).await
    }
    async fn find_by_access(&self, access: &TokenHash) -> Result<Option<PairRecord>, StoreError> {
        self.inner.find_by_access(access).await
    }
    async fn find_by_refresh(&self, refresh: &TokenHash) -> Result<Option<PairRecord>, StoreError> {
        self.inner.find_by_refresh(refresh).await
    }
    async fn rotate(&self, rotation: Rotation<'_>) -> Result<RotateOutcome, StoreError> {
        let outcome = self.inner.rotate(rotation).await?;
        self.purge_if_told().await?;
        if self
            .lose_rotation_answer
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            return Err(failure());
        }
        Ok(outcome)
    }
    async fn revoke(&self, token: &TokenHash, at: OffsetDateTime) -> Result<bool, StoreError> {
        self.inner.revoke(token, at).await
    }
    async fn revoke_subject(&self, subject: &str, at: OffsetDateTime) -> Result<usize, StoreError> {
        self.inner.revoke_subject(subject, at).await
    }
    async fn revoke_family(
        &self,
        family: &TokenHash,
        at: OffsetDateTime,
    ) -> Result<usize, StoreError> {
        if self
            .hold_revoke
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            self.revoke_entered.notify_one();
            self.revoke_released.notified().await;
        }
        self.inner.revoke_family(family, at).await
    }
    async fn insert_code(&self, record: CodeRecord) -> Result<(), StoreError> {
        self.inner.insert_code(record).await
    }
    async fn redeem_code(&self, redemption: Redemption<'_>) -> Result<RedeemOutcome, StoreError> {
        let outcome = self.inner.redeem_code(redemption).await?;
        self.purge_if_told().await?;
        Ok(outcome)
    }
    async fn purge(&self, now: OffsetDateTime) -> Result<usize, StoreError> {
        self.purges
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        if self.fail_purges.load(std::sync::atomic::Ordering::SeqCst) {
            return Err(failure());
        }
        self.inner.purge(now).await
    }
}

/// The store committed a rotation and its answer was lost: the client's retry with the
/// same refresh token gets the pair that rotation made (one rotation in all), even with
/// reuse detection on.
#[tokio::test]
async fn a_retry_after_a_rotation_whose_answer_the_store_lost_gets_the_pair_it_made() {
    let store = Arc::new(Faulty::default());
    store
        .lose_rotation_answer
        .store(true, std::sync::atomic::Ordering::SeqCst);
    let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
    let config = IssuerConfig::default()
        .with_reuse_window(WINDOW)
        .with_revoke_on_reuse(true);
    let issuer = Issuer::new(store.clone(), Arc::new(clock.clone()), config);
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let failed = issuer.refresh(&refresh(&first)).await;
    assert!(
        matches!(&failed, Err(e) if !e.is_refresh_rejection()),
        "{failed:?}"
    );
    clock.advance(time::Duration::seconds(30));
    let retry = issuer.refresh(&refresh(&first)).await.unwrap();
    assert!(retry.reused, "the pair the lost rotation made");
    issuer.authenticate(&access(&retry)).await.unwrap();
    assert_eq!(store.inner.len(), 2, "one rotation");
}

/// A replayed used-up refresh token, or a replayed authorization code, whose request is
/// cancelled (its client hung up, a timeout) while the issuer revokes what descended from
/// it: the revocation is carried to its end all the same, and logged, or a replay followed
/// by a hang-up would never be punished, nor seen.
#[tokio::test]
async fn a_replay_cancelled_while_its_pair_is_revoked_still_revokes_it() {
    use std::sync::atomic::Ordering::SeqCst;
    let logs = capture_logs();
    let store = Arc::new(Faulty::default());
    let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
    let config = IssuerConfig::default().with_revoke_on_reuse(true);
    let issuer = Issuer::new(store.clone(), Arc::new(clock.clone()), config);
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    let second = issuer.refresh(&refresh(&first)).await.unwrap();
    let code = issuer
        .issue_code(CodeGrant::new("app-1", "bob"))
        .await
        .unwrap();
    let exchange = CodeExchange::new("app-1");
    let redeemed = issuer
        .redeem_code(code.expose_secret(), exchange)
        .await
        .unwrap();
    let used = refresh(&first);
    let replays: [(&str, std::pin::Pin<Box<dyn Future<Output = _> + Send + '_>>); 2] = [
        ("refresh token", Box::pin(issuer.refresh(&used))),
        (
            "authorization code",
            Box::pin(issuer.redeem_code(code.expose_secret(), exchange)),
        ),
    ];
    let reports = [
        "a used-up refresh token was presented again",
        "an authorization code was presented again",
    ];
    for (((what, replay), victim), report) in
        replays.into_iter().zip([&second, &redeemed]).zip(reports)
    {
        store.hold_revoke.store(true, SeqCst);
        tokio::select! {
            answer = replay => panic!("{what}: answered while its revocation was held: {answer:?}"),
            () = store.revoke_entered.notified() => {}
        }
        // The replay's request is gone; the store now answers.
        store.revoke_released.notify_one();
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
        assert!(
            issuer.authenticate(&access(victim)).await.is_err(),
            "{what}: the pair the replay revealed as stolen is live"
        );
        assert!(
            logs.text().contains(report),
            "{what}: the replay was not logged: {}",
            logs.text()
        );
    }
}

/// A clock that read a day ahead once (a bad NTP answer, a VM resumed with a stale offset)
/// and stepped back: the purge it scheduled from that reading must not wait for the wall
/// clock to reach it.
#[tokio::test]
async fn a_clock_stepping_back_does_not_postpone_the_purge_past_one_interval() {
    let (issuer, clock, store) = issuer_with(
        IssuerConfig::default()
            .with_reuse_window(WINDOW)
            .with_purge_every(Some(Duration::from_secs(600))),
    );
    let start = clock.now();
    clock.set(start + time::Duration::days(1));
    issuer.issue("alice", serde_json::json!({})).await.unwrap();
    tokio::task::yield_now().await; // the purge that reading made due
    clock.set(start);
    let first = issuer.issue("bob", serde_json::json!({})).await.unwrap();
    issuer.refresh(&refresh(&first)).await.unwrap();
    tokio::task::yield_now().await;
    let kept = store.len();
    // Past the window and the grace, and more than an interval after the step back.
    clock.advance(time::Duration::seconds(601) + time::Duration::try_from(WINDOW).unwrap());
    issuer.issue("carol", serde_json::json!({})).await.unwrap();
    for _ in 0..100 {
        if store.len() <= kept {
            break;
        }
        tokio::task::yield_now().await;
    }
    assert_eq!(
        store.len(),
        kept,
        "bob's first pair was purged, carol's added"
    );
}

/// With reuse detection on, a thief replays a used-up refresh token on one replica while the
/// client rotates its live one on the other, at the same instant: however they interleave,
/// the replay is refused and no pair of that family is left alive. `a` and `b` share a store
/// and `clock`, with a reuse window and `revoke_on_reuse`.
pub(super) async fn a_replay_racing_the_clients_rotation_leaves_no_live_descendant(
    a: &Issuer,
    b: &Issuer,
    clock: &ManualClock,
) {
    for _ in 0..20 {
        let first = a.issue("alice", serde_json::json!({})).await.unwrap();
        let second = b.refresh(&refresh(&first)).await.unwrap();
        clock.advance(time::Duration::try_from(a.config().reuse_window).unwrap());
        let (thief, client) = (a.clone(), b.clone());
        let (stolen, live) = (refresh(&first), refresh(&second));
        let replay = tokio::spawn(async move { thief.refresh(&stolen).await });
        let rotation = tokio::spawn(async move { client.refresh(&live).await });
        let replay = replay.await.unwrap();
        assert!(
            matches!(replay, Err(IssuerError::UsedRefreshToken)),
            "{replay:?}"
        );
        if let Ok(third) = rotation.await.unwrap() {
            assert!(a.authenticate(&access(&third)).await.is_err());
            assert!(b.refresh(&refresh(&third)).await.is_err());
        }
        assert!(b.authenticate(&access(&second)).await.is_err());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_racing_the_clients_rotation_leaves_no_live_descendant_in_memory() {
    let (issuer, clock, _store) = issuer_with(
        IssuerConfig::default()
            .with_reuse_window(WINDOW)
            .with_revoke_on_reuse(true),
    );
    a_replay_racing_the_clients_rotation_leaves_no_live_descendant(&issuer, &issuer, &clock).await;
}

/// The store fails every purge: writes still succeed, without waiting for the purge, and the
/// purge is tried again an interval later (not at every write), and succeeds once the store
/// does.
#[tokio::test]
async fn a_failing_purge_blocks_no_write_and_is_tried_again_an_interval_later() {
    use std::sync::atomic::Ordering::SeqCst;
    let store = Arc::new(Faulty::default());
    store.fail_purges.store(true, SeqCst);
    let clock = ManualClock::new(datetime!(2026-01-01 00:00 UTC));
    let config = IssuerConfig::default().with_purge_every(Some(Duration::from_secs(600)));
    let issuer = Issuer::new(store.clone(), Arc::new(clock.clone()), config);
    let settle = async || {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    };
    let mut pair = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    clock.advance(time::Duration::seconds(600));
    pair = issuer.refresh(&refresh(&pair)).await.unwrap();
    settle().await;
    assert_eq!(store.purges.load(SeqCst), 1);
    for _ in 0..5 {
        pair = issuer.refresh(&refresh(&pair)).await.unwrap();
    }
    settle().await;
    assert_eq!(store.purges.load(SeqCst), 1, "not again before an interval");
    store.fail_purges.store(false, SeqCst);
    clock.advance(time::Duration::seconds(600) + time::Duration::try_from(PURGE_GRACE).unwrap());
    issuer.refresh(&refresh(&pair)).await.unwrap();
    settle().await;
    assert_eq!(store.purges.load(SeqCst), 2);
    // Kept: the live pair, and the one this rotation replaced (dead for less than the
    // grace: its token is still recognised as used up).
    assert_eq!(
        store.inner.len(),
        2,
        "every pair rotated more than the grace ago forgotten"
    );
}

/// Two replicas on one store whose clocks are 2 s apart (`a` ahead of `b`), well within
/// [`PURGE_GRACE`], rotating one family twice within a second: the second rotation (on `b`)
/// is recorded as earlier than the first (on `a`), so a purge whose horizon falls between
/// the two forgets the middle pair and keeps the first. The first refresh token, replayed
/// afterwards, is still recognised as used up, but `revoke_on_reuse` can no longer follow
/// the chain to the live pair and revokes nothing: the thief's replay goes unpunished. A
/// clock stepped back between two rotations on one issuer does the same.
pub(super) async fn a_purge_never_breaks_the_chain_from_a_kept_used_up_token_to_its_live_pair(
    a: &Issuer,
    a_clock: &ManualClock,
    b: &Issuer,
    b_clock: &ManualClock,
) {
    let first = a.issue("alice", serde_json::json!({})).await.unwrap();
    let second = a.refresh(&refresh(&first)).await.unwrap();
    a_clock.advance(time::Duration::seconds(1));
    b_clock.advance(time::Duration::seconds(1));
    let third = b.refresh(&refresh(&second)).await.unwrap();
    // The grace later, less the skew: the middle pair looks dead, the first not yet.
    a_clock.advance(
        time::Duration::try_from(PURGE_GRACE).unwrap() - time::Duration::milliseconds(1500),
    );
    a.purge().await.unwrap();

    let replay = a.refresh(&refresh(&first)).await;
    assert!(
        matches!(replay, Err(IssuerError::UsedRefreshToken)),
        "setup: the first token is still recognised as used up: {replay:?}"
    );
    assert!(
        a.authenticate(&access(&third)).await.is_err(),
        "a used-up refresh token was replayed with revoke_on_reuse, yet the live pair it led to survives"
    );
}

/// A clock stepped back after a pair was issued, then two rotations: the first is recorded
/// replaced no earlier than it was issued, and so must be the second, although its pair was
/// minted at the stepped-back instant. Before, the second was recorded replaced at that
/// instant, earlier than the first, so a purge whose horizon fell between the two forgot the
/// middle pair and kept the first: the first refresh token replayed was recognised as used
/// up, yet `revoke_on_reuse` could not follow the chain to the live pair.
#[tokio::test]
async fn a_purge_never_breaks_the_chain_after_the_clock_stepped_back_before_two_rotations() {
    let (issuer, clock, _store) = issuer_with(
        IssuerConfig::default()
            .with_revoke_on_reuse(true)
            .with_purge_every(None),
    );
    let issued_at = clock.now();
    let first = issuer.issue("alice", serde_json::json!({})).await.unwrap();
    clock.set(issued_at - time::Duration::minutes(10));
    let second = issuer.refresh(&refresh(&first)).await.unwrap();
    let third = issuer.refresh(&refresh(&second)).await.unwrap();
    // The horizon of this purge falls between the stepped-back instant and the first issue.
    clock.set(issued_at - time::Duration::minutes(4));
    issuer.purge().await.unwrap();

    let replay = issuer.refresh(&refresh(&first)).await;
    assert!(
        matches!(replay, Err(IssuerError::UsedRefreshToken)),
        "setup: the first token is still recognised as used up: {replay:?}"
    );
    assert!(
        issuer.authenticate(&access(&third)).await.is_err(),
        "a used-up refresh token was replayed with revoke_on_reuse, yet the live pair it led to survives"
    );
}

#[tokio::test]
async fn a_purge_never_breaks_the_chain_from_a_kept_used_up_token_to_its_live_pair_in_memory() {
    let config = IssuerConfig::default()
        .with_revoke_on_reuse(true)
        .with_purge_every(None);
    let store = Arc::new(MemoryIssuerStore::new());
    let a_clock = ManualClock::new(datetime!(2026-01-01 00:00:02 UTC));
    let b_clock = ManualClock::new(datetime!(2026-01-01 00:00:00 UTC));
    let a = Issuer::new(store.clone(), Arc::new(a_clock.clone()), config.clone());
    let b = Issuer::new(store, Arc::new(b_clock.clone()), config);
    a_purge_never_breaks_the_chain_from_a_kept_used_up_token_to_its_live_pair(
        &a, &a_clock, &b, &b_clock,
    )
    .await;
}
