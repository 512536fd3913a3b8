//! `raftmha switch --cluster C --new-master H [--orig-master-is-new-slave] [--yes] [--json]`:
//! MHA's `masterha_master_switch --master_state=alive`, run by the manager leader through the
//! journaled engine (see `src/failover/switchover_run.rs`). Allowed while automatic failover is
//! paused (an operator's deliberate act); refused while another failover or operation runs.
use std::time::Duration;

use clap::Args;

use super::CliResult;
use super::operation::{cluster_record, confirm, run_operation};
use crate::api::client::ManagersArgs;
use crate::state::{Operation, SwitchLimits};

#[derive(Debug, Args)]
pub struct SwitchArgs {
    #[arg(long)]
    pub cluster: String,
    /// The replica to promote.
    #[arg(long)]
    pub new_master: String,
    /// Make the old master a replica of the new one (MHA's --orig_master_is_new_slave).
    #[arg(long)]
    pub orig_master_is_new_slave: bool,
    /// Do not ask for confirmation.
    #[arg(long)]
    pub yes: bool,
    /// Print the report as JSON (no progress lines).
    #[arg(long)]
    pub json: bool,
    /// Refuse when the master runs an update (or holds uncommitted changes) longer than this.
    #[arg(long, default_value_t = 1)]
    pub running_updates_limit: u64,
    /// Refuse when the new master runs a query longer than this.
    #[arg(long, default_value_t = 10)]
    pub running_seconds_limit: u64,
    /// Refuse when a replica lags more than this many seconds.
    #[arg(long, default_value_t = 30)]
    pub seconds_behind_master: u64,
    /// Roll back when the new master needs longer than this to catch up while writes are
    /// blocked.
    #[arg(long, default_value_t = 5000)]
    pub catch_up_timeout_ms: u64,
    /// How long to follow the operation before leaving it to the leader.
    #[arg(long, default_value_t = 120)]
    pub wait_secs: u64,
    #[command(flatten)]
    pub managers: ManagersArgs,
}

pub async fn run(args: SwitchArgs) -> CliResult {
    let (clients, c) = cluster_record(&args.managers, &args.cluster, &[&args.new_master]).await?;
    let master = c.master.clone().unwrap_or_else(|| "(unknown)".into());
    confirm(
        &format!(
            "Switch the master of {} from {master} to {}{}? Writes are blocked meanwhile.",
            args.cluster,
            args.new_master,
            if args.orig_master_is_new_slave {
                format!(", {master} becoming its replica")
            } else {
                String::new()
            }
        ),
        args.yes,
    )?;
    let operation = Operation::Switchover {
        new_master: args.new_master.clone(),
        orig_master_is_new_slave: args.orig_master_is_new_slave,
        limits: SwitchLimits {
            running_updates_limit_secs: args.running_updates_limit,
            running_seconds_limit_secs: args.running_seconds_limit,
            max_lag_secs: args.seconds_behind_master,
            catch_up_timeout_ms: args.catch_up_timeout_ms.max(1),
        },
    };
    let wait = Duration::from_secs(args.wait_secs);
    run_operation(&clients, &c, &master, operation, wait, args.json).await
}
