//! `spanlab diff BASE NEW`: per path, how the new run's timings moved, and whether the
//! move is real.
//!
//! Paths match by their span names. For each path in both runs the change of mean,
//! p50, p95 and total is shown, with Welch's t-test on the calls' wall times
//! ([`welch`]): its p-value is the chance of a difference of means at least this large
//! between two runs of equal speed. The verdict follows criterion's rules: a change is
//! *slower* or *faster* only when it is significant (`p <` [`ALPHA`]) **and** larger
//! than the noise band (`--noise`, ±1 % by default) — a significant change inside the
//! band is *within noise*, a change that is not significant is *no change*, however
//! large it looks. Paths in one run only are *new* or *vanished*.
//!
//! `--fail` turns the comparison into a gate: exit status 1 when any path is slower by
//! more than `--threshold` (5 % by default) with `p <` [`ALPHA`].
//!
//! The quantile changes are read from histograms whose quantiles are within 3.3 % of
//! the exact ones, so changes of p50 and p95 smaller than that may be the buckets'
//! doing; the test is on the mean, which is exact.
//!
//! `--json` prints schema `spanlab.diff/1`:
//!
//! ```json
//! { "schema": "spanlab.diff/1", "base": "base.json", "new": "new.json",
//!   "alpha": 0.05, "threshold_percent": 5.0, "noise_percent": 1.0,
//!   "regressions": ["epoch > backward"],          // what --fail fails on
//!   "paths": [{ "path": ["epoch", "backward"],
//!               "verdict": "slower",              // or faster, within noise, no change,
//!                                                 //   untested, new, vanished
//!               "regression": true,
//!               "base": { "calls": 3200, "mean_ns": 145000.0, "sample_std_ns": 20700.0,
//!                         "p50_ns": 146000, "p95_ns": 182000, "total_ns": 465000000 },
//!               "new": { ... },                   // null for a vanished path
//!               "change": { "mean": 0.41, "p50": 0.389, "p95": 0.372, "total": 0.41 },
//!               "test": { "t": 93.1, "df": 5580.2, "p": 0.0 } }] }  // null: untested
//! ```

pub mod student;
pub mod welch;

use std::collections::HashMap;
use std::fmt::Write;
use std::time::Duration;

use serde_json::{json, Value};
use spanlab::report::{human_duration, thousands};
use spanlab::stats::PathStats;
use spanlab::Report;

use welch::{Sample, Welch};

/// The significance level: a change with a p-value below it is taken as real.
pub const ALPHA: f64 = 0.05;

/// How a comparison judges changes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DiffOptions {
    /// `--fail` fails on a path slower by more than this, in percent of the base mean.
    pub threshold_percent: f64,
    /// Changes of the mean within ± this percentage are noise, significant or not.
    pub noise_percent: f64,
}

impl Default for DiffOptions {
    fn default() -> Self {
        DiffOptions {
            threshold_percent: 5.0,
            noise_percent: 1.0,
        }
    }
}

/// The verdict on one path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Significantly slower, beyond the noise band.
    Slower,
    /// Significantly faster, beyond the noise band.
    Faster,
    /// Significant, but within the noise band.
    WithinNoise,
    /// Not significant.
    NoChange,
    /// Fewer than two calls on a side: no test possible.
    Untested,
    /// Only in the new run.
    New,
    /// Only in the base run.
    Vanished,
}

impl Verdict {
    /// The verdict as the text and JSON write it.
    pub fn name(self) -> &'static str {
        match self {
            Verdict::Slower => "slower",
            Verdict::Faster => "faster",
            Verdict::WithinNoise => "within noise",
            Verdict::NoChange => "no change",
            Verdict::Untested => "untested",
            Verdict::New => "new",
            Verdict::Vanished => "vanished",
        }
    }
}

/// One path compared.
#[derive(Clone, Debug)]
pub struct PathChange {
    /// Span names from the root.
    pub path: Vec<String>,
    /// The path in the base run.
    pub base: Option<PathStats>,
    /// The path in the new run.
    pub new: Option<PathStats>,
    /// Welch's test of the wall times, when both sides have two calls or more.
    pub test: Option<Welch>,
    /// The verdict.
    pub verdict: Verdict,
}

impl PathChange {
    /// The relative change of the mean (`0.1`: 10 % slower), when on both sides.
    pub fn mean_change(&self) -> Option<f64> {
        self.change(|p| p.sums.wall.sum_ns as f64 / p.calls.max(1) as f64)
    }

    fn change(&self, figure: impl Fn(&PathStats) -> f64) -> Option<f64> {
        let (b, n) = (figure(self.base.as_ref()?), figure(self.new.as_ref()?));
        (b > 0.0).then(|| n / b - 1.0)
    }

    /// Whether `--fail` fails on this path: slower by more than the threshold, with
    /// `p <` [`ALPHA`].
    pub fn is_regression(&self, options: &DiffOptions) -> bool {
        let significant = self.test.is_some_and(|t| t.p < ALPHA);
        significant
            && self
                .mean_change()
                .is_some_and(|c| c * 100.0 > options.threshold_percent)
    }
}

/// Two runs compared, path by path: the new run's paths in its tree order, then the
/// vanished ones in the base's.
#[derive(Clone, Debug)]
pub struct Diff {
    /// The options judged by.
    pub options: DiffOptions,
    /// Every path of either run.
    pub paths: Vec<PathChange>,
}

impl Diff {
    /// Compares `new` with `base`.
    pub fn compare(base: &Report, new: &Report, options: DiffOptions) -> Diff {
        let key = |p: &PathStats| p.path.iter().map(|n| n.to_string()).collect::<Vec<_>>();
        let base_by_path: HashMap<Vec<String>, &PathStats> =
            base.paths.iter().map(|p| (key(p), p)).collect();
        let mut paths = Vec::with_capacity(new.paths.len());
        let mut seen = std::collections::HashSet::new();
        for n in &new.paths {
            let path = key(n);
            let b = base_by_path.get(&path).copied();
            seen.insert(path.clone());
            paths.push(judge(path, b.cloned(), Some(n.clone()), &options));
        }
        for b in &base.paths {
            let path = key(b);
            if !seen.contains(&path) {
                paths.push(judge(path, Some(b.clone()), None, &options));
            }
        }
        Diff { options, paths }
    }

    /// The paths `--fail` fails on.
    pub fn regressions(&self) -> Vec<&PathChange> {
        self.paths
            .iter()
            .filter(|p| p.is_regression(&self.options))
            .collect()
    }

    /// The comparison as aligned text; `base` and `new` name the inputs.
    pub fn to_text(&self, base: &str, new: &str) -> String {
        let mut out = String::new();
        let count = |v: Verdict| self.paths.iter().filter(|p| p.verdict == v).count();
        let _ = writeln!(
            out,
            "spanlab diff: {base} -> {new}: {} paths; {} slower, {} faster, {} new, {} vanished",
            self.paths.len(),
            count(Verdict::Slower),
            count(Verdict::Faster),
            count(Verdict::New),
            count(Verdict::Vanished)
        );
        let header = [
            "path", "calls", "mean", "new mean", "Δmean", "Δp50", "Δp95", "Δtotal", "p-value",
            "verdict",
        ];
        let mut rows: Vec<Vec<String>> = Vec::new();
        for c in &self.paths {
            let calls = match (&c.base, &c.new) {
                (Some(b), Some(n)) => format!("{} -> {}", thousands(b.calls), thousands(n.calls)),
                (Some(b), None) => format!("{} -> 0", thousands(b.calls)),
                (None, Some(n)) => format!("0 -> {}", thousands(n.calls)),
                (None, None) => String::new(),
            };
            let mean =
                |p: &Option<PathStats>| p.as_ref().map_or("-".into(), |p| human_duration(p.mean));
            let pct = |f: fn(&PathStats) -> Duration| {
                c.change(|p| f(p).as_nanos() as f64)
                    .map_or("-".into(), percent)
            };
            let mut verdict = c.verdict.name().to_string();
            if c.is_regression(&self.options) {
                verdict.push_str(" !");
            }
            rows.push(vec![
                c.path.join(" > "),
                calls,
                mean(&c.base),
                mean(&c.new),
                c.mean_change().map_or("-".into(), percent),
                pct(|p| p.p50),
                pct(|p| p.p95),
                pct(|p| p.total),
                c.test.map_or("-".into(), |t| p_value(t.p)),
                verdict,
            ]);
        }
        table(&mut out, &header, &rows);
        let _ = writeln!(
            out,
            "(Δ: new/base - 1; p-value: Welch's t-test on the mean, slower/faster when \
             p < {ALPHA} and outside the noise band of ±{}%; ! = slower by more than the \
             threshold of {}%; p50/p95 within 3.3%)",
            self.options.noise_percent, self.options.threshold_percent
        );
        out
    }

    /// The comparison as JSON (schema `spanlab.diff/1`); `base` and `new` name the
    /// inputs.
    pub fn to_json(&self, base: &str, new: &str) -> Value {
        let side = |p: &Option<PathStats>| {
            p.as_ref().map(|p| {
                let s = Sample::from_sums(&p.sums.wall);
                json!({
                    "calls": p.calls, "mean_ns": s.mean, "sample_std_ns": s.variance.sqrt(),
                    "p50_ns": p.p50.as_nanos() as u64, "p95_ns": p.p95.as_nanos() as u64,
                    "total_ns": p.total.as_nanos() as u64,
                })
            })
        };
        let paths: Vec<Value> = self
            .paths
            .iter()
            .map(|c| {
                json!({
                    "path": c.path,
                    "verdict": c.verdict.name(),
                    "regression": c.is_regression(&self.options),
                    "base": side(&c.base),
                    "new": side(&c.new),
                    "change": {
                        "mean": c.mean_change(),
                        "p50": c.change(|p| p.p50.as_nanos() as f64),
                        "p95": c.change(|p| p.p95.as_nanos() as f64),
                        "total": c.change(|p| p.total.as_nanos() as f64),
                    },
                    "test": c.test.map(|t| json!({
                        "t": finite(t.t), "df": finite(t.df), "p": t.p
                    })),
                })
            })
            .collect();
        json!({
            "schema": "spanlab.diff/1",
            "base": base,
            "new": new,
            "alpha": ALPHA,
            "threshold_percent": self.options.threshold_percent,
            "noise_percent": self.options.noise_percent,
            "regressions": self.regressions().iter().map(|c| c.path.join(" > ")).collect::<Vec<_>>(),
            "paths": paths,
        })
    }
}

/// JSON has no infinity: a t of a difference without spread is written as null.
fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn judge(
    path: Vec<String>,
    base: Option<PathStats>,
    new: Option<PathStats>,
    options: &DiffOptions,
) -> PathChange {
    let (test, verdict) = match (&base, &new) {
        (None, _) => (None, Verdict::New),
        (_, None) => (None, Verdict::Vanished),
        (Some(b), Some(n)) => {
            let test = welch::welch(
                &Sample::from_sums(&b.sums.wall),
                &Sample::from_sums(&n.sums.wall),
            );
            (test, Verdict::NoChange)
        }
    };
    let mut change = PathChange {
        path,
        base,
        new,
        test,
        verdict,
    };
    if change.verdict == Verdict::NoChange {
        change.verdict = match (change.test, change.mean_change()) {
            (None, _) | (_, None) => Verdict::Untested,
            (Some(t), _) if t.p >= ALPHA => Verdict::NoChange,
            (Some(_), Some(c)) if c.abs() * 100.0 <= options.noise_percent => Verdict::WithinNoise,
            (Some(_), Some(c)) if c > 0.0 => Verdict::Slower,
            _ => Verdict::Faster,
        };
    }
    change
}

/// `0.1034` → `+10.3%`.
fn percent(change: f64) -> String {
    format!("{:+.1}%", change * 100.0)
}

/// A p-value with the digits that matter: `0.031`, `<0.001`.
fn p_value(p: f64) -> String {
    if p < 0.001 {
        "<0.001".into()
    } else {
        format!("{p:.3}")
    }
}

/// Aligned columns, two spaces apart, the first left-aligned and the last left-aligned.
pub(crate) fn table(out: &mut String, header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let last = header.len() - 1;
    let header: Vec<String> = header.iter().map(|h| h.to_string()).collect();
    for row in std::iter::once(&header).chain(rows) {
        let mut line = String::new();
        for (i, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let sep = if i == 0 { "" } else { "  " };
            if i == 0 || i == last {
                let _ = write!(line, "{sep}{cell:<w$}");
            } else {
                let _ = write!(line, "{sep}{cell:>w$}");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{around, Synthetic};

    fn report(s: Synthetic) -> Report {
        Report::from_json(&s.to_json()).unwrap()
    }

    fn base() -> Synthetic {
        Synthetic::new()
            .path("epoch", around(10_000_000, 0.05, 200))
            .path("epoch > forward", around(1_000_000, 0.05, 200))
            .path("epoch > backward", around(2_000_000, 0.05, 200))
            .path("epoch > old", around(1_000, 0.05, 200))
    }

    #[test]
    fn a_real_slowdown_fails_and_noise_does_not() {
        let new = Synthetic::new()
            .path("epoch", around(10_050_000, 0.05, 200)) // +0.5 %: inside the noise band
            .path("epoch > forward", around(1_000_000, 0.05, 200))
            .path("epoch > backward", around(2_200_000, 0.05, 200)) // +10 %
            .path("epoch > fresh", around(1_000, 0.05, 200));
        let diff = Diff::compare(&report(base()), &report(new), DiffOptions::default());
        let verdict = |name: &str| {
            diff.paths
                .iter()
                .find(|c| c.path.join(" > ") == name)
                .unwrap()
                .verdict
        };
        assert_eq!(verdict("epoch > backward"), Verdict::Slower);
        assert_eq!(verdict("epoch > forward"), Verdict::NoChange);
        assert_eq!(verdict("epoch > fresh"), Verdict::New);
        assert_eq!(verdict("epoch > old"), Verdict::Vanished);
        assert!(matches!(
            verdict("epoch"),
            Verdict::WithinNoise | Verdict::NoChange
        ));
        let regressions: Vec<String> = diff
            .regressions()
            .iter()
            .map(|c| c.path.join(" > "))
            .collect();
        assert_eq!(regressions, ["epoch > backward"]);
        // A higher threshold lets the same change through.
        let lenient = DiffOptions {
            threshold_percent: 15.0,
            ..DiffOptions::default()
        };
        let new = Synthetic::new().path("epoch > backward", around(2_200_000, 0.05, 200));
        let diff = Diff::compare(&report(base()), &report(new), lenient);
        assert!(diff.regressions().is_empty());
        let text = diff.to_text("a.json", "b.json");
        assert!(text.contains("+10.0%"), "{text}");
    }

    #[test]
    fn a_large_change_without_significance_is_no_change() {
        // Two calls each, far apart: the means differ by 20 % but the spread is huge.
        let b = Synthetic::new().path("step", vec![1_000, 9_000]);
        let n = Synthetic::new().path("step", vec![1_200, 10_800]);
        let diff = Diff::compare(&report(b), &report(n), DiffOptions::default());
        assert_eq!(diff.paths[0].verdict, Verdict::NoChange);
        assert!(diff.regressions().is_empty());
        let json = diff.to_json("a", "b");
        assert_eq!(json["paths"][0]["verdict"], "no change");
        assert!(json["paths"][0]["test"]["p"].as_f64().unwrap() > 0.05);
    }
}
