//! The model against the report it is made from.

use tracing::info_span;
use tracing_subscriber::prelude::*;

use super::*;
use crate::SpanLab;

/// A report of `epoch > forward` ×30, `epoch > backward` ×20 (one error each fifth),
/// `epoch` ×10, and `extra{k}` roots ×1 each.
fn report(extra: usize) -> Report {
    let (layer, guard) = SpanLab::builder()
        .ignore_env()
        .report_to(crate::ReportTarget::Off)
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..10 {
            let _epoch = info_span!("epoch").entered();
            for _ in 0..3 {
                info_span!("forward").in_scope(|| std::hint::black_box(i));
            }
            for j in 0..2 {
                info_span!("backward").in_scope(|| {
                    if (i * 2 + j) % 5 == 0 {
                        tracing::error!("bad step");
                    }
                });
            }
        }
        for k in 0..extra {
            let name: &'static str = Box::leak(format!("extra{k}").into_boxed_str());
            let span = tracing::span!(tracing::Level::INFO, "extra", name = name);
            span.in_scope(|| ());
        }
    });
    guard.report()
}

fn point<'s>(family: &'s Family, path: &str) -> &'s Point {
    family
        .points
        .iter()
        .find(|p| p.attributes[0] == ("spanlab.path", path.to_owned()))
        .unwrap_or_else(|| panic!("{path} in {}", family.name))
}

#[test]
fn every_path_gets_exact_counts_sums_and_buckets() {
    let report = report(0);
    let (snapshot, warning) = snapshot(&report, &mut PathCap::new(100));
    assert!(warning.is_none());
    let duration = snapshot.family("spanlab.span.duration").unwrap();
    let calls = snapshot.family("spanlab.span.calls").unwrap();
    let errors = snapshot.family("spanlab.span.errors").unwrap();
    assert_eq!(duration.points.len(), 3);
    for stats in &report.paths {
        let path = stats.path_string();
        let Value::Histogram(h) = &point(duration, &path).value else {
            panic!("a histogram")
        };
        assert_eq!(h.count, stats.calls);
        assert_eq!(h.counts.iter().sum::<u64>(), stats.calls);
        assert_eq!(h.counts, buckets::rebucket(&stats.sums.wall.histogram));
        assert_eq!(h.sum, stats.sums.wall.sum_ns as f64 / 1e9);
        assert_eq!(point(calls, &path).value, Value::Int(stats.calls));
        assert_eq!(point(errors, &path).value, Value::Int(stats.errors));
        assert_eq!(
            point(duration, &path).attributes[1].1,
            stats.path.last().unwrap().as_ref()
        );
    }
    assert_eq!(
        point(calls, "epoch > forward").value,
        Value::Int(30),
        "{snapshot:?}"
    );
    assert_eq!(point(errors, "epoch > backward").value, Value::Int(4));
}

#[test]
fn paths_beyond_the_cap_fold_into_other_with_one_warning() {
    let report = report(5);
    let mut cap = PathCap::new(3);
    let (first, warning) = snapshot(&report, &mut cap);
    let warning = warning.expect("a warning at the first fold");
    assert!(warning.contains("SPANLAB_METRICS_MAX_PATHS"), "{warning}");
    let calls = first.family("spanlab.span.calls").unwrap();
    assert_eq!(calls.points.len(), 4, "three paths and (other)");
    assert_eq!(point(calls, OTHER).value, Value::Int(5));
    let total: u64 = calls
        .points
        .iter()
        .map(|p| match p.value {
            Value::Int(n) => n,
            _ => 0,
        })
        .sum();
    assert_eq!(total, report.paths.iter().map(|p| p.calls).sum::<u64>());
    // The same paths keep their series, and the warning is not repeated.
    let (second, warning) = snapshot(&report, &mut cap);
    assert!(warning.is_none());
    assert_eq!(first, second);
    assert_eq!(cap.admitted.len(), 3);
}

#[test]
fn gpu_spans_and_llm_calls_get_their_families() {
    use crate::llm::{record, LlmCall};
    use crate::riders::gpu::SimulatedGpu;
    use std::sync::Arc;

    let gpu = Arc::new(SimulatedGpu::new(1, 80 << 30));
    let (layer, guard) = SpanLab::builder()
        .ignore_env()
        .report_to(crate::ReportTarget::Off)
        .gpu_probe(gpu.clone())
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        info_span!("train", gpu = true).in_scope(|| gpu.alloc(0, 1 << 20));
        for (input, output) in [(10, 1), (20, 2), (30, 3)] {
            record(
                LlmCall::new("tiny-1")
                    .prompt("hi")
                    .response("ho")
                    .tokens(input, output),
            );
        }
    });
    let report = guard.report();
    let (snapshot, _) = snapshot(&report, &mut PathCap::new(10));
    let peak = snapshot
        .family("spanlab.gpu.memory.peak")
        .expect("a peak gauge");
    assert_eq!(peak.kind, Kind::Gauge);
    let point = point(peak, "train");
    assert_eq!(point.attributes[2], ("gpu.device", "0".to_owned()));
    assert_eq!(
        point.value,
        Value::Int(report.gpu.paths[0].max_peak_bytes),
        "{report:?}"
    );
    let tokens = snapshot.family("gen_ai.client.token.usage").unwrap();
    let sums: Vec<(String, u64, f64)> = tokens
        .points
        .iter()
        .map(|p| match &p.value {
            Value::Histogram(h) => (p.attributes[1].1.clone(), h.count, h.sum),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        sums,
        [("input".to_owned(), 3, 60.0), ("output".to_owned(), 3, 6.0)]
    );
    assert!(snapshot
        .family("gen_ai.client.operation.duration")
        .is_some());
}

/// The token points of `snapshot`, by `gen_ai.token.type`.
fn token_points(snapshot: &Snapshot) -> Vec<(String, HistogramPoint)> {
    let family = snapshot.family("gen_ai.client.token.usage").unwrap();
    assert_eq!(family.kind, Kind::Histogram);
    family
        .points
        .iter()
        .map(|p| match &p.value {
            Value::Histogram(h) => (p.attributes[1].1.clone(), h.clone()),
            other => panic!("{other:?}"),
        })
        .collect()
}

#[test]
fn token_usage_buckets_are_exact_counts_of_calls_at_or_below_each_bound() {
    use crate::llm::{record, LlmCall};

    // Values on both sides of bounds, and far past 256 where a report bucket holds
    // several counts.
    let inputs: Vec<u64> = vec![
        0, 1, 2, 3, 5, 6, 7, 8, 9, 10, 255, 256, 3_071, 3_072, 90_000,
    ];
    let outputs: Vec<u64> = inputs.iter().map(|&n| n * 3 + 1).collect();
    let (layer, guard) = SpanLab::builder()
        .ignore_env()
        .report_to(crate::ReportTarget::Off)
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for (&input, &output) in inputs.iter().zip(&outputs) {
            record(LlmCall::new("tiny-1").tokens(input, output));
        }
        record(LlmCall::new("tiny-1").prompt("no token counts"));
    });
    let report = guard.report();
    let model = &report.prompts.models[0];
    let (snapshot, _) = snapshot(&report, &mut PathCap::new(10));
    let points = token_points(&snapshot);
    assert_eq!(points.len(), 2);
    for ((kind, h), (values, sum, histogram)) in points.iter().zip([
        (&inputs, model.input_tokens, &model.input_token_histogram),
        (&outputs, model.output_tokens, &model.output_token_histogram),
    ]) {
        assert_eq!(h.bounds, buckets::token_bounds_exported(), "{kind}");
        // Per bound, the calls with at most that many tokens: counted from the values
        // themselves, so exact only if no report bucket straddles a bound.
        let mut cumulative = Vec::new();
        for &bound in h.bounds {
            cumulative.push(values.iter().filter(|&&v| v as f64 <= bound).count() as u64);
        }
        let exported: Vec<u64> = h
            .counts
            .iter()
            .scan(0, |n, &c| {
                *n += c;
                Some(*n)
            })
            .collect();
        assert_eq!(exported[..h.bounds.len()], cumulative[..], "{kind}");
        assert_eq!(
            h.counts.len(),
            h.bounds.len() + 1,
            "{kind}: and the overflow"
        );
        assert_eq!(
            h.count,
            values.len() as u64,
            "{kind}: the calls with counts"
        );
        assert_eq!(h.count, histogram.as_ref().unwrap().count(), "{kind}");
        assert_eq!(h.sum, values.iter().sum::<u64>() as f64, "{kind}");
        assert_eq!(h.sum, sum as f64, "{kind}: the report's sum");
    }
    assert_eq!(model.calls, inputs.len() as u64 + 1);
}

#[test]
fn token_usage_without_histograms_is_a_count_and_a_sum() {
    use crate::llm::{record, LlmCall};

    let (layer, guard) = SpanLab::builder()
        .ignore_env()
        .report_to(crate::ReportTarget::Off)
        .build();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        record(LlmCall::new("tiny-1").tokens(10, 20));
        record(LlmCall::new("tiny-1").tokens(30, 40));
    });
    let mut report = guard.report();
    // As a merge with a report from before token histograms has it.
    report.prompts.models[0].input_token_histogram = None;
    let (snapshot, _) = snapshot(&report, &mut PathCap::new(10));
    let points = token_points(&snapshot);
    let (input, output) = (&points[0].1, &points[1].1);
    assert!(input.bounds.is_empty() && input.counts.is_empty());
    assert_eq!((input.count, input.sum), (2, 40.0));
    assert_eq!(output.bounds, buckets::token_bounds_exported());
    assert_eq!((output.count, output.sum), (2, 60.0));
}
