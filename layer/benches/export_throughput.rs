//! How many spans per second spanlab exports over OTLP/gRPC, and what it does when
//! the program makes more than it can send.
//!
//! A fast in-process receiver (`support/receiver.rs`, a tonic server) counts what
//! arrives. Two parts:
//!
//! 1. **Sustained rates**: one thread makes spans at a fixed rate (100k to 800k spans/s,
//!    3 s each, paced every millisecond); after each rate the pipeline drains, and the
//!    line says how many were exported, dropped or failed at that rate.
//! 2. **Overload**: two threads make spans as fast as they can for 2 s. Drops are
//!    expected; the accounting must still be exact: `exported + dropped + failed ==
//!    finished`, and the receiver got exactly `exported`.
//!
//! Run `cargo bench -p spanlab --bench export_throughput`. Under `cargo test --benches`
//! it runs a short smoke version of the same checks. `README.md` in this folder has the
//! last figures.

use std::sync::atomic::Ordering::Relaxed;
use std::time::{Duration, Instant};

use tracing::info_span;
use tracing_subscriber::prelude::*;

#[path = "support/receiver.rs"]
mod receiver;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (endpoint, received) = receiver::start();
    let (layer, guard) = spanlab::SpanLab::builder()
        .ignore_env()
        .report_to(spanlab::ReportTarget::Off)
        .otlp_endpoint(endpoint)
        .otlp_protocol(spanlab::export::Protocol::Grpc)
        .build();
    tracing::subscriber::set_global_default(tracing_subscriber::registry().with(layer))
        .expect("no other subscriber");
    let counts = || guard.report().export.expect("export is on");

    let (rates, seconds): (&[u64], f64) = if full {
        (&[100_000, 200_000, 400_000, 800_000], 3.0)
    } else {
        (&[20_000], 0.2)
    };
    println!("sustained rates, one thread, {seconds} s each (spans/s made -> fate of those spans)");
    for &rate in rates {
        let before = counts();
        let made = paced(rate, Duration::from_secs_f64(seconds));
        drain(&counts);
        let after = counts();
        let exported = after.exported - before.exported;
        let dropped = after.dropped - before.dropped;
        let failed = after.failed - before.failed;
        assert_eq!(after.finished - before.finished, made);
        println!(
            "  {rate:>8}/s: made {made:>9}, exported {exported:>9} ({:>7.0}/s), dropped {dropped:>7}, failed {failed} {}",
            exported as f64 / seconds,
            if dropped + failed == 0 { "(zero loss)" } else { "(LOSS)" }
        );
    }

    let burst = Duration::from_secs_f64(if full { 2.0 } else { 0.2 });
    let before = counts();
    let started = Instant::now();
    let made: u64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..2).map(|_| s.spawn(|| flat_out(burst))).collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let rate = made as f64 / started.elapsed().as_secs_f64();
    drain(&counts);
    let after = counts();
    let finished = after.finished - before.finished;
    let (exported, dropped, failed) = (
        after.exported - before.exported,
        after.dropped - before.dropped,
        after.failed - before.failed,
    );
    println!(
        "overload, two threads flat out: made {made} ({rate:.0}/s), exported {exported}, dropped {dropped}, failed {failed}"
    );
    assert_eq!(finished, made, "every span counted as finished");
    assert_eq!(exported + dropped + failed, finished, "exact accounting");
    // The receiver has answered every batch counted as exported.
    assert_eq!(received.load(Relaxed), after.exported, "receiver agrees");
    println!("  accounting exact: exported + dropped + failed == finished; receiver got exactly `exported`");
}

/// Makes spans (a parent and a child, so 2 per step) at `rate` spans/s for `length`,
/// pacing every millisecond. Returns the number made.
fn paced(rate: u64, length: Duration) -> u64 {
    let per_ms = (rate / 1000).max(2) / 2;
    let start = Instant::now();
    let mut made = 0;
    let mut tick = 0u32;
    while start.elapsed() < length {
        for i in 0..per_ms {
            let _step = info_span!("step", i, phase = "train").entered();
            let _inner = info_span!("inner", i).entered();
            made += 2;
        }
        tick += 1;
        let next = start + Duration::from_millis(tick.into());
        if let Some(wait) = next.checked_duration_since(Instant::now()) {
            std::thread::sleep(wait);
        }
    }
    made
}

/// Makes spans as fast as possible for `length`; returns the number made.
fn flat_out(length: Duration) -> u64 {
    let start = Instant::now();
    let mut made = 0;
    while start.elapsed() < length {
        for i in 0..1000u64 {
            let _step = info_span!("step", i).entered();
            made += 1;
        }
    }
    made
}

/// Waits until nothing is queued or in flight (at most 10 s).
fn drain(counts: &dyn Fn() -> spanlab::ExportReport) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let busy = |r: spanlab::ExportReport| r.queued_at_exit + r.in_flight_at_exit > 0;
    while busy(counts()) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
}
