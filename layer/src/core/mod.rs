//! The span core: what happens between a span's callbacks.
pub(crate) mod clock;
pub(crate) mod layer;
pub(crate) mod padded;
pub(crate) mod paths;
pub(crate) mod spans;
pub mod stats;
