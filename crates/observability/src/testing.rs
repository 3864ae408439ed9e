//! An in-process OTLP receiver for tests: the collector's gRPC trace and metrics services
//! (tonic) and the HTTP/protobuf endpoints `/v1/traces` and `/v1/metrics` (axum + prost). It
//! decodes every request and keeps span names with their attributes and metric names.

use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
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

#[derive(Debug, Default)]
pub struct Received {
    pub spans: Vec<ReceivedSpan>,
    pub metric_names: Vec<String>,
    pub requests: usize,
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
    fn traces(&self, request: ExportTraceServiceRequest) {
        let mut received = self.0.lock().unwrap_or_else(|p| p.into_inner());
        received.requests += 1;
        for resource in request.resource_spans {
            let service_name = resource.resource.as_ref().and_then(|r| {
                r.attributes.iter().find(|kv| kv.key == "service.name").map(|kv| text(kv.value.as_ref()))
            });
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
        let mut received = self.0.lock().unwrap_or_else(|p| p.into_inner());
        received.requests += 1;
        for resource in request.resource_metrics {
            for scope in resource.scope_metrics {
                received.metric_names.extend(scope.metrics.into_iter().map(|m| m.name));
            }
        }
    }
}

#[tonic::async_trait]
impl TraceService for Sink {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
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
        self.metrics(request.into_inner());
        Ok(tonic::Response::new(ExportMetricsServiceResponse::default()))
    }
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
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let sink = Sink::default();
        let router = tonic::transport::Server::builder()
            .add_service(TraceServiceServer::new(sink.clone()))
            .add_service(MetricsServiceServer::new(sink.clone()));
        let incoming = tonic::transport::server::TcpIncoming::from(listener);
        let server = tokio::spawn(async move {
            let _ = router.serve_with_incoming(incoming).await;
        });
        Ok(Self { address, sink, server })
    }

    /// The HTTP/protobuf collector (`POST /v1/traces`, `POST /v1/metrics`) on `address`.
    pub async fn http(address: SocketAddr) -> std::io::Result<Self> {
        let listener = TcpListener::bind(address).await?;
        let address = listener.local_addr()?;
        let sink = Sink::default();
        let app = axum::Router::new()
            .route(
                "/v1/traces",
                post(|State(sink): State<Sink>, body: Bytes| async move {
                    match ExportTraceServiceRequest::decode(body) {
                        Ok(request) => {
                            sink.traces(request);
                            (axum::http::StatusCode::OK, ExportTraceServiceResponse::default().encode_to_vec())
                        }
                        Err(_) => (axum::http::StatusCode::BAD_REQUEST, Vec::new()),
                    }
                }),
            )
            .route(
                "/v1/metrics",
                post(|State(sink): State<Sink>, body: Bytes| async move {
                    match ExportMetricsServiceRequest::decode(body) {
                        Ok(request) => {
                            sink.metrics(request);
                            (axum::http::StatusCode::OK, ExportMetricsServiceResponse::default().encode_to_vec())
                        }
                        Err(_) => (axum::http::StatusCode::BAD_REQUEST, Vec::new()),
                    }
                }),
            )
            .with_state(sink.clone());
        let server = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
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
            if let Some(found) = check(&self.sink.0.lock().unwrap_or_else(|p| p.into_inner())) {
                return Some(found);
            }
            if tokio::time::Instant::now() >= deadline {
                return None;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn snapshot<T>(&self, read: impl FnOnce(&Received) -> T) -> T {
        read(&self.sink.0.lock().unwrap_or_else(|p| p.into_inner()))
    }
}
