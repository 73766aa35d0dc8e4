//! `spanlab merge`: the reports of one job's ranks added into one, and, per path, how
//! the inputs differ — so that a straggler has a name.
//!
//! The merge itself is the library's exact [`Report::merge`]. Beside it, per path, the
//! *spread* over the inputs that have the path: the min, median and max of their
//! totals and of their means, and the input with the largest total. `--json` writes it
//! into the merged file under the key `"spread"` ([`SPREAD_KEY`]):
//!
//! ```json
//! "spread": {
//!   "inputs": [{ "name": "rank 0", "file": "rank0.json" }, ...],  // in merge order
//!   "paths": [{
//!     "path": ["epoch", "backward"],
//!     "inputs": 4,                                  // inputs that have the path
//!     "total_ns": { "min": 1, "median": 2, "max": 3 },  // integers: per-input totals
//!     "mean_ns": { "min": 1.0, "median": 2.0, "max": 3.0 },  // floats: per-input means
//!     "largest_total": 3                            // index into "inputs"
//!   }]
//! }
//! ```
//!
//! The median of an even number of inputs is the mean of the middle two. The library
//! reads the merged file back as any report (the key is not one it reads).
//!
//! Inputs are refused, with a message naming them, when their histogram layouts differ
//! (their buckets cannot add) or when an input has no path in common with the first
//! (reports of different programs, which a merge would only blur together).

use std::collections::HashMap;

use serde_json::{json, Value};
use spanlab::report::{human_duration, thousands};
use spanlab::Report;

use crate::input::Loaded;
use crate::Failure;

/// The key of the spread in a file `spanlab merge --json` writes.
pub const SPREAD_KEY: &str = "spread";

/// Min, median and max of some values.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Range<T> {
    /// The smallest.
    pub min: T,
    /// The middle one (the mean of the middle two for an even count).
    pub median: T,
    /// The largest.
    pub max: T,
}

/// How one path differs across the inputs that have it.
#[derive(Clone, Debug, PartialEq)]
pub struct PathSpread {
    /// Span names from the root.
    pub path: Vec<String>,
    /// How many inputs have the path.
    pub inputs: usize,
    /// Per-input totals, ns.
    pub total_ns: Range<u64>,
    /// Per-input means, ns.
    pub mean_ns: Range<f64>,
    /// The index (in merge order) of the input with the largest total: the straggler.
    pub largest_total: usize,
}

/// Merged reports with their spread.
#[derive(Clone, Debug)]
pub struct Merged {
    /// The exact merge.
    pub report: Report,
    /// Each input's name (`rank 3`, or its file name), in merge order.
    pub names: Vec<String>,
    /// Each input's file.
    pub files: Vec<String>,
    /// Per path of the merge, in its tree order.
    pub spread: Vec<PathSpread>,
}

/// Checks the inputs can be merged, merges them, and works out the spread.
pub fn merge(inputs: &[Loaded]) -> Result<Merged, Failure> {
    let Some(first) = inputs.first() else {
        return Err(Failure::input("no reports to merge".into()));
    };
    for other in &inputs[1..] {
        if other.layout != first.layout {
            return Err(Failure::input(format!(
                "refusing to merge: {} has histogram layout {:?} and {} has {:?}; \
                 their buckets cannot be added",
                first.file.display(),
                first.layout.as_deref().unwrap_or("none"),
                other.file.display(),
                other.layout.as_deref().unwrap_or("none"),
            )));
        }
        let names = |r: &Report| -> std::collections::HashSet<Vec<String>> {
            r.paths.iter().map(|p| names_of(&p.path)).collect()
        };
        if names(&first.report).is_disjoint(&names(&other.report)) {
            return Err(Failure::input(format!(
                "refusing to merge: {} and {} have no span path in common; they look like \
                 reports of different programs",
                first.file.display(),
                other.file.display()
            )));
        }
    }
    let reports: Vec<Report> = inputs.iter().map(|l| l.report.clone()).collect();
    let report =
        Report::merge(&reports).map_err(|e| Failure::input(format!("cannot merge: {e}")))?;
    let spread = spread(&report, &reports);
    Ok(Merged {
        names: inputs.iter().map(Loaded::name).collect(),
        files: inputs
            .iter()
            .map(|l| l.file.display().to_string())
            .collect(),
        report,
        spread,
    })
}

fn names_of(path: &[std::borrow::Cow<'static, str>]) -> Vec<String> {
    path.iter().map(|n| n.to_string()).collect()
}

/// The spread of every path of `merged` over `inputs`.
fn spread(merged: &Report, inputs: &[Report]) -> Vec<PathSpread> {
    // Per path, (input, total, mean) of every input that has it.
    let mut per_path: HashMap<Vec<String>, Vec<(usize, u64, f64)>> = HashMap::new();
    for (i, r) in inputs.iter().enumerate() {
        for p in &r.paths {
            let w = &p.sums.wall;
            let mean = w.sum_ns as f64 / w.count.max(1) as f64;
            per_path
                .entry(names_of(&p.path))
                .or_default()
                .push((i, w.sum_ns, mean));
        }
    }
    merged
        .paths
        .iter()
        .filter_map(|p| {
            let path = names_of(&p.path);
            let values = per_path.remove(&path)?;
            let largest = values.iter().max_by_key(|v| v.1).map_or(0, |v| v.0);
            let mut totals: Vec<u64> = values.iter().map(|v| v.1).collect();
            let mut means: Vec<f64> = values.iter().map(|v| v.2).collect();
            totals.sort_unstable();
            means.sort_by(f64::total_cmp);
            let mid = totals.len() / 2;
            let even = totals.len().is_multiple_of(2);
            let median_total = if even {
                ((u128::from(totals[mid - 1]) + u128::from(totals[mid])) / 2) as u64
            } else {
                totals[mid]
            };
            let median_mean = if even {
                (means[mid - 1] + means[mid]) / 2.0
            } else {
                means[mid]
            };
            Some(PathSpread {
                path,
                inputs: values.len(),
                total_ns: Range {
                    min: totals[0],
                    median: median_total,
                    max: totals[totals.len() - 1],
                },
                mean_ns: Range {
                    min: means[0],
                    median: median_mean,
                    max: means[means.len() - 1],
                },
                largest_total: largest,
            })
        })
        .collect()
}

impl Merged {
    /// The merged report as JSON; with `spread`, the spread under [`SPREAD_KEY`].
    pub fn to_json(&self, spread: bool) -> String {
        let json = self.report.to_json();
        if !spread {
            return json;
        }
        let Ok(Value::Object(mut map)) = serde_json::from_str::<Value>(&json) else {
            return json;
        };
        map.insert(SPREAD_KEY.into(), self.spread_json());
        serde_json::to_string_pretty(&Value::Object(map)).unwrap_or(json)
    }

    /// The spread as JSON (see the [module docs](self)).
    pub fn spread_json(&self) -> Value {
        let inputs: Vec<Value> = self
            .names
            .iter()
            .zip(&self.files)
            .map(|(name, file)| json!({ "name": name, "file": file }))
            .collect();
        let paths: Vec<Value> = self
            .spread
            .iter()
            .map(|s| {
                json!({
                    "path": s.path,
                    "inputs": s.inputs,
                    "total_ns": { "min": s.total_ns.min, "median": s.total_ns.median, "max": s.total_ns.max },
                    "mean_ns": { "min": s.mean_ns.min, "median": s.mean_ns.median, "max": s.mean_ns.max },
                    "largest_total": s.largest_total,
                })
            })
            .collect();
        json!({ "inputs": inputs, "paths": paths })
    }

    /// The spread as text columns, after a line naming the inputs.
    pub fn spread_text(&self) -> String {
        let mut out = format!(
            "spread over {} inputs ({}):\n",
            self.names.len(),
            self.names.join(", ")
        );
        let header = [
            "path",
            "inputs",
            "total min",
            "median",
            "max",
            "mean min",
            "median",
            "max",
            "largest total",
        ];
        let ns = |n: u64| human_duration(std::time::Duration::from_nanos(n));
        let rows: Vec<Vec<String>> = self
            .spread
            .iter()
            .map(|s| {
                let f = |x: f64| ns(x.round() as u64);
                vec![
                    s.path.join(" > "),
                    thousands(s.inputs as u64),
                    ns(s.total_ns.min),
                    ns(s.total_ns.median),
                    ns(s.total_ns.max),
                    f(s.mean_ns.min),
                    f(s.mean_ns.median),
                    f(s.mean_ns.max),
                    self.names.get(s.largest_total).cloned().unwrap_or_default(),
                ]
            })
            .collect();
        crate::diff::table(&mut out, &header, &rows);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::Synthetic;
    use std::path::Path;

    fn loaded(name: &str, s: Synthetic) -> Loaded {
        crate::input::parse(Path::new(name), &s.to_json()).unwrap()
    }

    #[test]
    fn the_spread_names_the_straggler() {
        let inputs: Vec<Loaded> = (0..4u64)
            .map(|r| {
                let slow = if r == 2 { 3 } else { 1 };
                loaded(
                    &format!("rank{r}.json"),
                    Synthetic::new()
                        .path("epoch", vec![1_000 * slow; 10])
                        .path("epoch > backward", vec![100 * (r + 1); 10])
                        .rank(r, 4),
                )
            })
            .collect();
        let merged = merge(&inputs).unwrap();
        assert_eq!(merged.report.paths[0].calls, 40);
        let epoch = &merged.spread[0];
        assert_eq!(
            epoch.total_ns,
            Range {
                min: 10_000,
                median: 10_000,
                max: 30_000
            }
        );
        assert_eq!(merged.names[epoch.largest_total], "rank 2");
        let backward = &merged.spread[1];
        // Totals 1000, 2000, 3000, 4000: the median of four is the middle two's mean.
        assert_eq!(backward.total_ns.median, 2_500);
        assert_eq!(backward.mean_ns.max, 400.0);
        assert_eq!(merged.names[backward.largest_total], "rank 3");
        let text = merged.spread_text();
        assert!(text.contains("rank 2"), "{text}");
        // The spread travels in the merged file, which still reads back as a report.
        let json = merged.to_json(true);
        let back = crate::input::parse(Path::new("job.json"), &json).unwrap();
        assert_eq!(back.spread.unwrap()["paths"][0]["largest_total"], 2);
    }

    #[test]
    fn different_programs_and_layouts_are_refused() {
        let a = loaded("a.json", Synthetic::new().path("epoch", vec![1; 3]));
        let b = loaded("b.json", Synthetic::new().path("serve", vec![1; 3]));
        let e = merge(&[a.clone(), b]).unwrap_err();
        assert!(
            e.message.contains("no span path in common"),
            "{}",
            e.message
        );
        assert_eq!(e.code, 2);
        let mut c = a.clone();
        c.layout = Some("ns-log-linear-128".into());
        let e = merge(&[a, c]).unwrap_err();
        assert!(e.message.contains("histogram layout"), "{}", e.message);
    }
}
