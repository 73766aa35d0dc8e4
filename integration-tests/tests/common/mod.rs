//! What the end-to-end tests share: running the `workload` binary (`src/bin`) with a
//! clean spanlab environment, and reading its reports.

/// Arize Phoenix as a real OTLP receiver (installed by `scripts/install-phoenix.sh`).
pub mod export;
pub mod phoenix;

use std::path::Path;
use std::process::{Command, Output};

/// A `Command` for the `workload` binary with a clean spanlab environment.
pub fn workload(mode: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_workload"));
    cmd.arg(mode);
    for var in [
        "SPANLAB_REPORT",
        "SPANLAB_REPORT_JSON",
        "SPANLAB_REPORT_FOLDED",
        "RUST_LOG",
        "TRACEPARENT",
    ] {
        cmd.env_remove(var);
    }
    // Nor any OpenTelemetry setting from the caller's environment.
    for (var, _) in std::env::vars() {
        if var.starts_with("OTEL_") {
            cmd.env_remove(var);
        }
    }
    cmd
}

/// Runs a command to completion and returns its output with stderr as text.
pub fn run(cmd: &mut Command) -> (Output, String) {
    let output = cmd.output().expect("the workload binary runs");
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    (output, stderr)
}

/// Parses a JSON report file.
pub fn read_json(path: &Path) -> serde_json::Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).expect("the report is valid JSON")
}
