//! The assembled layer: the span core and the riders it carries, registered here.
//!
//! [`Riders`] is the one place that names them, in the order their hooks run. A new
//! rider is its own folder (its hooks in a type implementing
//! [`Rider`](crate::core::rider::Rider)) plus one entry in that list. Sinks come last:
//! they read what the riders attached to a closing span.

use std::sync::Arc;

use crate::core::clock::Clock;
use crate::core::layer::Assembly;
use crate::core::Core;
use crate::riders::gpu::rider::GpuRider;
use crate::riders::gpu::{GpuBook, GpuConfig};
use crate::riders::llm::rider::PromptRider;
use crate::riders::llm::PromptBook;
use crate::riders::rng::rider::SeedRider;
use crate::sinks::open::rider::OpenRider;

/// OTLP export, or (without the `otlp` feature) a zero-sized stand-in whose hooks are
/// the trait's inline no-ops.
#[cfg(feature = "otlp")]
pub(crate) use crate::sinks::export::ExportRider;

/// Export compiled out: no bits, no hooks.
#[cfg(not(feature = "otlp"))]
#[derive(Default)]
pub(crate) struct ExportRider;

#[cfg(not(feature = "otlp"))]
impl crate::core::rider::Rider for ExportRider {
    const BITS: u32 = 0;
    const ENTERS: crate::core::rider::Bits = 0;
}

/// Every rider, in the order their hooks run (sinks last).
pub(crate) type Riders = (
    SeedRider,
    (GpuRider, (PromptRider, (ExportRider, OpenRider))),
);

/// What the riders' sections of a report read.
pub(crate) fn seeds(riders: &Riders) -> &SeedRider {
    &riders.0
}

/// The GPU rider.
pub(crate) fn gpu(riders: &Riders) -> &GpuRider {
    &riders.1 .0
}

/// The prompt rider.
pub(crate) fn prompts(riders: &Riders) -> &PromptRider {
    &riders.1 .1 .0
}

/// The export sink.
pub(crate) fn export(riders: &Riders) -> &ExportRider {
    &riders.1 .1 .1 .0
}

/// The open-span sink: fields of open spans, and the watcher.
pub(crate) fn open(riders: &Riders) -> &OpenRider {
    &riders.1 .1 .1 .1
}

/// Sends what export has queued and stops it (waiting at most its flush timeout).
pub(crate) fn finish_export(riders: &Riders) {
    #[cfg(feature = "otlp")]
    if let Some(export) = &export(riders).0 {
        export.shutdown();
    }
    #[cfg(not(feature = "otlp"))]
    let ExportRider = export(riders);
}

/// The export section of a report; `None` when export is off (or not built).
pub(crate) fn export_report(riders: &Riders) -> Option<crate::sinks::report::ExportReport> {
    #[cfg(feature = "otlp")]
    return export(riders).0.as_ref().map(|e| e.report());
    #[cfg(not(feature = "otlp"))]
    {
        let ExportRider = export(riders);
        None
    }
}

/// The core and every rider, as the builder configured them.
pub(crate) fn assemble(
    clock: Clock,
    gpu: GpuConfig,
    prompts: PromptBook,
    export: ExportRider,
) -> Arc<Assembly<Riders>> {
    let riders = (
        SeedRider::default(),
        (
            GpuRider::new(GpuBook::new(gpu)),
            (
                PromptRider { book: prompts },
                (export, OpenRider::default()),
            ),
        ),
    );
    Arc::new(Assembly {
        core: Core::new(clock),
        riders,
    })
}
