//! Failover phases for the chaos history and the benchmarks, from the engine's journal in
//! the replicated state (see [`raftmha::failover::timing`]).
use raftmha::failover::timing;
use raftmha::state::{
    ClusterRecord, FailoverOutcome, FailoverRecord, ManagerState, Operation, StepPhase,
};

use crate::history::{AuditLine, Event, FailoverPhase, JournalRun, JournalStep, StateView};

/// One phase reached, with the journal's time and a line for the history.
#[derive(Debug, Clone, PartialEq)]
pub struct PhaseReached {
    pub phase: FailoverPhase,
    pub at_ms: u64,
    pub detail: String,
}

/// Every phase `f` has reached so far, in phase order.
pub fn phases(f: &FailoverRecord) -> Vec<PhaseReached> {
    let mut out = vec![PhaseReached {
        phase: FailoverPhase::Started,
        at_ms: f.started_at_ms,
        detail: format!("dead master {}", f.dead_master),
    }];
    if let Some(at_ms) = timing::fenced_at(f) {
        out.push(PhaseReached {
            phase: FailoverPhase::Fenced,
            at_ms,
            detail: "old master fenced, replicas frozen".into(),
        });
    }
    if let Some((at_ms, new_master)) = timing::promoted_at(f) {
        out.push(PhaseReached {
            phase: FailoverPhase::Promoted,
            at_ms,
            detail: format!("{new_master}: read_only=OFF"),
        });
    }
    match &f.finished {
        Some((FailoverOutcome::Succeeded, at_ms)) => out.push(PhaseReached {
            phase: FailoverPhase::Completed,
            at_ms: *at_ms,
            detail: "succeeded".into(),
        }),
        Some((outcome, at_ms)) => out.push(PhaseReached {
            phase: FailoverPhase::Aborted,
            at_ms: *at_ms,
            detail: format!("{outcome:?}"),
        }),
        None => {}
    }
    out
}

/// When `f` reached `phase`, if it did.
pub fn reached_at(f: &FailoverRecord, phase: FailoverPhase) -> Option<u64> {
    phases(f)
        .into_iter()
        .find(|p| p.phase == phase)
        .map(|p| p.at_ms)
}

/// The server `f` made writable (its `read_only=OFF` step journaled as done): a failover's
/// planned new master, or a switchover's target once `sw.enable-writes` is done.
pub fn promoted(f: &FailoverRecord) -> Option<String> {
    match &f.operation {
        Some(Operation::Switchover { new_master, .. }) => {
            raftmha::failover::runner::result_of(f, "sw.enable-writes").map(|_| new_master.clone())
        }
        _ => timing::promoted_at(f).map(|(_, name)| name),
    }
}

/// The cluster as a database round is judged against it; servers through `addr`.
pub fn state_view(c: &ClusterRecord, addr: &dyn Fn(&str) -> String) -> StateView {
    StateView {
        master: c.master.as_deref().map(addr),
        epoch: c.epoch,
        promoting: c
            .failovers
            .iter()
            .filter(|f| f.finished.is_none() && f.is_failover())
            .filter_map(|f| timing::plan_of(f).map(|p| addr(&p.new_master.name)))
            .collect(),
    }
}

/// The journal of `cluster` in `state` (records without binlog chunks, and the cluster's
/// audit trail) as the history keeps it; servers through `addr`.
pub fn journal_event(state: &ManagerState, cluster: &str, addr: &dyn Fn(&str) -> String) -> Event {
    let runs = state
        .clusters
        .get(cluster)
        .map(|c| {
            c.failovers
                .iter()
                .map(|f| JournalRun {
                    id: f.id,
                    kind: f.kind().to_string(),
                    dead_master: addr(&f.dead_master),
                    epoch: f.epoch,
                    started_at_ms: f.started_at_ms,
                    started_by: f.started_by,
                    owner: f.owner.map(|o| (o.manager, o.term)),
                    steps: f
                        .steps
                        .iter()
                        .map(|s| JournalStep {
                            step: s.step.clone(),
                            result: s.phase == StepPhase::Result,
                            at_ms: s.at_ms,
                            by: s.by,
                            term: s.term,
                        })
                        .collect(),
                    finished: f.finished.as_ref().map(|(o, at)| (format!("{o:?}"), *at)),
                    promoted: promoted(f).map(|n| addr(&n)),
                })
                .collect()
        })
        .unwrap_or_default();
    let audit = state
        .audit
        .iter()
        .filter(|a| a.cluster.as_deref() == Some(cluster))
        .map(|a| AuditLine {
            at_ms: a.at_ms,
            by: a.by,
            event: a.event.clone(),
        })
        .collect();
    Event::Journal { runs, audit }
}
