//! The text report's "open spans" section: per thread, the open spans indented by
//! depth, each with how long it has been open, its fields, and a STALL marker.
//!
//! ```text
//! open spans: 3 on 1 thread
//! thread main #1 (rank 3)
//!   train                          12.0 h
//!     step                         3.21 s   step=4410
//!       all_reduce             ≥ 5.00 min   bucket=7  STALL (p99 85.0 ms)
//! ```
//!
//! `≥` marks a time counted from the first sample that saw the span (it has not
//! completed an interval yet), a lower bound.

use std::fmt::Write;
use std::time::Duration;

use super::{OpenSince, OpenThread};

/// Appends the section to `out`, durations written by `human`; nothing when no span is
/// open.
pub(crate) fn render(out: &mut String, threads: &[OpenThread], human: fn(Duration) -> String) {
    let count: usize = threads.iter().map(|t| t.spans.len()).sum();
    if count == 0 {
        return;
    }
    let plural = if threads.len() == 1 { "" } else { "s" };
    let _ = writeln!(
        out,
        "\nopen spans: {count} on {} thread{plural}",
        threads.len()
    );
    for thread in threads {
        let name = thread.thread.as_deref().unwrap_or("<unnamed>");
        let _ = write!(out, "thread {name} #{}", thread.thread_number);
        // Which process: its rank, or in a merge of runs without ranks, the run.
        match (thread.rank, thread.run) {
            (Some(rank), _) => {
                let _ = writeln!(out, " (rank {rank})");
            }
            (None, 0) => out.push('\n'),
            (None, run) => {
                let _ = writeln!(out, " (run {run})");
            }
        }
        let rows: Vec<(String, String, String)> = thread
            .spans
            .iter()
            .map(|s| {
                let depth = s.path.len().saturating_sub(1);
                let name = s.path.last().map_or("", String::as_str);
                let label = format!("  {}{name}", "  ".repeat(depth));
                let bound = if s.since == OpenSince::FirstSeen {
                    "≥ "
                } else {
                    ""
                };
                let open = format!("{bound}{}", human(s.open));
                let mut rest: Vec<String> =
                    s.fields.iter().map(|(n, v)| format!("{n}={v}")).collect();
                if s.stalled {
                    let p99 = s
                        .p99
                        .map_or_else(String::new, |p| format!(" (p99 {})", human(p)));
                    rest.push(format!("STALL{p99}"));
                }
                (label, open, rest.join("  "))
            })
            .collect();
        let width = |f: fn(&(String, String, String)) -> &String| {
            rows.iter().map(|r| f(r).chars().count()).max().unwrap_or(0)
        };
        let (label_width, open_width) = (width(|r| &r.0), width(|r| &r.1));
        for (label, open, rest) in rows {
            let line = format!("{label:<label_width$}  {open:>open_width$}  {rest}");
            let _ = writeln!(out, "{}", line.trim_end());
        }
    }
}
