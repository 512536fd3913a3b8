//! `raftmha check-repl`'s checks: plain functions over what was observed on each server
//! ([`Observed`]), so every rule is unit-tested without a database. [`collect`] does the I/O.
//!
//! Levels follow MHA's `masterha_check_repl`: FAIL where MHA refuses to start monitoring (or a
//! failover would lose or corrupt data), WARN where it only warns or where durability suffers.
use std::collections::{BTreeMap, BTreeSet};

use serde::Serialize;

use crate::db::{GtidSet, ReplicaStatus};

pub mod collect;
pub mod nodes;
pub mod profile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Level {
    Ok,
    Warn,
    Fail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub check: &'static str,
    /// The server concerned, or `None` for a cluster-wide finding.
    pub server: Option<String>,
    pub level: Level,
    pub detail: String,
}

/// What one server showed us (or why it could not).
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub name: String,
    pub addr: String,
    /// May this server be promoted (not `no_master`)?
    pub can_be_master: bool,
    /// Set when the server could not be queried; nothing else is then meaningful.
    pub error: Option<String>,
    /// `SHOW GLOBAL VARIABLES`, names lower-cased.
    pub vars: BTreeMap<String, String>,
    pub replica: Option<ReplicaStatus>,
    pub gtid: Option<GtidSet>,
    /// `SHOW GRANTS` of the admin user (as connected).
    pub admin_grants: Vec<String>,
    /// Whether the replication user has REPLICATION SLAVE here (`mysql.user.Repl_slave_priv`);
    /// `None` when the user does not exist on this server.
    pub repl_user_can_replicate: Option<bool>,
    /// `SHOW MASTER STATUS` filters: (Binlog_Do_DB, Binlog_Ignore_DB).
    pub binlog_filters: Option<(String, String)>,
}

impl Observed {
    fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }
    fn on(&self, name: &str) -> Option<bool> {
        self.var(name)
            .map(|v| matches!(v.to_ascii_uppercase().as_str(), "ON" | "1" | "YES" | "TRUE"))
    }
}

struct Findings(Vec<Finding>);

impl Findings {
    fn add(&mut self, check: &'static str, server: Option<&str>, level: Level, detail: String) {
        self.0.push(Finding {
            check,
            server: server.map(str::to_string),
            level,
            detail,
        });
    }
}

/// The admin user needs these (MHA: SUPER, REPLICATION CLIENT/SLAVE, RELOAD, PROCESS); each
/// entry lists the names that satisfy it (MariaDB 10.5+ renamed REPLICATION CLIENT).
const ADMIN_PRIVILEGES: &[&[&str]] = &[
    &["SUPER"],
    &["RELOAD"],
    &["PROCESS"],
    &["REPLICATION SLAVE"],
    &["REPLICATION CLIENT", "BINLOG MONITOR"],
];

const FILTER_VARS: &[&str] = &[
    "replicate_do_db",
    "replicate_ignore_db",
    "replicate_do_table",
    "replicate_ignore_table",
    "replicate_wild_do_table",
    "replicate_wild_ignore_table",
];

/// Every check over the observed servers. `master` names the current master (from the
/// managers' state, or the only server that replicates from nobody).
pub fn check_all(servers: &[Observed], master: Option<&str>) -> Vec<Finding> {
    let mut f = Findings(Vec::new());
    let live: Vec<&Observed> = servers.iter().filter(|s| s.error.is_none()).collect();
    for s in servers {
        match &s.error {
            Some(e) => f.add("reachable", Some(&s.name), Level::Fail, e.clone()),
            None => f.add("reachable", Some(&s.name), Level::Ok, s.addr.clone()),
        }
    }
    let master = master.and_then(|m| live.iter().find(|s| s.name == m).copied());
    if master.is_none() {
        f.add(
            "topology",
            None,
            Level::Fail,
            "no reachable master: exactly one server must replicate from no other".into(),
        );
    }
    for s in &live {
        let is_master = master.is_some_and(|m| m.name == s.name);
        per_server(&mut f, s, is_master, master);
    }
    cluster_wide(&mut f, &live, master);
    f.0
}

fn per_server(f: &mut Findings, s: &Observed, is_master: bool, master: Option<&Observed>) {
    let name = Some(s.name.as_str());
    // Admin privileges.
    let global: Vec<String> = s
        .admin_grants
        .iter()
        .filter(|g| g.contains(" ON *.* "))
        .map(|g| g.to_ascii_uppercase())
        .collect();
    let all = global.iter().any(|g| g.contains("ALL PRIVILEGES"));
    let missing: Vec<&str> = ADMIN_PRIVILEGES
        .iter()
        .filter(|alts| !all && !alts.iter().any(|p| global.iter().any(|g| g.contains(p))))
        .map(|alts| alts[0])
        .collect();
    if missing.is_empty() {
        f.add("admin privileges", name, Level::Ok, "sufficient".into());
    } else {
        f.add(
            "admin privileges",
            name,
            Level::Fail,
            format!("missing on *.*: {}", missing.join(", ")),
        );
    }
    // Replication user: every possible master must accept replicas (MHA's check_repl_priv).
    if s.can_be_master || is_master {
        match s.repl_user_can_replicate {
            Some(true) => f.add(
                "replication user",
                name,
                Level::Ok,
                "has REPLICATION SLAVE".into(),
            ),
            Some(false) => f.add(
                "replication user",
                name,
                Level::Fail,
                "lacks REPLICATION SLAVE".into(),
            ),
            None => f.add(
                "replication user",
                name,
                Level::Fail,
                "does not exist on this server".into(),
            ),
        }
    }
    // Binary logging: a server without it cannot become a master.
    match (s.on("log_bin"), s.can_be_master || is_master) {
        (Some(true), _) => f.add("log_bin", name, Level::Ok, "ON".into()),
        (_, true) => f.add(
            "log_bin",
            name,
            Level::Fail,
            "OFF on a server that may be promoted".into(),
        ),
        (_, false) => f.add(
            "log_bin",
            name,
            Level::Warn,
            "OFF (no_master server)".into(),
        ),
    }
    if !is_master {
        let lsu = s
            .on("log_slave_updates")
            .or_else(|| s.on("log_replica_updates"));
        if lsu == Some(true) {
            f.add("log_slave_updates", name, Level::Ok, "ON".into());
        } else if s.can_be_master {
            f.add(
                "log_slave_updates",
                name,
                Level::Warn,
                "OFF: once promoted, its binlog lacks what it replicated".into(),
            );
        }
        match s.on("relay_log_purge") {
            Some(true) => f.add(
                "relay_log_purge",
                name,
                Level::Warn,
                "ON: relay logs other replicas may need are purged (use raftmha-node purge_relay_logs)".into(),
            ),
            _ => f.add("relay_log_purge", name, Level::Ok, "OFF".into()),
        }
        match s.on("read_only") {
            Some(true) => f.add("read_only", name, Level::Ok, "ON".into()),
            _ => f.add(
                "read_only",
                name,
                Level::Warn,
                "OFF on a replica: clients can write errant transactions".into(),
            ),
        }
        replicating(f, s, master);
    } else if s.on("read_only") == Some(true) {
        f.add(
            "read_only",
            name,
            Level::Warn,
            "ON on the master: writes are refused".into(),
        );
    }
    for (var, want) in [
        ("sync_binlog", "1"),
        ("innodb_flush_log_at_trx_commit", "1"),
    ] {
        match s.var(var) {
            Some(v) if v == want => f.add("durability", name, Level::Ok, format!("{var}={v}")),
            Some(v) => f.add(
                "durability",
                name,
                Level::Warn,
                format!("{var}={v}: a crash can lose acknowledged transactions"),
            ),
            None => {}
        }
    }
}

fn replicating(f: &mut Findings, s: &Observed, master: Option<&Observed>) {
    let name = Some(s.name.as_str());
    let Some(r) = &s.replica else {
        f.add(
            "replicating",
            name,
            Level::Fail,
            "not configured as a replica".into(),
        );
        return;
    };
    if let Some(m) = master {
        let (host, port) = m.addr.rsplit_once(':').unwrap_or((m.addr.as_str(), "3306"));
        let port: u16 = port.parse().unwrap_or(3306);
        if !r.replicates_from(host, port) {
            f.add(
                "replicating",
                name,
                Level::Fail,
                format!(
                    "replicates from {}:{}, not the master {}",
                    r.source_host, r.source_port, m.addr
                ),
            );
            return;
        }
    }
    if r.is_receiving() && r.sql_running {
        let lag = r
            .seconds_behind
            .map(|s| format!(", {s} s behind"))
            .unwrap_or_default();
        f.add(
            "replicating",
            name,
            Level::Ok,
            format!("IO and SQL threads running{lag}"),
        );
    } else {
        let mut why = Vec::new();
        if !r.is_receiving() {
            why.push(format!("IO thread {:?} {}", r.io_thread, r.last_io_error));
        }
        if !r.sql_running {
            why.push(format!("SQL thread stopped {}", r.last_sql_error));
        }
        f.add(
            "replicating",
            name,
            Level::Fail,
            why.join("; ").trim().to_string(),
        );
    }
}

fn cluster_wide(f: &mut Findings, live: &[&Observed], master: Option<&Observed>) {
    // Unique server_id.
    let mut ids: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for s in live {
        if let Some(id) = s.var("server_id") {
            ids.entry(id).or_default().push(&s.name);
        }
    }
    let dup: Vec<String> = ids
        .iter()
        .filter(|(_, n)| n.len() > 1)
        .map(|(id, n)| format!("server_id {id} on {}", n.join(", ")))
        .collect();
    if dup.is_empty() {
        f.add(
            "server_id unique",
            None,
            Level::Ok,
            format!("{} distinct", ids.len()),
        );
    } else {
        f.add("server_id unique", None, Level::Fail, dup.join("; "));
    }
    same_everywhere(f, live, "binlog_format", &["binlog_format"]);
    if live.iter().any(|s| {
        s.var("binlog_format")
            .is_some_and(|v| v.eq_ignore_ascii_case("STATEMENT"))
    }) {
        f.add(
            "binlog_format",
            None,
            Level::Warn,
            "STATEMENT: non-deterministic statements can diverge replicas".into(),
        );
    }
    // Replication filters must be identical, or a promoted server silently drops data.
    let mut filters: Vec<&'static str> = FILTER_VARS.to_vec();
    filters.push("binlog_do_db");
    filters.push("binlog_ignore_db");
    let with_binlog: Vec<Observed> = live
        .iter()
        .map(|s| {
            let mut o = (*s).clone();
            if let Some((d, i)) = &s.binlog_filters {
                o.vars.insert("binlog_do_db".into(), d.clone());
                o.vars.insert("binlog_ignore_db".into(), i.clone());
            }
            o
        })
        .collect();
    let refs: Vec<&Observed> = with_binlog.iter().collect();
    same_everywhere(f, &refs, "replication filters", &filters);
    same_everywhere(f, live, "gtid mode", &["gtid_mode", "gtid_strict_mode"]);
    gtid_errant(f, live, master);
    semi_sync(f, live, master);
}

/// FAIL when the listed variables do not have one value across `servers`.
fn same_everywhere(f: &mut Findings, servers: &[&Observed], check: &'static str, vars: &[&str]) {
    let mut diffs = Vec::new();
    for var in vars {
        let values: BTreeSet<&str> = servers.iter().map(|s| s.var(var).unwrap_or("")).collect();
        if values.len() > 1 {
            let per: Vec<String> = servers
                .iter()
                .map(|s| format!("{}={:?}", s.name, s.var(var).unwrap_or("")))
                .collect();
            diffs.push(format!("{var} differs: {}", per.join(", ")));
        }
    }
    if diffs.is_empty() {
        f.add(check, None, Level::Ok, "identical on every server".into());
    } else {
        f.add(check, None, Level::Fail, diffs.join("; "));
    }
}

/// A replica whose executed GTIDs are not all on the master has errant transactions: a
/// failover to it, or repointing it, would diverge.
fn gtid_errant(f: &mut Findings, live: &[&Observed], master: Option<&Observed>) {
    let Some(m) = master else { return };
    let mut errant = Vec::new();
    for s in live.iter().filter(|s| s.name != m.name) {
        let Some(g) = &s.gtid else { continue };
        match &m.gtid {
            Some(mg) if matches!(mg.contains(g), Ok(true)) => {}
            Some(mg) => errant.push(format!(
                "{} has GTIDs the master lacks ({g} vs {mg})",
                s.name
            )),
            None => errant.push(format!("{} has GTIDs ({g}), the master none", s.name)),
        }
    }
    if errant.is_empty() {
        f.add(
            "errant transactions",
            None,
            Level::Ok,
            "every replica's GTIDs are on the master".into(),
        );
    } else {
        f.add("errant transactions", None, Level::Fail, errant.join("; "));
    }
}

fn semi_sync(f: &mut Findings, live: &[&Observed], master: Option<&Observed>) {
    let Some(m) = master else { return };
    if m.on("rpl_semi_sync_master_enabled") != Some(true) {
        f.add(
            "semi-sync",
            None,
            Level::Ok,
            "not in use (asynchronous replication)".into(),
        );
        return;
    }
    let mut issues = Vec::new();
    for s in live.iter().filter(|s| s.name != m.name) {
        if s.on("rpl_semi_sync_slave_enabled") != Some(true) {
            issues.push(format!("{}: rpl_semi_sync_slave_enabled is OFF", s.name));
        }
        if s.can_be_master && s.on("rpl_semi_sync_master_enabled") != Some(true) {
            issues.push(format!(
                "{}: rpl_semi_sync_master_enabled is OFF (after promotion writes go async)",
                s.name
            ));
        }
    }
    if issues.is_empty() {
        f.add(
            "semi-sync",
            None,
            Level::Ok,
            "enabled on the master and every replica".into(),
        );
    } else {
        f.add("semi-sync", None, Level::Warn, issues.join("; "));
    }
}

/// MHA's verdict line and the exit code: 0 when nothing FAILs.
pub fn verdict(findings: &[Finding]) -> (&'static str, u8) {
    if findings.iter().any(|f| f.level == Level::Fail) {
        ("MySQL Replication Health is NOT OK!", 1)
    } else {
        ("MySQL Replication Health is OK.", 0)
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
