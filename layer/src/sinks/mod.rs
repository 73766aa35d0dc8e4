//! Sinks: where what was measured goes.
#[cfg(feature = "otlp")]
pub mod export;
pub(crate) mod metrics;
pub(crate) mod open;
pub mod report;
pub(crate) mod snapshots;
