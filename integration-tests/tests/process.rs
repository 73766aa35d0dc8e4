//! End to end: whole processes run the `workload` binary under different environments,
//! and the tests check what a user would see. The report reaches the user however the
//! process ends — normal exit, a panic in `main`, SIGINT, SIGTERM — and bad
//! configuration never stops the program.

use std::io::{BufRead, BufReader};
use std::process::Stdio;

mod common;

use common::{read_json, run, workload};

#[test]
fn normal_exit_prints_the_report_on_stderr_and_writes_every_file() {
    let dir = tempfile::tempdir().unwrap();
    let (json, folded) = (dir.path().join("r.json"), dir.path().join("r.folded"));
    let (out, stderr) = run(workload("normal")
        .env("SPANLAB_REPORT_JSON", &json)
        .env("SPANLAB_REPORT_FOLDED", &folded));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("spanlab report: 3 paths, 60 calls"),
        "{stderr}"
    );
    for path in ["epoch ", "epoch > forward ", "epoch > backward "] {
        assert!(
            stderr.lines().any(|l| l.starts_with(path)),
            "no row for {path:?}:\n{stderr}"
        );
    }
    let report = read_json(&json);
    assert_eq!(report["schema"], "spanlab.report/2");
    let paths = report["paths"].as_array().unwrap();
    let backward = paths
        .iter()
        .find(|p| p["path"] == serde_json::json!(["epoch", "backward"]))
        .unwrap();
    assert_eq!(backward["calls"], 20);
    assert!(
        backward["min_ns"].as_u64().unwrap() >= 50_000,
        "slept at least 50 us: {backward}"
    );
    let folded = std::fs::read_to_string(&folded).unwrap();
    assert!(
        folded.lines().any(|l| l.starts_with("epoch;backward ")),
        "{folded}"
    );
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        2,
        "no temporary files left"
    );
}

#[test]
fn a_panic_in_main_still_produces_the_report() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (out, stderr) = run(workload("panic").env("SPANLAB_REPORT_JSON", &json));
    assert_eq!(
        out.status.code(),
        Some(101),
        "a panicking main exits with 101: {stderr}"
    );
    assert!(stderr.contains("diverged after 20 epochs"), "{stderr}");
    assert!(
        stderr.contains("spanlab report: 3 paths, 60 calls"),
        "{stderr}"
    );
    assert_eq!(read_json(&json)["paths"][0]["calls"], 20);
}

#[cfg(unix)]
fn interrupted_run(signal: &str, expected: i32) {
    use std::os::unix::process::ExitStatusExt;
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut child = workload("signal")
        .env("SPANLAB_REPORT_JSON", &json)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut ready = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut ready)
        .unwrap();
    assert_eq!(ready.trim(), "ready");
    let status = std::process::Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.signal(),
        Some(expected),
        "ended by the signal itself: {:?}\n{stderr}",
        out.status
    );
    assert!(stderr.contains("spanlab report: 3 paths"), "{stderr}");
    let calls = read_json(&json)["paths"][0]["calls"].as_u64().unwrap();
    assert!(
        calls >= 5,
        "the epochs before the signal are in the report: {calls}"
    );
}

#[cfg(unix)]
#[test]
fn sigint_writes_the_report_then_ends_the_process_as_sigint_would() {
    interrupted_run("-INT", 2);
}

#[cfg(unix)]
#[test]
fn sigterm_writes_the_report_then_ends_the_process_as_sigterm_would() {
    interrupted_run("-TERM", 15);
}

#[test]
fn bad_environment_values_are_named_and_the_program_runs_on() {
    let (out, stderr) = run(workload("normal")
        .env("SPANLAB_REPORT", "stdrr")
        .env("SPANLAB_REPORT_JSON", "/no/such/directory/r.json"));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("spanlab: ignoring SPANLAB_REPORT=\"stdrr\": expected `stderr`, `stdout`, `off`, or a file path"),
        "{stderr}"
    );
    assert!(
        stderr.contains("spanlab: ignoring SPANLAB_REPORT_JSON=\"/no/such/directory/r.json\": directory /no/such/directory does not exist"),
        "{stderr}"
    );
    // The text report still comes out (on stderr, the default), with the warnings.
    assert!(
        stderr.contains("spanlab report: 3 paths, 60 calls"),
        "{stderr}"
    );
    assert!(
        stderr.contains("warning: SPANLAB_REPORT=\"stdrr\""),
        "{stderr}"
    );
}

#[test]
fn bad_otlp_settings_are_named_at_init_and_the_program_runs_without_export() {
    for (var, value, expected) in [
        (
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            "localhost:4317",
            "expected an `http://` or `https://` URL",
        ),
        (
            "OTEL_EXPORTER_OTLP_PROTOCOL",
            "udp",
            "expected `grpc` or `http/protobuf`",
        ),
        (
            "OTEL_EXPORTER_OTLP_HEADERS",
            "api-key",
            "is not `key=value`",
        ),
    ] {
        let mut cmd = workload("normal");
        cmd.env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9");
        cmd.env(var, value);
        let (out, stderr) = run(&mut cmd);
        assert!(out.status.success(), "{var}: {stderr}");
        let line = format!("spanlab: ignoring {var}={value:?}: ");
        assert!(stderr.contains(&line), "{var}: {stderr}");
        assert!(stderr.contains(expected), "{var}: {stderr}");
        assert!(
            stderr.contains("spanlab report: 3 paths, 60 calls"),
            "{stderr}"
        );
        assert!(!stderr.contains("export ("), "export must be off: {stderr}");
    }
}

#[test]
fn without_an_endpoint_there_is_no_export_and_with_one_the_report_accounts_for_it() {
    let (_, stderr) = run(&mut workload("normal"));
    assert!(!stderr.contains("export ("), "{stderr}");
    // A receiver that is not there: the run is not slowed down, and the report says
    // where every span went.
    let (out, stderr) = run(workload("normal")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:9")
        .env("OTEL_EXPORTER_OTLP_TIMEOUT", "200"));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains(
            "export (http/protobuf http://127.0.0.1:9/v1/traces): 60 spans finished, 0 exported"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains(
            "60 failed, 0 queued at exit (never sent: lost for certain), 0 in flight at exit"
        ),
        "{stderr}"
    );
    assert!(
        stderr.contains("flush at exit: receiver unreachable"),
        "{stderr}"
    );
}

#[test]
fn report_to_a_file_and_to_stdout() {
    let dir = tempfile::tempdir().unwrap();
    let text = dir.path().join("report.txt");
    let (out, stderr) = run(workload("normal").env("SPANLAB_REPORT", &text));
    assert!(out.status.success());
    assert!(
        !stderr.contains("spanlab report"),
        "nothing on stderr: {stderr}"
    );
    assert!(std::fs::read_to_string(&text)
        .unwrap()
        .starts_with("spanlab report: 3 paths"));

    let (out, _) = run(workload("normal").env("SPANLAB_REPORT", "stdout"));
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("spanlab report: 3 paths"));

    let (out, stderr) = run(workload("normal").env("SPANLAB_REPORT", "off"));
    assert!(
        out.stdout.is_empty() && !stderr.contains("spanlab"),
        "{stderr}"
    );
}

#[test]
fn instrument_err_failures_are_counted_per_path() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (out, stderr) = run(workload("error").env("SPANLAB_REPORT_JSON", &json));
    assert!(out.status.success(), "{stderr}");
    let validate = &read_json(&json)["paths"][0];
    assert_eq!(
        (validate["calls"].as_u64(), validate["errors"].as_u64()),
        (Some(9), Some(3))
    );
}

#[test]
fn rust_log_filters_spans_before_spanlab_sees_them() {
    // `epoch` is an INFO span; the instrumented functions are INFO too. With only
    // `warn` enabled nothing is recorded; with `workload=info` everything is.
    let (_, stderr) = run(workload("normal").env("RUST_LOG", "warn"));
    assert!(stderr.contains("spanlab report: 0 paths"), "{stderr}");
    let (_, stderr) = run(workload("normal").env("RUST_LOG", "workload=info"));
    assert!(
        stderr.contains("spanlab report: 3 paths, 60 calls"),
        "{stderr}"
    );
    let (out, stderr) = run(workload("normal").env("RUST_LOG", "=bad=filter["));
    assert!(out.status.success());
    assert!(
        stderr.contains("spanlab: ignoring RUST_LOG=\"=bad=filter[\""),
        "{stderr}"
    );
}

#[test]
fn ignore_env_ignores_rust_log_too() {
    // `RUST_LOG=warn` disables every span of the workload (all INFO) and
    // `SPANLAB_REPORT=off` silences the report: the plain workload shows nothing...
    let quiet = |cmd: &mut std::process::Command| {
        cmd.env("RUST_LOG", "warn").env("SPANLAB_REPORT", "off");
    };
    let mut cmd = workload("normal");
    quiet(&mut cmd);
    let (_, stderr) = run(&mut cmd);
    assert!(!stderr.contains("spanlab report"), "{stderr}");
    // ...while a program built with `ignore_env()` measures and reports every span.
    let mut cmd = workload("ignore_env");
    quiet(&mut cmd);
    let (out, stderr) = run(&mut cmd);
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("spanlab report: 3 paths, 60 calls"),
        "{stderr}"
    );
    assert!(
        stderr.lines().any(|l| l.starts_with("epoch > backward ")),
        "{stderr}"
    );
}

/// Runs the `seeds` workload with `SPANLAB_SEED` set (or not) and returns its printed
/// draws, the JSON report's seeds section, and stderr.
fn seeds_run(seed: Option<&str>) -> (String, serde_json::Value, String) {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let mut cmd = workload("seeds");
    cmd.env("SPANLAB_REPORT_JSON", &json);
    if let Some(seed) = seed {
        cmd.env("SPANLAB_SEED", seed);
    }
    let (out, stderr) = run(&mut cmd);
    assert!(out.status.success(), "{stderr}");
    (
        String::from_utf8(out.stdout).unwrap(),
        read_json(&json)["seeds"].clone(),
        stderr,
    )
}

#[test]
fn the_same_root_seed_replays_the_same_draws_and_digests() {
    let (draws_a, seeds_a, stderr) = seeds_run(Some("7"));
    let (draws_b, seeds_b, _) = seeds_run(Some("7"));
    let (draws_c, seeds_c, _) = seeds_run(Some("8"));
    assert_eq!(draws_a, draws_b);
    assert_eq!(seeds_a, seeds_b);
    assert_eq!(
        (seeds_a["root"].as_u64(), seeds_a["source"].as_str()),
        (Some(7), Some("env"))
    );
    let trial = &seeds_a["paths"][0];
    assert_eq!(
        (trial["calls"].as_u64(), trial["draws"].as_u64()),
        (Some(4), Some(20))
    );
    // Another root seed changes the unseeded draws, not the seeded scopes.
    assert_ne!(draws_a, draws_c);
    let (a, c): (Vec<u64>, Vec<u64>) = (
        serde_json::from_str(&draws_a).unwrap(),
        serde_json::from_str(&draws_c).unwrap(),
    );
    assert_ne!(a[..3], c[..3]);
    assert_eq!(
        a[3..23],
        c[3..23],
        "the seeded trials do not depend on the root seed"
    );
    assert_eq!(seeds_a["paths"], seeds_c["paths"]);
    // The report names the root seed and the line that replays the run.
    assert!(
        stderr.contains("seeds: root 7 (from SPANLAB_SEED); replay: SPANLAB_SEED=7 "),
        "{stderr}"
    );
    let seeds_row = |l: &str| l.split_whitespace().take(3).eq(["trial", "4", "20"]);
    assert!(
        stderr.lines().any(seeds_row),
        "a seeds row: 4 calls, 20 draws
{stderr}"
    );
}

#[test]
fn a_run_without_a_seed_records_the_os_seed_that_replays_it() {
    let (draws, seeds, _) = seeds_run(None);
    assert_eq!(seeds["source"], "os");
    let root = seeds["root"].as_u64().unwrap().to_string();
    assert!(seeds["replay"]
        .as_str()
        .unwrap()
        .starts_with(&format!("SPANLAB_SEED={root} ")));
    let (replayed, _, _) = seeds_run(Some(&root));
    assert_eq!(draws, replayed, "the recorded seed replays the run");
}

#[test]
fn a_bad_spanlab_seed_is_named_and_an_os_seed_is_used_and_recorded() {
    let (_, seeds, stderr) = seeds_run(Some("forty-two"));
    assert!(
        stderr.contains(
            "spanlab: ignoring SPANLAB_SEED=\"forty-two\": expected an unsigned 64-bit integer"
        ),
        "{stderr}"
    );
    assert_eq!(seeds["source"], "os");
}

#[test]
fn a_bad_seed_field_emits_one_warn_event_that_other_layers_see() {
    let (out, stderr) = run(&mut workload("bad_seed"));
    assert!(out.status.success(), "{stderr}");
    let warning = "span `trial`: seed = \"abc\" is not an unsigned integer; the span ran unseeded";
    let events = stderr
        .lines()
        .filter(|l| l.contains("WARN") && l.contains(warning))
        .count();
    assert_eq!(
        events, 1,
        "one WARN event for three spans of the callsite:\n{stderr}"
    );
    assert!(
        stderr.contains(&format!("warning: {warning}")),
        "and a report warning:\n{stderr}"
    );
}

#[test]
fn ranks_sharing_a_launch_line_write_one_report_each() {
    let dir = tempfile::tempdir().unwrap();
    let shared = dir.path().join("job.json");
    let named = dir.path().join("job-{local_rank}-{pid}.folded");
    for rank in ["0", "1", "2"] {
        let (out, stderr) = run(workload("normal")
            .env("RANK", rank)
            .env("LOCAL_RANK", rank)
            .env("SPANLAB_REPORT", "off")
            .env("SPANLAB_REPORT_JSON", &shared)
            .env("SPANLAB_REPORT_FOLDED", &named));
        assert!(out.status.success(), "{stderr}");
        assert!(!stderr.contains("ignoring"), "{stderr}");
    }
    // No placeholder: `.rank{N}` before the extension, one file per rank.
    for rank in 0..3 {
        let json = dir.path().join(format!("job.rank{rank}.json"));
        assert_eq!(read_json(&json)["paths"][0]["calls"], 20, "{json:?}");
    }
    assert!(!shared.exists(), "no rank wrote the shared name");
    // Placeholders: the path says where the process goes, and no suffix is added.
    let folded: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".folded"))
        .collect();
    assert_eq!(folded.len(), 3, "{folded:?}");
    for rank in 0..3 {
        let prefix = format!("job-{rank}-");
        assert!(folded.iter().any(|n| n.starts_with(&prefix)), "{folded:?}");
    }
    // The text report's first line says which rank wrote it.
    let (out, stderr) = run(workload("normal")
        .env("RANK", "2")
        .env("WORLD_SIZE", "4")
        .env("SPANLAB_REPORT_JSON", &shared));
    assert!(out.status.success(), "{stderr}");
    assert!(stderr.contains("spanlab report (rank 2 of 4, "), "{stderr}");
    // A bad placeholder or rank is named, and the run goes on.
    let (out, stderr) = run(workload("normal")
        .env("RANK", "first")
        .env("SPANLAB_REPORT_JSON", dir.path().join("r{rnak}.json")));
    assert!(out.status.success(), "{stderr}");
    assert!(
        stderr.contains("RANK=\"first\": expected an unsigned integer"),
        "{stderr}"
    );
    assert!(
        stderr.contains("unknown placeholder {rnak}: expected {rank}, {local_rank}, {pid}, {host}"),
        "{stderr}"
    );
}

/// Runs the `mode` workload as rank `rank` of a job of `world` processes and returns
/// its JSON report, read back.
fn rank_report(mode: &str, rank: u32, world: u32) -> spanlab::Report {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("r.json");
    let (out, stderr) = run(workload(mode)
        .env("SPANLAB_REPORT", "off")
        .env("SPANLAB_REPORT_JSON", &json)
        .env("RANK", rank.to_string())
        .env("LOCAL_RANK", rank.to_string())
        .env("WORLD_SIZE", world.to_string()));
    assert!(out.status.success(), "{stderr}");
    // Under RANK, the report goes to `r.rank{N}.json` (one file per rank).
    let text = std::fs::read_to_string(dir.path().join(format!("r.rank{rank}.json"))).unwrap();
    spanlab::Report::from_json(&text).unwrap_or_else(|e| panic!("{e}:\n{text}"))
}

#[test]
fn the_reports_of_two_ranks_merge_into_the_jobs_report() {
    let ranks = [rank_report("normal", 0, 2), rank_report("normal", 1, 2)];
    for (rank, report) in ranks.iter().enumerate() {
        let run = &report.runs[0];
        assert_eq!(
            (run.rank, run.local_rank, run.world_size),
            (Some(rank as u64), Some(rank as u64), Some(2))
        );
        assert!(run.start_unix_ns < run.end_unix_ns);
        assert_eq!(run.command_line[1], "normal");
    }
    assert_ne!(ranks[0].runs[0].pid, ranks[1].runs[0].pid);
    let job = spanlab::Report::merge(&ranks).unwrap();
    let ranks_seen: Vec<_> = job.runs.iter().map(|r| r.rank).collect();
    assert_eq!(ranks_seen, [Some(0), Some(1)]);
    assert_eq!(job.paths.len(), 3);
    for path in &job.paths {
        let parts: Vec<_> = ranks
            .iter()
            .map(|r| r.paths.iter().find(|p| p.path == path.path).unwrap())
            .collect();
        assert_eq!(path.calls, 40, "{}", path.path_string());
        assert_eq!(path.total, parts[0].total + parts[1].total);
        assert_eq!(path.min, parts[0].min.min(parts[1].min));
        assert_eq!(path.max, parts[0].max.max(parts[1].max));
        assert_eq!(
            path.sums.wall.histogram.count(),
            parts[0].sums.wall.histogram.count() + parts[1].sums.wall.histogram.count()
        );
    }
    assert!(job.to_text().contains("(longest of 2 runs merged)"));
    // The merged report is a report like any other: it reads back as written.
    assert_eq!(spanlab::Report::from_json(&job.to_json()).unwrap(), job);
}

#[test]
fn ignore_env_leaves_the_launchers_ranks_out() {
    let (out, stderr) = run(workload("ignore_env")
        .env("RANK", "3")
        .env("LOCAL_RANK", "3")
        .env("WORLD_SIZE", "4"));
    assert!(out.status.success(), "{stderr}");
    let report = spanlab::Report::from_json(&String::from_utf8_lossy(&out.stdout)).unwrap();
    let run = &report.runs[0];
    assert_eq!(
        (run.rank, run.local_rank, run.world_size),
        (None, None, None)
    );
    assert_eq!(report.paths[0].calls, 20);
}
