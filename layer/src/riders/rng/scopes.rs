//! The layer's side of seeded scopes: which spans are seeded, and where a span's stream
//! waits while the span is not entered. What a seeded span's close records is kept in
//! the [`SeedBook`] (see [`super::book`]).
//!
//! Only spans whose callsite declares a `seed` field ever reach this module: the layer
//! learns that once per callsite (in its path cache), so an unseeded span pays one bit
//! test. A seeded span's stream lives in its [`SeedScope`] extension between enters
//! and in the thread's current slot while entered.

use tracing_core::field::{Field, Visit};
use tracing_core::span::{Attributes, Id};
use tracing_core::Subscriber;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

use super::book::SeedBook;
use super::{swap_current, Scope};
use crate::core::paths::PathId;

/// The extension on a seeded span.
pub(crate) struct SeedScope {
    pub(crate) seed: u64,
    /// The span's stream while it is not entered; `None` before its first enter (it is
    /// seeded then) and while it is entered (it is the thread's current stream).
    pub(crate) scope: Option<Scope>,
    /// Draws and digest when the span last left, kept for its close.
    pub(crate) last: Option<Scope>,
}

impl SeedScope {
    pub(crate) fn new(seed: u64) -> Self {
        SeedScope {
            seed,
            scope: None,
            last: None,
        }
    }

    /// The stream to swap in on enter.
    pub(crate) fn take_for_enter(&mut self) -> Scope {
        self.scope
            .take()
            .unwrap_or_else(|| Scope::seeded(self.seed))
    }

    /// Takes the stream back on exit.
    pub(crate) fn put_back(&mut self, scope: Scope) {
        self.last = Some(scope.clone());
        self.scope = Some(scope);
    }
}

/// A new span of a callsite with a `seed` field: makes it seeded if the value is an
/// unsigned integer. Returns whether it is, and a warning to emit (once per callsite)
/// if the value is not.
pub(crate) fn on_new_span<S>(
    book: &SeedBook,
    attrs: &Attributes<'_>,
    id: &Id,
    ctx: &Context<'_, S>,
) -> (bool, Option<String>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    match seed_field(attrs) {
        Some(Ok(seed)) => {
            let Some(span) = ctx.span(id) else {
                return (false, None);
            };
            span.extensions_mut().replace(SeedScope::new(seed));
            (true, None)
        }
        Some(Err(value)) => {
            let meta = attrs.metadata();
            let callsite = meta as *const _ as usize;
            (false, book.bad_seed(callsite, meta.name(), &value))
        }
        None => (false, None),
    }
}

/// Entering a seeded span: its stream becomes the thread's, the outer one is saved.
pub(crate) fn enter<S>(id: &Id, ctx: &Context<'_, S>, saved: &mut Vec<Scope>) -> bool
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(span) = ctx.span(id) else {
        return false;
    };
    let mut ext = span.extensions_mut();
    let Some(seeded) = ext.get_mut::<SeedScope>() else {
        return false;
    };
    saved.push(swap_current(seeded.take_for_enter()));
    true
}

/// Leaving a seeded span (also while unwinding): the outer stream is restored exactly,
/// and the span keeps its own for its next enter.
pub(crate) fn exit<S>(id: &Id, ctx: &Context<'_, S>, saved: &mut Vec<Scope>)
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let Some(outer) = saved.pop() else { return };
    let inner = swap_current(outer);
    if let Some(span) = ctx.span(id) {
        if let Some(seeded) = span.extensions_mut().get_mut::<SeedScope>() {
            seeded.put_back(inner);
        }
    }
}

/// Closing a seeded span: its seed, draws and digest go into its path's bookkeeping.
/// Returns the span's seed and the number of values drawn in it.
pub(crate) fn close<S>(
    book: &SeedBook,
    path: PathId,
    id: &Id,
    ctx: &Context<'_, S>,
) -> Option<(u64, u64)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    let seeded = ctx.span(id)?.extensions_mut().remove::<SeedScope>()?;
    book.record(path, seeded.seed, seeded.last.as_ref());
    Some((seeded.seed, seeded.last.as_ref().map_or(0, |s| s.draws)))
}

/// The value of a span's `seed` field: `Some(Ok(n))` for an unsigned integer,
/// `Some(Err(text))` for anything else (a string, a negative number, a float), `None`
/// when the field has no value.
pub(crate) fn seed_field(attrs: &Attributes<'_>) -> Option<Result<u64, String>> {
    struct SeedVisitor(Option<Result<u64, String>>);
    impl Visit for SeedVisitor {
        fn record_u64(&mut self, field: &Field, value: u64) {
            if field.name() == "seed" {
                self.0 = Some(Ok(value));
            }
        }
        fn record_i64(&mut self, field: &Field, value: i64) {
            if field.name() == "seed" {
                self.0 = Some(u64::try_from(value).map_err(|_| value.to_string()));
            }
        }
        fn record_u128(&mut self, field: &Field, value: u128) {
            if field.name() == "seed" {
                self.0 = Some(u64::try_from(value).map_err(|_| value.to_string()));
            }
        }
        fn record_i128(&mut self, field: &Field, value: i128) {
            if field.name() == "seed" {
                self.0 = Some(u64::try_from(value).map_err(|_| value.to_string()));
            }
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            // Floats, bools and strings arrive here by default: all rejected.
            if field.name() == "seed" {
                self.0 = Some(Err(format!("{value:?}")));
            }
        }
    }
    let mut visitor = SeedVisitor(None);
    attrs.record(&mut visitor);
    visitor.0
}
