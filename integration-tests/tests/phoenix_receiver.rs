//! The Phoenix harness (`common/phoenix.rs`) against the plain OpenTelemetry SDK: spans
//! exported over OTLP/gRPC and OTLP/HTTP (protobuf) come back through Phoenix's REST API
//! with their ids, parentage, typed attributes, events and status; pages are followed;
//! a killed server restarts on the same ports and takes new exports.
//!
//! Needs Phoenix: `bash scripts/install-phoenix.sh` (the tests panic without it).

#[allow(dead_code)] // not every helper of common is used here
mod common;

use std::time::Duration;

use common::phoenix::{self, span_named, Phoenix};
use opentelemetry::trace::{
    Span as _, SpanContext, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig as _};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(30);

#[derive(Clone, Copy, Debug)]
enum Otlp {
    Grpc,
    Http,
}

/// The tonic and reqwest clients need a tokio runtime around them: the exporters are
/// built, and (simple processor) export, on a thread that has entered this one.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("a tokio runtime")
}

/// A provider exporting each span as it ends, to `phoenix` over `otlp`, into `project`.
/// Call it with the runtime entered.
fn provider(phoenix: &Phoenix, otlp: Otlp, project: &str) -> SdkTracerProvider {
    let exporter = match otlp {
        Otlp::Grpc => SpanExporter::builder()
            .with_tonic()
            .with_endpoint(phoenix.grpc_endpoint())
            .with_timeout(Duration::from_secs(10))
            .build(),
        Otlp::Http => {
            // reqwest (rustls without a provider of its own) panics without one.
            let _ = rustls::crypto::ring::default_provider().install_default();
            SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(format!("{}/v1/traces", phoenix.http_endpoint()))
                .with_timeout(Duration::from_secs(10))
                .build()
        }
    }
    .unwrap_or_else(|e| panic!("building the {otlp:?} exporter: {e}"));
    SdkTracerProvider::builder()
        .with_simple_exporter(exporter)
        .with_resource(
            Resource::builder()
                .with_attribute(KeyValue::new(
                    "openinference.project.name",
                    project.to_owned(),
                ))
                .build(),
        )
        .build()
}

fn flush_and_shut_down(provider: SdkTracerProvider) {
    provider.force_flush().expect("force_flush");
    provider.shutdown().expect("shutdown");
}

/// The ids of the pair [`export_pair`] exported.
struct Pair {
    parent: SpanContext,
    child: SpanContext,
}

/// Exports a parent span (OK, typed attributes, OpenInference kind and input/output)
/// and its child (an event with an attribute, an Error status with a message).
fn export_pair(provider: &SdkTracerProvider) -> Pair {
    let tracer = provider.tracer("spanlab-phoenix-test");
    let mut parent = tracer.start("parent");
    parent.set_attribute(KeyValue::new("test.int", 42_i64));
    parent.set_attribute(KeyValue::new("test.negative", -7_i64));
    parent.set_attribute(KeyValue::new("test.big", i64::MAX));
    parent.set_attribute(KeyValue::new("test.float", 2.5_f64));
    parent.set_attribute(KeyValue::new("test.whole_float", 3.0_f64));
    parent.set_attribute(KeyValue::new("test.bool", true));
    parent.set_attribute(KeyValue::new("test.string", "héllo ✓"));
    parent.set_attribute(KeyValue::new("openinference.span.kind", "CHAIN"));
    parent.set_attribute(KeyValue::new("input.value", "the input"));
    parent.set_attribute(KeyValue::new("output.value", "the output"));
    parent.set_status(Status::Ok);
    let parent_context = parent.span_context().clone();
    let cx = Context::current_with_span(parent);

    let mut child = tracer.start_with_context("child", &cx);
    child.add_event(
        "checkpoint",
        vec![
            KeyValue::new("step", 3_i64),
            KeyValue::new("phase", "warmup"),
        ],
    );
    child.set_status(Status::error("it broke"));
    let child_context = child.span_context().clone();
    child.end();
    cx.span().end();
    Pair {
        parent: parent_context,
        child: child_context,
    }
}

/// The pair as Phoenix's REST API gives it back.
fn check_pair(spans: &[Value], pair: &Pair) {
    assert_eq!(spans.len(), 2, "{spans:#?}");
    let parent = span_named(spans, "parent");
    let child = span_named(spans, "child");

    // Ids: lowercase hex, exactly the SDK's; the child's parent is the parent.
    let trace_id = pair.parent.trace_id().to_string();
    assert_eq!(trace_id.len(), 32);
    assert_eq!(parent["context"]["trace_id"], trace_id, "{parent:#}");
    assert_eq!(child["context"]["trace_id"], trace_id, "{child:#}");
    assert_eq!(
        parent["context"]["span_id"],
        pair.parent.span_id().to_string()
    );
    assert_eq!(
        child["context"]["span_id"],
        pair.child.span_id().to_string()
    );
    assert_eq!(child["parent_id"], parent["context"]["span_id"]);
    assert_eq!(parent["parent_id"], Value::Null);

    // Times: RFC 3339 in UTC with microseconds (Python's isoformat, which leaves the
    // fraction out when it is 0: compare them as strings only); the child within the
    // parent.
    for span in [parent, child] {
        for key in ["start_time", "end_time"] {
            let time = span[key]
                .as_str()
                .unwrap_or_else(|| panic!("{key}: {span:#}"));
            assert!(
                time.ends_with("+00:00") && time.as_bytes().get(10) == Some(&b'T'),
                "{key}: {time}"
            );
        }
        assert!(span["start_time"].as_str() <= span["end_time"].as_str());
    }
    assert!(parent["start_time"].as_str() <= child["start_time"].as_str());
    assert!(child["end_time"].as_str() <= parent["end_time"].as_str());

    // Attributes: one flat object, JSON-typed as exported; ints stay ints (all 64 bits),
    // floats stay floats (3.0 too). `openinference.span.kind` becomes `span_kind`.
    let attributes = &parent["attributes"];
    let int = &attributes["test.int"];
    assert!(int.is_i64() && int == 42, "{attributes:#}");
    assert!(attributes["test.negative"].is_i64() && attributes["test.negative"] == -7);
    assert_eq!(
        attributes["test.big"].as_i64(),
        Some(i64::MAX),
        "{attributes:#}"
    );
    let float = &attributes["test.float"];
    assert!(float.is_f64() && float == 2.5, "{attributes:#}");
    let whole = &attributes["test.whole_float"];
    assert!(whole.is_f64() && whole == 3.0, "{attributes:#}");
    assert_eq!(attributes["test.bool"], json!(true));
    assert_eq!(attributes["test.string"], "héllo ✓");
    assert_eq!(attributes["input.value"], "the input");
    assert_eq!(attributes["output.value"], "the output");
    assert_eq!(parent["span_kind"], "CHAIN");
    assert!(attributes.get("openinference.span.kind").is_none());
    // Resource attributes are not in the span.
    assert!(attributes.get("openinference.project.name").is_none());
    assert!(attributes.get("service.name").is_none());
    assert_eq!(
        attributes.as_object().map(|a| a.len()),
        Some(9),
        "{attributes:#}"
    );

    assert_eq!(child["attributes"], json!({}));
    assert_eq!(child["span_kind"], "UNKNOWN");

    // The event, with its attributes and an RFC 3339 timestamp within the child.
    let events = child["events"].as_array().expect("events is an array");
    assert_eq!(events.len(), 1, "{child:#}");
    assert_eq!(events[0]["name"], "checkpoint");
    assert_eq!(
        events[0]["attributes"],
        json!({"step": 3, "phase": "warmup"})
    );
    let at = events[0]["timestamp"].as_str().expect("a timestamp");
    assert!(
        child["start_time"].as_str().unwrap() <= at && at <= child["end_time"].as_str().unwrap()
    );
    assert_eq!(parent["events"], json!([]));

    // Status.
    assert_eq!(parent["status_code"], "OK");
    assert_eq!(parent["status_message"], "");
    assert_eq!(child["status_code"], "ERROR");
    assert_eq!(child["status_message"], "it broke");
}

fn round_trip(otlp: Otlp, project: &str) {
    let phoenix = phoenix::shared();
    let rt = runtime();
    let _entered = rt.enter();
    let provider = provider(phoenix, otlp, project);
    let pair = export_pair(&provider);
    flush_and_shut_down(provider);
    let spans = phoenix.wait_for_spans(project, 2, WAIT);
    // No late duplicates.
    std::thread::sleep(Duration::from_millis(300));
    let spans_again = phoenix.spans(project);
    assert_eq!(spans, spans_again);
    check_pair(&spans, &pair);
}

#[test]
fn otlp_grpc_spans_come_back_through_the_rest_api() {
    round_trip(Otlp::Grpc, "phoenix-receiver-grpc");
}

#[test]
fn otlp_http_protobuf_spans_come_back_through_the_rest_api() {
    round_trip(Otlp::Http, "phoenix-receiver-http");
}

#[test]
fn spans_follows_the_cursor_through_every_page() {
    let phoenix = phoenix::shared();
    assert_eq!(
        phoenix.spans("phoenix-receiver-never-exported"),
        Vec::<Value>::new()
    );

    let project = "phoenix-receiver-pages";
    let rt = runtime();
    let _entered = rt.enter();
    let provider = provider(phoenix, Otlp::Grpc, project);
    let tracer = provider.tracer("spanlab-phoenix-test");
    let mut ids = Vec::new();
    for i in 0..7 {
        let mut span = tracer.start(format!("span-{i}"));
        span.set_attribute(KeyValue::new("index", i as i64));
        ids.push(span.span_context().span_id().to_string());
        span.end(); // the simple processor exports it now, so Phoenix gets them in order
    }
    flush_and_shut_down(provider);

    let all = phoenix.wait_for_spans(project, 7, WAIT);
    for page_size in [1, 3, 7, 1000] {
        let spans = phoenix.spans_paged(project, page_size);
        let got: Vec<&str> = spans
            .iter()
            .map(|s| s["context"]["span_id"].as_str().expect("a span id"))
            .collect();
        assert_eq!(got, ids, "page size {page_size}");
        assert_eq!(spans, all, "page size {page_size}");
    }
    for (i, span) in all.iter().enumerate() {
        assert_eq!(span["name"], format!("span-{i}"));
        assert_eq!(span["attributes"], json!({"index": i}));
    }
}

#[test]
fn a_killed_phoenix_restarts_on_the_same_ports_and_takes_new_exports() {
    let mut phoenix = Phoenix::start();
    let (http_port, grpc_port) = (phoenix.http_port(), phoenix.grpc_port());
    let project = "phoenix-receiver-restart";
    let rt = runtime();
    let _entered = rt.enter();
    // The same providers (and connections) before and after the restart.
    let grpc = provider(&phoenix, Otlp::Grpc, project);
    let http = provider(&phoenix, Otlp::Http, project);
    let export = |provider: &SdkTracerProvider, name: &'static str| {
        provider.tracer("spanlab-phoenix-test").start(name).end();
        provider.force_flush().expect("force_flush");
    };
    export(&grpc, "before-grpc");
    export(&http, "before-http");
    phoenix.wait_for_spans(project, 2, WAIT);

    let pid = phoenix.pid().expect("a running server");
    phoenix.kill();
    assert_eq!(phoenix.pid(), None);
    assert!(
        !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        "Phoenix {pid} still exists after kill()"
    );
    for port in [http_port, grpc_port] {
        assert!(
            std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
            "port {port} still accepts connections after kill()"
        );
    }

    phoenix.restart_same_ports();
    assert_eq!(
        (phoenix.http_port(), phoenix.grpc_port()),
        (http_port, grpc_port)
    );
    // A new in-memory database: what the old server had is gone.
    assert_eq!(phoenix.spans(project), Vec::<Value>::new());
    export(&grpc, "after-grpc");
    export(&http, "after-http");
    let spans = phoenix.wait_for_spans(project, 2, WAIT);
    let mut names: Vec<&str> = spans.iter().filter_map(|s| s["name"].as_str()).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        ["after-grpc", "after-http"],
        "{}",
        phoenix.log_tail()
    );
    flush_and_shut_down(grpc);
    flush_and_shut_down(http);
}
