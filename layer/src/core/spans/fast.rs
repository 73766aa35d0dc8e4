//! The four callbacks' common case, written without a single call.
//!
//! Most spans are created, entered once, exited and closed on one thread, and carry
//! no rider (`crate::core::rider`: no seeded scope, no GPU reading, no export record). For those, each function
//! here does the whole of its callback's work; for anything else it changes nothing
//! and returns `false`, and the general path in `crate::core::layer` does the work. Either
//! the whole callback happens here or none of it: every check comes before the first
//! write.
//!
//! Why "without a call": a function that calls nothing (panics aside, which never
//! return) needs no callee-saved registers and no stack frame, so the compiler inlines
//! it into tracing-subscriber's `Layered` dispatch at no cost beyond its own
//! instructions, where four out-of-line callbacks would each pay a prologue, an
//! epilogue and spills (`layer/benches/README.md` has the callgrind counts). So: no `Vec::push` (it may grow; the callers check the
//! capacity and write in place), no `std::thread::panicking()` after a write, no
//! first-use initialization (`Threads::owned_if_known`, `SlotIndex::cached`).

use std::sync::atomic::Ordering::{Relaxed, Release};

use tracing_core::Metadata;

use super::{Frame, Owned, ENTERED, PANICKED, RIDERS_SHIFT};
use crate::core::rider::SpanWord;
use crate::core::stats::CallSample;

/// Appends `value` to `vec`, which the caller saw has room: no growth, so no call.
/// Without room (a broken caller), `value` is dropped, and debug builds panic.
#[inline(always)]
fn push_in_place<T>(vec: &mut Vec<T>, value: T) {
    let len = vec.len();
    let Some(spare) = vec.spare_capacity_mut().first_mut() else {
        debug_assert!(false, "push_in_place without room");
        return;
    };
    spare.write(value);
    // SAFETY: the element at `len`, within the capacity, was just initialized.
    unsafe { vec.set_len(len + 1) };
}

impl Owned<'_> {
    /// `on_new_span` for a span whose contextual parent is on top of this thread's
    /// stack and owned here, whose path this thread has interned before, whose callsite
    /// no rider is interested in, when no rider sees every span and the thread's table
    /// has room.
    #[inline(always)]
    pub(crate) fn new_span_in_place(&mut self, key: u64, meta: &'static Metadata<'static>) -> bool {
        let Some(Ok(parent)) = self.top_path() else {
            return false;
        };
        let Some((path, 0)) = self.private.paths.get(Some(parent), meta) else {
            return false;
        };
        let private = &mut *self.private;
        if private.live.len() == private.live.capacity() {
            return false;
        }
        let Some(index) = private.free.pop() else {
            return false;
        };
        let slot = &self.state.slots[index as usize];
        slot.init(path, 0, SpanWord::NONE);
        slot.foreign.store(false, Relaxed);
        slot.id.store(key, Release); // rule 1: publish after the fields
        push_in_place(&mut private.live, (key, index)); // room: checked above
        true
    }

    /// `on_enter` of a span not entered on this thread already, while no span with
    /// riders that enter is alive, when the stack has room: pushes its frame, entered at the
    /// time `now()` gives (read last, after the checks).
    #[inline(always)]
    pub(crate) fn enter_in_place(&mut self, key: u64, now: impl FnOnce() -> u64) -> bool {
        let frames = &mut self.private.frames;
        if frames.len() == frames.capacity() || frames.iter().any(|f| f.id == key) {
            return false;
        }
        push_in_place(frames, Frame::entered(key, now(), false, 0)); // room: checked above
        true
    }

    /// `on_exit` of the span on top of this thread's stack, entered once and owned
    /// here, without riders, on a thread that is not panicking.
    #[inline(always)]
    pub(crate) fn exit_in_place(&mut self, key: u64, now: u64) -> bool {
        if std::thread::panicking() {
            return false;
        }
        let private = &mut *self.private;
        let Some(top) = private.frames.last() else {
            return false;
        };
        if top.id != key || top.duplicate || top.riders != 0 {
            return false;
        }
        let Some(&(_, index)) = private.live.iter().rev().find(|&&(live, _)| live == key) else {
            return false;
        };
        let slot = &self.state.slots[index as usize];
        if slot.id.load(Relaxed) != key {
            return false;
        }
        let Some(frame) = private.frames.pop() else {
            return false;
        };
        if let Some(enclosing) = private.frames.last_mut() {
            enclosing.child_ticks += now.saturating_sub(frame.enter);
        }
        slot.add_interval(frame.enter, now, frame.child_ticks, false);
        true
    }

    /// `on_close` of the span created last among this thread's live ones, owned here
    /// and touched by no other thread, without riders or a rider word, on a
    /// thread that is not panicking, when this thread has recorded its path before:
    /// frees its slot and records the call.
    #[inline(always)]
    pub(crate) fn close_in_place(&mut self, key: u64) -> bool {
        if std::thread::panicking() {
            return false; // a panic to count
        }
        let private = &mut *self.private;
        let Some(&(live, index)) = private.live.last() else {
            return false;
        };
        let slot = &self.state.slots[index as usize];
        if live != key
            || slot.id.load(Relaxed) != key
            || slot.foreign.load(Relaxed)
            || slot.word.load(Relaxed) != 0
            || private.free.len() == private.free.capacity()
        {
            return false;
        }
        let flags = slot.flags.load(Relaxed);
        if flags >> RIDERS_SHIFT != 0 {
            return false; // riders to tell
        }
        let stats = if flags & ENTERED != 0 {
            match private.stats.cached(slot.path.load(Relaxed)) {
                Some(stats) => Some(stats),
                None => return false, // the path's first call on this thread
            }
        } else {
            None
        };
        // Committed. No other thread can claim the slot now: the span is closing here.
        let sample = stats.map(|_| {
            let (first, last) = (slot.first_enter.load(Relaxed), slot.last_exit.load(Relaxed));
            CallSample::new(
                last.saturating_sub(first),
                slot.busy_ticks.load(Relaxed),
                slot.child_ticks.load(Relaxed),
                slot.errors.load(Relaxed) > 0,
                flags & PANICKED != 0,
            )
        });
        slot.id.store(0, Release);
        private.live.pop();
        push_in_place(&mut private.free, index); // room: checked above
        match (stats, sample) {
            (Some(stats), Some(sample)) => stats.record(&sample),
            _ => self.state.slots_stats.record_never_entered(),
        }
        true
    }
}
