//! A slow OTLP receiver in the test process: it records every request's spans as the
//! request arrives and answers (success) only after a fixed delay, several requests
//! at once. No package provides such a receiver, so the tests that need one (the
//! flush at exit, requests in flight) use this: over gRPC, a tonic server with
//! `opentelemetry-proto`'s trace service; over HTTP/protobuf, a plain HTTP/1.1
//! handler on std's `TcpListener` (a thread per connection), decoding the same
//! `ExportTraceServiceRequest`. Loopback only.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use prost::Message;

/// What a receiver got.
#[derive(Default)]
struct Got {
    requests: AtomicU64,
    /// The span id of every span received, in order, duplicates included.
    span_ids: Mutex<Vec<Vec<u8>>>,
}

impl Got {
    fn record(&self, request: &ExportTraceServiceRequest) {
        self.requests.fetch_add(1, Relaxed);
        let mut ids = self.span_ids.lock().unwrap();
        for resource in &request.resource_spans {
            for scope in &resource.scope_spans {
                ids.extend(scope.spans.iter().map(|s| s.span_id.clone()));
            }
        }
    }
}

/// A receiver running on a loopback port of its own.
pub(crate) struct SlowReceiver {
    /// `http://127.0.0.1:PORT`.
    pub(crate) endpoint: String,
    got: Arc<Got>,
}

impl SlowReceiver {
    /// OTLP/gRPC, answering each request `delay` after it arrived.
    pub(crate) fn grpc(delay: Duration) -> SlowReceiver {
        let got = Arc::new(Got::default());
        let service = Slow {
            delay,
            got: got.clone(),
        };
        let endpoint = crate::test_support::serve_grpc(|incoming| {
            tonic::transport::Server::builder()
                .add_service(TraceServiceServer::new(service))
                .serve_with_incoming(incoming)
        });
        SlowReceiver { endpoint, got }
    }

    /// OTLP/HTTP with protobuf bodies, answering each request `delay` after it arrived.
    pub(crate) fn http(delay: Duration) -> SlowReceiver {
        let got = Arc::new(Got::default());
        let listener = TcpListener::bind("127.0.0.1:0").expect("a loopback port");
        let addr = listener.local_addr().unwrap();
        let accepting = got.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let got = accepting.clone();
                std::thread::spawn(move || serve_http(stream, delay, &got));
            }
        });
        SlowReceiver {
            endpoint: format!("http://{addr}"),
            got,
        }
    }

    /// Requests received.
    pub(crate) fn requests(&self) -> u64 {
        self.got.requests.load(Relaxed)
    }

    /// `(spans received, distinct span ids among them)`.
    pub(crate) fn spans(&self) -> (usize, usize) {
        let ids = self.got.span_ids.lock().unwrap();
        let distinct: std::collections::HashSet<&Vec<u8>> = ids.iter().collect();
        (ids.len(), distinct.len())
    }
}

/// The gRPC trace service.
struct Slow {
    delay: Duration,
    got: Arc<Got>,
}

#[tonic::async_trait]
impl TraceService for Slow {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.got.record(request.get_ref());
        tokio::time::sleep(self.delay).await;
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

/// Serves one HTTP/1.1 connection: `POST /v1/traces` requests with a `Content-Length`
/// body, one after the other, until the client closes it.
fn serve_http(stream: TcpStream, delay: Duration, got: &Got) {
    let mut reader = BufReader::new(stream.try_clone().expect("a second handle"));
    let mut writer = stream;
    loop {
        let mut length = None;
        let mut line = String::new();
        // The request line, then headers up to an empty line.
        loop {
            line.clear();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => return, // closed
                Ok(_) => {}
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        let mut body = vec![0; length.unwrap_or(0)];
        if reader.read_exact(&mut body).is_err() {
            return;
        }
        let status = match ExportTraceServiceRequest::decode(&body[..]) {
            Ok(request) => {
                got.record(&request);
                "200 OK"
            }
            Err(_) => "400 Bad Request",
        };
        std::thread::sleep(delay);
        let answer = format!(
            "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
        );
        if writer.write_all(answer.as_bytes()).is_err() {
            return;
        }
    }
}
