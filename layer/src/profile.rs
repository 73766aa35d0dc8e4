//! The live, queryable view of what the layer has measured so far.
//!
//! A [`Profile`] is a cheap handle (an `Arc`) shared by the layer, the [`Guard`] and
//! anyone who asks. Reading it merges every thread's accumulators on the calling
//! thread; the threads doing the work are never stopped or locked.
//!
//! [`Guard`]: crate::Guard

use std::sync::Arc;
use std::time::Duration;

use std::sync::atomic::AtomicUsize;

use crate::core::clock::Clock;
use crate::core::paths::{self, PathTable};
use crate::core::spans::Threads;
use crate::core::stats::{Aggregate, PathStats};
use crate::riders::gpu::{GpuConfig, GpuTracker};
use crate::riders::llm::PromptBook;
use crate::riders::rng::book::SeedBook;
use crate::sinks::report::Report;

/// Everything the layer writes, shared with the readers.
pub(crate) struct ProfileData {
    pub(crate) clock: Clock,
    pub(crate) paths: PathTable,
    pub(crate) threads: Threads,
    pub(crate) seeds: SeedBook,
    pub(crate) gpu: GpuTracker,
    pub(crate) prompts: PromptBook,
    /// Spans alive that use a feature (seed, GPU): see [`crate::features`].
    pub(crate) featured: AtomicUsize,
    /// OTLP export, when it is on.
    #[cfg(feature = "otlp")]
    pub(crate) export: Option<crate::sinks::export::Export>,
}

impl ProfileData {
    pub(crate) fn new(gpu: GpuConfig) -> Self {
        Self::with(Clock::new(), gpu)
    }

    /// With the builder's prompt settings.
    pub(crate) fn configured(gpu: GpuConfig, prompts: PromptBook) -> Self {
        ProfileData {
            prompts,
            ..Self::new(gpu)
        }
    }

    pub(crate) fn with(clock: Clock, gpu: GpuConfig) -> Self {
        ProfileData {
            clock,
            paths: PathTable::default(),
            threads: Threads::default(),
            seeds: SeedBook::default(),
            gpu: GpuTracker::new(gpu),
            prompts: PromptBook::default(),
            featured: AtomicUsize::new(0),
            #[cfg(feature = "otlp")]
            export: None,
        }
    }
}

/// A live handle on per-path statistics: the `t.elapsed` of Python's `with Timer() as t`.
///
/// ```
/// use tracing_subscriber::prelude::*;
/// let (layer, guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
/// let _default = tracing::subscriber::set_default(tracing_subscriber::registry().with(layer));
///
/// for _ in 0..3 {
///     let _epoch = tracing::info_span!("epoch").entered();
///     tracing::info_span!("forward").in_scope(|| std::thread::sleep(std::time::Duration::from_millis(1)));
/// }
/// let forward = guard.profile().get("epoch > forward").expect("recorded");
/// assert_eq!(forward.calls, 3);
/// assert!(forward.mean >= std::time::Duration::from_millis(1));
/// ```
#[derive(Clone)]
pub struct Profile {
    data: Arc<ProfileData>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("elapsed", &self.elapsed())
            .finish_non_exhaustive()
    }
}

impl Profile {
    pub(crate) fn from_data(data: Arc<ProfileData>) -> Self {
        Profile { data }
    }

    /// Statistics of one path, written as in the report: `"epoch > forward"` (spaces
    /// around `>` optional). `None` until a span of that path has finished (been
    /// entered and closed), as in [`Profile::paths`].
    pub fn get(&self, path: &str) -> Option<PathStats> {
        let names = paths::parse(path);
        let id = self.data.paths.find(&names)?;
        let (mut merged, mut scratch) = (Aggregate::default(), Aggregate::default());
        for thread in self.data.threads.iter() {
            thread.slots_stats.merge_path(id, &mut merged, &mut scratch);
        }
        if merged.calls == 0 {
            return None;
        }
        let entries = self.data.paths.entries();
        Some(PathStats::from_aggregate(
            paths::names(&entries, id),
            &merged,
            self.data.clock.scale(),
        ))
    }

    /// Every path with at least one finished call, in tree order (each path followed by
    /// its children; siblings in order of first appearance).
    pub fn paths(&self) -> Vec<PathStats> {
        let entries = self.data.paths.entries();
        let mut merged: Vec<Aggregate> = Vec::new();
        let mut scratch = Aggregate::default();
        for thread in self.data.threads.iter() {
            thread.slots_stats.merge_all(&mut merged, &mut scratch);
        }
        let scale = self.data.clock.scale();
        paths::tree_order(&entries)
            .into_iter()
            .filter_map(|id| {
                let a = merged.get(id as usize).filter(|a| a.calls > 0)?;
                Some(PathStats::from_aggregate(
                    paths::names(&entries, id),
                    a,
                    scale,
                ))
            })
            .collect()
    }

    /// Spans closed without ever being entered (counted, not timed).
    pub fn spans_never_entered(&self) -> u64 {
        self.data
            .threads
            .iter()
            .map(|t| t.slots_stats.never_entered())
            .sum()
    }

    /// Sends what export has queued and stops it (waiting at most its flush timeout).
    /// The guard does this before its report; spans finished later are dropped and
    /// counted.
    pub(crate) fn finish_export(&self) {
        #[cfg(feature = "otlp")]
        if let Some(export) = &self.data.export {
            export.shutdown();
        }
    }

    /// Time since the layer was built.
    pub fn elapsed(&self) -> Duration {
        self.data.clock.elapsed()
    }

    /// A report of everything measured so far (see [`Report`] for its formats).
    pub fn report(&self) -> Report {
        let entries = self.data.paths.entries();
        let (seeds, warnings) = self.data.seeds.report(&entries);
        let (gpu, gpu_warnings) = self.data.gpu.report(&entries);
        let mut report = Report::new(
            self.elapsed(),
            self.paths(),
            self.spans_never_entered(),
            seeds,
        );
        let (prompts, prompt_warnings) = self.data.prompts.report();
        report.gpu = gpu;
        report.prompts = prompts;
        #[cfg(feature = "otlp")]
        {
            report.export = self
                .data
                .export
                .as_ref()
                .map(|e| e.report(self.data.threads.iter()));
        }
        report.warnings = warnings;
        report.warnings.extend(gpu_warnings);
        report.warnings.extend(prompt_warnings);
        report
    }
}
