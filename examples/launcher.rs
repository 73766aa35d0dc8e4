//! One job, one trace: a launcher starts its ranks as child processes and hands each
//! its span's trace context, so that every rank's spans land in the launcher's trace.
//!
//! The launcher (this program, run without arguments) opens a `launch` span, reads its
//! W3C `traceparent` with `spanlab::export::current_traceparent()`, and starts 4
//! workers: itself again with `--worker`, and `RANK`, `LOCAL_RANK`, `WORLD_SIZE` and
//! `TRACEPARENT` in their environment, as torchrun or a SLURM script would. Each
//! worker runs a `worker` root span with 5 `step` children; spanlab in the worker reads
//! `TRACEPARENT` as its run's remote parent, so its `worker` span is a child of the
//! launcher's `launch` span, in the same trace:
//!
//! ```text
//! launch                      (launcher process)
//! ├── worker rank=0           (worker process, RANK=0)
//! │   ├── step rank=0 step=0
//! │   └── ...
//! ├── worker rank=1 ...
//! ├── worker rank=2 ...
//! └── worker rank=3 ...
//! ```
//!
//! The launcher waits for its workers and fails if one fails; a worker that was handed
//! a trace context checks that its own spans joined that trace. With export off there
//! is no trace context to hand on, and the job just runs.
//!
//! # Running it
//!
//! ```text
//! cargo run --example launcher     # export off: five reports on stderr, one per process
//!
//! # Jaeger, from collector-config/compose.yaml (`docker compose ... up -d jaeger`:
//! # its OTLP on 14317 gRPC / 14318 HTTP, the UI on 16686; service `launcher`)
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:14317 OTEL_EXPORTER_OTLP_PROTOCOL=grpc \
//!     cargo run --example launcher
//! # a Jaeger all-in-one of your own listens on 4317 (gRPC) and 4318 (HTTP):
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:4318 cargo run --example launcher
//!
//! # Phoenix (`phoenix serve`: OTLP/HTTP and the UI on 6006, OTLP/gRPC on 4317), into a
//! # project of its own
//! OTEL_EXPORTER_OTLP_ENDPOINT=http://localhost:6006 \
//!     OTEL_RESOURCE_ATTRIBUTES=openinference.project.name=launcher \
//!     cargo run --example launcher
//!
//! # One JSON report per process: run.json (the launcher), run.rank0.json ... run.rank3.json
//! SPANLAB_REPORT_JSON=run.json cargo run --example launcher
//! ```
//!
//! Every child inherits the launcher's environment (`OTEL_*`, `SPANLAB_*`), so one
//! command line configures the whole job; ranks never overwrite each other's report
//! files, as a path without a `{rank}` placeholder gets `.rank{N}` in each worker.

use std::process::{Command, ExitCode};

/// How many worker processes the launcher starts.
const WORLD_SIZE: usize = 4;
/// How many `step` spans each worker runs.
const STEPS: u64 = 5;

fn main() -> ExitCode {
    let worker = std::env::args().nth(1).as_deref() == Some("--worker");
    // Keep the guard to the end: dropping it flushes the export and writes the report.
    let guard = spanlab::init();
    let code = if worker { work() } else { launch() };
    drop(guard);
    code
}

/// The launcher: starts the workers under its `launch` span and waits for them.
fn launch() -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("launcher: cannot find its own executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _launch = tracing::info_span!("launch", world_size = WORLD_SIZE).entered();
    let traceparent = spanlab::export::current_traceparent();
    match &traceparent {
        Some(value) => println!("launcher: starting {WORLD_SIZE} workers in trace context {value}"),
        None => println!("launcher: starting {WORLD_SIZE} workers (export off: no trace context)"),
    }
    let workers: Vec<_> = (0..WORLD_SIZE)
        .map(|rank| {
            let mut cmd = Command::new(&exe);
            cmd.arg("--worker")
                .env("RANK", rank.to_string())
                .env("LOCAL_RANK", rank.to_string())
                .env("WORLD_SIZE", WORLD_SIZE.to_string());
            // Without one (export off, or this trace not sampled), a `TRACEPARENT` the
            // launcher itself was given, if any, is inherited as it is.
            if let Some(value) = &traceparent {
                cmd.env("TRACEPARENT", value);
            }
            (rank, cmd.spawn())
        })
        .collect();
    let mut failed = 0;
    for (rank, worker) in workers {
        match worker.and_then(|mut child| child.wait()) {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!("launcher: rank {rank} failed: {status}");
                failed += 1;
            }
            Err(e) => {
                eprintln!("launcher: rank {rank} did not run: {e}");
                failed += 1;
            }
        }
    }
    if failed > 0 {
        eprintln!("launcher: {failed} of {WORLD_SIZE} workers failed");
        return ExitCode::FAILURE;
    }
    println!("launcher: all {WORLD_SIZE} workers done");
    ExitCode::SUCCESS
}

/// A worker: a `worker` root span (a child of the launcher's span, through
/// `TRACEPARENT`) with a few `step` spans of arithmetic.
fn work() -> ExitCode {
    let Some(rank) = std::env::var("RANK")
        .ok()
        .and_then(|r| r.parse::<u64>().ok())
    else {
        eprintln!("worker: RANK is not set to a rank");
        return ExitCode::FAILURE;
    };
    let worker = tracing::info_span!("worker", rank).entered();
    let mut x = rank as f64 + 1.0;
    for step in 0..STEPS {
        let _step = tracing::info_span!("step", rank, step).entered();
        for _ in 0..20_000 {
            x = (x * 1.000_001).sin() + 1.5;
        }
    }
    std::hint::black_box(x);
    // The check the example makes of itself: handed a sampled trace context, this
    // worker's spans are in that trace.
    let handed = std::env::var("TRACEPARENT").ok();
    let handed = handed.as_deref().map(spanlab::export::RemoteParent::parse);
    let mine = spanlab::export::current_traceparent();
    let mine = mine.as_deref().map(spanlab::export::RemoteParent::parse);
    drop(worker);
    match (handed, mine) {
        (Some(Ok(handed)), Some(Ok(mine))) if handed.trace_id != mine.trace_id => {
            eprintln!(
                "worker {rank}: its spans are in trace {:032x}, not in the launcher's {:032x}",
                mine.trace_id, handed.trace_id
            );
            ExitCode::FAILURE
        }
        _ => {
            println!("worker {rank}: {STEPS} steps done");
            ExitCode::SUCCESS
        }
    }
}
