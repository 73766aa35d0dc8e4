//! What the layer does for a span besides timing it — seeded scopes ([`crate::riders::rng`])
//! and GPU measurement ([`crate::riders::gpu`]) — and how spans that use neither pay nothing.
//!
//! Whether a callsite *could* use a feature (a `seed` field, a `gpu` field, a builder
//! GPU rule) is decided once per callsite and parent, and cached with its path; a span
//! then costs a test of that byte. A span that does use one carries the feature bits in
//! its state, and the layer counts how many such spans are alive: while none are,
//! entering a span looks nothing up.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tracing_core::span::{Attributes, Id};
use tracing_core::{Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use crate::core::paths::PathId;
use crate::core::spans::{Owned, SpanState, GPU, RECORDER, SEEDED};
use crate::profile::ProfileData;
use crate::riders::gpu::{GpuFields, GpuSpan};
use crate::riders::llm::RecorderSink;
use crate::riders::rng::scopes::{self, SeedScope};

/// Callsite bits: it declares a `seed` field.
const CALLSITE_SEED: u8 = 1;
/// Callsite bits: it declares a `gpu` or `gpu.sync` field.
const CALLSITE_GPU_FIELD: u8 = 2;
/// Callsite bits: a builder rule selects it for GPU measurement.
const CALLSITE_GPU_RULE: u8 = 4;
/// Callsite bits: it is a `PromptRecorder` span (`spanlab.recorder` field).
const CALLSITE_RECORDER: u8 = 8;

/// The callsite bits of `meta` at `depth` (called once per callsite and parent).
pub(crate) fn classify(data: &ProfileData, meta: &'static Metadata<'static>, depth: u16) -> u8 {
    let fields = meta.fields();
    let mut bits = 0;
    if fields.field("seed").is_some() {
        bits |= CALLSITE_SEED;
    }
    if fields.field("gpu").is_some() || fields.field("gpu.sync").is_some() {
        bits |= CALLSITE_GPU_FIELD;
    }
    if data.gpu.has_rules() && data.gpu.config.rule_selects(meta, depth) {
        bits |= CALLSITE_GPU_RULE;
    }
    if fields.field("spanlab.recorder").is_some() {
        bits |= CALLSITE_RECORDER;
    }
    bits
}

/// Events a callback wants to emit once it has let go of the thread's state (an event
/// comes back through the layer).
#[derive(Default)]
#[must_use]
pub(crate) struct Deferred {
    warnings: [Option<String>; 2],
    info: Option<String>,
}

impl Deferred {
    fn warn(&mut self, warning: Option<String>) {
        if let Some(slot) = self.warnings.iter_mut().find(|w| w.is_none()) {
            *slot = warning;
        }
    }

    /// Emits what was deferred: WARN events for problems, an INFO event for the GPU
    /// summary line. Nearly always there is nothing: that case is one inline test.
    #[inline]
    pub(crate) fn emit(self) {
        // `warn` fills `warnings[0]` first, so it and `info` say whether anything is here.
        if self.warnings[0].is_some() || self.info.is_some() {
            self.emit_slow();
        } else {
            std::mem::forget(self); // nothing to drop: skip the drop glue
        }
    }

    #[cold]
    fn emit_slow(self) {
        for warning in self.warnings.into_iter().flatten() {
            tracing::warn!(target: "spanlab", "{warning}");
        }
        if let Some(line) = self.info {
            tracing::info!(target: "spanlab::gpu", "{line}");
        }
    }
}

/// A new span of a callsite with `callsite` bits: its features.
pub(crate) fn new_span<S>(
    data: &ProfileData,
    callsite: u8,
    attrs: &Attributes<'_>,
    id: &Id,
    ctx: &Context<'_, S>,
    deferred: &mut Deferred,
) -> u8
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut features = 0;
    if callsite & CALLSITE_SEED != 0 {
        let (seeded, warning) = scopes::on_new_span(&data.seeds, attrs, id, ctx);
        if seeded {
            features |= SEEDED;
        }
        deferred.warn(warning);
    }
    if callsite & (CALLSITE_GPU_FIELD | CALLSITE_GPU_RULE) != 0 && !data.gpu.known_off() {
        let fields = if callsite & CALLSITE_GPU_FIELD != 0 {
            GpuFields::of(attrs)
        } else {
            GpuFields::default()
        };
        if fields.gpu.unwrap_or(callsite & CALLSITE_GPU_RULE != 0) {
            if let Some(span) = ctx.span(id) {
                let sync = fields.sync.unwrap_or(data.gpu.config.sync);
                span.extensions_mut().replace(GpuSpan {
                    sync,
                    devices: Vec::new(),
                });
                features |= GPU;
            }
        }
    }
    if callsite & CALLSITE_RECORDER != 0 {
        if let (Some(sink), Some(span)) = (recorder_sink(attrs), ctx.span(id)) {
            span.extensions_mut().replace(RecorderExt(sink));
            data.prompts.recorders.fetch_add(1, Relaxed);
            features |= RECORDER;
        }
    }
    if features != 0 {
        data.featured.fetch_add(1, Relaxed);
    }
    features
}

/// The extension on a `PromptRecorder` span: where records beneath it go.
struct RecorderExt(Arc<RecorderSink>);

/// The sink of a new recorder span, from its `spanlab.recorder` id.
fn recorder_sink(attrs: &Attributes<'_>) -> Option<Arc<RecorderSink>> {
    struct Visitor(Option<u64>);
    impl tracing_core::field::Visit for Visitor {
        fn record_u64(&mut self, field: &tracing_core::Field, value: u64) {
            if field.name() == "spanlab.recorder" {
                self.0 = Some(value);
            }
        }
        fn record_debug(&mut self, _: &tracing_core::Field, _: &dyn std::fmt::Debug) {}
    }
    let mut visitor = Visitor(None);
    attrs.record(&mut visitor);
    crate::riders::llm::recorder_sink(visitor.0?)
}

/// An `llm::record` event: the record, redacted and capped, goes to the book (report,
/// JSONL) and to every recorder above the span that made the call.
pub(crate) fn llm_record<S>(
    data: &ProfileData,
    event: &tracing_core::Event<'_>,
    ctx: &Context<'_, S>,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(call) = crate::riders::llm::take_pending() else {
        return;
    };
    let span = ctx.event_span(event);
    let path = span.as_ref().and_then(|s| {
        data.threads
            .owned()
            .path(s.id().into_u64())
            .or_else(|| data.threads.path_elsewhere(&s.id(), ctx))
    });
    let names = path.map_or_else(Vec::new, |p| {
        crate::core::paths::names(&data.paths.entries(), p)
    });
    let record = data
        .prompts
        .prepare(call, names, data.clock.unix_nanos(data.clock.raw()));
    data.prompts.add(&record);
    #[cfg(feature = "otlp")]
    if let (Some(export), Some(span)) = (&data.export, &span) {
        let (attrs, details) = crate::sinks::export::genai::annotations(
            &record,
            export.capture_content,
            data.clock.raw(),
        );
        let mut owned = data.threads.owned();
        crate::sinks::export::hooks::with_target(
            data,
            &mut owned,
            &span.id(),
            ctx,
            |mut target| target.annotate(attrs, details),
        );
    }
    if data.prompts.recorders.load(Relaxed) > 0 {
        if let Some(scope) = ctx.event_scope(event) {
            for span in scope {
                if let Some(RecorderExt(sink)) = span.extensions().get::<RecorderExt>() {
                    sink.push(record.clone());
                }
            }
        }
    }
}

/// A value spanlab attaches to a span's export at close (GPU readings, seeds).
#[derive(Clone, Debug, PartialEq)]
#[cfg_attr(not(feature = "otlp"), allow(dead_code))]
pub(crate) enum Annotation {
    Int(i64),
    Float(f64),
    Str(String),
}

/// `(attribute name, value)` pairs for a span's export.
pub(crate) type Annotations = Vec<(String, Annotation)>;

/// Entering a span while spans with features are alive: activates this one's features.
/// Returns the ones now active, for the frame.
pub(crate) fn enter<S>(
    data: &ProfileData,
    owned: &mut Owned<'_>,
    id: &Id,
    ctx: &Context<'_, S>,
    deferred: &mut Deferred,
) -> u8
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let features = owned
        .features(id.into_u64())
        .unwrap_or_else(|| features_elsewhere(id, ctx));
    let mut active = 0;
    if features & SEEDED != 0 && scopes::enter(id, ctx, &mut owned.private.saved) {
        active |= SEEDED;
    }
    if features & GPU != 0 {
        let sync = ctx
            .span(id)
            .and_then(|s| s.extensions().get::<GpuSpan>().map(|g| g.sync));
        if let Some(sync) = sync {
            deferred.warn(data.gpu.enter(id.into_u64(), sync, &mut owned.private.gpu));
            active |= GPU;
        }
    }
    active
}

/// Leaving a span whose frame had `active` features.
pub(crate) fn exit<S>(
    data: &ProfileData,
    owned: &mut Owned<'_>,
    id: &Id,
    active: u8,
    ctx: &Context<'_, S>,
    deferred: &mut Deferred,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if active & GPU != 0 {
        let (calls, warning) = data.gpu.exit(id.into_u64(), &mut owned.private.gpu);
        deferred.warn(warning);
        if let (Some(calls), Some(span)) = (calls, ctx.span(id)) {
            if data.gpu.config.log {
                deferred.info = Some(data.gpu.summary(span.name(), &calls));
            }
            if let Some(gpu) = span.extensions_mut().get_mut::<GpuSpan>() {
                gpu.add(calls);
            }
        }
    }
    if active & SEEDED != 0 {
        scopes::exit(id, ctx, &mut owned.private.saved);
    }
}

/// A span with features closed: their bookkeeping.
pub(crate) fn close<S>(
    data: &ProfileData,
    state: &SpanState,
    path: PathId,
    id: &Id,
    ctx: &Context<'_, S>,
    mut annotations: Option<&mut Annotations>,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    data.featured.fetch_sub(1, Relaxed);
    if state.features & RECORDER != 0 {
        data.prompts.recorders.fetch_sub(1, Relaxed);
    }
    if state.features & SEEDED != 0 {
        let seeded = scopes::close(&data.seeds, path, id, ctx);
        if let (Some((seed, draws)), Some(out)) = (seeded, annotations.as_deref_mut()) {
            use crate::riders::rng::attributes::{DRAWS, SEED};
            let seed = i64::try_from(seed)
                .map_or_else(|_| Annotation::Str(seed.to_string()), Annotation::Int);
            out.push((SEED.into(), seed));
            out.push((DRAWS.into(), Annotation::Int(draws as i64)));
        }
    }
    if state.features & GPU != 0 {
        let gpu = ctx
            .span(id)
            .and_then(|s| s.extensions_mut().remove::<GpuSpan>());
        if let Some(gpu) = gpu.filter(|g| !g.devices.is_empty()) {
            data.gpu.record(path, &gpu);
            if let Some(out) = annotations {
                data.gpu.annotate(&gpu, out);
            }
        }
    }
}

/// The features of a span this thread does not own, from its extensions.
fn features_elsewhere<S>(id: &Id, ctx: &Context<'_, S>) -> u8
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = ctx.span(id) else { return 0 };
    let ext = span.extensions();
    (ext.get::<SeedScope>().is_some() as u8 * SEEDED) | (ext.get::<GpuSpan>().is_some() as u8 * GPU)
}
