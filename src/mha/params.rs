//! Every MHA 0.58 configuration parameter (research notes mha.md §2), its scope and its fate
//! in raftmha. The README's migration table is this table in prose; keep them in step.

/// Where MHA reads a parameter from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only from the `[serverN]` block itself.
    Local,
    /// Server block, else app `[server default]`, else global `[server default]`.
    Inherited,
}

/// What the importer does with a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fate {
    /// Written into the cluster file at this key.
    Mapped(&'static str),
    /// No equivalent: the importer warns with this reason and drops the value.
    Dropped(&'static str),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Param {
    pub name: &'static str,
    pub scope: Scope,
    pub fate: Fate,
}

const fn p(name: &'static str, scope: Scope, fate: Fate) -> Param {
    Param { name, scope, fate }
}

use Fate::{Dropped, Mapped};
use Scope::{Inherited, Local};

const NO_SSH: &str = "raftmha uses no ssh: managers talk to the raftmha-node agent over authenticated gRPC (set `agent` per server, see --agent-port)";

pub const PARAMS: &[Param] = &[
    p("hostname", Local, Mapped("server.host")),
    p("ip", Local, Mapped("server.host")),
    p("port", Inherited, Mapped("server.port")),
    p("candidate_master", Local, Mapped("server.candidate_master")),
    p("no_master", Local, Mapped("server.no_master")),
    p("ignore_fail", Local, Mapped("server.ignore_fail")),
    p("user", Inherited, Mapped("users.admin_user")),
    p("password", Inherited, Mapped("users.admin_password_file")),
    p("repl_user", Inherited, Mapped("users.repl_user")),
    p(
        "repl_password",
        Inherited,
        Mapped("users.repl_password_file"),
    ),
    p(
        "ping_interval",
        Inherited,
        Mapped("settings.ping_interval_ms"),
    ),
    p("ping_type", Inherited, Mapped("settings.ping_type")),
    p(
        "master_ip_failover_script",
        Inherited,
        Mapped("settings.master_ip_failover_script"),
    ),
    p(
        "master_ip_online_change_script",
        Inherited,
        Mapped("settings.master_ip_online_change_script"),
    ),
    p(
        "shutdown_script",
        Inherited,
        Mapped("settings.shutdown_script"),
    ),
    p("report_script", Inherited, Mapped("settings.report_script")),
    p("ssh_host", Local, Dropped(NO_SSH)),
    p("ssh_ip", Local, Dropped(NO_SSH)),
    p("ssh_port", Inherited, Dropped(NO_SSH)),
    p("ssh_user", Inherited, Dropped(NO_SSH)),
    p("ssh_connection_timeout", Inherited, Dropped(NO_SSH)),
    p("ssh_options", Inherited, Dropped(NO_SSH)),
    p("skip_init_ssh_check", Local, Dropped(NO_SSH)),
    p(
        "node_label",
        Local,
        Dropped("the server's block id becomes its `name`, used in every log line"),
    ),
    p(
        "skip_reset_slave",
        Inherited,
        Dropped(
            "the failover engine always runs RESET SLAVE ALL on the new master (not configurable yet)",
        ),
    ),
    p(
        "master_binlog_dir",
        Inherited,
        Dropped(
            "binlog directories belong to each host's agent: set `binlog_dir` in its node.toml",
        ),
    ),
    p(
        "remote_workdir",
        Inherited,
        Dropped("scratch space belongs to each host's agent: set `workdir` in its node.toml"),
    ),
    p(
        "manager_workdir",
        Inherited,
        Dropped("managers keep their state in `data_dir` of manager.toml (Raft-replicated)"),
    ),
    p(
        "manager_log",
        Inherited,
        Dropped("managers log to stderr (journald under systemd); RUST_LOG sets the level"),
    ),
    p(
        "log_level",
        Inherited,
        Dropped("set RUST_LOG on the manager (e.g. RUST_LOG=raftmha=debug)"),
    ),
    p(
        "disable_log_bin",
        Inherited,
        Dropped(
            "the agents apply binlog events themselves; sql_log_bin handling is fixed by the engine",
        ),
    ),
    p(
        "handle_raw_binlog",
        Inherited,
        Dropped("raftmha always ships raw binlog events (MHA's default, handle_raw_binlog=1)"),
    ),
    p(
        "master_pid_file",
        Inherited,
        Dropped(
            "fencing goes through the agent's StopMysqld (allow_stop_mysqld in node.toml) or shutdown_script",
        ),
    ),
    p(
        "check_repl_delay",
        Inherited,
        Dropped(
            "candidate selection is done by the failover planner; a lag limit is not configurable yet",
        ),
    ),
    p(
        "check_repl_filter",
        Inherited,
        Dropped("`raftmha check-repl` always compares replication filters"),
    ),
    p(
        "latest_priority",
        Inherited,
        Dropped(
            "the planner prefers the most advanced replica, then `priority` (MHA's latest_priority=1)",
        ),
    ),
    p(
        "multi_tier_slave",
        Inherited,
        Dropped("multi-tier topologies are not managed; replicas of replicas are left alone"),
    ),
    p(
        "secondary_check_script",
        Inherited,
        Dropped("replaced by the Raft quorum: a majority of managers must see the master dead"),
    ),
    p(
        "init_conf_load_script",
        Inherited,
        Dropped(
            "the cluster definition is replicated; change it with `raftmha cluster add --file`",
        ),
    ),
    p(
        "client_bindir",
        Inherited,
        Dropped("raftmha runs no mysql/mysqlbinlog client binaries"),
    ),
    p(
        "client_libdir",
        Inherited,
        Dropped("raftmha runs no mysql/mysqlbinlog client binaries"),
    ),
    p(
        "use_gtid_auto_pos",
        Inherited,
        Dropped("the engine picks GTID positioning by itself when every server has GTIDs"),
    ),
];

pub fn lookup(name: &str) -> Option<&'static Param> {
    PARAMS.iter().find(|p| p.name == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique() {
        let mut names: Vec<_> = PARAMS.iter().map(|p| p.name).collect();
        names.sort_unstable();
        let before = names.len();
        names.dedup();
        assert_eq!(before, names.len());
    }

    #[test]
    fn the_readme_table_names_every_parameter() {
        let readme = include_str!("../../README.md");
        for p in PARAMS {
            assert!(
                readme.contains(&format!("| `{}` |", p.name)),
                "README migration table lacks `{}`",
                p.name
            );
        }
    }
}
