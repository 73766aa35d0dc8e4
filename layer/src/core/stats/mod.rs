//! Timing statistics per span path.
//!
//! For every path the layer keeps calls, total, mean, population standard deviation,
//! min, max, p50/p95/p99, self time, busy and idle time, failed calls and panics —
//! aggregates only, never per-call records, so memory stays bounded however long the
//! run. [`PathStats`] is the merged, read-only view handed out by
//! [`Profile`](crate::Profile) and the reports.
//!
//! Every figure of a [`PathStats`] derives from its [`PathSums`]: exact integer sums in
//! nanoseconds and a histogram in one fixed layout, which JSON reports carry and
//! [`Report::merge`](crate::Report::merge) adds (the [`sums`] module explains them).
//! Quantiles are within [`QUANTILE_RELATIVE_ERROR`] (about 3.3 %) of the exact
//! nearest-rank quantile; every other figure is exact up to the clock's resolution.

mod accumulator;
mod histogram;
mod log_linear;
mod moments;
pub mod sums;

use std::borrow::Cow;
use std::time::Duration;

use moments::Moments;

pub(crate) use accumulator::{Aggregate, CallSample, SlotIndex, ThreadSlots};
#[cfg(test)]
pub(crate) use histogram::index as histogram_index;
pub use sums::{DurationSums, Histogram, PathSums, QUANTILE_RELATIVE_ERROR};

/// Statistics of one span path, merged over every thread.
///
/// Durations are per call ("wall": first enter to last exit) unless named otherwise.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PathStats {
    /// Span names from the root, e.g. `["epoch", "forward"]`: borrowed from the spans'
    /// metadata in a live profile, owned in a report read back from a file.
    pub path: Vec<Cow<'static, str>>,
    /// Finished spans (entered at least once) of this path.
    pub calls: u64,
    /// Sum of all calls' wall time.
    pub total: Duration,
    /// Mean wall time.
    pub mean: Duration,
    /// Population standard deviation of wall time (numpy's default, `ddof=0`).
    pub std: Duration,
    /// Shortest call.
    pub min: Duration,
    /// Longest call.
    pub max: Duration,
    /// Median, within [`QUANTILE_RELATIVE_ERROR`].
    pub p50: Duration,
    /// 95th percentile, within [`QUANTILE_RELATIVE_ERROR`].
    pub p95: Duration,
    /// 99th percentile, within [`QUANTILE_RELATIVE_ERROR`].
    pub p99: Duration,
    /// Sum over calls of time entered minus time in spans entered inside them.
    pub self_time: Duration,
    /// Sum over calls of the time the span was entered.
    pub busy: Duration,
    /// Sum over calls of wall minus busy: time an async span spent awaiting.
    pub idle: Duration,
    /// Calls during which an ERROR-level event was recorded (`#[instrument(err)]`).
    pub errors: u64,
    /// Calls exited or closed while their thread was panicking.
    pub panics: u64,
    /// The exact sums every figure above derives from: what JSON reports carry and
    /// [`Report::merge`](crate::Report::merge) adds.
    pub sums: PathSums,
}

/// Nanoseconds per clock tick.
///
/// Spans are recorded in raw ticks and converted here, once per report (see [`sums`]
/// for how each sum converts). The conversion is linear, so a histogram bucket's
/// relative width does not change.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TickScale(pub(crate) f64);

impl TickScale {
    /// Whether ticks are nanoseconds: then every conversion is exact.
    fn is_identity(self) -> bool {
        self.0 == 1.0
    }

    /// `ticks` in whole nanoseconds, rounded to the nearest (exact when ticks are
    /// nanoseconds; `as` saturates a result beyond `u64`).
    fn to_ns(self, ticks: u64) -> u64 {
        if self.is_identity() {
            return ticks;
        }
        (ticks as f64 * self.0).round() as u64
    }
}

impl PathStats {
    /// The statistics of a merged tick aggregate, converted with `scale`.
    pub(crate) fn from_aggregate(path: Vec<&'static str>, a: &Aggregate, scale: TickScale) -> Self {
        let path = path.into_iter().map(Cow::Borrowed).collect();
        PathStats::from_sums(path, PathSums::from_aggregate(a, scale))
    }

    /// Every figure derived from `sums`: the one way a live profile, a report read
    /// back from a file and a merge all compute them.
    pub(crate) fn from_sums(path: Vec<Cow<'static, str>>, sums: PathSums) -> Self {
        let w = &sums.wall;
        let ns = Duration::from_nanos;
        let quantile = |q| w.quantile(q).unwrap_or(Duration::ZERO);
        PathStats {
            path,
            calls: w.count,
            total: ns(w.sum_ns),
            mean: w.mean().unwrap_or(Duration::ZERO),
            std: w.std(),
            min: ns(w.min_ns),
            max: ns(w.max_ns),
            p50: quantile(0.50),
            p95: quantile(0.95),
            p99: quantile(0.99),
            self_time: ns(sums.self_ns),
            busy: ns(sums.busy_ns),
            idle: ns(sums.idle_ns),
            errors: sums.errors,
            panics: sums.panics,
            sums,
        }
    }

    /// The path as printed in reports: `"epoch > forward"`.
    pub fn path_string(&self) -> String {
        self.path.join(" > ")
    }

    /// Nesting depth: 1 for a root span.
    pub fn depth(&self) -> usize {
        self.path.len()
    }
}

/// Nanosecond latencies with their count, power sums and histogram (the per-path
/// accumulators' layout, in nanoseconds): bounded memory for any number of values.
/// (The per-path accumulators are lock-free; this one is for slower paths, such as LLM
/// calls, kept behind a lock.)
pub(crate) struct LatencyHistogram {
    counts: Box<[u64; histogram::BUCKETS]>,
    moments: Moments,
    min: u64,
    max: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: Box::new([0; histogram::BUCKETS]),
            moments: Moments::default(),
            min: u64::MAX,
            max: 0,
        }
    }
}

impl LatencyHistogram {
    pub(crate) fn record(&mut self, ns: u64) {
        self.counts[histogram::index(ns)] += 1;
        self.moments.push(ns);
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    /// The exact sums, as a report carries them.
    pub(crate) fn sums(&self) -> DurationSums {
        let m = self.moments;
        DurationSums::from_ticks(m.n, m, self.min, self.max, &self.counts[..], TickScale(1.0))
    }
}
