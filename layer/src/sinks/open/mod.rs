//! Open spans: where is the run now?
//!
//! Every report — the one at exit, and each periodic snapshot of a long run — lists
//! the spans open at the moment it was made ([`Report::open_spans`]): per thread, the
//! open spans from the root down, each with its path, its fields as recorded, and how
//! long it has been open. A span open far longer than its path usually takes is
//! flagged as **stalled**, and said once as a WARN event: a hung `all_reduce` shows up
//! as the open span with the longest time, and with the flag.
//!
//! # Where it comes from
//!
//! * **Which spans are open**: the core's cross-thread readout of each thread's span
//!   table (`core::spans::open`). It sees the 64
//!   newest live spans each thread created; spans beyond those (evicted to the
//!   registry) are not listed. A span is listed under the thread that created it.
//! * **How long**: exact for a span that completed an interval (now minus its first
//!   enter: [`OpenSince::FirstEnter`]). A span still in its first entry has no enter
//!   time another thread can read (the entered-span stack is its thread's private
//!   state), so the watcher remembers when a sample first saw each open span, and such
//!   a span has been open at least since then ([`OpenSince::FirstSeen`]): at most one
//!   sampling period short. Samples are taken by every report and by each snapshot
//!   (`Profile::watch_open_spans`). The memory is bounded: a span no longer open is
//!   forgotten at the next sample. Span ids are the registry's, which carry a
//!   generation: a later span in the same registry slot has another id, so a loop's
//!   spans do not add up to one long-open span.
//! * **Fields**: recorded by the open-span rider ([`rider`]) into a preallocated
//!   per-thread table ([`fields`]) when it is enabled (`Builder::open_span_fields`),
//!   only for spans whose callsite declares fields: spans without fields keep the
//!   core's fast paths. Each span's text is at most 128 bytes (cut with `…`); a thread
//!   with more than 64 spans with fields alive at once leaves the rest unrecorded,
//!   counted in the report's warnings.
//!
//! # Stalls
//!
//! A span is stalled when it has been open longer than `SPANLAB_STALL_FACTOR`
//! (default 100; `Builder::stall_factor`) times its path's p99 **and** longer than 10
//! s. A path with no finished call has no p99, so its spans are never flagged — a root
//! `train` span open for twelve hours is not a stall — but they are listed with their
//! open time. The WARN event (target `spanlab`) is said once per span, from the thread
//! that sampled, through the dispatch the layer was registered with.
//!
//! [`Report::open_spans`]: crate::Report::open_spans

pub(crate) mod config;
pub(crate) mod fields;
pub(crate) mod rider;
pub(crate) mod text;
pub(crate) mod watch;

#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The spans one thread had open when a report was made. See [`crate::report::json`]
/// for the JSON form.
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// let (layer, guard) = spanlab::SpanLab::builder()
///     .report_to(spanlab::ReportTarget::Off)
///     .open_span_fields(true)
///     .build();
/// let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
///
/// let _train = tracing::info_span!("train").entered();
/// let _epoch = tracing::info_span!("epoch", n = 3).entered();
/// let report = guard.report();
/// let thread = &report.open_spans[0];
/// let names: Vec<_> = thread.spans.iter().map(|s| s.path.join(" > ")).collect();
/// assert_eq!(names, ["train", "train > epoch"]);
/// assert_eq!(thread.spans[1].fields, [("n".to_string(), "3".to_string())]);
/// assert_eq!(thread.spans[1].since, spanlab::report::OpenSince::FirstSeen);
/// assert!(!thread.spans[1].stalled);
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OpenThread {
    /// The run this thread belongs to: its index in [`Report::runs`](crate::Report::runs)
    /// (in a merge, the runs of every report, in order).
    pub run: usize,
    /// That run's `RANK`, when it had one: which rank of a job is stuck.
    pub rank: Option<u64>,
    /// The thread's name, where it has one.
    pub thread: Option<String>,
    /// The thread's number in its process (Rust's `ThreadId`).
    pub thread_number: u64,
    /// Its open spans, from the root down: in the tree order of their paths (each
    /// path before its children), the longest open first among spans of one path.
    pub spans: Vec<OpenSpan>,
}

/// One span open when a report was made.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct OpenSpan {
    /// Span names from the root.
    pub path: Vec<String>,
    /// The span's `tracing` id (unique among the spans open at once; a decimal string
    /// in JSON, as it may pass 2^53).
    #[serde(with = "crate::decimal")]
    pub span_id: u64,
    /// Its fields as recorded, `(name, value)`, values formatted (strings unquoted);
    /// empty when fields are not recorded ([`Builder::open_span_fields`] is off, the
    /// callsite declares none, or its thread had 64 spans with fields open already).
    ///
    /// [`Builder::open_span_fields`]: crate::Builder::open_span_fields
    pub fields: Vec<(String, String)>,
    /// Some of the fields were cut to fit: the last value (it then ends with `…`), or
    /// fields after it.
    pub fields_cut: bool,
    /// How long it has been open (see [`OpenSpan::since`]).
    #[serde(rename = "open_ns", with = "ns")]
    pub open: Duration,
    /// What [`OpenSpan::open`] is measured from.
    pub since: OpenSince,
    /// Its path's p99, `None` while the path has no finished call.
    #[serde(rename = "p99_ns", with = "optional_ns")]
    pub p99: Option<Duration>,
    /// Open longer than the stall factor times [`OpenSpan::p99`], and than 10 s.
    pub stalled: bool,
}

/// What an open span's time is measured from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum OpenSince {
    /// Its first enter: exact.
    FirstEnter,
    /// The first sample that saw it open (it has not completed an interval yet): a
    /// lower bound, short by at most one sampling period.
    FirstSeen,
}

/// The stall rule's floor: a span open for less is never stalled.
pub(crate) const STALL_MIN: Duration = Duration::from_secs(10);

/// A [`Duration`] as integer nanoseconds.
mod ns {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_u64(u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        u64::deserialize(d).map(Duration::from_nanos)
    }
}

/// An optional [`Duration`] as integer nanoseconds, or null.
mod optional_ns {
    use serde::{Deserialize, Deserializer, Serializer};
    use std::time::Duration;

    pub(super) fn serialize<S: Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => super::ns::serialize(d, s),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Duration>, D::Error> {
        Option::<u64>::deserialize(d).map(|n| n.map(Duration::from_nanos))
    }
}
