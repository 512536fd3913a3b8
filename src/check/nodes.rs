//! `raftmha check-nodes`' checks (MHA's `masterha_check_ssh`, for agents): plain logic over
//! each agent's Health answer, or the reason there is none.
use raftmha_node::proto::HealthReply;

use super::{Finding, Level};

/// What asking one server's agent produced.
#[derive(Debug, Clone)]
pub enum AgentAnswer {
    /// The cluster file names no agent for this server.
    NotConfigured,
    /// Nothing answered at the address.
    Unreachable(String),
    /// The agent answered but refused our token.
    Unauthenticated(String),
    Healthy(HealthReply),
}

/// `servers`: (server name, answer). `our_version`: this binary's version.
pub fn check_nodes(servers: &[(String, AgentAnswer)], our_version: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut add = |check: &'static str, server: &str, level: Level, detail: String| {
        out.push(Finding {
            check,
            server: Some(server.to_string()),
            level,
            detail,
        })
    };
    let mut mysql_versions = std::collections::BTreeMap::new();
    for (name, answer) in servers {
        let h = match answer {
            AgentAnswer::NotConfigured => {
                add("agent", name, Level::Warn, "no `agent` in the cluster file: failover cannot save or apply binlogs on this host".into());
                continue;
            }
            AgentAnswer::Unreachable(e) => {
                add("agent reachable", name, Level::Fail, e.clone());
                continue;
            }
            AgentAnswer::Unauthenticated(e) => {
                add("agent reachable", name, Level::Ok, "answers".into());
                add("agent authenticated", name, Level::Fail, e.clone());
                continue;
            }
            AgentAnswer::Healthy(h) => h,
        };
        add(
            "agent reachable",
            name,
            Level::Ok,
            format!("{} answers", h.hostname),
        );
        add(
            "agent authenticated",
            name,
            Level::Ok,
            "token accepted".into(),
        );
        for (what, ok) in [
            ("binlog dir", h.binlog_dir_readable),
            ("relay dir", h.relay_dir_readable),
        ] {
            if ok {
                add("directories", name, Level::Ok, format!("{what} readable"));
            } else {
                add(
                    "directories",
                    name,
                    Level::Fail,
                    format!("{what} not readable by the agent"),
                );
            }
        }
        if major_minor(&h.agent_version) == major_minor(our_version) {
            add("agent version", name, Level::Ok, h.agent_version.clone());
        } else {
            add(
                "agent version",
                name,
                Level::Warn,
                format!(
                    "agent {} vs raftmha {our_version}: upgrade both together",
                    h.agent_version
                ),
            );
        }
        if h.mysqld_running {
            add(
                "mysqld",
                name,
                Level::Ok,
                format!("running (pid {})", h.mysqld_pid),
            );
        } else {
            add(
                "mysqld",
                name,
                Level::Warn,
                format!("not running ({})", h.mysqld_state),
            );
        }
        match h.fence.as_ref().filter(|f| f.fenced) {
            Some(f) => add(
                "fence",
                name,
                Level::Warn,
                format!(
                    "FENCED at epoch {} ({}, {}): takes no writes until the leader unfences it \
                     (a master lifts it once a majority of managers renews its lease)",
                    f.epoch, f.how, f.reason
                ),
            ),
            None => add("fence", name, Level::Ok, "not fenced".into()),
        }
        if !h.server_version.is_empty() {
            mysql_versions.insert(name.clone(), h.server_version.clone());
        }
    }
    let families: std::collections::BTreeSet<String> =
        mysql_versions.values().map(|v| major_minor(v)).collect();
    if families.len() > 1 {
        let per: Vec<String> = mysql_versions
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect();
        out.push(Finding {
            check: "server versions",
            server: None,
            level: Level::Warn,
            detail: format!("mixed major versions in the binlogs: {}", per.join(", ")),
        });
    }
    out
}

/// `10.11.6-MariaDB-log` → `10.11`.
fn major_minor(v: &str) -> String {
    v.split(['.', '-']).take(2).collect::<Vec<_>>().join(".")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn healthy() -> HealthReply {
        HealthReply {
            agent_version: "0.1.0".into(),
            hostname: "db1".into(),
            mysqld_running: true,
            mysqld_pid: 42,
            mysqld_state: "S".into(),
            binlog_dir_readable: true,
            relay_dir_readable: true,
            server_version: "10.11.6-MariaDB-log".into(),
            newest_binlog: "binlog.000002".into(),
            fence: None,
        }
    }

    #[test]
    fn a_fenced_agent_is_a_warning_naming_how_and_why() {
        let mut h = healthy();
        let answers = [("db1".to_string(), AgentAnswer::Healthy(h.clone()))];
        assert_eq!(worst(&check_nodes(&answers, "0.1.0"), "fence"), Level::Ok);
        h.fence = Some(raftmha_node::proto::FenceState {
            fenced: true,
            cluster: "app1".into(),
            epoch: 3,
            how: "read_only".into(),
            reason: "lease_expired".into(),
            at_unix_ms: 1,
        });
        let answers = [("db1".to_string(), AgentAnswer::Healthy(h))];
        let f = check_nodes(&answers, "0.1.0");
        assert_eq!(worst(&f, "fence"), Level::Warn);
        let line = f.iter().find(|x| x.check == "fence").expect("a fence line");
        assert!(line.detail.contains("lease_expired"), "{}", line.detail);
    }

    fn worst(f: &[Finding], check: &str) -> Level {
        f.iter()
            .filter(|x| x.check == check)
            .map(|x| x.level)
            .max()
            .expect(check)
    }

    #[test]
    fn healthy_agents_are_ok_and_problems_are_reported() {
        let ok = check_nodes(&[("db1".into(), AgentAnswer::Healthy(healthy()))], "0.1.3");
        assert!(ok.iter().all(|f| f.level == Level::Ok), "{ok:#?}");

        let mut unreadable = healthy();
        unreadable.binlog_dir_readable = false;
        let mut old = healthy();
        old.agent_version = "0.2.0".into();
        old.server_version = "10.6.1-MariaDB".into();
        let f = check_nodes(
            &[
                ("db1".into(), AgentAnswer::Healthy(unreadable)),
                ("db2".into(), AgentAnswer::Healthy(old)),
                ("db3".into(), AgentAnswer::Unreachable("refused".into())),
                (
                    "db4".into(),
                    AgentAnswer::Unauthenticated("bad token".into()),
                ),
                ("db5".into(), AgentAnswer::NotConfigured),
            ],
            "0.1.0",
        );
        assert_eq!(worst(&f, "directories"), Level::Fail);
        assert_eq!(worst(&f, "agent version"), Level::Warn);
        assert_eq!(worst(&f, "server versions"), Level::Warn);
        assert_eq!(worst(&f, "agent reachable"), Level::Fail);
        assert_eq!(worst(&f, "agent authenticated"), Level::Fail);
        assert_eq!(worst(&f, "agent"), Level::Warn);
    }
}
