//! The exporter thread: collects finished spans, batches, converts, sends, counts.
//!
//! ```text
//!  span close (any thread)                    exporter thread "spanlab-otlp"
//!  ───────────────────────                    ──────────────────────────────
//!  outbox.ready.push(record)  ◄── every 1 ms (16 ms when idle): swap `ready` out,
//!    full: drop it, count it                  convert to SpanData, send in batches,
//!  record ◄── outbox.spare ◄───────────────── hand the records back for reuse
//! ```
//!
//! Each program thread has an **outbox**: a mutex that only its owner and, once per
//! tick, the exporter take, so it is uncontended, and the program never waits on the
//! network. Records travel in bulk and come back to the thread that made them, to be
//! reused: in steady state a span's record costs no allocation, and no memory is freed
//! on a thread other than the one that allocated it (allocators pay dearly for that).
//! A thread's outbox holds at most `OTEL_BSP_MAX_QUEUE_SIZE` finished spans; past
//! that, spans are dropped and counted.
//!
//! Retries follow the OTLP specification inside `opentelemetry-otlp`: retryable codes
//! only (gRPC `UNAVAILABLE`, …; HTTP 429/502/503/504 and connection failures), with
//! exponential backoff and jitter, honouring the server's throttling hints. Each
//! attempt passes through a counter (a gRPC interceptor, an HTTP client wrapper), so
//! the report can say how many retries there were.
//!
//! # Accounting
//!
//! Every sampled span that finishes is counted `finished` by the thread that closed it,
//! then exactly one of: `dropped` (its outbox was full, or export had stopped),
//! `exported` (its batch was accepted) or `failed` (its batch was refused after the
//! retries). Spans still waiting or in flight when a report is made are `pending`, so
//! `exported + dropped + failed + pending == finished` holds in every report.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

use super::convert::Converter;
use super::span::ExportSpan;
use crate::core::sync::LockUnpoisoned;

/// How often the exporter thread collects while spans keep coming: often, so that
/// few records are in circulation (they stay in the caches) and each collection is
/// small.
const BUSY_TICK: Duration = Duration::from_millis(1);
/// A batch is sent once its spans' text reaches this size, whatever their number: gRPC
/// receivers refuse messages over 4 MiB by default, and captured prompts can be large.
const MAX_BATCH_BYTES: usize = 2 << 20;

/// The longest pause between collections while nothing comes (an idle program pays
/// ~60 wake-ups a second, not 1,000).
const IDLE_TICK: Duration = Duration::from_millis(16);

/// An `opentelemetry_sdk` span exporter behind a pointer (the SDK trait returns
/// `impl Future`, so it cannot be a trait object itself).
pub(crate) trait DynExporter: Send + Sync + std::fmt::Debug {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> Pin<Box<dyn Future<Output = OTelSdkResult> + Send + '_>>;
    fn set_resource(&mut self, resource: &Resource);
    fn shutdown(&self);
}

impl<E: SpanExporter + 'static> DynExporter for E {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> Pin<Box<dyn Future<Output = OTelSdkResult> + Send + '_>> {
        Box::pin(SpanExporter::export(self, batch))
    }
    fn set_resource(&mut self, resource: &Resource) {
        SpanExporter::set_resource(self, resource);
    }
    fn shutdown(&self) {
        let _ = SpanExporter::shutdown(self);
    }
}

/// One program thread's finished spans, and the records it may reuse. Records stay
/// boxed all their life: a live span points at its record, which must not move.
#[derive(Default)]
#[allow(clippy::vec_box)]
pub(crate) struct Outbox {
    /// Finished, waiting for the exporter.
    pub(crate) ready: Vec<Box<ExportSpan>>,
    /// Done with by the exporter: for the owner to reuse.
    pub(crate) spare: Vec<Box<ExportSpan>>,
}

/// A thread's outbox, shared with the exporter thread.
pub(crate) type SharedOutbox = Arc<Mutex<Outbox>>;

/// What the exporter thread shares with the program.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) exported: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    /// Requests sent, retries included (see the module docs).
    pub(crate) attempts: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
    /// Every thread's outbox, registered at its first sampled span.
    outboxes: Mutex<Vec<SharedOutbox>>,
    /// Set once the exporter thread has collected for the last time.
    pub(crate) stopped: AtomicBool,
    closing: AtomicBool,
    done: Mutex<bool>,
    done_signal: Condvar,
}

/// The exporter thread, and what the program's threads need to reach it.
pub(crate) struct Pipeline {
    pub(crate) shared: Arc<Shared>,
    /// A thread's outbox holds at most this many finished spans.
    pub(crate) capacity: usize,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The exporter thread's handle, to wake it for a flush.
    waker: std::thread::Thread,
}

impl Pipeline {
    /// Starts the exporter thread. `runtime` drives the exporter's I/O.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn start(
        shared: Arc<Shared>,
        exporter: Box<dyn DynExporter>,
        runtime: tokio::runtime::Runtime,
        converter: Converter,
        counts_attempts: bool,
        queue_size: usize,
        batch_size: usize,
        schedule_delay: Duration,
    ) -> std::io::Result<Pipeline> {
        let mut exporter = exporter;
        exporter.set_resource(converter.resource());
        let worker = Worker {
            exporter: Arc::from(exporter),
            runtime,
            in_flight: None,
            converter,
            counts_attempts,
            batch_size,
            schedule_delay,
            spare_limit: queue_size,
            shared: shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("spanlab-otlp".into())
            .spawn(move || worker.run())?;
        Ok(Pipeline {
            shared,
            capacity: queue_size,
            waker: thread.thread().clone(),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A new outbox for the calling thread, known to the exporter from now on.
    #[cold]
    pub(crate) fn register(&self) -> SharedOutbox {
        let outbox = SharedOutbox::default();
        self.shared.outboxes.lock_unpoisoned().push(outbox.clone());
        outbox
    }

    /// Asks the exporter thread to send everything finished so far and stop, and waits
    /// up to `timeout` for it. Later spans are dropped (and counted). Idempotent.
    pub(crate) fn shutdown(&self, timeout: Duration) {
        self.shared.closing.store(true, Release);
        self.waker.unpark();
        let done = self.shared.done.lock_unpoisoned();
        let (done, _) = self
            .shared
            .done_signal
            .wait_timeout_while(done, timeout, |done| !*done)
            .unwrap_or_else(|e| e.into_inner());
        if *done {
            if let Some(thread) = self.thread.lock_unpoisoned().take() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Pipeline {
    /// The layer is gone: the exporter thread sends what it has and ends, unwaited.
    fn drop(&mut self) {
        self.shared.closing.store(true, Release);
        self.waker.unpark();
    }
}

struct Worker {
    exporter: Arc<dyn DynExporter>,
    runtime: tokio::runtime::Runtime,
    /// The batch being sent (on the runtime's thread) while the next is converted
    /// here: at most one, as the SDK's exporters expect.
    in_flight: Option<(tokio::task::JoinHandle<OTelSdkResult>, u64)>,
    converter: Converter,
    /// The transport counts its own attempts; otherwise one per batch is counted here.
    counts_attempts: bool,
    batch_size: usize,
    schedule_delay: Duration,
    /// Records kept per outbox for reuse; more are freed.
    spare_limit: usize,
    shared: Arc<Shared>,
}

/// The batch being filled, and when the last one was sent.
struct Batch {
    spans: Vec<SpanData>,
    /// The spans' approximate size, against [`MAX_BATCH_BYTES`].
    bytes: usize,
    last_send: Instant,
}

impl Worker {
    fn run(mut self) {
        super::silence_this_thread();
        let mut batch = Batch {
            spans: Vec::with_capacity(self.batch_size),
            bytes: 0,
            last_send: Instant::now(),
        };
        let mut taken: Vec<Box<ExportSpan>> = Vec::new();
        let mut tick = BUSY_TICK;
        loop {
            let closing = self.is_last_collection();
            let collected = self.collect(&mut batch, &mut taken);
            if !batch.spans.is_empty()
                && (closing || batch.last_send.elapsed() >= self.schedule_delay)
            {
                self.send_batch(&mut batch);
            }
            if closing {
                self.settle();
                break;
            }
            self.settle_if_finished();
            tick = next_tick(tick, collected);
            std::thread::park_timeout(tick);
        }
        self.finish();
    }

    /// Whether the program asked to close. Read before collecting, so that a flush
    /// asked for now sees everything finished.
    fn is_last_collection(&self) -> bool {
        let closing = self.shared.closing.load(Acquire);
        if closing {
            // From here on, closes count their spans as dropped: this is the last
            // collection.
            self.shared.stopped.store(true, SeqCst);
        }
        closing
    }

    /// Takes every outbox's finished spans into `batch`, sending it whenever it is
    /// full, and hands the records back. Returns how many spans were taken.
    /// `taken` is only scratch space, kept between calls for its capacity.
    #[allow(clippy::vec_box)] // the records stay boxed: see `Outbox`
    fn collect(&mut self, batch: &mut Batch, taken: &mut Vec<Box<ExportSpan>>) -> usize {
        let outboxes: Vec<SharedOutbox> = self.shared.outboxes.lock_unpoisoned().clone();
        let mut collected = 0;
        for outbox in &outboxes {
            std::mem::swap(&mut outbox.lock_unpoisoned().ready, taken);
            collected += taken.len();
            for record in taken.iter() {
                self.add(batch, record);
            }
            self.give_back(outbox, taken);
        }
        collected
    }

    /// Converts one record into `batch`, and sends the batch once it is full by count
    /// or by size.
    fn add(&mut self, batch: &mut Batch, record: &ExportSpan) {
        batch.spans.push(self.converter.convert(record));
        batch.bytes += record.approx_bytes();
        if batch.spans.len() >= self.batch_size || batch.bytes >= MAX_BATCH_BYTES {
            self.send_batch(batch);
        }
    }

    /// Hands the records back to their thread, which clears and reuses them.
    #[allow(clippy::vec_box)] // the records stay boxed: see `Outbox`
    fn give_back(&self, outbox: &Mutex<Outbox>, taken: &mut Vec<Box<ExportSpan>>) {
        let mut outbox = outbox.lock_unpoisoned();
        let room = self.spare_limit.saturating_sub(outbox.spare.len());
        let keep = taken.len().min(room);
        outbox.spare.extend(taken.drain(..keep));
        drop(outbox);
        taken.clear(); // beyond the limit: freed here (rare)
    }

    /// Sends `batch` and starts the next one.
    fn send_batch(&mut self, batch: &mut Batch) {
        self.send(&mut batch.spans);
        batch.bytes = 0;
        batch.last_send = Instant::now();
    }

    /// Counts the batch in flight as soon as it is done, not when the next batch goes.
    fn settle_if_finished(&mut self) {
        if self
            .in_flight
            .as_ref()
            .is_some_and(|(s, _)| s.is_finished())
        {
            self.settle();
        }
    }

    /// After the last collection: shuts the exporter down and wakes
    /// [`Pipeline::shutdown`], which waits for this.
    fn finish(self) {
        self.exporter.shutdown();
        *self.shared.done.lock_unpoisoned() = true;
        self.shared.done_signal.notify_all();
    }

    /// Starts sending one batch, once the previous one is settled; its spans are then
    /// exported or failed.
    fn send(&mut self, batch: &mut Vec<SpanData>) {
        self.settle();
        let count = batch.len() as u64;
        if !self.counts_attempts {
            self.shared.attempts.fetch_add(1, Relaxed);
        }
        let data = std::mem::replace(batch, Vec::with_capacity(self.batch_size));
        let exporter = self.exporter.clone();
        let sending = self
            .runtime
            .spawn(async move { exporter.export(data).await });
        self.in_flight = Some((sending, count));
    }

    /// Waits for the batch in flight, if any, and counts its spans.
    fn settle(&mut self) {
        let Some((sending, count)) = self.in_flight.take() else {
            return;
        };
        let result = self
            .runtime
            .block_on(sending)
            .unwrap_or_else(|e| Err(OTelSdkError::InternalFailure(format!("export task: {e}"))));
        self.shared.batches.fetch_add(1, Relaxed);
        match result {
            Ok(()) => {
                self.shared.exported.fetch_add(count, Relaxed);
            }
            Err(e) => {
                self.shared.failed.fetch_add(count, Relaxed);
                self.shared.failed_batches.fetch_add(1, Relaxed);
                *self.shared.last_error.lock_unpoisoned() = Some(e.to_string());
            }
        }
    }
}

/// The pause before the next collection: short while spans come, doubling up to
/// [`IDLE_TICK`] while none do.
fn next_tick(tick: Duration, collected: usize) -> Duration {
    if collected > 0 {
        BUSY_TICK
    } else {
        (tick * 2).min(IDLE_TICK)
    }
}
