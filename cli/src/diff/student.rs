//! Student's t distribution, through the regularized incomplete beta function.
//!
//! For `t` with `ν` degrees of freedom, the two-sided tail is
//! `P(|T| ≥ t) = I_x(ν/2, 1/2)` with `x = ν / (ν + t²)`, where `I_x(a, b)` is the
//! regularized incomplete beta function. `I_x` is computed from its continued fraction
//! (modified Lentz), which converges fast for `x < (a + 1) / (a + b + 2)`; above, the
//! symmetry `I_x(a, b) = 1 − I_{1−x}(b, a)` brings `x` back below.
//!
//! Invariants (each tested below):
//! * `0 ≤ I_x(a, b) ≤ 1`, `I_0 = 0`, `I_1 = 1`, increasing in `x`;
//! * `I_x(a, b) + I_{1−x}(b, a) = 1`;
//! * closed forms: `I_x(1, 1) = x`, `I_x(a, 1) = x^a`, `I_x(1, b) = 1 − (1 − x)^b`;
//! * the t tail: `ν = 1` (Cauchy) `1 − 2·atan(t)/π`; `ν = 2`: `1 − t/√(t² + 2)`; large
//!   `ν` tends to the normal tail.
//!
//! The continued fraction needs about `√max(a, b)` terms; past `MAX_TERMS` (20,000) (a very
//! large `ν`, where the t distribution is normal to many digits) the normal tail is
//! used instead.

/// The most continued-fraction terms evaluated before falling back to the normal tail.
const MAX_TERMS: usize = 20_000;
/// Relative change of the continued fraction below which it has converged.
const EPSILON: f64 = 1e-14;
/// Stands in for zero in Lentz's method, to keep its divisions finite.
const TINY: f64 = 1e-300;

/// The two-sided p-value of `t` with `df` degrees of freedom: `P(|T| ≥ |t|)`, in
/// `[0, 1]`. `df` must be positive; a NaN `t` or `df` gives 1 (no evidence).
pub fn two_sided_p(t: f64, df: f64) -> f64 {
    if t.is_nan() || df.is_nan() || df <= 0.0 {
        return 1.0;
    }
    if t.is_infinite() {
        return 0.0;
    }
    let x = df / (df + t * t);
    match incomplete_beta(df / 2.0, 0.5, x) {
        Some(p) => p.clamp(0.0, 1.0),
        None => normal_two_sided(t.abs()),
    }
}

/// The regularized incomplete beta function `I_x(a, b)` for `a, b > 0`, `x` in
/// `[0, 1]`; `None` when the continued fraction did not converge in `MAX_TERMS` (20,000).
pub fn incomplete_beta(a: f64, b: f64, x: f64) -> Option<f64> {
    if x <= 0.0 {
        return Some(0.0);
    }
    if x >= 1.0 {
        return Some(1.0);
    }
    // x^a (1−x)^b / (a B(a, b)), in logarithms to stay finite for large a, b.
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    if x < (a + 1.0) / (a + b + 2.0) {
        Some(ln_front.exp() * continued_fraction(a, b, x)? / a)
    } else {
        Some(1.0 - ln_front.exp() * continued_fraction(b, a, 1.0 - x)? / b)
    }
}

/// The continued fraction of `I_x(a, b)` (Numerical Recipes' `betacf`), by the modified
/// Lentz method.
fn continued_fraction(a: f64, b: f64, x: f64) -> Option<f64> {
    let (qab, qap, qam) = (a + b, a + 1.0, a - 1.0);
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    d = 1.0 / if d.abs() < TINY { TINY } else { d };
    let mut h = d;
    for m in 1..=MAX_TERMS {
        let m = m as f64;
        let m2 = 2.0 * m;
        // The even step.
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        d = 1.0 / if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        h *= d * c;
        // The odd step.
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        d = 1.0 / if d.abs() < TINY { TINY } else { d };
        c = 1.0 + aa / c;
        c = if c.abs() < TINY { TINY } else { c };
        let delta = d * c;
        h *= delta;
        if (delta - 1.0).abs() < EPSILON {
            return Some(h);
        }
    }
    None
}

/// `ln Γ(z)` for `z > 0` (Lanczos, g = 7, 9 terms: about 15 significant digits).
fn ln_gamma(z: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if z < 0.5 {
        // Reflection: Γ(z)Γ(1−z) = π / sin(πz).
        let pi = std::f64::consts::PI;
        return (pi / (pi * z).sin()).ln() - ln_gamma(1.0 - z);
    }
    let z = z - 1.0;
    let mut sum = COEF[0];
    for (i, &c) in COEF.iter().enumerate().skip(1) {
        sum += c / (z + i as f64);
    }
    let t = z + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (z + 0.5) * t.ln() - t + sum.ln()
}

/// `P(|Z| ≥ z)` for a standard normal `Z` (`erfc(z/√2)`), by the continued fraction of
/// the upper incomplete gamma function `Γ(1/2, z²/2)/Γ(1/2)`; within 1e-12.
fn normal_two_sided(z: f64) -> f64 {
    let x = z * z / 2.0;
    if x < 1.5 {
        // The series of the lower incomplete gamma P(1/2, x).
        let (mut term, mut sum, mut n) = (1.0 / 0.5, 1.0 / 0.5, 0.5);
        for _ in 0..200 {
            n += 1.0;
            term *= x / n;
            sum += term;
        }
        let p = sum * (-x + 0.5 * x.ln() - ln_gamma(0.5)).exp();
        return (1.0 - p).clamp(0.0, 1.0);
    }
    // Lentz on the continued fraction of Q(1/2, x).
    let a = 0.5;
    let mut b = x + 1.0 - a;
    let mut c = 1.0 / TINY;
    let mut d = 1.0 / b;
    let mut h = d;
    for i in 1..200 {
        let an = -(i as f64) * (i as f64 - a);
        b += 2.0;
        d = an * d + b;
        d = 1.0 / if d.abs() < TINY { TINY } else { d };
        c = b + an / c;
        c = if c.abs() < TINY { TINY } else { c };
        h *= d * c;
    }
    (h * (-x + a * x.ln() - ln_gamma(a)).exp()).clamp(0.0, 1.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    #[test]
    fn ln_gamma_matches_factorials() {
        let mut factorial = 1.0f64;
        for n in 1..30 {
            // Γ(n + 1) = n!
            factorial *= n as f64;
            assert!(
                close(ln_gamma(n as f64 + 1.0), factorial.ln(), 1e-10),
                "{n}"
            );
        }
        assert!(close(
            ln_gamma(0.5),
            std::f64::consts::PI.sqrt().ln(),
            1e-12
        ));
    }

    #[test]
    fn incomplete_beta_has_its_closed_forms_and_symmetry() {
        for &x in &[0.0, 0.01, 0.2, 0.5, 0.77, 0.99, 1.0] {
            let ib = |a, b| incomplete_beta(a, b, x).unwrap();
            assert!(close(ib(1.0, 1.0), x, 1e-12), "I_x(1,1) at {x}");
            for &a in &[0.5, 2.0, 7.5, 300.0] {
                assert!(close(ib(a, 1.0), x.powf(a), 1e-10), "I_x({a},1) at {x}");
                assert!(
                    close(ib(1.0, a), 1.0 - (1.0 - x).powf(a), 1e-10),
                    "I_x(1,{a}) at {x}"
                );
                for &b in &[0.5, 3.0, 40.0] {
                    let sym = ib(a, b) + incomplete_beta(b, a, 1.0 - x).unwrap();
                    assert!(close(sym, 1.0, 1e-10), "symmetry at a={a} b={b} x={x}");
                    assert!((0.0..=1.0).contains(&ib(a, b)));
                }
            }
        }
        // Increasing in x.
        let mut last = 0.0;
        for i in 0..=100 {
            let v = incomplete_beta(3.5, 0.5, i as f64 / 100.0).unwrap();
            assert!(v >= last, "not increasing at {i}");
            last = v;
        }
    }

    #[test]
    fn t_tails_match_known_distributions() {
        let pi = std::f64::consts::PI;
        for &t in &[0.0, 0.3, 1.0, 2.5, 10.0, 100.0] {
            // ν = 1 is the Cauchy distribution; ν = 2 has a closed form too.
            assert!(
                close(two_sided_p(t, 1.0), 1.0 - 2.0 * t.atan() / pi, 1e-10),
                "{t}"
            );
            assert!(
                close(two_sided_p(t, 2.0), 1.0 - t / (t * t + 2.0).sqrt(), 1e-10),
                "{t}"
            );
            // Large ν: the normal tail.
            assert!(close(two_sided_p(t, 1e7), normal_two_sided(t), 1e-6), "{t}");
        }
        // Table values: the two-sided 5 % critical values for 10 and 30 degrees.
        assert!(close(two_sided_p(2.228_138_85, 10.0), 0.05, 1e-7));
        assert!(close(two_sided_p(2.042_272_46, 30.0), 0.05, 1e-7));
        assert!(close(normal_two_sided(1.959_963_985), 0.05, 1e-9));
        assert!(close(normal_two_sided(0.5), 0.617_075_077_5, 1e-9));
        // Symmetric in t; degenerate inputs say "no evidence".
        assert_eq!(two_sided_p(-2.0, 5.0), two_sided_p(2.0, 5.0));
        assert_eq!(two_sided_p(f64::NAN, 5.0), 1.0);
        assert_eq!(two_sided_p(1.0, 0.0), 1.0);
        assert_eq!(two_sided_p(f64::INFINITY, 5.0), 0.0);
    }
}
