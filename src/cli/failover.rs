//! `raftmha failover --cluster C --dead-master H [--new-master H2] [--force] [--yes]`: MHA's
//! `masterha_master_switch --master_state=dead`, a manual failover through the same journaled
//! engine as an automatic one. Refused when H is not the current master, and when H still
//! answers unless `--force` (then it is fenced: read_only, sessions killed). The quorum, the
//! pause flag and the anti-flapping guard are not consulted: the operator decided.
use std::time::Duration;

use clap::Args;

use super::CliResult;
use super::operation::{cluster_record, confirm, run_operation};
use crate::api::client::ManagersArgs;
use crate::state::Operation;

#[derive(Debug, Args)]
pub struct FailoverArgs {
    #[arg(long)]
    pub cluster: String,
    /// The master to fail over (must be the current master).
    #[arg(long)]
    pub dead_master: String,
    /// Promote this replica or nothing (MHA's --new_master_host).
    #[arg(long)]
    pub new_master: Option<String>,
    /// Fail over even though the master still answers.
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub yes: bool,
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value_t = 120)]
    pub wait_secs: u64,
    #[command(flatten)]
    pub managers: ManagersArgs,
}

pub async fn run(args: FailoverArgs) -> CliResult {
    let mut names = vec![args.dead_master.as_str()];
    names.extend(args.new_master.as_deref());
    let (clients, c) = cluster_record(&args.managers, &args.cluster, &names).await?;
    confirm(
        &format!(
            "Master {} of {} is dead. Fail over{}?",
            args.dead_master,
            args.cluster,
            args.new_master
                .as_ref()
                .map(|n| format!(" to {n}"))
                .unwrap_or_default()
        ),
        args.yes,
    )?;
    let operation = Operation::ManualFailover {
        new_master: args.new_master.clone(),
        force: args.force,
    };
    let wait = Duration::from_secs(args.wait_secs);
    run_operation(&clients, &c, &args.dead_master, operation, wait, args.json).await
}
