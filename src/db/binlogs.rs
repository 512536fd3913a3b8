//! A server's own binary logs as SQL shows them (`SHOW BINARY LOGS`, `SHOW BINLOG EVENTS`,
//! `BINLOG_GTID_POS`), for the rejoin's errant-transaction check and its GTID start.
use serde::{Deserialize, Serialize};

use super::gtid::MariaGtidPos;
use super::mysql::MysqlServer;
use super::server::{DbError, DbServer};
use super::sql::{Statement, quote};
use super::status::{BinlogCoord, RowMap};

/// One row of `SHOW BINARY LOGS`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinaryLog {
    pub name: String,
    pub size: u64,
}

/// One row of `SHOW BINLOG EVENTS` (its `info` cut to 120 characters).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BinlogEvent {
    pub file: String,
    pub pos: u64,
    pub event_type: String,
    pub info: String,
}

fn event(row: &RowMap) -> BinlogEvent {
    BinlogEvent {
        file: row.get(&["log_name"]).unwrap_or("").to_string(),
        pos: row.get(&["pos"]).and_then(|p| p.parse().ok()).unwrap_or(0),
        event_type: row.get(&["event_type"]).unwrap_or("").to_string(),
        info: row.get(&["info"]).unwrap_or("").chars().take(120).collect(),
    }
}

/// The server's binary logs, oldest first.
pub async fn binary_logs(s: &MysqlServer) -> Result<Vec<BinaryLog>, DbError> {
    let rows = s.query(&Statement::new("SHOW BINARY LOGS")).await?;
    Ok(rows
        .iter()
        .map(|r| BinaryLog {
            name: r.get(&["log_name"]).unwrap_or("").to_string(),
            size: r
                .get(&["file_size"])
                .and_then(|v| v.parse().ok())
                .unwrap_or(0),
        })
        .collect())
}

/// At most `limit` events of binlog `file` from offset `from`.
pub async fn binlog_events(
    s: &MysqlServer,
    file: &str,
    from: u64,
    limit: u32,
) -> Result<Vec<BinlogEvent>, DbError> {
    let rows = s
        .query(&Statement::new(format!(
            "SHOW BINLOG EVENTS IN {} FROM {from} LIMIT {limit}",
            quote(file)
        )))
        .await?;
    Ok(rows.iter().map(event).collect())
}

/// MariaDB's `BINLOG_GTID_POS(file, pos)`: the GTID position at a coordinate of the
/// server's own binlog.
pub async fn binlog_gtid_pos(s: &MysqlServer, at: &BinlogCoord) -> Result<MariaGtidPos, DbError> {
    let rows = s
        .query(&Statement::new(format!(
            "SELECT BINLOG_GTID_POS({}, {}) AS pos",
            quote(&at.file),
            at.pos
        )))
        .await?;
    let unexpected = |message: String| DbError::Unexpected {
        addr: s.addr().to_string(),
        message,
    };
    let pos = rows
        .first()
        .and_then(|r| r.get(&["pos"]))
        .ok_or_else(|| unexpected(format!("BINLOG_GTID_POS({at}) returned nothing")))?;
    MariaGtidPos::parse(pos).map_err(|e| unexpected(format!("BINLOG_GTID_POS({at}): {e}")))
}
