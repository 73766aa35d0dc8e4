//! The OTLP transports: `opentelemetry_otlp::SpanExporter` over gRPC (tonic) or
//! HTTP/protobuf (reqwest), each with a counter on every attempt and TLS from the
//! system's root certificates for `https://` endpoints.
//!
//! TLS uses rustls with the *ring* provider passed explicitly, never installed as the
//! process default: the application stays free to install its own provider.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};

use super::config::{ExportConfig, Protocol};
use super::pipeline::{DynExporter, Shared};

/// Builds the exporter `config` describes. Must run inside a Tokio runtime context.
pub(crate) fn build(
    config: &ExportConfig,
    shared: Arc<Shared>,
) -> Result<Box<dyn DynExporter>, String> {
    let endpoint = config.endpoint.clone().ok_or("no endpoint")?;
    let https = endpoint.starts_with("https://");
    let exporter = match config.protocol {
        Protocol::Grpc => {
            let mut metadata = tonic::metadata::MetadataMap::new();
            for (k, v) in &config.headers {
                let key =
                    tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
                        .map_err(|e| format!("header `{k}`: {e}"))?;
                let value = v.parse().map_err(|e| format!("header `{k}`: {e}"))?;
                metadata.insert(key, value);
            }
            let mut builder = opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                .with_endpoint(endpoint)
                .with_timeout(config.timeout)
                .with_metadata(metadata)
                .with_interceptor(move |request| {
                    shared.attempts.fetch_add(1, Relaxed);
                    Ok(request)
                });
            if https {
                builder = builder
                    .with_tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots());
            }
            builder.build()
        }
        Protocol::HttpProtobuf => {
            let client = reqwest::Client::builder()
                .tls_backend_preconfigured(rustls_config()?)
                .build()
                .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
            opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
                .with_endpoint(endpoint)
                .with_timeout(config.timeout)
                .with_headers(config.headers.iter().cloned().collect())
                .with_http_client(CountingClient { client, shared })
                .build()
        }
    };
    let exporter = exporter.map_err(|e| format!("cannot build the OTLP exporter: {e}"))?;
    Ok(Box::new(exporter))
}

/// rustls with *ring* and the system's root certificates.
fn rustls_config() -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    // Unreadable certificates are skipped; an empty store only matters for https.
    let _ = roots.add_parsable_certificates(rustls_native_certs::load_native_certs().certs);
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(config)
}

/// reqwest, counting every request (retries included).
#[derive(Debug)]
struct CountingClient {
    client: reqwest::Client,
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared").finish_non_exhaustive()
    }
}

// `HttpClient` is an `async_trait`: this is what the macro would write.
impl HttpClient for CountingClient {
    fn send_bytes<'a, 'b>(
        &'a self,
        request: Request<Bytes>,
    ) -> Pin<Box<dyn Future<Output = Result<Response<Bytes>, HttpError>> + Send + 'b>>
    where
        'a: 'b,
        Self: 'b,
    {
        self.shared.attempts.fetch_add(1, Relaxed);
        self.client.send_bytes(request)
    }
}
