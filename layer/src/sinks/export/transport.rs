//! The OTLP transports: `opentelemetry_otlp::SpanExporter` over gRPC (tonic) or
//! HTTP/protobuf (reqwest), with TLS from the system's root certificates for
//! `https://` endpoints. Both tell the pipeline ([`Shared`]) about every request
//! attempt (to count retries) and whether each connection attempt succeeded (so that
//! the flush at exit does not wait for a receiver that is not there): gRPC through an
//! interceptor and tonic's TCP connector wrapped in [`Watched`], HTTP through a
//! wrapper around the reqwest client.
//!
//! TLS uses rustls with the *ring* provider passed explicitly, never installed as the
//! process default: the application stays free to install its own provider.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use opentelemetry_http::{Bytes, HttpClient, HttpError, Request, Response};
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig, WithTonicConfig};
use tonic::codegen::Service;
use tonic::transport::Uri;

use super::config::{ExportConfig, Protocol};
use super::pipeline::{DynExporter, Shared};

/// The headers (`OTEL_EXPORTER_OTLP_HEADERS`) as gRPC metadata: keys lowercased, as
/// gRPC requires. A header that is not valid metadata is an error naming it.
pub(crate) fn grpc_metadata(
    headers: &[(String, String)],
) -> Result<tonic::metadata::MetadataMap, String> {
    let mut metadata = tonic::metadata::MetadataMap::new();
    for (k, v) in headers {
        let key = tonic::metadata::MetadataKey::from_bytes(k.to_ascii_lowercase().as_bytes())
            .map_err(|e| format!("header `{k}`: {e}"))?;
        let value = v.parse().map_err(|e| format!("header `{k}`: {e}"))?;
        metadata.insert(key, value);
    }
    Ok(metadata)
}

/// Builds the exporter `config` describes. Must run inside a Tokio runtime context.
pub(crate) fn build(
    config: &ExportConfig,
    shared: Arc<Shared>,
) -> Result<Box<dyn DynExporter>, String> {
    let endpoint = config.endpoint.clone().ok_or("no endpoint")?;
    let https = endpoint.starts_with("https://");
    let exporter = match config.protocol {
        Protocol::Grpc => {
            let metadata = grpc_metadata(&config.headers)?;
            // The channel opentelemetry-otlp would make (endpoint, timeout, TLS), over a
            // connector that reports its attempts.
            let mut channel = tonic::transport::Endpoint::from_shared(endpoint)
                .map_err(|e| format!("cannot build the OTLP exporter: {e}"))?
                .timeout(config.timeout);
            if https {
                channel = channel
                    .tls_config(tonic::transport::ClientTlsConfig::new().with_native_roots())
                    .map_err(|e| format!("TLS: {e}"))?;
            }
            let channel = channel.connect_with_connector_lazy(Watched::new(shared.clone()));
            opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_protocol(opentelemetry_otlp::Protocol::Grpc)
                .with_channel(channel)
                .with_timeout(config.timeout)
                .with_metadata(metadata)
                .with_interceptor(move |request| {
                    shared.note_attempt();
                    Ok(request)
                })
                .build()
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
pub(crate) fn rustls_config() -> Result<rustls::ClientConfig, String> {
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

/// The TCP connector tonic uses.
type Tcp = hyper_util::client::legacy::connect::HttpConnector;

/// tonic's TCP connector (as tonic configures it), telling the pipeline whether each
/// connection attempt succeeded.
#[derive(Clone)]
struct Watched {
    inner: Tcp,
    shared: Arc<Shared>,
}

impl Watched {
    fn new(shared: Arc<Shared>) -> Self {
        let mut inner = Tcp::new();
        inner.enforce_http(false); // `https://` too: tonic adds TLS over this
        inner.set_nodelay(true);
        Watched { inner, shared }
    }
}

impl Service<Uri> for Watched {
    type Response = <Tcp as Service<Uri>>::Response;
    type Error = <Tcp as Service<Uri>>::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, uri: Uri) -> Self::Future {
        let connecting = self.inner.call(uri);
        let shared = self.shared.clone();
        Box::pin(async move {
            let connected = connecting.await;
            match &connected {
                Ok(_) => shared.note_reached(),
                Err(e) => shared.note_unreachable(e),
            }
            connected
        })
    }
}

/// reqwest, telling the pipeline about every request (retries included) and whether
/// it could connect.
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
        self.shared.note_attempt();
        let sending = self.client.send_bytes(request);
        let shared = self.shared.clone();
        Box::pin(async move {
            let answer = sending.await;
            match &answer {
                Ok(_) => shared.note_reached(),
                Err(e) if is_connect_error(e.as_ref()) => shared.note_unreachable(e.as_ref()),
                Err(_) => {} // connected, then failed: the receiver is there
            }
            answer
        })
    }
}

/// Whether reqwest failed to connect (refused, unresolvable, TLS handshake).
fn is_connect_error(error: &(dyn std::error::Error + 'static)) -> bool {
    error
        .downcast_ref::<reqwest::Error>()
        .is_some_and(reqwest::Error::is_connect)
}
