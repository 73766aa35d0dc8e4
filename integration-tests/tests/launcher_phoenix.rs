//! One job, one trace, end to end: the launcher example (`examples/launcher.rs`, built
//! here as the `launcher` bin) starts 4 worker processes of itself, handing each the
//! `traceparent` of its `launch` span; all 5 processes export to a real receiver, Arize
//! Phoenix (`common/phoenix.rs`), configured only by the `OTEL_*` variables they
//! inherit. Read back through Phoenix's REST API: one trace id across every span of the
//! 5 processes, each worker's root span parented to the launcher's span (by the span
//! id Phoenix holds), and every rank's spans there, as many as the 5 JSON reports say
//! were exported.
//!
//! Needs Phoenix: `bash scripts/install-phoenix.sh` (the test panics without it).

#[allow(dead_code)] // not every helper of common is used here
mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::process::Command;
use std::time::Duration;

use common::export::{attr, export_to, name_of, project, span_id, trace_id, Otlp, WAIT};
use common::phoenix;
use common::read_json;
use serde_json::Value;

/// As in `examples/launcher.rs`.
const WORLD_SIZE: u64 = 4;
const STEPS: u64 = 5;
/// `launch`, and per rank a `worker` and its steps.
const SPANS: u64 = 1 + WORLD_SIZE * (1 + STEPS);

/// The launcher, with none of the caller's OpenTelemetry, spanlab, trace-context or
/// launcher configuration.
fn launcher() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_launcher"));
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("OTEL_")
            || name.starts_with("SPANLAB_")
            || ["TRACEPARENT", "TRACESTATE", "RUST_LOG"].contains(&name.as_ref())
            || ["RANK", "LOCAL_RANK", "WORLD_SIZE"].contains(&name.as_ref())
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

#[test]
fn the_launchers_ranks_are_one_trace_under_its_span() {
    let phoenix = phoenix::shared();
    let project = project("launcher");
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("run.json");
    let mut cmd = launcher();
    export_to(&mut cmd, phoenix, Otlp::Grpc, &project);
    cmd.env("SPANLAB_REPORT_JSON", &json);
    let out = cmd.output().expect("the launcher runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stdout}\n{stderr}", out.status);

    // Five reports, one per process (the ranks' paths got `.rank{N}`), each of a run
    // that delivered every span it finished.
    let mut reports = vec![read_json(&json)];
    reports.extend(
        (0..WORLD_SIZE).map(|rank| read_json(&dir.path().join(format!("run.rank{rank}.json")))),
    );
    let mut pids = BTreeSet::new();
    let mut exported = 0;
    for (i, report) in reports.iter().enumerate() {
        let run = &report["runs"][0];
        let rank = if i == 0 {
            Value::Null
        } else {
            Value::from(i - 1)
        };
        assert_eq!(run["rank"], rank, "{run:#}");
        pids.insert(run["pid"].as_u64().expect("a pid"));
        let export = &report["export"];
        assert_eq!(export["exported"], export["finished"], "{export:#}");
        assert_eq!(export["flush"], "complete", "{export:#}");
        exported += export["exported"].as_u64().expect("exported");
    }
    assert_eq!(pids.len(), 5, "five processes: {pids:?}");
    assert_eq!(exported, SPANS, "the reports' exported spans");

    let spans = phoenix.wait_for_spans(&project, SPANS as usize, WAIT);
    // Nothing more arrives: every process has exited.
    std::thread::sleep(Duration::from_millis(500));
    let spans = {
        let again = phoenix.spans(&project);
        assert_eq!(again.len(), spans.len(), "spans kept arriving");
        again
    };
    let everything = || serde_json::to_string_pretty(&spans).unwrap();
    assert_eq!(spans.len() as u64, SPANS, "{}", everything());

    // One trace.
    let traces: BTreeSet<&str> = spans.iter().map(trace_id).collect();
    assert_eq!(
        traces.len(),
        1,
        "one trace id: {traces:?}\n{}",
        everything()
    );

    // The launcher's span is the root; each worker's root is its child.
    let named =
        |name: &str| -> Vec<&Value> { spans.iter().filter(|s| name_of(s) == name).collect() };
    let launch = named("launch");
    assert_eq!(launch.len(), 1, "{}", everything());
    let launch = launch[0];
    assert_eq!(launch["parent_id"], Value::Null, "{launch:#}");
    let workers = named("worker");
    let mut worker_of_rank = BTreeMap::new();
    for worker in &workers {
        assert_eq!(
            worker["parent_id"].as_str(),
            Some(span_id(launch)),
            "a worker's root under the launcher's span: {worker:#}"
        );
        let rank = attr(worker, "rank").as_i64().expect("rank");
        assert!(
            worker_of_rank.insert(rank, span_id(worker)).is_none(),
            "rank {rank} twice: {}",
            everything()
        );
    }
    assert_eq!(
        worker_of_rank.keys().copied().collect::<Vec<_>>(),
        (0..WORLD_SIZE as i64).collect::<Vec<_>>(),
        "every rank's worker span"
    );

    // Each rank's steps, under that rank's worker.
    let mut steps: BTreeMap<i64, BTreeSet<i64>> = BTreeMap::new();
    for step in named("step") {
        let rank = attr(step, "rank").as_i64().expect("rank");
        assert_eq!(
            step["parent_id"].as_str(),
            worker_of_rank.get(&rank).copied(),
            "rank {rank}'s step under rank {rank}'s worker: {step:#}"
        );
        steps
            .entry(rank)
            .or_default()
            .insert(attr(step, "step").as_i64().expect("step"));
    }
    for rank in 0..WORLD_SIZE as i64 {
        assert_eq!(
            steps.get(&rank).map(BTreeSet::len),
            Some(STEPS as usize),
            "rank {rank}'s steps: {}",
            everything()
        );
    }
}
