//! The I/O half of `check-repl`: connect to each server of a cluster and fill an
//! [`Observed`]. Failures to connect or to query become `Observed::error`, never a panic.
use std::time::Duration;

use super::Observed;
use crate::db::accounts::{global_variables, own_grants, user_can_replicate};
use crate::db::{ConnectSettings, DbError, DbServer, GtidSet, MysqlServer, Secret};
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
    let server = MysqlServer::new(ConnectSettings {
        host: s.host.clone(),
        port: s.port,
        user: spec.users.admin_user.clone(),
        password: password.clone(),
        connect_timeout: TIMEOUT,
        read_timeout: TIMEOUT,
    });
    // The first query connects.
    let vars = global_variables(&server).await.map_err(|e| match e {
        DbError::Unreachable { kind, .. } => format!("cannot connect to {}: {kind}", o.addr),
        other => other.to_string(),
    })?;
    let failed = |e: DbError| e.to_string();
    o.vars = vars.into_iter().collect();
    o.admin_grants = own_grants(&server).await.map_err(failed)?;
    o.repl_user_can_replicate = user_can_replicate(&server, &spec.users.repl_user)
        .await
        .map_err(failed)?;
    o.binlog_filters = server
        .master_status()
        .await
        .map_err(failed)?
        .map(|m| (m.binlog_do_db, m.binlog_ignore_db));
    // Replica status and GTIDs through the dialect layer (MariaDB and MySQL spellings).
    o.replica = server.replica_status().await.map_err(failed)?;
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
