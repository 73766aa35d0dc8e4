//! Reports made up from chosen call durations, for tests and benchmarks.
//!
//! A [`Synthetic`] report is written in schema `spanlab.report/2` exactly as the
//! library writes one — exact sums, histogram in the `ns-log-linear-256` layout — so
//! that [`Report::from_json`](spanlab::Report::from_json) reads it like a real run's.
//! Tests use it to build reports whose statistics they know (a path 10 % slower, two
//! reports of different programs); benchmarks to build reports of any size.

use serde_json::{json, Value};

/// One path of a [`Synthetic`] report: its span names and each call's wall time (ns).
/// Self time is the whole wall time for a path with no children listed after it, and
/// a tenth of it otherwise — any value in `[0, total]` reads back.
#[derive(Clone, Debug)]
pub struct SyntheticPath {
    /// Span names from the root.
    pub path: Vec<String>,
    /// Wall time of each call, ns.
    pub durations: Vec<u64>,
}

/// A report built from [`SyntheticPath`]s, written as JSON by [`Synthetic::to_json`].
///
/// ```
/// use spanlab_cli::synthetic::Synthetic;
///
/// let json = Synthetic::new().path("epoch", vec![1_000; 10]).path("epoch > step", vec![90; 10]).to_json();
/// let report = spanlab::Report::from_json(&json).unwrap();
/// assert_eq!(report.paths[1].calls, 10);
/// ```
#[derive(Clone, Debug, Default)]
pub struct Synthetic {
    paths: Vec<SyntheticPath>,
    rank: Option<(u64, u64)>,
    extra: Vec<(String, Value)>,
}

impl Synthetic {
    /// An empty report.
    pub fn new() -> Self {
        Synthetic::default()
    }

    /// Adds the path `names` (`"epoch > forward"`) with these call durations (ns).
    pub fn path(mut self, names: &str, durations: Vec<u64>) -> Self {
        let path = names.split('>').map(|n| n.trim().to_string()).collect();
        self.paths.push(SyntheticPath { path, durations });
        self
    }

    /// Says the report comes from rank `rank` of a job of `world` processes.
    pub fn rank(mut self, rank: u64, world: u64) -> Self {
        self.rank = Some((rank, world));
        self
    }

    /// Adds a top-level key (`"final"`, ...) as a writer of a later schema would.
    pub fn key(mut self, key: &str, value: Value) -> Self {
        self.extra.push((key.to_string(), value));
        self
    }

    /// The report as JSON, in schema `spanlab.report/2`.
    pub fn to_json(&self) -> String {
        let mut paths = Vec::with_capacity(self.paths.len());
        for (i, p) in self.paths.iter().enumerate() {
            let has_children = self.paths[i + 1..]
                .iter()
                .any(|q| q.path.len() > p.path.len() && q.path.starts_with(&p.path));
            paths.push(path_json(p, has_children));
        }
        let (rank, world) = match self.rank {
            Some((r, w)) => (json!(r), json!(w)),
            None => (Value::Null, Value::Null),
        };
        let mut report = json!({
            "schema": "spanlab.report/2",
            "histogram_layout": "ns-log-linear-256",
            "elapsed_ns": 1_000_000_000u64,
            "runs": [{
                "start_unix_ns": "1763712000000000000", "end_unix_ns": "1763712001000000000",
                "host": "node-0", "pid": 1, "command_line": ["./train"],
                "spanlab_version": "0.1.0", "rank": rank, "local_rank": rank, "world_size": world,
            }],
            "spans_never_entered": 0,
            "warnings": [],
            "paths": paths,
            "seeds": { "root": 7, "source": "env", "replay": "SPANLAB_SEED=7 ./train",
                       "seeds_kept": 64, "paths": [] },
            "gpu": { "probe": null, "paths": [] },
            "prompts": { "models": [], "recent": [] },
            "export": null,
        });
        if let Value::Object(map) = &mut report {
            for (k, v) in &self.extra {
                map.insert(k.clone(), v.clone());
            }
        }
        report.to_string()
    }
}

fn path_json(p: &SyntheticPath, has_children: bool) -> Value {
    let d = &p.durations;
    let sum: u64 = d.iter().sum();
    let sum_sq: u128 = d.iter().map(|&x| u128::from(x) * u128::from(x)).sum();
    let self_ns = if has_children { sum / 10 } else { sum };
    let mut buckets: Vec<(u32, u64)> = Vec::new();
    let mut sorted = d.clone();
    sorted.sort_unstable();
    for &x in &sorted {
        let b = bucket(x);
        match buckets.last_mut() {
            Some((last, c)) if *last == b => *c += 1,
            _ => buckets.push((b, 1)),
        }
    }
    json!({
        "path": p.path,
        "calls": d.len(),
        "min_ns": sorted.first().copied().unwrap_or(0),
        "max_ns": sorted.last().copied().unwrap_or(0),
        "errors": 0, "panics": 0,
        "exact": { "sum_ns": sum.to_string(), "sum_sq_ns2": sum_sq.to_string(),
                   "self_ns": self_ns.to_string(), "busy_ns": sum.to_string(), "idle_ns": "0" },
        "histogram": buckets,
    })
}

/// The `ns-log-linear-256` bucket of `ns` (see `spanlab::stats::sums`): exact below
/// 256 ns, then 256 buckets per power of two.
pub fn bucket(ns: u64) -> u32 {
    if ns < 256 {
        return ns as u32;
    }
    let e = 63 - ns.leading_zeros();
    let shift = e - 8;
    ((e - 7) as u64 * 256 + (ns >> shift) - 256) as u32
}

/// `n` durations around `mean_ns`, spread evenly over ±`spread` (a fraction of the
/// mean), in a fixed order: a sample whose mean is `mean_ns` and whose standard
/// deviation is about `spread · mean / √3`.
pub fn around(mean_ns: u64, spread: f64, n: usize) -> Vec<u64> {
    (0..n)
        .map(|i| {
            let u = if n > 1 {
                i as f64 / (n - 1) as f64 * 2.0 - 1.0
            } else {
                0.0
            };
            (mean_ns as f64 * (1.0 + spread * u)).round() as u64
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn synthetic_reports_read_back_with_their_statistics() {
        let json = Synthetic::new()
            .path("epoch", around(1_000_000, 0.1, 101))
            .path("epoch > step", vec![300, 5_000_000, 70])
            .rank(2, 4)
            .to_json();
        let report = spanlab::Report::from_json(&json).unwrap();
        assert_eq!(report.paths.len(), 2);
        assert_eq!(report.paths[0].mean.as_nanos(), 1_000_000);
        assert_eq!(report.paths[1].max.as_nanos(), 5_000_000);
        assert_eq!(report.runs[0].rank, Some(2));
    }
}
