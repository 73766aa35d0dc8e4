//! Trace context going out: the W3C `traceparent` of a live span, handed to a child
//! process (as `TRACEPARENT`, which spanlab in the child reads as its run's remote
//! parent: [`config`](super::config)) or to an outgoing HTTP call, so that one job is
//! one trace.
//!
//! # What it returns
//!
//! `00-<trace id>-<span id>-01`: the ids the span is exported with. spanlab gives ids
//! only to spans of sampled traces (a span whose trace the sampler turned down carries
//! no export record at all), so the flags are always `01`, sampled. There is nothing
//! to hand on, and the answer is `None`, when:
//!
//! * there is no current span (or the span handed in is disabled);
//! * the span's subscriber has no spanlab layer, or is not built on
//!   `tracing_subscriber::Registry`, or its spanlab layer did not see the span (a
//!   per-layer filter turned it away);
//! * export is off (no endpoint), so no span has ids;
//! * the span's trace is not sampled. A child given no `TRACEPARENT` then decides at
//!   its own roots; to keep a whole job out of export, give every process the same
//!   sampler (`OTEL_TRACES_SAMPLER` is inherited), or, when the parent itself runs
//!   under a remote parent that is not sampled, let the child inherit that
//!   `TRACEPARENT` (its `00` flags keep the child's roots unsampled too).
//!
//! # How it reads, and why that is safe
//!
//! The span's ids live in its export record, whose address is the span's word in the
//! core. Outside any callback, the word is read through the subscriber's `Dispatch`:
//! the spanlab layer hands out its core (`Layer::downcast_raw`), whose span table is
//! searched with atomic loads only, and, for a span evicted from it, the span's
//! registry extension is read under its lock, for reading. No per-thread state is
//! taken and nothing is traced (rule 5 of `core::spans` cannot be broken); the
//! callbacks' fast paths take no lock at all, and the one lock taken here is held for
//! one lookup with no other held (rule 4's lock order stands), so a callback's slow
//! path waits at most that long. The handle to the span keeps it open while its record
//! is read, and a record's ids never change while the span is open, whatever its owner
//! thread adds to the record meanwhile.

use super::span::ExportSpan;
use super::RemoteParent;

/// The W3C `traceparent` of the current span (`tracing::Span::current()`), for handing
/// to a child process as `TRACEPARENT` or to an outgoing request: the child's root
/// spans then join this trace, parented to this span. `None` when there is nothing to
/// hand on: no current span, spanlab is not the subscriber, export is off, or the
/// span's trace is not sampled. (spanlab gives ids only to the spans of sampled
/// traces, so the flags are always `01`; a child handed nothing decides by its own
/// sampler, and one that inherits an unsampled `TRACEPARENT` stays unsampled.)
///
/// Safe on any thread and at any time, and it never panics; it is not meant for the
/// hot path (it searches the span table and allocates the string).
///
/// ```
/// use opentelemetry_sdk::{error::OTelSdkResult, trace::{SpanData, SpanExporter}};
/// use tracing_subscriber::prelude::*;
///
/// // Spans have ids only with export on: here, to an exporter that keeps nothing.
/// #[derive(Debug)]
/// struct Nowhere;
/// impl SpanExporter for Nowhere {
///     async fn export(&self, _batch: Vec<SpanData>) -> OTelSdkResult {
///         Ok(())
///     }
/// }
///
/// let (layer, _guard) = spanlab::SpanLab::builder()
///     .ignore_env()
///     .report_to(spanlab::ReportTarget::Off)
///     .otlp_exporter(Nowhere)
///     .build();
/// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
///     assert_eq!(spanlab::export::current_traceparent(), None); // no span yet
///
///     let _launch = tracing::info_span!("launch").entered();
///     let traceparent = spanlab::export::current_traceparent().unwrap();
///     // `00-<32 hex digits of trace id>-<16 of span id>-01`
///     let parent = spanlab::export::RemoteParent::parse(&traceparent).unwrap();
///     assert!(parent.sampled);
///
///     // A worker whose root spans join this trace, under `launch`:
///     let mut worker = std::process::Command::new("./worker");
///     worker.env("TRACEPARENT", &traceparent);
/// });
/// ```
pub fn current_traceparent() -> Option<String> {
    traceparent(&tracing::Span::current())
}

/// The W3C `traceparent` of `span`, as [`current_traceparent`] gives the current
/// span's: for a span that is not the current one (one made for a request, not
/// entered yet), from any thread. (Not from another layer's callback that holds this
/// span's extensions for writing: the lock it may need would be its caller's.)
///
/// ```
/// // No subscriber: the span is disabled, and has no ids.
/// let span = tracing::info_span!("request");
/// assert_eq!(spanlab::export::traceparent(&span), None);
/// ```
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    span.with_subscriber(|(id, dispatch)| {
        let word = crate::core::layer::word_of_span(dispatch, id)?;
        // SAFETY: export is the one rider that keeps a span word (`crate::lab`), so a
        // word is the address of the span's export record; `span` is a handle to the
        // span, which stays open, and its record alive, while the ids are read.
        let (trace_id, span_id) = unsafe { ExportSpan::ids(word) }?;
        let parent = RemoteParent {
            trace_id,
            span_id,
            sampled: true,
        };
        Some(parent.to_string())
    })
    .flatten()
}
