//! The JSON report and its schema.
//!
//! Schema `spanlab.report/1` (the `schema` field names it; a change that removes or
//! renames a field bumps the number, adding fields does not):
//!
//! ```json
//! {
//!   "schema": "spanlab.report/1",
//!   "elapsed_ns": 2480000000,        // integer: layer built -> report made
//!   "spans_never_entered": 0,        // integer
//!   "warnings": ["..."],             // strings: configuration and output problems
//!   "paths": [                       // tree order: each path before its children
//!     {
//!       "path": ["epoch", "forward"],  // span names from the root
//!       "calls": 800,
//!       "total_ns": 1010000000,        // integers unless noted
//!       "mean_ns": 1262500.0,          // float
//!       "std_ns": 88400.2,             // float, population (ddof = 0)
//!       "min_ns": 1120000, "max_ns": 1610000,
//!       "p50_ns": 1250000, "p95_ns": 1410000, "p99_ns": 1500000,  // within 3.125 %
//!       "self_ns": 1010000000, "busy_ns": 1010000000, "idle_ns": 0,
//!       "errors": 0, "panics": 0
//!     }
//!   ],
//!   "gpu": {                         // GPU memory of measured spans
//!     "probe": "cuda-pool",          // "cuda-pool", "nvml", "simulated", or null
//!     "paths": [                     // per measured path and device, tree order
//!       { "path": ["model_init"], "device": 0, "calls": 1,
//!         "mean_delta_bytes": 268435456.0, "max_delta_bytes": 268435456,
//!         "max_peak_bytes": 268435456,
//!         "max_reserved_bytes": 268435456,  // or null where the probe cannot tell
//!         "device_used_bytes": 1073741824,  // or null where the probe cannot tell
//!         "energy_joules": 0.0, "average_watts": null,  // watts when energy is on
//!         "below_resolution": 0 }
//!     ]
//!   },
//!   "prompts": {                     // LLM calls recorded with spanlab::llm
//!     "models": [{ "model": "tiny-1", "provider": "local", "calls": 12,
//!                  "input_tokens": 340, "output_tokens": 560,
//!                  "latency_mean_ns": 1200000, "latency_p95_ns": 2100000 }],  // null if untimed
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
//!   "seeds": {
//!     "root": 7,                     // the run's root seed
//!     "source": "env",               // "env" (SPANLAB_SEED), "builder" or "os"
//!     "replay": "SPANLAB_SEED=7 ./train",
//!     "paths": [                     // seeded paths, tree order
//!       { "path": ["epoch", "shuffle"], "calls": 10, "draws": 1280,
//!         "digest": "00000000deadbeef",  // hex: equal digests, equal numbers drawn
//!         "seeds": [{ "seed": 1, "calls": 4 }, { "seed": 2, "calls": 6 }] }
//!     ]
//!   }
//! }
//! ```

use serde::Serialize;

use super::Report;
use crate::core::stats::PathStats;

/// The value of the `schema` field of reports written by this version.
pub const SCHEMA: &str = "spanlab.report/1";

#[derive(Serialize)]
struct JsonReport<'a> {
    schema: &'static str,
    elapsed_ns: u64,
    spans_never_entered: u64,
    warnings: &'a [String],
    paths: Vec<JsonPath<'a>>,
    seeds: JsonSeeds<'a>,
    gpu: JsonGpu<'a>,
    prompts: JsonPrompts<'a>,
    export: Option<super::export::JsonExport<'a>>,
}

#[derive(Serialize)]
struct JsonPrompts<'a> {
    models: Vec<JsonModel<'a>>,
    recent: &'a [crate::riders::llm::PromptRecord],
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
    paths: Vec<JsonSeededPath<'a>>,
}

#[derive(Serialize)]
struct JsonSeededPath<'a> {
    path: &'a [&'static str],
    calls: u64,
    draws: u64,
    digest: String,
    seeds: Vec<JsonSeed>,
}

#[derive(Serialize)]
struct JsonSeed {
    seed: u64,
    calls: u64,
}

#[derive(Serialize)]
struct JsonPath<'a> {
    path: &'a [&'static str],
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
}

fn ns(d: std::time::Duration) -> u64 {
    d.as_nanos().min(u64::MAX as u128) as u64
}

impl<'a> From<&'a PathStats> for JsonPath<'a> {
    fn from(p: &'a PathStats) -> Self {
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
        }
    }
}

pub(super) fn render(r: &Report) -> String {
    let report = JsonReport {
        schema: SCHEMA,
        elapsed_ns: ns(r.elapsed),
        spans_never_entered: r.spans_never_entered,
        warnings: &r.warnings,
        paths: r.paths.iter().map(JsonPath::from).collect(),
        export: r.export.as_ref().map(super::export::JsonExport::from),
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
            paths: r
                .seeds
                .paths
                .iter()
                .map(|p| JsonSeededPath {
                    path: &p.path,
                    calls: p.calls,
                    draws: p.draws,
                    digest: format!("{:016x}", p.digest),
                    seeds: p
                        .seeds
                        .iter()
                        .map(|&(seed, calls)| JsonSeed { seed, calls })
                        .collect(),
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
        let expected = serde_json::json!({
            "path": ["epoch", "shuffle"], "calls": 10, "draws": 1280, "digest": "00000000deadbeef",
            "seeds": [{"seed": 1, "calls": 4}, {"seed": 2, "calls": 6}]
        });
        assert_eq!(seeds["paths"][0], expected);
    }
}
