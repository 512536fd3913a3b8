//! The online switchover (MHA's `masterha_master_switch --master_state=alive`) as plain
//! logic: the preflight over observed facts, the plan it yields, and the report. The journaled
//! execution is in [`super::switchover_run`].
//!
//! Why `read_only` and no `FLUSH TABLES WITH READ LOCK`: MHA 0.58 already prefers
//! `read_only=1` (PR #86) and only falls back to FTWRL. On MariaDB, `SET GLOBAL read_only=ON`
//! itself waits for running commits and takes the global read lock for the switch, and since
//! 10.11 it binds SUPER users as well (only `READ_ONLY ADMIN` bypasses it), so once it returns
//! no client commits any more; the remaining sessions are killed so none waits on a lock.
//! FTWRL would add nothing but a lock whose holder must stay connected.
use serde::{Deserialize, Serialize};

use super::input::{ServerPolicy, ServerRef};
use crate::db::{BinlogCoord, ReplicaStatus, ServerVariables};
use crate::state::SwitchLimits;

pub use crate::db::sessions::Session;

/// What probing one server found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    pub variables: ServerVariables,
    pub replica: Option<ReplicaStatus>,
    /// Every other session (`information_schema.PROCESSLIST`).
    pub sessions: Vec<Session>,
    /// Open transactions that modified rows: `(thread id, seconds open)`.
    pub writing_transactions: Vec<(u64, u64)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerFacts {
    pub server: ServerRef,
    pub policy: ServerPolicy,
    /// `Err`: why it could not be probed.
    pub observed: Result<Observed, String>,
}

/// How the others follow the new master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FollowBy {
    /// At the new master's binlog position captured while writes were blocked.
    Position,
    /// MariaDB `MASTER_USE_GTID=slave_pos` (the cluster replicates by GTID).
    Gtid,
}

impl From<FollowBy> for super::plan::RepointBy {
    fn from(by: FollowBy) -> Self {
        match by {
            FollowBy::Position => super::plan::RepointBy::CapturedPosition,
            FollowBy::Gtid => super::plan::RepointBy::Gtid,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchPlan {
    pub orig: ServerRef,
    pub new: ServerRef,
    pub follow_by: FollowBy,
    /// Replicas of the old master to repoint, in configuration order.
    pub repoint: Vec<ServerRef>,
    /// Servers left alone, and why (detached, replicating from elsewhere, ignore_fail).
    pub skipped: Vec<(ServerRef, String)>,
    pub orig_master_is_new_slave: bool,
    pub limits: SwitchLimits,
}

/// Statements that do not write (MHA skips SELECT and SHOW when it looks for updates).
fn is_read(info: &str) -> bool {
    let head = info.trim_start().to_ascii_uppercase();
    [
        "SELECT", "SHOW", "SET ", "DO ", "EXPLAIN", "DESCRIBE", "USE ",
    ]
    .iter()
    .any(|p| head.starts_with(p))
}

/// Replication threads, daemons and idle sessions: never "running" anything.
fn is_background(s: &Session) -> bool {
    let c = s.command.to_ascii_lowercase();
    s.user.eq_ignore_ascii_case("system user")
        || s.user.eq_ignore_ascii_case("event_scheduler")
        || c == "sleep"
        || c == "daemon"
        || c == "killed"
        || c.starts_with("binlog dump")
        || c.starts_with("slave_")
}

/// MHA's `running_updates_limit`: updates on the old master running longer than the limit,
/// and transactions holding uncommitted row changes for longer than it.
pub fn long_updates(o: &Observed, limit_secs: u64) -> Vec<String> {
    let mut out: Vec<String> = o
        .sessions
        .iter()
        .filter(|s| !is_background(s) && !is_read(&s.info) && s.secs > limit_secs)
        .map(|s| {
            format!(
                "session {} ({}) runs `{}` for {} s",
                s.id, s.user, s.info, s.secs
            )
        })
        .collect();
    out.extend(
        o.writing_transactions
            .iter()
            .filter(|(_, secs)| *secs > limit_secs)
            .map(|(id, secs)| {
                format!("session {id} holds a transaction with uncommitted changes for {secs} s")
            }),
    );
    out
}

/// MHA's `running_seconds_limit`: any query on the new master running longer than it.
pub fn long_queries(o: &Observed, limit_secs: u64) -> Vec<String> {
    o.sessions
        .iter()
        .filter(|s| !is_background(s) && !s.info.is_empty() && s.secs > limit_secs)
        .map(|s| {
            format!(
                "session {} ({}) runs `{}` for {} s",
                s.id, s.user, s.info, s.secs
            )
        })
        .collect()
}

/// Healthy replication from `source`, within the lag limit; `Err` says what is wrong.
fn replica_health(r: &ReplicaStatus, source: &ServerRef, max_lag: u64) -> Result<(), String> {
    if r.last_sql_errno != 0 {
        return Err(format!(
            "SQL thread error {}: {}",
            r.last_sql_errno, r.last_sql_error
        ));
    }
    if !r.is_receiving() || !r.sql_running {
        return Err(format!(
            "replication from {source} is not running (IO {:?}, SQL running {})",
            r.io_thread, r.sql_running
        ));
    }
    match r.seconds_behind {
        Some(lag) if lag <= max_lag => Ok(()),
        Some(lag) => Err(format!("{lag} s behind (limit {max_lag} s)")),
        None => Err("lag unknown (Seconds_Behind_Master is NULL)".into()),
    }
}

/// The preflight: every reason the switchover must not start, or the plan.
pub fn plan_switchover(
    orig: &ServerFacts,
    new_master: &str,
    others: &[ServerFacts],
    limits: SwitchLimits,
    orig_master_is_new_slave: bool,
) -> Result<SwitchPlan, Vec<String>> {
    let mut refusals = Vec::new();
    match &orig.observed {
        Err(e) => refusals.push(format!("the master {} does not answer: {e}", orig.server)),
        Ok(o) => {
            if !o.variables.is_writable() {
                refusals.push(format!(
                    "the master {} is read_only: writes are already blocked (a failover \
                     or an earlier switchover left it so?)",
                    orig.server
                ));
            }
            if !o.variables.log_bin {
                refusals.push(format!("the master {} has binary logging off", orig.server));
            }
            for u in long_updates(o, limits.running_updates_limit_secs) {
                refusals.push(format!(
                    "on the master {}: {u} (running_updates_limit {} s)",
                    orig.server, limits.running_updates_limit_secs
                ));
            }
        }
    }
    let Some(nm) = others.iter().find(|f| f.server.name == new_master) else {
        refusals.push(format!("{new_master} is not a server of this cluster"));
        return Err(refusals);
    };
    let mut follow_by = FollowBy::Position;
    if nm.policy.no_master {
        refusals.push(format!("{} is no_master", nm.server));
    }
    match &nm.observed {
        Err(e) => refusals.push(format!("the new master {} does not answer: {e}", nm.server)),
        Ok(o) => match &o.replica {
            Some(r) if r.replicates_from(&orig.server.host, orig.server.port) => {
                if let Err(e) = replica_health(r, &orig.server, limits.max_lag_secs) {
                    refusals.push(format!("the new master {}: {e}", nm.server));
                }
                if !o.variables.log_bin {
                    refusals.push(format!(
                        "the new master {} has binary logging off: nobody could replicate from it",
                        nm.server
                    ));
                }
                if r.uses_gtid() && o.variables.log_slave_updates {
                    follow_by = FollowBy::Gtid;
                }
                for q in long_queries(o, limits.running_seconds_limit_secs) {
                    refusals.push(format!(
                        "on the new master {}: {q} (running_seconds_limit {} s)",
                        nm.server, limits.running_seconds_limit_secs
                    ));
                }
            }
            _ => refusals.push(format!(
                "the new master {} is not a replica of the master {}",
                nm.server, orig.server
            )),
        },
    }
    let mut repoint = Vec::new();
    let mut skipped = Vec::new();
    for f in others.iter().filter(|f| f.server.name != new_master) {
        let verdict = match &f.observed {
            Err(e) => Err(format!("does not answer: {e}")),
            Ok(o) => match &o.replica {
                None if o.variables.read_only => {
                    skipped.push((f.server.clone(), "detached (read_only, no source)".into()));
                    continue;
                }
                None => Err("is writable and replicates from nobody: a second master?".into()),
                Some(r) if !r.replicates_from(&orig.server.host, orig.server.port) => {
                    skipped.push((
                        f.server.clone(),
                        format!("replicates from {}:{}", r.source_host, r.source_port),
                    ));
                    continue;
                }
                Some(r) => replica_health(r, &orig.server, limits.max_lag_secs),
            },
        };
        match verdict {
            Ok(()) => repoint.push(f.server.clone()),
            Err(e) if f.policy.ignore_fail => {
                skipped.push((f.server.clone(), format!("ignore_fail: {e}")));
            }
            Err(e) => refusals.push(format!("replica {} {e}", f.server)),
        }
    }
    if !refusals.is_empty() {
        return Err(refusals);
    }
    Ok(SwitchPlan {
        orig: orig.server.clone(),
        new: nm.server.clone(),
        follow_by,
        repoint,
        skipped,
        orig_master_is_new_slave,
        limits,
    })
}

/// How a switchover ended, for the CLI's exit code and the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SwitchOutcome {
    /// The preflight refused: nothing changed.
    Refused,
    /// Failed before the promotion; the old master takes writes again.
    RolledBack,
    /// The new master takes writes (some replicas may have failed to follow: `failed`).
    Switched,
}

/// One journaled phase and how long it took.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PhaseTiming {
    pub phase: String,
    pub ms: u64,
}

/// What `raftmha history` and `raftmha switch --json` show for a switchover.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchReport {
    pub kind: String,
    pub outcome: SwitchOutcome,
    pub orig_master: String,
    pub new_master: String,
    /// From `read_only=ON` on the old master to `read_only=OFF` on the new one, as the
    /// leader measured it (`None` when writes were never blocked or a leader change split it).
    pub writes_blocked_ms: Option<u64>,
    pub phases: Vec<PhaseTiming>,
    /// The old master's last position and the new master's first, when captured.
    pub orig_final_position: Option<BinlogCoord>,
    pub new_master_position: Option<BinlogCoord>,
    pub repointed: Vec<String>,
    pub failed: Vec<(String, String)>,
    pub skipped: Vec<(String, String)>,
    pub orig_master_is_new_slave: bool,
    /// Refusals, or why it rolled back.
    pub reasons: Vec<String>,
}

impl SwitchReport {
    pub fn new(orig: &str, new: &str, outcome: SwitchOutcome) -> Self {
        SwitchReport {
            kind: "switchover".into(),
            outcome,
            orig_master: orig.into(),
            new_master: new.into(),
            writes_blocked_ms: None,
            phases: Vec::new(),
            orig_final_position: None,
            new_master_position: None,
            repointed: Vec::new(),
            failed: Vec::new(),
            skipped: Vec::new(),
            orig_master_is_new_slave: false,
            reasons: Vec::new(),
        }
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    /// Human-readable lines for the CLI.
    pub fn render_text(&self) -> String {
        let mut out = String::new();
        let headline = match self.outcome {
            SwitchOutcome::Refused => format!(
                "switchover {} → {} refused; nothing was changed:",
                self.orig_master, self.new_master
            ),
            SwitchOutcome::RolledBack => format!(
                "switchover {} → {} rolled back: {} is the master and takes writes again:",
                self.orig_master, self.new_master, self.orig_master
            ),
            SwitchOutcome::Switched => format!(
                "switchover done: {} is the master (was {})",
                self.new_master, self.orig_master
            ),
        };
        out.push_str(&headline);
        out.push('\n');
        for r in &self.reasons {
            out.push_str(&format!("  - {r}\n"));
        }
        if let Some(ms) = self.writes_blocked_ms {
            out.push_str(&format!("writes blocked for {ms} ms\n"));
        }
        for p in &self.phases {
            out.push_str(&format!("  {:<28} {:>6} ms\n", p.phase, p.ms));
        }
        if let (Some(o), Some(n)) = (&self.orig_final_position, &self.new_master_position) {
            out.push_str(&format!(
                "old master stopped at {o}; new master starts at {n}\n"
            ));
        }
        if !self.repointed.is_empty() {
            out.push_str(&format!(
                "replicating from {}: {}\n",
                self.new_master,
                self.repointed.join(", ")
            ));
        }
        for (s, why) in &self.skipped {
            out.push_str(&format!("left alone: {s} ({why})\n"));
        }
        for (s, why) in &self.failed {
            out.push_str(&format!("FAILED to follow the new master: {s}: {why}\n"));
        }
        out
    }
}

#[cfg(test)]
#[path = "switchover_tests.rs"]
pub(crate) mod tests;
