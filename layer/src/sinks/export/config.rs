//! Export settings: the builder's, overridden by the standard `OTEL_*` variables.
//!
//! As everywhere in spanlab, the environment wins over the builder (so a deployed job
//! can be pointed at another collector without a rebuild), an empty or whitespace-only
//! variable counts as unset, and [`Builder::ignore_env`](crate::Builder::ignore_env)
//! turns the environment off. A bad value is a [`ConfigError`] naming the variable; where it
//! would make export guess (endpoint, protocol, headers), export is turned off and the
//! program runs on.
//!
//! | variable | values | default |
//! |---|---|---|
//! | `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` | the full URL traces are sent to | none |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | base URL; HTTP appends `/v1/traces` | none: no export |
//! | `OTEL_EXPORTER_OTLP_(TRACES_)PROTOCOL` | `grpc`, `http/protobuf` | `http/protobuf` |
//! | `OTEL_EXPORTER_OTLP_(TRACES_)HEADERS` | `key=value,key2=value2` (values URL-encoded) | none |
//! | `OTEL_EXPORTER_OTLP_(TRACES_)TIMEOUT` | milliseconds per attempt | `10000` |
//! | `OTEL_SERVICE_NAME` | the `service.name` resource attribute | the executable's name |
//! | `OTEL_RESOURCE_ATTRIBUTES` | `key=value,...` added to the resource | none |
//! | `OTEL_SDK_DISABLED` | `true` turns export off | `false` |
//! | `OTEL_TRACES_EXPORTER` | `otlp`, or `none` to turn trace export off | `otlp` |
//! | `OTEL_TRACES_SAMPLER` | `always_on`, `always_off`, `traceidratio`, `parentbased_always_on`, `parentbased_always_off`, `parentbased_traceidratio` | `parentbased_always_on` |
//! | `OTEL_TRACES_SAMPLER_ARG` | the ratio for the `*traceidratio` samplers, 0 to 1 | `1.0` |
//! | `OTEL_BSP_MAX_QUEUE_SIZE` | spans waiting for export before new ones are dropped | `65536` |
//! | `OTEL_BSP_MAX_EXPORT_BATCH_SIZE` | spans per export request (also cut at ~2 MiB) | `2048` |
//! | `OTEL_BSP_SCHEDULE_DELAY` | milliseconds a partial batch waits | `1000` |
//! | `OTEL_BSP_MAX_CONCURRENT_EXPORTS` | export requests in flight at once | `4` |
//! | `OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT` | `true` exports prompt and response text | `false` |
//! | `SPANLAB_OTLP_FLUSH_TIMEOUT` | milliseconds the guard waits for the last answers (not at all for an unreachable receiver) | `5000` |
//! | `TRACEPARENT` | W3C trace context: the run's root spans join that trace | none |
//!
//! OTLP metrics (`sinks/metrics`) read the same transport variables, their
//! `_METRICS_` forms first (`resolve_metrics`).

use std::time::Duration;

use crate::config::{parse_positive, parsed, ConfigError, Env};

/// The OTLP transport.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// OTLP over gRPC (port 4317 by convention).
    Grpc,
    /// OTLP over HTTP with protobuf bodies (port 4318 by convention; the default, as
    /// the OTLP specification asks).
    HttpProtobuf,
}

impl Protocol {
    /// Parses an `OTEL_EXPORTER_OTLP_PROTOCOL` value.
    ///
    /// ```
    /// use spanlab::export::Protocol;
    /// assert_eq!(Protocol::parse("grpc"), Ok(Protocol::Grpc));
    /// assert!(Protocol::parse("http/json").is_err()); // not supported: says so
    /// ```
    pub fn parse(value: &str) -> Result<Self, String> {
        match value.trim() {
            "grpc" => Ok(Protocol::Grpc),
            "http/protobuf" => Ok(Protocol::HttpProtobuf),
            "http/json" => {
                Err("`http/json` is not supported; use `grpc` or `http/protobuf`".into())
            }
            _ => Err("expected `grpc` or `http/protobuf`".into()),
        }
    }

    /// `"grpc"` or `"http/protobuf"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Grpc => "grpc",
            Protocol::HttpProtobuf => "http/protobuf",
        }
    }
}

/// Which traces are exported. The decision is made once per trace, at its root span,
/// and every span below follows it, so a trace is exported whole or not at all.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Sampler {
    /// Every trace.
    AlwaysOn,
    /// No trace: nothing is exported (spans are still profiled).
    AlwaysOff,
    /// A fraction of traces, chosen by trace id (the same trace id always gets the
    /// same decision, in every process).
    TraceIdRatio(f64),
    /// Follow a parent from `TRACEPARENT` when there is one, else always on.
    ParentBasedAlwaysOn,
    /// Follow a parent from `TRACEPARENT` when there is one, else always off.
    ParentBasedAlwaysOff,
    /// Follow a parent from `TRACEPARENT` when there is one, else by ratio.
    ParentBasedTraceIdRatio(f64),
}

impl Sampler {
    /// Parses `OTEL_TRACES_SAMPLER` with its `OTEL_TRACES_SAMPLER_ARG`.
    ///
    /// ```
    /// use spanlab::export::Sampler;
    /// assert_eq!(
    ///     Sampler::parse("parentbased_traceidratio", Some("0.1")),
    ///     Ok(Sampler::ParentBasedTraceIdRatio(0.1))
    /// );
    /// assert!(Sampler::parse("traceidratio", Some("1.5")).is_err());
    /// ```
    pub fn parse(name: &str, arg: Option<&str>) -> Result<Self, String> {
        let ratio = || -> Result<f64, String> {
            match arg.map(str::trim) {
                None | Some("") => Ok(1.0),
                Some(a) => match a.parse::<f64>() {
                    Ok(r) if (0.0..=1.0).contains(&r) => Ok(r),
                    _ => Err(format!(
                        "OTEL_TRACES_SAMPLER_ARG={a:?}: expected a ratio from 0 to 1"
                    )),
                },
            }
        };
        Ok(match name.trim() {
            "always_on" => Sampler::AlwaysOn,
            "always_off" => Sampler::AlwaysOff,
            "traceidratio" => Sampler::TraceIdRatio(ratio()?),
            "parentbased_always_on" => Sampler::ParentBasedAlwaysOn,
            "parentbased_always_off" => Sampler::ParentBasedAlwaysOff,
            "parentbased_traceidratio" => Sampler::ParentBasedTraceIdRatio(ratio()?),
            _ => {
                return Err("expected `always_on`, `always_off`, `traceidratio`, \
                     `parentbased_always_on`, `parentbased_always_off` or \
                     `parentbased_traceidratio`"
                    .into())
            }
        })
    }

    /// The decision for a new trace's root span; `remote_sampled` is the sampled flag
    /// of a `TRACEPARENT` parent, when there is one.
    pub(crate) fn sample_root(self, trace_id: u128, remote_sampled: Option<bool>) -> bool {
        match (self, remote_sampled) {
            (
                Sampler::ParentBasedAlwaysOn
                | Sampler::ParentBasedAlwaysOff
                | Sampler::ParentBasedTraceIdRatio(_),
                Some(sampled),
            ) => sampled,
            (Sampler::AlwaysOn | Sampler::ParentBasedAlwaysOn, _) => true,
            (Sampler::AlwaysOff | Sampler::ParentBasedAlwaysOff, _) => false,
            (Sampler::TraceIdRatio(r) | Sampler::ParentBasedTraceIdRatio(r), _) => {
                ratio_selects(r, trace_id)
            }
        }
    }
}

/// The OpenTelemetry SDKs' rule: the trace id's low 64 bits, shifted right once, below
/// `ratio · 2⁶³`. Deterministic per trace id, so processes agree.
fn ratio_selects(ratio: f64, trace_id: u128) -> bool {
    let bound = (ratio.clamp(0.0, 1.0) * (1u64 << 63) as f64) as u64;
    ((trace_id as u64) >> 1) < bound
}

/// A parent from the W3C `TRACEPARENT` variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RemoteParent {
    /// The trace to join.
    pub trace_id: u128,
    /// The parent span, in another process.
    pub span_id: u64,
    /// Its sampled flag.
    pub sampled: bool,
}

impl RemoteParent {
    /// Parses a `traceparent` header value: `00-<32 hex>-<16 hex>-<2 hex>`.
    ///
    /// ```
    /// let parent = spanlab::export::RemoteParent::parse(
    ///     "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
    /// ).unwrap();
    /// assert_eq!(parent.span_id, 0xb7ad6b7169203331);
    /// assert!(parent.sampled);
    /// ```
    pub fn parse(value: &str) -> Result<Self, String> {
        const EXPECTED: &str = "expected `00-<32 hex trace id>-<16 hex span id>-<2 hex flags>`";
        let parts: Vec<&str> = value.trim().split('-').collect();
        let hex = |s: &str, len: usize| {
            (s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| u128::from_str_radix(s, 16).ok())
                .flatten()
        };
        let [version, trace, span, flags, ..] = parts[..] else {
            return Err(EXPECTED.into());
        };
        let (Some(version), Some(trace_id), Some(span_id), Some(flags)) = (
            hex(version, 2),
            hex(trace, 32),
            hex(span, 16),
            hex(flags, 2),
        ) else {
            return Err(EXPECTED.into());
        };
        // Version 00 has exactly four parts; later versions may append more.
        if version == 0xff || (version == 0 && parts.len() != 4) {
            return Err(EXPECTED.into());
        }
        if trace_id == 0 || span_id == 0 {
            return Err("the trace id and span id must not be all zeros".into());
        }
        Ok(RemoteParent {
            trace_id,
            span_id: span_id as u64,
            sampled: flags & 1 == 1,
        })
    }
}

/// The `traceparent` value: `00-<32 hex>-<16 hex>-<01 or 00>`, lowercase, as
/// [`RemoteParent::parse`] reads it back.
///
/// ```
/// let value = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
/// let parent = spanlab::export::RemoteParent::parse(value).unwrap();
/// assert_eq!(parent.to_string(), value);
/// ```
impl std::fmt::Display for RemoteParent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "00-{:032x}-{:016x}-{:02x}",
            self.trace_id, self.span_id, self.sampled as u8
        )
    }
}

/// What the builder said about export.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExportSettings {
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Option<Protocol>,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Option<Duration>,
    pub(crate) service_name: Option<String>,
    pub(crate) service_version: Option<String>,
    pub(crate) resource: Vec<(String, String)>,
    pub(crate) sampler: Option<Sampler>,
    pub(crate) queue_size: Option<usize>,
    pub(crate) batch_size: Option<usize>,
    pub(crate) schedule_delay: Option<Duration>,
    pub(crate) max_concurrent_exports: Option<usize>,
    pub(crate) flush_timeout: Option<Duration>,
    pub(crate) capture_content: Option<bool>,
    pub(crate) remote_parent: Option<RemoteParent>,
    pub(crate) disabled: bool,
    /// Set by `Builder::otlp_exporter`: export without an endpoint.
    pub(crate) has_custom_exporter: bool,
}

/// Where spans go and how; `None` endpoint with no custom exporter: export is off.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct ExportConfig {
    /// The URL requests go to (for HTTP, with `/v1/traces`).
    pub(crate) endpoint: Option<String>,
    pub(crate) protocol: Protocol,
    pub(crate) headers: Vec<(String, String)>,
    pub(crate) timeout: Duration,
    pub(crate) service_name: Option<String>,
    pub(crate) service_version: Option<String>,
    pub(crate) resource: Vec<(String, String)>,
    pub(crate) sampler: Sampler,
    pub(crate) remote_parent: Option<RemoteParent>,
    pub(crate) queue_size: usize,
    pub(crate) batch_size: usize,
    pub(crate) schedule_delay: Duration,
    /// Export requests in flight at once.
    pub(crate) max_concurrent_exports: usize,
    pub(crate) flush_timeout: Duration,
    pub(crate) capture_content: bool,
}

/// Defaults (see the module table).
pub(crate) const DEFAULT_QUEUE_SIZE: usize = 65_536;
/// Larger than the specification's 512: a request's fixed cost spread over more spans
/// is what lets one exporter thread sustain 200,000 spans/s on two cores
/// (`benches/export_throughput.rs`). Batches are also cut by size (`MAX_BATCH_BYTES`).
pub(crate) const DEFAULT_BATCH_SIZE: usize = 2048;
pub(crate) const DEFAULT_SCHEDULE_DELAY: Duration = Duration::from_millis(1000);
/// Four requests in flight: a receiver that takes a while to answer each request (but
/// answers several at once) is sent four batches per round trip instead of one, enough
/// for a run of ~13,000 spans (seven batches) to be answered in two round trips of up
/// to 2 s each within the default flush timeout. More would buy little from a receiver
/// that is slow because it is busy (its requests would only queue there, each closer to
/// its timeout, and a receiver that sheds load refuses them), and each batch in flight
/// holds its spans in memory (up to ~2 MiB of span text each). The SDK's own default,
/// 1, lets one slow answer cap the throughput.
pub(crate) const DEFAULT_MAX_CONCURRENT_EXPORTS: usize = 4;
pub(crate) const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
pub(crate) const DEFAULT_FLUSH_TIMEOUT: Duration = Duration::from_secs(5);

/// Applies the environment over the builder's settings. `None`: export is off (not
/// asked for, disabled, or misconfigured; the errors say which).
pub(crate) fn resolve(
    settings: &ExportSettings,
    env: &Env,
) -> (Option<ExportConfig>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let disabled = parsed(env, "OTEL_SDK_DISABLED", parse_bool, &mut errors).unwrap_or(false);
    let traces_on = parsed(
        env,
        "OTEL_TRACES_EXPORTER",
        parse_traces_exporter,
        &mut errors,
    )
    .unwrap_or(true);
    let mut config = from_builder(settings);
    let broken = apply_transport(&mut config, settings, env, &mut errors, Signal::Traces);
    apply_resource(&mut config, env, &mut errors);
    let sampler = parsed(
        env,
        "OTEL_TRACES_SAMPLER",
        |name| Sampler::parse(name, env.get("OTEL_TRACES_SAMPLER_ARG")),
        &mut errors,
    );
    if let Some(sampler) = sampler {
        config.sampler = sampler;
    }
    apply_batching(&mut config, env, &mut errors);
    if let Some(on) = parsed(
        env,
        "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
        parse_bool,
        &mut errors,
    ) {
        config.capture_content = on;
    }
    if let Some(parent) = parsed(env, "TRACEPARENT", RemoteParent::parse, &mut errors) {
        config.remote_parent = Some(parent);
    }
    let wanted = config.endpoint.is_some() || settings.has_custom_exporter;
    if disabled || settings.disabled || broken || !wanted || !traces_on {
        return (None, errors);
    }
    (Some(config), errors)
}

/// The builder's settings, with the defaults for what it left unset. The endpoint is
/// left out: it depends on the protocol, which the environment may still change.
fn from_builder(settings: &ExportSettings) -> ExportConfig {
    ExportConfig {
        endpoint: None,
        protocol: settings.protocol.unwrap_or(Protocol::HttpProtobuf),
        headers: settings.headers.clone(),
        timeout: settings.timeout.unwrap_or(DEFAULT_TIMEOUT),
        service_name: settings.service_name.clone(),
        service_version: settings.service_version.clone(),
        resource: settings.resource.clone(),
        sampler: settings.sampler.unwrap_or(Sampler::ParentBasedAlwaysOn),
        remote_parent: settings.remote_parent,
        queue_size: settings.queue_size.unwrap_or(DEFAULT_QUEUE_SIZE),
        batch_size: settings.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
        schedule_delay: settings.schedule_delay.unwrap_or(DEFAULT_SCHEDULE_DELAY),
        max_concurrent_exports: settings
            .max_concurrent_exports
            .unwrap_or(DEFAULT_MAX_CONCURRENT_EXPORTS),
        flush_timeout: settings.flush_timeout.unwrap_or(DEFAULT_FLUSH_TIMEOUT),
        capture_content: settings.capture_content.unwrap_or(false),
    }
}

/// Protocol, endpoint, headers and timeout. Returns whether the protocol, endpoint or
/// headers were rejected: sending anyway would mean guessing where or how, so export
/// stays off. A bad timeout only falls back to the default.
fn apply_transport(
    config: &mut ExportConfig,
    settings: &ExportSettings,
    env: &Env,
    errors: &mut Vec<ConfigError>,
    signal: Signal,
) -> bool {
    let vars = signal.vars();
    let rejected_before = errors.len();
    let protocol = pick(env, vars.protocol, "OTEL_EXPORTER_OTLP_PROTOCOL");
    if let Some(protocol) = parse_found(protocol, Protocol::parse, errors) {
        config.protocol = protocol;
    }
    config.endpoint = endpoint(config.protocol, settings, env, errors, signal);
    let headers = pick(env, vars.headers, "OTEL_EXPORTER_OTLP_HEADERS");
    for (k, v) in parse_found(headers, parse_pairs, errors).unwrap_or_default() {
        config.headers.retain(|(existing, _)| *existing != k);
        config.headers.push((k, v));
    }
    let broken = errors.len() > rejected_before;
    let timeout = pick(env, vars.timeout, "OTEL_EXPORTER_OTLP_TIMEOUT");
    if let Some(timeout) = parse_found(timeout, parse_millis, errors) {
        config.timeout = timeout;
    }
    broken
}

/// The URL requests go to, checked; `None` when none is set or it was rejected.
fn endpoint(
    protocol: Protocol,
    settings: &ExportSettings,
    env: &Env,
    errors: &mut Vec<ConfigError>,
    signal: Signal,
) -> Option<String> {
    let vars = signal.vars();
    let (value, source, full_url) = match pick(env, vars.endpoint, "OTEL_EXPORTER_OTLP_ENDPOINT") {
        Some((v, var)) => (v.to_string(), var, var == vars.endpoint),
        None => (settings.endpoint.clone()?, "Builder::otlp_endpoint", false),
    };
    if let Err(problem) = check_endpoint(&value) {
        errors.push(ConfigError::new(source, value, problem));
        return None;
    }
    Some(match protocol {
        // HTTP: a base URL gets the signal's path; a signal URL is used as is.
        Protocol::HttpProtobuf if !full_url => {
            format!("{}{}", value.trim_end_matches('/'), vars.path)
        }
        _ => value,
    })
}

/// What OTLP sends: the transport variables come in a form per signal
/// (`OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, …),
/// which wins over the general one.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Signal {
    Traces,
    Metrics,
}

/// A signal's own variables and HTTP path.
struct SignalVars {
    endpoint: &'static str,
    protocol: &'static str,
    headers: &'static str,
    timeout: &'static str,
    path: &'static str,
}

impl Signal {
    fn vars(self) -> SignalVars {
        match self {
            Signal::Traces => SignalVars {
                endpoint: "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                protocol: "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                headers: "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                timeout: "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                path: "/v1/traces",
            },
            Signal::Metrics => SignalVars {
                endpoint: "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                protocol: "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
                headers: "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                timeout: "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
                path: "/v1/metrics",
            },
        }
    }
}

/// The transport, resource and flush timeout of OTLP *metrics*: the builder's export
/// settings under the same variables as traces, their `_METRICS_` forms first (and
/// `/v1/metrics` appended to an HTTP base URL). The sampler, batching and
/// `OTEL_TRACES_EXPORTER` do not apply. `None`: no endpoint, or a rejected one.
pub(crate) fn resolve_metrics(
    settings: &ExportSettings,
    env: &Env,
) -> (Option<ExportConfig>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let mut config = from_builder(settings);
    let broken = apply_transport(&mut config, settings, env, &mut errors, Signal::Metrics);
    apply_resource(&mut config, env, &mut errors);
    if let Some(d) = parsed(env, "SPANLAB_OTLP_FLUSH_TIMEOUT", parse_millis, &mut errors) {
        config.flush_timeout = d;
    }
    if broken || config.endpoint.is_none() {
        return (None, errors);
    }
    (Some(config), errors)
}

/// The service name and extra resource attributes.
fn apply_resource(config: &mut ExportConfig, env: &Env, errors: &mut Vec<ConfigError>) {
    if let Some(name) = env.get("OTEL_SERVICE_NAME") {
        config.service_name = Some(name.to_string());
    }
    if let Some(pairs) = parsed(env, "OTEL_RESOURCE_ATTRIBUTES", parse_pairs, errors) {
        config.resource.extend(pairs);
    }
}

/// Queue and batch sizes, requests in flight, and how long batches and the final
/// flush wait.
fn apply_batching(config: &mut ExportConfig, env: &Env, errors: &mut Vec<ConfigError>) {
    for (var, target) in [
        ("OTEL_BSP_MAX_QUEUE_SIZE", &mut config.queue_size),
        ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", &mut config.batch_size),
        (
            "OTEL_BSP_MAX_CONCURRENT_EXPORTS",
            &mut config.max_concurrent_exports,
        ),
    ] {
        if let Some(n) = parsed(env, var, parse_positive, errors) {
            *target = n;
        }
    }
    config.batch_size = config.batch_size.min(config.queue_size);
    for (var, target) in [
        ("OTEL_BSP_SCHEDULE_DELAY", &mut config.schedule_delay),
        ("SPANLAB_OTLP_FLUSH_TIMEOUT", &mut config.flush_timeout),
    ] {
        if let Some(d) = parsed(env, var, parse_millis, errors) {
            *target = d;
        }
    }
}

/// The signal-specific variable, else the general one (the specification's order),
/// with the name of the one that was set.
fn pick<'e>(
    env: &'e Env,
    specific: &'static str,
    general: &'static str,
) -> Option<(&'e str, &'static str)> {
    env.get(specific)
        .map(|v| (v, specific))
        .or_else(|| env.get(general).map(|v| (v, general)))
}

/// A value found in variable `.1`, parsed, as [`parsed`].
fn parse_found<T>(
    found: Option<(&str, &'static str)>,
    parse: impl FnOnce(&str) -> Result<T, String>,
    errors: &mut Vec<ConfigError>,
) -> Option<T> {
    let (value, var) = found?;
    parse(value)
        .map_err(|problem| errors.push(ConfigError::new(var, value, problem)))
        .ok()
}

/// An endpoint must be an `http://` or `https://` URL with a host.
fn check_endpoint(value: &str) -> Result<(), String> {
    const EXPECTED: &str =
        "expected an `http://` or `https://` URL such as `http://localhost:4317`";
    let url = reqwest::Url::parse(value).map_err(|e| format!("{EXPECTED} ({e})"))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return Err(EXPECTED.into());
    }
    Ok(())
}

/// `key=value,key2=value2` with URL-encoded (percent-encoded) values, as the OTLP
/// exporter and resource variables are written. Spaces around items are ignored.
pub(crate) fn parse_pairs(value: &str) -> Result<Vec<(String, String)>, String> {
    let mut pairs = Vec::new();
    for item in value.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let Some((k, v)) = item.split_once('=') else {
            return Err(format!(
                "`{item}` is not `key=value`; expected `key=value` pairs separated by commas"
            ));
        };
        let key = percent_decode(k.trim())?;
        if key.is_empty() {
            return Err(format!("`{item}` has an empty key"));
        }
        pairs.push((key, percent_decode(v.trim())?));
    }
    Ok(pairs)
}

fn percent_decode(s: &str) -> Result<String, String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| format!("bad percent-encoding in `{s}`"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| format!("`{s}` does not decode to UTF-8"))
}

fn parse_millis(value: &str) -> Result<Duration, String> {
    value
        .trim()
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| "expected a whole number of milliseconds".into())
}

/// `OTEL_TRACES_EXPORTER`: whether traces are exported. The specification's value is
/// a comma-separated list of exporters; spanlab has one, `otlp`, and `none` alone
/// turns trace export off (the builder's custom exporter too: the environment wins).
fn parse_traces_exporter(value: &str) -> Result<bool, String> {
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    match items[..] {
        ["none"] => Ok(false),
        _ if items.iter().all(|i| *i == "otlp") => Ok(true),
        _ => Err("expected `otlp` or `none`".into()),
    }
}

fn parse_bool(value: &str) -> Result<bool, String> {
    match value.trim().to_ascii_lowercase().as_str() {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err("expected `true` or `false`".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_env(vars: &[(&str, &str)]) -> (Option<ExportConfig>, Vec<ConfigError>) {
        resolve(&ExportSettings::default(), &Env::of(vars))
    }

    #[test]
    fn no_endpoint_means_no_export() {
        let (config, errors) = resolve_env(&[("OTEL_SERVICE_NAME", "x")]);
        assert!(config.is_none());
        assert!(errors.is_empty());
    }

    #[test]
    fn traces_exporter_none_turns_export_off_and_an_unknown_value_is_named() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318");
        let (config, errors) = resolve_env(&[base, ("OTEL_TRACES_EXPORTER", "none")]);
        assert!(config.is_none());
        assert!(errors.is_empty());
        let (config, errors) = resolve_env(&[base, ("OTEL_TRACES_EXPORTER", "otlp")]);
        assert!(config.is_some());
        assert!(errors.is_empty());
        let (config, errors) = resolve_env(&[base, ("OTEL_TRACES_EXPORTER", "zipkin")]);
        assert!(config.is_some(), "an unknown value keeps the default (on)");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].source_name(), "OTEL_TRACES_EXPORTER");
    }

    #[test]
    fn metrics_read_their_own_variables_first_and_the_metrics_path() {
        let (config, errors) = resolve_metrics(
            &ExportSettings::default(),
            &Env::of(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
                ("OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", "250"),
                ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "999"),
                ("OTEL_TRACES_EXPORTER", "none"),
            ]),
        );
        assert!(errors.is_empty());
        let config = config.unwrap();
        assert_eq!(config.endpoint.as_deref(), Some("http://h:4318/v1/metrics"));
        assert_eq!(config.timeout, Duration::from_millis(250));
        let (config, _) = resolve_metrics(
            &ExportSettings::default(),
            &Env::of(&[
                ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "http://m:1/x"),
                ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
            ]),
        );
        let config = config.unwrap();
        assert_eq!(config.endpoint.as_deref(), Some("http://m:1/x"));
        assert_eq!(config.protocol, Protocol::Grpc);
        let (config, _) = resolve_metrics(&ExportSettings::default(), &Env::of(&[]));
        assert!(config.is_none());
    }

    #[test]
    fn http_base_endpoint_gets_the_traces_path_and_signal_endpoint_wins() {
        let (config, _) = resolve_env(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318/")]);
        let config = config.unwrap();
        assert_eq!(config.endpoint.as_deref(), Some("http://h:4318/v1/traces"));
        assert_eq!(config.protocol, Protocol::HttpProtobuf);

        let (config, _) = resolve_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "http://t:9/custom"),
        ]);
        assert_eq!(
            config.unwrap().endpoint.as_deref(),
            Some("http://t:9/custom")
        );

        let (config, _) = resolve_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "https://h:4317"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc"),
        ]);
        let config = config.unwrap();
        assert_eq!(config.endpoint.as_deref(), Some("https://h:4317"));
        assert_eq!(config.protocol, Protocol::Grpc);
    }

    #[test]
    fn bad_transport_values_name_the_variable_and_turn_export_off() {
        for (var, value) in [
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "localhost:4317"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "ftp://h:1"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "udp"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "=v"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "k=%zz"),
        ] {
            let mut vars = vec![("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318")];
            vars.retain(|(k, _)| *k != var);
            vars.push((var, value));
            let (config, errors) = resolve_env(&vars);
            assert!(config.is_none(), "{var}={value} must turn export off");
            assert_eq!(errors.len(), 1, "{var}={value}: {errors:?}");
            assert_eq!(errors[0].source_name(), var);
            assert_eq!(errors[0].value(), value);
        }
    }

    #[test]
    fn other_bad_values_are_reported_and_export_goes_on() {
        let (config, errors) = resolve_env(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318"),
            ("OTEL_EXPORTER_OTLP_TIMEOUT", "soon"),
            ("OTEL_TRACES_SAMPLER", "sometimes"),
            ("OTEL_BSP_MAX_QUEUE_SIZE", "0"),
            ("TRACEPARENT", "00-xyz"),
            (
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
                "maybe",
            ),
        ]);
        let config = config.expect("export stays on");
        assert_eq!(config.timeout, DEFAULT_TIMEOUT);
        assert_eq!(config.sampler, Sampler::ParentBasedAlwaysOn);
        assert_eq!(config.queue_size, DEFAULT_QUEUE_SIZE);
        let names: Vec<&str> = errors.iter().map(|e| e.source_name()).collect();
        assert_eq!(
            names,
            [
                "OTEL_EXPORTER_OTLP_TIMEOUT",
                "OTEL_TRACES_SAMPLER",
                "OTEL_BSP_MAX_QUEUE_SIZE",
                "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",
                "TRACEPARENT",
            ]
        );
    }

    #[test]
    fn disabled_wins_and_environment_overrides_the_builder() {
        let settings = ExportSettings {
            endpoint: Some("http://builder:4318".into()),
            service_name: Some("from-builder".into()),
            ..ExportSettings::default()
        };
        let (config, _) = resolve(&settings, &Env::of(&[("OTEL_SDK_DISABLED", "true")]));
        assert!(config.is_none());
        let (config, _) = resolve(
            &settings,
            &Env::of(&[
                ("OTEL_SERVICE_NAME", "from-env"),
                ("OTEL_EXPORTER_OTLP_HEADERS", "a=1,b=x%20y"),
                ("OTEL_RESOURCE_ATTRIBUTES", "team=ml, run=7"),
            ]),
        );
        let config = config.unwrap();
        assert_eq!(
            config.endpoint.as_deref(),
            Some("http://builder:4318/v1/traces")
        );
        assert_eq!(config.service_name.as_deref(), Some("from-env"));
        assert_eq!(
            config.headers,
            [("a".into(), "1".into()), ("b".into(), "x y".into())]
        );
        assert_eq!(
            config.resource,
            [("team".into(), "ml".into()), ("run".into(), "7".into())]
        );
    }

    #[test]
    fn requests_in_flight_come_from_the_environment_over_the_builder() {
        let base = ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318");
        let (config, _) = resolve_env(&[base]);
        assert_eq!(
            config.unwrap().max_concurrent_exports,
            DEFAULT_MAX_CONCURRENT_EXPORTS
        );
        let settings = ExportSettings {
            max_concurrent_exports: Some(2),
            ..ExportSettings::default()
        };
        let (config, _) = resolve(&settings, &Env::of(&[base]));
        assert_eq!(config.unwrap().max_concurrent_exports, 2);
        let (config, errors) = resolve(
            &settings,
            &Env::of(&[base, ("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "8")]),
        );
        assert_eq!(config.unwrap().max_concurrent_exports, 8);
        assert!(errors.is_empty());
        for bad in ["0", "many"] {
            let (config, errors) = resolve(
                &settings,
                &Env::of(&[base, ("OTEL_BSP_MAX_CONCURRENT_EXPORTS", bad)]),
            );
            assert_eq!(config.unwrap().max_concurrent_exports, 2, "{bad}");
            assert_eq!(errors.len(), 1);
            assert_eq!(errors[0].source_name(), "OTEL_BSP_MAX_CONCURRENT_EXPORTS");
        }
    }

    #[test]
    fn samplers_parse_and_decide() {
        assert_eq!(Sampler::parse("always_on", None), Ok(Sampler::AlwaysOn));
        assert_eq!(
            Sampler::parse("traceidratio", Some("0.25")),
            Ok(Sampler::TraceIdRatio(0.25))
        );
        assert!(Sampler::parse("traceidratio", Some("2")).is_err());
        assert!(Sampler::parse("traceidratio", Some("x")).is_err());
        // The ratio selects about that fraction of (well-spread) trace ids.
        let sampler = Sampler::TraceIdRatio(0.25);
        let mut state = 1u64;
        let chosen = (0..10_000)
            .filter(|_| {
                state = crate::riders::rng::splitmix64(&mut state);
                sampler.sample_root((state as u128) << 64 | state as u128, None)
            })
            .count();
        assert!((2_200..2_800).contains(&chosen), "{chosen}");
        // Parent-based samplers follow a remote parent; the others ignore it.
        assert!(!Sampler::ParentBasedAlwaysOn.sample_root(1, Some(false)));
        assert!(Sampler::ParentBasedAlwaysOff.sample_root(1, Some(true)));
        assert!(Sampler::AlwaysOn.sample_root(1, Some(false)));
        assert!(!Sampler::AlwaysOff.sample_root(1, Some(true)));
    }

    #[test]
    fn traceparent_parses_and_rejects() {
        let parent =
            RemoteParent::parse("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01").unwrap();
        assert_eq!(parent.trace_id, 0x0af7651916cd43dd8448eb211c80319c);
        assert_eq!(parent.span_id, 0xb7ad6b7169203331);
        assert!(parent.sampled);
        for bad in [
            "",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-0000000000000000-01",
            "ff-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
        ] {
            assert!(RemoteParent::parse(bad).is_err(), "{bad:?}");
        }
    }
}
