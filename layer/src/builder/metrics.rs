//! The builder's live-metrics options (the environment overrides them; see
//! `sinks/metrics/config.rs` for the variables).

use std::time::Duration;

use crate::Builder;

/// Live-metrics options.
impl Builder {
    /// Serves live metrics for Prometheus at `http://{addr}/metrics` (`addr` is
    /// `host:port`, e.g. `"0.0.0.0:9464"`), from a thread of its own. The same as
    /// `OTEL_METRICS_EXPORTER=prometheus` with `OTEL_EXPORTER_PROMETHEUS_HOST` and
    /// `_PORT`, which override it; under `RANK`, `LOCAL_RANK` is added to the port. A
    /// port that is taken costs a warning, and the run goes on.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// use std::io::{Read, Write};
    ///
    /// let (layer, guard) = spanlab::SpanLab::builder()
    ///     .ignore_env()
    ///     .report_to(spanlab::ReportTarget::Off)
    ///     .prometheus("127.0.0.1:0") // port 0: any free port
    ///     .build();
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info_span!("epoch").in_scope(|| tracing::info_span!("forward").in_scope(|| ()));
    /// });
    /// let url = guard.report().metrics.unwrap().prometheus.unwrap();
    /// let addr = url.trim_start_matches("http://").trim_end_matches("/metrics");
    /// let mut scrape = std::net::TcpStream::connect(addr)?;
    /// scrape.write_all(b"GET /metrics HTTP/1.1\r\nhost: x\r\n\r\n")?;
    /// let mut text = String::new();
    /// scrape.read_to_string(&mut text)?;
    /// assert!(text.contains(r#"spanlab_span_calls_total{path="epoch > forward",span_name="forward"} 1"#));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn prometheus(mut self, addr: impl Into<String>) -> Self {
        self.metrics.prometheus = Some(addr.into());
        self
    }

    /// The most span paths with metric series of their own (default 2,000;
    /// `SPANLAB_METRICS_MAX_PATHS`): later paths are folded into one
    /// `spanlab.path="(other)"` series, with one warning.
    pub fn metrics_max_paths(mut self, paths: usize) -> Self {
        self.metrics.max_paths = Some(paths.max(1));
        self
    }

    /// Sends live metrics over OTLP too, to the export endpoint
    /// (`Builder::otlp_endpoint` or the `OTEL_*` variables; HTTP appends
    /// `/v1/metrics`). The same as `OTEL_METRICS_EXPORTER=otlp`. Without the `otlp`
    /// feature, one line says it cannot.
    pub fn otlp_metrics(mut self, on: bool) -> Self {
        self.metrics.otlp = on;
        self
    }

    /// How often OTLP metrics are sent (default 60 s; `OTEL_METRIC_EXPORT_INTERVAL`).
    pub fn metrics_interval(mut self, interval: Duration) -> Self {
        self.metrics.interval = Some(interval.max(Duration::from_millis(1)));
        self
    }
}
