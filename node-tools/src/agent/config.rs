//! `node.toml`: what the agent serves and how.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::tools::db::DbTarget;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AgentConfig {
    /// Address to listen on, e.g. `127.0.30.1:7400`.
    pub listen: SocketAddr,
    /// Directory of the server's binlogs.
    pub binlog_dir: PathBuf,
    /// Binlog base name (`binlog` for `binlog.000001`).
    #[serde(default = "default_binlog_base")]
    pub binlog_base: String,
    /// Directory of the relay logs.
    pub relay_dir: PathBuf,
    /// Relay-log base name.
    #[serde(default = "default_relay_base")]
    pub relay_base: String,
    /// Scratch space for generated and uploaded files.
    pub workdir: PathBuf,
    /// File holding the shared token (first line).
    #[serde(default)]
    pub token_file: Option<PathBuf>,
    /// Environment variable holding the shared token.
    #[serde(default)]
    pub token_env: Option<String>,
    /// Largest single gRPC message accepted.
    #[serde(default = "default_max_request")]
    pub max_request_bytes: usize,
    /// Largest total upload for one ApplyDiff call.
    #[serde(default = "default_max_upload")]
    pub max_upload_bytes: u64,
    /// Deadline of every call.
    #[serde(default = "default_timeout")]
    pub call_timeout_secs: u64,
    /// The local mysqld's pid file (Health, StopMysqld).
    #[serde(default)]
    pub mysqld_pid_file: Option<PathBuf>,
    /// StopMysqld is refused unless this is true. Also lets the agent SIGKILL a paused or hung
    /// mysqld when the master's lease expires or the leader fences it (see [`super::lease`]);
    /// without it such a master can only be set read-only, which a hung server never confirms.
    #[serde(default)]
    pub allow_stop_mysqld: bool,
    /// Verify CRC32 while saving and generating.
    #[serde(default = "default_true")]
    pub verify_crc: bool,
    /// The local server, for ApplyDiff, PurgeRelayLogs and fencing: when this host is the
    /// master and fewer than a majority of managers renewed its lease within the cluster's
    /// `lease_ttl_ms`, the agent sets read_only, kills client sessions and holds a global read
    /// lock with this account (a master cut off from the managers stops taking writes after the
    /// TTL, as Patroni's does); the leader lifts it once a majority renews again.
    #[serde(default)]
    pub db: Option<DbConfig>,
    /// Serve the routing checks for HAProxy (`GET /master`, `/replica[?lag=N]`, `/health`)
    /// over plain HTTP on this address, e.g. `10.0.0.11:8008`. Unauthenticated and read-only:
    /// they tell whether this host is the master, nothing more.
    #[serde(default)]
    pub http_listen: Option<SocketAddr>,
    /// Serve over TLS (rustls) instead of plain HTTP/2.
    #[serde(default)]
    pub tls: Option<crate::tls::ServerTls>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DbConfig {
    pub host: String,
    pub port: u16,
    #[serde(default)]
    pub socket: Option<PathBuf>,
    pub user: String,
    /// File holding the password (never inline in the config).
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    /// Or an environment variable holding it.
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub client_bindir: Option<PathBuf>,
}

fn default_binlog_base() -> String {
    "binlog".into()
}
fn default_relay_base() -> String {
    "relay".into()
}
fn default_max_request() -> usize {
    4 << 20
}
fn default_max_upload() -> u64 {
    16 << 30
}
fn default_timeout() -> u64 {
    600
}
fn default_true() -> bool {
    true
}

/// One error per broken rule.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read {0}: {1}")]
    Read(PathBuf, std::io::Error),
    #[error("invalid config {0}: {1}")]
    Parse(PathBuf, String),
    #[error("set token_file or token_env: the agent never runs without authentication")]
    NoToken,
    #[error("{0} must be an absolute path")]
    Relative(&'static str),
    #[error("call_timeout_secs must be between 1 and 86400")]
    Timeout,
    #[error("max_request_bytes must be between 64 KiB and 64 MiB")]
    RequestSize,
    #[error("db password: {0}")]
    Password(String),
}

impl AgentConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError::Read(path.into(), e))?;
        let cfg: AgentConfig =
            toml::from_str(&text).map_err(|e| ConfigError::Parse(path.into(), e.to_string()))?;
        cfg.validate()?;
        Ok(cfg)
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.token_file.is_none() && self.token_env.is_none() {
            return Err(ConfigError::NoToken);
        }
        for (name, p) in [
            ("binlog_dir", &self.binlog_dir),
            ("relay_dir", &self.relay_dir),
            ("workdir", &self.workdir),
        ] {
            if !p.is_absolute() {
                return Err(ConfigError::Relative(name));
            }
        }
        if !(1..=86_400).contains(&self.call_timeout_secs) {
            return Err(ConfigError::Timeout);
        }
        if !(64 << 10..=64 << 20).contains(&self.max_request_bytes) {
            return Err(ConfigError::RequestSize);
        }
        Ok(())
    }

    /// The local server's connection settings, password read now.
    pub fn db_target(&self) -> Result<Option<(DbTarget, Option<PathBuf>)>, ConfigError> {
        let Some(db) = &self.db else { return Ok(None) };
        let password = match (&db.password_file, &db.password_env) {
            (Some(f), _) => std::fs::read_to_string(f)
                .map_err(|e| ConfigError::Password(format!("{}: {e}", f.display())))?
                .trim_end_matches(['\n', '\r'])
                .to_string(),
            (None, Some(var)) => std::env::var(var)
                .map_err(|_| ConfigError::Password(format!("${var} is not set")))?,
            (None, None) => String::new(),
        };
        Ok(Some((
            DbTarget {
                host: db.host.clone(),
                port: db.port,
                socket: db.socket.clone(),
                user: db.user.clone(),
                password,
            },
            db.client_bindir.clone(),
        )))
    }
}
