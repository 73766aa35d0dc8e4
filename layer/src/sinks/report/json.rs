//! The JSON report and its schema.
//!
//! Schema `spanlab.report/2` (the `schema` field names it; a change that removes or
//! renames a field bumps the number, adding fields does not). A report is two things
//! at once: figures to read (calls, totals, means, quantiles — the text report's
//! columns), and the exact sums those figures derive from, which
//! [`Report::from_json`](crate::Report::from_json) reads back and
//! [`Report::merge`](crate::Report::merge) adds.
//!
//! Integers that can pass 2^53 — nanosecond sums, sums of squares, Unix timestamps in
//! nanoseconds — are written as **decimal strings** (`"1010000000"`) in the fields /2
//! added, because JSON numbers above 2^53 lose precision in most readers (JavaScript,
//! jq, anything that parses doubles). Counts, single durations, bytes and the /1
//! fields are JSON numbers; /1's figure fields keep their type (the exact sums beside
//! them are the ones to trust past 2^53 ns, about 104 days).
//!
//! ```json
//! {
//!   "schema": "spanlab.report/2",
//!   "histogram_layout": "ns-log-linear-256",  // the bucket layout of every histogram
//!   "elapsed_ns": 2480000000,        // integer: layer built -> report made (merged: the longest)
//!   "final": true,                   // the run's last write (see "Snapshots" below)
//!   "sequence": 42,                  // integer: which write of the run's files this is
//!   "runs": [                        // the process that wrote it; merged: every run, in order
//!     { "start_unix_ns": "1763712000000000000",  // string: layer built
//!       "end_unix_ns": "1763712002480000000",    // string: report made
//!       "host": "node-3",            // or null where it cannot be read
//!       "pid": 4242, "command_line": ["./train", "--epochs", "3"],
//!       "spanlab_version": "0.1.0",
//!       "rank": 0, "local_rank": 0, "world_size": 8 }  // RANK, LOCAL_RANK, WORLD_SIZE; null when unset
//!   ],
//!   "spans_never_entered": 0,        // integer
//!   "warnings": ["..."],             // strings: configuration and output problems
//!   "paths": [                       // tree order: each path before its children
//!     {
//!       "path": ["epoch", "forward"],  // span names from the root
//!       "calls": 800,
//!       "total_ns": 1010000000,        // integers unless noted
//!       "mean_ns": 1262500.0,          // float
//!       "std_ns": 88400.2,             // float, population (ddof = 0)
//!       "min_ns": 1120000, "max_ns": 1610000,          // exact
//!       "p50_ns": 1250000, "p95_ns": 1410000, "p99_ns": 1500000,  // within 3.33 % (+0.5 ns)
//!       "self_ns": 1010000000, "busy_ns": 1010000000, "idle_ns": 0,
//!       "errors": 0, "panics": 0,      // exact
//!       "exact": {                     // strings: the sums every figure derives from
//!         "sum_ns": "1010000000", "sum_sq_ns2": "1281375000000000",
//!         "self_ns": "1010000000", "busy_ns": "1010000000", "idle_ns": "0" },
//!       "histogram": [[3345, 12], [3346, 30], ...]  // [bucket, count]: non-empty buckets, increasing
//!     }
//!   ],
//!   "gpu": {                         // GPU memory of measured spans
//!     "probe": "cuda-pool",          // "cuda-pool", "nvml", "simulated", or null
//!     "paths": [                     // per measured path and device, tree order
//!       { "path": ["model_init"], "device": 0, "calls": 1,
//!         "mean_delta_bytes": 268435456.0, "sum_delta_bytes": "268435456",  // string
//!         "max_delta_bytes": 268435456, "max_peak_bytes": 268435456,
//!         "max_reserved_bytes": 268435456,  // or null where the probe cannot tell
//!         "device_used_bytes": 1073741824,  // or null where the probe cannot tell
//!         "energy_joules": 0.0, "energy_mj": 0,  // the counter's millijoules, exact
//!         "energy_measured_ns": "0",     // string: time measured with energy readings
//!         "average_watts": null,         // watts when energy was read
//!         "below_resolution": 0 }
//!     ]
//!   },
//!   "prompts": {                     // LLM calls recorded with spanlab::llm
//!     "models": [{ "model": "tiny-1", "provider": "local", "calls": 12,
//!                  "input_tokens": 340, "output_tokens": 560,
//!                  "latency_mean_ns": 1200000, "latency_p95_ns": 2100000,  // null if untimed
//!                  "latency": { "count": 12, "sum_ns": "14400000",  // the timed calls
//!                               "sum_sq_ns2": "18360000000000", "min_ns": 900000,
//!                               "max_ns": 2150000,
//!                               "histogram": [[3255, 2], [3338, 9], [3590, 1]] },
//!                  "input_token_histogram": [[25, 4], [30, 8]],  // tokens per call, same
//!                  "output_token_histogram": [[40, 4], [50, 8]] }],  // layout (see below)
//!     "recent": [{ "model": "tiny-1", "provider": "local",   // the last 5 records,
//!                  "messages": [{"role": "user", "content": "hi"}], "response": "...",
//!                  "input_tokens": 3, "output_tokens": 4, "finish_reason": null,
//!                  "latency_ns": 1200000, "span_path": ["chat"], "unix_nanos": 1763...,
//!                  "truncated": false }]     // same shape as SPANLAB_PROMPTS_JSONL lines
//!   },
//!   "export": {                      // OTLP export, or null when off; integers unless noted
//!     "target": "grpc http://localhost:4317",
//!     "finished": 12900,             // spans finished in sampled traces, then each in one of:
//!     "exported": 12900,             //   accepted by the receiver
//!     "dropped": 0,                  //   queue full, or finished after export stopped
//!     "failed": 0,                   //   refused or unreachable after the retries (+ given up)
//!     "queued_at_exit": 0,           //   never sent: lost for certain
//!     "in_flight_at_exit": 0,        //   sent, unanswered: may have arrived
//!     "batches": 7,                  // batches sent, one request each (retries apart)
//!     "failed_batches": 0,
//!     "retries": 0,                  // requests sent again after a retryable failure
//!     "flush": "complete",           // "complete", "timed_out", "receiver_down", or
//!                                    // "not_flushed" (a report made before the guard's drop)
//!     "given_up_at_exit": 0,         // of "failed": queued or in flight when the flush gave
//!                                    // up on an unreachable receiver ("receiver_down")
//!     "last_error": null,            // string: the last failure's message
//!     "pending": 0                   // queued_at_exit + in_flight_at_exit (schema 1's field)
//!   },
//!   "metrics": {                     // live metrics, or null when off (absent: read as null)
//!     "prometheus": "http://127.0.0.1:9464/metrics",  // string or null: the endpoint served
//!     "scrapes": 120, "failed_scrapes": 0,            // integers
//!     "otlp": null,                  // string or null: "http/protobuf http://…/v1/metrics"
//!     "otlp_exports": 0, "otlp_failed_exports": 0,    // integers; merged reports add them
//!     "last_error": null             // string or null: a taken port, the last failed export
//!   },
//!   "open_spans": [                  // spans open when the report was made (usually none at exit)
//!     { "run": 0,                    // which of "runs" the thread belongs to
//!       "rank": 3,                   // that run's RANK, or null
//!       "thread": "main",            // the thread's name, or null
//!       "thread_number": 1,          // its ThreadId in the process
//!       "spans": [                   // from the root down: tree order, longest open first
//!         { "path": ["train", "step", "all_reduce"],
//!           "span_id": "2251799813685249",   // string: tracing's span id
//!           "fields": [["bucket", "7"]],     // [name, value] as recorded; [] when not recorded
//!           "fields_cut": false,             // the last value was cut (ends with "…")
//!           "open_ns": 300000000000,         // integer: how long it has been open, from
//!           "since": "first_seen",           //   "first_enter" (exact) or "first_seen": the
//!                                            //   first sample that saw it (a lower bound)
//!           "p99_ns": 85000000,              // its path's p99, or null before a finished call
//!           "stalled": true }                // open > SPANLAB_STALL_FACTOR × p99, and > 10 s
//!       ] }
//!   ],
//!   "seeds": {
//!     "root": 7,                     // the run's root seed
//!     "source": "env",               // "env" (SPANLAB_SEED), "builder" or "os"
//!     "replay": "SPANLAB_SEED=7 ./train",
//!     "seeds_kept": 64,              // the most seeds listed per path (rng::SEEDS_KEPT)
//!     "paths": [                     // seeded paths, tree order
//!       { "path": ["epoch", "shuffle"], "calls": 10, "draws": 1280,
//!         "digest": "00000000deadbeef",  // hex: equal digests, equal numbers drawn
//!         "distinct_seeds": 2,           // exact, or an estimate when "distinct_exact"
//!         "distinct_exact": true,        //   is false (see rng::DISTINCT_SEEDS_ERROR)
//!         "seed_range": [1, 2],          // smallest and largest seed, or null
//!         "other_seed_calls": 0,         // calls whose seed is not listed in "seeds"
//!         "seeds": [{ "seed": 1, "calls": 4 }, { "seed": 2, "calls": 6 }],
//!                                        // the smallest seeds, exact calls
//!         "sketch": "0300…01" }          // the distinct-seed sketch: 256 registers, 2 hex digits each
//!     ]
//!   }
//! }
//! ```
//!
//! # Histograms
//!
//! Every histogram is in the layout `histogram_layout` names — `ns-log-linear-256`,
//! [`Histogram::LAYOUT`](crate::stats::Histogram::LAYOUT) — written as
//! `[bucket, count]` pairs for the non-empty buckets, in increasing bucket order.
//! Bucket `i < 256` holds exactly `i` ns; above, with `o = i / 256 − 1` and
//! `s = i % 256`, bucket `i` holds `[(256 + s)·2^o, (256 + s + 1)·2^o)` ns. Quantiles
//! read from them are within [`QUANTILE_RELATIVE_ERROR`](crate::stats::QUANTILE_RELATIVE_ERROR)
//! (3.33 %) plus half a nanosecond of the exact ones; [`crate::stats::sums`] derives
//! the bound, and how clock ticks become these buckets and sums.
//!
//! `input_token_histogram` and `output_token_histogram` (per model) use the same layout
//! for tokens per call instead of nanoseconds: bucket `i < 256` holds exactly `i`
//! tokens, and so on. They count the calls that gave token counts, and the values they
//! hold sum to `input_tokens` and `output_tokens`.
//!
//! # Reading back
//!
//! [`Report::from_json`](crate::Report::from_json) reads the exact fields — `exact`,
//! `histogram`, `calls`, `min_ns`, `max_ns`, `errors`, `panics` per path; `latency` and the
//! token histograms per model; `sum_delta_bytes`, `energy_mj`, `energy_measured_ns` and the extremes per GPU
//! row; `seeds`, `seed_range`, `other_seed_calls`, `sketch` per seeded path — checks
//! them (a histogram holds `calls` values, `busy + idle = sum`...) and derives every
//! figure again, as the writer did; the figures in the file are not read.
//!
//! # Merging
//!
//! [`Report::merge`](crate::Report::merge) gives exactly what one process that made
//! every call of every report would have written:
//!
//! * paths, GPU rows and seeded paths are matched by their span names (and device);
//!   counts and sums add, extremes widen, histograms add bucket by bucket — so the
//!   quantiles are those of the whole. The tree order puts siblings in order of first
//!   appearance, earlier reports first.
//! * seeded paths keep the smallest seeds of both, under the smaller `seeds_kept`, with
//!   exact counts; sketches merge register by register (the larger), so the distinct
//!   count is derived as for one run.
//! * per model, calls and tokens add and latency and token histograms merge (a merge
//!   with a report without token histograms has none); the recent records are the
//!   last 5 by `unix_nanos`.
//! * export counts add; targets that differ are listed together (`"a, b"`), as are GPU
//!   probes that differ, and the last error of the last report that had one is kept.
//! * `open_spans` are concatenated, in the order of the reports, each thread's `run`
//!   renumbered to its run's place in the merged `runs` (its `rank` says which rank it
//!   is stuck on).
//! * `runs` are concatenated, warnings too (without repeats), `spans_never_entered`
//!   adds, `elapsed_ns` is the longest; `final` is true when every report's is, and
//!   `sequence` is the smallest.
//! * what is a fact of one run and not a sum — the root seed, its replay line, the last
//!   device-wide memory reading, a model's provider — comes from the last report that
//!   has it (the root seed and replay line from the first; a warning says when the runs'
//!   root seeds differ).
//!
//! Where clock ticks are nanoseconds, a merge of the parts of a run equals the report
//! of the whole, sum by sum. Elsewhere each report rounds its sums to whole
//! nanoseconds once (and fits Σx² to its rounded Σx: see [`crate::stats::sums`]), so a
//! merge of `k` parts can differ from the whole run's report by up to `k/2` ns in each
//! sum, and in Σx² by what that moves; the histograms still add exactly.
//!
//! # Snapshots: `final` and `sequence`
//!
//! During a run the report files are rewritten every `SPANLAB_SNAPSHOT_INTERVAL`
//! (default 60 s when a report file is configured): each write replaces the whole file
//! atomically, so a reader always finds a complete report, at most one interval old —
//! also after the process was killed. Two top-level keys, added within /2, say which
//! write a file holds:
//!
//! * `final`: `false` in a snapshot, `true` in the report written at exit, after which
//!   the file never changes again. A file without the key was written by a spanlab from
//!   before snapshots, at exit: it reads as `true`.
//! * `sequence`: 1, 2, ... for the snapshots, the next number for the final write. It
//!   increases strictly from one write of a file to the next (a write that failed
//!   leaves a gap), so of two copies the larger is the newer. 0 in a report the run did
//!   not write itself ([`Profile::report`](crate::Profile::report)), and for a file
//!   without the key.
//!
//! A merge is final when every merged report is, and its `sequence` is the smallest of
//! theirs: as complete as its least complete input (both rules are associative, and a
//! merge of one report is that report).
//!
//! # What changed from `spanlab.report/1`
//!
//! Every /1 field is still there, with its name, type and meaning, except that
//! quantiles now come from the report's nanosecond histogram: within 3.33 % plus half
//! a nanosecond, instead of 3.125 %. Added:
//!
//! * `histogram_layout`, and per path `exact` (the sums, as strings) and `histogram`;
//! * `runs` (start and end time, host, pid, command line, spanlab version, launcher
//!   ranks);
//! * per GPU row `sum_delta_bytes`, `energy_mj`, `energy_measured_ns`; `average_watts`
//!   is now null where the probe reads no energy (it was 0.0);
//! * per model `latency`;
//! * in `seeds`, `seeds_kept`, and per seeded path `sketch`;
//! * `final` and `sequence` (snapshots; absent from the first /2 files, which read as
//!   final with sequence 0).
//! * `open_spans`: the spans open when the report was made, per thread (see
//!   [`OpenThread`](crate::report::OpenThread)). Added within /2: readers accept a /2
//!   file without it (no open spans).
//! * per model `input_token_histogram` and `output_token_histogram`, tokens per call.
//!   Added within /2: readers accept a /2 file without them
//!   ([`ModelStats::input_token_histogram`](crate::llm::ModelStats::input_token_histogram)
//!   is then `None`), and a report that has none writes none.
//!
//! A /1 report cannot be read back or merged: it has neither the sums nor the
//! histograms. [`Report::from_json`](crate::Report::from_json) says so
//! ([`ReportError::Version1`](crate::report::ReportError::Version1)).

use serde::{Deserialize, Serialize};

use super::Report;
use crate::core::stats::{DurationSums, Histogram, PathStats};
use crate::riders::llm::PromptRecord;

/// The value of the `schema` field of reports written by this version.
///
/// ```
/// assert_eq!(spanlab::report::json::SCHEMA, "spanlab.report/2");
/// ```
pub const SCHEMA: &str = "spanlab.report/2";

#[derive(Serialize)]
struct JsonReport<'a> {
    schema: &'static str,
    histogram_layout: &'static str,
    elapsed_ns: u64,
    #[serde(rename = "final")]
    is_final: bool,
    sequence: u64,
    runs: &'a [super::RunInfo],
    spans_never_entered: u64,
    warnings: &'a [String],
    paths: Vec<JsonPath<'a>>,
    seeds: JsonSeeds<'a>,
    gpu: JsonGpu<'a>,
    prompts: JsonPrompts<'a>,
    export: Option<super::export::JsonExport<'a>>,
    metrics: Option<&'a super::MetricsReport>,
    open_spans: &'a [super::OpenThread],
}

#[derive(Serialize)]
struct JsonPrompts<'a> {
    models: Vec<JsonModel<'a>>,
    recent: &'a [PromptRecord],
}

#[derive(Serialize)]
struct JsonModel<'a> {
    model: &'a str,
    provider: Option<&'a str>,
    calls: u64,
    input_tokens: u64,
    output_tokens: u64,
    latency_mean_ns: Option<u64>,
    latency_p95_ns: Option<u64>,
    latency: JsonDurations<'a>,
    #[serde(skip_serializing_if = "Option::is_none")]
    input_token_histogram: Option<&'a [(u32, u64)]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    output_token_histogram: Option<&'a [(u32, u64)]>,
}

/// A [`DurationSums`], its sums as decimal strings.
#[derive(Serialize)]
struct JsonDurations<'a> {
    count: u64,
    #[serde(with = "crate::decimal")]
    sum_ns: u64,
    #[serde(with = "crate::decimal")]
    sum_sq_ns2: u128,
    min_ns: u64,
    max_ns: u64,
    histogram: &'a [(u32, u64)],
}

impl<'a> From<&'a DurationSums> for JsonDurations<'a> {
    fn from(d: &'a DurationSums) -> Self {
        JsonDurations {
            count: d.count,
            sum_ns: d.sum_ns,
            sum_sq_ns2: d.sum_sq_ns2,
            min_ns: d.min_ns,
            max_ns: d.max_ns,
            histogram: d.histogram.sparse(),
        }
    }
}

#[derive(Serialize)]
struct JsonGpu<'a> {
    probe: Option<&'a str>,
    paths: &'a [crate::riders::gpu::GpuPath],
}

#[derive(Serialize)]
struct JsonSeeds<'a> {
    root: u64,
    source: &'static str,
    replay: &'a str,
    seeds_kept: usize,
    paths: Vec<JsonSeededPath<'a>>,
}

#[derive(Serialize)]
struct JsonSeededPath<'a> {
    path: &'a [std::borrow::Cow<'static, str>],
    calls: u64,
    draws: u64,
    digest: String,
    distinct_seeds: u64,
    distinct_exact: bool,
    seed_range: Option<[u64; 2]>,
    other_seed_calls: u64,
    seeds: Vec<JsonSeed>,
    sketch: String,
}

#[derive(Serialize)]
struct JsonSeed {
    seed: u64,
    calls: u64,
}

#[derive(Serialize)]
struct JsonPath<'a> {
    path: &'a [std::borrow::Cow<'static, str>],
    calls: u64,
    total_ns: u64,
    mean_ns: f64,
    std_ns: f64,
    min_ns: u64,
    max_ns: u64,
    p50_ns: u64,
    p95_ns: u64,
    p99_ns: u64,
    self_ns: u64,
    busy_ns: u64,
    idle_ns: u64,
    errors: u64,
    panics: u64,
    exact: JsonExact,
    histogram: &'a [(u32, u64)],
}

/// A path's sums, as decimal strings (written here, read back by `read.rs`).
#[derive(Serialize, Deserialize)]
pub(super) struct JsonExact {
    #[serde(with = "crate::decimal")]
    pub(super) sum_ns: u64,
    #[serde(with = "crate::decimal")]
    pub(super) sum_sq_ns2: u128,
    #[serde(with = "crate::decimal")]
    pub(super) self_ns: u64,
    #[serde(with = "crate::decimal")]
    pub(super) busy_ns: u64,
    #[serde(with = "crate::decimal")]
    pub(super) idle_ns: u64,
}

fn ns(d: std::time::Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

impl<'a> From<&'a PathStats> for JsonPath<'a> {
    fn from(p: &'a PathStats) -> Self {
        let sums = &p.sums;
        JsonPath {
            path: &p.path,
            calls: p.calls,
            total_ns: ns(p.total),
            mean_ns: p.mean.as_nanos() as f64,
            std_ns: p.std.as_nanos() as f64,
            min_ns: ns(p.min),
            max_ns: ns(p.max),
            p50_ns: ns(p.p50),
            p95_ns: ns(p.p95),
            p99_ns: ns(p.p99),
            self_ns: ns(p.self_time),
            busy_ns: ns(p.busy),
            idle_ns: ns(p.idle),
            errors: p.errors,
            panics: p.panics,
            exact: JsonExact {
                sum_ns: sums.wall.sum_ns,
                sum_sq_ns2: sums.wall.sum_sq_ns2,
                self_ns: sums.self_ns,
                busy_ns: sums.busy_ns,
                idle_ns: sums.idle_ns,
            },
            histogram: sums.wall.histogram.sparse(),
        }
    }
}

pub(super) fn render(r: &Report) -> String {
    let report = JsonReport {
        schema: SCHEMA,
        histogram_layout: Histogram::LAYOUT,
        elapsed_ns: ns(r.elapsed),
        is_final: r.is_final,
        sequence: r.sequence,
        runs: &r.runs,
        spans_never_entered: r.spans_never_entered,
        warnings: &r.warnings,
        paths: r.paths.iter().map(JsonPath::from).collect(),
        export: r.export.as_ref().map(super::export::JsonExport::from),
        metrics: r.metrics.as_ref(),
        open_spans: &r.open_spans,
        prompts: JsonPrompts {
            models: r
                .prompts
                .models
                .iter()
                .map(|m| JsonModel {
                    model: &m.model,
                    provider: m.provider.as_deref(),
                    calls: m.calls,
                    input_tokens: m.input_tokens,
                    output_tokens: m.output_tokens,
                    latency_mean_ns: m.latency_mean.map(ns),
                    latency_p95_ns: m.latency_p95.map(ns),
                    latency: JsonDurations::from(&m.latency),
                    input_token_histogram: m.input_token_histogram.as_ref().map(|h| h.sparse()),
                    output_token_histogram: m.output_token_histogram.as_ref().map(|h| h.sparse()),
                })
                .collect(),
            recent: &r.prompts.recent,
        },
        gpu: JsonGpu {
            probe: r.gpu.probe.as_deref(),
            paths: &r.gpu.paths,
        },
        seeds: JsonSeeds {
            root: r.seeds.root.value,
            source: r.seeds.root.source.as_str(),
            replay: &r.seeds.replay,
            seeds_kept: r.seeds.seeds_kept,
            paths: r
                .seeds
                .paths
                .iter()
                .map(|p| JsonSeededPath {
                    path: &p.path,
                    calls: p.calls,
                    draws: p.draws,
                    digest: format!("{:016x}", p.digest),
                    distinct_seeds: p.distinct_seeds,
                    distinct_exact: p.distinct_exact,
                    seed_range: p.seed_range.map(|(min, max)| [min, max]),
                    other_seed_calls: p.other_seed_calls,
                    seeds: p
                        .seeds
                        .iter()
                        .map(|&(seed, calls)| JsonSeed { seed, calls })
                        .collect(),
                    sketch: p.sketch.to_hex(),
                })
                .collect(),
        },
    };
    serde_json::to_string_pretty(&report).expect("a report always serializes")
}

#[cfg(test)]
mod tests {
    use serde_json::Value;

    #[test]
    fn every_documented_field_is_present_with_its_type() {
        let report = crate::sinks::report::tests::sample_report();
        let v: Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(v["schema"], super::SCHEMA);
        assert_eq!(v["elapsed_ns"], 1_500_000_000u64);
        assert_eq!(v["spans_never_entered"], 2);
        let paths = v["paths"].as_array().unwrap();
        assert_eq!(paths.len(), 3);
        let fwd = &paths[1];
        assert_eq!(fwd["path"], serde_json::json!(["epoch", "forward;odd"]));
        for key in [
            "calls", "total_ns", "min_ns", "max_ns", "p50_ns", "p95_ns", "p99_ns", "self_ns",
            "busy_ns", "idle_ns", "errors", "panics",
        ] {
            assert!(
                fwd[key].is_u64(),
                "{key} should be an integer: {}",
                fwd[key]
            );
        }
        for key in ["mean_ns", "std_ns"] {
            assert!(fwd[key].is_f64(), "{key} should be a float");
        }
        assert_eq!(fwd["calls"], 80);
        assert_eq!(
            fwd["total_ns"].as_u64().unwrap(),
            report.paths[1].total.as_nanos() as u64
        );
        let seeds = &v["seeds"];
        assert_eq!(seeds["root"], 7);
        assert_eq!(seeds["source"], "env");
        assert_eq!(seeds["replay"], "SPANLAB_SEED=7 ./train");
        assert_eq!(seeds["seeds_kept"], crate::rng::SEEDS_KEPT);
        let expected = serde_json::json!({
            "path": ["epoch", "shuffle"], "calls": 10, "draws": 1280, "digest": "00000000deadbeef",
            "distinct_seeds": 2, "distinct_exact": true, "seed_range": [1, 2], "other_seed_calls": 0,
            "seeds": [{"seed": 1, "calls": 4}, {"seed": 2, "calls": 6}],
            "sketch": report.seeds.paths[0].sketch.to_hex(),
        });
        assert_eq!(seeds["paths"][0], expected);
    }

    #[test]
    fn the_exact_fields_of_schema_2_are_there_with_their_types() {
        let report = crate::sinks::report::tests::sample_report();
        let v: Value = serde_json::from_str(&report.to_json()).unwrap();
        assert_eq!(v["schema"], "spanlab.report/2");
        assert_eq!(v["histogram_layout"], "ns-log-linear-256");
        let run = &v["runs"][0];
        for key in ["start_unix_ns", "end_unix_ns"] {
            let text = run[key].as_str().expect("a decimal string");
            assert!(
                text.parse::<u64>().unwrap() > 1_600_000_000_000_000_000,
                "{key}"
            );
        }
        assert_eq!(run["pid"], std::process::id());
        assert!(run["command_line"].is_array() && run["spanlab_version"].is_string());
        for key in ["rank", "local_rank", "world_size"] {
            assert!(run[key].is_null(), "{key}: no launcher here");
        }
        let fwd = &v["paths"][1];
        let sums = &report.paths[1].sums;
        let exact = serde_json::json!({
            "sum_ns": sums.wall.sum_ns.to_string(),
            "sum_sq_ns2": sums.wall.sum_sq_ns2.to_string(),
            "self_ns": sums.self_ns.to_string(),
            "busy_ns": sums.busy_ns.to_string(),
            "idle_ns": sums.idle_ns.to_string(),
        });
        assert_eq!(fwd["exact"], exact);
        let buckets = fwd["histogram"].as_array().unwrap();
        let counted: u64 = buckets.iter().map(|b| b[1].as_u64().unwrap()).sum();
        assert_eq!(counted, 80);
        let indices: Vec<u64> = buckets.iter().map(|b| b[0].as_u64().unwrap()).collect();
        assert!(
            indices.windows(2).all(|w| w[0] < w[1]),
            "increasing: {indices:?}"
        );
        // A bucket's index means what the documented layout says it means.
        let ranges: Vec<_> = sums.wall.histogram.buckets().map(|(r, _)| r).collect();
        for (&i, range) in indices.iter().zip(&ranges) {
            let (o, s) = (i / 256 - 1, i % 256);
            assert_eq!(range.clone(), ((256 + s) << o)..=((256 + s + 1) << o) - 1);
        }
        assert_eq!(indices.len(), ranges.len());
    }

    #[test]
    fn a_path_past_the_kept_seeds_says_its_count_is_estimated() {
        let mut report = crate::sinks::report::tests::sample_report();
        let p = &mut report.seeds.paths[0];
        (p.distinct_seeds, p.distinct_exact, p.other_seed_calls) = (70_000, false, 90_000);
        let v: Value = serde_json::from_str(&report.to_json()).unwrap();
        let path = &v["seeds"]["paths"][0];
        assert_eq!(path["distinct_seeds"], 70_000);
        assert_eq!(path["distinct_exact"], false);
        assert_eq!(path["other_seed_calls"], 90_000);
        report.seeds.paths[0].seed_range = None;
        let v: Value = serde_json::from_str(&report.to_json()).unwrap();
        assert!(v["seeds"]["paths"][0]["seed_range"].is_null());
    }
}
