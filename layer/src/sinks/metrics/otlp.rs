//! OTLP metrics: the snapshot pushed every interval, and once more at the guard's drop.
//!
//! A thread of its own wakes every `OTEL_METRIC_EXPORT_INTERVAL`, makes a
//! [`Snapshot`], encodes it with the official `opentelemetry-proto` types and sends it
//! (gRPC through tonic's generated client, HTTP/protobuf as a `POST` with reqwest),
//! waiting at most the request timeout. Temporality is cumulative: every point counts
//! from the run's start (`start_time_unix_nano`), so a lost request loses nothing but
//! its moment. The resource is the one traces carry (`export::convert::resource`).
//!
//! A failed request is counted and its message kept for the report; the first costs a
//! warning. The program's threads never wait for any of it: only the guard's drop
//! waits, for the last export, at most the flush timeout (`SPANLAB_OTLP_FLUSH_TIMEOUT`).

use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, ArrayValue, InstrumentationScope, KeyValue,
};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
};
use opentelemetry_proto::tonic::resource::v1::Resource;
use prost::Message;

use super::model::{Family, Kind, Snapshot, Value};
use super::Shared;
use crate::config::Env;
use crate::sinks::export::config::{ExportConfig, Protocol};

/// Where OTLP metrics go, resolved (see `export::config::resolve_metrics`).
pub(crate) struct OtlpTarget {
    config: ExportConfig,
    resource: Vec<KeyValue>,
}

impl OtlpTarget {
    /// The target `config` describes, with the resource traces would carry.
    pub(crate) fn new(config: ExportConfig, env: &Env) -> OtlpTarget {
        let resource = crate::sinks::export::convert::resource(&config, env)
            .iter()
            .map(|(k, v)| key_value(k.as_str(), any(v)))
            .collect();
        OtlpTarget { config, resource }
    }

    /// `"http/protobuf http://…/v1/metrics"`, for the report.
    pub(crate) fn describe(&self) -> String {
        let endpoint = self.config.endpoint.as_deref().unwrap_or_default();
        format!("{} {endpoint}", self.config.protocol.as_str())
    }
}

/// The pushing thread, running.
pub(crate) struct Pusher {
    stop: Option<mpsc::Sender<()>>,
    done: mpsc::Receiver<()>,
    flush_timeout: Duration,
    thread: Option<JoinHandle<()>>,
}

impl Pusher {
    /// Starts pushing to `target` every `interval`.
    pub(crate) fn start(
        target: OtlpTarget,
        shared: Arc<Shared>,
        interval: Duration,
    ) -> Result<Pusher, String> {
        let (stop, stopped) = mpsc::channel();
        let (finished, done) = mpsc::channel();
        let flush_timeout = target.config.flush_timeout;
        let thread = std::thread::Builder::new()
            .name("spanlab-metrics".into())
            .spawn(move || {
                super::quiet_thread();
                let Some((runtime, mut sender)) = connect(&target, &shared) else {
                    let _ = finished.send(());
                    return;
                };
                loop {
                    let last = match stopped.recv_timeout(interval) {
                        Err(RecvTimeoutError::Timeout) => false,
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => true,
                    };
                    let request = encode(&shared.snapshot(), &target.resource);
                    let sent = runtime.block_on(async {
                        tokio::time::timeout(target.config.timeout, sender.send(request))
                            .await
                            .unwrap_or_else(|_| Err("timed out".into()))
                    });
                    match sent {
                        Ok(()) => shared.exported(),
                        Err(e) => shared.failed(e),
                    }
                    if last {
                        let _ = finished.send(());
                        return;
                    }
                }
            })
            .map_err(|e| format!("cannot start the metrics thread: {e}"))?;
        Ok(Pusher {
            stop: Some(stop),
            done,
            flush_timeout,
            thread: Some(thread),
        })
    }

    /// The last export, waited for at most the flush timeout; the thread is left to
    /// end on its own if the receiver takes longer.
    pub(crate) fn finish(&mut self) {
        let Some(stop) = self.stop.take() else { return };
        let _ = stop.send(());
        if self.done.recv_timeout(self.flush_timeout).is_ok() {
            if let Some(thread) = self.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

/// The transport of one target.
enum Sender {
    Grpc {
        client: Box<MetricsServiceClient<tonic::transport::Channel>>,
        metadata: tonic::metadata::MetadataMap,
    },
    Http {
        client: reqwest::Client,
        url: String,
        headers: Vec<(String, String)>,
    },
}

impl Sender {
    async fn send(&mut self, request: ExportMetricsServiceRequest) -> Result<(), String> {
        match self {
            Sender::Grpc { client, metadata } => {
                let mut request = tonic::Request::new(request);
                *request.metadata_mut() = metadata.clone();
                client
                    .export(request)
                    .await
                    .map(|_| ())
                    .map_err(|status| format!("gRPC {}: {}", status.code(), status.message()))
            }
            Sender::Http {
                client,
                url,
                headers,
            } => {
                let mut post = client
                    .post(url.as_str())
                    .header("content-type", "application/x-protobuf")
                    .body(request.encode_to_vec());
                for (k, v) in headers.iter() {
                    post = post.header(k.as_str(), v.as_str());
                }
                let answer = post.send().await.map_err(|e| {
                    if e.is_connect() {
                        format!("cannot connect to {url}")
                    } else {
                        e.to_string()
                    }
                })?;
                let status = answer.status();
                if status.is_success() {
                    Ok(())
                } else {
                    Err(format!("HTTP {status} from {url}"))
                }
            }
        }
    }
}

/// A runtime for this thread and the target's sender; a failure is counted.
fn connect(target: &OtlpTarget, shared: &Shared) -> Option<(tokio::runtime::Runtime, Sender)> {
    let built = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the metrics runtime: {e}"))
        .and_then(|runtime| {
            let sender = {
                let _context = runtime.enter();
                sender(&target.config)?
            };
            Ok((runtime, sender))
        });
    built.map_err(|e| shared.failed(e)).ok()
}

fn sender(config: &ExportConfig) -> Result<Sender, String> {
    let endpoint = config.endpoint.clone().ok_or("no endpoint")?;
    match config.protocol {
        Protocol::Grpc => {
            let metadata = crate::sinks::export::transport::grpc_metadata(&config.headers)?;
            let mut channel = tonic::transport::Endpoint::from_shared(endpoint.clone())
                .map_err(|e| format!("{endpoint}: {e}"))?
                .timeout(config.timeout);
            if endpoint.starts_with("https://") {
                channel = channel
                    .tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots())
                    .map_err(|e| format!("TLS: {e}"))?;
            }
            Ok(Sender::Grpc {
                client: Box::new(MetricsServiceClient::new(channel.connect_lazy())),
                metadata,
            })
        }
        Protocol::HttpProtobuf => {
            let client = reqwest::Client::builder()
                .tls_backend_preconfigured(crate::sinks::export::transport::rustls_config()?)
                .timeout(config.timeout)
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
            Ok(Sender::Http {
                client,
                url: endpoint,
                headers: config.headers.clone(),
            })
        }
    }
}

/// The request for `snapshot`: one resource, one scope (`spanlab`), cumulative points
/// from the run's start to now.
pub(crate) fn encode(snapshot: &Snapshot, resource: &[KeyValue]) -> ExportMetricsServiceRequest {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    let times = (snapshot.start_unix_ns, now.max(snapshot.start_unix_ns));
    let metrics = snapshot
        .families
        .iter()
        .map(|family| metric(family, times))
        .collect();
    ExportMetricsServiceRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource.to_vec(),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "spanlab".into(),
                    version: env!("CARGO_PKG_VERSION").into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn metric(family: &Family, (start, now): (u64, u64)) -> Metric {
    let cumulative = AggregationTemporality::Cumulative as i32;
    let attributes = |a: &[(&'static str, String)]| -> Vec<KeyValue> {
        a.iter()
            .map(|(k, v)| key_value(k, any_value::Value::StringValue(v.clone())))
            .collect()
    };
    let number = |p: &super::model::Point| NumberDataPoint {
        attributes: attributes(&p.attributes),
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: match &p.value {
            Value::Int(n) => Some(number_data_point::Value::AsInt(*n as i64)),
            Value::Float(x) => Some(number_data_point::Value::AsDouble(*x)),
            Value::Histogram(_) => None,
        },
        ..Default::default()
    };
    let data = match family.kind {
        Kind::Counter => metric::Data::Sum(Sum {
            data_points: family.points.iter().map(number).collect(),
            aggregation_temporality: cumulative,
            is_monotonic: true,
        }),
        Kind::Gauge => metric::Data::Gauge(Gauge {
            data_points: family.points.iter().map(number).collect(),
        }),
        Kind::Histogram => metric::Data::Histogram(Histogram {
            data_points: family
                .points
                .iter()
                .filter_map(|p| match &p.value {
                    Value::Histogram(h) => Some(HistogramDataPoint {
                        attributes: attributes(&p.attributes),
                        start_time_unix_nano: start,
                        time_unix_nano: now,
                        count: h.count,
                        sum: Some(h.sum),
                        bucket_counts: h.counts.clone(),
                        explicit_bounds: h.bounds.to_vec(),
                        min: h.min,
                        max: h.max,
                        ..Default::default()
                    }),
                    _ => None,
                })
                .collect(),
            aggregation_temporality: cumulative,
        }),
    };
    Metric {
        name: family.name.into(),
        description: family.help.into(),
        unit: family.unit.into(),
        data: Some(data),
        ..Default::default()
    }
}

fn key_value(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// An attribute value of the SDK's resource as protobuf.
fn any(value: &opentelemetry::Value) -> any_value::Value {
    use opentelemetry::{Array, Value as V};
    match value {
        V::Bool(b) => any_value::Value::BoolValue(*b),
        V::I64(n) => any_value::Value::IntValue(*n),
        V::F64(x) => any_value::Value::DoubleValue(*x),
        V::String(s) => any_value::Value::StringValue(s.to_string()),
        V::Array(Array::String(items)) => any_value::Value::ArrayValue(ArrayValue {
            values: items
                .iter()
                .map(|s| AnyValue {
                    value: Some(any_value::Value::StringValue(s.to_string())),
                })
                .collect(),
        }),
        other => any_value::Value::StringValue(other.to_string()),
    }
}

#[cfg(test)]
#[path = "otlp_tests.rs"]
mod tests;
