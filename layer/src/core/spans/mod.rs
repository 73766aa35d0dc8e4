//! Where a span's state lives between its callbacks.
//!
//! The obvious home is a registry extension, but reaching it costs a registry lookup
//! (two atomic read-modify-writes and a sharded-slab lookup) on every callback plus an
//! allocation per span: more than everything else the layer does. Most spans are
//! created, entered, exited and closed on one thread, so a span's state lives in two
//! parts that are merged when it closes:
//!
//! * **The owner's part**, in a [`Slot`] of the creating thread's table. Only the owner
//!   writes it, with plain (relaxed) stores: no lock, no read-modify-write. The owner
//!   finds its slots through a private index, newest first.
//!   The four callbacks' common case on it is in [`fast`], written without calls.
//! * **Everyone else's part**, in the span's registry extension (a [`SpanState`] under
//!   the extension's lock): what other threads measured (an async task polled on
//!   another worker, `in_scope` on another thread), and the owner's part if the owner
//!   ever had to evict it (more than [`LOCAL_CAPACITY`] of its spans alive at once).
//!   A thread that adds to it sets the slot's `foreign` flag, so the owner's close only
//!   looks at the extension when there is something there.
//!
//! # Why this is sound
//!
//! 1. A slot's fields are written only by its owner, and only while the slot's `id` is
//!    the span's id; the owner publishes a new `id` with a release store after filling
//!    the fields, and other threads read `id` with acquire loads.
//! 2. Another thread reads a slot's fields only to close the span or to learn its
//!    path. A span is closed when no handle to it is left; the registry's reference
//!    count (release on drop, acquire on reaching zero) orders every earlier write to
//!    the slot before that close. A path never changes, and is re-validated by
//!    re-reading `id` after reading it.
//! 3. Two threads may want to take the owner's part at once: a closer on another
//!    thread, and the owner evicting the slot to make room. Each claims it by a
//!    compare-and-swap of `id` from the span's id to 0; exactly one wins. The closer
//!    reads the fields *before* its CAS; the owner copies them into the extension and
//!    CASes *while holding the extension's lock*, and takes the copy back out if its
//!    CAS lost. So the part is counted once, and a closer that lost sees it in the
//!    extension after taking that lock.
//! 4. Lock order: only extension locks, one at a time; slots use atomics only.
//! 5. At most one [`Owned`] (the thread's `&mut Private`) is alive per thread: each
//!    callback makes one and passes it down, and nothing called while it is alive
//!    traces (an event would re-enter the layer and make a second). Riders keep this
//!    by queueing what they say (`core::say`). Debug builds check it: making a second
//!    `Owned` on a thread panics, naming the rule.
//! 6. A snapshot reader ([`open`]: which spans are open now) may read a live slot's
//!    fields from any thread at any time, without the owner's knowledge: `id` with
//!    acquire, then the fields, then `id` again, keeping what it read only if `id` did
//!    not change. It never writes. This is sound because every field is an atomic (no
//!    torn or undefined read, whatever the owner does meanwhile), and the reader
//!    tolerates stale values: `path` and the rider bits never change while `id` holds
//!    (rule 1 published them before it), and the times it reads may lag the owner's
//!    last interval — a span's first interval may be seen as not completed yet, or, on
//!    a weakly ordered CPU, with its `first_enter` not yet visible beside `ENTERED`.
//!    What it reads only goes into a report's list of open spans, an estimate by
//!    nature; the statistics never depend on it.

use std::cell::UnsafeCell;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering::*};

use thread_local::ThreadLocal;
use tracing_core::span::Id;
use tracing_core::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::padded::CachePadded;
use super::paths::{PathCache, PathId};
use super::rider::{Bits, SpanWord};
use super::stats::{SlotIndex, ThreadSlots};

mod fast;
pub(crate) mod open;

/// Live spans a thread keeps in its own table before evicting the oldest.
pub(crate) const LOCAL_CAPACITY: usize = 64;

/// A slot's index in its thread's table. Every index of the table must fit.
type SlotNo = u8;
const _: () = assert!(LOCAL_CAPACITY <= SlotNo::MAX as usize);

/// The entered-span stack's first capacity. The fast paths never grow a `Vec` (that
/// would be a call), so a thread nesting deeper takes the general path once, which
/// grows the stack; nothing is lost either way.
const FRAMES_CAPACITY: usize = 16;

/// What the layer knows about one live span (or one part of it). Times are raw clock
/// ticks, or sums of differences of them, turned into nanoseconds only in reports.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SpanState {
    pub(crate) path: PathId,
    /// The riders this span carries ([`crate::core::rider`]): opaque to the core, which
    /// only sends a span with any down the general paths.
    pub(crate) riders: Bits,
    pub(crate) entered: bool,
    pub(crate) panicked: bool,
    pub(crate) errors: u32,
    pub(crate) first_enter: u64,
    pub(crate) last_exit: u64,
    pub(crate) busy_ticks: u64,
    pub(crate) child_ticks: u64,
    /// The word of the rider that keeps one, travelling with the owner's part (rule 3
    /// moves it with the rest). Exactly one part of a span holds a non-zero one;
    /// whoever closes the span hands it to the rider.
    pub(crate) word: SpanWord,
}

impl SpanState {
    pub(crate) fn new(path: PathId) -> Self {
        SpanState {
            path,
            riders: 0,
            entered: false,
            panicked: false,
            errors: 0,
            first_enter: 0,
            last_exit: 0,
            busy_ticks: 0,
            child_ticks: 0,
            word: SpanWord::NONE,
        }
    }

    /// Adds one entered interval (`enter..now`, of which `child` in child spans).
    #[inline]
    pub(crate) fn add_interval(&mut self, enter: u64, now: u64, child: u64, panicked: bool) {
        if !self.entered || enter < self.first_enter {
            self.first_enter = enter;
        }
        self.entered = true;
        self.last_exit = self.last_exit.max(now);
        self.busy_ticks += now.saturating_sub(enter);
        self.child_ticks += child;
        self.panicked |= panicked;
    }

    /// Combines two parts of one span.
    pub(crate) fn merge(mut self, other: &SpanState) -> SpanState {
        if other.entered {
            if !self.entered || other.first_enter < self.first_enter {
                self.first_enter = other.first_enter;
            }
            self.entered = true;
            self.last_exit = self.last_exit.max(other.last_exit);
        }
        self.busy_ticks += other.busy_ticks;
        self.child_ticks += other.child_ticks;
        self.errors = self.errors.saturating_add(other.errors);
        self.panicked |= other.panicked;
        self.riders |= other.riders;
        if !self.word.is_some() {
            self.word = other.word;
        }
        self
    }
}

/// The owner's part of one span, readable by other threads (rule 2). One cache line.
#[derive(Default)]
#[repr(align(64))]
pub(crate) struct Slot {
    /// The span's id; 0 when the slot is free.
    id: AtomicU64,
    /// Another thread added a part to the span's extension.
    foreign: AtomicBool,
    path: AtomicU32,
    /// [`ENTERED`], [`PANICKED`], and the rider bits from [`RIDERS_SHIFT`] up.
    flags: AtomicU32,
    errors: AtomicU32,
    first_enter: AtomicU64,
    last_exit: AtomicU64,
    busy_ticks: AtomicU64,
    child_ticks: AtomicU64,
    word: AtomicUsize,
}

impl Slot {
    /// Reads the owner's part (the owner, or rule 2's closer). The four times are only
    /// meaningful once the span was entered ([`Slot::init`] leaves them as they were).
    #[inline]
    fn load(&self) -> SpanState {
        let flags = self.flags.load(Relaxed);
        let entered = flags & ENTERED != 0;
        let time = |cell: &AtomicU64| if entered { cell.load(Relaxed) } else { 0 };
        SpanState {
            path: self.path.load(Relaxed),
            entered,
            panicked: flags & PANICKED != 0,
            riders: (flags >> RIDERS_SHIFT) as Bits,
            errors: self.errors.load(Relaxed),
            first_enter: time(&self.first_enter),
            last_exit: time(&self.last_exit),
            busy_ticks: time(&self.busy_ticks),
            child_ticks: time(&self.child_ticks),
            word: SpanWord(self.word.load(Relaxed)),
        }
    }

    /// Adds one entered interval (`enter..now`, of which `child` in child spans),
    /// touching only the fields an interval changes. Owner only.
    #[inline(always)]
    fn add_interval(&self, enter: u64, now: u64, child: u64, panicked: bool) {
        let flags = self.flags.load(Relaxed);
        let busy = now.saturating_sub(enter);
        if flags & ENTERED == 0 {
            // The first interval: the times hold whatever the slot's last span left.
            self.first_enter.store(enter, Relaxed);
            self.last_exit.store(now, Relaxed);
            self.busy_ticks.store(busy, Relaxed);
            self.child_ticks.store(child, Relaxed);
        } else {
            if enter < self.first_enter.load(Relaxed) {
                self.first_enter.store(enter, Relaxed);
            }
            if now > self.last_exit.load(Relaxed) {
                self.last_exit.store(now, Relaxed);
            }
            self.busy_ticks
                .store(self.busy_ticks.load(Relaxed) + busy, Relaxed);
            self.child_ticks
                .store(self.child_ticks.load(Relaxed) + child, Relaxed);
        }
        self.flags
            .store(flags | ENTERED | (panicked as u32 * PANICKED), Relaxed);
    }

    /// Writes the owner's part of a new span: not entered, so the times are left alone
    /// (the first interval overwrites them). Owner only.
    #[inline]
    fn init(&self, path: PathId, riders: Bits, word: SpanWord) {
        self.path.store(path, Relaxed);
        self.flags.store((riders as u32) << RIDERS_SHIFT, Relaxed);
        self.errors.store(0, Relaxed);
        self.word.store(word.0, Relaxed);
    }

    /// Writes the owner's part. Owner only.
    #[inline]
    fn store(&self, s: &SpanState) {
        self.path.store(s.path, Relaxed);
        let flags = (s.entered as u32 * ENTERED)
            | (s.panicked as u32 * PANICKED)
            | (s.riders as u32) << RIDERS_SHIFT;
        self.flags.store(flags, Relaxed);
        self.errors.store(s.errors, Relaxed);
        self.first_enter.store(s.first_enter, Relaxed);
        self.last_exit.store(s.last_exit, Relaxed);
        self.busy_ticks.store(s.busy_ticks, Relaxed);
        self.child_ticks.store(s.child_ticks, Relaxed);
        self.word.store(s.word.0, Relaxed);
    }
}

/// [`Slot::flags`]: the span was entered (its four times are meaningful).
const ENTERED: u32 = 1;
/// [`Slot::flags`]: an interval ended while its thread was panicking.
const PANICKED: u32 = 2;
/// [`Slot::flags`]: the span's rider bits sit above the two flags. A `u32` holds them
/// all: [`Bits`] is a byte.
const RIDERS_SHIFT: u32 = 2;

/// `Frame::path` before anyone needed it.
pub(crate) const UNRESOLVED: PathId = PathId::MAX;

/// One entered span on a thread's stack.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Frame {
    pub(crate) id: u64,
    /// The span's path, or [`UNRESOLVED`] until a child span is created under it.
    pub(crate) path: PathId,
    pub(crate) enter: u64,
    /// Time spent in spans entered (and exited) while this one was on top.
    pub(crate) child_ticks: u64,
    /// Re-entry of a span already on this thread's stack: not timed again.
    pub(crate) duplicate: bool,
    /// The riders whose `exit` hook must run when the span exits (what their `enter`
    /// hooks returned).
    pub(crate) riders: Bits,
}

impl Frame {
    /// The frame of span `key`, entered at `now`; its path not looked up yet.
    #[inline(always)]
    pub(crate) fn entered(key: u64, now: u64, duplicate: bool, riders: Bits) -> Frame {
        Frame {
            id: key,
            path: UNRESOLVED,
            enter: now,
            child_ticks: 0,
            duplicate,
            riders,
        }
    }
}

/// What only the owning thread ever touches.
#[derive(Default)]
pub(crate) struct Private {
    /// The entered-span stack.
    pub(crate) frames: Vec<Frame>,
    /// `(span id, slot index)` of this thread's live spans, oldest first. An entry whose
    /// slot no longer holds its id was closed by another thread (stale).
    live: Vec<(u64, SlotNo)>,
    /// Slots known to be free.
    free: Vec<SlotNo>,
    /// This thread's path-interning cache.
    pub(crate) paths: PathCache,
    /// Where this thread's statistics of each path live (in `ThreadState::slots_stats`).
    pub(crate) stats: SlotIndex,
    /// The per-thread word of the rider that keeps a [`SpanWord`] (`core::rider`): set by
    /// that rider on its first use on this thread, so that it finds its own per-thread
    /// state without a lookup of its own.
    pub(crate) thread_word: usize,
}

impl Private {
    /// Pushes the frame of span `key`, entered at `now`.
    #[inline]
    pub(crate) fn push_frame(&mut self, key: u64, now: u64, duplicate: bool, riders: Bits) {
        self.frames
            .push(Frame::entered(key, now, duplicate, riders));
    }

    /// Pops the frame of span `key`, exited at `now`, and credits its time to the
    /// enclosing frame as child time. `None` if `key` was not entered on this thread, or
    /// if this was a re-entry (only the outer entry is timed).
    #[inline]
    pub(crate) fn pop_frame(&mut self, key: u64, now: u64) -> Option<Frame> {
        let frames = &mut self.frames;
        let (frame, pos) = if frames.last()?.id == key {
            (frames.pop()?, frames.len())
        } else {
            Self::remove_frame(frames, key)? // exited out of order
        };
        if frame.duplicate {
            return None;
        }
        if let Some(enclosing) = pos.checked_sub(1).map(|i| &mut frames[i]) {
            enclosing.child_ticks += now.saturating_sub(frame.enter);
        }
        Some(frame)
    }

    #[cold]
    fn remove_frame(frames: &mut Vec<Frame>, key: u64) -> Option<(Frame, usize)> {
        let pos = frames.iter().rposition(|f| f.id == key)?;
        Some((frames.remove(pos), pos))
    }
}

/// Everything one thread writes: its spans and its statistics.
pub(crate) struct ThreadState {
    slots: Box<[Slot]>,
    /// Only the owning thread touches this; see [`Threads::owned`].
    private: UnsafeCell<Private>,
    pub(crate) slots_stats: ThreadSlots,
    /// Which thread owns this state now, for the open-span readout ([`open`]). Set on
    /// the thread's first use (`ThreadLocal` hands an exited thread's state to a later
    /// thread that gets its recycled id); a lock, taken only there and by readouts.
    label: std::sync::Mutex<open::ThreadLabel>,
}

// SAFETY: other threads only reach `slots` (atomics), `slots_stats` (atomics), and
// `label` (a mutex).
// `private` is reached only through `Threads::owned`, which hands it to the thread that
// owns this state (`ThreadLocal` gives each live thread its own), never to another.
unsafe impl Sync for ThreadState {}

impl Default for ThreadState {
    fn default() -> Self {
        ThreadState {
            slots: (0..LOCAL_CAPACITY).map(|_| Slot::default()).collect(),
            private: UnsafeCell::new(Private {
                frames: Vec::with_capacity(FRAMES_CAPACITY),
                live: Vec::with_capacity(LOCAL_CAPACITY),
                free: (0..LOCAL_CAPACITY as SlotNo).rev().collect(),
                paths: PathCache::default(),
                stats: SlotIndex::default(),
                thread_word: 0,
            }),
            slots_stats: ThreadSlots::default(),
            label: Default::default(),
        }
    }
}

/// The calling thread's view of its own state.
pub(crate) struct Owned<'a> {
    pub(crate) state: &'a ThreadState,
    pub(crate) private: &'a mut Private,
    _held: Held,
}

#[cfg(debug_assertions)]
std::thread_local! {
    /// Debug builds: whether this thread holds an [`Owned`] now (rule 5).
    static HELD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Rule 5's check: in debug builds, marks this thread as holding its [`Owned`]; in
/// release builds, nothing at all.
struct Held(());

impl Held {
    #[inline(always)]
    fn take() -> Held {
        #[cfg(debug_assertions)]
        if HELD.with(|held| held.replace(true)) {
            panic!(
                "spanlab: a layer callback re-entered the layer while it held this thread's \
                 state: something called from a callback traced (core::spans, rule 5)"
            );
        }
        Held(())
    }
}

#[cfg(debug_assertions)]
impl Drop for Held {
    fn drop(&mut self) {
        HELD.with(|held| held.set(false));
    }
}

impl Owned<'_> {
    /// The slot holding span `id`, if this thread owns it.
    #[inline]
    fn find(&mut self, id: u64) -> Option<&Slot> {
        let pos = self
            .private
            .live
            .iter()
            .rposition(|&(live, _)| live == id)?;
        let slot = &self.state.slots[self.private.live[pos].1 as usize];
        if slot.id.load(Relaxed) == id {
            Some(slot)
        } else {
            None // closed elsewhere: pruned on the next insert
        }
    }

    /// Runs `f` on this thread's part of span `id`, if it owns the span.
    #[inline]
    pub(crate) fn update<R>(&mut self, id: &Id, f: impl FnOnce(&mut SpanState) -> R) -> Option<R> {
        let slot = self.find(id.into_u64())?;
        let mut state = slot.load();
        let r = f(&mut state);
        slot.store(&state);
        Some(r)
    }

    /// Adds an entered interval to this thread's part of span `id`; `false` if this
    /// thread does not own it. Touches only the fields an interval changes.
    #[inline]
    pub(crate) fn add_interval(
        &mut self,
        id: &Id,
        enter: u64,
        now: u64,
        child: u64,
        panicked: bool,
    ) -> bool {
        let Some(slot) = self.find(id.into_u64()) else {
            return false;
        };
        slot.add_interval(enter, now, child, panicked);
        true
    }

    /// The rider bits of span `id`; `None` if this thread does not own it.
    #[inline]
    pub(crate) fn riders(&mut self, id: u64) -> Option<Bits> {
        self.find(id)
            .map(|slot| (slot.flags.load(Relaxed) >> RIDERS_SHIFT) as Bits)
    }

    /// The rider word of span `id`, if this thread owns it.
    #[inline]
    pub(crate) fn word(&mut self, id: u64) -> Option<SpanWord> {
        self.find(id).map(|slot| SpanWord(slot.word.load(Relaxed)))
    }

    /// The path of span `id`, if this thread owns it.
    #[inline]
    pub(crate) fn path(&mut self, id: u64) -> Option<PathId> {
        self.find(id).map(|slot| slot.path.load(Relaxed))
    }

    /// The path of the span on top of the stack, if it can be known without leaving
    /// this thread. `Err(id)`: the top span is owned elsewhere.
    #[inline]
    pub(crate) fn top_path(&mut self) -> Option<Result<PathId, u64>> {
        let top = *self.private.frames.last()?;
        if top.path != UNRESOLVED {
            return Some(Ok(top.path));
        }
        let Some(path) = self.path(top.id) else {
            return Some(Err(top.id));
        };
        self.private.frames.last_mut().expect("top exists").path = path;
        Some(Ok(path))
    }

    /// Takes this thread's part of span `id` for its close. `Ok(part)` with whether
    /// other threads added parts; `Err(())` if this thread does not own it.
    #[inline]
    pub(crate) fn take(&mut self, id: u64) -> Result<(SpanState, bool), ()> {
        let pos = self
            .private
            .live
            .iter()
            .rposition(|&(live, _)| live == id)
            .ok_or(())?;
        let live = &mut self.private.live;
        // Spans close newest first as a rule: then this is a pop, not a memmove.
        let (_, index) = if pos + 1 == live.len() {
            live.pop().ok_or(())?
        } else {
            live.remove(pos)
        };
        let slot = &self.state.slots[index as usize];
        if slot.id.load(Relaxed) != id {
            return Err(()); // closed elsewhere
        }
        // No other thread can claim it now: it is closing here (rule 3 needs a closer).
        let part = slot.load();
        let foreign = slot.foreign.load(Relaxed);
        slot.id.store(0, Release);
        self.private.free.push(index);
        Ok((part, foreign))
    }

    /// Adds a span created on this thread, not yet entered. When every slot is taken,
    /// frees the slots of spans closed elsewhere, then evicts the oldest span to its
    /// extension.
    #[inline]
    pub(crate) fn insert<S>(
        &mut self,
        id: &Id,
        path: PathId,
        riders: Bits,
        word: SpanWord,
        ctx: &Context<'_, S>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if self.private.free.is_empty() {
            self.make_room(ctx);
        }
        let index = self.private.free.pop().expect("make_room frees a slot");
        let slot = &self.state.slots[index as usize];
        slot.init(path, riders, word);
        slot.foreign.store(false, Relaxed);
        slot.id.store(id.into_u64(), Release); // rule 1: publish after the fields
        self.private.live.push((id.into_u64(), index));
    }

    #[cold]
    fn make_room<S>(&mut self, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let slots = &self.state.slots;
        let free = &mut self.private.free;
        self.private.live.retain(|&(id, index)| {
            let alive = slots[index as usize].id.load(Acquire) == id;
            if !alive {
                free.push(index);
            }
            alive
        });
        if !free.is_empty() {
            return;
        }
        let (id, index) = self.private.live.remove(0);
        let slot = &slots[index as usize];
        // Rule 3: copy into the extension and claim the slot under the extension lock.
        if let Some(span) = ctx.span(&Id::from_u64(id)) {
            let mut ext = span.extensions_mut();
            let mine = slot.load();
            let previous = ext.get_mut::<SpanState>().copied();
            // `replace`, never `insert`: `insert` panics when a part is already there.
            ext.replace(previous.map_or(mine, |p| p.merge(&mine)));
            if slot.id.compare_exchange(id, 0, AcqRel, Relaxed).is_err() {
                // A closer on another thread took the part first: undo the copy.
                match previous {
                    Some(p) => ext.replace(p),
                    None => ext.remove::<SpanState>(),
                };
            }
        } else {
            let _ = slot.id.compare_exchange(id, 0, AcqRel, Relaxed);
        }
        free.push(index);
    }
}

/// Every thread's [`ThreadState`], each on its own cache lines.
pub(crate) struct Threads {
    states: ThreadLocal<CachePadded<ThreadState>>,
    /// Never reused, so a thread's [`LAST`] cache can never point into a dropped
    /// `Threads` that happened to live at the same address.
    instance: u64,
}

impl Default for Threads {
    fn default() -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Threads {
            states: ThreadLocal::new(),
            instance: NEXT.fetch_add(1, Relaxed),
        }
    }
}

std::thread_local! {
    /// This thread's state in the `Threads` it used last: `(instance, state)`. Saves the
    /// `ThreadLocal` lookup (thread id, bucket, presence) on nearly every callback.
    static LAST: std::cell::Cell<(u64, *const ThreadState)> =
        const { std::cell::Cell::new((0, std::ptr::null())) };
}

impl Threads {
    /// The calling thread's own state, if this thread already used this `Threads` last
    /// (nearly always): no call on the way, for the callbacks' fast paths.
    #[inline(always)]
    pub(crate) fn owned_if_known(&self) -> Option<Owned<'_>> {
        let (instance, cached) = LAST.with(|last| last.get());
        if instance != self.instance {
            return None;
        }
        // SAFETY: `cached` was this thread's state in this very `Threads` (the instance
        // number is unique), which is still alive since `self` is.
        Some(Self::own(unsafe { &*cached }))
    }

    /// The calling thread's own state.
    #[inline]
    pub(crate) fn owned(&self) -> Owned<'_> {
        self.owned_if_known()
            .unwrap_or_else(|| Self::own(self.first_use()))
    }

    /// The calling thread's view of `state`, which must be the calling thread's own.
    #[inline(always)]
    fn own(state: &ThreadState) -> Owned<'_> {
        // SAFETY: `state` is the calling thread's own, so no other thread reaches
        // `private`. On this thread, each layer callback creates at most one `Owned` and
        // passes it down instead of calling `owned()` again, and callbacks do not
        // re-enter each other (nothing in them calls back into tracing), so there is
        // never a second live `&mut Private`.
        let private = unsafe { &mut *state.private.get() };
        Owned {
            state,
            private,
            _held: Held::take(),
        }
    }

    /// The calling thread's state, created on its first span, and remembered in
    /// [`LAST`]. Out of line: it builds a [`ThreadState`], and would otherwise give
    /// every callback a 2 KiB, 128-byte-aligned stack frame.
    #[cold]
    #[inline(never)]
    fn first_use(&self) -> &ThreadState {
        let state = &self.states.get_or_default().0;
        open::label(state);
        LAST.with(|last| last.set((self.instance, state)));
        state
    }

    /// Every thread's state (threads that exited included: their statistics stay).
    pub(crate) fn iter(&self) -> impl Iterator<Item = &ThreadState> {
        self.states.iter().map(|padded| &padded.0)
    }

    /// The slot that holds span `id`, on whichever thread owns it.
    fn find_slot(&self, id: u64) -> Option<&Slot> {
        self.iter()
            .flat_map(|t| t.slots.iter())
            .find(|slot| slot.id.load(Acquire) == id)
    }

    /// Runs `f` on this thread's contribution to a span it does not own: the part in
    /// the span's extension. `None` if spanlab has no state for the span.
    #[cold]
    pub(crate) fn update_elsewhere<S, R>(
        &self,
        id: &Id,
        ctx: &Context<'_, S>,
        f: impl FnOnce(&mut SpanState) -> R,
    ) -> Option<R>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let span = ctx.span(id)?;
        let mut ext = span.extensions_mut();
        let slot = self.find_slot(id.into_u64());
        if let Some(slot) = slot {
            slot.foreign.store(true, Relaxed);
        }
        let part = match ext.get_mut::<SpanState>() {
            Some(part) => part,
            None => {
                // First part here: its path comes from the owner's slot (rule 2).
                let path = slot.map(|s| s.path.load(Relaxed))?;
                ext.replace(SpanState::new(path));
                ext.get_mut::<SpanState>()?
            }
        };
        Some(f(part))
    }

    /// The path of a span this thread does not own.
    #[cold]
    pub(crate) fn path_elsewhere<S>(&self, id: &Id, ctx: &Context<'_, S>) -> Option<PathId>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let key = id.into_u64();
        if let Some(slot) = self.find_slot(key) {
            let path = slot.path.load(Relaxed);
            if slot.id.load(Acquire) == key {
                return Some(path); // still the same span: the path is its (rule 2)
            }
        }
        ctx.span(id)?
            .extensions()
            .get::<SpanState>()
            .map(|s| s.path)
    }

    /// The rider bits of a span this thread does not own. They never change after the
    /// span's slot is published, so, like the path, they are re-validated by re-reading
    /// `id` (rule 2).
    #[cold]
    pub(crate) fn riders_elsewhere<S>(&self, id: &Id, ctx: &Context<'_, S>) -> Option<Bits>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let key = id.into_u64();
        if let Some(slot) = self.find_slot(key) {
            let riders = (slot.flags.load(Relaxed) >> RIDERS_SHIFT) as Bits;
            if slot.id.load(Acquire) == key {
                return Some(riders);
            }
        }
        ctx.span(id)?
            .extensions()
            .get::<SpanState>()
            .map(|s| s.riders)
    }

    /// Flags span `id`'s slot, wherever it is: another thread added to the span's
    /// extension, so its close must look there.
    #[cold]
    pub(crate) fn mark_foreign(&self, id: u64) {
        if let Some(slot) = self.find_slot(id) {
            slot.foreign.store(true, Relaxed);
        }
    }

    /// The rider word of a span this thread does not own: `Some` when the core knows
    /// the span (the word may still be [`SpanWord::NONE`]).
    #[cold]
    pub(crate) fn word_elsewhere<S>(&self, id: &Id, ctx: &Context<'_, S>) -> Option<SpanWord>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.word_in_slot(id.into_u64()).or_else(|| {
            ctx.span(id)?
                .extensions()
                .get::<SpanState>()
                .map(|s| s.word)
        })
    }

    /// The rider word of a live span, read from outside any callback (a program thread
    /// asking about its current span): no [`Owned`] is made, so rule 5 cannot be
    /// broken, and the only lock taken is the span's extension lock, for reading, when
    /// the span's owner part is not in a slot. `spans` is the registry the span lives
    /// in. The caller keeps the span alive (holds a handle) while it uses the word.
    #[cold]
    #[allow(dead_code)] // used by export, which may be compiled out
    pub(crate) fn word_outside<L>(&self, id: &Id, spans: &L) -> Option<SpanWord>
    where
        L: for<'a> LookupSpan<'a>,
    {
        self.word_in_slot(id.into_u64()).or_else(|| {
            spans
                .span(id)?
                .extensions()
                .get::<SpanState>()
                .map(|s| s.word)
        })
    }

    /// The word in the slot of span `key`, on whichever thread owns it; `None` when no
    /// slot holds the span (evicted to its extension, or unknown).
    fn word_in_slot(&self, key: u64) -> Option<SpanWord> {
        let slot = self.find_slot(key)?;
        let word = SpanWord(slot.word.load(Relaxed));
        // Still the same span (rule 2): the word, like the path, never changes.
        (slot.id.load(Acquire) == key).then_some(word)
    }

    /// The whole state of a closing span that this thread does not own, or whose other
    /// parts must be collected: the owner's part (claimed by rule 3) and the extension's.
    #[cold]
    pub(crate) fn take_elsewhere<S>(
        &self,
        id: &Id,
        ctx: &Context<'_, S>,
        mine: Option<SpanState>,
    ) -> Option<SpanState>
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let key = id.into_u64();
        let mut state = mine;
        if state.is_none() {
            if let Some(slot) = self.find_slot(key) {
                let part = slot.load(); // read before claiming (rule 3)
                if slot.id.compare_exchange(key, 0, AcqRel, Relaxed).is_ok() {
                    state = Some(part);
                }
            }
        }
        let extension = ctx
            .span(id)
            .and_then(|span| span.extensions_mut().remove::<SpanState>());
        match (state, extension) {
            (Some(s), Some(e)) => Some(s.merge(&e)),
            (s, e) => s.or(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merging_parts_keeps_the_outer_interval_and_sums_the_rest() {
        let mut owner = SpanState::new(3);
        owner.add_interval(100, 150, 10, false);
        let mut other = SpanState::new(3);
        other.add_interval(120, 300, 0, true);
        other.errors = 2;
        let merged = owner.merge(&other);
        assert_eq!((merged.first_enter, merged.last_exit), (100, 300));
        assert_eq!(
            (merged.busy_ticks, merged.child_ticks, merged.errors),
            (230, 10, 2)
        );
        assert!(merged.entered && merged.panicked);
        // A part that never entered changes no interval.
        assert_eq!(owner.merge(&SpanState::new(3)), owner);
    }
}
