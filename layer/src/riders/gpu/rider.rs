//! GPU memory as a rider: a measured span reads the device at enter and exit; its
//! readings fold into its path's aggregates at close (see the [module](super) docs).

use std::cell::RefCell;

use thread_local::ThreadLocal;
use tracing_core::span::Id;
use tracing_core::{Level, Metadata, Subscriber};
use tracing_subscriber::registry::LookupSpan;

use super::{GpuBook, GpuFields, GpuFrame, GpuSpan};
use crate::core::rider::{Bits, Closing, Cx, NewSpan, Rider};
use crate::core::say::notice;

/// Interest bit: the callsite declares a `gpu` or `gpu.sync` field.
const FIELD: Bits = 1;
/// Interest bit: a builder rule selects the callsite. Only ever an interest: a
/// measured span carries [`FIELD`]'s bit, whatever selected it.
const RULE: Bits = 2;

notice!(GPU_LINE, Level::INFO, "spanlab::gpu");

/// The GPU rider: the probe and aggregates, and each thread's measured spans.
pub(crate) struct GpuRider {
    pub(crate) book: GpuBook,
    /// The measured spans entered on each thread, innermost last (peaks nest).
    frames: ThreadLocal<RefCell<Vec<GpuFrame>>>,
}

impl GpuRider {
    pub(crate) fn new(book: GpuBook) -> Self {
        if book.config.log {
            GPU_LINE.register();
        }
        GpuRider {
            book,
            frames: ThreadLocal::new(),
        }
    }
}

impl Rider for GpuRider {
    const BITS: u32 = 2;
    const ENTERS: Bits = FIELD;

    fn interest(&self, meta: &'static Metadata<'static>, depth: u16) -> Bits {
        let fields = meta.fields();
        let mut bits = 0;
        if fields.field("gpu").is_some() || fields.field("gpu.sync").is_some() {
            bits |= FIELD;
        }
        if self.book.has_rules() && self.book.config.rule_selects(meta, depth) {
            bits |= RULE;
        }
        bits
    }

    fn new_span<S>(&self, span: &mut NewSpan<'_>, cx: &mut Cx<'_, '_, S>, interest: Bits) -> Bits
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if self.book.known_off() {
            return 0;
        }
        let fields = if interest & FIELD != 0 {
            GpuFields::of(span.attrs)
        } else {
            GpuFields::default()
        };
        if !fields.gpu.unwrap_or(interest & RULE != 0) {
            return 0;
        }
        let Some(registered) = cx.span(span.id) else {
            return 0;
        };
        let sync = fields.sync.unwrap_or(self.book.config.sync);
        registered.extensions_mut().replace(GpuSpan {
            sync,
            devices: Vec::new(),
        });
        FIELD
    }

    fn enter<S>(&self, id: &Id, cx: &mut Cx<'_, '_, S>, _bits: Bits) -> Bits
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let sync = cx
            .span(id)
            .and_then(|s| s.extensions().get::<GpuSpan>().map(|g| g.sync));
        let Some(sync) = sync else { return 0 };
        let mut frames = self.frames.get_or_default().borrow_mut();
        if let Some(warning) = self.book.enter(id.into_u64(), sync, &mut frames) {
            cx.warn(warning);
        }
        FIELD
    }

    fn exit<S>(&self, id: &Id, cx: &mut Cx<'_, '_, S>, _active: Bits)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let mut frames = self.frames.get_or_default().borrow_mut();
        let (calls, warning) = self.book.exit(id.into_u64(), &mut frames);
        if let Some(warning) = warning {
            cx.warn(warning);
        }
        let Some(calls) = calls else { return };
        let Some(span) = cx.span(id) else { return };
        let line = self
            .book
            .config
            .log
            .then(|| self.book.summary(span.name(), &calls));
        if let Some(gpu) = span.extensions_mut().get_mut::<GpuSpan>() {
            gpu.add(calls);
        }
        drop(span);
        if let Some(line) = line {
            cx.say(&GPU_LINE, line);
        }
    }

    fn close<S>(&self, span: &mut Closing, cx: &mut Cx<'_, '_, S>, _bits: Bits)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        let gpu = cx
            .span(&span.id)
            .and_then(|s| s.extensions_mut().remove::<GpuSpan>());
        let Some(gpu) = gpu.filter(|g| !g.devices.is_empty()) else {
            return;
        };
        self.book.record(span.state.path, &gpu);
        if span.wants_attributes() {
            self.book.annotate(&gpu, span);
        }
    }
}
