//! Open spans and stalls, end to end through a layer on the mock clock.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tracing::info_span;
use tracing_subscriber::prelude::*;

use super::{OpenSince, OpenThread};
use crate::core::clock::Clock;
use crate::lab;
use crate::profile::Profile;
use crate::riders::gpu::GpuConfig;
use crate::test_support::layer_with;

const SECOND: u64 = 1_000_000_000;

/// A profile on the mock clock with fields recorded and stall factor `factor`, a
/// dispatch over it that also collects the WARN events of target `spanlab`.
fn setup(factor: f64) -> (Profile, Arc<quanta::Mock>, tracing::Dispatch, Warnings) {
    let (clock, mock) = Clock::mock();
    let (layer, profile) = layer_with(clock, GpuConfig::default());
    lab::open(&profile.assembly().riders).configure(true, factor);
    let warnings = Warnings::default();
    let dispatch = tracing::Dispatch::new(
        tracing_subscriber::registry()
            .with(warnings.clone())
            .with(layer),
    );
    (profile, mock, dispatch, warnings)
}

/// The messages of the WARN events of target `spanlab` seen so far.
#[derive(Clone, Default)]
struct Warnings(Arc<Mutex<Vec<String>>>);

impl Warnings {
    fn stalls(&self) -> Vec<String> {
        let all = self.0.lock().unwrap();
        all.iter()
            .filter(|w| w.contains("stalled?"))
            .cloned()
            .collect()
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for Warnings {
    fn on_event(&self, event: &tracing::Event<'_>, _: tracing_subscriber::layer::Context<'_, S>) {
        struct Message(String);
        impl tracing::field::Visit for Message {
            fn record_debug(&mut self, _: &tracing::field::Field, v: &dyn std::fmt::Debug) {
                self.0.push_str(&format!("{v:?}"));
            }
        }
        let meta = event.metadata();
        if *meta.level() == tracing::Level::WARN && meta.target() == "spanlab" {
            let mut m = Message(String::new());
            event.record(&mut m);
            self.0.lock().unwrap().push(m.0);
        }
    }
}

fn names(thread: &OpenThread) -> Vec<String> {
    thread.spans.iter().map(|s| s.path.join(" > ")).collect()
}

#[test]
fn the_open_stack_is_listed_from_the_root_with_fields_and_times() {
    let (profile, mock, dispatch, _) = setup(100.0);
    tracing::dispatcher::with_default(&dispatch, || {
        mock.increment(SECOND);
        let train = info_span!("train");
        train.in_scope(|| mock.increment(SECOND)); // one interval: exact from here on
        let _train = train.entered();
        let _epoch = info_span!("epoch", n = 3_u64, name = "warm up", lr = 0.5).entered();
        let _step = info_span!("step").entered();
        let report = profile.report(); // first sample: sees epoch and step now
        mock.increment(2 * SECOND);
        let report2 = profile.report();

        assert_eq!(report.open_spans.len(), 1);
        let thread = &report2.open_spans[0];
        assert_eq!(
            names(thread),
            ["train", "train > epoch", "train > epoch > step"]
        );
        assert_eq!(thread.run, 0);
        let [train, epoch, step] = &thread.spans[..] else {
            panic!()
        };
        assert_eq!(train.since, OpenSince::FirstEnter);
        assert_eq!(
            train.open,
            Duration::from_secs(3),
            "exact: first entered at 1 s, now 4 s"
        );
        assert_eq!(epoch.since, OpenSince::FirstSeen);
        assert_eq!(epoch.open, Duration::from_secs(2), "since the first sample");
        assert_eq!(step.open, Duration::from_secs(2));
        let fields: Vec<(&str, &str)> = epoch
            .fields
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        assert_eq!(fields, [("n", "3"), ("name", "warm up"), ("lr", "0.5")]);
        assert!(step.fields.is_empty() && !epoch.fields_cut);
        assert!(thread.spans.iter().all(|s| !s.stalled && s.p99.is_none()));

        let text = report2.to_text();
        assert!(text.contains("open spans: 3 on 1 thread"), "{text}");
        assert!(text.contains("n=3  name=warm up  lr=0.5"), "{text}");
        let json = report2.to_json();
        assert_eq!(crate::Report::from_json(&json).unwrap(), report2);
        let value: serde_json::Value = serde_json::from_str(&json).unwrap();
        let epoch = &value["open_spans"][0]["spans"][1];
        assert_eq!(epoch["open_ns"], 2 * SECOND);
        assert_eq!(epoch["since"], "first_seen");
        assert_eq!(epoch["fields"][0], serde_json::json!(["n", "3"]));
    });
    let report = profile.report();
    assert!(report.open_spans.is_empty());
    assert!(
        !report.to_text().contains("open spans"),
        "nothing when none are open"
    );
}

#[test]
fn record_updates_the_fields_and_long_values_are_cut() {
    let (profile, _mock, dispatch, _) = setup(100.0);
    tracing::dispatcher::with_default(&dispatch, || {
        let long = "x".repeat(300);
        let span = info_span!("load", file = long.as_str(), rows = tracing::field::Empty);
        let _load = span.clone().entered();
        span.record("rows", 12_u64);
        let report = profile.report();
        let load = &report.open_spans[0].spans[0];
        assert!(load.fields_cut);
        assert_eq!(load.fields.len(), 1, "{:?}", load.fields);
        assert!(load.fields[0].1.ends_with('…'));

        let span = info_span!("save", rows = 1_u64, file = "a");
        let _save = span.clone().entered();
        span.record("rows", 2_u64);
        let report = profile.report();
        let save = report.open_spans[0]
            .spans
            .iter()
            .find(|s| s.path == ["load", "save"])
            .unwrap();
        let mut fields = save.fields.clone();
        fields.sort();
        assert_eq!(
            fields,
            [("file".into(), "a".into()), ("rows".into(), "2".into())]
        );
    });
}

#[test]
fn a_span_on_another_thread_is_listed_under_that_thread() {
    let (profile, mock, dispatch, _) = setup(100.0);
    let (opened, release) = (
        Arc::new(std::sync::Barrier::new(2)),
        Arc::new(std::sync::Barrier::new(2)),
    );
    let worker = {
        let (dispatch, opened, release) = (dispatch.clone(), opened.clone(), release.clone());
        std::thread::Builder::new()
            .name("loader".into())
            .spawn(move || {
                tracing::dispatcher::with_default(&dispatch, || {
                    let _fetch = info_span!("fetch", shard = 4_u64).entered();
                    opened.wait();
                    release.wait();
                });
            })
            .unwrap()
    };
    opened.wait();
    tracing::dispatcher::with_default(&dispatch, || {
        let _main = info_span!("main_loop").entered();
        profile.report();
        mock.increment(3 * SECOND);
        let report = profile.report();
        let loader = report
            .open_spans
            .iter()
            .find(|t| t.thread.as_deref() == Some("loader"))
            .expect("the loader thread is listed");
        assert_eq!(names(loader), ["fetch"]);
        assert_eq!(
            loader.spans[0].fields,
            [("shard".to_string(), "4".to_string())]
        );
        assert_eq!(loader.spans[0].open, Duration::from_secs(3));
        assert_eq!(report.open_spans.len(), 2);
    });
    release.wait();
    worker.join().unwrap();
    assert!(
        profile.report().open_spans.is_empty(),
        "closed on its thread: freed"
    );
}

#[test]
fn a_span_that_never_closes_is_flagged_once_past_the_factor_and_ten_seconds() {
    let (profile, mock, dispatch, warnings) = setup(100.0);
    tracing::dispatcher::with_default(&dispatch, || {
        let _train = info_span!("train").entered();
        for _ in 0..5 {
            info_span!("all_reduce", bucket = 1_u64).in_scope(|| mock.increment(50_000_000u64));
        }
        // p99 50 ms: stalled past 5 s by the factor, but the floor is 10 s.
        let hung = info_span!("all_reduce", bucket = 7_u64).entered();
        let sample = |profile: &Profile| {
            let report = profile.report();
            let thread = report.open_spans[0].clone();
            thread
                .spans
                .into_iter()
                .find(|s| s.path.last().unwrap() == "all_reduce")
                .unwrap()
        };
        assert!(!sample(&profile).stalled);
        mock.increment(6 * SECOND);
        profile.watch_open_spans();
        let at_6s = sample(&profile);
        assert!(!at_6s.stalled, "over 100 × p99 but under 10 s");
        assert!(warnings.stalls().is_empty());
        mock.increment(5 * SECOND);
        // The snapshot thread samples without a default dispatcher of its own: the
        // warning still reaches the layers, through the dispatch the layer was built in.
        std::thread::scope(|s| {
            s.spawn(|| profile.watch_open_spans());
        });
        assert_eq!(warnings.stalls().len(), 1, "said from the sampling thread");
        let at_11s = sample(&profile);
        assert!(at_11s.stalled);
        assert_eq!(at_11s.open, Duration::from_secs(11));
        assert_eq!(at_11s.since, OpenSince::FirstSeen);
        assert_eq!(at_11s.fields, [("bucket".to_string(), "7".to_string())]);
        let p99 = at_11s.p99.unwrap().as_secs_f64();
        assert!((p99 - 0.05).abs() < 0.05 * 0.034, "{p99}");
        mock.increment(5 * SECOND);
        profile.watch_open_spans();
        assert!(sample(&profile).stalled);
        let stalls = warnings.stalls();
        assert_eq!(stalls.len(), 1, "once per span: {stalls:?}");
        assert!(stalls[0].contains("train > all_reduce"), "{}", stalls[0]);

        // The root has no finished call: no p99, never flagged, however long.
        let report = profile.report();
        let train = &report.open_spans[0].spans[0];
        assert_eq!(train.path, ["train"]);
        assert!(train.p99.is_none() && !train.stalled);
        assert!(
            report.to_text().contains("STALL (p99"),
            "{}",
            report.to_text()
        );
        drop(hung);
    });
}

#[test]
fn a_closed_span_is_forgotten_by_the_next_sample() {
    let (profile, _mock, dispatch, _) = setup(100.0);
    let open = |p: &Profile| lab::open(&p.assembly().riders).watch().remembered();
    tracing::dispatcher::with_default(&dispatch, || {
        let _a = info_span!("a").entered();
        let b = info_span!("b").entered();
        profile.watch_open_spans();
        assert_eq!(open(&profile), 2);
        drop(b);
        profile.watch_open_spans();
        assert_eq!(open(&profile), 1);
    });
    profile.watch_open_spans();
    assert_eq!(open(&profile), 0);
}

#[test]
fn fields_past_the_table_are_counted_in_the_warnings() {
    let (profile, _mock, dispatch, _) = setup(100.0);
    tracing::dispatcher::with_default(&dispatch, || {
        let spans: Vec<_> = (0..super::fields::ENTRIES as u64 + 2)
            .map(|i| info_span!("item", i = i))
            .collect();
        let report = profile.report();
        let warning = report.warnings.iter().find(|w| w.contains("open spans"));
        assert!(
            warning.is_some_and(|w| w.contains("the fields of 2 spans were not recorded")),
            "{:?}",
            report.warnings
        );
        drop(spans);
        let spans: Vec<_> = (0..10).map(|i| info_span!("again", i = i)).collect();
        let report = profile.report();
        let listed = report.open_spans[0]
            .spans
            .iter()
            .filter(|s| !s.fields.is_empty())
            .count();
        assert_eq!(listed, 10, "closed spans freed their entries");
        drop(spans);
    });
}

#[test]
fn spans_without_fields_carry_no_rider_bit() {
    let (profile, _mock, dispatch, _) = setup(100.0);
    let lab = profile.assembly().clone();
    tracing::dispatcher::with_default(&dispatch, || {
        let plain = info_span!("plain");
        let fielded = info_span!("fielded", k = 1_u64);
        let live = lab.core.threads.live_spans();
        let bits = |id: &tracing::Id| {
            live[0]
                .spans
                .iter()
                .find(|s| s.id == id.into_u64())
                .unwrap()
                .riders
        };
        assert_eq!(bits(&plain.id().unwrap()), 0);
        assert_ne!(bits(&fielded.id().unwrap()), 0);
    });
    // Disabled (the default): no bit for fields either.
    let (clock, _mock) = Clock::mock();
    let (layer, profile) = layer_with(clock, GpuConfig::default());
    let lab = profile.assembly().clone();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        let fielded = info_span!("fielded", k = 1_u64);
        let live = lab.core.threads.live_spans();
        assert_eq!(live[0].spans[0].id, fielded.id().unwrap().into_u64());
        assert_eq!(live[0].spans[0].riders, 0);
    });
}

#[test]
fn merged_reports_tag_each_thread_with_its_run() {
    let (profile, _mock, dispatch, _) = setup(100.0);
    let report = tracing::dispatcher::with_default(&dispatch, || {
        let _stuck = info_span!("stuck").entered();
        profile.report()
    });
    let merged = crate::Report::merge(&[report.clone(), report.clone()]).unwrap();
    assert_eq!(merged.open_spans.len(), 2);
    assert_eq!(merged.open_spans[0].run, 0);
    assert_eq!(merged.open_spans[1].run, 1);
    assert_eq!(merged.open_spans[1].spans, report.open_spans[0].spans);
    assert!(
        merged.to_text().contains(" (run 1)\n"),
        "{}",
        merged.to_text()
    );
    // A file written before open spans existed reads as none.
    let mut value: serde_json::Value = serde_json::from_str(&report.to_json()).unwrap();
    value.as_object_mut().unwrap().remove("open_spans");
    let read = crate::Report::from_json(&value.to_string()).unwrap();
    assert!(read.open_spans.is_empty());
}
