//! The flush at exit and requests in flight, against a receiver that answers slowly
//! (`slow_receiver.rs`, in this process: no installable receiver is slow on demand).
//! What the report says is checked against what the receiver got.

use std::time::{Duration, Instant};

use tracing::info_span;
use tracing_subscriber::prelude::*;

use super::slow_receiver::SlowReceiver;
use super::Protocol;
use crate::{Builder, ExportReport, FlushOutcome, SpanLab};

fn receiver(protocol: Protocol, delay: Duration) -> SlowReceiver {
    match protocol {
        Protocol::Grpc => SlowReceiver::grpc(delay),
        Protocol::HttpProtobuf => SlowReceiver::http(delay),
    }
}

fn builder(protocol: Protocol, receiver: &SlowReceiver) -> Builder {
    SpanLab::builder()
        .ignore_env()
        .report_to(crate::ReportTarget::Off)
        .otlp_endpoint(receiver.endpoint.clone())
        .otlp_protocol(protocol)
}

/// Makes `n` spans (roots of 43 spans each: a root with 42 children) under `builder`'s
/// layer, flushes, and returns the guard with the report's export section made right
/// after the flush.
fn run(builder: Builder, n: usize) -> (crate::Guard, ExportReport) {
    let (layer, guard) = builder.build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..n / 43 {
            let _root = info_span!("step").entered();
            for _ in 0..42 {
                info_span!("part").in_scope(|| ());
            }
        }
        for _ in 0..n % 43 {
            info_span!("rest").in_scope(|| ());
        }
    });
    guard.profile().finish_export();
    let report = guard.report().export.expect("export is on");
    (guard, report)
}

fn assert_accounted(r: &ExportReport) {
    assert_eq!(
        r.exported + r.dropped + r.failed + r.queued_at_exit + r.in_flight_at_exit,
        r.finished,
        "{r:?}"
    );
}

#[test]
fn what_was_in_flight_at_exit_arrives_and_what_was_queued_never_does() {
    // Answers take 3 s; the flush waits 1 s. Batches of 100, two in flight: when the
    // flush gives up, two batches are in flight and the rest were never sent.
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = receiver(protocol, Duration::from_secs(3));
        let (guard, at_exit) = run(
            builder(protocol, &receiver)
                .otlp_batch_size(100)
                .otlp_max_concurrent_exports(2)
                .otlp_schedule_delay(Duration::from_millis(20))
                .otlp_flush_timeout(Duration::from_secs(1)),
            1_000,
        );
        assert_eq!(at_exit.flush, FlushOutcome::TimedOut, "{at_exit:?}");
        assert_eq!(at_exit.finished, 1_000);
        assert_accounted(&at_exit);
        assert_eq!(at_exit.in_flight_at_exit, 200, "{protocol:?}: {at_exit:?}");
        assert_eq!(at_exit.queued_at_exit, 800, "{protocol:?}: {at_exit:?}");
        assert_eq!(at_exit.batches, 2, "{protocol:?}: {at_exit:?}");
        // A request not yet answered is not a retry.
        assert_eq!(at_exit.retries, 0, "{protocol:?}: {at_exit:?}");

        // The answers come after the report: the spans in flight are exported then.
        let deadline = Instant::now() + Duration::from_secs(30);
        let later = loop {
            let r = guard.report().export.unwrap();
            if r.in_flight_at_exit == 0 || Instant::now() > deadline {
                break r;
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        assert_eq!(
            later.exported,
            at_exit.exported + at_exit.in_flight_at_exit,
            "{protocol:?}: {later:?}"
        );
        assert_eq!(later.queued_at_exit, at_exit.queued_at_exit);
        assert_eq!(later.retries, 0);
        // Every answer is in, and nothing is sent after the flush gave up: the receiver
        // holds exactly the spans that were in flight (none of the queued ones), once.
        let (received, distinct) = receiver.spans();
        assert_eq!(
            received as u64,
            at_exit.exported + at_exit.in_flight_at_exit,
            "{protocol:?}"
        );
        assert_eq!(distinct, received, "{protocol:?}: duplicates");
        assert_eq!(receiver.requests(), at_exit.batches + at_exit.retries);
    }
}

#[test]
fn requests_in_flight_let_a_slow_receiver_take_a_whole_run_within_the_default_flush() {
    // A run the size of `training_loop`'s, flushed at once against a receiver that
    // takes 1 s per answer: 7 batches of up to 2,048. One request at a time would take
    // 7 s, beyond the default 5 s flush; four at a time take two rounds.
    for protocol in [Protocol::Grpc, Protocol::HttpProtobuf] {
        let receiver = receiver(protocol, Duration::from_secs(1));
        let (_guard, report) = run(builder(protocol, &receiver), 12_900);
        assert_eq!(
            report.flush,
            FlushOutcome::Complete,
            "{protocol:?}: {report:?}"
        );
        assert_eq!(
            (report.finished, report.exported, report.retries),
            (12_900, 12_900, 0),
            "{protocol:?}: {report:?}"
        );
        assert_accounted(&report);
        assert_eq!(receiver.spans(), (12_900, 12_900), "{protocol:?}");
        assert_eq!(receiver.requests(), report.batches);
    }
}

#[test]
fn the_report_counts_requests_in_flight_while_the_program_runs() {
    // Before the flush, spans sent and unanswered are in flight, not retries.
    let receiver = receiver(Protocol::Grpc, Duration::from_secs(2));
    let (layer, guard) = builder(Protocol::Grpc, &receiver)
        .otlp_batch_size(10)
        .otlp_schedule_delay(Duration::from_millis(10))
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..10 {
            info_span!("x").in_scope(|| ());
        }
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    let report = loop {
        let r = guard.report().export.unwrap();
        if r.in_flight_at_exit > 0 || Instant::now() > deadline {
            break r;
        }
        std::thread::sleep(Duration::from_millis(5));
    };
    assert_eq!(report.flush, FlushOutcome::NotFlushed);
    assert_eq!(
        (report.in_flight_at_exit, report.batches),
        (10, 1),
        "{report:?}"
    );
    assert_eq!(report.retries, 0, "{report:?}");
    assert_accounted(&report);
    guard.profile().finish_export();
    let report = guard.report().export.unwrap();
    assert_eq!(report.flush, FlushOutcome::Complete);
    assert_eq!((report.exported, report.retries), (10, 0), "{report:?}");
}
