//! The span core: what happens between a span's callbacks, and nothing else.
//!
//! The core turns `tracing`'s span callbacks into per-path statistics. It reads the
//! clock at enter and exit ([`clock`]), names each span by its path from the root
//! ([`paths`]), keeps a live span's state in a table owned by the thread that created
//! it ([`spans`], with the callbacks' call-free fast paths), and records each finished
//! span into that thread's accumulators ([`stats`]). The `tracing_subscriber::Layer`
//! that drives it is [`layer::SpanCore`].
//!
//! The core names no feature. Everything else a span can carry — a seeded scope, GPU
//! readings, prompt records, an export record — is a *rider* that plugs in through
//! [`rider::Rider`]; the sinks (reports, export, snapshots) read what the core and the
//! riders aggregated through [`Core`]'s readers. Data flows one way:
//!
//! ```text
//! tracing callbacks -> core (clock, paths, span table + fast paths, per-thread stats)
//!                        |  rider bits and one word per span, hooks on the slow paths
//!                        v
//!                      riders (crate::riders: rng, gpu, llm) and the export sink
//!                        |  closed spans, per-path aggregates
//!                        v
//!                      sinks (crate::sinks: report, export)
//! ```
//!
//! Nothing here imports a rider or a sink; `modgraph.py` checks it.

pub(crate) mod clock;
pub(crate) mod layer;
pub(crate) mod padded;
pub(crate) mod paths;
pub(crate) mod rider;
pub(crate) mod say;
pub(crate) mod spans;
pub mod stats;
pub(crate) mod sync;

use std::sync::atomic::AtomicUsize;
use std::time::Duration;

use clock::Clock;
use paths::PathTable;
use say::Speaker;
use spans::Threads;
use stats::{Aggregate, PathStats};

/// What the core writes, shared with its readers.
pub(crate) struct Core {
    pub(crate) clock: Clock,
    pub(crate) paths: PathTable,
    pub(crate) threads: Threads,
    /// Spans alive that carry a rider bit in [`rider::Rider::ENTERS`]: while there are
    /// none, entering a span looks nothing up.
    pub(crate) entering: AtomicUsize,
    /// The dispatch the layer was registered with, for what riders say.
    pub(crate) speaker: Speaker,
}

impl Core {
    pub(crate) fn new(clock: Clock) -> Self {
        say::WARNING.register();
        Core {
            clock,
            paths: PathTable::default(),
            threads: Threads::default(),
            entering: AtomicUsize::new(0),
            speaker: Speaker::default(),
        }
    }

    /// Statistics of one path, written as in the report (`"epoch > forward"`); `None`
    /// until a span of that path has finished.
    pub(crate) fn get(&self, path: &str) -> Option<PathStats> {
        let names = paths::parse(path);
        let id = self.paths.find(&names)?;
        let (mut merged, mut scratch) = (Aggregate::default(), Aggregate::default());
        for thread in self.threads.iter() {
            thread.slots_stats.merge_path(id, &mut merged, &mut scratch);
        }
        if merged.calls == 0 {
            return None;
        }
        let entries = self.paths.entries();
        Some(PathStats::from_aggregate(
            paths::names(&entries, id),
            &merged,
            self.clock.scale(),
        ))
    }

    /// Every path with at least one finished call, in tree order.
    pub(crate) fn paths(&self) -> Vec<PathStats> {
        let entries = self.paths.entries();
        let mut merged: Vec<Aggregate> = Vec::new();
        let mut scratch = Aggregate::default();
        for thread in self.threads.iter() {
            thread.slots_stats.merge_all(&mut merged, &mut scratch);
        }
        let scale = self.clock.scale();
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

    /// The 99th percentile of path `id`'s finished calls; `None` before the first.
    pub(crate) fn p99(&self, id: paths::PathId) -> Option<Duration> {
        let (mut merged, mut scratch) = (Aggregate::default(), Aggregate::default());
        for thread in self.threads.iter() {
            thread.slots_stats.merge_path(id, &mut merged, &mut scratch);
        }
        (merged.calls > 0)
            .then(|| PathStats::from_aggregate(Vec::new(), &merged, self.clock.scale()).p99)
    }

    /// Spans closed without ever being entered (counted, not timed).
    pub(crate) fn spans_never_entered(&self) -> u64 {
        self.threads
            .iter()
            .map(|t| t.slots_stats.never_entered())
            .sum()
    }

    /// Time since the core was made.
    pub(crate) fn elapsed(&self) -> Duration {
        self.clock.elapsed()
    }
}
