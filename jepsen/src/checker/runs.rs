//! Properties of the runs themselves (failovers and operations) against what the databases
//! did: every journal entry came from the run's owner at the time, every writable database is
//! the master the replicated state records, and a failed run never leaves replicas behind on
//! the master it replaced.
use std::collections::BTreeSet;

use super::{CheckResult, Verdict};
use crate::history::{AuditLine, Event, JournalRun, Record, RunConfig, StateView};

fn result(name: &'static str, verdict: Verdict, details: Vec<String>) -> CheckResult {
    CheckResult {
        name,
        verdict,
        details,
    }
}

/// The last journal read of the history (after healing).
fn journal(history: &[Record]) -> Option<(&[JournalRun], &[AuditLine])> {
    history.iter().rev().find_map(|r| match &r.event {
        Event::Journal { runs, audit } => Some((runs.as_slice(), audit.as_slice())),
        _ => None,
    })
}

/// `(manager, term)` after `marker` in `line`: "… by manager 2 (term 5) …".
fn owner_after(line: &str, marker: &str) -> Option<(u64, u64)> {
    let rest = &line[line.find(marker)? + marker.len()..];
    let (manager, rest) = rest.split_once(" (term ")?;
    let term = rest.split(')').next()?;
    Some((manager.trim().parse().ok()?, term.trim().parse().ok()?))
}

/// A run's owner `(manager, term)` and since when (`at_ms`).
type Ownership = ((u64, u64), u64);

/// Who owned `run` from when (`at_ms`), in order, from the audit trail's takeover lines; the
/// first owner is the one the first takeover names, or the record's owner without takeovers.
fn owners(run: &JournalRun, audit: &[AuditLine]) -> Result<Vec<Ownership>, String> {
    let prefix = format!("{} {} ", run.kind, run.id);
    let mut out: Vec<Ownership> = Vec::new();
    for a in audit.iter().filter(|a| a.event.starts_with(&prefix)) {
        let line = &a.event[prefix.len()..];
        let (new, previous) = if line.starts_with("resumed by manager ") {
            (
                owner_after(line, "resumed by manager "),
                owner_after(line, "taking over from manager "),
            )
        } else if line.starts_with("taken on by manager ") {
            (owner_after(line, "taken on by manager "), None)
        } else {
            continue;
        };
        let new = new.ok_or_else(|| format!("unreadable audit line {:?}", a.event))?;
        match (out.last(), previous) {
            (None, Some(p)) => out.push((p, run.started_at_ms)),
            (Some((last, _)), Some(p)) if *last != p => {
                return Err(format!(
                    "{} {}: the audit says {new:?} took over from {p:?}, but {last:?} owned it",
                    run.kind, run.id
                ));
            }
            _ => {}
        }
        out.push((new, a.at_ms));
    }
    if out.is_empty() {
        out.extend(run.owner.map(|o| (o, run.started_at_ms)));
    }
    if out.last().map(|(o, _)| *o) != run.owner {
        return Err(format!(
            "{} {}: the record's owner {:?} is not the last one the audit names ({:?})",
            run.kind,
            run.id,
            run.owner,
            out.last().map(|(o, _)| *o)
        ));
    }
    Ok(out)
}

/// No journal entry from a deposed owner: every step of every run was proposed by the owner
/// of that time (never by one a newer owner had already taken the run from, never after the
/// takeover), and the finishing entry by the last owner.
pub fn no_entry_from_deposed_owner(history: &[Record], cfg: &RunConfig) -> CheckResult {
    const NAME: &str = "no_entry_from_deposed_owner";
    let Some((runs, audit)) = journal(history) else {
        let verdict = if cfg.managers {
            Verdict::Unknown
        } else {
            Verdict::Valid
        };
        return result(NAME, verdict, vec!["no journal read after healing".into()]);
    };
    let mut violations = Vec::new();
    let (mut attributed, mut unattributed, mut takeovers) = (0, 0, 0);
    for run in runs {
        let owners = match owners(run, audit) {
            Ok(o) => o,
            Err(e) => {
                violations.push(e);
                continue;
            }
        };
        takeovers += owners.len().saturating_sub(1);
        let what = |i: usize| format!("{} {} step {}", run.kind, run.id, run.steps[i].step);
        let mut newest = 0;
        for (i, s) in run.steps.iter().enumerate() {
            let (Some(by), Some(term)) = (s.by, s.term) else {
                unattributed += 1;
                continue;
            };
            attributed += 1;
            let Some(k) = owners.iter().position(|(o, _)| *o == (by, term)) else {
                violations.push(format!(
                    "{} was written by manager {by} (term {term}), which never owned the run (owners: {:?})",
                    what(i),
                    owners.iter().map(|(o, _)| *o).collect::<Vec<_>>()
                ));
                continue;
            };
            if k < newest {
                violations.push(format!(
                    "{} was written by manager {by} (term {term}) after the entries of its successor {:?}",
                    what(i),
                    owners[newest].0
                ));
            }
            newest = newest.max(k);
            if let Some((next, since)) = owners.get(k + 1)
                && s.at_ms > *since
            {
                violations.push(format!(
                    "{} was proposed by manager {by} (term {term}) at {} ms, after {next:?} took the run over at {since} ms",
                    what(i),
                    s.at_ms
                ));
            }
        }
        let finish = format!("{} {} finished: ", run.kind, run.id);
        if let (Some(line), Some(((manager, _), since))) = (
            audit.iter().find(|a| a.event.starts_with(&finish)),
            owners.last(),
        ) && (line.by != Some(*manager) || line.at_ms < *since)
        {
            violations.push(format!(
                "{} {} was finished by manager {:?} at {} ms, not by its last owner, manager {manager} (since {since} ms)",
                run.kind, run.id, line.by, line.at_ms
            ));
        }
    }
    if !violations.is_empty() {
        return result(NAME, Verdict::Invalid, violations);
    }
    let summary = format!(
        "{} runs, {attributed} steps by their owner, {takeovers} takeovers",
        runs.len()
    );
    if attributed == 0 && unattributed > 0 {
        return result(
            NAME,
            Verdict::Unknown,
            vec![
                summary,
                "the journal does not say who wrote its steps (managers older than the harness)"
                    .into(),
            ],
        );
    }
    result(NAME, Verdict::Valid, vec![summary])
}

/// Every writable database is the master the replicated state records (read right before or
/// right after the round), or the new master an unfinished failover is promoting. Writable:
/// `read_only=OFF`, or a real write as a non-admin account committed.
pub fn writable_is_recorded_master(history: &[Record], cfg: &RunConfig) -> CheckResult {
    const NAME: &str = "writable_is_recorded_master";
    let (mut judged, mut violations, mut on_resume) = (0, Vec::new(), 0);
    let frozen = super::freeze::FreezeWindows::of(history);
    for r in history {
        let Event::DbRound {
            round,
            started_ns,
            nodes,
            state: Some(around),
        } = &r.event
        else {
            continue;
        };
        let views: Vec<&StateView> = [&around.before, &around.after]
            .into_iter()
            .flatten()
            .collect();
        if views.is_empty() {
            continue;
        }
        judged += 1;
        let allowed: BTreeSet<&str> = views
            .iter()
            .flat_map(|v| v.master.iter().chain(v.promoting.iter()))
            .map(String::as_str)
            .collect();
        for n in nodes.iter().filter(|n| n.reachable) {
            let writable = n.writable == Some(true) || n.read_only == Some(false);
            if writable && !allowed.contains(n.node.as_str()) {
                let took_write = n.writable == Some(true);
                let span = (started_ns.unwrap_or(r.time_ns), r.time_ns);
                if super::freeze::allowed_on_resume(&frozen, cfg, &n.node, span, took_write) {
                    on_resume += 1;
                    continue;
                }
                let how = match (n.read_only, n.writable) {
                    (_, Some(true)) => "took a non-admin write",
                    _ => "had read_only=OFF",
                };
                violations.push(format!(
                    "round {round} at {} ms: {} {how} but the state records master {:?} (epoch {})",
                    r.time_ns / 1_000_000,
                    n.node,
                    views[0].master,
                    views[0].epoch
                ));
            }
        }
    }
    if !violations.is_empty() {
        return result(NAME, Verdict::Invalid, violations);
    }
    if judged == 0 && cfg.managers {
        return result(
            NAME,
            Verdict::Unknown,
            vec!["no database round with the replicated state around it".into()],
        );
    }
    result(
        NAME,
        Verdict::Valid,
        vec![format!(
            "{judged} rounds judged against the replicated state; {on_resume} answers of a \
             frozen master on its resume allowed by the profile"
        )],
    )
}

/// A run that ended in failure after making a new master writable has not left any replica
/// replicating from the master it replaced (as last observed, after healing).
pub fn failed_run_left_no_replica_behind(history: &[Record]) -> CheckResult {
    const NAME: &str = "failed_run_left_no_replica_behind";
    let Some((runs, _)) = journal(history) else {
        return result(NAME, Verdict::Valid, vec!["no journal read".into()]);
    };
    let failed: Vec<(&JournalRun, &str)> = runs
        .iter()
        .filter(|r| r.kind != "rejoin")
        .filter(|r| matches!(&r.finished, Some((o, _)) if o != "Succeeded"))
        .filter_map(|r| Some((r, r.promoted.as_deref()?)))
        .collect();
    if failed.is_empty() {
        return result(
            NAME,
            Verdict::Valid,
            vec!["no run failed after its promotion".into()],
        );
    }
    // The last time each node answered.
    let mut last: std::collections::BTreeMap<&str, Option<&str>> = Default::default();
    for r in history {
        if let Event::DbRound { nodes, .. } = &r.event {
            for n in nodes.iter().filter(|n| n.reachable) {
                last.insert(n.node.as_str(), n.source.as_deref());
            }
        }
    }
    let mut violations = Vec::new();
    for (run, promoted) in &failed {
        for (node, source) in &last {
            if *node != run.dead_master && node != promoted && *source == Some(&run.dead_master) {
                violations.push(format!(
                    "{} {} ended {:?} after making {promoted} writable, and {node} still replicates from {}",
                    run.kind,
                    run.id,
                    run.finished.as_ref().map(|f| &f.0),
                    run.dead_master
                ));
            }
        }
    }
    if violations.is_empty() {
        result(
            NAME,
            Verdict::Valid,
            vec![format!(
                "{} runs failed after their promotion; no replica left on the old master",
                failed.len()
            )],
        )
    } else {
        result(NAME, Verdict::Invalid, violations)
    }
}

#[cfg(test)]
#[path = "runs_tests.rs"]
mod tests;
