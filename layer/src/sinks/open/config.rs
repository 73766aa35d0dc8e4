//! The open-span settings, the environment over the builder: the stall factor
//! (`SPANLAB_STALL_FACTOR`) and whether span fields are recorded
//! (`SPANLAB_OPEN_SPAN_FIELDS`).

use crate::config::{ConfigError, Env};

/// The environment variable of the stall factor.
pub(crate) const STALL_FACTOR_VAR: &str = "SPANLAB_STALL_FACTOR";
/// The stall factor when none is set (or the one set is rejected).
pub(crate) const DEFAULT_STALL_FACTOR: f64 = 100.0;

/// The stall factor: `SPANLAB_STALL_FACTOR` over the builder's, over the default. A
/// value that is not a positive finite number is rejected with an error naming where
/// it came from, and the next in line is used.
pub(crate) fn stall_factor(builder: Option<f64>, env: &Env) -> (f64, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let usable = |f: f64| f.is_finite() && f > 0.0;
    let problem = "expected a positive number (how many times its path's p99 a span may \
                   stay open before it counts as stalled)";
    let builder = builder.filter(|&f| {
        usable(f) || {
            errors.push(ConfigError::new(
                "Builder::stall_factor",
                f.to_string(),
                problem,
            ));
            false
        }
    });
    let from_env = env.get(STALL_FACTOR_VAR).and_then(|value| {
        match value.parse::<f64>().ok().filter(|&f| usable(f)) {
            Some(f) => Some(f),
            None => {
                errors.push(ConfigError::new(STALL_FACTOR_VAR, value, problem));
                None
            }
        }
    });
    let factor = from_env.or(builder).unwrap_or(DEFAULT_STALL_FACTOR);
    (factor, errors)
}

/// The environment variable that turns the recording of span fields on or off.
pub(crate) const FIELDS_VAR: &str = "SPANLAB_OPEN_SPAN_FIELDS";

/// Whether open spans' fields are recorded: `SPANLAB_OPEN_SPAN_FIELDS` (`on`/`off`,
/// `true`/`false`, `1`/`0`) over the builder's choice. Any other value is rejected
/// with an error naming the variable, and the builder's choice stands.
pub(crate) fn open_span_fields(builder: bool, env: &Env) -> (bool, Vec<ConfigError>) {
    let Some(value) = env.get(FIELDS_VAR) else {
        return (builder, Vec::new());
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "on" | "true" | "1" => (true, Vec::new()),
        "off" | "false" | "0" => (false, Vec::new()),
        _ => (
            builder,
            vec![ConfigError::new(FIELDS_VAR, value, "expected on or off")],
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_fields_switch_reads_on_and_off_and_names_a_bad_value() {
        assert_eq!(open_span_fields(false, &Env::none()), (false, vec![]));
        assert_eq!(open_span_fields(true, &Env::none()), (true, vec![]));
        for on in ["on", "TRUE", "1"] {
            assert!(open_span_fields(false, &Env::of(&[(FIELDS_VAR, on)])).0);
        }
        for off in ["off", "false", "0"] {
            assert!(!open_span_fields(true, &Env::of(&[(FIELDS_VAR, off)])).0);
        }
        let (fields, errors) = open_span_fields(true, &Env::of(&[(FIELDS_VAR, "sometimes")]));
        assert!(fields, "a bad value leaves the builder's choice");
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].source_name(), FIELDS_VAR);
    }

    #[test]
    fn the_environment_overrides_the_builder_and_bad_values_name_their_source() {
        assert_eq!(stall_factor(None, &Env::none()), (100.0, vec![]));
        assert_eq!(stall_factor(Some(5.0), &Env::none()), (5.0, vec![]));
        let env = Env::of(&[(STALL_FACTOR_VAR, "20")]);
        assert_eq!(stall_factor(Some(5.0), &env).0, 20.0);

        let env = Env::of(&[(STALL_FACTOR_VAR, "lots")]);
        let (factor, errors) = stall_factor(Some(5.0), &env);
        assert_eq!(factor, 5.0);
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].source_name(), STALL_FACTOR_VAR);
        assert_eq!(errors[0].value(), "lots");

        let (factor, errors) = stall_factor(Some(-1.0), &Env::of(&[(STALL_FACTOR_VAR, "0")]));
        assert_eq!(factor, DEFAULT_STALL_FACTOR);
        assert_eq!(errors.len(), 2);
        assert_eq!(errors[0].source_name(), "Builder::stall_factor");
    }
}
