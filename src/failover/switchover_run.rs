//! Running a switchover on the leader, every step journaled (intent, then result) in the
//! operation's record like a failover's.
//!
//! Order, and why it never leaves two writable masters:
//! 1. preflight ([`plan_switchover`]); a refusal changes nothing;
//! 2. `master_ip_online_change_script --command=stop`;
//! 3. while writes still flow, the new master catches up with the master's moving position
//!    until one wait is short; then `read_only=ON` on the old master, client sessions killed
//!    (writes blocked from here);
//! 4. the old master's final position; the new master executes up to it (bounded wait),
//!    stops replicating, and its own position is captured;
//! 5. [`Command::OperationPromote`]: the point of no return, committed before the new master
//!    becomes writable;
//! 6. `--command=start`, `read_only=OFF` on the new master (writes unblocked), the others
//!    (and with `--orig-master-is-new-slave` the old master) follow it, `RESET SLAVE ALL`.
//!
//! A failure before 5 rolls back: [`ROLLBACK_STEP`] is journaled first (after it the state
//! machine refuses the promotion), then the new master replicates again and the old master
//! is writable again. A successor leader finding the operation unfinished rolls forward when
//! the promotion committed and rolls back otherwise.
use std::time::Instant;

use anyhow::{Context, bail};
use futures::future::join_all;

use super::input::server_ref;
use super::runner::{Journal, Runner, failpoint, is_deposed, result_of};
use super::switchover::{SwitchOutcome, SwitchPlan, SwitchReport, plan_switchover};
use super::switchover_effects::{Positions, SwitchEffects};
use crate::state::{
    ClusterRecord, Command, CommandResult, FailoverOutcome, Operation, ROLLBACK_STEP, StepPhase,
};

/// A switchover's run: its owner's runner and the effects it acts through.
struct SwitchRun<'r, 'a, J, E> {
    run: &'r Runner<'a, J>,
    fx: &'r E,
}

impl<'a, J, E> std::ops::Deref for SwitchRun<'_, 'a, J, E> {
    type Target = Runner<'a, J>;
    fn deref(&self) -> &Self::Target {
        self.run
    }
}

/// Runs (or resumes) the switchover `runner` owns to its end.
pub async fn run_switchover<J: Journal, E: SwitchEffects>(
    runner: &Runner<'_, J>,
    fx: &E,
) -> anyhow::Result<SwitchReport> {
    let run = SwitchRun { run: runner, fx };
    let (id, cluster) = (runner.id, runner.cluster.as_str());
    let (c, f) = run.record().await?;
    let Some(Operation::Switchover {
        new_master,
        orig_master_is_new_slave,
        limits,
    }) = f.operation.clone()
    else {
        bail!("operation {id} is not a switchover");
    };
    let orig = f.dead_master.clone();
    if !f.steps.is_empty() {
        let promoted = c.master.as_deref() == Some(new_master.as_str()) && c.epoch > f.epoch;
        run.say(&format!(
            "resuming switchover {id} ({orig} → {new_master}): {}",
            if promoted {
                "the promotion committed, rolling forward"
            } else {
                "not promoted, rolling back"
            }
        ));
        let plan: Option<SwitchPlan> =
            result_of(&f, "sw.plan").and_then(|j| serde_json::from_str(&j).ok());
        let Some(plan) = plan else {
            return rollback(
                &run,
                &orig,
                &new_master,
                None,
                "a leader change before the plan",
            )
            .await;
        };
        if promoted {
            return roll_forward(&run, &plan, None).await;
        }
        return rollback(
            &run,
            &orig,
            &new_master,
            Some(&plan),
            "the leader changed before the promotion",
        )
        .await;
    }
    run.say(&format!(
        "switchover {id} of {cluster}: {orig} → {new_master}"
    ));
    run.confirm().await?;
    let all = fx.facts(&c).await;
    let (orig_facts, others): (Vec<_>, Vec<_>) =
        all.into_iter().partition(|f| f.server.name == orig);
    let Some(orig_facts) = orig_facts.first() else {
        bail!("{orig} is not in the cluster spec");
    };
    let plan = match plan_switchover(
        orig_facts,
        &new_master,
        &others,
        limits,
        orig_master_is_new_slave,
    ) {
        Ok(plan) => plan,
        Err(reasons) => {
            let mut report = SwitchReport::new(&orig, &new_master, SwitchOutcome::Refused);
            report.reasons = reasons;
            report.orig_master_is_new_slave = orig_master_is_new_slave;
            // Printed once journaled: a deposed owner's finish is refused, and it prints nothing.
            run.finish(FailoverOutcome::Aborted, report.to_json())
                .await?;
            run.say(&report.render_text());
            return Ok(report);
        }
    };
    run.journal_step("sw.plan", StepPhase::Result, serde_json::to_string(&plan)?)
        .await?;
    match block_and_catch_up(&run, &plan, &c, f.epoch).await {
        Ok(blocked_at) => roll_forward(&run, &plan, Some(blocked_at)).await,
        // A deposed owner does nothing more: its successor rolls back or forward.
        Err(e) if is_deposed(&e) => Err(e),
        Err(e) => rollback(&run, &orig, &new_master, Some(&plan), &format!("{e:#}")).await,
    }
}

/// Steps 2–5: returns when the promotion committed, with the moment writes were blocked.
async fn block_and_catch_up<J: Journal, E: SwitchEffects>(
    run: &SwitchRun<'_, '_, J, E>,
    plan: &SwitchPlan,
    c: &ClusterRecord,
    epoch: u64,
) -> anyhow::Result<Instant> {
    let fx = run.fx;
    let script = c.spec.settings.master_ip_online_change_script.clone();
    if script.is_some() {
        run.step(
            "sw.script-stop",
            "master_ip_online_change_script --command=stop",
            fx.online_change_script(
                c,
                "stop",
                &plan.orig,
                &plan.new,
                plan.orig_master_is_new_slave,
            ),
        )
        .await?;
    }
    // While writes still flow: the new master catches up with the master's current position
    // until one wait is short, so that the wait inside the blocked window is short.
    let t = Instant::now();
    fx.pre_sync(plan).await;
    run.timed("sw.pre-sync (writes flow)", t);
    let blocked_at = Instant::now();
    // One journal step (intent before the first side effect, result with both positions):
    // every Raft round trip here adds to the window in which writes are blocked.
    let timed = |what: &str, t: Instant| run.timed(what, t);
    run.step(
        "sw.catch-up",
        &format!(
            "{}: read_only=ON, kill client sessions, final position; {} executes up to it, \
             stops replicating, position",
            plan.orig, plan.new
        ),
        fx.block_and_capture(plan, &timed),
    )
    .await?;
    failpoint("switch-before-promote");
    // The promotion entry is itself the journal record of this step.
    let started = Instant::now();
    let reply = run
        .propose(Command::OperationPromote {
            cluster: run.cluster.clone(),
            failover_id: run.id,
            server: plan.new.name.clone(),
            expected_epoch: epoch,
        })
        .await?;
    if let CommandResult::Rejected { reason } = reply {
        bail!("promotion refused: {reason}");
    }
    run.timed("sw.promote", started);
    run.say(&format!(
        "  {} recorded as master (epoch {})",
        plan.new.name,
        epoch + 1
    ));
    Ok(blocked_at)
}

/// Steps 6 on: the promotion committed; finish the switch (idempotent, also on resume).
async fn roll_forward<J: Journal, E: SwitchEffects>(
    run: &SwitchRun<'_, '_, J, E>,
    plan: &SwitchPlan,
    blocked_at: Option<Instant>,
) -> anyhow::Result<SwitchReport> {
    failpoint("switch-after-promote");
    let fx = run.fx;
    let (c, f) = run.record().await?;
    let positions: Positions = result_of(&f, "sw.catch-up")
        .and_then(|j| serde_json::from_str(&j).ok())
        .context("the journal lacks the new master's captured position")?;
    let mut report = SwitchReport::new(&plan.orig.name, &plan.new.name, SwitchOutcome::Switched);
    report.orig_master_is_new_slave = plan.orig_master_is_new_slave;
    report.orig_final_position = Some(positions.orig.clone());
    report.new_master_position = positions.new.clone();
    report.skipped = plan
        .skipped
        .iter()
        .map(|(s, why)| (s.name.clone(), why.clone()))
        .collect();
    let script = c.spec.settings.master_ip_online_change_script.clone();
    if script.is_some()
        && let Err(e) = run
            .step(
                "sw.script-start",
                "master_ip_online_change_script --command=start",
                fx.online_change_script(
                    &c,
                    "start",
                    &plan.orig,
                    &plan.new,
                    plan.orig_master_is_new_slave,
                ),
            )
            .await
    {
        report
            .failed
            .push(("master_ip_online_change_script".into(), format!("{e:#}")));
    }
    // No intent entry: it would sit inside the blocked window, and a successor rolling
    // forward sets read_only=OFF again anyway (idempotent).
    let started = Instant::now();
    run.confirm().await?;
    fx.enable_writes(&plan.new).await?;
    report.writes_blocked_ms = blocked_at.map(|t| t.elapsed().as_millis() as u64);
    run.timed("sw.enable-writes", started);
    run.journal_step(
        "sw.enable-writes",
        StepPhase::Result,
        format!("{}: read_only=OFF", plan.new),
    )
    .await?;
    if let Some(ms) = report.writes_blocked_ms {
        run.say(&format!("writes unblocked on {} after {ms} ms", plan.new));
    }
    let followers = plan.repoint.iter().map(|r| {
        let name = format!("sw.repoint.{}", r.name);
        let what = format!("{}: replicate from {}", r.name, plan.new.name);
        let positions = &positions;
        async move {
            let out = run
                .step(&name, &what, fx.follow_new_master(r, plan, positions))
                .await;
            (r.name.clone(), out)
        }
    });
    for (name, out) in join_all(followers).await {
        match out {
            Err(e) if is_deposed(&e) => return Err(e),
            Ok(_) => report.repointed.push(name),
            Err(e) => report.failed.push((name, format!("{e:#}"))),
        }
    }
    if plan.orig_master_is_new_slave {
        let what = format!(
            "{} (old master, read_only): replicate from {}",
            plan.orig.name, plan.new.name
        );
        let out = run
            .step(
                "sw.orig-follows",
                &what,
                fx.old_master_follows(plan, &positions),
            )
            .await;
        match out {
            Err(e) if is_deposed(&e) => return Err(e),
            Ok(_) => report.repointed.push(plan.orig.name.clone()),
            Err(e) => report
                .failed
                .push((plan.orig.name.clone(), format!("{e:#}"))),
        }
    }
    let what = format!("{}: RESET SLAVE ALL", plan.new);
    match run
        .step("sw.reset-new-master", &what, fx.forget_source(&plan.new))
        .await
    {
        Err(e) if is_deposed(&e) => return Err(e),
        Err(e) => report
            .failed
            .push((plan.new.name.clone(), format!("RESET SLAVE ALL: {e:#}"))),
        Ok(()) => {}
    }
    report.phases = run.phases();
    // Printed once journaled: a deposed owner's finish is refused, and it prints nothing.
    run.finish(FailoverOutcome::Succeeded, report.to_json())
        .await?;
    run.say(&report.render_text());
    Ok(report)
}

/// Before the promotion: make sure it can no longer commit, then undo what was done.
async fn rollback<J: Journal, E: SwitchEffects>(
    run: &SwitchRun<'_, '_, J, E>,
    orig: &str,
    new_master: &str,
    plan: Option<&SwitchPlan>,
    why: &str,
) -> anyhow::Result<SwitchReport> {
    run.say(&format!("rolling back: {why}"));
    run.journal_step(ROLLBACK_STEP, StepPhase::Intent, why.to_string())
        .await?;
    let (c, f) = run.record().await?;
    if c.master.as_deref() == Some(new_master)
        && c.epoch > f.epoch
        && let Some(plan) = plan
    {
        run.say("the promotion committed before the rollback began: rolling forward");
        return roll_forward(run, plan, None).await;
    }
    let fx = run.fx;
    let mut report = SwitchReport::new(orig, new_master, SwitchOutcome::RolledBack);
    report.reasons.push(why.to_string());
    // SQL carries no fencing token: confirm the ownership right before undoing.
    run.confirm().await?;
    let undone = fx.undo(orig, new_master).await;
    let script_stopped = f.steps.iter().any(|s| s.step == "sw.script-stop");
    if script_stopped
        && let (Ok(o), Ok(n)) = (server_ref(&c, orig), server_ref(&c, new_master))
        && let Err(e) = fx.online_change_script(&c, "start", &n, &o, false).await
    {
        report
            .reasons
            .push(format!("the script's start for {orig} failed: {e:#}"));
    }
    let (outcome, note) = match undone {
        Ok(()) => (
            FailoverOutcome::Aborted,
            format!("{orig} is writable again"),
        ),
        Err(e) => (
            FailoverOutcome::Failed,
            format!("rollback incomplete: {e:#}"),
        ),
    };
    if outcome == FailoverOutcome::Failed {
        report.reasons.push(format!(
            "{note}: {orig} may still be read_only; check it and set read_only=OFF by hand"
        ));
    }
    run.journal_step(ROLLBACK_STEP, StepPhase::Result, note)
        .await?;
    report.phases = run.phases();
    // Printed once journaled: a deposed owner's finish is refused, and it prints nothing.
    run.finish(outcome, report.to_json()).await?;
    run.say(&report.render_text());
    Ok(report)
}

#[cfg(test)]
#[path = "switchover_run_tests.rs"]
mod tests;
