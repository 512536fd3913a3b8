//! What `raftmha switch`, `failover` and `rejoin` share: check the arguments against the
//! replicated state, ask for confirmation, open the operation through the admin API (the
//! leader runs it), and follow its journal until it ends, printing each step.
//!
//! Exit codes (also in the README): 0 done; 1 failed (see `raftmha history`); 2 bad
//! arguments; 3 refused, nothing changed; 4 switchover rolled back (the old master takes
//! writes again); 10 master switched but some replicas did not follow (MHA's 10).
use std::io::{BufRead, IsTerminal, Write};
use std::time::{Duration, Instant};

use super::{CliError, CliResult};
use crate::api::client::{AdminClient, ManagersArgs, first_answer};
use crate::failover::finish_report::FinishReport;
use crate::failover::rejoin::RejoinOutcome;
use crate::failover::switchover::SwitchOutcome;
use crate::state::{
    ClusterRecord, Command, CommandResult, FailoverOutcome, FailoverRecord, Operation, StepPhase,
};

pub const EXIT_REFUSED: u8 = 3;
pub const EXIT_ROLLED_BACK: u8 = 4;
pub const EXIT_PARTIAL: u8 = 10;

fn exit(code: u8, error: anyhow::Error) -> CliError {
    CliError { code, error }
}

/// The cluster's record, checking that each of `servers` belongs to it (exit 2 if not).
pub async fn cluster_record(
    managers: &ManagersArgs,
    cluster: &str,
    servers: &[&str],
) -> Result<(Vec<AdminClient>, ClusterRecord), CliError> {
    let clients = managers.clients().map_err(CliError::usage)?;
    let (state, _) = first_answer(&clients, |c| async move { c.read_state().await }).await?;
    let Some(c) = state.clusters.get(cluster).cloned() else {
        return Err(CliError::usage(anyhow::anyhow!(
            "no cluster named {cluster:?} (see `raftmha cluster list`)"
        )));
    };
    for s in servers {
        if !c.spec.servers.iter().any(|x| x.name == *s) {
            let names: Vec<&str> = c.spec.servers.iter().map(|x| x.name.as_str()).collect();
            return Err(CliError::usage(anyhow::anyhow!(
                "cluster {cluster} has no server {s:?} (servers: {})",
                names.join(", ")
            )));
        }
    }
    Ok((clients, c))
}

/// Asks `question` on the terminal unless `yes`; without a terminal `--yes` is required.
pub fn confirm(question: &str, yes: bool) -> CliResult {
    if yes {
        return Ok(());
    }
    if !std::io::stdin().is_terminal() {
        return Err(CliError::usage(anyhow::anyhow!(
            "not confirmed: stdin is not a terminal; pass --yes"
        )));
    }
    eprint!("{question} (yes/NO): ");
    let _ = std::io::stderr().flush();
    let mut line = String::new();
    std::io::stdin().lock().read_line(&mut line)?;
    if matches!(line.trim().to_ascii_lowercase().as_str(), "y" | "yes") {
        Ok(())
    } else {
        Err(exit(
            EXIT_REFUSED,
            anyhow::anyhow!("not confirmed; nothing was changed"),
        ))
    }
}

/// Opens the operation; returns its id.
pub async fn start(
    clients: &[AdminClient],
    c: &ClusterRecord,
    server: &str,
    operation: Operation,
) -> Result<u64, CliError> {
    let command = Command::OperationStarted {
        cluster: c.spec.name.clone(),
        server: server.to_string(),
        epoch: c.epoch,
        operation,
    };
    let (result, _) = first_answer(clients, |cl| {
        let command = command.clone();
        async move { cl.write(&command).await }
    })
    .await?;
    match result {
        CommandResult::Ok { id: Some(id), .. } => Ok(id),
        CommandResult::Rejected { reason } => {
            Err(exit(EXIT_REFUSED, anyhow::anyhow!("refused: {reason}")))
        }
        other => Err(anyhow::anyhow!("unexpected answer: {other}").into()),
    }
}

/// Polls the journal every 100 ms, printing new steps, until operation `id` ends.
pub async fn follow(
    clients: &[AdminClient],
    cluster: &str,
    id: u64,
    wait: Duration,
    quiet: bool,
) -> Result<FailoverRecord, CliError> {
    let deadline = Instant::now() + wait;
    let mut printed = 0;
    loop {
        let read = first_answer(
            clients,
            |c| async move { c.read_operation(cluster, id).await },
        );
        if let Ok(record) = read.await {
            let f = record
                .ok_or_else(|| anyhow::anyhow!("operation {id} is no longer in the journal"))?;
            for s in f.steps.iter().skip(printed) {
                if !quiet {
                    let mark = match s.phase {
                        StepPhase::Intent => "…",
                        StepPhase::Result => "✓",
                    };
                    let detail: String = s.detail.chars().take(160).collect();
                    println!("  {mark} {:<24} {detail}", s.step);
                }
            }
            printed = f.steps.len();
            if f.finished.is_some() {
                return Ok(f);
            }
        }
        if Instant::now() > deadline {
            return Err(anyhow::anyhow!(
                "operation {id} still runs after {wait:?}; the leader goes on with it \
                 (follow it with `raftmha history --cluster {cluster}`)"
            )
            .into());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Prints the finished operation's report (text or JSON) and maps it to the exit code.
pub fn conclude(f: &FailoverRecord, json: bool) -> CliResult {
    let outcome = f.finished.as_ref().map(|(o, _)| o.clone());
    let report = f.report.clone().unwrap_or_default();
    let failed_or = |code| {
        if outcome == Some(FailoverOutcome::Failed) {
            1
        } else {
            code
        }
    };
    let succeeded_or_1 = if outcome == Some(FailoverOutcome::Succeeded) {
        0
    } else {
        1
    };
    let (text, code) = match FinishReport::decode(f.operation.as_ref(), &report) {
        FinishReport::Switchover(r) => {
            let code = match r.outcome {
                SwitchOutcome::Refused => EXIT_REFUSED,
                SwitchOutcome::RolledBack => EXIT_ROLLED_BACK,
                SwitchOutcome::Switched if !r.failed.is_empty() => EXIT_PARTIAL,
                SwitchOutcome::Switched => 0,
            };
            (r.render_text(), failed_or(code))
        }
        FinishReport::Rejoin(r) => {
            let code = match r.outcome {
                RejoinOutcome::Refused => EXIT_REFUSED,
                RejoinOutcome::Rejoined => 0,
            };
            (r.render_text(), code)
        }
        FinishReport::Refused(r) => {
            let text = format!(
                "{} refused; nothing was changed:\n  - {}\n",
                r.kind,
                r.reasons.join("\n  - ")
            );
            (text, EXIT_REFUSED)
        }
        FinishReport::Failover(r) => (r.render_text(), succeeded_or_1),
        FinishReport::Text(_) => (
            format!("{} {}: {outcome:?}: {report}\n", f.kind(), f.id),
            succeeded_or_1,
        ),
    };
    if json {
        let value: serde_json::Value =
            serde_json::from_str(&report).unwrap_or(serde_json::Value::String(report.clone()));
        let out = serde_json::json!({
            "id": f.id,
            "kind": f.kind(),
            "outcome": outcome,
            "exit_code": code,
            "report": value,
        });
        println!("{}", serde_json::to_string_pretty(&out).unwrap_or_default());
    } else {
        print!("{text}");
    }
    match code {
        0 => Ok(()),
        code => Err(exit(
            code,
            anyhow::anyhow!(
                "{} {} ended with exit code {code} (details above)",
                f.kind(),
                f.id
            ),
        )),
    }
}

/// Open, follow, conclude.
pub async fn run_operation(
    clients: &[AdminClient],
    c: &ClusterRecord,
    server: &str,
    operation: Operation,
    wait: Duration,
    json: bool,
) -> CliResult {
    let kind = operation.kind();
    let id = start(clients, c, server, operation).await?;
    if !json {
        println!(
            "{kind} {id} of {} started; the manager leader runs it:",
            c.spec.name
        );
    }
    let f = follow(clients, &c.spec.name, id, wait, json).await?;
    conclude(&f, json)
}
