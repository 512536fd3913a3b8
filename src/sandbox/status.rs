//! `raftmha sandbox status`: what every node is doing, read from the servers themselves.
use std::time::Duration;

use mysql_async::Row;
use mysql_async::prelude::Queryable;
use serde::Serialize;

use super::replication::{col_string, col_u64, connect};
use super::{NodeInfo, Sandbox, process};

/// One node as seen right now. Fields the server could not tell are `None`.
#[derive(Debug, Clone, Serialize, Default, PartialEq, Eq)]
pub struct NodeStatus {
    pub name: String,
    pub addr: String,
    /// "master", "replica", "standalone" or "down".
    pub role: String,
    pub pid: Option<i32>,
    pub alive: bool,
    pub server_id: Option<u32>,
    pub read_only: Option<bool>,
    /// `host:port` this node replicates from.
    pub source: Option<String>,
    pub io_running: Option<String>,
    pub sql_running: Option<String>,
    pub using_gtid: Option<String>,
    /// Own binary log end, `file:pos`.
    pub binlog: Option<String>,
    /// Master coordinates read / executed by this replica, `file:pos`.
    pub read_master_pos: Option<String>,
    pub exec_master_pos: Option<String>,
    pub gtid_binlog_pos: Option<String>,
    pub gtid_slave_pos: Option<String>,
    pub seconds_behind_master: Option<u64>,
    pub last_io_error: Option<String>,
    pub last_sql_error: Option<String>,
    /// Why the server could not be queried, when alive but unreachable.
    pub error: Option<String>,
}

pub async fn collect(sb: &Sandbox) -> Vec<NodeStatus> {
    let probes = sb.nodes().iter().map(|n| probe(sb, n));
    futures::future::join_all(probes).await
}

async fn probe(sb: &Sandbox, node: &NodeInfo) -> NodeStatus {
    let pid = process::running_pid(node);
    let mut st = NodeStatus {
        name: node.name.clone(),
        addr: node.addr(),
        role: "down".into(),
        pid,
        alive: pid.is_some(),
        server_id: Some(node.server_id),
        ..Default::default()
    };
    if pid.is_none() {
        return st;
    }
    let opts = match sb.admin_opts(node.index) {
        Ok(o) => o,
        Err(e) => {
            st.error = Some(e.to_string());
            return st;
        }
    };
    if let Err(e) = query_into(&mut st, opts).await {
        st.error = Some(format!("{e:#}"));
    }
    st
}

async fn query_into(st: &mut NodeStatus, opts: mysql_async::Opts) -> anyhow::Result<()> {
    let mut conn = connect(opts, Duration::from_secs(3)).await?;
    let vars: Option<Row> = conn
        .query_first("SELECT @@read_only AS ro, @@server_id AS sid, @@gtid_binlog_pos AS gb, @@gtid_slave_pos AS gs")
        .await?;
    if let Some(v) = vars {
        st.read_only = col_u64(&v, "ro").map(|x| x != 0);
        st.server_id = col_u64(&v, "sid").and_then(|x| u32::try_from(x).ok());
        st.gtid_binlog_pos = col_string(&v, "gb");
        st.gtid_slave_pos = col_string(&v, "gs");
    }
    let master: Option<Row> = conn.query_first("SHOW MASTER STATUS").await?;
    if let Some(m) = master {
        st.binlog = Some(format!(
            "{}:{}",
            col_string(&m, "File").unwrap_or_default(),
            col_u64(&m, "Position").unwrap_or(0)
        ));
    }
    let slave: Option<Row> = conn.query_first("SHOW SLAVE STATUS").await?;
    conn.disconnect().await.ok();
    match slave {
        Some(s) => {
            st.role = "replica".into();
            st.source = Some(format!(
                "{}:{}",
                col_string(&s, "Master_Host").unwrap_or_default(),
                col_u64(&s, "Master_Port").unwrap_or(0)
            ));
            st.io_running = col_string(&s, "Slave_IO_Running");
            st.sql_running = col_string(&s, "Slave_SQL_Running");
            st.using_gtid = col_string(&s, "Using_Gtid");
            st.read_master_pos = Some(format!(
                "{}:{}",
                col_string(&s, "Master_Log_File").unwrap_or_default(),
                col_u64(&s, "Read_Master_Log_Pos").unwrap_or(0)
            ));
            st.exec_master_pos = Some(format!(
                "{}:{}",
                col_string(&s, "Relay_Master_Log_File").unwrap_or_default(),
                col_u64(&s, "Exec_Master_Log_Pos").unwrap_or(0)
            ));
            st.seconds_behind_master = col_u64(&s, "Seconds_Behind_Master");
            st.last_io_error = col_string(&s, "Last_IO_Error").filter(|e| !e.is_empty());
            st.last_sql_error = col_string(&s, "Last_SQL_Error").filter(|e| !e.is_empty());
        }
        None if st.read_only == Some(false) => st.role = "master".into(),
        None => st.role = "standalone".into(),
    }
    Ok(())
}

/// A fixed-width table for people; scripts use `--json`.
pub fn render_status_table(nodes: &[NodeStatus]) -> String {
    let dash = |o: &Option<String>| o.clone().unwrap_or_else(|| "-".into());
    let header = [
        "NODE",
        "ADDRESS",
        "ROLE",
        "PID",
        "RO",
        "SOURCE",
        "IO",
        "SQL",
        "BINLOG",
        "EXEC_MASTER_POS",
        "GTID_BINLOG_POS",
        "LAG",
    ];
    let rows: Vec<Vec<String>> = nodes
        .iter()
        .map(|n| {
            vec![
                n.name.clone(),
                n.addr.clone(),
                n.role.clone(),
                n.pid.map_or("-".into(), |p| p.to_string()),
                n.read_only
                    .map_or("-".into(), |r| if r { "ON".into() } else { "OFF".into() }),
                dash(&n.source),
                dash(&n.io_running),
                dash(&n.sql_running),
                dash(&n.binlog),
                dash(&n.exec_master_pos),
                n.gtid_binlog_pos
                    .clone()
                    .filter(|g| !g.is_empty())
                    .unwrap_or_else(|| "-".into()),
                n.seconds_behind_master
                    .map_or("-".into(), |s| format!("{s}s")),
            ]
        })
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    let fmt_row = |cells: Vec<String>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_string()
    };
    let mut out = vec![fmt_row(header.iter().map(|h| h.to_string()).collect())];
    out.extend(rows.into_iter().map(fmt_row));
    for n in nodes {
        for (what, err) in [
            ("error", &n.error),
            ("IO error", &n.last_io_error),
            ("SQL error", &n.last_sql_error),
        ] {
            if let Some(e) = err {
                out.push(format!("{}: {what}: {e}", n.name));
            }
        }
    }
    out.join("\n")
}
