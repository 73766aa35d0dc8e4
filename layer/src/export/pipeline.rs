//! The exporter thread: drains the queue, batches, converts, sends, counts.
//!
//! ```text
//!  span close (any thread)          exporter thread (one, named "spanlab-otlp")
//!  ───────────────────────          ───────────────────────────────────────────
//!  try_send(Box<ExportSpan>) ──►  queue (bounded) ──► batch ──► SpanData ──► OTLP
//!      full: drop, count                     every 10 ms, or a full batch
//! ```
//!
//! The program's threads never wait: `try_send` on a bounded channel either takes the
//! span or fails at once (counted as dropped). The exporter thread never blocks on the
//! channel either — a receiver parked in `recv` would make every send a futex wake-up —
//! it sleeps ~10 ms between drains instead and is woken early only for a flush.
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
//! then exactly one of: `dropped` (no room in the queue, or the pipeline had stopped),
//! `exported` (its batch was accepted) or `failed` (its batch was refused after the
//! retries). Spans still queued or in flight when a report is made are `pending`, so
//! `exported + dropped + failed + pending == finished` holds in every report.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::*};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError};
use std::sync::{Arc, Condvar, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use opentelemetry_sdk::Resource;

use super::convert::Converter;
use super::span::ExportSpan;

/// How often the exporter thread looks at the queue.
const TICK: Duration = Duration::from_millis(10);

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

/// What the exporter thread shares with the program.
#[derive(Default)]
pub(crate) struct Shared {
    pub(crate) exported: AtomicU64,
    pub(crate) failed: AtomicU64,
    pub(crate) batches: AtomicU64,
    pub(crate) failed_batches: AtomicU64,
    /// Requests sent, retries included (see the module docs).
    pub(crate) attempts: AtomicU64,
    /// Spans still queued when the exporter thread stopped.
    pub(crate) dropped: AtomicU64,
    pub(crate) last_error: Mutex<Option<String>>,
    closing: AtomicBool,
    done: Mutex<bool>,
    done_signal: Condvar,
}

/// The queue's sending side and the exporter thread.
pub(crate) struct Pipeline {
    queue: SyncSender<Box<ExportSpan>>,
    pub(crate) shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// The exporter thread's handle, to wake it for a flush.
    waker: std::thread::Thread,
}

/// Why a span could not be queued.
pub(crate) enum Rejected {
    Full,
    Stopped,
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
        let (queue, receiver) = std::sync::mpsc::sync_channel(queue_size);
        let worker = Worker {
            receiver,
            exporter,
            runtime,
            converter,
            counts_attempts,
            batch_size,
            schedule_delay,
            shared: shared.clone(),
        };
        let thread = std::thread::Builder::new()
            .name("spanlab-otlp".into())
            .spawn(move || worker.run())?;
        Ok(Pipeline {
            queue,
            shared,
            waker: thread.thread().clone(),
            thread: Mutex::new(Some(thread)),
        })
    }

    /// Queues a finished span without waiting.
    #[inline]
    pub(crate) fn push(&self, span: Box<ExportSpan>) -> Result<(), Rejected> {
        use std::sync::mpsc::TrySendError;
        match self.queue.try_send(span) {
            Ok(()) => Ok(()),
            Err(TrySendError::Full(_)) => Err(Rejected::Full),
            Err(TrySendError::Disconnected(_)) => Err(Rejected::Stopped),
        }
    }

    /// Asks the exporter thread to send everything queued and stop, and waits up to
    /// `timeout` for it. Later spans are dropped (and counted). Idempotent.
    pub(crate) fn shutdown(&self, timeout: Duration) {
        self.shared.closing.store(true, Release);
        self.waker.unpark();
        let done = self.shared.done.lock().unwrap_or_else(|e| e.into_inner());
        let (done, _) = self
            .shared
            .done_signal
            .wait_timeout_while(done, timeout, |done| !*done)
            .unwrap_or_else(|e| e.into_inner());
        if *done {
            if let Some(thread) = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take() {
                let _ = thread.join();
            }
        }
    }
}

struct Worker {
    receiver: Receiver<Box<ExportSpan>>,
    exporter: Box<dyn DynExporter>,
    runtime: tokio::runtime::Runtime,
    converter: Converter,
    /// The transport counts its own attempts; otherwise one per batch is counted here.
    counts_attempts: bool,
    batch_size: usize,
    schedule_delay: Duration,
    shared: Arc<Shared>,
}

impl Worker {
    fn run(mut self) {
        super::silence_this_thread();
        self.exporter.set_resource(self.converter.resource());
        let mut batch: Vec<ExportSpan> = Vec::with_capacity(self.batch_size);
        let mut last_send = Instant::now();
        loop {
            // Read before draining: a flush asked for during the drain sees it all.
            let closing = self.shared.closing.load(Acquire);
            let mut disconnected = false;
            loop {
                match self.receiver.try_recv() {
                    Ok(span) => {
                        batch.push(*span);
                        if batch.len() >= self.batch_size {
                            self.send(&mut batch);
                            last_send = Instant::now();
                        }
                    }
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        disconnected = true;
                        break;
                    }
                }
            }
            if !batch.is_empty()
                && (closing || disconnected || last_send.elapsed() >= self.schedule_delay)
            {
                self.send(&mut batch);
                last_send = Instant::now();
            }
            if closing || disconnected {
                break;
            }
            std::thread::park_timeout(TICK);
        }
        self.exporter.shutdown();
        while self.receiver.try_recv().is_ok() {
            self.shared.dropped.fetch_add(1, Relaxed); // queued after the last drain
        }
        *self.shared.done.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.shared.done_signal.notify_all();
        // Spans queued after this point are counted as dropped by their senders once
        // the receiver is gone; dropping it here makes that happen.
    }

    /// Converts and sends one batch; its spans are then exported or failed.
    fn send(&mut self, batch: &mut Vec<ExportSpan>) {
        let count = batch.len() as u64;
        let data: Vec<SpanData> = batch.drain(..).map(|s| self.converter.convert(s)).collect();
        if !self.counts_attempts {
            self.shared.attempts.fetch_add(1, Relaxed);
        }
        let result = self.runtime.block_on(self.exporter.export(data));
        self.shared.batches.fetch_add(1, Relaxed);
        match result {
            Ok(()) => {
                self.shared.exported.fetch_add(count, Relaxed);
            }
            Err(e) => {
                self.shared.failed.fetch_add(count, Relaxed);
                self.shared.failed_batches.fetch_add(1, Relaxed);
                *self
                    .shared
                    .last_error
                    .lock()
                    .unwrap_or_else(|e| e.into_inner()) = Some(e.to_string());
            }
        }
    }
}
