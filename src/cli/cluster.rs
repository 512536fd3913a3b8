//! `raftmha cluster init|add|remove|list`: bootstrap the manager cluster and register the
//! managed database clusters it watches.
use std::path::PathBuf;

use anyhow::Context;
use clap::Subcommand;

use super::{CliError, CliResult};
use crate::api::client::{ManagersArgs, first_answer};
use crate::state::cluster_file::ClusterSpec;
use crate::state::{Command, CommandResult};

#[derive(Debug, Subcommand)]
pub enum ClusterCommand {
    /// Bootstrap a new manager cluster from the managers' initial_voters (needed only
    /// when auto_init = false).
    Init {
        #[command(flatten)]
        managers: ManagersArgs,
    },
    /// Register a managed cluster from its TOML file (see config/app1.toml).
    Add {
        #[arg(long)]
        file: PathBuf,
        #[command(flatten)]
        managers: ManagersArgs,
    },
    /// Forget a managed cluster.
    Remove {
        name: String,
        #[command(flatten)]
        managers: ManagersArgs,
    },
    /// Stop automatic failover of a cluster (e.g. during maintenance).
    Pause {
        name: String,
        /// Why, for the audit history.
        #[arg(long, default_value = "paused by operator")]
        reason: String,
        #[command(flatten)]
        managers: ManagersArgs,
    },
    /// Resume automatic failover of a cluster.
    Resume {
        name: String,
        #[command(flatten)]
        managers: ManagersArgs,
    },
    /// Acknowledge the last failover, lifting the anti-flapping guard.
    Ack {
        name: String,
        #[command(flatten)]
        managers: ManagersArgs,
    },
    /// List registered clusters (a linearizable read).
    List {
        #[arg(long)]
        json: bool,
        #[command(flatten)]
        managers: ManagersArgs,
    },
}

pub async fn run(cmd: ClusterCommand) -> CliResult {
    match cmd {
        ClusterCommand::Init { managers } => {
            let clients = managers.clients().map_err(CliError::usage)?;
            let message = first_answer(&clients, |c| async move { c.initialize().await }).await?;
            println!("{message}");
        }
        ClusterCommand::Add { file, managers } => {
            let text = std::fs::read_to_string(&file)
                .with_context(|| format!("cannot read {}", file.display()))
                .map_err(CliError::usage)?;
            let spec = ClusterSpec::parse(&text)
                .map_err(|e| CliError::usage(anyhow::anyhow!("{}: {e}", file.display())))?;
            write(
                &managers,
                Command::RegisterCluster {
                    spec: Box::new(spec),
                },
            )
            .await?;
        }
        ClusterCommand::Remove { name, managers } => {
            write(&managers, Command::RemoveCluster { name }).await?;
        }
        ClusterCommand::Pause {
            name,
            reason,
            managers,
        } => {
            let command = Command::SetPaused {
                cluster: name,
                paused: true,
                reason,
            };
            write(&managers, command).await?;
        }
        ClusterCommand::Resume { name, managers } => {
            let command = Command::SetPaused {
                cluster: name,
                paused: false,
                reason: "resumed by operator".into(),
            };
            write(&managers, command).await?;
        }
        ClusterCommand::Ack { name, managers } => {
            write(&managers, Command::AckFailover { cluster: name }).await?;
        }
        ClusterCommand::List { json, managers } => {
            let clients = managers.clients().map_err(CliError::usage)?;
            let (state, _) =
                first_answer(&clients, |c| async move { c.read_state().await }).await?;
            if json {
                let clusters: Vec<_> = state.clusters.values().collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&clusters).context("encoding")?
                );
            } else {
                println!(
                    "{:<20} {:<8} {:<12} {:<6} PAUSED",
                    "NAME", "SERVERS", "MASTER", "EPOCH"
                );
                for c in state.clusters.values() {
                    println!(
                        "{:<20} {:<8} {:<12} {:<6} {}",
                        c.spec.name,
                        c.spec.servers.len(),
                        c.master.as_deref().unwrap_or("-"),
                        c.epoch,
                        c.paused
                    );
                }
            }
        }
    }
    Ok(())
}

async fn write(managers: &ManagersArgs, command: Command) -> CliResult {
    let clients = managers.clients().map_err(CliError::usage)?;
    let (result, index) = first_answer(&clients, |c| {
        let command = command.clone();
        async move { c.write(&command).await }
    })
    .await?;
    match result {
        CommandResult::Rejected { reason } => Err(anyhow::anyhow!("rejected: {reason}").into()),
        CommandResult::Ok { message, .. } => {
            println!("{message} (log index {index})");
            Ok(())
        }
        CommandResult::None => Ok(()),
    }
}
