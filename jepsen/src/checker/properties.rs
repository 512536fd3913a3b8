//! The safety properties, one function each (numbering after style_and_chaos.md §B.6).
use std::collections::{BTreeMap, BTreeSet};

use super::{CheckResult, Verdict};
use crate::history::{Event, FailoverPhase, NemesisAction, NemesisOutcome, Record, RunConfig};

fn result(name: &'static str, verdict: Verdict, details: Vec<String>) -> CheckResult {
    CheckResult {
        name,
        verdict,
        details,
    }
}

fn config(history: &[Record]) -> Option<&RunConfig> {
    history.iter().find_map(|r| match &r.event {
        Event::Config(c) => Some(c),
        _ => None,
    })
}

/// Coverage: a run that never installed the faults it exists for proves nothing.
pub fn required_faults_installed(history: &[Record]) -> CheckResult {
    const NAME: &str = "required_faults_installed";
    let Some(cfg) = config(history) else {
        return result(
            NAME,
            Verdict::Unknown,
            vec!["history has no config record".into()],
        );
    };
    let installed: BTreeSet<&str> = history
        .iter()
        .filter_map(|r| match &r.event {
            Event::Nemesis {
                fault,
                action: NemesisAction::Start,
                outcome: NemesisOutcome::Installed,
                ..
            } => Some(fault.as_str()),
            _ => None,
        })
        .collect();
    let missing: Vec<String> = cfg
        .required_faults
        .iter()
        .filter(|f| !installed.contains(f.as_str()))
        .map(|f| format!("required fault {f} never installed"))
        .collect();
    if missing.is_empty() {
        result(
            NAME,
            Verdict::Valid,
            vec![format!("installed: {installed:?}")],
        )
    } else {
        result(NAME, Verdict::Unknown, missing)
    }
}

/// P1: at most one manager claims leadership in any term.
pub fn one_leader_per_term(history: &[Record]) -> CheckResult {
    const NAME: &str = "one_leader_per_term";
    let mut leaders: BTreeMap<u64, BTreeSet<u64>> = BTreeMap::new();
    for r in history {
        if let Event::ManagerRound { managers, .. } = &r.event {
            for m in managers {
                if m.reachable
                    && m.role.as_deref() == Some("leader")
                    && let Some(term) = m.term
                {
                    leaders.entry(term).or_default().insert(m.manager);
                }
            }
        }
    }
    let violations: Vec<String> = leaders
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .map(|(term, ids)| format!("term {term} has leaders {ids:?}"))
        .collect();
    if violations.is_empty() {
        result(
            NAME,
            Verdict::Valid,
            vec![format!("{} terms with a leader observed", leaders.len())],
        )
    } else {
        result(NAME, Verdict::Invalid, violations)
    }
}

/// P2: never two writable masters at once (observation rounds), and no epoch whose
/// acknowledged writes landed on two different nodes.
pub fn one_writable_master(history: &[Record]) -> CheckResult {
    const NAME: &str = "one_writable_master";
    let mut violations = Vec::new();
    let mut rounds = 0;
    let frozen = super::freeze::FreezeWindows::of(history);
    let default_cfg = RunConfig::default();
    let cfg = config(history).unwrap_or(&default_cfg);
    for r in history {
        if let Event::DbRound {
            round,
            started_ns,
            nodes,
            ..
        } = &r.event
        {
            rounds += 1;
            let span = (started_ns.unwrap_or(r.time_ns), r.time_ns);
            let writable: Vec<&str> = nodes
                .iter()
                .filter(|n| n.reachable && n.read_only == Some(false))
                .filter(|n| {
                    let took_write = n.writable == Some(true);
                    !super::freeze::allowed_on_resume(&frozen, cfg, &n.node, span, took_write)
                })
                .map(|n| n.node.as_str())
                .collect();
            if writable.len() > 1 {
                violations.push(format!(
                    "round {round} at {} ms: writable masters {writable:?}",
                    r.time_ns / 1_000_000
                ));
            }
        }
    }
    let mut by_epoch: BTreeMap<u64, BTreeSet<&str>> = BTreeMap::new();
    for r in history {
        if let Event::Ok { epoch, node, .. } = &r.event {
            by_epoch.entry(*epoch).or_default().insert(node);
        }
    }
    for (epoch, nodes) in &by_epoch {
        if nodes.len() > 1 {
            violations.push(format!("epoch {epoch} acknowledged writes on {nodes:?}"));
        }
    }
    if violations.is_empty() {
        result(
            NAME,
            Verdict::Valid,
            vec![format!(
                "{rounds} observation rounds, {} epochs with writes",
                by_epoch.len()
            )],
        )
    } else {
        result(NAME, Verdict::Invalid, violations)
    }
}

/// P3: once a newer epoch's master has acknowledged a write, no write invoked later is
/// acknowledged by an older epoch's master (the old master was fenced first).
pub fn old_master_fenced_before_new_serves(history: &[Record]) -> CheckResult {
    const NAME: &str = "old_master_fenced_first";
    let mut invoked_at: BTreeMap<u64, u64> = BTreeMap::new();
    let mut first_ok_of_epoch: BTreeMap<u64, u64> = BTreeMap::new();
    let mut oks = Vec::new();
    for r in history {
        match &r.event {
            Event::Invoke { id, .. } => {
                invoked_at.insert(*id, r.time_ns);
            }
            Event::Ok {
                id, epoch, node, ..
            } => {
                first_ok_of_epoch.entry(*epoch).or_insert(r.time_ns);
                oks.push((*id, *epoch, node.as_str()));
            }
            _ => {}
        }
    }
    let mut violations = Vec::new();
    for (id, epoch, node) in oks {
        let Some(&invoked) = invoked_at.get(&id) else {
            continue;
        };
        if let Some((newer, served_at)) = first_ok_of_epoch
            .range(epoch + 1..)
            .map(|(e, t)| (*e, *t))
            .min_by_key(|x| x.1)
            && invoked > served_at
        {
            violations.push(format!(
                "write {id} invoked at {} ms was acknowledged by {node} under epoch {epoch}, after epoch {newer} served at {} ms",
                invoked / 1_000_000,
                served_at / 1_000_000
            ));
        }
    }
    if violations.is_empty() {
        result(NAME, Verdict::Valid, vec![])
    } else {
        result(NAME, Verdict::Invalid, violations)
    }
}

fn final_reads(history: &[Record]) -> Vec<(&str, &str, &Vec<u64>, Option<u64>)> {
    history
        .iter()
        .filter_map(|r| match &r.event {
            Event::FinalRead {
                node,
                role,
                ids,
                checksum,
            } => Some((node.as_str(), role.as_str(), ids, *checksum)),
            _ => None,
        })
        .collect()
}

/// P5: every acknowledged write is on the final master; nothing appears that was never
/// written or that certainly failed.
pub fn no_acknowledged_write_lost(history: &[Record]) -> CheckResult {
    const NAME: &str = "no_acknowledged_write_lost";
    let reads = final_reads(history);
    let Some((master, _, present, _)) = reads.iter().find(|r| r.1 == "master") else {
        return result(
            NAME,
            Verdict::Unknown,
            vec!["no final read of a master".into()],
        );
    };
    let present: BTreeSet<u64> = present.iter().copied().collect();
    let (mut acked, mut failed, mut attempted) =
        (BTreeSet::new(), BTreeSet::new(), BTreeSet::new());
    for r in history {
        match &r.event {
            Event::Invoke { id, .. } => {
                attempted.insert(*id);
            }
            Event::Ok { id, .. } => {
                acked.insert(*id);
            }
            Event::Fail { id, .. } => {
                failed.insert(*id);
            }
            _ => {}
        }
    }
    let lost: Vec<u64> = acked.difference(&present).copied().collect();
    let unexpected: Vec<u64> = present.difference(&attempted).copied().collect();
    let resurrected: Vec<u64> = present.intersection(&failed).copied().collect();
    let covered = config(history).is_some_and(|c| c.acked_writes_covered);
    let mut details = vec![format!(
        "{} acknowledged, {} present on {master}, {} failed, {} unknown",
        acked.len(),
        present.len(),
        failed.len(),
        attempted.len() - acked.len() - failed.len()
    )];
    let mut verdict = Verdict::Valid;
    if !lost.is_empty() {
        if covered {
            verdict = Verdict::Invalid;
            details.push(format!("lost acknowledged writes: {}", brief(&lost)));
        } else {
            details.push(format!(
                "loss within the replication contract (not covered): {}",
                brief(&lost)
            ));
        }
    }
    if !unexpected.is_empty() {
        verdict = Verdict::Invalid;
        details.push(format!("present but never written: {}", brief(&unexpected)));
    }
    if !resurrected.is_empty() {
        verdict = Verdict::Invalid;
        details.push(format!(
            "present although the write failed: {}",
            brief(&resurrected)
        ));
    }
    result(NAME, verdict, details)
}

fn brief(ids: &[u64]) -> String {
    let shown: Vec<String> = ids.iter().take(20).map(u64::to_string).collect();
    if ids.len() > 20 {
        format!("{} … ({} in all)", shown.join(", "), ids.len())
    } else {
        shown.join(", ")
    }
}

/// P8: after healing, every node holds the same rows.
pub fn nodes_converge(history: &[Record]) -> CheckResult {
    const NAME: &str = "nodes_converge";
    let (reads, detached): (Vec<_>, Vec<_>) = final_reads(history)
        .into_iter()
        .partition(|(_, role, _, _)| *role != "detached");
    if reads.is_empty() {
        return result(NAME, Verdict::Unknown, vec!["no final reads".into()]);
    }
    let (first_node, _, first_ids, first_sum) = reads[0];
    let diverged: Vec<String> = reads[1..]
        .iter()
        .filter(|(_, _, ids, sum)| *ids != first_ids || *sum != first_sum)
        .map(|(node, _, ids, sum)| {
            format!(
                "{node}: {} rows checksum {sum:?} vs {first_node}: {} rows checksum {first_sum:?}",
                ids.len(),
                first_ids.len()
            )
        })
        .collect();
    if diverged.is_empty() {
        let mut details = vec![format!("{} nodes equal", reads.len())];
        for (node, _, ids, _) in detached {
            details.push(format!(
                "{node}: detached old master ({} rows), awaiting rejoin",
                ids.len()
            ));
        }
        result(NAME, Verdict::Valid, details)
    } else {
        result(NAME, Verdict::Invalid, diverged)
    }
}

/// P10: no second failover of a cluster inside the anti-flapping window unless acknowledged.
pub fn no_flapping(history: &[Record]) -> CheckResult {
    const NAME: &str = "no_flapping";
    let window = config(history).map_or(0, |c| c.anti_flap_window_ns);
    let mut last_start: BTreeMap<&str, (u64, &str)> = BTreeMap::new();
    let mut violations = Vec::new();
    for r in history {
        match &r.event {
            Event::Ack { cluster } => {
                last_start.remove(cluster.as_str());
            }
            Event::Failover {
                cluster,
                failover_id,
                phase: FailoverPhase::Started,
                ..
            } => {
                if let Some((at, prev)) = last_start.get(cluster.as_str())
                    && *prev != failover_id.as_str()
                    && r.time_ns.saturating_sub(*at) < window
                {
                    violations.push(format!(
                        "{cluster}: failover {failover_id} started {} ms after {prev}, inside the {} ms window, without an ack",
                        (r.time_ns - at) / 1_000_000,
                        window / 1_000_000
                    ));
                }
                last_start.insert(cluster, (r.time_ns, failover_id));
            }
            _ => {}
        }
    }
    if violations.is_empty() {
        result(NAME, Verdict::Valid, vec![])
    } else {
        result(NAME, Verdict::Invalid, violations)
    }
}
