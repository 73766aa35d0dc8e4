//! How long `spanlab html` takes for a large report: 10,000 paths (100 stages of 100
//! operations, 20 calls each with spread-out durations, so every path has a histogram
//! of many buckets); the page must stay under 10 MB, which the setup asserts and prints.
//!
//! `cargo bench -p spanlab-cli --bench html`. Under `cargo test --benches` (no
//! `--bench` argument) it runs once on 500 paths with the same checks.

use criterion::{criterion_group, criterion_main, Criterion};
use spanlab_cli::html::{page, PageOptions};
use spanlab_cli::synthetic::{around, Synthetic};

/// A report of `paths` paths (a multiple of 100).
fn report(paths: usize) -> spanlab::Report {
    let mut s = Synthetic::new();
    for stage in 0..paths / 100 {
        s = s.path(&format!("stage{stage}"), around(10_000_000, 0.5, 20));
        for op in 0..99 {
            let mean = 1_000 + (stage * 100 + op) as u64 * 37;
            s = s.path(&format!("stage{stage} > op{op}"), around(mean, 0.9, 20));
        }
    }
    spanlab::Report::from_json(&s.to_json()).expect("a synthetic report reads back")
}

fn bench(c: &mut Criterion) {
    let full = std::env::args().any(|a| a == "--bench");
    let paths = if full { 10_000 } else { 500 };
    let report = report(paths);
    let options = PageOptions {
        title: "bench.json".into(),
        ..PageOptions::default()
    };
    let html = page(&report, &options).expect("the page renders");
    println!("html of {paths} paths: {} bytes", html.len());
    assert!(
        html.len() < 10_000_000,
        "the page is {} bytes, over 10 MB",
        html.len()
    );
    let mut group = c.benchmark_group("html");
    group.sample_size(10);
    group.bench_function(format!("page of {paths} paths"), |b| {
        b.iter(|| page(&report, &options))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
