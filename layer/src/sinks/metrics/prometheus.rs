//! A [`Snapshot`] in the Prometheus text exposition format (version 0.0.4).
//!
//! Names follow Prometheus' conventions (the unit and `_total` in the name, see
//! [`model`](super::model)); attribute keys become labels with `.` turned into `_`,
//! except `spanlab.path`, which is `path`. Under `RANK` every series also has a `rank`
//! label. Histograms come as cumulative `_bucket{le="…"}` series ending with
//! `le="+Inf"`, then `_sum` and `_count`.

use std::fmt::Write;

use super::model::{Family, Kind, Point, Snapshot, Value};

/// The `Content-Type` of the rendering.
pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `snapshot` as a `/metrics` body; `rank` labels every series when set.
pub(crate) fn render(snapshot: &Snapshot, rank: Option<u64>) -> String {
    let mut out = String::new();
    for family in &snapshot.families {
        render_family(&mut out, family, rank);
    }
    out
}

fn render_family(out: &mut String, family: &Family, rank: Option<u64>) {
    let name = family.prometheus;
    let kind = match family.kind {
        Kind::Counter => "counter",
        Kind::Gauge => "gauge",
        Kind::Histogram => "histogram",
    };
    let _ = writeln!(out, "# HELP {name} {}", family.help);
    let _ = writeln!(out, "# TYPE {name} {kind}");
    for point in &family.points {
        let labels = labels(point, rank);
        match &point.value {
            Value::Int(n) => series(out, name, "", &labels, None, &n.to_string()),
            Value::Float(x) => series(out, name, "", &labels, None, &number(*x)),
            Value::Histogram(h) => {
                let mut cumulative = 0u64;
                for (bound, count) in h.bounds.iter().zip(&h.counts) {
                    cumulative += count;
                    let le = number(*bound);
                    series(
                        out,
                        name,
                        "_bucket",
                        &labels,
                        Some(&le),
                        &cumulative.to_string(),
                    );
                }
                series(
                    out,
                    name,
                    "_bucket",
                    &labels,
                    Some("+Inf"),
                    &h.count.to_string(),
                );
                series(out, name, "_sum", &labels, None, &number(h.sum));
                series(out, name, "_count", &labels, None, &h.count.to_string());
            }
        }
    }
}

/// `k="v",…` for a point, values escaped.
fn labels(point: &Point, rank: Option<u64>) -> String {
    let mut labels = String::new();
    let rank = rank.map(|r| ("rank", r.to_string()));
    for (key, value) in point
        .attributes
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .chain(rank.as_ref().map(|(k, v)| (*k, v.as_str())))
    {
        if !labels.is_empty() {
            labels.push(',');
        }
        let key = match key {
            "spanlab.path" => "path".to_owned(),
            other => other.replace('.', "_"),
        };
        let _ = write!(labels, "{key}=\"{}\"", escape(value));
    }
    labels
}

fn series(out: &mut String, name: &str, suffix: &str, labels: &str, le: Option<&str>, value: &str) {
    out.push_str(name);
    out.push_str(suffix);
    out.push('{');
    out.push_str(labels);
    if let Some(le) = le {
        if !labels.is_empty() {
            out.push(',');
        }
        let _ = write!(out, "le=\"{le}\"");
    }
    out.push_str("} ");
    out.push_str(value);
    out.push('\n');
}

/// A label value as the format wants it: `\`, `"` and line feeds escaped.
fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// A float as Prometheus reads it (Rust's shortest round trip; `NaN`/`+Inf` spelled
/// its way).
fn number(x: f64) -> String {
    if x.is_nan() {
        "NaN".into()
    } else if x.is_infinite() {
        if x > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{x:?}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sinks::metrics::model::HistogramPoint;

    #[test]
    fn histograms_are_cumulative_and_labels_escaped() {
        static BOUNDS: [f64; 2] = [0.001, 0.01];
        let snapshot = Snapshot {
            start_unix_ns: 0,
            families: vec![Family {
                name: "spanlab.span.duration",
                prometheus: "spanlab_span_duration_seconds",
                help: "Wall time.",
                unit: "s",
                kind: Kind::Histogram,
                points: vec![Point {
                    attributes: vec![
                        ("spanlab.path", "a > \"b\"".into()),
                        ("span.name", "b\\".into()),
                    ],
                    value: Value::Histogram(HistogramPoint {
                        count: 6,
                        sum: 0.5,
                        min: None,
                        max: None,
                        bounds: &BOUNDS,
                        counts: vec![1, 2, 3],
                    }),
                }],
            }],
        };
        let text = render(&snapshot, Some(3));
        let labels = r#"path="a > \"b\"",span_name="b\\",rank="3""#;
        let expected = format!(
            "# HELP spanlab_span_duration_seconds Wall time.\n\
             # TYPE spanlab_span_duration_seconds histogram\n\
             spanlab_span_duration_seconds_bucket{{{labels},le=\"0.001\"}} 1\n\
             spanlab_span_duration_seconds_bucket{{{labels},le=\"0.01\"}} 3\n\
             spanlab_span_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 6\n\
             spanlab_span_duration_seconds_sum{{{labels}}} 0.5\n\
             spanlab_span_duration_seconds_count{{{labels}}} 6\n"
        );
        assert_eq!(text, expected);
    }

    #[test]
    fn token_usage_is_a_histogram_of_exact_bucket_counts_in_tokens() {
        use crate::llm::{record, LlmCall};
        use crate::sinks::metrics::model::{snapshot, PathCap};
        use tracing_subscriber::prelude::*;

        let inputs = [3u64, 4, 4, 9, 10, 600, 601, 5_000];
        let (layer, guard) = crate::SpanLab::builder()
            .ignore_env()
            .report_to(crate::ReportTarget::Off)
            .build();
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
            for n in inputs {
                record(LlmCall::new("tiny-1").tokens(n, 1));
            }
        });
        let (snapshot, _) = snapshot(&guard.report(), &mut PathCap::new(10));
        let text = render(&snapshot, None);
        let labels = r#"gen_ai_request_model="tiny-1",gen_ai_token_type="input""#;
        let line = |suffix: &str, le: Option<&str>| {
            let le = le.map(|le| format!(",le=\"{le}\"")).unwrap_or_default();
            let start = format!("gen_ai_client_token_usage{suffix}{{{labels}{le}}} ");
            let line = text.lines().find(|l| l.starts_with(&start));
            let line = line.unwrap_or_else(|| panic!("{start} in\n{text}"));
            line[start.len()..].to_owned()
        };
        assert!(text.contains("# TYPE gen_ai_client_token_usage histogram\n"));
        // Cumulative: the calls with at most `le` tokens, exactly.
        for (le, calls) in [
            ("2.0", 0),
            ("3.0", 1),
            ("4.0", 3),
            ("9.0", 4),
            ("11.0", 5),
            ("511.0", 5),
            ("639.0", 7),
            ("4095.0", 7),
            ("5119.0", 8),
            ("+Inf", 8),
        ] {
            assert_eq!(line("_bucket", Some(le)), calls.to_string(), "le={le}");
        }
        assert_eq!(line("_count", None), "8");
        assert_eq!(
            line("_sum", None),
            inputs.iter().sum::<u64>().to_string() + ".0"
        );
    }
}
