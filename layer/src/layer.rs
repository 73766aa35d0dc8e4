//! [`SpanLabLayer`]: the layer a program installs — the core's layer over the riders
//! registered in [`crate::lab`].

use std::sync::Arc;

use tracing_core::span::{Attributes, Id, Record};
use tracing_core::{Dispatch, Event, Subscriber};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use crate::core::layer::{Assembly, SpanCore};
use crate::lab::Riders;
use crate::profile::Profile;
use crate::sinks::report::RunInfo;

/// The spanlab layer. Build it with [`crate::SpanLab::builder`]; read what it measured
/// through [`SpanLabLayer::profile`] or the [`crate::Guard`] built with it.
pub struct SpanLabLayer {
    inner: SpanCore<Riders>,
    /// The run, for the profiles this layer hands out.
    run: Arc<RunInfo>,
}

impl std::fmt::Debug for SpanLabLayer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanLabLayer").finish_non_exhaustive()
    }
}

impl SpanLabLayer {
    pub(crate) fn new(lab: Arc<Assembly<Riders>>, run: Arc<RunInfo>) -> Self {
        SpanLabLayer {
            inner: SpanCore::new(lab),
            run,
        }
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
        Profile::from_assembly(self.inner.assembly().clone(), self.run.clone())
    }
}

// Every callback forwards to the core's layer, inlined: the core's fast paths must end
// up in the registry's dispatch as before.
impl<S> Layer<S> for SpanLabLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_register_dispatch(&self, subscriber: &Dispatch) {
        Layer::<S>::on_register_dispatch(&self.inner, subscriber);
    }

    #[inline(always)]
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_new_span(attrs, id, ctx);
    }

    #[inline(always)]
    fn on_enter(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_enter(id, ctx);
    }

    #[inline(always)]
    fn on_exit(&self, id: &Id, ctx: Context<'_, S>) {
        self.inner.on_exit(id, ctx);
    }

    #[inline(always)]
    fn on_close(&self, id: Id, ctx: Context<'_, S>) {
        self.inner.on_close(id, ctx);
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        self.inner.on_event(event, ctx);
    }

    fn on_record(&self, id: &Id, values: &Record<'_>, ctx: Context<'_, S>) {
        self.inner.on_record(id, values, ctx);
    }

    fn on_follows_from(&self, id: &Id, follows: &Id, ctx: Context<'_, S>) {
        self.inner.on_follows_from(id, follows, ctx);
    }

    /// This layer, else what the core's layer hands out (its `Core`, through which
    /// `spanlab::export::current_traceparent` reads a span's ids from outside the
    /// callbacks).
    unsafe fn downcast_raw(&self, id: std::any::TypeId) -> Option<*const ()> {
        if id == std::any::TypeId::of::<Self>() {
            return Some(self as *const Self as *const ());
        }
        // SAFETY: forwarded as asked; the core's layer lives as long as `self`.
        unsafe { Layer::<S>::downcast_raw(&self.inner, id) }
    }
}
