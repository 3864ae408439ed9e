//! The SDK's OTLP exporters for resolved targets. Every setting is passed to the builder, so
//! the SDK (which reads the same variables from the process environment) gets the values
//! resolved here, and its own reading cannot disagree with what `/health/detailed` shows.
//! TLS is rustls on ring (tonic's `tls-ring`, reqwest's provider-less rustls), with the
//! webpki roots, or the CA the certificate variable names.

use super::plan::{Compression, NamedFile, OtlpTarget, Protocol};
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig, Identity};
use opentelemetry_otlp::{
    LogExporter, MetricExporter, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use std::collections::HashMap;

fn read(file: &NamedFile) -> Result<Vec<u8>, String> {
    std::fs::read(&file.path).map_err(|e| format!("{}={}: {e}", file.source, file.path.display()))
}

fn compression(compression: Compression) -> opentelemetry_otlp::Compression {
    match compression {
        Compression::Gzip => opentelemetry_otlp::Compression::Gzip,
    }
}

fn tonic<B: WithExportConfig + WithTonicConfig>(builder: B, target: &OtlpTarget) -> Result<B, String> {
    let mut headers = http::HeaderMap::new();
    for (name, value) in &target.headers {
        if let (Ok(name), Ok(value)) =
            (http::HeaderName::from_bytes(name.as_bytes()), value.parse::<http::HeaderValue>())
        {
            headers.append(name, value);
        }
    }
    let mut builder = builder
        .with_endpoint(target.url.clone())
        .with_timeout(target.timeout)
        .with_metadata(MetadataMap::from_headers(headers));
    if let Some(c) = target.compression {
        builder = builder.with_compression(compression(c));
    }
    if target.url.starts_with("https://") {
        let mut tls = ClientTlsConfig::new().with_webpki_roots();
        if let Some(ca) = &target.certificate {
            tls = tls.ca_certificate(Certificate::from_pem(read(ca)?));
        }
        if let (Some(cert), Some(key)) = (&target.client_certificate, &target.client_key) {
            tls = tls.identity(Identity::from_pem(read(cert)?, read(key)?));
        }
        builder = builder.with_tls_config(tls);
    }
    Ok(builder)
}

fn http<B: WithExportConfig + WithHttpConfig>(builder: B, target: &OtlpTarget) -> Result<B, String> {
    let mut client = reqwest::Client::builder().timeout(target.timeout);
    if let Some(ca) = &target.certificate {
        let pem = read(ca)?;
        let certificate = reqwest::Certificate::from_pem(&pem).map_err(|e| format!("{}: {e}", ca.source))?;
        client = client.add_root_certificate(certificate);
    }
    if let (Some(cert), Some(key)) = (&target.client_certificate, &target.client_key) {
        let mut pem = read(cert)?;
        pem.extend(read(key)?);
        client = client.identity(reqwest::Identity::from_pem(&pem).map_err(|e| format!("{}: {e}", cert.source))?);
    }
    let client = client.build().map_err(|e| e.to_string())?;
    let headers: HashMap<String, String> = target.headers.iter().cloned().collect();
    let mut builder = builder
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(target.url.clone())
        .with_timeout(target.timeout)
        .with_http_client(client)
        .with_headers(headers);
    if let Some(c) = target.compression {
        builder = builder.with_compression(compression(c));
    }
    Ok(builder)
}

/// Names the variable at fault in a build error.
fn failed(target: &OtlpTarget, error: impl std::fmt::Display) -> String {
    format!("{}={}: {error}", target.source, target.url)
}

pub(crate) fn span_exporter(target: &OtlpTarget) -> Result<SpanExporter, String> {
    let built = match target.protocol {
        Protocol::Grpc => tonic(SpanExporter::builder().with_tonic(), target)?.build(),
        Protocol::HttpProtobuf => http(SpanExporter::builder().with_http(), target)?.build(),
    };
    built.map_err(|e| failed(target, e))
}

pub(crate) fn metric_exporter(target: &OtlpTarget) -> Result<MetricExporter, String> {
    let built = match target.protocol {
        Protocol::Grpc => tonic(MetricExporter::builder().with_tonic(), target)?.build(),
        Protocol::HttpProtobuf => http(MetricExporter::builder().with_http(), target)?.build(),
    };
    built.map_err(|e| failed(target, e))
}

pub(crate) fn log_exporter(target: &OtlpTarget) -> Result<LogExporter, String> {
    let built = match target.protocol {
        Protocol::Grpc => tonic(LogExporter::builder().with_tonic(), target)?.build(),
        Protocol::HttpProtobuf => http(LogExporter::builder().with_http(), target)?.build(),
    };
    built.map_err(|e| failed(target, e))
}
