//! The I/O half of `check-repl`: connect to each server of a cluster and fill an
//! [`Observed`]. Failures to connect or to query become `Observed::error`, never a panic.
use std::time::Duration;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder};

use super::Observed;
use crate::db::{ConnectSettings, DbServer, GtidSet, MysqlServer, Secret};
use crate::state::cluster_file::{ClusterSpec, ServerSpec};

const TIMEOUT: Duration = Duration::from_secs(5);

/// The passwords the cluster file names, read now (file: first line; env: whole value).
pub fn resolve_password(file: Option<&str>, env: Option<&str>) -> Result<Secret, String> {
    match (file, env) {
        (Some(path), _) => std::fs::read_to_string(path)
            .map(|t| Secret::new(t.lines().next().unwrap_or("").to_string()))
            .map_err(|e| format!("cannot read password file {path}: {e}")),
        (None, Some(var)) => std::env::var(var)
            .map(Secret::new)
            .map_err(|_| format!("environment variable {var} is not set")),
        (None, None) => Err("no password source".into()),
    }
}

pub async fn observe_cluster(spec: &ClusterSpec, admin_password: &Secret) -> Vec<Observed> {
    let mut out = Vec::new();
    for s in &spec.servers {
        out.push(observe(spec, s, admin_password).await);
    }
    out
}

async fn observe(spec: &ClusterSpec, s: &ServerSpec, password: &Secret) -> Observed {
    let mut o = Observed {
        name: s.name.clone(),
        addr: format!("{}:{}", s.host, s.port),
        can_be_master: !s.no_master,
        ..Observed::default()
    };
    // A hung server must not hang the whole check: bound every server's queries together.
    match tokio::time::timeout(TIMEOUT * 3, fill(&mut o, spec, s, password)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => o.error = Some(e),
        Err(_) => o.error = Some(format!("{}: no answer within {:?}", o.addr, TIMEOUT * 3)),
    }
    o
}

async fn fill(
    o: &mut Observed,
    spec: &ClusterSpec,
    s: &ServerSpec,
    password: &Secret,
) -> Result<(), String> {
    let opts = OptsBuilder::default()
        .ip_or_hostname(s.host.clone())
        .tcp_port(s.port)
        .user(Some(spec.users.admin_user.clone()))
        .pass(Some(password.expose().to_string()))
        .prefer_socket(false);
    let mut conn = tokio::time::timeout(TIMEOUT, Conn::new(opts))
        .await
        .map_err(|_| format!("cannot connect to {}: timed out", o.addr))?
        .map_err(|e| format!("cannot connect to {}: {e}", o.addr))?;
    let q = |e: mysql_async::Error| format!("{}: {e}", o.addr);
    let vars: Vec<(String, String)> = conn.query("SHOW GLOBAL VARIABLES").await.map_err(q)?;
    o.vars = vars
        .into_iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v))
        .collect();
    o.admin_grants = conn.query("SHOW GRANTS").await.map_err(q)?;
    let repl: Vec<String> = conn
        .exec(
            "SELECT Repl_slave_priv FROM mysql.user WHERE User = ?",
            (spec.users.repl_user.clone(),),
        )
        .await
        .map_err(q)?;
    o.repl_user_can_replicate = if repl.is_empty() {
        None
    } else {
        Some(repl.iter().any(|p| p == "Y"))
    };
    let master: Vec<mysql_async::Row> = conn.query("SHOW MASTER STATUS").await.map_err(q)?;
    o.binlog_filters = master.first().map(|r| {
        let col = |name: &str| -> String {
            r.columns_ref()
                .iter()
                .position(|c| c.name_str() == name)
                .and_then(|i| r.get_opt::<String, _>(i))
                .and_then(Result::ok)
                .unwrap_or_default()
        };
        (col("Binlog_Do_DB"), col("Binlog_Ignore_DB"))
    });
    let _ = conn.disconnect().await;

    // Replica status and GTIDs through the dialect layer (MariaDB and MySQL spellings).
    let server = MysqlServer::new(ConnectSettings {
        host: s.host.clone(),
        port: s.port,
        user: spec.users.admin_user.clone(),
        password: password.clone(),
        connect_timeout: TIMEOUT,
        read_timeout: TIMEOUT,
    });
    o.replica = server.replica_status().await.map_err(|e| e.to_string())?;
    // MariaDB's gtid_current_pos hides binlogged GTIDs once server_id changes; the union
    // with gtid_binlog_pos keeps every transaction this server wrote itself.
    o.gtid = server.gtid_state().await.ok().and_then(|g| {
        let binlogged = g.binlog_pos.map(GtidSet::MariaDb);
        let all = match &binlogged {
            Some(b) => g.executed.union(b).unwrap_or(g.executed),
            None => g.executed,
        };
        (!all.is_empty()).then_some(all)
    });
    Ok(())
}
