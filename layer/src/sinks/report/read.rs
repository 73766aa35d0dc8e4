//! [`Report::from_json`]: a JSON report read back, checked, and every figure derived
//! again from its exact sums.
//!
//! Reading goes in two steps, so that each kind of bad input gets its own error: the
//! text is parsed as JSON (not JSON, or cut off), its `schema` says whether it is a
//! spanlab report and which version, and only then is each part read into its type —
//! one path, one GPU row, one seeded path at a time, so that an error names the part.

use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{ExportReport, Report, RunInfo};
use crate::core::stats::{DurationSums, Histogram, PathStats, PathSums};
use crate::riders::gpu::{DeviceStats, GpuPath, GpuReport};
use crate::riders::llm::{ModelStats, PromptRecord, PromptReport};
use crate::riders::rng::book::{DistinctSketch, PathSeeds};
use crate::riders::rng::{RootSeed, SeedReport, SeedSource};

/// Why [`Report::from_json`] could not read its input, each case saying what the input
/// is instead.
///
/// ```
/// use spanlab::report::{Report, ReportError};
///
/// let error = Report::from_json(r#"{"schema": "spanlab.report/2", "paths": ["#).unwrap_err();
/// assert!(matches!(error, ReportError::Truncated { .. }));
/// println!("{error}"); // "the report ends early (at line 1, column 39) ..."
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ReportError {
    /// The input is not JSON (or is empty).
    NotJson {
        /// The parser's message.
        message: String,
        /// Where it failed, from 1 (0 for an empty input).
        line: usize,
        /// Where on that line, from 1.
        column: usize,
    },
    /// The input is JSON that ends early: a file cut off while it was written or
    /// copied.
    Truncated {
        /// Where the input ends.
        line: usize,
        /// Where on that line.
        column: usize,
    },
    /// The input is JSON but not a spanlab report: not an object, or its `schema` is
    /// missing or names something else.
    NotAReport {
        /// The `schema` value found, if it was a string.
        schema: Option<String>,
    },
    /// A spanlab report of a schema version this version does not know (a newer one).
    UnknownSchema {
        /// The `schema` value found.
        schema: String,
    },
    /// A `spanlab.report/1`: it has no exact sums and no histograms, so it can be
    /// neither read back into a [`Report`] nor merged.
    Version1,
    /// A histogram layout this version does not know: its buckets cannot be read, nor
    /// merged with [`Histogram::LAYOUT`]'s.
    UnknownHistogramLayout {
        /// The `histogram_layout` value found.
        layout: String,
    },
    /// A `spanlab.report/2` whose content is malformed: a missing field, a value of the
    /// wrong type, or sums that no calls could have.
    Invalid {
        /// Where: `paths[3] (epoch > forward)`, `seeds.paths[0].sketch`...
        at: String,
        /// What is wrong there.
        problem: String,
    },
}

impl fmt::Display for ReportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReportError::NotJson {
                message,
                line,
                column,
            } => write!(f, "not JSON (at line {line}, column {column}): {message}"),
            ReportError::Truncated { line, column } => write!(
                f,
                "the report ends early (at line {line}, column {column}): the file was cut \
                 off while it was written or copied"
            ),
            ReportError::NotAReport { schema: None } => {
                write!(f, "not a spanlab report: no \"schema\" field naming one")
            }
            ReportError::NotAReport {
                schema: Some(schema),
            } => write!(f, "not a spanlab report: its schema is {schema:?}"),
            ReportError::UnknownSchema { schema } => write!(
                f,
                "{schema} is a spanlab report schema this version does not know \
                 (it reads {}); read it with the spanlab that wrote it",
                super::json::SCHEMA
            ),
            ReportError::Version1 => write!(
                f,
                "a spanlab.report/1 has neither exact sums nor histograms, so it can be \
                 neither read back nor merged; reports written by spanlab {} or later \
                 ({}) can",
                env!("CARGO_PKG_VERSION"),
                super::json::SCHEMA
            ),
            ReportError::UnknownHistogramLayout { layout } => write!(
                f,
                "histogram layout {layout:?} is not one this version reads ({:?}): its \
                 histograms can be neither read nor merged with this version's",
                Histogram::LAYOUT
            ),
            ReportError::Invalid { at, problem } => {
                write!(f, "malformed spanlab report at {at}: {problem}")
            }
        }
    }
}

impl std::error::Error for ReportError {}

/// See [`Report::from_json`].
pub(super) fn from_json(text: &str) -> Result<Report, ReportError> {
    if text.trim().is_empty() {
        return Err(ReportError::NotJson {
            message: "the input is empty".into(),
            line: 0,
            column: 0,
        });
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        let (line, column) = (e.line(), e.column());
        match e.classify() {
            serde_json::error::Category::Eof => ReportError::Truncated { line, column },
            _ => ReportError::NotJson {
                message: e.to_string(),
                line,
                column,
            },
        }
    })?;
    let Value::Object(mut top) = value else {
        return Err(ReportError::NotAReport { schema: None });
    };
    let schema = match top.get("schema") {
        Some(Value::String(s)) => s.clone(),
        _ => return Err(ReportError::NotAReport { schema: None }),
    };
    match schema.strip_prefix("spanlab.report/") {
        Some("2") => {}
        Some("1") => return Err(ReportError::Version1),
        Some(_) => return Err(ReportError::UnknownSchema { schema }),
        None => {
            return Err(ReportError::NotAReport {
                schema: Some(schema),
            })
        }
    }
    let layout: String = take(&mut top, "histogram_layout", "")?;
    if layout != Histogram::LAYOUT {
        return Err(ReportError::UnknownHistogramLayout { layout });
    }
    read_v2(top)
}

/// The parts of a /2 report, once schema and layout are known.
fn read_v2(mut top: Map<String, Value>) -> Result<Report, ReportError> {
    let elapsed_ns: u64 = take(&mut top, "elapsed_ns", "")?;
    let runs: Vec<RunInfo> = take(&mut top, "runs", "")?;
    let spans_never_entered = take(&mut top, "spans_never_entered", "")?;
    let warnings = take(&mut top, "warnings", "")?;
    let paths = each(take(&mut top, "paths", "")?, "paths", read_path)?;
    let seeds = read_seeds(take(&mut top, "seeds", "")?)?;
    let gpu = read_gpu(take(&mut top, "gpu", "")?)?;
    let prompts = read_prompts(take(&mut top, "prompts", "")?)?;
    let export: Option<ExportReport> = take(&mut top, "export", "")?;
    // Added within /2 by snapshots: a file without them was written once, at exit.
    let is_final = take_or(&mut top, "final", true)?;
    let sequence = take_or(&mut top, "sequence", 0)?;
    // Reports written before live metrics existed have no `metrics` key: none.
    let metrics: Option<super::MetricsReport> = match top.remove("metrics") {
        Some(value) => serde_json::from_value(value).map_err(|e| invalid("metrics".into(), e))?,
        None => None,
    };
    // Added within /2 by the open-span list: a file without it had none to say.
    let open_spans = take_or(&mut top, "open_spans", Vec::new())?;
    Ok(Report {
        elapsed: Duration::from_nanos(elapsed_ns),
        runs,
        paths,
        spans_never_entered,
        seeds,
        gpu,
        prompts,
        export,
        metrics,
        warnings,
        is_final,
        sequence,
        open_spans,
    })
}

/// Removes `key` from `object` and reads it as a `T`; errors name `at.key`.
fn take<T: DeserializeOwned>(
    object: &mut Map<String, Value>,
    key: &str,
    at: &str,
) -> Result<T, ReportError> {
    let at = if at.is_empty() {
        key.to_string()
    } else {
        format!("{at}.{key}")
    };
    let value = object.remove(key).ok_or_else(|| ReportError::Invalid {
        at: at.clone(),
        problem: "missing".into(),
    })?;
    serde_json::from_value(value).map_err(|e| invalid(at, e))
}

/// [`take`], or `default` when `key` is absent (a field added within the schema).
fn take_or<T: DeserializeOwned>(
    object: &mut Map<String, Value>,
    key: &str,
    default: T,
) -> Result<T, ReportError> {
    if object.contains_key(key) {
        take(object, key, "")
    } else {
        Ok(default)
    }
}

fn invalid(at: String, problem: impl fmt::Display) -> ReportError {
    ReportError::Invalid {
        at,
        problem: problem.to_string(),
    }
}

/// Reads each element of the array `items` with `read`, which gets the element and
/// where it is (`section[i]`).
fn each<T>(
    items: Vec<Value>,
    section: &str,
    read: impl Fn(Value, String) -> Result<T, ReportError>,
) -> Result<Vec<T>, ReportError> {
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| read(item, format!("{section}[{i}]")))
        .collect()
}

/// Reads one element as a `T`; errors name `at`, and the path when there is one.
fn element<T: DeserializeOwned>(item: Value, at: &str) -> Result<T, ReportError> {
    let path = item.get("path").and_then(Value::as_array).map(|names| {
        let names: Vec<&str> = names.iter().filter_map(Value::as_str).collect();
        names.join(" > ")
    });
    serde_json::from_value(item).map_err(|e| match path {
        Some(path) => invalid(format!("{at} ({path})"), e),
        None => invalid(at.to_string(), e),
    })
}

fn owned(names: Vec<String>) -> Vec<Cow<'static, str>> {
    names.into_iter().map(Cow::Owned).collect()
}

/// What a path's JSON holds that its statistics derive from (the figures beside them
/// are not read).
#[derive(Deserialize)]
struct PathIn {
    path: Vec<String>,
    calls: u64,
    min_ns: u64,
    max_ns: u64,
    errors: u64,
    panics: u64,
    exact: super::json::JsonExact,
    histogram: Vec<(u32, u64)>,
}

fn read_path(item: Value, at: String) -> Result<PathStats, ReportError> {
    let p: PathIn = element(item, &at)?;
    if p.path.is_empty() {
        return Err(invalid(at, "a path with no span names"));
    }
    let at = format!("{at} ({})", p.path.join(" > "));
    let histogram =
        Histogram::from_sparse(p.histogram).map_err(|e| invalid(format!("{at}.histogram"), e))?;
    let sums = PathSums {
        wall: DurationSums {
            count: p.calls,
            sum_ns: p.exact.sum_ns,
            sum_sq_ns2: p.exact.sum_sq_ns2,
            min_ns: p.min_ns,
            max_ns: p.max_ns,
            histogram,
        },
        self_ns: p.exact.self_ns,
        busy_ns: p.exact.busy_ns,
        idle_ns: p.exact.idle_ns,
        errors: p.errors,
        panics: p.panics,
    };
    sums.check().map_err(|e| invalid(at, e))?;
    Ok(PathStats::from_sums(owned(p.path), sums))
}

/// A [`DurationSums`] as JSON holds it.
#[derive(Deserialize)]
struct DurationsIn {
    count: u64,
    #[serde(with = "crate::decimal")]
    sum_ns: u64,
    #[serde(with = "crate::decimal")]
    sum_sq_ns2: u128,
    min_ns: u64,
    max_ns: u64,
    histogram: Vec<(u32, u64)>,
}

impl DurationsIn {
    fn read(self, at: &str) -> Result<DurationSums, ReportError> {
        let histogram = Histogram::from_sparse(self.histogram)
            .map_err(|e| invalid(format!("{at}.histogram"), e))?;
        let sums = DurationSums {
            count: self.count,
            sum_ns: self.sum_ns,
            sum_sq_ns2: self.sum_sq_ns2,
            min_ns: self.min_ns,
            max_ns: self.max_ns,
            histogram,
        };
        sums.check().map_err(|e| invalid(at.to_string(), e))?;
        Ok(sums)
    }
}

#[derive(Deserialize)]
struct SeedsIn {
    root: u64,
    source: String,
    replay: String,
    seeds_kept: usize,
    paths: Vec<Value>,
}

#[derive(Deserialize)]
struct SeededPathIn {
    path: Vec<String>,
    calls: u64,
    draws: u64,
    digest: String,
    seed_range: Option<(u64, u64)>,
    other_seed_calls: u64,
    seeds: Vec<SeedIn>,
    sketch: String,
}

#[derive(Deserialize)]
struct SeedIn {
    seed: u64,
    calls: u64,
}

fn read_seeds(seeds: SeedsIn) -> Result<SeedReport, ReportError> {
    let source = [SeedSource::Env, SeedSource::Builder, SeedSource::Os]
        .into_iter()
        .find(|s| s.as_str() == seeds.source)
        .ok_or_else(|| {
            invalid(
                "seeds.source".into(),
                format!("{:?} is not \"env\", \"builder\" or \"os\"", seeds.source),
            )
        })?;
    let cap = seeds.seeds_kept;
    let paths = each(seeds.paths, "seeds.paths", |item, at| {
        let p: SeededPathIn = element(item, &at)?;
        let at = format!("{at} ({})", p.path.join(" > "));
        let digest = u64::from_str_radix(&p.digest, 16)
            .map_err(|_| invalid(format!("{at}.digest"), "not a hexadecimal u64"))?;
        let sketch =
            DistinctSketch::from_hex(&p.sketch).map_err(|e| invalid(format!("{at}.sketch"), e))?;
        let mut row = PathSeeds::default().report(owned(p.path));
        row.seeds = p.seeds.iter().map(|s| (s.seed, s.calls)).collect();
        (row.seed_range, row.other_seed_calls) = (p.seed_range, p.other_seed_calls);
        (row.calls, row.draws, row.digest, row.sketch) = (p.calls, p.draws, digest, sketch);
        row.check(cap).map_err(|e| invalid(at, e))?;
        // The distinct count derived again, as the writer derived it.
        Ok(PathSeeds::from_reported(&row).report(row.path))
    })?;
    Ok(SeedReport {
        root: RootSeed {
            value: seeds.root,
            source,
        },
        replay: seeds.replay,
        seeds_kept: cap,
        paths,
    })
}

#[derive(Deserialize)]
struct GpuIn {
    probe: Option<String>,
    paths: Vec<Value>,
}

#[derive(Deserialize)]
struct GpuPathIn {
    path: Vec<String>,
    device: usize,
    calls: u64,
    #[serde(with = "crate::decimal")]
    sum_delta_bytes: i128,
    max_delta_bytes: i64,
    max_peak_bytes: u64,
    max_reserved_bytes: Option<u64>,
    device_used_bytes: Option<u64>,
    energy_mj: u64,
    #[serde(with = "crate::decimal")]
    energy_measured_ns: u64,
    below_resolution: u64,
}

fn read_gpu(gpu: GpuIn) -> Result<GpuReport, ReportError> {
    let paths = each(gpu.paths, "gpu.paths", |item, at| {
        let p: GpuPathIn = element(item, &at)?;
        let stats = DeviceStats {
            calls: p.calls,
            sum_delta: p.sum_delta_bytes,
            max_delta: p.max_delta_bytes,
            max_peak: p.max_peak_bytes,
            max_reserved: p.max_reserved_bytes,
            energy_ns: p.energy_measured_ns,
            last_device_used: p.device_used_bytes,
            energy_mj: p.energy_mj,
            below_resolution: p.below_resolution,
        };
        // The figures derived again, as the writer derived them.
        Ok(GpuPath::from_stats(owned(p.path), p.device, &stats))
    })?;
    Ok(GpuReport {
        probe: gpu.probe,
        paths,
    })
}

#[derive(Deserialize)]
struct PromptsIn {
    models: Vec<Value>,
    recent: Vec<Value>,
}

#[derive(Deserialize)]
struct ModelIn {
    model: String,
    provider: Option<String>,
    calls: u64,
    input_tokens: u64,
    output_tokens: u64,
    latency: DurationsIn,
    /// Absent from files written before token histograms (read as `None`).
    #[serde(default)]
    input_token_histogram: Option<Vec<(u32, u64)>>,
    #[serde(default)]
    output_token_histogram: Option<Vec<(u32, u64)>>,
}

/// A model's token histogram from a file, checked against the calls and the token sum
/// kept beside it: no more values than calls, and buckets whose values can sum to it.
fn token_histogram(
    sparse: Option<Vec<(u32, u64)>>,
    calls: u64,
    tokens: u64,
    at: &str,
) -> Result<Option<Histogram>, ReportError> {
    let Some(sparse) = sparse else {
        return Ok(None);
    };
    let histogram = Histogram::from_sparse(sparse).map_err(|e| invalid(at.to_owned(), e))?;
    if histogram.count() > calls {
        return Err(invalid(at.to_owned(), "more calls with tokens than calls"));
    }
    let (low, high) = histogram.sum_range();
    if !(low..=high).contains(&u128::from(tokens)) {
        return Err(invalid(
            at.to_owned(),
            format!("its buckets sum to {low}..={high} tokens, not the {tokens} given"),
        ));
    }
    Ok(Some(histogram))
}

fn read_prompts(prompts: PromptsIn) -> Result<PromptReport, ReportError> {
    let models = each(prompts.models, "prompts.models", |item, at| {
        let m: ModelIn = element(item, &at)?;
        let latency = m.latency.read(&format!("{at}.latency"))?;
        if latency.count > m.calls {
            return Err(invalid(at, "more timed calls than calls"));
        }
        let input_histogram = token_histogram(
            m.input_token_histogram,
            m.calls,
            m.input_tokens,
            &format!("{at}.input_token_histogram"),
        )?;
        let output_histogram = token_histogram(
            m.output_token_histogram,
            m.calls,
            m.output_tokens,
            &format!("{at}.output_token_histogram"),
        )?;
        let mut stats = ModelStats::from_sums(m.model, latency);
        stats.provider = m.provider;
        stats.input_token_histogram = input_histogram;
        stats.output_token_histogram = output_histogram;
        (stats.calls, stats.input_tokens, stats.output_tokens) =
            (m.calls, m.input_tokens, m.output_tokens);
        Ok(stats)
    })?;
    let recent = each(prompts.recent, "prompts.recent", |item, at| {
        element::<PromptRecord>(item, &at)
    })?;
    Ok(PromptReport { models, recent })
}
