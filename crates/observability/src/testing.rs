//! An in-process OTLP receiver for tests: the collector's gRPC trace, metrics and logs services
//! (tonic) and the HTTP/protobuf endpoints `/v1/traces`, `/v1/metrics` and `/v1/logs` (axum +
//! prost). It decodes every request and keeps span names with their attributes, metric names,
//! log records, the resource of each batch, and the request headers.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_server::{LogsService, LogsServiceServer};
use opentelemetry_proto::tonic::collector::logs::v1::{ExportLogsServiceRequest, ExportLogsServiceResponse};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_server::{
    MetricsService, MetricsServiceServer,
};
use opentelemetry_proto::tonic::collector::metrics::v1::{ExportMetricsServiceRequest, ExportMetricsServiceResponse};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use prost::Message;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

/// One received span.
#[derive(Clone, Debug)]
pub struct ReceivedSpan {
    pub name: String,
    pub trace_id: String,
    pub span_id: String,
    pub parent_span_id: String,
    pub attributes: BTreeMap<String, String>,
    pub service_name: Option<String>,
}

/// One received log record.
#[derive(Clone, Debug)]
pub struct ReceivedLog {
    pub body: String,
    pub severity: String,
    /// Hex; empty when the record belongs to no trace.
    pub trace_id: String,
    pub span_id: String,
}

#[derive(Debug, Default)]
pub struct Received {
    pub spans: Vec<ReceivedSpan>,
    pub metric_names: Vec<String>,
    pub logs: Vec<ReceivedLog>,
    /// The resource attributes of each batch, with its signal (`traces`, `metrics`, `logs`).
    pub resources: Vec<(&'static str, BTreeMap<String, String>)>,
    /// The headers (gRPC metadata) of each request.
    pub headers: Vec<BTreeMap<String, String>>,
    pub requests: usize,
}

type Attributes = [opentelemetry_proto::tonic::common::v1::KeyValue];

fn attributes(attributes: &Attributes) -> BTreeMap<String, String> {
    attributes.iter().map(|kv| (kv.key.clone(), text(kv.value.as_ref()))).collect()
}

fn headers(headers: &axum::http::HeaderMap) -> BTreeMap<String, String> {
    headers.iter().map(|(k, v)| (k.as_str().to_owned(), String::from_utf8_lossy(v.as_bytes()).into_owned())).collect()
}

#[derive(Clone, Default)]
struct Sink(Arc<Mutex<Received>>);

fn text(value: Option<&opentelemetry_proto::tonic::common::v1::AnyValue>) -> String {
    match value.and_then(|v| v.value.as_ref()) {
        Some(Value::StringValue(s)) => s.clone(),
        Some(Value::IntValue(i)) => i.to_string(),
        Some(Value::BoolValue(b)) => b.to_string(),
        Some(Value::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl Sink {
    fn lock(&self) -> std::sync::MutexGuard<'_, Received> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn headers(&self, headers: BTreeMap<String, String>) {
        self.lock().headers.push(headers);
    }

    fn traces(&self, request: ExportTraceServiceRequest) {
        let mut received = self.lock();
        received.requests += 1;
        for resource in request.resource_spans {
            let resource_attributes = attributes(resource.resource.as_ref().map_or(&[][..], |r| &r.attributes));
            let service_name = resource_attributes.get("service.name").cloned();
            received.resources.push(("traces", resource_attributes));
            for scope in resource.scope_spans {
                for span in scope.spans {
                    let attributes =
                        span.attributes.iter().map(|kv| (kv.key.clone(), text(kv.value.as_ref()))).collect();
                    received.spans.push(ReceivedSpan {
                        name: span.name,
                        trace_id: hex(&span.trace_id),
                        span_id: hex(&span.span_id),
                        parent_span_id: hex(&span.parent_span_id),
                        attributes,
                        service_name: service_name.clone(),
                    });
                }
            }
        }
    }

    fn metrics(&self, request: ExportMetricsServiceRequest) {
        let mut received = self.lock();
        received.requests += 1;
        for resource in request.resource_metrics {
            received
                .resources
                .push(("metrics", attributes(resource.resource.as_ref().map_or(&[][..], |r| &r.attributes))));
            for scope in resource.scope_metrics {
                received.metric_names.extend(scope.metrics.into_iter().map(|m| m.name));
            }
        }
    }

    fn logs(&self, request: ExportLogsServiceRequest) {
        let mut received = self.lock();
        received.requests += 1;
        for resource in request.resource_logs {
            received
                .resources
                .push(("logs", attributes(resource.resource.as_ref().map_or(&[][..], |r| &r.attributes))));
            for scope in resource.scope_logs {
                for record in scope.log_records {
                    received.logs.push(ReceivedLog {
                        body: text(record.body.as_ref()),
                        severity: record.severity_text,
                        trace_id: hex(&record.trace_id),
                        span_id: hex(&record.span_id),
                    });
                }
            }
        }
    }
}

#[tonic::async_trait]
impl LogsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportLogsServiceRequest>,
    ) -> Result<tonic::Response<ExportLogsServiceResponse>, tonic::Status> {
        self.headers(headers(&request.metadata().clone().into_headers()));
        self.logs(request.into_inner());
        Ok(tonic::Response::new(ExportLogsServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        self.headers(headers(&request.metadata().clone().into_headers()));
        self.traces(request.into_inner());
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tonic::async_trait]
impl MetricsService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        self.headers(headers(&request.metadata().clone().into_headers()));
        self.metrics(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
}

/// Decodes an HTTP/protobuf export (gzip-compressed or not); 400 when the body is no such
/// request.
fn decoded<R: Message + Default, A: Message>(
    headers: &axum::http::HeaderMap,
    body: Bytes,
    keep: impl FnOnce(R),
    answer: A,
) -> (axum::http::StatusCode, Vec<u8>) {
    let body = if headers.get("content-encoding").is_some_and(|v| v == "gzip") {
        let mut plain = Vec::new();
        match std::io::Read::read_to_end(&mut flate2::read::GzDecoder::new(&body[..]), &mut plain) {
            Ok(_) => Bytes::from(plain),
            Err(_) => return (axum::http::StatusCode::BAD_REQUEST, Vec::new()),
        }
    } else {
        body
    };
    match R::decode(body) {
        Ok(request) => {
            keep(request);
            (axum::http::StatusCode::OK, answer.encode_to_vec())
        }
        Err(_) => (axum::http::StatusCode::BAD_REQUEST, Vec::new()),
    }
}

/// The collector's HTTP/protobuf routes.
fn http_routes(sink: Sink) -> axum::Router {
    axum::Router::new()
        .route(
            "/v1/traces",
            post(|State(sink): State<Sink>, map: axum::http::HeaderMap, body: Bytes| async move {
                sink.headers(headers(&map));
                decoded(
                    &map,
                    body,
                    |r: ExportTraceServiceRequest| sink.traces(r),
                    ExportTraceServiceResponse::default(),
                )
            }),
        )
        .route(
            "/v1/metrics",
            post(|State(sink): State<Sink>, map: axum::http::HeaderMap, body: Bytes| async move {
                sink.headers(headers(&map));
                decoded(
                    &map,
                    body,
                    |r: ExportMetricsServiceRequest| sink.metrics(r),
                    ExportMetricsServiceResponse::default(),
                )
            }),
        )
        .route(
            "/v1/logs",
            post(|State(sink): State<Sink>, map: axum::http::HeaderMap, body: Bytes| async move {
                sink.headers(headers(&map));
                decoded(&map, body, |r: ExportLogsServiceRequest| sink.logs(r), ExportLogsServiceResponse::default())
            }),
        )
        .with_state(sink)
}

/// A running receiver; stops when dropped.
pub struct Receiver {
    pub address: SocketAddr,
    sink: Sink,
    server: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.server.abort();
    }
}

impl Receiver {
    /// The gRPC collector on `address` (port 0 picks one).
    pub async fn grpc(address: SocketAddr) -> std::io::Result<Self> {
        Self::grpc_with(address, tonic::transport::Server::builder()).await
    }

    /// The gRPC collector over TLS with this PEM certificate and key.
    pub async fn grpc_tls(address: SocketAddr, cert_pem: &str, key_pem: &str) -> std::io::Result<Self> {
        let identity = tonic::transport::Identity::from_pem(cert_pem, key_pem);
        let builder = tonic::transport::Server::builder()
            .tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))
            .map_err(std::io::Error::other)?;
        Self::grpc_with(address, builder).await
    }

    async fn grpc_with(address: SocketAddr, mut builder: tonic::transport::Server) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let sink = Sink::default();
        let router = builder
            .add_service(TraceServiceServer::new(sink.clone()))
            .add_service(MetricsServiceServer::new(sink.clone()))
            .add_service(LogsServiceServer::new(sink.clone()));
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let server = tokio::spawn(async move {
            let _ = router.serve_with_incoming(incoming).await;
        });
        Ok(Self { address, sink, server })
    }

    /// The HTTP/protobuf collector (`POST /v1/traces`, `/v1/metrics`, `/v1/logs`) on `address`.
    pub async fn http(address: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let sink = Sink::default();
        let app = http_routes(sink.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self { address, sink, server })
    }

    /// The HTTP/protobuf collector over TLS (rustls) with this PEM certificate and key.
    pub async fn https(address: SocketAddr, cert_pem: &str, key_pem: &str) -> std::io::Result<Self> {
        let listener = std::net::TcpListener::bind(address)?;
        listener.set_nonblocking(true)?;
        let address = listener.local_addr()?;
        let tls = axum_server::tls_rustls::RustlsConfig::from_pem(cert_pem.into(), key_pem.into()).await?;
        let sink = Sink::default();
        let app = http_routes(sink.clone());
        let server = axum_server::from_tcp_rustls(listener, tls)?;
        let server = tokio::spawn(async move {
            let _ = server.serve(app.into_make_service()).await;
        });
        Ok(Self { address, sink, server })
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.address)
    }

    /// Runs `check` on what has arrived until it returns `Some`, for at most `timeout`.
    pub async fn wait_for<T>(&self, timeout: Duration, mut check: impl FnMut(&Received) -> Option<T>) -> Option<T> {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            if let Some(found) = check(&self.sink.lock()) {
                return Some(found);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn snapshot<T>(&self, read: impl FnOnce(&Received) -> T) -> T {
        read(&self.sink.lock())
    }
}
