//! Count, mean and variance from exact integer power sums, mergeable across threads.
//!
//! Invariants: `sum = Σx` and `sum_sq = Σx²` over the `n` values pushed, both exact
//! integers (durations in ticks). Merging adds them, so any split of the values across
//! threads gives the same result. The population variance (numpy's default, `ddof=0`)
//!
//! ```text
//! var = (n·Σx² − (Σx)²) / n²
//! ```
//!
//! is computed with an exact 192-bit numerator, so the only rounding is the final
//! conversion to `f64`: unlike `Σx²/n − mean²` in floating point, a 1 µs jitter on a
//! 10 s mean is resolved exactly. Recording costs one 64×64→128-bit multiply and no
//! division (a running Welford update would divide on every span).
//!
//! Exact while `Σx < 2^64` and `Σx² < 2^128`: e.g. 10⁹ calls of an hour each at 3 GHz
//! stay well inside both; beyond, the sums saturate.

/// Running count and exact power sums.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Moments {
    pub(crate) n: u64,
    pub(crate) sum: u64,
    pub(crate) sum_sq: u128,
}

impl Moments {
    /// Adds one value.
    pub(crate) fn push(&mut self, x: u64) {
        self.n += 1;
        self.sum = self.sum.saturating_add(x);
        self.sum_sq = self.sum_sq.saturating_add(x as u128 * x as u128);
    }

    /// Combines two disjoint sets of values.
    pub(crate) fn merge(self, o: Moments) -> Moments {
        Moments {
            n: self.n + o.n,
            sum: self.sum.saturating_add(o.sum),
            sum_sq: self.sum_sq.saturating_add(o.sum_sq),
        }
    }

    /// The mean (0 for no values).
    #[cfg(test)]
    pub(crate) fn mean(&self) -> f64 {
        if self.n == 0 {
            0.0
        } else {
            self.sum as f64 / self.n as f64
        }
    }

    /// Population standard deviation (0 for fewer than two values).
    pub(crate) fn std(&self) -> f64 {
        if self.n < 2 {
            return 0.0;
        }
        (self.variance_numerator() / (self.n as f64 * self.n as f64)).sqrt()
    }

    /// `n·Σx² − (Σx)²`, the variance times `n²`, rounded to `f64` only at the end (0
    /// for sums no set of values has: see [`Moments::is_consistent`]).
    pub(crate) fn variance_numerator(&self) -> f64 {
        self.numerator()
            .map_or(0.0, |(hi, lo)| hi as f64 * 2f64.powi(128) + lo as f64)
    }

    /// Whether `n·Σx² ≥ (Σx)²` (Cauchy–Schwarz), as it is for any real values. Sums
    /// read from a file may break it; the variance of such sums is reported as 0.
    pub(crate) fn is_consistent(&self) -> bool {
        self.numerator().is_some()
    }

    /// `n·Σx² − (Σx)²`, exact, as (high 64 bits, low 128 bits); `None` when negative.
    fn numerator(&self) -> Option<(u64, u128)> {
        // n·Σx² as 192 bits (hi: 64, lo: 128).
        let (lo_lo, lo_hi) = ((self.sum_sq as u64) as u128, self.sum_sq >> 64);
        let n = self.n as u128;
        let low = lo_lo * n; // < 2^128
        let high = lo_hi * n + (low >> 64); // < 2^128
        let (prod_hi, prod_lo) = ((high >> 64) as u64, (high << 64) | (low & u64::MAX as u128));
        // minus (Σx)², which fits 128 bits.
        let square = self.sum as u128 * self.sum as u128;
        let (diff_lo, borrow) = prod_lo.overflowing_sub(square);
        let diff_hi = prod_hi.checked_sub(borrow as u64)?;
        Some((diff_hi, diff_lo))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two-pass population std in f64, computed independently.
    fn two_pass_std(xs: &[u64]) -> f64 {
        let mean = xs.iter().sum::<u64>() as f64 / xs.len() as f64;
        (xs.iter().map(|&x| (x as f64 - mean).powi(2)).sum::<f64>() / xs.len() as f64).sqrt()
    }

    #[test]
    fn matches_numpy_population_std() {
        // numpy.std([2, 4, 4, 4, 5, 5, 7, 9]) == 2.0
        let mut m = Moments::default();
        for x in [2, 4, 4, 4, 5, 5, 7, 9] {
            m.push(x);
        }
        assert_eq!(m.mean(), 5.0);
        assert_eq!(m.std(), 2.0);
    }

    #[test]
    fn merge_equals_pushing_everything_into_one() {
        let xs: Vec<u64> = (0..1000).map(|i| (i * 7919) % 1013 * 1500).collect();
        let (mut a, mut b, mut all) = (Moments::default(), Moments::default(), Moments::default());
        for (i, &x) in xs.iter().enumerate() {
            all.push(x);
            if i % 3 == 0 {
                a.push(x)
            } else {
                b.push(x)
            }
        }
        assert_eq!(a.merge(b), all);
        assert!((all.std() - two_pass_std(&xs)).abs() < 1e-6 * two_pass_std(&xs));
        assert_eq!(Moments::default().merge(a), a);
    }

    #[test]
    fn small_jitter_on_a_large_mean_is_exact() {
        // 10 s ± 1 µs in ns: f64 sums of squares lose this entirely.
        let mut m = Moments::default();
        for i in 0..10_000u64 {
            m.push(if i % 2 == 0 {
                10_000_001_000
            } else {
                9_999_999_000
            });
        }
        assert_eq!(m.std(), 1000.0);
        assert_eq!(m.mean(), 1e10);
    }

    #[test]
    fn numerator_beyond_128_bits_is_exact() {
        // Half zeros, half x = 3·2^43, 2^20 values: Σx = 1.5·2^63 stays below 2^64, but
        // n·Σx² = 2.25·2^127 needs more than 128 bits. The std is exactly x/2.
        let (mut m, x) = (Moments::default(), 3u64 << 43);
        for i in 0..(1u64 << 20) {
            m.push((i % 2) * x);
        }
        assert!(
            m.sum_sq.checked_mul(m.n as u128).is_none(),
            "the numerator must need > 128 bits"
        );
        assert_eq!(m.std(), (x / 2) as f64);
    }
}
