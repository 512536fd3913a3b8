//! What a run reaches on this manager: one connection pool per server, the agents, the
//! account replicas use, a scratch directory, scripts and the bounds on every wait.
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use raftmha_node::agent::client::{AgentClient, FencingToken};

use super::repoint::ReplicationAccount;
use crate::db::MysqlServer;

/// Everything the engine reaches: one connection pool per server, agents, the account
/// replicas use, a scratch directory and the bounds on every wait.
pub struct Env {
    pub servers: BTreeMap<String, MysqlServer>,
    /// `server name -> (agent endpoint, token)`.
    pub agents: BTreeMap<String, (String, String)>,
    pub account: ReplicationAccount,
    pub work_dir: PathBuf,
    pub probe_timeout: Duration,
    pub step_timeout: Duration,
    /// Scripts run with MHA's arguments.
    pub scripts: Scripts,
}

#[derive(Debug, Clone, Default)]
pub struct Scripts {
    pub master_ip_failover: Option<String>,
    pub shutdown: Option<String>,
    pub report: Option<String>,
}

impl Env {
    pub fn server(&self, name: &str) -> Option<&MysqlServer> {
        self.servers.get(name)
    }

    pub fn db(&self, name: &str) -> anyhow::Result<&MysqlServer> {
        self.server(name)
            .with_context(|| format!("no connection settings for {name}"))
    }

    /// `name`'s agent, acting under the run's fencing token.
    pub async fn agent(
        &self,
        name: &str,
        token: &FencingToken,
        limit: Duration,
    ) -> anyhow::Result<AgentClient> {
        let (endpoint, secret) = self
            .agents
            .get(name)
            .with_context(|| format!("{name} has no agent configured"))?;
        AgentClient::connect(&format!("http://{endpoint}"), secret, limit)
            .await
            .with_context(|| format!("agent of {name} at {endpoint}"))?
            .fenced(token)
            .context("fencing token")
    }

    /// Whether `name`'s host agent answers (its binlogs can be saved).
    pub async fn agent_alive(&self, name: &str) -> bool {
        let Some((endpoint, token)) = self.agents.get(name) else {
            return false;
        };
        let Ok(c) =
            AgentClient::connect(&format!("http://{endpoint}"), token, self.probe_timeout).await
        else {
            return false;
        };
        c.health().await.is_ok()
    }
}
