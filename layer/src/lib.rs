//! Ordinary [`tracing`] spans as the context managers of scientific code.
//!
//! Wrap `epoch`, `forward`, `backward` in spans — or put `#[instrument]` on the
//! functions — and spanlab measures what happens between entering and leaving each one:
//! per span path ("epoch > forward") it keeps calls, total, mean, standard deviation,
//! min/max, p50/p95/p99, self time, busy/idle time, failed calls and panics, and prints
//! a report when the run ends.
//!
//! ```
//! use tracing::instrument;
//!
//! #[instrument]
//! fn forward(x: f64) -> f64 { x.tanh() }
//!
//! // `init()` installs a global subscriber; its guard prints the report when dropped.
//! // (Here the report goes nowhere, to keep the doctest quiet.)
//! let guard = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).init();
//! for epoch in 0..3 {
//!     let _epoch = tracing::info_span!("epoch", epoch).entered();
//!     forward(epoch as f64);
//! }
//! let stats = guard.profile().get("epoch > forward").unwrap();
//! assert_eq!(stats.calls, 3);
//! println!("{}", guard.report());
//! ```
//!
//! # Pieces
//!
//! * [`init`] / [`SpanLab::builder`]: install spanlab, or get the [`SpanLabLayer`] to
//!   compose into your own subscriber (other layers, per-layer filters).
//! * [`Guard`]: writes the report when dropped — also when `main` unwinds from a panic,
//!   and on SIGINT/SIGTERM with [`Builder::report_on_signal`].
//! * [`Profile`]: the live statistics, queryable at any time.
//! * [`Report`]: text, JSON ([`report::json`] documents the schema) and folded stacks;
//!   [`Report::from_json`] reads a JSON report back and [`Report::merge`] adds reports
//!   (the ranks of a distributed job) into the report of all their calls.
//! * [`rng()`]: the ambient random generator; a span with a `seed = N` field is a
//!   seeded scope that restores the outer stream on exit ([`rng`](mod@rng) module).
//! * [`gpu`]: GPU memory deltas, nested peaks and energy for spans with `gpu = true`
//!   (features `cuda`, `nvml`; a simulated probe for tests).
//! * [`llm`]: prompt/response records of LLM calls, and [`llm::PromptRecorder`].
//! * [`Builder::snapshot_interval`]: the report files rewritten during the run, so a
//!   killed job leaves a report; every report lists the spans open at that moment and
//!   flags stalls ([`report::OpenThread`]).
//! * [`export::current_traceparent`] (feature `otlp`): the W3C `traceparent` to hand to
//!   child processes, so a job's ranks are one trace.
//! * [`Builder::prometheus`] and OTLP metrics: exact per-path histograms and counters,
//!   live, for dashboards.
//! * [`config`]: the `SPANLAB_*` environment variables.
//!
//! # How the crate is built
//!
//! One way through, and the folders say which part is which:
//!
//! ```text
//! tracing callbacks -> core/    clock, paths, span table + fast paths, per-thread stats
//!                        |      rider bits and one word per span (core::rider)
//!                        v
//!                      riders/  rng (seeded scopes), gpu (memory, energy), llm (prompts)
//!                        |      closed spans and aggregates, through the core's readers
//!                        v
//!                      sinks/   report (text, JSON, folded), snapshots (the report files
//!                               rewritten during the run), open (open spans, stalls),
//!                               export (OTLP traces), metrics (live: Prometheus, OTLP)
//! ```
//!
//! * `core/` names no rider and no sink. Everything a span carries besides its timing
//!   plugs in through one internal interface, the rider: hooks on the callbacks'
//!   general paths, bits that tell the fast paths to step aside, one opaque word per
//!   span for the one rider that keeps a pointer there (export's record).
//! * `lab.rs` registers the riders, in the order their hooks run, and is the one
//!   place where an optional sink (the `otlp` feature) is switched for a zero-sized
//!   stand-in. A new rider is its own folder plus one entry there.
//! * `layer.rs` is the [`SpanLabLayer`] a program installs; `builder/`, `config/`,
//!   `guard.rs`, `profile.rs` and `signals.rs` configure it and read it out.
//!
//! # Cost
//!
//! The layer reads a TSC clock once at enter and once at exit, keeps a span's state in
//! a table owned by the thread that created it (a registry extension only when the span
//! moves to another thread), and records each finished span into a per-thread
//! accumulator with plain stores: no global lock and, after warm-up, no allocation.
//! `layer/benches/overhead.rs` compares it with a bare registry and a naive profiler;
//! `layer/benches/README.md` has the figures.

#![deny(missing_docs)]
#![warn(rust_2018_idioms, unreachable_pub)]

mod builder;
pub mod config;
mod core;
mod decimal;
mod files;
mod guard;
mod lab;
mod layer;
mod profile;
mod riders;
#[cfg(all(unix, feature = "signals"))]
mod signals;
mod sinks;
#[cfg(test)]
mod test_support;

pub use crate::core::stats;
pub use riders::{gpu, llm, rng};
#[cfg(feature = "otlp")]
pub use sinks::export;
pub use sinks::report;

pub use crate::core::stats::PathStats;
pub use builder::{Builder, InitError, SpanLab};
pub use config::{ConfigError, ReportTarget};
pub use guard::Guard;
pub use layer::SpanLabLayer;
pub use profile::Profile;
pub use report::{ExportReport, FlushOutcome, Report};
pub use rng::{rng, SeededRng};

/// Installs spanlab as the global subscriber, configured from the environment, and
/// returns the guard that writes the report when dropped.
///
/// Equivalent to `SpanLab::builder().init()`: the registry, an `EnvFilter` when
/// `RUST_LOG` is set, and the spanlab layer.
///
/// ```no_run
/// let _guard = spanlab::init(); // keep it until the end of main
/// ```
///
/// # Panics
/// When a global subscriber is already installed; use [`try_init`] to get an error.
pub fn init() -> Guard {
    SpanLab::builder().init()
}

/// [`init`], returning an error instead of panicking when a global subscriber is
/// already installed.
pub fn try_init() -> Result<Guard, InitError> {
    SpanLab::builder().try_init()
}
