//! `raftmha rejoin --cluster C --host H [--force] [--json]`: bring a failed or switched-out
//! old master back as a read-only replica of the current master, refusing (exit 3, with the
//! list) when it holds transactions the cluster never received, unless `--force`.
use std::time::Duration;

use clap::Args;

use super::CliResult;
use super::operation::{cluster_record, run_operation};
use crate::api::client::ManagersArgs;
use crate::state::Operation;

#[derive(Debug, Args)]
pub struct RejoinArgs {
    #[arg(long)]
    pub cluster: String,
    /// The server to bring back.
    #[arg(long)]
    pub host: String,
    /// Rejoin even with errant transactions (they stay on the host only).
    #[arg(long)]
    pub force: bool,
    #[arg(long)]
    pub json: bool,
    #[arg(long, default_value_t = 60)]
    pub wait_secs: u64,
    #[command(flatten)]
    pub managers: ManagersArgs,
}

pub async fn run(args: RejoinArgs) -> CliResult {
    let (clients, c) = cluster_record(&args.managers, &args.cluster, &[&args.host]).await?;
    let operation = Operation::Rejoin { force: args.force };
    let wait = Duration::from_secs(args.wait_secs);
    run_operation(&clients, &c, &args.host, operation, wait, args.json).await
}
