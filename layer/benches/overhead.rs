//! What one span costs under each subscriber, side by side in one run.
//!
//! The measured unit is one span lifecycle — create (2 fields), enter, exit, close —
//! nested in an entered parent, on one thread and on two threads at once:
//!
//! * `no_subscriber`: tracing's own cost with nothing listening;
//! * `registry_empty_layer`: `tracing_subscriber::registry()` plus a layer that does
//!   nothing — the floor for any layer;
//! * `naive_profiler`: what a profiler written in an afternoon does (`Instant` in a span
//!   extension, one global `Mutex<HashMap>` updated on exit);
//! * `registry_clock_reads`: a layer that only reads the TSC at enter and exit — the
//!   floor for any layer that times spans;
//! * `spanlab`: the spanlab layer, profiling only (report off);
//! * `spanlab_snapshots`: the same, with a snapshot of the JSON report written every
//!   100 ms (to a file in the target's temporary folder) by spanlab's snapshot thread,
//!   which reads the aggregates while the spans are made;
//! * `spanlab_live_metrics` (interleaved profiling tables only): the same, with live
//!   metrics on — OTLP metrics every 100 ms to an HTTP sink in this process, and the
//!   Prometheus endpoint scraped in a loop by a thread of its own, every 10 ms (a
//!   hundred times Prometheus' fastest usual interval; back to back, the scraper would
//!   take a whole core of the two the tables run on, which measures the machine, not
//!   the layer);
//! * `spanlab_export_noop`: spanlab exporting every span (queue, exporter thread,
//!   conversion to `SpanData`) to an exporter that only counts;
//! * `spanlab_export_grpc`: the same, over OTLP/gRPC to an in-process tonic receiver;
//! * `tracing_opentelemetry`: tracing-opentelemetry 0.34 with the SDK's batch span
//!   processor and the same counting exporter: the usual way to export tracing spans.
//!
//! Run `cargo bench -p spanlab --bench overhead`. Criterion measures each variant in
//! turn (`scripts/bench-ratios.py` prints its medians as ratios); the run ends with
//! interleaved tables (profiling, then export; one and two threads), where every round
//! times all variants back to back, which is the figure to quote on a shared, noisy
//! machine. `cargo bench -p spanlab --bench overhead -- interleaved-only` skips
//! criterion's part (no benchmark has that name) and prints only the tables.
//! `README.md` in this folder explains how to read them and has the last figures.

use std::collections::HashMap;
use std::hint::black_box;
use std::sync::atomic::{AtomicPtr, Ordering};
use std::sync::{Barrier, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, Criterion};
use opentelemetry::trace::TracerProvider as _;
use tracing::span::{Attributes, Id};
use tracing::{info_span, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::prelude::*;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

#[path = "support/receiver.rs"]
mod receiver;

/// A layer that does nothing: the registry's cost alone.
struct EmptyLayer;
impl<S: Subscriber> Layer<S> for EmptyLayer {}

/// Only the two clock reads any timing layer needs: the floor for spanlab's design.
/// (It keeps nothing: storing the reading in the layer would make two threads write
/// one cache line, and that, not the clock, would show in the 2-thread runs.)
struct ClockOnlyLayer(quanta::Clock);
impl<S: Subscriber> Layer<S> for ClockOnlyLayer {
    fn on_enter(&self, _: &Id, _: Context<'_, S>) {
        black_box(self.0.raw());
    }
    fn on_exit(&self, _: &Id, _: Context<'_, S>) {
        black_box(self.0.raw());
    }
}

/// A straightforward profiler: start time in an extension, totals in a global map.
#[derive(Default)]
struct NaiveProfiler {
    totals: Mutex<HashMap<&'static str, (u64, Duration)>>,
}

struct NaiveStart(Option<Instant>);

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for NaiveProfiler {
    fn on_new_span(&self, _: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        ctx.span(id)
            .unwrap()
            .extensions_mut()
            .insert(NaiveStart(None));
    }
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        if let Some(s) = ctx
            .span(id)
            .unwrap()
            .extensions_mut()
            .get_mut::<NaiveStart>()
        {
            s.0 = Some(Instant::now());
        }
    }
    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let span = ctx.span(id).unwrap();
        let elapsed = span
            .extensions()
            .get::<NaiveStart>()
            .and_then(|s| s.0)
            .map(|t| t.elapsed());
        if let Some(elapsed) = elapsed {
            let mut totals = self.totals.lock().unwrap();
            let e = totals.entry(span.name()).or_default();
            e.0 += 1;
            e.1 += elapsed;
        }
    }
}

/// The subscribers compared. They are reached through [`Switch`], installed as the
/// global default like `spanlab::init()` does: a scoped `Dispatch` would make every span
/// bump one reference count shared by all threads, and that contention, not the
/// subscribers, would dominate the 2-thread runs.
fn subscribers() -> Vec<(&'static str, &'static (dyn Subscriber + Send + Sync))> {
    variants()
        .into_iter()
        .map(|v| {
            CRITERION_GUARDS.lock().unwrap().extend(v.guard);
            (v.name, v.subscriber)
        })
        .collect()
}

/// The guards of the criterion part's variants, kept until its benchmarks are done, so
/// that their snapshot threads do not run on under the interleaved tables.
static CRITERION_GUARDS: Mutex<Vec<spanlab::Guard>> = Mutex::new(Vec::new());

/// A subscriber under test, and for the exporting ones, a way to flush them and learn
/// how many spans reached the exporter.
struct Variant {
    name: &'static str,
    subscriber: &'static (dyn Subscriber + Send + Sync),
    delivered: Option<Box<dyn Fn() -> u64>>,
    /// A guard to keep while the variant is measured (its snapshot thread runs until
    /// the variant is dropped).
    guard: Option<spanlab::Guard>,
}

fn spanlab_builder() -> spanlab::Builder {
    spanlab::SpanLab::builder()
        .report_to(spanlab::ReportTarget::Off)
        .ignore_env()
}

fn variants() -> Vec<Variant> {
    let mut variants = profiling_variants();
    variants.extend(export_variants());
    variants
}

/// The variants that export nothing: the floor, the baselines and spanlab profiling.
fn profiling_variants() -> Vec<Variant> {
    let (spanlab, guard) = spanlab_builder().build();
    std::mem::forget(guard); // report off; keep the profile alive for the whole run
    let mut variants: Vec<Variant> = plain_variants(spanlab)
        .into_iter()
        .map(|(name, subscriber)| Variant {
            name,
            subscriber,
            delivered: None,
            guard: None,
        })
        .collect();
    let at = variants.iter().position(|v| v.name == "spanlab").unwrap() + 1;
    variants.insert(at, snapshots_variant());
    variants
}

/// Profiling with a snapshot of the JSON report every 100 ms, each variant made to its
/// own file (tables made later must not write over an earlier one's).
fn snapshots_variant() -> Variant {
    static MADE: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = MADE.fetch_add(1, Ordering::Relaxed);
    let json = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("overhead-snapshots-{n}.json"));
    let (layer, guard) = spanlab_builder()
        .report_json(json)
        .snapshot_interval(Some(Duration::from_millis(100)))
        .build();
    Variant {
        name: "spanlab_snapshots",
        subscriber: Box::leak(Box::new(tracing_subscriber::registry().with(layer))),
        delivered: None,
        guard: Some(guard),
    }
}

/// The exporting variants: spanlab's two and tracing-opentelemetry.
fn export_variants() -> Vec<Variant> {
    let mut variants = Vec::new();
    // Export to an exporter that only counts.
    let noop = receiver::NoopExporter::default();
    let (layer, guard) = spanlab_builder().otlp_exporter(noop.clone()).build();
    let guard = Mutex::new(Some(guard));
    variants.push(Variant {
        name: "spanlab_export_noop",
        subscriber: Box::leak(Box::new(tracing_subscriber::registry().with(layer))),
        delivered: Some(Box::new(move || {
            drop(guard.lock().unwrap().take()); // flushes
            noop.0.load(Ordering::Relaxed)
        })),
        guard: None,
    });
    // Export over OTLP/gRPC to the in-process receiver.
    let (endpoint, received) = receiver::start();
    let (layer, guard) = spanlab_builder()
        .otlp_endpoint(endpoint)
        .otlp_protocol(spanlab::export::Protocol::Grpc)
        .build();
    let guard = Mutex::new(Some(guard));
    variants.push(Variant {
        name: "spanlab_export_grpc",
        subscriber: Box::leak(Box::new(tracing_subscriber::registry().with(layer))),
        delivered: Some(Box::new(move || {
            drop(guard.lock().unwrap().take());
            received.load(Ordering::Relaxed)
        })),
        guard: None,
    });
    // tracing-opentelemetry with the SDK's batch processor and the counting exporter.
    let noop = receiver::NoopExporter::default();
    let provider = opentelemetry_sdk::trace::SdkTracerProvider::builder()
        .with_batch_exporter(noop.clone())
        .build();
    let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("bench"));
    variants.push(Variant {
        name: "tracing_opentelemetry",
        subscriber: Box::leak(Box::new(tracing_subscriber::registry().with(layer))),
        delivered: Some(Box::new(move || {
            let _ = provider.force_flush();
            noop.0.load(Ordering::Relaxed)
        })),
        guard: None,
    });
    variants
}

fn plain_variants(
    spanlab: spanlab::SpanLabLayer,
) -> Vec<(&'static str, &'static (dyn Subscriber + Send + Sync))> {
    vec![
        (
            "no_subscriber",
            Box::leak(Box::new(tracing_core::subscriber::NoSubscriber::default())),
        ),
        (
            "registry_empty_layer",
            Box::leak(Box::new(tracing_subscriber::registry().with(EmptyLayer))),
        ),
        (
            "naive_profiler",
            Box::leak(Box::new(
                tracing_subscriber::registry().with(NaiveProfiler::default()),
            )),
        ),
        (
            "registry_clock_reads",
            Box::leak(Box::new(
                tracing_subscriber::registry().with(ClockOnlyLayer(quanta::Clock::new())),
            )),
        ),
        (
            "spanlab",
            Box::leak(Box::new(tracing_subscriber::registry().with(spanlab))),
        ),
    ]
}

/// The global subscriber: forwards every callback to the subscriber under test. Costs
/// every variant the same relaxed load and indirect call per callback.
struct Switch {
    target: AtomicPtr<&'static (dyn Subscriber + Send + Sync)>,
}

static SWITCH: std::sync::OnceLock<&'static Switch> = std::sync::OnceLock::new();

impl Switch {
    /// Installs the switch as the global default (once) and routes it to `target`.
    fn route_to(target: &'static (dyn Subscriber + Send + Sync)) {
        let switch = SWITCH.get_or_init(|| {
            let none: &'static (dyn Subscriber + Send + Sync) =
                Box::leak(Box::new(tracing_core::subscriber::NoSubscriber::default()));
            let switch: &'static Switch = Box::leak(Box::new(Switch {
                target: AtomicPtr::new(Box::leak(Box::new(none))),
            }));
            tracing::subscriber::set_global_default(SwitchRef(switch))
                .expect("no other global subscriber");
            switch
        });
        switch
            .target
            .store(Box::leak(Box::new(target)), Ordering::Release);
        tracing_core::callsite::rebuild_interest_cache();
    }

    #[inline(always)]
    fn target(&self) -> &'static (dyn Subscriber + Send + Sync) {
        // SAFETY: `target` always points at a leaked, never-freed reference.
        unsafe { *self.target.load(Ordering::Acquire) }
    }
}

struct SwitchRef(&'static Switch);

impl Subscriber for SwitchRef {
    fn register_callsite(&self, _: &'static tracing::Metadata<'static>) -> tracing_core::Interest {
        tracing_core::Interest::sometimes() // ask `enabled` each time: the target changes
    }
    fn enabled(&self, m: &tracing::Metadata<'_>) -> bool {
        self.0.target().enabled(m)
    }
    fn new_span(&self, a: &Attributes<'_>) -> Id {
        self.0.target().new_span(a)
    }
    fn record(&self, id: &Id, v: &tracing::span::Record<'_>) {
        self.0.target().record(id, v)
    }
    fn record_follows_from(&self, id: &Id, f: &Id) {
        self.0.target().record_follows_from(id, f)
    }
    fn event(&self, e: &tracing::Event<'_>) {
        self.0.target().event(e)
    }
    fn enter(&self, id: &Id) {
        self.0.target().enter(id)
    }
    fn exit(&self, id: &Id) {
        self.0.target().exit(id)
    }
    fn clone_span(&self, id: &Id) -> Id {
        self.0.target().clone_span(id)
    }
    fn try_close(&self, id: Id) -> bool {
        self.0.target().try_close(id)
    }
    fn current_span(&self) -> tracing_core::span::Current {
        self.0.target().current_span()
    }
}

/// The measured unit: one child span lifecycle inside the entered parent.
#[inline(always)]
fn lifecycle(i: u64) {
    let span = info_span!("child", step = i, phase = "forward");
    let _entered = span.enter();
    black_box(&span);
}

fn single_thread(c: &mut Criterion) {
    let mut group = c.benchmark_group("lifecycle/1-thread");
    for (name, subscriber) in subscribers() {
        group.bench_function(name, |b| {
            Switch::route_to(subscriber);
            let _parent = info_span!("parent").entered();
            let mut i = 0u64;
            b.iter(|| {
                i += 1;
                lifecycle(i)
            });
        });
    }
    group.finish();
}

/// What the span features cost, against a plain lifecycle under spanlab: a `seed`
/// field (the stream is swapped in on enter and out on exit, bookkept at close), and a
/// `gpu = true` field on a machine without a GPU (one flag check).
fn seeded(c: &mut Criterion) {
    let mut group = c.benchmark_group("features/1-thread");
    let spanlab = subscribers()
        .into_iter()
        .find(|(name, _)| *name == "spanlab")
        .unwrap()
        .1;
    Switch::route_to(spanlab);
    let _parent = info_span!("parent").entered();
    group.bench_function("spanlab_plain", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            lifecycle(i)
        });
    });
    // No GPU (this build has neither `cuda` nor `nvml`): after the first span finds
    // none, a `gpu = true` span should cost what a plain one does.
    group.bench_function("spanlab_gpu_field_no_gpu", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let span = info_span!("child", step = i, gpu = true);
            let _entered = span.enter();
            black_box(&span);
        });
    });
    group.bench_function("spanlab_seed_field", |b| {
        let mut i = 0u64;
        b.iter(|| {
            i += 1;
            let span = info_span!("child", seed = i, phase = "forward");
            let _entered = span.enter();
            black_box(&span);
        });
    });
    group.finish();
}

fn two_threads(c: &mut Criterion) {
    let mut group = c.benchmark_group("lifecycle/2-threads");
    let crew = Crew::new(2);
    for (name, subscriber) in subscribers() {
        // Per-lifecycle latency with both threads at it: each thread's own loop time.
        group.bench_function(name, |b| b.iter_custom(|iters| crew.run(subscriber, iters)));
    }
    group.finish();
}

/// The ratios that criterion's one-after-another runs cannot give on a shared machine:
/// each round times every variant back to back (in a fresh random order, so that no
/// variant always follows the same one: a burst that left the vCPUs idle, as the naive
/// profiler's lock contention does, slows whatever runs next) and takes each
/// one's ratio to the baseline *within the round*, so load that comes and goes hits
/// both sides of a ratio. Short rounds, many of them, on threads that live for the whole
/// table (no thread start inside a timing), each thread timing its own loop. Prints
/// the median and quartiles over the rounds.
///
/// Profiling and export get separate tables: an exporting variant leaves its exporter
/// thread busy after its burst, which would land on whichever variant comes next.
fn interleaved_ratios() {
    const ROUNDS: usize = 201;
    const LIFECYCLES: u64 = 20_000;
    // A smoke run (`SPANLAB_BENCH_ROUNDS=3`) checks the tables run, not the figures.
    let rounds = std::env::var("SPANLAB_BENCH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(ROUNDS);
    for threads in [1, 2] {
        // Fresh subscribers per table, so the delivery counts below are its own.
        let mut profiling = profiling_variants();
        let live = LiveMetrics::start();
        profiling.push(Variant {
            name: "spanlab_live_metrics",
            subscriber: live.subscriber,
            delivered: None,
            guard: None,
        });
        interleaved("profiling", profiling, threads, rounds, LIFECYCLES);
        live.stop();
        let mut export = profiling_variants();
        export.retain(|v| v.name == "registry_empty_layer");
        export.extend(export_variants());
        interleaved("export", export, threads, rounds, LIFECYCLES);
    }
}

/// spanlab profiling with live metrics on: OTLP metrics every 100 ms (to an HTTP sink
/// that answers every request with 200) and the Prometheus endpoint scraped every
/// 10 ms by a thread. Trace export stays off (`no_export`): this is the profile-only
/// variant plus metrics.
struct LiveMetrics {
    subscriber: &'static (dyn Subscriber + Send + Sync),
    guard: spanlab::Guard,
    scraper: std::thread::JoinHandle<u64>,
}

impl LiveMetrics {
    fn start() -> LiveMetrics {
        let sink = http_sink();
        let (layer, guard) = spanlab_builder()
            .otlp_endpoint(sink)
            .no_export()
            .otlp_metrics(true)
            .metrics_interval(Duration::from_millis(100))
            .prometheus("127.0.0.1:0")
            .build();
        let url = guard.report().metrics.and_then(|m| m.prometheus);
        let addr = url.expect("the Prometheus endpoint listens");
        let addr = addr
            .trim_start_matches("http://")
            .trim_end_matches("/metrics")
            .to_owned();
        // Scrapes until the endpoint is gone (the guard's drop).
        let scraper = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let mut scrapes = 0u64;
            while let Ok(mut stream) = std::net::TcpStream::connect(&addr) {
                let mut body = Vec::new();
                let ok = stream
                    .write_all(b"GET /metrics HTTP/1.1\r\nhost: bench\r\n\r\n")
                    .and_then(|()| stream.read_to_end(&mut body));
                if ok.is_err() || body.is_empty() {
                    break;
                }
                scrapes += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
            scrapes
        });
        LiveMetrics {
            subscriber: Box::leak(Box::new(tracing_subscriber::registry().with(layer))),
            guard,
            scraper,
        }
    }

    /// Stops serving and pushing, and says how much was done.
    fn stop(self) {
        let before = self.guard.report().metrics.unwrap_or_default();
        drop(self.guard);
        let scrapes = self.scraper.join().unwrap_or(0);
        println!(
            "  (spanlab_live_metrics: {scrapes} scrapes, {} OTLP metric exports, {} failed)",
            before.otlp_exports, before.otlp_failed_exports
        );
    }
}

/// An HTTP/1.1 endpoint that reads each request and answers 200, for OTLP metrics to
/// go somewhere; returns its base URL.
fn http_sink() -> String {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                loop {
                    let mut length = 0;
                    let mut line = String::new();
                    loop {
                        line.clear();
                        if reader.read_line(&mut line).unwrap_or(0) == 0 {
                            return;
                        }
                        let header = line.trim_end().to_ascii_lowercase();
                        if header.is_empty() {
                            break;
                        }
                        if let Some(v) = header.strip_prefix("content-length:") {
                            length = v.trim().parse().unwrap_or(0);
                        }
                    }
                    let mut body = vec![0; length];
                    let answer = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n";
                    if reader.read_exact(&mut body).is_err() || writer.write_all(answer).is_err() {
                        return;
                    }
                }
            });
        }
    });
    format!("http://{addr}")
}

/// Runs `lifecycles` per thread on `threads` threads under each variant in turn, for
/// `rounds` rounds, and prints each variant's ratio to `registry_empty_layer`.
fn interleaved(
    title: &str,
    variants: Vec<Variant>,
    threads: usize,
    rounds: usize,
    lifecycles: u64,
) {
    let baseline = variants
        .iter()
        .position(|v| v.name == "registry_empty_layer")
        .unwrap();
    let burst = Crew::new(threads);
    let mut ratios: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut nanos: Vec<Vec<f64>> = vec![Vec::new(); variants.len()];
    let mut order: Vec<usize> = (0..variants.len()).collect();
    let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
    for _ in 0..rounds {
        shuffle(&mut order, &mut seed);
        let mut times = vec![Duration::ZERO; variants.len()];
        for &v in &order {
            times[v] = burst.run(variants[v].subscriber, lifecycles);
        }
        for v in 0..variants.len() {
            ratios[v].push(times[v].as_secs_f64() / times[baseline].as_secs_f64());
            nanos[v].push(times[v].as_nanos() as f64 / lifecycles as f64);
        }
    }
    drop(burst);
    println!("interleaved {title}: {threads} thread(s), {rounds} rounds of {lifecycles} lifecycles per thread, ratio to registry_empty_layer in the same round");
    let median = |r: &mut Vec<f64>| {
        r.sort_by(f64::total_cmp);
        r[(r.len() - 1) / 2]
    };
    let otel_median = variants
        .iter()
        .position(|v| v.name == "tracing_opentelemetry")
        .map(|otel| median(&mut ratios[otel].clone()));
    // Spans made per variant: every lifecycle plus each thread's parent, every round.
    let made = rounds as u64 * threads as u64 * (lifecycles + 1);
    for (v, variant) in variants.iter().enumerate() {
        let r = &mut ratios[v];
        r.sort_by(f64::total_cmp);
        let q = |p: f64| r[((r.len() - 1) as f64 * p).round() as usize];
        let mut line = format!(
            "  {:24} median {:5.2}x   (quartiles {:.2}x .. {:.2}x)   {:7.1} ns",
            variant.name,
            q(0.5),
            q(0.25),
            q(0.75),
            median(&mut nanos[v])
        );
        if let Some(delivered) = &variant.delivered {
            let delivered = delivered();
            if let Some(otel_median) = otel_median {
                line += &format!("   {:.2}x tracing-opentelemetry;", q(0.5) / otel_median);
            }
            line += &format!(
                " delivered {delivered} of {made} spans ({:.1}% dropped)",
                100.0 * (made.saturating_sub(delivered)) as f64 / made as f64
            );
        }
        println!("{line}");
    }
}

/// Fisher–Yates with a xorshift generator: a fixed sequence of orders, run to run.
fn shuffle(order: &mut [usize], seed: &mut u64) {
    for i in (1..order.len()).rev() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        order.swap(i, (*seed % (i as u64 + 1)) as usize);
    }
}

/// Threads that stay up for a whole table and run one burst of lifecycles per call.
///
/// Between two workers the crew starts two idle spacer threads. tracing-subscriber's
/// registry keeps each thread's stack of entered spans in a `thread_local::ThreadLocal`
/// whose entries (about 40 bytes, not padded) sit side by side in order of the
/// threads' ids, and ids go to the lowest free number: two threads started one after
/// the other would write one cache line on every enter and exit. That false sharing
/// raised the registry's own cost per span, by the luck of which ids the threads drew,
/// enough to swamp what the layers add (by how much: `README.md` in this folder).
/// Spacers keep the workers' ids at least three apart (the ids are taken in order:
/// each thread takes its id before the next starts).
struct Crew {
    /// Tells the threads to return instead of running another burst.
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// Lifecycles per thread in the next burst.
    lifecycles: std::sync::Arc<std::sync::atomic::AtomicU64>,
    start: std::sync::Arc<Barrier>,
    done: std::sync::Arc<Barrier>,
    times: std::sync::Arc<Mutex<Vec<Duration>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// Released when the crew ends, to let the spacers return.
    spacers_done: std::sync::Arc<Barrier>,
    spacers: Vec<std::thread::JoinHandle<()>>,
}

/// Starts a thread that takes its `thread_local` id before this returns.
fn spawn_with_id(
    ids: &std::sync::Arc<thread_local::ThreadLocal<()>>,
    body: impl FnOnce() + Send + 'static,
) -> std::thread::JoinHandle<()> {
    let (ids, taken) = (ids.clone(), std::sync::Arc::new(Barrier::new(2)));
    let signal = taken.clone();
    let handle = std::thread::spawn(move || {
        ids.get_or(|| ());
        signal.wait();
        body();
    });
    taken.wait();
    handle
}

impl Crew {
    fn new(threads: usize) -> Crew {
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let lifecycles = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
        let start = std::sync::Arc::new(Barrier::new(threads + 1));
        let done = std::sync::Arc::new(Barrier::new(threads + 1));
        let times = std::sync::Arc::new(Mutex::new(Vec::new()));
        const SPACERS: usize = 2;
        let spacer_count = SPACERS * threads.saturating_sub(1);
        let spacers_done = std::sync::Arc::new(Barrier::new(spacer_count + 1));
        let ids = std::sync::Arc::new(thread_local::ThreadLocal::new());
        let mut spacers = Vec::new();
        let handles = (0..threads)
            .map(|worker| {
                if worker > 0 {
                    for _ in 0..SPACERS {
                        let done = spacers_done.clone();
                        spacers.push(spawn_with_id(&ids, move || {
                            done.wait();
                        }));
                    }
                }
                let (stop, lifecycles, start, done, times) = (
                    stop.clone(),
                    lifecycles.clone(),
                    start.clone(),
                    done.clone(),
                    times.clone(),
                );
                spawn_with_id(&ids, move || loop {
                    start.wait();
                    if stop.load(Ordering::Acquire) {
                        return;
                    }
                    let n = lifecycles.load(Ordering::Relaxed); // ordered by the barrier
                    let elapsed = {
                        let _parent = info_span!("parent").entered();
                        let t = Instant::now();
                        for i in 0..n {
                            lifecycle(i);
                        }
                        t.elapsed()
                    };
                    times.lock().unwrap().push(elapsed);
                    done.wait();
                })
            })
            .collect();
        Crew {
            stop,
            lifecycles,
            start,
            done,
            times,
            threads: handles,
            spacers_done,
            spacers,
        }
    }

    /// One burst of `lifecycles` per thread under `subscriber`: the mean of the
    /// threads' own loop times.
    fn run(
        &self,
        subscriber: &'static (dyn Subscriber + Send + Sync),
        lifecycles: u64,
    ) -> Duration {
        // Both before the barrier, which orders them for the threads.
        Switch::route_to(subscriber);
        self.lifecycles.store(lifecycles, Ordering::Relaxed);
        self.start.wait();
        self.done.wait();
        let mut times = self.times.lock().unwrap();
        let mean = times.iter().sum::<Duration>() / times.len() as u32;
        times.clear();
        mean
    }
}

impl Drop for Crew {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Release);
        self.start.wait();
        self.spacers_done.wait();
        for thread in self.threads.drain(..).chain(self.spacers.drain(..)) {
            thread.join().unwrap();
        }
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(4)).warm_up_time(Duration::from_secs(2));
    targets = single_thread, two_threads, seeded
}

fn main() {
    benches();
    Criterion::default().configure_from_args().final_summary();
    CRITERION_GUARDS.lock().unwrap().clear();
    // `cargo bench` passes --bench; `cargo test --benches` runs each benchmark once
    // as a smoke test and skips this.
    if std::env::args().any(|a| a == "--bench") {
        interleaved_ratios();
    }
}
