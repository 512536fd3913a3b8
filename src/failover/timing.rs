//! When each phase of a failover ended, read from its journal in the replicated state.
//!
//! The engine names steps by position (`fence.<id>`, `step.<id>`); what each id does is in
//! the journaled plans (`fence-plan`, `plan`), so phases are found through them. Times are the
//! Raft entries' own `at_ms` (the proposing manager's clock), so any manager can compute them
//! after the fact: the metrics, the benchmarks and the chaos history all read them from here.
use super::plan::{Action, FailoverPlan, Phase, Step};
use crate::state::{FailoverRecord, FailoverStepRecord, StepPhase};

/// The last result journaled for `step`.
pub fn result_of<'a>(f: &'a FailoverRecord, step: &str) -> Option<&'a FailoverStepRecord> {
    f.steps
        .iter()
        .rev()
        .find(|s| s.phase == StepPhase::Result && s.step == step)
}

/// The journaled failover plan, once phase 3 wrote it.
pub fn plan_of(f: &FailoverRecord) -> Option<FailoverPlan> {
    serde_json::from_str(&result_of(f, "plan")?.detail).ok()
}

/// The journaled fencing steps, once phase 2 wrote them.
pub fn fence_plan_of(f: &FailoverRecord) -> Option<Vec<Step>> {
    serde_json::from_str(&result_of(f, "fence-plan")?.detail).ok()
}

fn succeeded(r: &FailoverStepRecord) -> bool {
    !r.detail.starts_with("failed")
}

/// When the old master was fenced and every IO thread stopped: the last fencing result.
pub fn fenced_at(f: &FailoverRecord) -> Option<u64> {
    let fencing = fence_plan_of(f)?;
    let times: Option<Vec<u64>> = fencing
        .iter()
        .map(|s| result_of(f, &format!("fence.{}", s.id)).map(|r| r.at_ms))
        .collect();
    Some(times?.into_iter().max().unwrap_or(f.started_at_ms))
}

/// When the new master took writes (`read_only=OFF` journaled as done), and its name.
pub fn promoted_at(f: &FailoverRecord) -> Option<(u64, String)> {
    let plan = plan_of(f)?;
    plan.steps.iter().find_map(|s| match &s.action {
        Action::EnableWrites { new_master } => result_of(f, &format!("step.{}", s.id))
            .filter(|r| succeeded(r))
            .map(|r| (r.at_ms, new_master.clone())),
        _ => None,
    })
}

fn phase_name(p: Phase) -> &'static str {
    match p {
        Phase::Fence => "fence",
        Phase::MasterRecovery => "master_recovery",
        Phase::ReplicaRecovery => "replica_recovery",
        Phase::Cleanup => "cleanup",
    }
}

/// Seconds each finished phase took, in order: `fence` (start → last fencing result), `plan`
/// (re-probe and plan), then MHA's phases 3–5 as the plan's steps finished, and `total`
/// (start → the finishing entry). Phases without a journaled end are left out.
pub fn phase_durations(f: &FailoverRecord) -> Vec<(&'static str, f64)> {
    let secs = |from: u64, to: u64| to.saturating_sub(from) as f64 / 1000.0;
    let mut out = Vec::new();
    let mut last = f.started_at_ms;
    if let Some(at) = fenced_at(f) {
        out.push(("fence", secs(last, at)));
        last = at;
    }
    if let (Some(plan), Some(r)) = (plan_of(f), result_of(f, "plan")) {
        out.push(("plan", secs(last, r.at_ms)));
        last = r.at_ms;
        for phase in [
            Phase::MasterRecovery,
            Phase::ReplicaRecovery,
            Phase::Cleanup,
        ] {
            let ends: Option<Vec<u64>> = plan
                .steps
                .iter()
                .filter(|s| s.phase == phase)
                .map(|s| result_of(f, &format!("step.{}", s.id)).map(|r| r.at_ms))
                .collect();
            match ends {
                Some(ends) if !ends.is_empty() => {
                    let end = ends.into_iter().max().unwrap_or(last);
                    out.push((phase_name(phase), secs(last, end)));
                    last = end;
                }
                Some(_) => {}
                None => break,
            }
        }
    }
    if let Some((_, at)) = &f.finished {
        out.push(("total", secs(f.started_at_ms, *at)));
    }
    out
}

#[cfg(test)]
#[path = "timing_tests.rs"]
mod tests;
