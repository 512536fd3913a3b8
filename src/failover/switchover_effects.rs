//! What a switchover does outside the journal, behind [`SwitchEffects`]: the real one acts on
//! the servers of an [`Env`] (this file), tests use an in-memory fake. Every effect is
//! idempotent, so a successor owner may repeat the one that was in flight.
use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use futures::future::join_all;
use serde::{Deserialize, Serialize};
use tokio::time::timeout;

use super::env::Env;
use super::hooks::{HookExit, run_hook};
use super::input::{ServerPolicy, ServerRef};
use super::plan::RepointBy;
use super::repoint::change_source;
use super::runner::failpoint;
use super::switchover::{FollowBy, Observed, ServerFacts, SwitchPlan};
use crate::db::sessions::{sessions, writing_transactions};
use crate::db::{BinlogCoord, DbServer, MysqlServer, WaitOutcome};
use crate::state::ClusterRecord;

/// Journaled results the roll-forward needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Positions {
    /// The old master's final position (writes blocked).
    pub orig: BinlogCoord,
    /// The new master's own position once it executed everything.
    pub new: Option<BinlogCoord>,
    #[serde(default)]
    pub sessions_killed: usize,
}

/// Records how long a part of an effect took (for the report).
pub type Timed<'a> = &'a (dyn Fn(&str, Instant) + Send + Sync);

pub trait SwitchEffects: Send + Sync {
    /// What the preflight looks at, on every server of the cluster.
    fn facts(&self, c: &ClusterRecord) -> impl Future<Output = Vec<ServerFacts>> + Send;

    /// `master_ip_online_change_script --command=<command>` with MHA's arguments.
    fn online_change_script(
        &self,
        c: &ClusterRecord,
        command: &str,
        orig: &ServerRef,
        new: &ServerRef,
        orig_master_is_new_slave: bool,
    ) -> impl Future<Output = anyhow::Result<String>> + Send;

    /// While writes still flow, lets the new master catch up with the moving old master
    /// until one wait is short (reads and waits only: no effect on data).
    fn pre_sync(&self, plan: &SwitchPlan) -> impl Future<Output = ()> + Send;

    /// Blocks writes on the old master (read_only, sessions killed), takes its final
    /// position, waits until the new master executed it, stops its replication and takes its
    /// position.
    fn block_and_capture(
        &self,
        plan: &SwitchPlan,
        timed: Timed<'_>,
    ) -> impl Future<Output = anyhow::Result<Positions>> + Send;

    /// `read_only=OFF` on the new master.
    fn enable_writes(&self, new: &ServerRef) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// A replica executes everything the old master wrote, then follows the new master.
    fn follow_new_master(
        &self,
        replica: &ServerRef,
        plan: &SwitchPlan,
        positions: &Positions,
    ) -> impl Future<Output = anyhow::Result<String>> + Send;

    /// The old master, kept read-only, follows the new master (`--orig-master-is-new-slave`).
    fn old_master_follows(
        &self,
        plan: &SwitchPlan,
        positions: &Positions,
    ) -> impl Future<Output = anyhow::Result<String>> + Send;

    /// `STOP SLAVE; RESET SLAVE ALL` on the new master.
    fn forget_source(&self, new: &ServerRef) -> impl Future<Output = anyhow::Result<()>> + Send;

    /// Undoes a switchover that was not promoted: the new master replicates again, the old
    /// master is writable again.
    fn undo(&self, orig: &str, new: &str) -> impl Future<Output = anyhow::Result<()>> + Send;
}

/// Everything the preflight looks at on one server.
async fn observe(s: &MysqlServer) -> anyhow::Result<Observed> {
    Ok(Observed {
        variables: s.variables().await?,
        replica: s.replica_status().await?,
        sessions: sessions(s).await?,
        writing_transactions: writing_transactions(s).await?,
    })
}

impl SwitchEffects for Env {
    async fn facts(&self, c: &ClusterRecord) -> Vec<ServerFacts> {
        join_all(c.spec.servers.iter().map(|s| async move {
            let observed = match self.server(&s.name) {
                None => Err("no connection settings".to_string()),
                Some(db) => match timeout(self.probe_timeout * 4, observe(db)).await {
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

    /// Users, never passwords: a password on a command line is visible to every local user.
    async fn online_change_script(
        &self,
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
        Ok(match run_hook(path, &args, self.step_timeout).await {
            Ok(HookExit::Done) => "exit 0".into(),
            // MHA: 10 = "failed, but proceed".
            Ok(HookExit::Proceed) => "exit 10 (proceed)".into(),
            Err(e) => bail!("{path} --command={command}: {e:#}"),
        })
    }

    async fn pre_sync(&self, plan: &SwitchPlan) {
        let (Some(orig), Some(new)) = (self.server(&plan.orig.name), self.server(&plan.new.name))
        else {
            return;
        };
        let limit = Duration::from_millis(plan.limits.catch_up_timeout_ms);
        let t = Instant::now();
        while t.elapsed() < limit {
            let round = Instant::now();
            let caught_up = async {
                let pos = orig
                    .master_status()
                    .await?
                    .context("binary logging is off")?;
                let d = new.dialect().await?;
                let (wait, kind) = d.wait_for_position(&pos.coord, limit);
                anyhow::Ok(new.wait(&wait, kind, limit).await?)
            };
            if !matches!(caught_up.await, Ok(WaitOutcome::Reached))
                || round.elapsed() < Duration::from_millis(20)
            {
                break;
            }
        }
    }

    async fn block_and_capture(
        &self,
        plan: &SwitchPlan,
        timed: Timed<'_>,
    ) -> anyhow::Result<Positions> {
        let orig = self.server(&plan.orig.name).context("old master")?;
        let new = self.server(&plan.new.name).context("new master")?;
        let limit = Duration::from_millis(plan.limits.catch_up_timeout_ms);
        let t = Instant::now();
        timeout(self.step_timeout, orig.set_read_only(true))
            .await
            .context("SET GLOBAL read_only=ON timed out")??;
        timed("  read_only=ON", t);
        let t = Instant::now();
        let killed = orig.kill_client_connections().await?.len();
        failpoint("switch-after-block");
        let orig_pos = orig
            .master_status()
            .await?
            .context("binary logging is off")?
            .coord;
        timed("  kill sessions, position", t);
        let t = Instant::now();
        let d = new.dialect().await?;
        let (wait, kind) = d.wait_for_position(&orig_pos, limit);
        match new.wait(&wait, kind, limit).await? {
            WaitOutcome::Reached => {}
            other => bail!(
                "{} did not execute up to {orig_pos} within {limit:?}: {other:?}",
                plan.new
            ),
        }
        timed("  new master catches up", t);
        let t = Instant::now();
        new.execute(&d.stop_replica()).await?;
        let st = new
            .master_status()
            .await?
            .context("binary logging is off")?;
        timed("  new master stops replicating", t);
        Ok(Positions {
            orig: orig_pos,
            new: Some(st.coord),
            sessions_killed: killed,
        })
    }

    async fn enable_writes(&self, new: &ServerRef) -> anyhow::Result<()> {
        let s = self.server(&new.name).context("new master")?;
        s.set_read_only(false).await?;
        Ok(())
    }

    async fn follow_new_master(
        &self,
        replica: &ServerRef,
        plan: &SwitchPlan,
        positions: &Positions,
    ) -> anyhow::Result<String> {
        let limit = self.step_timeout;
        let s = self
            .server(&replica.name)
            .context("no connection settings")?;
        let d = s.dialect().await?;
        // Everything the old master wrote first, then the new source.
        if let Some(st) = s.replica_status().await?
            && !st.replicates_from(&plan.new.host, plan.new.port)
        {
            let (wait, kind) = d.wait_for_position(&positions.orig, limit);
            match s.wait(&wait, kind, limit).await? {
                WaitOutcome::Reached => {}
                other => bail!("did not execute up to {}: {other:?}", positions.orig),
            }
        }
        let done = self
            .repoint(
                &replica.name,
                &plan.new,
                plan.follow_by.into(),
                positions.new.as_ref(),
            )
            .await?;
        Ok(done.unwrap_or_else(|| "already replicating".into()))
    }

    async fn old_master_follows(
        &self,
        plan: &SwitchPlan,
        positions: &Positions,
    ) -> anyhow::Result<String> {
        let s = self.server(&plan.orig.name).context("old master")?;
        let d = s.dialect().await?;
        s.set_read_only(true).await?;
        if plan.follow_by == FollowBy::Gtid {
            // Its own binlog is exactly what the new master executed from it.
            let g = s.gtid_state().await?;
            if let Some(pos) = g.binlog_pos
                && let Some(set) = d.set_gtid_slave_pos(&crate::db::GtidSet::MariaDb(pos))
            {
                // Source first, position second: if its agent fenced it meanwhile (its lease
                // lapsed because the switchover took longer than the TTL, e.g. a new leader
                // took over), the fence's global read lock blocks `SET GLOBAL gtid_slave_pos`
                // but not CHANGE MASTER; once the host is a read-only replica the agent
                // releases that lock (within a second), and the SET goes through.
                let source = change_source(
                    d.version.flavor,
                    &plan.new,
                    &self.account,
                    RepointBy::Gtid,
                    None,
                )?;
                s.execute(&d.stop_replica()).await?;
                s.execute(&d.change_source(&source)).await?;
                s.execute(&set).await?;
                s.execute(&d.start_replica()).await?;
                return Ok(format!("replicates from {}", plan.new));
            }
        }
        let done = self
            .repoint(
                &plan.orig.name,
                &plan.new,
                plan.follow_by.into(),
                positions.new.as_ref(),
            )
            .await?;
        Ok(done.unwrap_or_else(|| "already replicating".into()))
    }

    async fn forget_source(&self, new: &ServerRef) -> anyhow::Result<()> {
        let s = self.server(&new.name).context("new master")?;
        let d = s.dialect().await?;
        s.execute(&d.stop_replica()).await?;
        s.execute(&d.reset_replica_all()).await?;
        Ok(())
    }

    async fn undo(&self, orig: &str, new: &str) -> anyhow::Result<()> {
        let undo = async {
            if let Some(s) = self.server(new)
                && let Some(st) = s.replica_status().await?
                && !st.sql_running
            {
                let d = s.dialect().await?;
                s.execute(&d.start_replica()).await?;
            }
            let s = self
                .server(orig)
                .context("no connection settings for the old master")?;
            s.set_read_only(false).await?;
            anyhow::Ok(())
        };
        timeout(self.step_timeout, undo)
            .await
            .map_err(|_| anyhow::anyhow!("no answer"))?
    }
}
