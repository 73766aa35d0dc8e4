//! Merging is exact: one run's calls split between two processes (layers on mock
//! clocks, where ticks are nanoseconds) merge into the report of the whole run, section
//! by section, bucket by bucket and sum by sum — directly, and through JSON.

use std::ops::Range;
use std::sync::Arc;
use std::time::Duration;

use rand::RngExt;
use tracing::info_span;
use tracing_subscriber::prelude::*;

use super::{ExportReport, FlushOutcome, MergeError, Report};
use crate::core::clock::Clock;
use crate::llm::{self, LlmCall};
use crate::riders::gpu::{GpuConfig, SimulatedGpu};

const MIB: u64 = 1 << 20;
const CALLS: u64 = 1_500;

/// A duration of iteration `i`, ns: deterministic, spread over several octaves.
fn ns(i: u64, salt: u64) -> u64 {
    let x = (i * 2_654_435_761 + salt * 40_503) % 1_000_003;
    1_000 + x * (1 + (i + salt) % 7) * 13
}

/// Iterations `range` of a training-like run — timed paths, GPU spans on two devices,
/// seeded spans (one path with far more seeds than are kept), LLM calls — on a layer
/// whose mock clock starts at `start` ns. Returns its report and the clock at the end.
pub(super) fn run(range: Range<u64>, start: u64) -> (Report, u64) {
    let (clock, mock) = Clock::mock();
    mock.increment(start);
    let gpu = Arc::new(SimulatedGpu::new(2, 80 << 30));
    let config = GpuConfig {
        probe: Some(gpu.clone()),
        ..GpuConfig::default()
    };
    let (layer, profile) = crate::test_support::layer_with(clock, config);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in range {
            let _epoch = info_span!("epoch").entered();
            mock.increment(ns(i, 1));
            info_span!("forward", gpu = true).in_scope(|| {
                let bytes = (i % 5 + 1) * MIB;
                gpu.alloc(i as usize % 2, bytes);
                mock.increment(ns(i, 2));
                gpu.free(i as usize % 2, bytes);
            });
            // Seeds drift over the run, so that the halves keep different seeds.
            info_span!("trial", seed = i * 7_919 % 300 + i / 10).in_scope(|| {
                for _ in 0..i % 4 {
                    std::hint::black_box(crate::rng().random::<u64>());
                }
                mock.increment(ns(i, 3));
            });
            if i % 3 == 0 {
                info_span!("sweep", seed = i % 10).in_scope(|| mock.increment(50u64));
            }
            if i % 4 == 0 {
                let model = if i % 8 == 0 { "tiny-1" } else { "tiny-2" };
                llm::record(
                    LlmCall::new(model)
                        .provider("local")
                        .prompt(format!("q{i}"))
                        .response("a")
                        .tokens(i, 2 * i)
                        .latency(Duration::from_nanos(ns(i, 4))),
                );
            }
        }
    });
    (profile.report(), mock.value())
}

/// The whole run, and its two halves split at `at`, the second starting where the
/// first ended.
fn whole_and_halves(at: u64) -> (Report, Report, Report) {
    let (whole, _) = run(0..CALLS, 0);
    let (first, end) = run(0..at, 0);
    let (second, _) = run(at..CALLS, end);
    (whole, first, second)
}

/// Every section a merge must reproduce exactly, compared part by part so that a
/// failure names the part.
fn assert_same_calls(merged: &Report, whole: &Report) {
    assert_eq!(merged.paths.len(), whole.paths.len());
    for (m, w) in merged.paths.iter().zip(&whole.paths) {
        let at = w.path_string();
        assert_eq!(m.path, w.path);
        let (mw, ww) = (&m.sums.wall, &w.sums.wall);
        assert_eq!(mw.histogram, ww.histogram, "{at}: bucket by bucket");
        assert_eq!(
            (mw.count, mw.sum_ns, mw.sum_sq_ns2, mw.min_ns, mw.max_ns),
            (ww.count, ww.sum_ns, ww.sum_sq_ns2, ww.min_ns, ww.max_ns),
            "{at}: sums"
        );
        assert_eq!(
            (m.p50, m.p95, m.p99),
            (w.p50, w.p95, w.p99),
            "{at}: quantiles"
        );
        for q in [0.1, 0.5, 0.9, 0.999] {
            assert_eq!(mw.quantile(q), ww.quantile(q), "{at}: q{q}");
        }
        assert_eq!(m, w, "{at}: every figure");
    }
    assert_eq!(merged.seeds, whole.seeds);
    assert_eq!(merged.gpu, whole.gpu);
    assert_eq!(merged.prompts, whole.prompts);
    assert_eq!(merged.spans_never_entered, whole.spans_never_entered);
}

#[test]
fn two_halves_of_a_run_merge_into_the_whole_run() {
    for at in [1, 700, CALLS - 1] {
        let (whole, first, second) = whole_and_halves(at);
        let merged = Report::merge(&[first.clone(), second.clone()]).unwrap();
        assert_same_calls(&merged, &whole);
        assert_eq!(merged.runs, [first.runs[0].clone(), second.runs[0].clone()]);
        assert_eq!(merged.elapsed, first.elapsed.max(second.elapsed));
    }
}

#[test]
fn the_workload_exercises_what_merging_must_get_right() {
    // Otherwise the test above would pass without proving much.
    let (whole, first, second) = whole_and_halves(700);
    let trial = |r: &Report| {
        r.seeds
            .paths
            .iter()
            .find(|p| p.path == ["epoch", "trial"])
            .cloned()
            .unwrap()
    };
    let (t, a, b) = (trial(&whole), trial(&first), trial(&second));
    assert!(
        !t.distinct_exact && t.other_seed_calls > 0,
        "seeds past the cap"
    );
    let kept = |p: &crate::rng::SeededPath| p.seeds.iter().map(|s| s.0).collect::<Vec<_>>();
    assert_ne!(kept(&a), kept(&b), "the halves keep different seeds");
    let mut union = kept(&a);
    union.extend(kept(&b));
    union.sort_unstable();
    union.dedup();
    assert!(
        union.len() > crate::rng::SEEDS_KEPT,
        "so a merge must drop some"
    );
    let sweep = whole
        .seeds
        .paths
        .iter()
        .find(|p| p.path == ["epoch", "sweep"])
        .unwrap();
    assert!(sweep.distinct_exact && sweep.distinct_seeds == 10);
    assert_eq!(whole.gpu.paths.len(), 2, "a row per device");
    assert_eq!(whole.prompts.models.len(), 2);
    let tokens = |r: &Report| r.prompts.models[1].output_token_histogram.clone().unwrap();
    assert!(
        tokens(&whole).buckets().any(|(r, _)| r.start() != r.end()),
        "token counts past 256, where a bucket holds several"
    );
    assert!(
        tokens(&first).count() > 0 && tokens(&second).count() > 0,
        "both halves count tokens"
    );
    assert!(whole.prompts.recent.iter().all(|r| r.unix_nanos > 0));
    let forward = whole
        .paths
        .iter()
        .find(|p| p.path == ["epoch", "forward"])
        .unwrap();
    assert!(forward.sums.wall.histogram.buckets().count() > 100);
    assert_ne!(
        (first.paths[1].p50, second.paths[1].p50),
        (forward.p50, forward.p50),
        "the halves' quantiles differ from the whole's"
    );
}

#[test]
fn merging_through_json_is_exact_too() {
    let (whole, first, second) = whole_and_halves(700);
    let read = |r: &Report| Report::from_json(&r.to_json()).unwrap();
    let merged = Report::merge(&[read(&first), read(&second)]).unwrap();
    assert_same_calls(&merged, &whole);
    // And the merged report survives its own round trip.
    assert_eq!(read(&merged), merged);
}

#[test]
fn merging_is_associative_and_one_report_merges_into_itself() {
    let (_, first, second) = whole_and_halves(700);
    let (third, _) = run(3_000..3_400, 1 << 40);
    let all = Report::merge(&[first.clone(), second.clone(), third.clone()]).unwrap();
    let left = Report::merge(&[
        Report::merge(&[first.clone(), second.clone()]).unwrap(),
        third.clone(),
    ]);
    let right = Report::merge(&[first.clone(), Report::merge(&[second, third]).unwrap()]);
    assert_eq!(left.unwrap(), all);
    assert_eq!(right.unwrap(), all);
    assert_eq!(Report::merge(std::slice::from_ref(&first)).unwrap(), first);
    assert_eq!(Report::merge(&[]), Err(MergeError::NoReports));
}

#[test]
fn paths_new_in_a_later_report_take_their_place_in_the_tree() {
    let mut a = super::tests::sample_report();
    let mut b = a.clone();
    // `a` lacks the last path; `b` lists it first, before its parent.
    let backward = a.paths.pop().unwrap();
    b.paths.rotate_right(1);
    assert_eq!(b.paths[0].path, backward.path);
    a.seeds.paths.clear();
    let merged = Report::merge(&[a, b]).unwrap();
    let order: Vec<String> = merged.paths.iter().map(|p| p.path_string()).collect();
    assert_eq!(order, ["epoch", "epoch > forward;odd", "epoch > backward"]);
    assert_eq!(merged.paths[2].calls, backward.calls, "only b had it");
    assert_eq!(merged.paths[0].calls, 20);
}

#[test]
fn seeds_merge_under_the_smallest_cap_and_different_roots_are_told() {
    let (_, first, second) = whole_and_halves(700);
    let mut capped = second.clone();
    capped.seeds.seeds_kept = 10;
    capped.seeds.root.value ^= 1;
    let merged = Report::merge(&[first, capped]).unwrap();
    assert_eq!(merged.seeds.seeds_kept, 10);
    for p in &merged.seeds.paths {
        assert!(p.seeds.len() <= 10, "{:?}", p.path);
        assert_eq!(
            p.seeds.iter().map(|s| s.1).sum::<u64>() + p.other_seed_calls,
            p.calls
        );
    }
    assert!(
        merged
            .warnings
            .iter()
            .any(|w| w.contains("different root seeds")),
        "{:?}",
        merged.warnings
    );
}

#[test]
fn export_counts_add_and_an_overflow_is_an_error() {
    let mut a = super::tests::sample_report();
    let export = ExportReport {
        target: "grpc http://a:4317".into(),
        finished: 10,
        exported: 7,
        dropped: 1,
        failed: 1,
        queued_at_exit: 0,
        in_flight_at_exit: 1,
        batches: 3,
        failed_batches: 1,
        retries: 2,
        flush: FlushOutcome::Complete,
        given_up_at_exit: 0,
        last_error: Some("first".into()),
    };
    a.export = Some(export.clone());
    let mut b = a.clone();
    let e = b.export.as_mut().unwrap();
    (e.target, e.last_error) = ("grpc http://b:4317".into(), None);
    (e.flush, e.queued_at_exit, e.in_flight_at_exit) = (FlushOutcome::TimedOut, 1, 0);
    let merged = Report::merge(&[a.clone(), b, a.clone()])
        .unwrap()
        .export
        .unwrap();
    assert_eq!(merged.target, "grpc http://a:4317, grpc http://b:4317");
    assert_eq!(
        (
            merged.finished,
            merged.exported,
            merged.dropped,
            merged.failed,
            merged.queued_at_exit,
            merged.in_flight_at_exit,
        ),
        (30, 21, 3, 3, 1, 2)
    );
    // The merged flush admits to the worst of the runs'.
    assert_eq!(merged.flush, FlushOutcome::TimedOut);
    assert_eq!(
        (merged.batches, merged.failed_batches, merged.retries),
        (9, 3, 6)
    );
    assert_eq!(merged.last_error.as_deref(), Some("first"));
    let mut no_export = a.clone();
    no_export.export = None;
    assert_eq!(
        Report::merge(&[no_export, a.clone()]).unwrap().export,
        Some(export)
    );

    let mut huge = a.clone();
    huge.paths[0].sums.wall.sum_ns = u64::MAX;
    match Report::merge(&[huge, a]) {
        Err(MergeError::Overflow { at, sum }) => {
            assert_eq!((at.as_str(), sum), ("paths: epoch", "sum_ns"));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_merge_is_final_when_all_are_and_takes_the_smallest_sequence() {
    let (_, mut first, mut second) = whole_and_halves(700);
    (first.is_final, first.sequence) = (true, 9);
    (second.is_final, second.sequence) = (false, 4);
    let merged = Report::merge(&[first.clone(), second.clone()]).unwrap();
    assert_eq!((merged.is_final, merged.sequence), (false, 4));
    second.is_final = true;
    let merged = Report::merge(&[first, second]).unwrap();
    assert_eq!((merged.is_final, merged.sequence), (true, 4));
}

#[test]
fn token_histograms_add_bucket_by_bucket_and_none_wins() {
    let (whole, first, mut second) = whole_and_halves(700);
    let merged = Report::merge(&[first.clone(), second.clone()]).unwrap();
    for (m, w) in merged.prompts.models.iter().zip(&whole.prompts.models) {
        assert_eq!(
            m.input_token_histogram, w.input_token_histogram,
            "{}",
            w.model
        );
        assert_eq!(
            m.output_token_histogram, w.output_token_histogram,
            "{}",
            w.model
        );
        let input = m.input_token_histogram.as_ref().unwrap();
        let (low, high) = input.sum_range();
        assert!((low..=high).contains(&u128::from(m.input_tokens)));
    }
    // A report without token histograms (an older file): the merge has none, rather
    // than histograms that miss its calls.
    second.prompts.models[0].input_token_histogram = None;
    let merged = Report::merge(&[first, second]).unwrap();
    let model = &merged.prompts.models[0];
    assert_eq!(model.input_token_histogram, None);
    assert_eq!(
        model.output_token_histogram,
        whole.prompts.models[0].output_token_histogram
    );
    let read = Report::from_json(&merged.to_json()).unwrap();
    assert_eq!(read.prompts, merged.prompts);
}
