//! Seeded scopes through the layer: the stream equalities of `temporary_seed`.

use std::time::Duration;

use rand::{RngExt, SeedableRng};
use tracing::{info_span, Instrument};
use tracing_subscriber::prelude::*;

use super::tests::reset_thread_stream;
use super::{rng, Scope, SeededRng};

use crate::test_support::real_layer as layer;

/// The first `n` f64 of `SeededRng::seed_from_u64(seed)`.
fn stream(seed: u64, n: usize) -> Vec<f64> {
    let mut r = SeededRng::seed_from_u64(seed);
    (0..n).map(|_| r.random()).collect()
}

#[test]
fn the_python_temporary_seed_example_holds() {
    // np.random.seed(0); rand(); with temporary_seed(42): rand(); rand()
    let (layer, _) = layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        reset_thread_stream(0);
        let before: f64 = rng().random();
        let inside: f64 = info_span!("temporary_seed", seed = 42).in_scope(|| rng().random());
        let after: f64 = rng().random();
        assert_eq!(
            inside,
            stream(42, 1)[0],
            "inside: a fresh generator seeded with 42"
        );
        assert_eq!(
            [before, after],
            stream(0, 2)[..],
            "after: the outer stream continues"
        );
    });
}

#[test]
fn nested_seeded_scopes_each_restore_their_outer_stream() {
    let (layer, _) = layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        reset_thread_stream(0);
        let mut outer = Vec::new();
        let mut inner = Vec::new();
        info_span!("outer", seed = 1u64).in_scope(|| {
            outer.push(rng().random::<f64>());
            info_span!("inner", seed = 2u64).in_scope(|| {
                inner.push(rng().random::<f64>());
                inner.push(rng().random::<f64>());
            });
            outer.push(rng().random::<f64>());
        });
        let base: f64 = rng().random();
        assert_eq!(outer, stream(1, 2));
        assert_eq!(inner, stream(2, 2));
        assert_eq!(base, stream(0, 1)[0]);
    });
}

#[test]
fn a_span_entered_many_times_continues_its_own_stream() {
    let (layer, _) = layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        reset_thread_stream(0);
        let span = info_span!("task", seed = 9u64);
        let a: f64 = span.in_scope(|| rng().random());
        let base: f64 = rng().random(); // between polls: the thread's stream
        let b: f64 = span.in_scope(|| rng().random());
        assert_eq!([a, b], stream(9, 2)[..]);
        assert_eq!(base, stream(0, 1)[0]);
    });
}

#[test]
fn threads_draw_from_their_own_seeded_scopes() {
    let (layer, _) = layer();
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let draws: Vec<Vec<f64>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..4u64)
            .map(|t| {
                let dispatch = dispatch.clone();
                s.spawn(move || {
                    tracing::dispatcher::with_default(&dispatch, || {
                        info_span!("worker", seed = t)
                            .in_scope(|| (0..100).map(|_| rng().random()).collect())
                    })
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    for (t, d) in draws.iter().enumerate() {
        assert_eq!(*d, stream(t as u64, 100), "thread {t}");
    }
}

#[test]
fn seeded_async_tasks_keep_their_streams_across_awaits_and_workers() {
    let (layer, profile) = layer();
    let (dispatch, runtime) = crate::test_support::runtime_with(layer);
    async fn trial() -> Vec<f64> {
        let mut draws = Vec::new();
        for _ in 0..4 {
            draws.push(rng().random::<f64>());
            tokio::time::sleep(Duration::from_millis(1)).await; // may resume on another worker
            tokio::task::yield_now().await;
        }
        draws
    }
    let results: Vec<Vec<f64>> = tracing::dispatcher::with_default(&dispatch, || {
        runtime.block_on(async {
            let tasks: Vec<_> = (0..40u64)
                .map(|i| tokio::spawn(trial().instrument(info_span!("trial", seed = 1000 + i))))
                .collect();
            let mut out = Vec::new();
            for t in tasks {
                out.push(t.await.unwrap());
            }
            out
        })
    });
    drop(runtime);
    for (i, draws) in results.iter().enumerate() {
        assert_eq!(*draws, stream(1000 + i as u64, 4), "task {i}");
    }
    let report = profile.report();
    let trial = &report.seeds.paths[0];
    assert_eq!((trial.calls, trial.draws, trial.seeds.len()), (40, 160, 40));
}

#[test]
fn a_panic_inside_a_seeded_span_restores_the_outer_stream() {
    let (layer, profile) = layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        reset_thread_stream(0);
        let first: f64 = rng().random();
        let result = std::panic::catch_unwind(|| {
            let _span = info_span!("risky", seed = 5u64).entered();
            let _: f64 = rng().random();
            panic!("diverged");
        });
        assert!(result.is_err());
        let second: f64 = rng().random();
        assert_eq!([first, second], stream(0, 2)[..]);
    });
    assert_eq!(profile.get("risky").unwrap().panics, 1);
}

#[test]
fn bad_seed_values_run_unseeded_and_are_reported_once() {
    let (layer, profile) = layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        reset_thread_stream(0);
        let mut draws = Vec::new();
        for _ in 0..3 {
            draws.push(info_span!("text", seed = "abc").in_scope(|| rng().random::<f64>()));
        }
        draws.push(info_span!("negative", seed = -1).in_scope(|| rng().random::<f64>()));
        draws.push(info_span!("float", seed = 1.5).in_scope(|| rng().random::<f64>()));
        assert_eq!(draws, stream(0, 5), "unseeded: the thread's stream");
    });
    let report = profile.report();
    assert!(report.seeds.paths.is_empty());
    assert_eq!(
        report.warnings,
        [
            "span `text`: seed = \"abc\" is not an unsigned integer; the span ran unseeded",
            "span `negative`: seed = -1 is not an unsigned integer; the span ran unseeded",
            "span `float`: seed = 1.5 is not an unsigned integer; the span ran unseeded",
        ]
    );
    assert_eq!(profile.get("text").unwrap().calls, 3);
}

#[test]
fn bookkeeping_counts_seeds_draws_and_digests_per_path() {
    let (layer, profile) = layer();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let _epoch = info_span!("epoch").entered();
        for seed in [42u64, 42, 7] {
            info_span!("shuffle", seed).in_scope(|| {
                for _ in 0..10 {
                    let _: u64 = rng().random();
                }
            });
        }
        info_span!("unseeded").in_scope(|| rng().random::<u64>());
    });
    let report = profile.report();
    assert_eq!(report.seeds.paths.len(), 1);
    let shuffle = &report.seeds.paths[0];
    assert_eq!(shuffle.path, ["epoch", "shuffle"]);
    assert_eq!(shuffle.seeds, [(7, 1), (42, 2)]);
    assert_eq!((shuffle.calls, shuffle.draws), (3, 30));
    // The digest is independent of the spans: the same draws give the same digest.
    let digest_of = |seed| {
        let mut scope = Scope::seeded(seed);
        (0..10).for_each(|_| {
            scope.next();
        });
        scope.digest
    };
    let expected = digest_of(42)
        .wrapping_add(digest_of(42))
        .wrapping_add(digest_of(7));
    assert_eq!(shuffle.digest, expected);
}

/// A `fmt` layer's output, kept in memory.
#[derive(Clone, Default)]
struct Captured(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn a_bad_seed_warning_reaches_the_other_layers_under_a_scoped_dispatcher() {
    // The warning is said from inside `on_new_span`, where tracing's macros would find
    // no dispatcher under `with_default`: it must still reach the fmt layer, once per
    // callsite.
    let (layer, _profile) = layer();
    let out = Captured::default();
    let writer = out.clone();
    let fmt = tracing_subscriber::fmt::layer()
        .with_writer(move || writer.clone())
        .with_ansi(false);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(fmt).with(layer), || {
        for _ in 0..3 {
            info_span!("text", seed = "abc").in_scope(|| ());
        }
    });
    let text = out.text();
    let warning = "span `text`: seed = \"abc\" is not an unsigned integer; the span ran unseeded";
    assert_eq!(text.matches(warning).count(), 1, "{text}");
    assert!(text.contains("WARN") && text.contains("spanlab"), "{text}");
}
