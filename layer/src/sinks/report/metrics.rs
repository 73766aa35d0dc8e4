//! The metrics section of a report: where live metrics went, and what failed.

/// What the live-metrics exporters did (present when metrics are on; see
/// [`Builder::prometheus`](crate::Builder::prometheus)).
///
/// Nothing here ever blocked the program: a port that was taken or a receiver that
/// was down cost a warning and a count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MetricsReport {
    /// The Prometheus endpoint served (`http://127.0.0.1:9464/metrics`), if one was
    /// asked for and could listen.
    pub prometheus: Option<String>,
    /// Scrapes of `/metrics` answered in full.
    pub scrapes: u64,
    /// Connections to the endpoint that were not a scrape answered in full (another
    /// path, a client that went away).
    pub failed_scrapes: u64,
    /// Where OTLP metrics were sent (`"http/protobuf http://…/v1/metrics"`), if on.
    pub otlp: Option<String>,
    /// OTLP export requests the receiver accepted.
    pub otlp_exports: u64,
    /// OTLP export requests that failed (receiver down or refusing, timed out).
    pub otlp_failed_exports: u64,
    /// What went wrong last: a port that was taken, the last failed export.
    pub last_error: Option<String>,
}

impl MetricsReport {
    pub(crate) fn render(&self, out: &mut String) {
        use std::fmt::Write;
        let n = super::text::thousands;
        let mut parts = Vec::new();
        if let Some(url) = &self.prometheus {
            parts.push(format!(
                "Prometheus {url}: {} scrapes ({} failed)",
                n(self.scrapes),
                n(self.failed_scrapes)
            ));
        }
        if let Some(target) = &self.otlp {
            parts.push(format!(
                "OTLP {target}: {} exports ({} failed)",
                n(self.otlp_exports),
                n(self.otlp_failed_exports)
            ));
        }
        if parts.is_empty() {
            parts.push("no exporter running".into());
        }
        let _ = writeln!(out, "metrics: {}", parts.join("; "));
        if let Some(e) = &self.last_error {
            let _ = writeln!(out, "  last metrics error: {e}");
        }
    }
}
