//! The journaled failover engine (leader only): MHA's phases 2–5 over real servers, every
//! step journaled in the Raft log before (intent) and after (result) its side effect.
//!
//! Resuming is the same code path as starting: the engine re-reads the failover's journal,
//! keeps every step that already has a result (the fencing plan and the failover plan are
//! journaled too, so a successor executes the very same steps) and re-executes a step that
//! has only an intent; each step checks its effect before acting (see [`super::exec`]).
use std::collections::BTreeMap;
use std::future::Future;
use std::time::Instant;

use anyhow::{Context, bail};

use super::exec::{Env, StepOutput, apply_diff_and_tail, execute};
use super::input::{DeadMaster, FailoverInput, FailoverPolicy, ServerPolicy, ServerRef};
use super::observe::observe_replicas;
use super::plan::{Action, FailoverPlan, Lane, Step, plan_failover, plan_fencing};
use super::report::{
    FailoverRecord as ReportRecord, FailoverReport, StepResult as ReportStep, StepStatus,
};
use crate::db::{BinlogCoord, MysqlServer};
use crate::state::{
    ClusterRecord, Command, CommandResult, FailoverOutcome, FailoverRecord, StepPhase,
};

/// The replicated log as the engine needs it.
pub trait Journal: Send + Sync {
    /// Proposes a command and waits until it is committed and applied.
    fn propose(
        &self,
        command: Command,
    ) -> impl Future<Output = anyhow::Result<CommandResult>> + Send;
    /// The cluster's replicated record, read linearizably.
    fn cluster(
        &self,
        name: &str,
    ) -> impl Future<Output = anyhow::Result<Option<ClusterRecord>>> + Send;

    /// Journal record `id` of `cluster` (failover or operation) with its cluster, read
    /// linearizably.
    fn record(
        &self,
        cluster: &str,
        id: u64,
    ) -> impl Future<Output = anyhow::Result<(ClusterRecord, FailoverRecord)>> + Send {
        async move {
            let c = self
                .cluster(cluster)
                .await?
                .context("the cluster was removed")?;
            let f = c
                .failovers
                .iter()
                .find(|f| f.id == id)
                .cloned()
                .with_context(|| format!("record {id} left the journal"))?;
            Ok((c, f))
        }
    }
}

/// Progress lines ("phase by phase, with times") for logs and the demo.
pub type Progress = std::sync::Arc<dyn Fn(&str) + Send + Sync>;

/// Test-only failpoints: with the `failpoints` feature, `RAFTMHA_FAILPOINT=<name>` makes the
/// process die at once (`abort`, like a crash) when the engine reaches that point, so tests
/// can kill a leader at a named step. `RAFTMHA_FAILPOINT_MARKER=<file>` makes it fire once
/// across processes (the file is created first), so the successor leader survives it.
/// Without the feature this is a no-op.
pub fn failpoint(name: &str) {
    #[cfg(feature = "failpoints")]
    if std::env::var("RAFTMHA_FAILPOINT").is_ok_and(|v| v == name) {
        if let Ok(marker) = std::env::var("RAFTMHA_FAILPOINT_MARKER") {
            let created = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .open(&marker);
            if created.is_err() {
                return;
            }
        }
        eprintln!("failpoint {name}: aborting");
        std::process::abort();
    }
    let _ = name;
}

/// `Repoint`, `ApplyRelayDiff`, ...: the action's variant name, for failpoint names.
fn action_kind(action: &Action) -> String {
    let debug = format!("{action:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Starts (or resumes) the failover of `cluster`'s master and runs it to its end.
pub async fn run_failover<J: Journal>(
    journal: &J,
    env: &Env,
    cluster: &str,
    progress: &Progress,
) -> anyhow::Result<FailoverReport> {
    let record = journal
        .cluster(cluster)
        .await?
        .with_context(|| format!("no cluster {cluster:?}"))?;
    let failover_id = match record.failovers.iter().find(|f| f.finished.is_none()) {
        Some(f) => {
            progress(&format!("resuming failover {} of {cluster}", f.id));
            f.id
        }
        None => {
            let dead = record
                .master
                .clone()
                .context("the cluster has no known master")?;
            let reply = journal
                .propose(Command::FailoverStarted {
                    cluster: cluster.into(),
                    dead_master: dead.clone(),
                    epoch: record.epoch,
                })
                .await?;
            match reply {
                CommandResult::Ok { id: Some(id), .. } => {
                    progress(&format!(
                        "failover {id} of {cluster} started: {dead} is dead"
                    ));
                    id
                }
                other => bail!("failover not started: {other}"),
            }
        }
    };
    let mut run = Run {
        journal,
        env,
        cluster: cluster.to_string(),
        id: failover_id,
        done: std::sync::Mutex::new(BTreeMap::new()),
        progress: progress.clone(),
        t0: Instant::now(),
    };
    let result = run.go().await;
    let (outcome, report) = match result {
        Ok(report) => (FailoverOutcome::Succeeded, report),
        Err(e) => {
            progress(&format!("failover {failover_id} failed: {e:#}"));
            let _ = journal
                .propose(Command::FailoverFinished {
                    cluster: cluster.into(),
                    failover_id,
                    outcome: FailoverOutcome::Failed,
                    detail: format!("{e:#}"),
                })
                .await;
            return Err(e);
        }
    };
    journal
        .propose(Command::FailoverFinished {
            cluster: cluster.into(),
            failover_id,
            outcome,
            detail: report.to_json(),
        })
        .await?;
    Ok(report)
}

struct Run<'a, J> {
    journal: &'a J,
    env: &'a Env,
    cluster: String,
    id: u64,
    /// Journaled results by step name.
    done: std::sync::Mutex<BTreeMap<String, String>>,
    progress: Progress,
    t0: Instant,
}

impl<J: Journal> Run<'_, J> {
    fn say(&self, line: &str) {
        (self.progress)(&format!(
            "[{:>6.3}s] {line}",
            self.t0.elapsed().as_secs_f64()
        ));
    }

    async fn record(&self) -> anyhow::Result<(ClusterRecord, FailoverRecord)> {
        self.journal.record(&self.cluster, self.id).await
    }

    async fn journal_step(
        &self,
        step: &str,
        phase: StepPhase,
        detail: String,
    ) -> anyhow::Result<()> {
        match self
            .journal
            .propose(Command::FailoverStep {
                cluster: self.cluster.clone(),
                failover_id: self.id,
                step: step.into(),
                phase,
                detail,
            })
            .await?
        {
            CommandResult::Rejected { reason } => bail!("journal refused step {step}: {reason}"),
            _ => Ok(()),
        }
    }

    async fn go(&mut self) -> anyhow::Result<FailoverReport> {
        let (cluster, failover) = self.record().await?;
        for s in &failover.steps {
            if s.phase == StepPhase::Result {
                self.done_put(&s.step, &s.detail);
            }
        }
        let dead_name = failover.dead_master.clone();
        let spec = &cluster.spec;
        let dead_spec = spec
            .servers
            .iter()
            .find(|s| s.name == dead_name)
            .context("the dead master is not in the cluster spec")?;
        let dead_ref = ServerRef::new(&dead_spec.name, &dead_spec.host, dead_spec.port);
        let policy = FailoverPolicy {
            forced_new_master: super::operation::forced_new_master(&failover),
            ..FailoverPolicy::for_cluster(&spec.settings)
        };
        let replicas: Vec<(&MysqlServer, ServerRef, ServerPolicy)> = spec
            .servers
            .iter()
            .filter(|s| s.name != dead_name)
            .filter_map(|s| {
                let server = self.env.server(&s.name)?;
                Some((server, ServerRef::new(&s.name, &s.host, s.port), s.into()))
            })
            .collect();
        let host_reachable = self.env.agent_alive(&dead_name).await;
        let (env, cluster_name) = (self.env, self.cluster.clone());
        let observe = || async {
            let replicas = observe_replicas(&replicas, env.probe_timeout).await;
            let server_id = replicas.iter().find_map(|r| match &r.state {
                super::input::ReplicaState::Reachable(f) => {
                    f.status.as_ref().and_then(|s| s.source_server_id)
                }
                _ => None,
            });
            FailoverInput {
                cluster: cluster_name.clone(),
                dead_master: DeadMaster {
                    server: dead_ref.clone(),
                    server_id,
                    server_uuid: None,
                    host_reachable,
                },
                replicas,
                policy: policy.clone(),
            }
        };

        // Phase 1 checks are the caller's (quorum, anti-flapping, pause); phase 2: fencing.
        self.say("Phase 2: Dead Master Shutdown / freezing the replicas");
        let fencing: Vec<Step> = match self.done_get("fence-plan") {
            Some(json) => serde_json::from_str(&json).context("journaled fencing plan")?,
            None => {
                let steps = plan_fencing(&observe().await);
                let json = serde_json::to_string(&steps)?;
                self.journal_step("fence-plan", StepPhase::Result, json.clone())
                    .await?;
                self.done_put("fence-plan", &json);
                steps
            }
        };
        let mut results = Vec::new();
        self.run_lanes("fence", &fencing, &mut results).await?;
        failpoint("after-fencing");
        let fence_line = self.fence_outcome(&fencing, &dead_name);

        self.say("Phase 3: Master Recovery (re-probing the frozen replicas)");
        let plan: FailoverPlan = match self.done_get("plan") {
            Some(json) => serde_json::from_str(&json).context("journaled plan")?,
            None => {
                let input = observe().await;
                let plan = plan_failover(&input).map_err(|e| anyhow::anyhow!("{e}"))?;
                let json = serde_json::to_string(&plan)?;
                self.journal_step("plan", StepPhase::Result, json.clone())
                    .await?;
                self.done_put("plan", &json);
                plan
            }
        };
        self.say(&format!(
            "new master: {} ({:?}); latest: {}; mode {:?}",
            plan.new_master,
            plan.selection,
            plan.latest
                .iter()
                .map(|s| s.name.as_str())
                .collect::<Vec<_>>()
                .join(","),
            plan.mode
        ));
        let mut phase = None;
        let mut captured: Option<BinlogCoord> = None;
        results.clear();
        let mut fused_with_previous = false;
        for (i, step) in plan.steps.iter().enumerate() {
            if phase != Some(step.phase) {
                phase = Some(step.phase);
                self.say(&step.phase.to_string());
            }
            let name = format!("step.{}", step.id);
            if std::mem::take(&mut fused_with_previous) {
                continue;
            }
            if let Some(next) = plan.steps.get(i + 1)
                && self.try_fused_apply(step, next, &mut results).await?
            {
                fused_with_previous = true;
                continue;
            }
            let (out, report) = self.run_step(&name, step, captured.as_ref()).await?;
            results.push(report);
            if let Some(StepOutput::Position(p)) = out {
                captured = Some(p);
            }
            if matches!(step.action, Action::EnableWrites { .. }) {
                failpoint("after-promotion");
            }
            if matches!(step.action, Action::SaveMasterTail { .. }) {
                failpoint("after-tail-saved");
            }
        }
        let record = ReportRecord {
            plan,
            automated: true,
            results,
            aborted: None,
            new_master_position: captured,
        };
        let mut report = FailoverReport::from_record(&record);
        if let Some(line) = fence_line {
            // How the old master was fenced (or the warning that it was not), after the
            // report's "Master ... is down!" header.
            report.lines.insert(report.lines.len().min(2), line);
        }
        self.say("failover complete");
        Ok(report)
    }

    /// `ApplyRelayDiff` directly followed by `ApplyMasterTail` on the same target, neither
    /// done yet: both journaled, one agent call. Returns whether it ran.
    async fn try_fused_apply(
        &mut self,
        step: &Step,
        next: &Step,
        results: &mut Vec<ReportStep>,
    ) -> anyhow::Result<bool> {
        let (Action::ApplyRelayDiff { donor, target }, Action::ApplyMasterTail { target: t2 }) =
            (&step.action, &next.action)
        else {
            return Ok(false);
        };
        let names = [format!("step.{}", step.id), format!("step.{}", next.id)];
        if target != t2 || names.iter().any(|n| self.done_get(n).is_some()) {
            return Ok(false);
        }
        for (n, s) in names.iter().zip([step, next]) {
            self.journal_step(n, StepPhase::Intent, s.action.to_string())
                .await?;
        }
        let started = Instant::now();
        let (_, failover) = self.record().await?;
        let outcome = apply_diff_and_tail(self.env, &failover, donor, target).await;
        failpoint("before-result:ApplyRelayDiff");
        let output = match outcome {
            Ok(output) => output,
            Err(e) => {
                for n in &names {
                    let _ = self
                        .journal_step(n, StepPhase::Result, format!("failed: {e:#}"))
                        .await;
                }
                return Err(e.context(format!("{}; {}", step.action, next.action)));
            }
        };
        let detail = serde_json::to_string(&output)?;
        for (n, s) in names.iter().zip([step, next]) {
            self.journal_step(n, StepPhase::Result, detail.clone())
                .await?;
            self.done_put(n, &detail);
            results.push(ReportStep {
                step: s.id,
                status: StepStatus::Done { detail: None },
            });
        }
        self.say(&format!(
            "  {}; {} ({} ms, one agent call)",
            step.action,
            next.action,
            started.elapsed().as_millis()
        ));
        Ok(true)
    }

    /// The journaled outcome of the fencing plan's FenceOldMaster step, as a report line.
    fn fence_outcome(&self, fencing: &[Step], dead: &str) -> Option<String> {
        let step = fencing
            .iter()
            .find(|s| matches!(s.action, Action::FenceOldMaster { .. }))?;
        let detail = self.done_get(&format!("fence.{}", step.id))?;
        let line = match serde_json::from_str::<Option<StepOutput>>(&detail).ok()?? {
            StepOutput::Note(how) => format!("{dead}: fenced: {how}."),
            StepOutput::Skipped(why) => format!("{dead}: {why}."),
            StepOutput::Position(_) => return None,
        };
        self.say(&format!("  {line}"));
        Some(line)
    }

    fn done_get(&self, name: &str) -> Option<String> {
        let done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        done.get(name).cloned()
    }

    fn done_put(&self, name: &str, detail: &str) {
        let mut done = self.done.lock().unwrap_or_else(|p| p.into_inner());
        done.insert(name.to_string(), detail.to_string());
    }

    /// Runs `steps` (named `<prefix>.<id>`) as the plan's lanes allow: a `Serial` step alone,
    /// a run of `Server`-lane steps with one task per lane (in order within a lane).
    async fn run_lanes(
        &self,
        prefix: &str,
        steps: &[Step],
        results: &mut Vec<ReportStep>,
    ) -> anyhow::Result<()> {
        let mut i = 0;
        while i < steps.len() {
            let end = if steps[i].lane == Lane::Serial {
                i + 1
            } else {
                steps[i..]
                    .iter()
                    .position(|s| s.lane == Lane::Serial)
                    .map_or(steps.len(), |p| i + p)
            };
            let mut lanes: Vec<(&Lane, Vec<&Step>)> = Vec::new();
            for s in &steps[i..end] {
                match lanes.iter_mut().find(|(l, _)| *l == &s.lane) {
                    Some((_, v)) => v.push(s),
                    None => lanes.push((&s.lane, vec![s])),
                }
            }
            let runs = lanes.into_iter().map(|(_, lane)| async move {
                let mut out = Vec::new();
                for s in lane {
                    let name = format!("{prefix}.{}", s.id);
                    out.push(self.run_step(&name, s, None).await?.1);
                }
                anyhow::Ok(out)
            });
            for lane in futures::future::join_all(runs).await {
                results.extend(lane?);
            }
            i = end;
        }
        results.sort_by_key(|r| r.step);
        Ok(())
    }

    /// Runs one step unless the journal already holds its result.
    async fn run_step(
        &self,
        name: &str,
        step: &Step,
        captured: Option<&BinlogCoord>,
    ) -> anyhow::Result<(Option<StepOutput>, ReportStep)> {
        if let Some(detail) = self.done_get(name) {
            let output: Option<StepOutput> = serde_json::from_str(&detail).unwrap_or(None);
            let report = ReportStep {
                step: step.id,
                status: StepStatus::Done {
                    detail: Some("done by an earlier leader".into()),
                },
            };
            return Ok((output, report));
        }
        self.journal_step(name, StepPhase::Intent, step.action.to_string())
            .await?;
        let started = Instant::now();
        let (cluster, failover) = self.record().await?;
        let outcome = execute(
            self.env,
            &cluster,
            &failover,
            &step.action,
            captured,
            self.journal,
        )
        .await;
        let took = started.elapsed();
        failpoint(&format!("before-result:{}", action_kind(&step.action)));
        match outcome {
            Ok(output) => {
                let detail = serde_json::to_string(&output)?;
                self.journal_step(name, StepPhase::Result, detail.clone())
                    .await?;
                self.done_put(name, &detail);
                self.say(&format!("  {} ({} ms)", step.action, took.as_millis()));
                let report = ReportStep {
                    step: step.id,
                    status: match &output {
                        Some(StepOutput::Skipped(why)) => StepStatus::Skipped { why: why.clone() },
                        _ => StepStatus::Done { detail: None },
                    },
                };
                Ok((output, report))
            }
            Err(e) => {
                let _ = self
                    .journal_step(name, StepPhase::Result, format!("failed: {e:#}"))
                    .await;
                Err(e.context(format!("step {name}: {}", step.action)))
            }
        }
    }
}
