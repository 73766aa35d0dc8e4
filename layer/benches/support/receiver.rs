//! A fast in-process OTLP/gRPC receiver (a tonic server from `opentelemetry-proto`) and
//! a no-op exporter: what the export benchmarks send to.

#![allow(dead_code)] // each benchmark uses part of it

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// Counts the spans it is sent.
#[derive(Clone, Default)]
struct Counting(Arc<AtomicU64>);

#[tonic::async_trait]
impl TraceService for Counting {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans: usize = request
            .into_inner()
            .resource_spans
            .iter()
            .flat_map(|r| &r.scope_spans)
            .map(|s| s.spans.len())
            .sum();
        self.0.fetch_add(spans as u64, Relaxed);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

/// Starts the receiver on a free loopback port, on its own thread; returns its
/// endpoint (`http://127.0.0.1:PORT`) and the count of spans received.
pub fn start() -> (String, Arc<AtomicU64>) {
    let received = Arc::new(AtomicU64::new(0));
    let service = Counting(received.clone());
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::Builder::new()
        .name("otlp-receiver".into())
        .spawn(move || {
            // The receiver's own tracing must not reach the subscribers under test.
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
                tonic::transport::Server::builder()
                    .add_service(
                        TraceServiceServer::new(service).max_decoding_message_size(64 << 20),
                    )
                    .serve_with_incoming(
                        tonic::transport::server::TcpIncoming::from(listener)
                            .with_nodelay(Some(true)),
                    )
                    .await
                    .expect("the receiver runs");
            });
        })
        .expect("a receiver thread");
    let addr = rx.recv().expect("the receiver starts");
    (format!("http://{addr}"), received)
}

/// Accepts every batch and only counts its spans.
#[derive(Clone, Debug, Default)]
pub struct NoopExporter(pub Arc<AtomicU64>);

impl SpanExporter for NoopExporter {
    async fn export(&self, batch: Vec<SpanData>) -> OTelSdkResult {
        self.0.fetch_add(batch.len() as u64, Relaxed);
        Ok(())
    }
}
