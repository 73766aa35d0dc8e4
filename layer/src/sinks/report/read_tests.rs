//! Reading reports back: a round trip gives the report that was written, and each kind
//! of bad input gets its own error.

use serde_json::Value;

use super::{ExportReport, Report, ReportError};

/// A report with something in every section: a whole run of the merge tests' workload,
/// plus export figures and warnings.
fn full_report() -> Report {
    let (mut report, _) = super::merge_tests::run(0..300, 0);
    report.export = Some(ExportReport {
        target: "grpc http://collector:4317".into(),
        finished: 12,
        exported: 9,
        dropped: 1,
        failed: 1,
        queued_at_exit: 1,
        in_flight_at_exit: 0,
        batches: 2,
        failed_batches: 1,
        retries: 3,
        flush: super::FlushOutcome::TimedOut,
        given_up_at_exit: 0,
        last_error: Some("unavailable".into()),
    });
    report.warnings = vec!["SPANLAB_REPORT=\"x\": nope".into()];
    report
}

#[test]
fn a_report_reads_back_as_it_was_written() {
    for report in [super::tests::sample_report(), full_report()] {
        let json = report.to_json();
        let read = Report::from_json(&json).unwrap();
        assert_eq!(read, report);
        assert_eq!(read.to_json(), json, "and writes the same text again");
    }
}

#[test]
fn every_section_carries_what_it_needs_to_read_back() {
    let report = full_report();
    assert!(!report.gpu.paths.is_empty() && report.gpu.probe.is_some());
    assert!(!report.prompts.models.is_empty() && !report.prompts.recent.is_empty());
    assert!(report.prompts.models.iter().all(|m| m.latency.count > 0));
    assert!(report.seeds.paths.iter().any(|p| !p.distinct_exact));
    assert!(report.runs[0].host.is_some() || cfg!(not(target_os = "linux")));
}

/// The JSON of the sample report, edited by `edit`.
fn edited(edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(&super::tests::sample_report().to_json()).unwrap();
    edit(&mut v);
    v.to_string()
}

fn read_err(json: &str) -> ReportError {
    Report::from_json(json).expect_err("must not read")
}

#[test]
fn text_that_is_not_json_says_so() {
    for text in ["", "  \n", "hello", "{\"schema\": spanlab}", "{} trailing"] {
        match read_err(text) {
            ReportError::NotJson { .. } => {}
            other => panic!("{text:?}: {other:?}"),
        }
    }
    assert!(read_err("").to_string().contains("empty"));
}

#[test]
fn a_cut_off_report_is_truncated() {
    let json = super::tests::sample_report().to_json();
    for cut in [1, json.len() / 3, json.len() / 2, json.len() - 2] {
        match read_err(&json[..cut]) {
            ReportError::Truncated { line, .. } => assert!(line >= 1),
            other => panic!("cut at {cut}: {other:?}"),
        }
    }
    assert!(read_err(&json[..json.len() / 2])
        .to_string()
        .contains("ends early"));
}

#[test]
fn json_that_is_not_a_spanlab_report_says_so() {
    assert_eq!(read_err("[1, 2]"), ReportError::NotAReport { schema: None });
    assert_eq!(
        read_err("{\"paths\": []}"),
        ReportError::NotAReport { schema: None }
    );
    assert_eq!(
        read_err("{\"schema\": 2}"),
        ReportError::NotAReport { schema: None }
    );
    assert_eq!(
        read_err("{\"schema\": \"otel.trace/1\"}"),
        ReportError::NotAReport {
            schema: Some("otel.trace/1".into())
        }
    );
}

#[test]
fn other_schema_versions_are_named() {
    let v1 = edited(|v| v["schema"] = "spanlab.report/1".into());
    assert_eq!(read_err(&v1), ReportError::Version1);
    let message = ReportError::Version1.to_string();
    assert!(
        message.contains("neither read back nor merged") && message.contains("spanlab.report/2"),
        "{message}"
    );
    let v3 = edited(|v| v["schema"] = "spanlab.report/3".into());
    assert_eq!(
        read_err(&v3),
        ReportError::UnknownSchema {
            schema: "spanlab.report/3".into()
        }
    );
    let layout = edited(|v| v["histogram_layout"] = "ns-log-linear-128".into());
    assert_eq!(
        read_err(&layout),
        ReportError::UnknownHistogramLayout {
            layout: "ns-log-linear-128".into()
        }
    );
    assert!(read_err(&layout).to_string().contains("ns-log-linear-256"));
}

/// `edit` makes the sample report malformed: the error must point at `at`, saying
/// something containing `problem`.
fn assert_invalid(edit: impl FnOnce(&mut Value), at: &str, problem: &str) {
    match read_err(&edited(edit)) {
        ReportError::Invalid {
            at: got,
            problem: said,
        } => {
            assert_eq!(got, at);
            assert!(said.contains(problem), "{at}: {said}");
        }
        other => panic!("{at}: {other:?}"),
    }
}

#[test]
fn malformed_content_names_where_and_what() {
    let fwd = "paths[1] (epoch > forward;odd)";
    assert_invalid(
        |v| v.as_object_mut().unwrap().remove("runs").map(drop).unwrap(),
        "runs",
        "missing",
    );
    assert_invalid(
        |v| {
            v["paths"][1]
                .as_object_mut()
                .unwrap()
                .remove("exact")
                .map(drop)
                .unwrap()
        },
        fwd,
        "missing field `exact`",
    );
    assert_invalid(
        |v| v["paths"][1]["exact"]["sum_ns"] = 12.5.into(),
        fwd,
        "decimal string",
    );
    assert_invalid(
        |v| v["paths"][1]["calls"] = 81.into(),
        fwd,
        "the histogram counts 80 values",
    );
    assert_invalid(
        |v| v["paths"][1]["exact"]["idle_ns"] = "1".into(),
        fwd,
        "idle 1 ns",
    );
    assert_invalid(
        |v| v["paths"][1]["exact"]["sum_sq_ns2"] = "0".into(),
        fwd,
        "sum of squares",
    );
    assert_invalid(
        |v| v["paths"][1]["histogram"][0][1] = 0.into(),
        &format!("{fwd}.histogram"),
        "count of 0",
    );
    assert_invalid(
        |v| v["paths"][1]["path"] = serde_json::json!([]),
        "paths[1]",
        "no span names",
    );
    let seeded = "seeds.paths[0] (epoch > shuffle)";
    assert_invalid(
        |v| v["seeds"]["paths"][0]["sketch"] = "00".into(),
        &format!("{seeded}.sketch"),
        "2 hex digits",
    );
    assert_invalid(
        |v| v["seeds"]["paths"][0]["other_seed_calls"] = 1.into(),
        seeded,
        "do not add up",
    );
    assert_invalid(
        |v| v["seeds"]["source"] = "moon".into(),
        "seeds.source",
        "\"moon\"",
    );
}

#[test]
fn plain_integers_are_accepted_where_strings_are_written() {
    // A tool that rewrote the file with numbers (below 2^53) loses nothing.
    let report = super::tests::sample_report();
    let mut v: Value = serde_json::from_str(&report.to_json()).unwrap();
    let exact = &mut v["paths"][0]["exact"];
    let sum: u64 = exact["sum_ns"].as_str().unwrap().parse().unwrap();
    exact["sum_ns"] = sum.into();
    assert_eq!(Report::from_json(&v.to_string()).unwrap(), report);
}

#[test]
fn final_and_sequence_read_back_and_default_when_absent() {
    let mut report = super::tests::sample_report();
    (report.is_final, report.sequence) = (true, 7);
    let read = Report::from_json(&report.to_json()).unwrap();
    assert_eq!((read.is_final, read.sequence), (true, 7));
    (report.is_final, report.sequence) = (false, 3);
    let read = Report::from_json(&report.to_json()).unwrap();
    assert_eq!((read.is_final, read.sequence), (false, 3));
    // A /2 file from before snapshots was written once, at exit.
    let old = edited(|v| {
        let top = v.as_object_mut().unwrap();
        assert!(top.remove("final").is_some() && top.remove("sequence").is_some());
    });
    let read = Report::from_json(&old).unwrap();
    assert_eq!((read.is_final, read.sequence), (true, 0));
    let bad = edited(|v| v["sequence"] = "three".into());
    match read_err(&bad) {
        ReportError::Invalid { at, .. } => assert_eq!(at, "sequence"),
        other => panic!("{other:?}"),
    }
}

/// The JSON of [`full_report`] (which has LLM models), edited by `edit`.
fn full_edited(edit: impl FnOnce(&mut Value)) -> String {
    let mut v: Value = serde_json::from_str(&full_report().to_json()).unwrap();
    edit(&mut v);
    v.to_string()
}

#[test]
fn token_histograms_read_back_and_are_none_when_absent() {
    let report = full_report();
    let model = &report.prompts.models[0];
    let output = model.output_token_histogram.as_ref().unwrap();
    assert!(output.count() > 0 && output.buckets().any(|(r, _)| r.start() != r.end()));
    let read = Report::from_json(&report.to_json()).unwrap();
    assert_eq!(read.prompts.models, report.prompts.models);
    // A /2 file from before token histograms: read, with none.
    let old = full_edited(|v| {
        for m in v["prompts"]["models"].as_array_mut().unwrap() {
            let m = m.as_object_mut().unwrap();
            assert!(m.remove("input_token_histogram").is_some());
            assert!(m.remove("output_token_histogram").is_some());
        }
    });
    let read = Report::from_json(&old).unwrap();
    assert!(read
        .prompts
        .models
        .iter()
        .all(|m| { m.input_token_histogram.is_none() && m.output_token_histogram.is_none() }));
    assert_eq!(read.prompts.models[0].input_tokens, model.input_tokens);
    // And writes none: it reads back the same.
    assert_eq!(Report::from_json(&read.to_json()).unwrap(), read);
    assert!(!read.to_json().contains("token_histogram"));
}

#[test]
fn token_histograms_that_contradict_their_model_are_refused() {
    let invalid =
        |edit: &dyn Fn(&mut Value), problem: &str| match read_err(&full_edited(|v| edit(v))) {
            ReportError::Invalid { at, problem: said } => {
                assert!(at.ends_with("input_token_histogram"), "{at}");
                assert!(said.contains(problem), "{said}");
            }
            other => panic!("{other:?}"),
        };
    fn model(v: &mut Value) -> &mut Value {
        &mut v["prompts"]["models"][0]
    }
    // One token more than the buckets can hold.
    invalid(
        &|v| {
            let m = model(v);
            m["input_tokens"] = (m["input_tokens"].as_u64().unwrap() + 1_000_000).into();
        },
        "not the",
    );
    invalid(
        &|v| model(v)["input_token_histogram"][0][1] = 0.into(),
        "count of 0",
    );
    invalid(
        &|v| {
            let m = model(v);
            let calls = m["calls"].as_u64().unwrap();
            m["input_token_histogram"] = serde_json::json!([[0, calls + 1]]);
            m["input_tokens"] = 0.into();
        },
        "more calls with tokens than calls",
    );
}
