//! [`SpanLab::builder`]: the layer and its guard, configured.

// The builder's export options: the real ones with the `otlp` feature, else a
// zero-sized stand-in that plans no export.
#[cfg_attr(feature = "otlp", path = "export.rs")]
#[cfg_attr(not(feature = "otlp"), path = "no_export.rs")]
mod export;
mod metrics;

use std::fs::File;
use std::path::PathBuf;
use std::sync::Arc;

use crate::config::{self, ConfigError, Env, FileOutput, Outputs, ReportTarget, Settings};
use crate::core::clock::Clock;
use crate::guard::{print_stderr, Emitter, Guard};
use crate::lab;
use crate::layer::SpanLabLayer;
use crate::profile::Profile;
use crate::riders::gpu::{GpuConfig, GpuProbe};
use crate::riders::llm::{PromptBook, Redactor};
use crate::sinks::metrics::{Metrics, MetricsConfig, MetricsSettings, OtlpTarget};
use crate::sinks::report::RunInfo;

/// Entry point for configuring spanlab: `SpanLab::builder()`.
#[derive(Debug)]
#[non_exhaustive]
pub struct SpanLab;

impl SpanLab {
    /// A builder with the defaults: text report to stderr, no files, environment read.
    pub fn builder() -> Builder {
        Builder::default()
    }
}

/// Configures the layer and its report. Every setting has a default; `SPANLAB_*`
/// environment variables override the builder (see [`crate::config`]).
///
/// Compose your own subscriber with [`Builder::build`]:
///
/// ```
/// use tracing_subscriber::prelude::*;
///
/// let (spanlab_layer, guard) = spanlab::SpanLab::builder()
///     .report_to(spanlab::ReportTarget::Off)
///     .report_json(std::env::temp_dir().join("spanlab-doc-report.json"))
///     .build();
/// let subscriber = tracing_subscriber::registry()
///     .with(spanlab_layer.with_filter(tracing_subscriber::filter::LevelFilter::INFO));
/// tracing::subscriber::with_default(subscriber, || {
///     let _span = tracing::info_span!("train").entered();
/// });
/// drop(guard); // writes the JSON report
/// ```
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct Builder {
    settings: Settings,
    report_on_signal: bool,
    gpu: GpuConfig,
    prompts: PromptSettings,
    pub(crate) export: export::ExportOptions,
    metrics: MetricsSettings,
    open: OpenSettings,
}

/// The builder's open-span settings (`sinks::open`).
#[derive(Clone, Debug, Default)]
struct OpenSettings {
    fields: bool,
    stall_factor: Option<f64>,
}

/// The builder's prompt-record settings.
#[derive(Clone, Default)]
struct PromptSettings {
    redact: Option<Redactor>,
    size_cap: Option<usize>,
}

impl PromptSettings {
    /// The prompt book these settings describe, appending to `jsonl` when it is open.
    fn into_book(self, jsonl: Option<File>) -> PromptBook {
        let cap = self
            .size_cap
            .unwrap_or(crate::riders::llm::DEFAULT_SIZE_CAP);
        PromptBook::new(self.redact, cap, jsonl)
    }
}

impl std::fmt::Debug for PromptSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PromptSettings")
            .field("redact", &self.redact.as_ref().map(|_| "<fn>"))
            .field("size_cap", &self.size_cap)
            .finish()
    }
}

impl Builder {
    /// Where the text report goes (default [`ReportTarget::Stderr`]; `SPANLAB_REPORT`).
    pub fn report_to(mut self, target: ReportTarget) -> Self {
        self.settings.text = Some(target);
        self
    }

    /// Also write the JSON report to this file (`SPANLAB_REPORT_JSON`).
    pub fn report_json(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.json = Some(path.into());
        self
    }

    /// Also write folded stacks (flame graph input) to this file (`SPANLAB_REPORT_FOLDED`).
    pub fn report_folded(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.folded = Some(path.into());
        self
    }

    /// The run's root seed (`SPANLAB_SEED` overrides it): the unseeded streams of
    /// [`crate::rng()`] derive from it. Without either, a seed from the OS is used — and
    /// printed in the report with the line that replays the run.
    pub fn seed(mut self, seed: u64) -> Self {
        self.settings.seed = Some(seed);
        self
    }

    /// Measure GPU memory through this probe instead of detecting one (tests and
    /// simulations: [`SimulatedGpu`](crate::riders::gpu::SimulatedGpu); or a probe of your own).
    pub fn gpu_probe(mut self, probe: Arc<dyn GpuProbe>) -> Self {
        self.gpu.probe = Some(probe);
        self
    }

    /// Measure GPU memory for every span whose target starts with one of these (as if
    /// it had `gpu = true`; a span's own `gpu = false` still turns it off).
    pub fn gpu_for_targets<I: IntoIterator<Item = S>, S: Into<String>>(
        mut self,
        targets: I,
    ) -> Self {
        self.gpu.targets.extend(targets.into_iter().map(Into::into));
        self
    }

    /// Measure GPU memory for every span with one of these names.
    pub fn gpu_for_names<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.gpu.names.extend(names.into_iter().map(Into::into));
        self
    }

    /// Measure GPU memory for every span up to this depth (1: root spans only).
    pub fn gpu_up_to_depth(mut self, depth: u16) -> Self {
        self.gpu.max_depth = Some(depth);
        self
    }

    /// Synchronize the device before every GPU reading (default off; a span can ask
    /// with `gpu.sync = true`). Exact, but it stalls the device's queue.
    pub fn gpu_sync(mut self, on: bool) -> Self {
        self.gpu.sync = on;
        self
    }

    /// The devices to read, as CUDA ordinals (default: every visible device).
    pub fn gpu_devices(mut self, devices: impl IntoIterator<Item = usize>) -> Self {
        self.gpu.devices = devices.into_iter().collect();
        self
    }

    /// Also read the energy counter: joules per path; spans shorter than the counter's
    /// update period are counted as "below resolution" instead of reporting 0.
    pub fn gpu_energy(mut self, on: bool) -> Self {
        self.gpu.energy = on;
        self
    }

    /// Emit PyTorch's one-line summary (`[forward] GPU 0 Memory: delta=+256.0MB,
    /// current=..., peak=...`) as an INFO event at each measured span's exit.
    pub fn gpu_log(mut self, on: bool) -> Self {
        self.gpu.log = on;
        self
    }

    /// Append every LLM call record to this file as a JSON line, flushed as it happens
    /// (`SPANLAB_PROMPTS_JSONL`).
    pub fn prompts_jsonl(mut self, path: impl Into<PathBuf>) -> Self {
        self.settings.prompts_jsonl = Some(path.into());
        self
    }

    /// Applied to every prompt and response text before spanlab stores, writes or
    /// reports it (strip keys, e-mail addresses...).
    pub fn redact(mut self, redact: impl Fn(&str) -> String + Send + Sync + 'static) -> Self {
        self.prompts.redact = Some(Arc::new(redact));
        self
    }

    /// The most bytes kept of each prompt message and response (default 32 KiB); longer
    /// texts are cut on a character boundary and the cut is marked.
    pub fn prompt_size_cap(mut self, bytes: usize) -> Self {
        self.prompts.size_cap = Some(bytes);
        self
    }

    /// Ignore the environment: `SPANLAB_*` variables, and `RUST_LOG` in [`Builder::init`]
    /// (no `EnvFilter` is installed). Only the builder's settings apply.
    pub fn ignore_env(mut self) -> Self {
        self.settings.ignore_env = true;
        self
    }

    /// Write the report on SIGINT/SIGTERM too, then end the process as the signal
    /// would have (default off; Unix with the `signals` feature).
    pub fn report_on_signal(mut self, on: bool) -> Self {
        self.report_on_signal = on;
        self
    }

    /// How often the report files are rewritten during the run
    /// (`SPANLAB_SNAPSHOT_INTERVAL` overrides it): `Some(interval)`, at least 10 ms, or
    /// `None` for only at exit. Default: every 60 s when a report file is configured
    /// (JSON, folded, or the text report to a file), else only at exit.
    ///
    /// Each snapshot replaces every report file atomically with the report so far,
    /// marked `"final": false` and numbered (`"sequence"`), so a run that is killed
    /// still leaves a report at most one interval old; the guard's write at exit is
    /// marked `"final": true`. See [`crate::report::json`].
    ///
    /// ```
    /// use std::time::Duration;
    /// let dir = std::env::temp_dir();
    /// let (_layer, guard) = spanlab::SpanLab::builder()
    ///     .report_to(spanlab::ReportTarget::Off)
    ///     .report_json(dir.join("spanlab-doc-snapshots.json"))
    ///     .snapshot_interval(Some(Duration::from_secs(30)))
    ///     .build();
    /// drop(guard); // the final write: "final": true
    /// ```
    pub fn snapshot_interval(mut self, interval: Option<std::time::Duration>) -> Self {
        self.settings.snapshot_interval = Some(interval);
        self
    }

    /// Record the fields of open spans, for the reports' list of open spans (default
    /// off). Only spans whose callsite declares fields are affected: they take the
    /// layer's general paths, where each span's fields are formatted once into a
    /// preallocated per-thread table (at most 128 bytes each, 64 spans per thread).
    /// Spans without fields cost the same either way.
    ///
    /// ```
    /// let (_layer, _guard) = spanlab::SpanLab::builder()
    ///     .report_to(spanlab::ReportTarget::Off)
    ///     .open_span_fields(true)
    ///     .build();
    /// ```
    pub fn open_span_fields(mut self, on: bool) -> Self {
        self.open.fields = on;
        self
    }

    /// How many times its path's p99 a span may stay open (and at least 10 s) before
    /// the reports flag it as stalled and a WARN event says so, once (default 100;
    /// `SPANLAB_STALL_FACTOR` overrides it). A path with no finished call is never
    /// flagged. A value that is not a positive number is reported, and the default used.
    ///
    /// ```
    /// let (_layer, _guard) = spanlab::SpanLab::builder()
    ///     .report_to(spanlab::ReportTarget::Off)
    ///     .stall_factor(20.0)
    ///     .build();
    /// ```
    pub fn stall_factor(mut self, factor: f64) -> Self {
        self.open.stall_factor = Some(factor);
        self
    }

    /// The layer, to compose into your own subscriber, and the guard that writes the
    /// report when dropped. Rejected settings are printed once on stderr.
    pub fn build(self) -> (SpanLabLayer, Guard) {
        let env = self.environment(Env::process);
        let (layer, guard) = self.build_unarmed(&env);
        (layer, guard.arm())
    }

    /// [`Builder::build`] reading `env` instead of the process's environment (tests).
    #[cfg(test)]
    #[allow(dead_code)] // used by export's tests, which may be compiled out
    pub(crate) fn build_with_env(self, env: &Env) -> (SpanLabLayer, Guard) {
        let env = self.environment(|| env.clone());
        let (layer, guard) = self.build_unarmed(&env);
        (layer, guard.arm())
    }

    /// The environment this build reads: `read()`, or no variables at all after
    /// [`Builder::ignore_env`]. Decided once, here, so that no resolver (nor `RUST_LOG`)
    /// can forget the flag.
    fn environment(&self, read: impl FnOnce() -> Env) -> Env {
        if self.settings.ignore_env {
            Env::none()
        } else {
            read()
        }
    }

    /// Resolves every setting, environment over builder, then assembles. A rejected
    /// value costs one line on stderr naming its variable (or builder method), and
    /// that one setting is turned off.
    fn build_unarmed(self, env: &Env) -> (SpanLabLayer, UnarmedGuard) {
        let mut errors = Vec::new();
        let process = config::Process::of(env, &mut errors);
        let (outputs, rejected) = config::resolve(&self.settings, env, &process);
        errors.extend(rejected);
        errors.extend(fix_root_seed(self.settings.seed, env));
        let jsonl = open_prompts_jsonl(outputs.prompts_jsonl.as_ref(), &mut errors);
        let prompts = self.prompts.into_book(jsonl);
        let export = export::plan(&self.export, env, &mut errors);
        let (metrics, rejected) =
            crate::sinks::metrics::config::resolve(&self.metrics, env, &process);
        errors.extend(rejected);
        let metrics = metrics.map(|config| {
            let otlp = config
                .otlp
                .then(|| export::metrics_target(&self.export, env, &mut errors))
                .flatten();
            (config, otlp)
        });
        let (stall_factor, stall_errors) =
            crate::sinks::open::config::stall_factor(self.open.stall_factor, env);
        errors.extend(stall_errors);
        let (open_fields, field_errors) =
            crate::sinks::open::config::open_span_fields(self.open.fields, env);
        errors.extend(field_errors);
        // The report's run metadata (launcher ranks included): the same process.
        let run = RunInfo::start(&process);
        let (layer, guard) = assemble(
            self.gpu,
            prompts,
            outputs,
            errors,
            self.report_on_signal,
            export,
            run,
            metrics,
        );
        // Before any span: a callsite's interest in fields is asked once.
        layer.profile().configure_open(open_fields, stall_factor);
        (layer, guard)
    }

    /// Installs a global subscriber — the registry, an `EnvFilter` when `RUST_LOG` is
    /// set and the environment is not ignored (feature `env-filter`), and the spanlab
    /// layer — and returns the guard.
    ///
    /// Fails if a global subscriber is already installed; nothing is reported then.
    pub fn try_init(self) -> Result<Guard, InitError> {
        use tracing_subscriber::prelude::*;
        let env = self.environment(Env::process);
        let (layer, unarmed) = self.build_unarmed(&env);
        let subscriber = tracing_subscriber::registry()
            .with(env_filter(&env))
            .with(layer);
        match tracing::subscriber::set_global_default(subscriber) {
            Ok(()) => Ok(unarmed.arm()),
            Err(e) => {
                unarmed.emitter.disarm();
                Err(InitError(e.to_string()))
            }
        }
    }

    /// [`Builder::try_init`], panicking if a global subscriber is already installed
    /// (as `tracing_subscriber::fmt().init()` does).
    ///
    /// # Panics
    /// When a global subscriber was already set.
    pub fn init(self) -> Guard {
        self.try_init().unwrap_or_else(|e| panic!("spanlab: {e}"))
    }
}

/// A guard whose report and signal handling are not live yet.
struct UnarmedGuard {
    emitter: Arc<Emitter>,
    report_on_signal: bool,
}

impl UnarmedGuard {
    fn arm(self) -> Guard {
        Guard::new(self.emitter, self.report_on_signal)
    }
}

/// Fixes the run's root seed for the process: `SPANLAB_SEED`, else the builder's, else
/// one from the OS. Errors: a seed that does not parse, or one fixed differently before.
fn fix_root_seed(builder: Option<u64>, env: &Env) -> impl Iterator<Item = ConfigError> {
    let (wanted, seed_error) = crate::riders::rng::resolve_root(builder, env.get("SPANLAB_SEED"));
    let (_, fixed_error) = crate::riders::rng::fix_root(wanted);
    seed_error.into_iter().chain(fixed_error)
}

/// Opens the prompts JSONL file for appending. It is opened now, not at the first
/// record, so that a path that cannot be written is reported with the other settings.
fn open_prompts_jsonl(out: Option<&FileOutput>, errors: &mut Vec<ConfigError>) -> Option<File> {
    let out = out?;
    let file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&out.path);
    file.map_err(|e| {
        errors.push(ConfigError::new(
            out.source,
            out.path.display().to_string(),
            format!("cannot open for appending: {e}"),
        ));
    })
    .ok()
}

// ---------------------------------------------------------------------------------
// Assembly: the one place the profile data, the layer and the guard are built from
// resolved settings. Everything above only resolves; keep construction in here.
// ---------------------------------------------------------------------------------

/// Builds the core and the riders, starts export on the core's clock, prints the
/// rejected settings, and makes the layer and its guard (not armed yet).
// One argument per resolved part: the one place they all meet.
#[allow(clippy::too_many_arguments)]
fn assemble(
    gpu: GpuConfig,
    prompts: PromptBook,
    outputs: Outputs,
    mut errors: Vec<ConfigError>,
    report_on_signal: bool,
    export: Option<export::ExportPlan<'_>>,
    run: RunInfo,
    metrics: Option<(MetricsConfig, Option<OtlpTarget>)>,
) -> (SpanLabLayer, UnarmedGuard) {
    let clock = Clock::new();
    let export = export.map_or_else(Default::default, |plan| {
        plan.start(clock.clone(), &mut errors)
    });
    let lab = lab::assemble(clock, gpu, prompts, export);
    for e in &errors {
        print_stderr(&format!("spanlab: ignoring {e}\n"));
    }
    let run = Arc::new(run);
    let profile = Profile::from_assembly(lab.clone(), run.clone());
    let metrics = metrics.map(|(config, otlp)| {
        let reading = profile.clone();
        Metrics::start(&config, otlp, Arc::new(move || reading.report()))
    });
    let emitter = Arc::new(Emitter::new(profile, outputs, errors).with_metrics(metrics));
    (
        SpanLabLayer::new(lab, run),
        UnarmedGuard {
            emitter,
            report_on_signal,
        },
    )
}

/// The filter `RUST_LOG` asks for in `env`, if any; a value `EnvFilter` rejects costs
/// one line on stderr and no filter (spanlab still sees every span).
#[cfg(feature = "env-filter")]
fn env_filter(env: &Env) -> Option<tracing_subscriber::EnvFilter> {
    let value = env.get("RUST_LOG")?;
    match tracing_subscriber::EnvFilter::try_new(value) {
        Ok(filter) => Some(filter),
        Err(e) => {
            print_stderr(&format!(
                "spanlab: ignoring RUST_LOG={value:?}: {e}; no filter applied\n"
            ));
            None
        }
    }
}

#[cfg(not(feature = "env-filter"))]
fn env_filter(_env: &Env) -> Option<tracing_subscriber::layer::Identity> {
    None
}

/// Installing the global subscriber failed (one was already installed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InitError(String);

impl std::fmt::Display for InitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "cannot install the global subscriber: {}", self.0)
    }
}

impl std::error::Error for InitError {}

#[cfg(test)]
mod tests;
