//! Reading the reports a command is given: one clear message per bad input.
//!
//! Every command reads its inputs here, so every command refuses the same things the
//! same way — a missing file, a file that is not JSON, JSON cut off, JSON that is not
//! a spanlab report, a schema this version does not read (a `/1` is told what it
//! lacks), a report with no paths — each as one [`Failure`] that names the file and
//! exits with status 2. Nothing read from a file can make a command panic.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use spanlab::report::{Report, ReportError};

use crate::Failure;

/// A report read from a file, with what the library's [`Report`] does not keep.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The file it was read from.
    pub file: PathBuf,
    /// The report.
    pub report: Report,
    /// `Some(false)` for a snapshot written while the run was still going (the
    /// report's `final` key); `None` where the report does not say.
    pub is_final: Option<bool>,
    /// The per-input spread a `spanlab merge --json` wrote into the file, if any.
    pub spread: Option<serde_json::Value>,
    /// The report's `histogram_layout`, as written.
    pub layout: Option<String>,
}

impl Loaded {
    /// How the report is named in messages and columns: `rank 3` for a rank of a
    /// distributed job, otherwise its file name.
    pub fn name(&self) -> String {
        match self.report.runs.as_slice() {
            [run] if run.rank.is_some() => format!("rank {}", run.rank.unwrap_or_default()),
            _ => self.file.file_name().map_or_else(
                || self.file.display().to_string(),
                |n| n.to_string_lossy().into_owned(),
            ),
        }
    }

    /// A line for a snapshot, which a report made before the run ended is.
    pub fn snapshot_note(&self) -> Option<String> {
        (self.is_final == Some(false)).then(|| {
            format!(
                "note: {} is a snapshot written while the run was going, not its final report",
                self.file.display()
            )
        })
    }
}

/// The keys of a report this crate reads besides what [`Report::from_json`] reads.
#[derive(Deserialize)]
struct Extras {
    // Any JSON value: a key this crate only reads, written by another version, must not
    // make the report unreadable.
    #[serde(rename = "final")]
    is_final: Option<serde_json::Value>,
    spread: Option<serde_json::Value>,
    histogram_layout: Option<String>,
}

/// Reads the report in `file`; refuses, with one message naming the file, anything
/// that is not a spanlab report with at least one path.
pub fn load(file: &Path) -> Result<Loaded, Failure> {
    let text = std::fs::read_to_string(file).map_err(|e| {
        Failure::input(format!("cannot read {}: {}", file.display(), io_reason(&e)))
    })?;
    parse(file, &text)
}

/// [`load`] of text already read from `file`.
pub fn parse(file: &Path, text: &str) -> Result<Loaded, Failure> {
    let report = Report::from_json(text).map_err(|e| Failure::input(explain(file, &e)))?;
    if report.paths.is_empty() {
        return Err(Failure::input(format!(
            "{}: the report has no paths (no span was recorded in that run): nothing to show",
            file.display()
        )));
    }
    // The text parsed as a report just now, so it parses as this too.
    let extras: Extras = serde_json::from_str(text).unwrap_or(Extras {
        is_final: None,
        spread: None,
        histogram_layout: None,
    });
    Ok(Loaded {
        file: file.to_path_buf(),
        report,
        is_final: extras
            .is_final
            .as_ref()
            .and_then(serde_json::Value::as_bool),
        spread: extras.spread,
        layout: extras.histogram_layout,
    })
}

/// The library's reason, with the file named and, for a `/1`, what this command can't
/// do with it.
fn explain(file: &Path, error: &ReportError) -> String {
    let file = file.display();
    match error {
        ReportError::Version1 => format!(
            "{file}: {error}. spanlab show, merge, diff, flame and html all need them: \
             write the report again with this version (SPANLAB_REPORT_JSON)"
        ),
        _ => format!("{file}: {error}"),
    }
}

fn io_reason(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file".into(),
        std::io::ErrorKind::InvalidData => "it is not UTF-8 text (not a JSON report)".into(),
        _ => e.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_bad_input_names_its_file_and_what_it_is() {
        let f = Path::new("run.json");
        let cases = [
            ("", "run.json: not JSON"),
            ("hello", "run.json: not JSON"),
            (
                r#"{"schema": "spanlab.report/2", "paths": ["#,
                "run.json: the report ends early",
            ),
            (r#"{"name": "x"}"#, "run.json: not a spanlab report"),
            (
                r#"{"schema": "spanlab.report/9"}"#,
                "run.json: spanlab.report/9 is a spanlab report schema",
            ),
            (
                r#"{"schema": "spanlab.report/1"}"#,
                "run.json: a spanlab.report/1 has neither",
            ),
        ];
        for (text, want) in cases {
            let e = parse(f, text).unwrap_err();
            assert!(e.message.starts_with(want), "{text:?}: {}", e.message);
            assert_eq!(e.code, 2);
        }
        let e = parse(f, r#"{"schema": "spanlab.report/1"}"#).unwrap_err();
        assert!(
            e.message
                .contains("spanlab show, merge, diff, flame and html"),
            "{}",
            e.message
        );
        let e = load(Path::new("/nonexistent/run.json")).unwrap_err();
        assert_eq!(e.message, "cannot read /nonexistent/run.json: no such file");
    }
}
