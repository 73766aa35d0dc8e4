//! The text report: tree-ordered rows, right-aligned columns, human units.

use std::fmt::Write;
use std::time::Duration;

use super::{Report, RunInfo};
use crate::core::stats::{PathStats, QUANTILE_RELATIVE_ERROR};

pub(super) fn render(r: &Report) -> String {
    let mut out = String::new();
    render_summary(&mut out, r);
    render_paths(&mut out, &r.paths);
    crate::sinks::open::text::render(&mut out, &r.open_spans, human);
    render_gpu(&mut out, &r.gpu);
    render_prompts(&mut out, &r.prompts);
    render_seeds(&mut out, &r.seeds);
    if let Some(export) = &r.export {
        export.render(&mut out);
    }
    if let Some(metrics) = &r.metrics {
        metrics.render(&mut out);
    }
    render_never_entered(&mut out, r.spans_never_entered);
    render_warnings(&mut out, &r.warnings);
    out
}

/// The first line: whose report (a rank of a job), paths, calls and time elapsed; and
/// a note when nothing was recorded.
fn render_summary(out: &mut String, r: &Report) {
    let calls: u64 = r.paths.iter().map(|p| p.calls).sum();
    out.push_str("spanlab report");
    if let [run] = r.runs.as_slice() {
        render_rank(out, run);
    }
    render_snapshot(out, r);
    let _ = write!(
        out,
        ": {} paths, {} calls, {} elapsed",
        r.paths.len(),
        thousands(calls),
        human(r.elapsed)
    );
    // A merge: say how many runs it holds (elapsed is then the longest run's).
    match r.runs.len() {
        0 | 1 => out.push('\n'),
        n => {
            let _ = writeln!(out, " (longest of {n} runs merged)");
        }
    }
    if r.paths.is_empty() {
        out.push_str("(no spans were recorded)\n");
    }
}

/// ` (rank 3 of 8, node7)` for a process of a distributed job; nothing otherwise, so
/// that ranks' reports, printed side by side in a job's log, say whose they are.
fn render_rank(out: &mut String, run: &RunInfo) {
    let Some(rank) = run.rank else { return };
    let _ = write!(out, " (rank {rank}");
    if let Some(world) = run.world_size {
        let _ = write!(out, " of {world}");
    }
    if let Some(host) = &run.host {
        let _ = write!(out, ", {host}");
    }
    out.push(')');
}

/// ` [snapshot 3, not final]` in a periodic snapshot, so that a text file read during
/// the run says it will still change; nothing in the final report.
fn render_snapshot(out: &mut String, r: &Report) {
    if !r.is_final && r.sequence > 0 {
        let _ = write!(out, " [snapshot {}, not final]", r.sequence);
    }
}

/// The main table, one row per path, and the line that says how to read it.
fn render_paths(out: &mut String, paths: &[PathStats]) {
    if paths.is_empty() {
        return;
    }
    // Only async spans have idle time (awaiting): no column when no path has any.
    let show_idle = paths.iter().any(|p| !p.idle.is_zero());
    let rows = paths.iter().map(|p| path_row(p, show_idle)).collect();
    table(out, &path_header(show_idle), rows, &[0]);
    let _ = writeln!(
        out,
        "(total, self and idle: sums over calls; self = time entered minus time in child spans; \
         mean to max: per call, quantiles within {:.1}%)",
        QUANTILE_RELATIVE_ERROR * 100.0
    );
}

fn path_header(show_idle: bool) -> Vec<&'static str> {
    // Sums over calls first (total, self), then per-call figures.
    let mut header: Vec<&str> = vec![
        "path", "calls", "total", "self", "mean", "std", "min", "p50", "p95", "p99", "max",
    ];
    if show_idle {
        header.push("idle");
    }
    header.extend(["err", "panic"]);
    header
}

fn path_row(p: &PathStats, show_idle: bool) -> Vec<String> {
    let mut cells = vec![p.path_string(), thousands(p.calls)];
    cells.extend(
        [
            p.total,
            p.self_time,
            p.mean,
            p.std,
            p.min,
            p.p50,
            p.p95,
            p.p99,
            p.max,
        ]
        .map(human),
    );
    if show_idle {
        cells.push(human(p.idle));
    }
    cells.push(p.errors.to_string());
    cells.push(p.panics.to_string());
    cells
}

fn render_never_entered(out: &mut String, spans_never_entered: u64) {
    if spans_never_entered > 0 {
        let _ = writeln!(
            out,
            "{spans_never_entered} spans were closed without being entered (not timed)"
        );
    }
}

fn render_warnings(out: &mut String, warnings: &[String]) {
    for w in warnings {
        let _ = writeln!(out, "warning: {w}");
    }
}

/// The GPU section, when any span was measured: one row per path and device.
fn render_gpu(out: &mut String, gpu: &crate::riders::gpu::GpuReport) {
    if gpu.paths.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "gpu memory ({}):",
        gpu.probe.as_deref().unwrap_or("no probe")
    );
    let header = [
        "path",
        "device",
        "calls",
        "mean delta",
        "max delta",
        "max peak",
        "reserved",
        "device used",
        "energy",
    ];
    let rows: Vec<[String; 9]> = gpu
        .paths
        .iter()
        .map(|p| {
            [
                p.path.join(" > "),
                p.device.to_string(),
                thousands(p.calls),
                signed_bytes(p.mean_delta_bytes),
                signed_bytes(p.max_delta_bytes as f64),
                bytes(p.max_peak_bytes as f64),
                p.max_reserved_bytes.map_or("-".into(), |b| bytes(b as f64)),
                p.device_used_bytes.map_or("-".into(), |b| bytes(b as f64)),
                energy(p),
            ]
        })
        .collect();
    table(
        out,
        &header,
        rows.into_iter().map(Vec::from).collect(),
        &[0],
    );
}

/// The energy cell: joules, average watts when known, and how many calls were too
/// short for the counter.
fn energy(p: &crate::riders::gpu::GpuPath) -> String {
    let watts = p
        .average_watts
        .filter(|w| *w > 0.0)
        .map_or(String::new(), |w| format!(", {w:.0} W"));
    if p.below_resolution > 0 {
        format!(
            "{:.2} J{watts} ({} below resolution)",
            p.energy_joules, p.below_resolution
        )
    } else if p.energy_joules > 0.0 {
        format!("{:.2} J{watts}", p.energy_joules)
    } else {
        "-".to_string()
    }
}

/// Writes aligned columns, two spaces apart: `left` columns left-aligned, the others
/// right-aligned; no trailing spaces.
fn table(out: &mut String, header: &[&str], rows: Vec<Vec<String>>, left: &[usize]) {
    let widths: Vec<usize> = (0..header.len())
        .map(|c| {
            rows.iter()
                .map(|r| r[c].chars().count())
                .max()
                .unwrap_or(0)
                .max(header[c].chars().count())
        })
        .collect();
    let header = vec![header.iter().map(|h| h.to_string()).collect::<Vec<_>>()];
    for row in header.into_iter().chain(rows) {
        let mut line = String::new();
        for (c, (cell, w)) in row.iter().zip(&widths).enumerate() {
            let sep = if c == 0 { "" } else { "  " };
            if left.contains(&c) {
                let _ = write!(line, "{sep}{cell:<w$}");
            } else {
                let _ = write!(line, "{sep}{cell:>w$}");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
}

/// The prompts section: per model, then the last few records, shortened.
fn render_prompts(out: &mut String, prompts: &crate::riders::llm::PromptReport) {
    if prompts.models.is_empty() {
        return;
    }
    let _ = writeln!(out, "prompts:");
    let header = [
        "model",
        "provider",
        "calls",
        "tokens in",
        "tokens out",
        "latency mean",
        "latency p95",
    ];
    let latency = |d: Option<Duration>| d.map_or("-".into(), human);
    let rows = prompts
        .models
        .iter()
        .map(|m| {
            vec![
                m.model.clone(),
                m.provider.clone().unwrap_or_else(|| "-".into()),
                thousands(m.calls),
                thousands(m.input_tokens),
                thousands(m.output_tokens),
                latency(m.latency_mean),
                latency(m.latency_p95),
            ]
        })
        .collect();
    table(out, &header, rows, &[0, 1]);
    let _ = writeln!(out, "last {} records:", prompts.recent.len());
    for record in &prompts.recent {
        let line = record.to_string();
        let shown: String = line.chars().take(100).collect();
        let more = if shown.len() < line.len() { "…" } else { "" };
        let _ = writeln!(out, "  {shown}{more}");
    }
}

/// Bytes in binary units with three significant digits: `512 B`, `1.50 KiB`, `256 MiB`.
pub(crate) fn bytes(b: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = b.abs();
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        return format!("{value:.0} B");
    }
    let decimals = if value < 9.995 {
        2
    } else if value < 99.95 {
        1
    } else {
        0
    };
    format!("{value:.decimals$} {}", UNITS[unit])
}

/// [`bytes`] with a sign: `+256 MiB`, `-1.00 KiB`, `0 B`.
fn signed_bytes(b: f64) -> String {
    match b {
        b if b > 0.0 => format!("+{}", bytes(b)),
        b if b < 0.0 => format!("-{}", bytes(b)),
        _ => "0 B".into(),
    }
}

/// The seeds section: the root seed and its replay line, then one row per seeded path.
fn render_seeds(out: &mut String, seeds: &crate::riders::rng::SeedReport) {
    use crate::riders::rng::SeedSource;
    let source = match seeds.root.source {
        SeedSource::Env => "from SPANLAB_SEED",
        SeedSource::Builder => "from the builder",
        SeedSource::Os => "from the OS",
    };
    let _ = writeln!(
        out,
        "seeds: root {} ({source}); replay: {}",
        seeds.root.value, seeds.replay
    );
    if seeds.paths.is_empty() {
        return;
    }
    let rows: Vec<[String; 5]> = seeds
        .paths
        .iter()
        .map(|p| {
            [
                p.path.join(" > "),
                thousands(p.calls),
                thousands(p.draws),
                format!("{:016x}", p.digest),
                seeds_cell(p),
            ]
        })
        .collect();
    let header = ["seeded path", "calls", "draws", "digest", "seeds"];
    table(
        out,
        &header,
        rows.into_iter().map(Vec::from).collect(),
        &[0, 3, 4],
    );
}

/// The first few seeds of a path, with their calls: `1 (x4), 2 (x6)`. When some seeds
/// were not kept, how many distinct there were and their range:
/// `0, 1, 2, 3, … (≈1,000,000 distinct, 0..999999)` (`≈`: an estimate).
fn seeds_cell(p: &crate::riders::rng::SeededPath) -> String {
    const SHOWN: usize = 4;
    let mut list: Vec<String> = p
        .seeds
        .iter()
        .take(SHOWN)
        .map(|&(seed, calls)| {
            if calls == 1 {
                seed.to_string()
            } else {
                format!("{seed} (x{calls})")
            }
        })
        .collect();
    if p.other_seed_calls == 0 {
        if p.seeds.len() > SHOWN {
            list.push(format!("... {} distinct", p.seeds.len()));
        }
        return list.join(", ");
    }
    let distinct = if p.distinct_exact {
        thousands(p.distinct_seeds)
    } else {
        format!("≈{}", thousands(three_significant(p.distinct_seeds)))
    };
    let range = p
        .seed_range
        .map_or_else(String::new, |(min, max)| format!(", {min}..{max}"));
    list.push(format!("… ({distinct} distinct{range})"));
    list.join(", ")
}

/// `n` rounded to three significant digits (an estimate's digits beyond are noise):
/// `1234567` → `1230000`.
fn three_significant(n: u64) -> u64 {
    let mut unit = 1u64;
    while n / unit >= 1_000 {
        unit *= 10;
    }
    // Half up. The largest values round down (u64::MAX to 184·10^17), so no product
    // passes u64::MAX; saturating keeps that from being a panic path all the same.
    (n / unit + u64::from(unit > 1 && n % unit >= unit / 2)).saturating_mul(unit)
}

/// A duration with three significant digits and a unit: `812 ns`, `12.3 µs`, `4.56 ms`,
/// `1.23 s`, `2m05s`, `1h02m`.
pub(crate) fn human(d: Duration) -> String {
    let ns = d.as_nanos();
    let secs = d.as_secs();
    if ns < 1_000 {
        return format!("{ns} ns");
    }
    if secs >= 3600 {
        return format!("{}h{:02}m", secs / 3600, secs % 3600 / 60);
    }
    if secs >= 60 {
        return format!("{}m{:02}s", secs / 60, secs % 60);
    }
    let (value, unit) = match ns {
        n if n < 1_000_000 => (n as f64 / 1e3, "µs"),
        n if n < 1_000_000_000 => (n as f64 / 1e6, "ms"),
        n => (n as f64 / 1e9, "s"),
    };
    let decimals = if value < 9.995 {
        2
    } else if value < 99.95 {
        1
    } else {
        0
    };
    format!("{value:.decimals$} {unit}")
}

/// `1234567` → `1,234,567`.
pub(super) fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_units() {
        let cases = [
            (0, "0 ns"),
            (812, "812 ns"),
            (12_345, "12.3 µs"),
            (4_561_000, "4.56 ms"),
            (999_999_999, "1000 ms"),
            (1_234_000_000, "1.23 s"),
            (125_000_000_000, "2m05s"),
            (3_725_000_000_000, "1h02m"),
        ];
        for (ns, want) in cases {
            assert_eq!(human(Duration::from_nanos(ns)), want, "{ns} ns");
        }
    }

    #[test]
    fn byte_units() {
        assert_eq!(bytes(512.0), "512 B");
        assert_eq!(bytes(1536.0), "1.50 KiB");
        assert_eq!(bytes((256u64 << 20) as f64), "256 MiB");
        assert_eq!(signed_bytes((256u64 << 20) as f64), "+256 MiB");
        assert_eq!(signed_bytes(-1024.0), "-1.00 KiB");
        assert_eq!(signed_bytes(0.0), "0 B");
    }

    #[test]
    fn thousands_separators() {
        assert_eq!(thousands(0), "0");
        assert_eq!(thousands(999), "999");
        assert_eq!(thousands(1000), "1,000");
        assert_eq!(thousands(1_234_567), "1,234,567");
    }

    #[test]
    fn seeds_are_listed_while_all_kept_and_summarized_beyond() {
        let mut report = crate::sinks::report::tests::sample_report();
        let p = &mut report.seeds.paths[0];
        assert_eq!(seeds_cell(p), "1 (x4), 2 (x6)");
        p.seeds = (0..64).map(|s| (s, 1)).collect();
        p.distinct_seeds = 64;
        assert_eq!(seeds_cell(p), "0, 1, 2, 3, ... 64 distinct");
        (p.distinct_seeds, p.distinct_exact) = (1_003_217, false);
        (p.seed_range, p.other_seed_calls) = (Some((0, 999_999)), 999_936);
        assert_eq!(
            seeds_cell(p),
            "0, 1, 2, 3, … (≈1,000,000 distinct, 0..999999)"
        );
        (p.distinct_seeds, p.distinct_exact, p.other_seed_calls) = (65, true, 1);
        assert_eq!(seeds_cell(p), "0, 1, 2, 3, … (65 distinct, 0..999999)");
    }

    #[test]
    fn estimates_keep_three_significant_digits() {
        for (n, want) in [
            (0, 0),
            (999, 999),
            (1_004, 1_000),
            (1_005, 1_010),
            (1_003_217, 1_000_000),
            (u64::MAX, 18_400_000_000_000_000_000),
        ] {
            assert_eq!(three_significant(n), want, "{n}");
        }
    }

    #[test]
    fn the_first_line_names_the_rank_of_a_distributed_run() {
        let mut report = crate::sinks::report::tests::sample_report();
        let mut run = report.runs[0].clone();
        (run.rank, run.world_size, run.host) = (Some(3), Some(8), Some("node7".into()));
        report.runs = vec![run.clone()];
        let text = report.to_text();
        assert!(
            text.starts_with("spanlab report (rank 3 of 8, node7): 3 paths, 170 calls"),
            "{text}"
        );
        // Without a launcher, no rank; a merge of runs says how many it holds instead.
        run.rank = None;
        report.runs = vec![run.clone()];
        assert!(report.to_text().starts_with("spanlab report: 3 paths"));
        report.runs = vec![run.clone(), run];
        let text = report.to_text();
        assert!(
            text.lines()
                .next()
                .unwrap()
                .ends_with("(longest of 2 runs merged)"),
            "{text}"
        );
    }

    #[test]
    fn a_snapshots_first_line_says_it_is_not_final() {
        let mut report = crate::sinks::report::tests::sample_report();
        report.sequence = 3;
        let text = report.to_text();
        assert!(
            text.starts_with("spanlab report [snapshot 3, not final]: 3 paths"),
            "{text}"
        );
        let mut run = report.runs[0].clone();
        (run.rank, run.world_size, run.host) = (Some(1), Some(2), None);
        report.runs = vec![run];
        assert!(report
            .to_text()
            .starts_with("spanlab report (rank 1 of 2) [snapshot 3, not final]: 3 paths"));
        // The final write, and a report made during the run, look as they always did.
        report.is_final = true;
        assert!(report
            .to_text()
            .starts_with("spanlab report (rank 1 of 2): 3"));
        (report.is_final, report.sequence) = (false, 0);
        assert!(report
            .to_text()
            .starts_with("spanlab report (rank 1 of 2): 3"));
    }

    #[test]
    fn columns_align_and_rows_follow_tree_order() {
        let text = crate::sinks::report::tests::sample_report().to_text();
        let lines: Vec<&str> = text.lines().collect();
        assert!(
            lines[0].starts_with("spanlab report: 3 paths, 170 calls, 1.50 s elapsed"),
            "{text}"
        );
        assert!(lines[1].starts_with("path "));
        assert!(lines[2].starts_with("epoch "));
        assert!(lines[3].starts_with("epoch > forward;odd "));
        assert!(lines[4].starts_with("epoch > backward "));
        // Every row is as wide as the header: the columns line up.
        let width = lines[1].chars().count();
        assert!(
            lines[2..5].iter().all(|l| l.chars().count() == width),
            "{text}"
        );
        assert!(text.contains("2 spans were closed without being entered"));
        assert!(
            text.contains("seeds: root 7 (from SPANLAB_SEED); replay: SPANLAB_SEED=7 ./train"),
            "{text}"
        );
        assert!(
            text.contains("epoch > shuffle     10  1,280  00000000deadbeef  1 (x4), 2 (x6)"),
            "{text}"
        );
    }
}
