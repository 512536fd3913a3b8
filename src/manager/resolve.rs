//! Connections, agents and accounts of a managed cluster, resolved on this manager: secrets
//! come from the files or environment variables the cluster file names, never from the
//! replicated state.
use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::Context;

use crate::db::{ConnectSettings, MysqlServer, Secret};
use crate::failover::ReplicationAccount;
use crate::failover::env::{Env, Scripts};
use crate::state::cluster_file::ClusterSpec;

/// Reads a secret from the named file or environment variable (never from the spec itself).
pub fn secret(file: &Option<String>, env: &Option<String>, what: &str) -> anyhow::Result<String> {
    if let Some(f) = file {
        let text = std::fs::read_to_string(f).with_context(|| format!("{what}: reading {f}"))?;
        return Ok(text.trim_end_matches(['\n', '\r']).to_string());
    }
    if let Some(v) = env {
        return std::env::var(v).with_context(|| format!("{what}: environment variable {v}"));
    }
    anyhow::bail!("{what}: neither a file nor an environment variable is configured")
}

pub(super) fn admin_credentials(spec: &ClusterSpec) -> anyhow::Result<(String, Secret)> {
    let u = &spec.users;
    let pw = secret(
        &u.admin_password_file,
        &u.admin_password_env,
        "admin password",
    )?;
    Ok((u.admin_user.clone(), Secret::new(pw)))
}

/// Connections, agents and accounts for the engine, resolved on this manager.
pub fn build_env(spec: &ClusterSpec, work_dir: &std::path::Path) -> anyhow::Result<Env> {
    let (user, password) = admin_credentials(spec)?;
    let u = &spec.users;
    let repl = secret(
        &u.repl_password_file,
        &u.repl_password_env,
        "replication password",
    )?;
    let agent_token = secret(&u.agent_token_file, &u.agent_token_env, "agent token").ok();
    let mut servers = BTreeMap::new();
    let mut agents = BTreeMap::new();
    for s in &spec.servers {
        servers.insert(
            s.name.clone(),
            MysqlServer::new(ConnectSettings {
                host: s.host.clone(),
                port: s.port,
                user: user.clone(),
                password: password.clone(),
                connect_timeout: Duration::from_millis(500),
                read_timeout: Duration::from_secs(30),
            }),
        );
        if let (Some(agent), Some(token)) = (&s.agent, &agent_token) {
            agents.insert(s.name.clone(), (agent.clone(), token.clone()));
        }
    }
    let work_dir = work_dir.join(&spec.name);
    std::fs::create_dir_all(&work_dir)
        .with_context(|| format!("creating {}", work_dir.display()))?;
    Ok(Env {
        servers,
        agents,
        account: ReplicationAccount {
            user: u.repl_user.clone(),
            password: Secret::new(repl),
            connect_retry_secs: Some(1),
            heartbeat_period: Some(spec.settings.heartbeat_period_ms)
                .filter(|ms| *ms > 0)
                .map(Duration::from_millis),
        },
        work_dir,
        probe_timeout: Duration::from_millis(500),
        step_timeout: Duration::from_secs(30),
        scripts: Scripts {
            master_ip_failover: spec.settings.master_ip_failover_script.clone(),
            shutdown: spec.settings.shutdown_script.clone(),
            report: spec.settings.report_script.clone(),
        },
    })
}
