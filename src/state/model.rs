//! The replicated records and the deterministic apply function.
use std::collections::{BTreeMap, VecDeque};

use serde::{Deserialize, Serialize};

use super::cluster_file::ClusterSpec;
use super::command::{
    Command, CommandResult, FailoverOutcome, LogLeader, Operation, Request, RunOwner, StepPhase,
    Verdict, acting_owner,
};

/// Version of the serialized [`ManagerState`] inside a snapshot.
pub const SNAPSHOT_FORMAT_VERSION: u32 = 1;

/// Bounds that keep the state (and thus snapshots) small.
const AUDIT_KEEP: usize = 1000;
const FAILOVERS_KEEP: usize = 20;
const TAIL_CHUNK_MAX: usize = 64 * 1024;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LivenessVerdict {
    pub verdict: Verdict,
    pub window_start_ms: u64,
    pub window_end_ms: u64,
    /// When the entry was proposed (the Raft log's clock, not the observer's).
    pub recorded_at_ms: u64,
    /// The cluster epoch (which master) the manager was monitoring.
    #[serde(default)]
    pub master_epoch: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverStepRecord {
    pub step: String,
    pub phase: StepPhase,
    pub detail: String,
    pub at_ms: u64,
    /// The manager and Raft term the entry was proposed as (the run's owner when the state
    /// machine accepted it), so an audit can check after the fact that no deposed owner
    /// wrote. `None` in records written before this field existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub by: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogTailChunk {
    pub seq: u32,
    #[serde(with = "super::bytes")]
    pub data: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRecord {
    pub id: u64,
    pub dead_master: String,
    /// The cluster epoch when the failover started.
    pub epoch: u64,
    pub started_at_ms: u64,
    pub started_by: Option<u64>,
    #[serde(default)]
    pub steps: Vec<FailoverStepRecord>,
    #[serde(default)]
    pub tail: Vec<BinlogTailChunk>,
    /// Relay-log diffs by name, in chunks.
    #[serde(default)]
    pub diffs: BTreeMap<String, Vec<BinlogTailChunk>>,
    #[serde(default)]
    pub finished: Option<(FailoverOutcome, u64)>,
    /// The finishing entry's detail: the Failover Report as JSON, or why it failed.
    #[serde(default)]
    pub report: Option<String>,
    /// Set when an operator asked for it (switchover, manual failover, rejoin); `None` for
    /// an automatic failover. `dead_master` then names the master being replaced (or the
    /// host to rejoin).
    #[serde(default)]
    pub operation: Option<Operation>,
    /// The manager (and its Raft term) that may write this run's journal; see
    /// [`super::ownership`]. `None` for an operation nobody has taken on yet, and in records
    /// written by version-1 binaries.
    #[serde(default)]
    pub owner: Option<RunOwner>,
}

impl ClusterRecord {
    /// Opens failover (or operation) `id`'s journal record; keeps the last `FAILOVERS_KEEP`.
    pub(super) fn open_record(
        &mut self,
        id: u64,
        dead_master: &str,
        epoch: u64,
        (at, by): (u64, Option<u64>),
        operation: Option<Operation>,
        owner: Option<RunOwner>,
    ) {
        self.failovers.push_back(FailoverRecord {
            id,
            dead_master: dead_master.to_string(),
            epoch,
            started_at_ms: at,
            started_by: by,
            steps: Vec::new(),
            tail: Vec::new(),
            diffs: BTreeMap::new(),
            finished: None,
            report: None,
            operation,
            owner,
        });
        while self.failovers.len() > FAILOVERS_KEEP {
            self.failovers.pop_front();
        }
    }
}

impl FailoverRecord {
    /// `failover`, `switchover`, `manual_failover` or `rejoin`.
    pub fn kind(&self) -> &'static str {
        self.operation.as_ref().map_or("failover", Operation::kind)
    }

    /// Whether it replaces a dead master (automatic or manual failover): only those arm
    /// the anti-flapping guard (MHA's online switch does not either).
    pub fn is_failover(&self) -> bool {
        matches!(
            self.operation,
            None | Some(Operation::ManualFailover { .. })
        )
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LastFailover {
    pub failover_id: u64,
    pub finished_at_ms: u64,
    pub outcome: FailoverOutcome,
    pub acknowledged: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClusterRecord {
    pub spec: ClusterSpec,
    /// The current master's server name, once known.
    #[serde(default)]
    pub master: Option<String>,
    /// Increases with every promotion; fences stale leaders' side effects.
    #[serde(default)]
    pub epoch: u64,
    #[serde(default)]
    pub paused: bool,
    /// server name -> manager id -> that manager's latest verdict.
    #[serde(default)]
    pub verdicts: BTreeMap<String, BTreeMap<u64, LivenessVerdict>>,
    /// Recent failovers, oldest first (bounded).
    #[serde(default)]
    pub failovers: VecDeque<FailoverRecord>,
    #[serde(default)]
    pub last_failover: Option<LastFailover>,
    pub registered_at_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditRecord {
    pub at_ms: u64,
    pub by: Option<u64>,
    pub cluster: Option<String>,
    pub event: String,
}

/// Everything the managers agree on (besides Raft membership, which openraft keeps).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ManagerState {
    #[serde(default)]
    pub clusters: BTreeMap<String, ClusterRecord>,
    #[serde(default)]
    pub audit: VecDeque<AuditRecord>,
    #[serde(default)]
    pub next_failover_id: u64,
    /// Application commands applied (rejections included); lets tests and the benchmark
    /// check that no committed command is lost.
    #[serde(default)]
    pub applied_commands: u64,
}

pub(super) fn rejected(reason: impl Into<String>) -> CommandResult {
    CommandResult::Rejected {
        reason: reason.into(),
    }
}

fn ok(message: impl Into<String>) -> CommandResult {
    CommandResult::Ok {
        id: None,
        message: message.into(),
    }
}

impl ManagerState {
    /// Applies one request without knowing which leader appended it (tests, tools).
    pub fn apply(&mut self, req: &Request) -> CommandResult {
        self.apply_logged(req, None)
    }

    /// Applies one committed request appended by `log`'s leader. Must be deterministic:
    /// same state + same request gives the same result on every replica (no clocks, no
    /// randomness, no I/O).
    pub fn apply_logged(&mut self, req: &Request, log: Option<LogLeader>) -> CommandResult {
        self.applied_commands += 1;
        let at = req.at_ms;
        let by = req.by;
        match &req.command {
            Command::Noop => ok("noop"),
            Command::Unknown => rejected(format!(
                "unknown command kind (request format v{}): this manager is older than the one that wrote it",
                req.version
            )),
            Command::RegisterCluster { spec } => {
                if let Err(e) = spec.validate() {
                    return rejected(e.to_string());
                }
                if self.clusters.contains_key(&spec.name) {
                    return rejected(format!("cluster {:?} is already registered", spec.name));
                }
                self.clusters.insert(
                    spec.name.clone(),
                    ClusterRecord {
                        spec: (**spec).clone(),
                        master: None,
                        epoch: 0,
                        paused: false,
                        verdicts: BTreeMap::new(),
                        failovers: VecDeque::new(),
                        last_failover: None,
                        registered_at_ms: at,
                    },
                );
                self.audit(at, by, Some(&spec.name), "cluster registered".into());
                ok(format!("cluster {} registered", spec.name))
            }
            Command::RemoveCluster { name } => {
                if self.clusters.remove(name).is_none() {
                    return rejected(format!("no cluster named {name:?}"));
                }
                self.audit(at, by, Some(name), "cluster removed".into());
                ok(format!("cluster {name} removed"))
            }
            Command::SetPaused {
                cluster,
                paused,
                reason,
            } => {
                let Some(c) = self.clusters.get_mut(cluster) else {
                    return rejected(format!("no cluster named {cluster:?}"));
                };
                c.paused = *paused;
                let what = if *paused { "paused" } else { "resumed" };
                self.audit(at, by, Some(cluster), format!("failover {what}: {reason}"));
                ok(what)
            }
            Command::ReportLiveness {
                cluster,
                server,
                manager,
                verdict,
                window_start_ms,
                window_end_ms,
                master_epoch,
            } => {
                let Some(c) = self.clusters.get_mut(cluster) else {
                    return rejected(format!("no cluster named {cluster:?}"));
                };
                if !c.spec.servers.iter().any(|s| &s.name == server) {
                    return rejected(format!("cluster {cluster} has no server {server:?}"));
                }
                c.verdicts.entry(server.clone()).or_default().insert(
                    *manager,
                    LivenessVerdict {
                        verdict: *verdict,
                        window_start_ms: *window_start_ms,
                        window_end_ms: *window_end_ms,
                        recorded_at_ms: at,
                        master_epoch: *master_epoch,
                    },
                );
                ok("recorded")
            }
            Command::FailoverStarted {
                cluster,
                dead_master,
                epoch,
            } => {
                let Some(c) = self.clusters.get_mut(cluster) else {
                    return rejected(format!("no cluster named {cluster:?}"));
                };
                if *epoch != c.epoch {
                    return rejected(format!(
                        "stale epoch {epoch}: cluster {cluster} is at epoch {}",
                        c.epoch
                    ));
                }
                if c.failovers.iter().any(|f| f.finished.is_none()) {
                    return rejected(format!("a failover of {cluster} is already running"));
                }
                let owner = if req.enforces_ownership() {
                    match acting_owner(req, log) {
                        Ok(owner) => Some(owner),
                        Err(reason) => return rejected(reason),
                    }
                } else {
                    None
                };
                self.next_failover_id += 1;
                let id = self.next_failover_id;
                let Some(c) = self.clusters.get_mut(cluster) else {
                    return rejected(format!("no cluster named {cluster:?}"));
                };
                c.open_record(id, dead_master, *epoch, (at, by), None, owner);
                self.audit(
                    at,
                    by,
                    Some(cluster),
                    format!("failover {id} started: master {dead_master} dead"),
                );
                CommandResult::Ok {
                    id: Some(id),
                    message: format!("failover {id} started"),
                }
            }
            Command::FailoverStep {
                cluster,
                failover_id,
                step,
                phase,
                detail,
            } => match self.owned_run(req, log, cluster, *failover_id) {
                Err(reason) => rejected(reason),
                Ok(f) => {
                    f.steps.push(FailoverStepRecord {
                        step: step.clone(),
                        phase: *phase,
                        detail: detail.clone(),
                        at_ms: at,
                        by,
                        term: req.term,
                    });
                    ok("step recorded")
                }
            },
            Command::BinlogTailChunk {
                cluster,
                failover_id,
                seq,
                data,
            } => {
                if data.len() > TAIL_CHUNK_MAX {
                    return rejected(format!(
                        "binlog tail chunk of {} bytes exceeds {TAIL_CHUNK_MAX}",
                        data.len()
                    ));
                }
                match self.owned_run(req, log, cluster, *failover_id) {
                    Err(reason) => rejected(reason),
                    Ok(f) => {
                        if f.tail.iter().any(|c| c.seq == *seq) {
                            return ok("chunk already saved");
                        }
                        f.tail.push(BinlogTailChunk {
                            seq: *seq,
                            data: data.clone(),
                        });
                        ok("chunk saved")
                    }
                }
            }
            Command::RelayDiffChunk {
                cluster,
                failover_id,
                name,
                seq,
                data,
            } => {
                if data.len() > TAIL_CHUNK_MAX {
                    return rejected(format!(
                        "relay diff chunk of {} bytes exceeds {TAIL_CHUNK_MAX}",
                        data.len()
                    ));
                }
                match self.owned_run(req, log, cluster, *failover_id) {
                    Err(reason) => rejected(reason),
                    Ok(f) => {
                        let chunks = f.diffs.entry(name.clone()).or_default();
                        if chunks.iter().any(|c| c.seq == *seq) {
                            return ok("chunk already saved");
                        }
                        chunks.push(BinlogTailChunk {
                            seq: *seq,
                            data: data.clone(),
                        });
                        ok("chunk saved")
                    }
                }
            }
            Command::PromoteMaster {
                cluster,
                server,
                expected_epoch,
                failover_id,
            } => {
                if req.enforces_ownership() {
                    // Only a failover's owner promotes; an operation uses OperationPromote.
                    let Some(id) = failover_id else {
                        return rejected("a promotion must name the failover that makes it");
                    };
                    if let Err(reason) = self.owned_run(req, log, cluster, *id) {
                        return rejected(reason);
                    }
                }
                self.promote(at, by, cluster, server, *expected_epoch)
            }
            Command::FailoverFinished {
                cluster,
                failover_id,
                outcome,
                detail,
            } => {
                let (kind, guard) = match self.owned_run(req, log, cluster, *failover_id) {
                    Err(reason) => return rejected(reason),
                    Ok(f) => {
                        f.finished = Some((outcome.clone(), at));
                        f.report = Some(detail.clone()).filter(|d| !d.is_empty());
                        (f.kind(), f.is_failover())
                    }
                };
                if !guard {
                    self.audit(
                        at,
                        by,
                        Some(cluster),
                        format!("{kind} {failover_id} finished: {outcome:?}"),
                    );
                    return ok("finished");
                }
                if let Some(c) = self.clusters.get_mut(cluster) {
                    c.last_failover = Some(LastFailover {
                        failover_id: *failover_id,
                        finished_at_ms: at,
                        outcome: outcome.clone(),
                        acknowledged: false,
                    });
                }
                self.audit(
                    at,
                    by,
                    Some(cluster),
                    format!("failover {failover_id} finished: {outcome:?}"),
                );
                ok("finished")
            }
            Command::SetInitialMaster { cluster, server } => {
                let Some(c) = self.clusters.get_mut(cluster) else {
                    return rejected(format!("no cluster named {cluster:?}"));
                };
                if c.master.is_some() {
                    return rejected(format!("cluster {cluster} already has a master"));
                }
                if !c.spec.servers.iter().any(|s| &s.name == server) {
                    return rejected(format!("cluster {cluster} has no server {server:?}"));
                }
                c.master = Some(server.clone());
                self.audit(
                    at,
                    by,
                    Some(cluster),
                    format!("{server} found to be the master"),
                );
                ok("master recorded")
            }
            Command::OperationStarted {
                cluster,
                server,
                epoch,
                operation,
            } => self.operation_started(at, by, cluster, server, *epoch, operation),
            Command::OperationPromote {
                cluster,
                failover_id,
                server,
                expected_epoch,
            } => match self
                .owned_run(req, log, cluster, *failover_id)
                .map(|_| ())
                .and_then(|()| self.operation_may_promote(cluster, *failover_id))
            {
                Err(reason) => rejected(reason),
                Ok(()) => self.promote(at, by, cluster, server, *expected_epoch),
            },
            Command::RunResumed {
                cluster,
                failover_id,
            } => self.run_resumed(req, log, cluster, *failover_id),
            Command::AckFailover { cluster } => {
                let Some(c) = self.clusters.get_mut(cluster) else {
                    return rejected(format!("no cluster named {cluster:?}"));
                };
                let Some(last) = c.last_failover.as_mut() else {
                    return rejected(format!("cluster {cluster} has no failover to acknowledge"));
                };
                last.acknowledged = true;
                self.audit(at, by, Some(cluster), "last failover acknowledged".into());
                ok("acknowledged")
            }
        }
    }

    /// A server becomes the master if the proposer saw the current epoch (fencing).
    fn promote(
        &mut self,
        at: u64,
        by: Option<u64>,
        cluster: &str,
        server: &str,
        expected_epoch: u64,
    ) -> CommandResult {
        let Some(c) = self.clusters.get_mut(cluster) else {
            return rejected(format!("no cluster named {cluster:?}"));
        };
        if expected_epoch != c.epoch {
            return rejected(format!(
                "stale epoch {expected_epoch}: cluster {cluster} is at epoch {}",
                c.epoch
            ));
        }
        if !c.spec.servers.iter().any(|s| s.name == server) {
            return rejected(format!("cluster {cluster} has no server {server:?}"));
        }
        c.master = Some(server.to_string());
        c.epoch += 1;
        let epoch = c.epoch;
        self.audit(
            at,
            by,
            Some(cluster),
            format!("{server} is master (epoch {epoch})"),
        );
        CommandResult::Ok {
            id: Some(epoch),
            message: format!("epoch {epoch}"),
        }
    }

    pub(super) fn running_failover(
        &mut self,
        cluster: &str,
        id: u64,
    ) -> Result<&mut FailoverRecord, String> {
        let c = self
            .clusters
            .get_mut(cluster)
            .ok_or_else(|| format!("no cluster named {cluster:?}"))?;
        let f = c
            .failovers
            .iter_mut()
            .find(|f| f.id == id)
            .ok_or_else(|| format!("cluster {cluster} has no failover {id}"))?;
        if f.finished.is_some() {
            return Err(format!("failover {id} is already finished"));
        }
        Ok(f)
    }

    pub(super) fn audit(
        &mut self,
        at_ms: u64,
        by: Option<u64>,
        cluster: Option<&str>,
        event: String,
    ) {
        self.audit.push_back(AuditRecord {
            at_ms,
            by,
            cluster: cluster.map(str::to_string),
            event,
        });
        while self.audit.len() > AUDIT_KEEP {
            self.audit.pop_front();
        }
    }
}

#[cfg(test)]
#[path = "model_tests.rs"]
mod tests;
