//! The journaled failover engine (leader only): MHA's phases 2–5, every step journaled in
//! the Raft log before (intent) and after (result) its side effect, through the one
//! [`Runner`] (ownership, resume, failpoints).
//!
//! Resuming is the same code path as starting: the engine re-reads the failover's journal,
//! keeps every step that already has a result (the fencing plan and the failover plan are
//! journaled too, so a successor executes the very same steps) and re-executes a step that
//! has only an intent; each step checks its effect before acting (see [`super::exec`]).
//! Effects go through [`Effects`], so the resume logic is unit-tested over fakes.
use std::future::Future;

use anyhow::Context;

use super::effects::{Effects, StepContext, StepOutput};
use super::input::{FailoverInput, FailoverPolicy};
use super::plan::{Action, FailoverPlan, Lane, Step, plan_failover, plan_fencing};
use super::report::{
    FailoverRecord as ReportRecord, FailoverReport, StepResult as ReportStep, StepStatus,
};
use super::runner::{Journal, Progress, Ran, Runner, failpoint, is_deposed};
use crate::db::BinlogCoord;
use crate::state::{ClusterRecord, FailoverOutcome, FailoverRecord};

/// `Repoint`, `ApplyRelayDiff`, ...: the action's variant name, for failpoint names.
fn action_kind(action: &Action) -> String {
    let debug = format!("{action:?}");
    debug
        .split([' ', '{', '('])
        .next()
        .unwrap_or_default()
        .to_string()
}

/// Starts (or resumes) the failover of `cluster`'s master and runs it to its end. A run that
/// loses its ownership stops with a [`super::runner::Deposed`] error and journals nothing more.
pub async fn run_failover<J: Journal, E: Effects>(
    journal: &J,
    effects: &E,
    cluster: &str,
    progress: &Progress,
) -> anyhow::Result<FailoverReport> {
    let record = journal
        .cluster(cluster)
        .await?
        .with_context(|| format!("no cluster {cluster:?}"))?;
    let runner = match record.failovers.iter().find(|f| f.finished.is_none()) {
        Some(f) => {
            progress(&format!("resuming {} {} of {cluster}", f.kind(), f.id));
            Runner::resume(journal, cluster, f.id, progress).await?
        }
        None => {
            let dead = record
                .master
                .clone()
                .context("the cluster has no known master")?;
            Runner::start_failover(journal, cluster, &dead, record.epoch, progress).await?
        }
    };
    run_owned(&runner, effects).await
}

/// Runs a failover this manager owns to its end and journals how it ended.
pub async fn run_owned<J: Journal, E: Effects>(
    runner: &Runner<'_, J>,
    effects: &E,
) -> anyhow::Result<FailoverReport> {
    let run = Run { runner, effects };
    match run.go().await {
        Ok(report) => {
            runner
                .finish(FailoverOutcome::Succeeded, report.to_json())
                .await?;
            Ok(report)
        }
        Err(e) if is_deposed(&e) => {
            runner.say(&format!("stopped, journaling nothing more: {e:#}"));
            Err(e)
        }
        Err(e) => {
            runner.say(&format!("failover {} failed: {e:#}", runner.id));
            if let Err(f) = runner
                .finish(FailoverOutcome::Failed, format!("{e:#}"))
                .await
                && is_deposed(&f)
            {
                return Err(f);
            }
            Err(e)
        }
    }
}

struct Run<'r, 'a, J, E> {
    runner: &'r Runner<'a, J>,
    effects: &'r E,
}

impl<J: Journal, E: Effects> Run<'_, '_, J, E> {
    fn say(&self, line: &str) {
        self.runner.say(line);
    }

    async fn observe(&self) -> anyhow::Result<FailoverInput> {
        let (cluster, failover) = self.runner.record().await?;
        let policy = FailoverPolicy {
            forced_new_master: super::input::forced_new_master(&failover),
            ..FailoverPolicy::for_cluster(&cluster.spec.settings)
        };
        self.runner.confirm().await?;
        self.effects.observe(&cluster, &failover, &policy).await
    }

    /// A journaled plan (fencing or failover), or the one `make` builds now, journaled.
    async fn plan<T, Fut>(&self, name: &str, make: impl FnOnce() -> Fut) -> anyhow::Result<T>
    where
        T: serde::Serialize + serde::de::DeserializeOwned,
        Fut: Future<Output = anyhow::Result<T>>,
    {
        if let Some(json) = self.runner.done_get(name) {
            return serde_json::from_str(&json).with_context(|| format!("journaled {name}"));
        }
        let plan = make().await?;
        let json = serde_json::to_string(&plan)?;
        self.runner
            .journal_step(name, crate::state::StepPhase::Result, json)
            .await?;
        Ok(plan)
    }

    async fn go(&self) -> anyhow::Result<FailoverReport> {
        let (_, failover) = self.runner.record().await?;
        let dead_name = failover.dead_master.clone();

        // Phase 1 checks are the caller's (quorum, anti-flapping, pause); phase 2: fencing.
        self.say("Phase 2: Dead Master Shutdown / freezing the replicas");
        let fencing: Vec<Step> = self
            .plan("fence-plan", || async {
                Ok(plan_fencing(&self.observe().await?))
            })
            .await?;
        let mut results = Vec::new();
        self.run_lanes("fence", &fencing, &mut results).await?;
        failpoint("after-fencing");
        let fence_line = self.fence_outcome(&fencing, &dead_name);

        self.say("Phase 3: Master Recovery (re-probing the frozen replicas)");
        let plan: FailoverPlan = self
            .plan("plan", || async {
                let input = self.observe().await?;
                plan_failover(&input).map_err(|e| anyhow::anyhow!("{e}"))
            })
            .await?;
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
        &self,
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
        let runner = self.runner;
        if target != t2 {
            return Ok(false);
        }
        let result = crate::state::StepPhase::Result;
        match (runner.done_get(&names[0]), runner.done_get(&names[1])) {
            (None, None) => {}
            (Some(_), Some(_)) => return Ok(false),
            // One agent call applied both: an earlier owner was deposed between the two
            // results. Complete the pair's journal; never apply it again.
            (Some(detail), None) | (None, Some(detail)) => {
                for n in &names {
                    if runner.done_get(n).is_none() {
                        runner.journal_step(n, result, detail.clone()).await?;
                    }
                }
                for s in [step, next] {
                    results.push(ReportStep {
                        step: s.id,
                        status: StepStatus::Done {
                            detail: Some("done by an earlier leader".into()),
                        },
                    });
                }
                return Ok(true);
            }
        }
        let intent = crate::state::StepPhase::Intent;
        runner
            .journal_step(&names[0], intent, step.action.to_string())
            .await?;
        let what = format!("{}; {}", step.action, next.action);
        let output = runner
            .step(&names[1], &what, async {
                let ctx_records = runner.record().await?;
                let ctx = self.context(&ctx_records, None);
                let out = self.effects.apply_diff_and_tail(&ctx, donor, target).await;
                failpoint("before-result:ApplyRelayDiff");
                out
            })
            .await?;
        let detail = serde_json::to_string(&output)?;
        runner
            .journal_step(&names[0], crate::state::StepPhase::Result, detail)
            .await?;
        for s in [step, next] {
            results.push(ReportStep {
                step: s.id,
                status: StepStatus::Done { detail: None },
            });
        }
        Ok(true)
    }

    fn context<'c>(
        &self,
        (cluster, failover): &'c (ClusterRecord, FailoverRecord),
        captured: Option<&'c BinlogCoord>,
    ) -> StepContext<'c> {
        StepContext {
            cluster,
            failover,
            captured,
            token: self.runner.token(cluster.epoch),
        }
    }

    /// The journaled outcome of the fencing plan's FenceOldMaster step, as a report line.
    fn fence_outcome(&self, fencing: &[Step], dead: &str) -> Option<String> {
        let step = fencing
            .iter()
            .find(|s| matches!(s.action, Action::FenceOldMaster { .. }))?;
        let detail = self.runner.done_get(&format!("fence.{}", step.id))?;
        let line = match serde_json::from_str::<Option<StepOutput>>(&detail).ok()?? {
            StepOutput::Note(how) => format!("{dead}: fenced: {how}."),
            StepOutput::Skipped(why) => format!("{dead}: {why}."),
            StepOutput::AwaitLease(how) => format!("{dead}: {how}."),
            StepOutput::Position(_) => return None,
        };
        self.say(&format!("  {line}"));
        Some(line)
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
        let runner = self.runner;
        let ran = runner
            .once(name, &step.action.to_string(), || async {
                let records = runner.record().await?;
                let ctx = self.context(&records, captured);
                let out = self.effects.execute(runner, &ctx, &step.action).await;
                failpoint(&format!("before-result:{}", action_kind(&step.action)));
                out
            })
            .await?;
        Ok(match ran {
            Ran::Earlier(detail) => (
                serde_json::from_str(&detail).unwrap_or(None),
                ReportStep {
                    step: step.id,
                    status: StepStatus::Done {
                        detail: Some("done by an earlier leader".into()),
                    },
                },
            ),
            Ran::Now(output) => {
                let status = match &output {
                    Some(StepOutput::Skipped(why)) => StepStatus::Skipped { why: why.clone() },
                    _ => StepStatus::Done { detail: None },
                };
                (
                    output,
                    ReportStep {
                        step: step.id,
                        status,
                    },
                )
            }
        })
    }
}
