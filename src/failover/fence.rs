//! Phase 2's FenceOldMaster: the old master must not take writes once another server is
//! promoted. Escalation, each level only when the previous one could not confirm:
//! 1. `read_only=ON` + kill client sessions over SQL (MHA's way);
//! 2. the master host's agent fences locally (`Fence` RPC: the same over the local socket,
//!    SIGKILL of a paused/hung mysqld where allowed; a mysqld not running counts as fenced);
//! 3. agent unreachable too: the master's lease does it. The step does not wait for that: the
//!    promotion does ([`await_old_master_fenced`], run by EnableWrites right before
//!    `read_only=OFF`), so the replicas are frozen, compared and recovered while the lease
//!    runs out. The lapse is counted from the last renewal a majority of managers could have
//!    sent, bounded by their journaled verdicts ([`lease_lapsed_at`]), and never later than a
//!    whole [`lease_wait`](crate::detect::renew::lease_wait) from the wait's start — the
//!    agent has fenced the master itself by then. Nothing before `read_only=OFF` lets a
//!    client write to another server, so waiting there is as safe as waiting here.
//!
//! When nothing could be confirmed (no agent, lease off, or the agent may not stop a hung
//! mysqld), the failover goes on as MHA's does, with a loud warning in the journal and report.
use std::time::Duration;

use raftmha_node::agent::lease::FENCE_DEADLINE;

use tokio::time::{Instant, timeout};

use super::effects::{StepContext, StepOutput};
use super::env::Env;
use super::lease_lapse::lease_lapsed_at;
use crate::db::DbServer;

pub async fn fence_old_master(
    env: &Env,
    ctx: &StepContext<'_>,
    name: &str,
) -> anyhow::Result<Option<StepOutput>> {
    let ttl = lease_ttl(ctx);
    let limit = FENCE_DEADLINE + env.probe_timeout;
    Ok(Some(match try_fence(env, ctx, name, limit).await {
        Attempt::Fenced(how) => StepOutput::Note(how),
        Attempt::Refused(why) => warn(name, &why),
        Attempt::Unreachable { .. } if ttl.is_zero() => warn(
            name,
            "SQL and agent unreachable; self-fencing is off (lease_ttl_ms = 0)",
        ),
        Attempt::Unreachable { sql, agent } => {
            tracing::warn!(
                cluster = %ctx.cluster.spec.name,
                "{name} and its agent are unreachable (SQL: {sql}; agent: {agent}): the \
                 promotion waits until its {:.1} s lease surely lapsed",
                ttl.as_secs_f64()
            );
            StepOutput::AwaitLease(format!(
                "unreachable (SQL: {sql}; agent: {agent}): the promotion waits until its {:.1} s \
                 lease lapsed",
                ttl.as_secs_f64()
            ))
        }
    }))
}

/// EnableWrites' gate: returns once the old master surely takes no more writes, saying how
/// (`None` when nothing had to be waited for). Before the instant its lease surely lapsed it
/// tries to confirm a fence (a master or agent that answers again); otherwise it sleeps until
/// that instant. Re-run from scratch by a leader that resumes the step: the instant comes
/// from the journaled verdicts, or a whole lease from the gate's own start.
pub async fn await_old_master_fenced(
    env: &Env,
    ctx: &StepContext<'_>,
    seen_at: impl Fn(u64, u64) -> Option<u64>,
) -> anyhow::Result<Option<String>> {
    let ttl = lease_ttl(ctx);
    let dead = ctx.failover.dead_master.as_str();
    if !fence_awaits_lease(ctx.failover) || ttl.is_zero() || !env.agents.contains_key(dead) {
        // Fenced already, or no lease to wait for (the fence step's warning stands).
        return Ok(None);
    }
    let started = Instant::now();
    let lapsed = lease_lapsed_at(
        ctx.cluster,
        dead,
        ctx.failover.epoch,
        ttl,
        (started, started, crate::api::server::now_ms()),
        seen_at,
    );
    // Before the early return below, so a test can kill a leader in this step however late
    // it gets here.
    super::runner::failpoint("in-lease-wait");
    let until_lapsed = lapsed.saturating_duration_since(started);
    if until_lapsed.is_zero() {
        return Ok(Some(format!(
            "{dead}'s {:.1} s lease had lapsed already",
            ttl.as_secs_f64()
        )));
    }
    match timeout(until_lapsed, try_fence(env, ctx, dead, until_lapsed)).await {
        Ok(Attempt::Fenced(how)) => {
            return Ok(Some(format!("{dead} fenced before the promotion: {how}")));
        }
        // Its agent answers but cannot fence: its own lease fence would fail the same way.
        Ok(Attempt::Refused(why)) => return Ok(Some(format!("{dead} NOT fenced: {why}"))),
        Ok(Attempt::Unreachable { .. }) | Err(_) => {}
    }
    tokio::time::sleep_until(lapsed).await;
    Ok(Some(format!(
        "waited {:.1} s until {dead}'s {:.1} s lease surely lapsed",
        started.elapsed().as_secs_f64(),
        ttl.as_secs_f64()
    )))
}

/// Whether the run's fence step left the old master to its lease (journaled
/// [`StepOutput::AwaitLease`]). Runs journaled by versions that waited inside the fence step
/// never say so, and need no second wait.
pub fn fence_awaits_lease(f: &crate::state::FailoverRecord) -> bool {
    f.steps.iter().any(|s| {
        s.phase == crate::state::StepPhase::Result
            && s.step.starts_with("fence.")
            && matches!(
                serde_json::from_str::<Option<StepOutput>>(&s.detail),
                Ok(Some(StepOutput::AwaitLease(_)))
            )
    })
}

fn lease_ttl(ctx: &StepContext<'_>) -> Duration {
    Duration::from_millis(ctx.cluster.spec.settings.lease_ttl_ms)
}

/// One fencing attempt: SQL first, then the agent; `limit` bounds the agent's call.
enum Attempt {
    /// Confirmed: how.
    Fenced(String),
    /// It answers but cannot be fenced, or there is no agent: waiting buys nothing.
    Refused(String),
    /// Neither SQL nor the agent answered: only the lease can fence it.
    Unreachable { sql: String, agent: String },
}

async fn try_fence(env: &Env, ctx: &StepContext<'_>, name: &str, limit: Duration) -> Attempt {
    let sql_error = match sql_fence(env, name).await {
        Ok(killed) => {
            // Accounts with READ ONLY ADMIN (MariaDB) write through read_only and killed
            // clients reconnect: the agent also holds a global read lock (best effort).
            let lock = match agent_fence(env, ctx, name, env.probe_timeout).await {
                Ok(r) if r.confirmed => format!("; the agent: {}", r.detail),
                Ok(r) => format!("; the agent could not add its lock: {}", r.detail),
                Err(e) => format!("; the agent could not add its lock: {e}"),
            };
            return Attempt::Fenced(format!(
                "read_only=ON via SQL, {killed} client sessions killed{lock}"
            ));
        }
        Err(e) => e,
    };
    if !env.agents.contains_key(name) {
        return Attempt::Refused(format!(
            "SQL: {sql_error}; no agent (or agent token) configured, so no lease either"
        ));
    }
    match agent_fence(env, ctx, name, limit).await {
        Ok(r) if r.confirmed => {
            let what = match r.how.as_str() {
                "stopped" => "mysqld stopped by the agent",
                "not_running" => "mysqld not running (confirmed by the agent)",
                _ => "fenced by the agent",
            };
            Attempt::Fenced(format!("{what}: {}", r.detail))
        }
        // The agent answers but cannot fence (hung mysqld, not allowed to stop it): its own
        // lease fence would fail the same way.
        Ok(r) => Attempt::Refused(format!("SQL: {sql_error}; agent: {}", r.detail)),
        Err(agent) => Attempt::Unreachable {
            sql: sql_error,
            agent,
        },
    }
}

/// The agent's Fence call, bounded by `limit` (room for a SIGKILL of a paused mysqld). A
/// frozen host's kernel still accepts the connection, so a cheap `Health` call on the same
/// connection must answer within the probe timeout, or the agent counts as unreachable.
async fn agent_fence(
    env: &Env,
    ctx: &StepContext<'_>,
    name: &str,
    limit: Duration,
) -> Result<raftmha_node::proto::FenceReply, String> {
    if !env.agents.contains_key(name) {
        return Err("no agent configured".into());
    }
    let call = async {
        let c = match timeout(env.probe_timeout, env.agent(name, &ctx.token, limit)).await {
            Ok(c) => c.map_err(|e| format!("{e:#}"))?,
            Err(_) => return Err("cannot connect: no answer".into()),
        };
        let fence = c.fence(&ctx.cluster.spec.name, ctx.failover.epoch);
        tokio::pin!(fence);
        let alive = timeout(env.probe_timeout, c.health());
        tokio::select! {
            r = &mut fence => return r.map_err(|e| e.to_string()),
            h = alive => match h {
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(format!("health: {e}")),
                Err(_) => return Err("no answer".into()),
            },
        }
        fence.await.map_err(|e| e.to_string())
    };
    match timeout(limit, call).await {
        Ok(r) => r,
        Err(_) => Err("no answer".into()),
    }
}

/// MHA's fence: `read_only=ON` and kill client sessions; the number killed.
async fn sql_fence(env: &Env, name: &str) -> Result<usize, String> {
    let s = env
        .server(name)
        .ok_or_else(|| format!("no connection settings for {name}"))?;
    let fence = async { anyhow::Ok(s.stop_client_writes().await?.len()) };
    match timeout(env.probe_timeout, fence).await {
        Ok(Ok(n)) => Ok(n),
        Ok(Err(e)) => Err(format!("{e:#}")),
        Err(_) => Err("no answer".into()),
    }
}

fn warn(name: &str, why: &str) -> StepOutput {
    tracing::error!(
        "WARNING: {name} could NOT be fenced ({why}); failing over anyway as MHA does: if it \
         is alive it may still take writes that will be lost"
    );
    StepOutput::Skipped(format!(
        "WARNING: NOT fenced, it may still take writes ({why})"
    ))
}
