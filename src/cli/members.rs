//! `raftmha members list|add ID ADDR|remove ID`: manager membership. New managers join as
//! learners and are promoted to voters once caught up.
use clap::Subcommand;

use super::{CliError, CliResult};
use crate::api::client::{ManagersArgs, first_answer};

#[derive(Debug, Subcommand)]
pub enum MembersCommand {
    /// List members as the leader sees them.
    List {
        #[command(flatten)]
        managers: ManagersArgs,
    },
    /// Add manager ID listening on ADDR (start it first with an empty data dir).
    Add {
        id: u64,
        addr: String,
        #[command(flatten)]
        managers: ManagersArgs,
    },
    /// Remove manager ID.
    Remove {
        id: u64,
        #[command(flatten)]
        managers: ManagersArgs,
    },
}

pub async fn run(cmd: MembersCommand) -> CliResult {
    match cmd {
        MembersCommand::List { managers } => {
            let clients = managers.clients().map_err(CliError::usage)?;
            let status = first_answer(&clients, |c| async move { c.status().await }).await?;
            println!("{:<6} {:<24} ROLE", "ID", "ADDR");
            for m in status.members {
                let role = if m.voter { "voter" } else { "learner" };
                println!("{:<6} {:<24} {role}", m.id, m.addr);
            }
        }
        MembersCommand::Add { id, addr, managers } => {
            let clients = managers.clients().map_err(CliError::usage)?;
            let message = first_answer(&clients, |c| {
                let addr = addr.clone();
                async move { c.add_member(id, &addr).await }
            })
            .await?;
            println!("{message}");
        }
        MembersCommand::Remove { id, managers } => {
            let clients = managers.clients().map_err(CliError::usage)?;
            let message =
                first_answer(&clients, |c| async move { c.remove_member(id).await }).await?;
            println!("{message}");
        }
    }
    Ok(())
}
