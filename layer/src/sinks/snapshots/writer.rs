//! [`ReportWriter`]: the one code path that writes a report to the run's outputs, for
//! the snapshots and for the final write alike.
//!
//! A write stamps the report (`final`, `sequence`), adds what earlier writes could not
//! do, and replaces each configured file atomically. A failure is remembered per file:
//! its count and latest message go into every later report's warnings, and only its
//! first one is printed, so a disk that stays full costs one line on stderr, not one
//! per interval.

use std::fmt;
use std::io::Write as _;
use std::path::Path;
use std::sync::Mutex;

use crate::config::{Outputs, ReportTarget};
use crate::core::sync::LockUnpoisoned;
use crate::files::write_atomically;
use crate::sinks::report::Report;

/// Which write of the run's outputs this is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Stamp {
    /// A periodic snapshot, `"final": false`: files only (not stderr or stdout).
    Snapshot(u64),
    /// The guard's write at exit, `"final": true`: every output.
    Final(u64),
}

impl fmt::Display for Stamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stamp::Snapshot(n) => write!(f, "snapshot {n}"),
            Stamp::Final(n) => write!(f, "final report (write {n})"),
        }
    }
}

/// The report files, in the order they are written: the machine-readable ones first,
/// so that a failure to write one shows in the text report.
#[derive(Clone, Copy)]
enum File {
    Json = 0,
    Folded = 1,
    Text = 2,
}

/// Writes reports to the configured outputs and keeps count of what failed.
#[derive(Debug)]
pub(crate) struct ReportWriter {
    outputs: Outputs,
    log: Mutex<Log>,
}

#[derive(Debug, Default)]
struct Log {
    files: [FileLog; 3],
    /// Other problems of the snapshots (the thread could not start, or panicked).
    notes: Vec<String>,
}

#[derive(Debug, Default)]
struct FileLog {
    failures: u64,
    /// The latest failure's warning.
    last: Option<String>,
}

impl ReportWriter {
    pub(crate) fn new(outputs: Outputs) -> Self {
        ReportWriter {
            outputs,
            log: Mutex::new(Log::default()),
        }
    }

    /// Where the reports go.
    pub(crate) fn outputs(&self) -> &Outputs {
        &self.outputs
    }

    /// Whether any output is a file (snapshots have something to rewrite).
    pub(crate) fn has_files(&self) -> bool {
        let o = &self.outputs;
        o.json.is_some() || o.folded.is_some() || matches!(o.text, ReportTarget::File(_))
    }

    /// Adds `warning` to every later report (and prints it once, now).
    pub(crate) fn note(&self, warning: String) {
        print_stderr(&format!("spanlab: {warning}\n"));
        self.log.lock_unpoisoned().notes.push(warning);
    }

    /// Stamps `report` and writes it to every output `stamp` covers. The report keeps
    /// the warnings added here (earlier failures, and this write's).
    pub(crate) fn write(&self, report: &mut Report, stamp: Stamp) {
        let (is_final, sequence) = match stamp {
            Stamp::Snapshot(n) => (false, n),
            Stamp::Final(n) => (true, n),
        };
        (report.is_final, report.sequence) = (is_final, sequence);
        let mut log = self.log.lock_unpoisoned();
        let mut warnings = Warnings::of_earlier(report, &log);
        let files = [
            (
                File::Json,
                &self.outputs.json,
                Report::to_json as fn(&Report) -> String,
            ),
            (File::Folded, &self.outputs.folded, Report::to_folded),
        ];
        for (which, output, render) in files {
            let Some(output) = output else { continue };
            if let Err(e) = write_atomically(&output.path, render(report).as_bytes()) {
                let warning = log.failed(which, stamp, &output.path, output.source, &e, true);
                warnings.set(report, which, warning);
            }
        }
        let text = report.to_text();
        match (&self.outputs.text, stamp) {
            (ReportTarget::File(path), _) => {
                if let Err(e) = write_atomically(path, text.as_bytes()) {
                    let source = self.outputs.text_source;
                    // At exit the text would be lost: it goes to stderr instead, with
                    // the reason, which says all a separate line would.
                    let last = matches!(stamp, Stamp::Final(_));
                    log.failed(File::Text, stamp, path, source, &e, !last);
                    if last {
                        print_stderr(&format!(
                            "spanlab: could not write the report to {} ({e}); here it is:\n{text}",
                            path.display()
                        ));
                    }
                }
            }
            (ReportTarget::Stderr, Stamp::Final(_)) => print_stderr(&text),
            (ReportTarget::Stdout, Stamp::Final(_)) => {
                // Never panic here (this can run during unwinding): ignore a closed stdout.
                let mut out = std::io::stdout().lock();
                let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
            }
            // Snapshots rewrite files; a terminal gets the report once, at exit.
            _ => {}
        }
    }
}

impl Log {
    /// Counts a failed write of `which` and returns its warning, printed when asked
    /// and it is that file's first failure.
    fn failed(
        &mut self,
        which: File,
        stamp: Stamp,
        path: &Path,
        source: &str,
        error: &std::io::Error,
        announce: bool,
    ) -> String {
        let file = &mut self.files[which as usize];
        file.failures += 1;
        let n = file.failures;
        let warning = format!(
            "{stamp}: could not write {} ({source}): {error} ({n} failure{} so far)",
            path.display(),
            if n == 1 { "" } else { "s" }
        );
        if announce && n == 1 {
            print_stderr(&format!("spanlab: {warning}\n"));
        }
        file.last = Some(warning.clone());
        warning
    }
}

/// Where each file's failure stands in a report's warnings: one entry per file, its
/// latest, replaced when the same write fails again.
struct Warnings([Option<usize>; 3]);

impl Warnings {
    /// Adds to `report` the notes and each file's latest failure so far.
    fn of_earlier(report: &mut Report, log: &Log) -> Warnings {
        report.warnings.extend(log.notes.iter().cloned());
        let mut at = [None; 3];
        for (slot, file) in at.iter_mut().zip(&log.files) {
            if let Some(warning) = &file.last {
                *slot = Some(report.warnings.len());
                report.warnings.push(warning.clone());
            }
        }
        Warnings(at)
    }

    fn set(&mut self, report: &mut Report, which: File, warning: String) {
        match self.0[which as usize] {
            Some(i) => report.warnings[i] = warning,
            None => {
                self.0[which as usize] = Some(report.warnings.len());
                report.warnings.push(warning);
            }
        }
    }
}

/// `eprint!` panics when stderr is closed; a report must not.
fn print_stderr(s: &str) {
    let _ = std::io::stderr().lock().write_all(s.as_bytes());
}
