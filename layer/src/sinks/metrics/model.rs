//! The metrics model: a report's aggregates, turned into named series.
//!
//! A [`Snapshot`] is what every exporter renders (Prometheus text, OTLP protobuf). It
//! is made on a metrics thread from a [`Report`] — the exact per-path sums, the GPU
//! section and the prompt book's per-model sums — never from the span callbacks. All
//! series are cumulative since the start of the run, so two snapshots of one run only
//! ever grow (counters, histogram counts) or move (gauges).
//!
//! | metric (OTLP) | Prometheus | kind | attributes |
//! |---|---|---|---|
//! | `spanlab.span.duration` (s) | `spanlab_span_duration_seconds` | histogram, explicit bounds ([`buckets`](super::buckets)) | `spanlab.path`, `span.name` |
//! | `spanlab.span.calls` | `spanlab_span_calls_total` | counter | same |
//! | `spanlab.span.errors` | `spanlab_span_errors_total` | counter | same |
//! | `spanlab.span.panics` | `spanlab_span_panics_total` | counter | same |
//! | `spanlab.span.self_time` (s) | `spanlab_span_self_time_seconds_total` | counter | same |
//! | `spanlab.gpu.memory.used` (By) | `spanlab_gpu_memory_used_bytes` | gauge | same + `gpu.device` |
//! | `spanlab.gpu.memory.peak` (By) | `spanlab_gpu_memory_peak_bytes` | gauge | same + `gpu.device` |
//! | `spanlab.gpu.energy` (J) | `spanlab_gpu_energy_joules_total` | counter | same + `gpu.device` |
//! | `gen_ai.client.token.usage` ({token}) | `gen_ai_client_token_usage` | histogram, explicit bounds in tokens ([`buckets`](super::buckets#tokens)) | `gen_ai.request.model`, `gen_ai.token.type` |
//! | `gen_ai.client.operation.duration` (s) | `gen_ai_client_operation_duration_seconds` | histogram, explicit bounds | `gen_ai.request.model` |
//!
//! The duration histograms count every call, whatever the trace sampler decided: they
//! come from the profile, which sees every span. The token histogram counts the calls
//! that gave token counts, from the prompt book's exact per-model histograms of tokens
//! per call: its bucket counts are exact counts of calls with at most `le` tokens, and
//! its sum is the model's `input_tokens` or `output_tokens`. (A report merged with one
//! written before spanlab kept token histograms has none; such a model's point is a
//! count of calls and a sum, without buckets.)
//!
//! # Cardinality
//!
//! At most `max_paths` paths get series of their own ([`PathCap`]): the first ones
//! seen, which keep them for the rest of the run (a cumulative series must not change
//! what it counts). Every later path is folded into one `spanlab.path="(other)"`
//! series (`span.name="(other)"`), and a warning says so once. The metrics side keeps
//! the admitted paths' names and nothing per folded path, so its memory is bounded by
//! the cap.

use std::collections::HashSet;

use crate::core::stats::{DurationSums, Histogram, PathStats, PathSums};
use crate::sinks::report::Report;

use super::buckets;

/// The path of the series every path beyond the cap is folded into.
pub(crate) const OTHER: &str = "(other)";

/// The kinds of series.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Monotonic, cumulative.
    Counter,
    /// A current value.
    Gauge,
    /// Cumulative bucket counts, count and sum.
    Histogram,
}

/// One metric: its names, what it measures and its points (one per attribute set).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Family {
    /// The OpenTelemetry name (`spanlab.span.duration`).
    pub(crate) name: &'static str,
    /// The Prometheus name, with its unit and `_total` suffix where they belong.
    pub(crate) prometheus: &'static str,
    /// One sentence for `# HELP` and the OTLP description.
    pub(crate) help: &'static str,
    /// The UCUM unit (`s`, `By`, `J`, `{call}`).
    pub(crate) unit: &'static str,
    pub(crate) kind: Kind,
    pub(crate) points: Vec<Point>,
}

/// One series' value and attributes.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct Point {
    /// OpenTelemetry attribute keys (Prometheus renames them) and values.
    pub(crate) attributes: Vec<(&'static str, String)>,
    pub(crate) value: Value,
}

/// A point's value.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Value {
    Int(u64),
    Float(f64),
    Histogram(HistogramPoint),
}

/// A histogram point: `counts` has one entry per bound plus the overflow bucket (none
/// at all when `bounds` is empty: a count and a sum only).
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct HistogramPoint {
    pub(crate) count: u64,
    pub(crate) sum: f64,
    pub(crate) min: Option<f64>,
    pub(crate) max: Option<f64>,
    pub(crate) bounds: &'static [f64],
    /// Per bucket, not cumulative.
    pub(crate) counts: Vec<u64>,
}

impl HistogramPoint {
    /// Tokens per call from a model's token histogram and the sum of its values, on
    /// the token bounds; without one, the model's calls and the sum, no buckets.
    fn of_tokens(histogram: Option<&Histogram>, calls: u64, sum: u64) -> HistogramPoint {
        let (count, bounds, counts) = match histogram {
            Some(h) => (
                h.count(),
                buckets::token_bounds_exported(),
                buckets::rebucket_tokens(h),
            ),
            None => (calls, &[][..], Vec::new()),
        };
        HistogramPoint {
            count,
            sum: sum as f64,
            min: None,
            max: None,
            bounds,
            counts,
        }
    }

    /// Durations in seconds from exact nanosecond sums, on the explicit bounds.
    fn of_durations(sums: &DurationSums) -> HistogramPoint {
        let seconds = |ns: u64| ns as f64 / 1e9;
        let some = sums.count > 0;
        HistogramPoint {
            count: sums.count,
            sum: seconds(sums.sum_ns),
            min: some.then(|| seconds(sums.min_ns)),
            max: some.then(|| seconds(sums.max_ns)),
            bounds: buckets::bounds_seconds(),
            counts: buckets::rebucket(&sums.histogram),
        }
    }
}

/// Every metric at one moment.
#[derive(Clone, Debug, Default, PartialEq)]
pub(crate) struct Snapshot {
    /// When the run started (the start of every cumulative series), Unix nanoseconds.
    pub(crate) start_unix_ns: u64,
    pub(crate) families: Vec<Family>,
}

impl Snapshot {
    /// The family named `name` (OpenTelemetry name), if the snapshot has it.
    #[cfg(test)]
    pub(crate) fn family(&self, name: &str) -> Option<&Family> {
        self.families.iter().find(|f| f.name == name)
    }
}

/// Which paths have series of their own (see the [module docs](self)).
#[derive(Debug)]
pub(crate) struct PathCap {
    max: usize,
    admitted: HashSet<String>,
    /// Whether the fold has been announced.
    warned: bool,
}

impl PathCap {
    pub(crate) fn new(max: usize) -> PathCap {
        PathCap {
            max,
            admitted: HashSet::new(),
            warned: false,
        }
    }

    /// Whether `path` has series of its own, admitting it while there is room.
    fn admits(&mut self, path: &str) -> bool {
        if self.admitted.contains(path) {
            return true;
        }
        if self.admitted.len() < self.max {
            self.admitted.insert(path.to_owned());
            return true;
        }
        false
    }

    /// The warning to give, the first time a path is folded.
    fn first_fold(&mut self) -> Option<String> {
        (!std::mem::replace(&mut self.warned, true)).then(|| {
            format!(
                "metrics: more than {} span paths (SPANLAB_METRICS_MAX_PATHS); \
                 the others are folded into spanlab.path=\"{OTHER}\"",
                self.max
            )
        })
    }
}

/// The snapshot of `report`, with `cap` deciding which paths get series; the warning
/// is the first fold's, once per run.
pub(crate) fn snapshot(report: &Report, cap: &mut PathCap) -> (Snapshot, Option<String>) {
    let mut warning = None;
    let mut kept: Vec<(String, String, &PathSums)> = Vec::new();
    let mut other: Option<PathSums> = None;
    for stats in &report.paths {
        let path = stats.path_string();
        if cap.admits(&path) {
            kept.push((path, leaf(stats), &stats.sums));
            continue;
        }
        warning = warning.or_else(|| cap.first_fold());
        match &mut other {
            None => other = Some(stats.sums.clone()),
            // Sums of one run cannot overflow u64 nanoseconds before the run's clock
            // would; an overflowing fold keeps what it had.
            Some(sums) => {
                let _ = sums.merge(&stats.sums);
            }
        }
    }
    let mut families = path_families(&kept, other.as_ref());
    families.extend(gpu_families(report, cap));
    families.extend(llm_families(report));
    let start_unix_ns = report.runs.first().map_or(0, |run| run.start_unix_ns);
    let snapshot = Snapshot {
        start_unix_ns,
        families,
    };
    (snapshot, warning)
}

/// The span name of a path (its last element).
fn leaf(stats: &PathStats) -> String {
    stats.path.last().map(|n| n.to_string()).unwrap_or_default()
}

/// The per-path families: duration, calls, errors, panics, self time.
fn path_families(kept: &[(String, String, &PathSums)], other: Option<&PathSums>) -> Vec<Family> {
    let rows: Vec<(Vec<(&'static str, String)>, &PathSums)> = kept
        .iter()
        .map(|(path, name, sums)| (path_attributes(path, name), *sums))
        .chain(other.map(|sums| (path_attributes(OTHER, OTHER), sums)))
        .collect();
    let family = |name, prometheus, help, unit, kind, value: &dyn Fn(&PathSums) -> Value| Family {
        name,
        prometheus,
        help,
        unit,
        kind,
        points: rows
            .iter()
            .map(|(attributes, sums)| Point {
                attributes: attributes.clone(),
                value: value(sums),
            })
            .collect(),
    };
    vec![
        family(
            "spanlab.span.duration",
            "spanlab_span_duration_seconds",
            "Wall time of every finished call of the span path.",
            "s",
            Kind::Histogram,
            &|s| Value::Histogram(HistogramPoint::of_durations(&s.wall)),
        ),
        family(
            "spanlab.span.calls",
            "spanlab_span_calls_total",
            "Finished calls of the span path.",
            "{call}",
            Kind::Counter,
            &|s| Value::Int(s.wall.count),
        ),
        family(
            "spanlab.span.errors",
            "spanlab_span_errors_total",
            "Calls of the span path during which an ERROR event was recorded.",
            "{call}",
            Kind::Counter,
            &|s| Value::Int(s.errors),
        ),
        family(
            "spanlab.span.panics",
            "spanlab_span_panics_total",
            "Calls of the span path that ended while their thread was panicking.",
            "{call}",
            Kind::Counter,
            &|s| Value::Int(s.panics),
        ),
        family(
            "spanlab.span.self_time",
            "spanlab_span_self_time_seconds_total",
            "Time inside the span path's calls minus time in spans entered inside them.",
            "s",
            Kind::Counter,
            &|s| Value::Float(s.self_ns as f64 / 1e9),
        ),
    ]
}

fn path_attributes(path: &str, name: &str) -> Vec<(&'static str, String)> {
    vec![
        ("spanlab.path", path.to_owned()),
        ("span.name", name.to_owned()),
    ]
}

/// GPU memory gauges and the energy counter, for the admitted paths (a gauge of a
/// fold of paths would mean nothing).
fn gpu_families(report: &Report, cap: &mut PathCap) -> Vec<Family> {
    let mut used = Vec::new();
    let mut peak = Vec::new();
    let mut energy = Vec::new();
    for row in &report.gpu.paths {
        let path = row.path.join(" > ");
        if !cap.admitted.contains(&path) {
            continue;
        }
        let name = row.path.last().map(|n| n.to_string()).unwrap_or_default();
        let mut attributes = path_attributes(&path, &name);
        attributes.push(("gpu.device", row.device.to_string()));
        if let Some(bytes) = row.device_used_bytes {
            used.push(Point {
                attributes: attributes.clone(),
                value: Value::Int(bytes),
            });
        }
        peak.push(Point {
            attributes: attributes.clone(),
            value: Value::Int(row.max_peak_bytes),
        });
        if row.energy_millijoules > 0 {
            energy.push(Point {
                attributes,
                value: Value::Float(row.energy_joules),
            });
        }
    }
    let mut families = Vec::new();
    for (name, prometheus, help, unit, kind, points) in [
        (
            "spanlab.gpu.memory.used",
            "spanlab_gpu_memory_used_bytes",
            "Device-wide memory in use at the path's last measured exit.",
            "By",
            Kind::Gauge,
            used,
        ),
        (
            "spanlab.gpu.memory.peak",
            "spanlab_gpu_memory_peak_bytes",
            "The highest allocation inside any call of the path.",
            "By",
            Kind::Gauge,
            peak,
        ),
        (
            "spanlab.gpu.energy",
            "spanlab_gpu_energy_joules_total",
            "Energy the device used inside the path's calls.",
            "J",
            Kind::Counter,
            energy,
        ),
    ] {
        if !points.is_empty() {
            families.push(Family {
                name,
                prometheus,
                help,
                unit,
                kind,
                points,
            });
        }
    }
    families
}

/// The GenAI client metrics, per model, from the prompt book's sums.
fn llm_families(report: &Report) -> Vec<Family> {
    let models = &report.prompts.models;
    if models.is_empty() {
        return Vec::new();
    }
    let model = |m: &str| vec![("gen_ai.request.model", m.to_owned())];
    let mut tokens = Vec::new();
    let mut durations = Vec::new();
    for m in models {
        for (kind, histogram, sum) in [
            ("input", &m.input_token_histogram, m.input_tokens),
            ("output", &m.output_token_histogram, m.output_tokens),
        ] {
            let mut attributes = model(&m.model);
            attributes.push(("gen_ai.token.type", kind.to_owned()));
            tokens.push(Point {
                attributes,
                value: Value::Histogram(HistogramPoint::of_tokens(
                    histogram.as_ref(),
                    m.calls,
                    sum,
                )),
            });
        }
        durations.push(Point {
            attributes: model(&m.model),
            value: Value::Histogram(HistogramPoint::of_durations(&m.latency)),
        });
    }
    vec![
        Family {
            name: "gen_ai.client.token.usage",
            prometheus: "gen_ai_client_token_usage",
            help: "Tokens per LLM call, of the calls that gave token counts.",
            unit: "{token}",
            kind: Kind::Histogram,
            points: tokens,
        },
        Family {
            name: "gen_ai.client.operation.duration",
            prometheus: "gen_ai_client_operation_duration_seconds",
            help: "Duration of the timed LLM calls.",
            unit: "s",
            kind: Kind::Histogram,
            points: durations,
        },
    ]
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
