//! What operator operations' runs share: the [`Runner`] (journal, ownership) with the
//! servers it acts on, and pointing a replica at a new master.
use std::ops::Deref;

use anyhow::{Context, bail};

use super::env::Env;
use super::input::ServerRef;
use super::runner::{Journal, Runner};
use super::switchover::FollowBy;
use crate::db::{BinlogCoord, ChangeSource, DbServer, Dialect, MysqlServer, SourcePosition};
use crate::state::ClusterRecord;

pub(crate) use super::runner::result_of;

/// An operation's run: its owner's [`Runner`] and the servers it acts on.
pub(crate) struct OpRun<'r, 'a, J> {
    pub runner: &'r Runner<'a, J>,
    pub env: &'r Env,
}

impl<'a, J: Journal> Deref for OpRun<'_, 'a, J> {
    type Target = Runner<'a, J>;
    fn deref(&self) -> &Self::Target {
        self.runner
    }
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
