//! The seam between the span core and whatever rides on a span.
//!
//! The core times spans and knows nothing else. A **rider** adds to a span between its
//! callbacks — a seeded scope swaps a random stream in and out, the GPU rider reads
//! device memory, the prompt rider collects LLM records, the export sink builds the
//! span's OTLP record — through the one interface here, [`Rider`]. The layer is
//! assembled with a list of riders (a nested tuple, `(A, (B, (C, D)))`, itself a
//! [`Rider`]); the core calls the list, never a rider by name.
//!
//! # What the core keeps for riders
//!
//! * **Bits.** Each rider owns [`Rider::BITS`] bits of a byte, assigned by its position
//!   in the list. Once per callsite and parent path the core asks
//!   [`Rider::interest`] and caches the answer with the path; a span of a callsite
//!   nobody is interested in never reaches a rider (the callbacks' fast paths in
//!   `core::spans::fast` test that byte). A span a rider takes on carries that rider's
//!   bit in its state, and its close goes down the general path to the rider's
//!   [`Rider::close`].
//! * **Enter and exit** reach only the riders whose bits are in [`Rider::ENTERS`]: the
//!   core counts the spans alive that carry such a bit, and while there are none,
//!   entering a span looks nothing up.
//! * **One word per span**, [`SpanWord`], for the one rider that declares
//!   [`Rider::USES_WORD`] (export keeps its record's address there). It travels with
//!   the span's owner part under the core's ownership rules (`core::spans`).
//! * **Per-thread state** is each rider's own (a `thread_local::ThreadLocal` it owns),
//!   so the core's per-thread table stays the same size whatever is assembled. The word
//!   rider, which runs on every span, also gets one per-thread word in the core's table
//!   ([`Cx::thread_word`]) to keep the address of its own state there: on the paths it
//!   takes for every span, it then needs no lookup.
//!
//! # Rules for riders
//!
//! 1. A hook never traces: an event emitted inside a callback would come back into the
//!    layer while it holds the thread's state. Hooks hand what they want to say to
//!    [`Cx::warn`] or [`Cx::say`]; the core emits it once the state is released
//!    (debug builds check this rule: see `core::spans::Owned`).
//! 2. A hook takes only its own part: its fields in the span's registry extensions, its
//!    own per-thread state, its own aggregates.
//! 3. Riders that add attributes to a span's export do so at close, through
//!    [`Closing::attribute`], which the sinks after them read. Sinks come last in the
//!    list.

use std::any::Any;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Event, Metadata, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::{ExtensionsMut, LookupSpan, SpanRef};

use super::clock::Clock;
use super::paths::{self, PathId};
use super::say::{Later, Notice};
use super::spans::{Owned, SpanState, Threads};
use super::Core;

/// Rider bits: bit `i` of a span's or callsite's byte belongs to the `i`-th bit a rider
/// of the assembled list owns.
pub(crate) type Bits = u8;

/// The opaque word a span carries for the rider that declares [`Rider::USES_WORD`]: 0
/// means nothing. The core moves it with the span's owner part and hands it back at
/// close; what it points to is the rider's business.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct SpanWord(pub(crate) usize);

impl SpanWord {
    /// Nothing.
    pub(crate) const NONE: SpanWord = SpanWord(0);

    /// Whether there is something.
    #[inline(always)]
    pub(crate) fn is_some(self) -> bool {
        self.0 != 0
    }
}

/// A value a rider attaches to a span for the sinks (GPU readings, seeds).
#[derive(Clone, Debug, PartialEq)]
pub(crate) enum SpanAttr {
    Int(i64),
    Float(f64),
    Str(String),
}

/// Everything that rides on a span. Every hook has a default that does nothing, so a
/// rider implements only what it needs. The core calls a hook only for spans the rider
/// took on (its bits), except [`Rider::event`], [`Rider::record`] and
/// [`Rider::follows_from`], which every rider sees.
pub(crate) trait Rider: Send + Sync + 'static {
    /// How many bits the rider owns (a list: the sum of its members').
    const BITS: u32 = 1;
    /// Which of its bits need [`Rider::enter`] and [`Rider::exit`]. A span carrying one
    /// sends every enter down the general path while it is alive.
    const ENTERS: Bits = 1;
    /// Whether the rider keeps a [`SpanWord`] on its spans (one rider at most).
    const USES_WORD: bool = false;

    /// Whether every new span must reach [`Rider::new_span`], whatever its callsite
    /// (export, which gives every sampled span a record). Checked on the fast path:
    /// keep it one load.
    #[inline(always)]
    fn sees_every_span(&self) -> bool {
        false
    }

    /// The bits of the callsite `meta` at `depth` (1: a root span): which hooks may
    /// want its spans. Asked once per callsite and parent path, then cached.
    fn interest(&self, _meta: &'static Metadata<'static>, _depth: u16) -> Bits {
        0
    }

    /// A new span whose callsite has `interest` bits (or any span, when
    /// [`Rider::sees_every_span`]). Returns the bits the span carries from now on.
    fn new_span<S>(&self, _span: &mut NewSpan<'_>, _cx: &mut Cx<'_, '_, S>, _interest: Bits) -> Bits
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        0
    }

    /// The span `id`, carrying `bits` in [`Rider::ENTERS`], is entered. Returns the bits
    /// whose [`Rider::exit`] must run when it exits.
    fn enter<S>(&self, _id: &Id, _cx: &mut Cx<'_, '_, S>, _bits: Bits) -> Bits
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        0
    }

    /// The span `id` exits (also while unwinding); `active`: what [`Rider::enter`]
    /// returned.
    fn exit<S>(&self, _id: &Id, _cx: &mut Cx<'_, '_, S>, _active: Bits)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
    }

    /// A span carrying `bits` closed: the rider's bookkeeping, and its attributes for
    /// the sinks.
    fn close<S>(&self, _span: &mut Closing, _cx: &mut Cx<'_, '_, S>, _bits: Bits)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
    }

    /// Any event. `notes` carries what an earlier rider in the list learnt from it for
    /// the later ones (the prompt rider's record, for export).
    fn event<S>(&self, _event: &Event<'_>, _cx: &mut Cx<'_, '_, S>, _notes: &mut Notes)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
    }

    /// `Span::record` on span `id`.
    fn record<S>(&self, _id: &Id, _values: &Record<'_>, _cx: &mut Cx<'_, '_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
    }

    /// `Span::follows_from`: span `id` follows `follows`.
    fn follows_from<S>(&self, _id: &Id, _follows: &Id, _cx: &mut Cx<'_, '_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
    }
}

/// No rider at all: the core alone.
impl Rider for () {
    const BITS: u32 = 0;
    const ENTERS: Bits = 0;
}

/// The low `bits` bits.
const fn low(bits: u32) -> Bits {
    if bits >= 8 {
        Bits::MAX
    } else {
        ((1u16 << bits) - 1) as Bits
    }
}

/// A list of riders: `A` owns the low bits, `B` the ones above them. Every hook runs
/// `A`'s part first, so a sink placed after the riders sees their attributes and notes.
impl<A: Rider, B: Rider> Rider for (A, B) {
    const BITS: u32 = {
        assert!(
            A::BITS + B::BITS <= Bits::BITS,
            "more rider bits than a byte holds"
        );
        A::BITS + B::BITS
    };
    const ENTERS: Bits = (A::ENTERS & low(A::BITS)) | (B::ENTERS << A::BITS);
    const USES_WORD: bool = {
        assert!(
            !(A::USES_WORD && B::USES_WORD),
            "two riders want the span word"
        );
        A::USES_WORD || B::USES_WORD
    };

    #[inline(always)]
    fn sees_every_span(&self) -> bool {
        self.0.sees_every_span() || self.1.sees_every_span()
    }

    #[inline(always)]
    fn interest(&self, meta: &'static Metadata<'static>, depth: u16) -> Bits {
        (self.0.interest(meta, depth) & low(A::BITS)) | (self.1.interest(meta, depth) << A::BITS)
    }

    #[inline(always)]
    fn new_span<S>(&self, span: &mut NewSpan<'_>, cx: &mut Cx<'_, '_, S>, interest: Bits) -> Bits
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let (a, b) = (interest & low(A::BITS), interest >> A::BITS);
        let mut bits = 0;
        if a != 0 || self.0.sees_every_span() {
            bits |= self.0.new_span(span, cx, a) & low(A::BITS);
        }
        if b != 0 || self.1.sees_every_span() {
            bits |= self.1.new_span(span, cx, b) << A::BITS;
        }
        bits
    }

    #[inline(always)]
    fn enter<S>(&self, id: &Id, cx: &mut Cx<'_, '_, S>, bits: Bits) -> Bits
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let (a, b) = (
            bits & low(A::BITS) & A::ENTERS,
            (bits >> A::BITS) & B::ENTERS,
        );
        let mut active = 0;
        if a != 0 {
            active |= self.0.enter(id, cx, a) & low(A::BITS);
        }
        if b != 0 {
            active |= self.1.enter(id, cx, b) << A::BITS;
        }
        active
    }

    #[inline(always)]
    fn exit<S>(&self, id: &Id, cx: &mut Cx<'_, '_, S>, active: Bits)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        // Innermost first: the later rider entered last.
        let (a, b) = (active & low(A::BITS), active >> A::BITS);
        if b != 0 {
            self.1.exit(id, cx, b);
        }
        if a != 0 {
            self.0.exit(id, cx, a);
        }
    }

    #[inline(always)]
    fn close<S>(&self, span: &mut Closing, cx: &mut Cx<'_, '_, S>, bits: Bits)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let (a, b) = (bits & low(A::BITS), bits >> A::BITS);
        if a != 0 {
            self.0.close(span, cx, a);
        }
        if b != 0 {
            self.1.close(span, cx, b);
        }
    }

    #[inline(always)]
    fn event<S>(&self, event: &Event<'_>, cx: &mut Cx<'_, '_, S>, notes: &mut Notes)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.0.event(event, cx, notes);
        self.1.event(event, cx, notes);
    }

    #[inline(always)]
    fn record<S>(&self, id: &Id, values: &Record<'_>, cx: &mut Cx<'_, '_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.0.record(id, values, cx);
        self.1.record(id, values, cx);
    }

    #[inline(always)]
    fn follows_from<S>(&self, id: &Id, follows: &Id, cx: &mut Cx<'_, '_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.0.follows_from(id, follows, cx);
        self.1.follows_from(id, follows, cx);
    }
}

/// A span being created, as the riders see it.
pub(crate) struct NewSpan<'a> {
    pub(crate) attrs: &'a Attributes<'a>,
    pub(crate) id: &'a Id,
    /// The span's [`SpanWord`], for the rider that [uses it](Rider::USES_WORD).
    pub(crate) word: SpanWord,
}

/// A span closing, as the riders see it: its whole state (every thread's part merged).
pub(crate) struct Closing {
    pub(crate) id: Id,
    pub(crate) state: SpanState,
    // Part of the seam: the riders that read it (export) may be compiled out.
    #[allow(dead_code)]
    /// Other threads added parts to the span (see `core::spans`): a rider that keeps
    /// per-span data in the extensions from other threads finds it there.
    pub(crate) foreign: bool,
    /// The closing thread is unwinding from a panic.
    #[allow(dead_code)] // as `foreign`
    pub(crate) panicking: bool,
    attributes: Option<Vec<(String, SpanAttr)>>,
}

impl Closing {
    #[inline]
    pub(crate) fn new(id: Id, state: SpanState, foreign: bool, wants_attributes: bool) -> Self {
        Closing {
            id,
            state,
            foreign,
            panicking: std::thread::panicking(),
            attributes: wants_attributes.then(Vec::new),
        }
    }

    /// Whether a sink reads attributes of this span (only then are they worth making).
    #[inline]
    pub(crate) fn wants_attributes(&self) -> bool {
        self.attributes.is_some()
    }

    /// Attaches an attribute for the sinks, if one wants them.
    pub(crate) fn attribute(&mut self, name: impl Into<String>, value: SpanAttr) {
        if let Some(attributes) = &mut self.attributes {
            attributes.push((name.into(), value));
        }
    }

    /// The attributes the riders attached, for a sink.
    #[allow(dead_code)] // as `foreign`
    #[inline]
    pub(crate) fn take_attributes(&mut self) -> Vec<(String, SpanAttr)> {
        self.attributes.take().unwrap_or_default()
    }
}

/// What one rider learnt from an event, for the riders after it (at most one note per
/// event).
#[derive(Default)]
pub(crate) struct Notes(Option<Box<dyn Any + Send>>);

impl Notes {
    /// Leaves `note` for the riders after this one.
    pub(crate) fn put<T: Any + Send>(&mut self, note: T) {
        self.0 = Some(Box::new(note));
    }

    /// The note of type `T`, if an earlier rider left one.
    #[allow(dead_code)] // read by export, which may be compiled out
    pub(crate) fn get<T: Any + Send>(&self) -> Option<&T> {
        self.0.as_ref()?.downcast_ref()
    }
}

/// Where an addition to span `id` goes, for the word's rider ([`Cx::with_word`]).
#[allow(dead_code)] // the word's rider (export) may be compiled out
pub(crate) enum WordAt<'e, 'x> {
    /// The calling thread owns the span: the word, to use without a lock.
    Here(SpanWord),
    /// The span's owner part was evicted to its extension: the word, valid while the
    /// extension's lock (held here) is.
    Locked(SpanWord, &'e mut ExtensionsMut<'x>),
    /// Another thread owns the span: the extension, where the rider leaves its part
    /// for the close to merge (the span is flagged, so [`Closing::foreign`] is set).
    Elsewhere(&'e mut ExtensionsMut<'x>),
}

/// What a hook may reach of the core: the span tree, the clock, paths, the span word,
/// and a place for what it wants to say.
pub(crate) struct Cx<'a, 'c, S> {
    core: &'a Core,
    owned: Owned<'a>,
    ctx: &'a Context<'c, S>,
    later: Later,
}

impl<'a, 'c, S> Cx<'a, 'c, S>
where
    S: Subscriber + for<'l> LookupSpan<'l>,
{
    #[inline(always)]
    pub(crate) fn new(core: &'a Core, owned: Owned<'a>, ctx: &'a Context<'c, S>) -> Self {
        Cx {
            core,
            owned,
            ctx,
            later: Later::default(),
        }
    }

    /// Ends the hooks' turn: the thread's state back, and what they want to say (to be
    /// emitted once the state is released).
    #[inline(always)]
    pub(crate) fn finish(self) -> (Owned<'a>, Later) {
        (self.owned, self.later)
    }

    /// The registry's view of span `id` (its name, extensions, parents).
    #[inline]
    pub(crate) fn span(&self, id: &Id) -> Option<SpanRef<'_, S>> {
        self.ctx.span(id)
    }

    /// The registry context, for scopes (`event_scope`, `event_span`).
    #[inline]
    pub(crate) fn ctx(&self) -> &Context<'c, S> {
        self.ctx
    }

    /// The layer's clock (raw ticks; conversions to wall time).
    #[inline]
    pub(crate) fn clock(&self) -> &'a Clock {
        &self.core.clock
    }

    /// The span entered last on this thread, if any.
    #[allow(dead_code)] // used by export, which may be compiled out
    #[inline]
    pub(crate) fn current(&self) -> Option<Id> {
        self.owned.private.frames.last().map(|f| Id::from_u64(f.id))
    }

    /// The path of span `id`, wherever it lives.
    pub(crate) fn path_of(&mut self, id: &Id) -> Option<PathId> {
        self.owned
            .path(id.into_u64())
            .or_else(|| self.core.threads.path_elsewhere(id, self.ctx))
    }

    /// The span names of `path`, from the root.
    pub(crate) fn path_names(&self, path: PathId) -> Vec<&'static str> {
        paths::names(&self.core.paths.entries(), path)
    }

    #[allow(dead_code)] // as `current`
    /// The [`SpanWord`] of span `id`, wherever it lives; `None` for a span the core has
    /// no state for.
    #[inline]
    pub(crate) fn word_of(&mut self, id: &Id) -> Option<SpanWord> {
        self.owned
            .word(id.into_u64())
            .or_else(|| self.core.threads.word_elsewhere(id, self.ctx))
    }

    /// Runs `f` on where additions to span `id` go, if its word is set.
    #[allow(dead_code)] // as `current`
    pub(crate) fn with_word<R>(
        &mut self,
        id: &Id,
        f: impl FnOnce(WordAt<'_, '_>) -> R,
    ) -> Option<R> {
        if let Some(word) = self.owned.word(id.into_u64()) {
            return word.is_some().then(|| f(WordAt::Here(word)));
        }
        with_word_elsewhere(&self.core.threads, id, self.ctx, f)
    }

    /// This thread's word for the rider that [uses the span word](Rider::USES_WORD): 0
    /// until that rider sets it.
    #[allow(dead_code)] // the word's rider (export) may be compiled out
    #[inline]
    pub(crate) fn thread_word(&self) -> usize {
        self.owned.private.thread_word
    }

    /// Sets this thread's word (see [`Cx::thread_word`]). Whatever it points to must
    /// live as long as the layer does.
    #[allow(dead_code)] // as `thread_word`
    #[inline]
    pub(crate) fn set_thread_word(&mut self, word: usize) {
        self.owned.private.thread_word = word;
    }

    /// A warning, emitted (as a WARN event, target `spanlab`) once the hooks are done.
    pub(crate) fn warn(&mut self, message: String) {
        self.later.push(&super::say::WARNING, message);
    }

    /// An event of the rider's own callsite, emitted once the hooks are done.
    pub(crate) fn say(&mut self, notice: &'static Notice, message: String) {
        self.later.push(notice, message);
    }
}

#[cold]
#[allow(dead_code)] // as `Cx::current`
fn with_word_elsewhere<S, R>(
    threads: &Threads,
    id: &Id,
    ctx: &Context<'_, S>,
    f: impl FnOnce(WordAt<'_, '_>) -> R,
) -> Option<R>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    if !threads.word_elsewhere(id, ctx)?.is_some() {
        return None;
    }
    let span = ctx.span(id)?;
    let mut ext = span.extensions_mut();
    // Evicted by its owner: the word is in the extension's part, under its lock.
    let evicted = ext
        .get_mut::<SpanState>()
        .map(|s| s.word)
        .filter(|w| w.is_some());
    if let Some(word) = evicted {
        return Some(f(WordAt::Locked(word, &mut ext)));
    }
    threads.mark_foreign(id.into_u64());
    Some(f(WordAt::Elsewhere(&mut ext)))
}
