//! Log capture for the unit tests: one global subscriber, installed once, that hands each
//! line to the capture of the thread that wrote it.
//!
//! Not a thread-local default (`tracing::subscriber::set_default`): registering and dropping
//! one while other tests log races with the callsites' cached interest and with the global
//! maximum level, and a test's own warning could then be filtered out. Run a capturing test
//! on a current-thread runtime, so that the tasks it spawns log on its thread.

use std::sync::{Arc, Mutex};

/// What `tracing` wrote on the capturing thread, at every level, since the capture began.
#[derive(Clone, Default)]
pub(crate) struct Captured(Arc<Mutex<Vec<u8>>>);

impl Captured {
    pub(crate) fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

thread_local! {
    static CAPTURE: std::cell::RefCell<Option<Captured>> = const { std::cell::RefCell::new(None) };
    /// Text whose next line written on this thread panics ([`panic_on_line`]).
    static PANIC_ON: std::cell::RefCell<Option<String>> = const { std::cell::RefCell::new(None) };
}

/// Writes into the capture of the current thread, if it has one.
struct ThreadWriter;

impl std::io::Write for ThreadWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let line = String::from_utf8_lossy(buf);
        let panics = PANIC_ON.with(|text| {
            let mut text = text.borrow_mut();
            let found = text.as_deref().is_some_and(|text| line.contains(text));
            found && text.take().is_some()
        });
        if panics {
            panic!("the subscriber panicked");
        }
        CAPTURE.with(|slot| {
            if let Some(captured) = &*slot.borrow() {
                captured.0.lock().unwrap().extend_from_slice(buf);
            }
        });
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Captures this thread's `tracing` output (and `log` records) from now on (each test runs on a thread of its
/// own).
pub(crate) fn capture_logs() -> Captured {
    static INSTALL: std::sync::Once = std::sync::Once::new();
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(|| ThreadWriter)
            .finish();
        // With the `log` records of dependencies (tokio-postgres', say) forwarded, as an
        // application's `tracing_subscriber::fmt().init()` has them.
        tracing_subscriber::util::SubscriberInitExt::try_init(subscriber)
            .expect("no other global subscriber in these tests");
    });
    // Whatever a callsite cached before the subscriber was installed.
    tracing::callsite::rebuild_interest_cache();
    let captured = Captured::default();
    CAPTURE.with(|slot| *slot.borrow_mut() = Some(captured.clone()));
    captured
}

/// Makes the next line holding `text` that `tracing` writes on this thread, once captured
/// ([`capture_logs`]), panic as it is written, as an application's subscriber (a layer of
/// its own) may.
pub(crate) fn panic_on_line(text: &str) {
    PANIC_ON.with(|slot| *slot.borrow_mut() = Some(text.to_owned()));
}
