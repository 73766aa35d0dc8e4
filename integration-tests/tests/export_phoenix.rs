//! spanlab's OTLP export end to end: the `export_workload` binary (`src/bin`) exports
//! to a real receiver, Arize Phoenix (`common/phoenix.rs`), configured only by the
//! standard `OTEL_*` variables, and the tests read the spans back through Phoenix's REST
//! API and compare them with the program and with its JSON report's `export` section.
//!
//! * `tree` over gRPC and over HTTP/protobuf: every span, its ids and parentage (also
//!   for a span entered on another thread), typed attributes, code location, busy time,
//!   events, error status; the report accounts for exactly the spans Phoenix holds.
//! * GenAI: the LLM spans with and without content capture (no text leaves without it).
//! * `TRACEPARENT`: the run joins the given trace under the given parent (and a parent
//!   that is not sampled exports nothing).
//!
//! The outage (receiver killed and restarted mid-run) is in `export_outage.rs`.
//!
//! Needs Phoenix: `bash scripts/install-phoenix.sh` (the tests panic without it).

#[allow(dead_code)] // not every helper of common is used here
mod common;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use common::export::{
    attr, expected_target, export_to, export_workload, name_of, project, report_path, span_id,
    trace_id, Otlp, WAIT,
};
use common::phoenix::{self, span_named, Phoenix};
use common::read_json;
use serde_json::{json, Value};

/// The workload's source, to check `code.lineno`.
const WORKLOAD_SOURCE: &str = include_str!("../src/bin/export_workload.rs");

// The texts of the workload's two LLM calls (as in `src/bin/export_workload.rs`).
const PROMPT_CHAT: &str = "PROMPT-7f3a: what is the loss after three epochs?";
const REPLY_CHAT: &str = "REPLY-9c2e: about a sixth";
const PROMPT_RERANK: &str = "PROMPT-51d0: rank these checkpoints";
const REPLY_RERANK: &str = "REPLY-e8b4: epoch 2 first";
/// Pieces of those texts that must not leave the process without content capture.
const SECRET_TEXT: [&str; 8] = [
    "PROMPT-7f3a",
    "what is the loss after three epochs",
    "REPLY-9c2e",
    "about a sixth",
    "PROMPT-51d0",
    "rank these checkpoints",
    "REPLY-e8b4",
    "epoch 2 first",
];
const DETAILS_EVENT: &str = "gen_ai.client.inference.operation.details";

/// The spans `tree` makes: name -> count (27 in all).
const TREE: [(&str, usize); 11] = [
    ("epoch", 3),
    ("forward", 3),
    ("loss", 3),
    ("backward", 3),
    ("validate", 3),
    ("prefetch", 3),
    ("decode", 3),
    ("checkpoint", 3),
    ("summary", 1),
    ("chat tiny-1", 1),
    ("rerank", 1),
];
const TREE_SPANS: u64 = 27;

/// A finished `tree` run: its JSON report and the spans Phoenix got.
struct TreeRun {
    report: Value,
    spans: Vec<Value>,
}

/// Runs `tree` exporting to `phoenix` over `otlp` into `project` (with `env` added),
/// then waits for the spans its report says it exported and checks no more come.
fn run_tree(phoenix: &Phoenix, otlp: Otlp, project: &str, env: &[(&str, &str)]) -> TreeRun {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("report.json");
    let mut cmd = export_workload("tree");
    export_to(&mut cmd, phoenix, otlp, project);
    cmd.env("SPANLAB_REPORT_JSON", &json)
        .envs(env.iter().copied());
    let out = cmd.output().expect("export_workload runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{:?}\n{stderr}", out.status);
    let report = read_json(&json);
    let export = &report["export"];
    assert!(
        export.is_object(),
        "no export section: {report:#}\n{stderr}"
    );
    let exported = export["exported"].as_u64().expect("exported") as usize;
    let spans = if exported == 0 {
        Vec::new()
    } else {
        phoenix.wait_for_spans(project, exported, WAIT)
    };
    // Nothing more arrives: the program has exited, and Phoenix holds what it exported.
    std::thread::sleep(Duration::from_millis(500));
    let again = phoenix.spans(project);
    assert_eq!(
        again.len(),
        spans.len(),
        "spans kept arriving after the run: {export}\n{stderr}"
    );
    TreeRun {
        report,
        spans: again,
    }
}

/// The export section of a run that delivered all its `n` spans.
fn check_export_complete(report: &Value, target: &str, n: u64, phoenix_holds: usize) {
    let export = &report["export"];
    assert_eq!(export["target"], target, "{export:#}");
    assert_eq!(export["finished"], n, "{export:#}");
    assert_eq!(export["exported"], export["finished"], "{export:#}");
    for key in [
        "dropped",
        "failed",
        "queued_at_exit",
        "in_flight_at_exit",
        "pending",
        "failed_batches",
        "retries",
        "given_up_at_exit",
    ] {
        assert_eq!(export[key], 0, "{key}: {export:#}");
    }
    assert_eq!(export["flush"], "complete", "{export:#}");
    assert!(export["batches"].as_u64().unwrap() >= 1, "{export:#}");
    assert_eq!(export["last_error"], Value::Null, "{export:#}");
    assert_eq!(
        export["finished"].as_u64(),
        Some(phoenix_holds as u64),
        "the report's finished spans are the spans Phoenix holds: {export:#}"
    );
}

fn is_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

fn assert_int(value: &Value, expected: i64, what: &str) {
    assert!(
        value.is_i64() && value.as_i64() == Some(expected),
        "{what}: expected the JSON integer {expected}, got {value}"
    );
}

fn assert_float(value: &Value, expected: f64, what: &str) {
    assert!(
        value.is_f64() && value.as_f64() == Some(expected),
        "{what}: expected the JSON float {expected:?}, got {value}"
    );
}

/// RFC 3339 times of one clock compare as strings (Python's isoformat leaves out a zero
/// fraction, and `+` sorts before `.`, so that still orders correctly).
fn time<'a>(span: &'a Value, key: &str) -> &'a str {
    span[key]
        .as_str()
        .unwrap_or_else(|| panic!("{key}: {span:#}"))
}

/// Checks everything about the spans of one `tree` run. `remote`: the (trace id, span
/// id) of a `TRACEPARENT` the run was given.
fn check_tree(spans: &[Value], remote: Option<(&str, &str)>) {
    let everything = || serde_json::to_string_pretty(spans).unwrap();

    // The spans, by name.
    let mut names: BTreeMap<&str, usize> = BTreeMap::new();
    for span in spans {
        *names.entry(name_of(span)).or_default() += 1;
    }
    let expected: BTreeMap<&str, usize> = TREE.into_iter().collect();
    assert_eq!(names, expected, "{}", everything());
    assert_eq!(spans.len() as u64, TREE_SPANS);

    // Ids: lowercase hex, span ids unique.
    let mut by_id: HashMap<&str, &Value> = HashMap::new();
    for span in spans {
        assert!(is_hex(trace_id(span), 32), "{span:#}");
        assert!(is_hex(span_id(span), 16), "{span:#}");
        assert!(
            by_id.insert(span_id(span), span).is_none(),
            "span id {} twice",
            span_id(span)
        );
    }

    // Parentage: every child's parent_id is its parent's span_id, in the same trace.
    let expected_parent = |name: &str| match name {
        "forward" | "loss" | "backward" | "validate" | "prefetch" | "checkpoint" => Some("epoch"),
        "decode" => Some("prefetch"),
        "chat tiny-1" | "rerank" => Some("summary"),
        _ => None,
    };
    let mut children: BTreeMap<(&str, &str), usize> = BTreeMap::new();
    for span in spans {
        let name = name_of(span);
        match expected_parent(name) {
            None => match remote {
                None => assert_eq!(span["parent_id"], Value::Null, "root {span:#}"),
                Some((trace, parent)) => {
                    assert_eq!(
                        span["parent_id"], parent,
                        "root under the remote parent {span:#}"
                    );
                    assert_eq!(trace_id(span), trace, "{span:#}");
                }
            },
            Some(parent_name) => {
                let parent_id = span["parent_id"]
                    .as_str()
                    .unwrap_or_else(|| panic!("{name} has no parent: {span:#}"));
                let parent = by_id.get(parent_id).unwrap_or_else(|| {
                    panic!(
                        "{name}'s parent {parent_id} is not exported: {}",
                        everything()
                    )
                });
                assert_eq!(name_of(parent), parent_name, "{name}'s parent: {parent:#}");
                assert_eq!(trace_id(span), trace_id(parent), "{name}: {span:#}");
                *children.entry((parent_id, name)).or_default() += 1;
                // The child within its parent.
                assert!(
                    time(parent, "start_time") <= time(span, "start_time"),
                    "{span:#}"
                );
                assert!(
                    time(span, "end_time") <= time(parent, "end_time"),
                    "{span:#}"
                );
                // Each epoch's own children (the `epoch` argument is the epoch's).
                if ["forward", "loss", "backward", "validate"].contains(&name) {
                    assert_eq!(attr(span, "epoch"), attr(parent, "epoch"), "{span:#}");
                }
            }
        }
        assert!(
            time(span, "start_time") <= time(span, "end_time"),
            "{span:#}"
        );
    }
    // Exactly one child of each kind per parent.
    for span in spans {
        let kids: &[&str] = match name_of(span) {
            "epoch" => &[
                "forward",
                "loss",
                "backward",
                "validate",
                "prefetch",
                "checkpoint",
            ],
            "prefetch" => &["decode"],
            "summary" => &["chat tiny-1", "rerank"],
            _ => &[],
        };
        for kid in kids {
            assert_eq!(
                children.get(&(span_id(span), kid)),
                Some(&1),
                "one {kid} under {span:#}\n{}",
                everything()
            );
        }
    }

    // Traces: one per epoch tree and one for the summary, or all in the remote trace.
    let traces: BTreeSet<&str> = spans.iter().map(trace_id).collect();
    match remote {
        None => {
            assert_eq!(traces.len(), 4, "{traces:?}");
            let roots: BTreeSet<&str> = spans
                .iter()
                .filter(|s| s["parent_id"].is_null())
                .map(trace_id)
                .collect();
            assert_eq!(roots, traces);
        }
        Some((trace, _)) => assert_eq!(traces, BTreeSet::from([trace])),
    }

    // The epochs, with their i64 field.
    let mut epochs: Vec<i64> = spans
        .iter()
        .filter(|s| s["name"] == "epoch")
        .map(|s| {
            assert!(attr(s, "epoch").is_i64(), "{s:#}");
            attr(s, "epoch").as_i64().unwrap()
        })
        .collect();
    epochs.sort_unstable();
    assert_eq!(epochs, [0, 1, 2]);

    for span in spans {
        let name = name_of(span);
        let attributes = &span["attributes"];
        // Code location: the callsite (spanlab's own for `llm::chat`, whose module
        // path is where it is defined, `riders::llm`, not the re-export `spanlab::llm`).
        if name == "chat tiny-1" {
            assert_eq!(
                attr(span, "code.function"),
                "spanlab::riders::llm::chat",
                "{span:#}"
            );
            let file = attr(span, "code.filepath").as_str().unwrap_or_default();
            assert!(file.ends_with("llm/mod.rs"), "{span:#}");
            assert!(
                attr(span, "code.lineno").as_i64().unwrap_or(0) > 0,
                "{span:#}"
            );
        } else {
            assert_eq!(
                attr(span, "code.function"),
                format!("export_workload::{name}").as_str(),
                "{span:#}"
            );
            let file = attr(span, "code.filepath").as_str().unwrap_or_default();
            assert!(file.ends_with("src/bin/export_workload.rs"), "{span:#}");
            let line = attr(span, "code.lineno");
            assert!(line.is_i64(), "{span:#}");
            let text = WORKLOAD_SOURCE
                .lines()
                .nth(line.as_u64().unwrap() as usize - 1)
                .unwrap_or_else(|| panic!("line {line} is not in the workload"));
            // `#[instrument]`'s callsite is the attribute, the function is below it;
            // `info_span!`'s the macro, the name maybe on the next line.
            let next = WORKLOAD_SOURCE
                .lines()
                .nth(line.as_u64().unwrap() as usize)
                .unwrap_or_default();
            let quoted = format!("\"{name}\"");
            assert!(
                (text.contains("info_span!(")
                    && (text.contains(&quoted) || next.trim_start().starts_with(&quoted)))
                    || (text.trim_start().starts_with("#[instrument")
                        && next.contains(&format!("fn {name}("))),
                "{name}: code.lineno {line} is `{text}`"
            );
        }
        // spanlab's timing attributes, as integers.
        let busy = attr(span, "spanlab.busy_ns");
        assert!(busy.is_i64() && busy.as_i64().unwrap() > 0, "{span:#}");
        // Idle time as the report counts it: between the first enter and the last
        // exit. Every span of `tree` is entered once: none.
        let idle = attr(span, "spanlab.idle_ns");
        assert!(idle.is_i64() && idle.as_i64().unwrap() == 0, "{span:#}");
        // Status: only the failed `validate` is an error.
        if name == "validate" && attr(span, "epoch") == 2 {
            assert_eq!(span["status_code"], "ERROR", "{span:#}");
            assert_eq!(
                span["status_message"], "loss diverged at epoch 2",
                "{span:#}"
            );
            let events = span["events"].as_array().unwrap();
            assert_eq!(events.len(), 1, "{span:#}");
            assert_eq!(events[0]["name"], "loss diverged at epoch 2");
            assert_eq!(events[0]["attributes"]["level"], "ERROR");
            assert_eq!(events[0]["attributes"]["error"], "loss diverged at epoch 2");
        } else {
            assert_eq!(span["status_code"], "UNSET", "{span:#}");
            assert_eq!(span["status_message"], "", "{span:#}");
        }
        if !["chat tiny-1", "rerank"].contains(&name) {
            assert_eq!(span["span_kind"], "UNKNOWN", "{span:#}");
        }
        let events = span["events"].as_array().expect("events is an array");
        let event_named = |event: &str| {
            assert_eq!(events.len(), 1, "{span:#}");
            let e = &events[0];
            assert_eq!(e["name"], event, "{span:#}");
            assert_eq!(e["attributes"]["level"], "INFO", "{span:#}");
            assert_eq!(e["attributes"]["target"], "export_workload", "{span:#}");
            let at = e["timestamp"].as_str().expect("a timestamp");
            assert!(
                time(span, "start_time") <= at && at <= time(span, "end_time"),
                "{span:#}"
            );
            &e["attributes"]
        };
        match name {
            "forward" => {
                let epoch = attr(span, "epoch").as_i64().unwrap();
                assert_int(attr(span, "batch_size"), 32, "forward.batch_size");
                assert_float(attr(span, "lr"), 0.125, "forward.lr");
                assert_float(attr(span, "scale"), 2.0, "forward.scale");
                assert_eq!(attr(span, "train"), &json!(epoch % 2 == 0), "{span:#}");
                assert_eq!(attr(span, "model"), "mlp", "{span:#}");
                assert!(events.is_empty(), "{span:#}");
            }
            "loss" => {
                let epoch = attr(span, "epoch").as_i64().unwrap();
                let fields = event_named("loss computed");
                assert_int(&fields["step"], epoch * 100, "loss event step");
                assert_float(
                    &fields["value"],
                    0.5 / (epoch + 1) as f64,
                    "loss event value",
                );
                assert_eq!(fields["converged"], json!(epoch == 2), "{span:#}");
                assert_eq!(fields.as_object().unwrap().len(), 5, "{span:#}");
            }
            "backward" => {
                assert!(busy.as_i64().unwrap() >= 2_000_000, "slept 2 ms: {span:#}");
                assert!(events.is_empty(), "{span:#}");
            }
            "prefetch" => {
                assert_int(attr(span, "worker"), 1, "prefetch.worker");
                assert_eq!(attr(span, "shard"), "train-0", "{span:#}");
                // An event from the thread the span was entered on.
                assert_int(&event_named("prefetched")["rows"], 128, "prefetched.rows");
            }
            "decode" => {
                assert_int(attr(span, "bytes"), 4096, "decode.bytes");
                assert_int(&event_named("batch decoded")["items"], 32, "items");
            }
            "summary" => {
                // Follows from the last epoch (Phoenix's REST API has no links to show).
                assert_int(attr(span, "epochs"), 3, "summary.epochs");
            }
            "epoch" => {
                // Recorded after creation (`Span::record`), as a float.
                let epoch = attr(span, "epoch").as_i64().unwrap();
                assert_float(attr(span, "loss"), 0.5 / (epoch + 1) as f64, "epoch.loss");
                assert!(events.is_empty(), "{span:#}");
            }
            "checkpoint" => {
                // Moved to another thread, and given a value, an event and its close
                // there.
                assert_eq!(attr(span, "path"), "ckpt.bin", "{span:#}");
                assert_int(attr(span, "bytes"), 1 << 20, "checkpoint.bytes");
                assert_eq!(event_named("checkpoint written")["kept"], json!(true));
            }
            _ => {}
        }
        // Resource attributes stay in the resource.
        for key in [
            "service.name",
            "openinference.project.name",
            "deployment.environment",
        ] {
            assert!(attributes.get(key).is_none(), "{key} in {span:#}");
        }
    }
}

/// The two LLM spans, with (`capture`) or without their text.
fn check_genai(spans: &[Value], capture: bool) {
    let chat = span_named(spans, "chat tiny-1");
    let rerank = span_named(spans, "rerank");
    for (span, model) in [(chat, "tiny-1"), (rerank, "tiny-2")] {
        assert_eq!(span["span_kind"], "LLM", "{span:#}");
        assert_eq!(attr(span, "gen_ai.operation.name"), "chat", "{span:#}");
        assert_eq!(attr(span, "gen_ai.request.model"), model, "{span:#}");
        assert_eq!(attr(span, "gen_ai.response.model"), model, "{span:#}");
        assert_eq!(attr(span, "gen_ai.provider.name"), "local", "{span:#}");
        assert_eq!(attr(span, "llm.model_name"), model, "{span:#}");
        assert_eq!(attr(span, "llm.provider"), "local", "{span:#}");
        assert!(attr(span, "openinference.span.kind").is_null(), "{span:#}");
    }
    // `llm::chat` gave no token counts: none are made up.
    for key in [
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "llm.token_count.prompt",
        "llm.token_count.completion",
        "llm.token_count.total",
        "gen_ai.response.finish_reasons",
    ] {
        assert!(attr(chat, key).is_null(), "{key}: {chat:#}");
    }
    // `llm::record` in `rerank` did.
    assert_int(attr(rerank, "gen_ai.usage.input_tokens"), 7, "input tokens");
    assert_int(
        attr(rerank, "gen_ai.usage.output_tokens"),
        5,
        "output tokens",
    );
    assert_int(attr(rerank, "llm.token_count.prompt"), 7, "prompt tokens");
    assert_int(
        attr(rerank, "llm.token_count.completion"),
        5,
        "completion tokens",
    );
    assert_int(attr(rerank, "llm.token_count.total"), 12, "total tokens");
    assert_eq!(
        attr(rerank, "gen_ai.response.finish_reasons"),
        &json!(["stop"]),
        "{rerank:#}"
    );
    assert_int(attr(rerank, "candidates"), 3, "rerank.candidates");

    let details = |span: &Value| -> Vec<Value> {
        span["events"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["name"] == DETAILS_EVENT)
            .cloned()
            .collect()
    };
    if capture {
        for (span, prompt, reply, finish) in [
            (chat, PROMPT_CHAT, REPLY_CHAT, None),
            (rerank, PROMPT_RERANK, REPLY_RERANK, Some("stop")),
        ] {
            assert_eq!(attr(span, "input.value"), prompt, "{span:#}");
            assert_eq!(attr(span, "output.value"), reply, "{span:#}");
            assert_eq!(attr(span, "input.mime_type"), "text/plain", "{span:#}");
            assert_eq!(attr(span, "output.mime_type"), "text/plain", "{span:#}");
            let input = json!([{"role": "user", "parts": [{"type": "text", "content": prompt}]}]);
            let mut output =
                json!({"role": "assistant", "parts": [{"type": "text", "content": reply}]});
            if let Some(finish) = finish {
                output["finish_reason"] = json!(finish);
            }
            let output = json!([output]);
            let parsed = |v: &Value| -> Value {
                serde_json::from_str(v.as_str().unwrap_or_else(|| panic!("{v} in {span:#}")))
                    .expect("messages are JSON")
            };
            assert_eq!(parsed(attr(span, "gen_ai.input.messages")), input);
            assert_eq!(parsed(attr(span, "gen_ai.output.messages")), output);
            let events = details(span);
            assert_eq!(events.len(), 1, "one details event: {span:#}");
            let fields = &events[0]["attributes"];
            assert_eq!(fields["gen_ai.operation.name"], "chat");
            assert_eq!(
                &fields["gen_ai.request.model"],
                attr(span, "gen_ai.request.model")
            );
            assert_eq!(parsed(&fields["gen_ai.input.messages"]), input);
            assert_eq!(parsed(&fields["gen_ai.output.messages"]), output);
        }
    } else {
        for span in [chat, rerank] {
            for key in [
                "input.value",
                "input.mime_type",
                "gen_ai.input.messages",
                "gen_ai.output.messages",
            ] {
                assert!(attr(span, key).is_null(), "{key} without capture: {span:#}");
            }
            // Phoenix makes up an `output.value` from the GenAI attributes when there is
            // none (`{"model": "tiny-1"}`, application/json): never the response text.
            assert_ne!(attr(span, "output.mime_type"), "text/plain", "{span:#}");
            assert!(details(span).is_empty(), "{span:#}");
        }
        // No text anywhere: not in any attribute, event or name, of any span (nor in
        // what Phoenix derives from the GenAI attributes, `llm.input_messages.*`).
        let all = serde_json::to_string(spans).unwrap();
        for text in SECRET_TEXT {
            assert!(!all.contains(text), "{text:?} left without capture: {all}");
        }
        assert!(!all.contains("llm.input_messages"), "{all}");
        assert!(!all.contains("llm.output_messages"), "{all}");
    }
}

fn tree_over(otlp: Otlp, name: &str) {
    let phoenix = phoenix::shared();
    let project = project(name);
    let run = run_tree(phoenix, otlp, &project, &[]);
    check_export_complete(
        &run.report,
        &expected_target(phoenix, otlp),
        TREE_SPANS,
        run.spans.len(),
    );
    check_tree(&run.spans, None);
    check_genai(&run.spans, false);
    // The failed call is also in the report's path statistics.
    let validate = report_path(&run.report, &["epoch", "validate"]);
    assert_eq!(validate["errors"], 1, "{validate}");
}

#[test]
fn tree_over_grpc_arrives_whole_with_ids_parents_types_events_and_status() {
    tree_over(Otlp::Grpc, "tree-grpc");
}

#[test]
fn tree_over_http_protobuf_arrives_whole_with_ids_parents_types_events_and_status() {
    tree_over(Otlp::Http, "tree-http");
}

#[test]
fn genai_spans_carry_prompt_and_response_with_content_capture() {
    let phoenix = phoenix::shared();
    let project = project("genai-capture");
    // No protocol variable: the default, http/protobuf, to the base URL + /v1/traces.
    let run = run_tree(
        phoenix,
        Otlp::Default,
        &project,
        &[("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "true")],
    );
    check_export_complete(
        &run.report,
        &expected_target(phoenix, Otlp::Default),
        TREE_SPANS,
        run.spans.len(),
    );
    check_genai(&run.spans, true);
    // The text is on the LLM spans alone.
    for span in &run.spans {
        if !["chat tiny-1", "rerank"].contains(&name_of(span)) {
            let text = span.to_string();
            assert!(
                SECRET_TEXT.iter().all(|t| !text.contains(t)),
                "text on another span: {span:#}"
            );
        }
    }
}

#[test]
fn genai_spans_carry_no_text_without_content_capture() {
    let phoenix = phoenix::shared();
    for (otlp, capture, name) in [
        (Otlp::Grpc, None, "genai-unset"),
        (Otlp::Http, Some("false"), "genai-false"),
    ] {
        let project = project(name);
        let env: Vec<(&str, &str)> = capture
            .map(|v| ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", v))
            .into_iter()
            .collect();
        let run = run_tree(phoenix, otlp, &project, &env);
        check_export_complete(
            &run.report,
            &expected_target(phoenix, otlp),
            TREE_SPANS,
            run.spans.len(),
        );
        check_genai(&run.spans, false);
    }
}

/// `bytes` random bytes as lowercase hex (never all zeros).
fn random_hex(bytes: usize) -> String {
    let mut hex = String::new();
    while hex.len() < bytes * 2 {
        let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
        hasher.write_usize(hex.len());
        hex.push_str(&format!("{:016x}", hasher.finish() | 1));
    }
    hex.truncate(bytes * 2);
    hex
}

#[test]
fn traceparent_puts_the_run_under_the_remote_parent() {
    let phoenix = phoenix::shared();
    let (trace, parent) = (random_hex(16), random_hex(8));
    let project_sampled = project("traceparent");
    let run = run_tree(
        phoenix,
        Otlp::Grpc,
        &project_sampled,
        &[("TRACEPARENT", &format!("00-{trace}-{parent}-01"))],
    );
    check_export_complete(
        &run.report,
        &expected_target(phoenix, Otlp::Grpc),
        TREE_SPANS,
        run.spans.len(),
    );
    check_tree(&run.spans, Some((&trace, &parent)));

    // A remote parent that was not sampled: the default parent-based sampler exports
    // nothing (and the run is still profiled).
    let project_unsampled = project("traceparent-unsampled");
    let (trace, parent) = (random_hex(16), random_hex(8));
    let run = run_tree(
        phoenix,
        Otlp::Grpc,
        &project_unsampled,
        &[("TRACEPARENT", &format!("00-{trace}-{parent}-00"))],
    );
    let export = &run.report["export"];
    for key in [
        "finished",
        "exported",
        "dropped",
        "failed",
        "queued_at_exit",
        "in_flight_at_exit",
        "batches",
    ] {
        assert_eq!(export[key], 0, "{key}: {export:#}");
    }
    assert_eq!(run.spans, Vec::<Value>::new());
    assert_eq!(report_path(&run.report, &["epoch"])["calls"], 3);
}
