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
//! # Requests in flight
//!
//! A batch is sent as a task of its own on the export runtime, and up to
//! `OTEL_BSP_MAX_CONCURRENT_EXPORTS` of them are in flight at once: a receiver that
//! takes long to answer each request but answers several at once is not kept waiting
//! for one answer at a time. With all of them out, the exporter thread waits for one
//! to be answered before it sends the next; meanwhile spans wait in the outboxes
//! (and are dropped, and counted, once those are full). Each task counts its batch's
//! spans itself when the answer comes, so the counts are current whatever the exporter
//! thread is doing.
//!
//! Retries follow the OTLP specification inside `opentelemetry-otlp`: retryable codes
//! only (gRPC `UNAVAILABLE`, …; HTTP 429/502/503/504 and connection failures), with
//! exponential backoff and jitter, honouring the server's throttling hints. Each
//! attempt passes through [`Shared::note_attempt`] (from a gRPC interceptor or an HTTP
//! client wrapper), which knows the batch it belongs to (a task-local count), so that a
//! retry is counted when a request is sent again, and never for a batch's first
//! request, answered or not. The transports also say whether each connection attempt
//! succeeded ([`Shared::note_unreachable`], [`Shared::note_reached`]), for the flush.
//!
//! # Accounting
//!
//! Every sampled span that finishes is counted `finished` by the thread that closed it,
//! then exactly one of: `dropped` (its outbox was full, or export had stopped),
//! `exported` (its batch was accepted) or `failed` (its batch was refused after the
//! retries). Until then it is either queued (in an outbox or a batch not yet sent) or
//! in flight (sent, not answered), so `exported + dropped + failed + queued +
//! in_flight == finished` holds in every report. The exporter's counts (the
//! [`Ledger`]) change under one lock, batch by batch, and a report reads them at once:
//! a batch answered while the report is made is either still in flight or already
//! settled, never both or neither.
//!
//! # The flush at exit
//!
//! [`Pipeline::shutdown`] asks for a last collection, then waits for every batch to be
//! answered. It stops waiting, and gives up, in two cases:
//!
//! * **The flush timeout ran out.** Nothing more is sent: what is still queued is lost
//!   for certain (`queued_at_exit`). Requests in flight are left to finish, as they
//!   may well arrive (`in_flight_at_exit`); their answers, if the process lives on,
//!   still move them to `exported` or `failed`.
//! * **The receiver is unreachable:** every connection attempt since the last answer
//!   failed. Waiting cannot help, so the flush gives up at once, without waiting for
//!   its timeout, whether that was so when it began or became so while it waited. The
//!   requests in flight are cancelled and counted failed with everything queued.
//!
//! A receiver that answers slowly, or one whose connections hang without being
//! refused, gets the whole timeout.

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::{OTelSdkError, OTelSdkResult};
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

use super::convert::Converter;
use super::span::ExportSpan;
use crate::core::sync::LockUnpoisoned;
use crate::sinks::report::FlushOutcome;

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

/// What the exporter thread shares with the program and the transports.
#[derive(Default)]
pub(crate) struct Shared {
    /// Requests sent again (see [`Shared::note_attempt`]).
    pub(crate) retries: AtomicU64,
    /// What the last connection attempt said about the receiver: `REACH_UP`,
    /// `REACH_DOWN`, or 0 before the first one.
    reach: AtomicU8,
    /// The exporter's counts and the batches in flight.
    ledger: Mutex<Ledger>,
    /// Signalled whenever the ledger changes, and when the receiver turns unreachable.
    changed: Condvar,
    /// Every thread's outbox, registered at its first sampled span.
    outboxes: Mutex<Vec<SharedOutbox>>,
    /// Set once the exporter thread has collected for the last time, or the flush gave
    /// up: spans closed from then on are dropped.
    pub(crate) stopped: AtomicBool,
    closing: AtomicBool,
    /// Set with [`Ledger::exit`] when the flush gave up: nothing more is converted.
    given_up: AtomicBool,
}

/// The last connection attempt succeeded, or a request was answered since.
const REACH_UP: u8 = 1;
/// The last connection attempt failed, and no request was answered since.
const REACH_DOWN: u8 = 2;

/// The exporter's counts, changed together under one lock.
#[derive(Default)]
pub(crate) struct Ledger {
    pub(crate) exported: u64,
    pub(crate) failed: u64,
    /// Batches sent (each counted once, whatever its retries).
    pub(crate) batches: u64,
    pub(crate) failed_batches: u64,
    /// The spans of the batches in `in_flight`.
    pub(crate) in_flight_spans: u64,
    in_flight: Vec<InFlight>,
    next_batch: u64,
    pub(crate) last_error: Option<String>,
    /// How the flush ended; `None` before it did.
    pub(crate) exit: Option<FlushOutcome>,
    /// Of `failed`: spans the flush gave up on with the receiver unreachable, in flight
    /// then (the queued ones are added by the report, which counts them).
    pub(crate) given_up: u64,
    /// The exporter thread has sent everything and had every answer.
    done: bool,
    /// Why the last connection attempt failed.
    connect_error: Option<String>,
}

/// A batch sent and not answered.
struct InFlight {
    id: u64,
    spans: u64,
    task: tokio::task::AbortHandle,
}

tokio::task_local! {
    /// Requests made so far for the batch the current task sends.
    static ATTEMPTS: Cell<u32>;
}

impl Shared {
    /// The ledger, locked.
    pub(crate) fn ledger(&self) -> MutexGuard<'_, Ledger> {
        self.ledger.lock_unpoisoned()
    }

    /// A request is about to be sent (the transports call this for every attempt, in
    /// the task of the batch it belongs to): a retry when the batch had one before.
    pub(crate) fn note_attempt(&self) {
        let again = ATTEMPTS
            .try_with(|n| {
                n.set(n.get() + 1);
                n.get() > 1
            })
            .unwrap_or(false);
        if again {
            self.retries.fetch_add(1, Relaxed);
        }
    }

    /// A connection was made, or a request answered: the receiver is there.
    pub(crate) fn note_reached(&self) {
        self.reach.store(REACH_UP, Relaxed);
    }

    /// A connection attempt failed, with `error`. Wakes a flush that waits, which
    /// gives up.
    pub(crate) fn note_unreachable(&self, error: &dyn std::error::Error) {
        // The error and its causes: "tcp connect error: Connection refused (os error 111)".
        let mut message = error.to_string();
        let mut cause = error.source();
        while let Some(e) = cause {
            message = format!("{message}: {e}");
            cause = e.source();
        }
        let mut ledger = self.ledger();
        ledger.connect_error = Some(message);
        // Under the lock, so that a flush between its check and its wait sees it.
        if self.reach.swap(REACH_DOWN, Relaxed) != REACH_DOWN {
            drop(ledger);
            self.changed.notify_all();
        }
    }

    /// Whether every connection attempt since the last answer failed (and there was
    /// at least one).
    fn receiver_down(&self) -> bool {
        self.reach.load(Relaxed) == REACH_DOWN
    }

    /// Waits on `changed`, at most `timeout` when there is one.
    fn wait<'a>(
        &self,
        ledger: MutexGuard<'a, Ledger>,
        timeout: Option<Duration>,
    ) -> MutexGuard<'a, Ledger> {
        match timeout {
            Some(t) => {
                self.changed
                    .wait_timeout(ledger, t)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0
            }
            None => self
                .changed
                .wait(ledger)
                .unwrap_or_else(PoisonError::into_inner),
        }
    }

    /// Counts batch `id`'s answer, unless the flush gave up on it (then it is counted
    /// already).
    fn settle(&self, id: u64, result: OTelSdkResult) {
        let mut ledger = self.ledger();
        let Some(i) = ledger.in_flight.iter().position(|b| b.id == id) else {
            return;
        };
        let batch = ledger.in_flight.swap_remove(i);
        ledger.in_flight_spans -= batch.spans;
        match result {
            Ok(()) => ledger.exported += batch.spans,
            Err(e) => {
                ledger.failed += batch.spans;
                ledger.failed_batches += 1;
                ledger.last_error = Some(e.to_string());
            }
        }
        drop(ledger);
        self.changed.notify_all();
    }

    /// Ends the flush without waiting any longer: nothing more is sent, and spans
    /// closed from now on are dropped. With the receiver unreachable, the batches in
    /// flight are cancelled and counted failed.
    fn give_up(&self, ledger: &mut Ledger, why: FlushOutcome) {
        ledger.exit = Some(why);
        self.given_up.store(true, Relaxed);
        self.stopped.store(true, SeqCst);
        if why == FlushOutcome::ReceiverDown {
            if let Some(e) = ledger.connect_error.take() {
                ledger.last_error = Some(format!("cannot connect to the receiver: {e}"));
            }
            for batch in std::mem::take(&mut ledger.in_flight) {
                batch.task.abort();
                ledger.failed += batch.spans;
                ledger.failed_batches += 1;
                ledger.given_up += batch.spans;
            }
            ledger.in_flight_spans = 0;
        }
    }
}

/// Settles its batch as failed when dropped unsettled: the export panicked, or the
/// runtime went away under it. (A batch settled already, or cancelled by the flush,
/// which counted it, is no longer in the ledger: then this does nothing.)
struct SettleOnDrop {
    shared: Arc<Shared>,
    id: u64,
}

impl Drop for SettleOnDrop {
    fn drop(&mut self) {
        self.shared.settle(
            self.id,
            Err(OTelSdkError::InternalFailure(
                "the export task ended without an answer".into(),
            )),
        );
    }
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

/// How the exporter thread batches and sends.
pub(crate) struct Sending {
    /// A thread's outbox holds at most this many finished spans.
    pub(crate) queue_size: usize,
    pub(crate) batch_size: usize,
    pub(crate) schedule_delay: Duration,
    /// Requests in flight at once (at least 1).
    pub(crate) max_in_flight: usize,
}

impl Pipeline {
    /// Starts the exporter thread. `runtime` drives the exporter's I/O.
    pub(crate) fn start(
        shared: Arc<Shared>,
        exporter: Box<dyn DynExporter>,
        runtime: tokio::runtime::Runtime,
        converter: Converter,
        sending: Sending,
    ) -> std::io::Result<Pipeline> {
        let mut exporter = exporter;
        exporter.set_resource(converter.resource());
        let worker = Worker {
            exporter: Arc::from(exporter),
            runtime,
            converter,
            batch_size: sending.batch_size,
            schedule_delay: sending.schedule_delay,
            max_in_flight: sending.max_in_flight.max(1),
            spare_limit: sending.queue_size,
            shared: shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("spanlab-otlp".into())
            .spawn(move || worker.run())?;
        Ok(Pipeline {
            shared,
            capacity: sending.queue_size,
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
    /// up to `timeout` for every answer; gives up at once when the receiver is
    /// unreachable (see the module docs). Later spans are dropped (and counted).
    /// Idempotent: a second call returns how the first ended.
    pub(crate) fn shutdown(&self, timeout: Duration) -> FlushOutcome {
        self.shared.closing.store(true, Release);
        self.waker.unpark();
        let deadline = Instant::now().checked_add(timeout);
        let mut ledger = self.shared.ledger();
        let outcome = loop {
            if let Some(exit) = ledger.exit {
                break exit;
            }
            if ledger.done {
                ledger.exit = Some(FlushOutcome::Complete);
                break FlushOutcome::Complete;
            }
            if self.shared.receiver_down() {
                self.shared.give_up(&mut ledger, FlushOutcome::ReceiverDown);
                break FlushOutcome::ReceiverDown;
            }
            let left = deadline.map(|d| d.saturating_duration_since(Instant::now()));
            if left == Some(Duration::ZERO) {
                self.shared.give_up(&mut ledger, FlushOutcome::TimedOut);
                break FlushOutcome::TimedOut;
            }
            ledger = self.shared.wait(ledger, left);
        };
        drop(ledger);
        // The exporter thread may wait for a free slot: it stops sending now.
        self.shared.changed.notify_all();
        if outcome == FlushOutcome::Complete {
            if let Some(thread) = self.thread.lock_unpoisoned().take() {
                let _ = thread.join();
            }
        }
        outcome
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
    /// Runs the requests in flight, each a task of its own.
    runtime: tokio::runtime::Runtime,
    converter: Converter,
    batch_size: usize,
    schedule_delay: Duration,
    max_in_flight: usize,
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
                break;
            }
            tick = next_tick(tick, collected);
            std::thread::park_timeout(tick);
        }
        self.wait_for_answers();
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
    /// or by size. Once the flush gave up, records are only handed back: they will
    /// not be sent.
    fn add(&mut self, batch: &mut Batch, record: &ExportSpan) {
        if self.shared.given_up.load(Relaxed) {
            return;
        }
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

    /// Starts sending one batch once fewer than `max_in_flight` are in flight; its task
    /// counts its spans exported or failed when the answer comes. Once the flush gave
    /// up, the batch is not sent: its spans stay counted as queued.
    fn send(&mut self, batch: &mut Vec<SpanData>) {
        let data = std::mem::replace(batch, Vec::with_capacity(self.batch_size));
        let spans = data.len() as u64;
        let mut ledger = self.shared.ledger();
        while ledger.exit.is_none() && ledger.in_flight.len() >= self.max_in_flight {
            ledger = self.shared.wait(ledger, None);
        }
        if ledger.exit.is_some() {
            return;
        }
        let id = ledger.next_batch;
        ledger.next_batch += 1;
        let exporter = self.exporter.clone();
        let settle = SettleOnDrop {
            shared: self.shared.clone(),
            id,
        };
        // Spawned under the lock: the task cannot settle before it is in the ledger.
        let task = self.runtime.spawn(ATTEMPTS.scope(Cell::new(0), async move {
            let result = exporter.export(data).await;
            if result.is_ok() {
                settle.shared.note_reached();
            }
            // Settled here, the guard's own settle finds nothing left to do.
            settle.shared.settle(settle.id, result);
        }));
        ledger.in_flight.push(InFlight {
            id,
            spans,
            task: task.abort_handle(),
        });
        ledger.in_flight_spans += spans;
        ledger.batches += 1;
    }

    /// Waits until every batch sent is answered (or given up on).
    fn wait_for_answers(&self) {
        let mut ledger = self.shared.ledger();
        while !ledger.in_flight.is_empty() {
            ledger = self.shared.wait(ledger, None);
        }
    }

    /// After the last answer: shuts the exporter down and wakes
    /// [`Pipeline::shutdown`], which waits for this.
    fn finish(self) {
        self.exporter.shutdown();
        self.shared.ledger().done = true;
        self.shared.changed.notify_all();
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
