//! Fencing the local mysqld, and the process checks it needs.
//!
//! Escalation: over SQL within [`SQL_FENCE_TIMEOUT`], `read_only=ON`, kill client sessions and
//! take a global read lock (`FLUSH TABLES WITH READ LOCK`) on a connection the agent keeps
//! open; if that cannot be confirmed (mysqld paused or hung) and the agent may stop mysqld,
//! SIGKILL it (a SIGSTOPped process dies on SIGKILL too). A mysqld that is not running counts
//! as fenced: nothing can take writes.
//!
//! Why the lock: on MariaDB 10.11 an account with `READ ONLY ADMIN` (every `GRANT ALL
//! PRIVILEGES` account) writes through `read_only=ON`, and a killed client reconnects at once;
//! the global read lock holds every writer. It is released when the fence is lifted, when the
//! host is promoted again (a newer epoch) or once mysqld replicates from a source (a rejoined
//! old master: its SQL thread needs the lock gone; `read_only` stays).
use std::path::Path;
use std::time::Duration;

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use super::lease::{FENCE_DEADLINE, FenceHow, SQL_FENCE_TIMEOUT};
use crate::tools::db::DbTarget;

/// The result of one fence attempt.
#[derive(Debug, PartialEq, Eq)]
pub enum FenceOutcome {
    Fenced {
        how: FenceHow,
        detail: String,
        /// The connection holding the global read lock (keep it open while fenced).
        lock: Option<LockConn>,
    },
    /// Could not be confirmed; nothing is known to have stopped writes.
    Unconfirmed(String),
}

pub fn read_pid(pid_file: Option<&Path>) -> Option<i32> {
    std::fs::read_to_string(pid_file?).ok()?.trim().parse().ok()
}

pub fn proc_state(pid: i32) -> Option<String> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after = stat.rsplit_once(')')?.1.trim_start();
    after.split_whitespace().next().map(str::to_string)
}

/// A live (not zombie) mariadbd/mysqld process with this pid.
pub fn is_live_mysqld(pid: i32) -> bool {
    let comm = std::fs::read_to_string(format!("/proc/{pid}/comm"))
        .map(|c| matches!(c.trim(), "mariadbd" | "mysqld"))
        .unwrap_or(false);
    comm && proc_state(pid).is_some_and(|s| s != "Z" && s != "X")
}

/// A connection holding `FLUSH TABLES WITH READ LOCK`.
pub struct LockConn(Conn);

impl std::fmt::Debug for LockConn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "LockConn({})", self.0.id())
    }
}

impl PartialEq for LockConn {
    fn eq(&self, other: &Self) -> bool {
        self.0.id() == other.0.id()
    }
}
impl Eq for LockConn {}

impl LockConn {
    /// Whether the lock still stands (the connection answers).
    pub async fn alive(&mut self) -> bool {
        tokio::time::timeout(SQL_FENCE_TIMEOUT, self.0.ping())
            .await
            .is_ok_and(|r| r.is_ok())
    }

    /// `UNLOCK TABLES` and close.
    pub async fn release(mut self) {
        let _ = tokio::time::timeout(SQL_FENCE_TIMEOUT, async {
            let _ = self.0.query_drop("UNLOCK TABLES").await;
            let _ = self.0.disconnect().await;
        })
        .await;
    }
}

/// Whether the local mysqld is a read-only replica: it replicates from a source
/// (`SHOW SLAVE STATUS` has a row) with `read_only=ON`.
pub async fn read_only_replica(db: &DbTarget) -> Result<bool, String> {
    let work = async {
        let mut c = Conn::new(db.opts()).await?;
        let row: Option<mysql_async::Row> = c.query_first("SHOW SLAVE STATUS").await?;
        let ro: Option<u8> = c.query_first("SELECT @@global.read_only").await?;
        let _ = c.disconnect().await;
        Ok::<_, mysql_async::Error>(row.is_some() && ro == Some(1))
    };
    match tokio::time::timeout(SQL_FENCE_TIMEOUT, work).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("no answer".into()),
    }
}

/// Fences the local mysqld (see the module doc). `db` is the agent's `[db]` account.
pub async fn fence_local(
    db: Option<&DbTarget>,
    pid_file: Option<&Path>,
    allow_stop: bool,
) -> FenceOutcome {
    let pid = read_pid(pid_file);
    if pid_file.is_some() && !pid.is_some_and(is_live_mysqld) {
        return FenceOutcome::Fenced {
            how: FenceHow::NotRunning,
            detail: "mysqld is not running".into(),
            lock: None,
        };
    }
    let sql_error = match db {
        None => "no [db] section in the agent config".to_string(),
        Some(db) => match tokio::time::timeout(SQL_FENCE_TIMEOUT, read_only_and_kill(db)).await {
            Ok(Ok((detail, lock))) => {
                return FenceOutcome::Fenced {
                    how: FenceHow::ReadOnly,
                    detail,
                    lock,
                };
            }
            Ok(Err(e)) => e,
            Err(_) => format!("no answer within {SQL_FENCE_TIMEOUT:?}"),
        },
    };
    let Some(pid) = pid.filter(|p| is_live_mysqld(*p)) else {
        if pid_file.is_some() {
            return FenceOutcome::Fenced {
                how: FenceHow::NotRunning,
                detail: format!("mysqld is not running ({sql_error})"),
                lock: None,
            };
        }
        return FenceOutcome::Unconfirmed(format!(
            "{sql_error}; no mysqld_pid_file to check or stop the process"
        ));
    };
    if !allow_stop {
        return FenceOutcome::Unconfirmed(format!(
            "{sql_error}; allow_stop_mysqld = false, mysqld (pid {pid}) left running"
        ));
    }
    // SAFETY: plain syscall on a pid just checked to be a live mysqld.
    unsafe { libc::kill(pid, libc::SIGKILL) };
    let deadline = tokio::time::Instant::now() + (FENCE_DEADLINE - SQL_FENCE_TIMEOUT);
    while tokio::time::Instant::now() < deadline {
        if !is_live_mysqld(pid) {
            return FenceOutcome::Fenced {
                how: FenceHow::Stopped,
                detail: format!("SQL failed ({sql_error}): mysqld pid {pid} SIGKILLed"),
                lock: None,
            };
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    FenceOutcome::Unconfirmed(format!(
        "{sql_error}; mysqld pid {pid} SIGKILLed but still present"
    ))
}

/// `read_only=ON` (and `super_read_only` on MySQL), kill application sessions, then the global
/// read lock on the returned connection (a connection that got no lock within the time left is
/// closed: read_only alone is reported).
async fn read_only_and_kill(db: &DbTarget) -> Result<(String, Option<LockConn>), String> {
    let mut c = Conn::new(db.opts()).await.map_err(|e| e.to_string())?;
    let replica: Option<mysql_async::Row> = match c.query_first("SHOW SLAVE STATUS").await {
        Ok(r) => r,
        Err(e) => {
            let _ = c.disconnect().await;
            return Err(e.to_string());
        }
    };
    let ro: Option<u8> = c
        .query_first("SELECT @@global.read_only")
        .await
        .unwrap_or(None);
    if replica.is_some() && ro == Some(1) {
        // Already a read-only replica (switched over, or rejoined): nothing takes writes
        // here but replication; its readers keep their sessions.
        let _ = c.disconnect().await;
        return Ok(("already a read-only replica".into(), None));
    }
    let fenced = async {
        let version: Option<String> = c.query_first("SELECT @@version").await?;
        c.query_drop("SET GLOBAL read_only = ON").await?;
        if !version.unwrap_or_default().contains("MariaDB") {
            c.query_drop("SET GLOBAL super_read_only = ON").await?;
        }
        let killed = kill_clients(&mut c).await?;
        let ro: Option<u8> = c.query_first("SELECT @@global.read_only").await?;
        if ro != Some(1) {
            return Err(mysql_async::Error::Other(
                "read_only did not turn on".into(),
            ));
        }
        Ok::<_, mysql_async::Error>(killed)
    }
    .await;
    let killed = match fenced {
        Ok(k) => k,
        Err(e) => {
            let _ = c.disconnect().await;
            return Err(e.to_string());
        }
    };
    // The caller bounds the whole call; the lock is the last part, so a timeout here still
    // leaves read_only on (the caller then escalates as for any unconfirmed fence).
    match c.query_drop("FLUSH TABLES WITH READ LOCK").await {
        Ok(()) => Ok((
            format!("read_only=ON, {killed} client sessions killed, global read lock held"),
            Some(LockConn(c)),
        )),
        Err(e) => {
            let _ = c.disconnect().await;
            Ok((
                format!("read_only=ON, {killed} client sessions killed (no global read lock: {e})"),
                None,
            ))
        }
    }
}

/// `read_only=OFF` (and `super_read_only=OFF`), confirmed.
pub async fn writable(db: &DbTarget) -> Result<(), String> {
    let work = async {
        let mut c = Conn::new(db.opts()).await?;
        c.query_drop("SET GLOBAL read_only = OFF").await?;
        let ro: Option<u8> = c.query_first("SELECT @@global.read_only").await?;
        let _ = c.disconnect().await;
        match ro {
            Some(0) => Ok(()),
            _ => Err(mysql_async::Error::Other("read_only is still on".into())),
        }
    };
    match tokio::time::timeout(SQL_FENCE_TIMEOUT * 2, work).await {
        Ok(r) => r.map_err(|e| e.to_string()),
        Err(_) => Err("no answer".into()),
    }
}

/// Kills application sessions: never replication threads, daemons or this session.
async fn kill_clients(c: &mut Conn) -> Result<usize, mysql_async::Error> {
    let own: Option<u64> = c.query_first("SELECT CONNECTION_ID()").await?;
    let rows: Vec<(u64, Option<String>, Option<String>)> = c
        .query("SELECT ID, USER, COMMAND FROM information_schema.PROCESSLIST")
        .await?;
    let mut killed = 0;
    for (id, user, command) in rows {
        let user = user.unwrap_or_default().to_ascii_lowercase();
        let command = command.unwrap_or_default().to_ascii_lowercase();
        let client = Some(id) != own
            && user != "system user"
            && user != "event_scheduler"
            && !command.starts_with("binlog dump")
            && !matches!(
                command.as_str(),
                "daemon" | "slave_io" | "slave_sql" | "slave_worker"
            );
        if !client {
            continue;
        }
        match c.query_drop(format!("KILL CONNECTION {id}")).await {
            Ok(()) => killed += 1,
            // 1094: unknown thread id, it ended on its own meanwhile.
            Err(mysql_async::Error::Server(e)) if e.code == 1094 => {}
            Err(e) => return Err(e),
        }
    }
    Ok(killed)
}
