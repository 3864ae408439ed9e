//! Opening a tokio-postgres connection that matches the one sqlx would open for the same URL.
//!
//! The URL is parsed by sqlx ([`PgConnectOptions`]), so both drivers read the same host,
//! port, socket, user, database, `application_name` and `options` (sqlx's `options[k]=v`
//! form included: the tests and benchmarks set `search_path` that way). sqlx does not expose
//! the password, so it is taken from the URL itself, then `PGPASSWORD`, as sqlx does; a
//! `~/.pgpass` entry is not read here. TLS follows sqlx: `prefer` tries TLS and falls back to
//! plain text when the server declines, `require` insists on it, and neither verifies the
//! server's certificate (libpq's meaning of those modes). Modes that verify certificates, and
//! client certificates, are left to sqlx: [`ReadConfig::from_url`] returns `None` for them and
//! the store keeps reading through its sqlx pool.

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};
use sqlx::postgres::{PgConnectOptions, PgSslMode};
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// Query parameters that name certificate files: sqlx verifies with them, this client would not.
const CERTIFICATE_PARAMETERS: [&str; 3] = ["sslrootcert", "sslcert", "sslkey"];

/// Everything needed to open one more read connection.
#[derive(Clone)]
pub(crate) struct ReadConfig {
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    /// Set on every new connection, as the sqlx pools do (see `pool_options`).
    statement_timeout: String,
}

impl ReadConfig {
    /// The tokio-postgres form of `url`, or `None` when its TLS settings ask for certificate
    /// checks this client does not make (the caller then reads through sqlx).
    pub(crate) fn from_url(url: &str, options: &PgConnectOptions, statement_timeout: Duration) -> Option<Self> {
        let parsed = url::Url::parse(url).ok()?;
        if parsed.query_pairs().any(|(key, _)| CERTIFICATE_PARAMETERS.contains(&key.as_ref())) {
            return None;
        }
        let ssl_mode = match options.get_ssl_mode() {
            PgSslMode::Disable | PgSslMode::Allow => SslMode::Disable,
            PgSslMode::Prefer => SslMode::Prefer,
            PgSslMode::Require => SslMode::Require,
            PgSslMode::VerifyCa | PgSslMode::VerifyFull => return None,
        };
        let mut config = tokio_postgres::Config::new();
        match options.get_socket() {
            Some(socket) => config.host_path(socket),
            None => config.host(options.get_host()),
        };
        config.port(options.get_port()).user(options.get_username()).ssl_mode(ssl_mode);
        if let Some(database) = options.get_database() {
            config.dbname(database);
        }
        if let Some(name) = options.get_application_name() {
            config.application_name(name);
        }
        if let Some(startup_options) = options.get_options() {
            config.options(startup_options);
        }
        let password = parsed.password().map(percent_decode).or_else(|| std::env::var("PGPASSWORD").ok());
        if let Some(password) = password {
            config.password(password);
        }
        Some(Self { config, tls: tls_connector(), statement_timeout: statement_timeout.as_millis().to_string() })
    }

    /// Opens a connection, drives it on its own task, and applies the session settings.
    pub(crate) async fn connect(&self) -> Result<tokio_postgres::Client, tokio_postgres::Error> {
        let (client, connection) = self.config.connect(self.tls.clone()).await?;
        // The task ends when the connection closes: the server went away, or every `Client`
        // handle was dropped (a replaced or closed store).
        tokio::spawn(async move {
            let _ = connection.await;
        });
        client.execute("SELECT set_config('statement_timeout', $1, false)", &[&self.statement_timeout]).await?;
        Ok(client)
    }
}

fn percent_decode(text: &str) -> String {
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// rustls on ring, without certificate verification: see the module comment.
fn tls_connector() -> MakeRustlsConnect {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AnyCertificate { provider }))
        .with_no_client_auth();
    MakeRustlsConnect::new(config)
}

/// Accepts any server certificate, still checking that the handshake is signed by its key:
/// sqlx's behaviour for `prefer` and `require`.
#[derive(Debug)]
struct AnyCertificate {
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for AnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::str::FromStr;

    fn read_config(url: &str) -> Option<ReadConfig> {
        ReadConfig::from_url(url, &PgConnectOptions::from_str(url).unwrap(), Duration::from_secs(5))
    }

    #[test]
    fn the_url_is_read_as_sqlx_reads_it() {
        let config = read_config(
            "postgres://app:p%40ss@db.example:6543/orders?options%5Bsearch_path%5D=s1%2Cpublic&sslmode=require",
        )
        .unwrap()
        .config;
        assert_eq!(config.get_hosts(), [tokio_postgres::config::Host::Tcp("db.example".into())]);
        assert_eq!(config.get_ports(), [6543]);
        assert_eq!((config.get_user(), config.get_dbname()), (Some("app"), Some("orders")));
        assert_eq!(config.get_password(), Some(&b"p@ss"[..]));
        assert_eq!(config.get_options(), Some("-c search_path=s1,public"));
        assert_eq!(config.get_ssl_mode(), SslMode::Require);
    }

    #[test]
    fn libpq_style_options_and_the_default_tls_mode_carry_over() {
        let config = read_config("postgres://postgres@127.0.0.1/postgres?options=-c%20search_path%3Dbench,public")
            .unwrap()
            .config;
        assert_eq!(config.get_options(), Some("-c search_path=bench,public"));
        assert_eq!(config.get_ssl_mode(), SslMode::Prefer, "sqlx's default");
        assert_eq!(read_config("postgres://h/d?sslmode=disable").unwrap().config.get_ssl_mode(), SslMode::Disable);
    }

    #[test]
    fn certificate_checks_are_left_to_sqlx() {
        assert!(read_config("postgres://h/d?sslmode=verify-full").is_none());
        assert!(read_config("postgres://h/d?sslmode=verify-ca").is_none());
        assert!(read_config("postgres://h/d?sslmode=require&sslrootcert=/etc/ca.pem").is_none());
    }
}
