//! A sweep that gives every call its own seed: seed bookkeeping stays bounded.
//!
//! ```text
//! cargo run --release --example seed_sweep
//! ```
//!
//! One seeded span per seed, `seed = i` for a million distinct `i`, each drawing one
//! value. spanlab keeps per seeded path the smallest `spanlab::rng::SEEDS_KEPT` seeds
//! with exact counts, the calls of all others together, the range of the seeds, and
//! the number of distinct seeds (an estimate once they are not all kept). The program
//! checks that this holds, that the process's resident memory grows by at most 8 MB
//! over the sweep, and that the JSON report stays under 1 MB. (The memory check is
//! Linux only: it reads `VmRSS` from `/proc/self/status`; elsewhere it is skipped.)

use std::hint::black_box;
use std::time::Instant;

use rand::RngExt;

#[path = "memory.rs"]
mod memory;
use memory::{resident_bytes, thousands};

/// Seeds run before measuring: they create the path and fill the kept seeds, and let
/// the allocator and the layer's per-thread tables reach their steady state.
const WARMUP_SEEDS: u64 = 10_000;
/// Distinct seeds in the measured sweep, none of them used in the warm-up.
const SWEEP_SEEDS: u64 = 1_000_000;
const RSS_GROWTH_LIMIT_BYTES: u64 = 8_000_000;
const JSON_LIMIT_BYTES: usize = 1_000_000;

fn main() {
    // Report off: this program prints its own figures. `ignore_env` keeps a stray
    // SPANLAB_REPORT or RUST_LOG from changing what is measured.
    let guard = spanlab::SpanLab::builder()
        .report_to(spanlab::ReportTarget::Off)
        .ignore_env()
        .seed(0)
        .init();
    let profile = guard.profile();

    let initial = resident_bytes();
    sweep(0..WARMUP_SEEDS);
    let before = resident_bytes();
    let start = Instant::now();
    sweep(WARMUP_SEEDS..WARMUP_SEEDS + SWEEP_SEEDS);
    let elapsed = start.elapsed();
    let after_sweep = resident_bytes();
    let report = profile.report();
    let json = report.to_json();
    let after_report = resident_bytes();

    let total = WARMUP_SEEDS + SWEEP_SEEDS;
    let [trial] = &report.seeds.paths[..] else {
        panic!("one seeded path expected: {:?}", report.seeds.paths);
    };
    println!(
        "{} seeded spans over {} distinct seeds in {elapsed:.2?} ({:.0} ns per span)",
        thousands(SWEEP_SEEDS),
        thousands(SWEEP_SEEDS),
        elapsed.as_nanos() as f64 / SWEEP_SEEDS as f64
    );
    println!(
        "path `{}`: {} calls, {} draws; {} seeds kept, {} calls with other seeds; \
         {}{} distinct seeds (true: {}), range {:?}",
        trial.path.join(" > "),
        thousands(trial.calls),
        thousands(trial.draws),
        trial.seeds.len(),
        thousands(trial.other_seed_calls),
        if trial.distinct_exact { "" } else { "≈" },
        thousands(trial.distinct_seeds),
        thousands(total),
        trial.seed_range,
    );
    // The path's last row in the text report is the one of the seeds section.
    let text = report.to_text();
    let seeds_row = text
        .lines()
        .rfind(|line| line.starts_with("sweep_trial "))
        .unwrap_or_default();
    println!("text report, seeds row: {seeds_row}");

    println!(
        "JSON report: {} bytes (limit {} bytes)",
        thousands(json.len() as u64),
        thousands(JSON_LIMIT_BYTES as u64)
    );
    let growth = match (initial, before, after_sweep, after_report) {
        (Some(initial), Some(before), Some(after_sweep), Some(after_report)) => {
            let warmup_label = format!("after {} warm-up seeds", thousands(WARMUP_SEEDS));
            let sweep_label = format!("after {} more seeds", thousands(SWEEP_SEEDS));
            println!("{:<32} {:>6.1} MB", "RSS at start", mb(initial));
            println!("{warmup_label:<32} {:>6.1} MB", mb(before));
            println!("{sweep_label:<32} {:>6.1} MB", mb(after_sweep));
            println!("{:<32} {:>6.1} MB", "after the report", mb(after_report));
            let growth = after_sweep.max(after_report).saturating_sub(before);
            println!(
                "growth: {:+.2} MB (limit {} MB)",
                mb(growth),
                mb(RSS_GROWTH_LIMIT_BYTES)
            );
            Some(growth)
        }
        _ => {
            println!("RSS is not available here (no /proc/self/status): memory check skipped.");
            None
        }
    };

    // Figures first, then the checks: a failure still shows every figure.
    if let Some(growth) = growth {
        assert!(
            growth <= RSS_GROWTH_LIMIT_BYTES,
            "RSS grew by {:.2} MB over {SWEEP_SEEDS} distinct seeds (limit {} MB)",
            mb(growth),
            mb(RSS_GROWTH_LIMIT_BYTES)
        );
    }
    assert!(
        json.len() < JSON_LIMIT_BYTES,
        "the JSON report has {} bytes (limit {JSON_LIMIT_BYTES})",
        json.len()
    );
    // What the report says must be right too, or the bounds mean nothing.
    assert_eq!((trial.calls, trial.draws), (total, total));
    assert_eq!(trial.seed_range, Some((0, total - 1)));
    let kept = spanlab::rng::SEEDS_KEPT as u64;
    assert_eq!(trial.seeds, (0..kept).map(|s| (s, 1)).collect::<Vec<_>>());
    assert_eq!(trial.other_seed_calls, total - kept);
    assert!(!trial.distinct_exact);
    let error = trial.distinct_seeds as f64 / total as f64 - 1.0;
    assert!(
        error.abs() <= 4.0 * spanlab::rng::DISTINCT_SEEDS_ERROR,
        "distinct seeds estimated {} for {total} (relative error {error:.3})",
        trial.distinct_seeds
    );
}

/// Bytes in (decimal) megabytes, as the limits are given.
fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// One seeded span per seed, each drawing one value from its own stream.
fn sweep(seeds: std::ops::Range<u64>) {
    for seed in seeds {
        let _span = tracing::info_span!("sweep_trial", seed).entered();
        black_box(spanlab::rng().random::<u64>());
    }
}
