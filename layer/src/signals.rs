//! Opt-in: write the report when the process gets SIGINT or SIGTERM, then let the
//! signal end the process as it would have (exit status 130 / 143 in a shell).
//!
//! A 12-hour run stopped with Ctrl-C still gets its report. The report is written on a
//! dedicated thread (not inside the signal handler, where almost nothing is safe), and
//! the default action is restored and re-raised afterwards.

use std::io;
use std::sync::Arc;
use std::thread::JoinHandle;

use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::iterator::{Handle, Signals};

/// Watches SIGINT/SIGTERM until dropped; dropping it restores the default handlers.
pub(crate) struct SignalWatcher {
    handle: Handle,
    thread: Option<JoinHandle<()>>,
}

impl SignalWatcher {
    /// Starts watching; on the first signal, `report` runs (on the watcher's thread),
    /// then the signal takes its default action.
    pub(crate) fn start(report: Arc<dyn Fn() + Send + Sync>) -> io::Result<Self> {
        let mut signals = Signals::new([SIGINT, SIGTERM])?;
        let handle = signals.handle();
        let thread = std::thread::Builder::new()
            .name("spanlab-signals".into())
            .spawn(move || {
                if let Some(signal) = signals.forever().next() {
                    report();
                    drop(signals); // unregister, so that the re-raised signal is not caught again
                    let _ = signal_hook::low_level::emulate_default_handler(signal);
                    // Only reached if the default action does not end the process.
                    std::process::exit(128 + signal);
                }
            })?;
        Ok(SignalWatcher {
            handle,
            thread: Some(thread),
        })
    }
}

impl Drop for SignalWatcher {
    fn drop(&mut self) {
        self.handle.close();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}
