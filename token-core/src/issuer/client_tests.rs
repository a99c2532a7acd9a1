//! Client binding scenarios (RFC 6749 section 6), run on every issuer store (the memory store
//! in `tests.rs`, PostgreSQL with two replicas in `postgres.rs`): `a` and `b` share one store
//! and `clock`, with a reuse window and `revoke_on_reuse`.

use super::tests::refresh as refresh_of;
use super::*;
use crate::clock::ManualClock;

const CLIENT: &str = "app-1";
const OTHER: &str = "app-2";

fn access_of(issued: &Issued) -> String {
    issued.tokens.access_token.expose_secret().to_owned()
}

/// A pair `CLIENT` obtained by exchanging an authorization code on `a`.
async fn exchanged(a: &Issuer) -> Issued {
    let code = a.issue_code(CodeGrant::new(CLIENT, "alice")).await.unwrap();
    a.redeem_code(code.expose_secret(), CodeExchange::new(CLIENT))
        .await
        .unwrap()
}

/// What a refusal shows a client: the error's `Debug` and message.
fn shown(result: Result<Issued, IssuerError>) -> String {
    let error = result.expect_err("refused");
    format!("{error:?}: {error}")
}

/// The client a store recorded for the pair of `issued`.
async fn client_of(issuer: &Issuer, issued: &Issued) -> Option<String> {
    let hash = TokenHash::of(&refresh_of(issued));
    let record = issuer.store().find_by_refresh(&hash).await.unwrap();
    record.expect("the store has the pair").client
}

/// A pair from a code exchange (or `issue_for`) is bound to its client, and every successor
/// with it: another client, or none, is refused exactly as for an unknown token, and nothing
/// rotates. A pair issued without a client is refreshed by any.
pub(super) async fn a_pair_is_refreshed_only_by_the_client_it_was_issued_to(
    a: &Issuer,
    b: &Issuer,
) {
    let unknown = shown(a.refresh_for("rt_unknown", OTHER).await);
    let first = exchanged(a).await;
    assert_eq!(client_of(b, &first).await.as_deref(), Some(CLIENT));
    for refused in [
        b.refresh_for(&refresh_of(&first), OTHER).await,
        b.refresh_for(&refresh_of(&first), "").await,
        b.refresh(&refresh_of(&first)).await,
    ] {
        assert!(matches!(refused, Err(IssuerError::InvalidRefreshToken)));
        assert_eq!(
            shown(refused),
            unknown,
            "the same answer as an unknown token"
        );
    }
    let stored = b
        .store()
        .find_by_refresh(&TokenHash::of(&refresh_of(&first)))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(stored.state, PairState::Active, "nothing rotated");
    a.authenticate(&access_of(&first)).await.unwrap();

    let second = b.refresh_for(&refresh_of(&first), CLIENT).await.unwrap();
    assert!(!second.reused);
    assert_eq!(second.subject, "alice");
    assert_eq!(
        client_of(a, &second).await.as_deref(),
        Some(CLIENT),
        "the successor keeps the binding"
    );
    assert!(matches!(
        a.refresh_for(&refresh_of(&second), OTHER).await,
        Err(IssuerError::InvalidRefreshToken)
    ));
    a.refresh_for(&refresh_of(&second), CLIENT).await.unwrap();

    let own = a
        .issue_for(CLIENT, CLIENT, serde_json::json!({}))
        .await
        .unwrap();
    assert_eq!(client_of(b, &own).await.as_deref(), Some(CLIENT));
    assert!(matches!(
        b.refresh_for(&refresh_of(&own), OTHER).await,
        Err(IssuerError::InvalidRefreshToken)
    ));
    b.refresh_for(&refresh_of(&own), CLIENT).await.unwrap();

    let unbound = a.issue("bob", serde_json::json!({})).await.unwrap();
    assert_eq!(client_of(b, &unbound).await, None);
    let next = b.refresh_for(&refresh_of(&unbound), OTHER).await.unwrap();
    assert_eq!(client_of(a, &next).await, None, "still bound to no client");
    let next = a.refresh(&refresh_of(&next)).await.unwrap();
    a.refresh_for(&refresh_of(&next), CLIENT).await.unwrap();
}

/// The client's answer was lost: another client presenting the old token inside the reuse
/// window gets nothing (not the successor), and the client still gets its pair again. Past
/// the window, and once the successor was rotated, the other client's replays of used-up
/// tokens are unknown tokens, not reuse: the client's live pair is not revoked.
pub(super) async fn a_wrong_client_gets_no_reuse_answer_and_revokes_nothing(
    a: &Issuer,
    b: &Issuer,
    clock: &ManualClock,
) {
    assert!(a.config().revoke_on_reuse && !a.config().reuse_window.is_zero());
    let first = exchanged(a).await;
    let lost = a.refresh_for(&refresh_of(&first), CLIENT).await.unwrap();

    assert!(matches!(
        b.refresh_for(&refresh_of(&first), OTHER).await,
        Err(IssuerError::InvalidRefreshToken)
    ));
    let again = b.refresh_for(&refresh_of(&first), CLIENT).await.unwrap();
    assert!(again.reused);
    assert_eq!(again.tokens, lost.tokens, "the client gets its pair");

    let window = time::Duration::try_from(a.config().reuse_window).unwrap();
    clock.advance(window + time::Duration::seconds(1));
    let live = a.refresh_for(&refresh_of(&lost), CLIENT).await.unwrap();
    for used in [refresh_of(&first), refresh_of(&lost)] {
        assert!(matches!(
            b.refresh_for(&used, OTHER).await,
            Err(IssuerError::InvalidRefreshToken)
        ));
        assert!(matches!(
            a.refresh(&used).await,
            Err(IssuerError::InvalidRefreshToken)
        ));
    }
    a.authenticate(&access_of(&live)).await.unwrap();
    let live = b.refresh_for(&refresh_of(&live), CLIENT).await.unwrap();
    a.authenticate(&access_of(&live)).await.unwrap();

    // The client's own replay of a used-up token is theft detection, as before.
    assert!(matches!(
        a.refresh_for(&refresh_of(&first), CLIENT).await,
        Err(IssuerError::UsedRefreshToken)
    ));
    assert!(b.authenticate(&access_of(&live)).await.is_err());
}

/// RFC 7009 section 2.1: a client revokes only what was issued to it. Another client (or
/// an empty one) presenting the access token, the refresh token or a rotated refresh token
/// still inside its reuse window revokes nothing and gets the answer an unknown token gets;
/// the client itself revokes the pair. A pair issued without a client is revoked by any.
pub(super) async fn a_pair_is_revoked_only_by_the_client_it_was_issued_to(a: &Issuer, b: &Issuer) {
    let first = exchanged(a).await;
    let live = a.refresh_for(&refresh_of(&first), CLIENT).await.unwrap();
    let unknown = b.revoke_for("rt_unknown", OTHER).await.unwrap();
    for token in [access_of(&live), refresh_of(&live), refresh_of(&first)] {
        for other in [OTHER, ""] {
            assert_eq!(b.revoke_for(&token, other).await.unwrap(), unknown);
        }
    }
    a.authenticate(&access_of(&live)).await.unwrap();
    let live = b.refresh_for(&refresh_of(&live), CLIENT).await.unwrap();
    assert!(b.revoke_for(&access_of(&live), CLIENT).await.unwrap());
    assert!(a.authenticate(&access_of(&live)).await.is_err());
    assert!(matches!(
        a.refresh_for(&refresh_of(&live), CLIENT).await,
        Err(IssuerError::InvalidRefreshToken)
    ));

    let open = a.issue("bob", serde_json::json!({})).await.unwrap();
    assert!(b.revoke_for(&refresh_of(&open), OTHER).await.unwrap());
    assert!(a.authenticate(&access_of(&open)).await.is_err());
}
