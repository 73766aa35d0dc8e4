//! Snapshots end to end: whole `workload` processes with `SPANLAB_SNAPSHOT_INTERVAL`,
//! and what is on disk while they run, after they are killed, and when writing fails.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use spanlab::Report;

mod common;

use common::{read_json, run, workload};

fn unix_ns_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
}

/// Calls of the root path `name` (0 when it has none).
fn calls(report: &Report, name: &str) -> u64 {
    report
        .paths
        .iter()
        .find(|p| p.path.len() == 1 && p.path[0] == name)
        .map_or(0, |p| p.calls)
}

fn read_report(path: &Path) -> Report {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    Report::from_json(&text).unwrap_or_else(|e| panic!("{}: {e}\n{text}", path.display()))
}

/// Files in `dir` (a failed or interrupted write must leave no temporary file).
fn files_in(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// `workload steady`'s progress: (steps finished, unix ns), as printed.
fn progress(line: &str) -> Option<(u64, u64)> {
    let (count, ns) = line.split_once(' ')?;
    Some((count.parse().ok()?, ns.parse().ok()?))
}

#[test]
fn a_killed_run_leaves_a_snapshot_at_most_one_interval_old() {
    const INTERVAL: Duration = Duration::from_millis(200);
    // Scheduling and the write itself (an fsync) on a busy machine.
    const SLACK: Duration = Duration::from_millis(300);
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut child = workload("steady")
        .env("SPANLAB_REPORT_JSON", &json)
        .env("SPANLAB_SNAPSHOT_INTERVAL", "200ms")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut done = Vec::new();
    // About four and a half intervals of steady work, by the child's own clock.
    for line in lines.by_ref() {
        let Some(step) = progress(&line.unwrap()) else {
            continue;
        };
        done.push(step);
        if step.1 - done[0].1 >= 4 * INTERVAL.as_nanos() as u64 + 100_000_000 {
            break;
        }
    }
    let killed_at = unix_ns_now();
    child.kill().unwrap(); // SIGKILL: no guard, no final write
    child.wait().unwrap();
    // What it printed before it died.
    done.extend(lines.map_while(Result::ok).filter_map(|l| progress(&l)));

    let report = read_report(&json);
    assert!(!report.is_final, "a snapshot, not the final report");
    assert!(report.sequence >= 2, "sequence {}", report.sequence);
    let taken_at = report.runs[0].end_unix_ns;
    let steps = calls(&report, "step");
    let finished_by = |t: u64| {
        done.iter()
            .take_while(|s| s.1 <= t)
            .last()
            .map_or(0, |s| s.0)
    };
    assert!(steps > 0);
    // The snapshot holds exactly the steps finished when it was taken: every step
    // printed before then, and none printed well after.
    assert!(
        finished_by(taken_at) <= steps && steps <= finished_by(taken_at + 250_000_000),
        "{steps} steps in the snapshot; {} finished when it was taken",
        finished_by(taken_at)
    );
    let age = Duration::from_nanos(killed_at.saturating_sub(taken_at));
    assert!(
        age <= INTERVAL + SLACK,
        "the snapshot was {age:?} old at the kill"
    );
    // So it misses only the work of the last interval before the kill.
    let total = done.last().unwrap().0;
    let an_interval_before = killed_at - (INTERVAL + SLACK).as_nanos() as u64;
    assert!(
        finished_by(an_interval_before) <= steps && steps <= total,
        "{steps} steps in the snapshot, {total} done at the kill"
    );
    // A write cut by the kill leaves at most its temporary file beside the report.
    let names = files_in(dir.path());
    assert!(
        names
            .iter()
            .all(|n| n == "r.json" || n.starts_with(".r.json.spanlab-tmp.")),
        "{names:?}"
    );
}

#[test]
fn a_reader_polling_during_the_run_always_finds_a_whole_report() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut child = workload("steady")
        .arg("1500")
        .env("SPANLAB_REPORT_JSON", &json)
        .env("SPANLAB_SNAPSHOT_INTERVAL", "20ms")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut seen: Vec<(u64, bool)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(120);
    while child.try_wait().unwrap().is_none() {
        assert!(Instant::now() < deadline, "the workload never ended");
        // Often enough to read every snapshot many times, not so often as to take a
        // core from the workload.
        std::thread::sleep(Duration::from_micros(300));
        let text = match std::fs::read_to_string(&json) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => panic!("{e}"),
        };
        let report = Report::from_json(&text)
            .unwrap_or_else(|e| panic!("read {} found a partial file: {e}", seen.len() + 1));
        seen.push((report.sequence, report.is_final));
    }
    assert!(child.wait().unwrap().success());
    let last = read_report(&json);
    assert!(last.is_final);
    let raw = read_json(&json);
    assert_eq!(
        (&raw["final"], &raw["sequence"]),
        (&true.into(), &last.sequence.into())
    );
    let snapshots: Vec<u64> = seen.iter().filter(|s| !s.1).map(|s| s.0).collect();
    assert!(
        snapshots.windows(2).all(|w| w[0] <= w[1]),
        "sequence went back: {snapshots:?}"
    );
    let mut distinct = snapshots.clone();
    distinct.dedup();
    assert!(distinct.len() >= 5, "few snapshots seen: {distinct:?}");
    assert!(last.sequence > *snapshots.last().unwrap());
    // The final report, once there, is what every later read finds.
    let first_final = seen.iter().position(|s| s.1).unwrap_or(seen.len());
    assert!(seen[first_final..]
        .iter()
        .all(|&s| s == (last.sequence, true)));
    assert_eq!(calls(&last, "step"), 1500);
    assert_eq!(files_in(dir.path()), ["r.json"]);
}

/// The lines of `stderr` that start with `prefix`.
fn lines_starting<'a>(stderr: &'a str, prefix: &str) -> Vec<&'a str> {
    stderr.lines().filter(|l| l.starts_with(prefix)).collect()
}

/// The failure count a warning ends with: `... (3 failures so far)`.
fn failures_so_far(warning: &str) -> u64 {
    let (_, tail) = warning.rsplit_once(" (").unwrap();
    tail.split(' ').next().unwrap().parse().unwrap()
}

#[test]
fn a_snapshot_directory_that_vanishes_costs_one_line_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let sub = dir.path().join("snapshots");
    std::fs::create_dir(&sub).unwrap();
    let json = sub.join("r.json");
    let child = workload("steady")
        .arg("800")
        .env("SPANLAB_REPORT_JSON", &json)
        .env("SPANLAB_SNAPSHOT_INTERVAL", "20ms")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !json.exists() {
        assert!(Instant::now() < deadline, "no snapshot was written");
        std::thread::sleep(Duration::from_millis(2));
    }
    std::fs::remove_dir_all(&sub).unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let announced = lines_starting(&stderr, "spanlab: snapshot ");
    assert_eq!(
        announced.len(),
        1,
        "one line, not one per interval:\n{stderr}"
    );
    assert!(
        announced[0].contains(&format!("could not write {}", json.display()))
            && announced[0].ends_with("(1 failure so far)"),
        "{}",
        announced[0]
    );
    // The final report (on stderr) counts every failed write, its own included.
    let warning = lines_starting(&stderr, "warning: final report (write ");
    assert_eq!(warning.len(), 1, "{stderr}");
    assert!(failures_so_far(warning[0]) >= 2, "{}", warning[0]);
    assert!(
        stderr.contains("spanlab report: 1 paths, 800 calls"),
        "{stderr}"
    );
}

/// A file-size limit as a full disk: `ulimit -f` of 16 blocks with SIGXFSZ ignored
/// (inherited through `exec`), so that writes past the limit fail with EFBIG.
#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_leaves_the_previous_snapshot_intact_and_is_counted() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let plain = workload("grow");
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg("trap '' XFSZ && ulimit -f 16 && exec \"$0\" grow")
        .arg(plain.get_program());
    for (name, value) in plain.get_envs() {
        match value {
            Some(value) => cmd.env(name, value),
            None => cmd.env_remove(name),
        };
    }
    let (out, stderr) = run(cmd
        .env("SPANLAB_REPORT_JSON", &json)
        .env("SPANLAB_SNAPSHOT_INTERVAL", "50ms")
        .stdout(Stdio::null()));
    assert!(out.status.success(), "{stderr}");
    // The last snapshot that fitted is there, whole: the first phase only.
    let report = read_report(&json);
    assert!(!report.is_final, "the final report cannot fit");
    assert!(report.sequence >= 1);
    assert!(calls(&report, "step") > 0);
    assert_eq!(
        calls(&report, "deep"),
        0,
        "a snapshot of the second phase fitted"
    );
    assert_eq!(files_in(dir.path()), ["r.json"], "no temporary file left");
    let announced = lines_starting(&stderr, "spanlab: snapshot ");
    assert_eq!(announced.len(), 1, "{stderr}");
    assert!(announced[0].contains("File too large"), "{}", announced[0]);
    let warning = lines_starting(&stderr, "warning: final report (write ");
    assert_eq!(warning.len(), 1, "{stderr}");
    assert!(failures_so_far(warning[0]) >= 2, "{}", warning[0]);
}

#[test]
fn a_bad_interval_costs_one_line_naming_the_variable_and_the_default_is_used() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (out, stderr) = run(workload("steady")
        .arg("5")
        .env("SPANLAB_REPORT_JSON", &json)
        .env("SPANLAB_SNAPSHOT_INTERVAL", "5 minutes")
        .stdout(Stdio::null()));
    assert!(out.status.success(), "{stderr}");
    let named = lines_starting(&stderr, "spanlab: ");
    assert_eq!(
        named,
        [
            "spanlab: ignoring SPANLAB_SNAPSHOT_INTERVAL=\"5 minutes\": expected a duration \
          such as `30s`, `5m`, `500ms` or `1h` (at least 10ms), or `off`; using the \
          default, 60s"
        ],
        "{stderr}"
    );
    let report = read_report(&json);
    assert_eq!((report.is_final, report.sequence), (true, 1));
    assert_eq!(calls(&report, "step"), 5);
}

/// The open spans of the path `names` in `report`, with their open times.
fn open_spans_of<'a>(report: &'a Report, names: &[&str]) -> Vec<&'a spanlab::report::OpenSpan> {
    report
        .open_spans
        .iter()
        .flat_map(|thread| &thread.spans)
        .filter(|span| span.path == names)
        .collect()
}

#[test]
fn a_hung_span_is_listed_open_in_every_snapshot_and_its_time_grows() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut child = workload("hang")
        .env("SPANLAB_REPORT_JSON", &json)
        .env("SPANLAB_SNAPSHOT_INTERVAL", "200ms")
        .env("SPANLAB_OPEN_SPAN_FIELDS", "on")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    assert_eq!(lines.next().unwrap().unwrap(), "hung");
    // Two snapshots taken after the hang: the same span, open longer in the later one.
    let mut seen: Vec<(u64, Duration)> = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(20);
    while seen.len() < 2 || seen[seen.len() - 1].0 == seen[0].0 {
        assert!(
            Instant::now() < deadline,
            "no two snapshots with the hung span: {seen:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
        let Ok(text) = std::fs::read_to_string(&json) else {
            continue;
        };
        let report = Report::from_json(&text).unwrap();
        let stuck = open_spans_of(&report, &["train", "all_reduce"]);
        if stuck.is_empty() {
            continue;
        }
        assert_eq!(stuck.len(), 1, "only the hung call is open: {stuck:?}");
        assert_eq!(stuck[0].fields, [("bucket".to_string(), "99".to_string())]);
        assert_eq!(stuck[0].since, spanlab::report::OpenSince::FirstSeen);
        assert!(stuck[0].p99.is_some(), "20 calls finished before it");
        assert_eq!(
            open_spans_of(&report, &["train"]).len(),
            1,
            "its root is open too"
        );
        assert_eq!(calls(&report, "train"), 0, "the root never finished");
        seen.push((report.sequence, stuck[0].open));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let (first, last) = (seen[0], seen[seen.len() - 1]);
    assert!(
        last.1 > first.1,
        "snapshot {} says open {:?}, the later {} says {:?}",
        first.0,
        first.1,
        last.0,
        last.1
    );
}
