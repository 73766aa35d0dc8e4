//! Riders: what a span carries besides its timing.
pub mod gpu;
pub mod llm;
pub mod rng;
