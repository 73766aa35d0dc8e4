//! Snapshots: the report files rewritten during the run, so that a run that never
//! reaches its end — killed by the OOM killer, a scheduler's time limit, a preempted
//! node — still leaves a report at most one interval old.
//!
//! Every write of the run's report outputs goes through one [`ReportWriter`]: the
//! periodic snapshots, which a background [`Snapshotter`] thread takes every
//! `SPANLAB_SNAPSHOT_INTERVAL` (see [`crate::config`]), and the final write the
//! [`Guard`](crate::Guard) makes at exit. Each write renders a report made from the
//! live aggregates at that moment ([`Profile::report`](crate::Profile::report), which
//! reads every thread's accumulators without stopping or locking the threads doing the
//! work) and replaces each configured file — JSON, folded stacks, the text report when
//! it goes to a file — atomically (temporary file, then rename; see `files.rs`).
//!
//! # Invariants
//!
//! * **A reader never sees a partial file**: every file is replaced whole by a rename,
//!   never written in place; a write that fails (full disk, a vanished directory)
//!   leaves the previous snapshot as it was.
//! * **Sequence numbers increase strictly per file**: write `N` of the run stamps every
//!   file it writes with `"sequence": N` (1, 2, ...), and `N` never repeats. A failed
//!   write of a file leaves a gap in that file's numbers, never a step back.
//! * **The final write is the last**: the guard stops the snapshot thread — and waits
//!   for a write in progress to finish — before it makes the final write, which is
//!   stamped `"final": true` with the next sequence number. No snapshot lands after it.
//! * **Stopping is prompt**: the thread sleeps on a condition variable, never more than
//!   a second at a time (`thread::MAX_WAKE`), and a stop wakes it at once.
//! * **Failures are counted, not fatal**: a file that cannot be written costs one line
//!   on stderr (its first failure only, not one per interval) and a warning, in every
//!   later report, saying how many writes of it failed so far; the run goes on. The
//!   thread itself never panics out: a panic inside a round ends the snapshots with a
//!   warning in the final report.
//! * **Nothing on the hot path**: the span callbacks never see the snapshot thread;
//!   it only reads aggregates, as any [`Profile`](crate::Profile) reader does.
//!
//! A process killed while a snapshot is being written leaves the previous snapshot in
//! place and, beside it, its temporary file (`.NAME.spanlab-tmp.PID`).

mod thread;
mod writer;

pub(crate) use thread::{Rounds, Snapshotter};
pub(crate) use writer::{ReportWriter, Stamp};

use std::sync::Arc;

use crate::sinks::report::Report;

/// The snapshot thread's work: at every wake, `watch` (the open-span sampling, which
/// times spans still in their first entry and says stalls); at each snapshot, a report
/// written everywhere the writer has a file.
pub(crate) struct SnapshotRounds<F, W> {
    make_report: F,
    watch: W,
    writer: Arc<ReportWriter>,
}

impl<F, W> SnapshotRounds<F, W>
where
    F: Fn() -> Report + Send + 'static,
    W: Fn() + Send + 'static,
{
    /// Rounds that call `watch()` at every wake and write `make_report()` through
    /// `writer` at every snapshot.
    pub(crate) fn new(make_report: F, watch: W, writer: Arc<ReportWriter>) -> Self {
        SnapshotRounds {
            make_report,
            watch,
            writer,
        }
    }
}

impl<F, W> Rounds for SnapshotRounds<F, W>
where
    F: Fn() -> Report + Send + 'static,
    W: Fn() + Send + 'static,
{
    fn on_wake(&mut self) {
        // Every wake, at most a second apart, whether or not a snapshot is due: the
        // precision of a first-seen open time, and how late a stall can be said.
        (self.watch)();
    }

    fn snapshot(&mut self, sequence: u64) {
        if !self.writer.has_files() {
            return;
        }
        let mut report = (self.make_report)();
        self.writer.write(&mut report, Stamp::Snapshot(sequence));
    }
}

#[cfg(test)]
mod tests;
