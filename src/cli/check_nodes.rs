//! `raftmha check-nodes --cluster C | --file app1.toml [--json]` (replaces MHA's
//! `masterha_check_ssh`): every server's agent is reachable, accepts the token, can read its
//! binlog and relay-log directories, and runs a compatible version. Exit 0 when nothing FAILs.
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Args;
use raftmha_node::agent::client::{AgentClient, ClientError};

use super::check_repl::{ClusterSource, report};
use super::{CliError, CliResult};
use crate::check::nodes::{AgentAnswer, check_nodes};

#[derive(Debug, Args)]
pub struct CheckNodesArgs {
    #[command(flatten)]
    pub source: ClusterSource,
    /// The agents' token file (default: the managers' token file, as in config/production).
    #[arg(long, env = "RAFTMHA_AGENT_TOKEN_FILE")]
    pub agent_token_file: Option<PathBuf>,
    #[arg(long)]
    pub json: bool,
}

pub async fn run(args: CheckNodesArgs) -> CliResult {
    let (spec, master) = args.source.load().await?;
    let Some(token_file) = args
        .agent_token_file
        .clone()
        .or_else(|| args.source.token_file.clone())
    else {
        return Err(CliError::usage(anyhow::anyhow!(
            "give --agent-token-file (or RAFTMHA_AGENT_TOKEN_FILE / RAFTMHA_TOKEN_FILE)"
        )));
    };
    // The agent reads the first line of its token file; do the same.
    let text = std::fs::read_to_string(&token_file)
        .with_context(|| format!("cannot read token file {}", token_file.display()))
        .map_err(CliError::usage)?;
    let token = text.lines().next().unwrap_or("").trim().to_string();
    if token.is_empty() {
        return Err(CliError::usage(anyhow::anyhow!(
            "token file {} is empty",
            token_file.display()
        )));
    }
    let mut answers = Vec::new();
    for s in &spec.servers {
        let answer = match &s.agent {
            None => AgentAnswer::NotConfigured,
            Some(addr) => ask(addr, &token).await,
        };
        answers.push((s.name.clone(), answer));
    }
    let findings = check_nodes(&answers, env!("CARGO_PKG_VERSION"));
    report(&spec.name, master.as_deref(), &findings, args.json)
}

async fn ask(addr: &str, token: &str) -> AgentAnswer {
    let client = match AgentClient::connect(
        &format!("http://{addr}"),
        token,
        Duration::from_secs(5),
    )
    .await
    {
        Ok(c) => c,
        Err(e) => return AgentAnswer::Unreachable(format!("{addr}: {e}")),
    };
    match client.health().await {
        Ok(h) => AgentAnswer::Healthy(h),
        Err(ClientError::Status(s)) if s.code() == tonic::Code::Unauthenticated => {
            AgentAnswer::Unauthenticated(format!("{addr}: {}", s.message()))
        }
        Err(e) => AgentAnswer::Unreachable(format!("{addr}: {e}")),
    }
}
