//! The stall factor: builder, then `SPANLAB_STALL_FACTOR`.

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

#[cfg(test)]
mod tests {
    use super::*;

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
