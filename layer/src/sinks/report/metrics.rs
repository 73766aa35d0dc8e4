//! The metrics section of a report: where live metrics went, and what failed.

use serde::{Deserialize, Serialize};

/// What the live-metrics exporters did (present when metrics are on; see
/// [`Builder::prometheus`](crate::Builder::prometheus)).
///
/// Nothing here ever blocked the program: a port that was taken or a receiver that
/// was down cost a warning and a count.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
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
    /// Adds a later run's section: counts add, the endpoints and targets of the first
    /// run that had one are kept, and the last error is the later one's if it has one.
    pub(crate) fn merge(&mut self, later: &MetricsReport) {
        self.prometheus = self.prometheus.take().or_else(|| later.prometheus.clone());
        self.otlp = self.otlp.take().or_else(|| later.otlp.clone());
        self.scrapes = self.scrapes.saturating_add(later.scrapes);
        self.failed_scrapes = self.failed_scrapes.saturating_add(later.failed_scrapes);
        self.otlp_exports = self.otlp_exports.saturating_add(later.otlp_exports);
        self.otlp_failed_exports = self
            .otlp_failed_exports
            .saturating_add(later.otlp_failed_exports);
        if later.last_error.is_some() {
            self.last_error = later.last_error.clone();
        }
    }

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
