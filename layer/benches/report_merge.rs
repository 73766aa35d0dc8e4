//! How long `Report::merge` takes for the reports of a large job: 64 ranks' reports of
//! 2,000 paths each (and, for orientation, what writing and reading them back costs).
//!
//! Each rank's report comes from a real layer: 2,000 span paths (13 span names, nested
//! three deep), each called 5 times with different amounts of work, so every path has
//! a histogram of a few buckets and the ranks' histograms differ. The merge is then
//! timed on its own, several times; the first figure to quote is its median.
//!
//! Run `cargo bench -p spanlab --bench report_merge`. Under `cargo test --benches` (no
//! `--bench` argument) it runs a small smoke version with the same checks.
//! `README.md` in this folder has the figures.

use std::time::{Duration, Instant};

use spanlab::{Report, ReportTarget, SpanLab};
use tracing::info_span;
use tracing_subscriber::prelude::*;

/// Distinct span names: each needs its own callsite.
const NAMES: usize = 13;
/// Nesting depth of the generated paths.
const DEPTH: usize = 3;
/// Calls per path.
const CALLS: u64 = 5;

/// The span named `s<k>`.
fn span(k: usize) -> tracing::Span {
    macro_rules! spans {
        ($($i:literal),*) => {
            match k {
                $($i => info_span!(concat!("s", $i)),)*
                _ => unreachable!("k < NAMES"),
            }
        };
    }
    spans!(0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
}

/// A little work whose length depends on `n`.
fn spin(n: u64) {
    let mut x = n;
    for _ in 0..(n % 97) * 8 {
        x = std::hint::black_box(x.wrapping_mul(6364136223846793005).wrapping_add(1));
    }
    std::hint::black_box(x);
}

/// Enters paths depth first until `budget` paths have been entered.
fn walk(depth: usize, budget: &mut usize, work: u64) {
    for k in 0..NAMES {
        if *budget == 0 {
            return;
        }
        *budget -= 1;
        let _span = span(k).entered();
        spin(work + (k * 31 + depth * 7) as u64);
        if depth < DEPTH {
            walk(depth + 1, budget, work);
        }
    }
}

/// One rank's report: `paths` paths, each called `CALLS` times.
fn rank_report(rank: u64, paths: usize) -> Report {
    let (layer, guard) = SpanLab::builder()
        .report_to(ReportTarget::Off)
        .ignore_env()
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for call in 0..CALLS {
            let mut budget = paths;
            walk(1, &mut budget, call * 13 + rank * 5);
        }
    });
    guard.report()
}

fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let (ranks, paths, rounds) = if full { (64, 2_000, 7) } else { (4, 200, 1) };

    let reports: Vec<Report> = (0..ranks).map(|r| rank_report(r, paths)).collect();
    assert!(reports.iter().all(|r| r.paths.len() == paths));

    let started = Instant::now();
    let texts: Vec<String> = reports.iter().map(Report::to_json).collect();
    let written = started.elapsed();
    let started = Instant::now();
    let read: Vec<Report> = texts
        .iter()
        .map(|t| Report::from_json(t).unwrap())
        .collect();
    let parsed = started.elapsed();
    assert_eq!(read, reports, "a report reads back as written");

    let mut times = Vec::new();
    let mut merged = None;
    for _ in 0..rounds {
        let started = Instant::now();
        let job = Report::merge(&read).unwrap();
        times.push(started.elapsed());
        merged = Some(job);
    }
    let job = merged.unwrap();
    assert_eq!(job.paths.len(), paths);
    assert!(job.paths.iter().all(|p| p.calls == ranks * CALLS));
    assert_eq!(job.runs.len(), ranks as usize);
    let buckets: usize = read
        .iter()
        .flat_map(|r| &r.paths)
        .map(|p| p.sums.wall.histogram.buckets().count())
        .sum();

    let mib = texts.iter().map(String::len).sum::<usize>() as f64 / (1 << 20) as f64;
    let merge = median(times.clone());
    println!(
        "report_merge: {ranks} reports x {paths} paths ({buckets} histogram buckets in all, \
         {mib:.1} MiB of JSON)"
    );
    println!(
        "  Report::merge     median {merge:.1?} (min {:.1?}, max {:.1?}, {rounds} rounds)",
        times.iter().min().unwrap(),
        times.iter().max().unwrap()
    );
    println!("  Report::to_json   {written:.1?} for all {ranks}");
    println!("  Report::from_json {parsed:.1?} for all {ranks}");
    if full {
        assert!(
            merge < Duration::from_secs(1),
            "merging {ranks} reports of {paths} paths took {merge:?}, over the 1 s target"
        );
    }
}
