//! `SPANLAB_SNAPSHOT_INTERVAL`: how often the report files are rewritten during a run.
//!
//! A value is a duration — a decimal number and a unit, `ms`, `s`, `m` or `h`
//! (`500ms`, `30s`, `1.5m`, `1h`) — or `off`. The variable overrides the builder's
//! [`snapshot_interval`](crate::Builder::snapshot_interval); with neither, snapshots are
//! taken every [`DEFAULT`] whenever a report *file* is configured (JSON, folded, or the
//! text report to a file), and not at all otherwise (there is nothing to rewrite).
//!
//! Intervals shorter than [`FLOOR`] are refused like any bad value (one line naming the
//! variable, the default used): a snapshot renders and rewrites whole reports, and
//! doing so hundreds of times a second would cost the program a core for no reader.

use std::time::Duration;

use super::{ConfigError, Env, Outputs, ReportTarget};

/// The interval when a report file is configured and nothing else was asked for.
pub(crate) const DEFAULT: Duration = Duration::from_secs(60);

/// The shortest interval accepted.
pub(crate) const FLOOR: Duration = Duration::from_millis(10);

const VARIABLE: &str = "SPANLAB_SNAPSHOT_INTERVAL";
const METHOD: &str = "Builder::snapshot_interval";

/// Parses a `SPANLAB_SNAPSHOT_INTERVAL` value: `Some(interval)`, or `None` for `off`.
pub(crate) fn parse(value: &str) -> Result<Option<Duration>, String> {
    let value = value.trim();
    if value == "off" {
        return Ok(None);
    }
    let expected = || {
        format!(
            "expected a duration such as `30s`, `5m`, `500ms` or `1h` (at least {}), or `off`",
            show(FLOOR)
        )
    };
    let split = value
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(expected)?;
    let (number, unit) = value.split_at(split);
    let seconds_per_unit = match unit.trim() {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => return Err(expected()),
    };
    // Digits with at most one point, and at least one digit: what `f64` parses besides
    // (`inf`, `1e3`, `.`) is refused by the split above or here.
    let digits = number.chars().filter(char::is_ascii_digit).count();
    if digits == 0 || number.len() - digits > 1 {
        return Err(expected());
    }
    let number: f64 = number.parse().map_err(|_| expected())?;
    let interval =
        Duration::try_from_secs_f64(number * seconds_per_unit).map_err(|_| expected())?;
    check(interval)?;
    Ok(Some(interval))
}

/// An interval is at least [`FLOOR`].
fn check(interval: Duration) -> Result<(), String> {
    if interval < FLOOR {
        return Err(format!(
            "an interval under {} is refused (use `off` to turn snapshots off)",
            show(FLOOR)
        ));
    }
    Ok(())
}

/// The interval this run uses: the variable, else the builder's, else the default
/// for these outputs. A refused value is reported and the next one down is used.
pub(crate) fn resolve(
    builder: Option<Option<Duration>>,
    env: &Env,
    outputs: &Outputs,
    errors: &mut Vec<ConfigError>,
) -> Option<Duration> {
    let default = default_for(outputs);
    let used = || match default {
        Some(d) => format!("; using the default, {}", show(d)),
        None => "; using the default, off (no report file)".to_string(),
    };
    let builder = match builder {
        Some(Some(interval)) => match check(interval) {
            Ok(()) => Some(Some(interval)),
            Err(problem) => {
                let value = format!("{interval:?}");
                errors.push(ConfigError::new(METHOD, value, problem + &used()));
                None
            }
        },
        other => other,
    };
    if let Some(value) = env.get(VARIABLE) {
        match parse(value) {
            Ok(interval) => return interval,
            Err(problem) => errors.push(ConfigError::new(VARIABLE, value, problem + &used())),
        }
    }
    builder.unwrap_or(default)
}

/// [`DEFAULT`] when there is a report file to rewrite, else off.
fn default_for(outputs: &Outputs) -> Option<Duration> {
    let text_file = matches!(outputs.text, ReportTarget::File(_));
    let any_file = text_file || outputs.json.is_some() || outputs.folded.is_some();
    any_file.then_some(DEFAULT)
}

/// `10ms`, `60s`: an interval as a user would write it.
fn show(d: Duration) -> String {
    if d.subsec_nanos() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_secs_f64() * 1e3)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::FileOutput;

    #[test]
    fn durations_in_every_unit_and_off() {
        let ok = |v: &str| parse(v).unwrap_or_else(|e| panic!("{v}: {e}"));
        assert_eq!(ok("30s"), Some(Duration::from_secs(30)));
        assert_eq!(ok("5m"), Some(Duration::from_secs(300)));
        assert_eq!(ok("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(ok("1h"), Some(Duration::from_secs(3600)));
        assert_eq!(ok("1.5m"), Some(Duration::from_secs(90)));
        assert_eq!(ok(" 10ms "), Some(FLOOR));
        assert_eq!(ok("off"), None);
    }

    #[test]
    fn garbage_is_refused_saying_what_is_accepted() {
        for bad in [
            "", "30", "s", "5x", "five s", "1e3s", "1..5s", "-5s", "inf", "nans", "30 sec", "OFF",
        ] {
            let problem = parse(bad).expect_err(bad);
            assert!(
                problem.starts_with("expected a duration such as `30s`"),
                "{bad}: {problem}"
            );
        }
    }

    #[test]
    fn intervals_under_the_floor_are_refused() {
        for small in ["0s", "0ms", "9ms", "0.001s"] {
            let problem = parse(small).expect_err(small);
            assert!(problem.contains("under 10ms"), "{small}: {problem}");
        }
    }

    fn with_json() -> Outputs {
        Outputs {
            json: Some(FileOutput {
                path: "r.json".into(),
                source: "SPANLAB_REPORT_JSON",
            }),
            ..Default::default()
        }
    }

    #[test]
    fn the_default_is_a_minute_with_a_report_file_else_off() {
        let mut errors = Vec::new();
        let none = Env::none();
        assert_eq!(
            resolve(None, &none, &with_json(), &mut errors),
            Some(DEFAULT)
        );
        let text_file = Outputs {
            text: ReportTarget::File("r.txt".into()),
            ..Default::default()
        };
        assert_eq!(resolve(None, &none, &text_file, &mut errors), Some(DEFAULT));
        assert_eq!(resolve(None, &none, &Outputs::default(), &mut errors), None);
        assert_eq!(errors, []);
    }

    #[test]
    fn the_variable_overrides_the_builder() {
        let mut errors = Vec::new();
        let env = Env::of(&[(VARIABLE, "200ms")]);
        let builder = Some(Some(Duration::from_secs(5)));
        assert_eq!(
            resolve(builder, &env, &with_json(), &mut errors),
            Some(Duration::from_millis(200))
        );
        let off = Env::of(&[(VARIABLE, "off")]);
        assert_eq!(resolve(builder, &off, &with_json(), &mut errors), None);
        assert_eq!(
            resolve(builder, &Env::none(), &Outputs::default(), &mut errors),
            Some(Duration::from_secs(5)),
            "asked for explicitly: on even without a file"
        );
        assert_eq!(
            resolve(Some(None), &Env::none(), &with_json(), &mut errors),
            None
        );
        assert_eq!(errors, []);
    }

    #[test]
    fn a_bad_value_is_named_once_and_the_default_used() {
        let mut errors = Vec::new();
        let env = Env::of(&[(VARIABLE, "5 minutes")]);
        assert_eq!(
            resolve(None, &env, &with_json(), &mut errors),
            Some(DEFAULT)
        );
        assert_eq!(errors.len(), 1);
        let line = errors[0].to_string();
        assert!(
            line.starts_with("SPANLAB_SNAPSHOT_INTERVAL=\"5 minutes\": expected a duration"),
            "{line}"
        );
        assert!(line.ends_with("; using the default, 60s"), "{line}");
        // A bad variable leaves the builder's value in force.
        errors.clear();
        let builder = Some(Some(Duration::from_secs(2)));
        assert_eq!(
            resolve(builder, &env, &Outputs::default(), &mut errors),
            Some(Duration::from_secs(2))
        );
        assert_eq!(errors.len(), 1);
    }

    #[test]
    fn a_builder_interval_under_the_floor_is_named_and_the_default_used() {
        let mut errors = Vec::new();
        let builder = Some(Some(Duration::from_millis(1)));
        assert_eq!(
            resolve(builder, &Env::none(), &Outputs::default(), &mut errors),
            None
        );
        assert_eq!(errors[0].source_name(), METHOD);
        assert!(
            errors[0].to_string().contains("using the default, off"),
            "{}",
            errors[0]
        );
    }
}
