//! Export end to end in-process: the layer, the queue, the exporter thread, and an
//! exporter that keeps what it gets. (Real receivers: `integration-tests/`.)

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::{SpanId, SpanKind, Status};
use opentelemetry::Value;
use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tracing::{error, info, info_span};
use tracing_subscriber::prelude::*;

use crate::{Builder, SpanLab};

/// Keeps every exported span; can be told to fail, or to be slow.
#[derive(Clone, Debug, Default)]
struct Collect {
    spans: Arc<Mutex<Vec<SpanData>>>,
    fail: Arc<AtomicBool>,
    delay: Option<Duration>,
    /// Spans to make (through tracing) inside `export`: they must not come back.
    trace_inside: bool,
}

impl SpanExporter for Collect {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        if self.trace_inside {
            let _inside = info_span!("inside_exporter").entered();
            info!("exporting");
        }
        if let Some(d) = self.delay {
            std::thread::sleep(d);
        }
        if self.fail.load(Relaxed) {
            return Err(OTelSdkError::InternalFailure("refused".into()));
        }
        self.spans.lock().unwrap().extend(batch);
        Ok(())
    }
}

impl Collect {
    fn take(&self) -> Vec<SpanData> {
        std::mem::take(&mut self.spans.lock().unwrap())
    }
}

fn builder(exporter: Collect) -> Builder {
    SpanLab::builder()
        .ignore_env()
        .report_to(crate::ReportTarget::Off)
        .otlp_exporter(exporter)
        .otlp_schedule_delay(Duration::from_millis(20))
}

/// Runs `f` under a subscriber with `builder`'s layer, then flushes (guard drop) and
/// returns the report's export section with the spans the exporter got.
fn run(
    builder: Builder,
    exporter: &Collect,
    f: impl FnOnce(),
) -> (crate::ExportReport, Vec<SpanData>) {
    let (layer, guard) = builder.build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    guard.profile().finish_export();
    let report = guard.report().export.expect("export is on");
    drop(guard);
    (report, exporter.take())
}

fn attr<'a>(span: &'a SpanData, key: &str) -> Option<&'a Value> {
    span.attributes
        .iter()
        .find(|kv| kv.key.as_str() == key)
        .map(|kv| &kv.value)
}

fn by_name<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name}"))
}

#[test]
fn the_span_tree_fields_events_and_statuses_arrive_as_made() {
    let exporter = Collect::default();
    let (report, spans) = run(builder(exporter.clone()), &exporter, || {
        let epoch = info_span!(
            "epoch",
            n = 3_i64,
            lr = 0.5,
            warm = true,
            tag = "a",
            big = u64::MAX
        );
        epoch.in_scope(|| {
            info_span!("forward").in_scope(|| info!(loss = 1.5, "step done"));
            info_span!("backward").in_scope(|| error!("gradient exploded"));
            let moved = info_span!("on_thread", later = tracing::field::Empty);
            let dispatch = tracing::dispatcher::get_default(Clone::clone);
            std::thread::scope(|s| {
                s.spawn(|| {
                    let _default = tracing::dispatcher::set_default(&dispatch);
                    moved.in_scope(|| info!("from another thread"));
                    moved.record("later", 7_i64);
                });
            });
        });
        let follower = info_span!("follower");
        follower.follows_from(&epoch);
    });
    assert_eq!((report.finished, report.exported), (5, 5), "{report:?}");
    assert_eq!(
        report.dropped + report.failed + report.queued_at_exit + report.in_flight_at_exit,
        0
    );
    let epoch = by_name(&spans, "epoch");
    let trace = epoch.span_context.trace_id();
    assert_eq!(epoch.parent_span_id, SpanId::INVALID);
    for child in ["forward", "backward", "on_thread"] {
        let span = by_name(&spans, child);
        assert_eq!(span.span_context.trace_id(), trace, "{child}");
        assert_eq!(span.parent_span_id, epoch.span_context.span_id(), "{child}");
        assert!(span.start_time >= epoch.start_time && span.end_time <= epoch.end_time);
    }
    // Typed fields; a u64 beyond i64 becomes a string.
    assert_eq!(attr(epoch, "n"), Some(&Value::I64(3)));
    assert_eq!(attr(epoch, "lr"), Some(&Value::F64(0.5)));
    assert_eq!(attr(epoch, "warm"), Some(&Value::Bool(true)));
    assert_eq!(attr(epoch, "tag"), Some(&Value::from("a")));
    assert_eq!(attr(epoch, "big"), Some(&Value::from(u64::MAX.to_string())));
    assert!(attr(epoch, "code.lineno").is_some());
    assert!(
        matches!(attr(epoch, "code.filepath"), Some(Value::String(f)) if f.as_str().ends_with("tests.rs"))
    );
    assert!(matches!(attr(epoch, "spanlab.busy_ns"), Some(Value::I64(n)) if *n > 0));
    assert!(attr(epoch, "spanlab.idle_ns").is_some());
    // Events, with their fields; an ERROR event fails its span with its message.
    let forward = by_name(&spans, "forward");
    assert_eq!(forward.events.len(), 1);
    assert_eq!(forward.events[0].name, "step done");
    assert!(forward.events[0]
        .attributes
        .iter()
        .any(|kv| kv.key.as_str() == "loss" && kv.value == Value::F64(1.5)));
    assert_eq!(forward.status, Status::Unset);
    assert_eq!(
        by_name(&spans, "backward").status,
        Status::error("gradient exploded")
    );
    // Another thread's event and record reach the span.
    let moved = by_name(&spans, "on_thread");
    assert_eq!(moved.events.len(), 1);
    assert_eq!(moved.events[0].name, "from another thread");
    assert_eq!(attr(moved, "later"), Some(&Value::I64(7)));
    // follows_from becomes a link; the follower is a root of its own trace.
    let follower = by_name(&spans, "follower");
    assert_eq!(follower.links.len(), 1);
    assert_eq!(
        follower.links[0].span_context.span_id(),
        epoch.span_context.span_id()
    );
    assert_ne!(follower.span_context.trace_id(), trace);
    assert_eq!(follower.span_kind, SpanKind::Internal);
}

#[test]
fn a_panicking_span_is_exported_with_a_panicked_status() {
    let exporter = Collect::default();
    let (_, spans) = run(builder(exporter.clone()), &exporter, || {
        let result = std::panic::catch_unwind(|| {
            let _span = info_span!("doomed").entered();
            panic!("boom");
        });
        assert!(result.is_err());
    });
    assert_eq!(by_name(&spans, "doomed").status, Status::error("panicked"));
}

#[test]
fn async_tasks_on_many_workers_keep_their_parents() {
    use tracing::Instrument;
    let exporter = Collect::default();
    let (layer, guard) = builder(exporter.clone()).build();
    let (dispatch, runtime) = crate::test_support::runtime_with(layer);
    tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(async {
            let root = info_span!("root");
            let tasks: Vec<_> = (0..8)
                .map(|i| {
                    tokio::spawn(
                        async move {
                            for _ in 0..3 {
                                tokio::time::sleep(Duration::from_millis(1)).await;
                            }
                        }
                        .instrument(info_span!(parent: &root, "task", i)),
                    )
                })
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
            drop(root);
        })
    });
    drop(runtime);
    guard.profile().finish_export();
    let spans = exporter.take();
    let root = by_name(&spans, "root");
    let tasks: Vec<&SpanData> = spans.iter().filter(|s| s.name == "task").collect();
    assert_eq!(tasks.len(), 8);
    for t in tasks {
        assert_eq!(t.parent_span_id, root.span_context.span_id());
        assert_eq!(t.span_context.trace_id(), root.span_context.trace_id());
    }
}

#[test]
fn samplers_decide_per_trace_and_a_remote_parent_is_joined() {
    let exporter = Collect::default();
    let (report, spans) = run(
        builder(exporter.clone()).sampler(crate::sinks::export::Sampler::AlwaysOff),
        &exporter,
        || info_span!("a").in_scope(|| info_span!("b").in_scope(|| ())),
    );
    assert!(spans.is_empty());
    assert_eq!(report.finished, 0);

    let exporter = Collect::default();
    let (_, spans) = run(
        builder(exporter.clone()).sampler(crate::sinks::export::Sampler::TraceIdRatio(0.5)),
        &exporter,
        || {
            for _ in 0..400 {
                info_span!("root").in_scope(|| info_span!("child").in_scope(|| ()));
            }
        },
    );
    let roots = spans.iter().filter(|s| s.name == "root").count();
    let children = spans.iter().filter(|s| s.name == "child").count();
    assert!((140..260).contains(&roots), "{roots} of 400");
    assert_eq!(roots, children, "whole traces, never half of one");

    let parent = crate::sinks::export::RemoteParent::parse(
        "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    )
    .unwrap();
    let exporter = Collect::default();
    let (_, spans) = run(
        builder(exporter.clone()).parent_trace(parent),
        &exporter,
        || info_span!("job").in_scope(|| ()),
    );
    let job = by_name(&spans, "job");
    assert_eq!(job.span_context.trace_id(), parent.trace_id.into());
    assert_eq!(job.parent_span_id, SpanId::from(parent.span_id));
    assert!(job.parent_span_is_remote);
}

#[test]
fn failures_and_a_full_queue_are_counted_exactly() {
    // Refused batches: failed, with the receiver's message.
    let exporter = Collect::default();
    exporter.fail.store(true, Relaxed);
    let (report, _) = run(builder(exporter.clone()), &exporter, || {
        for _ in 0..100 {
            info_span!("x").in_scope(|| ());
        }
    });
    assert_eq!(
        (report.finished, report.failed, report.exported),
        (100, 100, 0)
    );
    assert!(report.last_error.as_deref().unwrap().contains("refused"));

    // A slow receiver and a tiny queue: the program does not wait, and drops count.
    let exporter = Collect {
        delay: Some(Duration::from_millis(50)),
        ..Collect::default()
    };
    let (report, spans) = run(
        builder(exporter.clone())
            .otlp_queue_size(64)
            .otlp_batch_size(16),
        &exporter,
        || {
            for _ in 0..5_000 {
                info_span!("x").in_scope(|| ());
            }
        },
    );
    assert_eq!(report.finished, 5_000);
    assert!(report.dropped > 0, "{report:?}");
    assert_eq!(report.exported, spans.len() as u64);
    assert_eq!(
        report.exported + report.dropped + report.failed,
        report.finished,
        "the flush waited for everything queued: {report:?}"
    );
    assert_eq!(report.flush, crate::FlushOutcome::Complete);
}

#[test]
fn spans_made_by_the_exporter_itself_are_ignored() {
    let exporter = Collect {
        trace_inside: true,
        ..Collect::default()
    };
    let (layer, guard) = builder(exporter.clone()).build();
    // A global-like setup: the exporter thread sees the same subscriber.
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let _default = tracing::dispatcher::set_default(&dispatch);
    info_span!("work").in_scope(|| ());
    guard.profile().finish_export();
    let spans = exporter.take();
    assert_eq!(
        spans.iter().map(|s| s.name.as_ref()).collect::<Vec<_>>(),
        ["work"]
    );
    assert!(guard.profile().get("inside_exporter").is_none());
}

#[test]
fn llm_calls_carry_genai_attributes_and_text_only_with_capture() {
    for capture in [false, true] {
        let exporter = Collect::default();
        let (_, spans) = run(
            builder(exporter.clone()).capture_message_content(capture),
            &exporter,
            || {
                crate::riders::llm::chat("tiny-1", "local", "secret prompt", |_| {
                    "secret answer".into()
                });
            },
        );
        let chat = by_name(&spans, "chat tiny-1");
        assert_eq!(chat.span_kind, SpanKind::Client);
        assert_eq!(
            attr(chat, "gen_ai.request.model"),
            Some(&Value::from("tiny-1"))
        );
        assert_eq!(
            attr(chat, "gen_ai.provider.name"),
            Some(&Value::from("local"))
        );
        assert_eq!(
            attr(chat, "openinference.span.kind"),
            Some(&Value::from("LLM"))
        );
        let text = format!("{chat:?}");
        assert_eq!(text.contains("secret prompt"), capture, "capture={capture}");
        assert_eq!(text.contains("secret answer"), capture, "capture={capture}");
        assert_eq!(attr(chat, "input.value").is_some(), capture);
        assert_eq!(
            chat.events
                .iter()
                .any(|e| e.name == crate::sinks::export::genai::DETAILS_EVENT),
            capture
        );
    }
}

#[test]
fn export_is_off_without_an_endpoint_and_a_bad_endpoint_is_named() {
    let (_layer, guard) = SpanLab::builder()
        .ignore_env()
        .report_to(crate::ReportTarget::Off)
        .build();
    assert!(guard.report().export.is_none());
    let (_layer, guard) = SpanLab::builder()
        .ignore_env()
        .report_to(crate::ReportTarget::Off)
        .otlp_endpoint("localhost:4317")
        .build();
    assert!(guard.report().export.is_none());
    assert_eq!(
        guard.config_errors()[0].source_name(),
        "Builder::otlp_endpoint"
    );
}

#[test]
fn many_threads_many_spans_add_up() {
    let exporter = Collect::default();
    let made = AtomicUsize::new(0);
    let (report, spans) = run(builder(exporter.clone()), &exporter, || {
        let dispatch = tracing::dispatcher::get_default(Clone::clone);
        std::thread::scope(|s| {
            for _ in 0..4 {
                s.spawn(|| {
                    let _default = tracing::dispatcher::set_default(&dispatch);
                    for _ in 0..2_000 {
                        let _outer = info_span!("outer").entered();
                        let _inner = info_span!("inner").entered();
                        made.fetch_add(2, Relaxed);
                    }
                });
            }
        });
    });
    assert_eq!(report.finished, made.load(Relaxed) as u64);
    assert_eq!(report.exported, report.finished);
    assert_eq!(spans.len(), 16_000);
}

/// A loopback port nothing listens on: connections to it are refused.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port() // the listener is dropped: the port is closed again
}

/// Polls `report` until `done` says so (at most 30 s); returns the last report.
fn wait_for(
    report: impl Fn() -> crate::ExportReport,
    done: impl Fn(&crate::ExportReport) -> bool,
) -> crate::ExportReport {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    loop {
        let r = report();
        if done(&r) || std::time::Instant::now() > deadline {
            return r;
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

#[test]
fn a_receiver_that_is_down_costs_retries_and_failures_not_the_program() {
    // Connections are refused (retryable): the batch is retried, then fails; the
    // program never waits for any of it, and the flush at exit does not wait either.
    let port = closed_port();
    for protocol in [
        crate::sinks::export::Protocol::Grpc,
        crate::sinks::export::Protocol::HttpProtobuf,
    ] {
        let (layer, guard) = SpanLab::builder()
            .ignore_env()
            .report_to(crate::ReportTarget::Off)
            .otlp_endpoint(format!("http://127.0.0.1:{port}"))
            .otlp_protocol(protocol)
            .otlp_timeout(Duration::from_millis(500))
            .otlp_schedule_delay(Duration::from_millis(20))
            .otlp_flush_timeout(Duration::from_secs(60))
            .build();
        let started = std::time::Instant::now();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            for _ in 0..100 {
                info_span!("x").in_scope(|| ());
            }
        });
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "{protocol:?}"
        );
        // During the run, a batch gets its retries before it fails.
        let report = wait_for(|| guard.report().export.unwrap(), |r| r.failed == 100);
        assert_eq!(
            (report.finished, report.failed, report.failed_batches),
            (100, 100, 1),
            "{protocol:?}: {report:?}"
        );
        assert!(report.retries > 0, "{protocol:?}: {report:?}");
        assert_eq!(report.flush, crate::FlushOutcome::NotFlushed);
        guard.profile().finish_export();
        let report = guard.report().export.unwrap();
        assert_eq!(
            report.exported + report.dropped + report.queued_at_exit + report.in_flight_at_exit,
            0
        );
        // Nothing was left to send: the flush ends at once, either because the exporter
        // thread was done first or because the receiver was down; nothing is given up.
        assert!(
            matches!(
                report.flush,
                crate::FlushOutcome::Complete | crate::FlushOutcome::ReceiverDown
            ),
            "{report:?}"
        );
        assert_eq!(report.given_up_at_exit, 0, "{report:?}");
        assert!(report.target.starts_with(protocol.as_str()));
        assert!(report.last_error.is_some());
    }
}

#[test]
fn the_flush_gives_up_at_once_on_a_receiver_it_cannot_connect_to() {
    // No attempt before the flush: the flush sends the spans, the connection is
    // refused, and it gives up without its 60 s timeout (or the batch's retries).
    let port = closed_port();
    for protocol in [
        crate::sinks::export::Protocol::Grpc,
        crate::sinks::export::Protocol::HttpProtobuf,
    ] {
        let (layer, guard) = SpanLab::builder()
            .ignore_env()
            .report_to(crate::ReportTarget::Off)
            .otlp_endpoint(format!("http://127.0.0.1:{port}"))
            .otlp_protocol(protocol)
            .otlp_flush_timeout(Duration::from_secs(60))
            .build();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            for _ in 0..100 {
                info_span!("x").in_scope(|| ());
            }
        });
        let started = std::time::Instant::now();
        guard.profile().finish_export();
        // Far below the retries' backoff (seconds) and the flush timeout; the tight
        // bound is the integration test's (a process's exit).
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{protocol:?}: {:?}",
            started.elapsed()
        );
        let report = guard.report().export.unwrap();
        assert_eq!(
            report.flush,
            crate::FlushOutcome::ReceiverDown,
            "{report:?}"
        );
        assert_eq!(
            (report.finished, report.failed, report.given_up_at_exit),
            (100, 100, 100),
            "{protocol:?}: {report:?}"
        );
        assert_eq!(
            report.exported + report.dropped + report.queued_at_exit + report.in_flight_at_exit,
            0
        );
        let error = report.last_error.unwrap_or_default();
        assert!(error.contains("cannot connect"), "{protocol:?}: {error}");
    }
}

#[cfg(target_os = "linux")]
#[test]
fn export_threads_yield_to_the_program() {
    let exporter = Collect::default();
    let (_layer, guard) = builder(exporter).build();
    // The exporter thread lowers its own priority when it starts.
    let nice_of = |comm: &str| -> Option<i64> {
        std::fs::read_dir("/proc/self/task").ok()?.find_map(|task| {
            let dir = task.ok()?.path();
            let name = std::fs::read_to_string(dir.join("comm")).ok()?;
            if name.trim() != comm {
                return None;
            }
            let stat = std::fs::read_to_string(dir.join("stat")).ok()?;
            // Fields after the `(comm)`: state is the 3rd field, nice the 19th.
            let after = &stat[stat.rfind(')')? + 2..];
            after.split(' ').nth(16)?.parse().ok()
        })
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    let nice = loop {
        match nice_of("spanlab-otlp") {
            Some(n) if n >= 10 => break n,
            _ if std::time::Instant::now() > deadline => panic!("no exporter thread at nice +10"),
            _ => std::thread::sleep(Duration::from_millis(10)),
        }
    };
    assert!(nice >= 10, "{nice}");
    drop(guard);
}

#[test]
fn exported_busy_and_idle_time_are_the_reports() {
    // `sync` waits 20 ms between its creation and its one enter: no idle time, in the
    // report or in the export (the wait is before the call). `polled` is entered
    // twice with 20 ms between: that gap is idle time in both.
    let exporter = Collect::default();
    let (layer, guard) = builder(exporter.clone()).build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let sync = info_span!("sync");
        std::thread::sleep(Duration::from_millis(20));
        sync.in_scope(|| std::hint::black_box(0));
        drop(sync);
        let polled = info_span!("polled");
        polled.in_scope(|| std::hint::black_box(0));
        std::thread::sleep(Duration::from_millis(20));
        polled.in_scope(|| std::hint::black_box(0));
    });
    guard.profile().finish_export();
    let spans = exporter.take();
    let ns = |span: &SpanData, key: &str| match attr(span, key) {
        Some(Value::I64(n)) => *n as u64,
        other => panic!("{key}: {other:?}"),
    };
    for name in ["sync", "polled"] {
        let exported = by_name(&spans, name);
        let reported = guard.profile().get(name).unwrap();
        let (busy, idle) = (
            ns(exported, "spanlab.busy_ns"),
            ns(exported, "spanlab.idle_ns"),
        );
        let close = |a: u64, b: std::time::Duration| a.abs_diff(b.as_nanos() as u64) <= 1_000;
        assert!(
            close(busy, reported.busy),
            "{name}: busy {busy} vs {reported:?}"
        );
        assert!(
            close(idle, reported.idle),
            "{name}: idle {idle} vs {reported:?}"
        );
    }
    let sync = by_name(&spans, "sync");
    assert_eq!(ns(sync, "spanlab.idle_ns"), 0);
    // The exported span still starts at the span's creation.
    let lifetime = sync.end_time.duration_since(sync.start_time).unwrap();
    assert!(lifetime >= Duration::from_millis(20), "{lifetime:?}");
    assert!(ns(by_name(&spans, "polled"), "spanlab.idle_ns") >= 20_000_000);
}

#[test]
fn an_exporter_that_panics_fails_its_batch_and_the_flush_still_ends() {
    #[derive(Debug)]
    struct Panics;
    impl SpanExporter for Panics {
        async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
            panic!("the exporter broke");
        }
    }
    let (layer, guard) = SpanLab::builder()
        .ignore_env()
        .report_to(crate::ReportTarget::Off)
        .otlp_exporter(Panics)
        .otlp_flush_timeout(Duration::from_secs(60))
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..10 {
            info_span!("x").in_scope(|| ());
        }
    });
    guard.profile().finish_export();
    let report = guard.report().export.unwrap();
    assert_eq!(report.flush, crate::FlushOutcome::Complete, "{report:?}");
    assert_eq!((report.finished, report.failed), (10, 10), "{report:?}");
    assert!(report
        .last_error
        .is_some_and(|e| e.contains("without an answer")));
}

#[test]
fn traces_exporter_none_sends_nothing_to_a_recording_receiver() {
    use crate::config::Env;
    let receiver = super::slow_receiver::SlowReceiver::http(Duration::ZERO);
    for (value, sent) in [("none", false), ("otlp", true)] {
        let env = Env::of(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", receiver.endpoint.as_str()),
            ("OTEL_TRACES_EXPORTER", value),
            ("SPANLAB_REPORT", "off"),
        ]);
        let before = receiver.spans().0;
        let (layer, guard) = SpanLab::builder().build_with_env(&env);
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            for _ in 0..10 {
                info_span!("step").in_scope(|| ());
            }
        });
        guard.profile().finish_export();
        assert_eq!(guard.report().export.is_some(), sent, "{value}");
        assert!(guard.config_errors().is_empty(), "{value}");
        drop(guard);
        let received = receiver.spans().0 - before;
        assert_eq!(received, if sent { 10 } else { 0 }, "{value}");
    }
}
