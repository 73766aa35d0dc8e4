//! Prompt records as a rider: an `llm::record` event becomes a record in the book
//! (report, JSONL) and in every [`PromptRecorder`](super::PromptRecorder) span above
//! it; the record is left as a note for the sinks after this rider (export's GenAI
//! attributes).

use std::borrow::Cow;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tracing_core::field::{Field, Visit};
use tracing_core::span::Attributes;
use tracing_core::{Event, Metadata, Subscriber};
use tracing_subscriber::registry::LookupSpan;

use super::{is_record_event, take_pending, PromptBook, RecorderSink};
use crate::core::rider::{Bits, Closing, Cx, NewSpan, Notes, Rider};

/// The prompt rider: the book, and the recorder spans alive.
pub(crate) struct PromptRider {
    pub(crate) book: PromptBook,
}

/// The extension on a `PromptRecorder` span: where records beneath it go.
struct RecorderExt(Arc<RecorderSink>);

/// The sink of a new recorder span, from its `spanlab.recorder` id.
fn recorder_sink(attrs: &Attributes<'_>) -> Option<Arc<RecorderSink>> {
    struct Visitor(Option<u64>);
    impl Visit for Visitor {
        fn record_u64(&mut self, field: &Field, value: u64) {
            if field.name() == "spanlab.recorder" {
                self.0 = Some(value);
            }
        }
        fn record_debug(&mut self, _: &Field, _: &dyn std::fmt::Debug) {}
    }
    let mut visitor = Visitor(None);
    attrs.record(&mut visitor);
    super::recorder_sink(visitor.0?)
}

impl Rider for PromptRider {
    const ENTERS: Bits = 0;

    fn interest(&self, meta: &'static Metadata<'static>, _depth: u16) -> Bits {
        meta.fields().field("spanlab.recorder").is_some() as Bits
    }

    fn new_span<S>(&self, span: &mut NewSpan<'_>, cx: &mut Cx<'_, '_, S>, _interest: Bits) -> Bits
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let (Some(sink), Some(registered)) = (recorder_sink(span.attrs), cx.span(span.id)) else {
            return 0;
        };
        registered.extensions_mut().replace(RecorderExt(sink));
        self.book.recorders.fetch_add(1, Relaxed);
        1
    }

    fn close<S>(&self, _span: &mut Closing, _cx: &mut Cx<'_, '_, S>, _bits: Bits)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.book.recorders.fetch_sub(1, Relaxed);
    }

    fn event<S>(&self, event: &Event<'_>, cx: &mut Cx<'_, '_, S>, notes: &mut Notes)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if !is_record_event(event.metadata()) {
            return;
        }
        let Some(call) = take_pending() else { return };
        let span = cx.ctx().event_span(event).map(|s| s.id());
        let path = span.and_then(|id| cx.path_of(&id));
        let names = path.map_or_else(Vec::new, |p| cx.path_names(p));
        let names = names.into_iter().map(Cow::Borrowed).collect();
        let now = cx.clock().unix_nanos(cx.clock().raw());
        let record = self.book.prepare(call, names, now);
        self.book.add(&record);
        if self.book.recorders.load(Relaxed) > 0 {
            if let Some(scope) = cx.ctx().event_scope(event) {
                for span in scope {
                    if let Some(RecorderExt(sink)) = span.extensions().get::<RecorderExt>() {
                        sink.push(record.clone());
                    }
                }
            }
        }
        notes.put(record);
    }
}
