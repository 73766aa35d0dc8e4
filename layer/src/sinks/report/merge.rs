//! [`Report::merge`]: several reports added into the report of all their calls.
//!
//! Each section merges through the sums it derives its figures from — a path's
//! [`PathSums`], a GPU row's [`DeviceStats`], a seeded path's [`PathSeeds`], a model's
//! counts, latency [`DurationSums`] and token [`Histogram`]s — and then derives the
//! figures once, the way a live report does. So a merge shows what one process that
//! made every call would have shown; [`json`](super::json) lists what each part does.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;

use super::Report;
use crate::core::stats::{DurationSums, Histogram, PathStats, PathSums};
use crate::riders::gpu::{DeviceStats, GpuPath, GpuReport};
use crate::riders::llm::{ModelStats, PromptReport, RECENT};
use crate::riders::rng::book::PathSeeds;
use crate::riders::rng::SeedReport;

type Names = Vec<Cow<'static, str>>;

/// Why [`Report::merge`] gave no report.
///
/// ```
/// use spanlab::report::{MergeError, Report};
/// assert_eq!(Report::merge(&[]), Err(MergeError::NoReports));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum MergeError {
    /// There was nothing to merge.
    NoReports,
    /// A sum of the merged reports does not fit its integer (64 bits; 128 for sums of
    /// squares, and for GPU byte deltas): far beyond any real run, so the inputs are
    /// probably not what they seem.
    Overflow {
        /// Where: `paths: epoch > forward`, `gpu: model_init, device 0`...
        at: String,
        /// The sum: `sum_ns`, `calls`...
        sum: &'static str,
    },
}

impl fmt::Display for MergeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeError::NoReports => write!(f, "no reports to merge"),
            MergeError::Overflow { at, sum } => write!(
                f,
                "merging overflows {sum} at {at}: the merged sum does not fit its integer"
            ),
        }
    }
}

impl std::error::Error for MergeError {}

fn overflow(at: String) -> impl FnOnce(&'static str) -> MergeError {
    move |sum| MergeError::Overflow { at, sum }
}

impl Report {
    /// Adds reports into one: exactly the report one process that made every call of
    /// every report would have made, given in the order the runs happened (where
    /// "last" matters: recent prompt records, device-wide memory readings). Paths
    /// match by their span names; counts, sums and histograms add, extremes widen, so
    /// quantiles are those of all the calls together. [`json`](super::json) lists what
    /// each part of a report does in a merge.
    ///
    /// Every report in memory has this version's histogram layout
    /// ([`Histogram::LAYOUT`](crate::stats::Histogram::LAYOUT)): reports of another
    /// layout are refused when read, by [`Report::from_json`]. A merge of one report is
    /// that report; merging merges again is the same as merging their inputs at once.
    ///
    /// ```
    /// use spanlab::{Report, ReportTarget, SpanLab};
    /// use tracing_subscriber::prelude::*;
    ///
    /// // Two runs (two ranks, or a run and its restart), each with its own layer.
    /// let run = |epochs: u32| {
    ///     let (layer, guard) = SpanLab::builder().report_to(ReportTarget::Off).build();
    ///     tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///         for _ in 0..epochs {
    ///             tracing::info_span!("epoch").in_scope(|| std::hint::black_box(2 + 2));
    ///         }
    ///     });
    ///     guard.report()
    /// };
    /// let job = Report::merge(&[run(3), run(5)])?;
    /// assert_eq!(job.paths[0].calls, 8);
    /// assert_eq!(job.runs.len(), 2);
    /// # Ok::<(), spanlab::report::MergeError>(())
    /// ```
    pub fn merge(reports: &[Report]) -> Result<Report, MergeError> {
        let first = reports.first().ok_or(MergeError::NoReports)?;
        let mut never_entered = 0u64;
        for r in reports {
            never_entered =
                (never_entered.checked_add(r.spans_never_entered)).ok_or(MergeError::Overflow {
                    at: "the report".into(),
                    sum: "spans_never_entered",
                })?;
        }
        let mut warnings = Vec::new();
        let mut seen = HashSet::new();
        let seeds = merge_seeds(reports, &mut warnings)?;
        let all_warnings = reports.iter().flat_map(|r| &r.warnings).chain(&warnings);
        let warnings = all_warnings
            .filter(|w| seen.insert(w.as_str()))
            .cloned()
            .collect();
        let mut export = None::<super::ExportReport>;
        for e in reports.iter().filter_map(|r| r.export.as_ref()) {
            match &mut export {
                Some(merged) => merged.merge(e).map_err(overflow("export".into()))?,
                None => export = Some(e.clone()),
            }
        }
        let mut metrics = None::<super::MetricsReport>;
        for m in reports.iter().filter_map(|r| r.metrics.as_ref()) {
            match &mut metrics {
                Some(merged) => merged.merge(m),
                None => metrics = Some(m.clone()),
            }
        }
        Ok(Report {
            elapsed: reports
                .iter()
                .map(|r| r.elapsed)
                .max()
                .unwrap_or(first.elapsed),
            runs: reports
                .iter()
                .flat_map(|r| r.runs.iter().cloned())
                .collect(),
            paths: merge_paths(reports)?,
            spans_never_entered: never_entered,
            seeds,
            gpu: merge_gpu(reports)?,
            prompts: merge_prompts(reports)?,
            export,
            metrics,
            warnings,
            // As complete as the least complete input: final only when all are, and the
            // smallest sequence (like `all`, associative, and a merge of one is itself).
            is_final: reports.iter().all(|r| r.is_final),
            sequence: reports.iter().map(|r| r.sequence).min().unwrap_or(0),
            open_spans: merge_open_spans(reports),
        })
    }
}

/// Every report's open spans, in order, each thread's run renumbered to its place in
/// the merged `runs`.
fn merge_open_spans(reports: &[Report]) -> Vec<super::OpenThread> {
    let mut offset = 0;
    let mut out = Vec::new();
    for r in reports {
        out.extend(r.open_spans.iter().cloned().map(|mut t| {
            t.run += offset;
            t
        }));
        offset += r.runs.len();
    }
    out
}

fn merge_paths(reports: &[Report]) -> Result<Vec<PathStats>, MergeError> {
    let mut tree = Tree::<PathSums>::default();
    for p in reports.iter().flat_map(|r| &r.paths) {
        tree.item(&p.path, PathSums::default)
            .merge(&p.sums)
            .map_err(overflow(format!("paths: {}", p.path_string())))?;
    }
    Ok(tree
        .into_tree_order()
        .map(|(path, sums)| PathStats::from_sums(path, sums))
        .collect())
}

fn merge_seeds(reports: &[Report], warnings: &mut Vec<String>) -> Result<SeedReport, MergeError> {
    let first = &reports[0].seeds;
    // Every report kept at least this many seeds per path: the merge can keep no more.
    let cap = reports
        .iter()
        .map(|r| r.seeds.seeds_kept)
        .min()
        .unwrap_or(first.seeds_kept);
    let mut tree = Tree::<PathSeeds>::default();
    for p in reports.iter().flat_map(|r| &r.seeds.paths) {
        let book = tree.item(&p.path, PathSeeds::default);
        book.merge(&PathSeeds::from_reported(p), cap)
            .map_err(overflow(format!("seeds: {}", p.path.join(" > "))))?;
    }
    let mut roots: Vec<u64> = Vec::new();
    for r in reports {
        if !roots.contains(&r.seeds.root.value) {
            roots.push(r.seeds.root.value);
        }
    }
    if roots.len() > 1 {
        let roots: Vec<String> = roots.iter().map(u64::to_string).collect();
        warnings.push(format!(
            "the merged runs have different root seeds ({}); the seeds section's root and \
             replay line are the first run's",
            roots.join(", ")
        ));
    }
    Ok(SeedReport {
        root: first.root,
        replay: first.replay.clone(),
        seeds_kept: cap,
        paths: tree
            .into_tree_order()
            .map(|(path, book)| book.report(path))
            .collect(),
    })
}

fn merge_gpu(reports: &[Report]) -> Result<GpuReport, MergeError> {
    let mut tree = Tree::<BTreeMap<usize, DeviceStats>>::default();
    for p in reports.iter().flat_map(|r| &r.gpu.paths) {
        let devices = tree.item(&p.path, BTreeMap::new);
        let at = || format!("gpu: {}, device {}", p.path.join(" > "), p.device);
        (devices.entry(p.device).or_default())
            .merge(&p.stats())
            .map_err(|sum| overflow(at())(sum))?;
    }
    let mut probes: Vec<&str> = Vec::new();
    for probe in reports.iter().filter_map(|r| r.gpu.probe.as_deref()) {
        if !probes.contains(&probe) {
            probes.push(probe);
        }
    }
    let mut paths = Vec::new();
    for (path, devices) in tree.into_tree_order() {
        for (device, stats) in devices {
            paths.push(GpuPath::from_stats(path.clone(), device, &stats));
        }
    }
    Ok(GpuReport {
        probe: (!probes.is_empty()).then(|| probes.join(", ")),
        paths,
    })
}

/// Two token histograms added bucket by bucket; none when either report has none (its
/// calls would be missing from the sum). `Err` when a count would overflow.
fn merge_tokens(a: Option<&Histogram>, b: Option<&Histogram>) -> Result<Option<Histogram>, ()> {
    match (a, b) {
        (Some(a), Some(b)) => a.added(b).map(Some).ok_or(()),
        _ => Ok(None),
    }
}

fn merge_prompts(reports: &[Report]) -> Result<PromptReport, MergeError> {
    let mut models: BTreeMap<&str, ModelStats> = BTreeMap::new();
    for m in reports.iter().flat_map(|r| &r.prompts.models) {
        let at = || format!("prompts: model {}", m.model);
        let merged = models
            .entry(&m.model)
            .or_insert_with(|| ModelStats::from_sums(m.model.clone(), DurationSums::default()));
        let add = |a: u64, b: u64, sum| a.checked_add(b).ok_or_else(|| overflow(at())(sum));
        merged.calls = add(merged.calls, m.calls, "calls")?;
        merged.input_tokens = add(merged.input_tokens, m.input_tokens, "input_tokens")?;
        merged.output_tokens = add(merged.output_tokens, m.output_tokens, "output_tokens")?;
        merged
            .latency
            .merge(&m.latency)
            .map_err(|sum| overflow(at())(sum))?;
        merged.provider = m.provider.clone().or(merged.provider.take());
        for (into, from, name) in [
            (
                &mut merged.input_token_histogram,
                &m.input_token_histogram,
                "input_token_histogram",
            ),
            (
                &mut merged.output_token_histogram,
                &m.output_token_histogram,
                "output_token_histogram",
            ),
        ] {
            *into =
                merge_tokens(into.as_ref(), from.as_ref()).map_err(|()| overflow(at())(name))?;
        }
    }
    let models = models
        .into_values()
        .map(|m| {
            let (provider, calls, input, output) =
                (m.provider, m.calls, m.input_tokens, m.output_tokens);
            let (input_histogram, output_histogram) =
                (m.input_token_histogram, m.output_token_histogram);
            let mut stats = ModelStats::from_sums(m.model, m.latency);
            stats.provider = provider;
            stats.input_token_histogram = input_histogram;
            stats.output_token_histogram = output_histogram;
            (stats.calls, stats.input_tokens, stats.output_tokens) = (calls, input, output);
            stats
        })
        .collect();
    // The last records of all, by the time they were recorded; a stable sort keeps the
    // reports' order among equal times.
    let mut recent: Vec<_> = reports.iter().flat_map(|r| &r.prompts.recent).collect();
    recent.sort_by_key(|r| r.unix_nanos);
    let recent = recent[recent.len().saturating_sub(RECENT)..]
        .iter()
        .map(|&r| r.clone())
        .collect();
    Ok(PromptReport { models, recent })
}

/// Span paths gathered from several reports, each with an item, put back in tree order:
/// each path before its children, siblings in order of first appearance (earlier
/// reports first). A path whose parent no report lists (the parent had no finished
/// call) still comes where the parent would be.
///
/// Nodes are found by (parent, name), as the core's path table does, so a path costs
/// one lookup per name and no copy of its names: the tree borrows them from the
/// reports, and copies each path once, when it is taken out.
struct Tree<'a, T> {
    /// (parent node + 1, or 0 for a root; name) → node.
    index: HashMap<(usize, &'a str), usize>,
    nodes: Vec<Node<'a, T>>,
    roots: Vec<usize>,
}

struct Node<'a, T> {
    children: Vec<usize>,
    /// The path (as first seen) and its item, once a report lists the path.
    item: Option<(&'a [Cow<'static, str>], T)>,
}

impl<T> Default for Tree<'_, T> {
    fn default() -> Self {
        Tree {
            index: HashMap::new(),
            nodes: Vec::new(),
            roots: Vec::new(),
        }
    }
}

impl<'a, T> Tree<'a, T> {
    /// The item of `path`, made with `new` on first sight.
    fn item(&mut self, path: &'a [Cow<'static, str>], new: impl FnOnce() -> T) -> &mut T {
        let mut parent = None::<usize>;
        for name in path {
            let key = (parent.map_or(0, |p| p + 1), name.as_ref());
            let id = match self.index.get(&key) {
                Some(&id) => id,
                None => {
                    let id = self.nodes.len();
                    self.nodes.push(Node {
                        children: Vec::new(),
                        item: None,
                    });
                    self.index.insert(key, id);
                    match parent {
                        Some(p) => self.nodes[p].children.push(id),
                        None => self.roots.push(id),
                    }
                    id
                }
            };
            parent = Some(id);
        }
        // A path has names (reading checks it); an empty one gets a root node of its own.
        let id = parent.unwrap_or_else(|| {
            self.nodes.push(Node {
                children: Vec::new(),
                item: None,
            });
            self.roots.push(self.nodes.len() - 1);
            self.nodes.len() - 1
        });
        &mut self.nodes[id].item.get_or_insert_with(|| (path, new())).1
    }

    /// The paths that have an item, with it, in tree order.
    fn into_tree_order(self) -> impl Iterator<Item = (Names, T)> + 'a
    where
        T: 'a,
    {
        let Tree {
            mut nodes, roots, ..
        } = self;
        let mut order = Vec::with_capacity(nodes.len());
        let mut stack: Vec<usize> = roots.into_iter().rev().collect();
        while let Some(id) = stack.pop() {
            order.push(id);
            stack.extend(nodes[id].children.iter().rev());
        }
        order.into_iter().filter_map(move |id| {
            let (path, item) = nodes[id].item.take()?;
            Some((path.to_vec(), item))
        })
    }
}
