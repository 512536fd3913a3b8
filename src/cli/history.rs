//! `raftmha history --cluster C [--json]`: the cluster's audit trail (registration, pause,
//! resume, acknowledgements, failover start and end, as the state machine records them) and
//! its recent failovers with every journaled step and the time it took. A linearizable read.
//!
//! Also the top-level maintenance shortcuts the issue asks for: `raftmha pause|resume|ack
//! --cluster C`, the same commands as `raftmha cluster pause|resume|ack C`.
use anyhow::Context;
use clap::Args;
use serde::Serialize;

use super::cluster::ClusterCommand;
use super::{CliError, CliResult};
use crate::api::client::{ManagersArgs, first_answer};
use crate::state::{AuditRecord, ClusterRecord, FailoverOutcome, ManagerState, StepPhase};

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[arg(long)]
    pub cluster: String,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
    #[command(flatten)]
    pub managers: ManagersArgs,
}

/// `raftmha pause|resume|ack --cluster C`.
#[derive(Debug, Args)]
pub struct MaintenanceArgs {
    #[arg(long)]
    pub cluster: String,
    /// Why (pause only), for the audit history.
    #[arg(long, default_value = "paused by operator")]
    pub reason: String,
    #[command(flatten)]
    pub managers: ManagersArgs,
}

#[derive(Debug, Clone, Copy)]
pub enum Maintenance {
    Pause,
    Resume,
    Ack,
}

pub async fn maintenance(what: Maintenance, args: MaintenanceArgs) -> CliResult {
    let MaintenanceArgs {
        cluster: name,
        reason,
        managers,
    } = args;
    let cmd = match what {
        Maintenance::Pause => ClusterCommand::Pause {
            name,
            reason,
            managers,
        },
        Maintenance::Resume => ClusterCommand::Resume { name, managers },
        Maintenance::Ack => ClusterCommand::Ack { name, managers },
    };
    super::cluster::run(cmd).await
}

#[derive(Debug, Serialize, PartialEq)]
pub struct History {
    pub cluster: String,
    pub master: Option<String>,
    pub epoch: u64,
    pub paused: bool,
    pub events: Vec<AuditRecord>,
    pub failovers: Vec<FailoverView>,
}

#[derive(Debug, Serialize, PartialEq)]
pub struct FailoverView {
    pub id: u64,
    /// `failover`, `manual_failover`, `switchover` or `rejoin`.
    pub kind: String,
    /// One line from the operation's report (a switchover's writes-blocked window).
    pub summary: Option<String>,
    pub dead_master: String,
    pub epoch: u64,
    pub started_at_ms: u64,
    pub started_by: Option<u64>,
    /// `running` until the engine records the end.
    pub outcome: String,
    pub finished_at_ms: Option<u64>,
    pub duration_ms: Option<u64>,
    pub steps: Vec<StepView>,
}

/// One journaled step: its intent, and its result when recorded.
#[derive(Debug, Serialize, PartialEq)]
pub struct StepView {
    pub step: String,
    pub started_at_ms: u64,
    pub duration_ms: Option<u64>,
    pub detail: String,
}

/// The history of `cluster` as recorded in `state` (plain logic, unit-tested).
pub fn history(state: &ManagerState, cluster: &str) -> Option<History> {
    let record: &ClusterRecord = state.clusters.get(cluster)?;
    let events = state
        .audit
        .iter()
        .filter(|a| a.cluster.as_deref() == Some(cluster))
        .cloned()
        .collect();
    let failovers = record
        .failovers
        .iter()
        .map(|f| {
            let mut steps: Vec<StepView> = Vec::new();
            for s in &f.steps {
                match s.phase {
                    StepPhase::Intent => steps.push(StepView {
                        step: s.step.clone(),
                        started_at_ms: s.at_ms,
                        duration_ms: None,
                        detail: s.detail.clone(),
                    }),
                    StepPhase::Result => {
                        match steps
                            .iter_mut()
                            .rev()
                            .find(|v| v.step == s.step && v.duration_ms.is_none())
                        {
                            Some(v) => {
                                v.duration_ms = Some(s.at_ms.saturating_sub(v.started_at_ms));
                                v.detail = s.detail.clone();
                            }
                            None => steps.push(StepView {
                                step: s.step.clone(),
                                started_at_ms: s.at_ms,
                                duration_ms: Some(0),
                                detail: s.detail.clone(),
                            }),
                        }
                    }
                }
            }
            let (outcome, finished_at_ms) = match &f.finished {
                Some((o, at)) => (outcome_name(o).to_string(), Some(*at)),
                None => ("running".to_string(), None),
            };
            FailoverView {
                id: f.id,
                kind: f.kind().to_string(),
                summary: crate::failover::operation::summary(f),
                dead_master: f.dead_master.clone(),
                epoch: f.epoch,
                started_at_ms: f.started_at_ms,
                started_by: f.started_by,
                outcome,
                finished_at_ms,
                duration_ms: finished_at_ms.map(|at| at.saturating_sub(f.started_at_ms)),
                steps,
            }
        })
        .collect();
    Some(History {
        cluster: cluster.to_string(),
        master: record.master.clone(),
        epoch: record.epoch,
        paused: record.paused,
        events,
        failovers,
    })
}

fn outcome_name(o: &FailoverOutcome) -> &'static str {
    match o {
        FailoverOutcome::Succeeded => "succeeded",
        FailoverOutcome::Failed => "failed",
        FailoverOutcome::Aborted => "aborted",
    }
}

/// The table people read.
pub fn render(h: &History) -> String {
    let mut out = format!(
        "cluster {}: master {}, epoch {}, {}\n",
        h.cluster,
        h.master.as_deref().unwrap_or("unknown"),
        h.epoch,
        if h.paused {
            "PAUSED (no automatic failover)"
        } else {
            "automatic failover on"
        }
    );
    out.push_str(&format!("\n{:<24} {:<8} EVENT\n", "TIME (UTC)", "BY"));
    for e in &h.events {
        let by =
            e.by.map(|b| format!("mgr {b}"))
                .unwrap_or_else(|| "-".into());
        out.push_str(&format!("{:<24} {:<8} {}\n", utc(e.at_ms), by, e.event));
    }
    if h.failovers.is_empty() {
        out.push_str("\nno failovers recorded\n");
    }
    for f in &h.failovers {
        let took = f
            .duration_ms
            .map(|d| format!(" in {d} ms"))
            .unwrap_or_default();
        out.push_str(&format!(
            "\n{} {} of {} (epoch {}): {}{took}, started {}\n",
            f.kind,
            f.id,
            f.dead_master,
            f.epoch,
            f.outcome,
            utc(f.started_at_ms)
        ));
        if let Some(summary) = &f.summary {
            out.push_str(&format!("  {summary}\n"));
        }
        for s in &f.steps {
            let d = s
                .duration_ms
                .map(|d| format!("{d} ms"))
                .unwrap_or_else(|| "running".into());
            out.push_str(&format!("  {:<32} {:>10}  {}\n", s.step, d, s.detail));
        }
    }
    out
}

/// `YYYY-MM-DD HH:MM:SS.mmm` from Unix milliseconds (civil-from-days, no calendar crate).
pub fn utc(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}.{:03}",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

pub async fn run(args: HistoryArgs) -> CliResult {
    let clients = args.managers.clients().map_err(CliError::usage)?;
    let (state, _) = first_answer(&clients, |c| async move { c.read_state().await }).await?;
    let Some(h) = history(&state, &args.cluster) else {
        return Err(anyhow::anyhow!("no cluster named {:?} is registered", args.cluster).into());
    };
    if args.json {
        println!("{}", serde_json::to_string_pretty(&h).context("encoding")?);
    } else {
        print!("{}", render(&h));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::state::cluster_file::ClusterSpec;
    use crate::state::{Command, CommandResult, Request};

    const T0: u64 = 1_700_000_000_000;

    fn apply(s: &mut ManagerState, at: u64, command: Command) -> CommandResult {
        s.apply(&Request {
            version: crate::state::REQUEST_VERSION,
            at_ms: T0 + at,
            by: Some(2),
            term: Some(1),
            command,
        })
    }

    /// A cluster registered, paused, resumed, and one failover journaled through the state
    /// machine: fence (intent + result), promote (intent only), finished.
    fn recorded_state() -> ManagerState {
        let spec = ClusterSpec::parse(include_str!("../../config/app1.toml")).expect("app1");
        let mut s = ManagerState::default();
        apply(
            &mut s,
            0,
            Command::RegisterCluster {
                spec: Box::new(spec),
            },
        );
        apply(
            &mut s,
            10,
            Command::SetPaused {
                cluster: "app1".into(),
                paused: true,
                reason: "maintenance".into(),
            },
        );
        apply(
            &mut s,
            20,
            Command::SetPaused {
                cluster: "app1".into(),
                paused: false,
                reason: "done".into(),
            },
        );
        let started = apply(
            &mut s,
            100,
            Command::FailoverStarted {
                cluster: "app1".into(),
                dead_master: "db1".into(),
                epoch: 0,
            },
        );
        let CommandResult::Ok { id: Some(id), .. } = started else {
            panic!("not started: {started:?}")
        };
        let step = |step: &str, phase, detail: &str| Command::FailoverStep {
            cluster: "app1".into(),
            failover_id: id,
            step: step.into(),
            phase,
            detail: detail.into(),
        };
        apply(&mut s, 110, step("fence", StepPhase::Intent, "stop db1"));
        apply(&mut s, 160, step("fence", StepPhase::Result, "db1 stopped"));
        apply(&mut s, 170, step("promote", StepPhase::Intent, "db2"));
        apply(
            &mut s,
            400,
            Command::FailoverFinished {
                cluster: "app1".into(),
                failover_id: id,
                outcome: FailoverOutcome::Failed,
                detail: "test".into(),
            },
        );
        s
    }

    #[test]
    fn utc_formats_known_instants() {
        assert_eq!(utc(0), "1970-01-01 00:00:00.000");
        assert_eq!(utc(951_827_696_789), "2000-02-29 12:34:56.789");
        assert_eq!(utc(1_763_767_800_000), "2025-11-21 23:30:00.000");
    }

    #[test]
    fn events_and_failover_steps_with_their_durations() {
        let s = recorded_state();
        let h = history(&s, "app1").expect("registered");
        assert_eq!(h.events[0].event, "cluster registered");
        assert!(
            h.events
                .iter()
                .any(|e| e.event == "failover paused: maintenance")
        );
        assert!(!h.paused);
        let f = &h.failovers[0];
        assert_eq!(f.outcome, "failed");
        assert_eq!(f.duration_ms, Some(300));
        assert_eq!(f.steps.len(), 2);
        assert_eq!(
            (f.steps[0].step.as_str(), f.steps[0].duration_ms),
            ("fence", Some(50))
        );
        assert_eq!(f.steps[0].detail, "db1 stopped");
        assert_eq!(
            (f.steps[1].step.as_str(), f.steps[1].duration_ms),
            ("promote", None)
        );
        let text = render(&h);
        assert!(
            text.contains("failover 1 of db1 (epoch 0): failed in 300 ms"),
            "{text}"
        );
        assert!(text.contains("running"), "{text}");
        assert!(history(&s, "other").is_none());
    }
}
