//! A small instrumented program for the end-to-end tests: `workload MODE`.
//!
//! * `normal`: 20 epochs of `epoch > forward / backward`, then a normal exit;
//! * `ignore_env`: `normal`, built with `Builder::ignore_env()`, and its JSON report
//!   printed on stdout (the environment cannot ask for a file);
//! * `panic`: the same, then `main` panics (the report must still come out);
//! * `signal`: reports on SIGINT/SIGTERM, prints `ready`, then works until killed;
//! * `error`: an `#[instrument(err)]` function that fails every third call;
//! * `seeds`: unseeded and seeded draws, printed, with seeds in the report;
//! * `bad_seed`: spans whose `seed` is a string, beside a `fmt` layer that prints
//!   the WARN event spanlab emits;
//! * `steady [N]`: `step` spans of about a millisecond, each followed by a line
//!   `COUNT UNIX_NS` on stdout (steps finished so far, and when), for N steps or until
//!   killed (the snapshot tests);
//! * `grow`: `step` spans for 300 ms, then a chain of 60 nested `deep` spans over and
//!   over for 300 ms: a report that outgrows a small file-size limit mid-run.

use std::io::Write;
use std::time::Duration;

use tracing::{info_span, instrument};

#[instrument]
fn forward(step: u64) -> u64 {
    std::hint::black_box((0..1000).fold(step, |a, b| a.wrapping_mul(31).wrapping_add(b)))
}

#[instrument]
fn backward(step: u64) {
    std::thread::sleep(Duration::from_micros(50 + step % 3));
}

#[instrument(err)]
fn validate(step: u64) -> Result<(), String> {
    if step.is_multiple_of(3) {
        Err(format!("step {step} diverged"))
    } else {
        Ok(())
    }
}

fn epochs(n: u64) {
    for epoch in 0..n {
        let _epoch = info_span!("epoch", epoch).entered();
        forward(epoch);
        backward(epoch);
    }
}

/// One step of `steady`: a span of about a millisecond.
fn step() {
    info_span!("step").in_scope(|| std::thread::sleep(Duration::from_millis(1)));
}

/// `steady`: steps, each one's count and time printed once it is finished.
fn steady(steps: Option<u64>) {
    let mut out = std::io::stdout().lock();
    for count in 1..=steps.unwrap_or(u64::MAX) {
        step();
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap();
        writeln!(out, "{count} {}", now.as_nanos()).unwrap();
        out.flush().unwrap();
    }
}

/// `depth` nested `deep` spans: as many paths, each longer than the last.
fn deep(depth: u32) {
    if depth > 0 {
        info_span!("deep").in_scope(|| deep(depth - 1));
    }
}

/// `grow`: small report first, then one too big for the file-size limit.
fn grow() {
    let start = std::time::Instant::now();
    while start.elapsed() < Duration::from_millis(300) {
        step();
    }
    while start.elapsed() < Duration::from_millis(600) {
        deep(60);
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// Twenty quick `all_reduce` calls under `train`, then one that never returns: the
/// hung collective the open-span list must show. Prints `hung` when it is stuck.
fn hang() {
    let _train = info_span!("train").entered();
    for bucket in 0..20u64 {
        info_span!("all_reduce", bucket).in_scope(|| std::hint::black_box(bucket));
    }
    let _stuck = info_span!("all_reduce", bucket = 99u64).entered();
    println!("hung");
    std::io::stdout().flush().unwrap();
    loop {
        std::thread::sleep(Duration::from_secs(1));
    }
}

fn main() {
    let mode = std::env::args().nth(1).unwrap_or_else(|| "normal".into());
    if mode == "bad_seed" {
        use tracing_subscriber::prelude::*;
        let (layer, _guard) = spanlab::SpanLab::builder().build();
        let fmt = tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            .with_ansi(false);
        tracing_subscriber::registry().with(fmt).with(layer).init();
        for _ in 0..3 {
            info_span!("trial", seed = "abc").in_scope(|| forward(1));
        }
        return;
    }
    let builder = spanlab::SpanLab::builder().report_on_signal(mode == "signal");
    let builder = if mode == "ignore_env" {
        builder.ignore_env()
    } else {
        builder
    };
    let guard = builder.init();
    match mode.as_str() {
        "normal" => epochs(20),
        "ignore_env" => {
            epochs(20);
            println!("{}", guard.report().to_json());
        }
        "panic" => {
            epochs(20);
            panic!("diverged after 20 epochs");
        }
        "seeds" => {
            use rand::RngExt;
            let mut drawn: Vec<u64> = (0..3).map(|_| spanlab::rng().random()).collect();
            for trial in 0..4u64 {
                let _t = info_span!("trial", seed = trial * 10).entered();
                drawn.extend((0..5).map(|_| spanlab::rng().random::<u64>()));
            }
            drawn.push(spanlab::rng().random());
            println!("{drawn:?}");
        }
        "steady" => steady(std::env::args().nth(2).map(|n| n.parse().unwrap())),
        "grow" => grow(),
        "hang" => hang(),
        "error" => {
            for step in 0..9 {
                let _ = validate(step);
            }
        }
        "signal" => {
            epochs(5);
            println!("ready");
            std::io::stdout().flush().unwrap();
            loop {
                epochs(1);
            }
        }
        other => {
            eprintln!("unknown mode {other}");
            std::process::exit(2);
        }
    }
    drop(guard);
}
