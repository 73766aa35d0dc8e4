//! A program serving live metrics for the Prometheus test (`tests/metrics_prometheus.rs`):
//! `metrics_workload READY DONE`.
//!
//! Configured by the environment (`OTEL_METRICS_EXPORTER=prometheus`, the port, and
//! `SPANLAB_REPORT_JSON`), it runs 300 epochs of `epoch > forward`, whose calls take
//! from about 20 µs to about 2 ms, so the p95 is far from the median. Then it writes
//! its report as JSON to the file `SPANLAB_REPORT_JSON` names, creates the file READY,
//! and keeps serving `/metrics` until the file DONE appears (at most two minutes), so
//! that the test's Prometheus scrapes the final counts; then it exits.

use std::path::Path;
use std::time::{Duration, Instant};

use tracing::{info_span, instrument};

/// Spins for `micros` (not a sleep: its length does not depend on the scheduler's
/// wake-up, only on being scheduled).
#[instrument]
fn forward(micros: u64) {
    let start = Instant::now();
    while start.elapsed() < Duration::from_micros(micros) {
        std::hint::spin_loop();
    }
}

fn main() {
    let mut args = std::env::args().skip(1);
    let (Some(ready), Some(done)) = (args.next(), args.next()) else {
        eprintln!("usage: metrics_workload READY DONE");
        std::process::exit(2);
    };
    let guard = spanlab::init();
    for epoch in 0..300u64 {
        let _epoch = info_span!("epoch", epoch).entered();
        // Mostly short calls; every tenth a long one.
        forward(if epoch % 10 == 9 {
            2000
        } else {
            20 + epoch % 7 * 10
        });
    }
    let json = std::env::var("SPANLAB_REPORT_JSON").expect("SPANLAB_REPORT_JSON");
    std::fs::write(&json, guard.report().to_json()).expect("the JSON report is written");
    std::fs::write(&ready, b"ready").expect("the ready file is written");
    let deadline = Instant::now() + Duration::from_secs(120);
    while !Path::new(&done).exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
}
