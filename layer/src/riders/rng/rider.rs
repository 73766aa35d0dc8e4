//! Seeded scopes as a rider: a span with a `seed` field swaps its stream in on enter
//! and the outer one back on exit ([`scopes`](super::scopes)), and its path's
//! bookkeeping is kept for the report.

use std::cell::RefCell;

use thread_local::ThreadLocal;
use tracing_core::span::Id;
use tracing_core::{Metadata, Subscriber};
use tracing_subscriber::registry::LookupSpan;

use super::attributes::{DRAWS, SEED};
use super::book::SeedBook;
use super::scopes;
use super::Scope;
use crate::core::rider::{Bits, Closing, Cx, NewSpan, Rider, SpanAttr};

/// The seeded-scope rider: its bookkeeping, and each thread's stack of outer streams.
#[derive(Default)]
pub(crate) struct SeedRider {
    pub(crate) book: SeedBook,
    /// The outer streams of the seeded spans entered on each thread, innermost last.
    saved: ThreadLocal<RefCell<Vec<Scope>>>,
}

impl Rider for SeedRider {
    fn interest(&self, meta: &'static Metadata<'static>, _depth: u16) -> Bits {
        meta.fields().field("seed").is_some() as Bits
    }

    fn new_span<S>(&self, span: &mut NewSpan<'_>, cx: &mut Cx<'_, '_, S>, _interest: Bits) -> Bits
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let (seeded, warning) = scopes::on_new_span(&self.book, span.attrs, span.id, cx.ctx());
        if let Some(warning) = warning {
            cx.warn(warning);
        }
        seeded as Bits
    }

    fn enter<S>(&self, id: &Id, cx: &mut Cx<'_, '_, S>, _bits: Bits) -> Bits
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut saved = self.saved.get_or_default().borrow_mut();
        scopes::enter(id, cx.ctx(), &mut saved) as Bits
    }

    fn exit<S>(&self, id: &Id, cx: &mut Cx<'_, '_, S>, _active: Bits)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut saved = self.saved.get_or_default().borrow_mut();
        scopes::exit(id, cx.ctx(), &mut saved);
    }

    fn close<S>(&self, span: &mut Closing, cx: &mut Cx<'_, '_, S>, _bits: Bits)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let seeded = scopes::close(&self.book, span.state.path, &span.id, cx.ctx());
        if let (Some((seed, draws)), true) = (seeded, span.wants_attributes()) {
            let seed =
                i64::try_from(seed).map_or_else(|_| SpanAttr::Str(seed.to_string()), SpanAttr::Int);
            span.attribute(SEED, seed);
            span.attribute(DRAWS, SpanAttr::Int(draws as i64));
        }
    }
}
