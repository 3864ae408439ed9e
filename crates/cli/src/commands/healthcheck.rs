//! `portfolio-service healthcheck`: the container's `HEALTHCHECK`.
//!
//! The runtime image is distroless (no shell, no curl), so the binary probes itself: GET
//! `/health/live` on the configured address (loopback when it listens on every address), exit
//! 0 on a 2xx and 1 otherwise. It reads the same configuration as `serve` (so `PORTFOLIO_PORT`
//! and friends agree) but starts no logging: it runs every few seconds and its only output is
//! the exit code and one error line.

use anyhow::{Context, bail};
use pfs_platform::{Config, ConfigSources};
use std::net::IpAddr;
use std::time::Duration;

#[derive(Debug, Clone, clap::Args)]
pub struct Opts {
    /// Probe this URL instead of `/health/live` on the configured host and port.
    #[arg(long)]
    pub url: Option<String>,
    /// Give up (and fail) after this long ("2s", "500ms").
    #[arg(long, default_value = "2s", value_parser = humantime::parse_duration)]
    pub timeout: Duration,
}

pub async fn run(opts: Opts, sources: &ConfigSources) -> anyhow::Result<()> {
    let target = match opts.url {
        Some(url) => Target::Http(url),
        None => Target::from_config(&Config::load(sources)?),
    };
    tokio::time::timeout(opts.timeout, target.probe())
        .await
        .with_context(|| format!("{target} did not answer within {}", humantime::format_duration(opts.timeout)))?
}

#[derive(Debug, PartialEq, Eq)]
enum Target {
    Http(String),
    /// With TLS on, the port speaks only HTTPS, and the workspace's HTTP client is built without
    /// TLS (rustls stays server-side): an accepted connection is the liveness signal then.
    Tcp(String),
}

impl Target {
    fn from_config(config: &Config) -> Self {
        let host = match config.server.host.parse::<IpAddr>() {
            Ok(ip) if ip.is_unspecified() => "127.0.0.1".to_owned(),
            Ok(IpAddr::V6(ip)) => format!("[{ip}]"),
            _ => config.server.host.clone(),
        };
        let address = format!("{host}:{}", config.server.port);
        if config.server.tls_cert_path.as_os_str().is_empty() {
            Self::Http(format!("http://{address}/health/live"))
        } else {
            Self::Tcp(address)
        }
    }

    async fn probe(&self) -> anyhow::Result<()> {
        match self {
            Self::Http(url) => {
                // A proxy from the environment (HTTP_PROXY in a corporate image) must not see
                // a probe of the process's own port.
                let client = reqwest::Client::builder().no_proxy().build()?;
                let status = client.get(url).send().await.with_context(|| format!("GET {url}"))?.status();
                if !status.is_success() {
                    bail!("GET {url} answered {status}");
                }
            }
            Self::Tcp(address) => {
                tokio::net::TcpStream::connect(address).await.with_context(|| format!("connect to {address}"))?;
            }
        }
        Ok(())
    }
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Http(url) => write!(f, "GET {url}"),
            Self::Tcp(address) => write!(f, "{address}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(env: &[(&str, &str)]) -> Config {
        let env = env.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Config::load(&ConfigSources { env, ..ConfigSources::default() }).unwrap()
    }

    #[test]
    fn probes_the_configured_port_on_loopback() {
        let target = Target::from_config(&config(&[("PORTFOLIO_PORT", "9123"), ("PORTFOLIO_HOST", "0.0.0.0")]));
        assert_eq!(target, Target::Http("http://127.0.0.1:9123/health/live".into()));
    }

    #[test]
    fn probes_a_specific_listen_address_itself() {
        let target = Target::from_config(&config(&[("PORTFOLIO_PORT", "9125"), ("PORTFOLIO_HOST", "::1")]));
        assert_eq!(target, Target::Http("http://[::1]:9125/health/live".into()));
        let target = Target::from_config(&config(&[("PORTFOLIO_PORT", "9126"), ("PORTFOLIO_HOST", "::")]));
        assert_eq!(target, Target::Http("http://127.0.0.1:9126/health/live".into()));
    }

    #[test]
    fn with_tls_an_accepted_connection_is_enough() {
        let mut config = config(&[("PORTFOLIO_PORT", "9124")]);
        config.server.tls_cert_path = "/tls/cert.pem".into();
        config.server.tls_key_path = "/tls/key.pem".into();
        assert_eq!(Target::from_config(&config), Target::Tcp("127.0.0.1:9124".into()));
    }
}
