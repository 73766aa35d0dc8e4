//! Sinks: where what was measured goes.
#[cfg(feature = "otlp")]
pub mod export;
pub mod report;
pub(crate) mod snapshots;
