//! Exact, mergeable sums of durations: what a report keeps of a set of calls, and what
//! merging two reports adds.
//!
//! The per-thread accumulators count clock ticks, in a histogram whose buckets are
//! ticks too. Ticks are not a unit two processes share — each calibrates its own
//! counter — so a report converts them once, into nanoseconds, into a form every report
//! shares: [`DurationSums`] (count, Σx and Σx² as integers, min, max) with a sparse
//! [`Histogram`] in one fixed nanosecond layout, [`Histogram::LAYOUT`].
//!
//! Merging adds counts, sums and bucket counts and takes the extremes, so it gives
//! exactly the sums of all the values together, however they were split. Every figure
//! a report shows (mean, standard deviation, quantiles) is derived from these sums, the
//! same way for a live report, a report read back from a file and a merge: two halves
//! of a run, merged, show the figures of the whole run.
//!
//! # The histogram layout
//!
//! `ns-log-linear-256`: log-linear buckets of nanoseconds covering all of `u64`, 256 per
//! power of two, numbered from 0:
//!
//! * bucket `i < 256` holds exactly `i` ns;
//! * above, with `o = i / 256 − 1` and `s = i % 256`, bucket `i` holds
//!   `[(256 + s)·2^o, (256 + s + 1)·2^o)` ns.
//!
//! That makes 14,592 buckets, contiguous and increasing; a report lists only the
//! non-empty ones. A bucket is at most 1/256 of its lower bound wide, so its midpoint
//! is within 1/512 of every value in it.
//!
//! # From ticks to nanoseconds
//!
//! With `s` nanoseconds per tick:
//!
//! * Σx, the extremes and the other sums become `round(x·s)`: exact where ticks are
//!   nanoseconds (`s = 1`), otherwise within half a nanosecond each.
//! * Σx² is exact where `s = 1`. Otherwise it is not `round(Σx²·s²)`: the variance's
//!   numerator `n·Σx² − (Σx)²` cancels almost everything, and moving Σx by the half
//!   nanosecond of its rounding would move it by up to Σx — all of the variance of a
//!   steady 10 s span with a microsecond of jitter. So Σx² in ns² is chosen to keep the
//!   variance: `⌈((Σx)² + s²·(n·Σx² − (Σx)²)) / n⌉`, with Σx in ns and the exact
//!   numerator in ticks; rounded up, so that `n·Σx² ≥ (Σx)²` holds.
//! * Each tick bucket's count moves to the nanosecond bucket of its midpoint,
//!   converted. The map is monotone, so every value keeps its rank.
//!
//! A value `v` is in a tick bucket whose midpoint is within 1/32 of it; converted and
//! rounded, within 1/32 of `v·s` plus half a nanosecond; the nanosecond bucket's
//! midpoint adds 1/512 of that. So a reported quantile is within
//! [`QUANTILE_RELATIVE_ERROR`] (1/32 + 33/32 · 1/512 ≈ 3.33 %) plus half a nanosecond of
//! the exact nearest-rank quantile, then clamped to the exact min and max (which only
//! brings it closer). The bound holds for merged reports too: each value's stand-in is
//! within the bound of the value, so the k-th smallest stand-in is within it of the
//! k-th smallest value.

use std::ops::RangeInclusive;
use std::time::Duration;

use super::histogram;
use super::log_linear::LogLinear;
use super::moments::Moments;
use super::TickScale;

/// log2 of the buckets per power of two in the report layout.
const SUB_BITS: u32 = 8;
/// The report layout: [`LogLinear`] with [`SUB_BITS`].
type Layout = LogLinear<SUB_BITS>;
/// Buckets per power of two.
const SUB: u64 = Layout::SUB;
/// Buckets in the layout: `index(u64::MAX) + 1`.
const BUCKETS: u32 = (64 - SUB_BITS + 1) * SUB as u32;
/// The largest relative distance from a report bucket's midpoint to a value in it.
const BUCKET_RELATIVE_ERROR: f64 = Layout::BUCKET_RELATIVE_ERROR;

/// The largest relative error of a reported quantile (≈ 0.0333), plus half a
/// nanosecond: a tick bucket's error, carried into a nanosecond bucket's (see the
/// [module docs](self)). Quantiles are clamped to the exact min and max, which only
/// makes them closer.
///
/// ```
/// assert!(spanlab::stats::QUANTILE_RELATIVE_ERROR < 0.034);
/// ```
pub const QUANTILE_RELATIVE_ERROR: f64 = histogram::BUCKET_RELATIVE_ERROR
    + (1.0 + histogram::BUCKET_RELATIVE_ERROR) * BUCKET_RELATIVE_ERROR;

/// The report bucket of `ns`. Monotone: `a ≤ b` gives `index(a) ≤ index(b)`.
fn index(ns: u64) -> u32 {
    Layout::index(ns) as u32
}

/// The smallest value of report bucket `i` (< [`BUCKETS`]).
fn lower_bound(i: u32) -> u64 {
    Layout::lower_bound(u64::from(i))
}

/// The number of values in report bucket `i` (< [`BUCKETS`]).
fn width(i: u32) -> u64 {
    Layout::width(u64::from(i))
}

/// The value that stands for report bucket `i`: its midpoint.
fn midpoint(i: u32) -> u64 {
    Layout::midpoint(u64::from(i))
}

/// Counts of nanosecond durations in the report layout (see the [module docs](self)),
/// listing only the buckets that hold something. Part of [`DurationSums`].
///
/// The layout is one of integers: the same buckets also count an LLM model's tokens
/// per call ([`ModelStats::input_token_histogram`](crate::llm::ModelStats::input_token_histogram)),
/// where bucket `i < 256` holds exactly `i` tokens and a bucket above is at most 1/256
/// of its lower bound wide.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let (layer, _guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
/// let profile = layer.profile();
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     for _ in 0..10 {
///         tracing::info_span!("step").in_scope(|| std::hint::black_box(2 + 2));
///     }
/// });
/// let histogram = &profile.get("step").unwrap().sums.wall.histogram;
/// assert_eq!(histogram.count(), 10);
/// for (nanoseconds, count) in histogram.buckets() {
///     println!("{:?}: {count}", nanoseconds);
/// }
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Histogram {
    /// `(bucket, count)`: buckets strictly increasing and below [`BUCKETS`], counts > 0.
    buckets: Vec<(u32, u64)>,
}

impl Histogram {
    /// The name of the bucket layout, written in JSON reports as `histogram_layout`:
    /// reports merge only with reports of the same layout.
    ///
    /// ```
    /// assert_eq!(spanlab::stats::Histogram::LAYOUT, "ns-log-linear-256");
    /// ```
    pub const LAYOUT: &'static str = "ns-log-linear-256";

    /// The number of buckets in the layout (tests).
    #[cfg(test)]
    pub(crate) const BUCKET_COUNT: u32 = BUCKETS;

    /// The number of values counted.
    ///
    /// ```
    /// assert_eq!(spanlab::stats::Histogram::default().count(), 0);
    /// ```
    pub fn count(&self) -> u64 {
        self.buckets
            .iter()
            .fold(0u64, |n, &(_, c)| n.saturating_add(c))
    }

    /// The non-empty buckets in increasing order: the nanoseconds each holds (both
    /// ends included) and how many values fell in it.
    ///
    /// ```
    /// let histogram = spanlab::stats::Histogram::default();
    /// assert_eq!(histogram.buckets().count(), 0);
    /// ```
    pub fn buckets(&self) -> impl Iterator<Item = (RangeInclusive<u64>, u64)> + '_ {
        self.buckets.iter().map(|&(i, c)| {
            let low = lower_bound(i);
            (low..=low + (width(i) - 1), c)
        })
    }

    /// The tick histogram `counts` (the accumulators' layout) in nanoseconds: each
    /// bucket's count goes to the report bucket of its midpoint, converted.
    pub(crate) fn from_ticks(counts: &[u64], scale: TickScale) -> Self {
        let mut buckets: Vec<(u32, u64)> = Vec::new();
        for (i, &c) in counts.iter().enumerate().filter(|(_, &c)| c > 0) {
            let j = index(scale.to_ns(histogram::midpoint(i)));
            // Midpoints increase with `i` and the conversion is monotone, so `j` never
            // decreases: equal neighbours add up, and the list stays sorted.
            match buckets.last_mut() {
                Some((last, n)) if *last == j => *n += c,
                _ => buckets.push((j, c)),
            }
        }
        Histogram { buckets }
    }

    /// A histogram from `(bucket, count)` pairs as a report writes them: buckets
    /// strictly increasing and in the layout, counts above zero.
    pub(crate) fn from_sparse(buckets: Vec<(u32, u64)>) -> Result<Self, String> {
        for (k, &(i, c)) in buckets.iter().enumerate() {
            if i >= BUCKETS {
                return Err(format!(
                    "bucket {i} is not in the layout {} (buckets 0 to {})",
                    Self::LAYOUT,
                    BUCKETS - 1
                ));
            }
            if c == 0 {
                return Err(format!("bucket {i} is listed with a count of 0"));
            }
            if k > 0 && buckets[k - 1].0 >= i {
                return Err(format!("bucket {i} is out of order"));
            }
        }
        Ok(Histogram { buckets })
    }

    /// The `(bucket, count)` pairs, buckets increasing.
    pub(crate) fn sparse(&self) -> &[(u32, u64)] {
        &self.buckets
    }

    /// Counts one more value (`value` in whatever unit the histogram holds: the layout
    /// is a layout of integers, used for nanoseconds and for LLM token counts alike).
    /// A binary search and, for a bucket not yet listed, one insertion: for values
    /// counted behind a lock off the span callbacks, not for the hot path.
    pub(crate) fn record(&mut self, value: u64) {
        let i = index(value);
        match self.buckets.binary_search_by_key(&i, |&(j, _)| j) {
            Ok(k) => self.buckets[k].1 = self.buckets[k].1.saturating_add(1),
            Err(k) => self.buckets.insert(k, (i, 1)),
        }
    }

    /// The smallest and the largest sum the counted values can have: each bucket's
    /// count times its first and its last value. Lets a reader check a sum kept beside
    /// the histogram (an LLM model's tokens) against it.
    pub(crate) fn sum_range(&self) -> (u128, u128) {
        self.buckets().fold((0, 0), |(low, high), (range, c)| {
            let c = u128::from(c);
            (
                low + c * u128::from(*range.start()),
                high + c * u128::from(*range.end()),
            )
        })
    }

    /// The bucket-by-bucket sum of two histograms; `None` when a count would overflow.
    pub(crate) fn added(&self, other: &Histogram) -> Option<Histogram> {
        self.merged(other)
    }

    /// The bucket-by-bucket sum of two histograms (a merge: one linear pass over both
    /// sorted lists). `None` when a count would overflow.
    fn merged(&self, other: &Histogram) -> Option<Histogram> {
        let (a, b) = (&self.buckets, &other.buckets);
        let mut out = Vec::with_capacity(a.len().max(b.len()));
        let (mut x, mut y) = (0, 0);
        while x < a.len() && y < b.len() {
            let ((i, c), (j, d)) = (a[x], b[y]);
            if i == j {
                out.push((i, c.checked_add(d)?));
                (x, y) = (x + 1, y + 1);
            } else if i < j {
                out.push((i, c));
                x += 1;
            } else {
                out.push((j, d));
                y += 1;
            }
        }
        out.extend_from_slice(&a[x..]);
        out.extend_from_slice(&b[y..]);
        Some(Histogram { buckets: out })
    }

    /// The nearest-rank `q`-quantile (0 < q ≤ 1) of `total` values (> 0): the midpoint
    /// of the bucket that holds the value of rank ⌈q·total⌉, within `[min, max]`.
    fn quantile(&self, total: u64, q: f64, min: u64, max: u64) -> u64 {
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0u64;
        for &(i, c) in &self.buckets {
            seen = seen.saturating_add(c);
            if seen >= rank {
                // Not `clamp`: it panics when min > max, which sums from a file could
                // hold if nothing had checked them.
                return midpoint(i).max(min).min(max);
            }
        }
        max
    }
}

/// Exact sums of a set of durations, in nanoseconds: count, Σx, Σx², min, max and the
/// histogram. Every figure derives from them (mean, standard deviation, quantiles),
/// and two sets merge by adding them: see the [module docs](self).
///
/// A path's wall times are [`PathSums::wall`]; an LLM model's latencies are
/// [`ModelStats::latency`](crate::llm::ModelStats::latency).
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let (layer, _guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
/// let profile = layer.profile();
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     for _ in 0..100 {
///         tracing::info_span!("step").in_scope(|| std::hint::black_box(2 + 2));
///     }
/// });
/// let wall = profile.get("step").unwrap().sums.wall;
/// assert_eq!(wall.count, 100);
/// let p90 = wall.quantile(0.9).unwrap(); // any quantile, not only the report's three
/// assert!(wall.min_ns <= p90.as_nanos() as u64 && p90.as_nanos() as u64 <= wall.max_ns);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DurationSums {
    /// How many durations.
    pub count: u64,
    /// Their sum, ns.
    pub sum_ns: u64,
    /// The sum of their squares, ns² (see the [module docs](self) for how it is kept
    /// where the clock does not count in nanoseconds).
    pub sum_sq_ns2: u128,
    /// The shortest, ns (0 when `count` is 0).
    pub min_ns: u64,
    /// The longest, ns (0 when `count` is 0).
    pub max_ns: u64,
    /// Their distribution; `histogram.count() == count`.
    pub histogram: Histogram,
}

impl DurationSums {
    /// The sums of `count` durations given in ticks: their power sums, extremes and
    /// tick histogram (`Σ counts == count`), converted with `scale`.
    pub(crate) fn from_ticks(
        count: u64,
        moments: Moments,
        min: u64,
        max: u64,
        counts: &[u64],
        scale: TickScale,
    ) -> Self {
        if count == 0 {
            return DurationSums::default();
        }
        let sum_ns = scale.to_ns(moments.sum);
        DurationSums {
            count,
            sum_ns,
            sum_sq_ns2: sum_sq_ns2(count, sum_ns, moments, scale),
            min_ns: scale.to_ns(min),
            max_ns: scale.to_ns(max),
            histogram: Histogram::from_ticks(counts, scale),
        }
    }

    /// The mean, rounded to the nanosecond; `None` when there are no durations.
    ///
    /// ```
    /// assert_eq!(spanlab::stats::DurationSums::default().mean(), None);
    /// ```
    pub fn mean(&self) -> Option<Duration> {
        (self.count > 0).then(|| {
            // round(Σ / n) in integers: (2Σ + n) / 2n, which fits u128.
            let n = u128::from(self.count);
            let mean = (2 * u128::from(self.sum_ns) + n) / (2 * n);
            Duration::from_nanos(mean as u64) // ≤ Σ/n + 1/2 ≤ u64::MAX
        })
    }

    /// The population standard deviation (numpy's default, `ddof = 0`), from the exact
    /// sums; zero for fewer than two durations.
    ///
    /// ```
    /// assert_eq!(spanlab::stats::DurationSums::default().std(), std::time::Duration::ZERO);
    /// ```
    pub fn std(&self) -> Duration {
        Duration::from_nanos(self.moments().std().round() as u64)
    }

    /// The nearest-rank `q`-quantile (`0 < q ≤ 1`), within
    /// [`QUANTILE_RELATIVE_ERROR`] and clamped to `[min, max]`; `None` when there are
    /// no durations or `q` is outside `(0, 1]`.
    ///
    /// ```
    /// let none = spanlab::stats::DurationSums::default();
    /// assert_eq!(none.quantile(0.5), None);
    /// ```
    pub fn quantile(&self, q: f64) -> Option<Duration> {
        if self.count == 0 || !(q > 0.0 && q <= 1.0) {
            return None;
        }
        let ns = self
            .histogram
            .quantile(self.count, q, self.min_ns, self.max_ns);
        Some(Duration::from_nanos(ns))
    }

    fn moments(&self) -> Moments {
        Moments {
            n: self.count,
            sum: self.sum_ns,
            sum_sq: self.sum_sq_ns2,
        }
    }

    /// Adds the disjoint set `other`: counts, sums and buckets add, extremes widen.
    /// `Err` names the sum that would overflow (and nothing is changed).
    pub(crate) fn merge(&mut self, other: &DurationSums) -> Result<(), &'static str> {
        if other.count == 0 {
            return Ok(());
        }
        if self.count == 0 {
            *self = other.clone();
            return Ok(());
        }
        let count = self.count.checked_add(other.count).ok_or("count")?;
        let sum_ns = self.sum_ns.checked_add(other.sum_ns).ok_or("sum_ns")?;
        let sum_sq_ns2 = (self.sum_sq_ns2)
            .checked_add(other.sum_sq_ns2)
            .ok_or("sum_sq_ns2")?;
        let histogram = self.histogram.merged(&other.histogram).ok_or("histogram")?;
        *self = DurationSums {
            count,
            sum_ns,
            sum_sq_ns2,
            min_ns: self.min_ns.min(other.min_ns),
            max_ns: self.max_ns.max(other.max_ns),
            histogram,
        };
        Ok(())
    }

    /// What sums read from a file must satisfy: as many values in the histogram as
    /// `count`, `min ≤ max`, `n·Σx² ≥ (Σx)²`, and all zero for no values.
    pub(crate) fn check(&self) -> Result<(), String> {
        let in_histogram = self
            .histogram
            .buckets
            .iter()
            .try_fold(0u64, |n, &(_, c)| n.checked_add(c));
        if in_histogram != Some(self.count) {
            return Err(format!(
                "the histogram counts {} values, the count is {}",
                self.histogram.count(),
                self.count
            ));
        }
        if self.count == 0 {
            let zero = self.sum_ns == 0 && self.sum_sq_ns2 == 0;
            return match zero && self.min_ns == 0 && self.max_ns == 0 {
                true => Ok(()),
                false => Err("no values, but sums or extremes that are not 0".into()),
            };
        }
        if self.min_ns > self.max_ns {
            return Err(format!(
                "min {} ns is above max {} ns",
                self.min_ns, self.max_ns
            ));
        }
        if !self.moments().is_consistent() {
            return Err("the sum of squares is below (sum)² / count, which no values have".into());
        }
        Ok(())
    }
}

/// Σx² in ns² for `n > 0` values whose sum is `sum_ns` in ns and whose power sums in
/// ticks are `moments`: exact for `s = 1`, else chosen to keep the variance (see the
/// [module docs](self)).
fn sum_sq_ns2(n: u64, sum_ns: u64, moments: Moments, scale: TickScale) -> u128 {
    if scale.is_identity() {
        return moments.sum_sq;
    }
    let numerator = moments.variance_numerator() * scale.0 * scale.0; // ≥ 0
    let square = u128::from(sum_ns) * u128::from(sum_ns); // < 2^128
    let n = u128::from(n);
    // (square + numerator) / n, as square / n in integers plus the rest in floating
    // point: the large part stays exact, the variance's part keeps its precision.
    let (whole, rest) = (square / n, square % n);
    // Rounded up, so that n·Σx² ≥ n·whole + rest = (Σx)²: that needs n·extra ≥ rest,
    // i.e. extra ≥ 1 whenever rest > 0 (rest < n), which `max` makes sure of even if
    // the division came out as NaN (`as` maps it to 0, and saturates large values).
    let extra = ((numerator + rest as f64) / n as f64).ceil() as u128;
    whole.saturating_add(extra.max(u128::from(rest > 0)))
}

/// Exact sums of one span path: its calls' wall times, the sums of self, busy and idle
/// time, failed calls and panics. [`PathStats`](super::PathStats) derives every figure
/// from them; JSON reports carry them; [`Report::merge`](crate::Report::merge) adds them.
///
/// Invariants: `self_ns ≤ busy_ns ≤ wall.sum_ns` and `idle_ns = wall.sum_ns − busy_ns`.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let (layer, _guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
/// let profile = layer.profile();
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     tracing::info_span!("step").in_scope(|| std::hint::black_box(2 + 2));
/// });
/// let sums = profile.get("step").unwrap().sums;
/// assert_eq!(sums.wall.count, 1);
/// assert_eq!(sums.busy_ns + sums.idle_ns, sums.wall.sum_ns);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PathSums {
    /// Wall time per call (first enter to last exit).
    pub wall: DurationSums,
    /// Σ self time (entered, minus time in child spans), ns.
    pub self_ns: u64,
    /// Σ busy time (entered), ns.
    pub busy_ns: u64,
    /// Σ idle time (wall minus busy: an async span awaiting), ns.
    pub idle_ns: u64,
    /// Calls during which an ERROR-level event was recorded.
    pub errors: u64,
    /// Calls exited or closed while their thread was panicking.
    pub panics: u64,
}

impl PathSums {
    /// The sums of a merged tick aggregate, converted with `scale`.
    pub(crate) fn from_aggregate(a: &super::Aggregate, scale: TickScale) -> Self {
        let wall = DurationSums::from_ticks(a.calls, a.moments, a.min, a.max, &a.hist[..], scale);
        // Rounding is monotone and the aggregate has self ≤ busy ≤ total, so the
        // converted sums keep that order; `min` only makes it explicit.
        let busy_ns = scale.to_ns(a.busy).min(wall.sum_ns);
        let self_ns = scale.to_ns(a.self_time).min(busy_ns);
        PathSums {
            // After conversion, so that `busy + idle == sum` holds exactly.
            idle_ns: wall.sum_ns - busy_ns,
            wall,
            self_ns,
            busy_ns,
            errors: a.errors,
            panics: a.panics,
        }
    }

    /// Adds the sums of a disjoint set of calls of the same path. `Err` names the sum
    /// that would overflow (and nothing is changed).
    pub(crate) fn merge(&mut self, other: &PathSums) -> Result<(), &'static str> {
        let add = |a: u64, b: u64, name| a.checked_add(b).ok_or(name);
        let self_ns = add(self.self_ns, other.self_ns, "self_ns")?;
        let busy_ns = add(self.busy_ns, other.busy_ns, "busy_ns")?;
        let idle_ns = add(self.idle_ns, other.idle_ns, "idle_ns")?;
        let errors = add(self.errors, other.errors, "errors")?;
        let panics = add(self.panics, other.panics, "panics")?;
        self.wall.merge(&other.wall)?;
        (self.self_ns, self.busy_ns, self.idle_ns) = (self_ns, busy_ns, idle_ns);
        (self.errors, self.panics) = (errors, panics);
        Ok(())
    }

    /// What sums read from a file must satisfy: [`DurationSums::check`], the invariants
    /// above, and no more failed or panicked calls than calls.
    pub(crate) fn check(&self) -> Result<(), String> {
        self.wall.check()?;
        let sum = self.wall.sum_ns;
        if self.busy_ns > sum || self.self_ns > self.busy_ns {
            return Err(format!(
                "self {} ns ≤ busy {} ns ≤ sum {} ns does not hold",
                self.self_ns, self.busy_ns, sum
            ));
        }
        if self.idle_ns != sum - self.busy_ns {
            return Err(format!(
                "idle {} ns is not sum {} ns minus busy {} ns",
                self.idle_ns, sum, self.busy_ns
            ));
        }
        if self.errors > self.wall.count || self.panics > self.wall.count {
            return Err("more failed or panicked calls than calls".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_all_of_u64() {
        assert_eq!(index(0), 0);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        assert_eq!(
            lower_bound(BUCKETS - 1) + (width(BUCKETS - 1) - 1),
            u64::MAX
        );
        for i in 0..BUCKETS - 1 {
            assert_eq!(
                lower_bound(i) + width(i),
                lower_bound(i + 1),
                "gap after {i}"
            );
            assert_eq!(index(lower_bound(i)), i);
            assert_eq!(index(lower_bound(i) + width(i) - 1), i);
        }
    }

    #[test]
    fn the_layout_is_the_documented_one() {
        // Module docs: bucket i < 256 holds i; above, [(256 + s)·2^o, (256 + s + 1)·2^o).
        assert_eq!(BUCKETS, 14_592);
        for i in [256u32, 300, 511, 512, 4_000, BUCKETS - 1] {
            let (o, s) = (u64::from(i) / 256 - 1, u64::from(i) % 256);
            assert_eq!(lower_bound(i), (256 + s) << o, "bucket {i}");
            assert_eq!(width(i), 1 << o, "bucket {i}");
        }
        let h = Histogram::from_sparse(vec![(3, 1), (600, 2)]).unwrap();
        let buckets: Vec<_> = h.buckets().collect();
        assert_eq!(buckets, [(3..=3, 1), (688..=689, 2)]); // o = 1, s = 88
    }

    #[test]
    fn midpoints_are_within_the_bucket_error() {
        for i in 0..BUCKETS {
            let (lo, hi) = (lower_bound(i), lower_bound(i) + (width(i) - 1));
            for v in [lo, hi] {
                let err = (midpoint(i) as f64 - v as f64).abs() / v.max(1) as f64;
                assert!(err <= BUCKET_RELATIVE_ERROR, "bucket {i} value {v}: {err}");
            }
        }
    }

    /// Tick histogram, count and power sums of `values`, as an aggregate holds them.
    fn ticks(values: &[u64]) -> (Vec<u64>, Moments, u64, u64) {
        let mut counts = vec![0u64; histogram::BUCKETS];
        let mut m = Moments::default();
        for &v in values {
            counts[histogram::index(v)] += 1;
            m.push(v);
        }
        let (min, max) = (*values.iter().min().unwrap(), *values.iter().max().unwrap());
        (counts, m, min, max)
    }

    fn sums(values: &[u64], scale: f64) -> DurationSums {
        let (counts, m, min, max) = ticks(values);
        DurationSums::from_ticks(m.n, m, min, max, &counts, TickScale(scale))
    }

    /// A deterministic spread of values over many octaves.
    fn spread(n: u64, seed: u64) -> Vec<u64> {
        let mut x = seed;
        (0..n)
            .map(|_| {
                x = x
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                (x >> 40) >> ((x >> 20) % 20)
            })
            .collect()
    }

    /// The exact nearest-rank quantile of `values`.
    fn exact_quantile(values: &[u64], q: f64) -> u64 {
        let mut sorted = values.to_vec();
        sorted.sort_unstable();
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    #[test]
    fn quantiles_stay_within_the_stated_error_whatever_the_tick_scale() {
        for scale in [1.0, 0.3125, 0.4170917, 1.0 / 3.0, 2.9] {
            for seed in 1..6 {
                let values = spread(3_000, seed);
                let s = sums(&values, scale);
                for q in [0.01, 0.25, 0.5, 0.9, 0.95, 0.99, 1.0] {
                    let want = exact_quantile(&values, q) as f64 * scale;
                    let got = s.quantile(q).unwrap().as_nanos() as f64;
                    assert!(
                        (got - want).abs() <= want * QUANTILE_RELATIVE_ERROR + 0.5 + 1e-9,
                        "scale {scale} seed {seed} q {q}: {got} for {want}"
                    );
                }
            }
        }
    }

    #[test]
    fn the_stated_bound_is_needed_and_holds_at_every_tick_bucket() {
        // Three calls at the ends of one tick bucket, the median at one end: the
        // stand-in is as far from it as a stand-in gets (min and max clamp nothing).
        // The tick bucket's error alone is not enough; the stated bound is.
        let mut worst = 0f64;
        for scale in [1.0, 0.37, 2.9, 0.41709] {
            for i in 16..histogram::BUCKETS {
                let low = histogram::lower_bound(i);
                let high = low + (histogram::width(i) - 1);
                for (values, median) in [([low, low, high], low), ([low, high, high], high)] {
                    let got = sums(&values, scale).quantile(0.5).unwrap().as_nanos() as f64;
                    let want = median as f64 * scale;
                    let error = (got - want).abs();
                    assert!(
                        error <= want * QUANTILE_RELATIVE_ERROR + 0.5,
                        "bucket {i} at {scale}"
                    );
                    if want >= 1e6 {
                        // Where the half nanosecond of rounding is negligible.
                        worst = worst.max(error / want);
                    }
                }
            }
        }
        assert!(worst > histogram::BUCKET_RELATIVE_ERROR, "{worst}");
    }

    #[test]
    fn a_known_sample_has_its_known_quantiles() {
        // 1..=10_000 µs in ns: the nearest-rank quantiles are exactly q·10_000 µs.
        let values: Vec<u64> = (1..=10_000u64).map(|us| us * 1000).collect();
        let s = sums(&values, 1.0);
        for (q, want) in [(0.5, 5e6), (0.95, 9.5e6), (0.99, 9.9e6)] {
            let got = s.quantile(q).unwrap().as_nanos() as f64;
            assert!((got - want).abs() <= want * QUANTILE_RELATIVE_ERROR, "{q}");
        }
        assert_eq!(
            s.quantile(1.0),
            Some(Duration::from_millis(10)),
            "clamped to max"
        );
        assert_eq!((s.quantile(0.0), s.quantile(1.5)), (None, None));
    }

    #[test]
    fn nanosecond_ticks_convert_exactly() {
        let values = spread(1_000, 7);
        let (_, m, min, max) = ticks(&values);
        let s = sums(&values, 1.0);
        assert_eq!((s.count, s.sum_ns, s.sum_sq_ns2), (m.n, m.sum, m.sum_sq));
        assert_eq!((s.min_ns, s.max_ns), (min, max));
        assert_eq!(s.histogram.count(), 1_000);
        assert_eq!(s.std().as_nanos() as f64, m.std().round());
    }

    #[test]
    fn other_scales_keep_the_variance_of_a_steady_span() {
        // 10 s ± 1 µs in ticks of 0.3 ns: rounding Σx to the nanosecond and squaring
        // would lose the jitter; the kept numerator does not.
        let scale = 0.3;
        let mid = (10e9 / scale) as u64;
        let jitter = (1e3 / scale) as u64;
        let values: Vec<u64> = (0..10_000)
            .map(|i| {
                if i % 2 == 0 {
                    mid + jitter
                } else {
                    mid - jitter
                }
            })
            .collect();
        let s = sums(&values, scale);
        let std = s.std().as_nanos() as f64;
        assert!((std - jitter as f64 * scale).abs() <= 1.0, "std {std} ns");
        assert!(s.moments().is_consistent());
        let mean = s.mean().unwrap().as_nanos() as f64;
        assert!((mean - mid as f64 * scale).abs() <= 1.0, "mean {mean}");
    }

    #[test]
    fn merging_equals_converting_everything_at_once() {
        // Ticks are nanoseconds here: then a merge is exact, sum by sum and bucket by
        // bucket.
        let values = spread(5_000, 3);
        let whole = sums(&values, 1.0);
        for split in [1, 1_234, 2_500, 4_999] {
            let (a, b) = values.split_at(split);
            let mut merged = sums(a, 1.0);
            merged.merge(&sums(b, 1.0)).unwrap();
            assert_eq!(merged, whole, "split at {split}");
            for q in [0.5, 0.95, 0.99] {
                assert_eq!(merged.quantile(q), whole.quantile(q));
            }
        }
        let mut empty = DurationSums::default();
        empty.merge(&whole).unwrap();
        assert_eq!(empty, whole);
        empty.merge(&DurationSums::default()).unwrap();
        assert_eq!(empty, whole);
    }

    #[test]
    fn an_overflowing_merge_names_its_sum_and_changes_nothing() {
        let mut a = sums(&[u64::MAX / 2 + 1], 1.0);
        let before = a.clone();
        assert_eq!(a.merge(&before.clone()), Err("sum_ns"));
        assert_eq!(a, before);
    }

    #[test]
    fn checks_catch_sums_no_values_have() {
        let good = sums(&spread(100, 9), 1.0);
        assert_eq!(good.check(), Ok(()));
        let mut bad = good.clone();
        bad.count += 1;
        assert!(bad.check().unwrap_err().contains("histogram counts 100"));
        let mut bad = good.clone();
        bad.sum_sq_ns2 = 0;
        assert!(bad.check().unwrap_err().contains("sum of squares"));
        assert_eq!(bad.std(), Duration::ZERO, "no panic, no nonsense");
        let mut bad = good.clone();
        (bad.min_ns, bad.max_ns) = (bad.max_ns + 1, bad.min_ns);
        assert!(bad.check().unwrap_err().contains("above max"));
        assert!(bad.quantile(0.5).is_some(), "no panic on min > max");
        assert!(Histogram::from_sparse(vec![(5, 1), (5, 1)]).is_err());
        assert!(Histogram::from_sparse(vec![(5, 0)]).is_err());
        assert!(Histogram::from_sparse(vec![(BUCKETS, 1)]).is_err());
    }

    #[test]
    fn recording_one_by_one_equals_the_sparse_list_and_bounds_the_sum() {
        let values = [0u64, 3, 3, 255, 256, 300, 70_000, 70_001, u64::MAX];
        let mut h = Histogram::default();
        for &v in values.iter().rev() {
            h.record(v);
        }
        let mut expected: Vec<(u32, u64)> = Vec::new();
        for &v in &values {
            match expected.last_mut() {
                Some((i, c)) if *i == index(v) => *c += 1,
                _ => expected.push((index(v), 1)),
            }
        }
        assert_eq!(h, Histogram::from_sparse(expected).unwrap());
        assert_eq!(h.count(), values.len() as u64);
        let sum: u128 = values.iter().map(|&v| u128::from(v)).sum();
        let (low, high) = h.sum_range();
        assert!(low <= sum && sum <= high, "{low} ≤ {sum} ≤ {high}");
        // Below 256 every bucket is one value: the range is the sum itself.
        let mut small = Histogram::default();
        (0..256).for_each(|v| small.record(v));
        assert_eq!(small.sum_range(), (255 * 128, 255 * 128));
    }
}
