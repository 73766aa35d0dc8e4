//! Export as a rider on every sampled span: its record is made at creation, added to
//! while the span lives, and queued at close.
//!
//! A span's record lives in the span's word ([`crate::core::rider::SpanWord`]), which
//! travels with its owner part: the owner thread reaches it without locks. Another
//! thread that adds to a span it does not own (an event inside `in_scope` on a worker
//! thread, a `record` from elsewhere) writes a [`ForeignPart`] into the span's extension
//! and the core flags the span, the same way timing parts travel; the close merges it
//! in.

use tracing_core::span::{Id, Record};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::span::{event_record, Attr, AttrValue, ExportSpan, Failure, FieldVisitor, SpanEvent};
use super::{Export, ExportThread};
use crate::core::rider::{Bits, Closing, Cx, NewSpan, Notes, Rider, SpanAttr, WordAt};
use crate::riders::llm::PromptRecord;

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

/// The export sink on every span: `None` when export is off.
#[derive(Default)]
pub(crate) struct ExportRider(pub(crate) Option<Export>);

impl ExportRider {
    /// The calling thread's export state, through the core's per-thread word.
    #[inline]
    fn thread<'a, S>(export: &'a Export, cx: &mut Cx<'_, '_, S>) -> &'a ExportThread
    where
        S: Subscriber + for<'l> LookupSpan<'l>,
    {
        let word = cx.thread_word();
        if word != 0 {
            // SAFETY: the word was set below, on this thread, to this thread's entry of
            // `export`'s `ThreadLocal`, whose entries never move and live as long as
            // `export`, which lives as long as the layer whose thread table holds the
            // word (they are dropped together, when no callback can run).
            return unsafe { &*(word as *const ExportThread) };
        }
        let thread = export.this_thread();
        cx.set_thread_word(thread as *const ExportThread as usize);
        thread
    }

    /// Runs `f` on the place additions to span `id` go, if the span is sampled.
    fn with_target<S>(&self, id: &Id, cx: &mut Cx<'_, '_, S>, f: impl FnOnce(Target<'_>))
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        cx.with_word(id, |at| match at {
            // SAFETY: this thread owns the span, which is alive (a callback names it).
            WordAt::Here(word) => {
                if let Some(record) = unsafe { ExportSpan::borrow_mut(word) } {
                    f(Target::Record(record));
                }
            }
            // SAFETY: the record lives in the extension, whose lock is held.
            WordAt::Locked(word, _extensions) => {
                if let Some(record) = unsafe { ExportSpan::borrow_mut(word) } {
                    f(Target::Record(record));
                }
            }
            WordAt::Elsewhere(extensions) => {
                if extensions.get_mut::<ForeignPart>().is_none() {
                    extensions.insert(ForeignPart::default());
                }
                if let Some(part) = extensions.get_mut::<ForeignPart>() {
                    f(Target::Foreign(part));
                }
            }
        });
    }
}

impl Rider for ExportRider {
    const ENTERS: Bits = 0;
    const USES_WORD: bool = true;

    #[inline(always)]
    fn sees_every_span(&self) -> bool {
        self.0.is_some()
    }

    #[inline]
    /// A new span: its record, if its trace is sampled.
    fn new_span<S>(&self, span: &mut NewSpan<'_>, cx: &mut Cx<'_, '_, S>, _interest: Bits) -> Bits
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(export) = &self.0 else { return 0 };
        let attrs = span.attrs;
        let parent = if attrs.is_root() {
            None
        } else if let Some(parent) = attrs.parent() {
            cx.word_of(parent)
        } else {
            // Contextual: the span entered on this thread (the registry's current span).
            cx.current().and_then(|parent| cx.word_of(&parent))
        };
        let thread = Self::thread(export, cx);
        span.word = export.begin(thread, attrs, parent, cx.clock().raw());
        span.word.is_some() as Bits
    }

    /// A span's close: completes and queues its record.
    #[inline]
    fn close<S>(&self, span: &mut Closing, cx: &mut Cx<'_, '_, S>, _bits: Bits)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // SAFETY: the span is closing on this thread, which took its whole state.
        let Some(mut record) = (unsafe { ExportSpan::from_ptr(span.state.word) }) else {
            return;
        };
        let Some(export) = &self.0 else { return };
        if span.foreign {
            merge_foreign(&mut record, &span.id, cx.ctx());
        }
        let attributes = span.take_attributes();
        if !attributes.is_empty() {
            record
                .rare_mut()
                .extra
                .extend(attributes.into_iter().map(|(k, v)| {
                    let v = match v {
                        SpanAttr::Int(i) => AttrValue::I64(i),
                        SpanAttr::Float(f) => AttrValue::F64(f),
                        SpanAttr::Str(s) => AttrValue::str(s),
                    };
                    (k, v)
                }));
        }
        let clock = cx.clock();
        let thread = Self::thread(export, cx);
        export.finish(thread, record, &span.state, span.panicking, || clock.raw());
    }

    /// An event: a span event of the span it happened in; a prompt record (left by the
    /// prompt rider) also gives that span its GenAI attributes.
    fn event<S>(&self, event: &Event<'_>, cx: &mut Cx<'_, '_, S>, notes: &mut Notes)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let Some(export) = &self.0 else { return };
        let id = if event.is_contextual() {
            cx.current()
        } else {
            event.parent().cloned()
        };
        let Some(id) = id else { return };
        let error = *event.metadata().level() == Level::ERROR;
        // The clock is read only for a sampled span: others cost a lookup, no more.
        let clock = cx.clock();
        self.with_target(&id, cx, |mut target| {
            target.add_event(event_record(event, clock.raw()), error)
        });
        if let Some(record) = notes.get::<PromptRecord>() {
            let (attrs, details) =
                super::genai::annotations(record, export.capture_content, clock.raw());
            self.with_target(&id, cx, |mut target| target.annotate(attrs, details));
        }
    }

    /// `Span::record`: new or changed field values.
    fn record<S>(&self, id: &Id, values: &Record<'_>, cx: &mut Cx<'_, '_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if self.0.is_some() {
            self.with_target(id, cx, |mut target| target.record(values));
        }
    }

    /// `Span::follows_from`: a link to the other span.
    fn follows_from<S>(&self, id: &Id, follows: &Id, cx: &mut Cx<'_, '_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if self.0.is_none() {
            return;
        }
        let Some(other) = cx.word_of(follows) else {
            return;
        };
        // SAFETY: the caller holds a handle to `follows`, so it is alive.
        let Some(ids) = (unsafe { ExportSpan::ids(other) }) else {
            return;
        };
        self.with_target(id, cx, |mut target| target.link(ids));
    }
}
