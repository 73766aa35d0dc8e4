//! What the end-to-end tests share: running the `workload` binary (`src/bin`) with a
//! clean spanlab environment, and reading its reports.

/// Running the `export_workload` binary against Phoenix, and reading its spans.
pub mod export;
/// Arize Phoenix as a real OTLP receiver (installed by `scripts/install-phoenix.sh`).
pub mod phoenix;

use std::path::Path;
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Runs `f` once per test binary and hands every caller its result. When `f` panics,
/// every caller panics with that first message (`what` says what failed), and it is
/// not tried again: one slow fixture (a Phoenix start, a scenario) shared by tests.
#[allow(dead_code)] // not every test binary shares a fixture
pub fn once_per_binary<T: Send + Sync>(
    cell: &'static OnceLock<Result<T, String>>,
    what: &str,
    f: impl FnOnce() -> T,
) -> &'static T {
    let result = cell.get_or_init(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "(no message)".into())
        })
    });
    match result {
        Ok(value) => value,
        Err(why) => panic!("{what}: {why}"),
    }
}

/// A `Command` for the `workload` binary with a clean spanlab environment.
pub fn workload(mode: &str) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_workload"));
    cmd.arg(mode);
    for var in [
        "SPANLAB_REPORT",
        "SPANLAB_REPORT_JSON",
        "SPANLAB_REPORT_FOLDED",
        "SPANLAB_SNAPSHOT_INTERVAL",
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
