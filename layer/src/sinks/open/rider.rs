//! The open-span rider: records the fields of spans whose callsite has any, and keeps
//! the watcher that samples the open spans.
//!
//! Its interest is decided by a callsite's metadata alone (fields declared, and the
//! rider enabled), so a span without fields carries no bit of it and keeps the core's
//! fast paths; enabled or not, it never enters or exits (`ENTERS` is 0).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;

use tracing_core::span::{Id, Record};
use tracing_core::{Metadata, Subscriber};
use tracing_subscriber::registry::LookupSpan;

use super::config::DEFAULT_STALL_FACTOR;
use super::fields::{Buf, FieldTables, ENTRIES};
use super::watch::{RunTag, Sample, Watch};
use super::OpenThread;
use crate::core::rider::{Bits, Closing, Cx, NewSpan, Rider};
use crate::core::say::{Later, WARNING};
use crate::core::sync::LockUnpoisoned;
use crate::core::Core;

/// The open-span rider (see the [module](self) docs).
pub(crate) struct OpenRider {
    /// Record fields (`Builder::open_span_fields`).
    enabled: AtomicBool,
    /// The stall factor, as `f64` bits.
    factor: AtomicU64,
    fields: FieldTables,
    /// Only samples take it, on the thread that reports: never a span callback.
    watch: Mutex<Watch>,
}

impl Default for OpenRider {
    fn default() -> Self {
        OpenRider {
            enabled: AtomicBool::new(false),
            factor: AtomicU64::new(DEFAULT_STALL_FACTOR.to_bits()),
            fields: FieldTables::default(),
            watch: Mutex::new(Watch::default()),
        }
    }
}

impl OpenRider {
    /// Applies the builder's settings. Call before the first span: a callsite's
    /// interest is asked once.
    pub(crate) fn configure(&self, fields: bool, stall_factor: f64) {
        self.enabled.store(fields, Relaxed);
        self.factor.store(stall_factor.to_bits(), Relaxed);
    }

    /// Samples the open spans now, and says each new stall once, as a WARN event.
    pub(crate) fn sample(&self, core: &Core, tag: RunTag) -> Vec<OpenThread> {
        let factor = f64::from_bits(self.factor.load(Relaxed));
        let Sample { threads, stalls } =
            self.watch
                .lock_unpoisoned()
                .sample(core, &self.fields, factor, tag);
        // Said after the watcher's lock is released: the event goes through the layers.
        let mut later = Later::default();
        for stall in stalls {
            later.push(&WARNING, stall);
        }
        later.emit(&core.speaker);
        threads
    }

    /// What the report's warnings should say about fields that were not kept.
    pub(crate) fn warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let not_recorded = self.fields.not_recorded();
        if not_recorded > 0 {
            out.push(format!(
                "open spans: the fields of {not_recorded} spans were not recorded (more than \
                 {ENTRIES} spans with fields were open at once on one thread)"
            ));
        }
        let lost = self.fields.lost_updates();
        if lost > 0 {
            out.push(format!(
                "open spans: {lost} field updates were given up (two threads wrote one span's \
                 fields at once)"
            ));
        }
        out
    }

    /// The watcher (tests).
    #[cfg(test)]
    pub(crate) fn watch(&self) -> std::sync::MutexGuard<'_, Watch> {
        self.watch.lock_unpoisoned()
    }
}

impl Rider for OpenRider {
    const ENTERS: Bits = 0;

    fn interest(&self, meta: &'static Metadata<'static>, _depth: u16) -> Bits {
        (self.enabled.load(Relaxed) && !meta.fields().is_empty()) as Bits
    }

    fn new_span<S>(&self, span: &mut NewSpan<'_>, _cx: &mut Cx<'_, '_, S>, interest: Bits) -> Bits
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if interest == 0 {
            return 0;
        }
        let mut fields = Buf::default();
        fields.record(span.attrs);
        self.fields.insert(span.id.into_u64(), &fields) as Bits
    }

    fn close<S>(&self, span: &mut Closing, _cx: &mut Cx<'_, '_, S>, _bits: Bits)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        self.fields.remove(span.id.into_u64());
    }

    fn record<S>(&self, id: &Id, values: &Record<'_>, _cx: &mut Cx<'_, '_, S>)
    where
        S: Subscriber + for<'a> LookupSpan<'a>,
    {
        if self.enabled.load(Relaxed) {
            self.fields.update(id.into_u64(), values);
        }
    }
}
