//! The end-of-run report: text for people, JSON and folded stacks for machines.
//!
//! A [`Report`] is a plain value built from a [`Profile`](crate::Profile) at one moment.
//! The [`Guard`](crate::Guard) builds one when it is dropped (also while `main` unwinds
//! from a panic, and on SIGINT/SIGTERM when asked) and writes it where the
//! configuration says; a program can also build one at any time and render it itself.
//!
//! | format | method | made for |
//! |---|---|---|
//! | text | [`Report::to_text`] (and `Display`) | a terminal: tree-ordered, aligned, human units |
//! | JSON | [`Report::to_json`] | scripts and diffing runs; schema in [`json`] |
//! | folded stacks | [`Report::to_folded`] | `inferno-flamegraph` / `flamegraph.pl`, self time as weight |
//!
//! # Reading back and merging
//!
//! The JSON report carries, besides its figures, the exact sums they derive from
//! (integer sums in nanoseconds, histograms in one fixed layout, seed sketches), so
//! [`Report::from_json`] reads a report back exactly as it was written, and
//! [`Report::merge`] adds reports — the ranks of a distributed job, the pieces of a run
//! that was restarted — into exactly the report one process that made every call would
//! have written: bucket by bucket, sum by sum, and therefore with the same quantiles.
//! [`json`] documents what the file holds and what merging does with each part.
//!
//! ```
//! use spanlab::Report;
//!
//! # let (_layer, guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
//! # let rank0 = guard.report().to_json();
//! # let rank1 = rank0.clone();
//! // rank0, rank1: the JSON files two ranks wrote (SPANLAB_REPORT_JSON).
//! let reports = [Report::from_json(&rank0)?, Report::from_json(&rank1)?];
//! let job = Report::merge(&reports)?;
//! assert_eq!(job.runs.len(), 2);
//! println!("{job}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod export;
pub mod json;
mod merge;
mod metrics;
mod read;
mod run;
mod text;
mod view;

use std::time::Duration;

pub use crate::sinks::open::{OpenSince, OpenSpan, OpenThread};
pub use export::{ExportReport, FlushOutcome};
pub use merge::MergeError;
pub use metrics::MetricsReport;
pub use read::ReportError;
pub use run::RunInfo;
pub use view::{human_duration, thousands, SortBy, TextOptions};

use crate::core::stats::PathStats;
use crate::riders::gpu::GpuReport;
use crate::riders::llm::PromptReport;
use crate::riders::rng::SeedReport;

/// Everything measured up to one moment, ready to render.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct Report {
    /// Time from building the layer to making this report (in a merge: the longest of
    /// the runs').
    pub elapsed: Duration,
    /// The run this report comes from; in a merge, every merged run, in order.
    pub runs: Vec<RunInfo>,
    /// Per-path statistics in tree order (see [`Profile::paths`](crate::Profile::paths)).
    pub paths: Vec<PathStats>,
    /// Spans closed without ever being entered (counted, not timed).
    pub spans_never_entered: u64,
    /// The root seed, its replay line, and what each seeded path drew.
    pub seeds: SeedReport,
    /// GPU memory per measured path and device.
    pub gpu: GpuReport,
    /// LLM calls per model, and the last few records.
    pub prompts: PromptReport,
    /// Where OTLP export sent the finished spans; `None` when export is off.
    pub export: Option<ExportReport>,
    /// Where live metrics went (Prometheus, OTLP); `None` when metrics are off.
    pub metrics: Option<MetricsReport>,
    /// Problems the run should know about (bad configuration values, bad `seed`
    /// fields, unwritable files).
    pub warnings: Vec<String>,
    /// `true` for the report the guard writes at exit — the last write of the run's
    /// report files, never replaced by a later one — and for a report read from a
    /// file written before snapshots existed (it has no `final` key: files were then
    /// written at exit only). `false` for the periodic snapshots and for a report made
    /// during the run ([`Profile::report`](crate::Profile::report)). In a merge: `true`
    /// when every merged report is final.
    pub is_final: bool,
    /// Which write of the run's report files this is: 1, 2, ... for the snapshots
    /// (`SPANLAB_SNAPSHOT_INTERVAL`), then the next number for the final write; it
    /// increases with every write of a file, so a reader can tell a newer file from an
    /// older one. 0 for a report that was not written by the run (made by
    /// [`Profile::report`](crate::Profile::report), or read from a file without the
    /// key). In a merge: the smallest of the merged reports' (see [`json`]).
    pub sequence: u64,
    /// The spans open when the report was made, per thread, from the root down (see
    /// [`OpenThread`]); in a merge, every report's, each thread tagged with its run.
    /// Usually empty at a clean exit.
    pub open_spans: Vec<OpenThread>,
}

impl Report {
    pub(crate) fn new(
        elapsed: Duration,
        run: RunInfo,
        paths: Vec<PathStats>,
        spans_never_entered: u64,
        seeds: SeedReport,
    ) -> Self {
        Report {
            elapsed,
            runs: vec![run],
            paths,
            spans_never_entered,
            seeds,
            gpu: GpuReport::default(),
            prompts: PromptReport::default(),
            export: None,
            metrics: None,
            warnings: Vec::new(),
            is_final: false,
            sequence: 0,
            open_spans: Vec::new(),
        }
    }

    /// The human-readable report: one aligned row per path, in tree order.
    ///
    /// ```text
    /// spanlab report: 5 paths, 12,900 calls, 1.46 s elapsed
    /// path              calls    total     self     mean      std      min      p50      p95      p99      max  err  panic
    /// epoch               100   1.46 s  8.86 ms  14.6 ms  1.17 ms  13.1 ms  14.4 ms  16.9 ms  17.7 ms  17.7 ms    0      0
    /// epoch > forward   3,200   1.09 s   1.09 s   340 µs  42.6 µs   292 µs   321 µs   420 µs   470 µs   854 µs    0      0
    /// ```
    pub fn to_text(&self) -> String {
        text::render(self)
    }

    /// The report as JSON (pretty-printed), in the schema documented in [`json`].
    ///
    /// ```
    /// let (_layer, guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
    /// let json = guard.report().to_json();
    /// assert!(json.contains(spanlab::report::json::SCHEMA));
    /// ```
    pub fn to_json(&self) -> String {
        json::render(self)
    }

    /// Reads back a report written by [`Report::to_json`] (schema
    /// [`spanlab.report/2`](json::SCHEMA)): the result equals the report that was
    /// written, for everything JSON carries (all of it but the span names' borrowing).
    ///
    /// Every figure is derived again from the exact sums in the file, as the writer
    /// derived it; the figures written beside them are not read. Errors say what the
    /// input is instead ([`ReportError`]): not JSON, cut off, not a spanlab report, a
    /// schema this version does not know, a `spanlab.report/1` (which carries no sums to
    /// read back or merge), or a report whose content is malformed.
    ///
    /// ```
    /// use spanlab::report::{Report, ReportError};
    ///
    /// let (_layer, guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
    /// let report = guard.report();
    /// assert_eq!(Report::from_json(&report.to_json())?, report);
    ///
    /// let old = r#"{"schema": "spanlab.report/1", "paths": []}"#;
    /// assert!(matches!(Report::from_json(old), Err(ReportError::Version1)));
    /// # Ok::<(), ReportError>(())
    /// ```
    pub fn from_json(json: &str) -> Result<Report, ReportError> {
        read::from_json(json)
    }

    /// Folded stacks, one line per path with self time (ns) as the weight:
    /// `epoch;forward 1012345678`. Feed to `inferno-flamegraph` for a flame graph.
    pub fn to_folded(&self) -> String {
        let mut out = String::new();
        for p in self.paths.iter().filter(|p| !p.self_time.is_zero()) {
            let frames: Vec<String> = p.path.iter().map(|n| sanitize_frame(n)).collect();
            out.push_str(&frames.join(";"));
            out.push(' ');
            out.push_str(&p.self_time.as_nanos().to_string());
            out.push('\n');
        }
        out
    }
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.to_text())
    }
}

/// Folded-stack frames may not contain `;` (frame separator) or line breaks.
fn sanitize_frame(name: &str) -> String {
    name.chars()
        .map(|c| if c == ';' || c.is_control() { '_' } else { c })
        .collect()
}

#[cfg(test)]
mod merge_tests;
#[cfg(test)]
mod read_tests;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::riders::rng::book::PathSeeds;
    use crate::riders::rng::{RootSeed, SeedSource};

    /// A run as a report of this process would have it, without the environment.
    pub(crate) fn sample_run() -> RunInfo {
        RunInfo::start(&crate::config::Process::of(
            &crate::config::Env::none(),
            &mut Vec::new(),
        ))
    }

    pub(crate) fn sample_report() -> Report {
        let stats = |path: Vec<&'static str>, calls: u64, total_ms: u64, self_ms: u64| {
            let mut a = crate::core::stats::Aggregate::default();
            for i in 0..calls {
                let ns = total_ms * 1_000_000 / calls + i;
                a.calls += 1;
                a.min = a.min.min(ns);
                a.max = a.max.max(ns);
                a.moments.push(ns);
                a.busy += ns;
                a.hist[crate::core::stats::histogram_index(ns)] += 1;
            }
            a.self_time = self_ms * 1_000_000;
            PathStats::from_aggregate(path, &a, crate::core::stats::TickScale(1.0))
        };
        Report::new(
            Duration::from_millis(1500),
            sample_run(),
            vec![
                stats(vec!["epoch"], 10, 1200, 100),
                stats(vec!["epoch", "forward;odd"], 80, 700, 700),
                stats(vec!["epoch", "backward"], 80, 400, 0),
            ],
            2,
            SeedReport {
                root: RootSeed {
                    value: 7,
                    source: SeedSource::Env,
                },
                replay: "SPANLAB_SEED=7 ./train".into(),
                seeds_kept: crate::rng::SEEDS_KEPT,
                paths: vec![{
                    let mut seeds = PathSeeds::default();
                    for i in 0..10 {
                        seeds.record(if i < 4 { 1 } else { 2 }, None);
                    }
                    (seeds.draws, seeds.digest) = (1280, 0xDEAD_BEEF);
                    seeds.report(vec!["epoch".into(), "shuffle".into()])
                }],
            },
        )
    }

    #[test]
    fn folded_uses_self_time_and_skips_zero_weights() {
        let folded = sample_report().to_folded();
        assert_eq!(folded, "epoch 100000000\nepoch;forward_odd 700000000\n");
    }
}
