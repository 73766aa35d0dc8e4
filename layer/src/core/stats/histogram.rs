//! A fixed-size log-linear histogram of durations in clock ticks.
//!
//! Every span path keeps one of these per thread, so its size is fixed and small, and
//! recording is one index computation and one counter bump. Quantiles (p50/p95/p99)
//! are read from the merged buckets.
//!
//! # Layout and invariants
//!
//! The [`LogLinear`] layout with `SUB_BITS = 4` (`SUB = 16` sub-buckets per power of
//! two): exact below 16, then 16 buckets per octave. A bucket's midpoint is within
//! `1/(2*SUB)` = **3.125 %** of any value in it ([`BUCKET_RELATIVE_ERROR`]). Reports do
//! not read quantiles from these buckets directly: they carry them over into the
//! nanosecond layout of [`super::sums`], whose bound
//! [`QUANTILE_RELATIVE_ERROR`](super::QUANTILE_RELATIVE_ERROR) includes this one.
//!
//! Values are clamped to `MAX_TRACKABLE` = 2^48 − 1 ticks (26 hours at a 3 GHz TSC, 78
//! hours where ticks are nanoseconds); longer spans land in the last bucket, and the
//! exact maximum is kept separately by the caller. The bucket layout is relative, so
//! converting ticks to nanoseconds keeps every error bound.
//! 720 buckets of `u64`: 5.6 KiB per path per thread.

use super::log_linear::LogLinear;

/// log2 of the number of sub-buckets per power of two.
pub(crate) const SUB_BITS: u32 = 4;
/// The layout: [`LogLinear`] with [`SUB_BITS`].
type Layout = LogLinear<SUB_BITS>;
/// Sub-buckets per power of two.
const SUB: u64 = Layout::SUB;
/// The largest value with a bucket of its own; larger values are clamped to it.
pub(crate) const MAX_TRACKABLE: u64 = (1 << 48) - 1;
/// Number of buckets: `index(MAX_TRACKABLE) + 1`.
pub(crate) const BUCKETS: usize = ((48 - SUB_BITS as usize) * SUB as usize) + SUB as usize;

/// The largest relative distance from a bucket's midpoint to a value in it (0.03125).
pub(crate) const BUCKET_RELATIVE_ERROR: f64 = Layout::BUCKET_RELATIVE_ERROR;

/// The bucket that holds `v` (clamped to [`MAX_TRACKABLE`]).
#[inline]
pub(crate) fn index(v: u64) -> usize {
    Layout::index(v.min(MAX_TRACKABLE)) as usize
}

/// The smallest value of bucket `i` (tests: the reports go through [`midpoint`]).
#[cfg(test)]
pub(crate) fn lower_bound(i: usize) -> u64 {
    Layout::lower_bound(i as u64)
}

/// The number of distinct values in bucket `i` (tests).
#[cfg(test)]
pub(crate) fn width(i: usize) -> u64 {
    Layout::width(i as u64)
}

/// The value that stands for bucket `i`: its midpoint, within
/// [`BUCKET_RELATIVE_ERROR`] of every value in the bucket.
pub(crate) fn midpoint(i: usize) -> u64 {
    Layout::midpoint(i as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_contiguous_and_cover_their_values() {
        assert_eq!(index(MAX_TRACKABLE), BUCKETS - 1);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
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
    fn midpoint_is_within_the_stated_error_of_every_value_in_its_bucket() {
        for i in 0..BUCKETS {
            let (lo, hi) = (lower_bound(i), lower_bound(i) + width(i) - 1);
            let mid = midpoint(i) as f64;
            for v in [lo, hi] {
                let err = (mid - v as f64).abs() / v.max(1) as f64;
                assert!(err <= BUCKET_RELATIVE_ERROR, "bucket {i} value {v}: {err}");
            }
        }
    }
}
