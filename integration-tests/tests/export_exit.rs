//! What exit costs with OTLP export on, in a process of its own: `export_workload burst
//! 12900 until-retried` (12,900 spans, then the guard's drop, timed by the workload
//! itself) against a loopback port nothing listens on, over gRPC and over HTTP/protobuf.
//!
//! Every connection attempt is refused, so the flush at exit must give up at once
//! instead of waiting out its timeout (5 s by default): the process exits within 0.5 s
//! of the guard's drop, and the report counts every span as failed and says why.
//!
//! The workload drops its guard once export has retried a request, that is once an
//! attempt has been refused, as happens in any run that lasts longer than a burst: the
//! bound is then the flush's own cost, not how soon export's threads (at nice +10) get
//! the CPU on a loaded machine for their first attempt. A flush that must make that
//! first attempt itself is tested without a tight bound in
//! `layer/src/sinks/export/tests.rs`; slow receivers in `exit_tests.rs` there.

#[allow(dead_code)] // not every helper of common is used here
mod common;

use std::io::{BufRead, BufReader};
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::export::export_workload;
use common::read_json;

/// The bound the issue sets: from the guard's drop to the process's exit.
const EXIT_BOUND: Duration = Duration::from_millis(500);

/// A loopback port nothing listens on: connections to it are refused.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port() // the listener is dropped: the port is closed again
}

#[test]
fn a_receiver_that_is_down_costs_the_exit_nothing_and_every_span_is_counted_failed() {
    let port = closed_port();
    for protocol in ["grpc", "http/protobuf"] {
        let dir = tempfile::tempdir().unwrap();
        let json = dir.path().join("report.json");
        let mut child = export_workload("burst")
            .args(["12900", "until-retried"])
            .env(
                "OTEL_EXPORTER_OTLP_ENDPOINT",
                format!("http://127.0.0.1:{port}"),
            )
            .env("OTEL_EXPORTER_OTLP_PROTOCOL", protocol)
            .env("SPANLAB_REPORT_JSON", &json)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("export_workload starts");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut next_line = || lines.next().and_then(Result::ok).unwrap_or_default();
        assert_eq!(next_line(), "dropping the guard", "{protocol}");
        // Seen from here (for the log only: this side's timing includes the pipe and
        // the scheduler of a loaded machine).
        let seen_dropping = Instant::now();
        let dropped = next_line();
        let output = child.wait_with_output().expect("the workload ends");
        let seen_exit = seen_dropping.elapsed();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "{protocol}: {stderr}");
        // The workload's own timing, from just before the guard's drop to just after
        // it, after which `main` returns.
        let ns: u64 = dropped
            .strip_prefix("guard dropped in ")
            .and_then(|l| l.strip_suffix(" ns"))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{protocol}: {dropped:?}\n{stderr}"));
        let took = Duration::from_nanos(ns);
        eprintln!(
            "{protocol}: the guard's drop took {took:?} (exit seen {seen_exit:?} after it began)"
        );
        assert!(
            took < EXIT_BOUND,
            "{protocol}: the guard's drop took {took:?}\n{stderr}"
        );

        let report = read_json(&json);
        let export = &report["export"];
        assert_eq!(export["finished"], 12_900, "{protocol}: {export:#}");
        assert_eq!(export["failed"], 12_900, "{protocol}: {export:#}");
        for key in [
            "exported",
            "dropped",
            "queued_at_exit",
            "in_flight_at_exit",
            "pending",
        ] {
            assert_eq!(export[key], 0, "{protocol}: {key}: {export:#}");
        }
        assert_eq!(export["flush"], "receiver_down", "{protocol}: {export:#}");
        let given_up = export["given_up_at_exit"].as_u64().unwrap();
        assert!(given_up > 0 && given_up <= 12_900, "{protocol}: {export:#}");
        assert!(
            export["last_error"].as_str().is_some_and(|e| !e.is_empty()),
            "{protocol}: {export:#}"
        );
        assert!(
            stderr.contains(&format!(
                "flush at exit: receiver unreachable (every attempt since the last success \
                 failed to connect): gave up at once, {} spans counted failed",
                thousands(given_up)
            )),
            "{protocol}: {stderr}"
        );
    }
}

/// `12900` as the text report writes it: `12,900`.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}
