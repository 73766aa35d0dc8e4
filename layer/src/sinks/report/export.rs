//! The export section of a report: where every finished span went.

use serde::{Deserialize, Serialize};

/// What OTLP export did with the run's spans (present when export is on).
///
/// Every span that finished in a sampled trace is counted once in `finished` and then
/// in exactly one of the other four, so `exported + dropped + failed + pending ==
/// finished` always holds.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ExportReport {
    /// `"grpc http://collector:4317"`, `"http/protobuf …"` or `"custom exporter"`.
    pub target: String,
    /// Spans finished in sampled traces.
    pub finished: u64,
    /// Accepted by the receiver.
    pub exported: u64,
    /// Not queued: the queue was full (the program never waits), or export had stopped.
    pub dropped: u64,
    /// Refused by the receiver, or unreachable, after the retries.
    pub failed: u64,
    /// Queued or in flight when the report was made (after the guard's flush: what the
    /// flush timeout cut off).
    pub pending: u64,
    /// Export requests made (one per batch).
    pub batches: u64,
    /// Of those, the ones that failed after their retries.
    pub failed_batches: u64,
    /// Requests repeated after a retryable failure.
    pub retries: u64,
    /// The last failure's message.
    pub last_error: Option<String>,
}

impl ExportReport {
    /// Adds a later run's export: every count adds (so the invariant above still
    /// holds), a target not listed yet is appended (`"a, b"`), and the later run's last
    /// error wins. `Err` names the count that would overflow.
    pub(crate) fn merge(&mut self, later: &ExportReport) -> Result<(), &'static str> {
        // Taken apart in full, so that a field added later cannot be left out here.
        let ExportReport {
            target,
            finished,
            exported,
            dropped,
            failed,
            pending,
            batches,
            failed_batches,
            retries,
            last_error,
        } = later;
        let add = |a: u64, b: u64, name| a.checked_add(b).ok_or(name);
        let merged = ExportReport {
            target: if self.target.split(", ").any(|t| t == target) {
                self.target.clone()
            } else {
                format!("{}, {target}", self.target)
            },
            finished: add(self.finished, *finished, "finished")?,
            exported: add(self.exported, *exported, "exported")?,
            dropped: add(self.dropped, *dropped, "dropped")?,
            failed: add(self.failed, *failed, "failed")?,
            pending: add(self.pending, *pending, "pending")?,
            batches: add(self.batches, *batches, "batches")?,
            failed_batches: add(self.failed_batches, *failed_batches, "failed_batches")?,
            retries: add(self.retries, *retries, "retries")?,
            last_error: last_error.clone().or_else(|| self.last_error.clone()),
        };
        *self = merged;
        Ok(())
    }

    /// The text report's line(s).
    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let n = super::text::thousands;
        let _ = writeln!(
            out,
            "export ({}): {} spans finished, {} exported in {} batches ({} retries), \
             {} dropped (queue full), {} failed, {} not delivered",
            self.target,
            n(self.finished),
            n(self.exported),
            n(self.batches),
            n(self.retries),
            n(self.dropped),
            n(self.failed),
            n(self.pending),
        );
        if let Some(e) = &self.last_error {
            let _ = writeln!(out, "  last export error: {e}");
        }
    }
}
