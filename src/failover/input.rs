//! What the planner observes: the dead master, every configured replica as probed after
//! the IO threads were stopped, and the cluster's failover policy (MHA's parameters).
use std::fmt;

use serde::{Deserialize, Serialize};

use crate::db::{BinlogCoord, GtidSet, GtidState, ReplicaStatus, ServerVariables, ServerVersion};

/// A server as the report names it: MHA prints `hostname(ip:port)`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ServerRef {
    pub name: String,
    /// The address replicas name in `CHANGE MASTER` (compared with their `Master_Host`).
    pub host: String,
    pub port: u16,
}

impl ServerRef {
    pub fn new(name: impl Into<String>, host: impl Into<String>, port: u16) -> Self {
        ServerRef {
            name: name.into(),
            host: host.into(),
            port,
        }
    }
}

impl fmt::Display for ServerRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}({}:{})", self.name, self.host, self.port)
    }
}

/// Per-server settings (MHA's `[serverN]` block).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerPolicy {
    /// Preferred new master.
    pub candidate_master: bool,
    /// Never promote (DR or backup hosts).
    pub no_master: bool,
    /// May be dead or broken at failover time even in strict mode.
    pub ignore_fail: bool,
}

/// Cluster-wide failover settings.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverPolicy {
    /// Prefer replicas that received the newest events (MHA `latest_priority`, default on).
    pub latest_priority: bool,
    /// Refuse replicas whose SQL thread is too far behind (MHA `check_repl_delay`).
    pub check_repl_delay: bool,
    /// "Too far": more than this many bytes of relay log still to execute (MHA: 100 MB).
    pub max_exec_gap_bytes: u64,
    /// A dead or broken replica aborts the failover unless it is `ignore_fail` (MHA's
    /// behaviour, issue #85). Off by default: such replicas are reported as lost.
    pub strict_replicas: bool,
    /// Refuse candidates holding transactions nobody else has (errant GTIDs).
    pub errant_gtid_veto: bool,
    /// MHA `--new_master_host`: this server or nothing.
    pub forced_new_master: Option<String>,
    /// Save the dead master's binlog tail through its host's agent when the host is up
    /// (MHA `--skip_save_master_binlog` turns it off).
    pub save_master_binlog: bool,
    /// Skip `RESET SLAVE ALL` on the new master (MHA `skip_reset_slave`).
    pub skip_reset_slave: bool,
    /// Which hooks are configured, so the plan only journals steps that will run.
    pub master_ip_failover_script: bool,
    pub shutdown_script: bool,
    pub report_script: bool,
}

impl Default for FailoverPolicy {
    fn default() -> Self {
        FailoverPolicy {
            latest_priority: true,
            check_repl_delay: true,
            max_exec_gap_bytes: 100_000_000,
            strict_replicas: false,
            errant_gtid_veto: true,
            forced_new_master: None,
            save_master_binlog: true,
            skip_reset_slave: false,
            master_ip_failover_script: false,
            shutdown_script: false,
            report_script: false,
        }
    }
}

impl FailoverPolicy {
    /// The policy a registered cluster's file asks for; MHA's defaults for everything the
    /// file does not set.
    pub fn for_cluster(settings: &crate::state::cluster_file::Settings) -> Self {
        FailoverPolicy {
            strict_replicas: settings.strict_replicas,
            master_ip_failover_script: settings.master_ip_failover_script.is_some(),
            shutdown_script: settings.shutdown_script.is_some(),
            report_script: settings.report_script.is_some(),
            ..FailoverPolicy::default()
        }
    }
}

impl From<&crate::state::cluster_file::ServerSpec> for ServerPolicy {
    fn from(s: &crate::state::cluster_file::ServerSpec) -> Self {
        ServerPolicy {
            candidate_master: s.candidate_master,
            no_master: s.no_master,
            ignore_fail: s.ignore_fail,
        }
    }
}

/// The master being failed over.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadMaster {
    pub server: ServerRef,
    pub server_id: Option<u32>,
    /// MySQL `server_uuid`, to tell its GTIDs from errant ones.
    pub server_uuid: Option<String>,
    /// Its host's agent answers, so its binlog tail can be saved.
    pub host_reachable: bool,
}

/// What probing a replica found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaState {
    Unreachable { reason: String },
    Reachable(Box<ReplicaFacts>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaFacts {
    pub version: ServerVersion,
    pub variables: ServerVariables,
    /// `None`: the server is not a replica at all.
    pub status: Option<ReplicaStatus>,
    pub gtid: Option<GtidState>,
}

/// One configured replica of the dead master, in configuration order (the tie-breaker).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaSnapshot {
    pub server: ServerRef,
    pub policy: ServerPolicy,
    pub state: ReplicaState,
}

/// Everything the planner reads.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverInput {
    pub cluster: String,
    pub dead_master: DeadMaster,
    pub replicas: Vec<ReplicaSnapshot>,
    pub policy: FailoverPolicy,
}

/// A reachable, healthy replica of the dead master, with what the planner derives from it.
#[derive(Debug, Clone)]
pub(crate) struct Survivor<'a> {
    pub server: &'a ServerRef,
    pub policy: ServerPolicy,
    pub facts: &'a ReplicaFacts,
    pub status: &'a ReplicaStatus,
    /// GTIDs received (executed ∪ retrieved/IO position), in GTID mode.
    pub received: Option<GtidSet>,
}

impl Survivor<'_> {
    pub fn read(&self) -> &BinlogCoord {
        &self.status.read
    }

    pub fn name(&self) -> &str {
        &self.server.name
    }
}

/// The new master an operator forced (`raftmha failover --new-master`).
pub fn forced_new_master(f: &crate::state::FailoverRecord) -> Option<String> {
    match &f.operation {
        Some(crate::state::Operation::ManualFailover { new_master, .. }) => new_master.clone(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::cluster_file::ClusterSpec;

    #[test]
    fn the_cluster_file_policy_reaches_the_planner() {
        let text = r#"
name = "app1"
[users]
admin_user = "raftmha"
admin_password_file = "/etc/raftmha/app1.admin"
repl_user = "repl"
repl_password_file = "/etc/raftmha/app1.repl"
[settings]
strict_replicas = true
report_script = "/usr/local/bin/report"
[[server]]
name = "db1"
host = "127.0.31.10"
[[server]]
name = "db2"
host = "127.0.31.11"
candidate_master = true
[[server]]
name = "db3"
host = "127.0.31.12"
no_master = true
ignore_fail = true
"#;
        let spec = ClusterSpec::parse(text).expect("valid");
        let p = FailoverPolicy::for_cluster(&spec.settings);
        assert!(p.strict_replicas && p.report_script);
        assert!(!p.master_ip_failover_script && !p.shutdown_script);
        assert!(
            p.latest_priority,
            "MHA's defaults for what the file does not set"
        );
        let db2 = ServerPolicy::from(&spec.servers[1]);
        let db3 = ServerPolicy::from(&spec.servers[2]);
        assert!(db2.candidate_master && !db2.ignore_fail);
        assert!(db3.no_master && db3.ignore_fail);
        let default = FailoverPolicy::for_cluster(&Default::default());
        assert!(
            !default.strict_replicas,
            "lost replicas are reported, not blocking"
        );
    }
}
