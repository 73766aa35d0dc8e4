//! The `tracing_subscriber::Layer`: turns span callbacks into per-path statistics.
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
//! Each callback's common case — a span without features, not exported, owned by this
//! thread — is a few dozen instructions plus the clock read; everything else (seeded
//! and GPU spans, export records, spans another thread touched) is in out-of-line
//! functions, so that it adds no registers, stack or branches to the common case.
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

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use tracing_core::span::{Attributes, Id};
use tracing_core::{Event, Level, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::core::spans::{Frame, Owned, SpanState};
use crate::core::stats::CallSample;
use crate::features::{self, Deferred};
use crate::profile::{Profile, ProfileData};

/// The spanlab layer. Build it with [`crate::SpanLab::builder`]; read what it measured
/// through [`SpanLabLayer::profile`] or the [`crate::Guard`] built with it.
pub struct SpanLabLayer {
    data: Arc<ProfileData>,
}

impl std::fmt::Debug for SpanLabLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanLabLayer").finish_non_exhaustive()
    }
}

impl SpanLabLayer {
    pub(crate) fn new(data: Arc<ProfileData>) -> Self {
        SpanLabLayer { data }
    }

    /// A live handle on the statistics this layer collects.
    ///
    /// ```
    /// use tracing_subscriber::prelude::*;
    /// let (layer, _guard) = spanlab::SpanLab::builder().report_to(spanlab::ReportTarget::Off).build();
    /// let profile = layer.profile();
    /// tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
    ///     tracing::info_span!("step").in_scope(|| std::hint::black_box(2 + 2));
    /// });
    /// assert_eq!(profile.get("step").unwrap().calls, 1);
    /// ```
    pub fn profile(&self) -> Profile {
        Profile::from_data(self.data.clone())
    }

    /// Runs `f` on this thread's part of a span: in its own table, or the extension.
    fn update<S>(&self, id: &Id, ctx: &Context<'_, S>, f: impl Fn(&mut SpanState))
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if self.data.threads.owned().update(id, &f).is_none() {
            self.data.threads.update_elsewhere(id, ctx, &f);
        }
    }
}

// The four span callbacks are `#[inline(always)]`: each is its common case
// (`spans::fast`, which makes no call) plus one call to its general path, so inlining
// them into tracing-subscriber's `Layered` dispatch, which has a stack frame anyway,
// saves a call, a prologue and an epilogue per callback: 44 instructions of the ~400
// spanlab adds to a span's lifecycle (callgrind), 0.03× in the overhead benchmark.
impl<S> Layer<S> for SpanLabLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    #[inline(always)]
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let data = &*self.data;
        if attrs.is_contextual() && exports_nothing(data) {
            if let Some(mut owned) = data.threads.owned_if_known() {
                if owned.new_span_in_place(id.into_u64(), attrs.metadata()) {
                    return;
                }
            }
        }
        self.new_span_slow(attrs, id, ctx);
    }

    #[inline(always)]
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        let data = &*self.data;
        // While no span with features is alive anywhere (the common case), entering is
        // a clock read and a push.
        if data.clock.is_inline() && data.featured.load(Relaxed) == 0 {
            if let Some(mut owned) = data.threads.owned_if_known() {
                if owned.enter_in_place(id.into_u64(), || data.clock.raw_inline()) {
                    return;
                }
            }
        }
        self.enter_slow(id, ctx);
    }

    #[inline(always)]
    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        let data = &*self.data;
        if !data.clock.is_inline() {
            return self.exit_slow(id, data.clock.raw(), ctx);
        }
        let now = data.clock.raw_inline(); // first: the span's time excludes the rest
        if let Some(mut owned) = data.threads.owned_if_known() {
            if owned.exit_in_place(id.into_u64(), now) {
                return;
            }
        }
        self.exit_slow(id, now, ctx);
    }

    #[inline(always)]
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        if let Some(mut owned) = self.data.threads.owned_if_known() {
            if owned.close_in_place(id.into_u64()) {
                return;
            }
        }
        self.close_slow(id, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        #[cfg(feature = "otlp")]
        if self.data.export.is_some() {
            crate::sinks::export::hooks::event(&self.data, event, &ctx);
        }
        if *event.metadata().level() != Level::ERROR {
            if crate::riders::llm::is_record_event(event.metadata()) {
                features::llm_record(&self.data, event, &ctx);
            }
            return;
        }
        let id = if event.is_contextual() {
            self.data
                .threads
                .owned()
                .private
                .frames
                .last()
                .map(|f| Id::from_u64(f.id))
        } else {
            event.parent().cloned()
        };
        if let Some(id) = id {
            self.update(&id, &ctx, |state| {
                state.errors = state.errors.saturating_add(1)
            });
        }
    }

    fn on_record(&self, id: &Id, values: &tracing_core::span::Record<'_>, ctx: Context<'_, S>) {
        #[cfg(feature = "otlp")]
        if self.data.export.is_some() {
            crate::sinks::export::hooks::record(&self.data, id, values, &ctx);
        }
        let _ = (id, values, ctx);
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        #[cfg(feature = "otlp")]
        if self.data.export.is_some() {
            crate::sinks::export::hooks::follows_from(&self.data, id, follows, &ctx);
        }
        let _ = (id, follows, ctx);
    }
}

/// Whether spans need no export record (export off, or not built).
#[inline(always)]
fn exports_nothing(data: &ProfileData) -> bool {
    #[cfg(feature = "otlp")]
    return data.export.is_none();
    #[cfg(not(feature = "otlp"))]
    {
        let _ = data;
        true
    }
}

/// What a closing span contributes to its path's statistics.
#[inline(always)]
fn record_call(owned: &mut Owned<'_>, state: &SpanState) {
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
            state.panicked || std::thread::panicking(),
        ),
    );
}

/// The callbacks' general paths (`crate::core::spans::fast` has their common case): spans
/// with features, exported spans, spans that are not this thread's, first uses.
impl SpanLabLayer {
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
        self.data.threads.update_elsewhere(id, ctx, add);
    }

    #[inline(never)]
    fn new_span_with_features<S>(
        &self,
        mut owned: Owned<'_>,
        state: SpanState,
        callsite: u8,
        attrs: &Attributes<'_>,
        id: &Id,
        ctx: &Context<'_, S>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut deferred = Deferred::default();
        let features = features::new_span(&self.data, callsite, attrs, id, ctx, &mut deferred);
        owned.insert(id, state.path, features, state.export, ctx);
        deferred.emit(); // after the last use of `owned`: events come back to this layer
    }

    /// `on_new_span` beyond its common case.
    #[inline(never)]
    fn new_span_slow<S>(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let paths = &self.data.paths;
        let mut owned = self.data.threads.owned();
        // Usually the contextual parent is on top of this thread's stack and owned by
        // this thread: no lock, no registry lookup.
        let parent = match attrs.is_contextual().then(|| owned.top_path()).flatten() {
            Some(Ok(parent)) => Some(parent),
            // Slow paths: the top span is owned elsewhere; or the parent is explicit, or
            // nothing is entered here (a root, or a parent entered on another thread).
            Some(Err(top)) => self.data.threads.path_elsewhere(&Id::from_u64(top), &ctx),
            None => ctx.span(id).and_then(|span| span.parent()).and_then(|p| {
                // Through the `owned` we hold: a second `Owned` would alias it.
                owned
                    .path(p.id().into_u64())
                    .or_else(|| self.data.threads.path_elsewhere(&p.id(), &ctx))
            }),
        };
        let classify = |meta, depth| features::classify(&self.data, meta, depth);
        let (path, callsite) =
            paths.intern(&mut owned.private.paths, parent, attrs.metadata(), classify);
        #[allow(unused_mut)]
        let mut state = SpanState::new(path);
        #[cfg(feature = "otlp")]
        if let Some(export) = &self.data.export {
            state.export =
                crate::sinks::export::hooks::new_span(&self.data, export, &mut owned, attrs, &ctx);
        }
        if callsite != 0 {
            return self.new_span_with_features(owned, state, callsite, attrs, id, &ctx);
        }
        owned.insert(id, state.path, state.features, state.export, &ctx);
    }

    /// `on_enter` beyond its common case.
    #[inline(never)]
    fn enter_slow<S>(&self, id: &Id, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let ctx = &ctx;
        let key = id.into_u64();
        let owned = self.data.threads.owned();
        let duplicate = owned.private.frames.iter().any(|f| f.id == key);
        // While no span with features is alive anywhere (the common case): nothing more.
        if !duplicate && self.data.featured.load(Relaxed) > 0 {
            return self.enter_with_features(owned, id, ctx);
        }
        let now = self.data.clock.raw();
        owned.private.push_frame(key, now, duplicate, 0);
    }

    /// `on_exit` beyond its common case, at `now`.
    #[inline(never)]
    fn exit_slow<S>(&self, id: &Id, now: u64, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut owned = self.data.threads.owned();
        let Some(frame) = owned.private.pop_frame(id.into_u64(), now) else {
            return; // not entered here, or a re-entry (timed by the outer entry)
        };
        if frame.features != 0 {
            return self.exit_with_features(owned, frame, now, id, &ctx);
        }
        self.add_interval(&mut owned, id, &frame, now, &ctx);
    }

    /// `on_close` beyond its common case.
    #[inline(never)]
    fn close_slow<S>(&self, id: Id, ctx: Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut owned = self.data.threads.owned();
        let (state, foreign) = match owned.take(id.into_u64()) {
            Ok((state, false)) => (state, false),
            Ok((state, true)) => match self.data.threads.take_elsewhere(&id, &ctx, Some(state)) {
                Some(state) => (state, true),
                None => return,
            },
            Err(()) => match self.data.threads.take_elsewhere(&id, &ctx, None) {
                Some(state) => (state, true),
                None => return,
            },
        };
        if state.features != 0 || state.export.is_some() {
            return self.close_with_extras(owned, state, foreign, id, &ctx);
        }
        record_call(&mut owned, &state);
    }

    #[inline(never)]
    fn enter_with_features<S>(&self, mut owned: Owned<'_>, id: &Id, ctx: &Context<'_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut deferred = Deferred::default();
        let features = features::enter(&self.data, &mut owned, id, ctx, &mut deferred);
        // Read last, so the span's time excludes the work above (GPU readings included).
        let now = self.data.clock.raw();
        owned
            .private
            .push_frame(id.into_u64(), now, false, features);
        deferred.emit(); // after the last use of `owned`, as above
    }

    #[inline(never)]
    fn exit_with_features<S>(
        &self,
        mut owned: Owned<'_>,
        frame: Frame,
        now: u64,
        id: &Id,
        ctx: &Context<'_, S>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut deferred = Deferred::default();
        features::exit(
            &self.data,
            &mut owned,
            id,
            frame.features,
            ctx,
            &mut deferred,
        );
        self.add_interval(&mut owned, id, &frame, now, ctx);
        deferred.emit(); // after the last use of `owned`, as above
    }

    /// Closes a span with features or an export record: their bookkeeping, then the
    /// statistics.
    #[inline(never)]
    fn close_with_extras<S>(
        &self,
        #[allow(unused_mut)] mut owned: Owned<'_>,
        state: SpanState,
        foreign: bool,
        id: Id,
        ctx: &Context<'_, S>,
    ) where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let _ = foreign;
        #[cfg(feature = "otlp")]
        // SAFETY: the span is closing on this thread, which took its whole state.
        let record = unsafe { crate::sinks::export::span::ExportSpan::from_ptr(state.export) };
        #[cfg(feature = "otlp")]
        let mut annotations = crate::features::Annotations::new();
        if state.features != 0 {
            #[cfg(feature = "otlp")]
            let out = record.is_some().then_some(&mut annotations);
            #[cfg(not(feature = "otlp"))]
            let out = None;
            features::close(&self.data, &state, state.path, &id, ctx, out);
        }
        #[cfg(feature = "otlp")]
        if let (Some(record), Some(export)) = (record, &self.data.export) {
            crate::sinks::export::hooks::close(
                &self.data,
                export,
                &mut owned,
                record,
                &state,
                foreign,
                annotations,
                &id,
                ctx,
            );
        }
        record_call(&mut owned, &state);
    }
}

#[cfg(test)]
mod tests;
