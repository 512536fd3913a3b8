//! Command-line surface. Each subcommand lives in its own file; this module only routes.
//!
//! Exit codes: 0 success, 1 the operation failed, 2 bad arguments or configuration
//! (clap also uses 2 for usage errors). `switch`, `failover` and `rejoin` add 3 (refused,
//! nothing changed), 4 (switchover rolled back) and 10 (switched, some replicas did not
//! follow): see [`operation`].
use std::process::ExitCode;

use clap::{Parser, Subcommand};

pub mod check_nodes;
pub mod check_repl;
pub mod cluster;
pub mod demo;
pub mod failover;
pub mod history;
pub mod import_mha;
pub mod manager;
pub mod members;
pub mod operation;
pub mod rejoin;
pub mod sandbox;
pub mod status;
pub mod switch;

#[derive(Debug, Parser)]
#[command(
    name = "raftmha",
    version,
    about = "MHA rebuilt as a Raft-replicated manager cluster"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// The main job: a local demo cluster (see README).
    Demo(demo::DemoArgs),
    /// Local MariaDB sandboxes on loopback for tests, demos and benchmarks.
    #[command(subcommand)]
    Sandbox(sandbox::SandboxCommand),
    /// Run one manager of the Raft-replicated manager cluster.
    Manager(manager::ManagerArgs),
    /// Show every manager and every registered cluster.
    Status(status::StatusArgs),
    /// Manager membership: list, add (learner, then voter), remove.
    #[command(subcommand)]
    Members(members::MembersCommand),
    /// Bootstrap the manager cluster; register managed database clusters.
    #[command(subcommand)]
    Cluster(cluster::ClusterCommand),
    /// Convert an MHA app1.cnf (+ masterha_default.cnf) into a cluster file.
    ImportMha(import_mha::ImportMhaArgs),
    /// Check a cluster's replication setup (MHA's masterha_check_repl and more).
    CheckRepl(check_repl::CheckReplArgs),
    /// Check every server's agent (replaces MHA's masterha_check_ssh).
    CheckNodes(check_nodes::CheckNodesArgs),
    /// A cluster's audit trail and failovers with their step timings.
    History(history::HistoryArgs),
    /// Stop automatic failover of a cluster (same as `cluster pause`).
    Pause(history::MaintenanceArgs),
    /// Resume automatic failover of a cluster (same as `cluster resume`).
    Resume(history::MaintenanceArgs),
    /// Acknowledge the last failover, lifting the anti-flapping guard (same as `cluster ack`).
    Ack(history::MaintenanceArgs),
    /// Planned switchover from a live master (MHA's masterha_master_switch --master_state=alive).
    Switch(switch::SwitchArgs),
    /// Manual failover of a dead master (MHA's masterha_master_switch --master_state=dead).
    Failover(failover::FailoverArgs),
    /// Bring an old master back as a replica of the current master (errant-transaction check).
    Rejoin(rejoin::RejoinArgs),
}

/// An error whose exit code says whether the caller or the world was at fault.
#[derive(Debug)]
pub struct CliError {
    pub code: u8,
    pub error: anyhow::Error,
}

impl CliError {
    pub fn usage(error: impl Into<anyhow::Error>) -> Self {
        CliError {
            code: 2,
            error: error.into(),
        }
    }
}

/// Any other error means the operation failed (exit 1); `?` works on every error type.
impl<E: Into<anyhow::Error>> From<E> for CliError {
    fn from(error: E) -> Self {
        CliError {
            code: 1,
            error: error.into(),
        }
    }
}

pub type CliResult = Result<(), CliError>;

pub fn run(cli: Cli) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Demo(args) => demo::run(args).await,
            Command::Sandbox(cmd) => sandbox::run(cmd).await,
            Command::Manager(args) => manager::run(args).await,
            Command::Status(args) => status::run(args).await,
            Command::Members(cmd) => members::run(cmd).await,
            Command::Cluster(cmd) => cluster::run(cmd).await,
            Command::ImportMha(args) => import_mha::run(args).await,
            Command::CheckRepl(args) => check_repl::run(args).await,
            Command::CheckNodes(args) => check_nodes::run(args).await,
            Command::History(args) => history::run(args).await,
            Command::Pause(args) => history::maintenance(history::Maintenance::Pause, args).await,
            Command::Resume(args) => history::maintenance(history::Maintenance::Resume, args).await,
            Command::Ack(args) => history::maintenance(history::Maintenance::Ack, args).await,
            Command::Switch(args) => switch::run(args).await,
            Command::Failover(args) => failover::run(args).await,
            Command::Rejoin(args) => rejoin::run(args).await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(CliError { code, error }) => {
            // `{:#}` prints the whole context chain on one line: operators grep logs.
            eprintln!("error: {error:#}");
            ExitCode::from(code)
        }
    }
}
