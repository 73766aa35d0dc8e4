//! OTLP export: every finished span, sent to a collector without slowing the program.
//!
//! Turned on by an endpoint (`OTEL_EXPORTER_OTLP_ENDPOINT`, or
//! [`Builder::otlp_endpoint`](crate::Builder::otlp_endpoint)); with none, nothing is
//! built and nothing touches the network. The variables and their defaults are in
//! [`config`].
//!
//! # How a span travels
//!
//! 1. **Creation** (program thread): the sampling decision is made at the root of a
//!    trace and inherited below it; a sampled span gets an export record
//!    with its ids (trace, span, parent: exactly the tracing span tree, also across
//!    threads and tasks) and its fields as typed attributes.
//! 2. **While alive**: `Span::record` values, events inside it (as span events; an
//!    ERROR event also sets the Error status) and follows-from links are added.
//! 3. **Close** (program thread): busy time, end time, panic status and spanlab's own
//!    attributes (GPU, seeds, GenAI) are filled in and the record is offered to a
//!    bounded queue. A full queue drops it and counts it: the program never waits.
//! 4. **Exporter thread**: batches, converts to
//!    `opentelemetry_sdk::trace::SpanData` and calls `opentelemetry_otlp::SpanExporter`
//!    (gRPC or HTTP/protobuf, with the specification's retries), with up to
//!    `OTEL_BSP_MAX_CONCURRENT_EXPORTS` requests in flight at once.
//!
//! The [`Guard`](crate::Guard) flushes on drop, waiting at most the flush timeout
//! (5 s by default) for the last answers, and not at all for a receiver every attempt
//! since the last success failed to connect to (`pipeline.rs` says why). The report's
//! export section accounts for every span: `exported + dropped + failed +
//! queued_at_exit + in_flight_at_exit == finished`, where spans queued at exit were
//! never sent (lost for certain) and spans in flight at exit were sent and not answered
//! (they may have arrived).
//!
//! # Trace context going out
//!
//! [`current_traceparent`] (and [`traceparent`], of any span) is the W3C `traceparent`
//! of a live span, to hand to a child process as `TRACEPARENT`, which spanlab there
//! reads as its run's remote parent ([`config`]), or to an outgoing HTTP call: a
//! launcher that does so for its ranks makes the whole job one trace
//! (`examples/launcher.rs`).
//!
//! # Example
//!
//! Any `opentelemetry_sdk` span exporter can stand in for OTLP (here one that keeps the
//! spans in memory), and the report says where every span went:
//!
//! ```
//! use std::sync::{Arc, Mutex};
//! use opentelemetry_sdk::{error::OTelSdkResult, trace::{SpanData, SpanExporter}};
//! use tracing_subscriber::prelude::*;
//!
//! #[derive(Debug, Clone, Default)]
//! struct Keep(Arc<Mutex<Vec<SpanData>>>);
//! impl SpanExporter for Keep {
//!     async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
//!         self.0.lock().unwrap().extend(batch);
//!         Ok(())
//!     }
//! }
//!
//! let kept = Keep::default();
//! let (layer, guard) = spanlab::SpanLab::builder()
//!     .ignore_env()
//!     .report_to(spanlab::ReportTarget::Off)
//!     .otlp_exporter(kept.clone())
//!     .build();
//! tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
//!     let _epoch = tracing::info_span!("epoch", n = 1).entered();
//!     tracing::info_span!("forward").in_scope(|| ());
//! });
//! drop(guard); // flushes, then reports
//! let spans = kept.0.lock().unwrap();
//! let names: Vec<&str> = spans.iter().map(|s| s.name.as_ref()).collect();
//! assert_eq!(names, ["forward", "epoch"]);
//! assert_eq!(spans[0].parent_span_id, spans[1].span_context.span_id());
//! ```
//!
//! The exporter thread (and the runtime's blocking threads) run with tracing's no-op
//! dispatcher as their default: what tonic, hyper and h2 trace there reaches no
//! subscriber, so export never feeds on itself and costs the program's subscriber
//! nothing.

pub mod config;
mod context;
pub(crate) mod convert;
pub mod genai;
pub(crate) mod hooks;
pub(crate) mod pipeline;
pub(crate) mod span;
pub(crate) mod transport;

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicU64, Ordering::*};
use std::sync::OnceLock;
use std::time::Duration;

use thread_local::ThreadLocal;
use tracing_core::span::Attributes;

pub(crate) use config::ExportConfig;
pub use config::{Protocol, RemoteParent, Sampler};
pub use context::{current_traceparent, traceparent};
pub use convert::attributes;
pub(crate) use pipeline::DynExporter;

pub(crate) use hooks::ExportRider;

use crate::core::clock::Clock;
use crate::core::padded::CachePadded;
use crate::core::rider::SpanWord;
use crate::core::spans::SpanState;
use crate::core::sync::LockUnpoisoned;
use crate::sinks::report::{ExportReport, FlushOutcome};
use pipeline::{Pipeline, SharedOutbox};
use span::{ExportSpan, Failure};

/// Makes the calling thread trace into nothing, for good (export's own threads).
pub(crate) fn silence_this_thread() {
    std::mem::forget(tracing::dispatcher::set_default(&tracing::Dispatch::none()));
    yield_to_the_program();
}

/// Lowers the calling thread's scheduling priority (nice +10): when the program's own
/// threads want every core, export runs in what is left, and a span it cannot send in
/// time is dropped and counted rather than the program slowed. (On Linux `setpriority`
/// with `PRIO_PROCESS` and id 0 applies to the calling thread alone.)
fn yield_to_the_program() {
    #[cfg(target_os = "linux")]
    // SAFETY: plain system calls on the calling thread; lowering one's own priority
    // needs no privilege, and a failure leaves the priority as it was.
    unsafe {
        let current = libc::getpriority(libc::PRIO_PROCESS, 0);
        let _ = libc::setpriority(libc::PRIO_PROCESS, 0, (current + 10).min(19));
    }
}

/// A counter only its owning thread increments: a load and a store, no
/// read-modify-write. Readers on other threads see a recent value; sums over threads
/// are exact once the owners are quiet.
///
/// The store releases and the read acquires (plain moves on x86-64): a reader that
/// sees one counter's increment also sees every increment its owner made before, so
/// a report that reads `dropped` before `finished` never counts a drop without its
/// finish.
#[derive(Default)]
pub(crate) struct OwnerCounter(AtomicU64);

impl OwnerCounter {
    /// Adds one. Owner only.
    #[inline]
    pub(crate) fn bump(&self) {
        self.0.store(self.0.load(Relaxed) + 1, Release);
    }

    /// The current value.
    pub(crate) fn get(&self) -> u64 {
        self.0.load(Acquire)
    }
}

/// What export keeps per program thread.
#[derive(Default)]
pub(crate) struct ExportThread {
    /// Sampled spans this thread closed.
    finished: OwnerCounter,
    /// Of those, the ones the export queue had no room for.
    dropped: OwnerCounter,
    /// This thread's finished spans on their way to the exporter thread.
    outbox: OnceLock<SharedOutbox>,
    /// Records ready for reuse; boxed, as a live span's word points at its record.
    #[allow(clippy::vec_box)]
    pool: UnsafeCell<Vec<Box<ExportSpan>>>,
}

// SAFETY: other threads only read the counters (atomics) and the outbox (a mutex);
// `pool` is reached only through `Export::pool`, by the thread the entry belongs to.
unsafe impl Sync for ExportThread {}

/// Export, running: the sampling rule and the queue to the exporter thread.
pub(crate) struct Export {
    sampler: Sampler,
    remote: Option<RemoteParent>,
    pub(crate) capture_content: bool,
    flush_timeout: Duration,
    /// `"grpc http://…"`, for the report.
    target: String,
    pipeline: Pipeline,
    threads: ThreadLocal<CachePadded<ExportThread>>,
}

impl std::fmt::Debug for Export {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Export")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl Export {
    /// Builds the exporter (`custom`, or OTLP from `config`) and starts its thread.
    pub(crate) fn start(
        config: &ExportConfig,
        custom: Option<Box<dyn DynExporter>>,
        clock: Clock,
        env: &crate::config::Env,
    ) -> Result<Export, String> {
        // One I/O thread: it sends the batches in flight while the exporter thread
        // converts the next.
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .thread_name("spanlab-otlp")
            .on_thread_start(silence_this_thread)
            .build()
            .map_err(|e| format!("cannot start the export runtime: {e}"))?;
        let shared = std::sync::Arc::new(pipeline::Shared::default());
        let (exporter, target) = match custom {
            Some(exporter) => (exporter, "custom exporter".to_string()),
            None => {
                // tonic's lazy channel needs the runtime's context to be built.
                let _context = runtime.enter();
                let exporter = transport::build(config, shared.clone())?;
                let endpoint = config.endpoint.as_deref().unwrap_or_default();
                (exporter, format!("{} {endpoint}", config.protocol.as_str()))
            }
        };
        let converter = convert::Converter::new(
            clock,
            convert::resource(config, env),
            config.remote_parent.map(|p| p.span_id),
        );
        let sending = pipeline::Sending {
            queue_size: config.queue_size,
            batch_size: config.batch_size,
            schedule_delay: config.schedule_delay,
            max_in_flight: config.max_concurrent_exports,
        };
        let pipeline = Pipeline::start(shared, exporter, runtime, converter, sending)
            .map_err(|e| format!("cannot start the exporter thread: {e}"))?;
        Ok(Export {
            sampler: config.sampler,
            remote: config.remote_parent,
            capture_content: config.capture_content,
            flush_timeout: config.flush_timeout,
            target,
            pipeline,
            threads: ThreadLocal::new(),
        })
    }

    /// A new span's record, or none when its trace is not sampled. `parent`: the
    /// parent span's record when spanlab knows the parent (`SpanWord::NONE` when the
    /// parent is not sampled), `None` for a root span.
    #[inline]
    pub(crate) fn begin(
        &self,
        thread: &ExportThread,
        attrs: &Attributes<'_>,
        parent: Option<SpanWord>,
        now: u64,
    ) -> SpanWord {
        let (trace_id, parent) = match parent {
            // SAFETY: the parent is alive (the new span holds a reference to it).
            Some(p) => match unsafe { ExportSpan::ids(p) } {
                Some((trace, span)) => (trace, Some(span)),
                None => return SpanWord::NONE, // the parent's trace is not sampled
            },
            None => match self.remote {
                Some(remote) => {
                    if !self
                        .sampler
                        .sample_root(remote.trace_id, Some(remote.sampled))
                    {
                        return SpanWord::NONE;
                    }
                    (remote.trace_id, Some(remote.span_id))
                }
                None => {
                    let trace = span::new_trace_id();
                    if !self.sampler.sample_root(trace, None) {
                        return SpanWord::NONE;
                    }
                    (trace, None)
                }
            },
        };
        let meta = attrs.metadata();
        // SAFETY: `thread` is this thread's own entry; no other borrow of its pool is
        // alive (`refill` and `finish` take theirs only while they run).
        let pooled = unsafe { Self::pool(thread) }.pop();
        let mut record = pooled
            .or_else(|| self.refill(thread))
            .unwrap_or_else(|| ExportSpan::blank(meta));
        record.reset(meta, trace_id, parent, now);
        // Into the record's own buffer, which keeps its capacity from use to use.
        let mut visitor = span::FieldVisitor {
            attributes: std::mem::take(&mut record.attributes),
            text: std::mem::take(&mut record.text),
            message: None,
        };
        attrs.record(&mut visitor);
        record.attributes = visitor.attributes;
        record.text = visitor.text;
        record.into_ptr()
    }

    /// The calling thread's export state (for the rider, which remembers its address
    /// in the core's per-thread word).
    #[inline]
    pub(crate) fn this_thread(&self) -> &ExportThread {
        &self.threads.get_or_default().0
    }

    /// The records `thread` keeps for reuse.
    ///
    /// # Safety
    /// `thread` is the calling thread's own entry ([`Export::this_thread`]), and no
    /// other borrow of its pool is alive. (`begin`, `refill` and `finish` take their
    /// borrow and end it before returning, and no hook runs inside another: rule 5 of
    /// `core::spans`.)
    #[inline]
    #[allow(clippy::mut_from_ref, clippy::vec_box)]
    unsafe fn pool(thread: &ExportThread) -> &mut Vec<Box<ExportSpan>> {
        // SAFETY: the caller's contract; `ThreadLocal` hands each thread its own entry.
        unsafe { &mut *thread.pool.get() }
    }

    /// This thread's outbox (registered with the exporter on first use).
    #[inline]
    fn outbox<'a>(&self, thread: &'a ExportThread) -> &'a SharedOutbox {
        thread.outbox.get_or_init(|| self.pipeline.register())
    }

    /// Takes back the records the exporter is done with; one of them, if any.
    #[cold]
    fn refill(&self, thread: &ExportThread) -> Option<Box<ExportSpan>> {
        let outbox = self.outbox(thread);
        // SAFETY: `thread` is the caller's own (see `begin`), and this is the only
        // borrow of its pool while it runs.
        let pool = unsafe { Self::pool(thread) };
        std::mem::swap(&mut outbox.lock_unpoisoned().spare, pool);
        pool.pop()
    }

    /// A sampled span closed: completes its record and queues it. `end` is the close
    /// time for a span never entered.
    pub(crate) fn finish(
        &self,
        thread: &ExportThread,
        mut record: Box<ExportSpan>,
        state: &SpanState,
        panicking: bool,
        end: impl FnOnce() -> u64,
    ) {
        record.end_ticks = if state.entered {
            state.last_exit
        } else {
            end()
        };
        record.busy_ticks = state.busy_ticks;
        // The report's call duration: first enter to last exit (none if never entered).
        record.wall_ticks = if state.entered {
            state.last_exit.saturating_sub(state.first_enter)
        } else {
            0
        };
        if panicking || state.panicked {
            record.rare_mut().failure = Some(Failure::Panicked);
        } else if state.errors > 0 && record.failure().is_none() {
            // The ERROR event was seen, but on a path that kept no message.
            record.rare_mut().failure = Some(Failure::Error("error".into()));
        }
        thread.finished.bump();
        if !self
            .pipeline
            .shared
            .stopped
            .load(std::sync::atomic::Ordering::SeqCst)
        {
            let mut outbox = self.outbox(thread).lock_unpoisoned();
            if outbox.ready.len() < self.pipeline.capacity {
                outbox.ready.push(record);
                return;
            }
        }
        // No room, or export has stopped: dropped, counted, and the record kept for
        // reuse (up to a full queue's worth: a thread that only closes spans made
        // elsewhere never draws from its pool).
        thread.dropped.bump();
        // SAFETY: `thread` is this thread's own, and no other borrow of its pool is alive.
        let pool = unsafe { Self::pool(thread) };
        if pool.len() < self.pipeline.capacity {
            pool.push(record);
        }
    }

    /// Sends what is queued and stops the exporter thread, waiting at most the flush
    /// timeout, and not at all for an unreachable receiver. Spans finished later are
    /// dropped and counted.
    pub(crate) fn shutdown(&self) {
        self.pipeline.shutdown(self.flush_timeout);
    }

    /// The export section of a report.
    pub(crate) fn report(&self) -> ExportReport {
        // The exporter's counts first, at once; then each thread's `dropped` before its
        // `finished`. A span counted in any of them was counted finished before, so
        // what is left over is exactly what is still queued (see `OwnerCounter`).
        let shared = &self.pipeline.shared;
        let ledger = shared.ledger();
        let mut report = ExportReport {
            target: self.target.clone(),
            exported: ledger.exported,
            failed: ledger.failed,
            in_flight_at_exit: ledger.in_flight_spans,
            batches: ledger.batches,
            failed_batches: ledger.failed_batches,
            retries: shared.retries.load(Relaxed),
            flush: ledger.exit.unwrap_or_default(),
            given_up_at_exit: ledger.given_up,
            last_error: ledger.last_error.clone(),
            ..ExportReport::default()
        };
        drop(ledger);
        report.dropped = self.threads.iter().map(|t| t.0.dropped.get()).sum();
        report.finished = self.threads.iter().map(|t| t.0.finished.get()).sum();
        report.queued_at_exit = report.finished.saturating_sub(
            report.exported + report.dropped + report.failed + report.in_flight_at_exit,
        );
        if report.flush == FlushOutcome::ReceiverDown {
            // Never to be sent, to a receiver that could not be reached: failed.
            report.failed += report.queued_at_exit;
            report.given_up_at_exit += report.queued_at_exit;
            report.queued_at_exit = 0;
        }
        report
    }
}

#[cfg(test)]
mod context_tests;
#[cfg(test)]
mod exit_tests;
#[cfg(test)]
mod slow_receiver;
#[cfg(test)]
mod tests;
