//! The failover planner: plain functions from observed state to an ordered, typed list of
//! steps the engine journals (intent, then result) and executes. It follows MHA's phases:
//!
//! - Phase 2 ([`plan_fencing`]): fence the old master and stop every replica's IO thread, so
//!   positions freeze. The engine re-probes the replicas afterwards.
//! - Phases 3–5 ([`plan_failover`], from the frozen state): latest and oldest replicas, the
//!   dead master's binlog tail, the new master and how to bring it level, every other
//!   replica's recovery and repointing, cleanup.
//!
//! Every step names its servers and carries the coordinates it needs, so a successor leader
//! can resume from the journal; values known only at run time (the new master's binlog
//! position after recovery, the saved tail) are recorded as step results.
use serde::{Deserialize, Serialize};

use super::input::{FailoverInput, ServerRef, Survivor};
use super::select::{
    self, LostReplica, Mode, Rejection, SelectionReason, choose, errant, latest_and_oldest,
    rejections, survivors,
};
use crate::db::{BinlogCoord, GtidSet};

pub use super::select::PlanError;

/// MHA's phase numbers, kept so logs and reports read like MHA's.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Phase {
    /// Phase 2: dead master shutdown (fencing) and freezing the replicas.
    Fence,
    /// Phase 3: master recovery.
    MasterRecovery,
    /// Phase 4: the other replicas.
    ReplicaRecovery,
    /// Phase 5: cleanup and completion.
    Cleanup,
}

/// Steps in different `Server` lanes between two `Serial` steps may run concurrently;
/// steps in one lane run in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Lane {
    Serial,
    Server(String),
}

/// How a replica is pointed at the new master.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum RepointBy {
    /// At the new master's binlog position captured after its recovery
    /// ([`Action::CaptureNewMasterPosition`]'s result).
    CapturedPosition,
    /// GTID auto-positioning; then wait (bounded) for the new master's GTID set.
    Gtid,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Action {
    /// `read_only=ON` (super_read_only where it exists) and kill client sessions, if the old
    /// master answers at all.
    FenceOldMaster { master: ServerRef },
    /// `master_ip_failover_script --command=stop|stopssh` (stopssh when its host is up).
    MasterIpFailoverStop {
        master: ServerRef,
        host_reachable: bool,
    },
    /// `shutdown_script --command=stop|stopssh` (exit 10: mysqld killed, host kept up).
    ShutdownScript {
        master: ServerRef,
        host_reachable: bool,
    },
    /// `STOP SLAVE IO_THREAD` and wait (bounded) until it reports stopped.
    StopIoThread { replica: String },
    /// Save the dead master's binlog from `from` to its end through its host's agent, into the
    /// Raft log in chunks. An empty tail (nothing after `from`) is a success.
    SaveMasterTail {
        master: ServerRef,
        from: BinlogCoord,
    },
    /// Wait (bounded) until the SQL thread executed everything received (`read`); start the
    /// SQL thread first if it stopped without error (the wait functions return NULL while it
    /// is stopped). If it stops short because the relay log ends inside a transaction, the
    /// engine applies the replica's own relay log from the executed position (MHA's
    /// exec→read diff) with the pieces that follow.
    WaitRelayLogApplied { server: String, read: BinlogCoord },
    /// Cut the donor's relay log from the target's received position to the donor's (MHA
    /// `apply_diff_relay_logs --command=generate`). Done for every target before any
    /// `Repoint`, because CHANGE MASTER deletes relay logs.
    GenerateRelayDiff {
        donor: String,
        target: String,
        from: BinlogCoord,
        to: BinlogCoord,
    },
    /// Apply that diff on the target.
    ApplyRelayDiff { donor: String, target: String },
    /// Replicate (temporarily) from the most advanced replica until the target executed
    /// `until` (bounded), then stop replication.
    GtidCatchUp {
        target: String,
        donor: String,
        until: GtidSet,
    },
    /// Apply the saved dead-master tail; nothing to do when none was saved.
    ApplyMasterTail { target: String },
    /// Read the new master's binlog coordinates (and GTID state) after recovery.
    CaptureNewMasterPosition { new_master: String },
    /// `read_only=OFF` on the new master.
    EnableWrites { new_master: String },
    /// `master_ip_failover_script --command=start`.
    MasterIpFailoverStart { new_master: String },
    /// `STOP SLAVE; CHANGE MASTER TO new master; START SLAVE`, restoring `relay_log_purge`.
    Repoint {
        replica: String,
        new_master: String,
        by: RepointBy,
    },
    /// `RESET SLAVE ALL` on the new master.
    ResetReplicaOnNewMaster { new_master: String },
    /// Bump the cluster's epoch and record the new master (a Raft entry).
    CompleteFailover { new_master: String },
    /// `report_script` with MHA's arguments.
    ReportScript,
}

impl std::fmt::Display for Phase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Phase::Fence => "Phase 2: Dead Master Shutdown",
            Phase::MasterRecovery => "Phase 3: Master Recovery",
            Phase::ReplicaRecovery => "Phase 4: Slaves Recovery",
            Phase::Cleanup => "Phase 5: New master cleanup",
        })
    }
}

impl std::fmt::Display for Action {
    /// One line for the live progress output and logs (never holds a secret).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Action::FenceOldMaster { master } => {
                write!(f, "fence {master}: read_only, kill client sessions")
            }
            Action::MasterIpFailoverStop {
                master,
                host_reachable,
            } => {
                let cmd = if *host_reachable { "stopssh" } else { "stop" };
                write!(f, "master_ip_failover_script --command={cmd} for {master}")
            }
            Action::ShutdownScript {
                master,
                host_reachable,
            } => {
                let cmd = if *host_reachable { "stopssh" } else { "stop" };
                write!(f, "shutdown_script --command={cmd} for {master}")
            }
            Action::StopIoThread { replica } => write!(f, "{replica}: stop IO thread"),
            Action::SaveMasterTail { master, from } => {
                write!(f, "save {master}'s binlog from {from}")
            }
            Action::WaitRelayLogApplied { server, read } => {
                write!(f, "{server}: apply relay logs up to {read}")
            }
            Action::GenerateRelayDiff {
                donor,
                target,
                from,
                to,
            } => {
                write!(f, "{donor}: relay-log diff {from} → {to} for {target}")
            }
            Action::ApplyRelayDiff { donor, target } => {
                write!(f, "{target}: apply relay-log diff from {donor}")
            }
            Action::GtidCatchUp {
                target,
                donor,
                until,
            } => write!(f, "{target}: catch up from {donor} to {until}"),
            Action::ApplyMasterTail { target } => {
                write!(f, "{target}: apply the dead master's saved binlog")
            }
            Action::CaptureNewMasterPosition { new_master } => {
                write!(f, "{new_master}: read binlog position")
            }
            Action::EnableWrites { new_master } => write!(f, "{new_master}: read_only=OFF"),
            Action::MasterIpFailoverStart { new_master } => {
                write!(
                    f,
                    "master_ip_failover_script --command=start for {new_master}"
                )
            }
            Action::Repoint {
                replica,
                new_master,
                by,
            } => {
                let how = match by {
                    RepointBy::CapturedPosition => "at the captured position",
                    RepointBy::Gtid => "by GTID",
                };
                write!(f, "{replica}: replicate from {new_master} {how}")
            }
            Action::ResetReplicaOnNewMaster { new_master } => {
                write!(f, "{new_master}: RESET SLAVE ALL")
            }
            Action::CompleteFailover { new_master } => {
                write!(f, "record {new_master} as master, bump the epoch")
            }
            Action::ReportScript => f.write_str("report_script"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Step {
    /// Position in the plan, stable across leaders: the journal refers to steps by id.
    pub id: u32,
    pub phase: Phase,
    pub lane: Lane,
    pub action: Action,
}

/// What one survivor needs to reach the same end as everyone else.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Need {
    /// Its SQL thread has not executed everything it received.
    OwnRelayLog {
        exec: BinlogCoord,
        read: BinlogCoord,
    },
    RelayDiff {
        donor: String,
        from: BinlogCoord,
        to: BinlogCoord,
    },
    GtidCatchUp {
        donor: String,
        until: GtidSet,
    },
    /// Only meaningful if the tail is saved.
    MasterTail,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Recovery {
    pub server: ServerRef,
    pub is_new_master: bool,
    /// Received everything any replica received.
    pub is_latest: bool,
    /// Its frozen received position (`Master_Log_File`, `Read_Master_Log_Pos`).
    pub read: BinlogCoord,
    pub needs: Vec<Need>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverPlan {
    pub cluster: String,
    pub dead_master: ServerRef,
    pub mode: Mode,
    pub latest: Vec<ServerRef>,
    pub oldest: Vec<ServerRef>,
    /// The most advanced replica: source of relay-log diffs and GTID catch-up.
    pub base: ServerRef,
    pub new_master: ServerRef,
    pub selection: SelectionReason,
    /// Replicas that could not be the new master, and why (for the log and report).
    pub rejected: Vec<(ServerRef, Vec<Rejection>)>,
    /// Replicas holding transactions nobody else has.
    pub errant: Vec<(ServerRef, GtidSet)>,
    /// Where the dead master's tail is saved from, when it is.
    pub save_tail_from: Option<BinlogCoord>,
    /// The new master first, then the others in configuration order.
    pub recoveries: Vec<Recovery>,
    pub lost: Vec<LostReplica>,
    pub steps: Vec<Step>,
}

/// Phase 2: fence the old master and freeze every reachable replica.
pub fn plan_fencing(input: &FailoverInput) -> Vec<Step> {
    let mut b = StepBuilder::default();
    let master = &input.dead_master;
    b.push(
        Phase::Fence,
        Lane::Server(master.server.name.clone()),
        Action::FenceOldMaster {
            master: master.server.clone(),
        },
    );
    for r in &input.replicas {
        if matches!(r.state, super::input::ReplicaState::Reachable(_)) {
            let replica = r.server.name.clone();
            b.push(
                Phase::Fence,
                Lane::Server(replica.clone()),
                Action::StopIoThread { replica },
            );
        }
    }
    let reachable = master.host_reachable;
    if input.policy.master_ip_failover_script {
        b.serial(
            Phase::Fence,
            Action::MasterIpFailoverStop {
                master: master.server.clone(),
                host_reachable: reachable,
            },
        );
    }
    if input.policy.shutdown_script {
        b.serial(
            Phase::Fence,
            Action::ShutdownScript {
                master: master.server.clone(),
                host_reachable: reachable,
            },
        );
    }
    b.steps
}

/// Phases 3–5 from the state observed after the IO threads were stopped.
pub fn plan_failover(input: &FailoverInput) -> Result<FailoverPlan, PlanError> {
    check_unique_names(input)?;
    let (mut alive, lost) = survivors(input)?;
    let mode = select::mode_and_received(&mut alive);
    let errant_sets: Vec<Option<GtidSet>> = match mode {
        Mode::Gtid => alive
            .iter()
            .map(|s| errant(&input.dead_master, s, &alive))
            .collect(),
        Mode::FilePosition => vec![None; alive.len()],
    };
    let errant_names: Vec<String> = alive
        .iter()
        .zip(&errant_sets)
        .filter(|(_, e)| e.is_some())
        .map(|(s, _)| s.name().to_string())
        .collect();
    let (latest, oldest) = latest_and_oldest(mode, &alive, &errant_names)?;
    let latest_s = &alive[latest[0]];
    let rejected: Vec<Vec<Rejection>> = alive
        .iter()
        .zip(&errant_sets)
        .map(|(s, e)| rejections(input, s, &alive, latest_s, e.as_ref()))
        .collect();
    let (nm, selection) = choose(input, &alive, &latest, &rejected)?;
    let base = if latest.contains(&nm) { nm } else { latest[0] };

    let tail_from = (input.policy.save_master_binlog && input.dead_master.host_reachable)
        .then(|| alive[base].read().clone());
    let mut recoveries = Vec::new();
    let order = std::iter::once(nm).chain((0..alive.len()).filter(|&i| i != nm));
    for i in order {
        recoveries.push(Recovery {
            server: alive[i].server.clone(),
            is_new_master: i == nm,
            is_latest: latest.contains(&i),
            read: alive[i].read().clone(),
            needs: needs(mode, &alive, i, nm, base, tail_from.is_some()),
        });
    }
    let steps = recovery_steps(input, mode, &alive[nm], &recoveries, tail_from.as_ref());
    let names = |v: &[usize]| v.iter().map(|&i| alive[i].server.clone()).collect();
    Ok(FailoverPlan {
        cluster: input.cluster.clone(),
        dead_master: input.dead_master.server.clone(),
        mode,
        latest: names(&latest),
        oldest: names(&oldest),
        base: alive[base].server.clone(),
        new_master: alive[nm].server.clone(),
        selection,
        rejected: alive
            .iter()
            .zip(&rejected)
            .filter(|(_, r)| !r.is_empty())
            .map(|(s, r)| (s.server.clone(), r.clone()))
            .collect(),
        errant: alive
            .iter()
            .zip(errant_sets)
            .filter_map(|(s, e)| Some((s.server.clone(), e?)))
            .collect(),
        save_tail_from: tail_from,
        recoveries,
        lost,
        steps,
    })
}

fn check_unique_names(input: &FailoverInput) -> Result<(), PlanError> {
    let mut seen = std::collections::BTreeSet::new();
    let names =
        std::iter::once(&input.dead_master.server).chain(input.replicas.iter().map(|r| &r.server));
    for s in names {
        if !seen.insert(s.name.as_str()) {
            return Err(PlanError::DuplicateServer(s.name.clone()));
        }
    }
    Ok(())
}

/// What survivor `i` needs. File/position: every survivor gets the diff from the base and the
/// tail. GTID: only the new master is brought level; the others catch up from it.
fn needs(
    mode: Mode,
    alive: &[Survivor<'_>],
    i: usize,
    nm: usize,
    base: usize,
    tail: bool,
) -> Vec<Need> {
    let s = &alive[i];
    let mut out = Vec::new();
    if s.status.exec != s.status.read {
        out.push(Need::OwnRelayLog {
            exec: s.status.exec.clone(),
            read: s.status.read.clone(),
        });
    }
    let donor = &alive[base];
    match mode {
        Mode::FilePosition => {
            if s.read() < donor.read() {
                out.push(Need::RelayDiff {
                    donor: donor.name().to_string(),
                    from: s.read().clone(),
                    to: donor.read().clone(),
                });
            }
        }
        Mode::Gtid if i == nm => {
            let behind = match (&s.received, &donor.received) {
                (Some(mine), Some(best)) => !mine.contains(best).unwrap_or(false),
                _ => false,
            };
            if behind {
                let vars = &donor.facts.variables;
                match (&donor.received, vars.log_bin && vars.log_slave_updates) {
                    (Some(until), true) => out.push(Need::GtidCatchUp {
                        donor: donor.name().to_string(),
                        until: until.clone(),
                    }),
                    _ => out.push(Need::RelayDiff {
                        donor: donor.name().to_string(),
                        from: s.read().clone(),
                        to: donor.read().clone(),
                    }),
                }
            }
        }
        Mode::Gtid => return out,
    }
    if tail && (mode == Mode::FilePosition || i == nm) {
        out.push(Need::MasterTail);
    }
    out
}

fn recovery_steps(
    input: &FailoverInput,
    mode: Mode,
    new_master: &Survivor<'_>,
    recoveries: &[Recovery],
    tail_from: Option<&BinlogCoord>,
) -> Vec<Step> {
    let mut b = StepBuilder::default();
    let nm = new_master.name().to_string();
    if let Some(from) = tail_from {
        b.serial(
            Phase::MasterRecovery,
            Action::SaveMasterTail {
                master: input.dead_master.server.clone(),
                from: from.clone(),
            },
        );
    }
    // Every diff is cut before anyone is repointed: CHANGE MASTER deletes relay logs.
    for r in recoveries {
        for need in &r.needs {
            if let Need::RelayDiff { donor, from, to } = need {
                let target = r.server.name.clone();
                let action = Action::GenerateRelayDiff {
                    donor: donor.clone(),
                    target: target.clone(),
                    from: from.clone(),
                    to: to.clone(),
                };
                b.push(Phase::MasterRecovery, Lane::Server(target), action);
            }
        }
    }
    for r in recoveries {
        let name = r.server.name.clone();
        let phase = if r.is_new_master {
            Phase::MasterRecovery
        } else {
            Phase::ReplicaRecovery
        };
        let lane = if r.is_new_master {
            Lane::Serial
        } else {
            Lane::Server(name.clone())
        };
        if r.is_new_master || mode == Mode::FilePosition {
            let read = r.read.clone();
            b.push(
                phase,
                lane.clone(),
                Action::WaitRelayLogApplied {
                    server: name.clone(),
                    read,
                },
            );
        }
        for need in &r.needs {
            let action = match need {
                Need::OwnRelayLog { .. } => continue,
                Need::RelayDiff { donor, .. } => Action::ApplyRelayDiff {
                    donor: donor.clone(),
                    target: name.clone(),
                },
                Need::GtidCatchUp { donor, until } => Action::GtidCatchUp {
                    target: name.clone(),
                    donor: donor.clone(),
                    until: until.clone(),
                },
                Need::MasterTail => Action::ApplyMasterTail {
                    target: name.clone(),
                },
            };
            b.push(phase, lane.clone(), action);
        }
        if r.is_new_master {
            b.serial(
                phase,
                Action::CaptureNewMasterPosition {
                    new_master: nm.clone(),
                },
            );
            // The new master forgets its source before it takes writes: every relay-log
            // diff was cut and journaled before any recovery, so its relay logs are no longer
            // needed, and a crash from here on can never restart its replication from the
            // old master at boot (MariaDB starts configured replicas without
            // skip_slave_start), whatever happens to this failover.
            if !input.policy.skip_reset_slave {
                b.serial(
                    phase,
                    Action::ResetReplicaOnNewMaster {
                        new_master: nm.clone(),
                    },
                );
            }
            b.serial(
                phase,
                Action::EnableWrites {
                    new_master: nm.clone(),
                },
            );
            if input.policy.master_ip_failover_script {
                b.serial(
                    phase,
                    Action::MasterIpFailoverStart {
                        new_master: nm.clone(),
                    },
                );
            }
            // Clients may use the new master from here on (MHA moves the VIP at this point
            // too): record it and bump the epoch before the other replicas are recovered.
            b.serial(
                phase,
                Action::CompleteFailover {
                    new_master: nm.clone(),
                },
            );
        } else {
            let by = match mode {
                Mode::Gtid => RepointBy::Gtid,
                Mode::FilePosition => RepointBy::CapturedPosition,
            };
            b.push(
                phase,
                lane,
                Action::Repoint {
                    replica: name,
                    new_master: nm.clone(),
                    by,
                },
            );
        }
    }
    if input.policy.report_script {
        b.serial(Phase::Cleanup, Action::ReportScript);
    }
    b.steps
}

#[derive(Default)]
struct StepBuilder {
    steps: Vec<Step>,
}

impl StepBuilder {
    fn push(&mut self, phase: Phase, lane: Lane, action: Action) {
        let id = u32::try_from(self.steps.len()).unwrap_or(u32::MAX);
        self.steps.push(Step {
            id,
            phase,
            lane,
            action,
        });
    }

    fn serial(&mut self, phase: Phase, action: Action) {
        self.push(phase, Lane::Serial, action);
    }
}

#[cfg(test)]
#[path = "plan_tests.rs"]
pub(crate) mod tests;

#[cfg(test)]
#[path = "plan_gtid_tests.rs"]
mod gtid_tests;
