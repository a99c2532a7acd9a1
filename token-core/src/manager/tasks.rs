//! Where the manager's own tasks run: refreshes, writes that run to the end, background
//! saves, store calls in tasks of their own, the look for lapsed leases. Each on the runtime
//! of the call that starts it, or all on the one given to
//! [`TokenManagerBuilder::runtime`](super::TokenManagerBuilder::runtime).

use std::future::Future;

use tokio::runtime::Handle;
use tokio::task::JoinHandle;
use tokio_util::task::TaskTracker;

/// The runtime tasks are spawned on: the caller's (`None`) or a given one.
#[derive(Clone, Debug, Default)]
pub(super) struct Runtime(Option<Handle>);

impl Runtime {
    pub(super) fn given(handle: Option<Handle>) -> Self {
        Self(handle)
    }

    /// Spawns `task` there.
    pub(super) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        match &self.0 {
            Some(handle) => handle.spawn(task),
            None => tokio::spawn(task),
        }
    }
}

/// The manager's tasks that `shutdown` waits for, and where they run.
#[derive(Default)]
pub(super) struct Tasks {
    tracker: TaskTracker,
    pub(super) runtime: Runtime,
}

impl Tasks {
    pub(super) fn on(runtime: Runtime) -> Self {
        Self {
            tracker: TaskTracker::new(),
            runtime,
        }
    }

    /// Spawns `task` among those `shutdown` waits for.
    pub(super) fn spawn<F>(&self, task: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.runtime.spawn(self.tracker.track_future(task))
    }
}

/// `close`, `wait`, `len`, `is_closed`: those of the tasks `shutdown` waits for.
impl std::ops::Deref for Tasks {
    type Target = TaskTracker;

    fn deref(&self) -> &TaskTracker {
        &self.tracker
    }
}
