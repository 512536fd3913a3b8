//! Periodic observation rounds over every database, and the final reads after healing.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Row};

use crate::history::{DbObservation, Event, StateAround};
use crate::recorder::Recorder;

/// A database the run observes: its name in the history and how to reach it.
#[derive(Debug, Clone)]
pub struct DbEndpoint {
    /// The server's name in the cluster file (`node1`...).
    pub name: String,
    pub node: String,
    pub opts: Opts,
    /// The application account (no admin privileges, so `read_only` applies to it, as to a
    /// production application): the workload writes and the write probe use it.
    pub app: Option<Opts>,
}

/// The write probe's table: one row per server address, bumped by each probe.
pub const PROBE_TABLE: &str = "CREATE TABLE IF NOT EXISTS jepsen.probe (node VARCHAR(64) PRIMARY KEY, n BIGINT UNSIGNED NOT NULL)";
pub const APP_USER: &str = "jepsen_app";

/// MariaDB's "running with --read-only" refusals.
fn refused_as_read_only(e: &mysql_async::Error) -> bool {
    matches!(e, mysql_async::Error::Server(s) if matches!(s.code, 1290 | 1792 | 1836))
}

/// Whether `db` takes a real write from an account without admin privileges: `Some(false)`
/// when refused as read-only, `None` without an answer (down, paused, or a semi-sync commit
/// waiting for an acknowledgement) or on any other error.
pub async fn probe_write(db: &DbEndpoint) -> Option<bool> {
    let opts = db.app.as_ref()?;
    let probe = async {
        let mut conn = Conn::new(opts.clone()).await.ok()?;
        let r = conn
            .exec_drop(
                "INSERT INTO jepsen.probe (node, n) VALUES (?, 1) ON DUPLICATE KEY UPDATE n = n + 1",
                (db.node.as_str(),),
            )
            .await;
        let out = match r {
            Ok(()) => Some(true),
            Err(e) if refused_as_read_only(&e) => Some(false),
            Err(_) => None,
        };
        let _ = conn.disconnect().await;
        out
    };
    tokio::time::timeout(PROBE_TIMEOUT, probe)
        .await
        .ok()
        .flatten()
}

const PROBE_TIMEOUT: Duration = Duration::from_millis(400);

async fn connect(opts: &Opts) -> Option<Conn> {
    tokio::time::timeout(PROBE_TIMEOUT, Conn::new(opts.clone()))
        .await
        .ok()?
        .ok()
}

fn text(row: &Row, name: &str) -> Option<String> {
    let idx = row
        .columns_ref()
        .iter()
        .position(|c| c.name_str() == name)?;
    match row.as_ref(idx)? {
        mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        mysql_async::Value::Int(i) => Some(i.to_string()),
        mysql_async::Value::UInt(u) => Some(u.to_string()),
        _ => None,
    }
}

/// One database's state right now; unreachable is an observation, not an error.
pub async fn observe(db: &DbEndpoint) -> DbObservation {
    let mut obs = DbObservation {
        node: db.node.clone(),
        reachable: false,
        read_only: None,
        source: None,
        gtid_binlog_pos: None,
        writable: None,
    };
    let Some(mut conn) = connect(&db.opts).await else {
        return obs;
    };
    let probe = async {
        let vars: Option<Row> = conn
            .query_first("SELECT @@read_only AS ro, @@gtid_binlog_pos AS gtid")
            .await
            .ok()?;
        let slave: Option<Row> = conn.query_first("SHOW SLAVE STATUS").await.ok()?;
        Some((vars, slave))
    };
    if let Ok(Some((vars, slave))) = tokio::time::timeout(PROBE_TIMEOUT, probe).await {
        obs.reachable = true;
        if let Some(v) = vars {
            obs.read_only = text(&v, "ro").map(|x| x != "0");
            obs.gtid_binlog_pos = text(&v, "gtid");
        }
        obs.source = slave.and_then(|s| {
            Some(format!(
                "{}:{}",
                text(&s, "Master_Host")?,
                text(&s, "Master_Port")?
            ))
        });
    }
    let _ = tokio::time::timeout(PROBE_TIMEOUT, conn.disconnect()).await;
    if obs.reachable {
        obs.writable = probe_write(db).await;
    }
    obs
}

/// Records a `DbRound` every `interval` until `stop` is set, each between two reads of the
/// replicated state through `managers` (none: the round carries no state).
pub async fn observer(
    dbs: Vec<DbEndpoint>,
    managers: Vec<raftmha::api::client::AdminClient>,
    interval: Duration,
    stop: Arc<AtomicBool>,
    rec: Recorder,
) {
    let mut round = 0;
    let view = |state: Option<raftmha::state::ManagerState>| {
        let c = state?.clusters.remove(crate::system::CLUSTER)?;
        Some(crate::journal::state_view(&c, &|n| address(&dbs, n)))
    };
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let started_ns = Some(rec.now_ns());
        let before = view(read_state_within(&managers).await);
        let nodes = futures::future::join_all(dbs.iter().map(observe)).await;
        let after = view(read_state_within(&managers).await);
        let state = (!managers.is_empty()).then_some(StateAround { before, after });
        rec.record(Event::DbRound {
            round,
            started_ns,
            nodes,
            state,
        });
        tokio::time::sleep(interval).await;
    }
}

async fn read_state_within(
    managers: &[raftmha::api::client::AdminClient],
) -> Option<raftmha::state::ManagerState> {
    if managers.is_empty() {
        return None;
    }
    tokio::time::timeout(PROBE_TIMEOUT, crate::system::read_state(managers))
        .await
        .ok()
        .flatten()
}

/// The address (`host:port`) of the server named `name`, as observations name it.
pub fn address(dbs: &[DbEndpoint], name: &str) -> String {
    dbs.iter()
        .find(|d| d.name == name)
        .map_or_else(|| name.to_string(), |d| d.node.clone())
}

/// Reads every id and the table checksum from `db`, recorded as a `FinalRead` with `role`.
pub async fn final_read(db: &DbEndpoint, role: &str, rec: &Recorder) -> anyhow::Result<()> {
    let mut conn =
        tokio::time::timeout(Duration::from_secs(5), Conn::new(db.opts.clone())).await??;
    let ids: Vec<u64> = conn
        .query("SELECT id FROM jepsen.writes ORDER BY id")
        .await?;
    let sum: Option<Row> = conn.query_first("CHECKSUM TABLE jepsen.writes").await?;
    let checksum = sum
        .and_then(|r| text(&r, "Checksum"))
        .and_then(|s| s.parse().ok());
    conn.disconnect().await?;
    rec.record(Event::FinalRead {
        node: db.node.clone(),
        role: role.into(),
        ids,
        checksum,
    });
    Ok(())
}
