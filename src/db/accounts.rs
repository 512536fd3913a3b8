//! What `check-repl` reads beyond replication status: every global variable, the grants of
//! the account we connect as, and whether the replication user may replicate.
use super::mysql::MysqlServer;
use super::server::DbError;
use super::sql::{Statement, quote};

/// Every global variable, names lowercased.
pub async fn global_variables(s: &MysqlServer) -> Result<Vec<(String, String)>, DbError> {
    let rows = s.query(&Statement::new("SHOW GLOBAL VARIABLES")).await?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                r.get(&["Variable_name"])?.to_ascii_lowercase(),
                r.get(&["Value"]).unwrap_or("").to_string(),
            ))
        })
        .collect())
}

/// `SHOW GRANTS` of the account we connect as, one line per grant.
pub async fn own_grants(s: &MysqlServer) -> Result<Vec<String>, DbError> {
    let rows = s.query(&Statement::new("SHOW GRANTS")).await?;
    Ok(rows
        .iter()
        .filter_map(|r| r.values().next().map(str::to_string))
        .collect())
}

/// Whether an account named `user` holds `REPLICATION SLAVE` (any host); `None` when there
/// is no such account (or `mysql.user` is not readable).
pub async fn user_can_replicate(s: &MysqlServer, user: &str) -> Result<Option<bool>, DbError> {
    let rows = s
        .query(&Statement::new(format!(
            "SELECT Repl_slave_priv AS p FROM mysql.user WHERE User = {}",
            quote(user)
        )))
        .await?;
    if rows.is_empty() {
        return Ok(None);
    }
    Ok(Some(rows.iter().any(|r| r.get(&["p"]) == Some("Y"))))
}
