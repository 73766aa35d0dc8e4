//! The live, queryable view of what the layer has measured so far.
//!
//! A [`Profile`] is a cheap handle (an `Arc`) shared by the layer, the [`Guard`] and
//! anyone who asks. Reading it merges every thread's accumulators on the calling
//! thread; the threads doing the work are never stopped or locked.
//!
//! [`Guard`]: crate::Guard

use std::sync::Arc;
use std::time::Duration;

use crate::core::layer::Assembly;
use crate::core::stats::PathStats;
use crate::lab::{self, Riders};
use crate::sinks::report::{Report, RunInfo};

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
    lab: Arc<Assembly<Riders>>,
    /// This run, resolved when the layer was built; each report ends it at its making.
    run: Arc<RunInfo>,
}

impl std::fmt::Debug for Profile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Profile")
            .field("elapsed", &self.elapsed())
            .finish_non_exhaustive()
    }
}

impl Profile {
    pub(crate) fn from_assembly(lab: Arc<Assembly<Riders>>, run: Arc<RunInfo>) -> Self {
        Profile { lab, run }
    }

    /// The core and riders behind this profile (tests).
    #[cfg(test)]
    pub(crate) fn assembly(&self) -> &Arc<Assembly<Riders>> {
        &self.lab
    }

    /// Statistics of one path, written as in the report: `"epoch > forward"` (spaces
    /// around `>` optional). `None` until a span of that path has finished (been
    /// entered and closed), as in [`Profile::paths`].
    pub fn get(&self, path: &str) -> Option<PathStats> {
        self.lab.core.get(path)
    }

    /// Every path with at least one finished call, in tree order (each path followed by
    /// its children; siblings in order of first appearance).
    pub fn paths(&self) -> Vec<PathStats> {
        self.lab.core.paths()
    }

    /// Spans closed without ever being entered (counted, not timed).
    pub fn spans_never_entered(&self) -> u64 {
        self.lab.core.spans_never_entered()
    }

    /// Sends what export has queued and stops it (waiting at most its flush timeout).
    /// The guard does this before its report; spans finished later are dropped and
    /// counted.
    pub(crate) fn finish_export(&self) {
        lab::finish_export(&self.lab.riders);
    }

    /// Time since the layer was built.
    pub fn elapsed(&self) -> Duration {
        self.lab.core.elapsed()
    }

    /// A report of everything measured so far (see [`Report`] for its formats).
    pub fn report(&self) -> Report {
        let riders = &self.lab.riders;
        let entries = self.lab.core.paths.entries();
        let (seeds, warnings) = lab::seeds(riders).book.report(&entries);
        let (gpu, gpu_warnings) = lab::gpu(riders).book.report(&entries);
        let mut report = Report::new(
            self.elapsed(),
            self.run.ended_now(),
            self.paths(),
            self.spans_never_entered(),
            seeds,
        );
        let (prompts, prompt_warnings) = lab::prompts(riders).book.report();
        report.gpu = gpu;
        report.prompts = prompts;
        report.export = lab::export_report(riders);
        report.warnings = warnings;
        report.warnings.extend(gpu_warnings);
        report.warnings.extend(prompt_warnings);
        report.open_spans = self.sample_open_spans();
        report.warnings.extend(lab::open(riders).warnings());
        report
    }

    /// Samples the spans open now: updates the watcher's first-seen times and says new
    /// stalls (see `sinks::open`). For the snapshot thread, between reports; every
    /// report samples too.
    pub(crate) fn watch_open_spans(&self) {
        self.sample_open_spans();
    }

    /// Applies the builder's open-span settings (before the first span).
    pub(crate) fn configure_open(&self, fields: bool, stall_factor: f64) {
        lab::open(&self.lab.riders).configure(fields, stall_factor);
    }

    fn sample_open_spans(&self) -> Vec<crate::report::OpenThread> {
        let tag = crate::sinks::open::watch::RunTag {
            run: 0,
            rank: self.run.rank,
        };
        lab::open(&self.lab.riders).sample(&self.lab.core, tag)
    }
}
