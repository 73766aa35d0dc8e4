//! A span's export record: what OTLP needs beyond the timing the layer keeps anyway.
//!
//! The record is allocated when a sampled span is created and travels with the span's
//! owner part ([`crate::core::rider::SpanWord`]); the layer fills it from the span's fields,
//! later `record` calls, events and follows-from links, and at close hands it to the
//! export queue. Converting it to OpenTelemetry's types happens on the exporter thread.
//!
//! Ids come from a per-thread SplitMix64 stream seeded from the OS (through std's
//! `RandomState`), never from `spanlab::rng()` or any generator the program seeds:
//! a seeded run must not produce colliding trace ids across runs.

use std::cell::Cell;
use std::fmt;

use tracing_core::field::{Field, Visit};
use tracing_core::Metadata;

use crate::core::rider::SpanWord;

/// One attribute value, as OTLP types it.
#[derive(Clone, Debug, PartialEq)]
#[allow(clippy::box_collection)] // on purpose: see `Str`
pub(crate) enum AttrValue {
    I64(i64),
    F64(f64),
    Bool(bool),
    /// Boxed, like the array: the common variants stay 16 bytes, so four attributes
    /// fit a cache line with their keys.
    Str(Box<String>),
    StrArray(Box<Vec<String>>),
    /// Text in the record's own buffer ([`ExportSpan::text`]): `start..start + len`.
    /// Strings and `Debug` values of span fields go there, so that a reused record
    /// records them without allocating.
    Text(u32, u32),
}

impl AttrValue {
    /// A string value.
    pub(crate) fn str(s: impl Into<String>) -> AttrValue {
        AttrValue::Str(Box::new(s.into()))
    }

    /// The text of a [`AttrValue::Text`] in `buffer`.
    pub(crate) fn text(start: u32, len: u32, buffer: &str) -> &str {
        buffer
            .get(start as usize..(start + len) as usize)
            .unwrap_or_default()
    }
}

/// A `(key, value)` attribute. Keys of span fields are `'static` (callsite names).
pub(crate) type Attr = (&'static str, AttrValue);

/// An event inside a span.
#[derive(Debug)]
pub(crate) struct SpanEvent {
    pub(crate) name: String,
    pub(crate) ticks: u64,
    pub(crate) attributes: Vec<(String, AttrValue)>,
}

/// Why a span failed, for its status.
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum Failure {
    /// An ERROR event inside it, with its message.
    Error(String),
    /// Closed while its thread was panicking.
    Panicked,
}

/// Everything export needs of one span, filled between its creation and its close.
#[derive(Debug)]
pub(crate) struct ExportSpan {
    pub(crate) trace_id: u128,
    pub(crate) span_id: u64,
    /// 0 for a root span with no remote parent. (Whether the parent is remote, the
    /// converter tells from the id: a record has no room left for a flag.)
    pub(crate) parent_id: u64,
    pub(crate) metadata: &'static Metadata<'static>,
    pub(crate) start_ticks: u64,
    pub(crate) end_ticks: u64,
    pub(crate) busy_ticks: u64,
    /// First enter to last exit, as the report times a call (0 if never entered).
    pub(crate) wall_ticks: u64,
    pub(crate) attributes: Vec<Attr>,
    /// The text of `attributes`' [`AttrValue::Text`] values.
    pub(crate) text: String,
    /// What few spans have, out of line: the record stays small, and so do the cache
    /// lines a span touches.
    pub(crate) rare: Option<Box<Rare>>,
}

/// The parts of a record most spans never use.
#[derive(Debug, Default)]
pub(crate) struct Rare {
    /// Attributes added by spanlab itself at close (GPU, seeds, GenAI), with owned keys.
    pub(crate) extra: Vec<(String, AttrValue)>,
    pub(crate) events: Vec<SpanEvent>,
    pub(crate) links: Vec<(u128, u64)>,
    pub(crate) failure: Option<Failure>,
}

/// The most text a pooled record keeps room for between spans.
const KEPT_TEXT_BYTES: usize = 4096;
/// The most attributes (and events) a pooled record keeps room for between spans.
const KEPT_ATTRIBUTES: usize = 64;

impl ExportSpan {
    /// A blank record (to be [`reset`](Self::reset) before use).
    pub(crate) fn blank(metadata: &'static Metadata<'static>) -> Box<Self> {
        Box::new(ExportSpan {
            trace_id: 0,
            span_id: 0,
            parent_id: 0,
            metadata,
            start_ticks: 0,
            end_ticks: 0,
            busy_ticks: 0,
            wall_ticks: 0,
            attributes: Vec::new(),
            text: String::new(),
            rare: None,
        })
    }

    /// Makes a used (or blank) record the record of a new span, keeping its buffers.
    /// `parent` is the parent's span id, `None` for a new trace's root.
    pub(crate) fn reset(
        &mut self,
        metadata: &'static Metadata<'static>,
        trace_id: u128,
        parent: Option<u64>,
        start_ticks: u64,
    ) {
        self.trace_id = trace_id;
        self.span_id = new_span_id();
        self.parent_id = parent.unwrap_or(0);
        self.metadata = metadata;
        self.start_ticks = start_ticks;
        self.end_ticks = start_ticks;
        self.busy_ticks = 0;
        self.wall_ticks = 0;
        self.attributes.clear();
        self.text.clear();
        if let Some(rare) = &mut self.rare {
            rare.extra.clear();
            rare.events.clear();
            rare.links.clear();
            rare.failure = None;
            if rare.events.capacity() > KEPT_ATTRIBUTES {
                rare.events = Vec::new();
            }
        }
        // Buffers keep their capacity from span to span, except what one unusual span
        // grew them to (a megabyte of `Debug` text): a pooled record stays small.
        if self.text.capacity() > KEPT_TEXT_BYTES {
            self.text = String::new();
        }
        if self.attributes.capacity() > KEPT_ATTRIBUTES {
            self.attributes = Vec::new();
        }
    }

    /// The rare parts, made when first needed.
    pub(crate) fn rare_mut(&mut self) -> &mut Rare {
        self.rare.get_or_insert_with(Default::default)
    }

    /// The failure, if any.
    pub(crate) fn failure(&self) -> Option<&Failure> {
        self.rare.as_ref().and_then(|r| r.failure.as_ref())
    }

    /// Leaks the record into the pointer a span's state carries.
    pub(crate) fn into_ptr(self: Box<Self>) -> SpanWord {
        SpanWord(Box::into_raw(self) as usize)
    }

    /// Takes the record back out of a span's pointer.
    ///
    /// # Safety
    /// `ptr` came from [`ExportSpan::into_ptr`] and is taken back exactly once: by the
    /// thread that closes the span, which holds the only state that still carries it.
    pub(crate) unsafe fn from_ptr(ptr: SpanWord) -> Option<Box<Self>> {
        // SAFETY: the caller's contract.
        ptr.is_some()
            .then(|| unsafe { Box::from_raw(ptr.0 as *mut ExportSpan) })
    }

    /// The record behind a live span's pointer.
    ///
    /// # Safety
    /// `ptr` is a live span's, and the caller is the only one touching the record
    /// now: its owner thread while the span is alive (nobody else writes it before
    /// the close), or a thread holding the span's extension lock when the record lives
    /// in the extension.
    pub(crate) unsafe fn borrow_mut<'a>(ptr: SpanWord) -> Option<&'a mut Self> {
        // SAFETY: the caller's contract.
        ptr.is_some()
            .then(|| unsafe { &mut *(ptr.0 as *mut ExportSpan) })
    }

    /// The ids of a live span's record, for its children and links.
    ///
    /// # Safety
    /// `ptr` is a live span's (the caller holds a handle, so it is not closed); ids are
    /// written before the pointer is published and never change.
    ///
    /// The two fields are read through the raw pointer, never a reference to the
    /// whole record: the owner thread may be adding to the record's other fields at
    /// this very moment (a reader on another thread, `current_traceparent`).
    pub(crate) unsafe fn ids(ptr: SpanWord) -> Option<(u128, u64)> {
        let span = ptr.0 as *const ExportSpan;
        // SAFETY: the caller's contract; nobody writes these two fields while the
        // pointer is published.
        ptr.is_some().then(|| unsafe {
            (
                std::ptr::addr_of!((*span).trace_id).read(),
                std::ptr::addr_of!((*span).span_id).read(),
            )
        })
    }

    /// About how many bytes the span takes encoded (for batch sizes, not exact).
    pub(crate) fn approx_bytes(&self) -> usize {
        let values = |attrs: &[(String, AttrValue)]| -> usize {
            attrs
                .iter()
                .map(|(k, v)| {
                    k.len()
                        + 8
                        + match v {
                            AttrValue::Str(s) => s.len(),
                            AttrValue::StrArray(a) => a.iter().map(String::len).sum(),
                            _ => 8,
                        }
                })
                .sum()
        };
        let rare = self.rare.as_deref().map_or(0, |r| {
            values(&r.extra)
                + r.events
                    .iter()
                    .map(|e| 32 + e.name.len() + values(&e.attributes))
                    .sum::<usize>()
        });
        160 + self.attributes.len() * 24 + self.text.len() + rare
    }

    /// Sets (or replaces) a field's value, from `Span::record`.
    pub(crate) fn record(&mut self, values: &tracing_core::span::Record<'_>) {
        let mut visitor = FieldVisitor {
            text: std::mem::take(&mut self.text),
            ..FieldVisitor::default()
        };
        values.record(&mut visitor);
        self.text = visitor.text;
        for (key, value) in visitor.attributes {
            match self.attributes.iter_mut().find(|(k, _)| *k == key) {
                Some(existing) => existing.1 = value,
                None => self.attributes.push((key, value)),
            }
        }
    }

    /// Adds an event; an ERROR event also fails the span (the first message wins).
    pub(crate) fn add_event(&mut self, event: SpanEvent, error: bool) {
        let rare = self.rare_mut();
        if error && rare.failure.is_none() {
            rare.failure = Some(Failure::Error(event.name.clone()));
        }
        rare.events.push(event);
    }
}

/// Collects a span's or event's fields as typed attributes. Integers that do not fit
/// an `i64` (OTLP's only integer) become strings; anything else becomes its `Debug`.
#[derive(Default)]
pub(crate) struct FieldVisitor {
    pub(crate) attributes: Vec<Attr>,
    /// Where text values are written ([`AttrValue::Text`]).
    pub(crate) text: String,
    /// An event's `message` field, kept apart: it names the event.
    pub(crate) message: Option<String>,
}

impl FieldVisitor {
    fn push(&mut self, field: &Field, value: AttrValue) {
        match field.name() {
            // spanlab's own bookkeeping field: meaningless outside the process.
            "spanlab.recorder" => {}
            "message" => {
                self.message = Some(match value {
                    AttrValue::Text(start, len) => {
                        let message = AttrValue::text(start, len, &self.text).to_owned();
                        self.text.truncate(start as usize);
                        message
                    }
                    AttrValue::Str(s) => *s,
                    other => format!("{other:?}"),
                })
            }
            name => self.attributes.push((name, value)),
        }
    }

    /// Writes text into the buffer and pushes it as `field`'s value.
    fn push_text(&mut self, field: &Field, write: impl FnOnce(&mut String)) {
        let start = self.text.len();
        write(&mut self.text);
        let value = match (u32::try_from(start), u32::try_from(self.text.len() - start)) {
            (Ok(start), Ok(len)) if start.checked_add(len).is_some() => AttrValue::Text(start, len),
            _ => AttrValue::str(self.text.split_off(start)), // a 4 GiB buffer: never mind
        };
        self.push(field, value);
    }

    /// The attributes with their text owned (for records kept apart from a buffer).
    pub(crate) fn into_owned(self) -> (Vec<Attr>, Option<String>) {
        let text = self.text;
        let attributes = self
            .attributes
            .into_iter()
            .map(|(k, v)| match v {
                AttrValue::Text(start, len) => {
                    (k, AttrValue::str(AttrValue::text(start, len, &text)))
                }
                v => (k, v),
            })
            .collect();
        (attributes, self.message)
    }
}

impl Visit for FieldVisitor {
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.push(field, AttrValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        let value =
            i64::try_from(value).map_or_else(|_| AttrValue::str(value.to_string()), AttrValue::I64);
        self.push(field, value);
    }
    fn record_i128(&mut self, field: &Field, value: i128) {
        let value =
            i64::try_from(value).map_or_else(|_| AttrValue::str(value.to_string()), AttrValue::I64);
        self.push(field, value);
    }
    fn record_u128(&mut self, field: &Field, value: u128) {
        let value =
            i64::try_from(value).map_or_else(|_| AttrValue::str(value.to_string()), AttrValue::I64);
        self.push(field, value);
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.push(field, AttrValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.push(field, AttrValue::Bool(value));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.push_text(field, |text| text.push_str(value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        use fmt::Write;
        self.push_text(field, |text| {
            let _ = write!(text, "{value}");
        });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        use fmt::Write;
        self.push_text(field, |text| {
            let _ = write!(text, "{value:?}");
        });
    }
}

/// An event's record: named by its message (else its callsite name), with its level,
/// target and fields as attributes.
pub(crate) fn event_record(event: &tracing_core::Event<'_>, ticks: u64) -> SpanEvent {
    let meta = event.metadata();
    let mut visitor = FieldVisitor::default();
    event.record(&mut visitor);
    let (fields, message) = visitor.into_owned();
    let mut attributes: Vec<(String, AttrValue)> = Vec::with_capacity(fields.len() + 2);
    attributes.push(("level".into(), AttrValue::str(meta.level().as_str())));
    attributes.push(("target".into(), AttrValue::str(meta.target())));
    attributes.extend(fields.into_iter().map(|(k, v)| (k.to_owned(), v)));
    let name = message.unwrap_or_else(|| {
        // `#[instrument(err)]` events carry the error in an `error` field.
        attributes
            .iter()
            .find(|(k, _)| k == "error")
            .and_then(|(_, v)| match v {
                AttrValue::Str(s) => Some(s.to_string()),
                _ => None,
            })
            .unwrap_or_else(|| meta.name().to_owned())
    });
    SpanEvent {
        name,
        ticks,
        attributes,
    }
}

std::thread_local! {
    /// This thread's id stream state; 0 until first used.
    static IDS: Cell<u64> = const { Cell::new(0) };
}

/// The next id from this thread's stream: never 0.
fn next_id() -> u64 {
    IDS.with(|ids| {
        let mut state = ids.get();
        if state == 0 {
            use std::hash::BuildHasher;
            // `RandomState` keys come from the OS; mixing in the thread keeps streams
            // of threads created at once apart.
            state = std::collections::hash_map::RandomState::new()
                .hash_one(std::thread::current().id())
                | 1;
        }
        let mut id = 0;
        while id == 0 {
            id = crate::riders::rng::splitmix64(&mut state);
        }
        ids.set(state);
        id
    })
}

/// A new span id.
pub(crate) fn new_span_id() -> u64 {
    next_id()
}

/// A new trace id.
pub(crate) fn new_trace_id() -> u128 {
    (next_id() as u128) << 64 | next_id() as u128
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_stay_small() {
        // A span touches its record's lines and its attributes' lines: keep both few.
        assert!(std::mem::size_of::<AttrValue>() <= 16);
        assert!(std::mem::size_of::<ExportSpan>() <= 128, "two cache lines");
    }

    #[test]
    fn a_reused_record_keeps_small_buffers_only() {
        static CALLSITE: tracing::callsite::DefaultCallsite =
            tracing::callsite::DefaultCallsite::new(&META);
        static META: Metadata<'static> = tracing::metadata!(
            name: "test",
            target: "test",
            level: tracing::Level::INFO,
            fields: &[],
            callsite: &CALLSITE,
            kind: tracing::metadata::Kind::SPAN,
        );
        let mut record = ExportSpan::blank(&META);
        record.text.push_str("short");
        record.reset(&META, 1, None, 0);
        assert!(
            record.text.is_empty() && record.text.capacity() >= 5,
            "kept"
        );
        record.text.push_str(&"x".repeat(1 << 20));
        record.reset(&META, 1, None, 0);
        assert!(
            record.text.capacity() <= KEPT_TEXT_BYTES,
            "a megabyte is not kept"
        );
    }

    #[test]
    fn ids_are_nonzero_and_distinct_across_threads() {
        let mine: Vec<u64> = (0..1000).map(|_| new_span_id()).collect();
        let other: Vec<u64> = std::thread::spawn(|| (0..1000).map(|_| new_span_id()).collect())
            .join()
            .unwrap();
        let mut all: Vec<u64> = mine.into_iter().chain(other).collect();
        assert!(all.iter().all(|&id| id != 0));
        all.sort_unstable();
        all.dedup();
        assert_eq!(all.len(), 2000);
        assert_ne!(new_trace_id(), new_trace_id());
    }
}
