//! The [`Guard`]: keeps the run's report pending and writes it exactly once.
//!
//! The report is written when the guard is dropped — at the end of `main`, and also
//! while `main` unwinds from a panic — or, when the builder asked for it, when the
//! process receives SIGINT or SIGTERM. Whichever comes first writes it; the other
//! waits for that write to finish and does nothing more.
//!
//! Until then, when a snapshot interval is configured, a thread started with the armed
//! guard rewrites the report files every interval ([`crate::sinks::snapshots`]); the
//! final write stops it first, so no snapshot ever replaces the final report.

use std::io::Write;
use std::sync::{Arc, Once, OnceLock};

use crate::config::{ConfigError, Outputs};
use crate::profile::Profile;
use crate::sinks::metrics::Metrics;
use crate::sinks::report::Report;
use crate::sinks::snapshots::{ReportWriter, SnapshotRounds, Snapshotter, Stamp};

/// Writes the report once, wherever the configuration says — and, until then, the
/// periodic snapshots of the report files (see [`crate::sinks::snapshots`]).
pub(crate) struct Emitter {
    profile: Profile,
    writer: Arc<ReportWriter>,
    config_errors: Vec<ConfigError>,
    snapshots: OnceLock<Snapshotter>,
    once: Once,
    /// Live metrics, when on: stopped before the report, which gets their section (as
    /// does every snapshot).
    metrics: Option<Arc<Metrics>>,
}

impl Emitter {
    pub(crate) fn new(profile: Profile, outputs: Outputs, config_errors: Vec<ConfigError>) -> Self {
        Emitter {
            profile,
            writer: Arc::new(ReportWriter::new(outputs)),
            config_errors,
            snapshots: OnceLock::new(),
            once: Once::new(),
            metrics: None,
        }
    }

    /// The same emitter, with the run's live metrics.
    pub(crate) fn with_metrics(mut self, metrics: Option<Metrics>) -> Self {
        self.metrics = metrics.map(Arc::new);
        self
    }

    fn report(&self) -> Report {
        report_of(&self.profile, &self.config_errors, self.metrics.as_deref())
    }

    /// Writes the report unless it was written already (then returns once it is).
    pub(crate) fn emit_once(&self) {
        self.once.call_once(|| self.emit());
    }

    /// Marks the report as written without writing it (a guard that was never armed).
    pub(crate) fn disarm(&self) {
        self.once.call_once(|| ());
    }

    /// Starts the snapshot thread when an interval is configured. A thread that cannot
    /// start costs a warning; the report is still written at exit.
    fn start_snapshots(&self) {
        let Some(interval) = self.writer.outputs().snapshot_interval else {
            return;
        };
        let (profile, errors) = (self.profile.clone(), self.config_errors.clone());
        let metrics = self.metrics.clone();
        let watched = profile.clone();
        let rounds = SnapshotRounds::new(
            move || report_of(&profile, &errors, metrics.as_deref()),
            move || watched.watch_open_spans(),
            self.writer.clone(),
        );
        match Snapshotter::start(interval, rounds) {
            Ok(snapshots) => {
                let _ = self.snapshots.set(snapshots);
            }
            Err(e) => self.writer.note(format!(
                "cannot start the snapshot thread ({e}); the report files are written at exit only"
            )),
        }
    }

    /// Stops the snapshots, so that none lands after the final write; returns the
    /// final write's sequence number.
    fn stop_snapshots(&self) -> u64 {
        let Some(snapshots) = self.snapshots.get() else {
            return 1;
        };
        let stopped = snapshots.stop();
        if let Some(panic) = stopped.panic {
            self.writer.note(format!(
                "the snapshots stopped after snapshot {} (panic: {panic})",
                stopped.last_sequence
            ));
        }
        stopped.last_sequence + 1
    }

    fn emit(&self) {
        let sequence = self.stop_snapshots();
        self.profile.finish_export();
        if let Some(metrics) = &self.metrics {
            metrics.finish();
        }
        let mut report = self.report();
        self.writer.write(&mut report, Stamp::Final(sequence));
    }
}

/// The report of `profile` now, with the configuration's warnings first and the live
/// metrics' section when they are on.
fn report_of(
    profile: &Profile,
    config_errors: &[ConfigError],
    metrics: Option<&Metrics>,
) -> Report {
    let mut report = profile.report();
    let config = config_errors.iter().map(ToString::to_string);
    report.warnings.splice(0..0, config);
    if let Some(metrics) = metrics {
        report.metrics = Some(metrics.report());
        report.warnings.extend(metrics.warnings());
    }
    report
}

/// `eprint!` panics when stderr is closed; a report must not.
pub(crate) fn print_stderr(s: &str) {
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}

/// Keeps the run's report pending; dropping it writes the report.
///
/// Returned by [`crate::init`] and [`crate::Builder::build`]. Keep it alive for as long
/// as the program runs (`let _guard = spanlab::init();` — not `let _ = ...`, which
/// drops it at once).
#[must_use = "dropping the guard writes the report immediately"]
pub struct Guard {
    emitter: Arc<Emitter>,
    #[cfg(all(unix, feature = "signals"))]
    _signals: Option<crate::signals::SignalWatcher>,
}

impl std::fmt::Debug for Guard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Guard")
            .field("outputs", self.emitter.writer.outputs())
            .finish_non_exhaustive()
    }
}

impl Guard {
    pub(crate) fn new(emitter: Arc<Emitter>, report_on_signal: bool) -> Self {
        emitter.start_snapshots();
        #[cfg(all(unix, feature = "signals"))]
        let _signals = if report_on_signal {
            let watched = emitter.clone();
            match crate::signals::SignalWatcher::start(Arc::new(move || watched.emit_once())) {
                Ok(w) => Some(w),
                Err(e) => {
                    print_stderr(&format!("spanlab: cannot watch SIGINT/SIGTERM ({e}); the report is written at exit only\n"));
                    None
                }
            }
        } else {
            None
        };
        #[cfg(not(all(unix, feature = "signals")))]
        if report_on_signal {
            print_stderr("spanlab: report_on_signal needs a Unix target and the `signals` feature; ignored\n");
        }
        Guard {
            emitter,
            #[cfg(all(unix, feature = "signals"))]
            _signals,
        }
    }

    /// The live statistics (see [`Profile`]).
    pub fn profile(&self) -> Profile {
        self.emitter.profile.clone()
    }

    /// The report as it would be written now, configuration warnings included.
    pub fn report(&self) -> Report {
        self.emitter.report()
    }

    /// Configuration values that were rejected (each was also printed once on stderr).
    pub fn config_errors(&self) -> &[ConfigError] {
        &self.emitter.config_errors
    }
}

impl Drop for Guard {
    fn drop(&mut self) {
        self.emitter.emit_once();
    }
}
