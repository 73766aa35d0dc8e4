//! The builder's export options (the `OTEL_*` variables override them; see
//! [`config`](super::config)).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::config::{ConfigError, Env};
use crate::core::clock::Clock;
use crate::core::sync::LockUnpoisoned;
use crate::sinks::export::config::{self, ExportConfig, ExportSettings, Protocol, Sampler};
use crate::sinks::export::{DynExporter, Export, ExportRider};
use crate::sinks::metrics::OtlpTarget;
use crate::Builder;

/// What the builder holds for export.
#[derive(Clone, Default)]
pub(crate) struct ExportOptions {
    pub(crate) settings: ExportSettings,
    /// `Builder::otlp_exporter`'s exporter, taken by the first `build`.
    pub(crate) custom: Option<CustomExporter>,
}

/// An exporter handed to the builder (which is `Clone`), taken once by `build`.
pub(crate) type CustomExporter = Arc<Mutex<Option<Box<dyn DynExporter>>>>;

impl std::fmt::Debug for ExportOptions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ExportOptions")
            .field("settings", &self.settings)
            .field("custom", &self.custom.as_ref().map(|_| "<exporter>"))
            .finish()
    }
}

impl ExportOptions {
    pub(crate) fn take_custom(&self) -> Option<Box<dyn DynExporter>> {
        self.custom
            .as_ref()
            .and_then(|c| c.lock_unpoisoned().take())
    }
}

/// Export, resolved but not started: starting needs the profile's clock, which only
/// exists once the profile data is assembled.
pub(crate) struct ExportPlan<'e> {
    config: ExportConfig,
    custom: Option<Box<dyn DynExporter>>,
    /// Read again at start, for the resource (`RANK` and the like).
    env: &'e Env,
}

/// Export's configuration, environment over builder; `None` when export is off (the
/// errors say why when it was asked for).
pub(crate) fn plan<'e>(
    options: &ExportOptions,
    env: &'e Env,
    errors: &mut Vec<ConfigError>,
) -> Option<ExportPlan<'e>> {
    let (config, rejected) = config::resolve(&options.settings, env);
    errors.extend(rejected);
    let config = config?;
    // The exporter can be taken once; a build whose export is off leaves it in place.
    let custom = options.take_custom();
    Some(ExportPlan {
        config,
        custom,
        env,
    })
}

impl ExportPlan<'_> {
    /// Starts the exporter thread; a failure is one more rejected setting and no export.
    pub(crate) fn start(self, clock: Clock, errors: &mut Vec<ConfigError>) -> ExportRider {
        let started = Export::start(&self.config, self.custom, clock, self.env);
        let started = started.map_err(|problem| {
            errors.push(ConfigError::new(
                "OTLP export",
                self.config.endpoint.clone().unwrap_or_default(),
                problem,
            ));
        });
        ExportRider(started.ok())
    }
}

/// Export options (feature `otlp`).
impl Builder {
    /// Exports finished spans over OTLP to `url`: `http://localhost:4317` for gRPC,
    /// `http://localhost:4318` for HTTP (which appends `/v1/traces`). The same as
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    ///
    /// ```no_run
    /// let _guard = spanlab::SpanLab::builder()
    ///     .otlp_endpoint("http://localhost:4317")
    ///     .otlp_protocol(spanlab::export::Protocol::Grpc)
    ///     .service_name("training")
    ///     .init();
    /// ```
    pub fn otlp_endpoint(mut self, url: impl Into<String>) -> Self {
        self.export.settings.endpoint = Some(url.into());
        self
    }

    /// The transport (default: HTTP/protobuf, as the OTLP specification says).
    pub fn otlp_protocol(mut self, protocol: Protocol) -> Self {
        self.export.settings.protocol = Some(protocol);
        self
    }

    /// A header (gRPC metadata) sent with every export request, e.g. an API key.
    pub fn otlp_header(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.export
            .settings
            .headers
            .push((key.into(), value.into()));
        self
    }

    /// How long one export request may take (default 10 s).
    pub fn otlp_timeout(mut self, timeout: Duration) -> Self {
        self.export.settings.timeout = Some(timeout);
        self
    }

    /// How long dropping the guard waits for the last spans to be answered (default
    /// 5 s; `SPANLAB_OTLP_FLUSH_TIMEOUT`). A receiver that every attempt since the last
    /// success failed to connect to is not waited for: the flush gives up on it at once.
    pub fn otlp_flush_timeout(mut self, timeout: Duration) -> Self {
        self.export.settings.flush_timeout = Some(timeout);
        self
    }

    /// Spans waiting for export before new ones are dropped (default 65,536).
    pub fn otlp_queue_size(mut self, spans: usize) -> Self {
        self.export.settings.queue_size = Some(spans.max(1));
        self
    }

    /// Spans per export request (default 2,048; a batch is also sent once it holds
    /// about 2 MiB).
    pub fn otlp_batch_size(mut self, spans: usize) -> Self {
        self.export.settings.batch_size = Some(spans.max(1));
        self
    }

    /// How long a partial batch waits before it is sent (default 1 s).
    pub fn otlp_schedule_delay(mut self, delay: Duration) -> Self {
        self.export.settings.schedule_delay = Some(delay);
        self
    }

    /// How many export requests may be in flight at once (default 4). With one, a
    /// receiver that takes a second to answer caps export at one batch a second; with
    /// more, its latency overlaps. An exporter given to
    /// [`otlp_exporter`](Self::otlp_exporter) is called with up to this many batches
    /// at once. The same as `OTEL_BSP_MAX_CONCURRENT_EXPORTS`.
    pub fn otlp_max_concurrent_exports(mut self, requests: usize) -> Self {
        self.export.settings.max_concurrent_exports = Some(requests.max(1));
        self
    }

    /// The `service.name` resource attribute (default: the executable's name).
    pub fn service_name(mut self, name: impl Into<String>) -> Self {
        self.export.settings.service_name = Some(name.into());
        self
    }

    /// The `service.version` resource attribute, e.g. `env!("CARGO_PKG_VERSION")`.
    pub fn service_version(mut self, version: impl Into<String>) -> Self {
        self.export.settings.service_version = Some(version.into());
        self
    }

    /// A resource attribute on every exported span (Phoenix reads its project from
    /// `openinference.project.name`).
    pub fn resource_attribute(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.export
            .settings
            .resource
            .push((key.into(), value.into()));
        self
    }

    /// Which traces are exported (default: [`Sampler::ParentBasedAlwaysOn`]).
    pub fn sampler(mut self, sampler: Sampler) -> Self {
        self.export.settings.sampler = Some(sampler);
        self
    }

    /// Exports prompt and response text of LLM calls (`gen_ai.input.messages`,
    /// `input.value`, …). Off by default: without it no prompt or response text leaves
    /// the process. The same as `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT`.
    pub fn capture_message_content(mut self, on: bool) -> Self {
        self.export.settings.capture_content = Some(on);
        self
    }

    /// Makes the run's root spans children of `parent`, a span in another process (the
    /// same as the `TRACEPARENT` variable, which wins when set).
    ///
    /// ```
    /// let parent = spanlab::export::RemoteParent::parse(
    ///     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    /// ).unwrap();
    /// let builder = spanlab::SpanLab::builder().parent_trace(parent);
    /// # drop(builder);
    /// ```
    pub fn parent_trace(mut self, parent: crate::sinks::export::RemoteParent) -> Self {
        self.export.settings.remote_parent = Some(parent);
        self
    }

    /// Turns export off whatever the environment says. (Live metrics are asked for on
    /// their own, with `OTEL_METRICS_EXPORTER` or the builder.)
    pub fn no_export(mut self) -> Self {
        self.export.settings.disabled = true;
        self
    }

    /// Sends the spans to any `opentelemetry_sdk` span exporter instead of OTLP (a file,
    /// stdout, a test's in-memory exporter). Export is then on without an endpoint;
    /// queueing, batching and accounting are the same, and so is concurrency: `export`
    /// may be called again before an earlier call's future is done (up to
    /// [`otlp_max_concurrent_exports`](Self::otlp_max_concurrent_exports) at once; 1 for
    /// one at a time).
    ///
    /// ```
    /// # use opentelemetry_sdk::{error::OTelSdkResult, trace::{SpanData, SpanExporter}};
    /// #[derive(Debug)]
    /// struct Print;
    /// impl SpanExporter for Print {
    ///     async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
    ///         for span in batch { println!("{} {:?}", span.name, span.end_time); }
    ///         Ok(())
    ///     }
    /// }
    /// let (layer, guard) = spanlab::SpanLab::builder().ignore_env().otlp_exporter(Print).build();
    /// # drop((layer, guard));
    /// ```
    pub fn otlp_exporter<E>(mut self, exporter: E) -> Self
    where
        E: opentelemetry_sdk::trace::SpanExporter + 'static,
    {
        self.export.custom = Some(Arc::new(Mutex::new(Some(Box::new(exporter)))));
        self.export.settings.has_custom_exporter = true;
        self
    }
}

/// Where OTLP metrics go: the export settings under the metrics variables. A value
/// traces rejected already is not named twice.
pub(crate) fn metrics_target(
    options: &ExportOptions,
    env: &Env,
    errors: &mut Vec<ConfigError>,
) -> Option<OtlpTarget> {
    let (config, rejected) = config::resolve_metrics(&options.settings, env);
    let any_rejected = !rejected.is_empty();
    for e in rejected {
        let named = errors
            .iter()
            .any(|x| x.source_name() == e.source_name() && x.value() == e.value());
        if !named {
            errors.push(e);
        }
    }
    if config.is_none() && !any_rejected {
        errors.push(ConfigError::new(
            "OTEL_METRICS_EXPORTER",
            "otlp",
            "OTLP metrics need an endpoint (OTEL_EXPORTER_OTLP_METRICS_ENDPOINT or \
             OTEL_EXPORTER_OTLP_ENDPOINT); no OTLP metrics",
        ));
    }
    Some(OtlpTarget::new(config?, env))
}
