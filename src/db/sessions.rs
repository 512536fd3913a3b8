//! Who is connected and what they are doing (`information_schema`), for the switchover's
//! running-updates checks.
use serde::{Deserialize, Serialize};

use super::mysql::MysqlServer;
use super::server::DbError;
use super::sql::Statement;
use super::status::RowMap;

/// One session other than our own (`information_schema.PROCESSLIST`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub id: u64,
    pub user: String,
    pub command: String,
    pub secs: u64,
    /// The statement (first 100 characters), if any.
    pub info: String,
}

fn number(row: &RowMap, name: &str) -> u64 {
    row.get(&[name])
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(0)
}

/// Every session but ours.
pub async fn sessions(s: &MysqlServer) -> Result<Vec<Session>, DbError> {
    let rows = s
        .query(&Statement::new(
            "SELECT ID AS id, USER AS user, COMMAND AS command, TIME AS secs, \
             LEFT(COALESCE(INFO, ''), 100) AS info \
             FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID()",
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| Session {
            id: number(r, "id"),
            user: r.get(&["user"]).unwrap_or("").to_string(),
            command: r.get(&["command"]).unwrap_or("").to_string(),
            secs: number(r, "secs"),
            info: r.get(&["info"]).unwrap_or("").to_string(),
        })
        .collect())
}

/// Open InnoDB transactions that modified rows: `(thread id, seconds open)`.
pub async fn writing_transactions(s: &MysqlServer) -> Result<Vec<(u64, u64)>, DbError> {
    let rows = s
        .query(&Statement::new(
            "SELECT trx_mysql_thread_id AS id, \
             TIMESTAMPDIFF(SECOND, trx_started, NOW()) AS secs \
             FROM information_schema.INNODB_TRX WHERE trx_rows_modified > 0",
        ))
        .await?;
    Ok(rows
        .iter()
        .map(|r| (number(r, "id"), number(r, "secs")))
        .collect())
}
