//! Prompt records through the layer.

use std::sync::{Arc, Mutex};

use tracing::{info_span, Instrument};
use tracing_subscriber::prelude::*;

use super::{chat, record, LlmCall, PromptRecorder};
use crate::{ReportTarget, SpanLab};

fn builder() -> crate::Builder {
    SpanLab::builder().report_to(ReportTarget::Off).ignore_env()
}

fn bot(prompt: &str) -> String {
    let reply = format!("echo: {prompt}");
    record(
        LlmCall::new("tiny-1")
            .provider("local")
            .prompt(prompt)
            .response(reply.clone())
            .tokens(2, 3),
    );
    reply
}

#[test]
fn records_land_in_every_recorder_above_the_call_and_nowhere_else() {
    let (layer, guard) = builder().build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        bot("before any recorder");
        let outer = PromptRecorder::new();
        // A recorder nests in the recorders whose scope it is created in (span parents
        // are fixed at creation, as for every span).
        let inner = outer.in_scope(PromptRecorder::new);
        outer.in_scope(|| {
            info_span!("agent").in_scope(|| bot("first"));
            inner.in_scope(|| bot("second"));
        });
        let outer_prompts: Vec<String> = outer.records().iter().map(|r| r.prompt_text()).collect();
        assert_eq!(outer_prompts, ["first", "second"]);
        assert_eq!(inner.records().len(), 1);
        assert_eq!(outer.records()[0].span_path, ["prompt_recorder", "agent"]);
        assert_eq!(outer.records()[1].response, "echo: second");
        assert!(outer.to_string().contains("user: first"), "{outer}");
    });
    let prompts = guard.report().prompts;
    assert_eq!(
        (prompts.models[0].calls, prompts.models[0].input_tokens),
        (3, 6),
        "the book counts all"
    );
}

#[test]
fn other_threads_and_tasks_carrying_the_recorder_span_record_into_it() {
    let (layer, _guard) = builder().build();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        let recorder = PromptRecorder::new();
        std::thread::scope(|s| {
            for t in 0..3 {
                let (span, dispatch) = (recorder.span().clone(), dispatch.clone());
                s.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        span.in_scope(|| bot(&format!("t{t}")))
                    })
                });
            }
        });
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            for i in 0..2 {
                async move { bot(&format!("task{i}")) }
                    .instrument(recorder.span().clone())
                    .await;
            }
        });
        let mut prompts: Vec<String> = recorder.records().iter().map(|r| r.prompt_text()).collect();
        prompts.sort();
        assert_eq!(prompts, ["t0", "t1", "t2", "task0", "task1"]);
    });
}

#[test]
fn redaction_then_the_size_cap_before_anything_is_kept_or_written() {
    let dir = tempfile::tempdir().unwrap();
    let jsonl = dir.path().join("prompts.jsonl");
    let (layer, guard) = builder()
        .redact(|t| t.replace("sk-12345", "[key]"))
        .prompt_size_cap(16)
        .prompts_jsonl(&jsonl)
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let recorder = PromptRecorder::new();
        recorder.in_scope(|| {
            record(
                LlmCall::new("m")
                    .prompt("use sk-12345 please now")
                    .response("short"),
            );
            record(LlmCall::new("m").prompt("ok").response("ok"));
        });
        let first = &recorder.records()[0];
        assert_eq!(
            first.messages[0].content,
            "use [key] please…[truncated 4 bytes]"
        );
        assert!(first.truncated && !recorder.records()[1].truncated);
        // Flushed per record: the file is complete before the guard drops.
        let lines: Vec<serde_json::Value> = std::fs::read_to_string(&jsonl)
            .unwrap()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0]["messages"][0]["content"],
            "use [key] please…[truncated 4 bytes]"
        );
        assert!(!std::fs::read_to_string(&jsonl)
            .unwrap()
            .contains("sk-12345"));
    });
    let text = guard.report().to_text();
    assert!(
        !text.contains("sk-12345") && text.contains("prompts:"),
        "{text}"
    );
}

#[test]
fn odd_input_never_panics() {
    let (layer, _guard) = builder().build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let recorder = PromptRecorder::new();
        recorder.in_scope(|| {
            record(
                LlmCall::new("m")
                    .prompt_bytes(&[0xff, b'h', b'i', 0xfe])
                    .response("bell\u{7} and nul\0"),
            );
            record(
                LlmCall::new("m")
                    .prompt("x".repeat(1 << 20))
                    .response("big"),
            );
        });
        let records = recorder.records();
        assert_eq!(records[0].messages[0].content, "\u{FFFD}hi\u{FFFD}");
        assert!(records[1].truncated);
        let transcript = recorder.to_string();
        assert!(
            transcript.contains("bell\\u{7} and nul\\0"),
            "control characters escaped: {transcript}"
        );
    });
    // Without a spanlab layer, recording is a no-op, not an error.
    record(LlmCall::new("m").prompt("nobody listens"));
    assert!(super::take_pending().is_none());
}

#[test]
fn chat_times_the_call_and_the_report_shows_models() {
    let (layer, guard) = builder().build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..4 {
            chat("tiny-1", "local", &format!("q{i}"), |p| {
                std::thread::sleep(std::time::Duration::from_millis(2));
                format!("a for {p}")
            });
        }
    });
    let report = guard.report();
    let model = &report.prompts.models[0];
    assert_eq!(
        (model.model.as_str(), model.provider.as_deref(), model.calls),
        ("tiny-1", Some("local"), 4)
    );
    assert!(model.latency_mean.unwrap() >= std::time::Duration::from_millis(2));
    assert_eq!(report.prompts.recent.last().unwrap().span_path, ["chat"]);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(json["prompts"]["models"][0]["calls"], 4);
    assert!(
        json["prompts"]["models"][0]["latency_p95_ns"]
            .as_u64()
            .unwrap()
            >= 2_000_000
    );
    assert_eq!(json["prompts"]["recent"][3]["response"], "a for q3");
    let text = report.to_text();
    assert!(
        text.contains("prompts:") && text.contains("last 4 records:"),
        "{text}"
    );
}

#[test]
fn other_layers_see_the_event_but_never_the_text() {
    #[derive(Default, Clone)]
    struct Seen(Arc<Mutex<Vec<String>>>);
    impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Seen {
        fn on_event(
            &self,
            event: &tracing::Event<'_>,
            _: tracing_subscriber::layer::Context<'_, S>,
        ) {
            struct V(String);
            impl tracing::field::Visit for V {
                fn record_debug(&mut self, f: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                    self.0.push_str(&format!("{}={v:?} ", f.name()));
                }
            }
            let mut v = V(format!("{} ", event.metadata().target()));
            event.record(&mut v);
            self.0.lock().unwrap().push(v.0);
        }
    }
    let seen = Seen::default();
    let (layer, _guard) = builder().build();
    tracing::subscriber::with_default(
        tracing_subscriber::registry()
            .with(seen.clone())
            .with(layer),
        || {
            record(
                LlmCall::new("tiny-1")
                    .prompt("private prompt")
                    .response("private answer")
                    .tokens(5, 7),
            );
        },
    );
    let events = seen.0.lock().unwrap();
    assert_eq!(events.len(), 1);
    assert!(events[0].starts_with("spanlab::llm "), "{}", events[0]);
    assert!(
        events[0].contains("gen_ai.request.model=tiny-1")
            && events[0].contains("gen_ai.usage.output_tokens=7")
    );
    assert!(!events[0].contains("private"), "{}", events[0]);
    // No provider was given: the event says nothing about one (not an empty name).
    assert!(!events[0].contains("gen_ai.provider.name"), "{}", events[0]);
}

#[test]
fn tokens_per_call_are_counted_exactly_per_model_and_type() {
    let (layer, guard) = builder().build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for (input, output) in [(7, 600), (7, 601), (255, 2_000), (256, 2_003)] {
            record(LlmCall::new("tiny-1").tokens(input, output));
        }
        record(LlmCall::new("tiny-1").prompt("no token counts"));
        record(LlmCall::new("tiny-2").tokens(1, 2));
    });
    let report = guard.report();
    let tiny = &report.prompts.models[0];
    assert_eq!(
        (tiny.calls, tiny.input_tokens, tiny.output_tokens),
        (5, 525, 5_204)
    );
    let buckets =
        |h: &Option<crate::stats::Histogram>| -> Vec<_> { h.as_ref().unwrap().buckets().collect() };
    // Below 512 every count is its own bucket; 600 and 601 share [600, 601], 2,000 and
    // 2,003 share [2000, 2003]. The call without counts is in neither.
    assert_eq!(
        buckets(&tiny.input_token_histogram),
        [(7..=7, 2), (255..=255, 1), (256..=256, 1)]
    );
    assert_eq!(
        buckets(&tiny.output_token_histogram),
        [(600..=601, 2), (2_000..=2_003, 2)]
    );
    let other = &report.prompts.models[1];
    assert_eq!(buckets(&other.input_token_histogram), [(1..=1, 1)]);
    assert_eq!(buckets(&other.output_token_histogram), [(2..=2, 1)]);
    let json: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(
        json["prompts"]["models"][0]["input_token_histogram"],
        serde_json::json!([[7, 2], [255, 1], [256, 1]])
    );
}
