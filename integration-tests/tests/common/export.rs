//! What the export tests share: running the `export_workload` binary (`src/bin`)
//! against a Phoenix (`phoenix.rs`) with a clean environment, and reading the spans
//! Phoenix returns.

#![allow(dead_code)] // each test binary uses part of it

use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};

use super::phoenix::Phoenix;

/// How long spans may take to show up in Phoenix.
pub const WAIT: Duration = Duration::from_secs(60);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Otlp {
    Grpc,
    Http,
    /// No `OTEL_EXPORTER_OTLP_PROTOCOL`: spanlab's default (http/protobuf), to the HTTP
    /// base URL.
    Default,
}

/// A project name of this test process alone.
pub fn project(name: &str) -> String {
    format!("spanlab-export-{name}-{}", std::process::id())
}

/// A `Command` for the `export_workload` binary, without any of the caller's
/// OpenTelemetry, spanlab or trace-context configuration.
pub fn export_workload(mode: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_export_workload"));
    cmd.arg(mode);
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("OTEL_")
            || name.starts_with("SPANLAB_")
            || name == "TRACEPARENT"
            || name == "TRACESTATE"
            || name == "RUST_LOG"
        {
            cmd.env_remove(&key);
        }
    }
    cmd
}

/// Points `cmd` at `phoenix` over `otlp`, into `project`.
pub fn export_to(cmd: &mut Command, phoenix: &Phoenix, otlp: Otlp, project: &str) {
    match otlp {
        Otlp::Grpc => cmd
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", phoenix.grpc_endpoint()),
        Otlp::Http => cmd
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
            .env("OTEL_EXPORTER_OTLP_ENDPOINT", phoenix.http_endpoint()),
        Otlp::Default => cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", phoenix.http_endpoint()),
    };
    cmd.env(
        "OTEL_RESOURCE_ATTRIBUTES",
        format!("openinference.project.name={project},deployment.environment=test"),
    );
}

/// The report's `target` for `otlp`: the HTTP base URL gets `/v1/traces`.
pub fn expected_target(phoenix: &Phoenix, otlp: Otlp) -> String {
    match otlp {
        Otlp::Grpc => format!("grpc {}", phoenix.grpc_endpoint()),
        Otlp::Http | Otlp::Default => {
            format!("http/protobuf {}/v1/traces", phoenix.http_endpoint())
        }
    }
}

pub fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

pub fn name_of(span: &Value) -> &str {
    span["name"]
        .as_str()
        .unwrap_or_else(|| panic!("no name: {span:#}"))
}

pub fn span_id(span: &Value) -> &str {
    span["context"]["span_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no span id: {span:#}"))
}

pub fn trace_id(span: &Value) -> &str {
    span["context"]["trace_id"]
        .as_str()
        .unwrap_or_else(|| panic!("no trace id: {span:#}"))
}

/// A path's statistics in a JSON report.
pub fn report_path<'a>(report: &'a Value, path: &[&str]) -> &'a Value {
    report["paths"]
        .as_array()
        .expect("paths")
        .iter()
        .find(|p| p["path"] == json!(path))
        .unwrap_or_else(|| panic!("no path {path:?} in {report:#}"))
}
