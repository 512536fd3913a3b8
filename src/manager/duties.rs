//! What the leader must do for each cluster, as plain functions of the replicated state, the
//! voters and the clock: the reconciler's decisions, with no I/O. [`super::supervise`]
//! performs the duties (as leader-scoped tasks) and gathers the one observation a decision
//! may need on the way, the replicas' confirmation that a dead master is dead.
//!
//! Policy, in order: an unfinished run (failover or operator operation) is run or resumed
//! first; a cluster without a known master has it discovered; otherwise a majority of fresh
//! `Dead` verdicts (and, when configured, the replicas' confirmation) starts a failover,
//! unless failover is paused or the last one finished within `last_failover_minute` and is not
//! acknowledged (MHA's anti-flapping rule).
use std::collections::BTreeSet;
use std::time::Duration;

use crate::db::PingType;
use crate::detect::{
    Decision, ManagerVerdict, MonitorConfig, QuorumConfig, ReplicaEvidence, Verdict, decide,
};
use crate::state::cluster_file::{self, ClusterSpec};
use crate::state::{ClusterRecord, FailoverOutcome, FailoverRecord};

/// One thing the leader does for one cluster now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Duty {
    /// Nothing: the master is alive as far as anyone can tell.
    Idle,
    /// Run (or resume) this unfinished failover or operation.
    Run(Box<FailoverRecord>),
    /// Find the master of a newly registered cluster.
    DiscoverMaster,
    /// A majority of managers finds `master` dead: ask its replicas, then decide with
    /// [`failover_decision`].
    ConfirmWithReplicas { master: String },
    /// Start the failover of `master`: dead by quorum, and the policy allows it.
    FailOver {
        master: String,
        supporters: Vec<u64>,
    },
    /// Someone finds the master dead, but no failover may start: why.
    Hold(String),
}

/// The duty for cluster `c` (not busy with a task), with `voters` the Raft voters and `now`
/// the wall clock in milliseconds.
pub fn analyze(c: &ClusterRecord, voters: &BTreeSet<u64>, now: u64) -> Duty {
    if let Some(f) = c.failovers.iter().find(|f| f.finished.is_none()) {
        return Duty::Run(Box::new(f.clone()));
    }
    let Some(master) = &c.master else {
        return Duty::DiscoverMaster;
    };
    let verdicts = manager_verdicts(c, master);
    if !verdicts.iter().any(|v| v.report.verdict == Verdict::Dead) {
        return Duty::Idle;
    }
    // Managers first (cheap, from the log); only then ask the replicas.
    let mut quorum = quorum_config(&c.spec);
    quorum.replica_confirmation = false;
    if let Decision::NotDead(r) = decide(&quorum, voters, c.epoch, &verdicts, now, &[]) {
        return Duty::Hold(format!("{r:?}"));
    }
    if c.spec.settings.replica_confirmation {
        return Duty::ConfirmWithReplicas {
            master: master.clone(),
        };
    }
    match failover_decision(c, voters, now, &[]) {
        Ok(supporters) => Duty::FailOver {
            master: master.clone(),
            supporters,
        },
        Err(why) => Duty::Hold(why),
    }
}

/// Whether the failover of `c`'s master may start given the replicas' `evidence`: the
/// managers that support it, or why not.
pub fn failover_decision(
    c: &ClusterRecord,
    voters: &BTreeSet<u64>,
    now: u64,
    evidence: &[ReplicaEvidence],
) -> Result<Vec<u64>, String> {
    let master = c.master.as_deref().ok_or("master not known")?;
    let verdicts = manager_verdicts(c, master);
    let quorum = quorum_config(&c.spec);
    let supporters = match decide(&quorum, voters, c.epoch, &verdicts, now, evidence) {
        Decision::NotDead(r) => return Err(format!("{r:?}")),
        Decision::MasterDead { supporters, .. } => supporters,
    };
    if let Some(why) = policy_hold(c, now) {
        return Err(why);
    }
    Ok(supporters)
}

/// Why the policy holds a failover back (pause, anti-flapping), if it does.
pub fn policy_hold(c: &ClusterRecord, now: u64) -> Option<String> {
    if c.paused {
        return Some("failover is paused".into());
    }
    let last = c.last_failover.as_ref()?;
    let window = c.spec.settings.last_failover_minute * 60_000;
    if !last.acknowledged && now.saturating_sub(last.finished_at_ms) < window {
        return Some(format!(
            "the last failover ({}) finished less than {} minutes ago and is not \
             acknowledged: run `raftmha ack` (MHA's last_failover_minute)",
            last.failover_id, c.spec.settings.last_failover_minute
        ));
    }
    None
}

/// Masters failed over earlier (and not the master now) that must stay read-only should they
/// answer again; none while a run is unfinished (a switchover may be promoting one of them).
pub fn returned_masters(c: &ClusterRecord) -> BTreeSet<String> {
    if c.failovers.iter().any(|f| f.finished.is_none()) {
        return BTreeSet::new();
    }
    c.failovers
        .iter()
        .filter(|f| matches!(f.finished, Some((FailoverOutcome::Succeeded, _))))
        .map(|f| f.dead_master.clone())
        .filter(|m| c.master.as_deref() != Some(m.as_str()))
        .collect()
}

/// Whether `name` is still a failed-over old master in `c` (checked again right before a
/// fence, against the latest applied state).
pub fn still_returned(c: &ClusterRecord, name: &str) -> bool {
    c.master.as_deref() != Some(name) && c.failovers.iter().all(|f| f.finished.is_some())
}

/// The managers' latest verdicts about `master`, as the quorum rule reads them.
pub fn manager_verdicts(c: &ClusterRecord, master: &str) -> Vec<ManagerVerdict> {
    crate::failover::lease_lapse::journaled_verdicts(c, master)
}

pub fn monitor_config(spec: &ClusterSpec) -> MonitorConfig {
    let s = &spec.settings;
    let interval = Duration::from_millis(s.ping_interval_ms);
    MonitorConfig {
        ping_type: match s.ping_type {
            cluster_file::PingType::Select => PingType::Select,
            cluster_file::PingType::Connect => PingType::Connect,
            cluster_file::PingType::Insert => PingType::Insert,
        },
        interval,
        suspect_interval: interval.min(Duration::from_millis(100)),
        failures_to_dead: s.ping_failures,
        reaffirm_every: interval.max(Duration::from_millis(1000)),
    }
}

pub fn quorum_config(spec: &ClusterSpec) -> QuorumConfig {
    let monitor = monitor_config(spec);
    let d = QuorumConfig::default();
    QuorumConfig {
        freshness: d
            .freshness
            .max(monitor.reaffirm_every + monitor.interval * 3),
        replica_confirmation: spec.settings.replica_confirmation,
        ..d
    }
}

#[cfg(test)]
#[path = "duties_tests.rs"]
mod tests;
