//! What the layer's callbacks do for export: find a span's record and add to it.
//!
//! A span's record lives with its owner part ([`crate::core::spans`]): the owner thread
//! reaches it through its slot, without locks. Another thread that adds to a span it
//! does not own (an event inside `in_scope` on a worker thread, a `record` from
//! elsewhere) writes a [`ForeignPart`] into the span's extension and flags the slot, the
//! same way timing parts travel; the close merges it in.

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::span::{event_record, Attr, AttrValue, ExportSpan, Failure, FieldVisitor, SpanEvent};
use super::Export;
use crate::core::spans::{ExportPtr, Owned, SpanState};
use crate::profile::ProfileData;

/// What threads other than the owner added to a span, waiting in its extension.
#[derive(Default)]
pub(crate) struct ForeignPart {
    attributes: Vec<Attr>,
    extra: Vec<(String, AttrValue)>,
    events: Vec<SpanEvent>,
    links: Vec<(u128, u64)>,
    failure: Option<Failure>,
}

/// Where an addition goes: the record itself, or the foreign part.
pub(crate) enum Target<'a> {
    Record(&'a mut ExportSpan),
    Foreign(&'a mut ForeignPart),
}

impl Target<'_> {
    fn add_event(&mut self, event: SpanEvent, error: bool) {
        match self {
            Target::Record(r) => r.add_event(event, error),
            Target::Foreign(f) => {
                if error && f.failure.is_none() {
                    f.failure = Some(Failure::Error(event.name.clone()));
                }
                f.events.push(event);
            }
        }
    }

    fn record(&mut self, values: &Record<'_>) {
        match self {
            Target::Record(r) => r.record(values),
            Target::Foreign(f) => {
                let mut visitor = FieldVisitor::default();
                values.record(&mut visitor);
                f.attributes.extend(visitor.into_owned().0);
            }
        }
    }

    fn link(&mut self, ids: (u128, u64)) {
        match self {
            Target::Record(r) => r.rare_mut().links.push(ids),
            Target::Foreign(f) => f.links.push(ids),
        }
    }

    /// Adds spanlab's own attributes (GenAI), and the event that goes with them.
    pub(crate) fn annotate(&mut self, attrs: Vec<(String, AttrValue)>, event: Option<SpanEvent>) {
        match self {
            Target::Record(r) => {
                let rare = r.rare_mut();
                rare.extra.extend(attrs);
                rare.events.extend(event);
            }
            Target::Foreign(f) => {
                f.extra.extend(attrs);
                f.events.extend(event);
            }
        }
    }
}

/// Merges a span's foreign part into its record at close.
pub(crate) fn merge_foreign<S>(record: &mut ExportSpan, id: &Id, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(part) = ctx
        .span(id)
        .and_then(|s| s.extensions_mut().remove::<ForeignPart>())
    else {
        return;
    };
    for (key, value) in part.attributes {
        match record.attributes.iter_mut().find(|(k, _)| *k == key) {
            Some(existing) => existing.1 = value,
            None => record.attributes.push((key, value)),
        }
    }
    if part.extra.is_empty()
        && part.events.is_empty()
        && part.links.is_empty()
        && part.failure.is_none()
    {
        return;
    }
    let rare = record.rare_mut();
    rare.extra.extend(part.extra);
    rare.events.extend(part.events);
    rare.events.sort_by_key(|e| e.ticks);
    rare.links.extend(part.links);
    if rare.failure.is_none() {
        rare.failure = part.failure;
    }
}

/// The record of a span spanlab knows, on whichever thread owns it (`Some(NONE)`: not
/// sampled); `None` for a span spanlab has no state for.
fn record_of<S>(
    data: &ProfileData,
    owned: &mut Owned<'_>,
    id: &Id,
    ctx: &Context<'_, S>,
) -> Option<ExportPtr>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    owned
        .export(id.into_u64())
        .or_else(|| data.threads.export_elsewhere(id, ctx))
}

/// A new span: its record, if its trace is sampled.
#[inline]
pub(crate) fn new_span<S>(
    data: &ProfileData,
    export: &Export,
    owned: &mut Owned<'_>,
    attrs: &Attributes<'_>,
    ctx: &Context<'_, S>,
) -> ExportPtr
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let parent = if attrs.is_root() {
        None
    } else if let Some(parent) = attrs.parent() {
        record_of(data, owned, parent, ctx)
    } else {
        // Contextual: the span entered on this thread (the registry's current span).
        owned
            .private
            .frames
            .last()
            .map(|f| Id::from_u64(f.id))
            .and_then(|parent| record_of(data, owned, &parent, ctx))
    };
    export.begin(owned, attrs, parent, data.clock.raw())
}

/// Runs `f` on the place additions to span `id` go, if the span is sampled.
pub(crate) fn with_target<S>(
    data: &ProfileData,
    owned: &mut Owned<'_>,
    id: &Id,
    ctx: &Context<'_, S>,
    f: impl FnOnce(Target<'_>),
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if let Some(ptr) = owned.export(id.into_u64()) {
        // SAFETY: this thread owns the span, which is alive (a callback names it).
        if let Some(record) = unsafe { ExportSpan::borrow_mut(ptr) } {
            f(Target::Record(record));
        }
        return;
    }
    with_target_elsewhere(data, id, ctx, f);
}

#[cold]
fn with_target_elsewhere<S>(
    data: &ProfileData,
    id: &Id,
    ctx: &Context<'_, S>,
    f: impl FnOnce(Target<'_>),
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match data.threads.export_elsewhere(id, ctx) {
        Some(ptr) if ptr.is_some() => {}
        _ => return, // unknown, or not sampled
    }
    let Some(span) = ctx.span(id) else { return };
    let mut ext = span.extensions_mut();
    // Evicted by its owner: the record itself is in the extension, under its lock.
    let evicted = ext
        .get_mut::<SpanState>()
        .map(|s| s.export)
        .filter(|p| p.is_some());
    if let Some(ptr) = evicted {
        // SAFETY: the record lives in this extension, whose lock we hold.
        if let Some(record) = unsafe { ExportSpan::borrow_mut(ptr) } {
            f(Target::Record(record));
        }
        return;
    }
    data.threads.mark_foreign(id.into_u64());
    if ext.get_mut::<ForeignPart>().is_none() {
        ext.insert(ForeignPart::default());
    }
    if let Some(part) = ext.get_mut::<ForeignPart>() {
        f(Target::Foreign(part));
    }
}

/// An event: a span event of the span it happened in.
pub(crate) fn event<S>(data: &ProfileData, event: &Event<'_>, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut owned = data.threads.owned();
    let id = if event.is_contextual() {
        owned.private.frames.last().map(|f| Id::from_u64(f.id))
    } else {
        event.parent().cloned()
    };
    let Some(id) = id else { return };
    let error = *event.metadata().level() == Level::ERROR;
    // The clock is read only for a sampled span: others cost a lookup, no more.
    with_target(data, &mut owned, &id, ctx, |mut target| {
        target.add_event(event_record(event, data.clock.raw()), error)
    });
}

/// `Span::record`: new or changed field values.
pub(crate) fn record<S>(data: &ProfileData, id: &Id, values: &Record<'_>, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut owned = data.threads.owned();
    with_target(data, &mut owned, id, ctx, |mut target| {
        target.record(values)
    });
}

/// `Span::follows_from`: a link to the other span.
pub(crate) fn follows_from<S>(data: &ProfileData, id: &Id, follows: &Id, ctx: &Context<'_, S>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let mut owned = data.threads.owned();
    let Some(other) = record_of(data, &mut owned, follows, ctx) else {
        return;
    };
    // SAFETY: the caller holds a handle to `follows`, so it is alive.
    let Some(ids) = (unsafe { ExportSpan::ids(other) }) else {
        return;
    };
    with_target(data, &mut owned, id, ctx, |mut target| target.link(ids));
}

/// A span's close: completes and queues its record.
#[allow(clippy::too_many_arguments)]
pub(crate) fn close<S>(
    data: &ProfileData,
    export: &Export,
    owned: &mut Owned<'_>,
    mut record: Box<ExportSpan>,
    state: &SpanState,
    foreign: bool,
    annotations: crate::features::Annotations,
    id: &Id,
    ctx: &Context<'_, S>,
) where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if foreign {
        merge_foreign(&mut record, id, ctx);
    }
    if !annotations.is_empty() {
        record
            .rare_mut()
            .extra
            .extend(annotations.into_iter().map(|(k, v)| {
                let v = match v {
                    crate::features::Annotation::Int(i) => AttrValue::I64(i),
                    crate::features::Annotation::Float(f) => AttrValue::F64(f),
                    crate::features::Annotation::Str(s) => AttrValue::str(s),
                };
                (k, v)
            }));
    }
    export.finish(owned, record, state, std::thread::panicking(), || {
        data.clock.raw()
    });
}
