//! The open-span watcher: samples the open spans, remembers since when each was seen,
//! and flags stalls.
//!
//! Its memory, one entry per open span, holds when a sample first saw the span and
//! whether its stall was said; entries of spans no longer open are dropped at every
//! sample, so it never holds more than the spans the core's tables can list.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use super::fields::FieldTables;
use super::{OpenSince, OpenSpan, OpenThread, STALL_MIN};
use crate::core::paths::{self, PathId};
use crate::core::Core;

/// What the watcher remembers of one open span.
struct Seen {
    /// The raw clock reading of the first sample that saw it.
    at: u64,
    path: PathId,
    /// Its stall was said.
    warned: bool,
}

/// The watcher's memory, between samples.
#[derive(Default)]
pub(crate) struct Watch {
    seen: HashMap<u64, Seen>,
}

/// One sample: the open spans, and the stalls to say (each once).
pub(crate) struct Sample {
    pub(crate) threads: Vec<OpenThread>,
    pub(crate) stalls: Vec<String>,
}

/// Where the sample's threads come from.
pub(crate) struct RunTag {
    /// The index of the run in its report.
    pub(crate) run: usize,
    pub(crate) rank: Option<u64>,
}

impl Watch {
    /// Samples the open spans now: their fields from `fields`, stalls by `factor`.
    pub(crate) fn sample(
        &mut self,
        core: &Core,
        fields: &FieldTables,
        factor: f64,
        tag: RunTag,
    ) -> Sample {
        let live = core.threads.live_spans();
        let now = core.clock.raw();
        let entries = core.paths.entries();
        let mut position = vec![usize::MAX; entries.len()];
        for (i, id) in paths::tree_order(&entries).into_iter().enumerate() {
            position[id as usize] = i;
        }
        let mut fields: HashMap<u64, (Vec<(String, String)>, bool)> = fields
            .snapshot()
            .into_iter()
            .map(|f| (f.id, (f.pairs, f.cut)))
            .collect();
        let mut p99s: HashMap<PathId, Option<Duration>> = HashMap::new();
        let mut open_now = HashSet::new();
        let mut stalls = Vec::new();
        let mut threads = Vec::new();
        for thread in live {
            let mut spans = Vec::with_capacity(thread.spans.len());
            for span in thread.spans {
                if entries.len() <= span.path as usize {
                    continue; // a path interned after the copy: the next sample has it
                }
                open_now.insert(span.id);
                let seen = self.seen.entry(span.id).or_insert(Seen {
                    at: now,
                    path: span.path,
                    warned: false,
                });
                if seen.path != span.path {
                    // Another span under a reused id (a registry that does not tag ids
                    // with generations): start over.
                    *seen = Seen {
                        at: now,
                        path: span.path,
                        warned: false,
                    };
                }
                let (since, start) = match span.first_enter {
                    Some(first) => (OpenSince::FirstEnter, first),
                    None => (OpenSince::FirstSeen, seen.at),
                };
                let open = Duration::from_nanos(core.clock.nanos_between(start, now));
                let p99 = *p99s.entry(span.path).or_insert_with(|| core.p99(span.path));
                let stalled = is_stalled(open, p99, factor);
                let path: Vec<String> = paths::names(&entries, span.path)
                    .into_iter()
                    .map(str::to_owned)
                    .collect();
                if stalled && !seen.warned {
                    seen.warned = true;
                    stalls.push(stall_message(&path, open, p99, factor, &thread.name));
                }
                let (fields, fields_cut) = fields.remove(&span.id).unwrap_or_default();
                spans.push((
                    position[span.path as usize],
                    OpenSpan {
                        path,
                        span_id: span.id,
                        fields,
                        fields_cut,
                        open,
                        since,
                        p99,
                        stalled,
                    },
                ));
            }
            if spans.is_empty() {
                continue;
            }
            spans.sort_by(|(a, x), (b, y)| a.cmp(b).then(y.open.cmp(&x.open)));
            threads.push(OpenThread {
                run: tag.run,
                rank: tag.rank,
                thread: thread.name,
                thread_number: thread.number,
                spans: spans.into_iter().map(|(_, s)| s).collect(),
            });
        }
        threads.sort_by_key(|t| t.thread_number);
        self.seen.retain(|id, _| open_now.contains(id));
        Sample { threads, stalls }
    }

    /// Spans remembered (tests: the memory is pruned).
    #[cfg(test)]
    pub(crate) fn remembered(&self) -> usize {
        self.seen.len()
    }
}

/// The stall rule: open longer than `factor` × p99, and than [`STALL_MIN`]; never for
/// a path without a p99.
fn is_stalled(open: Duration, p99: Option<Duration>, factor: f64) -> bool {
    let Some(p99) = p99 else { return false };
    open > STALL_MIN && open.as_secs_f64() > factor * p99.as_secs_f64()
}

fn stall_message(
    path: &[String],
    open: Duration,
    p99: Option<Duration>,
    factor: f64,
    thread: &Option<String>,
) -> String {
    format!(
        "span `{}` on thread {} has been open for {:.1} s, more than {factor} times its \
         path's p99 ({:?}): stalled?",
        path.join(" > "),
        thread.as_deref().unwrap_or("<unnamed>"),
        open.as_secs_f64(),
        p99.unwrap_or_default(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_rule_needs_a_p99_the_factor_and_ten_seconds() {
        let s = Duration::from_secs;
        assert!(!is_stalled(s(3600), None, 100.0), "no p99: never");
        assert!(is_stalled(s(11), Some(Duration::from_millis(100)), 100.0));
        assert!(
            !is_stalled(s(9), Some(Duration::from_millis(1)), 100.0),
            "under 10 s"
        );
        assert!(!is_stalled(s(99), Some(s(1)), 100.0), "under factor × p99");
        assert!(is_stalled(s(101), Some(s(1)), 100.0));
    }
}
