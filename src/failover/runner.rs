//! The one step runner under every run (automatic failover, switchover, manual failover,
//! rejoin): journal the intent, act, journal the result, as the run's owner only.
//!
//! Ownership (see [`crate::state::RunOwner`]): a run is owned by the manager that journaled
//! its start or its takeover, in the Raft term it led then. Before every effect the runner
//! confirms that this manager still leads in that term (a ReadIndex round with a quorum), and
//! every journal entry it writes is stamped with the owner, so the state machine refuses it
//! once the owner is deposed. A run that finds itself deposed stops at once and journals
//! nothing more ([`Deposed`]): the new owner resumes it from the journal. A paused leader
//! that wakes up is therefore as harmless as a dead one, except for the effect it was in the
//! middle of (agents refuse it by fencing token; SQL sent straight to a server cannot be
//! refused — the README lists those effects and their window).
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Instant;

use anyhow::{Context, bail};
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::switchover::PhaseTiming;
use crate::state::{
    ClusterRecord, Command, CommandResult, FailoverOutcome, FailoverRecord, Request, RunOwner,
    StepPhase, VerdictKey,
};

/// The replicated log as runs need it, and this manager's leadership.
pub trait Journal: Send + Sync {
    /// Proposes a request and waits until it is committed and applied. A request that acts
    /// for a run (it names a term) is never forwarded: a manager that does not lead cannot
    /// act for a run.
    fn propose(&self, req: Request) -> impl Future<Output = anyhow::Result<CommandResult>> + Send;

    /// The cluster's replicated record, read linearizably.
    fn cluster(
        &self,
        name: &str,
    ) -> impl Future<Output = anyhow::Result<Option<ClusterRecord>>> + Send;

    /// The cluster's record as applied on this manager. A run's owner reads its own record
    /// this way: every entry of the run is its own, applied here before its proposal returned.
    fn local_cluster(&self, name: &str) -> Option<ClusterRecord>;

    /// This manager as a run owner right now: its id and term, if it is the leader.
    fn leadership(&self) -> Option<RunOwner>;

    /// Whether this manager still leads in `owner`'s term, confirmed with a quorum.
    fn confirm(&self, owner: RunOwner) -> impl Future<Output = Result<(), Deposed>> + Send;

    /// Wall-clock milliseconds, stamped into requests (the journal's clock).
    fn now_ms(&self) -> u64;

    /// When this manager applied a journaled verdict, on [`Journal::now_ms`]'s clock; `None`
    /// when unknown (the lease bound then relies on clock agreement or on the time of its own
    /// read).
    fn verdict_seen_at(&self, _verdict: VerdictKey<'_>) -> Option<u64> {
        None
    }
}

/// This manager no longer owns the run: it stops without journaling anything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("no longer the owner of this run: {0}")]
pub struct Deposed(pub String);

/// Whether `e` (or its cause) is [`Deposed`].
pub fn is_deposed(e: &anyhow::Error) -> bool {
    e.chain().any(|c| c.is::<Deposed>())
}

/// Progress lines ("phase by phase, with times") for logs and the demo.
pub type Progress = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// Test-only failpoints: with the `failpoints` feature, `RAFTMHA_FAILPOINT=<name>` makes the
/// process die at once (`abort`, like a crash) when a run reaches that point, so tests can
/// kill a leader at a named step; `RAFTMHA_FAILPOINT=<name>:pause` stops the process instead
/// (SIGSTOP, like a VM stall), so chaos tests can resume it later.
/// `RAFTMHA_FAILPOINT_MARKER=<file>` makes it fire once across processes (the file is created
/// first), so the successor leader survives it. Without the feature this is a no-op.
pub fn failpoint(name: &str) {
    #[cfg(feature = "failpoints")]
    if let Ok(v) = std::env::var("RAFTMHA_FAILPOINT") {
        let (point, pause) = match v.strip_suffix(":pause") {
            Some(p) => (p.to_string(), true),
            None => (v, false),
        };
        if point != name {
            return;
        }
        if let Ok(marker) = std::env::var("RAFTMHA_FAILPOINT_MARKER") {
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&marker);
            let Ok(mut file) = created else {
                return;
            };
            // The process that fired, so a test can resume (SIGCONT) it.
            let _ = std::io::Write::write_all(&mut file, std::process::id().to_string().as_bytes());
            let _ = file.sync_all();
        }
        if pause {
            eprintln!("failpoint {name}: pausing (SIGSTOP)");
            // SAFETY: raise(2) with a valid signal number has no memory-safety preconditions.
            unsafe {
                libc::raise(libc::SIGSTOP);
            }
            eprintln!("failpoint {name}: resumed");
            return;
        }
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
    let _ = name;
}

/// A step already journaled (done by this run or an earlier owner), or just done now.
pub enum Ran<T> {
    Now(T),
    Earlier(String),
}

/// One run (failover or operation) as its owner drives it.
pub struct Runner<'a, J> {
    pub journal: &'a J,
    pub cluster: String,
    pub id: u64,
    pub owner: RunOwner,
    progress: Progress,
    t0: Instant,
    /// Journaled results by step name (failures excluded).
    done: Mutex<BTreeMap<String, String>>,
    phases: Mutex<Vec<PhaseTiming>>,
}

impl<'a, J: Journal> Runner<'a, J> {
    /// Starts an automatic failover of `cluster`'s master `dead` at `epoch`: this leader owns it.
    pub async fn start_failover(
        journal: &'a J,
        cluster: &str,
        dead: &str,
        epoch: u64,
        progress: &Progress,
    ) -> anyhow::Result<Self> {
        let owner = journal
            .leadership()
            .ok_or_else(|| Deposed("not the leader".into()))?;
        let cmd = Command::FailoverStarted {
            cluster: cluster.into(),
            dead_master: dead.into(),
            epoch,
        };
        let reply = journal
            .propose(Request::as_owner(cmd, owner, journal.now_ms()))
            .await;
        if reply.is_err() {
            journal.confirm(owner).await?;
        }
        match reply? {
            CommandResult::Ok { id: Some(id), .. } => {
                let run = Runner::owned(journal, cluster, id, owner, progress);
                run.say(&format!(
                    "failover {id} of {cluster} started by {owner}: {dead} is dead"
                ));
                Ok(run)
            }
            other => {
                journal.confirm(owner).await?;
                bail!("failover not started: {other}")
            }
        }
    }

    /// Takes run `id` of `cluster` on as this manager's current leadership (an operation
    /// nobody ran yet, or a run whose owner was deposed), with the journal's results so far.
    pub async fn resume(
        journal: &'a J,
        cluster: &str,
        id: u64,
        progress: &Progress,
    ) -> anyhow::Result<Self> {
        let owner = journal
            .leadership()
            .ok_or_else(|| Deposed("not the leader".into()))?;
        let cmd = Command::RunResumed {
            cluster: cluster.into(),
            failover_id: id,
        };
        let reply = journal
            .propose(Request::as_owner(cmd, owner, journal.now_ms()))
            .await;
        if reply.is_err() {
            journal.confirm(owner).await?;
        }
        if let CommandResult::Rejected { reason } = reply? {
            journal.confirm(owner).await?;
            bail!("run {id} of {cluster} cannot be resumed: {reason}");
        }
        let run = Runner::owned(journal, cluster, id, owner, progress);
        let (_, record) = run.record().await?;
        run.load(&record);
        Ok(run)
    }

    fn owned(journal: &'a J, cluster: &str, id: u64, owner: RunOwner, progress: &Progress) -> Self {
        Runner {
            journal,
            cluster: cluster.to_string(),
            id,
            owner,
            progress: progress.clone(),
            t0: Instant::now(),
            done: Mutex::new(BTreeMap::new()),
            phases: Mutex::new(Vec::new()),
        }
    }

    /// Remembers every journaled result of `record` (failures excluded).
    fn load(&self, record: &FailoverRecord) {
        for s in &record.steps {
            if s.phase == StepPhase::Result && !s.detail.starts_with("failed:") {
                self.done_put(&s.step, &s.detail);
            }
        }
    }

    pub fn say(&self, line: &str) {
        (self.progress)(&format!(
            "[{:>6.3}s] {line}",
            self.t0.elapsed().as_secs_f64()
        ));
    }

    /// This run's record and its cluster, as applied here (see [`Journal::local_cluster`]).
    pub async fn record(&self) -> anyhow::Result<(ClusterRecord, FailoverRecord)> {
        let c = self
            .journal
            .local_cluster(&self.cluster)
            .context("the cluster was removed")?;
        let f = c
            .failovers
            .iter()
            .find(|f| f.id == self.id)
            .cloned()
            .with_context(|| format!("record {} left the journal", self.id))?;
        Ok((c, f))
    }

    /// Fails with [`Deposed`] unless this manager still owns the run. Called before every
    /// effect on a database, an agent or a script.
    pub async fn confirm(&self) -> Result<(), Deposed> {
        self.journal.confirm(self.owner).await
    }

    /// Proposes `command` as the run's owner. A refusal caused by a lost leadership becomes
    /// [`Deposed`]; other refusals are returned to the caller.
    pub async fn propose(&self, command: Command) -> anyhow::Result<CommandResult> {
        let req = Request::as_owner(command, self.owner, self.journal.now_ms());
        let reply = self.journal.propose(req).await;
        match reply {
            Ok(CommandResult::Rejected { reason }) => {
                self.confirm().await?;
                Ok(CommandResult::Rejected { reason })
            }
            Ok(ok) => Ok(ok),
            Err(e) => {
                self.confirm().await?;
                Err(e)
            }
        }
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
            detail: detail.clone(),
        };
        match self.propose(cmd).await? {
            CommandResult::Rejected { reason } => bail!("journal refused step {step}: {reason}"),
            _ => {
                if phase == StepPhase::Result && !detail.starts_with("failed:") {
                    self.done_put(step, &detail);
                }
                Ok(())
            }
        }
    }

    /// Finishes the run. Never called by a deposed owner ([`Runner::propose`] confirms).
    pub async fn finish(&self, outcome: FailoverOutcome, detail: String) -> anyhow::Result<()> {
        let reply = self
            .propose(Command::FailoverFinished {
                cluster: self.cluster.clone(),
                failover_id: self.id,
                outcome,
                detail,
            })
            .await?;
        if let CommandResult::Rejected { reason } = reply {
            bail!("the journal refused the finish: {reason}");
        }
        Ok(())
    }

    /// Journals `step` (intent, then result) around `effect`; a failure is journaled as the
    /// result unless this manager was deposed meanwhile (then nothing more is journaled).
    pub async fn step<T: Serialize>(
        &self,
        step: &str,
        what: &str,
        effect: impl Future<Output = anyhow::Result<T>>,
    ) -> anyhow::Result<T> {
        self.journal_step(step, StepPhase::Intent, what.to_string())
            .await?;
        self.confirm().await?;
        let started = Instant::now();
        let out = effect.await;
        let ms = started.elapsed().as_millis() as u64;
        match out {
            Ok(v) => {
                let detail = serde_json::to_string(&v)?;
                self.journal_step(step, StepPhase::Result, detail).await?;
                self.say(&format!("  {what} ({ms} ms)"));
                self.timed(step, started);
                Ok(v)
            }
            Err(e) => Err(self.failed(step, what, e).await),
        }
    }

    /// Like [`Runner::step`], but a step whose result is already journaled is not run again
    /// (its journaled result is returned): the resume rule of planned steps.
    pub async fn once<T, F, Fut>(&self, step: &str, what: &str, effect: F) -> anyhow::Result<Ran<T>>
    where
        T: Serialize + DeserializeOwned,
        F: FnOnce() -> Fut,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        if let Some(detail) = self.done_get(step) {
            return Ok(Ran::Earlier(detail));
        }
        self.step(step, what, effect()).await.map(Ran::Now)
    }

    /// Journals a failed step's result (as its owner only) and returns the error to raise.
    async fn failed(&self, step: &str, what: &str, e: anyhow::Error) -> anyhow::Error {
        if let Err(deposed) = self.confirm().await {
            return anyhow::Error::new(deposed).context(format!("{what}: {e:#}"));
        }
        self.say(&format!("  {what}: FAILED: {e:#}"));
        if let Err(j) = self
            .journal_step(step, StepPhase::Result, format!("failed: {e:#}"))
            .await
            && is_deposed(&j)
        {
            return j;
        }
        e.context(format!("step {step}: {what}"))
    }

    pub fn done_get(&self, name: &str) -> Option<String> {
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        done.get(name).cloned()
    }

    pub fn done_put(&self, name: &str, detail: &str) {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        done.insert(name.to_string(), detail.to_string());
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

    /// The fencing token of this run's effects on agents: the owner's term, then `epoch`.
    pub fn token(&self, epoch: u64) -> raftmha_node::agent::client::FencingToken {
        raftmha_node::agent::client::FencingToken {
            cluster: self.cluster.clone(),
            term: self.owner.term,
            epoch,
        }
    }
}

/// The journaled result of `step`, when recorded and not a failure.
pub fn result_of(f: &FailoverRecord, step: &str) -> Option<String> {
    f.steps
        .iter()
        .rev()
        .find(|s| s.step == step && s.phase == StepPhase::Result)
        .map(|s| s.detail.clone())
        .filter(|d| !d.starts_with("failed:"))
}

#[cfg(test)]
#[path = "runner_tests.rs"]
mod tests;
