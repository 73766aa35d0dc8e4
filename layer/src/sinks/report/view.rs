//! A chosen view of a report: which paths the text shows, and in what order.
//!
//! The end-of-run text lists every path in tree order. After the run, a reader often
//! wants something narrower — the ten paths with the most self time, only what lies
//! under `epoch > backward`, nothing under 1 % of the run — which [`TextOptions`] says
//! and [`Report::select`] / [`Report::to_text_with`] apply. Selecting only drops and
//! reorders rows: every figure of a row kept is the report's, unchanged.
//!
//! A path's *share* is its total over the run's measured time: the sum of the totals of
//! the root paths (spans with no parent), the time the report accounts for.

use std::cmp::Reverse;
use std::fmt::Write;
use std::time::Duration;

use super::Report;
use crate::core::stats::PathStats;

/// The order of the rows of [`Report::to_text_with`]; every order but
/// [`SortBy::Tree`] is largest first, ties in tree order.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SortBy {
    /// Tree order: each path before its children (the end-of-run report's order).
    #[default]
    Tree,
    /// Total wall time, summed over calls.
    Total,
    /// Self time: time entered minus time in child spans, summed over calls.
    SelfTime,
    /// Mean wall time per call.
    Mean,
    /// 95th percentile of wall time per call.
    P95,
    /// Number of calls.
    Calls,
}

impl SortBy {
    /// The sort key's name as a command line spells it: `tree`, `total`, `self`,
    /// `mean`, `p95`, `calls`.
    ///
    /// ```
    /// assert_eq!(spanlab::report::SortBy::SelfTime.name(), "self");
    /// ```
    pub fn name(self) -> &'static str {
        match self {
            SortBy::Tree => "tree",
            SortBy::Total => "total",
            SortBy::SelfTime => "self",
            SortBy::Mean => "mean",
            SortBy::P95 => "p95",
            SortBy::Calls => "calls",
        }
    }

    /// The key of `p`: larger sorts first.
    fn key(self, p: &PathStats) -> u128 {
        match self {
            SortBy::Tree => 0,
            SortBy::Total => p.total.as_nanos(),
            SortBy::SelfTime => p.self_time.as_nanos(),
            SortBy::Mean => p.mean.as_nanos(),
            SortBy::P95 => p.p95.as_nanos(),
            SortBy::Calls => u128::from(p.calls),
        }
    }
}

/// Which paths [`Report::to_text_with`] shows, and in what order. The default shows
/// every path in tree order, as [`Report::to_text`] does.
///
/// ```
/// use spanlab::report::{SortBy, TextOptions};
///
/// let options = TextOptions {
///     sort: SortBy::SelfTime,
///     top: Some(10),
///     min_share_percent: 1.0,
///     path_prefix: Some("epoch".into()),
///     ..TextOptions::default()
/// };
/// assert_eq!(options.top, Some(10));
/// ```
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TextOptions {
    /// The row order.
    pub sort: SortBy,
    /// At most this many rows (after filtering and sorting); `None`: all.
    pub top: Option<usize>,
    /// Drop paths whose total is below this percentage of the run's measured time
    /// ([`Report::measured_time`]); `0.0` keeps all.
    pub min_share_percent: f64,
    /// Keep only this path and the paths under it: span names separated by `>` (or
    /// `;`), spaces around them ignored — `epoch > backward`.
    pub path_prefix: Option<String>,
}

impl TextOptions {
    /// Whether these options show every path in tree order.
    fn is_everything(&self) -> bool {
        self.sort == SortBy::Tree
            && self.top.is_none()
            && self.min_share_percent <= 0.0
            && self.path_prefix.is_none()
    }
}

impl Report {
    /// The measured time the shares of [`TextOptions::min_share_percent`] are taken of:
    /// the sum of the root paths' totals.
    ///
    /// ```
    /// let (_layer, guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
    /// assert_eq!(guard.report().measured_time(), std::time::Duration::ZERO);
    /// ```
    pub fn measured_time(&self) -> Duration {
        self.paths
            .iter()
            .filter(|p| p.depth() == 1)
            .map(|p| p.total)
            .sum()
    }

    /// This report with only the paths `options` choose, in their order; every other
    /// part (runs, seeds, GPU...) unchanged.
    ///
    /// ```
    /// use spanlab::report::{SortBy, TextOptions};
    ///
    /// let (_layer, guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
    /// let report = guard.report();
    /// let top = report.select(&TextOptions { sort: SortBy::Total, top: Some(3), ..TextOptions::default() });
    /// assert!(top.paths.len() <= 3);
    /// ```
    pub fn select(&self, options: &TextOptions) -> Report {
        let measured = self.measured_time().as_nanos() as f64;
        let prefix: Option<Vec<&str>> = options.path_prefix.as_deref().map(split_prefix);
        let mut paths: Vec<&PathStats> = self
            .paths
            .iter()
            .filter(|p| prefix.as_ref().is_none_or(|names| starts_with(p, names)))
            .filter(|p| {
                options.min_share_percent <= 0.0
                    || (measured > 0.0
                        && p.total.as_nanos() as f64 * 100.0 / measured
                            >= options.min_share_percent)
            })
            .collect();
        if options.sort != SortBy::Tree {
            // Stable: ties keep tree order.
            paths.sort_by_key(|p| Reverse(options.sort.key(p)));
        }
        if let Some(top) = options.top {
            paths.truncate(top);
        }
        let mut selected = self.clone();
        selected.paths = paths.into_iter().cloned().collect();
        selected
    }

    /// The text report of the paths `options` choose ([`Report::select`]), with a line
    /// that says what was left out; with the default options, exactly
    /// [`Report::to_text`].
    ///
    /// ```
    /// use spanlab::report::{SortBy, TextOptions};
    ///
    /// let (_layer, guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
    /// let report = guard.report();
    /// assert_eq!(report.to_text_with(&TextOptions::default()), report.to_text());
    /// let text = report.to_text_with(&TextOptions { sort: SortBy::Mean, ..TextOptions::default() });
    /// assert!(text.contains("sorted by mean"));
    /// ```
    pub fn to_text_with(&self, options: &TextOptions) -> String {
        if options.is_everything() {
            return self.to_text();
        }
        let selected = self.select(options);
        let mut out = selected.to_text();
        let mut how = vec![format!("sorted by {}", options.sort.name())];
        if let Some(prefix) = &options.path_prefix {
            how.push(format!("under {:?}", split_prefix(prefix).join(" > ")));
        }
        if options.min_share_percent > 0.0 {
            how.push(format!(
                "at least {}% of {} measured",
                options.min_share_percent,
                human_duration(self.measured_time())
            ));
        }
        if let Some(top) = options.top {
            how.push(format!("top {top}"));
        }
        let _ = writeln!(
            out,
            "(showing {} of {} paths: {})",
            selected.paths.len(),
            self.paths.len(),
            how.join(", ")
        );
        out
    }
}

/// `"epoch > backward"` (or `"epoch;backward"`) → `["epoch", "backward"]`.
fn split_prefix(prefix: &str) -> Vec<&str> {
    prefix
        .split(['>', ';'])
        .map(str::trim)
        .filter(|n| !n.is_empty())
        .collect()
}

fn starts_with(p: &PathStats, names: &[&str]) -> bool {
    p.path.len() >= names.len() && p.path.iter().zip(names).all(|(a, b)| a == b)
}

/// A duration as the text report writes it, three significant digits and a unit:
/// `812 ns`, `12.3 µs`, `4.56 ms`, `1.23 s`, `2m05s`.
///
/// ```
/// use std::time::Duration;
/// assert_eq!(spanlab::report::human_duration(Duration::from_micros(12_345)), "12.3 ms");
/// ```
pub fn human_duration(d: Duration) -> String {
    super::text::human(d)
}

/// A count as the text report writes it, with thousands separators: `1,234,567`.
///
/// ```
/// assert_eq!(spanlab::report::thousands(1_234_567), "1,234,567");
/// ```
pub fn thousands(n: u64) -> String {
    super::text::thousands(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(text: &str) -> Vec<&str> {
        text.lines()
            .skip(2)
            .take_while(|l| !l.starts_with('('))
            .map(|l| l.split("  ").next().unwrap())
            .collect()
    }

    #[test]
    fn sorting_filtering_and_top_choose_rows() {
        let report = crate::sinks::report::tests::sample_report();
        // Totals: epoch 1200 ms, forward 700 ms, backward 400 ms; self: 100, 700, 0.
        let by_self = TextOptions {
            sort: SortBy::SelfTime,
            ..TextOptions::default()
        };
        let text = report.to_text_with(&by_self);
        assert_eq!(
            rows(&text),
            ["epoch > forward;odd", "epoch", "epoch > backward"],
            "{text}"
        );
        assert!(
            text.ends_with("(showing 3 of 3 paths: sorted by self)\n"),
            "{text}"
        );
        let top = TextOptions {
            sort: SortBy::Total,
            top: Some(2),
            ..TextOptions::default()
        };
        assert_eq!(
            rows(&report.to_text_with(&top)),
            ["epoch", "epoch > forward;odd"]
        );
        // 400 ms of 1200 ms measured is 33 %: kept at 30 %, dropped at 40 %.
        let share = |min_share_percent| TextOptions {
            min_share_percent,
            ..TextOptions::default()
        };
        assert_eq!(report.select(&share(30.0)).paths.len(), 3);
        assert_eq!(report.select(&share(40.0)).paths.len(), 2);
        let under = TextOptions {
            path_prefix: Some(" epoch >backward ".into()),
            ..TextOptions::default()
        };
        assert_eq!(rows(&report.to_text_with(&under)), ["epoch > backward"]);
        let none = TextOptions {
            path_prefix: Some("nothing".into()),
            ..TextOptions::default()
        };
        assert!(report.select(&none).paths.is_empty());
    }

    #[test]
    fn default_options_are_the_plain_report() {
        let report = crate::sinks::report::tests::sample_report();
        assert_eq!(
            report.to_text_with(&TextOptions::default()),
            report.to_text()
        );
        assert_eq!(report.measured_time(), report.paths[0].total);
    }
}
