//! Typed server state parsed from result rows by column name, so one parser reads both
//! `SHOW SLAVE STATUS` (MariaDB, MySQL < 8.0.22) and `SHOW REPLICA STATUS` (MySQL 8.0.22+).
use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::gtid::{GtidParseError, GtidSet, MariaGtidPos, MySqlGtidSet};
use super::version::Flavor;

/// One result row: lower-cased column name → value (`None` = SQL NULL).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RowMap(BTreeMap<String, Option<String>>);

impl RowMap {
    pub fn from_pairs<K: AsRef<str>, V: Into<String>>(
        pairs: impl IntoIterator<Item = (K, Option<V>)>,
    ) -> Self {
        RowMap(
            pairs
                .into_iter()
                .map(|(k, v)| (k.as_ref().to_ascii_lowercase(), v.map(Into::into)))
                .collect(),
        )
    }

    /// The first of `names` present and non-NULL.
    pub fn get(&self, names: &[&str]) -> Option<&str> {
        names
            .iter()
            .find_map(|n| self.0.get(&n.to_ascii_lowercase())?.as_deref())
    }

    /// The non-NULL values, whatever their columns (`SHOW GRANTS` names its one column
    /// after the account).
    pub fn values(&self) -> impl Iterator<Item = &str> {
        self.0.values().filter_map(|v| v.as_deref())
    }

    fn text(&self, names: &[&str]) -> String {
        self.get(names).unwrap_or("").to_string()
    }

    fn number<T: std::str::FromStr>(&self, names: &[&str]) -> Result<Option<T>, StatusError> {
        match self.get(names).map(str::trim).filter(|v| !v.is_empty()) {
            None => Ok(None),
            Some(v) => v.parse().map(Some).map_err(|_| StatusError::BadValue {
                column: names[0].to_string(),
                value: v.to_string(),
            }),
        }
    }

    fn required<T: std::str::FromStr>(&self, names: &[&str]) -> Result<T, StatusError> {
        self.number(names)?
            .ok_or_else(|| StatusError::MissingColumn(names[0].to_string()))
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StatusError {
    #[error("column {0} is missing or NULL")]
    MissingColumn(String),
    #[error("column {column} has an unexpected value {value:?}")]
    BadValue { column: String, value: String },
    #[error(transparent)]
    Gtid(#[from] GtidParseError),
}

/// A binlog coordinate `file:pos`. Files are ordered by their numeric suffix, not as
/// strings (MHA compares strings, which breaks past `.999999`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct BinlogCoord {
    pub file: String,
    pub pos: u64,
}

impl BinlogCoord {
    pub fn new(file: impl Into<String>, pos: u64) -> Self {
        BinlogCoord {
            file: file.into(),
            pos,
        }
    }

    /// `binlog.000012` → (`binlog`, 12). Names without a numeric suffix get `None`.
    pub fn file_parts(&self) -> (&str, Option<u64>) {
        match self.file.rsplit_once('.') {
            Some((base, n)) if !n.is_empty() && n.chars().all(|c| c.is_ascii_digit()) => {
                (base, n.parse().ok())
            }
            _ => (self.file.as_str(), None),
        }
    }

    /// How many binlog files `self` is ahead of `other` (negative: behind); `None` when the
    /// base names differ.
    pub fn files_ahead_of(&self, other: &BinlogCoord) -> Option<i64> {
        let ((b1, n1), (b2, n2)) = (self.file_parts(), other.file_parts());
        if b1 != b2 {
            return None;
        }
        Some(i64::try_from(n1?).ok()? - i64::try_from(n2?).ok()?)
    }
}

impl PartialOrd for BinlogCoord {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for BinlogCoord {
    fn cmp(&self, other: &Self) -> Ordering {
        let ((b1, n1), (b2, n2)) = (self.file_parts(), other.file_parts());
        b1.cmp(b2)
            .then(n1.cmp(&n2))
            .then(self.file.cmp(&other.file))
            .then(self.pos.cmp(&other.pos))
    }
}

impl fmt::Display for BinlogCoord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.pos)
    }
}

/// The IO (receiver) thread: `Connecting` means it is trying and failing to reach the source.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum IoThread {
    Yes,
    Connecting,
    No,
}

/// One replication channel's status (`SHOW SLAVE STATUS` / `SHOW REPLICA STATUS`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReplicaStatus {
    pub source_host: String,
    pub source_port: u16,
    pub source_user: String,
    pub source_server_id: Option<u32>,
    /// MySQL only (`Master_UUID` / `Source_UUID`).
    pub source_uuid: Option<String>,
    /// Where the IO thread has read up to in the source's binlog (`Master_Log_File`,
    /// `Read_Master_Log_Pos`).
    pub read: BinlogCoord,
    /// Where the SQL thread has executed up to (`Relay_Master_Log_File`,
    /// `Exec_Master_Log_Pos`).
    pub exec: BinlogCoord,
    /// The SQL thread's place in this replica's own relay log.
    pub relay: BinlogCoord,
    pub io_thread: IoThread,
    pub sql_running: bool,
    pub last_io_errno: u32,
    pub last_io_error: String,
    pub last_sql_errno: u32,
    pub last_sql_error: String,
    pub seconds_behind: Option<u64>,
    pub sql_delay: u64,
    pub sql_running_state: String,
    /// MySQL: GTIDs received (`Retrieved_Gtid_Set`) and executed (`Executed_Gtid_Set`).
    pub retrieved_gtid_set: Option<MySqlGtidSet>,
    pub executed_gtid_set: Option<MySqlGtidSet>,
    /// MySQL `Auto_Position` = 1.
    pub auto_position: bool,
    /// MariaDB `Using_Gtid`: `No`, `Slave_Pos`, `Current_Pos`.
    pub using_gtid: Option<String>,
    /// MariaDB `Gtid_IO_Pos`: what the IO thread has received.
    pub gtid_io_pos: Option<MariaGtidPos>,
    /// MariaDB `Slave_received_heartbeats` (`SHOW ALL SLAVES STATUS` only): heartbeats the IO
    /// thread received from the source since the last `CHANGE MASTER`.
    #[serde(default)]
    pub received_heartbeats: Option<u64>,
    /// MariaDB `Slave_heartbeat_period` in milliseconds (`SHOW ALL SLAVES STATUS` only): the
    /// source sends a heartbeat after this long without events; 0 = none.
    #[serde(default)]
    pub heartbeat_period_ms: Option<u64>,
}

impl ReplicaStatus {
    pub fn parse(row: &RowMap) -> Result<Self, StatusError> {
        let io = row.text(&["Slave_IO_Running", "Replica_IO_Running"]);
        let io_thread = match io.to_ascii_lowercase().as_str() {
            "yes" => IoThread::Yes,
            "connecting" | "preparing" => IoThread::Connecting,
            _ => IoThread::No,
        };
        let mysql_set = |names: &[&str]| -> Result<Option<MySqlGtidSet>, StatusError> {
            row.get(names)
                .map(MySqlGtidSet::parse)
                .transpose()
                .map_err(Into::into)
        };
        let gtid_io_pos = row
            .get(&["Gtid_IO_Pos"])
            .map(MariaGtidPos::parse)
            .transpose()?;
        Ok(ReplicaStatus {
            source_host: row.text(&["Master_Host", "Source_Host"]),
            source_port: row.number(&["Master_Port", "Source_Port"])?.unwrap_or(3306),
            source_user: row.text(&["Master_User", "Source_User"]),
            source_server_id: row.number(&["Master_Server_Id", "Source_Server_Id"])?,
            source_uuid: row
                .get(&["Master_UUID", "Source_UUID"])
                .map(str::to_string)
                .filter(|u| !u.is_empty()),
            read: BinlogCoord::new(
                row.text(&["Master_Log_File", "Source_Log_File"]),
                row.number(&["Read_Master_Log_Pos", "Read_Source_Log_Pos"])?
                    .unwrap_or(0),
            ),
            exec: BinlogCoord::new(
                row.text(&["Relay_Master_Log_File", "Relay_Source_Log_File"]),
                row.number(&["Exec_Master_Log_Pos", "Exec_Source_Log_Pos"])?
                    .unwrap_or(0),
            ),
            relay: BinlogCoord::new(
                row.text(&["Relay_Log_File"]),
                row.number(&["Relay_Log_Pos"])?.unwrap_or(0),
            ),
            io_thread,
            sql_running: row
                .get(&["Slave_SQL_Running", "Replica_SQL_Running"])
                .is_some_and(|v| v.eq_ignore_ascii_case("yes")),
            last_io_errno: row.number(&["Last_IO_Errno"])?.unwrap_or(0),
            last_io_error: row.text(&["Last_IO_Error"]),
            last_sql_errno: row.number(&["Last_SQL_Errno"])?.unwrap_or(0),
            last_sql_error: row.text(&["Last_SQL_Error"]),
            seconds_behind: row.number(&["Seconds_Behind_Master", "Seconds_Behind_Source"])?,
            sql_delay: row.number(&["SQL_Delay"])?.unwrap_or(0),
            sql_running_state: row.text(&["Slave_SQL_Running_State", "Replica_SQL_Running_State"]),
            retrieved_gtid_set: mysql_set(&["Retrieved_Gtid_Set"])?,
            executed_gtid_set: mysql_set(&["Executed_Gtid_Set"])?,
            auto_position: row.get(&["Auto_Position"]) == Some("1"),
            using_gtid: row.get(&["Using_Gtid"]).map(str::to_string),
            gtid_io_pos,
            received_heartbeats: row.number(&["Slave_received_heartbeats"])?,
            heartbeat_period_ms: row
                .get(&["Slave_heartbeat_period"])
                .map(|v| parse_seconds_as_ms("Slave_heartbeat_period", v))
                .transpose()?,
        })
    }

    /// The IO thread is connected and receiving from its source.
    pub fn is_receiving(&self) -> bool {
        self.io_thread == IoThread::Yes
    }

    /// The replica replicates from `host:port` (host compared case-insensitively).
    pub fn replicates_from(&self, host: &str, port: u16) -> bool {
        self.source_host.eq_ignore_ascii_case(host) && self.source_port == port
    }

    /// MariaDB replicates with GTID (`Using_Gtid` ≠ `No`) or MySQL with auto-position.
    pub fn uses_gtid(&self) -> bool {
        self.auto_position
            || self
                .using_gtid
                .as_deref()
                .is_some_and(|u| !u.eq_ignore_ascii_case("no"))
    }

    /// The SQL thread has executed everything the IO thread received (by coordinates).
    pub fn relay_fully_applied(&self) -> bool {
        self.read == self.exec
    }
}

/// `"0.500"` (seconds with a fraction, as MariaDB prints periods) → 500.
fn parse_seconds_as_ms(column: &str, v: &str) -> Result<u64, StatusError> {
    let bad = || StatusError::BadValue {
        column: column.to_string(),
        value: v.to_string(),
    };
    let secs: f64 = v.trim().parse().map_err(|_| bad())?;
    if !secs.is_finite() || !(0.0..=1e9).contains(&secs) {
        return Err(bad());
    }
    // Bounded above, so the cast cannot truncate.
    Ok((secs * 1000.0).round() as u64)
}

/// `SHOW MASTER STATUS` / `SHOW BINARY LOG STATUS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MasterStatus {
    pub coord: BinlogCoord,
    pub binlog_do_db: String,
    pub binlog_ignore_db: String,
    /// MySQL only.
    pub executed_gtid_set: Option<MySqlGtidSet>,
}

impl MasterStatus {
    pub fn parse(row: &RowMap) -> Result<Self, StatusError> {
        Ok(MasterStatus {
            coord: BinlogCoord::new(row.text(&["File"]), row.required(&["Position"])?),
            binlog_do_db: row.text(&["Binlog_Do_DB"]),
            binlog_ignore_db: row.text(&["Binlog_Ignore_DB"]),
            executed_gtid_set: row
                .get(&["Executed_Gtid_Set"])
                .map(MySqlGtidSet::parse)
                .transpose()?,
        })
    }
}

/// The server variables detection and failover look at. Read with
/// `SHOW GLOBAL VARIABLES WHERE Variable_name IN (...)`, so a variable a flavor lacks
/// (`super_read_only` on MariaDB, `gtid_slave_pos` on MySQL) is simply absent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServerVariables {
    pub server_id: u32,
    pub version: String,
    pub version_comment: String,
    pub read_only: bool,
    /// `None` where the server has no such variable (MariaDB).
    pub super_read_only: Option<bool>,
    pub log_bin: bool,
    pub log_slave_updates: bool,
    pub binlog_format: String,
    pub relay_log_purge: Option<bool>,
    pub server_uuid: Option<String>,
    /// MySQL `gtid_mode` (`ON`, `OFF`, ...).
    pub gtid_mode: Option<String>,
    /// MariaDB `gtid_strict_mode`.
    pub gtid_strict_mode: Option<bool>,
    pub datadir: Option<String>,
}

/// The names [`ServerVariables::parse`] reads; `log_replica_updates` is MySQL 8.0.26+.
pub const VARIABLE_NAMES: &[&str] = &[
    "server_id",
    "version",
    "version_comment",
    "read_only",
    "super_read_only",
    "log_bin",
    "log_slave_updates",
    "log_replica_updates",
    "binlog_format",
    "relay_log_purge",
    "server_uuid",
    "gtid_mode",
    "gtid_strict_mode",
    "datadir",
];

impl ServerVariables {
    /// From `(Variable_name, Value)` rows.
    pub fn parse(vars: &RowMap) -> Result<Self, StatusError> {
        let flag = |name: &str| -> Result<Option<bool>, StatusError> {
            vars.get(&[name]).map(|v| parse_bool(name, v)).transpose()
        };
        Ok(ServerVariables {
            server_id: vars.required(&["server_id"])?,
            version: vars.text(&["version"]),
            version_comment: vars.text(&["version_comment"]),
            read_only: flag("read_only")?.unwrap_or(false),
            super_read_only: flag("super_read_only")?,
            log_bin: flag("log_bin")?.unwrap_or(false),
            log_slave_updates: match flag("log_replica_updates")? {
                Some(v) => v,
                None => flag("log_slave_updates")?.unwrap_or(false),
            },
            binlog_format: vars.text(&["binlog_format"]),
            relay_log_purge: flag("relay_log_purge")?,
            server_uuid: vars.get(&["server_uuid"]).map(str::to_string),
            gtid_mode: vars.get(&["gtid_mode"]).map(str::to_string),
            gtid_strict_mode: flag("gtid_strict_mode")?,
            datadir: vars.get(&["datadir"]).map(str::to_string),
        })
    }

    /// Writable for ordinary clients.
    pub fn is_writable(&self) -> bool {
        !self.read_only && self.super_read_only != Some(true)
    }
}

fn parse_bool(name: &str, v: &str) -> Result<bool, StatusError> {
    match v.trim().to_ascii_uppercase().as_str() {
        "ON" | "1" | "YES" | "TRUE" => Ok(true),
        "OFF" | "0" | "NO" | "FALSE" | "" => Ok(false),
        _ => Err(StatusError::BadValue {
            column: name.to_string(),
            value: v.to_string(),
        }),
    }
}

/// The GTID state of a server, flavor-typed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GtidState {
    /// MySQL `gtid_executed`; MariaDB `gtid_current_pos` (binlogged or replicated).
    pub executed: GtidSet,
    /// MariaDB only: `gtid_slave_pos` and `gtid_binlog_pos`.
    pub slave_pos: Option<MariaGtidPos>,
    pub binlog_pos: Option<MariaGtidPos>,
}

impl GtidState {
    /// From the row of the flavor's GTID query (see [`super::sql::Dialect::gtid_state_query`]).
    pub fn parse(flavor: Flavor, row: &RowMap) -> Result<Self, StatusError> {
        match flavor {
            Flavor::MySql => Ok(GtidState {
                executed: GtidSet::MySql(MySqlGtidSet::parse(
                    row.get(&["gtid_executed"]).unwrap_or(""),
                )?),
                slave_pos: None,
                binlog_pos: None,
            }),
            Flavor::MariaDb => {
                let pos = |n: &str| MariaGtidPos::parse(row.get(&[n]).unwrap_or(""));
                Ok(GtidState {
                    executed: GtidSet::MariaDb(pos("gtid_current_pos")?),
                    slave_pos: Some(pos("gtid_slave_pos")?),
                    binlog_pos: Some(pos("gtid_binlog_pos")?),
                })
            }
        }
    }
}

/// A client connection from the process list, for the fencing kill.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessInfo {
    pub id: u64,
    pub user: String,
    pub host: String,
    pub command: String,
}

impl ProcessInfo {
    pub fn parse(row: &RowMap) -> Result<Self, StatusError> {
        Ok(ProcessInfo {
            id: row.required(&["Id"])?,
            user: row.text(&["User"]),
            host: row.text(&["Host"]),
            command: row.text(&["Command"]),
        })
    }

    /// Fencing kills application sessions only: never replication threads (`system user`,
    /// `Binlog Dump`), server daemons (event scheduler), or the caller's own session.
    pub fn is_killable_client(&self, own_connection_id: u64) -> bool {
        let command = self.command.to_ascii_lowercase();
        self.id != own_connection_id
            && !self.user.eq_ignore_ascii_case("system user")
            && !self.user.eq_ignore_ascii_case("event_scheduler")
            && !command.starts_with("binlog dump")
            && command != "daemon"
            && command != "slave_io"
            && command != "slave_sql"
            && command != "slave_worker"
    }
}

#[cfg(test)]
#[path = "status_tests.rs"]
mod tests;
