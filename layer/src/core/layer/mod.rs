//! The `tracing_subscriber::Layer` of the core, [`SpanCore`]: turns span callbacks
//! into per-path statistics, and calls the riders it was assembled with
//! ([`crate::core::rider`]) on the general paths.
//!
//! This module only dispatches; what is measured and how it is aggregated lives in
//! [`crate::core::stats`] and [`crate::core::paths`].
//!
//! # Where the time goes
//!
//! * `on_new_span`: intern the path (a thread-local hash lookup) and store the span's
//!   state in this thread's table ([`crate::core::spans`]): no registry lookup.
//! * `on_enter`: one clock read, pushed onto this thread's stack of entered spans. No
//!   span lookup.
//! * `on_exit`: one clock read; the interval is added to the span's state and, as child
//!   time, to the enclosing entered span's frame (self time needs no parent lookup).
//!   The state is found in this thread's table unless the span moved (see [`crate::core::spans`]).
//! * `on_close`: turn the state into a [`CallSample`] and record it in this thread's
//!   slot for the path: plain stores, no lock, no allocation after warm-up.
//!
//! Each callback's common case — a span no rider took on, owned by this thread — is a
//! few dozen instructions plus the clock read; everything else (spans with riders,
//! spans another thread touched, a thread's first span) is in out-of-line functions,
//! so that it adds no registers, stack or branches to the common case.
//! `cargo bench -p spanlab --bench overhead` measures the result.
//!
//! # What a "call" measures
//!
//! `wall` runs from a span's first enter to its last exit: for a span entered once (a
//! `with` block, a synchronous `#[instrument]` function) that is its duration; for an
//! async span entered on every poll it is the time from first poll to completion, of
//! which `busy` is the time actually entered and `idle` the rest. `self` is `busy` minus
//! the time spent in spans entered inside it on the same thread. A span that is closed
//! without ever being entered is counted, not timed.

use std::any::TypeId;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Dispatch, Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::rider::{Bits, Closing, Cx, NewSpan, Notes, Rider};
use super::spans::{Frame, Owned, SpanState};
use super::stats::CallSample;
use super::Core;

/// The core and the riders it was assembled with, shared by the layer and its readers.
pub(crate) struct Assembly<R> {
    pub(crate) core: Core,
    pub(crate) riders: R,
}

impl<R> std::ops::Deref for Assembly<R> {
    type Target = Core;

    fn deref(&self) -> &Core {
        &self.core
    }
}

/// The core's layer, calling the riders `R`.
pub(crate) struct SpanCore<R> {
    lab: Arc<Assembly<R>>,
}

impl<R: Rider> SpanCore<R> {
    pub(crate) fn new(lab: Arc<Assembly<R>>) -> Self {
        SpanCore { lab }
    }

    /// What the layer writes, for its readers.
    pub(crate) fn assembly(&self) -> &Arc<Assembly<R>> {
        &self.lab
    }

    /// Runs `f` on this thread's part of a span: in its own table, or the extension.
    fn update<S>(
        &self,
        owned: &mut Owned<'_>,
        id: &Id,
        ctx: &Context<'_, S>,
        f: impl Fn(&mut SpanState),
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if owned.update(id, &f).is_none() {
            self.lab.threads.update_elsewhere(id, ctx, &f);
        }
    }

    /// Runs the riders' `hook` with a [`Cx`] over this thread's state, then `after` on
    /// the state, then emits what the riders said: only once the state is released
    /// (rule 5 of `core::spans`).
    #[inline(always)]
    fn ride<S, T>(
        &self,
        owned: Owned<'_>,
        ctx: &Context<'_, S>,
        hook: impl FnOnce(&R, &mut Cx<'_, '_, S>) -> T,
        after: impl FnOnce(&mut Owned<'_>, T),
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let lab = &*self.lab;
        let mut cx = Cx::new(&lab.core, owned, ctx);
        let out = hook(&lab.riders, &mut cx);
        let (mut owned, later) = cx.finish();
        after(&mut owned, out);
        drop(owned);
        later.emit(&lab.speaker);
    }

    /// The riders' `hook` for an event, a `record` or a link: no span state changes.
    #[inline(never)]
    fn notify<S>(&self, ctx: &Context<'_, S>, hook: impl FnOnce(&R, &mut Cx<'_, '_, S>))
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.ride(self.lab.threads.owned(), ctx, hook, |_, ()| ());
    }
}

// The four span callbacks are `#[inline(always)]`: each is its common case
// (`spans::fast`, which makes no call) plus one call to its general path, so inlining
// them into tracing-subscriber's `Layered` dispatch, which has a stack frame anyway,
// saves a call, a prologue and an epilogue per callback.
impl<S, R> Layer<S> for SpanCore<R>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    R: Rider,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        self.lab.speaker.register(subscriber);
    }

    #[inline(always)]
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let lab = &*self.lab;
        if attrs.is_contextual() && !lab.riders.sees_every_span() {
            if let Some(mut owned) = lab.threads.owned_if_known() {
                if owned.new_span_in_place(id.into_u64(), attrs.metadata()) {
                    return;
                }
            }
        }
        self.new_span_slow(attrs, id, ctx);
    }

    #[inline(always)]
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let lab = &*self.lab;
        // While no span whose riders enter is alive anywhere (the common case),
        // entering is a clock read and a push.
        if lab.clock.is_inline() && lab.entering.load(Relaxed) == 0 {
            if let Some(mut owned) = lab.threads.owned_if_known() {
                if owned.enter_in_place(id.into_u64(), || lab.clock.raw_inline()) {
                    return;
                }
            }
        }
        self.enter_slow(id, ctx);
    }

    #[inline(always)]
    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let lab = &*self.lab;
        if !lab.clock.is_inline() {
            return self.exit_slow(id, lab.clock.raw(), ctx);
        }
        let now = lab.clock.raw_inline(); // first: the span's time excludes the rest
        if let Some(mut owned) = lab.threads.owned_if_known() {
            if owned.exit_in_place(id.into_u64(), now) {
                return;
            }
        }
        self.exit_slow(id, now, ctx);
    }

    #[inline(always)]
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(mut owned) = self.lab.threads.owned_if_known() {
            if owned.close_in_place(id.into_u64()) {
                return;
            }
        }
        self.close_slow(id, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if *event.metadata().level() == Level::ERROR {
            self.count_error(event, &ctx);
        }
        self.notify(&ctx, |riders, cx| {
            riders.event(event, cx, &mut Notes::default())
        });
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.notify(&ctx, |riders, cx| riders.record(id, values, cx));
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.notify(&ctx, |riders, cx| riders.follows_from(id, follows, cx));
    }

    /// The layer itself, and its [`Core`]: what [`word_of_span`] finds through a
    /// `Dispatch` (which asks every layer of a `Layered` stack in turn).
    unsafe fn downcast_raw(&self, id: TypeId) -> Option<*const ()> {
        if id == TypeId::of::<Self>() {
            Some(self as *const Self as *const ())
        } else if id == TypeId::of::<Core>() {
            // Lives in the `Arc` this layer holds: as long as the layer.
            Some(&self.lab.core as *const Core as *const ())
        } else {
            None
        }
    }
}

/// The rider word of span `id` in `dispatch`, from outside any callback (a program
/// thread asking about a span it holds a handle to). `None` when `dispatch` has no
/// spanlab core, or no registry to look extensions up in (a subscriber not built on
/// `tracing_subscriber::Registry`), or the core has no state for the span.
///
/// Takes no `Owned` and traces nothing ([`Threads::word_outside`](super::spans::Threads::word_outside)):
/// safe on any thread, at any time, but for a caller that holds span `id`'s extension
/// lock for writing (another layer's callback), which would wait on itself.
#[allow(dead_code)] // used by export, which may be compiled out
pub(crate) fn word_of_span(dispatch: &Dispatch, id: &Id) -> Option<super::rider::SpanWord> {
    let core = dispatch.downcast_ref::<Core>()?;
    let registry = dispatch.downcast_ref::<tracing_subscriber::Registry>()?;
    core.threads.word_outside(id, registry)
}

/// What a closing span contributes to its path's statistics.
#[inline(always)]
fn record_call(owned: &mut Owned<'_>, state: &SpanState) {
    record_call_panicking(owned, state, std::thread::panicking());
}

/// [`record_call`], for a caller that already asked whether the thread is panicking.
#[inline(always)]
fn record_call_panicking(owned: &mut Owned<'_>, state: &SpanState, panicking: bool) {
    let stats = &owned.state.slots_stats;
    if !state.entered {
        stats.record_never_entered();
        return;
    }
    owned.private.stats.record(
        stats,
        state.path,
        &CallSample::new(
            state.last_exit.saturating_sub(state.first_enter),
            state.busy_ticks,
            state.child_ticks,
            state.errors > 0,
            state.panicked || panicking,
        ),
    );
}

/// The callbacks' general paths (`crate::core::spans::fast` has their common case):
/// spans with riders, spans that are not this thread's, first uses.
impl<R: Rider> SpanCore<R> {
    /// An ERROR event marks the span it happened in as failed.
    fn count_error<S>(&self, event: &Event<'_>, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut owned = self.lab.threads.owned();
        let id = if event.is_contextual() {
            owned.private.frames.last().map(|f| Id::from_u64(f.id))
        } else {
            event.parent().cloned()
        };
        if let Some(id) = id {
            self.update(&mut owned, &id, ctx, |state| {
                state.errors = state.errors.saturating_add(1)
            });
        }
    }

    /// Adds an entered interval to the span's state, wherever that lives.
    #[inline(always)]
    fn add_interval<S>(
        &self,
        owned: &mut Owned<'_>,
        id: &Id,
        frame: &Frame,
        now: u64,
        ctx: &Context<'_, S>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let (enter, child) = (frame.enter, frame.child_ticks);
        let panicking = std::thread::panicking();
        if !owned.add_interval(id, enter, now, child, panicking) {
            self.add_interval_elsewhere(id, enter, now, child, panicking, ctx);
        }
    }

    #[cold]
    #[inline(never)]
    fn add_interval_elsewhere<S>(
        &self,
        id: &Id,
        enter: u64,
        now: u64,
        child: u64,
        panicking: bool,
        ctx: &Context<'_, S>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let add = |state: &mut SpanState| state.add_interval(enter, now, child, panicking);
        self.lab.threads.update_elsewhere(id, ctx, add);
    }

    /// `on_new_span` beyond its common case.
    #[inline(never)]
    fn new_span_slow<S>(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let lab = &*self.lab;
        let mut owned = lab.threads.owned();
        // Usually the contextual parent is on top of this thread's stack and owned by
        // this thread: no lock, no registry lookup.
        let parent = match attrs.is_contextual().then(|| owned.top_path()).flatten() {
            Some(Ok(parent)) => Some(parent),
            // Slow paths: the top span is owned elsewhere; or the parent is explicit, or
            // nothing is entered here (a root, or a parent entered on another thread).
            Some(Err(top)) => lab.threads.path_elsewhere(&Id::from_u64(top), &ctx),
            None => ctx.span(id).and_then(|span| span.parent()).and_then(|p| {
                // Through the `owned` we hold: a second `Owned` would alias it.
                owned
                    .path(p.id().into_u64())
                    .or_else(|| lab.threads.path_elsewhere(&p.id(), &ctx))
            }),
        };
        let interest = |meta, depth| lab.riders.interest(meta, depth);
        let (path, interest) =
            lab.paths
                .intern(&mut owned.private.paths, parent, attrs.metadata(), interest);
        if interest == 0 && !lab.riders.sees_every_span() {
            return owned.insert(id, path, 0, Default::default(), &ctx);
        }
        self.new_span_with_riders(owned, path, interest, attrs, id, &ctx);
    }

    #[inline(always)]
    fn new_span_with_riders<S>(
        &self,
        owned: Owned<'_>,
        path: super::paths::PathId,
        interest: Bits,
        attrs: &Attributes<'_>,
        id: &Id,
        ctx: &Context<'_, S>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut span = NewSpan {
            attrs,
            id,
            word: Default::default(),
        };
        let hook = |riders: &R, cx: &mut Cx<'_, '_, S>| {
            let bits = riders.new_span(&mut span, cx, interest);
            (bits, span.word)
        };
        self.ride(owned, ctx, hook, |owned, (riders, word)| {
            if riders & R::ENTERS != 0 {
                self.lab.entering.fetch_add(1, Relaxed);
            }
            owned.insert(id, path, riders, word, ctx);
        });
    }

    /// `on_enter` beyond its common case.
    #[inline(never)]
    fn enter_slow<S>(&self, id: &Id, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let lab = &*self.lab;
        let key = id.into_u64();
        let mut owned = lab.threads.owned();
        let duplicate = owned.private.frames.iter().any(|f| f.id == key);
        // While no span whose riders enter is alive anywhere (the common case):
        // nothing more.
        if !duplicate && lab.entering.load(Relaxed) > 0 {
            let riders = owned
                .riders(key)
                .or_else(|| lab.threads.riders_elsewhere(id, &ctx))
                .unwrap_or(0);
            if riders & R::ENTERS != 0 {
                return self.enter_with_riders(owned, riders & R::ENTERS, id, &ctx);
            }
        }
        let now = lab.clock.raw();
        owned.private.push_frame(key, now, duplicate, 0);
    }

    #[inline(never)]
    fn enter_with_riders<S>(
        &self,
        owned: Owned<'_>,
        riders_bits: Bits,
        id: &Id,
        ctx: &Context<'_, S>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let hook = |riders: &R, cx: &mut Cx<'_, '_, S>| riders.enter(id, cx, riders_bits);
        self.ride(owned, ctx, hook, |owned, active| {
            // Read last, so the span's time excludes the riders' work (GPU readings).
            let now = self.lab.clock.raw();
            owned.private.push_frame(id.into_u64(), now, false, active);
        });
    }

    /// `on_exit` beyond its common case, at `now`.
    #[inline(never)]
    fn exit_slow<S>(&self, id: &Id, now: u64, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut owned = self.lab.threads.owned();
        let Some(frame) = owned.private.pop_frame(id.into_u64(), now) else {
            return; // not entered here, or a re-entry (timed by the outer entry)
        };
        if frame.riders != 0 {
            return self.exit_with_riders(owned, frame, now, id, &ctx);
        }
        self.add_interval(&mut owned, id, &frame, now, &ctx);
    }

    #[inline(never)]
    fn exit_with_riders<S>(
        &self,
        owned: Owned<'_>,
        frame: Frame,
        now: u64,
        id: &Id,
        ctx: &Context<'_, S>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let hook = |riders: &R, cx: &mut Cx<'_, '_, S>| riders.exit(id, cx, frame.riders);
        self.ride(owned, ctx, hook, |owned, ()| {
            self.add_interval(owned, id, &frame, now, ctx)
        });
    }

    /// `on_close` beyond its common case.
    #[inline(never)]
    fn close_slow<S>(&self, id: Id, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut owned = self.lab.threads.owned();
        let (state, foreign) = match owned.take(id.into_u64()) {
            Ok((state, false)) => (state, false),
            Ok((state, true)) => match self.lab.threads.take_elsewhere(&id, &ctx, Some(state)) {
                Some(state) => (state, true),
                None => return,
            },
            Err(()) => match self.lab.threads.take_elsewhere(&id, &ctx, None) {
                Some(state) => (state, true),
                None => return,
            },
        };
        if state.riders != 0 {
            return self.close_with_riders(owned, state, foreign, id, &ctx);
        }
        record_call(&mut owned, &state);
    }

    /// Closes a span with riders: their bookkeeping, then the statistics.
    #[inline(never)]
    fn close_with_riders<S>(
        &self,
        owned: Owned<'_>,
        state: SpanState,
        foreign: bool,
        id: Id,
        ctx: &Context<'_, S>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if state.riders & R::ENTERS != 0 {
            self.lab.entering.fetch_sub(1, Relaxed);
        }
        let wants_attributes = R::USES_WORD && state.word.is_some();
        let mut closing = Closing::new(id, state, foreign, wants_attributes);
        let panicking = closing.panicking;
        let hook =
            |riders: &R, cx: &mut Cx<'_, '_, S>| riders.close(&mut closing, cx, state.riders);
        self.ride(owned, ctx, hook, |owned, ()| {
            record_call_panicking(owned, &state, panicking)
        });
    }
}

#[cfg(test)]
mod tests;
