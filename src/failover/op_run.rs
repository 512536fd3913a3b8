//! The pieces every operator operation's run shares: journaling a step (intent, then
//! result, with its time), reading the operation's record, and repointing a replica.
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;

use super::engine::{Journal, Progress};
use super::exec::Env;
use super::input::ServerRef;
use super::switchover::{FollowBy, PhaseTiming};
use crate::db::{BinlogCoord, ChangeSource, DbServer, Dialect, MysqlServer, SourcePosition};
use crate::state::{
    ClusterRecord, Command, CommandResult, FailoverOutcome, FailoverRecord, StepPhase,
};

pub(crate) struct OpRun<'a, J> {
    pub journal: &'a J,
    pub env: &'a Env,
    pub cluster: String,
    pub id: u64,
    pub progress: Progress,
    pub t0: Instant,
    pub phases: std::sync::Mutex<Vec<PhaseTiming>>,
}

impl<'a, J: Journal> OpRun<'a, J> {
    pub fn new(journal: &'a J, env: &'a Env, cluster: &str, id: u64, progress: &Progress) -> Self {
        OpRun {
            journal,
            env,
            cluster: cluster.to_string(),
            id,
            progress: progress.clone(),
            t0: Instant::now(),
            phases: Default::default(),
        }
    }

    pub fn say(&self, line: &str) {
        (self.progress)(&format!(
            "[{:>6.3}s] {line}",
            self.t0.elapsed().as_secs_f64()
        ));
    }

    pub async fn record(&self) -> anyhow::Result<(ClusterRecord, FailoverRecord)> {
        self.journal.record(&self.cluster, self.id).await
    }

    pub async fn journal_step(
        &self,
        step: &str,
        phase: StepPhase,
        detail: String,
    ) -> anyhow::Result<()> {
        let cmd = Command::FailoverStep {
            cluster: self.cluster.clone(),
            failover_id: self.id,
            step: step.into(),
            phase,
            detail,
        };
        match self.journal.propose(cmd).await? {
            CommandResult::Rejected { reason } => bail!("journal refused step {step}: {reason}"),
            _ => Ok(()),
        }
    }

    pub async fn finish(&self, outcome: FailoverOutcome, detail: String) -> anyhow::Result<()> {
        self.journal
            .propose(Command::FailoverFinished {
                cluster: self.cluster.clone(),
                failover_id: self.id,
                outcome,
                detail,
            })
            .await?;
        Ok(())
    }

    /// Journals `step` (intent, then result) around `f`; a failure is journaled as the result.
    pub async fn step<T: Serialize>(
        &self,
        step: &str,
        what: &str,
        f: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        self.journal_step(step, StepPhase::Intent, what.to_string())
            .await?;
        let started = Instant::now();
        let out = f.await;
        let ms = started.elapsed().as_millis() as u64;
        match out {
            Ok(v) => {
                let detail = serde_json::to_string(&v)?;
                self.journal_step(step, StepPhase::Result, detail).await?;
                self.say(&format!("  {what} ({ms} ms)"));
                self.timed(step, started);
                Ok(v)
            }
            Err(e) => {
                let _ = self
                    .journal_step(step, StepPhase::Result, format!("failed: {e:#}"))
                    .await;
                self.say(&format!("  {what}: FAILED: {e:#}"));
                Err(e)
            }
        }
    }

    /// Records how long an unjournaled phase took (for the report).
    pub fn timed(&self, phase: &str, started: Instant) {
        if let Ok(mut p) = self.phases.lock() {
            p.push(PhaseTiming {
                phase: phase.to_string(),
                ms: started.elapsed().as_millis() as u64,
            });
        }
    }

    pub fn phases(&self) -> Vec<PhaseTiming> {
        self.phases.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

/// The journaled result of `step`, when recorded and not a failure.
pub(crate) fn result_of(f: &FailoverRecord, step: &str) -> Option<String> {
    f.steps
        .iter()
        .rev()
        .find(|s| s.step == step && s.phase == StepPhase::Result)
        .map(|s| s.detail.clone())
        .filter(|d| !d.starts_with("failed:"))
}

pub(crate) fn server_ref(c: &ClusterRecord, name: &str) -> anyhow::Result<ServerRef> {
    let s = c
        .spec
        .servers
        .iter()
        .find(|s| s.name == name)
        .with_context(|| format!("no server {name} in the cluster"))?;
    Ok(ServerRef::new(&s.name, &s.host, s.port))
}

pub(crate) async fn dialect(s: &MysqlServer) -> anyhow::Result<Dialect> {
    Ok(Dialect::new(s.version().await?))
}

/// Points `replica` at `new` (idempotent: nothing to do when it already replicates from it).
pub(crate) async fn follow(
    env: &Env,
    replica: &str,
    new: &ServerRef,
    by: FollowBy,
    at: Option<&BinlogCoord>,
) -> anyhow::Result<String> {
    let s = env
        .server(replica)
        .with_context(|| format!("no connection settings for {replica}"))?;
    let d = dialect(s).await?;
    if let Some(st) = s.replica_status().await?
        && st.replicates_from(&new.host, new.port)
        && st.sql_running
    {
        return Ok("already replicating".into());
    }
    let position = match (by, at) {
        (FollowBy::Gtid, _) => SourcePosition::MariaDbSlavePos,
        (FollowBy::Position, Some(at)) => SourcePosition::File(at.clone()),
        (FollowBy::Position, None) => bail!("the new master's position was not captured"),
    };
    let source = ChangeSource {
        host: new.host.clone(),
        port: new.port,
        user: env.account.user.clone(),
        password: env.account.password.clone(),
        position,
        connect_retry_secs: env.account.connect_retry_secs,
        heartbeat_period: env.account.heartbeat_period,
    };
    s.execute(&d.stop_replica()).await?;
    s.execute(&d.change_source(&source)).await?;
    s.execute(&d.start_replica()).await?;
    Ok(format!("replicates from {new}"))
}
