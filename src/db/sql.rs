//! Statement builders: one dialect for MariaDB 10.x/11.x and MySQL 5.7/8.0/8.4, chosen from
//! the server version. Every value is escaped; passwords live in [`Secret`] and a
//! [`Statement`] prints itself with them masked, so logs and journals never hold them.
use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::gtid::GtidSet;
use super::status::{BinlogCoord, VARIABLE_NAMES};
use super::version::{Flavor, ServerVersion};

/// A password. `Debug`/`Display` print `***`; only [`Secret::expose`] gives the text.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Self {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("***")
    }
}

/// SQL text to send, and the same text with secrets masked for logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Statement {
    sql: String,
    redacted: String,
}

impl Statement {
    /// A statement without secrets in it (use the builders for anything carrying a password).
    pub fn new(sql: impl Into<String>) -> Self {
        let sql = sql.into();
        Statement {
            redacted: sql.clone(),
            sql,
        }
    }

    /// The text to send to the server. Never log this; log the statement itself.
    pub fn sql(&self) -> &str {
        &self.sql
    }
}

impl fmt::Display for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.redacted)
    }
}

impl fmt::Debug for Statement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Statement({:?})", self.redacted)
    }
}

/// A string literal, escaped as `mysql_real_escape_string` does. The connections we open turn
/// `NO_BACKSLASH_ESCAPES` off (see `mysql.rs`), so backslash escapes are safe.
pub fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("\\'"),
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\0' => out.push_str("\\0"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\u{1a}' => out.push_str("\\Z"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

/// How a repointed replica finds its place in the new source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SourcePosition {
    /// Binlog file and position (MHA's non-GTID path).
    File(BinlogCoord),
    /// MariaDB `MASTER_USE_GTID=slave_pos`.
    MariaDbSlavePos,
    /// MariaDB `MASTER_USE_GTID=current_pos`.
    MariaDbCurrentPos,
    /// MySQL `MASTER_AUTO_POSITION=1` / `SOURCE_AUTO_POSITION=1`.
    MySqlAutoPosition,
}

/// Everything `CHANGE MASTER TO` / `CHANGE REPLICATION SOURCE TO` sets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChangeSource {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Secret,
    pub position: SourcePosition,
    pub connect_retry_secs: Option<u32>,
    pub heartbeat_period: Option<Duration>,
}

/// What a wait statement returns: MASTER_POS_WAIT gives -1 on timeout, NULL when the SQL
/// thread is not running; MASTER_GTID_WAIT 0/-1; WAIT_FOR_EXECUTED_GTID_SET 0/1.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum WaitOutcome {
    Reached,
    TimedOut,
    /// Replication not running / not configured: waiting would never succeed.
    NotReplicating,
}

/// How to read a wait statement's single result column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WaitKind {
    /// `MASTER_POS_WAIT` / `SOURCE_POS_WAIT`: ≥ 0 reached, -1 timeout, NULL not replicating.
    Position,
    /// `MASTER_GTID_WAIT`: 0 reached, -1 timeout.
    MariaDbGtid,
    /// `WAIT_FOR_EXECUTED_GTID_SET`: 0 reached, 1 timeout.
    MySqlGtid,
}

impl WaitKind {
    pub fn interpret(self, value: Option<i64>) -> WaitOutcome {
        match (self, value) {
            (_, None) => WaitOutcome::NotReplicating,
            (WaitKind::Position, Some(-1)) => WaitOutcome::TimedOut,
            (WaitKind::Position, Some(n)) if n >= 0 => WaitOutcome::Reached,
            (WaitKind::Position, Some(_)) => WaitOutcome::NotReplicating,
            (WaitKind::MariaDbGtid | WaitKind::MySqlGtid, Some(0)) => WaitOutcome::Reached,
            (WaitKind::MariaDbGtid, Some(-1)) | (WaitKind::MySqlGtid, Some(1)) => {
                WaitOutcome::TimedOut
            }
            (_, Some(_)) => WaitOutcome::NotReplicating,
        }
    }
}

/// The SQL for one server, chosen from its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Dialect {
    pub version: ServerVersion,
}

impl Dialect {
    pub fn new(version: ServerVersion) -> Self {
        Dialect { version }
    }

    fn replica_word(&self) -> &'static str {
        if self.version.uses_replica_keyword() {
            "REPLICA"
        } else {
            "SLAVE"
        }
    }

    /// MariaDB (semi-sync built in since 10.3.3): a stopping IO thread of a semi-sync replica
    /// first connects to its master to kill the dump thread, waiting up to
    /// `rpl_semi_sync_slave_kill_conn_timeout` (5 s by default) when the master's host is
    /// frozen or cut off, and `STOP SLAVE IO_THREAD` returns only then. `None` elsewhere.
    pub fn semi_sync_kill_timeout(&self) -> Option<Statement> {
        self.version.is_mariadb().then(|| {
            Statement::new(
                "SELECT @@GLOBAL.rpl_semi_sync_slave_enabled AS enabled, \
                 @@GLOBAL.rpl_semi_sync_slave_kill_conn_timeout AS kill_timeout",
            )
        })
    }

    pub fn set_semi_sync_kill_timeout(&self, secs: u64) -> Statement {
        Statement::new(format!(
            "SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout = {secs}"
        ))
    }

    /// MariaDB: `SHOW ALL SLAVES STATUS`, the only form with the heartbeat counters
    /// (`Slave_received_heartbeats`, `Slave_heartbeat_period`); one row per connection, pick
    /// the default one with [`default_connection_row`](super::mysql).
    pub fn show_replica_status(&self) -> Statement {
        if self.version.is_mariadb() {
            return Statement::new("SHOW ALL SLAVES STATUS");
        }
        Statement::new(format!("SHOW {} STATUS", self.replica_word()))
    }

    /// Sets only the heartbeat period of the current source. MariaDB 10.11 refuses any
    /// `CHANGE MASTER` while either replication thread runs (error 1198): stop both first.
    /// Sets the heartbeat period of a stopped replica. MariaDB deletes the relay logs on any
    /// `CHANGE MASTER` (checked on 10.11), so this is for GTID replicas only: their failover
    /// needs no relay-log diff (and naming a relay position would turn GTID positioning off).
    pub fn set_heartbeat_period(&self, period: std::time::Duration) -> Statement {
        let (head, prefix) = if self.version.uses_change_replication_source() {
            ("CHANGE REPLICATION SOURCE TO", "SOURCE")
        } else {
            ("CHANGE MASTER TO", "MASTER")
        };
        Statement::new(format!(
            "{head} {prefix}_HEARTBEAT_PERIOD={:.3}",
            period.as_secs_f64()
        ))
    }

    pub fn show_master_status(&self) -> Statement {
        if self.version.uses_show_binary_log_status() {
            Statement::new("SHOW BINARY LOG STATUS")
        } else {
            Statement::new("SHOW MASTER STATUS")
        }
    }

    /// `(Variable_name, Value)` rows for the variables [`super::status::ServerVariables`] reads.
    pub fn show_variables(&self) -> Statement {
        let names: Vec<String> = VARIABLE_NAMES.iter().map(|n| quote(n)).collect();
        Statement::new(format!(
            "SHOW GLOBAL VARIABLES WHERE Variable_name IN ({})",
            names.join(",")
        ))
    }

    /// One row with the GTID state. Read with `SELECT @@` because `SHOW VARIABLES` truncates
    /// long values (a large `gtid_executed`) on MySQL.
    pub fn gtid_state_query(&self) -> Statement {
        match self.version.flavor {
            Flavor::MariaDb => Statement::new(
                "SELECT @@GLOBAL.gtid_current_pos AS gtid_current_pos, \
                 @@GLOBAL.gtid_slave_pos AS gtid_slave_pos, \
                 @@GLOBAL.gtid_binlog_pos AS gtid_binlog_pos",
            ),
            Flavor::MySql => Statement::new("SELECT @@GLOBAL.gtid_executed AS gtid_executed"),
        }
    }

    pub fn stop_io_thread(&self) -> Statement {
        Statement::new(format!("STOP {} IO_THREAD", self.replica_word()))
    }

    pub fn stop_sql_thread(&self) -> Statement {
        Statement::new(format!("STOP {} SQL_THREAD", self.replica_word()))
    }

    pub fn start_sql_thread(&self) -> Statement {
        Statement::new(format!("START {} SQL_THREAD", self.replica_word()))
    }

    pub fn stop_replica(&self) -> Statement {
        Statement::new(format!("STOP {}", self.replica_word()))
    }

    pub fn start_replica(&self) -> Statement {
        Statement::new(format!("START {}", self.replica_word()))
    }

    pub fn reset_replica_all(&self) -> Statement {
        Statement::new(format!("RESET {} ALL", self.replica_word()))
    }

    /// Fencing and promotion. On MySQL `super_read_only=ON` implies `read_only=ON` and
    /// `read_only=OFF` clears both; MariaDB has only `read_only` (which, since 10.11, also
    /// binds SUPER users unless they hold READ_ONLY ADMIN).
    pub fn set_read_only(&self, on: bool) -> Statement {
        match (on, self.version.has_super_read_only()) {
            (true, true) => Statement::new("SET GLOBAL super_read_only = ON"),
            (true, false) => Statement::new("SET GLOBAL read_only = ON"),
            (false, _) => Statement::new("SET GLOBAL read_only = OFF"),
        }
    }

    /// The process list for fencing; filter with [`super::status::ProcessInfo::is_killable_client`].
    pub fn process_list(&self) -> Statement {
        Statement::new(
            "SELECT ID AS Id, USER AS User, HOST AS Host, COMMAND AS Command \
             FROM information_schema.PROCESSLIST",
        )
    }

    pub fn connection_id(&self) -> Statement {
        Statement::new("SELECT CONNECTION_ID() AS id")
    }

    pub fn kill_connection(&self, id: u64) -> Statement {
        Statement::new(format!("KILL CONNECTION {id}"))
    }

    /// Applying events through a client does not move MariaDB's `gtid_slave_pos`: the
    /// failover sets it before repointing with `MASTER_USE_GTID=slave_pos`.
    pub fn set_gtid_slave_pos(&self, pos: &GtidSet) -> Option<Statement> {
        match (self.version.flavor, pos) {
            (Flavor::MariaDb, GtidSet::MariaDb(p)) => Some(Statement::new(format!(
                "SET GLOBAL gtid_slave_pos = {}",
                quote(&p.to_string())
            ))),
            _ => None,
        }
    }

    pub fn set_relay_log_purge(&self, on: bool) -> Statement {
        Statement::new(format!(
            "SET GLOBAL relay_log_purge = {}",
            if on { 1 } else { 0 }
        ))
    }

    pub fn change_source(&self, c: &ChangeSource) -> Statement {
        let modern = self.version.uses_change_replication_source();
        let (head, prefix) = if modern {
            ("CHANGE REPLICATION SOURCE TO", "SOURCE")
        } else {
            ("CHANGE MASTER TO", "MASTER")
        };
        let mut opts = vec![
            format!("{prefix}_HOST={}", quote(&c.host)),
            format!("{prefix}_PORT={}", c.port),
            format!("{prefix}_USER={}", quote(&c.user)),
        ];
        let password_at = opts.len();
        opts.push(format!("{prefix}_PASSWORD={}", quote(c.password.expose())));
        match &c.position {
            SourcePosition::File(coord) => {
                opts.push(format!("{prefix}_LOG_FILE={}", quote(&coord.file)));
                opts.push(format!("{prefix}_LOG_POS={}", coord.pos));
                if self.version.is_mariadb() {
                    opts.push("MASTER_USE_GTID=no".into());
                } else if self.version.has_gtid() {
                    opts.push(format!("{prefix}_AUTO_POSITION=0"));
                }
            }
            SourcePosition::MariaDbSlavePos => opts.push("MASTER_USE_GTID=slave_pos".into()),
            SourcePosition::MariaDbCurrentPos => opts.push("MASTER_USE_GTID=current_pos".into()),
            SourcePosition::MySqlAutoPosition => opts.push(format!("{prefix}_AUTO_POSITION=1")),
        }
        if let Some(r) = c.connect_retry_secs {
            opts.push(format!("{prefix}_CONNECT_RETRY={r}"));
        }
        if let Some(h) = c.heartbeat_period {
            opts.push(format!("{prefix}_HEARTBEAT_PERIOD={:.3}", h.as_secs_f64()));
        }
        let sql = format!("{head} {}", opts.join(", "));
        opts[password_at] = format!("{prefix}_PASSWORD='***'");
        Statement {
            sql,
            redacted: format!("{head} {}", opts.join(", ")),
        }
    }

    /// Waits until the SQL thread has executed up to `coord`, at most `timeout`.
    pub fn wait_for_position(
        &self,
        coord: &BinlogCoord,
        timeout: Duration,
    ) -> (Statement, WaitKind) {
        let func = if self.version.uses_source_pos_wait() {
            "SOURCE_POS_WAIT"
        } else {
            "MASTER_POS_WAIT"
        };
        let sql = format!(
            "SELECT {func}({}, {}, {}) AS result",
            quote(&coord.file),
            coord.pos,
            whole_wait_seconds(timeout)
        );
        (Statement::new(sql), WaitKind::Position)
    }

    /// Waits until the server has executed `gtids`, at most `timeout`. `None` when the flavor
    /// of the set does not match the server.
    pub fn wait_for_gtids(
        &self,
        gtids: &GtidSet,
        timeout: Duration,
    ) -> Option<(Statement, WaitKind)> {
        match (self.version.flavor, gtids) {
            (Flavor::MariaDb, GtidSet::MariaDb(p)) => Some((
                Statement::new(format!(
                    "SELECT MASTER_GTID_WAIT({}, {:.3}) AS result",
                    quote(&p.to_string()),
                    timeout.as_secs_f64().max(0.001)
                )),
                WaitKind::MariaDbGtid,
            )),
            (Flavor::MySql, GtidSet::MySql(s)) => Some((
                Statement::new(format!(
                    "SELECT WAIT_FOR_EXECUTED_GTID_SET({}, {}) AS result",
                    quote(&s.to_string()),
                    whole_wait_seconds(timeout)
                )),
                WaitKind::MySqlGtid,
            )),
            _ => None,
        }
    }
}

/// `MASTER_POS_WAIT` and `WAIT_FOR_EXECUTED_GTID_SET` read their timeout as an integer and
/// treat 0 as "wait forever", so a sub-second timeout must round up, never down. Callers
/// still bound the wait on the client side with the exact duration.
fn whole_wait_seconds(timeout: Duration) -> u64 {
    timeout.as_secs() + u64::from(timeout.subsec_nanos() > 0 || timeout.is_zero())
}

#[cfg(test)]
#[path = "sql_tests.rs"]
mod tests;
