//! The snapshot thread's timing and stopping, the writer's stamps and failure counts,
//! and the guard's final write coming last.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing_subscriber::prelude::*;

use super::thread::{next_due, next_sleep, MAX_WAKE};
use super::*;
use crate::config::{FileOutput, Outputs, ReportTarget};
use crate::core::sync::LockUnpoisoned;
use crate::SpanLab;

#[derive(Debug, PartialEq, Clone, Copy)]
enum Call {
    Wake,
    Snapshot(u64),
}

/// Rounds that only record what they were asked to do.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<Call>>>);

impl Rounds for Recorder {
    fn on_wake(&mut self) {
        self.0.lock_unpoisoned().push(Call::Wake);
    }
    fn snapshot(&mut self, sequence: u64) {
        self.0.lock_unpoisoned().push(Call::Snapshot(sequence));
    }
}

impl Recorder {
    fn calls(&self) -> Vec<Call> {
        self.0.lock_unpoisoned().clone()
    }
}

#[test]
fn the_thread_sleeps_until_the_next_wake_or_snapshot_whichever_is_first() {
    let now = Instant::now();
    let minute = Duration::from_secs(60);
    assert_eq!(next_sleep(now, now + minute, minute), MAX_WAKE);
    let ms = Duration::from_millis;
    assert_eq!(next_sleep(now, now + ms(300), minute), ms(300));
    assert_eq!(next_sleep(now, now + ms(50), ms(200)), ms(50));
    assert_eq!(next_sleep(now, now + ms(200), ms(200)), ms(200));
    assert_eq!(
        next_sleep(now + ms(10), now, ms(200)),
        Duration::ZERO,
        "overdue"
    );
    // The cadence keeps to the schedule, unless a write overran it.
    assert_eq!(next_due(now, now + ms(30), ms(200)), now + ms(200));
    assert_eq!(next_due(now, now + ms(500), ms(200)), now + ms(700));
}

#[test]
fn snapshots_are_numbered_from_1_each_after_a_wake_and_stop_with_the_thread() {
    let recorder = Recorder::default();
    let snapshots = Snapshotter::start(Duration::from_millis(20), recorder.clone()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while recorder
        .calls()
        .iter()
        .filter(|c| **c != Call::Wake)
        .count()
        < 4
    {
        assert!(Instant::now() < deadline, "{:?}", recorder.calls());
        std::thread::sleep(Duration::from_millis(5));
    }
    let stopped = snapshots.stop();
    let calls = recorder.calls();
    let numbers: Vec<u64> = calls
        .iter()
        .filter_map(|c| match c {
            Call::Snapshot(n) => Some(*n),
            Call::Wake => None,
        })
        .collect();
    let expected: Vec<u64> = (1..=numbers.len() as u64).collect();
    assert_eq!(numbers, expected);
    assert_eq!(stopped.last_sequence, numbers.len() as u64);
    assert_eq!(stopped.panic, None);
    for (i, call) in calls.iter().enumerate() {
        if matches!(call, Call::Snapshot(_)) {
            assert_eq!(
                calls[i - 1],
                Call::Wake,
                "the wake's work comes first: {calls:?}"
            );
        }
    }
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(recorder.calls(), calls, "nothing after the stop");
    assert_eq!(snapshots.stop(), stopped, "a second stop says the same");
}

#[test]
fn a_stop_wakes_the_thread_at_once() {
    let recorder = Recorder::default();
    let snapshots = Snapshotter::start(Duration::from_secs(3600), recorder.clone()).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let asked = Instant::now();
    let stopped = snapshots.stop();
    let took = asked.elapsed();
    // Sleeping out its wake (a second) would be the bug.
    assert!(took < MAX_WAKE / 3, "stop took {took:?}");
    assert_eq!(stopped.last_sequence, 0);
    assert_eq!(recorder.calls(), [], "no wake within the first second");
}

struct Panics;

impl Rounds for Panics {
    fn on_wake(&mut self) {}
    fn snapshot(&mut self, sequence: u64) {
        if sequence == 2 {
            panic!("disk on fire");
        }
    }
}

#[test]
fn a_panicking_round_ends_the_thread_and_says_why() {
    let snapshots = Snapshotter::start(Duration::from_millis(10), Panics).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while snapshots.shared_panic().is_none() {
        assert!(Instant::now() < deadline);
        std::thread::sleep(Duration::from_millis(5));
    }
    let stopped = snapshots.stop();
    assert_eq!(stopped.last_sequence, 1);
    assert_eq!(stopped.panic.as_deref(), Some("disk on fire"));
}

fn file(path: &Path, source: &'static str) -> Option<FileOutput> {
    Some(FileOutput {
        path: path.to_path_buf(),
        source,
    })
}

/// A report of a real (empty) layer.
fn live_report() -> crate::Report {
    let (_layer, guard) = SpanLab::builder()
        .report_to(ReportTarget::Off)
        .ignore_env()
        .build();
    guard.report()
}

fn read(path: &Path) -> crate::Report {
    crate::Report::from_json(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn every_file_is_stamped_with_the_write_it_belongs_to() {
    let dir = tempfile::tempdir().unwrap();
    let (json, folded, text) = (
        dir.path().join("r.json"),
        dir.path().join("r.folded"),
        dir.path().join("r.txt"),
    );
    let writer = ReportWriter::new(Outputs {
        text: ReportTarget::File(text.clone()),
        json: file(&json, "SPANLAB_REPORT_JSON"),
        folded: file(&folded, "SPANLAB_REPORT_FOLDED"),
        ..Default::default()
    });
    assert!(writer.has_files());
    let mut report = live_report();
    assert_eq!(
        (report.is_final, report.sequence),
        (false, 0),
        "a live report"
    );
    writer.write(&mut report, Stamp::Snapshot(2));
    let read_back = read(&json);
    assert_eq!((read_back.is_final, read_back.sequence), (false, 2));
    let first_line = std::fs::read_to_string(&text).unwrap();
    assert!(
        first_line.starts_with("spanlab report [snapshot 2, not final]: "),
        "{first_line}"
    );
    assert!(folded.exists());
    writer.write(&mut report, Stamp::Final(3));
    let read_back = read(&json);
    assert_eq!((read_back.is_final, read_back.sequence), (true, 3));
    assert!(std::fs::read_to_string(&text)
        .unwrap()
        .starts_with("spanlab report: "));
    assert_eq!(report.warnings, Vec::<String>::new());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 3, "no temp");
}

#[test]
fn failed_writes_are_counted_one_warning_per_file_in_every_later_report() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone");
    std::fs::create_dir(&gone).unwrap();
    let (json, text) = (gone.join("r.json"), dir.path().join("r.txt"));
    let writer = ReportWriter::new(Outputs {
        text: ReportTarget::File(text.clone()),
        text_source: "SPANLAB_REPORT",
        json: file(&json, "SPANLAB_REPORT_JSON"),
        ..Default::default()
    });
    let mut report = live_report();
    writer.write(&mut report, Stamp::Snapshot(1));
    assert!(json.exists());
    std::fs::remove_dir_all(&gone).unwrap(); // the snapshot directory vanishes mid-run
    let json_warnings = |r: &crate::Report| -> Vec<String> {
        let name = json.display().to_string();
        r.warnings
            .iter()
            .filter(|w| w.contains(&name))
            .cloned()
            .collect()
    };
    for (n, failures) in [(2, "(1 failure so far)"), (3, "(2 failures so far)")] {
        let mut report = live_report();
        writer.write(&mut report, Stamp::Snapshot(n));
        let warnings = json_warnings(&report);
        assert_eq!(warnings.len(), 1, "one per file, the latest: {warnings:?}");
        let w = &warnings[0];
        assert!(
            w.starts_with(&format!("snapshot {n}: could not write {}", json.display())),
            "{w}"
        );
        assert!(
            w.contains("(SPANLAB_REPORT_JSON)") && w.ends_with(failures),
            "{w}"
        );
        // The same write's text file says so.
        let text = std::fs::read_to_string(&text).unwrap();
        assert!(text.contains(w.as_str()), "{w}\n{text}");
    }
    // The final write fails too, and says how many did.
    let mut report = live_report();
    writer.write(&mut report, Stamp::Final(4));
    let w = &json_warnings(&report)[0];
    assert!(
        w.starts_with("final report (write 4)") && w.ends_with("(3 failures so far)"),
        "{w}"
    );
}

#[test]
fn the_final_write_comes_last_and_takes_the_next_number() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (layer, guard) = SpanLab::builder()
        .report_to(ReportTarget::Off)
        .report_json(&json)
        .snapshot_interval(Some(Duration::from_millis(15)))
        .ignore_env()
        .build();
    let subscriber = tracing_subscriber::registry().with(layer);
    let last_snapshot = tracing::subscriber::with_default(subscriber, || {
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut seen = Vec::new();
        loop {
            tracing::info_span!("step").in_scope(|| std::hint::black_box(1 + 1));
            if let Ok(text) = std::fs::read_to_string(&json) {
                // Every read finds a whole report.
                let r = crate::Report::from_json(&text).unwrap();
                assert!(!r.is_final);
                seen.push(r.sequence);
                if r.sequence >= 3 && r.paths.first().is_some_and(|p| p.calls > 0) {
                    break;
                }
            }
            assert!(Instant::now() < deadline, "{seen:?}");
            std::thread::sleep(Duration::from_millis(2));
        }
        assert!(seen.windows(2).all(|w| w[0] <= w[1]), "{seen:?}");
        *seen.last().unwrap()
    });
    assert!(!guard.report().is_final);
    drop(guard);
    let at_exit = std::fs::read_to_string(&json).unwrap();
    let report = crate::Report::from_json(&at_exit).unwrap();
    assert!(report.is_final);
    assert!(report.sequence > last_snapshot, "{}", report.sequence);
    std::thread::sleep(Duration::from_millis(60));
    assert_eq!(
        std::fs::read_to_string(&json).unwrap(),
        at_exit,
        "no snapshot after the final write"
    );
}

#[test]
fn without_snapshots_the_one_write_is_final_and_number_1() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (_layer, guard) = SpanLab::builder()
        .report_to(ReportTarget::Off)
        .report_json(&json)
        .snapshot_interval(None)
        .ignore_env()
        .build();
    std::thread::sleep(Duration::from_millis(30));
    assert!(!json.exists(), "no snapshot");
    drop(guard);
    let report = read(&json);
    assert_eq!((report.is_final, report.sequence), (true, 1));
}
