//! The run history: one JSON object per line (`history.jsonl`), written by the harness as
//! things happen and read back by the checker.
//!
//! Every record carries `time_ns`, nanoseconds since the run started on the harness's single
//! monotonic clock, so invoke/complete order is comparable; timestamps from other hosts never
//! enter the history.
use std::io::{BufRead, Write};
use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Record {
    pub time_ns: u64,
    #[serde(flatten)]
    pub event: Event,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Event {
    /// What the run was asked to do; the first record of every history.
    Config(RunConfig),
    /// A client starts inserting the unique `id` on `node`, believing it is the master of `epoch`.
    Invoke {
        process: u32,
        id: u64,
        node: String,
        epoch: u64,
    },
    /// The server acknowledged the commit.
    Ok {
        process: u32,
        id: u64,
        node: String,
        epoch: u64,
    },
    /// The write certainly did not commit (e.g. rejected by read_only before executing).
    Fail {
        process: u32,
        id: u64,
        error: String,
    },
    /// Outcome unknown (timeout, connection lost around the commit): neither present nor absent.
    Info {
        process: u32,
        id: u64,
        error: String,
    },
    /// One observation round over every database, taken as close together as possible.
    DbRound {
        round: u64,
        /// When the round started (the record's time is when it ended: a probe that blocked,
        /// e.g. a write waiting for a semi-sync acknowledgement, ends it late).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        started_ns: Option<u64>,
        nodes: Vec<DbObservation>,
        /// The replicated state (linearizable reads) right before and right after the
        /// databases were probed: what a writable database is judged against.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        state: Option<StateAround>,
    },
    /// One observation round over every manager.
    ManagerRound {
        round: u64,
        managers: Vec<ManagerObservation>,
    },
    /// A fault the nemesis tried to install or heal.
    Nemesis {
        fault: String,
        action: NemesisAction,
        outcome: NemesisOutcome,
        detail: String,
    },
    /// A failover or switchover phase as the managers reported it.
    Failover {
        cluster: String,
        failover_id: String,
        epoch: u64,
        phase: FailoverPhase,
        detail: String,
    },
    /// Every fault was healed and every stopped process resumed or restarted; the workload
    /// keeps writing after this.
    Healed,
    /// The operator acknowledged a failover (clears the anti-flapping block).
    Ack { cluster: String },
    /// One manager's own view of the replicated state after healing.
    ManagerFinal {
        manager: u64,
        reachable: bool,
        cluster: Option<String>,
        master: Option<String>,
        epoch: Option<u64>,
        applied_commands: Option<u64>,
    },
    /// The run journal of the replicated state after healing (every failover and operation
    /// record, without binlog chunks, and the audit trail), read linearizably.
    Journal {
        runs: Vec<JournalRun>,
        audit: Vec<AuditLine>,
    },
    /// Every id present on a node after healing, and its table checksum.
    FinalRead {
        node: String,
        role: String,
        ids: Vec<u64>,
        checksum: Option<u64>,
    },
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RunConfig {
    pub scenario: String,
    pub seed: u64,
    /// Faults the scenario must install for the run to say anything; if one never installs the
    /// result is unknown, never valid.
    pub required_faults: Vec<String>,
    /// True when every acknowledged write is guaranteed to survive (semi-sync AFTER_SYNC, or the
    /// dead master's binlog stays readable so its tail is saved). Losses are then violations;
    /// otherwise they are reported as loss within the replication contract.
    pub acked_writes_covered: bool,
    /// MHA's last_failover_minute, in nanoseconds of history time.
    pub anti_flap_window_ns: u64,
    /// The master stays healthy: any failover or change of master is a false failover.
    #[serde(default)]
    pub expect_no_failover: bool,
    /// The scenario exists to provoke a failover: without one the run is unknown.
    #[serde(default)]
    pub expect_failover: bool,
    /// Managers ran in this run (their final state must agree).
    #[serde(default)]
    pub managers: bool,
    /// The databases ran semi-sync AFTER_SYNC (the profile a frozen master is judged by).
    #[serde(default)]
    pub semi_sync: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DbObservation {
    pub node: String,
    pub reachable: bool,
    pub read_only: Option<bool>,
    /// `host:port` it replicates from, if any.
    pub source: Option<String>,
    pub gtid_binlog_pos: Option<String>,
    /// A real write as an account without admin privileges (admin accounts bypass
    /// `read_only` on MariaDB): `Some(true)` committed, `Some(false)` refused as read-only,
    /// `None` no answer in time.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writable: Option<bool>,
}

/// The cluster as the replicated state named it around one database round; servers are
/// given by address (`host:port`), like the observations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateAround {
    pub before: Option<StateView>,
    pub after: Option<StateView>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StateView {
    pub master: Option<String>,
    pub epoch: u64,
    /// New masters of unfinished failovers that planned them (a failover makes its new master
    /// writable right before it records it as master, as MHA does before moving the VIP).
    #[serde(default)]
    pub promoting: Vec<String>,
}

/// One failover or operation record of the journal, as the checker needs it. Servers by
/// address, like the observations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JournalRun {
    pub id: u64,
    /// `failover`, `switchover`, `manual_failover` or `rejoin`.
    pub kind: String,
    /// The master being replaced (or the server rejoined).
    pub dead_master: String,
    pub epoch: u64,
    pub started_at_ms: u64,
    pub started_by: Option<u64>,
    /// The owner when the journal was read: `(manager, term)`.
    pub owner: Option<(u64, u64)>,
    pub steps: Vec<JournalStep>,
    /// `(outcome, at_ms)`; the outcome as the state names it (`Succeeded`, `Failed`, ...).
    pub finished: Option<(String, u64)>,
    /// The server this run made writable (its `read_only=OFF` step done), if any.
    pub promoted: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct JournalStep {
    pub step: String,
    pub result: bool,
    pub at_ms: u64,
    pub by: Option<u64>,
    pub term: Option<u64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditLine {
    pub at_ms: u64,
    pub by: Option<u64>,
    pub event: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ManagerObservation {
    pub manager: u64,
    pub reachable: bool,
    pub role: Option<String>,
    pub term: Option<u64>,
    pub leader: Option<u64>,
    /// The cluster's master and epoch in the replicated state, as of this round.
    #[serde(default)]
    pub master: Option<String>,
    #[serde(default)]
    pub epoch: Option<u64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NemesisAction {
    Start,
    Stop,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NemesisOutcome {
    Installed,
    Skipped,
    Indeterminate,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FailoverPhase {
    Started,
    Fenced,
    Promoted,
    Completed,
    Aborted,
}

/// Appends records to `history.jsonl`, one line each, flushed per record so a crashed harness
/// still leaves a readable history.
pub struct HistoryWriter<W: Write> {
    out: W,
}

impl<W: Write> HistoryWriter<W> {
    pub fn new(out: W) -> Self {
        HistoryWriter { out }
    }

    pub fn write(&mut self, record: &Record) -> Result<()> {
        serde_json::to_writer(&mut self.out, record)?;
        self.out.write_all(b"\n")?;
        self.out.flush()?;
        Ok(())
    }
}

/// Reads a history; a malformed line is an error naming its line number.
pub fn read_history(path: &Path) -> Result<Vec<Record>> {
    let file =
        std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    let mut records = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line =
            line.with_context(|| format!("{}: cannot read line {}", path.display(), n + 1))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: Record = serde_json::from_str(&line).with_context(|| {
            format!("{}: line {} is not a history record", path.display(), n + 1)
        })?;
        records.push(record);
    }
    Ok(records)
}
