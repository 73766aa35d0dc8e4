//! Helpers shared by the unit tests of several modules.

use std::sync::Arc;

use tracing_subscriber::prelude::*;

use crate::core::layer::SpanLabLayer;
use crate::profile::{Profile, ProfileData};

/// A layer on the real clock, and its profile.
pub(crate) fn real_layer() -> (SpanLabLayer, Profile) {
    let layer = SpanLabLayer::new(Arc::new(ProfileData::new(Default::default())));
    let profile = layer.profile();
    (layer, profile)
}

/// A dispatcher over the registry and `layer`, and a 4-worker tokio runtime whose
/// workers use it as their default (tests must not install a global subscriber).
pub(crate) fn runtime_with(layer: SpanLabLayer) -> (tracing::Dispatch, tokio::runtime::Runtime) {
    let dispatch = tracing::Dispatch::new(tracing_subscriber::registry().with(layer));
    let worker_dispatch = dispatch.clone();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_time()
        .on_thread_start(move || {
            std::mem::forget(tracing::dispatcher::set_default(&worker_dispatch))
        })
        .build()
        .expect("a tokio runtime");
    (dispatch, runtime)
}
