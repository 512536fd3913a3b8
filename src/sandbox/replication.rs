//! Users and replication wiring of a fresh sandbox, and the "replicas caught up" wait.
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Opts, OptsBuilder, Row};

use super::{NodeInfo, Sandbox};
use crate::db::sql::quote;

const POLL: Duration = Duration::from_millis(50);

/// TCP options; `prefer_socket(false)` because mysql_async would otherwise switch a local TCP
/// connection to the unix socket, where our `user@'127.%'` accounts do not match.
pub fn tcp_opts(node: &NodeInfo, user: &str, password: &str) -> Opts {
    OptsBuilder::default()
        .ip_or_hostname(node.ip.to_string())
        .tcp_port(node.port)
        .user(Some(user))
        .pass(Some(password))
        .prefer_socket(false)
        .into()
}

/// root@localhost over the unix socket: the only account a fresh datadir has.
fn root_socket_opts(node: &NodeInfo) -> Opts {
    OptsBuilder::default()
        .socket(Some(node.socket.display().to_string()))
        .user(Some("root"))
        .into()
}

pub async fn connect(opts: Opts, timeout: Duration) -> Result<Conn> {
    tokio::time::timeout(timeout, Conn::new(opts))
        .await
        .map_err(|_| anyhow!("connect timed out after {timeout:?}"))?
        .map_err(Into::into)
}

/// Creates the admin and replication users on every node (outside the binlog, so no node
/// starts with transactions the others lack), then makes node 1 the writable master and points
/// every other node at it.
pub async fn bootstrap(sb: &Sandbox) -> Result<()> {
    let creds = sb.credentials();
    for node in sb.nodes() {
        let mut conn = connect(root_socket_opts(node), sb.spec().timeout)
            .await
            .with_context(|| {
                format!(
                    "{}: cannot connect as root over {}",
                    node.name,
                    node.socket.display()
                )
            })?;
        let statements = [
            "SET SESSION sql_log_bin=0".to_string(),
            // mariadb-install-db leaves password-less root accounts reachable over TCP; keep
            // only root over the socket, authenticated by the OS user, as Debian does.
            "DELETE FROM mysql.global_priv WHERE User='root' AND Host<>'localhost'".to_string(),
            "DELETE FROM mysql.global_priv WHERE User=''".to_string(),
            "FLUSH PRIVILEGES".to_string(),
            "ALTER USER root@localhost IDENTIFIED VIA unix_socket".to_string(),
            format!(
                "CREATE USER IF NOT EXISTS {}@'127.%' IDENTIFIED BY {}",
                quote(&creds.admin_user),
                quote(&creds.admin_password)
            ),
            format!(
                "GRANT ALL PRIVILEGES ON *.* TO {}@'127.%' WITH GRANT OPTION",
                quote(&creds.admin_user)
            ),
            format!(
                "CREATE USER IF NOT EXISTS {}@'127.%' IDENTIFIED BY {}",
                quote(&creds.repl_user),
                quote(&creds.repl_password)
            ),
            format!(
                "GRANT REPLICATION SLAVE, REPLICATION CLIENT, SLAVE MONITOR ON *.* TO {}@'127.%'",
                quote(&creds.repl_user)
            ),
        ];
        for sql in &statements {
            // The error from mysql_async quotes no statement text, so passwords stay out of it.
            conn.query_drop(sql)
                .await
                .with_context(|| format!("{}: creating the sandbox users failed", node.name))?;
        }
        conn.disconnect().await.ok();
    }

    let master = sb.node(1)?;
    let mut mconn = sb.conn(1).await?;
    mconn
        .query_drop("SET GLOBAL read_only=OFF")
        .await
        .with_context(|| format!("{}: cannot clear read_only", master.name))?;
    let (file, pos): (String, u64) = mconn
        .query_first("SHOW MASTER STATUS")
        .await
        .context("SHOW MASTER STATUS on the master")?
        .map(|row: Row| {
            (
                col_string(&row, "File").unwrap_or_default(),
                col_u64(&row, "Position").unwrap_or(4),
            )
        })
        .ok_or_else(|| anyhow!("{}: binary logging is off", master.name))?;
    mconn.disconnect().await.ok();

    for node in sb.nodes().iter().skip(1) {
        let source = if sb.spec().gtid {
            "MASTER_USE_GTID=slave_pos".to_string()
        } else {
            format!(
                "MASTER_USE_GTID=no, MASTER_LOG_FILE={}, MASTER_LOG_POS={pos}",
                quote(&file)
            )
        };
        let change = format!(
            "CHANGE MASTER TO MASTER_HOST={}, MASTER_PORT={}, MASTER_USER={}, MASTER_PASSWORD={}, \
             MASTER_CONNECT_RETRY=1, {source}",
            quote(&master.ip.to_string()),
            master.port,
            quote(&creds.repl_user),
            quote(&creds.repl_password)
        );
        let mut conn = sb.conn(node.index).await?;
        conn.query_drop(change)
            .await
            .with_context(|| format!("{}: CHANGE MASTER failed", node.name))?;
        conn.query_drop("START SLAVE")
            .await
            .with_context(|| format!("{}: START SLAVE failed", node.name))?;
        conn.disconnect().await.ok();
    }
    wait_replication_running(sb).await
}

/// Waits until every node configured as a replica has its IO and SQL threads running (after
/// `up` or a restart, where replicas start their threads asynchronously).
pub async fn wait_replication_running(sb: &Sandbox) -> Result<()> {
    for node in sb.nodes() {
        wait_threads_running(sb, node).await?;
    }
    Ok(())
}

/// Waits until the replica's IO and SQL threads both run, or reports their errors. A node
/// that is not a replica has nothing to wait for.
async fn wait_threads_running(sb: &Sandbox, node: &NodeInfo) -> Result<()> {
    let deadline = Instant::now() + sb.spec().timeout;
    let mut conn = sb.conn(node.index).await?;
    loop {
        let row: Option<Row> = conn.query_first("SHOW SLAVE STATUS").await?;
        let Some(row) = row else {
            conn.disconnect().await.ok();
            return Ok(());
        };
        let io = col_string(&row, "Slave_IO_Running").unwrap_or_default();
        let sql = col_string(&row, "Slave_SQL_Running").unwrap_or_default();
        if io == "Yes" && sql == "Yes" {
            conn.disconnect().await.ok();
            return Ok(());
        }
        if Instant::now() >= deadline {
            bail!(
                "{}: replication did not start within {:?} (IO={io}, SQL={sql}, IO error: {}, SQL error: {})",
                node.name,
                sb.spec().timeout,
                col_string(&row, "Last_IO_Error").unwrap_or_default(),
                col_string(&row, "Last_SQL_Error").unwrap_or_default()
            );
        }
        tokio::time::sleep(POLL).await;
    }
}

/// Waits until every running replica's SQL thread has executed up to its master's current
/// binlog end (by coordinates, which works in both replication modes).
pub async fn wait_caught_up(sb: &Sandbox, timeout: Duration) -> Result<()> {
    let deadline = Instant::now() + timeout;
    let running: Vec<usize> = sb.running_nodes().iter().map(|(n, _)| n.index).collect();
    for index in running {
        let node = sb.node(index)?;
        let mut conn = sb.conn(index).await?;
        let Some(row): Option<Row> = conn.query_first("SHOW SLAVE STATUS").await? else {
            conn.disconnect().await.ok();
            continue; // not a replica
        };
        let host = col_string(&row, "Master_Host").unwrap_or_default();
        let master = sb
            .nodes()
            .iter()
            .find(|n| n.ip.to_string() == host)
            .ok_or_else(|| {
                anyhow!(
                    "{}: replicates from {host}, which is not in this sandbox",
                    node.name
                )
            })?;
        let mut mconn = sb.conn(master.index).await?;
        let target: Option<Row> = mconn.query_first("SHOW MASTER STATUS").await?;
        mconn.disconnect().await.ok();
        let target = target.ok_or_else(|| anyhow!("{}: binary logging is off", master.name))?;
        let (tfile, tpos) = (
            col_string(&target, "File").unwrap_or_default(),
            col_u64(&target, "Position").unwrap_or(0),
        );
        loop {
            let row: Row = conn
                .query_first("SHOW SLAVE STATUS")
                .await?
                .ok_or_else(|| anyhow!("{}: replication was reset while waiting", node.name))?;
            let file = col_string(&row, "Relay_Master_Log_File").unwrap_or_default();
            let pos = col_u64(&row, "Exec_Master_Log_Pos").unwrap_or(0);
            if (file.as_str(), pos) >= (tfile.as_str(), tpos) {
                break;
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} has executed {file}:{pos} of {}'s {tfile}:{tpos} after {timeout:?} (SQL error: {})",
                    node.name,
                    master.name,
                    col_string(&row, "Last_SQL_Error").unwrap_or_default()
                );
            }
            tokio::time::sleep(POLL).await;
        }
        conn.disconnect().await.ok();
    }
    Ok(())
}

/// A column as text, whatever type the server sent; None for NULL or a missing column.
pub fn col_string(row: &Row, name: &str) -> Option<String> {
    use mysql_async::Value;
    match row.as_ref(
        row.columns_ref()
            .iter()
            .position(|c| c.name_str() == name)?,
    )? {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

pub fn col_u64(row: &Row, name: &str) -> Option<u64> {
    col_string(row, name)?.trim().parse().ok()
}
