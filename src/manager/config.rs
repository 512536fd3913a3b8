//! `raftmha manager --config FILE`: the manager's TOML config, validated with one clear
//! error per rule that names the offending key.
//!
//! Relative paths (`data_dir`, `auth_token_file`) are resolved against the directory of
//! the config file, so `config/manager-1.toml` works from any working directory.
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::api::auth::AuthToken;
use crate::raft::node::Timing;
use crate::state::cluster_file::one_line;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: cannot read: {error}")]
    Unreadable { path: String, error: std::io::Error },
    #[error("config {path}: {message}")]
    Parse { path: String, message: String },
    #[error("config {path}: `{key}`: {rule}")]
    Invalid {
        path: String,
        key: String,
        rule: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    node_id: u64,
    listen: String,
    data_dir: PathBuf,
    auth_token_file: PathBuf,
    #[serde(default = "yes")]
    auto_init: bool,
    initial_voters: Vec<RawVoter>,
    #[serde(default)]
    timing: RawTiming,
    #[serde(default)]
    raft: RawRaft,
    #[serde(default)]
    tls: Option<RawTls>,
}

/// `[tls]`: one CA for the whole manager cluster. The manager serves with `cert_file` and
/// `key_file`, verifies peers against `ca_file`, and presents its own certificate when it dials
/// a peer, so `require_client_cert = true` gives mutual TLS between managers (admin clients
/// then need a certificate too).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTls {
    cert_file: PathBuf,
    key_file: PathBuf,
    ca_file: PathBuf,
    #[serde(default)]
    require_client_cert: bool,
}

/// The manager's TLS settings: how it serves and how it dials peers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ManagerTls {
    pub server: raftmha_node::tls::ServerTls,
    pub client: raftmha_node::tls::ClientTls,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawRaft {
    /// Build a snapshot (and purge the log before it) every this many log entries.
    snapshot_every_logs: u64,
}

impl Default for RawRaft {
    fn default() -> Self {
        RawRaft {
            snapshot_every_logs: 5000,
        }
    }
}

fn yes() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVoter {
    id: u64,
    addr: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
struct RawTiming {
    heartbeat_ms: u64,
    election_timeout_min_ms: u64,
    election_timeout_max_ms: u64,
}

impl Default for RawTiming {
    fn default() -> Self {
        // Leader loss is noticed after lease (= max) + rand[min, max): 0.6-0.8 s here.
        RawTiming {
            heartbeat_ms: 50,
            election_timeout_min_ms: 250,
            election_timeout_max_ms: 400,
        }
    }
}

/// A validated manager config.
#[derive(Debug, Clone)]
pub struct ManagerConfig {
    pub node_id: u64,
    pub listen: SocketAddr,
    pub data_dir: PathBuf,
    pub auth_token_file: PathBuf,
    pub token: AuthToken,
    pub auto_init: bool,
    /// `(id, addr)` of the voters a new cluster starts with, sorted by id.
    pub initial_voters: Vec<(u64, String)>,
    pub timing: Timing,
    pub tls: Option<ManagerTls>,
}

impl ManagerConfig {
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|error| ConfigError::Unreadable {
            path: shown.clone(),
            error,
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        Self::parse(&text, base).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: shown.clone(),
                message,
            },
            ConfigError::Invalid { key, rule, .. } => ConfigError::Invalid {
                path: shown.clone(),
                key,
                rule,
            },
            other => other,
        })
    }

    /// Parses and validates config text; relative paths resolve against `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Self, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            path: String::new(),
            message: one_line(&e.to_string()),
        })?;
        let invalid = |key: &str, rule: String| ConfigError::Invalid {
            path: String::new(),
            key: key.to_string(),
            rule,
        };
        if raw.node_id == 0 {
            return Err(invalid("node_id", "must be 1 or more".into()));
        }
        let listen: SocketAddr = raw.listen.parse().map_err(|_| {
            invalid(
                "listen",
                format!("{:?} is not an IP:port address", raw.listen),
            )
        })?;
        if listen.port() == 0 {
            return Err(invalid("listen", "port must not be 0".into()));
        }
        if raw.data_dir.as_os_str().is_empty() {
            return Err(invalid("data_dir", "must not be empty".into()));
        }
        if raw.initial_voters.is_empty() {
            return Err(invalid(
                "initial_voters",
                "at least one voter is required".into(),
            ));
        }
        let mut ids = BTreeSet::new();
        let mut addrs = BTreeSet::new();
        let mut voters = Vec::new();
        for (i, v) in raw.initial_voters.iter().enumerate() {
            if v.id == 0 {
                return Err(invalid(
                    &format!("initial_voters[{i}].id"),
                    "must be 1 or more".into(),
                ));
            }
            if !ids.insert(v.id) {
                return Err(invalid(
                    &format!("initial_voters[{i}].id"),
                    format!("duplicate id {}", v.id),
                ));
            }
            let addr: SocketAddr = v.addr.parse().map_err(|_| {
                invalid(
                    &format!("initial_voters[{i}].addr"),
                    format!("{:?} is not an IP:port address", v.addr),
                )
            })?;
            if addr.ip().is_unspecified() || addr.port() == 0 {
                return Err(invalid(
                    &format!("initial_voters[{i}].addr"),
                    "must be a concrete address peers can dial".into(),
                ));
            }
            if !addrs.insert(addr) {
                return Err(invalid(
                    &format!("initial_voters[{i}].addr"),
                    format!("duplicate address {addr}"),
                ));
            }
            if v.id == raw.node_id && !listen.ip().is_unspecified() && addr != listen {
                return Err(invalid(
                    &format!("initial_voters[{i}].addr"),
                    format!("this manager (id {}) listens on {listen}, not {addr}", v.id),
                ));
            }
            voters.push((v.id, addr.to_string()));
        }
        voters.sort();
        let t = &raw.timing;
        if t.heartbeat_ms < 10 {
            return Err(invalid("timing.heartbeat_ms", "must be at least 10".into()));
        }
        if t.election_timeout_min_ms <= t.heartbeat_ms {
            return Err(invalid(
                "timing.election_timeout_min_ms",
                format!(
                    "must be greater than timing.heartbeat_ms ({} <= {})",
                    t.election_timeout_min_ms, t.heartbeat_ms
                ),
            ));
        }
        if t.election_timeout_max_ms <= t.election_timeout_min_ms {
            return Err(invalid(
                "timing.election_timeout_max_ms",
                format!(
                    "must be greater than timing.election_timeout_min_ms ({} <= {})",
                    t.election_timeout_max_ms, t.election_timeout_min_ms
                ),
            ));
        }
        if raw.raft.snapshot_every_logs < 10 {
            return Err(invalid(
                "raft.snapshot_every_logs",
                "must be at least 10".into(),
            ));
        }
        let data_dir = base.join(&raw.data_dir);
        let auth_token_file = base.join(&raw.auth_token_file);
        let token = AuthToken::load(&auth_token_file)
            .map_err(|e| invalid("auth_token_file", e.to_string()))?;
        let tls = match &raw.tls {
            None => None,
            Some(t) => {
                let (cert, key, ca) = (
                    base.join(&t.cert_file),
                    base.join(&t.key_file),
                    base.join(&t.ca_file),
                );
                let tls = ManagerTls {
                    server: raftmha_node::tls::ServerTls {
                        cert_file: cert.clone(),
                        key_file: key.clone(),
                        client_ca_file: t.require_client_cert.then(|| ca.clone()),
                    },
                    client: raftmha_node::tls::ClientTls {
                        ca_file: ca,
                        cert_file: Some(cert),
                        key_file: Some(key),
                        domain: None,
                    },
                };
                // Read the files now: a bad path fails at start with the key named.
                tls.server
                    .load()
                    .map_err(|e| invalid("tls", e.to_string()))?;
                tls.client
                    .load()
                    .map_err(|e| invalid("tls", e.to_string()))?;
                Some(tls)
            }
        };
        Ok(ManagerConfig {
            tls,
            node_id: raw.node_id,
            listen,
            data_dir,
            auth_token_file,
            token,
            auto_init: raw.auto_init,
            initial_voters: voters,
            timing: Timing {
                heartbeat_ms: t.heartbeat_ms,
                election_timeout_min_ms: t.election_timeout_min_ms,
                election_timeout_max_ms: t.election_timeout_max_ms,
                snapshot_every_logs: raw.raft.snapshot_every_logs,
            },
        })
    }

    /// The address peers use to reach this manager.
    pub fn advertised_addr(&self) -> String {
        self.initial_voters
            .iter()
            .find(|(id, _)| *id == self.node_id)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| self.listen.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("token"), "t0ken\n").expect("token");
        let text = r#"
node_id = 1
listen = "127.0.50.1:7100"
data_dir = "data/m1"
auth_token_file = "token"
[[initial_voters]]
id = 1
addr = "127.0.50.1:7100"
[[initial_voters]]
id = 2
addr = "127.0.50.2:7100"
[timing]
heartbeat_ms = 50
election_timeout_min_ms = 250
election_timeout_max_ms = 400
"#
        .to_string();
        (dir, text)
    }

    fn key_of(text: &str, dir: &Path) -> String {
        match ManagerConfig::parse(text, dir) {
            Err(ConfigError::Invalid { key, .. }) => key,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn a_good_config_resolves_paths_against_its_directory() {
        let (dir, text) = base();
        let cfg = ManagerConfig::parse(&text, dir.path()).expect("valid");
        assert_eq!(cfg.data_dir, dir.path().join("data/m1"));
        assert_eq!(cfg.initial_voters.len(), 2);
        assert_eq!(cfg.advertised_addr(), "127.0.50.1:7100");
    }

    #[test]
    fn duplicate_voter_ids_name_the_key() {
        let (dir, text) = base();
        let text = text.replace("id = 2", "id = 1");
        assert_eq!(key_of(&text, dir.path()), "initial_voters[1].id");
    }

    #[test]
    fn a_bad_address_names_the_key() {
        let (dir, text) = base();
        let text = text.replace("addr = \"127.0.50.2:7100\"", "addr = \"nowhere:x\"");
        assert_eq!(key_of(&text, dir.path()), "initial_voters[1].addr");
        let (dir, text) = base();
        let text = text.replace("listen = \"127.0.50.1:7100\"", "listen = \"localhost\"");
        assert_eq!(key_of(&text, dir.path()), "listen");
    }

    #[test]
    fn an_election_timeout_below_the_heartbeat_names_the_key() {
        let (dir, text) = base();
        let text = text.replace(
            "election_timeout_min_ms = 250",
            "election_timeout_min_ms = 40",
        );
        assert_eq!(key_of(&text, dir.path()), "timing.election_timeout_min_ms");
    }

    #[test]
    fn an_unreadable_token_file_names_the_key() {
        let (dir, text) = base();
        let text = text.replace(
            "auth_token_file = \"token\"",
            "auth_token_file = \"missing\"",
        );
        assert_eq!(key_of(&text, dir.path()), "auth_token_file");
    }

    #[test]
    fn an_unknown_key_is_a_one_line_error() {
        let (dir, text) = base();
        let err = ManagerConfig::parse(&format!("bogus = 1\n{text}"), dir.path())
            .expect_err("unknown key");
        let msg = err.to_string();
        assert!(msg.contains("bogus") && !msg.contains('\n'), "{msg}");
    }
}
