//! Turning spanlab's records into OpenTelemetry's `SpanData`, and the run's resource.
//!
//! Runs on the exporter thread only: every allocation OTLP needs (owned keys, strings,
//! events) happens here, not in the program's threads.

use std::borrow::Cow;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry::trace::{
    Event, Link, SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue, Value};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanLinks};
use opentelemetry_sdk::Resource;

use super::config::ExportConfig;
use super::span::{AttrValue, ExportSpan, Failure, Rare};
use crate::config::Env;
use crate::core::clock::Clock;

/// Span attribute names spanlab adds to every exported span.
pub mod attributes {
    /// Time the span was entered, nanoseconds (async spans: the sum over polls): the
    /// report's busy time.
    pub const BUSY_NS: &str = "spanlab.busy_ns";
    /// Time between the span's first enter and its last exit while not entered,
    /// nanoseconds (async spans: the time awaiting between polls): the report's idle
    /// time. 0 for a span entered once, and for one never entered.
    ///
    /// `BUSY_NS + IDLE_NS` is the report's call duration, first enter to last exit. The
    /// exported span itself runs from the span's creation to its last exit (to its close
    /// if never entered), so its duration less that is the time from creation to first
    /// enter, which neither counts.
    pub const IDLE_NS: &str = "spanlab.idle_ns";
}

/// Converts records with the run's clock, scope and resource.
pub(crate) struct Converter {
    clock: Clock,
    scope: InstrumentationScope,
    resource: Resource,
    /// The `TRACEPARENT` parent's span id: a span with this parent has a remote parent.
    /// (Span ids are random 64-bit numbers: that a local parent has the same id is a
    /// chance of 2^-64 per span.)
    remote_parent: Option<u64>,
    /// `code.function` per callsite (`module::name`), made once and shared.
    functions: std::collections::HashMap<usize, Value, PointerHash>,
}

/// Hashes a callsite's address by itself: addresses are distinct, and SipHash would
/// cost more than the rest of the lookup.
#[derive(Default)]
struct PointerHash;

impl std::hash::BuildHasher for PointerHash {
    type Hasher = PointerHasher;
    fn build_hasher(&self) -> PointerHasher {
        PointerHasher(0)
    }
}

struct PointerHasher(u64);

impl std::hash::Hasher for PointerHasher {
    fn finish(&self) -> u64 {
        // Metadata is 8-aligned: drop the always-zero bits, spread the rest.
        (self.0 >> 3).wrapping_mul(0x9E37_79B9_7F4A_7C15)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0 << 8 | u64::from(b);
        }
    }
    fn write_usize(&mut self, n: usize) {
        self.0 = n as u64;
    }
}

impl Converter {
    pub(crate) fn new(clock: Clock, resource: Resource, remote_parent: Option<u64>) -> Self {
        Converter {
            clock,
            remote_parent,
            scope: InstrumentationScope::builder("spanlab")
                .with_version(env!("CARGO_PKG_VERSION"))
                .build(),
            resource,
            functions: std::collections::HashMap::default(),
        }
    }

    /// `module::name` of a callsite: built once, then a reference-count increment.
    fn function(&mut self, meta: &'static tracing_core::Metadata<'static>) -> Value {
        let key = meta as *const _ as usize;
        self.functions
            .entry(key)
            .or_insert_with(|| {
                let name: std::sync::Arc<str> = match meta.module_path() {
                    Some(module) => format!("{module}::{}", meta.name()).into(),
                    None => meta.name().into(),
                };
                Value::String(name.into())
            })
            .clone()
    }

    pub(crate) fn resource(&self) -> &Resource {
        &self.resource
    }

    fn time(&self, ticks: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_nanos(self.clock.unix_nanos(ticks))
    }

    /// The record's `SpanData`. The record is only read: it goes back to its thread
    /// for reuse, and what it owns is freed there.
    pub(crate) fn convert(&mut self, span: &ExportSpan) -> SpanData {
        let rare = span.rare.as_deref();
        let attributes = self.attributes(span);
        let (name, span_kind) = name_and_kind(span.metadata, &attributes);
        SpanData {
            span_context: context(span.trace_id, span.span_id, false),
            parent_span_id: parent_span_id(span),
            parent_span_is_remote: span.parent_id != 0
                && self.remote_parent == Some(span.parent_id),
            span_kind,
            name,
            start_time: self.time(span.start_ticks),
            end_time: self.time(span.end_ticks),
            attributes,
            dropped_attributes_count: 0,
            events: self.events(rare),
            links: links(rare),
            status: status(span),
            instrumentation_scope: self.scope.clone(),
        }
    }

    /// The span's fields, then spanlab's own values, the code location and the
    /// busy/idle split, in that order.
    fn attributes(&mut self, span: &ExportSpan) -> Vec<KeyValue> {
        let mut attrs: Vec<KeyValue> = Vec::with_capacity(span.attributes.len() + 6);
        attrs.extend(
            span.attributes
                .iter()
                .map(|(k, v)| KeyValue::new(*k, value(v, &span.text))),
        );
        let extra = span.rare.as_deref().map_or(&[][..], |r| &r.extra[..]);
        add_extra(&mut attrs, extra);
        self.add_code_location(&mut attrs, span.metadata);
        self.add_busy_idle(&mut attrs, span);
        attrs
    }

    /// `code.function`, `code.filepath` and `code.lineno`, where the callsite has them.
    fn add_code_location(
        &mut self,
        attrs: &mut Vec<KeyValue>,
        meta: &'static tracing_core::Metadata<'static>,
    ) {
        attrs.push(KeyValue::new("code.function", self.function(meta)));
        if let Some(file) = meta.file() {
            attrs.push(KeyValue::new("code.filepath", file));
        }
        if let Some(line) = meta.line() {
            attrs.push(KeyValue::new("code.lineno", i64::from(line)));
        }
    }

    /// Busy and idle time as the report defines them (see [`attributes::IDLE_NS`]).
    fn add_busy_idle(&self, attrs: &mut Vec<KeyValue>, span: &ExportSpan) {
        let wall = self.clock.nanos_between(0, span.wall_ticks);
        let busy = self.clock.nanos_between(0, span.busy_ticks);
        attrs.push(KeyValue::new(attributes::BUSY_NS, busy as i64));
        attrs.push(KeyValue::new(
            attributes::IDLE_NS,
            wall.saturating_sub(busy) as i64,
        ));
    }

    /// The span's events, each with its own time and fields.
    fn events(&self, rare: Option<&Rare>) -> SpanEvents {
        let mut all = SpanEvents::default();
        all.events = rare
            .map_or(&[][..], |r| &r.events[..])
            .iter()
            .map(|e| {
                let attributes = e
                    .attributes
                    .iter()
                    .map(|(k, v)| KeyValue::new(k.clone(), value(v, "")))
                    .collect();
                Event::new(e.name.clone(), self.time(e.ticks), attributes, 0)
            })
            .collect();
        all
    }
}

/// Appends spanlab's own values (GPU, seeds, GenAI); they win over span fields of the
/// same name.
fn add_extra(attrs: &mut Vec<KeyValue>, extra: &[(String, AttrValue)]) {
    if extra.is_empty() {
        return;
    }
    attrs.retain(|kv| !extra.iter().any(|(k, _)| kv.key.as_str() == k));
    attrs.extend(
        extra
            .iter()
            .map(|(k, v)| KeyValue::new(k.clone(), value(v, ""))),
    );
}

/// `llm::chat`'s span is named and typed as the GenAI conventions say: a client span
/// named `chat {model}` (its own name while the model is unknown). Any other span keeps
/// its name and is internal.
fn name_and_kind(
    meta: &'static tracing_core::Metadata<'static>,
    attrs: &[KeyValue],
) -> (Cow<'static, str>, SpanKind) {
    if meta.target() != "spanlab::llm" || meta.name() != "chat" {
        return (Cow::Borrowed(meta.name()), SpanKind::Internal);
    }
    let model = attrs
        .iter()
        .find(|kv| kv.key.as_str() == "gen_ai.request.model")
        .map(|kv| kv.value.as_str().into_owned());
    let name = model.map_or(Cow::Borrowed(meta.name()), |m| {
        Cow::Owned(format!("chat {m}"))
    });
    (name, SpanKind::Client)
}

fn parent_span_id(span: &ExportSpan) -> SpanId {
    if span.parent_id == 0 {
        SpanId::INVALID
    } else {
        SpanId::from(span.parent_id)
    }
}

fn status(span: &ExportSpan) -> Status {
    match span.failure() {
        None => Status::Unset,
        Some(Failure::Error(message)) => Status::error(message.clone()),
        Some(Failure::Panicked) => Status::error("panicked"),
    }
}

/// Follows-from links, as links to spans of (possibly) other traces.
fn links(rare: Option<&Rare>) -> SpanLinks {
    let mut all = SpanLinks::default();
    all.links = rare
        .map_or(&[][..], |r| &r.links[..])
        .iter()
        .map(|&(trace, span)| Link::with_context(context(trace, span, false)))
        .collect();
    all
}

fn context(trace: u128, span: u64, remote: bool) -> SpanContext {
    SpanContext::new(
        TraceId::from(trace),
        SpanId::from(span),
        TraceFlags::SAMPLED,
        remote,
        TraceState::default(),
    )
}

/// `text`: the buffer of the record `v` is from (its `Text` values point into it).
fn value(v: &AttrValue, text: &str) -> Value {
    match v {
        AttrValue::Text(start, len) => {
            Value::String(AttrValue::text(*start, *len, text).to_owned().into())
        }
        AttrValue::I64(i) => Value::I64(*i),
        AttrValue::F64(f) => Value::F64(*f),
        AttrValue::Bool(b) => Value::Bool(*b),
        AttrValue::Str(s) => Value::String(s.to_string().into()),
        AttrValue::StrArray(a) => Value::Array(opentelemetry::Array::String(
            a.iter().map(|s| s.clone().into()).collect(),
        )),
    }
}

/// The run's resource: service, process, host, SDK, distributed-training rank, the
/// root seed, and whatever `OTEL_RESOURCE_ATTRIBUTES` or the builder added (those win
/// over the detected values of the same key).
pub(crate) fn resource(config: &ExportConfig, env: &Env) -> Resource {
    let exe = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()));
    let mut attrs: Vec<KeyValue> = vec![
        KeyValue::new(
            "service.name",
            config
                .service_name
                .clone()
                .or_else(|| exe.clone())
                .unwrap_or_else(|| "unknown_service".into()),
        ),
        KeyValue::new("process.pid", i64::from(std::process::id())),
        KeyValue::new("process.runtime.name", "rust"),
        KeyValue::new("telemetry.sdk.name", "spanlab"),
        KeyValue::new("telemetry.sdk.language", "rust"),
        KeyValue::new("telemetry.sdk.version", env!("CARGO_PKG_VERSION")),
        KeyValue::new(
            crate::riders::rng::attributes::ROOT_SEED,
            crate::riders::rng::root_seed().value.to_string(),
        ),
    ];
    if let Some(version) = &config.service_version {
        attrs.push(KeyValue::new("service.version", version.clone()));
    }
    if let Some(exe) = exe {
        attrs.push(KeyValue::new("process.executable.name", exe));
    }
    if let Some(host) = crate::config::process::host_name(env) {
        attrs.push(KeyValue::new("host.name", host));
    }
    // torchrun / Slurm-style launchers: which process of the job this is.
    for (var, key) in [
        ("RANK", "process.rank"),
        ("LOCAL_RANK", "process.local_rank"),
        ("WORLD_SIZE", "process.world_size"),
    ] {
        if let Some(v) = env.get(var) {
            match v.trim().parse::<i64>() {
                Ok(n) => attrs.push(KeyValue::new(key, n)),
                Err(_) => attrs.push(KeyValue::new(key, v.to_owned())),
            }
        }
    }
    for (k, v) in &config.resource {
        attrs.retain(|kv| kv.key.as_str() != k);
        attrs.push(KeyValue::new(k.clone(), v.clone()));
    }
    Resource::builder_empty().with_attributes(attrs).build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Env;

    fn config() -> ExportConfig {
        let (config, _) = super::super::config::resolve(
            &super::super::config::ExportSettings {
                endpoint: Some("http://h:4318".into()),
                service_version: Some("1.2.3".into()),
                resource: vec![("team".into(), "ml".into())],
                ..Default::default()
            },
            &Env::none(),
        );
        config.unwrap()
    }

    fn get(resource: &Resource, key: &str) -> Option<Value> {
        resource.get(&opentelemetry::Key::from(key.to_owned()))
    }

    #[test]
    fn the_resource_names_the_service_process_host_rank_and_seed() {
        let env = Env::of(&[("RANK", "3"), ("LOCAL_RANK", "1"), ("WORLD_SIZE", "8")]);
        let resource = resource(&config(), &env);
        let exe = std::env::current_exe().unwrap();
        let exe = exe.file_stem().unwrap().to_string_lossy().into_owned();
        assert_eq!(get(&resource, "service.name"), Some(Value::from(exe)));
        assert_eq!(
            get(&resource, "service.version"),
            Some(Value::from("1.2.3"))
        );
        assert_eq!(
            get(&resource, "process.pid"),
            Some(Value::I64(i64::from(std::process::id())))
        );
        assert_eq!(get(&resource, "process.rank"), Some(Value::I64(3)));
        assert_eq!(get(&resource, "process.local_rank"), Some(Value::I64(1)));
        assert_eq!(get(&resource, "process.world_size"), Some(Value::I64(8)));
        assert_eq!(
            get(&resource, "telemetry.sdk.name"),
            Some(Value::from("spanlab"))
        );
        assert_eq!(get(&resource, "team"), Some(Value::from("ml")));
        assert!(get(&resource, crate::riders::rng::attributes::ROOT_SEED).is_some());
    }

    #[test]
    fn configured_attributes_win_over_detected_ones() {
        let mut config = config();
        config
            .resource
            .push(("service.name".into(), "from-resource".into()));
        let resource = resource(&config, &Env::none());
        assert_eq!(
            get(&resource, "service.name"),
            Some(Value::from("from-resource"))
        );
        assert!(get(&resource, "process.rank").is_none(), "no RANK, no rank");
    }
}
