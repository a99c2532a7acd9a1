//! Resource bounds a hostile or careless caller, or a long-running deployment, would meet:
//! what the manager keeps per name, per cycle and per refresh returns to its baseline, and
//! nothing it spawns outlives its use.

use super::*;

#[tokio::test(start_paused = true)]
async fn handles_on_names_without_tokens_leave_nothing_behind_once_dropped() {
    let h = harness(|_| {});
    h.seed("real", HOUR).await;
    for i in 0..3 * name::UNKNOWN_NAMES_KEPT {
        let name = format!("ghost-{i}");
        // Taken and dropped unused, or used once: a web service that makes a `BearerAuth`
        // for a user id from its request does both.
        let handle = h.manager.session(&name);
        if i % 2 == 0 {
            assert!(matches!(
                handle.access_token().await,
                Err(Error::NoTokens { .. })
            ));
        }
        let clone = handle.clone();
        drop(handle);
        drop(clone);
    }
    assert_eq!(
        h.manager.inner.sessions.len(),
        1,
        "a dropped handle's session without tokens stays in the map"
    );
    assert!(h.manager.inner.unknown.len() <= name::UNKNOWN_NAMES_KEPT);
    assert_eq!(
        h.manager
            .access_token("real")
            .await
            .unwrap()
            .expose_secret(),
        "at-0"
    );
    assert_eq!(h.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn sessions_removed_while_a_handle_held_them_leave_the_map_once_it_is_dropped() {
    let h = harness(|_| {});
    for i in 0..2_000 {
        let name = format!("s-{i}");
        h.seed(&name, HOUR).await;
        let handle = h.manager.session(&name);
        assert_eq!(handle.access_token().await.unwrap().expose_secret(), "at-0");
        h.manager.remove(&name).await.unwrap();
        drop(handle);
    }
    assert_eq!(h.manager.inner.sessions.len(), 0);
    assert!(h.store.is_empty());
    assert_eq!(h.calls(), 0);
}

#[tokio::test(start_paused = true)]
async fn names_whose_callers_gave_up_during_the_lookup_leave_nothing_behind() {
    let h = harness(|_| {});
    let store = Arc::new(Hooked::<HeldCalls>::default());
    let manager = manager_over(&h, store.clone());
    const NAMES: u32 = 200;
    let gates: Vec<_> = (0..NAMES).map(|_| store.hold(Call::Load)).collect();
    for i in 0..NAMES {
        // A caller with a deadline of its own (a web request's): it gives up while the
        // store is looked at; the lookup goes on in its own task and finds nothing.
        let name = format!("ghost-{i}");
        let asked = manager.access_token(&name);
        assert!(
            tokio::time::timeout(Duration::from_millis(10), asked)
                .await
                .is_err()
        );
    }
    store.until_reached(NAMES).await;
    for gate in gates {
        gate.add_permits(1);
    }
    assert!(until(|| manager.inner.tasks.is_empty()).await);
    assert_eq!(
        manager.inner.sessions.len(),
        0,
        "a name found without tokens stays in the map once its caller gave up"
    );
    assert!(manager.inner.unknown.len() <= name::UNKNOWN_NAMES_KEPT);
}
