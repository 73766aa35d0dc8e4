//! OTLP metrics against an in-process receiver built on the official
//! `opentelemetry-proto` types: every data point decoded and checked against the JSON
//! report. (No OTLP metrics server can be installed for the tests; the receiver is a
//! plain HTTP/1.1 handler on std's `TcpListener`, decoding
//! `ExportMetricsServiceRequest` bodies, as `export/slow_receiver.rs` does for traces.)

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, KeyValue};
use opentelemetry_proto::tonic::metrics::v1::{
    metric, number_data_point, AggregationTemporality, Metric,
};
use prost::Message;
use tracing::info_span;
use tracing_subscriber::prelude::*;

use crate::config::Env;
use crate::sinks::metrics::buckets;
use crate::{Report, SpanLab};

/// Records every metrics request; answers everything (traces too) with 200.
#[derive(Clone, Default)]
struct Receiver {
    metrics: Arc<Mutex<Vec<ExportMetricsServiceRequest>>>,
}

impl Receiver {
    fn start() -> (Receiver, String) {
        let receiver = Receiver::default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let serving = receiver.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(stream) = stream else { continue };
                let receiver = serving.clone();
                std::thread::spawn(move || receiver.serve(stream));
            }
        });
        (receiver, format!("http://{addr}"))
    }

    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut writer = stream;
        loop {
            let mut request_line = String::new();
            if !matches!(reader.read_line(&mut request_line), Ok(n) if n > 0) {
                return;
            }
            let mut length = 0;
            loop {
                let mut line = String::new();
                if !matches!(reader.read_line(&mut line), Ok(n) if n > 0) {
                    return;
                }
                let header = line.trim_end();
                if header.is_empty() {
                    break;
                }
                if let Some((name, value)) = header.split_once(':') {
                    if name.eq_ignore_ascii_case("content-length") {
                        length = value.trim().parse().unwrap_or(0);
                    }
                }
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_err() {
                return;
            }
            if request_line.contains("/v1/metrics") {
                let request = ExportMetricsServiceRequest::decode(&body[..]).expect("protobuf");
                self.metrics.lock().unwrap().push(request);
            }
            let answer = "HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n";
            if writer.write_all(answer.as_bytes()).is_err() {
                return;
            }
        }
    }

    fn requests(&self) -> Vec<ExportMetricsServiceRequest> {
        self.metrics.lock().unwrap().clone()
    }
}

fn string_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attributes.iter().find(|kv| kv.key == key).and_then(|kv| {
        match kv.value.as_ref()?.value.as_ref()? {
            any_value::Value::StringValue(s) => Some(s.as_str()),
            _ => None,
        }
    })
}

fn metric<'r>(request: &'r ExportMetricsServiceRequest, name: &str) -> &'r Metric {
    request.resource_metrics[0].scope_metrics[0]
        .metrics
        .iter()
        .find(|m| m.name == name)
        .unwrap_or_else(|| panic!("{name} in the request"))
}

#[test]
fn every_point_matches_the_json_report_while_traces_are_sampled_at_one_percent() {
    let (receiver, endpoint) = Receiver::start();
    let env = Env::of(&[
        ("OTEL_METRICS_EXPORTER", "otlp"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.as_str()),
        ("OTEL_TRACES_SAMPLER", "traceidratio"),
        ("OTEL_TRACES_SAMPLER_ARG", "0.01"),
        ("OTEL_METRIC_EXPORT_INTERVAL", "50"),
        ("OTEL_SERVICE_NAME", "metrics-test"),
        ("SPANLAB_REPORT", "off"),
    ]);
    let (layer, guard) = SpanLab::builder().build_with_env(&env);
    assert!(
        guard.config_errors().is_empty(),
        "{:?}",
        guard.config_errors()
    );
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for i in 0..1000u64 {
            let _epoch = info_span!("epoch").entered();
            info_span!("forward").in_scope(|| std::hint::black_box(i * i));
            info_span!("backward").in_scope(|| {
                if i % 7 == 0 {
                    tracing::error!("diverged");
                }
            });
            if i % 10 == 0 {
                // Token counts past 512, where a report bucket holds several.
                let call = crate::llm::LlmCall::new("tiny-1").tokens(i * 3, i + 1);
                crate::llm::record(call);
            }
        }
    });
    // Some interval exports happen while the run goes on.
    let deadline = Instant::now() + Duration::from_secs(30);
    while receiver.requests().is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = Report::from_json(&guard.report().to_json()).unwrap();
    let traces = guard.report().export.expect("traces are exported too");
    drop(guard); // the last export
    let requests = receiver.requests();
    assert!(requests.len() >= 2, "{}", requests.len());
    let last = requests.last().unwrap();

    // The resource traces carry, and the scope.
    let resource = last.resource_metrics[0].resource.as_ref().unwrap();
    assert_eq!(
        string_attribute(&resource.attributes, "service.name"),
        Some("metrics-test")
    );
    assert_eq!(
        last.resource_metrics[0].scope_metrics[0]
            .scope
            .as_ref()
            .unwrap()
            .name,
        "spanlab"
    );

    // Every duration point, exactly the report's path.
    let run_start = report.runs[0].start_unix_ns;
    let Some(metric::Data::Histogram(durations)) = &metric(last, "spanlab.span.duration").data
    else {
        panic!("a histogram")
    };
    assert_eq!(
        durations.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    assert_eq!(durations.data_points.len(), report.paths.len());
    for point in &durations.data_points {
        let path = string_attribute(&point.attributes, "spanlab.path").unwrap();
        let stats = report
            .paths
            .iter()
            .find(|p| p.path_string() == path)
            .unwrap_or_else(|| panic!("{path} in the report"));
        assert_eq!(point.count, stats.calls, "{path}");
        assert_eq!(
            point.bucket_counts,
            buckets::rebucket(&stats.sums.wall.histogram)
        );
        assert_eq!(point.bucket_counts.iter().sum::<u64>(), stats.calls);
        assert_eq!(point.explicit_bounds, buckets::bounds_seconds());
        assert_eq!(point.sum, Some(stats.sums.wall.sum_ns as f64 / 1e9));
        assert_eq!(point.min, Some(stats.sums.wall.min_ns as f64 / 1e9));
        assert_eq!(point.max, Some(stats.sums.wall.max_ns as f64 / 1e9));
        assert_eq!(point.start_time_unix_nano, run_start);
        assert!(point.time_unix_nano >= run_start);
    }
    // 100 % of the calls, although about 1 % of the traces were exported.
    let forward = report
        .paths
        .iter()
        .find(|p| p.path_string() == "epoch > forward");
    assert_eq!(forward.unwrap().calls, 1000);
    assert!(traces.finished < 300, "{traces:?}");

    // Counters: calls and errors, cumulative and monotonic.
    type Figure = fn(&crate::PathStats) -> u64;
    let counters: [(&str, Figure); 2] = [
        ("spanlab.span.calls", |s| s.calls),
        ("spanlab.span.errors", |s| s.errors),
    ];
    for (name, expected) in counters {
        let Some(metric::Data::Sum(sum)) = &metric(last, name).data else {
            panic!("{name}: a sum")
        };
        assert!(sum.is_monotonic);
        assert_eq!(
            sum.aggregation_temporality,
            AggregationTemporality::Cumulative as i32
        );
        for point in &sum.data_points {
            let path = string_attribute(&point.attributes, "spanlab.path").unwrap();
            let stats = report
                .paths
                .iter()
                .find(|p| p.path_string() == path)
                .unwrap();
            assert_eq!(
                point.value,
                Some(number_data_point::Value::AsInt(expected(stats) as i64)),
                "{name} {path}"
            );
        }
    }
    let errors = report
        .paths
        .iter()
        .find(|p| p.path_string() == "epoch > backward");
    assert_eq!(errors.unwrap().errors, 143);

    // Tokens per call: the report's token histograms, bucket by bucket.
    let Some(metric::Data::Histogram(tokens)) = &metric(last, "gen_ai.client.token.usage").data
    else {
        panic!("a token histogram")
    };
    assert_eq!(
        tokens.aggregation_temporality,
        AggregationTemporality::Cumulative as i32
    );
    let model = &report.prompts.models[0];
    assert_eq!(tokens.data_points.len(), 2);
    for point in &tokens.data_points {
        assert_eq!(
            string_attribute(&point.attributes, "gen_ai.request.model"),
            Some("tiny-1")
        );
        let (histogram, sum) = match string_attribute(&point.attributes, "gen_ai.token.type") {
            Some("input") => (&model.input_token_histogram, model.input_tokens),
            Some("output") => (&model.output_token_histogram, model.output_tokens),
            other => panic!("{other:?}"),
        };
        let histogram = histogram.as_ref().unwrap();
        assert!(histogram.buckets().any(|(r, _)| r.start() != r.end()));
        assert_eq!(point.count, 100);
        assert_eq!(point.bucket_counts, buckets::rebucket_tokens(histogram));
        assert_eq!(point.bucket_counts.iter().sum::<u64>(), 100);
        assert_eq!(point.explicit_bounds, buckets::token_bounds_exported());
        assert_eq!(point.sum, Some(sum as f64));
    }
}

#[test]
fn a_receiver_that_is_down_is_one_warning_and_counted_failures() {
    let port = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let endpoint = format!("http://127.0.0.1:{port}");
    let env = Env::of(&[
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", endpoint.as_str()),
        ("OTEL_METRIC_EXPORT_INTERVAL", "20"),
        ("SPANLAB_REPORT", "off"),
    ]);
    let (layer, guard) = SpanLab::builder().build_with_env(&env);
    let started = Instant::now();
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..100 {
            info_span!("step").in_scope(|| std::thread::sleep(Duration::from_millis(1)));
        }
    });
    let profile = guard.profile();
    // A loaded machine may not have run the metrics thread yet: wait for its first try.
    let deadline = Instant::now() + Duration::from_secs(30);
    while guard.report().metrics.unwrap().otlp_failed_exports == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(10));
    }
    let report = guard.report();
    let dropped = Instant::now();
    drop(guard);
    // The last export fails at once (connection refused): no wait for the flush timeout.
    assert!(
        dropped.elapsed() < Duration::from_secs(3),
        "{:?}",
        dropped.elapsed()
    );
    assert!(started.elapsed() < Duration::from_secs(40));
    assert_eq!(profile.get("step").unwrap().calls, 100);
    let metrics = report.metrics.unwrap();
    assert_eq!(
        metrics.otlp.as_deref(),
        Some(format!("http/protobuf {endpoint}").as_str())
    );
    assert!(metrics.otlp_failed_exports >= 1, "{metrics:?}");
    assert_eq!(metrics.otlp_exports, 0);
    assert!(metrics.last_error.unwrap().contains("connect"));
    let warnings = report
        .warnings
        .iter()
        .filter(|w| w.contains("OTLP export failed"))
        .count();
    assert_eq!(warnings, 1, "{:?}", report.warnings);
}

/// The gRPC metrics service, recording every request.
struct GrpcReceiver(Arc<Mutex<Vec<ExportMetricsServiceRequest>>>);

#[tonic::async_trait]
impl opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsService
    for GrpcReceiver
{
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<
        tonic::Response<
            opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceResponse,
        >,
        tonic::Status,
    > {
        let team = request
            .metadata()
            .get("x-team")
            .map(|v| v.to_str().unwrap_or("?"));
        assert_eq!(team, Some("ml"), "the header travels as gRPC metadata");
        self.0.lock().unwrap().push(request.into_inner());
        Ok(tonic::Response::new(Default::default()))
    }
}

#[test]
fn grpc_carries_the_same_points() {
    use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::MetricsServiceServer;
    let got = Arc::new(Mutex::new(Vec::new()));
    let service = GrpcReceiver(got.clone());
    let endpoint = crate::test_support::serve_grpc(|incoming| {
        tonic::transport::Server::builder()
            .add_service(MetricsServiceServer::new(service))
            .serve_with_incoming(incoming)
    });
    let env = Env::of(&[
        ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", endpoint.as_str()),
        ("OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", "grpc"),
        ("OTEL_EXPORTER_OTLP_METRICS_HEADERS", "x-team=ml"),
        ("SPANLAB_REPORT", "off"),
    ]);
    let (layer, guard) = SpanLab::builder().build_with_env(&env);
    tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), || {
        for _ in 0..42 {
            info_span!("step").in_scope(|| ());
        }
    });
    drop(guard); // the interval is a minute: this is the only export
    let requests = got.lock().unwrap();
    assert_eq!(requests.len(), 1);
    let Some(metric::Data::Sum(calls)) = &metric(&requests[0], "spanlab.span.calls").data else {
        panic!("a sum")
    };
    assert_eq!(
        calls.data_points[0].value,
        Some(number_data_point::Value::AsInt(42))
    );
}
