//! The effects behind [`super::route`]: what the managers said (renewals and `NoteMaster`),
//! a background task that reads the local mysqld's `read_only` and replica status every
//! [`REFRESH`] on one kept connection, and the HTTP listener (`http_listen` in node.toml).
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;
use tokio::time::Instant;

use super::keeper::Keeper;
use super::route::{self, Recorded, ReplicaFacts, SqlFacts};
use crate::http::{Get, Handler, Reply};
use crate::tools::db::DbTarget;

/// How often mysqld's state is read (HAProxy polls every 250 ms).
pub const REFRESH: Duration = Duration::from_millis(150);
/// Bound on one refresh (connect included).
const QUERY_TIMEOUT: Duration = Duration::from_millis(500);

#[derive(Default)]
pub struct Routes {
    recorded: Mutex<Option<Recorded>>,
    sql: Mutex<Option<SqlFacts>>,
}

impl Routes {
    /// Records what a manager said; returns false when it names an older epoch than known.
    pub fn note(&self, new: Recorded) -> bool {
        let mut cur = self.recorded.lock().unwrap_or_else(|p| p.into_inner());
        if cur.as_ref().is_some_and(|c| !c.superseded_by(&new)) {
            return false;
        }
        if cur
            .as_ref()
            .is_none_or(|c| c.epoch != new.epoch || c.master != new.master)
        {
            tracing::info!(
                cluster = %new.cluster,
                epoch = new.epoch,
                "the managers record {} ({}) as master{}",
                new.master,
                new.master_addr,
                if new.is_me { ": this host" } else { "" }
            );
        }
        *cur = Some(new);
        true
    }

    pub fn recorded(&self) -> Option<Recorded> {
        self.recorded
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn sql(&self) -> Option<SqlFacts> {
        self.sql.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Answers one routing request from the cached facts.
    pub fn answer(&self, keeper: &Keeper, get: &Get) -> Reply {
        let now = Instant::now();
        match get.path.as_str() {
            "/health" => Reply::text(200, "agent alive"),
            "/master" | "/primary" => route::master(
                self.recorded().as_ref(),
                keeper.lease_facts(now),
                self.sql().as_ref(),
                now,
            ),
            "/replica" => {
                let lag = match get.param("lag").map(str::parse::<u64>) {
                    None => None,
                    Some(Ok(l)) => Some(l),
                    Some(Err(_)) => {
                        return Reply::text(400, "lag must be a whole number of seconds");
                    }
                };
                route::replica(self.recorded().as_ref(), self.sql().as_ref(), lag, now)
            }
            _ => Reply::text(404, "not found: /master, /replica[?lag=N], /health"),
        }
    }

    /// Reads mysqld's state every [`REFRESH`] until aborted.
    pub async fn refresh(self: Arc<Self>, db: Option<DbTarget>) {
        let mut conn: Option<Conn> = None;
        loop {
            let facts = match &db {
                None => Err("no [db] section in the agent config".to_string()),
                Some(db) => {
                    match tokio::time::timeout(QUERY_TIMEOUT, read_facts(db, &mut conn)).await {
                        Ok(r) => r,
                        Err(_) => Err("no answer".into()),
                    }
                }
            };
            if facts.is_err() {
                conn = None;
            }
            let now = Instant::now();
            let facts = facts.unwrap_or_else(|e| SqlFacts {
                at: now,
                error: Some(e),
                read_only: true,
                replica: None,
            });
            *self.sql.lock().unwrap_or_else(|p| p.into_inner()) =
                Some(SqlFacts { at: now, ..facts });
            tokio::time::sleep(REFRESH).await;
        }
    }
}

/// Starts the refresher and the HTTP listener; both stop when the returned tasks are aborted.
pub async fn start(
    addr: std::net::SocketAddr,
    routes: Arc<Routes>,
    keeper: Arc<Keeper>,
    db: Option<DbTarget>,
) -> std::io::Result<[tokio::task::JoinHandle<()>; 2]> {
    let refresher = tokio::spawn(routes.clone().refresh(db));
    let handler: Handler = Arc::new(move |g: &Get| routes.answer(&keeper, g));
    let http = crate::http::start(addr, handler).await?;
    tracing::info!(%addr, "routing checks on http://{addr}/master, /replica, /health");
    Ok([refresher, http])
}

async fn read_facts(db: &DbTarget, conn: &mut Option<Conn>) -> Result<SqlFacts, String> {
    if conn.is_none() {
        *conn = Some(Conn::new(db.opts()).await.map_err(|e| e.to_string())?);
    }
    let Some(c) = conn.as_mut() else {
        return Err("no connection".into());
    };
    let ro: Option<u8> = c
        .query_first("SELECT @@global.read_only")
        .await
        .map_err(|e| e.to_string())?;
    let row: Option<mysql_async::Row> = match c.query_first("SHOW SLAVE STATUS").await {
        Ok(r) => r,
        // MySQL 8.4 knows only the new spelling.
        Err(_) => c
            .query_first("SHOW REPLICA STATUS")
            .await
            .map_err(|e| e.to_string())?,
    };
    Ok(SqlFacts {
        at: Instant::now(),
        error: None,
        read_only: ro != Some(0),
        replica: row.as_ref().map(replica_facts),
    })
}

/// The columns of one `SHOW SLAVE STATUS` row the routing check needs (MariaDB and MySQL
/// spellings).
fn replica_facts(row: &mysql_async::Row) -> ReplicaFacts {
    let text = |names: &[&str]| -> Option<String> {
        names.iter().find_map(|n| {
            let i = row.columns_ref().iter().position(|c| c.name_str() == *n)?;
            match row.as_ref(i)? {
                mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
                mysql_async::Value::Int(v) => Some(v.to_string()),
                mysql_async::Value::UInt(v) => Some(v.to_string()),
                _ => None,
            }
        })
    };
    let num = |names: &[&str]| text(names).and_then(|v| v.trim().parse::<u64>().ok());
    let yes = |names: &[&str]| text(names).is_some_and(|v| v.eq_ignore_ascii_case("yes"));
    ReplicaFacts {
        source_host: text(&["Master_Host", "Source_Host"]).unwrap_or_default(),
        source_port: num(&["Master_Port", "Source_Port"])
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(0),
        io_running: yes(&["Slave_IO_Running", "Replica_IO_Running"]),
        sql_running: yes(&["Slave_SQL_Running", "Replica_SQL_Running"]),
        last_io_errno: num(&["Last_IO_Errno"]).map_or(0, |v| v as u32),
        last_sql_errno: num(&["Last_SQL_Errno"]).map_or(0, |v| v as u32),
        seconds_behind: num(&["Seconds_Behind_Master", "Seconds_Behind_Source"]),
    }
}
