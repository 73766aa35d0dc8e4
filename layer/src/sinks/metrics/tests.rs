//! Metrics end to end in-process: a build with Prometheus on, scraped over TCP.

use std::io::{Read, Write};
use std::net::TcpStream;

use tracing::info_span;
use tracing_subscriber::prelude::*;

use crate::config::Env;
use crate::SpanLab;

fn scrape(url: &str) -> String {
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");
    let mut stream = TcpStream::connect(addr).unwrap();
    write!(stream, "GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n").unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    answer
}

#[test]
fn a_scrape_counts_every_call_with_the_rank_label() {
    let env = Env::of(&[
        ("OTEL_METRICS_EXPORTER", "prometheus"),
        ("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1"),
        ("OTEL_EXPORTER_PROMETHEUS_PORT", "0"),
        ("RANK", "2"),
        ("SPANLAB_REPORT", "off"),
    ]);
    let (layer, guard) = SpanLab::builder().build_with_env(&env);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..7 {
            let _epoch = info_span!("epoch").entered();
            info_span!("forward").in_scope(|| ());
        }
    });
    let url = guard.report().metrics.unwrap().prometheus.unwrap();
    let text = scrape(&url);
    assert!(
        text.contains(
            "spanlab_span_duration_seconds_count{path=\"epoch > forward\",span_name=\"forward\",rank=\"2\"} 7\n"
        ),
        "{text}"
    );
    assert!(text.contains("le=\"+Inf\"} 7\n"));
    let report = guard.report();
    let metrics = report.metrics.as_ref().unwrap();
    assert_eq!((metrics.scrapes, metrics.failed_scrapes), (1, 0));
    assert!(report
        .to_text()
        .contains("metrics: Prometheus http://127.0.0.1:"));
    drop(guard);
    let addr = url
        .trim_start_matches("http://")
        .trim_end_matches("/metrics");
    assert!(
        TcpStream::connect(addr).is_err(),
        "the guard's drop stops serving"
    );
}

#[test]
fn a_taken_port_is_one_warning_and_the_run_goes_on() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let (layer, guard) = SpanLab::builder()
        .ignore_env()
        .report_to(crate::ReportTarget::Off)
        .prometheus(format!("127.0.0.1:{port}"))
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info_span!("step").in_scope(|| ());
    });
    let report = guard.report();
    assert_eq!(report.paths[0].calls, 1);
    let metrics = report.metrics.unwrap();
    assert!(metrics.prometheus.is_none());
    let error = metrics.last_error.unwrap();
    assert!(error.contains(&format!("127.0.0.1:{port}")), "{error}");
    let warnings: Vec<_> = report
        .warnings
        .iter()
        .filter(|w| w.contains("cannot serve Prometheus"))
        .collect();
    assert_eq!(warnings.len(), 1, "{:?}", report.warnings);
}

#[test]
fn otlp_metrics_without_an_endpoint_are_one_line_and_a_bad_endpoint_is_named_once() {
    let env = Env::of(&[("OTEL_METRICS_EXPORTER", "otlp"), ("SPANLAB_REPORT", "off")]);
    let (_layer, guard) = SpanLab::builder().build_with_env(&env);
    let names: Vec<&str> = guard
        .config_errors()
        .iter()
        .map(|e| e.source_name())
        .collect();
    assert_eq!(names, ["OTEL_METRICS_EXPORTER"]);
    assert!(guard.report().metrics.unwrap().otlp.is_none());

    #[cfg(feature = "otlp")]
    {
        let env = Env::of(&[
            ("OTEL_METRICS_EXPORTER", "otlp"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4318"),
            ("SPANLAB_REPORT", "off"),
        ]);
        let (_layer, guard) = SpanLab::builder().build_with_env(&env);
        let names: Vec<&str> = guard
            .config_errors()
            .iter()
            .map(|e| e.source_name())
            .collect();
        assert_eq!(
            names,
            ["OTEL_EXPORTER_OTLP_ENDPOINT"],
            "traces and metrics: one line"
        );
    }
}

#[test]
fn the_metrics_section_survives_json_and_merges() {
    let (layer, guard) = SpanLab::builder()
        .ignore_env()
        .report_to(crate::ReportTarget::Off)
        .prometheus("127.0.0.1:0")
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info_span!("step").in_scope(|| ());
    });
    let url = guard.report().metrics.unwrap().prometheus.unwrap();
    scrape(&url);
    scrape(&url);
    let report = guard.report();
    let json = report.to_json();
    let read = crate::Report::from_json(&json).unwrap();
    assert_eq!(read.metrics, report.metrics);
    assert_eq!(read.metrics.as_ref().unwrap().scrapes, 2);
    let merged = crate::Report::merge(&[read.clone(), read]).unwrap();
    let merged = merged.metrics.unwrap();
    assert_eq!((merged.scrapes, merged.prometheus), (4, Some(url)));
    // A report from before live metrics (no `metrics` key) reads as none.
    let mut value: serde_json::Value = serde_json::from_str(&json).unwrap();
    value.as_object_mut().unwrap().remove("metrics");
    let old = crate::Report::from_json(&value.to_string()).unwrap();
    assert!(old.metrics.is_none());
}
