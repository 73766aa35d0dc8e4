//! The [`Guard`]: keeps the run's report pending and writes it exactly once.
//!
//! The report is written when the guard is dropped — at the end of `main`, and also
//! while `main` unwinds from a panic — or, when the builder asked for it, when the
//! process receives SIGINT or SIGTERM. Whichever comes first writes it; the other
//! waits for that write to finish and does nothing more.

use std::io::Write;
use std::sync::{Arc, Once};

use crate::config::{ConfigError, Outputs, ReportTarget};
use crate::files::write_atomically;
use crate::profile::Profile;
use crate::sinks::metrics::Metrics;
use crate::sinks::report::Report;

/// Writes the report once, wherever the configuration says.
pub(crate) struct Emitter {
    profile: Profile,
    outputs: Outputs,
    config_errors: Vec<ConfigError>,
    once: Once,
    /// Live metrics, when on: stopped before the report, which gets their section.
    metrics: Option<Metrics>,
}

impl Emitter {
    pub(crate) fn new(profile: Profile, outputs: Outputs, config_errors: Vec<ConfigError>) -> Self {
        Emitter {
            profile,
            outputs,
            config_errors,
            once: Once::new(),
            metrics: None,
        }
    }

    /// The same emitter, with the run's live metrics.
    pub(crate) fn with_metrics(mut self, metrics: Option<Metrics>) -> Self {
        self.metrics = metrics;
        self
    }

    fn report(&self) -> Report {
        let mut report = self.profile.report();
        let config = self.config_errors.iter().map(ToString::to_string);
        report.warnings.splice(0..0, config);
        if let Some(metrics) = &self.metrics {
            report.metrics = Some(metrics.report());
            report.warnings.extend(metrics.warnings());
        }
        report
    }

    /// Writes the report unless it was written already (then returns once it is).
    pub(crate) fn emit_once(&self) {
        self.once.call_once(|| self.emit());
    }

    /// Marks the report as written without writing it (a guard that was never armed).
    pub(crate) fn disarm(&self) {
        self.once.call_once(|| ());
    }

    fn emit(&self) {
        self.profile.finish_export();
        if let Some(metrics) = &self.metrics {
            metrics.finish();
        }
        let mut report = self.report();
        // Files first, so that a failure to write one shows in the text report.
        for (file, render) in [
            (&self.outputs.json, Report::to_json as fn(&Report) -> String),
            (&self.outputs.folded, Report::to_folded),
        ] {
            if let Some(file) = file {
                if let Err(e) = write_atomically(&file.path, render(&report).as_bytes()) {
                    let warning = format!(
                        "could not write {} ({}={}): {e}",
                        file.source,
                        file.source,
                        file.path.display()
                    );
                    print_stderr(&format!("spanlab: {warning}\n"));
                    report.warnings.push(warning);
                }
            }
        }
        let text = report.to_text();
        match &self.outputs.text {
            ReportTarget::Off => {}
            ReportTarget::Stderr => print_stderr(&text),
            ReportTarget::Stdout => {
                // Never panic here (this can run during unwinding): ignore a closed stdout.
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            }
            ReportTarget::File(path) => {
                if let Err(e) = write_atomically(path, text.as_bytes()) {
                    print_stderr(&format!(
                        "spanlab: could not write the report to {} ({e}); here it is:\n{text}",
                        path.display()
                    ));
                }
            }
        }
    }
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
            .field("outputs", &self.emitter.outputs)
            .finish_non_exhaustive()
    }
}

impl Guard {
    pub(crate) fn new(emitter: Arc<Emitter>, report_on_signal: bool) -> Self {
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
