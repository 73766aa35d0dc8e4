//! The layer end to end, on a mock clock where durations must be exact, and on the real
//! clock for threads and async runtimes.

use std::sync::Arc;
use std::time::Duration;

use tracing::{info_span, instrument, Instrument};
use tracing_subscriber::prelude::*;

use super::{Assembly, SpanCore};
use crate::core::clock::Clock;
use crate::core::stats::QUANTILE_RELATIVE_ERROR;
use crate::core::Core;

/// The core alone: its layer, with no rider, and what it writes (read as a profile).
type Profile = Arc<Assembly<()>>;

fn core_layer(clock: Clock) -> (SpanCore<()>, Profile) {
    let lab = Arc::new(Assembly {
        core: Core::new(clock),
        riders: (),
    });
    (SpanCore::new(lab.clone()), lab)
}

/// The core's layer on a mock clock, its profile, and the clock's handle.
fn mock_layer() -> (SpanCore<()>, Profile, Arc<quanta::Mock>) {
    let (clock, mock) = Clock::mock();
    let (layer, profile) = core_layer(clock);
    (layer, profile, mock)
}

/// The core's layer on the real clock, and its profile.
fn real_layer() -> (SpanCore<()>, Profile) {
    core_layer(Clock::new())
}

const MS: Duration = Duration::from_millis(1);

#[test]
fn statistics_match_independently_computed_values() {
    let (layer, profile, clock) = mock_layer();
    let durations_ms = [1u64, 2, 3, 4, 10];
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for &d in &durations_ms {
            let _epoch = info_span!("epoch").entered();
            let _fwd = info_span!("forward", d).entered();
            clock.increment(MS * d as u32);
        }
    });
    let s = profile.get("epoch > forward").expect("path recorded");
    // Independently: numpy.mean / numpy.std (ddof=0) of [1, 2, 3, 4, 10] ms.
    let n = durations_ms.len() as f64;
    let mean = durations_ms.iter().sum::<u64>() as f64 / n;
    let std = (durations_ms
        .iter()
        .map(|&d| (d as f64 - mean).powi(2))
        .sum::<f64>()
        / n)
        .sqrt();
    assert_eq!(s.path, ["epoch", "forward"]);
    assert_eq!(s.calls, 5);
    assert_eq!(s.total, MS * 20);
    assert_eq!(s.mean, Duration::from_secs_f64(mean / 1e3));
    assert!(
        (s.std.as_secs_f64() * 1e3 - std).abs() < 1e-6,
        "std {:?} vs {std} ms",
        s.std
    );
    assert_eq!((s.min, s.max), (MS, MS * 10));
    // Nearest-rank quantiles: p50 = 3 ms, p95 = p99 = 10 ms (exact: clamped to max).
    let within = |got: Duration, want: Duration| {
        (got.as_secs_f64() - want.as_secs_f64()).abs()
            <= want.as_secs_f64() * QUANTILE_RELATIVE_ERROR
    };
    assert!(within(s.p50, MS * 3), "p50 {:?}", s.p50);
    assert_eq!((s.p95, s.p99), (MS * 10, MS * 10));
    assert_eq!((s.errors, s.panics), (0, 0));
    // The parent took exactly as long as its only child: no self time of its own.
    let epoch = profile.get("epoch").unwrap();
    assert_eq!(epoch.total, MS * 20);
    assert_eq!(epoch.self_time, Duration::ZERO);
}

#[test]
fn self_time_excludes_children_and_siblings_are_separate_paths() {
    let (layer, profile, clock) = mock_layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let _epoch = info_span!("epoch").entered();
        clock.increment(MS * 2); // epoch's own work
        info_span!("forward").in_scope(|| clock.increment(MS * 3));
        info_span!("backward").in_scope(|| {
            clock.increment(MS * 4);
            info_span!("grad").in_scope(|| clock.increment(MS * 5));
        });
    });
    let get = |p: &str| profile.get(p).unwrap_or_else(|| panic!("{p} missing"));
    assert_eq!(get("epoch").total, MS * 14);
    assert_eq!(get("epoch").self_time, MS * 2);
    assert_eq!(get("epoch > forward").self_time, MS * 3);
    assert_eq!(get("epoch > backward").total, MS * 9);
    assert_eq!(get("epoch > backward").self_time, MS * 4);
    assert_eq!(get("epoch>backward>grad").self_time, MS * 5);
    let order: Vec<String> = profile.paths().iter().map(|p| p.path_string()).collect();
    assert_eq!(
        order,
        [
            "epoch",
            "epoch > forward",
            "epoch > backward",
            "epoch > backward > grad"
        ]
    );
}

#[test]
fn a_span_entered_several_times_has_busy_and_idle_time() {
    let (layer, profile, clock) = mock_layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let task = info_span!("task");
        for _ in 0..3 {
            task.in_scope(|| clock.increment(MS)); // a poll
            clock.increment(MS * 10); // awaiting, not entered
        }
    });
    let s = profile.get("task").unwrap();
    assert_eq!(s.calls, 1);
    assert_eq!(s.total, MS * 23, "first enter to last exit");
    assert_eq!(s.busy, MS * 3);
    assert_eq!(s.idle, MS * 20);
    assert_eq!(s.self_time, MS * 3);
}

#[test]
fn a_reused_slot_carries_nothing_from_its_last_span() {
    // A new span's slot keeps the previous span's times until its first interval
    // overwrites them (`Slot::init`): none of them may show in its statistics.
    let (layer, profile, clock) = mock_layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info_span!("long").in_scope(|| clock.increment(MS * 50));
        drop(info_span!("never_entered")); // same slot, closed without a time
        let task = info_span!("task"); // same slot again, entered twice
        task.in_scope(|| clock.increment(MS));
        clock.increment(MS * 2);
        task.in_scope(|| clock.increment(MS));
    });
    assert_eq!(profile.spans_never_entered(), 1);
    assert_eq!(profile.get("never_entered"), None);
    let s = profile.get("task").unwrap();
    assert_eq!(
        (s.calls, s.total, s.busy, s.idle),
        (1, MS * 4, MS * 2, MS * 2)
    );
    assert_eq!((s.min, s.max, s.self_time), (MS * 4, MS * 4, MS * 2));
    assert_eq!(profile.get("long").unwrap().total, MS * 50);
}

#[test]
fn spans_exited_and_closed_out_of_order_are_timed_like_the_rest() {
    // Out of order, the callbacks leave their common case (`spans::fast`) for the
    // general one: the figures must not tell.
    let (layer, profile, clock) = mock_layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let (a, b) = (info_span!("a"), info_span!("b"));
        let entered_a = a.enter();
        clock.increment(MS);
        let entered_b = b.enter();
        clock.increment(MS);
        drop(entered_a); // `a` exits while `b` is on top of it
        clock.increment(MS);
        drop(entered_b);
        drop(a); // `a` closes while `b`, created after it, is alive
        drop(b);
        info_span!("a").in_scope(|| clock.increment(MS * 4)); // and in order
    });
    let a = profile.get("a").unwrap();
    assert_eq!((a.calls, a.total, a.self_time), (2, MS * 6, MS * 6));
    assert_eq!((a.min, a.max), (MS * 2, MS * 4));
    let b = profile.get("b").unwrap();
    assert_eq!((b.calls, b.total, b.busy), (1, MS * 2, MS * 2));
}

#[test]
fn re_entering_an_entered_span_is_not_counted_twice() {
    let (layer, profile, clock) = mock_layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let span = info_span!("outer");
        let _a = span.enter();
        clock.increment(MS);
        let _b = span.enter();
        clock.increment(MS);
    });
    let s = profile.get("outer").unwrap();
    assert_eq!((s.calls, s.total, s.busy), (1, MS * 2, MS * 2));
}

#[test]
fn explicit_parents_and_other_threads_keep_the_path() {
    let (layer, profile) = real_layer();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        let epoch = info_span!("epoch");
        std::thread::scope(|s| {
            for _ in 0..2 {
                let (epoch, dispatch) = (epoch.clone(), dispatch.clone());
                s.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        info_span!(parent: &epoch, "worker").in_scope(|| {
                            info_span!("step").in_scope(|| ());
                        });
                        epoch.in_scope(|| info_span!("contextual").in_scope(|| ()));
                    })
                });
            }
        });
    });
    assert_eq!(profile.get("epoch > worker").unwrap().calls, 2);
    assert_eq!(profile.get("epoch > worker > step").unwrap().calls, 2);
    assert_eq!(profile.get("epoch > contextual").unwrap().calls, 2);
    assert_eq!(profile.get("epoch").unwrap().calls, 1);
}

#[test]
fn many_threads_aggregate_every_call() {
    let (layer, profile) = real_layer();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    std::thread::scope(|s| {
        for t in 0..4 {
            let dispatch = dispatch.clone();
            s.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    for i in 0..2_500 {
                        let _outer = info_span!("batch", t, i).entered();
                        info_span!("item").in_scope(|| std::hint::black_box(i * 2));
                    }
                })
            });
        }
    });
    let (batch, item) = (
        profile.get("batch").unwrap(),
        profile.get("batch > item").unwrap(),
    );
    assert_eq!((batch.calls, item.calls), (10_000, 10_000));
    assert!(batch.total >= item.total);
    assert!(batch.min <= batch.p50 && batch.p50 <= batch.p99 && batch.p99 <= batch.max);
}

#[test]
fn async_spans_on_a_multi_thread_runtime() {
    let (layer, profile) = real_layer();
    let (dispatch, runtime) = crate::test_support::runtime_with(layer);
    async fn request(i: u64) {
        for _ in 0..3 {
            tokio::time::sleep(Duration::from_millis(2)).await;
            async { tokio::task::yield_now().await }
                .instrument(info_span!("db"))
                .await;
        }
        std::hint::black_box(i);
    }
    tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..50)
                .map(|i| tokio::spawn(request(i).instrument(info_span!("request", i))))
                .collect();
            for t in tasks {
                t.await.unwrap();
            }
        })
    });
    drop(runtime);
    let req = profile.get("request").unwrap();
    let db = profile.get("request > db").unwrap();
    assert_eq!((req.calls, db.calls), (50, 150));
    // Three 2 ms sleeps: at least 6 ms from first poll to completion, mostly idle.
    assert!(req.min >= Duration::from_millis(6), "{:?}", req.min);
    assert!(
        req.idle > req.busy,
        "idle {:?} busy {:?}",
        req.idle,
        req.busy
    );
    assert_eq!(req.total, req.busy + req.idle);
}

#[test]
fn panics_are_counted_and_the_span_still_recorded() {
    let (layer, profile) = real_layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..3 {
            let _ = std::panic::catch_unwind(|| {
                let _span = info_span!("risky").entered();
                if i == 1 {
                    panic!("diverged");
                }
            });
        }
    });
    let s = profile.get("risky").unwrap();
    assert_eq!((s.calls, s.panics, s.errors), (3, 1, 0));
}

#[derive(Debug)]
struct Diverged;
impl std::fmt::Display for Diverged {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("loss is NaN")
    }
}

#[instrument(err)]
fn train_step(i: u32) -> Result<u32, Diverged> {
    if i.is_multiple_of(4) {
        Err(Diverged)
    } else {
        Ok(i)
    }
}

#[test]
fn instrument_err_marks_failed_calls() {
    let (layer, profile) = real_layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..8 {
            let _ = train_step(i);
        }
        // An ERROR event in a parent does not fail its children, and vice versa.
        info_span!("outer").in_scope(|| tracing::error!("outer failed"));
    });
    let s = profile.get("train_step").unwrap();
    assert_eq!((s.calls, s.errors), (8, 2));
    assert_eq!(profile.get("outer").unwrap().errors, 1);
}

#[test]
fn spans_never_entered_are_counted_not_timed() {
    let (layer, profile) = real_layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        drop(info_span!("created_only"));
        info_span!("entered").in_scope(|| ());
    });
    assert_eq!(profile.spans_never_entered(), 1);
    assert_eq!(profile.get("created_only"), None);
    assert_eq!(profile.paths().len(), 1);
}

#[test]
fn works_beside_other_layers_and_under_a_per_layer_filter() {
    use tracing_subscriber::filter::LevelFilter;
    let (layer, profile, clock) = mock_layer();
    let subscriber = tracing_subscriber::registry()
        .with(tracing_subscriber::fmt::layer().with_writer(std::io::sink))
        .with(layer.with_filter(LevelFilter::INFO));
    tracing::subscriber::with_default(subscriber, || {
        let _a = info_span!("a").entered();
        let _b = tracing::debug_span!("b").entered(); // filtered out for spanlab only
        let _c = info_span!("c").entered();
        clock.increment(MS);
    });
    let order: Vec<String> = profile.paths().iter().map(|p| p.path_string()).collect();
    assert_eq!(order, ["a", "a > c"]);
    assert_eq!(profile.get("a > c").unwrap().total, MS);
}

#[test]
fn more_live_spans_than_a_thread_table_holds_are_all_recorded() {
    // 200 live spans on one thread: the oldest move to their extensions (eviction).
    let (layer, profile, clock) = mock_layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let root = info_span!("root").entered();
        let spans: Vec<_> = (0..200).map(|i| info_span!("item", i)).collect();
        for span in &spans {
            span.in_scope(|| {
                clock.increment(MS);
                info_span!("inner").in_scope(|| clock.increment(MS));
            });
        }
        drop(spans);
        drop(root);
    });
    let item = profile.get("root > item").unwrap();
    assert_eq!(
        (item.calls, item.total, item.self_time),
        (200, MS * 400, MS * 200)
    );
    assert_eq!(profile.get("root > item > inner").unwrap().calls, 200);
    assert_eq!(profile.get("root").unwrap().self_time, Duration::ZERO);
}

#[test]
fn a_span_created_on_one_thread_and_closed_on_another_moves_with_its_state() {
    let (layer, profile, clock) = mock_layer();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let span = tracing::dispatcher::with_default(&dispatch, || {
        let span = info_span!("job");
        span.in_scope(|| clock.increment(MS)); // entered on its creator
        span
    });
    std::thread::scope(|s| {
        s.spawn(|| {
            tracing::dispatcher::with_default(&dispatch, || {
                span.in_scope(|| {
                    clock.increment(MS * 2);
                    tracing::error!("failed on the other thread");
                    info_span!("child").in_scope(|| clock.increment(MS * 3));
                });
                drop(span); // closed here
            })
        });
    });
    let job = profile.get("job").unwrap();
    assert_eq!(
        (job.calls, job.busy, job.self_time, job.errors),
        (1, MS * 6, MS * 3, 1)
    );
    assert_eq!(profile.get("job > child").unwrap().total, MS * 3);
}

#[test]
fn a_span_touched_elsewhere_then_evicted_keeps_every_part() {
    // Thread B adds a part to the extension; then the owner evicts its own part into
    // the same extension (the merge path); then the span closes on the owner.
    let (layer, profile, clock) = mock_layer();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    tracing::dispatcher::with_default(&dispatch, || {
        let shared = info_span!("shared");
        shared.in_scope(|| clock.increment(MS));
        std::thread::scope(|s| {
            s.spawn(|| {
                tracing::dispatcher::with_default(&dispatch, || {
                    shared.in_scope(|| clock.increment(MS * 2))
                });
            });
        });
        let crowd: Vec<_> = (0..2 * crate::core::spans::LOCAL_CAPACITY)
            .map(|i| info_span!("crowd", i))
            .collect();
        shared.in_scope(|| clock.increment(MS * 4));
        drop(crowd);
        drop(shared);
    });
    let s = profile.get("shared").unwrap();
    assert_eq!((s.calls, s.busy, s.total), (1, MS * 7, MS * 7));
    assert_eq!(
        profile.spans_never_entered(),
        2 * crate::core::spans::LOCAL_CAPACITY as u64
    );
}

#[test]
fn stress_spans_moving_between_threads_while_owners_evict() {
    // Producers create spans, time some locally, keep more live spans than their table
    // holds (evicting, and racing closers elsewhere), and hand every span to consumers
    // that enter it twice, create children under it, and close it. Every count must be
    // exact, and nothing may panic or deadlock.
    const PRODUCERS: usize = 3;
    const JOBS: usize = 400;
    let (layer, profile) = real_layer();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let (tx, rx) = std::sync::mpsc::channel::<tracing::Span>();
    let rx = std::sync::Mutex::new(rx);
    std::thread::scope(|s| {
        for _ in 0..2 {
            let (dispatch, rx) = (dispatch.clone(), &rx);
            s.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || loop {
                    let Ok(job) = rx.lock().unwrap().recv() else {
                        break;
                    };
                    for _ in 0..2 {
                        job.in_scope(|| info_span!("step").in_scope(|| std::hint::black_box(1)));
                    }
                    drop(job); // closed here, or on the producer if it still holds a clone
                })
            });
        }
        for p in 0..PRODUCERS {
            let (dispatch, tx) = (dispatch.clone(), tx.clone());
            s.spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let mut held = std::collections::VecDeque::new();
                    for i in 0..JOBS {
                        let job = info_span!("job", p, i);
                        if i % 3 == 0 {
                            job.in_scope(|| ()); // a part timed by its owner
                        }
                        tx.send(job.clone()).unwrap();
                        held.push_back(job); // keeps > LOCAL_CAPACITY alive: evictions
                        if held.len() > 100 {
                            held.pop_front();
                        }
                    }
                })
            });
        }
        drop(tx);
    });
    let total = (PRODUCERS * JOBS) as u64;
    assert_eq!(profile.get("job").unwrap().calls, total);
    assert_eq!(profile.get("job > step").unwrap().calls, 2 * total);
    assert_eq!(profile.spans_never_entered(), 0);
    let job = profile.get("job").unwrap();
    assert!(job.busy >= profile.get("job > step").unwrap().total);
}

/// A rider that breaks rule 5 of `core::spans`: it traces from inside its enter hook.
struct Chatty;

impl crate::core::rider::Rider for Chatty {
    fn interest(&self, _: &'static tracing::Metadata<'static>, _: u16) -> u8 {
        1
    }

    fn new_span<S>(
        &self,
        _: &mut crate::core::rider::NewSpan<'_>,
        _: &mut crate::core::rider::Cx<'_, '_, S>,
        _: u8,
    ) -> u8
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        1
    }

    fn enter<S>(&self, _: &tracing::Id, _: &mut crate::core::rider::Cx<'_, '_, S>, _: u8) -> u8
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        tracing::info!("this event re-enters the layer");
        0
    }
}

#[test]
#[cfg(debug_assertions)]
#[should_panic(expected = "rule 5")]
fn a_rider_that_traces_inside_a_hook_is_caught_in_debug_builds() {
    let lab = Arc::new(Assembly {
        core: Core::new(Clock::new()),
        riders: Chatty,
    });
    let layer = SpanCore::new(lab);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info_span!("step").in_scope(|| ());
    });
}
