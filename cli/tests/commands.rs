//! The `spanlab` binary as a user runs it: exit statuses, messages, files written.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use spanlab_cli::synthetic::{around, Synthetic};

fn spanlab(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_spanlab"))
        .args(args)
        .output()
        .expect("the spanlab binary runs")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Bad input, one case per kind: exit status 2, one line on stderr naming the file
/// and what it is, nothing on stdout, no panic.
#[test]
fn each_bad_input_exits_2_with_one_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let empty = Synthetic::new().to_json();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing.json", None, "cannot read"),
        ("not.json", Some("this is not json\n".into()), "not JSON"),
        (
            "cut.json",
            Some(r#"{"schema": "spanlab.report/2", "paths": [{"path": ["a"#.into()),
            "ends early",
        ),
        (
            "other.json",
            Some(r#"{"name": "package", "version": "1.0"}"#.into()),
            "not a spanlab report",
        ),
        (
            "v9.json",
            Some(r#"{"schema": "spanlab.report/9"}"#.into()),
            "schema this version does not know",
        ),
        (
            "v1.json",
            Some(r#"{"schema": "spanlab.report/1", "paths": []}"#.into()),
            "spanlab.report/1 has neither",
        ),
        ("empty.json", Some(empty), "has no paths"),
    ];
    for (name, content, want) in cases {
        let file = match &content {
            Some(text) => write(dir.path(), name, text),
            None => dir.path().join(name),
        };
        let file = file.to_str().unwrap();
        let out = dir.path().join("out").to_str().unwrap().to_string();
        let commands: Vec<Vec<&str>> = vec![
            vec!["show", file],
            vec!["merge", file, file],
            vec!["diff", file, file],
            vec!["flame", file, "-o", &out],
            vec!["html", file, "-o", &out],
        ];
        for args in commands {
            let o = spanlab(&args);
            let err = text(&o.stderr);
            assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
            assert!(
                err.starts_with("spanlab: ") && err.contains(want),
                "{args:?}: {err}"
            );
            assert!(err.contains(name), "{args:?} does not name the file: {err}");
            assert_eq!(err.lines().count(), 1, "{args:?}: {err}");
            assert!(!err.contains("panicked"), "{args:?}: {err}");
            assert!(o.stdout.is_empty(), "{args:?}");
        }
    }
    // The /1 message says what the command can't do with it.
    let v1 = dir.path().join("v1.json");
    let err = text(&spanlab(&["show", v1.to_str().unwrap()]).stderr);
    assert!(
        err.contains("spanlab show, merge, diff, flame and html all need them"),
        "{err}"
    );
}

fn base() -> Synthetic {
    Synthetic::new()
        .path("epoch", around(50_000_000, 0.05, 100))
        .path("epoch > forward", around(10_000_000, 0.05, 100))
        .path("epoch > backward", around(20_000_000, 0.05, 100))
}

#[test]
fn diff_fail_exits_1_on_a_real_slowdown_and_0_otherwise() {
    let dir = tempfile::tempdir().unwrap();
    let b = write(dir.path(), "base.json", &base().to_json());
    let same = write(dir.path(), "same.json", &base().to_json());
    let slow = Synthetic::new()
        .path("epoch", around(52_000_000, 0.05, 100))
        .path("epoch > forward", around(10_000_000, 0.05, 100))
        .path("epoch > backward", around(22_000_000, 0.05, 100)); // +10 %
    let slow = write(dir.path(), "slow.json", &slow.to_json());
    let (b, same, slow) = (
        b.to_str().unwrap(),
        same.to_str().unwrap(),
        slow.to_str().unwrap(),
    );

    let o = spanlab(&["diff", b, slow, "--fail"]);
    assert_eq!(o.status.code(), Some(1), "{}", text(&o.stderr));
    let err = text(&o.stderr);
    assert!(
        err.contains("epoch > backward") && !err.contains("forward"),
        "{err}"
    );
    let out = text(&o.stdout);
    assert!(out.contains("slower !"), "{out}");

    // Without --fail, the same comparison exits 0; so does --fail with no regression,
    // and --fail with a threshold above the slowdown.
    assert_eq!(spanlab(&["diff", b, slow]).status.code(), Some(0));
    let o = spanlab(&["diff", b, same, "--fail"]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("0 slower"), "{}", text(&o.stdout));
    assert_eq!(
        spanlab(&["diff", b, slow, "--fail", "--threshold", "12%"])
            .status
            .code(),
        Some(0)
    );

    // JSON: the regressions listed, each path's test.
    let o = spanlab(&["diff", b, slow, "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(json["schema"], "spanlab.diff/1");
    assert_eq!(json["regressions"], serde_json::json!(["epoch > backward"]));
    assert!(json["paths"][2]["test"]["p"].as_f64().unwrap() < 0.05);
}

#[test]
fn merge_writes_the_exact_merge_and_names_the_straggler() {
    let dir = tempfile::tempdir().unwrap();
    let mut files = Vec::new();
    for rank in 0..4u64 {
        let slow = if rank == 3 { 2 } else { 1 };
        let s = base()
            .path("epoch > backward > allreduce", vec![1_000_000 * slow; 50])
            .rank(rank, 4);
        files.push(write(dir.path(), &format!("rank{rank}.json"), &s.to_json()));
    }
    let job = dir.path().join("job.json");
    let mut args: Vec<&str> = vec!["merge"];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    args.extend(["-o", job.to_str().unwrap(), "--json"]);
    let o = spanlab(&args);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let out = text(&o.stdout);
    let line = out
        .lines()
        .rfind(|l| l.starts_with("epoch > backward > allreduce"))
        .unwrap();
    assert!(line.trim_end().ends_with("rank 3"), "{out}");
    let merged: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&job).unwrap()).unwrap();
    assert_eq!(merged["paths"][0]["calls"], 400);
    assert_eq!(merged["spread"]["inputs"][3]["name"], "rank 3");
    // The merged file is a report again.
    let o = spanlab(&[
        "show",
        job.to_str().unwrap(),
        "--sort",
        "total",
        "--top",
        "2",
    ]);
    assert_eq!(o.status.code(), Some(0));
    assert!(
        text(&o.stdout).contains("(showing 2 of 4 paths: sorted by total, top 2)"),
        "{}",
        text(&o.stdout)
    );

    // A report of another program is refused.
    let other = write(
        dir.path(),
        "other.json",
        &Synthetic::new().path("serve", vec![5; 5]).to_json(),
    );
    let o = spanlab(&["merge", files[0].to_str().unwrap(), other.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        text(&o.stderr).contains("no span path in common"),
        "{}",
        text(&o.stderr)
    );
}

#[test]
fn flame_draws_reports_and_folded_stacks() {
    let dir = tempfile::tempdir().unwrap();
    let report = write(dir.path(), "run.json", &base().to_json());
    let folded = write(dir.path(), "run.folded", "epoch;forward 700\nepoch 100\n");
    let svg = dir.path().join("run.svg");
    for input in [&report, &folded] {
        let o = spanlab(&[
            "flame",
            input.to_str().unwrap(),
            "-o",
            svg.to_str().unwrap(),
            "--icicle",
        ]);
        assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
        let drawn = std::fs::read_to_string(&svg).unwrap();
        assert!(drawn.contains("<svg") && drawn.contains("forward"));
    }
    let bad = write(dir.path(), "bad.folded", "epoch;forward seven\n");
    let o = spanlab(&["flame", bad.to_str().unwrap(), "-o", svg.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o.stderr).contains("not JSON, nor folded stacks"));
}

#[test]
fn a_snapshot_is_marked_as_not_final() {
    let dir = tempfile::tempdir().unwrap();
    let snap = write(
        dir.path(),
        "snap.json",
        &base().key("final", serde_json::json!(false)).to_json(),
    );
    let o = spanlab(&["show", snap.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(text(&o.stdout).starts_with("note: "), "{}", text(&o.stdout));
    assert!(text(&o.stdout).contains("snapshot"));
}

#[test]
fn html_of_several_reports_merges_them_with_their_spread() {
    let dir = tempfile::tempdir().unwrap();
    let a = write(dir.path(), "a.json", &base().rank(0, 2).to_json());
    let b = write(dir.path(), "b.json", &base().rank(1, 2).to_json());
    let page = dir.path().join("job.html");
    let o = spanlab(&[
        "html",
        a.to_str().unwrap(),
        b.to_str().unwrap(),
        "-o",
        page.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", text(&o.stderr));
    let html = std::fs::read_to_string(&page).unwrap();
    assert!(html.contains("Spread over 2 inputs"), "no spread section");
    assert!(html.contains("2 runs merged"));
    // One report: no spread section, unless a merge --json wrote one into it.
    let o = spanlab(&["html", a.to_str().unwrap(), "-o", page.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(0));
    assert!(!std::fs::read_to_string(&page)
        .unwrap()
        .contains("Spread over"));
}
