//! The snapshot thread: wakes every `min(interval, MAX_WAKE)`, does its per-wake work,
//! and takes a snapshot whenever an interval has passed since the last one was due.
//!
//! It sleeps on a condition variable, so [`Snapshotter::stop`] wakes it at once; a
//! stop waits only for a write in progress, never for the rest of an interval.

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::core::sync::LockUnpoisoned;

/// The longest the thread sleeps between wakes, whatever the interval: per-wake work
/// (open-span sampling) sees the run at least this often.
pub(crate) const MAX_WAKE: Duration = Duration::from_secs(1);

/// What the thread does; the seam between its timing (here) and its work.
pub(crate) trait Rounds: Send + 'static {
    /// Runs at every wake, at most [`MAX_WAKE`] apart, before a snapshot that is due.
    fn on_wake(&mut self);
    /// Takes snapshot `sequence` (1, 2, ...: one more each time).
    fn snapshot(&mut self, sequence: u64);
}

/// The thread taking snapshots, and the handle that stops it.
pub(crate) struct Snapshotter {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    stop: Mutex<bool>,
    wake: Condvar,
    /// The sequence number of the last snapshot taken (0: none yet).
    last: AtomicU64,
    /// What a round panicked with, when one did (the thread has ended then).
    panic: Mutex<Option<String>>,
}

/// What [`Snapshotter::stop`] leaves behind.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Stopped {
    /// The sequence number of the last snapshot taken (0: none); the final write takes
    /// the next.
    pub(crate) last_sequence: u64,
    /// The message of a panic that ended the snapshots early.
    pub(crate) panic: Option<String>,
}

impl Snapshotter {
    /// Starts the thread: `rounds` is woken every `min(interval, MAX_WAKE)` and takes
    /// a snapshot every `interval`, the first one `interval` from now.
    pub(crate) fn start(interval: Duration, rounds: impl Rounds) -> std::io::Result<Snapshotter> {
        let shared = Arc::new(Shared {
            stop: Mutex::new(false),
            wake: Condvar::new(),
            last: AtomicU64::new(0),
            panic: Mutex::new(None),
        });
        let theirs = shared.clone();
        let thread = std::thread::Builder::new()
            .name("spanlab-snapshots".into())
            .spawn(move || {
                let mut rounds = rounds;
                let run = catch_unwind(AssertUnwindSafe(|| run(&theirs, interval, &mut rounds)));
                if let Err(panic) = run {
                    *theirs.panic.lock_unpoisoned() = Some(panic_message(panic.as_ref()));
                }
            })?;
        Ok(Snapshotter {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Stops the thread and waits for it (for a snapshot being written, not for the
    /// interval to end). Later calls only report the same.
    pub(crate) fn stop(&self) -> Stopped {
        *self.shared.stop.lock_unpoisoned() = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.lock_unpoisoned().take() {
            // The thread catches its own panics: joining cannot fail but for a panic in
            // storing one, and then there is nothing more to learn.
            let _ = thread.join();
        }
        Stopped {
            last_sequence: self.shared.last.load(Ordering::Acquire),
            panic: self.shared.panic.lock_unpoisoned().clone(),
        }
    }
}

#[cfg(test)]
impl Snapshotter {
    /// A panic that ended the thread, without stopping it (tests).
    pub(super) fn shared_panic(&self) -> Option<String> {
        self.shared.panic.lock_unpoisoned().clone()
    }
}

impl Drop for Snapshotter {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Shared {
    /// Sleeps up to `timeout`; `true` once a stop was asked for.
    fn sleep(&self, timeout: Duration) -> bool {
        let stop = self.stop.lock_unpoisoned();
        let (stop, _) = self
            .wake
            .wait_timeout_while(stop, timeout, |stop| !*stop)
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        *stop
    }
}

/// The loop: sleep, wake, snapshot when due, until stopped.
fn run(shared: &Shared, interval: Duration, rounds: &mut impl Rounds) {
    let mut due = Instant::now() + interval;
    let mut sequence = 0;
    loop {
        if shared.sleep(next_sleep(Instant::now(), due, interval)) {
            return;
        }
        // The one place for work done at every wake.
        rounds.on_wake();
        let now = Instant::now();
        if now >= due {
            sequence += 1;
            rounds.snapshot(sequence);
            shared.last.store(sequence, Ordering::Release);
            due = next_due(due, Instant::now(), interval);
        }
    }
}

/// How long to sleep: until the next wake (`MAX_WAKE` at most) or the next snapshot,
/// whichever comes first.
pub(super) fn next_sleep(now: Instant, due: Instant, interval: Duration) -> Duration {
    interval
        .min(MAX_WAKE)
        .min(due.saturating_duration_since(now))
}

/// When the snapshot after one that was `due` is due: an interval later, so that the
/// cadence does not drift by the time each write takes — unless that is already past
/// (a write slower than the interval, a suspended process), and then an interval from
/// now, rather than a burst of writes catching up.
pub(super) fn next_due(due: Instant, now: Instant, interval: Duration) -> Instant {
    let next = due + interval;
    if next > now {
        next
    } else {
        now + interval
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    panic
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_else(|| "(no message)".into())
}
