//! Periodic observation rounds over every database, and the final reads after healing.
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, Row};

use crate::history::{DbObservation, Event};
use crate::recorder::Recorder;

/// A database the run observes: its name in the history and how to reach it.
#[derive(Debug, Clone)]
pub struct DbEndpoint {
    /// The server's name in the cluster file (`node1`...).
    pub name: String,
    pub node: String,
    pub opts: Opts,
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
    obs
}

/// Records a `DbRound` every `interval` until `stop` is set.
pub async fn observer(
    dbs: Vec<DbEndpoint>,
    interval: Duration,
    stop: Arc<AtomicBool>,
    rec: Recorder,
) {
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let nodes = futures::future::join_all(dbs.iter().map(observe)).await;
        rec.record(Event::DbRound { round, nodes });
        tokio::time::sleep(interval).await;
    }
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
