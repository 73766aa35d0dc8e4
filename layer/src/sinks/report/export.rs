//! The export section of a report: where every finished span went.

use serde::{Deserialize, Serialize};

/// What OTLP export did with the run's spans (present when export is on).
///
/// Every span that finished in a sampled trace is counted once in `finished` and then
/// in exactly one of the other five, so `exported + dropped + failed + queued_at_exit +
/// in_flight_at_exit == finished` always holds.
///
/// After the guard's flush, the last two say what the flush could not settle, and
/// they differ in what they mean for the receiver: spans **queued at exit** were never
/// sent (lost for certain); spans **in flight at exit** were sent and not answered
/// (they may have arrived). In a report made before the flush, they are the spans
/// queued and in flight at that moment.
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
    /// Refused by the receiver, or unreachable, after the retries; also the spans the
    /// flush gave up on when the receiver was unreachable (`given_up_at_exit`).
    pub failed: u64,
    /// Never sent: still queued when the report was made (after the flush: what its
    /// timeout cut off). Lost for certain.
    pub queued_at_exit: u64,
    /// Sent, and not answered when the report was made. They may have arrived.
    pub in_flight_at_exit: u64,
    /// Batches sent, one export request each (retries not counted).
    pub batches: u64,
    /// Of those, the ones that failed after their retries, or were given up on.
    pub failed_batches: u64,
    /// Requests sent again, after a retryable failure of the same batch's request.
    /// The receiver got at most `batches + retries` requests.
    pub retries: u64,
    /// How the guard's flush ended.
    pub flush: FlushOutcome,
    /// Of `failed`: the spans queued or in flight when the flush gave up on an
    /// unreachable receiver ([`FlushOutcome::ReceiverDown`]).
    pub given_up_at_exit: u64,
    /// The last failure's message.
    pub last_error: Option<String>,
}

/// How the flush at exit (the guard's drop) ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FlushOutcome {
    /// Not flushed yet: the report was made before the guard's drop.
    #[default]
    NotFlushed,
    /// Every span queued was sent and answered (exported or failed) within the flush
    /// timeout.
    Complete,
    /// The flush timeout ran out: what was queued was never sent, and what was in
    /// flight may still arrive.
    TimedOut,
    /// Every attempt since the last success had failed to connect to the receiver: the
    /// flush gave up at once, and counted what it had not delivered as failed.
    ReceiverDown,
}

impl FlushOutcome {
    /// Of two runs' outcomes, the one a merged report must admit to: an unreachable
    /// receiver over a timeout over a complete flush over none.
    fn worst(self, other: FlushOutcome) -> FlushOutcome {
        let rank = |o: FlushOutcome| match o {
            FlushOutcome::NotFlushed => 0,
            FlushOutcome::Complete => 1,
            FlushOutcome::TimedOut => 2,
            FlushOutcome::ReceiverDown => 3,
        };
        if rank(other) > rank(self) {
            other
        } else {
            self
        }
    }
}

/// The JSON report's export section: the report's fields, and `pending` (the sum of
/// `queued_at_exit` and `in_flight_at_exit`, the one field they replace, kept so that
/// readers of schema 1 still find it).
#[derive(Serialize)]
pub(crate) struct JsonExport<'a> {
    #[serde(flatten)]
    report: &'a ExportReport,
    pending: u64,
}

impl<'a> From<&'a ExportReport> for JsonExport<'a> {
    fn from(report: &'a ExportReport) -> Self {
        JsonExport {
            report,
            pending: report.queued_at_exit + report.in_flight_at_exit,
        }
    }
}

impl ExportReport {
    /// Adds a later run's export: every count adds (so the invariant above still
    /// holds), the flush outcome is the worst of the two, a target not listed yet is appended (`"a, b"`), and the later run's last
    /// error wins. `Err` names the count that would overflow.
    pub(crate) fn merge(&mut self, later: &ExportReport) -> Result<(), &'static str> {
        // Taken apart in full, so that a field added later cannot be left out here.
        let ExportReport {
            target,
            finished,
            exported,
            dropped,
            failed,
            queued_at_exit,
            in_flight_at_exit,
            batches,
            failed_batches,
            retries,
            flush,
            given_up_at_exit,
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
            queued_at_exit: add(self.queued_at_exit, *queued_at_exit, "queued_at_exit")?,
            in_flight_at_exit: add(
                self.in_flight_at_exit,
                *in_flight_at_exit,
                "in_flight_at_exit",
            )?,
            batches: add(self.batches, *batches, "batches")?,
            failed_batches: add(self.failed_batches, *failed_batches, "failed_batches")?,
            retries: add(self.retries, *retries, "retries")?,
            flush: self.flush.worst(*flush),
            given_up_at_exit: add(self.given_up_at_exit, *given_up_at_exit, "given_up_at_exit")?,
            last_error: last_error.clone().or_else(|| self.last_error.clone()),
        };
        *self = merged;
        Ok(())
    }

    /// The text report's lines.
    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let n = super::text::thousands;
        let _ = writeln!(
            out,
            "export ({}): {} spans finished, {} exported, {} dropped (queue full), {} failed, \
             {} queued at exit (never sent: lost for certain), {} in flight at exit (sent, \
             unanswered: may have arrived)",
            self.target,
            n(self.finished),
            n(self.exported),
            n(self.dropped),
            n(self.failed),
            n(self.queued_at_exit),
            n(self.in_flight_at_exit),
        );
        let flush = match self.flush {
            FlushOutcome::NotFlushed => "not flushed yet".to_string(),
            FlushOutcome::Complete => "complete".to_string(),
            FlushOutcome::TimedOut => "timed out (SPANLAB_OTLP_FLUSH_TIMEOUT)".to_string(),
            FlushOutcome::ReceiverDown => format!(
                "receiver unreachable (every attempt since the last success failed to \
                 connect): gave up at once, {} spans counted failed",
                n(self.given_up_at_exit)
            ),
        };
        let _ = writeln!(
            out,
            "  {} batches sent ({} retries, {} failed); flush at exit: {flush}",
            n(self.batches),
            n(self.retries),
            n(self.failed_batches),
        );
        if let Some(e) = &self.last_error {
            let _ = writeln!(out, "  last export error: {e}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_text_says_what_was_lost_and_what_may_have_arrived() {
        let report = ExportReport {
            target: "grpc http://127.0.0.1:4317".into(),
            finished: 12_900,
            exported: 8_192,
            queued_at_exit: 2_660,
            in_flight_at_exit: 2_048,
            batches: 5,
            flush: FlushOutcome::TimedOut,
            ..ExportReport::default()
        };
        let mut text = String::new();
        report.render(&mut text);
        assert!(
            text.contains("2,660 queued at exit (never sent: lost for certain)"),
            "{text}"
        );
        assert!(
            text.contains("2,048 in flight at exit (sent, unanswered: may have arrived)"),
            "{text}"
        );
        assert!(text.contains("5 batches sent (0 retries, 0 failed); flush at exit: timed out"));

        let down = ExportReport {
            failed: 300,
            given_up_at_exit: 300,
            flush: FlushOutcome::ReceiverDown,
            ..report
        };
        let mut text = String::new();
        down.render(&mut text);
        assert!(
            text.contains("receiver unreachable (every attempt since the last success failed to connect): gave up at once, 300 spans counted failed"),
            "{text}"
        );
    }
}
