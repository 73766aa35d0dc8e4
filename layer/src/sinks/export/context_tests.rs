//! `current_traceparent` / `traceparent` against what export really sends: the ids
//! handed on are the exported spans' ids, in the trace a child must join.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry::trace::SpanId;
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};
use tracing::{info, info_span};
use tracing_subscriber::prelude::*;

use super::{current_traceparent, traceparent, RemoteParent, Sampler};
use crate::config::Env;
use crate::core::spans::LOCAL_CAPACITY;
use crate::{Builder, Guard, SpanLab, SpanLabLayer};

/// Keeps every exported span.
#[derive(Clone, Debug, Default)]
struct Keep(Arc<Mutex<Vec<SpanData>>>);

impl SpanExporter for Keep {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.lock().unwrap().extend(batch);
        Ok(())
    }
}

fn builder(keep: &Keep) -> Builder {
    SpanLab::builder()
        .ignore_env()
        .report_to(crate::ReportTarget::Off)
        .otlp_exporter(keep.clone())
        .otlp_schedule_delay(Duration::from_millis(20))
}

/// [`builder`], reading the environment `vars` and no other (`build_with_env`).
fn with_env(keep: &Keep, vars: &[(&str, &str)]) -> (SpanLabLayer, Guard) {
    SpanLab::builder()
        .report_to(crate::ReportTarget::Off)
        .otlp_exporter(keep.clone())
        .otlp_schedule_delay(Duration::from_millis(20))
        .build_with_env(&Env::of(vars))
}

/// Runs `f` under the built layer, then flushes (guard drop): `f`'s result and the
/// spans exported.
fn run<T>(built: (SpanLabLayer, Guard), keep: &Keep, f: impl FnOnce() -> T) -> (T, Vec<SpanData>) {
    let (layer, guard) = built;
    let out = tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f);
    drop(guard);
    let spans = std::mem::take(&mut *keep.0.lock().unwrap());
    (out, spans)
}

/// A returned value, checked for W3C form (lowercase, version 00, sampled) and parsed.
fn parsed(value: Option<String>) -> RemoteParent {
    let value = value.expect("a traceparent");
    assert_eq!(value.len(), 55, "{value}");
    assert!(
        value.starts_with("00-") && value.ends_with("-01"),
        "{value}"
    );
    assert!(
        !value.bytes().any(|b| b.is_ascii_uppercase()),
        "lowercase hex: {value}"
    );
    let parent = RemoteParent::parse(&value).expect("parses back");
    assert!(parent.sampled);
    assert_eq!(parent.to_string(), value);
    parent
}

/// The exported span named `name`: its (trace id, span id).
fn exported(spans: &[SpanData], name: &str) -> (u128, u64) {
    let span = spans
        .iter()
        .find(|s| s.name == name)
        .unwrap_or_else(|| panic!("no span {name} in {spans:?}"));
    let context = &span.span_context;
    (
        u128::from_be_bytes(context.trace_id().to_bytes()),
        u64::from_be_bytes(context.span_id().to_bytes()),
    )
}

fn parent_of(spans: &[SpanData], name: &str) -> (SpanId, bool) {
    let span = spans.iter().find(|s| s.name == name).expect(name);
    (span.parent_span_id, span.parent_span_is_remote)
}

#[test]
fn a_child_span_hands_on_its_roots_trace_and_its_own_id() {
    let keep = Keep::default();
    let ((root, child, back), spans) = run(builder(&keep).build(), &keep, || {
        let _launch = info_span!("launch").entered();
        let root = current_traceparent();
        let child = info_span!("step").in_scope(current_traceparent);
        (root, child, current_traceparent())
    });
    let (root, child) = (parsed(root), parsed(child));
    assert_eq!((root.trace_id, root.span_id), exported(&spans, "launch"));
    assert_eq!((child.trace_id, child.span_id), exported(&spans, "step"));
    assert_eq!(child.trace_id, root.trace_id, "one trace");
    assert_ne!(child.span_id, root.span_id);
    assert_eq!(parsed(back), root, "the root is current again");
}

#[test]
fn roots_without_a_parent_start_new_traces() {
    let keep = Keep::default();
    let ((first, second), spans) = run(builder(&keep).build(), &keep, || {
        let first = info_span!("first").in_scope(current_traceparent);
        let second = info_span!("second").in_scope(current_traceparent);
        (parsed(first), parsed(second))
    });
    assert_ne!(first.trace_id, second.trace_id);
    assert_eq!((first.trace_id, first.span_id), exported(&spans, "first"));
    assert_eq!(parent_of(&spans, "first").0, SpanId::INVALID);
    assert_eq!(parent_of(&spans, "second").0, SpanId::INVALID);
}

/// The whole chain: a parent's value, as the `TRACEPARENT` of a child's environment,
/// makes the child's root join the trace under the parent's span.
#[test]
fn a_traceparent_handed_on_makes_the_next_process_join_the_trace() {
    let keep = Keep::default();
    let (launcher, _) = run(builder(&keep).build(), &keep, || {
        info_span!("launch").in_scope(current_traceparent)
    });
    let launcher = launcher.expect("the launcher's traceparent");
    let worker = with_env(&keep, &[("TRACEPARENT", &launcher)]);
    let ((root, child), spans) = run(worker, &keep, || {
        let _worker = info_span!("worker").entered();
        let root = current_traceparent();
        (root, info_span!("step").in_scope(current_traceparent))
    });
    let (launcher, root, child) = (parsed(Some(launcher)), parsed(root), parsed(child));
    assert_eq!(
        root.trace_id, launcher.trace_id,
        "the worker joined the trace"
    );
    assert_eq!(child.trace_id, launcher.trace_id);
    assert_ne!(root.span_id, launcher.span_id);
    assert_eq!((root.trace_id, root.span_id), exported(&spans, "worker"));
    assert_eq!(
        parent_of(&spans, "worker"),
        (SpanId::from(launcher.span_id), true),
        "the worker's root is the launcher span's child, remote"
    );
}

#[test]
fn nothing_to_hand_on_is_none() {
    // No subscriber at all.
    assert_eq!(current_traceparent(), None);
    assert_eq!(info_span!("alone").in_scope(current_traceparent), None);

    // A subscriber without spanlab.
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        assert_eq!(info_span!("elsewhere").in_scope(current_traceparent), None);
    });

    // spanlab with export off: no span has ids.
    let off = SpanLab::builder()
        .ignore_env()
        .report_to(crate::ReportTarget::Off)
        .build();
    let keep = Keep::default();
    let (inside, _) = run(off, &keep, || {
        info_span!("step").in_scope(current_traceparent)
    });
    assert_eq!(inside, None);

    // Export on, but no current span; or the trace not sampled, by the sampler or by
    // an unsampled remote parent.
    let (outside, _) = run(builder(&keep).build(), &keep, current_traceparent);
    assert_eq!(outside, None);
    let never = builder(&keep).sampler(Sampler::AlwaysOff).build();
    let (unsampled, spans) = run(never, &keep, || {
        info_span!("step").in_scope(current_traceparent)
    });
    assert_eq!((unsampled, spans.len()), (None, 0));
    let remote = with_env(
        &keep,
        &[(
            "TRACEPARENT",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00",
        )],
    );
    let (unsampled, spans) = run(remote, &keep, || {
        info_span!("step").in_scope(current_traceparent)
    });
    assert_eq!((unsampled, spans.len()), (None, 0));
}

/// Another thread reads a span it does not own, while its owner adds to the span's
/// record; and a span whose owner part was evicted to its extension (its thread had
/// more than `LOCAL_CAPACITY` spans alive) still hands on its ids.
#[test]
fn other_threads_and_evicted_spans_read_the_same_ids() {
    let keep = Keep::default();
    let ((mine, theirs, evicted, evicted_elsewhere, children), spans) =
        run(builder(&keep).build(), &keep, || {
            let launch = info_span!("launch", n = tracing::field::Empty);
            let _entered = launch.enter();
            let mine = current_traceparent();
            let theirs = std::thread::scope(|s| {
                let reader = s.spawn(|| (0..200).map(|_| traceparent(&launch)).collect::<Vec<_>>());
                for n in 0..200_i64 {
                    launch.record("n", n);
                    info!(n, "working");
                }
                reader.join().unwrap()
            });
            // The oldest span of this thread (`launch`) goes to its extension.
            let alive: Vec<_> = (0..LOCAL_CAPACITY + 8)
                .map(|_| info_span!("child"))
                .collect();
            let evicted = traceparent(&launch);
            let evicted_elsewhere =
                std::thread::scope(|s| s.spawn(|| traceparent(&launch)).join().unwrap());
            let children: Vec<_> = alive.iter().map(traceparent).collect();
            (mine, theirs, evicted, evicted_elsewhere, children)
        });
    let mine = parsed(mine);
    assert_eq!((mine.trace_id, mine.span_id), exported(&spans, "launch"));
    assert_eq!(theirs.len(), 200);
    for other in theirs {
        assert_eq!(parsed(other), mine, "read from another thread");
    }
    assert_eq!(parsed(evicted), mine, "read from the extension");
    assert_eq!(parsed(evicted_elsewhere), mine);
    let mut ids: Vec<u64> = children
        .into_iter()
        .map(|c| {
            let child = parsed(c);
            assert_eq!(child.trace_id, mine.trace_id);
            child.span_id
        })
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(ids.len(), LOCAL_CAPACITY + 8, "every child its own id");
}

/// Through a stack of layers and a per-layer filter; a span the filter kept from
/// spanlab has nothing to hand on.
#[test]
fn found_through_filters_and_layer_stacks() {
    use tracing_subscriber::filter::{filter_fn, LevelFilter};
    let keep = Keep::default();
    let (layer, guard) = builder(&keep).build();
    let subscriber = tracing_subscriber::registry()
        .with(LevelFilter::INFO)
        .with(layer.with_filter(filter_fn(|meta| meta.name() != "hidden")));
    let (seen, hidden) = tracing::subscriber::with_default(subscriber, || {
        let _launch = info_span!("launch").entered();
        let seen = current_traceparent();
        (seen, info_span!("hidden").in_scope(current_traceparent))
    });
    drop(guard);
    let spans = std::mem::take(&mut *keep.0.lock().unwrap());
    let seen = parsed(seen);
    assert_eq!((seen.trace_id, seen.span_id), exported(&spans, "launch"));
    assert_eq!(hidden, None);
}
