//! A fast in-process OTLP/gRPC receiver (a tonic server that counts spans without
//! building them) and a no-op exporter: what the export benchmarks send to.

#![allow(dead_code)] // each benchmark uses part of it

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;

use opentelemetry_sdk::error::OTelSdkResult;
use opentelemetry_sdk::trace::{SpanData, SpanExporter};

/// An `ExportTraceServiceRequest` that is only counted: decoding walks the protobuf
/// wire format to the spans (`resource_spans` → `scope_spans` → `spans`) without
/// building them, so the receiver costs the machine little and the benchmark measures
/// spanlab, not the receiver. A message that is not well-formed protobuf is refused.
#[derive(Clone, Default, PartialEq)]
struct SpanCount(u64);

/// Calls `f(field, payload)` for each length-delimited field of a protobuf message and
/// skips the others. `None` if the bytes are not a well-formed message.
fn fields(mut b: &[u8], mut f: impl FnMut(u32, &[u8]) -> Option<()>) -> Option<()> {
    fn varint(b: &mut &[u8]) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..64).step_by(7) {
            let (&byte, rest) = b.split_first()?;
            *b = rest;
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }
    while !b.is_empty() {
        let key = varint(&mut b)?;
        match key & 7 {
            0 => {
                varint(&mut b)?;
            }
            1 => b = b.get(8..)?,
            5 => b = b.get(4..)?,
            2 => {
                let len = usize::try_from(varint(&mut b)?).ok()?;
                let payload = b.get(..len)?;
                f((key >> 3) as u32, payload)?;
                b = &b[len..];
            }
            _ => return None,
        }
    }
    Some(())
}

// `DecodeError::new` is prost's only way to say why a message is refused.
#[allow(deprecated)]
impl prost::Message for SpanCount {
    fn encode_raw(&self, _: &mut impl prost::bytes::BufMut) {}
    fn merge_field(
        &mut self,
        tag: u32,
        wire_type: prost::encoding::WireType,
        buf: &mut impl prost::bytes::Buf,
        ctx: prost::encoding::DecodeContext,
    ) -> Result<(), prost::DecodeError> {
        if tag != 1 || wire_type != prost::encoding::WireType::LengthDelimited {
            return prost::encoding::skip_field(wire_type, tag, buf, ctx);
        }
        let len = prost::encoding::decode_varint(buf)? as usize;
        if buf.remaining() < len {
            return Err(prost::DecodeError::new("truncated resource_spans"));
        }
        let resource_spans = buf.copy_to_bytes(len);
        let mut spans = 0;
        fields(&resource_spans, |field, scope_spans| {
            if field == 2 {
                fields(scope_spans, |field, _span| {
                    spans += u64::from(field == 2);
                    Some(())
                })?;
            }
            Some(())
        })
        .ok_or_else(|| prost::DecodeError::new("malformed resource_spans"))?;
        self.0 += spans;
        Ok(())
    }
    fn encoded_len(&self) -> usize {
        0
    }
    fn clear(&mut self) {
        self.0 = 0;
    }
}

/// The OTLP trace service, counting spans.
#[derive(Clone)]
struct Counting(Arc<AtomicU64>);

impl tonic::server::NamedService for Counting {
    const NAME: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
}

impl tonic::server::UnaryService<SpanCount> for Counting {
    /// An empty message: a valid `ExportTraceServiceResponse` with no fields set.
    type Response = ();
    type Future = std::future::Ready<Result<tonic::Response<()>, tonic::Status>>;
    fn call(&mut self, request: tonic::Request<SpanCount>) -> Self::Future {
        self.0.fetch_add(request.into_inner().0, Relaxed);
        std::future::ready(Ok(tonic::Response::new(())))
    }
}

impl<B> tonic::codegen::Service<tonic::codegen::http::Request<B>> for Counting
where
    B: tonic::codegen::Body + Send + 'static,
    B::Error: Into<tonic::codegen::StdError> + Send + 'static,
{
    type Response = tonic::codegen::http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = tonic::codegen::BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(
        &mut self,
        _: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: tonic::codegen::http::Request<B>) -> Self::Future {
        let service = self.clone();
        Box::pin(async move {
            if request.uri().path() != "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
            {
                return Ok(tonic::Status::unimplemented("only Export").into_http());
            }
            let codec = tonic_prost::ProstCodec::<(), SpanCount>::default();
            let mut grpc =
                tonic::server::Grpc::new(codec).apply_max_message_size_config(Some(64 << 20), None);
            Ok(grpc.unary(service, request).await)
        })
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
            // It stands in for a collector on another machine: on this one it must not
            // take the CPU from spanlab's exporter threads (which run at nice +10 so as
            // not to take it from the program), so it runs at their priority.
            // SAFETY: plain system calls on this thread.
            unsafe {
                let current = libc::getpriority(libc::PRIO_PROCESS, 0);
                libc::setpriority(libc::PRIO_PROCESS, 0, (current + 10).min(19));
            }
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
                    .add_service(service)
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
