//! Helpers shared by the unit tests of several modules.

use tracing_subscriber::prelude::*;

use crate::core::clock::Clock;
use crate::lab;
use crate::layer::SpanLabLayer;
use crate::profile::Profile;
use crate::riders::gpu::GpuConfig;

/// A layer on the real clock, and its profile.
pub(crate) fn real_layer() -> (SpanLabLayer, Profile) {
    layer_with(Clock::new(), GpuConfig::default())
}

/// A layer on `clock` with the GPU settings `gpu` (no export, default prompt
/// settings), and its profile.
pub(crate) fn layer_with(clock: Clock, gpu: GpuConfig) -> (SpanLabLayer, Profile) {
    let run = crate::sinks::report::RunInfo::start(&crate::config::Process::of(
        &crate::config::Env::none(),
        &mut Vec::new(),
    ));
    let layer = SpanLabLayer::new(
        lab::assemble(clock, gpu, Default::default(), Default::default()),
        std::sync::Arc::new(run),
    );
    let profile = layer.profile();
    (layer, profile)
}

/// A dispatcher over the registry and `layer`, and a 4-worker tokio runtime whose
/// workers use it as their default (tests must not install a global subscriber).
pub(crate) fn runtime_with<L>(layer: L) -> (tracing::Dispatch, tokio::runtime::Runtime)
where
    L: tracing_subscriber::Layer<tracing_subscriber::Registry> + Send + Sync + 'static,
{
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

/// Serves `serve(incoming)` (a tonic server over a loopback listener) on a thread of its
/// own, with a runtime of its own and no subscriber (the receiver's own tracing must not
/// reach the subscribers under test); returns `http://127.0.0.1:PORT`.
#[cfg(feature = "otlp")]
pub(crate) fn serve_grpc<F, Fut>(serve: F) -> String
where
    F: FnOnce(tonic::transport::server::TcpIncoming) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = Result<(), tonic::transport::Error>>,
{
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _none = tracing::dispatcher::set_default(&tracing::Dispatch::none());
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("a runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("a loopback port");
            tx.send(listener.local_addr().unwrap()).unwrap();
            serve(tonic::transport::server::TcpIncoming::from(listener))
                .await
                .expect("the receiver runs");
        });
    });
    format!("http://{}", rx.recv().expect("the receiver starts"))
}
