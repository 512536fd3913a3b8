//! Operator operations (`raftmha switch`, `failover`, `rejoin`) on the leader: the CLI opens
//! a record with [`crate::state::Command::OperationStarted`]; the leader's supervisor finds it
//! unfinished and calls [`run_operation`], the same path a successor leader takes to resume it.
use std::future::Future;

use anyhow::Context;
use tokio::time::timeout;

use super::effects::Effects;
use super::engine::run_owned;
use super::env::Env;
use super::finish_report::{FinishReport, Refusal};
use super::rejoin_run::run_rejoin;
use super::runner::{Journal, Progress, Runner, is_deposed};
use super::switchover_run::run_switchover;
use crate::db::DbServer;
use crate::state::{ClusterRecord, FailoverOutcome, FailoverRecord, Operation, StepPhase};

/// One line for `raftmha history` from an operation's finishing report.
pub fn summary(f: &FailoverRecord) -> Option<String> {
    let why = |reasons: &[String], sep: &str| {
        if reasons.is_empty() {
            String::new()
        } else {
            format!("{sep}{}", reasons.join("; "))
        }
    };
    match FinishReport::of(f)? {
        FinishReport::Switchover(r) => {
            let blocked = r
                .writes_blocked_ms
                .map(|ms| format!(", writes blocked {ms} ms"))
                .unwrap_or_default();
            let why = if r.reasons.is_empty() {
                String::new()
            } else {
                format!(" ({})", r.reasons.join("; "))
            };
            Some(format!(
                "{}: {} → {}{blocked}{why}",
                format!("{:?}", r.outcome).to_lowercase(),
                r.orig_master,
                r.new_master
            ))
        }
        FinishReport::Rejoin(r) => Some(format!(
            "{}: {} errant event(s){}",
            format!("{:?}", r.outcome).to_lowercase(),
            r.errant.len(),
            why(&r.reasons, "; ")
        )),
        FinishReport::Refused(r) => Some(format!("refused: {}", r.reasons.join("; "))),
        FinishReport::Failover(_) | FinishReport::Text(_) => None,
    }
}

/// Takes operation (or unfinished failover) `record` on as this leader and runs it to its
/// end; returns a one-line summary. A run that loses its ownership stops with a
/// [`super::runner::Deposed`] error and journals nothing more.
pub async fn run_operation<J: Journal>(
    journal: &J,
    env: &Env,
    cluster: &str,
    record: &FailoverRecord,
    progress: &Progress,
) -> anyhow::Result<String> {
    let run = Runner::resume(journal, cluster, record.id, progress).await?;
    match &record.operation {
        None => Ok(run_owned(&run, env).await?.render_text()),
        Some(Operation::Switchover { .. }) => Ok(run_switchover(&run, env).await?.render_text()),
        Some(Operation::Rejoin { .. }) => match run_rejoin(&run, env).await {
            Ok(report) => Ok(report.render_text()),
            Err(e) if is_deposed(&e) => Err(e),
            // Finished here, or the leader would start it again at once.
            Err(e) => {
                run.finish(FailoverOutcome::Failed, format!("{e:#}"))
                    .await?;
                Err(e)
            }
        },
        Some(Operation::ManualFailover { .. }) => run_manual_failover(&run, record, env).await,
    }
}

/// What a manual failover checks before it starts, behind a trait so the run can be tested
/// over fakes.
pub trait ManualCheck: Send + Sync {
    /// Why the failover of `dead` (to `new_master` if forced) must not start, if it must not.
    fn manual_preflight(
        &self,
        c: &ClusterRecord,
        dead: &str,
        new_master: Option<&str>,
        force: bool,
    ) -> impl Future<Output = Vec<String>> + Send;
}

/// A manual failover (`--master_state=dead`) this manager owns: the operator's preflight
/// (journaled as `manual.preflight` or finished as a refusal), then the failover's own steps.
pub async fn run_manual_failover<J: Journal, E: Effects + ManualCheck>(
    run: &Runner<'_, J>,
    record: &FailoverRecord,
    fx: &E,
) -> anyhow::Result<String> {
    let Some(Operation::ManualFailover { new_master, force }) = &record.operation else {
        anyhow::bail!("operation {} is not a manual failover", record.id);
    };
    if record.steps.is_empty() {
        let (c, _) = run.record().await?;
        run.confirm().await?;
        let reasons = fx
            .manual_preflight(&c, &record.dead_master, new_master.as_deref(), *force)
            .await;
        if !reasons.is_empty() {
            let refusal = Refusal::new("manual_failover", reasons.clone());
            run.finish(FailoverOutcome::Aborted, serde_json::to_string(&refusal)?)
                .await?;
            return Ok(format!("manual failover refused: {}", reasons.join("; ")));
        }
        run.journal_step(
            "manual.preflight",
            StepPhase::Result,
            format!(
                "{} confirmed by the operator{}",
                record.dead_master,
                if *force { " (--force)" } else { "" }
            ),
        )
        .await?;
    }
    Ok(run_owned(run, fx).await?.render_text())
}

impl ManualCheck for Env {
    async fn manual_preflight(
        &self,
        c: &ClusterRecord,
        dead: &str,
        new_master: Option<&str>,
        force: bool,
    ) -> Vec<String> {
        manual_preflight(self, c, dead, new_master, force).await
    }
}

/// MHA's `--master_state=dead` checks: the master really does not answer (unless `--force`),
/// and a forced new master is a live replica of it.
async fn manual_preflight(
    env: &Env,
    c: &ClusterRecord,
    dead: &str,
    new_master: Option<&str>,
    force: bool,
) -> Vec<String> {
    let mut reasons = Vec::new();
    let limit = env.probe_timeout * 2;
    if !force
        && let Some(s) = env.server(dead)
        && let Ok(Ok(_)) = timeout(limit, s.variables()).await
    {
        reasons.push(format!(
            "{dead} still answers: use `raftmha switch` for a live master, or --force to \
             fence it (read_only, sessions killed) and fail over anyway"
        ));
    }
    if let Some(nm) = new_master {
        let dead_ref = c.spec.servers.iter().find(|s| s.name == dead);
        let check = async {
            let s = env.server(nm).context("no connection settings")?;
            let st = s.replica_status().await?.context("it is not a replica")?;
            let d = dead_ref.context("the dead master is not in the spec")?;
            if !st.replicates_from(&d.host, d.port) {
                anyhow::bail!(
                    "it replicates from {}:{}, not from {dead}",
                    st.source_host,
                    st.source_port
                );
            }
            if st.last_sql_errno != 0 {
                anyhow::bail!("its SQL thread stopped with error {}", st.last_sql_errno);
            }
            anyhow::Ok(())
        };
        match timeout(limit * 2, check).await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => reasons.push(format!("the new master {nm} cannot be promoted: {e:#}")),
            Err(_) => reasons.push(format!("the new master {nm} does not answer")),
        }
    }
    reasons
}
