//! Live metrics: the run's exact per-path aggregates, exported while it runs.
//!
//! Traces answer "what did this one step do"; a long run also needs a dashboard that
//! answers "how is it going" — the p95 of `forward`, its call rate, GPU memory, tokens.
//! The profile already holds exact per-path histograms of every call, sampled for
//! tracing or not, so this sink exports those, in two ways:
//!
//! * **Prometheus** ([`server`]): `/metrics` in the text exposition format, served by a
//!   thread of its own (std's `TcpListener`, no extra dependency, no feature needed);
//! * **OTLP** (feature `otlp`): cumulative metrics pushed every interval, and once more
//!   when the guard is dropped.
//!
//! Both read a [`Report`] made on their own thread from the profile (the per-thread
//! accumulators merged by the reader, as every report is), turn it into a
//! [`model::Snapshot`] and render that. The span callbacks do nothing more with
//! metrics on than off: no hot-path code knows this sink exists.
//!
//! Metrics are off unless asked for ([`config`] lists the variables; the builder has
//! [`Builder::prometheus`](crate::Builder::prometheus)). A port that is taken or a
//! receiver that is down costs one warning on stderr and a count in the report's
//! metrics section ([`MetricsReport`]); the run goes on.

pub(crate) mod buckets;
pub(crate) mod config;
pub(crate) mod model;
#[cfg(feature = "otlp")]
pub(crate) mod otlp;
pub(crate) mod prometheus;
pub(crate) mod server;

use std::io::Write;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::core::sync::LockUnpoisoned;
use crate::sinks::report::{MetricsReport, Report};

pub(crate) use config::{MetricsConfig, MetricsSettings};
use model::{PathCap, Snapshot};
use server::Server;

// OTLP metrics with the `otlp` feature; without it, a target that is never made.
#[cfg(feature = "otlp")]
pub(crate) use otlp::OtlpTarget;
#[cfg(feature = "otlp")]
use otlp::Pusher;

/// Where OTLP metrics go: never made without the `otlp` feature.
#[cfg(not(feature = "otlp"))]
pub(crate) enum OtlpTarget {}
#[cfg(not(feature = "otlp"))]
enum Pusher {}
#[cfg(not(feature = "otlp"))]
impl Pusher {
    fn finish(&mut self) {
        match *self {}
    }
}

/// Makes a report of the run so far (the builder hands the profile's).
pub(crate) type ReportSource = Arc<dyn Fn() -> Report + Send + Sync>;

/// Makes the calling thread trace into nothing: what the metrics threads do must not
/// come back to the program's subscriber as spans.
pub(crate) fn quiet_thread() {
    std::mem::forget(tracing::dispatcher::set_default(&tracing::Dispatch::none()));
}

/// One line on stderr (never a panic, also with stderr closed).
fn warn(line: &str) {
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("spanlab: {line}\n").as_bytes());
}

/// What the exporters share: where snapshots come from, and the counts.
pub(crate) struct Shared {
    source: ReportSource,
    cap: Mutex<PathCap>,
    rank: Option<u64>,
    scrapes: AtomicU64,
    failed_scrapes: AtomicU64,
    otlp_exports: AtomicU64,
    otlp_failed_exports: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Warnings for the report (each also printed once).
    warnings: Mutex<Vec<String>>,
}

impl Shared {
    /// A snapshot of the run so far. The first time paths are folded, says so.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let report = (self.source)();
        let (snapshot, warning) = model::snapshot(&report, &mut self.cap.lock_unpoisoned());
        if let Some(warning) = warning {
            self.warning(warning);
        }
        snapshot
    }

    /// Prints `warning` and keeps it for the report.
    fn warning(&self, warning: String) {
        warn(&warning);
        self.warnings.lock_unpoisoned().push(warning);
    }

    /// Counts a failure and keeps its message; warns only for the first one, so that
    /// a receiver that stays down costs one line.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn failed(&self, error: String) {
        let first = self.otlp_failed_exports.fetch_add(1, Relaxed) == 0;
        if first {
            self.warning(format!(
                "metrics: OTLP export failed ({error}); counted in the report, the run goes on"
            ));
        }
        *self.last_error.lock_unpoisoned() = Some(error);
    }

    /// Counts an accepted export.
    #[cfg_attr(not(feature = "otlp"), allow(dead_code))]
    pub(crate) fn exported(&self) {
        self.otlp_exports.fetch_add(1, Relaxed);
    }
}

/// Live metrics, running.
pub(crate) struct Metrics {
    shared: Arc<Shared>,
    server: Mutex<Option<Server>>,
    /// `http://host:port/metrics`, when serving.
    prometheus: Option<String>,
    pusher: Mutex<Option<Pusher>>,
    /// Where OTLP metrics go, when they do.
    otlp: Option<String>,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics")
            .field("prometheus", &self.prometheus)
            .finish_non_exhaustive()
    }
}

impl Metrics {
    /// Starts the exporters `config` asks for, reading reports from `source`. One that
    /// cannot start (a port that is taken) is a warning; the others run.
    pub(crate) fn start(
        config: &MetricsConfig,
        otlp: Option<OtlpTarget>,
        source: ReportSource,
    ) -> Metrics {
        let shared = Arc::new(Shared {
            source,
            cap: Mutex::new(PathCap::new(config.max_paths)),
            rank: config.rank,
            scrapes: AtomicU64::new(0),
            failed_scrapes: AtomicU64::new(0),
            otlp_exports: AtomicU64::new(0),
            otlp_failed_exports: AtomicU64::new(0),
            last_error: Mutex::new(None),
            warnings: Mutex::new(Vec::new()),
        });
        let server = config
            .prometheus
            .as_ref()
            .and_then(|(host, port)| start_server(&shared, host, *port));
        let prometheus = server
            .as_ref()
            .map(|s| format!("http://{}/metrics", s.addr()));
        let (pusher, otlp) = match otlp {
            Some(target) => start_pusher(&shared, target, config),
            None => (None, None),
        };
        Metrics {
            shared,
            server: Mutex::new(server),
            prometheus,
            pusher: Mutex::new(pusher),
            otlp,
        }
    }

    /// The report's metrics section.
    pub(crate) fn report(&self) -> MetricsReport {
        let s = &self.shared;
        MetricsReport {
            prometheus: self.prometheus.clone(),
            scrapes: s.scrapes.load(Relaxed),
            failed_scrapes: s.failed_scrapes.load(Relaxed),
            otlp: self.otlp.clone(),
            otlp_exports: s.otlp_exports.load(Relaxed),
            otlp_failed_exports: s.otlp_failed_exports.load(Relaxed),
            last_error: s.last_error.lock_unpoisoned().clone(),
        }
    }

    /// Warnings so far, for the report.
    pub(crate) fn warnings(&self) -> Vec<String> {
        self.shared.warnings.lock_unpoisoned().clone()
    }

    /// The guard's drop: the last OTLP export (within the flush timeout), and the end
    /// of serving.
    pub(crate) fn finish(&self) {
        if let Some(mut pusher) = self.pusher.lock_unpoisoned().take() {
            pusher.finish();
        }
        if let Some(mut server) = self.server.lock_unpoisoned().take() {
            server.stop();
        }
    }
}

/// Starts pushing OTLP metrics; a failure is a warning, kept for the report.
#[cfg(feature = "otlp")]
fn start_pusher(
    shared: &Arc<Shared>,
    target: OtlpTarget,
    config: &MetricsConfig,
) -> (Option<Pusher>, Option<String>) {
    let described = target.describe();
    match Pusher::start(target, shared.clone(), config.interval) {
        Ok(pusher) => (Some(pusher), Some(described)),
        Err(e) => {
            shared.failed(e);
            (None, Some(described))
        }
    }
}

#[cfg(not(feature = "otlp"))]
fn start_pusher(
    _shared: &Arc<Shared>,
    target: OtlpTarget,
    _config: &MetricsConfig,
) -> (Option<Pusher>, Option<String>) {
    match target {}
}

/// Starts the Prometheus endpoint; a failure is a warning, kept for the report.
fn start_server(shared: &Arc<Shared>, host: &str, port: u16) -> Option<Server> {
    let rendering = shared.clone();
    let counting = shared.clone();
    let started = Server::start(
        host,
        port,
        Arc::new(move || prometheus::render(&rendering.snapshot(), rendering.rank)),
        Arc::new(move |ok| {
            let counter = if ok {
                &counting.scrapes
            } else {
                &counting.failed_scrapes
            };
            counter.fetch_add(1, Relaxed);
        }),
    );
    match started {
        Ok(server) => Some(server),
        Err(e) => {
            let error = format!(
                "metrics: cannot serve Prometheus on {host}:{port} ({e}); the run goes on \
                 without it (OTEL_EXPORTER_PROMETHEUS_HOST/_PORT)"
            );
            *shared.last_error.lock_unpoisoned() = Some(error.clone());
            shared.warning(error);
            None
        }
    }
}

#[cfg(test)]
mod tests;
