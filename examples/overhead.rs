//! What does timing a block with a span cost, compared with the work in the block?
//!
//! ```text
//! cargo run --release --example overhead
//! ```
//!
//! Part 1 times blocks of busy work from nothing to about 1 ms, three ways:
//!
//! * **bare**: the block alone;
//! * **spanlab**: the block inside `let _span = tracing::info_span!("work").entered();`,
//!   with spanlab installed as the global subscriber (a span is created, entered,
//!   exited, closed and recorded into the statistics on every call);
//! * **Instant**: the block between two `Instant::now()` calls whose difference is
//!   added to a local `Duration`, which is what a hand-written `Timer` does.
//!
//! It prints the extra time per call of the last two, in nanoseconds and as a share of
//! the work, and from which size of work spanlab's share is below 1 % and 0.1 %. The
//! machine this runs on may be shared and noisy, so the three are measured in short
//! batches, interleaved batch by batch (a change of load hits all of them alike), and
//! each figure is a median over hundreds of batches, given with its standard error: a
//! share is only claimed to be below a limit when it is so by two standard errors.
//!
//! Part 2 runs ten million nested spans (`outer > inner0` ... `outer > inner9`) and
//! checks that the process's resident memory grows by at most 8 MB: spanlab keeps
//! aggregates per path, never per-call records. (Linux only: it reads `VmRSS` from
//! `/proc/self/status`; elsewhere the check is skipped.)

use std::hint::black_box;
use std::time::{Duration, Instant};

#[path = "memory.rs"]
mod memory;
use memory::{resident_bytes, thousands};

/// Target durations of the work in a block, in nanoseconds.
const WORKLOADS_NS: [u64; 6] = [0, 100, 1_000, 10_000, 100_000, 1_000_000];
/// Roughly how long one batch of one variant runs: short, so that most batches are
/// not interrupted at all, and the median ignores those that are.
const BATCH_NS: u64 = 500_000;
/// Roughly how long each workload is measured, all batches together.
const WORKLOAD_BUDGET_NS: u64 = 1_200_000_000;
/// A generous guess at the slowest variant's cost per call, to size batches of tiny work.
const SPAN_COST_GUESS_NS: u64 = 150;

const WARMUP_SPANS: u64 = 100_000;
const MEASURED_SPANS: u64 = 10_000_000;
const RSS_GROWTH_LIMIT_BYTES: u64 = 8_000_000;

fn main() {
    // Report off: this program prints its own figures. `ignore_env` keeps a stray
    // SPANLAB_REPORT from adding a report to the output.
    let guard = spanlab::SpanLab::builder()
        .report_to(spanlab::ReportTarget::Off)
        .ignore_env()
        .init();

    let ns_per_iteration = calibrate();
    println!("Part 1: extra time per call over the bare block");
    println!(
        "(busy loop calibrated at {ns_per_iteration:.2} ns per iteration; \
         medians ± standard error)\n"
    );
    let groups = format!(
        "{:>8} {:>10} | {:^30} | {:^30}",
        "", "", "spanlab span", "Instant pair"
    );
    println!("{}", groups.trim_end());
    println!(
        "{:>8} {:>10} | {:>10} {:>10} {:>8} | {:>10} {:>10} {:>8}",
        "workload", "bare", "extra", "±", "share", "extra", "±", "share"
    );
    let mut rows = Vec::new();
    for target_ns in WORKLOADS_NS {
        let iterations = (target_ns as f64 / ns_per_iteration).round() as u64;
        let row = measure(target_ns, iterations);
        println!(
            "{:>8} {:>10} | {} | {}",
            label(target_ns),
            format_ns(row.bare_ns),
            row.span.columns(row.share(row.span.ns)),
            row.instant.columns(row.share(row.instant.ns)),
        );
        rows.push(row);
    }

    // The spans must really have gone through spanlab (not been filtered out, by
    // RUST_LOG for instance), or the comparison means nothing.
    let spans_run: u64 = rows.iter().map(|row| row.spans_run).sum();
    let recorded = guard.profile().get("work").map_or(0, |work| work.calls);
    assert_eq!(recorded, spans_run, "spanlab did not record every span");

    summarize(&rows);

    println!(
        "\nPart 2: resident memory over {} spans\n",
        thousands(MEASURED_SPANS)
    );
    memory_check(&guard.profile());
}

/// Busy work: `iterations` dependent multiply-adds the optimizer cannot remove.
/// Never inlined, so that every variant runs the very same machine code.
#[inline(never)]
fn spin(iterations: u64) -> u64 {
    let mut x = 0u64;
    for i in 0..iterations {
        x = black_box(x.wrapping_mul(0x5851_f42d_4c95_7f2d).wrapping_add(i));
    }
    x
}

/// Nanoseconds per loop iteration: the fastest of a few runs, the one least disturbed.
fn calibrate() -> f64 {
    const ITERATIONS: u64 = 2_000_000;
    (0..7)
        .map(|_| {
            let start = Instant::now();
            black_box(spin(black_box(ITERATIONS)));
            start.elapsed().as_nanos() as f64 / ITERATIONS as f64
        })
        .fold(f64::INFINITY, f64::min)
}

#[derive(Clone, Copy)]
enum Variant {
    Bare,
    Span,
    Instant,
}

impl Variant {
    const ALL: [Variant; 3] = [Variant::Bare, Variant::Span, Variant::Instant];

    /// Runs `calls` blocks of `iterations`; returns the mean time per call in ns.
    fn batch(self, iterations: u64, calls: u64) -> f64 {
        let start = Instant::now();
        match self {
            Variant::Bare => {
                for _ in 0..calls {
                    black_box(spin(black_box(iterations)));
                }
            }
            Variant::Span => {
                for _ in 0..calls {
                    let _span = tracing::info_span!("work").entered();
                    black_box(spin(black_box(iterations)));
                }
            }
            Variant::Instant => {
                let mut elapsed = Duration::ZERO;
                for _ in 0..calls {
                    let start = Instant::now();
                    black_box(spin(black_box(iterations)));
                    elapsed += start.elapsed();
                }
                black_box(elapsed);
            }
        }
        start.elapsed().as_nanos() as f64 / calls as f64
    }
}

/// Measures the three variants on one workload, interleaved batch by batch.
fn measure(target_ns: u64, iterations: u64) -> Row {
    const WARMUP_ROUNDS: u64 = 5;
    let per_call_guess = target_ns + SPAN_COST_GUESS_NS;
    let calls = (BATCH_NS / per_call_guess).max(1);
    let rounds = (WORKLOAD_BUDGET_NS / (3 * calls * per_call_guess)).clamp(101, 1001);

    let mut bare = Vec::with_capacity(rounds as usize);
    let mut span = Vec::with_capacity(rounds as usize);
    let mut instant = Vec::with_capacity(rounds as usize);
    for round in 0..WARMUP_ROUNDS + rounds {
        let mut ns = [0.0; 3];
        // Rotate the order too, so that no variant always runs first (or last).
        for k in 0..3 {
            let i = (round as usize + k) % 3;
            ns[i] = Variant::ALL[i].batch(iterations, calls);
        }
        if round >= WARMUP_ROUNDS {
            bare.push(ns[0]);
            // Differences within one round: both sides saw the same load.
            span.push(ns[1] - ns[0]);
            instant.push(ns[2] - ns[0]);
        }
    }
    Row {
        target_ns,
        bare_ns: Median::of(bare).ns,
        span: Median::of(span),
        instant: Median::of(instant),
        spans_run: (WARMUP_ROUNDS + rounds) * calls,
    }
}

/// One workload's results, per call.
struct Row {
    target_ns: u64,
    bare_ns: f64,
    /// Extra time of the span variant over the bare block.
    span: Median,
    /// Extra time of the `Instant` variant over the bare block.
    instant: Median,
    /// Spans created, warm-up included.
    spans_run: u64,
}

impl Row {
    /// `extra_ns` as a percentage of the work; `None` for the empty workload.
    fn share(&self, extra_ns: f64) -> Option<f64> {
        (self.target_ns > 0).then(|| 100.0 * extra_ns / self.bare_ns)
    }

    /// Whether spanlab's share is below `limit_pct` by two standard errors (`Some(true)`),
    /// above it by two (`Some(false)`), or too close to tell on this machine (`None`).
    fn span_below(&self, limit_pct: f64) -> Option<bool> {
        let margin = 2.0 * self.span.error_ns;
        let high = self.share(self.span.ns + margin)?;
        let low = self.share(self.span.ns - margin)?;
        if high < limit_pct {
            Some(true)
        } else if low >= limit_pct {
            Some(false)
        } else {
            None
        }
    }
}

/// A median and its standard error.
struct Median {
    ns: f64,
    error_ns: f64,
}

impl Median {
    fn of(mut samples: Vec<f64>) -> Self {
        samples.sort_by(f64::total_cmp);
        let n = samples.len();
        let quantile = |q: f64| samples[((n - 1) as f64 * q).round() as usize];
        // Standard error of a median, with σ estimated robustly from the quartiles.
        let sigma = (quantile(0.75) - quantile(0.25)) / 1.349;
        Median {
            ns: quantile(0.5),
            error_ns: 1.2533 * sigma / (n as f64).sqrt(),
        }
    }

    /// `extra`, `±` and `share` columns.
    fn columns(&self, share: Option<f64>) -> String {
        let share = share.map_or_else(|| "-".to_string(), format_pct);
        let sign = if self.ns < 0.0 { "-" } else { "+" };
        format!(
            "{:>10} {:>10} {:>8}",
            format!("{sign}{}", format_ns(self.ns.abs())),
            format_ns(self.error_ns),
            share
        )
    }
}

/// What a span costs, and from which workload on that is below 1 % and 0.1 % of it.
fn summarize(rows: &[Row]) {
    // Between longer blocks of work a span tends to cost more than back to back (its
    // code and data have likely gone cold), so the cost is not quite constant: the
    // largest estimate precise to 20 % is the honest one to extrapolate from.
    let back_to_back = rows[0].span.ns;
    let (cold, cold_at) = rows
        .iter()
        .filter(|row| row.span.error_ns < 0.2 * row.span.ns)
        .map(|row| (row.span.ns, row.target_ns))
        .fold((back_to_back, 0), |a, b| if b.0 > a.0 { b } else { a });
    let mut cost = format!(
        "\nA span costs {} back to back (empty block)",
        format_ns(back_to_back)
    );
    if cold_at > 0 {
        cost += &format!(
            ", up to {} between blocks of {}",
            format_ns(cold),
            label(cold_at)
        );
    }
    println!("{cost}.");

    let largest = &rows[rows.len() - 1];
    for limit_pct in [1.0, 0.1] {
        // The smallest workload from which on every larger one is clearly below.
        let below_from = rows
            .iter()
            .rev()
            .take_while(|row| row.span_below(limit_pct) == Some(true))
            .last();
        match (below_from, largest.span_below(limit_pct)) {
            (Some(row), _) => println!(
                "spanlab's overhead is below {limit_pct}% of the work \
                 from ≈{} of work per span on.",
                label(row.target_ns)
            ),
            (None, Some(false)) => println!(
                "spanlab's overhead is not below {limit_pct}% of the work up to ≈{}.",
                label(largest.target_ns)
            ),
            (None, _) => println!(
                "Below {limit_pct}%: not resolved at ≈{}, where the noise \
                 (±{}, two standard errors) is more than {limit_pct}% of the work.",
                label(largest.target_ns),
                format_ns(2.0 * largest.span.error_ns),
            ),
        }
        if below_from.is_none() {
            println!(
                "  At {} per span, it is below {limit_pct}% from ≈{} of work on.",
                format_ns(cold),
                format_ns(cold * 100.0 / limit_pct)
            );
        }
    }
}

/// Runs nested spans and checks what they cost in resident memory.
fn memory_check(profile: &spanlab::Profile) {
    let Some(initial) = resident_bytes() else {
        println!("RSS is not available here (no /proc/self/status): memory check skipped.");
        return;
    };
    // The warm-up creates the paths and fills the allocator's and the layer's
    // per-thread tables, so that what follows measures the steady state.
    let warmup = nested_spans(WARMUP_SPANS);
    let before = resident_bytes().expect("RSS was readable a moment ago");

    let start = Instant::now();
    let spans = nested_spans(MEASURED_SPANS);
    let elapsed = start.elapsed();
    let after = resident_bytes().expect("RSS was readable a moment ago");

    let outer_paths: Vec<spanlab::PathStats> = profile
        .paths()
        .into_iter()
        .filter(|p| p.path[0] == "outer")
        .collect();
    let recorded: u64 = outer_paths.iter().map(|p| p.calls).sum();
    assert_eq!(
        recorded,
        warmup + spans,
        "spanlab did not record every span"
    );
    let inner = profile.get("outer > inner0").expect("recorded");

    let mb = |bytes: u64| bytes as f64 / 1e6;
    let growth = after.saturating_sub(before);
    let warmup_label = format!("after {} warm-up spans", thousands(warmup));
    let measured_label = format!("after {} more spans", thousands(spans));
    println!("{:<32} {:>6.1} MB", "RSS at start", mb(initial));
    println!("{warmup_label:<32} {:>6.1} MB", mb(before));
    println!(
        "{measured_label:<32} {:>6.1} MB   ({elapsed:.2?}, {:.0} ns per span)",
        mb(after),
        elapsed.as_nanos() as f64 / spans as f64
    );
    println!(
        "growth: {:+.2} MB (limit {} MB)",
        mb(growth),
        mb(RSS_GROWTH_LIMIT_BYTES)
    );
    println!(
        "spanlab recorded all {} spans in {} paths; outer > inner0: {} calls, p50 {}",
        thousands(recorded),
        outer_paths.len(),
        thousands(inner.calls),
        format_ns(inner.p50.as_nanos() as f64),
    );
    assert!(
        growth <= RSS_GROWTH_LIMIT_BYTES,
        "RSS grew by {:.2} MB over {spans} spans (limit {} MB)",
        mb(growth),
        mb(RSS_GROWTH_LIMIT_BYTES)
    );
}

/// Runs `outer` spans, each enclosing one span of each of ten child names, until at
/// least `at_least` spans have run; returns how many did.
fn nested_spans(at_least: u64) -> u64 {
    const PER_OUTER: u64 = 11;
    let outers = at_least.div_ceil(PER_OUTER);
    for _ in 0..outers {
        let _outer = tracing::info_span!("outer").entered();
        for child in 0..10 {
            let _inner = child_span(child).entered();
            black_box(child);
        }
    }
    outers * PER_OUTER
}

/// A span's name is part of its callsite's static metadata: ten names, ten callsites.
fn child_span(child: u32) -> tracing::Span {
    match child {
        0 => tracing::info_span!("inner0"),
        1 => tracing::info_span!("inner1"),
        2 => tracing::info_span!("inner2"),
        3 => tracing::info_span!("inner3"),
        4 => tracing::info_span!("inner4"),
        5 => tracing::info_span!("inner5"),
        6 => tracing::info_span!("inner6"),
        7 => tracing::info_span!("inner7"),
        8 => tracing::info_span!("inner8"),
        _ => tracing::info_span!("inner9"),
    }
}

/// A workload's nominal size: `0`, `100 ns`, `10 µs`, `1 ms`.
fn label(ns: u64) -> String {
    match ns {
        0 => "0".to_string(),
        1..=999 => format!("{ns} ns"),
        1_000..=999_999 => format!("{} µs", ns / 1_000),
        _ => format!("{} ms", ns / 1_000_000),
    }
}

/// Three significant digits: `2.00 ns`, `70.3 ns`, `187 ns`, `9.98 µs`, `1.01 ms`.
fn format_ns(ns: f64) -> String {
    let (value, unit) = match ns.abs() {
        n if n < 999.5 => (ns, "ns"),
        n if n < 999_500.0 => (ns / 1e3, "µs"),
        _ => (ns / 1e6, "ms"),
    };
    match value.abs() {
        v if v < 9.995 => format!("{value:.2} {unit}"),
        v if v < 99.95 => format!("{value:.1} {unit}"),
        _ => format!("{value:.0} {unit}"),
    }
}

/// Two or three significant digits: `157%`, `3.4%`, `0.39%`, `0.012%`.
fn format_pct(pct: f64) -> String {
    match pct.abs() {
        p if p >= 10.0 => format!("{pct:.0}%"),
        p if p >= 1.0 => format!("{pct:.1}%"),
        p if p >= 0.1 => format!("{pct:.2}%"),
        _ => format!("{pct:.3}%"),
    }
}
