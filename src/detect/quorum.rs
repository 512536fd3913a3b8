//! The rule that turns the managers' verdicts (read from the replicated state) and the
//! replicas' own view of their master into one decision: is the master dead?
//!
//! - A majority of the configured voting managers must hold a fresh `Dead` verdict about the
//!   current master epoch. A minority cut off from the master never decides; a manager that
//!   stalled (paused, partitioned from the Raft cluster) stops being fresh.
//! - Replica confirmation (orchestrator's `DeadMaster`): every reachable replica of the
//!   master must report that it is not receiving from it; unreachable replicas neither
//!   confirm nor refute. Can be turned off. A replica confirms when its IO thread gave up,
//!   or, while the IO thread still looks connected (a frozen or cut-off host sends no reset
//!   and `slave_net_timeout` is 60 s by default), when neither its received position nor
//!   its heartbeat counter moved for more than `silent_heartbeats` of its heartbeat periods
//!   ([`super::silence`]). A replica whose stream moved refutes.
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::monitor::{Millis, MonitorConfig, Verdict, VerdictReport, millis};
use super::silence::{ReceiveProgress, SilenceTracker};
use crate::db::IoThread;

pub type ManagerId = u64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuorumConfig {
    /// A verdict older than this (by its `observed_at`) no longer counts. Must exceed the
    /// monitors' `reaffirm_every` plus the time to commit a report.
    pub freshness: Duration,
    /// Verdicts stamped this far in the future are accepted (clock skew between managers).
    pub max_clock_skew: Duration,
    /// Require the replicas' confirmation (default on).
    pub replica_confirmation: bool,
    /// A connected replica confirms once its stream (events and heartbeats) stayed still for
    /// more than this many of its heartbeat periods...
    #[serde(default = "default_silent_heartbeats")]
    pub silent_heartbeats: u32,
    /// ...and never for less than this (a tiny period must not turn a hiccup into a verdict).
    #[serde(default = "default_silence_floor")]
    pub silence_floor: Duration,
}

fn default_silent_heartbeats() -> u32 {
    3
}

fn default_silence_floor() -> Duration {
    Duration::from_millis(500)
}

impl Default for QuorumConfig {
    fn default() -> Self {
        QuorumConfig {
            freshness: Duration::from_millis(2500),
            max_clock_skew: Duration::from_millis(500),
            replica_confirmation: true,
            silent_heartbeats: default_silent_heartbeats(),
            silence_floor: default_silence_floor(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum QuorumConfigError {
    #[error(
        "freshness {freshness:?} must exceed the monitors' re-affirmation period plus one \
         interval ({needed:?}), or a manager that still sees the master dead looks stale"
    )]
    FreshnessTooShort {
        freshness: Duration,
        needed: Duration,
    },
}

impl QuorumConfig {
    /// Checks the rule against the monitors feeding it: a `Dead` verdict is re-reported at
    /// most `reaffirm_every + interval` apart (reports happen on check ticks).
    pub fn validate(&self, monitor: &MonitorConfig) -> Result<(), QuorumConfigError> {
        let needed = monitor.reaffirm_every + monitor.interval;
        if self.freshness <= needed {
            return Err(QuorumConfigError::FreshnessTooShort {
                freshness: self.freshness,
                needed,
            });
        }
        Ok(())
    }
}

/// A manager's latest report about a master, as stored in the replicated state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ManagerVerdict {
    pub manager: ManagerId,
    /// The cluster epoch the manager was monitoring (which master it meant).
    pub master_epoch: u64,
    pub report: VerdictReport,
}

/// What one replica says about the master, probed by the deciding manager.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReplicaView {
    /// We could not ask it: it neither confirms nor refutes.
    Unreachable,
    Reachable {
        /// Whether its configured source is the master in question.
        replicates_from_master: bool,
        io_thread: IoThread,
        last_io_errno: u32,
        /// What it has received (`None`: the server shows no heartbeat counter).
        #[serde(default)]
        progress: Option<ReceiveProgress>,
        /// Its `Slave_heartbeat_period` in ms (0: the master sends no heartbeats).
        #[serde(default)]
        heartbeat_period_ms: Option<u64>,
        /// How long `progress` has not moved, by the deciding manager's samples
        /// ([`note_silence`]); `None` until sampled.
        #[serde(default)]
        silent_for_ms: Option<Millis>,
    },
}

impl ReplicaView {
    /// A connected IO thread whose stream stayed still long enough to count as silence.
    fn stream_silent(&self, cfg: &QuorumConfig) -> bool {
        let ReplicaView::Reachable {
            heartbeat_period_ms: Some(period),
            silent_for_ms: Some(silent),
            ..
        } = self
        else {
            return false;
        };
        if *period == 0 {
            return false;
        }
        let needed = period
            .saturating_mul(u64::from(cfg.silent_heartbeats))
            .max(millis(cfg.silence_floor));
        *silent > needed
    }
}

/// Records the progress of every reachable replica of the master in `tracker` (sampled at
/// `at`, the deciding manager's monotonic ms) and fills in how long it has stayed still.
/// Replicas that could not be asked, or replicate from elsewhere, are forgotten.
pub fn note_silence(
    tracker: &mut SilenceTracker,
    evidence: &mut [ReplicaEvidence],
    at: Millis,
    max_gap: Millis,
) {
    for e in evidence {
        match &mut e.view {
            ReplicaView::Reachable {
                replicates_from_master: true,
                progress: Some(p),
                silent_for_ms,
                ..
            } => *silent_for_ms = Some(tracker.observe(&e.replica, p.clone(), at, max_gap)),
            _ => tracker.forget(&e.replica),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaEvidence {
    pub replica: String,
    pub view: ReplicaView,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    MasterDead {
        /// The managers whose fresh `Dead` verdicts formed the majority.
        supporters: Vec<ManagerId>,
        /// Replicas that confirmed (empty when confirmation is off).
        confirming_replicas: Vec<String>,
    },
    NotDead(Refusal),
}

/// Why no failover may start (yet).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    NoQuorum {
        dead_votes: Vec<ManagerId>,
        needed: usize,
        /// Voters whose `Dead` verdict was too old (or from the future beyond the skew).
        stale: Vec<ManagerId>,
        /// Voters whose verdict concerns another master epoch.
        other_epoch: Vec<ManagerId>,
    },
    /// Some reachable replica is still receiving from the master.
    ReplicasStillReceiving { replicas: Vec<String> },
    /// Confirmation is on and no replica of the master could be asked.
    NoReplicaCouldConfirm,
}

/// Decides whether the master of `epoch` is dead. `voters` are the configured voting
/// managers; verdicts from anyone else are ignored. `now` is the deciding manager's clock.
pub fn decide(
    cfg: &QuorumConfig,
    voters: &BTreeSet<ManagerId>,
    epoch: u64,
    verdicts: &[ManagerVerdict],
    now: Millis,
    replicas: &[ReplicaEvidence],
) -> Decision {
    let latest = latest_per_voter(voters, verdicts);
    let (mut dead_votes, mut stale, mut other_epoch) = (Vec::new(), Vec::new(), Vec::new());
    for (id, v) in &latest {
        if v.report.verdict != Verdict::Dead {
            continue;
        }
        if v.master_epoch != epoch {
            other_epoch.push(*id);
        } else if !is_fresh(cfg, v.report.observed_at, now) {
            stale.push(*id);
        } else {
            dead_votes.push(*id);
        }
    }
    let needed = voters.len() / 2 + 1;
    if dead_votes.len() < needed {
        return Decision::NotDead(Refusal::NoQuorum {
            dead_votes,
            needed,
            stale,
            other_epoch,
        });
    }
    if !cfg.replica_confirmation {
        return Decision::MasterDead {
            supporters: dead_votes,
            confirming_replicas: Vec::new(),
        };
    }
    let mut confirming = Vec::new();
    let mut receiving = Vec::new();
    for r in replicas {
        if let ReplicaView::Reachable {
            replicates_from_master: true,
            io_thread,
            ..
        } = &r.view
        {
            if *io_thread == IoThread::Yes && !r.view.stream_silent(cfg) {
                receiving.push(r.replica.clone());
            } else {
                confirming.push(r.replica.clone());
            }
        }
    }
    if !receiving.is_empty() {
        return Decision::NotDead(Refusal::ReplicasStillReceiving {
            replicas: receiving,
        });
    }
    if confirming.is_empty() {
        return Decision::NotDead(Refusal::NoReplicaCouldConfirm);
    }
    Decision::MasterDead {
        supporters: dead_votes,
        confirming_replicas: confirming,
    }
}

/// The latest verdict of each voter (by observation time): the one that counts.
pub(crate) fn latest_per_voter<'a>(
    voters: &BTreeSet<ManagerId>,
    verdicts: &'a [ManagerVerdict],
) -> BTreeMap<ManagerId, &'a ManagerVerdict> {
    let mut latest: BTreeMap<ManagerId, &ManagerVerdict> = BTreeMap::new();
    for v in verdicts.iter().filter(|v| voters.contains(&v.manager)) {
        match latest.get(&v.manager) {
            Some(cur) if cur.report.observed_at >= v.report.observed_at => {}
            _ => {
                latest.insert(v.manager, v);
            }
        }
    }
    latest
}

fn is_fresh(cfg: &QuorumConfig, observed_at: Millis, now: Millis) -> bool {
    if observed_at > now {
        return observed_at - now <= millis(cfg.max_clock_skew);
    }
    now - observed_at <= millis(cfg.freshness)
}

#[cfg(test)]
#[path = "quorum_tests.rs"]
mod tests;
