//! Properties of runs with managers: no false failover while the master is healthy, the
//! failover a scenario exists for actually happened, and the committed manager state survived.
use std::collections::BTreeSet;

use super::{CheckResult, Verdict};
use crate::history::{Event, Record, RunConfig};

fn result(name: &'static str, verdict: Verdict, details: Vec<String>) -> CheckResult {
    CheckResult {
        name,
        verdict,
        details,
    }
}

/// Every (master, epoch) pair the managers reported, in order of first appearance.
fn masters_seen(history: &[Record]) -> Vec<(String, u64)> {
    let mut seen = Vec::new();
    for r in history {
        let pairs: Vec<(Option<&String>, Option<u64>)> = match &r.event {
            Event::ManagerRound { managers, .. } => managers
                .iter()
                .map(|m| (m.master.as_ref(), m.epoch))
                .collect(),
            Event::ManagerFinal { master, epoch, .. } => vec![(master.as_ref(), *epoch)],
            _ => continue,
        };
        for (m, e) in pairs {
            if let (Some(m), Some(e)) = (m, e) {
                let pair = (m.clone(), e);
                if !seen.contains(&pair) {
                    seen.push(pair);
                }
            }
        }
    }
    seen
}

/// No false failover: with `expect_no_failover`, no failover may start and the master and
/// epoch of the replicated state must never change.
pub fn no_false_failover(history: &[Record], cfg: &RunConfig) -> CheckResult {
    const NAME: &str = "no_false_failover";
    if !cfg.expect_no_failover {
        return result(NAME, Verdict::Valid, vec!["not required".into()]);
    }
    let mut violations: Vec<String> = history
        .iter()
        .filter_map(|r| match &r.event {
            Event::Failover {
                failover_id,
                phase,
                detail,
                ..
            } => Some(format!(
                "failover {failover_id} {phase:?} at {} ms: {detail}",
                r.time_ns / 1_000_000
            )),
            _ => None,
        })
        .collect();
    let masters = masters_seen(history);
    if masters.len() > 1 {
        violations.push(format!("the master changed while healthy: {masters:?}"));
    }
    if violations.is_empty() {
        let detail = match masters.first() {
            Some((m, e)) => format!("master {m} at epoch {e} throughout"),
            None => "no manager ever reported a master".into(),
        };
        let verdict = if masters.is_empty() {
            Verdict::Unknown
        } else {
            Verdict::Valid
        };
        result(NAME, verdict, vec![detail])
    } else {
        result(NAME, Verdict::Invalid, violations)
    }
}

/// With `expect_no_failover` the master stays the master, so once everything is healed it
/// must take writes again: a master left fenced (its lease lapsed while the managers could not
/// reach it, and nobody lifted the fence) is an outage the run reports. Failover scenarios are
/// exempt: a new master killed inside the anti-flapping window legitimately stays read-only.
pub fn writable_after_heal(history: &[Record], cfg: &RunConfig) -> CheckResult {
    const NAME: &str = "writable_after_heal";
    if !cfg.expect_no_failover {
        return result(NAME, Verdict::Valid, vec!["not required".into()]);
    }
    let Some(healed) = history
        .iter()
        .find(|r| matches!(r.event, Event::Healed))
        .map(|r| r.time_ns)
    else {
        return result(NAME, Verdict::Valid, vec!["no heal recorded".into()]);
    };
    let first_ack = history
        .iter()
        .filter(|r| r.time_ns > healed && matches!(r.event, Event::Ok { .. }))
        .map(|r| r.time_ns)
        .next();
    match first_ack {
        Some(t) => result(
            NAME,
            Verdict::Valid,
            vec![format!(
                "first write acknowledged {} ms after healing",
                (t - healed) / 1_000_000
            )],
        ),
        None => result(
            NAME,
            Verdict::Invalid,
            vec![
                "no write was acknowledged after healing: the master stayed fenced or unavailable"
                    .into(),
            ],
        ),
    }
}

/// With `expect_failover`, a run in which no failover completed says nothing about the
/// failover path: unknown (e.g. the engine is not part of this build), never valid.
pub fn failover_happened(history: &[Record], cfg: &RunConfig) -> CheckResult {
    const NAME: &str = "failover_happened";
    if !cfg.expect_failover {
        return result(NAME, Verdict::Valid, vec!["not required".into()]);
    }
    let masters = masters_seen(history);
    let completed = history.iter().any(|r| {
        matches!(
            &r.event,
            Event::Failover {
                phase: crate::history::FailoverPhase::Completed,
                ..
            }
        )
    });
    // A switchover whose leader changed before the promotion rolls back (the old master takes
    // writes again): its documented safe outcome, so the run still exercised the switchover.
    let switchover_ended = history.iter().any(|r| match &r.event {
        Event::Journal { runs, .. } => runs
            .iter()
            .any(|j| j.kind == "switchover" && j.finished.is_some()),
        _ => false,
    });
    if completed || masters.len() > 1 || switchover_ended {
        result(NAME, Verdict::Valid, vec![format!("masters: {masters:?}")])
    } else {
        result(
            NAME,
            Verdict::Unknown,
            vec![format!(
                "the scenario needs a failover but none happened (masters seen: {masters:?}); \
                 is the failover engine part of this build?"
            )],
        )
    }
}

/// Committed manager state intact: after healing every manager answers, still holds the
/// registered cluster, and all agree on its master and epoch.
pub fn manager_state_intact(history: &[Record], cfg: &RunConfig) -> CheckResult {
    const NAME: &str = "manager_state_intact";
    if !cfg.managers {
        return result(NAME, Verdict::Valid, vec!["no managers in this run".into()]);
    }
    let mut views = BTreeSet::new();
    let mut problems = Vec::new();
    let mut finals = 0;
    for r in history {
        if let Event::ManagerFinal {
            manager,
            reachable,
            cluster,
            master,
            epoch,
            ..
        } = &r.event
        {
            finals += 1;
            if !reachable {
                problems.push(format!("manager {manager} did not answer after healing"));
                continue;
            }
            if cluster.is_none() {
                problems.push(format!("manager {manager} lost the registered cluster"));
            }
            views.insert((master.clone(), *epoch));
        }
    }
    if finals == 0 {
        return result(
            NAME,
            Verdict::Unknown,
            vec!["no final manager reads".into()],
        );
    }
    if views.len() > 1 {
        problems.push(format!("managers disagree on master/epoch: {views:?}"));
    }
    let lost = problems
        .iter()
        .any(|p| p.contains("lost") || p.contains("disagree"));
    if problems.is_empty() {
        result(
            NAME,
            Verdict::Valid,
            vec![format!("{finals} managers agree: {views:?}")],
        )
    } else if lost {
        result(NAME, Verdict::Invalid, problems)
    } else {
        result(NAME, Verdict::Unknown, problems)
    }
}
