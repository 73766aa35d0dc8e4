//! spanlab's OTLP export through a receiver outage: Phoenix (`common/phoenix.rs`) is
//! killed while `export_workload outage` runs and restarted on the same ports. The
//! program must keep its pace; the report must account for every span (`exported +
//! dropped + failed + queued_at_exit + in_flight_at_exit == finished`, nothing left
//! queued or in flight after the flush: batches refused while the receiver was down are
//! failed after their retries, and with a small queue spans are also dropped); and
//! everything made after the restart must arrive.
//! gRPC and HTTP/protobuf run side by side against one Phoenix, checked by two tests.
//!
//! Phoenix stores only ~80-125 spans/s on a 2-core machine, which sets the workload's
//! pace (100 steps, 200 spans a second per program): everything the restarted Phoenix
//! gets must be stored before the test can see the last spans.
//!
//! Needs Phoenix: `bash scripts/install-phoenix.sh` (the tests panic without it).

#[allow(dead_code)] // not every helper of common is used here
mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, ChildStdin, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::export::{attr, export_to, export_workload, project, report_path, span_id, Otlp, WAIT};
use common::phoenix::Phoenix;
use common::read_json;
use serde_json::Value;

/// Outage workload: root spans a second (each with one child).
const OUTAGE_RATE: f64 = 100.0;
/// The HTTP outage workload's queue (`OTEL_BSP_MAX_QUEUE_SIZE`).
const SMALL_QUEUE: usize = 512;

/// An `outage` workload, running.
struct OutageWorkload {
    otlp: Otlp,
    project: String,
    child: Child,
    stdin: ChildStdin,
    lines: Receiver<String>,
    stdout: Vec<String>,
    json: std::path::PathBuf,
    stderr: std::path::PathBuf,
}

impl OutageWorkload {
    fn start(phoenix: &Phoenix, otlp: Otlp, dir: &Path) -> OutageWorkload {
        let project = project(&format!("outage-{otlp:?}").to_lowercase());
        let json = dir.join(format!("{otlp:?}.json"));
        let stderr = dir.join(format!("{otlp:?}.stderr"));
        let mut cmd = export_workload("outage");
        export_to(&mut cmd, phoenix, otlp, &project);
        if otlp == Otlp::Http {
            // A small queue, small batches and one request at a time: while the
            // receiver is down, batches fail slower than spans come (each takes its
            // retries, ~1 s, for 64 spans), so the queue fills and spans are dropped.
            // (With the default four requests in flight, they would fail as fast as
            // spans come at this pace.)
            cmd.env("OTEL_BSP_MAX_QUEUE_SIZE", SMALL_QUEUE.to_string())
                .env("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", "64")
                .env("OTEL_BSP_MAX_CONCURRENT_EXPORTS", "1");
        }
        let mut child = cmd
            .arg(OUTAGE_RATE.to_string())
            .env("SPANLAB_REPORT_JSON", &json)
            // Room for the flush on a loaded machine: nothing may be left queued or in
            // flight.
            .env("SPANLAB_OTLP_FLUSH_TIMEOUT", "20000")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&stderr).unwrap())
            .spawn()
            .expect("export_workload starts");
        let stdin = child.stdin.take().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        OutageWorkload {
            otlp,
            project,
            child,
            stdin,
            lines,
            stdout: Vec::new(),
            json,
            stderr,
        }
    }

    fn stderr(&self) -> String {
        std::fs::read_to_string(&self.stderr).unwrap_or_default()
    }

    /// Reads stdout until a line equal to `line`.
    fn expect(&mut self, line: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(l) => {
                    let done = l == line;
                    self.stdout.push(l);
                    if done {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    let _ = self.child.kill();
                    panic!(
                        "{:?} workload: no {line:?} within {timeout:?}; stdout {:?}\n{}",
                        self.otlp,
                        self.stdout,
                        self.stderr()
                    )
                }
                Err(RecvTimeoutError::Disconnected) => panic!(
                    "{:?} workload ended before {line:?}: {:?}; stdout {:?}\n{}",
                    self.otlp,
                    self.child.wait(),
                    self.stdout,
                    self.stderr()
                ),
            }
        }
    }

    fn send(&mut self, command: &str) {
        writeln!(self.stdin, "{command}").expect("writing to the workload");
        self.stdin.flush().expect("writing to the workload");
    }

    /// Waits for the exit (after `stop`), reading the rest of stdout.
    fn finish(mut self, timeout: Duration) -> Finished {
        self.expect("stopped", timeout);
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            if Instant::now() >= deadline {
                let _ = self.child.kill();
                panic!(
                    "{:?} workload did not exit within {timeout:?} of `stop`\n{}",
                    self.otlp,
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(1)) {
            self.stdout.push(line);
        }
        let stderr = self.stderr();
        assert!(status.success(), "{:?}: {status:?}\n{stderr}", self.otlp);
        let report = read_json(&self.json);
        Finished {
            otlp: self.otlp,
            project: self.project,
            stdout: self.stdout,
            report,
            stderr,
        }
    }
}

/// An outage workload that exited.
struct Finished {
    otlp: Otlp,
    project: String,
    stdout: Vec<String>,
    report: Value,
    stderr: String,
}

/// What one workload of the outage scenario did, and what Phoenix got.
struct OutageResult {
    otlp: Otlp,
    stdout: Vec<String>,
    stderr: String,
    report: Value,
    /// `before` spans the first Phoenix held before it was killed (it may have held
    /// more).
    seen_before_kill: usize,
    /// How many spans the restarted Phoenix holds.
    restarted: usize,
    /// Those of the `after` phase.
    after_phase: Vec<Value>,
}

/// Runs the outage once for both protocols side by side, against a Phoenix of its own:
/// `before` for 2 s (until the first Phoenix holds spans of both), kill Phoenix,
/// `during` for 2 s and a restart on the same ports, `after` for 2 s, `stop`.
fn outage_scenario() -> &'static [OutageResult] {
    static SCENARIO: OnceLock<Result<Vec<OutageResult>, String>> = OnceLock::new();
    common::once_per_binary(&SCENARIO, "the outage scenario failed", run_outage).as_slice()
}

fn run_outage() -> Vec<OutageResult> {
    let started = Instant::now();
    let mut phoenix = Phoenix::start();
    let dir = tempfile::tempdir().unwrap();
    let mut workloads: Vec<OutageWorkload> = [Otlp::Grpc, Otlp::Http]
        .into_iter()
        .map(|otlp| OutageWorkload::start(&phoenix, otlp, dir.path()))
        .collect();
    for w in &mut workloads {
        w.expect("ready", Duration::from_secs(30));
    }
    eprintln!("outage: {:.1?} in, workloads ready", started.elapsed());
    std::thread::sleep(Duration::from_secs(2));
    // Phoenix is slow to store spans (and its REST API slow while it does): count only
    // the `before` spans, a lower bound of what it held.
    let mut seen_before_kill = Vec::new();
    for w in &workloads {
        let deadline = Instant::now() + WAIT;
        loop {
            let seen = phoenix.spans_where(&w.project, &[("name", "before")]).len();
            if seen > 0 {
                seen_before_kill.push(seen);
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{:?}: no `before` span in Phoenix after {WAIT:?}\n{}\n{}",
                w.otlp,
                w.stderr(),
                phoenix.log_tail()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    eprintln!(
        "outage: {:.1?} in, `before` spans in Phoenix: {seen_before_kill:?}; killing it",
        started.elapsed()
    );
    phoenix.kill();
    for w in &mut workloads {
        w.send("during");
        w.expect("switched during", Duration::from_secs(10));
    }
    std::thread::sleep(Duration::from_secs(2));
    phoenix.restart_same_ports();
    eprintln!("outage: {:.1?} in, Phoenix restarted", started.elapsed());
    for w in &mut workloads {
        w.send("after");
        w.expect("switched after", Duration::from_secs(10));
    }
    std::thread::sleep(Duration::from_secs(2));
    for w in &mut workloads {
        w.send("stop");
    }
    let finished: Vec<_> = workloads
        .into_iter()
        .map(|w| w.finish(Duration::from_secs(60)))
        .collect();
    eprintln!("outage: {:.1?} in, workloads done", started.elapsed());

    // Wait (bounded) until the restarted Phoenix holds every span of the `after` phase
    // each workload made and did not drop; the tests judge what arrived.
    let mut results = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(90);
    for (w, seen) in finished.into_iter().zip(seen_before_kill) {
        let [_, during, after] = phases(&w.stdout);
        let expected = (2 * after.steps).saturating_sub(after.dropped - during.dropped);
        // The workload's last span is the root of its last step, and Phoenix stores
        // spans in the order they come: once that one is in, the rest is. Looking for
        // that one span costs Phoenix little, reading them all much (and it is slow to
        // store spans while it answers).
        let last = format!("step:{}", after.steps.saturating_sub(1));
        let filter = [("name", "after"), ("attribute", last.as_str())];
        while phoenix.spans_where(&w.project, &filter).is_empty() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(1));
        }
        while after_phase(&phoenix, &w.project).len() < expected as usize
            && Instant::now() < deadline
        {
            std::thread::sleep(Duration::from_secs(2));
        }
        results.push(OutageResult {
            otlp: w.otlp,
            after_phase: after_phase(&phoenix, &w.project),
            restarted: phoenix.spans(&w.project).len(),
            stdout: w.stdout,
            stderr: w.stderr,
            report: w.report,
            seen_before_kill: seen,
        });
    }
    eprintln!("outage: {:.1?} in, all read back", started.elapsed());
    results
}

/// The spans of the `after` phase in Phoenix: the roots named `after` and their `work`
/// children, all with `phase = "after"`.
fn after_phase(phoenix: &Phoenix, project: &str) -> Vec<Value> {
    phoenix.spans_where(project, &[("attribute", "phase:after")])
}

/// One phase's line of the outage workload's stdout: the phase's steps, length and
/// rate, and the export counters at its end.
#[derive(Debug)]
struct PhaseStats {
    steps: u64,
    secs: f64,
    rate: f64,
    finished: u64,
    dropped: u64,
}

fn phase(stdout: &[String], name: &str) -> PhaseStats {
    let prefix = format!("phase {name} ");
    let line = stdout
        .iter()
        .find(|l| l.starts_with(&prefix))
        .unwrap_or_else(|| panic!("no {prefix:?} line in {stdout:?}"));
    let field = |key: &str| -> f64 {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(&format!("{key}=")))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {key} in {line:?}"))
    };
    PhaseStats {
        steps: field("steps") as u64,
        secs: field("secs"),
        rate: field("rate"),
        finished: field("finished") as u64,
        dropped: field("dropped") as u64,
    }
}

fn phases(stdout: &[String]) -> [PhaseStats; 3] {
    ["before", "during", "after"].map(|p| phase(stdout, p))
}

fn check_outage(otlp: Otlp) {
    let result = outage_scenario()
        .iter()
        .find(|r| r.otlp == otlp)
        .expect("a result per protocol");
    let context = || {
        format!(
            "{otlp:?} workload\nstdout: {:?}\nstderr:\n{}",
            result.stdout, result.stderr
        )
    };
    let [before, during, after] = phases(&result.stdout);
    eprintln!(
        "outage over {otlp:?}: {before:?} / {during:?} / {after:?}; export {}; the first \
         Phoenix held {} `before` spans or more, the restarted one {} spans, {} of the \
         `after` phase",
        result.report["export"],
        result.seen_before_kill,
        result.restarted,
        result.after_phase.len()
    );

    // The program kept its pace while the receiver was down.
    assert!(
        before.rate >= OUTAGE_RATE / 2.0,
        "{before:?}\n{}",
        context()
    );
    assert!(
        during.secs >= 2.0 && during.rate >= before.rate / 2.0,
        "slowed down during the outage: {during:?} vs {before:?}\n{}",
        context()
    );
    assert!(after.rate >= before.rate / 2.0, "{after:?}\n{}", context());

    // The report accounts for every span, and says what the outage cost.
    let report = &result.report;
    let export = &report["export"];
    let count = |key: &str| {
        export[key]
            .as_u64()
            .unwrap_or_else(|| panic!("{key}: {export:#}"))
    };
    let (finished, exported, dropped, failed) = (
        count("finished"),
        count("exported"),
        count("dropped"),
        count("failed"),
    );
    let (queued, in_flight) = (count("queued_at_exit"), count("in_flight_at_exit"));
    // Every span made is finished (all are sampled), phase by phase.
    assert_eq!(before.finished, 2 * before.steps, "{before:?}");
    assert_eq!(
        during.finished - before.finished,
        2 * during.steps,
        "{during:?}"
    );
    assert_eq!(
        after.finished - during.finished,
        2 * after.steps,
        "{after:?}"
    );
    assert_eq!(finished, after.finished, "{export:#}\n{}", context());
    assert_eq!(
        exported + dropped + failed + queued + in_flight,
        finished,
        "{export:#}"
    );
    assert_eq!(
        (queued, in_flight),
        (0, 0),
        "the flush delivered the rest: {export:#}\n{}",
        context()
    );
    assert_eq!(export["flush"], "complete", "{export:#}\n{}", context());
    // With the receiver down, each batch fails after the exporter's retries (3, with
    // backoff: ~1 s a batch). gRPC has the default queue (65,536 spans), which never
    // fills at this pace: nothing is dropped. HTTP has a queue of 512, batches of 64
    // and one request at a time, which fail slower than spans come: the queue fills
    // during the outage, and spans are dropped (also right after the restart, while the
    // queue still holds the spans of the outage).
    assert!(failed > 0, "{export:#}");
    assert!(count("failed_batches") > 0, "{export:#}");
    assert!(count("retries") > 0, "{export:#}");
    assert!(exported < finished, "{export:#}");
    let last_error = export["last_error"]
        .as_str()
        .unwrap_or_else(|| panic!("{export:#}"));
    assert!(!last_error.is_empty());
    let dropped_during = during.dropped - before.dropped;
    let dropped_after = after.dropped - during.dropped;
    assert!(dropped >= after.dropped, "{export:#}");
    match otlp {
        Otlp::Http => {
            assert!(
                dropped_during > 0,
                "a full queue drops spans: {during:?}\n{export:#}\n{}",
                context()
            );
            assert!(
                dropped_after < 2 * after.steps,
                "the queue empties once Phoenix is back: {after:?}\n{}",
                context()
            );
        }
        _ => assert_eq!(dropped, 0, "{export:#}\n{}", context()),
    }
    // What each Phoenix holds was exported (and counted so).
    assert!(
        exported >= (result.seen_before_kill + result.restarted) as u64,
        "exported {exported}, but the first Phoenix held {} and the second {}: {export:#}",
        result.seen_before_kill,
        result.restarted
    );
    for (name, phase) in [("before", &before), ("during", &during), ("after", &after)] {
        assert_eq!(report_path(report, &[name])["calls"], phase.steps);
        assert_eq!(report_path(report, &[name, "work"])["calls"], phase.steps);
    }

    // Every span of the `after` phase that was not dropped is in the new Phoenix.
    let spans = &result.after_phase;
    let roots: Vec<&Value> = spans.iter().filter(|s| s["name"] == "after").collect();
    let work: Vec<&Value> = spans.iter().filter(|s| s["name"] == "work").collect();
    assert_eq!(roots.len() + work.len(), spans.len());
    assert_eq!(
        spans.len() as u64,
        2 * after.steps - dropped_after,
        "`after` phase: {} roots and {} children in the restarted Phoenix, {} made, {} \
         dropped (exported {exported}, failed {failed})\n{}",
        roots.len(),
        work.len(),
        2 * after.steps,
        dropped_after,
        context()
    );
    let mut steps: Vec<i64> = roots
        .iter()
        .map(|s| attr(s, "step").as_i64().expect("an integer step"))
        .collect();
    steps.sort_unstable();
    steps.dedup();
    assert_eq!(steps.len(), roots.len(), "no step twice");
    assert!(steps.iter().all(|&s| (0..after.steps as i64).contains(&s)));
    // Parentage: each root with its child.
    let mut children: HashMap<&str, usize> = HashMap::new();
    for span in &work {
        *children
            .entry(span["parent_id"].as_str().expect("a parent"))
            .or_default() += 1;
    }
    for root in &roots {
        assert!(root["parent_id"].is_null(), "{root:#}");
        let kids = children.get(span_id(root)).copied().unwrap_or(0);
        if dropped_after == 0 {
            assert_eq!(kids, 1, "{root:#}");
        } else {
            assert!(kids <= 1, "{root:#}");
        }
    }
    if dropped_after == 0 {
        assert_eq!(roots.len() as u64, after.steps);
    }
}

#[test]
fn outage_over_grpc_keeps_the_pace_accounts_for_losses_and_delivers_after_restart() {
    check_outage(Otlp::Grpc);
}

#[test]
fn outage_over_http_protobuf_with_a_small_queue_drops_and_fails_then_delivers_after_restart() {
    check_outage(Otlp::Http);
}
