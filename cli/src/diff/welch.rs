//! Welch's t-test from a path's exact sums: is the mean of one run's calls different
//! from another's, beyond what their spread explains?
//!
//! A report keeps, per path, the count `n`, `Σx` and `Σx²` of its calls' wall times
//! exactly, which is all Welch's test needs: the mean `Σx / n` and the sample variance
//! `(n·Σx² − (Σx)²) / (n·(n − 1))`, with the numerator computed in integers where it
//! fits (it is a difference of two nearly equal large numbers, which floating point
//! would cancel away). Unlike Student's test it does not assume both runs have the
//! same variance, and its degrees of freedom come from Welch–Satterthwaite.

use spanlab::stats::DurationSums;

use super::student;

/// What a test needs of one side: count, mean and sample variance (`ddof = 1`).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Sample {
    /// Calls.
    pub n: u64,
    /// Mean, ns.
    pub mean: f64,
    /// Sample variance, ns² (0 for fewer than two calls).
    pub variance: f64,
}

impl Sample {
    /// The sample of a path's wall times.
    pub fn from_sums(w: &DurationSums) -> Sample {
        if w.count == 0 {
            return Sample {
                n: 0,
                mean: 0.0,
                variance: 0.0,
            };
        }
        let n = u128::from(w.count);
        let sum = u128::from(w.sum_ns);
        let numerator = n
            .checked_mul(w.sum_sq_ns2)
            .and_then(|a| a.checked_sub(sum * sum))
            .map(|x| x as f64)
            // Past 2^128 (far beyond real runs), the float formula; reading checked
            // n·Σx² ≥ (Σx)², so it is not negative in exact arithmetic.
            .unwrap_or_else(|| {
                (w.count as f64 * w.sum_sq_ns2 as f64 - (w.sum_ns as f64).powi(2)).max(0.0)
            });
        let variance = if w.count > 1 {
            numerator / (w.count as f64 * (w.count - 1) as f64)
        } else {
            0.0
        };
        Sample {
            n: w.count,
            mean: w.sum_ns as f64 / w.count as f64,
            variance,
        }
    }
}

/// The result of Welch's test of `new` against `base`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Welch {
    /// `(mean_new − mean_base) / standard error`: positive when `new` is slower.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value: the chance of a difference at least this large if the means
    /// were equal.
    pub p: f64,
}

/// Welch's test, or `None` when a side has fewer than two calls (no variance to
/// judge by). Two sides without any spread give `p = 1` for equal means and `p = 0`
/// otherwise: every call of each took the same time.
pub fn welch(base: &Sample, new: &Sample) -> Option<Welch> {
    if base.n < 2 || new.n < 2 {
        return None;
    }
    let (a, b) = (base.variance / base.n as f64, new.variance / new.n as f64);
    let se2 = a + b;
    let diff = new.mean - base.mean;
    if se2 <= 0.0 {
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        let t = if diff == 0.0 {
            0.0
        } else {
            diff.signum() * f64::INFINITY
        };
        return Some(Welch {
            t,
            df: (base.n + new.n - 2) as f64,
            p,
        });
    }
    let t = diff / se2.sqrt();
    let df = se2 * se2 / (a * a / (base.n - 1) as f64 + b * b / (new.n - 1) as f64);
    Some(Welch {
        t,
        df,
        p: student::two_sided_p(t, df),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(values: &[u64]) -> Sample {
        let json = crate::synthetic::Synthetic::new()
            .path("p", values.to_vec())
            .to_json();
        let report = spanlab::Report::from_json(&json).unwrap();
        Sample::from_sums(&report.paths[0].sums.wall)
    }

    #[test]
    fn the_sample_comes_exactly_from_the_sums() {
        let s = sample(&[2, 4, 4, 4, 5, 5, 7, 9]);
        assert_eq!((s.n, s.mean), (8, 5.0));
        assert!((s.variance - 32.0 / 7.0).abs() < 1e-12, "{}", s.variance);
        // Large values with a tiny spread: floating point would cancel the variance.
        let big = 10_000_000_000u64;
        let s = sample(&[big - 1, big, big + 1]);
        assert_eq!(s.variance, 1.0);
    }

    #[test]
    fn welch_matches_a_reference_computation() {
        // Computed independently (mean, ddof = 1 variance, Welch–Satterthwaite, and
        // the t density integrated numerically): t = 4.39155, df = 15.2069,
        // p = 0.000510.
        let a = sample(&[19, 21, 20, 22, 18, 20, 21, 19, 20, 20]);
        let b = sample(&[22, 24, 21, 23, 25, 20, 22, 24, 23, 26]);
        let w = welch(&a, &b).unwrap();
        assert!((w.t - 4.391_550_3).abs() < 1e-6, "{w:?}");
        assert!((w.df - 15.206_896_6).abs() < 1e-6, "{w:?}");
        assert!((w.p - 0.000_509_8).abs() < 1e-6, "{w:?}");
        // Reversed: the same p, the sign of t flips.
        let r = welch(&b, &a).unwrap();
        assert_eq!((r.t, r.p), (-w.t, w.p));
        // Equal samples: no evidence at all.
        let w = welch(&a, &a).unwrap();
        assert_eq!((w.t, w.p), (0.0, 1.0));
        // Too few calls: no test.
        assert_eq!(welch(&sample(&[5]), &a), None);
        // No spread, different means: certain.
        let w = welch(&sample(&[5, 5]), &sample(&[6, 6])).unwrap();
        assert_eq!(w.p, 0.0);
    }
}
