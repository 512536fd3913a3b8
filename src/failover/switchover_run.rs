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
use serde::{Deserialize, Serialize};
use tokio::time::timeout;

use super::env::Env;
use super::input::{ServerPolicy, ServerRef};
use super::op_run::{OpRun, dialect, follow, result_of, server_ref};
use super::runner::{Journal, Runner, failpoint, is_deposed};
use super::switchover::{
    FollowBy, Observed, ServerFacts, Session, SwitchOutcome, SwitchPlan, SwitchReport,
    plan_switchover,
};
use crate::db::{BinlogCoord, DbServer, MysqlServer, Statement, WaitOutcome};
use crate::state::{
    ClusterRecord, Command, CommandResult, FailoverOutcome, Operation, ROLLBACK_STEP, StepPhase,
};

/// Journaled results the roll-forward needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
struct Positions {
    orig: BinlogCoord,
    new: Option<BinlogCoord>,
    #[serde(default)]
    sessions_killed: usize,
}

fn number(row: &crate::db::status::RowMap, name: &str) -> u64 {
    row.get(&[name])
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Everything the preflight looks at on one server.
async fn observe(s: &MysqlServer) -> anyhow::Result<Observed> {
    let variables = s.variables().await?;
    let replica = s.replica_status().await?;
    let sessions = s
        .query(&Statement::new(
            "SELECT ID AS id, USER AS user, COMMAND AS command, TIME AS secs, \
             LEFT(COALESCE(INFO, ''), 100) AS info \
             FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()",
        ))
        .await?
        .iter()
        .map(|r| Session {
            id: number(r, "id"),
            user: r.get(&["user"]).unwrap_or("").to_string(),
            command: r.get(&["command"]).unwrap_or("").to_string(),
            secs: number(r, "secs"),
            info: r.get(&["info"]).unwrap_or("").to_string(),
        })
        .collect();
    let writing_transactions = s
        .query(&Statement::new(
            "SELECT trx_mysql_thread_id AS id, \
             TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS secs \
             FROM information_schema.INNODB_TRX WHERE trx_rows_modified > 0",
        ))
        .await?
        .iter()
        .map(|r| (number(r, "id"), number(r, "secs")))
        .collect();
    Ok(Observed {
        variables,
        replica,
        sessions,
        writing_transactions,
    })
}

pub(crate) async fn facts(env: &Env, c: &ClusterRecord) -> Vec<ServerFacts> {
    join_all(c.spec.servers.iter().map(|s| async move {
        let observed = match env.server(&s.name) {
            None => Err("no connection settings".to_string()),
            Some(db) => match timeout(env.probe_timeout * 4, observe(db)).await {
                Ok(Ok(o)) => Ok(o),
                Ok(Err(e)) => Err(format!("{e:#}")),
                Err(_) => Err("no answer".to_string()),
            },
        };
        ServerFacts {
            server: ServerRef::new(&s.name, &s.host, s.port),
            policy: ServerPolicy {
                candidate_master: s.candidate_master,
                no_master: s.no_master,
                ignore_fail: s.ignore_fail,
            },
            observed,
        }
    }))
    .await
}

/// `master_ip_online_change_script` with MHA's arguments (users, never passwords: a
/// password on a command line is visible to every local user).
async fn online_change_script(
    env: &Env,
    c: &ClusterRecord,
    command: &str,
    orig: &ServerRef,
    new: &ServerRef,
    orig_master_is_new_slave: bool,
) -> anyhow::Result<String> {
    let Some(path) = c.spec.settings.master_ip_online_change_script.as_deref() else {
        return Ok("not configured".into());
    };
    let user = &c.spec.users.admin_user;
    let mut args = vec![
        format!("--command={command}"),
        format!("--orig_master_host={}", orig.host),
        format!("--orig_master_ip={}", orig.host),
        format!("--orig_master_port={}", orig.port),
        format!("--orig_master_user={user}"),
        format!("--new_master_host={}", new.host),
        format!("--new_master_ip={}", new.host),
        format!("--new_master_port={}", new.port),
        format!("--new_master_user={user}"),
        "--orig_master_ssh_user=root".to_string(),
        "--new_master_ssh_user=root".to_string(),
    ];
    if orig_master_is_new_slave {
        args.push("--orig_master_is_new_slave".into());
    }
    let out = timeout(
        env.step_timeout,
        tokio::process::Command::new(path)
            .args(&args)
            .kill_on_drop(true)
            .output(),
    )
    .await
    .with_context(|| format!("{path} did not finish within {:?}", env.step_timeout))?
    .with_context(|| format!("running {path}"))?;
    match out.status.code() {
        Some(0) => Ok("exit 0".into()),
        // MHA: 10 = "failed, but proceed".
        Some(10) => Ok("exit 10 (proceed)".into()),
        other => bail!("{path} --command={command} failed with {other:?}"),
    }
}

/// Runs (or resumes) the switchover `runner` owns to its end.
pub async fn run_switchover<J: Journal>(
    runner: &Runner<'_, J>,
    env: &Env,
) -> anyhow::Result<SwitchReport> {
    let run = OpRun { runner, env };
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
    let all = facts(env, &c).await;
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
            run.say(&report.render_text());
            run.finish(FailoverOutcome::Aborted, report.to_json())
                .await?;
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
async fn block_and_catch_up<J: Journal>(
    run: &OpRun<'_, '_, J>,
    plan: &SwitchPlan,
    c: &ClusterRecord,
    epoch: u64,
) -> anyhow::Result<Instant> {
    let env = run.env;
    let script = c.spec.settings.master_ip_online_change_script.clone();
    if script.is_some() {
        run.step(
            "sw.script-stop",
            "master_ip_online_change_script --command=stop",
            online_change_script(
                env,
                c,
                "stop",
                &plan.orig,
                &plan.new,
                plan.orig_master_is_new_slave,
            ),
        )
        .await?;
    }
    let orig = env.server(&plan.orig.name).context("old master")?;
    let new = env.server(&plan.new.name).context("new master")?;
    let limit = std::time::Duration::from_millis(plan.limits.catch_up_timeout_ms);
    // While writes still flow: let the new master catch up with the master's current
    // position, again and again until one wait is short (the lag is then a few ms of writes)
    // or the catch-up budget is spent, so that the wait inside the blocked window is short.
    let t = Instant::now();
    while t.elapsed() < limit {
        let round = Instant::now();
        let caught_up = async {
            let pos = orig
                .master_status()
                .await?
                .context("binary logging is off")?;
            let d = dialect(new).await?;
            let (wait, kind) = d.wait_for_position(&pos.coord, limit);
            anyhow::Ok(new.wait(&wait, kind, limit).await?)
        };
        if !matches!(caught_up.await, Ok(WaitOutcome::Reached))
            || round.elapsed() < std::time::Duration::from_millis(20)
        {
            break;
        }
    }
    run.timed("sw.pre-sync (writes flow)", t);
    let blocked_at = Instant::now();
    // One journal step (intent before the first side effect, result with both positions):
    // every Raft round trip here adds to the window in which writes are blocked.
    run.step(
        "sw.catch-up",
        &format!(
            "{}: read_only=ON, kill client sessions, final position; {} executes up to it, \
             stops replicating, position",
            plan.orig, plan.new
        ),
        async {
            let t = Instant::now();
            let d = dialect(orig).await?;
            timeout(env.step_timeout, orig.execute(&d.set_read_only(true)))
                .await
                .context("SET GLOBAL read_only=ON timed out")??;
            run.timed("  read_only=ON", t);
            let t = Instant::now();
            let killed = orig.kill_client_connections().await?.len();
            failpoint("switch-after-block");
            let orig_pos = orig
                .master_status()
                .await?
                .context("binary logging is off")?
                .coord;
            run.timed("  kill sessions, position", t);
            let t = Instant::now();
            let d = dialect(new).await?;
            let (wait, kind) = d.wait_for_position(&orig_pos, limit);
            match new.wait(&wait, kind, limit).await? {
                WaitOutcome::Reached => {}
                other => bail!(
                    "{} did not execute up to {orig_pos} within {limit:?}: {other:?}",
                    plan.new
                ),
            }
            run.timed("  new master catches up", t);
            let t = Instant::now();
            new.execute(&d.stop_replica()).await?;
            let st = new
                .master_status()
                .await?
                .context("binary logging is off")?;
            run.timed("  new master stops replicating", t);
            anyhow::Ok(Positions {
                orig: orig_pos,
                new: Some(st.coord),
                sessions_killed: killed,
            })
        },
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
async fn roll_forward<J: Journal>(
    run: &OpRun<'_, '_, J>,
    plan: &SwitchPlan,
    blocked_at: Option<Instant>,
) -> anyhow::Result<SwitchReport> {
    failpoint("switch-after-promote");
    let env = run.env;
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
                online_change_script(
                    env,
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
    let new = env.server(&plan.new.name).context("new master")?;
    // No intent entry: it would sit inside the blocked window, and a successor rolling
    // forward sets read_only=OFF again anyway (idempotent).
    let started = Instant::now();
    let d = dialect(new).await?;
    run.confirm().await?;
    new.execute(&d.set_read_only(false)).await?;
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
    let limit = env.step_timeout;
    let followers = plan.repoint.iter().map(|r| {
        let name = format!("sw.repoint.{}", r.name);
        let what = format!("{}: replicate from {}", r.name, plan.new.name);
        let orig_pos = positions.orig.clone();
        let new_pos = positions.new.clone();
        async move {
            let out = run
                .step(&name, &what, async {
                    let s = env.server(&r.name).context("no connection settings")?;
                    let d = dialect(s).await?;
                    // Everything the old master wrote first, then the new source.
                    if let Some(st) = s.replica_status().await?
                        && !st.replicates_from(&plan.new.host, plan.new.port)
                    {
                        let (wait, kind) = d.wait_for_position(&orig_pos, limit);
                        match s.wait(&wait, kind, limit).await? {
                            WaitOutcome::Reached => {}
                            other => bail!("did not execute up to {orig_pos}: {other:?}"),
                        }
                    }
                    follow(env, &r.name, &plan.new, plan.follow_by, new_pos.as_ref()).await
                })
                .await;
            (r.name.clone(), out)
        }
    });
    for (name, out) in join_all(followers).await {
        match out {
            Ok(_) => report.repointed.push(name),
            Err(e) => report.failed.push((name, format!("{e:#}"))),
        }
    }
    if plan.orig_master_is_new_slave {
        let out = run
            .step(
                "sw.orig-follows",
                &format!(
                    "{} (old master, read_only): replicate from {}",
                    plan.orig.name, plan.new.name
                ),
                async {
                    let s = env.server(&plan.orig.name).context("old master")?;
                    let d = dialect(s).await?;
                    s.set_read_only(true).await?;
                    if plan.follow_by == FollowBy::Gtid {
                        // Its own binlog is exactly what the new master executed from it.
                        let g = s.gtid_state().await?;
                        if let Some(pos) = g.binlog_pos
                            && let Some(set) =
                                d.set_gtid_slave_pos(&crate::db::GtidSet::MariaDb(pos))
                        {
                            s.execute(&d.stop_replica()).await?;
                            s.execute(&set).await?;
                        }
                    }
                    follow(
                        env,
                        &plan.orig.name,
                        &plan.new,
                        plan.follow_by,
                        positions.new.as_ref(),
                    )
                    .await
                },
            )
            .await;
        match out {
            Ok(_) => report.repointed.push(plan.orig.name.clone()),
            Err(e) => report
                .failed
                .push((plan.orig.name.clone(), format!("{e:#}"))),
        }
    }
    if let Err(e) = run
        .step(
            "sw.reset-new-master",
            &format!("{}: RESET SLAVE ALL", plan.new),
            async {
                let d = dialect(new).await?;
                new.execute(&d.stop_replica()).await?;
                new.execute(&d.reset_replica_all()).await?;
                anyhow::Ok(())
            },
        )
        .await
    {
        report
            .failed
            .push((plan.new.name.clone(), format!("RESET SLAVE ALL: {e:#}")));
    }
    report.phases = run.phases();
    run.say(&report.render_text());
    run.finish(FailoverOutcome::Succeeded, report.to_json())
        .await?;
    Ok(report)
}

/// Before the promotion: make sure it can no longer commit, then undo what was done.
async fn rollback<J: Journal>(
    run: &OpRun<'_, '_, J>,
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
    let env = run.env;
    let mut report = SwitchReport::new(orig, new_master, SwitchOutcome::RolledBack);
    report.reasons.push(why.to_string());
    // SQL carries no fencing token: confirm the ownership right before undoing.
    run.confirm().await?;
    let undo = async {
        if let Some(s) = env.server(new_master)
            && let Some(st) = s.replica_status().await?
            && !st.sql_running
        {
            let d = dialect(s).await?;
            s.execute(&d.start_replica()).await?;
        }
        let s = env
            .server(orig)
            .context("no connection settings for the old master")?;
        let d = dialect(s).await?;
        s.execute(&d.set_read_only(false)).await?;
        anyhow::Ok(())
    };
    let undone = timeout(env.step_timeout, undo).await;
    let script_stopped = f.steps.iter().any(|s| s.step == "sw.script-stop");
    if script_stopped
        && let (Ok(o), Ok(n)) = (server_ref(&c, orig), server_ref(&c, new_master))
        && let Err(e) = online_change_script(env, &c, "start", &n, &o, false).await
    {
        report
            .reasons
            .push(format!("the script's start for {orig} failed: {e:#}"));
    }
    let (outcome, note) = match undone {
        Ok(Ok(())) => (
            FailoverOutcome::Aborted,
            format!("{orig} is writable again"),
        ),
        Ok(Err(e)) => (
            FailoverOutcome::Failed,
            format!("rollback incomplete: {e:#}"),
        ),
        Err(_) => (
            FailoverOutcome::Failed,
            "rollback incomplete: no answer".into(),
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
    run.say(&report.render_text());
    run.finish(outcome, report.to_json()).await?;
    Ok(report)
}
