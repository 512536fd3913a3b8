//! [`DbServer`] over mysql_async: TCP only, every connect and query bounded by a timeout,
//! errors classified into "alive" and "failed" the way MHA does.
//!
//! Two persistent connections: one for liveness checks, one for everything else, so a ping
//! never queues behind a long wait and the write probe's session settings stay on its own
//! connection.
use std::io;
use std::sync::Mutex as StdMutex;
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row, Value};
use tokio::sync::Mutex;
use tokio::time::timeout;

use super::server::{ALIVE_ERROR_CODES, DbError, DbServer, FailureKind, PingOutcome, PingType};
use super::sql::{Secret, Statement, WaitKind, WaitOutcome};
use super::status::{GtidState, MasterStatus, ProcessInfo, ReplicaStatus, RowMap, ServerVariables};
use super::version::ServerVersion;

/// Where and how to connect.
#[derive(Debug, Clone)]
pub struct ConnectSettings {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub connect_timeout: Duration,
    pub read_timeout: Duration,
}

impl ConnectSettings {
    /// From mysql_async options (host, port, user, password), e.g. the sandbox's
    /// `admin_opts`; sockets and other options are not carried over (TCP only).
    pub fn from_opts(opts: &Opts, connect_timeout: Duration, read_timeout: Duration) -> Self {
        ConnectSettings {
            host: opts.ip_or_hostname().to_string(),
            port: opts.tcp_port(),
            user: opts.user().unwrap_or_default().to_string(),
            password: Secret::new(opts.pass().unwrap_or_default()),
            connect_timeout,
            read_timeout,
        }
    }

    fn opts(&self) -> Opts {
        OptsBuilder::default()
            .ip_or_hostname(self.host.clone())
            .tcp_port(self.port)
            .user(Some(self.user.clone()))
            .pass(Some(self.password.expose().to_string()))
            .prefer_socket(false)
            // Our string literals use backslash escapes (see `sql::quote`).
            .init(vec![
                "SET SESSION sql_mode = REPLACE(@@SESSION.sql_mode, 'NO_BACKSLASH_ESCAPES', '')",
            ])
            .into()
    }
}

/// The write probe. Not binlogged (`sql_log_bin = 0`), so it never replicates and never
/// creates a GTID of its own on the master.
const NO_BINLOG: &str = "SET SESSION sql_log_bin = 0";
const INSERT_PROBE: &str = "INSERT INTO raftmha_probe.heartbeat (id, at) VALUES (1, NOW(6)) \
                            ON DUPLICATE KEY UPDATE at = NOW(6)";
const PROBE_SETUP: &[&str] = &[
    "CREATE DATABASE IF NOT EXISTS raftmha_probe",
    "CREATE TABLE IF NOT EXISTS raftmha_probe.heartbeat \
     (id TINYINT UNSIGNED PRIMARY KEY, at DATETIME(6) NOT NULL) ENGINE=InnoDB",
];

pub struct MysqlServer {
    settings: ConnectSettings,
    addr: String,
    ping_conn: Mutex<Option<Conn>>,
    ops_conn: Mutex<Option<Conn>>,
    /// Cached after the first successful `version()`, forgotten whenever a new session is
    /// opened (the server may have been restarted with another version).
    version: StdMutex<Option<ServerVersion>>,
}

impl MysqlServer {
    /// Does not connect yet: the first call does.
    pub fn new(settings: ConnectSettings) -> Self {
        let addr = format!("{}:{}", settings.host, settings.port);
        MysqlServer {
            settings,
            addr,
            ping_conn: Mutex::new(None),
            ops_conn: Mutex::new(None),
            version: StdMutex::new(None),
        }
    }

    async fn connect(&self) -> Result<Conn, DbError> {
        match timeout(
            self.settings.connect_timeout,
            Conn::new(self.settings.opts()),
        )
        .await
        {
            Ok(Ok(conn)) => Ok(conn),
            Ok(Err(e)) => Err(classify(&self.addr, "connect", &e)),
            Err(_) => Err(DbError::Unreachable {
                addr: self.addr.clone(),
                kind: FailureKind::Timeout,
            }),
        }
    }

    /// Runs `sql` on the connection in `slot`, connecting first when needed. A failed or timed
    /// out query drops the connection: its state is unknown.
    async fn rows_on(
        &self,
        slot: &Mutex<Option<Conn>>,
        sql: &str,
        shown: &str,
        read_timeout: Duration,
    ) -> Result<Vec<RowMap>, DbError> {
        let mut guard = slot.lock().await;
        let mut conn = match guard.take() {
            Some(c) => c,
            None => {
                let c = self.connect().await?;
                // A new session may be a restarted (even upgraded) server: ask again.
                if let Ok(mut v) = self.version.lock() {
                    *v = None;
                }
                c
            }
        };
        match timeout(read_timeout, conn.query::<Row, _>(sql)).await {
            Ok(Ok(rows)) => {
                *guard = Some(conn);
                Ok(rows.into_iter().map(row_map).collect())
            }
            Ok(Err(e)) => {
                let mut err = classify(&self.addr, shown, &e);
                // A server error leaves the session usable; anything else does not.
                if let DbError::Server { message, .. } = &mut err {
                    *guard = Some(conn);
                    // Syntax errors quote the statement ("near '...'"): never let a secret
                    // through that way.
                    if sql != shown {
                        *message =
                            "(server message withheld: the statement carries a secret)".into();
                    }
                }
                Err(err)
            }
            Err(_) => Err(DbError::Timeout {
                addr: self.addr.clone(),
                what: shown.to_string(),
                after: read_timeout,
            }),
        }
    }

    /// Rows of any query (process lists, binlog events), by lower-cased column name.
    pub async fn query(&self, statement: &Statement) -> Result<Vec<RowMap>, DbError> {
        self.rows(statement).await
    }

    async fn rows(&self, statement: &Statement) -> Result<Vec<RowMap>, DbError> {
        let shown = statement.to_string();
        self.rows_on(
            &self.ops_conn,
            statement.sql(),
            &shown,
            self.settings.read_timeout,
        )
        .await
    }

    async fn ping_inner(&self, kind: PingType) -> Result<(), DbError> {
        let read = self.settings.read_timeout;
        match kind {
            PingType::Select => {
                self.rows_on(&self.ping_conn, "SELECT 1", "SELECT 1", read)
                    .await?;
            }
            PingType::Connect => {
                let mut conn = self.connect().await?;
                let result = timeout(read, conn.query_drop("SELECT 1")).await;
                // Do not wait for a polite goodbye from a server we are judging.
                drop(conn);
                match result {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => return Err(classify(&self.addr, "SELECT 1", &e)),
                    Err(_) => {
                        return Err(DbError::Timeout {
                            addr: self.addr.clone(),
                            what: "SELECT 1".into(),
                            after: read,
                        });
                    }
                }
            }
            PingType::Insert => {
                // Two round trips per check so the session never writes to the binlog, even
                // when the connection was (re)opened by another kind of check.
                self.rows_on(&self.ping_conn, NO_BINLOG, NO_BINLOG, read)
                    .await?;
                match self
                    .rows_on(&self.ping_conn, INSERT_PROBE, "INSERT heartbeat", read)
                    .await
                {
                    // 1049 unknown database, 1146 unknown table: create them once, retry.
                    Err(DbError::Server {
                        code: 1049 | 1146, ..
                    }) => {
                        for sql in PROBE_SETUP {
                            self.rows_on(&self.ping_conn, sql, sql, read).await?;
                        }
                        self.rows_on(&self.ping_conn, INSERT_PROBE, "INSERT heartbeat", read)
                            .await?;
                    }
                    other => {
                        other?;
                    }
                }
            }
        }
        Ok(())
    }
}

impl DbServer for MysqlServer {
    fn addr(&self) -> &str {
        &self.addr
    }

    async fn ping(&self, kind: PingType) -> PingOutcome {
        match self.ping_inner(kind).await {
            Ok(()) => PingOutcome::Alive,
            Err(e) => e.as_ping_outcome(),
        }
    }

    async fn version(&self) -> Result<ServerVersion, DbError> {
        if let Some(v) = self.version.lock().ok().and_then(|g| g.clone()) {
            return Ok(v);
        }
        let rows = self
            .rows(&plain(
                "SELECT VERSION() AS version, @@version_comment AS comment",
            ))
            .await?;
        let row = first_row(&self.addr, rows)?;
        let v = ServerVersion::parse(row.get(&["version"]).unwrap_or(""), row.get(&["comment"]))?;
        if let Ok(mut g) = self.version.lock() {
            *g = Some(v.clone());
        }
        Ok(v)
    }

    async fn variables(&self) -> Result<ServerVariables, DbError> {
        let rows = self.rows(&self.dialect().await?.show_variables()).await?;
        let pairs = rows.iter().filter_map(|r| {
            Some((
                r.get(&["Variable_name"])?.to_string(),
                r.get(&["Value"]).map(str::to_string),
            ))
        });
        Ok(ServerVariables::parse(&RowMap::from_pairs(pairs))?)
    }

    async fn gtid_state(&self) -> Result<GtidState, DbError> {
        let dialect = self.dialect().await?;
        let rows = self.rows(&dialect.gtid_state_query()).await?;
        Ok(GtidState::parse(
            dialect.version.flavor,
            &first_row(&self.addr, rows)?,
        )?)
    }

    async fn replica_status(&self) -> Result<Option<ReplicaStatus>, DbError> {
        let rows = self
            .rows(&self.dialect().await?.show_replica_status())
            .await?;
        Ok(default_connection_row(&rows)
            .map(ReplicaStatus::parse)
            .transpose()?)
    }

    async fn master_status(&self) -> Result<Option<MasterStatus>, DbError> {
        let rows = self
            .rows(&self.dialect().await?.show_master_status())
            .await?;
        Ok(rows.first().map(MasterStatus::parse).transpose()?)
    }

    async fn execute(&self, statement: &Statement) -> Result<(), DbError> {
        self.rows(statement).await.map(drop)
    }

    async fn wait(
        &self,
        statement: &Statement,
        kind: WaitKind,
        wait_for: Duration,
    ) -> Result<WaitOutcome, DbError> {
        let shown = statement.to_string();
        // The server-side timeout rounds up to whole seconds; the client side bounds it by
        // the caller's exact duration plus one read timeout.
        let limit = wait_for + self.settings.read_timeout;
        let rows = match self
            .rows_on(&self.ops_conn, statement.sql(), &shown, limit)
            .await
        {
            Ok(rows) => rows,
            Err(DbError::Timeout { .. }) => return Ok(WaitOutcome::TimedOut),
            Err(e) => return Err(e),
        };
        let row = first_row(&self.addr, rows)?;
        let value = match row.get(&["result"]) {
            None => None,
            Some(v) => Some(v.trim().parse::<i64>().map_err(|_| DbError::Unexpected {
                addr: self.addr.clone(),
                message: format!("{shown} returned {v:?}"),
            })?),
        };
        Ok(kind.interpret(value))
    }

    async fn kill_client_connections(&self) -> Result<Vec<u64>, DbError> {
        let dialect = self.dialect().await?;
        let own = first_row(&self.addr, self.rows(&dialect.connection_id()).await?)?;
        let own_id: u64 = own.get(&["id"]).and_then(|v| v.parse().ok()).unwrap_or(0);
        let ping_id = self
            .ping_conn
            .lock()
            .await
            .as_ref()
            .map(|c| u64::from(c.id()));
        let mut killed = Vec::new();
        for row in self.rows(&dialect.process_list()).await? {
            let p = ProcessInfo::parse(&row)?;
            if !p.is_killable_client(own_id) || Some(p.id) == ping_id {
                continue;
            }
            match self.execute(&dialect.kill_connection(p.id)).await {
                Ok(()) => killed.push(p.id),
                // 1094: unknown thread id, it ended on its own meanwhile.
                Err(DbError::Server { code: 1094, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(killed)
    }
}

/// MariaDB's `SHOW ALL SLAVES STATUS` lists every named connection: the default (unnamed)
/// one is what `SHOW SLAVE STATUS` shows. Other servers return at most one row.
fn default_connection_row(rows: &[RowMap]) -> Option<&RowMap> {
    match rows.first()?.get(&["Connection_name"]) {
        None => rows.first(),
        Some(_) => rows
            .iter()
            .find(|r| r.get(&["Connection_name"]).is_some_and(str::is_empty)),
    }
}

fn plain(sql: &str) -> Statement {
    Statement::new(sql)
}

fn first_row(addr: &str, rows: Vec<RowMap>) -> Result<RowMap, DbError> {
    rows.into_iter().next().ok_or_else(|| DbError::Unexpected {
        addr: addr.to_string(),
        message: "query returned no rows".into(),
    })
}

fn row_map(row: Row) -> RowMap {
    let names: Vec<String> = row
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    let values = row.unwrap_raw();
    RowMap::from_pairs(
        names
            .into_iter()
            .zip(values)
            .map(|(name, value)| (name, value.and_then(value_text))),
    )
}

fn value_text(v: Value) -> Option<String> {
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(&b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

/// MHA's classification: server errors in [`ALIVE_ERROR_CODES`] mean "up, refusing us";
/// refused / timed out / reset connections mean "failed".
pub fn classify(addr: &str, what: &str, e: &mysql_async::Error) -> DbError {
    let addr = addr.to_string();
    match e {
        mysql_async::Error::Server(s) if ALIVE_ERROR_CODES.contains(&s.code) => DbError::Refused {
            addr,
            code: s.code,
            message: s.message.clone(),
        },
        mysql_async::Error::Server(s) => DbError::Server {
            addr,
            statement: what.to_string(),
            code: s.code,
            message: s.message.clone(),
        },
        mysql_async::Error::Io(mysql_async::IoError::Io(io)) => DbError::Unreachable {
            addr,
            kind: io_kind(io),
        },
        mysql_async::Error::Driver(mysql_async::DriverError::ConnectionClosed) => {
            DbError::Unreachable {
                addr,
                kind: FailureKind::Reset,
            }
        }
        other => DbError::Unreachable {
            addr,
            kind: FailureKind::Io(other.to_string()),
        },
    }
}

fn io_kind(e: &io::Error) -> FailureKind {
    match e.kind() {
        io::ErrorKind::ConnectionRefused => FailureKind::Refused,
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => FailureKind::Timeout,
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::NotConnected => FailureKind::Reset,
        _ => FailureKind::Io(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn alive_error_codes_mean_alive_and_io_errors_mean_failed() {
        let server = |code| {
            mysql_async::Error::Server(mysql_async::ServerError {
                code,
                message: "m".into(),
                state: "HY000".into(),
            })
        };
        for code in ALIVE_ERROR_CODES {
            assert_eq!(
                classify("a", "x", &server(*code)).as_ping_outcome(),
                PingOutcome::AliveWithError { code: *code }
            );
        }
        assert_eq!(
            classify("a", "x", &server(1290)).as_ping_outcome(),
            PingOutcome::Failed(FailureKind::Server { code: 1290 })
        );
        let io = |kind| mysql_async::Error::Io(mysql_async::IoError::Io(io::Error::from(kind)));
        assert_eq!(
            classify("a", "x", &io(io::ErrorKind::ConnectionRefused)).as_ping_outcome(),
            PingOutcome::Failed(FailureKind::Refused)
        );
        assert_eq!(
            classify("a", "x", &io(io::ErrorKind::TimedOut)).as_ping_outcome(),
            PingOutcome::Failed(FailureKind::Timeout)
        );
        assert_eq!(
            classify("a", "x", &io(io::ErrorKind::ConnectionReset)).as_ping_outcome(),
            PingOutcome::Failed(FailureKind::Reset)
        );
    }

    #[test]
    fn the_password_is_not_in_the_settings_debug_output() {
        let s = ConnectSettings {
            host: "h".into(),
            port: 1,
            user: "u".into(),
            password: Secret::new("hunter2"),
            connect_timeout: Duration::from_millis(1),
            read_timeout: Duration::from_millis(1),
        };
        assert!(!format!("{s:?}").contains("hunter2"));
    }
}
