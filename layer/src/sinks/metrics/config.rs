//! Metrics settings: the builder's, overridden by the environment.
//!
//! | variable | values | default |
//! |---|---|---|
//! | `OTEL_METRICS_EXPORTER` | comma-separated: `otlp`, `prometheus`; or `none` | none: no metrics (see below) |
//! | `OTEL_EXPORTER_PROMETHEUS_HOST` | the address `/metrics` is served on | `localhost` |
//! | `OTEL_EXPORTER_PROMETHEUS_PORT` | its port; under `RANK`, `LOCAL_RANK` is added | `9464` |
//! | `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT` | the full URL metrics are sent to; turns OTLP metrics on | none |
//! | `OTEL_EXPORTER_OTLP_ENDPOINT` | with `OTEL_METRICS_EXPORTER=otlp`: base URL, HTTP appends `/v1/metrics` | none |
//! | `OTEL_METRIC_EXPORT_INTERVAL` | milliseconds between OTLP exports | `60000` |
//! | `SPANLAB_METRICS_MAX_PATHS` | span paths with series of their own; the rest fold into `(other)` | `2000` |
//!
//! **Deviation from the specification**: its default for `OTEL_METRICS_EXPORTER` is
//! `otlp`. spanlab sends metrics only when asked (that variable, a metrics endpoint, or
//! the builder), because the common OTLP receivers of traces (Jaeger, Phoenix) take no
//! metrics, and a run pointed at one for its traces would otherwise send it refused
//! metrics every interval.
//!
//! **Ports under a launcher**: with `RANK` set, `LOCAL_RANK` is added to the port (the
//! variable's, the builder's or the default), so the ranks of one machine serve on
//! consecutive ports (9464, 9465, …) and every series carries a `rank` label.
//!
//! The OTLP transport variables (protocol, headers, timeout) are read as for traces,
//! with their `_METRICS_` forms first (`OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`, …).

use std::time::Duration;

use crate::config::{parse_positive, parsed, ConfigError, Env, Process};

/// The default Prometheus port (the specification's, and the one the OpenTelemetry
/// Prometheus exporters register).
pub(crate) const DEFAULT_PROMETHEUS_PORT: u16 = 9464;
/// The default cap on exported paths.
pub(crate) const DEFAULT_MAX_PATHS: usize = 2000;
/// The default OTLP export interval (the specification's).
pub(crate) const DEFAULT_INTERVAL: Duration = Duration::from_millis(60_000);

/// What the builder said about metrics.
#[derive(Clone, Debug, Default)]
pub(crate) struct MetricsSettings {
    /// `Builder::prometheus`: `host:port`.
    pub(crate) prometheus: Option<String>,
    /// `Builder::otlp_metrics`: OTLP metrics to the export endpoint.
    pub(crate) otlp: bool,
    pub(crate) max_paths: Option<usize>,
    pub(crate) interval: Option<Duration>,
}

/// Metrics, resolved: `None` from [`resolve`] when no exporter is asked for.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct MetricsConfig {
    /// Where `/metrics` is served: host and port.
    pub(crate) prometheus: Option<(String, u16)>,
    /// Whether OTLP metrics were asked for (the transport is resolved by the OTLP
    /// side, which only exists with the `otlp` feature).
    pub(crate) otlp: bool,
    pub(crate) max_paths: usize,
    pub(crate) interval: Duration,
    /// `RANK`: a label on every Prometheus series.
    pub(crate) rank: Option<u64>,
}

/// The exporters `OTEL_METRICS_EXPORTER` names.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Exporters {
    otlp: bool,
    prometheus: bool,
}

fn parse_exporters(value: &str) -> Result<Exporters, String> {
    let mut exporters = Exporters::default();
    let items: Vec<&str> = value.split(',').map(str::trim).collect();
    if items == ["none"] {
        return Ok(exporters);
    }
    for item in items {
        match item {
            "otlp" => exporters.otlp = true,
            "prometheus" => exporters.prometheus = true,
            _ => {
                return Err(format!(
                    "`{item}` is not a metrics exporter; expected `otlp`, `prometheus` \
                     (comma-separated) or `none`"
                ))
            }
        }
    }
    Ok(exporters)
}

/// Applies the environment over the builder's settings.
pub(crate) fn resolve(
    settings: &MetricsSettings,
    env: &Env,
    process: &Process,
) -> (Option<MetricsConfig>, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let listed = parsed(env, "OTEL_METRICS_EXPORTER", parse_exporters, &mut errors);
    let exporters = listed.unwrap_or(Exporters {
        otlp: settings.otlp || env.get("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT").is_some(),
        prometheus: settings.prometheus.is_some(),
    });
    let max_paths = parsed(
        env,
        "SPANLAB_METRICS_MAX_PATHS",
        parse_positive,
        &mut errors,
    )
    .or(settings.max_paths)
    .unwrap_or(DEFAULT_MAX_PATHS);
    let interval = parsed(
        env,
        "OTEL_METRIC_EXPORT_INTERVAL",
        parse_millis,
        &mut errors,
    )
    .or(settings.interval)
    .unwrap_or(DEFAULT_INTERVAL);
    let prometheus = exporters
        .prometheus
        .then(|| prometheus_address(settings, env, process, &mut errors))
        .flatten();
    let disabled = env
        .get("OTEL_SDK_DISABLED")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"));
    if disabled || (prometheus.is_none() && !exporters.otlp) {
        return (None, errors);
    }
    let config = MetricsConfig {
        prometheus,
        otlp: exporters.otlp,
        max_paths,
        interval,
        rank: process.rank,
    };
    (Some(config), errors)
}

/// Host and port of the Prometheus endpoint; `None` when the builder's address is
/// malformed (then with an error naming it).
fn prometheus_address(
    settings: &MetricsSettings,
    env: &Env,
    process: &Process,
    errors: &mut Vec<ConfigError>,
) -> Option<(String, u16)> {
    let (mut host, mut port) = ("localhost".to_owned(), DEFAULT_PROMETHEUS_PORT);
    if let Some(addr) = &settings.prometheus {
        match split_host_port(addr) {
            Ok((h, p)) => (host, port) = (h, p),
            Err(problem) => {
                errors.push(ConfigError::new(
                    "Builder::prometheus",
                    addr.clone(),
                    problem,
                ));
                return None;
            }
        }
    }
    if let Some(h) = env.get("OTEL_EXPORTER_PROMETHEUS_HOST") {
        host = h.to_owned();
    }
    if let Some(p) = parsed(env, "OTEL_EXPORTER_PROMETHEUS_PORT", parse_port, errors) {
        port = p;
    }
    if process.rank.is_some() {
        let local = process.local_rank.unwrap_or(0);
        match u16::try_from(u64::from(port) + local) {
            Ok(p) => port = p,
            Err(_) => errors.push(ConfigError::new(
                "LOCAL_RANK",
                local.to_string(),
                format!(
                    "the Prometheus port {port} plus LOCAL_RANK is beyond 65535; serving on {port}"
                ),
            )),
        }
    }
    Some((host, port))
}

/// `host:port`, `[v6]:port`.
fn split_host_port(addr: &str) -> Result<(String, u16), String> {
    const EXPECTED: &str = "expected `host:port`, such as `0.0.0.0:9464`";
    let (host, port) = addr.trim().rsplit_once(':').ok_or(EXPECTED)?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() {
        return Err(EXPECTED.into());
    }
    Ok((host.to_owned(), parse_port(port).map_err(|_| EXPECTED)?))
}

fn parse_port(value: &str) -> Result<u16, String> {
    value
        .trim()
        .parse::<u16>()
        .map_err(|_| "expected a port number from 0 to 65535".into())
}

fn parse_millis(value: &str) -> Result<Duration, String> {
    match value.trim().parse::<u64>() {
        Ok(n) if n > 0 => Ok(Duration::from_millis(n)),
        _ => Err("expected a positive whole number of milliseconds".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resolve_env(
        settings: &MetricsSettings,
        vars: &[(&str, &str)],
    ) -> (Option<MetricsConfig>, Vec<ConfigError>) {
        let env = Env::of(vars);
        let process = Process::of(&env, &mut Vec::new());
        resolve(settings, &env, &process)
    }

    #[test]
    fn metrics_are_off_unless_asked_for() {
        let (config, errors) = resolve_env(
            &MetricsSettings::default(),
            &[("OTEL_EXPORTER_OTLP_ENDPOINT", "http://h:4318")],
        );
        assert!(config.is_none());
        assert!(errors.is_empty());
    }

    #[test]
    fn prometheus_from_the_environment_with_defaults_and_rank_offset() {
        let none = MetricsSettings::default();
        let (config, _) = resolve_env(&none, &[("OTEL_METRICS_EXPORTER", "prometheus")]);
        let config = config.unwrap();
        assert_eq!(config.prometheus, Some(("localhost".into(), 9464)));
        assert!(!config.otlp);
        assert_eq!(config.max_paths, DEFAULT_MAX_PATHS);
        let (config, errors) = resolve_env(
            &none,
            &[
                ("OTEL_METRICS_EXPORTER", "otlp, prometheus"),
                ("OTEL_EXPORTER_PROMETHEUS_HOST", "0.0.0.0"),
                ("OTEL_EXPORTER_PROMETHEUS_PORT", "9000"),
                ("RANK", "5"),
                ("LOCAL_RANK", "1"),
                ("SPANLAB_METRICS_MAX_PATHS", "10"),
                ("OTEL_METRIC_EXPORT_INTERVAL", "100"),
            ],
        );
        assert!(errors.is_empty(), "{errors:?}");
        let config = config.unwrap();
        assert_eq!(config.prometheus, Some(("0.0.0.0".into(), 9001)));
        assert!(config.otlp);
        assert_eq!(config.rank, Some(5));
        assert_eq!(config.max_paths, 10);
        assert_eq!(config.interval, Duration::from_millis(100));
    }

    #[test]
    fn the_builder_asks_and_the_environment_wins() {
        let builder = MetricsSettings {
            prometheus: Some("127.0.0.1:1234".into()),
            ..MetricsSettings::default()
        };
        let (config, _) = resolve_env(&builder, &[]);
        assert_eq!(config.unwrap().prometheus, Some(("127.0.0.1".into(), 1234)));
        let (config, _) = resolve_env(&builder, &[("OTEL_METRICS_EXPORTER", "none")]);
        assert!(config.is_none());
        let (config, _) = resolve_env(&builder, &[("OTEL_EXPORTER_PROMETHEUS_PORT", "99")]);
        assert_eq!(config.unwrap().prometheus, Some(("127.0.0.1".into(), 99)));
        let (config, _) = resolve_env(
            &MetricsSettings::default(),
            &[(
                "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                "http://h:4318/v1/metrics",
            )],
        );
        assert!(config.unwrap().otlp);
    }

    #[test]
    fn bad_values_are_named_and_the_default_used() {
        let none = MetricsSettings::default();
        for (var, value) in [
            ("OTEL_METRICS_EXPORTER", "prometheus,statsd"),
            ("SPANLAB_METRICS_MAX_PATHS", "0"),
            ("OTEL_METRIC_EXPORT_INTERVAL", "soon"),
            ("OTEL_EXPORTER_PROMETHEUS_PORT", "70000"),
        ] {
            let mut vars = vec![(var, value)];
            if var != "OTEL_METRICS_EXPORTER" {
                vars.push(("OTEL_METRICS_EXPORTER", "prometheus"));
            }
            let (config, errors) = resolve_env(&none, &vars);
            assert_eq!(errors.len(), 1, "{var}: {errors:?}");
            assert_eq!(errors[0].source_name(), var);
            if var == "OTEL_METRICS_EXPORTER" {
                assert!(config.is_none(), "the default: no metrics");
            } else {
                let config = config.unwrap();
                assert_eq!(config.max_paths, DEFAULT_MAX_PATHS);
                assert_eq!(config.interval, DEFAULT_INTERVAL);
                assert_eq!(config.prometheus, Some(("localhost".into(), 9464)));
            }
        }
        let bad = MetricsSettings {
            prometheus: Some("9464".into()),
            ..MetricsSettings::default()
        };
        let (config, errors) = resolve_env(&bad, &[]);
        assert!(config.is_none());
        assert_eq!(errors[0].source_name(), "Builder::prometheus");
    }
}
