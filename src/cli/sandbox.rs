//! `raftmha sandbox up|down|status`: local MariaDB instances on loopback.
use std::net::Ipv4Addr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::{Args, Subcommand};

use super::{CliError, CliResult};
use crate::sandbox::{Sandbox, SandboxSpec, render_status_table};

#[derive(Debug, Subcommand)]
pub enum SandboxCommand {
    /// Initialise and start N MariaDB nodes (node 1 master, the rest its replicas).
    Up(UpArgs),
    /// Stop every node the sandbox started; safe to run twice.
    Down(DirArg),
    /// Show every node: address, role, pid, read_only, source, threads, positions, lag.
    Status(StatusArgs),
}

#[derive(Debug, Args)]
pub struct UpArgs {
    /// Directory for the sandbox (created; must be new, empty, or a stopped sandbox).
    #[arg(long)]
    pub dir: PathBuf,
    /// Number of MariaDB nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: usize,
    /// Address of node 1; node K listens on base-ip + K - 1.
    #[arg(long, default_value = "127.0.0.50")]
    pub base_ip: Ipv4Addr,
    /// Port every node listens on (on its own address).
    #[arg(long, default_value_t = 3306)]
    pub port: u16,
    /// GTID replication (MASTER_USE_GTID=slave_pos) instead of file/position.
    #[arg(long)]
    pub gtid: bool,
    /// MariaDB's built-in semi-synchronous replication (AFTER_SYNC).
    #[arg(long)]
    pub semi_sync: bool,
    /// Extra mariadbd option for every node, `key=value` (repeatable).
    #[arg(long = "option", value_name = "KEY=VALUE")]
    pub options: Vec<String>,
    /// Seconds to wait for each step before failing.
    #[arg(long, default_value_t = 60)]
    pub timeout: u64,
    /// Print the status as JSON once up.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct DirArg {
    #[arg(long)]
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    #[arg(long)]
    pub dir: PathBuf,
    /// Machine-readable output.
    #[arg(long)]
    pub json: bool,
}

pub async fn run(cmd: SandboxCommand) -> CliResult {
    match cmd {
        SandboxCommand::Up(args) => up(args).await,
        SandboxCommand::Down(args) => {
            let sb = Sandbox::open(&args.dir).map_err(CliError::usage)?;
            let was_running = sb.running_nodes().len();
            sb.down().await?;
            if was_running == 0 {
                println!("sandbox {} was not running", args.dir.display());
            } else {
                println!(
                    "sandbox {} stopped ({was_running} nodes)",
                    args.dir.display()
                );
            }
            Ok(())
        }
        SandboxCommand::Status(args) => {
            let sb = Sandbox::open(&args.dir).map_err(CliError::usage)?;
            print_status(&sb, args.json).await
        }
    }
}

async fn up(args: UpArgs) -> CliResult {
    let mut spec = SandboxSpec::new(&args.dir, args.nodes, args.base_ip);
    spec.port = args.port;
    spec.gtid = args.gtid;
    spec.semi_sync = args.semi_sync;
    spec.extra_cnf = args.options;
    spec.timeout = Duration::from_secs(args.timeout.max(1));
    spec.validate().map_err(CliError::usage)?;
    eprintln!(
        "starting {} MariaDB nodes from {} in {} ({} replication{})",
        spec.nodes,
        spec.base_ip,
        spec.dir.display(),
        if spec.gtid { "GTID" } else { "file/position" },
        if spec.semi_sync { ", semi-sync" } else { "" }
    );
    let sb = Sandbox::up(spec).await.context("sandbox up failed")?;
    print_status(&sb, args.json).await
}

async fn print_status(sb: &Sandbox, json: bool) -> CliResult {
    let nodes = sb.status().await;
    if json {
        let doc = serde_json::json!({ "dir": sb.dir(), "nodes": nodes });
        println!(
            "{}",
            serde_json::to_string_pretty(&doc).context("encoding status")?
        );
    } else {
        println!("{}", render_status_table(&nodes));
    }
    Ok(())
}
