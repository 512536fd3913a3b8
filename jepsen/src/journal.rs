//! Failover phases for the chaos history and the benchmarks, from the engine's journal in
//! the replicated state (see [`raftmha::failover::timing`]).
use raftmha::failover::timing;
use raftmha::state::{FailoverOutcome, FailoverRecord};

use crate::history::FailoverPhase;

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
