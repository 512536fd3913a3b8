//! Keeps `MASTER_HEARTBEAT_PERIOD` on every replica of the current master at the cluster
//! file's `settings.heartbeat_period_ms`, so a silent master (frozen or cut-off host: no TCP
//! reset) shows as a stream that stopped within a few periods instead of after
//! `slave_net_timeout` ([`crate::detect::silence`]).
//!
//! MariaDB resets the period to `slave_net_timeout / 2` on every `CHANGE MASTER` that names a
//! host, and refuses `CHANGE MASTER` while either replication thread runs (error 1198, seen on
//! 10.11), so the leader re-checks after every repoint (failover, switchover, rejoin, an
//! operator's own) and fixes a replica with `STOP SLAVE; CHANGE MASTER TO
//! MASTER_HEARTBEAT_PERIOD=…; START SLAVE`. It runs as the cluster's task, so never during a
//! failover or an operation, and only while every manager sees the master alive.
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use futures::future::join_all;
use tokio::time::{Instant, timeout};

use crate::db::{DbServer, Dialect, IoThread, MysqlServer, ReplicaStatus};
use crate::state::{ClusterRecord, Verdict};

/// How often each cluster's replicas are checked.
const SWEEP_EVERY: Duration = Duration::from_secs(2);
/// Bound on reading one replica's status in a sweep.
const CHECK_LIMIT: Duration = Duration::from_secs(1);
/// Bound on stopping, changing and restarting one replica.
const CHANGE_LIMIT: Duration = Duration::from_secs(3);

/// Whether `status` is a healthy replica of `host:port` whose heartbeat period is not
/// `want`. Replicas with a stopped thread are left alone (an operator or a step stopped it),
/// and so are servers that do not show their period (MySQL, MariaDB's plain status).
pub fn needs_period(status: &ReplicaStatus, host: &str, port: u16, want: Duration) -> bool {
    let want_ms = u64::try_from(want.as_millis()).unwrap_or(u64::MAX);
    status.replicates_from(host, port)
        && status.io_thread == IoThread::Yes
        && status.sql_running
        && status
            .heartbeat_period_ms
            .is_some_and(|have| have.abs_diff(want_ms) > 1)
}

/// Whether the cluster is quiet enough to touch its replicas: a known master that every
/// manager sees alive, and no failover or operation in flight.
fn quiet(c: &ClusterRecord) -> Option<&str> {
    let master = c.master.as_deref()?;
    if c.paused || c.failovers.iter().any(|f| f.finished.is_none()) {
        return None;
    }
    let all_alive = c
        .verdicts
        .get(master)
        .is_some_and(|by| by.values().all(|v| v.verdict == Verdict::Alive));
    all_alive.then_some(master)
}

/// Checks replicas outside the cluster's task slot (a hung replica must not delay a
/// failover) and takes the slot only to change the ones found wrong.
#[derive(Default, Clone)]
pub struct HeartbeatKeeper {
    state: Arc<Mutex<KeeperState>>,
}

#[derive(Default)]
struct KeeperState {
    last_sweep: BTreeMap<String, Instant>,
    /// cluster → replicas found with another period by the last sweep.
    pending: BTreeMap<String, BTreeSet<String>>,
}

impl HeartbeatKeeper {
    /// One turn of the leader's loop for cluster `c`, which runs no task now. Returns the
    /// task that changes replicas, to run in the cluster's slot, when the last sweep found
    /// some; otherwise starts a sweep when one is due. `servers`: the cluster's connections.
    pub fn tick(
        &self,
        c: &ClusterRecord,
        servers: impl FnOnce() -> Option<BTreeMap<String, MysqlServer>>,
    ) -> Option<std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>> {
        let want = Duration::from_millis(c.spec.settings.heartbeat_period_ms);
        let name = c.spec.name.clone();
        let master = (!want.is_zero())
            .then(|| quiet(c))
            .flatten()
            .and_then(|m| c.spec.servers.iter().find(|s| s.name == m));
        let mut st = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(master) = master else {
            st.pending.remove(&name);
            return None;
        };
        let (host, port, master_name) = (master.host.clone(), master.port, master.name.clone());
        let pending = st.pending.remove(&name).unwrap_or_default();
        let due = st
            .last_sweep
            .get(&name)
            .is_none_or(|t| t.elapsed() >= SWEEP_EVERY);
        if pending.is_empty() && !due {
            return None;
        }
        let mut servers = servers()?;
        servers.remove(&master_name);
        if !pending.is_empty() {
            servers.retain(|n, _| pending.contains(n));
            return Some(Box::pin(async move {
                for (replica, server) in servers {
                    let outcome = timeout(CHANGE_LIMIT, keep_period(&server, &host, port, want));
                    match outcome.await {
                        Ok(Ok(false)) => {}
                        Ok(Ok(true)) => tracing::info!(
                            cluster = %name,
                            "{replica}: heartbeat period set to {:.3} s",
                            want.as_secs_f64()
                        ),
                        Ok(Err(e)) => tracing::warn!(
                            cluster = %name,
                            "{replica}: cannot set the heartbeat period: {e:#}"
                        ),
                        Err(_) => tracing::warn!(
                            cluster = %name,
                            "{replica}: setting the heartbeat period took over {CHANGE_LIMIT:?}"
                        ),
                    }
                }
            }));
        }
        st.last_sweep.insert(name.clone(), Instant::now());
        let state = self.state.clone();
        tokio::spawn(async move {
            let checks = servers.into_iter().map(|(replica, server)| {
                let (host, name) = (host.clone(), name.clone());
                async move {
                    match timeout(CHECK_LIMIT, server.replica_status()).await {
                        Ok(Ok(Some(s))) if needs_period(&s, &host, port, want) => Some(replica),
                        Ok(Err(e)) => {
                            tracing::debug!(cluster = %name, "{replica}: {e}");
                            None
                        }
                        _ => None,
                    }
                }
            });
            let found: BTreeSet<String> = join_all(checks).await.into_iter().flatten().collect();
            if !found.is_empty() {
                let mut st = state.lock().unwrap_or_else(|p| p.into_inner());
                st.pending.insert(name, found);
            }
        });
        None
    }
}

/// Sets the period on one replica if it needs it; whether it changed anything.
async fn keep_period(
    server: &MysqlServer,
    host: &str,
    port: u16,
    want: Duration,
) -> anyhow::Result<bool> {
    let Some(status) = server.replica_status().await? else {
        return Ok(false);
    };
    // GTID replicas only: MariaDB deletes the relay logs on any CHANGE MASTER, and a
    // file/position replica's failover may need them for a relay-log diff (naming a relay
    // position keeps them but disturbed replication in chaos runs). File/position replicas keep
    // the period their last repoint set.
    let by_gtid = status
        .using_gtid
        .as_deref()
        .is_some_and(|g| !g.eq_ignore_ascii_case("no"));
    if !by_gtid || !needs_period(&status, host, port, want) {
        return Ok(false);
    }
    let d = Dialect::new(server.version().await?);
    server.execute(&d.stop_replica()).await?;
    let changed = server.execute(&d.set_heartbeat_period(want)).await;
    // Restart whatever happened: the replica was running when we came.
    server.execute(&d.start_replica()).await?;
    changed?;
    Ok(true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::db::status::RowMap;

    fn status(host: &str, io: &str, sql: &str, period: Option<&str>) -> ReplicaStatus {
        let mut pairs = vec![
            ("Master_Host", Some(host.to_string())),
            ("Master_Port", Some("3306".into())),
            ("Slave_IO_Running", Some(io.into())),
            ("Slave_SQL_Running", Some(sql.into())),
        ];
        if let Some(p) = period {
            pairs.push(("Slave_heartbeat_period", Some(p.into())));
        }
        ReplicaStatus::parse(&RowMap::from_pairs(pairs)).expect("row")
    }

    const HALF: Duration = Duration::from_millis(500);

    #[test]
    fn a_healthy_replica_with_mariadbs_default_period_is_changed() {
        // MariaDB's default: half of slave_net_timeout (60 s).
        assert!(needs_period(
            &status("db1", "Yes", "Yes", Some("30.000")),
            "db1",
            3306,
            HALF
        ));
        assert!(!needs_period(
            &status("db1", "Yes", "Yes", Some("0.500")),
            "db1",
            3306,
            HALF
        ));
    }

    #[test]
    fn replicas_that_are_not_plainly_healthy_are_left_alone() {
        for s in [
            status("db9", "Yes", "Yes", Some("30.000")),
            status("db1", "Connecting", "Yes", Some("30.000")),
            status("db1", "No", "Yes", Some("30.000")),
            status("db1", "Yes", "No", Some("30.000")),
            status("db1", "Yes", "Yes", None),
        ] {
            assert!(!needs_period(&s, "db1", 3306, HALF), "{s:?}");
        }
    }
}
