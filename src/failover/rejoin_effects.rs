//! What a rejoin does outside the journal, behind [`RejoinEffects`]: the real one acts on the
//! servers of an [`Env`] (this file), tests use an in-memory fake. Reads are bounded by the
//! environment's timeouts; the two effects (fence, follow) are idempotent, so a successor
//! owner may repeat the one that was in flight.
use std::future::Future;
use std::time::Duration;

use anyhow::{Context, bail};
use tokio::time::timeout;

use super::env::Env;
use super::input::ServerRef;
use super::rejoin::{BinlogEvent, Divergence};
use super::switchover::FollowBy;
use crate::db::binlogs::{BinaryLog, binary_logs, binlog_events, binlog_gtid_pos};
use crate::db::{DbServer, GtidSet, ReplicaStatus};
use crate::state::ClusterRecord;

pub trait RejoinEffects: Send + Sync {
    /// The host's replication status (`None`: not a replica); an error when it does not
    /// answer.
    fn host_replication(
        &self,
        host: &str,
    ) -> impl Future<Output = anyhow::Result<Option<ReplicaStatus>>> + Send;

    /// The host's binary logs, oldest first.
    fn binary_logs(
        &self,
        host: &str,
    ) -> impl Future<Output = anyhow::Result<Vec<BinaryLog>>> + Send;

    /// At most 1000 events of the host's binlog `file` from offset `from`.
    fn binlog_events(
        &self,
        host: &str,
        file: &str,
        from: u64,
    ) -> impl Future<Output = anyhow::Result<Vec<BinlogEvent>>> + Send;

    /// Whether another replica of the master (neither `host` nor `master`) replicates by
    /// GTID. Servers that do not answer in time count as not.
    fn others_use_gtid(
        &self,
        c: &ClusterRecord,
        host: &str,
        master: &str,
    ) -> impl Future<Output = bool> + Send;

    /// Whether `server` is a MariaDB.
    fn is_mariadb(&self, server: &str) -> impl Future<Output = anyhow::Result<bool>> + Send;

    /// `read_only=ON` and client sessions killed on the host; how many were killed.
    fn fence(&self, host: &str) -> impl Future<Output = anyhow::Result<usize>> + Send;

    /// The host replicates from `master`: by GTID from the divergence point, or from the
    /// successor's captured position. `None` when it already did.
    fn follow(
        &self,
        host: &str,
        master: &ServerRef,
        by: FollowBy,
        d: &Divergence,
    ) -> impl Future<Output = anyhow::Result<Option<String>>> + Send;

    /// Waits (bounded) until the host receives and applies from its source.
    fn wait_replicating(&self, host: &str) -> impl Future<Output = anyhow::Result<()>> + Send;
}

impl RejoinEffects for Env {
    async fn host_replication(&self, host: &str) -> anyhow::Result<Option<ReplicaStatus>> {
        let s = self.db(host)?;
        timeout(self.step_timeout, s.variables())
            .await
            .with_context(|| format!("{host} does not answer"))??;
        Ok(s.replica_status().await?)
    }

    async fn binary_logs(&self, host: &str) -> anyhow::Result<Vec<BinaryLog>> {
        let s = self.db(host)?;
        timeout(self.step_timeout, binary_logs(s))
            .await
            .context("reading its binlog events timed out")?
            .map_err(Into::into)
    }

    async fn binlog_events(
        &self,
        host: &str,
        file: &str,
        from: u64,
    ) -> anyhow::Result<Vec<BinlogEvent>> {
        let s = self.db(host)?;
        timeout(self.step_timeout, binlog_events(s, file, from, 1000))
            .await
            .context("reading its binlog events timed out")?
            .map_err(Into::into)
    }

    async fn others_use_gtid(&self, c: &ClusterRecord, host: &str, master: &str) -> bool {
        for other in c
            .spec
            .servers
            .iter()
            .filter(|x| x.name != host && x.name != master)
        {
            if let Some(o) = self.server(&other.name)
                && let Ok(Ok(Some(st))) = timeout(self.probe_timeout, o.replica_status()).await
                && st.uses_gtid()
            {
                return true;
            }
        }
        false
    }

    async fn is_mariadb(&self, server: &str) -> anyhow::Result<bool> {
        Ok(self.db(server)?.version().await?.is_mariadb())
    }

    async fn fence(&self, host: &str) -> anyhow::Result<usize> {
        Ok(self.db(host)?.stop_client_writes().await?.len())
    }

    async fn follow(
        &self,
        host: &str,
        master: &ServerRef,
        by: FollowBy,
        d: &Divergence,
    ) -> anyhow::Result<Option<String>> {
        let s = self.db(host)?;
        // Checked first: a repeated follow must not move a replicating host's GTID position
        // back to the divergence point (it would apply transactions twice).
        if let Some(st) = s.replica_status().await?
            && st.replicates_from(&master.host, master.port)
            && st.sql_running
        {
            return Ok(None);
        }
        if by == FollowBy::Gtid {
            let pos = binlog_gtid_pos(s, &d.own).await?;
            let dl = s.dialect().await?;
            s.execute(&dl.stop_replica()).await?;
            if let Some(set) = dl.set_gtid_slave_pos(&GtidSet::MariaDb(pos)) {
                s.execute(&set).await?;
            }
        }
        self.repoint(host, master, by.into(), d.successor_pos.as_ref())
            .await
    }

    async fn wait_replicating(&self, host: &str) -> anyhow::Result<()> {
        let s = self.db(host)?;
        // Bounded: the IO thread connects within a retry or two.
        let connected = async {
            for _ in 0..50 {
                if let Some(st) = s.replica_status().await?
                    && st.is_receiving()
                    && st.sql_running
                {
                    return anyhow::Ok(());
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            bail!("replication did not start within 5 s")
        };
        timeout(self.step_timeout, connected)
            .await
            .context("replication status")?
    }
}
