//! The log-linear bucket layout both histograms use: exact below `2^SUB_BITS`, then
//! `2^SUB_BITS` equal buckets per power of two.
//!
//! With `SUB = 2^SUB_BITS`:
//!
//! * values `v < SUB` have a bucket each: `index(v) = v` (exact);
//! * a value `v ≥ SUB` with `e = floor(log2 v)` falls in octave `[2^e, 2^(e+1))`, cut into
//!   `SUB` equal sub-buckets of width `2^(e - SUB_BITS)`:
//!   `index(v) = (e - SUB_BITS + 1) * SUB + (v >> (e - SUB_BITS)) - SUB`.
//!
//! Indices are contiguous and increase with `v` (monotone: `a ≤ b` gives
//! `index(a) ≤ index(b)`). A bucket's width is at most `1/SUB` of its lower bound, so
//! its midpoint is within `1/(2·SUB)` of any value in it
//! ([`LogLinear::BUCKET_RELATIVE_ERROR`]).
//!
//! The per-thread histogram of ticks (`histogram`, `SUB_BITS = 4`, small enough to keep
//! one per path per thread) and the report's histogram of nanoseconds (`sums`,
//! `SUB_BITS = 8`, exact enough to merge and re-read) are this layout with two widths.

/// The layout with `2^SUB_BITS` buckets per power of two; indices are `u64`, callers
/// narrow them to their own index type.
pub(crate) struct LogLinear<const SUB_BITS: u32>;

impl<const SUB_BITS: u32> LogLinear<SUB_BITS> {
    /// Buckets per power of two.
    pub(crate) const SUB: u64 = 1 << SUB_BITS;
    /// The largest relative distance from a bucket's midpoint to a value in it.
    pub(crate) const BUCKET_RELATIVE_ERROR: f64 = 1.0 / (2 * Self::SUB) as f64;

    /// The bucket that holds `v`.
    #[inline]
    pub(crate) fn index(v: u64) -> u64 {
        if v < Self::SUB {
            return v;
        }
        let e = 63 - v.leading_zeros(); // floor(log2 v) >= SUB_BITS
        let shift = e - SUB_BITS;
        // (v >> shift) is in [SUB, 2·SUB): the octave's sub-bucket, plus SUB.
        (e - SUB_BITS + 1) as u64 * Self::SUB + (v >> shift) - Self::SUB
    }

    /// The smallest value of bucket `i`.
    #[inline]
    pub(crate) fn lower_bound(i: u64) -> u64 {
        if i < Self::SUB {
            return i;
        }
        // The octave above the exact ones (e - SUB_BITS), and the value's top
        // SUB_BITS + 1 bits.
        (i % Self::SUB + Self::SUB) << (i / Self::SUB - 1)
    }

    /// The number of distinct values in bucket `i`.
    #[inline]
    pub(crate) fn width(i: u64) -> u64 {
        if i < Self::SUB {
            1
        } else {
            1 << (i / Self::SUB - 1)
        }
    }

    /// The value that stands for bucket `i`: its midpoint, within
    /// [`Self::BUCKET_RELATIVE_ERROR`] of every value in the bucket.
    #[inline]
    pub(crate) fn midpoint(i: u64) -> u64 {
        Self::lower_bound(i) + (Self::width(i) - 1) / 2
    }
}
