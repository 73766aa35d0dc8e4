//! Per-thread, per-path accumulators: the only thing a span close writes to.
//!
//! Each thread owns a [`ThreadSlots`] (held in a `thread_local::ThreadLocal` by the
//! layer) and is the **only writer** of the slots in it. A write is therefore a plain
//! load and store of each counter — no read-modify-write, no lock, no cache line shared
//! with another writer. Readers (a report, a live `Profile::get`) run on other threads
//! and merge all threads' slots.
//!
//! A per-slot sequence counter (a single-writer seqlock) lets readers take a consistent
//! snapshot of a slot: the writer makes the counter odd before writing and even after;
//! a reader retries until it saw the same even value before and after copying.
//!
//! A slot stores what is cheapest to write and derives the rest when read: the call
//! count is the sum of the histogram (a reader copies every bucket anyway), and busy
//! and self time are kept as the sums of what they leave out — idle time and time in
//! child spans — which are zero for most calls, so a typical call skips those writes.
//!
//! Slots are allocated the first time a thread finishes a span of a path, in segments
//! that never move (segment `s` holds `32 << s` slots), so after warm-up recording
//! allocates nothing and a reader can walk the segments while writers append.

use std::sync::atomic::{fence, AtomicU64, Ordering::*};
use std::sync::OnceLock;

use super::histogram::{self, BUCKETS};
use super::moments::Moments;
use crate::core::paths::PathId;

/// What one finished span contributes to its path, in raw clock ticks: the conversion
/// to nanoseconds is linear, so it is done once per report instead of once per span
/// (see [`TickScale`](super::TickScale)).
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct CallSample {
    /// First enter to last exit.
    pub(crate) wall: u64,
    /// Time spent entered (equals `wall` for a span entered once). At most `wall`:
    /// use [`CallSample::new`], which clamps (a span entered on two threads at once
    /// can be busy for longer than it lasted).
    pub(crate) busy: u64,
    /// Time spent in spans entered inside it on the same thread; at most `busy`.
    pub(crate) child: u64,
    /// An ERROR-level event was recorded inside the span.
    pub(crate) failed: bool,
    /// The span was exited or closed while its thread was panicking.
    pub(crate) panicked: bool,
}

impl CallSample {
    /// A sample with `child ≤ busy ≤ wall`, as [`PathSlot`] requires.
    #[inline]
    pub(crate) fn new(wall: u64, busy: u64, child: u64, failed: bool, panicked: bool) -> Self {
        let busy = busy.min(wall);
        CallSample {
            wall,
            busy,
            child: child.min(busy),
            failed,
            panicked,
        }
    }
}

/// One path's running aggregate on one thread (durations in ticks).
///
/// Invariants, between writes: `Σ hist` = calls; `idle` ≤ `total`; `child` ≤
/// `total - idle` (each sample has `child ≤ busy ≤ wall`). Sums wrap instead of
/// saturating: `total` would need 2⁶⁴ ticks (195 years at 3 GHz) of recorded calls to
/// wrap, and then `Σ wall² ≤ total · max < 2¹²⁸` cannot wrap either.
pub(crate) struct PathSlot {
    seq: AtomicU64,
    /// Σ wall.
    total: AtomicU64,
    min: AtomicU64,
    max: AtomicU64,
    /// Σ wall² (a `u128`): low and high halves.
    sum_sq_lo: AtomicU64,
    sum_sq_hi: AtomicU64,
    /// Σ (wall − busy).
    idle: AtomicU64,
    /// Σ child.
    child: AtomicU64,
    errors: AtomicU64,
    panics: AtomicU64,
    hist: [AtomicU64; BUCKETS],
}

/// A consistent copy of one or more slots (merged across threads), in ticks.
#[derive(Clone, Debug)]
pub(crate) struct Aggregate {
    pub(crate) calls: u64,
    pub(crate) min: u64,
    pub(crate) max: u64,
    pub(crate) moments: Moments,
    pub(crate) self_time: u64,
    pub(crate) busy: u64,
    pub(crate) errors: u64,
    pub(crate) panics: u64,
    pub(crate) hist: Box<[u64; BUCKETS]>,
}

impl Default for Aggregate {
    fn default() -> Self {
        Aggregate {
            calls: 0,
            min: u64::MAX,
            max: 0,
            moments: Moments::default(),
            self_time: 0,
            busy: 0,
            errors: 0,
            panics: 0,
            hist: Box::new([0; BUCKETS]),
        }
    }
}

impl Aggregate {
    /// Folds another disjoint aggregate into this one.
    pub(crate) fn merge(&mut self, o: &Aggregate) {
        self.calls += o.calls;
        self.min = self.min.min(o.min);
        self.max = self.max.max(o.max);
        self.moments = self.moments.merge(o.moments);
        self.self_time = self.self_time.saturating_add(o.self_time);
        self.busy = self.busy.saturating_add(o.busy);
        self.errors += o.errors;
        self.panics += o.panics;
        for (a, b) in self.hist.iter_mut().zip(o.hist.iter()) {
            *a += b;
        }
    }

    /// Σ wall, in ticks.
    #[cfg(test)]
    pub(crate) fn total(&self) -> u64 {
        self.moments.sum
    }
}

/// Single-writer update: the owning thread is the only one that stores to a slot.
#[inline]
fn add(cell: &AtomicU64, v: u64) {
    cell.store(cell.load(Relaxed).wrapping_add(v), Relaxed);
}

impl PathSlot {
    fn new() -> Box<Self> {
        Box::new(PathSlot {
            seq: AtomicU64::new(0),
            total: AtomicU64::new(0),
            min: AtomicU64::new(u64::MAX),
            max: AtomicU64::new(0),
            sum_sq_lo: AtomicU64::new(0),
            sum_sq_hi: AtomicU64::new(0),
            idle: AtomicU64::new(0),
            child: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            panics: AtomicU64::new(0),
            hist: [const { AtomicU64::new(0) }; BUCKETS],
        })
    }

    /// Records one call. Must only be called by the thread that owns this slot.
    #[inline(always)]
    pub(crate) fn record(&self, s: &CallSample) {
        let seq = self.seq.load(Relaxed);
        self.seq.store(seq.wrapping_add(1), Relaxed); // odd: write in progress
        fence(Release); // the odd value is visible before any field changes

        add(&self.total, s.wall);
        if s.wall < self.min.load(Relaxed) {
            self.min.store(s.wall, Relaxed);
        }
        if s.wall > self.max.load(Relaxed) {
            self.max.store(s.wall, Relaxed);
        }
        let sum_sq = self.sum_sq().wrapping_add(s.wall as u128 * s.wall as u128);
        self.sum_sq_lo.store(sum_sq as u64, Relaxed);
        self.sum_sq_hi.store((sum_sq >> 64) as u64, Relaxed);
        // Zero for a span entered once (idle), for a leaf (child), for a call that
        // neither failed nor panicked: skipped then.
        if s.wall != s.busy {
            add(&self.idle, s.wall - s.busy);
        }
        if s.child != 0 {
            add(&self.child, s.child);
        }
        if s.failed | s.panicked {
            add(&self.errors, s.failed as u64);
            add(&self.panics, s.panicked as u64);
        }
        add(&self.hist[histogram::index(s.wall)], 1);

        self.seq.store(seq.wrapping_add(2), Release); // even: consistent again
    }

    #[inline]
    fn sum_sq(&self) -> u128 {
        (self.sum_sq_hi.load(Relaxed) as u128) << 64 | self.sum_sq_lo.load(Relaxed) as u128
    }

    /// A consistent copy, retrying while the owner is mid-write.
    fn snapshot(&self, out: &mut Aggregate) {
        loop {
            let before = self.seq.load(Acquire);
            if before % 2 == 1 {
                std::hint::spin_loop();
                continue;
            }
            let total = self.total.load(Relaxed);
            let idle = self.idle.load(Relaxed);
            let child = self.child.load(Relaxed);
            out.min = self.min.load(Relaxed);
            out.max = self.max.load(Relaxed);
            let sum_sq = self.sum_sq();
            out.errors = self.errors.load(Relaxed);
            out.panics = self.panics.load(Relaxed);
            let mut calls = 0;
            for (o, h) in out.hist.iter_mut().zip(self.hist.iter()) {
                *o = h.load(Relaxed);
                calls += *o;
            }
            fence(Acquire); // the loads above complete before the re-check
            if self.seq.load(Relaxed) == before {
                out.calls = calls;
                out.moments = Moments {
                    n: calls,
                    sum: total,
                    sum_sq,
                };
                out.busy = total.wrapping_sub(idle);
                out.self_time = out.busy.wrapping_sub(child);
                return;
            }
        }
    }
}

/// The owning thread's direct index from path id to its slot in its [`ThreadSlots`], so
/// that recording a call costs a bounds check and a pointer load instead of locating
/// the segment and checking two `OnceLock`s.
#[derive(Default)]
pub(crate) struct SlotIndex(Vec<*const PathSlot>);

// SAFETY: the pointers point into the `ThreadSlots` that sits next to this index in the
// same thread state; its slots are boxed, never move and are freed only when it is
// dropped, which drops this index too. Only the owning thread dereferences them.
unsafe impl Send for SlotIndex {}

impl SlotIndex {
    /// The slot of `path`, if this thread recorded the path before.
    #[inline(always)]
    pub(crate) fn cached(&self, path: PathId) -> Option<&PathSlot> {
        let slot = *self.0.get(path as usize)?;
        // SAFETY: see `impl Send`: the slot is alive, and only this thread writes it.
        (!slot.is_null()).then(|| unsafe { &*slot })
    }

    /// Records a finished span of `path` into `slots`, this index's `ThreadSlots`.
    /// Owning thread only.
    #[inline(always)]
    pub(crate) fn record(&mut self, slots: &ThreadSlots, path: PathId, sample: &CallSample) {
        match self.0.get(path as usize) {
            // SAFETY: see `impl Send`: the slot is alive, and only this thread writes it.
            Some(&slot) if !slot.is_null() => unsafe { &*slot }.record(sample),
            _ => self.record_first(slots, path, sample),
        }
    }

    #[cold]
    #[inline(never)]
    fn record_first(&mut self, slots: &ThreadSlots, path: PathId, sample: &CallSample) {
        let slot = slots.slot(path);
        let i = path as usize;
        if self.0.len() <= i {
            self.0.resize(i + 1, std::ptr::null());
        }
        self.0[i] = slot;
        slot.record(sample);
    }
}

/// Segment `s` holds `FIRST_SEGMENT << s` slots; 28 segments cover every `u32` id.
const FIRST_SEGMENT: usize = 32;
const SEGMENTS: usize = 28;

type Segment = Box<[OnceLock<Box<PathSlot>>]>;

/// One thread's slots, indexed by path id.
#[derive(Default)]
pub(crate) struct ThreadSlots {
    segments: [OnceLock<Segment>; SEGMENTS],
    /// Spans closed on this thread without ever being entered (not timed).
    never_entered: AtomicU64,
}

/// (segment, offset) of a path id.
#[inline]
fn locate(id: PathId) -> (usize, usize) {
    let x = id as usize + FIRST_SEGMENT;
    let segment =
        (usize::BITS - 1 - x.leading_zeros()) as usize - FIRST_SEGMENT.trailing_zeros() as usize;
    (segment, x - (FIRST_SEGMENT << segment))
}

impl ThreadSlots {
    /// Records a finished span. Only the owning thread may call this.
    #[cfg(test)]
    pub(crate) fn record(&self, path: PathId, sample: &CallSample) {
        self.slot(path).record(sample);
    }

    /// The slot of `path`, created on first use. Owning thread only: it may create it.
    fn slot(&self, path: PathId) -> &PathSlot {
        let (s, off) = locate(path);
        let segment = self.segments[s]
            .get_or_init(|| (0..FIRST_SEGMENT << s).map(|_| OnceLock::new()).collect());
        segment[off].get_or_init(PathSlot::new)
    }

    /// Counts a span closed without having been entered. Owning thread only.
    #[inline]
    pub(crate) fn record_never_entered(&self) {
        add(&self.never_entered, 1);
    }

    pub(crate) fn never_entered(&self) -> u64 {
        self.never_entered.load(Relaxed)
    }

    /// Merges this thread's slot for `path`, if any, into `into`.
    pub(crate) fn merge_path(&self, path: PathId, into: &mut Aggregate, scratch: &mut Aggregate) {
        let (s, off) = locate(path);
        if let Some(slot) = self.segments[s].get().and_then(|seg| seg[off].get()) {
            slot.snapshot(scratch);
            into.merge(scratch);
        }
    }

    /// Merges every slot of this thread into `into` (indexed by path id, grown as needed).
    pub(crate) fn merge_all(&self, into: &mut Vec<Aggregate>, scratch: &mut Aggregate) {
        for (s, segment) in self.segments.iter().enumerate() {
            let Some(segment) = segment.get() else {
                continue;
            };
            for (off, slot) in segment.iter().enumerate() {
                if let Some(slot) = slot.get() {
                    let id = (FIRST_SEGMENT << s) - FIRST_SEGMENT + off;
                    if into.len() <= id {
                        into.resize_with(id + 1, Aggregate::default);
                    }
                    slot.snapshot(scratch);
                    into[id].merge(scratch);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_covers_ids_without_overlap() {
        assert_eq!(locate(0), (0, 0));
        assert_eq!(locate(31), (0, 31));
        assert_eq!(locate(32), (1, 0));
        assert_eq!(locate(95), (1, 63));
        assert_eq!(locate(96), (2, 0));
        let (s, off) = locate(u32::MAX);
        assert!(s < SEGMENTS && off < FIRST_SEGMENT << s);
    }

    #[test]
    fn slots_record_and_merge() {
        let slots = ThreadSlots::default();
        for (i, ns) in [10u64, 20, 30].into_iter().enumerate() {
            let failed = i == 1;
            slots.record(
                40,
                &CallSample {
                    wall: ns,
                    busy: ns - i as u64, // 10, 19, 28
                    child: ns / 2,
                    failed,
                    panicked: i == 2,
                },
            );
        }
        let mut all = Vec::new();
        slots.merge_all(&mut all, &mut Aggregate::default());
        let a = &all[40];
        assert_eq!(
            (a.calls, a.total(), a.min, a.max, a.errors, a.panics),
            (3, 60, 10, 30, 1, 1)
        );
        assert_eq!((a.busy, a.self_time), (57, 57 - 30));
        assert_eq!(a.moments.mean(), 20.0);
        assert_eq!(all[0].calls, 0);
    }

    #[test]
    fn concurrent_readers_see_consistent_snapshots() {
        // A torn read would show a total that is not 1 + 2 + ... + calls, or busy not
        // the matching sum of i - i/2.
        let slots = std::sync::Arc::new(ThreadSlots::default());
        let writer = {
            let slots = slots.clone();
            std::thread::spawn(move || {
                for i in 1..=200_000u64 {
                    slots.record(
                        0,
                        &CallSample {
                            wall: i,
                            busy: i - i / 2,
                            ..Default::default()
                        },
                    );
                }
            })
        };
        let mut scratch = Aggregate::default();
        while !writer.is_finished() {
            let mut a = Aggregate::default();
            slots.merge_path(0, &mut a, &mut scratch);
            assert_eq!(a.total(), a.calls * (a.calls + 1) / 2);
            // Σ ceil(i/2) for i in 1..=n.
            let m = a.calls / 2;
            let busy = if a.calls % 2 == 0 {
                m * (m + 1)
            } else {
                (m + 1) * (m + 1)
            };
            assert_eq!(a.busy, busy);
        }
        writer.join().unwrap();
    }
}
