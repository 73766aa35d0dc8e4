//! Timing statistics per span path.
//!
//! For every path the layer keeps calls, total, mean, population standard deviation,
//! min, max, p50/p95/p99, self time, busy and idle time, failed calls and panics —
//! aggregates only, never per-call records, so memory stays bounded however long the
//! run. [`PathStats`] is the merged, read-only view handed out by
//! [`Profile`](crate::Profile) and the reports.
//!
//! Quantiles come from a fixed-size log-linear histogram and are within
//! [`QUANTILE_RELATIVE_ERROR`] (3.125 %) of the exact nearest-rank quantile; every other
//! figure is exact up to the clock's resolution.

mod accumulator;
mod histogram;
mod moments;

use std::time::Duration;

pub(crate) use accumulator::{Aggregate, CallSample, SlotIndex, ThreadSlots};
#[cfg(test)]
pub(crate) use histogram::index as histogram_index;
pub use histogram::QUANTILE_RELATIVE_ERROR;

/// Statistics of one span path, merged over every thread.
///
/// Durations are per call ("wall": first enter to last exit) unless named otherwise.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct PathStats {
    /// Span names from the root, e.g. `["epoch", "forward"]`.
    pub path: Vec<&'static str>,
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
}

/// Nanoseconds per clock tick.
///
/// Spans are recorded in raw ticks and converted here, once per report. The conversion
/// is linear, so every statistic converts exactly: sums, extremes and quantiles scale by
/// `s`, the mean by `s`, the standard deviation by `s` (the variance by `s²`), and a
/// histogram bucket's relative width does not change.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct TickScale(pub(crate) f64);

impl TickScale {
    fn ns(self, ticks: f64) -> Duration {
        Duration::from_nanos((ticks * self.0).round() as u64)
    }
}

impl PathStats {
    pub(crate) fn from_aggregate(path: Vec<&'static str>, a: &Aggregate, scale: TickScale) -> Self {
        let d = |ticks: u64| scale.ns(ticks as f64);
        let empty = a.calls == 0;
        let (total, busy) = (d(a.total()), d(a.busy));
        PathStats {
            path,
            calls: a.calls,
            total,
            mean: if empty {
                Duration::ZERO
            } else {
                scale.ns(a.moments.mean())
            },
            std: scale.ns(a.moments.std()),
            min: if empty { Duration::ZERO } else { d(a.min) },
            max: d(a.max),
            p50: d(a.quantile(0.50)),
            p95: d(a.quantile(0.95)),
            p99: d(a.quantile(0.99)),
            self_time: d(a.self_time),
            busy,
            // After conversion, so that `total == busy + idle` holds exactly.
            idle: total.saturating_sub(busy),
            errors: a.errors,
            panics: a.panics,
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

/// A histogram of nanosecond latencies with count and sum: bounded memory for any
/// number of values, quantiles within [`QUANTILE_RELATIVE_ERROR`]. (The per-path
/// accumulators use the same buckets, lock-free; this one is for slower paths, such as
/// LLM calls, kept behind a lock.)
pub(crate) struct LatencyHistogram {
    counts: Box<[u64; histogram::BUCKETS]>,
    n: u64,
    sum: u128,
    min: u64,
    max: u64,
}

impl Default for LatencyHistogram {
    fn default() -> Self {
        LatencyHistogram {
            counts: Box::new([0; histogram::BUCKETS]),
            n: 0,
            sum: 0,
            min: u64::MAX,
            max: 0,
        }
    }
}

impl LatencyHistogram {
    pub(crate) fn record(&mut self, ns: u64) {
        self.counts[histogram::index(ns)] += 1;
        self.n += 1;
        self.sum += ns as u128;
        self.min = self.min.min(ns);
        self.max = self.max.max(ns);
    }

    pub(crate) fn mean(&self) -> Option<u64> {
        (self.n > 0).then(|| (self.sum / self.n as u128) as u64)
    }

    pub(crate) fn quantile(&self, q: f64) -> Option<u64> {
        (self.n > 0).then(|| histogram::quantile(&self.counts[..], self.n, q, self.min, self.max))
    }
}
