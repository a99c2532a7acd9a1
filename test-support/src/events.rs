//! The manager's events as a test sees them: recorded by a hook, or drained from a
//! subscription.

use std::sync::{Arc, Mutex, MutexGuard};

use token_core::manager::Event;
use tokio::sync::broadcast;

use crate::lock;

/// Every event of a manager, in order, recorded by [`hook`](Self::hook) (which, unlike a
/// subscription, cannot lag and drop one).
#[derive(Clone, Debug, Default)]
pub struct EventLog(Arc<Mutex<Vec<Event>>>);

impl EventLog {
    /// The hook to hand to `TokenManagerBuilder::on_event`.
    pub fn hook(&self) -> impl Fn(&Event) + Send + Sync + 'static {
        let events = self.0.clone();
        move |event| lock(&events).push(event.clone())
    }

    /// The events so far.
    pub fn events(&self) -> MutexGuard<'_, Vec<Event>> {
        lock(&self.0)
    }

    /// How many events so far are re-auth signals.
    pub fn reauth_count(&self) -> usize {
        self.events()
            .iter()
            .filter(|event| matches!(event, Event::ReauthRequired(_)))
            .count()
    }
}

/// Every event a subscription has received and not yet handed out.
pub fn drain(events: &mut broadcast::Receiver<Event>) -> Vec<Event> {
    std::iter::from_fn(|| events.try_recv().ok()).collect()
}

/// Fails the test if one of `events` is a re-auth signal.
#[track_caller]
pub fn assert_no_reauth(events: &[Event]) {
    for event in events {
        assert!(!matches!(event, Event::ReauthRequired(_)), "{event:?}");
    }
}
