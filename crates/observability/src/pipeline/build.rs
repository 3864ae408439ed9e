//! The SDK's OTLP exporters for resolved targets. Every setting is passed to the builder, so
//! the SDK (which reads the same variables from the process environment) gets the values
//! resolved here, and its own reading cannot disagree with what `/health/detailed` shows.
//! TLS is rustls on ring (tonic's `tls-ring`; hyper-rustls for HTTP), with the webpki roots,
//! or the CA the certificate variable names.

use super::plan::{Compression, NamedFile, OtlpTarget, Protocol};
use opentelemetry_http::hyper::HyperClient;
use opentelemetry_otlp::tonic_types::metadata::MetadataMap;
use opentelemetry_otlp::tonic_types::transport::{Certificate, ClientTlsConfig, Identity};
use opentelemetry_otlp::{
    LogExporter, MetricExporter, SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use std::collections::HashMap;
use std::sync::Arc;

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

/// The rustls configuration of an HTTPS collector: its CA (or the webpki roots) and, for
/// mutual TLS, the client's certificate and key.
fn rustls_config(target: &OtlpTarget) -> Result<rustls::ClientConfig, String> {
    let mut roots = rustls::RootCertStore::empty();
    match &target.certificate {
        Some(ca) => {
            for certificate in CertificateDer::pem_slice_iter(&read(ca)?) {
                let certificate = certificate.map_err(|e| format!("{}: {e}", ca.source))?;
                roots.add(certificate).map_err(|e| format!("{}: {e}", ca.source))?;
            }
        }
        None => roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned()),
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots);
    match (&target.client_certificate, &target.client_key) {
        (Some(cert), Some(key)) => {
            let chain = CertificateDer::pem_slice_iter(&read(cert)?)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| format!("{}: {e}", cert.source))?;
            let key = PrivateKeyDer::from_pem_slice(&read(key)?).map_err(|e| format!("{}: {e}", key.source))?;
            builder.with_client_auth_cert(chain, key).map_err(|e| format!("{}: {e}", cert.source))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

fn http<B: WithExportConfig + WithHttpConfig>(builder: B, target: &OtlpTarget) -> Result<B, String> {
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(rustls_config(target)?)
        .https_or_http()
        .enable_http1()
        .build();
    let client = HyperClient::new(connector, target.timeout, None);
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
