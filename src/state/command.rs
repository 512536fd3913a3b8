//! Typed, versioned commands: the only way the replicated state changes.
use std::fmt;

use serde::{Deserialize, Serialize};

use super::cluster_file::ClusterSpec;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Alive,
    Suspect,
    Dead,
}

/// The leader that appended an entry to the Raft log: its term and node id. `None` when the
/// caller does not know (unit tests applying requests directly).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogLeader {
    pub term: u64,
    pub node: u64,
}

/// The owner a request claims to act as, checked against the log entry that carries it:
/// a manager acts for a run only in a term it leads itself.
pub(super) fn acting_owner(req: &Request, log: Option<LogLeader>) -> Result<RunOwner, String> {
    let (Some(manager), Some(term)) = (req.by, req.term) else {
        return Err("only the manager leader acting for a run may write its journal (the request names no manager and term)".into());
    };
    let owner = RunOwner { manager, term };
    if let Some(log) = log
        && (log.term != term || log.node != manager)
    {
        return Err(format!(
            "{owner} is deposed: its entry was appended by manager {} in term {}",
            log.node, log.term
        ));
    }
    Ok(owner)
}

/// Version of the [`Request`] envelope written into the Raft log.
///
/// - 1: `by` and `at_ms` only. Journal entries of a run are accepted from anyone.
/// - 2: `term` added. Journal entries of a run are accepted only from the run's owner,
///   under the owner's own Raft term (see [`crate::state::RunOwner`]).
pub const REQUEST_VERSION: u16 = 2;

/// Requests older than this follow the version-1 rules when replayed (old logs).
pub const OWNERSHIP_VERSION: u16 = 2;

/// One entry of application data in the Raft log.
///
/// `at_ms` is stamped by the proposer (wall clock, milliseconds since the Unix epoch) so
/// that applying the entry is deterministic on every replica; `by` names the manager that
/// proposed it (kept as is when a follower forwards it to the leader), for the audit history
/// and for ownership; `term` is the Raft term under which a manager acts for a run (the term
/// it led when it started or resumed the run), `None` for requests that act for no run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Request {
    #[serde(default = "default_version")]
    pub version: u16,
    #[serde(default)]
    pub at_ms: u64,
    #[serde(default)]
    pub by: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
    pub command: Command,
}

fn default_version() -> u16 {
    REQUEST_VERSION
}

impl Request {
    pub fn new(command: Command, by: Option<u64>, at_ms: u64) -> Self {
        Request {
            version: REQUEST_VERSION,
            at_ms,
            by,
            term: None,
            command,
        }
    }

    /// A request made by manager `by` acting as the owner of a run it leads in `term`.
    pub fn as_owner(command: Command, owner: RunOwner, at_ms: u64) -> Self {
        Request {
            term: Some(owner.term),
            ..Request::new(command, Some(owner.manager), at_ms)
        }
    }

    /// Whether the ownership rules apply (entries written by version-1 binaries replay
    /// under the old rules, so an old log applies exactly as it did).
    pub fn enforces_ownership(&self) -> bool {
        self.version >= OWNERSHIP_VERSION
    }
}

/// Who may write a run's journal: the manager that started or resumed it, in the Raft term
/// it led then. A manager that lost that leadership (paused, partitioned, re-elected under a
/// newer term) is deposed: the state machine refuses its entries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunOwner {
    pub manager: u64,
    pub term: u64,
}

impl fmt::Display for RunOwner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "manager {} (term {})", self.manager, self.term)
    }
}

impl fmt::Display for Request {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}@v{}", self.command.kind(), self.version)
    }
}

/// Whether a failover journal step records what is about to happen or what happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepPhase {
    Intent,
    Result,
}

/// One manager's journaled verdict about one server (a `ReportLiveness` entry), by identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VerdictKey<'a> {
    pub cluster: &'a str,
    pub server: &'a str,
    pub manager: u64,
    pub window_end_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverOutcome {
    Succeeded,
    Failed,
    Aborted,
}

/// Every kind of change to the replicated state. Tags are explicit and stable: never
/// rename or reuse one, add a new variant instead.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Command {
    /// Does nothing; a write barrier and a benchmark probe.
    Noop,
    /// Register a managed cluster (`raftmha cluster add`).
    RegisterCluster { spec: Box<ClusterSpec> },
    /// Forget a managed cluster (`raftmha cluster remove`).
    RemoveCluster { name: String },
    /// Stop or resume automatic failover for a cluster.
    SetPaused {
        cluster: String,
        paused: bool,
        reason: String,
    },
    /// A manager's own verdict about a server changed (written on change only).
    ReportLiveness {
        cluster: String,
        server: String,
        manager: u64,
        verdict: Verdict,
        window_start_ms: u64,
        window_end_ms: u64,
        /// The cluster epoch the manager was monitoring (older entries: 0).
        #[serde(default)]
        master_epoch: u64,
    },
    /// A new failover begins; the reply carries its id.
    FailoverStarted {
        cluster: String,
        dead_master: String,
        epoch: u64,
    },
    /// One journal step, written before (intent) and after (result) its side effect.
    FailoverStep {
        cluster: String,
        failover_id: u64,
        step: String,
        phase: StepPhase,
        #[serde(default)]
        detail: String,
    },
    /// A piece (≤ 64 KiB) of the dead master's binlog tail saved for a successor leader.
    BinlogTailChunk {
        cluster: String,
        failover_id: u64,
        seq: u32,
        #[serde(with = "super::bytes")]
        data: Vec<u8>,
    },
    /// A piece (≤ 64 KiB) of a relay-log diff cut for one target (`name` identifies the
    /// diff), kept so a successor leader can apply it after the donor was repointed.
    RelayDiffChunk {
        cluster: String,
        failover_id: u64,
        name: String,
        seq: u32,
        #[serde(with = "super::bytes")]
        data: Vec<u8>,
    },
    /// A server became the master; the epoch moves forward by one.
    PromoteMaster {
        cluster: String,
        server: String,
        /// The epoch the proposer saw: a stale proposer is rejected (fencing).
        expected_epoch: u64,
        /// The failover that promotes (its owner must propose it); `None` in old entries.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        failover_id: Option<u64>,
    },
    FailoverFinished {
        cluster: String,
        failover_id: u64,
        outcome: FailoverOutcome,
        #[serde(default)]
        detail: String,
    },
    /// An operator acknowledged the last failover: the anti-flapping guard is lifted.
    AckFailover { cluster: String },
    /// The leader found which server is the master of a newly registered cluster (the one
    /// writable server that replicates from nobody). Only valid while none is recorded.
    SetInitialMaster { cluster: String, server: String },
    /// An operator asked for a switchover, a manual failover or a rejoin (`raftmha switch`,
    /// `failover`, `rejoin`). Opens a journal record like `FailoverStarted`; `server` is the
    /// current master (switchover, manual failover) or the host to rejoin. The leader runs it.
    OperationStarted {
        cluster: String,
        server: String,
        epoch: u64,
        operation: Operation,
    },
    /// Promotion inside an operator operation: like `PromoteMaster`, and also refused once
    /// the operation is finished or has begun rolling back, so a deposed leader that decided
    /// to go on can never promote after a successor decided to roll back.
    OperationPromote {
        cluster: String,
        failover_id: u64,
        server: String,
        expected_epoch: u64,
    },
    /// The proposing manager, leader in the request's term, takes over an unfinished run
    /// (an operator's operation it is about to start, or a run whose owner lost leadership).
    /// Refused unless it is appended by that manager in that term, and the term is newer
    /// than the current owner's.
    RunResumed { cluster: String, failover_id: u64 },
    /// A command kind written by a newer binary. Kept so old logs never fail to decode.
    #[serde(other)]
    Unknown,
}

/// Journal step that marks a switchover as rolling back (see [`Command::OperationPromote`]).
pub const ROLLBACK_STEP: &str = "sw.rollback";

/// What an operator asked for (MHA's `masterha_master_switch` modes, plus rejoin).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Operation {
    /// `--master_state=alive`: planned switchover from a live master.
    Switchover {
        new_master: String,
        #[serde(default)]
        orig_master_is_new_slave: bool,
        #[serde(default)]
        limits: SwitchLimits,
    },
    /// `--master_state=dead`: failover of a master the operator declares dead.
    ManualFailover {
        #[serde(default)]
        new_master: Option<String>,
        /// Go on even though the master still answers (it is fenced first).
        #[serde(default)]
        force: bool,
    },
    /// Bring a failed or switched-out old master back as a replica of the current master.
    Rejoin {
        /// Rejoin even with errant transactions (they stay on the host: it diverges).
        #[serde(default)]
        force: bool,
    },
}

impl Operation {
    pub fn kind(&self) -> &'static str {
        match self {
            Operation::Switchover { .. } => "switchover",
            Operation::ManualFailover { .. } => "manual_failover",
            Operation::Rejoin { .. } => "rejoin",
        }
    }
}

/// MHA's online-switch limits (`masterha_master_switch` flags of the same names).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct SwitchLimits {
    /// Refuse when the master runs an update (or holds a transaction) older than this.
    pub running_updates_limit_secs: u64,
    /// Refuse when the new master runs any query older than this.
    pub running_seconds_limit_secs: u64,
    /// Refuse when a replica is further behind than this (`--seconds_behind_master`).
    pub max_lag_secs: u64,
    /// How long the new master may take to execute the old master's last events while
    /// writes are blocked; past it the switchover rolls back.
    pub catch_up_timeout_ms: u64,
}

impl Default for SwitchLimits {
    fn default() -> Self {
        SwitchLimits {
            running_updates_limit_secs: 1,
            running_seconds_limit_secs: 10,
            max_lag_secs: 30,
            catch_up_timeout_ms: 5000,
        }
    }
}

impl Command {
    /// Whether an operator may ask for it through the admin API. The journal entries of
    /// runs (start, steps, chunks, promotions, takeover, finish) and verdicts are proposed by
    /// managers only, so nobody holding the API token can forge a step or a promotion.
    pub fn is_operator_request(&self) -> bool {
        matches!(
            self,
            Command::Noop
                | Command::RegisterCluster { .. }
                | Command::RemoveCluster { .. }
                | Command::SetPaused { .. }
                | Command::AckFailover { .. }
                | Command::OperationStarted { .. }
                | Command::SetInitialMaster { .. }
        )
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Command::Noop => "noop",
            Command::RegisterCluster { .. } => "register_cluster",
            Command::RemoveCluster { .. } => "remove_cluster",
            Command::SetPaused { .. } => "set_paused",
            Command::ReportLiveness { .. } => "report_liveness",
            Command::FailoverStarted { .. } => "failover_started",
            Command::FailoverStep { .. } => "failover_step",
            Command::BinlogTailChunk { .. } => "binlog_tail_chunk",
            Command::PromoteMaster { .. } => "promote_master",
            Command::FailoverFinished { .. } => "failover_finished",
            Command::AckFailover { .. } => "ack_failover",
            Command::SetInitialMaster { .. } => "set_initial_master",
            Command::RelayDiffChunk { .. } => "relay_diff_chunk",
            Command::OperationStarted { .. } => "operation_started",
            Command::OperationPromote { .. } => "operation_promote",
            Command::RunResumed { .. } => "run_resumed",
            Command::Unknown => "unknown",
        }
    }
}

/// What applying a command produced. Rejections are deterministic (every replica
/// rejects the same entry) and change nothing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, Default)]
#[serde(tag = "result", rename_all = "snake_case")]
pub enum CommandResult {
    /// Non-application entries (blank, membership).
    #[default]
    None,
    Ok {
        #[serde(default)]
        id: Option<u64>,
        #[serde(default)]
        message: String,
    },
    Rejected {
        reason: String,
    },
}

impl fmt::Display for CommandResult {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CommandResult::None => write!(f, "none"),
            CommandResult::Ok { message, .. } => write!(f, "ok {message}"),
            CommandResult::Rejected { reason } => write!(f, "rejected: {reason}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_command_kind_decodes_instead_of_failing_the_log() {
        let json = r#"{"version":7,"at_ms":1,"command":{"kind":"from_the_future","x":1}}"#;
        let req: Request = serde_json::from_str(json).expect("decodes");
        assert_eq!(req.command, Command::Unknown);
        assert_eq!(req.version, 7);
    }

    #[test]
    fn commands_round_trip_with_stable_tags() {
        let req = Request::new(
            Command::SetPaused {
                cluster: "app1".into(),
                paused: true,
                reason: "maintenance".into(),
            },
            Some(2),
            42,
        );
        let json = serde_json::to_string(&req).expect("encodes");
        assert!(json.contains(r#""kind":"set_paused""#), "{json}");
        let back: Request = serde_json::from_str(&json).expect("decodes");
        assert_eq!(back, req);
    }
}
