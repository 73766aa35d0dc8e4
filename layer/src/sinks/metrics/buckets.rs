//! The explicit bucket bounds of exported duration histograms, and the exact move of a
//! report's histogram into them.
//!
//! OTLP's exponential histogram has bucket boundaries at powers of `2^(2^-scale)`:
//! geometric inside each power of two. spanlab's report layout
//! ([`Histogram::LAYOUT`], `ns-log-linear-256`) is linear inside each power of two, so
//! no exponential scale carries its counts without moving some of them across a
//! boundary. Exported histograms use explicit bounds instead, chosen so that every
//! bound ends one of spanlab's buckets:
//!
//! * four bounds per power of two of nanoseconds, at a quarter, half and three
//!   quarters of the way and at its end: the upper bound `(4 + q)·2^(e−2) − 1` ns for
//!   `q` in 0..4 and `e` from 8 (256 ns) to 45, then `2^46 − 1` ns (about 19.5 hours);
//! * written in seconds (`le="2.55e-7"` is 255 ns), upper bound included, as both OTLP
//!   (`(bounds[i−1], bounds[i]]`) and Prometheus (`le`) count them.
//!
//! **Invariant**: `bound + 1` ns is the first nanosecond of one of spanlab's buckets, so
//! no spanlab bucket straddles a bound and each of its counts moves whole into one
//! exported bucket: exported bucket counts are exact counts of the calls whose
//! duration, in whole nanoseconds, is at most the bound. A bucket is a quarter of an
//! octave wide at most, so a quantile read from these buckets (Prometheus'
//! `histogram_quantile`) lies in the bucket of the true quantile.

use std::sync::OnceLock;

use crate::core::stats::Histogram;

/// Bounds per power of two.
const PER_OCTAVE: u64 = 4;
/// The first power of two cut into quarters (2^8 ns = 256 ns).
const FIRST_OCTAVE: u32 = 8;
/// The last one (2^45 ns, about 9.8 hours).
const LAST_OCTAVE: u32 = 45;

/// The upper bounds in nanoseconds, increasing (see the [module docs](self)).
pub(crate) fn bounds_ns() -> &'static [u64] {
    static BOUNDS: OnceLock<Vec<u64>> = OnceLock::new();
    BOUNDS.get_or_init(|| {
        let mut bounds = Vec::new();
        for e in FIRST_OCTAVE..=LAST_OCTAVE {
            for q in 0..PER_OCTAVE {
                bounds.push(((PER_OCTAVE + q) << (e - 2)) - 1);
            }
        }
        bounds.push((1u64 << (LAST_OCTAVE + 1)) - 1);
        bounds
    })
}

/// The same bounds in seconds, as exported.
pub(crate) fn bounds_seconds() -> &'static [f64] {
    static BOUNDS: OnceLock<Vec<f64>> = OnceLock::new();
    BOUNDS.get_or_init(|| bounds_ns().iter().map(|&ns| ns as f64 / 1e9).collect())
}

/// The counts of `histogram` per exported bucket (not cumulative): one per bound, then
/// the overflow bucket above the last one.
pub(crate) fn rebucket(histogram: &Histogram) -> Vec<u64> {
    let bounds = bounds_ns();
    let mut counts = vec![0u64; bounds.len() + 1];
    for (range, count) in histogram.buckets() {
        // The first bound at or above the bucket's last nanosecond; by the invariant
        // the bucket's first nanosecond is above the bound before it.
        let k = bounds.partition_point(|&b| b < *range.end());
        counts[k] = counts[k].saturating_add(count);
    }
    counts
}

#[cfg(test)]
mod tests {
    use super::*;

    /// spanlab's bucket boundaries: below 256 every nanosecond, above it a value with
    /// at most nine significant bits (`(256 + s)·2^o`).
    fn starts_a_spanlab_bucket(ns: u64) -> bool {
        ns < 256 || ns.trailing_zeros() >= (63 - ns.leading_zeros()) - 8
    }

    #[test]
    fn every_bound_ends_a_spanlab_bucket() {
        let bounds = bounds_ns();
        assert_eq!(bounds.len(), 153);
        assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        for &b in bounds {
            assert!(starts_a_spanlab_bucket(b + 1), "{b}");
        }
        assert_eq!(bounds[0], 255);
        assert_eq!(bounds_seconds()[0], 2.55e-7);
    }

    #[test]
    fn every_spanlab_bucket_lands_whole_in_the_exported_bucket_of_all_its_values() {
        let bounds = bounds_ns();
        let mut all = Vec::new();
        for i in 0..Histogram::BUCKET_COUNT {
            let one = Histogram::from_sparse(vec![(i, 1)]).unwrap();
            let (range, _) = one.buckets().next().unwrap();
            let counts = rebucket(&one);
            let k = counts.iter().position(|&c| c == 1).unwrap();
            let low = if k == 0 { 0 } else { bounds[k - 1] + 1 };
            let high = bounds.get(k).copied().unwrap_or(u64::MAX);
            assert!(
                low <= *range.start() && *range.end() <= high,
                "{range:?} in {low}..={high}"
            );
            all.push((i, 2));
        }
        let counts = rebucket(&Histogram::from_sparse(all).unwrap());
        assert_eq!(
            counts.iter().sum::<u64>(),
            2 * u64::from(Histogram::BUCKET_COUNT)
        );
    }
}
