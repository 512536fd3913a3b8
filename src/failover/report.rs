//! MHA's `----- Failover Report -----`, rendered from a plan and the journaled step results,
//! as text (what operators know from MHA's mails) and as JSON (kept in the history).
use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::{Deserialize, Serialize};

use super::input::ServerRef;
use super::plan::{Action, FailoverPlan};
use super::select::LostReason;
use crate::db::BinlogCoord;

/// The journaled result of one step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum StepStatus {
    Done {
        detail: Option<String>,
    },
    /// Not needed or not possible, without it being an error (e.g. fencing an unreachable
    /// master, an empty binlog tail).
    Skipped {
        why: String,
    },
    Failed {
        error: String,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepResult {
    pub step: u32,
    pub status: StepStatus,
}

/// A finished (or abandoned) failover as the journal records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverRecord {
    pub plan: FailoverPlan,
    /// Started by detection (MHA "automated(non-interactive)") or by an operator.
    pub automated: bool,
    pub results: Vec<StepResult>,
    /// Why the failover stopped early, if it did.
    pub aborted: Option<String>,
    /// The new master's coordinates captured after its recovery.
    pub new_master_position: Option<BinlogCoord>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Outcome {
    Succeeded,
    /// The master switched, but some replicas were lost or failed to recover (MHA exit 10).
    Partial,
    Failed,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LostEntry {
    pub server: ServerRef,
    pub reason: String,
}

/// The report, in a form that serializes to JSON and renders as MHA's text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailoverReport {
    pub cluster: String,
    pub dead_master: ServerRef,
    pub new_master: Option<ServerRef>,
    pub outcome: Outcome,
    pub new_master_position: Option<BinlogCoord>,
    pub lost: Vec<LostEntry>,
    /// The body lines, in MHA's words where MHA has words for it.
    pub lines: Vec<String>,
}

impl FailoverReport {
    /// A failover that stopped before a plan existed (no candidate, strict-mode abort, ...).
    pub fn aborted_before_plan(
        cluster: &str,
        dead_master: &ServerRef,
        automated: bool,
        error: &str,
    ) -> Self {
        FailoverReport {
            cluster: cluster.to_string(),
            dead_master: dead_master.clone(),
            new_master: None,
            outcome: Outcome::Failed,
            new_master_position: None,
            lost: Vec::new(),
            lines: vec![
                format!("Master {dead_master} is down!"),
                started(automated).into(),
                format!("Got ERROR: {error}"),
            ],
        }
    }

    pub fn from_record(r: &FailoverRecord) -> Self {
        let plan = &r.plan;
        let status: BTreeMap<u32, &StepStatus> =
            r.results.iter().map(|s| (s.step, &s.status)).collect();
        let done = |pred: &dyn Fn(&Action) -> bool| statuses(plan, &status, pred).into_iter();
        let nm = &plan.new_master;
        let mut lines = vec![
            format!("Master {} is down!", plan.dead_master),
            started(r.automated).into(),
        ];
        let dead = &plan.dead_master;
        for step in &plan.steps {
            let Some(st) = status.get(&step.id) else {
                continue;
            };
            let line = match (&step.action, st) {
                (Action::FenceOldMaster { .. }, StepStatus::Done { .. }) => {
                    format!("{dead}: Set read_only and killed client connections.")
                }
                (Action::FenceOldMaster { .. }, StepStatus::Skipped { why }) => {
                    format!("{dead}: Could not fence the dead master ({why}).")
                }
                (Action::MasterIpFailoverStop { .. }, StepStatus::Done { .. }) => {
                    format!("Invalidated master IP address on {dead}.")
                }
                (Action::ShutdownScript { .. }, StepStatus::Done { .. }) => {
                    format!("Shut down the dead master {dead}.")
                }
                (Action::SaveMasterTail { from, .. }, StepStatus::Done { detail }) => format!(
                    "Saved the dead master's binlog events after {from}{}.",
                    detail
                        .as_deref()
                        .map(|d| format!(" ({d})"))
                        .unwrap_or_default()
                ),
                (Action::SaveMasterTail { .. }, StepStatus::Skipped { why }) => {
                    format!("No binlog events saved from the dead master: {why}.")
                }
                (_, StepStatus::Failed { error }) => {
                    format!("{}: ERROR: {error}", step_server(&step.action, plan))
                }
                _ => continue,
            };
            lines.push(line);
        }
        if plan.save_tail_from.is_none() {
            lines.push(format!(
                "The dead master's host was not reachable or saving was off: events {dead} sent to no replica may be lost."
            ));
        }
        lines.push(format!(
            "The latest slave {} has all relay logs for recovery.",
            plan.base
        ));
        lines.push(format!("Selected {nm} as a new master."));
        let ok = |s: Option<&StepStatus>| {
            matches!(
                s,
                Some(StepStatus::Done { .. } | StepStatus::Skipped { .. })
            )
        };
        let master_applied = done(&|a| match a {
            Action::WaitRelayLogApplied { server, .. }
            | Action::ApplyMasterTail { target: server } => server == &nm.name,
            Action::ApplyRelayDiff { target, .. } | Action::GtidCatchUp { target, .. } => {
                target == &nm.name
            }
            Action::CaptureNewMasterPosition { .. } => true,
            _ => false,
        })
        .all(ok);
        if master_applied && status.contains_key(&capture_id(plan)) {
            lines.push(format!("{nm}: OK: Applying all logs succeeded."));
        }
        if done(&|a| matches!(a, Action::MasterIpFailoverStart { .. }))
            .any(|s| matches!(s, Some(StepStatus::Done { .. })))
        {
            lines.push(format!("{nm}: OK: Activated master IP address."));
        }
        for rec in plan
            .recoveries
            .iter()
            .filter(|r| !r.is_new_master && r.is_latest)
        {
            lines.push(format!(
                "{}: This host has the latest relay log events.",
                rec.server
            ));
        }
        let diffs: Vec<_> = done(&|a| matches!(a, Action::GenerateRelayDiff { .. })).collect();
        if !diffs.is_empty() && diffs.iter().all(|s| ok(*s)) {
            lines.push("Generating relay diff files from the latest slave succeeded.".into());
        }
        let mut partial = !plan.lost.is_empty();
        for step in &plan.steps {
            if let Action::Repoint { replica, .. } = &step.action {
                let server = plan
                    .recoveries
                    .iter()
                    .find(|r| &r.server.name == replica)
                    .map(|r| &r.server);
                let shown = server.map_or_else(|| replica.clone(), ToString::to_string);
                match status.get(&step.id) {
                    Some(StepStatus::Done { .. }) => lines.push(format!(
                        "{shown}: OK: Applying all logs succeeded. Slave started, replicating from {nm}."
                    )),
                    Some(_) => partial = true,
                    None => {
                        partial = true;
                        lines.push(format!("{shown}: Not recovered: the failover stopped before it."));
                    }
                }
            }
        }
        let lost: Vec<LostEntry> = plan
            .lost
            .iter()
            .map(|l| LostEntry {
                server: l.server.clone(),
                reason: lost_reason(&l.reason),
            })
            .collect();
        for l in &lost {
            lines.push(format!(
                "{}: Lost: {}. It was not recovered.",
                l.server, l.reason
            ));
        }
        if done(&|a| matches!(a, Action::ResetReplicaOnNewMaster { .. }))
            .any(|s| matches!(s, Some(StepStatus::Done { .. })))
        {
            lines.push(format!("{nm}: Resetting slave info succeeded."));
        }
        let completed = done(&|a| matches!(a, Action::CompleteFailover { .. }))
            .any(|s| matches!(s, Some(StepStatus::Done { .. })));
        let outcome = match (&r.aborted, completed, partial) {
            (None, true, false) => Outcome::Succeeded,
            (None, true, true) => Outcome::Partial,
            _ => Outcome::Failed,
        };
        lines.push(match (outcome, &r.aborted) {
            (Outcome::Succeeded, _) => format!("Master failover to {nm} completed successfully."),
            (Outcome::Partial, _) => {
                format!("Master failover to {nm} done, but recovery on slave partially failed.")
            }
            (Outcome::Failed, Some(e)) => format!("Got ERROR: {e}"),
            (Outcome::Failed, None) => format!("Master failover to {nm} did not complete."),
        });
        FailoverReport {
            cluster: plan.cluster.clone(),
            dead_master: plan.dead_master.clone(),
            new_master: Some(nm.clone()),
            outcome,
            new_master_position: r.new_master_position.clone(),
            lost,
            lines,
        }
    }

    /// MHA's text, e.g. `app1: MySQL Master failover db1(10.0.0.1:3306) to db2(10.0.0.2:3306)
    /// succeeded` followed by the body lines.
    pub fn render_text(&self) -> String {
        let mut out = String::from("----- Failover Report -----\n\n");
        let target = self
            .new_master
            .as_ref()
            .map(|n| format!(" to {n}"))
            .unwrap_or_default();
        let verdict = match self.outcome {
            Outcome::Succeeded => "succeeded",
            Outcome::Partial => "succeeded, but some replicas were not recovered",
            Outcome::Failed => "failed",
        };
        let _ = writeln!(
            out,
            "{}: MySQL Master failover {}{target} {verdict}\n",
            self.cluster, self.dead_master
        );
        let _ = writeln!(
            out,
            "Check `raftmha history {}` for details.\n",
            self.cluster
        );
        for line in &self.lines {
            let _ = writeln!(out, "{line}");
        }
        if let (Some(nm), Some(pos)) = (&self.new_master, &self.new_master_position) {
            let _ = writeln!(out, "\nNew master {nm} binlog position: {pos}");
        }
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }
}

/// The journaled status of every step matching `pred` (`None`: never ran).
fn statuses<'a>(
    plan: &FailoverPlan,
    status: &BTreeMap<u32, &'a StepStatus>,
    pred: &dyn Fn(&Action) -> bool,
) -> Vec<Option<&'a StepStatus>> {
    plan.steps
        .iter()
        .filter(|s| pred(&s.action))
        .map(|s| status.get(&s.id).copied())
        .collect()
}

fn started(automated: bool) -> &'static str {
    if automated {
        "Started automated(non-interactive) failover."
    } else {
        "Started manual(interactive) failover."
    }
}

fn capture_id(plan: &FailoverPlan) -> u32 {
    plan.steps
        .iter()
        .find(|s| matches!(s.action, Action::CaptureNewMasterPosition { .. }))
        .map_or(u32::MAX, |s| s.id)
}

fn step_server(action: &Action, plan: &FailoverPlan) -> String {
    let name = match action {
        Action::FenceOldMaster { .. }
        | Action::MasterIpFailoverStop { .. }
        | Action::ShutdownScript { .. }
        | Action::SaveMasterTail { .. } => {
            return plan.dead_master.to_string();
        }
        Action::StopIoThread { replica } | Action::Repoint { replica, .. } => replica,
        Action::WaitRelayLogApplied { server, .. } => server,
        Action::GenerateRelayDiff { target, .. }
        | Action::ApplyRelayDiff { target, .. }
        | Action::GtidCatchUp { target, .. }
        | Action::ApplyMasterTail { target } => target,
        Action::CaptureNewMasterPosition { new_master }
        | Action::EnableWrites { new_master }
        | Action::MasterIpFailoverStart { new_master }
        | Action::ResetReplicaOnNewMaster { new_master }
        | Action::CompleteFailover { new_master } => new_master,
        Action::ReportScript => return "report_script".into(),
    };
    plan.recoveries
        .iter()
        .find(|r| &r.server.name == name)
        .map_or_else(|| name.clone(), |r| r.server.to_string())
}

fn lost_reason(r: &LostReason) -> String {
    match r {
        LostReason::Unreachable(why) => format!("unreachable at failover time ({why})"),
        LostReason::NotAReplica => "not a replica".into(),
        LostReason::OtherSource(s) => format!("replicates from {s}, not from the dead master"),
        LostReason::SqlThreadError { errno, error } => {
            format!("SQL thread stopped on error {errno}: {error}")
        }
    }
}
