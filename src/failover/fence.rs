//! Phase 2's FenceOldMaster: the old master must not take writes once another server is
//! promoted. Escalation, each level only when the previous one could not confirm:
//! 1. `read_only=ON` + kill client sessions over SQL (MHA's way);
//! 2. the master host's agent fences locally (`Fence` RPC: the same over the local socket,
//!    SIGKILL of a paused/hung mysqld where allowed; a mysqld not running counts as fenced);
//! 3. agent unreachable too: wait until the lease surely lapsed ([`lease_lapsed_at`]): counted
//!    from the last renewal a majority of managers could have sent, bounded by their journaled
//!    verdicts, and never later than a whole [`lease_wait`](crate::detect::renew::lease_wait) from the step's start — the agent
//!    has fenced the master itself by then. The agent attempt is cut short at that instant.
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
    let cluster = ctx.cluster;
    let started = Instant::now();
    let ttl = Duration::from_millis(cluster.spec.settings.lease_ttl_ms);
    let lapsed = lease_lapsed_at(
        cluster,
        name,
        ctx.failover.epoch,
        ttl,
        started,
        started,
        crate::api::server::now_ms(),
    );
    let sql_error = match sql_fence(env, name).await {
        Ok(killed) => {
            // Accounts with READ ONLY ADMIN (MariaDB) write through read_only and killed
            // clients reconnect: the agent also holds a global read lock (best effort).
            let lock = match agent_fence(env, ctx, name, env.probe_timeout).await {
                Ok(r) if r.confirmed => format!("; the agent: {}", r.detail),
                Ok(r) => format!("; the agent could not add its lock: {}", r.detail),
                Err(e) => format!("; the agent could not add its lock: {e}"),
            };
            return Ok(Some(StepOutput::Note(format!(
                "read_only=ON via SQL, {killed} client sessions killed{lock}"
            ))));
        }
        Err(e) => e,
    };
    if !env.agents.contains_key(name) {
        return Ok(Some(warn(
            name,
            &format!("SQL: {sql_error}; no agent (or agent token) configured, so no lease either"),
        )));
    }
    // Past the lapse the agent has fenced by itself: asking longer only delays the failover.
    let until_lapsed = lapsed.saturating_duration_since(Instant::now());
    let limit = if ttl.is_zero() {
        FENCE_DEADLINE + env.probe_timeout * 2
    } else {
        (FENCE_DEADLINE + env.probe_timeout * 2).min(until_lapsed.max(env.probe_timeout))
    };
    let agent_error = match agent_fence(env, ctx, name, limit).await {
        Ok(r) if r.confirmed => {
            let what = match r.how.as_str() {
                "stopped" => "mysqld stopped by the agent",
                "not_running" => "mysqld not running (confirmed by the agent)",
                _ => "fenced by the agent",
            };
            return Ok(Some(StepOutput::Note(format!("{what}: {}", r.detail))));
        }
        Ok(r) => {
            // The agent answers but cannot fence (hung mysqld, not allowed to stop it):
            // its own lease fence would fail the same way, so waiting buys nothing.
            return Ok(Some(warn(
                name,
                &format!("SQL: {sql_error}; agent: {}", r.detail),
            )));
        }
        Err(e) => e,
    };
    if ttl.is_zero() {
        return Ok(Some(warn(
            name,
            &format!(
                "SQL: {sql_error}; agent: {agent_error}; self-fencing is off (lease_ttl_ms = 0)"
            ),
        )));
    }
    let wait = lapsed.saturating_duration_since(started);
    tracing::warn!(
        cluster = %cluster.spec.name,
        "{name} and its agent are unreachable (SQL: {sql_error}; agent: {agent_error}): waiting \
         out the {:.1} s lease (lapsed {:.1} s after this step started, with renewal and fence \
         bounds) before promoting",
        ttl.as_secs_f64(),
        wait.as_secs_f64()
    );
    tokio::time::sleep_until(lapsed).await;
    // A partition that healed meanwhile: fence through the agent as well (best effort; the
    // managers stop renewing during a failover, so its lease stays lapsed anyway).
    let after = match agent_fence(env, ctx, name, AFTER_LAPSE_ATTEMPT).await {
        Ok(r) if r.confirmed => format!("; then fenced by the agent: {}", r.detail),
        _ => String::new(),
    };
    Ok(Some(StepOutput::Note(format!(
        "unreachable: waited out the {:.1} s lease ({:.1} s in this step){after}",
        ttl.as_secs_f64(),
        wait.as_secs_f64()
    ))))
}

/// A last, best-effort agent call after the lapse (the lease has fenced the master already).
const AFTER_LAPSE_ATTEMPT: Duration = Duration::from_millis(150);

/// The agent's Fence call, bounded by `limit`.
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
        let c = env.agent(name, &ctx.token, limit).await?;
        anyhow::Ok(c.fence(&ctx.cluster.spec.name, ctx.failover.epoch).await?)
    };
    match timeout(limit, call).await {
        Ok(Ok(r)) => Ok(r),
        Ok(Err(e)) => Err(format!("{e:#}")),
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
