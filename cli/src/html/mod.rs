//! `spanlab html`: one self-contained page of a report, made to work offline.
//!
//! Everything is inside the file — styles, script, data, the flame graph — and nothing
//! refers to the network, so the page opens the same on a laptop, on a cluster's login
//! node, or attached to a CI run years later. It holds:
//!
//! * the tree table of paths (indented by depth), sortable by any column with a click
//!   (a click on "path" brings the tree order back), each path's share of the measured
//!   time as a bar;
//! * the latency histogram of the selected path (a click on a row), drawn from the
//!   report's buckets, coarsened to at most [`HISTOGRAM_BINS`] bins on a log scale;
//! * the flame graph, inline SVG from `inferno` (without its script, which expects to
//!   be the whole document);
//! * the runs, and for a merged report the per-input spread (`spanlab merge --json`'s
//!   `spread`, or the spread of the reports given together);
//! * the GPU, seeds, prompts and export sections and the warnings, as the JSON report
//!   has them.
//!
//! The data travels as one JSON block the script reads; every `<` in it is escaped as
//! `\u003c`, so no span name can end the block or inject markup, and every name the
//! page writes as HTML goes through [`escape`].

use std::fmt::Write;

use serde_json::{json, Value};
use spanlab::report::{human_duration, thousands};
use spanlab::Report;

use crate::flame::{self, FlameOptions};
use crate::Failure;

/// The most bins a path's latency histogram is drawn with.
pub const HISTOGRAM_BINS: usize = 32;

const CSS: &str = include_str!("page.css");
const JS: &str = include_str!("page.js");

/// What the page shows besides the report.
#[derive(Clone, Debug, Default)]
pub struct PageOptions {
    /// The page title (the input's file name, usually).
    pub title: String,
    /// The spread over merged inputs, as `spanlab merge --json` writes it.
    pub spread: Option<Value>,
    /// A note shown at the top (a snapshot that is not the final report).
    pub note: Option<String>,
}

/// The page of `report`.
pub fn page(report: &Report, options: &PageOptions) -> Result<String, Failure> {
    let mut out = String::with_capacity(256 * report.paths.len() + 64 * 1024);
    let title = escape(&options.title);
    let calls: u64 = report.paths.iter().map(|p| p.calls).sum();
    let _ = write!(
        out,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width\">\
         <title>spanlab: {title}</title>\
         <script>window.__spanlabErrors=[];window.addEventListener('error',function(e){{\
         window.__spanlabErrors.push(String(e.message));}});</script>\
         <style>{CSS}</style></head><body>\
         <h1>spanlab report: {title}</h1><div class=\"summary\">{} paths, {} calls, {} elapsed, \
         {} measured{}</div>",
        thousands(report.paths.len() as u64),
        thousands(calls),
        human_duration(report.elapsed),
        human_duration(report.measured_time()),
        match report.runs.len() {
            0 | 1 => String::new(),
            n => format!(", {n} runs merged"),
        }
    );
    if let Some(note) = &options.note {
        let _ = write!(out, "<p class=\"note\">{}</p>", escape(note));
    }
    paths_table(&mut out);
    let _ = write!(out, "<div id=\"histogram\"></div>");
    let svg = flame::report_svg(
        report,
        &FlameOptions {
            no_javascript: true,
            ..FlameOptions::default()
        },
    )?;
    let _ = write!(
        out,
        "<h2>Flame graph (self time)</h2><div class=\"flame\">{}</div>",
        inline_svg(&svg)
    );
    if let Some(spread) = &options.spread {
        spread_section(&mut out, spread);
    }
    let json: Value = serde_json::from_str(&report.to_json())
        .map_err(|e| Failure::input(format!("cannot render the report: {e}")))?;
    runs_section(&mut out, &json["runs"]);
    generic_section(
        &mut out,
        "GPU memory",
        &json["gpu"]["paths"],
        &[
            "path",
            "device",
            "calls",
            "mean_delta_bytes",
            "max_delta_bytes",
            "max_peak_bytes",
            "max_reserved_bytes",
            "device_used_bytes",
            "energy_joules",
            "average_watts",
        ],
    );
    seeds_section(&mut out, &json["seeds"]);
    generic_section(
        &mut out,
        "Prompts: models",
        &json["prompts"]["models"],
        &[
            "model",
            "provider",
            "calls",
            "input_tokens",
            "output_tokens",
            "latency_mean_ns",
            "latency_p95_ns",
        ],
    );
    generic_section(
        &mut out,
        "Prompts: recent records",
        &json["prompts"]["recent"],
        &[
            "model",
            "span_path",
            "input_tokens",
            "output_tokens",
            "latency_ns",
            "response",
        ],
    );
    export_section(&mut out, &json["export"]);
    if let Some(warnings) = json["warnings"].as_array().filter(|w| !w.is_empty()) {
        out.push_str("<h2>Warnings</h2><ul>");
        for w in warnings {
            let _ = write!(out, "<li>{}</li>", escape(w.as_str().unwrap_or_default()));
        }
        out.push_str("</ul>");
    }
    let data = json!({ "measured_ns": report.measured_time().as_nanos() as u64, "paths": rows(report), "histograms": histograms(report) });
    let data = data.to_string().replace('<', "\\u003c");
    let _ = writeln!(
        out,
        "<script type=\"application/json\" id=\"spanlab-data\">{data}</script><script>{JS}</script></body></html>"
    );
    Ok(out)
}

fn paths_table(out: &mut String) {
    let columns = [
        ("path", "path"),
        ("calls", "calls"),
        ("total", "total"),
        ("share", "share"),
        ("self", "self"),
        ("mean", "mean"),
        ("std", "std"),
        ("min", "min"),
        ("p50", "p50"),
        ("p95", "p95"),
        ("p99", "p99"),
        ("max", "max"),
        ("errors", "err"),
        ("panics", "panic"),
    ];
    out.push_str(
        "<h2>Paths</h2><p class=\"muted\">Click a column to sort (again to reverse; \
                  \"path\" for tree order), a row for its latency histogram.</p>\
                  <table id=\"paths\"><thead><tr>",
    );
    for (key, label) in columns {
        let _ = write!(out, "<th data-key=\"{key}\">{label}</th>");
    }
    out.push_str("</tr></thead><tbody></tbody></table>");
}

/// One array per path, in the order page.js's `F` names the fields.
fn rows(report: &Report) -> Vec<Value> {
    report
        .paths
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let ns = |d: std::time::Duration| d.as_nanos() as u64;
            json!([
                p.path_string(),
                p.depth(),
                p.calls,
                ns(p.total),
                ns(p.self_time),
                ns(p.mean),
                ns(p.std),
                ns(p.min),
                ns(p.p50),
                ns(p.p95),
                ns(p.p99),
                ns(p.max),
                p.errors,
                p.panics,
                i
            ])
        })
        .collect()
}

/// Per path, `[low, high, count]` bins (ns, both ends included): the report's buckets
/// on a grid of [`HISTOGRAM_BINS`] bins of equal width on a log scale.
fn histograms(report: &Report) -> Vec<Value> {
    report
        .paths
        .iter()
        .map(|p| json!(coarsen(&p.sums.wall.histogram)))
        .collect()
}

/// The buckets of `h` on a log grid of [`HISTOGRAM_BINS`] bins from its smallest to its
/// largest value: the non-empty bins as `[low, high, count]`, increasing, disjoint,
/// every value counted once. A bucket goes whole to the bin its lower bound is in
/// (a bin reaches as far as its last bucket, so bins never overlap).
pub fn coarsen(h: &spanlab::stats::Histogram) -> Vec<[u64; 3]> {
    let buckets: Vec<(u64, u64, u64)> = h
        .buckets()
        .map(|(r, c)| (*r.start(), *r.end(), c))
        .collect();
    let (Some(&first), Some(&last)) = (buckets.first(), buckets.last()) else {
        return Vec::new();
    };
    // The grid's edges, as integers so that assigning a bucket is exact.
    let (lo, hi) = (
        (first.0.max(1) as f64).ln(),
        (last.1.max(1) as f64 + 1.0).ln(),
    );
    let width = (hi - lo) / HISTOGRAM_BINS as f64;
    let edges: Vec<u64> = (0..=HISTOGRAM_BINS)
        .map(|b| (lo + width * b as f64).exp().ceil() as u64)
        .collect();
    let mut bins: Vec<[u64; 3]> = Vec::new();
    let (mut bin, mut current) = (0usize, None::<usize>);
    for (l, h, c) in buckets {
        while bin + 1 < HISTOGRAM_BINS && edges[bin + 1] <= l {
            bin += 1;
        }
        match bins.last_mut() {
            Some(last) if current == Some(bin) => {
                last[1] = last[1].max(h);
                last[2] = last[2].saturating_add(c);
            }
            previous => {
                let after = previous.map_or(0, |p| p[1] + 1);
                let start = edges[bin].max(after).min(l).max(first.0);
                let end = if bin + 1 < HISTOGRAM_BINS {
                    (edges[bin + 1].saturating_sub(1)).max(h)
                } else {
                    h
                };
                bins.push([start, end.min(last.1), c]);
            }
        }
        current = Some(bin);
    }
    bins
}

/// An inferno SVG made fit to sit inside a page: no XML declaration or doctype, and
/// no `onload` handler calling the script that was left out.
fn inline_svg(svg: &str) -> String {
    let start = svg.find("<svg").unwrap_or(0);
    svg[start..].replacen(" onload=\"init(evt)\"", "", 1)
}

fn spread_section(out: &mut String, spread: &Value) {
    let (Some(inputs), Some(paths)) = (spread["inputs"].as_array(), spread["paths"].as_array())
    else {
        return;
    };
    let names: Vec<String> = inputs
        .iter()
        .map(|i| i["name"].as_str().unwrap_or("?").to_string())
        .collect();
    let _ = write!(out, "<h2>Spread over {} inputs</h2><p class=\"muted\">Per path: the min, median and max \
                         over the inputs of their totals and means, and the input with the largest total.</p>\
                         <table><thead><tr><th>path</th><th>inputs</th><th>total min</th><th>median</th>\
                         <th>max</th><th>mean min</th><th>median</th><th>max</th><th>largest total</th></tr></thead><tbody>",
                   names.len());
    let ns = |v: &Value| {
        human_duration(std::time::Duration::from_nanos(
            v.as_f64().unwrap_or(0.0).round() as u64,
        ))
    };
    for p in paths {
        let path: Vec<&str> = p["path"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let largest = p["largest_total"]
            .as_u64()
            .and_then(|i| names.get(i as usize))
            .cloned()
            .unwrap_or_default();
        let _ = write!(
            out,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&path.join(" > ")), p["inputs"], ns(&p["total_ns"]["min"]), ns(&p["total_ns"]["median"]),
            ns(&p["total_ns"]["max"]), ns(&p["mean_ns"]["min"]), ns(&p["mean_ns"]["median"]), ns(&p["mean_ns"]["max"]),
            escape(&largest)
        );
    }
    out.push_str("</tbody></table>");
}

fn runs_section(out: &mut String, runs: &Value) {
    generic_section(
        out,
        "Runs",
        runs,
        &[
            "rank",
            "world_size",
            "host",
            "pid",
            "command_line",
            "spanlab_version",
        ],
    );
}

fn seeds_section(out: &mut String, seeds: &Value) {
    let _ = write!(
        out,
        "<h2>Seeds</h2><p>root {} (from {}); replay: <code>{}</code></p>",
        seeds["root"],
        escape(seeds["source"].as_str().unwrap_or("?")),
        escape(seeds["replay"].as_str().unwrap_or(""))
    );
    generic_table(
        out,
        &seeds["paths"],
        &[
            "path",
            "calls",
            "draws",
            "digest",
            "distinct_seeds",
            "seed_range",
            "other_seed_calls",
        ],
    );
}

fn export_section(out: &mut String, export: &Value) {
    out.push_str("<h2>Export</h2>");
    let Some(map) = export.as_object() else {
        out.push_str("<p class=\"muted\">OTLP export was off.</p>");
        return;
    };
    out.push_str("<table class=\"generic\"><tbody>");
    for (k, v) in map {
        let _ = write!(out, "<tr><th>{}</th><td>{}</td></tr>", escape(k), cell(v));
    }
    out.push_str("</tbody></table>");
}

/// A section with a table of `items`' `columns`, or a line saying it is empty.
fn generic_section(out: &mut String, title: &str, items: &Value, columns: &[&str]) {
    let _ = write!(out, "<h2>{}</h2>", escape(title));
    generic_table(out, items, columns);
}

fn generic_table(out: &mut String, items: &Value, columns: &[&str]) {
    let Some(items) = items.as_array().filter(|a| !a.is_empty()) else {
        out.push_str("<p class=\"muted\">none</p>");
        return;
    };
    out.push_str("<table class=\"generic\"><thead><tr>");
    for c in columns {
        let _ = write!(out, "<th>{}</th>", escape(c));
    }
    out.push_str("</tr></thead><tbody>");
    for item in items {
        out.push_str("<tr>");
        for c in columns {
            let _ = write!(out, "<td>{}</td>", cell(&item[*c]));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
}

/// A JSON value as a table cell: a path as `a > b`, strings as they are, the rest as
/// JSON; long values shortened.
fn cell(v: &Value) -> String {
    let text = match v {
        Value::Null => "-".to_string(),
        Value::String(s) => s.clone(),
        Value::Array(a) if a.iter().all(Value::is_string) => a
            .iter()
            .filter_map(Value::as_str)
            .collect::<Vec<_>>()
            .join(" > "),
        other => other.to_string(),
    };
    let mut short: String = text.chars().take(160).collect();
    if short.len() < text.len() {
        short.push('…');
    }
    escape(&short)
}

/// `text` safe inside HTML text and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synthetic::{around, Synthetic};

    #[test]
    fn the_page_is_self_contained_and_escapes_names() {
        let json = Synthetic::new()
            .path("epoch", around(1_000_000, 0.5, 500))
            .path("epoch > </script><b>x", vec![10; 3])
            .to_json();
        let report = Report::from_json(&json).unwrap();
        let page = page(
            &report,
            &PageOptions {
                title: "run.json".into(),
                ..PageOptions::default()
            },
        )
        .unwrap();
        assert!(
            !page.contains("</script><b>"),
            "a span name ended a script block"
        );
        for tag in ["src=", "<link", "@import", "href="] {
            assert!(!page.contains(tag), "the page loads something: {tag}");
        }
        // Only references inside the page (the flame graph's gradient).
        assert!(page
            .match_indices("url(")
            .all(|(i, _)| page[i..].starts_with("url(#")));
        assert!(page.contains("<svg") && !page.contains("init(evt)"));
        assert_eq!(page.matches("<!DOCTYPE").count(), 1);
    }

    #[test]
    fn histograms_coarsen_to_a_bounded_number_of_bins_keeping_every_call() {
        let cases: Vec<Vec<u64>> = vec![
            (1..5000u64).map(|i| i * 997).collect(),
            vec![1_000, 1_010, 5_000_000],
            vec![7; 10],
            (0..300u64).collect(),
        ];
        for values in cases {
            let n = values.len() as u64;
            let json = Synthetic::new().path("p", values).to_json();
            let report = Report::from_json(&json).unwrap();
            let bins = coarsen(&report.paths[0].sums.wall.histogram);
            assert!(!bins.is_empty() && bins.len() <= HISTOGRAM_BINS, "{bins:?}");
            assert_eq!(bins.iter().map(|b| b[2]).sum::<u64>(), n);
            assert!(bins.iter().all(|b| b[0] <= b[1]), "{bins:?}");
            assert!(
                bins.windows(2).all(|w| w[0][1] < w[1][0]),
                "bins overlap: {bins:?}"
            );
            let (min, max) = (
                report.paths[0].sums.wall.min_ns,
                report.paths[0].sums.wall.max_ns,
            );
            // The bins cover the buckets of min and max, no further than their bounds.
            assert!(
                bins[0][0] <= min && bins[bins.len() - 1][1] >= max,
                "{bins:?}"
            );
        }
        // Many buckets: binned, so fewer bins than buckets.
        let json = Synthetic::new()
            .path("p", (1..5000u64).map(|i| i * 997).collect())
            .to_json();
        let report = Report::from_json(&json).unwrap();
        assert!(coarsen(&report.paths[0].sums.wall.histogram).len() > 10);
    }
}
