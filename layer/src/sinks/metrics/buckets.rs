//! The explicit bucket bounds of exported duration and token histograms, and the exact
//! move of a report's histogram into them.
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
//!
//! # Tokens
//!
//! `gen_ai.client.token.usage` counts tokens per LLM call, kept in the same layout with
//! tokens for nanoseconds ([`ModelStats::input_token_histogram`](crate::llm::ModelStats::input_token_histogram)).
//! Its bounds, in tokens, upper bound included:
//!
//! * `0`, `1` and `2`, then four per power of two from 4 on, at the end of each quarter:
//!   `(4 + q)·2^(e−2) − 1` tokens for `q` in 0..4 and `e` from 2 to 23 (`3, 4, 5, 6,
//!   7, 9, 11, 13, 15, 19, …`), then `2^24 − 1` (16,777,215 tokens): more than any
//!   context window, and the overflow bucket above it still counts any larger call.
//!
//! The same invariant holds: below 256 tokens every count is a bucket of its own, and
//! above, `bound + 1` is a power of two times 4, 5, 6 or 7, which starts a bucket. So
//! the exported counts are exact counts of the calls with at most `bound` tokens; a
//! quarter of a power of two is the widest an exported bucket gets.
//!
//! The GenAI conventions advise bounds at the powers of 4 (1, 4, 16, …, 67,108,864).
//! Above 511 tokens each of those is the first count of one of spanlab's buckets
//! (1,024 shares its bucket with 1,025 to 1,027), so a bound there would split a
//! bucket and its count could not be exact; these bounds are one token below such
//! starts.

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

/// The last power of two cut into quarters for tokens (2^23 tokens).
const LAST_TOKEN_OCTAVE: u32 = 23;

/// The token bounds, increasing (see the [module docs](self)).
pub(crate) fn token_bounds() -> &'static [u64] {
    static BOUNDS: OnceLock<Vec<u64>> = OnceLock::new();
    BOUNDS.get_or_init(|| {
        let mut bounds = vec![0, 1, 2];
        for e in 2..=LAST_TOKEN_OCTAVE {
            for q in 0..PER_OCTAVE {
                bounds.push(((PER_OCTAVE + q) << (e - 2)) - 1);
            }
        }
        bounds.push((1u64 << (LAST_TOKEN_OCTAVE + 1)) - 1);
        bounds
    })
}

/// The same bounds as exported (floats: OTLP's `explicit_bounds`, Prometheus' `le`).
pub(crate) fn token_bounds_exported() -> &'static [f64] {
    static BOUNDS: OnceLock<Vec<f64>> = OnceLock::new();
    BOUNDS.get_or_init(|| token_bounds().iter().map(|&n| n as f64).collect())
}

/// The counts of `histogram` per exported duration bucket (not cumulative): one per
/// bound, then the overflow bucket above the last one.
pub(crate) fn rebucket(histogram: &Histogram) -> Vec<u64> {
    rebucket_on(histogram, bounds_ns())
}

/// The counts of `histogram` per exported token bucket, as [`rebucket`] does.
pub(crate) fn rebucket_tokens(histogram: &Histogram) -> Vec<u64> {
    rebucket_on(histogram, token_bounds())
}

/// The counts of `histogram` on `bounds`, each of which ends one of its buckets.
fn rebucket_on(histogram: &Histogram, bounds: &[u64]) -> Vec<u64> {
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
    fn every_token_bound_ends_a_spanlab_bucket() {
        let bounds = token_bounds();
        assert_eq!(bounds.len(), 3 + 22 * 4 + 1);
        assert!(bounds.windows(2).all(|w| w[0] < w[1]));
        for &b in bounds {
            assert!(starts_a_spanlab_bucket(b + 1), "{b}");
        }
        assert_eq!(bounds[..10], [0, 1, 2, 3, 4, 5, 6, 7, 9, 11]);
        assert_eq!(*bounds.last().unwrap(), (1 << 24) - 1);
        assert_eq!(token_bounds_exported()[8], 9.0);
    }

    #[test]
    fn token_counts_land_exactly_at_or_below_their_bound() {
        // Around every bound (and past the last): each value counted in the first
        // exported bucket whose bound it does not exceed, as a count of exact values
        // would put it.
        let bounds = token_bounds();
        let mut values: Vec<u64> = bounds
            .iter()
            .flat_map(|&b| [b.saturating_sub(1), b, b + 1])
            .collect();
        values.extend([1 << 30, u64::MAX]);
        let mut histogram = Histogram::default();
        let mut expected = vec![0u64; bounds.len() + 1];
        for &v in &values {
            histogram.record(v);
            expected[bounds.partition_point(|&b| b < v)] += 1;
        }
        assert_eq!(rebucket_tokens(&histogram), expected);
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
