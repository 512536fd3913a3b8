//! Optional TLS (rustls) for the gRPC endpoints: the node agent and, through the root crate,
//! the managers. Without a `[tls]` section traffic is plain HTTP/2 on loopback or a trusted
//! network, authenticated by the shared token either way.
//!
//! ```toml
//! [tls]                                        # server side (agent, manager listener)
//! cert_file = "/etc/raftmha/tls/agent.crt"     # PEM chain
//! key_file = "/etc/raftmha/tls/agent.key"      # PEM private key, mode 0600
//! client_ca_file = "/etc/raftmha/tls/ca.crt"   # optional: require client certificates
//!
//! [client_tls]                                 # client side (managers → agents/peers)
//! ca_file = "/etc/raftmha/tls/ca.crt"
//! cert_file = "/etc/raftmha/tls/manager.crt"   # optional, for mutual TLS
//! key_file = "/etc/raftmha/tls/manager.key"
//! domain = "db1.example"                       # optional: name to verify instead of the host
//! ```
use std::path::{Path, PathBuf};

use serde::Deserialize;
use tonic::transport::{Certificate, ClientTlsConfig, Identity, ServerTlsConfig};

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("tls: cannot read {what} {path}: {source}")]
    Read {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("tls: {what} {path} holds no PEM block")]
    NotPem { what: &'static str, path: PathBuf },
    #[error("tls: {0}")]
    Config(String),
}

fn read_pem(what: &'static str, path: &Path) -> Result<Vec<u8>, TlsError> {
    let bytes = std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    // Catch a swapped or empty file here, with its name, instead of a handshake error later.
    if !bytes.windows(11).any(|w| w == b"-----BEGIN ") {
        return Err(TlsError::NotPem {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(bytes)
}

/// Server side: our certificate and key, and optionally the CA whose client certificates we
/// require (mutual TLS).
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ServerTls {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    #[serde(default)]
    pub client_ca_file: Option<PathBuf>,
}

impl ServerTls {
    pub fn load(&self) -> Result<ServerTlsConfig, TlsError> {
        let cert = read_pem("certificate", &self.cert_file)?;
        let key = read_pem("private key", &self.key_file)?;
        let mut cfg = ServerTlsConfig::new().identity(Identity::from_pem(cert, key));
        if let Some(ca) = &self.client_ca_file {
            cfg = cfg.client_ca_root(Certificate::from_pem(read_pem("client CA", ca)?));
        }
        Ok(cfg)
    }
}

/// Client side: the CA we trust, optionally our own certificate for mutual TLS, and the name to
/// verify when it differs from the host we dial.
#[derive(Debug, Clone, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct ClientTls {
    pub ca_file: PathBuf,
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    #[serde(default)]
    pub domain: Option<String>,
}

impl ClientTls {
    pub fn load(&self) -> Result<ClientTlsConfig, TlsError> {
        let mut cfg = ClientTlsConfig::new()
            .ca_certificate(Certificate::from_pem(read_pem("CA", &self.ca_file)?));
        match (&self.cert_file, &self.key_file) {
            (Some(c), Some(k)) => {
                cfg = cfg.identity(Identity::from_pem(
                    read_pem("certificate", c)?,
                    read_pem("private key", k)?,
                ));
            }
            (None, None) => {}
            _ => {
                return Err(TlsError::Config(
                    "cert_file and key_file go together".into(),
                ));
            }
        }
        if let Some(d) = &self.domain {
            cfg = cfg.domain_name(d.clone());
        }
        Ok(cfg)
    }
}

/// `http://host:port` → `https://host:port` when TLS is on (tonic picks TLS by scheme).
pub fn endpoint_url(addr: &str, tls: bool) -> String {
    let bare = addr
        .trim_start_matches("http://")
        .trim_start_matches("https://");
    format!("{}://{bare}", if tls { "https" } else { "http" })
}
