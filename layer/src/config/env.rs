//! The environment as configuration reads it: one snapshot per build, one rule.
//!
//! Several groups of variables configure spanlab — `SPANLAB_*`, the standard `OTEL_*`,
//! `RUST_LOG`, a launcher's `RANK` — and each group is resolved by its own code. They
//! all read the same [`Env`], made once when the builder builds, so that:
//!
//! * they agree on what "set" means: an empty or whitespace-only value counts as unset,
//!   and a value is handed out without its surrounding whitespace (`SPANLAB_REPORT= `
//!   left over from a shell script is the default, not an error);
//! * [`Builder::ignore_env`](crate::Builder::ignore_env) turns every group off at once,
//!   by building from no variables at all rather than by each resolver remembering to
//!   check a flag;
//! * they see one consistent environment, even if another thread changes it while the
//!   build runs.
//!
//! Tests build an [`Env`] from a list of pairs instead of touching the process's.

use std::collections::HashMap;

/// The variables configuration may read, taken once. See the [module](self) docs.
#[derive(Clone, Default)]
pub(crate) struct Env {
    /// Only the set ones (non-blank), trimmed; names in the platform's lookup case.
    vars: HashMap<String, String>,
}

impl Env {
    /// A snapshot of the process environment. Variables whose name or value is not
    /// UTF-8 are left out: `std::env::var` reports them as unusable, and spanlab has
    /// always treated that as unset.
    pub(crate) fn process() -> Env {
        Env::from_pairs(
            std::env::vars_os()
                .filter_map(|(k, v)| Some((k.into_string().ok()?, v.into_string().ok()?))),
        )
    }

    /// No variables: what a builder with `ignore_env()` reads.
    pub(crate) fn none() -> Env {
        Env::default()
    }

    /// These variables and no others (tests).
    #[cfg(test)]
    pub(crate) fn of(pairs: &[(&str, &str)]) -> Env {
        Env::from_pairs(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Env {
        let vars = pairs
            .into_iter()
            .filter_map(|(name, value)| {
                let value = value.trim();
                (!value.is_empty()).then(|| (lookup_case(&name), value.to_string()))
            })
            .collect();
        Env { vars }
    }

    /// The value of `name`, trimmed; `None` when it is unset, empty or only whitespace.
    pub(crate) fn get(&self, name: &str) -> Option<&str> {
        self.vars.get(&lookup_case(name)).map(String::as_str)
    }
}

/// Windows finds variables whatever the case of their name (`std::env::var("Path")`
/// reads `PATH`); a snapshot keeps that by storing and looking up one case.
fn lookup_case(name: &str) -> String {
    if cfg!(windows) {
        name.to_ascii_uppercase()
    } else {
        name.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blank_values_are_unset_and_values_come_trimmed() {
        let env = Env::of(&[
            ("EMPTY", ""),
            ("SPACES", " \t "),
            ("PADDED", "  stdout\n"),
            ("PLAIN", "off"),
        ]);
        assert_eq!(env.get("EMPTY"), None);
        assert_eq!(env.get("SPACES"), None);
        assert_eq!(env.get("PADDED"), Some("stdout"));
        assert_eq!(env.get("PLAIN"), Some("off"));
        assert_eq!(env.get("ABSENT"), None);
    }

    #[test]
    fn none_has_no_variables() {
        assert_eq!(Env::none().get("PATH"), None);
        assert!(Env::none().vars.is_empty());
    }

    #[test]
    fn the_process_snapshot_holds_every_set_variable() {
        let env = Env::process();
        for (name, value) in std::env::vars_os() {
            let (Some(name), Some(value)) = (name.to_str(), value.to_str()) else {
                continue;
            };
            let expected = Some(value.trim()).filter(|v| !v.is_empty());
            assert_eq!(env.get(name), expected, "{name}");
        }
    }
}
