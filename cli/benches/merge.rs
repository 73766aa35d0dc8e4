//! How long `spanlab merge` takes for a large job, through the command's own path —
//! the checks, the library's exact `Report::merge`, and the per-path spread: 64 ranks'
//! reports of 2,000 paths each (the library's `layer/benches/report_merge.rs` times
//! `Report::merge` alone on reports of the same size).
//!
//! `cargo bench -p spanlab-cli --bench merge`. Under `cargo test --benches` (no
//! `--bench` argument) it runs once on 8 reports of 200 paths.

use std::path::Path;

use criterion::{criterion_group, criterion_main, Criterion};
use spanlab_cli::input::{parse, Loaded};
use spanlab_cli::merge::merge;
use spanlab_cli::synthetic::{around, Synthetic};

/// Rank `rank`'s report: `paths` paths (a multiple of 20), 5 calls each, durations
/// that differ between ranks so their histograms do too.
fn rank(rank: u64, paths: usize) -> Loaded {
    let mut s = Synthetic::new().rank(rank, 64);
    for group in 0..paths / 20 {
        s = s.path(
            &format!("g{group}"),
            around(1_000_000 + rank * 1_000, 0.3, 5),
        );
        for op in 0..19 {
            let mean = 10_000 + (group * 20 + op) as u64 * 11 + rank * 7;
            s = s.path(&format!("g{group} > op{op}"), around(mean, 0.5, 5));
        }
    }
    parse(Path::new(&format!("rank{rank}.json")), &s.to_json()).expect("reads back")
}

fn bench(c: &mut Criterion) {
    let full = std::env::args().any(|a| a == "--bench");
    let (ranks, paths) = if full { (64, 2_000) } else { (8, 200) };
    let inputs: Vec<Loaded> = (0..ranks).map(|r| rank(r, paths)).collect();
    let merged = merge(&inputs).expect("merges");
    assert_eq!(merged.report.paths.len(), paths);
    assert_eq!(merged.spread.len(), paths);
    let mut group = c.benchmark_group("merge");
    group.sample_size(10);
    group.bench_function(
        format!("{ranks} reports of {paths} paths, with spread"),
        |b| b.iter(|| merge(&inputs)),
    );
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
