//! Live metrics scraped by a real Prometheus (Debian's `prometheus` package, installed
//! by `scripts/test-all.sh`).
//!
//! The `metrics_workload` binary serves `/metrics` on a free port and keeps serving
//! after its work is done; a Prometheus of this test's own (free port, temporary
//! storage, a generated scrape config with a 1 s interval) scrapes it. Its HTTP API
//! must then give the calls of the workload's JSON report for
//! `spanlab_span_duration_seconds_count{path="epoch > forward"}`, and
//! `histogram_quantile(0.95, …)` over the scraped buckets must land in the exported
//! bucket that holds the report's p95 (the bucket error: Prometheus interpolates inside
//! the bucket). Prometheus is stopped by its PID.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A free loopback port (bound, then released).
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Kills the child (by its PID) when dropped, also when an assertion fails.
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// `GET http://127.0.0.1:{port}{path}`: the body, or `None` if the server is not up.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .ok()?;
    write!(
        stream,
        "GET {path} HTTP/1.0\r\nhost: 127.0.0.1\r\nconnection: close\r\n\r\n"
    )
    .ok()?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer).ok()?;
    let (head, body) = answer.split_once("\r\n\r\n")?;
    // `HTTP/1.0 200 OK` (Go answers in the request's version).
    let status = head.split_whitespace().nth(1)?;
    (status == "200").then(|| body.to_owned())
}

fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// An instant query's single value, if it has one.
fn query(port: u16, promql: &str) -> Option<f64> {
    let body = http_get(port, &format!("/api/v1/query?query={}", url_encode(promql)))?;
    let json: Value = serde_json::from_str(&body).ok()?;
    let result = json["data"]["result"].as_array()?;
    let [series] = &result[..] else { return None };
    series["value"][1].as_str()?.parse().ok()
}

/// The exported buckets' upper bounds in seconds, as spanlab documents them
/// (`sinks/metrics/buckets.rs`): `(4 + q)·2^(e−2) − 1` ns for e in 8..=45, then
/// `2^46 − 1` ns.
fn exported_bounds() -> Vec<f64> {
    let mut bounds: Vec<u64> = (8..=45u32)
        .flat_map(|e| (0..4u64).map(move |q| ((4 + q) << (e - 2)) - 1))
        .collect();
    bounds.push((1 << 46) - 1);
    bounds.into_iter().map(|ns| ns as f64 / 1e9).collect()
}

#[test]
fn prometheus_scrapes_the_exact_calls_and_a_p95_within_its_bucket() {
    let prometheus = which("prometheus").expect(
        "the `prometheus` binary (Debian package `prometheus`; scripts/test-all.sh installs it)",
    );
    let dir = tempfile::tempdir().unwrap();
    let (ready, done, json) = (
        dir.path().join("ready"),
        dir.path().join("done"),
        dir.path().join("report.json"),
    );
    let metrics_port = free_port();
    let mut workload = Command::new(env!("CARGO_BIN_EXE_metrics_workload"));
    for (key, _) in std::env::vars_os() {
        let name = key.to_string_lossy();
        if name.starts_with("OTEL_") || name.starts_with("SPANLAB_") || name == "RANK" {
            workload.env_remove(&key);
        }
    }
    let workload = workload
        .args([&ready, &done])
        .env("OTEL_METRICS_EXPORTER", "prometheus")
        .env("OTEL_EXPORTER_PROMETHEUS_HOST", "127.0.0.1")
        .env("OTEL_EXPORTER_PROMETHEUS_PORT", metrics_port.to_string())
        .env("SPANLAB_REPORT", "off")
        .env("SPANLAB_REPORT_JSON", &json)
        .spawn()
        .unwrap();
    let mut workload = Killed(workload);
    wait_for("the workload", Duration::from_secs(60), || ready.exists());
    let report: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let forward = report["paths"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"] == serde_json::json!(["epoch", "forward"]))
        .expect("the forward path in the report");
    let calls = forward["calls"].as_u64().unwrap();
    let p95 = forward["p95_ns"].as_f64().unwrap() / 1e9;
    assert_eq!(calls, 300);

    // Prometheus, on a free port with storage of its own, scraping every second.
    let web_port = free_port();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n\
             scrape_configs:\n  - job_name: spanlab\n    static_configs:\n\
             \x20     - targets: ['127.0.0.1:{metrics_port}']\n"
        ),
    )
    .unwrap();
    let server = Command::new(prometheus)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{web_port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("prometheus starts");
    let server = Killed(server);

    let count = r#"spanlab_span_duration_seconds_count{path="epoch > forward"}"#;
    let mut scraped = None;
    wait_for(
        "Prometheus to scrape the final count",
        Duration::from_secs(90),
        || {
            scraped = query(web_port, count);
            scraped == Some(calls as f64)
        },
    );
    assert_eq!(scraped, Some(calls as f64));
    let quantile =
        r#"histogram_quantile(0.95, spanlab_span_duration_seconds_bucket{path="epoch > forward"})"#;
    let estimate = query(web_port, quantile).expect("a p95 from Prometheus");
    let bounds = exported_bounds();
    let k = bounds.partition_point(|&b| b < p95);
    let (low, high) = (if k == 0 { 0.0 } else { bounds[k - 1] }, bounds[k]);
    assert!(
        low - 1e-12 <= estimate && estimate <= high + 1e-12,
        "Prometheus' p95 {estimate} s is outside the exported bucket ({low}, {high}] \
         that holds the report's p95 {p95} s"
    );
    // The labels a dashboard groups by.
    let calls_total = query(
        web_port,
        r#"sum(spanlab_span_calls_total{job="spanlab",span_name="forward"})"#,
    );
    assert_eq!(calls_total, Some(calls as f64));

    drop(server); // kill by PID
    std::fs::write(&done, b"done").unwrap();
    let status = workload.0.wait().unwrap();
    assert!(status.success(), "{status}");
    // The report written at exit counts the scrapes it served.
    let last: Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let metrics = &last["metrics"];
    assert_eq!(
        metrics["prometheus"].as_str(),
        Some(format!("http://127.0.0.1:{metrics_port}/metrics").as_str())
    );
    assert!(metrics["scrapes"].as_u64().unwrap() >= 1, "{metrics}");
}

/// The path of `program` on `PATH`.
fn which(program: &str) -> Option<std::path::PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|dir| dir.join(program))
        .find(|p| p.is_file())
}
