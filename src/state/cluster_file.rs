//! The managed-cluster file (`raftmha cluster add --file app1.toml`): MHA's `app1.cnf`
//! in TOML, validated with one clear error per rule, naming the key.
//!
//! Passwords never enter the replicated state: the spec stores where to find them
//! (`*_password_file` or `*_password_env`), and each manager resolves them locally.
use std::collections::BTreeSet;
use std::net::SocketAddr;

use serde::{Deserialize, Serialize};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ClusterFileError {
    #[error("cluster file: {0}")]
    Parse(String),
    #[error("cluster file: `{key}`: {rule}")]
    Invalid { key: String, rule: String },
}

fn invalid(key: impl Into<String>, rule: impl Into<String>) -> ClusterFileError {
    ClusterFileError::Invalid {
        key: key.into(),
        rule: rule.into(),
    }
}

/// One registered managed cluster, as replicated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterSpec {
    pub name: String,
    pub users: Users,
    #[serde(default)]
    pub settings: Settings,
    #[serde(rename = "server")]
    pub servers: Vec<ServerSpec>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Users {
    pub admin_user: String,
    #[serde(default)]
    pub admin_password_file: Option<String>,
    #[serde(default)]
    pub admin_password_env: Option<String>,
    pub repl_user: String,
    #[serde(default)]
    pub repl_password_file: Option<String>,
    #[serde(default)]
    pub repl_password_env: Option<String>,
    /// The node agents' shared token, read by each manager (never replicated itself).
    #[serde(default)]
    pub agent_token_file: Option<String>,
    #[serde(default)]
    pub agent_token_env: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum PingType {
    #[default]
    Select,
    Connect,
    Insert,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Settings {
    pub ping_type: PingType,
    pub ping_interval_ms: u64,
    /// Consecutive failed checks before a manager calls a master dead.
    pub ping_failures: u32,
    /// MHA's anti-flapping window: no second automatic failover within this many minutes.
    pub last_failover_minute: u64,
    /// Reachable replicas must confirm they no longer receive from the master
    /// (orchestrator's DeadMaster). Turn off only where replicas cannot see the master.
    pub replica_confirmation: bool,
    /// MHA's own rule: a replica that is dead or broken at failover time aborts the failover
    /// unless its server has `ignore_fail = true`. Off by default: such replicas are left
    /// behind and reported lost (MHA issue #85: one dead replica blocked every failover).
    pub strict_replicas: bool,
    pub master_ip_failover_script: Option<String>,
    /// MHA's `master_ip_online_change_script`, for the online switchover.
    pub master_ip_online_change_script: Option<String>,
    pub shutdown_script: Option<String>,
    pub report_script: Option<String>,
    /// The master's lease (ms): every manager that sees the master alive renews it on the
    /// master host's agent, which fences its mysqld (read_only, or SIGKILL when allowed) once
    /// fewer than a majority renewed within this TTL. A master cut off from the managers stops
    /// taking writes after it, and a leader that cannot reach the old master waits it out
    /// before promoting. 0 disables self-fencing (a partitioned old master may then take
    /// writes that are lost, as with MHA).
    pub lease_ttl_ms: u64,
    /// `MASTER_HEARTBEAT_PERIOD` (ms) the leader keeps on every replica of the master: a
    /// replica whose stream (events and heartbeats) stood still for three periods (at least
    /// 500 ms) confirms a silent master within a second, where its IO thread would wait
    /// `slave_net_timeout` (60 s by default) for a frozen or cut-off host. 0 leaves the
    /// replicas' own setting.
    pub heartbeat_period_ms: u64,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            ping_type: PingType::Select,
            ping_interval_ms: 250,
            ping_failures: 3,
            last_failover_minute: 480,
            replica_confirmation: true,
            strict_replicas: false,
            master_ip_failover_script: None,
            master_ip_online_change_script: None,
            shutdown_script: None,
            report_script: None,
            lease_ttl_ms: 2000,
            heartbeat_period_ms: 250,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerSpec {
    pub name: String,
    pub host: String,
    #[serde(default = "default_port")]
    pub port: u16,
    /// `host:port` of the `raftmha-node` agent on this database host.
    #[serde(default)]
    pub agent: Option<String>,
    #[serde(default)]
    pub candidate_master: bool,
    #[serde(default)]
    pub no_master: bool,
    /// May be dead or broken at failover time even with `settings.strict_replicas`.
    #[serde(default)]
    pub ignore_fail: bool,
    /// Lower wins among equal candidates.
    #[serde(default = "default_priority")]
    pub priority: u32,
}

fn default_port() -> u16 {
    3306
}
fn default_priority() -> u32 {
    100
}

impl ClusterSpec {
    /// Parses and validates a cluster file's text.
    pub fn parse(text: &str) -> Result<ClusterSpec, ClusterFileError> {
        let spec: ClusterSpec =
            toml::from_str(text).map_err(|e| ClusterFileError::Parse(one_line(&e.to_string())))?;
        spec.validate()?;
        Ok(spec)
    }

    pub fn validate(&self) -> Result<(), ClusterFileError> {
        if !valid_name(&self.name) {
            return Err(invalid(
                "name",
                "must be 1-64 characters of letters, digits, '-', '_' or '.'",
            ));
        }
        self.users.validate()?;
        let s = &self.settings;
        if s.ping_interval_ms < 50 || s.ping_interval_ms > 60_000 {
            return Err(invalid(
                "settings.ping_interval_ms",
                "must be between 50 and 60000",
            ));
        }
        if s.lease_ttl_ms != 0
            && (s.lease_ttl_ms < 500
                || s.lease_ttl_ms < 2 * s.ping_interval_ms
                || s.lease_ttl_ms > 600_000)
        {
            return Err(invalid(
                "settings.lease_ttl_ms",
                "must be 0 (off) or between 500 and 600000 and at least twice ping_interval_ms",
            ));
        }
        if s.heartbeat_period_ms != 0 && !(50..=30_000).contains(&s.heartbeat_period_ms) {
            return Err(invalid(
                "settings.heartbeat_period_ms",
                "must be 0 (leave the replicas' own) or between 50 and 30000",
            ));
        }
        if s.ping_failures == 0 {
            return Err(invalid("settings.ping_failures", "must be at least 1"));
        }
        for (key, script) in [
            (
                "settings.master_ip_failover_script",
                &s.master_ip_failover_script,
            ),
            (
                "settings.master_ip_online_change_script",
                &s.master_ip_online_change_script,
            ),
            ("settings.shutdown_script", &s.shutdown_script),
            ("settings.report_script", &s.report_script),
        ] {
            if let Some(path) = script
                && !path.starts_with('/')
            {
                return Err(invalid(key, "must be an absolute path"));
            }
        }
        if self.servers.is_empty() {
            return Err(invalid("server", "at least one [[server]] is required"));
        }
        // Without the token the managers cannot call any agent, silently: no binlog tail, no
        // relay-log diff, no master lease. Naming agents without it is a mistake.
        if let Some(s) = self.servers.iter().find(|s| s.agent.is_some())
            && self.users.agent_token_file.is_none()
            && self.users.agent_token_env.is_none()
        {
            return Err(invalid(
                "users.agent_token_file",
                format!(
                    "server {} names an agent, so one of users.agent_token_file or users.agent_token_env is required (the managers authenticate to the agents with it)",
                    s.name
                ),
            ));
        }
        let mut names = BTreeSet::new();
        let mut endpoints = BTreeSet::new();
        for (i, server) in self.servers.iter().enumerate() {
            let key = |field: &str| format!("server[{i}].{field}");
            if !valid_name(&server.name) {
                return Err(invalid(
                    key("name"),
                    "must be 1-64 characters of letters, digits, '-', '_' or '.'",
                ));
            }
            if !names.insert(server.name.clone()) {
                return Err(invalid(
                    key("name"),
                    format!("duplicate server name {:?}", server.name),
                ));
            }
            if server.host.is_empty() || server.host.contains(char::is_whitespace) {
                return Err(invalid(key("host"), "must be a host name or IP address"));
            }
            if server.port == 0 {
                return Err(invalid(key("port"), "must be between 1 and 65535"));
            }
            if !endpoints.insert((server.host.clone(), server.port)) {
                return Err(invalid(
                    key("host"),
                    format!("{}:{} is listed twice", server.host, server.port),
                ));
            }
            if let Some(agent) = &server.agent
                && agent.parse::<SocketAddr>().is_err()
            {
                return Err(invalid(key("agent"), "must be an IP:port address"));
            }
            if server.candidate_master && server.no_master {
                return Err(invalid(
                    key("no_master"),
                    "a server cannot be both candidate_master and no_master",
                ));
            }
        }
        if self.servers.iter().all(|s| s.no_master) {
            return Err(invalid(
                "server",
                "every server has no_master = true: nothing could ever be promoted",
            ));
        }
        Ok(())
    }
}

impl Users {
    fn validate(&self) -> Result<(), ClusterFileError> {
        for (key, user) in [
            ("users.admin_user", &self.admin_user),
            ("users.repl_user", &self.repl_user),
        ] {
            if user.is_empty() {
                return Err(invalid(key, "must not be empty"));
            }
        }
        for (prefix, file, env) in [
            (
                "users.admin_password",
                &self.admin_password_file,
                &self.admin_password_env,
            ),
            (
                "users.repl_password",
                &self.repl_password_file,
                &self.repl_password_env,
            ),
        ] {
            match (file, env) {
                (Some(_), Some(_)) => {
                    return Err(invalid(
                        format!("{prefix}_file"),
                        format!("set either {prefix}_file or {prefix}_env, not both"),
                    ));
                }
                (None, None) => {
                    return Err(invalid(
                        format!("{prefix}_file"),
                        format!(
                            "one of {prefix}_file or {prefix}_env is required (passwords never go in this file)"
                        ),
                    ));
                }
                (Some(path), None) if !path.starts_with('/') => {
                    return Err(invalid(
                        format!("{prefix}_file"),
                        "must be an absolute path",
                    ));
                }
                (None, Some(var)) if var.is_empty() => {
                    return Err(invalid(format!("{prefix}_env"), "must not be empty"));
                }
                _ => {}
            }
        }
        Ok(())
    }
}

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// TOML errors span several lines with a caret diagram; operators want one line.
pub(crate) fn one_line(message: &str) -> String {
    message
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('|') && !l.chars().all(|c| c == '^'))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A cluster file for unit tests: `app1` with placeholder accounts (passwords from unset
/// environment variables) and `servers`, TOML `[[server]]` blocks.
#[cfg(test)]
pub(crate) fn test_spec(servers: &str) -> ClusterSpec {
    let head = "name = \"app1\"\n[users]\nadmin_user = \"a\"\nadmin_password_env = \"A\"\n\
                repl_user = \"r\"\nrepl_password_env = \"R\"\n";
    ClusterSpec::parse(&format!("{head}{servers}")).expect("test spec")
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
name = "app1"
[users]
admin_user = "raftmha"
admin_password_file = "/etc/raftmha/app1.admin"
repl_user = "repl"
repl_password_env = "APP1_REPL_PASSWORD"
agent_token_file = "/etc/raftmha/agent.token"
[settings]
ping_interval_ms = 500
[[server]]
name = "db1"
host = "127.0.31.10"
agent = "127.0.31.10:7600"
candidate_master = true
[[server]]
name = "db2"
host = "127.0.31.11"
[[server]]
name = "db3"
host = "127.0.31.12"
no_master = true
"#;

    fn key_of(text: &str) -> String {
        match ClusterSpec::parse(text) {
            Err(ClusterFileError::Invalid { key, .. }) => key,
            other => panic!("expected a validation error, got {other:?}"),
        }
    }

    #[test]
    fn the_example_file_parses() {
        let spec = ClusterSpec::parse(GOOD).expect("valid");
        assert_eq!(spec.servers.len(), 3);
        assert_eq!(spec.servers[1].port, 3306);
        assert_eq!(spec.settings.ping_interval_ms, 500);
    }

    #[test]
    fn the_lease_defaults_to_two_seconds_and_zero_turns_it_off() {
        let spec = ClusterSpec::parse(GOOD).expect("valid");
        assert_eq!(
            spec.settings.lease_ttl_ms, 2000,
            "files without the key parse"
        );
        let off = GOOD.replace("[settings]", "[settings]\nlease_ttl_ms = 0");
        assert_eq!(
            ClusterSpec::parse(&off)
                .expect("valid")
                .settings
                .lease_ttl_ms,
            0
        );
        // A lease shorter than two checks would expire between renewals of a healthy master.
        let short = GOOD.replace("[settings]", "[settings]\nlease_ttl_ms = 900");
        assert_eq!(key_of(&short), "settings.lease_ttl_ms");
        let tiny = GOOD.replace("[settings]", "[settings]\nlease_ttl_ms = 100");
        assert_eq!(key_of(&tiny), "settings.lease_ttl_ms");
    }

    #[test]
    fn duplicate_server_names_are_rejected_naming_the_key() {
        let text = GOOD.replace(r#"name = "db2""#, r#"name = "db1""#);
        assert_eq!(key_of(&text), "server[1].name");
    }

    #[test]
    fn a_password_in_the_file_is_refused() {
        let text = GOOD.replace(
            r#"admin_password_file = "/etc/raftmha/app1.admin""#,
            r#"admin_password = "secret""#,
        );
        let err = ClusterSpec::parse(&text).expect_err("unknown key");
        assert!(err.to_string().contains("admin_password"), "{err}");
    }

    #[test]
    fn candidate_and_no_master_together_are_rejected() {
        let text = GOOD.replace(
            "no_master = true",
            "no_master = true\ncandidate_master = true",
        );
        assert_eq!(key_of(&text), "server[2].no_master");
    }

    #[test]
    fn agents_without_a_token_are_rejected() {
        let text = GOOD.replace("agent_token_file = \"/etc/raftmha/agent.token\"\n", "");
        assert_eq!(key_of(&text), "users.agent_token_file");
        let env = GOOD.replace(
            "agent_token_file = \"/etc/raftmha/agent.token\"",
            "agent_token_env = \"RAFTMHA_AGENT_TOKEN\"",
        );
        ClusterSpec::parse(&env).expect("a token from the environment is enough");
    }

    #[test]
    fn a_bad_agent_address_is_rejected() {
        let text = GOOD.replace("127.0.31.10:7600", "nowhere");
        assert_eq!(key_of(&text), "server[0].agent");
    }

    #[test]
    fn strict_replicas_and_ignore_fail_default_off_and_parse() {
        let spec = ClusterSpec::parse(GOOD).expect("valid");
        assert!(!spec.settings.strict_replicas);
        assert!(spec.servers.iter().all(|s| !s.ignore_fail));
        let text = GOOD
            .replace(
                "ping_interval_ms = 500",
                "ping_interval_ms = 500\nstrict_replicas = true",
            )
            .replace("no_master = true", "no_master = true\nignore_fail = true");
        let spec = ClusterSpec::parse(&text).expect("valid");
        assert!(spec.settings.strict_replicas);
        assert!(spec.servers[2].ignore_fail);
        let bad = GOOD.replace("ping_interval_ms = 500", "strict_replicas = \"yes\"");
        assert!(matches!(
            ClusterSpec::parse(&bad),
            Err(ClusterFileError::Parse(m)) if m.contains("strict_replicas")
        ));
    }

    #[test]
    fn relative_scripts_are_rejected() {
        let text = GOOD.replace("ping_interval_ms = 500", "report_script = \"report.sh\"");
        assert_eq!(key_of(&text), "settings.report_script");
    }
}
