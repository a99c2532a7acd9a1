//! A `tracing` capture that cannot drop lines: one global subscriber, installed once per test
//! process, that hands each line to the capture of the runtime whose thread wrote it.
//!
//! Why not `tracing::subscriber::with_default`: a thread-local default leaves the other threads
//! without a subscriber. A callsite first reached there can cache the interest "never" (even
//! `rebuild_interest_cache` races with a concurrent test registering one), and the runtime's own
//! threads (multi-thread workers, the blocking pool behind `spawn_blocking`, used by the file
//! store) never see the default at all. Here the one subscriber enables every callsite at every
//! level, whichever thread asks first, and routing is by thread: the thread inside
//! [`Captured::block_on`] and every thread the capture's runtime starts (`on_thread_start`,
//! blocking pool included) write into that capture; a thread of no capture writes nowhere.

use std::cell::RefCell;
use std::future::Future;
use std::io::Write;
use std::sync::{Arc, Mutex, Once};

use tracing_subscriber::util::SubscriberInitExt;

use crate::lock;

thread_local! {
    /// The capture this thread writes into, if any.
    static ROUTE: RefCell<Option<LogBuffer>> = const { RefCell::new(None) };
}

/// Installs the global subscriber, once per process. A binary that captures calls this at the
/// start of every test (the first to come installs it, the others wait for it), so no callsite
/// is ever registered while there is no subscriber to be interested in it.
pub fn install() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        tracing_subscriber::fmt()
            .with_writer(|| RoutedWriter(route()))
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .finish()
            // Also turns `log` records (reqwest, hyper-util, tokio-postgres) into events.
            .try_init()
            .expect("the only global subscriber of this test binary");
    });
}

/// A tokio runtime whose every thread, and the thread that calls [`block_on`](Self::block_on),
/// logs into one [`LogBuffer`], at every level with every span.
pub struct Captured {
    runtime: tokio::runtime::Runtime,
    logs: LogBuffer,
}

impl Captured {
    /// Builds the runtime from `builder` (current-thread or multi-thread, paused or not).
    pub fn new(builder: &mut tokio::runtime::Builder) -> Self {
        install();
        // Belt and braces: whatever a thread of no capture registered before `install`.
        tracing::callsite::rebuild_interest_cache();
        let logs = LogBuffer::default();
        let own = logs.clone();
        let runtime = builder
            .on_thread_start(move || {
                set_route(Some(own.clone()));
            })
            .on_thread_stop(|| {
                set_route(None);
            })
            .build()
            .expect("a runtime");
        Self { runtime, logs }
    }

    /// Runs `future` to completion on this runtime, the calling thread logging into the capture.
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        struct Restore(Option<LogBuffer>);
        impl Drop for Restore {
            fn drop(&mut self) {
                set_route(self.0.take());
            }
        }
        let _restore = Restore(set_route(Some(self.logs.clone())));
        self.runtime.block_on(future)
    }

    /// Everything captured so far.
    pub fn text(&self) -> String {
        self.logs.text()
    }
}

/// Lines in memory.
#[derive(Clone, Default)]
pub struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Everything written so far.
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }
}

/// Whether one line of `text` contains every one of `parts` (a positive control: the line the
/// test expects is there before anything is concluded from the lines that are not).
pub fn has_line(text: &str, parts: &[&str]) -> bool {
    text.lines()
        .any(|line| parts.iter().all(|part| line.contains(part)))
}

fn route() -> Option<LogBuffer> {
    ROUTE
        .try_with(|route| route.borrow().clone())
        .ok()
        .flatten()
}

/// Sets this thread's capture; returns the one it replaces.
fn set_route(to: Option<LogBuffer>) -> Option<LogBuffer> {
    ROUTE.try_with(|route| route.replace(to)).ok().flatten()
}

/// One line's writer: into the capture of the thread that writes it, or nowhere.
struct RoutedWriter(Option<LogBuffer>);

impl Write for RoutedWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if let Some(logs) = &self.0 {
            lock(&logs.0).extend_from_slice(buf);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
