//! Configuration: builder settings, overridden by `SPANLAB_*` environment variables.
//!
//! The builder sets a program's defaults; the environment overrides them, so one run
//! can be redirected without recompiling (`SPANLAB_REPORT=off cargo run ...`). An empty
//! or whitespace-only variable counts as unset.
//! [`Builder::ignore_env`](crate::Builder::ignore_env) turns the environment off —
//! these variables, the `OTEL_*` ones of export, `RUST_LOG`, and the launcher's `RANK`,
//! `LOCAL_RANK` and `WORLD_SIZE` that the report's [run](crate::report::RunInfo) records.
//!
//! | variable | values | default |
//! |---|---|---|
//! | `SPANLAB_REPORT` | `stderr`, `stdout`, `off`, or a file path | `stderr` |
//! | `SPANLAB_REPORT_JSON` | a file path | none |
//! | `SPANLAB_REPORT_FOLDED` | a file path | none |
//! | `SPANLAB_PROMPTS_JSONL` | a file path: every LLM record is appended as it happens | none |
//! | `SPANLAB_SEED` | the run's root seed, an unsigned 64-bit integer | from the OS |
//! | `SPANLAB_SNAPSHOT_INTERVAL` | a duration (`500ms`, `30s`, `5m`, `1h`; at least `10ms`) or `off`: how often the report files are rewritten during the run | `60s` with a report file, else `off` |
//! | `SPANLAB_STALL_FACTOR` | a positive number: an open span is stalled past this many times its path's p99 (and 10 s) | `100` |
//! | `SPANLAB_OPEN_SPAN_FIELDS` | `on` or `off`: record span fields for the list of open spans | `off` |
//!
//! Report paths may hold `{rank}`, `{local_rank}`, `{pid}` and `{host}`; under a
//! launcher's `RANK`, a path without them gets `.rank{N}` before its extension, so
//! ranks sharing a launch line never overwrite each other's files. A bad `RANK`,
//! `LOCAL_RANK` or `WORLD_SIZE` is named like any other value, and left out.
//!
//! A bad value never stops the program: it is reported once on stderr as a
//! [`ConfigError`] naming the variable and what it accepts, listed in the report's
//! warnings, and that one output is turned off (a bad `SPANLAB_SNAPSHOT_INTERVAL`
//! falls back to its default instead).

mod env;
pub(crate) mod process;
mod snapshot_interval;

use std::fmt;
use std::path::{Path, PathBuf};

pub(crate) use env::Env;
pub(crate) use process::Process;

/// Where the text report goes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum ReportTarget {
    /// Standard error (the default).
    #[default]
    Stderr,
    /// Standard output.
    Stdout,
    /// Nowhere.
    Off,
    /// A file, written atomically (temporary file, then rename).
    File(PathBuf),
}

impl ReportTarget {
    /// Parses a `SPANLAB_REPORT` value: a keyword, or a path. A path must contain a `/`
    /// or a `.` so that a misspelt keyword (`stdrr`) is an error, not a file.
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            "stderr" => Ok(ReportTarget::Stderr),
            "stdout" => Ok(ReportTarget::Stdout),
            "off" => Ok(ReportTarget::Off),
            v if v.contains(['/', '.', '\\']) => Ok(ReportTarget::File(PathBuf::from(v))),
            _ => Err(
                "expected `stderr`, `stdout`, `off`, or a file path (containing `/` or `.`)".into(),
            ),
        }
    }
}

/// A configuration value that was rejected; the program runs on without that setting.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfigError {
    source: String,
    value: String,
    problem: String,
}

impl ConfigError {
    pub(crate) fn new(
        source: impl Into<String>,
        value: impl Into<String>,
        problem: impl Into<String>,
    ) -> Self {
        ConfigError {
            source: source.into(),
            value: value.into(),
            problem: problem.into(),
        }
    }

    /// The environment variable (`SPANLAB_REPORT_JSON`) or builder method that was set.
    pub fn source_name(&self) -> &str {
        &self.source
    }

    /// The rejected value.
    pub fn value(&self) -> &str {
        &self.value
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}={:?}: {}", self.source, self.value, self.problem)
    }
}

impl std::error::Error for ConfigError {}

/// A file output and the setting it came from (for messages).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct FileOutput {
    pub(crate) path: PathBuf,
    pub(crate) source: &'static str,
}

/// What the builder was told, before the environment is applied.
#[derive(Clone, Debug, Default)]
pub(crate) struct Settings {
    pub(crate) text: Option<ReportTarget>,
    pub(crate) json: Option<PathBuf>,
    pub(crate) folded: Option<PathBuf>,
    pub(crate) prompts_jsonl: Option<PathBuf>,
    pub(crate) seed: Option<u64>,
    pub(crate) ignore_env: bool,
    /// `Some(None)`: snapshots asked off; `None`: not asked (the default applies).
    pub(crate) snapshot_interval: Option<Option<std::time::Duration>>,
}

/// Where the reports go, resolved and checked.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Outputs {
    pub(crate) text: ReportTarget,
    pub(crate) text_source: &'static str,
    pub(crate) json: Option<FileOutput>,
    pub(crate) folded: Option<FileOutput>,
    pub(crate) prompts_jsonl: Option<FileOutput>,
    /// How often the report files are rewritten during the run; `None`: only at exit.
    pub(crate) snapshot_interval: Option<std::time::Duration>,
}

/// Variable `var` read from `env` and parsed; `None` when it is unset or rejected (then
/// with an error naming it and its value, `parse`'s message as the problem).
pub(crate) fn parsed<T>(
    env: &Env,
    var: &'static str,
    parse: impl FnOnce(&str) -> Result<T, String>,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let value = env.get(var)?;
    parse(value)
        .map_err(|problem| errors.push(ConfigError::new(var, value, problem)))
        .ok()
}

/// Parses a variable's value as a positive integer (a count: batch sizes, queue
/// lengths, path caps); the error is the line's "expected ..." part.
pub(crate) fn parse_positive(value: &str) -> Result<usize, String> {
    match value.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a positive integer".into()),
    }
}

/// Applies the environment over the builder's settings and checks every path.
/// Rejected values are returned as errors and left out of the outputs.
pub(crate) fn resolve(
    settings: &Settings,
    env: &Env,
    process: &Process,
) -> (Outputs, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let (text, text_source) = text_target(settings, env, process, &mut errors);
    let mut outputs = Outputs {
        text,
        text_source,
        json: file_output(
            env,
            process,
            &settings.json,
            "Builder::report_json",
            "SPANLAB_REPORT_JSON",
            &mut errors,
        ),
        folded: file_output(
            env,
            process,
            &settings.folded,
            "Builder::report_folded",
            "SPANLAB_REPORT_FOLDED",
            &mut errors,
        ),
        prompts_jsonl: file_output(
            env,
            process,
            &settings.prompts_jsonl,
            "Builder::prompts_jsonl",
            "SPANLAB_PROMPTS_JSONL",
            &mut errors,
        ),
        snapshot_interval: None,
    };
    outputs.snapshot_interval =
        snapshot_interval::resolve(settings.snapshot_interval, env, &outputs, &mut errors);
    (outputs, errors)
}

/// The text report's target and the setting it came from. Unlike the files, the text
/// report falls back to stderr when its file is unusable rather than going silent.
fn text_target(
    settings: &Settings,
    env: &Env,
    process: &Process,
    errors: &mut Vec<ConfigError>,
) -> (ReportTarget, &'static str) {
    let mut text = settings.text.clone().unwrap_or_default();
    let mut source = "Builder::report_to";
    if let Some(value) = env.get("SPANLAB_REPORT") {
        match ReportTarget::parse(value) {
            Ok(t) => {
                text = t;
                source = "SPANLAB_REPORT";
            }
            Err(problem) => errors.push(ConfigError::new("SPANLAB_REPORT", value, problem)),
        }
    }
    let text = match text {
        ReportTarget::File(path) => match per_process_file(process, &path) {
            Ok(path) => ReportTarget::File(path),
            Err(problem) => {
                let value = path.display().to_string();
                errors.push(ConfigError::new(source, value, problem));
                ReportTarget::Stderr
            }
        },
        other => other,
    };
    (text, source)
}

/// A file output from variable `var`, else the builder's `method`; `None` when
/// neither is set or the path is unusable (then with an error naming the source).
fn file_output(
    env: &Env,
    process: &Process,
    builder: &Option<PathBuf>,
    method: &'static str,
    var: &'static str,
    errors: &mut Vec<ConfigError>,
) -> Option<FileOutput> {
    let (path, source) = match env.get(var) {
        Some(v) => (PathBuf::from(v), var),
        None => (builder.clone()?, method),
    };
    match per_process_file(process, &path) {
        Ok(path) => Some(FileOutput { path, source }),
        Err(problem) => {
            errors.push(ConfigError::new(
                source,
                path.display().to_string(),
                problem,
            ));
            None
        }
    }
}

/// `path` for this process (placeholders, rank suffix), checked.
fn per_process_file(process: &Process, path: &Path) -> Result<PathBuf, String> {
    let path = process.path(path)?;
    check_file_path(&path)?;
    Ok(path)
}

/// A report file's directory must exist and the path must not be a directory.
fn check_file_path(path: &Path) -> Result<(), String> {
    if path.file_name().is_none() || path.is_dir() {
        return Err("expected a file path, got a directory".into());
    }
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    if !dir.is_dir() {
        return Err(format!(
            "directory {} does not exist; expected a file path in an existing directory",
            dir.display()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `resolve` for the process these variables describe.
    fn resolve_here(settings: &Settings, env: &Env) -> (Outputs, Vec<ConfigError>) {
        let mut errors = Vec::new();
        let process = Process::of(env, &mut errors);
        let (outputs, more) = resolve(settings, env, &process);
        errors.extend(more);
        (outputs, errors)
    }

    #[test]
    fn defaults_to_stderr_only() {
        let (out, errors) = resolve_here(&Settings::default(), &Env::of(&[]));
        assert_eq!(out.text, ReportTarget::Stderr);
        assert_eq!((out.json, out.folded), (None, None));
        assert!(errors.is_empty());
    }

    #[test]
    fn environment_overrides_the_builder() {
        let dir = std::env::temp_dir();
        let json = dir.join("r.json").display().to_string();
        let settings = Settings {
            text: Some(ReportTarget::Off),
            json: Some(dir.join("b.json")),
            ..Default::default()
        };
        let vars = [
            ("SPANLAB_REPORT", "stdout"),
            ("SPANLAB_REPORT_JSON", json.as_str()),
        ];
        let (out, errors) = resolve_here(&settings, &Env::of(&vars));
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(out.text, ReportTarget::Stdout);
        assert_eq!(
            out.json.unwrap(),
            FileOutput {
                path: json.clone().into(),
                source: "SPANLAB_REPORT_JSON"
            }
        );
        // ...unless the environment is ignored, which the builder decides when it makes
        // the `Env`: `builder::tests::ignore_env_keeps_the_builders_settings`.
    }

    #[test]
    fn unknown_keyword_names_the_variable_and_what_it_accepts() {
        let (out, errors) = resolve_here(
            &Settings::default(),
            &Env::of(&[("SPANLAB_REPORT", "stdrr")]),
        );
        assert_eq!(out.text, ReportTarget::Stderr);
        let msg = errors[0].to_string();
        assert!(
            msg.starts_with("SPANLAB_REPORT=\"stdrr\": expected `stderr`, `stdout`, `off`"),
            "{msg}"
        );
    }

    #[test]
    fn missing_directory_disables_only_that_output() {
        let (out, errors) = resolve_here(
            &Settings::default(),
            &Env::of(&[
                ("SPANLAB_REPORT_JSON", "/no/such/dir/r.json"),
                ("SPANLAB_REPORT_FOLDED", "/tmp/spanlab.folded"),
            ]),
        );
        assert_eq!(out.json, None);
        assert_eq!(
            out.folded.unwrap().path,
            PathBuf::from("/tmp/spanlab.folded")
        );
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].source_name(), "SPANLAB_REPORT_JSON");
        assert!(
            errors[0]
                .to_string()
                .contains("directory /no/such/dir does not exist"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn a_directory_is_not_a_report_file() {
        let (_, errors) = resolve_here(
            &Settings::default(),
            &Env::of(&[("SPANLAB_REPORT", "/tmp/")]),
        );
        assert!(
            errors[0].to_string().contains("got a directory"),
            "{}",
            errors[0]
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        let (out, errors) = resolve_here(
            &Settings::default(),
            &Env::of(&[("SPANLAB_REPORT", " "), ("SPANLAB_REPORT_JSON", "")]),
        );
        assert!(errors.is_empty());
        assert_eq!((out.text, out.json), (ReportTarget::Stderr, None));
    }
}
