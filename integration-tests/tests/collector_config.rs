//! The Collector and Compose files in `collector-config/`, checked without Docker.
//!
//! Nothing in CI runs Docker, so a slip in these files would otherwise show only when
//! someone follows the README and gets an empty Jaeger. These tests parse both YAML
//! files and check what the Collector or Compose would reject, or silently get wrong:
//!
//! * `otel-collector.yaml`: every pipeline in `service.pipelines` names receivers,
//!   processors and exporters defined at top level (the Collector refuses to start
//!   otherwise), and `service.extensions` only defined extensions; `memory_limiter` is
//!   the first processor of every pipeline (it must refuse data before any other
//!   processor holds on to it); every defined component is used (the Collector
//!   ignores unused ones without a word: dead config that misleads the reader); no
//!   unknown top-level key; plus the settings the README relies on.
//! * `compose.yaml`: services `jaeger` and `otel-collector`, images pinned and named
//!   without a registry host; the Collector mounts the config file that is in the repo,
//!   at the path its `--config` names; the host of every OTLP exporter endpoint is a
//!   compose service, at a port that service has; the receivers listen on a non-local
//!   address at ports the Collector service publishes; host ports 4317, 4318, 14317,
//!   14318 and 16686 are published, none twice; `memory_limiter` fits under
//!   `mem_limit`.
//!
//! Each check returns a list of problems rather than panicking, so that the
//! `*_checker_catches_*` tests can feed it small broken variants of a valid inline
//! config and show that every kind of mistake is caught.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use yaml_rust2::{Yaml, YamlLoader};

/// Compose service names, as in `compose.yaml` and the README.
const JAEGER: &str = "jaeger";
const COLLECTOR: &str = "otel-collector";
/// Host ports the README's commands use: the Collector's OTLP, Jaeger's OTLP, the UI.
const HOST_PORTS: [u16; 5] = [4317, 4318, 14317, 14318, 16686];
/// Exporter types that send OTLP to an `endpoint` (old names and their v0.144 renames).
const OTLP_EXPORTERS: [&str; 4] = ["otlp", "otlp_grpc", "otlphttp", "otlp_http"];
/// The sections a Collector config may have at top level.
const TOP_LEVEL: [&str; 6] = [
    "receivers",
    "processors",
    "exporters",
    "connectors",
    "extensions",
    "service",
];
/// What a pipeline id may start with (`traces`, `traces/jaeger`, ...).
const SIGNALS: [&str; 4] = ["traces", "metrics", "logs", "profiles"];

fn config_dir() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../collector-config"))
}

fn collector_file() -> PathBuf {
    config_dir().join("otel-collector.yaml")
}

fn compose_file() -> PathBuf {
    config_dir().join("compose.yaml")
}

/// Parses YAML text holding exactly one document.
fn parse(text: &str) -> Yaml {
    let mut docs = YamlLoader::load_from_str(text).unwrap_or_else(|e| panic!("bad YAML: {e}"));
    assert_eq!(docs.len(), 1, "expected one YAML document");
    docs.remove(0)
}

fn load(path: &Path) -> Yaml {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    parse(&text)
}

/// The component type of an id: `otlp_grpc/jaeger` → `otlp_grpc`.
fn component_type(id: &str) -> &str {
    id.split('/').next().unwrap_or(id)
}

/// The string keys of a mapping; none for anything else (absent, null, a list).
fn keys(node: &Yaml) -> Vec<String> {
    node.as_hash()
        .map(|h| {
            h.keys()
                .filter_map(|k| k.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

/// The strings of a list of names; an absent node is an empty list, anything else
/// that is not a list of strings is a problem.
fn names(node: &Yaml, what: &str, problems: &mut Vec<String>) -> Vec<String> {
    match node {
        Yaml::BadValue | Yaml::Null => Vec::new(),
        Yaml::Array(items) => items
            .iter()
            .filter_map(|item| {
                let name = item.as_str().map(str::to_owned);
                if name.is_none() {
                    problems.push(format!("{what}: {item:?} is not a component name"));
                }
                name
            })
            .collect(),
        other => {
            problems.push(format!("{what} is not a list: {other:?}"));
            Vec::new()
        }
    }
}

/// The structural problems of a Collector config; empty when there are none.
fn collector_problems(cfg: &Yaml) -> Vec<String> {
    let mut problems = Vec::new();
    if cfg.as_hash().is_none() {
        return vec!["the Collector config is not a mapping".into()];
    }
    for key in keys(cfg) {
        if !TOP_LEVEL.contains(&key.as_str()) {
            problems.push(format!("unknown top-level key {key}"));
        }
    }
    let connectors = keys(&cfg["connectors"]);
    let mut used: BTreeMap<&str, BTreeSet<String>> = BTreeMap::new();

    let pipelines = cfg["service"]["pipelines"].as_hash();
    if pipelines.is_none_or(|p| p.is_empty()) {
        problems.push("service.pipelines is missing or empty".into());
    }
    for (name, pipeline) in pipelines.into_iter().flatten() {
        let name = name.as_str().unwrap_or("?");
        if !SIGNALS.contains(&component_type(name)) {
            problems.push(format!("pipeline {name} is not a signal ({SIGNALS:?})"));
        }
        for kind in ["receivers", "processors", "exporters"] {
            let ids = names(
                &pipeline[kind],
                &format!("pipeline {name} {kind}"),
                &mut problems,
            );
            if kind != "processors" && ids.is_empty() {
                problems.push(format!("pipeline {name} has no {kind}"));
            }
            let defined = keys(&cfg[kind]);
            let singular = kind.trim_end_matches('s');
            for id in ids {
                if defined.contains(&id) {
                    used.entry(kind).or_default().insert(id);
                } else if kind != "processors" && connectors.contains(&id) {
                    used.entry("connectors").or_default().insert(id);
                } else {
                    problems.push(format!(
                        "pipeline {name} names {singular} {id}, which is not defined under top-level {kind}"
                    ));
                }
            }
        }
        let processors = names(&pipeline["processors"], "", &mut Vec::new());
        match processors.first() {
            Some(first) if component_type(first) == "memory_limiter" => {}
            Some(first) => problems.push(format!(
                "pipeline {name}: first processor is {first}, not memory_limiter"
            )),
            None => problems.push(format!(
                "pipeline {name} has no processors; memory_limiter must come first"
            )),
        }
    }

    let defined = keys(&cfg["extensions"]);
    for id in names(
        &cfg["service"]["extensions"],
        "service.extensions",
        &mut problems,
    ) {
        if defined.contains(&id) {
            used.entry("extensions").or_default().insert(id);
        } else {
            problems.push(format!(
                "service.extensions names {id}, which is not defined under top-level extensions"
            ));
        }
    }

    for kind in [
        "receivers",
        "processors",
        "exporters",
        "connectors",
        "extensions",
    ] {
        for id in keys(&cfg[kind]) {
            if !used.get(kind).is_some_and(|u| u.contains(&id)) {
                problems.push(format!("{kind} {id} is defined but no pipeline uses it"));
            }
        }
    }
    problems
}

/// `host:port` of an endpoint such as `jaeger:4317` or `http://jaeger:4318/v1/traces`.
fn host_port(endpoint: &str) -> Option<(&str, u16)> {
    let rest = endpoint
        .split_once("://")
        .map_or(endpoint, |(_, rest)| rest);
    let authority = rest.split('/').next().unwrap_or(rest);
    let (host, port) = authority.rsplit_once(':')?;
    Some((host, port.parse().ok()?))
}

/// A `ports:` entry: the host port (none when Docker picks one) and the container port.
#[derive(Debug, PartialEq)]
struct Port {
    host: Option<u16>,
    container: u16,
}

/// Parses the short (`[ip:][host:]container[/proto]`, or a bare number) and the long
/// (`target:`, `published:`) syntax of a Compose port.
fn parse_port(entry: &Yaml) -> Result<Port, String> {
    let number = |s: &str| s.parse::<u16>().map_err(|_| format!("port {s:?}"));
    match entry {
        Yaml::Integer(n) => Ok(Port {
            host: None,
            container: u16::try_from(*n).map_err(|_| format!("port {n}"))?,
        }),
        Yaml::String(s) => {
            let s = s.split('/').next().unwrap_or(s);
            let parts: Vec<&str> = s.split(':').collect();
            match parts.as_slice() {
                [container] => Ok(Port {
                    host: None,
                    container: number(container)?,
                }),
                [host, container] | [_, host, container] => Ok(Port {
                    host: Some(number(host)?),
                    container: number(container)?,
                }),
                _ => Err(format!(
                    "port {s:?} (IPv6 host addresses are not parsed here)"
                )),
            }
        }
        Yaml::Hash(_) => {
            let container = match &entry["target"] {
                Yaml::Integer(n) => u16::try_from(*n).map_err(|_| format!("target {n}"))?,
                Yaml::String(s) => number(s)?,
                other => return Err(format!("port without target: {other:?}")),
            };
            let host = match &entry["published"] {
                Yaml::BadValue | Yaml::Null => None,
                Yaml::Integer(n) => Some(u16::try_from(*n).map_err(|_| format!("port {n}"))?),
                Yaml::String(s) => Some(number(s)?),
                other => return Err(format!("published {other:?}")),
            };
            Ok(Port { host, container })
        }
        other => Err(format!("port entry {other:?}")),
    }
}

/// A bind mount of a service: source as written, target in the container.
fn bind_mounts(service: &Yaml) -> Vec<(String, String)> {
    let mut mounts = Vec::new();
    for volume in service["volumes"].as_vec().into_iter().flatten() {
        let (source, target) = match volume {
            Yaml::String(s) => {
                let mut parts = s.split(':');
                match (parts.next(), parts.next()) {
                    (Some(source), Some(target)) => (source.to_owned(), target.to_owned()),
                    _ => continue,
                }
            }
            Yaml::Hash(_) => match (volume["source"].as_str(), volume["target"].as_str()) {
                (Some(source), Some(target)) => (source.to_owned(), target.to_owned()),
                _ => continue,
            },
            _ => continue,
        };
        // Named volumes are plain names; bind mounts are paths.
        if source.starts_with(['.', '/', '~']) {
            mounts.push((source, target));
        }
    }
    mounts
}

/// The paths a Collector command line passes as `--config` (`--config=X`, `--config X`,
/// `file:X`).
fn config_flags(service: &Yaml) -> Vec<String> {
    let words: Vec<String> = match &service["command"] {
        Yaml::String(s) => s.split_whitespace().map(str::to_owned).collect(),
        Yaml::Array(items) => items
            .iter()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect(),
        _ => Vec::new(),
    };
    let mut paths = Vec::new();
    for (i, word) in words.iter().enumerate() {
        let value = match word.strip_prefix("--config=") {
            Some(value) => Some(value),
            None if word == "--config" => words.get(i + 1).map(String::as_str),
            None => None,
        };
        if let Some(value) = value {
            paths.push(value.strip_prefix("file:").unwrap_or(value).to_owned());
        }
    }
    paths
}

/// A Compose memory size (`512m`, `1g`, `1gb`, bytes as a number) in MiB.
fn mebibytes(size: &Yaml) -> Option<u64> {
    match size {
        Yaml::Integer(bytes) => u64::try_from(*bytes).ok().map(|b| b >> 20),
        Yaml::String(s) => {
            let s = s.to_ascii_lowercase();
            let s = s
                .strip_suffix('b')
                .filter(|r| r.ends_with(['k', 'm', 'g']))
                .unwrap_or(&s);
            let (digits, scale): (&str, fn(u64) -> u64) = match s.char_indices().last()? {
                (i, 'k') => (&s[..i], |n| n >> 10),
                (i, 'm') => (&s[..i], |n| n),
                (i, 'g') => (&s[..i], |n| n << 10),
                _ => (s, |n| n >> 20),
            };
            digits.parse().ok().map(scale)
        }
        _ => None,
    }
}

/// The problems of a Compose file, given the Collector config it runs; `compose_dir` is
/// what relative paths resolve against, `collector_file` the config that must be
/// mounted.
fn compose_problems(
    compose: &Yaml,
    collector: &Yaml,
    compose_dir: &Path,
    collector_file: &Path,
) -> Vec<String> {
    let mut problems = Vec::new();
    let services = keys(&compose["services"]);
    for required in [JAEGER, COLLECTOR] {
        if !services.iter().any(|s| s == required) {
            problems.push(format!("no service {required}"));
        }
    }

    // Ports: container ports per service, and every published host port.
    let mut container_ports: BTreeMap<&str, BTreeSet<u16>> = BTreeMap::new();
    let mut published: BTreeMap<u16, Vec<&str>> = BTreeMap::new();
    for name in &services {
        let service = &compose["services"][name.as_str()];
        let ports = container_ports.entry(name).or_default();
        for entry in service["ports"].as_vec().into_iter().flatten() {
            match parse_port(entry) {
                Ok(port) => {
                    ports.insert(port.container);
                    if let Some(host) = port.host {
                        published.entry(host).or_default().push(name);
                    }
                }
                Err(e) => problems.push(format!("service {name}: unreadable {e}")),
            }
        }
        for entry in service["expose"].as_vec().into_iter().flatten() {
            if let Ok(port) = parse_port(entry) {
                ports.insert(port.container);
            }
        }

        // Images: a pinned tag, and a plain Docker image name (no registry host).
        match service["image"].as_str() {
            Some(image) => {
                let tag = image
                    .rsplit('/')
                    .next()
                    .and_then(|last| last.split_once(':'));
                if tag.is_none_or(|(_, tag)| tag.is_empty() || tag == "latest") {
                    problems.push(format!(
                        "service {name}: image {image} is not pinned to a tag"
                    ));
                }
                let first = image.split('/').next().unwrap_or_default();
                if image.contains('/') && (first.contains('.') || first.contains(':')) {
                    problems.push(format!(
                        "service {name}: image {image} names a registry host; use the plain Docker image name"
                    ));
                }
            }
            None => problems.push(format!("service {name} has no image")),
        }
    }
    for port in HOST_PORTS {
        if !published.contains_key(&port) {
            problems.push(format!("host port {port} is not published"));
        }
    }
    for (port, by) in &published {
        if by.len() > 1 {
            problems.push(format!("host port {port} is published twice, by {by:?}"));
        }
    }

    // The Collector service: mounts the repo's config where --config points, starts
    // after Jaeger, publishes its receivers' ports, has room for memory_limiter.
    let service = &compose["services"][COLLECTOR];
    let flags = config_flags(service);
    if flags.is_empty() {
        problems.push(format!("service {COLLECTOR}: no --config in its command"));
    }
    let wanted = collector_file.canonicalize().ok();
    let mut mounted = false;
    for (source, target) in bind_mounts(service) {
        let resolved = compose_dir.join(&source);
        match resolved.canonicalize() {
            Err(_) => problems.push(format!(
                "service {COLLECTOR}: mount source {source} does not exist ({})",
                resolved.display()
            )),
            Ok(path) if Some(&path) == wanted.as_ref() => {
                mounted = true;
                if !flags.contains(&target) {
                    problems.push(format!(
                        "service {COLLECTOR}: the config is mounted at {target}, not the --config path {flags:?}"
                    ));
                }
            }
            Ok(_) => {}
        }
    }
    if !mounted {
        problems.push(format!(
            "service {COLLECTOR} does not mount {}",
            collector_file.display()
        ));
    }
    let depends_on = match &service["depends_on"] {
        Yaml::Array(items) => items.iter().any(|i| i.as_str() == Some(JAEGER)),
        node @ Yaml::Hash(_) => keys(node).iter().any(|k| k == JAEGER),
        _ => false,
    };
    if !depends_on {
        problems.push(format!("service {COLLECTOR}: no depends_on {JAEGER}"));
    }
    let collector_ports = container_ports.get(COLLECTOR).cloned().unwrap_or_default();
    for (receiver, config) in collector["receivers"].as_hash().into_iter().flatten() {
        let receiver = receiver.as_str().unwrap_or("?");
        for (protocol, config) in config["protocols"].as_hash().into_iter().flatten() {
            let protocol = protocol.as_str().unwrap_or("?");
            let Some((host, port)) = config["endpoint"].as_str().and_then(host_port) else {
                problems.push(format!(
                    "receiver {receiver} {protocol}: no host:port endpoint"
                ));
                continue;
            };
            if matches!(host, "localhost" | "127.0.0.1" | "::1" | "[::1]") {
                problems.push(format!(
                    "receiver {receiver} {protocol} listens on localhost: unreachable through published ports"
                ));
            }
            if !collector_ports.contains(&port) {
                problems.push(format!(
                    "receiver port {port} is not published by {COLLECTOR}"
                ));
            }
        }
    }
    if let Some(limit) = mebibytes(&service["mem_limit"]) {
        for (id, config) in collector["processors"].as_hash().into_iter().flatten() {
            let is_limiter = id.as_str().map(component_type) == Some("memory_limiter");
            match config["limit_mib"].as_i64() {
                Some(mib) if is_limiter && u64::try_from(mib).is_ok_and(|m| m >= limit) => {
                    problems.push(format!(
                        "memory_limiter limit_mib {mib} is not below {COLLECTOR}'s mem_limit ({limit} MiB)"
                    ));
                }
                _ => {}
            }
        }
    }

    // Every OTLP exporter sends to a compose service, at a port that service has.
    let mut otlp_exporters = 0;
    for (id, config) in collector["exporters"].as_hash().into_iter().flatten() {
        let id = id.as_str().unwrap_or("?");
        if !OTLP_EXPORTERS.contains(&component_type(id)) {
            continue;
        }
        otlp_exporters += 1;
        let Some((host, port)) = config["endpoint"].as_str().and_then(host_port) else {
            problems.push(format!("exporter {id}: no host:port endpoint"));
            continue;
        };
        match container_ports.get(host) {
            None => problems.push(format!(
                "exporter {id}: host {host} is not a compose service ({services:?})"
            )),
            Some(ports) if !ports.contains(&port) => problems.push(format!(
                "exporter {id}: port {port} is not a port the service {host} has ({ports:?})"
            )),
            Some(_) => {}
        }
    }
    if otlp_exporters == 0 {
        problems.push("the Collector config has no OTLP exporter".into());
    }
    problems
}

fn assert_no_problems(what: &str, problems: &[String]) {
    assert!(problems.is_empty(), "{what}:\n  {}", problems.join("\n  "));
}

#[test]
fn collector_config_pipelines_use_defined_components_memory_limiter_first_no_dead_config() {
    assert_no_problems(
        "collector-config/otel-collector.yaml",
        &collector_problems(&load(&collector_file())),
    );
}

#[test]
fn collector_config_has_the_settings_the_readme_relies_on() {
    let cfg = load(&collector_file());
    let protocols = &cfg["receivers"]["otlp"]["protocols"];
    assert_eq!(protocols["grpc"]["endpoint"].as_str(), Some("0.0.0.0:4317"));
    assert_eq!(protocols["http"]["endpoint"].as_str(), Some("0.0.0.0:4318"));

    let limiter = &cfg["processors"]["memory_limiter"];
    assert!(limiter["check_interval"].as_str().is_some(), "{limiter:?}");
    let limit = limiter["limit_mib"].as_i64().expect("limit_mib");
    let spike = limiter["spike_limit_mib"]
        .as_i64()
        .expect("spike_limit_mib");
    assert!(0 < spike && spike < limit, "spike {spike} vs limit {limit}");
    assert!(keys(&cfg["processors"]).contains(&"batch".to_owned()));

    let jaeger = keys(&cfg["exporters"])
        .into_iter()
        .find(|id| id.ends_with("/jaeger"))
        .expect("an exporter named .../jaeger");
    assert!(
        OTLP_EXPORTERS[..2].contains(&component_type(&jaeger)),
        "{jaeger} is not OTLP gRPC"
    );
    let jaeger = &cfg["exporters"][jaeger.as_str()];
    assert_eq!(jaeger["tls"]["insecure"].as_bool(), Some(true));
    assert_eq!(
        cfg["exporters"]["debug"]["verbosity"].as_str(),
        Some("basic")
    );

    let traces = &cfg["service"]["pipelines"]["traces"];
    assert!(traces.as_hash().is_some(), "no traces pipeline");
}

#[test]
fn collector_config_has_a_metrics_pipeline_from_otlp_to_a_published_prometheus_endpoint() {
    let cfg = load(&collector_file());
    let metrics = &cfg["service"]["pipelines"]["metrics"];
    let list = |key: &str| -> Vec<String> {
        metrics[key]
            .as_vec()
            .into_iter()
            .flatten()
            .filter_map(|i| i.as_str().map(str::to_owned))
            .collect()
    };
    assert_eq!(list("receivers"), ["otlp"], "{metrics:?}");
    assert_eq!(
        list("processors").first().map(String::as_str),
        Some("memory_limiter")
    );
    let exporters = list("exporters");
    let prometheus = exporters
        .iter()
        .find(|id| component_type(id) == "prometheus")
        .expect("a prometheus exporter in the metrics pipeline");
    let endpoint = cfg["exporters"][prometheus.as_str()]["endpoint"]
        .as_str()
        .expect("the prometheus exporter's endpoint");
    let (host, port) = host_port(endpoint).expect("host:port");
    assert_eq!(host, "0.0.0.0", "reachable through the published port");
    let compose = load(&compose_file());
    let published = compose["services"][COLLECTOR]["ports"]
        .as_vec()
        .into_iter()
        .flatten()
        .filter_map(|entry| parse_port(entry).ok())
        .any(|p| p.container == port && p.host == Some(port));
    assert!(published, "{COLLECTOR} does not publish {port}");
    assert_eq!(
        cfg["exporters"][prometheus.as_str()]["resource_to_telemetry_conversion"]["enabled"]
            .as_bool(),
        Some(true)
    );
}

#[test]
fn compose_file_runs_jaeger_and_the_collector_with_this_config_and_the_readme_ports() {
    assert_no_problems(
        "collector-config/compose.yaml",
        &compose_problems(
            &load(&compose_file()),
            &load(&collector_file()),
            &config_dir(),
            &collector_file(),
        ),
    );
}

/// A small valid Collector config that the negative cases below break one way each.
const VALID_COLLECTOR: &str = r#"
extensions:
  health_check:
receivers:
  otlp:
    protocols:
      grpc:
        endpoint: 0.0.0.0:4317
      http:
        endpoint: 0.0.0.0:4318
processors:
  memory_limiter:
    check_interval: 1s
    limit_mib: 400
    spike_limit_mib: 100
  batch:
exporters:
  otlp_grpc/jaeger:
    endpoint: jaeger:4317
    tls:
      insecure: true
  debug:
service:
  extensions: [health_check]
  pipelines:
    traces:
      receivers: [otlp]
      processors: [memory_limiter, batch]
      exporters: [otlp_grpc/jaeger, debug]
"#;

/// A small valid Compose file (mixing the short and long syntaxes) for the cases below;
/// its mount resolves against the real `collector-config/`.
const VALID_COMPOSE: &str = r#"
services:
  jaeger:
    image: jaegertracing/jaeger:2.20.0
    ports:
      - "127.0.0.1:16686:16686"
      - "14317:4317"
      - "14318:4318/tcp"
  otel-collector:
    image: otel/opentelemetry-collector-contrib:0.155.0
    command: ["--config=/etc/otelcol-contrib/config.yaml"]
    volumes:
      - ./otel-collector.yaml:/etc/otelcol-contrib/config.yaml:ro
    ports:
      - "4317:4317"
      - target: 4318
        published: "4318"
    depends_on:
      jaeger:
        condition: service_started
"#;

/// `text` with `from` replaced by `to`; panics when `from` is not there, so that a case
/// cannot pass by not changing anything.
fn edit(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "the fixture has no {from:?}");
    text.replacen(from, to, 1)
}

fn assert_caught(case: &str, problems: &[String], expected: &str) {
    assert!(
        problems.iter().any(|p| p.contains(expected)),
        "{case}: expected a problem containing {expected:?}, got {problems:#?}"
    );
}

#[test]
fn collector_checker_passes_the_valid_fixture() {
    assert_no_problems(
        "VALID_COLLECTOR",
        &collector_problems(&parse(VALID_COLLECTOR)),
    );
}

#[test]
fn collector_checker_catches_undefined_components_wrong_order_and_dead_config() {
    let pipeline_exporters = "exporters: [otlp_grpc/jaeger, debug]";
    let pipeline_processors = "processors: [memory_limiter, batch]";
    let cases = [
        (
            "undefined exporter",
            pipeline_exporters,
            "exporters: [otlp_grpc/jaeger, debug, zipkin]",
            "names exporter zipkin, which is not defined under top-level exporters",
        ),
        (
            "undefined receiver",
            "receivers: [otlp]",
            "receivers: [otlp, jaeger]",
            "names receiver jaeger, which is not defined",
        ),
        (
            "undefined processor",
            pipeline_processors,
            "processors: [memory_limiter, batch, filter]",
            "names processor filter, which is not defined",
        ),
        (
            "memory_limiter second",
            pipeline_processors,
            "processors: [batch, memory_limiter]",
            "first processor is batch, not memory_limiter",
        ),
        (
            "no processors",
            pipeline_processors,
            "processors: []",
            "has no processors; memory_limiter must come first",
        ),
        (
            "no exporters",
            pipeline_exporters,
            "exporters: []",
            "pipeline traces has no exporters",
        ),
        (
            "unused processor",
            "  batch:\n",
            "  batch:\n  attributes:\n",
            "processors attributes is defined but no pipeline uses it",
        ),
        (
            "unused exporter",
            pipeline_exporters,
            "exporters: [otlp_grpc/jaeger]",
            "exporters debug is defined but no pipeline uses it",
        ),
        (
            "unused extension",
            "extensions: [health_check]",
            "extensions: []",
            "extensions health_check is defined but no pipeline uses it",
        ),
        (
            "undefined extension",
            "extensions: [health_check]",
            "extensions: [health_check, pprof]",
            "service.extensions names pprof",
        ),
        (
            "misspelt section",
            "\nexporters:\n",
            "\nexporter:\n",
            "unknown top-level key exporter",
        ),
        (
            "no pipelines",
            "  pipelines:\n",
            "  pipelinez:\n",
            "service.pipelines is missing or empty",
        ),
        (
            "pipeline not named after a signal",
            "    traces:\n",
            "    spans:\n",
            "pipeline spans is not a signal",
        ),
    ];
    for (case, from, to, expected) in cases {
        let broken = parse(&edit(VALID_COLLECTOR, from, to));
        assert_caught(case, &collector_problems(&broken), expected);
    }
}

#[test]
fn compose_checker_passes_the_valid_fixtures() {
    let problems = compose_problems(
        &parse(VALID_COMPOSE),
        &parse(VALID_COLLECTOR),
        &config_dir(),
        &collector_file(),
    );
    assert_no_problems("VALID_COMPOSE", &problems);
}

#[test]
fn compose_checker_catches_wrong_hosts_ports_mounts_and_images() {
    // (case, edits the Collector config rather than the Compose file, from, to, expected)
    let cases = [
        (
            "exporter to localhost",
            true,
            "endpoint: jaeger:4317",
            "endpoint: localhost:4317",
            "host localhost is not a compose service",
        ),
        (
            "exporter to a port Jaeger does not have",
            true,
            "endpoint: jaeger:4317",
            "endpoint: http://jaeger:4319",
            "port 4319 is not a port the service jaeger has",
        ),
        (
            "receiver on localhost",
            true,
            "0.0.0.0:4318",
            "localhost:4318",
            "receiver otlp http listens on localhost",
        ),
        (
            "receiver port not published",
            true,
            "0.0.0.0:4317",
            "0.0.0.0:4319",
            "receiver port 4319 is not published by otel-collector",
        ),
        (
            "UI port missing",
            false,
            "      - \"127.0.0.1:16686:16686\"\n",
            "",
            "host port 16686 is not published",
        ),
        (
            "Jaeger's OTLP on the Collector's host port",
            false,
            "\"14317:4317\"",
            "\"4317:4317\"",
            "host port 4317 is published twice",
        ),
        (
            "mount of a file that is not there",
            false,
            "./otel-collector.yaml:",
            "./otel-collector.yml:",
            "mount source ./otel-collector.yml does not exist",
        ),
        (
            "mount of another file",
            false,
            "./otel-collector.yaml:",
            "./compose.yaml:",
            "does not mount",
        ),
        (
            "mounted where --config does not look",
            false,
            "--config=/etc/otelcol-contrib/config.yaml",
            "--config=/etc/otelcol/config.yaml",
            "not the --config path",
        ),
        (
            "no --config",
            false,
            "    command: [\"--config=/etc/otelcol-contrib/config.yaml\"]\n",
            "",
            "no --config in its command",
        ),
        (
            "collector service renamed",
            false,
            "  otel-collector:\n",
            "  collector:\n",
            "no service otel-collector",
        ),
        (
            "no depends_on",
            false,
            "    depends_on:\n      jaeger:\n        condition: service_started\n",
            "",
            "no depends_on jaeger",
        ),
        (
            "unpinned image",
            false,
            "jaegertracing/jaeger:2.20.0",
            "jaegertracing/jaeger:latest",
            "image jaegertracing/jaeger:latest is not pinned",
        ),
        (
            "registry host",
            false,
            "image: jaegertracing/",
            "image: cr.jaegertracing.io/jaegertracing/",
            "names a registry host",
        ),
        (
            "memory_limiter above mem_limit",
            false,
            "    depends_on:\n",
            "    mem_limit: 256m\n    depends_on:\n",
            "limit_mib 400 is not below otel-collector's mem_limit (256 MiB)",
        ),
    ];
    for (case, in_collector, from, to, expected) in cases {
        let (compose, collector) = if in_collector {
            (VALID_COMPOSE.to_owned(), edit(VALID_COLLECTOR, from, to))
        } else {
            (edit(VALID_COMPOSE, from, to), VALID_COLLECTOR.to_owned())
        };
        let problems = compose_problems(
            &parse(&compose),
            &parse(&collector),
            &config_dir(),
            &collector_file(),
        );
        assert_caught(case, &problems, expected);
    }
}

#[test]
fn port_and_memory_syntaxes_parse() {
    let port = |text: &str| parse_port(&parse(text));
    let p = |host, container| Ok(Port { host, container });
    assert_eq!(port("\"127.0.0.1:14317:4317\""), p(Some(14317), 4317));
    assert_eq!(port("\"4318:4318/tcp\""), p(Some(4318), 4318));
    assert_eq!(port("4317"), p(None, 4317));
    assert_eq!(port("{target: 4317, published: 4317}"), p(Some(4317), 4317));
    assert!(port("\"4317-4318:4317-4318\"").is_err());

    let mib = |text: &str| mebibytes(&parse(text));
    assert_eq!(mib("512m"), Some(512));
    assert_eq!(mib("1g"), Some(1024));
    assert_eq!(mib("1gb"), Some(1024));
    assert_eq!(mib("2048k"), Some(2));
    assert_eq!(mib("1073741824"), Some(1024));

    assert_eq!(host_port("jaeger:4317"), Some(("jaeger", 4317)));
    assert_eq!(
        host_port("http://jaeger:4318/v1/traces"),
        Some(("jaeger", 4318))
    );
    assert_eq!(host_port("jaeger"), None);
}
