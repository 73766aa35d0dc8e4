//! Runs a parsed command line: reads the inputs, calls the command, writes the output.

use std::path::Path;

use spanlab::report::TextOptions;

use crate::args::{Cli, Command};
use crate::diff::{Diff, DiffOptions};
use crate::flame::FlameOptions;
use crate::html::PageOptions;
use crate::input::{self, Loaded};
use crate::Failure;

/// What a command prints on standard output and its exit status (0, or 1 for a
/// `diff --fail` that found a regression, with its message for standard error).
#[derive(Debug, Default)]
pub struct Outcome {
    /// Standard output.
    pub stdout: String,
    /// Standard error (a note, a regression verdict).
    pub stderr: String,
    /// The exit status.
    pub code: u8,
}

/// Runs `cli`.
pub fn run(cli: Cli) -> Result<Outcome, Failure> {
    match cli.command {
        Command::Show {
            report,
            sort,
            top,
            min_share,
            path,
        } => {
            let loaded = input::load(&report)?;
            let options = TextOptions {
                sort: sort.into(),
                top,
                min_share_percent: min_share.unwrap_or(0.0),
                path_prefix: path,
            };
            Ok(Outcome {
                stdout: crate::show::text(&loaded, &options),
                ..Outcome::default()
            })
        }
        Command::Merge {
            reports,
            output,
            json,
        } => {
            let inputs = load_all(&reports)?;
            let merged = crate::merge::merge(&inputs)?;
            let mut out = Outcome {
                stderr: notes(&inputs),
                ..Outcome::default()
            };
            match &output {
                Some(file) => {
                    write(file, &merged.to_json(json))?;
                    out.stdout = format!(
                        "{}\n{}wrote {}{}\n",
                        merged.report.to_text(),
                        merged.spread_text(),
                        file.display(),
                        if json {
                            " (with the spread under \"spread\")"
                        } else {
                            ""
                        }
                    );
                }
                None if json => out.stdout = merged.to_json(true),
                None => {
                    out.stdout = format!("{}\n{}", merged.report.to_text(), merged.spread_text())
                }
            }
            Ok(out)
        }
        Command::Diff {
            base,
            new,
            threshold,
            noise,
            fail,
            json,
        } => {
            let (b, n) = (input::load(&base)?, input::load(&new)?);
            let options = DiffOptions {
                threshold_percent: threshold,
                noise_percent: noise,
            };
            let diff = Diff::compare(&b.report, &n.report, options);
            let (bn, nn) = (base.display().to_string(), new.display().to_string());
            let mut out = Outcome {
                stderr: notes(&[b, n]),
                ..Outcome::default()
            };
            out.stdout = if json {
                let mut text =
                    serde_json::to_string_pretty(&diff.to_json(&bn, &nn)).unwrap_or_default();
                text.push('\n');
                text
            } else {
                diff.to_text(&bn, &nn)
            };
            let regressions = diff.regressions();
            if fail && !regressions.is_empty() {
                let names: Vec<String> = regressions.iter().map(|c| c.path.join(" > ")).collect();
                out.stderr.push_str(&format!(
                    "spanlab diff: {} path(s) slower by more than {}% with p < {}: {}\n",
                    names.len(),
                    threshold,
                    crate::diff::ALPHA,
                    names.join(", ")
                ));
                out.code = 1;
            }
            Ok(out)
        }
        Command::Flame {
            input,
            output,
            icicle,
        } => {
            let folded = crate::flame::folded_of_file(&input)?;
            let svg = crate::flame::svg(
                &folded,
                &FlameOptions {
                    icicle,
                    ..FlameOptions::default()
                },
            )?;
            write(&output, &svg)?;
            Ok(Outcome {
                stdout: format!("wrote {}\n", output.display()),
                ..Outcome::default()
            })
        }
        Command::Html { reports, output } => {
            let inputs = load_all(&reports)?;
            let page = if let [one] = inputs.as_slice() {
                let options = PageOptions {
                    title: file_name(&one.file),
                    spread: one.spread.clone(),
                    note: one.snapshot_note(),
                };
                crate::html::page(&one.report, &options)?
            } else {
                let merged = crate::merge::merge(&inputs)?;
                let options = PageOptions {
                    title: format!("{} reports merged", inputs.len()),
                    spread: Some(merged.spread_json()),
                    note: None,
                };
                crate::html::page(&merged.report, &options)?
            };
            write(&output, &page)?;
            Ok(Outcome {
                stdout: format!("wrote {} ({} bytes)\n", output.display(), page.len()),
                stderr: notes(&inputs),
                code: 0,
            })
        }
    }
}

fn load_all(files: &[std::path::PathBuf]) -> Result<Vec<Loaded>, Failure> {
    files.iter().map(|f| input::load(f)).collect()
}

/// The snapshot notes of the inputs, one line each.
fn notes(inputs: &[Loaded]) -> String {
    inputs
        .iter()
        .filter_map(|l| l.snapshot_note())
        .map(|n| n + "\n")
        .collect()
}

fn file_name(file: &Path) -> String {
    file.file_name().map_or_else(
        || file.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

fn write(file: &Path, text: &str) -> Result<(), Failure> {
    std::fs::write(file, text)
        .map_err(|e| Failure::input(format!("cannot write {}: {e}", file.display())))
}
