//! A cross-thread readout of the spans alive now: what the open-span sink lists.
//!
//! Each thread's live spans sit in its own table of [`Slot`]s (see the parent module).
//! Another thread can read them at any time under rule 6: every field is an atomic, so
//! a read is never torn; `id` is read with acquire, then the fields, then `id` again,
//! and a slot whose `id` changed in between is skipped (its span closed, or the slot
//! went to a new span, meanwhile). The owner never waits for the reader.
//!
//! What the readout cannot see:
//!
//! * spans evicted from their owner's table (more than [`LOCAL_CAPACITY`] of one
//!   thread's spans alive at once: only its newest are in slots) — their state is in a
//!   registry extension, behind a lock the reader does not take;
//! * a span's current entry: the entered-span stack is the thread's private state.
//!   `first_enter` is readable once the span has completed an interval (the owner
//!   writes it at the first exit); before, the readout says "not entered yet".
//!
//! Parts other threads added to a span (an async task polled on another worker) are in
//! the extension too; a span is listed under the thread that created it.

use std::sync::atomic::{fence, Ordering::*};

use super::{Slot, ThreadState, Threads, ENTERED, RIDERS_SHIFT};
use crate::core::paths::PathId;
use crate::core::rider::Bits;
use crate::core::sync::LockUnpoisoned;

#[cfg(doc)]
use super::LOCAL_CAPACITY;

/// One live span, as another thread sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct LiveSpan {
    /// The span's id (`tracing`'s, which the registry never reuses for a later span
    /// until its generation counter wraps).
    pub(crate) id: u64,
    pub(crate) path: PathId,
    /// The raw clock reading of its first enter, once it has completed an interval;
    /// `None` while it has not (never entered, or still in its first entry).
    pub(crate) first_enter: Option<u64>,
    /// The rider bits it carries (0 for a span no rider took on: the fast paths').
    pub(crate) riders: Bits,
}

/// The live spans of one thread, as far as its table shows them.
#[derive(Clone, Debug)]
pub(crate) struct LiveThread {
    /// The thread's name (`None`: an unnamed thread).
    pub(crate) name: Option<String>,
    /// The thread's id as Rust numbers it (`ThreadId`), unique in the process.
    pub(crate) number: u64,
    pub(crate) spans: Vec<LiveSpan>,
}

impl Slot {
    /// The span in this slot, read from another thread (rule 6): `None` if the slot is
    /// free, or changed while it was read.
    fn peek(&self) -> Option<LiveSpan> {
        let id = self.id.load(Acquire);
        if id == 0 {
            return None;
        }
        let path = self.path.load(Relaxed);
        let flags = self.flags.load(Relaxed);
        let first_enter = self.first_enter.load(Relaxed);
        // The field loads above must not move below the second read of `id`.
        fence(Acquire);
        if self.id.load(Relaxed) != id {
            return None;
        }
        Some(LiveSpan {
            id,
            path,
            first_enter: (flags & ENTERED != 0).then_some(first_enter),
            riders: (flags >> RIDERS_SHIFT) as Bits,
        })
    }
}

impl Threads {
    /// Every thread's live spans that sit in its table, now (rule 6). Threads with none
    /// are left out. Allocates: for readers on a background thread, never a callback.
    pub(crate) fn live_spans(&self) -> Vec<LiveThread> {
        self.iter()
            .filter_map(|thread| {
                let spans: Vec<LiveSpan> = thread.slots.iter().filter_map(Slot::peek).collect();
                (!spans.is_empty()).then(|| {
                    let label = thread.label.lock_unpoisoned();
                    LiveThread {
                        name: label.name.clone(),
                        number: label.number,
                        spans,
                    }
                })
            })
            .collect()
    }
}

/// Which thread a [`ThreadState`] belongs to, as the readout names it.
#[derive(Default)]
pub(crate) struct ThreadLabel {
    id: Option<std::thread::ThreadId>,
    name: Option<String>,
    number: u64,
}

/// Labels `state` with the calling thread, which just reached it (its first use of it:
/// the state may be a new one, or an exited thread's, recycled).
pub(super) fn label(state: &ThreadState) {
    let thread = std::thread::current();
    let mut label = state.label.lock_unpoisoned();
    if label.id == Some(thread.id()) {
        return;
    }
    // `ThreadId::as_u64` is unstable; its `Debug` is `ThreadId(N)`.
    let debug = format!("{:?}", thread.id());
    *label = ThreadLabel {
        id: Some(thread.id()),
        name: thread.name().map(str::to_owned),
        number: debug
            .trim_start_matches("ThreadId(")
            .trim_end_matches(')')
            .parse()
            .unwrap_or(0),
    };
}

#[cfg(test)]
mod tests {
    use crate::core::clock::Clock;
    use crate::riders::gpu::GpuConfig;
    use crate::test_support::layer_with;
    use tracing::info_span;
    use tracing_subscriber::prelude::*;

    #[test]
    fn the_readout_lists_live_spans_with_first_enter_once_an_interval_completed() {
        let (clock, mock) = Clock::mock();
        let (layer, profile) = layer_with(clock, GpuConfig::default());
        let lab = profile.assembly().clone();
        let subscriber = tracing_subscriber::registry().with(layer);
        tracing::subscriber::with_default(subscriber, || {
            mock.increment(100u64);
            let outer = info_span!("outer");
            outer.in_scope(|| mock.increment(5u64)); // one interval: first_enter 100
            let _outer = outer.enter();
            let inner = info_span!("inner").entered(); // in its first entry
            let live = lab.core.threads.live_spans();
            assert_eq!(live.len(), 1);
            let mut spans = live[0].spans.clone();
            spans.sort_by_key(|s| s.first_enter);
            assert_eq!(spans.len(), 2);
            assert_eq!(spans[0].first_enter, None);
            assert_eq!(spans[0].id, inner.id().unwrap().into_u64());
            assert_eq!(spans[1].first_enter, Some(100));
            drop(inner);
            // Closed: no longer listed.
            assert_eq!(lab.core.threads.live_spans()[0].spans.len(), 1);
        });
        assert!(lab.core.threads.live_spans().is_empty());
    }

    #[test]
    fn a_recycled_thread_state_is_labelled_with_its_new_thread() {
        // A thread's state is recycled when the next thread to start takes the id the
        // first one freed; a test running in parallel may take it first, so try again
        // with a fresh layer until a state was recycled.
        let recycled = (0..20).any(|_| {
            let (layer, profile) = layer_with(Clock::new(), GpuConfig::default());
            let lab = profile.assembly().clone();
            let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
            let run = |name: &str, keep_open: bool| {
                let dispatch = dispatch.clone();
                let lab = lab.clone();
                std::thread::Builder::new()
                    .name(name.into())
                    .spawn(move || {
                        tracing::dispatcher::with_default(&dispatch, || {
                            let _span = info_span!("work").entered();
                            keep_open.then(|| lab.core.threads.live_spans())
                        })
                    })
                    .unwrap()
                    .join()
                    .unwrap()
            };
            run("first", false);
            let live = run("second", true).unwrap();
            assert_eq!(live.len(), 1);
            assert_eq!(live[0].name.as_deref(), Some("second"));
            // One state for two threads: the first thread's went to the second.
            lab.core.threads.iter().count() == 1
        });
        assert!(recycled, "no thread state was recycled in 20 tries");
    }
}
