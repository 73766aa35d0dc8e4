//! Instructions one span lifecycle costs, counted by callgrind rather than timed.
//!
//! The lifecycle is the overhead bench's: a span with two fields created, entered,
//! exited and closed, nested in an entered parent. This binary runs `N` of them under
//! one subscriber; `scripts/callgrind-lifecycle.sh` runs it under
//! `valgrind --tool=callgrind` for each subscriber (the registry with an empty layer;
//! spanlab profiling; spanlab exporting every span to an exporter that only counts,
//! its exporter thread's work included) at two counts and prints what one
//! more lifecycle costs, and what spanlab adds to the registry with an empty layer:
//!
//! ```text
//! cargo bench -p spanlab --bench lifecycle_instructions --no-run
//! bash scripts/callgrind-lifecycle.sh
//! ```
//!
//! Instruction counts do not move with the machine's load, which timings on a shared
//! VM do; they catch a hot-path change a timing cannot resolve. Run without arguments
//! (as `cargo test --all-targets` does) it runs a few lifecycles under each subscriber
//! as a smoke test.

use std::hint::black_box;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

use tracing::info_span;
use tracing_subscriber::prelude::*;
use tracing_subscriber::Layer;

/// A layer that does nothing: the registry's cost alone.
struct EmptyLayer;
impl<S: tracing::Subscriber> Layer<S> for EmptyLayer {}

/// An exporter that only counts what it is sent.
#[derive(Clone, Debug, Default)]
struct NoopExporter(Arc<AtomicU64>);

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Ordering::Relaxed);
        Ok(())
    }
}

fn lifecycle(i: u64) {
    let span = info_span!("child", step = i, phase = "forward");
    let _entered = span.enter();
    black_box(&span);
}

/// Runs `n` lifecycles under the subscriber `variant` names (after the warm-up every
/// variant gets, so one-time work is the same in both counts).
fn run(variant: &str, n: u64) {
    let (dispatch, guard) = match variant {
        "empty" => (
            tracing::Dispatch::new(tracing_subscriber::registry().with(EmptyLayer)),
            None,
        ),
        "spanlab" => {
            let (layer, guard) = spanlab::SpanLab::builder()
                .report_to(spanlab::ReportTarget::Off)
                .ignore_env()
                .build();
            (
                tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
                Some(guard),
            )
        }
        // Profiling with open-span fields recorded: the lifecycle's two fields make
        // its spans take the general paths (not in the script's loop; run it by hand).
        "fields" => {
            let (layer, guard) = spanlab::SpanLab::builder()
                .report_to(spanlab::ReportTarget::Off)
                .ignore_env()
                .open_span_fields(true)
                .build();
            (
                tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
                Some(guard),
            )
        }
        "export" => {
            let (layer, guard) = spanlab::SpanLab::builder()
                .report_to(spanlab::ReportTarget::Off)
                .ignore_env()
                .otlp_exporter(NoopExporter::default())
                .build();
            (
                tracing::Dispatch::new(tracing_subscriber::registry().with(layer)),
                Some(guard),
            )
        }
        other => {
            eprintln!(
                "unknown variant {other:?}: expected `empty`, `spanlab`, `fields` or `export`"
            );
            std::process::exit(2);
        }
    };
    tracing::dispatcher::with_default(&dispatch, || {
        let _parent = info_span!("parent").entered();
        for i in 0..1_000 {
            lifecycle(i); // warm-up: first uses, path interning, table growth
        }
        for i in 0..n {
            lifecycle(i);
        }
    });
    drop(guard);
}

fn main() {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| !a.starts_with("--"))
        .collect();
    match args.as_slice() {
        [variant, n] => match n.parse() {
            Ok(n) => run(variant, n),
            Err(_) => {
                eprintln!("usage: lifecycle_instructions (empty|spanlab|fields|export) N");
                std::process::exit(2);
            }
        },
        _ => {
            run("empty", 100);
            run("spanlab", 100);
            run("fields", 100);
            run("export", 100);
        }
    }
}
