//! The builder's export options without the `otlp` feature: nothing to set, and a
//! plan that never exists, so the layer is assembled with export's zero-sized
//! stand-in.

use crate::config::{ConfigError, Env};
use crate::core::clock::Clock;
use crate::lab::ExportRider;
use crate::sinks::metrics::OtlpTarget;

/// No export options.
#[derive(Clone, Debug, Default)]
pub(crate) struct ExportOptions;

/// Export to start: never, without the feature.
pub(crate) enum ExportPlan<'e> {
    #[allow(dead_code)] // never made: the type only keeps the builder's shape
    Never(std::marker::PhantomData<&'e ()>),
}

/// No export is planned.
pub(crate) fn plan<'e>(
    _options: &ExportOptions,
    _env: &'e Env,
    _errors: &mut Vec<ConfigError>,
) -> Option<ExportPlan<'e>> {
    None
}

impl ExportPlan<'_> {
    /// Unreachable: no plan is ever made.
    pub(crate) fn start(self, _clock: Clock, _errors: &mut [ConfigError]) -> ExportRider {
        ExportRider
    }
}

/// OTLP metrics need the `otlp` feature: asked for without it, one line says so.
pub(crate) fn metrics_target(
    _options: &ExportOptions,
    _env: &Env,
    errors: &mut Vec<ConfigError>,
) -> Option<OtlpTarget> {
    errors.push(ConfigError::new(
        "OTEL_METRICS_EXPORTER",
        "otlp",
        "OTLP metrics need spanlab's `otlp` feature; no OTLP metrics",
    ));
    None
}
