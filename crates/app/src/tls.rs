//! TLS for the listener, when a certificate is configured: rustls on the ring provider (no
//! C toolchain needed), with ALPN offering h2 and http/1.1 on the same port.

use anyhow::Context;
use axum_server::tls_rustls::RustlsConfig;
use pfs_platform::config::ServerConfig;

/// `None` when `server.tls_cert_path` is empty (plain HTTP/1.1 and h2c).
pub(crate) async fn config(server: &ServerConfig) -> anyhow::Result<Option<RustlsConfig>> {
    if server.tls_cert_path.as_os_str().is_empty() {
        return Ok(None);
    }
    // Only ring is compiled in, but rustls still wants it named once per process; a second
    // call (another listener, a test) finds it installed, which is fine.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let config = RustlsConfig::from_pem_file(&server.tls_cert_path, &server.tls_key_path).await.with_context(|| {
        format!("loading TLS certificate {} and key {}", server.tls_cert_path.display(), server.tls_key_path.display())
    })?;
    Ok(Some(config))
}
