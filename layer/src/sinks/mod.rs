//! Sinks: where what was measured goes.
#[cfg(feature = "otlp")]
pub mod export;
pub(crate) mod metrics;
pub mod report;
pub(crate) mod snapshots;
